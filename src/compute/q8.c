/*
 * q8.c — int8 grouped quantisation and matmul (px_quantize_q8,
 * px_matmul_q8), the scalar reference int8 tile and the W packing.
 *
 * Quantisation of a group of G values (scalar at every level):
 *   amax = max |x_i|; scale = amax / 127 (division, correctly rounded);
 *   scale == 0 -> q = 0; else v = x_i / scale, clamped to [-127, 127]
 *   (NaN -> 0), q = round half away from zero of v, computed exactly as
 *   t = trunc(v), f = v - t (exact), t += (f >= 0.5) - (f <= -0.5).
 *
 * Matmul: A is quantised, in chunks of rows, into the context's scratch
 * (per row and group: q, scale sa, and asum = sum of q, used by the VNNI
 * offset trick); each group is quantised on its own, so any split over the
 * threads gives the same bytes (AVX-512: q8_avx512.c's vector quantiser,
 * the same bits).  With pre-packed W and enough rows, each thread takes a
 * range of the chunk's rows, quantises them and multiplies them by every
 * panel (one dispatch per chunk); otherwise the threads quantise the chunk
 * together, then take disjoint ranges of 16-column panels, each packing
 * its panels of W (unless pre-packed) into its scratch:
 *   wp[(k >> 2) * 64 + j * 4 + (k & 3)] = (uint8_t)W[n0 + j][k] ^ 0x80
 * (16 columns x 4 consecutive k per 64 bytes: one zmm, one VPDPBUSD;
 * the XOR makes W unsigned, w + 128, as VPDPBUSD wants) followed by the
 * panel's scales ws[g * 16 + j] (px_pack_q8 writes the same layout once,
 * for px_matmul_q8_packed).  Every output then is
 *   acc = +0; for g in order:
 *     isum = sum over the group of q_a * w  (exact int32; order-free)
 *     acc = fma((float)isum, sa_g * sw_g, acc)
 * so all levels agree bit for bit: integer sums are exact in any order,
 * and the float steps are the same operations in the same order.
 * Limits: K % G == 0, G % 4 == 0, K <= PX_Q8_MAX_K.
 */
#include <math.h>
#include <string.h>

#include "compute/compute_internal.h"
#include "base/px_internal.h"

static int8_t quant1(float x, float scale) {
  if (scale == 0.0f) return 0;
  float v = x / scale;
  if (v != v) return 0;
  v = v > 127.0f ? 127.0f : v;
  v = v < -127.0f ? -127.0f : v;
  int t = (int)v;
  float f = v - (float)t;
  t += (f >= 0.5f) - (f <= -0.5f);
  return (int8_t)t;
}

static void quant_group(const float *x, int G, int8_t *q, float *scale,
                        int32_t *sum) {
  float amax = 0.0f;
  for (int i = 0; i < G; i++) {
    float a = fabsf(x[i]);
    amax = a > amax ? a : amax;
  }
  float s = amax / 127.0f;
  int32_t acc = 0;
  for (int i = 0; i < G; i++) {
    q[i] = quant1(x[i], s);
    acc += q[i];
  }
  *scale = s;
  if (sum) *sum = acc;
}

void px_quantize_q8(const float *x, int n, int G, int8_t *q, float *scales) {
  for (int g = 0; g < n / G; g++)
    quant_group(x + (size_t)g * G, G, q + (size_t)g * G, scales + g, NULL);
}

void px_q8_tile_scalar(int mr, int ncols, int ngroups, int G, const int8_t *qa,
                       ptrdiff_t lda, const float *sa, const int32_t *asum,
                       const int8_t *wp, ptrdiff_t pstride, float *C,
                       ptrdiff_t ldc) {
  (void)asum;
  for (int r = 0; r < mr; r++)
    for (int jj = 0; jj < ncols; jj++) {
      const int8_t *w = wp + (jj >> 4) * pstride;
      const float *ws = (const float *)(w + (size_t)16 * ngroups * G);
      int j = jj & 15;
      float acc = 0.0f;
      for (int g = 0; g < ngroups; g++) {
        int32_t isum = 0;
        for (int k = g * G; k < (g + 1) * G; k++) {
          int wv = (int)(uint8_t)w[(k >> 2) * 64 + j * 4 + (k & 3)] - 128;
          isum += (int32_t)qa[r * lda + k] * wv;
        }
        acc = fmaf((float)isum, sa[r * ngroups + g] * ws[g * 16 + j], acc);
      }
      C[r * ldc + jj] = acc;
    }
}

typedef struct {
  px_compute_t *c;
  const px_kernels_t *k;
  float *C;
  const float *A;
  const int8_t *W;
  const float *Ws;
  int G, M, N, K, ngroups;
  const uint8_t *packed; /* px_pack_q8 layout, or NULL: pack per call */
  int row0, rows;        /* this chunk of A rows */
  int ntasks;
} q8_job_t;

/* Pack one 16-column panel: 16*K bytes of W (4 k per column per 64 bytes,
 * XOR 0x80), then 16*ngroups scales.  Columns past N are w = 0, scale 0. */
static void pack_panel(const int8_t *W, const float *Ws, int N, int K,
                       int ngroups, int n0, uint8_t *dst) {
  float *ws = (float *)(dst + (size_t)16 * K);
  for (int c = 0; c < 16; c++) {
    int n = n0 + c;
    uint8_t *d = dst + c * 4;
    if (n >= N) {
      for (int k4 = 0; k4 < K / 4; k4++)
        memset(d + (size_t)k4 * 64, 0x80, 4);
      for (int g = 0; g < ngroups; g++)
        ws[g * 16 + c] = 0.0f;
      continue;
    }
    const uint8_t *src = (const uint8_t *)W + (size_t)n * K;
    for (int k4 = 0; k4 < K / 4; k4++) {
      uint32_t v;
      memcpy(&v, src + 4 * k4, 4);
      v ^= 0x80808080u;
      memcpy(d + (size_t)k4 * 64, &v, 4);
    }
    for (int g = 0; g < ngroups; g++)
      ws[g * 16 + c] = Ws[(size_t)n * ngroups + g];
  }
}

size_t px_pack_q8_size(int N, int K, int G) {
  return (size_t)((N + 15) / 16) * ((size_t)16 * K + (size_t)64 * (K / G));
}

void px_pack_q8(void *dst, const int8_t *W, const float *Ws, int G, int N,
                int K) {
  size_t psz = (size_t)16 * K + (size_t)64 * (K / G);
  for (int p = 0; p < (N + 15) / 16; p++)
    pack_panel(W, Ws, N, K, K / G, p * 16, (uint8_t *)dst + p * psz);
}

void px_q8_quantize_row(const float *x, int K, int G, int8_t *q, float *s,
                        int32_t *sum) {
  for (int g = 0; g < K / G; g++)
    quant_group(x + (size_t)g * G, G, q + (size_t)g * G, s + g, sum + g);
}

void px_q8_gemv_panels(const px_kernels_t *k, float *C, const int8_t *qa,
                       const float *sa, const int32_t *asum, const void *Wp,
                       int G, int N, int K, int p0, int p1) {
  size_t psz = (size_t)16 * K + (size_t)64 * (K / G);
  for (int p = p0; p < p1; p += k->q8_np) {
    int npp = PX_MIN(k->q8_np, p1 - p);
    int n0 = p * 16;
    int ncols = PX_MIN(16 * npp, N - n0);
    k->q8_tile(1, ncols, K / G, G, qa, K, sa, asum,
               (const int8_t *)Wp + (size_t)p * psz, (ptrdiff_t)psz, C + n0, N);
  }
}

/* Quantise groups [g0, g1) of the chunk's rows (contiguous in A and in the
 * scratch): AVX-512 when the level has it (same bits), else the reference. */
static void quant_groups(const q8_job_t *j, size_t g0, size_t g1) {
  px_compute_t *c = j->c;
  const float *x = j->A + (size_t)j->row0 * j->K + g0 * (size_t)j->G;
  int8_t *q = c->q8a + g0 * (size_t)j->G;
  if (j->k->level == PX_SIMD_AVX512) {
    px_q8_quant_avx512(x, (g1 - g0) * (size_t)j->G, j->G, q, c->q8s + g0,
                       c->q8sum + g0);
    return;
  }
  for (size_t g = 0; g < g1 - g0; g++)
    quant_group(x + g * (size_t)j->G, j->G, q + g * (size_t)j->G,
                c->q8s + g0 + g, c->q8sum + g0 + g);
}

/* Rows [ra, rb) of the chunk against panel units [u0, u1) (a unit: the
 * level's q8_np panels). */
static void q8_block(const q8_job_t *j, int worker, int ra, int rb, int u0,
                     int u1) {
  int np = j->k->q8_np;
  int npanels = (j->N + 15) / 16;
  size_t psz = (size_t)16 * j->K + (size_t)64 * j->ngroups;
  uint8_t *scratch = (uint8_t *)px_worker_scratch(j->c, worker);
  const int8_t *qa = j->c->q8a;
  const float *sa = j->c->q8s;
  const int32_t *asum = j->c->q8sum;
  for (int u = u0; u < u1; u++) {
    int p = u * np;
    int npp = PX_MIN(np, npanels - p);
    const uint8_t *wp;
    if (j->packed) {
      wp = j->packed + (size_t)p * psz;
    } else {
      for (int q = 0; q < npp; q++)
        pack_panel(j->W, j->Ws, j->N, j->K, j->ngroups, (p + q) * 16,
                   scratch + q * psz);
      wp = scratch;
    }
    int n0 = p * 16;
    int ncols = PX_MIN(16 * npp, j->N - n0);
    for (int r = ra; r < rb; r += j->k->q8_mr) {
      int mr = PX_MIN(j->k->q8_mr, rb - r);
      j->k->q8_tile(mr, ncols, j->ngroups, j->G, qa + (size_t)r * j->K, j->K,
                    sa + (size_t)r * j->ngroups, asum + (size_t)r * j->ngroups,
                    (const int8_t *)wp, (ptrdiff_t)psz,
                    j->C + (size_t)(j->row0 + r) * j->N + n0, j->N);
    }
  }
}

static int q8_units(const q8_job_t *j) {
  return ((j->N + 15) / 16 + j->k->q8_np - 1) / j->k->q8_np;
}

/* Column split: task t takes a range of panel units, all rows of the
 * chunk (quantised before, by q8_quant_task). */
static void q8_task(void *arg, int t, int worker) {
  const q8_job_t *j = arg;
  int units = q8_units(j);
  q8_block(j, worker, 0, j->rows, (int)((int64_t)units * t / j->ntasks),
           (int)((int64_t)units * (t + 1) / j->ntasks));
}

static void q8_quant_task(void *arg, int t, int worker) {
  (void)worker;
  const q8_job_t *j = arg;
  size_t n = (size_t)j->rows * j->ngroups;
  size_t g0 = n * (size_t)t / (size_t)j->ntasks;
  size_t g1 = n * (size_t)(t + 1) / (size_t)j->ntasks;
  if (g1 > g0) quant_groups(j, g0, g1);
}

/* Row split (pre-packed W, enough rows): task t quantises its own rows
 * (multiples of the tile height) and multiplies them by every panel, so a
 * chunk takes one dispatch and no barrier. */
static int q8_row_cut(const q8_job_t *j, int t) {
  int mr = j->k->q8_mr;
  int tiles = (j->rows + mr - 1) / mr;
  return PX_MIN(j->rows, (int)((int64_t)tiles * t / j->ntasks) * mr);
}

static void q8_rows_task(void *arg, int t, int worker) {
  const q8_job_t *j = arg;
  int ra = q8_row_cut(j, t), rb = q8_row_cut(j, t + 1);
  if (rb <= ra) return;
  quant_groups(j, (size_t)ra * j->ngroups, (size_t)rb * j->ngroups);
  q8_block(j, worker, ra, rb, 0, q8_units(j));
}

static void q8_run(px_compute_t *c, float *C, const float *A, const int8_t *W,
                   const float *Ws, const uint8_t *packed, int G, int M, int N,
                   int K) {
  if (M <= 0 || N <= 0 || G <= 0 || K <= 0 || K % G || G % 4 ||
      K > PX_Q8_MAX_K) {
    PX_LOGE("compute", "px_matmul_q8: unsupported shape K=%d G=%d", K, G);
    return;
  }
  q8_job_t j = {0};
  j.c = c;
  j.k = px_kernels_for(c->simd);
  j.C = C, j.A = A, j.W = W, j.Ws = Ws, j.packed = packed;
  j.G = G, j.M = M, j.N = N, j.K = K, j.ngroups = K / G;
  int units = q8_units(&j);
  int chunk = (int)PX_MIN((size_t)M, PX_Q8_SCRATCH_BYTES / (size_t)K);
  for (int r0 = 0; r0 < M; r0 += chunk) {
    int rows = PX_MIN(chunk, M - r0);
    j.row0 = r0;
    j.rows = rows;
    if ((double)rows * N * K < 32768.0 || c->threads == 1) {
      j.ntasks = 1;
      q8_rows_task(&j, 0, 0);
    } else if (packed && rows >= 64 * c->threads) {
      /* Small chunks: 8 tasks per thread, so the caller's thread works on
       * while the parked workers wake (tens of microseconds). */
      j.ntasks = c->threads * ((double)rows * N * K <= 33554432.0 ? 8 : 1);
      j.ntasks = PX_MIN(j.ntasks, (rows + j.k->q8_mr - 1) / j.k->q8_mr);
      px_compute_parallel(c, j.ntasks, q8_rows_task, &j);
    } else {
      /* Quantise (groups split over the threads: each group on its own,
       * any split gives the same bytes), then split the columns. */
      j.ntasks = (size_t)rows * K >= 32768 ? c->threads : 1;
      px_compute_parallel(c, j.ntasks, q8_quant_task, &j);
      j.ntasks = PX_MIN(c->threads, units);
      px_compute_parallel(c, j.ntasks, q8_task, &j);
    }
  }
}

void px_matmul_q8(px_compute_t *c, float *C, const float *A, const int8_t *W,
                  const float *Ws, int G, int M, int N, int K) {
  q8_run(c, C, A, W, Ws, NULL, G, M, N, K);
}

void px_matmul_q8_packed(px_compute_t *c, float *C, const float *A,
                         const void *Wp, int G, int M, int N, int K) {
  q8_run(c, C, A, NULL, NULL, (const uint8_t *)Wp, G, M, N, K);
}
