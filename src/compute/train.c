/*
 * train.c — backpropagation, SGD with momentum and AdamW, mini-batch
 * epochs with seeded shuffling, for the classifiers of net.c.
 *
 * Loss: mean softmax cross-entropy.  p = px_softmax_f32(logits);
 * loss = (sum over samples in order of -px_logf(max(p_y, 1e-30))) / n;
 * dlogits = (p - onehot) * (1 / n).
 *
 * Backward, last layer first (x = layer input, y = output, dy = dL/dy):
 *   linear  dW = dy^T . x          px_gemm_f32 (sum over the batch, k = sample
 *                                  order, sequential FMA)
 *           dx = dy . W            px_gemm_f32 (sum over outputs in order)
 *           db[j] = sum_b dy[b][j] sequential in b, starting at +0
 *   conv    the batch is laid out as one GEMM: cols[q][b*P + p] (im2col,
 *           q = (ci, ky, kx)), dyT[oc][b*P + p]:
 *           dW = dyT . cols^T      (K = b*P: samples in order, pixels in order)
 *           dcols = W^T . dyT      (K = oc in order)
 *           dx = col2im(dcols): for each sample, q ascending then p
 *                ascending, dx[ci][iy][ix] += dcols[q][b*P + p] (from +0)
 *           db[oc] = sum over b, then p, sequential
 *   relu    dx = y > 0 ? dy : 0
 *   maxpool dy goes to the first maximum of each 2x2 window in (ky, kx)
 *           order (the one px_maxpool2d_f32 picked); other inputs get 0.
 * The GEMMs are deterministic at any thread count and SIMD level
 * (compute.h); everything else here runs on the calling thread in the
 * order written, so gradients — and hence trained weights — are
 * bit-identical everywhere.
 *
 * Optimisers, per parameter in array order (weight decay on weights only):
 *   SGD:   v = mu*v + (g + wd*w);  w = w - lr*v
 *   AdamW: t += 1; b1t = b1t*b1; b2t = b2t*b2 (floats, from 1);
 *          m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*(g*g);
 *          w = w - lr*((m / (1-b1t)) / (sqrtf(v / (1-b2t)) + eps) + wd*w)
 * Each expression rounds as written (-ffp-contract=off; no FMA here).
 */
#include <math.h>
#include <string.h>

#include "plexus/model.h"
#include "compute/model_internal.h"
#include "base/px_internal.h"

struct px_trainer {
  px_net_t *net;
  px_train_opts_t o;
  float *grad, *m1, *m2; /* n_params each (m2: AdamW only) */
  int cap_n;
  float *dbuf[2]; /* dL/d(activation), ping-pong, cap_n * max_size */
  float *probs;   /* cap_n * classes */
  size_t col_cap;
  float *dcols, *dyt; /* conv backward scratch */
  float *xbatch;      /* epoch: batch inputs */
  uint8_t *lbatch;
  size_t *perm;
  size_t perm_n;
  px_rng_t rng;
  float lr;
  float b1t, b2t;
};

void px_train_opts_default(px_train_opts_t *o, px_optimizer_t opt) {
  memset(o, 0, sizeof *o);
  o->optimizer = opt;
  o->batch = 64;
  o->lr = opt == PX_OPT_SGD ? 0.05f : 0.001f;
  o->lr_decay = 1.0f;
  o->momentum = 0.9f;
  o->beta1 = 0.9f, o->beta2 = 0.999f, o->eps = 1e-8f;
  o->weight_decay = opt == PX_OPT_SGD ? 0.0f : 0.0001f;
  o->seed = 1;
}

int px_trainer_new(px_net_t *net, const px_train_opts_t *o,
                   px_trainer_t **out) {
  *out = NULL;
  if (!net || !o ||
      (o->optimizer != PX_OPT_SGD && o->optimizer != PX_OPT_ADAMW) ||
      o->batch <= 0 || o->batch > (1 << 16) || !(o->lr > 0.0f) ||
      !(o->lr < 1e3f) || !(o->lr_decay > 0.0f && o->lr_decay <= 1.0f) ||
      !(o->momentum >= 0.0f && o->momentum < 1.0f) ||
      !(o->beta1 >= 0.0f && o->beta1 < 1.0f) ||
      !(o->beta2 >= 0.0f && o->beta2 < 1.0f) || !(o->eps > 0.0f) ||
      !(o->weight_decay >= 0.0f && o->weight_decay < 1.0f))
    return PX_EINVAL;
  px_trainer_t *t = px_calloc(1, sizeof *t);
  if (!t) return PX_ENOMEM;
  t->net = net;
  t->o = *o;
  t->lr = o->lr;
  t->b1t = t->b2t = 1.0f;
  px_rng_seed(&t->rng, o->seed);
  t->grad = px_calloc(net->n_params, sizeof(float));
  t->m1 = px_calloc(net->n_params, sizeof(float));
  if (o->optimizer == PX_OPT_ADAMW)
    t->m2 = px_calloc(net->n_params, sizeof(float));
  if (!t->grad || !t->m1 || (o->optimizer == PX_OPT_ADAMW && !t->m2)) {
    px_trainer_free(t);
    return PX_ENOMEM;
  }
  *out = t;
  return 0;
}

void px_trainer_free(px_trainer_t *t) {
  if (!t) return;
  px_free(t->grad);
  px_free(t->m1);
  px_free(t->m2);
  px_free(t->dbuf[0]);
  px_free(t->dbuf[1]);
  px_free(t->probs);
  px_free(t->dcols);
  px_free(t->dyt);
  px_free(t->xbatch);
  px_free(t->lbatch);
  px_free(t->perm);
  px_free(t);
}

const float *px_trainer_grads(const px_trainer_t *t) { return t->grad; }

static int reserve(px_trainer_t *t, int n) {
  px_net_t *net = t->net;
  if (n > t->cap_n) {
    size_t per = net->max_size;
    for (int i = 0; i < 2; i++) {
      float *p = px_realloc(t->dbuf[i], (size_t)n * per * sizeof(float));
      if (!p) return PX_ENOMEM;
      t->dbuf[i] = p;
    }
    float *p =
        px_realloc(t->probs, (size_t)n * net->cfg.n_classes * sizeof(float));
    if (!p) return PX_ENOMEM;
    t->probs = p;
    t->cap_n = n;
  }
  size_t need = 0;
  for (int i = 0; i < net->n_layers; i++) {
    const px_layer_t *l = &net->layer[i];
    if (l->kind != PX_LAYER_CONV) continue;
    size_t q = (size_t)l->in_c * l->k * l->k;
    size_t bp = (size_t)n * l->out_h * l->out_w;
    size_t o = (size_t)l->out_c * bp;
    if (q * bp > need) need = q * bp;
    if (o > need) need = o;
  }
  if (need > t->col_cap) {
    float *b = px_realloc(t->dcols, need * sizeof(float));
    if (b) t->dcols = b;
    float *c = px_realloc(t->dyt, need * sizeof(float));
    if (c) t->dyt = c;
    if (!b || !c) return PX_ENOMEM;
    t->col_cap = need;
  }
  return 0;
}

static void col2im_batch(float *dx, const float *dcols, const px_layer_t *l,
                         int n) {
  int P = l->out_h * l->out_w, k = l->k, h = l->in_h, w = l->in_w;
  size_t row = (size_t)n * P;
  memset(dx, 0, (size_t)n * l->in_size * sizeof(float));
  for (int b = 0; b < n; b++)
    for (int ci = 0; ci < l->in_c; ci++) {
      float *d = dx + ((size_t)b * l->in_c + ci) * h * w;
      for (int ky = 0; ky < k; ky++)
        for (int kx = 0; kx < k; kx++) {
          const float *src =
              dcols + ((size_t)(ci * k + ky) * k + kx) * row + (size_t)b * P;
          int x0 = l->pad - kx > 0 ? l->pad - kx : 0;
          int x1 = w + l->pad - kx < l->out_w ? w + l->pad - kx : l->out_w;
          for (int oy = 0; oy < l->out_h; oy++) {
            int iy = oy + ky - l->pad;
            if (iy < 0 || iy >= h) continue;
            float *dr = d + (size_t)iy * w + (kx - l->pad);
            const float *sr = src + (size_t)oy * l->out_w;
            for (int ox = x0; ox < x1; ox++)
              dr[ox] = dr[ox] + sr[ox];
          }
        }
    }
}

static void backward_linear(px_trainer_t *t, px_compute_t *c,
                            const px_layer_t *l, size_t pofs, const float *x,
                            const float *dy, float *dx, int n) {
  float *gw = t->grad + pofs, *gb = gw + l->nw;
  int K = (int)l->in_size, N = l->out_c;
  px_gemm_f32(c, 1, 0, N, K, n, dy, N, x, K, 0, gw, K);
  for (int j = 0; j < N; j++)
    gb[j] = 0.0f;
  for (int b = 0; b < n; b++)
    for (int j = 0; j < N; j++)
      gb[j] = gb[j] + dy[(size_t)b * N + j];
  if (dx) px_gemm_f32(c, 0, 0, n, K, N, dy, N, l->w, K, 0, dx, K);
}

static void backward_conv(px_trainer_t *t, px_compute_t *c, const px_layer_t *l,
                          size_t pofs, const float *cols, const float *dy,
                          float *dx, int n) {
  float *gw = t->grad + pofs, *gb = gw + l->nw;
  int P = l->out_h * l->out_w, OC = l->out_c;
  int Q = l->in_c * l->k * l->k, BP = n * P;
  for (int b = 0; b < n; b++)
    for (int o = 0; o < OC; o++)
      memcpy(t->dyt + (size_t)o * BP + (size_t)b * P,
             dy + ((size_t)b * OC + o) * P, (size_t)P * sizeof(float));
  px_gemm_f32(c, 0, 1, OC, Q, BP, t->dyt, BP, cols, BP, 0, gw, Q);
  for (int o = 0; o < OC; o++) {
    float s = 0.0f;
    for (int b = 0; b < n; b++) {
      const float *d = dy + ((size_t)b * OC + o) * P;
      for (int p = 0; p < P; p++)
        s = s + d[p];
    }
    gb[o] = s;
  }
  if (dx) {
    px_gemm_f32(c, 1, 0, Q, BP, OC, l->w, Q, t->dyt, BP, 0, t->dcols, BP);
    col2im_batch(dx, t->dcols, l, n);
  }
}

static void backward_maxpool(const px_layer_t *l, const float *x,
                             const float *dy, float *dx, int n) {
  int h = l->in_h, w = l->in_w, oh = l->out_h, ow = l->out_w;
  memset(dx, 0, (size_t)n * l->in_size * sizeof(float));
  for (int p = 0; p < n * l->in_c; p++) {
    const float *src = x + (size_t)p * h * w;
    const float *g = dy + (size_t)p * oh * ow;
    float *d = dx + (size_t)p * h * w;
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++) {
        int best = (2 * oy) * w + 2 * ox;
        float m = src[best];
        for (int ky = 0; ky < 2; ky++)
          for (int kx = 0; kx < 2; kx++) {
            int i = (2 * oy + ky) * w + 2 * ox + kx;
            if (src[i] > m) m = src[i], best = i;
          }
        d[best] = g[oy * ow + ox];
      }
  }
}

int px_trainer_grad(px_trainer_t *t, px_compute_t *c, const float *x,
                    const uint8_t *labels, int n, float *loss, int *correct) {
  px_net_t *net = t->net;
  int nc = net->cfg.n_classes;
  if (n <= 0 || !x || !labels) return PX_EINVAL;
  for (int b = 0; b < n; b++)
    if (labels[b] >= nc) return PX_EINVAL;
  int rc = reserve(t, n);
  if (!rc) rc = px_net_forward(net, c, x, n, NULL, NULL);
  if (rc) return rc;
  const float *logits = net->act[net->n_layers - 1];
  px_softmax_f32(c, t->probs, logits, n, nc);
  float lsum = 0.0f, inv = 1.0f / (float)n;
  int ok = 0;
  float *d = t->dbuf[0];
  for (int b = 0; b < n; b++) {
    const float *p = t->probs + (size_t)b * nc;
    float py = p[labels[b]];
    lsum = lsum - px_logf(py > 1e-30f ? py : 1e-30f);
    ok += px_argmax_f32(logits + (size_t)b * nc, nc) == labels[b];
    for (int j = 0; j < nc; j++)
      d[(size_t)b * nc + j] = (p[j] - (j == labels[b] ? 1.0f : 0.0f)) * inv;
  }
  if (loss) *loss = lsum * inv;
  if (correct) *correct = ok;
  /* parameter offsets per layer */
  size_t ofs[PX_NET_MAX_LAYERS], o = 0;
  for (int i = 0; i < net->n_layers; i++) {
    ofs[i] = o;
    o += net->layer[i].nw + net->layer[i].nb;
  }
  int cur = 0;
  for (int i = net->n_layers - 1; i >= 0; i--) {
    const px_layer_t *l = &net->layer[i];
    const float *in = i ? net->act[i - 1] : net->input;
    const float *dy = t->dbuf[cur];
    float *dx = i ? t->dbuf[cur ^ 1] : NULL;
    switch (l->kind) {
    case PX_LAYER_LINEAR:
      backward_linear(t, c, l, ofs[i], in, dy, dx, n);
      break;
    case PX_LAYER_CONV:
      backward_conv(t, c, l, ofs[i], net->cols[i], dy, dx, n);
      break;
    case PX_LAYER_RELU:
      if (dx) {
        const float *y = net->act[i];
        size_t m = (size_t)n * l->out_size;
        for (size_t k = 0; k < m; k++)
          dx[k] = y[k] > 0.0f ? dy[k] : 0.0f;
      }
      break;
    case PX_LAYER_MAXPOOL:
      if (dx) backward_maxpool(l, in, dy, dx, n);
      break;
    }
    cur ^= 1;
  }
  return 0;
}

static void update(px_trainer_t *t, float *w, const float *g, float *m1,
                   float *m2, size_t n, float wd) {
  const px_train_opts_t *o = &t->o;
  float lr = t->lr;
  if (o->optimizer == PX_OPT_SGD) {
    float mu = o->momentum;
    for (size_t i = 0; i < n; i++) {
      m1[i] = mu * m1[i] + (g[i] + wd * w[i]);
      w[i] = w[i] - lr * m1[i];
    }
    return;
  }
  float b1 = o->beta1, b2 = o->beta2, eps = o->eps;
  float c1 = 1.0f - t->b1t, c2 = 1.0f - t->b2t;
  for (size_t i = 0; i < n; i++) {
    m1[i] = b1 * m1[i] + (1.0f - b1) * g[i];
    m2[i] = b2 * m2[i] + (1.0f - b2) * (g[i] * g[i]);
    float mh = m1[i] / c1, vh = m2[i] / c2;
    w[i] = w[i] - lr * (mh / (sqrtf(vh) + eps) + wd * w[i]);
  }
}

int px_trainer_step(px_trainer_t *t, px_compute_t *c, const float *x,
                    const uint8_t *labels, int n, float *loss, int *correct) {
  int rc = px_trainer_grad(t, c, x, labels, n, loss, correct);
  if (rc) return rc;
  px_net_t *net = t->net;
  t->b1t = t->b1t * t->o.beta1;
  t->b2t = t->b2t * t->o.beta2;
  size_t o = 0;
  for (int i = 0; i < net->n_layers; i++) {
    const px_layer_t *l = &net->layer[i];
    if (!l->nw) continue;
    update(t, l->w, t->grad + o, t->m1 + o, t->m2 ? t->m2 + o : NULL, l->nw,
           t->o.weight_decay);
    o += l->nw;
    update(t, l->b, t->grad + o, t->m1 + o, t->m2 ? t->m2 + o : NULL, l->nb,
           0.0f);
    o += l->nb;
  }
  return 0;
}

int px_trainer_epoch(px_trainer_t *t, px_compute_t *c, const uint8_t *images,
                     const uint8_t *labels, size_t n,
                     px_train_progress_fn progress, void *ud,
                     px_train_progress_t *result) {
  if (!n || !images || !labels) return PX_EINVAL;
  size_t in = px_net_input_size(t->net);
  int B = t->o.batch;
  if (!t->xbatch) {
    t->xbatch = px_malloc((size_t)B * in * sizeof(float));
    t->lbatch = px_malloc((size_t)B);
    if (!t->xbatch || !t->lbatch) return PX_ENOMEM;
  }
  if (t->perm_n != n) {
    size_t *p = px_realloc(t->perm, n * sizeof *p);
    if (!p) return PX_ENOMEM;
    t->perm = p;
    t->perm_n = n;
  }
  for (size_t i = 0; i < n; i++)
    t->perm[i] = i;
  for (size_t i = n - 1; i > 0; i--) {
    size_t j = (size_t)px_rng_below(&t->rng, (uint64_t)i + 1);
    size_t tmp = t->perm[i];
    t->perm[i] = t->perm[j];
    t->perm[j] = tmp;
  }
  px_train_progress_t pr;
  memset(&pr, 0, sizeof pr);
  pr.epoch = result ? result->epoch : 0;
  pr.total = n;
  uint64_t t0 = px_time_mono_ns();
  double lsum = 0.0;
  size_t ok = 0;
  for (size_t s = 0; s < n; s += (size_t)B) {
    int b = (int)(n - s < (size_t)B ? n - s : (size_t)B);
    for (int i = 0; i < b; i++) {
      size_t k = t->perm[s + (size_t)i];
      px_net_pixels_to_input(images + k * in, in, t->xbatch + (size_t)i * in);
      t->lbatch[i] = labels[k];
    }
    float loss;
    int corr;
    int rc = px_trainer_step(t, c, t->xbatch, t->lbatch, b, &loss, &corr);
    if (rc) return rc;
    lsum += (double)loss * b;
    ok += (size_t)corr;
    pr.done = s + (size_t)b;
    pr.loss = lsum / (double)pr.done;
    pr.accuracy = (double)ok / (double)pr.done;
    double dt = (double)(px_time_mono_ns() - t0) * 1e-9;
    pr.samples_per_s = dt > 0 ? (double)pr.done / dt : 0.0;
    pr.finished = pr.done == n;
    if (progress) progress(ud, &pr);
  }
  t->lr = t->lr * t->o.lr_decay;
  if (result) *result = pr;
  return 0;
}
