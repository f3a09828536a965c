/* pv_bind_identify.c -- _core.identify: environment identification rounds (method.md §2.1). */
#define NO_IMPORT_ARRAY
#include <math.h>
#include "pv_numpy.h"
#include "../kernels/pv_identify.h"

#define FUNC "identify"

int pv_parse_reg(const char *reg, pv_rec_reg *out, const char *func);

PyDoc_STRVAR(core_identify_doc,
"identify($module, /, users, items, labels, X, beta_u, beta_i, *, n_users, n_envs=10, "
"max_rounds=10, tol_changes=0, d_id=64, d_c=64, emb_opt='adagrad', emb_lr=1e-3, proj_lr=1e-3, "
"reg='full', wd1=1e-4, wdi=2.0, wd2=0.01, l1=0.01, mask_prev=None, bias=True, init_std=0.01, "
"batch_size=512, n_neg=50, epochs=20, w=(1.0, 1.0, 1.0, 1.0), seed=2233, n_threads=0, "
"return_scores=False)\n--\n\n"
"Environment identification: labels (int64, one per pair) is updated in place.  Returns\n"
"(changes, sizes, scores): labels changed per round (n_rounds,), environment sizes per round\n"
"(n_rounds, n_envs), and the last round's scores (n_envs, n_pairs) or None.");

static PyObject *
core_identify(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"users", "items", "labels", "X", "beta_u", "beta_i", "n_users",
                             "n_envs", "max_rounds", "tol_changes", "d_id", "d_c", "emb_opt",
                             "emb_lr", "proj_lr", "reg", "wd1", "wdi", "wd2", "l1", "mask_prev",
                             "bias", "init_std", "batch_size", "n_neg", "epochs", "w", "seed",
                             "n_threads", "return_scores", NULL};
    PyObject *ousers, *oitems, *olabels, *oX, *obu, *obi, *omask = Py_None;
    Py_ssize_t n_users = -1, n_envs = 10, max_rounds = 10, tol = 0, d_id = 64, d_c = 64;
    Py_ssize_t batch = 512, n_neg = 50, epochs = 20;
    const char *emb_opt = "adagrad", *reg_name = "full";
    double emb_lr = 1e-3, proj_lr = 1e-3, wd1 = 1e-4, wdi = 2, wd2 = 0.01, l1 = 0.01;
    double init_std = 0.01, w[4] = {1, 1, 1, 1};
    int bias = 1, n_threads = 0, return_scores = 0;
    unsigned long long seed = 2233;
    PyObject *oseed = NULL;
    if (!PyArg_ParseTupleAndKeywords(
            args, kwds, "OOOOOO|$nnnnnnsddsddddOpdnnn(dddd)Oip:" FUNC, kwlist, &ousers, &oitems,
            &olabels, &oX, &obu, &obi, &n_users, &n_envs, &max_rounds, &tol, &d_id, &d_c,
            &emb_opt, &emb_lr, &proj_lr, &reg_name, &wd1, &wdi, &wd2, &l1, &omask, &bias,
            &init_std, &batch, &n_neg, &epochs, &w[0], &w[1], &w[2], &w[3], &oseed, &n_threads,
            &return_scores) ||
        pv_counter(oseed, 64, FUNC, "seed", &seed) < 0) {
        return NULL;
    }
    pv_identify_config c;
    memset(&c, 0, sizeof(c));
    if (pv_parse_reg(reg_name, &c.reg, FUNC) < 0) {
        return NULL;
    }
    if (strcmp(emb_opt, "adagrad") == 0) {
        pv_opt o = {PV_OPT_ADAGRAD, (float)emb_lr, 0.0f, 0.0f, 1e-10f};
        c.emb = o;
    } else if (strcmp(emb_opt, "adam") == 0) {
        pv_opt o = {PV_OPT_ADAM, (float)emb_lr, 0.9f, 0.999f, 1e-8f};
        c.emb = o;
    } else {
        return PyErr_Format(PyExc_ValueError, FUNC "(): 'emb_opt' must be 'adagrad' or 'adam'");
    }
    pv_opt proj = {PV_OPT_ADAM, (float)proj_lr, 0.9f, 0.999f, 1e-8f};
    c.proj = proj;
    {
        /* Each size and hyperparameter by name, so the message says which one is wrong. */
        const struct {
            const char *name;
            int bad;
        } checks[] = {
            {"n_users (>= 1, required)", n_users < 1},
            {"n_envs (>= 1)", n_envs < 1},
            {"max_rounds (>= 1)", max_rounds < 1},
            {"tol_changes (>= 0)", tol < 0},
            {"d_id (>= 0)", d_id < 0},
            {"d_c (>= 0)", d_c < 0},
            {"d_id + d_c (>= 1)", d_id + d_c < 1},
            {"batch_size (>= 1)", batch < 1},
            {"n_neg (>= 0)", n_neg < 0},
            {"epochs (>= 0)", epochs < 0},
            {"emb_lr (finite, > 0)", !(emb_lr > 0) || !isfinite(emb_lr)},
            {"proj_lr (finite, > 0)", !(proj_lr > 0) || !isfinite(proj_lr)},
            {"wd1 (finite, >= 0)", !(wd1 >= 0) || !isfinite(wd1)},
            {"wdi (finite, >= 0)", !(wdi >= 0) || !isfinite(wdi)},
            {"wd2 (finite, >= 0)", !(wd2 >= 0) || !isfinite(wd2)},
            {"l1 (finite, >= 0)", !(l1 >= 0) || !isfinite(l1)},
            {"init_std (finite, >= 0)", !(init_std >= 0) || !isfinite(init_std)},
            {"w (finite)", !isfinite(w[0]) || !isfinite(w[1]) || !isfinite(w[2]) ||
                               !isfinite(w[3])},
        };
        for (size_t k = 0; k < sizeof(checks) / sizeof(checks[0]); k++) {
            if (checks[k].bad) {
                return PyErr_Format(PyExc_ValueError, FUNC "(): '%s' is out of range",
                                    checks[k].name);
            }
        }
    }
    PyArrayObject *users = NULL, *items = NULL, *labels = NULL, *X = NULL, *bu = NULL, *bi = NULL;
    PyArrayObject *mask = NULL, *changes = NULL, *sizes = NULL, *scores = NULL;
    PyObject *result = NULL;
    int ok = 1;
    users = pv_input(ousers, NPY_INT64, 1, NULL, FUNC, "users");
    if (!users) goto done;
    npy_intp n = PyArray_DIM(users, 0);
    npy_intp shn[1] = {n};
    items = pv_input(oitems, NPY_INT64, 1, shn, FUNC, "items");
    if (!items) goto done;
    labels = pv_inout(olabels, NPY_INT64, 1, shn, FUNC, "labels");
    if (!labels) goto done;
    X = pv_input(oX, NPY_FLOAT32, 2, NULL, FUNC, "X");
    if (!X) goto done;
    npy_intp n_items = PyArray_DIM(X, 0), D = PyArray_DIM(X, 1);
    npy_intp shu[1] = {n_users}, shi[1] = {n_items}, shd[1] = {D};
    bu = pv_input(obu, NPY_FLOAT32, 1, shu, FUNC, "beta_u");
    if (!bu) goto done;
    bi = pv_input(obi, NPY_FLOAT32, 1, shi, FUNC, "beta_i");
    if (!bi) goto done;
    mask = pv_optional_input(omask, NPY_FLOAT32, 1, shd, FUNC, "mask_prev", &ok);
    if (!ok) goto done;
    if (n == 0) {
        PyErr_SetString(PyExc_ValueError, FUNC "(): 'users' and 'items' are empty");
        goto done;
    }
    npy_intp shr[2] = {max_rounds, n_envs};
    changes = (PyArrayObject *)PyArray_ZEROS(1, shr, NPY_INT64, 0);
    sizes = (PyArrayObject *)PyArray_ZEROS(2, shr, NPY_INT64, 0);
    if (!changes || !sizes) goto done;
    if (return_scores) {
        npy_intp shs[2] = {n_envs, n};
        scores = (PyArrayObject *)PyArray_SimpleNew(2, shs, NPY_FLOAT32);
        if (!scores) goto done;
    }
    pv_rec_dims dims = {n_users, n_items, d_id, d_c, D};
    c.dims = dims;
    c.X = PV_F32(X);
    c.beta_u = PV_F32(bu);
    c.beta_i = PV_F32(bi);
    for (int k = 0; k < 4; k++) {
        c.w[k] = (float)w[k];
    }
    c.wd1 = (float)wd1;
    c.wdi = (float)wdi;
    c.wd2 = (float)wd2;
    c.l1 = (float)l1;
    c.mask_prev = mask ? PV_F32(mask) : NULL;
    c.bias = bias;
    c.init_std = (float)init_std;
    c.batch = batch;
    c.n_neg = n_neg;
    c.epochs = epochs;
    pv_index n_rounds = 0;
    pv_status st;
    int threads = n_threads > 0 ? n_threads : pv_default_threads();
    PV_BEGIN_KERNEL
    st = pv_identify(&c, n, PV_I64(users), PV_I64(items), n_envs, max_rounds, tol, seed,
                     PV_I64(labels), PV_I64(changes), PV_I64(sizes), &n_rounds,
                     scores ? PV_F32(scores) : NULL, threads);
    PV_END_KERNEL
    if (st != PV_OK) {
        pv_raise_status(st, FUNC);
        goto done;
    }
    result = Py_BuildValue("(NNO)",
                           PySequence_GetSlice((PyObject *)changes, 0, n_rounds),
                           PySequence_GetSlice((PyObject *)sizes, 0, n_rounds),
                           scores ? (PyObject *)scores : Py_None);
done:
    Py_XDECREF(users); Py_XDECREF(items); Py_XDECREF(labels); Py_XDECREF(X); Py_XDECREF(bu);
    Py_XDECREF(bi); Py_XDECREF(mask); Py_XDECREF(changes); Py_XDECREF(sizes);
    Py_XDECREF(scores);
    return result;
}

PyMethodDef pv_identify_methods[] = {
    {"identify", (PyCFunction)(void (*)(void))core_identify, METH_VARARGS | METH_KEYWORDS,
     core_identify_doc},
    {NULL, NULL, 0, NULL},
};
