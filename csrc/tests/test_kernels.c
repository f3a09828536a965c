/*
 * test_kernels.c -- the C kernels without Python, for sanitizer and valgrind runs.
 *
 *   make -C csrc/tests asan      AddressSanitizer + UndefinedBehaviorSanitizer
 *   make -C csrc/tests valgrind  memcheck
 *
 * Each check compares a kernel with a direct computation written here, or a
 * property (a permutation, bit-identical results at 1 and 2 threads).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/pv_blas.h"
#include "../kernels/pv_identify.h"
#include "../kernels/pv_lgcn.h"
#include "../kernels/pv_optim.h"
#include "../kernels/pv_rec.h"
#include "../kernels/pv_rng.h"
#include "../kernels/pv_topk.h"
#include "../kernels/pv_train.h"

void PV_CBLAS(openblas_set_num_threads)(int);

static int failures = 0;

#define CHECK(cond, ...)                                                                        \
    do {                                                                                        \
        if (!(cond)) {                                                                          \
            failures++;                                                                         \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                               \
            fprintf(stderr, __VA_ARGS__);                                                       \
            fprintf(stderr, "\n");                                                              \
        }                                                                                       \
    } while (0)

static double
uniform(uint64_t *state)
{
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*state >> 11) / 9007199254740992.0 - 0.5;
}

static void
fill(double *a, pv_index n, uint64_t *st)
{
    for (pv_index k = 0; k < n; k++) {
        a[k] = uniform(st);
    }
}

static double
softplus(double x)
{
    return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
}

/* Loss of one batch computed the reference's way: project every item first. */
static double
direct_loss(const pv_rec_model_f64 *m, pv_index B, pv_index C, const int64_t *users,
            const int64_t *items)
{
    const pv_rec_dims d = m->dims;
    const pv_index du = d.d_id + d.d_c;
    double loss = 0;
    for (pv_index r = 0; r < B; r++) {
        for (pv_index c = 0; c < C; c++) {
            const int64_t j = items[r * C + c];
            const double *u = m->U + users[r] * du;
            double s = 0;
            for (pv_index k = 0; k < d.d_id; k++) {
                s += u[k] * m->V[j * d.d_id + k];
            }
            for (pv_index k = 0; k < d.d_c; k++) {
                double h = m->b ? m->b[k] : 0;
                for (pv_index f = 0; f < d.n_feat; f++) {
                    h += m->W[k * d.n_feat + f] * (m->g ? m->g[f] : 1) * m->X[j * d.n_feat + f];
                }
                s += u[d.d_id + k] * h;
            }
            double bb = m->beta_u[users[r]] * m->beta_i[j];
            loss += c == 0 ? (m->w[0] + m->w[1] * bb) * softplus(-s)
                           : (m->w[2] + m->w[3] * bb) / (double)(C - 1) * softplus(s);
        }
    }
    return loss;
}

static void
test_rec_batch(void)
{
    enum { NU = 6, NI = 9, DID = 3, DC = 2, D = 37, B = 5, C = 4 };
    uint64_t st = 1;
    double U[NU * (DID + DC)], V[NI * DID], W[DC * D], b[DC], g[D], X[NI * D], bu[NU], bi[NI];
    fill(U, NU * (DID + DC), &st);
    fill(V, NI * DID, &st);
    fill(W, DC * D, &st);
    fill(b, DC, &st);
    fill(g, D, &st);
    fill(X, NI * D, &st);
    for (int k = 0; k < NU; k++) {
        bu[k] = 0.5 + uniform(&st);
    }
    for (int k = 0; k < NI; k++) {
        bi[k] = 0.5 + uniform(&st);
    }
    int64_t users[B] = {0, 5, 2, 2, 4}, items[B * C];
    for (int k = 0; k < B * C; k++) {
        items[k] = (k * 7 + 3) % NI;
    }
    pv_rec_model_f64 m = {{NU, NI, DID, DC, D}, U, V, W, b, g, X, bu, bi, {1, 0.5, 2, 0.25}};
    double dU[NU * (DID + DC)], dV[NI * DID], dW[DC * D], db[DC], dg[D];
    int32_t uslot[NU], islot[NI];
    uint8_t umark[NU], imark[NI];
    double *work = malloc(sizeof(double) * (size_t)pv_rec_workspace_f64(B, C, m.dims));
    double loss = 0;
    pv_status s = pv_rec_loss_grad_f64(&m, B, C, users, items, PV_REG_NONE, 0, 1, 0, dU, dV, dW,
                                       db, dg, uslot, islot, umark, imark, work, &loss, 2);
    CHECK(s == PV_OK, "rec_loss_grad status %d", s);
    double want = direct_loss(&m, B, C, users, items);
    CHECK(fabs(loss - want) < 1e-12 * fabs(want), "loss %.17g vs %.17g", loss, want);
    /* One gradient entry per parameter block by central differences. */
    double *params[5] = {U, V, W, b, g}, *grads[5] = {dU, dV, dW, db, dg};
    int at[5] = {2 * (DID + DC) + 4, 3, DC * D - 1, 1, 17};
    for (int p = 0; p < 5; p++) {
        double old = params[p][at[p]], h = 1e-6;
        params[p][at[p]] = old + h;
        double up = direct_loss(&m, B, C, users, items);
        params[p][at[p]] = old - h;
        double down = direct_loss(&m, B, C, users, items);
        params[p][at[p]] = old;
        double fd = (up - down) / (2 * h);
        CHECK(fabs(fd - grads[p][at[p]]) < 1e-7, "gradient block %d: %.12g vs fd %.12g", p,
              grads[p][at[p]], fd);
    }
    items[3] = NI; /* out of range */
    s = pv_rec_loss_grad_f64(&m, B, C, users, items, PV_REG_NONE, 0, 1, 0, dU, dV, dW, db, dg,
                             uslot, islot, umark, imark, work, &loss, 1);
    CHECK(s == PV_EINDEX, "an item id out of range gives PV_EINDEX, got %d", s);
    free(work);
}

static void
test_optim(void)
{
    enum { R = 7, DIM = 5, N = R * DIM };
    float p1[N], p2[N], m1[N] = {0}, v1[N] = {0}, m2[N] = {0}, v2[N] = {0}, g[N];
    uint64_t st = 3;
    for (int k = 0; k < N; k++) {
        p1[k] = p2[k] = (float)uniform(&st);
        g[k] = (float)uniform(&st);
    }
    pv_opt adam = {PV_OPT_ADAM, 0.01f, 0.9f, 0.999f, 1e-8f};
    /* Eager: 4 dense steps, the data gradient only in steps 2 and 4.  Lazy: rows 1 and 5
     * are touched at step 2 only, then a flush to step 4 -- the others are replayed. */
    pv_opt_coef coefs[4];
    pv_opt_coefs(&adam, 1, 4, coefs);
    int32_t done[R] = {0};
    int64_t touched[2] = {1, 5};
    float g_touched[2 * DIM];
    memcpy(g_touched, g + 1 * DIM, sizeof(float) * DIM);
    memcpy(g_touched + DIM, g + 5 * DIM, sizeof(float) * DIM);
    float g_eager[N] = {0};
    memcpy(g_eager + 1 * DIM, g + 1 * DIM, sizeof(float) * DIM);
    memcpy(g_eager + 5 * DIM, g + 5 * DIM, sizeof(float) * DIM);
    for (int t = 1; t <= 4; t++) {
        CHECK(pv_opt_dense_f32(&adam, N, p1, t == 2 ? g_eager : NULL, m1, v1, 0.1f, t, 2) ==
                  PV_OK,
              "dense");
    }
    CHECK(pv_opt_lazy_rows_f32(&adam, R, DIM, 2, touched, p2, g_touched, m2, v2, 0.1f, done, 2,
                               coefs, 1) == PV_OK,
          "lazy rows");
    CHECK(pv_opt_lazy_rows_f32(&adam, R, DIM, 0, NULL, p2, NULL, m2, v2, 0.1f, done, 4, coefs,
                               2) == PV_OK,
          "lazy flush");
    CHECK(memcmp(p1, p2, sizeof(p1)) == 0 && memcmp(m1, m2, sizeof(m1)) == 0,
          "deferred steps replayed equal eager steps bit for bit");
    /* First Adam step moves each element by lr * sign(g) (bias-corrected m / sqrt(v)). */
    float p[1] = {0}, gm[1] = {0}, gv[1] = {0}, gg[1] = {3};
    pv_opt_dense_f32(&adam, 1, p, gg, gm, gv, 0, 1, 1);
    CHECK(fabsf(p[0] + 0.01f) < 1e-6f, "first Adam step %.9g", p[0]);
    pv_opt ada = {PV_OPT_ADAGRAD, 0.1f, 0, 0, 1e-10f};
    p[0] = 1;
    gm[0] = 0;
    gg[0] = 2;
    pv_opt_dense_f32(&ada, 1, p, gg, gm, NULL, 0, 1, 1);
    CHECK(fabsf(p[0] - 0.9f) < 1e-6f, "first Adagrad step %.9g", p[0]);
    int64_t rows[1] = {R};
    CHECK(pv_opt_rows_f32(&adam, R, DIM, 1, rows, p1, g, m1, v1, 0, 4, 1) == PV_EINDEX,
          "rows out of range");
}

static void
test_rng(void)
{
    enum { N = 1000 };
    int64_t perm[N], seen[N] = {0}, a[N], b[N];
    pv_permutation(N, 42, PV_STREAM_SHUFFLE, 0, perm);
    for (int k = 0; k < N; k++) {
        CHECK(perm[k] >= 0 && perm[k] < N && !seen[perm[k]], "not a permutation at %d", k);
        if (perm[k] >= 0 && perm[k] < N) {
            seen[perm[k]] = 1;
        }
    }
    pv_uniform_ints(N, 17, 5, PV_STREAM_NEGATIVE, 3, a, 1);
    pv_uniform_ints(N, 17, 5, PV_STREAM_NEGATIVE, 3, b, 2);
    CHECK(memcmp(a, b, sizeof(a)) == 0, "uniform_ints depends on the thread count");
    for (int k = 0; k < N; k++) {
        CHECK(a[k] >= 0 && a[k] < 17, "draw out of range");
    }
}

/* A small training problem, trained one epoch at the given thread count. */
static void
train_once(int n_threads, float *out_U, double *out_loss)
{
    enum { NU = 30, NI = 50, DID = 4, DC = 4, D = 40, NP = 400 };
    static float U[NU * (DID + DC)], V[NI * DID], W[DC * D], b[DC], X[NI * D], bu[NU], bi[NI];
    static float s[2][NU * (DID + DC)], sv[2][NI * DID], sw[2][DC * D], sb[2][DC];
    int64_t users[NP], items[NP];
    uint64_t st = 9;
    for (int k = 0; k < NU * (DID + DC); k++) {
        U[k] = (float)(0.1 * uniform(&st));
    }
    for (int k = 0; k < NI * DID; k++) {
        V[k] = (float)(0.1 * uniform(&st));
    }
    for (int k = 0; k < DC * D; k++) {
        W[k] = (float)(0.1 * uniform(&st));
    }
    for (int k = 0; k < NI * D; k++) {
        X[k] = (float)uniform(&st);
    }
    for (int k = 0; k < NU; k++) {
        bu[k] = 0.7f;
    }
    for (int k = 0; k < NI; k++) {
        bi[k] = 0.4f;
    }
    memset(b, 0, sizeof(b));
    memset(s, 0, sizeof(s));
    memset(sv, 0, sizeof(sv));
    memset(sw, 0, sizeof(sw));
    memset(sb, 0, sizeof(sb));
    for (int k = 0; k < NP; k++) {
        users[k] = (k * 13) % NU;
        items[k] = (k * 7) % NI;
    }
    pv_train_model m = {{NU, NI, DID, DC, D}, U, V, W, b, NULL, X, bu, bi, {1, 1, 1, 1}, NULL};
    pv_train_config cfg = {{PV_OPT_ADAM, 0.01f, 0.9f, 0.999f, 1e-8f},
                           {PV_OPT_ADAM, 0.01f, 0.9f, 0.999f, 1e-8f},
                           s[0], s[1], sv[0], sv[1], sw[0], sw[1], sb[0], sb[1],
                           PV_REG_FULL, 1e-3f, 2.0f, 1e-2f, 0.0f, NULL};
    int64_t step = 0;
    pv_index nb = 0;
    pv_status stt = pv_train_epoch(&cfg, &m, NP, users, items, 64, 5, 7, 0, &step, n_threads,
                                   out_loss, &nb);
    CHECK(stt == PV_OK && nb == 7 && step == 7, "train_epoch status %d, %td batches", stt, nb);
    memcpy(out_U, U, sizeof(U));
}

static void
test_train_deterministic(void)
{
    float U1[30 * 8], U2[30 * 8];
    double l1, l2;
    train_once(1, U1, &l1);
    train_once(2, U2, &l2);
    CHECK(l1 == l2 && memcmp(U1, U2, sizeof(U1)) == 0, "epoch differs between 1 and 2 threads");
}

/*
 * The final recommender (convert part) on a small problem: one epoch at the given
 * thread count and fusion, reg FULL or BATCH, with separate projections (W_var, b_var)
 * or the shared one.  gate: the backbone gate instead of a convert part (fusion < 0).
 * out: U, V, W, b, A, c, q, omega, W_var, b_var after the epoch.
 */
enum { CT_NU = 25, CT_NI = 40, CT_DID = 4, CT_DC = 6, CT_DA = 5, CT_D = 24, CT_NP = 300 };
enum { CT_NOUT = CT_NU * (CT_DID + CT_DC) + CT_NI * CT_DID + 2 * (CT_DC * CT_D + CT_DC) +
                 CT_DA * CT_DC + 2 * CT_DA + 2 };

static pv_status
train_convert_once(int n_threads, int fusion, pv_rec_reg reg, int separate, float *out,
                   double *out_loss)
{
    enum { NU = CT_NU, NI = CT_NI, DID = CT_DID, DC = CT_DC, DA = CT_DA, D = CT_D, NP = CT_NP };
    enum { NUP = NU * (DID + DC), NVP = NI * DID, NWP = DC * D, NAP = DA * DC };
    /* parameters, then their Adam moments (m, v) */
    static float P[CT_NOUT], M[CT_NOUT], Vs[CT_NOUT];
    static float X[NI * D], bu[NU], bi[NI], mask[D];
    int64_t users[NP], items[NP];
    uint64_t st = 21;
    for (int k = 0; k < CT_NOUT; k++) {
        P[k] = (float)(0.3 * uniform(&st));
    }
    memset(M, 0, sizeof(M));
    memset(Vs, 0, sizeof(Vs));
    for (int k = 0; k < NI * D; k++) {
        X[k] = (float)uniform(&st);
    }
    for (int k = 0; k < D; k++) {
        mask[k] = (float)(uniform(&st) + 0.5);
    }
    for (int k = 0; k < NU; k++) {
        bu[k] = 0.6f;
    }
    for (int k = 0; k < NI; k++) {
        bi[k] = 0.3f;
    }
    for (int k = 0; k < NP; k++) {
        users[k] = (k * 11) % NU;
        items[k] = (k * 17 + k / 7) % NI;
    }
    const pv_index oU = 0, oV = NUP, oW = oV + NVP, ob = oW + NWP, oA = ob + DC, oc = oA + NAP,
                   oq = oc + DA, oo = oq + DA, oWv = oo + 2, obv = oWv + NWP;
    pv_train_convert cv = {fusion < 0 ? PV_FUSE_ATTENTION : (pv_convert_fusion)fusion,
                           DA,
                           P + oA,
                           P + oc,
                           P + oq,
                           P + oo,
                           mask,
                           M + oA,
                           Vs + oA,
                           M + oc,
                           Vs + oc,
                           M + oq,
                           Vs + oq,
                           M + oo,
                           Vs + oo,
                           separate ? 1e-4f : 0.1f,
                           separate ? P + oWv : NULL,
                           P + obv,
                           M + oWv,
                           Vs + oWv,
                           M + obv,
                           Vs + obv};
    pv_train_model m = {{NU, NI, DID, DC, D}, P + oU, P + oV, P + oW, P + ob,
                        fusion < 0 ? mask : NULL, X, bu, bi, {1, 1, 1, 1},
                        fusion < 0 ? NULL : &cv};
    pv_train_config cfg = {{PV_OPT_ADAM, 0.01f, 0.9f, 0.999f, 1e-8f},
                           {PV_OPT_ADAM, 0.01f, 0.9f, 0.999f, 1e-8f},
                           M + oU, Vs + oU, M + oV, Vs + oV, M + oW, Vs + oW, M + ob, Vs + ob,
                           reg, 1e-3f, 2.0f, 0.1f, 0.0f, NULL};
    int64_t step = 3; /* a later epoch: Adam's t continues */
    pv_index nb = 0;
    pv_status stt = pv_train_epoch(&cfg, &m, NP, users, items, 64, 6, 5, 1, &step, n_threads,
                                   out_loss, &nb);
    if (stt == PV_OK) {
        CHECK(nb == 5 && step == 8, "convert epoch: %td batches, step %lld", nb,
              (long long)step);
    }
    memcpy(out, P, sizeof(P));
    return stt;
}

static void
test_train_convert(void)
{
    static float a[CT_NOUT], b[CT_NOUT], start[CT_NOUT];
    const pv_index oA = CT_NU * (CT_DID + CT_DC) + CT_NI * CT_DID + CT_DC * CT_D + CT_DC;
    const pv_index oo = oA + CT_DA * CT_DC + 2 * CT_DA, oWv = oo + 2;
    double la, lb;
    uint64_t st = 21;
    for (int k = 0; k < CT_NOUT; k++) {
        start[k] = (float)(0.3 * uniform(&st));
    }
    const pv_rec_reg regs[2] = {PV_REG_FULL, PV_REG_BATCH};
    for (int f = 0; f < 3; f++) {
        for (int r = 0; r < 4; r++) {
            const int sep = r >= 2;
            pv_status s1 = train_convert_once(1, f, regs[r % 2], sep, a, &la);
            pv_status s2 = train_convert_once(2, f, regs[r % 2], sep, b, &lb);
            CHECK(s1 == PV_OK && s2 == PV_OK, "convert epoch status %d %d (fusion %d)", s1, s2,
                  f);
            CHECK(la == lb && memcmp(a, b, sizeof(a)) == 0,
                  "convert epoch differs between 1 and 2 threads (fusion %d, reg %d)", f, r);
            /* the variant projection trains only when separate and read (not INVARIANT) */
            int moved_var = memcmp(a + oWv, start + oWv,
                                   sizeof(float) * (CT_DC * CT_D + CT_DC)) != 0;
            CHECK(moved_var == (sep && f != PV_FUSE_INVARIANT),
                  "fusion %d, separate %d: W_var, b_var moved %d", f, sep, moved_var);
            int finite = 1;
            for (int k = 0; k < CT_NOUT; k++) {
                finite &= isfinite(a[k]) != 0;
            }
            CHECK(finite && isfinite(la) && la > 0, "convert epoch not finite (fusion %d)", f);
            /* Trained: A, c, q for attention (f 0), omega for global (f 1); else untouched. */
            int moved_acq = memcmp(a + oA, start + oA, sizeof(float) * (oo - oA)) != 0;
            int moved_om = memcmp(a + oo, start + oo, sizeof(float) * 2) != 0;
            CHECK(moved_acq == (f == 0) && moved_om == (f == 1),
                  "fusion %d trained the wrong parameters (A,c,q %d, omega %d)", f, moved_acq,
                  moved_om);
        }
    }
    /* fusion INVARIANT is the backbone gated by the mask, bit for bit. */
    train_convert_once(1, PV_FUSE_INVARIANT, PV_REG_FULL, 0, a, &la);
    train_convert_once(1, -1, PV_REG_FULL, 0, b, &lb);
    CHECK(la == lb && memcmp(a, b, sizeof(a)) == 0, "invariant fusion != backbone with g = mask");
    /* A convert part without what its fusion trains is refused. */
    float U[4], V[2], W[2], X[2], bu[1] = {1}, bi[1] = {1}, mask[2] = {1, 0}, m1[4];
    int64_t users[1] = {0}, items[1] = {0}, step = 0;
    pv_train_convert cv;
    memset(&cv, 0, sizeof(cv));
    cv.fusion = PV_FUSE_GLOBAL;
    cv.mask = mask;
    pv_train_model m = {{1, 1, 2, 1, 2}, U, V, W, NULL, NULL, X, bu, bi, {1, 1, 1, 1}, &cv};
    pv_train_config cfg;
    memset(&cfg, 0, sizeof(cfg));
    cfg.U1 = cfg.U2 = cfg.V1 = cfg.V2 = cfg.W1 = cfg.W2 = m1;
    pv_index nb;
    CHECK(pv_train_epoch(&cfg, &m, 1, users, items, 1, 0, 0, 0, &step, 1, &la, &nb) ==
              PV_EINVAL,
          "global fusion without omega accepted");
}

static void
test_identify(void)
{
    enum { NU = 20, NI = 30, D = 8, NP = 300, E = 3 };
    float X[NI * D], bu[NU], bi[NI];
    int64_t users[NP], items[NP], labels[NP], changes[4], sizes[4 * E];
    uint64_t st = 11;
    for (int k = 0; k < NI * D; k++) {
        X[k] = (float)uniform(&st);
    }
    for (int k = 0; k < NU; k++) {
        bu[k] = 0.5f;
    }
    for (int k = 0; k < NI; k++) {
        bi[k] = 0.5f;
    }
    for (int k = 0; k < NP; k++) {
        users[k] = k % NU;
        items[k] = (k * 11) % NI;
        labels[k] = k % 2; /* environment 2 starts empty */
    }
    pv_identify_config c;
    memset(&c, 0, sizeof(c));
    pv_rec_dims dims = {NU, NI, 4, 4, D};
    c.dims = dims;
    c.X = X;
    c.beta_u = bu;
    c.beta_i = bi;
    c.w[0] = c.w[1] = c.w[2] = c.w[3] = 1;
    pv_opt ada = {PV_OPT_ADAGRAD, 0.05f, 0, 0, 1e-10f}, adam = {PV_OPT_ADAM, 0.01f, 0.9f, 0.999f,
                                                                1e-8f};
    c.emb = ada;
    c.proj = adam;
    c.reg = PV_REG_FULL;
    c.wd1 = 1e-4f;
    c.wdi = 2;
    c.wd2 = 0.01f;
    c.bias = 1;
    c.init_std = 0.01f;
    c.batch = 32;
    c.n_neg = 3;
    c.epochs = 2;
    pv_index rounds = 0;
    pv_status s = pv_identify(&c, NP, users, items, E, 4, 0, 1, labels, changes, sizes, &rounds,
                              NULL, 2);
    CHECK(s == PV_OK && rounds >= 1, "identify status %d rounds %td", s, rounds);
    int64_t total = 0;
    for (int e = 0; e < E; e++) {
        total += sizes[(rounds - 1) * E + e];
    }
    CHECK(total == NP, "sizes add up to %lld", (long long)total);
    CHECK(sizes[2] == 0, "an empty environment takes no pairs in the first round");
}

/*
 * LightGCN on a 3-user x 4-item graph: propagation with 0 layers is the identity, the
 * batch gradient matches central differences of the float32 loss (h = 1e-2, loose), an
 * epoch gives the same bits at 1 and 3 threads, and ids out of range are refused.
 */
static void
test_lgcn(void)
{
    enum { NU = 3, NI = 4, N = NU + NI, D = 2, NP = 6 };
    const int64_t pu[NP] = {0, 0, 1, 1, 2, 2}, pi[NP] = {0, 1, 1, 2, 2, 3};
    /* symmetric normalised adjacency: user rows then item rows, 1/sqrt(deg_u deg_i) */
    const int64_t indptr[N + 1] = {0, 2, 4, 6, 7, 9, 11, 12};
    const int64_t indices[2 * NP] = {3, 4, 4, 5, 5, 6, 0, 0, 1, 1, 2, 2};
    float values[2 * NP];
    const double du[NU] = {2, 2, 2}, di[NI] = {1, 2, 2, 1};
    const int64_t eu[2 * NP] = {0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2};
    const int64_t ei[2 * NP] = {0, 1, 1, 2, 2, 3, 0, 1, 1, 2, 2, 3};
    for (int e = 0; e < 2 * NP; e++) {
        values[e] = (float)(1.0 / sqrt(du[eu[e]] * di[ei[e]]));
    }
    pv_graph g = {N, indptr, indices, values};
    CHECK(pv_graph_check(&g) == PV_OK, "graph check");
    float E0[N * D], E[N * D], work[4 * N * D + 8], grad[N * D];
    for (int k = 0; k < N * D; k++) {
        E0[k] = 0.1f * (float)((k * 7) % 11) - 0.5f;
    }
    pv_propagate_f32(&g, 0, D, E0, E, work, 2);
    CHECK(memcmp(E, E0, sizeof(E)) == 0, "0 layers is the identity");
    pv_lgcn_model m = {&g, NU, NI, D, 2, 0.1f};
    const int64_t users[3] = {0, 1, 1}, pos[3] = {1, 2, 2}, neg[3] = {3, 0, 2};
    double loss = 0, lp = 0, lm = 0;
    CHECK(pv_lgcn_batch_f32(&m, E0, 3, users, pos, neg, grad, &loss, work, 2) == PV_OK,
          "lgcn batch");
    float Ep[N * D];
    for (int k = 0; k < N * D; k++) {
        float tmp[N * D];
        memcpy(Ep, E0, sizeof(Ep));
        Ep[k] += 1e-2f;
        pv_lgcn_batch_f32(&m, Ep, 3, users, pos, neg, tmp, &lp, work, 1);
        Ep[k] -= 2e-2f;
        pv_lgcn_batch_f32(&m, Ep, 3, users, pos, neg, tmp, &lm, work, 1);
        double fd = (lp - lm) / 2e-2;
        CHECK(fabs(fd - grad[k]) < 2e-4, "lgcn gradient %d: %.8g vs fd %.8g", k, grad[k], fd);
    }
    float A[N * D], B[N * D], m1a[N * D] = {0}, m2a[N * D] = {0}, m1b[N * D] = {0},
                              m2b[N * D] = {0};
    memcpy(A, E0, sizeof(A));
    memcpy(B, E0, sizeof(B));
    pv_opt adam = {PV_OPT_ADAM, 0.01f, 0.9f, 0.999f, 1e-8f};
    int64_t sa = 0, sb = 0;
    double la = 0, lb = 0;
    pv_index na = 0, nb = 0;
    pv_status s1 = pv_lgcn_epoch_f32(&m, &adam, A, m1a, m2a, NP, pu, pi, 4, 9, 1, &sa, &la, &na, 1);
    pv_status s2 = pv_lgcn_epoch_f32(&m, &adam, B, m1b, m2b, NP, pu, pi, 4, 9, 1, &sb, &lb, &nb, 3);
    CHECK(s1 == PV_OK && s2 == PV_OK && na == 2 && sa == 2, "lgcn epoch status %d %d", s1, s2);
    CHECK(la == lb && memcmp(A, B, sizeof(A)) == 0, "lgcn epoch differs between 1 and 3 threads");
    const int64_t bad[NP] = {0, 0, 1, 1, 2, 4};
    CHECK(pv_lgcn_epoch_f32(&m, &adam, A, m1a, m2a, NP, pu, bad, 4, 9, 1, &sa, &la, &na, 1) ==
              PV_EINDEX, "an item id out of range gives PV_EINDEX");
}

/*
 * Brute force over pv_topk_rescore: the k best (score desc, id asc) of user u, excluded
 * items (a sorted CSR row) scoring mask; -inf items never enter (padding -1, -inf).
 */
static void
brute_topk(pv_index n_items, pv_index dim, const float *u, const float *V, const int64_t *ex,
           int64_t n_ex, float mask, pv_index k, int64_t *ids, float *sc)
{
    for (pv_index t = 0; t < k; t++) {
        ids[t] = -1;
        sc[t] = -INFINITY;
    }
    for (pv_index j = 0; j < n_items; j++) {
        int excluded = 0;
        for (int64_t c = 0; c < n_ex; c++) {
            excluded |= ex[c] == j;
        }
        float s = excluded ? mask : pv_topk_rescore(dim, u, V + j * dim);
        if (!(s > sc[k - 1])) {   /* ascending ids: a tie with the last kept item loses */
            continue;
        }
        pv_index t = k - 1;
        while (t > 0 && s > sc[t - 1]) {
            sc[t] = sc[t - 1];
            ids[t] = ids[t - 1];
            t--;
        }
        sc[t] = s;
        ids[t] = j;
    }
}

static void
test_topk_bf16(void)
{
    enum { NU = 37, NI = 203, DIM = 40, K = 7 };
    static float U[NU * DIM], V[NI * DIM], got_s[NU * K], ref_s[NU * K], sg_s[NU * K];
    static int64_t got[NU * K], ref[NU * K], sg[NU * K], indptr[NU + 1], idx[NU * 20];
    uint64_t x = 12345;
    for (int pass = 0; pass < 2; pass++) {
        /* pass 0: Gaussian-like values (bf16 estimates inexact);
         * pass 1: quarter-integers (exact everywhere: many exact ties, sgemm agrees). */
        for (int t = 0; t < NU * DIM + NI * DIM; t++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            double r = (double)(x >> 11) / 9007199254740992.0;
            float v = pass == 0 ? (float)(4.0 * (r - 0.5)) : (float)((int)(r * 7.0) - 3) / 4;
            if (t < NU * DIM) {
                U[t] = v;
            } else {
                V[t - NU * DIM] = v;
            }
        }
        int64_t nnz = 0;
        indptr[0] = 0;
        for (int u = 0; u < NU; u++) {
            for (int j = u % 5; j < NI && nnz < (u + 1) * 20; j += 11 + u % 7) {
                idx[nnz++] = j;
            }
            indptr[u + 1] = nnz;
        }
        for (int amx = PV_TOPK_BF16_PORTABLE; amx <= PV_TOPK_BF16_AMX; amx++) {
            for (int nt = 1; nt <= 2; nt++) {
                pv_status s = pv_topk_bf16_f32(NU, NI, DIM, U, V, indptr, idx, 1e-5f, K, 5, 33,
                                               amx, got, got_s, nt);
                CHECK(s == PV_OK, "topk_bf16 status %d", s);
                for (int u = 0; u < NU; u++) {
                    brute_topk(NI, DIM, U + u * DIM, V, idx + indptr[u], indptr[u + 1] - indptr[u],
                               1e-5f, K, ref + u * K, ref_s + u * K);
                }
                CHECK(memcmp(got, ref, sizeof got) == 0 && memcmp(got_s, ref_s, sizeof got_s) == 0,
                      "topk_bf16 (pass %d, level %d, %d threads) != brute force over pv_topk_rescore",
                      pass, amx, nt);
            }
        }
        if (pass == 1) {
            CHECK(pv_topk_f32(NU, NI, DIM, U, V, indptr, idx, 1e-5f, K, 5, 33, sg, sg_s, 2) == PV_OK &&
                      memcmp(got, sg, sizeof got) == 0 && memcmp(got_s, sg_s, sizeof got_s) == 0,
                  "topk_bf16 != topk_f32 on exactly representable data");
        }
    }
    V[3] = NAN;
    CHECK(pv_topk_bf16_f32(NU, NI, DIM, U, V, NULL, NULL, -INFINITY, K, 0, 0, PV_TOPK_BF16_AMX, got,
                           got_s, 1) ==
              PV_EDOM,
          "a NaN item gives PV_EDOM");
}

int
main(void)
{
    /* As the binding does before every kernel call (pv_bind_blas.c): the kernels
     * partition their work themselves and call BLAS with one thread. */
    PV_CBLAS(openblas_set_num_threads)(1);
    test_rec_batch();
    test_optim();
    test_rng();
    test_train_deterministic();
    test_train_convert();
    test_identify();
    test_lgcn();
    test_topk_bf16();
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("test_kernels: all checks passed\n");
    return 0;
}
