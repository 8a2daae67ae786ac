/*
 * net.c — MLP and CNN classifiers: construction, seeded initialisation,
 * the forward pass (inference, with optional trace commitment), evaluation
 * and safetensors files.
 *
 * Architecture: a classifier is a flat list of layers (linear, conv, relu,
 * 2x2 max-pool) over NCHW samples; its parameters live in one array in
 * layer order so that hashing, saving and the optimisers see them as one
 * vector.  The forward pass only calls compute.h kernels:
 *   linear  px_matmul_f32 (each output: sequential-k FMA, then + bias)
 *   conv    px_gemm_f32 over an explicit im2col of the whole batch:
 *           sequential FMA over (ci, ky, kx) from +0, then + bias — the
 *           operations of px_conv2d_f32, so bit-identical to it
 *   relu    px_relu_f32;  maxpool px_maxpool2d_f32 (first max in (ky, kx))
 * so the logits are bit-identical at every SIMD level and thread count.
 * The only reduction written here is the evaluation hash, which feeds the
 * logits to BLAKE2b in sample order.
 *
 * Initialisation draws U(-a, a), a = sqrt(6 / fan_in), from a px_rng_t:
 * u = (next >> 40) * 2^-24 in [0, 1), w = (2u - 1) * a — exact integer to
 * float steps plus two roundings, identical everywhere.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "plexus/crypto.h"
#include "plexus/json.h"
#include "plexus/model.h"
#include "compute/model_internal.h"
#include "base/px_internal.h"

#define PX_NET_MAX_PARAMS ((size_t)1 << 28)
#define PX_NET_MAX_ACT ((size_t)1 << 31) /* floats of activations */

void px_net_config_default(px_net_config_t *cfg, px_net_arch_t arch) {
  memset(cfg, 0, sizeof *cfg);
  cfg->arch = arch;
  cfg->in_c = 1, cfg->in_h = 28, cfg->in_w = 28;
  cfg->n_classes = 10;
  if (arch == PX_NET_CNN) {
    cfg->conv[0] = 16, cfg->conv[1] = 32, cfg->n_conv = 2;
    cfg->kernel = 5;
    cfg->hidden[0] = 128, cfg->n_hidden = 1;
  } else {
    cfg->hidden[0] = 512, cfg->hidden[1] = 256, cfg->n_hidden = 2;
  }
}

static const int k_dim_max = 1 << 16;

static int add_layer(px_net_t *n, px_layer_kind_t kind, int out_c, int k) {
  if (n->n_layers >= PX_NET_MAX_LAYERS) return PX_EINVAL;
  px_layer_t *prev = n->n_layers ? &n->layer[n->n_layers - 1] : NULL;
  px_layer_t *l = &n->layer[n->n_layers];
  memset(l, 0, sizeof *l);
  l->kind = kind;
  if (prev)
    l->in_c = prev->out_c, l->in_h = prev->out_h, l->in_w = prev->out_w;
  else
    l->in_c = n->cfg.in_c, l->in_h = n->cfg.in_h, l->in_w = n->cfg.in_w;
  l->in_size = (size_t)l->in_c * l->in_h * l->in_w;
  switch (kind) {
  case PX_LAYER_LINEAR:
    if (out_c <= 0 || out_c > k_dim_max) return PX_EINVAL;
    l->out_c = out_c, l->out_h = 1, l->out_w = 1;
    l->nw = (size_t)out_c * l->in_size, l->nb = (size_t)out_c;
    break;
  case PX_LAYER_CONV:
    if (out_c <= 0 || out_c > k_dim_max || k <= 0 || k % 2 == 0 || k > 15)
      return PX_EINVAL;
    l->k = k, l->pad = k / 2;
    l->out_c = out_c, l->out_h = l->in_h, l->out_w = l->in_w;
    l->nw = (size_t)out_c * l->in_c * k * k, l->nb = (size_t)out_c;
    break;
  case PX_LAYER_RELU:
    l->out_c = l->in_c, l->out_h = l->in_h, l->out_w = l->in_w;
    break;
  case PX_LAYER_MAXPOOL:
    if (l->in_h < 2 || l->in_w < 2) return PX_EINVAL;
    l->out_c = l->in_c, l->out_h = l->in_h / 2, l->out_w = l->in_w / 2;
    break;
  }
  l->out_size = (size_t)l->out_c * l->out_h * l->out_w;
  if (l->in_size > PX_NET_MAX_PARAMS || l->out_size > PX_NET_MAX_PARAMS)
    return PX_ETOOBIG;
  n->n_params += l->nw + l->nb;
  if (n->n_params > PX_NET_MAX_PARAMS) return PX_ETOOBIG;
  if (l->out_size > n->max_size) n->max_size = l->out_size;
  n->n_layers++;
  return 0;
}

static int build(px_net_t *n) {
  const px_net_config_t *c = &n->cfg;
  if (c->in_c <= 0 || c->in_h <= 0 || c->in_w <= 0 || c->in_c > k_dim_max ||
      c->in_h > k_dim_max || c->in_w > k_dim_max || c->n_classes <= 0 ||
      c->n_hidden < 0 || c->n_hidden > PX_NET_MAX_DIMS || c->n_conv < 0 ||
      c->n_conv > PX_NET_MAX_DIMS)
    return PX_EINVAL;
  n->max_size = (size_t)c->in_c * c->in_h * c->in_w;
  int rc = 0;
  if (c->arch == PX_NET_CNN) {
    if (c->n_conv < 1) return PX_EINVAL;
    for (int i = 0; i < c->n_conv && !rc; i++) {
      rc = add_layer(n, PX_LAYER_CONV, c->conv[i], c->kernel);
      if (!rc) rc = add_layer(n, PX_LAYER_RELU, 0, 0);
      if (!rc) rc = add_layer(n, PX_LAYER_MAXPOOL, 0, 0);
    }
  } else if (c->arch != PX_NET_MLP) {
    return PX_EINVAL;
  } else if (c->n_conv != 0) {
    return PX_EINVAL;
  }
  for (int i = 0; i < c->n_hidden && !rc; i++) {
    rc = add_layer(n, PX_LAYER_LINEAR, c->hidden[i], 0);
    if (!rc) rc = add_layer(n, PX_LAYER_RELU, 0, 0);
  }
  if (!rc) rc = add_layer(n, PX_LAYER_LINEAR, c->n_classes, 0);
  return rc;
}

int px_net_new(const px_net_config_t *cfg, px_net_t **out) {
  *out = NULL;
  if (!cfg) return PX_EINVAL;
  px_net_t *n = px_calloc(1, sizeof *n);
  if (!n) return PX_ENOMEM;
  n->cfg = *cfg;
  int rc = build(n);
  if (rc) {
    px_free(n);
    return rc;
  }
  n->params = px_calloc(n->n_params, sizeof(float));
  if (!n->params) {
    px_free(n);
    return PX_ENOMEM;
  }
  float *p = n->params;
  for (int i = 0; i < n->n_layers; i++) {
    px_layer_t *l = &n->layer[i];
    if (!l->nw) continue;
    l->w = p, p += l->nw;
    l->b = p, p += l->nb;
  }
  *out = n;
  return 0;
}

void px_net_free(px_net_t *net) {
  if (!net) return;
  for (int i = 0; i < net->n_layers; i++) {
    px_free(net->act[i]);
    px_free(net->cols[i]);
  }
  px_free(net->gemm_out);
  px_free(net->params);
  px_free(net);
}

void px_net_init(px_net_t *net, uint64_t seed) {
  px_rng_t r;
  px_rng_seed(&r, seed);
  for (int i = 0; i < net->n_layers; i++) {
    px_layer_t *l = &net->layer[i];
    if (!l->nw) continue;
    size_t fan_in = l->nw / l->nb;
    float a = sqrtf(6.0f / (float)fan_in);
    for (size_t j = 0; j < l->nw; j++) {
      float u = (float)(px_rng_next(&r) >> 40) * 0x1p-24f;
      l->w[j] = (2.0f * u - 1.0f) * a;
    }
    memset(l->b, 0, l->nb * sizeof(float));
  }
}

const px_net_config_t *px_net_config(const px_net_t *net) { return &net->cfg; }
int px_net_layer_count(const px_net_t *net) { return net->n_layers; }
const px_layer_t *px_net_layer(const px_net_t *net, int i) {
  return i >= 0 && i < net->n_layers ? &net->layer[i] : NULL;
}
float *px_net_params(px_net_t *net, size_t *n) {
  if (n) *n = net->n_params;
  return net->params;
}
size_t px_net_input_size(const px_net_t *net) {
  return (size_t)net->cfg.in_c * net->cfg.in_h * net->cfg.in_w;
}
void px_net_hash(const px_net_t *net, uint8_t out[32]) {
  px_hash(out, net->params, net->n_params * sizeof(float));
}

int px_net_reserve(px_net_t *net, int n) {
  if (n <= net->cap_n) return 0;
  size_t tmp = 0;
  for (int i = 0; i < net->n_layers; i++) {
    const px_layer_t *l = &net->layer[i];
    size_t sz = l->out_size;
    if (sz && (size_t)n > PX_NET_MAX_ACT / sz) return PX_ETOOBIG;
    float *a = px_realloc(net->act[i], (size_t)n * sz * sizeof(float));
    if (!a) return PX_ENOMEM;
    net->act[i] = a;
    if (l->kind != PX_LAYER_CONV) continue;
    size_t q = (size_t)l->in_c * l->k * l->k;
    size_t bp = (size_t)n * l->out_h * l->out_w;
    if (bp > PX_NET_MAX_ACT / q) return PX_ETOOBIG;
    float *c = px_realloc(net->cols[i], q * bp * sizeof(float));
    if (!c) return PX_ENOMEM;
    net->cols[i] = c;
    if ((size_t)n * sz > tmp) tmp = (size_t)n * sz;
  }
  if (tmp) {
    float *g = px_realloc(net->gemm_out, tmp * sizeof(float));
    if (!g) return PX_ENOMEM;
    net->gemm_out = g;
  }
  net->cap_n = n;
  return 0;
}

void px_net_im2col(float *cols, const float *in, const px_layer_t *l, int n) {
  int P = l->out_h * l->out_w, k = l->k, h = l->in_h, w = l->in_w;
  int ow = l->out_w;
  size_t row = (size_t)n * P;
  for (int ci = 0; ci < l->in_c; ci++)
    for (int ky = 0; ky < k; ky++)
      for (int kx = 0; kx < k; kx++) {
        float *dst = cols + ((size_t)(ci * k + ky) * k + kx) * row;
        /* output columns ox whose input column ox + kx - pad is inside */
        int x0 = l->pad - kx > 0 ? l->pad - kx : 0;
        int x1 = w + l->pad - kx < ow ? w + l->pad - kx : ow;
        if (x1 < x0) x1 = x0;
        for (int b = 0; b < n; b++) {
          const float *src = in + ((size_t)b * l->in_c + ci) * h * w;
          float *d = dst + (size_t)b * P;
          for (int oy = 0; oy < l->out_h; oy++) {
            int iy = oy + ky - l->pad;
            float *dr = d + (size_t)oy * ow;
            if (iy < 0 || iy >= h) {
              memset(dr, 0, (size_t)ow * sizeof(float));
              continue;
            }
            for (int ox = 0; ox < x0; ox++)
              dr[ox] = 0.0f;
            if (x1 > x0)
              memcpy(dr + x0, src + (size_t)iy * w + (x0 + kx - l->pad),
                     (size_t)(x1 - x0) * sizeof(float));
            for (int ox = x1; ox < ow; ox++)
              dr[ox] = 0.0f;
          }
        }
      }
}

/* Layers first.. of a forward pass over n samples, `in` being the input
 * of layer `first` (the activations are already reserved for n). */
static int forward_layers(px_net_t *net, px_compute_t *c, const float *in,
                          int n, int first, float *logits, px_trace_t *trace) {
  int rc;
  for (int i = first; i < net->n_layers; i++) {
    const px_layer_t *l = &net->layer[i];
    float *out = net->act[i];
    switch (l->kind) {
    case PX_LAYER_LINEAR:
      px_matmul_f32(c, out, l->out_c, in, (int)l->in_size, l->w,
                    (int)l->in_size, l->b, n, l->out_c, (int)l->in_size);
      break;
    case PX_LAYER_CONV: {
      /* The batch as one GEMM over an explicit im2col (kept for the
       * backward pass): tmp[oc][b*P + p] = W[oc][q] . cols[q][b*P + p],
       * then out[b][oc][p] = tmp + bias[oc].  Same operations, in the same
       * order, as px_conv2d_f32 (sequential FMA over q = (ci, ky, kx) from
       * +0, zero taps included, then one bias add), so the result is
       * bit-identical to it; one large GEMM just runs faster than n small
       * ones. */
      int P = l->out_h * l->out_w, Q = l->in_c * l->k * l->k, BP = n * P;
      px_net_im2col(net->cols[i], in, l, n);
      px_gemm_f32(c, 0, 0, l->out_c, BP, Q, l->w, Q, net->cols[i], BP, 0,
                  net->gemm_out, BP);
      for (int b = 0; b < n; b++)
        for (int o = 0; o < l->out_c; o++) {
          const float *src = net->gemm_out + (size_t)o * BP + (size_t)b * P;
          float *dst = out + ((size_t)b * l->out_c + o) * P;
          for (int p = 0; p < P; p++)
            dst[p] = src[p] + l->b[o];
        }
      break;
    }
    case PX_LAYER_RELU:
      px_relu_f32(c, out, in, (size_t)n * l->out_size);
      break;
    case PX_LAYER_MAXPOOL:
      px_maxpool2d_f32(out, in, n, l->in_c, l->in_h, l->in_w, 2, 2);
      break;
    }
    if (trace && trace->enabled) {
      rc = px_trace_add(trace, out, (size_t)n * l->out_size);
      if (rc) return rc;
    }
    in = out;
  }
  if (logits)
    memcpy(logits, in, (size_t)n * net->cfg.n_classes * sizeof(float));
  return 0;
}

int px_net_forward(px_net_t *net, px_compute_t *c, const float *x, int n,
                   float *logits, px_trace_t *trace) {
  if (n <= 0 || !x) return PX_EINVAL;
  int rc = px_net_reserve(net, n);
  if (rc) return rc;
  net->input = x;
  net->last_n = n;
  return forward_layers(net, c, x, n, 0, logits, trace);
}

float *px_net_activation(px_net_t *net, int i, int *n) {
  if (n) *n = net->last_n;
  if (i < 0 || i >= net->n_layers || net->last_n <= 0) return NULL;
  return net->act[i];
}

int px_net_forward_from(px_net_t *net, px_compute_t *c, int first,
                        float *logits) {
  if (first < 1 || first >= net->n_layers || net->last_n <= 0) return PX_EINVAL;
  return forward_layers(net, c, net->act[first - 1], net->last_n, first, logits,
                        NULL);
}

void px_net_pixels_to_input(const uint8_t *px, size_t n, float *x) {
  for (size_t i = 0; i < n; i++)
    x[i] = (float)px[i] / 255.0f;
}

int px_net_evaluate(px_net_t *net, px_compute_t *c, const uint8_t *images,
                    const uint8_t *labels, size_t n, int batch, size_t *correct,
                    uint8_t hash[32]) {
  if (batch <= 0) batch = 256;
  size_t in = px_net_input_size(net);
  int nc = net->cfg.n_classes;
  float *x = px_malloc((size_t)batch * in * sizeof(float));
  float *lg = px_malloc((size_t)batch * nc * sizeof(float));
  int rc = (x && lg) ? 0 : PX_ENOMEM;
  px_hash_state_t hs;
  px_hash_init(&hs);
  size_t ok = 0;
  for (size_t s = 0; s < n && !rc; s += (size_t)batch) {
    int b = (int)(n - s < (size_t)batch ? n - s : (size_t)batch);
    px_net_pixels_to_input(images + s * in, (size_t)b * in, x);
    rc = px_net_forward(net, c, x, b, lg, NULL);
    if (rc) break;
    for (int i = 0; i < b; i++)
      ok += labels && px_argmax_f32(lg + (size_t)i * nc, nc) == labels[s + i];
    px_hash_update(&hs, lg, (size_t)b * nc * sizeof(float));
  }
  if (!rc) {
    if (correct) *correct = ok;
    if (hash) px_hash_final(&hs, hash);
  }
  px_free(x);
  px_free(lg);
  return rc;
}

/* ---- files ----------------------------------------------------------------
 */

static void write_ints(px_json_writer_t *w, const char *key, const int *v,
                       int n) {
  px_json_write_key(w, key);
  px_json_write_array_begin(w);
  for (int i = 0; i < n; i++)
    px_json_write_i64(w, v[i]);
  px_json_write_array_end(w);
}

int px_net_config_json(const px_net_config_t *cfg, px_buf_t *out) {
  px_json_writer_t w;
  px_json_writer_init(&w, out);
  px_json_write_object_begin(&w);
  px_json_write_key(&w, "architecture");
  px_json_write_str(&w, cfg->arch == PX_NET_CNN ? "cnn" : "mlp");
  int shape[3] = {cfg->in_c, cfg->in_h, cfg->in_w};
  write_ints(&w, "input", shape, 3);
  px_json_write_key(&w, "classes");
  px_json_write_i64(&w, cfg->n_classes);
  if (cfg->arch == PX_NET_CNN) {
    write_ints(&w, "conv", cfg->conv, cfg->n_conv);
    px_json_write_key(&w, "kernel");
    px_json_write_i64(&w, cfg->kernel);
  }
  write_ints(&w, "hidden", cfg->hidden, cfg->n_hidden);
  px_json_write_key(&w, "activation");
  px_json_write_str(&w, "relu");
  px_json_write_object_end(&w);
  return px_json_writer_finish(&w);
}

static int get_int(const px_json_t *root, const char *key, int *out) {
  int64_t v;
  int rc = px_json_get_i64(root, key, &v);
  if (rc) return rc;
  if (v < 1 || v > k_dim_max) return PX_ERANGE;
  *out = (int)v;
  return 0;
}

int px_net_config_parse(const void *json, size_t len, px_net_config_t *cfg) {
  px_arena_t ar;
  px_arena_init(&ar, 4096, 1 << 20);
  const px_json_t *root;
  memset(cfg, 0, sizeof *cfg);
  int rc = px_model_config_parse(&ar, json, len, &root);
  const char *arch = NULL;
  if (!rc) rc = px_json_get_str(root, "architecture", &arch);
  if (!rc) {
    if (!strcmp(arch, "mlp"))
      cfg->arch = PX_NET_MLP;
    else if (!strcmp(arch, "cnn"))
      cfg->arch = PX_NET_CNN;
    else
      rc = PX_EDECODE;
  }
  int shape[3];
  size_t n = 0;
  if (!rc) rc = px_model_config_get_dims(root, "input", shape, 3, &n);
  if (!rc && n != 3) rc = PX_EDECODE;
  if (!rc) cfg->in_c = shape[0], cfg->in_h = shape[1], cfg->in_w = shape[2];
  if (!rc) rc = get_int(root, "classes", &cfg->n_classes);
  if (!rc && px_json_get(root, "hidden")) {
    rc = px_model_config_get_dims(root, "hidden", cfg->hidden, PX_NET_MAX_DIMS,
                                  &n);
    cfg->n_hidden = (int)n;
  }
  if (!rc && cfg->arch == PX_NET_CNN) {
    rc = px_model_config_get_dims(root, "conv", cfg->conv, PX_NET_MAX_DIMS, &n);
    cfg->n_conv = (int)n;
    if (!rc) rc = get_int(root, "kernel", &cfg->kernel);
  }
  const char *act = NULL;
  if (!rc && px_json_get(root, "activation") &&
      (px_json_get_str(root, "activation", &act) || strcmp(act, "relu")))
    rc = PX_EDECODE;
  px_arena_release(&ar);
  if (rc == PX_ENOTFOUND || rc == PX_ERANGE || rc == PX_ETOOBIG)
    rc = PX_EDECODE;
  return rc;
}

int px_net_save(const px_net_t *net, const char *path) {
  px_st_entry_t e[PX_NET_MAX_LAYERS * 2];
  char names[PX_NET_MAX_LAYERS * 2][32];
  size_t ne = 0;
  for (int i = 0; i < net->n_layers; i++) {
    const px_layer_t *l = &net->layer[i];
    if (!l->nw) continue;
    for (int j = 0; j < 2; j++) {
      px_st_entry_t *t = &e[ne];
      memset(t, 0, sizeof *t);
      snprintf(names[ne], sizeof names[ne], "layers.%d.%s", i,
               j ? "bias" : "weight");
      t->name = names[ne];
      t->dtype = PX_DTYPE_F32;
      if (j) {
        t->ndim = 1, t->shape[0] = (uint64_t)l->out_c, t->data = l->b;
      } else if (l->kind == PX_LAYER_CONV) {
        t->ndim = 4;
        t->shape[0] = (uint64_t)l->out_c, t->shape[1] = (uint64_t)l->in_c;
        t->shape[2] = t->shape[3] = (uint64_t)l->k;
        t->data = l->w;
      } else {
        t->ndim = 2;
        t->shape[0] = (uint64_t)l->out_c, t->shape[1] = l->in_size;
        t->data = l->w;
      }
      ne++;
    }
  }
  px_buf_t cj;
  px_buf_init(&cj, 1 << 16);
  int rc = px_net_config_json(&net->cfg, &cj);
  if (!rc) rc = px_buf_append(&cj, "", 1); /* NUL for the metadata value */
  if (!rc) {
    const char *meta[4] = {"format", "pt", "plexus.config",
                           (const char *)cj.data};
    rc = px_st_write_file(path, e, ne, meta, 2);
  }
  px_buf_release(&cj);
  return rc;
}

int px_net_load(const char *path, px_net_t **out) {
  *out = NULL;
  px_safetensors_t *st;
  int rc = px_st_open(path, NULL, &st);
  if (rc) return rc;
  const char *cj = px_st_metadata_get(st, "plexus.config");
  px_net_config_t cfg;
  px_net_t *net = NULL;
  if (!cj) {
    PX_LOGE("model", "%s: no plexus.config in the safetensors metadata", path);
    rc = PX_EDECODE;
  }
  if (!rc && (rc = px_net_config_parse(cj, strlen(cj), &cfg)) != 0)
    PX_LOGE("model", "%s: bad plexus.config: %s", path, px_strerror(rc));
  if (!rc && (rc = px_net_new(&cfg, &net)) != 0) {
    PX_LOGE("model", "%s: unusable architecture: %s", path, px_strerror(rc));
    if (rc == PX_EINVAL) rc = PX_EDECODE;
  }
  size_t expect = 0;
  for (int i = 0; !rc && i < net->n_layers; i++) {
    px_layer_t *l = &net->layer[i];
    if (!l->nw) continue;
    char name[32];
    uint64_t shape[4];
    int nd;
    if (l->kind == PX_LAYER_CONV) {
      nd = 4;
      shape[0] = (uint64_t)l->out_c, shape[1] = (uint64_t)l->in_c;
      shape[2] = shape[3] = (uint64_t)l->k;
    } else {
      nd = 2;
      shape[0] = (uint64_t)l->out_c, shape[1] = l->in_size;
    }
    snprintf(name, sizeof name, "layers.%d.weight", i);
    rc = px_st_read_f32(st, name, nd, shape, l->w);
    if (!rc) {
      snprintf(name, sizeof name, "layers.%d.bias", i);
      rc = px_st_read_f32(st, name, 1, shape, l->b);
    }
    if (rc) PX_LOGE("model", "%s: tensor %s: %s", path, name, px_strerror(rc));
    expect += 2;
  }
  if (!rc && px_st_count(st) != expect) {
    PX_LOGE("model", "%s: %zu tensors, the architecture has %zu", path,
            px_st_count(st), expect);
    rc = PX_EDECODE;
  }
  if (rc == PX_ENOTFOUND) rc = PX_EDECODE;
  px_st_free(st);
  if (rc) {
    px_net_free(net);
    return rc;
  }
  *out = net;
  return 0;
}
