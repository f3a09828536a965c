#include <string.h>
#include "pv_graph.h"

pv_status
pv_graph_check(const pv_graph *g)
{
    if (g->n_nodes < 0 || g->indptr[0] != 0) {
        return PV_EINVAL;
    }
    for (pv_index r = 0; r < g->n_nodes; r++) {
        if (g->indptr[r + 1] < g->indptr[r]) {
            return PV_EINVAL;
        }
    }
    for (int64_t e = 0; e < g->indptr[g->n_nodes]; e++) {
        if (g->indices[e] < 0 || g->indices[e] >= g->n_nodes) {
            return PV_EINDEX;
        }
    }
    return PV_OK;
}

PV_HOT void
pv_spmm_f32(const pv_graph *g, pv_index dim, const float *PV_RESTRICT X, float *PV_RESTRICT Y,
            int n_threads)
{
    /* Rows of equal work are not equal in length (degrees are skewed); dynamic chunks
     * balance them, and each row is still summed by one thread in CSR order. */
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 64)
    for (pv_index r = 0; r < g->n_nodes; r++) {
        float *PV_RESTRICT y = Y + r * dim;
        memset(y, 0, sizeof(float) * (size_t)dim);
        for (int64_t e = g->indptr[r]; e < g->indptr[r + 1]; e++) {
            const float w = g->values[e];
            const float *PV_RESTRICT x = X + g->indices[e] * dim;
            for (pv_index c = 0; c < dim; c++) {
                y[c] += w * x[c];
            }
        }
    }
}

void
pv_propagate_f32(const pv_graph *g, pv_index n_layers, pv_index dim, const float *PV_RESTRICT E0,
                 float *PV_RESTRICT E, float *PV_RESTRICT work, int n_threads)
{
    const pv_index n = g->n_nodes * dim;
    float *cur = work, *next = work + n;
    memcpy(E, E0, sizeof(float) * (size_t)n);
    const float *src = E0;
    for (pv_index l = 1; l <= n_layers; l++) {
        pv_spmm_f32(g, dim, src, next, n_threads);
#pragma omp parallel for num_threads(n_threads) schedule(static)
        for (pv_index k = 0; k < n; k++) {
            E[k] += next[k];
        }
        float *t = cur;
        cur = next;
        next = t;
        src = cur;
    }
    const float scale = 1.0f / (float)(n_layers + 1);
#pragma omp parallel for num_threads(n_threads) schedule(static)
    for (pv_index k = 0; k < n; k++) {
        E[k] *= scale;
    }
}

void
pv_graph_power_f32(const pv_graph *g, pv_index n_layers, pv_index dim, const float *src,
                   float *dst, float *work, int n_threads)
{
    const pv_index n = g->n_nodes * dim;
    if (n_layers == 0) {
        memcpy(dst, src, sizeof(float) * (size_t)n);
        return;
    }
    const float *cur = src;
    for (pv_index l = 1; l <= n_layers; l++) {
        float *out = l == n_layers ? dst : work + (l % 2) * n;
        pv_spmm_f32(g, dim, cur, out, n_threads);
        cur = out;
    }
}
