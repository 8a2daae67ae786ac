/*
 * manifest.c — a model's layer manifest for the market contract
 * (plexus/market_chain.h): one reference per trace layer, binding the
 * layer's kind, shapes and weights, so that the on-chain referee can check
 * that a layer posted in a dispute is the job's layer.
 *
 *   layer_ref = BLAKE2b-256("plexus-layer-v1" || u8 kind || u32le in_c,
 *               in_h, in_w, out_c, k, pad || weights_ref)
 *   weights_ref = px_dispute_weights_ref(weights, bias) (the hash of no
 *                 bytes for relu and max-pooling)
 *
 * The fields are those of px_dispute_layer_t, filled from px_layer_t the
 * way a dispute posts them: linear, relu and max-pool have k = pad = 0; a
 * conv has its kernel and padding; out_c is the output channel count (the
 * input's for relu and max-pool).  Pure: no allocation, no I/O.
 */
#include <string.h>

#include "plexus/codec.h"
#include "plexus/crypto.h"
#include "plexus/market_chain.h"
#include "base/px_internal.h"

static void layer_ref(uint8_t kind, const uint32_t dims[6],
                      const uint8_t weights_ref[PX_HASH_LEN],
                      uint8_t out[PX_HASH_LEN]) {
  static const char dom[] = "plexus-layer-v1";
  uint8_t buf[sizeof dom - 1 + 1 + 24 + PX_HASH_LEN];
  size_t o = 0;
  memcpy(buf, dom, sizeof dom - 1);
  o += sizeof dom - 1;
  buf[o++] = kind;
  for (int i = 0; i < 6; i++, o += 4)
    px_put_u32le(buf + o, dims[i]);
  memcpy(buf + o, weights_ref, PX_HASH_LEN);
  px_hash(out, buf, sizeof buf);
}

void px_market_layer_ref(const px_dispute_layer_t *l,
                         uint8_t out[PX_HASH_LEN]) {
  const uint32_t dims[6] = {l->in_c, l->in_h, l->in_w, l->out_c, l->k, l->pad};
  layer_ref(l->kind, dims, l->weights_ref, out);
}

int px_market_manifest(const px_net_t *net, px_market_manifest_t *m) {
  if (!net || !m) return PX_EINVAL;
  memset(m, 0, sizeof *m);
  int n = px_net_layer_count(net);
  if (n < 1 || n > PX_MARKET_MAX_LAYERS) return PX_ELIMIT;
  for (int i = 0; i < n; i++) {
    const px_layer_t *l = px_net_layer(net, i);
    uint8_t wref[PX_HASH_LEN];
    px_dispute_weights_ref(l->w, l->w ? l->nw : 0, l->b, l->b ? l->nb : 0,
                           wref);
    int conv = l->kind == PX_LAYER_CONV;
    const uint32_t dims[6] = {
        (uint32_t)l->in_c,         (uint32_t)l->in_h,
        (uint32_t)l->in_w,         (uint32_t)l->out_c,
        conv ? (uint32_t)l->k : 0, conv ? (uint32_t)l->pad : 0};
    layer_ref((uint8_t)l->kind, dims, wref, m->layer_ref[i]);
  }
  m->n_layers = (uint32_t)n;
  return 0;
}
