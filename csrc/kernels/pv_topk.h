/*
 * pv_topk.h -- full-ranking top-k by dot product, blocked over users and items.
 *
 * For every user row u the kernel returns the k items j with the largest
 * score <user_vecs[u], item_vecs[j]>, best first, ties broken by the lower
 * item id.  Scores are computed one (user chunk x item tile) block at a time
 * with a single sgemm per block, so memory stays at n_threads * user_chunk *
 * item_tile floats plus the outputs whatever the catalogue size.
 */
#ifndef PV_TOPK_H
#define PV_TOPK_H

#include "pv_common.h"

/* Default block sizes (tuned on the TikTok shape, 128-d, 2 cores). */
#define PV_TOPK_USER_CHUNK 512
#define PV_TOPK_ITEM_TILE 2048
/* user_chunk is capped at max(PV_TOPK_MIN_CHUNK, ceil(n_users / PV_TOPK_SPLIT)). */
#define PV_TOPK_MIN_CHUNK 64
#define PV_TOPK_SPLIT 16

/*
 * pv_topk_f32 -- top-k items per user by dot product, with optional exclusion.
 *
 * Shapes:  user_vecs (n_users x dim), item_vecs (n_items x dim): float32,
 *          row-major, contiguous.
 *          excl_indptr (n_users + 1), excl_indices (excl_indptr[n_users]):
 *          int64 CSR of the items excluded for each user, each row sorted
 *          non-decreasing (duplicates are harmless).  Both NULL: no exclusion.
 *          out_ids (n_users x k) int64, out_scores (n_users x k) float32.
 * Exclusion: the score of every excluded (u, j) is replaced by mask_value.
 *          mask_value = -INFINITY means "never returned": when a user has
 *          fewer than k other items, the tail of the row is padded with id -1
 *          and score -INFINITY.  A finite mask_value (the InvRL reference
 *          uses 1e-5) makes the item compete with that score.
 * Order:   rows of out_* are sorted by descending score, equal scores by
 *          ascending item id.
 * Blocking: users are cut into chunks of
 *          min(user_chunk, max(PV_TOPK_MIN_CHUNK, ceil(n_users / PV_TOPK_SPLIT)))
 *          rows (user_chunk <= 0: PV_TOPK_USER_CHUNK), items into tiles of
 *          item_tile (<= 0: PV_TOPK_ITEM_TILE; clamped to n_items).  The chunks
 *          are shared dynamically over n_threads OpenMP threads (<= 0:
 *          pv_default_threads()); each is ranked start to finish by one thread,
 *          with one sgemm per tile into that thread's own workspace.  The sgemm
 *          runs inside the parallel region, so an OpenMP OpenBLAS runs it
 *          single-threaded; the CBLAS must be safe to call from several threads
 *          at once (OpenBLAS is).
 * Determinism: the blocks do not depend on n_threads, so the result is
 *          bit-identical for any thread count.  Other block sizes may change
 *          the last bits of scores (BLAS code paths differ for tiny m or n) and
 *          hence the order of near-ties.
 * Aliasing: outputs must not overlap the inputs or each other.
 * Complexity: O(n_users * n_items * dim) flops (sgemm) + O(n_users * n_items)
 *          comparisons + O(n_users * k log k) heap work in the worst case;
 *          memory min(n_threads, n_chunks) * user_chunk * item_tile floats
 *          (+ one int64 cursor per chunk row when excluding), allocated once.
 * Status:  PV_EINVAL  k < 1, k > n_items, dim < 1, n_users < 0, mask_value NaN
 *                     or +inf, indptr not starting at 0 / decreasing, a row of
 *                     excl_indices not sorted, or only one of the CSR arrays given;
 *          PV_EINDEX  an excluded item id outside [0, n_items);
 *          PV_EDOM    a non-finite vector entry, or vectors so large that a
 *                     score could overflow float32;
 *          PV_ERANGE  a block size or dim beyond the BLAS integer range;
 *          PV_ENOMEM  the score workspace could not be allocated.
 */
pv_status pv_topk_f32(pv_index n_users, pv_index n_items, pv_index dim,
                      const float *PV_RESTRICT user_vecs, const float *PV_RESTRICT item_vecs,
                      const int64_t *PV_RESTRICT excl_indptr,
                      const int64_t *PV_RESTRICT excl_indices, float mask_value, pv_index k,
                      pv_index user_chunk, pv_index item_tile, int64_t *PV_RESTRICT out_ids,
                      float *PV_RESTRICT out_scores, int n_threads);

/*
 * pv_topk_bf16_f32 -- the same top-k, exact in float32, with a bfloat16 prefilter.
 *
 * Arguments, exclusion, padding, order and status as pv_topk_f32 (PV_ENOMEM also for
 * the packed item copy below).  Scores are s(u, j) = the float32 dot product of
 * pv_topk_rescore (one fixed order; not sgemm's, so its last bits may differ from
 * pv_topk_f32's and near-ties within float32 rounding may be ordered differently).
 * The result is exactly the top-k of s over all items (excluded items scoring
 * mask_value), whatever n_threads, user_chunk and item_tile.
 *
 * How: both sides are rounded to bfloat16 (round to nearest even) and every score is
 * first estimated as shat (float32 accumulation of the bf16 products: AMX tiles where
 * the CPU and OS offer AMX-BF16, else AVX512-BF16 dot products where they offer those, else
 * a portable loop; max_level, a PV_TOPK_BF16_* value, caps the choice, for comparisons).  Item j is rescored in float32
 * and offered to the user's heap only when shat(u, j) >= thr - E(u), thr being the
 * heap's current k-th exact score.  The bound (proof in pv_topk_bf16.c)
 *     |shat(u, j) - s(u, j)| <= E(u) = (1 + 2^-30) (c1 ||u||_2 max_j ||v_j||_2
 *                                       + 2^-126 (3 (||u||_1 + max_j ||v_j||_1) + 4 dim))
 *                                       + 2^-126,
 *     c1 = 2 d + d^2 + g(2 dim) (1 + d)^2 + g(dim + 1),  d = 2^-8,  g(n) = n 2^-24 / (1 - n 2^-24)
 * makes a skipped item's exact score < thr <= the final k-th score, so it could not be
 * in the result.  Vectors with an entry of magnitude >= 2^126 (bf16 could overflow)
 * or dim > 2^20 rescore every item (same result, no speed-up).
 * Memory: 2 * ceil(n_items / 32) * 32 * ceil(dim / 32) * 32 bytes of packed items,
 * plus per thread a bf16 user chunk, a 32 x 32 float block and 32 items in float32.
 */
pv_status pv_topk_bf16_f32(pv_index n_users, pv_index n_items, pv_index dim,
                           const float *PV_RESTRICT user_vecs,
                           const float *PV_RESTRICT item_vecs,
                           const int64_t *PV_RESTRICT excl_indptr,
                           const int64_t *PV_RESTRICT excl_indices, float mask_value,
                           pv_index k, pv_index user_chunk, pv_index item_tile,
                           int max_level, int64_t *PV_RESTRICT out_ids,
                           float *PV_RESTRICT out_scores, int n_threads);

/* The float32 score of pv_topk_bf16_f32: sum_d u[d] v[d] in one fixed order. */
float pv_topk_rescore(pv_index dim, const float *u, const float *v);

/* The estimators of pv_topk_bf16_f32, slowest first. */
enum { PV_TOPK_BF16_PORTABLE = 0, PV_TOPK_BF16_AVX512 = 1, PV_TOPK_BF16_AMX = 2 };
/* The fastest estimator, at most max_level, that this machine (CPU and OS) offers now. */
int pv_topk_bf16_backend(int max_level);

#endif /* PV_TOPK_H */
