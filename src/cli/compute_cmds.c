/*
 * compute_cmds.c — the model commands of `plexus` (docs/models.md):
 *
 *   plexus train    --model mlp|cnn --data fashion-mnist --epochs N
 *                   --out model.safetensors [--batch B --lr X
 *                   --optimizer sgd|adamw --seed S --limit N --lr-decay D]
 *   plexus eval     --model model.safetensors --data fashion-mnist
 *                   [--limit N] [--predictions FILE] [--json]
 *   plexus infer    --model model.safetensors --input FILE [--trace] [--json]
 *   plexus generate --model stories.bin --tokenizer tokenizer.bin
 *                   --prompt TEXT [--steps N --temperature T --top-p P
 *                   --seed S]
 *
 * All work goes through plexus/model.h; this file parses options, loads
 * files, prints.  Every bad input is one line on stderr naming the option
 * or file and what is wrong (exit 2 for usage, 1 for a failure).  The
 * kernels' SIMD level and threads come from PLEXUS_SIMD / PLEXUS_THREADS.
 * No reductions happen here: accuracies are integer counts and the output
 * hash is computed by px_net_evaluate in sample order.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plexus/compute.h"
#include "plexus/crypto.h"
#include "plexus/model.h"
#include "plexus/model_io.h"
#include "cli/cli.h"
#include "base/px_internal.h"

static const char *const k_fashion_names[10] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

/* ---- option helpers -------------------------------------------------------
 */

static const char *opt_str(const px_cli_args_t *a, const char *key,
                           int required) {
  const char *v = px_config_get(&a->opts, key);
  if (v && (!*v || !strcmp(v, "true"))) {
    fprintf(stderr, "plexus: --%s needs a value\n", key);
    return NULL;
  }
  if (!v && required) fprintf(stderr, "plexus: --%s is required\n", key);
  return v;
}

/* 0 ok (default kept when absent), else usage error printed. */
static int opt_u64(const px_cli_args_t *a, const char *key, uint64_t lo,
                   uint64_t hi, uint64_t *out) {
  const char *v = px_config_get(&a->opts, key);
  if (!v) return 0;
  uint64_t x;
  if (px_parse_u64(v, &x) || x < lo || x > hi) {
    fprintf(stderr,
            "plexus: --%s must be an integer in [%llu, %llu], got '%s'\n", key,
            (unsigned long long)lo, (unsigned long long)hi, v);
    return -1;
  }
  *out = x;
  return 0;
}

static int opt_float(const px_cli_args_t *a, const char *key, double lo,
                     double hi, float *out) {
  const char *v = px_config_get(&a->opts, key);
  if (!v) return 0;
  char *end;
  errno = 0;
  double x = strtod(v, &end);
  if (!*v || *end || errno || !isfinite(x) || x < lo || x > hi) {
    fprintf(stderr, "plexus: --%s must be a number in [%g, %g], got '%s'\n",
            key, lo, hi, v);
    return -1;
  }
  *out = (float)x;
  return 0;
}

static int opt_flag(const px_cli_args_t *a, const char *key) {
  int b = 0;
  if (px_config_get_bool(&a->opts, key, 0, &b)) {
    fprintf(stderr, "plexus: --%s takes no value\n", key);
    return -1;
  }
  return b;
}

static int make_compute(px_compute_t **c) {
  px_compute_opts_t o = {-1, 0};
  int rc = px_compute_new(&o, c);
  if (rc)
    fprintf(stderr,
            "plexus: cannot set up the compute runtime: %s (check "
            "PLEXUS_SIMD / PLEXUS_THREADS)\n",
            px_strerror(rc));
  return rc;
}

static const char *data_dir(const char *data) {
  return !strcmp(data, "fashion-mnist") ? PX_FASHION_MNIST_DIR : data;
}

static int load_mnist(const char *data, const char *split, px_mnist_t *m) {
  const char *dir = data_dir(data);
  int rc = px_mnist_load(dir, split, m);
  if (rc)
    fprintf(stderr,
            "plexus: cannot load the %s split of %s (%s): %s (expected "
            "%s-images-idx3-ubyte[.gz] and %s-labels-idx1-ubyte[.gz]; "
            "install dataset-fashion-mnist)\n",
            split, data, dir, px_strerror(rc), split, split);
  return rc;
}

static int load_net(const char *path, px_net_t **net) {
  int rc = px_net_load(path, net);
  if (rc)
    fprintf(stderr,
            "plexus: cannot load model %s: %s (expected a safetensors file "
            "written by `plexus train`)\n",
            path, px_strerror(rc));
  return rc;
}

static int check_shape(const px_net_t *net, const px_mnist_t *m,
                       const char *path) {
  const px_net_config_t *cfg = px_net_config(net);
  if ((size_t)cfg->in_c * cfg->in_h * cfg->in_w != (size_t)m->rows * m->cols ||
      cfg->n_classes < 10) {
    fprintf(stderr,
            "plexus: model %s takes %dx%dx%d inputs and %d classes, the "
            "data has %dx%d images and 10 classes\n",
            path, cfg->in_c, cfg->in_h, cfg->in_w, cfg->n_classes, m->rows,
            m->cols);
    return -1;
  }
  return 0;
}

/* ---- progress -------------------------------------------------------------
 */

typedef struct {
  int tty;
  int epochs;
  uint64_t last_ms;
} progress_t;

static void on_progress(void *ud, const px_train_progress_t *p) {
  progress_t *pg = ud;
  uint64_t now = px_time_mono_ms();
  if (pg->tty) {
    if (!p->finished && now - pg->last_ms < 100) return;
    int w = 30, fill = (int)((double)p->done / (double)p->total * w);
    char bar[32];
    for (int i = 0; i < w; i++)
      bar[i] = i < fill ? '#' : '.';
    bar[w] = 0;
    fprintf(stderr,
            "\r\033[Kepoch %d/%d [%s] %3d%%  loss %.4f  acc %.2f%%  %.0f "
            "samples/s",
            p->epoch + 1, pg->epochs, bar,
            (int)((double)p->done * 100.0 / (double)p->total), p->loss,
            p->accuracy * 100.0, p->samples_per_s);
    if (p->finished) fputc('\n', stderr);
  } else {
    if (!p->finished && now - pg->last_ms < 5000) return;
    fprintf(stderr,
            "epoch %d/%d  %zu/%zu  loss %.4f  acc %.2f%%  %.0f samples/s\n",
            p->epoch + 1, pg->epochs, p->done, p->total, p->loss,
            p->accuracy * 100.0, p->samples_per_s);
  }
  fflush(stderr);
  pg->last_ms = now;
}

/* ---- train ----------------------------------------------------------------
 */

int px_cli_train(px_cli_args_t *a) {
  static const char *const ok[] = {"model", "data",     "epochs",    "out",
                                   "batch", "lr",       "optimizer", "seed",
                                   "limit", "lr-decay", NULL};
  if (px_cli_check_opts(a, ok, 0)) return 2;
  const char *model = opt_str(a, "model", 1);
  const char *data = opt_str(a, "data", 1);
  const char *out = opt_str(a, "out", 1);
  if (!model || !data || !out) return 2;
  px_net_arch_t arch;
  if (!strcmp(model, "mlp"))
    arch = PX_NET_MLP;
  else if (!strcmp(model, "cnn"))
    arch = PX_NET_CNN;
  else {
    fprintf(stderr, "plexus: --model must be mlp or cnn, got '%s'\n", model);
    return 2;
  }
  const char *optname = px_config_get_str(&a->opts, "optimizer", "adamw");
  px_optimizer_t opt;
  if (!strcmp(optname, "adamw"))
    opt = PX_OPT_ADAMW;
  else if (!strcmp(optname, "sgd"))
    opt = PX_OPT_SGD;
  else {
    fprintf(stderr, "plexus: --optimizer must be sgd or adamw, got '%s'\n",
            optname);
    return 2;
  }
  px_train_opts_t to;
  px_train_opts_default(&to, opt);
  uint64_t epochs = 10, batch = (uint64_t)to.batch, seed = 1, limit = 0;
  if (opt_u64(a, "epochs", 1, 10000, &epochs) ||
      opt_u64(a, "batch", 1, 65536, &batch) ||
      opt_u64(a, "seed", 0, UINT64_MAX, &seed) ||
      opt_u64(a, "limit", 1, UINT32_MAX, &limit) ||
      opt_float(a, "lr", 1e-9, 100.0, &to.lr) ||
      opt_float(a, "lr-decay", 1e-6, 1.0, &to.lr_decay))
    return 2;
  to.batch = (int)batch;
  to.seed = seed ^ 0x9e3779b97f4a7c15ull; /* shuffling stream != init */

  px_mnist_t train, test;
  if (load_mnist(data, "train", &train)) return 1;
  if (load_mnist(data, "t10k", &test)) {
    px_mnist_release(&train);
    return 1;
  }
  px_net_config_t cfg;
  px_net_config_default(&cfg, arch);
  cfg.in_h = train.rows, cfg.in_w = train.cols;
  px_net_t *net = NULL;
  px_trainer_t *tr = NULL;
  px_compute_t *c = NULL;
  int ret = 1, rc = px_net_new(&cfg, &net);
  if (rc) {
    fprintf(stderr, "plexus: cannot build the %s model: %s\n", model,
            px_strerror(rc));
    goto done;
  }
  px_net_init(net, seed);
  if ((rc = px_trainer_new(net, &to, &tr)) != 0) {
    fprintf(stderr, "plexus: bad training options: %s\n", px_strerror(rc));
    goto done;
  }
  if (make_compute(&c)) goto done;
  size_t n = train.n, nt = test.n;
  if (limit && limit < n) n = (size_t)limit;
  if (limit && limit < nt) nt = (size_t)limit;
  size_t params;
  px_net_params(net, &params);
  fprintf(stderr,
          "training %s (%zu parameters) on %zu images, %d epochs, %s lr %g "
          "batch %d, seed %llu, %s x%d threads\n",
          model, params, n, (int)epochs, optname, (double)to.lr, to.batch,
          (unsigned long long)seed, px_simd_name(px_compute_simd(c)),
          px_compute_threads(c));
  progress_t pg = {isatty(2), (int)epochs, px_time_mono_ms()};
  uint64_t t0 = px_time_mono_ms();
  for (int e = 0; e < (int)epochs; e++) {
    px_train_progress_t res;
    memset(&res, 0, sizeof res);
    res.epoch = e;
    rc = px_trainer_epoch(tr, c, train.images.data, train.labels.data, n,
                          on_progress, &pg, &res);
    if (rc) {
      fprintf(stderr, "plexus: training failed: %s\n", px_strerror(rc));
      goto done;
    }
  }
  double secs = (double)(px_time_mono_ms() - t0) / 1000.0;
  size_t correct;
  uint8_t h[32];
  rc = px_net_evaluate(net, c, test.images.data, test.labels.data, nt, 0,
                       &correct, h);
  if (rc) {
    fprintf(stderr, "plexus: evaluation failed: %s\n", px_strerror(rc));
    goto done;
  }
  if ((rc = px_net_save(net, out)) != 0) {
    fprintf(stderr, "plexus: cannot write %s: %s\n", out, px_strerror(rc));
    goto done;
  }
  uint8_t wh[32];
  char hex[65];
  px_net_hash(net, wh);
  px_hex_encode(wh, 32, hex);
  printf("trained %s in %.1f s: test accuracy %.2f%% (%zu/%zu), weights "
         "%s\nsaved %s\n",
         model, secs, 100.0 * (double)correct / (double)nt, correct, nt, hex,
         out);
  ret = 0;
done:
  px_compute_free(c);
  px_trainer_free(tr);
  px_net_free(net);
  px_mnist_release(&train);
  px_mnist_release(&test);
  return ret;
}

/* ---- eval -----------------------------------------------------------------
 */

/* Score a predictions file (a market job's result: raw f32 LE logits
 * [n][classes], sample order = the test set's) against the test labels,
 * with the same argmax and the same output hash (BLAKE2b-256 over the
 * logits in sample order) as px_net_evaluate: for an honest job the figure
 * equals the local `plexus eval` exactly. */
static int eval_predictions(const char *model, const char *pred, int nc,
                            const px_mnist_t *test, uint64_t limit, int json) {
  uint8_t *buf;
  size_t len;
  int rc = px_file_read_all(pred, (size_t)1 << 34, &buf, &len);
  if (rc) {
    fprintf(stderr, "plexus: cannot read --predictions %s: %s\n", pred,
            px_strerror(rc));
    return 1;
  }
  size_t row = (size_t)nc * sizeof(float);
  size_t n = test->n;
  if (limit && limit < n) n = (size_t)limit;
  if (!len || len % row || len / row != n) {
    fprintf(stderr,
            "plexus: --predictions %s holds %zu bytes; expected %zu samples "
            "x %d classes of raw f32 logits (%zu bytes, e.g. from `plexus "
            "job result ID --out FILE`)%s\n",
            pred, len, n, nc, n * row,
            limit ? "" : " (--limit N scores the first N samples)");
    px_free(buf);
    return 1;
  }
  float *lg = px_malloc(len);
  if (!lg) {
    px_free(buf);
    fprintf(stderr, "plexus: out of memory\n");
    return 1;
  }
  memcpy(lg, buf, len); /* aligned copy */
  px_free(buf);
  size_t correct = 0, bad = 0;
  for (size_t i = 0; i < n; i++) {
    const float *r = lg + i * (size_t)nc;
    for (int k = 0; k < nc; k++)
      bad += !isfinite(r[k]);
    correct += px_argmax_f32(r, nc) == test->labels.data[i];
  }
  uint8_t h[32];
  char hex[65];
  px_hash(h, lg, len);
  px_hex_encode(h, 32, hex);
  px_free(lg);
  if (bad)
    fprintf(stderr, "plexus: warning: %zu logits in %s are not finite\n", bad,
            pred);
  double acc = (double)correct / (double)n;
  if (json)
    printf("{\"model\":\"%s\",\"predictions\":\"%s\",\"samples\":%zu,"
           "\"correct\":%zu,\"accuracy\":%.6f,\"output_hash\":\"%s\"}\n",
           model, pred, n, correct, acc, hex);
  else
    printf("%s: test accuracy %.2f%% (%zu/%zu)\noutput_hash %s\n", pred,
           acc * 100.0, correct, n, hex);
  return 0;
}

int px_cli_eval(px_cli_args_t *a) {
  static const char *const ok[] = {"model", "data",        "json",
                                   "limit", "predictions", NULL};
  if (px_cli_check_opts(a, ok, 0)) return 2;
  const char *model = opt_str(a, "model", 1);
  const char *data = opt_str(a, "data", 1);
  const char *pred = opt_str(a, "predictions", 0);
  int json = opt_flag(a, "json");
  uint64_t limit = 0;
  if (!model || !data || json < 0 || opt_u64(a, "limit", 1, UINT32_MAX, &limit))
    return 2;
  if (px_config_get(&a->opts, "predictions") && !pred) return 2;
  if (!pred && px_cli_upow_is_export(model)) return px_cli_upow_eval(a);
  px_net_t *net;
  if (load_net(model, &net)) return 1;
  px_mnist_t test;
  if (load_mnist(data, "t10k", &test)) {
    px_net_free(net);
    return 1;
  }
  if (pred) {
    int ret = check_shape(net, &test, model)
                  ? 1
                  : eval_predictions(model, pred, px_net_config(net)->n_classes,
                                     &test, limit, json);
    px_net_free(net);
    px_mnist_release(&test);
    return ret;
  }
  px_compute_t *c = NULL;
  int ret = 1;
  if (check_shape(net, &test, model) || make_compute(&c)) goto done;
  size_t n = test.n, correct;
  if (limit && limit < n) n = (size_t)limit;
  uint8_t h[32];
  uint64_t t0 = px_time_mono_ns();
  int rc = px_net_evaluate(net, c, test.images.data, test.labels.data, n, 0,
                           &correct, h);
  double secs = (double)(px_time_mono_ns() - t0) * 1e-9;
  if (rc) {
    fprintf(stderr, "plexus: evaluation failed: %s\n", px_strerror(rc));
    goto done;
  }
  char hex[65];
  px_hex_encode(h, 32, hex);
  double acc = (double)correct / (double)n;
  const char *arch = px_net_config(net)->arch == PX_NET_CNN ? "cnn" : "mlp";
  if (json)
    printf("{\"model\":\"%s\",\"architecture\":\"%s\",\"samples\":%zu,"
           "\"correct\":%zu,\"accuracy\":%.6f,\"output_hash\":\"%s\","
           "\"seconds\":%.3f}\n",
           model, arch, n, correct, acc, hex, secs);
  else
    printf("%s (%s): test accuracy %.2f%% (%zu/%zu)\noutput_hash %s\n", model,
           arch, acc * 100.0, correct, n, hex);
  ret = 0;
done:
  px_compute_free(c);
  px_net_free(net);
  px_mnist_release(&test);
  return ret;
}

/* ---- infer ----------------------------------------------------------------
 */

/* The input file (px_input_load); errors to stderr.  0 or -1. */
int px_cli_read_input(const char *path, size_t in, float **x, size_t *n) {
  char err[512];
  int rc = px_input_load(path, in, x, n, err, sizeof err);
  if (rc) fprintf(stderr, "plexus: --input %s\n", err);
  return rc ? -1 : 0;
}

int px_cli_infer(px_cli_args_t *a) {
  static const char *const ok[] = {"model", "input", "trace", "json", NULL};
  if (px_cli_check_opts(a, ok, 0)) return 2;
  const char *model = opt_str(a, "model", 1);
  const char *input = opt_str(a, "input", 1);
  int json = opt_flag(a, "json"), trace_on = opt_flag(a, "trace");
  if (!model || !input || json < 0 || trace_on < 0) return 2;
  px_net_t *net;
  if (load_net(model, &net)) return 1;
  float *x = NULL, *logits = NULL, *probs = NULL;
  size_t n = 0;
  px_compute_t *c = NULL;
  px_trace_t tr;
  px_trace_init(&tr, trace_on);
  int ret = 1;
  size_t in = px_net_input_size(net);
  int nc = px_net_config(net)->n_classes;
  if (px_cli_read_input(input, in, &x, &n) || make_compute(&c)) goto done;
  if (n > 65536) {
    fprintf(stderr, "plexus: --input %s: %zu samples, at most 65536\n", input,
            n);
    goto done;
  }
  logits = px_malloc(n * (size_t)nc * sizeof(float));
  probs = px_malloc(n * (size_t)nc * sizeof(float));
  if (!logits || !probs) goto done;
  uint64_t t0 = px_time_mono_ns();
  /* Batches of 256 bound the activation memory; with --trace, each batch
   * adds one leaf per layer. */
  int rc = 0;
  for (size_t s0 = 0; s0 < n && !rc; s0 += 256) {
    int b = (int)(n - s0 < 256 ? n - s0 : 256);
    rc = px_net_forward(net, c, x + s0 * in, b, logits + s0 * (size_t)nc, &tr);
  }
  double secs = (double)(px_time_mono_ns() - t0) * 1e-9;
  if (rc) {
    fprintf(stderr, "plexus: inference failed: %s\n", px_strerror(rc));
    goto done;
  }
  px_softmax_f32(c, probs, logits, (int)n, nc);
  uint8_t h[32], root[32];
  char hex[65], rhex[65];
  px_hash(h, logits, n * (size_t)nc * sizeof(float));
  px_hex_encode(h, 32, hex);
  if (trace_on) {
    px_trace_root(&tr, root);
    px_hex_encode(root, 32, rhex);
  }
  if (json) printf("{\"predictions\":[");
  for (size_t i = 0; i < n; i++) {
    int k = px_argmax_f32(logits + i * (size_t)nc, nc);
    float p = probs[i * (size_t)nc + (size_t)k];
    if (json)
      printf("%s{\"class\":%d,\"probability\":%.6f}", i ? "," : "", k,
             (double)p);
    else
      printf("sample %zu: class %d%s%s%s  p=%.4f\n", i, k, nc == 10 ? " (" : "",
             nc == 10 ? k_fashion_names[k] : "", nc == 10 ? ")" : "",
             (double)p);
  }
  if (json) {
    printf("],\"output_hash\":\"%s\"", hex);
    if (trace_on)
      printf(",\"trace_root\":\"%s\",\"trace_layers\":%zu", rhex, tr.n);
    printf(",\"seconds\":%.6f}\n", secs);
  } else {
    printf("output_hash %s\n", hex);
    if (trace_on) printf("trace_root %s (%zu layers)\n", rhex, tr.n);
    fprintf(stderr, "%zu samples in %.3f ms (%.0f samples/s)\n", n, secs * 1e3,
            secs > 0 ? (double)n / secs : 0.0);
  }
  ret = 0;
done:
  px_trace_release(&tr);
  px_compute_free(c);
  px_free(x);
  px_free(logits);
  px_free(probs);
  px_net_free(net);
  return ret;
}

/* ---- generate -------------------------------------------------------------
 */

typedef struct {
  const px_tokenizer_t *tok;
} gen_ctx_t;

static void print_piece(const px_tokenizer_t *tok, int prev, int token) {
  const char *s;
  size_t len;
  if (px_tokenizer_decode(tok, prev, token, &s, &len)) return;
  /* llama2.c safe_printf: skip lone non-printable bytes. */
  if (len == 1 && (unsigned char)s[0] < 0x20 && s[0] != '\n' && s[0] != '\t')
    return;
  fwrite(s, 1, len, stdout);
  fflush(stdout);
}

static int on_token(void *ud, int prev, int token) {
  gen_ctx_t *g = ud;
  print_piece(g->tok, prev, token);
  return 0;
}

int px_cli_generate(px_cli_args_t *a) {
  static const char *const ok[] = {"model", "tokenizer",   "prompt",
                                   "steps", "temperature", "top-p",
                                   "seed",  NULL};
  if (px_cli_check_opts(a, ok, 0)) return 2;
  const char *model = opt_str(a, "model", 1);
  const char *tokp = opt_str(a, "tokenizer", 1);
  const char *prompt = px_config_get(&a->opts, "prompt");
  if (!prompt) prompt = "";
  if (!model || !tokp) return 2;
  px_generate_opts_t go = {256, 1.0f, 0.9f, 42};
  uint64_t steps = 256;
  if (opt_u64(a, "steps", 1, PX_LLAMA2C_MAX_DIM, &steps) ||
      opt_float(a, "temperature", 0.0, 100.0, &go.temperature) ||
      opt_float(a, "top-p", 0.0, 1.0, &go.top_p) ||
      opt_u64(a, "seed", 0, UINT64_MAX, &go.seed))
    return 2;
  px_llama2c_t *ck = NULL;
  px_tokenizer_t *tok = NULL;
  px_llama_t *m = NULL;
  px_compute_t *c = NULL;
  int *toks = NULL, ret = 1;
  int rc = px_llama2c_open(model, &ck);
  if (rc) {
    fprintf(stderr,
            "plexus: cannot load model %s: %s (expected a llama2.c "
            "checkpoint, version 0, 1 or 2)\n",
            model, px_strerror(rc));
    goto done;
  }
  rc = px_tokenizer_load(tokp, ck->cfg.vocab_size, &tok);
  if (rc) {
    fprintf(stderr,
            "plexus: cannot load tokenizer %s: %s (expected llama2.c "
            "tokenizer.bin for a vocabulary of %d)\n",
            tokp, px_strerror(rc), ck->cfg.vocab_size);
    goto done;
  }
  if ((rc = px_llama_new(ck, &m)) != 0) {
    fprintf(stderr, "plexus: cannot prepare model %s: %s\n", model,
            px_strerror(rc));
    goto done;
  }
  px_llama2c_free(ck);
  ck = NULL;
  if (make_compute(&c)) goto done;
  const px_llama2c_config_t *cfg = px_llama_config(m);
  go.steps =
      (int)(steps < (uint64_t)cfg->seq_len ? steps : (uint64_t)cfg->seq_len);
  size_t plen = strlen(prompt), n = 0;
  toks = px_malloc((plen + 3) * sizeof(int));
  if (!toks) goto done;
  rc = px_tokenizer_encode(tok, prompt, plen, 1, 0, toks, plen + 3, &n);
  if (rc) {
    fprintf(stderr, "plexus: cannot encode --prompt: %s\n", px_strerror(rc));
    goto done;
  }
  if ((int)n >= go.steps) {
    fprintf(stderr,
            "plexus: the prompt is %zu tokens, --steps %d leaves no room "
            "(the model's context is %d)\n",
            n, go.steps, cfg->seq_len);
    goto done;
  }
  for (size_t i = 1; i < n; i++)
    print_piece(tok, toks[i - 1], toks[i]);
  gen_ctx_t g = {tok};
  int produced = 0;
  uint64_t t0 = px_time_mono_ns();
  rc = px_llama_generate(m, c, toks, (int)n, &go, on_token, &g, &produced);
  double secs = (double)(px_time_mono_ns() - t0) * 1e-9;
  printf("\n");
  if (rc) {
    fprintf(stderr, "plexus: generation failed: %s\n", px_strerror(rc));
    goto done;
  }
  int total = (int)n - 1 + produced;
  fprintf(stderr,
          "%d tokens (%zu prompt + %d generated) in %.2f s: %.1f tokens/s "
          "(%s, %s x%d threads)\n",
          total, n, produced, secs, secs > 0 ? (double)total / secs : 0.0,
          cfg->version == 2 ? "int8" : "f32", px_simd_name(px_compute_simd(c)),
          px_compute_threads(c));
  ret = 0;
done:
  px_free(toks);
  px_compute_free(c);
  px_llama_free(m);
  px_tokenizer_free(tok);
  px_llama2c_free(ck);
  return ret;
}
