/*
 * pv_lgcn.h -- LightGCN (He et al., SIGIR 2020): BPR on propagated embeddings.
 *
 * Nodes are the users 0..n_users-1 followed by the items n_users..n_nodes-1;
 * E0 (n_nodes x dim) holds the layer-0 embeddings of both, the only
 * parameters.  The graph is the symmetric-normalised user-item adjacency
 * A = D^-1/2 R D^-1/2 (pv_graph.h), so A^T = A.
 *
 * Batch loss over triples (u, i, j), i a training item of u and j a negative:
 *     E   = 1/(L+1) sum_l A^l E0                             (pv_propagate_f32)
 *     x_r = <E_u, E_i> - <E_u, E_j>
 *     L   = 1/B sum_r softplus(-x_r)
 *         + reg / (2B) sum_r (||E0_u||^2 + ||E0_i||^2 + ||E0_j||^2)
 * as the authors' code (LightGCN-PyTorch: bpr_loss, with weight decay on the
 * layer-0 rows of the batch).  Gradient: dL/dE (rows of the batch, scattered
 * in triple order by one thread) propagated back by A^T = A, plus reg / B * E0
 * on the batch rows.  Every sum has a fixed order: bit-identical results at
 * any thread count.
 */
#ifndef PV_LGCN_H
#define PV_LGCN_H

#include "pv_graph.h"
#include "pv_optim.h"

typedef struct {
    const pv_graph *graph;
    pv_index n_users, n_items, dim, n_layers;
    float reg;
} pv_lgcn_model;

/* Floats of workspace pv_lgcn_batch_f32 needs: 4 * n_nodes * dim + 2 * B. */
pv_index pv_lgcn_workspace_f32(const pv_lgcn_model *m, pv_index B);

/*
 * Loss (*loss) and gradient dL/dE0 (gE0, n_nodes x dim, overwritten) of one
 * batch of B triples: users[r] in [0, n_users), pos[r] and neg[r] item ids in
 * [0, n_items) (not node ids).  work: pv_lgcn_workspace_f32 floats.  Ids are
 * trusted (the epoch checks them; the binding checks them for tests).
 */
pv_status pv_lgcn_batch_f32(const pv_lgcn_model *m, const float *E0, pv_index B,
                            const int64_t *users, const int64_t *pos, const int64_t *neg,
                            float *gE0, double *loss, float *work, int n_threads);

/*
 * One epoch (pv_bpr_epoch: shuffled pairs, one uniform negative each, batches
 * of B), each batch followed by one Adam step on the whole of E0 (state m1,
 * m2; PyTorch's Adam, whose step touches every row).  *step counts Adam steps across epochs;
 * *loss is the sum of the batch losses, *n_batches their number.
 */
pv_status pv_lgcn_epoch_f32(const pv_lgcn_model *m, const pv_opt *opt, float *E0, float *m1,
                            float *m2, pv_index n_pairs, const int64_t *pair_users,
                            const int64_t *pair_items, pv_index B, uint64_t seed, uint32_t epoch,
                            int64_t *step, double *loss, pv_index *n_batches, int n_threads);

#endif /* PV_LGCN_H */
