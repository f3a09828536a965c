/*
 * pv_rec.h -- the multimodal recommender backbone (method.md §1): scores,
 * the UltraGCN-weighted BCE loss and its exact gradient for one mini-batch.
 *
 *   e_i  = [ V_i ; W (g o x_i) + b ]          s_ui = U_u . e_i
 *   loss = sum_rows w+ softplus(-s_pos) + sum_rows sum_negs (w- / N) softplus(s_neg)
 *   w+   = w1 + w2 beta_u beta_i              w-  = w3 + w4 beta_u beta_j
 *
 * Items are never projected: with t_r = g o (W^T U^c_u) (one GEMM over the
 * batch's user rows), U^c_u . (W (g o x_j) + b) = t_r . x_j + U^c_u . b, so each
 * (row, item) pair costs O(D) instead of O(d_c D).  The reference projects all
 * items every step; the result is the same number.
 */
#ifndef PV_REC_H
#define PV_REC_H

#include "pv_common.h"

/* Sizes of the backbone.  User rows are [U_id (d_id) ; U_c (d_c)]. */
typedef struct {
    pv_index n_users, n_items, d_id, d_c, n_feat;
} pv_rec_dims;

/*
 * The id checks of a batch kernel: every user and item id in range and mapped to a
 * slot in [0, n_user_slots) / [0, n_item_slots); with item_list != NULL each item's
 * slot must also map back to it.  PV_OK or PV_EINDEX.
 */
pv_status pv_rec_check_ids(pv_index n_rows, pv_index n_cols, const int64_t *users,
                           const int64_t *items, pv_index n_users, pv_index n_items,
                           const int32_t *user_slot, pv_index n_user_slots,
                           const int32_t *item_slot, pv_index n_item_slots,
                           const int64_t *item_list);

/* Which rows the L2 term covers: none, every row (the reference), or the rows a batch touches. */
typedef enum { PV_REG_NONE = 0, PV_REG_FULL = 1, PV_REG_BATCH = 2 } pv_rec_reg;

#define PV_REC_DECLARE(T, SFX)                                                                \
    /* Read-only view of the parameters and data. b and g may be NULL. */                     \
    typedef struct {                                                                          \
        pv_rec_dims dims;                                                                     \
        const T *U, *V, *W, *b, *g, *X, *beta_u, *beta_i;                                     \
        T w[4];                                                                               \
    } pv_rec_model_##SFX;                                                                     \
    /* Gradient of one batch, compact: one row per distinct user / item. */                   \
    typedef struct {                                                                          \
        T *gU;         /* n_user_slots x (d_id + d_c) */                                      \
        T *gV;         /* n_item_slots x d_id */                                              \
        T *gW;         /* d_c x n_feat (overwritten) */                                       \
        T *gb;         /* d_c or NULL (overwritten) */                                        \
        T *gg;         /* n_feat or NULL: gradient of the gate (overwritten) */               \
        const int32_t *user_slot; /* n_users: slot of each user in gU, -1 if absent */        \
        const int32_t *item_slot; /* n_items: slot of each item in gV */                      \
        pv_index n_user_slots, n_item_slots;                                                  \
    } pv_rec_grad_##SFX;                                                                      \
    pv_index pv_rec_workspace_##SFX(pv_index n_rows, pv_index n_cols, pv_rec_dims dims);      \
    pv_status pv_rec_batch_##SFX(const pv_rec_model_##SFX *model, pv_index n_rows,            \
                                 pv_index n_cols, const int64_t *users, const int64_t *items, \
                                 pv_rec_grad_##SFX *grad, T *work, double *loss,              \
                                 int n_threads);                                          \
    pv_status pv_rec_loss_grad_##SFX(                                                         \
        const pv_rec_model_##SFX *model, pv_index n_rows, pv_index n_cols,                    \
        const int64_t *users, const int64_t *items, pv_rec_reg reg, T wd1, T wdi, T wd2,      \
        T *dU, T *dV, T *dW, T *db, T *dg, int32_t *user_slot, int32_t *item_slot,            \
        uint8_t *user_mark, uint8_t *item_mark, T *work, double *loss, int n_threads);

PV_REC_DECLARE(float, f32)
PV_REC_DECLARE(double, f64)

/*
 * pv_rec_batch_<T>: loss and gradient of one batch.
 *   users[n_rows], items[n_rows * n_cols]: row r's positive is items[r*n_cols],
 *   its n_cols - 1 negatives follow.  n_cols == 1 means no negatives.
 *   grad->gU / gV rows named by the slot maps are ADDED to (zero them first);
 *   gW, gb, gg are overwritten.  The loss (L_rec only, no L2) is stored in *loss.
 *   work: pv_rec_workspace_<T>(n_rows, n_cols, dims) elements.
 * Cost: 3 GEMMs of n_rows x d_c x n_feat plus O(n_rows n_cols (n_feat + d_id)).
 * Deterministic: no result depends on n_threads.
 * Status: PV_OK; PV_EINDEX (an id or slot out of range); PV_ERANGE (BLAS sizes);
 * PV_EDOM (a non-finite score).
 *
 * pv_rec_loss_grad_<T>: the same batch with dense gradients (dU n_users x du,
 * dV n_items x d_id, all overwritten) plus the L2 term
 *   R = wd1 (||U||^2 + wdi ||V||^2) + wd2 (||W||^2 + ||b||^2)
 * over every row (PV_REG_FULL), the distinct rows the batch touches
 * (PV_REG_BATCH) or none.  Workspace: slot arrays and marks of n_users /
 * n_items entries, and work as for pv_rec_batch_<T>.
 */

#endif /* PV_REC_H */
