/*
 * market_codec.c — encodings of the market contract (contract 3): tx
 * payloads and state records (plexus/market_chain.h, docs/market.md "The
 * market contract").  The dispute payload lives in market_dispute.c.
 *
 * Payloads carry no tag of their own: the tx envelope's type names them.
 * Records are the values stored under the contract's keys; queries return
 * them as stored.  Every decoder is strict (ranges, enums, canonical order,
 * no trailing bytes), so each value has exactly one encoding; the fuzz
 * target fuzz_market_tx re-encodes what they accept and compares.
 *
 *   register:  u32 caps, u32 cores, u32 mem_mb, u8 simd, u64 price,
 *              u32 slots, u64 max_shard_work, u64 speed, bench_hash[32],
 *              str addr
 *   job_open:  bytes spec (px_job_spec_encode), u32 n_layers, n x ref[32]
 *   commit:    u16 count (1..PX_MARKET_COMMIT_BATCH), count x bytes
 *              commitment (px_commitment_encode)
 *   settle:    job_id[32], u8 final, u16 n, u16 n_expired,
 *              n x (u32 shard, provider[32], u64 amount, u8 flags),
 *              n_expired x pk[32] (strictly ascending)
 *   provider record: pk[32], register fields, u8 active,
 *              u64 registered_height, u64 shards_completed, audits_passed,
 *              audits_failed, leases_expired, disputes_won, disputes_lost,
 *              slashed_total, earned
 *   job record: id[32], bytes spec, u32 n_layers, refs, u8 state,
 *              u64 opened_height, closed_height, escrow, paid, refunded,
 *              u32 n_commitments, n_disputes, n_slashed, shards_paid
 *   commit record: bytes commitment, u64 height, u8 paid, u8 lost
 */
#include <string.h>

#include "plexus/codec.h"
#include "plexus/crypto.h"
#include "plexus/market_chain.h"

#include "ledger/market_internal.h"

#include "base/px_internal.h"

#define KNOWN_CAPS (PX_CAP_AVX2 | PX_CAP_AVX512 | PX_CAP_GPU)
#define SLOTS_MAX 64u

/* ---- provider registration ------------------------------------------------
 */

static int reg_ok(const px_provider_reg_t *r) {
  size_t al = strnlen(r->addr, PX_MARKET_ADDR_MAX);
  return !(r->caps & ~KNOWN_CAPS) && r->cores >= 1 && r->simd <= 2 &&
         r->price >= 1 && r->slots >= 1 && r->slots <= SLOTS_MAX &&
         r->max_shard_work >= 1 && r->speed >= 1 && al >= 1 &&
         al < PX_MARKET_ADDR_MAX;
}

static void reg_write(px_writer_t *w, const px_provider_reg_t *r) {
  px_writer_u32(w, r->caps);
  px_writer_u32(w, r->cores);
  px_writer_u32(w, r->mem_mb);
  px_writer_u8(w, r->simd);
  px_writer_u64(w, r->price);
  px_writer_u32(w, r->slots);
  px_writer_u64(w, r->max_shard_work);
  px_writer_u64(w, r->speed);
  px_writer_fixed(w, r->bench_hash, PX_HASH_LEN);
  px_writer_str(w, r->addr);
}

static void reg_read(px_reader_t *rd, px_provider_reg_t *r) {
  r->caps = px_reader_u32(rd);
  r->cores = px_reader_u32(rd);
  r->mem_mb = px_reader_u32(rd);
  r->simd = px_reader_u8(rd);
  r->price = px_reader_u64(rd);
  r->slots = px_reader_u32(rd);
  r->max_shard_work = px_reader_u64(rd);
  r->speed = px_reader_u64(rd);
  px_reader_fixed(rd, r->bench_hash, PX_HASH_LEN);
  px_reader_str(rd, r->addr, sizeof r->addr);
  if (!rd->err && !reg_ok(r)) px_reader_fail(rd, PX_EDECODE);
}

int px_market_payload_register(px_buf_t *out, const px_provider_reg_t *r) {
  if (!out || !r || !reg_ok(r)) return PX_EINVAL;
  size_t mark = out->len;
  px_writer_t w;
  px_writer_init(&w, out);
  reg_write(&w, r);
  int rc = px_writer_finish(&w);
  if (rc) out->len = mark;
  return rc;
}

int px_market_payload_register_decode(const uint8_t *p, size_t n,
                                      px_provider_reg_t *r) {
  if (!r || (!p && n)) return PX_EINVAL;
  memset(r, 0, sizeof *r);
  px_reader_t rd;
  px_reader_init(&rd, p, n);
  reg_read(&rd, r);
  int rc = px_reader_finish(&rd);
  if (rc) memset(r, 0, sizeof *r);
  return rc;
}

/* ---- job open -------------------------------------------------------------
 */

static int manifest_ok(const px_market_manifest_t *m) {
  return m->n_layers >= 1 && m->n_layers <= PX_MARKET_MAX_LAYERS;
}

static void manifest_write(px_writer_t *w, const px_market_manifest_t *m) {
  px_writer_u32(w, m->n_layers);
  for (uint32_t i = 0; i < m->n_layers; i++)
    px_writer_fixed(w, m->layer_ref[i], PX_HASH_LEN);
}

static void manifest_read(px_reader_t *r, px_market_manifest_t *m) {
  m->n_layers = px_reader_u32(r);
  if (!r->err && !manifest_ok(m)) px_reader_fail(r, PX_EDECODE);
  for (uint32_t i = 0; !r->err && i < m->n_layers; i++)
    px_reader_fixed(r, m->layer_ref[i], PX_HASH_LEN);
}

/* The spec as a length-prefixed sub-encoding, decoded strictly. */
static void spec_read(px_reader_t *r, px_job_spec_t *s) {
  const uint8_t *sp;
  size_t sn;
  px_reader_bytes(r, &sp, &sn, 4096);
  if (!r->err) {
    int rc = px_job_spec_decode(sp, sn, s);
    if (rc) px_reader_fail(r, rc);
  }
}

static int spec_write(px_writer_t *w, const px_job_spec_t *s) {
  px_buf_t b;
  px_buf_init(&b, 4096);
  int rc = px_job_spec_encode(s, &b);
  if (!rc) px_writer_bytes(w, b.data, b.len);
  px_buf_release(&b);
  return rc;
}

int px_market_payload_job_open(px_buf_t *out, const px_job_spec_t *spec,
                               const px_market_manifest_t *m) {
  if (!out || !spec || !m || !manifest_ok(m)) return PX_EINVAL;
  size_t mark = out->len;
  px_writer_t w;
  px_writer_init(&w, out);
  int rc = spec_write(&w, spec);
  manifest_write(&w, m);
  if (!rc) rc = px_writer_finish(&w);
  if (rc) out->len = mark;
  return rc;
}

int px_market_payload_job_open_decode(const uint8_t *p, size_t n,
                                      px_job_spec_t *spec,
                                      px_market_manifest_t *m) {
  if (!spec || !m || (!p && n)) return PX_EINVAL;
  memset(spec, 0, sizeof *spec);
  memset(m, 0, sizeof *m);
  px_reader_t r;
  px_reader_init(&r, p, n);
  spec_read(&r, spec);
  manifest_read(&r, m);
  int rc = px_reader_finish(&r);
  if (rc) {
    memset(spec, 0, sizeof *spec);
    memset(m, 0, sizeof *m);
  }
  return rc;
}

/* ---- commitments ----------------------------------------------------------
 */

int px_market_payload_commit(px_buf_t *out, const px_commitment_t *c,
                             size_t n) {
  if (!out || !c || n < 1 || n > PX_MARKET_COMMIT_BATCH) return PX_EINVAL;
  size_t mark = out->len;
  px_writer_t w;
  px_writer_init(&w, out);
  px_writer_u16(&w, (uint16_t)n);
  px_buf_t b;
  px_buf_init(&b, 0);
  int rc = 0;
  for (size_t i = 0; !rc && i < n; i++) {
    px_buf_reset(&b);
    rc = px_commitment_encode(&c[i], &b);
    if (!rc) px_writer_bytes(&w, b.data, b.len);
  }
  px_buf_release(&b);
  if (!rc) rc = px_writer_finish(&w);
  if (rc) out->len = mark;
  return rc;
}

int market_commit_decode(const uint8_t *p, size_t n, px_commitment_t **c,
                         size_t *count) {
  *c = NULL;
  *count = 0;
  px_reader_t r;
  px_reader_init(&r, p, n);
  uint16_t cnt = px_reader_u16(&r);
  if (!r.err && (cnt < 1 || cnt > PX_MARKET_COMMIT_BATCH))
    px_reader_fail(&r, PX_EDECODE);
  px_commitment_t *v = NULL;
  if (!r.err) {
    v = px_calloc(cnt, sizeof *v);
    if (!v) px_reader_fail(&r, PX_ENOMEM);
  }
  for (uint16_t i = 0; !r.err && i < cnt; i++) {
    const uint8_t *cp;
    size_t cn;
    px_reader_bytes(&r, &cp, &cn, 1024);
    if (r.err) break;
    int rc = px_commitment_decode(cp, cn, &v[i]);
    if (rc) px_reader_fail(&r, rc);
  }
  int rc = px_reader_finish(&r);
  if (rc) {
    px_free(v);
    return rc;
  }
  *c = v;
  *count = cnt;
  return 0;
}

/* ---- settle ---------------------------------------------------------------
 */

int px_market_payload_settle(px_buf_t *out, const uint8_t job_id[PX_HASH_LEN],
                             int final, const px_settle_entry_t *e, size_t n,
                             const uint8_t (*expired)[PX_PK_LEN],
                             size_t n_expired) {
  if (!out || !job_id || (n && !e) || (n_expired && !expired) ||
      n > PX_MARKET_SETTLE_BATCH || n_expired > MARKET_MAX_EXPIRED ||
      (final != 0 && final != 1) || (!final && !n && !n_expired))
    return PX_EINVAL;
  for (size_t i = 0; i < n; i++)
    if (e[i].amount == 0 ||
        (e[i].flags & ~(PX_SETTLE_AUDITED | PX_SETTLE_AUDITOR)))
      return PX_EINVAL;
  for (size_t i = 1; i < n_expired; i++)
    if (memcmp(expired[i - 1], expired[i], PX_PK_LEN) >= 0) return PX_EINVAL;
  size_t mark = out->len;
  px_writer_t w;
  px_writer_init(&w, out);
  px_writer_fixed(&w, job_id, PX_HASH_LEN);
  px_writer_u8(&w, (uint8_t) final);
  px_writer_u16(&w, (uint16_t)n);
  px_writer_u16(&w, (uint16_t)n_expired);
  for (size_t i = 0; i < n; i++) {
    px_writer_u32(&w, e[i].shard);
    px_writer_fixed(&w, e[i].provider, PX_PK_LEN);
    px_writer_u64(&w, e[i].amount);
    px_writer_u8(&w, e[i].flags);
  }
  for (size_t i = 0; i < n_expired; i++)
    px_writer_fixed(&w, expired[i], PX_PK_LEN);
  int rc = px_writer_finish(&w);
  if (rc) out->len = mark;
  return rc;
}

void market_settle_release(market_settle_t *s) {
  px_free(s->e);
  px_free(s->expired);
  memset(s, 0, sizeof *s);
}

int market_settle_decode(const uint8_t *p, size_t n, market_settle_t *s) {
  memset(s, 0, sizeof *s);
  px_reader_t r;
  px_reader_init(&r, p, n);
  px_reader_fixed(&r, s->job_id, PX_HASH_LEN);
  s->final = px_reader_u8(&r);
  s->n = px_reader_u16(&r);
  s->n_expired = px_reader_u16(&r);
  if (!r.err && (s->final > 1 || s->n > PX_MARKET_SETTLE_BATCH ||
                 s->n_expired > MARKET_MAX_EXPIRED ||
                 (!s->final && !s->n && !s->n_expired)))
    px_reader_fail(&r, PX_EDECODE);
  /* each entry takes 45 bytes, each key 32: bound before allocating */
  if (!r.err && s->n * 45 + s->n_expired * PX_PK_LEN > px_reader_remaining(&r))
    px_reader_fail(&r, PX_ETRUNC);
  if (!r.err && s->n && !(s->e = px_calloc(s->n, sizeof *s->e)))
    px_reader_fail(&r, PX_ENOMEM);
  if (!r.err && s->n_expired &&
      !(s->expired = px_calloc(s->n_expired, PX_PK_LEN)))
    px_reader_fail(&r, PX_ENOMEM);
  for (size_t i = 0; !r.err && i < s->n; i++) {
    px_settle_entry_t *e = &s->e[i];
    e->shard = px_reader_u32(&r);
    px_reader_fixed(&r, e->provider, PX_PK_LEN);
    e->amount = px_reader_u64(&r);
    e->flags = px_reader_u8(&r);
    if (!r.err && (e->amount == 0 ||
                   (e->flags & ~(PX_SETTLE_AUDITED | PX_SETTLE_AUDITOR))))
      px_reader_fail(&r, PX_EDECODE);
  }
  for (size_t i = 0; !r.err && i < s->n_expired; i++) {
    px_reader_fixed(&r, s->expired[i], PX_PK_LEN);
    if (!r.err && i && memcmp(s->expired[i - 1], s->expired[i], PX_PK_LEN) >= 0)
      px_reader_fail(&r, PX_EDECODE);
  }
  int rc = px_reader_finish(&r);
  if (rc) market_settle_release(s);
  return rc;
}

/* ---- records --------------------------------------------------------------
 */

int market_provider_rec_encode(const px_provider_rec_t *r, px_buf_t *out) {
  if (!reg_ok(&r->reg) || r->active > 1) return PX_EINVAL;
  px_writer_t w;
  px_writer_init(&w, out);
  px_writer_fixed(&w, r->pk, PX_PK_LEN);
  reg_write(&w, &r->reg);
  px_writer_u8(&w, r->active);
  px_writer_u64(&w, r->registered_height);
  px_writer_u64(&w, r->shards_completed);
  px_writer_u64(&w, r->audits_passed);
  px_writer_u64(&w, r->audits_failed);
  px_writer_u64(&w, r->leases_expired);
  px_writer_u64(&w, r->disputes_won);
  px_writer_u64(&w, r->disputes_lost);
  px_writer_u64(&w, r->slashed_total);
  px_writer_u64(&w, r->earned);
  return px_writer_finish(&w);
}

static void provider_read(px_reader_t *rd, px_provider_rec_t *r) {
  px_reader_fixed(rd, r->pk, PX_PK_LEN);
  reg_read(rd, &r->reg);
  r->active = px_reader_u8(rd);
  if (!rd->err && r->active > 1) px_reader_fail(rd, PX_EDECODE);
  r->registered_height = px_reader_u64(rd);
  r->shards_completed = px_reader_u64(rd);
  r->audits_passed = px_reader_u64(rd);
  r->audits_failed = px_reader_u64(rd);
  r->leases_expired = px_reader_u64(rd);
  r->disputes_won = px_reader_u64(rd);
  r->disputes_lost = px_reader_u64(rd);
  r->slashed_total = px_reader_u64(rd);
  r->earned = px_reader_u64(rd);
}

int px_provider_rec_decode(const uint8_t *p, size_t n, px_provider_rec_t *r) {
  if (!r || (!p && n)) return PX_EINVAL;
  memset(r, 0, sizeof *r);
  px_reader_t rd;
  px_reader_init(&rd, p, n);
  provider_read(&rd, r);
  int rc = px_reader_finish(&rd);
  if (rc) memset(r, 0, sizeof *r);
  return rc;
}

static int job_rec_ok(const px_job_rec_t *r) {
  return r->state >= PX_JOBREC_OPEN && r->state <= PX_JOBREC_EXPIRED &&
         manifest_ok(&r->manifest) && r->paid <= r->escrow &&
         r->refunded <= r->escrow - r->paid &&
         (r->state != PX_JOBREC_OPEN ||
          (r->refunded == 0 && !r->closed_height));
}

int market_job_rec_encode(const px_job_rec_t *r, px_buf_t *out) {
  if (!job_rec_ok(r)) return PX_EINVAL;
  px_writer_t w;
  px_writer_init(&w, out);
  px_writer_fixed(&w, r->id, PX_HASH_LEN);
  int rc = spec_write(&w, &r->spec);
  manifest_write(&w, &r->manifest);
  px_writer_u8(&w, r->state);
  px_writer_u64(&w, r->opened_height);
  px_writer_u64(&w, r->closed_height);
  px_writer_u64(&w, r->escrow);
  px_writer_u64(&w, r->paid);
  px_writer_u64(&w, r->refunded);
  px_writer_u32(&w, r->n_commitments);
  px_writer_u32(&w, r->n_disputes);
  px_writer_u32(&w, r->n_slashed);
  px_writer_u32(&w, r->shards_paid);
  if (!rc) rc = px_writer_finish(&w);
  return rc;
}

int px_job_rec_decode(const uint8_t *p, size_t n, px_job_rec_t *r) {
  if (!r || (!p && n)) return PX_EINVAL;
  memset(r, 0, sizeof *r);
  px_reader_t rd;
  px_reader_init(&rd, p, n);
  px_reader_fixed(&rd, r->id, PX_HASH_LEN);
  spec_read(&rd, &r->spec);
  manifest_read(&rd, &r->manifest);
  r->state = px_reader_u8(&rd);
  r->opened_height = px_reader_u64(&rd);
  r->closed_height = px_reader_u64(&rd);
  r->escrow = px_reader_u64(&rd);
  r->paid = px_reader_u64(&rd);
  r->refunded = px_reader_u64(&rd);
  r->n_commitments = px_reader_u32(&rd);
  r->n_disputes = px_reader_u32(&rd);
  r->n_slashed = px_reader_u32(&rd);
  r->shards_paid = px_reader_u32(&rd);
  if (!rd.err && !job_rec_ok(r)) px_reader_fail(&rd, PX_EDECODE);
  if (!rd.err) {
    uint8_t id[PX_HASH_LEN];
    if (px_job_spec_id(&r->spec, id) || memcmp(id, r->id, PX_HASH_LEN))
      px_reader_fail(&rd, PX_EDECODE);
  }
  int rc = px_reader_finish(&rd);
  if (rc) memset(r, 0, sizeof *r);
  return rc;
}

int market_commit_rec_encode(const px_commit_rec_t *r, px_buf_t *out) {
  if (r->paid > 1 || r->lost > 1) return PX_EINVAL;
  px_buf_t b;
  px_buf_init(&b, 0);
  int rc = px_commitment_encode(&r->c, &b);
  px_writer_t w;
  px_writer_init(&w, out);
  if (!rc) px_writer_bytes(&w, b.data, b.len);
  px_writer_u64(&w, r->height);
  px_writer_u8(&w, r->paid);
  px_writer_u8(&w, r->lost);
  if (!rc) rc = px_writer_finish(&w);
  px_buf_release(&b);
  return rc;
}

int px_commit_rec_decode(const uint8_t *p, size_t n, px_commit_rec_t *r) {
  if (!r || (!p && n)) return PX_EINVAL;
  memset(r, 0, sizeof *r);
  px_reader_t rd;
  px_reader_init(&rd, p, n);
  const uint8_t *cp;
  size_t cn;
  px_reader_bytes(&rd, &cp, &cn, 1024);
  if (!rd.err) {
    int rc = px_commitment_decode(cp, cn, &r->c);
    if (rc) px_reader_fail(&rd, rc);
  }
  r->height = px_reader_u64(&rd);
  r->paid = px_reader_u8(&rd);
  r->lost = px_reader_u8(&rd);
  if (!rd.err && (r->paid > 1 || r->lost > 1)) px_reader_fail(&rd, PX_EDECODE);
  int rc = px_reader_finish(&rd);
  if (rc) memset(r, 0, sizeof *r);
  return rc;
}

/* ---- small pure functions -------------------------------------------------
 */

uint32_t px_provider_reputation(const px_provider_rec_t *r) {
  if (!r) return 0;
  unsigned __int128 good = (unsigned __int128)r->shards_completed + 1;
  unsigned __int128 bad =
      4 * ((unsigned __int128)r->audits_failed + r->disputes_lost) +
      r->leases_expired;
  return (uint32_t)(good * PX_MARKET_BPS / (good + bad));
}

void px_market_audit_randomness(const uint8_t block_hash_next[PX_HASH_LEN],
                                uint8_t out[PX_HASH_LEN]) {
  static const char dom[] = "plexus-audit-seed";
  px_hash_state_t st;
  px_hash_init(&st);
  px_hash_update(&st, dom, sizeof dom - 1);
  px_hash_update(&st, block_hash_next, PX_HASH_LEN);
  px_hash_final(&st, out);
}
