/*
 * compute_internal.h — private to src/compute: the context, the thread
 * pool, the CPU feature table and the per-SIMD-level kernel tables.
 *
 * Every SIMD level provides one px_kernels_t.  The public kernels (gemm.c,
 * ops.c, q8.c, ...) do the shape handling, blocking and threading once, in
 * plain C, and call the level's table for the inner loops, so the scalar
 * reference and the AVX2 / AVX-512 paths share everything but the arithmetic
 * that has to be vectorised — and that arithmetic follows the orders
 * written in docs/compute.md, operation for operation.
 */
#ifndef PX_COMPUTE_INTERNAL_H
#define PX_COMPUTE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "plexus/compute.h"

#define PX_COMPUTE_MAX_THREADS 64

/* GEMM blocking.  B is packed in panels of PX_NR columns: panel[k][PX_NR]
 * for k in the current k-block; a k-block holds at most PX_KC values of k
 * and a column block at most PX_NC columns (PX_NC % PX_NR == 0). */
#define PX_NR 16
#define PX_KC 256
#define PX_NC 512
/* Per-worker scratch (floats): one packed B block. */
#define PX_SCRATCH_FLOATS ((size_t)PX_KC * PX_NC)
/* Context scratch for quantised activations of px_matmul_q8 (bytes). */
#define PX_Q8_SCRATCH_BYTES ((size_t)1 << 18)
/* Largest K of px_matmul_q8: two packed 16-column panels must fit a worker's
 * scratch. */
#define PX_Q8_MAX_K 32768

typedef struct {
  int avx2, fma, f16c;
  int avx512f, avx512bw, avx512vl, avx512dq, avx512vnni;
} px_cpu_features_t;

/* Filled once (thread-safe), then read-only. */
const px_cpu_features_t *px_cpu_features(void);

/* ---- thread pool ---------------------------------------------------------
 * fn(arg, task, worker) is called once for every task in [0, ntasks); worker
 * in [0, threads) identifies the calling thread (for per-worker scratch).
 * The caller's thread takes part as worker 0.  Returns when all are done. */
typedef void (*px_task_fn)(void *arg, int task, int worker);
typedef struct px_pool px_pool_t;
int px_pool_new(int threads, px_pool_t **out);
void px_pool_free(px_pool_t *p);
void px_pool_run(px_pool_t *p, int ntasks, px_task_fn fn, void *arg);

struct px_compute {
  px_simd_t simd;
  int threads;
  px_pool_t *pool; /* NULL when threads == 1 */
  float *scratch;  /* threads * PX_SCRATCH_FLOATS, 64-byte aligned */
  void *scratch_raw;
  int8_t *q8a;    /* PX_Q8_SCRATCH_BYTES: quantised A rows */
  float *q8s;     /* their scales */
  int32_t *q8sum; /* their per-group sums */
};

void px_compute_parallel(px_compute_t *c, int ntasks, px_task_fn fn, void *arg);
static inline float *px_worker_scratch(px_compute_t *c, int worker) {
  return c->scratch + (size_t)worker * PX_SCRATCH_FLOATS;
}

/* ---- per-level kernel tables --------------------------------------------- */

/* One GEMM register-tile pass over a k-block:
 *   C[r][j] (r < mr, j < ncols) = (load_c ? C[r][j] : +0) then, for k = 0 ..
 *   kc-1 in order, fma(A(r,k), B(k,j), acc)
 * A(r,k) = a[r*sar + k*sak]; B(k, 16*p + j') = b[p*bstride + k*16 + j'].
 * mr <= the level's MR, ncols <= the level's NP*16. */
typedef void (*px_tile_fn)(int mr, int ncols, int kc, const float *a,
                           ptrdiff_t sar, ptrdiff_t sak, const float *b,
                           ptrdiff_t bstride, float *C, ptrdiff_t ldc,
                           int load_c);

/* int8 tile: rows r < mr of quantised A (qa[r*lda + k], per-group scales
 * sa[r*ngroups + g] and sums of the group's values asum[r*ngroups + g])
 * against packed W panels (q8.c: panel p at wp + p*pstride: 16*K bytes,
 * then 16*ngroups float scales), ncols <= the level's q8_np * 16:
 *   acc = +0; for g: acc = fma((float)isum_g, sa*sw, acc). */
typedef void (*px_q8_tile_fn)(int mr, int ncols, int ngroups, int G,
                              const int8_t *qa, ptrdiff_t lda, const float *sa,
                              const int32_t *asum, const int8_t *wp,
                              ptrdiff_t pstride, float *C, ptrdiff_t ldc);

typedef struct {
  px_simd_t level;
  int mr; /* rows of a register tile */
  int np; /* 16-column panels of a register tile */
  px_tile_fn tile;
  int q8_mr;
  int q8_np;
  px_q8_tile_fn q8_tile;
  /* Elementwise. */
  void (*add)(float *out, const float *a, const float *b, size_t n);
  void (*mul)(float *out, const float *a, const float *b, size_t n);
  void (*relu)(float *out, const float *x, size_t n);
  void (*silu)(float *out, const float *x, size_t n);
  void (*gelu)(float *out, const float *x, size_t n);
  /* Row kernels (one row of n). */
  void (*softmax)(float *out, const float *x, int n);
  void (*layernorm)(float *out, const float *x, const float *gamma,
                    const float *beta, int n, float eps);
  void (*rmsnorm)(float *out, const float *x, const float *w, int n, float eps);
  /* 16-lane strided dot product with the fixed tree (docs/compute.md). */
  float (*dot)(const float *x, const float *y, int n);
  /* y[i] = fma(a, x[i], y[i]). */
  void (*axpy)(float *y, float a, const float *x, int n);
} px_kernels_t;

/* Tile kernels of each level (gemm*.c, q8*.c). */
void px_tile_scalar(int mr, int ncols, int kc, const float *a, ptrdiff_t sar,
                    ptrdiff_t sak, const float *b, ptrdiff_t bstride, float *C,
                    ptrdiff_t ldc, int load_c);
void px_tile_avx2(int mr, int ncols, int kc, const float *a, ptrdiff_t sar,
                  ptrdiff_t sak, const float *b, ptrdiff_t bstride, float *C,
                  ptrdiff_t ldc, int load_c);
void px_tile_avx512(int mr, int ncols, int kc, const float *a, ptrdiff_t sar,
                    ptrdiff_t sak, const float *b, ptrdiff_t bstride, float *C,
                    ptrdiff_t ldc, int load_c);
void px_q8_tile_scalar(int mr, int ncols, int ngroups, int G, const int8_t *qa,
                       ptrdiff_t lda, const float *sa, const int32_t *asum,
                       const int8_t *wp, ptrdiff_t pstride, float *C,
                       ptrdiff_t ldc);
void px_q8_tile_avx2(int mr, int ncols, int ngroups, int G, const int8_t *qa,
                     ptrdiff_t lda, const float *sa, const int32_t *asum,
                     const int8_t *wp, ptrdiff_t pstride, float *C,
                     ptrdiff_t ldc);
void px_q8_tile_avx512(int mr, int ncols, int ngroups, int G, const int8_t *qa,
                       ptrdiff_t lda, const float *sa, const int32_t *asum,
                       const int8_t *wp, ptrdiff_t pstride, float *C,
                       ptrdiff_t ldc);

/* px_quantize_q8's rule on n / G consecutive groups (scales and, when
 * sums != NULL, per-group sums of q), AVX-512 (q8_avx512.c): the same bits
 * as the scalar reference. */
void px_q8_quant_avx512(const float *x, size_t n, int G, int8_t *q,
                        float *scales, int32_t *sums);

/* GEMV pieces for callers that split the work themselves (llama.c's
 * one-dispatch-per-token forward): column panels [p0, p1) of C[N] = A[K] .
 * W^T on packed weights, exactly the tile calls px_matmul_f32_packed /
 * px_matmul_q8_packed make for M = 1 (same bits); p0 must be a multiple of
 * the level's np (q8_np).  px_q8_quantize_row quantises A as
 * px_matmul_q8 does (q, scales and per-group sums, K / G groups). */
void px_f32_gemv_panels(const px_kernels_t *k, float *C, const float *A,
                        const float *Wp, int N, int K, int p0, int p1);
void px_q8_quantize_row(const float *x, int K, int G, int8_t *q, float *s,
                        int32_t *sum);
void px_q8_gemv_panels(const px_kernels_t *k, float *C, const int8_t *qa,
                       const float *sa, const int32_t *asum, const void *Wp,
                       int G, int N, int K, int p0, int p1);

extern const px_kernels_t px_kernels_scalar;
extern const px_kernels_t px_kernels_avx2;
extern const px_kernels_t px_kernels_avx512;

const px_kernels_t *px_kernels_for(px_simd_t s);
/* c may be NULL: the best level of this CPU. */
const px_kernels_t *px_kernels_ctx(const px_compute_t *c);

/* ---- shared scalar helpers (math.c) ---------------------------------------
 */

/* The fixed reduction tree over 16 partial sums: for h = 8, 4, 2, 1:
 * s[j] = s[j] + s[j + h] for j < h; returns s[0]. */
static inline float px_tree16(float s[16]) {
  for (int h = 8; h >= 1; h >>= 1)
    for (int j = 0; j < h; j++)
      s[j] = s[j] + s[j + h];
  return s[0];
}

static inline uint32_t px_f2u(float f) {
  union {
    float f;
    uint32_t u;
  } v;
  v.f = f;
  return v.u;
}
static inline float px_u2f(uint32_t u) {
  union {
    float f;
    uint32_t u;
  } v;
  v.u = u;
  return v.f;
}

/* Constants of px_expf, shared by every level so they cannot drift. */
#define PX_EXP_LO (-104.0f)
#define PX_EXP_HI 89.0f
#define PX_EXP_LOG2E 1.44269504088896341f
#define PX_EXP_MAGIC 12582912.0f /* 1.5 * 2^23: rounds to an integer */
#define PX_EXP_C1 0.693359375f
#define PX_EXP_C2 (-2.12194440e-4f)
#define PX_EXP_P0 1.9875691500e-4f
#define PX_EXP_P1 1.3981999507e-3f
#define PX_EXP_P2 8.3334519073e-3f
#define PX_EXP_P3 4.1665795894e-2f
#define PX_EXP_P4 1.6666665459e-1f
#define PX_EXP_P5 5.0000001201e-1f
/* GELU (tanh form) as x * sigmoid(v), v = 2*sqrt(2/pi)*(x + 0.044715 x^3). */
#define PX_GELU_A 0.044715f
#define PX_GELU_B 1.5957691216057308f

#endif
