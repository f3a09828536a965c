/*
 * pv_topk.c -- blocked full-ranking top-k (see pv_topk.h).
 *
 * Users are cut into chunks of user_chunk rows; the chunks are spread over
 * the OpenMP team and each is ranked start to finish by one thread: per item
 * tile, one sgemm (single-threaded: it runs inside our parallel region) writes
 * the chunk's score tile into that thread's own workspace, then each row is
 * offered to a bounded min-heap of size k that lives in the user's own output
 * row.  No barrier is crossed between the first and the last chunk, so a
 * thread slowed down by another process on the same core does not stall the
 * rest (a design with a threaded sgemm per block and a parallel heap loop
 * after it crosses two barriers per block and lost 3-4x on a loaded 2-core
 * machine; see benchmarks/bench_eval.py).
 *
 * The heap starts filled with k sentinels (score -inf, id -1), so a
 * candidate enters iff its score is strictly above the heap's worst: -inf
 * (excluded) items never enter and unfilled slots come out as the (-1, -inf)
 * padding.  Items are visited in ascending id order, so an item whose score
 * only ties the worst kept score always has the larger id and loses the tie:
 * strict '>' is the whole tie-breaking rule during the scan.  Most entries
 * are rejected by a branch-free "any above the threshold?" test over blocks.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "pv_blas.h"
#include "pv_topk.h"
#include "impl/pv_topk_heap.h"

/* Entries tested together by the branch-free prefilter of scan_row. */
#define PV_TOPK_SCAN_BLOCK 64

/*
 * Offer the n scores of `row` (items base .. base + n - 1, ascending) to the
 * heap.  Returns nothing; the heap's root is the k-th best score so far.
 */
PV_HOT static void
scan_row(const float *PV_RESTRICT row, pv_index n, int64_t base, float *PV_RESTRICT hs,
         int64_t *PV_RESTRICT hi, pv_index k)
{
    float thr = hs[0];
    pv_index j = 0;
    for (; j + PV_TOPK_SCAN_BLOCK <= n; j += PV_TOPK_SCAN_BLOCK) {
        const float *blk = row + j;
        int any = 0;
        for (int t = 0; t < PV_TOPK_SCAN_BLOCK; t++) {
            any |= blk[t] > thr;
        }
        if (!any) {
            continue;
        }
        for (int t = 0; t < PV_TOPK_SCAN_BLOCK; t++) {
            if (blk[t] > thr) {
                sift_root(hs, hi, k, blk[t], base + j + t);
                thr = hs[0];
            }
        }
    }
    for (; j < n; j++) {
        if (row[j] > thr) {
            sift_root(hs, hi, k, row[j], base + j);
            thr = hs[0];
        }
    }
}

/* Largest squared row norm (double); -1 if an entry is not finite. */
static double
max_sq_norm(pv_index n_rows, pv_index dim, const float *x, int n_threads)
{
    double best = 0.0;
    int bad = 0;
#pragma omp parallel for schedule(static) num_threads(n_threads) reduction(max : best) \
    reduction(| : bad)
    for (pv_index r = 0; r < n_rows; r++) {
        const float *xr = x + r * dim;
        double ss = 0.0;
        for (pv_index t = 0; t < dim; t++) {
            ss += (double)xr[t] * (double)xr[t];
        }
        if (!isfinite(ss)) {
            bad = 1;
        } else if (ss > best) {
            best = ss;
        }
    }
    return bad ? -1.0 : best;
}

static pv_status
check_exclusion(pv_index n_users, pv_index n_items, const int64_t *indptr,
                const int64_t *indices)
{
    if (indptr[0] != 0) {
        return PV_EINVAL;
    }
    for (pv_index u = 0; u < n_users; u++) {
        int64_t a = indptr[u], b = indptr[u + 1];
        if (b < a) {
            return PV_EINVAL;
        }
        for (int64_t c = a; c < b; c++) {
            if (indices[c] < 0 || indices[c] >= n_items) {
                return PV_EINDEX;
            }
            if (c > a && indices[c] < indices[c - 1]) {
                return PV_EINVAL;
            }
        }
    }
    return PV_OK;
}

/*
 * Checks shared by the top-k kernels (status as pv_topk.h documents it).
 * |score| <= ||u|| ||v|| (Cauchy-Schwarz, also for every partial sum): it must stay
 * clear of FLT_MAX so no score (or partial sum) becomes inf/NaN.
 */
pv_status
pv_topk_validate(pv_index n_users, pv_index n_items, pv_index dim, const float *user_vecs,
                 const float *item_vecs, const int64_t *excl_indptr,
                 const int64_t *excl_indices, float mask_value, pv_index k, int *n_threads)
{
    if (*n_threads <= 0) {
        *n_threads = pv_default_threads();
    }
    if (n_users < 0 || dim < 1 || k < 1 || k > n_items || isnan(mask_value) ||
        (isinf(mask_value) && mask_value > 0) || ((excl_indptr == NULL) != (excl_indices == NULL))) {
        return PV_EINVAL;
    }
    if (n_users == 0) {
        return PV_OK;
    }
    if (excl_indptr != NULL) {
        pv_status st = check_exclusion(n_users, n_items, excl_indptr, excl_indices);
        if (st != PV_OK) {
            return st;
        }
    }
    double nu = max_sq_norm(n_users, dim, user_vecs, *n_threads);
    double nv = max_sq_norm(n_items, dim, item_vecs, *n_threads);
    if (nu < 0.0 || nv < 0.0 || sqrt(nu) * sqrt(nv) > 0.5 * (double)FLT_MAX) {
        return PV_EDOM;
    }
    return PV_OK;
}

/* Users per chunk: few users are cut into more chunks so threads share them, by a
 * rule that ignores n_threads (pv_topk.h, Blocking). */
pv_index
pv_topk_chunk_rows(pv_index n_users, pv_index user_chunk)
{
    pv_index uc = user_chunk > 0 ? user_chunk : PV_TOPK_USER_CHUNK;
    pv_index split = (n_users + PV_TOPK_SPLIT - 1) / PV_TOPK_SPLIT;
    split = split < PV_TOPK_MIN_CHUNK ? PV_TOPK_MIN_CHUNK : split;
    uc = uc > split ? split : uc;
    return uc > n_users ? n_users : uc;
}

/* Inputs shared by every chunk of one call. */
typedef struct {
    pv_index n_items, dim;
    const float *user_vecs, *item_vecs;
    const int64_t *excl_indptr, *excl_indices; /* both NULL: no exclusion */
    float mask_value;
    pv_index k, item_tile;
    int64_t *out_ids;
    float *out_scores;
} topk_args;

/*
 * Rank users u0 .. u0 + m - 1 against every item: per item tile, one
 * single-threaded sgemm into `tile` (m x item_tile, ld item_tile), mask the
 * excluded entries, offer each row to its user's heap; sort the heaps at the
 * end.  cursor (m) tracks each user's position in its sorted exclusion row.
 */
static void
rank_chunk(const topk_args *a, pv_index u0, pv_index m, float *PV_RESTRICT tile,
           int64_t *PV_RESTRICT cursor)
{
    const pv_index k = a->k, it = a->item_tile, dim = a->dim;
    for (pv_index r = 0; r < m; r++) {
        heap_reset(a->out_scores + (u0 + r) * k, a->out_ids + (u0 + r) * k, k);
        if (cursor != NULL) {
            cursor[r] = a->excl_indptr[u0 + r];
        }
    }
    for (pv_index j0 = 0; j0 < a->n_items; j0 += it) {
        const pv_index n = a->n_items - j0 < it ? a->n_items - j0 : it;
        PV_CBLAS(cblas_sgemm)(PvRowMajor, PvNoTrans, PvTrans, (pv_blas_int)m, (pv_blas_int)n,
                              (pv_blas_int)dim, 1.0f, a->user_vecs + u0 * dim, (pv_blas_int)dim,
                              a->item_vecs + j0 * dim, (pv_blas_int)dim, 0.0f, tile,
                              (pv_blas_int)it);
        for (pv_index r = 0; r < m; r++) {
            float *row = tile + r * it;
            if (cursor != NULL) {
                /* Rows are sorted and earlier tiles consumed the ids < j0. */
                int64_t c = cursor[r];
                const int64_t end = a->excl_indptr[u0 + r + 1];
                while (c < end && a->excl_indices[c] < j0 + n) {
                    row[a->excl_indices[c] - j0] = a->mask_value;
                    c++;
                }
                cursor[r] = c;
            }
            scan_row(row, n, (int64_t)j0, a->out_scores + (u0 + r) * k,
                     a->out_ids + (u0 + r) * k, k);
        }
    }
    for (pv_index r = 0; r < m; r++) {
        sort_heap(a->out_scores + (u0 + r) * k, a->out_ids + (u0 + r) * k, k);
    }
}

pv_status
pv_topk_f32(pv_index n_users, pv_index n_items, pv_index dim,
            const float *PV_RESTRICT user_vecs, const float *PV_RESTRICT item_vecs,
            const int64_t *PV_RESTRICT excl_indptr, const int64_t *PV_RESTRICT excl_indices,
            float mask_value, pv_index k, pv_index user_chunk, pv_index item_tile,
            int64_t *PV_RESTRICT out_ids, float *PV_RESTRICT out_scores, int n_threads)
{
    pv_status st = pv_topk_validate(n_users, n_items, dim, user_vecs, item_vecs, excl_indptr,
                                    excl_indices, mask_value, k, &n_threads);
    if (st != PV_OK || n_users == 0) {
        return st;
    }
    const int have_excl = excl_indptr != NULL;

    /* Chunk shapes change sgemm's last bits (OpenBLAS takes other code paths for very
     * small m or n), so the rule ignores n_threads. */
    const pv_index uc = pv_topk_chunk_rows(n_users, user_chunk);
    pv_index it = item_tile > 0 ? item_tile : PV_TOPK_ITEM_TILE;
    if (it > n_items) {
        it = n_items;
    }
    const pv_index n_chunks = (n_users + uc - 1) / uc;
    const int team = n_chunks < n_threads ? (int)n_chunks : n_threads;
    if (!pv_blas_fits(uc, it, dim) ||
        (size_t)uc > SIZE_MAX / sizeof(float) / (size_t)it / (size_t)team) {
        return PV_ERANGE;
    }
    const size_t tile_len = (size_t)uc * (size_t)it;
    float *tiles = malloc((size_t)team * tile_len * sizeof(float));
    int64_t *cursors = have_excl ? malloc((size_t)team * (size_t)uc * sizeof(int64_t)) : NULL;
    if (tiles == NULL || (have_excl && cursors == NULL)) {
        free(tiles);
        free(cursors);
        return PV_ENOMEM;
    }
    const topk_args a = {n_items,      dim,     user_vecs, item_vecs, excl_indptr,
                         excl_indices, mask_value, k,       it,        out_ids,
                         out_scores};
#pragma omp parallel num_threads(team)
    {
        const int tid = PV_OMP_THREAD_ID();
        float *tile = tiles + (size_t)tid * tile_len;
        int64_t *cursor = have_excl ? cursors + (size_t)tid * (size_t)uc : NULL;
        /* Chunks are fixed by uc alone, and each is ranked start to finish by
         * one thread, so which thread takes it changes no bit (dynamic is only
         * load balancing, e.g. when another process shares a core). */
#pragma omp for schedule(dynamic, 1)
        for (pv_index c = 0; c < n_chunks; c++) {
            const pv_index u0 = c * uc;
            rank_chunk(&a, u0, n_users - u0 < uc ? n_users - u0 : uc, tile, cursor);
        }
    }
    free(tiles);
    free(cursors);
    return PV_OK;
}
