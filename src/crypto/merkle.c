/*
 * merkle.c — binary Merkle trees over BLAKE2b-256 (RFC 6962 / RFC 9162).
 *
 * Shape and hashing follow RFC 6962 section 2.1 exactly, with BLAKE2b-256
 * in place of SHA-256:
 *
 *   MTH({})      = H("")
 *   MTH({d0})    = H(0x00 || d0)                     (leaf hash)
 *   MTH(D[0:n])  = H(0x01 || MTH(D[0:k]) || MTH(D[k:n]))
 *                  where k is the largest power of two < n
 *
 * The 0x00/0x01 prefixes keep a leaf from ever being confused with an inner
 * node (second-preimage resistance).  Callers hand in leaf hashes already
 * made with px_merkle_leaf(); these functions only build the tree above
 * them.
 *
 * How the root is computed: leaves are pushed left to right onto a stack of
 * perfect subtrees, merging the top two whenever they have the same size
 * (the stack mirrors the binary digits of the count so far, so it never
 * holds more than 65 entries).  At the end the stack is folded from right to
 * left; the result is exactly RFC 6962's left-heavy tree.  That is O(n) time
 * and O(log n) memory, with no heap and no recursion.
 *
 * Audit paths (RFC 6962 section 2.1.1, PATH(m, D[n])) are built by walking
 * from the root down: at each split the subtree not holding the leaf is
 * hashed (with the same stack method) and becomes one path entry.  The
 * subtrees hashed on the way down are disjoint, so a proof costs O(n)
 * hashes in total.  Entries are collected top-down and then reversed, since
 * the path is stored leaf-side first.
 *
 * Verification is the algorithm of RFC 9162 section 2.1.3.2, which needs
 * only the index and the tree size, not the tree.
 */
#include <assert.h>
#include <string.h>

#include <sodium.h>

#include "plexus/crypto.h"

#include "base/px_internal.h"

void px_merkle_leaf(uint8_t out[PX_HASH_LEN], const void *data, size_t n) {
  static const uint8_t prefix = 0x00;
  px_hash_state_t st;
  px_hash_init(&st);
  px_hash_update(&st, &prefix, 1);
  if (n) px_hash_update(&st, data, n);
  px_hash_final(&st, out);
}

void px_merkle_node(uint8_t out[PX_HASH_LEN], const uint8_t l[PX_HASH_LEN],
                    const uint8_t r[PX_HASH_LEN]) {
  uint8_t buf[1 + 2 * PX_HASH_LEN];
  buf[0] = 0x01;
  memcpy(buf + 1, l, PX_HASH_LEN);
  memcpy(buf + 1 + PX_HASH_LEN, r, PX_HASH_LEN);
  px_hash(out, buf, sizeof buf);
}

/* Largest power of two strictly below n (n >= 2).  Written as k < n - k so
 * it cannot overflow for n near SIZE_MAX. */
static size_t split_point(size_t n) {
  assert(n >= 2);
  size_t k = 1;
  while (k < n - k)
    k <<= 1;
  return k;
}

/* MTH over cnt >= 1 leaf hashes (see the top comment). */
static void subtree_root(const uint8_t (*leaves)[PX_HASH_LEN], size_t cnt,
                         uint8_t out[PX_HASH_LEN]) {
  uint8_t stack[PX_MERKLE_MAX_DEPTH + 1][PX_HASH_LEN];
  size_t top = 0; /* entries in use */
  assert(cnt >= 1);
  for (size_t i = 0; i < cnt; i++) {
    memcpy(stack[top++], leaves[i], PX_HASH_LEN);
    /* After leaf i, one merge per trailing 1 bit of i: those are the
     * perfect subtrees of equal size that just became siblings. */
    for (size_t j = i; j & 1; j >>= 1) {
      assert(top >= 2);
      px_merkle_node(stack[top - 2], stack[top - 2], stack[top - 1]);
      top--;
    }
  }
  while (top > 1) {
    px_merkle_node(stack[top - 2], stack[top - 2], stack[top - 1]);
    top--;
  }
  memcpy(out, stack[0], PX_HASH_LEN);
}

int px_merkle_root(const uint8_t (*leaves)[PX_HASH_LEN], size_t n,
                   uint8_t root[PX_HASH_LEN]) {
  if (!root) return PX_EINVAL;
  if (n == 0) {
    px_hash(root, "", 0);
    return 0;
  }
  if (!leaves) return PX_EINVAL;
  subtree_root(leaves, n, root);
  return 0;
}

int px_merkle_proof(const uint8_t (*leaves)[PX_HASH_LEN], size_t n,
                    size_t index, uint8_t (*path)[PX_HASH_LEN],
                    size_t *depth_out) {
  if (!leaves || !path || !depth_out || n == 0 || index >= n) return PX_EINVAL;
  size_t lo = 0, cnt = n, m = index, d = 0;
  while (cnt > 1) {
    size_t k = split_point(cnt);
    assert(d < PX_MERKLE_MAX_DEPTH);
    if (m < k) {
      subtree_root(leaves + lo + k, cnt - k, path[d++]);
      cnt = k;
    } else {
      subtree_root(leaves + lo, k, path[d++]);
      lo += k;
      m -= k;
      cnt -= k;
    }
  }
  /* Collected root-side first; the path is stored leaf-side first. */
  for (size_t i = 0; i < d / 2; i++) {
    uint8_t t[PX_HASH_LEN];
    memcpy(t, path[i], PX_HASH_LEN);
    memcpy(path[i], path[d - 1 - i], PX_HASH_LEN);
    memcpy(path[d - 1 - i], t, PX_HASH_LEN);
  }
  *depth_out = d;
  return 0;
}

int px_merkle_verify(const uint8_t root[PX_HASH_LEN],
                     const uint8_t leaf[PX_HASH_LEN], size_t index, size_t n,
                     const uint8_t (*path)[PX_HASH_LEN], size_t depth) {
  if (!root || !leaf || (depth && !path)) return PX_EINVAL;
  /* RFC 9162 2.1.3.2 step 1. */
  if (n == 0 || index >= n || depth > PX_MERKLE_MAX_DEPTH) return PX_EINVAL;
  size_t fn = index, sn = n - 1; /* step 2 */
  uint8_t r[PX_HASH_LEN];
  memcpy(r, leaf, PX_HASH_LEN); /* step 3 */
  for (size_t i = 0; i < depth; i++) {
    if (sn == 0) return PX_EINVAL; /* 4a: path longer than the tree */
    if ((fn & 1) || fn == sn) {    /* 4b: we are a right child */
      px_merkle_node(r, path[i], r);
      /* A last node with no sibling is promoted: climb past those levels. */
      while (!(fn & 1) && fn != 0) {
        fn >>= 1;
        sn >>= 1;
      }
    } else { /* left child */
      px_merkle_node(r, r, path[i]);
    }
    fn >>= 1; /* 4c */
    sn >>= 1;
  }
  if (sn != 0) return PX_EINVAL; /* step 5: path shorter than the tree */
  if (sodium_memcmp(r, root, PX_HASH_LEN) != 0) return PX_EAUTH;
  return 0;
}
