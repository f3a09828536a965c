/* pv_bind_mask.c -- binding of the mask kernels (pv_mask.h, method.md §3). */
#define NO_IMPORT_ARRAY
#include "pv_numpy.h"
#include "../kernels/pv_mask.h"

/* Every id of an int64 array lies in [0, high); the message names the parameter. */
static int
check_ids(PyArrayObject *arr, int64_t high, const char *func, const char *name)
{
    const int64_t *p = PV_I64(arr);
    npy_intp n = PyArray_SIZE(arr);
    for (npy_intp k = 0; k < n; k++) {
        if (p[k] < 0 || p[k] >= high) {
            PyErr_Format(PyExc_IndexError, "%s(): '%s' holds %lld at flat position %zd, "
                         "outside [0, %lld)", func, name, (long long)p[k], (Py_ssize_t)k,
                         (long long)high);
            return -1;
        }
    }
    return 0;
}

static int
check_threads(int n_threads, const char *func)
{
    if (n_threads < 0) {
        PyErr_Format(PyExc_ValueError, "%s(): 'n_threads' must be >= 0 (0 = default), got %d",
                     func, n_threads);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(core_mask_step_doc,
"mask_step($module, /, U, V, X, W, mu, eps, users, items, beta_u, beta_i, *, sigma=0.01,\n"
"          w=(1.0, 1.0, 1.0, 1.0), wd2=0.01, n_threads=0, work=None)\n--\n\n"
"One mask step (method.md §3.3-3.4): losses and the gradients of L_ERM and L_IRM over\n"
"theta = [vec(W); mu].  Float arrays are all float32 or all float64 (the dtype of W).\n"
"U (n_users, d_id + d_c), V (n_items, d_id), X (n_items, D), W (d_c, D), mu (D,),\n"
"eps (E, D), users (E, B) int64, items (E, B, 1 + n_neg) int64 (column 0 positive),\n"
"beta_u (n_users,), beta_i (n_items,); w = (w1, w2, w3, w4).\n"
"work: optional uint8 workspace from mask_step_workspace() for these sizes, reused\n"
"across calls (saves the allocation and its page faults).\n"
"Returns (loss_env float64 (E,), erm, irm, reg, grad_erm (d_c*D + D,), grad_irm).");

static PyObject *
core_mask_step(PyObject *self, PyObject *args, PyObject *kwds)
{
    static const char *func = "mask_step";
    static char *kwlist[] = {"U", "V", "X", "W", "mu", "eps", "users", "items", "beta_u",
                             "beta_i", "sigma", "w", "wd2", "n_threads", "work", NULL};
    PyObject *oU, *oV, *oX, *oW, *omu, *oeps, *ousers, *oitems, *obu, *obi, *owork = Py_None;
    double sigma = 0.01, wd2 = 0.01, w[4] = {1.0, 1.0, 1.0, 1.0};
    int n_threads = 0;
    PyArrayObject *U = NULL, *V = NULL, *X = NULL, *W = NULL, *mu = NULL, *eps = NULL;
    PyArrayObject *users = NULL, *items = NULL, *bu = NULL, *bi = NULL;
    PyArrayObject *loss_env = NULL, *ga = NULL, *gb = NULL, *work = NULL;
    PyObject *result = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOOOOOO|$d(dddd)diO:mask_step", kwlist,
                                     &oU, &oV, &oX, &oW, &omu, &oeps, &ousers, &oitems, &obu,
                                     &obi, &sigma, &w[0], &w[1], &w[2], &w[3], &wd2,
                                     &n_threads, &owork)) {
        return NULL;
    }
    if (check_threads(n_threads, func) < 0) {
        return NULL;
    }
    if (!(sigma >= 0.0) || !isfinite(sigma)) {
        return PyErr_Format(PyExc_ValueError, "%s(): 'sigma' must be finite and >= 0, got %g",
                            func, sigma);
    }
    if (!(wd2 >= 0.0) || !isfinite(wd2)) {
        return PyErr_Format(PyExc_ValueError, "%s(): 'wd2' must be finite and >= 0, got %g",
                            func, wd2);
    }
    for (int k = 0; k < 4; k++) {
        if (!isfinite(w[k])) {
            return PyErr_Format(PyExc_ValueError, "%s(): 'w' must hold finite numbers", func);
        }
    }
    int typenum = NPY_FLOAT32;
    if (PyArray_Check(oW) && PyArray_TYPE((PyArrayObject *)oW) == NPY_FLOAT64) {
        typenum = NPY_FLOAT64;
    }
    npy_intp any2[2] = {-1, -1};
    if (!(W = pv_input(oW, typenum, 2, any2, func, "W"))) {
        goto done;
    }
    const npy_intp dc = PyArray_DIM(W, 0), D = PyArray_DIM(W, 1);
    if (!(V = pv_input(oV, typenum, 2, any2, func, "V"))) {
        goto done;
    }
    const npy_intp n_items = PyArray_DIM(V, 0), d_id = PyArray_DIM(V, 1);
    npy_intp su[2] = {-1, d_id + dc}, sx[2] = {n_items, D}, sd[1] = {D};
    if (!(U = pv_input(oU, typenum, 2, su, func, "U")) ||
        !(X = pv_input(oX, typenum, 2, sx, func, "X")) ||
        !(mu = pv_input(omu, typenum, 1, sd, func, "mu"))) {
        goto done;
    }
    const npy_intp n_users = PyArray_DIM(U, 0);
    npy_intp se[2] = {-1, D};
    if (!(eps = pv_input(oeps, typenum, 2, se, func, "eps"))) {
        goto done;
    }
    const npy_intp E = PyArray_DIM(eps, 0);
    npy_intp sus[2] = {E, -1};
    if (!(users = pv_input(ousers, NPY_INT64, 2, sus, func, "users"))) {
        goto done;
    }
    const npy_intp B = PyArray_DIM(users, 1);
    npy_intp sit[3] = {E, B, -1}, sbu[1] = {n_users}, sbi[1] = {n_items};
    if (!(items = pv_input(oitems, NPY_INT64, 3, sit, func, "items")) ||
        !(bu = pv_input(obu, typenum, 1, sbu, func, "beta_u")) ||
        !(bi = pv_input(obi, typenum, 1, sbi, func, "beta_i"))) {
        goto done;
    }
    const npy_intp n1 = PyArray_DIM(items, 2);
    if (E < 1 || B < 1 || n1 < 1 || dc < 1 || D < 1 || n_users < 1 || n_items < 1) {
        PyErr_Format(PyExc_ValueError,
                     "%s(): empty input: need E >= 1 environments (eps rows, got %zd), B >= 1 "
                     "rows (users columns, got %zd), items with >= 1 column (got %zd), "
                     "W of shape (d_c >= 1, D >= 1) (got (%zd, %zd)) and non-empty tables",
                     func, (Py_ssize_t)E, (Py_ssize_t)B, (Py_ssize_t)n1, (Py_ssize_t)dc,
                     (Py_ssize_t)D);
        goto done;
    }
    if (check_ids(users, n_users, func, "users") < 0 ||
        check_ids(items, n_items, func, "items") < 0) {
        goto done;
    }
    npy_intp sl[1] = {E}, st_[1] = {dc * D + D};
    loss_env = (PyArrayObject *)PyArray_SimpleNew(1, sl, NPY_FLOAT64);
    ga = (PyArrayObject *)PyArray_SimpleNew(1, st_, typenum);
    gb = (PyArrayObject *)PyArray_SimpleNew(1, st_, typenum);
    if (!loss_env || !ga || !gb) {
        goto done;
    }
    pv_mask_dims dims = {n_users, n_items, d_id, dc, D, E, B, n1 - 1};
    void *work_ptr = NULL;
    if (owork != Py_None) {
        npy_intp anyw[1] = {-1};
        if (!(work = pv_inout(owork, NPY_UINT8, 1, anyw, func, "work"))) {
            goto done;
        }
        size_t need = typenum == NPY_FLOAT32 ? pv_mask_step_work_f32(&dims, n_threads)
                                             : pv_mask_step_work_f64(&dims, n_threads);
        if ((size_t)PyArray_DIM(work, 0) < need) {
            PyErr_Format(PyExc_ValueError,
                         "%s(): 'work' has %zd bytes, these sizes and n_threads need %zu (use "
                         "mask_step_workspace with the same sizes, dtype and n_threads)",
                         func, (Py_ssize_t)PyArray_DIM(work, 0), need);
            goto done;
        }
        work_ptr = PyArray_DATA(work);
    }
    pv_mask_loss lc = {{w[0], w[1], w[2], w[3]}, wd2, sigma};
    pv_mask_losses lo = {0.0, 0.0, 0.0};
    pv_status status;
    PV_BEGIN_KERNEL
    if (typenum == NPY_FLOAT32) {
        status = pv_mask_step_f32(&dims, &lc, PV_F32(U), PV_F32(V), PV_F32(X), PV_F32(W),
                                  PV_F32(mu), PV_F32(eps), PV_I64(users), PV_I64(items),
                                  PV_F32(bu), PV_F32(bi), PV_F64(loss_env), &lo, PV_F32(ga),
                                  PV_F32(gb), work_ptr, n_threads);
    }
    else {
        status = pv_mask_step_f64(&dims, &lc, PV_F64(U), PV_F64(V), PV_F64(X), PV_F64(W),
                                  PV_F64(mu), PV_F64(eps), PV_I64(users), PV_I64(items),
                                  PV_F64(bu), PV_F64(bi), PV_F64(loss_env), &lo, PV_F64(ga),
                                  PV_F64(gb), work_ptr, n_threads);
    }
    PV_END_KERNEL
    if (status != PV_OK) {
        pv_raise_status(status, func);
        goto done;
    }
    result = Py_BuildValue("OdddOO", loss_env, lo.erm, lo.irm, lo.reg, ga, gb);
done:
    Py_XDECREF(U);
    Py_XDECREF(V);
    Py_XDECREF(X);
    Py_XDECREF(W);
    Py_XDECREF(mu);
    Py_XDECREF(eps);
    Py_XDECREF(users);
    Py_XDECREF(items);
    Py_XDECREF(bu);
    Py_XDECREF(bi);
    Py_XDECREF(loss_env);
    Py_XDECREF(ga);
    Py_XDECREF(gb);
    Py_XDECREF(work);
    return result;
}

PyDoc_STRVAR(core_mask_step_workspace_doc,
"mask_step_workspace($module, /, n_env, batch, n_neg, D, d_c, *, double=False,\n"
"                    n_threads=0)\n--\n\n"
"A uint8 workspace for mask_step with these sizes (float64 when double is true) and\n"
"n_threads; pass it as work= to reuse it across calls.");

static PyObject *
core_mask_step_workspace(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"n_env", "batch", "n_neg", "D", "d_c", "double", "n_threads",
                             NULL};
    Py_ssize_t E, B, n_neg, D, dc;
    int dbl = 0, n_threads = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "nnnnn|$pi:mask_step_workspace", kwlist, &E,
                                     &B, &n_neg, &D, &dc, &dbl, &n_threads)) {
        return NULL;
    }
    if (check_threads(n_threads, "mask_step_workspace") < 0) {
        return NULL;
    }
    if (E < 1 || B < 1 || n_neg < 0 || D < 1 || dc < 1) {
        return PyErr_Format(PyExc_ValueError,
                            "mask_step_workspace(): need n_env, batch, D, d_c >= 1 and n_neg >= "
                            "0, got %zd, %zd, %zd, %zd, %zd", E, B, D, dc, n_neg);
    }
    pv_mask_dims dims = {1, 1, 0, dc, D, E, B, n_neg};
    size_t need = dbl ? pv_mask_step_work_f64(&dims, n_threads)
                      : pv_mask_step_work_f32(&dims, n_threads);
    if (need == 0) {
        return PyErr_Format(PyExc_ValueError, "mask_step_workspace(): sizes too large");
    }
    npy_intp n[1] = {(npy_intp)need};
    return PyArray_SimpleNew(1, n, NPY_UINT8);
}

/* Fill a weighting config from the parsed keyword values; -1 with an exception set. */
static int
weight_cfg(pv_mask_weight_cfg *cfg, int mode, int normalize, int apply_raw,
           Py_ssize_t scope_offset, double alpha, double pref_erm, double pref_irm,
           double pair_eps, const char *func)
{
    if (mode < 0 || mode > 2) {
        PyErr_Format(PyExc_ValueError,
                     "%s(): 'weighting' must be 0 (mgda), 1 (fixed) or 2 (pair), got %d", func,
                     mode);
        return -1;
    }
    if (normalize < 0 || normalize > 2) {
        PyErr_Format(PyExc_ValueError,
                     "%s(): 'normalize' must be 0 (none), 1 (loss) or 2 (l2), got %d", func,
                     normalize);
        return -1;
    }
    if (!(alpha >= 0.0) || !isfinite(alpha)) {
        PyErr_Format(PyExc_ValueError, "%s(): 'alpha' must be finite and >= 0, got %g", func,
                     alpha);
        return -1;
    }
    if (!(pref_erm >= 0.0) || !(pref_irm >= 0.0) || !(pref_erm + pref_irm > 0.0) ||
        !isfinite(pref_erm + pref_irm)) {
        PyErr_Format(PyExc_ValueError,
                     "%s(): the preference (pref_erm, pref_irm) must be finite, >= 0 and not "
                     "both 0, got (%g, %g)", func, pref_erm, pref_irm);
        return -1;
    }
    if (mode == 0 && !(pref_erm > 0.0 && pref_irm > 0.0)) {
        PyErr_Format(PyExc_ValueError,
                     "%s(): MGDA's preference (pref_erm, pref_irm) must be > 0 in both entries, "
                     "got (%g, %g)", func, pref_erm, pref_irm);
        return -1;
    }
    if (!(pair_eps >= 0.0)) {
        PyErr_Format(PyExc_ValueError, "%s(): 'pair_eps' must be >= 0, got %g", func, pair_eps);
        return -1;
    }
    if (scope_offset < 0) {
        PyErr_Format(PyExc_ValueError, "%s(): 'scope_offset' must be >= 0, got %zd", func,
                     scope_offset);
        return -1;
    }
    cfg->mode = (pv_mask_weighting)mode;
    cfg->normalize = (pv_mask_norm)normalize;
    cfg->apply_raw = apply_raw != 0;
    cfg->scope_offset = scope_offset;
    cfg->alpha = alpha;
    cfg->pref_erm = pref_erm;
    cfg->pref_irm = pref_irm;
    cfg->pair_eps = pair_eps;
    return 0;
}

PyDoc_STRVAR(core_mask_weigh_doc,
"mask_weigh($module, /, a, b, erm_loss, irm_loss, *, weighting=0, normalize=0,\n"
"           apply_raw=False, scope_offset=0, alpha=1.0, pref_erm=0.5,\n"
"           pref_irm=0.5, pair_eps=0.0001)\n--\n\n"
"ERM/IRM weights of one step (method.md §3.5) from the gradients a, b (1-D, both float32\n"
"or both float64; Gram products over a[scope_offset:] in float64).  weighting: 0 mgda,\n"
"1 fixed, 2 pair; normalize (mgda): 0 none, 1 loss, 2 l2.\n"
"Returns (gamma, w_erm, w_irm, pair_move): the direction is w_erm a + w_irm b.");

static PyObject *
core_mask_weigh(PyObject *self, PyObject *args, PyObject *kwds)
{
    static const char *func = "mask_weigh";
    static char *kwlist[] = {"a", "b", "erm_loss", "irm_loss", "weighting", "normalize",
                             "apply_raw", "scope_offset", "alpha", "pref_erm", "pref_irm",
                             "pair_eps", NULL};
    PyObject *oa, *ob;
    double l_erm, l_irm, alpha = 1.0, pref_erm = 0.5, pref_irm = 0.5, pair_eps = 1e-4;
    int mode = 0, normalize = 0, apply_raw = 0;
    Py_ssize_t scope_offset = 0;
    PyArrayObject *a = NULL, *b = NULL;
    PyObject *result = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOdd|$iipndddd:mask_weigh", kwlist, &oa, &ob,
                                     &l_erm, &l_irm, &mode, &normalize, &apply_raw,
                                     &scope_offset, &alpha, &pref_erm, &pref_irm, &pair_eps)) {
        return NULL;
    }
    pv_mask_weight_cfg cfg;
    if (weight_cfg(&cfg, mode, normalize, apply_raw, scope_offset, alpha, pref_erm, pref_irm,
                   pair_eps, func) < 0) {
        return NULL;
    }
    int typenum = NPY_FLOAT32;
    if (PyArray_Check(oa) && PyArray_TYPE((PyArrayObject *)oa) == NPY_FLOAT64) {
        typenum = NPY_FLOAT64;
    }
    npy_intp any[1] = {-1};
    if (!(a = pv_input(oa, typenum, 1, any, func, "a"))) {
        goto done;
    }
    npy_intp sa[1] = {PyArray_DIM(a, 0)};
    if (!(b = pv_input(ob, typenum, 1, sa, func, "b"))) {
        goto done;
    }
    if (scope_offset > PyArray_DIM(a, 0)) {
        PyErr_Format(PyExc_ValueError, "%s(): 'scope_offset' (%zd) exceeds the length of a (%zd)",
                     func, scope_offset, (Py_ssize_t)PyArray_DIM(a, 0));
        goto done;
    }
    if (cfg.mode == PV_MASK_PAIR && (!(l_erm >= 0.0) || !(l_irm >= 0.0) || !isfinite(l_erm) ||
                                     !isfinite(l_irm))) {
        PyErr_Format(PyExc_ValueError,
                     "%s(): 'erm_loss' and 'irm_loss' must be finite and >= 0 for the pair "
                     "weighting, got %g and %g", func, l_erm, l_irm);
        goto done;
    }
    pv_mask_weights out = {0.0, 0.0, 0.0, 0};
    pv_status status;
    if (typenum == NPY_FLOAT32) {
        status = pv_mask_weigh_f32(&cfg, PyArray_DIM(a, 0), PV_F32(a), PV_F32(b), l_erm, l_irm,
                                   &out);
    }
    else {
        status = pv_mask_weigh_f64(&cfg, PyArray_DIM(a, 0), PV_F64(a), PV_F64(b), l_erm, l_irm,
                                   &out);
    }
    if (status != PV_OK) {
        pv_raise_status(status, func);
        goto done;
    }
    result = Py_BuildValue("dddi", out.gamma, out.w_erm, out.w_irm, out.pair_move);
done:
    Py_XDECREF(a);
    Py_XDECREF(b);
    return result;
}

PyDoc_STRVAR(core_pair_alpha_doc,
"pair_alpha($module, /, erm_loss, irm_loss, aa, ab, bb, pref_erm, pref_irm, eps)\n--\n\n"
"The PAIR/EPO 1-D LP of method.md §3.5 on a 2x2 Gram matrix [[aa, ab], [ab, bb]].\n"
"Returns (alpha_erm, move) with move 1 balance, 2 descent, 3 infeasible (preference).");

static PyObject *
core_pair_alpha(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"erm_loss", "irm_loss", "aa", "ab", "bb", "pref_erm", "pref_irm",
                             "eps", NULL};
    double l0, l1, aa, ab, bb, r0, r1, eps, alpha = 0.0;
    int move = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "dddddddd:pair_alpha", kwlist, &l0, &l1, &aa,
                                     &ab, &bb, &r0, &r1, &eps)) {
        return NULL;
    }
    pv_status status = pv_pair_alpha(l0, l1, aa, ab, bb, r0, r1, eps, &alpha, &move);
    if (status == PV_EINVAL) {
        return PyErr_Format(PyExc_ValueError,
                            "pair_alpha(): losses and preferences must be finite and >= 0 "
                            "(preferences not both 0) and eps >= 0");
    }
    if (status != PV_OK) {
        return pv_raise_status(status, "pair_alpha");
    }
    return Py_BuildValue("di", alpha, move);
}

PyDoc_STRVAR(core_mask_fit_doc,
"mask_fit($module, /, users, items, env, n_env, U, V, X, beta_u, beta_i, *, epochs=40,\n"
"         batch=512, n_neg=50, sigma=0.01, lr_w=0.001, lr_mu=0.001, lam=0.1,\n"
"         w=(1.0, 1.0, 1.0, 1.0), wd2=0.01, weighting=0, normalize=0, apply_raw=False,\n"
"         scope_offset=0, alpha=1.0, pref_erm=0.5, pref_irm=0.5, pair_eps=0.0001,\n"
"         seed=2233, n_threads=0)\n--\n\n"
"A whole float32 mask-learning run (pv_mask_fit_f32).  users, items, env: int64 (n_pairs,);\n"
"U (n_users, d_id + d_c), V (n_items, d_id), X (n_items, D), beta_u, beta_i float32;\n"
"d_c = U.shape[1] - V.shape[1].  Returns a dict: W, mu, mask, erm_loss, irm_loss, gamma\n"
"(per epoch), gamma_steps (per step), n_env_used, steps_per_epoch, env_counts.");

static PyObject *
core_mask_fit(PyObject *self, PyObject *args, PyObject *kwds)
{
    static const char *func = "mask_fit";
    static char *kwlist[] = {"users", "items", "env", "n_env", "U", "V", "X", "beta_u",
                             "beta_i", "epochs", "batch", "n_neg", "sigma", "lr_w", "lr_mu",
                             "lam", "w", "wd2", "weighting", "normalize", "apply_raw",
                             "scope_offset", "alpha", "pref_erm", "pref_irm", "pair_eps",
                             "seed", "n_threads", NULL};
    PyObject *ousers, *oitems, *oenv, *oU, *oV, *oX, *obu, *obi;
    Py_ssize_t n_env, epochs = 40, batch = 512, n_neg = 50, scope_offset = 0;
    double sigma = 0.01, lr_w = 1e-3, lr_mu = 1e-3, lam = 0.1, w[4] = {1.0, 1.0, 1.0, 1.0};
    double wd2 = 0.01, alpha = 1.0, pref_erm = 0.5, pref_irm = 0.5, pair_eps = 1e-4;
    int mode = 0, normalize = 0, apply_raw = 0, n_threads = 0;
    unsigned long long seed = 2233;
    PyObject *oseed = NULL;
    PyArrayObject *users = NULL, *items = NULL, *env = NULL, *U = NULL, *V = NULL, *X = NULL;
    PyArrayObject *bu = NULL, *bi = NULL, *W = NULL, *mu = NULL, *mask = NULL;
    PyArrayObject *erm = NULL, *irm = NULL, *gam = NULL, *gsteps = NULL, *counts = NULL;
    PyObject *result = NULL;
    if (!PyArg_ParseTupleAndKeywords(
            args, kwds, "OOOnOOOOO|$nnndddd(dddd)diipnddddOi:mask_fit", kwlist, &ousers,
            &oitems, &oenv, &n_env, &oU, &oV, &oX, &obu, &obi, &epochs, &batch, &n_neg, &sigma,
            &lr_w, &lr_mu, &lam, &w[0], &w[1], &w[2], &w[3], &wd2, &mode, &normalize,
            &apply_raw, &scope_offset, &alpha, &pref_erm, &pref_irm, &pair_eps, &oseed,
            &n_threads) ||
        pv_counter(oseed, 64, "mask_fit", "seed", &seed) < 0) {
        return NULL;
    }
    if (check_threads(n_threads, func) < 0) {
        return NULL;
    }
    pv_mask_weight_cfg wcfg;
    if (weight_cfg(&wcfg, mode, normalize, apply_raw, scope_offset, alpha, pref_erm, pref_irm,
                   pair_eps, func) < 0) {
        return NULL;
    }
    struct {
        const char *name;
        double v;
        int positive;
    } hp[] = {{"sigma", sigma, 0}, {"lr_w", lr_w, 1}, {"lr_mu", lr_mu, 1}, {"lam", lam, 0},
              {"wd2", wd2, 0}};
    for (size_t k = 0; k < sizeof(hp) / sizeof(hp[0]); k++) {
        if (!isfinite(hp[k].v) || hp[k].v < 0.0 || (hp[k].positive && hp[k].v == 0.0)) {
            return PyErr_Format(PyExc_ValueError, "%s(): '%s' must be finite and %s, got %g",
                                func, hp[k].name, hp[k].positive ? "> 0" : ">= 0", hp[k].v);
        }
    }
    for (int k = 0; k < 4; k++) {
        if (!isfinite(w[k])) {
            return PyErr_Format(PyExc_ValueError, "%s(): 'w' must hold finite numbers", func);
        }
    }
    if (n_env < 1 || epochs < 1 || batch < 1 || n_neg < 0) {
        return PyErr_Format(PyExc_ValueError,
                            "%s(): need n_env >= 1, epochs >= 1, batch >= 1 and n_neg >= 0, got "
                            "%zd, %zd, %zd, %zd", func, n_env, epochs, batch, n_neg);
    }
    npy_intp any1[1] = {-1}, any2[2] = {-1, -1};
    if (!(users = pv_input(ousers, NPY_INT64, 1, any1, func, "users"))) {
        goto done;
    }
    npy_intp sp[1] = {PyArray_DIM(users, 0)};
    if (!(items = pv_input(oitems, NPY_INT64, 1, sp, func, "items")) ||
        !(env = pv_input(oenv, NPY_INT64, 1, sp, func, "env")) ||
        !(V = pv_input(oV, NPY_FLOAT32, 2, any2, func, "V")) ||
        !(U = pv_input(oU, NPY_FLOAT32, 2, any2, func, "U"))) {
        goto done;
    }
    const npy_intp n_pairs = sp[0], n_items = PyArray_DIM(V, 0), d_id = PyArray_DIM(V, 1);
    const npy_intp n_users = PyArray_DIM(U, 0), dc = PyArray_DIM(U, 1) - d_id;
    if (dc < 1) {
        PyErr_Format(PyExc_ValueError,
                     "%s(): 'U' must have more columns than 'V' (U = [U_id ; U_c]), got %zd and "
                     "%zd", func, (Py_ssize_t)PyArray_DIM(U, 1), (Py_ssize_t)d_id);
        goto done;
    }
    npy_intp sx[2] = {n_items, -1};
    if (!(X = pv_input(oX, NPY_FLOAT32, 2, sx, func, "X"))) {
        goto done;
    }
    const npy_intp D = PyArray_DIM(X, 1);
    npy_intp sbu[1] = {n_users}, sbi[1] = {n_items};
    if (!(bu = pv_input(obu, NPY_FLOAT32, 1, sbu, func, "beta_u")) ||
        !(bi = pv_input(obi, NPY_FLOAT32, 1, sbi, func, "beta_i"))) {
        goto done;
    }
    if (n_pairs < 1 || n_users < 1 || n_items < 1 || D < 1) {
        PyErr_Format(PyExc_ValueError,
                     "%s(): empty input (n_pairs %zd, n_users %zd, n_items %zd, D %zd)", func,
                     (Py_ssize_t)n_pairs, (Py_ssize_t)n_users, (Py_ssize_t)n_items,
                     (Py_ssize_t)D);
        goto done;
    }
    if (scope_offset > dc * D + D) {
        PyErr_Format(PyExc_ValueError, "%s(): 'scope_offset' (%zd) exceeds d_c * D + D = %zd",
                     func, scope_offset, (Py_ssize_t)(dc * D + D));
        goto done;
    }
    if (check_ids(users, n_users, func, "users") < 0 ||
        check_ids(items, n_items, func, "items") < 0 ||
        check_ids(env, n_env, func, "env") < 0) {
        goto done;
    }
    npy_intp sc[1] = {n_env};
    counts = (PyArrayObject *)PyArray_ZEROS(1, sc, NPY_INT64, 0);
    if (counts == NULL) {
        goto done;
    }
    for (npy_intp n = 0; n < n_pairs; n++) {
        PV_I64(counts)[PV_I64(env)[n]]++;
    }
    const pv_index spe = pv_mask_steps_per_epoch(n_env, PV_I64(counts), batch);
    npy_intp sw[2] = {dc, D}, sd[1] = {D}, sep[1] = {epochs}, sst[1] = {epochs * spe};
    W = (PyArrayObject *)PyArray_SimpleNew(2, sw, NPY_FLOAT32);
    mu = (PyArrayObject *)PyArray_SimpleNew(1, sd, NPY_FLOAT32);
    mask = (PyArrayObject *)PyArray_SimpleNew(1, sd, NPY_FLOAT32);
    erm = (PyArrayObject *)PyArray_SimpleNew(1, sep, NPY_FLOAT64);
    irm = (PyArrayObject *)PyArray_SimpleNew(1, sep, NPY_FLOAT64);
    gam = (PyArrayObject *)PyArray_SimpleNew(1, sep, NPY_FLOAT64);
    gsteps = (PyArrayObject *)PyArray_SimpleNew(1, sst, NPY_FLOAT64);
    if (!W || !mu || !mask || !erm || !irm || !gam || !gsteps) {
        goto done;
    }
    pv_mask_dims dims = {n_users, n_items, d_id, dc, D, n_env, batch, n_neg};
    pv_mask_fit_cfg cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.epochs = epochs;
    cfg.batch = batch;
    cfg.n_neg = n_neg;
    cfg.lr_w = lr_w;
    cfg.lr_mu = lr_mu;
    cfg.lam = lam;
    cfg.loss.w[0] = w[0];
    cfg.loss.w[1] = w[1];
    cfg.loss.w[2] = w[2];
    cfg.loss.w[3] = w[3];
    cfg.loss.wd2 = wd2;
    cfg.loss.sigma = sigma;
    cfg.weight = wcfg;
    cfg.seed = (uint64_t)seed;
    pv_index used = 0;
    pv_status status;
    PV_BEGIN_KERNEL
    status = pv_mask_fit_f32(&dims, &cfg, n_pairs, PV_I64(users), PV_I64(items), PV_I64(env),
                             PV_F32(U), PV_F32(V), PV_F32(X), PV_F32(bu), PV_F32(bi), PV_F32(W),
                             PV_F32(mu), PV_F32(mask), PV_F64(erm), PV_F64(irm), PV_F64(gam),
                             PV_F64(gsteps), &used, n_threads);
    PV_END_KERNEL
    if (status != PV_OK) {
        if (status == PV_EINVAL) {
            PyErr_Format(PyExc_ValueError,
                         "%s(): sizes out of range (batch x environments or epochs x steps "
                         "exceed the 32-bit random-counter range, or tables too large)", func);
        }
        else {
            pv_raise_status(status, func);
        }
        goto done;
    }
    result = Py_BuildValue("{sOsOsOsOsOsOsOsnsnsO}", "W", W, "mu", mu, "mask", mask, "erm_loss",
                           erm, "irm_loss", irm, "gamma", gam, "gamma_steps", gsteps,
                           "n_env_used", (Py_ssize_t)used, "steps_per_epoch", (Py_ssize_t)spe,
                           "env_counts", counts);
done:
    Py_XDECREF(users);
    Py_XDECREF(items);
    Py_XDECREF(env);
    Py_XDECREF(U);
    Py_XDECREF(V);
    Py_XDECREF(X);
    Py_XDECREF(bu);
    Py_XDECREF(bi);
    Py_XDECREF(W);
    Py_XDECREF(mu);
    Py_XDECREF(mask);
    Py_XDECREF(erm);
    Py_XDECREF(irm);
    Py_XDECREF(gam);
    Py_XDECREF(gsteps);
    Py_XDECREF(counts);
    return result;
}

PyMethodDef pv_mask_methods[] = {
    {"mask_step", (PyCFunction)(void (*)(void))core_mask_step, METH_VARARGS | METH_KEYWORDS,
     core_mask_step_doc},
    {"mask_step_workspace", (PyCFunction)(void (*)(void))core_mask_step_workspace,
     METH_VARARGS | METH_KEYWORDS, core_mask_step_workspace_doc},
    {"mask_weigh", (PyCFunction)(void (*)(void))core_mask_weigh, METH_VARARGS | METH_KEYWORDS,
     core_mask_weigh_doc},
    {"pair_alpha", (PyCFunction)(void (*)(void))core_pair_alpha, METH_VARARGS | METH_KEYWORDS,
     core_pair_alpha_doc},
    {"mask_fit", (PyCFunction)(void (*)(void))core_mask_fit, METH_VARARGS | METH_KEYWORDS,
     core_mask_fit_doc},
    {NULL, NULL, 0, NULL},
};
