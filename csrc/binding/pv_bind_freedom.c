/* pv_bind_freedom.c -- FREEDOM: _core.freedom_batch (loss and gradients, for tests) and
 * _core.freedom_epoch (one training epoch in place). */
#define NO_IMPORT_ARRAY
#include "pv_bind_graph.h"
#include <math.h>
#include "../kernels/pv_freedom.h"

/* Everything a FREEDOM call takes besides the batch and the optimiser. */
typedef struct {
    pv_graph_arrays ui, ii, ii_t;
    PyArrayObject *E0, *W, *cols, *X;
    pv_freedom_model m;
} freedom_args;

static void
args_clear(freedom_args *a)
{
    pv_graph_clear(&a->ui);
    pv_graph_clear(&a->ii);
    pv_graph_clear(&a->ii_t);
    Py_XDECREF(a->E0);
    Py_XDECREF(a->W);
    Py_XDECREF(a->cols);
    Py_XDECREF(a->X);
}

static int
graph_tuple(PyObject *obj, npy_intp n_nodes, const char *func, const char *name,
            pv_graph_arrays *ga)
{
    if (!PyTuple_Check(obj) || PyTuple_GET_SIZE(obj) != 3) {
        PyErr_Format(PyExc_TypeError, "%s(): '%s' must be a tuple (indptr, indices, values)",
                     func, name);
        return -1;
    }
    return pv_graph_take(PyTuple_GET_ITEM(obj, 0), PyTuple_GET_ITEM(obj, 1),
                         PyTuple_GET_ITEM(obj, 2), n_nodes, func, ga);
}

/* E0 (n_users + n_items, dim) and W (dim, n_feat) in place when writable; the three
 * graphs; the modality bounds cols (n_mod + 1, from 0 to n_feat, non-decreasing). */
static int
args_take(PyObject *oui, PyObject *oii, PyObject *oiit, PyObject *oE0, PyObject *oW,
          PyObject *ocols, PyObject *oX, Py_ssize_t n_users, Py_ssize_t n_ui, Py_ssize_t n_ii,
          double align, int writable, const char *func, freedom_args *a)
{
    memset(a, 0, sizeof(*a));
    a->E0 = writable ? pv_inout(oE0, NPY_FLOAT32, 2, NULL, func, "E0")
                     : pv_input(oE0, NPY_FLOAT32, 2, NULL, func, "E0");
    if (a->E0 == NULL) {
        return -1;
    }
    const npy_intp n_nodes = PyArray_DIM(a->E0, 0), d = PyArray_DIM(a->E0, 1);
    if (n_users < 0 || n_users >= n_nodes || n_ui < 0 || n_ii < 0 || !(align >= 0) ||
        !isfinite(align)) {
        PyErr_Format(PyExc_ValueError, "%s(): need 0 <= n_users < E0.shape[0], layer counts "
                     ">= 0 and a finite align >= 0", func);
        return -1;
    }
    const npy_intp n_items = n_nodes - n_users;
    a->X = pv_input(oX, NPY_FLOAT32, 2, (npy_intp[]){n_items, -1}, func, "X");
    if (a->X == NULL) {
        return -1;
    }
    const npy_intp F = PyArray_DIM(a->X, 1);
    npy_intp wshape[2] = {d, F};
    a->W = writable ? pv_inout(oW, NPY_FLOAT32, 2, wshape, func, "W")
                    : pv_input(oW, NPY_FLOAT32, 2, wshape, func, "W");
    a->cols = a->W ? pv_input(ocols, NPY_INT64, 1, NULL, func, "cols") : NULL;
    if (a->cols == NULL) {
        return -1;
    }
    const int64_t *c = PV_I64(a->cols);
    const npy_intp nc = PyArray_DIM(a->cols, 0);
    int ok = nc >= 1 && c[0] == 0 && c[nc - 1] == F;
    for (npy_intp q = 1; ok && q < nc; q++) {
        ok = c[q] >= c[q - 1];
    }
    if (!ok) {
        PyErr_Format(PyExc_ValueError, "%s(): 'cols' must rise from 0 to X.shape[1] = %zd",
                     func, (Py_ssize_t)F);
        return -1;
    }
    if (graph_tuple(oui, n_nodes, func, "ui", &a->ui) < 0 ||
        graph_tuple(oii, n_items, func, "ii", &a->ii) < 0 ||
        graph_tuple(oiit, n_items, func, "ii_t", &a->ii_t) < 0) {
        return -1;
    }
    pv_freedom_model m = {&a->ui.graph, &a->ii.graph, &a->ii_t.graph, n_users, n_items, d, n_ui,
                          n_ii, F, nc - 1, c, PV_F32(a->X), (float)align};
    a->m = m;
    return 0;
}

PyDoc_STRVAR(core_freedom_batch_doc,
"freedom_batch($module, /, ui, ii, ii_t, E0, W, cols, X, n_users, n_ui_layers, n_ii_layers, "
"users, pos, neg, align, n_threads=0)\n--\n\n"
"One FREEDOM batch: (loss, dL/dE0, dL/dW).  ui, ii, ii_t: (indptr, indices, values) CSR\n"
"graphs (user-item, item-item and its transpose); cols: the modalities' column bounds.");

static PyObject *
core_freedom_batch(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"ui", "ii", "ii_t", "E0", "W", "cols", "X", "n_users",
                             "n_ui_layers", "n_ii_layers", "users", "pos", "neg", "align",
                             "n_threads", NULL};
    const char *f = "freedom_batch";
    PyObject *oui, *oii, *oiit, *oE0, *oW, *ocols, *oX, *ou, *op, *on;
    Py_ssize_t n_users, n_ui, n_ii;
    double align;
    int n_threads = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOOOnnnOOOd|i:freedom_batch", kwlist, &oui,
                                     &oii, &oiit, &oE0, &oW, &ocols, &oX, &n_users, &n_ui, &n_ii,
                                     &ou, &op, &on, &align, &n_threads)) {
        return NULL;
    }
    freedom_args a;
    PyArrayObject *u = NULL, *p = NULL, *n = NULL, *gE0 = NULL, *gW = NULL;
    PyObject *result = NULL;
    float *work = NULL;
    if (args_take(oui, oii, oiit, oE0, oW, ocols, oX, n_users, n_ui, n_ii, align, 0, f, &a) < 0) {
        goto done;
    }
    if (pv_triples(ou, op, on, a.m.n_users, a.m.n_items, f, &u, &p, &n) < 0) {
        goto done;
    }
    npy_intp B[1] = {PyArray_DIM(u, 0)};
    gE0 = (PyArrayObject *)PyArray_SimpleNew(2, PyArray_DIMS(a.E0), NPY_FLOAT32);
    gW = (PyArrayObject *)PyArray_SimpleNew(2, PyArray_DIMS(a.W), NPY_FLOAT32);
    work = gE0 && gW ? pv_workspace(pv_freedom_workspace_f32(&a.m, B[0])) : NULL;
    if (work == NULL) {
        goto done;
    }
    double loss = 0.0;
    pv_status st;
    PV_BEGIN_KERNEL
    st = pv_freedom_batch_f32(&a.m, PV_F32(a.E0), PV_F32(a.W), B[0], PV_I64(u), PV_I64(p),
                              PV_I64(n), PV_F32(gE0), PV_F32(gW), &loss, work,
                              pv_threads_of(n_threads));
    PV_END_KERNEL
    if (st != PV_OK) {
        pv_raise_status(st, f);
        goto done;
    }
    result = Py_BuildValue("dOO", loss, (PyObject *)gE0, (PyObject *)gW);
done:
    free(work);
    Py_XDECREF(gE0);
    Py_XDECREF(gW);
    Py_XDECREF(u);
    Py_XDECREF(p);
    Py_XDECREF(n);
    args_clear(&a);
    return result;
}

PyDoc_STRVAR(core_freedom_epoch_doc,
"freedom_epoch($module, /, ui, ii, ii_t, E0, W, cols, X, n_users, n_ui_layers, n_ii_layers, "
"adam, users, items, lr, align, batch_size, seed, epoch, step, n_threads=0)\n--\n\n"
"One FREEDOM training epoch in place on E0, W and adam = (E0_m1, E0_m2, W_m1, W_m2).\n"
"Returns (sum of batch losses, number of batches, step count).");

static PyObject *
core_freedom_epoch(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"ui", "ii", "ii_t", "E0", "W", "cols", "X", "n_users",
                             "n_ui_layers", "n_ii_layers", "adam", "users", "items", "lr",
                             "align", "batch_size", "seed", "epoch", "step", "n_threads", NULL};
    const char *f = "freedom_epoch";
    PyObject *oui, *oii, *oiit, *oE0, *oW, *ocols, *oX, *oadam, *ou, *oi, *oseed, *oepoch;
    Py_ssize_t n_users, n_ui, n_ii, batch;
    double lr, align;
    long long step;
    int n_threads = 0;
    unsigned long long seed, epoch;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOOOnnnOOOddnOOL|i:freedom_epoch", kwlist,
                                     &oui, &oii, &oiit, &oE0, &oW, &ocols, &oX, &n_users, &n_ui,
                                     &n_ii, &oadam, &ou, &oi, &lr, &align, &batch, &oseed,
                                     &oepoch, &step, &n_threads) ||
        pv_counter(oseed, 64, f, "seed", &seed) < 0 ||
        pv_counter(oepoch, 32, f, "epoch", &epoch) < 0) {
        return NULL;
    }
    if (!(lr > 0) || !isfinite(lr) || batch < 1 || step < 0) {
        return PyErr_Format(PyExc_ValueError, "%s(): need lr > 0 (finite), batch_size >= 1 and "
                            "step >= 0", f);
    }
    if (!PyTuple_Check(oadam) || PyTuple_GET_SIZE(oadam) != 4) {
        return PyErr_Format(PyExc_TypeError, "%s(): 'adam' must be a tuple (E0_m1, E0_m2, W_m1, "
                            "W_m2)", f);
    }
    freedom_args a;
    PyArrayObject *st_arr[4] = {NULL, NULL, NULL, NULL}, *u = NULL, *it = NULL;
    PyObject *result = NULL;
    if (args_take(oui, oii, oiit, oE0, oW, ocols, oX, n_users, n_ui, n_ii, align, 1, f, &a) < 0) {
        goto done;
    }
    static const char *const names[4] = {"E0_m1", "E0_m2", "W_m1", "W_m2"};
    for (int q = 0; q < 4; q++) {
        PyArrayObject *owner = q < 2 ? a.E0 : a.W;
        st_arr[q] = pv_inout(PyTuple_GET_ITEM(oadam, q), NPY_FLOAT32, 2, PyArray_DIMS(owner), f,
                             names[q]);
        if (st_arr[q] == NULL) {
            goto done;
        }
    }
    u = pv_input(ou, NPY_INT64, 1, NULL, f, "users");
    npy_intp n_pairs[1] = {u ? PyArray_DIM(u, 0) : 0};
    it = u ? pv_input(oi, NPY_INT64, 1, n_pairs, f, "items") : NULL;
    if (it == NULL) {
        goto done;
    }
    pv_opt opt = {PV_OPT_ADAM, (float)lr, 0.9f, 0.999f, 1e-8f};
    int64_t step64 = step;
    double loss = 0.0;
    pv_index n_batches = 0;
    pv_status st;
    PV_BEGIN_KERNEL
    st = pv_freedom_epoch_f32(&a.m, &opt, PV_F32(a.E0), PV_F32(a.W), PV_F32(st_arr[0]),
                              PV_F32(st_arr[1]), PV_F32(st_arr[2]), PV_F32(st_arr[3]),
                              n_pairs[0], PV_I64(u), PV_I64(it), batch, seed, (uint32_t)epoch,
                              &step64, &loss, &n_batches, pv_threads_of(n_threads));
    PV_END_KERNEL
    result = pv_epoch_result(st, f, loss, n_batches, step64);
done:
    for (int q = 0; q < 4; q++) {
        Py_XDECREF(st_arr[q]);
    }
    Py_XDECREF(u);
    Py_XDECREF(it);
    args_clear(&a);
    return result;
}

PyMethodDef pv_freedom_methods[] = {
    {"freedom_batch", (PyCFunction)(void (*)(void))core_freedom_batch,
     METH_VARARGS | METH_KEYWORDS, core_freedom_batch_doc},
    {"freedom_epoch", (PyCFunction)(void (*)(void))core_freedom_epoch,
     METH_VARARGS | METH_KEYWORDS, core_freedom_epoch_doc},
    {NULL, NULL, 0, NULL},
};
