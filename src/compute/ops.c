/*
 * ops.c — elementwise kernels, row normalisations, softmax, RoPE, pooling,
 * embedding, argmax, and the scalar reference table.
 *
 * Row reductions (docs/compute.md, "16-lane order"): a sum over a row of n
 * keeps 16 partial sums s[0..15]; element i goes to s[i % 16], in
 * increasing i, each starting at +0.0f (a max starts at -inf).  The 16
 * partials are then folded by a fixed tree: for h = 8, 4, 2, 1:
 * s[j] = s[j] + s[j + h] (j < h).  A zmm register is exactly those 16
 * partials, two ymm registers are too, so every level does the same
 * additions in the same order; the tail of a row is a masked add, which
 * leaves the untouched partials alone just as the scalar loop does.
 *   softmax:   m = max16 (op: m = m > x ? m : x, which is MAXPS),
 *              e_i = exp(x_i - m), s = sum16(e), y_i = e_i * (1 / s)
 *   layernorm: mean = sum16(x) / n; d_i = x_i - mean;
 *              var = fsum16(d_i * d_i) / n  (fsum: s = fma(d, d, s));
 *              r = 1 / sqrt(var + eps); y_i = fma(d_i * r, g_i, b_i)
 *              (g = 1, b = 0 when NULL)
 *   rmsnorm:   ms = fsum16(x_i * x_i) / n; r = 1 / sqrt(ms + eps);
 *              y_i = (x_i * r) * w_i
 *   dot:       fsum16(x_i * y_i) (attention scores)
 * RoPE, pooling, embedding, argmax and sampling are cheap and run the same
 * scalar code at every level.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compute/compute_internal.h"
#include "base/px_internal.h"

/* ---- scalar reference row kernels ---------------------------------------- */

static void add_scalar(float *out, const float *a, const float *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    out[i] = a[i] + b[i];
}
static void mul_scalar(float *out, const float *a, const float *b, size_t n) {
  for (size_t i = 0; i < n; i++)
    out[i] = a[i] * b[i];
}
static void relu_scalar(float *out, const float *x, size_t n) {
  /* MAXPS(x, 0): 0 unless x > 0 (so -0 and NaN give +0). */
  for (size_t i = 0; i < n; i++)
    out[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
static void silu_scalar(float *out, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++)
    out[i] = px_siluf(x[i]);
}
static void gelu_scalar(float *out, const float *x, size_t n) {
  for (size_t i = 0; i < n; i++)
    out[i] = px_geluf(x[i]);
}

static float sum16_scalar(const float *x, int n) {
  float s[16] = {0};
  for (int i = 0; i < n; i++)
    s[i & 15] = s[i & 15] + x[i];
  return px_tree16(s);
}

static void softmax_scalar(float *out, const float *x, int n) {
  float m[16];
  for (int j = 0; j < 16; j++)
    m[j] = -INFINITY;
  for (int i = 0; i < n; i++)
    m[i & 15] = m[i & 15] > x[i] ? m[i & 15] : x[i];
  for (int h = 8; h >= 1; h >>= 1)
    for (int j = 0; j < h; j++)
      m[j] = m[j] > m[j + h] ? m[j] : m[j + h];
  float mx = m[0];
  for (int i = 0; i < n; i++)
    out[i] = px_expf(x[i] - mx);
  float inv = 1.0f / sum16_scalar(out, n);
  for (int i = 0; i < n; i++)
    out[i] = out[i] * inv;
}

static void layernorm_scalar(float *out, const float *x, const float *g,
                             const float *b, int n, float eps) {
  float mean = sum16_scalar(x, n) / (float)n;
  float s[16] = {0};
  for (int i = 0; i < n; i++) {
    float d = x[i] - mean;
    s[i & 15] = fmaf(d, d, s[i & 15]);
  }
  float var = px_tree16(s) / (float)n;
  float r = 1.0f / sqrtf(var + eps);
  for (int i = 0; i < n; i++) {
    float d = x[i] - mean;
    out[i] = fmaf(d * r, g ? g[i] : 1.0f, b ? b[i] : 0.0f);
  }
}

static void rmsnorm_scalar(float *out, const float *x, const float *w, int n,
                           float eps) {
  float s[16] = {0};
  for (int i = 0; i < n; i++)
    s[i & 15] = fmaf(x[i], x[i], s[i & 15]);
  float ms = px_tree16(s) / (float)n;
  float r = 1.0f / sqrtf(ms + eps);
  for (int i = 0; i < n; i++)
    out[i] = (x[i] * r) * w[i];
}

static float dot_scalar(const float *x, const float *y, int n) {
  float s[16] = {0};
  for (int i = 0; i < n; i++)
    s[i & 15] = fmaf(x[i], y[i], s[i & 15]);
  return px_tree16(s);
}

static void axpy_scalar(float *y, float a, const float *x, int n) {
  for (int i = 0; i < n; i++)
    y[i] = fmaf(a, x[i], y[i]);
}

const px_kernels_t px_kernels_scalar = {
    .level = PX_SIMD_SCALAR,
    .mr = 4,
    .np = 1,
    .tile = px_tile_scalar,
    .q8_mr = 4,
    .q8_np = 1,
    .q8_tile = px_q8_tile_scalar,
    .add = add_scalar,
    .mul = mul_scalar,
    .relu = relu_scalar,
    .silu = silu_scalar,
    .gelu = gelu_scalar,
    .softmax = softmax_scalar,
    .layernorm = layernorm_scalar,
    .rmsnorm = rmsnorm_scalar,
    .dot = dot_scalar,
    .axpy = axpy_scalar,
};

/* ---- public elementwise and row kernels ---------------------------------- */

void px_add_f32(px_compute_t *c, float *out, const float *a, const float *b,
                size_t n) {
  px_kernels_ctx(c)->add(out, a, b, n);
}
void px_mul_f32(px_compute_t *c, float *out, const float *a, const float *b,
                size_t n) {
  px_kernels_ctx(c)->mul(out, a, b, n);
}
void px_relu_f32(px_compute_t *c, float *out, const float *x, size_t n) {
  px_kernels_ctx(c)->relu(out, x, n);
}
void px_silu_f32(px_compute_t *c, float *out, const float *x, size_t n) {
  px_kernels_ctx(c)->silu(out, x, n);
}
void px_gelu_f32(px_compute_t *c, float *out, const float *x, size_t n) {
  px_kernels_ctx(c)->gelu(out, x, n);
}

void px_softmax_f32(px_compute_t *c, float *out, const float *x, int rows,
                    int cols) {
  const px_kernels_t *k = px_kernels_ctx(c);
  for (int r = 0; r < rows; r++)
    k->softmax(out + (size_t)r * cols, x + (size_t)r * cols, cols);
}

void px_layernorm_f32(px_compute_t *c, float *out, const float *x,
                      const float *gamma, const float *beta, int rows, int cols,
                      float eps) {
  const px_kernels_t *k = px_kernels_ctx(c);
  for (int r = 0; r < rows; r++)
    k->layernorm(out + (size_t)r * cols, x + (size_t)r * cols, gamma, beta,
                 cols, eps);
}

void px_rmsnorm_f32(px_compute_t *c, float *out, const float *x,
                    const float *weight, int rows, int cols, float eps) {
  const px_kernels_t *k = px_kernels_ctx(c);
  for (int r = 0; r < rows; r++)
    k->rmsnorm(out + (size_t)r * cols, x + (size_t)r * cols, weight, cols, eps);
}

/* ---- RoPE ----------------------------------------------------------------
 * freq_i = exp(-(i / head_dim) * ln 10000) for the pair (i, i+1), i even;
 * angle = pos * freq_i; sin and cos by px_sincosf (below);
 * x'_i = x_i*cos - x_{i+1}*sin, x'_{i+1} = x_i*sin + x_{i+1}*cos (no FMA). */

/* sin and cos with Cody-Waite reduction by pi/2 (three-part constant, FMA)
 * and Cephes' sinf/cosf polynomials on [-pi/4, pi/4].  Accurate to a few
 * ulp for |a| < 2^17, ample for RoPE angles (pos < 2^17). */
void px_sincosf(float a, float *s_out, float *c_out) {
  float k = fmaf(a, 0.636619772367581343f, PX_EXP_MAGIC) - PX_EXP_MAGIC;
  float r = fmaf(k, -1.5703125f, a);
  r = fmaf(k, -4.837512969970703125e-4f, r);
  r = fmaf(k, -7.54978995489188216e-8f, r);
  float z = r * r;
  float sp = -1.9515295891e-4f;
  sp = fmaf(sp, z, 8.3321608736e-3f);
  sp = fmaf(sp, z, -1.6666654611e-1f);
  float sn = fmaf(sp * z, r, r);
  float cp = 2.443315711809948e-5f;
  cp = fmaf(cp, z, -1.388731625493765e-3f);
  cp = fmaf(cp, z, 4.166664568298827e-2f);
  float cs = fmaf(cp * z, z, fmaf(-0.5f, z, 1.0f));
  int q = (int)(int64_t)k & 3;
  float s = q == 0 ? sn : q == 1 ? cs : q == 2 ? -sn : -cs;
  float co = q == 0 ? cs : q == 1 ? -sn : q == 2 ? -cs : sn;
  *s_out = s;
  *c_out = co;
}

void px_rope_f32(float *x, int n_heads, int head_dim, int pos) {
  for (int i = 0; i + 1 < head_dim; i += 2) {
    float e = (float)i / (float)head_dim;
    float freq = px_expf(e * -9.21034037197618f); /* 10000^-e */
    float s, co;
    px_sincosf((float)pos * freq, &s, &co);
    for (int h = 0; h < n_heads; h++) {
      float *v = x + (size_t)h * head_dim + i;
      float v0 = v[0], v1 = v[1];
      v[0] = v0 * co - v1 * s;
      v[1] = v0 * s + v1 * co;
    }
  }
}

/* ---- pooling (NCHW, no padding) -------------------------------------------
 * Output size (h - k) / stride + 1.  max: m starts at the window's first
 * value and takes v when v > m, in (ky, kx) order; avg: s = +0, s = s + v in
 * (ky, kx) order, then s / (k*k). */

void px_maxpool2d_f32(float *out, const float *in, int n, int ch, int h, int w,
                      int k, int stride) {
  int oh = (h - k) / stride + 1, ow = (w - k) / stride + 1;
  for (int p = 0; p < n * ch; p++) {
    const float *src = in + (size_t)p * h * w;
    float *dst = out + (size_t)p * oh * ow;
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++) {
        const float *win = src + (size_t)oy * stride * w + ox * stride;
        float m = win[0];
        for (int ky = 0; ky < k; ky++)
          for (int kx = 0; kx < k; kx++)
            m = win[ky * w + kx] > m ? win[ky * w + kx] : m;
        dst[oy * ow + ox] = m;
      }
  }
}

void px_avgpool2d_f32(float *out, const float *in, int n, int ch, int h, int w,
                      int k, int stride) {
  int oh = (h - k) / stride + 1, ow = (w - k) / stride + 1;
  float area = (float)(k * k);
  for (int p = 0; p < n * ch; p++) {
    const float *src = in + (size_t)p * h * w;
    float *dst = out + (size_t)p * oh * ow;
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++) {
        const float *win = src + (size_t)oy * stride * w + ox * stride;
        float s = 0.0f;
        for (int ky = 0; ky < k; ky++)
          for (int kx = 0; kx < k; kx++)
            s = s + win[ky * w + kx];
        dst[oy * ow + ox] = s / area;
      }
  }
}

/* ---- embedding, argmax ----------------------------------------------------
 */

void px_embedding_f32(float *out, const float *table, int dim, int token) {
  memcpy(out, table + (size_t)token * dim, (size_t)dim * sizeof(float));
}

int px_argmax_f32(const float *x, int n) {
  int best = 0;
  for (int i = 1; i < n; i++)
    if (x[i] > x[best]) best = i;
  return best;
}
