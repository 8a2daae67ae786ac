/*
 * blob.c — content-addressed blobs (plexus/market.h, docs/market.md).
 *
 * A blob is cut into PX_BLOB_CHUNK-byte chunks; each chunk's leaf is
 * px_merkle_leaf(chunk) and the blob is named by the RFC 6962 Merkle root
 * over the leaves.  Chunk lengths are fixed by the blob size, so a verifier
 * that knows (root, size) accepts exactly one byte string per chunk index.
 * The replicated store of a later issue keeps this naming; only the
 * transport changes.
 */
#include <stdint.h>
#include <string.h>

#include "plexus/crypto.h"
#include "plexus/market.h"
#include "base/px_internal.h"

uint64_t px_blob_chunk_count(uint64_t size) {
  return size / PX_BLOB_CHUNK + (size % PX_BLOB_CHUNK != 0);
}

size_t px_blob_chunk_len(uint64_t size, uint64_t index) {
  uint64_t n = px_blob_chunk_count(size);
  if (index >= n) return 0;
  if (index + 1 < n) return PX_BLOB_CHUNK;
  uint64_t rem = size - index * PX_BLOB_CHUNK;
  return (size_t)rem;
}

/* Leaves of an in-memory blob, heap (px_free). */
static int blob_leaves(const void *data, size_t size,
                       uint8_t (**out)[PX_HASH_LEN], size_t *n_out) {
  uint64_t n = px_blob_chunk_count(size);
  *out = NULL;
  *n_out = 0;
  if (n > PX_BLOB_MAX_CHUNKS) return PX_ETOOBIG;
  if (n == 0) return 0;
  uint8_t(*leaves)[PX_HASH_LEN] = px_calloc((size_t)n, PX_HASH_LEN);
  if (!leaves) return PX_ENOMEM;
  const uint8_t *p = data;
  for (uint64_t i = 0; i < n; i++)
    px_merkle_leaf(leaves[i], p + i * PX_BLOB_CHUNK,
                   px_blob_chunk_len(size, i));
  *out = leaves;
  *n_out = (size_t)n;
  return 0;
}

int px_blob_root(const void *data, size_t size, uint8_t root[PX_HASH_LEN]) {
  if (!data && size) return PX_EINVAL;
  uint8_t(*leaves)[PX_HASH_LEN];
  size_t n;
  int rc = blob_leaves(data, size, &leaves, &n);
  if (rc) return rc;
  rc = px_merkle_root((const uint8_t(*)[PX_HASH_LEN])leaves, n, root);
  px_free(leaves);
  return rc;
}

int px_blob_proof(const void *data, size_t size, uint64_t index,
                  uint8_t (*path)[PX_HASH_LEN], size_t *depth) {
  *depth = 0;
  if (!data || index >= px_blob_chunk_count(size)) return PX_EINVAL;
  uint8_t(*leaves)[PX_HASH_LEN];
  size_t n;
  int rc = blob_leaves(data, size, &leaves, &n);
  if (rc) return rc;
  rc = px_merkle_proof((const uint8_t(*)[PX_HASH_LEN])leaves, n, (size_t)index,
                       path, depth);
  px_free(leaves);
  return rc;
}

int px_blob_verify_chunk(const uint8_t root[PX_HASH_LEN], uint64_t size,
                         uint64_t index, const void *chunk, size_t len,
                         const uint8_t (*path)[PX_HASH_LEN], size_t depth) {
  uint64_t n = px_blob_chunk_count(size);
  if (n == 0 || n > PX_BLOB_MAX_CHUNKS || index >= n) return PX_EINVAL;
  if (len != px_blob_chunk_len(size, index) || (!chunk && len))
    return PX_EINVAL;
  uint8_t leaf[PX_HASH_LEN];
  px_merkle_leaf(leaf, chunk, len);
  return px_merkle_verify(root, leaf, (size_t)index, (size_t)n, path, depth);
}
