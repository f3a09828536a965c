/*
 * pv_train.h -- one training epoch of the backbone (method.md §1, §5.1), float32.
 *
 * The epoch visits the training pairs in a Philox permutation (stream
 * SHUFFLE, counter = epoch), cuts it into batches of `batch` positives, draws
 * n_neg uniform negatives per positive (with replacement, not filtered, as the
 * reference; stream NEGATIVE, counter = (epoch, position, k)), computes the
 * batch gradient (pv_rec_batch_f32) and applies the optimisers:
 *   reg = PV_REG_FULL:  L2 on every row of U and V every step, so every row takes
 *                       an optimiser step every batch (the reference code's
 *                       behaviour); the steps of rows a batch does not touch are
 *                       deferred and replayed exactly (pv_opt_lazy_rows_f32);
 *   reg = PV_REG_BATCH: L2 and the optimiser step only on the rows the batch
 *                       touches (lazy update: untouched rows keep their
 *                       moments and do not move);
 *   reg = PV_REG_NONE:  as BATCH without the L2 term.
 * W and b are small and always take a dense step with L2 weight wd2 (unless
 * reg is NONE).  Optional L1 term of the environment models (§2.1):
 *   l1 * mean_{k,d} |W[k,d] * mask[d]|.
 * A seed and epoch give the same result whatever n_threads.
 *
 * Final recommender (method.md §4.2): when model->convert is not NULL, the item
 * content vector is the convert module's fused h_i (pv_convert_batch_f32, with the
 * fixed mask; model->g is then ignored) and the epoch also trains, with the
 * projection optimiser (dense, like W and b): the variant projection W_var, b_var
 * (when given; L2 weight wd2) and the fusion's parameters with their own L2 weight
 * convert->l2 (A, c, q for ATTENTION, omega for GLOBAL, none for INVARIANT; no L2
 * at all when reg is NONE).  The fusion's L2 is its own because an L2 that outweighs
 * the loss's gradient pulls the attention to its symmetric point a_inv = a_var = 1/2
 * (method.md §4.2 erratum).  U and V follow reg exactly as for the backbone; the shuffle,
 * negatives and step count are the same.  With convert NULL the backbone path is
 * unchanged (bit for bit).  Cost per batch: pv_convert_batch_f32's (ATTENTION
 * projects the batch's distinct items, ~20k on TikTok-size data: ~100 ms per
 * 512 x 51 batch on 2 cores; GLOBAL and INVARIANT cost what the backbone does)
 * plus the workspace for min(batch * (1 + n_neg), n_items) item slots.
 */
#ifndef PV_TRAIN_H
#define PV_TRAIN_H

#include "pv_convert.h"
#include "pv_optim.h"
#include "pv_rec.h"

/*
 * The convert part of the final recommender.  Parameters and Adam states are
 * updated in place; the ones the fusion does not use are ignored (may be NULL):
 *   ATTENTION: A (d_a x d_c), c (d_a), q (d_a) and A1/A2, c1/c2, q1/q2;
 *   GLOBAL:    omega (2: omega_inv, omega_var) and omega1/omega2;
 *   INVARIANT: nothing (h = W (m o x) + b, InvRL's final model).
 * W_var (d_c x n_feat) NULL: the model's W is shared by both halves; else the variant
 * projection (ATTENTION and GLOBAL), with W_var1/W_var2 and, exactly when the model has
 * b, b_var (d_c) with b_var1/b_var2.
 * The mask (n_feat, values in [0, 1]) is fixed.  The projection optimiser
 * cfg->proj steps them; the states are its first (...1: Adam's m) and second
 * (...2: Adam's v, unused by Adagrad) moments, shaped like their parameter.
 */
typedef struct {
    pv_convert_fusion fusion;
    pv_index d_a;                   /* attention hidden size (rows of A) */
    float *A, *c, *q, *omega;       /* trained */
    const float *mask;              /* fixed */
    float *A1, *A2, *c1, *c2, *q1, *q2, *omega1, *omega2;
    float l2;                       /* L2 weight of A, c, q / omega */
    float *W_var, *b_var;           /* variant projection, or NULL (shared) */
    float *W_var1, *W_var2, *b_var1, *b_var2;
} pv_train_convert;

typedef struct {
    pv_rec_dims dims;
    float *U, *V, *W, *b;           /* parameters, updated in place; b may be NULL */
    const float *g;                 /* feature gate (D) or NULL for all ones */
    const float *X;                 /* item features (n_items x D) */
    const float *beta_u, *beta_i;   /* loss-weight factors from the training degrees */
    float w[4];                     /* w1..w4 */
    pv_train_convert *convert;      /* NULL: the backbone; else the final recommender */
} pv_train_model;

typedef struct {
    pv_opt emb;                     /* optimiser of U and V (Adam, or Adagrad for env models) */
    pv_opt proj;                    /* optimiser of W and b */
    float *U1, *U2, *V1, *V2;       /* optimiser states of U, V (U2 / V2 NULL for Adagrad) */
    float *W1, *W2, *b1, *b2;       /* optimiser states of W, b */
    pv_rec_reg reg;
    float wd1, wdi, wd2;            /* L2: wd1 (||U||^2 + wdi ||V||^2) + wd2 (||W||^2 + ||b||^2) */
    float l1;                       /* weight of the L1 term on W o l1_mask (0: off) */
    const float *l1_mask;           /* D, or NULL */
} pv_train_config;

/*
 * Train one epoch over n_pairs (user, item) positives.
 *   step: in/out, the number of optimiser steps taken before (Adam's t).
 *   loss: out, the sum over batches of L_rec (no L2), and n_batches.
 * Status: PV_OK, PV_EINDEX (an id out of range), PV_EINVAL (batch < 1,
 * n_neg < 0, n_pairs < 1; with convert: a bad fusion, d_a < 0, or a NULL mask,
 * parameter or state the fusion needs), PV_ENOMEM, PV_EDOM (non-finite loss: the
 * parameters hold the last step's values), PV_ERANGE.
 */
pv_status pv_train_epoch(const pv_train_config *cfg, pv_train_model *model, pv_index n_pairs,
                         const int64_t *pair_users, const int64_t *pair_items, pv_index batch,
                         pv_index n_neg, uint64_t seed, uint32_t epoch, int64_t *step,
                         int n_threads, double *loss, pv_index *n_batches);

/* The negatives the epoch draws for its pair at epoch position `pos` (for tests). */
void pv_train_negatives(pv_index n_items, pv_index n_neg, uint64_t seed, uint32_t epoch,
                        int64_t pos, int64_t *out);

#endif /* PV_TRAIN_H */
