/*
 * pv_optim.h -- fused optimiser steps (float32), as in PyTorch's Adam and Adagrad.
 *
 * The L2 term of the loss, l2 * ||p||^2, is folded into the step: the
 * gradient used is g + 2 * l2 * p (the reference code adds the penalty to the
 * loss, not as Adam's decoupled decay).  Every element is updated
 * independently, so any thread split gives the same bits.
 *
 * Adam (Kingma & Ba; torch.optim.Adam, amsgrad=False, maximize=False):
 *     m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *     p -= lr / (1 - b1^t) * m / (sqrt(v / (1 - b2^t)) + eps)
 * Adagrad (torch.optim.Adagrad, lr_decay=0, initial_accumulator_value=0):
 *     s += g^2;  p -= lr * g / (sqrt(s) + eps)
 */
#ifndef PV_OPTIM_H
#define PV_OPTIM_H

#include "pv_common.h"

typedef enum { PV_OPT_ADAM = 0, PV_OPT_ADAGRAD = 1 } pv_opt_kind;

typedef struct {
    pv_opt_kind kind;
    float lr;
    float beta1;  /* Adam only */
    float beta2;  /* Adam only */
    float eps;    /* torch defaults: Adam 1e-8, Adagrad 1e-10 */
} pv_opt;

/*
 * One step on a dense block of n parameters.  grad may be NULL (treated as
 * zero: only the L2 term acts).  state1 is Adam's m or Adagrad's sum; state2 is
 * Adam's v (unused, may be NULL, for Adagrad).  t is the 1-based step count.
 */
pv_status pv_opt_dense_f32(const pv_opt *opt, pv_index n, float *PV_RESTRICT param,
                           const float *PV_RESTRICT grad, float *PV_RESTRICT state1,
                           float *PV_RESTRICT state2, float l2, int64_t t, int n_threads);

/*
 * One step on selected rows of an (n_rows x dim) table: rows[r] is updated
 * with gradient grad[r * dim .. r * dim + dim) (a compact buffer, one row per
 * listed row).  Rows must be distinct and in [0, n_rows) (PV_EINDEX).  Rows
 * not listed are left untouched (a "lazy" step).
 */
pv_status pv_opt_rows_f32(const pv_opt *opt, pv_index n_rows, pv_index dim, pv_index n_list,
                          const int64_t *PV_RESTRICT rows, float *PV_RESTRICT param,
                          const float *PV_RESTRICT grad, float *PV_RESTRICT state1,
                          float *PV_RESTRICT state2, float l2, int64_t t, int n_threads);

/* Adam's bias-corrected constants of one step: lr / (1 - b1^t) and 1 / sqrt(1 - b2^t). */
typedef struct {
    float step;
    float inv_bc2;
} pv_opt_coef;

/* out[k] = the constants of step t_first + k, for k < n. */
void pv_opt_coefs(const pv_opt *opt, int64_t t_first, pv_index n, pv_opt_coef *out);

/*
 * Whole-table L2 regularisation without whole-table sweeps, bit for bit.
 *
 * With the L2 term on every row (reg = "full", the reference code), every row
 * takes an optimiser step every batch, but rows the batch does not touch see
 * only the L2 gradient 2 l2 p: a recurrence that needs no data.  So a row's
 * steps are deferred and replayed when it is next touched, or at a flush.  The
 * replay runs the very same per-step code on a row held in L1 cache, so the
 * result equals the eager sweep exactly, while the memory traffic drops from
 * the whole table per step to the touched rows per step.
 *
 * done[row] counts the steps already applied to the row (relative to the
 * caller's base step); coefs[s - 1] holds the constants of relative step s.
 * With grad != NULL, each listed row (rows[0..n_list)) replays steps
 * done+1..upto-1 with zero data gradient and takes step `upto` with its row of
 * the compact grad.  With grad == NULL, rows (or every row when rows is NULL)
 * are brought to `upto` with zero data gradient (a flush).
 */
pv_status pv_opt_lazy_rows_f32(const pv_opt *opt, pv_index n_rows, pv_index dim, pv_index n_list,
                               const int64_t *PV_RESTRICT rows, float *PV_RESTRICT param,
                               const float *PV_RESTRICT grad, float *PV_RESTRICT state1,
                               float *PV_RESTRICT state2, float l2, int32_t *PV_RESTRICT done,
                               int32_t upto, const pv_opt_coef *PV_RESTRICT coefs,
                               int n_threads);

#endif /* PV_OPTIM_H */
