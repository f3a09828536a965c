/*
 * pv_blas.h -- a small CBLAS shim in the spirit of numpy's npy_cblas.h.
 *
 * PV_CBLAS(name) pastes PV_BLAS_PREFIX / PV_BLAS_SUFFIX around a CBLAS symbol,
 * so a prefixed or suffixed OpenBLAS can be linked by passing -D flags.  The
 * enums are declared here because not every provider ships cblas.h.
 */
#ifndef PV_BLAS_H
#define PV_BLAS_H

#include <limits.h>
#include "pv_common.h"

#ifdef PV_BLAS_ILP64
typedef int64_t pv_blas_int;
#define PV_BLAS_INT_MAX INT64_MAX
#else
typedef int pv_blas_int;
#define PV_BLAS_INT_MAX INT_MAX
#endif

#ifndef PV_BLAS_PREFIX
#define PV_BLAS_PREFIX
#endif
#ifndef PV_BLAS_SUFFIX
#define PV_BLAS_SUFFIX
#endif
#define PV_BLAS_CAT3_(a, b, c) a##b##c
#define PV_BLAS_CAT3(a, b, c) PV_BLAS_CAT3_(a, b, c)
#define PV_CBLAS(name) PV_BLAS_CAT3(PV_BLAS_PREFIX, name, PV_BLAS_SUFFIX)

enum PV_CBLAS_ORDER { PvRowMajor = 101, PvColMajor = 102 };
enum PV_CBLAS_TRANSPOSE { PvNoTrans = 111, PvTrans = 112 };

void PV_CBLAS(cblas_sgemm)(enum PV_CBLAS_ORDER order, enum PV_CBLAS_TRANSPOSE ta,
                           enum PV_CBLAS_TRANSPOSE tb, pv_blas_int m, pv_blas_int n,
                           pv_blas_int k, float alpha, const float *a, pv_blas_int lda,
                           const float *b, pv_blas_int ldb, float beta, float *c,
                           pv_blas_int ldc);
void PV_CBLAS(cblas_dgemm)(enum PV_CBLAS_ORDER order, enum PV_CBLAS_TRANSPOSE ta,
                           enum PV_CBLAS_TRANSPOSE tb, pv_blas_int m, pv_blas_int n,
                           pv_blas_int k, double alpha, const double *a, pv_blas_int lda,
                           const double *b, pv_blas_int ldb, double beta, double *c,
                           pv_blas_int ldc);

/* True when every size fits the BLAS integer type. */
PV_INLINE int
pv_blas_fits(pv_index a, pv_index b, pv_index c)
{
    return a >= 0 && b >= 0 && c >= 0 && a <= PV_BLAS_INT_MAX && b <= PV_BLAS_INT_MAX &&
           c <= PV_BLAS_INT_MAX;
}

#endif /* PV_BLAS_H */
