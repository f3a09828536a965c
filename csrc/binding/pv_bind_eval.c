/* pv_bind_eval.c -- binding of the evaluation kernels: topk and ranking_metrics. */
#define NO_IMPORT_ARRAY
#include "pv_numpy.h"

#include <math.h>
#include <string.h>

#include "../kernels/pv_metrics.h"
#include "../kernels/pv_topk.h"

/*
 * Check an int64 CSR (indptr of n_rows + 1, indices) with ids in [0, n_items):
 * indptr starts at 0, never decreases and ends at len(indices); each row is
 * non-decreasing (strict = 0) or strictly increasing (strict = 1).
 */
static int
check_csr(const char *func, const char *pname, const char *iname, PyArrayObject *indptr,
          PyArrayObject *indices, pv_index n_rows, pv_index n_items, int strict)
{
    const int64_t *p = PV_I64(indptr);
    const int64_t *ix = PV_I64(indices);
    const pv_index nnz = PV_DIM(indices, 0);
    if (p[0] != 0 || p[n_rows] != nnz) {
        PyErr_Format(PyExc_ValueError,
                     "%s(): '%s' must start at 0 and end at len(%s) = %zd, got %lld .. %lld",
                     func, pname, iname, (Py_ssize_t)nnz, (long long)p[0], (long long)p[n_rows]);
        return -1;
    }
    for (pv_index u = 0; u < n_rows; u++) {
        if (p[u + 1] < p[u]) {
            PyErr_Format(PyExc_ValueError, "%s(): '%s' decreases at row %zd", func, pname,
                         (Py_ssize_t)u);
            return -1;
        }
        for (int64_t c = p[u]; c < p[u + 1]; c++) {
            if (ix[c] < 0 || ix[c] >= n_items) {
                PyErr_Format(PyExc_IndexError,
                             "%s(): '%s' holds item id %lld in row %zd, outside [0, %zd)", func,
                             iname, (long long)ix[c], (Py_ssize_t)u, (Py_ssize_t)n_items);
                return -1;
            }
            if (c > p[u] && (strict ? ix[c] <= ix[c - 1] : ix[c] < ix[c - 1])) {
                PyErr_Format(PyExc_ValueError, "%s(): row %zd of '%s' must be %s", func,
                             (Py_ssize_t)u, iname,
                             strict ? "strictly increasing (sorted, distinct)" : "sorted");
                return -1;
            }
        }
    }
    return 0;
}

PyDoc_STRVAR(core_topk_bf16_backend_doc,
             "topk_bf16_backend($module, /)\n--\n\n"
             "The estimator topk(prefilter='bf16') uses on this machine: 'amx' (AMX-BF16\n"
             "tiles, CPU and OS permitting), 'avx512bf16' (vdpbf16ps) or 'portable' (C).");

static PyObject *
core_topk_bf16_backend(PyObject *module, PyObject *unused)
{
    const int b = pv_topk_bf16_backend(PV_TOPK_BF16_AMX);
    return PyUnicode_FromString(b == PV_TOPK_BF16_AMX      ? "amx"
                                : b == PV_TOPK_BF16_AVX512 ? "avx512bf16"
                                                           : "portable");
}

PyDoc_STRVAR(
    core_topk_doc,
    "topk($module, /, user_vecs, item_vecs, k, exclude_indptr=None, exclude_indices=None, *,\n"
    "     mask_value=-inf, user_chunk=512, item_tile=2048, n_threads=0, prefilter=None)\n"
    "--\n\n"
    "Top-k items per user by dot product (pv_topk_f32).\n\n"
    "user_vecs (n_users, dim) and item_vecs (n_items, dim) are float32.  The optional\n"
    "int64 CSR exclude_indptr (n_users + 1) / exclude_indices lists items per user whose\n"
    "score is replaced by mask_value (-inf: never returned, empty slots padded with id -1\n"
    "and score -inf; a finite value such as 1e-5: the item competes with that score).\n"
    "Rows of exclude_indices must be sorted.  Returns (ids int64, scores float32), both\n"
    "(n_users, k), best first, equal scores by ascending id.  The score workspace is\n"
    "user_chunk * item_tile floats; n_threads = 0 uses the OpenMP default.\n"
    "prefilter=None scores with sgemm (pv_topk_f32); prefilter='bf16' estimates every score\n"
    "in bfloat16 and rescores in float32 only the items its proven error bound cannot rule\n"
    "out (pv_topk_bf16_f32): the exact top-k of the float32 rescoring.  'bf16' uses AMX or\n"
    "AVX512-BF16 where present (topk_bf16_backend); 'bf16-avx512' never AMX, 'bf16-portable'\n"
    "neither (same result: for comparisons).");

static PyObject *
core_topk(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"user_vecs",  "item_vecs", "k",         "exclude_indptr",
                             "exclude_indices", "mask_value", "user_chunk", "item_tile",
                             "n_threads", "prefilter", NULL};
    const char *func = "topk";
    PyObject *u_obj = NULL, *v_obj = NULL, *p_obj = Py_None, *i_obj = Py_None;
    Py_ssize_t k = 0, user_chunk = PV_TOPK_USER_CHUNK, item_tile = PV_TOPK_ITEM_TILE;
    double mask_value = -INFINITY;
    int n_threads = 0, ok = 1, bf16 = 0;
    const char *prefilter = NULL;
    PyArrayObject *U = NULL, *V = NULL, *P = NULL, *Ix = NULL, *ids = NULL, *scores = NULL;
    PyObject *result = NULL;
    pv_status status;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOn|OO$dnniz:topk", kwlist, &u_obj, &v_obj,
                                     &k, &p_obj, &i_obj, &mask_value, &user_chunk, &item_tile,
                                     &n_threads, &prefilter)) {
        return NULL;
    }
    if (prefilter != NULL) {   /* bf16 = 1 + the highest estimator allowed */
        bf16 = strcmp(prefilter, "bf16") == 0            ? 1 + PV_TOPK_BF16_AMX
               : strcmp(prefilter, "bf16-avx512") == 0   ? 1 + PV_TOPK_BF16_AVX512
               : strcmp(prefilter, "bf16-portable") == 0 ? 1 + PV_TOPK_BF16_PORTABLE
                                                         : 0;
        if (!bf16) {
            PyErr_Format(PyExc_ValueError,
                         "%s(): 'prefilter' must be None, 'bf16', 'bf16-avx512' or "
                         "'bf16-portable', got '%s'",
                         func, prefilter);
            return NULL;
        }
    }
    npy_intp any2[2] = {-1, -1};
    if ((U = pv_input(u_obj, NPY_FLOAT32, 2, any2, func, "user_vecs")) == NULL) {
        goto done;
    }
    const pv_index n_users = PV_DIM(U, 0), dim = PV_DIM(U, 1);
    npy_intp vshape[2] = {-1, (npy_intp)dim};
    if ((V = pv_input(v_obj, NPY_FLOAT32, 2, vshape, func, "item_vecs")) == NULL) {
        goto done;
    }
    const pv_index n_items = PV_DIM(V, 0);
    if (dim < 1) {
        PyErr_Format(PyExc_ValueError, "%s(): vectors must have at least one column", func);
        goto done;
    }
    if (n_items < 1) {
        PyErr_Format(PyExc_ValueError, "%s(): 'item_vecs' has no rows", func);
        goto done;
    }
    if (k < 1 || k > n_items) {
        PyErr_Format(PyExc_ValueError, "%s(): 'k' must be in [1, n_items] = [1, %zd], got %zd",
                     func, (Py_ssize_t)n_items, k);
        goto done;
    }
    if (isnan(mask_value) || (isinf(mask_value) && mask_value > 0)) {
        PyErr_Format(PyExc_ValueError, "%s(): 'mask_value' must be finite or -inf, got %s", func,
                     isnan(mask_value) ? "nan" : "inf");
        goto done;
    }
    if (user_chunk < 1 || item_tile < 1) {
        PyErr_Format(PyExc_ValueError,
                     "%s(): 'user_chunk' and 'item_tile' must be >= 1, got %zd and %zd", func,
                     user_chunk, item_tile);
        goto done;
    }
    if (n_threads < 0) {
        PyErr_Format(PyExc_ValueError, "%s(): 'n_threads' must be >= 0 (0: default), got %d",
                     func, n_threads);
        goto done;
    }
    if ((p_obj == Py_None) != (i_obj == Py_None)) {
        PyErr_Format(PyExc_ValueError,
                     "%s(): pass both 'exclude_indptr' and 'exclude_indices', or neither", func);
        goto done;
    }
    npy_intp pshape[1] = {(npy_intp)(n_users + 1)}, any1[1] = {-1};
    P = pv_optional_input(p_obj, NPY_INT64, 1, pshape, func, "exclude_indptr", &ok);
    if (!ok) {
        goto done;
    }
    Ix = pv_optional_input(i_obj, NPY_INT64, 1, any1, func, "exclude_indices", &ok);
    if (!ok) {
        goto done;
    }
    if (P != NULL && check_csr(func, "exclude_indptr", "exclude_indices", P, Ix, n_users,
                               n_items, 0) < 0) {
        goto done;
    }
    npy_intp oshape[2] = {(npy_intp)n_users, (npy_intp)k};
    ids = (PyArrayObject *)PyArray_SimpleNew(2, oshape, NPY_INT64);
    scores = (PyArrayObject *)PyArray_SimpleNew(2, oshape, NPY_FLOAT32);
    if (ids == NULL || scores == NULL) {
        goto done;
    }
    {
        const float *u_ptr = PV_F32(U), *v_ptr = PV_F32(V);
        const int64_t *p_ptr = P ? PV_I64(P) : NULL, *i_ptr = Ix ? PV_I64(Ix) : NULL;
        int64_t *id_ptr = PV_I64(ids);
        float *s_ptr = PV_F32(scores);
        PV_BEGIN_KERNEL
        if (bf16) {
            status = pv_topk_bf16_f32(n_users, n_items, dim, u_ptr, v_ptr, p_ptr, i_ptr,
                                      (float)mask_value, (pv_index)k, (pv_index)user_chunk,
                                      (pv_index)item_tile, bf16 - 1, id_ptr, s_ptr, n_threads);
        }
        else {
            status = pv_topk_f32(n_users, n_items, dim, u_ptr, v_ptr, p_ptr, i_ptr,
                                 (float)mask_value, (pv_index)k, (pv_index)user_chunk,
                                 (pv_index)item_tile, id_ptr, s_ptr, n_threads);
        }
        PV_END_KERNEL
    }
    if (status == PV_EDOM) {
        PyErr_Format(PyExc_ValueError,
                     "%s(): 'user_vecs' or 'item_vecs' holds NaN or inf, or vectors so large "
                     "that a score could overflow float32",
                     func);
        goto done;
    }
    if (status != PV_OK) {
        pv_raise_status(status, func);
        goto done;
    }
    result = PyTuple_Pack(2, (PyObject *)ids, (PyObject *)scores);
done:
    Py_XDECREF(U);
    Py_XDECREF(V);
    Py_XDECREF(P);
    Py_XDECREF(Ix);
    Py_XDECREF(ids);
    Py_XDECREF(scores);
    return result;
}

PyDoc_STRVAR(
    core_ranking_metrics_doc,
    "ranking_metrics($module, /, topk_ids, test_indptr, test_indices, ks, n_items, *,\n"
    "                n_threads=0)\n"
    "--\n\n"
    "Per-user ranking metrics (pv_ranking_metrics_f64).\n\n"
    "topk_ids (n_users, kmax) int64, best first, -1 for an empty slot.  The int64 CSR\n"
    "test_indptr (n_users + 1) / test_indices holds each row's relevant items, strictly\n"
    "increasing.  ks: int64 cut-offs in [1, kmax].  Returns float64 (n_users, len(ks), 6)\n"
    "with columns precision, recall, ndcg (IDCG over min(|T|, K)), ndcg_invrl (IDCG over\n"
    "min(hits, K)), hit_rate, map; rows with no relevant item are NaN.");

static PyObject *
core_ranking_metrics(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *kwlist[] = {"topk_ids", "test_indptr", "test_indices", "ks",
                             "n_items",  "n_threads",   NULL};
    const char *func = "ranking_metrics";
    PyObject *t_obj = NULL, *p_obj = NULL, *i_obj = NULL, *k_obj = NULL;
    Py_ssize_t n_items = 0;
    int n_threads = 0;
    PyArrayObject *T = NULL, *P = NULL, *Ix = NULL, *Ks = NULL, *out = NULL;
    PyObject *result = NULL;
    pv_status status;

    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOn|$i:ranking_metrics", kwlist, &t_obj,
                                     &p_obj, &i_obj, &k_obj, &n_items, &n_threads)) {
        return NULL;
    }
    npy_intp any2[2] = {-1, -1}, any1[1] = {-1};
    if ((T = pv_input(t_obj, NPY_INT64, 2, any2, func, "topk_ids")) == NULL) {
        goto done;
    }
    const pv_index n_users = PV_DIM(T, 0), kmax = PV_DIM(T, 1);
    npy_intp pshape[1] = {(npy_intp)(n_users + 1)};
    if ((P = pv_input(p_obj, NPY_INT64, 1, pshape, func, "test_indptr")) == NULL ||
        (Ix = pv_input(i_obj, NPY_INT64, 1, any1, func, "test_indices")) == NULL ||
        (Ks = pv_input(k_obj, NPY_INT64, 1, any1, func, "ks")) == NULL) {
        goto done;
    }
    const pv_index n_ks = PV_DIM(Ks, 0);
    if (kmax < 1) {
        PyErr_Format(PyExc_ValueError, "%s(): 'topk_ids' must have at least one column", func);
        goto done;
    }
    if (n_items < 0) {
        PyErr_Format(PyExc_ValueError, "%s(): 'n_items' must be >= 0, got %zd", func, n_items);
        goto done;
    }
    if (n_threads < 0) {
        PyErr_Format(PyExc_ValueError, "%s(): 'n_threads' must be >= 0 (0: default), got %d",
                     func, n_threads);
        goto done;
    }
    if (n_ks < 1) {
        PyErr_Format(PyExc_ValueError, "%s(): 'ks' is empty", func);
        goto done;
    }
    for (pv_index j = 0; j < n_ks; j++) {
        int64_t kk = PV_I64(Ks)[j];
        if (kk < 1 || kk > kmax) {
            PyErr_Format(PyExc_ValueError,
                         "%s(): every K in 'ks' must be in [1, topk_ids.shape[1]] = [1, %zd], "
                         "got %lld",
                         func, (Py_ssize_t)kmax, (long long)kk);
            goto done;
        }
    }
    if (check_csr(func, "test_indptr", "test_indices", P, Ix, n_users, n_items, 1) < 0) {
        goto done;
    }
    {
        const int64_t *ids = PV_I64(T);
        for (pv_index t = 0; t < n_users * kmax; t++) {
            if (ids[t] < -1 || ids[t] >= n_items) {
                PyErr_Format(PyExc_IndexError,
                             "%s(): 'topk_ids' holds id %lld at row %zd, outside [-1, %zd)",
                             func, (long long)ids[t], (Py_ssize_t)(t / kmax),
                             (Py_ssize_t)n_items);
                goto done;
            }
        }
    }
    npy_intp oshape[3] = {(npy_intp)n_users, (npy_intp)n_ks, PV_MET_COUNT};
    if ((out = (PyArrayObject *)PyArray_SimpleNew(3, oshape, NPY_FLOAT64)) == NULL) {
        goto done;
    }
    {
        const int64_t *t_ptr = PV_I64(T), *p_ptr = PV_I64(P), *i_ptr = PV_I64(Ix);
        const int64_t *k_ptr = PV_I64(Ks);
        double *o_ptr = PV_F64(out);
        PV_BEGIN_KERNEL
        status = pv_ranking_metrics_f64(n_users, kmax, (pv_index)n_items, t_ptr, p_ptr, i_ptr,
                                        n_ks, k_ptr, o_ptr, n_threads);
        PV_END_KERNEL
    }
    if (status == PV_EINVAL) {
        PyErr_Format(PyExc_ValueError,
                     "%s(): a row of 'topk_ids' lists the same relevant item twice", func);
        goto done;
    }
    if (status != PV_OK) {
        pv_raise_status(status, func);
        goto done;
    }
    result = (PyObject *)out;
    out = NULL;
done:
    Py_XDECREF(T);
    Py_XDECREF(P);
    Py_XDECREF(Ix);
    Py_XDECREF(Ks);
    Py_XDECREF(out);
    return result;
}

PyMethodDef pv_eval_methods[] = {
    {"topk", (PyCFunction)(void (*)(void))core_topk, METH_VARARGS | METH_KEYWORDS,
     core_topk_doc},
    {"topk_bf16_backend", core_topk_bf16_backend, METH_NOARGS, core_topk_bf16_backend_doc},
    {"ranking_metrics", (PyCFunction)(void (*)(void))core_ranking_metrics,
     METH_VARARGS | METH_KEYWORDS, core_ranking_metrics_doc},
    {NULL, NULL, 0, NULL},
};
