/*
 * bench_model.c — model-level figures for issue 4 (docs/models.md):
 *
 *   build/bench/bench_model [--quick] [--threads N] [--no-train] [--no-llama]
 *
 * 1. Fashion-MNIST training (when /usr/share/datasets/fashion-mnist is
 *    there): the default MLP (784-512-256-10) and CNN (conv 16, 32, 5x5,
 *    128 hidden) of `plexus train`, AdamW with per-epoch lr decay, on all
 *    60k training images, then test accuracy on the 10k test images.
 *    Prints samples/s per epoch, wall time, and the goals MLP >= 88.0%,
 *    CNN >= 91.0%, each within 10 minutes.  --quick trains one short epoch
 *    on a subset (the goals are then not judged).
 * 2. Token generation of a Llama-style decoder with random weights, ~100M
 *    parameters (dim 768, 12 layers, 12 heads / 4 KV heads, SwiGLU 2048,
 *    vocab 32000), f32 (llama2.c version 1) and int8 (version 2, groups of
 *    32), written to memory and loaded by the real loader: tokens/s, weight
 *    bytes read per second (px_llama_weight_bytes x tokens/s) and that over
 *    a plain read bandwidth measured in the same run with the same thread
 *    count (goal >= 0.8).  --quick uses a smaller model.
 * Exit status 0 when everything was measured: a goal NOT MET is a result.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "plexus/base.h"
#include "plexus/compute.h"
#include "plexus/crypto.h"
#include "plexus/model.h"
#include "plexus/model_io.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- Fashion-MNIST --------------------------------------------------------
 */

static void on_progress(void *ud, const px_train_progress_t *p) {
  (void)ud;
  if (!p->finished) return;
  printf("  epoch %2d  loss %.4f  train acc %6.2f%%  %7.0f samples/s\n",
         p->epoch + 1, p->loss, p->accuracy * 100.0, p->samples_per_s);
  fflush(stdout);
}

static int train_one(px_compute_t *c, const px_mnist_t *tr,
                     const px_mnist_t *te, px_net_arch_t arch, int epochs,
                     size_t n_train, float lr_decay, double goal, int quick) {
  const char *name = arch == PX_NET_CNN ? "CNN" : "MLP";
  px_net_config_t cfg;
  px_net_config_default(&cfg, arch);
  px_net_t *net;
  px_trainer_t *t;
  if (px_net_new(&cfg, &net)) return -1;
  px_net_init(net, 1);
  px_train_opts_t o;
  px_train_opts_default(&o, PX_OPT_ADAMW);
  o.lr_decay = lr_decay;
  o.seed = 1;
  if (px_trainer_new(net, &o, &t)) return -1;
  size_t np;
  px_net_params(net, &np);
  printf("%s: %zu parameters, AdamW lr %g decay %g/epoch, batch %d, %d "
         "epochs on %zu images\n",
         name, np, (double)o.lr, (double)lr_decay, o.batch, epochs, n_train);
  double t0 = now_s(), sps = 0;
  for (int e = 0; e < epochs; e++) {
    px_train_progress_t pr;
    memset(&pr, 0, sizeof pr);
    pr.epoch = e;
    if (px_trainer_epoch(t, c, tr->images.data, tr->labels.data, n_train,
                         on_progress, NULL, &pr))
      return -1;
    sps += pr.samples_per_s;
  }
  double secs = now_s() - t0;
  size_t ok;
  uint8_t h[32];
  char hex[65];
  if (px_net_evaluate(net, c, te->images.data, te->labels.data, te->n, 0, &ok,
                      h))
    return -1;
  px_hex_encode(h, 32, hex);
  double acc = (double)ok / (double)te->n * 100.0;
  printf("%s: training %.1f s, %.0f samples/s (mean of epochs); test "
         "accuracy %.2f%% (%zu/%zu); output_hash %.16s...\n",
         name, secs, sps / epochs, acc, ok, te->n, hex);
  if (quick)
    printf("  goal %s >= %.1f%% in <= 600 s: not judged (--quick)\n", name,
           goal);
  else
    printf("  goal %s >= %.1f%% in <= 600 s: %s\n", name, goal,
           acc >= goal && secs <= 600 ? "MET" : "NOT MET");
  px_trainer_free(t);
  px_net_free(net);
  return 0;
}

/* ---- read bandwidth -------------------------------------------------------
 */

typedef struct {
  const uint64_t *p;
  size_t n;
  uint64_t sink;
} rd_t;

static void *rd_main(void *arg) {
  rd_t *r = arg;
  uint64_t s[8] = {0};
  for (size_t i = 0; i + 8 <= r->n; i += 8)
    for (int j = 0; j < 8; j++)
      s[j] += r->p[i + (size_t)j];
  r->sink = s[0] ^ s[1] ^ s[2] ^ s[3] ^ s[4] ^ s[5] ^ s[6] ^ s[7];
  return NULL;
}

/* Bytes per second reading p[n] with `threads` threads; best of 3. */
static double read_bw(const uint64_t *p, size_t n, int threads) {
  double best = 0;
  for (int b = 0; b < 3; b++) {
    pthread_t tid[64];
    rd_t r[64];
    double t0 = now_s();
    for (int i = 0; i < threads; i++) {
      r[i].p = p + n / (size_t)threads * (size_t)i;
      r[i].n = n / (size_t)threads;
      pthread_create(&tid[i], NULL, rd_main, &r[i]);
    }
    for (int i = 0; i < threads; i++)
      pthread_join(tid[i], NULL);
    double bw =
        (double)(n / (size_t)threads * (size_t)threads) * 8.0 / (now_s() - t0);
    if (bw > best) best = bw;
  }
  return best;
}

/* ---- Llama ------------------------------------------------------------------
 */

typedef struct {
  int dim, hidden, layers, heads, kv_heads, vocab, seq;
} lcfg_t;

typedef struct {
  uint8_t *p;
  size_t n, cap;
} wbuf_t;

static void put(wbuf_t *b, const void *p, size_t n) {
  memcpy(b->p + b->n, p, n);
  b->n += n;
}

static void rand_f32(px_rng_t *r, float *x, size_t n, float scale, float base) {
  for (size_t i = 0; i < n; i++)
    x[i] = base + ((float)(px_rng_next(r) >> 40) * 0x1p-23f - 1.0f) * scale;
}

/* A llama2.c checkpoint (version 1 f32 or version 2 int8, shared
 * classifier) with random weights, in memory. */
static int make_ckpt(const lcfg_t *c, int version, int G, wbuf_t *b) {
  int kv = c->kv_heads * (c->dim / c->heads);
  size_t D = (size_t)c->dim, H = (size_t)c->hidden, L = (size_t)c->layers;
  size_t mats[7] = {D * D, kv * D, kv * D, D * D, H * D, D * H, H * D};
  size_t nf = (2 * L + 1) * D, nq = (size_t)c->vocab * D;
  for (int m = 0; m < 7; m++)
    nq += L * mats[m];
  b->cap = 256 + nf * 4 + (version == 2 ? nq + nq / (size_t)G * 4 : nq * 4);
  b->p = malloc(b->cap);
  b->n = 0;
  if (!b->p) return -1;
  int32_t hdr[9] = {0x616b3432, version,     c->dim,   c->hidden, c->layers,
                    c->heads,   c->kv_heads, c->vocab, c->seq};
  put(b, hdr, sizeof hdr);
  uint8_t shared = 1;
  put(b, &shared, 1);
  if (version == 2) put(b, &G, 4);
  memset(b->p + b->n, 0, 256 - b->n);
  b->n = 256;
  px_rng_t r;
  px_rng_seed(&r, 7);
  size_t chunk = H * D > (size_t)c->vocab * D ? H * D : (size_t)c->vocab * D;
  float *tmp = malloc(chunk * sizeof(float));
  int8_t *q = malloc(chunk);
  float *s = malloc(chunk / (size_t)G * sizeof(float) + 4);
  if (!tmp || !q || !s) return -1;
  rand_f32(&r, tmp, nf, 0.1f, 1.0f); /* the norms */
  put(b, tmp, nf * 4);
  /* token embedding, then each matrix kind over all layers */
  for (int m = -1; m < 7; m++) {
    size_t per = m < 0 ? (size_t)c->vocab * D : mats[m];
    for (size_t l = 0; l < (m < 0 ? 1 : L); l++) {
      rand_f32(&r, tmp, per, m < 0 ? 1.0f : 0.05f, 0.0f);
      if (version == 2) {
        px_quantize_q8(tmp, (int)per, G, q, s);
        put(b, q, per);
        put(b, s, per / (size_t)G * 4);
      } else {
        put(b, tmp, per * 4);
      }
    }
  }
  free(tmp);
  free(q);
  free(s);
  return b->n == b->cap ? 0 : -1;
}

static int bench_llama(px_compute_t *c, const lcfg_t *lc, int version,
                       int tokens, double bw) {
  wbuf_t b;
  if (make_ckpt(lc, version, 32, &b)) return -1;
  px_llama2c_t *ck;
  px_llama_t *m;
  if (px_llama2c_open_mem(b.p, b.n, &ck)) return -1;
  if (px_llama_new(ck, &m)) return -1;
  px_llama2c_free(ck);
  free(b.p);
  const px_llama2c_config_t *cf = px_llama_config(m);
  size_t params = (size_t)cf->vocab_size * cf->dim +
                  (size_t)cf->n_layers *
                      ((size_t)2 * cf->dim * cf->dim +
                       (size_t)2 * cf->n_kv_heads * cf->head_size * cf->dim +
                       (size_t)3 * cf->hidden_dim * cf->dim);
  int token = 1;
  float *lg;
  if (px_llama_forward(m, c, token, 0, &lg, NULL)) return -1; /* warm-up */
  double t0 = now_s();
  for (int pos = 0; pos < tokens; pos++) {
    if (px_llama_forward(m, c, token, pos, &lg, NULL)) return -1;
    token = px_argmax_f32(lg, cf->vocab_size);
  }
  double secs = now_s() - t0, tps = tokens / secs;
  double wbytes = (double)px_llama_weight_bytes(m);
  double ratio = wbytes * tps / bw;
  printf("llama %s: %.1fM parameters, %.0f MB of weights per token: %.2f "
         "tokens/s, weights read %.2f GB/s = %.2f x read bandwidth  "
         "goal >= 0.8: %s\n",
         version == 2 ? "int8" : "f32 ", (double)params / 1e6, wbytes / 1e6,
         tps, wbytes * tps / 1e9, ratio, ratio >= 0.8 ? "MET" : "NOT MET");
  fflush(stdout);
  px_llama_free(m);
  return 0;
}

int main(int argc, char **argv) {
  int quick = 0, threads = 0, train = 1, llama = 1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--quick"))
      quick = 1;
    else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
      threads = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--no-train"))
      train = 0;
    else if (!strcmp(argv[i], "--no-llama"))
      llama = 0;
    else {
      fprintf(stderr, "usage: bench_model [--quick] [--threads N] [--no-train] "
                      "[--no-llama]\n");
      return 2;
    }
  }
  if (px_crypto_init()) return 1;
  px_compute_opts_t co = {-1, threads};
  px_compute_t *c;
  if (px_compute_new(&co, &c)) {
    fprintf(stderr, "bench_model: cannot create the compute context\n");
    return 1;
  }
  int nth = px_compute_threads(c);
  printf("bench_model: %s, %d threads%s\n", px_simd_name(px_compute_simd(c)),
         nth, quick ? " (quick)" : "");
  int rc = 0;
  if (train) {
    px_mnist_t tr, te;
    if (px_mnist_load(PX_FASHION_MNIST_DIR, "train", &tr) ||
        px_mnist_load(PX_FASHION_MNIST_DIR, "t10k", &te)) {
      printf("Fashion-MNIST: not found at %s, training SKIPPED\n",
             PX_FASHION_MNIST_DIR);
    } else {
      if (train_one(c, &tr, &te, PX_NET_MLP, quick ? 1 : 15,
                    quick ? 10000 : tr.n, 0.85f, 88.0, quick) ||
          train_one(c, &tr, &te, PX_NET_CNN, quick ? 1 : 12,
                    quick ? 5000 : tr.n, 0.85f, 91.0, quick))
        rc = 1;
      px_mnist_release(&tr);
      px_mnist_release(&te);
    }
  }
  if (llama && !rc) {
    size_t n = (size_t)(quick ? 256 : 1024) << 20 >> 3;
    uint64_t *buf = malloc(n * 8);
    if (!buf) return 1;
    for (size_t i = 0; i < n; i++)
      buf[i] = i;
    double bw = read_bw(buf, n, nth);
    free(buf);
    printf("plain read bandwidth (%d threads): %.2f GB/s\n", nth, bw / 1e9);
    lcfg_t full = {768, 2048, 12, 12, 4, 32000, 256};
    lcfg_t small = {512, 1376, 4, 8, 4, 8000, 128};
    const lcfg_t *lc = quick ? &small : &full;
    if (bench_llama(c, lc, 1, quick ? 16 : 48, bw) ||
        bench_llama(c, lc, 2, quick ? 16 : 48, bw))
      rc = 1;
  }
  px_compute_free(c);
  if (rc) fprintf(stderr, "bench_model: a measurement failed\n");
  return rc;
}
