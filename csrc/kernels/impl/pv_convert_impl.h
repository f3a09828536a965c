/*
 * Type-generic body of pv_convert.c, included once per dtype with
 *   PV_T (float or double), PV_FN(name) (name##_f32 / _f64), PV_GEMM,
 *   PV_EXP, PV_LOG1P, PV_TANH_ROWS (y[k] = tanh(y[k] + c[k]) over a row).
 * See pv_convert.h for the contract and method.md §4.2 for the maths.
 */

/* BCE of a logit s against label y in {0, 1} and its derivative sigmoid(s) - y
 * (one exponential; see pv_rec_impl.h). */
static inline PV_T
PV_FN(cv_bce)(PV_T s, int positive, PV_T *dloss)
{
    const PV_T e = PV_EXP(s < 0 ? s : -s);
    const PV_T sig = s >= 0 ? 1 / (1 + e) : e / (1 + e);
    const PV_T z = positive ? -s : s;
    *dloss = positive ? sig - 1 : sig;
    return (z > 0 ? z : 0) + PV_LOG1P(e);
}

/* sigmoid(x) without overflow: the two weights of a softmax over 2 logits. */
static inline PV_T
PV_FN(cv_sigmoid)(PV_T x)
{
    if (x >= 0) {
        return 1 / (1 + PV_EXP(-x));
    }
    const PV_T e = PV_EXP(x);
    return e / (1 + e);
}

/* a . b with 8 partial sums in a fixed order (vectorisable, thread-independent). */
PV_HOT static PV_T
PV_FN(cv_dot)(pv_index n, const PV_T *PV_RESTRICT a, const PV_T *PV_RESTRICT b)
{
    PV_T acc[8] = {0};
    pv_index k = 0;
    for (; k + 8 <= n; k += 8) {
        for (int l = 0; l < 8; l++) {
            acc[l] += a[k + l] * b[k + l];
        }
    }
    PV_T t = 0;
    for (; k < n; k++) {
        t += a[k] * b[k];
    }
    return ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + t;
}

PV_HOT static void
PV_FN(cv_axpy)(pv_index n, PV_T alpha, const PV_T *PV_RESTRICT x, PV_T *PV_RESTRICT y)
{
    for (pv_index k = 0; k < n; k++) {
        y[k] += alpha * x[k];
    }
}

/* Number of projection halves: h_inv only (INVARIANT) or h_inv and h_var. */
static inline pv_index
PV_FN(cv_halves)(pv_convert_fusion f)
{
    return f == PV_FUSE_INVARIANT ? 1 : 2;
}

static pv_status
PV_FN(cv_check_model)(const PV_FN(pv_convert_model) *m)
{
    const pv_convert_dims d = m->dims;
    if (d.n_users < 0 || d.n_items < 0 || d.d_id < 0 || d.d_c < 0 || d.n_feat < 0 || d.d_a < 0) {
        return PV_EINVAL;
    }
    if (m->W == NULL || m->mask == NULL || m->X == NULL) {
        return PV_EINVAL;
    }
    switch (m->fusion) {
    case PV_FUSE_ATTENTION:
        if (m->A == NULL || m->c == NULL || m->q == NULL) {
            return PV_EINVAL;
        }
        break;
    case PV_FUSE_GLOBAL:
        if (m->omega == NULL) {
            return PV_EINVAL;
        }
        break;
    case PV_FUSE_INVARIANT:
        break;
    default:
        return PV_EINVAL;
    }
    if (!pv_blas_fits(d.n_feat, 2 * d.d_c, d.d_a)) {
        return PV_ERANGE;
    }
    return PV_OK;
}

/* Wcat = [W diag(m) ; W diag(1 - m)] (nh d_c x D), rows k0..k1 of each half. */
static void
PV_FN(cv_build_wcat)(const PV_FN(pv_convert_model) *m, pv_index nh, pv_index k0, pv_index k1,
                     PV_T *Wcat)
{
    const pv_index D = m->dims.n_feat, dc = m->dims.d_c;
    for (pv_index k = k0; k < k1; k++) {
        const PV_T *w = m->W + k * D;
        PV_T *wi = Wcat + k * D;
        for (pv_index d = 0; d < D; d++) {
            wi[d] = w[d] * m->mask[d];
        }
        if (nh == 2) {
            PV_T *wv = Wcat + (dc + k) * D;
            for (pv_index d = 0; d < D; d++) {
                wv[d] = w[d] * (1 - m->mask[d]);
            }
        }
    }
}

/*
 * Forward of nr gathered items Xt (nr x D): Ht (nr x nh d_c) = [h_inv, h_var],
 * for ATTENTION Tt (2 nr x d_a) = tanh(A h_k + c) (rows 2s, 2s+1 = inv, var),
 * the weights ai, av (nr) and the fused h (nr rows of ldh at hout).
 * BLAS runs single-threaded on this tile's fixed shape.
 */
static void
PV_FN(cv_forward_tile)(const PV_FN(pv_convert_model) *m, const PV_T *Wcat, pv_index nr,
                       const PV_T *Xt, PV_T *Ht, PV_T *Tt, PV_T *ai, PV_T *av, PV_T *hout,
                       pv_index ldh)
{
    const pv_index D = m->dims.n_feat, dc = m->dims.d_c, da = m->dims.d_a;
    const pv_index nh = PV_FN(cv_halves)(m->fusion), ldH = nh * dc;
    if (nr <= 0) {
        return;
    }
    if (D > 0 && dc > 0) {
        PV_GEMM(PvRowMajor, PvNoTrans, PvTrans, (pv_blas_int)nr, (pv_blas_int)ldH,
                (pv_blas_int)D, (PV_T)1, Xt, (pv_blas_int)D, Wcat, (pv_blas_int)D, (PV_T)0, Ht,
                (pv_blas_int)ldH);
    } else {
        for (pv_index k = 0; k < nr * ldH; k++) {
            Ht[k] = 0;
        }
    }
    if (m->b != NULL) {
        for (pv_index s = 0; s < nr * nh; s++) {
            PV_FN(cv_axpy)(dc, 1, m->b, Ht + s * dc);
        }
    }
    if (m->fusion == PV_FUSE_ATTENTION) {
        if (da > 0 && dc > 0) {
            PV_GEMM(PvRowMajor, PvNoTrans, PvTrans, (pv_blas_int)(2 * nr), (pv_blas_int)da,
                    (pv_blas_int)dc, (PV_T)1, Ht, (pv_blas_int)dc, m->A, (pv_blas_int)dc,
                    (PV_T)0, Tt, (pv_blas_int)da);
        } else {
            for (pv_index k = 0; k < 2 * nr * da; k++) {
                Tt[k] = 0;
            }
        }
        for (pv_index s = 0; s < 2 * nr; s++) {
            PV_TANH_ROWS(da, Tt + s * da, m->c);
        }
        for (pv_index s = 0; s < nr; s++) {
            const PV_T ki = PV_FN(cv_dot)(da, m->q, Tt + 2 * s * da);
            const PV_T kv = PV_FN(cv_dot)(da, m->q, Tt + (2 * s + 1) * da);
            ai[s] = PV_FN(cv_sigmoid)(ki - kv);
            av[s] = PV_FN(cv_sigmoid)(kv - ki);
        }
    } else if (m->fusion == PV_FUSE_GLOBAL) {
        const PV_T g0 = PV_FN(cv_sigmoid)(m->omega[0] - m->omega[1]);
        const PV_T g1 = PV_FN(cv_sigmoid)(m->omega[1] - m->omega[0]);
        for (pv_index s = 0; s < nr; s++) {
            ai[s] = g0;
            av[s] = g1;
        }
    } else {
        for (pv_index s = 0; s < nr; s++) {
            ai[s] = 1;
            av[s] = 0;
        }
    }
    for (pv_index s = 0; s < nr; s++) {
        const PV_T *hi = Ht + s * ldH;
        PV_T *h = hout + s * ldh;
        if (nh == 1) {
            for (pv_index k = 0; k < dc; k++) {
                h[k] = hi[k];
            }
        } else {
            const PV_T *hv = hi + dc, a = ai[s], v = av[s];
            for (pv_index k = 0; k < dc; k++) {
                h[k] = a * hi[k] + v * hv[k];
            }
        }
    }
}

pv_index
PV_FN(pv_convert_workspace)(pv_index B, pv_index C, pv_index S, pv_convert_dims d)
{
    const pv_index du = d.d_id + d.d_c, D = d.n_feat, dc = d.d_c, da = d.d_a;
    /* Wcat, Xs, Hc, Tz, ai, av, dkap, E, dE, dHc, dZ, G, resid, rloss, dUr */
    const pv_index own = 2 * dc * D + S * D + 2 * S * dc + 2 * S * da + 3 * S + 2 * S * du +
                         2 * S * dc + 2 * S * da + 2 * dc * D + B * C + B + B * du;
    /* GLOBAL / INVARIANT: gate, its gradient, and the backbone kernel's workspace */
    pv_rec_dims rd = {d.n_users, d.n_items, d.d_id, d.d_c, d.n_feat};
    const pv_index lin = 2 * D + PV_FN(pv_rec_workspace)(B, C, rd);
    return own > lin ? own : lin;
}

/*
 * GLOBAL and INVARIANT fusion are linear in x: h = W (g o x) + b with the gate
 * g = a_inv m + a_var (1 - m) (INVARIANT: g = m; b enters once since a_inv + a_var = 1).
 * They are the backbone batch with that gate, which never projects items; the mask
 * and omega gradients follow from the gate's:
 *   dm = (a_inv - a_var) dg,   domega_inv = -domega_var = a_inv a_var sum_d dg_d (2 m_d - 1).
 */
static pv_status
PV_FN(cv_linear_batch)(const PV_FN(pv_convert_model) *m, pv_index B, pv_index C,
                       const int64_t *users, const int64_t *items, PV_FN(pv_convert_grad) *g,
                       PV_T *work, double *loss, int n_threads)
{
    const pv_convert_dims d = m->dims;
    const pv_index D = d.n_feat;
    PV_T *gate = work, *dgate = gate + D, *rwork = dgate + D;
    PV_T ai = 1, av = 0;
    if (m->fusion == PV_FUSE_GLOBAL) {
        ai = PV_FN(cv_sigmoid)(m->omega[0] - m->omega[1]);
        av = PV_FN(cv_sigmoid)(m->omega[1] - m->omega[0]);
    }
    for (pv_index k = 0; k < D; k++) {
        gate[k] = m->fusion == PV_FUSE_GLOBAL ? ai * m->mask[k] + av * (1 - m->mask[k])
                                              : m->mask[k];
    }
    PV_FN(pv_rec_model) rm = {{d.n_users, d.n_items, d.d_id, d.d_c, D}, m->U, m->V, m->W, m->b,
                              gate, m->X, m->beta_u, m->beta_i,
                              {m->w[0], m->w[1], m->w[2], m->w[3]}};
    PV_FN(pv_rec_grad) rg = {g->gU, g->gV, g->gW, m->b != NULL ? g->gb : NULL, dgate,
                             g->user_slot, g->item_slot, g->n_user_slots, g->n_item_slots};
    pv_status st = PV_FN(pv_rec_batch)(&rm, B, C, users, items, &rg, rwork, loss, n_threads);
    if (st != PV_OK) {
        return st;
    }
    if (g->gmask != NULL) {
        for (pv_index k = 0; k < D; k++) {
            g->gmask[k] = m->fusion == PV_FUSE_GLOBAL ? (ai - av) * dgate[k] : dgate[k];
        }
    }
    if (m->fusion == PV_FUSE_GLOBAL && g->gomega != NULL) {
        PV_T acc = 0;
        for (pv_index k = 0; k < D; k++) {
            acc += dgate[k] * (2 * m->mask[k] - 1);
        }
        g->gomega[0] = ai * av * acc;
        g->gomega[1] = -g->gomega[0];
    }
    if (g->attn != NULL) {
        for (pv_index s = 0; s < g->n_item_slots; s++) {
            g->attn[s] = ai;
        }
    }
    return PV_OK;
}

pv_status
PV_FN(pv_convert_batch)(const PV_FN(pv_convert_model) *m, pv_index B, pv_index C,
                        const int64_t *users, const int64_t *items, PV_FN(pv_convert_grad) *g,
                        PV_T *work, double *loss_out, int n_threads)
{
    pv_status st = PV_FN(cv_check_model)(m);
    if (st != PV_OK) {
        return st;
    }
    const pv_convert_dims dm = m->dims;
    const pv_index d_id = dm.d_id, dc = dm.d_c, da = dm.d_a, du = d_id + dc, D = dm.n_feat;
    const pv_index S = g->n_item_slots, nh = PV_FN(cv_halves)(m->fusion), ldH = nh * dc;
    const pv_convert_fusion fusion = m->fusion;
    if (B < 0 || C < 1 || S < 0 || g->n_user_slots < 0 || g->gW == NULL) {
        return PV_EINVAL;
    }
    if (!pv_blas_fits(2 * S, D, du) || !pv_blas_fits(B * C, 2 * S * da, 2 * S * dc)) {
        return PV_ERANGE;
    }
    if (n_threads <= 0) {
        n_threads = pv_default_threads();
    }
    for (pv_index s = 0; s < S; s++) {
        if (g->item_list[s] < 0 || g->item_list[s] >= dm.n_items) {
            return PV_EINDEX;
        }
    }
    pv_status ids = pv_rec_check_ids(B, C, users, items, dm.n_users, dm.n_items, g->user_slot,
                                     g->n_user_slots, g->item_slot, S, g->item_list);
    if (ids != PV_OK) {
        return ids;
    }
    if (fusion != PV_FUSE_ATTENTION) {
        return PV_FN(cv_linear_batch)(m, B, C, users, items, g, work, loss_out, n_threads);
    }
    PV_T *Wcat = work;              /* nh dc x D */
    PV_T *Xs = Wcat + 2 * dc * D;   /* S x D: the slots' feature rows */
    PV_T *Hc = Xs + S * D;          /* S x nh dc: [h_inv, h_var] */
    PV_T *Tz = Hc + 2 * S * dc;     /* 2S x da: tanh(A h + c) */
    PV_T *ai = Tz + 2 * S * da;     /* S */
    PV_T *av = ai + S;              /* S */
    PV_T *dkap = av + S;            /* S: dL/dkappa_inv (= -dL/dkappa_var) */
    PV_T *E = dkap + S;             /* S x du: item vectors [V ; h] */
    PV_T *dE = E + S * du;          /* S x du */
    PV_T *dHc = dE + S * du;        /* S x nh dc */
    PV_T *dZ = dHc + 2 * S * dc;    /* 2S x da */
    PV_T *G = dZ + 2 * S * da;      /* nh dc x D: [dH_inv ; dH_var]^T X_s */
    PV_T *resid = G + 2 * dc * D;   /* B x C */
    PV_T *rloss = resid + B * C;    /* B */
    PV_T *dUr = rloss + B;          /* B x du */

    const pv_index RB = PV_CONVERT_ROWS, n_st = (S + RB - 1) / RB;
    const pv_index CB = PV_CONVERT_COLS, n_dt = (D + CB - 1) / CB, n_ct = (dc + CB - 1) / CB;
    const pv_index n_gt = n_dt + (fusion == PV_FUSE_ATTENTION ? n_ct : 0);
    int bad = 0;

#pragma omp parallel num_threads(n_threads)
    {
        int nt = 1, tid = 0;
#ifdef _OPENMP
        nt = omp_get_num_threads();
        tid = omp_get_thread_num();
#endif
#pragma omp for schedule(static)
        for (pv_index k = 0; k < dc; k++) {
            PV_FN(cv_build_wcat)(m, nh, k, k + 1, Wcat);
        }
#pragma omp for schedule(static)
        for (pv_index s = 0; s < S; s++) {
            const int64_t j = g->item_list[s];
            const PV_T *x = m->X + j * D, *v = m->V + j * d_id;
            for (pv_index k = 0; k < D; k++) {
                Xs[s * D + k] = x[k];
            }
            for (pv_index k = 0; k < d_id; k++) {
                E[s * du + k] = v[k];
            }
        }
        /* Forward on fixed tiles of RB slots. */
#pragma omp for schedule(dynamic, 1)
        for (pv_index t = 0; t < n_st; t++) {
            const pv_index s0 = t * RB, nr = S - s0 < RB ? S - s0 : RB;
            PV_FN(cv_forward_tile)(m, Wcat, nr, Xs + s0 * D, Hc + s0 * ldH, Tz + 2 * s0 * da,
                                   ai + s0, av + s0, E + s0 * du + d_id, du);
        }
        /* Pairs, row by row: loss, residuals, dU_r = sum_c r_c e_c. */
#pragma omp for schedule(dynamic, 8) reduction(| : bad)
        for (pv_index r = 0; r < B; r++) {
            const int64_t u = users[r];
            const PV_T *Ur = m->U + u * du, bu = m->beta_u[u];
            const PV_T inv_neg = C > 1 ? (PV_T)1 / (PV_T)(C - 1) : 0;
            PV_T *dur = dUr + r * du, loss = 0;
            for (pv_index k = 0; k < du; k++) {
                dur[k] = 0;
            }
            for (pv_index c = 0; c < C; c++) {
                const int64_t j = items[r * C + c];
                const PV_T *e = E + (pv_index)g->item_slot[j] * du;
                PV_T sc = PV_FN(cv_dot)(du, Ur, e);
                if (!(sc == sc) || sc - sc != 0) {
                    bad = 1;
                    sc = 0;
                }
                PV_T w, dl;
                if (c == 0) {
                    w = m->w[0] + m->w[1] * bu * m->beta_i[j];
                } else {
                    w = (m->w[2] + m->w[3] * bu * m->beta_i[j]) * inv_neg;
                }
                loss += w * PV_FN(cv_bce)(sc, c == 0, &dl);
                resid[r * C + c] = w * dl;
                PV_FN(cv_axpy)(du, w * dl, e, dur);
            }
            rloss[r] = loss;
        }
        /* dE_s = sum of r_p U_user(p) over the pairs of slot s, in pair order; slot s
         * belongs to thread s mod nt. */
        for (pv_index s = tid; s < S; s += nt) {
            for (pv_index k = 0; k < du; k++) {
                dE[s * du + k] = 0;
            }
        }
        for (pv_index p = 0; p < B * C; p++) {
            const int32_t s = g->item_slot[items[p]];
            if (s % nt != tid) {
                continue;
            }
            PV_FN(cv_axpy)(du, resid[p], m->U + users[p / C] * du, dE + (pv_index)s * du);
        }
#pragma omp barrier
        /* Backward through the fusion, per slot tile: dH_inv, dH_var, dkappa, dZ. */
#pragma omp for schedule(dynamic, 1)
        for (pv_index t = 0; t < n_st; t++) {
            const pv_index s0 = t * RB, nr = S - s0 < RB ? S - s0 : RB;
            for (pv_index s = s0; s < s0 + nr; s++) {
                const PV_T *dh = dE + s * du + d_id;
                PV_T *dhi = dHc + s * ldH;
                if (nh == 1) {
                    for (pv_index k = 0; k < dc; k++) {
                        dhi[k] = dh[k];
                    }
                    dkap[s] = 0;
                    continue;
                }
                const PV_T *hi = Hc + s * ldH, *hv = hi + dc;
                PV_T *dhv = dhi + dc, gs = 0;
                for (pv_index k = 0; k < dc; k++) {
                    dhi[k] = ai[s] * dh[k];
                    dhv[k] = av[s] * dh[k];
                    gs += dh[k] * (hi[k] - hv[k]);
                }
                const PV_T dk = ai[s] * av[s] * gs;
                dkap[s] = dk;
                if (fusion == PV_FUSE_ATTENTION) {
                    const PV_T *ti = Tz + 2 * s * da, *tv = ti + da;
                    PV_T *dzi = dZ + 2 * s * da, *dzv = dzi + da;
                    for (pv_index k = 0; k < da; k++) {
                        dzi[k] = dk * m->q[k] * (1 - ti[k] * ti[k]);
                        dzv[k] = -dk * m->q[k] * (1 - tv[k] * tv[k]);
                    }
                }
            }
            if (fusion == PV_FUSE_ATTENTION && da > 0 && dc > 0 && nr > 0) {
                PV_GEMM(PvRowMajor, PvNoTrans, PvNoTrans, (pv_blas_int)(2 * nr), (pv_blas_int)dc,
                        (pv_blas_int)da, (PV_T)1, dZ + 2 * s0 * da, (pv_blas_int)da, m->A,
                        (pv_blas_int)dc, (PV_T)1, dHc + s0 * ldH, (pv_blas_int)dc);
            }
        }
        /* Column tiles: G = dHc^T X_s -> dW, dmask (tiles of D); dA = dZ^T H (tiles of d_c). */
#pragma omp for schedule(dynamic, 1)
        for (pv_index t = 0; t < n_gt; t++) {
            if (t < n_dt) {
                const pv_index j0 = t * CB, nc = D - j0 < CB ? D - j0 : CB;
                if (S > 0 && dc > 0) {
                    PV_GEMM(PvRowMajor, PvTrans, PvNoTrans, (pv_blas_int)ldH, (pv_blas_int)nc,
                            (pv_blas_int)S, (PV_T)1, dHc, (pv_blas_int)ldH, Xs + j0,
                            (pv_blas_int)D, (PV_T)0, G + j0, (pv_blas_int)D);
                } else {
                    for (pv_index k = 0; k < ldH; k++) {
                        for (pv_index d = j0; d < j0 + nc; d++) {
                            G[k * D + d] = 0;
                        }
                    }
                }
                for (pv_index k = 0; k < dc; k++) {
                    const PV_T *gi = G + k * D, *gv = G + (dc + k) * D;
                    PV_T *gw = g->gW + k * D;
                    for (pv_index d = j0; d < j0 + nc; d++) {
                        gw[d] = nh == 1 ? gi[d] * m->mask[d]
                                        : gi[d] * m->mask[d] + gv[d] * (1 - m->mask[d]);
                    }
                }
                if (g->gmask != NULL) {
                    for (pv_index d = j0; d < j0 + nc; d++) {
                        g->gmask[d] = 0;
                    }
                    for (pv_index k = 0; k < dc; k++) {
                        const PV_T *gi = G + k * D, *gv = G + (dc + k) * D, *w = m->W + k * D;
                        for (pv_index d = j0; d < j0 + nc; d++) {
                            g->gmask[d] += w[d] * (nh == 1 ? gi[d] : gi[d] - gv[d]);
                        }
                    }
                }
            } else if (g->gA != NULL) {
                const pv_index j0 = (t - n_dt) * CB, nc = dc - j0 < CB ? dc - j0 : CB;
                if (S > 0 && da > 0) {
                    PV_GEMM(PvRowMajor, PvTrans, PvNoTrans, (pv_blas_int)da, (pv_blas_int)nc,
                            (pv_blas_int)(2 * S), (PV_T)1, dZ, (pv_blas_int)da, Hc + j0,
                            (pv_blas_int)dc, (PV_T)0, g->gA + j0, (pv_blas_int)dc);
                } else {
                    for (pv_index k = 0; k < da; k++) {
                        for (pv_index d = j0; d < j0 + nc; d++) {
                            g->gA[k * dc + d] = 0;
                        }
                    }
                }
            }
        }
    }

    double loss = 0;
    for (pv_index r = 0; r < B; r++) {
        loss += (double)rloss[r];
    }
    *loss_out = loss;
    if (bad || !(loss == loss) || loss - loss != 0) {
        return PV_EDOM;
    }
    /* Small sums over slots, in slot order. */
    if (m->b != NULL && g->gb != NULL) {
        for (pv_index k = 0; k < dc; k++) {
            g->gb[k] = 0;
        }
        for (pv_index s = 0; s < S; s++) {
            PV_FN(cv_axpy)(dc, 1, dHc + s * ldH, g->gb);
            if (nh == 2) {
                PV_FN(cv_axpy)(dc, 1, dHc + s * ldH + dc, g->gb);
            }
        }
    }
    if (fusion == PV_FUSE_ATTENTION) {
        if (g->gc != NULL) {
            for (pv_index k = 0; k < da; k++) {
                g->gc[k] = 0;
            }
            for (pv_index s = 0; s < 2 * S; s++) {
                PV_FN(cv_axpy)(da, 1, dZ + s * da, g->gc);
            }
        }
        if (g->gq != NULL) {
            for (pv_index k = 0; k < da; k++) {
                g->gq[k] = 0;
            }
            for (pv_index s = 0; s < S; s++) {
                const PV_T *ti = Tz + 2 * s * da, *tv = ti + da;
                for (pv_index k = 0; k < da; k++) {
                    g->gq[k] += dkap[s] * (ti[k] - tv[k]);
                }
            }
        }
    }
    if (fusion == PV_FUSE_GLOBAL && g->gomega != NULL) {
        PV_T acc = 0;
        for (pv_index s = 0; s < S; s++) {
            acc += dkap[s];
        }
        g->gomega[0] = acc;
        g->gomega[1] = -acc;
    }
    if (g->attn != NULL) {
        for (pv_index s = 0; s < S; s++) {
            g->attn[s] = ai[s];
        }
    }
    /* Scatter: user rows in row order, item rows per slot. */
    for (pv_index r = 0; r < B; r++) {
        PV_FN(cv_axpy)(du, 1, dUr + r * du, g->gU + (pv_index)g->user_slot[users[r]] * du);
    }
    for (pv_index s = 0; s < S; s++) {
        PV_FN(cv_axpy)(d_id, 1, dE + s * du, g->gV + s * d_id);
    }
    return PV_OK;
}

pv_index
PV_FN(pv_convert_loss_grad_workspace)(pv_index B, pv_index C, pv_convert_dims d)
{
    pv_index S = B * C < d.n_items ? B * C : d.n_items;
    return S * d.d_id + S + PV_FN(pv_convert_workspace)(B, C, S, d);
}

pv_status
PV_FN(pv_convert_loss_grad)(const PV_FN(pv_convert_model) *m, pv_index B, pv_index C,
                            const int64_t *users, const int64_t *items, PV_T *dU, PV_T *dV,
                            PV_T *dW, PV_T *db, PV_T *dA, PV_T *dc, PV_T *dq, PV_T *domega,
                            PV_T *dmask, PV_T *attn_pairs, int32_t *user_slot,
                            int32_t *item_slot, int64_t *item_list, PV_T *work, double *loss,
                            int n_threads)
{
    const pv_convert_dims d = m->dims;
    const pv_index du = d.d_id + d.d_c;
    if (B < 0 || C < 1 || d.n_users < 0 || d.n_items < 0) {
        return PV_EINVAL;
    }
    if (d.n_users > INT32_MAX || d.n_items > INT32_MAX) {
        return PV_ERANGE;
    }
    for (pv_index p = 0; p < B * C; p++) {
        if (items[p] < 0 || items[p] >= d.n_items) {
            return PV_EINDEX;
        }
    }
    for (pv_index u = 0; u < d.n_users; u++) {
        user_slot[u] = (int32_t)u;
    }
    /* Item slots in ascending id order (the gathers then walk X forwards). */
    for (pv_index i = 0; i < d.n_items; i++) {
        item_slot[i] = -1;
    }
    for (pv_index p = 0; p < B * C; p++) {
        item_slot[items[p]] = 0;
    }
    pv_index S = 0;
    for (pv_index i = 0; i < d.n_items; i++) {
        if (item_slot[i] == 0) {
            item_slot[i] = (int32_t)S;
            item_list[S++] = i;
        }
    }
    for (pv_index k = 0; k < d.n_users * du; k++) {
        dU[k] = 0;
    }
    for (pv_index k = 0; k < d.n_items * d.d_id; k++) {
        dV[k] = 0;
    }
    PV_T *gV = work, *attn = gV + S * d.d_id;
    PV_T *bwork = attn + S;
    for (pv_index k = 0; k < S * d.d_id; k++) {
        gV[k] = 0;
    }
    PV_FN(pv_convert_grad) g = {dU, gV, dW, db, dA, dc, dq, domega, dmask, attn,
                                user_slot, item_slot, item_list, d.n_users, S};
    pv_status st = PV_FN(pv_convert_batch)(m, B, C, users, items, &g, bwork, loss, n_threads);
    if (st != PV_OK) {
        return st;
    }
    for (pv_index s = 0; s < S; s++) {
        PV_T *dst = dV + item_list[s] * d.d_id;
        for (pv_index k = 0; k < d.d_id; k++) {
            dst[k] = gV[s * d.d_id + k];
        }
    }
    if (attn_pairs != NULL) {
        for (pv_index p = 0; p < B * C; p++) {
            attn_pairs[p] = attn[item_slot[items[p]]];
        }
    }
    return PV_OK;
}

pv_index
PV_FN(pv_convert_items_workspace)(pv_convert_dims d, int n_threads)
{
    const pv_index RB = PV_CONVERT_ROWS;
    if (n_threads <= 0) {
        n_threads = pv_default_threads();
    }
    return 2 * d.d_c * d.n_feat +
           (pv_index)n_threads * (RB * d.n_feat + 2 * RB * d.d_c + 2 * RB * d.d_a + 2 * RB +
                                  RB * d.d_c);
}

pv_status
PV_FN(pv_convert_items)(const PV_FN(pv_convert_model) *m, pv_index n, const int64_t *items,
                        PV_T *H, PV_T *a_inv, PV_T *work, int n_threads)
{
    pv_status st = PV_FN(cv_check_model)(m);
    if (st != PV_OK) {
        return st;
    }
    const pv_convert_dims d = m->dims;
    const pv_index D = d.n_feat, dc = d.d_c, da = d.d_a, RB = PV_CONVERT_ROWS;
    const pv_index nh = PV_FN(cv_halves)(m->fusion);
    if (n < 0) {
        return PV_EINVAL;
    }
    if (items == NULL && n > d.n_items) {
        return PV_EINDEX;
    }
    if (items != NULL) {
        for (pv_index k = 0; k < n; k++) {
            if (items[k] < 0 || items[k] >= d.n_items) {
                return PV_EINDEX;
            }
        }
    }
    if (n_threads <= 0) {
        n_threads = pv_default_threads();
    }
    PV_T *Wcat = work;
    PV_T *scratch = Wcat + 2 * dc * D;
    const pv_index per = RB * D + 2 * RB * dc + 2 * RB * da + 2 * RB + RB * dc;
    const pv_index n_tiles = (n + RB - 1) / RB;
#pragma omp parallel num_threads(n_threads)
    {
        PV_T *Xt = scratch + (pv_index)PV_OMP_THREAD_ID() * per;
        PV_T *Ht = Xt + RB * D, *Tt = Ht + 2 * RB * dc, *ai = Tt + 2 * RB * da;
        PV_T *av = ai + RB, *hb = av + RB;
#pragma omp for schedule(static)
        for (pv_index k = 0; k < dc; k++) {
            PV_FN(cv_build_wcat)(m, nh, k, k + 1, Wcat);
        }
#pragma omp for schedule(dynamic, 1)
        for (pv_index t = 0; t < n_tiles; t++) {
            const pv_index s0 = t * RB, nr = n - s0 < RB ? n - s0 : RB;
            for (pv_index s = 0; s < nr; s++) {
                const int64_t j = items != NULL ? items[s0 + s] : (int64_t)(s0 + s);
                const PV_T *x = m->X + j * D;
                for (pv_index k = 0; k < D; k++) {
                    Xt[s * D + k] = x[k];
                }
            }
            PV_T *hout = H != NULL ? H + s0 * dc : hb;
            PV_FN(cv_forward_tile)(m, Wcat, nr, Xt, Ht, Tt, ai, av, hout, dc);
            if (a_inv != NULL) {
                for (pv_index s = 0; s < nr; s++) {
                    a_inv[s0 + s] = ai[s];
                }
            }
        }
    }
    return PV_OK;
}
