/* pv_metrics.c -- ranking metrics from top-k ids (see pv_metrics.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pv_metrics.h"

/* Position of `id` in the strictly increasing t[0 .. n), or -1. */
PV_INLINE int64_t
find_sorted(const int64_t *t, int64_t n, int64_t id)
{
    int64_t lo = 0, hi = n;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (t[mid] < id) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    return (lo < n && t[lo] == id) ? lo : -1;
}

static pv_status
check_inputs(pv_index n_users, pv_index kmax, pv_index n_items, const int64_t *topk_ids,
             const int64_t *indptr, const int64_t *indices, pv_index n_ks, const int64_t *ks,
             int64_t *max_len)
{
    for (pv_index j = 0; j < n_ks; j++) {
        if (ks[j] < 1 || ks[j] > kmax) {
            return PV_EINVAL;
        }
    }
    if (indptr[0] != 0) {
        return PV_EINVAL;
    }
    int64_t longest = 0;
    for (pv_index u = 0; u < n_users; u++) {
        int64_t a = indptr[u], b = indptr[u + 1];
        if (b < a) {
            return PV_EINVAL;
        }
        if (b - a > longest) {
            longest = b - a;
        }
        for (int64_t c = a; c < b; c++) {
            if (indices[c] < 0 || indices[c] >= n_items) {
                return PV_EINDEX;
            }
            if (c > a && indices[c] <= indices[c - 1]) {
                return PV_EINVAL;
            }
        }
    }
    for (pv_index t = 0; t < n_users * kmax; t++) {
        if (topk_ids[t] < -1 || topk_ids[t] >= n_items) {
            return PV_EINDEX;
        }
    }
    *max_len = longest;
    return PV_OK;
}

pv_status
pv_ranking_metrics_f64(pv_index n_users, pv_index kmax, pv_index n_items,
                       const int64_t *PV_RESTRICT topk_ids, const int64_t *PV_RESTRICT test_indptr,
                       const int64_t *PV_RESTRICT test_indices, pv_index n_ks,
                       const int64_t *PV_RESTRICT ks, double *PV_RESTRICT out, int n_threads)
{
    if (n_users < 0 || kmax < 1 || n_items < 0 || n_ks < 1) {
        return PV_EINVAL;
    }
    int64_t max_len = 0;
    pv_status st = check_inputs(n_users, kmax, n_items, topk_ids, test_indptr, test_indices,
                                n_ks, ks, &max_len);
    if (st != PV_OK || n_users == 0) {
        return st;
    }
    if (n_threads <= 0) {
        n_threads = pv_default_threads();
    }

    /* disc[r] = 1 / log2(r + 2); ideal[n] = disc[0] + ... + disc[n - 1]. */
    double *disc = malloc((size_t)kmax * sizeof(double));
    double *ideal = malloc((size_t)(kmax + 1) * sizeof(double));
    /* Per thread: cumulative hits / DCG / AP (kmax + 1 each), the test
     * positions hit (kmax) and a mark per test position (max_len). */
    size_t per_thread = (size_t)(kmax + 1) * (2 * sizeof(double) + sizeof(int64_t)) +
                        (size_t)kmax * sizeof(int64_t) + (size_t)max_len;
    per_thread = (per_thread + 63) / 64 * 64; /* keeps each thread's doubles aligned */
    unsigned char *ws = malloc(per_thread * (size_t)n_threads);
    if (disc == NULL || ideal == NULL || ws == NULL) {
        free(disc);
        free(ideal);
        free(ws);
        return PV_ENOMEM;
    }
    memset(ws, 0, per_thread * (size_t)n_threads);
    ideal[0] = 0.0;
    for (pv_index r = 0; r < kmax; r++) {
        disc[r] = 1.0 / log2((double)r + 2.0);
        ideal[r + 1] = ideal[r] + disc[r];
    }

    int dup = 0;
#pragma omp parallel num_threads(n_threads) reduction(| : dup)
    {
        unsigned char *mine = ws + per_thread * (size_t)PV_OMP_THREAD_ID();
        double *cdcg = (double *)mine;
        double *cap = cdcg + (kmax + 1);
        int64_t *chit = (int64_t *)(cap + (kmax + 1));
        int64_t *hitpos = chit + (kmax + 1);
        unsigned char *mark = (unsigned char *)(hitpos + kmax);

#pragma omp for schedule(static)
        for (pv_index u = 0; u < n_users; u++) {
            const int64_t *t_u = test_indices + test_indptr[u];
            const int64_t n_t = test_indptr[u + 1] - test_indptr[u];
            const int64_t *ids = topk_ids + u * kmax;
            double *o = out + u * n_ks * PV_MET_COUNT;
            if (n_t == 0) {
                for (pv_index j = 0; j < n_ks * PV_MET_COUNT; j++) {
                    o[j] = NAN;
                }
                continue;
            }
            pv_index n_hit = 0;
            cdcg[0] = 0.0;
            cap[0] = 0.0;
            chit[0] = 0;
            for (pv_index r = 0; r < kmax; r++) {
                int64_t p = ids[r] >= 0 ? find_sorted(t_u, n_t, ids[r]) : -1;
                if (p >= 0) {
                    if (mark[p]) {
                        dup = 1;
                    }
                    mark[p] = 1;
                    hitpos[n_hit++] = p;
                    chit[r + 1] = chit[r] + 1;
                    cdcg[r + 1] = cdcg[r] + disc[r];
                    cap[r + 1] = cap[r] + (double)chit[r + 1] / (double)(r + 1);
                } else {
                    chit[r + 1] = chit[r];
                    cdcg[r + 1] = cdcg[r];
                    cap[r + 1] = cap[r];
                }
            }
            for (pv_index h = 0; h < n_hit; h++) {
                mark[hitpos[h]] = 0;
            }
            for (pv_index j = 0; j < n_ks; j++) {
                const int64_t kk = ks[j];
                const int64_t hits = chit[kk];
                const int64_t n_ideal = n_t < kk ? n_t : kk;
                double *oj = o + j * PV_MET_COUNT;
                oj[PV_MET_PRECISION] = (double)hits / (double)kk;
                oj[PV_MET_RECALL] = (double)hits / (double)n_t;
                oj[PV_MET_NDCG] = cdcg[kk] / ideal[n_ideal];
                oj[PV_MET_NDCG_INVRL] = hits > 0 ? cdcg[kk] / ideal[hits] : 0.0;
                oj[PV_MET_HIT_RATE] = hits > 0 ? 1.0 : 0.0;
                oj[PV_MET_MAP] = cap[kk] / (double)n_ideal;
            }
        }
    }
    free(disc);
    free(ideal);
    free(ws);
    return dup ? PV_EINVAL : PV_OK;
}
