/*
 * store.c — durable chain storage in LMDB.
 *
 * One LMDB environment (a directory) with six named databases:
 *   blocks   be64(height)  -> block encoding
 *   hashes   block hash    -> be64(height)
 *   txs      tx hash       -> u64 height, u32 index, i32 code, u64 fee_paid
 *   state    state key     -> state value (the whole authenticated map)
 *   commits  be64(height)  -> commit certificate of that block (opaque)
 *   meta     "genesis"     -> genesis binary encoding
 *            "height", "time" -> u64;  "app_hash", "block_hash",
 *            "results_hash" -> 32 bytes (the chain metadata of state.c)
 * Heights are big-endian so LMDB's byte order is height order.
 *
 * Atomicity: px_ledger_store_commit writes a decided block, its tx index,
 * every state key the block touched (the state's journal) and the new meta
 * in ONE write transaction.  LMDB's copy-on-write B+tree and its two meta
 * pages make that transaction all-or-nothing across kill -9 (and, with the
 * default sync mode, across power loss): reopening always finds the state
 * of the last committed block, never a mix.  px_ledger_store_load
 * recomputes the state root from the stored map and refuses (PX_EIO) if it
 * differs from the stored app hash.
 *
 * The tx index keeps the first record of a tx hash unless a later inclusion
 * was admitted (a tx is admitted at most once; a replayed copy in a later
 * block is recorded in that block's results but does not hide the original).
 */
#include <string.h>

#include <lmdb.h>

#include "plexus/crypto.h"
#include "plexus/ledger.h"

#include "ledger/ledger_internal.h"

#include "base/px_internal.h"

struct px_ledger_store {
  MDB_env *env;
  MDB_dbi blocks, hashes, txs, state, meta, commits;
};

static int mdb_err(int rc) {
  switch (rc) {
  case MDB_SUCCESS:
    return 0;
  case MDB_NOTFOUND:
    return PX_ENOTFOUND;
  case MDB_MAP_FULL:
    return PX_ELIMIT;
  case MDB_KEYEXIST:
    return PX_EEXIST;
  default:
    if (rc > 0) return px_err_from_errno(rc);
    PX_LOGE("store", "lmdb: %s", mdb_strerror(rc));
    return PX_EIO;
  }
}

static void be64(uint64_t v, uint8_t out[8]) {
  for (int i = 0; i < 8; i++)
    out[i] = (uint8_t)(v >> (56 - 8 * i));
}

static MDB_val val(const void *p, size_t n) {
  MDB_val v;
  v.mv_data = (void *)(uintptr_t)p;
  v.mv_size = n;
  return v;
}

int px_ledger_store_open(const char *dir, size_t map_size,
                         px_ledger_store_t **out) {
  if (!dir || !out) return PX_EINVAL;
  *out = NULL;
  int rc = px_mkdir_p(dir, 0700);
  if (rc) return rc;
  px_ledger_store_t *st = px_calloc(1, sizeof *st);
  if (!st) return PX_ENOMEM;
  MDB_txn *txn = NULL;
  int m = mdb_env_create(&st->env);
  if (!m) m = mdb_env_set_maxdbs(st->env, 8);
  if (!m)
    m = mdb_env_set_mapsize(st->env, map_size ? map_size : (size_t)4 << 30);
  if (!m) m = mdb_env_open(st->env, dir, 0, 0600);
  if (!m) m = mdb_txn_begin(st->env, NULL, 0, &txn);
  if (!m) m = mdb_dbi_open(txn, "blocks", MDB_CREATE, &st->blocks);
  if (!m) m = mdb_dbi_open(txn, "hashes", MDB_CREATE, &st->hashes);
  if (!m) m = mdb_dbi_open(txn, "txs", MDB_CREATE, &st->txs);
  if (!m) m = mdb_dbi_open(txn, "state", MDB_CREATE, &st->state);
  if (!m) m = mdb_dbi_open(txn, "meta", MDB_CREATE, &st->meta);
  if (!m) m = mdb_dbi_open(txn, "commits", MDB_CREATE, &st->commits);
  if (!m) {
    m = mdb_txn_commit(txn);
    txn = NULL;
  }
  if (m) {
    if (txn) mdb_txn_abort(txn);
    if (st->env) mdb_env_close(st->env);
    px_free(st);
    return mdb_err(m);
  }
  *out = st;
  return 0;
}

void px_ledger_store_close(px_ledger_store_t *st) {
  if (!st) return;
  mdb_env_close(st->env);
  px_free(st);
}

static int meta_put(MDB_txn *txn, px_ledger_store_t *st, const char *key,
                    const void *p, size_t n) {
  MDB_val k = val(key, strlen(key)), v = val(p, n);
  return mdb_put(txn, st->meta, &k, &v, 0);
}

static int meta_put_u64(MDB_txn *txn, px_ledger_store_t *st, const char *key,
                        uint64_t x) {
  uint8_t b[8];
  px_put_u64le(b, x);
  return meta_put(txn, st, key, b, 8);
}

static int meta_get(MDB_txn *txn, px_ledger_store_t *st, const char *key,
                    void *out, size_t n) {
  MDB_val k = val(key, strlen(key)), v;
  int m = mdb_get(txn, st->meta, &k, &v);
  if (m) return m;
  if (v.mv_size != n) return MDB_CORRUPTED;
  memcpy(out, v.mv_data, n);
  return 0;
}

static int write_meta(MDB_txn *txn, px_ledger_store_t *st,
                      const px_ledger_state_t *s) {
  int m = meta_put_u64(txn, st, "height", s->height);
  if (!m) m = meta_put_u64(txn, st, "time", s->last_time);
  if (!m) m = meta_put(txn, st, "app_hash", s->app_hash, PX_HASH_LEN);
  if (!m) m = meta_put(txn, st, "block_hash", s->last_block_hash, PX_HASH_LEN);
  if (!m)
    m = meta_put(txn, st, "results_hash", s->last_results_hash, PX_HASH_LEN);
  return m;
}

typedef struct {
  MDB_txn *txn;
  MDB_dbi dbi;
  int m;
} put_all_t;

static int put_visit(void *ud, const uint8_t *key, size_t klen,
                     const uint8_t *v, size_t vlen) {
  put_all_t *pa = ud;
  MDB_val k = val(key, klen), d = val(v, vlen);
  pa->m = mdb_put(pa->txn, pa->dbi, &k, &d, 0);
  return pa->m;
}

int px_ledger_store_init(px_ledger_store_t *st, const px_genesis_t *g,
                         const px_ledger_state_t *s) {
  if (!st || !g || !s || s->height != 0) return PX_EINVAL;
  px_buf_t gb;
  px_buf_init(&gb, 0);
  int rc = px_genesis_encode(g, &gb);
  if (rc) return rc;
  MDB_txn *txn;
  int m = mdb_txn_begin(st->env, NULL, 0, &txn);
  if (m) {
    px_buf_release(&gb);
    return mdb_err(m);
  }
  uint8_t tmp[8];
  m = meta_get(txn, st, "height", tmp, 8);
  if (m == 0) {
    mdb_txn_abort(txn);
    px_buf_release(&gb);
    return PX_EEXIST;
  }
  m = meta_put(txn, st, "genesis", gb.data, gb.len);
  px_buf_release(&gb);
  if (!m) {
    put_all_t pa = {txn, st->state, 0};
    smt_foreach(&s->smt, put_visit, &pa);
    m = pa.m;
  }
  if (!m) m = write_meta(txn, st, s);
  if (m) {
    mdb_txn_abort(txn);
    return mdb_err(m);
  }
  return mdb_err(mdb_txn_commit(txn));
}

int px_ledger_store_height(px_ledger_store_t *st, uint64_t *height) {
  if (!st || !height) return PX_EINVAL;
  MDB_txn *txn;
  int m = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
  if (m) return mdb_err(m);
  uint8_t b[8];
  m = meta_get(txn, st, "height", b, 8);
  mdb_txn_abort(txn);
  if (m == MDB_NOTFOUND) return PX_ENOENT;
  if (m) return mdb_err(m);
  *height = px_get_u64le(b);
  return 0;
}

int px_ledger_store_genesis(px_ledger_store_t *st, px_genesis_t *g) {
  if (!st || !g) return PX_EINVAL;
  MDB_txn *txn;
  int m = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
  if (m) return mdb_err(m);
  MDB_val k = val("genesis", 7), v;
  m = mdb_get(txn, st->meta, &k, &v);
  int rc = m == MDB_NOTFOUND ? PX_ENOENT
           : m               ? mdb_err(m)
                             : px_genesis_decode(v.mv_data, v.mv_size, g);
  mdb_txn_abort(txn);
  return rc;
}

int px_ledger_store_load(px_ledger_store_t *st, px_ledger_state_t **out) {
  if (!st || !out) return PX_EINVAL;
  *out = NULL;
  px_ledger_state_t *s = ledger_state_new();
  if (!s) return PX_ENOMEM;
  MDB_txn *txn = NULL;
  MDB_cursor *cur = NULL;
  int rc = 0;
  uint8_t b[8], app[PX_HASH_LEN];
  int m = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
  if (!m) m = meta_get(txn, st, "height", b, 8);
  if (m == MDB_NOTFOUND) {
    rc = PX_ENOENT;
    goto done;
  }
  if (!m) s->height = px_get_u64le(b);
  if (!m) m = meta_get(txn, st, "time", b, 8);
  if (!m) s->last_time = px_get_u64le(b);
  if (!m) m = meta_get(txn, st, "app_hash", app, PX_HASH_LEN);
  if (!m) m = meta_get(txn, st, "block_hash", s->last_block_hash, PX_HASH_LEN);
  if (!m)
    m = meta_get(txn, st, "results_hash", s->last_results_hash, PX_HASH_LEN);
  if (!m) m = mdb_cursor_open(txn, st->state, &cur);
  MDB_val k, v;
  for (int op = MDB_FIRST; !m && !rc; op = MDB_NEXT) {
    m = mdb_cursor_get(cur, &k, &v, (MDB_cursor_op)op);
    if (m == MDB_NOTFOUND) {
      m = 0;
      break;
    }
    if (!m) rc = smt_put(&s->smt, k.mv_data, k.mv_size, v.mv_data, v.mv_size);
  }
  if (!rc && m) rc = mdb_err(m);
  if (!rc) rc = ledger_load_params(s);
  if (!rc) {
    smt_root(&s->smt, s->app_hash);
    if (memcmp(s->app_hash, app, PX_HASH_LEN) != 0) {
      PX_LOGE("store", "stored state does not match its app hash");
      rc = PX_EIO;
    }
  }
done:
  if (cur) mdb_cursor_close(cur);
  if (txn) mdb_txn_abort(txn);
  if (rc) {
    px_ledger_state_free(s);
    return rc;
  }
  *out = s;
  return 0;
}

int px_ledger_store_commit(px_ledger_store_t *st, const px_ledger_state_t *s,
                           const px_block_t *b, const px_tx_result_t *results) {
  return px_ledger_store_commit_cert(st, s, b, results, NULL, 0);
}

int px_ledger_store_commit_cert(px_ledger_store_t *st,
                                const px_ledger_state_t *s, const px_block_t *b,
                                const px_tx_result_t *results,
                                const uint8_t *cert, size_t cert_len) {
  if (!st || !s || !b || (b->n_txs && !results)) return PX_EINVAL;
  if (s->height != b->header.height ||
      memcmp(s->last_block_hash, b->hash, PX_HASH_LEN) != 0)
    return PX_ESTATE;
  MDB_txn *txn;
  int m = mdb_txn_begin(st->env, NULL, 0, &txn);
  if (m) return mdb_err(m);
  uint8_t hb[8], h[8];
  m = meta_get(txn, st, "height", hb, 8);
  if (!m && px_get_u64le(hb) + 1 != b->header.height) {
    mdb_txn_abort(txn);
    return PX_ESTATE;
  }
  be64(b->header.height, h);
  MDB_val k = val(h, 8), v = val(b->raw, b->raw_len);
  if (!m) m = mdb_put(txn, st->blocks, &k, &v, 0);
  if (!m && cert && cert_len) {
    v = val(cert, cert_len);
    m = mdb_put(txn, st->commits, &k, &v, 0);
  }
  k = val(b->hash, PX_HASH_LEN);
  v = val(h, 8);
  if (!m) m = mdb_put(txn, st->hashes, &k, &v, 0);
  for (size_t i = 0; !m && i < b->n_txs; i++) {
    uint8_t rec[24];
    px_put_u64le(rec, b->header.height);
    px_put_u32le(rec + 8, (uint32_t)i);
    px_put_u32le(rec + 12, (uint32_t)results[i].code);
    px_put_u64le(rec + 16, results[i].fee_paid);
    k = val(b->txs[i].hash, PX_HASH_LEN);
    v = val(rec, sizeof rec);
    m = mdb_put(txn, st->txs, &k, &v,
                results[i].fee_paid ? 0 : MDB_NOOVERWRITE);
    if (m == MDB_KEYEXIST) m = 0;
  }
  /* The keys this block touched: their value now, or deleted. */
  for (size_t i = 0; !m && i < ledger_n_changes(s); i++) {
    const uint8_t *key, *cur;
    size_t klen, clen;
    ledger_change(s, i, &key, &klen);
    k = val(key, klen);
    if (smt_get(&s->smt, key, klen, &cur, &clen) == 0) {
      v = val(cur, clen);
      m = mdb_put(txn, st->state, &k, &v, 0);
    } else {
      m = mdb_del(txn, st->state, &k, NULL);
      if (m == MDB_NOTFOUND) m = 0;
    }
  }
  if (!m) m = write_meta(txn, st, s);
  if (m) {
    mdb_txn_abort(txn);
    return mdb_err(m);
  }
  return mdb_err(mdb_txn_commit(txn));
}

int px_ledger_store_block(px_ledger_store_t *st, uint64_t height,
                          px_buf_t *out) {
  if (!st || !out) return PX_EINVAL;
  MDB_txn *txn;
  int m = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
  if (m) return mdb_err(m);
  uint8_t h[8];
  be64(height, h);
  MDB_val k = val(h, 8), v;
  m = mdb_get(txn, st->blocks, &k, &v);
  int rc = m ? mdb_err(m) : px_buf_append(out, v.mv_data, v.mv_size);
  mdb_txn_abort(txn);
  return rc;
}

int px_ledger_store_cert(px_ledger_store_t *st, uint64_t height,
                         px_buf_t *out) {
  if (!st || !out) return PX_EINVAL;
  MDB_txn *txn;
  int m = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
  if (m) return mdb_err(m);
  uint8_t h[8];
  be64(height, h);
  MDB_val k = val(h, 8), v;
  m = mdb_get(txn, st->commits, &k, &v);
  int rc = m ? mdb_err(m) : px_buf_append(out, v.mv_data, v.mv_size);
  mdb_txn_abort(txn);
  return rc;
}

int px_ledger_store_block_height(px_ledger_store_t *st,
                                 const uint8_t hash[PX_HASH_LEN],
                                 uint64_t *height) {
  if (!st || !hash || !height) return PX_EINVAL;
  MDB_txn *txn;
  int m = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
  if (m) return mdb_err(m);
  MDB_val k = val(hash, PX_HASH_LEN), v;
  m = mdb_get(txn, st->hashes, &k, &v);
  if (!m && v.mv_size != 8) m = MDB_CORRUPTED;
  if (!m) {
    const uint8_t *p = v.mv_data;
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
      x = (x << 8) | p[i];
    *height = x;
  }
  mdb_txn_abort(txn);
  return mdb_err(m);
}

int px_ledger_store_tx(px_ledger_store_t *st, const uint8_t hash[PX_HASH_LEN],
                       px_tx_location_t *loc) {
  if (!st || !hash || !loc) return PX_EINVAL;
  MDB_txn *txn;
  int m = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &txn);
  if (m) return mdb_err(m);
  MDB_val k = val(hash, PX_HASH_LEN), v;
  m = mdb_get(txn, st->txs, &k, &v);
  if (!m && v.mv_size != 24) m = MDB_CORRUPTED;
  if (!m) {
    const uint8_t *p = v.mv_data;
    loc->height = px_get_u64le(p);
    loc->index = px_get_u32le(p + 8);
    loc->code = (int32_t)px_get_u32le(p + 12);
    loc->fee_paid = px_get_u64le(p + 16);
  }
  mdb_txn_abort(txn);
  return mdb_err(m);
}
