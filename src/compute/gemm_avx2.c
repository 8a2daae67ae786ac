/*
 * gemm_avx2.c — the AVX2+FMA f32 GEMM register tile (see gemm.c).
 *
 * Tile: up to 6 rows x 16 columns (one panel = two ymm), 12 accumulators.
 * For each k in order: load the panel row, broadcast A(r, k), and
 * acc = fma(a, b, acc) — one rounding per step, as the scalar fmaf, so the
 * result is bit-identical to the scalar reference.  Column tails use
 * masked loads/stores; row tails are separate instantiations.
 */
#include <immintrin.h>
#include <stddef.h>

#include "compute/compute_internal.h"
#include "base/px_internal.h"

#define AI static inline __attribute__((always_inline))

AI void tile_t(const int MR, const int SAK1, int kc, const float *a,
               ptrdiff_t sar, ptrdiff_t sak, const float *b, float *C,
               ptrdiff_t ldc, int load_c, int full, __m256i k0, __m256i k1) {
  __m256 acc0[6], acc1[6];
  const float *ap[6];
#pragma GCC unroll 6
  for (int r = 0; r < MR; r++) {
    ap[r] = a + r * sar;
    if (load_c && full) {
      acc0[r] = _mm256_loadu_ps(C + r * ldc);
      acc1[r] = _mm256_loadu_ps(C + r * ldc + 8);
    } else if (load_c) {
      acc0[r] = _mm256_maskload_ps(C + r * ldc, k0);
      acc1[r] = _mm256_maskload_ps(C + r * ldc + 8, k1);
    } else {
      acc0[r] = _mm256_setzero_ps();
      acc1[r] = _mm256_setzero_ps();
    }
  }
  for (int k = 0; k < kc; k++) {
    __m256 b0 = _mm256_loadu_ps(b + k * 16);
    __m256 b1 = _mm256_loadu_ps(b + k * 16 + 8);
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
      __m256 av = _mm256_broadcast_ss(SAK1 ? &ap[r][k] : &ap[r][k * sak]);
      acc0[r] = _mm256_fmadd_ps(av, b0, acc0[r]);
      acc1[r] = _mm256_fmadd_ps(av, b1, acc1[r]);
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < MR; r++) {
    if (full) {
      _mm256_storeu_ps(C + r * ldc, acc0[r]);
      _mm256_storeu_ps(C + r * ldc + 8, acc1[r]);
    } else {
      _mm256_maskstore_ps(C + r * ldc, k0, acc0[r]);
      _mm256_maskstore_ps(C + r * ldc + 8, k1, acc1[r]);
    }
  }
}

#define TILE_CASES(SAK1)                                                       \
  switch (mr) {                                                                \
  case 1:                                                                      \
    tile_t(1, SAK1, kc, a, sar, sak, b, C, ldc, lc, full, k0, k1);             \
    break;                                                                     \
  case 2:                                                                      \
    tile_t(2, SAK1, kc, a, sar, sak, b, C, ldc, lc, full, k0, k1);             \
    break;                                                                     \
  case 3:                                                                      \
    tile_t(3, SAK1, kc, a, sar, sak, b, C, ldc, lc, full, k0, k1);             \
    break;                                                                     \
  case 4:                                                                      \
    tile_t(4, SAK1, kc, a, sar, sak, b, C, ldc, lc, full, k0, k1);             \
    break;                                                                     \
  case 5:                                                                      \
    tile_t(5, SAK1, kc, a, sar, sak, b, C, ldc, lc, full, k0, k1);             \
    break;                                                                     \
  default:                                                                     \
    tile_t(6, SAK1, kc, a, sar, sak, b, C, ldc, lc, full, k0, k1);             \
    break;                                                                     \
  }

static void tile_s1(int mr, int kc, const float *a, ptrdiff_t sar,
                    ptrdiff_t sak, const float *b, float *C, ptrdiff_t ldc,
                    int lc, int full, __m256i k0, __m256i k1) {
  TILE_CASES(1)
}
static void tile_sn(int mr, int kc, const float *a, ptrdiff_t sar,
                    ptrdiff_t sak, const float *b, float *C, ptrdiff_t ldc,
                    int lc, int full, __m256i k0, __m256i k1) {
  TILE_CASES(0)
}

void px_tile_avx2(int mr, int ncols, int kc, const float *a, ptrdiff_t sar,
                  ptrdiff_t sak, const float *b, ptrdiff_t bstride, float *C,
                  ptrdiff_t ldc, int load_c) {
  (void)bstride;
  __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  __m256i k0 = _mm256_cmpgt_epi32(_mm256_set1_epi32(ncols), lane);
  __m256i k1 = _mm256_cmpgt_epi32(_mm256_set1_epi32(ncols - 8), lane);
  int full = ncols >= 16;
  if (sak == 1)
    tile_s1(mr, kc, a, sar, sak, b, C, ldc, load_c, full, k0, k1);
  else
    tile_sn(mr, kc, a, sar, sak, b, C, ldc, load_c, full, k0, k1);
}
