/*
 * shard.c — one shard of a market job through a classifier, with the
 * per-sample trace the market commits to (docs/market.md "Runtime and
 * wire", node/market_rt.h).
 *
 * Why per-sample: a dispute re-executes one layer for ONE sample on chain
 * (px_dispute_verdict with n = 1), so every layer leaf must open down to
 * single samples.  For a shard of n samples the leaf of layer i is
 *   layer_leaf[i] = px_merkle_root(s_0 .. s_{n-1}),
 *   s_j = px_merkle_leaf(f32 LE bytes of sample j's output of layer i)
 * which is exactly the leaf px_trace_add makes for a buffer, so with n = 1
 * (RFC 6962: the root of one leaf is that leaf) layer_leaf[i] = s_0 and
 * the referee's leaf rule holds unchanged.  output = layer_leaf[last],
 * trace_root = px_merkle_root(layer_leaf[0..n_layers)).
 *
 * Determinism: px_net_forward is bit-exact at every SIMD level and thread
 * count and each sample's outputs do not depend on the rest of the batch,
 * so the leaves are the same on every machine (test_market_wire checks
 * both).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "plexus/crypto.h"
#include "plexus/model.h"
#include "node/market_rt.h"
#include "base/px_internal.h"

/* TEST ONLY (market.fault = perturb): nudge elements of layer `layer`'s
 * output by one ulp, one more element at a time, until the logits change
 * (a single ulp may be absorbed by a later rounding), then finish the
 * pass from there. */
static int perturb(px_net_t *net, px_compute_t *c, int layer, uint32_t n,
                   float *logits, size_t n_logits) {
  const px_layer_t *l = px_net_layer(net, layer);
  int bn = 0;
  float *act = px_net_activation(net, layer, &bn);
  if (!l || !act) return PX_EINVAL;
  float *orig = px_malloc(n_logits * sizeof *orig);
  if (!orig) return PX_ENOMEM;
  memcpy(orig, logits, n_logits * sizeof *orig);
  size_t total = (size_t)n * l->out_size;
  int rc = 0, changed = 0;
  for (size_t k = 0; k < total && k < 4096 && !changed; k++) {
    act[k] = act[k] == 0.0f ? 1.0f : nextafterf(act[k], INFINITY);
    if ((rc = px_net_forward_from(net, c, layer + 1, logits))) break;
    changed = memcmp(orig, logits, n_logits * sizeof *orig) != 0;
  }
  px_free(orig);
  return rc;
}

int px_shard_run_fault(px_net_t *net, px_compute_t *c, const float *x,
                       uint32_t n, float *logits, px_shard_trace_t *tr,
                       uint8_t (**sample_leaves)[PX_HASH_LEN],
                       int perturb_layer) {
  if (sample_leaves) *sample_leaves = NULL;
  if (!net || !x || !logits || !tr || n < 1 || n > PX_MKT_MAX_SHARD_SAMPLES)
    return PX_EINVAL;
  int L = px_net_layer_count(net);
  if (L < 1 || L > PX_MARKET_MAX_LAYERS) return PX_EINVAL;
  int rc = px_net_forward(net, c, x, (int)n, logits, NULL);
  if (rc) return rc;
  size_t classes = (size_t)px_net_config(net)->n_classes;
  if (perturb_layer >= 0 && perturb_layer < L - 1 &&
      (rc = perturb(net, c, perturb_layer, n, logits, n * classes)))
    return rc;
  uint8_t(*lv)[PX_HASH_LEN] = px_malloc((size_t)L * n * PX_HASH_LEN);
  if (!lv) return PX_ENOMEM;
  memset(tr, 0, sizeof *tr);
  tr->n_layers = (uint32_t)L;
  for (int i = 0; i < L && !rc; i++) {
    const px_layer_t *l = px_net_layer(net, i);
    int bn = 0;
    const float *act = px_net_activation(net, i, &bn);
    if (!act || bn != (int)n) {
      rc = PX_ESTATE;
      break;
    }
    uint8_t(*row)[PX_HASH_LEN] = lv + (size_t)i * n;
    for (uint32_t j = 0; j < n; j++)
      px_merkle_leaf(row[j], act + (size_t)j * l->out_size,
                     l->out_size * sizeof(float));
    rc = px_merkle_root((const uint8_t(*)[PX_HASH_LEN])row, n,
                        tr->layer_leaf[i]);
  }
  if (!rc)
    rc = px_merkle_root((const uint8_t(*)[PX_HASH_LEN])tr->layer_leaf,
                        (size_t)L, tr->trace_root);
  if (rc) {
    px_free(lv);
    memset(tr, 0, sizeof *tr);
    return rc;
  }
  memcpy(tr->output, tr->layer_leaf[L - 1], PX_HASH_LEN);
  if (sample_leaves)
    *sample_leaves = lv;
  else
    px_free(lv);
  return 0;
}

int px_shard_run(px_net_t *net, px_compute_t *c, const float *x, uint32_t n,
                 float *logits, px_shard_trace_t *tr,
                 uint8_t (**sample_leaves)[PX_HASH_LEN]) {
  return px_shard_run_fault(net, c, x, n, logits, tr, sample_leaves, -1);
}

int px_shard_trace_from_leaves(const uint8_t (*leaves)[PX_HASH_LEN],
                               uint32_t n_layers, uint32_t n,
                               px_shard_trace_t *tr) {
  if (!leaves || n_layers < 1 || n_layers > PX_MARKET_MAX_LAYERS || n < 1)
    return PX_EINVAL;
  memset(tr, 0, sizeof *tr);
  tr->n_layers = n_layers;
  int rc = 0;
  for (uint32_t i = 0; i < n_layers && !rc; i++)
    rc = px_merkle_root(leaves + (size_t)i * n, n, tr->layer_leaf[i]);
  if (!rc)
    rc = px_merkle_root((const uint8_t(*)[PX_HASH_LEN])tr->layer_leaf, n_layers,
                        tr->trace_root);
  if (!rc) memcpy(tr->output, tr->layer_leaf[n_layers - 1], PX_HASH_LEN);
  return rc;
}

int px_shard_output_hash(const float *logits, uint32_t n, uint32_t classes,
                         uint8_t out[PX_HASH_LEN]) {
  if (!logits || n < 1 || n > PX_MKT_MAX_SHARD_SAMPLES || classes < 1)
    return PX_EINVAL;
  uint8_t(*lv)[PX_HASH_LEN] = px_malloc((size_t)n * PX_HASH_LEN);
  if (!lv) return PX_ENOMEM;
  for (uint32_t j = 0; j < n; j++)
    px_merkle_leaf(lv[j], logits + (size_t)j * classes,
                   (size_t)classes * sizeof(float));
  int rc = px_merkle_root((const uint8_t(*)[PX_HASH_LEN])lv, n, out);
  px_free(lv);
  return rc;
}
