/* pv_bind_convert.c -- _core.convert_loss_grad and _core.convert_items: the convert
 * module of the final recommender (method.md §4.2). */
#define NO_IMPORT_ARRAY
#include "pv_numpy.h"
#include "../kernels/pv_convert.h"

static int
parse_fusion(const char *name, pv_convert_fusion *out, const char *func)
{
    if (strcmp(name, "attention") == 0) {
        *out = PV_FUSE_ATTENTION;
    } else if (strcmp(name, "global") == 0) {
        *out = PV_FUSE_GLOBAL;
    } else if (strcmp(name, "invariant") == 0) {
        *out = PV_FUSE_INVARIANT;
    } else {
        PyErr_Format(PyExc_ValueError,
                     "%s(): 'fusion' must be 'attention', 'global' or 'invariant', got '%s'",
                     func, name);
        return -1;
    }
    return 0;
}

/* The fusion parameters shared by both functions: W, b, A, c, q, omega, mask, X and the
 * variant projection W_var, b_var (NULL: shared). */
typedef struct {
    PyArrayObject *W, *b, *A, *c, *q, *omega, *mask, *X, *Wv, *bv;
    npy_intp d_c, D, d_a;
} fusion_arrays;

static void
fusion_arrays_clear(fusion_arrays *f)
{
    Py_XDECREF(f->W); Py_XDECREF(f->b); Py_XDECREF(f->A); Py_XDECREF(f->c);
    Py_XDECREF(f->q); Py_XDECREF(f->omega); Py_XDECREF(f->mask); Py_XDECREF(f->X);
    Py_XDECREF(f->Wv); Py_XDECREF(f->bv);
}

/* Check the fusion parameters (n_items rows of X, -1: any).  0 or -1 with an error set. */
static int
fusion_arrays_take(fusion_arrays *f, int typenum, pv_convert_fusion fusion, npy_intp n_items,
                   PyObject *oW, PyObject *ob, PyObject *oA, PyObject *oc, PyObject *oq,
                   PyObject *oomega, PyObject *omask, PyObject *oX, PyObject *oWv,
                   PyObject *obv, const char *func)
{
    int ok = 1;
    f->W = pv_input(oW, typenum, 2, NULL, func, "W");
    if (!f->W) return -1;
    f->d_c = PyArray_DIM(f->W, 0);
    f->D = PyArray_DIM(f->W, 1);
    npy_intp shb[1] = {f->d_c}, shA[2] = {-1, f->d_c}, sh2[1] = {2}, shm[1] = {f->D};
    npy_intp shX[2] = {n_items, f->D};
    f->b = pv_optional_input(ob, typenum, 1, shb, func, "b", &ok);
    if (!ok) return -1;
    f->A = pv_optional_input(oA, typenum, 2, shA, func, "A", &ok);
    if (!ok) return -1;
    f->d_a = f->A ? PyArray_DIM(f->A, 0) : 0;
    npy_intp sha[1] = {f->A ? f->d_a : -1};
    f->c = pv_optional_input(oc, typenum, 1, sha, func, "c", &ok);
    if (!ok) return -1;
    f->q = pv_optional_input(oq, typenum, 1, sha, func, "q", &ok);
    if (!ok) return -1;
    f->omega = pv_optional_input(oomega, typenum, 1, sh2, func, "omega", &ok);
    if (!ok) return -1;
    f->mask = pv_input(omask, typenum, 1, shm, func, "mask");
    if (!f->mask) return -1;
    f->X = pv_input(oX, typenum, 2, shX, func, "X");
    if (!f->X) return -1;
    if (fusion == PV_FUSE_ATTENTION && (!f->A || !f->c || !f->q)) {
        PyErr_Format(PyExc_ValueError, "%s(): fusion='attention' needs 'A', 'c' and 'q'", func);
        return -1;
    }
    if (fusion == PV_FUSE_GLOBAL && !f->omega) {
        PyErr_Format(PyExc_ValueError, "%s(): fusion='global' needs 'omega'", func);
        return -1;
    }
    npy_intp shW[2] = {f->d_c, f->D};
    f->Wv = pv_optional_input(oWv, typenum, 2, shW, func, "W_var", &ok);
    if (!ok) return -1;
    f->bv = pv_optional_input(obv, typenum, 1, shb, func, "b_var", &ok);
    if (!ok) return -1;
    if (f->Wv ? (f->bv == NULL) != (f->b == NULL) : f->bv != NULL) {
        PyErr_Format(PyExc_ValueError,
                     "%s(): 'b_var' must be given exactly when 'W_var' and 'b' are", func);
        return -1;
    }
    return 0;
}

#define PV_OPT(arr, T) ((arr) ? (const T *)PyArray_DATA(arr) : NULL)
#define PV_OUT(arr, T) ((arr) ? (T *)PyArray_DATA(arr) : NULL)

#define FUNC "convert_loss_grad"

PyDoc_STRVAR(core_convert_loss_grad_doc,
"convert_loss_grad($module, /, U, V, W, b, A, c, q, omega, mask, X, users, items, beta_u, "
"beta_i, *, w=(1.0, 1.0, 1.0, 1.0), fusion='attention', n_threads=0, W_var=None, b_var=None)"
"\n--\n\n"
"Loss and exact gradient of one batch of the final recommender (method.md §4.2).\n\n"
"U (n_users, d_id + d_c), V (n_items, d_id), W (d_c, D), b (d_c,) or None, A (d_a, d_c),\n"
"c (d_a,), q (d_a,) (None unless fusion='attention'), omega (2,) (None unless 'global'),\n"
"mask (D,), X (n_items, D), all of one float dtype; users (B,) and items (B, 1 + N) int64;\n"
"beta_u (n_users,), beta_i (n_items,); W_var (d_c, D) and b_var (d_c,), the variant\n"
"projection (None: W and b are shared).  Returns (loss, dU, dV, dW, db, dA, dc, dq, domega,\n"
"dmask, attention, dW_var, db_var) with attention (B, 1 + N) the a_inv of each pair's item;\n"
"gradients of parameters the fusion does not use are None (dW_var, db_var: zeros for\n"
"'invariant').");

static PyObject *
core_convert_loss_grad(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"U", "V", "W", "b", "A", "c", "q", "omega", "mask", "X", "users",
                             "items", "beta_u", "beta_i", "w", "fusion", "n_threads", "W_var",
                             "b_var", NULL};
    PyObject *oU, *oV, *oW, *ob, *oA, *oc, *oq, *oomega, *omask, *oX, *ousers, *oitems, *obu,
        *obi, *oWv = Py_None, *obv = Py_None;
    double w[4] = {1, 1, 1, 1};
    const char *fusion_name = "attention";
    int n_threads = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOOOOOOOOOO|$(dddd)siOO:" FUNC, kwlist, &oU,
                                     &oV, &oW, &ob, &oA, &oc, &oq, &oomega, &omask, &oX, &ousers,
                                     &oitems, &obu, &obi, &w[0], &w[1], &w[2], &w[3],
                                     &fusion_name, &n_threads, &oWv, &obv)) {
        return NULL;
    }
    pv_convert_fusion fusion;
    if (parse_fusion(fusion_name, &fusion, FUNC) < 0) {
        return NULL;
    }
    int typenum = pv_float_typenum(oU, FUNC, "U");
    if (typenum < 0) {
        return NULL;
    }
    fusion_arrays f = {0};
    PyArrayObject *U = NULL, *V = NULL, *users = NULL, *items = NULL, *bu = NULL, *bi = NULL;
    PyArrayObject *dU = NULL, *dV = NULL, *dW = NULL, *db = NULL, *dA = NULL, *dc = NULL;
    PyArrayObject *dq = NULL, *domega = NULL, *dmask = NULL, *attn = NULL, *dWv = NULL;
    PyArrayObject *dbv = NULL;
    PyObject *result = NULL;
    void *work = NULL, *slots = NULL;

    U = pv_input(oU, typenum, 2, NULL, FUNC, "U");
    if (!U) goto done;
    npy_intp n_users = PyArray_DIM(U, 0);
    V = pv_input(oV, typenum, 2, NULL, FUNC, "V");
    if (!V) goto done;
    npy_intp n_items = PyArray_DIM(V, 0), d_id = PyArray_DIM(V, 1);
    if (fusion_arrays_take(&f, typenum, fusion, n_items, oW, ob, oA, oc, oq, oomega, omask, oX,
                           oWv, obv, FUNC) < 0) {
        goto done;
    }
    if (PyArray_DIM(U, 1) != d_id + f.d_c) {
        PyErr_Format(PyExc_ValueError,
                     FUNC "(): 'U' has %zd columns, expected d_id + d_c = %zd + %zd",
                     (Py_ssize_t)PyArray_DIM(U, 1), (Py_ssize_t)d_id, (Py_ssize_t)f.d_c);
        goto done;
    }
    if (pv_batch_inputs(ousers, oitems, obu, obi, typenum, n_users, n_items, FUNC, &users,
                        &items, &bu, &bi) < 0) {
        goto done;
    }
    npy_intp B = PyArray_DIM(users, 0), C = PyArray_DIM(items, 1);

    npy_intp shdc[1] = {f.d_c}, shda[1] = {f.d_a}, sh2[1] = {2}, shD[1] = {f.D};
    dU = (PyArrayObject *)PyArray_SimpleNew(2, PyArray_DIMS(U), typenum);
    dV = (PyArrayObject *)PyArray_SimpleNew(2, PyArray_DIMS(V), typenum);
    dW = (PyArrayObject *)PyArray_SimpleNew(2, PyArray_DIMS(f.W), typenum);
    dmask = (PyArrayObject *)PyArray_SimpleNew(1, shD, typenum);
    attn = (PyArrayObject *)PyArray_SimpleNew(2, PyArray_DIMS(items), typenum);
    if (!dU || !dV || !dW || !dmask || !attn) goto done;
    if (f.b && !(db = (PyArrayObject *)PyArray_SimpleNew(1, shdc, typenum))) goto done;
    if (f.Wv && !(dWv = (PyArrayObject *)PyArray_SimpleNew(2, PyArray_DIMS(f.W), typenum))) {
        goto done;
    }
    if (f.bv && !(dbv = (PyArrayObject *)PyArray_SimpleNew(1, shdc, typenum))) goto done;
    if (fusion == PV_FUSE_ATTENTION) {
        dA = (PyArrayObject *)PyArray_SimpleNew(2, PyArray_DIMS(f.A), typenum);
        dc = (PyArrayObject *)PyArray_SimpleNew(1, shda, typenum);
        dq = (PyArrayObject *)PyArray_SimpleNew(1, shda, typenum);
        if (!dA || !dc || !dq) goto done;
    }
    if (fusion == PV_FUSE_GLOBAL &&
        !(domega = (PyArrayObject *)PyArray_SimpleNew(1, sh2, typenum))) {
        goto done;
    }
    pv_convert_dims dims = {n_users, n_items, d_id, f.d_c, f.d_a, f.D};
    size_t itemsize = typenum == NPY_FLOAT32 ? sizeof(float) : sizeof(double);
    pv_index n_work = typenum == NPY_FLOAT32 ? pv_convert_loss_grad_workspace_f32(B, C, dims)
                                              : pv_convert_loss_grad_workspace_f64(B, C, dims);
    work = PyMem_RawMalloc((size_t)(n_work > 0 ? n_work : 1) * itemsize);
    slots = PyMem_RawMalloc((size_t)n_users * sizeof(int32_t) +
                            (size_t)n_items * (sizeof(int32_t) + sizeof(int64_t)) + 8);
    if (!work || !slots) {
        PyErr_NoMemory();
        goto done;
    }
    int64_t *ilist = (int64_t *)slots;
    int32_t *uslot = (int32_t *)(ilist + n_items), *islot = uslot + n_users;
    double loss = 0;
    pv_status st;
    int nt = n_threads > 0 ? n_threads : pv_default_threads();
    if (typenum == NPY_FLOAT32) {
        pv_convert_model_f32 m = {dims, fusion, PV_F32(U), PV_F32(V), PV_F32(f.W),
                                  PV_OPT(f.b, float), PV_OPT(f.A, float), PV_OPT(f.c, float),
                                  PV_OPT(f.q, float), PV_OPT(f.omega, float), PV_F32(f.mask),
                                  PV_F32(f.X), PV_F32(bu), PV_F32(bi),
                                  {(float)w[0], (float)w[1], (float)w[2], (float)w[3]},
                                  PV_OPT(f.Wv, float), PV_OPT(f.bv, float)};
        PV_BEGIN_KERNEL
        st = pv_convert_loss_grad_f32(&m, B, C, PV_I64(users), PV_I64(items), PV_F32(dU),
                                      PV_F32(dV), PV_F32(dW), PV_OUT(db, float),
                                      PV_OUT(dWv, float), PV_OUT(dbv, float),
                                      PV_OUT(dA, float), PV_OUT(dc, float), PV_OUT(dq, float),
                                      PV_OUT(domega, float), PV_F32(dmask), PV_F32(attn), uslot,
                                      islot, ilist, work, &loss, nt);
        PV_END_KERNEL
    } else {
        pv_convert_model_f64 m = {dims, fusion, PV_F64(U), PV_F64(V), PV_F64(f.W),
                                  PV_OPT(f.b, double), PV_OPT(f.A, double), PV_OPT(f.c, double),
                                  PV_OPT(f.q, double), PV_OPT(f.omega, double), PV_F64(f.mask),
                                  PV_F64(f.X), PV_F64(bu), PV_F64(bi),
                                  {w[0], w[1], w[2], w[3]},
                                  PV_OPT(f.Wv, double), PV_OPT(f.bv, double)};
        PV_BEGIN_KERNEL
        st = pv_convert_loss_grad_f64(&m, B, C, PV_I64(users), PV_I64(items), PV_F64(dU),
                                      PV_F64(dV), PV_F64(dW), PV_OUT(db, double),
                                      PV_OUT(dWv, double), PV_OUT(dbv, double),
                                      PV_OUT(dA, double), PV_OUT(dc, double), PV_OUT(dq, double),
                                      PV_OUT(domega, double), PV_F64(dmask), PV_F64(attn), uslot,
                                      islot, ilist, work, &loss, nt);
        PV_END_KERNEL
    }
    if (st != PV_OK) {
        pv_raise_status(st, FUNC);
        goto done;
    }
#define PV_OR_NONE(a) ((a) ? (PyObject *)(a) : Py_None)
    result = Py_BuildValue("dOOOOOOOOOOOO", loss, dU, dV, dW, PV_OR_NONE(db), PV_OR_NONE(dA),
                           PV_OR_NONE(dc), PV_OR_NONE(dq), PV_OR_NONE(domega), dmask, attn,
                           PV_OR_NONE(dWv), PV_OR_NONE(dbv));
done:
    PyMem_RawFree(work);
    PyMem_RawFree(slots);
    fusion_arrays_clear(&f);
    Py_XDECREF(U); Py_XDECREF(V); Py_XDECREF(users); Py_XDECREF(items); Py_XDECREF(bu);
    Py_XDECREF(bi); Py_XDECREF(dU); Py_XDECREF(dV); Py_XDECREF(dW); Py_XDECREF(db);
    Py_XDECREF(dA); Py_XDECREF(dc); Py_XDECREF(dq); Py_XDECREF(domega); Py_XDECREF(dmask);
    Py_XDECREF(attn); Py_XDECREF(dWv); Py_XDECREF(dbv);
    return result;
}
#undef FUNC

#define FUNC "convert_items"

PyDoc_STRVAR(core_convert_items_doc,
"convert_items($module, /, W, b, A, c, q, omega, mask, X, *, items=None, fusion='attention', "
"n_threads=0, W_var=None, b_var=None)\n--\n\n"
"Fused content vectors h (n, d_c) and invariant weights a_inv (n,) of items (method.md §4.2).\n\n"
"items: int64 (n,) ids, or None for every row of X.  Other arguments as in convert_loss_grad;\n"
"all floats of W's dtype.  Returns (h, a_inv).");

static PyObject *
core_convert_items(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"W", "b", "A", "c", "q", "omega", "mask", "X", "items", "fusion",
                             "n_threads", "W_var", "b_var", NULL};
    PyObject *oW, *ob, *oA, *oc, *oq, *oomega, *omask, *oX, *oitems = Py_None;
    PyObject *oWv = Py_None, *obv = Py_None;
    const char *fusion_name = "attention";
    int n_threads = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOOOO|$OsiOO:" FUNC, kwlist, &oW, &ob, &oA,
                                     &oc, &oq, &oomega, &omask, &oX, &oitems, &fusion_name,
                                     &n_threads, &oWv, &obv)) {
        return NULL;
    }
    pv_convert_fusion fusion;
    if (parse_fusion(fusion_name, &fusion, FUNC) < 0) {
        return NULL;
    }
    int typenum = pv_float_typenum(oW, FUNC, "W");
    if (typenum < 0) {
        return NULL;
    }
    fusion_arrays f = {0};
    PyArrayObject *items = NULL, *H = NULL, *a = NULL;
    PyObject *result = NULL;
    void *work = NULL;
    int ok = 1;
    if (fusion_arrays_take(&f, typenum, fusion, -1, oW, ob, oA, oc, oq, oomega, omask, oX, oWv,
                           obv, FUNC) < 0) {
        goto done;
    }
    npy_intp n_items = PyArray_DIM(f.X, 0);
    items = pv_optional_input(oitems, NPY_INT64, 1, NULL, FUNC, "items", &ok);
    if (!ok) goto done;
    npy_intp n = items ? PyArray_DIM(items, 0) : n_items;
    npy_intp shH[2] = {n, f.d_c}, sha[1] = {n};
    H = (PyArrayObject *)PyArray_SimpleNew(2, shH, typenum);
    a = (PyArrayObject *)PyArray_SimpleNew(1, sha, typenum);
    if (!H || !a) goto done;
    pv_convert_dims dims = {0, n_items, 0, f.d_c, f.d_a, f.D};
    int nt = n_threads > 0 ? n_threads : pv_default_threads();
    size_t itemsize = typenum == NPY_FLOAT32 ? sizeof(float) : sizeof(double);
    pv_index n_work = typenum == NPY_FLOAT32 ? pv_convert_items_workspace_f32(dims, nt)
                                              : pv_convert_items_workspace_f64(dims, nt);
    work = PyMem_RawMalloc((size_t)(n_work > 0 ? n_work : 1) * itemsize);
    if (!work) {
        PyErr_NoMemory();
        goto done;
    }
    const int64_t *ids = items ? PV_I64(items) : NULL;
    pv_status st;
    if (typenum == NPY_FLOAT32) {
        pv_convert_model_f32 m = {dims, fusion, NULL, NULL, PV_F32(f.W), PV_OPT(f.b, float),
                                  PV_OPT(f.A, float), PV_OPT(f.c, float), PV_OPT(f.q, float),
                                  PV_OPT(f.omega, float), PV_F32(f.mask), PV_F32(f.X), NULL,
                                  NULL, {1, 1, 1, 1}, PV_OPT(f.Wv, float), PV_OPT(f.bv, float)};
        PV_BEGIN_KERNEL
        st = pv_convert_items_f32(&m, n, ids, PV_F32(H), PV_F32(a), work, nt);
        PV_END_KERNEL
    } else {
        pv_convert_model_f64 m = {dims, fusion, NULL, NULL, PV_F64(f.W), PV_OPT(f.b, double),
                                  PV_OPT(f.A, double), PV_OPT(f.c, double), PV_OPT(f.q, double),
                                  PV_OPT(f.omega, double), PV_F64(f.mask), PV_F64(f.X), NULL,
                                  NULL, {1, 1, 1, 1}, PV_OPT(f.Wv, double),
                                  PV_OPT(f.bv, double)};
        PV_BEGIN_KERNEL
        st = pv_convert_items_f64(&m, n, ids, PV_F64(H), PV_F64(a), work, nt);
        PV_END_KERNEL
    }
    if (st != PV_OK) {
        pv_raise_status(st, FUNC);
        goto done;
    }
    result = Py_BuildValue("OO", H, a);
done:
    PyMem_RawFree(work);
    fusion_arrays_clear(&f);
    Py_XDECREF(items); Py_XDECREF(H); Py_XDECREF(a);
    return result;
}
#undef FUNC

PyMethodDef pv_convert_methods[] = {
    {"convert_loss_grad", (PyCFunction)(void (*)(void))core_convert_loss_grad,
     METH_VARARGS | METH_KEYWORDS, core_convert_loss_grad_doc},
    {"convert_items", (PyCFunction)(void (*)(void))core_convert_items,
     METH_VARARGS | METH_KEYWORDS, core_convert_items_doc},
    {NULL, NULL, 0, NULL},
};
