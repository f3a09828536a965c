/*
 * pv_rng.h -- counter-based random numbers (Philox4x32-10, Salmon et al. 2011).
 *
 * A draw is a pure function of (key, counter): there is no hidden state, so
 * a stream can be split across threads in any way and still produce the same
 * numbers.  Kernels derive counters from (purpose, epoch, position) so a
 * seed fixes a whole run whatever the thread count.
 */
#ifndef PV_RNG_H
#define PV_RNG_H

#include "pv_common.h"

typedef struct {
    uint32_t v[4];
} pv_philox_ctr;

/* Streams: the first counter word, so different uses never share numbers. */
enum {
    PV_STREAM_SHUFFLE = 1,
    PV_STREAM_NEGATIVE = 2,
    PV_STREAM_GATE = 3,
    PV_STREAM_INIT = 4,
    PV_STREAM_ENV = 5
};

PV_INLINE uint32_t
pv_mulhilo32(uint32_t a, uint32_t b, uint32_t *hi)
{
    uint64_t p = (uint64_t)a * (uint64_t)b;
    *hi = (uint32_t)(p >> 32);
    return (uint32_t)p;
}

/* One Philox4x32-10 block: 128 random bits for (key, counter). */
PV_INLINE pv_philox_ctr
pv_philox4x32(uint64_t key, uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3)
{
    uint32_t k0 = (uint32_t)key, k1 = (uint32_t)(key >> 32);
    uint32_t x0 = c0, x1 = c1, x2 = c2, x3 = c3;
    for (int round = 0; round < 10; round++) {
        uint32_t hi0, hi1;
        uint32_t lo0 = pv_mulhilo32(0xD2511F53u, x0, &hi0);
        uint32_t lo1 = pv_mulhilo32(0xCD9E8D57u, x2, &hi1);
        uint32_t y0 = hi1 ^ x1 ^ k0;
        uint32_t y1 = lo1;
        uint32_t y2 = hi0 ^ x3 ^ k1;
        uint32_t y3 = lo0;
        x0 = y0;
        x1 = y1;
        x2 = y2;
        x3 = y3;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    pv_philox_ctr out = {{x0, x1, x2, x3}};
    return out;
}

/* Map 64 random bits to [0, n) by a 128-bit multiply (bias <= n / 2^64). */
PV_INLINE int64_t
pv_bounded64(uint32_t lo, uint32_t hi, int64_t n)
{
    uint64_t x = ((uint64_t)hi << 32) | lo;
    return (int64_t)(((unsigned __int128)x * (uint64_t)n) >> 64);
}

/* 24 random bits to a float in [0, 1). */
PV_INLINE double
pv_unit_double(uint32_t lo, uint32_t hi)
{
    uint64_t x = (((uint64_t)hi << 32) | lo) >> 11;
    return (double)x * (1.0 / 9007199254740992.0);
}

/*
 * Standard normal from one Philox block (Box-Muller on 2 x 53 bits).  Both
 * normals of the pair are returned.
 */
void pv_normal_pair(pv_philox_ctr r, double *z0, double *z1);

/*
 * Fill out[0..n) with uniform integers in [0, high): element t uses the
 * counter (stream, hi, t / 2), half of a block each.  Deterministic for any
 * thread count.
 */
pv_status pv_uniform_ints(int64_t n, int64_t high, uint64_t key, uint32_t stream, uint32_t hi,
                          int64_t *out, int n_threads);

/* A uniform random permutation of 0..n-1 (Fisher-Yates on counter draws). */
void pv_permutation(int64_t n, uint64_t key, uint32_t stream, uint32_t hi, int64_t *out);

#endif /* PV_RNG_H */
