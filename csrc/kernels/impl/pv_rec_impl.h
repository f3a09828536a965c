/*
 * Type-generic body of pv_rec.c, included once per dtype with
 *   PV_T (float or double), PV_FN(name) (name##_f32 / _f64), PV_EXP, PV_LOG1P;
 *   its GEMMs go through pv_gemm_blocked (pv_blas.h).
 * See pv_rec.h for the contract and method.md §1 for the maths.
 */

/* Partial sums per dot product: lane l adds the elements k = l (mod PV_LANES / 2).
 * The summation order is set by the code, never by the thread count, and the
 * compiler can vectorise the lane loops. */
#ifndef PV_LANES
#define PV_LANES 32
#endif

PV_HOT static void
PV_FN(axpy)(pv_index n, PV_T alpha, const PV_T *PV_RESTRICT x, PV_T *PV_RESTRICT y)
{
    for (pv_index k = 0; k < n; k++) {
        y[k] += alpha * x[k];
    }
}

/* BCE of a logit s against label y in {0, 1}, and its derivative sigmoid(s) - y,
 * sharing one exponential: with e = exp(-|s|),
 *   softplus(s) = max(s, 0) + log1p(e),   sigmoid(s) = 1 / (1 + e) if s >= 0 else e / (1 + e). */
static inline PV_T
PV_FN(bce)(PV_T s, int positive, PV_T *dloss)
{
    const PV_T e = PV_EXP(s < 0 ? s : -s);
    const PV_T sig = s >= 0 ? 1 / (1 + e) : e / (1 + e);
    const PV_T z = positive ? -s : s; /* loss = softplus(z) */
    *dloss = positive ? sig - 1 : sig;
    return (z > 0 ? z : 0) + PV_LOG1P(e);
}

/* Ask for the next pair's rows early: the gathers of x_j and V_j are what
 * bounds the pair loop, not arithmetic. */
static inline void
PV_FN(prefetch_rows)(const PV_T *x, pv_index n)
{
    const pv_index per_line = 64 / (pv_index)sizeof(PV_T);
    for (pv_index k = 0; k < n; k += per_line) {
        __builtin_prefetch(x + k, 0, 3);
    }
}

pv_index
PV_FN(pv_rec_workspace)(pv_index n_rows, pv_index n_cols, pv_rec_dims dims)
{
    pv_index du = dims.d_id + dims.d_c, D = dims.n_feat;
    /* Ub, T (ungated), Tg (gated), A, resid, row sums, c.b, row losses, dUid, dUc */
    return n_rows * (du + 3 * D + n_cols + 3 + dims.d_id + dims.d_c);
}

/* Pairs handled together in the row pass: four independent gathers in flight. */
#define PV_GROUP 4

/*
 * dots[q] = a . x_q for q < PV_GROUP, one pass over a; the PV_LANES partial sums
 * of each dot run in a fixed order (the same for any thread count).
 */
PV_HOT static void
PV_FN(dot4)(pv_index n, const PV_T *PV_RESTRICT a, const PV_T *PV_RESTRICT x0,
            const PV_T *PV_RESTRICT x1, const PV_T *PV_RESTRICT x2, const PV_T *PV_RESTRICT x3,
            PV_T *PV_RESTRICT dots)
{
    enum { L = PV_LANES / 2 };
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
PV_FN(axpy4)(pv_index n, const PV_T *PV_RESTRICT r, const PV_T *PV_RESTRICT x0,
             const PV_T *PV_RESTRICT x1, const PV_T *PV_RESTRICT x2, const PV_T *PV_RESTRICT x3,
             PV_T *PV_RESTRICT y)
{
    const PV_T r0 = r[0], r1 = r[1], r2 = r[2], r3 = r[3];
    for (pv_index k = 0; k < n; k++) {
        y[k] += (r0 * x0[k] + r1 * x1[k]) + (r2 * x2[k] + r3 * x3[k]);
    }
}

/*
 * The per-row pass: scores of the row's positive and negatives, their loss,
 * residuals r = w (sigmoid(s) - y), and the row's accumulations
 * a_r = sum_c r_c x_c (for the projection side) and dUid_r = sum_c r_c V_c.
 * Pairs go in groups of PV_GROUP so their row gathers overlap; a short last
 * group borrows the row's first item with a zero residual (x_c and V_c are only
 * read, and a zero residual adds nothing).
 */
PV_HOT static PV_T
PV_FN(row_pass)(const PV_FN(pv_rec_model) *m, pv_index n_cols, int64_t user,
                const int64_t *PV_RESTRICT items, const PV_T *PV_RESTRICT uid,
                const PV_T *PV_RESTRICT t_row, PV_T cb, PV_T *PV_RESTRICT resid,
                PV_T *PV_RESTRICT a_row, PV_T *PV_RESTRICT duid, PV_T *row_sum, int *bad)
{
    const pv_index d_id = m->dims.d_id, D = m->dims.n_feat;
    const PV_T bu = m->beta_u[user];
    const PV_T inv_neg = n_cols > 1 ? (PV_T)1 / (PV_T)(n_cols - 1) : 0;
    PV_T loss = 0, rsum = 0;
    for (pv_index k = 0; k < D; k++) {
        a_row[k] = 0;
    }
    for (pv_index k = 0; k < d_id; k++) {
        duid[k] = 0;
    }
    for (pv_index c0 = 0; c0 < n_cols; c0 += PV_GROUP) {
        const pv_index g = n_cols - c0 < PV_GROUP ? n_cols - c0 : PV_GROUP;
        const PV_T *x[PV_GROUP], *v[PV_GROUP];
        int64_t j[PV_GROUP];
        for (pv_index q = 0; q < PV_GROUP; q++) {
            j[q] = items[q < g ? c0 + q : 0];
            x[q] = m->X + j[q] * D;
            v[q] = m->V + j[q] * d_id;
        }
        for (pv_index q = c0 + PV_GROUP; q < c0 + 2 * PV_GROUP && q < n_cols; q++) {
            PV_FN(prefetch_rows)(m->X + items[q] * D, D);
            PV_FN(prefetch_rows)(m->V + items[q] * d_id, d_id);
        }
        PV_T sx[PV_GROUP], sv[PV_GROUP], r[PV_GROUP];
        PV_FN(dot4)(D, t_row, x[0], x[1], x[2], x[3], sx);
        PV_FN(dot4)(d_id, uid, v[0], v[1], v[2], v[3], sv);
        for (pv_index q = 0; q < PV_GROUP; q++) {
            r[q] = 0;
            if (q >= g) {
                continue;
            }
            const pv_index c = c0 + q;
            PV_T s = sv[q] + sx[q] + cb;
            if (!(s == s) || s - s != 0) {
                *bad = 1;
                s = 0;
            }
            PV_T w, dl;
            if (c == 0) {
                w = m->w[0] + m->w[1] * bu * m->beta_i[j[q]];
            } else {
                w = (m->w[2] + m->w[3] * bu * m->beta_i[j[q]]) * inv_neg;
            }
            loss += w * PV_FN(bce)(s, c == 0, &dl);
            r[q] = w * dl;
            resid[c] = r[q];
            rsum += r[q];
        }
        PV_FN(axpy4)(D, r, x[0], x[1], x[2], x[3], a_row);
        PV_FN(axpy4)(d_id, r, v[0], v[1], v[2], v[3], duid);
    }
    *row_sum = rsum;
    return loss;
}

pv_status
PV_FN(pv_rec_batch)(const PV_FN(pv_rec_model) *m, pv_index B, pv_index C,
                    const int64_t *users, const int64_t *items, PV_FN(pv_rec_grad) *grad,
                    PV_T *work, double *loss_out, int n_threads)
{
    const pv_rec_dims dm = m->dims;
    const pv_index d_id = dm.d_id, d_c = dm.d_c, du = d_id + d_c, D = dm.n_feat;
    if (B < 0 || C < 1) {
        return PV_EINVAL;
    }
    if (!pv_blas_fits(B, D, du)) {
        return PV_ERANGE;
    }
    pv_status ids = pv_rec_check_ids(B, C, users, items, dm.n_users, dm.n_items,
                                     grad->user_slot, grad->n_user_slots, grad->item_slot,
                                     grad->n_item_slots, NULL);
    if (ids != PV_OK) {
        return ids;
    }
    PV_T *Ub = work;               /* B x du: the batch's user rows */
    PV_T *T = Ub + B * du;         /* B x D: W^T U^c (ungated) */
    PV_T *Tg = T + B * D;          /* B x D: g o T, the user in feature space */
    PV_T *A = Tg + B * D;          /* B x D: sum_c r x_c, then gated */
    PV_T *resid = A + B * D;       /* B x C */
    PV_T *rsum = resid + B * C;    /* B */
    PV_T *cb = rsum + B;           /* B: U^c . b */
    PV_T *rloss = cb + B;          /* B: per-row loss */
    PV_T *dUid = rloss + B;        /* B x d_id */
    PV_T *dUc = dUid + B * d_id;   /* B x d_c */

    for (pv_index r = 0; r < B; r++) {
        const PV_T *src = m->U + users[r] * du;
        for (pv_index k = 0; k < du; k++) {
            Ub[r * du + k] = src[k];
        }
        PV_T s = 0;
        if (m->b != NULL) {
            for (pv_index k = 0; k < d_c; k++) {
                s += src[d_id + k] * m->b[k];
            }
        }
        cb[r] = s;
    }
    if (B > 0 && D > 0 && d_c > 0) {
        PV_FN(pv_gemm_blocked)(PV_SPLIT_ROWS, PvNoTrans, PvNoTrans, B, D, d_c, 1, Ub + d_id,
                               du, m->W, D, 0, T, D, n_threads);
    } else {
        for (pv_index k = 0; k < B * D; k++) {
            T[k] = 0;
        }
    }
    for (pv_index r = 0; r < B; r++) {
        for (pv_index k = 0; k < D; k++) {
            Tg[r * D + k] = m->g ? T[r * D + k] * m->g[k] : T[r * D + k];
        }
    }

    int bad = 0;
#pragma omp parallel for num_threads(n_threads) schedule(static) reduction(| : bad)
    for (pv_index r = 0; r < B; r++) {
        rloss[r] = PV_FN(row_pass)(m, C, users[r], items + r * C, Ub + r * du, Tg + r * D, cb[r],
                                   resid + r * C, A + r * D, dUid + r * d_id, &rsum[r], &bad);
    }
    double loss = 0;
    for (pv_index r = 0; r < B; r++) {
        loss += (double)rloss[r];
    }
    *loss_out = loss;
    if (bad || !(loss == loss) || loss - loss != 0) {
        return PV_EDOM;
    }

    /* Gate gradient: dL/dg_d = sum_r T[r,d] A[r,d] (each d summed over rows in order). */
    if (grad->gg != NULL) {
        for (pv_index k = 0; k < D; k++) {
            grad->gg[k] = 0;
        }
        for (pv_index r = 0; r < B; r++) {
            for (pv_index k = 0; k < D; k++) {
                grad->gg[k] += T[r * D + k] * A[r * D + k];
            }
        }
    }
    if (m->g != NULL) {
        for (pv_index r = 0; r < B; r++) {
            for (pv_index k = 0; k < D; k++) {
                A[r * D + k] *= m->g[k];
            }
        }
    }
    /* dU^c_r = W (g o a_r) + (sum_c r_c) b;  dW = U^c_B^T (A o g);  db = sum_r rsum_r U^c_r */
    if (B > 0 && d_c > 0 && D > 0) {
        PV_FN(pv_gemm_blocked)(PV_SPLIT_ROWS, PvNoTrans, PvTrans, B, d_c, D, 1, A, D, m->W, D,
                               0, dUc, d_c, n_threads);
        PV_FN(pv_gemm_blocked)(PV_SPLIT_COLS, PvTrans, PvNoTrans, d_c, D, B, 1, Ub + d_id, du,
                               A, D, 0, grad->gW, D, n_threads);
    } else {
        for (pv_index k = 0; k < B * d_c; k++) {
            dUc[k] = 0;
        }
        for (pv_index k = 0; k < d_c * D; k++) {
            grad->gW[k] = 0;
        }
    }
    if (m->b != NULL) {
        for (pv_index r = 0; r < B; r++) {
            PV_FN(axpy)(d_c, rsum[r], m->b, dUc + r * d_c);
        }
    }
    if (grad->gb != NULL) {
        for (pv_index k = 0; k < d_c; k++) {
            grad->gb[k] = 0;
        }
        for (pv_index r = 0; r < B; r++) {
            PV_FN(axpy)(d_c, rsum[r], Ub + r * du + d_id, grad->gb);
        }
    }
    /* Scatter the user rows, in row order. */
    for (pv_index r = 0; r < B; r++) {
        PV_T *dst = grad->gU + (pv_index)grad->user_slot[users[r]] * du;
        PV_FN(axpy)(d_id, 1, dUid + r * d_id, dst);
        PV_FN(axpy)(d_c, 1, dUc + r * d_c, dst + d_id);
    }
    /* Scatter dV_j += r U^id: item slot s belongs to thread s mod n, and each
     * thread walks the pairs in order, so every sum has one fixed order. */
#pragma omp parallel num_threads(n_threads)
    {
        int nt = 1, tid = 0;
#ifdef _OPENMP
        nt = omp_get_num_threads();
        tid = omp_get_thread_num();
#endif
        for (pv_index p = 0; p < B * C; p++) {
            int32_t s = grad->item_slot[items[p]];
            if (s % nt != tid) {
                continue;
            }
            PV_FN(axpy)(d_id, resid[p], Ub + (p / C) * du, grad->gV + (pv_index)s * d_id);
        }
    }
    return PV_OK;
}

/* Add l2 * ||p||^2 of rows (all rows when mark is NULL, else rows with mark[r])
 * to *loss and 2 l2 p to their gradient. */
static void
PV_FN(add_l2_rows)(pv_index n_rows, pv_index dim, const PV_T *p, const uint8_t *mark, PV_T l2,
                   PV_T *g, double *loss)
{
    double acc = 0;
    for (pv_index r = 0; r < n_rows; r++) {
        if (mark != NULL && !mark[r]) {
            continue;
        }
        for (pv_index k = 0; k < dim; k++) {
            PV_T v = p[r * dim + k];
            acc += (double)v * v;
            g[r * dim + k] += 2 * l2 * v;
        }
    }
    *loss += (double)l2 * acc;
}

pv_status
PV_FN(pv_rec_loss_grad)(const PV_FN(pv_rec_model) *m, pv_index B, pv_index C,
                        const int64_t *users, const int64_t *items, pv_rec_reg reg, PV_T wd1,
                        PV_T wdi, PV_T wd2, PV_T *dU, PV_T *dV, PV_T *dW, PV_T *db, PV_T *dg,
                        int32_t *user_slot, int32_t *item_slot, uint8_t *user_mark,
                        uint8_t *item_mark, PV_T *work, double *loss, int n_threads)
{
    const pv_rec_dims dm = m->dims;
    const pv_index du = dm.d_id + dm.d_c;
    if (dm.n_users > INT32_MAX || dm.n_items > INT32_MAX) {
        return PV_ERANGE;
    }
    for (pv_index u = 0; u < dm.n_users; u++) {
        user_slot[u] = (int32_t)u;
        user_mark[u] = 0;
    }
    for (pv_index i = 0; i < dm.n_items; i++) {
        item_slot[i] = (int32_t)i;
        item_mark[i] = 0;
    }
    for (pv_index k = 0; k < dm.n_users * du; k++) {
        dU[k] = 0;
    }
    for (pv_index k = 0; k < dm.n_items * dm.d_id; k++) {
        dV[k] = 0;
    }
    PV_FN(pv_rec_grad) g = {dU, dV, dW, db, dg, user_slot, item_slot, dm.n_users, dm.n_items};
    pv_status st = PV_FN(pv_rec_batch)(m, B, C, users, items, &g, work, loss, n_threads);
    if (st != PV_OK || reg == PV_REG_NONE) {
        return st;
    }
    const uint8_t *umark = NULL, *imark = NULL;
    if (reg == PV_REG_BATCH) {
        for (pv_index r = 0; r < B; r++) {
            user_mark[users[r]] = 1;
        }
        for (pv_index p = 0; p < B * C; p++) {
            item_mark[items[p]] = 1;
        }
        umark = user_mark;
        imark = item_mark;
    }
    PV_FN(add_l2_rows)(dm.n_users, du, m->U, umark, wd1, dU, loss);
    PV_FN(add_l2_rows)(dm.n_items, dm.d_id, m->V, imark, wd1 * wdi, dV, loss);
    PV_FN(add_l2_rows)(1, dm.d_c * dm.n_feat, m->W, NULL, wd2, dW, loss);
    if (m->b != NULL && db != NULL) {
        PV_FN(add_l2_rows)(1, dm.d_c, m->b, NULL, wd2, db, loss);
    }
    return PV_OK;
}
