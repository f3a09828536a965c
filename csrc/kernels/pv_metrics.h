/*
 * pv_metrics.h -- ranking metrics from top-k lists and a ground-truth CSR.
 */
#ifndef PV_METRICS_H
#define PV_METRICS_H

#include "pv_common.h"

/* Columns of the per-user output, in this order. */
enum {
    PV_MET_PRECISION = 0,  /* hits / K                                        */
    PV_MET_RECALL = 1,     /* hits / |T|                                      */
    PV_MET_NDCG = 2,       /* DCG / IDCG, IDCG over min(|T|, K) positions      */
    PV_MET_NDCG_INVRL = 3, /* DCG / IDCG, IDCG over min(hits, K) (0 if no hit) */
    PV_MET_HIT_RATE = 4,   /* 1 if hits > 0                                   */
    PV_MET_MAP = 5,        /* sum_{hit r<K} precision@(r+1) / min(|T|, K)      */
    PV_MET_COUNT = 6
};

/*
 * pv_ranking_metrics_f64 -- per-user precision, recall, NDCG (standard and
 * the InvRL reference's variant), hit rate and MAP at several cut-offs.
 *
 * Shapes:  topk_ids (n_users x kmax) int64, best first; -1 marks an empty
 *          slot (never a hit), other ids must lie in [0, n_items).
 *          test_indptr (n_users + 1), test_indices: int64 CSR of the relevant
 *          items T_u of row u, each row strictly increasing (distinct).
 *          ks (n_ks) int64, each in [1, kmax], any order.
 *          out (n_users x n_ks x PV_MET_COUNT) float64, columns as above.
 * Definitions: hits = |{r < K : topk_ids[u, r] in T_u}|, the DCG is
 *          sum over those r of 1 / log2(r + 2), summed in rank order.  A row
 *          with |T_u| = 0 gets NaN in every column.
 * Threads: rows are split over n_threads (<= 0: pv_default_threads()); every
 *          value depends on its own row only, so the result does not depend
 *          on the thread count.
 * Aliasing: out must not overlap the inputs.
 * Complexity: O(n_users * kmax * log |T_u|) + O(n_users * n_ks); workspace
 *          O(kmax + n_threads * (kmax + max |T_u|)) allocated once.
 * Status:  PV_EINVAL  kmax < 1, n_ks < 1, a K outside [1, kmax], a bad indptr,
 *                     an unsorted / repeated test row, or a relevant item
 *                     listed twice in one top-k row;
 *          PV_EINDEX  a top-k id outside [-1, n_items) or a test id outside
 *                     [0, n_items);
 *          PV_ENOMEM  workspace allocation failed.
 */
pv_status pv_ranking_metrics_f64(pv_index n_users, pv_index kmax, pv_index n_items,
                                 const int64_t *PV_RESTRICT topk_ids,
                                 const int64_t *PV_RESTRICT test_indptr,
                                 const int64_t *PV_RESTRICT test_indices, pv_index n_ks,
                                 const int64_t *PV_RESTRICT ks, double *PV_RESTRICT out,
                                 int n_threads);

#endif /* PV_METRICS_H */
