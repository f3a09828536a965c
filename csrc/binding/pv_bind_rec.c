/* pv_bind_rec.c -- _core.rec_loss_grad: one batch's loss and dense gradients. */
#define NO_IMPORT_ARRAY
#include "pv_numpy.h"
#include "../kernels/pv_rec.h"

#define FUNC "rec_loss_grad"

int pv_parse_reg(const char *reg, pv_rec_reg *out, const char *func);

int
pv_parse_reg(const char *reg, pv_rec_reg *out, const char *func)
{
    if (strcmp(reg, "full") == 0) {
        *out = PV_REG_FULL;
    } else if (strcmp(reg, "batch") == 0) {
        *out = PV_REG_BATCH;
    } else if (strcmp(reg, "none") == 0) {
        *out = PV_REG_NONE;
    } else {
        PyErr_Format(PyExc_ValueError, "%s(): 'reg' must be 'full', 'batch' or 'none', got '%s'",
                     func, reg);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(core_rec_loss_grad_doc,
"rec_loss_grad($module, /, U, V, W, b, g, X, users, items, beta_u, beta_i, *, w=(1.0, 1.0, 1.0, 1.0), "
"reg='none', wd1=0.0, wdi=1.0, wd2=0.0, n_threads=0)\n--\n\n"
"Loss and exact gradient of one backbone batch (method.md §1).\n\n"
"U (n_users, d_id + d_c), V (n_items, d_id), W (d_c, D), b (d_c,) or None, g (D,) or None,\n"
"X (n_items, D), all of one float dtype; users (B,) and items (B, 1 + N) int64, column 0 the\n"
"positive; beta_u (n_users,), beta_i (n_items,).  Returns (loss, dU, dV, dW, db, dg) with db /\n"
"dg None when b / g is None.");

static PyObject *
core_rec_loss_grad(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"U", "V", "W", "b", "g", "X", "users", "items", "beta_u", "beta_i",
                             "w", "reg", "wd1", "wdi", "wd2", "n_threads", NULL};
    PyObject *oU, *oV, *oW, *ob, *og, *oX, *ousers, *oitems, *obu, *obi;
    double w[4] = {1, 1, 1, 1};
    const char *reg_name = "none";
    double wd1 = 0, wdi = 1, wd2 = 0;
    int n_threads = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOOOOOO|$(dddd)sdddi:" FUNC, kwlist, &oU,
                                     &oV, &oW, &ob, &og, &oX, &ousers, &oitems, &obu, &obi, &w[0],
                                     &w[1], &w[2], &w[3], &reg_name, &wd1, &wdi, &wd2,
                                     &n_threads)) {
        return NULL;
    }
    pv_rec_reg reg;
    if (pv_parse_reg(reg_name, &reg, FUNC) < 0) {
        return NULL;
    }
    int typenum = pv_float_typenum(oU, FUNC, "U");
    if (typenum < 0) {
        return NULL;
    }
    PyArrayObject *U = NULL, *V = NULL, *W = NULL, *b = NULL, *g = NULL, *X = NULL;
    PyArrayObject *users = NULL, *items = NULL, *bu = NULL, *bi = NULL;
    PyArrayObject *dU = NULL, *dV = NULL, *dW = NULL, *db = NULL, *dg = NULL;
    PyObject *result = NULL;
    void *work = NULL, *slots = NULL;
    int ok = 1;

    U = pv_input(oU, typenum, 2, NULL, FUNC, "U");
    if (!U) goto done;
    npy_intp n_users = PyArray_DIM(U, 0);
    V = pv_input(oV, typenum, 2, NULL, FUNC, "V");
    if (!V) goto done;
    npy_intp n_items = PyArray_DIM(V, 0), d_id = PyArray_DIM(V, 1);
    npy_intp d_c = PyArray_DIM(U, 1) - d_id;
    if (d_c < 0) {
        PyErr_Format(PyExc_ValueError,
                     FUNC "(): 'U' has %zd columns, fewer than the %zd of 'V' (d_id)",
                     (Py_ssize_t)PyArray_DIM(U, 1), (Py_ssize_t)d_id);
        goto done;
    }
    npy_intp shW[2] = {d_c, -1};
    W = pv_input(oW, typenum, 2, shW, FUNC, "W");
    if (!W) goto done;
    npy_intp D = PyArray_DIM(W, 1);
    npy_intp shb[1] = {d_c}, shg[1] = {D}, shX[2] = {n_items, D};
    b = pv_optional_input(ob, typenum, 1, shb, FUNC, "b", &ok);
    if (!ok) goto done;
    g = pv_optional_input(og, typenum, 1, shg, FUNC, "g", &ok);
    if (!ok) goto done;
    X = pv_input(oX, typenum, 2, shX, FUNC, "X");
    if (!X) goto done;
    if (pv_batch_inputs(ousers, oitems, obu, obi, typenum, n_users, n_items, FUNC, &users,
                        &items, &bu, &bi) < 0) {
        goto done;
    }
    npy_intp B = PyArray_DIM(users, 0), C = PyArray_DIM(items, 1);

    dU = (PyArrayObject *)PyArray_SimpleNew(2, PyArray_DIMS(U), typenum);
    dV = (PyArrayObject *)PyArray_SimpleNew(2, PyArray_DIMS(V), typenum);
    dW = (PyArrayObject *)PyArray_SimpleNew(2, PyArray_DIMS(W), typenum);
    if (!dU || !dV || !dW) goto done;
    if (b) {
        db = (PyArrayObject *)PyArray_SimpleNew(1, shb, typenum);
        if (!db) goto done;
    }
    if (g) {
        dg = (PyArrayObject *)PyArray_SimpleNew(1, shg, typenum);
        if (!dg) goto done;
    }
    pv_rec_dims dims = {n_users, n_items, d_id, d_c, D};
    size_t itemsize = typenum == NPY_FLOAT32 ? sizeof(float) : sizeof(double);
    pv_index n_work = typenum == NPY_FLOAT32 ? pv_rec_workspace_f32(B, C, dims)
                                              : pv_rec_workspace_f64(B, C, dims);
    work = PyMem_RawMalloc((size_t)(n_work > 0 ? n_work : 1) * itemsize);
    slots = PyMem_RawMalloc((size_t)(n_users + n_items) * (sizeof(int32_t) + 1) + 1);
    if (!work || !slots) {
        PyErr_NoMemory();
        goto done;
    }
    int32_t *uslot = (int32_t *)slots, *islot = uslot + n_users;
    uint8_t *umark = (uint8_t *)(islot + n_items), *imark = umark + n_users;
    double loss = 0;
    pv_status st;
    if (typenum == NPY_FLOAT32) {
        pv_rec_model_f32 m = {dims, PV_F32(U), PV_F32(V), PV_F32(W), b ? PV_F32(b) : NULL,
                              g ? PV_F32(g) : NULL, PV_F32(X), PV_F32(bu), PV_F32(bi),
                              {(float)w[0], (float)w[1], (float)w[2], (float)w[3]}};
        PV_BEGIN_KERNEL
        st = pv_rec_loss_grad_f32(&m, B, C, PV_I64(users), PV_I64(items), reg, (float)wd1,
                                  (float)wdi, (float)wd2, PV_F32(dU), PV_F32(dV), PV_F32(dW),
                                  db ? PV_F32(db) : NULL, dg ? PV_F32(dg) : NULL, uslot, islot,
                                  umark, imark, work, &loss,
                                  n_threads > 0 ? n_threads : pv_default_threads());
        PV_END_KERNEL
    } else {
        pv_rec_model_f64 m = {dims, PV_F64(U), PV_F64(V), PV_F64(W), b ? PV_F64(b) : NULL,
                              g ? PV_F64(g) : NULL, PV_F64(X), PV_F64(bu), PV_F64(bi),
                              {w[0], w[1], w[2], w[3]}};
        PV_BEGIN_KERNEL
        st = pv_rec_loss_grad_f64(&m, B, C, PV_I64(users), PV_I64(items), reg, wd1, wdi, wd2,
                                  PV_F64(dU), PV_F64(dV), PV_F64(dW), db ? PV_F64(db) : NULL,
                                  dg ? PV_F64(dg) : NULL, uslot, islot, umark, imark, work,
                                  &loss, n_threads > 0 ? n_threads : pv_default_threads());
        PV_END_KERNEL
    }
    if (st != PV_OK) {
        pv_raise_status(st, FUNC);
        goto done;
    }
    result = Py_BuildValue("dOOOOO", loss, dU, dV, dW, db ? (PyObject *)db : Py_None,
                           dg ? (PyObject *)dg : Py_None);
done:
    PyMem_RawFree(work);
    PyMem_RawFree(slots);
    Py_XDECREF(U); Py_XDECREF(V); Py_XDECREF(W); Py_XDECREF(b); Py_XDECREF(g);
    Py_XDECREF(X); Py_XDECREF(users); Py_XDECREF(items); Py_XDECREF(bu); Py_XDECREF(bi);
    Py_XDECREF(dU); Py_XDECREF(dV); Py_XDECREF(dW); Py_XDECREF(db); Py_XDECREF(dg);
    return result;
}

PyMethodDef pv_rec_methods[] = {
    {"rec_loss_grad", (PyCFunction)(void (*)(void))core_rec_loss_grad,
     METH_VARARGS | METH_KEYWORDS, core_rec_loss_grad_doc},
    {NULL, NULL, 0, NULL},
};
