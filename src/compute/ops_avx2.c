/*
 * ops_avx2.c — AVX2+FMA elementwise and row kernels, and the AVX2 kernel
 * table.
 *
 * Lane by lane the same operations as the scalar reference (math.c,
 * ops.c).  The 16 partial sums of the documented 16-lane order live in two
 * ymm registers (partials 0-7 and 8-15); a row's tail updates only the
 * lanes it covers (blend), and the fold is the fixed tree 8, 4, 2, 1.
 * Elementwise tails (< 8 values) call the scalar functions themselves.
 */
#include <immintrin.h>
#include <math.h>
#include <stddef.h>

#include "compute/compute_internal.h"
#include "base/px_internal.h"

#define AI static inline __attribute__((always_inline))

AI __m256 exp8(__m256 x) {
  __m256 xc = _mm256_max_ps(x, _mm256_set1_ps(PX_EXP_LO));
  xc = _mm256_min_ps(xc, _mm256_set1_ps(PX_EXP_HI));
  __m256 magic = _mm256_set1_ps(PX_EXP_MAGIC);
  __m256 n = _mm256_sub_ps(
      _mm256_fmadd_ps(xc, _mm256_set1_ps(PX_EXP_LOG2E), magic), magic);
  __m256 r = _mm256_fmadd_ps(n, _mm256_set1_ps(-PX_EXP_C1), xc);
  r = _mm256_fmadd_ps(n, _mm256_set1_ps(-PX_EXP_C2), r);
  __m256 p = _mm256_set1_ps(PX_EXP_P0);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(PX_EXP_P1));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(PX_EXP_P2));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(PX_EXP_P3));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(PX_EXP_P4));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(PX_EXP_P5));
  __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r),
                           _mm256_set1_ps(1.0f));
  __m256i ni = _mm256_cvttps_epi32(n);
  __m256i n1 = _mm256_srai_epi32(ni, 1);
  __m256i n2 = _mm256_sub_epi32(ni, n1);
  __m256i b127 = _mm256_set1_epi32(127);
  __m256 s1 =
      _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, b127), 23));
  __m256 s2 =
      _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, b127), 23));
  __m256 res = _mm256_mul_ps(_mm256_mul_ps(y, s1), s2);
  __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q);
  return _mm256_blendv_ps(res, _mm256_add_ps(x, x), nan);
}

AI __m256 neg8(__m256 x) { return _mm256_xor_ps(x, _mm256_set1_ps(-0.0f)); }

AI __m256 xsig8(__m256 x, __m256 v) {
  __m256 res =
      _mm256_div_ps(x, _mm256_add_ps(_mm256_set1_ps(1.0f), exp8(neg8(v))));
  __m256 ninf = _mm256_cmp_ps(x, _mm256_set1_ps(-INFINITY), _CMP_EQ_OQ);
  return _mm256_blendv_ps(res, _mm256_set1_ps(-0.0f), ninf);
}

AI __m256 gelu8(__m256 x) {
  __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
  __m256 v = _mm256_mul_ps(_mm256_set1_ps(PX_GELU_B),
                           _mm256_fmadd_ps(_mm256_set1_ps(PX_GELU_A), x3, x));
  return xsig8(x, v);
}

static void add8(float *out, const float *a, const float *b, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(
        out + i, _mm256_add_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
  for (; i < n; i++)
    out[i] = a[i] + b[i];
}
static void mul8(float *out, const float *a, const float *b, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(
        out + i, _mm256_mul_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i)));
  for (; i < n; i++)
    out[i] = a[i] * b[i];
}
static void relu8(float *out, const float *x, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(
        out + i, _mm256_max_ps(_mm256_loadu_ps(x + i), _mm256_setzero_ps()));
  for (; i < n; i++)
    out[i] = x[i] > 0.0f ? x[i] : 0.0f;
}
static void silu8(float *out, const float *x, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 v = _mm256_loadu_ps(x + i);
    _mm256_storeu_ps(out + i, xsig8(v, v));
  }
  for (; i < n; i++)
    out[i] = px_siluf(x[i]);
}
static void gelu8v(float *out, const float *x, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, gelu8(_mm256_loadu_ps(x + i)));
  for (; i < n; i++)
    out[i] = px_geluf(x[i]);
}

/* Lane masks for the tail of a 16-chunk with r (< 16) values left. */
AI void tail_masks(int r, __m256i *k0, __m256i *k1) {
  __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  *k0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(r), lane);
  *k1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(r - 8), lane);
}
AI __m256 sel(__m256 old, __m256 nw, __m256i k) {
  return _mm256_blendv_ps(old, nw, _mm256_castsi256_ps(k));
}

AI float tree_add(__m256 lo, __m256 hi) {
  __m256 s8 = _mm256_add_ps(lo, hi);
  __m128 s4 =
      _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  __m128 s1 = _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1));
  return _mm_cvtss_f32(s1);
}
AI float tree_max(__m256 lo, __m256 hi) {
  __m256 s8 = _mm256_max_ps(lo, hi);
  __m128 s4 =
      _mm_max_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  __m128 s2 = _mm_max_ps(s4, _mm_movehl_ps(s4, s4));
  __m128 s1 = _mm_max_ss(s2, _mm_shuffle_ps(s2, s2, 1));
  return _mm_cvtss_f32(s1);
}

/* The loops below walk a row in chunks of 16: full chunks update both
 * halves, the tail chunk only its lanes (masked loads read nothing past n). */
#define CHUNKS(n, BODY_FULL, BODY_TAIL)                                        \
  {                                                                            \
    int i_ = 0;                                                                \
    for (; i_ + 16 <= (n); i_ += 16) {                                         \
      const int i = i_;                                                        \
      BODY_FULL                                                                \
    }                                                                          \
    if (i_ < (n)) {                                                            \
      const int i = i_;                                                        \
      __m256i k0, k1;                                                          \
      tail_masks((n)-i_, &k0, &k1);                                            \
      BODY_TAIL                                                                \
    }                                                                          \
  }

static float sum16(const float *x, int n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  CHUNKS(
      n,
      {
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps(x + i));
        a1 = _mm256_add_ps(a1, _mm256_loadu_ps(x + i + 8));
      },
      {
        a0 = sel(a0, _mm256_add_ps(a0, _mm256_maskload_ps(x + i, k0)), k0);
        a1 = sel(a1, _mm256_add_ps(a1, _mm256_maskload_ps(x + i + 8, k1)), k1);
      })
  return tree_add(a0, a1);
}

static void softmax8(float *out, const float *x, int n) {
  __m256 m0 = _mm256_set1_ps(-INFINITY), m1 = m0;
  CHUNKS(
      n,
      {
        m0 = _mm256_max_ps(m0, _mm256_loadu_ps(x + i));
        m1 = _mm256_max_ps(m1, _mm256_loadu_ps(x + i + 8));
      },
      {
        m0 = sel(m0, _mm256_max_ps(m0, _mm256_maskload_ps(x + i, k0)), k0);
        m1 = sel(m1, _mm256_max_ps(m1, _mm256_maskload_ps(x + i + 8, k1)), k1);
      })
  __m256 vmax = _mm256_set1_ps(tree_max(m0, m1));
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  CHUNKS(
      n,
      {
        __m256 e0 = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), vmax));
        __m256 e1 = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vmax));
        _mm256_storeu_ps(out + i, e0);
        _mm256_storeu_ps(out + i + 8, e1);
        a0 = _mm256_add_ps(a0, e0);
        a1 = _mm256_add_ps(a1, e1);
      },
      {
        __m256 e0 = exp8(_mm256_sub_ps(_mm256_maskload_ps(x + i, k0), vmax));
        __m256 e1 =
            exp8(_mm256_sub_ps(_mm256_maskload_ps(x + i + 8, k1), vmax));
        _mm256_maskstore_ps(out + i, k0, e0);
        _mm256_maskstore_ps(out + i + 8, k1, e1);
        a0 = sel(a0, _mm256_add_ps(a0, e0), k0);
        a1 = sel(a1, _mm256_add_ps(a1, e1), k1);
      })
  __m256 inv = _mm256_set1_ps(1.0f / tree_add(a0, a1));
  int i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_loadu_ps(out + i), inv));
  float invs = _mm256_cvtss_f32(inv);
  for (; i < n; i++)
    out[i] = out[i] * invs;
}

static void layernorm8(float *out, const float *x, const float *g,
                       const float *b, int n, float eps) {
  float mean = sum16(x, n) / (float)n;
  __m256 vm = _mm256_set1_ps(mean);
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  CHUNKS(
      n,
      {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(x + i), vm);
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(x + i + 8), vm);
        a0 = _mm256_fmadd_ps(d0, d0, a0);
        a1 = _mm256_fmadd_ps(d1, d1, a1);
      },
      {
        __m256 d0 = _mm256_sub_ps(_mm256_maskload_ps(x + i, k0), vm);
        __m256 d1 = _mm256_sub_ps(_mm256_maskload_ps(x + i + 8, k1), vm);
        a0 = sel(a0, _mm256_fmadd_ps(d0, d0, a0), k0);
        a1 = sel(a1, _mm256_fmadd_ps(d1, d1, a1), k1);
      })
  float var = tree_add(a0, a1) / (float)n;
  float rs = 1.0f / sqrtf(var + eps);
  __m256 r = _mm256_set1_ps(rs);
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), vm);
    __m256 gv = g ? _mm256_loadu_ps(g + i) : _mm256_set1_ps(1.0f);
    __m256 bv = b ? _mm256_loadu_ps(b + i) : _mm256_setzero_ps();
    _mm256_storeu_ps(out + i, _mm256_fmadd_ps(_mm256_mul_ps(d, r), gv, bv));
  }
  for (; i < n; i++) {
    float d = x[i] - mean;
    out[i] = fmaf(d * rs, g ? g[i] : 1.0f, b ? b[i] : 0.0f);
  }
}

static void rmsnorm8(float *out, const float *x, const float *w, int n,
                     float eps) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  CHUNKS(
      n,
      {
        __m256 v0 = _mm256_loadu_ps(x + i);
        __m256 v1 = _mm256_loadu_ps(x + i + 8);
        a0 = _mm256_fmadd_ps(v0, v0, a0);
        a1 = _mm256_fmadd_ps(v1, v1, a1);
      },
      {
        __m256 v0 = _mm256_maskload_ps(x + i, k0);
        __m256 v1 = _mm256_maskload_ps(x + i + 8, k1);
        a0 = sel(a0, _mm256_fmadd_ps(v0, v0, a0), k0);
        a1 = sel(a1, _mm256_fmadd_ps(v1, v1, a1), k1);
      })
  float ms = tree_add(a0, a1) / (float)n;
  float rs = 1.0f / sqrtf(ms + eps);
  __m256 r = _mm256_set1_ps(rs);
  int i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i,
                     _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), r),
                                   _mm256_loadu_ps(w + i)));
  for (; i < n; i++)
    out[i] = (x[i] * rs) * w[i];
}

static float dot8(const float *x, const float *y, int n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
  CHUNKS(
      n,
      {
        a0 =
            _mm256_fmadd_ps(_mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i), a0);
        a1 = _mm256_fmadd_ps(_mm256_loadu_ps(x + i + 8),
                             _mm256_loadu_ps(y + i + 8), a1);
      },
      {
        a0 = sel(a0,
                 _mm256_fmadd_ps(_mm256_maskload_ps(x + i, k0),
                                 _mm256_maskload_ps(y + i, k0), a0),
                 k0);
        a1 = sel(a1,
                 _mm256_fmadd_ps(_mm256_maskload_ps(x + i + 8, k1),
                                 _mm256_maskload_ps(y + i + 8, k1), a1),
                 k1);
      })
  return tree_add(a0, a1);
}

static void axpy8(float *y, float a, const float *x, int n) {
  __m256 va = _mm256_set1_ps(a);
  int i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, _mm256_loadu_ps(x + i),
                                            _mm256_loadu_ps(y + i)));
  for (; i < n; i++)
    y[i] = fmaf(a, x[i], y[i]);
}

const px_kernels_t px_kernels_avx2 = {
    .level = PX_SIMD_AVX2,
    .mr = 6,
    .np = 1,
    .tile = px_tile_avx2,
    .q8_mr = 4,
    .q8_np = 1,
    .q8_tile = px_q8_tile_avx2,
    .add = add8,
    .mul = mul8,
    .relu = relu8,
    .silu = silu8,
    .gelu = gelu8v,
    .softmax = softmax8,
    .layernorm = layernorm8,
    .rmsnorm = rmsnorm8,
    .dot = dot8,
    .axpy = axpy8,
};
