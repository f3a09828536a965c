/*
 * Type-generic body of pv_convert.c, included once per dtype with
 *   PV_T (float or double), PV_FN(name) (name##_f32 / _f64), PV_GEMM,
 *   PV_EXP, PV_LOG1P, PV_TANH_ROWS (y[k] = tanh(y[k] + c[k]) over a row),
 *   PV_EPSILON and PV_NORMAL_MIN (FLT_/DBL_EPSILON, FLT_/DBL_MIN).
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

/* dots[q] = a . x_q for q < 4 in one pass over a, each with PV_CONVERT_LANES partial
 * sums added in a fixed order (vectorisable, thread-independent). */
PV_HOT static void
PV_FN(cv_dot4)(pv_index n, const PV_T *PV_RESTRICT a, const PV_T *PV_RESTRICT x0,
               const PV_T *PV_RESTRICT x1, const PV_T *PV_RESTRICT x2, const PV_T *PV_RESTRICT x3,
               PV_T *PV_RESTRICT dots)
{
    enum { L = PV_CONVERT_LANES };
    PV_T a0[L] = {0}, a1[L] = {0}, a2[L] = {0}, a3[L] = {0};
    pv_index k = 0;
    for (; k + L <= n; k += L) {
        for (int l = 0; l < L; l++) {
            a0[l] += a[k + l] * x0[k + l];
            a1[l] += a[k + l] * x1[k + l];
            a2[l] += a[k + l] * x2[k + l];
            a3[l] += a[k + l] * x3[k + l];
        }
    }
    PV_T t0 = 0, t1 = 0, t2 = 0, t3 = 0;
    for (; k < n; k++) {
        t0 += a[k] * x0[k];
        t1 += a[k] * x1[k];
        t2 += a[k] * x2[k];
        t3 += a[k] * x3[k];
    }
    for (int w = L / 2; w > 0; w /= 2) {
        for (int l = 0; l < w; l++) {
            a0[l] += a0[l + w];
            a1[l] += a1[l + w];
            a2[l] += a2[l + w];
            a3[l] += a3[l + w];
        }
    }
    dots[0] = a0[0] + t0;
    dots[1] = a1[0] + t1;
    dots[2] = a2[0] + t2;
    dots[3] = a3[0] + t3;
}

/* y += r0 x0 + r1 x1 + r2 x2 + r3 x3 in one pass over y. */
PV_HOT static void
PV_FN(cv_axpy4)(pv_index n, const PV_T *PV_RESTRICT r, const PV_T *PV_RESTRICT x0,
                const PV_T *PV_RESTRICT x1, const PV_T *PV_RESTRICT x2,
                const PV_T *PV_RESTRICT x3, PV_T *PV_RESTRICT y)
{
    const PV_T r0 = r[0], r1 = r[1], r2 = r[2], r3 = r[3];
    for (pv_index k = 0; k < n; k++) {
        y[k] += (r0 * x0[k] + r1 * x1[k]) + (r2 * x2[k] + r3 * x3[k]);
    }
}

/* Ask for the cache lines of x[0..n) ahead of their use. */
static inline void
PV_FN(cv_prefetch)(const PV_T *x, pv_index n)
{
    const pv_index per_line = 64 / (pv_index)sizeof(PV_T);
    for (pv_index k = 0; k < n; k += per_line) {
        __builtin_prefetch(x + k, 0, 3);
    }
}

/* Number of projection halves: h_inv only (INVARIANT) or h_inv and h_var. */
static inline pv_index
PV_FN(cv_halves)(pv_convert_fusion f)
{
    return f == PV_FUSE_INVARIANT ? 1 : 2;
}

/* Separate invariant and variant projections (W_var given; INVARIANT never reads it). */
static inline int
PV_FN(cv_separate)(const PV_FN(pv_convert_model) *m)
{
    return m->W_var != NULL && m->fusion != PV_FUSE_INVARIANT;
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
    if (PV_FN(cv_separate)(m) && (m->b == NULL) != (m->b_var == NULL)) {
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

/* Wcat = [W diag(m) ; W_v diag(1 - m)] (nh d_c x D), rows k0..k1 of each half
 * (W_v = W_var, or W when the projection is shared). */
static void
PV_FN(cv_build_wcat)(const PV_FN(pv_convert_model) *m, pv_index nh, pv_index k0, pv_index k1,
                     PV_T *Wcat)
{
    const pv_index D = m->dims.n_feat, dc = m->dims.d_c;
    const PV_T *Wv = PV_FN(cv_separate)(m) ? m->W_var : m->W;
    for (pv_index k = k0; k < k1; k++) {
        const PV_T *w = m->W + k * D;
        PV_T *wi = Wcat + k * D;
        for (pv_index d = 0; d < D; d++) {
            wi[d] = w[d] * m->mask[d];
        }
        if (nh == 2) {
            const PV_T *w2 = Wv + k * D;
            PV_T *wv = Wcat + (dc + k) * D;
            for (pv_index d = 0; d < D; d++) {
                wv[d] = w2[d] * (1 - m->mask[d]);
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
    if (m->b != NULL) { /* rows alternate h_inv, h_var when nh == 2 */
        const PV_T *bv = PV_FN(cv_separate)(m) ? m->b_var : m->b;
        for (pv_index s = 0; s < nr * nh; s++) {
            PV_FN(cv_axpy)(dc, 1, (s & 1) && nh == 2 ? bv : m->b, Ht + s * dc);
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

/*
 * How the attention batch cuts its S item slots (a function of S and the sizes only,
 * never of the thread count): at most PV_CONVERT_SEGS segments of seg_len consecutive
 * slots, each done by one thread in chunks of at most `chunk` slots.  A segment owns
 * `scratch` elements (a chunk's gathered feature rows, dH and dZ, and one dE row)
 * and `part` elements of partial sums (G = [dH_inv ; dH_var]^T X, dA, db and db_var, dc,
 * dq),
 * which are added in segment order at the end.
 */
static cv_plan
PV_FN(cv_attention_plan)(pv_index S, pv_convert_dims d)
{
    const pv_index D = d.n_feat, dc = d.d_c, da = d.d_a, du = d.d_id + d.d_c;
    cv_plan p = {0, 0, 0, 0, 0};
    if (S <= 0) {
        return p;
    }
    p.seg_len = (S + PV_CONVERT_SEGS - 1) / PV_CONVERT_SEGS;
    p.n_seg = (S + p.seg_len - 1) / p.seg_len;
    pv_index chunk = PV_CONVERT_CHUNK_BYTES / ((D > 0 ? D : 1) * (pv_index)sizeof(PV_T));
    chunk = chunk < PV_CONVERT_MIN_CHUNK ? PV_CONVERT_MIN_CHUNK : chunk;
    p.chunk = chunk < p.seg_len ? chunk : p.seg_len;
    p.scratch = p.chunk * (D + 2 * dc + 2 * da) + du;
    p.part = 2 * dc * D + da * dc + 2 * dc + 2 * da;
    return p;
}

pv_index
PV_FN(pv_convert_workspace)(pv_index B, pv_index C, pv_index S, pv_convert_dims d)
{
    const pv_index du = d.d_id + d.d_c, D = d.n_feat, dc = d.d_c, da = d.d_a;
    const cv_plan p = PV_FN(cv_attention_plan)(S, d);
    /* Wcat, Hc, Tz, ai, av, E, resid, rloss, Ub, dUr, the segments' partials and
     * scratch, then the pairs grouped by slot (int32: S + 1 offsets, B C pair ids).
     * A batch with fewer slots may cut them into more segments, but never into more
     * than min(PV_CONVERT_SEGS, S), nor into longer chunks: size for that. */
    const pv_index ints = S + 1 + B * C;
    const pv_index n_seg = S < PV_CONVERT_SEGS ? S : PV_CONVERT_SEGS;
    const pv_index own = 2 * dc * D + 2 * S * dc + 2 * S * da + 2 * S + S * du + B * C + B +
                         2 * B * du + n_seg * (p.part + p.scratch) +
                         (ints * (pv_index)sizeof(int32_t) + (pv_index)sizeof(PV_T) - 1) /
                             (pv_index)sizeof(PV_T);
    /* GLOBAL / INVARIANT: gate, its gradient, W_e, b_e, their gradients (separate
     * GLOBAL), and the backbone kernel's workspace */
    pv_rec_dims rd = {d.n_users, d.n_items, d.d_id, d.d_c, d.n_feat};
    const pv_index lin = 2 * D + 2 * dc * D + 2 * dc + PV_FN(pv_rec_workspace)(B, C, rd);
    return own > lin ? own : lin;
}

/* The outputs of a fusion with one weight for every item: gomega (for GLOBAL, from
 * dL/d(a_inv - a_var) scaled: domega_inv = -domega_var = a_inv a_var dsum) and attn. */
static void
PV_FN(cv_put_global)(PV_FN(pv_convert_grad) *g, int global, PV_T ai, PV_T av, PV_T dsum)
{
    if (global && g->gomega != NULL) {
        g->gomega[0] = ai * av * dsum;
        g->gomega[1] = -g->gomega[0];
    }
    if (g->attn != NULL) {
        for (pv_index s = 0; s < g->n_item_slots; s++) {
            g->attn[s] = ai;
        }
    }
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
    if (m->fusion == PV_FUSE_INVARIANT) { /* h does not read the variant projection */
        for (pv_index k = 0; g->gW_var != NULL && k < d.d_c * D; k++) {
            g->gW_var[k] = 0;
        }
        for (pv_index k = 0; g->gb_var != NULL && k < d.d_c; k++) {
            g->gb_var[k] = 0;
        }
    }
    if (g->gmask != NULL) {
        for (pv_index k = 0; k < D; k++) {
            g->gmask[k] = m->fusion == PV_FUSE_GLOBAL ? (ai - av) * dgate[k] : dgate[k];
        }
    }
    PV_T acc = 0;
    for (pv_index k = 0; m->fusion == PV_FUSE_GLOBAL && k < D; k++) {
        acc += dgate[k] * (2 * m->mask[k] - 1);
    }
    PV_FN(cv_put_global)(g, m->fusion == PV_FUSE_GLOBAL, ai, av, acc);
    return PV_OK;
}

/*
 * GLOBAL with separate projections: h = W_e x + b_e with the effective projection
 * W_e = a_inv W diag(m) + a_var W_v diag(1 - m) and b_e = a_inv b + a_var b_v, so the
 * backbone batch kernel (gate all ones) gives dW_e, db_e, and (method.md §4.2)
 *   dW = a_inv dW_e o m,  dW_v = a_var dW_e o (1 - m),  db = a_inv db_e,  db_v = a_var db_e,
 *   dm = sum_k dW_e,k o (a_inv W_k - a_var W_v,k),
 *   domega_inv = -domega_var = a_inv a_var (<dW_e, W diag(m) - W_v diag(1 - m)> + db_e . (b - b_v)).
 */
static pv_status
PV_FN(cv_effective_batch)(const PV_FN(pv_convert_model) *m, pv_index B, pv_index C,
                          const int64_t *users, const int64_t *items, PV_FN(pv_convert_grad) *g,
                          PV_T *work, double *loss, int n_threads)
{
    const pv_convert_dims d = m->dims;
    const pv_index D = d.n_feat, dc = d.d_c;
    PV_T *We = work, *be = We + dc * D, *gWe = be + dc, *gbe = gWe + dc * D;
    PV_T *rwork = gbe + dc;
    const PV_T ai = PV_FN(cv_sigmoid)(m->omega[0] - m->omega[1]);
    const PV_T av = PV_FN(cv_sigmoid)(m->omega[1] - m->omega[0]);
    for (pv_index k = 0; k < dc; k++) {
        for (pv_index j = 0; j < D; j++) {
            We[k * D + j] = ai * m->W[k * D + j] * m->mask[j] +
                            av * m->W_var[k * D + j] * (1 - m->mask[j]);
        }
        if (m->b != NULL) {
            be[k] = ai * m->b[k] + av * m->b_var[k];
        }
    }
    PV_FN(pv_rec_model) rm = {{d.n_users, d.n_items, d.d_id, dc, D}, m->U, m->V, We,
                              m->b != NULL ? be : NULL, NULL, m->X, m->beta_u, m->beta_i,
                              {m->w[0], m->w[1], m->w[2], m->w[3]}};
    PV_FN(pv_rec_grad) rg = {g->gU, g->gV, gWe, m->b != NULL ? gbe : NULL, NULL,
                             g->user_slot, g->item_slot, g->n_user_slots, g->n_item_slots};
    pv_status st = PV_FN(pv_rec_batch)(&rm, B, C, users, items, &rg, rwork, loss, n_threads);
    if (st != PV_OK) {
        return st;
    }
    PV_T dom = 0;
    if (g->gmask != NULL) {
        for (pv_index j = 0; j < D; j++) {
            g->gmask[j] = 0;
        }
    }
    for (pv_index k = 0; k < dc; k++) {
        const PV_T *ge = gWe + k * D, *w = m->W + k * D, *wv = m->W_var + k * D;
        for (pv_index j = 0; j < D; j++) {
            g->gW[k * D + j] = ai * ge[j] * m->mask[j];
            g->gW_var[k * D + j] = av * ge[j] * (1 - m->mask[j]);
            dom += ge[j] * (w[j] * m->mask[j] - wv[j] * (1 - m->mask[j]));
            if (g->gmask != NULL) {
                g->gmask[j] += ge[j] * (ai * w[j] - av * wv[j]);
            }
        }
        if (m->b != NULL) {
            dom += gbe[k] * (m->b[k] - m->b_var[k]);
            if (g->gb != NULL) {
                g->gb[k] = ai * gbe[k];
            }
            if (g->gb_var != NULL) {
                g->gb_var[k] = av * gbe[k];
            }
        }
    }
    PV_FN(cv_put_global)(g, 1, ai, av, dom);
    return PV_OK;
}

/* Copy the feature rows of items ids[0..n) into Xt (n x D) and, when E is not NULL,
 * their V rows into the first d_id columns of E (row stride du). */
PV_HOT static void
PV_FN(cv_gather)(const PV_FN(pv_convert_model) *m, pv_index n, const int64_t *PV_RESTRICT ids,
                 PV_T *PV_RESTRICT Xt, PV_T *PV_RESTRICT E, pv_index du)
{
    const pv_index D = m->dims.n_feat, d_id = m->dims.d_id;
    for (pv_index s = 0; s < n; s++) {
        const PV_T *x = m->X + ids[s] * D;
        PV_T *xt = Xt + s * D;
        for (pv_index k = 0; k < D; k++) {
            xt[k] = x[k];
        }
        if (E != NULL) {
            const PV_T *v = m->V + ids[s] * d_id;
            PV_T *e = E + s * du;
            for (pv_index k = 0; k < d_id; k++) {
                e[k] = v[k];
            }
        }
    }
}

/*
 * One batch row: the scores of its C items (e: item vectors, slot rows of E),
 * their weighted BCE, the residuals r_c = w_c (sigmoid(s_c) - y_c) and
 * dU_r = sum_c r_c e_c.  Items go in groups of 4 whose E rows are fetched together;
 * a short last group borrows the row's first item with a zero residual.
 */
PV_HOT static PV_T
PV_FN(cv_row)(const PV_FN(pv_convert_model) *m, pv_index C, int64_t user,
              const int64_t *PV_RESTRICT items, const int32_t *PV_RESTRICT item_slot,
              const PV_T *PV_RESTRICT E, const PV_T *PV_RESTRICT Ur, PV_T *PV_RESTRICT resid,
              PV_T *PV_RESTRICT dur, int *bad)
{
    const pv_index du = m->dims.d_id + m->dims.d_c;
    const PV_T bu = m->beta_u[user];
    const PV_T inv_neg = C > 1 ? (PV_T)1 / (PV_T)(C - 1) : 0;
    PV_T loss = 0;
    for (pv_index k = 0; k < du; k++) {
        dur[k] = 0;
    }
    for (pv_index c0 = 0; c0 < C; c0 += 4) {
        const pv_index g = C - c0 < 4 ? C - c0 : 4;
        const PV_T *e[4];
        for (pv_index q = 0; q < 4; q++) {
            e[q] = E + (pv_index)item_slot[items[q < g ? c0 + q : 0]] * du;
        }
        for (pv_index q = c0 + 4; q < c0 + 8 && q < C; q++) {
            PV_FN(cv_prefetch)(E + (pv_index)item_slot[items[q]] * du, du);
        }
        PV_T sc[4], r[4];
        PV_FN(cv_dot4)(du, Ur, e[0], e[1], e[2], e[3], sc);
        for (pv_index q = 0; q < 4; q++) {
            r[q] = 0;
            if (q >= g) {
                continue;
            }
            const pv_index c = c0 + q;
            const int64_t j = items[c];
            PV_T s = sc[q];
            if (!(s == s) || s - s != 0) {
                *bad = 1;
                s = 0;
            }
            PV_T w, dl;
            if (c == 0) {
                w = m->w[0] + m->w[1] * bu * m->beta_i[j];
            } else {
                w = (m->w[2] + m->w[3] * bu * m->beta_i[j]) * inv_neg;
            }
            loss += w * PV_FN(cv_bce)(s, c == 0, &dl);
            r[q] = w * dl;
            resid[c] = r[q];
        }
        PV_FN(cv_axpy4)(du, r, e[0], e[1], e[2], e[3], dur);
    }
    return loss;
}

/*
 * Backward through the fusion for the slots s0 .. s0 + n of one chunk:
 *   dE_s = sum of r_p Ub_row(p) over the pairs of slot s (in pair order); its first
 *   d_id entries go to gV, the rest is dh;  dH_inv = a_inv dh, dH_var = a_var dh
 *   (rows of dH, 2 d_c wide);  dkappa = a_inv a_var dh . (h_inv - h_var);
 *   dZ_inv = dkappa q o (1 - t_inv^2), dZ_var = -dkappa q o (1 - t_var^2)  (rows of dZ);
 *   gq += dkappa (t_inv - t_var), in slot order.
 */
PV_HOT static void
PV_FN(cv_backward_rows)(const PV_FN(pv_convert_model) *m, pv_index s0, pv_index n, pv_index C,
                        const int32_t *PV_RESTRICT pair_ptr, const int32_t *PV_RESTRICT pair_idx,
                        const PV_T *PV_RESTRICT resid, const PV_T *PV_RESTRICT Ub,
                        const PV_T *PV_RESTRICT Hc, const PV_T *PV_RESTRICT Tz,
                        const PV_T *PV_RESTRICT ai, const PV_T *PV_RESTRICT av,
                        PV_T *PV_RESTRICT gV, PV_T *PV_RESTRICT dH, PV_T *PV_RESTRICT dZ,
                        PV_T *PV_RESTRICT e, PV_T *PV_RESTRICT gq)
{
    const pv_index d_id = m->dims.d_id, dc = m->dims.d_c, da = m->dims.d_a, du = d_id + dc;
    const PV_T *q = m->q;
    for (pv_index l = 0; l < n; l++) {
        const pv_index s = s0 + l;
        for (pv_index k = 0; k < du; k++) {
            e[k] = 0;
        }
        for (int32_t t = pair_ptr[s]; t < pair_ptr[s + 1]; t++) {
            const pv_index p = pair_idx[t];
            const PV_T r = resid[p];
            const PV_T *u = Ub + (p / C) * du;
            for (pv_index k = 0; k < du; k++) {
                e[k] += r * u[k];
            }
        }
        PV_T *gv = gV + s * d_id;
        for (pv_index k = 0; k < d_id; k++) {
            gv[k] += e[k];
        }
        const PV_T *dh = e + d_id, *hi = Hc + s * 2 * dc, *hv = hi + dc;
        const PV_T a = ai[s], v = av[s];
        PV_T *dhi = dH + l * 2 * dc, *dhv = dhi + dc;
        for (pv_index k = 0; k < dc; k++) {
            dhi[k] = a * dh[k];
            dhv[k] = v * dh[k];
        }
        PV_T diff[PV_CONVERT_LANES] = {0};
        pv_index k = 0;
        for (; k + PV_CONVERT_LANES <= dc; k += PV_CONVERT_LANES) {
            for (int t = 0; t < PV_CONVERT_LANES; t++) {
                diff[t] += dh[k + t] * (hi[k + t] - hv[k + t]);
            }
        }
        PV_T gs = 0;
        for (; k < dc; k++) {
            gs += dh[k] * (hi[k] - hv[k]);
        }
        for (int w = PV_CONVERT_LANES / 2; w > 0; w /= 2) {
            for (int t = 0; t < w; t++) {
                diff[t] += diff[t + w];
            }
        }
        gs += diff[0];
        const PV_T dkl = a * v * gs;
        const PV_T *ti = Tz + s * 2 * da, *tv = ti + da;
        PV_T *dzi = dZ + l * 2 * da, *dzv = dzi + da;
        for (pv_index j = 0; j < da; j++) {
            dzi[j] = dkl * q[j] * (1 - ti[j] * ti[j]);
            dzv[j] = -dkl * q[j] * (1 - tv[j] * tv[j]);
            gq[j] += dkl * (ti[j] - tv[j]);
        }
    }
}

/*
 * True when dH += dZ A (n rows of dZ, d_a wide; n rows of dH, d_c wide) cannot change
 * any bit of dH, so the GEMM may be skipped: for each row i, every entry of
 * (dZ A)_i is at most d_a max_k |dZ_ik| max|A| in size, up to rounding (below
 * d_a PV_NORMAL_MIN when products fall under the normal range); when twice that is
 * under eps/8 min_j |dH_ij| (below half an ulp of every dH_ij), dH_ij + (dZ A)_ij
 * rounds back to dH_ij.  Rows of dZ that are all zero add (signed) zeros to dH rows
 * that are +0 or nonzero, which changes nothing either.
 * This matters when the attention parameters have decayed towards zero: the GEMM's
 * products are then subnormal, and each costs a microcode assist (a whole batch
 * measured 7 times slower).  Only comparisons and one product per row run here.
 */
PV_HOT static int
PV_FN(cv_dza_negligible)(pv_index n, pv_index da, pv_index dc, const PV_T *PV_RESTRICT dZ,
                         const PV_T *PV_RESTRICT dH, PV_T amax)
{
    for (pv_index i = 0; i < n; i++) {
        PV_T zmax = 0, hmin = 0;
        for (pv_index k = 0; k < da; k++) {
            const PV_T z = dZ[i * da + k] < 0 ? -dZ[i * da + k] : dZ[i * da + k];
            zmax = z > zmax || z != z ? z : zmax; /* a NaN is never negligible */
        }
        if (zmax == 0) {
            continue;
        }
        if (dc > 0) {
            hmin = dH[i * dc] < 0 ? -dH[i * dc] : dH[i * dc];
        }
        for (pv_index j = 1; j < dc; j++) {
            const PV_T h = dH[i * dc + j] < 0 ? -dH[i * dc + j] : dH[i * dc + j];
            hmin = h < hmin ? h : hmin;
        }
        const PV_T bound = (PV_T)(2 * da) * zmax * amax + (PV_T)da * PV_NORMAL_MIN;
        if (!(bound <= hmin * (PV_EPSILON / 8))) {
            return 0;
        }
    }
    return 1;
}

/* y[k] += sum of the n rows of X (row stride ld), in row order. */
PV_HOT static void
PV_FN(cv_sum_rows)(pv_index n, pv_index len, const PV_T *PV_RESTRICT X, pv_index ld,
                   PV_T *PV_RESTRICT y)
{
    for (pv_index r = 0; r < n; r++) {
        for (pv_index k = 0; k < len; k++) {
            y[k] += X[r * ld + k];
        }
    }
}

/* gW (gW_var) and gmask on the feature columns j0 .. j0 + nc, from the segments' G
 * partials (added in segment order):  G_inv, G_var = sum_seg;
 *   separate: gW = G_inv o m, gW_var = G_var o (1 - m), gmask = sum_k W_k o G_inv,k - W_v,k o G_var,k;
 *   shared:   gW = G_inv o m + G_var o (1 - m),        gmask = sum_k W_k o (G_inv,k - G_var,k). */
PV_HOT static void
PV_FN(cv_reduce_columns)(const PV_FN(pv_convert_model) *m, PV_FN(pv_convert_grad) *g,
                         pv_index n_seg, pv_index part, const PV_T *PV_RESTRICT parts,
                         pv_index j0, pv_index nc)
{
    const pv_index D = m->dims.n_feat, dc = m->dims.d_c;
    const PV_T *mask = m->mask + j0;
    PV_T gi[PV_CONVERT_COLS], gv[PV_CONVERT_COLS];
    PV_T *gm = g->gmask != NULL ? g->gmask + j0 : NULL;
    if (gm != NULL) {
        for (pv_index d = 0; d < nc; d++) {
            gm[d] = 0;
        }
    }
    for (pv_index k = 0; k < dc; k++) {
        for (pv_index d = 0; d < nc; d++) {
            gi[d] = 0;
            gv[d] = 0;
        }
        for (pv_index sg = 0; sg < n_seg; sg++) {
            const PV_T *pi = parts + sg * part + k * D + j0, *pv = pi + dc * D;
            for (pv_index d = 0; d < nc; d++) {
                gi[d] += pi[d];
                gv[d] += pv[d];
            }
        }
        PV_T *gw = g->gW + k * D + j0;
        const PV_T *w = m->W + k * D + j0;
        if (m->W_var != NULL) {
            PV_T *gw2 = g->gW_var + k * D + j0;
            const PV_T *w2 = m->W_var + k * D + j0;
            for (pv_index d = 0; d < nc; d++) {
                gw[d] = gi[d] * mask[d];
                gw2[d] = gv[d] * (1 - mask[d]);
            }
            for (pv_index d = 0; gm != NULL && d < nc; d++) {
                gm[d] += w[d] * gi[d] - w2[d] * gv[d];
            }
            continue;
        }
        for (pv_index d = 0; d < nc; d++) {
            gw[d] = gi[d] * mask[d] + gv[d] * (1 - mask[d]);
        }
        if (gm != NULL) {
            for (pv_index d = 0; d < nc; d++) {
                gm[d] += w[d] * (gi[d] - gv[d]);
            }
        }
    }
}

/*
 * ATTENTION batch.  Items are projected per segment of slots (see cv_attention_plan):
 *   forward, per chunk: gather the feature rows (thread-local, cache-resident), one
 *     GEMM against Wcat = [W diag(m) ; W diag(1 - m)] gives [h_inv, h_var], then the
 *     attention and the item vectors E = [V ; h];
 *   pairs, per row: scores, loss, residuals, dU_r;
 *   backward, per chunk: dE per slot from the pairs grouped by slot, dH and dZ,
 *     dH += dZ A, then the chunk's G += dH^T X_chunk (feature rows gathered again) and
 *     dA += dZ^T H into the segment's partials;
 *   gW, gmask per feature column tile from the partials, in segment order.
 * Every sum has an order fixed by S and the sizes, so nothing depends on n_threads.
 */
static pv_status
PV_FN(cv_attention_batch)(const PV_FN(pv_convert_model) *m, pv_index B, pv_index C,
                          const int64_t *users, const int64_t *items, PV_FN(pv_convert_grad) *g,
                          PV_T *work, double *loss_out, int n_threads)
{
    const pv_convert_dims dm = m->dims;
    const pv_index d_id = dm.d_id, dc = dm.d_c, da = dm.d_a, du = d_id + dc, D = dm.n_feat;
    const pv_index S = g->n_item_slots, ldH = 2 * dc, BC = B * C;
    const cv_plan pl = PV_FN(cv_attention_plan)(S, dm);
    if (BC >= INT32_MAX) {
        return PV_ERANGE;
    }
    PV_T *Wcat = work;             /* 2 dc x D */
    PV_T *Hc = Wcat + 2 * dc * D;  /* S x 2 dc: [h_inv, h_var] */
    PV_T *Tz = Hc + 2 * S * dc;    /* 2S x da: tanh(A h + c) */
    PV_T *ai = Tz + 2 * S * da;    /* S */
    PV_T *av = ai + S;             /* S */
    PV_T *E = av + S;              /* S x du: item vectors [V ; h] */
    PV_T *resid = E + S * du;      /* B x C */
    PV_T *rloss = resid + BC;      /* B */
    PV_T *Ub = rloss + B;          /* B x du: the rows' user vectors */
    PV_T *dUr = Ub + B * du;       /* B x du */
    PV_T *parts = dUr + B * du;    /* n_seg x part */
    PV_T *scratch = parts + pl.n_seg * pl.part; /* n_seg x scratch */
    /* int32 after the last PV_T (the caller's buffer is plain allocated memory) */
    int32_t *pair_ptr = (int32_t *)(void *)(scratch + pl.n_seg * pl.scratch); /* S + 1 */
    int32_t *pair_idx = pair_ptr + S + 1;                                      /* B C */

    const pv_index CB = PV_CONVERT_COLS, n_dt = (D + CB - 1) / CB;
    int bad = 0;
    double loss = 0;

    /* Built before the region, so that no thread waits at its start for the others to
     * arrive (on a busy machine a woken thread may take a while to get a core). */
    PV_FN(cv_build_wcat)(m, 2, 0, dc, Wcat);
    PV_T amax = 0; /* max |A|, for cv_dza_negligible (NaN: never negligible) */
    for (pv_index k = 0; k < da * dc; k++) {
        const PV_T a = m->A[k] < 0 ? -m->A[k] : m->A[k];
        amax = a > amax || a != a ? a : amax;
    }
#pragma omp parallel num_threads(n_threads)
    {
        /* The pairs grouped by slot, in pair order (a counting sort). */
#pragma omp single nowait
        {
            for (pv_index s = 0; s <= S; s++) {
                pair_ptr[s] = 0;
            }
            for (pv_index p = 0; p < BC; p++) {
                pair_ptr[g->item_slot[items[p]] + 1]++;
            }
            for (pv_index s = 0; s < S; s++) {
                pair_ptr[s + 1] += pair_ptr[s];
            }
            for (pv_index p = 0; p < BC; p++) {
                pair_idx[pair_ptr[g->item_slot[items[p]]]++] = (int32_t)p;
            }
            for (pv_index s = S; s > 0; s--) {
                pair_ptr[s] = pair_ptr[s - 1];
            }
            pair_ptr[0] = 0;
        }
#pragma omp for schedule(static) nowait
        for (pv_index r = 0; r < B; r++) {
            const PV_T *u = m->U + users[r] * du;
            for (pv_index k = 0; k < du; k++) {
                Ub[r * du + k] = u[k];
            }
        }
        /* Forward, segment by segment. */
#pragma omp for schedule(dynamic, 1)
        for (pv_index sg = 0; sg < pl.n_seg; sg++) {
            PV_T *Xt = scratch + sg * pl.scratch;
            const pv_index s1 = (sg + 1) * pl.seg_len < S ? (sg + 1) * pl.seg_len : S;
            for (pv_index s0 = sg * pl.seg_len; s0 < s1; s0 += pl.chunk) {
                const pv_index nr = s1 - s0 < pl.chunk ? s1 - s0 : pl.chunk;
                PV_FN(cv_gather)(m, nr, g->item_list + s0, Xt, E + s0 * du, du);
                PV_FN(cv_forward_tile)(m, Wcat, nr, Xt, Hc + s0 * ldH, Tz + 2 * s0 * da,
                                       ai + s0, av + s0, E + s0 * du + d_id, du);
            }
        }
        /* Pairs, row by row: loss, residuals, dU_r = sum_c r_c e_c. */
#pragma omp for schedule(dynamic, 8) reduction(| : bad)
        for (pv_index r = 0; r < B; r++) {
            rloss[r] = PV_FN(cv_row)(m, C, users[r], items + r * C, g->item_slot, E,
                                     Ub + r * du, resid + r * C, dUr + r * du, &bad);
        }
        /* Every thread adds the row losses in the same order (cheaper than a barrier). */
        double tloss = 0;
        for (pv_index r = 0; r < B; r++) {
            tloss += (double)rloss[r];
        }
        const int stop = bad || !(tloss == tloss) || tloss - tloss != 0;
#pragma omp master
        loss = tloss;
        if (!stop) {
            /* Backward, segment by segment, into the segment's partials. */
#pragma omp for schedule(dynamic, 1)
            for (pv_index sg = 0; sg < pl.n_seg; sg++) {
                PV_T *Xt = scratch + sg * pl.scratch, *dH = Xt + pl.chunk * D;
                PV_T *dZ = dH + pl.chunk * ldH, *e = dZ + 2 * pl.chunk * da;
                PV_T *G = parts + sg * pl.part, *dAp = G + 2 * dc * D, *gbp = dAp + da * dc;
                PV_T *gcp = gbp + 2 * dc, *gqp = gcp + da; /* gbp: db, db_var */
                for (pv_index k = 0; k < 2 * dc + 2 * da; k++) {
                    gbp[k] = 0;
                }
                const pv_index sa = sg * pl.seg_len;
                const pv_index s1 = sa + pl.seg_len < S ? sa + pl.seg_len : S;
                for (pv_index s0 = sa; s0 < s1; s0 += pl.chunk) {
                    const pv_index nr = s1 - s0 < pl.chunk ? s1 - s0 : pl.chunk;
                    const PV_T beta = s0 == sa ? 0 : 1;
                    PV_FN(cv_backward_rows)(m, s0, nr, C, pair_ptr, pair_idx, resid, Ub, Hc, Tz,
                                            ai, av, g->gV, dH, dZ, e, gqp);
                    /* dH += dZ A (rows 2l, 2l+1: inv, var), unless it cannot change dH */
                    if (da > 0 && dc > 0 &&
                        !PV_FN(cv_dza_negligible)(2 * nr, da, dc, dZ, dH, amax)) {
                        PV_GEMM(PvRowMajor, PvNoTrans, PvNoTrans, (pv_blas_int)(2 * nr),
                                (pv_blas_int)dc, (pv_blas_int)da, (PV_T)1, dZ, (pv_blas_int)da,
                                m->A, (pv_blas_int)dc, (PV_T)1, dH, (pv_blas_int)dc);
                    }
                    if (m->W_var != NULL) { /* rows of dH: [dH_inv, dH_var] */
                        PV_FN(cv_sum_rows)(nr, dc, dH, 2 * dc, gbp);
                        PV_FN(cv_sum_rows)(nr, dc, dH + dc, 2 * dc, gbp + dc);
                    } else {
                        PV_FN(cv_sum_rows)(2 * nr, dc, dH, dc, gbp);
                    }
                    PV_FN(cv_sum_rows)(2 * nr, da, dZ, da, gcp);
                    PV_FN(cv_gather)(m, nr, g->item_list + s0, Xt, NULL, du);
                    if (dc > 0 && D > 0) { /* G (+)= [dH_inv ; dH_var]^T X_chunk */
                        PV_GEMM(PvRowMajor, PvTrans, PvNoTrans, (pv_blas_int)ldH, (pv_blas_int)D,
                                (pv_blas_int)nr, (PV_T)1, dH, (pv_blas_int)ldH, Xt,
                                (pv_blas_int)D, beta, G, (pv_blas_int)D);
                    }
                    if (da > 0 && dc > 0) { /* dA (+)= dZ^T H */
                        PV_GEMM(PvRowMajor, PvTrans, PvNoTrans, (pv_blas_int)da, (pv_blas_int)dc,
                                (pv_blas_int)(2 * nr), (PV_T)1, dZ, (pv_blas_int)da,
                                Hc + s0 * ldH, (pv_blas_int)dc, beta, dAp, (pv_blas_int)dc);
                    }
                }
            }
            /* gW, gmask per column tile of the features. */
#pragma omp for schedule(static)
            for (pv_index t = 0; t < n_dt; t++) {
                const pv_index j0 = t * CB, nc = D - j0 < CB ? D - j0 : CB;
                PV_FN(cv_reduce_columns)(m, g, pl.n_seg, pl.part, parts, j0, nc);
            }
        }
    }

    *loss_out = loss;
    if (bad || !(loss == loss) || loss - loss != 0) {
        return PV_EDOM;
    }
    /* Small sums over the segments, in segment order. */
    const PV_T *p0 = parts + 2 * dc * D;
    if (g->gA != NULL) {
        for (pv_index k = 0; k < da * dc; k++) {
            g->gA[k] = 0;
        }
        for (pv_index sg = 0; sg < pl.n_seg; sg++) {
            PV_FN(cv_axpy)(da * dc, 1, p0 + sg * pl.part, g->gA);
        }
    }
    PV_T *outs[4] = {m->b != NULL ? g->gb : NULL, g->gc, g->gq,
                     m->b != NULL && m->W_var != NULL ? g->gb_var : NULL};
    const pv_index offs[4] = {da * dc, da * dc + 2 * dc, da * dc + 2 * dc + da, da * dc + dc};
    const pv_index lens[4] = {dc, da, da, dc};
    for (int o = 0; o < 4; o++) {
        if (outs[o] == NULL) {
            continue;
        }
        for (pv_index k = 0; k < lens[o]; k++) {
            outs[o][k] = 0;
        }
        for (pv_index sg = 0; sg < pl.n_seg; sg++) {
            PV_FN(cv_axpy)(lens[o], 1, p0 + sg * pl.part + offs[o], outs[o]);
        }
    }
    if (g->attn != NULL) {
        for (pv_index s = 0; s < S; s++) {
            g->attn[s] = ai[s];
        }
    }
    /* Scatter the user rows, in row order (the item rows went to gV per slot). */
    for (pv_index r = 0; r < B; r++) {
        PV_FN(cv_axpy)(du, 1, dUr + r * du, g->gU + (pv_index)g->user_slot[users[r]] * du);
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
    const pv_index du = dm.d_id + dm.d_c, D = dm.n_feat;
    const pv_index S = g->n_item_slots;
    if (B < 0 || C < 1 || S < 0 || g->n_user_slots < 0 || g->gW == NULL) {
        return PV_EINVAL;
    }
    if (!pv_blas_fits(2 * S, D, du) || !pv_blas_fits(B * C, 2 * S * dm.d_a, 2 * S * dm.d_c)) {
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
    if (PV_FN(cv_separate)(m) && g->gW_var == NULL) {
        return PV_EINVAL;
    }
    if (m->fusion == PV_FUSE_GLOBAL && PV_FN(cv_separate)(m)) {
        return PV_FN(cv_effective_batch)(m, B, C, users, items, g, work, loss_out, n_threads);
    }
    if (m->fusion != PV_FUSE_ATTENTION) {
        return PV_FN(cv_linear_batch)(m, B, C, users, items, g, work, loss_out, n_threads);
    }
    return PV_FN(cv_attention_batch)(m, B, C, users, items, g, work, loss_out, n_threads);
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
                            PV_T *dW, PV_T *db, PV_T *dW_var, PV_T *db_var, PV_T *dA, PV_T *dc,
                            PV_T *dq, PV_T *domega, PV_T *dmask, PV_T *attn_pairs,
                            int32_t *user_slot,
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
    PV_FN(pv_convert_grad) g = {dU,        gV,        dW,        db,        dA,     dc,
                                dq,        domega,    dmask,     attn,      user_slot,
                                item_slot, item_list, d.n_users, S,         dW_var, db_var};
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
