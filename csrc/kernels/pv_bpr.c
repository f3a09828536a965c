#include <math.h>
#include <stdlib.h>
#include "pv_bpr.h"
#include "pv_rng.h"
#include "pv_train.h"

double
pv_softplus_neg(double x)
{
    return x > 0 ? log1p(exp(-x)) : -x + log1p(exp(x));
}

pv_status
pv_bpr_epoch(pv_index n_users, pv_index n_items, pv_index n_pairs, const int64_t *pair_users,
             const int64_t *pair_items, pv_index B, uint64_t seed, uint32_t epoch,
             pv_bpr_step_fn step_fn, void *model, int64_t *step, double *loss,
             pv_index *n_batches, int n_threads)
{
    *loss = 0.0;
    *n_batches = 0;
    if (n_pairs < 1 || B < 1 || n_items < 1) {
        return PV_EINVAL;
    }
    for (pv_index k = 0; k < n_pairs; k++) {
        if (pair_users[k] < 0 || pair_users[k] >= n_users || pair_items[k] < 0 ||
            pair_items[k] >= n_items) {
            return PV_EINDEX;
        }
    }
    if (B > n_pairs) {
        B = n_pairs;
    }
    int64_t *perm = malloc(sizeof(int64_t) * (size_t)n_pairs);
    int64_t *triples = malloc(sizeof(int64_t) * (size_t)(3 * B));
    if (perm == NULL || triples == NULL) {
        free(perm);
        free(triples);
        return PV_ENOMEM;
    }
    pv_permutation(n_pairs, seed, PV_STREAM_SHUFFLE, epoch, perm);
    int64_t *users = triples, *pos = triples + B, *neg = triples + 2 * B;
    double total = 0.0;
    pv_index done = 0;
    pv_status st = PV_OK;
    for (pv_index lo = 0; st == PV_OK && lo < n_pairs; lo += B) {
        const pv_index nb = (n_pairs - lo < B) ? n_pairs - lo : B;
        for (pv_index r = 0; r < nb; r++) {
            users[r] = pair_users[perm[lo + r]];
            pos[r] = pair_items[perm[lo + r]];
            pv_train_negatives(n_items, 1, seed, epoch, lo + r, neg + r);
        }
        double batch_loss = 0.0;
        st = step_fn(model, nb, users, pos, neg, *step + 1, &batch_loss, n_threads);
        if (st == PV_OK) {
            *step += 1;
            total += batch_loss;
            done++;
        }
    }
    free(perm);
    free(triples);
    *loss = total;
    *n_batches = done;
    return st;
}
