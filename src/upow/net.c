/*
 * net.c — the uPoW ternary network family: forward pass, canonical
 * encoding, hashing, data ternarisation, safetensors export and the scorer
 * over the export (docs/upow.md).
 *
 * Why integer-only: a validator on any CPU must reproduce a miner's score
 * bit for bit, so the forward pass uses nothing but int8 trits, int32 sums
 * and comparisons; there is no float anywhere in this file's hot path, no
 * SIMD kernel and no threading, so the result cannot depend on the machine.
 *
 * Forward pass: v = [196 input trits | H hidden states] (hidden start at 0).
 * Each tick every hidden neuron i computes s = sum_k w[i][k] * v[src[i][k]]
 * from the previous tick's v (synchronous update) and takes state +1 if
 * s > thr[i], -1 if s < -thr[i], else 0.  After the hidden update of each
 * tick every output neuron c adds sum_k ow[c][k] * v[osrc[c][k]] to its
 * accumulator; the prediction is the argmax over the 10 accumulators, ties
 * to the lowest index.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "plexus/crypto.h"
#include "plexus/json.h"
#include "plexus/model_io.h"
#include "plexus/upow.h"
#include "base/px_internal.h"

#define NET_MAGIC "PXUN"
#define V_MAX (PX_UPOW_N_IN + PX_UPOW_MAX_HIDDEN)

void px_upow_dims_default(px_upow_dims_t *d) {
  d->n_hidden = 256;
  d->fan_in = 16;
  d->out_fan_in = 96;
  d->ticks = 3;
}

int px_upow_dims_check(const px_upow_dims_t *d) {
  if (!d || d->n_hidden < 1 || d->n_hidden > PX_UPOW_MAX_HIDDEN ||
      d->fan_in < 1 || d->fan_in > PX_UPOW_MAX_FAN_IN || d->out_fan_in < 1 ||
      d->out_fan_in > PX_UPOW_MAX_OUT_FAN_IN || d->ticks < 1 ||
      d->ticks > PX_UPOW_MAX_TICKS)
    return PX_ERANGE;
  return 0;
}

uint64_t px_upow_net_ops(const px_upow_dims_t *d) {
  return (uint64_t)d->ticks * ((uint64_t)d->n_hidden * d->fan_in +
                               (uint64_t)PX_UPOW_N_OUT * d->out_fan_in);
}

/* One allocation holds every array; thr comes first so px_free(thr) frees
 * it all. */
static int net_alloc(px_upow_net_t *n, const px_upow_dims_t *d) {
  memset(n, 0, sizeof *n);
  int rc = px_upow_dims_check(d);
  if (rc) return rc;
  size_t h = d->n_hidden, hk = h * d->fan_in,
         ok = (size_t)PX_UPOW_N_OUT * d->out_fan_in;
  size_t bytes = h * 2 + hk * 2 + ok * 2 + hk + ok;
  uint8_t *p = px_calloc(1, bytes);
  if (!p) return PX_ENOMEM;
  n->dims = *d;
  n->thr = (int16_t *)p;
  n->hsrc = (uint16_t *)(p + h * 2);
  n->osrc = (uint16_t *)(p + h * 2 + hk * 2);
  n->hw = (int8_t *)(p + h * 2 + hk * 2 + ok * 2);
  n->ow = (int8_t *)(p + h * 2 + hk * 2 + ok * 2 + hk);
  return 0;
}

static size_t net_bytes(const px_upow_dims_t *d) {
  size_t hk = (size_t)d->n_hidden * d->fan_in,
         ok = (size_t)PX_UPOW_N_OUT * d->out_fan_in;
  return (size_t)d->n_hidden * 2 + hk * 3 + ok * 3;
}

void px_upow_net_release(px_upow_net_t *n) {
  if (!n) return;
  px_free(n->thr);
  memset(n, 0, sizeof *n);
}

int px_upow_net_copy(px_upow_net_t *dst, const px_upow_net_t *src) {
  int rc = net_alloc(dst, &src->dims);
  if (rc) return rc;
  memcpy(dst->thr, src->thr, net_bytes(&src->dims));
  return 0;
}

int px_upow_net_equal(const px_upow_net_t *a, const px_upow_net_t *b) {
  const px_upow_dims_t *x = &a->dims, *y = &b->dims; /* no padding memcmp */
  return x->n_hidden == y->n_hidden && x->fan_in == y->fan_in &&
         x->out_fan_in == y->out_fan_in && x->ticks == y->ticks &&
         memcmp(a->thr, b->thr, net_bytes(x)) == 0;
}

int px_upow_net_random(const px_upow_dims_t *dims, uint64_t seed,
                       px_upow_net_t *out) {
  int rc = net_alloc(out, dims);
  if (rc) return rc;
  px_rng_t r;
  px_rng_seed(&r, seed ^ 0x75706f77ull);
  uint32_t nv = PX_UPOW_N_IN + dims->n_hidden;
  size_t hk = (size_t)dims->n_hidden * dims->fan_in;
  for (uint32_t i = 0; i < dims->n_hidden; i++)
    out->thr[i] = (int16_t)px_rng_below(&r, dims->fan_in / 4 + 1);
  for (size_t i = 0; i < hk; i++) {
    out->hsrc[i] = (uint16_t)px_rng_below(&r, nv);
    out->hw[i] = (int8_t)((int)px_rng_below(&r, 3) - 1);
  }
  for (size_t i = 0; i < (size_t)PX_UPOW_N_OUT * dims->out_fan_in; i++) {
    out->osrc[i] = (uint16_t)px_rng_below(&r, nv);
    out->ow[i] = (int8_t)((int)px_rng_below(&r, 3) - 1);
  }
  return 0;
}

int px_upow_net_predict(const px_upow_net_t *n, const int8_t *x) {
  int8_t v[V_MAX], nh[PX_UPOW_MAX_HIDDEN];
  const uint32_t h = n->dims.n_hidden, k = n->dims.fan_in,
                 ko = n->dims.out_fan_in;
  int32_t acc[PX_UPOW_N_OUT] = {0};
  memcpy(v, x, PX_UPOW_N_IN);
  memset(v + PX_UPOW_N_IN, 0, h);
  for (int t = 0; t < n->dims.ticks; t++) {
    for (uint32_t i = 0; i < h; i++) {
      const uint16_t *src = n->hsrc + (size_t)i * k;
      const int8_t *w = n->hw + (size_t)i * k;
      int32_t s = 0;
      for (uint32_t j = 0; j < k; j++)
        s += w[j] * v[src[j]];
      int32_t th = n->thr[i];
      nh[i] = (int8_t)(s > th ? 1 : s < -th ? -1 : 0);
    }
    memcpy(v + PX_UPOW_N_IN, nh, h);
    for (uint32_t c = 0; c < PX_UPOW_N_OUT; c++) {
      const uint16_t *src = n->osrc + (size_t)c * ko;
      const int8_t *w = n->ow + (size_t)c * ko;
      int32_t s = 0;
      for (uint32_t j = 0; j < ko; j++)
        s += w[j] * v[src[j]];
      acc[c] += s;
    }
  }
  int best = 0;
  for (int c = 1; c < PX_UPOW_N_OUT; c++)
    if (acc[c] > acc[best]) best = c;
  return best;
}

uint32_t px_upow_net_correct(const px_upow_net_t *n, const px_upow_data_t *d,
                             const uint32_t *idx, size_t k) {
  uint32_t ok = 0;
  for (size_t i = 0; i < k; i++) {
    size_t j = idx ? idx[i] : i;
    ok += px_upow_net_predict(n, d->x + j * PX_UPOW_N_IN) == d->y[j];
  }
  return ok;
}

/* ---- data -----------------------------------------------------------------
 */

void px_upow_ternarise(const uint8_t *img28, int8_t *x196) {
  for (int r = 0; r < PX_UPOW_SIDE; r++)
    for (int c = 0; c < PX_UPOW_SIDE; c++) {
      const uint8_t *p = img28 + (2 * r) * 28 + 2 * c;
      int s = p[0] + p[1] + p[28] + p[29];
      x196[r * PX_UPOW_SIDE + c] = (int8_t)(s < 4 * PX_UPOW_LO    ? -1
                                            : s >= 4 * PX_UPOW_HI ? 1
                                                                  : 0);
    }
}

int px_upow_data_from_mnist(const px_mnist_t *m, size_t max_n,
                            px_upow_data_t *out) {
  memset(out, 0, sizeof *out);
  if (!m || m->rows != 28 || m->cols != 28 || m->n == 0) return PX_EINVAL;
  size_t n = max_n && max_n < m->n ? max_n : m->n;
  out->x = px_malloc(n * PX_UPOW_N_IN);
  out->y = px_malloc(n);
  if (!out->x || !out->y) {
    px_upow_data_release(out);
    return PX_ENOMEM;
  }
  for (size_t i = 0; i < n; i++) {
    px_upow_ternarise(m->images.data + i * 784, out->x + i * PX_UPOW_N_IN);
    out->y[i] = m->labels.data[i];
  }
  out->n = n;
  return 0;
}

void px_upow_data_release(px_upow_data_t *d) {
  if (!d) return;
  px_free(d->x);
  px_free(d->y);
  memset(d, 0, sizeof *d);
}

/* ---- canonical encoding ----------------------------------------------------
 */

static uint8_t trit_code(int8_t w) { return w == 0 ? 0 : w > 0 ? 1 : 2; }

int px_upow_net_encode(const px_upow_net_t *n, px_buf_t *out) {
  int rc = px_upow_dims_check(&n->dims);
  if (rc) return rc;
  const px_upow_dims_t *d = &n->dims;
  size_t hk = (size_t)d->n_hidden * d->fan_in,
         ok = (size_t)PX_UPOW_N_OUT * d->out_fan_in, nt = hk + ok;
  size_t len =
      4 + 1 + 2 + 1 + 2 + 1 + (size_t)d->n_hidden * 2 + nt * 2 + (nt + 3) / 4;
  if ((rc = px_buf_reserve(out, len))) return rc;
  uint8_t *p = out->data + out->len;
  memcpy(p, NET_MAGIC, 4);
  p[4] = PX_UPOW_NET_VERSION;
  px_put_u16le(p + 5, d->n_hidden);
  p[7] = d->fan_in;
  px_put_u16le(p + 8, d->out_fan_in);
  p[10] = d->ticks;
  p += 11;
  for (size_t i = 0; i < d->n_hidden; i++, p += 2)
    px_put_u16le(p, (uint16_t)n->thr[i]);
  for (size_t i = 0; i < hk; i++, p += 2)
    px_put_u16le(p, n->hsrc[i]);
  for (size_t i = 0; i < ok; i++, p += 2)
    px_put_u16le(p, n->osrc[i]);
  memset(p, 0, (nt + 3) / 4);
  for (size_t i = 0; i < nt; i++) {
    int8_t w = i < hk ? n->hw[i] : n->ow[i - hk];
    p[i / 4] |= (uint8_t)(trit_code(w) << (2 * (i % 4)));
  }
  out->len += len;
  return 0;
}

int px_upow_net_decode(const void *data, size_t len, px_upow_net_t *out) {
  memset(out, 0, sizeof *out);
  const uint8_t *p = data;
  if (len > PX_UPOW_NET_MAX_BYTES) return PX_ETOOBIG;
  if (len < 11) return PX_ETRUNC;
  if (memcmp(p, NET_MAGIC, 4) != 0) return PX_EDECODE;
  if (p[4] != PX_UPOW_NET_VERSION) return PX_EVERSION;
  px_upow_dims_t d = {.n_hidden = px_get_u16le(p + 5),
                      .fan_in = p[7],
                      .out_fan_in = px_get_u16le(p + 8),
                      .ticks = p[10]};
  int rc = px_upow_dims_check(&d);
  if (rc) return rc;
  size_t hk = (size_t)d.n_hidden * d.fan_in,
         ok = (size_t)PX_UPOW_N_OUT * d.out_fan_in, nt = hk + ok;
  size_t need = 11 + (size_t)d.n_hidden * 2 + nt * 2 + (nt + 3) / 4;
  if (len < need) return PX_ETRUNC;
  if (len > need) return PX_ETRAILING;
  if ((rc = net_alloc(out, &d))) return rc;
  uint32_t nv = PX_UPOW_N_IN + d.n_hidden;
  p += 11;
  for (size_t i = 0; i < d.n_hidden; i++, p += 2) {
    uint16_t t = px_get_u16le(p);
    if (t > d.fan_in) goto bad;
    out->thr[i] = (int16_t)t;
  }
  for (size_t i = 0; i < nt; i++, p += 2) {
    uint16_t s = px_get_u16le(p);
    if (s >= nv) goto bad;
    if (i < hk)
      out->hsrc[i] = s;
    else
      out->osrc[i - hk] = s;
  }
  for (size_t i = 0; i < nt; i++) {
    uint8_t c = (uint8_t)((p[i / 4] >> (2 * (i % 4))) & 3);
    if (c == 3) goto bad;
    int8_t w = (int8_t)(c == 0 ? 0 : c == 1 ? 1 : -1);
    if (i < hk)
      out->hw[i] = w;
    else
      out->ow[i - hk] = w;
  }
  if (nt % 4 && (p[nt / 4] >> (2 * (nt % 4))) != 0) goto bad;
  return 0;
bad:
  px_upow_net_release(out);
  return PX_EDECODE;
}

int px_upow_net_hash(const px_upow_net_t *n, uint8_t out[32]) {
  px_buf_t b;
  px_buf_init(&b, PX_UPOW_NET_MAX_BYTES);
  int rc = px_upow_net_encode(n, &b);
  if (!rc) px_hash(out, b.data, b.len);
  px_buf_release(&b);
  return rc;
}

/* ---- safetensors export and its scorer -------------------------------------
 */

#define FAMILY "upow-ternary"

int px_upow_net_export_safetensors(const px_upow_net_t *n, const char *st_path,
                                   const char *config_path) {
  int rc = px_upow_dims_check(&n->dims);
  if (rc) return rc;
  const px_upow_dims_t *d = &n->dims;
  size_t h = d->n_hidden, nv = PX_UPOW_N_IN + h;
  int8_t *hw = px_calloc(h, nv), *ow = px_calloc(PX_UPOW_N_OUT, nv),
         *thr = px_calloc(h, 1);
  px_buf_t js;
  px_buf_init(&js, 1u << 16);
  if (!hw || !ow || !thr) {
    rc = PX_ENOMEM;
    goto out;
  }
  /* |sum| <= fan_in <= 64 and <= out_fan_in <= 127: fits int8. */
  for (size_t i = 0; i < h; i++) {
    thr[i] = (int8_t)n->thr[i];
    for (size_t j = 0; j < d->fan_in; j++)
      hw[i * nv + n->hsrc[i * d->fan_in + j]] += n->hw[i * d->fan_in + j];
  }
  for (size_t c = 0; c < PX_UPOW_N_OUT; c++)
    for (size_t j = 0; j < d->out_fan_in; j++)
      ow[c * nv + n->osrc[c * d->out_fan_in + j]] +=
          n->ow[c * d->out_fan_in + j];
  px_st_entry_t e[3] = {
      {"hidden.weight", PX_DTYPE_I8, 2, {h, nv}, hw},
      {"hidden.threshold", PX_DTYPE_I8, 1, {h}, thr},
      {"output.weight", PX_DTYPE_I8, 2, {PX_UPOW_N_OUT, nv}, ow},
  };
  char ticks[8];
  snprintf(ticks, sizeof ticks, "%u", (unsigned)d->ticks);
  const char *meta[] = {"format", "pt", "family", FAMILY, "ticks", ticks};
  if ((rc = px_st_write_file(st_path, e, 3, meta, 3))) goto out;
  px_json_writer_t w;
  px_json_writer_init(&w, &js);
  px_json_write_object_begin(&w);
  px_json_write_key(&w, "architecture");
  px_json_write_str(&w, FAMILY);
  px_json_write_key(&w, "dims");
  px_json_write_array_begin(&w);
  px_json_write_u64(&w, PX_UPOW_N_IN);
  px_json_write_u64(&w, h);
  px_json_write_u64(&w, PX_UPOW_N_OUT);
  px_json_write_array_end(&w);
  px_json_write_key(&w, "ticks");
  px_json_write_u64(&w, d->ticks);
  px_json_write_key(&w, "fan_in");
  px_json_write_u64(&w, d->fan_in);
  px_json_write_key(&w, "out_fan_in");
  px_json_write_u64(&w, d->out_fan_in);
  px_json_write_key(&w, "input");
  px_json_write_str(&w, "28x28 u8, 2x2 sum pooled to 14x14, <128 -> -1, "
                        ">=512 -> +1, else 0");
  px_json_write_key(&w, "state");
  px_json_write_str(&w, "h' = +1 if W v > thr, -1 if W v < -thr, else 0; "
                        "v = [input | h], h starts at 0");
  px_json_write_key(&w, "output");
  px_json_write_str(&w, "argmax over ticks of sum O v, ties to lowest");
  px_json_write_object_end(&w);
  if ((rc = px_json_writer_finish(&w))) goto out;
  rc = px_model_config_save(config_path, &js);
out:
  px_free(hw);
  px_free(ow);
  px_free(thr);
  px_buf_release(&js);
  return rc;
}

static const int8_t *st_i8(const px_safetensors_t *st, const char *name,
                           int ndim, uint64_t d0, uint64_t d1) {
  const px_st_tensor_t *t = px_st_find(st, name);
  if (!t || t->dtype != PX_DTYPE_I8 || t->ndim != ndim || t->shape[0] != d0 ||
      (ndim == 2 && t->shape[1] != d1))
    return NULL;
  return t->data; /* int8: any address is aligned */
}

int px_upow_eval_export(const char *st_path, const char *config_path,
                        const px_mnist_t *m, size_t max_images,
                        uint32_t *correct, uint32_t *total) {
  px_arena_t ar;
  px_arena_init(&ar, 1u << 14, 1u << 22);
  px_safetensors_t *st = NULL;
  const px_json_t *cfg;
  const char *arch;
  int dims[3];
  size_t nd;
  uint64_t ticks;
  int rc = px_model_config_load(&ar, config_path, &cfg);
  if (rc) goto out;
  rc = PX_EDECODE;
  if (px_json_get_str(cfg, "architecture", &arch) || strcmp(arch, FAMILY) ||
      px_model_config_get_dims(cfg, "dims", dims, 3, &nd) || nd != 3 ||
      dims[0] != PX_UPOW_N_IN || dims[1] > PX_UPOW_MAX_HIDDEN ||
      dims[2] != PX_UPOW_N_OUT || px_json_get_u64(cfg, "ticks", &ticks) ||
      ticks < 1 || ticks > PX_UPOW_MAX_TICKS)
    goto out;
  if (!m || m->rows != 28 || m->cols != 28) {
    rc = PX_EINVAL;
    goto out;
  }
  if ((rc = px_st_open(st_path, NULL, &st))) goto out;
  size_t h = (size_t)dims[1], nv = PX_UPOW_N_IN + h;
  const int8_t *hw = st_i8(st, "hidden.weight", 2, h, nv);
  const int8_t *thr = st_i8(st, "hidden.threshold", 1, h, 0);
  const int8_t *ow = st_i8(st, "output.weight", 2, PX_UPOW_N_OUT, nv);
  rc = PX_EDECODE;
  if (!hw || !thr || !ow) goto out;
  size_t n = max_images && max_images < m->n ? max_images : m->n;
  uint32_t ok = 0;
  int8_t v[V_MAX], nh[PX_UPOW_MAX_HIDDEN];
  for (size_t im = 0; im < n; im++) {
    int32_t acc[PX_UPOW_N_OUT] = {0};
    px_upow_ternarise(m->images.data + im * 784, v);
    memset(v + PX_UPOW_N_IN, 0, h);
    for (uint64_t t = 0; t < ticks; t++) {
      for (size_t i = 0; i < h; i++) {
        int32_t s = 0;
        for (size_t j = 0; j < nv; j++)
          s += hw[i * nv + j] * v[j];
        nh[i] = (int8_t)(s > thr[i] ? 1 : s < -thr[i] ? -1 : 0);
      }
      memcpy(v + PX_UPOW_N_IN, nh, h);
      for (size_t c = 0; c < PX_UPOW_N_OUT; c++) {
        int32_t s = 0;
        for (size_t j = 0; j < nv; j++)
          s += ow[c * nv + j] * v[j];
        acc[c] += s;
      }
    }
    int best = 0;
    for (int c = 1; c < PX_UPOW_N_OUT; c++)
      if (acc[c] > acc[best]) best = c;
    ok += best == m->labels.data[im];
  }
  *correct = ok;
  *total = (uint32_t)n;
  rc = 0;
out:
  px_st_free(st);
  px_arena_release(&ar);
  return rc;
}
