#include <math.h>
#include "pv_optim.h"

typedef pv_opt_coef adam_coef;

/* Bias-corrected Adam constants for step t (computed in double, as torch does). */
static adam_coef
adam_coefficients(const pv_opt *opt, int64_t t)
{
    double bc1 = 1.0 - pow((double)opt->beta1, (double)t);
    double bc2 = 1.0 - pow((double)opt->beta2, (double)t);
    adam_coef c = {(float)(opt->lr / bc1), (float)(1.0 / sqrt(bc2))};
    return c;
}

void
pv_opt_coefs(const pv_opt *opt, int64_t t_first, pv_index n, pv_opt_coef *out)
{
    for (pv_index k = 0; k < n; k++) {
        out[k] = adam_coefficients(opt, t_first + k);
    }
}

/* Adam on a contiguous run of `n` elements; g == NULL means zero gradient. */
PV_HOT static void
adam_run(pv_index n, float *PV_RESTRICT p, const float *PV_RESTRICT g, float *PV_RESTRICT m,
         float *PV_RESTRICT v, float l2x2, float b1, float b2, float eps, adam_coef c)
{
    for (pv_index k = 0; k < n; k++) {
        float gk = (g ? g[k] : 0.0f) + l2x2 * p[k];
        float mk = b1 * m[k] + (1.0f - b1) * gk;
        float vk = b2 * v[k] + (1.0f - b2) * gk * gk;
        m[k] = mk;
        v[k] = vk;
        p[k] -= c.step * mk / (sqrtf(vk) * c.inv_bc2 + eps);
    }
}

PV_HOT static void
adagrad_run(pv_index n, float *PV_RESTRICT p, const float *PV_RESTRICT g, float *PV_RESTRICT s,
            float l2x2, float lr, float eps)
{
    for (pv_index k = 0; k < n; k++) {
        float gk = (g ? g[k] : 0.0f) + l2x2 * p[k];
        float sk = s[k] + gk * gk;
        s[k] = sk;
        p[k] -= lr * gk / (sqrtf(sk) + eps);
    }
}

static void
opt_run(const pv_opt *opt, pv_index n, float *p, const float *g, float *s1, float *s2,
        float l2, adam_coef c)
{
    if (opt->kind == PV_OPT_ADAM) {
        adam_run(n, p, g, s1, s2, 2.0f * l2, opt->beta1, opt->beta2, opt->eps, c);
    } else {
        adagrad_run(n, p, g, s1, 2.0f * l2, opt->lr, opt->eps);
    }
}

static pv_status
check_opt(const pv_opt *opt, float *state2, int64_t t)
{
    if (opt->kind != PV_OPT_ADAM && opt->kind != PV_OPT_ADAGRAD) {
        return PV_EINVAL;
    }
    if (opt->kind == PV_OPT_ADAM && (state2 == NULL || t < 1)) {
        return PV_EINVAL;
    }
    return PV_OK;
}

/* Blocks of this many elements per task keep threads on separate cache lines. */
#define PV_OPT_BLOCK 16384

pv_status
pv_opt_dense_f32(const pv_opt *opt, pv_index n, float *PV_RESTRICT param,
                 const float *PV_RESTRICT grad, float *PV_RESTRICT state1,
                 float *PV_RESTRICT state2, float l2, int64_t t, int n_threads)
{
    pv_status st = check_opt(opt, state2, t);
    if (st != PV_OK) {
        return st;
    }
    adam_coef c = adam_coefficients(opt, t);
    pv_index n_blocks = (n + PV_OPT_BLOCK - 1) / PV_OPT_BLOCK;
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n_blocks > 1)
    for (pv_index b = 0; b < n_blocks; b++) {
        pv_index lo = b * PV_OPT_BLOCK;
        pv_index len = (n - lo < PV_OPT_BLOCK) ? n - lo : PV_OPT_BLOCK;
        opt_run(opt, len, param + lo, grad ? grad + lo : NULL, state1 + lo,
                state2 ? state2 + lo : NULL, l2, c);
    }
    return PV_OK;
}

pv_status
pv_opt_rows_f32(const pv_opt *opt, pv_index n_rows, pv_index dim, pv_index n_list,
                const int64_t *PV_RESTRICT rows, float *PV_RESTRICT param,
                const float *PV_RESTRICT grad, float *PV_RESTRICT state1,
                float *PV_RESTRICT state2, float l2, int64_t t, int n_threads)
{
    pv_status st = check_opt(opt, state2, t);
    if (st != PV_OK) {
        return st;
    }
    for (pv_index r = 0; r < n_list; r++) {
        if (rows[r] < 0 || rows[r] >= n_rows) {
            return PV_EINDEX;
        }
    }
    adam_coef c = adam_coefficients(opt, t);
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n_list * dim > PV_OPT_BLOCK)
    for (pv_index r = 0; r < n_list; r++) {
        if (r + 2 < n_list) { /* the rows are scattered: fetch ahead */
            pv_index ahead = rows[r + 2] * dim;
            for (pv_index k = 0; k < dim; k += 16) {
                __builtin_prefetch(param + ahead + k, 1, 3);
                __builtin_prefetch(state1 + ahead + k, 1, 3);
                if (state2) {
                    __builtin_prefetch(state2 + ahead + k, 1, 3);
                }
            }
        }
        pv_index off = rows[r] * dim;
        opt_run(opt, dim, param + off, grad + r * dim, state1 + off,
                state2 ? state2 + off : NULL, l2, c);
    }
    return PV_OK;
}

pv_status
pv_opt_lazy_rows_f32(const pv_opt *opt, pv_index n_rows, pv_index dim, pv_index n_list,
                     const int64_t *PV_RESTRICT rows, float *PV_RESTRICT param,
                     const float *PV_RESTRICT grad, float *PV_RESTRICT state1,
                     float *PV_RESTRICT state2, float l2, int32_t *PV_RESTRICT done,
                     int32_t upto, const pv_opt_coef *PV_RESTRICT coefs, int n_threads)
{
    pv_status st = check_opt(opt, state2, 1);
    if (st != PV_OK) {
        return st;
    }
    const pv_index n = rows ? n_list : n_rows;
    for (pv_index r = 0; rows && r < n_list; r++) {
        if (rows[r] < 0 || rows[r] >= n_rows) {
            return PV_EINDEX;
        }
    }
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n * dim > PV_OPT_BLOCK)
    for (pv_index r = 0; r < n; r++) {
        const pv_index row = rows ? rows[r] : r;
        const pv_index off = row * dim;
        float *p = param + off, *s1 = state1 + off, *s2 = state2 ? state2 + off : NULL;
        /* The steps this row missed had only the L2 gradient: replay them (the row
         * stays in L1 while it does), then take the current step with its gradient. */
        const int32_t last_zero = grad ? upto - 1 : upto;
        for (int32_t t = done[row] + 1; t <= last_zero; t++) {
            opt_run(opt, dim, p, NULL, s1, s2, l2, coefs[t - 1]);
        }
        if (grad && done[row] < upto) {
            opt_run(opt, dim, p, grad + r * dim, s1, s2, l2, coefs[upto - 1]);
        }
        if (done[row] < upto) {
            done[row] = upto;
        }
    }
    return PV_OK;
}
