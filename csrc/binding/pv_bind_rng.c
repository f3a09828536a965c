/* pv_bind_rng.c -- the counter-based RNG, exposed so tests can check its streams. */
#define NO_IMPORT_ARRAY
#include "pv_numpy.h"
#include "../kernels/pv_rng.h"

PyDoc_STRVAR(core_uniform_ints_doc,
"uniform_ints($module, /, n, high, seed, stream, epoch)\n--\n\n"
"int64 array of n uniform draws in [0, high) from Philox4x32-10 keyed by seed,\n"
"counter (stream, epoch, position).  Identical for any thread count.");

static PyObject *
core_uniform_ints(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"n", "high", "seed", "stream", "epoch", NULL};
    Py_ssize_t n;
    long long high;
    unsigned long long seed, stream, epoch;
    PyObject *oseed, *ostream, *oepoch;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "nLOOO:uniform_ints", kwlist, &n, &high, &oseed,
                                     &ostream, &oepoch) ||
        pv_counter(oseed, 64, "uniform_ints", "seed", &seed) < 0 ||
        pv_counter(ostream, 32, "uniform_ints", "stream", &stream) < 0 ||
        pv_counter(oepoch, 32, "uniform_ints", "epoch", &epoch) < 0) {
        return NULL;
    }
    if (n < 0) {
        return PyErr_Format(PyExc_ValueError, "uniform_ints(): 'n' must be >= 0, got %zd", n);
    }
    if (high <= 0) {
        return PyErr_Format(PyExc_ValueError, "uniform_ints(): 'high' must be > 0, got %lld",
                            high);
    }
    npy_intp dims[1] = {n};
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(1, dims, NPY_INT64);
    if (out == NULL) {
        return NULL;
    }
    pv_status st;
    PV_BEGIN_KERNEL
    st = pv_uniform_ints(n, high, seed, (uint32_t)stream, (uint32_t)epoch, PV_I64(out),
                         pv_default_threads());
    PV_END_KERNEL
    if (st != PV_OK) {
        Py_DECREF(out);
        return pv_raise_status(st, "uniform_ints");
    }
    return (PyObject *)out;
}

PyDoc_STRVAR(core_permutation_doc,
"permutation($module, /, n, seed, stream, epoch)\n--\n\n"
"int64 array: a uniform random permutation of range(n) (Fisher-Yates on Philox draws).");

static PyObject *
core_permutation(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"n", "seed", "stream", "epoch", NULL};
    Py_ssize_t n;
    unsigned long long seed, stream, epoch;
    PyObject *oseed, *ostream, *oepoch;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "nOOO:permutation", kwlist, &n, &oseed,
                                     &ostream, &oepoch) ||
        pv_counter(oseed, 64, "permutation", "seed", &seed) < 0 ||
        pv_counter(ostream, 32, "permutation", "stream", &stream) < 0 ||
        pv_counter(oepoch, 32, "permutation", "epoch", &epoch) < 0) {
        return NULL;
    }
    if (n < 0) {
        return PyErr_Format(PyExc_ValueError, "permutation(): 'n' must be >= 0, got %zd", n);
    }
    npy_intp dims[1] = {n};
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(1, dims, NPY_INT64);
    if (out == NULL) {
        return NULL;
    }
    PV_BEGIN_KERNEL
    pv_permutation(n, seed, (uint32_t)stream, (uint32_t)epoch, PV_I64(out));
    PV_END_KERNEL
    return (PyObject *)out;
}

PyMethodDef pv_rng_methods[] = {
    {"uniform_ints", (PyCFunction)(void (*)(void))core_uniform_ints, METH_VARARGS | METH_KEYWORDS,
     core_uniform_ints_doc},
    {"permutation", (PyCFunction)(void (*)(void))core_permutation, METH_VARARGS | METH_KEYWORDS,
     core_permutation_doc},
    {NULL, NULL, 0, NULL},
};
