#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "pv_lgcn.h"
#include "pv_rng.h"
#include "pv_train.h"

pv_index
pv_lgcn_workspace_f32(const pv_lgcn_model *m, pv_index B)
{
    return 4 * m->graph->n_nodes * m->dim + 2 * B;
}

/* softplus(-x) = log(1 + e^-x), without overflow for large |x|. */
static double
softplus_neg(double x)
{
    return x > 0 ? log1p(exp(-x)) : -x + log1p(exp(x));
}

static float
dot(const float *a, const float *b, pv_index n)
{
    float s = 0.0f;
    for (pv_index c = 0; c < n; c++) {
        s += a[c] * b[c];
    }
    return s;
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
        const float x = dot(eu, E + (nu + pos[r]) * d, d) - dot(eu, E + (nu + neg[r]) * d, d);
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
        total += softplus_neg((double)xs[r]);
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
            sq += (double)dot(e0, e0, d);
            for (pv_index k = 0; k < d; k++) {
                ge[k] += rb * e0[k];
            }
        }
    }
    *loss = total / (double)B + (double)m->reg * sq / (2.0 * (double)B);
    return isfinite(*loss) ? PV_OK : PV_EDOM;
}

pv_status
pv_lgcn_epoch_f32(const pv_lgcn_model *m, const pv_opt *opt, float *E0, float *m1, float *m2,
                  pv_index n_pairs, const int64_t *pair_users, const int64_t *pair_items,
                  pv_index B, uint64_t seed, uint32_t epoch, int64_t *step, double *loss,
                  pv_index *n_batches, int n_threads)
{
    *loss = 0.0;
    *n_batches = 0;
    if (n_pairs < 1 || B < 1 || m->n_items < 1 || m->n_layers < 0 ||
        m->graph->n_nodes != m->n_users + m->n_items) {
        return PV_EINVAL;
    }
    for (pv_index k = 0; k < n_pairs; k++) {
        if (pair_users[k] < 0 || pair_users[k] >= m->n_users || pair_items[k] < 0 ||
            pair_items[k] >= m->n_items) {
            return PV_EINDEX;
        }
    }
    if (B > n_pairs) {
        B = n_pairs;
    }
    const pv_index n = m->graph->n_nodes * m->dim;
    int64_t *perm = malloc(sizeof(int64_t) * (size_t)n_pairs);
    int64_t *triples = malloc(sizeof(int64_t) * (size_t)(3 * B));
    float *grad = malloc(sizeof(float) * (size_t)n + 1);
    float *work = malloc(sizeof(float) * (size_t)pv_lgcn_workspace_f32(m, B));
    pv_status st = (perm && triples && grad && work) ? PV_OK : PV_ENOMEM;
    if (st == PV_OK) {
        pv_permutation(n_pairs, seed, PV_STREAM_SHUFFLE, epoch, perm);
    }
    int64_t *users = triples, *pos = triples + B, *neg = triples + 2 * B;
    double total = 0.0;
    pv_index done = 0;
    for (pv_index lo = 0; st == PV_OK && lo < n_pairs; lo += B) {
        const pv_index nb = (n_pairs - lo < B) ? n_pairs - lo : B;
        for (pv_index r = 0; r < nb; r++) {
            users[r] = pair_users[perm[lo + r]];
            pos[r] = pair_items[perm[lo + r]];
            pv_train_negatives(m->n_items, 1, seed, epoch, lo + r, neg + r);
        }
        double batch_loss = 0.0;
        st = pv_lgcn_batch_f32(m, E0, nb, users, pos, neg, grad, &batch_loss, work, n_threads);
        if (st == PV_OK) {
            st = pv_opt_dense_f32(opt, n, E0, grad, m1, m2, 0.0f, *step + 1, n_threads);
        }
        if (st == PV_OK) {
            *step += 1;
            total += batch_loss;
            done++;
        }
    }
    free(perm);
    free(triples);
    free(grad);
    free(work);
    *loss = total;
    *n_batches = done;
    return st;
}
