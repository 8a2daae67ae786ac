/*
 * gemm.c — f32 matrix multiplication: px_matmul_f32, px_matmul_f32_packed,
 * px_gemm_f32 and (through the same driver) px_conv2d_f32.
 *
 * Order (the contract of plexus/compute.h): every output element is
 *     acc = +0.0f (or C's old value when beta = 1);
 *     for k = 0 .. K-1:  acc = fma(A[m][k], B[k][n], acc);
 *     C[m][n] = acc (+ bias, added once, after the last k).
 * The driver is a Goto-style blocked GEMM that keeps this order exactly:
 *   for each column block of <= PX_NC columns (a thread's share of N),
 *     for each k-block [pc, pc + PX_KC) (all of K when M fits one tile),
 *       pack B's block into 16-column panels, panel[k][16] (zero padded);
 *       for each register tile of mr rows x np*16 columns:
 *         the level's tile kernel loads the tile from C (k-block > 0, or
 *         beta = 1) or starts at +0, runs k = pc .. pc+kc-1 in order with
 *         FMA, and stores the tile back.
 * Storing an f32 accumulator and loading it again is exact, so resuming a
 * tile at the next k-block is the same as never having stopped: blocking
 * changes the speed, not the bits.  A is read in place (element (r, k) at
 * a[r*sar + k*sak], so op(A) = A^T costs nothing).  Threads take disjoint
 * ranges of 16-column panels (or of rows when N is narrow), never a part
 * of a reduction.  Bias is added by a separate pass over the finished
 * tile (acc + bias, one rounding), exactly as the contract says.
 *
 * px_conv2d_f32 is the GEMM out[oc][p] = W[oc][(ci,ky,kx)] . col[(ci,ky,kx)][p]
 * whose B panels are packed straight from the image (implicit im2col, zero
 * outside the image), so the reduction runs over (ci, ky, kx) in that
 * nested order, and padded taps contribute fma(w, 0, acc) like any other.
 */
#include <math.h>
#include <string.h>

#include "compute/compute_internal.h"
#include "base/px_internal.h"

/* ---- scalar reference tile ----------------------------------------------- */

void px_tile_scalar(int mr, int ncols, int kc, const float *a, ptrdiff_t sar,
                    ptrdiff_t sak, const float *b, ptrdiff_t bstride, float *C,
                    ptrdiff_t ldc, int load_c) {
  for (int r = 0; r < mr; r++)
    for (int j = 0; j < ncols; j++) {
      const float *bp = b + (j >> 4) * bstride + (j & 15);
      const float *ap = a + r * sar;
      float acc = load_c ? C[r * ldc + j] : 0.0f;
      for (int k = 0; k < kc; k++)
        acc = fmaf(ap[k * sak], bp[k * 16], acc);
      C[r * ldc + j] = acc;
    }
}

/* ---- B sources and packing ------------------------------------------------
 */

enum { B_KN = 0, B_NK = 1, B_PACKED = 2, B_CONV = 3 };

typedef struct {
  const float *in; /* one image [c][h][w] */
  const px_conv2d_shape_t *s;
  int oh, ow;
} conv_src_t;

typedef struct {
  const px_kernels_t *k;
  int M, N, K;
  const float *A;
  ptrdiff_t sar, sak;
  int bmode;
  const float *B;
  ptrdiff_t ldb;
  conv_src_t conv;
  float *C;
  ptrdiff_t ldc;
  int beta;
  const float *bias_n; /* per column */
  const float *bias_m; /* per row */
  int split_m;
  int ntasks;
  px_compute_t *c;
} gemm_job_t;

/* Pack B[pc .. pc+kc)[n0 .. n0+ncols) into ceil(ncols/16) panels of
 * [kc][16], zero padded on the right. */
static void pack_b(const gemm_job_t *g, float *dst, int pc, int kc, int n0,
                   int ncols) {
  int np = (ncols + 15) / 16;
  switch (g->bmode) {
  case B_KN:
    for (int p = 0; p < np; p++) {
      int w = PX_MIN(16, ncols - 16 * p);
      float *d = dst + (size_t)p * kc * 16;
      for (int k = 0; k < kc; k++) {
        const float *s = g->B + (size_t)(pc + k) * g->ldb + n0 + 16 * p;
        memcpy(d + k * 16, s, (size_t)w * sizeof(float));
        for (int j = w; j < 16; j++)
          d[k * 16 + j] = 0.0f;
      }
    }
    break;
  case B_NK:
    for (int p = 0; p < np; p++) {
      int w = PX_MIN(16, ncols - 16 * p);
      float *d = dst + (size_t)p * kc * 16;
      for (int j = 0; j < 16; j++) {
        if (j >= w) {
          for (int k = 0; k < kc; k++)
            d[k * 16 + j] = 0.0f;
          continue;
        }
        const float *s = g->B + (size_t)(n0 + 16 * p + j) * g->ldb + pc;
        for (int k = 0; k < kc; k++)
          d[k * 16 + j] = s[k];
      }
    }
    break;
  case B_CONV: {
    const px_conv2d_shape_t *s = g->conv.s;
    int khw = s->kh * s->kw;
    for (int p = 0; p < np; p++) {
      float *d = dst + (size_t)p * kc * 16;
      for (int k = 0; k < kc; k++) {
        int kk = pc + k;
        int ci = kk / khw, ky = (kk % khw) / s->kw, kx = kk % s->kw;
        const float *plane = g->conv.in + (size_t)ci * s->h * s->w;
        for (int j = 0; j < 16; j++) {
          int n = n0 + 16 * p + j;
          float v = 0.0f;
          if (n < g->N) {
            int oy = n / g->conv.ow, ox = n % g->conv.ow;
            int iy = oy * s->stride - s->pad + ky;
            int ix = ox * s->stride - s->pad + kx;
            if (iy >= 0 && iy < s->h && ix >= 0 && ix < s->w)
              v = plane[iy * s->w + ix];
          }
          d[k * 16 + j] = v;
        }
      }
    }
    break;
  }
  default:
    break;
  }
}

/* ---- the driver -----------------------------------------------------------
 */

static void gemm_range(const gemm_job_t *g, int worker, int m0, int m1, int p0,
                       int p1) {
  const px_kernels_t *k = g->k;
  float *scratch = px_worker_scratch(g->c, worker);
  int pblk = PX_NC / 16, kcb = PX_KC;
  if (m1 - m0 <= k->mr && g->K > 0) {
    /* One row tile (GEMV-like): B is used once, so k-blocking only costs
     * C reloads; take all of K at once when the packed block fits. */
    int pb = g->bmode == B_PACKED
                 ? pblk
                 : (int)(PX_SCRATCH_FLOATS / (16 * (size_t)g->K));
    pb = pb / k->np * k->np;
    if (pb >= k->np) pblk = pb, kcb = g->K;
  }
  for (int jc = p0; jc < p1; jc += pblk) {
    int nb = PX_MIN(pblk, p1 - jc);
    int n0 = jc * 16;
    int ncols_blk = PX_MIN(g->N - n0, nb * 16);
    if (g->K == 0 && !g->beta)
      for (int m = m0; m < m1; m++)
        memset(g->C + m * g->ldc + n0, 0, (size_t)ncols_blk * sizeof(float));
    for (int pc = 0; pc < g->K; pc += kcb) {
      int kc = PX_MIN(kcb, g->K - pc);
      const float *bp;
      ptrdiff_t bstride;
      if (g->bmode == B_PACKED) {
        bp = g->B + (size_t)jc * g->K * 16 + (size_t)pc * 16;
        bstride = (ptrdiff_t)g->K * 16;
      } else {
        pack_b(g, scratch, pc, kc, n0, ncols_blk);
        bp = scratch;
        bstride = (ptrdiff_t)kc * 16;
      }
      int load_c = pc > 0 || g->beta;
      const float *ablk = g->A + pc * g->sak;
      for (int ir = m0; ir < m1; ir += k->mr) {
        int mr = PX_MIN(k->mr, m1 - ir);
        for (int jp = 0; jp < nb; jp += k->np) {
          int ncols = PX_MIN(k->np * 16, ncols_blk - jp * 16);
          k->tile(mr, ncols, kc, ablk + ir * g->sar, g->sar, g->sak,
                  bp + jp * bstride, bstride, g->C + ir * g->ldc + n0 + jp * 16,
                  g->ldc, load_c);
        }
      }
    }
    if (g->bias_n || g->bias_m)
      for (int m = m0; m < m1; m++) {
        float *row = g->C + m * g->ldc + n0;
        for (int j = 0; j < ncols_blk; j++)
          row[j] = row[j] + (g->bias_n ? g->bias_n[n0 + j] : g->bias_m[m]);
      }
  }
}

static void gemm_task(void *arg, int t, int worker) {
  const gemm_job_t *g = arg;
  int npanels = (g->N + 15) / 16;
  if (g->split_m) {
    /* Row ranges, multiples of the tile height. */
    int tiles = (g->M + g->k->mr - 1) / g->k->mr;
    int t0 = (int)((int64_t)tiles * t / g->ntasks);
    int t1 = (int)((int64_t)tiles * (t + 1) / g->ntasks);
    int m0 = t0 * g->k->mr, m1 = PX_MIN(g->M, t1 * g->k->mr);
    if (m0 < m1) gemm_range(g, worker, m0, m1, 0, npanels);
  } else {
    int units = (npanels + g->k->np - 1) / g->k->np;
    int u0 = (int)((int64_t)units * t / g->ntasks);
    int u1 = (int)((int64_t)units * (t + 1) / g->ntasks);
    int p0 = u0 * g->k->np, p1 = PX_MIN(npanels, u1 * g->k->np);
    if (p0 < p1) gemm_range(g, worker, 0, g->M, p0, p1);
  }
}

static void gemm_run(px_compute_t *c, gemm_job_t *g) {
  if (g->M <= 0 || g->N <= 0) return;
  g->c = c;
  g->k = px_kernels_for(c->simd);
  int npanels = (g->N + 15) / 16;
  int units = (npanels + g->k->np - 1) / g->k->np;
  int mtiles = (g->M + g->k->mr - 1) / g->k->mr;
  int th = c->threads;
  g->split_m = units < th && mtiles > units;
  g->ntasks = PX_MIN(th, g->split_m ? mtiles : units);
  /* Tiny problems are not worth waking the pool. */
  if ((double)g->M * g->N * (g->K + 1) < 32768.0) g->ntasks = 1;
  if (g->ntasks < 1) g->ntasks = 1;
  px_compute_parallel(c, g->ntasks, gemm_task, g);
}

/* ---- public entry points ---------------------------------------------------
 */

void px_matmul_f32(px_compute_t *c, float *C, int ldc, const float *A, int lda,
                   const float *W, int ldw, const float *bias, int M, int N,
                   int K) {
  gemm_job_t g = {0};
  g.M = M, g.N = N, g.K = K;
  g.A = A, g.sar = lda, g.sak = 1;
  g.bmode = B_NK, g.B = W, g.ldb = ldw;
  g.C = C, g.ldc = ldc;
  g.bias_n = bias;
  gemm_run(c, &g);
}

void px_f32_gemv_panels(const px_kernels_t *k, float *C, const float *A,
                        const float *Wp, int N, int K, int p0, int p1) {
  for (int p = p0; p < p1; p += k->np) {
    int n0 = p * 16;
    int ncols = PX_MIN(16 * PX_MIN(k->np, p1 - p), N - n0);
    k->tile(1, ncols, K, A, K, 1, Wp + (size_t)p * K * 16, (ptrdiff_t)K * 16,
            C + n0, N, 0);
  }
}

size_t px_pack_f32_size(int N, int K) {
  return (size_t)((N + 15) / 16) * 16 * (size_t)K;
}

void px_pack_f32(float *Wp, const float *W, int ldw, int N, int K) {
  int np = (N + 15) / 16;
  for (int p = 0; p < np; p++) {
    float *d = Wp + (size_t)p * K * 16;
    for (int j = 0; j < 16; j++) {
      int n = p * 16 + j;
      if (n >= N) {
        for (int k = 0; k < K; k++)
          d[(size_t)k * 16 + j] = 0.0f;
        continue;
      }
      const float *s = W + (size_t)n * ldw;
      for (int k = 0; k < K; k++)
        d[(size_t)k * 16 + j] = s[k];
    }
  }
}

void px_matmul_f32_packed(px_compute_t *c, float *C, int ldc, const float *A,
                          int lda, const float *Wp, const float *bias, int M,
                          int N, int K) {
  gemm_job_t g = {0};
  g.M = M, g.N = N, g.K = K;
  g.A = A, g.sar = lda, g.sak = 1;
  g.bmode = B_PACKED, g.B = Wp;
  g.C = C, g.ldc = ldc;
  g.bias_n = bias;
  gemm_run(c, &g);
}

void px_gemm_f32(px_compute_t *c, int trans_a, int trans_b, int M, int N, int K,
                 const float *A, int lda, const float *B, int ldb, int beta,
                 float *C, int ldc) {
  gemm_job_t g = {0};
  g.M = M, g.N = N, g.K = K;
  g.A = A;
  g.sar = trans_a ? 1 : lda;
  g.sak = trans_a ? lda : 1;
  g.bmode = trans_b ? B_NK : B_KN;
  g.B = B, g.ldb = ldb;
  g.C = C, g.ldc = ldc;
  g.beta = beta != 0;
  gemm_run(c, &g);
}

void px_conv2d_f32(px_compute_t *c, float *out, const float *in, const float *W,
                   const float *bias, const px_conv2d_shape_t *s) {
  int oh = (s->h + 2 * s->pad - s->kh) / s->stride + 1;
  int ow = (s->w + 2 * s->pad - s->kw) / s->stride + 1;
  if (oh <= 0 || ow <= 0) return;
  int K = s->c * s->kh * s->kw;
  for (int img = 0; img < s->n; img++) {
    gemm_job_t g = {0};
    g.M = s->oc, g.N = oh * ow, g.K = K;
    g.A = W, g.sar = K, g.sak = 1;
    g.bmode = B_CONV;
    g.conv.in = in + (size_t)img * s->c * s->h * s->w;
    g.conv.s = s;
    g.conv.oh = oh, g.conv.ow = ow;
    g.C = out + (size_t)img * s->oc * oh * ow;
    g.ldc = oh * ow;
    g.bias_m = bias;
    gemm_run(c, &g);
  }
}
