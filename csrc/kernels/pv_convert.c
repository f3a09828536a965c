/* pv_convert.c -- instantiates the convert-module batch kernel (method.md §4.2) for
 * float32 and float64.  See pv_convert.h. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#include "pv_blas.h"
#include "pv_convert.h"
#include "pv_rec.h"

/* Fixed tile sizes (pv_convert_items' item rows; feature columns of the gW reduction):
 * the results never depend on how tiles are spread over threads. */
#define PV_CONVERT_ROWS 64
#define PV_CONVERT_COLS 64
/* The attention batch's work units (see cv_attention_plan): at most PV_CONVERT_SEGS
 * segments of slots, done in chunks whose gathered feature rows take about
 * PV_CONVERT_CHUNK_BYTES (so they stay in a core's L2 between the gather and the GEMM). */
#define PV_CONVERT_SEGS 16
#define PV_CONVERT_CHUNK_BYTES (256 * 1024)
#define PV_CONVERT_MIN_CHUNK 32
/* Partial sums of the small dots. */
#define PV_CONVERT_LANES 16

typedef struct {
    pv_index n_seg, seg_len, chunk, scratch, part;
} cv_plan;

/*
 * y[k] = tanh(y[k] + c[k]) for float32, in a loop the compiler vectorises (libm's
 * tanhf is a scalar call and was most of the attention's cost): with a = min(|x|, 20),
 * t = exp(-2a) by Cody-Waite reduction (n = round(-2a / ln 2), r = -2a - n ln 2,
 * |r| <= ln 2 / 2), a degree-6 Taylor polynomial for e^r (relative error < 2e-7) and
 * 2^n from the exponent bits; tanh x = sign(x) (1 - t) / (1 + t).  Absolute error
 * below 4e-7 (float32 rounding is 6e-8 near 1); tanh(20) rounds to 1 in float32.
 */
PV_HOT static void
cv_tanh_rows_f32(pv_index n, float *PV_RESTRICT y, const float *PV_RESTRICT c)
{
    for (pv_index k = 0; k < n; k++) {
        const float x = y[k] + c[k];
        float a = fabsf(x);
        a = a < 20.0f ? a : 20.0f;
        const float z = -2.0f * a;
        const float nf = (z * 1.44269504f + 12582912.0f) - 12582912.0f; /* round to integer */
        const float r = (z - nf * 0.693359375f) + nf * 2.12194440e-4f;
        const float p =
            1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 +
                                                                                  r / 720)))));
        const int32_t bits = ((int32_t)nf + 127) << 23;
        float scale;
        memcpy(&scale, &bits, sizeof scale);
        const float t = p * scale;
        y[k] = copysignf((1.0f - t) / (1.0f + t), x);
    }
}

static void
cv_tanh_rows_f64(pv_index n, double *PV_RESTRICT y, const double *PV_RESTRICT c)
{
    for (pv_index k = 0; k < n; k++) {
        y[k] = tanh(y[k] + c[k]);
    }
}

#define PV_T float
#define PV_FN(n) n##_f32
#define PV_GEMM PV_CBLAS(cblas_sgemm)
#define PV_EXP expf
#define PV_LOG1P log1pf
#define PV_TANH_ROWS cv_tanh_rows_f32
#define PV_EPSILON FLT_EPSILON
#define PV_NORMAL_MIN FLT_MIN
#include "impl/pv_convert_impl.h"
#include "impl/pv_undef.h"
#undef PV_TANH_ROWS
#undef PV_EPSILON
#undef PV_NORMAL_MIN

#define PV_T double
#define PV_FN(n) n##_f64
#define PV_GEMM PV_CBLAS(cblas_dgemm)
#define PV_EXP exp
#define PV_LOG1P log1p
#define PV_TANH_ROWS cv_tanh_rows_f64
#define PV_EPSILON DBL_EPSILON
#define PV_NORMAL_MIN DBL_MIN
#include "impl/pv_convert_impl.h"
#include "impl/pv_undef.h"
#undef PV_TANH_ROWS
#undef PV_EPSILON
#undef PV_NORMAL_MIN
