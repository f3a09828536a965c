/* pv_bind_train.c -- _core.train_epoch: one training epoch in C (the backbone, or the
 * final recommender with the convert module). */
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

static int
parse_fusion(const char *name, pv_convert_fusion *out)
{
    if (strcmp(name, "attention") == 0) {
        *out = PV_FUSE_ATTENTION;
    } else if (strcmp(name, "global") == 0) {
        *out = PV_FUSE_GLOBAL;
    } else if (strcmp(name, "invariant") == 0) {
        *out = PV_FUSE_INVARIANT;
    } else {
        PyErr_Format(PyExc_ValueError,
                     FUNC "(): 'fusion' must be 'attention', 'global', 'invariant' or None, "
                          "got '%s'",
                     name);
        return -1;
    }
    return 0;
}

/* The arrays of the convert part; all owned references. */
typedef struct {
    PyArrayObject *mask, *A, *c, *q, *omega, *Wv, *bv, *st[12];
} convert_arrays;

static void
convert_arrays_clear(convert_arrays *a)
{
    Py_XDECREF(a->mask);
    Py_XDECREF(a->A);
    Py_XDECREF(a->c);
    Py_XDECREF(a->q);
    Py_XDECREF(a->omega);
    Py_XDECREF(a->Wv);
    Py_XDECREF(a->bv);
    for (int k = 0; k < 12; k++) {
        Py_XDECREF(a->st[k]);
    }
}

/*
 * Check and take the convert part: mask (D,), A (d_a, d_c), c, q (d_a,) for
 * "attention", omega (2,) for "global", the variant projection W_var (W's shape) and
 * b_var (exactly when b is given) or None (shared), and convert_state = (A_m, A_v, c_m,
 * c_v, q_m, q_v, omega_m, omega_v[, W_var_m, W_var_v, b_var_m, b_var_v]) (12 entries
 * with W_var).  Parameters the fusion does not train are ignored.
 * Fills `cv`; 0, or -1 with an error set.
 */
static int
take_convert(pv_convert_fusion fusion, PyObject *omask, PyObject *oA, PyObject *oc, PyObject *oq,
             PyObject *oomega, PyObject *oWv, PyObject *obv, double l2, PyObject *ostate,
             PyArrayObject *W, PyArrayObject *b, PyObject *og, convert_arrays *a,
             pv_train_convert *cv)
{
    const npy_intp d_c = PyArray_DIM(W, 0), D = PyArray_DIM(W, 1);
    memset(cv, 0, sizeof(*cv));
    cv->fusion = fusion;
    cv->l2 = (float)l2;
    if (og != Py_None) {
        PyErr_SetString(PyExc_ValueError,
                        FUNC "(): 'g' must be None with 'fusion' (the convert module gates the "
                             "features with 'mask')");
        return -1;
    }
    if (omask == Py_None) {
        PyErr_SetString(PyExc_ValueError, FUNC "(): 'fusion' needs 'mask'");
        return -1;
    }
    npy_intp shm[1] = {D};
    a->mask = pv_input(omask, NPY_FLOAT32, 1, shm, FUNC, "mask");
    if (!a->mask) {
        return -1;
    }
    const float *m = PV_F32(a->mask);
    for (npy_intp k = 0; k < D; k++) {
        if (!(m[k] >= 0.0f && m[k] <= 1.0f)) {
            PyErr_SetString(PyExc_ValueError, FUNC "(): 'mask' must hold values in [0, 1]");
            return -1;
        }
    }
    cv->mask = m;
    if (fusion == PV_FUSE_INVARIANT) {
        return 0;
    }
    const int separate = oWv != Py_None;
    const Py_ssize_t n_state = separate ? 12 : 8;
    if (!PyTuple_Check(ostate) || PyTuple_GET_SIZE(ostate) != n_state) {
        PyErr_Format(PyExc_TypeError,
                     FUNC "(): 'convert_state' must be a tuple of %zd entries (A_m, A_v, c_m, "
                          "c_v, q_m, q_v, omega_m, omega_v%s)",
                     n_state, separate ? ", W_var_m, W_var_v, b_var_m, b_var_v" : "");
        return -1;
    }
    static const char *names[12] = {
        "convert_state[0] (A_m)", "convert_state[1] (A_v)", "convert_state[2] (c_m)",
        "convert_state[3] (c_v)", "convert_state[4] (q_m)", "convert_state[5] (q_v)",
        "convert_state[6] (omega_m)", "convert_state[7] (omega_v)",
        "convert_state[8] (W_var_m)", "convert_state[9] (W_var_v)",
        "convert_state[10] (b_var_m)", "convert_state[11] (b_var_v)"};
    if (separate) {
        npy_intp shW[2] = {d_c, D}, shb[1] = {d_c};
        a->Wv = pv_inout(oWv, NPY_FLOAT32, 2, shW, FUNC, "W_var");
        if (!a->Wv) {
            return -1;
        }
        if ((obv == Py_None) != (b == NULL)) {
            PyErr_SetString(PyExc_ValueError,
                            FUNC "(): 'b_var' must be given exactly when 'b' is (with 'W_var')");
            return -1;
        }
        if (b != NULL && !(a->bv = pv_inout(obv, NPY_FLOAT32, 1, shb, FUNC, "b_var"))) {
            return -1;
        }
        PyArrayObject *vowners[4] = {a->Wv, a->Wv, a->bv, a->bv};
        for (int k = 8; k < 12; k++) {
            if (state_array(PyTuple_GET_ITEM(ostate, k), vowners[k - 8], vowners[k - 8] != NULL,
                            names[k], &a->st[k]) < 0) {
                return -1;
            }
        }
        cv->W_var = PV_F32(a->Wv);
        cv->b_var = a->bv ? PV_F32(a->bv) : NULL;
        cv->W_var1 = PV_F32(a->st[8]);
        cv->W_var2 = PV_F32(a->st[9]);
        cv->b_var1 = a->st[10] ? PV_F32(a->st[10]) : NULL;
        cv->b_var2 = a->st[11] ? PV_F32(a->st[11]) : NULL;
    } else if (obv != Py_None) {
        PyErr_SetString(PyExc_ValueError, FUNC "(): 'b_var' needs 'W_var'");
        return -1;
    }
    int lo, hi;
    if (fusion == PV_FUSE_ATTENTION) {
        if (oA == Py_None || oc == Py_None || oq == Py_None) {
            PyErr_SetString(PyExc_ValueError, FUNC "(): fusion='attention' needs 'A', 'c' and 'q'");
            return -1;
        }
        npy_intp shA[2] = {-1, d_c};
        a->A = pv_inout(oA, NPY_FLOAT32, 2, shA, FUNC, "A");
        if (!a->A) {
            return -1;
        }
        npy_intp sha[1] = {PyArray_DIM(a->A, 0)};
        a->c = pv_inout(oc, NPY_FLOAT32, 1, sha, FUNC, "c");
        if (!a->c) {
            return -1;
        }
        a->q = pv_inout(oq, NPY_FLOAT32, 1, sha, FUNC, "q");
        if (!a->q) {
            return -1;
        }
        cv->d_a = PyArray_DIM(a->A, 0);
        cv->A = PV_F32(a->A);
        cv->c = PV_F32(a->c);
        cv->q = PV_F32(a->q);
        lo = 0;
        hi = 6;
    } else {
        if (oomega == Py_None) {
            PyErr_SetString(PyExc_ValueError, FUNC "(): fusion='global' needs 'omega'");
            return -1;
        }
        npy_intp sho[1] = {2};
        a->omega = pv_inout(oomega, NPY_FLOAT32, 1, sho, FUNC, "omega");
        if (!a->omega) {
            return -1;
        }
        cv->omega = PV_F32(a->omega);
        lo = 6;
        hi = 8;
    }
    PyArrayObject *owners[8] = {a->A, a->A, a->c, a->c, a->q, a->q, a->omega, a->omega};
    for (int k = lo; k < hi; k++) {
        if (state_array(PyTuple_GET_ITEM(ostate, k), owners[k], 1, names[k], &a->st[k]) < 0) {
            return -1;
        }
    }
    float *p[8];
    for (int k = 0; k < 8; k++) {
        p[k] = a->st[k] ? PV_F32(a->st[k]) : NULL;
    }
    cv->A1 = p[0], cv->A2 = p[1], cv->c1 = p[2], cv->c2 = p[3];
    cv->q1 = p[4], cv->q2 = p[5], cv->omega1 = p[6], cv->omega2 = p[7];
    return 0;
}

PyDoc_STRVAR(core_train_epoch_doc,
"train_epoch($module, /, U, V, W, b, g, X, beta_u, beta_i, users, items, state, *, "
"w=(1.0, 1.0, 1.0, 1.0), emb_opt='adam', emb_lr=1e-3, proj_lr=1e-3, reg='full', wd1=1e-4, "
"wdi=1.0, wd2=0.01, l1=0.0, l1_mask=None, batch_size=512, n_neg=50, seed=0, epoch=0, step=0, "
"n_threads=0, fusion=None, mask=None, A=None, c=None, q=None, omega=None, "
"convert_state=None, W_var=None, b_var=None, fusion_l2=None)\n--\n\n"
"One epoch of the backbone over the positives (users[k], items[k]), float32, updating U, V,\n"
"W, b and the optimiser state in place.  state = (U_m, U_v, V_m, V_v, W_m, W_v, b_m, b_v):\n"
"Adam moments shaped like their parameter (the second moments of U and V are None under\n"
"Adagrad, whose first slot holds the squared-gradient sums; b's are None without b).\n"
"Returns (loss_sum, n_batches, step): the summed batch L_rec and the new step count.\n\n"
"With fusion ('attention', 'global' or 'invariant') it trains the final recommender of\n"
"method.md 4.2 instead: item content h = a_inv (W (m o x) + b) + a_var (W_v ((1 - m) o x) + b_v)\n"
"with the fixed mask (D,) (g must be None), W_v, b_v = W_var, b_var (separate projections)\n"
"or W, b (W_var None: shared), and also updates in place, with the projection optimiser\n"
"(Adam, proj_lr): W_var, b_var (L2 weight wd2) and A (d_a, d_c), c (d_a,), q (d_a,) for\n"
"'attention' or omega (2,) for 'global' ('invariant' trains neither) with L2 weight\n"
"fusion_l2 (None: wd2); convert_state = (A_m, A_v, c_m, c_v, q_m, q_v, omega_m, omega_v\n"
"[, W_var_m, W_var_v, b_var_m, b_var_v]), Adam moments shaped like their parameter (None\n"
"where the fusion does not use them; convert_state may be None for 'invariant').");

static PyObject *
core_train_epoch(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"U", "V", "W", "b", "g", "X", "beta_u", "beta_i", "users", "items",
                             "state", "w", "emb_opt", "emb_lr", "proj_lr", "reg", "wd1", "wdi",
                             "wd2", "l1", "l1_mask", "batch_size", "n_neg", "seed", "epoch",
                             "step", "n_threads", "fusion", "mask", "A", "c", "q", "omega",
                             "convert_state", "W_var", "b_var", "fusion_l2", NULL};
    PyObject *oU, *oV, *oW, *ob, *og, *oX, *obu, *obi, *ousers, *oitems, *ostate;
    PyObject *ol1_mask = Py_None, *omask = Py_None, *oA = Py_None, *oc = Py_None;
    PyObject *oq = Py_None, *oomega = Py_None, *ocstate = Py_None, *oWv = Py_None;
    PyObject *obv = Py_None, *ofl2 = Py_None;
    const char *fusion_name = NULL;
    double w[4] = {1, 1, 1, 1}, emb_lr = 1e-3, proj_lr = 1e-3, wd1 = 1e-4, wdi = 1, wd2 = 0.01;
    double l1 = 0;
    const char *emb_opt = "adam", *reg_name = "full";
    Py_ssize_t batch = 512, n_neg = 50;
    unsigned long long seed = 0, epoch = 0;
    PyObject *oseed = NULL, *oepoch = NULL;
    long long step = 0;
    int n_threads = 0;
    if (!PyArg_ParseTupleAndKeywords(
            args, kwds, "OOOOOOOOOOO|$(dddd)sddsddddOnnOOLizOOOOOOOOO:" FUNC, kwlist, &oU, &oV,
            &oW, &ob, &og, &oX, &obu, &obi, &ousers, &oitems, &ostate, &w[0], &w[1], &w[2], &w[3],
            &emb_opt, &emb_lr, &proj_lr, &reg_name, &wd1, &wdi, &wd2, &l1, &ol1_mask, &batch,
            &n_neg, &oseed, &oepoch, &step, &n_threads, &fusion_name, &omask, &oA, &oc, &oq,
            &oomega, &ocstate, &oWv, &obv, &ofl2) ||
        pv_counter(oseed, 64, FUNC, "seed", &seed) < 0 ||
        pv_counter(oepoch, 32, FUNC, "epoch", &epoch) < 0) {
        return NULL;
    }
    pv_train_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    pv_convert_fusion fusion = PV_FUSE_ATTENTION;
    if (fusion_name != NULL && parse_fusion(fusion_name, &fusion) < 0) {
        return NULL;
    }
    if (fusion_name == NULL && (omask != Py_None || oA != Py_None || oc != Py_None ||
                                oq != Py_None || oomega != Py_None || ocstate != Py_None ||
                                oWv != Py_None || obv != Py_None || ofl2 != Py_None)) {
        return PyErr_Format(PyExc_ValueError,
                            FUNC "(): 'mask', 'A', 'c', 'q', 'omega', 'convert_state', "
                                 "'W_var', 'b_var' and 'fusion_l2' need 'fusion'");
    }
    double fusion_l2 = wd2;
    if (ofl2 != Py_None) {
        fusion_l2 = PyFloat_AsDouble(ofl2);
        if (fusion_l2 == -1.0 && PyErr_Occurred()) {
            return NULL;
        }
        if (!(fusion_l2 >= 0) || fusion_l2 - fusion_l2 != 0) {
            return PyErr_Format(PyExc_ValueError,
                                FUNC "(): 'fusion_l2' must be a finite number >= 0");
        }
    }
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
    convert_arrays ca;
    memset(&ca, 0, sizeof(ca));
    pv_train_convert cv;
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
    if (fusion_name != NULL &&
        take_convert(fusion, omask, oA, oc, oq, oomega, oWv, obv, fusion_l2, ocstate, W, b, og,
                     &ca, &cv) < 0) {
        goto done;
    }

    pv_train_model model = {{n_users, n_items, d_id, d_c, D},
                            PV_F32(U), PV_F32(V), PV_F32(W), b ? PV_F32(b) : NULL,
                            g ? PV_F32(g) : NULL, PV_F32(X), PV_F32(bu), PV_F32(bi),
                            {(float)w[0], (float)w[1], (float)w[2], (float)w[3]},
                            fusion_name != NULL ? &cv : NULL};
    double loss = 0;
    pv_index n_batches = 0;
    int64_t step64 = step;
    pv_status status;
    PV_BEGIN_KERNEL
    status = pv_train_epoch(&cfg, &model, PyArray_DIM(users, 0), PV_I64(users), PV_I64(items),
                            batch, n_neg, seed, (uint32_t)epoch, &step64, n_threads > 0 ? n_threads
                                                                        : pv_default_threads(),
                            &loss, &n_batches);
    PV_END_KERNEL
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
    convert_arrays_clear(&ca);
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
    unsigned long long seed, epoch;
    PyObject *oseed, *oepoch;
    long long pos;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "nnOOL:epoch_negatives", kwlist, &n_items,
                                     &n_neg, &oseed, &oepoch, &pos) ||
        pv_counter(oseed, 64, "epoch_negatives", "seed", &seed) < 0 ||
        pv_counter(oepoch, 32, "epoch_negatives", "epoch", &epoch) < 0) {
        return NULL;
    }
    if (n_items < 1 || n_neg < 0 || pos < 0) {
        return PyErr_Format(PyExc_ValueError,
                            "epoch_negatives(): need n_items >= 1, n_neg >= 0, position >= 0");
    }
    npy_intp dims[1] = {n_neg};
    PyArrayObject *out = (PyArrayObject *)PyArray_SimpleNew(1, dims, NPY_INT64);
    if (out) {
        pv_train_negatives(n_items, n_neg, seed, (uint32_t)epoch, pos, PV_I64(out));
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
