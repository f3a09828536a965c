/*
 * pv_mask.c -- invariant-mask learning: step (float32 + float64), ERM/IRM weighting
 * and a whole float32 run.  See pv_mask.h and method.md §3.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pv_blas.h"
#include "pv_mask.h"
#include "pv_optim.h"
#include "pv_rng.h"

/* Column-block width of the BLAS tiles (fixed, so results do not depend on threads). */
#define PV_MASK_COLS 64
/* Prefetch distance (pairs) of the feature-row gathers. */
#ifndef PV_MASK_PF
#define PV_MASK_PF 4
#endif
/* Second Philox counter word of the W initialisation ("MASK"). */
#define PV_MASK_INIT_TAG 0x4D41534Bu

static size_t
mask_round64(size_t bytes)
{
    return (bytes + 63u) & ~(size_t)63u;
}

static void *
mask_alloc(size_t bytes)
{
    void *p = NULL;
    if (bytes == 0) {
        bytes = 64;
    }
    if (posix_memalign(&p, 64, bytes) != 0) {
        return NULL;
    }
    return p;
}

/* Sizes are non-negative and every table product fits in memory arithmetic. */
static pv_status
mask_dims_check(const pv_mask_dims *dm)
{
    if (dm->n_users < 1 || dm->n_items < 1 || dm->d_id < 0 || dm->d_c < 1 || dm->D < 1 ||
        dm->n_env < 0 || dm->batch < 0 || dm->n_neg < 0) {
        return PV_EINVAL;
    }
    /* Every workspace block must stay far below SIZE_MAX; checked in double. */
    double E = (double)dm->n_env, B = (double)dm->batch, D = (double)dm->D;
    double big = E * B * ((double)dm->n_neg + 1.0) + E * B * (4.0 * D + (double)dm->d_c) +
                 E * (double)dm->d_c * D;
    if (big * 8.0 > 1e15) {
        return PV_EINVAL;
    }
    return PV_OK;
}

/*
 * Threads worth using for a step of this size: one per ~2^20 multiply-adds of the pair
 * passes, at most n_threads.  Results do not depend on it (every tile and sum has a
 * fixed owner and order); it only spares small problems the fork/join cost.
 */
static int
mask_threads_for(const pv_mask_dims *dm, int n_threads)
{
    double work = (double)dm->n_env * (double)dm->batch * ((double)dm->n_neg + 1.0) *
                  (double)dm->D * 4.0;
    double cap = work / 1048576.0;
    if (cap < 1.0) {
        return 1;
    }
    return cap < (double)n_threads ? (int)cap : n_threads;
}

/* Ask for one feature row ahead of use (the gathers are random rows of X). */
static inline void
mask_prefetch_row(const void *row, size_t bytes)
{
#if defined(__GNUC__) || defined(__clang__)
    const char *p = (const char *)row;
    for (size_t off = 0; off < bytes; off += 64) {
        __builtin_prefetch(p + off, 0, 3);
    }
#else
    (void)row;
    (void)bytes;
#endif
}

double
pv_mgda_gamma(double aa, double ab, double bb)
{
    if (ab >= aa) {
        return 0.999;
    }
    if (ab >= bb) {
        return 0.001;
    }
    return (bb - ab) / (aa + bb - 2.0 * ab);
}

/* Intersect [*lo, *hi] with {t : c0 + c1 t >= rhs}; returns 0 when the set is empty. */
static int
lp_cut(double c0, double c1, double rhs, double *lo, double *hi)
{
    /* A relative feasibility tolerance, so vertices where a constraint is tight survive. */
    double tol = 1e-12 * (fabs(c0) + fabs(c1) + fabs(rhs));
    double need = rhs - tol;
    if (c1 > 0.0) {
        double t = (need - c0) / c1;
        if (t > *lo) {
            *lo = t;
        }
    }
    else if (c1 < 0.0) {
        double t = (need - c0) / c1;
        if (t < *hi) {
            *hi = t;
        }
    }
    else if (c0 < need) {
        return 0;
    }
    return *lo <= *hi;
}

pv_status
pv_pair_alpha(double l_erm, double l_irm, double aa, double ab, double bb, double r_erm,
              double r_irm, double eps, double *alpha_erm, int *move)
{
    if (!(l_erm >= 0.0) || !(l_irm >= 0.0) || !isfinite(l_erm) || !isfinite(l_irm) ||
        !(r_erm >= 0.0) || !(r_irm >= 0.0) || !(r_erm + r_irm > 0.0) || !isfinite(r_erm) ||
        !isfinite(r_irm) || !(eps >= 0.0)) {
        return PV_EINVAL;
    }
    if (!isfinite(aa) || !isfinite(ab) || !isfinite(bb)) {
        return PV_EDOM;
    }
    const double rs = r_erm + r_irm, r[2] = {r_erm / rs, r_irm / rs};
    const double rl[2] = {r[0] * l_erm, r[1] * l_irm};
    const double S = rl[0] + rl[1];
    if (!(S > 0.0)) {   /* both weighted losses are zero: PAIR's LP is undefined */
        *alpha_erm = r[0];
        *move = 3;
        return PV_OK;
    }
    /* Non-uniformity mu_r = sum_{lhat > eps_mach} lhat log(2 lhat); adjustments. */
    double lh[2] = {rl[0] / S, rl[1] / S}, mur = 0.0, adj[2];
    for (int j = 0; j < 2; j++) {
        if (lh[j] > DBL_EPSILON) {
            mur += lh[j] * log(2.0 * lh[j]);
        }
    }
    for (int j = 0; j < 2; j++) {
        /* lhat = 0 would give log(0); floor it at the smallest normal double. */
        double l = lh[j] > DBL_MIN ? lh[j] : DBL_MIN;
        adj[j] = r[j] * (log(2.0 * l) - mur);
    }
    const double C[2][2] = {{aa, ab}, {ab, bb}};
    const double Ca[2] = {aa * adj[0] + ab * adj[1], ab * adj[0] + bb * adj[1]};
    /* alpha = (t, 1 - t): (C alpha)_j = C[j][1] + (C[j][0] - C[j][1]) t. */
    double lo = 0.0, hi = 1.0, slope;
    int ok = 1;
    if (mur > eps) {
        /* Balance: max alpha.Ca; (C alpha)_j >= 0 on argmax r l, >= Ca_j where Ca_j <= 0. */
        double rlmax = rl[0] > rl[1] ? rl[0] : rl[1];
        for (int j = 0; j < 2 && ok; j++) {
            if (rl[j] == rlmax) {
                ok = lp_cut(C[j][1], C[j][0] - C[j][1], 0.0, &lo, &hi);
            }
            else if (!(Ca[j] > 0.0)) {
                ok = lp_cut(C[j][1], C[j][0] - C[j][1], Ca[j], &lo, &hi);
            }
        }
        slope = Ca[0] - Ca[1];
        *move = 1;
    }
    else {
        /* Descent: max sum_j (C alpha)_j; C alpha >= 0; alpha.Ca >= min(max Ca, 0). */
        for (int j = 0; j < 2 && ok; j++) {
            ok = lp_cut(C[j][1], C[j][0] - C[j][1], 0.0, &lo, &hi);
        }
        if (ok) {
            double cmax = Ca[0] > Ca[1] ? Ca[0] : Ca[1];
            ok = lp_cut(Ca[1], Ca[0] - Ca[1], cmax < 0.0 ? cmax : 0.0, &lo, &hi);
        }
        slope = (aa + ab) - (ab + bb);
        *move = 2;
    }
    if (!ok) {
        *alpha_erm = r[0];
        *move = 3;
        return PV_OK;
    }
    if (lo < 0.0) {
        lo = 0.0;
    }
    if (hi > 1.0) {
        hi = 1.0;
    }
    double t;
    if (slope > 0.0) {
        t = hi;
    }
    else if (slope < 0.0) {
        t = lo;
    }
    else {   /* every feasible point is optimal: take the one nearest the preference */
        t = r[0] < lo ? lo : (r[0] > hi ? hi : r[0]);
    }
    *alpha_erm = t;
    return PV_OK;
}

static pv_status
mask_weigh_gram(const pv_mask_weight_cfg *cfg, double aa, double ab, double bb, double l_erm,
                double l_irm, pv_mask_weights *out)
{
    if (!isfinite(aa) || !isfinite(ab) || !isfinite(bb)) {
        return PV_EDOM;
    }
    out->pair_move = 0;
    switch (cfg->mode) {
    case PV_MASK_MGDA: {
        double na = 1.0, nb = 1.0;
        if (cfg->normalize == PV_MASK_NORM_LOSS) {
            /* a / L_ERM, b / L_IRM; a zero (or non-finite) loss leaves its vector as is. */
            if (l_erm > 0.0 && isfinite(l_erm)) {
                na = l_erm;
            }
            if (l_irm > 0.0 && isfinite(l_irm)) {
                nb = l_irm;
            }
        }
        else if (cfg->normalize == PV_MASK_NORM_L2) {
            if (aa > 0.0) {
                na = sqrt(aa);
            }
            if (bb > 0.0) {
                nb = sqrt(bb);
            }
        }
        else if (cfg->normalize != PV_MASK_NORM_NONE) {
            return PV_EINVAL;
        }
        /* Preference r (method.md §3.5): a / (2 r_ERM), b / (2 r_IRM) with r summing to 1.
         * The min-norm point leans toward the shorter vector, so the preferred objective
         * (larger r) gets the shorter one; r = (1/2, 1/2) leaves both unscaled. */
        if (!(cfg->pref_erm > 0.0) || !(cfg->pref_irm > 0.0)) {
            return PV_EINVAL;
        }
        double r_sum = cfg->pref_erm + cfg->pref_irm;
        na *= 2.0 * cfg->pref_erm / r_sum;
        nb *= 2.0 * cfg->pref_irm / r_sum;
        double g = pv_mgda_gamma(aa / (na * na), ab / (na * nb), bb / (nb * nb));
        out->gamma = g;
        out->w_erm = cfg->apply_raw ? g : g / na;
        out->w_irm = cfg->apply_raw ? 1.0 - g : (1.0 - g) / nb;
        return PV_OK;
    }
    case PV_MASK_FIXED:
        if (!(cfg->alpha >= 0.0) || !isfinite(cfg->alpha)) {
            return PV_EINVAL;
        }
        out->gamma = 1.0 / (1.0 + cfg->alpha);
        out->w_erm = 1.0;
        out->w_irm = cfg->alpha;
        return PV_OK;
    case PV_MASK_PAIR: {
        double t;
        int move;
        pv_status st = pv_pair_alpha(l_erm, l_irm, aa, ab, bb, cfg->pref_erm, cfg->pref_irm,
                                     cfg->pair_eps, &t, &move);
        if (st != PV_OK) {
            return st;
        }
        out->gamma = t;
        out->w_erm = t;
        out->w_irm = 1.0 - t;
        out->pair_move = move;
        return PV_OK;
    }
    default:
        return PV_EINVAL;
    }
}

/* ---- type-generic instantiations ---- */
#define PV_T float
#define PV_FN(n) n##_f32
#define PV_GEMM PV_CBLAS(cblas_sgemm)
#define PV_EXP expf
#define PV_LOG1P log1pf
#define PV_FABS fabsf
#include "impl/pv_mask_impl.h"
#include "impl/pv_undef.h"

#define PV_T double
#define PV_FN(n) n##_f64
#define PV_GEMM PV_CBLAS(cblas_dgemm)
#define PV_EXP exp
#define PV_LOG1P log1p
#define PV_FABS fabs
#include "impl/pv_mask_impl.h"
#include "impl/pv_undef.h"

/* ---- a whole run (float32) ---- */

pv_index
pv_mask_steps_per_epoch(pv_index n_env, const int64_t *count, pv_index batch)
{
    int64_t most = 0;
    for (pv_index e = 0; e < n_env; e++) {
        if (count[e] > most) {
            most = count[e];
        }
    }
    if (batch < 1) {
        return 0;
    }
    return (pv_index)((most + batch - 1) / batch);
}

static pv_status
mask_fit_check(const pv_mask_dims *dm, const pv_mask_fit_cfg *cfg, pv_index n_pairs)
{
    if (mask_dims_check(dm) != PV_OK || dm->n_env < 1 || n_pairs < 1) {
        return PV_EINVAL;
    }
    if (cfg->epochs < 1 || cfg->batch < 1 || cfg->n_neg < 0 || !(cfg->lr_w > 0.0) ||
        !(cfg->lr_mu > 0.0) || !(cfg->lam >= 0.0) || !isfinite(cfg->lam) ||
        !(cfg->loss.sigma >= 0.0) || !isfinite(cfg->loss.sigma) || !(cfg->loss.wd2 >= 0.0) ||
        !isfinite(cfg->loss.wd2)) {
        return PV_EINVAL;
    }
    for (int k = 0; k < 4; k++) {
        if (!isfinite(cfg->loss.w[k])) {
            return PV_EINVAL;
        }
    }
    const pv_mask_weight_cfg *w = &cfg->weight;
    if ((int)w->mode < 0 || (int)w->mode > 2 || (int)w->normalize < 0 ||
        (int)w->normalize > 2 || w->scope_offset < 0 ||
        w->scope_offset > dm->d_c * dm->D + dm->D) {
        return PV_EINVAL;
    }
    if (w->mode == PV_MASK_FIXED && (!(w->alpha >= 0.0) || !isfinite(w->alpha))) {
        return PV_EINVAL;
    }
    if (w->mode == PV_MASK_MGDA && (!(w->pref_erm > 0.0) || !(w->pref_irm > 0.0) ||
                                    !isfinite(w->pref_erm + w->pref_irm))) {
        return PV_EINVAL;
    }
    if (w->mode == PV_MASK_PAIR &&
        (!(w->pref_erm >= 0.0) || !(w->pref_irm >= 0.0) || !(w->pref_erm + w->pref_irm > 0.0) ||
         !isfinite(w->pref_erm + w->pref_irm) || !(w->pair_eps >= 0.0))) {
        return PV_EINVAL;
    }
    /* Philox counters: rows of a step and the step index must fit 32 bits. */
    if ((double)dm->n_env * (double)cfg->batch >= 4294967296.0) {
        return PV_EINVAL;
    }
    return PV_OK;
}

pv_status
pv_mask_fit_f32(const pv_mask_dims *dims, const pv_mask_fit_cfg *cfg, pv_index n_pairs,
                const int64_t *users, const int64_t *items, const int64_t *env, const float *U,
                const float *V, const float *X, const float *beta_u, const float *beta_i,
                float *W, float *mu, float *mask, double *erm_epoch, double *irm_epoch,
                double *gamma_epoch, double *gamma_step, pv_index *n_env_used, int n_threads)
{
    pv_status st = mask_fit_check(dims, cfg, n_pairs);
    if (st != PV_OK) {
        return st;
    }
    if (n_threads <= 0) {
        n_threads = pv_default_threads();
    }
    const pv_index n_env = dims->n_env, B = cfg->batch, N = cfg->n_neg, n1 = N + 1;
    const pv_index D = dims->D, dc = dims->d_c, dcD = dc * D, n_theta = dcD + D;
    const uint64_t seed = cfg->seed;
    for (pv_index n = 0; n < n_pairs; n++) {
        if (users[n] < 0 || users[n] >= dims->n_users || items[n] < 0 ||
            items[n] >= dims->n_items || env[n] < 0 || env[n] >= n_env) {
            return PV_EINDEX;
        }
    }

    pv_status result = PV_ENOMEM;
    int64_t *count = calloc((size_t)n_env + 1, sizeof(int64_t));
    int64_t *offset = calloc((size_t)n_env + 1, sizeof(int64_t));
    int64_t *pos = calloc((size_t)n_env + 1, sizeof(int64_t));
    int64_t *restart = calloc((size_t)n_env + 1, sizeof(int64_t));
    int64_t *active = calloc((size_t)n_env + 1, sizeof(int64_t));
    int64_t *grouped = malloc((size_t)n_pairs * sizeof(int64_t));
    int64_t *order = malloc((size_t)n_pairs * sizeof(int64_t));
    int64_t *fill = calloc((size_t)n_env + 1, sizeof(int64_t));
    int64_t *s_users = NULL, *s_items = NULL;
    float *eps = NULL, *a = NULL, *b = NULL, *dir = NULL, *m1 = NULL, *m2 = NULL;
    void *work = NULL;
    if (!count || !offset || !pos || !restart || !active || !grouped || !order || !fill) {
        goto done;
    }
    /* Pairs grouped by environment, each group in stored order (a counting sort). */
    for (pv_index n = 0; n < n_pairs; n++) {
        count[env[n]]++;
    }
    for (pv_index e = 0; e < n_env; e++) {
        offset[e + 1] = offset[e] + count[e];
    }
    for (pv_index n = 0; n < n_pairs; n++) {
        grouped[offset[env[n]] + fill[env[n]]++] = n;
    }
    pv_index E = 0;
    for (pv_index e = 0; e < n_env; e++) {
        if (count[e] > 0) {
            active[E++] = e;
            /* Each environment walks its own shuffle; counter (SHUFFLE, restart*n_env + e). */
            pv_permutation(count[e], seed, PV_STREAM_SHUFFLE, (uint32_t)e, order + offset[e]);
        }
    }
    *n_env_used = E;
    const pv_index spe = pv_mask_steps_per_epoch(n_env, count, B);
    if ((double)cfg->epochs * (double)spe >= 4294967296.0) {
        result = PV_EINVAL;   /* the step index is a 32-bit Philox counter word */
        goto done;
    }

    pv_mask_dims sd = *dims;
    sd.n_env = E;
    sd.batch = B;
    sd.n_neg = N;
    if (mask_dims_check(&sd) != PV_OK) {
        result = PV_EINVAL;
        goto done;
    }
    size_t wbytes = pv_mask_step_work_f32(&sd, n_threads);
    s_users = malloc((size_t)(E * B) * sizeof(int64_t));
    s_items = malloc((size_t)(E * B * n1) * sizeof(int64_t));
    eps = malloc((size_t)(E * D) * sizeof(float));
    a = malloc((size_t)n_theta * sizeof(float));
    b = malloc((size_t)n_theta * sizeof(float));
    dir = malloc((size_t)n_theta * sizeof(float));
    m1 = calloc((size_t)n_theta, sizeof(float));
    m2 = calloc((size_t)n_theta, sizeof(float));
    work = mask_alloc(wbytes);
    if (!s_users || !s_items || !eps || !a || !b || !dir || !m1 || !m2 || !work || wbytes == 0) {
        goto done;
    }

    /* W ~ N(0, 0.01^2) from counter (INIT, "MASK", k / 2); mu = 0. */
    for (pv_index blk = 0; blk < (dcD + 1) / 2; blk++) {
        pv_philox_ctr r = pv_philox4x32(seed, PV_STREAM_INIT, PV_MASK_INIT_TAG, (uint32_t)blk,
                                        (uint32_t)((uint64_t)blk >> 32));
        double z0, z1;
        pv_normal_pair(r, &z0, &z1);
        W[2 * blk] = (float)(0.01 * z0);
        if (2 * blk + 1 < dcD) {
            W[2 * blk + 1] = (float)(0.01 * z1);
        }
    }
    for (pv_index d = 0; d < D; d++) {
        mu[d] = 0.0f;
    }
    /* Small element-wise work runs on one thread (same numbers, no fork/join cost). */
    const int draw_threads = E * B * (N + 1) >= 65536 ? n_threads : 1;
    const int adam_threads = n_theta >= 262144 ? n_threads : 1;
    const pv_opt opt_w = {PV_OPT_ADAM, (float)cfg->lr_w, 0.9f, 0.999f, 1e-8f};
    const pv_opt opt_mu = {PV_OPT_ADAM, (float)cfg->lr_mu, 0.9f, 0.999f, 1e-8f};

    for (pv_index ep = 0; ep < cfg->epochs; ep++) {
        double sum_erm = 0.0, sum_irm = 0.0, sum_gamma = 0.0;
        for (pv_index s = 0; s < spe; s++) {
            const pv_index step = ep * spe + s;
            const uint32_t c1 = (uint32_t)step;
            /* Positives: B from every active environment's order (reshuffle when done). */
            for (pv_index j = 0; j < E; j++) {
                const int64_t e = active[j];
                for (pv_index bb = 0; bb < B; bb++) {
                    if (pos[e] == count[e]) {
                        restart[e]++;
                        pv_permutation(count[e], seed, PV_STREAM_SHUFFLE,
                                       (uint32_t)(restart[e] * n_env + e), order + offset[e]);
                        pos[e] = 0;
                    }
                    int64_t pair = grouped[offset[e] + order[offset[e] + pos[e]++]];
                    s_users[j * B + bb] = users[pair];
                    s_items[(j * B + bb) * n1] = items[pair];
                }
            }
            /* Negatives: counter (NEGATIVE, step, e * B + row, c / 2); gate noise:
             * counter (GATE, step, e, d / 2).  Both independent of the thread split. */
#pragma omp parallel num_threads(draw_threads)
            {
#pragma omp for schedule(static)
                for (pv_index row = 0; row < E * B; row++) {
                    const pv_index j = row / B, bb = row % B;
                    const uint32_t c2 = (uint32_t)(active[j] * B + bb);
                    int64_t *dst = s_items + row * n1 + 1;
                    for (pv_index c = 0; c < N; c += 2) {
                        pv_philox_ctr r = pv_philox4x32(seed, PV_STREAM_NEGATIVE, c1, c2,
                                                        (uint32_t)(c / 2));
                        dst[c] = pv_bounded64(r.v[0], r.v[1], dims->n_items);
                        if (c + 1 < N) {
                            dst[c + 1] = pv_bounded64(r.v[2], r.v[3], dims->n_items);
                        }
                    }
                }
#pragma omp for schedule(static)
                for (pv_index j = 0; j < E; j++) {
                    for (pv_index d = 0; d < D; d += 2) {
                        pv_philox_ctr r = pv_philox4x32(seed, PV_STREAM_GATE, c1,
                                                        (uint32_t)active[j], (uint32_t)(d / 2));
                        double z0, z1;
                        pv_normal_pair(r, &z0, &z1);
                        eps[j * D + d] = (float)z0;
                        if (d + 1 < D) {
                            eps[j * D + d + 1] = (float)z1;
                        }
                    }
                }
            }

            pv_mask_losses lo;
            st = pv_mask_step_f32(&sd, &cfg->loss, U, V, X, W, mu, eps, s_users, s_items,
                                  beta_u, beta_i, NULL, &lo, a, b, work, n_threads);
            if (st != PV_OK) {
                result = st;
                goto done;
            }
            pv_mask_weights wt;
            st = pv_mask_weigh_f32(&cfg->weight, n_theta, a, b, lo.erm, lo.irm, &wt);
            if (st != PV_OK) {
                result = st;
                goto done;
            }
            const double lam2 = 2.0 * cfg->lam;
            int finite = 1;
            for (pv_index k = 0; k < n_theta; k++) {
                double v = wt.w_erm * (double)a[k] + wt.w_irm * (double)b[k];
                if (k >= dcD) {
                    v += lam2 * (double)mu[k - dcD];
                }
                dir[k] = (float)v;
                finite &= isfinite(dir[k]) != 0;
            }
            if (!finite) {
                result = PV_EDOM;
                goto done;
            }
            st = pv_opt_dense_f32(&opt_w, dcD, W, dir, m1, m2, 0.0f, (int64_t)step + 1,
                                  adam_threads);
            if (st == PV_OK) {
                st = pv_opt_dense_f32(&opt_mu, D, mu, dir + dcD, m1 + dcD, m2 + dcD, 0.0f,
                                      (int64_t)step + 1, adam_threads);
            }
            if (st != PV_OK) {
                result = st;
                goto done;
            }
            gamma_step[step] = wt.gamma;
            sum_erm += lo.erm;
            sum_irm += lo.irm;
            sum_gamma += wt.gamma;
        }
        erm_epoch[ep] = sum_erm / (double)spe;
        irm_epoch[ep] = sum_irm / (double)spe;
        gamma_epoch[ep] = sum_gamma / (double)spe;
    }
    for (pv_index d = 0; d < D; d++) {
        float v = mu[d] + 0.5f;
        mask[d] = v < 0.0f ? 0.0f : (v > 1.0f ? 1.0f : v);
    }
    result = PV_OK;

done:
    free(count);
    free(offset);
    free(pos);
    free(restart);
    free(active);
    free(grouped);
    free(order);
    free(fill);
    free(s_users);
    free(s_items);
    free(eps);
    free(a);
    free(b);
    free(dir);
    free(m1);
    free(m2);
    free(work);
    return result;
}
