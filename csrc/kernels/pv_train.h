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
 */
#ifndef PV_TRAIN_H
#define PV_TRAIN_H

#include "pv_optim.h"
#include "pv_rec.h"

typedef struct {
    pv_rec_dims dims;
    float *U, *V, *W, *b;           /* parameters, updated in place; b may be NULL */
    const float *g;                 /* feature gate (D) or NULL for all ones */
    const float *X;                 /* item features (n_items x D) */
    const float *beta_u, *beta_i;   /* loss-weight factors from the training degrees */
    float w[4];                     /* w1..w4 */
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
 * n_neg < 0, n_pairs < 1), PV_ENOMEM, PV_EDOM (non-finite loss: the
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
