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
