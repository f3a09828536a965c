/* pv_bind_graph.h -- a CSR graph handed in from Python (pv_bind_graph.c), for every
 * binding file of the graph models. */
#ifndef PV_BIND_GRAPH_H
#define PV_BIND_GRAPH_H

#include "pv_numpy.h"
#include "../kernels/pv_graph.h"

typedef struct {
    PyArrayObject *indptr, *indices, *values;
    pv_graph graph;
} pv_graph_arrays;

/* The three arrays of a CSR graph over n_nodes nodes, checked (pv_graph_check); on
 * failure -1 with an exception naming func (release with pv_graph_clear either way). */
int pv_graph_take(PyObject *oindptr, PyObject *oindices, PyObject *ovalues, npy_intp n_nodes,
                  const char *func, pv_graph_arrays *ga);
void pv_graph_clear(pv_graph_arrays *ga);

/* n_threads, or OpenMP's default when it is <= 0. */
int pv_threads_of(int n_threads);

#endif /* PV_BIND_GRAPH_H */
