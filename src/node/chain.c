/*
 * chain.c — the chain runtime: ledger + Tendermint consensus on the node's
 * libuv loop (docs/chain.md).
 *
 * What it owns: the LMDB store (DIR/data) and the ledger state loaded from
 * it (or made from DIR/genesis.json on the first run), the consensus WAL
 * (DIR/cs.wal), the mempool, and one px_cons_t.  Every node runs a core;
 * it signs only at heights where its key is in the validator set, so a
 * non-validator simply follows the decisions.
 *
 * How the consensus effects are performed (docs/consensus.md), in order:
 *   PERSIST           px_wal_append, fsynced when fx.sync (own signed
 *                     messages) — before the BROADCAST that follows it;
 *   BROADCAST         p2p gossip on topic PX_CHAIN_TOPIC_CONS;
 *   SCHEDULE_TIMEOUT  one uv timer armed at the earliest pending deadline;
 *   DECIDE            decode, apply (signatures already verified at mempool
 *                     admission are not verified again), store block + state
 *                     + commit certificate in ONE LMDB transaction, cut the
 *                     WAL, drop the included txs from the mempool and
 *                     re-check the rest, then start the next height after
 *                     chain.commit_timeout_ms (Tendermint's timeout_commit),
 *                     or at once when the mempool still holds txs;
 *   EVIDENCE          into the evidence pool (below), and gossiped.
 * If a sync PERSIST fails the node stops broadcasting: a vote that is not
 * durable must not leave (double-sign protection).
 *
 * Restart (docs/consensus.md "Restart"): the WAL is read into memory and
 * replayed once before px_cons_start (OWN records rebuild the sign guard)
 * and once after it.  A torn or corrupt tail is reported in one line, the
 * sign floor is raised above every height the WAL named, and the file is cut
 * to its good prefix.  Because the WAL is truncated after each stored
 * decision, it only ever holds the current height's records.
 *
 * Block sync: a node asks a peer for block h+1 (request method
 * PX_CHAIN_METHOD_BLOCK), verifies the commit certificate against the
 * validator set it derives from its own state (px_cons_commit_verify: more
 * than 2/3 of the power signed this block's hash), applies and stores it,
 * and asks for the next until the peer answers PX_ENOTFOUND.  Triggers: a
 * peer connecting, a consensus message two or more heights ahead, and no
 * progress for a while.  One-height gaps are closed by the core's DECISION
 * catch-up message.
 *
 * Evidence pool: evidence from the core's EVIDENCE effect, from gossip
 * (EVIDENCE messages on the consensus topic, which the core itself does not
 * take) and from the control socket is kept when px_ledger_evidence_check
 * accepts it for the next block, once per (height, round, type, validator)
 * and at most EV_POOL_MAX pieces.  A proposer puts the pool into its block
 * (px_ledger_block_make_ev); every validator's valid() check verifies it
 * (px_ledger_block_validate); after each commit the pool is re-checked, so
 * what was committed (PX_EDUP) or grew too old leaves it.
 *
 * chain.test_equivocate (TEST ONLY, docs/chain.md): the node also signs
 * and gossips a conflicting vote for each vote it casts, so that the
 * integration tests can watch a real Byzantine validator get slashed.
 *
 * Invariants: state height == store height at every return to the loop;
 * the core's height is state height + 1 (or it waits for it between a
 * decision and the next start); a mempool entry's signature was verified.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "plexus/codec.h"
#include "plexus/consensus.h"
#include "plexus/crypto.h"
#include "plexus/ledger.h"
#include "plexus/p2p.h"
#include "node/chain.h"
#include "base/px_internal.h"

#define LOGMOD "chain"
#define MAX_TIMEOUTS 1024
#define MAX_PEERS 256
#define TX_BATCH_MAX (1u << 20)
#define BLOCK_BYTES_MAX (3u << 20) /* txs per proposal, under max_value */
#define SYNC_STALL_MS 3000
#define SYNC_REQ_TIMEOUT_MS 5000
#define WAL_READ_MAX (1u << 30)
#define EV_POOL_MAX 128
#define EV_MAX_LEN 512

typedef struct {
  uint64_t h;
  uint32_t r;
  uint16_t type, validator;
  size_t len;
  uint8_t raw[EV_MAX_LEN];
} ev_entry_t;

typedef struct {
  uint64_t h;
  uint32_t r;
  uint8_t step;
  uint64_t at;
} timeout_t;

struct px_mp_sender {
  uint8_t pk[PX_PK_LEN];
  uint32_t count;
  uint8_t used;
};

struct px_chain {
  px_chain_env_t env;
  char home[512];
  char wal_path[600];
  px_keypair_t key;
  px_ledger_store_t *store;
  px_ledger_state_t *state;
  char chain_id[PX_LEDGER_CHAIN_ID_MAX];
  px_cons_t *cons;
  px_wal_t *wal;
  int wal_broken;
  px_cons_valset_t vs; /* of cons_height */
  uint64_t cons_height;
  int started;   /* px_cons_start called for cons_height */
  int next_wait; /* decided; next height starts on next_timer */
  px_mempool_t mp;
  timeout_t *tmo;
  size_t ntmo;
  uv_timer_t cons_timer, next_timer, batch_timer;
  int timers_ready;
  uint64_t commit_timeout_ms;
  px_buf_t batch;
  /* block sync */
  uint64_t sync_req;
  uint8_t sync_peer[PX_PK_LEN];
  uint64_t last_progress_ms;
  uint64_t sync_blocks;
  uint8_t peers[MAX_PEERS][PX_PK_LEN];
  size_t npeers;
  uint32_t peer_rr;
  /* evidence pool */
  ev_entry_t *ev;
  size_t nev;
  int test_equivocate; /* TEST ONLY: sign conflicting votes */
  /* stats */
  uint64_t blocks_decided, txs_committed, txs_rejected, last_block_txs;
  uint64_t last_commit_ms;
  uint32_t last_round;
  uint64_t evidence_seen, evidence_committed;
};

/* ===================================================================== */
/* mempool                                                                */
/* ===================================================================== */

static size_t pow2_at_least(size_t n) {
  size_t c = 16;
  while (c < n)
    c <<= 1;
  return c;
}

static size_t key_slot(const uint8_t *k, size_t cap) {
  return (size_t)px_get_u64le(k) & (cap - 1);
}

void px_mempool_init(px_mempool_t *mp, size_t max_txs, size_t max_bytes) {
  memset(mp, 0, sizeof *mp);
  mp->max_txs = max_txs ? max_txs : 1;
  mp->max_bytes = max_bytes;
}

void px_mempool_release(px_mempool_t *mp) {
  for (size_t i = 0; i < mp->n; i++)
    px_free(mp->e[i].raw);
  px_free(mp->e);
  px_free(mp->hidx);
  px_free(mp->snd);
  memset(mp, 0, sizeof *mp);
}

static int32_t mp_find(const px_mempool_t *mp, const uint8_t h[PX_HASH_LEN]) {
  if (!mp->hcap) return -1;
  for (size_t i = key_slot(h, mp->hcap);; i = (i + 1) & (mp->hcap - 1)) {
    int32_t k = mp->hidx[i];
    if (k < 0) return -1;
    if (memcmp(mp->e[k].hash, h, PX_HASH_LEN) == 0) return k;
  }
}

int px_mempool_has(const px_mempool_t *mp, const uint8_t h[PX_HASH_LEN]) {
  int32_t k = mp_find(mp, h);
  return k >= 0 && !mp->e[k].dead;
}

static struct px_mp_sender *snd_slot(px_mempool_t *mp, const uint8_t *pk,
                                     int create) {
  if (!mp->scap) return NULL;
  for (size_t i = key_slot(pk, mp->scap);; i = (i + 1) & (mp->scap - 1)) {
    struct px_mp_sender *s = &mp->snd[i];
    if (!s->used) {
      if (!create) return NULL;
      s->used = 1;
      memcpy(s->pk, pk, PX_PK_LEN);
      s->count = 0;
      mp->sn++;
      return s;
    }
    if (memcmp(s->pk, pk, PX_PK_LEN) == 0) return s;
  }
}

uint64_t px_mempool_sender_count(const px_mempool_t *mp,
                                 const uint8_t pk[PX_PK_LEN]) {
  struct px_mp_sender *s = snd_slot((px_mempool_t *)mp, pk, 0);
  return s ? s->count : 0;
}

/* Rebuild both indexes over the live entries (after compaction or growth).
 * Tables stay at most half full. */
static int mp_reindex(px_mempool_t *mp, size_t want) {
  size_t hc = pow2_at_least(want * 2 + 2);
  if (hc != mp->hcap) {
    int32_t *h = px_malloc(hc * sizeof *h);
    struct px_mp_sender *s = px_calloc(hc, sizeof *s);
    if (!h || !s) {
      px_free(h);
      px_free(s);
      return PX_ENOMEM;
    }
    px_free(mp->hidx);
    px_free(mp->snd);
    mp->hidx = h;
    mp->snd = s;
    mp->hcap = mp->scap = hc;
  } else {
    memset(mp->snd, 0, mp->scap * sizeof *mp->snd);
  }
  memset(mp->hidx, 0xff, mp->hcap * sizeof *mp->hidx);
  mp->sn = 0;
  for (size_t k = 0; k < mp->n; k++) {
    if (mp->e[k].dead) continue;
    size_t i = key_slot(mp->e[k].hash, mp->hcap);
    while (mp->hidx[i] >= 0)
      i = (i + 1) & (mp->hcap - 1);
    mp->hidx[i] = (int32_t)k;
    snd_slot(mp, mp->e[k].sender, 1)->count++;
  }
  return 0;
}

int px_mempool_add(px_mempool_t *mp, const px_ledger_state_t *s,
                   const uint8_t *p, size_t len, uint64_t now_ms,
                   uint8_t hash_out[PX_HASH_LEN]) {
  /* params.max_tx_size bounds every tx but a market DISPUTE
   * (px_ledger_tx_size_limit); anything over it that is not a well-formed
   * tx of a type allowed that size is refused as over-size. */
  if (len > PX_LEDGER_TX_MAX_SIZE) return PX_ETOOBIG;
  px_tx_t tx;
  int rc = px_tx_decode(p, len, &tx);
  if (len > px_ledger_params(s)->max_tx_size &&
      (rc || len > px_ledger_tx_size_limit(px_ledger_params(s), tx.type)))
    return PX_ETOOBIG;
  if (rc) return rc;
  if (hash_out) memcpy(hash_out, tx.hash, PX_HASH_LEN);
  /* Duplicates and a full pool are refused before the costly check. */
  if (px_mempool_has(mp, tx.hash)) return PX_EDUP;
  if (mp->live >= mp->max_txs || mp->bytes + len > mp->max_bytes)
    return PX_ELIMIT;
  uint64_t off = px_mempool_sender_count(mp, tx.sender);
  /* A tx already committed (it often arrives by gossip after the block
   * that holds it) is refused before the costly signature check. */
  px_account_t acct;
  if (px_ledger_account(s, tx.sender, &acct) == 0 && tx.nonce < acct.nonce)
    return PX_LEDGER_E_NONCE_OLD;
  if ((rc = px_ledger_check_tx(s, p, len, off, &tx))) return rc;
  if (mp->n == mp->cap) {
    size_t nc = mp->cap ? mp->cap * 2 : 256;
    px_mempool_entry_t *e = px_realloc(mp->e, nc * sizeof *e);
    if (!e) return PX_ENOMEM;
    mp->e = e;
    mp->cap = nc;
  }
  if ((mp->n + 1) * 2 + 2 > mp->hcap && (rc = mp_reindex(mp, mp->n + 1)))
    return rc;
  px_mempool_entry_t *e = &mp->e[mp->n];
  memset(e, 0, sizeof *e);
  if (!(e->raw = px_malloc(len ? len : 1))) return PX_ENOMEM;
  memcpy(e->raw, p, len);
  e->len = len;
  memcpy(e->hash, tx.hash, PX_HASH_LEN);
  memcpy(e->sender, tx.sender, PX_PK_LEN);
  e->nonce = tx.nonce;
  e->fee = tx.fee;
  e->added_ms = now_ms;
  size_t i = key_slot(e->hash, mp->hcap);
  while (mp->hidx[i] >= 0)
    i = (i + 1) & (mp->hcap - 1);
  mp->hidx[i] = (int32_t)mp->n;
  snd_slot(mp, e->sender, 1)->count++;
  mp->n++;
  mp->live++;
  mp->bytes += len;
  return 0;
}

static void mp_kill(px_mempool_t *mp, size_t k) {
  if (mp->e[k].dead) return;
  mp->e[k].dead = 1;
  mp->live--;
  mp->bytes -= mp->e[k].len;
}

void px_mempool_update(px_mempool_t *mp, const px_ledger_state_t *s,
                       const uint8_t (*hashes)[PX_HASH_LEN], size_t n) {
  for (size_t i = 0; i < n; i++) {
    int32_t k = mp_find(mp, hashes[i]);
    if (k >= 0) mp_kill(mp, (size_t)k);
  }
  /* Re-check the rest in order against the new state: the k-th queued tx
   * of a sender must carry account nonce + k and a payable fee.  The
   * signature was verified at admission and the bytes have not changed. */
  if (mp->snd) memset(mp->snd, 0, mp->scap * sizeof *mp->snd);
  mp->sn = 0;
  for (size_t k = 0; k < mp->n; k++) {
    px_mempool_entry_t *e = &mp->e[k];
    if (e->dead) continue;
    struct px_mp_sender *sd = snd_slot(mp, e->sender, 1);
    px_account_t a;
    if (px_ledger_account(s, e->sender, &a) ||
        e->nonce != a.nonce + sd->count || e->fee > a.balance) {
      mp_kill(mp, k);
      continue;
    }
    sd->count++;
  }
  size_t w = 0;
  for (size_t k = 0; k < mp->n; k++) {
    if (mp->e[k].dead) {
      px_free(mp->e[k].raw);
      continue;
    }
    mp->e[w++] = mp->e[k];
  }
  mp->n = w;
  (void)mp_reindex(mp, mp->n ? mp->n : 1);
}

/* ===================================================================== */
/* helpers                                                                */
/* ===================================================================== */

int px_chain_configured(const char *home) {
  char p[600];
  snprintf(p, sizeof p, "%s/%s", home, PX_CHAIN_GENESIS_FILE);
  return access(p, F_OK) == 0;
}

int px_chain_valset(const px_ledger_state_t *s, uint64_t height,
                    px_cons_valset_t *vs) {
  px_validator_t *v = px_calloc(PX_LEDGER_MAX_VALIDATORS, sizeof *v);
  if (!v) return PX_ENOMEM;
  size_t n = 0;
  int rc = px_ledger_validators(s, v, PX_LEDGER_MAX_VALIDATORS, &n);
  if (!rc && n == 0) rc = PX_ESTATE;
  if (n > PX_CONS_MAX_VALIDATORS) n = PX_CONS_MAX_VALIDATORS;
  uint8_t(*pks)[PX_PK_LEN] = NULL;
  uint64_t *pw = NULL;
  if (!rc) {
    pks = px_calloc(n, sizeof *pks);
    pw = px_calloc(n, sizeof *pw);
    if (!pks || !pw) rc = PX_ENOMEM;
  }
  for (size_t i = 0; !rc && i < n; i++) {
    memcpy(pks[i], v[i].pk, PX_PK_LEN);
    pw[i] = v[i].power;
  }
  if (!rc)
    rc = px_cons_valset_init(vs, (const uint8_t(*)[PX_PK_LEN])pks, pw,
                             (uint32_t)n);
  /* Proposer rotation: the set's priorities are a function of the height
   * alone (no history to persist or replay), advanced (h-1) mod 64n steps:
   * exact round robin for equal powers, power-weighted otherwise. */
  if (!rc && height > 0) {
    uint64_t steps = (height - 1) % (64u * n);
    for (uint64_t i = 0; i < steps; i++)
      px_cons_valset_advance(vs);
  }
  px_free(pks);
  px_free(pw);
  px_free(v);
  return rc;
}

static uint64_t now_ms(px_chain_t *c) { return uv_now(c->env.loop); }

static void hex32(const uint8_t *p, char out[65]) { px_hex_encode(p, 32, out); }

static uint64_t state_height(const px_chain_t *c) {
  return px_ledger_height(c->state);
}

/* ===================================================================== */
/* evidence pool                                                          */
/* ===================================================================== */

/* Keep evidence that the next block could carry.  0 when added, PX_EDUP
 * when the pool has it (or it was slashed already), PX_ELIMIT when full, or
 * px_ledger_evidence_check's verdict. */
static int ev_pool_add(px_chain_t *c, const uint8_t *raw, size_t len) {
  px_cons_evidence_t e;
  int rc = px_cons_evidence_decode(raw, len, &e);
  if (rc) return rc;
  if (len > EV_MAX_LEN) return PX_ETOOBIG;
  for (size_t i = 0; i < c->nev; i++) {
    const ev_entry_t *x = &c->ev[i];
    if (x->h == e.a.height && x->r == e.a.round && x->type == e.a.type &&
        x->validator == e.a.validator)
      return PX_EDUP;
  }
  uint8_t pk[PX_PK_LEN];
  if ((rc = px_ledger_evidence_check(c->state, raw, len, pk))) return rc;
  if (c->nev >= EV_POOL_MAX) return PX_ELIMIT;
  ev_entry_t *x = &c->ev[c->nev++];
  x->h = e.a.height;
  x->r = e.a.round;
  x->type = (uint16_t)e.a.type;
  x->validator = e.a.validator;
  x->len = len;
  memcpy(x->raw, raw, len);
  c->evidence_seen++;
  char id[65];
  px_hex_encode(pk, PX_PK_LEN, id);
  PX_LOGW(LOGMOD,
          "evidence: validator %.16s signed two different %s votes at "
          "height %llu round %u",
          id, e.a.type == PX_CONS_MSG_PREVOTE ? "prevote" : "precommit",
          (unsigned long long)e.a.height, e.a.round);
  return 0;
}

/* After a commit: drop what was committed or can no longer be. */
static void ev_pool_prune(px_chain_t *c) {
  size_t w = 0;
  for (size_t i = 0; i < c->nev; i++)
    if (px_ledger_evidence_check(c->state, c->ev[i].raw, c->ev[i].len, NULL) ==
        0)
      c->ev[w++] = c->ev[i];
  c->nev = w;
}

/* ===================================================================== */
/* consensus effects                                                      */
/* ===================================================================== */

static void drain_cons(px_chain_t *c);
static void start_height(px_chain_t *c);
static void sync_kick(px_chain_t *c, const uint8_t *peer);

static void on_cons_timer(uv_timer_t *t);

static void arm_cons_timer(px_chain_t *c) {
  if (!c->timers_ready) return;
  if (!c->ntmo) {
    uv_timer_stop(&c->cons_timer);
    return;
  }
  uint64_t at = c->tmo[0].at;
  for (size_t i = 1; i < c->ntmo; i++)
    if (c->tmo[i].at < at) at = c->tmo[i].at;
  uint64_t now = now_ms(c);
  uv_timer_start(&c->cons_timer, on_cons_timer, at > now ? at - now : 0, 0);
}

static void tmo_add(px_chain_t *c, const px_cons_fx_t *fx) {
  /* Timeouts of heights we have left are dead; drop them first. */
  size_t w = 0;
  for (size_t i = 0; i < c->ntmo; i++)
    if (c->tmo[i].h >= c->cons_height) c->tmo[w++] = c->tmo[i];
  c->ntmo = w;
  if (c->ntmo == MAX_TIMEOUTS) {
    PX_LOGW(LOGMOD, "too many pending timeouts; dropping the oldest");
    memmove(c->tmo, c->tmo + 1, (--c->ntmo) * sizeof *c->tmo);
  }
  timeout_t *t = &c->tmo[c->ntmo++];
  t->h = fx->height;
  t->r = fx->round;
  t->step = (uint8_t)fx->step;
  t->at = fx->at;
}

static int sig_known(void *ud, const px_tx_t *tx) {
  px_chain_t *c = ud;
  return px_mempool_has(&c->mp, tx->hash);
}

/* Apply a decided (or synced, commit verified) block and store it with its
 * certificate.  0, or an error after which nothing changed on disk. */
static int commit_block(px_chain_t *c, const uint8_t *value, size_t len,
                        const uint8_t *cert, size_t cert_len, uint32_t round,
                        int synced) {
  px_block_t b;
  int rc = px_block_decode(value, len, &b);
  if (rc) {
    PX_LOGE(LOGMOD, "decided block does not decode: %s", px_strerror(rc));
    return rc;
  }
  if (b.header.height != state_height(c) + 1) {
    px_block_release(&b);
    return PX_ESTATE;
  }
  px_tx_result_t *res = px_calloc(b.n_txs ? b.n_txs : 1, sizeof *res);
  uint8_t(*hashes)[PX_HASH_LEN] = px_calloc(b.n_txs ? b.n_txs : 1, PX_HASH_LEN);
  if (!res || !hashes) {
    rc = PX_ENOMEM;
    goto out;
  }
  if ((rc = px_ledger_apply_block_ex(c->state, &b, res, sig_known, c))) {
    PX_LOGE(LOGMOD, "block %llu does not apply: %s",
            (unsigned long long)b.header.height, px_strerror(rc));
    goto out;
  }
  rc = px_ledger_store_commit_cert(c->store, c->state, &b, res, cert, cert_len);
  if (rc) {
    /* The state ran ahead of the disk: reload it so both agree again. */
    PX_LOGE(LOGMOD, "cannot store block %llu: %s; reloading state",
            (unsigned long long)b.header.height, px_strerror(rc));
    px_ledger_state_t *s2 = NULL;
    if (px_ledger_store_load(c->store, &s2) == 0) {
      px_ledger_state_free(c->state);
      c->state = s2;
    }
    goto out;
  }
  /* The decision is durable: the WAL's records of this height are no
   * longer needed (a restart starts at height + 1). */
  if (c->wal) {
    int wr = px_wal_truncate(c->wal_path, 0);
    if (wr) PX_LOGW(LOGMOD, "cannot cut the WAL: %s", px_strerror(wr));
  }
  c->evidence_committed += b.n_evidence;
  ev_pool_prune(c);
  size_t ok = 0;
  for (size_t i = 0; i < b.n_txs; i++) {
    memcpy(hashes[i], b.txs[i].hash, PX_HASH_LEN);
    if (res[i].code == 0) ok++;
  }
  px_mempool_update(&c->mp, c->state, (const uint8_t(*)[PX_HASH_LEN])hashes,
                    b.n_txs);
  c->blocks_decided++;
  c->txs_committed += ok;
  c->last_block_txs = b.n_txs;
  c->last_round = round;
  c->last_commit_ms = now_ms(c);
  c->last_progress_ms = c->last_commit_ms;
  if (synced) c->sync_blocks++;
  uint64_t actual = 0, expected = 0;
  px_ledger_supply(c->state, &actual, &expected);
  if (actual != expected)
    PX_LOGE(LOGMOD, "supply invariant broken at %llu: %llu != %llu",
            (unsigned long long)b.header.height, (unsigned long long)actual,
            (unsigned long long)expected);
  uint8_t app[PX_HASH_LEN];
  char ah[65];
  px_ledger_app_hash(c->state, app);
  hex32(app, ah);
  PX_LOGI(LOGMOD, "%s block %llu: %zu txs (%zu ok), round %u, app %.16s",
          synced ? "synced" : "committed", (unsigned long long)b.header.height,
          b.n_txs, ok, round, ah);
  if (b.n_evidence)
    PX_LOGW(LOGMOD, "block %llu carries %zu evidence: offenders slashed",
            (unsigned long long)b.header.height, b.n_evidence);
  if (c->env.on_block) c->env.on_block(c->env.ud, c->state, &b, res);
out:
  px_free(res);
  px_free(hashes);
  px_block_release(&b);
  return rc;
}

static void on_next_timer(uv_timer_t *t) {
  px_chain_t *c = t->data;
  if (!c->next_wait) return;
  start_height(c);
  c->env.flush(c->env.ud);
}

static void on_decide(px_chain_t *c, px_cons_fx_t *fx) {
  if (fx->height != state_height(c) + 1) return; /* synced meanwhile */
  if (commit_block(c, fx->data.data, fx->data.len, fx->commit.data,
                   fx->commit.len, fx->round, 0))
    return;
  c->next_wait = 1;
  /* Txs are waiting: start the next height as soon as the loop is back (the
   * decision is stored; precommits still arriving are not needed), instead
   * of idling for chain.commit_timeout_ms.  Validators still waiting buffer
   * the proposal (the core keeps early messages of height + 1). */
  if (c->timers_ready)
    uv_timer_start(&c->next_timer, on_next_timer,
                   c->mp.live ? 0 : c->commit_timeout_ms, 0);
}

/* TEST ONLY (chain.test_equivocate): for each vote this node casts, sign
 * and gossip a conflicting one (nil for a value, a made-up value for nil),
 * which is exactly what a Byzantine validator does.  The double-sign guard
 * lives in the core, which never sees this vote. */
static void equivocate(px_chain_t *c, const uint8_t *msg, size_t len) {
  px_cons_vote_t v;
  if (px_cons_vote_decode(msg, len, &v)) return;
  int self = px_cons_valset_find(&c->vs, c->key.pk);
  if (self < 0 || v.validator != (uint16_t)self) return;
  if (v.has_value) {
    v.has_value = 0;
    memset(v.hash, 0, sizeof v.hash);
  } else {
    v.has_value = 1;
    px_hash(v.hash, msg, len);
  }
  px_buf_t b;
  px_buf_init(&b, 0);
  if (px_cons_vote_sign(c->chain_id, &c->key, &v) == 0 &&
      px_cons_vote_encode(&v, &b) == 0)
    px_p2p_broadcast(c->env.p2p, PX_CHAIN_TOPIC_CONS, b.data, b.len, now_ms(c),
                     NULL);
  px_buf_release(&b);
}

static void drain_cons(px_chain_t *c) {
  if (!c->cons) return;
  px_cons_fx_t fx;
  while (px_cons_poll(c->cons, &fx)) {
    switch (fx.kind) {
    case PX_CONS_FX_PERSIST:
      if (c->wal) {
        int rc = px_wal_append(c->wal, fx.wal_type, fx.data.data, fx.data.len,
                               fx.sync);
        if (rc && fx.sync && !c->wal_broken) {
          PX_LOGE(LOGMOD,
                  "cannot persist a signed message to %s: %s; this node "
                  "stops sending consensus messages",
                  c->wal_path, px_strerror(rc));
          c->wal_broken = 1;
        }
      }
      break;
    case PX_CONS_FX_EVIDENCE:
      ev_pool_add(c, fx.data.data, fx.data.len);
      px_p2p_broadcast(c->env.p2p, PX_CHAIN_TOPIC_CONS, fx.data.data,
                       fx.data.len, now_ms(c), NULL);
      break;
    case PX_CONS_FX_BROADCAST:
      if (!c->wal_broken) {
        px_p2p_broadcast(c->env.p2p, PX_CHAIN_TOPIC_CONS, fx.data.data,
                         fx.data.len, now_ms(c), NULL);
        if (c->test_equivocate) equivocate(c, fx.data.data, fx.data.len);
      }
      break;
    case PX_CONS_FX_SCHEDULE_TIMEOUT:
      tmo_add(c, &fx);
      break;
    case PX_CONS_FX_DECIDE:
      on_decide(c, &fx);
      break;
    }
    px_cons_fx_release(&fx);
  }
  arm_cons_timer(c);
}

static void on_cons_timer(uv_timer_t *t) {
  px_chain_t *c = t->data;
  uint64_t now = now_ms(c);
  /* Take the due ones out first: handling them schedules new ones. */
  timeout_t due[32];
  size_t nd = 0, w = 0;
  for (size_t i = 0; i < c->ntmo; i++) {
    if (c->tmo[i].at <= now && nd < PX_ARRAY_LEN(due))
      due[nd++] = c->tmo[i];
    else
      c->tmo[w++] = c->tmo[i];
  }
  c->ntmo = w;
  for (size_t i = 0; i < nd; i++)
    if (due[i].h == c->cons_height && c->started)
      px_cons_on_timeout(c->cons, due[i].h, due[i].r,
                         (px_cons_step_t)due[i].step, now);
  drain_cons(c);
  c->env.flush(c->env.ud);
}

static void start_height(px_chain_t *c) {
  uint64_t h = state_height(c) + 1;
  c->next_wait = 0;
  if (c->timers_ready) uv_timer_stop(&c->next_timer);
  if (c->started && h <= c->cons_height) return;
  int rc = px_chain_valset(c->state, h, &c->vs);
  if (rc) {
    PX_LOGE(LOGMOD, "no validator set for height %llu: %s",
            (unsigned long long)h, px_strerror(rc));
    return;
  }
  c->cons_height = h;
  if ((rc = px_cons_start(c->cons, h, &c->vs, now_ms(c)))) {
    PX_LOGE(LOGMOD, "cannot start height %llu: %s", (unsigned long long)h,
            px_strerror(rc));
    return;
  }
  c->started = 1;
  drain_cons(c);
}

/* ===================================================================== */
/* the application side of consensus                                     */
/* ===================================================================== */

static int app_get_value(void *ud, uint64_t height, uint32_t round,
                         px_buf_t *out) {
  (void)round;
  px_chain_t *c = ud;
  if (height != state_height(c) + 1) return PX_ESTATE;
  const px_ledger_params_t *pr = px_ledger_params(c->state);
  size_t cap = PX_MIN(c->mp.live, (size_t)pr->max_block_txs);
  const uint8_t **txs = px_calloc(cap ? cap : 1, sizeof *txs);
  size_t *lens = px_calloc(cap ? cap : 1, sizeof *lens);
  if (!txs || !lens) {
    px_free(txs);
    px_free(lens);
    return PX_ENOMEM;
  }
  size_t n = 0, bytes = 0;
  for (size_t k = 0; k < c->mp.n && n < cap; k++) {
    const px_mempool_entry_t *e = &c->mp.e[k];
    if (e->dead) continue;
    if (bytes + e->len > BLOCK_BYTES_MAX) break;
    txs[n] = e->raw;
    lens[n++] = e->len;
    bytes += e->len;
  }
  /* Evidence: the pool holds only what the next block may carry (it is
   * re-checked after every commit, and entries are distinct). */
  const uint8_t *evs[PX_LEDGER_BLOCK_MAX_EVIDENCE];
  size_t ev_lens[PX_LEDGER_BLOCK_MAX_EVIDENCE], nev = 0;
  for (size_t i = 0; i < c->nev && nev < PX_LEDGER_BLOCK_MAX_EVIDENCE; i++) {
    evs[nev] = c->ev[i].raw;
    ev_lens[nev++] = c->ev[i].len;
  }
  uint64_t t = px_time_wall_ms();
  if (t < px_ledger_last_time(c->state)) t = px_ledger_last_time(c->state);
  int rc = px_ledger_block_make_ev(c->state, c->key.pk, t, txs, lens, n, evs,
                                   ev_lens, nev, out);
  px_free(txs);
  px_free(lens);
  return rc;
}

static int app_valid(void *ud, uint64_t height, const uint8_t *v, size_t len) {
  px_chain_t *c = ud;
  if (height != state_height(c) + 1) return 0;
  px_block_t b;
  if (px_block_decode(v, len, &b)) return 0;
  int ok =
      b.header.height == height && px_ledger_block_validate(c->state, &b) == 0;
  px_block_release(&b);
  return ok;
}

/* ===================================================================== */
/* open / start / close                                                   */
/* ===================================================================== */

static int cfg_u64(const px_config_t *cfg, const char *key, uint64_t def,
                   uint64_t lo, uint64_t hi, uint64_t *out, char *errmsg,
                   size_t errcap) {
  if (px_config_get_u64(cfg, key, def, out) || *out < lo || *out > hi) {
    snprintf(errmsg, errcap,
             "config: %s must be a whole number from %llu to %llu", key,
             (unsigned long long)lo, (unsigned long long)hi);
    return PX_ECONFIG;
  }
  return 0;
}

int px_chain_open(const px_chain_env_t *env, px_chain_t **out, char *errmsg,
                  size_t errcap) {
  static const char *known[] = {
      "chain.commit_timeout_ms",  "chain.propose_timeout_ms",
      "chain.prevote_timeout_ms", "chain.precommit_timeout_ms",
      "chain.timeout_delta_ms",   "chain.resend_ms",
      "chain.mempool_max_txs",    "chain.mempool_max_bytes",
      "chain.test_equivocate",
  };
  *out = NULL;
  const px_config_t *cfg = env->cfg;
  for (size_t i = 0; i < cfg->n; i++) {
    const char *k = cfg->entries[i].key;
    if (strncmp(k, "chain.", 6) != 0) continue;
    int ok = 0;
    for (size_t j = 0; j < PX_ARRAY_LEN(known) && !ok; j++)
      ok = strcmp(k, known[j]) == 0;
    if (!ok) {
      snprintf(errmsg, errcap,
               "config: unknown option '%s' (see docs/chain.md)", k);
      return PX_ECONFIG;
    }
  }
  uint64_t commit_ms, prop_ms, prev_ms, prec_ms, delta_ms, resend_ms, mp_txs,
      mp_bytes;
  int rc;
  if ((rc = cfg_u64(cfg, "chain.commit_timeout_ms", 100, 0, 600000, &commit_ms,
                    errmsg, errcap)) ||
      (rc = cfg_u64(cfg, "chain.propose_timeout_ms", 1000, 10, 600000, &prop_ms,
                    errmsg, errcap)) ||
      (rc = cfg_u64(cfg, "chain.prevote_timeout_ms", 500, 10, 600000, &prev_ms,
                    errmsg, errcap)) ||
      (rc = cfg_u64(cfg, "chain.precommit_timeout_ms", 500, 10, 600000,
                    &prec_ms, errmsg, errcap)) ||
      (rc = cfg_u64(cfg, "chain.timeout_delta_ms", 250, 0, 600000, &delta_ms,
                    errmsg, errcap)) ||
      (rc = cfg_u64(cfg, "chain.resend_ms", 1000, 0, 600000, &resend_ms, errmsg,
                    errcap)) ||
      (rc = cfg_u64(cfg, "chain.mempool_max_txs", 100000, 1, 10000000, &mp_txs,
                    errmsg, errcap)) ||
      (rc = cfg_u64(cfg, "chain.mempool_max_bytes", 256u << 20, 4096,
                    1ull << 40, &mp_bytes, errmsg, errcap)))
    return rc;
  int equiv = 0;
  if (px_config_get_bool(cfg, "chain.test_equivocate", 0, &equiv)) {
    snprintf(errmsg, errcap, "config: chain.test_equivocate must be a boolean");
    return PX_ECONFIG;
  }

  px_chain_t *c = px_calloc(1, sizeof *c);
  if (!c) return PX_ENOMEM;
  c->env = *env;
  snprintf(c->home, sizeof c->home, "%s", env->home);
  c->env.home = c->home;
  c->env.cfg = NULL;
  c->key = *env->key;
  c->commit_timeout_ms = commit_ms;
  c->test_equivocate = equiv;
  if (equiv)
    PX_LOGW(LOGMOD, "chain.test_equivocate is on: this node signs conflicting "
                    "votes and will be slashed (tests only)");
  px_mempool_init(&c->mp, (size_t)mp_txs, (size_t)mp_bytes);
  px_buf_init(&c->batch, 0);
  snprintf(c->wal_path, sizeof c->wal_path, "%s/%s", c->home,
           PX_CHAIN_WAL_FILE);
  if (!(c->tmo = px_calloc(MAX_TIMEOUTS, sizeof *c->tmo)) ||
      !(c->ev = px_calloc(EV_POOL_MAX, sizeof *c->ev))) {
    rc = PX_ENOMEM;
    goto fail;
  }
  char path[700];
  snprintf(path, sizeof path, "%s/%s", c->home, PX_CHAIN_DATA_DIR);
  if ((rc = px_ledger_store_open(path, 0, &c->store))) {
    snprintf(errmsg, errcap, "cannot open the chain store %s: %s", path,
             px_strerror(rc));
    goto fail;
  }
  uint64_t h;
  rc = px_ledger_store_height(c->store, &h);
  if (rc == PX_ENOENT || rc == PX_ENOTFOUND) {
    px_genesis_t g;
    px_genesis_init(&g);
    snprintf(path, sizeof path, "%s/%s", c->home, PX_CHAIN_GENESIS_FILE);
    rc = px_genesis_read_file(path, &g);
    if (rc) {
      snprintf(errmsg, errcap, "cannot read genesis %s: %s", path,
               px_strerror(rc));
      px_genesis_release(&g);
      goto fail;
    }
    rc = px_ledger_state_from_genesis(&g, &c->state);
    if (!rc) rc = px_ledger_store_init(c->store, &g, c->state);
    px_genesis_release(&g);
    if (rc) {
      snprintf(errmsg, errcap, "cannot initialise the chain from %s: %s", path,
               px_strerror(rc));
      goto fail;
    }
  } else if (rc) {
    snprintf(errmsg, errcap, "cannot read the chain store: %s",
             px_strerror(rc));
    goto fail;
  } else if ((rc = px_ledger_store_load(c->store, &c->state))) {
    snprintf(errmsg, errcap,
             "cannot load the chain state from %s/%s: %s (the store is "
             "damaged; move it away to resync from peers)",
             c->home, PX_CHAIN_DATA_DIR, px_strerror(rc));
    goto fail;
  }
  snprintf(c->chain_id, sizeof c->chain_id, "%s", px_ledger_chain_id(c->state));
  px_cons_config_t cc;
  px_cons_config_default(&cc);
  snprintf(cc.chain_id, sizeof cc.chain_id, "%s", c->chain_id);
  cc.key = c->key;
  cc.has_key = 1; /* signs only where the key is in the height's set */
  cc.propose_ms = prop_ms;
  cc.prevote_ms = prev_ms;
  cc.precommit_ms = prec_ms;
  cc.propose_delta_ms = cc.prevote_delta_ms = cc.precommit_delta_ms = delta_ms;
  cc.resend_ms = resend_ms;
  cc.app.get_value = app_get_value;
  cc.app.valid = app_valid;
  cc.app.ud = c;
  rc = px_cons_new(&cc, &c->cons);
  px_key_wipe(&cc.key);
  if (rc) {
    snprintf(errmsg, errcap, "cannot create the consensus core: %s",
             px_strerror(rc));
    goto fail;
  }
  *out = c;
  return 0;
fail:
  px_chain_free(c);
  return rc;
}

typedef struct {
  px_chain_t *c;
  uint64_t now;
} replay_ctx_t;

static int replay_rec(void *ud, const px_wal_record_t *rec) {
  replay_ctx_t *r = ud;
  int rc =
      px_cons_replay(r->c->cons, rec->type, rec->payload, rec->len, r->now);
  if (rc == PX_EDECODE)
    PX_LOGW(LOGMOD, "WAL record at byte %zu is malformed; skipped",
            rec->offset);
  return 0;
}

static void on_batch_timer(uv_timer_t *t);

int px_chain_start(px_chain_t *c) {
  uv_timer_init(c->env.loop, &c->cons_timer);
  uv_timer_init(c->env.loop, &c->next_timer);
  uv_timer_init(c->env.loop, &c->batch_timer);
  c->cons_timer.data = c->next_timer.data = c->batch_timer.data = c;
  c->timers_ready = 1;
  c->last_progress_ms = now_ms(c);
  uint8_t *wal = NULL;
  size_t wal_len = 0;
  int rc = px_file_read_all(c->wal_path, WAL_READ_MAX, &wal, &wal_len);
  if (rc && rc != PX_ENOENT) {
    PX_LOGE(LOGMOD, "cannot read WAL %s: %s", c->wal_path, px_strerror(rc));
    return rc;
  }
  replay_ctx_t r = {c, now_ms(c)};
  px_wal_replay_info_t info;
  memset(&info, 0, sizeof info);
  if (wal) {
    px_wal_replay_mem(wal, wal_len, replay_rec, &r, &info);
    if (info.tail_err) {
      char line[512];
      px_wal_describe(c->wal_path, &info, line, sizeof line);
      PX_LOGW(LOGMOD, "%s", line);
      px_cons_set_sign_floor(c->cons, info.max_height + 1);
      wal_len = info.good_len;
      if ((rc = px_wal_truncate(c->wal_path, info.good_len)))
        PX_LOGW(LOGMOD, "cannot cut the WAL: %s", px_strerror(rc));
    }
  }
  if ((rc = px_wal_open(c->wal_path, &c->wal))) {
    PX_LOGE(LOGMOD, "cannot open WAL %s: %s", c->wal_path, px_strerror(rc));
    px_free(wal);
    return rc;
  }
  char ah[65];
  uint8_t app[PX_HASH_LEN];
  px_ledger_app_hash(c->state, app);
  hex32(app, ah);
  PX_LOGI(LOGMOD, "chain %s at height %llu (app %.16s), WAL %zu records",
          c->chain_id, (unsigned long long)state_height(c), ah,
          (size_t)info.records);
  start_height(c);
  if (wal) {
    px_wal_replay_mem(wal, wal_len, replay_rec, &r, NULL);
    drain_cons(c);
  }
  px_free(wal);
  int self = px_cons_valset_find(&c->vs, c->key.pk);
  PX_LOGI(LOGMOD, "%s at height %llu of %u validators",
          self >= 0 ? "validating" : "following",
          (unsigned long long)c->cons_height, c->vs.n);
  return 0;
}

void px_chain_close(px_chain_t *c) {
  if (!c || !c->timers_ready) return;
  c->timers_ready = 0;
  uv_close((uv_handle_t *)&c->cons_timer, NULL);
  uv_close((uv_handle_t *)&c->next_timer, NULL);
  uv_close((uv_handle_t *)&c->batch_timer, NULL);
}

void px_chain_free(px_chain_t *c) {
  if (!c) return;
  if (c->wal) {
    px_wal_sync(c->wal);
    px_wal_close(c->wal);
  }
  px_cons_free(c->cons);
  px_ledger_state_free(c->state);
  px_ledger_store_close(c->store);
  px_mempool_release(&c->mp);
  px_buf_release(&c->batch);
  px_free(c->tmo);
  px_free(c->ev);
  px_key_wipe(&c->key);
  px_free(c);
}

/* ===================================================================== */
/* network                                                                */
/* ===================================================================== */

static void batch_flush(px_chain_t *c) {
  if (!c->batch.len) return;
  px_p2p_broadcast(c->env.p2p, PX_CHAIN_TOPIC_TXS, c->batch.data, c->batch.len,
                   now_ms(c), NULL);
  px_buf_reset(&c->batch);
}

static void on_batch_timer(uv_timer_t *t) {
  px_chain_t *c = t->data;
  batch_flush(c);
  c->env.flush(c->env.ud);
}

/* A tx this node admitted goes out to the others in the next batch: many
 * txs in one gossip message (u32 len + bytes each) under load. */
static void batch_add(px_chain_t *c, const uint8_t *p, size_t len) {
  if (px_chain_batch_append(&c->batch, p, len)) return;
  if (c->batch.len >= TX_BATCH_MAX)
    batch_flush(c);
  else if (c->timers_ready && !uv_is_active((uv_handle_t *)&c->batch_timer))
    uv_timer_start(&c->batch_timer, on_batch_timer, 1, 0);
}

int px_chain_on_gossip(px_chain_t *c, const px_p2p_fx_t *fx) {
  if (fx->topic == PX_CHAIN_TOPIC_CONS) {
    px_cons_msg_type_t type;
    uint64_t h;
    uint32_t r;
    int peeked = px_cons_msg_peek(fx->data.data, fx->data.len, &type, &h, &r);
    if (peeked == 0 && type == PX_CONS_MSG_EVIDENCE) {
      ev_pool_add(c, fx->data.data, fx->data.len);
      return 1;
    }
    if (peeked == 0 && h > c->cons_height + 1) sync_kick(c, fx->node_pk);
    if (c->started) {
      px_cons_on_message(c->cons, fx->data.data, fx->data.len, now_ms(c));
      drain_cons(c);
    }
    return 1;
  }
  if (fx->topic == PX_CHAIN_TOPIC_TXS) {
    const uint8_t *tx;
    size_t off = 0, l;
    while (px_chain_batch_next(fx->data.data, fx->data.len, &off, &tx, &l) ==
           1) {
      int rc = px_mempool_add(&c->mp, c->state, tx, l, now_ms(c), NULL);
      if (rc && rc != PX_EDUP) c->txs_rejected++;
    }
    return 1;
  }
  return 0;
}

static void peer_add(px_chain_t *c, const uint8_t *pk) {
  for (size_t i = 0; i < c->npeers; i++)
    if (memcmp(c->peers[i], pk, PX_PK_LEN) == 0) return;
  if (c->npeers < MAX_PEERS) memcpy(c->peers[c->npeers++], pk, PX_PK_LEN);
}

static void peer_del(px_chain_t *c, const uint8_t *pk) {
  for (size_t i = 0; i < c->npeers; i++)
    if (memcmp(c->peers[i], pk, PX_PK_LEN) == 0) {
      memcpy(c->peers[i], c->peers[--c->npeers], PX_PK_LEN);
      return;
    }
}

void px_chain_on_peer(px_chain_t *c, const px_p2p_fx_t *fx) {
  if (fx->kind == PX_P2P_FX_PEER_UP) {
    peer_add(c, fx->node_pk);
    sync_kick(c, fx->node_pk);
  } else {
    peer_del(c, fx->node_pk);
  }
}

static void sync_kick(px_chain_t *c, const uint8_t *peer) {
  if (c->sync_req || !c->npeers) return;
  const uint8_t *pk = peer;
  if (!pk) pk = c->peers[c->peer_rr++ % c->npeers];
  uint8_t q[8];
  px_put_u64le(q, state_height(c) + 1);
  uint64_t id = 0;
  if (px_p2p_request(c->env.p2p, pk, PX_CHAIN_METHOD_BLOCK, q, sizeof q,
                     SYNC_REQ_TIMEOUT_MS, now_ms(c), &id) == 0) {
    c->sync_req = id;
    memcpy(c->sync_peer, pk, PX_PK_LEN);
  }
}

int px_chain_on_request(px_chain_t *c, const px_p2p_fx_t *fx) {
  if (fx->method != PX_CHAIN_METHOD_BLOCK) return 0;
  uint64_t h = fx->data.len == 8 ? px_get_u64le(fx->data.data) : 0;
  if (h == 0 || h > state_height(c)) {
    px_p2p_respond(c->env.p2p, fx->node_pk, fx->req_id, PX_ENOTFOUND, NULL, 0);
    return 1;
  }
  px_buf_t blk, cert, b;
  px_buf_init(&blk, 0);
  px_buf_init(&cert, 0);
  px_buf_init(&b, 0);
  int rc = px_ledger_store_block(c->store, h, &blk);
  if (!rc) rc = px_ledger_store_cert(c->store, h, &cert);
  if (!rc)
    rc = px_chain_sync_reply_encode(blk.data, blk.len, cert.data, cert.len, &b);
  px_buf_release(&blk);
  px_buf_release(&cert);
  if (rc)
    px_p2p_respond(c->env.p2p, fx->node_pk, fx->req_id, rc, NULL, 0);
  else
    px_p2p_respond(c->env.p2p, fx->node_pk, fx->req_id, 0, b.data, b.len);
  px_buf_release(&b);
  return 1;
}

int px_chain_on_response(px_chain_t *c, const px_p2p_fx_t *fx) {
  if (!c->sync_req || fx->req_id != c->sync_req) return 0;
  c->sync_req = 0;
  if (fx->err) {
    if (fx->err != PX_ENOTFOUND)
      PX_LOGD(LOGMOD, "sync request failed: %s", px_strerror(fx->err));
    return 1;
  }
  uint64_t h = state_height(c) + 1;
  px_chain_sync_reply_t rp;
  if (px_chain_sync_reply_decode(fx->data.data, fx->data.len, &rp)) return 1;
  if (rp.commit.height != h) {
    px_chain_sync_reply_release(&rp);
    return 1;
  }
  px_cons_valset_t vs;
  int rc = px_chain_valset(c->state, h, &vs);
  if (!rc)
    rc = px_cons_commit_verify(c->chain_id, &vs, &rp.commit, rp.block.hash);
  const uint8_t *braw = rp.block_raw, *cert = rp.cert;
  size_t bl = rp.block_len, cl = rp.cert_len;
  uint32_t round = rp.commit.round;
  px_chain_sync_reply_release(&rp);
  char peer[65];
  px_node_id_hex(fx->node_pk, peer);
  if (rc) {
    PX_LOGW(LOGMOD, "sync: block %llu from %.16s has a bad commit: %s",
            (unsigned long long)h, peer, px_strerror(rc));
    return 1;
  }
  if (commit_block(c, braw, bl, cert, cl, round, 1) == 0) {
    start_height(c);
    sync_kick(c, fx->node_pk);
  }
  return 1;
}

void px_chain_tick(px_chain_t *c, uint64_t now) {
  if (!c->started) return;
  /* No decision for a while: maybe the others are far ahead. */
  if (now - c->last_progress_ms > SYNC_STALL_MS && !c->sync_req) {
    c->last_progress_ms = now;
    sync_kick(c, NULL);
  }
}

/* ===================================================================== */
/* control commands                                                       */
/* ===================================================================== */

static void json_err(px_buf_t *out, int err, const char *what) {
  px_buf_printf(out, "{\"ok\":false,\"error\":\"%s\",\"message\":\"%s: %s\"}",
                px_err_name(err), what, px_strerror(err));
}

static const char *reject_hint(int err) {
  switch (err) {
  case PX_ELIMIT:
    return "mempool full; retry later";
  case PX_EDUP:
    return "transaction already in the mempool";
  default:
    return "transaction rejected";
  }
}

static int parse_hex_alloc(const char *s, size_t len, uint8_t **out,
                           size_t *n) {
  if (len % 2) return PX_EDECODE;
  if (len / 2 > PX_LEDGER_TX_MAX_SIZE * 4) return PX_ETOOBIG;
  uint8_t *b = px_malloc(len / 2 ? len / 2 : 1);
  if (!b) return PX_ENOMEM;
  char tmp[3] = {0};
  for (size_t i = 0; i < len / 2; i++) {
    tmp[0] = s[2 * i];
    tmp[1] = s[2 * i + 1];
    if (px_hex_decode(tmp, &b[i], 1)) {
      px_free(b);
      return PX_EDECODE;
    }
  }
  *out = b;
  *n = len / 2;
  return 0;
}

static int submit_one(px_chain_t *c, const char *hex, size_t hl,
                      uint8_t hash[PX_HASH_LEN]) {
  uint8_t *raw;
  size_t n;
  int rc = parse_hex_alloc(hex, hl, &raw, &n);
  if (rc) return rc;
  rc = px_mempool_add(&c->mp, c->state, raw, n, now_ms(c), hash);
  if (!rc) batch_add(c, raw, n);
  px_free(raw);
  return rc;
}

int px_chain_submit(px_chain_t *c, const uint8_t *raw, size_t n,
                    uint8_t hash[PX_HASH_LEN]) {
  uint8_t h[PX_HASH_LEN];
  if (!c || !raw || !n) return PX_EINVAL;
  int rc = px_mempool_add(&c->mp, c->state, raw, n, now_ms(c), h);
  if (rc) {
    c->txs_rejected++;
    return rc;
  }
  batch_add(c, raw, n);
  if (hash) memcpy(hash, h, PX_HASH_LEN);
  return 0;
}

const px_ledger_state_t *px_chain_state(const px_chain_t *c) {
  return c ? c->state : NULL;
}

uint64_t px_chain_next_nonce(const px_chain_t *c, const uint8_t pk[PX_PK_LEN]) {
  px_account_t a;
  if (px_ledger_account(c->state, pk, &a)) return 0;
  return a.nonce + px_mempool_sender_count(&c->mp, pk);
}

int px_chain_block_hash(px_chain_t *c, uint64_t height,
                        uint8_t out[PX_HASH_LEN]) {
  if (!c || !height) return PX_EINVAL;
  if (height == state_height(c)) {
    px_ledger_last_block_hash(c->state, out);
    return 0;
  }
  px_buf_t b;
  px_buf_init(&b, 0);
  int rc = px_ledger_store_block(c->store, height, &b);
  if (!rc) px_hash(out, b.data, b.len);
  px_buf_release(&b);
  return rc;
}

int px_chain_tx_location(px_chain_t *c, const uint8_t hash[PX_HASH_LEN],
                         px_tx_location_t *loc) {
  if (!c || !hash || !loc) return PX_EINVAL;
  return px_ledger_store_tx(c->store, hash, loc);
}

static void cmd_tx(px_chain_t *c, const char *arg, px_buf_t *out) {
  uint8_t hash[PX_HASH_LEN];
  memset(hash, 0, sizeof hash);
  if (!arg || !*arg) {
    json_err(out, PX_EINVAL, "usage: tx HEX");
    return;
  }
  int rc = submit_one(c, arg, strlen(arg), hash);
  if (rc) {
    c->txs_rejected++;
    json_err(out, rc, reject_hint(rc));
    return;
  }
  char h[65];
  hex32(hash, h);
  px_buf_printf(out, "{\"ok\":true,\"hash\":\"%s\",\"mempool\":%zu}", h,
                c->mp.live);
}

/* Many txs in one command (benchmarks, batch wallets): "txs HEX HEX ...". */
static void cmd_txs(px_chain_t *c, const char *arg, px_buf_t *out) {
  size_t ok = 0, bad = 0;
  int first = 0;
  const char *p = arg ? arg : "";
  while (*p) {
    while (*p == ' ')
      p++;
    const char *e = p;
    while (*e && *e != ' ')
      e++;
    if (e > p) {
      uint8_t hash[PX_HASH_LEN];
      int rc = submit_one(c, p, (size_t)(e - p), hash);
      if (rc) {
        bad++;
        if (!first) first = rc;
      } else {
        ok++;
      }
    }
    p = e;
  }
  c->txs_rejected += bad;
  px_buf_printf(out, "{\"ok\":true,\"accepted\":%zu,\"rejected\":%zu", ok, bad);
  if (first) px_buf_printf(out, ",\"first_error\":\"%s\"", px_err_name(first));
  px_buf_printf(out, ",\"mempool\":%zu}", c->mp.live);
}

/* "evidence HEX": a consensus EVIDENCE encoding for the pool (watchers,
 * tests); it is gossiped when the ledger accepts it for the next block. */
static void cmd_evidence(px_chain_t *c, const char *arg, px_buf_t *out) {
  uint8_t *raw = NULL;
  size_t n = 0;
  int rc =
      arg && *arg ? parse_hex_alloc(arg, strlen(arg), &raw, &n) : PX_EINVAL;
  if (!rc) rc = ev_pool_add(c, raw, n);
  if (!rc)
    px_p2p_broadcast(c->env.p2p, PX_CHAIN_TOPIC_CONS, raw, n, now_ms(c), NULL);
  px_free(raw);
  if (rc) {
    json_err(out, rc, "evidence rejected");
    return;
  }
  px_buf_printf(out, "{\"ok\":true,\"pending\":%zu}", c->nev);
}

static void cmd_account(px_chain_t *c, const char *arg, px_buf_t *out) {
  char pkhex[80] = "";
  const char *sp = arg ? strchr(arg, ' ') : NULL;
  size_t pl = arg ? (sp ? (size_t)(sp - arg) : strlen(arg)) : 0;
  int prove = sp && strcmp(sp + 1, "prove") == 0;
  uint8_t pk[PX_PK_LEN];
  if (pl >= sizeof pkhex ||
      (memcpy(pkhex, arg, pl), pkhex[pl] = 0, px_node_id_parse(pkhex, pk))) {
    json_err(out, PX_EINVAL, "usage: account PUBKEY_HEX [prove]");
    return;
  }
  px_account_t a;
  px_ledger_account(c->state, pk, &a);
  uint8_t app[PX_HASH_LEN];
  char ah[65];
  px_ledger_app_hash(c->state, app);
  hex32(app, ah);
  uint64_t q = px_mempool_sender_count(&c->mp, pk);
  px_buf_printf(out,
                "{\"ok\":true,\"height\":%llu,\"app_hash\":\"%s\","
                "\"account\":{\"pk\":\"%s\",\"balance\":%llu,\"nonce\":%llu,"
                "\"stake\":%llu,\"unbonding\":%llu},\"next_nonce\":%llu",
                (unsigned long long)state_height(c), ah, pkhex,
                (unsigned long long)a.balance, (unsigned long long)a.nonce,
                (unsigned long long)a.stake, (unsigned long long)a.unbonding,
                (unsigned long long)(a.nonce + q));
  if (prove) {
    uint8_t key[PX_LEDGER_KEY_MAX];
    size_t kl = px_ledger_key_account(pk, key);
    const uint8_t *val = NULL;
    size_t vl = 0;
    int present = px_ledger_get(c->state, key, kl, &val, &vl) == 0;
    px_smt_proof_t *pf = px_malloc(sizeof *pf);
    px_buf_t pb;
    px_buf_init(&pb, 0);
    int rc = pf ? px_ledger_prove(c->state, key, kl, pf) : PX_ENOMEM;
    if (!rc) rc = px_smt_proof_encode(pf, &pb);
    if (!rc) {
      char *hx = px_malloc(pb.len * 2 + kl * 2 + vl * 2 + 3);
      if (hx) {
        px_hex_encode(key, kl, hx);
        px_buf_printf(out, ",\"key\":\"%s\"", hx);
        if (present) {
          px_hex_encode(val, vl, hx);
          px_buf_printf(out, ",\"value\":\"%s\"", hx);
        } else {
          px_buf_printf(out, ",\"value\":null");
        }
        px_hex_encode(pb.data, pb.len, hx);
        px_buf_printf(out, ",\"proof\":\"%s\"", hx);
        px_free(hx);
      }
    }
    px_buf_release(&pb);
    px_free(pf);
  }
  px_buf_printf(out, "}");
}

static void cmd_txstatus(px_chain_t *c, const char *arg, px_buf_t *out) {
  uint8_t h[PX_HASH_LEN];
  if (!arg || strlen(arg) != 64 || px_hex_decode(arg, h, PX_HASH_LEN)) {
    json_err(out, PX_EINVAL, "usage: txstatus HASH_HEX");
    return;
  }
  px_tx_location_t loc;
  if (px_ledger_store_tx(c->store, h, &loc) == 0) {
    px_buf_printf(out,
                  "{\"ok\":true,\"hash\":\"%s\",\"status\":\"committed\","
                  "\"height\":%llu,\"index\":%u,\"code\":%d,\"result\":\"%s\","
                  "\"fee_paid\":%llu}",
                  arg, (unsigned long long)loc.height, loc.index, loc.code,
                  loc.code ? px_err_name(loc.code) : "ok",
                  (unsigned long long)loc.fee_paid);
  } else {
    px_buf_printf(out, "{\"ok\":true,\"hash\":\"%s\",\"status\":\"%s\"}", arg,
                  px_mempool_has(&c->mp, h) ? "pending" : "unknown");
  }
}

static void valset_json(const px_cons_valset_t *vs, px_buf_t *out) {
  px_buf_printf(out, "[");
  for (uint32_t i = 0; i < vs->n; i++) {
    char pk[65];
    hex32(vs->v[i].pk, pk);
    px_buf_printf(out, "%s{\"pk\":\"%s\",\"power\":%llu}", i ? "," : "", pk,
                  (unsigned long long)vs->v[i].power);
  }
  px_buf_printf(out, "]");
}

static void cmd_block(px_chain_t *c, const char *arg, px_buf_t *out) {
  char num[32] = "";
  const char *sp = arg ? strchr(arg, ' ') : NULL;
  size_t nl = arg ? (sp ? (size_t)(sp - arg) : strlen(arg)) : 0;
  int raw = sp && strcmp(sp + 1, "raw") == 0;
  uint64_t h;
  if (!nl || nl >= sizeof num ||
      (memcpy(num, arg, nl), num[nl] = 0, px_parse_u64(num, &h))) {
    json_err(out, PX_EINVAL, "usage: block HEIGHT [raw]");
    return;
  }
  px_buf_t b;
  px_buf_init(&b, 0);
  int rc = h ? px_ledger_store_block(c->store, h, &b) : PX_ENOTFOUND;
  px_block_t blk;
  if (!rc) rc = px_block_decode(b.data, b.len, &blk);
  if (rc) {
    px_buf_release(&b);
    json_err(out, rc == PX_ENOTFOUND ? rc : rc, "no such block");
    return;
  }
  const px_block_header_t *hd = &blk.header;
  char bh[65], ph[65], pr[65], ah[65], rh[65], tr[65];
  hex32(blk.hash, bh);
  hex32(hd->prev_hash, ph);
  hex32(hd->proposer, pr);
  hex32(hd->app_hash, ah);
  hex32(hd->results_hash, rh);
  hex32(hd->tx_root, tr);
  px_buf_printf(out,
                "{\"ok\":true,\"height\":%llu,\"hash\":\"%s\",\"prev_hash\":"
                "\"%s\",\"proposer\":\"%s\",\"time\":%llu,\"app_hash\":\"%s\","
                "\"results_hash\":\"%s\",\"tx_root\":\"%s\",\"n_txs\":%zu,"
                "\"n_evidence\":%zu,\"txs\":[",
                (unsigned long long)hd->height, bh, ph, pr,
                (unsigned long long)hd->time, ah, rh, tr, blk.n_txs,
                blk.n_evidence);
  for (size_t i = 0; i < blk.n_txs; i++) {
    char th[65];
    hex32(blk.txs[i].hash, th);
    px_buf_printf(out, "%s\"%s\"", i ? "," : "", th);
  }
  px_buf_printf(out, "]");
  /* The state root after this block is the next block's app_hash; give it
   * when this is the last block (queries prove against it). */
  if (h == state_height(c)) {
    uint8_t app[PX_HASH_LEN];
    char sh[65];
    px_ledger_app_hash(c->state, app);
    hex32(app, sh);
    px_buf_printf(out, ",\"state_root\":\"%s\"", sh);
  }
  if (raw) {
    px_buf_t cert;
    px_buf_init(&cert, 0);
    char *hx = px_malloc(b.len * 2 + 1);
    if (hx) {
      px_hex_encode(b.data, b.len, hx);
      px_buf_printf(out, ",\"raw\":\"%s\"", hx);
      px_free(hx);
    }
    if (px_ledger_store_cert(c->store, h, &cert) == 0 &&
        (hx = px_malloc(cert.len * 2 + 1))) {
      px_hex_encode(cert.data, cert.len, hx);
      px_buf_printf(out, ",\"commit\":\"%s\"", hx);
      px_free(hx);
    }
    px_buf_release(&cert);
  }
  px_buf_printf(out, "}");
  px_block_release(&blk);
  px_buf_release(&b);
}

static void cmd_validators(px_chain_t *c, const char *arg, px_buf_t *out) {
  (void)arg;
  px_buf_printf(out, "{\"ok\":true,\"height\":%llu,\"validators\":",
                (unsigned long long)c->cons_height);
  valset_json(&c->vs, out);
  px_buf_printf(out, "}");
}

void px_chain_status_json(px_chain_t *c, px_buf_t *out) {
  uint8_t app[PX_HASH_LEN], bh[PX_HASH_LEN];
  char ah[65], bhx[65];
  px_ledger_app_hash(c->state, app);
  px_ledger_last_block_hash(c->state, bh);
  hex32(app, ah);
  hex32(bh, bhx);
  px_cons_state_t cs;
  px_cons_get_state(c->cons, &cs);
  uint64_t actual = 0, expected = 0;
  px_ledger_supply(c->state, &actual, &expected);
  int self = px_cons_valset_find(&c->vs, c->key.pk);
  px_buf_printf(
      out,
      "{\"height\":%llu,\"chain_id\":\"%s\",\"app_hash\":\"%s\","
      "\"block_hash\":\"%s\",\"cons_height\":%llu,\"round\":%u,"
      "\"step\":\"%s\",\"validator\":%s,\"validators\":%u,\"mempool\":%zu,"
      "\"mempool_bytes\":%zu,\"supply_actual\":%llu,\"supply_expected\":%llu,"
      "\"supply_ok\":%s,\"blocks_decided\":%llu,\"blocks_synced\":%llu,"
      "\"txs_committed\":%llu,\"txs_rejected\":%llu,\"last_block_txs\":%llu,"
      "\"evidence_pending\":%zu,\"evidence_seen\":%llu,"
      "\"evidence_committed\":%llu,\"wal_ok\":%s}",
      (unsigned long long)state_height(c), c->chain_id, ah, bhx,
      (unsigned long long)cs.height, cs.round, px_cons_step_name(cs.step),
      self >= 0 ? "true" : "false", c->vs.n, c->mp.live, c->mp.bytes,
      (unsigned long long)actual, (unsigned long long)expected,
      actual == expected ? "true" : "false",
      (unsigned long long)c->blocks_decided, (unsigned long long)c->sync_blocks,
      (unsigned long long)c->txs_committed, (unsigned long long)c->txs_rejected,
      (unsigned long long)c->last_block_txs, c->nev,
      (unsigned long long)c->evidence_seen,
      (unsigned long long)c->evidence_committed,
      c->wal_broken ? "false" : "true");
}

int px_chain_command(px_chain_t *c, const char *cmd, const char *arg,
                     px_buf_t *out) {
  if (!strcmp(cmd, "tx"))
    cmd_tx(c, arg, out);
  else if (!strcmp(cmd, "txs"))
    cmd_txs(c, arg, out);
  else if (!strcmp(cmd, "evidence"))
    cmd_evidence(c, arg, out);
  else if (!strcmp(cmd, "account"))
    cmd_account(c, arg, out);
  else if (!strcmp(cmd, "txstatus"))
    cmd_txstatus(c, arg, out);
  else if (!strcmp(cmd, "block"))
    cmd_block(c, arg, out);
  else if (!strcmp(cmd, "validators"))
    cmd_validators(c, arg, out);
  else if (!strcmp(cmd, "chain")) {
    px_buf_printf(out, "{\"ok\":true,\"chain\":");
    px_chain_status_json(c, out);
    px_buf_printf(out, "}");
  } else
    return 0;
  return 1;
}
