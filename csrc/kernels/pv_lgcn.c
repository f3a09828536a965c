#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "pv_lgcn.h"
#include "pv_bpr.h"

pv_index
pv_lgcn_workspace_f32(const pv_lgcn_model *m, pv_index B)
{
    return 4 * m->graph->n_nodes * m->dim + 2 * B;
}

pv_status
pv_lgcn_batch_f32(const pv_lgcn_model *m, const float *E0, pv_index B, const int64_t *users,
                  const int64_t *pos, const int64_t *neg, float *gE0, double *loss, float *work,
                  int n_threads)
{
    const pv_graph *g = m->graph;
    const pv_index d = m->dim, n = g->n_nodes * d, nu = m->n_users;
    float *E = work, *gE = work + n, *prop = work + 2 * n, *coef = work + 4 * n;
    float *xs = coef + B;
    *loss = 0.0;
    if (B < 1) {
        return PV_EINVAL;
    }
    pv_propagate_f32(g, m->n_layers, d, E0, E, prop, n_threads);
    /* dL/dx_r = -sigmoid(-x_r) / B, each triple on its own. */
#pragma omp parallel for num_threads(n_threads) schedule(static)
    for (pv_index r = 0; r < B; r++) {
        const float *eu = E + users[r] * d;
        const float x =
            pv_dot_f32(eu, E + (nu + pos[r]) * d, d) - pv_dot_f32(eu, E + (nu + neg[r]) * d, d);
        xs[r] = x;
        coef[r] = (float)(-1.0 / (1.0 + exp((double)x)) / (double)B);
    }
    double total = 0.0, sq = 0.0;
    memset(gE, 0, sizeof(float) * (size_t)n);
    /* The scatter and the sums run in triple order on one thread (fixed order). */
    for (pv_index r = 0; r < B; r++) {
        const float *eu = E + users[r] * d;
        const float *ei = E + (nu + pos[r]) * d, *ej = E + (nu + neg[r]) * d;
        float *gu = gE + users[r] * d, *gi = gE + (nu + pos[r]) * d, *gj = gE + (nu + neg[r]) * d;
        const float c = coef[r];
        total += pv_softplus_neg((double)xs[r]);
        for (pv_index k = 0; k < d; k++) {
            gu[k] += c * (ei[k] - ej[k]);
            gi[k] += c * eu[k];
            gj[k] -= c * eu[k];
        }
    }
    pv_propagate_f32(g, m->n_layers, d, gE, gE0, prop, n_threads);
    const float rb = m->reg / (float)B;
    for (pv_index r = 0; r < B; r++) {
        const int64_t rows[3] = {users[r], nu + pos[r], nu + neg[r]};
        for (int t = 0; t < 3; t++) {
            const float *e0 = E0 + rows[t] * d;
            float *ge = gE0 + rows[t] * d;
            sq += (double)pv_dot_f32(e0, e0, d);
            for (pv_index k = 0; k < d; k++) {
                ge[k] += rb * e0[k];
            }
        }
    }
    *loss = total / (double)B + (double)m->reg * sq / (2.0 * (double)B);
    return isfinite(*loss) ? PV_OK : PV_EDOM;
}

/* The state one LightGCN step needs besides the batch (pv_bpr_step_fn's model). */
typedef struct {
    const pv_lgcn_model *m;
    const pv_opt *opt;
    float *E0, *m1, *m2, *grad, *work;
} lgcn_trainer;

static pv_status
lgcn_step(void *ctx, pv_index B, const int64_t *users, const int64_t *pos, const int64_t *neg,
          int64_t t, double *loss, int n_threads)
{
    lgcn_trainer *tr = ctx;
    pv_status st = pv_lgcn_batch_f32(tr->m, tr->E0, B, users, pos, neg, tr->grad, loss,
                                     tr->work, n_threads);
    if (st != PV_OK) {
        return st;
    }
    return pv_opt_dense_f32(tr->opt, tr->m->graph->n_nodes * tr->m->dim, tr->E0, tr->grad,
                            tr->m1, tr->m2, 0.0f, t, n_threads);
}

pv_status
pv_lgcn_epoch_f32(const pv_lgcn_model *m, const pv_opt *opt, float *E0, float *m1, float *m2,
                  pv_index n_pairs, const int64_t *pair_users, const int64_t *pair_items,
                  pv_index B, uint64_t seed, uint32_t epoch, int64_t *step, double *loss,
                  pv_index *n_batches, int n_threads)
{
    *loss = 0.0;
    *n_batches = 0;
    if (m->n_layers < 0 || m->graph->n_nodes != m->n_users + m->n_items || B < 1) {
        return PV_EINVAL;
    }
    const pv_index b = B < n_pairs ? B : n_pairs;
    lgcn_trainer tr = {m, opt, E0, m1, m2, NULL, NULL};
    tr.grad = malloc(sizeof(float) * (size_t)(m->graph->n_nodes * m->dim) + 1);
    tr.work = malloc(sizeof(float) * (size_t)pv_lgcn_workspace_f32(m, b > 0 ? b : 1));
    pv_status st = PV_ENOMEM;
    if (tr.grad != NULL && tr.work != NULL) {
        st = pv_bpr_epoch(m->n_users, m->n_items, n_pairs, pair_users, pair_items, B, seed,
                          epoch, lgcn_step, &tr, step, loss, n_batches, n_threads);
    }
    free(tr.grad);
    free(tr.work);
    return st;
}
