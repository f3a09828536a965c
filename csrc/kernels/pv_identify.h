/*
 * pv_identify.h -- heterogeneous environment identification (method.md §2.1, §10).
 *
 * k-means with one backbone per environment as the "centroid": every round
 * trains a fresh model on each environment's interactions (all E models start
 * from the same initial weights, as the reference re-seeds each one), scores
 * every training interaction under every model, and moves each interaction to
 * the environment whose model scores it highest (argmax score = argmin BCE of a
 * positive).  Rounds stop when at most `tol_changes` labels change, or after
 * max_rounds.  Environments with no interactions take no part in the argmax.
 *
 * The E models of a round are independent, so they train in parallel, one per
 * thread (their own kernels then run single-threaded); results do not depend
 * on the thread count.
 */
#ifndef PV_IDENTIFY_H
#define PV_IDENTIFY_H

#include "pv_train.h"

typedef struct {
    pv_rec_dims dims;           /* n_users, n_items, d_id, d_c, n_feat */
    const float *X, *beta_u, *beta_i;
    float w[4];
    pv_opt emb, proj;           /* reference: Adagrad(1e-3) on U, V; Adam(1e-3) on W, b */
    pv_rec_reg reg;
    float wd1, wdi, wd2;        /* reference: 1e-4, 2, 0.01 */
    float l1;                   /* weight of mean |W o m_prev| (reference: wd2) */
    const float *mask_prev;     /* D, or NULL in the first outer iteration */
    int bias;
    float init_std;             /* reference: 0.01 */
    pv_index batch, n_neg, epochs;
} pv_identify_config;

/*
 * labels: in, the initial environment of each pair (in [0, n_envs)); out, the
 * final ones.  changes[r], sizes[r * n_envs + e]: the labels changed and the
 * environment sizes after round r (arrays of max_rounds rows).  *n_rounds:
 * rounds run.  scores (optional, n_envs x n_pairs): the last round's scores.
 * Status: PV_OK, PV_EINVAL, PV_EINDEX, PV_ENOMEM, PV_EDOM, PV_ERANGE.
 */
pv_status pv_identify(const pv_identify_config *cfg, pv_index n_pairs, const int64_t *users,
                      const int64_t *items, pv_index n_envs, pv_index max_rounds,
                      pv_index tol_changes, uint64_t seed, int64_t *labels, int64_t *changes,
                      int64_t *sizes, pv_index *n_rounds, float *scores, int n_threads);

#endif /* PV_IDENTIFY_H */
