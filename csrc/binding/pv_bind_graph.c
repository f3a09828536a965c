/* pv_bind_graph.c -- graph propagation and LightGCN: _core.propagate, _core.lgcn_batch,
 * _core.lgcn_epoch. */
#define NO_IMPORT_ARRAY
#include "pv_numpy.h"
#include <math.h>
#include "pv_bind_graph.h"
#include "../kernels/pv_lgcn.h"

void
pv_graph_clear(pv_graph_arrays *ga)
{
    Py_XDECREF(ga->indptr);
    Py_XDECREF(ga->indices);
    Py_XDECREF(ga->values);
    memset(ga, 0, sizeof(*ga));
}

int
pv_graph_take(PyObject *oindptr, PyObject *oindices, PyObject *ovalues, npy_intp n_nodes,
              const char *func, pv_graph_arrays *ga)
{
    memset(ga, 0, sizeof(*ga));
    npy_intp ptr_shape[1] = {n_nodes + 1};
    ga->indptr = pv_input(oindptr, NPY_INT64, 1, ptr_shape, func, "indptr");
    if (ga->indptr == NULL) {
        return -1;
    }
    npy_intp nnz[1] = {PV_I64(ga->indptr)[n_nodes]};
    if (nnz[0] < 0) {
        PyErr_Format(PyExc_ValueError, "%s(): 'indptr' must end at the number of edges (>= 0)",
                     func);
        return -1;
    }
    ga->indices = pv_input(oindices, NPY_INT64, 1, nnz, func, "indices");
    ga->values = ga->indices ? pv_input(ovalues, NPY_FLOAT32, 1, nnz, func, "values") : NULL;
    if (ga->values == NULL) {
        return -1;
    }
    pv_graph g = {n_nodes, PV_I64(ga->indptr), PV_I64(ga->indices), PV_F32(ga->values)};
    ga->graph = g;
    pv_status st = pv_graph_check(&ga->graph);
    if (st != PV_OK) {
        PyErr_Format(st == PV_EINDEX ? PyExc_IndexError : PyExc_ValueError,
                     "%s(): the graph must be a CSR matrix: indptr starting at 0 and "
                     "non-decreasing, indices in [0, %zd)", func, (Py_ssize_t)n_nodes);
        return -1;
    }
    return 0;
}

int
pv_threads_of(int n_threads)
{
    return n_threads > 0 ? n_threads : pv_default_threads();
}

PyDoc_STRVAR(core_propagate_doc,
"propagate($module, /, indptr, indices, values, E0, n_layers, mean=True, n_threads=0)\n--\n\n"
"Over a CSR graph A (float32): LightGCN's layer combination 1/(L+1) sum_l A^l E0, or\n"
"with mean=False the plain power A^L E0 (FREEDOM's item-item convolution).");

static PyObject *
core_propagate(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"indptr", "indices", "values", "E0", "n_layers", "mean",
                             "n_threads", NULL};
    PyObject *optr, *oidx, *oval, *oE0;
    Py_ssize_t n_layers;
    int mean = 1, n_threads = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOn|pi:propagate", kwlist, &optr, &oidx,
                                     &oval, &oE0, &n_layers, &mean, &n_threads)) {
        return NULL;
    }
    if (n_layers < 0) {
        return PyErr_Format(PyExc_ValueError, "propagate(): 'n_layers' must be >= 0, got %zd",
                            n_layers);
    }
    PyArrayObject *E0 = pv_input(oE0, NPY_FLOAT32, 2, NULL, "propagate", "E0");
    if (E0 == NULL) {
        return NULL;
    }
    pv_graph_arrays ga;
    PyObject *result = NULL;
    float *work = NULL;
    if (pv_graph_take(optr, oidx, oval, PyArray_DIM(E0, 0), "propagate", &ga) < 0) {
        goto done;
    }
    const pv_index d = PV_DIM(E0, 1);
    PyArrayObject *E = (PyArrayObject *)PyArray_SimpleNew(2, PyArray_DIMS(E0), NPY_FLOAT32);
    work = E ? pv_workspace(2 * ga.graph.n_nodes * d) : NULL;
    if (work == NULL) {
        Py_XDECREF(E);
        goto done;
    }
    PV_BEGIN_KERNEL
    if (mean) {
        pv_propagate_f32(&ga.graph, n_layers, d, PV_F32(E0), PV_F32(E), work,
                         pv_threads_of(n_threads));
    } else {
        pv_graph_power_f32(&ga.graph, n_layers, d, PV_F32(E0), PV_F32(E), work,
                           pv_threads_of(n_threads));
    }
    PV_END_KERNEL
    result = (PyObject *)E;
done:
    free(work);
    pv_graph_clear(&ga);
    Py_DECREF(E0);
    return result;
}

PyDoc_STRVAR(core_lgcn_batch_doc,
"lgcn_batch($module, /, indptr, indices, values, E0, n_users, n_layers, users, pos, neg, "
"reg, n_threads=0)\n--\n\n"
"One LightGCN batch: (loss, dL/dE0) of the BPR loss with L2 on the batch's layer-0 rows.");

static PyObject *
core_lgcn_batch(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"indptr", "indices", "values", "E0", "n_users", "n_layers", "users",
                             "pos", "neg", "reg", "n_threads", NULL};
    PyObject *optr, *oidx, *oval, *oE0, *ou, *op, *on;
    Py_ssize_t n_users, n_layers;
    double reg;
    int n_threads = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOnnOOOd|i:lgcn_batch", kwlist, &optr, &oidx,
                                     &oval, &oE0, &n_users, &n_layers, &ou, &op, &on, &reg,
                                     &n_threads)) {
        return NULL;
    }
    PyArrayObject *E0 = pv_input(oE0, NPY_FLOAT32, 2, NULL, "lgcn_batch", "E0");
    if (E0 == NULL) {
        return NULL;
    }
    PyArrayObject *u = NULL, *p = NULL, *n = NULL, *gE0 = NULL;
    pv_graph_arrays ga;
    memset(&ga, 0, sizeof(ga));
    PyObject *result = NULL;
    float *work = NULL;
    const npy_intp n_nodes = PyArray_DIM(E0, 0);
    if (n_users < 0 || n_users > n_nodes || n_layers < 0 || !(reg >= 0) || !isfinite(reg)) {
        PyErr_SetString(PyExc_ValueError, "lgcn_batch(): need 0 <= n_users <= E0.shape[0], "
                                          "n_layers >= 0 and a finite reg >= 0");
        goto done;
    }
    if (pv_graph_take(optr, oidx, oval, n_nodes, "lgcn_batch", &ga) < 0) {
        goto done;
    }
    if (pv_triples(ou, op, on, n_users, n_nodes - n_users, "lgcn_batch", &u, &p, &n) < 0) {
        goto done;
    }
    npy_intp B[1] = {PyArray_DIM(u, 0)};
    pv_lgcn_model m = {&ga.graph, n_users, n_nodes - n_users, PV_DIM(E0, 1), n_layers,
                       (float)reg};
    gE0 = (PyArrayObject *)PyArray_SimpleNew(2, PyArray_DIMS(E0), NPY_FLOAT32);
    work = gE0 ? pv_workspace(pv_lgcn_workspace_f32(&m, B[0])) : NULL;
    if (work == NULL) {
        goto done;
    }
    double loss = 0.0;
    pv_status st;
    PV_BEGIN_KERNEL
    st = pv_lgcn_batch_f32(&m, PV_F32(E0), B[0], PV_I64(u), PV_I64(p), PV_I64(n), PV_F32(gE0),
                           &loss, work, pv_threads_of(n_threads));
    PV_END_KERNEL
    if (st != PV_OK) {
        pv_raise_status(st, "lgcn_batch");
        goto done;
    }
    result = Py_BuildValue("dO", loss, (PyObject *)gE0);
done:
    free(work);
    pv_graph_clear(&ga);
    Py_XDECREF(gE0);
    Py_XDECREF(u);
    Py_XDECREF(p);
    Py_XDECREF(n);
    Py_DECREF(E0);
    return result;
}

PyDoc_STRVAR(core_lgcn_epoch_doc,
"lgcn_epoch($module, /, indptr, indices, values, E0, m1, m2, n_users, n_layers, users, items, "
"lr, reg, batch_size, seed, epoch, step, n_threads=0)\n--\n\n"
"One LightGCN training epoch in place on E0 and its Adam moments m1, m2.\n"
"Returns (sum of batch losses, number of batches, Adam step count).");

static PyObject *
core_lgcn_epoch(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"indptr", "indices", "values", "E0", "m1", "m2", "n_users",
                             "n_layers", "users", "items", "lr", "reg", "batch_size", "seed",
                             "epoch", "step", "n_threads", NULL};
    PyObject *optr, *oidx, *oval, *oE0, *om1, *om2, *ou, *oi, *oseed, *oepoch;
    Py_ssize_t n_users, n_layers, batch;
    double lr, reg;
    long long step;
    int n_threads = 0;
    unsigned long long seed, epoch;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOOnnOOddnOOL|i:lgcn_epoch", kwlist, &optr,
                                     &oidx, &oval, &oE0, &om1, &om2, &n_users, &n_layers, &ou,
                                     &oi, &lr, &reg, &batch, &oseed, &oepoch, &step,
                                     &n_threads) ||
        pv_counter(oseed, 64, "lgcn_epoch", "seed", &seed) < 0 ||
        pv_counter(oepoch, 32, "lgcn_epoch", "epoch", &epoch) < 0) {
        return NULL;
    }
    if (!(lr > 0) || !isfinite(lr) || !(reg >= 0) || !isfinite(reg) || batch < 1 ||
        n_layers < 0 || step < 0) {
        return PyErr_Format(PyExc_ValueError, "lgcn_epoch(): need lr > 0, reg >= 0 (finite), "
                                              "batch_size >= 1, n_layers >= 0, step >= 0");
    }
    PyArrayObject *E0 = pv_inout(oE0, NPY_FLOAT32, 2, NULL, "lgcn_epoch", "E0");
    if (E0 == NULL) {
        return NULL;
    }
    PyArrayObject *m1 = pv_inout(om1, NPY_FLOAT32, 2, PyArray_DIMS(E0), "lgcn_epoch", "m1");
    PyArrayObject *m2 = m1 ? pv_inout(om2, NPY_FLOAT32, 2, PyArray_DIMS(E0), "lgcn_epoch", "m2")
                           : NULL;
    PyArrayObject *u = m2 ? pv_input(ou, NPY_INT64, 1, NULL, "lgcn_epoch", "users") : NULL;
    npy_intp n_pairs[1] = {u ? PyArray_DIM(u, 0) : 0};
    PyArrayObject *it = u ? pv_input(oi, NPY_INT64, 1, n_pairs, "lgcn_epoch", "items") : NULL;
    pv_graph_arrays ga;
    memset(&ga, 0, sizeof(ga));
    PyObject *result = NULL;
    const npy_intp n_nodes = PyArray_DIM(E0, 0);
    if (it == NULL) {
        goto done;
    }
    if (n_users < 0 || n_users >= n_nodes) {
        PyErr_Format(PyExc_ValueError, "lgcn_epoch(): 'n_users' must lie in [0, %zd)",
                     (Py_ssize_t)n_nodes);
        goto done;
    }
    if (pv_graph_take(optr, oidx, oval, n_nodes, "lgcn_epoch", &ga) < 0) {
        goto done;
    }
    pv_lgcn_model m = {&ga.graph, n_users, n_nodes - n_users, PV_DIM(E0, 1), n_layers,
                       (float)reg};
    pv_opt opt = {PV_OPT_ADAM, (float)lr, 0.9f, 0.999f, 1e-8f};
    int64_t step64 = step;
    double loss = 0.0;
    pv_index n_batches = 0;
    pv_status st;
    PV_BEGIN_KERNEL
    st = pv_lgcn_epoch_f32(&m, &opt, PV_F32(E0), PV_F32(m1), PV_F32(m2), n_pairs[0], PV_I64(u),
                           PV_I64(it), batch, seed, (uint32_t)epoch, &step64, &loss, &n_batches,
                           pv_threads_of(n_threads));
    PV_END_KERNEL
    result = pv_epoch_result(st, "lgcn_epoch", loss, n_batches, step64);
done:
    pv_graph_clear(&ga);
    Py_XDECREF(u);
    Py_XDECREF(it);
    Py_XDECREF(m1);
    Py_XDECREF(m2);
    Py_DECREF(E0);
    return result;
}

PyMethodDef pv_graph_methods[] = {
    {"propagate", (PyCFunction)(void (*)(void))core_propagate, METH_VARARGS | METH_KEYWORDS,
     core_propagate_doc},
    {"lgcn_batch", (PyCFunction)(void (*)(void))core_lgcn_batch, METH_VARARGS | METH_KEYWORDS,
     core_lgcn_batch_doc},
    {"lgcn_epoch", (PyCFunction)(void (*)(void))core_lgcn_epoch, METH_VARARGS | METH_KEYWORDS,
     core_lgcn_epoch_doc},
    {NULL, NULL, 0, NULL},
};
