/* pv_rec.c -- instantiates the backbone batch kernel for float32 and float64. */
#include <math.h>
#include <stdint.h>
#include "pv_blas.h"
#include "pv_rec.h"

#define PV_T float
#define PV_FN(n) n##_f32
#define PV_GEMM PV_CBLAS(cblas_sgemm)
#define PV_EXP expf
#define PV_LOG1P log1pf
#include "impl/pv_rec_impl.h"
#include "impl/pv_undef.h"

#define PV_T double
#define PV_FN(n) n##_f64
#define PV_GEMM PV_CBLAS(cblas_dgemm)
#define PV_EXP exp
#define PV_LOG1P log1p
#include "impl/pv_rec_impl.h"
#include "impl/pv_undef.h"
