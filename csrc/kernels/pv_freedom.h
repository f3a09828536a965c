/*
 * pv_freedom.h -- FREEDOM (Zhou and Shen, ACM MM 2023): a frozen item-item graph
 * and a denoised user-item graph.
 *
 * Nodes as LightGCN's (users, then items); E0 (n_nodes x dim) and the
 * modality projections W (dim x n_feat: modality m uses its columns
 * [cols[m], cols[m+1])) are the parameters.  Per batch of triples (u, i, j):
 *     h   = S^Lm E0_items                       (frozen item-item graph S)
 *     E   = 1/(L+1) sum_l A^l E0                (A: this epoch's pruned,
 *                                                 normalised user-item graph)
 *     e_u = E_u,  e_i = E_i + h_i
 *     L   = 1/B sum_r softplus(-(<e_u, e_i> - <e_u, e_j>))
 *         + align * sum_m 1/B sum_r softplus(-<e_u, W_m (x_i - x_j)>)
 * as MMRec's FREEDOM.calculate_loss (the projections' biases cancel in the
 * difference and are left out; align is its reg_weight).  The gradient goes
 * back through A^T = A (pv_propagate_f32) and through S^T, which the caller
 * passes as its own CSR because S is not symmetric.  Reductions have a fixed
 * order: bit-identical results at any thread count.
 */
#ifndef PV_FREEDOM_H
#define PV_FREEDOM_H

#include "pv_graph.h"
#include "pv_optim.h"

typedef struct {
    const pv_graph *ui;          /* n_users + n_items nodes, symmetric          */
    const pv_graph *ii, *ii_t;   /* n_items nodes: S and its transpose          */
    pv_index n_users, n_items, dim, n_ui_layers, n_ii_layers;
    pv_index n_feat, n_mod;
    const int64_t *cols;         /* n_mod + 1 column bounds of the modalities   */
    const float *X;              /* n_items x n_feat                            */
    float align;
} pv_freedom_model;

/* Floats of workspace pv_freedom_batch_f32 needs. */
pv_index pv_freedom_workspace_f32(const pv_freedom_model *m, pv_index B);

/*
 * Loss and gradients (gE0: n_nodes x dim, gW: dim x n_feat, both overwritten)
 * of one batch of B triples (item ids, trusted).  PV_ERANGE when a GEMM size
 * exceeds the BLAS integer.
 */
pv_status pv_freedom_batch_f32(const pv_freedom_model *m, const float *E0, const float *W,
                               pv_index B, const int64_t *users, const int64_t *pos,
                               const int64_t *neg, float *gE0, float *gW, double *loss,
                               float *work, int n_threads);

/* One epoch (pv_bpr_epoch), each batch followed by one Adam step on E0 and W. */
pv_status pv_freedom_epoch_f32(const pv_freedom_model *m, const pv_opt *opt, float *E0, float *W,
                               float *E0_m1, float *E0_m2, float *W_m1, float *W_m2,
                               pv_index n_pairs, const int64_t *pair_users,
                               const int64_t *pair_items, pv_index B, uint64_t seed,
                               uint32_t epoch, int64_t *step, double *loss, pv_index *n_batches,
                               int n_threads);

#endif /* PV_FREEDOM_H */
