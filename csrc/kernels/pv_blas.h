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

/*
 * GEMM in fixed blocks: row-major C (m x n) = alpha op(A) op(B) + beta C, computed
 * as one single-threaded BLAS call per block of PV_GEMM_BLOCK rows of C
 * (PV_SPLIT_ROWS) or columns of C (PV_SPLIT_COLS), the blocks shared out among
 * n_threads OpenMP threads (one thread below PV_GEMM_PARALLEL_FLOPS).  The
 * blocks depend on the sizes alone and neither split cuts the k sum, so every
 * element of C has the same bits at any n_threads, whatever the BLAS kernel:
 * use it wherever a GEMM would otherwise run outside the caller's own
 * partition of the work.  The caller checks the sizes with pv_blas_fits and
 * holds BLAS at one thread (the binding does, pv_bind_blas.c).
 */
#define PV_GEMM_BLOCK 64
#define PV_GEMM_PARALLEL_FLOPS 4.0e6
typedef enum { PV_SPLIT_ROWS = 0, PV_SPLIT_COLS = 1 } pv_gemm_split;

void pv_gemm_blocked_f32(pv_gemm_split split, enum PV_CBLAS_TRANSPOSE ta,
                         enum PV_CBLAS_TRANSPOSE tb, pv_index m, pv_index n, pv_index k,
                         float alpha, const float *A, pv_index lda, const float *B,
                         pv_index ldb, float beta, float *C, pv_index ldc, int n_threads);
void pv_gemm_blocked_f64(pv_gemm_split split, enum PV_CBLAS_TRANSPOSE ta,
                         enum PV_CBLAS_TRANSPOSE tb, pv_index m, pv_index n, pv_index k,
                         double alpha, const double *A, pv_index lda, const double *B,
                         pv_index ldb, double beta, double *C, pv_index ldc, int n_threads);

#endif /* PV_BLAS_H */
