/*
 * sched.c — the requester's scheduler for one job: a sans-I/O state machine
 * (plexus/market.h, docs/market.md "Scheduling").
 *
 * State: per provider (registry view + liveness, expiries, leases held, an
 * estimate of when its queue drains), per shard (state, k worker slots and
 * one auditor slot, each FREE / LEASED / DONE with the claimed result), the
 * escrow account.  Events mutate it; after every event `pump` runs the same
 * three steps in a fixed order, so the effect stream is a pure function of
 * the event stream (that is what makes save/restore exact and the
 * simulations reproducible):
 *   1. expire leases whose deadline passed (EXPIRED; the slot is reopened);
 *   2. fill free worker / auditor slots in shard order, each with the
 *      eligible provider that would finish it first (then cheaper, then more
 *      reputable, then lower index): earliest completion within the ceiling;
 *   3. settle when every shard is accepted (or the deadline height passed).
 *
 * Busy providers and slow ones.  A provider that refuses a lease (busy: its
 * queue is full of work we no longer count, e.g. leases that expired here
 * but still run there) is backed off: no lease is offered to it before
 * retry_at = now + 250 ms x 2^(refusals in a row - 1), capped at 16 s; a
 * result from it ends the back-off.  Nothing else wakes a backed-off
 * provider, so a shard that only it can take is offered again by the first
 * event (TICK) at or after retry_at -- never in a tight refusal loop.  Each
 * expiry doubles the time a provider's leases are given (its measured speed
 * was optimistic), up to x64, so a slow but working provider finishes in
 * the end.  Preferences (not the provider that last failed this shard, not
 * one with max_expiries expiries) make a shard wait for a busy provider
 * that meets them, and are dropped when nobody else could take the shard:
 * no shard is stranded while a provider that is not gone, not slashed and
 * otherwise qualified exists.
 *
 * Money: `reserved` is what the unaccepted shards may still cost at the
 * ceiling (work x ceiling x k).  Invariant: paid + reserved <= escrow.  A
 * worker's pay (its price <= ceiling) always fits in its shard's reserve;
 * an auditor is paid from what is left above the reserve (the audit budget
 * of px_market_escrow_required), capped there, so payments can never pass
 * escrow.  A shard's work is paid once, at acceptance (ACCEPTED is final).
 *
 * Disputes: when results differ (k replicas, or worker vs auditor) the
 * runtime plays the dispute game; the loser is slashed and its result
 * dropped, the winner's result stays, and the policy runs again on the
 * shard (replicate: fill the freed slot and compare again; audit: the
 * auditor's winning result becomes the worker result and is subject to a
 * fresh audit draw), so an accepted result always passed the policy.
 */
#include <assert.h>
#include <stdint.h>
#include <string.h>

#include "plexus/codec.h"
#include "plexus/market.h"
#include "base/px_internal.h"

enum { SH_OPEN = 0, SH_VERIFY, SH_AUDIT, SH_DISPUTE, SH_ACCEPTED, SH_MAX };
enum { SL_FREE = 0, SL_LEASED, SL_DONE, SL_MAX };

typedef struct {
  uint8_t st;
  uint16_t prov;
  uint64_t deadline, est_end;
  uint8_t out[PX_HASH_LEN], root[PX_HASH_LEN];
  uint32_t n_layers;
} slot_t;

typedef struct {
  uint8_t st;
  uint8_t reoffer;
  uint16_t avoid; /* provider index + 1 that expired/refused here; 0 none */
  slot_t w[PX_MARKET_MAX_REPLICAS];
  slot_t aud;
} shard_t;

typedef struct {
  px_provider_info_t info;
  uint8_t gone, slashed;
  uint32_t expiries, active;
  uint64_t busy_until;
  uint64_t retry_at;  /* busy back-off: no lease before this (0: none) */
  uint8_t busy_level; /* refusals in a row (0 iff retry_at == 0) */
} prov_t;

/* Busy back-off: BACKOFF_MS << (level - 1), level <= BACKOFF_MAX_LEVEL. */
#define BACKOFF_MS 250u
#define BACKOFF_MAX_LEVEL 7u /* 250 ms .. 16 s */
/* Lease times double with each expiry of the provider, up to 2^this. */
#define EXPIRY_SHIFT_MAX 6u

typedef struct {
  px_sched_fx_t *v;
  size_t head, len, cap;
} fxq_t;

struct px_sched {
  px_job_spec_t spec;
  uint8_t job_id[PX_HASH_LEN];
  px_sched_opts_t opts;
  uint32_t n_shards, k;
  size_t n_prov;
  prov_t prov[PX_SCHED_MAX_PROVIDERS];
  shard_t *sh;
  px_settle_t acct;
  uint64_t reserved, now, height;
  uint8_t settled;
  uint32_t accepted, disputes, audits, expiries, slashed;
  fxq_t q;
  int err; /* sticky allocation failure while queueing effects */
};

void px_sched_opts_default(px_sched_opts_t *o) {
  memset(o, 0, sizeof *o);
  o->min_reputation = 0;
  o->lease_slack_pct = 300;
  o->lease_grace_ms = 2000;
  o->max_expiries = 3;
}

/* ---- helpers ------------------------------------------------------------- */

static void emit(px_sched_t *s, const px_sched_fx_t *fx) {
  fxq_t *q = &s->q;
  if (q->head == q->len) q->head = q->len = 0;
  if (q->len == q->cap) {
    if (q->head) {
      memmove(q->v, q->v + q->head, (q->len - q->head) * sizeof *q->v);
      q->len -= q->head;
      q->head = 0;
    } else {
      size_t cap = q->cap ? q->cap * 2 : 64;
      px_sched_fx_t *v = px_realloc(q->v, cap * sizeof *v);
      if (!v) {
        s->err = PX_ENOMEM;
        return;
      }
      q->v = v;
      q->cap = cap;
    }
  }
  q->v[q->len++] = *fx;
}

static void emit_simple(px_sched_t *s, px_sched_fx_type_t t, uint32_t shard,
                        int prov) {
  px_sched_fx_t fx;
  memset(&fx, 0, sizeof fx);
  fx.type = t;
  fx.shard = shard;
  if (prov >= 0) memcpy(fx.provider, s->prov[prov].info.id, PX_PK_LEN);
  emit(s, &fx);
}

static uint64_t shard_work(const px_sched_t *s, uint32_t i) {
  uint64_t w = 0;
  (void)px_job_shard_work(&s->spec, i, &w); /* checked at creation */
  return w;
}

/* work x ceiling x k for one shard (fits: bounded by the escrow formula). */
static uint64_t shard_reserve(const px_sched_t *s, uint32_t i) {
  return shard_work(s, i) * s->spec.price_ceiling * s->k;
}

static int find_prov(const px_sched_t *s, const uint8_t id[PX_PK_LEN]) {
  for (size_t i = 0; i < s->n_prov; i++)
    if (!memcmp(s->prov[i].info.id, id, PX_PK_LEN)) return (int)i;
  return -1;
}

static uint64_t sat_add(uint64_t a, uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* Expected milliseconds for `work` at `speed` units/s, rounded up. */
static uint64_t run_ms(uint64_t work, uint64_t speed) {
  uint64_t whole = work / speed, rem = work % speed;
  if (whole > UINT64_MAX / 1000 - 1) return UINT64_MAX / 2;
  return whole * 1000 + (rem * 1000 + speed - 1) / speed;
}

/* Expected milliseconds for provider p to run `work`: its registered speed,
 * slowed down x2 per lease it let expire (capped), so that the leases of a
 * provider slower than it claimed grow until it can meet them. */
static uint64_t prov_run_ms(const px_sched_t *s, int p, uint64_t work) {
  const prov_t *pv = &s->prov[p];
  uint64_t ms = run_ms(work, pv->info.speed);
  uint32_t sh = PX_MIN(pv->expiries, EXPIRY_SHIFT_MAX);
  return ms > (UINT64_MAX / 2) >> sh ? UINT64_MAX / 2 : ms << sh;
}

/* A refusal backs the provider off, longer for each refusal in a row; the
 * refusals of offers made together (before the current back-off began)
 * count once. */
static void backoff(px_sched_t *s, int p) {
  prov_t *pv = &s->prov[p];
  if (pv->retry_at > s->now) return;
  if (pv->busy_level < BACKOFF_MAX_LEVEL) pv->busy_level++;
  pv->retry_at = sat_add(s->now, (uint64_t)BACKOFF_MS << (pv->busy_level - 1));
}

static int holds(const shard_t *sh, uint32_t k, int p) {
  for (uint32_t j = 0; j < k; j++)
    if (sh->w[j].st != SL_FREE && sh->w[j].prov == p) return 1;
  return sh->aud.st != SL_FREE && sh->aud.prov == p;
}

/* Can provider p take shard i at all (ignoring its load, its back-off and
 * the soft preferences of `eligible`)? */
static int qualified(const px_sched_t *s, uint32_t i, int p, uint64_t work) {
  const prov_t *pv = &s->prov[p];
  const px_provider_info_t *in = &pv->info;
  if (pv->gone || pv->slashed) return 0;
  if ((in->caps & s->spec.caps) != s->spec.caps ||
      in->price > s->spec.price_ceiling ||
      in->reputation < s->opts.min_reputation)
    return 0;
  uint64_t reward;
  if (px_settle_shard_amount(in->price, work, &reward)) return 0;
  uint32_t p_bps =
      s->spec.policy == PX_VERIFY_AUDIT ? s->spec.policy_param : PX_MARKET_BPS;
  if (px_market_stake_check(in->stake, reward, p_bps)) return 0;
  return !holds(&s->sh[i], s->k, p);
}

static int worn_out(const px_sched_t *s, int p) {
  return s->prov[p].expiries >= s->opts.max_expiries;
}

/* Can p take shard i now?  level 0: strictly; 1: also the provider that
 * last failed this shard; 2: also one with max_expiries expiries. */
static int eligible(const px_sched_t *s, uint32_t i, int p, uint64_t work,
                    int level) {
  const prov_t *pv = &s->prov[p];
  if (pv->active >= pv->info.slots || pv->retry_at > s->now) return 0;
  if (worn_out(s, p) && level < 2) return 0;
  if (s->sh[i].avoid == p + 1 && level < 1) return 0;
  return qualified(s, i, p, work);
}

/* How far pick may relax the preferences for shard i: 0 when some
 * qualified provider (busy or not) is neither worn out nor the one that
 * last failed the shard -- the shard waits for it; 1 when only the one that
 * last failed it is left besides worn-out ones; 2 when only worn-out
 * providers are left.  Without this a shard could be stranded. */
static int relax_level(const px_sched_t *s, uint32_t i, uint64_t work) {
  int level = 2;
  for (size_t p = 0; p < s->n_prov && level; p++) {
    if (worn_out(s, (int)p) || !qualified(s, i, (int)p, work)) continue;
    level = (size_t)s->sh[i].avoid == p + 1 ? 1 : 0;
  }
  return level;
}

/* Best provider for shard i, or -1.  Earliest estimated finish first. */
static int pick(const px_sched_t *s, uint32_t i, uint64_t *finish_out) {
  uint64_t work = shard_work(s, i), best_fin = 0;
  int best = -1;
  /* the provider that last let this shard's lease expire (or refused it)
   * is skipped while anyone else could take it (the shard waits for a busy
   * one rather than going back to the provider that just failed it); when
   * nobody else could, it gets the shard again rather than leaving it
   * stranded.  Providers with max_expiries expiries are used only when no
   * other provider could take the shard (e.g. the one auditor left for a
   * worker's shard). */
  for (int pass = 0, levels = 0; pass <= levels && best < 0; pass++) {
    for (size_t p = 0; p < s->n_prov; p++) {
      if (!eligible(s, i, (int)p, work, pass)) continue;
      const prov_t *pv = &s->prov[p];
      uint64_t start = PX_MAX(s->now, pv->busy_until);
      uint64_t fin = sat_add(start, prov_run_ms(s, (int)p, work));
      if (best >= 0) {
        const px_provider_info_t *b = &s->prov[best].info;
        if (fin > best_fin) continue;
        if (fin == best_fin) {
          if (pv->info.price > b->price) continue;
          if (pv->info.price == b->price &&
              pv->info.reputation <= b->reputation)
            continue;
        }
      }
      best = (int)p;
      best_fin = fin;
    }
    if (pass == 0 && best < 0) levels = relax_level(s, i, work);
  }
  *finish_out = best_fin;
  return best;
}

static void lease(px_sched_t *s, uint32_t i, slot_t *sl, int p, int audit) {
  prov_t *pv = &s->prov[p];
  uint64_t work = shard_work(s, i), dur = prov_run_ms(s, p, work);
  uint64_t start = PX_MAX(s->now, pv->busy_until);
  uint64_t slack = dur / 100 * s->opts.lease_slack_pct +
                   dur % 100 * s->opts.lease_slack_pct / 100;
  memset(sl, 0, sizeof *sl);
  sl->st = SL_LEASED;
  sl->prov = (uint16_t)p;
  sl->est_end = sat_add(start, dur);
  sl->deadline = sat_add(sat_add(start, slack), s->opts.lease_grace_ms);
  pv->active++;
  pv->busy_until = sl->est_end;
  px_sched_fx_t fx;
  memset(&fx, 0, sizeof fx);
  fx.type = audit ? PX_SCHED_FX_AUDIT : PX_SCHED_FX_ASSIGN;
  fx.shard = i;
  memcpy(fx.provider, pv->info.id, PX_PK_LEN);
  fx.deadline_ms = sl->deadline;
  fx.reoffer = s->sh[i].reoffer;
  emit(s, &fx);
}

/* A lease ends (result, expiry, refusal): give back the queue estimate. */
static void lease_end(px_sched_t *s, slot_t *sl) {
  prov_t *pv = &s->prov[sl->prov];
  if (pv->active) pv->active--;
  if (sl->est_end > s->now) {
    uint64_t left = sl->est_end - s->now;
    pv->busy_until =
        pv->busy_until - s->now > left ? pv->busy_until - left : s->now;
  }
}

static void drop_lease(px_sched_t *s, uint32_t i, slot_t *sl, int expired) {
  lease_end(s, sl);
  if (expired) {
    s->prov[sl->prov].expiries++;
    s->expiries++;
    emit_simple(s, PX_SCHED_FX_EXPIRED, i, sl->prov);
  }
  s->sh[i].avoid = (uint16_t)(sl->prov + 1);
  s->sh[i].reoffer = 1;
  memset(sl, 0, sizeof *sl);
}

static int same_result(const slot_t *a, const slot_t *b) {
  return !memcmp(a->out, b->out, PX_HASH_LEN) &&
         !memcmp(a->root, b->root, PX_HASH_LEN) && a->n_layers == b->n_layers;
}

static void pay(px_sched_t *s, uint32_t i, int p, uint64_t amount) {
  if (!amount) return;
  int rc = px_settle_pay(&s->acct, amount);
  assert(rc == 0);
  (void)rc;
  px_sched_fx_t fx;
  memset(&fx, 0, sizeof fx);
  fx.type = PX_SCHED_FX_PAY;
  fx.shard = i;
  memcpy(fx.provider, s->prov[p].info.id, PX_PK_LEN);
  fx.amount = amount;
  emit(s, &fx);
}

static void accept(px_sched_t *s, uint32_t i) {
  shard_t *sh = &s->sh[i];
  uint64_t work = shard_work(s, i);
  assert(sh->st != SH_ACCEPTED);
  s->reserved -= shard_reserve(s, i);
  sh->st = SH_ACCEPTED;
  s->accepted++;
  px_sched_fx_t fx;
  memset(&fx, 0, sizeof fx);
  fx.type = PX_SCHED_FX_ACCEPT;
  fx.shard = i;
  memcpy(fx.provider, s->prov[sh->w[0].prov].info.id, PX_PK_LEN);
  memcpy(fx.output, sh->w[0].out, PX_HASH_LEN);
  emit(s, &fx);
  for (uint32_t j = 0; j < s->k; j++)
    pay(s, i, sh->w[j].prov, s->prov[sh->w[j].prov].info.price * work);
  if (sh->aud.st == SL_DONE) {
    uint64_t want = s->prov[sh->aud.prov].info.price * work;
    uint64_t room = s->acct.escrow - s->acct.paid - s->reserved;
    pay(s, i, sh->aud.prov, PX_MIN(want, room));
  }
}

static void dispute(px_sched_t *s, uint32_t i, int a, int b) {
  s->sh[i].st = SH_DISPUTE;
  s->disputes++;
  px_sched_fx_t fx;
  memset(&fx, 0, sizeof fx);
  fx.type = PX_SCHED_FX_DISPUTE;
  fx.shard = i;
  memcpy(fx.provider, s->prov[a].info.id, PX_PK_LEN);
  memcpy(fx.other, s->prov[b].info.id, PX_PK_LEN);
  emit(s, &fx);
}

/* All k workers done: agree -> accept (replicate) or ask for a seed
 * (audit); disagree -> dispute the first pair that differs. */
static void workers_done(px_sched_t *s, uint32_t i) {
  shard_t *sh = &s->sh[i];
  for (uint32_t j = 0; j < s->k; j++)
    if (sh->w[j].st != SL_DONE) return;
  for (uint32_t j = 1; j < s->k; j++)
    if (!same_result(&sh->w[0], &sh->w[j])) {
      dispute(s, i, sh->w[0].prov, sh->w[j].prov);
      return;
    }
  if (s->spec.policy == PX_VERIFY_REPLICATE) {
    accept(s, i);
  } else {
    sh->st = SH_VERIFY;
    emit_simple(s, PX_SCHED_FX_WANT_SEED, i, sh->w[0].prov);
  }
}

static void settle(px_sched_t *s) {
  s->settled = 1;
  px_sched_fx_t fx;
  memset(&fx, 0, sizeof fx);
  fx.type = PX_SCHED_FX_SETTLE;
  fx.amount = s->acct.paid;
  fx.refund = px_settle_refund(&s->acct);
  emit(s, &fx);
}

static int has_free(const px_sched_t *s) {
  for (size_t p = 0; p < s->n_prov; p++)
    if (s->prov[p].active < s->prov[p].info.slots && !s->prov[p].gone &&
        !s->prov[p].slashed && s->prov[p].retry_at <= s->now)
      return 1;
  return 0;
}

static void pump(px_sched_t *s) {
  if (s->settled) return;
  for (uint32_t i = 0; i < s->n_shards; i++) {
    shard_t *sh = &s->sh[i];
    if (sh->st == SH_ACCEPTED) continue;
    for (uint32_t j = 0; j < s->k; j++)
      if (sh->w[j].st == SL_LEASED && sh->w[j].deadline <= s->now)
        drop_lease(s, i, &sh->w[j], 1);
    if (sh->aud.st == SL_LEASED && sh->aud.deadline <= s->now)
      drop_lease(s, i, &sh->aud, 1);
  }
  int any_free = has_free(s);
  for (uint32_t i = 0; i < s->n_shards && any_free; i++) {
    shard_t *sh = &s->sh[i];
    uint64_t fin;
    if (sh->st == SH_OPEN) {
      for (uint32_t j = 0; j < s->k; j++) {
        if (sh->w[j].st != SL_FREE) continue;
        int p = pick(s, i, &fin);
        if (p < 0) break;
        lease(s, i, &sh->w[j], p, 0);
        any_free = has_free(s);
        if (!any_free) break;
      }
    } else if (sh->st == SH_AUDIT && sh->aud.st == SL_FREE) {
      int p = pick(s, i, &fin);
      if (p >= 0) {
        lease(s, i, &sh->aud, p, 1);
        any_free = has_free(s);
      }
    }
  }
  if (s->accepted == s->n_shards ||
      (s->height && s->height >= s->spec.deadline))
    settle(s);
}

/* ---- public --------------------------------------------------------------
 */

static int sched_alloc(const px_job_spec_t *spec, const px_sched_opts_t *opts,
                       px_sched_t **out) {
  *out = NULL;
  if (px_job_spec_check(spec) || !opts || opts->lease_slack_pct < 100 ||
      opts->lease_slack_pct > 100000 || opts->max_expiries == 0)
    return PX_EINVAL;
  px_sched_t *s = px_calloc(1, sizeof *s);
  if (!s) return PX_ENOMEM;
  s->spec = *spec;
  s->opts = *opts;
  s->n_shards = px_job_shard_count(spec);
  s->k = spec->policy == PX_VERIFY_REPLICATE ? spec->policy_param : 1;
  s->sh = px_calloc(s->n_shards, sizeof *s->sh);
  int rc = !s->sh ? PX_ENOMEM : px_job_spec_id(spec, s->job_id);
  if (rc) {
    px_sched_free(s);
    return rc;
  }
  for (uint32_t i = 0; i < s->n_shards; i++)
    s->reserved += shard_reserve(s, i);
  *out = s;
  return 0;
}

static int prov_info_ok(const px_provider_info_t *p) {
  return p->speed >= 1 && p->slots >= 1 && p->slots <= 1024 &&
         p->reputation <= PX_MARKET_BPS;
}

int px_sched_new(const px_job_spec_t *spec, const px_sched_opts_t *opts,
                 const px_provider_info_t *providers, size_t n, uint64_t escrow,
                 px_sched_t **out) {
  *out = NULL;
  uint64_t need;
  if (n > PX_SCHED_MAX_PROVIDERS || (n && !providers) || !spec ||
      px_job_spec_check(spec) || px_market_escrow_required(spec, &need) ||
      escrow < need)
    return PX_EINVAL;
  for (size_t i = 0; i < n; i++) {
    if (!prov_info_ok(&providers[i])) return PX_EINVAL;
    for (size_t j = 0; j < i; j++)
      if (!memcmp(providers[i].id, providers[j].id, PX_PK_LEN))
        return PX_EINVAL;
  }
  px_sched_t *s;
  int rc = sched_alloc(spec, opts, &s);
  if (rc) return rc;
  s->n_prov = n;
  for (size_t i = 0; i < n; i++)
    s->prov[i].info = providers[i];
  s->acct.escrow = escrow;
  *out = s;
  return 0;
}

void px_sched_free(px_sched_t *s) {
  if (!s) return;
  px_free(s->sh);
  px_free(s->q.v);
  px_free(s);
}

int px_sched_poll(px_sched_t *s, px_sched_fx_t *fx) {
  if (s->q.head >= s->q.len) return 0;
  *fx = s->q.v[s->q.head++];
  return 1;
}

int px_sched_done(const px_sched_t *s) { return s->settled; }

void px_sched_stats(const px_sched_t *s, px_sched_stats_t *st) {
  memset(st, 0, sizeof *st);
  st->shards = s->n_shards;
  st->accepted = s->accepted;
  for (uint32_t i = 0; i < s->n_shards; i++) {
    for (uint32_t j = 0; j < s->k; j++)
      st->running += s->sh[i].w[j].st == SL_LEASED;
    st->running += s->sh[i].aud.st == SL_LEASED;
  }
  st->disputes = s->disputes;
  st->audits = s->audits;
  st->expiries = s->expiries;
  st->slashed = s->slashed;
  st->paid = s->acct.paid;
  st->escrow = s->acct.escrow;
}

static slot_t *leased_by(px_sched_t *s, uint32_t i, int p, int audit) {
  shard_t *sh = &s->sh[i];
  if (audit) return sh->aud.st == SL_LEASED && sh->aud.prov == p ? &sh->aud : 0;
  for (uint32_t j = 0; j < s->k; j++)
    if (sh->w[j].st == SL_LEASED && sh->w[j].prov == p) return &sh->w[j];
  return NULL;
}

static void slash(px_sched_t *s, uint32_t i, int loser, int winner) {
  prov_t *pv = &s->prov[loser];
  if (!pv->slashed) s->slashed++;
  pv->slashed = 1;
  px_sched_fx_t fx;
  memset(&fx, 0, sizeof fx);
  fx.type = PX_SCHED_FX_SLASH;
  fx.shard = i;
  memcpy(fx.provider, pv->info.id, PX_PK_LEN);
  memcpy(fx.other, s->prov[winner].info.id, PX_PK_LEN);
  emit(s, &fx);
}

/* Validate ev against the state without changing anything. */
static int check_event(px_sched_t *s, const px_sched_event_t *ev, int *p_out,
                       int *q_out) {
  int p = -1, q = -1;
  *p_out = *q_out = -1;
  if (ev->now_ms < s->now) return PX_EINVAL; /* time never goes back */
  switch (ev->type) {
  case PX_SCHED_EV_TICK:
  case PX_SCHED_EV_HEIGHT:
    return 0;
  case PX_SCHED_EV_PROVIDER_GONE:
    p = find_prov(s, ev->provider);
    if (p < 0) return PX_ENOENT;
    break;
  case PX_SCHED_EV_LEASE_REJECTED:
  case PX_SCHED_EV_COMMITTED:
  case PX_SCHED_EV_AUDIT_RESULT:
  case PX_SCHED_EV_AUDIT_SEED:
  case PX_SCHED_EV_DISPUTE_RESOLVED:
    if (ev->shard >= s->n_shards) return PX_EINVAL;
    if (s->settled) return PX_ESTATE;
    if (ev->type != PX_SCHED_EV_AUDIT_SEED) {
      p = find_prov(s, ev->provider);
      if (p < 0) return PX_ENOENT;
    }
    break;
  default:
    return PX_EINVAL;
  }
  const shard_t *sh = &s->sh[ev->shard];
  switch (ev->type) {
  case PX_SCHED_EV_LEASE_REJECTED:
    if (!leased_by(s, ev->shard, p, 0) && !leased_by(s, ev->shard, p, 1))
      return PX_EPROTO;
    break;
  case PX_SCHED_EV_COMMITTED:
    if (sh->st != SH_OPEN || !leased_by(s, ev->shard, p, 0) ||
        ev->n_layers < 1 || ev->n_layers > PX_TRACE_MAX_LAYERS)
      return PX_EPROTO;
    break;
  case PX_SCHED_EV_AUDIT_RESULT:
    if (sh->st != SH_AUDIT || !leased_by(s, ev->shard, p, 1) ||
        ev->n_layers < 1 || ev->n_layers > PX_TRACE_MAX_LAYERS)
      return PX_EPROTO;
    break;
  case PX_SCHED_EV_AUDIT_SEED:
    if (sh->st != SH_VERIFY) return PX_EPROTO;
    break;
  case PX_SCHED_EV_DISPUTE_RESOLVED: {
    if (sh->st != SH_DISPUTE) return PX_EPROTO;
    q = find_prov(s, ev->loser);
    if (q < 0) return PX_ENOENT;
    if (q == p) return PX_EINVAL;
    int pw = 0, ql = 0; /* both must hold DONE results on this shard */
    for (uint32_t j = 0; j < s->k; j++) {
      pw |= sh->w[j].st == SL_DONE && sh->w[j].prov == p;
      ql |= sh->w[j].st == SL_DONE && sh->w[j].prov == q;
    }
    pw |= sh->aud.st == SL_DONE && sh->aud.prov == p;
    ql |= sh->aud.st == SL_DONE && sh->aud.prov == q;
    if (!pw || !ql) return PX_EPROTO;
    break;
  }
  default:
    break;
  }
  *p_out = p;
  *q_out = q;
  return 0;
}

int px_sched_handle(px_sched_t *s, const px_sched_event_t *ev) {
  if (s->err) return s->err;
  int p, q, rc = check_event(s, ev, &p, &q);
  if (rc) return rc;
  s->now = ev->now_ms;
  uint32_t i = ev->shard;
  shard_t *sh = i < s->n_shards ? &s->sh[i] : NULL;
  switch (ev->type) {
  case PX_SCHED_EV_TICK:
    break;
  case PX_SCHED_EV_HEIGHT:
    if (ev->height > s->height) s->height = ev->height;
    break;
  case PX_SCHED_EV_PROVIDER_GONE:
    s->prov[p].gone = 1;
    for (uint32_t x = 0; x < s->n_shards; x++) {
      slot_t *sl = leased_by(s, x, p, 0);
      if (sl) drop_lease(s, x, sl, 1);
      sl = leased_by(s, x, p, 1);
      if (sl) drop_lease(s, x, sl, 1);
    }
    break;
  case PX_SCHED_EV_LEASE_REJECTED: {
    slot_t *sl = leased_by(s, i, p, 0);
    drop_lease(s, i, sl ? sl : leased_by(s, i, p, 1), 0);
    backoff(s, p);
    break;
  }
  case PX_SCHED_EV_COMMITTED:
  case PX_SCHED_EV_AUDIT_RESULT: {
    int audit = ev->type == PX_SCHED_EV_AUDIT_RESULT;
    slot_t *sl = leased_by(s, i, p, audit);
    lease_end(s, sl);
    s->prov[p].retry_at = 0; /* it works and has a free slot again */
    s->prov[p].busy_level = 0;
    sl->st = SL_DONE;
    memcpy(sl->out, ev->output, PX_HASH_LEN);
    memcpy(sl->root, ev->trace_root, PX_HASH_LEN);
    sl->n_layers = ev->n_layers;
    if (!audit)
      workers_done(s, i);
    else if (same_result(&sh->w[0], sl))
      accept(s, i);
    else
      dispute(s, i, sh->w[0].prov, p);
    break;
  }
  case PX_SCHED_EV_AUDIT_SEED:
    if (px_market_audit_selected(ev->randomness, s->job_id, i,
                                 s->spec.policy_param)) {
      sh->st = SH_AUDIT;
      s->audits++;
    } else {
      accept(s, i);
    }
    break;
  case PX_SCHED_EV_DISPUTE_RESOLVED: {
    slash(s, i, q, p);
    /* drop the loser's result and every worker result equal to it */
    slot_t bad;
    memset(&bad, 0, sizeof bad);
    for (uint32_t j = 0; j < s->k; j++)
      if (sh->w[j].st == SL_DONE && sh->w[j].prov == q) bad = sh->w[j];
    if (sh->aud.st == SL_DONE && sh->aud.prov == q) bad = sh->aud;
    for (uint32_t j = 0; j < s->k; j++)
      if (sh->w[j].st == SL_DONE && same_result(&sh->w[j], &bad))
        memset(&sh->w[j], 0, sizeof sh->w[j]);
    if (sh->aud.st == SL_DONE) {
      if (same_result(&sh->aud, &bad)) {
        memset(&sh->aud, 0, sizeof sh->aud); /* auditor lied: re-audit */
        sh->st = SH_AUDIT;
        break;
      }
      /* worker lied: the auditor's result becomes the worker result and
       * faces a fresh audit draw */
      sh->w[0] = sh->aud;
      memset(&sh->aud, 0, sizeof sh->aud);
    }
    sh->st = SH_OPEN;
    workers_done(s, i);
    break;
  }
  }
  pump(s);
  return s->err;
}

/* ---- persistence ---------------------------------------------------------
 * tag, version, bytes spec, opts (u32 min_rep, u32 slack, u64 grace,
 * u32 max_exp), u64 escrow, u64 paid, u64 now, u64 height, u8 settled,
 * u32 disputes, u32 audits, u32 expiries, u32 n_prov,
 *   per provider: id[32] u32 caps u64 price u64 stake u32 rep u64 speed
 *                 u32 slots u8 gone u8 slashed u32 expiries u64 busy_until
 *                 u64 retry_at u8 busy_level
 * u32 n_shards, per shard: u8 st u8 reoffer u16 avoid, (k + 1) slots:
 *   u8 st u16 prov u64 deadline u64 est_end out[32] root[32] u32 n_layers
 * Derived values (active leases, reserved, accepted, slashed counts) are
 * recomputed on load and every cross-reference is checked. */

static void slot_write(px_writer_t *w, const slot_t *sl) {
  px_writer_u8(w, sl->st);
  px_writer_u16(w, sl->prov);
  px_writer_u64(w, sl->deadline);
  px_writer_u64(w, sl->est_end);
  px_writer_fixed(w, sl->out, PX_HASH_LEN);
  px_writer_fixed(w, sl->root, PX_HASH_LEN);
  px_writer_u32(w, sl->n_layers);
}

int px_sched_save(const px_sched_t *s, px_buf_t *out) {
  if (s->q.head < s->q.len) return PX_ESTATE;
  if (s->err) return s->err;
  px_buf_t spec;
  px_buf_init(&spec, 1024);
  int rc = px_job_spec_encode(&s->spec, &spec);
  if (rc) {
    px_buf_release(&spec);
    return rc;
  }
  px_writer_t w;
  px_writer_init(&w, out);
  px_writer_u16(&w, PX_MARKET_TAG_SCHED);
  px_writer_u8(&w, PX_MARKET_VERSION);
  px_writer_bytes(&w, spec.data, spec.len);
  px_buf_release(&spec);
  px_writer_u32(&w, s->opts.min_reputation);
  px_writer_u32(&w, s->opts.lease_slack_pct);
  px_writer_u64(&w, s->opts.lease_grace_ms);
  px_writer_u32(&w, s->opts.max_expiries);
  px_writer_u64(&w, s->acct.escrow);
  px_writer_u64(&w, s->acct.paid);
  px_writer_u64(&w, s->now);
  px_writer_u64(&w, s->height);
  px_writer_u8(&w, s->settled);
  px_writer_u32(&w, s->disputes);
  px_writer_u32(&w, s->audits);
  px_writer_u32(&w, s->expiries);
  px_writer_u32(&w, (uint32_t)s->n_prov);
  for (size_t i = 0; i < s->n_prov; i++) {
    const prov_t *p = &s->prov[i];
    px_writer_fixed(&w, p->info.id, PX_PK_LEN);
    px_writer_u32(&w, p->info.caps);
    px_writer_u64(&w, p->info.price);
    px_writer_u64(&w, p->info.stake);
    px_writer_u32(&w, p->info.reputation);
    px_writer_u64(&w, p->info.speed);
    px_writer_u32(&w, p->info.slots);
    px_writer_u8(&w, p->gone);
    px_writer_u8(&w, p->slashed);
    px_writer_u32(&w, p->expiries);
    px_writer_u64(&w, p->busy_until);
    px_writer_u64(&w, p->retry_at);
    px_writer_u8(&w, p->busy_level);
  }
  px_writer_u32(&w, s->n_shards);
  for (uint32_t i = 0; i < s->n_shards; i++) {
    const shard_t *sh = &s->sh[i];
    px_writer_u8(&w, sh->st);
    px_writer_u8(&w, sh->reoffer);
    px_writer_u16(&w, sh->avoid);
    for (uint32_t j = 0; j < s->k; j++)
      slot_write(&w, &sh->w[j]);
    slot_write(&w, &sh->aud);
  }
  return px_writer_finish(&w);
}

static void slot_read(px_reader_t *r, slot_t *sl, size_t n_prov) {
  sl->st = px_reader_u8(r);
  sl->prov = px_reader_u16(r);
  sl->deadline = px_reader_u64(r);
  sl->est_end = px_reader_u64(r);
  px_reader_fixed(r, sl->out, PX_HASH_LEN);
  px_reader_fixed(r, sl->root, PX_HASH_LEN);
  sl->n_layers = px_reader_u32(r);
  if (r->err) return;
  if (sl->st >= SL_MAX) px_reader_fail(r, PX_EDECODE);
  static const slot_t zero;
  if (sl->st == SL_FREE && memcmp(sl, &zero, sizeof zero))
    px_reader_fail(r, PX_EDECODE); /* canonical: a free slot is all zero */
  if (sl->st != SL_FREE && sl->prov >= n_prov) px_reader_fail(r, PX_EDECODE);
  if (sl->st == SL_DONE &&
      (sl->n_layers < 1 || sl->n_layers > PX_TRACE_MAX_LAYERS))
    px_reader_fail(r, PX_EDECODE);
  if (sl->st == SL_LEASED && sl->n_layers) px_reader_fail(r, PX_EDECODE);
}

/* Cross-checks of a loaded shard against the invariants of the machine. */
static int shard_ok(px_sched_t *s, uint32_t i) {
  shard_t *sh = &s->sh[i];
  uint32_t done = 0, leased = 0;
  if (sh->st >= SH_MAX || sh->reoffer > 1 || sh->avoid > s->n_prov) return 0;
  for (uint32_t j = 0; j < s->k; j++) {
    slot_t *a = &sh->w[j];
    done += a->st == SL_DONE;
    leased += a->st == SL_LEASED;
    for (uint32_t m = j + 1; m < s->k + 1; m++) {
      slot_t *b = m < s->k ? &sh->w[m] : &sh->aud;
      if (a->st != SL_FREE && b->st != SL_FREE && a->prov == b->prov) return 0;
    }
    if (a->st == SL_LEASED) s->prov[a->prov].active++;
    /* only providers within the ceiling ever get a slot (pay must fit) */
    if (a->st != SL_FREE && s->prov[a->prov].info.price > s->spec.price_ceiling)
      return 0;
  }
  if (sh->aud.st != SL_FREE &&
      s->prov[sh->aud.prov].info.price > s->spec.price_ceiling)
    return 0;
  if (sh->aud.st == SL_LEASED) s->prov[sh->aud.prov].active++;
  int audit = s->spec.policy == PX_VERIFY_AUDIT;
  switch (sh->st) {
  case SH_OPEN:
    return done < s->k && sh->aud.st == SL_FREE;
  case SH_VERIFY:
    return audit && done == 1 && sh->aud.st == SL_FREE;
  case SH_AUDIT:
    return audit && done == 1 && sh->aud.st != SL_DONE;
  case SH_DISPUTE:
    return leased == 0 && (audit ? done == 1 && sh->aud.st == SL_DONE
                                 : done == s->k && sh->aud.st == SL_FREE);
  case SH_ACCEPTED:
    s->accepted++;
    s->reserved -= shard_reserve(s, i);
    return leased == 0 && done == s->k && sh->aud.st != SL_LEASED;
  }
  return 0;
}

int px_sched_load(const void *p, size_t n, px_sched_t **out) {
  *out = NULL;
  px_reader_t r;
  px_reader_init(&r, p, n);
  if (px_reader_u16(&r) != PX_MARKET_TAG_SCHED) px_reader_fail(&r, PX_EDECODE);
  if (px_reader_u8(&r) != PX_MARKET_VERSION) px_reader_fail(&r, PX_EVERSION);
  const uint8_t *sp;
  size_t sn;
  px_reader_bytes(&r, &sp, &sn, 1024);
  px_job_spec_t spec;
  px_sched_opts_t o;
  if (r.err) return r.err;
  int rc = px_job_spec_decode(sp, sn, &spec);
  if (rc) return rc;
  o.min_reputation = px_reader_u32(&r);
  o.lease_slack_pct = px_reader_u32(&r);
  o.lease_grace_ms = px_reader_u64(&r);
  o.max_expiries = px_reader_u32(&r);
  if (r.err) return r.err;
  px_sched_t *s;
  rc = sched_alloc(&spec, &o, &s);
  if (rc) return rc == PX_ENOMEM ? rc : PX_EDECODE;
  s->acct.escrow = px_reader_u64(&r);
  s->acct.paid = px_reader_u64(&r);
  s->now = px_reader_u64(&r);
  s->height = px_reader_u64(&r);
  s->settled = px_reader_u8(&r);
  s->disputes = px_reader_u32(&r);
  s->audits = px_reader_u32(&r);
  s->expiries = px_reader_u32(&r);
  uint32_t np = px_reader_u32(&r);
  if (np > PX_SCHED_MAX_PROVIDERS) px_reader_fail(&r, PX_EDECODE);
  for (uint32_t i = 0; i < np && !r.err; i++) {
    prov_t *pv = &s->prov[i];
    px_reader_fixed(&r, pv->info.id, PX_PK_LEN);
    pv->info.caps = px_reader_u32(&r);
    pv->info.price = px_reader_u64(&r);
    pv->info.stake = px_reader_u64(&r);
    pv->info.reputation = px_reader_u32(&r);
    pv->info.speed = px_reader_u64(&r);
    pv->info.slots = px_reader_u32(&r);
    pv->gone = px_reader_u8(&r);
    pv->slashed = px_reader_u8(&r);
    pv->expiries = px_reader_u32(&r);
    pv->busy_until = px_reader_u64(&r);
    pv->retry_at = px_reader_u64(&r);
    pv->busy_level = px_reader_u8(&r);
    if (r.err) break;
    if (!prov_info_ok(&pv->info) || pv->gone > 1 || pv->slashed > 1)
      px_reader_fail(&r, PX_EDECODE);
    /* back-off: level and retry time set and cleared together, and never
     * further ahead than the longest back-off from the saved clock */
    if (pv->busy_level > BACKOFF_MAX_LEVEL ||
        (pv->busy_level == 0) != (pv->retry_at == 0) ||
        (pv->busy_level &&
         (pv->retry_at < (uint64_t)BACKOFF_MS ||
          (pv->retry_at > s->now &&
           pv->retry_at - s->now >
               ((uint64_t)BACKOFF_MS << (BACKOFF_MAX_LEVEL - 1))))))
      px_reader_fail(&r, PX_EDECODE);
    for (uint32_t j = 0; j < i; j++)
      if (!memcmp(s->prov[j].info.id, pv->info.id, PX_PK_LEN))
        px_reader_fail(&r, PX_EDECODE);
    s->slashed += pv->slashed;
  }
  s->n_prov = np;
  if (px_reader_u32(&r) != s->n_shards) px_reader_fail(&r, PX_EDECODE);
  for (uint32_t i = 0; i < s->n_shards && !r.err; i++) {
    shard_t *sh = &s->sh[i];
    sh->st = px_reader_u8(&r);
    sh->reoffer = px_reader_u8(&r);
    sh->avoid = px_reader_u16(&r);
    for (uint32_t j = 0; j < s->k; j++)
      slot_read(&r, &sh->w[j], s->n_prov);
    slot_read(&r, &sh->aud, s->n_prov);
    if (!r.err && !shard_ok(s, i)) px_reader_fail(&r, PX_EDECODE);
  }
  rc = px_reader_finish(&r);
  uint64_t need;
  if (!rc && (s->settled > 1 || px_market_escrow_required(&spec, &need) ||
              s->acct.escrow < need || s->acct.paid > s->acct.escrow ||
              s->reserved > s->acct.escrow - s->acct.paid))
    rc = PX_EDECODE;
  for (size_t i = 0; !rc && i < s->n_prov; i++)
    if (s->prov[i].active > s->prov[i].info.slots) rc = PX_EDECODE;
  if (rc) {
    px_sched_free(s);
    return rc;
  }
  *out = s;
  return 0;
}
