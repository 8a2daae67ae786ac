/*
 * msg.c — consensus messages: canonical encoding, strict decoding,
 * signing and verification of proposals, votes, commit certificates,
 * decisions (catch-up) and evidence of equivocation.
 *
 * Spec: the messages of Algorithm 1 in "The latest gossip on BFT consensus"
 * (arXiv:1807.04938, section II): <PROPOSAL, h, r, v, vr>, <PREVOTE, h, r,
 * id(v)>, <PRECOMMIT, h, r, id(v)>, with the proposer or voter named by its
 * index in the height's validator set.  id(v) is BLAKE2b-256(v).
 *
 * Sign bytes (docs/consensus.md) are the envelope (type tag, version), the
 * chain id, height and round and the message's fields with the proposal's
 * value replaced by its hash; they never include the signature.  Including
 * the chain id means a vote can never be replayed on another chain.
 *
 * Invariants:
 *  - decoders are strict: wrong tag or version, a nil vote with a non-zero
 *    hash, a has_value flag other than 0/1, round > PX_CONS_MAX_ROUND,
 *    valid_round outside [-1, round), unsorted commits and trailing bytes
 *    are all rejected, so every accepted input re-encodes byte for byte;
 *  - encoders refuse (PX_EINVAL) what the decoders would reject, and leave
 *    the output buffer untouched on error.
 */
#include <stdint.h>
#include <string.h>

#include "plexus/codec.h"
#include "plexus/consensus.h"
#include "plexus/crypto.h"

#include "consensus/cons_internal.h"
#include "base/px_internal.h"

/* ---- sign bytes ---------------------------------------------------------- */

static size_t sb_head(uint8_t *o, uint16_t tag, const char *chain_id,
                      uint64_t h, uint32_t r) {
  size_t n = 0, cl = strnlen(chain_id, PX_CONS_CHAIN_ID_MAX - 1);
  px_put_u16le(o + n, tag);
  n += 2;
  o[n++] = PX_CONS_VERSION;
  px_put_u32le(o + n, (uint32_t)cl);
  n += 4;
  memcpy(o + n, chain_id, cl);
  n += cl;
  px_put_u64le(o + n, h);
  n += 8;
  px_put_u32le(o + n, r);
  n += 4;
  return n;
}

size_t px_cons_proposal_sb(const char *chain_id, const px_cons_proposal_t *p,
                           const uint8_t value_hash[PX_HASH_LEN],
                           uint8_t out[PX_CONS_SB_MAX]) {
  size_t n = sb_head(out, PX_CONS_MSG_PROPOSAL, chain_id, p->height, p->round);
  px_put_u32le(out + n, (uint32_t)p->valid_round);
  n += 4;
  px_put_u16le(out + n, p->proposer);
  n += 2;
  memcpy(out + n, value_hash, PX_HASH_LEN);
  return n + PX_HASH_LEN;
}

size_t px_cons_vote_sb(const char *chain_id, const px_cons_vote_t *v,
                       uint8_t out[PX_CONS_SB_MAX]) {
  size_t n = sb_head(out, (uint16_t)v->type, chain_id, v->height, v->round);
  out[n++] = v->has_value;
  memcpy(out + n, v->hash, PX_HASH_LEN);
  n += PX_HASH_LEN;
  px_put_u16le(out + n, v->validator);
  return n + 2;
}

int px_cons_proposal_sign_bytes(const char *chain_id,
                                const px_cons_proposal_t *p, px_buf_t *out) {
  if (!chain_id || !p || !out || (p->value_len && !p->value)) return PX_EINVAL;
  uint8_t h[PX_HASH_LEN], sb[PX_CONS_SB_MAX];
  px_hash(h, p->value, p->value_len);
  size_t n = px_cons_proposal_sb(chain_id, p, h, sb);
  return px_buf_append(out, sb, n);
}

int px_cons_vote_sign_bytes(const char *chain_id, const px_cons_vote_t *v,
                            px_buf_t *out) {
  if (!chain_id || !v || !out) return PX_EINVAL;
  uint8_t sb[PX_CONS_SB_MAX];
  size_t n = px_cons_vote_sb(chain_id, v, sb);
  return px_buf_append(out, sb, n);
}

int px_cons_proposal_sign(const char *chain_id, const px_keypair_t *kp,
                          px_cons_proposal_t *p) {
  if (!chain_id || !kp || !p || (p->value_len && !p->value)) return PX_EINVAL;
  uint8_t h[PX_HASH_LEN], sb[PX_CONS_SB_MAX];
  px_hash(h, p->value, p->value_len);
  size_t n = px_cons_proposal_sb(chain_id, p, h, sb);
  px_sign(kp, sb, n, p->sig);
  return 0;
}

int px_cons_vote_sign(const char *chain_id, const px_keypair_t *kp,
                      px_cons_vote_t *v) {
  if (!chain_id || !kp || !v) return PX_EINVAL;
  uint8_t sb[PX_CONS_SB_MAX];
  size_t n = px_cons_vote_sb(chain_id, v, sb);
  px_sign(kp, sb, n, v->sig);
  return 0;
}

int px_cons_proposal_verify(const char *chain_id, const uint8_t pk[PX_PK_LEN],
                            const px_cons_proposal_t *p) {
  if (!chain_id || !pk || !p || (p->value_len && !p->value)) return PX_EINVAL;
  uint8_t h[PX_HASH_LEN], sb[PX_CONS_SB_MAX];
  px_hash(h, p->value, p->value_len);
  size_t n = px_cons_proposal_sb(chain_id, p, h, sb);
  return px_verify(pk, sb, n, p->sig) == 0 ? 0 : PX_EBADSIG;
}

int px_cons_vote_verify(const char *chain_id, const uint8_t pk[PX_PK_LEN],
                        const px_cons_vote_t *v) {
  if (!chain_id || !pk || !v) return PX_EINVAL;
  uint8_t sb[PX_CONS_SB_MAX];
  size_t n = px_cons_vote_sb(chain_id, v, sb);
  return px_verify(pk, sb, n, v->sig) == 0 ? 0 : PX_EBADSIG;
}

/* ---- shape checks shared by encoders and decoders ------------------------ */

static int is_zero(const uint8_t *p, size_t n) {
  uint8_t acc = 0;
  for (size_t i = 0; i < n; i++)
    acc |= p[i];
  return acc == 0;
}

static int proposal_ok(const px_cons_proposal_t *p) {
  if (p->round > PX_CONS_MAX_ROUND) return 0;
  if (p->valid_round < -1 || p->valid_round >= (int32_t)p->round) return 0;
  if (p->proposer >= PX_CONS_MAX_VALIDATORS) return 0;
  return 1;
}

static int vote_ok(const px_cons_vote_t *v) {
  if (v->type != PX_CONS_MSG_PREVOTE && v->type != PX_CONS_MSG_PRECOMMIT)
    return 0;
  if (v->round > PX_CONS_MAX_ROUND) return 0;
  if (v->has_value > 1) return 0;
  if (!v->has_value && !is_zero(v->hash, PX_HASH_LEN)) return 0;
  if (v->validator >= PX_CONS_MAX_VALIDATORS) return 0;
  return 1;
}

static int commit_ok(const px_cons_commit_t *c) {
  if (c->round > PX_CONS_MAX_ROUND) return 0;
  if (c->n == 0 || c->n > PX_CONS_MAX_VALIDATORS) return 0;
  for (size_t i = 0; i < c->n; i++) {
    if (c->sigs[i].validator >= PX_CONS_MAX_VALIDATORS) return 0;
    if (i && c->sigs[i].validator <= c->sigs[i - 1].validator) return 0;
  }
  return 1;
}

/* Order of the conflicting pair: (has_value, hash). */
static int vote_value_cmp(const px_cons_vote_t *a, const px_cons_vote_t *b) {
  if (a->has_value != b->has_value) return a->has_value < b->has_value ? -1 : 1;
  return memcmp(a->hash, b->hash, PX_HASH_LEN);
}

static int evidence_ok(const px_cons_evidence_t *e) {
  const px_cons_vote_t *a = &e->a, *b = &e->b;
  if (!vote_ok(a) || !vote_ok(b)) return 0;
  if (a->type != b->type || a->height != b->height || a->round != b->round ||
      a->validator != b->validator)
    return 0;
  return vote_value_cmp(a, b) < 0;
}

/* ---- encoders ------------------------------------------------------------ */

static void env(px_writer_t *w, uint16_t tag) {
  px_writer_u16(w, tag);
  px_writer_u8(w, PX_CONS_VERSION);
}

static int finish(px_writer_t *w, px_buf_t *out, size_t old) {
  int rc = px_writer_finish(w);
  if (rc) out->len = old;
  return rc;
}

int px_cons_proposal_encode(const px_cons_proposal_t *p, px_buf_t *out) {
  if (!p || !out || !proposal_ok(p) || (p->value_len && !p->value))
    return PX_EINVAL;
  size_t old = out->len;
  px_writer_t w;
  px_writer_init(&w, out);
  env(&w, PX_CONS_MSG_PROPOSAL);
  px_writer_u64(&w, p->height);
  px_writer_u32(&w, p->round);
  px_writer_i32(&w, p->valid_round);
  px_writer_u16(&w, p->proposer);
  px_writer_bytes(&w, p->value, p->value_len);
  px_writer_fixed(&w, p->sig, PX_SIG_LEN);
  return finish(&w, out, old);
}

static void vote_body(px_writer_t *w, const px_cons_vote_t *v) {
  env(w, (uint16_t)v->type);
  px_writer_u64(w, v->height);
  px_writer_u32(w, v->round);
  px_writer_u8(w, v->has_value);
  px_writer_fixed(w, v->hash, PX_HASH_LEN);
  px_writer_u16(w, v->validator);
  px_writer_fixed(w, v->sig, PX_SIG_LEN);
}

int px_cons_vote_encode(const px_cons_vote_t *v, px_buf_t *out) {
  if (!v || !out || !vote_ok(v)) return PX_EINVAL;
  size_t old = out->len;
  px_writer_t w;
  px_writer_init(&w, out);
  vote_body(&w, v);
  return finish(&w, out, old);
}

static void commit_body(px_writer_t *w, const px_cons_commit_t *c) {
  env(w, PX_CONS_MSG_COMMIT);
  px_writer_u64(w, c->height);
  px_writer_u32(w, c->round);
  px_writer_fixed(w, c->hash, PX_HASH_LEN);
  px_writer_u16(w, c->n);
  for (size_t i = 0; i < c->n; i++) {
    px_writer_u16(w, c->sigs[i].validator);
    px_writer_fixed(w, c->sigs[i].sig, PX_SIG_LEN);
  }
}

int px_cons_commit_encode(const px_cons_commit_t *c, px_buf_t *out) {
  if (!c || !out || !commit_ok(c)) return PX_EINVAL;
  size_t old = out->len;
  px_writer_t w;
  px_writer_init(&w, out);
  commit_body(&w, c);
  return finish(&w, out, old);
}

int px_cons_evidence_encode(const px_cons_evidence_t *e, px_buf_t *out) {
  if (!e || !out || !evidence_ok(e)) return PX_EINVAL;
  size_t old = out->len;
  px_writer_t w;
  px_writer_init(&w, out);
  env(&w, PX_CONS_MSG_EVIDENCE);
  vote_body(&w, &e->a);
  vote_body(&w, &e->b);
  return finish(&w, out, old);
}

int px_cons_decision_encode(const uint8_t *value, size_t value_len,
                            const px_cons_commit_t *c, px_buf_t *out) {
  if (!c || !out || !commit_ok(c) || (value_len && !value)) return PX_EINVAL;
  uint8_t h[PX_HASH_LEN];
  px_hash(h, value, value_len);
  if (memcmp(h, c->hash, PX_HASH_LEN) != 0) return PX_EINVAL;
  size_t old = out->len;
  px_writer_t w;
  px_writer_init(&w, out);
  env(&w, PX_CONS_MSG_DECISION);
  px_writer_bytes(&w, value, value_len);
  commit_body(&w, c);
  return finish(&w, out, old);
}

/* ---- decoders ------------------------------------------------------------ */

/* Read and check the envelope; a wrong version wins over a wrong tag only
 * when the tag is right (a foreign message is PX_EDECODE). */
static void read_env(px_reader_t *r, uint16_t want) {
  uint16_t tag = px_reader_u16(r);
  uint8_t ver = px_reader_u8(r);
  if (r->err) return;
  if (tag != want)
    px_reader_fail(r, PX_EDECODE);
  else if (ver != PX_CONS_VERSION)
    px_reader_fail(r, PX_EVERSION);
}

int px_cons_proposal_decode(const uint8_t *p, size_t len, size_t max_value,
                            px_cons_proposal_t *out) {
  if (!out) return PX_EINVAL;
  memset(out, 0, sizeof *out);
  if (!p && len) return PX_EINVAL;
  px_reader_t r;
  px_reader_init(&r, p, len);
  read_env(&r, PX_CONS_MSG_PROPOSAL);
  out->height = px_reader_u64(&r);
  out->round = px_reader_u32(&r);
  out->valid_round = px_reader_i32(&r);
  out->proposer = px_reader_u16(&r);
  px_reader_bytes(&r, &out->value, &out->value_len, max_value);
  px_reader_fixed(&r, out->sig, PX_SIG_LEN);
  if (!r.err && !proposal_ok(out)) px_reader_fail(&r, PX_EDECODE);
  int rc = px_reader_finish(&r);
  if (rc) memset(out, 0, sizeof *out);
  return rc;
}

static void read_vote(px_reader_t *r, px_cons_vote_t *v) {
  uint16_t tag = px_reader_u16(r);
  uint8_t ver = px_reader_u8(r);
  if (!r->err) {
    if (tag != PX_CONS_MSG_PREVOTE && tag != PX_CONS_MSG_PRECOMMIT)
      px_reader_fail(r, PX_EDECODE);
    else if (ver != PX_CONS_VERSION)
      px_reader_fail(r, PX_EVERSION);
  }
  v->type = (px_cons_msg_type_t)tag;
  v->height = px_reader_u64(r);
  v->round = px_reader_u32(r);
  v->has_value = px_reader_u8(r);
  px_reader_fixed(r, v->hash, PX_HASH_LEN);
  v->validator = px_reader_u16(r);
  px_reader_fixed(r, v->sig, PX_SIG_LEN);
  if (!r->err && !vote_ok(v)) px_reader_fail(r, PX_EDECODE);
}

int px_cons_vote_decode(const uint8_t *p, size_t len, px_cons_vote_t *out) {
  if (!out) return PX_EINVAL;
  memset(out, 0, sizeof *out);
  if (!p && len) return PX_EINVAL;
  px_reader_t r;
  px_reader_init(&r, p, len);
  read_vote(&r, out);
  int rc = px_reader_finish(&r);
  if (rc) memset(out, 0, sizeof *out);
  return rc;
}

static void read_commit(px_reader_t *r, px_cons_commit_t *c) {
  read_env(r, PX_CONS_MSG_COMMIT);
  c->height = px_reader_u64(r);
  c->round = px_reader_u32(r);
  px_reader_fixed(r, c->hash, PX_HASH_LEN);
  uint16_t n = px_reader_u16(r);
  if (r->err) return;
  if (n == 0 || n > PX_CONS_MAX_VALIDATORS) {
    px_reader_fail(r, n ? PX_ETOOBIG : PX_EDECODE);
    return;
  }
  c->n = n;
  for (size_t i = 0; i < n && !r->err; i++) {
    c->sigs[i].validator = px_reader_u16(r);
    px_reader_fixed(r, c->sigs[i].sig, PX_SIG_LEN);
  }
  if (!r->err && !commit_ok(c)) px_reader_fail(r, PX_EDECODE);
}

int px_cons_commit_decode(const uint8_t *p, size_t len, px_cons_commit_t *out) {
  if (!out) return PX_EINVAL;
  memset(out, 0, sizeof *out);
  if (!p && len) return PX_EINVAL;
  px_reader_t r;
  px_reader_init(&r, p, len);
  read_commit(&r, out);
  int rc = px_reader_finish(&r);
  if (rc) memset(out, 0, sizeof *out);
  return rc;
}

int px_cons_evidence_decode(const uint8_t *p, size_t len,
                            px_cons_evidence_t *out) {
  if (!out) return PX_EINVAL;
  memset(out, 0, sizeof *out);
  if (!p && len) return PX_EINVAL;
  px_reader_t r;
  px_reader_init(&r, p, len);
  read_env(&r, PX_CONS_MSG_EVIDENCE);
  read_vote(&r, &out->a);
  read_vote(&r, &out->b);
  if (!r.err && !evidence_ok(out)) px_reader_fail(&r, PX_EDECODE);
  int rc = px_reader_finish(&r);
  if (rc) memset(out, 0, sizeof *out);
  return rc;
}

int px_cons_decision_decode(const uint8_t *p, size_t len, size_t max_value,
                            const uint8_t **value, size_t *value_len,
                            px_cons_commit_t *commit) {
  if (!value || !value_len || !commit) return PX_EINVAL;
  *value = NULL;
  *value_len = 0;
  memset(commit, 0, sizeof *commit);
  if (!p && len) return PX_EINVAL;
  px_reader_t r;
  px_reader_init(&r, p, len);
  read_env(&r, PX_CONS_MSG_DECISION);
  px_reader_bytes(&r, value, value_len, max_value);
  read_commit(&r, commit);
  if (!r.err) {
    uint8_t h[PX_HASH_LEN];
    px_hash(h, *value, *value_len);
    if (memcmp(h, commit->hash, PX_HASH_LEN) != 0)
      px_reader_fail(&r, PX_EDECODE);
  }
  int rc = px_reader_finish(&r);
  if (rc) {
    *value = NULL;
    *value_len = 0;
    memset(commit, 0, sizeof *commit);
  }
  return rc;
}

int px_cons_msg_peek(const uint8_t *p, size_t len, px_cons_msg_type_t *type,
                     uint64_t *height, uint32_t *round) {
  if (!type || !height || !round || (!p && len)) return PX_EINVAL;
  *type = 0;
  *height = 0;
  *round = 0;
  px_reader_t r;
  px_reader_init(&r, p, len);
  uint16_t tag = px_reader_u16(&r);
  uint8_t ver = px_reader_u8(&r);
  if (r.err) return r.err;
  if (tag < PX_CONS_MSG_PROPOSAL || tag > PX_CONS_MSG_EVIDENCE)
    return PX_EDECODE;
  if (ver != PX_CONS_VERSION) return PX_EVERSION;
  *type = (px_cons_msg_type_t)tag;
  if (tag == PX_CONS_MSG_DECISION) {
    const uint8_t *v;
    size_t vn;
    px_reader_bytes(&r, &v, &vn, SIZE_MAX);
    px_reader_u16(&r);
    px_reader_u8(&r);
  } else if (tag == PX_CONS_MSG_EVIDENCE) {
    px_reader_u16(&r);
    px_reader_u8(&r);
  }
  /* Every kind then carries u64 height, u32 round. */
  *height = px_reader_u64(&r);
  *round = px_reader_u32(&r);
  if (r.err) {
    *type = 0;
    *height = 0;
    *round = 0;
    return r.err;
  }
  return 0;
}

/* ---- certificate and evidence checks ------------------------------------- */

void px_cons_commit_vote(const px_cons_commit_t *c, size_t i,
                         px_cons_vote_t *v) {
  memset(v, 0, sizeof *v);
  v->type = PX_CONS_MSG_PRECOMMIT;
  v->height = c->height;
  v->round = c->round;
  v->has_value = 1;
  memcpy(v->hash, c->hash, PX_HASH_LEN);
  v->validator = c->sigs[i].validator;
  memcpy(v->sig, c->sigs[i].sig, PX_SIG_LEN);
}

int px_cons_commit_verify(const char *chain_id, const px_cons_valset_t *vs,
                          const px_cons_commit_t *c,
                          const uint8_t expect_hash[PX_HASH_LEN]) {
  if (!chain_id || !vs || !c || !commit_ok(c)) return PX_EINVAL;
  if (expect_hash && memcmp(expect_hash, c->hash, PX_HASH_LEN) != 0)
    return PX_EPROTO;
  uint64_t power = 0;
  for (size_t i = 0; i < c->n; i++) {
    uint16_t idx = c->sigs[i].validator;
    if (idx >= vs->n) return PX_EPROTO; /* sorted, so no duplicates */
    px_cons_vote_t v;
    px_cons_commit_vote(c, i, &v);
    if (px_cons_vote_verify(chain_id, vs->v[idx].pk, &v) != 0)
      return PX_EBADSIG;
    power += vs->v[idx].power;
  }
  /* More than 2/3: total <= INT64_MAX/8, so 3 * power cannot overflow. */
  return power * 3 > vs->total * 2 ? 0 : PX_EAUTH;
}

int px_cons_evidence_verify(const char *chain_id, const px_cons_valset_t *vs,
                            const px_cons_evidence_t *e) {
  if (!chain_id || !vs || !e) return PX_EINVAL;
  if (!evidence_ok(e)) return PX_EPROTO;
  if (e->a.validator >= vs->n) return PX_EPROTO;
  const uint8_t *pk = vs->v[e->a.validator].pk;
  if (px_cons_vote_verify(chain_id, pk, &e->a) != 0) return PX_EBADSIG;
  if (px_cons_vote_verify(chain_id, pk, &e->b) != 0) return PX_EBADSIG;
  return 0;
}
