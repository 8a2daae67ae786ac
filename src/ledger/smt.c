/*
 * smt.c — the authenticated state map: a compressed sparse Merkle tree.
 *
 * Conceptually a binary tree of depth 256 over every possible 256-bit key
 * hash kh = BLAKE2b-256(key), read most significant bit first.  Almost all
 * of it is empty, so it is stored compressed (the shape used by Diem's
 * Jellyfish tree and by "shortcut" SMTs):
 *
 *   empty subtree          hash = 32 zero bytes
 *   a subtree holding      hash = H(0x00 || kh || vh), vh = BLAKE2b(value),
 *     exactly one leaf            wherever that subtree sits (no chain of
 *                                 single-child nodes down to depth 256)
 *   any other subtree      hash = H(0x01 || left || right)
 *
 * (0x00/0x01 are px_merkle_leaf/px_merkle_node, RFC 6962 domain
 * separation.)  The shape is a function of the set of leaves only: insertion
 * order never shows in the root.
 *
 * Invariants (asserted in debug builds by the callers' tests):
 *  - every inner node's subtree holds at least two leaves; deletion
 *    collapses an inner node left with a single leaf into that leaf, all
 *    the way up;
 *  - an inner node's hash is valid unless `dirty`; a put or delete marks
 *    its path dirty and smt_root() recomputes only dirty nodes, so a block
 *    touching k keys of n costs about k*log2(n) hashes.
 *
 * Proofs list the sibling hashes on the path from the root to where the
 * key's path ends: at its leaf (membership), at an empty subtree, or at a
 * different leaf whose kh shares the path's prefix (non-membership).  The
 * verifier rebuilds the root from the bottom and compares; domain
 * separation keeps a leaf from posing as an inner node or vice versa.
 *
 * Recursion here walks the tree, never input: depth is at most 257.
 */
#include <assert.h>
#include <string.h>

#include "plexus/codec.h"
#include "plexus/crypto.h"
#include "plexus/ledger.h"

#include "ledger/ledger_internal.h"

#include "base/px_internal.h"

static const uint8_t k_zero[PX_HASH_LEN];

static int bit_at(const uint8_t kh[PX_HASH_LEN], unsigned i) {
  return (kh[i >> 3] >> (7 - (i & 7))) & 1;
}

static const uint8_t *node_hash(const smt_node_t *n) {
  return n ? n->hash : k_zero;
}

static void leaf_hash(uint8_t out[PX_HASH_LEN], const uint8_t kh[PX_HASH_LEN],
                      const uint8_t vh[PX_HASH_LEN]) {
  uint8_t buf[2 * PX_HASH_LEN];
  memcpy(buf, kh, PX_HASH_LEN);
  memcpy(buf + PX_HASH_LEN, vh, PX_HASH_LEN);
  px_merkle_leaf(out, buf, sizeof buf);
}

static void node_free(smt_node_t *n) {
  if (!n) return;
  if (!n->is_leaf) {
    node_free(n->child[0]);
    node_free(n->child[1]);
  } else {
    px_free(n->key);
    px_free(n->val);
  }
  px_free(n);
}

void smt_init(smt_t *t) {
  t->root = NULL;
  t->count = 0;
}

void smt_release(smt_t *t) {
  node_free(t->root);
  smt_init(t);
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n) {
  uint8_t *d = px_malloc(n ? n : 1);
  if (d && n) memcpy(d, p, n);
  return d;
}

static smt_node_t *node_clone(const smt_node_t *n, int *err) {
  if (!n || *err) return NULL;
  smt_node_t *c = px_malloc(sizeof *c);
  if (!c) {
    *err = PX_ENOMEM;
    return NULL;
  }
  *c = *n;
  if (n->is_leaf) {
    c->key = dup_bytes(n->key, n->klen);
    c->val = dup_bytes(n->val, n->vlen);
    if (!c->key || !c->val) {
      px_free(c->key);
      px_free(c->val);
      px_free(c);
      *err = PX_ENOMEM;
      return NULL;
    }
    return c;
  }
  c->child[0] = node_clone(n->child[0], err);
  c->child[1] = node_clone(n->child[1], err);
  if (*err) {
    node_free(c->child[0]);
    node_free(c->child[1]);
    px_free(c);
    return NULL;
  }
  return c;
}

int smt_clone(const smt_t *src, smt_t *dst) {
  int err = 0;
  smt_init(dst);
  dst->root = node_clone(src->root, &err);
  if (err) return err;
  dst->count = src->count;
  return 0;
}

static const smt_node_t *find_leaf(const smt_t *t,
                                   const uint8_t kh[PX_HASH_LEN]) {
  const smt_node_t *n = t->root;
  unsigned depth = 0;
  while (n && !n->is_leaf) {
    n = n->child[bit_at(kh, depth)];
    depth++;
  }
  if (n && memcmp(n->kh, kh, PX_HASH_LEN) == 0) return n;
  return NULL;
}

int smt_get(const smt_t *t, const uint8_t *key, size_t klen,
            const uint8_t **val, size_t *vlen) {
  uint8_t kh[PX_HASH_LEN];
  px_hash(kh, key, klen);
  const smt_node_t *n = find_leaf(t, kh);
  if (!n) {
    if (val) *val = NULL;
    if (vlen) *vlen = 0;
    return PX_ENOTFOUND;
  }
  if (val) *val = n->val;
  if (vlen) *vlen = n->vlen;
  return 0;
}

int smt_put(smt_t *t, const uint8_t *key, size_t klen, const uint8_t *val,
            size_t vlen) {
  if (klen == 0 || klen > PX_LEDGER_KEY_MAX || vlen > PX_LEDGER_VALUE_MAX)
    return PX_EINVAL;
  uint8_t kh[PX_HASH_LEN], vh[PX_HASH_LEN];
  px_hash(kh, key, klen);
  px_hash(vh, val, vlen);

  /* Walk to where the key's path ends, marking the path dirty. */
  smt_node_t **slot = &t->root;
  unsigned depth = 0;
  while (*slot && !(*slot)->is_leaf) {
    (*slot)->dirty = 1;
    slot = &(*slot)->child[bit_at(kh, depth)];
    depth++;
  }
  smt_node_t *old = *slot;
  if (old && memcmp(old->kh, kh, PX_HASH_LEN) == 0) {
    /* A BLAKE2b-256 collision between distinct keys is not a case we can
     * represent; refuse rather than corrupt. */
    if (old->klen != klen || memcmp(old->key, key, klen) != 0)
      return PX_ECRYPTO;
    uint8_t *nv = dup_bytes(val, vlen);
    if (!nv) return PX_ENOMEM;
    px_free(old->val);
    old->val = nv;
    old->vlen = (uint32_t)vlen;
    memcpy(old->vh, vh, PX_HASH_LEN);
    leaf_hash(old->hash, kh, vh);
    return 0;
  }

  /* New leaf: allocate everything first so failure leaves the tree whole. */
  unsigned split = depth;
  if (old)
    while (split < PX_SMT_DEPTH && bit_at(old->kh, split) == bit_at(kh, split))
      split++;
  assert(split < PX_SMT_DEPTH || !old);
  size_t n_inner = old ? (size_t)(split - depth + 1) : 0;
  smt_node_t *leaf = px_calloc(1, sizeof *leaf);
  smt_node_t **inner = n_inner ? px_calloc(n_inner, sizeof *inner) : NULL;
  int err = (!leaf || (n_inner && !inner)) ? PX_ENOMEM : 0;
  for (size_t i = 0; !err && i < n_inner; i++)
    if (!(inner[i] = px_calloc(1, sizeof **inner))) err = PX_ENOMEM;
  if (!err) {
    leaf->key = dup_bytes(key, klen);
    leaf->val = dup_bytes(val, vlen);
    if (!leaf->key || !leaf->val) err = PX_ENOMEM;
  }
  if (err) {
    if (leaf) {
      px_free(leaf->key);
      px_free(leaf->val);
      px_free(leaf);
    }
    for (size_t i = 0; inner && i < n_inner; i++)
      px_free(inner[i]);
    px_free(inner);
    return err;
  }
  leaf->is_leaf = 1;
  leaf->klen = (uint32_t)klen;
  leaf->vlen = (uint32_t)vlen;
  memcpy(leaf->kh, kh, PX_HASH_LEN);
  memcpy(leaf->vh, vh, PX_HASH_LEN);
  leaf_hash(leaf->hash, kh, vh);

  if (!old) {
    *slot = leaf;
  } else {
    /* Inner nodes for the shared prefix, then one that splits the two. */
    for (size_t i = 0; i < n_inner; i++) {
      smt_node_t *in = inner[i];
      in->dirty = 1;
      *slot = in;
      unsigned d = depth + (unsigned)i;
      if (d == split) {
        in->child[bit_at(kh, d)] = leaf;
        in->child[bit_at(old->kh, d)] = old;
      } else {
        slot = &in->child[bit_at(kh, d)];
      }
    }
  }
  px_free(inner);
  t->count++;
  return 0;
}

static smt_node_t *del_rec(smt_node_t *n, const uint8_t kh[PX_HASH_LEN],
                           unsigned depth, int *found) {
  if (!n) return NULL;
  if (n->is_leaf) {
    if (memcmp(n->kh, kh, PX_HASH_LEN) != 0) return n;
    *found = 1;
    node_free(n);
    return NULL;
  }
  int b = bit_at(kh, depth);
  n->child[b] = del_rec(n->child[b], kh, depth + 1, found);
  if (!*found) return n;
  n->dirty = 1;
  smt_node_t *c0 = n->child[0], *c1 = n->child[1];
  /* Collapse a node whose subtree now holds a single leaf (or nothing). */
  if (!c0 && (!c1 || c1->is_leaf)) {
    px_free(n);
    return c1;
  }
  if (!c1 && c0->is_leaf) {
    px_free(n);
    return c0;
  }
  return n;
}

int smt_del(smt_t *t, const uint8_t *key, size_t klen) {
  uint8_t kh[PX_HASH_LEN];
  int found = 0;
  px_hash(kh, key, klen);
  t->root = del_rec(t->root, kh, 0, &found);
  if (found) t->count--;
  return 0;
}

static void rehash(smt_node_t *n) {
  if (!n || n->is_leaf || !n->dirty) return;
  rehash(n->child[0]);
  rehash(n->child[1]);
  px_merkle_node(n->hash, node_hash(n->child[0]), node_hash(n->child[1]));
  n->dirty = 0;
}

void smt_root(smt_t *t, uint8_t out[PX_HASH_LEN]) {
  rehash(t->root);
  memcpy(out, node_hash(t->root), PX_HASH_LEN);
}

int smt_prove(const smt_t *t, const uint8_t *key, size_t klen,
              px_smt_proof_t *p) {
  uint8_t kh[PX_HASH_LEN];
  px_hash(kh, key, klen);
  memset(p, 0, sizeof *p);
  const smt_node_t *n = t->root;
  unsigned depth = 0;
  if (n && n->dirty) return PX_ESTATE;
  while (n && !n->is_leaf) {
    int b = bit_at(kh, depth);
    const smt_node_t *sib = n->child[!b];
    if (sib && sib->dirty) return PX_ESTATE;
    memcpy(p->siblings[depth], node_hash(sib), PX_HASH_LEN);
    n = n->child[b];
    depth++;
  }
  p->depth = (uint16_t)depth;
  if (n) {
    p->has_leaf = 1;
    memcpy(p->leaf_key_hash, n->kh, PX_HASH_LEN);
    memcpy(p->leaf_value_hash, n->vh, PX_HASH_LEN);
  }
  return 0;
}

static int foreach_rec(const smt_node_t *n, smt_visit_fn fn, void *ud) {
  if (!n) return 0;
  if (n->is_leaf) return fn(ud, n->key, n->klen, n->val, n->vlen);
  int rc = foreach_rec(n->child[0], fn, ud);
  return rc ? rc : foreach_rec(n->child[1], fn, ud);
}

int smt_foreach(const smt_t *t, smt_visit_fn fn, void *ud) {
  return foreach_rec(t->root, fn, ud);
}

/* ---- proofs: verification and encoding ---------------------------------- */

int px_smt_verify(const uint8_t root[PX_HASH_LEN], const void *key, size_t klen,
                  const void *value, size_t vlen, const px_smt_proof_t *p) {
  if (!root || !p || (!key && klen) || (!value && vlen)) return PX_EINVAL;
  if (p->depth > PX_SMT_DEPTH || p->has_leaf > 1) return PX_EINVAL;
  uint8_t kh[PX_HASH_LEN], h[PX_HASH_LEN];
  px_hash(kh, key, klen);
  if (value) {
    uint8_t vh[PX_HASH_LEN];
    px_hash(vh, value, vlen);
    if (!p->has_leaf || memcmp(p->leaf_key_hash, kh, PX_HASH_LEN) != 0 ||
        memcmp(p->leaf_value_hash, vh, PX_HASH_LEN) != 0)
      return PX_EAUTH;
  } else if (p->has_leaf) {
    /* Absence shown by another leaf: it must sit on this key's path. */
    if (memcmp(p->leaf_key_hash, kh, PX_HASH_LEN) == 0) return PX_EAUTH;
    for (unsigned i = 0; i < p->depth; i++)
      if (bit_at(p->leaf_key_hash, i) != bit_at(kh, i)) return PX_EAUTH;
  }
  if (p->has_leaf)
    leaf_hash(h, p->leaf_key_hash, p->leaf_value_hash);
  else
    memset(h, 0, sizeof h);
  for (unsigned i = p->depth; i-- > 0;) {
    if (bit_at(kh, i))
      px_merkle_node(h, p->siblings[i], h);
    else
      px_merkle_node(h, h, p->siblings[i]);
  }
  return memcmp(h, root, PX_HASH_LEN) == 0 ? 0 : PX_EAUTH;
}

int px_smt_proof_encode(const px_smt_proof_t *p, px_buf_t *out) {
  if (!p || !out || p->depth > PX_SMT_DEPTH || p->has_leaf > 1)
    return PX_EINVAL;
  size_t mark = out->len;
  px_writer_t w;
  px_writer_init(&w, out);
  px_writer_u16(&w, PX_LEDGER_TAG_PROOF);
  px_writer_u8(&w, PX_LEDGER_VERSION);
  px_writer_u16(&w, p->depth);
  px_writer_u8(&w, p->has_leaf);
  if (p->has_leaf) {
    px_writer_fixed(&w, p->leaf_key_hash, PX_HASH_LEN);
    px_writer_fixed(&w, p->leaf_value_hash, PX_HASH_LEN);
  }
  for (unsigned i = 0; i < p->depth; i++)
    px_writer_fixed(&w, p->siblings[i], PX_HASH_LEN);
  int rc = px_writer_finish(&w);
  if (rc) out->len = mark;
  return rc;
}

int px_smt_proof_decode(const uint8_t *buf, size_t len, px_smt_proof_t *p) {
  if (!p) return PX_EINVAL;
  memset(p, 0, sizeof *p);
  px_reader_t r;
  px_reader_init(&r, buf, len);
  uint16_t tag = px_reader_u16(&r);
  uint8_t ver = px_reader_u8(&r);
  if (!r.err && tag != PX_LEDGER_TAG_PROOF) px_reader_fail(&r, PX_EDECODE);
  if (!r.err && ver != PX_LEDGER_VERSION) px_reader_fail(&r, PX_EVERSION);
  uint16_t depth = px_reader_u16(&r);
  uint8_t has_leaf = px_reader_u8(&r);
  if (!r.err && (depth > PX_SMT_DEPTH || has_leaf > 1))
    px_reader_fail(&r, PX_EDECODE);
  if (has_leaf) {
    px_reader_fixed(&r, p->leaf_key_hash, PX_HASH_LEN);
    px_reader_fixed(&r, p->leaf_value_hash, PX_HASH_LEN);
  }
  for (unsigned i = 0; !r.err && i < depth; i++)
    px_reader_fixed(&r, p->siblings[i], PX_HASH_LEN);
  int rc = px_reader_finish(&r);
  if (rc) {
    memset(p, 0, sizeof *p);
    return rc;
  }
  p->depth = depth;
  p->has_leaf = has_leaf;
  return 0;
}
