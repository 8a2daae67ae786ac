/*
 * bench_compute.c — matmul throughput of the deterministic kernels against
 * OpenBLAS measured in the same run (issue 4's benchmark goals).
 *
 *   build/bench/bench_compute [--quick] [--threads N]
 *
 * For each shape C[M][N] = A[M][K] . W[N][K]^T (a linear layer's layout):
 *   det f32     px_matmul_f32 (packs W on every call)
 *   det f32 pk  px_matmul_f32_packed (W pre-packed once, as a model does)
 *   int8        px_matmul_q8_packed, groups of 32 (W pre-packed once, A
 *               quantised on the fly; unpacked px_matmul_q8 gives the same
 *               bits and re-packs W per call)
 *   OpenBLAS    cblas_sgemm(RowMajor, NoTrans, Trans) — not deterministic
 *               across thread counts or CPUs, the speed reference.
 * All at the best SIMD level of this CPU, with the same number of threads
 * for Plexus and OpenBLAS (openblas_set_num_threads), default: all cores.
 * GFLOP/s counts 2*M*N*K per call; each figure is the best of several timed
 * batches.  Goals: det f32 >= 0.8x OpenBLAS, int8 >= 2x OpenBLAS f32 (the
 * better of the two f32 rows and the int8 row are compared).  For the GEMV
 * shape, which is memory-bound, the weight bytes read per second are also
 * divided by a plain read bandwidth measured in the same run.
 * Exit status: 0 when every figure was measured (a goal NOT MET is a
 * result, not a failure).
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifdef PX_HAVE_OPENBLAS
#include <cblas.h>
#endif

#include "plexus/compute.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

typedef struct {
  int M, N, K;
  const float *A, *W, *Wp;
  const int8_t *Wq;
  const float *Ws;
  const void *Qp;
  float *C;
  px_compute_t *c;
} job_t;

typedef void (*run_fn)(const job_t *j);

static void run_f32(const job_t *j) {
  px_matmul_f32(j->c, j->C, j->N, j->A, j->K, j->W, j->K, NULL, j->M, j->N,
                j->K);
}
static void run_f32p(const job_t *j) {
  px_matmul_f32_packed(j->c, j->C, j->N, j->A, j->K, j->Wp, NULL, j->M, j->N,
                       j->K);
}
static void run_q8(const job_t *j) {
  px_matmul_q8_packed(j->c, j->C, j->A, j->Qp, 32, j->M, j->N, j->K);
}
#ifdef PX_HAVE_OPENBLAS
static void run_blas(const job_t *j) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->M, j->N, j->K, 1.0f,
              j->A, j->K, j->W, j->K, 0.0f, j->C, j->N);
}
#endif

/* Best seconds per call over `batches` batches of >= min_s each. */
static double time_call(run_fn f, const job_t *j, double min_s, int batches) {
  f(j); /* warm-up */
  double best = 1e30;
  for (int b = 0; b < batches; b++) {
    int reps = 0;
    double t0 = now_s(), t;
    do {
      f(j);
      reps++;
      t = now_s() - t0;
    } while (t < min_s);
    if (t / reps < best) best = t / reps;
  }
  return best;
}

/* Plain read bandwidth: each of `threads` pthreads sums its share of a
 * buffer larger than the caches (the reference for the memory-bound GEMV,
 * run with the same thread count). */
typedef struct {
  const float *p;
  size_t n;
  float sink;
} rd_t;
static void *rd_main(void *arg) {
  rd_t *r = arg;
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
  for (size_t i = 0; i + 8 <= r->n; i += 8) {
    s0 += r->p[i], s1 += r->p[i + 1], s2 += r->p[i + 2], s3 += r->p[i + 3];
    s4 += r->p[i + 4], s5 += r->p[i + 5], s6 += r->p[i + 6], s7 += r->p[i + 7];
  }
  r->sink = s0 + s1 + s2 + s3 + s4 + s5 + s6 + s7;
  return NULL;
}
static double read_bw(const float *p, size_t n, int threads, double min_s) {
  double best = 0;
  for (int b = 0; b < 3; b++) {
    double t0 = now_s(), t;
    int reps = 0;
    do {
      pthread_t tid[64];
      rd_t r[64];
      for (int i = 0; i < threads; i++) {
        r[i].p = p + n / threads * i;
        r[i].n = n / threads;
        pthread_create(&tid[i], NULL, rd_main, &r[i]);
      }
      for (int i = 0; i < threads; i++)
        pthread_join(tid[i], NULL);
      reps++;
      t = now_s() - t0;
    } while (t < min_s);
    double bw = (double)n * sizeof(float) * reps / t;
    if (bw > best) best = bw;
  }
  return best;
}

int main(int argc, char **argv) {
  int quick = 0, threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--quick") == 0)
      quick = 1;
    else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
      threads = atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: bench_compute [--quick] [--threads N]\n");
      return 2;
    }
  }
  if (threads < 1) threads = 1;
  px_compute_t *c = NULL;
  px_compute_opts_t o = {.simd = -1, .threads = threads};
  if (px_compute_new(&o, &c) != 0) {
    fprintf(stderr, "bench: cannot create the compute context\n");
    return 1;
  }
#ifdef PX_HAVE_OPENBLAS
  openblas_set_num_threads(threads);
#endif
  double min_s = quick ? 0.02 : 0.25;
  int batches = quick ? 1 : 3;
  printf("compute matmul: SIMD %s, %d thread(s) for Plexus and OpenBLAS\n",
         px_simd_name(px_compute_simd(c)), threads);
  static const int shapes[][3] = {{256, 256, 256},
                                  {512, 512, 512},
                                  {1024, 1024, 1024},
                                  {64, 2048, 2048},
                                  {1, 4096, 4096}};
  size_t nshapes = quick ? 3 : sizeof shapes / sizeof shapes[0];
  int ok = 1;
  printf("%-18s %10s %10s %10s %10s %9s %9s  %s\n", "shape MxNxK", "det f32",
         "det f32pk", "int8", "OpenBLAS", "f32/BLAS", "i8/BLAS",
         "goals (f32 >= 0.8x, int8 >= 2x)");
  for (size_t s = 0; s < nshapes; s++) {
    int M = shapes[s][0], N = shapes[s][1], K = shapes[s][2];
    if (quick && s == 2)
      M = 1, N = 1024, K = 1024; /* a small GEMV for the smoke run */
    job_t j = {M, N, K, NULL, NULL, NULL, NULL, NULL, NULL, NULL, c};
    float *A = malloc((size_t)M * K * sizeof(float));
    float *W = malloc((size_t)N * K * sizeof(float));
    float *Wp = aligned_alloc(
        64, (px_pack_f32_size(N, K) * sizeof(float) + 63) / 64 * 64);
    int8_t *Wq = malloc((size_t)N * K);
    float *Ws = malloc((size_t)N * K / 32 * sizeof(float));
    float *C = malloc((size_t)M * N * sizeof(float));
    if (!A || !W || !Wp || !Wq || !Ws || !C) {
      fprintf(stderr, "bench: out of memory\n");
      return 1;
    }
    px_rng_t r;
    px_rng_seed(&r, 1);
    for (size_t i = 0; i < (size_t)M * K; i++)
      A[i] = (float)(px_rng_next(&r) >> 40) / 16777216.0f - 0.5f;
    for (size_t i = 0; i < (size_t)N * K; i++)
      W[i] = (float)(px_rng_next(&r) >> 40) / 16777216.0f - 0.5f;
    px_pack_f32(Wp, W, K, N, K);
    px_quantize_q8(W, N * K, 32, Wq, Ws);
    void *Qp = malloc(px_pack_q8_size(N, K, 32));
    if (!Qp) {
      fprintf(stderr, "bench: out of memory\n");
      return 1;
    }
    px_pack_q8(Qp, Wq, Ws, 32, N, K);
    j.Qp = Qp;
    j.A = A, j.W = W, j.Wp = Wp, j.Wq = Wq, j.Ws = Ws, j.C = C;
    double flop = 2.0 * M * N * K;
    double t_f32 = time_call(run_f32, &j, min_s, batches);
    double t_f32p = time_call(run_f32p, &j, min_s, batches);
    double t_q8 = time_call(run_q8, &j, min_s, batches);
    double t_blas = 0;
#ifdef PX_HAVE_OPENBLAS
    t_blas = time_call(run_blas, &j, min_s, batches);
#endif
    double g_f32 = flop / t_f32 * 1e-9, g_f32p = flop / t_f32p * 1e-9;
    double g_q8 = flop / t_q8 * 1e-9,
           g_blas = t_blas > 0 ? flop / t_blas * 1e-9 : 0;
    double best_f32 = g_f32 > g_f32p ? g_f32 : g_f32p;
    char name[32];
    snprintf(name, sizeof name, "%dx%dx%d", M, N, K);
    if (g_blas > 0) {
      double rf = best_f32 / g_blas, rq = g_q8 / g_blas;
      printf(
          "%-18s %10.1f %10.1f %10.1f %10.1f %8.2fx %8.2fx  f32 %s, int8 %s\n",
          name, g_f32, g_f32p, g_q8, g_blas, rf, rq,
          rf >= 0.8 ? "MET" : "NOT MET", rq >= 2.0 ? "MET" : "NOT MET");
    } else {
      printf("%-18s %10.1f %10.1f %10.1f %10s (OpenBLAS not linked)\n", name,
             g_f32, g_f32p, g_q8, "-");
    }
    if (M == 1) {
      /* GEMV: bytes of weights per second against plain read bandwidth. */
      double bw = read_bw(W, (size_t)N * K, threads, min_s);
      double f32_bps = (double)N * K * 4 / t_f32p;
      double q8_bps = ((double)N * K + (double)N * K / 32 * 4) / t_q8;
      printf("%-18s read bandwidth %.1f GB/s; weights read: f32pk %.1f GB/s "
             "(%.2f of it), int8 %.1f GB/s (%.2f)\n",
             "  GEMV", bw * 1e-9, f32_bps * 1e-9, f32_bps / bw, q8_bps * 1e-9,
             q8_bps / bw);
    }
    free(A), free(W), free(Wp), free(Wq), free(Ws), free(C), free(Qp);
  }
  printf("GFLOP/s (2*M*N*K per call), best of %d batch(es) of >= %.2f s\n",
         batches, min_s);
  px_compute_free(c);
  return ok ? 0 : 1;
}
