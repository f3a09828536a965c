/*
 * pv_topk_bf16.c -- full-ranking top-k with a bfloat16 prefilter and exact float32
 * rescoring (see pv_topk.h, pv_topk_bf16_f32).
 *
 * Per user chunk, per item tile, per block of 32 users x 32 items: the bf16 estimates
 * shat of the block (four 16 x 16 AMX tiles, AVX512-BF16 dot products, or a portable loop), then per user row the
 * items in ascending id order: an item is rescored in float32 (pv_topk_rescore) and
 * offered to the heap only if shat >= cut = thr - E(u) (rounded down), thr being the
 * heap's current k-th exact score.  The heap and its tie rule are pv_topk_f32's.
 *
 * The bound E(u) (method: Higham, Accuracy and Stability of Numerical Algorithms,
 * §2.2 and §3.1).  Let a_k = |u_k|, b_k = |v_k|, n = dim, d = 2^-8 (unit roundoff of
 * bf16: 8 significant bits), t = 2^-126 (smallest normal), g(m) = m 2^-24 / (1 - m 2^-24).
 *  - Rounding to bf16 (nearest even) and the hardware's treatment of subnormal bf16 as
 *    zero give a u'_k with |u'_k - u_k| <= d a_k + t, so |u'_k| <= (1 + d) a_k + t; the
 *    same for v'.
 *  - |u'_k v'_k - u_k v_k| <= |u' - u| |v'| + a |v' - v| <= (2d + d^2) a b + 2t (a + b) + t^2.
 *  - shat sums the n products u'_k v'_k in float32 in some order, each product exact or
 *    rounded, each result possibly flushed to zero below t: at most 2n roundings, so
 *    |shat - sum u'v'| <= g(2n) sum |u'v'| + 2n t, with
 *    sum |u'v'| <= (1 + d)^2 sum ab + t (1 + d)(||u||_1 + ||v||_1) + n t^2.
 *  - s (pv_topk_rescore, float32, gradual underflow): |s - sum uv| <= g(n + 1) sum ab + n t.
 *  - Adding up with g(2n) <= 1/8 (n <= 2^20) and t < 1:
 *    |shat - s| <= c1 sum ab + t (3 (||u||_1 + ||v||_1) + 4n),
 *    c1 = 2d + d^2 + g(2n) (1 + d)^2 + g(n + 1),  and sum ab <= ||u||_2 ||v||_2.
 *  - The norms and the bound are evaluated in double (relative error < (n + 8) 2^-53 <
 *    2^-30); the factor 1 + 2^-30 and one more t cover that.
 * An item skipped at any time has s <= shat + E < thr <= the final k-th exact score,
 * so it cannot be in the result, and every item that can is offered in ascending id
 * order exactly as pv_topk_f32 offers its scores: the result is the exact top-k of s.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "impl/pv_topk_heap.h"
#include "pv_topk.h"

#if defined(__x86_64__) && defined(__linux__) && defined(__GNUC__) && \
    (defined(__clang__) || __GNUC__ >= 11) && !defined(PV_NO_AMX)
#define PV_HAVE_AMX 1
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#define BF_ROWS 16                 /* rows of an AMX tile (users, or bf16 pairs)   */
#define BF_K 32                    /* bf16 per tile row (64 bytes)                  */
#define BF_TILE (BF_ROWS * BF_K)   /* bf16 per packed item tile: 16 items x 32 dims */
#define BF_BLK 32                  /* a block: 32 users x 32 items (2 x 2 tiles)    */
/* Largest entry magnitude the bf16 copies take without overflow (2^126). */
#define BF_MAX_ENTRY 8.507059173023462e37
#define BF_MAX_DIM ((pv_index)1 << 20)

/* float32 -> bfloat16, round to nearest even (finite x). */
PV_INLINE uint16_t
to_bf16(float x)
{
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    b += 0x7FFFu + ((b >> 16) & 1u);
    return (uint16_t)(b >> 16);
}

PV_INLINE float
from_bf16(uint16_t h)
{
    uint32_t b = (uint32_t)h << 16;
    float x;
    memcpy(&x, &b, sizeof x);
    return x;
}

/* Lanes of the rescoring dot product: its order is fixed here, not by the vectoriser. */
#define BF_LANES 16

/* sum_d u[d] v[d]: lane d % 16 accumulates, then a fixed pairwise tree. */
PV_INLINE float
rescore(pv_index dim, const float *PV_RESTRICT u, const float *PV_RESTRICT v)
{
    float acc[BF_LANES] = {0};
    pv_index d = 0;
    for (; d + BF_LANES <= dim; d += BF_LANES) {
        for (int l = 0; l < BF_LANES; l++) {
            acc[l] += u[d + l] * v[d + l];
        }
    }
    for (int l = 0; d < dim; d++, l++) {
        acc[l] += u[d] * v[d];
    }
    for (int w = BF_LANES / 2; w > 0; w /= 2) {
        for (int l = 0; l < w; l++) {
            acc[l] += acc[l + w];
        }
    }
    return acc[0];
}

PV_HOT float
pv_topk_rescore(pv_index dim, const float *u, const float *v)
{
    return rescore(dim, u, v);
}

/* E(u) of the file comment from ||u||_2, ||u||_1 and the item maxima. */
static double
bf16_bound(pv_index dim, double u2, double u1, double v2max, double v1max)
{
    const double d = 0x1p-8, t = 0x1p-126, n = (double)dim, ur = 0x1p-24;
    const double g2n = 2.0 * n * ur / (1.0 - 2.0 * n * ur);
    const double gn1 = (n + 1.0) * ur / (1.0 - (n + 1.0) * ur);
    const double c1 = 2.0 * d + d * d + g2n * (1.0 + d) * (1.0 + d) + gn1;
    return (1.0 + 0x1p-30) * (c1 * u2 * v2max + t * (3.0 * (u1 + v1max) + 4.0 * n)) + t;
}

/* The largest float <= thr - e (two float steps below the rounded double). */
static float
cut_below(float thr, double e)
{
    float f = (float)((double)thr - e);
    return nextafterf(nextafterf(f, -INFINITY), -INFINITY);
}

#ifdef PV_HAVE_AMX
/* Tile configuration (palette 1): tiles 0-7 all 16 rows x 64 bytes. */
typedef struct {
    uint8_t palette, start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} amx_config;

/* AMX-BF16 in the CPU and the OS's permission for the tile data (Linux >= 5.16). */
static int
amx_available(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d) || !((d >> 22) & 1u) || !((d >> 24) & 1u)) {
        return 0;
    }
    /* ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA: process-wide, idempotent. */
    return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
}

__attribute__((target("amx-tile"))) static void
amx_begin(void)
{
    amx_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.palette = 1;
    for (int t = 0; t < 8; t++) {
        cfg.colsb[t] = 64;
        cfg.rows[t] = BF_ROWS;
    }
    /* GCC does not see ldtilecfg read the struct: make the stores happen. */
    __asm__ volatile("" : : "r"(&cfg) : "memory");
    _tile_loadconfig(&cfg);
}

__attribute__((target("amx-tile"))) static void
amx_end(void)
{
    _tile_release();
}

/*
 * C (32 x 32, ld 32) = A (32 users, ld dpad bf16) x the two packed item tiles at B and
 * B + nkb * BF_TILE: tiles 0-3 accumulate, 4-5 hold users, 6-7 items.
 */
__attribute__((target("amx-tile,amx-bf16"))) static void
block_amx(const uint16_t *A, pv_index dpad, const uint16_t *B, pv_index nkb, float *C)
{
    const size_t lda = (size_t)dpad * sizeof(uint16_t);
    const uint16_t *A1 = A + (size_t)BF_ROWS * (size_t)dpad, *B1 = B + (size_t)nkb * BF_TILE;
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (pv_index kb = 0; kb < nkb; kb++) {
        _tile_loadd(4, A + kb * BF_K, lda);
        _tile_loadd(5, A1 + kb * BF_K, lda);
        _tile_loadd(6, B + kb * BF_TILE, 64);
        _tile_loadd(7, B1 + kb * BF_TILE, 64);
        _tile_dpbf16ps(0, 4, 6);
        _tile_dpbf16ps(1, 4, 7);
        _tile_dpbf16ps(2, 5, 6);
        _tile_dpbf16ps(3, 5, 7);
    }
    _tile_stored(0, C, BF_BLK * sizeof(float));
    _tile_stored(1, C + BF_ROWS, BF_BLK * sizeof(float));
    _tile_stored(2, C + BF_ROWS * BF_BLK, BF_BLK * sizeof(float));
    _tile_stored(3, C + BF_ROWS * BF_BLK + BF_ROWS, BF_BLK * sizeof(float));
}
#endif

#ifdef PV_HAVE_AMX
/*
 * The block with AVX512-BF16: a packed tile row (16 items x one bf16 pair) is exactly
 * vdpbf16ps's second operand, a user's pair broadcast its first; four users share every
 * item load.
 */
__attribute__((target("avx512f,avx512bf16"))) static void
block_avx512bf16(const uint16_t *A, pv_index dpad, const uint16_t *B, pv_index nkb, float *C)
{
    const uint16_t *B1 = B + (size_t)nkb * BF_TILE;
    for (int r = 0; r < BF_BLK; r += 4) {
        __m512 c00 = _mm512_setzero_ps(), c01 = c00, c10 = c00, c11 = c00;
        __m512 c20 = c00, c21 = c00, c30 = c00, c31 = c00;
        const uint16_t *a = A + (size_t)r * (size_t)dpad;
        for (pv_index p = 0; p < dpad / 2; p++) {   /* pair p: dims 2p, 2p + 1 */
            const pv_index off = (p / BF_ROWS) * BF_TILE + (p % BF_ROWS) * BF_K;
            const __m512bh b0 = (__m512bh)_mm512_loadu_si512(B + off);
            const __m512bh b1 = (__m512bh)_mm512_loadu_si512(B1 + off);
            /* A user's pair broadcast straight from memory (a load, no shuffle port). */
#define BF_PAIR(row) ((__m512bh)_mm512_broadcastss_ps(_mm_load_ss((const float *)(row + 2 * p))))
            const __m512bh x0 = BF_PAIR(a), x1 = BF_PAIR(a + dpad);
            const __m512bh x2 = BF_PAIR(a + 2 * dpad), x3 = BF_PAIR(a + 3 * dpad);
#undef BF_PAIR
            c00 = _mm512_dpbf16_ps(c00, x0, b0);
            c01 = _mm512_dpbf16_ps(c01, x0, b1);
            c10 = _mm512_dpbf16_ps(c10, x1, b0);
            c11 = _mm512_dpbf16_ps(c11, x1, b1);
            c20 = _mm512_dpbf16_ps(c20, x2, b0);
            c21 = _mm512_dpbf16_ps(c21, x2, b1);
            c30 = _mm512_dpbf16_ps(c30, x3, b0);
            c31 = _mm512_dpbf16_ps(c31, x3, b1);
        }
        float *o = C + r * BF_BLK;
        _mm512_storeu_ps(o, c00);
        _mm512_storeu_ps(o + BF_ROWS, c01);
        _mm512_storeu_ps(o + BF_BLK, c10);
        _mm512_storeu_ps(o + BF_BLK + BF_ROWS, c11);
        _mm512_storeu_ps(o + 2 * BF_BLK, c20);
        _mm512_storeu_ps(o + 2 * BF_BLK + BF_ROWS, c21);
        _mm512_storeu_ps(o + 3 * BF_BLK, c30);
        _mm512_storeu_ps(o + 3 * BF_BLK + BF_ROWS, c31);
    }
}
#endif

/* Items of the packed tiles at B and B + nkb * BF_TILE as floats, bf[d * 32 + c]. */
static void
unpack_items(const uint16_t *B, pv_index nkb, float *PV_RESTRICT bf)
{
    for (pv_index d = 0; d < nkb * BF_K; d++) {
        const uint16_t *row = B + (d / BF_K) * BF_TILE + ((d % BF_K) / 2) * BF_K + (d % 2);
        for (int c = 0; c < BF_BLK; c++) {
            bf[d * BF_BLK + c] = from_bf16(row[(c / BF_ROWS) * nkb * BF_TILE + 2 * (c % BF_ROWS)]);
        }
    }
}

/* The same block in portable C from unpacked items (float32 sums of bf16 products). */
PV_HOT static void
block_portable(const uint16_t *A, pv_index dpad, const float *PV_RESTRICT bf,
               float *PV_RESTRICT C)
{
    for (int r = 0; r < BF_BLK; r += 4) {   /* four users share every item load */
        float acc[4][BF_BLK] = {{0}};
        const uint16_t *a = A + (size_t)r * (size_t)dpad;
        for (pv_index d = 0; d < dpad; d++) {
            const float x0 = from_bf16(a[d]), x1 = from_bf16(a[dpad + d]);
            const float x2 = from_bf16(a[2 * dpad + d]), x3 = from_bf16(a[3 * dpad + d]);
            const float *b = bf + d * BF_BLK;
            for (int c = 0; c < BF_BLK; c++) {
                acc[0][c] += x0 * b[c];
                acc[1][c] += x1 * b[c];
                acc[2][c] += x2 * b[c];
                acc[3][c] += x3 * b[c];
            }
        }
        memcpy(C + r * BF_BLK, acc, sizeof acc);
    }
}

int
pv_topk_bf16_backend(int max_level)
{
#ifdef PV_HAVE_AMX
    if (max_level >= PV_TOPK_BF16_AMX && amx_available()) {
        return PV_TOPK_BF16_AMX;
    }
    __builtin_cpu_init();
    if (max_level >= PV_TOPK_BF16_AVX512 && __builtin_cpu_supports("avx512bf16")) {
        return PV_TOPK_BF16_AVX512;   /* CPU and OS (xgetbv) */
    }
#endif
    return PV_TOPK_BF16_PORTABLE;
}

/*
 * Pack the items for the B tiles: tile (ib, kb) holds items 16 ib .. 16 ib + 15 and dims
 * 32 kb .. 32 kb + 31 as 16 rows of bf16 pairs, packed[(ib nkb + kb) 512 + r 32 + 2 c + t]
 * = bf16(V[16 ib + c][32 kb + 2 r + t]) (zero outside the table).  Also the largest
 * ||v||_2, ||v||_1 and |entry| over the items.
 */
static void
pack_items(pv_index n_items, pv_index dim, const float *V, pv_index nib, pv_index nkb,
           uint16_t *packed, double *v2max, double *v1max, double *vmax, int n_threads)
{
    double m2 = 0.0, m1 = 0.0, me = 0.0;
#pragma omp parallel for schedule(static) num_threads(n_threads) reduction(max : m2, m1, me)
    for (pv_index ib = 0; ib < nib; ib++) {
        uint16_t *dst = packed + (size_t)ib * (size_t)nkb * BF_TILE;
        memset(dst, 0, (size_t)nkb * BF_TILE * sizeof(uint16_t));
        for (int c = 0; c < BF_ROWS; c++) {
            const pv_index j = ib * BF_ROWS + c;
            if (j >= n_items) {
                break;
            }
            const float *v = V + (size_t)j * (size_t)dim;
            double s2 = 0.0, s1 = 0.0;
            for (pv_index d = 0; d < dim; d++) {
                const double x = fabs((double)v[d]);
                s2 += x * x;
                s1 += x;
                me = x > me ? x : me;
                dst[(d / BF_K) * BF_TILE + ((d % BF_K) / 2) * BF_K + 2 * c + (d % 2)] =
                    to_bf16(v[d]);
            }
            m2 = s2 > m2 ? s2 : m2;
            m1 = s1 > m1 ? s1 : m1;
        }
    }
    *v2max = sqrt(m2);
    *v1max = m1;
    *vmax = me;
}

/* Inputs shared by every chunk of one call. */
typedef struct {
    pv_index n_items, dim, dpad, nkb, k, item_tile;
    const float *user_vecs, *item_vecs;
    const int64_t *excl_indptr, *excl_indices; /* both NULL: no exclusion */
    float mask_value;
    const uint16_t *packed;
    double v2max, v1max;
    int exhaustive;   /* 1: rescore every item (huge entries or dim) */
    int backend;      /* PV_TOPK_BF16_*: how blocks are estimated    */
    int64_t *out_ids;
    float *out_scores;
} bf_args;

/* Per-thread workspace of a chunk of up to uc users. */
typedef struct {
    uint16_t *ubf;    /* (ceil(uc / 32) 32 x dpad) bf16 users, zero padded */
    float *blk;       /* (32 x 32) estimates of one block                   */
    float *bfl;       /* (dpad x 32) one item block unpacked (portable)     */
    float *cut;       /* (uc) per user: skip items with shat < cut          */
    double *bound;    /* (uc) E(u); +inf: rescore every item of this user   */
    int64_t *cursor;  /* (uc) position in the user's sorted exclusion row   */
} bf_work;

/*
 * One user's row of a block (items jb .. jb + nj - 1, estimates in est): mark the
 * excluded items, then rescore and offer every item whose estimate reaches the cut.
 */
PV_INLINE void
scan_block_row(const bf_args *a, pv_index u, float *PV_RESTRICT est, pv_index jb, pv_index nj,
               float *cutp, double bound, int64_t *cursor)
{
    float *hs = a->out_scores + u * a->k;
    int64_t *hi = a->out_ids + u * a->k;
    const int all = a->exhaustive || !(bound < INFINITY);
    if (all) {   /* no estimate is used, and an overflowed one must not look like a mark */
        memset(est, 0, (size_t)nj * sizeof(float));
    }
    if (a->excl_indptr != NULL) {   /* +inf marks an excluded item (estimates are finite) */
        int64_t c = *cursor;
        const int64_t end = a->excl_indptr[u + 1];
        while (c < end && a->excl_indices[c] < jb + nj) {
            est[a->excl_indices[c] - jb] = INFINITY;
            c++;
        }
        *cursor = c;
    }
    float cut = *cutp;
    int any = all;
    if (nj == BF_BLK) {   /* the common case, in fixed-width vector compares */
        for (int t = 0; t < BF_BLK; t++) {
            any |= est[t] >= cut;
        }
    }
    else {
        for (pv_index t = 0; t < nj; t++) {
            any |= est[t] >= cut;
        }
    }
    if (!any) {
        return;
    }
    const float *uvec = a->user_vecs + (size_t)u * (size_t)a->dim;
    for (pv_index t = 0; t < nj; t++) {
        if (!all && !(est[t] >= cut)) {
            continue;
        }
        const float s = est[t] == INFINITY
                            ? a->mask_value
                            : rescore(a->dim, uvec, a->item_vecs + (size_t)(jb + t) * (size_t)a->dim);
        if (s > hs[0]) {
            sift_root(hs, hi, a->k, s, jb + t);
            cut = cut_below(hs[0], bound);
        }
    }
    *cutp = cut;
}

/*
 * Users u0 .. u0 + m - 1: bf16 copies and bounds, then every (item tile, block).
 * Cloned per ISA level with the scan and the rescoring inlined (the same clone as
 * pv_topk_rescore's on a given machine, so the same bits).
 */
PV_HOT static void
rank_chunk_bf16(const bf_args *a, pv_index u0, pv_index m, const bf_work *w)
{
    const pv_index dim = a->dim, dpad = a->dpad, k = a->k;
    const pv_index m_pad = (m + BF_BLK - 1) / BF_BLK * BF_BLK;
    for (pv_index r = 0; r < m_pad; r++) {
        uint16_t *dst = w->ubf + (size_t)r * (size_t)dpad;
        memset(dst, 0, (size_t)dpad * sizeof(uint16_t));
        if (r >= m) {
            continue;
        }
        const float *u = a->user_vecs + (size_t)(u0 + r) * (size_t)dim;
        double s2 = 0.0, s1 = 0.0, me = 0.0;
        for (pv_index d = 0; d < dim; d++) {
            const double x = fabs((double)u[d]);
            s2 += x * x;
            s1 += x;
            me = x > me ? x : me;
            dst[d] = to_bf16(u[d]);
        }
        w->bound[r] = me >= BF_MAX_ENTRY ? INFINITY
                                         : bf16_bound(dim, sqrt(s2), s1, a->v2max, a->v1max);
        w->cut[r] = -INFINITY;
        heap_reset(a->out_scores + (u0 + r) * k, a->out_ids + (u0 + r) * k, k);
        if (a->excl_indptr != NULL) {
            w->cursor[r] = a->excl_indptr[u0 + r];
        }
    }
    for (pv_index j0 = 0; j0 < a->n_items; j0 += a->item_tile) {
        const pv_index jend = a->n_items - j0 < a->item_tile ? a->n_items : j0 + a->item_tile;
        /* Item blocks outside, user blocks inside: each user still meets its items in
         * ascending id order, and the portable path unpacks each item block once. */
        for (pv_index jb = j0; jb < jend; jb += BF_BLK) {
            const pv_index nj = jend - jb < BF_BLK ? jend - jb : BF_BLK;
            const uint16_t *B = a->packed + (size_t)(jb / BF_ROWS) * (size_t)a->nkb * BF_TILE;
            if (!a->exhaustive && a->backend == PV_TOPK_BF16_PORTABLE) {
                unpack_items(B, a->nkb, w->bfl);
            }
            for (pv_index r0 = 0; r0 < m; r0 += BF_BLK) {
                const pv_index mr = m - r0 < BF_BLK ? m - r0 : BF_BLK;
                const uint16_t *A = w->ubf + (size_t)r0 * (size_t)dpad;
                if (a->exhaustive) {
                    /* nothing to estimate: scan_block_row clears the rows */
                }
#ifdef PV_HAVE_AMX
                else if (a->backend == PV_TOPK_BF16_AMX) {
                    block_amx(A, dpad, B, a->nkb, w->blk);
                }
                else if (a->backend == PV_TOPK_BF16_AVX512) {
                    block_avx512bf16(A, dpad, B, a->nkb, w->blk);
                }
#endif
                else {
                    block_portable(A, dpad, w->bfl, w->blk);
                }
                for (pv_index r = 0; r < mr; r++) {
                    scan_block_row(a, u0 + r0 + r, w->blk + r * BF_BLK, jb, nj,
                                   w->cut + r0 + r, w->bound[r0 + r], w->cursor + r0 + r);
                }
            }
        }
    }
    for (pv_index r = 0; r < m; r++) {
        sort_heap(a->out_scores + (u0 + r) * k, a->out_ids + (u0 + r) * k, k);
    }
}

static void *
bf_alloc(size_t bytes)
{
    void *p = NULL;
    return posix_memalign(&p, 64, bytes > 0 ? bytes : 64) == 0 ? p : NULL;
}

pv_status
pv_topk_bf16_f32(pv_index n_users, pv_index n_items, pv_index dim,
                 const float *PV_RESTRICT user_vecs, const float *PV_RESTRICT item_vecs,
                 const int64_t *PV_RESTRICT excl_indptr,
                 const int64_t *PV_RESTRICT excl_indices, float mask_value, pv_index k,
                 pv_index user_chunk, pv_index item_tile, int max_level,
                 int64_t *PV_RESTRICT out_ids, float *PV_RESTRICT out_scores, int n_threads)
{
    pv_status st = pv_topk_validate(n_users, n_items, dim, user_vecs, item_vecs, excl_indptr,
                                    excl_indices, mask_value, k, &n_threads);
    if (st != PV_OK || n_users == 0) {
        return st;
    }
    /* Blocks change no bit here (every user's result is exact), only the speed. */
    const pv_index uc = pv_topk_chunk_rows(n_users, user_chunk);
    pv_index it = item_tile > 0 ? item_tile : PV_TOPK_ITEM_TILE;
    it = (it + BF_BLK - 1) / BF_BLK * BF_BLK;
    const pv_index nkb = (dim + BF_K - 1) / BF_K, dpad = nkb * BF_K;
    const pv_index nib = (n_items + BF_BLK - 1) / BF_BLK * (BF_BLK / BF_ROWS);
    const pv_index uc_pad = (uc + BF_BLK - 1) / BF_BLK * BF_BLK;
    const pv_index n_chunks = (n_users + uc - 1) / uc;
    const int team = n_chunks < n_threads ? (int)n_chunks : n_threads;
    const double packed_bytes = (double)nib * (double)nkb * BF_TILE * sizeof(uint16_t);
    const size_t ubf_bytes = (size_t)uc_pad * (size_t)dpad * sizeof(uint16_t);
    /* Per thread: ubf, blk, bfl, bound, cursor, cut (offsets multiples of 8), to 64. */
    const size_t head_bytes = ubf_bytes + BF_BLK * BF_BLK * sizeof(float) +
                              (size_t)dpad * BF_BLK * sizeof(float);
    const size_t per_thread = (head_bytes +
                               (size_t)uc * (sizeof(double) + sizeof(int64_t) + sizeof(float)) +
                               63u) / 64u * 64u;
    if (packed_bytes > 0.25 * (double)SIZE_MAX || (double)per_thread * team > 0.25 * (double)SIZE_MAX) {
        return PV_ERANGE;
    }
    uint16_t *packed = bf_alloc((size_t)packed_bytes);
    char *work = bf_alloc(per_thread * (size_t)team);
    if (packed == NULL || work == NULL) {
        free(packed);
        free(work);
        return PV_ENOMEM;
    }
    double v2max, v1max, vmax;
    pack_items(n_items, dim, item_vecs, nib, nkb, packed, &v2max, &v1max, &vmax, n_threads);
    const int backend = pv_topk_bf16_backend(max_level);
    const int amx = backend == PV_TOPK_BF16_AMX;
    const bf_args a = {n_items, dim, dpad, nkb, k, it, user_vecs, item_vecs, excl_indptr,
                       excl_indices, mask_value, packed, v2max, v1max,
                       vmax >= BF_MAX_ENTRY || dim > BF_MAX_DIM, backend, out_ids, out_scores};
#pragma omp parallel num_threads(team)
    {
        char *base = work + (size_t)PV_OMP_THREAD_ID() * per_thread;
        bf_work w;
        w.ubf = (uint16_t *)base;
        w.blk = (float *)(base + ubf_bytes);
        w.bfl = w.blk + BF_BLK * BF_BLK;
        w.bound = (double *)(base + head_bytes);
        w.cursor = (int64_t *)(w.bound + uc);
        w.cut = (float *)(w.cursor + uc);
#ifdef PV_HAVE_AMX
        if (amx) {
            amx_begin();
        }
#endif
#pragma omp for schedule(dynamic, 1)
        for (pv_index c = 0; c < n_chunks; c++) {
            const pv_index u0 = c * uc;
            rank_chunk_bf16(&a, u0, n_users - u0 < uc ? n_users - u0 : uc, &w);
        }
#ifdef PV_HAVE_AMX
        if (amx) {
            amx_end();
        }
#endif
    }
    free(packed);
    free(work);
    return PV_OK;
}
