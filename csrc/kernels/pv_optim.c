#include <math.h>
#include "pv_optim.h"

/* Bias-corrected Adam constants for step t (computed in double, as torch does). */
typedef struct {
    float step;      /* lr / (1 - b1^t) */
    float inv_bc2;   /* 1 / sqrt(1 - b2^t) */
} adam_coef;

static adam_coef
adam_coefficients(const pv_opt *opt, int64_t t)
{
    double bc1 = 1.0 - pow((double)opt->beta1, (double)t);
    double bc2 = 1.0 - pow((double)opt->beta2, (double)t);
    adam_coef c = {(float)(opt->lr / bc1), (float)(1.0 / sqrt(bc2))};
    return c;
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
pv_opt_sweep_f32(const pv_opt *opt, pv_index n_rows, pv_index dim,
                 const int32_t *PV_RESTRICT slot, float *PV_RESTRICT param,
                 const float *PV_RESTRICT grad, float *PV_RESTRICT state1,
                 float *PV_RESTRICT state2, float l2, int64_t t, int n_threads)
{
    pv_status st = check_opt(opt, state2, t);
    if (st != PV_OK) {
        return st;
    }
    adam_coef c = adam_coefficients(opt, t);
    /* Runs of untouched rows are contiguous in memory: update them in one go. */
    pv_index rows_per_block = PV_OPT_BLOCK / (dim > 0 ? dim : 1) + 1;
    pv_index n_blocks = (n_rows + rows_per_block - 1) / rows_per_block;
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n_blocks > 1)
    for (pv_index b = 0; b < n_blocks; b++) {
        pv_index lo = b * rows_per_block;
        pv_index hi = lo + rows_per_block < n_rows ? lo + rows_per_block : n_rows;
        pv_index run = lo;
        for (pv_index r = lo; r <= hi; r++) {
            if (r < hi && slot[r] < 0) {
                continue;
            }
            if (r > run) { /* rows run..r-1 have zero gradient */
                pv_index off = run * dim;
                opt_run(opt, (r - run) * dim, param + off, NULL, state1 + off,
                        state2 ? state2 + off : NULL, l2, c);
            }
            if (r < hi) {
                pv_index off = r * dim;
                opt_run(opt, dim, param + off, grad + (pv_index)slot[r] * dim, state1 + off,
                        state2 ? state2 + off : NULL, l2, c);
            }
            run = r + 1;
        }
    }
    return PV_OK;
}
