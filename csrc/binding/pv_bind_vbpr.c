/* pv_bind_vbpr.c -- VBPR: _core.vbpr_batch (loss and gradient, for tests) and
 * _core.vbpr_epoch (one training epoch in place). */
#define NO_IMPORT_ARRAY
#include "pv_numpy.h"
#include <math.h>
#include "../kernels/pv_vbpr.h"

enum { N_TABLES = 6 };
static const char *const TABLE_NAMES[N_TABLES] = {"gamma_u", "theta_u", "gamma_i", "bias", "E",
                                                  "beta"};

/* A tuple of the six VBPR tables, float32, checked against the shapes of `m` (its sizes are
 * read from the first tuple when m->n_users < 0).  writable: arrays written in place. */
static int
take_tables(PyObject *obj, int writable, const char *func, const char *what, pv_vbpr_model *m,
            PyArrayObject *arr[N_TABLES], pv_vbpr_tensors *out)
{
    memset(arr, 0, sizeof(PyArrayObject *) * N_TABLES);
    if (!PyTuple_Check(obj) || PyTuple_GET_SIZE(obj) != N_TABLES) {
        PyErr_Format(PyExc_TypeError, "%s(): '%s' must be a tuple of 6 arrays (gamma_u, theta_u, "
                     "gamma_i, bias, E, beta)", func, what);
        return -1;
    }
    if (m->n_users < 0) {
        for (int q = 0; q < N_TABLES; q++) {
            PyObject *a = PyTuple_GET_ITEM(obj, q);
            const int nd = (q == 3 || q == 5) ? 1 : 2;
            if (!PyArray_Check(a) || PyArray_NDIM((PyArrayObject *)a) != nd) {
                PyErr_Format(PyExc_ValueError, "%s(): '%s[%d]' (%s) must be a %d-dimensional "
                             "array", func, what, q, TABLE_NAMES[q], nd);
                return -1;
            }
        }
        PyArrayObject *gu = (PyArrayObject *)PyTuple_GET_ITEM(obj, 0);
        m->n_users = PyArray_DIM(gu, 0);
        m->k = PyArray_DIM(gu, 1);
        m->k2 = PyArray_DIM((PyArrayObject *)PyTuple_GET_ITEM(obj, 1), 1);
        m->n_items = PyArray_DIM((PyArrayObject *)PyTuple_GET_ITEM(obj, 2), 0);
        m->n_feat = PyArray_DIM((PyArrayObject *)PyTuple_GET_ITEM(obj, 5), 0);
    }
    const npy_intp shapes[N_TABLES][2] = {{m->n_users, m->k}, {m->n_users, m->k2},
                                          {m->n_items, m->k}, {m->n_items, 0},
                                          {m->k2, m->n_feat}, {m->n_feat, 0}};
    float **slot[N_TABLES] = {&out->gamma_u, &out->theta_u, &out->gamma_i, &out->bias, &out->E,
                              &out->beta};
    for (int q = 0; q < N_TABLES; q++) {
        const int nd = (q == 3 || q == 5) ? 1 : 2;
        PyObject *a = PyTuple_GET_ITEM(obj, q);
        arr[q] = writable ? pv_inout(a, NPY_FLOAT32, nd, shapes[q], func, TABLE_NAMES[q])
                          : pv_input(a, NPY_FLOAT32, nd, shapes[q], func, TABLE_NAMES[q]);
        if (arr[q] == NULL) {
            return -1;
        }
        *slot[q] = PV_F32(arr[q]);
    }
    return 0;
}

static void
release_tables(PyArrayObject *arr[N_TABLES])
{
    for (int q = 0; q < N_TABLES; q++) {
        Py_XDECREF(arr[q]);
    }
}

static int
check_reg(double lam, double lam_b, double lam_e, const char *func)
{
    if (!(lam >= 0) || !(lam_b >= 0) || !(lam_e >= 0) || !isfinite(lam) || !isfinite(lam_b) ||
        !isfinite(lam_e)) {
        PyErr_Format(PyExc_ValueError, "%s(): lam, lam_b and lam_e must be finite and >= 0",
                     func);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(core_vbpr_batch_doc,
"vbpr_batch($module, /, params, X, users, pos, neg, lam, lam_b, lam_e, n_threads=0)\n--\n\n"
"One VBPR batch: (loss, gradient tuple shaped like params).  params is the tuple\n"
"(gamma_u, theta_u, gamma_i, bias, E, beta) of float32 arrays; X the item features.");

static PyObject *
core_vbpr_batch(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"params", "X", "users", "pos", "neg", "lam", "lam_b", "lam_e",
                             "n_threads", NULL};
    const char *f = "vbpr_batch";
    PyObject *oparams, *oX, *ou, *op, *on;
    double lam, lam_b, lam_e;
    int n_threads = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOddd|i:vbpr_batch", kwlist, &oparams, &oX,
                                     &ou, &op, &on, &lam, &lam_b, &lam_e, &n_threads) ||
        check_reg(lam, lam_b, lam_e, f) < 0) {
        return NULL;
    }
    pv_vbpr_model m = {-1, 0, 0, 0, 0, {0}, NULL, (float)lam, (float)lam_b, (float)lam_e};
    PyArrayObject *par[N_TABLES], *X = NULL, *u = NULL, *p = NULL, *n = NULL;
    PyObject *grads = NULL, *result = NULL;
    float *work = NULL;
    if (take_tables(oparams, 0, f, "params", &m, par, &m.p) < 0) {
        goto done;
    }
    npy_intp xshape[2] = {m.n_items, m.n_feat};
    X = pv_input(oX, NPY_FLOAT32, 2, xshape, f, "X");
    if (X == NULL || pv_triples(ou, op, on, m.n_users, m.n_items, f, &u, &p, &n) < 0) {
        goto done;
    }
    npy_intp B[1] = {PyArray_DIM(u, 0)};
    m.X = PV_F32(X);
    grads = PyTuple_New(N_TABLES);
    if (grads == NULL) {
        goto done;
    }
    for (int q = 0; q < N_TABLES; q++) {
        PyObject *a = PyArray_NewLikeArray(par[q], NPY_CORDER, NULL, 0);
        if (a == NULL) {
            goto done;
        }
        PyTuple_SET_ITEM(grads, q, a);
    }
    pv_vbpr_tensors g;
    PyArrayObject *garr[N_TABLES];
    if (take_tables(grads, 1, f, "gradient", &m, garr, &g) < 0) {
        release_tables(garr);
        goto done;
    }
    release_tables(garr);  /* the tuple keeps them alive */
    work = pv_workspace(pv_vbpr_workspace_f32(&m, B[0]));
    if (work == NULL) {
        goto done;
    }
    double loss = 0.0;
    pv_status st;
    PV_BEGIN_KERNEL
    st = pv_vbpr_batch_f32(&m, B[0], PV_I64(u), PV_I64(p), PV_I64(n), &g, &loss, work,
                           n_threads > 0 ? n_threads : pv_default_threads());
    PV_END_KERNEL
    if (st != PV_OK) {
        pv_raise_status(st, f);
        goto done;
    }
    result = Py_BuildValue("dO", loss, grads);
done:
    free(work);
    Py_XDECREF(grads);
    release_tables(par);
    Py_XDECREF(X);
    Py_XDECREF(u);
    Py_XDECREF(p);
    Py_XDECREF(n);
    return result;
}

PyDoc_STRVAR(core_vbpr_epoch_doc,
"vbpr_epoch($module, /, params, m1, m2, X, users, items, lr, lam, lam_b, lam_e, batch_size, "
"seed, epoch, step, n_threads=0)\n--\n\n"
"One VBPR training epoch in place on params and their Adam moments m1, m2 (tuples\n"
"shaped like params).  Returns (sum of batch losses, number of batches, step count).");

static PyObject *
core_vbpr_epoch(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"params", "m1", "m2", "X", "users", "items", "lr", "lam", "lam_b",
                             "lam_e", "batch_size", "seed", "epoch", "step", "n_threads", NULL};
    const char *f = "vbpr_epoch";
    PyObject *oparams, *om1, *om2, *oX, *ou, *oi, *oseed, *oepoch;
    double lr, lam, lam_b, lam_e;
    Py_ssize_t batch;
    long long step;
    int n_threads = 0;
    unsigned long long seed, epoch;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOOddddnOOL|i:vbpr_epoch", kwlist, &oparams,
                                     &om1, &om2, &oX, &ou, &oi, &lr, &lam, &lam_b, &lam_e,
                                     &batch, &oseed, &oepoch, &step, &n_threads) ||
        pv_counter(oseed, 64, f, "seed", &seed) < 0 ||
        pv_counter(oepoch, 32, f, "epoch", &epoch) < 0 || check_reg(lam, lam_b, lam_e, f) < 0) {
        return NULL;
    }
    if (!(lr > 0) || !isfinite(lr) || batch < 1 || step < 0) {
        return PyErr_Format(PyExc_ValueError, "%s(): need lr > 0 (finite), batch_size >= 1 and "
                            "step >= 0", f);
    }
    pv_vbpr_model m = {-1, 0, 0, 0, 0, {0}, NULL, (float)lam, (float)lam_b, (float)lam_e};
    PyArrayObject *par[N_TABLES], *a1[N_TABLES], *a2[N_TABLES], *X = NULL, *u = NULL, *it = NULL;
    memset(a1, 0, sizeof(a1));
    memset(a2, 0, sizeof(a2));
    pv_vbpr_tensors t1, t2;
    PyObject *result = NULL;
    if (take_tables(oparams, 1, f, "params", &m, par, &m.p) < 0 ||
        take_tables(om1, 1, f, "m1", &m, a1, &t1) < 0 ||
        take_tables(om2, 1, f, "m2", &m, a2, &t2) < 0) {
        goto done;
    }
    npy_intp xshape[2] = {m.n_items, m.n_feat};
    X = pv_input(oX, NPY_FLOAT32, 2, xshape, f, "X");
    u = X ? pv_input(ou, NPY_INT64, 1, NULL, f, "users") : NULL;
    npy_intp n_pairs[1] = {u ? PyArray_DIM(u, 0) : 0};
    it = u ? pv_input(oi, NPY_INT64, 1, n_pairs, f, "items") : NULL;
    if (it == NULL) {
        goto done;
    }
    m.X = PV_F32(X);
    pv_opt opt = {PV_OPT_ADAM, (float)lr, 0.9f, 0.999f, 1e-8f};
    int64_t step64 = step;
    double loss = 0.0;
    pv_index n_batches = 0;
    pv_status st;
    PV_BEGIN_KERNEL
    st = pv_vbpr_epoch_f32(&m, &opt, &t1, &t2, n_pairs[0], PV_I64(u), PV_I64(it), batch, seed,
                           (uint32_t)epoch, &step64, &loss, &n_batches,
                           n_threads > 0 ? n_threads : pv_default_threads());
    PV_END_KERNEL
    result = pv_epoch_result(st, f, loss, n_batches, step64);
done:
    release_tables(par);
    release_tables(a1);
    release_tables(a2);
    Py_XDECREF(X);
    Py_XDECREF(u);
    Py_XDECREF(it);
    return result;
}

PyMethodDef pv_vbpr_methods[] = {
    {"vbpr_batch", (PyCFunction)(void (*)(void))core_vbpr_batch, METH_VARARGS | METH_KEYWORDS,
     core_vbpr_batch_doc},
    {"vbpr_epoch", (PyCFunction)(void (*)(void))core_vbpr_epoch, METH_VARARGS | METH_KEYWORDS,
     core_vbpr_epoch_doc},
    {NULL, NULL, 0, NULL},
};
