/*
 * market_wire.c — encodings of the market's peer-to-peer messages
 * (node/market_rt.h, docs/market.md "Runtime and wire").
 *
 * Every message is plexus/codec.h: u16 type tag, u8 version
 * (PX_MARKET_VERSION), then fixed-width little-endian fields.  Decoders are
 * strict: every enum and bound is checked, trailing bytes are refused, and
 * a value has exactly one encoding (fuzz_market_wire re-encodes whatever it
 * accepts and compares the bytes).  Decoded byte strings point into the
 * input (zero copy).
 *
 *   CHUNK_REQ   root[32] u64 size u64 index        (index < chunks of size)
 *   CHUNK       root[32] u64 index bytes data (1..PX_BLOB_CHUNK)
 *               u8 depth (<= PX_MERKLE_MAX_DEPTH) path[depth][32]
 *   LEASE       job_id[32] u32 shard u8 role u64 model_size u64 budget_ms
 *   LEASE_REPLY job_id[32] u32 shard u8 reason str message
 *   RESULT      u8 role u8 status; status 0: bytes commitment, bytes logits
 *               (f32 LE, a non-empty multiple of 4); else job_id[32] u32 shard
 *   REVEAL_REQ  job_id[32] u32 shard u32 layer
 *   REVEAL      job_id[32] u32 shard u32 layer u32 n leaves[n][32]
 */
#include <stdint.h>
#include <string.h>

#include "plexus/codec.h"
#include "node/market_rt.h"
#include "base/px_internal.h"

#define MAX_BUDGET_MS (7ull * 24 * 3600 * 1000) /* a week */
#define MAX_LOGITS_BYTES (256u * 1024 * 1024)

static void head_write(px_writer_t *w, uint16_t tag) {
  px_writer_u16(w, tag);
  px_writer_u8(w, PX_MARKET_VERSION);
}

static void head_read(px_reader_t *r, uint16_t tag) {
  if (px_reader_u16(r) != tag) px_reader_fail(r, PX_EDECODE);
  if (px_reader_u8(r) != PX_MARKET_VERSION) px_reader_fail(r, PX_EVERSION);
}

static uint64_t max_blob_size(void) {
  return (uint64_t)PX_BLOB_MAX_CHUNKS * PX_BLOB_CHUNK;
}

static int role_ok(uint8_t role) {
  return role == PX_MKT_ROLE_WORKER || role == PX_MKT_ROLE_AUDITOR;
}

/* ---- chunk request ------------------------------------------------------ */

static int chunk_req_ok(const px_mkt_chunk_req_t *m) {
  return m->size >= 1 && m->size <= max_blob_size() &&
         m->index < px_blob_chunk_count(m->size);
}

int px_mkt_chunk_req_encode(const px_mkt_chunk_req_t *m, px_buf_t *out) {
  if (!chunk_req_ok(m)) return PX_EINVAL;
  px_writer_t w;
  px_writer_init(&w, out);
  head_write(&w, PX_MKT_TAG_CHUNK_REQ);
  px_writer_fixed(&w, m->root, PX_HASH_LEN);
  px_writer_u64(&w, m->size);
  px_writer_u64(&w, m->index);
  return px_writer_finish(&w);
}

int px_mkt_chunk_req_decode(const uint8_t *p, size_t n, px_mkt_chunk_req_t *m) {
  px_reader_t r;
  memset(m, 0, sizeof *m);
  px_reader_init(&r, p, n);
  head_read(&r, PX_MKT_TAG_CHUNK_REQ);
  px_reader_fixed(&r, m->root, PX_HASH_LEN);
  m->size = px_reader_u64(&r);
  m->index = px_reader_u64(&r);
  int rc = px_reader_finish(&r);
  if (!rc && !chunk_req_ok(m)) rc = PX_EDECODE;
  if (rc) memset(m, 0, sizeof *m);
  return rc;
}

/* ---- chunk -------------------------------------------------------------- */

int px_mkt_chunk_encode(const px_mkt_chunk_t *m, px_buf_t *out) {
  if (!m->data || m->len < 1 || m->len > PX_BLOB_CHUNK ||
      m->depth > PX_MERKLE_MAX_DEPTH || m->index >= PX_BLOB_MAX_CHUNKS)
    return PX_EINVAL;
  px_writer_t w;
  px_writer_init(&w, out);
  head_write(&w, PX_MKT_TAG_CHUNK);
  px_writer_fixed(&w, m->root, PX_HASH_LEN);
  px_writer_u64(&w, m->index);
  px_writer_bytes(&w, m->data, m->len);
  px_writer_u8(&w, (uint8_t)m->depth);
  for (uint32_t i = 0; i < m->depth; i++)
    px_writer_fixed(&w, m->path[i], PX_HASH_LEN);
  return px_writer_finish(&w);
}

int px_mkt_chunk_decode(const uint8_t *p, size_t n, px_mkt_chunk_t *m) {
  px_reader_t r;
  memset(m, 0, sizeof *m);
  px_reader_init(&r, p, n);
  head_read(&r, PX_MKT_TAG_CHUNK);
  px_reader_fixed(&r, m->root, PX_HASH_LEN);
  m->index = px_reader_u64(&r);
  if (!r.err && m->index >= PX_BLOB_MAX_CHUNKS) px_reader_fail(&r, PX_EDECODE);
  px_reader_bytes(&r, &m->data, &m->len, PX_BLOB_CHUNK);
  if (!r.err && m->len == 0) px_reader_fail(&r, PX_EDECODE);
  m->depth = px_reader_u8(&r);
  if (!r.err && m->depth > PX_MERKLE_MAX_DEPTH) px_reader_fail(&r, PX_EDECODE);
  for (uint32_t i = 0; i < m->depth && !r.err; i++)
    px_reader_fixed(&r, m->path[i], PX_HASH_LEN);
  int rc = px_reader_finish(&r);
  if (rc) memset(m, 0, sizeof *m);
  return rc;
}

/* ---- lease -------------------------------------------------------------- */

static int lease_ok(const px_mkt_lease_t *m) {
  return m->shard < PX_MARKET_MAX_SHARDS && role_ok(m->role) &&
         m->model_size >= 1 && m->model_size <= max_blob_size() &&
         m->budget_ms >= 1 && m->budget_ms <= MAX_BUDGET_MS;
}

int px_mkt_lease_encode(const px_mkt_lease_t *m, px_buf_t *out) {
  if (!lease_ok(m)) return PX_EINVAL;
  px_writer_t w;
  px_writer_init(&w, out);
  head_write(&w, PX_MKT_TAG_LEASE);
  px_writer_fixed(&w, m->job_id, PX_HASH_LEN);
  px_writer_u32(&w, m->shard);
  px_writer_u8(&w, m->role);
  px_writer_u64(&w, m->model_size);
  px_writer_u64(&w, m->budget_ms);
  return px_writer_finish(&w);
}

int px_mkt_lease_decode(const uint8_t *p, size_t n, px_mkt_lease_t *m) {
  px_reader_t r;
  memset(m, 0, sizeof *m);
  px_reader_init(&r, p, n);
  head_read(&r, PX_MKT_TAG_LEASE);
  px_reader_fixed(&r, m->job_id, PX_HASH_LEN);
  m->shard = px_reader_u32(&r);
  m->role = px_reader_u8(&r);
  m->model_size = px_reader_u64(&r);
  m->budget_ms = px_reader_u64(&r);
  int rc = px_reader_finish(&r);
  if (!rc && !lease_ok(m)) rc = PX_EDECODE;
  if (rc) memset(m, 0, sizeof *m);
  return rc;
}

/* ---- lease reply -------------------------------------------------------- */

int px_mkt_lease_reply_encode(const px_mkt_lease_reply_t *m, px_buf_t *out) {
  if (m->shard >= PX_MARKET_MAX_SHARDS || m->reason > PX_MKT_INTERNAL ||
      memchr(m->message, 0, sizeof m->message) == NULL)
    return PX_EINVAL;
  px_writer_t w;
  px_writer_init(&w, out);
  head_write(&w, PX_MKT_TAG_LEASE_REPLY);
  px_writer_fixed(&w, m->job_id, PX_HASH_LEN);
  px_writer_u32(&w, m->shard);
  px_writer_u8(&w, m->reason);
  px_writer_str(&w, m->message);
  return px_writer_finish(&w);
}

int px_mkt_lease_reply_decode(const uint8_t *p, size_t n,
                              px_mkt_lease_reply_t *m) {
  px_reader_t r;
  memset(m, 0, sizeof *m);
  px_reader_init(&r, p, n);
  head_read(&r, PX_MKT_TAG_LEASE_REPLY);
  px_reader_fixed(&r, m->job_id, PX_HASH_LEN);
  m->shard = px_reader_u32(&r);
  m->reason = px_reader_u8(&r);
  px_reader_str(&r, m->message, sizeof m->message);
  int rc = px_reader_finish(&r);
  if (!rc && (m->shard >= PX_MARKET_MAX_SHARDS || m->reason > PX_MKT_INTERNAL))
    rc = PX_EDECODE;
  if (rc) memset(m, 0, sizeof *m);
  return rc;
}

/* ---- result ------------------------------------------------------------- */

int px_mkt_result_encode(const px_mkt_result_t *m, px_buf_t *out) {
  if (!role_ok(m->role) || m->status > PX_MKT_INTERNAL ||
      m->c.shard >= PX_MARKET_MAX_SHARDS)
    return PX_EINVAL;
  if (m->status == PX_MKT_OK &&
      (!m->logits || m->logits_len == 0 || m->logits_len % 4 ||
       m->logits_len > MAX_LOGITS_BYTES))
    return PX_EINVAL;
  px_writer_t w;
  px_writer_init(&w, out);
  head_write(&w, PX_MKT_TAG_RESULT);
  px_writer_u8(&w, m->role);
  px_writer_u8(&w, m->status);
  if (m->status == PX_MKT_OK) {
    px_buf_t cb;
    px_buf_init(&cb, 1024);
    int rc = px_commitment_encode(&m->c, &cb);
    if (rc) {
      px_buf_release(&cb);
      return rc;
    }
    px_writer_bytes(&w, cb.data, cb.len);
    px_buf_release(&cb);
    px_writer_bytes(&w, m->logits, m->logits_len);
  } else {
    px_writer_fixed(&w, m->c.job_id, PX_HASH_LEN);
    px_writer_u32(&w, m->c.shard);
  }
  return px_writer_finish(&w);
}

int px_mkt_result_decode(const uint8_t *p, size_t n, px_mkt_result_t *m) {
  px_reader_t r;
  memset(m, 0, sizeof *m);
  px_reader_init(&r, p, n);
  head_read(&r, PX_MKT_TAG_RESULT);
  m->role = px_reader_u8(&r);
  m->status = px_reader_u8(&r);
  if (!r.err && (!role_ok(m->role) || m->status > PX_MKT_INTERNAL))
    px_reader_fail(&r, PX_EDECODE);
  if (!r.err && m->status == PX_MKT_OK) {
    const uint8_t *cp = NULL;
    size_t cn = 0;
    px_reader_bytes(&r, &cp, &cn, 1024);
    if (!r.err) {
      int rc = px_commitment_decode(cp, cn, &m->c);
      if (rc) px_reader_fail(&r, rc);
    }
    px_reader_bytes(&r, &m->logits, &m->logits_len, MAX_LOGITS_BYTES);
    if (!r.err && (m->logits_len == 0 || m->logits_len % 4))
      px_reader_fail(&r, PX_EDECODE);
  } else if (!r.err) {
    px_reader_fixed(&r, m->c.job_id, PX_HASH_LEN);
    m->c.shard = px_reader_u32(&r);
  }
  int rc = px_reader_finish(&r);
  if (!rc && m->c.shard >= PX_MARKET_MAX_SHARDS) rc = PX_EDECODE;
  if (rc) memset(m, 0, sizeof *m);
  return rc;
}

/* ---- reveal ------------------------------------------------------------- */

int px_mkt_reveal_req_encode(const px_mkt_reveal_req_t *m, px_buf_t *out) {
  if (m->shard >= PX_MARKET_MAX_SHARDS || m->layer >= PX_MARKET_MAX_LAYERS)
    return PX_EINVAL;
  px_writer_t w;
  px_writer_init(&w, out);
  head_write(&w, PX_MKT_TAG_REVEAL_REQ);
  px_writer_fixed(&w, m->job_id, PX_HASH_LEN);
  px_writer_u32(&w, m->shard);
  px_writer_u32(&w, m->layer);
  return px_writer_finish(&w);
}

int px_mkt_reveal_req_decode(const uint8_t *p, size_t n,
                             px_mkt_reveal_req_t *m) {
  px_reader_t r;
  memset(m, 0, sizeof *m);
  px_reader_init(&r, p, n);
  head_read(&r, PX_MKT_TAG_REVEAL_REQ);
  px_reader_fixed(&r, m->job_id, PX_HASH_LEN);
  m->shard = px_reader_u32(&r);
  m->layer = px_reader_u32(&r);
  int rc = px_reader_finish(&r);
  if (!rc &&
      (m->shard >= PX_MARKET_MAX_SHARDS || m->layer >= PX_MARKET_MAX_LAYERS))
    rc = PX_EDECODE;
  if (rc) memset(m, 0, sizeof *m);
  return rc;
}

int px_mkt_reveal_encode(const px_mkt_reveal_t *m, px_buf_t *out) {
  if (m->shard >= PX_MARKET_MAX_SHARDS || m->layer >= PX_MARKET_MAX_LAYERS ||
      m->n < 1 || m->n > PX_MKT_MAX_SHARD_SAMPLES || !m->leaves)
    return PX_EINVAL;
  px_writer_t w;
  px_writer_init(&w, out);
  head_write(&w, PX_MKT_TAG_REVEAL);
  px_writer_fixed(&w, m->job_id, PX_HASH_LEN);
  px_writer_u32(&w, m->shard);
  px_writer_u32(&w, m->layer);
  px_writer_u32(&w, m->n);
  px_writer_fixed(&w, m->leaves, (size_t)m->n * PX_HASH_LEN);
  return px_writer_finish(&w);
}

int px_mkt_reveal_decode(const uint8_t *p, size_t n, px_mkt_reveal_t *m) {
  px_reader_t r;
  memset(m, 0, sizeof *m);
  px_reader_init(&r, p, n);
  head_read(&r, PX_MKT_TAG_REVEAL);
  px_reader_fixed(&r, m->job_id, PX_HASH_LEN);
  m->shard = px_reader_u32(&r);
  m->layer = px_reader_u32(&r);
  m->n = px_reader_u32(&r);
  if (!r.err &&
      (m->shard >= PX_MARKET_MAX_SHARDS || m->layer >= PX_MARKET_MAX_LAYERS ||
       m->n < 1 || m->n > PX_MKT_MAX_SHARD_SAMPLES))
    px_reader_fail(&r, PX_EDECODE);
  size_t need = (size_t)m->n * PX_HASH_LEN;
  if (!r.err && px_reader_remaining(&r) != need)
    px_reader_fail(&r,
                   px_reader_remaining(&r) < need ? PX_ETRUNC : PX_ETRAILING);
  if (!r.err) {
    m->leaves = (const uint8_t(*)[PX_HASH_LEN])(r.p + r.pos);
    r.pos += need;
  }
  int rc = px_reader_finish(&r);
  if (rc) memset(m, 0, sizeof *m);
  return rc;
}
