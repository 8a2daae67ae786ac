/*
 * core.c — Tendermint consensus (Algorithm 1 of "The latest gossip on BFT
 * consensus", Buchman, Kwon, Milosevic, arXiv:1807.04938 v3) as a sans-I/O
 * state machine.
 *
 * How it works.  The variables of Alg. 1 L1-L9 live in px_cons_t: h_p
 * (height), round_p (round), step_p (step), lockedValue/lockedRound,
 * validValue/validRound; decision_p[h_p] is `decided`.  The message log is
 * kept per round in a fixed number of round slots: for each round, the
 * proposals from proposer(h_p, r) (at most two — a second one is an
 * equivocating proposer) and, per validator index, one prevote and one
 * precommit.  After every event check_rules() evaluates the upon-rules
 * (L22, L28, L34, L36, L44, L47, L49, L55) until none fires; each rule is
 * marked with the lines it implements.  Quorums are voting power: "2f+1"
 * is more than 2/3 of the total power, "f+1" more than 1/3.
 *
 * Our own messages are "received" by ourselves at once (Alg. 1 assumes
 * broadcast reaches the sender), so BROADCAST never needs to loop back.
 *
 * Extensions outside Alg. 1, all of them gossip or safety plumbing:
 *  - RESEND timer: every resend_ms the core re-broadcasts its own messages
 *    of the current round and relays the round's proposal, so the algorithm
 *    stays live when the network loses messages (Alg. 1 assumes gossip
 *    eventually delivers everything after GST);
 *  - DECISION messages (value + commit certificate) decide a height that
 *    the rest of the network has already decided (catch-up);
 *  - messages of height h_p + 1 that arrive early are buffered (bounded)
 *    and fed in when that height starts;
 *  - the sign guard (below).
 *
 * Double-sign protection (the sign guard).  Before signing, the core looks
 * up what it already signed at that height: the identical message is
 * re-sent as it was; a different message for the same (height, round,
 * step), or anything below the last signed (height, round, step), is
 * refused.  Every newly signed message is emitted as PERSIST(OWN, sync)
 * before its BROADCAST, so the runtime has it on disk before it leaves;
 * after a restart px_cons_replay() rebuilds the guard from those records.
 *
 * Invariants (asserted where cheap):
 *  - a validator contributes at most one prevote and one precommit per
 *    round to any tally (a conflicting second one is evidence, not a vote);
 *  - step only moves forward within a round; round only grows within a
 *    height; nothing is signed at a height below sign_floor;
 *  - memory is bounded: PX_CONS_ROUND_SLOTS rounds of n votes each, two
 *    proposals per round of at most max_value bytes, the future buffer, and
 *    the effect queue (PX_ELIMIT if a caller never polls).
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/codec.h"
#include "plexus/consensus.h"
#include "plexus/crypto.h"

#include "consensus/cons_internal.h"
#include "base/px_internal.h"

#define ROUND_SLOTS 16
#define PROPS_PER_ROUND 2
#define OWN_MAX 64
#define FX_MAX 65536
#define FUTURE_MAX (4 * PX_CONS_MAX_VALIDATORS + 16)

typedef struct {
  uint8_t present, has_value;
  uint8_t hash[PX_HASH_LEN];
  uint8_t sig[PX_SIG_LEN];
} vote_rec_t;

/* One validator's vote of one type in one round: r[0] the first, r[1] a
 * conflicting second one (an equivocation).  Both count toward the tally
 * of the value they name — Alg. 1 counts messages for id(v) from distinct
 * processes, whatever else a Byzantine process also sent — but the
 * validator counts once toward "any" quorums (L34, L47, L55). */
typedef struct {
  vote_rec_t r[2];
  uint8_t evidence_sent;
} vote_entry_t;

typedef struct {
  int used;
  int valid; /* -1 unknown, 0 invalid, 1 valid (cached valid(v)) */
  int32_t valid_round;
  uint8_t hash[PX_HASH_LEN]; /* id(v) */
  px_buf_t msg;              /* the encoded, signed proposal */
  size_t value_off, value_len;
} prop_entry_t;

typedef struct {
  int used;
  uint32_t round;
  uint32_t proposer;
  prop_entry_t props[PROPS_PER_ROUND];
  vote_entry_t *votes[2]; /* [0] prevotes, [1] precommits; vs.n entries */
  int l34_done, l36_done, l47_done; /* "for the first time" */
} round_slot_t;

typedef struct {
  uint32_t round;
  uint8_t step;
  uint8_t sb_hash[PX_HASH_LEN]; /* hash of the sign bytes */
  px_buf_t msg;
} own_entry_t;

struct px_cons {
  px_cons_config_t cfg;
  px_cons_valset_t vs;
  int self;

  /* Alg. 1 L1-L9 */
  uint64_t height;
  uint32_t round;
  px_cons_step_t step;
  int started, decided;
  int32_t locked_round, valid_round;
  uint8_t locked_hash[PX_HASH_LEN], valid_hash[PX_HASH_LEN];
  px_buf_t locked_value, valid_value;

  round_slot_t slots[ROUND_SLOTS];
  uint32_t votes_cap; /* entries allocated per slot vote array */

  /* sign guard: the last signed (height, round, step) and what was signed
   * at that height */
  int guard_set;
  uint64_t g_height;
  uint32_t g_round;
  uint8_t g_step;
  own_entry_t own[OWN_MAX];
  size_t n_own;
  uint64_t sign_floor;

  /* effects */
  px_queue_t fxq; /* of px_cons_fx_t, at most FX_MAX */
  int fx_overflow;

  /* early messages of height + 1 */
  px_buf_t future[FUTURE_MAX];
  size_t n_future, future_bytes;

  int replaying;
  px_cons_stats_t stats;
};

/* ---- small helpers ------------------------------------------------------- */

void px_cons_config_default(px_cons_config_t *cfg) {
  memset(cfg, 0, sizeof *cfg);
  memcpy(cfg->chain_id, "plexus", 7);
  cfg->propose_ms = 3000;
  cfg->propose_delta_ms = 500;
  cfg->prevote_ms = 1000;
  cfg->prevote_delta_ms = 500;
  cfg->precommit_ms = 1000;
  cfg->precommit_delta_ms = 500;
  cfg->resend_ms = 1000;
  cfg->max_value = PX_CONS_MAX_VALUE_DEFAULT;
}

const char *px_cons_step_name(int step) {
  switch (step) {
  case PX_CONS_STEP_PROPOSE:
    return "propose";
  case PX_CONS_STEP_PREVOTE:
    return "prevote";
  case PX_CONS_STEP_PRECOMMIT:
    return "precommit";
  case PX_CONS_STEP_RESEND:
    return "resend";
  default:
    return "unknown";
  }
}

static int quorum(const px_cons_t *c, uint64_t power) { /* 2f+1 */
  return power * 3 > c->vs.total * 2;
}
static int one_third(const px_cons_t *c, uint64_t power) { /* f+1 */
  return power * 3 > c->vs.total;
}

static int sig_ok(px_cons_t *c, const uint8_t *pk, const uint8_t *sb, size_t n,
                  const uint8_t *sig) {
  if (c->cfg.app.verify)
    return c->cfg.app.verify(c->cfg.app.ud, pk, sb, n, sig) == 0;
  return px_verify(pk, sb, n, sig) == 0;
}

/* ---- effects ------------------------------------------------------------- */

static px_cons_fx_t *fx_push(px_cons_t *c, px_cons_fx_kind_t kind) {
  px_cons_fx_t *f = px_queue_push(&c->fxq);
  if (!f) {
    c->fx_overflow = 1;
    return NULL;
  }
  f->kind = kind;
  px_buf_init(&f->data, 0);
  px_buf_init(&f->commit, 0);
  return f;
}

static void fx_bytes(px_cons_t *c, px_cons_fx_kind_t kind, const uint8_t *p,
                     size_t n) {
  px_cons_fx_t *f = fx_push(c, kind);
  if (!f) return;
  if (px_buf_append(&f->data, p, n) != 0) c->fx_overflow = 1;
}

static void fx_broadcast(px_cons_t *c, const px_buf_t *msg) {
  fx_bytes(c, PX_CONS_FX_BROADCAST, msg->data, msg->len);
}

static void fx_persist_msg(px_cons_t *c, const uint8_t *msg, size_t n) {
  if (c->replaying) return;
  px_cons_fx_t *f = fx_push(c, PX_CONS_FX_PERSIST);
  if (!f) return;
  f->wal_type = PX_CONS_WAL_MSG;
  if (px_buf_append(&f->data, msg, n) != 0) c->fx_overflow = 1;
}

static void fx_persist_hrs(px_cons_t *c, uint8_t type, uint64_t h, uint32_t r,
                           uint8_t step, const px_buf_t *msg, int sync) {
  px_cons_fx_t *f = fx_push(c, PX_CONS_FX_PERSIST);
  if (!f) return;
  f->wal_type = type;
  f->sync = sync;
  f->height = h;
  f->round = r;
  px_writer_t w;
  px_writer_init(&w, &f->data);
  px_writer_u64(&w, h);
  if (type != PX_CONS_WAL_HEIGHT) {
    px_writer_u32(&w, r);
    px_writer_u8(&w, step);
  }
  if (msg) px_writer_bytes(&w, msg->data, msg->len);
  if (px_writer_finish(&w) != 0) c->fx_overflow = 1;
}

static uint64_t timeout_len(const px_cons_t *c, px_cons_step_t s, uint32_t r) {
  switch (s) {
  case PX_CONS_STEP_PROPOSE:
    return c->cfg.propose_ms + (uint64_t)r * c->cfg.propose_delta_ms;
  case PX_CONS_STEP_PREVOTE:
    return c->cfg.prevote_ms + (uint64_t)r * c->cfg.prevote_delta_ms;
  case PX_CONS_STEP_PRECOMMIT:
    return c->cfg.precommit_ms + (uint64_t)r * c->cfg.precommit_delta_ms;
  default:
    return c->cfg.resend_ms;
  }
}

static void fx_timeout(px_cons_t *c, px_cons_step_t s, uint32_t r,
                       uint64_t now) {
  px_cons_fx_t *f = fx_push(c, PX_CONS_FX_SCHEDULE_TIMEOUT);
  if (!f) return;
  f->height = c->height;
  f->round = r;
  f->step = s;
  f->at = now + timeout_len(c, s, r);
}

int px_cons_poll(px_cons_t *c, px_cons_fx_t *fx) {
  if (!c || !fx) return 0;
  return px_queue_pop(&c->fxq, fx);
}

void px_cons_fx_release(px_cons_fx_t *fx) {
  if (!fx) return;
  px_buf_release(&fx->data);
  px_buf_release(&fx->commit);
}

/* ---- lifecycle ----------------------------------------------------------- */

static int printable(const char *s, size_t cap) {
  size_t n = strnlen(s, cap);
  if (n == 0 || n == cap) return 0;
  for (size_t i = 0; i < n; i++)
    if (s[i] < 0x20 || s[i] > 0x7e) return 0;
  return 1;
}

int px_cons_new(const px_cons_config_t *cfg, px_cons_t **out) {
  if (!cfg || !out) return PX_EINVAL;
  *out = NULL;
  if (!cfg->app.valid || !cfg->app.get_value || cfg->max_value == 0 ||
      cfg->max_value > UINT32_MAX ||
      !printable(cfg->chain_id, PX_CONS_CHAIN_ID_MAX))
    return PX_EINVAL;
  px_cons_t *c = px_calloc(1, sizeof *c);
  if (!c) return PX_ENOMEM;
  c->cfg = *cfg;
  px_queue_init(&c->fxq, sizeof(px_cons_fx_t), FX_MAX);
  c->self = -1;
  c->locked_round = c->valid_round = -1;
  px_buf_init(&c->locked_value, cfg->max_value);
  px_buf_init(&c->valid_value, cfg->max_value);
  for (size_t i = 0; i < ROUND_SLOTS; i++)
    for (size_t k = 0; k < PROPS_PER_ROUND; k++)
      px_buf_init(&c->slots[i].props[k].msg, cfg->max_value + 256);
  *out = c;
  return 0;
}

static void slot_clear(px_cons_t *c, round_slot_t *s) {
  for (size_t k = 0; k < PROPS_PER_ROUND; k++) {
    px_buf_t keep = s->props[k].msg;
    px_buf_reset(&keep);
    memset(&s->props[k], 0, sizeof s->props[k]);
    s->props[k].msg = keep;
  }
  for (int t = 0; t < 2; t++)
    if (s->votes[t])
      memset(s->votes[t], 0, c->votes_cap * sizeof(vote_entry_t));
  s->used = 0;
  s->l34_done = s->l36_done = s->l47_done = 0;
}

static void own_clear(px_cons_t *c) {
  for (size_t i = 0; i < c->n_own; i++)
    px_buf_release(&c->own[i].msg);
  c->n_own = 0;
}

static void future_clear(px_cons_t *c) {
  for (size_t i = 0; i < c->n_future; i++)
    px_buf_release(&c->future[i]);
  c->n_future = c->future_bytes = 0;
}

static void fx_release_item(void *fx) { px_cons_fx_release(fx); }

void px_cons_free(px_cons_t *c) {
  if (!c) return;
  for (size_t i = 0; i < ROUND_SLOTS; i++) {
    for (size_t k = 0; k < PROPS_PER_ROUND; k++)
      px_buf_release(&c->slots[i].props[k].msg);
    px_free(c->slots[i].votes[0]);
    px_free(c->slots[i].votes[1]);
  }
  px_buf_release(&c->locked_value);
  px_buf_release(&c->valid_value);
  own_clear(c);
  future_clear(c);
  px_queue_release(&c->fxq, fx_release_item);
  px_key_wipe(&c->cfg.key);
  px_free(c);
}

void px_cons_set_sign_floor(px_cons_t *c, uint64_t floor) {
  if (c && floor > c->sign_floor) c->sign_floor = floor;
}

void px_cons_get_state(const px_cons_t *c, px_cons_state_t *st) {
  memset(st, 0, sizeof *st);
  st->height = c->height;
  st->round = c->round;
  st->step = c->step;
  st->started = c->started;
  st->decided = c->decided;
  st->locked_round = c->locked_round;
  st->valid_round = c->valid_round;
  memcpy(st->locked_hash, c->locked_hash, PX_HASH_LEN);
  memcpy(st->valid_hash, c->valid_hash, PX_HASH_LEN);
  st->self = c->self;
  st->sign_floor = c->sign_floor;
  st->last_signed_step = -1;
  if (c->guard_set) {
    st->last_signed_height = c->g_height;
    st->last_signed_round = c->g_round;
    st->last_signed_step = c->g_step;
  }
}

void px_cons_get_stats(const px_cons_t *c, px_cons_stats_t *st) {
  *st = c->stats;
}

/* ---- round slots --------------------------------------------------------- */

static round_slot_t *slot_find(px_cons_t *c, uint32_t r) {
  for (size_t i = 0; i < ROUND_SLOTS; i++)
    if (c->slots[i].used && c->slots[i].round == r) return &c->slots[i];
  return NULL;
}

/* A slot for round r.  When all are taken, evict the round farthest in the
 * future (if r is nearer), else the oldest past round that is neither
 * lockedRound nor validRound; round_p itself is never evicted.  NULL when
 * r is not worth a slot. */
static round_slot_t *slot_get(px_cons_t *c, uint32_t r) {
  round_slot_t *s = slot_find(c, r);
  if (s) return s;
  for (size_t i = 0; i < ROUND_SLOTS && !s; i++)
    if (!c->slots[i].used) s = &c->slots[i];
  if (!s) {
    round_slot_t *far = NULL, *old = NULL;
    for (size_t i = 0; i < ROUND_SLOTS; i++) {
      round_slot_t *x = &c->slots[i];
      if (x->round > c->round && (!far || x->round > far->round)) far = x;
      if (x->round < c->round && (int32_t)x->round != c->locked_round &&
          (int32_t)x->round != c->valid_round &&
          (!old || x->round < old->round))
        old = x;
    }
    if (far && r < far->round)
      s = far;
    else if (old && r > old->round)
      s = old;
    if (!s) return NULL;
    slot_clear(c, s);
  }
  for (int t = 0; t < 2; t++) {
    if (!s->votes[t]) {
      s->votes[t] = px_calloc(c->votes_cap, sizeof(vote_entry_t));
      if (!s->votes[t]) return NULL;
    }
  }
  s->used = 1;
  s->round = r;
  s->proposer = px_cons_valset_proposer(&c->vs, r);
  return s;
}

/* Voting power of distinct validators that sent anything in the round
 * (L55's "f+1 <*, h_p, round, *, *>"). */
static uint64_t senders_power(const px_cons_t *c, const round_slot_t *s) {
  uint64_t p = 0;
  for (uint32_t i = 0; i < c->vs.n; i++) {
    int any = s->votes[0][i].r[0].present || s->votes[1][i].r[0].present ||
              (i == s->proposer && s->props[0].used);
    if (any) p += c->vs.v[i].power;
  }
  return p;
}

enum { ANY = 0, NIL = 1, VALUE = 2 };

/* Power of the round's prevotes (t 0) or precommits (t 1) for: anything,
 * nil, or the value with the given id. */
static uint64_t tally(const px_cons_t *c, const round_slot_t *s, int t,
                      int what, const uint8_t *hash) {
  uint64_t p = 0;
  const vote_entry_t *v = s->votes[t];
  for (uint32_t i = 0; i < c->vs.n; i++) {
    int counts = 0;
    for (int k = 0; k < 2 && !counts; k++) {
      const vote_rec_t *x = &v[i].r[k];
      if (!x->present) continue;
      if (what == ANY)
        counts = 1;
      else if (what == NIL)
        counts = !x->has_value;
      else
        counts = x->has_value && memcmp(x->hash, hash, PX_HASH_LEN) == 0;
    }
    if (counts) p += c->vs.v[i].power;
  }
  return p;
}

static const uint8_t *prop_value(const prop_entry_t *e) {
  return e->msg.data + e->value_off;
}

/* valid(v), asked once per proposal (the answer is deterministic). */
static int prop_valid(px_cons_t *c, prop_entry_t *e) {
  if (e->valid < 0) {
    e->valid = c->cfg.app.valid(c->cfg.app.ud, c->height, prop_value(e),
                                e->value_len) == 1;
    if (!e->valid) c->stats.invalid_values++;
  }
  return e->valid;
}

/* ---- the sign guard ------------------------------------------------------ */

static int hrs_cmp(uint32_t r1, uint8_t s1, uint32_t r2, uint8_t s2) {
  if (r1 != r2) return r1 < r2 ? -1 : 1;
  return s1 == s2 ? 0 : (s1 < s2 ? -1 : 1);
}

/* 0: sign afresh; 1: already signed exactly this, *reuse is the message;
 * PX_ESTATE: refuse. */
static int guard_check(px_cons_t *c, uint64_t h, uint32_t r, uint8_t step,
                       const uint8_t sb_hash[PX_HASH_LEN],
                       const px_buf_t **reuse) {
  *reuse = NULL;
  if (h < c->sign_floor) return PX_ESTATE;
  if (!c->guard_set || h > c->g_height) return 0;
  if (h < c->g_height) return PX_ESTATE;
  for (size_t i = 0; i < c->n_own; i++) {
    const own_entry_t *o = &c->own[i];
    if (o->round == r && o->step == step) {
      if (memcmp(o->sb_hash, sb_hash, PX_HASH_LEN) != 0) return PX_ESTATE;
      *reuse = &o->msg;
      return 1;
    }
  }
  if (hrs_cmp(r, step, c->g_round, c->g_step) <= 0) return PX_ESTATE;
  return 0;
}

static void guard_record(px_cons_t *c, uint64_t h, uint32_t r, uint8_t step,
                         const uint8_t sb_hash[PX_HASH_LEN], const uint8_t *msg,
                         size_t n) {
  if (c->guard_set && h < c->g_height) return;
  if (!c->guard_set || h > c->g_height) {
    own_clear(c);
    c->guard_set = 1;
    c->g_height = h;
    c->g_round = r;
    c->g_step = step;
  } else if (hrs_cmp(r, step, c->g_round, c->g_step) > 0) {
    c->g_round = r;
    c->g_step = step;
  }
  for (size_t i = 0; i < c->n_own; i++)
    if (c->own[i].round == r && c->own[i].step == step) return;
  if (c->n_own == OWN_MAX) {
    /* Forget the lowest entry; everything at or below the maximum stays
     * refused by the ordering rule, so this loses no protection. */
    size_t lo = 0;
    for (size_t i = 1; i < c->n_own; i++)
      if (hrs_cmp(c->own[i].round, c->own[i].step, c->own[lo].round,
                  c->own[lo].step) < 0)
        lo = i;
    px_buf_release(&c->own[lo].msg);
    c->own[lo] = c->own[--c->n_own];
  }
  own_entry_t *o = &c->own[c->n_own];
  memset(o, 0, sizeof *o);
  o->round = r;
  o->step = step;
  memcpy(o->sb_hash, sb_hash, PX_HASH_LEN);
  px_buf_init(&o->msg, 0);
  if (px_buf_append(&o->msg, msg, n) == 0)
    c->n_own++;
  else
    px_buf_release(&o->msg);
}

/* ---- storing messages ---------------------------------------------------- */

static void emit_evidence(px_cons_t *c, const px_cons_vote_t *v,
                          vote_entry_t *e) {
  if (e->evidence_sent) return;
  e->evidence_sent = 1;
  px_cons_evidence_t ev;
  px_cons_vote_t old = *v;
  old.has_value = e->r[0].has_value;
  memcpy(old.hash, e->r[0].hash, PX_HASH_LEN);
  memcpy(old.sig, e->r[0].sig, PX_SIG_LEN);
  int cmp = old.has_value != v->has_value
                ? (old.has_value < v->has_value ? -1 : 1)
                : memcmp(old.hash, v->hash, PX_HASH_LEN);
  ev.a = cmp < 0 ? old : *v;
  ev.b = cmp < 0 ? *v : old;
  px_cons_fx_t *f = fx_push(c, PX_CONS_FX_EVIDENCE);
  if (!f) return;
  f->height = v->height;
  f->round = v->round;
  if (px_cons_evidence_encode(&ev, &f->data) != 0) c->fx_overflow = 1;
  c->stats.evidence++;
}

static int rec_same(const vote_rec_t *x, const px_cons_vote_t *v) {
  return x->present && x->has_value == v->has_value &&
         memcmp(x->hash, v->hash, PX_HASH_LEN) == 0;
}

/* Record a verified vote.  PX_EDUP for a repeat; a second, conflicting
 * vote is kept (and reported as evidence, once); a third is PX_EPROTO;
 * PX_ELIMIT when no slot. */
static int store_vote(px_cons_t *c, const px_cons_vote_t *v) {
  round_slot_t *s = slot_get(c, v->round);
  if (!s) return PX_ELIMIT;
  vote_entry_t *e =
      &s->votes[v->type == PX_CONS_MSG_PRECOMMIT ? 1 : 0][v->validator];
  if (rec_same(&e->r[0], v) || rec_same(&e->r[1], v)) return PX_EDUP;
  int k = e->r[0].present ? 1 : 0;
  if (k == 1) {
    emit_evidence(c, v, e);
    if (e->r[1].present) return PX_EPROTO;
  }
  vote_rec_t *x = &e->r[k];
  x->present = 1;
  x->has_value = v->has_value;
  memcpy(x->hash, v->hash, PX_HASH_LEN);
  memcpy(x->sig, v->sig, PX_SIG_LEN);
  return 0;
}

/* Record a verified proposal (msg is its encoding). */
static int store_proposal(px_cons_t *c, round_slot_t *s,
                          const px_cons_proposal_t *p,
                          const uint8_t hash[PX_HASH_LEN], const uint8_t *msg,
                          size_t n) {
  (void)c;
  for (size_t k = 0; k < PROPS_PER_ROUND; k++) {
    prop_entry_t *e = &s->props[k];
    if (e->used && memcmp(e->hash, hash, PX_HASH_LEN) == 0 &&
        e->valid_round == p->valid_round)
      return PX_EDUP;
  }
  for (size_t k = 0; k < PROPS_PER_ROUND; k++) {
    prop_entry_t *e = &s->props[k];
    if (e->used) continue;
    px_buf_reset(&e->msg);
    if (px_buf_append(&e->msg, msg, n) != 0) return PX_ENOMEM;
    e->used = 1;
    e->valid = -1;
    e->valid_round = p->valid_round;
    memcpy(e->hash, hash, PX_HASH_LEN);
    e->value_len = p->value_len;
    e->value_off = (size_t)(p->value - msg);
    return 0;
  }
  return PX_ELIMIT; /* a third proposal for one round: ignore */
}

/* ---- signing our own messages -------------------------------------------- */

static void check_rules(px_cons_t *c, uint64_t now);

/* Alg. 1 "broadcast <PREVOTE/PRECOMMIT, h_p, round_p, id or nil>". */
static void cast_vote(px_cons_t *c, px_cons_msg_type_t type,
                      const uint8_t *hash) {
  if (c->self < 0 || !c->cfg.has_key) return;
  px_cons_vote_t v;
  memset(&v, 0, sizeof v);
  v.type = type;
  v.height = c->height;
  v.round = c->round;
  v.has_value = hash != NULL;
  if (hash) memcpy(v.hash, hash, PX_HASH_LEN);
  v.validator = (uint16_t)c->self;
  uint8_t sb[PX_CONS_SB_MAX], sbh[PX_HASH_LEN];
  size_t sbn = px_cons_vote_sb(c->cfg.chain_id, &v, sb);
  px_hash(sbh, sb, sbn);
  uint8_t step = type == PX_CONS_MSG_PREVOTE ? PX_CONS_STEP_PREVOTE
                                             : PX_CONS_STEP_PRECOMMIT;
  const px_buf_t *reuse;
  int g = guard_check(c, v.height, v.round, step, sbh, &reuse);
  if (g < 0) {
    c->stats.sign_refused++;
    return;
  }
  px_buf_t msg;
  px_buf_init(&msg, 0);
  if (g == 1) {
    if (px_buf_append(&msg, reuse->data, reuse->len) != 0 ||
        px_cons_vote_decode(msg.data, msg.len, &v) != 0) {
      px_buf_release(&msg);
      return;
    }
  } else {
    px_sign(&c->cfg.key, sb, sbn, v.sig);
    if (px_cons_vote_encode(&v, &msg) != 0) {
      px_buf_release(&msg);
      return;
    }
    guard_record(c, v.height, v.round, step, sbh, msg.data, msg.len);
    fx_persist_hrs(c, PX_CONS_WAL_OWN, v.height, v.round, step, &msg, 1);
    c->stats.signed_msgs++;
  }
  (void)store_vote(c, &v); /* we receive our own broadcast */
  fx_broadcast(c, &msg);
  px_buf_release(&msg);
}

/* Alg. 1 L19 "broadcast <PROPOSAL, h_p, round_p, proposal, validRound_p>". */
static void cast_proposal(px_cons_t *c, const uint8_t *value, size_t len,
                          int32_t vr) {
  if (c->self < 0 || !c->cfg.has_key) return;
  px_cons_proposal_t p;
  memset(&p, 0, sizeof p);
  p.height = c->height;
  p.round = c->round;
  p.valid_round = vr;
  p.proposer = (uint16_t)c->self;
  p.value = value;
  p.value_len = len;
  uint8_t vh[PX_HASH_LEN], sb[PX_CONS_SB_MAX], sbh[PX_HASH_LEN];
  px_hash(vh, value, len);
  size_t sbn = px_cons_proposal_sb(c->cfg.chain_id, &p, vh, sb);
  px_hash(sbh, sb, sbn);
  const px_buf_t *reuse;
  int g = guard_check(c, p.height, p.round, PX_CONS_STEP_PROPOSE, sbh, &reuse);
  if (g < 0) {
    c->stats.sign_refused++;
    return;
  }
  px_buf_t msg;
  px_buf_init(&msg, 0);
  if (g == 1) {
    if (px_buf_append(&msg, reuse->data, reuse->len) != 0) goto out;
  } else {
    px_sign(&c->cfg.key, sb, sbn, p.sig);
    if (px_cons_proposal_encode(&p, &msg) != 0) goto out;
    guard_record(c, p.height, p.round, PX_CONS_STEP_PROPOSE, sbh, msg.data,
                 msg.len);
    fx_persist_hrs(c, PX_CONS_WAL_OWN, p.height, p.round, PX_CONS_STEP_PROPOSE,
                   &msg, 1);
    c->stats.signed_msgs++;
  }
  px_cons_proposal_t q;
  round_slot_t *s = slot_get(c, c->round);
  if (s &&
      px_cons_proposal_decode(msg.data, msg.len, c->cfg.max_value, &q) == 0)
    (void)store_proposal(c, s, &q, vh, msg.data, msg.len);
  fx_broadcast(c, &msg);
out:
  px_buf_release(&msg);
}

/* The proposal we already signed for (h_p, r), if any (after a restart the
 * proposer re-sends it instead of asking for a new value). */
static const px_buf_t *own_proposal(const px_cons_t *c, uint32_t r) {
  if (!c->guard_set || c->g_height != c->height) return NULL;
  for (size_t i = 0; i < c->n_own; i++)
    if (c->own[i].round == r && c->own[i].step == PX_CONS_STEP_PROPOSE)
      return &c->own[i].msg;
  return NULL;
}

/* ---- Alg. 1 -------------------------------------------------------------- */

static void relay_pol(px_cons_t *c);

/* Alg. 1 L11-L21 StartRound(round). */
static void start_round(px_cons_t *c, uint32_t r, uint64_t now) {
  c->round = r;                   /* L12 */
  c->step = PX_CONS_STEP_PROPOSE; /* L13 */
  (void)slot_get(c, r);
  int proposer =
      c->self >= 0 && px_cons_valset_proposer(&c->vs, r) == (uint32_t)c->self;
  if (proposer && c->cfg.has_key) { /* L14 */
    const px_buf_t *prev = own_proposal(c, r);
    if (prev) { /* already signed before a restart: the same again */
      px_cons_proposal_t q;
      round_slot_t *s = slot_get(c, r);
      if (s && px_cons_proposal_decode(prev->data, prev->len, c->cfg.max_value,
                                       &q) == 0) {
        uint8_t vh[PX_HASH_LEN];
        px_hash(vh, q.value, q.value_len);
        (void)store_proposal(c, s, &q, vh, prev->data, prev->len);
      }
      fx_broadcast(c, prev);
    } else if (c->valid_round >= 0) { /* L15-L16 */
      cast_proposal(c, c->valid_value.data, c->valid_value.len, c->valid_round);
      relay_pol(c);
    } else { /* L18 proposal <- getValue() */
      px_buf_t v;
      px_buf_init(&v, c->cfg.max_value);
      if (c->cfg.app.get_value(c->cfg.app.ud, c->height, r, &v) == 0)
        cast_proposal(c, v.data, v.len, -1); /* L19 */
      px_buf_release(&v);
    }
  }
  /* L21.  Alg. 1 arms timeoutPropose only at non-proposers; we arm it at
   * the proposer too, so one whose get_value failed or whose sign guard
   * refused still moves on.  It is a no-op once step_p != propose. */
  fx_timeout(c, PX_CONS_STEP_PROPOSE, r, now);
}

static void set_value(px_buf_t *dst, const uint8_t *p, size_t n) {
  px_buf_reset(dst);
  (void)px_buf_append(dst, p, n); /* n <= max_value == dst->max */
}

/* Alg. 1 L49-L54 decide.  The commit is every precommit for id(v) in r. */
static void decide(px_cons_t *c, const round_slot_t *s, const uint8_t *value,
                   size_t len, const uint8_t *hash) {
  px_cons_commit_t cm;
  memset(&cm, 0, sizeof cm);
  cm.height = c->height;
  cm.round = s->round;
  memcpy(cm.hash, hash, PX_HASH_LEN);
  for (uint32_t i = 0; i < c->vs.n; i++) {
    for (int k = 0; k < 2; k++) {
      const vote_rec_t *x = &s->votes[1][i].r[k];
      if (x->present && x->has_value &&
          memcmp(x->hash, hash, PX_HASH_LEN) == 0) {
        cm.sigs[cm.n].validator = (uint16_t)i;
        memcpy(cm.sigs[cm.n].sig, x->sig, PX_SIG_LEN);
        cm.n++;
        break;
      }
    }
  }
  c->decided = 1; /* L51 decision_p[h_p] = v */
  c->stats.decisions++;
  px_cons_fx_t *f = fx_push(c, PX_CONS_FX_DECIDE);
  if (!f) return;
  f->height = c->height;
  f->round = s->round;
  if (px_buf_append(&f->data, value, len) != 0 ||
      px_cons_commit_encode(&cm, &f->commit) != 0)
    c->fx_overflow = 1;
  /* L52-L54 (next height, reset, StartRound(0)) happen when the runtime
   * calls px_cons_start(h + 1) with that height's validator set. */
}

/* Evaluate the upon-rules until none fires. */
static void check_rules(px_cons_t *c, uint64_t now) {
  for (int progress = 1; progress && c->started && !c->decided;) {
    progress = 0;

    /* L49: <PROPOSAL, h_p, r, v, *> from proposer(h_p, r) AND 2f+1
     * <PRECOMMIT, h_p, r, id(v)> while decision_p[h_p] = nil: if valid(v)
     * decide. */
    for (size_t i = 0; i < ROUND_SLOTS; i++) {
      round_slot_t *s = &c->slots[i];
      if (!s->used) continue;
      for (size_t k = 0; k < PROPS_PER_ROUND; k++) {
        prop_entry_t *e = &s->props[k];
        if (!e->used || !quorum(c, tally(c, s, 1, VALUE, e->hash))) continue;
        if (prop_valid(c, e)) { /* L50 */
          decide(c, s, prop_value(e), e->value_len, e->hash);
          return;
        }
      }
    }

    /* L55-L56: f+1 <*, h_p, round, *, *> with round > round_p:
     * StartRound(round).  The highest such round is taken. */
    uint32_t skip = 0;
    int found = 0;
    for (size_t i = 0; i < ROUND_SLOTS; i++) {
      round_slot_t *s = &c->slots[i];
      if (s->used && s->round > c->round && (!found || s->round > skip) &&
          one_third(c, senders_power(c, s))) {
        skip = s->round;
        found = 1;
      }
    }
    if (found) {
      c->stats.rounds_skipped++;
      start_round(c, skip, now);
      progress = 1;
      continue;
    }

    round_slot_t *cur = slot_find(c, c->round);
    if (!cur) break;

    if (c->step == PX_CONS_STEP_PROPOSE) {
      for (size_t k = 0; k < PROPS_PER_ROUND && !progress; k++) {
        prop_entry_t *e = &cur->props[k];
        if (!e->used) continue;
        if (e->valid_round == -1) {
          /* L22-L27: <PROPOSAL, h_p, round_p, v, -1> while step_p =
           * propose: prevote id(v) if valid(v) and (lockedRound_p = -1 or
           * lockedValue_p = v), else nil. */
          int ok = prop_valid(c, e) &&
                   (c->locked_round == -1 ||
                    memcmp(c->locked_hash, e->hash, PX_HASH_LEN) == 0);
          cast_vote(c, PX_CONS_MSG_PREVOTE, ok ? e->hash : NULL); /* L24/26 */
          c->step = PX_CONS_STEP_PREVOTE;                         /* L27 */
          progress = 1;
        } else if (e->valid_round < (int32_t)c->round) {
          /* L28-L33: <PROPOSAL, h_p, round_p, v, vr> AND 2f+1 <PREVOTE,
           * h_p, vr, id(v)> while step_p = propose and 0 <= vr < round_p:
           * prevote id(v) if valid(v) and (lockedRound_p <= vr or
           * lockedValue_p = v), else nil. */
          round_slot_t *vs = slot_find(c, (uint32_t)e->valid_round);
          if (!vs || !quorum(c, tally(c, vs, 0, VALUE, e->hash))) continue;
          int ok = prop_valid(c, e) &&
                   (c->locked_round <= e->valid_round ||
                    memcmp(c->locked_hash, e->hash, PX_HASH_LEN) == 0);
          cast_vote(c, PX_CONS_MSG_PREVOTE, ok ? e->hash : NULL); /* L30/32 */
          c->step = PX_CONS_STEP_PREVOTE;                         /* L33 */
          progress = 1;
        }
      }
      if (progress) continue;
    }

    /* L34-L35: 2f+1 <PREVOTE, h_p, round_p, *> while step_p = prevote for
     * the first time: schedule OnTimeoutPrevote. */
    if (c->step == PX_CONS_STEP_PREVOTE && !cur->l34_done &&
        quorum(c, tally(c, cur, 0, ANY, NULL))) {
      cur->l34_done = 1;
      fx_timeout(c, PX_CONS_STEP_PREVOTE, c->round, now);
    }

    /* L36-L43: <PROPOSAL, h_p, round_p, v, *> AND 2f+1 <PREVOTE, h_p,
     * round_p, id(v)> while valid(v) and step_p >= prevote for the first
     * time. */
    if (c->step >= PX_CONS_STEP_PREVOTE && !cur->l36_done) {
      for (size_t k = 0; k < PROPS_PER_ROUND; k++) {
        prop_entry_t *e = &cur->props[k];
        if (!e->used || !quorum(c, tally(c, cur, 0, VALUE, e->hash)) ||
            !prop_valid(c, e))
          continue;
        cur->l36_done = 1;
        if (c->step == PX_CONS_STEP_PREVOTE) {                      /* L37 */
          set_value(&c->locked_value, prop_value(e), e->value_len); /* L38 */
          memcpy(c->locked_hash, e->hash, PX_HASH_LEN);
          c->locked_round = (int32_t)c->round;          /* L39 */
          cast_vote(c, PX_CONS_MSG_PRECOMMIT, e->hash); /* L40 */
          c->step = PX_CONS_STEP_PRECOMMIT;             /* L41 */
        }
        set_value(&c->valid_value, prop_value(e), e->value_len); /* L42 */
        memcpy(c->valid_hash, e->hash, PX_HASH_LEN);
        c->valid_round = (int32_t)c->round; /* L43 */
        progress = 1;
        break;
      }
      if (progress) continue;
    }

    /* L44-L46: 2f+1 <PREVOTE, h_p, round_p, nil> while step_p = prevote:
     * precommit nil. */
    if (c->step == PX_CONS_STEP_PREVOTE &&
        quorum(c, tally(c, cur, 0, NIL, NULL))) {
      cast_vote(c, PX_CONS_MSG_PRECOMMIT, NULL); /* L45 */
      c->step = PX_CONS_STEP_PRECOMMIT;          /* L46 */
      progress = 1;
      continue;
    }

    /* L47-L48: 2f+1 <PRECOMMIT, h_p, round_p, *> for the first time:
     * schedule OnTimeoutPrecommit. */
    if (!cur->l47_done && quorum(c, tally(c, cur, 1, ANY, NULL))) {
      cur->l47_done = 1;
      fx_timeout(c, PX_CONS_STEP_PRECOMMIT, c->round, now);
    }
  }
}

/* ---- events -------------------------------------------------------------- */

static int handle(px_cons_t *c, const uint8_t *msg, size_t len, uint64_t now,
                  int from_future);

int px_cons_start(px_cons_t *c, uint64_t height, const px_cons_valset_t *vs,
                  uint64_t now) {
  if (!c || !vs || vs->n == 0 || vs->n > PX_CONS_MAX_VALIDATORS ||
      vs->total == 0 || vs->total > PX_CONS_MAX_POWER)
    return PX_EINVAL;
  if (c->started && height <= c->height) return PX_ESTATE;
  /* Reset per-height state (Alg. 1 L53: locks, valid value, message log). */
  if (vs->n > c->votes_cap) {
    for (size_t i = 0; i < ROUND_SLOTS; i++) {
      px_free(c->slots[i].votes[0]);
      px_free(c->slots[i].votes[1]);
      c->slots[i].votes[0] = c->slots[i].votes[1] = NULL;
    }
    c->votes_cap = vs->n;
  }
  for (size_t i = 0; i < ROUND_SLOTS; i++) {
    c->slots[i].used = 1;
    slot_clear(c, &c->slots[i]);
  }
  c->vs = *vs;
  c->self = c->cfg.has_key ? px_cons_valset_find(vs, c->cfg.key.pk) : -1;
  c->height = height;
  c->started = 1;
  c->decided = 0;
  c->locked_round = c->valid_round = -1;
  memset(c->locked_hash, 0, PX_HASH_LEN);
  memset(c->valid_hash, 0, PX_HASH_LEN);
  px_buf_reset(&c->locked_value);
  px_buf_reset(&c->valid_value);
  if (!c->replaying)
    fx_persist_hrs(c, PX_CONS_WAL_HEIGHT, height, 0, 0, NULL, 0);
  if (c->cfg.resend_ms) fx_timeout(c, PX_CONS_STEP_RESEND, 0, now);
  start_round(c, 0, now); /* L10 / L54 StartRound(0) */
  check_rules(c, now);

  /* Messages of this height that came early. */
  size_t nf = c->n_future;
  c->n_future = 0;
  c->future_bytes = 0;
  for (size_t i = 0; i < nf; i++) {
    px_buf_t b = c->future[i];
    uint64_t fh;
    uint32_t fr;
    px_cons_msg_type_t ft;
    if (px_cons_msg_peek(b.data, b.len, &ft, &fh, &fr) == 0 && fh == height)
      (void)handle(c, b.data, b.len, now, 1);
    px_buf_release(&b);
  }
  return c->fx_overflow ? PX_ELIMIT : 0;
}

static int buffer_future(px_cons_t *c, const uint8_t *msg, size_t len) {
  if (c->n_future == FUTURE_MAX ||
      c->future_bytes + len > 2 * c->cfg.max_value + (1u << 20))
    return PX_ELIMIT;
  px_buf_t *b = &c->future[c->n_future];
  px_buf_init(b, 0);
  if (px_buf_append(b, msg, len) != 0) {
    px_buf_release(b);
    return PX_ENOMEM;
  }
  c->n_future++;
  c->future_bytes += len;
  return 0;
}

static int on_proposal(px_cons_t *c, const uint8_t *msg, size_t len,
                       uint64_t now) {
  px_cons_proposal_t p;
  int rc = px_cons_proposal_decode(msg, len, c->cfg.max_value, &p);
  if (rc) return rc;
  if (p.proposer >= c->vs.n) {
    c->stats.not_member++;
    return PX_EPROTO;
  }
  uint8_t vh[PX_HASH_LEN], sb[PX_CONS_SB_MAX];
  px_hash(vh, p.value, p.value_len);
  size_t sbn = px_cons_proposal_sb(c->cfg.chain_id, &p, vh, sb);
  /* A duplicate is cheap to spot before verifying. */
  round_slot_t *s = slot_find(c, p.round);
  if (s)
    for (size_t k = 0; k < PROPS_PER_ROUND; k++)
      if (s->props[k].used && s->props[k].msg.len == len &&
          memcmp(s->props[k].msg.data, msg, len) == 0) {
        c->stats.dups++;
        return PX_EDUP;
      }
  if (!sig_ok(c, c->vs.v[p.proposer].pk, sb, sbn, p.sig)) {
    c->stats.bad_sig++;
    return PX_EBADSIG;
  }
  /* "from proposer(h_p, r)" */
  s = slot_get(c, p.round);
  if (!s) return PX_ELIMIT;
  if (s->proposer != p.proposer) {
    c->stats.not_member++;
    return PX_EPROTO;
  }
  rc = store_proposal(c, s, &p, vh, msg, len);
  if (rc == PX_EDUP) c->stats.dups++;
  if (rc) return rc;
  fx_persist_msg(c, msg, len);
  check_rules(c, now);
  return 0;
}

static int on_vote(px_cons_t *c, const uint8_t *msg, size_t len, uint64_t now) {
  px_cons_vote_t v;
  int rc = px_cons_vote_decode(msg, len, &v);
  if (rc) return rc;
  if (v.validator >= c->vs.n) {
    c->stats.not_member++;
    return PX_EPROTO;
  }
  round_slot_t *s = slot_find(c, v.round);
  if (s) {
    const vote_entry_t *e =
        &s->votes[v.type == PX_CONS_MSG_PRECOMMIT ? 1 : 0][v.validator];
    for (int k = 0; k < 2; k++)
      if (rec_same(&e->r[k], &v) &&
          memcmp(e->r[k].sig, v.sig, PX_SIG_LEN) == 0) {
        c->stats.dups++;
        return PX_EDUP;
      }
  }
  uint8_t sb[PX_CONS_SB_MAX];
  size_t sbn = px_cons_vote_sb(c->cfg.chain_id, &v, sb);
  if (!sig_ok(c, c->vs.v[v.validator].pk, sb, sbn, v.sig)) {
    c->stats.bad_sig++;
    return PX_EBADSIG;
  }
  rc = store_vote(c, &v);
  if (rc == PX_EDUP) c->stats.dups++;
  if (rc) return rc;
  fx_persist_msg(c, msg, len);
  check_rules(c, now);
  return 0;
}

/* Catch-up: the network decided this height without us. */
static int on_decision(px_cons_t *c, const uint8_t *msg, size_t len) {
  const uint8_t *value;
  size_t vlen;
  px_cons_commit_t cm;
  int rc =
      px_cons_decision_decode(msg, len, c->cfg.max_value, &value, &vlen, &cm);
  if (rc) return rc;
  if (cm.height != c->height) return PX_ESTATE;
  uint64_t power = 0;
  for (size_t i = 0; i < cm.n; i++) {
    uint16_t idx = cm.sigs[i].validator;
    if (idx >= c->vs.n) return PX_EPROTO;
    px_cons_vote_t v;
    px_cons_commit_vote(&cm, i, &v);
    uint8_t sb[PX_CONS_SB_MAX];
    size_t sbn = px_cons_vote_sb(c->cfg.chain_id, &v, sb);
    if (!sig_ok(c, c->vs.v[idx].pk, sb, sbn, v.sig)) {
      c->stats.bad_sig++;
      return PX_EBADSIG;
    }
    power += c->vs.v[idx].power;
  }
  if (!quorum(c, power)) return PX_EAUTH;
  if (c->cfg.app.valid(c->cfg.app.ud, c->height, value, vlen) != 1) {
    c->stats.invalid_values++;
    return PX_EPROTO; /* 2f+1 signed an invalid value: not our problem */
  }
  /* Store the precommits so decide() builds the same certificate. */
  round_slot_t *s = slot_get(c, cm.round);
  if (!s) return PX_ELIMIT;
  for (size_t i = 0; i < cm.n; i++) {
    px_cons_vote_t v;
    px_cons_commit_vote(&cm, i, &v);
    (void)store_vote(c, &v);
  }
  fx_persist_msg(c, msg, len);
  decide(c, s, value, vlen, cm.hash);
  return 0;
}

static int handle(px_cons_t *c, const uint8_t *msg, size_t len, uint64_t now,
                  int from_future) {
  px_cons_msg_type_t type;
  uint64_t h;
  uint32_t r;
  int rc = px_cons_msg_peek(msg, len, &type, &h, &r);
  if (rc) return rc;
  c->stats.msgs_in++;
  if (!c->started) return PX_ESTATE;
  if (h != c->height) {
    if (h == c->height + 1 && !from_future &&
        (type == PX_CONS_MSG_PROPOSAL || type == PX_CONS_MSG_PREVOTE ||
         type == PX_CONS_MSG_PRECOMMIT))
      return buffer_future(c, msg, len);
    c->stats.stale++;
    return PX_ESTATE;
  }
  if (c->decided) {
    c->stats.stale++;
    return PX_ESTATE;
  }
  switch (type) {
  case PX_CONS_MSG_PROPOSAL:
    rc = on_proposal(c, msg, len, now);
    break;
  case PX_CONS_MSG_PREVOTE:
  case PX_CONS_MSG_PRECOMMIT:
    rc = on_vote(c, msg, len, now);
    break;
  case PX_CONS_MSG_DECISION:
    rc = on_decision(c, msg, len);
    break;
  default:
    rc = PX_EPROTO; /* COMMIT and EVIDENCE are not consensus events */
  }
  if (!rc && c->fx_overflow) rc = PX_ELIMIT;
  return rc;
}

int px_cons_on_message(px_cons_t *c, const uint8_t *msg, size_t len,
                       uint64_t now) {
  if (!c || (!msg && len)) return PX_EINVAL;
  return handle(c, msg, len, now, 0);
}

/* Re-broadcast a stored vote (ours or a relayed one: it is signed). */
static void send_stored_vote(px_cons_t *c, const round_slot_t *s, int t,
                             uint32_t idx, int k) {
  const vote_rec_t *e = &s->votes[t][idx].r[k];
  if (!e->present) return;
  px_cons_vote_t v;
  memset(&v, 0, sizeof v);
  v.type = t ? PX_CONS_MSG_PRECOMMIT : PX_CONS_MSG_PREVOTE;
  v.height = c->height;
  v.round = s->round;
  v.has_value = e->has_value;
  memcpy(v.hash, e->hash, PX_HASH_LEN);
  v.validator = (uint16_t)idx;
  memcpy(v.sig, e->sig, PX_SIG_LEN);
  px_buf_t b;
  px_buf_init(&b, 0);
  if (px_cons_vote_encode(&v, &b) == 0) fx_broadcast(c, &b);
  px_buf_release(&b);
}

/* Relay the proof of lock: the 2f+1 prevotes for validValue in validRound.
 * A proposal <PROPOSAL, h, r, v, vr> is only accepted (L28) by those who
 * hold these prevotes; Alg. 1 assumes gossip delivers them eventually, and
 * this is that gossip (CometBFT sends the same "POL" prevotes). */
static void relay_pol(px_cons_t *c) {
  if (c->valid_round < 0) return;
  round_slot_t *s = slot_find(c, (uint32_t)c->valid_round);
  if (!s) return;
  for (uint32_t i = 0; i < c->vs.n; i++)
    for (int k = 0; k < 2; k++) {
      const vote_rec_t *e = &s->votes[0][i].r[k];
      if (e->present && e->has_value &&
          memcmp(e->hash, c->valid_hash, PX_HASH_LEN) == 0)
        send_stored_vote(c, s, 0, i, k);
    }
}

/* RESEND: the round's proposal, the proof of our validValue, and our own
 * votes of this round and the two before it.  The older rounds matter:
 * a process that moved on (timeoutPrecommit, L65) after its precommit was
 * lost leaves the others one precommit short of the 2f+1 that would move
 * them on too (L47), while it alone is not f+1 for L55. */
static void resend(px_cons_t *c) {
  round_slot_t *s = slot_find(c, c->round);
  if (s && s->props[0].used) fx_broadcast(c, &s->props[0].msg);
  relay_pol(c);
  for (uint32_t back = 0; back < 3 && back <= c->round; back++) {
    round_slot_t *o = slot_find(c, c->round - back);
    if (!o) continue;
    if (back > 0) {
      /* Everyone's precommits of the rounds we left: they are what a
       * process still in that round needs to time out of it (L47, L65)
       * when the precommits that moved us on reached us but not it (and
       * their senders, Byzantine or moved on, will not send them again):
       * Alg. 1's gossip assumption, made concrete. */
      for (uint32_t i = 0; i < c->vs.n; i++)
        for (int k = 0; k < 2; k++)
          send_stored_vote(c, o, 1, i, k);
    } else if (c->self >= 0) {
      send_stored_vote(c, o, 1, (uint32_t)c->self, 0);
    }
    if (c->self >= 0) send_stored_vote(c, o, 0, (uint32_t)c->self, 0);
  }
}

int px_cons_on_timeout(px_cons_t *c, uint64_t height, uint32_t round,
                       px_cons_step_t step, uint64_t now) {
  if (!c) return PX_EINVAL;
  if (!c->started || height != c->height || c->decided) return 0;
  if (step == PX_CONS_STEP_RESEND) {
    resend(c);
    fx_timeout(c, PX_CONS_STEP_RESEND, c->round, now);
    return c->fx_overflow ? PX_ELIMIT : 0;
  }
  if (round != c->round) return 0;
  int acted = 0;
  if (step == PX_CONS_STEP_PROPOSE && c->step == PX_CONS_STEP_PROPOSE) {
    /* L57-L60 OnTimeoutPropose: prevote nil. */
    if (!c->replaying)
      fx_persist_hrs(c, PX_CONS_WAL_TIMEOUT, height, round, step, NULL, 0);
    cast_vote(c, PX_CONS_MSG_PREVOTE, NULL);
    c->step = PX_CONS_STEP_PREVOTE;
    acted = 1;
  } else if (step == PX_CONS_STEP_PREVOTE && c->step == PX_CONS_STEP_PREVOTE) {
    /* L61-L64 OnTimeoutPrevote: precommit nil. */
    if (!c->replaying)
      fx_persist_hrs(c, PX_CONS_WAL_TIMEOUT, height, round, step, NULL, 0);
    cast_vote(c, PX_CONS_MSG_PRECOMMIT, NULL);
    c->step = PX_CONS_STEP_PRECOMMIT;
    acted = 1;
  } else if (step == PX_CONS_STEP_PRECOMMIT) {
    /* L65-L67 OnTimeoutPrecommit: StartRound(round_p + 1). */
    if (round >= PX_CONS_MAX_ROUND) return PX_ERANGE;
    if (!c->replaying)
      fx_persist_hrs(c, PX_CONS_WAL_TIMEOUT, height, round, step, NULL, 0);
    start_round(c, round + 1, now);
    acted = 1;
  }
  if (acted) check_rules(c, now);
  return c->fx_overflow ? PX_ELIMIT : 0;
}

/* ---- replay -------------------------------------------------------------- */

int px_cons_replay(px_cons_t *c, uint8_t wal_type, const uint8_t *payload,
                   size_t len, uint64_t now) {
  if (!c || (!payload && len)) return PX_EINVAL;
  px_reader_t r;
  px_reader_init(&r, payload, len);
  int rc = 0;
  c->replaying = 1;
  switch (wal_type) {
  case PX_CONS_WAL_MSG:
    if (c->started) (void)handle(c, payload, len, now, 1);
    break;
  case PX_CONS_WAL_OWN: {
    uint64_t h = px_reader_u64(&r);
    uint32_t rd = px_reader_u32(&r);
    uint8_t step = px_reader_u8(&r);
    const uint8_t *msg;
    size_t n;
    px_reader_bytes(&r, &msg, &n, c->cfg.max_value + 256);
    if ((rc = px_reader_finish(&r)) != 0) break;
    uint8_t sb[PX_CONS_SB_MAX], sbh[PX_HASH_LEN];
    size_t sbn;
    if (step == PX_CONS_STEP_PROPOSE) {
      px_cons_proposal_t p;
      if ((rc = px_cons_proposal_decode(msg, n, c->cfg.max_value, &p)) != 0)
        break;
      uint8_t vh[PX_HASH_LEN];
      px_hash(vh, p.value, p.value_len);
      sbn = px_cons_proposal_sb(c->cfg.chain_id, &p, vh, sb);
      if (p.height != h || p.round != rd) rc = PX_EDECODE;
    } else {
      px_cons_vote_t v;
      if ((rc = px_cons_vote_decode(msg, n, &v)) != 0) break;
      sbn = px_cons_vote_sb(c->cfg.chain_id, &v, sb);
      uint8_t vstep = v.type == PX_CONS_MSG_PREVOTE ? PX_CONS_STEP_PREVOTE
                                                    : PX_CONS_STEP_PRECOMMIT;
      if (v.height != h || v.round != rd || vstep != step) rc = PX_EDECODE;
    }
    if (rc) break;
    px_hash(sbh, sb, sbn);
    guard_record(c, h, rd, step, sbh, msg, n);
    if (c->started && h == c->height) (void)handle(c, msg, n, now, 1);
    break;
  }
  case PX_CONS_WAL_TIMEOUT: {
    uint64_t h = px_reader_u64(&r);
    uint32_t rd = px_reader_u32(&r);
    uint8_t step = px_reader_u8(&r);
    if ((rc = px_reader_finish(&r)) != 0) break;
    if (step > PX_CONS_STEP_PRECOMMIT) {
      rc = PX_EDECODE;
      break;
    }
    if (c->started) rc = px_cons_on_timeout(c, h, rd, step, now);
    break;
  }
  case PX_CONS_WAL_HEIGHT:
    px_reader_u64(&r);
    rc = px_reader_finish(&r);
    break;
  default:
    rc = PX_EDECODE;
  }
  c->replaying = 0;
  return rc;
}
