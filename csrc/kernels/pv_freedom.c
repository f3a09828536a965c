#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "pv_blas.h"
#include "pv_bpr.h"
#include "pv_freedom.h"

pv_index
pv_freedom_workspace_f32(const pv_freedom_model *m, pv_index B)
{
    const pv_index n = (m->n_users + m->n_items) * m->dim, ni = m->n_items * m->dim;
    return 4 * n + 3 * ni + B * m->n_feat + 2 * B * m->dim + 2 * B;
}

/* sigmoid-weighted coefficient of a BPR difference x with weight w / B: -w sigmoid(-x) / B. */
static float
bpr_coef(float x, double w, pv_index B)
{
    return (float)(-w / (1.0 + exp((double)x)) / (double)B);
}

/* The alignment term of modality m: adds its loss to *loss, its user gradient to gE and
 * its projection gradient to gW's columns of m.  delta: B x n_feat feature differences. */
static void
align_modality(const pv_freedom_model *m, pv_index q, const float *E, const float *W,
               pv_index B, const int64_t *users, const float *delta, float *Q, float *G,
               float *coef, float *gE, float *gW, double *loss, int n_threads)
{
    const pv_index d = m->dim, F = m->n_feat, c0 = m->cols[q], Fm = m->cols[q + 1] - c0;
    if (Fm == 0) {
        return;
    }
    pv_gemm_blocked_f32(PV_SPLIT_ROWS, PvNoTrans, PvTrans, B, d, Fm, 1.0f, delta + c0, F,
                        W + c0, F, 0.0f, Q, d, n_threads);
    double total = 0.0;
    for (pv_index r = 0; r < B; r++) {
        const float *eu = E + users[r] * d;
        const float x = pv_dot_f32(eu, Q + r * d, d);
        total += pv_softplus_neg((double)x);
        coef[r] = bpr_coef(x, (double)m->align, B);
        float *gu = gE + users[r] * d;
        for (pv_index k = 0; k < d; k++) {
            gu[k] += coef[r] * Q[r * d + k];
            G[r * d + k] = coef[r] * eu[k];
        }
    }
    *loss += (double)m->align * total / (double)B;
    pv_gemm_blocked_f32(PV_SPLIT_COLS, PvTrans, PvNoTrans, d, Fm, B, 1.0f, G, d, delta + c0, F,
                        0.0f, gW + c0, F, n_threads);
}

pv_status
pv_freedom_batch_f32(const pv_freedom_model *m, const float *E0, const float *W, pv_index B,
                     const int64_t *users, const int64_t *pos, const int64_t *neg, float *gE0,
                     float *gW, double *loss, float *work, int n_threads)
{
    const pv_index d = m->dim, nu = m->n_users, F = m->n_feat;
    const pv_index n = (nu + m->n_items) * d, ni = m->n_items * d;
    *loss = 0.0;
    if (B < 1) {
        return PV_EINVAL;
    }
    if (!pv_blas_fits(B, d, F)) {
        return PV_ERANGE;
    }
    float *E = work, *prop = E + n, *gE = prop + 2 * n, *h = gE + n, *hbuf = h + ni;
    float *delta = hbuf + 2 * ni, *Q = delta + B * F, *G = Q + B * d, *xs = G + B * d;
    float *coef = xs + B;
    pv_graph_power_f32(m->ii, m->n_ii_layers, d, E0 + nu * d, h, hbuf, n_threads);
    pv_propagate_f32(m->ui, m->n_ui_layers, d, E0, E, prop, n_threads);
#pragma omp parallel for num_threads(n_threads) schedule(static)
    for (pv_index r = 0; r < B; r++) {
        const float *eu = E + users[r] * d;
        xs[r] = (pv_dot_f32(eu, E + (nu + pos[r]) * d, d) + pv_dot_f32(eu, h + pos[r] * d, d)) -
                (pv_dot_f32(eu, E + (nu + neg[r]) * d, d) + pv_dot_f32(eu, h + neg[r] * d, d));
        const float *fi = m->X + pos[r] * F, *fj = m->X + neg[r] * F;
        for (pv_index c = 0; c < F; c++) {
            delta[r * F + c] = fi[c] - fj[c];
        }
    }
    /* Main BPR: scatter in triple order; an item's final vector E_i + h_i has the
     * same gradient for both parts, so gE's item rows also hold h's gradient. */
    memset(gE, 0, sizeof(float) * (size_t)n);
    double total = 0.0;
    for (pv_index r = 0; r < B; r++) {
        const int64_t u = users[r], i = pos[r], j = neg[r];
        const float c = bpr_coef(xs[r], 1.0, B);
        const float *eu = E + u * d;
        const float *ei = E + (nu + i) * d, *ej = E + (nu + j) * d;
        const float *hi = h + i * d, *hj = h + j * d;
        float *gu = gE + u * d, *gi = gE + (nu + i) * d, *gj = gE + (nu + j) * d;
        total += pv_softplus_neg((double)xs[r]);
        for (pv_index k = 0; k < d; k++) {
            gu[k] += c * ((ei[k] + hi[k]) - (ej[k] + hj[k]));
            gi[k] += c * eu[k];
            gj[k] -= c * eu[k];
        }
    }
    *loss = total / (double)B;
    memset(gW, 0, sizeof(float) * (size_t)(d * F));
    for (pv_index q = 0; q < m->n_mod; q++) {
        align_modality(m, q, E, W, B, users, delta, Q, G, coef, gE, gW, loss, n_threads);
    }
    /* Back through the user-item graph (A^T = A), and the item rows through S^T. */
    pv_propagate_f32(m->ui, m->n_ui_layers, d, gE, gE0, prop, n_threads);
    pv_graph_power_f32(m->ii_t, m->n_ii_layers, d, gE + nu * d, h, hbuf, n_threads);
#pragma omp parallel for num_threads(n_threads) schedule(static)
    for (pv_index k = 0; k < ni; k++) {
        gE0[nu * d + k] += h[k];
    }
    return isfinite(*loss) ? PV_OK : PV_EDOM;
}

/* The state one FREEDOM step needs besides the batch (pv_bpr_step_fn's model). */
typedef struct {
    const pv_freedom_model *m;
    const pv_opt *opt;
    float *E0, *W, *E0_m1, *E0_m2, *W_m1, *W_m2, *gE0, *gW, *work;
} freedom_trainer;

static pv_status
freedom_step(void *ctx, pv_index B, const int64_t *users, const int64_t *pos,
             const int64_t *neg, int64_t t, double *loss, int n_threads)
{
    freedom_trainer *tr = ctx;
    const pv_freedom_model *m = tr->m;
    pv_status st = pv_freedom_batch_f32(m, tr->E0, tr->W, B, users, pos, neg, tr->gE0, tr->gW,
                                        loss, tr->work, n_threads);
    if (st == PV_OK) {
        st = pv_opt_dense_f32(tr->opt, (m->n_users + m->n_items) * m->dim, tr->E0, tr->gE0,
                              tr->E0_m1, tr->E0_m2, 0.0f, t, n_threads);
    }
    if (st == PV_OK) {
        st = pv_opt_dense_f32(tr->opt, m->dim * m->n_feat, tr->W, tr->gW, tr->W_m1, tr->W_m2,
                              0.0f, t, n_threads);
    }
    return st;
}

pv_status
pv_freedom_epoch_f32(const pv_freedom_model *m, const pv_opt *opt, float *E0, float *W,
                     float *E0_m1, float *E0_m2, float *W_m1, float *W_m2, pv_index n_pairs,
                     const int64_t *pair_users, const int64_t *pair_items, pv_index B,
                     uint64_t seed, uint32_t epoch, int64_t *step, double *loss,
                     pv_index *n_batches, int n_threads)
{
    *loss = 0.0;
    *n_batches = 0;
    if (B < 1 || n_pairs < 1 || m->n_ui_layers < 0 || m->n_ii_layers < 0 ||
        m->ui->n_nodes != m->n_users + m->n_items || m->ii->n_nodes != m->n_items ||
        m->ii_t->n_nodes != m->n_items) {
        return PV_EINVAL;
    }
    const pv_index b = B < n_pairs ? B : n_pairs;
    freedom_trainer tr = {m, opt, E0, W, E0_m1, E0_m2, W_m1, W_m2, NULL, NULL, NULL};
    tr.gE0 = malloc(sizeof(float) * (size_t)((m->n_users + m->n_items) * m->dim) + 1);
    tr.gW = malloc(sizeof(float) * (size_t)(m->dim * m->n_feat) + 1);
    tr.work = malloc(sizeof(float) * (size_t)pv_freedom_workspace_f32(m, b) + 1);
    pv_status st = PV_ENOMEM;
    if (tr.gE0 != NULL && tr.gW != NULL && tr.work != NULL) {
        st = pv_bpr_epoch(m->n_users, m->n_items, n_pairs, pair_users, pair_items, B, seed,
                          epoch, freedom_step, &tr, step, loss, n_batches, n_threads);
    }
    free(tr.gE0);
    free(tr.gW);
    free(tr.work);
    return st;
}
