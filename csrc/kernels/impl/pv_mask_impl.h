/*
 * impl/pv_mask_impl.h -- type-generic body of the mask step (method.md §3.3-3.4).
 *
 * Included by pv_mask.c once per type with PV_T, PV_FN(name), PV_GEMM, PV_EXP,
 * PV_LOG1P and PV_FABS defined, then impl/pv_undef.h.
 *
 * Algorithm (per environment e, rows b = 1..B, pairs n = (b, c), c = 0..n_neg):
 *   H_e = P_e W               users projected into feature space (GEMM), h_b = W^T p_b
 *   pass 1 (per row):         s_n = U_id.V + (h_b o z_e).x_i;  r_n, r'_n;
 *                             Q_b = sum_c r_n x_i            (O(D) per pair)
 *   Gt_e = (P_e^T Q_e) o z_e  the data part of G_e (GEMM; G_e = Gt_e + 2 wd2 W)
 *   columns:                  Gbar, P, M_e = 4 (G_e - Gbar) o P o c (in place of Gt_e),
 *                             a_W = Gbar + 2 wd2 W,  a_mu = mean_e 1_e o sum_b h_b o Q_b
 *   K_e = P_e M_e             k_b = M_e^T p_b (GEMM)
 *   pass 2 (per row):         t_n = (k_b o z_e).x_i;  T_b = sum_c r'_n t_n x_i
 *                             then Q_b <- h_b o T_b + k_b o Q_b and T_b <- T_b o z_e
 *   columns:                  b_W = sum_e P_e^T (T_e o z_e) (GEMM over all rows),
 *                             b_mu = 2 (mu + 0.5) sum_k P^2 + sum_e 1_e o sum_b Q_b
 * The 2 wd2 M_e terms of the VJP sum to zero over environments and are dropped.
 */

typedef struct {
    PV_T *z, *ind;          /* (E x D) gates and their clamp indicators             */
    PV_T *Pc;               /* (R x d_c) gathered U_c rows                          */
    PV_T *H, *Q, *K, *T;    /* (R x D) each                                         */
    PV_T *Gt;               /* (E x d_c x D) data part of G_e, then M_e             */
    PV_T *scratch;          /* (n_threads x D)                                      */
    PV_T *rp;               /* (R x (1 + n_neg)) r'_n                               */
    double *row_loss;       /* (R)                                                   */
    double *col_irm;        /* (D) per-column part of L_IRM                          */
} PV_FN(mask_ws);

/* Lay the workspace out in `base` (or only count the bytes when base is NULL). */
static size_t
PV_FN(mask_ws_layout)(const pv_mask_dims *dm, int n_threads, char *base, PV_FN(mask_ws) *ws)
{
    size_t E = (size_t)dm->n_env, B = (size_t)dm->batch, D = (size_t)dm->D;
    size_t dc = (size_t)dm->d_c, n1 = (size_t)dm->n_neg + 1, R = E * B;
    size_t nt = (size_t)(n_threads > 0 ? n_threads : 1);
    size_t counts[10] = {E * D, E * D, R * dc, R * D, R * D, R * D, R * D, E * dc * D,
                         nt * D, R * n1};
    size_t off = 0;
    PV_T **slots[10] = {&ws->z, &ws->ind, &ws->Pc, &ws->H, &ws->Q, &ws->K, &ws->T, &ws->Gt,
                        &ws->scratch, &ws->rp};
    for (int k = 0; k < 10; k++) {
        if (base != NULL) {
            *slots[k] = (PV_T *)(base + off);
        }
        off += mask_round64(counts[k] * sizeof(PV_T));
    }
    if (base != NULL) {
        ws->row_loss = (double *)(base + off);
    }
    off += mask_round64(R * sizeof(double));
    if (base != NULL) {
        ws->col_irm = (double *)(base + off);
    }
    off += mask_round64(D * sizeof(double));
    return off;
}

size_t
PV_FN(pv_mask_step_work)(const pv_mask_dims *dims, int n_threads)
{
    if (mask_dims_check(dims) != PV_OK) {
        return 0;
    }
    if (n_threads <= 0) {
        n_threads = pv_default_threads();
    }
    n_threads = mask_threads_for(dims, n_threads);
    PV_FN(mask_ws) ws;
    return PV_FN(mask_ws_layout)(dims, n_threads, NULL, &ws);
}

/*
 * Loss terms of one pair from its logit: adds w * softplus(-+s) to *lsum, returns
 * r = w (sigma(s) - y) and stores r' = w sigma(s) (1 - sigma(s)).
 */
static inline PV_T
PV_FN(mask_pair_terms)(PV_T s, int positive, PV_T wgt, PV_T *rp, double *lsum)
{
    /* Stable logistic pieces from e = exp(-|s|). */
    const PV_T ea = PV_EXP(-PV_FABS(s));
    const PV_T inv1p = (PV_T)1 / ((PV_T)1 + ea);
    const PV_T sig = s >= 0 ? inv1p : ea * inv1p;     /* sigma(s)     */
    const PV_T sigc = s >= 0 ? ea * inv1p : inv1p;    /* 1 - sigma(s) */
    const PV_T lp = PV_LOG1P(ea);
    PV_T r, sp;
    if (positive) {   /* label 1: softplus(-s) */
        sp = (s < 0 ? -s : (PV_T)0) + lp;
        r = -wgt * sigc;
    }
    else {            /* label 0: softplus(s)  */
        sp = (s > 0 ? s : (PV_T)0) + lp;
        r = wgt * sig;
    }
    *lsum += (double)wgt * (double)sp;
    *rp = wgt * sig * sigc;
    return r;
}

/* Prefetch the feature (and id) rows of pair it[c + PV_MASK_PF], if it exists. */
#define PV_MASK_PREFETCH_PAIR(cc)                                                          \
    do {                                                                                   \
        if ((cc) + PV_MASK_PF < it_avail) {                                                \
            const int64_t ia_ = it[(cc) + PV_MASK_PF];                                     \
            mask_prefetch_row(X + (size_t)ia_ * (size_t)D, (size_t)D * sizeof(PV_T));      \
            if (V != NULL) {                                                               \
                mask_prefetch_row(V + (size_t)ia_ * (size_t)d_id,                          \
                                  (size_t)d_id * sizeof(PV_T));                            \
                mask_prefetch_row(beta_i + ia_, sizeof(PV_T));                             \
            }                                                                              \
        }                                                                                  \
    } while (0)

/*
 * Feature row of the pair PV_MASK_PF positions after it[cc] (possibly in the next row,
 * which follows in memory), or `dflt` when there is none: a prefetch target.
 */
#define PV_MASK_AHEAD(cc, dflt)                                                            \
    ((cc) + PV_MASK_PF < it_avail ? X + (size_t)it[(cc) + PV_MASK_PF] * (size_t)D : (dflt))

/* Elements per two cache lines: the block of the dot loops that carries the prefetches. */
#define PV_MASK_BLK ((pv_index)(128 / sizeof(PV_T)))

/*
 * out[q] = a . x_q for the four rows of a group, in blocks of two cache lines;
 * each block asks for the same two lines of the next group's rows (n0..n3), so
 * the loads spread over the arithmetic.  Shared by both pair passes.
 */
PV_INLINE void
PV_FN(mask_dot4_ahead)(pv_index D, const PV_T *PV_RESTRICT a, const PV_T *PV_RESTRICT x0,
                       const PV_T *PV_RESTRICT x1, const PV_T *PV_RESTRICT x2,
                       const PV_T *PV_RESTRICT x3, const PV_T *n0, const PV_T *n1,
                       const PV_T *n2, const PV_T *n3, PV_T *out)
{
    PV_T t0 = 0, t1 = 0, t2 = 0, t3 = 0;
    for (pv_index d0 = 0; d0 < D; d0 += PV_MASK_BLK) {
        const pv_index d1 = d0 + PV_MASK_BLK < D ? d0 + PV_MASK_BLK : D;
        mask_prefetch_row(n0 + d0, (size_t)(d1 - d0) * sizeof(PV_T));
        mask_prefetch_row(n1 + d0, (size_t)(d1 - d0) * sizeof(PV_T));
        mask_prefetch_row(n2 + d0, (size_t)(d1 - d0) * sizeof(PV_T));
        mask_prefetch_row(n3 + d0, (size_t)(d1 - d0) * sizeof(PV_T));
        PV_T g0 = 0, g1 = 0, g2 = 0, g3 = 0;
#pragma omp simd reduction(+ : g0, g1, g2, g3)
        for (pv_index d = d0; d < d1; d++) {
            const PV_T ad = a[d];
            g0 += ad * x0[d];
            g1 += ad * x1[d];
            g2 += ad * x2[d];
            g3 += ad * x3[d];
        }
        t0 += g0;
        t1 += g1;
        t2 += g2;
        t3 += g3;
    }
    out[0] = t0;
    out[1] = t1;
    out[2] = t2;
    out[3] = t3;
}

/*
 * Pass 1 over the 1 + n_neg pairs of one row: r'_n, Q_b = sum_c r_n x_i and the row's
 * loss.  Pairs go four at a time (four independent dot products sharing the loads of
 * hz, one fused update of q), then one at a time; the order is fixed.
 */
PV_HOT static void
PV_FN(mask_pass1_row)(pv_index D, pv_index d_id, pv_index n1, const PV_T *PV_RESTRICT uid,
                      const PV_T *PV_RESTRICT hz, const PV_T *PV_RESTRICT V,
                      const PV_T *PV_RESTRICT X, const int64_t *PV_RESTRICT it,
                      pv_index it_avail, PV_T bu, const PV_T *PV_RESTRICT beta_i,
                      const double *w, PV_T *PV_RESTRICT q, PV_T *PV_RESTRICT rp,
                      double *row_loss)
{
    const PV_T w0 = (PV_T)w[0], w1 = (PV_T)w[1], w2 = (PV_T)w[2], w3 = (PV_T)w[3];
    const PV_T inv_neg = n1 > 1 ? (PV_T)1 / (PV_T)(n1 - 1) : (PV_T)0;
    double lsum = 0.0;
    for (pv_index d = 0; d < D; d++) {
        q[d] = 0;
    }
    pv_index c = 0;
    for (; c + 4 <= n1; c += 4) {
        for (int k = 0; k < 4; k++) {   /* id rows and betas of the next group */
            if (c + k + PV_MASK_PF < it_avail) {
                const int64_t ia = it[c + k + PV_MASK_PF];
                mask_prefetch_row(V + (size_t)ia * (size_t)d_id, (size_t)d_id * sizeof(PV_T));
                mask_prefetch_row(beta_i + ia, sizeof(PV_T));
            }
        }
        const PV_T *PV_RESTRICT x0 = X + (size_t)it[c] * (size_t)D;
        const PV_T *PV_RESTRICT x1 = X + (size_t)it[c + 1] * (size_t)D;
        const PV_T *PV_RESTRICT x2 = X + (size_t)it[c + 2] * (size_t)D;
        const PV_T *PV_RESTRICT x3 = X + (size_t)it[c + 3] * (size_t)D;
        const PV_T *n0 = PV_MASK_AHEAD(c, x0), *n1p = PV_MASK_AHEAD(c + 1, x0);
        const PV_T *n2 = PV_MASK_AHEAD(c + 2, x0), *n3 = PV_MASK_AHEAD(c + 3, x0);
        const PV_T *PV_RESTRICT v0 = V + (size_t)it[c] * (size_t)d_id;
        const PV_T *PV_RESTRICT v1 = V + (size_t)it[c + 1] * (size_t)d_id;
        const PV_T *PV_RESTRICT v2 = V + (size_t)it[c + 2] * (size_t)d_id;
        const PV_T *PV_RESTRICT v3 = V + (size_t)it[c + 3] * (size_t)d_id;
        PV_T b0 = 0, b1 = 0, b2 = 0, b3 = 0;
#pragma omp simd reduction(+ : b0, b1, b2, b3)
        for (pv_index k = 0; k < d_id; k++) {
            const PV_T uk = uid[k];
            b0 += uk * v0[k];
            b1 += uk * v1[k];
            b2 += uk * v2[k];
            b3 += uk * v3[k];
        }
        PV_T f[4];
        PV_FN(mask_dot4_ahead)(D, hz, x0, x1, x2, x3, n0, n1p, n2, n3, f);
        const PV_T s[4] = {b0 + f[0], b1 + f[1], b2 + f[2], b3 + f[3]};
        PV_T r[4];
        for (int k = 0; k < 4; k++) {
            const PV_T bb = bu * beta_i[it[c + k]];
            const int pos = c + k == 0;
            const PV_T wgt = pos ? w0 + w1 * bb : (w2 + w3 * bb) * inv_neg;
            r[k] = PV_FN(mask_pair_terms)(s[k], pos, wgt, rp + c + k, &lsum);
        }
        const PV_T r0 = r[0], r1 = r[1], r2 = r[2], r3 = r[3];
#pragma omp simd
        for (pv_index d = 0; d < D; d++) {
            q[d] += (r0 * x0[d] + r1 * x1[d]) + (r2 * x2[d] + r3 * x3[d]);
        }
    }
    for (; c < n1; c++) {
        PV_MASK_PREFETCH_PAIR(c);
        const PV_T *PV_RESTRICT xi = X + (size_t)it[c] * (size_t)D;
        const PV_T *PV_RESTRICT vi = V + (size_t)it[c] * (size_t)d_id;
        PV_T b0 = 0, f0 = 0;
#pragma omp simd reduction(+ : b0)
        for (pv_index k = 0; k < d_id; k++) {
            b0 += uid[k] * vi[k];
        }
#pragma omp simd reduction(+ : f0)
        for (pv_index d = 0; d < D; d++) {
            f0 += hz[d] * xi[d];
        }
        const PV_T bb = bu * beta_i[it[c]];
        const int pos = c == 0;
        const PV_T wgt = pos ? w0 + w1 * bb : (w2 + w3 * bb) * inv_neg;
        const PV_T r0 = PV_FN(mask_pair_terms)(b0 + f0, pos, wgt, rp + c, &lsum);
#pragma omp simd
        for (pv_index d = 0; d < D; d++) {
            q[d] += r0 * xi[d];
        }
    }
    *row_loss = lsum;
}

/*
 * Pass 2 over one row: T_b = sum_c r'_n t_n x_i with t_n = (k_b o z_e).x_i, four pairs
 * at a time as in pass 1.
 */
PV_HOT static void
PV_FN(mask_pass2_row)(pv_index D, pv_index n1, const PV_T *PV_RESTRICT kz,
                      const PV_T *PV_RESTRICT X, const int64_t *PV_RESTRICT it,
                      pv_index it_avail, const PV_T *PV_RESTRICT rp, PV_T *PV_RESTRICT tr)
{
    const PV_T *V = NULL, *beta_i = NULL;   /* no id rows to prefetch in this pass */
    const pv_index d_id = 0;
    for (pv_index d = 0; d < D; d++) {
        tr[d] = 0;
    }
    pv_index c = 0;
    for (; c + 4 <= n1; c += 4) {
        const PV_T *PV_RESTRICT x0 = X + (size_t)it[c] * (size_t)D;
        const PV_T *PV_RESTRICT x1 = X + (size_t)it[c + 1] * (size_t)D;
        const PV_T *PV_RESTRICT x2 = X + (size_t)it[c + 2] * (size_t)D;
        const PV_T *PV_RESTRICT x3 = X + (size_t)it[c + 3] * (size_t)D;
        const PV_T *n0 = PV_MASK_AHEAD(c, x0), *n1p = PV_MASK_AHEAD(c + 1, x0);
        const PV_T *n2 = PV_MASK_AHEAD(c + 2, x0), *n3 = PV_MASK_AHEAD(c + 3, x0);
        PV_T t[4];
        PV_FN(mask_dot4_ahead)(D, kz, x0, x1, x2, x3, n0, n1p, n2, n3, t);
        const PV_T c0 = rp[c] * t[0], c1 = rp[c + 1] * t[1], c2 = rp[c + 2] * t[2],
                   c3 = rp[c + 3] * t[3];
#pragma omp simd
        for (pv_index d = 0; d < D; d++) {
            tr[d] += (c0 * x0[d] + c1 * x1[d]) + (c2 * x2[d] + c3 * x3[d]);
        }
    }
    for (; c < n1; c++) {
        PV_MASK_PREFETCH_PAIR(c);
        const PV_T *PV_RESTRICT xi = X + (size_t)it[c] * (size_t)D;
        PV_T t = 0;
#pragma omp simd reduction(+ : t)
        for (pv_index d = 0; d < D; d++) {
            t += kz[d] * xi[d];
        }
        const PV_T coef = rp[c] * t;
#pragma omp simd
        for (pv_index d = 0; d < D; d++) {
            tr[d] += coef * xi[d];
        }
    }
}

#undef PV_MASK_PREFETCH_PAIR
#undef PV_MASK_AHEAD
#undef PV_MASK_BLK

pv_status
PV_FN(pv_mask_step)(const pv_mask_dims *dims, const pv_mask_loss *loss, const PV_T *U,
                    const PV_T *V, const PV_T *X, const PV_T *W, const PV_T *mu,
                    const PV_T *eps, const int64_t *users, const int64_t *items,
                    const PV_T *beta_u, const PV_T *beta_i, double *loss_env,
                    pv_mask_losses *losses, PV_T *grad_erm, PV_T *grad_irm, void *work,
                    int n_threads)
{
    pv_status st = mask_dims_check(dims);
    if (st != PV_OK) {
        return st;
    }
    if (dims->n_env < 1 || dims->batch < 1) {
        return PV_EINVAL;
    }
    if (n_threads <= 0) {
        n_threads = pv_default_threads();
    }
    n_threads = mask_threads_for(dims, n_threads);
    const pv_index E = dims->n_env, B = dims->batch, D = dims->D, dc = dims->d_c;
    const pv_index d_id = dims->d_id, n1 = dims->n_neg + 1, R = E * B, ldu = d_id + dc;
    const pv_index nch = (D + PV_MASK_COLS - 1) / PV_MASK_COLS;
    if (!pv_blas_fits(R, D, dc) || !pv_blas_fits(B, ldu, 0)) {
        return PV_ERANGE;
    }
    for (pv_index r = 0; r < R; r++) {
        if (users[r] < 0 || users[r] >= dims->n_users) {
            return PV_EINDEX;
        }
    }
    for (pv_index n = 0; n < R * n1; n++) {
        if (items[n] < 0 || items[n] >= dims->n_items) {
            return PV_EINDEX;
        }
    }
    void *owned = NULL;
    if (work == NULL) {
        size_t bytes = PV_FN(pv_mask_step_work)(dims, n_threads);
        owned = mask_alloc(bytes);
        if (owned == NULL) {
            return PV_ENOMEM;
        }
        work = owned;
    }
    PV_FN(mask_ws) ws;
    PV_FN(mask_ws_layout)(dims, n_threads, (char *)work, &ws);

    /* Gates and their clamp indicators (torch's clamp: boundaries pass the gradient). */
    const PV_T sigma = (PV_T)loss->sigma, half = (PV_T)0.5;
    for (pv_index e = 0; e < E; e++) {
        for (pv_index d = 0; d < D; d++) {
            PV_T v = mu[d] + sigma * eps[e * D + d] + half;
            int inside = v >= 0 && v <= 1;
            ws.z[e * D + d] = v < 0 ? (PV_T)0 : (v > 1 ? (PV_T)1 : v);
            ws.ind[e * D + d] = inside ? (PV_T)1 : (PV_T)0;
        }
    }
    const PV_T two_wd2 = (PV_T)(2.0 * loss->wd2);
    const PV_T inv_e = (PV_T)1 / (PV_T)E;
    const pv_index dcD = dc * D;

#pragma omp parallel num_threads(n_threads)
    {
        PV_T *scr = ws.scratch + (size_t)PV_OMP_THREAD_ID() * (size_t)D;

        /* 1. gather the U_c rows of the batch users. */
#pragma omp for schedule(static)
        for (pv_index r = 0; r < R; r++) {
            const PV_T *src = U + (size_t)users[r] * (size_t)ldu + d_id;
            for (pv_index k = 0; k < dc; k++) {
                ws.Pc[r * dc + k] = src[k];
            }
        }

        /* 2. H_e = P_e W, on fixed (environment, column block) tiles. */
#pragma omp for schedule(dynamic, 1)
        for (pv_index t = 0; t < E * nch; t++) {
            pv_index e = t / nch, j0 = (t % nch) * PV_MASK_COLS;
            pv_index nc = D - j0 < PV_MASK_COLS ? D - j0 : PV_MASK_COLS;
            PV_GEMM(PvRowMajor, PvNoTrans, PvNoTrans, (pv_blas_int)B, (pv_blas_int)nc,
                    (pv_blas_int)dc, (PV_T)1, ws.Pc + e * B * dc, (pv_blas_int)dc, W + j0,
                    (pv_blas_int)D, (PV_T)0, ws.H + e * B * D + j0, (pv_blas_int)D);
        }

        /* 3. pass 1: scores, loss, r', Q_b. */
#pragma omp for schedule(dynamic, 4)
        for (pv_index r = 0; r < R; r++) {
            const pv_index e = r / B;
            const PV_T *h = ws.H + r * D, *z = ws.z + e * D;
            for (pv_index d = 0; d < D; d++) {
                scr[d] = h[d] * z[d];
            }
            const int64_t u = users[r];
            PV_FN(mask_pass1_row)(D, d_id, n1, U + (size_t)u * (size_t)ldu, scr, V, X,
                                  items + r * n1, (R - r) * n1, beta_u[u], beta_i, loss->w, ws.Q + r * D,
                                  ws.rp + r * n1, ws.row_loss + r);
        }

        /* 4. Gt_e = (P_e^T Q_e) o z_e. */
#pragma omp for schedule(dynamic, 1)
        for (pv_index t = 0; t < E * nch; t++) {
            pv_index e = t / nch, j0 = (t % nch) * PV_MASK_COLS;
            pv_index nc = D - j0 < PV_MASK_COLS ? D - j0 : PV_MASK_COLS;
            PV_T *g = ws.Gt + e * dcD + j0;
            const PV_T *z = ws.z + e * D + j0;
            PV_GEMM(PvRowMajor, PvTrans, PvNoTrans, (pv_blas_int)dc, (pv_blas_int)nc,
                    (pv_blas_int)B, (PV_T)1, ws.Pc + e * B * dc, (pv_blas_int)dc,
                    ws.Q + e * B * D + j0, (pv_blas_int)D, (PV_T)0, g, (pv_blas_int)D);
            for (pv_index k = 0; k < dc; k++) {
                for (pv_index d = 0; d < nc; d++) {
                    g[k * D + d] *= z[d];
                }
            }
        }

        /* 5. per column block: a_mu, Gbar, P, M_e, a_W, the direct mu term of b, L_IRM. */
#pragma omp for schedule(dynamic, 1)
        for (pv_index j = 0; j < nch; j++) {
            pv_index j0 = j * PV_MASK_COLS;
            pv_index nc = D - j0 < PV_MASK_COLS ? D - j0 : PV_MASK_COLS;
            PV_T acc[PV_MASK_COLS], se[PV_MASK_COLS], p2[PV_MASK_COLS];
            double irm[PV_MASK_COLS];
            for (pv_index d = 0; d < nc; d++) {
                acc[d] = 0;
                p2[d] = 0;
                irm[d] = 0.0;
            }
            for (pv_index e = 0; e < E; e++) {
                for (pv_index d = 0; d < nc; d++) {
                    se[d] = 0;
                }
                for (pv_index b = 0; b < B; b++) {
                    const PV_T *h = ws.H + (e * B + b) * D + j0, *q = ws.Q + (e * B + b) * D + j0;
                    for (pv_index d = 0; d < nc; d++) {
                        se[d] += h[d] * q[d];
                    }
                }
                for (pv_index d = 0; d < nc; d++) {
                    acc[d] += ws.ind[e * D + j0 + d] * se[d];
                }
            }
            for (pv_index d = 0; d < nc; d++) {
                grad_erm[dcD + j0 + d] = acc[d] * inv_e;
            }
            for (pv_index k = 0; k < dc; k++) {
                for (pv_index d = 0; d < nc; d++) {
                    const pv_index kd = k * D + j0 + d;
                    const PV_T m5 = mu[j0 + d] + half, cc = m5 * m5;
                    PV_T gbar = 0, p = 0;
                    for (pv_index e = 0; e < E; e++) {
                        gbar += ws.Gt[e * dcD + kd];
                    }
                    gbar *= inv_e;
                    for (pv_index e = 0; e < E; e++) {
                        PV_T dv = ws.Gt[e * dcD + kd] - gbar;
                        p += dv * dv;
                    }
                    for (pv_index e = 0; e < E; e++) {
                        ws.Gt[e * dcD + kd] = (PV_T)4 * (ws.Gt[e * dcD + kd] - gbar) * p * cc;
                    }
                    grad_erm[kd] = gbar + two_wd2 * W[kd];
                    p2[d] += p * p;
                    irm[d] += (double)p * (double)p * (double)cc;
                }
            }
            for (pv_index d = 0; d < nc; d++) {
                grad_irm[dcD + j0 + d] = (PV_T)2 * (mu[j0 + d] + half) * p2[d];
                ws.col_irm[j0 + d] = irm[d];
            }
        }

        /* 6. K_e = P_e M_e. */
#pragma omp for schedule(dynamic, 1)
        for (pv_index t = 0; t < E * nch; t++) {
            pv_index e = t / nch, j0 = (t % nch) * PV_MASK_COLS;
            pv_index nc = D - j0 < PV_MASK_COLS ? D - j0 : PV_MASK_COLS;
            PV_GEMM(PvRowMajor, PvNoTrans, PvNoTrans, (pv_blas_int)B, (pv_blas_int)nc,
                    (pv_blas_int)dc, (PV_T)1, ws.Pc + e * B * dc, (pv_blas_int)dc,
                    ws.Gt + e * dcD + j0, (pv_blas_int)D, (PV_T)0, ws.K + e * B * D + j0,
                    (pv_blas_int)D);
        }

        /* 7. pass 2: T_b; then Q_b <- h o T + k o Q (mu part of the VJP), T_b <- T_b o z. */
#pragma omp for schedule(dynamic, 4)
        for (pv_index r = 0; r < R; r++) {
            const pv_index e = r / B;
            const PV_T *z = ws.z + e * D, *k = ws.K + r * D, *h = ws.H + r * D;
            PV_T *q = ws.Q + r * D, *tr = ws.T + r * D;
            for (pv_index d = 0; d < D; d++) {
                scr[d] = k[d] * z[d];
            }
            PV_FN(mask_pass2_row)(D, n1, scr, X, items + r * n1, (R - r) * n1, ws.rp + r * n1,
                                  tr);
            for (pv_index d = 0; d < D; d++) {
                q[d] = h[d] * tr[d] + k[d] * q[d];
                tr[d] *= z[d];
            }
        }

        /* 8. per column block: b_mu (indicator per environment) and b_W = Pc^T (T o z). */
#pragma omp for schedule(dynamic, 1)
        for (pv_index j = 0; j < nch; j++) {
            pv_index j0 = j * PV_MASK_COLS;
            pv_index nc = D - j0 < PV_MASK_COLS ? D - j0 : PV_MASK_COLS;
            PV_T acc[PV_MASK_COLS], se[PV_MASK_COLS];
            for (pv_index d = 0; d < nc; d++) {
                acc[d] = 0;
            }
            for (pv_index e = 0; e < E; e++) {
                for (pv_index d = 0; d < nc; d++) {
                    se[d] = 0;
                }
                for (pv_index b = 0; b < B; b++) {
                    const PV_T *q = ws.Q + (e * B + b) * D + j0;
                    for (pv_index d = 0; d < nc; d++) {
                        se[d] += q[d];
                    }
                }
                for (pv_index d = 0; d < nc; d++) {
                    acc[d] += ws.ind[e * D + j0 + d] * se[d];
                }
            }
            for (pv_index d = 0; d < nc; d++) {
                grad_irm[dcD + j0 + d] += acc[d];
            }
            PV_GEMM(PvRowMajor, PvTrans, PvNoTrans, (pv_blas_int)dc, (pv_blas_int)nc,
                    (pv_blas_int)R, (PV_T)1, ws.Pc, (pv_blas_int)dc, ws.T + j0, (pv_blas_int)D,
                    (PV_T)0, grad_irm + j0, (pv_blas_int)D);
        }
    }

    /* Losses in float64, fixed order. */
    double w2 = 0.0, reg = 0.0, erm = 0.0, irm = 0.0;
    for (pv_index kd = 0; kd < dcD; kd++) {
        w2 += (double)W[kd] * (double)W[kd];
    }
    for (pv_index d = 0; d < D; d++) {
        reg += (double)mu[d] * (double)mu[d];
        irm += ws.col_irm[d];
    }
    for (pv_index e = 0; e < E; e++) {
        double le = loss->wd2 * w2;
        for (pv_index b = 0; b < B; b++) {
            le += ws.row_loss[e * B + b];
        }
        if (loss_env != NULL) {
            loss_env[e] = le;
        }
        erm += le;
    }
    losses->erm = erm / (double)E;
    losses->irm = irm;
    losses->reg = reg;
    free(owned);

    int finite = isfinite(losses->erm) && isfinite(losses->irm);
    for (pv_index k = 0; k < dcD + D && finite; k++) {
        finite = isfinite(grad_erm[k]) && isfinite(grad_irm[k]);
    }
    return finite ? PV_OK : PV_EDOM;
}

pv_status
PV_FN(pv_mask_weigh)(const pv_mask_weight_cfg *cfg, pv_index n, const PV_T *a, const PV_T *b,
                     double l_erm, double l_irm, pv_mask_weights *out)
{
    if (n < 0 || cfg->scope_offset < 0 || cfg->scope_offset > n) {
        return PV_EINVAL;
    }
    double aa = 0.0, ab = 0.0, bb = 0.0;
    for (pv_index k = cfg->scope_offset; k < n; k++) {
        double x = (double)a[k], y = (double)b[k];
        aa += x * x;
        ab += x * y;
        bb += y * y;
    }
    return mask_weigh_gram(cfg, aa, ab, bb, l_erm, l_irm, out);
}
