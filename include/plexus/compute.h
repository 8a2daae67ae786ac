/*
 * plexus/compute.h — the deterministic tensor runtime: kernels.
 *
 * Defining property (DESIGN.md principle 2): the same inputs give
 * bit-identical outputs on every machine, compiler, optimisation level,
 * thread count and SIMD level.  How:
 *  - every reduction has ONE documented order, implemented identically by the
 *    scalar reference and the AVX2 / AVX-512 paths (docs/compute.md):
 *      * matmul / GEMV / conv (as GEMM): each output element accumulates its
 *        products sequentially in k = 0..K-1 with fused multiply-add
 *        (acc = fma(a_k, b_k, acc), acc starting at +0.0f), then adds the
 *        bias once (acc + bias).  Blocking over k keeps that order because a
 *        partial sum is resumed, never combined with another partial sum.
 *      * int8 grouped matmul: within a group of G, products are summed
 *        exactly in int32; groups are combined sequentially in float:
 *        acc = fma((float)isum_g, sa_g * sw_g, acc).
 *      * other reductions (softmax sum, norms' sums, attention) are
 *        sequential over the reduced axis unless docs/compute.md says
 *        otherwise for that kernel.
 *  - the build uses -ffp-contract=off and never -ffast-math; FMA appears only
 *    where written explicitly (fmaf / _mm*_fmadd_ps), so the compiler cannot
 *    change the rounding;
 *  - exp, tanh, sigmoid, SiLU, GELU, softmax use the project's own functions
 *    (px_expf ...), never libm's, whose results differ across libc versions;
 *  - threads split independent outputs (rows, column tiles) only, never a
 *    reduction, so the thread count cannot change a result.
 *
 * Layouts: row-major.  Weights of a linear layer are W[N][K] (out x in), as
 * in PyTorch, safetensors and llama2.c checkpoints.  Images are NCHW.
 *
 * A px_compute_t holds the chosen SIMD level and a thread pool; kernels take
 * it as their first argument.  PLEXUS_SIMD=scalar|avx2|avx512 and
 * PLEXUS_THREADS=N (environment) override the automatic choice when the
 * options leave it open.  No kernel allocates in its hot loop; scratch
 * memory belongs to the caller or to the context.  A context serves one
 * caller at a time (kernels on one context must not run concurrently).
 * The exact operation order of every kernel is in docs/compute.md.
 */
#ifndef PLEXUS_COMPUTE_H
#define PLEXUS_COMPUTE_H

#include <stddef.h>
#include <stdint.h>

#include "plexus/base.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- runtime context --------------------------------------------------- */

typedef enum {
  PX_SIMD_SCALAR = 0,
  PX_SIMD_AVX2 = 1,   /* AVX2 + FMA */
  PX_SIMD_AVX512 = 2, /* AVX-512 F/BW/VL (+VNNI used for int8 when present) */
} px_simd_t;

typedef struct {
  int simd;    /* -1: PLEXUS_SIMD or the best the CPU has; else px_simd_t */
  int threads; /* 0: PLEXUS_THREADS or the number of cores */
} px_compute_opts_t;

typedef struct px_compute px_compute_t;

/* PX_EINVAL if a forced SIMD level is not supported by this CPU (the error
 * message names the level); PX_ENOMEM. */
int px_compute_new(const px_compute_opts_t *opts, px_compute_t **out);
void px_compute_free(px_compute_t *c);
px_simd_t px_compute_simd(const px_compute_t *c);
int px_compute_threads(const px_compute_t *c);
const char *px_simd_name(px_simd_t s);
/* The best level this CPU supports (CPU feature table, filled once). */
px_simd_t px_cpu_best_simd(void);

/* ---- deterministic math (scalar, bit-exact everywhere) ------------------ */

float px_expf(float x);
float px_tanhf(float x);
float px_sigmoidf(float x);
float px_logf(float x);
float px_siluf(float x); /* x * sigmoid(x) */
float px_geluf(float x); /* tanh approximation, as GPT-2 */
/* sin and cos of a (|a| < 2^17; RoPE angles). */
void px_sincosf(float a, float *s, float *c);

/* ---- dense kernels (f32) ------------------------------------------------ */

/* C[M][N] = A[M][K] . W[N][K]^T (+ bias[N] if not NULL).  lda/ldw/ldc are
 * row strides in elements (>= K, K, N). */
void px_matmul_f32(px_compute_t *c, float *C, int ldc, const float *A, int lda,
                   const float *W, int ldw, const float *bias, int M, int N,
                   int K);
/* Pre-packed weights: W[N][K] rearranged once (e.g. at model load) into
 * panels of 16 output columns, [ceil(N/16)][K][16], zero padded; the layout
 * is the same for every SIMD level.  px_matmul_f32_packed gives results
 * bit-identical to px_matmul_f32 on the unpacked W, without re-packing W
 * on every call (GEMV: one pass over the weights).  Wp holds
 * px_pack_f32_size(N, K) floats, preferably 64-byte aligned. */
size_t px_pack_f32_size(int N, int K);
void px_pack_f32(float *Wp, const float *W, int ldw, int N, int K);
void px_matmul_f32_packed(px_compute_t *c, float *C, int ldc, const float *A,
                          int lda, const float *Wp, const float *bias, int M,
                          int N, int K);
/* General form for training: C[M][N] = beta*C + op(A) . op(B), where
 * op(A) is A[M][K] or A^T (A stored [K][M]), op(B) is B[K][N] or B^T
 * (B stored [N][K]).  beta is 0 or 1 only (accumulate: the sequential-k
 * order then continues from the existing C value). */
void px_gemm_f32(px_compute_t *c, int trans_a, int trans_b, int M, int N, int K,
                 const float *A, int lda, const float *B, int ldb, int beta,
                 float *C, int ldc);

/* ---- int8 grouped ------------------------------------------------------- */

/* Symmetric per-group quantisation: for each group of G values,
 * scale = max|x| / 127 (0 -> scale 0, q 0), q = round-half-away(x / scale)
 * computed as documented in docs/compute.md.  n % G == 0. */
void px_quantize_q8(const float *x, int n, int G, int8_t *q, float *scales);
/* C[M][N] = A[M][K] . W[N][K]^T with W int8 in groups of G along K and
 * scales Ws[N][K/G]; A is quantised per row on the fly (scratch from the
 * context).  K % G == 0. */
void px_matmul_q8(px_compute_t *c, float *C, const float *A, const int8_t *W,
                  const float *Ws, int G, int M, int N, int K);
/* Pre-packed int8 weights (W and its scales in one buffer, the layout of
 * docs/compute.md, the same at every SIMD level) for px_matmul_q8_packed:
 * bit-identical results to px_matmul_q8 without re-packing W per call.
 * Limits of both: G % 4 == 0, K % G == 0, K <= 32768 (an error is logged
 * and C left untouched otherwise). */
size_t px_pack_q8_size(int N, int K, int G); /* bytes */
void px_pack_q8(void *Wp, const int8_t *W, const float *Ws, int G, int N,
                int K);
void px_matmul_q8_packed(px_compute_t *c, float *C, const float *A,
                         const void *Wp, int G, int M, int N, int K);

/* ---- convolution and pooling (NCHW) ------------------------------------ */

typedef struct {
  int n, c, h, w;  /* input */
  int oc, kh, kw;  /* output channels, kernel */
  int stride, pad; /* same for both axes */
} px_conv2d_shape_t;

/* Output size: oh = (h + 2*pad - kh)/stride + 1 (likewise ow).  W is
 * [oc][c][kh][kw]; bias[oc] or NULL.  The reduction over (c, kh, kw) runs in
 * that nested order, sequentially, with FMA. */
void px_conv2d_f32(px_compute_t *c, float *out, const float *in, const float *W,
                   const float *bias, const px_conv2d_shape_t *s);
void px_maxpool2d_f32(float *out, const float *in, int n, int ch, int h, int w,
                      int k, int stride);
void px_avgpool2d_f32(float *out, const float *in, int n, int ch, int h, int w,
                      int k, int stride);

/* ---- elementwise and normalisation --------------------------------------
 * c picks the SIMD level (results are identical at every level); c may be
 * NULL: the best level of this CPU.  out may equal an input. */

void px_add_f32(px_compute_t *c, float *out, const float *a, const float *b,
                size_t n);
void px_mul_f32(px_compute_t *c, float *out, const float *a, const float *b,
                size_t n);
void px_relu_f32(px_compute_t *c, float *out, const float *x, size_t n);
void px_silu_f32(px_compute_t *c, float *out, const float *x, size_t n);
void px_gelu_f32(px_compute_t *c, float *out, const float *x, size_t n);
/* Row-wise softmax of rows x cols (cols >= 1), in place allowed. */
void px_softmax_f32(px_compute_t *c, float *out, const float *x, int rows,
                    int cols);
/* gamma / beta may be NULL (1 / 0). */
void px_layernorm_f32(px_compute_t *c, float *out, const float *x,
                      const float *gamma, const float *beta, int rows, int cols,
                      float eps);
void px_rmsnorm_f32(px_compute_t *c, float *out, const float *x,
                    const float *weight, int rows, int cols, float eps);
/* Rotary embedding in place on x[n_heads][head_dim] at position pos
 * (llama2.c convention: pairs (2i, 2i+1), theta = 10000). */
void px_rope_f32(float *x, int n_heads, int head_dim, int pos);

/* ---- attention ---------------------------------------------------------- */

/* Causal multi-head attention for one new position `pos` with grouped-query
 * attention (n_kv_heads divides n_heads).  q[n_heads][hd]; key/value caches
 * kcache/vcache[seq_len][n_kv_heads][hd] already hold positions 0..pos;
 * scores scratch[n_heads][seq_len]; out[n_heads][hd]. */
void px_attention_f32(px_compute_t *c, float *out, const float *q,
                      const float *kcache, const float *vcache, float *scores,
                      int n_heads, int n_kv_heads, int head_dim, int seq_len,
                      int pos);

/* ---- embedding, argmax, sampling ----------------------------------------- */

void px_embedding_f32(float *out, const float *table, int dim, int token);
int px_argmax_f32(const float *x, int n); /* first maximum */
/* Seeded sampling: temperature 0 -> argmax; else softmax(x / T), then top-p
 * (nucleus) if 0 < top_p < 1, then a draw from px_rng_t.  Deterministic for
 * a given rng state.  probs scratch [n] (and index scratch [n]). */
int px_sample_f32(const float *logits, int n, float temperature, float top_p,
                  px_rng_t *rng, float *probs, int *idx);

/* ---- trace commitment --------------------------------------------------- */

/* While a model runs, the hash of each layer's output (BLAKE2b-256 over the
 * f32 bytes, little-endian) is appended; the Merkle root (plexus/crypto.h)
 * over those leaf hashes commits to the whole trace.  The dispute game
 * compares traces to find the first layer where two results differ. */
#define PX_TRACE_MAX_LAYERS 4096
typedef struct {
  int enabled;
  size_t n;
  uint8_t (*leaf)[32]; /* n leaf hashes, heap (px_trace_release) */
  size_t cap;
} px_trace_t;

void px_trace_init(px_trace_t *t, int enabled);
int px_trace_add(px_trace_t *t, const float *x, size_t n);
int px_trace_root(const px_trace_t *t, uint8_t root[32]);
void px_trace_release(px_trace_t *t);

#ifdef __cplusplus
}
#endif
#endif /* PLEXUS_COMPUTE_H */
