/*
 * pv_bpr.h -- the BPR training epoch shared by the pairwise models (LightGCN, VBPR).
 *
 * The epoch shuffles the training pairs (Philox stream SHUFFLE), draws one
 * uniform negative item per pair with the backbone's sampler
 * (pv_train_negatives: stream NEGATIVE, counter = the pair's position in the
 * epoch), cuts the shuffled triples into batches of B and hands each batch to
 * the model's step function, which computes the loss and gradient and takes
 * the optimiser step.  Everything is a function of (seed, epoch), so a seed
 * fixes the run whatever the thread count.
 */
#ifndef PV_BPR_H
#define PV_BPR_H

#include "pv_common.h"

/*
 * One batch of B triples (users[r], pos[r], neg[r]; item ids, not node ids):
 * loss into *loss, optimiser step number t (1-based, across epochs).
 */
typedef pv_status (*pv_bpr_step_fn)(void *model, pv_index B, const int64_t *users,
                                    const int64_t *pos, const int64_t *neg, int64_t t,
                                    double *loss, int n_threads);

/*
 * Runs the epoch: PV_EINDEX for a pair out of range, PV_EINVAL for empty
 * input; *step counts optimiser steps across epochs, *loss sums the batch
 * losses, *n_batches counts the batches completed (also after an error).
 */
pv_status pv_bpr_epoch(pv_index n_users, pv_index n_items, pv_index n_pairs,
                       const int64_t *pair_users, const int64_t *pair_items, pv_index B,
                       uint64_t seed, uint32_t epoch, pv_bpr_step_fn step_fn, void *model,
                       int64_t *step, double *loss, pv_index *n_batches, int n_threads);

/* softplus(-x) = -log sigmoid(x) = log(1 + e^-x), without overflow for large |x|. */
double pv_softplus_neg(double x);

/* <a, b> over n floats, summed in index order. */
PV_INLINE float
pv_dot_f32(const float *a, const float *b, pv_index n)
{
    float s = 0.0f;
    for (pv_index c = 0; c < n; c++) {
        s += a[c] * b[c];
    }
    return s;
}

#endif /* PV_BPR_H */
