/*
 * pv_vbpr.h -- VBPR (He and McAuley, AAAI 2016): BPR with a content branch.
 *
 * Score of user u for item i, with f_i the item's features (all modalities,
 * n_feat columns; the paper's visual features):
 *     s_ui = b_i + <gamma_u, gamma_i> + <theta_u, E f_i> + <beta', f_i>
 * (the global and user offsets of the paper cancel in BPR and are left out).
 * gamma_u, gamma_i: k; theta_u: k2; E: k2 x n_feat; beta': n_feat.
 *
 * Batch loss over triples (u, i, j), x_r = s_ui - s_uj, delta_r = f_i - f_j:
 *     L = 1/B sum_r softplus(-x_r)
 *       + lam / (2B) sum_r (||gamma_u||^2 + ||theta_u||^2 + ||gamma_i||^2 + ||gamma_j||^2)
 *       + lam_b / (2B) sum_r (b_i^2 + b_j^2) + lam_e / 2 (||E||^2 + ||beta'||^2)
 * With c_r = dL/dx_r = -sigmoid(-x_r) / B the data gradients are
 *     gamma_u: c (gamma_i - gamma_j)   theta_u: c E delta   gamma_i: c gamma_u
 *     gamma_j: -c gamma_u   b_i: c   b_j: -c
 *     E: sum_r c_r theta_u delta_r^T   beta': sum_r c_r delta_r.
 * E delta_r for the whole batch and the E gradient are GEMMs in fixed blocks
 * (pv_gemm_blocked_f32); row scatters run in triple order on one thread and
 * the beta' sums column by column in triple order: bit-identical at any
 * thread count.
 */
#ifndef PV_VBPR_H
#define PV_VBPR_H

#include "pv_optim.h"

/* The six trainable tables (parameters, gradients or optimiser moments). */
typedef struct {
    float *gamma_u; /* n_users x k   */
    float *theta_u; /* n_users x k2  */
    float *gamma_i; /* n_items x k   */
    float *bias;    /* n_items       */
    float *E;       /* k2 x n_feat   */
    float *beta;    /* n_feat        */
} pv_vbpr_tensors;

typedef struct {
    pv_index n_users, n_items, k, k2, n_feat;
    pv_vbpr_tensors p;
    const float *X; /* n_items x n_feat features */
    float lam, lam_b, lam_e;
} pv_vbpr_model;

/* Floats of workspace pv_vbpr_batch_f32 needs. */
pv_index pv_vbpr_workspace_f32(const pv_vbpr_model *m, pv_index B);

/*
 * Loss (*loss) and gradient of one batch of B triples into grad (every table
 * overwritten; rows outside the batch get the L2 part only, i.e. 0 for the
 * row tables).  Ids are trusted: users in [0, n_users), pos/neg in [0, n_items).
 * PV_ERANGE when a GEMM size exceeds the BLAS integer.
 */
pv_status pv_vbpr_batch_f32(const pv_vbpr_model *m, pv_index B, const int64_t *users,
                            const int64_t *pos, const int64_t *neg, pv_vbpr_tensors *grad,
                            double *loss, float *work, int n_threads);

/*
 * One epoch (pv_bpr_epoch), each batch followed by one Adam step on every
 * table (m1, m2: the moments; PyTorch's Adam, whose step touches every row).
 */
pv_status pv_vbpr_epoch_f32(pv_vbpr_model *m, const pv_opt *opt, pv_vbpr_tensors *m1,
                            pv_vbpr_tensors *m2, pv_index n_pairs, const int64_t *pair_users,
                            const int64_t *pair_items, pv_index B, uint64_t seed,
                            uint32_t epoch, int64_t *step, double *loss, pv_index *n_batches,
                            int n_threads);

#endif /* PV_VBPR_H */
