/*
 * market.c — the market contract (id 3): provider registry, job escrow,
 * commitments on chain, equivocation slashing, settlement and reputation
 * (plexus/market_chain.h; docs/market.md "The market contract" documents
 * every rule and encoding).  Disputes are in market_dispute.c, encodings in
 * market_codec.c.
 *
 * State (namespace 03):
 *   03 'P' pk                    provider record
 *   03 'J' job_id                job record (spec, manifest, escrow, paid)
 *   03 'C' job_id be32 shard pk  commit record (commitment, height, paid, lost)
 *   03 'X' job_id be32 shard pk  slash marker: u64 height, u64 amount
 *
 * Money.  JOB_OPEN moves the escrow from the requester's balance into the
 * job record; settlement pays providers out of it (never above it: paid <=
 * escrow is checked per entry) and the final settle refunds the rest.  A
 * job record holds escrow - paid while OPEN and nothing once closed, and
 * px_ledger_supply counts that (market_job_escrow_held), so
 *   balances + stakes + unbonding + open escrow = genesis + emitted - burned
 * holds at every height.  A slash takes PX_MARKET_SLASH_BPS of the
 * offender's staking-contract stake (bonded first, then its unbonding
 * entries, newest first: funds on their way out are still answerable) and
 * splits it with px_slash_split: the burned part is added to the supply's
 * burned total, the others are credited to the winner (or the reporter of
 * an equivocation) and the job's requester.
 *
 * One offence per (job, shard, provider) is punished: the 'X' marker makes a
 * second slash for the same tuple impossible, and a commit record stored
 * after a marker is born lost (never paid).
 *
 * Everything is deterministic (no clock, no floats outside the dispute
 * referee's deterministic kernels) and every procedure is all-or-nothing:
 * on any error the ledger undoes the tx's writes.
 */
#include <string.h>

#include "plexus/codec.h"
#include "plexus/crypto.h"
#include "plexus/market_chain.h"

#include "ledger/market_internal.h"

#include "base/px_internal.h"

_Static_assert(PX_MARKET_DISPUTE_TX_MAX <= PX_LEDGER_TX_MAX_SIZE,
               "a dispute tx must fit the hard tx cap");

/* ---- keys -----------------------------------------------------------------
 */

static void pk_key(uint8_t key[MARKET_PK_KEY_LEN],
                   const uint8_t pk[PX_PK_LEN]) {
  key[0] = PX_CONTRACT_MARKET;
  key[1] = KEY_MARKET_PROVIDER;
  memcpy(key + 2, pk, PX_PK_LEN);
}

static void job_key(uint8_t key[MARKET_JOB_KEY_LEN],
                    const uint8_t id[PX_HASH_LEN]) {
  key[0] = PX_CONTRACT_MARKET;
  key[1] = KEY_MARKET_JOB;
  memcpy(key + 2, id, PX_HASH_LEN);
}

static void shard_key(uint8_t key[MARKET_SHARD_KEY_LEN], uint8_t kind,
                      const uint8_t job_id[PX_HASH_LEN], uint32_t shard,
                      const uint8_t pk[PX_PK_LEN]) {
  key[0] = PX_CONTRACT_MARKET;
  key[1] = kind;
  memcpy(key + 2, job_id, PX_HASH_LEN);
  key[2 + PX_HASH_LEN] = (uint8_t)(shard >> 24);
  key[3 + PX_HASH_LEN] = (uint8_t)(shard >> 16);
  key[4 + PX_HASH_LEN] = (uint8_t)(shard >> 8);
  key[5 + PX_HASH_LEN] = (uint8_t)shard;
  memcpy(key + 6 + PX_HASH_LEN, pk, PX_PK_LEN);
}

/* ---- records in the state -------------------------------------------------
 */

static int provider_get(const px_ledger_state_t *s, const uint8_t pk[PX_PK_LEN],
                        px_provider_rec_t *r) {
  uint8_t key[MARKET_PK_KEY_LEN];
  const uint8_t *v;
  size_t n;
  pk_key(key, pk);
  if (px_ledger_get(s, key, sizeof key, &v, &n)) return PX_ENOTFOUND;
  return px_provider_rec_decode(v, n, r) ? PX_EIO : 0;
}

static int provider_put(px_ledger_ctx_t *ctx, const px_provider_rec_t *r) {
  uint8_t key[MARKET_PK_KEY_LEN];
  px_buf_t b;
  px_buf_init(&b, 0);
  pk_key(key, r->pk);
  int rc = market_provider_rec_encode(r, &b);
  if (!rc) rc = ctx_put(ctx, key, sizeof key, b.data, b.len);
  px_buf_release(&b);
  return rc;
}

int market_job_get(const px_ledger_state_t *s, const uint8_t id[PX_HASH_LEN],
                   px_job_rec_t *r) {
  uint8_t key[MARKET_JOB_KEY_LEN];
  const uint8_t *v;
  size_t n;
  job_key(key, id);
  if (px_ledger_get(s, key, sizeof key, &v, &n)) return PX_ENOTFOUND;
  return px_job_rec_decode(v, n, r) ? PX_EIO : 0;
}

int market_job_put(px_ledger_ctx_t *ctx, const px_job_rec_t *r) {
  uint8_t key[MARKET_JOB_KEY_LEN];
  px_buf_t b;
  px_buf_init(&b, 0);
  job_key(key, r->id);
  int rc = market_job_rec_encode(r, &b);
  if (!rc) rc = ctx_put(ctx, key, sizeof key, b.data, b.len);
  px_buf_release(&b);
  return rc;
}

int market_commit_get(const px_ledger_state_t *s,
                      const uint8_t job_id[PX_HASH_LEN], uint32_t shard,
                      const uint8_t pk[PX_PK_LEN], px_commit_rec_t *r) {
  uint8_t key[MARKET_SHARD_KEY_LEN];
  const uint8_t *v;
  size_t n;
  shard_key(key, KEY_MARKET_COMMIT, job_id, shard, pk);
  if (px_ledger_get(s, key, sizeof key, &v, &n)) return PX_ENOTFOUND;
  return px_commit_rec_decode(v, n, r) ? PX_EIO : 0;
}

int market_commit_put(px_ledger_ctx_t *ctx, const px_commit_rec_t *r) {
  uint8_t key[MARKET_SHARD_KEY_LEN];
  px_buf_t b;
  px_buf_init(&b, 0);
  shard_key(key, KEY_MARKET_COMMIT, r->c.job_id, r->c.shard, r->c.provider);
  int rc = market_commit_rec_encode(r, &b);
  if (!rc) rc = ctx_put(ctx, key, sizeof key, b.data, b.len);
  px_buf_release(&b);
  return rc;
}

static int slashed(const px_ledger_state_t *s, const uint8_t job[PX_HASH_LEN],
                   uint32_t shard, const uint8_t pk[PX_PK_LEN]) {
  uint8_t key[MARKET_SHARD_KEY_LEN];
  shard_key(key, KEY_MARKET_SLASHED, job, shard, pk);
  return px_ledger_get(s, key, sizeof key, NULL, NULL) == 0;
}

int market_job_escrow_held(const uint8_t *key, size_t klen, const uint8_t *val,
                           size_t vlen, uint64_t *held) {
  *held = 0;
  if (klen != MARKET_JOB_KEY_LEN || key[0] != PX_CONTRACT_MARKET ||
      key[1] != KEY_MARKET_JOB)
    return 0;
  px_job_rec_t r;
  if (px_job_rec_decode(val, vlen, &r)) return PX_EIO;
  if (r.state == PX_JOBREC_OPEN) *held = r.escrow - r.paid;
  return 0;
}

/* ---- slashing -------------------------------------------------------------
 */

/* floor(x * bps / 10000) without overflow (bps <= 10000). */
static uint64_t mul_bps(uint64_t x, uint32_t bps) {
  return x / PX_MARKET_BPS * bps + x % PX_MARKET_BPS * bps / PX_MARKET_BPS;
}

/* Take PX_MARKET_SLASH_BPS of pk's stake + unbonding; *amount = taken. */
static int take_stake(px_ledger_state_t *s, const uint8_t pk[PX_PK_LEN],
                      uint64_t *amount) {
  stake_record_t sr;
  int rc = staking_record_get(s, pk, &sr);
  if (rc) return rc;
  uint64_t total = sr.stake;
  for (uint32_t i = 0; !rc && i < sr.n; i++)
    rc = u64_add(total, sr.e[i].amount, &total);
  if (rc) return PX_EIO; /* the supply fits in u64 */
  uint64_t want = mul_bps(total, PX_MARKET_SLASH_BPS), rem = want;
  uint64_t t = PX_MIN(rem, sr.stake);
  sr.stake -= t, rem -= t;
  for (uint32_t i = sr.n; rem && i > 0; i--) {
    t = PX_MIN(rem, sr.e[i - 1].amount);
    sr.e[i - 1].amount -= t, rem -= t;
  }
  uint32_t keep = 0;
  for (uint32_t i = 0; i < sr.n; i++)
    if (sr.e[i].amount) sr.e[keep++] = sr.e[i];
  sr.n = keep;
  *amount = want;
  return want ? staking_record_put(s, pk, &sr) : 0;
}

int market_slash_stake(px_ledger_ctx_t *ctx, const uint8_t pk[PX_PK_LEN],
                       const uint8_t *winner, const uint8_t *requester,
                       uint64_t *amount) {
  px_ledger_state_t *s = ctx->s;
  *amount = 0;
  uint64_t amt, burn, win, req;
  int rc = take_stake(s, pk, &amt);
  if (rc) return rc;
  const px_slash_params_t sp = {PX_MARKET_SLASH_BURN_BPS,
                                PX_MARKET_SLASH_WINNER_BPS,
                                PX_MARKET_SLASH_REQUESTER_BPS};
  if ((rc = px_slash_split(amt, &sp, &burn, &win, &req))) return PX_EIO;
  if (!winner) burn += win, win = 0; /* parts of amt: no overflow */
  if (!requester) burn += req, req = 0;
  if (win && (rc = token_credit(s, winner, win))) return rc;
  if (req && (rc = token_credit(s, requester, req))) return rc;
  if (burn) {
    ledger_supply_t sup;
    if ((rc = ledger_supply_get(s, &sup))) return rc;
    if (u64_add(sup.burned, burn, &sup.burned)) return PX_EIO;
    if ((rc = ledger_supply_put(s, &sup))) return rc;
  }
  px_provider_rec_t pr;
  rc = provider_get(s, pk, &pr);
  if (rc == 0) {
    pr.disputes_lost++;
    if (u64_add(pr.slashed_total, amt, &pr.slashed_total))
      pr.slashed_total = UINT64_MAX;
    /* the provider record is the market's, whoever slashes */
    px_ledger_ctx_t mctx = *ctx;
    mctx.ns = PX_CONTRACT_MARKET;
    rc = provider_put(&mctx, &pr);
  } else if (rc == PX_ENOTFOUND) {
    rc = 0;
  }
  if (rc) return rc;
  *amount = amt;
  return 0;
}

int market_slash(px_ledger_ctx_t *ctx, px_job_rec_t *j, uint32_t shard,
                 const uint8_t pk[PX_PK_LEN], const uint8_t *winner,
                 uint64_t *amount) {
  px_ledger_state_t *s = ctx->s;
  *amount = 0;
  if (slashed(s, j->id, shard, pk)) return PX_EDUP;
  uint64_t amt;
  int rc = market_slash_stake(ctx, pk, winner, j->spec.requester, &amt);
  if (rc) return rc;
  px_commit_rec_t cr;
  rc = market_commit_get(s, j->id, shard, pk, &cr);
  if (rc == 0) {
    cr.lost = 1;
    rc = market_commit_put(ctx, &cr);
  } else if (rc == PX_ENOTFOUND) {
    rc = 0;
  }
  if (rc) return rc;
  uint8_t key[MARKET_SHARD_KEY_LEN], val[16];
  shard_key(key, KEY_MARKET_SLASHED, j->id, shard, pk);
  px_put_u64le(val, ctx->header->height);
  px_put_u64le(val + 8, amt);
  if ((rc = ctx_put(ctx, key, sizeof key, val, sizeof val))) return rc;
  j->n_slashed++;
  *amount = amt;
  return 0;
}

/* ---- procedures -----------------------------------------------------------
 */

static int do_register(px_ledger_ctx_t *ctx, const px_tx_t *tx) {
  px_provider_reg_t reg;
  int rc =
      px_market_payload_register_decode(tx->payload, tx->payload_len, &reg);
  if (rc) return rc;
  uint8_t want[PX_HASH_LEN];
  if ((rc = px_market_bench_hash(want))) return rc;
  if (memcmp(want, reg.bench_hash, PX_HASH_LEN)) {
    PX_LOGD("market", "provider registration refused: wrong bench hash");
    return PX_EAUTH;
  }
  uint64_t reward;
  if ((rc = u64_mul(reg.price, reg.max_shard_work, &reward))) return rc;
  stake_record_t sr;
  if ((rc = staking_record_get(ctx->s, tx->sender, &sr))) return rc;
  rc = px_market_stake_check(sr.stake, reward, PX_MARKET_MIN_AUDIT_BPS);
  if (rc) return rc; /* PX_EFUNDS: stake below price*max_shard_work/p_min */
  px_provider_rec_t pr;
  rc = provider_get(ctx->s, tx->sender, &pr);
  if (rc == PX_ENOTFOUND) {
    memset(&pr, 0, sizeof pr);
    memcpy(pr.pk, tx->sender, PX_PK_LEN);
    pr.registered_height = ctx->header->height;
  } else if (rc) {
    return rc;
  }
  pr.reg = reg;
  pr.active = 1;
  return provider_put(ctx, &pr);
}

static int do_exit(px_ledger_ctx_t *ctx, const px_tx_t *tx) {
  px_provider_rec_t pr;
  int rc = provider_get(ctx->s, tx->sender, &pr);
  if (rc) return rc;
  pr.active = 0;
  return provider_put(ctx, &pr);
}

static int do_job_open(px_ledger_ctx_t *ctx, const px_tx_t *tx) {
  px_job_rec_t j;
  memset(&j, 0, sizeof j);
  int rc = px_market_payload_job_open_decode(tx->payload, tx->payload_len,
                                             &j.spec, &j.manifest);
  if (rc) return rc;
  if (memcmp(j.spec.requester, tx->sender, PX_PK_LEN)) return PX_EPERM;
  if (j.spec.deadline <= ctx->header->height) return PX_ESTATE;
  if (j.spec.policy == PX_VERIFY_AUDIT &&
      j.spec.policy_param < PX_MARKET_MIN_AUDIT_BPS)
    return PX_EINVAL;
  if ((rc = px_job_spec_id(&j.spec, j.id))) return rc;
  px_job_rec_t old;
  rc = market_job_get(ctx->s, j.id, &old);
  if (rc == 0) return PX_EEXIST;
  if (rc != PX_ENOTFOUND) return rc;
  if ((rc = px_market_escrow_required(&j.spec, &j.escrow))) return rc;
  if ((rc = token_debit(ctx->s, tx->sender, j.escrow))) return rc;
  j.state = PX_JOBREC_OPEN;
  j.opened_height = ctx->header->height;
  return market_job_put(ctx, &j);
}

static int same_claim(const px_commitment_t *a, const px_commitment_t *b) {
  return !memcmp(a->output, b->output, PX_HASH_LEN) &&
         !memcmp(a->trace_root, b->trace_root, PX_HASH_LEN) &&
         a->n_layers == b->n_layers;
}

static int commit_one(px_ledger_ctx_t *ctx, const px_tx_t *tx,
                      const px_commitment_t *c) {
  px_ledger_state_t *s = ctx->s;
  int rc = px_commitment_verify(c);
  if (rc) return rc;
  px_job_rec_t j;
  if ((rc = market_job_get(s, c->job_id, &j))) return rc;
  if (j.state != PX_JOBREC_OPEN) return PX_ESTATE;
  if (c->shard >= px_job_shard_count(&j.spec) ||
      c->n_layers != j.manifest.n_layers)
    return PX_EINVAL;
  px_provider_rec_t pr;
  if ((rc = provider_get(s, c->provider, &pr))) return rc;
  px_commit_rec_t cr;
  rc = market_commit_get(s, c->job_id, c->shard, c->provider, &cr);
  if (rc == 0) {
    if (same_claim(&cr.c, c)) return 0; /* already on chain: skipped */
    /* Equivocation: two signed claims for one shard.  Once. */
    if (slashed(s, j.id, c->shard, c->provider)) return 0;
    uint64_t amt;
    if ((rc = market_slash(ctx, &j, c->shard, c->provider, tx->sender, &amt)))
      return rc;
    return market_job_put(ctx, &j);
  }
  if (rc != PX_ENOTFOUND) return rc;
  memset(&cr, 0, sizeof cr);
  cr.c = *c;
  cr.height = ctx->header->height;
  cr.lost = (uint8_t)slashed(s, j.id, c->shard, c->provider);
  if ((rc = market_commit_put(ctx, &cr))) return rc;
  j.n_commitments++;
  return market_job_put(ctx, &j);
}

static int do_commit(px_ledger_ctx_t *ctx, const px_tx_t *tx) {
  px_commitment_t *c;
  size_t n;
  int rc = market_commit_decode(tx->payload, tx->payload_len, &c, &n);
  for (size_t i = 0; !rc && i < n; i++)
    rc = commit_one(ctx, tx, &c[i]);
  px_free(c);
  return rc;
}

static int do_evidence(px_ledger_ctx_t *ctx, const px_tx_t *tx) {
  px_commitment_t a, b;
  int rc = px_evidence_decode(tx->payload, tx->payload_len, &a, &b);
  if (rc) return rc;
  px_job_rec_t j;
  if ((rc = market_job_get(ctx->s, a.job_id, &j))) return rc;
  uint64_t amt;
  rc = market_slash(ctx, &j, a.shard, a.provider, tx->sender, &amt);
  if (!rc) rc = market_job_put(ctx, &j);
  return rc;
}

static int settle_entry(px_ledger_ctx_t *ctx, px_job_rec_t *j,
                        const px_settle_entry_t *e) {
  px_ledger_state_t *s = ctx->s;
  px_commit_rec_t cr;
  int rc = market_commit_get(s, j->id, e->shard, e->provider, &cr);
  if (rc) return rc;
  if (cr.lost) return PX_ESTATE;
  if (cr.paid) return PX_EDUP;
  uint64_t work, cap;
  if ((rc = px_job_shard_work(&j->spec, e->shard, &work))) return rc;
  if ((rc = u64_mul(work, j->spec.price_ceiling, &cap))) return rc;
  if (e->amount > cap) return PX_ERANGE;
  px_settle_t acct = {j->escrow, j->paid};
  if ((rc = px_settle_pay(&acct, e->amount))) return rc;
  j->paid = acct.paid;
  j->shards_paid++;
  cr.paid = 1;
  if ((rc = market_commit_put(ctx, &cr))) return rc;
  if ((rc = token_credit(s, e->provider, e->amount))) return rc;
  px_provider_rec_t pr;
  if ((rc = provider_get(s, e->provider, &pr))) return rc;
  pr.shards_completed++;
  if (e->flags & PX_SETTLE_AUDITED) pr.audits_passed++;
  if (u64_add(pr.earned, e->amount, &pr.earned)) pr.earned = UINT64_MAX;
  return provider_put(ctx, &pr);
}

static int do_settle(px_ledger_ctx_t *ctx, const px_tx_t *tx) {
  market_settle_t st;
  int rc = market_settle_decode(tx->payload, tx->payload_len, &st);
  if (rc) return rc;
  px_job_rec_t j;
  uint64_t h = ctx->header->height, close_after;
  if ((rc = market_job_get(ctx->s, st.job_id, &j))) goto out;
  if (j.state != PX_JOBREC_OPEN) {
    rc = PX_ESTATE;
    goto out;
  }
  int by_requester = !memcmp(tx->sender, j.spec.requester, PX_PK_LEN);
  if ((rc = u64_add(j.spec.deadline, PX_MARKET_SETTLE_GRACE, &close_after)))
    goto out;
  int grace_close = !by_requester && st.final && !st.n && !st.n_expired;
  if (!by_requester && !grace_close) {
    rc = PX_EPERM;
    goto out;
  }
  if (grace_close && h <= close_after) {
    rc = PX_ESTATE; /* only the requester may close before the grace end */
    goto out;
  }
  for (size_t i = 0; !rc && i < st.n; i++)
    rc = settle_entry(ctx, &j, &st.e[i]);
  for (size_t i = 0; !rc && i < st.n_expired; i++) {
    px_provider_rec_t pr;
    rc = provider_get(ctx->s, st.expired[i], &pr);
    if (!rc) {
      pr.leases_expired++;
      rc = provider_put(ctx, &pr);
    }
  }
  if (!rc && st.final) {
    j.refunded = j.escrow - j.paid;
    j.state = grace_close ? PX_JOBREC_EXPIRED : PX_JOBREC_SETTLED;
    j.closed_height = h;
    if (j.refunded) rc = token_credit(ctx->s, j.spec.requester, j.refunded);
  }
  if (!rc) rc = market_job_put(ctx, &j);
out:
  market_settle_release(&st);
  return rc;
}

/* ---- the contract ---------------------------------------------------------
 */

static int market_check(const px_tx_t *tx) {
  switch (tx->type) {
  case PX_TX_PROVIDER_REGISTER: {
    px_provider_reg_t r;
    return px_market_payload_register_decode(tx->payload, tx->payload_len, &r);
  }
  case PX_TX_PROVIDER_EXIT:
    return tx->payload_len == 0 ? 0 : PX_EDECODE;
  case PX_TX_JOB_OPEN: {
    px_job_spec_t s;
    px_market_manifest_t m;
    return px_market_payload_job_open_decode(tx->payload, tx->payload_len, &s,
                                             &m);
  }
  case PX_TX_JOB_COMMIT: {
    px_commitment_t *c;
    size_t n;
    int rc = market_commit_decode(tx->payload, tx->payload_len, &c, &n);
    px_free(c);
    return rc;
  }
  case PX_TX_MARKET_EVIDENCE: {
    px_commitment_t a, b;
    return px_evidence_decode(tx->payload, tx->payload_len, &a, &b);
  }
  case PX_TX_DISPUTE: {
    px_market_dispute_t *d = px_calloc(1, sizeof *d);
    if (!d) return PX_ENOMEM;
    int rc = px_market_payload_dispute_decode(tx->payload, tx->payload_len, d);
    px_market_dispute_release(d);
    px_free(d);
    return rc;
  }
  case PX_TX_JOB_SETTLE: {
    market_settle_t st;
    int rc = market_settle_decode(tx->payload, tx->payload_len, &st);
    market_settle_release(&st);
    return rc;
  }
  default:
    return PX_EDECODE;
  }
}

static int market_execute(px_ledger_ctx_t *ctx, const px_tx_t *tx) {
  switch (tx->type) {
  case PX_TX_PROVIDER_REGISTER:
    return do_register(ctx, tx);
  case PX_TX_PROVIDER_EXIT:
    return do_exit(ctx, tx);
  case PX_TX_JOB_OPEN:
    return do_job_open(ctx, tx);
  case PX_TX_JOB_COMMIT:
    return do_commit(ctx, tx);
  case PX_TX_MARKET_EVIDENCE:
    return do_evidence(ctx, tx);
  case PX_TX_DISPUTE:
    return market_dispute_execute(ctx, tx);
  case PX_TX_JOB_SETTLE:
    return do_settle(ctx, tx);
  default:
    return PX_EDECODE;
  }
}

/* ---- queries --------------------------------------------------------------
 */

typedef struct {
  uint8_t kind;
  const uint8_t *requester; /* jobs: filter */
  px_writer_t *w;
  uint32_t n;
  int err;
} scan_t;

static int scan_visit(void *ud, const uint8_t *key, size_t klen,
                      const uint8_t *val, size_t vlen) {
  scan_t *sc = ud;
  if (klen < 2 || key[0] != PX_CONTRACT_MARKET || key[1] != sc->kind) return 0;
  if (sc->kind == KEY_MARKET_PROVIDER) {
    px_writer_bytes(sc->w, val, vlen);
    sc->n++;
  } else if (sc->kind == KEY_MARKET_JOB) {
    px_job_rec_t r;
    if (px_job_rec_decode(val, vlen, &r)) {
      sc->err = PX_EIO;
      return 1;
    }
    if (!memcmp(r.spec.requester, sc->requester, PX_PK_LEN)) {
      px_writer_fixed(sc->w, r.id, PX_HASH_LEN);
      sc->n++;
    }
  }
  return 0;
}

/* u32 n (patched after the scan), then the entries. */
static int scan(const px_ledger_state_t *s, uint8_t kind,
                const uint8_t *requester, px_buf_t *out) {
  size_t mark = out->len;
  px_writer_t w;
  px_writer_init(&w, out);
  px_writer_u32(&w, 0);
  scan_t sc = {kind, requester, &w, 0, 0};
  smt_foreach(&s->smt, scan_visit, &sc);
  int rc = sc.err ? sc.err : px_writer_finish(&w);
  if (rc) {
    out->len = mark;
    return rc;
  }
  px_put_u32le(out->data + mark, sc.n);
  return 0;
}

static int get_raw(const px_ledger_state_t *s, const uint8_t *key, size_t klen,
                   px_buf_t *out) {
  const uint8_t *v;
  size_t n;
  if (px_ledger_get(s, key, klen, &v, &n)) return PX_ENOTFOUND;
  return px_buf_append(out, v, n);
}

static int market_query(const px_ledger_state_t *s, uint8_t method,
                        const uint8_t *args, size_t n, px_buf_t *out) {
  switch (method) {
  case PX_MARKET_Q_PROVIDER: {
    if (n != PX_PK_LEN) return PX_EINVAL;
    uint8_t key[MARKET_PK_KEY_LEN];
    pk_key(key, args);
    return get_raw(s, key, sizeof key, out);
  }
  case PX_MARKET_Q_PROVIDERS:
    if (n != 0) return PX_EINVAL;
    return scan(s, KEY_MARKET_PROVIDER, NULL, out);
  case PX_MARKET_Q_JOB: {
    if (n != PX_HASH_LEN) return PX_EINVAL;
    uint8_t key[MARKET_JOB_KEY_LEN];
    job_key(key, args);
    return get_raw(s, key, sizeof key, out);
  }
  case PX_MARKET_Q_COMMITMENT: {
    if (n != PX_HASH_LEN + 4 + PX_PK_LEN) return PX_EINVAL;
    uint8_t key[MARKET_SHARD_KEY_LEN];
    shard_key(key, KEY_MARKET_COMMIT, args, px_get_u32le(args + PX_HASH_LEN),
              args + PX_HASH_LEN + 4);
    return get_raw(s, key, sizeof key, out);
  }
  case PX_MARKET_Q_JOBS:
    if (n != PX_PK_LEN) return PX_EINVAL;
    return scan(s, KEY_MARKET_JOB, args, out);
  default:
    return PX_ENOTFOUND;
  }
}

const px_contract_t px_contract_market = {
    .name = "market",
    .id = PX_CONTRACT_MARKET,
    .check = market_check,
    .execute = market_execute,
    .query = market_query,
    .begin_block = NULL,
};

/* ---- convenience wrappers -------------------------------------------------
 */

int px_market_provider(const px_ledger_state_t *s, const uint8_t pk[PX_PK_LEN],
                       px_provider_rec_t *r) {
  if (!s || !pk || !r) return PX_EINVAL;
  return provider_get(s, pk, r);
}

int px_market_providers(const px_ledger_state_t *s, px_provider_rec_t **out,
                        size_t *n) {
  if (!s || !out || !n) return PX_EINVAL;
  *out = NULL;
  *n = 0;
  px_buf_t b;
  px_buf_init(&b, 0);
  int rc = px_ledger_query(s, PX_CONTRACT_MARKET, PX_MARKET_Q_PROVIDERS, NULL,
                           0, &b);
  px_reader_t r;
  px_reader_init(&r, b.data, b.len);
  uint32_t cnt = rc ? 0 : px_reader_u32(&r);
  px_provider_rec_t *v = px_calloc(cnt ? cnt : 1, sizeof *v);
  if (!rc && !v) rc = PX_ENOMEM;
  for (uint32_t i = 0; !rc && i < cnt; i++) {
    const uint8_t *p;
    size_t pn;
    px_reader_bytes(&r, &p, &pn, PX_LEDGER_VALUE_MAX);
    if (r.err || px_provider_rec_decode(p, pn, &v[i])) rc = PX_EIO;
  }
  if (!rc && px_reader_finish(&r)) rc = PX_EIO;
  px_buf_release(&b);
  if (rc) {
    px_free(v);
    return rc;
  }
  *out = v;
  *n = cnt;
  return 0;
}

int px_market_job(const px_ledger_state_t *s, const uint8_t id[PX_HASH_LEN],
                  px_job_rec_t *r) {
  if (!s || !id || !r) return PX_EINVAL;
  return market_job_get(s, id, r);
}

int px_market_commitment(const px_ledger_state_t *s,
                         const uint8_t job_id[PX_HASH_LEN], uint32_t shard,
                         const uint8_t pk[PX_PK_LEN], px_commit_rec_t *r) {
  if (!s || !job_id || !pk || !r) return PX_EINVAL;
  return market_commit_get(s, job_id, shard, pk, r);
}

typedef struct {
  uint64_t sum;
  int err;
} escrow_acc_t;

static int escrow_visit(void *ud, const uint8_t *key, size_t klen,
                        const uint8_t *val, size_t vlen) {
  escrow_acc_t *a = ud;
  uint64_t held;
  int rc = market_job_escrow_held(key, klen, val, vlen, &held);
  if (!rc) rc = u64_add(a->sum, held, &a->sum);
  if (rc) a->err = rc;
  return rc;
}

int px_market_escrow_total(const px_ledger_state_t *s, uint64_t *out) {
  if (!s || !out) return PX_EINVAL;
  escrow_acc_t a = {0, 0};
  smt_foreach(&s->smt, escrow_visit, &a);
  *out = a.sum;
  return a.err;
}
