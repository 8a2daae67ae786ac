/*
 * q8_avx2.c — the AVX2 int8 tile (see q8.c for the packing and the order).
 *
 * AVX2 has no VPDPBUSD, and VPMADDUBSW saturates, so products are formed
 * exactly with VPMADDWD on 16-bit values: w + 128 zero-extended, q_a
 * sign-extended; each int32 lane gets two products.  A half panel (8
 * columns) is two such vectors; at the group's end VPHADDD and a fixed
 * lane permutation give one exact int32 per column, minus 128 * sum(q_a).
 * Then acc = fma((float)isum, sa_g * sw_g, acc), as the reference does.
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

/* 8 columns (half h of the panel) x MR rows. */
AI void q8_t(const int MR, int h, int ngroups, int G, const int8_t *qa,
             ptrdiff_t lda, const float *sa, const int32_t *asum,
             const int8_t *wp, const float *ws, float *C, ptrdiff_t ldc,
             __m256i km) {
  __m256 acc[4];
#pragma GCC unroll 4
  for (int r = 0; r < MR; r++)
    acc[r] = _mm256_setzero_ps();
  const __m256i perm = _mm256_setr_epi32(0, 1, 4, 5, 2, 3, 6, 7);
  const int k4n = G / 4;
  for (int g = 0; g < ngroups; g++) {
    __m256i i0[4], i1[4];
#pragma GCC unroll 4
    for (int r = 0; r < MR; r++) {
      i0[r] = _mm256_setzero_si256();
      i1[r] = _mm256_setzero_si256();
    }
    const int8_t *wg = wp + (size_t)g * k4n * 64 + 32 * h;
    const int8_t *ag = qa + (size_t)g * G;
    for (int k4 = 0; k4 < k4n; k4++) {
      __m256i wv = _mm256_loadu_si256((const __m256i *)(wg + k4 * 64));
      __m256i w0 = _mm256_cvtepu8_epi16(_mm256_castsi256_si128(wv));
      __m256i w1 = _mm256_cvtepu8_epi16(_mm256_extracti128_si256(wv, 1));
#pragma GCC unroll 4
      for (int r = 0; r < MR; r++) {
        __m128i a8 = _mm_set1_epi32(load4(ag + r * lda + k4 * 4));
        __m256i a16 = _mm256_cvtepi8_epi16(a8);
        i0[r] = _mm256_add_epi32(i0[r], _mm256_madd_epi16(w0, a16));
        i1[r] = _mm256_add_epi32(i1[r], _mm256_madd_epi16(w1, a16));
      }
    }
    __m256 wsv = _mm256_loadu_ps(ws + g * 16 + 8 * h);
#pragma GCC unroll 4
    for (int r = 0; r < MR; r++) {
      __m256i hs =
          _mm256_permutevar8x32_epi32(_mm256_hadd_epi32(i0[r], i1[r]), perm);
      __m256i is =
          _mm256_sub_epi32(hs, _mm256_set1_epi32(128 * asum[r * ngroups + g]));
      __m256 sc = _mm256_mul_ps(_mm256_set1_ps(sa[r * ngroups + g]), wsv);
      acc[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(is), sc, acc[r]);
    }
  }
#pragma GCC unroll 4
  for (int r = 0; r < MR; r++)
    _mm256_maskstore_ps(C + r * ldc + 8 * h, km, acc[r]);
}

void px_q8_tile_avx2(int mr, int ncols, int ngroups, int G, const int8_t *qa,
                     ptrdiff_t lda, const float *sa, const int32_t *asum,
                     const int8_t *wp, ptrdiff_t pstride, float *C,
                     ptrdiff_t ldc) {
  (void)pstride; /* one panel per tile at this level */
  const float *ws = (const float *)(wp + (size_t)16 * ngroups * G);
  __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int h = 0; h < 2 && 8 * h < ncols; h++) {
    __m256i km = _mm256_cmpgt_epi32(_mm256_set1_epi32(ncols - 8 * h), lane);
    switch (mr) {
    case 1:
      q8_t(1, h, ngroups, G, qa, lda, sa, asum, wp, ws, C, ldc, km);
      break;
    case 2:
      q8_t(2, h, ngroups, G, qa, lda, sa, asum, wp, ws, C, ldc, km);
      break;
    case 3:
      q8_t(3, h, ngroups, G, qa, lda, sa, asum, wp, ws, C, ldc, km);
      break;
    default:
      q8_t(4, h, ngroups, G, qa, lda, sa, asum, wp, ws, C, ldc, km);
      break;
    }
  }
}
