/*
 * pv_mask.h -- invariant-mask learning (method.md module ii, §3).
 *
 * The mask step of InvRL/PaInvRL with hand-derived gradients (§3.4), the
 * ERM/IRM weighting rules of §3.5 (MGDA min-norm, InvRL's fixed alpha, the
 * PAIR/EPO 1-D linear program) and a whole mask-learning run (§3.3 with the
 * library epoch rule of §10.2) driven by Adam (pv_optim.h).
 *
 * Notation (method.md §3.4).  Users carry [U_id ; U_c] (d_id + d_c columns),
 * items carry V (d_id) and features X (D).  Environment e has B positive rows,
 * each with 1 + n_neg items (column 0 the positive).  For pair n of row b:
 *     z_e   = clamp(mu + sigma * eps_e + 0.5, 0, 1)
 *     s_n   = U_id[u] . V[i] + U_c[u]^T W (z_e o x_i)
 *     L_e   = sum_n omega_n softplus(-+ s_n) + wd2 ||W||^2
 *     G_e   = dL_e/dW,  Gbar = mean_e G_e,  P = sum_e (G_e - Gbar)^2
 *     L_ERM = mean_e L_e,  L_IRM = sum_{k,d} (P[k,d] (mu_d + 0.5))^2,  L_reg = sum mu^2
 * The parameter vector is theta = [vec(W) (row-major, d_c x D) ; mu (D)].
 */
#ifndef PV_MASK_H
#define PV_MASK_H

#include "pv_common.h"

/* Sizes of one mask step. */
typedef struct {
    pv_index n_users, n_items;  /* table sizes (ids are checked against them)      */
    pv_index d_id, d_c, D;      /* U has d_id + d_c columns, V d_id, X and W D      */
    pv_index n_env;             /* environments in this step (all take part)        */
    pv_index batch;             /* B: positive rows per environment                */
    pv_index n_neg;             /* negatives per positive (>= 0)                    */
} pv_mask_dims;

/* Loss weights of method.md §1: w+ = w[0] + w[1] bu bi, w- = (w[2] + w[3] bu bj) / n_neg. */
typedef struct {
    double w[4];
    double wd2;                 /* R = wd2 ||W||^2 inside every L_e                 */
    double sigma;               /* gate noise scale                                  */
} pv_mask_loss;

/* Losses of one step (float64 sums whatever the kernel's type). */
typedef struct {
    double erm, irm, reg;       /* L_ERM, L_IRM, L_reg = sum mu^2                   */
} pv_mask_losses;

typedef enum { PV_MASK_MGDA = 0, PV_MASK_FIXED = 1, PV_MASK_PAIR = 2 } pv_mask_weighting;
typedef enum { PV_MASK_NORM_NONE = 0, PV_MASK_NORM_LOSS = 1, PV_MASK_NORM_L2 = 2 } pv_mask_norm;

/* How the ERM and IRM directions are weighted (method.md §3.5). */
typedef struct {
    pv_mask_weighting mode;
    pv_mask_norm normalize;     /* MGDA only                                         */
    int apply_raw;              /* MGDA only: 0 = the direction uses the normalised
                                 * vectors (method.md §3.5), 1 = gamma weights the raw
                                 * gradients (Sener & Koltun's training script)      */
    pv_index scope_offset;      /* Gram products over theta[scope_offset:] (0 = W and
                                 * mu; d_c * D = mu only, method.md §8 row 3)          */
    double alpha;               /* FIXED: L = L_ERM + alpha L_IRM                     */
    double pref_erm, pref_irm;  /* preference vector r (normalised internally).  PAIR:
                                 * EPO's r (>= 0, not both 0).  MGDA: both > 0; the
                                 * (normalised) vectors are divided by 2 r_ERM and
                                 * 2 r_IRM before the min-norm rule, so (1/2, 1/2) is
                                 * plain MGDA and a larger share leans toward that
                                 * objective                                          */
    double pair_eps;            /* PAIR: balance step when mu_r > pair_eps            */
} pv_mask_weight_cfg;

/* Outcome of the weighting: direction = w_erm a + w_irm b (+ lambda grad L_reg). */
typedef struct {
    double gamma;               /* MGDA: min-norm weight on ERM; PAIR: alpha_ERM;
                                 * FIXED: 1 / (1 + alpha), the ERM share            */
    double w_erm, w_irm;        /* coefficients applied to the raw a and b           */
    int pair_move;              /* PAIR: 1 balance, 2 descent, 3 infeasible LP
                                 * (fell back to the preference); else 0             */
} pv_mask_weights;

/*
 * Workspace bytes of pv_mask_step_f32/_f64 for these sizes and thread count.
 * Returns 0 when a size is negative or the total overflows.
 */
size_t pv_mask_step_work_f32(const pv_mask_dims *dims, int n_threads);
size_t pv_mask_step_work_f64(const pv_mask_dims *dims, int n_threads);

/*
 * One mask step: losses and the two gradient vectors over theta = [vec(W); mu].
 *
 *   U        (n_users x (d_id + d_c))   frozen user table [U_id ; U_c]
 *   V        (n_items x d_id)           frozen item ids
 *   X        (n_items x D)              item features
 *   W        (d_c x D), mu (D)          trainable parameters
 *   eps      (n_env x D)                gate noise; z_e = clamp(mu + sigma eps_e + 0.5, 0, 1)
 *   users    (n_env x B)                int64 in [0, n_users)
 *   items    (n_env x B x (1 + n_neg))  int64 in [0, n_items); column 0 positive
 *   beta_u (n_users), beta_i (n_items)  loss-weight factors
 * Outputs:
 *   loss_env (n_env)                    L_e (float64), may be NULL
 *   losses                              L_ERM, L_IRM, L_reg
 *   grad_erm, grad_irm (d_c * D + D)    a = grad L_ERM, b = grad L_IRM (closed forms of §3.4,
 *                                       gate indicator per environment, boundaries included)
 * work: pv_mask_step_work_*(dims, n_threads) bytes, or NULL to allocate one here.
 * No output may alias an input.  Cost: 4 (n_env B (1 + n_neg)) D for the pair passes plus
 * four GEMMs of n_env B d_c D; BLAS runs inside the kernel's parallel region on fixed
 * (environment, column-block) tiles, so results are identical for any n_threads.
 * Status: PV_EINVAL (bad size), PV_EINDEX (id out of range), PV_ERANGE (BLAS int
 * overflow), PV_ENOMEM, PV_EDOM (a loss or gradient is not finite).
 */
pv_status pv_mask_step_f32(const pv_mask_dims *dims, const pv_mask_loss *loss,
                           const float *U, const float *V, const float *X, const float *W,
                           const float *mu, const float *eps, const int64_t *users,
                           const int64_t *items, const float *beta_u, const float *beta_i,
                           double *loss_env, pv_mask_losses *losses, float *grad_erm,
                           float *grad_irm, void *work, int n_threads);
pv_status pv_mask_step_f64(const pv_mask_dims *dims, const pv_mask_loss *loss,
                           const double *U, const double *V, const double *X, const double *W,
                           const double *mu, const double *eps, const int64_t *users,
                           const int64_t *items, const double *beta_u, const double *beta_i,
                           double *loss_env, pv_mask_losses *losses, double *grad_erm,
                           double *grad_irm, void *work, int n_threads);

/*
 * MGDA two-vector min-norm rule (Sener & Koltun, min_norm_solvers._min_norm_element_from2)
 * on the Gram entries aa = a.a, ab = a.b, bb = b.b: 0.999 if ab >= aa, 0.001 if ab >= bb,
 * else (bb - ab) / (aa + bb - 2 ab).  Returns the weight on a.
 */
double pv_mgda_gamma(double aa, double ab, double bb);

/*
 * PAIR/EPO weights for two objectives (method.md §3.5): losses l = (l_erm, l_irm) >= 0,
 * Gram C = [[aa, ab], [ab, bb]], preference (r_erm, r_irm) >= 0 with a positive sum.
 * Solves the balance LP when mu_r > eps, else the descent LP, as a 1-D LP in alpha_ERM.
 * An infeasible LP falls back to the normalised preference (as PAIR's optimiser does).
 * *alpha_erm receives alpha_ERM; *move 1 balance, 2 descent, 3 fallback.
 * Status: PV_EINVAL (negative or non-finite loss or preference), PV_EDOM (non-finite Gram).
 */
pv_status pv_pair_alpha(double l_erm, double l_irm, double aa, double ab, double bb,
                        double r_erm, double r_irm, double eps, double *alpha_erm, int *move);

/*
 * The ERM/IRM weights of one step from a, b (n entries each; Gram products over
 * [cfg->scope_offset, n) in float64, fixed order) and the two losses.
 * Status: PV_EINVAL (bad cfg), PV_EDOM (non-finite products).
 */
pv_status pv_mask_weigh_f32(const pv_mask_weight_cfg *cfg, pv_index n, const float *a,
                            const float *b, double l_erm, double l_irm, pv_mask_weights *out);
pv_status pv_mask_weigh_f64(const pv_mask_weight_cfg *cfg, pv_index n, const double *a,
                            const double *b, double l_erm, double l_irm, pv_mask_weights *out);

/* Hyperparameters of a whole mask-learning run. */
typedef struct {
    pv_index epochs;            /* b_epoch (40)                                      */
    pv_index batch;             /* positives per environment and step (512)          */
    pv_index n_neg;             /* uniform negatives per positive (50)                */
    double lr_w, lr_mu;         /* Adam learning rates (1e-3, 1e-3)                   */
    double lam;                 /* weight of L_reg (0.1 at the first outer iteration) */
    pv_mask_loss loss;          /* w1..w4, wd2 (0.01), sigma (0.01)                   */
    pv_mask_weight_cfg weight;  /* ERM/IRM weighting                                  */
    uint64_t seed;
} pv_mask_fit_cfg;

/*
 * Steps per epoch of a run: ceil(max_e count[e] / batch), 0 when every environment is
 * empty.  count has n_env entries.
 */
pv_index pv_mask_steps_per_epoch(pv_index n_env, const int64_t *count, pv_index batch);

/*
 * A whole mask-learning run (method.md §3.2-3.3, §10.2 library rule), float32.
 *
 * Training pairs (users[n], items[n]) carry environment labels env[n] in [0, n_env).
 * Every environment with at least one pair takes part (E_eff of them; the 1/E averages
 * use E_eff).  W is re-initialised N(0, 0.01^2) from Philox (stream PV_STREAM_INIT) and
 * mu = 0.  Every step draws one full batch of positives from every non-empty environment,
 * each walking its own Philox shuffle (PV_STREAM_SHUFFLE, re-drawn when exhausted),
 * n_neg uniform negatives per positive (PV_STREAM_NEGATIVE, with replacement, not
 * filtered) and per-environment gate noise (PV_STREAM_GATE); the direction of
 * pv_mask_weigh + lambda grad L_reg drives Adam (lr_w on W, lr_mu on mu, no decay).
 * An epoch is pv_mask_steps_per_epoch steps.
 *
 * Outputs: W (d_c x D), mu (D), mask = clamp(mu + 0.5, 0, 1) (D); per epoch the mean
 * L_ERM, L_IRM and gamma (epochs entries each); per step gamma (epochs * steps_per_epoch);
 * *n_env_used = E_eff.  dims->n_env is the number of labels, dims->batch and n_neg are
 * ignored (taken from cfg).
 * Deterministic for a seed, identical for any n_threads.
 * Status: PV_EINVAL (sizes, hyperparameters, no pairs), PV_EINDEX (ids or labels out of
 * range), PV_ERANGE, PV_ENOMEM, PV_EDOM (a loss or the direction became non-finite).
 */
pv_status pv_mask_fit_f32(const pv_mask_dims *dims, const pv_mask_fit_cfg *cfg, pv_index n_pairs,
                          const int64_t *users, const int64_t *items, const int64_t *env,
                          const float *U, const float *V, const float *X, const float *beta_u,
                          const float *beta_i, float *W, float *mu, float *mask,
                          double *erm_epoch, double *irm_epoch, double *gamma_epoch,
                          double *gamma_step, pv_index *n_env_used, int n_threads);

#endif /* PV_MASK_H */
