/*
 * impl/pv_gemm_impl.h -- type-generic body of pv_gemm.c, included once per type
 * with PV_T, PV_FN(name) and PV_GEMM defined, then impl/pv_undef.h.
 */

void
PV_FN(pv_gemm_blocked)(pv_gemm_split split, enum PV_CBLAS_TRANSPOSE ta,
                       enum PV_CBLAS_TRANSPOSE tb, pv_index m, pv_index n, pv_index k,
                       PV_T alpha, const PV_T *A, pv_index lda, const PV_T *B, pv_index ldb,
                       PV_T beta, PV_T *C, pv_index ldc, int n_threads)
{
    const pv_index len = split == PV_SPLIT_ROWS ? m : n;
    const pv_index n_blocks = (len + PV_GEMM_BLOCK - 1) / PV_GEMM_BLOCK;
    const double flops = 2.0 * (double)m * (double)n * (double)k;
#pragma omp parallel for num_threads(n_threads) schedule(static) \
    if (n_blocks > 1 && flops >= PV_GEMM_PARALLEL_FLOPS)
    for (pv_index t = 0; t < n_blocks; t++) {
        const pv_index lo = t * PV_GEMM_BLOCK;
        const pv_index nb = len - lo < PV_GEMM_BLOCK ? len - lo : PV_GEMM_BLOCK;
        if (split == PV_SPLIT_ROWS) {
            const PV_T *Ab = ta == PvNoTrans ? A + lo * lda : A + lo;
            PV_GEMM(PvRowMajor, ta, tb, (pv_blas_int)nb, (pv_blas_int)n, (pv_blas_int)k, alpha,
                    Ab, (pv_blas_int)lda, B, (pv_blas_int)ldb, beta, C + lo * ldc,
                    (pv_blas_int)ldc);
        } else {
            const PV_T *Bb = tb == PvNoTrans ? B + lo : B + lo * ldb;
            PV_GEMM(PvRowMajor, ta, tb, (pv_blas_int)m, (pv_blas_int)nb, (pv_blas_int)k, alpha,
                    A, (pv_blas_int)lda, Bb, (pv_blas_int)ldb, beta, C + lo, (pv_blas_int)ldc);
        }
    }
}
