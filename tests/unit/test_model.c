/*
 * test_model.c — MLP and CNN classifiers (plexus/model.h): forward pass
 * against a double-precision reference, gradients against finite
 * differences, bit-exact training across SIMD levels and thread counts,
 * committed golden hashes, safetensors save/load, and a quick accuracy run
 * on a Fashion-MNIST subset (skipped when the dataset is absent).
 *
 * Finite differences are taken on the double-precision reference loss
 * (central, h = 1e-5 on the f32 parameter copied to double), so their own
 * error is ~h^2 * f''' ~ 1e-7; the analytic f32 gradients must agree to
 * |g - fd| <= 2e-4 + 2e-3 * |fd| (f32 rounding through a few layers of
 * sums of <= 200 terms stays well inside that).  Random inputs and weights
 * make a ReLU input or a max-pool tie within h of a kink improbable; the
 * seeds are fixed, so the test is reproducible.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plexus/base.h"
#include "plexus/compute.h"
#include "plexus/crypto.h"
#include "plexus/model.h"
#include "plexus/model_io.h"

#define NTH 3
static const int k_threads[NTH] = {1, 2, 4};
static px_compute_t *g_ctx[3][NTH];
static int g_levels;

static int setup(void **state) {
  (void)state;
  if (px_crypto_init() != 0) return -1;
  g_levels = (int)px_cpu_best_simd() + 1;
  for (int l = 0; l < g_levels; l++)
    for (int t = 0; t < NTH; t++) {
      px_compute_opts_t o = {.simd = l, .threads = k_threads[t]};
      if (px_compute_new(&o, &g_ctx[l][t]) != 0) return -1;
    }
  return 0;
}

static int teardown(void **state) {
  (void)state;
  for (int l = 0; l < 3; l++)
    for (int t = 0; t < NTH; t++)
      px_compute_free(g_ctx[l][t]);
  return 0;
}

static px_compute_t *best_ctx(void) { return g_ctx[g_levels - 1][1]; }

static void hex_of(const uint8_t h[32], char hex[65]) {
  px_hex_encode(h, 32, hex);
}

static void golden(const char *name, const uint8_t h[32], const char *want) {
  char hex[65];
  hex_of(h, hex);
  if (getenv("PX_GOLDEN_PRINT") || strcmp(hex, want) != 0)
    printf("GOLDEN %s %s\n", name, hex);
  assert_string_equal(hex, want);
}

static void small_mlp(px_net_config_t *c) {
  memset(c, 0, sizeof *c);
  c->arch = PX_NET_MLP;
  c->in_c = 1, c->in_h = 4, c->in_w = 5;
  c->n_classes = 3;
  c->hidden[0] = 7, c->hidden[1] = 6, c->n_hidden = 2;
}

static void small_cnn(px_net_config_t *c) {
  memset(c, 0, sizeof *c);
  c->arch = PX_NET_CNN;
  c->in_c = 2, c->in_h = 8, c->in_w = 7; /* odd width: pool drops a column */
  c->n_classes = 4;
  c->conv[0] = 3, c->conv[1] = 4, c->n_conv = 2;
  c->kernel = 3;
  c->hidden[0] = 5, c->n_hidden = 1;
}

static void rand_fill(px_rng_t *r, float *x, size_t n, float scale) {
  for (size_t i = 0; i < n; i++)
    x[i] = ((float)(px_rng_next(r) >> 40) * 0x1p-23f - 1.0f) * scale;
}

/* ---- double-precision reference forward and loss ------------------------ */

static double ref_loss(px_net_t *net, const double *p, const float *x, int n,
                       const uint8_t *y, double *logits_out) {
  size_t np;
  float *fp = px_net_params(net, &np);
  int L = px_net_layer_count(net);
  size_t in0 = px_net_input_size(net);
  size_t maxs = in0;
  for (int i = 0; i < L; i++)
    if (px_net_layer(net, i)->out_size > maxs)
      maxs = px_net_layer(net, i)->out_size;
  double *a = calloc(maxs, sizeof(double)), *b = calloc(maxs, sizeof(double));
  assert_non_null(a);
  assert_non_null(b);
  double total = 0;
  int nc = px_net_config(net)->n_classes;
  for (int s = 0; s < n; s++) {
    for (size_t i = 0; i < in0; i++)
      a[i] = x[(size_t)s * in0 + i];
    for (int li = 0; li < L; li++) {
      const px_layer_t *l = px_net_layer(net, li);
      const double *w = l->w ? p + (l->w - fp) : NULL;
      const double *bias = l->b ? p + (l->b - fp) : NULL;
      switch (l->kind) {
      case PX_LAYER_LINEAR:
        for (int o = 0; o < l->out_c; o++) {
          double acc = bias[o];
          for (size_t k = 0; k < l->in_size; k++)
            acc += w[(size_t)o * l->in_size + k] * a[k];
          b[o] = acc;
        }
        break;
      case PX_LAYER_CONV:
        for (int o = 0; o < l->out_c; o++)
          for (int yy = 0; yy < l->out_h; yy++)
            for (int xx = 0; xx < l->out_w; xx++) {
              double acc = bias[o];
              for (int ci = 0; ci < l->in_c; ci++)
                for (int ky = 0; ky < l->k; ky++)
                  for (int kx = 0; kx < l->k; kx++) {
                    int iy = yy + ky - l->pad, ix = xx + kx - l->pad;
                    if (iy < 0 || iy >= l->in_h || ix < 0 || ix >= l->in_w)
                      continue;
                    acc += w[((o * l->in_c + ci) * l->k + ky) * l->k + kx] *
                           a[(ci * l->in_h + iy) * l->in_w + ix];
                  }
              b[(o * l->out_h + yy) * l->out_w + xx] = acc;
            }
        break;
      case PX_LAYER_RELU:
        for (size_t i = 0; i < l->out_size; i++)
          b[i] = a[i] > 0 ? a[i] : 0;
        break;
      case PX_LAYER_MAXPOOL:
        for (int ch = 0; ch < l->out_c; ch++)
          for (int yy = 0; yy < l->out_h; yy++)
            for (int xx = 0; xx < l->out_w; xx++) {
              double m = -INFINITY;
              for (int ky = 0; ky < 2; ky++)
                for (int kx = 0; kx < 2; kx++) {
                  double v =
                      a[(ch * l->in_h + 2 * yy + ky) * l->in_w + 2 * xx + kx];
                  if (v > m) m = v;
                }
              b[(ch * l->out_h + yy) * l->out_w + xx] = m;
            }
        break;
      }
      double *t = a;
      a = b;
      b = t;
    }
    if (logits_out)
      for (int j = 0; j < nc; j++)
        logits_out[(size_t)s * nc + j] = a[j];
    double m = a[0];
    for (int j = 1; j < nc; j++)
      if (a[j] > m) m = a[j];
    double z = 0;
    for (int j = 0; j < nc; j++)
      z += exp(a[j] - m);
    total += -(a[y[s]] - m - log(z));
  }
  free(a);
  free(b);
  return total / n;
}

static void check_grad(px_net_config_t *cfg, uint64_t seed) {
  px_net_t *net;
  assert_int_equal(px_net_new(cfg, &net), 0);
  px_net_init(net, seed);
  size_t np;
  float *fp = px_net_params(net, &np);
  px_rng_t r;
  px_rng_seed(&r, seed + 1);
  /* non-zero biases so their gradients are exercised at a generic point */
  for (int i = 0; i < px_net_layer_count(net); i++) {
    const px_layer_t *l = px_net_layer(net, i);
    if (l->b) rand_fill(&r, l->b, l->nb, 0.1f);
  }
  enum { N = 5 };
  size_t in = px_net_input_size(net);
  float *x = malloc(N * in * sizeof(float));
  uint8_t y[N];
  rand_fill(&r, x, N * in, 1.0f);
  for (int i = 0; i < N; i++)
    y[i] = (uint8_t)px_rng_below(&r, (uint64_t)cfg->n_classes);
  px_train_opts_t o;
  px_train_opts_default(&o, PX_OPT_SGD);
  px_trainer_t *t;
  assert_int_equal(px_trainer_new(net, &o, &t), 0);
  float loss;
  assert_int_equal(px_trainer_grad(t, best_ctx(), x, y, N, &loss, NULL), 0);
  const float *g = px_trainer_grads(t);
  double *p = malloc(np * sizeof(double));
  for (size_t i = 0; i < np; i++)
    p[i] = fp[i];
  /* forward vs the double reference */
  int nc = cfg->n_classes;
  double *lref = malloc((size_t)N * nc * sizeof(double));
  float *lg = malloc((size_t)N * nc * sizeof(float));
  double l0 = ref_loss(net, p, x, N, y, lref);
  assert_int_equal(px_net_forward(net, best_ctx(), x, N, lg, NULL), 0);
  for (int i = 0; i < N * nc; i++)
    assert_true(fabs(lg[i] - lref[i]) <= 1e-5 + 1e-5 * fabs(lref[i]));
  assert_true(fabs(loss - l0) <= 1e-5 + 1e-5 * l0);
  const double h = 1e-5;
  double worst = 0;
  for (size_t i = 0; i < np; i++) {
    double keep = p[i];
    p[i] = keep + h;
    double lp = ref_loss(net, p, x, N, y, NULL);
    p[i] = keep - h;
    double lm = ref_loss(net, p, x, N, y, NULL);
    p[i] = keep;
    double fd = (lp - lm) / (2 * h);
    double err = fabs(g[i] - fd), tol = 2e-4 + 2e-3 * fabs(fd);
    if (err / tol > worst) worst = err / tol;
    if (err > tol)
      fail_msg("param %zu: analytic %.8g, finite difference %.8g", i,
               (double)g[i], fd);
  }
  printf("  %s: %zu gradients, worst error / tolerance %.2e\n",
         cfg->arch == PX_NET_CNN ? "cnn" : "mlp", np, worst);
  free(p);
  free(lref);
  free(lg);
  free(x);
  px_trainer_free(t);
  px_net_free(net);
}

static void test_grad_mlp(void **state) {
  (void)state;
  px_net_config_t c;
  small_mlp(&c);
  check_grad(&c, 11);
}

static void test_grad_cnn(void **state) {
  (void)state;
  px_net_config_t c;
  small_cnn(&c);
  check_grad(&c, 12);
  c.n_conv = 1, c.kernel = 5, c.in_c = 1; /* 5x5, one block, 1 channel */
  check_grad(&c, 13);
}

/* ---- determinism ----------------------------------------------------------
 */

typedef struct {
  uint8_t *img, *lab;
  size_t n;
} synth_t;

/* Learnable synthetic data: class k brightens a class-specific patch. */
static void synth(synth_t *d, const px_net_config_t *c, size_t n,
                  uint64_t seed) {
  size_t in = (size_t)c->in_c * c->in_h * c->in_w;
  d->n = n;
  d->img = malloc(n * in);
  d->lab = malloc(n);
  px_rng_t r;
  px_rng_seed(&r, seed);
  for (size_t s = 0; s < n; s++) {
    int k = (int)px_rng_below(&r, (uint64_t)c->n_classes);
    d->lab[s] = (uint8_t)k;
    for (size_t i = 0; i < in; i++) {
      int v = (int)px_rng_below(&r, 128);
      if ((i * 7 + (size_t)k * 13) % 23 < 5) v += 100;
      d->img[s * in + i] = (uint8_t)v;
    }
  }
}

/* Train 2 epochs; return the weight hash. */
static void train_hash(const px_net_config_t *cfg, px_optimizer_t opt,
                       const synth_t *d, px_compute_t *c, uint8_t h[32],
                       double *acc) {
  px_net_t *net;
  assert_int_equal(px_net_new(cfg, &net), 0);
  px_net_init(net, 2024);
  px_train_opts_t o;
  px_train_opts_default(&o, opt);
  o.batch = 16;
  o.seed = 77;
  o.lr_decay = 0.5f;
  px_trainer_t *t;
  assert_int_equal(px_trainer_new(net, &o, &t), 0);
  px_train_progress_t pr;
  for (int e = 0; e < 2; e++) {
    memset(&pr, 0, sizeof pr);
    pr.epoch = e;
    assert_int_equal(
        px_trainer_epoch(t, c, d->img, d->lab, d->n, NULL, NULL, &pr), 0);
  }
  if (acc) *acc = pr.accuracy;
  px_net_hash(net, h);
  px_trainer_free(t);
  px_net_free(net);
}

static void det_case(const px_net_config_t *cfg, px_optimizer_t opt, size_t n,
                     const char *name, const char *want) {
  synth_t d;
  synth(&d, cfg, n, 5);
  uint8_t h0[32], h[32];
  double acc;
  train_hash(cfg, opt, &d, g_ctx[0][0], h0, &acc);
  golden(name, h0, want);
  /* same seed, same context: identical */
  train_hash(cfg, opt, &d, g_ctx[0][0], h, NULL);
  assert_memory_equal(h, h0, 32);
  for (int l = 0; l < g_levels; l++)
    for (int t = 0; t < NTH; t++) {
      if (l == 0 && t == 0) continue;
      train_hash(cfg, opt, &d, g_ctx[l][t], h, NULL);
      if (memcmp(h, h0, 32))
        fail_msg("%s: weights differ at %s x%d threads", name,
                 px_simd_name((px_simd_t)l), k_threads[t]);
    }
  printf("  %s: identical weights at %d SIMD levels x 3 thread counts; "
         "train acc %.2f\n",
         name, g_levels, acc);
  free(d.img);
  free(d.lab);
}

static void test_determinism_mlp(void **state) {
  (void)state;
  px_net_config_t c;
  memset(&c, 0, sizeof c);
  c.arch = PX_NET_MLP;
  c.in_c = 1, c.in_h = 12, c.in_w = 12;
  c.n_classes = 10;
  c.hidden[0] = 40, c.hidden[1] = 24, c.n_hidden = 2;
  det_case(&c, PX_OPT_ADAMW, 200, "mlp_adamw_weights",
           "76272574d6d4aede8ab452a3574d3803b3047d4ffcf17c55fb8ed7a68cd3e9d9");
  det_case(&c, PX_OPT_SGD, 200, "mlp_sgd_weights",
           "3b5795b29b062d87ec75776d1037e26048589536b9bd68de5aa0554454637ff5");
}

static void test_determinism_cnn(void **state) {
  (void)state;
  px_net_config_t c;
  memset(&c, 0, sizeof c);
  c.arch = PX_NET_CNN;
  c.in_c = 1, c.in_h = 12, c.in_w = 12;
  c.n_classes = 10;
  c.conv[0] = 4, c.conv[1] = 8, c.n_conv = 2;
  c.kernel = 3;
  c.hidden[0] = 16, c.n_hidden = 1;
  det_case(&c, PX_OPT_ADAMW, 96, "cnn_adamw_weights",
           "8805613b9d5ac5e1985ba3dafb406911bd49cdccdbe3dc7413293956962ff3d1");
}

/* Forward (inference) of default-size models: logits and trace root at
 * every level and thread count, golden. */
static void fwd_case(px_net_arch_t arch, const char *name, const char *want,
                     const char *want_root) {
  px_net_config_t cfg;
  px_net_config_default(&cfg, arch);
  px_net_t *net;
  assert_int_equal(px_net_new(&cfg, &net), 0);
  px_net_init(net, 7);
  enum { N = 6 };
  size_t in = px_net_input_size(net);
  float *x = malloc(N * in * sizeof(float)), lg[N * 10], lg0[N * 10];
  px_rng_t r;
  px_rng_seed(&r, 8);
  for (size_t i = 0; i < N * in; i++)
    x[i] = (float)px_rng_below(&r, 256) / 255.0f;
  uint8_t root0[32], root[32], h[32];
  for (int l = 0; l < g_levels; l++)
    for (int t = 0; t < NTH; t++) {
      px_trace_t tr;
      px_trace_init(&tr, 1);
      assert_int_equal(px_net_forward(net, g_ctx[l][t], x, N, lg, &tr), 0);
      assert_int_equal(tr.n, (size_t)px_net_layer_count(net));
      assert_int_equal(px_trace_root(&tr, root), 0);
      px_trace_release(&tr);
      if (l == 0 && t == 0) {
        memcpy(lg0, lg, sizeof lg);
        memcpy(root0, root, 32);
      } else {
        assert_memory_equal(lg, lg0, sizeof lg);
        assert_memory_equal(root, root0, 32);
      }
    }
  px_hash(h, lg0, sizeof lg0);
  golden(name, h, want);
  char rn[64];
  snprintf(rn, sizeof rn, "%s_trace_root", name);
  golden(rn, root0, want_root);
  free(x);
  px_net_free(net);
}

static void test_forward_golden(void **state) {
  (void)state;
  fwd_case(PX_NET_MLP, "mlp_forward",
           "2c38800c2d8562247c531773a41f5d66583cff46c0f4d3e488944adb1bc6da4b",
           "9ead1c0cfc3ebf51ecee62b7802ca5d736a4d2adea9df68d10514e7664b7bb9d");
  fwd_case(PX_NET_CNN, "cnn_forward",
           "9a832475621d74308175dfad65b8291fdeec610f9f0dc95f03575056a72411b8",
           "ada48c6f50059d465a266cd222564ead2e380f0b17501175cde0d445b35b1347");
}

/* ---- files ------------------------------------------------------------------
 */

static void roundtrip(const px_net_config_t *cfg) {
  px_net_t *net, *back;
  assert_int_equal(px_net_new(cfg, &net), 0);
  px_net_init(net, 3);
  char path[] = "/tmp/px_test_model_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  assert_int_equal(px_net_save(net, path), 0);
  assert_int_equal(px_net_load(path, &back), 0);
  size_t n1, n2;
  float *p1 = px_net_params(net, &n1), *p2 = px_net_params(back, &n2);
  assert_int_equal(n1, n2);
  assert_memory_equal(p1, p2, n1 * sizeof(float));
  const px_net_config_t *c2 = px_net_config(back);
  assert_int_equal(c2->arch, cfg->arch);
  assert_int_equal(c2->n_hidden, cfg->n_hidden);
  assert_int_equal(c2->n_conv, cfg->n_conv);
  assert_int_equal(c2->kernel, cfg->arch == PX_NET_CNN ? cfg->kernel : 0);
  /* the file is plain safetensors: names, shapes, metadata */
  px_safetensors_t *st;
  assert_int_equal(px_st_open(path, NULL, &st), 0);
  const px_st_tensor_t *w0 = px_st_find(st, "layers.0.weight");
  assert_non_null(w0);
  assert_int_equal(w0->ndim, cfg->arch == PX_NET_CNN ? 4 : 2);
  assert_string_equal(px_st_metadata_get(st, "format"), "pt");
  assert_non_null(px_st_metadata_get(st, "plexus.config"));
  /* a file without the config is refused */
  px_st_entry_t e = {"layers.0.weight", PX_DTYPE_F32, 1, {1}, p1};
  px_st_free(st);
  assert_int_equal(px_st_write_file(path, &e, 1, NULL, 0), 0);
  px_net_t *bad;
  assert_int_equal(px_net_load(path, &bad), PX_EDECODE);
  /* bad config JSON */
  const char *meta[] = {"plexus.config", "{\"architecture\":\"rnn\"}"};
  assert_int_equal(px_st_write_file(path, &e, 1, meta, 1), 0);
  assert_int_equal(px_net_load(path, &bad), PX_EDECODE);
  /* a missing file */
  unlink(path);
  assert_int_equal(px_net_load(path, &bad), PX_ENOENT);
  px_net_free(back);
  px_net_free(net);
}

static void test_save_load(void **state) {
  (void)state;
  px_net_config_t c;
  px_net_config_default(&c, PX_NET_MLP);
  roundtrip(&c);
  px_net_config_default(&c, PX_NET_CNN);
  roundtrip(&c);
  small_cnn(&c);
  roundtrip(&c);
}

static void test_bad_config(void **state) {
  (void)state;
  px_net_config_t c;
  px_net_t *n;
  small_cnn(&c);
  c.kernel = 4;
  assert_int_equal(px_net_new(&c, &n), PX_EINVAL);
  small_cnn(&c);
  c.n_conv = 4; /* 8x7 cannot be pooled 4 times */
  assert_int_equal(px_net_new(&c, &n), PX_EINVAL);
  small_mlp(&c);
  c.n_classes = 0;
  assert_int_equal(px_net_new(&c, &n), PX_EINVAL);
  small_mlp(&c);
  c.hidden[0] = 1 << 16, c.hidden[1] = 1 << 16;
  assert_int_equal(px_net_new(&c, &n), PX_ETOOBIG);
  px_train_opts_t o;
  px_train_opts_default(&o, PX_OPT_ADAMW);
  small_mlp(&c);
  assert_int_equal(px_net_new(&c, &n), 0);
  px_trainer_t *t;
  o.lr = 0;
  assert_int_equal(px_trainer_new(n, &o, &t), PX_EINVAL);
  o.lr = 0.1f, o.batch = 0;
  assert_int_equal(px_trainer_new(n, &o, &t), PX_EINVAL);
  o.batch = 4;
  assert_int_equal(px_trainer_new(n, &o, &t), 0);
  float x[2 * 20] = {0};
  uint8_t y[2] = {0, 3}; /* 3 classes: label 3 is out of range */
  assert_int_equal(px_trainer_grad(t, best_ctx(), x, y, 2, NULL, NULL),
                   PX_EINVAL);
  px_trainer_free(t);
  px_net_free(n);
  const char *bad[] = {
      "{}",
      "{\"architecture\":\"mlp\",\"input\":[1,28],\"classes\":10}",
      "{\"architecture\":\"mlp\",\"input\":[1,28,28],\"classes\":0}",
      "{\"architecture\":\"cnn\",\"input\":[1,28,28],\"classes\":10}",
      "{\"architecture\":\"mlp\",\"input\":[1,28,28],\"classes\":10,"
      "\"activation\":\"tanh\"}",
      "[1]",
      "{\"architecture\":\"mlp\",\"input\":[1,28,28],\"classes\":10,"
      "\"hidden\":[-1]}",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_int_equal(px_net_config_parse(bad[i], strlen(bad[i]), &c),
                     PX_EDECODE);
  const char *good = "{\"architecture\":\"cnn\",\"input\":[1,28,28],"
                     "\"classes\":10,\"conv\":[6,16],\"kernel\":5,"
                     "\"hidden\":[120,84]}";
  assert_int_equal(px_net_config_parse(good, strlen(good), &c), 0);
  assert_int_equal(c.n_conv, 2);
  assert_int_equal(c.hidden[1], 84);
}

/* ---- accuracy on a Fashion-MNIST subset ------------------------------------
 */

static void test_fashion_subset(void **state) {
  (void)state;
  px_mnist_t tr, te;
  if (px_mnist_load(PX_FASHION_MNIST_DIR, "train", &tr) != 0) {
    skip();
    return;
  }
  assert_int_equal(px_mnist_load(PX_FASHION_MNIST_DIR, "t10k", &te), 0);
  px_net_config_t cfg;
  px_net_config_default(&cfg, PX_NET_MLP);
  cfg.hidden[0] = 128, cfg.n_hidden = 1;
  px_net_t *net;
  assert_int_equal(px_net_new(&cfg, &net), 0);
  px_net_init(net, 1);
  px_train_opts_t o;
  px_train_opts_default(&o, PX_OPT_ADAMW);
  o.lr = 0.002f;
  px_trainer_t *t;
  assert_int_equal(px_trainer_new(net, &o, &t), 0);
  uint64_t t0 = px_time_mono_ms();
  px_train_progress_t pr;
  for (int e = 0; e < 2; e++) {
    memset(&pr, 0, sizeof pr);
    pr.epoch = e;
    assert_int_equal(px_trainer_epoch(t, best_ctx(), tr.images.data,
                                      tr.labels.data, 10000, NULL, NULL, &pr),
                     0);
  }
  size_t ok;
  assert_int_equal(px_net_evaluate(net, best_ctx(), te.images.data,
                                   te.labels.data, 2000, 0, &ok, NULL),
                   0);
  double secs = (double)(px_time_mono_ms() - t0) / 1000.0;
  double acc = (double)ok / 2000.0;
  printf("  MLP 784-128-10, 2 epochs on 10k: test accuracy %.2f%% on 2k, "
         "%.1f s (%.0f samples/s)\n",
         acc * 100, secs, pr.samples_per_s);
  assert_true(acc >= 0.80);
  px_trainer_free(t);
  px_net_free(net);
  px_mnist_release(&tr);
  px_mnist_release(&te);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_grad_mlp),
      cmocka_unit_test(test_grad_cnn),
      cmocka_unit_test(test_forward_golden),
      cmocka_unit_test(test_determinism_mlp),
      cmocka_unit_test(test_determinism_cnn),
      cmocka_unit_test(test_save_load),
      cmocka_unit_test(test_bad_config),
      cmocka_unit_test(test_fashion_subset),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
