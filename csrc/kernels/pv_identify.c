#include <math.h>
#include <stdlib.h>
#include <string.h>
#include "pv_blas.h"
#include "pv_identify.h"
#include "pv_rng.h"
#if defined(__SSE__)
#include <xmmintrin.h>
#define PV_HAVE_MXCSR 1
#endif

/*
 * The initial weights every environment model starts from (§10.6): U, V, W
 * drawn once per call (each entry a pure function of the seed and its index,
 * so the fill can be split among threads), copied into each model.
 */
static void
normal_fill_threads(pv_index n, float std, uint64_t seed, uint32_t tensor_id, float *out,
                    int n_threads)
{
    const pv_index chunk = 1 << 16; /* even, so chunks never split a pair */
#pragma omp parallel for num_threads(n_threads) schedule(static)
    for (pv_index lo = 0; lo < n; lo += chunk) {
        const pv_index hi = lo + chunk < n ? lo + chunk : n;
        for (pv_index k = lo; k < hi; k += 2) {
            double z0, z1;
            pv_normal_pair(pv_philox4x32(seed, PV_STREAM_INIT, tensor_id, (uint32_t)(k / 2),
                                         (uint32_t)((uint64_t)(k / 2) >> 32)),
                           &z0, &z1);
            out[k] = (float)(std * z0);
            if (k + 1 < n) {
                out[k + 1] = (float)(std * z1);
            }
        }
    }
}

/* Sizes of one model's parameters and optimiser state. */
typedef struct {
    pv_index nU, nV, nW, nb, n_emb_states, total;
} model_sizes;

static model_sizes
sizes_of(const pv_identify_config *c)
{
    const pv_rec_dims d = c->dims;
    model_sizes z;
    z.nU = d.n_users * (d.d_id + d.d_c);
    z.nV = d.n_items * d.d_id;
    z.nW = d.d_c * d.n_feat;
    z.nb = c->bias ? d.d_c : 0;
    z.n_emb_states = c->emb.kind == PV_OPT_ADAM ? 2 : 1;
    z.total = (z.nU + z.nV) * (1 + z.n_emb_states) + (z.nW + z.nb) * 3 +
              d.n_items * (d.d_id + d.d_c);
    return z;
}

/*
 * One environment model: parameters and optimiser state in one block.  A
 * thread allocates its block once per call and resets it for each environment
 * it trains (no fresh pages, hence no page faults, per model).
 */
typedef struct {
    float *block;
    pv_train_model model;
    pv_train_config cfg;
    float *item_vecs; /* n_items x (d_id + d_c), for scoring */
} env_model;

static void
env_model_layout(env_model *em, float *block, const pv_identify_config *c)
{
    const model_sizes z = sizes_of(c);
    memset(em, 0, sizeof(*em));
    em->block = block;
    float *p = block;
    float *U = p, *V = (p += z.nU), *W = (p += z.nV), *b = (p += z.nW);
    p += z.nb;
    em->cfg.U1 = p;
    p += z.nU;
    em->cfg.V1 = p;
    p += z.nV;
    if (z.n_emb_states == 2) {
        em->cfg.U2 = p;
        p += z.nU;
        em->cfg.V2 = p;
        p += z.nV;
    }
    em->cfg.W1 = p;
    em->cfg.W2 = (p += z.nW);
    p += z.nW;
    if (z.nb) {
        em->cfg.b1 = p;
        em->cfg.b2 = (p += z.nb);
        p += z.nb;
    }
    em->item_vecs = p;
    pv_train_model m = {c->dims, U, V, W, z.nb ? b : NULL, NULL, c->X, c->beta_u, c->beta_i,
                        {c->w[0], c->w[1], c->w[2], c->w[3]}, NULL};
    em->model = m;
    em->cfg.emb = c->emb;
    em->cfg.proj = c->proj;
    em->cfg.reg = c->reg;
    em->cfg.wd1 = c->wd1;
    em->cfg.wdi = c->wdi;
    em->cfg.wd2 = c->wd2;
    em->cfg.l1 = c->l1;
    em->cfg.l1_mask = c->mask_prev;
}

/* Reset a model to the shared start: U, V, W from `init`, bias and all state 0. */
static void
env_model_reset(env_model *em, const pv_identify_config *c, const float *init)
{
    const model_sizes z = sizes_of(c);
    const pv_index n_params = z.nU + z.nV + z.nW; /* U, V, W are contiguous, then b */
    memcpy(em->block, init, sizeof(float) * (size_t)n_params);
    memset(em->block + n_params, 0, sizeof(float) * (size_t)(z.total - n_params));
}

/* Score every pair: s = U_u . [V_i ; W x_i + b], with all items projected once. */
static pv_status
env_model_score(env_model *em, pv_index n_pairs, const int64_t *users, const int64_t *items,
                float *out)
{
    const pv_rec_dims d = em->model.dims;
    const pv_index du = d.d_id + d.d_c;
    float *E = em->item_vecs;
    if (!pv_blas_fits(d.n_items, d.n_feat, du)) {
        return PV_ERANGE;
    }
    for (pv_index i = 0; i < d.n_items; i++) {
        memcpy(E + i * du, em->model.V + i * d.d_id, sizeof(float) * (size_t)d.d_id);
        for (pv_index k = 0; k < d.d_c; k++) {
            E[i * du + d.d_id + k] = em->model.b ? em->model.b[k] : 0.0f;
        }
    }
    if (d.d_c > 0 && d.n_feat > 0) {
        PV_CBLAS(cblas_sgemm)(PvRowMajor, PvNoTrans, PvTrans, (pv_blas_int)d.n_items,
                              (pv_blas_int)d.d_c, (pv_blas_int)d.n_feat, 1.0f, em->model.X,
                              (pv_blas_int)d.n_feat, em->model.W, (pv_blas_int)d.n_feat, 1.0f,
                              E + d.d_id, (pv_blas_int)du);
    }
    for (pv_index k = 0; k < n_pairs; k++) {
        const float *u = em->model.U + users[k] * du, *e = E + items[k] * du;
        double s = 0.0;
        for (pv_index j = 0; j < du; j++) {
            s += (double)u[j] * e[j];
        }
        out[k] = (float)s;
    }
    return PV_OK;
}

/*
 * Train environment e's model from scratch on its pairs and score all pairs.
 * The shuffle and negative streams are keyed by (seed, epoch) only, not by the
 * round: the reference re-seeds every environment model, so each round is a
 * pure function of the labels it starts from.  A run split into several calls
 * (one round each, or resumed from returned labels) then follows the same
 * trajectory as one call, and labels that reproduce themselves are a true
 * fixed point (0 changes).
 */
static pv_status
run_environment(const pv_identify_config *c, pv_index n_pairs, const int64_t *users,
                const int64_t *items, const int64_t *labels, pv_index e, uint64_t seed,
                const float *init, float *block, int64_t *sub_users, int64_t *sub_items,
                float *scores)
{
    pv_index n_sub = 0;
    for (pv_index k = 0; k < n_pairs; k++) { /* stored order, as the reference */
        if (labels[k] == e) {
            sub_users[n_sub] = users[k];
            sub_items[n_sub] = items[k];
            n_sub++;
        }
    }
    if (n_sub == 0) { /* an empty environment takes no part in the argmax (§10.4) */
        for (pv_index k = 0; k < n_pairs; k++) {
            scores[k] = -INFINITY;
        }
        return PV_OK;
    }
    env_model em;
    env_model_layout(&em, block, c);
    env_model_reset(&em, c, init);
    pv_status st = PV_OK;
    int64_t step = 0;
    /*
     * Flush subnormals to zero while the model trains (this thread only, restored
     * after).  With reg FULL every row of U and V takes an L2-only Adagrad step
     * each batch, and rows an environment never touches decay into subnormal
     * floats (about 1 in 10 entries of U after a few epochs on a tenth of
     * TikTok-sized data), where x86 arithmetic is many times slower: that made a
     * step on an environment's data up to 2x the cost of a step on the full data.
     * Values below 1.2e-38 carry nothing for the scores.
     */
#ifdef PV_HAVE_MXCSR
    const unsigned int csr = _mm_getcsr();
    _mm_setcsr(csr | 0x8040u); /* FTZ (bit 15) | DAZ (bit 6) */
#endif
    for (pv_index ep = 0; st == PV_OK && ep < c->epochs; ep++) {
        double loss;
        pv_index nb;
        st = pv_train_epoch(&em.cfg, &em.model, n_sub, sub_users, sub_items, c->batch, c->n_neg,
                            seed, (uint32_t)ep, &step, 1, &loss, &nb);
    }
#ifdef PV_HAVE_MXCSR
    _mm_setcsr(csr);
#endif
    if (st == PV_OK) {
        st = env_model_score(&em, n_pairs, users, items, scores);
    }
    return st;
}

pv_status
pv_identify(const pv_identify_config *c, pv_index n_pairs, const int64_t *users,
            const int64_t *items, pv_index n_envs, pv_index max_rounds, pv_index tol_changes,
            uint64_t seed, int64_t *labels, int64_t *changes, int64_t *sizes, pv_index *n_rounds,
            float *scores_out, int n_threads)
{
    *n_rounds = 0;
    if (n_pairs < 1 || n_envs < 1 || max_rounds < 1 || c->epochs < 0 || c->batch < 1 ||
        c->n_neg < 0) {
        return PV_EINVAL;
    }
    for (pv_index k = 0; k < n_pairs; k++) {
        if (labels[k] < 0 || labels[k] >= n_envs || users[k] < 0 ||
            users[k] >= c->dims.n_users || items[k] < 0 || items[k] >= c->dims.n_items) {
            return PV_EINDEX;
        }
    }
    /* One environment per thread: more threads than environments would idle. */
    if (n_threads < 1) {
        n_threads = 1;
    }
    if ((pv_index)n_threads > n_envs) {
        n_threads = (int)n_envs;
    }
    const model_sizes z = sizes_of(c);
    float *scores = malloc(sizeof(float) * (size_t)(n_envs * n_pairs));
    int64_t *sub = malloc(sizeof(int64_t) * 2 * (size_t)n_pairs * (size_t)n_threads);
    int64_t *next = malloc(sizeof(int64_t) * (size_t)n_pairs);
    pv_status *status = calloc((size_t)n_envs, sizeof(pv_status));
    int64_t *count = calloc((size_t)n_envs, sizeof(int64_t));
    float *init = malloc(sizeof(float) * (size_t)(z.nU + z.nV + z.nW + 1));
    float *blocks = malloc(sizeof(float) * (size_t)(z.total + 1) * (size_t)n_threads);
    pv_status st = PV_OK;
    if (!scores || !sub || !next || !status || !count || !init || !blocks) {
        st = PV_ENOMEM;
        goto done;
    }
    /* The same start for every environment of every round (§10.6). */
    normal_fill_threads(z.nU, c->init_std, seed, 1, init, n_threads);
    normal_fill_threads(z.nV, c->init_std, seed, 2, init + z.nU, n_threads);
    normal_fill_threads(z.nW, c->init_std, seed, 3, init + z.nU + z.nV, n_threads);
    for (pv_index round = 0; round < max_rounds && st == PV_OK; round++) {
        memset(count, 0, sizeof(int64_t) * (size_t)n_envs);
        for (pv_index k = 0; k < n_pairs; k++) {
            count[labels[k]]++;
        }
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 1)
        for (pv_index e = 0; e < n_envs; e++) {
            const int me = PV_OMP_THREAD_ID();
            int64_t *mine = sub + (size_t)2 * n_pairs * (size_t)me;
            status[e] = run_environment(c, n_pairs, users, items, labels, e, seed, init,
                                        blocks + (size_t)(z.total + 1) * (size_t)me, mine,
                                        mine + n_pairs, scores + e * n_pairs);
        }
        for (pv_index e = 0; e < n_envs && st == PV_OK; e++) {
            st = status[e];
        }
        if (st != PV_OK) {
            break;
        }
        /*
         * Argmax over the environments that had interactions; ties go to the
         * lower id.  Every score that takes part must be finite; the labels are
         * only overwritten once the whole round has been checked.
         */
        int64_t changed = 0;
        for (pv_index k = 0; k < n_pairs && st == PV_OK; k++) {
            pv_index best = -1;
            float best_s = 0.0f;
            for (pv_index e = 0; e < n_envs; e++) {
                if (count[e] == 0) {
                    continue;
                }
                float s = scores[e * n_pairs + k];
                if (!isfinite(s)) {
                    st = PV_EDOM;
                    break;
                }
                if (best < 0 || s > best_s) {
                    best = e;
                    best_s = s;
                }
            }
            next[k] = best;
            changed += best != labels[k];
        }
        if (st != PV_OK) {
            break;
        }
        memcpy(labels, next, sizeof(int64_t) * (size_t)n_pairs);
        changes[round] = changed;
        for (pv_index e = 0; e < n_envs; e++) {
            sizes[round * n_envs + e] = 0;
        }
        for (pv_index k = 0; k < n_pairs; k++) {
            sizes[round * n_envs + labels[k]]++;
        }
        *n_rounds = round + 1;
        if (changed <= tol_changes) {
            break;
        }
    }
    if (st == PV_OK && scores_out != NULL) {
        memcpy(scores_out, scores, sizeof(float) * (size_t)(n_envs * n_pairs));
    }
done:
    free(scores);
    free(sub);
    free(next);
    free(status);
    free(count);
    free(init);
    free(blocks);
    return st;
}
