/*
 * pv_graph.h -- sparse graph propagation (LightGCN, He et al. 2020, eq. 7-8).
 *
 * A graph is a square CSR matrix A (n_nodes x n_nodes) with float32 weights.
 * pv_spmm_f32 computes Y = A X for a dense row-major X (n_nodes x dim): each
 * output row is summed by one thread in CSR order, so the result does not
 * depend on the thread count.  pv_propagate_f32 computes LightGCN's layer
 * combination  E = 1/(L+1) sum_{l=0..L} A^l E0.
 *
 * Its transpose: the gradient of a loss f(E) with respect to E0 is
 *     dE0 = 1/(L+1) sum_l (A^T)^l dE,
 * the same propagation over A^T.  LightGCN's symmetric normalisation
 * D^-1/2 A D^-1/2 of an undirected graph makes A^T = A, so the backward is
 * pv_propagate_f32 itself on the gradient; a directed graph needs its
 * transpose's CSR.
 */
#ifndef PV_GRAPH_H
#define PV_GRAPH_H

#include "pv_common.h"

typedef struct {
    pv_index n_nodes;
    const int64_t *indptr;  /* n_nodes + 1, non-decreasing, indptr[0] = 0 */
    const int64_t *indices; /* indptr[n_nodes] column ids in [0, n_nodes)  */
    const float *values;    /* indptr[n_nodes] weights                     */
} pv_graph;

/* PV_EINVAL for a malformed indptr, PV_EINDEX for a column out of range. */
pv_status pv_graph_check(const pv_graph *g);

/* Y = A X, X and Y (n_nodes x dim), distinct.  The graph is trusted (pv_graph_check). */
void pv_spmm_f32(const pv_graph *g, pv_index dim, const float *PV_RESTRICT X,
                 float *PV_RESTRICT Y, int n_threads);

/*
 * E = 1/(n_layers+1) sum_{l=0..n_layers} A^l E0 (n_nodes x dim).  work holds
 * 2 * n_nodes * dim floats; E may not alias E0 or work.  n_layers >= 0.
 */
void pv_propagate_f32(const pv_graph *g, pv_index n_layers, pv_index dim,
                      const float *PV_RESTRICT E0, float *PV_RESTRICT E,
                      float *PV_RESTRICT work, int n_threads);

/*
 * dst = A^n_layers src (n_nodes x dim; the plain power, FREEDOM's item-item
 * convolution).  work holds 2 * n_nodes * dim floats; dst may not alias src.
 */
void pv_graph_power_f32(const pv_graph *g, pv_index n_layers, pv_index dim, const float *src,
                        float *dst, float *work, int n_threads);

#endif /* PV_GRAPH_H */
