/*
 * ops_avx512.c — AVX-512 elementwise and row kernels, and the AVX-512
 * kernel table.
 *
 * Each function performs, lane by lane, exactly the operations of its
 * scalar reference (math.c, ops.c): the same constants, the same FMAs, the
 * same order.  Row reductions keep the 16 partial sums of the documented
 * 16-lane order in one zmm (tail: masked update, leaving the other
 * partials untouched) and fold them with the fixed tree 8, 4, 2, 1.
 */
#include <immintrin.h>
#include <math.h>
#include <stddef.h>

#include "compute/compute_internal.h"
#include "base/px_internal.h"

#define AI static inline __attribute__((always_inline))

static inline __mmask16 tail_mask(size_t r) {
  return r >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << r) - 1);
}

/* px_expf, lane by lane. */
AI __m512 exp16(__m512 x) {
  __m512 xc = _mm512_max_ps(x, _mm512_set1_ps(PX_EXP_LO));
  xc = _mm512_min_ps(xc, _mm512_set1_ps(PX_EXP_HI));
  __m512 magic = _mm512_set1_ps(PX_EXP_MAGIC);
  __m512 n = _mm512_sub_ps(
      _mm512_fmadd_ps(xc, _mm512_set1_ps(PX_EXP_LOG2E), magic), magic);
  __m512 r = _mm512_fmadd_ps(n, _mm512_set1_ps(-PX_EXP_C1), xc);
  r = _mm512_fmadd_ps(n, _mm512_set1_ps(-PX_EXP_C2), r);
  __m512 p = _mm512_set1_ps(PX_EXP_P0);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(PX_EXP_P1));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(PX_EXP_P2));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(PX_EXP_P3));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(PX_EXP_P4));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(PX_EXP_P5));
  __m512 y = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r),
                           _mm512_set1_ps(1.0f));
  __m512i ni = _mm512_cvttps_epi32(n);
  __m512i n1 = _mm512_srai_epi32(ni, 1);
  __m512i n2 = _mm512_sub_epi32(ni, n1);
  __m512i b127 = _mm512_set1_epi32(127);
  __m512 s1 =
      _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n1, b127), 23));
  __m512 s2 =
      _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n2, b127), 23));
  __m512 res = _mm512_mul_ps(_mm512_mul_ps(y, s1), s2);
  __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
  return _mm512_mask_add_ps(res, nan, x, x);
}

AI __m512 neg16(__m512 x) {
  return _mm512_castsi512_ps(_mm512_xor_si512(
      _mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u)));
}

/* x / (1 + exp(-v)), and -0 where x = -inf. */
AI __m512 xsig16(__m512 x, __m512 v) {
  __m512 res =
      _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), exp16(neg16(v))));
  __mmask16 ninf = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-INFINITY), _CMP_EQ_OQ);
  return _mm512_mask_mov_ps(res, ninf, _mm512_set1_ps(-0.0f));
}

AI __m512 silu16(__m512 x) { return xsig16(x, x); }

AI __m512 gelu16(__m512 x) {
  __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
  __m512 v = _mm512_mul_ps(_mm512_set1_ps(PX_GELU_B),
                           _mm512_fmadd_ps(_mm512_set1_ps(PX_GELU_A), x3, x));
  return xsig16(x, v);
}

static void add512(float *out, const float *a, const float *b, size_t n) {
  for (size_t i = 0; i < n; i += 16) {
    __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(out + i, m,
                          _mm512_add_ps(_mm512_maskz_loadu_ps(m, a + i),
                                        _mm512_maskz_loadu_ps(m, b + i)));
  }
}
static void mul512(float *out, const float *a, const float *b, size_t n) {
  for (size_t i = 0; i < n; i += 16) {
    __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(out + i, m,
                          _mm512_mul_ps(_mm512_maskz_loadu_ps(m, a + i),
                                        _mm512_maskz_loadu_ps(m, b + i)));
  }
}
static void relu512(float *out, const float *x, size_t n) {
  for (size_t i = 0; i < n; i += 16) {
    __mmask16 m = tail_mask(n - i);
    /* MAXPS(x, 0) = x > 0 ? x : 0, as the scalar reference. */
    _mm512_mask_storeu_ps(
        out + i, m,
        _mm512_max_ps(_mm512_maskz_loadu_ps(m, x + i), _mm512_setzero_ps()));
  }
}
static void silu512(float *out, const float *x, size_t n) {
  for (size_t i = 0; i < n; i += 16) {
    __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(out + i, m, silu16(_mm512_maskz_loadu_ps(m, x + i)));
  }
}
static void gelu512(float *out, const float *x, size_t n) {
  for (size_t i = 0; i < n; i += 16) {
    __mmask16 m = tail_mask(n - i);
    _mm512_mask_storeu_ps(out + i, m, gelu16(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

/* The fixed tree over the 16 lanes. */
AI float tree_add16(__m512 v) {
  __m256 s8 =
      _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 s4 =
      _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  __m128 s1 = _mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1));
  return _mm_cvtss_f32(s1);
}
AI float tree_max16(__m512 v) {
  __m256 s8 =
      _mm256_max_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1));
  __m128 s4 =
      _mm_max_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  __m128 s2 = _mm_max_ps(s4, _mm_movehl_ps(s4, s4));
  __m128 s1 = _mm_max_ss(s2, _mm_shuffle_ps(s2, s2, 1));
  return _mm_cvtss_f32(s1);
}

static float sum16(const float *x, int n) {
  __m512 acc = _mm512_setzero_ps();
  for (int i = 0; i < n; i += 16) {
    __mmask16 m = tail_mask((size_t)(n - i));
    acc = _mm512_mask_add_ps(acc, m, acc, _mm512_maskz_loadu_ps(m, x + i));
  }
  return tree_add16(acc);
}

static void softmax512(float *out, const float *x, int n) {
  __m512 mx = _mm512_set1_ps(-INFINITY);
  for (int i = 0; i < n; i += 16) {
    __mmask16 m = tail_mask((size_t)(n - i));
    mx = _mm512_mask_max_ps(mx, m, mx, _mm512_maskz_loadu_ps(m, x + i));
  }
  __m512 vmax = _mm512_set1_ps(tree_max16(mx));
  __m512 acc = _mm512_setzero_ps();
  for (int i = 0; i < n; i += 16) {
    __mmask16 m = tail_mask((size_t)(n - i));
    __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vmax));
    _mm512_mask_storeu_ps(out + i, m, e);
    acc = _mm512_mask_add_ps(acc, m, acc, e);
  }
  __m512 inv = _mm512_set1_ps(1.0f / tree_add16(acc));
  for (int i = 0; i < n; i += 16) {
    __mmask16 m = tail_mask((size_t)(n - i));
    _mm512_mask_storeu_ps(
        out + i, m, _mm512_mul_ps(_mm512_maskz_loadu_ps(m, out + i), inv));
  }
}

static void layernorm512(float *out, const float *x, const float *g,
                         const float *b, int n, float eps) {
  float mean = sum16(x, n) / (float)n;
  __m512 vmean = _mm512_set1_ps(mean);
  __m512 acc = _mm512_setzero_ps();
  for (int i = 0; i < n; i += 16) {
    __mmask16 m = tail_mask((size_t)(n - i));
    __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vmean);
    acc = _mm512_mask_mov_ps(acc, m, _mm512_fmadd_ps(d, d, acc));
  }
  float var = tree_add16(acc) / (float)n;
  __m512 r = _mm512_set1_ps(1.0f / sqrtf(var + eps));
  for (int i = 0; i < n; i += 16) {
    __mmask16 m = tail_mask((size_t)(n - i));
    __m512 d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, x + i), vmean);
    __m512 gv = g ? _mm512_maskz_loadu_ps(m, g + i) : _mm512_set1_ps(1.0f);
    __m512 bv = b ? _mm512_maskz_loadu_ps(m, b + i) : _mm512_setzero_ps();
    _mm512_mask_storeu_ps(out + i, m,
                          _mm512_fmadd_ps(_mm512_mul_ps(d, r), gv, bv));
  }
}

static void rmsnorm512(float *out, const float *x, const float *w, int n,
                       float eps) {
  __m512 acc = _mm512_setzero_ps();
  for (int i = 0; i < n; i += 16) {
    __mmask16 m = tail_mask((size_t)(n - i));
    __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    acc = _mm512_mask_mov_ps(acc, m, _mm512_fmadd_ps(v, v, acc));
  }
  float ms = tree_add16(acc) / (float)n;
  __m512 r = _mm512_set1_ps(1.0f / sqrtf(ms + eps));
  for (int i = 0; i < n; i += 16) {
    __mmask16 m = tail_mask((size_t)(n - i));
    __m512 v = _mm512_maskz_loadu_ps(m, x + i);
    _mm512_mask_storeu_ps(
        out + i, m,
        _mm512_mul_ps(_mm512_mul_ps(v, r), _mm512_maskz_loadu_ps(m, w + i)));
  }
}

static float dot512(const float *x, const float *y, int n) {
  __m512 acc = _mm512_setzero_ps();
  for (int i = 0; i < n; i += 16) {
    __mmask16 m = tail_mask((size_t)(n - i));
    acc = _mm512_mask_mov_ps(acc, m,
                             _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, x + i),
                                             _mm512_maskz_loadu_ps(m, y + i),
                                             acc));
  }
  return tree_add16(acc);
}

static void axpy512(float *y, float a, const float *x, int n) {
  __m512 va = _mm512_set1_ps(a);
  for (int i = 0; i < n; i += 16) {
    __mmask16 m = tail_mask((size_t)(n - i));
    _mm512_mask_storeu_ps(y + i, m,
                          _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, x + i),
                                          _mm512_maskz_loadu_ps(m, y + i)));
  }
}

const px_kernels_t px_kernels_avx512 = {
    .level = PX_SIMD_AVX512,
    .mr = 8,
    .np = 2,
    .tile = px_tile_avx512,
    .q8_mr = 4,
    .q8_np = 2,
    .q8_tile = px_q8_tile_avx512,
    .add = add512,
    .mul = mul512,
    .relu = relu512,
    .silu = silu512,
    .gelu = gelu512,
    .softmax = softmax512,
    .layernorm = layernorm512,
    .rmsnorm = rmsnorm512,
    .dot = dot512,
    .axpy = axpy512,
};
