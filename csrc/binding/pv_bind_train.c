/* pv_bind_train.c -- _core.train_epoch: one backbone training epoch in C. */
#define NO_IMPORT_ARRAY
#include "pv_numpy.h"
#include <math.h>
#include "../kernels/pv_train.h"

#define FUNC "train_epoch"

int pv_parse_reg(const char *reg, pv_rec_reg *out, const char *func);

static int
parse_opt(const char *name, const char *param, double lr, pv_opt *out)
{
    if (strcmp(name, "adam") == 0) {
        pv_opt o = {PV_OPT_ADAM, (float)lr, 0.9f, 0.999f, 1e-8f};
        *out = o;
    } else if (strcmp(name, "adagrad") == 0) {
        pv_opt o = {PV_OPT_ADAGRAD, (float)lr, 0.0f, 0.0f, 1e-10f};
        *out = o;
    } else {
        PyErr_Format(PyExc_ValueError, FUNC "(): '%s' must be 'adam' or 'adagrad', got '%s'",
                     param, name);
        return -1;
    }
    if (!(lr > 0) || !isfinite(lr)) {
        PyErr_Format(PyExc_ValueError, FUNC "(): the learning rate of '%s' must be > 0", param);
        return -1;
    }
    return 0;
}

/* An optimiser state array shaped like its parameter, or NULL when `needed` is 0. */
static int
state_array(PyObject *obj, PyArrayObject *param, int needed, const char *name,
            PyArrayObject **out)
{
    *out = NULL;
    if (!needed) {
        return 0;
    }
    if (obj == Py_None) {
        PyErr_Format(PyExc_ValueError, FUNC "(): optimiser state '%s' is required", name);
        return -1;
    }
    *out = pv_inout(obj, NPY_FLOAT32, PyArray_NDIM(param), PyArray_DIMS(param), FUNC, name);
    return *out ? 0 : -1;
}

PyDoc_STRVAR(core_train_epoch_doc,
"train_epoch($module, /, U, V, W, b, g, X, beta_u, beta_i, users, items, state, *, "
"w=(1.0, 1.0, 1.0, 1.0), emb_opt='adam', emb_lr=1e-3, proj_lr=1e-3, reg='full', wd1=1e-4, "
"wdi=1.0, wd2=0.01, l1=0.0, l1_mask=None, batch_size=512, n_neg=50, seed=0, epoch=0, step=0, "
"n_threads=0)\n--\n\n"
"One epoch of the backbone over the positives (users[k], items[k]), float32, updating U, V,\n"
"W, b and the optimiser state in place.  state = (U_m, U_v, V_m, V_v, W_m, W_v, b_m, b_v):\n"
"Adam moments shaped like their parameter (the second moments of U and V are None under\n"
"Adagrad, whose first slot holds the squared-gradient sums; b's are None without b).\n"
"Returns (loss_sum, n_batches, step): the summed batch L_rec and the new step count.");

static PyObject *
core_train_epoch(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"U", "V", "W", "b", "g", "X", "beta_u", "beta_i", "users", "items",
                             "state", "w", "emb_opt", "emb_lr", "proj_lr", "reg", "wd1", "wdi",
                             "wd2", "l1", "l1_mask", "batch_size", "n_neg", "seed", "epoch",
                             "step", "n_threads", NULL};
    PyObject *oU, *oV, *oW, *ob, *og, *oX, *obu, *obi, *ousers, *oitems, *ostate;
    PyObject *ol1_mask = Py_None;
    double w[4] = {1, 1, 1, 1}, emb_lr = 1e-3, proj_lr = 1e-3, wd1 = 1e-4, wdi = 1, wd2 = 0.01;
    double l1 = 0;
    const char *emb_opt = "adam", *reg_name = "full";
    Py_ssize_t batch = 512, n_neg = 50;
    unsigned long long seed = 0;
    unsigned int epoch = 0;
    long long step = 0;
    int n_threads = 0;
    if (!PyArg_ParseTupleAndKeywords(
            args, kwds, "OOOOOOOOOOO|$(dddd)sddsddddOnnKILi:" FUNC, kwlist, &oU, &oV, &oW, &ob,
            &og, &oX, &obu, &obi, &ousers, &oitems, &ostate, &w[0], &w[1], &w[2], &w[3],
            &emb_opt, &emb_lr, &proj_lr, &reg_name, &wd1, &wdi, &wd2, &l1, &ol1_mask, &batch,
            &n_neg, &seed, &epoch, &step, &n_threads)) {
        return NULL;
    }
    pv_train_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    if (parse_opt(emb_opt, "emb_opt", emb_lr, &cfg.emb) < 0 ||
        parse_opt("adam", "proj_opt", proj_lr, &cfg.proj) < 0 ||
        pv_parse_reg(reg_name, &cfg.reg, FUNC) < 0) {
        return NULL;
    }
    if (batch < 1 || n_neg < 0 || step < 0 || !(wd1 >= 0) || !(wdi >= 0) || !(wd2 >= 0) ||
        !(l1 >= 0)) {
        return PyErr_Format(PyExc_ValueError,
                            FUNC "(): need batch_size >= 1, n_neg >= 0, step >= 0 and "
                                 "non-negative wd1, wdi, wd2, l1");
    }
    if (!PyTuple_Check(ostate) || PyTuple_GET_SIZE(ostate) != 8) {
        return PyErr_Format(PyExc_TypeError, FUNC "(): 'state' must be a tuple of 8 entries");
    }
    PyArrayObject *U = NULL, *V = NULL, *W = NULL, *b = NULL, *g = NULL, *X = NULL;
    PyArrayObject *bu = NULL, *bi = NULL, *users = NULL, *items = NULL, *l1m = NULL;
    PyArrayObject *st_arr[8] = {NULL};
    PyObject *result = NULL;
    int ok = 1;

    U = pv_inout(oU, NPY_FLOAT32, 2, NULL, FUNC, "U");
    if (!U) goto done;
    npy_intp n_users = PyArray_DIM(U, 0);
    V = pv_inout(oV, NPY_FLOAT32, 2, NULL, FUNC, "V");
    if (!V) goto done;
    npy_intp n_items = PyArray_DIM(V, 0), d_id = PyArray_DIM(V, 1);
    npy_intp d_c = PyArray_DIM(U, 1) - d_id;
    if (d_c < 0) {
        PyErr_SetString(PyExc_ValueError, FUNC "(): 'U' has fewer columns than 'V'");
        goto done;
    }
    npy_intp shW[2] = {d_c, -1};
    W = pv_inout(oW, NPY_FLOAT32, 2, shW, FUNC, "W");
    if (!W) goto done;
    npy_intp D = PyArray_DIM(W, 1);
    npy_intp shb[1] = {d_c}, shg[1] = {D}, shX[2] = {n_items, D};
    npy_intp shbu[1] = {n_users}, shbi[1] = {n_items};
    if (ob != Py_None) {
        b = pv_inout(ob, NPY_FLOAT32, 1, shb, FUNC, "b");
        if (!b) goto done;
    }
    g = pv_optional_input(og, NPY_FLOAT32, 1, shg, FUNC, "g", &ok);
    if (!ok) goto done;
    X = pv_input(oX, NPY_FLOAT32, 2, shX, FUNC, "X");
    if (!X) goto done;
    bu = pv_input(obu, NPY_FLOAT32, 1, shbu, FUNC, "beta_u");
    if (!bu) goto done;
    bi = pv_input(obi, NPY_FLOAT32, 1, shbi, FUNC, "beta_i");
    if (!bi) goto done;
    users = pv_input(ousers, NPY_INT64, 1, NULL, FUNC, "users");
    if (!users) goto done;
    npy_intp shitems[1] = {PyArray_DIM(users, 0)};
    items = pv_input(oitems, NPY_INT64, 1, shitems, FUNC, "items");
    if (!items) goto done;
    if (PyArray_DIM(users, 0) == 0) {
        PyErr_SetString(PyExc_ValueError, FUNC "(): 'users' and 'items' are empty");
        goto done;
    }
    l1m = pv_optional_input(ol1_mask, NPY_FLOAT32, 1, shg, FUNC, "l1_mask", &ok);
    if (!ok) goto done;

    static const char *state_names[8] = {"state[0] (U_m)", "state[1] (U_v)", "state[2] (V_m)",
                                         "state[3] (V_v)", "state[4] (W_m)", "state[5] (W_v)",
                                         "state[6] (b_m)", "state[7] (b_v)"};
    PyArrayObject *owners[8] = {U, U, V, V, W, W, b, b};
    int adam_emb = cfg.emb.kind == PV_OPT_ADAM;
    int needed[8] = {1, adam_emb, 1, adam_emb, 1, 1, b != NULL, b != NULL};
    for (int k = 0; k < 8; k++) {
        if (state_array(PyTuple_GET_ITEM(ostate, k), owners[k], needed[k], state_names[k],
                        &st_arr[k]) < 0) {
            goto done;
        }
    }
    cfg.U1 = PV_F32(st_arr[0]);
    cfg.U2 = st_arr[1] ? PV_F32(st_arr[1]) : NULL;
    cfg.V1 = PV_F32(st_arr[2]);
    cfg.V2 = st_arr[3] ? PV_F32(st_arr[3]) : NULL;
    cfg.W1 = PV_F32(st_arr[4]);
    cfg.W2 = PV_F32(st_arr[5]);
    cfg.b1 = st_arr[6] ? PV_F32(st_arr[6]) : NULL;
    cfg.b2 = st_arr[7] ? PV_F32(st_arr[7]) : NULL;
    cfg.wd1 = (float)wd1;
    cfg.wdi = (float)wdi;
    cfg.wd2 = (float)wd2;
    cfg.l1 = (float)l1;
    cfg.l1_mask = l1m ? PV_F32(l1m) : NULL;

    pv_train_model model = {{n_users, n_items, d_id, d_c, D},
                            PV_F32(U), PV_F32(V), PV_F32(W), b ? PV_F32(b) : NULL,
                            g ? PV_F32(g) : NULL, PV_F32(X), PV_F32(bu), PV_F32(bi),
                            {(float)w[0], (float)w[1], (float)w[2], (float)w[3]}};
    double loss = 0;
    pv_index n_batches = 0;
    int64_t step64 = step;
    pv_status status;
    Py_BEGIN_ALLOW_THREADS
    status = pv_train_epoch(&cfg, &model, PyArray_DIM(users, 0), PV_I64(users), PV_I64(items),
                            batch, n_neg, seed, epoch, &step64, n_threads > 0 ? n_threads
                                                                        : pv_default_threads(),
                            &loss, &n_batches);
    Py_END_ALLOW_THREADS
    if (status != PV_OK) {
        pv_raise_status(status, FUNC);
        goto done;
    }
    result = Py_BuildValue("dnL", loss, (Py_ssize_t)n_batches, (long long)step64);
done:
    Py_XDECREF(U); Py_XDECREF(V); Py_XDECREF(W); Py_XDECREF(b); Py_XDECREF(g); Py_XDECREF(X);
    Py_XDECREF(bu); Py_XDECREF(bi); Py_XDECREF(users); Py_XDECREF(items); Py_XDECREF(l1m);
    for (int k = 0; k < 8; k++) {
        Py_XDECREF(st_arr[k]);
    }
    return result;
}

PyDoc_STRVAR(core_epoch_negatives_doc,
"epoch_negatives($module, /, n_items, n_neg, seed, epoch, position)\n--\n\n"
"The negatives train_epoch draws for the pair at a position of an epoch.");

static PyObject *
core_epoch_negatives(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"n_items", "n_neg", "seed", "epoch", "position", NULL};
    Py_ssize_t n_items, n_neg;
    unsigned long long seed;
    unsigned int epoch;
    long long pos;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "nnKIL:epoch_negatives", kwlist, &n_items,
                                     &n_neg, &seed, &epoch, &pos)) {
        return NULL;
    }
    if (n_items < 1 || n_neg < 0 || pos < 0) {
        return PyErr_Format(PyExc_ValueError,
                            "epoch_negatives(): need n_items >= 1, n_neg >= 0, position >= 0");
    }
    npy_intp dims[1] = {n_neg};
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(1, dims, NPY_INT64);
    if (out) {
        pv_train_negatives(n_items, n_neg, seed, epoch, pos, PV_I64(out));
    }
    return (PyObject *)out;
}

PyMethodDef pv_train_methods[] = {
    {"train_epoch", (PyCFunction)(void (*)(void))core_train_epoch, METH_VARARGS | METH_KEYWORDS,
     core_train_epoch_doc},
    {"epoch_negatives", (PyCFunction)(void (*)(void))core_epoch_negatives,
     METH_VARARGS | METH_KEYWORDS, core_epoch_negatives_doc},
    {NULL, NULL, 0, NULL},
};
