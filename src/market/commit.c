/*
 * commit.c — provider commitments, equivocation evidence, audit selection
 * and the stake bound (plexus/market.h, docs/market.md "Verification").
 *
 * Commitment encoding (tag PX_MARKET_TAG_COMMITMENT, u8 version):
 *   job_id[32], u32 shard, output[32], trace_root[32], u32 n_layers,
 *   provider[32], sig[64]
 * The signature covers "plexus-market-commitment-v1" || the encoding up to
 * (not including) sig, so a signature cannot be replayed as one over any
 * other plexus structure.
 *
 * Evidence: two valid commitments by one provider to one (job, shard) that
 * claim different results.  Its encoding puts the byte-wise smaller
 * commitment first, so one pair has one encoding (one evidence id).
 *
 * Audit selection hashes chain randomness that was unknown when the
 * commitment was signed; modulo bias of 2^64 mod 10000 is below 2^-50.
 */
#include <stdint.h>
#include <string.h>

#include "plexus/codec.h"
#include "plexus/crypto.h"
#include "plexus/market.h"
#include "base/px_internal.h"

static const char k_commit_domain[] = "plexus-market-commitment-v1";
#define COMMIT_LEN (3 + 32 + 4 + 32 + 32 + 4 + 32 + 64)

static void commit_write(px_writer_t *w, const px_commitment_t *c,
                         int with_sig) {
  px_writer_u16(w, PX_MARKET_TAG_COMMITMENT);
  px_writer_u8(w, PX_MARKET_VERSION);
  px_writer_fixed(w, c->job_id, PX_HASH_LEN);
  px_writer_u32(w, c->shard);
  px_writer_fixed(w, c->output, PX_HASH_LEN);
  px_writer_fixed(w, c->trace_root, PX_HASH_LEN);
  px_writer_u32(w, c->n_layers);
  px_writer_fixed(w, c->provider, PX_PK_LEN);
  if (with_sig) px_writer_fixed(w, c->sig, PX_SIG_LEN);
}

/* domain || unsigned encoding, into a fixed buffer. */
static int signed_bytes(const px_commitment_t *c, uint8_t *out, size_t *n) {
  px_buf_t b;
  px_buf_init(&b, 512);
  px_writer_t w;
  px_writer_init(&w, &b);
  px_writer_fixed(&w, k_commit_domain, sizeof k_commit_domain - 1);
  commit_write(&w, c, 0);
  int rc = px_writer_finish(&w);
  if (!rc) {
    memcpy(out, b.data, b.len);
    *n = b.len;
  }
  px_buf_release(&b);
  return rc;
}

static int commit_fields_ok(const px_commitment_t *c) {
  return c->n_layers >= 1 && c->n_layers <= PX_TRACE_MAX_LAYERS;
}

int px_commitment_sign(px_commitment_t *c, const px_keypair_t *kp) {
  if (!commit_fields_ok(c)) return PX_EINVAL;
  memcpy(c->provider, kp->pk, PX_PK_LEN);
  uint8_t msg[256];
  size_t n = 0;
  int rc = signed_bytes(c, msg, &n);
  if (rc) return rc;
  px_sign(kp, msg, n, c->sig);
  return 0;
}

int px_commitment_verify(const px_commitment_t *c) {
  if (!commit_fields_ok(c)) return PX_EINVAL;
  uint8_t msg[256];
  size_t n = 0;
  int rc = signed_bytes(c, msg, &n);
  if (rc) return rc;
  return px_verify(c->provider, msg, n, c->sig) ? PX_EBADSIG : 0;
}

int px_commitment_encode(const px_commitment_t *c, px_buf_t *out) {
  if (!commit_fields_ok(c)) return PX_EINVAL;
  px_writer_t w;
  px_writer_init(&w, out);
  commit_write(&w, c, 1);
  return px_writer_finish(&w);
}

static void commit_read(px_reader_t *r, px_commitment_t *c) {
  if (px_reader_u16(r) != PX_MARKET_TAG_COMMITMENT)
    px_reader_fail(r, PX_EDECODE);
  if (px_reader_u8(r) != PX_MARKET_VERSION) px_reader_fail(r, PX_EVERSION);
  px_reader_fixed(r, c->job_id, PX_HASH_LEN);
  c->shard = px_reader_u32(r);
  px_reader_fixed(r, c->output, PX_HASH_LEN);
  px_reader_fixed(r, c->trace_root, PX_HASH_LEN);
  c->n_layers = px_reader_u32(r);
  px_reader_fixed(r, c->provider, PX_PK_LEN);
  px_reader_fixed(r, c->sig, PX_SIG_LEN);
  if (!r->err && !commit_fields_ok(c)) px_reader_fail(r, PX_EDECODE);
}

int px_commitment_decode(const void *p, size_t n, px_commitment_t *c) {
  px_reader_t r;
  memset(c, 0, sizeof *c);
  px_reader_init(&r, p, n);
  commit_read(&r, c);
  int rc = px_reader_finish(&r);
  if (rc) memset(c, 0, sizeof *c);
  return rc;
}

int px_commitment_conflict(const px_commitment_t *a, const px_commitment_t *b) {
  if (memcmp(a->provider, b->provider, PX_PK_LEN) ||
      memcmp(a->job_id, b->job_id, PX_HASH_LEN) || a->shard != b->shard)
    return PX_EINVAL;
  if (!memcmp(a->output, b->output, PX_HASH_LEN) &&
      !memcmp(a->trace_root, b->trace_root, PX_HASH_LEN) &&
      a->n_layers == b->n_layers)
    return PX_EINVAL; /* the same claim, maybe signed twice: no evidence */
  int rc = px_commitment_verify(a);
  if (!rc) rc = px_commitment_verify(b);
  return rc;
}

static int commit_bytes(const px_commitment_t *c, uint8_t out[COMMIT_LEN]) {
  px_buf_t b;
  px_buf_init(&b, COMMIT_LEN);
  int rc = px_commitment_encode(c, &b);
  if (!rc) memcpy(out, b.data, COMMIT_LEN);
  px_buf_release(&b);
  return rc;
}

int px_evidence_encode(const px_commitment_t *a, const px_commitment_t *b,
                       px_buf_t *out) {
  int rc = px_commitment_conflict(a, b);
  if (rc) return rc;
  uint8_t ea[COMMIT_LEN], eb[COMMIT_LEN];
  if ((rc = commit_bytes(a, ea)) || (rc = commit_bytes(b, eb))) return rc;
  int swap = memcmp(ea, eb, COMMIT_LEN) > 0;
  px_writer_t w;
  px_writer_init(&w, out);
  px_writer_u16(&w, PX_MARKET_TAG_EVIDENCE);
  px_writer_u8(&w, PX_MARKET_VERSION);
  px_writer_fixed(&w, swap ? eb : ea, COMMIT_LEN);
  px_writer_fixed(&w, swap ? ea : eb, COMMIT_LEN);
  return px_writer_finish(&w);
}

int px_evidence_decode(const void *p, size_t n, px_commitment_t *a,
                       px_commitment_t *b) {
  px_reader_t r;
  memset(a, 0, sizeof *a);
  memset(b, 0, sizeof *b);
  px_reader_init(&r, p, n);
  if (px_reader_u16(&r) != PX_MARKET_TAG_EVIDENCE)
    px_reader_fail(&r, PX_EDECODE);
  if (px_reader_u8(&r) != PX_MARKET_VERSION) px_reader_fail(&r, PX_EVERSION);
  size_t start = r.pos;
  commit_read(&r, a);
  commit_read(&r, b);
  int rc = px_reader_finish(&r);
  /* canonical order: strictly increasing encodings */
  if (!rc && memcmp((const uint8_t *)p + start,
                    (const uint8_t *)p + start + COMMIT_LEN, COMMIT_LEN) >= 0)
    rc = PX_EDECODE;
  if (!rc) {
    int c = px_commitment_conflict(a, b);
    if (c) rc = c == PX_EBADSIG ? PX_EBADSIG : PX_EDECODE;
  }
  if (rc) {
    memset(a, 0, sizeof *a);
    memset(b, 0, sizeof *b);
  }
  return rc;
}

int px_market_audit_selected(const uint8_t randomness[PX_HASH_LEN],
                             const uint8_t job_id[PX_HASH_LEN], uint32_t shard,
                             uint32_t p_bps) {
  static const char dom[] = "plexus-audit";
  uint8_t sh[4], h[PX_HASH_LEN];
  px_put_u32le(sh, shard);
  px_hash_state_t st;
  px_hash_init(&st);
  px_hash_update(&st, dom, sizeof dom - 1);
  px_hash_update(&st, randomness, PX_HASH_LEN);
  px_hash_update(&st, job_id, PX_HASH_LEN);
  px_hash_update(&st, sh, 4);
  px_hash_final(&st, h);
  return px_get_u64le(h) % PX_MARKET_BPS < p_bps;
}

int px_market_stake_check(uint64_t stake, uint64_t reward, uint32_t p_bps) {
  if (p_bps == 0 || p_bps > PX_MARKET_BPS) return PX_EINVAL;
  /* stake * p / 10000 >= reward, compared exactly in 128 bits:
   * stake * p >= reward * 10000. */
  unsigned __int128 lhs = (unsigned __int128)stake * p_bps;
  unsigned __int128 rhs = (unsigned __int128)reward * PX_MARKET_BPS;
  return lhs >= rhs ? 0 : PX_EFUNDS;
}
