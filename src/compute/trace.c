/*
 * trace.c — trace commitment: one Merkle leaf per layer output.
 *
 * leaf_i = px_merkle_leaf(f32 bytes of layer i's output, little-endian)
 * = BLAKE2b-256(0x00 || bytes); root = px_merkle_root(leaves) (RFC 6962
 * shape, plexus/crypto.h).  Two runs that agree bit for bit give the same
 * root; when they differ, comparing leaves (or bisecting with Merkle
 * proofs) finds the first layer that differs.  At most
 * PX_TRACE_MAX_LAYERS leaves (PX_ELIMIT beyond).  This host is
 * little-endian (x86-64), so the bytes are hashed as they lie in memory.
 */
#include <stdint.h>
#include <string.h>

#include "plexus/crypto.h"
#include "compute/compute_internal.h"
#include "base/px_internal.h"

void px_trace_init(px_trace_t *t, int enabled) {
  memset(t, 0, sizeof *t);
  t->enabled = enabled;
}

int px_trace_add(px_trace_t *t, const float *x, size_t n) {
  if (!t->enabled) return 0;
  if (t->n >= PX_TRACE_MAX_LAYERS) return PX_ELIMIT;
  if (t->n == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 16;
    if (cap > PX_TRACE_MAX_LAYERS) cap = PX_TRACE_MAX_LAYERS;
    uint8_t(*leaf)[32] = px_realloc(t->leaf, cap * sizeof *leaf);
    if (!leaf) return PX_ENOMEM;
    t->leaf = leaf;
    t->cap = cap;
  }
  px_merkle_leaf(t->leaf[t->n], x, n * sizeof(float));
  t->n++;
  return 0;
}

int px_trace_root(const px_trace_t *t, uint8_t root[32]) {
  return px_merkle_root((const uint8_t(*)[PX_HASH_LEN])t->leaf, t->n, root);
}

void px_trace_release(px_trace_t *t) {
  px_free(t->leaf);
  t->leaf = NULL;
  t->n = t->cap = 0;
}
