#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "pv_blas.h"
#include "pv_bpr.h"
#include "pv_vbpr.h"

enum { N_TABLES = 6 };

/* Sizes and pointers of the six tables, in pv_vbpr_tensors order. */
static void
table_sizes(const pv_vbpr_model *m, pv_index size[N_TABLES])
{
    size[0] = m->n_users * m->k;
    size[1] = m->n_users * m->k2;
    size[2] = m->n_items * m->k;
    size[3] = m->n_items;
    size[4] = m->k2 * m->n_feat;
    size[5] = m->n_feat;
}

static void
table_ptrs(const pv_vbpr_tensors *t, float *out[N_TABLES])
{
    out[0] = t->gamma_u;
    out[1] = t->theta_u;
    out[2] = t->gamma_i;
    out[3] = t->bias;
    out[4] = t->E;
    out[5] = t->beta;
}

pv_index
pv_vbpr_workspace_f32(const pv_vbpr_model *m, pv_index B)
{
    return B * m->n_feat + 2 * B * m->k2 + 2 * B;
}

/* Adds c * src + l2 * own to the n floats of dst (one row's data and L2 gradient). */
static void
add_row(float *dst, float c, const float *src, float l2, const float *own, pv_index n)
{
    for (pv_index k = 0; k < n; k++) {
        dst[k] += c * src[k] + l2 * own[k];
    }
}

pv_status
pv_vbpr_batch_f32(const pv_vbpr_model *m, pv_index B, const int64_t *users, const int64_t *pos,
                  const int64_t *neg, pv_vbpr_tensors *grad, double *loss, float *work,
                  int n_threads)
{
    const pv_index k = m->k, k2 = m->k2, F = m->n_feat;
    const pv_vbpr_tensors *p = &m->p;
    *loss = 0.0;
    if (B < 1) {
        return PV_EINVAL;
    }
    if (!pv_blas_fits(B, k2, F)) {
        return PV_ERANGE;
    }
    float *delta = work, *P = delta + B * F, *G = P + B * k2, *xs = G + B * k2, *coef = xs + B;
    pv_index size[N_TABLES];
    float *g[N_TABLES];
    table_sizes(m, size);
    table_ptrs(grad, g);
    for (int t = 0; t < N_TABLES; t++) {
        memset(g[t], 0, sizeof(float) * (size_t)size[t]);
    }
#pragma omp parallel for num_threads(n_threads) schedule(static)
    for (pv_index r = 0; r < B; r++) {
        const float *fi = m->X + pos[r] * F, *fj = m->X + neg[r] * F;
        for (pv_index c = 0; c < F; c++) {
            delta[r * F + c] = fi[c] - fj[c];
        }
    }
    /* P = delta E^T: theta_u's partner E (f_i - f_j) for every triple. */
    pv_gemm_blocked_f32(PV_SPLIT_ROWS, PvNoTrans, PvTrans, B, k2, F, 1.0f, delta, F, p->E, F,
                        0.0f, P, k2, n_threads);
#pragma omp parallel for num_threads(n_threads) schedule(static)
    for (pv_index r = 0; r < B; r++) {
        const float *gu = p->gamma_u + users[r] * k, *tu = p->theta_u + users[r] * k2;
        const float x = p->bias[pos[r]] - p->bias[neg[r]] +
                        (pv_dot_f32(gu, p->gamma_i + pos[r] * k, k) -
                         pv_dot_f32(gu, p->gamma_i + neg[r] * k, k)) +
                        pv_dot_f32(tu, P + r * k2, k2) + pv_dot_f32(p->beta, delta + r * F, F);
        xs[r] = x;
        coef[r] = (float)(-1.0 / (1.0 + exp((double)x)) / (double)B);
        for (pv_index c = 0; c < k2; c++) {
            G[r * k2 + c] = coef[r] * tu[c];
        }
    }
    /* Row scatters and sums in triple order, on one thread. */
    const float l2 = m->lam / (float)B, l2b = m->lam_b / (float)B;
    double total = 0.0, sq_rows = 0.0, sq_bias = 0.0;
    for (pv_index r = 0; r < B; r++) {
        const int64_t u = users[r], i = pos[r], j = neg[r];
        const float c = coef[r];
        const float *gu = p->gamma_u + u * k, *tu = p->theta_u + u * k2;
        const float *gi = p->gamma_i + i * k, *gj = p->gamma_i + j * k;
        total += pv_softplus_neg((double)xs[r]);
        sq_rows += (double)pv_dot_f32(gu, gu, k) + (double)pv_dot_f32(tu, tu, k2) +
                   (double)pv_dot_f32(gi, gi, k) + (double)pv_dot_f32(gj, gj, k);
        sq_bias += (double)p->bias[i] * p->bias[i] + (double)p->bias[j] * p->bias[j];
        float *ggu = grad->gamma_u + u * k;
        for (pv_index q = 0; q < k; q++) {
            ggu[q] += c * (gi[q] - gj[q]) + l2 * gu[q];
        }
        add_row(grad->theta_u + u * k2, c, P + r * k2, l2, tu, k2);
        add_row(grad->gamma_i + i * k, c, gu, l2, gi, k);
        add_row(grad->gamma_i + j * k, -c, gu, l2, gj, k);
        grad->bias[i] += c + l2b * p->bias[i];
        grad->bias[j] += -c + l2b * p->bias[j];
    }
    /* dE = G^T delta (k2 x F), the columns of dE split among threads. */
    pv_gemm_blocked_f32(PV_SPLIT_COLS, PvTrans, PvNoTrans, k2, F, B, 1.0f, G, k2, delta, F, 0.0f,
                        grad->E, F, n_threads);
#pragma omp parallel for num_threads(n_threads) schedule(static)
    for (pv_index c = 0; c < F; c++) {
        float s = 0.0f;
        for (pv_index r = 0; r < B; r++) {
            s += coef[r] * delta[r * F + c];
        }
        grad->beta[c] = s;
    }
    double sq_e = 0.0;
    for (pv_index q = 0; q < k2 * F; q++) {
        sq_e += (double)p->E[q] * p->E[q];
        grad->E[q] += m->lam_e * p->E[q];
    }
    for (pv_index c = 0; c < F; c++) {
        sq_e += (double)p->beta[c] * p->beta[c];
        grad->beta[c] += m->lam_e * p->beta[c];
    }
    *loss = total / (double)B + (double)m->lam * sq_rows / (2.0 * (double)B) +
            (double)m->lam_b * sq_bias / (2.0 * (double)B) + (double)m->lam_e * sq_e / 2.0;
    return isfinite(*loss) ? PV_OK : PV_EDOM;
}

/* The state one VBPR step needs besides the batch (pv_bpr_step_fn's model). */
typedef struct {
    pv_vbpr_model *m;
    const pv_opt *opt;
    pv_vbpr_tensors *m1, *m2, grad;
    float *work;
} vbpr_trainer;

static pv_status
vbpr_step(void *ctx, pv_index B, const int64_t *users, const int64_t *pos, const int64_t *neg,
          int64_t t, double *loss, int n_threads)
{
    vbpr_trainer *tr = ctx;
    pv_status st = pv_vbpr_batch_f32(tr->m, B, users, pos, neg, &tr->grad, loss, tr->work,
                                     n_threads);
    pv_index size[N_TABLES];
    float *param[N_TABLES], *g[N_TABLES], *s1[N_TABLES], *s2[N_TABLES];
    table_sizes(tr->m, size);
    table_ptrs(&tr->m->p, param);
    table_ptrs(&tr->grad, g);
    table_ptrs(tr->m1, s1);
    table_ptrs(tr->m2, s2);
    for (int q = 0; st == PV_OK && q < N_TABLES; q++) {
        st = pv_opt_dense_f32(tr->opt, size[q], param[q], g[q], s1[q], s2[q], 0.0f, t,
                              n_threads);
    }
    return st;
}

pv_status
pv_vbpr_epoch_f32(pv_vbpr_model *m, const pv_opt *opt, pv_vbpr_tensors *m1, pv_vbpr_tensors *m2,
                  pv_index n_pairs, const int64_t *pair_users, const int64_t *pair_items,
                  pv_index B, uint64_t seed, uint32_t epoch, int64_t *step, double *loss,
                  pv_index *n_batches, int n_threads)
{
    *loss = 0.0;
    *n_batches = 0;
    if (B < 1 || n_pairs < 1) {
        return PV_EINVAL;
    }
    const pv_index b = B < n_pairs ? B : n_pairs;
    pv_index size[N_TABLES], total = 0;
    table_sizes(m, size);
    for (int q = 0; q < N_TABLES; q++) {
        total += size[q];
    }
    vbpr_trainer tr = {m, opt, m1, m2, {NULL, NULL, NULL, NULL, NULL, NULL}, NULL};
    float *grads = malloc(sizeof(float) * (size_t)total + 1);
    tr.work = malloc(sizeof(float) * (size_t)pv_vbpr_workspace_f32(m, b) + 1);
    pv_status st = PV_ENOMEM;
    if (grads != NULL && tr.work != NULL) {
        float *at = grads;
        float **slot[N_TABLES] = {&tr.grad.gamma_u, &tr.grad.theta_u, &tr.grad.gamma_i,
                                  &tr.grad.bias, &tr.grad.E, &tr.grad.beta};
        for (int q = 0; q < N_TABLES; q++) {
            *slot[q] = at;
            at += size[q];
        }
        st = pv_bpr_epoch(m->n_users, m->n_items, n_pairs, pair_users, pair_items, B, seed,
                          epoch, vbpr_step, &tr, step, loss, n_batches, n_threads);
    }
    free(grads);
    free(tr.work);
    return st;
}
