/* pv_arrays.c -- strict array checks shared by every binding file. */
#define NO_IMPORT_ARRAY
#include "pv_numpy.h"

static const char *
dtype_name(int typenum)
{
    switch (typenum) {
    case NPY_FLOAT32: return "float32";
    case NPY_FLOAT64: return "float64";
    case NPY_INT64: return "int64";
    case NPY_INT32: return "int32";
    case NPY_UINT8: return "uint8";
    case NPY_BOOL: return "bool";
    default: return "another dtype";
    }
}

static int
check_shape(PyArrayObject *arr, int ndim, const npy_intp *shape, const char *func,
            const char *name)
{
    if (PyArray_NDIM(arr) != ndim) {
        PyErr_Format(PyExc_ValueError, "%s(): '%s' must be %d-dimensional, got %d dimensions",
                     func, name, ndim, PyArray_NDIM(arr));
        return -1;
    }
    for (int k = 0; k < ndim; k++) {
        if (shape != NULL && shape[k] >= 0 && PyArray_DIM(arr, k) != shape[k]) {
            PyErr_Format(PyExc_ValueError,
                         "%s(): '%s' has length %zd on axis %d, expected %zd", func, name,
                         (Py_ssize_t)PyArray_DIM(arr, k), k, (Py_ssize_t)shape[k]);
            return -1;
        }
    }
    return 0;
}

static int
check_dtype(PyObject *obj, int typenum, const char *func, const char *name)
{
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s(): '%s' must be a numpy.ndarray of %s, got %s", func,
                     name, dtype_name(typenum), Py_TYPE(obj)->tp_name);
        return -1;
    }
    PyArray_Descr *descr = PyArray_DESCR((PyArrayObject *)obj);
    if (descr->type_num != typenum) {
        PyErr_Format(PyExc_TypeError, "%s(): '%s' must have dtype %s, got %s", func, name,
                     dtype_name(typenum), dtype_name(descr->type_num));
        return -1;
    }
    return 0;
}

PyArrayObject *
pv_input(PyObject *obj, int typenum, int ndim, const npy_intp *shape, const char *func,
         const char *name)
{
    if (check_dtype(obj, typenum, func, name) < 0) {
        return NULL;
    }
    PyArrayObject *arr = (PyArrayObject *)PyArray_FROM_OTF(obj, typenum, NPY_ARRAY_IN_ARRAY);
    if (arr == NULL) {
        return NULL;
    }
    if (check_shape(arr, ndim, shape, func, name) < 0) {
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}

PyArrayObject *
pv_optional_input(PyObject *obj, int typenum, int ndim, const npy_intp *shape, const char *func,
                  const char *name, int *ok)
{
    *ok = 1;
    if (obj == NULL || obj == Py_None) {
        return NULL;
    }
    PyArrayObject *arr = pv_input(obj, typenum, ndim, shape, func, name);
    if (arr == NULL) {
        *ok = 0;
    }
    return arr;
}

PyArrayObject *
pv_inout(PyObject *obj, int typenum, int ndim, const npy_intp *shape, const char *func,
         const char *name)
{
    if (check_dtype(obj, typenum, func, name) < 0) {
        return NULL;
    }
    PyArrayObject *arr = (PyArrayObject *)obj;
    if (!PyArray_IS_C_CONTIGUOUS(arr) || !PyArray_ISALIGNED(arr) || !PyArray_ISNOTSWAPPED(arr)) {
        PyErr_Format(PyExc_ValueError,
                     "%s(): '%s' is updated in place and must be C-contiguous, aligned and "
                     "in native byte order",
                     func, name);
        return NULL;
    }
    if (!PyArray_ISWRITEABLE(arr)) {
        PyErr_Format(PyExc_ValueError, "%s(): '%s' is updated in place and must be writeable",
                     func, name);
        return NULL;
    }
    if (check_shape(arr, ndim, shape, func, name) < 0) {
        return NULL;
    }
    Py_INCREF(arr);
    return arr;
}

int
pv_batch_inputs(PyObject *ousers, PyObject *oitems, PyObject *obeta_u, PyObject *obeta_i,
                int typenum, npy_intp n_users, npy_intp n_items, const char *func,
                PyArrayObject **users, PyArrayObject **items, PyArrayObject **beta_u,
                PyArrayObject **beta_i)
{
    *users = pv_input(ousers, NPY_INT64, 1, NULL, func, "users");
    if (*users == NULL) {
        return -1;
    }
    npy_intp shitems[2] = {PyArray_DIM(*users, 0), -1};
    *items = pv_input(oitems, NPY_INT64, 2, shitems, func, "items");
    if (*items == NULL) {
        return -1;
    }
    if (PyArray_DIM(*items, 1) < 1) {
        PyErr_Format(PyExc_ValueError, "%s(): 'items' needs at least one column (positives)",
                     func);
        return -1;
    }
    npy_intp shu[1] = {n_users}, shi[1] = {n_items};
    *beta_u = pv_input(obeta_u, typenum, 1, shu, func, "beta_u");
    if (*beta_u == NULL) {
        return -1;
    }
    *beta_i = pv_input(obeta_i, typenum, 1, shi, func, "beta_i");
    return *beta_i == NULL ? -1 : 0;
}

int
pv_float_typenum(PyObject *obj, const char *func, const char *name)
{
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s(): '%s' must be a numpy.ndarray", func, name);
        return -1;
    }
    int typenum = PyArray_TYPE((PyArrayObject *)obj);
    if (typenum != NPY_FLOAT32 && typenum != NPY_FLOAT64) {
        PyErr_Format(PyExc_TypeError, "%s(): '%s' must have dtype float32 or float64", func,
                     name);
        return -1;
    }
    return typenum;
}

PyObject *
pv_raise_status(pv_status status, const char *func)
{
    switch (status) {
    case PV_OK:
        PyErr_Format(PyExc_SystemError, "%s(): raised without an error", func);
        break;
    case PV_ENOMEM:
        PyErr_Format(PyExc_MemoryError, "%s(): could not allocate workspace", func);
        break;
    case PV_EDOM:
        PyErr_Format(PyExc_FloatingPointError,
                     "%s(): a non-finite value (NaN or inf) appeared; check the inputs and "
                     "lower the learning rate",
                     func);
        break;
    case PV_ERANGE:
        PyErr_Format(PyExc_OverflowError, "%s(): a size exceeds the BLAS integer range", func);
        break;
    case PV_EINDEX:
        PyErr_Format(PyExc_IndexError, "%s(): an id is negative or not below the table size",
                     func);
        break;
    case PV_EINVAL:
    default:
        PyErr_Format(PyExc_ValueError, "%s(): an argument is outside its valid range", func);
        break;
    }
    return NULL;
}

int
pv_counter(PyObject *obj, int bits, const char *func, const char *name, unsigned long long *out)
{
    if (obj == NULL) { /* an optional argument that was not given: keep the default */
        return 0;
    }
    if (PyBool_Check(obj) || !PyIndex_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s(): '%s' must be an integer in [0, 2**%d), got %s",
                     func, name, bits, Py_TYPE(obj)->tp_name);
        return -1;
    }
    PyObject *v = PyNumber_Index(obj);
    if (v == NULL) {
        return -1;
    }
    unsigned long long x = PyLong_AsUnsignedLongLong(v); /* OverflowError below 0 or 2**64 */
    int bad = x == (unsigned long long)-1 && PyErr_Occurred() != NULL;
    if (bad) {
        if (!PyErr_ExceptionMatches(PyExc_OverflowError)) {
            Py_DECREF(v);
            return -1;
        }
        PyErr_Clear();
    }
    if (bad || (bits < 64 && (x >> bits) != 0)) {
        PyErr_Format(PyExc_ValueError, "%s(): '%s' must be an integer in [0, 2**%d), got %S",
                     func, name, bits, v);
        Py_DECREF(v);
        return -1;
    }
    Py_DECREF(v);
    *out = x;
    return 0;
}

static int
ids_below(PyArrayObject *a, npy_intp high, const char *func, const char *name)
{
    const int64_t *v = PV_I64(a);
    for (npy_intp q = 0; q < PyArray_DIM(a, 0); q++) {
        if (v[q] < 0 || v[q] >= high) {
            PyErr_Format(PyExc_IndexError, "%s(): '%s' must lie in [0, %zd), got %lld", func,
                         name, (Py_ssize_t)high, (long long)v[q]);
            return -1;
        }
    }
    return 0;
}

int
pv_triples(PyObject *ousers, PyObject *opos, PyObject *oneg, npy_intp n_users, npy_intp n_items,
           const char *func, PyArrayObject **users, PyArrayObject **pos, PyArrayObject **neg)
{
    *users = pv_input(ousers, NPY_INT64, 1, NULL, func, "users");
    npy_intp B[1] = {*users ? PyArray_DIM(*users, 0) : 0};
    *pos = *users ? pv_input(opos, NPY_INT64, 1, B, func, "pos") : NULL;
    *neg = *pos ? pv_input(oneg, NPY_INT64, 1, B, func, "neg") : NULL;
    if (*neg == NULL || ids_below(*users, n_users, func, "users") < 0 ||
        ids_below(*pos, n_items, func, "pos") < 0 || ids_below(*neg, n_items, func, "neg") < 0) {
        return -1;
    }
    return 0;
}

PyObject *
pv_epoch_result(pv_status status, const char *func, double loss, pv_index n_batches,
                int64_t step)
{
    if (status != PV_OK) {
        return pv_raise_status(status, func);
    }
    return Py_BuildValue("dnL", loss, (Py_ssize_t)n_batches, (long long)step);
}

float *
pv_workspace(pv_index n_floats)
{
    float *w = malloc(sizeof(float) * (size_t)(n_floats > 0 ? n_floats : 0) + 1);
    if (w == NULL) {
        PyErr_NoMemory();
    }
    return w;
}
