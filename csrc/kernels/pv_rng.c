#include <math.h>
#include "pv_rng.h"

void
pv_normal_pair(pv_philox_ctr r, double *z0, double *z1)
{
    /* u1 in (0, 1], so log(u1) is finite. */
    double u1 = 1.0 - pv_unit_double(r.v[0], r.v[1]);
    double u2 = pv_unit_double(r.v[2], r.v[3]);
    double rad = sqrt(-2.0 * log(u1));
    double ang = 6.283185307179586476925286766559 * u2;
    *z0 = rad * cos(ang);
    *z1 = rad * sin(ang);
}

pv_status
pv_uniform_ints(int64_t n, int64_t high, uint64_t key, uint32_t stream, uint32_t hi,
                int64_t *out, int n_threads)
{
    if (n < 0 || high <= 0) {
        return PV_EINVAL;
    }
    int64_t n_blocks = (n + 1) / 2;
#pragma omp parallel for num_threads(n_threads) schedule(static)
    for (int64_t blk = 0; blk < n_blocks; blk++) {
        pv_philox_ctr r = pv_philox4x32(key, stream, hi, (uint32_t)blk, (uint32_t)(blk >> 32));
        out[2 * blk] = pv_bounded64(r.v[0], r.v[1], high);
        if (2 * blk + 1 < n) {
            out[2 * blk + 1] = pv_bounded64(r.v[2], r.v[3], high);
        }
    }
    return PV_OK;
}

void
pv_permutation(int64_t n, uint64_t key, uint32_t stream, uint32_t hi, int64_t *out)
{
    for (int64_t i = 0; i < n; i++) {
        out[i] = i;
    }
    /* Fisher-Yates from the top: position i swaps with a draw in [0, i]. */
    for (int64_t i = n - 1; i > 0; i--) {
        pv_philox_ctr r = pv_philox4x32(key, stream, hi, (uint32_t)i, (uint32_t)(i >> 32));
        int64_t j = pv_bounded64(r.v[0], r.v[1], i + 1);
        int64_t t = out[i];
        out[i] = out[j];
        out[j] = t;
    }
}
