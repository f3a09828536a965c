/*
 * pv_convert.h -- PaInvRL's convert module and final recommender (method.md §4.2):
 * loss and exact gradient of one mini-batch, and the item vectors for scoring.
 *
 *   x_inv = m o x            x_var = (1 - m) o x          (fixed mask m in [0,1]^D)
 *   h_inv = W x_inv + b      h_var = W_v x_var + b_v      (W, W_v: d_c x D; b, b_v: d_c)
 *   fusion ATTENTION:  kappa_k = q . tanh(A h_k + c),  (a_inv, a_var) = softmax(kappa_inv, kappa_var)
 *   fusion GLOBAL:     (a_inv, a_var) = softmax(omega_inv, omega_var), shared by all items
 *   fusion INVARIANT:  a_inv = 1, a_var = 0 (InvRL's final model: h = W (m o x) + b)
 *   h = a_inv h_inv + a_var h_var      e_i = [ V_i ; h_i ]      s_ui = U_u . e_i
 *   loss = sum_rows w+ softplus(-s_pos) + sum_rows sum_negs (w- / N) softplus(s_neg)
 *   w+ = w1 + w2 beta_u beta_i          w- = w3 + w4 beta_u beta_j
 *
 * Projections: SEPARATE (W_var given: W_v = W_var, b_v = b_var, method.md §4.2 and its
 * erratum) or SHARED (W_var NULL: W_v = W, b_v = b, the earlier reading).  With a
 * shared projection and a_inv = a_var = 1/2 the mask cancels, h = W x / 2 + b; separate
 * projections keep h = (W (m o x) + W_v ((1 - m) o x)) / 2 + (b + b_v) / 2 mask-dependent.
 *
 * GLOBAL and INVARIANT are linear in x.  INVARIANT and shared GLOBAL are h = W (g o x) + b
 * with the gate g = a_inv m + a_var (1 - m) (INVARIANT: g = m), so they run the backbone
 * batch kernel (pv_rec_batch_<T>, which never projects items) with that gate, and take
 * the mask and omega gradients from the gate's: dm = (a_inv - a_var) dg,
 * domega_inv = -domega_var = a_inv a_var sum_d dg_d (2 m_d - 1).  Separate GLOBAL is
 * h = W_e x + b_e with the effective projection W_e = a_inv W diag(m) + a_var W_v diag(1 - m)
 * and b_e = a_inv b + a_var b_v (built per batch, O(d_c D)); from the backbone kernel's
 * dW_e, db_e:  dW = a_inv dW_e o m,  dW_v = a_var dW_e o (1 - m),  db = a_inv db_e,
 * db_v = a_var db_e,  dm = sum_k dW_e,k o (a_inv W_k - a_var W_v,k),
 * domega_inv = -domega_var = a_inv a_var (<dW_e, W diag(m) - W_v diag(1 - m)> + db_e . (b - b_v)).
 *
 * ATTENTION is nonlinear in h, so items are projected, but only the DISTINCT
 * items of a batch (the "item slots"), in chunks of slots whose feature rows are
 * gathered into a cache-sized buffer: one GEMM against [W diag(m) ; W_v diag(1 - m)]
 * gives h_inv and h_var together (the variant half is not W x - W x_inv, which would
 * cancel when m ~ 1).  Each (row, item) pair then costs one (d_id + d_c)-length dot.
 * Backward, per chunk (the feature rows gathered again rather than kept), with
 * G_inv = dH_inv^T X_s and G_var = dH_var^T X_s (one GEMM):
 *   SEPARATE: dW = G_inv o m,  dW_v = G_var o (1 - m),  dm = sum_k W_k o G_inv,k - W_v,k o G_var,k
 *   SHARED:   dW = G_inv o m + G_var o (1 - m),         dm = sum_k W_k o (G_inv,k - G_var,k)
 *   dA = dZ^T [H_inv ; H_var],  dH += dZ A                (dZ: gradient of A h + c)
 * The chunks' dH^T X_s and dZ^T H go into the partial sums of at most 16 segments
 * of slots, added in segment order; the cut depends on the slot count only.
 *
 * How a trainer calls it (the same scheme as pv_rec_batch_<T>): per batch, give each
 * distinct user and item a slot (user_slot[u], item_slot[i]: slot or -1, and
 * item_list[s] = the item of slot s, e.g. pv_train.c's assign_slots), zero gU
 * (n_user_slots x (d_id + d_c)) and gV (n_item_slots x d_id), call
 * pv_convert_batch_<T> with work of pv_convert_workspace_<T>(B, C, n_item_slots, dims)
 * elements (allocated once for the largest batch: n_item_slots <= B * C), then apply
 * the optimiser to the slot rows of U and V and to the dense gW, gb, gW_var, gb_var,
 * gA, gc, gq, gomega, and reset the slot maps.  The L2 term is the trainer's business (as with
 * pv_rec_batch).  For evaluation, pv_convert_items_<T> gives h (and a_inv) of any
 * list of items, so e_i = [V_i ; h_i] can be scored against all users.
 */
#ifndef PV_CONVERT_H
#define PV_CONVERT_H

#include "pv_common.h"

typedef enum {
    PV_FUSE_ATTENTION = 0, /* per-item additive attention (PaInvRL default) */
    PV_FUSE_GLOBAL = 1,    /* two global logits omega */
    PV_FUSE_INVARIANT = 2  /* h = h_inv (InvRL) */
} pv_convert_fusion;

/* Sizes.  User rows are [U_id (d_id) ; U_c (d_c)]; A is d_a x d_c. */
typedef struct {
    pv_index n_users, n_items, d_id, d_c, d_a, n_feat;
} pv_convert_dims;

#define PV_CONVERT_DECLARE(T, SFX)                                                            \
    /* Read-only view of the parameters and data.  b may be NULL (no bias); A, c, q are    */ \
    /* read only for ATTENTION, omega (2) only for GLOBAL; U, V, beta_* only by the batch.  */ \
    /* W_var (d_c x D) NULL: the shared projection; else the variant projection, with      */ \
    /* b_var (d_c) given exactly when b is (INVARIANT ignores both).                         */ \
    typedef struct {                                                                          \
        pv_convert_dims dims;                                                                 \
        pv_convert_fusion fusion;                                                             \
        const T *U, *V, *W, *b, *A, *c, *q, *omega, *mask, *X, *beta_u, *beta_i;              \
        T w[4];                                                                               \
        const T *W_var, *b_var;                                                               \
    } pv_convert_model_##SFX;                                                                 \
    /* Gradient of one batch.  gU / gV: compact, one row per slot, ADDED to.  The rest is   */ \
    /* overwritten; every pointer but gW (and gW_var with W_var) may be NULL (not           */ \
    /* computed); gb needs b, gA/gc/gq need ATTENTION, gomega needs GLOBAL, gW_var / gb_var */ \
    /* need W_var / b_var (otherwise they are ignored; INVARIANT zeroes them).              */ \
    typedef struct {                                                                          \
        T *gU;      /* n_user_slots x (d_id + d_c) */                                         \
        T *gV;      /* n_item_slots x d_id */                                                 \
        T *gW;      /* d_c x n_feat */                                                        \
        T *gb;      /* d_c */                                                                 \
        T *gA;      /* d_a x d_c */                                                           \
        T *gc;      /* d_a */                                                                 \
        T *gq;      /* d_a */                                                                 \
        T *gomega;  /* 2 */                                                                   \
        T *gmask;   /* n_feat */                                                              \
        T *attn;    /* n_item_slots or NULL: a_inv of each slot's item (output) */            \
        const int32_t *user_slot; /* n_users: slot of each user in gU, -1 if absent */        \
        const int32_t *item_slot; /* n_items: slot of each item, -1 if absent */              \
        const int64_t *item_list; /* n_item_slots: the item of each slot */                   \
        pv_index n_user_slots, n_item_slots;                                                  \
        T *gW_var; /* d_c x n_feat */                                                         \
        T *gb_var; /* d_c */                                                                  \
    } pv_convert_grad_##SFX;                                                                  \
    pv_index pv_convert_workspace_##SFX(pv_index n_rows, pv_index n_cols,                     \
                                        pv_index n_item_slots, pv_convert_dims dims);         \
    pv_status pv_convert_batch_##SFX(const pv_convert_model_##SFX *model, pv_index n_rows,    \
                                     pv_index n_cols, const int64_t *users,                   \
                                     const int64_t *items, pv_convert_grad_##SFX *grad,       \
                                     T *work, double *loss, int n_threads);                   \
    pv_index pv_convert_loss_grad_workspace_##SFX(pv_index n_rows, pv_index n_cols,           \
                                                  pv_convert_dims dims);                      \
    pv_status pv_convert_loss_grad_##SFX(                                                     \
        const pv_convert_model_##SFX *model, pv_index n_rows, pv_index n_cols,                \
        const int64_t *users, const int64_t *items, T *dU, T *dV, T *dW, T *db, T *dW_var,    \
        T *db_var, T *dA, T *dc, T *dq, T *domega, T *dmask, T *attn_pairs,                   \
        int32_t *user_slot, int32_t *item_slot, int64_t *item_list, T *work, double *loss,    \
        int n_threads);                                                                       \
    pv_index pv_convert_items_workspace_##SFX(pv_convert_dims dims, int n_threads);           \
    pv_status pv_convert_items_##SFX(const pv_convert_model_##SFX *model, pv_index n,         \
                                     const int64_t *items, T *H, T *a_inv, T *work,           \
                                     int n_threads);

PV_CONVERT_DECLARE(float, f32)
PV_CONVERT_DECLARE(double, f64)

/*
 * pv_convert_batch_<T>: loss and gradient of one batch.
 *   users[n_rows], items[n_rows * n_cols]: row r's positive is items[r*n_cols], its
 *   n_cols - 1 negatives follow (n_cols == 1: no negatives).  Every batch item must
 *   have a slot s with item_list[s] == item; every batch user a slot.  Slots whose
 *   item is not in the batch are allowed (their gradient rows get nothing).
 *   work: pv_convert_workspace_<T>(n_rows, n_cols, S, dims) elements for any
 *   S >= n_item_slots (the size never shrinks as S grows); no argument may alias
 *   work or another output.  The loss (L_rec, no L2) is stored
 *   in *loss.
 * Cost, S = n_item_slots: ATTENTION: GEMMs of S x D x 2 d_c (forward projection) and
 *   2 d_c x S x D (dW), plus 2S x d_c x d_a each way for the attention (and dA), two
 *   gathers of the S feature rows, and O(n_rows n_cols (d_id + d_c)) for the pairs;
 *   the workspace holds S rows of [h_inv, h_var], tanh(A h + c) and e, 16 segments'
 *   2 d_c x D partial sums and chunk buffers (about 256 KB each).  GLOBAL /
 *   INVARIANT: the backbone's cost (3 GEMMs of n_rows x d_c x D plus
 *   O(n_rows n_cols (D + d_id))), independent of S (separate GLOBAL adds O(d_c D)).
 * Deterministic: BLAS runs on fixed tiles inside our parallel region and every other
 *   sum has a fixed order, so no result depends on n_threads.
 * Status: PV_OK; PV_EINVAL (n_rows < 0, n_cols < 1, bad fusion, a NULL parameter the
 *   fusion needs, W_var without gW_var, b_var given without b or b without it);
 *   PV_EINDEX (an id, slot or item_list entry out of range, or a slot
 *   that does not name its item); PV_ERANGE (BLAS sizes, or n_rows n_cols >= 2^31 for
 *   ATTENTION); PV_EDOM (a non-finite score or loss; ATTENTION then leaves the
 *   gradients unwritten).
 *
 * pv_convert_loss_grad_<T>: the same batch with dense gradients (dU n_users x
 *   (d_id + d_c), dV n_items x d_id, overwritten; dW_var, db_var as gW_var, gb_var)
 *   and optional attn_pairs (n_rows * n_cols: a_inv of each pair's item).  Scratch: user_slot (n_users),
 *   item_slot (n_items), item_list (n_items) and work of
 *   pv_convert_loss_grad_workspace_<T>(n_rows, n_cols, dims) elements.
 *
 * pv_convert_items_<T>: h (n x d_c, may be NULL) and a_inv (n, may be NULL) of
 *   items[0..n) (items NULL: items 0..n-1).  Items are done in fixed tiles of 64;
 *   work: pv_convert_items_workspace_<T>(dims, n_threads) elements.
 *   Status: PV_OK, PV_EINVAL, PV_EINDEX, PV_ERANGE.
 */

#endif /* PV_CONVERT_H */
