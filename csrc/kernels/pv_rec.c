/* pv_rec.c -- instantiates the backbone batch kernel for float32 and float64. */
#include <math.h>
#include <stdint.h>
#include "pv_blas.h"
#include "pv_rec.h"

pv_status
pv_rec_check_ids(pv_index B, pv_index C, const int64_t *users, const int64_t *items,
                 pv_index n_users, pv_index n_items, const int32_t *user_slot,
                 pv_index n_user_slots, const int32_t *item_slot, pv_index n_item_slots,
                 const int64_t *item_list)
{
    for (pv_index r = 0; r < B; r++) {
        if (users[r] < 0 || users[r] >= n_users) {
            return PV_EINDEX;
        }
        int32_t s = user_slot[users[r]];
        if (s < 0 || s >= n_user_slots) {
            return PV_EINDEX;
        }
    }
    for (pv_index p = 0; p < B * C; p++) {
        if (items[p] < 0 || items[p] >= n_items) {
            return PV_EINDEX;
        }
        int32_t s = item_slot[items[p]];
        if (s < 0 || s >= n_item_slots || (item_list != NULL && item_list[s] != items[p])) {
            return PV_EINDEX;
        }
    }
    return PV_OK;
}

#define PV_T float
#define PV_FN(n) n##_f32
#define PV_EXP expf
#define PV_LOG1P log1pf
#include "impl/pv_rec_impl.h"
#include "impl/pv_undef.h"

#define PV_T double
#define PV_FN(n) n##_f64
#define PV_EXP exp
#define PV_LOG1P log1p
#include "impl/pv_rec_impl.h"
#include "impl/pv_undef.h"
