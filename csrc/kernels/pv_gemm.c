/* pv_gemm.c -- GEMM in fixed blocks shared out among threads (float32 and float64). */
#include "pv_blas.h"

#define PV_T float
#define PV_FN(n) n##_f32
#define PV_GEMM PV_CBLAS(cblas_sgemm)
#include "impl/pv_gemm_impl.h"
#include "impl/pv_undef.h"

#define PV_T double
#define PV_FN(n) n##_f64
#define PV_GEMM PV_CBLAS(cblas_dgemm)
#include "impl/pv_gemm_impl.h"
#include "impl/pv_undef.h"
