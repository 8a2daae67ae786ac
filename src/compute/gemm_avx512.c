/*
 * gemm_avx512.c — the AVX-512 f32 GEMM register tile (see gemm.c).
 *
 * Tile: up to 8 rows x 32 columns (two 16-column panels), 16 zmm
 * accumulators.  For each k in order: load the two B panel rows, broadcast
 * A(r, k) and FMA into row r's accumulators — acc = fma(a, b, acc), the
 * same single rounding as the scalar fmaf, lane by lane, so the result is
 * bit-identical to the scalar reference.  Partial tiles (fewer rows, fewer
 * columns) are separate instantiations with masked loads/stores; the
 * column tail never changes what a valid lane computes.
 */
#include <immintrin.h>
#include <stddef.h>

#include "compute/compute_internal.h"
#include "base/px_internal.h"

#define AI static inline __attribute__((always_inline))

AI void tile_t(const int MR, const int NP, const int SAK1, int kc,
               const float *a, ptrdiff_t sar, ptrdiff_t sak, const float *b,
               ptrdiff_t bstride, float *C, ptrdiff_t ldc, int load_c,
               __mmask16 m0, __mmask16 m1) {
  __m512 acc0[8], acc1[8];
  const float *ap[8];
#pragma GCC unroll 8
  for (int r = 0; r < MR; r++) {
    ap[r] = a + r * sar;
    if (load_c) {
      acc0[r] = _mm512_maskz_loadu_ps(m0, C + r * ldc);
      acc1[r] = NP > 1 ? _mm512_maskz_loadu_ps(m1, C + r * ldc + 16)
                       : _mm512_setzero_ps();
    } else {
      acc0[r] = _mm512_setzero_ps();
      acc1[r] = _mm512_setzero_ps();
    }
  }
  const float *b1p = b + bstride;
  for (int k = 0; k < kc; k++) {
    __m512 b0 = _mm512_loadu_ps(b + k * 16);
    __m512 b1 = NP > 1 ? _mm512_loadu_ps(b1p + k * 16) : b0;
#pragma GCC unroll 8
    for (int r = 0; r < MR; r++) {
      __m512 av = _mm512_set1_ps(SAK1 ? ap[r][k] : ap[r][k * sak]);
      acc0[r] = _mm512_fmadd_ps(av, b0, acc0[r]);
      if (NP > 1) acc1[r] = _mm512_fmadd_ps(av, b1, acc1[r]);
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; r++) {
    _mm512_mask_storeu_ps(C + r * ldc, m0, acc0[r]);
    if (NP > 1) _mm512_mask_storeu_ps(C + r * ldc + 16, m1, acc1[r]);
  }
}

#define TILE_CASES(NP, SAK1)                                                   \
  switch (mr) {                                                                \
  case 1:                                                                      \
    tile_t(1, NP, SAK1, kc, a, sar, sak, b, bs, C, ldc, lc, m0, m1);           \
    break;                                                                     \
  case 2:                                                                      \
    tile_t(2, NP, SAK1, kc, a, sar, sak, b, bs, C, ldc, lc, m0, m1);           \
    break;                                                                     \
  case 3:                                                                      \
    tile_t(3, NP, SAK1, kc, a, sar, sak, b, bs, C, ldc, lc, m0, m1);           \
    break;                                                                     \
  case 4:                                                                      \
    tile_t(4, NP, SAK1, kc, a, sar, sak, b, bs, C, ldc, lc, m0, m1);           \
    break;                                                                     \
  case 5:                                                                      \
    tile_t(5, NP, SAK1, kc, a, sar, sak, b, bs, C, ldc, lc, m0, m1);           \
    break;                                                                     \
  case 6:                                                                      \
    tile_t(6, NP, SAK1, kc, a, sar, sak, b, bs, C, ldc, lc, m0, m1);           \
    break;                                                                     \
  case 7:                                                                      \
    tile_t(7, NP, SAK1, kc, a, sar, sak, b, bs, C, ldc, lc, m0, m1);           \
    break;                                                                     \
  default:                                                                     \
    tile_t(8, NP, SAK1, kc, a, sar, sak, b, bs, C, ldc, lc, m0, m1);           \
    break;                                                                     \
  }

static void tile_np1_s1(int mr, int kc, const float *a, ptrdiff_t sar,
                        ptrdiff_t sak, const float *b, ptrdiff_t bs, float *C,
                        ptrdiff_t ldc, int lc, __mmask16 m0, __mmask16 m1) {
  TILE_CASES(1, 1)
}
static void tile_np2_s1(int mr, int kc, const float *a, ptrdiff_t sar,
                        ptrdiff_t sak, const float *b, ptrdiff_t bs, float *C,
                        ptrdiff_t ldc, int lc, __mmask16 m0, __mmask16 m1) {
  TILE_CASES(2, 1)
}
static void tile_np1_sn(int mr, int kc, const float *a, ptrdiff_t sar,
                        ptrdiff_t sak, const float *b, ptrdiff_t bs, float *C,
                        ptrdiff_t ldc, int lc, __mmask16 m0, __mmask16 m1) {
  TILE_CASES(1, 0)
}
static void tile_np2_sn(int mr, int kc, const float *a, ptrdiff_t sar,
                        ptrdiff_t sak, const float *b, ptrdiff_t bs, float *C,
                        ptrdiff_t ldc, int lc, __mmask16 m0, __mmask16 m1) {
  TILE_CASES(2, 0)
}

void px_tile_avx512(int mr, int ncols, int kc, const float *a, ptrdiff_t sar,
                    ptrdiff_t sak, const float *b, ptrdiff_t bstride, float *C,
                    ptrdiff_t ldc, int load_c) {
  __mmask16 m0 = ncols >= 16 ? 0xffff : (__mmask16)((1u << ncols) - 1);
  int n1 = ncols - 16;
  __mmask16 m1 = n1 >= 16 ? 0xffff : n1 > 0 ? (__mmask16)((1u << n1) - 1) : 0;
  if (ncols > 16) {
    if (sak == 1)
      tile_np2_s1(mr, kc, a, sar, sak, b, bstride, C, ldc, load_c, m0, m1);
    else
      tile_np2_sn(mr, kc, a, sar, sak, b, bstride, C, ldc, load_c, m0, m1);
  } else {
    if (sak == 1)
      tile_np1_s1(mr, kc, a, sar, sak, b, bstride, C, ldc, load_c, m0, m1);
    else
      tile_np1_sn(mr, kc, a, sar, sak, b, bstride, C, ldc, load_c, m0, m1);
  }
}
