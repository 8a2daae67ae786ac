/*
 * session.c — the session contract (id 5): payment channels between a
 * payer and a market provider, and disputes over an inference session's
 * signed commitment (plexus/session_chain.h; docs/market.md "Sessions and
 * payment channels").
 *
 * State (namespace 05):
 *   05 'C' channel_id             channel record
 *   05 'V' session_id provider    verdict record (one per pair, ever)
 *
 * Money.  CHANNEL_OPEN moves the deposit from the payer's balance into the
 * channel record; CHANNEL_CLAIM pays the provider out of it, never past
 * the deposit (claimed <= deposit); CHANNEL_CLOSE refunds deposit - claimed
 * to the payer and leaves the record holding nothing.  An open record holds
 * deposit - claimed and px_ledger_supply counts it (session_channel_held),
 * so balances + stakes + unbonding + escrow + channels = genesis + emitted
 * - burned at every height.
 *
 * Receipts are cumulative: the newest one the provider holds is worth
 * min(cumulative, deposit) in total, whatever it claimed before, so a lost
 * or replayed older receipt can never pay twice, and a provider can claim
 * as often as it likes.  The payer may take its deposit back only from
 * expiry_height on, which is the provider's deadline to claim.
 *
 * Disputes re-execute the whole session on every validator: the model
 * travels in the tx (so no validator needs a blob store), the tx is capped
 * at PX_SESSION_DISPUTE_TX_MAX bytes and the replay at
 * PX_SESSION_DISPUTE_MAX_MACS multiply-accumulates and
 * PX_SESSION_DISPUTE_MAX_KV_BYTES of KV cache, so the work a single tx can
 * demand is bounded before anything runs.  The replay uses the
 * deterministic kernels (bit-exact on every machine, compute.h) with one
 * thread, as the market's dispute referee does.  A slash reuses the
 * market's rules (market_slash_stake); the verdict record makes it
 * once-only per (session, provider).
 *
 * Every procedure is all-or-nothing: on any error the ledger undoes the
 * tx's writes.
 */
#include <string.h>

#include "plexus/codec.h"
#include "plexus/compute.h"
#include "plexus/crypto.h"
#include "plexus/market.h"
#include "plexus/market_chain.h"
#include "plexus/model.h"
#include "plexus/model_io.h"
#include "plexus/session.h"
#include "plexus/session_chain.h"

#include "ledger/market_internal.h"

#include "base/px_internal.h"

_Static_assert(PX_SESSION_DISPUTE_TX_MAX <= PX_LEDGER_TX_MAX_SIZE,
               "a session dispute tx must fit the hard tx cap");

#define KEY_SESSION_CHANNEL 'C'
#define KEY_SESSION_VERDICT 'V'
#define CHANNEL_KEY_LEN (2 + 32)
#define VERDICT_KEY_LEN (2 + 32 + PX_PK_LEN)
#define CHANNEL_REC_VERSION 1
#define CHANNEL_REC_LEN (1 + 32 + 32 + 32 + 8 * 4 + 1 + 8 + 8)
#define VERDICT_REC_LEN (1 + 8 + 32 + 4 + 4 + 8)

static const char k_channel_domain[] = "plexus-session-channel-v1";

void px_session_channel_id(const uint8_t payer[PX_PK_LEN],
                           const uint8_t provider[PX_PK_LEN],
                           const uint8_t salt[32], uint8_t id[32]) {
  px_hash_state_t st;
  px_hash_init(&st);
  px_hash_update(&st, k_channel_domain, sizeof k_channel_domain - 1);
  px_hash_update(&st, payer, PX_PK_LEN);
  px_hash_update(&st, provider, PX_PK_LEN);
  px_hash_update(&st, salt, 32);
  px_hash_final(&st, id);
}

/* ---- payloads --------------------------------------------------------------
 */

int px_session_payload_open(px_buf_t *out, const px_session_open_t *o) {
  if (!out || !o) return PX_EINVAL;
  px_writer_t w;
  px_writer_init(&w, out);
  px_writer_fixed(&w, o->provider, PX_PK_LEN);
  px_writer_u64(&w, o->deposit);
  px_writer_u64(&w, o->expiry_height);
  px_writer_fixed(&w, o->salt, 32);
  return px_writer_finish(&w);
}

int px_session_payload_open_decode(const uint8_t *p, size_t n,
                                   px_session_open_t *o) {
  memset(o, 0, sizeof *o);
  px_reader_t r;
  px_reader_init(&r, p, n);
  px_reader_fixed(&r, o->provider, PX_PK_LEN);
  o->deposit = px_reader_u64(&r);
  o->expiry_height = px_reader_u64(&r);
  px_reader_fixed(&r, o->salt, 32);
  if (!r.err && (o->deposit == 0 || o->expiry_height == 0))
    px_reader_fail(&r, PX_EDECODE);
  int rc = px_reader_finish(&r);
  if (rc) memset(o, 0, sizeof *o);
  return rc;
}

int px_session_payload_claim(px_buf_t *out, const px_session_claim_t *c) {
  if (!out || !c) return PX_EINVAL;
  px_writer_t w;
  px_writer_init(&w, out);
  px_writer_fixed(&w, c->channel_id, 32);
  px_writer_u64(&w, c->cumulative);
  px_writer_fixed(&w, c->payer_sig, PX_SIG_LEN);
  return px_writer_finish(&w);
}

int px_session_payload_claim_decode(const uint8_t *p, size_t n,
                                    px_session_claim_t *c) {
  memset(c, 0, sizeof *c);
  px_reader_t r;
  px_reader_init(&r, p, n);
  px_reader_fixed(&r, c->channel_id, 32);
  c->cumulative = px_reader_u64(&r);
  px_reader_fixed(&r, c->payer_sig, PX_SIG_LEN);
  if (!r.err && c->cumulative == 0) px_reader_fail(&r, PX_EDECODE);
  int rc = px_reader_finish(&r);
  if (rc) memset(c, 0, sizeof *c);
  return rc;
}

int px_session_payload_close(px_buf_t *out, const uint8_t channel_id[32]) {
  if (!out || !channel_id) return PX_EINVAL;
  return px_buf_append(out, channel_id, 32);
}

int px_session_payload_close_decode(const uint8_t *p, size_t n,
                                    uint8_t channel_id[32]) {
  memset(channel_id, 0, 32);
  if (n < 32) return PX_ETRUNC;
  if (n > 32) return PX_ETRAILING;
  memcpy(channel_id, p, 32);
  return 0;
}

/* Room left for the tx envelope (chain id, keys, fee, nonce, sig). */
#define DISPUTE_ENVELOPE 1024u

int px_session_payload_dispute(px_buf_t *out, const px_session_dispute_t *d) {
  if (!out || !d || (!d->tokens && d->commit.n_tokens) ||
      (!d->model && d->commit.model_size))
    return PX_EINVAL;
  uint64_t size = 4 + PX_SESSION_COMMIT_LEN + 4ull * d->commit.n_tokens + 8 +
                  d->commit.model_size;
  if (d->commit.model_size > PX_SESSION_DISPUTE_TX_MAX ||
      size > PX_SESSION_DISPUTE_TX_MAX - DISPUTE_ENVELOPE) {
    PX_LOGE("session",
            "dispute refused: %u tokens and a %llu-byte model make a "
            "%llu-byte payload, over the %u-byte on-chain bound",
            d->commit.n_tokens, (unsigned long long)d->commit.model_size,
            (unsigned long long)size,
            PX_SESSION_DISPUTE_TX_MAX - DISPUTE_ENVELOPE);
    return PX_ELIMIT;
  }
  px_buf_t cb;
  px_buf_init(&cb, 0);
  int rc = px_session_commit_encode(&d->commit, &cb);
  if (rc) {
    px_buf_release(&cb);
    return rc;
  }
  px_writer_t w;
  px_writer_init(&w, out);
  px_writer_bytes(&w, cb.data, cb.len);
  for (uint32_t i = 0; i < d->commit.n_tokens; i++)
    px_writer_i32(&w, d->tokens[i]);
  px_writer_bytes(&w, d->model, (size_t)d->commit.model_size);
  px_buf_release(&cb);
  return px_writer_finish(&w);
}

void px_session_dispute_release(px_session_dispute_t *d) {
  if (!d) return;
  px_free(d->tokens_);
  px_free(d->model_);
  memset(d, 0, sizeof *d);
}

int px_session_payload_dispute_decode(const uint8_t *p, size_t n,
                                      px_session_dispute_t *d) {
  memset(d, 0, sizeof *d);
  px_reader_t r;
  px_reader_init(&r, p, n);
  const uint8_t *cp = NULL, *mp = NULL;
  size_t cn = 0, mn = 0;
  px_reader_bytes(&r, &cp, &cn, PX_SESSION_COMMIT_LEN);
  if (!r.err) {
    int rc = px_session_commit_decode(cp, cn, &d->commit);
    if (rc) px_reader_fail(&r, rc);
  }
  /* the token count is bounded by what is left, before allocating */
  if (!r.err && px_reader_remaining(&r) / 4 < d->commit.n_tokens)
    px_reader_fail(&r, PX_ETRUNC);
  if (!r.err) {
    d->tokens_ = px_malloc(sizeof(int32_t) * (d->commit.n_tokens + 1u));
    if (!d->tokens_) px_reader_fail(&r, PX_ENOMEM);
  }
  for (uint32_t i = 0; !r.err && i < d->commit.n_tokens; i++)
    d->tokens_[i] = px_reader_i32(&r);
  px_reader_bytes(&r, &mp, &mn, PX_SESSION_DISPUTE_TX_MAX);
  if (!r.err && mn != d->commit.model_size) px_reader_fail(&r, PX_EDECODE);
  if (!r.err) {
    /* px_malloc memory is aligned for any type: the loader's 4 bytes */
    d->model_ = px_malloc(mn ? mn : 1);
    if (!d->model_)
      px_reader_fail(&r, PX_ENOMEM);
    else if (mn)
      memcpy(d->model_, mp, mn);
  }
  int rc = px_reader_finish(&r);
  if (rc) {
    px_session_dispute_release(d);
    return rc;
  }
  d->tokens = d->tokens_;
  d->model = d->model_;
  return 0;
}

/* ---- records ---------------------------------------------------------------
 */

static void channel_key(uint8_t key[CHANNEL_KEY_LEN], const uint8_t id[32]) {
  key[0] = PX_CONTRACT_SESSION;
  key[1] = KEY_SESSION_CHANNEL;
  memcpy(key + 2, id, 32);
}

static void verdict_key(uint8_t key[VERDICT_KEY_LEN],
                        const uint8_t session_id[32],
                        const uint8_t provider[PX_PK_LEN]) {
  key[0] = PX_CONTRACT_SESSION;
  key[1] = KEY_SESSION_VERDICT;
  memcpy(key + 2, session_id, 32);
  memcpy(key + 2 + 32, provider, PX_PK_LEN);
}

static void channel_encode(const px_session_channel_t *c,
                           uint8_t out[CHANNEL_REC_LEN]) {
  px_buf_t b;
  px_buf_init(&b, 0);
  px_writer_t w;
  px_writer_init(&w, &b);
  px_writer_u8(&w, CHANNEL_REC_VERSION);
  px_writer_fixed(&w, c->id, 32);
  px_writer_fixed(&w, c->payer, PX_PK_LEN);
  px_writer_fixed(&w, c->provider, PX_PK_LEN);
  px_writer_u64(&w, c->deposit);
  px_writer_u64(&w, c->claimed);
  px_writer_u64(&w, c->expiry_height);
  px_writer_u64(&w, c->opened_height);
  px_writer_u8(&w, c->state);
  px_writer_u64(&w, c->closed_height);
  px_writer_u64(&w, c->refunded);
  /* a fixed-size record into a fixed buffer: cannot fail but for memory */
  if (px_writer_finish(&w) == 0 && b.len == CHANNEL_REC_LEN)
    memcpy(out, b.data, CHANNEL_REC_LEN);
  else
    memset(out, 0, CHANNEL_REC_LEN);
  px_buf_release(&b);
}

int px_session_channel_decode(const uint8_t *p, size_t n,
                              px_session_channel_t *c) {
  memset(c, 0, sizeof *c);
  px_reader_t r;
  px_reader_init(&r, p, n);
  if (px_reader_u8(&r) != CHANNEL_REC_VERSION) px_reader_fail(&r, PX_EVERSION);
  px_reader_fixed(&r, c->id, 32);
  px_reader_fixed(&r, c->payer, PX_PK_LEN);
  px_reader_fixed(&r, c->provider, PX_PK_LEN);
  c->deposit = px_reader_u64(&r);
  c->claimed = px_reader_u64(&r);
  c->expiry_height = px_reader_u64(&r);
  c->opened_height = px_reader_u64(&r);
  c->state = px_reader_u8(&r);
  c->closed_height = px_reader_u64(&r);
  c->refunded = px_reader_u64(&r);
  if (!r.err && (c->claimed > c->deposit || (c->state != PX_CHANNEL_OPEN &&
                                             c->state != PX_CHANNEL_CLOSED)))
    px_reader_fail(&r, PX_EDECODE);
  int rc = px_reader_finish(&r);
  if (rc) memset(c, 0, sizeof *c);
  return rc;
}

int px_session_chain_channel(const px_ledger_state_t *s, const uint8_t id[32],
                             px_session_channel_t *out) {
  if (!s || !id || !out) return PX_EINVAL;
  uint8_t key[CHANNEL_KEY_LEN];
  const uint8_t *v;
  size_t n;
  channel_key(key, id);
  if (px_ledger_get(s, key, sizeof key, &v, &n)) return PX_ENOTFOUND;
  return px_session_channel_decode(v, n, out) ? PX_EIO : 0;
}

static int channel_put(px_ledger_ctx_t *ctx, const px_session_channel_t *c) {
  uint8_t key[CHANNEL_KEY_LEN], val[CHANNEL_REC_LEN];
  channel_key(key, c->id);
  channel_encode(c, val);
  return ctx_put(ctx, key, sizeof key, val, sizeof val);
}

int session_channel_held(const uint8_t *key, size_t klen, const uint8_t *val,
                         size_t vlen, uint64_t *held) {
  *held = 0;
  if (klen != CHANNEL_KEY_LEN || key[0] != PX_CONTRACT_SESSION ||
      key[1] != KEY_SESSION_CHANNEL)
    return 0;
  px_session_channel_t c;
  if (px_session_channel_decode(val, vlen, &c)) return PX_EIO;
  if (c.state == PX_CHANNEL_OPEN) *held = c.deposit - c.claimed;
  return 0;
}

typedef struct {
  uint64_t sum;
  int err;
} held_acc_t;

static int held_visit(void *ud, const uint8_t *key, size_t klen,
                      const uint8_t *val, size_t vlen) {
  held_acc_t *a = ud;
  uint64_t h;
  int rc = session_channel_held(key, klen, val, vlen, &h);
  if (!rc) rc = u64_add(a->sum, h, &a->sum);
  if (rc) a->err = rc;
  return rc;
}

uint64_t px_session_chain_deposits(const px_ledger_state_t *s) {
  held_acc_t a = {0, 0};
  if (!s) return 0;
  smt_foreach(&s->smt, held_visit, &a);
  return a.err ? UINT64_MAX : a.sum;
}

static void verdict_encode(const px_session_verdict_t *v,
                           uint8_t out[VERDICT_REC_LEN]) {
  out[0] = 1;
  px_put_u64le(out + 1, v->height);
  memcpy(out + 9, v->sender, PX_PK_LEN);
  px_put_u32le(out + 41, v->first_mismatch);
  px_put_u32le(out + 45, (uint32_t)v->expected);
  px_put_u64le(out + 49, v->slashed);
}

int px_session_verdict_decode(const uint8_t *p, size_t n,
                              px_session_verdict_t *v) {
  memset(v, 0, sizeof *v);
  if (n < VERDICT_REC_LEN) return PX_ETRUNC;
  if (n > VERDICT_REC_LEN) return PX_ETRAILING;
  if (p[0] != 1) return PX_EVERSION;
  v->height = px_get_u64le(p + 1);
  memcpy(v->sender, p + 9, PX_PK_LEN);
  v->first_mismatch = px_get_u32le(p + 41);
  v->expected = (int32_t)px_get_u32le(p + 45);
  v->slashed = px_get_u64le(p + 49);
  return 0;
}

int px_session_chain_verdict(const px_ledger_state_t *s,
                             const uint8_t session_id[32],
                             const uint8_t provider[PX_PK_LEN],
                             px_session_verdict_t *out) {
  if (!s || !session_id || !provider || !out) return PX_EINVAL;
  uint8_t key[VERDICT_KEY_LEN];
  const uint8_t *v;
  size_t n;
  verdict_key(key, session_id, provider);
  if (px_ledger_get(s, key, sizeof key, &v, &n)) return PX_ENOTFOUND;
  return px_session_verdict_decode(v, n, out) ? PX_EIO : 0;
}

/* ---- procedures ------------------------------------------------------------
 */

static int do_open(px_ledger_ctx_t *ctx, const px_tx_t *tx) {
  px_session_open_t o;
  int rc = px_session_payload_open_decode(tx->payload, tx->payload_len, &o);
  if (rc) return rc;
  if (!memcmp(o.provider, tx->sender, PX_PK_LEN)) {
    PX_LOGD("session", "channel refused: payer and provider are one key");
    return PX_EINVAL;
  }
  if (o.expiry_height <= ctx->header->height) {
    PX_LOGD("session", "channel refused: expiry %llu is not in the future",
            (unsigned long long)o.expiry_height);
    return PX_ERANGE;
  }
  px_provider_rec_t pr;
  if ((rc = px_market_provider(ctx->s, o.provider, &pr))) return rc;
  if (!pr.active) {
    PX_LOGD("session", "channel refused: the provider is not active");
    return PX_ESTATE;
  }
  px_session_channel_t c;
  memset(&c, 0, sizeof c);
  px_session_channel_id(tx->sender, o.provider, o.salt, c.id);
  uint8_t key[CHANNEL_KEY_LEN];
  channel_key(key, c.id);
  if (px_ledger_get(ctx->s, key, sizeof key, NULL, NULL) == 0) return PX_EEXIST;
  if ((rc = token_debit(ctx->s, tx->sender, o.deposit))) return rc;
  memcpy(c.payer, tx->sender, PX_PK_LEN);
  memcpy(c.provider, o.provider, PX_PK_LEN);
  c.deposit = o.deposit;
  c.expiry_height = o.expiry_height;
  c.opened_height = ctx->header->height;
  c.state = PX_CHANNEL_OPEN;
  return channel_put(ctx, &c);
}

static int do_claim(px_ledger_ctx_t *ctx, const px_tx_t *tx) {
  px_session_claim_t cl;
  int rc = px_session_payload_claim_decode(tx->payload, tx->payload_len, &cl);
  if (rc) return rc;
  px_session_channel_t c;
  if ((rc = px_session_chain_channel(ctx->s, cl.channel_id, &c))) return rc;
  if (memcmp(c.provider, tx->sender, PX_PK_LEN)) return PX_EPERM;
  if (c.state != PX_CHANNEL_OPEN) return PX_ESTATE;
  if ((rc = px_session_receipt_verify(c.payer, ctx->s->chain_id, c.id,
                                      cl.cumulative, cl.payer_sig)))
    return rc;
  uint64_t worth = PX_MIN(cl.cumulative, c.deposit);
  if (worth <= c.claimed) {
    PX_LOGD("session",
            "claim refused: receipt of %llu pays nothing past the "
            "%llu already claimed",
            (unsigned long long)cl.cumulative, (unsigned long long)c.claimed);
    return PX_ESTATE;
  }
  uint64_t pay = worth - c.claimed;
  if ((rc = token_credit(ctx->s, c.provider, pay))) return rc;
  c.claimed = worth;
  return channel_put(ctx, &c);
}

static int do_close(px_ledger_ctx_t *ctx, const px_tx_t *tx) {
  uint8_t id[32];
  int rc = px_session_payload_close_decode(tx->payload, tx->payload_len, id);
  if (rc) return rc;
  px_session_channel_t c;
  if ((rc = px_session_chain_channel(ctx->s, id, &c))) return rc;
  if (c.state != PX_CHANNEL_OPEN) return PX_ESTATE;
  int by_provider = !memcmp(c.provider, tx->sender, PX_PK_LEN);
  int by_payer = !memcmp(c.payer, tx->sender, PX_PK_LEN);
  if (!by_provider && !by_payer) return PX_EPERM;
  if (!by_provider && ctx->header->height < c.expiry_height) {
    PX_LOGD("session", "close refused: the channel expires at %llu",
            (unsigned long long)c.expiry_height);
    return PX_ESTATE;
  }
  uint64_t refund = c.deposit - c.claimed;
  if (refund && (rc = token_credit(ctx->s, c.payer, refund))) return rc;
  c.refunded = refund;
  c.state = PX_CHANNEL_CLOSED;
  c.closed_height = ctx->header->height;
  return channel_put(ctx, &c);
}

/* The KV cache a replay of this config allocates (saturating). */
static uint64_t kv_bytes(const px_llama2c_config_t *cf) {
  uint64_t kv =
      (uint64_t)cf->dim * (uint64_t)cf->n_kv_heads / (uint64_t)cf->n_heads;
  uint64_t b = 2ull * 4 * (uint64_t)cf->n_layers;
  if (kv && b > UINT64_MAX / kv) return UINT64_MAX;
  b *= kv;
  if ((uint64_t)cf->seq_len && b > UINT64_MAX / (uint64_t)cf->seq_len)
    return UINT64_MAX;
  return b * (uint64_t)cf->seq_len;
}

/* Replay the disputed sequence: 0 honest, PX_EAUTH refuted (mismatch,
 * expected filled), another code when it cannot be judged. */
static int judge(const px_session_dispute_t *d, uint32_t *mismatch,
                 int32_t *expected) {
  const px_session_commit_t *c = &d->commit;
  px_llama2c_t *ck = NULL;
  px_llama_t *m = NULL;
  px_compute_t *cc = NULL;
  int rc = px_llama2c_open_mem(d->model, (size_t)c->model_size, &ck);
  if (rc) {
    PX_LOGD("session", "dispute: the model does not load (%s)",
            px_err_name(rc));
    return rc;
  }
  uint64_t macs = px_session_macs(&ck->cfg, c->n_tokens);
  if (macs > PX_SESSION_DISPUTE_MAX_MACS ||
      kv_bytes(&ck->cfg) > PX_SESSION_DISPUTE_MAX_KV_BYTES) {
    PX_LOGD("session",
            "dispute refused: %u tokens need %llu MACs (bound "
            "%llu) and %llu KV bytes (bound %llu)",
            c->n_tokens, (unsigned long long)macs,
            (unsigned long long)PX_SESSION_DISPUTE_MAX_MACS,
            (unsigned long long)kv_bytes(&ck->cfg),
            (unsigned long long)PX_SESSION_DISPUTE_MAX_KV_BYTES);
    px_llama2c_free(ck);
    return PX_ELIMIT;
  }
  rc = px_llama_new(ck, &m);
  px_llama2c_free(ck);
  if (rc) return rc;
  px_compute_opts_t o = {.simd = -1, .threads = 1};
  if ((rc = px_compute_new(&o, &cc))) {
    px_llama_free(m);
    return rc;
  }
  rc = px_session_replay_from(m, cc, &c->params, d->tokens, c->n_prompt,
                              c->n_prompt + c->n_forced, c->n_tokens, mismatch,
                              expected);
  px_compute_free(cc);
  px_llama_free(m);
  return rc;
}

static int do_dispute(px_ledger_ctx_t *ctx, const px_tx_t *tx) {
  px_session_dispute_t d;
  int rc = px_session_payload_dispute_decode(tx->payload, tx->payload_len, &d);
  if (rc) return rc;
  const px_session_commit_t *c = &d.commit;
  uint8_t h[32], key[VERDICT_KEY_LEN];
  if ((rc = px_session_commit_verify(c))) goto out;
  px_session_tokens_hash(d.tokens, c->n_tokens, h);
  if (memcmp(h, c->tokens_hash, 32)) {
    PX_LOGD("session", "dispute refused: tokens do not hash to the commitment");
    rc = PX_EAUTH;
    goto out;
  }
  if ((rc = px_blob_root(d.model, (size_t)c->model_size, h))) goto out;
  if (memcmp(h, c->model, 32)) {
    PX_LOGD("session", "dispute refused: model bytes are not the committed "
                       "model");
    rc = PX_EAUTH;
    goto out;
  }
  verdict_key(key, c->session_id, c->provider);
  if (px_ledger_get(ctx->s, key, sizeof key, NULL, NULL) == 0) {
    rc = PX_EDUP;
    goto out;
  }
  px_session_verdict_t v;
  memset(&v, 0, sizeof v);
  rc = judge(&d, &v.first_mismatch, &v.expected);
  if (rc == 0) {
    PX_LOGD("session", "dispute refused: the commitment is honest");
    rc = PX_EPROTO;
    goto out;
  }
  if (rc != PX_EAUTH) goto out;
  /* refuted: slash as the market does, the payer in the requester's place */
  px_session_channel_t ch;
  const uint8_t *payer = tx->sender;
  rc = px_session_chain_channel(ctx->s, c->channel_id, &ch);
  if (rc == 0)
    payer = ch.payer;
  else if (rc != PX_ENOTFOUND)
    goto out;
  if ((rc =
           market_slash_stake(ctx, c->provider, tx->sender, payer, &v.slashed)))
    goto out;
  v.height = ctx->header->height;
  memcpy(v.sender, tx->sender, PX_PK_LEN);
  uint8_t val[VERDICT_REC_LEN];
  verdict_encode(&v, val);
  rc = ctx_put(ctx, key, sizeof key, val, sizeof val);
  if (!rc)
    PX_LOGI("session", "dispute upheld: provider slashed %llu (token %u)",
            (unsigned long long)v.slashed, v.first_mismatch);
out:
  px_session_dispute_release(&d);
  return rc;
}

/* ---- contract --------------------------------------------------------------
 */

static int session_check(const px_tx_t *tx) {
  switch (tx->type) {
  case PX_TX_CHANNEL_OPEN: {
    px_session_open_t o;
    return px_session_payload_open_decode(tx->payload, tx->payload_len, &o);
  }
  case PX_TX_CHANNEL_CLAIM: {
    px_session_claim_t c;
    return px_session_payload_claim_decode(tx->payload, tx->payload_len, &c);
  }
  case PX_TX_CHANNEL_CLOSE: {
    uint8_t id[32];
    return px_session_payload_close_decode(tx->payload, tx->payload_len, id);
  }
  case PX_TX_SESSION_DISPUTE: {
    px_session_dispute_t d;
    int rc =
        px_session_payload_dispute_decode(tx->payload, tx->payload_len, &d);
    px_session_dispute_release(&d);
    return rc;
  }
  default:
    return PX_EDECODE;
  }
}

static int session_execute(px_ledger_ctx_t *ctx, const px_tx_t *tx) {
  switch (tx->type) {
  case PX_TX_CHANNEL_OPEN:
    return do_open(ctx, tx);
  case PX_TX_CHANNEL_CLAIM:
    return do_claim(ctx, tx);
  case PX_TX_CHANNEL_CLOSE:
    return do_close(ctx, tx);
  case PX_TX_SESSION_DISPUTE:
    return do_dispute(ctx, tx);
  default:
    return PX_EDECODE;
  }
}

static int session_query(const px_ledger_state_t *s, uint8_t method,
                         const uint8_t *args, size_t n, px_buf_t *out) {
  uint8_t key[VERDICT_KEY_LEN];
  size_t kl;
  switch (method) {
  case PX_SESSION_Q_CHANNEL:
    if (n != 32) return PX_EINVAL;
    channel_key(key, args);
    kl = CHANNEL_KEY_LEN;
    break;
  case PX_SESSION_Q_VERDICT:
    if (n != 32 + PX_PK_LEN) return PX_EINVAL;
    verdict_key(key, args, args + 32);
    kl = VERDICT_KEY_LEN;
    break;
  default:
    return PX_EINVAL;
  }
  const uint8_t *v;
  size_t vn;
  if (px_ledger_get(s, key, kl, &v, &vn)) return PX_ENOTFOUND;
  return px_buf_append(out, v, vn);
}

const px_contract_t px_contract_session = {
    .name = "session",
    .id = PX_CONTRACT_SESSION,
    .check = session_check,
    .execute = session_execute,
    .query = session_query,
    .begin_block = NULL,
};
