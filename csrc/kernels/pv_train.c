#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "pv_rng.h"
#include "pv_train.h"

void
pv_train_negatives(pv_index n_items, pv_index n_neg, uint64_t seed, uint32_t epoch, int64_t pos,
                   int64_t *out)
{
    /* Two draws per Philox block; block id = pos * ceil(n_neg / 2) + k / 2. */
    const int64_t per_pair = (n_neg + 1) / 2;
    for (pv_index k = 0; k < n_neg; k += 2) {
        uint64_t blk = (uint64_t)pos * (uint64_t)per_pair + (uint64_t)(k / 2);
        pv_philox_ctr r =
            pv_philox4x32(seed, PV_STREAM_NEGATIVE, epoch, (uint32_t)blk, (uint32_t)(blk >> 32));
        out[k] = pv_bounded64(r.v[0], r.v[1], n_items);
        if (k + 1 < n_neg) {
            out[k + 1] = pv_bounded64(r.v[2], r.v[3], n_items);
        }
    }
}

/* Everything one epoch needs besides the model, allocated once. */
typedef struct {
    int64_t *perm, *users, *items, *user_list, *item_list;
    int32_t *user_slot, *item_slot;
    int32_t *user_done, *item_done; /* reg FULL: steps applied to each row this epoch */
    pv_opt_coef *coefs;             /* reg FULL: Adam constants of each step of the epoch */
    float *gU, *gV, *gW, *gb, *work;
    float *gA, *gc, *gq, *gomega;   /* convert part only */
    float *gWv, *gbv;               /* separate variant projection only */
} epoch_space;

static void
free_space(epoch_space *s)
{
    free(s->perm);
    free(s->users);
    free(s->items);
    free(s->user_list);
    free(s->item_list);
    free(s->user_slot);
    free(s->item_slot);
    free(s->user_done);
    free(s->item_done);
    free(s->coefs);
    free(s->gU);
    free(s->gV);
    free(s->gW);
    free(s->gb);
    free(s->work);
    free(s->gA);
    free(s->gc);
    free(s->gq);
    free(s->gomega);
    free(s->gWv);
    free(s->gbv);
}

static pv_convert_dims
convert_dims(const pv_rec_dims d, const pv_train_convert *cv)
{
    pv_convert_dims cd = {d.n_users, d.n_items, d.d_id, d.d_c, cv->d_a, d.n_feat};
    return cd;
}

static pv_status
alloc_space(epoch_space *s, pv_rec_dims d, const pv_train_convert *cv, pv_index n_pairs,
            pv_index B, pv_index C, pv_index n_steps)
{
    memset(s, 0, sizeof(*s));
    const size_t du = (size_t)(d.d_id + d.d_c);
    s->perm = malloc(sizeof(int64_t) * (size_t)n_pairs);
    s->users = malloc(sizeof(int64_t) * (size_t)B);
    s->items = malloc(sizeof(int64_t) * (size_t)(B * C));
    s->user_list = malloc(sizeof(int64_t) * (size_t)B);
    s->item_list = malloc(sizeof(int64_t) * (size_t)(B * C));
    s->user_slot = malloc(sizeof(int32_t) * (size_t)d.n_users);
    s->item_slot = malloc(sizeof(int32_t) * (size_t)d.n_items);
    s->gU = malloc(sizeof(float) * (size_t)B * du + 1);
    s->gV = malloc(sizeof(float) * (size_t)(B * C * d.d_id) + 1);
    s->gW = malloc(sizeof(float) * (size_t)(d.d_c * d.n_feat) + 1);
    s->gb = malloc(sizeof(float) * (size_t)d.d_c + 1);
    pv_index n_work = pv_rec_workspace_f32(B, C, d);
    if (cv != NULL) { /* the convert kernel, with at most min(B * C, n_items) item slots */
        const pv_index max_slots = B * C < d.n_items ? B * C : d.n_items;
        const pv_index n_cv = pv_convert_workspace_f32(B, C, max_slots, convert_dims(d, cv));
        n_work = n_cv > n_work ? n_cv : n_work;
        s->gA = malloc(sizeof(float) * (size_t)(cv->d_a * d.d_c) + 1);
        s->gc = malloc(sizeof(float) * (size_t)cv->d_a + 1);
        s->gq = malloc(sizeof(float) * (size_t)cv->d_a + 1);
        s->gomega = malloc(sizeof(float) * 2);
        s->gWv = malloc(sizeof(float) * (size_t)(d.d_c * d.n_feat) + 1);
        s->gbv = malloc(sizeof(float) * (size_t)d.d_c + 1);
        if (!s->gA || !s->gc || !s->gq || !s->gomega || !s->gWv || !s->gbv) {
            free_space(s);
            return PV_ENOMEM;
        }
    }
    s->work = malloc(sizeof(float) * (size_t)n_work + 1);
    s->user_done = calloc((size_t)d.n_users + 1, sizeof(int32_t));
    s->item_done = calloc((size_t)d.n_items + 1, sizeof(int32_t));
    s->coefs = malloc(sizeof(pv_opt_coef) * (size_t)n_steps + 1);
    if (!s->perm || !s->users || !s->items || !s->user_list || !s->item_list || !s->user_slot ||
        !s->item_slot || !s->gU || !s->gV || !s->gW || !s->gb || !s->work || !s->user_done ||
        !s->item_done || !s->coefs) {
        free_space(s);
        return PV_ENOMEM;
    }
    for (pv_index u = 0; u < d.n_users; u++) {
        s->user_slot[u] = -1;
    }
    for (pv_index i = 0; i < d.n_items; i++) {
        s->item_slot[i] = -1;
    }
    return PV_OK;
}

/* Give each distinct id of ids[0..n) a slot, in order of first appearance. */
static pv_index
assign_slots(pv_index n, const int64_t *ids, int32_t *slot, int64_t *list)
{
    pv_index n_slots = 0;
    for (pv_index k = 0; k < n; k++) {
        if (slot[ids[k]] < 0) {
            slot[ids[k]] = (int32_t)n_slots;
            list[n_slots++] = ids[k];
        }
    }
    return n_slots;
}

/*
 * The same, but slots in ascending id order, by one scan of the table: the
 * optimiser then walks the rows of a large table in memory order, which the
 * hardware prefetcher follows.  Worth it when n is a sizeable fraction of
 * n_ids (the items of a batch: ~30 % of the catalogue).
 */
static pv_index
assign_sorted_slots(pv_index n, const int64_t *ids, pv_index n_ids, int32_t *slot, int64_t *list)
{
    for (pv_index k = 0; k < n; k++) {
        slot[ids[k]] = 0;
    }
    pv_index n_slots = 0;
    for (pv_index i = 0; i < n_ids; i++) {
        if (slot[i] == 0) {
            slot[i] = (int32_t)n_slots;
            list[n_slots++] = i;
        }
    }
    return n_slots;
}

/* L1 term of the environment models: l1 * mean |W o m|; adds its subgradient. */
static double
add_l1(const pv_train_config *cfg, const pv_rec_dims d, const float *W, float *gW)
{
    if (cfg->l1 == 0.0f || cfg->l1_mask == NULL || d.d_c * d.n_feat == 0) {
        return 0.0;
    }
    const float scale = cfg->l1 / (float)(d.d_c * d.n_feat);
    double acc = 0.0;
    for (pv_index k = 0; k < d.d_c; k++) {
        for (pv_index j = 0; j < d.n_feat; j++) {
            float w = W[k * d.n_feat + j], mj = cfg->l1_mask[j];
            acc += fabs((double)w * mj);
            /* d|w m|/dw = sign(w) |m|, with sign(0) = 0 as torch's abs. */
            float sgn = (float)((w > 0) - (w < 0));
            gW[k * d.n_feat + j] += scale * sgn * fabsf(mj);
        }
    }
    return (double)cfg->l1 * acc / (double)(d.d_c * d.n_feat);
}

/* The optimiser steps of one batch; `rel` is the batch's 1-based step within the epoch. */
static pv_status
optimiser_steps(const pv_train_config *cfg, pv_train_model *m, epoch_space *s,
                pv_index n_users_b, pv_index n_items_b, int64_t t, int32_t rel, int n_threads)
{
    const pv_rec_dims d = m->dims;
    const pv_index du = d.d_id + d.d_c;
    const float l2u = cfg->reg == PV_REG_NONE ? 0.0f : cfg->wd1;
    const float l2v = cfg->reg == PV_REG_NONE ? 0.0f : cfg->wd1 * cfg->wdi;
    const float l2p = cfg->reg == PV_REG_NONE ? 0.0f : cfg->wd2;
    pv_status st;
    if (cfg->reg == PV_REG_FULL) { /* every row steps; untouched ones are deferred */
        st = pv_opt_lazy_rows_f32(&cfg->emb, d.n_users, du, n_users_b, s->user_list, m->U,
                                  s->gU, cfg->U1, cfg->U2, l2u, s->user_done, rel, s->coefs,
                                  n_threads);
        if (st == PV_OK) {
            st = pv_opt_lazy_rows_f32(&cfg->emb, d.n_items, d.d_id, n_items_b, s->item_list,
                                      m->V, s->gV, cfg->V1, cfg->V2, l2v, s->item_done, rel,
                                      s->coefs, n_threads);
        }
    } else {
        st = pv_opt_rows_f32(&cfg->emb, d.n_users, du, n_users_b, s->user_list, m->U, s->gU,
                             cfg->U1, cfg->U2, l2u, t, n_threads);
        if (st == PV_OK) {
            st = pv_opt_rows_f32(&cfg->emb, d.n_items, d.d_id, n_items_b, s->item_list, m->V,
                                 s->gV, cfg->V1, cfg->V2, l2v, t, n_threads);
        }
    }
    if (st == PV_OK) {
        st = pv_opt_dense_f32(&cfg->proj, d.d_c * d.n_feat, m->W, s->gW, cfg->W1, cfg->W2, l2p,
                              t, n_threads);
    }
    if (st == PV_OK && m->b != NULL) {
        st = pv_opt_dense_f32(&cfg->proj, d.d_c, m->b, s->gb, cfg->b1, cfg->b2, l2p, t,
                              n_threads);
    }
    const pv_train_convert *cv = m->convert;
    const float l2f = cfg->reg == PV_REG_NONE || cv == NULL ? 0.0f : cv->l2;
    const int separate = cv != NULL && cv->W_var != NULL && cv->fusion != PV_FUSE_INVARIANT;
    if (st == PV_OK && separate) {
        st = pv_opt_dense_f32(&cfg->proj, d.d_c * d.n_feat, cv->W_var, s->gWv, cv->W_var1,
                              cv->W_var2, l2p, t, n_threads);
        if (st == PV_OK && m->b != NULL) {
            st = pv_opt_dense_f32(&cfg->proj, d.d_c, cv->b_var, s->gbv, cv->b_var1, cv->b_var2,
                                  l2p, t, n_threads);
        }
    }
    if (st == PV_OK && cv != NULL && cv->fusion == PV_FUSE_ATTENTION) {
        st = pv_opt_dense_f32(&cfg->proj, cv->d_a * d.d_c, cv->A, s->gA, cv->A1, cv->A2, l2f, t,
                              n_threads);
        if (st == PV_OK) {
            st = pv_opt_dense_f32(&cfg->proj, cv->d_a, cv->c, s->gc, cv->c1, cv->c2, l2f, t,
                                  n_threads);
        }
        if (st == PV_OK) {
            st = pv_opt_dense_f32(&cfg->proj, cv->d_a, cv->q, s->gq, cv->q1, cv->q2, l2f, t,
                                  n_threads);
        }
    }
    if (st == PV_OK && cv != NULL && cv->fusion == PV_FUSE_GLOBAL) {
        st = pv_opt_dense_f32(&cfg->proj, 2, cv->omega, s->gomega, cv->omega1, cv->omega2, l2f,
                              t, n_threads);
    }
    return st;
}

/* The convert part names a fusion and holds everything that fusion trains. */
static pv_status
check_convert(const pv_train_config *cfg, const pv_train_model *m)
{
    const pv_train_convert *cv = m->convert;
    if (cv == NULL) {
        return PV_OK;
    }
    const int adam = cfg->proj.kind == PV_OPT_ADAM;
    if (cv->mask == NULL || cv->d_a < 0 || !(cv->l2 >= 0.0f)) {
        return PV_EINVAL;
    }
    if (cv->W_var != NULL && cv->fusion != PV_FUSE_INVARIANT &&
        (!cv->W_var1 || (adam && !cv->W_var2) || (m->b == NULL) != (cv->b_var == NULL) ||
         (m->b != NULL && (!cv->b_var1 || (adam && !cv->b_var2))))) {
        return PV_EINVAL;
    }
    switch (cv->fusion) {
    case PV_FUSE_ATTENTION:
        if (!cv->A || !cv->c || !cv->q || !cv->A1 || !cv->c1 || !cv->q1 ||
            (adam && (!cv->A2 || !cv->c2 || !cv->q2))) {
            return PV_EINVAL;
        }
        return PV_OK;
    case PV_FUSE_GLOBAL:
        if (!cv->omega || !cv->omega1 || (adam && !cv->omega2)) {
            return PV_EINVAL;
        }
        return PV_OK;
    case PV_FUSE_INVARIANT:
        return PV_OK;
    default:
        return PV_EINVAL;
    }
}

/* Loss and compact gradient of one batch: the backbone's, or the convert module's. */
static pv_status
batch_gradient(const pv_train_model *m, epoch_space *s, pv_index nb, pv_index C,
               pv_index n_ub, pv_index n_ib, double *batch_loss, int n_threads)
{
    const pv_train_convert *cv = m->convert;
    if (cv == NULL) {
        pv_rec_model_f32 view = {m->dims, m->U, m->V, m->W, m->b, m->g, m->X, m->beta_u,
                                 m->beta_i, {m->w[0], m->w[1], m->w[2], m->w[3]}};
        pv_rec_grad_f32 grad = {s->gU, s->gV, s->gW, m->b ? s->gb : NULL, NULL, s->user_slot,
                                s->item_slot, n_ub, n_ib};
        return pv_rec_batch_f32(&view, nb, C, s->users, s->items, &grad, s->work, batch_loss,
                                n_threads);
    }
    pv_convert_model_f32 view = {convert_dims(m->dims, cv),
                                 cv->fusion,
                                 m->U,
                                 m->V,
                                 m->W,
                                 m->b,
                                 cv->A,
                                 cv->c,
                                 cv->q,
                                 cv->omega,
                                 cv->mask,
                                 m->X,
                                 m->beta_u,
                                 m->beta_i,
                                 {m->w[0], m->w[1], m->w[2], m->w[3]},
                                 cv->W_var,
                                 cv->W_var != NULL ? cv->b_var : NULL};
    pv_convert_grad_f32 grad = {s->gU,        s->gV,     s->gW, m->b ? s->gb : NULL,
                                s->gA,        s->gc,     s->gq, s->gomega,
                                NULL,         NULL,      s->user_slot, s->item_slot,
                                s->item_list, n_ub,      n_ib,  s->gWv,
                                m->b ? s->gbv : NULL};
    return pv_convert_batch_f32(&view, nb, C, s->users, s->items, &grad, s->work, batch_loss,
                                n_threads);
}

/*
 * reg FULL: bring the rows this batch reads (rel = its step) up to the previous
 * step before its forward pass, so it sees exactly what an eager sweep would.
 */
static pv_status
catch_up_rows(const pv_train_config *cfg, pv_train_model *m, epoch_space *s, pv_index n_users_b,
              pv_index n_items_b, int32_t rel, int n_threads)
{
    const pv_rec_dims d = m->dims;
    if (cfg->reg != PV_REG_FULL || rel <= 1) {
        return PV_OK;
    }
    pv_status st = pv_opt_lazy_rows_f32(&cfg->emb, d.n_users, d.d_id + d.d_c, n_users_b,
                                        s->user_list, m->U, NULL, cfg->U1, cfg->U2, cfg->wd1,
                                        s->user_done, rel - 1, s->coefs, n_threads);
    if (st == PV_OK) {
        st = pv_opt_lazy_rows_f32(&cfg->emb, d.n_items, d.d_id, n_items_b, s->item_list, m->V,
                                  NULL, cfg->V1, cfg->V2, cfg->wd1 * cfg->wdi, s->item_done,
                                  rel - 1, s->coefs, n_threads);
    }
    return st;
}

/* reg FULL: bring every row of U and V to the last completed step of the epoch. */
static pv_status
flush_deferred(const pv_train_config *cfg, pv_train_model *m, epoch_space *s, int32_t upto,
               int n_threads)
{
    const pv_rec_dims d = m->dims;
    if (cfg->reg != PV_REG_FULL || upto == 0) {
        return PV_OK;
    }
    pv_status st = pv_opt_lazy_rows_f32(&cfg->emb, d.n_users, d.d_id + d.d_c, 0, NULL, m->U,
                                        NULL, cfg->U1, cfg->U2, cfg->wd1, s->user_done, upto,
                                        s->coefs, n_threads);
    if (st == PV_OK) {
        st = pv_opt_lazy_rows_f32(&cfg->emb, d.n_items, d.d_id, 0, NULL, m->V, NULL, cfg->V1,
                                  cfg->V2, cfg->wd1 * cfg->wdi, s->item_done, upto, s->coefs,
                                  n_threads);
    }
    return st;
}

pv_status
pv_train_epoch(const pv_train_config *cfg, pv_train_model *m, pv_index n_pairs,
               const int64_t *pair_users, const int64_t *pair_items, pv_index B, pv_index n_neg,
               uint64_t seed, uint32_t epoch, int64_t *step, int n_threads, double *loss,
               pv_index *n_batches)
{
    const pv_rec_dims d = m->dims;
    const pv_index du = d.d_id + d.d_c, C = 1 + n_neg;
    *loss = 0.0;
    *n_batches = 0;
    if (n_pairs < 1 || B < 1 || n_neg < 0 || d.n_items < 1) {
        return PV_EINVAL;
    }
    if (d.n_users > INT32_MAX || d.n_items > INT32_MAX) {
        return PV_ERANGE;
    }
    if (check_convert(cfg, m) != PV_OK) {
        return PV_EINVAL;
    }
    for (pv_index k = 0; k < n_pairs; k++) {
        if (pair_users[k] < 0 || pair_users[k] >= d.n_users || pair_items[k] < 0 ||
            pair_items[k] >= d.n_items) {
            return PV_EINDEX;
        }
    }
    if (B > n_pairs) {
        B = n_pairs;
    }
    const pv_index n_steps = (n_pairs + B - 1) / B;
    if (n_steps > INT32_MAX) {
        return PV_ERANGE;
    }
    epoch_space s;
    pv_status st = alloc_space(&s, d, m->convert, n_pairs, B, C, n_steps);
    if (st != PV_OK) {
        return st;
    }
    if (cfg->reg == PV_REG_FULL) {
        pv_opt_coefs(&cfg->emb, *step + 1, n_steps, s.coefs);
    }
    pv_permutation(n_pairs, seed, PV_STREAM_SHUFFLE, epoch, s.perm);
    double total = 0.0;
    pv_index n_done = 0;
    for (pv_index lo = 0; lo < n_pairs; lo += B) {
        const pv_index nb = (n_pairs - lo < B) ? n_pairs - lo : B;
#pragma omp parallel for num_threads(n_threads) schedule(static)
        for (pv_index r = 0; r < nb; r++) {
            const int64_t k = s.perm[lo + r];
            s.users[r] = pair_users[k];
            s.items[r * C] = pair_items[k];
            pv_train_negatives(d.n_items, n_neg, seed, epoch, lo + r, s.items + r * C + 1);
        }
        const pv_index n_ub = assign_slots(nb, s.users, s.user_slot, s.user_list);
        const pv_index n_ib =
            (nb * C) * 8 >= d.n_items
                ? assign_sorted_slots(nb * C, s.items, d.n_items, s.item_slot, s.item_list)
                : assign_slots(nb * C, s.items, s.item_slot, s.item_list);
        memset(s.gU, 0, sizeof(float) * (size_t)(n_ub * du));
        memset(s.gV, 0, sizeof(float) * (size_t)(n_ib * d.d_id));
        double batch_loss = 0.0;
        st = catch_up_rows(cfg, m, &s, n_ub, n_ib, (int32_t)(n_done + 1), n_threads);
        if (st == PV_OK) {
            st = batch_gradient(m, &s, nb, C, n_ub, n_ib, &batch_loss, n_threads);
        }
        if (st == PV_OK) {
            batch_loss += add_l1(cfg, d, m->W, s.gW);
            st = optimiser_steps(cfg, m, &s, n_ub, n_ib, *step + 1, (int32_t)(n_done + 1),
                                 n_threads);
        }
        for (pv_index k = 0; k < n_ub; k++) {
            s.user_slot[s.user_list[k]] = -1;
        }
        for (pv_index k = 0; k < n_ib; k++) {
            s.item_slot[s.item_list[k]] = -1;
        }
        if (st != PV_OK) {
            break;
        }
        *step += 1;
        total += batch_loss;
        n_done++;
    }
    /* Even after an error the deferred rows catch up to the last completed step. */
    pv_status flushed = flush_deferred(cfg, m, &s, (int32_t)n_done, n_threads);
    if (st == PV_OK) {
        st = flushed;
    }
    free_space(&s);
    *loss = total;
    *n_batches = n_done;
    return st;
}
