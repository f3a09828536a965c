/* pv_convert.c -- instantiates the convert-module batch kernel (method.md §4.2) for
 * float32 and float64.  See pv_convert.h. */
#include <math.h>
#include <stdint.h>
#include "pv_blas.h"
#include "pv_convert.h"
#include "pv_rec.h"

/* Fixed tile sizes of the BLAS calls (slot rows; feature / d_c columns): the
 * results never depend on how tiles are spread over threads. */
#define PV_CONVERT_ROWS 64
#define PV_CONVERT_COLS 64

#define PV_T float
#define PV_FN(n) n##_f32
#define PV_GEMM PV_CBLAS(cblas_sgemm)
#define PV_EXP expf
#define PV_LOG1P log1pf
#define PV_TANH tanhf
#include "impl/pv_convert_impl.h"
#include "impl/pv_undef.h"
#undef PV_TANH

#define PV_T double
#define PV_FN(n) n##_f64
#define PV_GEMM PV_CBLAS(cblas_dgemm)
#define PV_EXP exp
#define PV_LOG1P log1p
#define PV_TANH tanh
#include "impl/pv_convert_impl.h"
#include "impl/pv_undef.h"
#undef PV_TANH
