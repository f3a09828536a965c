/*
 * pv_numpy.h -- the one place the binding includes Python and NumPy.
 *
 * pv_module.c is the only translation unit that imports the NumPy C API; every
 * other binding file defines NO_IMPORT_ARRAY before including this header
 * (numpy's c-api/array.rst, "Including and importing the C API").
 */
#ifndef PV_NUMPY_H
#define PV_NUMPY_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define NPY_NO_DEPRECATED_API NPY_1_7_API_VERSION
#define PY_ARRAY_UNIQUE_SYMBOL PAINVRL_ARRAY_API
#include <numpy/arrayobject.h>

#include "../kernels/pv_common.h"

/* ---- array checks (pv_arrays.c); each returns a new reference or NULL ---- */

/*
 * A read-only input: exact dtype `typenum` (TypeError otherwise), made
 * C-contiguous, aligned and native-endian (copying if it is not already),
 * `ndim` dimensions, and each shape[k] >= 0 must match (pass -1 for "any").
 * Messages name `func` and the parameter `name`.
 */
PyArrayObject *pv_input(PyObject *obj, int typenum, int ndim, const npy_intp *shape,
                        const char *func, const char *name);

/*
 * An array written in place: exact dtype, C-contiguous, aligned, writeable,
 * native byte order and the given shape.  Never copied (a copy would lose
 * the write).  Returns a new reference or NULL with an exception set.
 */
PyArrayObject *pv_inout(PyObject *obj, int typenum, int ndim, const npy_intp *shape,
                        const char *func, const char *name);

/* Like pv_input, but Py_None gives NULL without an error (*ok stays 1). */
PyArrayObject *pv_optional_input(PyObject *obj, int typenum, int ndim, const npy_intp *shape,
                                 const char *func, const char *name, int *ok);

/*
 * The four arrays of a training batch: users (B,) and items (B, C >= 1) int64,
 * beta_u (n_users,) and beta_i (n_items,) of dtype `typenum`.  On success all four
 * outputs hold new references and 0 is returned; on failure -1, an exception is set
 * and the outputs that were converted still need Py_XDECREF (they start NULL).
 */
int pv_batch_inputs(PyObject *ousers, PyObject *oitems, PyObject *obeta_u, PyObject *obeta_i,
                    int typenum, npy_intp n_users, npy_intp n_items, const char *func,
                    PyArrayObject **users, PyArrayObject **items, PyArrayObject **beta_u,
                    PyArrayObject **beta_i);

/*
 * A batch of BPR triples: users, pos, neg, int64 arrays of one length, users in
 * [0, n_users) and items in [0, n_items) (IndexError naming func and the array).
 * Returns 0, or -1 with an exception (the outputs that were converted still need
 * Py_XDECREF; they start NULL).
 */
int pv_triples(PyObject *ousers, PyObject *opos, PyObject *oneg, npy_intp n_users,
               npy_intp n_items, const char *func, PyArrayObject **users, PyArrayObject **pos,
               PyArrayObject **neg);

/* An epoch trainer's return value (sum of batch losses, batches, step count), or the
 * exception of a failed status (NULL). */
PyObject *pv_epoch_result(pv_status status, const char *func, double loss, pv_index n_batches,
                          int64_t step);

/* malloc of n floats (at least one byte), or NULL with MemoryError set; free() it. */
float *pv_workspace(pv_index n_floats);

/* The dtype of a function's leading float array, which sets the precision of the call:
 * NPY_FLOAT32 or NPY_FLOAT64, or -1 with a TypeError naming `func` and `name`. */
int pv_float_typenum(PyObject *obj, const char *func, const char *name);

/*
 * A seed or counter: a Python integer (not bool) in [0, 2**bits), stored in *out.
 * The "K" and "I" parse formats wrap -1 to 2**64 - 1 and 2**32 to 0 silently; parse
 * with "O" and convert with this instead.  obj NULL (an optional argument left out)
 * keeps *out.  Returns 0, or -1 with TypeError/ValueError naming func and name.
 */
int pv_counter(PyObject *obj, int bits, const char *func, const char *name,
               unsigned long long *out);

/* Hold the linked OpenBLAS at one thread (pv_bind_blas.c); a no-op for other CBLAS. */
void pv_blas_one_thread(void);

/*
 * Around every kernel call: BLAS held to one thread, because the kernels share
 * their work out in a fixed partition of their own and call BLAS inside it
 * (README, Determinism); then the GIL released for the call.
 */
#define PV_BEGIN_KERNEL          \
    pv_blas_one_thread();        \
    Py_BEGIN_ALLOW_THREADS
#define PV_END_KERNEL Py_END_ALLOW_THREADS

/* Raise the exception that matches a kernel status; always returns NULL. */
PyObject *pv_raise_status(pv_status status, const char *func);

/* Shorthands for the data pointer of a checked array. */
#define PV_F32(a) ((float *)PyArray_DATA(a))
#define PV_F64(a) ((double *)PyArray_DATA(a))
#define PV_I64(a) ((int64_t *)PyArray_DATA(a))
#define PV_DIM(a, k) ((pv_index)PyArray_DIM(a, k))

/* Method tables of each binding family, registered by pv_module.c. */
extern PyMethodDef pv_rng_methods[];
extern PyMethodDef pv_rec_methods[];
extern PyMethodDef pv_train_methods[];
extern PyMethodDef pv_eval_methods[];
extern PyMethodDef pv_mask_methods[];
extern PyMethodDef pv_identify_methods[];
extern PyMethodDef pv_convert_methods[];
extern PyMethodDef pv_blas_methods[];
extern PyMethodDef pv_graph_methods[];
extern PyMethodDef pv_vbpr_methods[];
extern PyMethodDef pv_freedom_methods[];

#endif /* PV_NUMPY_H */
