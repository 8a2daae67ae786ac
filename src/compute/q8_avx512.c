/*
 * q8_avx512.c — the AVX-512 VNNI int8 tile (see q8.c for the packing and
 * the order).
 *
 * A tile is up to 4 rows x 32 columns (two panels).  Lanes are columns.  For
 * each group, for each 4 values of k: VPDPBUSD(w + 128 as u8, four q_a bytes
 * broadcast as s8) adds sum (w + 128) * q_a into each column's int32 — exact,
 * no saturation
 * (|sum| < 2^31 for G < 33000).  Subtracting 128 * sum(q_a) leaves the
 * exact group sum; two interleaved int32 accumulators per row only change
 * the (irrelevant) order of exact integer additions.  Then, as in the
 * reference: acc = fma((float)isum, sa_g * sw_g, acc).
 */
#include <immintrin.h>
#include <stddef.h>
#include <string.h>

#include "compute/compute_internal.h"
#include "base/px_internal.h"

#define AI static inline __attribute__((always_inline))

static inline int32_t load4(const int8_t *p) {
  int32_t v;
  memcpy(&v, p, 4);
  return v;
}

AI void q8_t(const int MR, const int NP, const int GC, int ngroups, int G,
             const int8_t *qa, ptrdiff_t lda, const float *sa,
             const int32_t *asum, const int8_t *wp, ptrdiff_t pstride, float *C,
             ptrdiff_t ldc, __mmask16 m0, __mmask16 m1) {
  __m512 acc0[4], acc1[4];
#pragma GCC unroll 4
  for (int r = 0; r < MR; r++) {
    acc0[r] = _mm512_setzero_ps();
    acc1[r] = _mm512_setzero_ps();
  }
  if (GC) G = GC; /* a compile-time group size: the k loop unrolls fully */
  const int k4n = G / 4;
  const size_t K = (size_t)ngroups * G;
  const float *ws0 = (const float *)(wp + 16 * K);
  const float *ws1 = (const float *)(wp + pstride + 16 * K);
  for (int g = 0; g < ngroups; g++) {
    __m512i i0[4], i1[4];
#pragma GCC unroll 4
    for (int r = 0; r < MR; r++) {
      /* Start at -128 * sum(q_a): the offset of w + 128, exactly. */
      i0[r] = _mm512_set1_epi32(-128 * asum[r * ngroups + g]);
      i1[r] = i0[r];
    }
    const int8_t *wg0 = wp + (size_t)g * k4n * 64;
    const int8_t *wg1 = wg0 + pstride;
    const int8_t *ag = qa + (size_t)g * G;
#pragma GCC unroll 16
    for (int k4 = 0; k4 < k4n; k4++) {
      __m512i w0 = _mm512_loadu_si512(wg0 + k4 * 64);
      __m512i w1 = NP > 1 ? _mm512_loadu_si512(wg1 + k4 * 64) : w0;
#pragma GCC unroll 4
      for (int r = 0; r < MR; r++) {
        __m512i a = _mm512_set1_epi32(load4(ag + r * lda + k4 * 4));
        i0[r] = _mm512_dpbusd_epi32(i0[r], w0, a);
        if (NP > 1) i1[r] = _mm512_dpbusd_epi32(i1[r], w1, a);
      }
    }
    __m512 wsv0 = _mm512_loadu_ps(ws0 + g * 16);
    __m512 wsv1 = NP > 1 ? _mm512_loadu_ps(ws1 + g * 16) : wsv0;
#pragma GCC unroll 4
    for (int r = 0; r < MR; r++) {
      __m512 sav = _mm512_set1_ps(sa[r * ngroups + g]);
      acc0[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i0[r]),
                                _mm512_mul_ps(sav, wsv0), acc0[r]);
      if (NP > 1)
        acc1[r] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i1[r]),
                                  _mm512_mul_ps(sav, wsv1), acc1[r]);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < MR; r++) {
    _mm512_mask_storeu_ps(C + r * ldc, m0, acc0[r]);
    if (NP > 1) _mm512_mask_storeu_ps(C + r * ldc + 16, m1, acc1[r]);
  }
}

#define Q8_CASES(NP, GC)                                                       \
  switch (mr) {                                                                \
  case 1:                                                                      \
    q8_t(1, NP, GC, ngroups, G, qa, lda, sa, asum, wp, pstride, C, ldc, m0,    \
         m1);                                                                  \
    break;                                                                     \
  case 2:                                                                      \
    q8_t(2, NP, GC, ngroups, G, qa, lda, sa, asum, wp, pstride, C, ldc, m0,    \
         m1);                                                                  \
    break;                                                                     \
  case 3:                                                                      \
    q8_t(3, NP, GC, ngroups, G, qa, lda, sa, asum, wp, pstride, C, ldc, m0,    \
         m1);                                                                  \
    break;                                                                     \
  default:                                                                     \
    q8_t(4, NP, GC, ngroups, G, qa, lda, sa, asum, wp, pstride, C, ldc, m0,    \
         m1);                                                                  \
    break;                                                                     \
  }

void px_q8_tile_avx512(int mr, int ncols, int ngroups, int G, const int8_t *qa,
                       ptrdiff_t lda, const float *sa, const int32_t *asum,
                       const int8_t *wp, ptrdiff_t pstride, float *C,
                       ptrdiff_t ldc) {
  __mmask16 m0 = ncols >= 16 ? 0xffff : (__mmask16)((1u << ncols) - 1);
  int n1 = ncols - 16;
  __mmask16 m1 = n1 >= 16 ? 0xffff : n1 > 0 ? (__mmask16)((1u << n1) - 1) : 0;
  if (ncols > 16 && G == 32) {
    Q8_CASES(2, 32)
  } else if (ncols > 16) {
    Q8_CASES(2, 0)
  } else {
    Q8_CASES(1, 0)
  }
}

/* ---- quantisation of A (px_quantize_q8's rule, same bits) ---------------
 * amax: VMAXPS of |x| (exact in any order; VMAXPS returns its second
 * operand when one is NaN, as the scalar `a > amax ? a : amax` ignores NaN);
 * scale = amax / 127 (VDIVPS or DIVSS: the same correctly rounded
 * division); scale == 0 -> q = 0; v = x / scale (VDIVPS), clamped.
 *
 * One vector of the rule.  Round half away from zero of the clamped v is
 * computed as trunc(v + copysign(0x1.fffffep-2, v)) (the float just below
 * 0.5): equal to the reference t = trunc(v), f = v - t,
 * t + (f >= 0.5) - (f <= -0.5) for every float |v| <= 127 (checked
 * exhaustively: all 2^31.07 of them, +-0 and subnormals included).  NaN
 * lanes (x / scale unordered) are zeroed by the conversion's mask. */
AI __m512i quant16(__m512 x, __m512 sv) {
  const __m512 hi = _mm512_set1_ps(127.0f), lo = _mm512_set1_ps(-127.0f);
  const __m512i sign = _mm512_set1_epi32((int32_t)0x80000000u);
  const __m512i h = _mm512_set1_epi32(0x3effffff); /* 0x1.fffffep-2f */
  __m512 v = _mm512_div_ps(x, sv);
  __mmask16 ok = _mm512_cmp_ps_mask(v, v, _CMP_ORD_Q);
  v = _mm512_max_ps(lo, _mm512_min_ps(hi, v));
  /* (v & sign) | h: 0xEA = A & B | C. */
  __m512 hv = _mm512_castsi512_ps(
      _mm512_ternarylogic_epi32(_mm512_castps_si512(v), sign, h, 0xEA));
  return _mm512_maskz_cvttps_epi32(ok, _mm512_add_ps(v, hv));
}

/* Lane L of the result = op over the 16 lanes of v[L] (a transposing
 * reduction tree; for max of non-NaN values and int32 add, exact). */
#define RED16(NAME, OP)                                                        \
  AI __m512 NAME(const __m512 *v) {                                            \
    __m512 u[8], w[4], z[2];                                                   \
    for (int i = 0; i < 8; i++)                                                \
      u[i] = OP(_mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0x44),            \
                _mm512_shuffle_f32x4(v[2 * i], v[2 * i + 1], 0xEE));           \
    for (int i = 0; i < 4; i++)                                                \
      w[i] = OP(_mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], 0x88),            \
                _mm512_shuffle_f32x4(u[2 * i], u[2 * i + 1], 0xDD));           \
    for (int i = 0; i < 2; i++)                                                \
      z[i] = OP(                                                               \
          _mm512_castpd_ps(_mm512_unpacklo_pd(                                 \
              _mm512_castps_pd(w[2 * i]), _mm512_castps_pd(w[2 * i + 1]))),    \
          _mm512_castpd_ps(_mm512_unpackhi_pd(                                 \
              _mm512_castps_pd(w[2 * i]), _mm512_castps_pd(w[2 * i + 1]))));   \
    __m512 r = OP(_mm512_shuffle_ps(z[0], z[1], _MM_SHUFFLE(2, 0, 2, 0)),      \
                  _mm512_shuffle_ps(z[0], z[1], _MM_SHUFFLE(3, 1, 3, 1)));     \
    const __m512i idx = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10,  \
                                          14, 3, 7, 11, 15);                   \
    return _mm512_permutexvar_ps(idx, r);                                      \
  }
#define OP_MAX(a, b) _mm512_max_ps(a, b)
#define OP_ADDI(a, b)                                                          \
  _mm512_castsi512_ps(                                                         \
      _mm512_add_epi32(_mm512_castps_si512(a), _mm512_castps_si512(b)))
RED16(red16_max, OP_MAX)
RED16(red16_addi, OP_ADDI)

/* 16 groups (G % 16 == 0): the maxima of 16 groups reduce in one tree and
 * divide by 127 in one VDIVPS (the same correctly rounded division). */
static void quant16_groups(const float *x, int G, int8_t *q, float *scales,
                           int32_t *sums) {
  __m512 mx[16], acc[16];
  for (int g = 0; g < 16; g++) {
    const float *xg = x + (size_t)g * G;
    __m512 m = _mm512_setzero_ps();
    for (int i = 0; i < G; i += 16)
      m = _mm512_max_ps(_mm512_abs_ps(_mm512_loadu_ps(xg + i)), m);
    mx[g] = m;
  }
  const __m512 sc = _mm512_div_ps(red16_max(mx), _mm512_set1_ps(127.0f));
  _mm512_storeu_ps(scales, sc);
  /* Scales stay in a register (reloading lanes of the store just made
   * would stall on store forwarding). */
  const __mmask16 zero =
      _mm512_cmp_ps_mask(sc, _mm512_setzero_ps(), _CMP_EQ_OQ);
  for (int g = 0; g < 16; g++) {
    const float *xg = x + (size_t)g * G;
    int8_t *qg = q + (size_t)g * G;
    __m512i a = _mm512_setzero_si512();
    if (zero >> g & 1) {
      memset(qg, 0, (size_t)G);
    } else {
      const __m512 sv = _mm512_permutexvar_ps(_mm512_set1_epi32(g), sc);
      int i = 0;
      /* 32 at a time: two saturating packs (values are within +-127, so
       * no saturation) and one dword permutation restore the order. */
      const __m512i ord = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10,
                                            14, 3, 7, 11, 15);
      for (; i + 32 <= G; i += 32) {
        __m512i t0 = quant16(_mm512_loadu_ps(xg + i), sv);
        __m512i t1 = quant16(_mm512_loadu_ps(xg + i + 16), sv);
        __m512i p = _mm512_packs_epi32(t0, t1);
        p = _mm512_permutexvar_epi32(ord, _mm512_packs_epi16(p, p));
        _mm256_storeu_si256((__m256i *)(qg + i), _mm512_castsi512_si256(p));
        a = _mm512_add_epi32(a, _mm512_add_epi32(t0, t1));
      }
      for (; i < G; i += 16) {
        __m512i t = quant16(_mm512_loadu_ps(xg + i), sv);
        _mm_storeu_si128((__m128i *)(qg + i), _mm512_cvtepi32_epi8(t));
        a = _mm512_add_epi32(a, t);
      }
    }
    acc[g] = _mm512_castsi512_ps(a);
  }
  if (sums) _mm512_storeu_si512(sums, _mm512_castps_si512(red16_addi(acc)));
}

/* n / G consecutive groups; sums may be NULL.  Runs of 16 groups when
 * G % 16 == 0, then the rest one group at a time (masked when G % 16),
 * in batches: all scales first, so the per-group chains (reduce, divide)
 * are independent and overlap. */
void px_q8_quant_avx512(const float *x, size_t n, int G, int8_t *q,
                        float *scales, int32_t *sums) {
  size_t ngroups = n / (size_t)G;
  size_t g16 = 0;
  if (G % 16 == 0)
    for (; g16 + 16 <= ngroups; g16 += 16)
      quant16_groups(x + g16 * (size_t)G, G, q + g16 * (size_t)G, scales + g16,
                     sums ? sums + g16 : NULL);
  x += g16 * (size_t)G, q += g16 * (size_t)G, scales += g16;
  if (sums) sums += g16;
  ngroups -= g16;
  const int full = G % 16 == 0;
  for (size_t b0 = 0; b0 < ngroups; b0 += 64) {
    size_t b1 = ngroups - b0 < 64 ? ngroups : b0 + 64;
    for (size_t g = b0; g < b1; g++) {
      const float *xg = x + g * (size_t)G;
      __m512 mx = _mm512_setzero_ps();
      for (int i = 0; i < G; i += 16) {
        __mmask16 m = G - i >= 16 ? 0xffff : (__mmask16)((1u << (G - i)) - 1);
        mx = _mm512_max_ps(_mm512_abs_ps(_mm512_maskz_loadu_ps(m, xg + i)), mx);
      }
      scales[g] = _mm512_reduce_max_ps(mx) / 127.0f;
    }
    for (size_t g = b0; g < b1; g++) {
      const float *xg = x + g * (size_t)G;
      int8_t *qg = q + g * (size_t)G;
      float s = scales[g];
      if (s == 0.0f) {
        memset(qg, 0, (size_t)G);
        if (sums) sums[g] = 0;
        continue;
      }
      const __m512 sv = _mm512_set1_ps(s);
      __m512i acc = _mm512_setzero_si512();
      if (full) {
        for (int i = 0; i < G; i += 16) {
          __m512i t = quant16(_mm512_loadu_ps(xg + i), sv);
          _mm_storeu_si128((__m128i *)(qg + i), _mm512_cvtepi32_epi8(t));
          acc = _mm512_add_epi32(acc, t);
        }
      } else {
        for (int i = 0; i < G; i += 16) {
          __mmask16 m = G - i >= 16 ? 0xffff : (__mmask16)((1u << (G - i)) - 1);
          __m512i t = _mm512_maskz_mov_epi32(
              m, quant16(_mm512_maskz_loadu_ps(m, xg + i), sv));
          _mm512_mask_cvtepi32_storeu_epi8(qg + i, m, t);
          acc = _mm512_add_epi32(acc, t);
        }
      }
      if (sums) sums[g] = _mm512_reduce_add_epi32(acc);
    }
  }
}
