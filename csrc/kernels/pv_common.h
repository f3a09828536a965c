/*
 * pv_common.h -- shared types and macros of the painvrl C kernels.
 *
 * Kernels are plain C99 + OpenMP: no Python or NumPy headers.  They take raw
 * pointers and sizes, never allocate in hot loops, never touch global state
 * and report failures through a pv_status value.
 */
#ifndef PV_COMMON_H
#define PV_COMMON_H

#include <stddef.h>
#include <stdint.h>

typedef ptrdiff_t pv_index;

typedef enum {
    PV_OK = 0,
    PV_ENOMEM = 1,   /* workspace allocation failed                      */
    PV_EDOM = 2,     /* a non-finite value was produced or found         */
    PV_ERANGE = 3,   /* a size does not fit the BLAS integer type        */
    PV_EINVAL = 4,   /* an argument is outside its documented range      */
    PV_EINDEX = 5    /* an id is negative or >= the table size           */
} pv_status;

#if defined(__GNUC__) || defined(__clang__)
#define PV_RESTRICT __restrict__
#define PV_INLINE static inline __attribute__((always_inline))
#define PV_UNUSED __attribute__((unused))
#else
#define PV_RESTRICT
#define PV_INLINE static inline
#define PV_UNUSED
#endif

/*
 * Hot loops are compiled for several instruction sets and the best one is
 * picked at load time (GCC function multi-versioning), so a portable build
 * still runs AVX2/AVX-512 code where the processor has it.
 */
/* The clones are picked by ISA level (x86-64-v3 = AVX2 + FMA, v4 = AVX-512), not by
 * CPU model, so newer processors get them too (GCC >= 12). */
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) && \
    !defined(PV_NO_CLONES) && !defined(__SANITIZE_ADDRESS__) && __GNUC__ >= 12
#define PV_HOT __attribute__((target_clones("default", "arch=x86-64-v3", "arch=x86-64-v4")))
#else
#define PV_HOT
#endif

#ifdef _OPENMP
#include <omp.h>
#define PV_OMP_THREAD_ID() omp_get_thread_num()
#else
#define PV_OMP_THREAD_ID() 0
#endif

/* Number of threads a kernel uses when the caller passes n_threads <= 0. */
int pv_default_threads(void);

#endif /* PV_COMMON_H */
