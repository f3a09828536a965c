/*
 * impl/pv_topk_heap.h -- the bounded min-heap of the top-k kernels (pv_topk.c,
 * pv_topk_bf16.c): k (score, id) slots living in a user's output row, worst at
 * the root, equal scores ranked by ascending id; and the checks both kernels share.
 */
#ifndef PV_TOPK_HEAP_H
#define PV_TOPK_HEAP_H

#include "../pv_common.h"

/* (sa, ia) ranks below (sb, ib): lower score, or equal score and larger id. */
PV_INLINE int
worse(float sa, int64_t ia, float sb, int64_t ib)
{
    return sa < sb || (sa == sb && ia > ib);
}

/* Put (s, id) at the root of the min-heap hs/hi of size n and sift it down. */
PV_INLINE void
sift_root(float *PV_RESTRICT hs, int64_t *PV_RESTRICT hi, pv_index n, float s, int64_t id)
{
    pv_index i = 0;
    for (;;) {
        pv_index c = 2 * i + 1;
        if (c >= n) {
            break;
        }
        if (c + 1 < n && worse(hs[c + 1], hi[c + 1], hs[c], hi[c])) {
            c++;
        }
        if (!worse(hs[c], hi[c], s, id)) {
            break;
        }
        hs[i] = hs[c];
        hi[i] = hi[c];
        i = c;
    }
    hs[i] = s;
    hi[i] = id;
}

/* Fill a heap with k sentinels (-inf, -1): unfilled slots come out as padding. */
PV_INLINE void
heap_reset(float *PV_RESTRICT hs, int64_t *PV_RESTRICT hi, pv_index k)
{
    for (pv_index t = 0; t < k; t++) {
        hs[t] = -INFINITY;
        hi[t] = -1;
    }
}

/* Heap sort in place: afterwards the row is best first (score desc, id asc). */
static inline void
sort_heap(float *PV_RESTRICT hs, int64_t *PV_RESTRICT hi, pv_index k)
{
    for (pv_index end = k - 1; end > 0; end--) {
        float s = hs[end];
        int64_t id = hi[end];
        hs[end] = hs[0];
        hi[end] = hi[0];
        sift_root(hs, hi, end, s, id);
    }
}

/* Argument, exclusion and magnitude checks shared by pv_topk_f32 and pv_topk_bf16_f32;
 * *n_threads <= 0 becomes pv_default_threads().  PV_OK for n_users == 0.  In pv_topk.c. */
pv_status pv_topk_validate(pv_index n_users, pv_index n_items, pv_index dim,
                           const float *user_vecs, const float *item_vecs,
                           const int64_t *excl_indptr, const int64_t *excl_indices,
                           float mask_value, pv_index k, int *n_threads);

/* Users per chunk (n_users >= 1): the blocking rule of pv_topk.h.  In pv_topk.c. */
pv_index pv_topk_chunk_rows(pv_index n_users, pv_index user_chunk);

#endif /* PV_TOPK_HEAP_H */
