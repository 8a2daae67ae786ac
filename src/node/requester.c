/*
 * requester.c — the requester role of the market (docs/market.md
 * "Requester runtime").
 *
 * The pure scheduler (px_sched, src/market/sched.c) decides everything for
 * a job; this file feeds it events and performs its effects:
 *   events   JOB_OPEN seen on chain -> the scheduler is built over the
 *            registry; LEASE replies (refusals -> LEASE_REJECTED); RESULT
 *            messages, verified (signature, sender, logits hashing to the
 *            committed output) -> COMMITTED / AUDIT_RESULT; chain randomness
 *            after the commitment's block -> AUDIT_SEED; dispute verdicts ->
 *            DISPUTE_RESOLVED; provider exit or a long disconnection ->
 *            PROVIDER_GONE; blocks -> HEIGHT; the node's tick -> TICK.
 *   effects  ASSIGN / AUDIT -> LEASE requests; WANT_SEED -> wait for the
 *            commitment's block h and h+1; ACCEPT -> the shard's logits go
 *            into result.f32; PAY -> JOB_SETTLE entries; DISPUTE -> the game
 *            of requester_dispute.c; SETTLE -> the final JOB_SETTLE.
 * Every verified commitment is carried to chain in JOB_COMMIT batches (the
 * audit seed and disputes need it there; equivocation is judged there).
 *
 * Time: the scheduler's clock is CLOCK_REALTIME in ms, clamped never to go
 * back relative to the last value saved (so leases survive a restart with
 * their deadlines meaningful).  Loop time (uv_now) is used for p2p only.
 *
 * Persistence (requester.h): the scheduler is saved after every drained
 * batch of effects, together with this file's record of the job, both
 * atomically; a restart resumes every job under HOME/jobs.
 */
#define _GNU_SOURCE /* syncfs */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "plexus/codec.h"
#include "plexus/json.h"
#include "plexus/model_io.h"

#include "node/requester.h"
#include "base/px_internal.h"

#define LOGMOD "market"
#define STATE_VERSION 1
#define FLUSH_MS 200 /* commitments are batched this long at most */

static uint64_t loop_now(px_requester_t *r) { return uv_now(r->m->env.loop); }

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t px_req_now(rj_job_t *j) {
  uint64_t t = wall_ms();
  if (t < j->last_now) t = j->last_now;
  j->last_now = t;
  return t;
}

static void hex16(const uint8_t *p, char out[17]) { px_hex_encode(p, 8, out); }

void px_req_mark_dirty(rj_job_t *j) { j->dirty = 1; }

void px_req_event(rj_job_t *j, const char *fmt, ...) {
  char *e = j->events[j->n_events % PX_REQ_EVENTS];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e, PX_REQ_EVENT_LEN, fmt, ap);
  va_end(ap);
  for (char *c = e; *c; c++) /* peers' text too: printable ASCII only */
    if (*c < 0x20 || *c > 0x7e) *c = '?';
  j->n_events++;
  j->dirty = 1;
  PX_LOGI(LOGMOD, "job %.16s: %s", j->hex, e);
}

/* JSON string with the escapes this file's strings can need. */
static void json_str(px_buf_t *b, const char *s) {
  px_buf_append(b, "\"", 1);
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\')
      px_buf_printf(b, "\\%c", ch);
    else if (ch < 0x20)
      px_buf_printf(b, "\\u%04x", ch);
    else
      px_buf_append(b, s, 1);
  }
  px_buf_append(b, "\"", 1);
}

static void reply_err(px_buf_t *out, int rc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void reply_err(px_buf_t *out, int rc, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  px_buf_printf(out,
                "{\"ok\":false,\"error\":\"%s\",\"message\":", px_err_name(rc));
  json_str(out, msg);
  px_buf_printf(out, "}");
}

/* ---- small tables ------------------------------------------------------- */

#define GROW(v, n, cap)                                                        \
  ((n) < (cap) ? 0 : grow((void **)&(v), &(cap), sizeof *(v)))

static int grow(void **v, size_t *cap, size_t elem) {
  size_t nc = *cap ? *cap * 2 : 8;
  void *p = px_realloc(*v, nc * elem);
  if (!p) return PX_ENOMEM;
  *v = p;
  *cap = nc;
  return 0;
}

rj_commit_t *px_req_find_commit(rj_job_t *j, uint32_t shard,
                                const uint8_t pk[PX_PK_LEN]) {
  for (size_t i = 0; i < j->n_cm; i++)
    if (j->cm[i].c.shard == shard &&
        !memcmp(j->cm[i].c.provider, pk, PX_PK_LEN))
      return &j->cm[i];
  return NULL;
}

static rj_lease_t *find_lease(rj_job_t *j, uint32_t shard,
                              const uint8_t pk[PX_PK_LEN]) {
  for (size_t i = 0; i < j->n_ls; i++)
    if (j->ls[i].shard == shard && !memcmp(j->ls[i].provider, pk, PX_PK_LEN))
      return &j->ls[i];
  return NULL;
}

static void drop_lease(rj_job_t *j, rj_lease_t *l) {
  size_t i = (size_t)(l - j->ls);
  j->ls[i] = j->ls[--j->n_ls];
  j->dirty = 1;
}

static rj_job_t *find_job(px_requester_t *r, const uint8_t id[PX_HASH_LEN]) {
  for (rj_job_t *j = r->jobs; j; j = j->next)
    if (!memcmp(j->id, id, PX_HASH_LEN)) return j;
  return NULL;
}

/* Job by full hex id or a unique prefix of at least 8 characters. */
static rj_job_t *find_job_hex(px_requester_t *r, const char *arg) {
  char want[2 * PX_HASH_LEN + 1];
  size_t n = 0;
  while (*arg == ' ' || *arg == '"')
    arg++;
  while (n < sizeof want - 1 && arg[n] && arg[n] != '"' && arg[n] != ' ' &&
         arg[n] != '\n')
    want[n] = arg[n], n++;
  want[n] = 0;
  if (n < 8) return NULL;
  rj_job_t *hit = NULL;
  for (rj_job_t *j = r->jobs; j; j = j->next)
    if (!strncasecmp(j->hex, want, n)) {
      if (hit) return NULL;
      hit = j;
    }
  return hit;
}

/* ---- persistence -------------------------------------------------------- */

static int job_path(const rj_job_t *j, const char *name, char *out,
                    size_t cap) {
  int n = snprintf(out, cap, "%s/%s", j->dir, name);
  return n < 0 || (size_t)n >= cap ? PX_ETOOBIG : 0;
}

static int write_file(const rj_job_t *j, const char *name, const void *p,
                      size_t n) {
  char path[4400];
  int rc = job_path(j, name, path, sizeof path);
  return rc ? rc : px_file_write_atomic(path, p, n, 0600);
}

static int state_encode(const rj_job_t *j, px_buf_t *out) {
  px_writer_t w;
  px_writer_init(&w, out);
  px_writer_u16(&w, PX_REQ_TAG_STATE);
  px_writer_u8(&w, STATE_VERSION);
  px_writer_u8(&w, j->phase);
  px_writer_u64(&w, j->escrow);
  px_writer_u64(&w, j->submit_height);
  px_writer_u64(&w, j->open_height);
  px_writer_u64(&w, j->last_now);
  px_writer_u64(&w, j->model_size);
  px_writer_u32(&w, j->classes);
  px_writer_fixed(&w, j->open_tx, PX_HASH_LEN);
  px_writer_u8(&w, j->final_sent);
  px_writer_u64(&w, j->final_height);
  px_writer_u64(&w, j->paid_total);
  px_writer_u64(&w, j->refund);
  px_writer_u32(&w, j->slashed);
  px_writer_u32(&w, j->n_shards);
  px_writer_fixed(&w, j->accepted, j->n_shards);
  px_writer_fixed(&w, j->audited, j->n_shards);
  px_writer_fixed(&w, j->recheck, j->n_shards);
  px_writer_fixed(&w, j->acc_prov, (size_t)j->n_shards * PX_PK_LEN);
  px_writer_fixed(&w, j->auditor, (size_t)j->n_shards * PX_PK_LEN);
  px_writer_u32(&w, (uint32_t)j->n_cm);
  for (size_t i = 0; i < j->n_cm; i++) {
    px_buf_t cb;
    px_buf_init(&cb, 0);
    int rc = px_commitment_encode(&j->cm[i].c, &cb);
    if (rc) {
      px_buf_release(&cb);
      return rc;
    }
    px_writer_bytes(&w, cb.data, cb.len);
    px_buf_release(&cb);
    px_writer_u8(&w, j->cm[i].role);
    px_writer_u8(&w, j->cm[i].st);
    px_writer_u8(&w, j->cm[i].want_seed);
    px_writer_u64(&w, j->cm[i].sent_height);
    px_writer_u64(&w, j->cm[i].height);
  }
  px_writer_u32(&w, (uint32_t)j->n_pay);
  for (size_t i = 0; i < j->n_pay; i++) {
    const rj_pay_t *p = &j->pay[i];
    px_writer_u32(&w, p->e.shard);
    px_writer_fixed(&w, p->e.provider, PX_PK_LEN);
    px_writer_u64(&w, p->e.amount);
    px_writer_u8(&w, p->e.flags);
    px_writer_u8(&w, p->st);
    px_writer_u64(&w, p->sent_height);
  }
  px_writer_u32(&w, (uint32_t)j->n_ls);
  for (size_t i = 0; i < j->n_ls; i++) {
    const rj_lease_t *l = &j->ls[i];
    px_writer_u32(&w, l->shard);
    px_writer_fixed(&w, l->provider, PX_PK_LEN);
    px_writer_u8(&w, l->role);
    px_writer_u8(&w, l->accepted);
    px_writer_u64(&w, l->deadline);
  }
  size_t live = 0;
  for (size_t i = 0; i < j->n_dp; i++)
    live += j->dp[i].phase != RD_DONE;
  px_writer_u32(&w, (uint32_t)live);
  for (size_t i = 0; i < j->n_dp; i++) {
    if (j->dp[i].phase == RD_DONE) continue;
    px_writer_u32(&w, j->dp[i].shard);
    px_writer_fixed(&w, j->dp[i].pk[0], PX_PK_LEN);
    px_writer_fixed(&w, j->dp[i].pk[1], PX_PK_LEN);
  }
  px_writer_u32(&w, (uint32_t)j->n_expired);
  px_writer_fixed(&w, j->expired, j->n_expired * PX_PK_LEN);
  px_writer_u32(&w, (uint32_t)j->n_suspect);
  px_writer_fixed(&w, j->suspect, j->n_suspect * PX_PK_LEN);
  uint32_t ne = j->n_events < PX_REQ_EVENTS ? j->n_events : PX_REQ_EVENTS;
  px_writer_u32(&w, j->n_events);
  for (uint32_t i = 0; i < ne; i++)
    px_writer_str(&w, j->events[(j->n_events - ne + i) % PX_REQ_EVENTS]);
  return px_writer_finish(&w);
}

static int alloc_shards(rj_job_t *j) {
  j->accepted = px_calloc(j->n_shards, 1);
  j->audited = px_calloc(j->n_shards, 1);
  j->recheck = px_calloc(j->n_shards, 1);
  j->acc_prov = px_calloc(j->n_shards, PX_PK_LEN);
  j->auditor = px_calloc(j->n_shards, PX_PK_LEN);
  return j->accepted && j->audited && j->recheck && j->acc_prov && j->auditor
             ? 0
             : PX_ENOMEM;
}

static int state_decode(rj_job_t *j, const uint8_t *p, size_t n) {
  px_reader_t r;
  px_reader_init(&r, p, n);
  if (px_reader_u16(&r) != PX_REQ_TAG_STATE) px_reader_fail(&r, PX_EDECODE);
  if (px_reader_u8(&r) != STATE_VERSION) px_reader_fail(&r, PX_EVERSION);
  j->phase = px_reader_u8(&r);
  j->escrow = px_reader_u64(&r);
  j->submit_height = px_reader_u64(&r);
  j->open_height = px_reader_u64(&r);
  j->last_now = px_reader_u64(&r);
  j->model_size = px_reader_u64(&r);
  j->classes = px_reader_u32(&r);
  px_reader_fixed(&r, j->open_tx, PX_HASH_LEN);
  j->final_sent = px_reader_u8(&r);
  j->final_height = px_reader_u64(&r);
  j->paid_total = px_reader_u64(&r);
  j->refund = px_reader_u64(&r);
  j->slashed = px_reader_u32(&r);
  if (px_reader_u32(&r) != j->n_shards || j->phase > RJ_FAILED ||
      j->classes < 1 || j->classes > (1u << 20))
    px_reader_fail(&r, PX_EDECODE);
  if (r.err) return r.err;
  px_reader_fixed(&r, j->accepted, j->n_shards);
  px_reader_fixed(&r, j->audited, j->n_shards);
  px_reader_fixed(&r, j->recheck, j->n_shards);
  px_reader_fixed(&r, j->acc_prov, (size_t)j->n_shards * PX_PK_LEN);
  px_reader_fixed(&r, j->auditor, (size_t)j->n_shards * PX_PK_LEN);
  uint32_t ncm = px_reader_u32(&r);
  if (ncm > 16u * PX_MARKET_MAX_SHARDS) px_reader_fail(&r, PX_EDECODE);
  for (uint32_t i = 0; i < ncm && !r.err; i++) {
    const uint8_t *cb;
    size_t cn;
    px_reader_bytes(&r, &cb, &cn, 4096);
    if (r.err || GROW(j->cm, j->n_cm, j->cap_cm)) {
      px_reader_fail(&r, r.err ? r.err : PX_ENOMEM);
      break;
    }
    rj_commit_t *c = &j->cm[j->n_cm];
    memset(c, 0, sizeof *c);
    if (px_commitment_decode(cb, cn, &c->c)) px_reader_fail(&r, PX_EDECODE);
    c->role = px_reader_u8(&r);
    c->st = px_reader_u8(&r);
    c->want_seed = px_reader_u8(&r);
    c->sent_height = px_reader_u64(&r);
    c->height = px_reader_u64(&r);
    if (c->st > RC_LOST || c->c.shard >= j->n_shards)
      px_reader_fail(&r, PX_EDECODE);
    j->n_cm++;
  }
  uint32_t np = px_reader_u32(&r);
  if (np > 16u * PX_MARKET_MAX_SHARDS) px_reader_fail(&r, PX_EDECODE);
  for (uint32_t i = 0; i < np && !r.err; i++) {
    if (GROW(j->pay, j->n_pay, j->cap_pay)) {
      px_reader_fail(&r, PX_ENOMEM);
      break;
    }
    rj_pay_t *p2 = &j->pay[j->n_pay];
    memset(p2, 0, sizeof *p2);
    p2->e.shard = px_reader_u32(&r);
    px_reader_fixed(&r, p2->e.provider, PX_PK_LEN);
    p2->e.amount = px_reader_u64(&r);
    p2->e.flags = px_reader_u8(&r);
    p2->st = px_reader_u8(&r);
    p2->sent_height = px_reader_u64(&r);
    if (p2->st > RP_DROPPED || p2->e.shard >= j->n_shards)
      px_reader_fail(&r, PX_EDECODE);
    j->n_pay++;
  }
  uint32_t nl = px_reader_u32(&r);
  if (nl > 4u * PX_MARKET_MAX_SHARDS) px_reader_fail(&r, PX_EDECODE);
  for (uint32_t i = 0; i < nl && !r.err; i++) {
    if (GROW(j->ls, j->n_ls, j->cap_ls)) {
      px_reader_fail(&r, PX_ENOMEM);
      break;
    }
    rj_lease_t *l = &j->ls[j->n_ls];
    memset(l, 0, sizeof *l);
    l->shard = px_reader_u32(&r);
    px_reader_fixed(&r, l->provider, PX_PK_LEN);
    l->role = px_reader_u8(&r);
    l->accepted = px_reader_u8(&r);
    l->sent = l->accepted;
    l->deadline = px_reader_u64(&r);
    if (l->shard >= j->n_shards) px_reader_fail(&r, PX_EDECODE);
    j->n_ls++;
  }
  uint32_t nd = px_reader_u32(&r);
  if (nd > PX_MARKET_MAX_SHARDS) px_reader_fail(&r, PX_EDECODE);
  for (uint32_t i = 0; i < nd && !r.err; i++) {
    uint32_t shard = px_reader_u32(&r);
    uint8_t a[PX_PK_LEN], b[PX_PK_LEN];
    px_reader_fixed(&r, a, PX_PK_LEN);
    px_reader_fixed(&r, b, PX_PK_LEN);
    if (r.err || shard >= j->n_shards) {
      px_reader_fail(&r, PX_EDECODE);
      break;
    }
    if (GROW(j->dp, j->n_dp, j->cap_dp)) {
      px_reader_fail(&r, PX_ENOMEM);
      break;
    }
    rj_dispute_t *d = &j->dp[j->n_dp++];
    memset(d, 0, sizeof *d);
    d->shard = shard;
    memcpy(d->pk[0], a, PX_PK_LEN);
    memcpy(d->pk[1], b, PX_PK_LEN);
    d->phase = RD_WAIT_CHAIN; /* games restart from scratch */
  }
  uint32_t nx = px_reader_u32(&r);
  if (nx > PX_SCHED_MAX_PROVIDERS) px_reader_fail(&r, PX_EDECODE);
  if (!r.err && nx) {
    j->expired = px_calloc(nx, PX_PK_LEN);
    if (!j->expired)
      px_reader_fail(&r, PX_ENOMEM);
    else
      px_reader_fixed(&r, j->expired, (size_t)nx * PX_PK_LEN);
    j->n_expired = nx;
  }
  uint32_t nsus = px_reader_u32(&r);
  if (nsus > PX_SCHED_MAX_PROVIDERS) px_reader_fail(&r, PX_EDECODE);
  if (!r.err && nsus) {
    j->suspect = px_calloc(nsus, PX_PK_LEN);
    if (!j->suspect)
      px_reader_fail(&r, PX_ENOMEM);
    else
      px_reader_fixed(&r, j->suspect, (size_t)nsus * PX_PK_LEN);
    j->n_suspect = nsus;
  }
  j->n_events = px_reader_u32(&r);
  uint32_t ne = j->n_events < PX_REQ_EVENTS ? j->n_events : PX_REQ_EVENTS;
  for (uint32_t i = 0; i < ne && !r.err; i++)
    px_reader_str(&r, j->events[(j->n_events - ne + i) % PX_REQ_EVENTS],
                  PX_REQ_EVENT_LEN);
  return px_reader_finish(&r);
}

static int result_sync(rj_job_t *j) {
  if (j->res_fd >= 0 && fsync(j->res_fd)) return px_err_from_errno(errno);
  return 0;
}

/* The scheduler (if any) and the state record, each atomically. */
static void remove_res_files(rj_job_t *j, uint32_t shard);
static void res_name(uint32_t shard, const uint8_t out[PX_HASH_LEN], char *name,
                     size_t cap);

/* tmp + rename without fsync: flush_pending makes a whole batch durable
 * with one syncfs instead of two fsyncs per file. */
static int write_unsynced(const char *path, const void *p, size_t n) {
  char tmp[4600];
  int k = snprintf(tmp, sizeof tmp, "%s.tmp", path);
  if (k < 0 || (size_t)k >= sizeof tmp) return PX_ETOOBIG;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return px_err_from_errno(errno);
  ssize_t w = write(fd, p, n);
  int rc = w == (ssize_t)n ? 0 : w < 0 ? px_err_from_errno(errno) : PX_EIO;
  if (close(fd) && !rc) rc = px_err_from_errno(errno);
  if (!rc && rename(tmp, path)) rc = px_err_from_errno(errno);
  if (rc) unlink(tmp);
  return rc;
}

static int flush_pending(rj_job_t *j) {
  if (!j->n_pend) return 0;
  char dir[4400];
  int rc = job_path(j, "res", dir, sizeof dir);
  if (!rc) rc = px_mkdir_p(dir, 0700);
  size_t i = 0, written = 0;
  for (; i < j->n_pend && !rc; i++) {
    struct rj_res *pr = &j->pend[i];
    if (j->accepted[pr->shard] != 1 && j->accepted[pr->shard] != 2) {
      char name[64], path[4500];
      res_name(pr->shard, pr->output, name, sizeof name);
      rc = job_path(j, name, path, sizeof path);
      if (!rc) rc = write_unsynced(path, pr->data, pr->len);
      if (rc) break;
      written++;
    }
    px_free(pr->data);
  }
  /* one syncfs makes every file (data and rename) durable before the
   * state that may refer to them is written */
  if (written) {
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int src = dfd < 0 || syncfs(dfd) ? px_err_from_errno(errno) : 0;
    if (dfd >= 0) close(dfd);
    if (!rc) rc = src;
  }
  /* keep what could not be written for the next try */
  memmove(j->pend, j->pend + i, (j->n_pend - i) * sizeof *j->pend);
  j->n_pend -= i;
  return rc;
}

static int save_job(rj_job_t *j) {
  px_buf_t b;
  px_buf_init(&b, 0);
  /* res/ files first, then result.f32 synced: the state saved after them
   * never refers to data that is not on disk */
  int rc = flush_pending(j);
  if (!rc) rc = result_sync(j);
  if (!rc && j->sched) {
    rc = px_sched_save(j->sched, &b);
    if (!rc) rc = write_file(j, "sched", b.data, b.len);
  }
  px_buf_reset(&b);
  if (!rc) rc = state_encode(j, &b);
  if (!rc) rc = write_file(j, "state", b.data, b.len);
  px_buf_release(&b);
  if (rc) {
    PX_LOGE(LOGMOD, "job %.16s: cannot save its state in %s: %s", j->hex,
            j->dir, px_strerror(rc));
    return rc;
  }
  j->dirty = 0;
  /* accepted shards are durable in result.f32 now: drop their res files
   * (one pass over res/ for all of them, not one per shard) */
  remove_res_files(j, UINT32_MAX);
  for (uint32_t i = 0; i < j->n_shards; i++)
    if (j->accepted[i] == 1) j->accepted[i] = 2;
  return 0;
}

static int manifest_encode(const px_market_manifest_t *m, px_buf_t *out) {
  px_writer_t w;
  px_writer_init(&w, out);
  px_writer_u32(&w, m->n_layers);
  px_writer_fixed(&w, m->layer_ref, (size_t)m->n_layers * PX_HASH_LEN);
  return px_writer_finish(&w);
}

static int manifest_decode(const uint8_t *p, size_t n,
                           px_market_manifest_t *m) {
  px_reader_t r;
  px_reader_init(&r, p, n);
  memset(m, 0, sizeof *m);
  m->n_layers = px_reader_u32(&r);
  if (m->n_layers < 1 || m->n_layers > PX_MARKET_MAX_LAYERS)
    px_reader_fail(&r, PX_EDECODE);
  if (!r.err)
    px_reader_fixed(&r, m->layer_ref, (size_t)m->n_layers * PX_HASH_LEN);
  return px_reader_finish(&r);
}

static void job_free(rj_job_t *j) {
  if (!j) return;
  px_sched_free(j->sched);
  px_free(j->accepted);
  px_free(j->audited);
  px_free(j->recheck);
  px_free(j->suspect);
  px_free(j->acc_prov);
  px_free(j->auditor);
  px_free(j->cm);
  px_free(j->pay);
  px_free(j->ls);
  for (size_t i = 0; i < j->n_dp; i++)
    px_reqd_release(&j->dp[i]);
  px_free(j->dp);
  px_free(j->expired);
  for (size_t i = 0; i < j->n_pend; i++)
    px_free(j->pend[i].data);
  px_free(j->pend);
  px_net_free(j->net);
  px_free(j->input);
  if (j->res_fd >= 0) close(j->res_fd);
  px_free(j);
}

static rj_job_t *job_new(px_requester_t *r, const px_job_spec_t *spec) {
  rj_job_t *j = px_calloc(1, sizeof *j);
  if (!j) return NULL;
  j->res_fd = -1;
  j->spec = *spec;
  if (px_job_spec_id(spec, j->id)) {
    px_free(j);
    return NULL;
  }
  px_hex_encode(j->id, PX_HASH_LEN, j->hex);
  snprintf(j->dir, sizeof j->dir, "%s/%s", r->jobs_dir, j->hex);
  j->n_shards = px_job_shard_count(spec);
  if (alloc_shards(j)) {
    job_free(j);
    return NULL;
  }
  return j;
}

int px_req_state_roundtrip(const px_job_spec_t *spec, const uint8_t *p,
                           size_t n, px_buf_t *out) {
  px_requester_t r;
  memset(&r, 0, sizeof r);
  if (px_job_spec_check(spec)) return PX_EINVAL;
  rj_job_t *j = job_new(&r, spec);
  if (!j) return PX_ENOMEM;
  int rc = state_decode(j, p, n);
  if (!rc) rc = state_encode(j, out);
  job_free(j);
  return rc;
}

static int open_result(rj_job_t *j) {
  if (j->res_fd >= 0) return 0;
  char path[4400];
  int rc = job_path(j, "result.f32", path, sizeof path);
  if (rc) return rc;
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return px_err_from_errno(errno);
  off_t size = (off_t)j->spec.n_samples * j->classes * (off_t)sizeof(float);
  struct stat st;
  if (fstat(fd, &st) || (st.st_size != size && ftruncate(fd, size))) {
    rc = px_err_from_errno(errno);
    close(fd);
    return rc;
  }
  j->res_fd = fd;
  return 0;
}

/* ---- model and input ---------------------------------------------------- */

int px_req_load_data(px_requester_t *r, rj_job_t *j) {
  if (j->net && j->input) return 0;
  char path[4400];
  int rc = px_blobstore_path(r->m->blobs, j->spec.model, path, sizeof path);
  if (!rc && !j->net) rc = px_net_load(path, &j->net);
  if (rc) {
    PX_LOGE(LOGMOD, "job %.16s: cannot load the model blob %s: %s", j->hex,
            path, px_strerror(rc));
    return rc;
  }
  uint8_t *data = NULL;
  size_t n = 0;
  rc = px_blobstore_read(r->m->blobs, j->spec.input, &data, &n);
  if (!rc && (n != j->spec.input_size || n != (size_t)j->spec.n_samples *
                                                  px_net_input_size(j->net) *
                                                  sizeof(float)))
    rc = PX_EDECODE;
  if (rc) {
    px_free(data);
    PX_LOGE(LOGMOD, "job %.16s: cannot read the input blob: %s", j->hex,
            px_strerror(rc));
    return rc;
  }
  j->in_size = px_net_input_size(j->net);
  j->input = (float *)data; /* px_malloc memory is suitably aligned */
  return 0;
}

/* ---- p2p ---------------------------------------------------------------- */

/* Ask the p2p core to reach a provider at its registered address. */
static void dial_provider(px_requester_t *r, const uint8_t pk[PX_PK_LEN]) {
  const px_ledger_state_t *s = px_chain_state(r->m->env.chain);
  px_provider_rec_t rec;
  if (!s || px_market_provider(s, pk, &rec) || !rec.reg.addr[0]) return;
  (void)px_p2p_add_bootstrap(r->m->env.p2p, rec.reg.addr);
}

int px_req_send(px_requester_t *r, rj_job_t *j, const uint8_t pk[PX_PK_LEN],
                uint16_t method, const px_buf_t *payload, uint8_t kind,
                uint32_t shard, uint32_t aux, uint64_t timeout_ms,
                uint64_t *req_id) {
  if (GROW(r->rq, r->n_rq, r->cap_rq)) return PX_ENOMEM;
  uint64_t id = 0;
  int rc = px_p2p_request(r->m->env.p2p, pk, method, payload->data,
                          payload->len, timeout_ms, loop_now(r), &id);
  if (rc) {
    if (rc == PX_ENOTFOUND) dial_provider(r, pk);
    return rc;
  }
  rj_req_t *q = &r->rq[r->n_rq++];
  memset(q, 0, sizeof *q);
  q->req_id = id;
  q->kind = kind;
  memcpy(q->job_id, j->id, PX_HASH_LEN);
  q->shard = shard;
  memcpy(q->provider, pk, PX_PK_LEN);
  q->aux = aux;
  if (req_id) *req_id = id;
  return 0;
}

static void send_leases(px_requester_t *r, rj_job_t *j) {
  uint64_t now = loop_now(r), t = px_req_now(j);
  for (size_t i = 0; i < j->n_ls; i++) {
    rj_lease_t *l = &j->ls[i];
    if (l->sent || l->retry_ms > now || l->deadline <= t) continue;
    px_mkt_lease_t m;
    memset(&m, 0, sizeof m);
    memcpy(m.job_id, j->id, PX_HASH_LEN);
    m.shard = l->shard;
    m.role = l->role;
    m.model_size = j->model_size;
    m.budget_ms = l->deadline - t;
    px_buf_t b;
    px_buf_init(&b, 0);
    uint64_t id;
    int rc = px_mkt_lease_encode(&m, &b);
    if (!rc)
      rc = px_req_send(r, j, l->provider, PX_MKT_METHOD_LEASE, &b, RQ_LEASE,
                       l->shard, l->role, 0, &id);
    px_buf_release(&b);
    if (rc) {
      l->retry_ms = now + 1000; /* not connected yet: the lease may expire */
      continue;
    }
    l->sent = 1;
    l->req_id = id;
  }
}

/* ---- scheduler effects -------------------------------------------------- */

static void res_name(uint32_t shard, const uint8_t out[PX_HASH_LEN], char *name,
                     size_t cap) {
  char h[17];
  hex16(out, h);
  snprintf(name, cap, "res/%u-%s.f32", shard, h);
}

/* Suspects.  Under audit:p (and replicate:1) a shard is accepted unaudited
 * with probability 1-p, so a provider caught lying once may have lied on
 * shards already accepted.  The scheduler cannot take an acceptance back;
 * the requester, which holds the model and the input, re-runs every
 * unaudited shard it accepted from a caught provider (recheck[]), replaces
 * a wrong result in result.f32 with its own, and withholds that payment.
 * Payments other than these go out only once the scheduler has settled,
 * so a withheld one was never sent. */
static int is_suspect(const rj_job_t *j, const uint8_t pk[PX_PK_LEN]) {
  for (size_t i = 0; i < j->n_suspect; i++)
    if (!memcmp(j->suspect[i], pk, PX_PK_LEN)) return 1;
  return 0;
}

static int needs_recheck(const rj_job_t *j, uint32_t shard) {
  if (j->spec.policy == PX_VERIFY_REPLICATE && j->spec.policy_param > 1)
    return 0; /* k agreeing results, at least one honest */
  return !j->audited[shard];
}

static void add_suspect(rj_job_t *j, const uint8_t pk[PX_PK_LEN]) {
  if (is_suspect(j, pk) || j->n_suspect >= PX_SCHED_MAX_PROVIDERS) return;
  uint8_t(*v)[PX_PK_LEN] =
      px_realloc(j->suspect, (j->n_suspect + 1) * PX_PK_LEN);
  if (!v) return;
  j->suspect = v;
  memcpy(j->suspect[j->n_suspect++], pk, PX_PK_LEN);
  uint32_t n = 0;
  for (uint32_t i = 0; i < j->n_shards; i++)
    if (j->accepted[i] && !memcmp(j->acc_prov[i], pk, PX_PK_LEN) &&
        needs_recheck(j, i) && !j->recheck[i])
      j->recheck[i] = 1, n++;
  char hp[17];
  hex16(pk, hp);
  if (n)
    px_req_event(j, "%s was caught: re-checking %u shard%s accepted from it",
                 hp, n, n == 1 ? "" : "s");
  j->dirty = 1;
}

static void on_accept(rj_job_t *j, const px_sched_fx_t *fx) {
  char name[64], path[4400];
  res_name(fx->shard, fx->output, name, sizeof name);
  uint8_t *data = NULL;
  size_t n = 0;
  size_t want = (size_t)px_job_shard_samples(&j->spec, fx->shard) * j->classes *
                sizeof(float);
  int rc = job_path(j, name, path, sizeof path);
  const uint8_t *src = NULL;
  for (size_t i = 0; i < j->n_pend && !src; i++)
    if (j->pend[i].shard == fx->shard &&
        !memcmp(j->pend[i].output, fx->output, PX_HASH_LEN))
      src = j->pend[i].data, n = j->pend[i].len;
  if (!rc && !src) {
    rc = px_file_read_all(path, want + 1, &data, &n);
    src = data;
  }
  if (!rc && n != want) rc = PX_EDECODE;
  if (!rc) rc = open_result(j);
  if (!rc) {
    off_t off = (off_t)fx->shard * j->spec.shard_size * j->classes *
                (off_t)sizeof(float);
    ssize_t w = pwrite(j->res_fd, src, n, off);
    if (w != (ssize_t)n) rc = w < 0 ? px_err_from_errno(errno) : PX_EIO;
  }
  px_free(data);
  char hp[17];
  hex16(fx->provider, hp);
  if (rc) {
    PX_LOGE(LOGMOD,
            "job %.16s: shard %u accepted but its logits cannot be "
            "stored (%s): %s",
            j->hex, fx->shard, path, px_strerror(rc));
    return;
  }
  j->accepted[fx->shard] = 1;
  memcpy(j->acc_prov[fx->shard], fx->provider, PX_PK_LEN);
  if (is_suspect(j, fx->provider) && needs_recheck(j, fx->shard))
    j->recheck[fx->shard] = 1;
  if (j->audited[fx->shard]) {
    char ha[17];
    hex16(j->auditor[fx->shard], ha);
    px_req_event(j, "shard %u audited by %s: ok", fx->shard, ha);
  }
  PX_LOGI(LOGMOD, "job %.16s: shard %u accepted (%s)", j->hex, fx->shard, hp);
}

/* The res files of `shard`, or with UINT32_MAX of every shard whose
 * accepted[] is 1 (accepted since the last save). */
static void remove_res_files(rj_job_t *j, uint32_t shard) {
  char dir[4400];
  if (job_path(j, "res", dir, sizeof dir)) return;
  DIR *d = opendir(dir);
  if (!d) return;
  char pre[16];
  int pl = snprintf(pre, sizeof pre, "%u-", shard);
  struct dirent *e;
  while ((e = readdir(d))) {
    if (shard == UINT32_MAX) {
      char *end;
      unsigned long k = strtoul(e->d_name, &end, 10);
      if (end == e->d_name || *end != '-' || k >= j->n_shards ||
          j->accepted[k] != 1)
        continue;
    } else if (strncmp(e->d_name, pre, (size_t)pl)) {
      continue;
    }
    char p[4700];
    snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
    unlink(p);
  }
  closedir(d);
}

static void add_expired(rj_job_t *j, const uint8_t pk[PX_PK_LEN]) {
  for (size_t i = 0; i < j->n_expired; i++)
    if (!memcmp(j->expired[i], pk, PX_PK_LEN)) return;
  if (j->n_expired >= PX_SCHED_MAX_PROVIDERS) return;
  uint8_t(*v)[PX_PK_LEN] =
      px_realloc(j->expired, (j->n_expired + 1) * PX_PK_LEN);
  if (!v) return;
  j->expired = v;
  memcpy(j->expired[j->n_expired++], pk, PX_PK_LEN);
}

static void perform(px_requester_t *r, rj_job_t *j, const px_sched_fx_t *fx) {
  char hp[17];
  hex16(fx->provider, hp);
  switch (fx->type) {
  case PX_SCHED_FX_ASSIGN:
  case PX_SCHED_FX_AUDIT: {
    if (GROW(j->ls, j->n_ls, j->cap_ls)) return;
    rj_lease_t *l = &j->ls[j->n_ls++];
    memset(l, 0, sizeof *l);
    l->shard = fx->shard;
    memcpy(l->provider, fx->provider, PX_PK_LEN);
    l->role = fx->type == PX_SCHED_FX_AUDIT ? PX_MKT_ROLE_AUDITOR
                                            : PX_MKT_ROLE_WORKER;
    l->deadline = fx->deadline_ms;
    if (fx->type == PX_SCHED_FX_AUDIT) {
      j->audited[fx->shard] = 1;
      memcpy(j->auditor[fx->shard], fx->provider, PX_PK_LEN);
    }
    PX_LOGI(LOGMOD, "job %.16s: shard %u -> %s (%s%s)", j->hex, fx->shard, hp,
            fx->type == PX_SCHED_FX_AUDIT ? "auditor" : "worker",
            fx->reoffer ? ", re-offered" : "");
    break;
  }
  case PX_SCHED_FX_EXPIRED: {
    rj_lease_t *l = find_lease(j, fx->shard, fx->provider);
    if (l) {
      /* best effort: tell the provider to drop it (CANCEL carries the
       * LEASE encoding) */
      px_mkt_lease_t m;
      memset(&m, 0, sizeof m);
      memcpy(m.job_id, j->id, PX_HASH_LEN);
      m.shard = l->shard;
      m.role = l->role;
      m.model_size = j->model_size;
      m.budget_ms = 1;
      px_buf_t b;
      px_buf_init(&b, 0);
      if (!px_mkt_lease_encode(&m, &b))
        (void)px_p2p_request(r->m->env.p2p, l->provider, PX_MKT_METHOD_CANCEL,
                             b.data, b.len, 0, loop_now(r), NULL);
      px_buf_release(&b);
      drop_lease(j, l);
    }
    add_expired(j, fx->provider);
    px_req_event(j, "shard %u: lease to %s expired", fx->shard, hp);
    break;
  }
  case PX_SCHED_FX_WANT_SEED: {
    rj_commit_t *c = px_req_find_commit(j, fx->shard, fx->provider);
    if (c) c->want_seed = 1;
    break;
  }
  case PX_SCHED_FX_ACCEPT:
    on_accept(j, fx);
    break;
  case PX_SCHED_FX_PAY: {
    if (GROW(j->pay, j->n_pay, j->cap_pay)) return;
    rj_pay_t *p = &j->pay[j->n_pay++];
    memset(p, 0, sizeof *p);
    p->e.shard = fx->shard;
    memcpy(p->e.provider, fx->provider, PX_PK_LEN);
    p->e.amount = fx->amount;
    if (j->audited[fx->shard]) {
      int aud = !memcmp(j->auditor[fx->shard], fx->provider, PX_PK_LEN) &&
                memcmp(j->acc_prov[fx->shard], fx->provider, PX_PK_LEN);
      p->e.flags = aud ? PX_SETTLE_AUDITOR : PX_SETTLE_AUDITED;
    }
    break;
  }
  case PX_SCHED_FX_DISPUTE:
    px_reqd_start(r, j, fx->shard, fx->provider, fx->other);
    break;
  case PX_SCHED_FX_SLASH: {
    add_suspect(j, fx->provider);
    px_sched_stats_t st;
    px_sched_stats(j->sched, &st);
    j->slashed = st.slashed; /* distinct providers */
    break;
  }
  case PX_SCHED_FX_SETTLE: {
    px_sched_stats_t st;
    px_sched_stats(j->sched, &st);
    j->phase = RJ_SETTLING;
    j->paid_total = fx->amount;
    j->refund = fx->refund;
    if (st.accepted == st.shards)
      px_req_event(j, "all shards done: paying %llu, refund %llu",
                   (unsigned long long)fx->amount,
                   (unsigned long long)fx->refund);
    else
      px_req_event(j,
                   "deadline reached with %u of %u shards accepted "
                   "(incomplete): paying %llu, refund %llu",
                   st.accepted, st.shards, (unsigned long long)fx->amount,
                   (unsigned long long)fx->refund);
    break;
  }
  }
  j->dirty = 1;
}

void px_req_feed(px_requester_t *r, rj_job_t *j, px_sched_event_t *ev) {
  if (!j->sched || px_sched_done(j->sched)) return;
  ev->now_ms = px_req_now(j);
  int rc = px_sched_handle(j->sched, ev);
  if (rc)
    PX_LOGD(LOGMOD, "job %.16s: scheduler refused event %d for shard %u: %s",
            j->hex, ev->type, ev->shard, px_strerror(rc));
  px_sched_fx_t fx;
  int any = 0;
  while (px_sched_poll(j->sched, &fx)) {
    perform(r, j, &fx);
    any = 1;
  }
  if (any || (ev->type != PX_SCHED_EV_TICK && ev->type != PX_SCHED_EV_HEIGHT))
    j->dirty = 1; /* saved by the next tick or block (save_job) */
  if (any) send_leases(r, j);
}

/* ---- opening the scheduler when JOB_OPEN is on chain -------------------- */

static int build_sched(px_requester_t *r, rj_job_t *j,
                       const px_ledger_state_t *s) {
  px_provider_rec_t *recs = NULL;
  size_t n = 0;
  int rc = px_market_providers(s, &recs, &n);
  if (rc == PX_ENOTFOUND) rc = 0, n = 0;
  if (rc) return rc;
  px_provider_info_t *info = px_calloc(n ? n : 1, sizeof *info);
  if (!info) {
    px_free(recs);
    return PX_ENOMEM;
  }
  size_t k = 0;
  for (size_t i = 0; i < n && k < PX_SCHED_MAX_PROVIDERS; i++) {
    const px_provider_rec_t *p = &recs[i];
    if (!p->active || !memcmp(p->pk, r->m->key.pk, PX_PK_LEN)) continue;
    if (p->reg.slots < 1 || p->reg.price < 1) continue;
    px_account_t acct;
    if (px_ledger_account(s, p->pk, &acct)) continue;
    px_provider_info_t *o = &info[k++];
    memcpy(o->id, p->pk, PX_PK_LEN);
    o->caps = p->reg.caps;
    o->price = p->reg.price;
    o->stake = acct.stake;
    o->reputation = px_provider_reputation(p);
    o->speed = p->reg.speed ? p->reg.speed : 1;
    o->slots = p->reg.slots;
  }
  px_free(recs);
  px_sched_opts_t opts;
  px_sched_opts_default(&opts);
  rc = px_sched_new(&j->spec, &opts, info, k, j->escrow, &j->sched);
  px_free(info);
  if (rc) return rc;
  px_req_event(j, "open on chain at height %llu: %u shards, %zu providers",
               (unsigned long long)j->open_height, j->n_shards, k);
  if (!k)
    PX_LOGW(LOGMOD,
            "job %.16s: no active provider is registered; the job "
            "will wait until its deadline and refund",
            j->hex);
  return 0;
}

/* ---- results (DIRECT topic 20) ------------------------------------------ */

static int check_logits(const rj_job_t *j, const px_commitment_t *c,
                        const uint8_t *logits, size_t len) {
  uint32_t ns = px_job_shard_samples(&j->spec, c->shard);
  size_t per = (size_t)j->classes * sizeof(float);
  if (!ns || len != ns * per) return PX_EINVAL;
  uint8_t(*leaves)[PX_HASH_LEN] = px_malloc((size_t)ns * PX_HASH_LEN);
  if (!leaves) return PX_ENOMEM;
  for (uint32_t i = 0; i < ns; i++)
    px_merkle_leaf(leaves[i], logits + i * per, per);
  uint8_t root[PX_HASH_LEN];
  int rc = px_merkle_root((const uint8_t(*)[PX_HASH_LEN])leaves, ns, root);
  px_free(leaves);
  if (rc) return rc;
  return memcmp(root, c->output, PX_HASH_LEN) ? PX_EAUTH : 0;
}

static void reject(px_requester_t *r, rj_job_t *j, rj_lease_t *l,
                   const char *why) {
  char hp[17];
  hex16(l->provider, hp);
  px_req_event(j, "shard %u: %s refused or failed (%s)", l->shard, hp, why);
  px_sched_event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.type = PX_SCHED_EV_LEASE_REJECTED;
  ev.shard = l->shard;
  memcpy(ev.provider, l->provider, PX_PK_LEN);
  drop_lease(j, l);
  px_req_feed(r, j, &ev);
}

static void provider_gone(px_requester_t *r, rj_job_t *j,
                          const uint8_t pk[PX_PK_LEN], const char *why) {
  px_sched_event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.type = PX_SCHED_EV_PROVIDER_GONE;
  memcpy(ev.provider, pk, PX_PK_LEN);
  for (size_t i = 0; i < j->n_ls;)
    if (!memcmp(j->ls[i].provider, pk, PX_PK_LEN))
      drop_lease(j, &j->ls[i]);
    else
      i++;
  char hp[17];
  hex16(pk, hp);
  px_req_event(j, "provider %s gone (%s)", hp, why);
  px_req_feed(r, j, &ev);
}

int px_req_on_direct(px_requester_t *r, const px_p2p_fx_t *fx) {
  if (fx->topic != PX_MKT_TOPIC_RESULT) return 0;
  px_mkt_result_t res;
  int rc = px_mkt_result_decode(fx->data.data, fx->data.len, &res);
  char hs[17];
  hex16(fx->node_pk, hs);
  if (rc) {
    PX_LOGW(LOGMOD, "bad RESULT message from %s: %s", hs, px_strerror(rc));
    return 1;
  }
  rj_job_t *j = find_job(r, res.c.job_id);
  if (!j || !j->sched || j->phase != RJ_RUNNING) return 1;
  rj_lease_t *l = find_lease(j, res.c.shard, fx->node_pk);
  if (res.status != PX_MKT_OK) {
    if (l) reject(r, j, l, "provider reported a failure");
    return 1;
  }
  const px_commitment_t *c = &res.c;
  const char *bad = NULL;
  if (memcmp(c->provider, fx->node_pk, PX_PK_LEN))
    bad = "signed by another key than the sender";
  else if (px_commitment_verify(c))
    bad = "bad signature";
  else if (c->shard >= j->n_shards)
    bad = "shard out of range";
  else if (c->n_layers != j->manifest.n_layers)
    bad = "trace length differs from the manifest";
  else if ((rc = check_logits(j, c, res.logits, res.logits_len)))
    bad = rc == PX_EAUTH ? "logits do not hash to the committed output"
                         : "logits of the wrong size";
  if (bad) {
    PX_LOGW(LOGMOD, "job %.16s: result for shard %u from %s rejected: %s",
            j->hex, c->shard, hs, bad);
    if (l) reject(r, j, l, bad);
    return 1;
  }
  rj_commit_t *old = px_req_find_commit(j, c->shard, c->provider);
  if (old) {
    if (!px_commitment_conflict(&old->c, c)) {
      /* equivocation: two signed claims for one shard */
      px_buf_t b;
      px_buf_init(&b, 0);
      rc = px_evidence_encode(&old->c, c, &b);
      if (!rc)
        rc = px_market_submit(r->m, PX_TX_MARKET_EVIDENCE, b.data, b.len, NULL);
      px_buf_release(&b);
      px_req_event(j, "shard %u: %s equivocated; evidence %s", c->shard, hs,
                   rc ? "could not be submitted" : "submitted");
      add_suspect(j, c->provider);
      provider_gone(r, j, c->provider, "equivocation");
    }
    return 1; /* a duplicate or the second claim: nothing to schedule */
  }
  if (!l || !l->sent) {
    PX_LOGD(LOGMOD, "job %.16s: unsolicited result for shard %u from %s",
            j->hex, c->shard, hs);
    return 1;
  }
  /* keep the logits until the shard is accepted (res/ at the next save) */
  if (GROW(j->pend, j->n_pend, j->cap_pend) || GROW(j->cm, j->n_cm, j->cap_cm))
    return 1;
  struct rj_res *pr = &j->pend[j->n_pend];
  pr->data = px_malloc(res.logits_len);
  if (!pr->data) return 1;
  memcpy(pr->data, res.logits, res.logits_len);
  pr->len = res.logits_len;
  pr->shard = c->shard;
  memcpy(pr->output, c->output, PX_HASH_LEN);
  j->n_pend++;
  rj_commit_t *cm = &j->cm[j->n_cm++];
  memset(cm, 0, sizeof *cm);
  cm->c = *c;
  cm->role = l->role;
  cm->st = RC_PENDING;
  px_sched_event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.type = l->role == PX_MKT_ROLE_AUDITOR ? PX_SCHED_EV_AUDIT_RESULT
                                           : PX_SCHED_EV_COMMITTED;
  ev.shard = c->shard;
  memcpy(ev.provider, c->provider, PX_PK_LEN);
  memcpy(ev.output, c->output, PX_HASH_LEN);
  memcpy(ev.trace_root, c->trace_root, PX_HASH_LEN);
  ev.n_layers = c->n_layers;
  PX_LOGI(LOGMOD, "job %.16s: shard %u result from %s (%s)", j->hex, c->shard,
          hs, l->role == PX_MKT_ROLE_AUDITOR ? "auditor" : "worker");
  drop_lease(j, l);
  px_req_feed(r, j, &ev);
  return 1;
}

/* ---- responses ---------------------------------------------------------- */

static const char *reason_name(uint8_t reason) {
  switch (reason) {
  case PX_MKT_BUSY:
    return "busy";
  case PX_MKT_TOO_BIG:
    return "shard too big";
  case PX_MKT_UNKNOWN_JOB:
    return "job not open on its chain yet";
  case PX_MKT_NOT_PROVIDER:
    return "not a provider";
  case PX_MKT_BAD_MODEL:
    return "model does not match the manifest";
  case PX_MKT_PRICE:
    return "price ceiling below its price";
  default:
    return "internal error";
  }
}

int px_req_on_response(px_requester_t *r, const px_p2p_fx_t *fx) {
  size_t i = 0;
  while (i < r->n_rq && r->rq[i].req_id != fx->req_id)
    i++;
  if (i == r->n_rq) return 0;
  rj_req_t q = r->rq[i];
  r->rq[i] = r->rq[--r->n_rq];
  rj_job_t *j = find_job(r, q.job_id);
  if (!j || !j->sched) return 1;
  if (q.kind != RQ_LEASE) {
    px_reqd_on_response(r, j, &q, fx);
    return 1;
  }
  rj_lease_t *l = find_lease(j, q.shard, q.provider);
  if (!l || l->req_id != q.req_id) return 1;
  if (fx->err) { /* timeout or gone: try again while the lease lasts */
    l->sent = 0;
    l->retry_ms = loop_now(r) + 1000;
    return 1;
  }
  px_mkt_lease_reply_t rep;
  int rc = px_mkt_lease_reply_decode(fx->data.data, fx->data.len, &rep);
  if (rc || memcmp(rep.job_id, j->id, PX_HASH_LEN) || rep.shard != q.shard) {
    reject(r, j, l, "malformed lease reply");
    return 1;
  }
  if (rep.reason == PX_MKT_OK) {
    l->accepted = 1;
    return 1;
  }
  if (rep.reason == PX_MKT_UNKNOWN_JOB) {
    l->sent = 0;
    l->retry_ms = UINT64_MAX; /* after the next block */
    return 1;
  }
  reject(r, j, l, rep.message[0] ? rep.message : reason_name(rep.reason));
  return 1;
}

void px_req_on_peer(px_requester_t *r, const px_p2p_fx_t *fx) {
  size_t i = 0;
  while (i < r->n_peers && memcmp(r->peers[i].pk, fx->node_pk, PX_PK_LEN))
    i++;
  if (i == r->n_peers) {
    if (fx->kind != PX_P2P_FX_PEER_DOWN ||
        GROW(r->peers, r->n_peers, r->cap_peers))
      return;
    memset(&r->peers[i], 0, sizeof r->peers[i]);
    memcpy(r->peers[i].pk, fx->node_pk, PX_PK_LEN);
    r->n_peers++;
  }
  rj_peer_t *p = &r->peers[i];
  if (fx->kind == PX_P2P_FX_PEER_DOWN) {
    if (!p->down_ms) p->down_ms = loop_now(r) ? loop_now(r) : 1;
    return;
  }
  if (fx->kind == PX_P2P_FX_PEER_UP) {
    p->down_ms = 0;
    p->gone_sent = 0;
    for (rj_job_t *j = r->jobs; j; j = j->next)
      for (size_t k = 0; k < j->n_ls; k++)
        if (!memcmp(j->ls[k].provider, fx->node_pk, PX_PK_LEN) &&
            j->ls[k].retry_ms != UINT64_MAX)
          j->ls[k].retry_ms = 0;
    for (rj_job_t *j = r->jobs; j; j = j->next)
      if (j->phase == RJ_RUNNING) send_leases(r, j);
  }
}

/* ---- chain: commitments, seeds, settlement ------------------------------ */

static size_t max_tx(const px_ledger_state_t *s) {
  const px_ledger_params_t *p = px_ledger_params(s);
  return p ? p->max_tx_size : 4096;
}

static void submit_commits(px_requester_t *r, rj_job_t *j,
                           const px_ledger_state_t *s) {
  size_t per = (max_tx(s) > 600 ? max_tx(s) - 400 : 200) / 210;
  if (per < 1) per = 1;
  if (per > PX_MARKET_COMMIT_BATCH) per = PX_MARKET_COMMIT_BATCH;
  px_commitment_t *batch = px_malloc(per * sizeof *batch);
  size_t *idx = px_malloc(per * sizeof *idx);
  if (!batch || !idx) goto out;
  for (;;) {
    size_t n = 0;
    for (size_t i = 0; i < j->n_cm && n < per; i++)
      if (j->cm[i].st == RC_PENDING) idx[n] = i, batch[n++] = j->cm[i].c;
    if (!n) break;
    px_buf_t b;
    px_buf_init(&b, 0);
    int rc = px_market_payload_commit(&b, batch, n);
    if (!rc) rc = px_market_submit(r->m, PX_TX_JOB_COMMIT, b.data, b.len, NULL);
    px_buf_release(&b);
    if (rc) {
      PX_LOGW(LOGMOD, "job %.16s: JOB_COMMIT of %zu commitments failed: %s",
              j->hex, n, px_strerror(rc));
      break;
    }
    for (size_t k = 0; k < n; k++) {
      j->cm[idx[k]].st = RC_SUBMITTED;
      j->cm[idx[k]].sent_height = px_ledger_height(s);
    }
    j->dirty = 1;
  }
out:
  px_free(batch);
  px_free(idx);
}

static int same_claim(const px_commitment_t *a, const px_commitment_t *b) {
  return !memcmp(a->output, b->output, PX_HASH_LEN) &&
         !memcmp(a->trace_root, b->trace_root, PX_HASH_LEN) &&
         a->n_layers == b->n_layers;
}

static void check_commits(px_requester_t *r, rj_job_t *j,
                          const px_ledger_state_t *s) {
  uint64_t h = px_ledger_height(s);
  for (size_t i = 0; i < j->n_cm; i++) {
    rj_commit_t *c = &j->cm[i];
    if (c->st != RC_SUBMITTED && c->st != RC_ONCHAIN) continue;
    px_commit_rec_t rec;
    int rc = px_market_commitment(s, j->id, c->c.shard, c->c.provider, &rec);
    if (rc) {
      if (c->st == RC_SUBMITTED && h > c->sent_height + PX_REQ_RESUBMIT_BLOCKS)
        c->st = RC_PENDING, j->dirty = 1;
      continue;
    }
    if (c->st == RC_SUBMITTED) {
      c->st = RC_ONCHAIN;
      c->height = rec.height;
      j->dirty = 1;
    }
    if ((rec.lost || !same_claim(&rec.c, &c->c)) && c->st != RC_LOST) {
      c->st = RC_LOST;
      add_suspect(j, c->c.provider);
      j->dirty = 1;
    }
  }
  (void)r;
}

/* AUDIT_SEED for commitments whose block h and h+1 are committed.  A worker
 * commitment the chain holds as lost (its provider equivocated) is audited
 * for sure: the requester may audit any shard it likes (only its own audit
 * budget pays), so it derives a seed that selects the audit. */
static void feed_seeds(px_requester_t *r, rj_job_t *j,
                       const px_ledger_state_t *s) {
  uint64_t h = px_ledger_height(s);
  for (size_t i = 0; i < j->n_cm && j->sched; i++) {
    rj_commit_t *c = &j->cm[i];
    if (!c->want_seed || (c->st != RC_ONCHAIN && c->st != RC_LOST)) continue;
    if (!c->height || h < c->height + 1) continue;
    uint8_t bh[PX_HASH_LEN];
    if (px_chain_block_hash(r->m->env.chain, c->height + 1, bh)) continue;
    px_sched_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = PX_SCHED_EV_AUDIT_SEED;
    ev.shard = c->c.shard;
    px_market_audit_randomness(bh, ev.randomness);
    if (c->st == RC_LOST) {
      for (uint32_t k = 0; k < 100000; k++) {
        if (px_market_audit_selected(ev.randomness, j->id, c->c.shard,
                                     j->spec.policy_param))
          break;
        px_hash(ev.randomness, ev.randomness, PX_HASH_LEN);
      }
    }
    c->want_seed = 0;
    j->dirty = 1;
    if (px_market_audit_selected(ev.randomness, j->id, c->c.shard,
                                 j->spec.policy_param))
      PX_LOGI(LOGMOD,
              "job %.16s: shard %u selected for audit (seed of block "
              "%llu)",
              j->hex, c->c.shard, (unsigned long long)(c->height + 1));
    px_req_feed(r, j, &ev);
  }
}

static uint32_t rechecks_pending(const rj_job_t *j) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < j->n_shards; i++)
    n += j->recheck[i] != 0;
  return n;
}

/* Re-run up to `max` shards marked for a recheck (see add_suspect). */
static void do_rechecks(px_requester_t *r, rj_job_t *j, int max) {
  for (uint32_t i = 0; i < j->n_shards && max > 0; i++) {
    if (!j->recheck[i]) continue;
    max--;
    if (px_req_load_data(r, j) || open_result(j)) return;
    uint32_t ns = px_job_shard_samples(&j->spec, i);
    size_t len = (size_t)ns * j->classes * sizeof(float);
    float *mine = px_malloc(len), *got = px_malloc(len);
    px_shard_trace_t tr;
    off_t off =
        (off_t)i * j->spec.shard_size * j->classes * (off_t)sizeof(float);
    int rc = !mine || !got ? PX_ENOMEM : 0;
    if (!rc)
      rc = px_shard_run(j->net, r->compute,
                        j->input + (size_t)i * j->spec.shard_size * j->in_size,
                        ns, mine, &tr, NULL);
    if (!rc && pread(j->res_fd, got, len, off) != (ssize_t)len) rc = PX_EIO;
    char hp[17];
    hex16(j->acc_prov[i], hp);
    if (!rc && memcmp(mine, got, len)) {
      if (pwrite(j->res_fd, mine, len, off) != (ssize_t)len || result_sync(j)) {
        rc = PX_EIO;
      } else {
        for (size_t k = 0; k < j->n_pay; k++)
          if (j->pay[k].e.shard == i &&
              !memcmp(j->pay[k].e.provider, j->acc_prov[i], PX_PK_LEN) &&
              j->pay[k].st == RP_QUEUED)
            j->pay[k].st = RP_DROPPED;
        px_req_event(j,
                     "shard %u from %s re-checked: wrong, replaced by the "
                     "requester's own result, payment withheld",
                     i, hp);
      }
    } else if (!rc) {
      PX_LOGI(LOGMOD, "job %.16s: shard %u from %s re-checked: correct", j->hex,
              i, hp);
    }
    px_free(mine);
    px_free(got);
    if (rc) {
      PX_LOGE(LOGMOD, "job %.16s: re-check of shard %u failed: %s", j->hex, i,
              px_strerror(rc));
      return; /* try again later */
    }
    j->recheck[i] = 0;
    j->dirty = 1;
  }
}

static void submit_settle(px_requester_t *r, rj_job_t *j,
                          const px_ledger_state_t *s) {
  uint64_t h = px_ledger_height(s);
  /* refresh the payments against the chain's commit records */
  for (size_t i = 0; i < j->n_pay; i++) {
    rj_pay_t *p = &j->pay[i];
    if (p->st == RP_DONE || p->st == RP_DROPPED) continue;
    px_commit_rec_t rec;
    if (px_market_commitment(s, j->id, p->e.shard, p->e.provider, &rec))
      continue; /* commitment not on chain yet */
    if (rec.paid) {
      p->st = RP_DONE, j->dirty = 1;
    } else if (rec.lost) {
      char hp[17];
      hex16(p->e.provider, hp);
      px_req_event(j, "shard %u: payment to %s dropped (commitment lost)",
                   p->e.shard, hp);
      p->st = RP_DROPPED;
    } else if (p->st == RP_SUBMITTED &&
               h > p->sent_height + PX_REQ_RESUBMIT_BLOCKS) {
      p->st = RP_QUEUED, j->dirty = 1;
    }
  }
  size_t per = (max_tx(s) > 800 ? max_tx(s) - 500 : 100) / 48;
  if (per < 1) per = 1;
  if (per > PX_MARKET_SETTLE_BATCH) per = PX_MARKET_SETTLE_BATCH;
  px_settle_entry_t *e = px_malloc(per * sizeof *e);
  size_t *idx = px_malloc(per * sizeof *idx);
  int all_done = 1;
  for (size_t i = 0; i < j->n_pay; i++)
    all_done &= j->pay[i].st == RP_DONE || j->pay[i].st == RP_DROPPED;
  /* payments wait until the scheduler settled and every suspect shard was
   * re-checked (add_suspect) */
  int hold = j->phase != RJ_SETTLING || rechecks_pending(j);
  while (e && idx && !hold) {
    size_t n = 0;
    for (size_t i = 0; i < j->n_pay && n < per; i++) {
      rj_pay_t *p = &j->pay[i];
      px_commit_rec_t rec;
      if (p->st != RP_QUEUED ||
          px_market_commitment(s, j->id, p->e.shard, p->e.provider, &rec))
        continue;
      idx[n] = i;
      e[n++] = p->e;
    }
    if (!n) break;
    px_buf_t b;
    px_buf_init(&b, 0);
    int rc = px_market_payload_settle(&b, j->id, 0, e, n, NULL, 0);
    if (!rc) rc = px_market_submit(r->m, PX_TX_JOB_SETTLE, b.data, b.len, NULL);
    px_buf_release(&b);
    if (rc) {
      PX_LOGW(LOGMOD, "job %.16s: JOB_SETTLE of %zu payments failed: %s",
              j->hex, n, px_strerror(rc));
      break;
    }
    for (size_t k = 0; k < n; k++) {
      j->pay[idx[k]].st = RP_SUBMITTED;
      j->pay[idx[k]].sent_height = h;
    }
    j->dirty = 1;
  }
  px_free(e);
  px_free(idx);
  if (hold || !all_done) return;
  if (j->final_sent && h <= j->final_height + PX_REQ_RESUBMIT_BLOCKS) return;
  /* the contract wants the expired list sorted and distinct */
  for (size_t a = 1; a < j->n_expired; a++)
    for (size_t b = a;
         b > 0 && memcmp(j->expired[b - 1], j->expired[b], PX_PK_LEN) > 0;
         b--) {
      uint8_t t[PX_PK_LEN];
      memcpy(t, j->expired[b], PX_PK_LEN);
      memcpy(j->expired[b], j->expired[b - 1], PX_PK_LEN);
      memcpy(j->expired[b - 1], t, PX_PK_LEN);
    }
  size_t nx = j->n_expired;
  size_t room = max_tx(s) > 600 ? (max_tx(s) - 500) / PX_PK_LEN : 1;
  if (nx > room) nx = room;
  px_buf_t b;
  px_buf_init(&b, 0);
  int rc = px_market_payload_settle(
      &b, j->id, 1, NULL, 0, (const uint8_t(*)[PX_PK_LEN])j->expired, nx);
  if (!rc) rc = px_market_submit(r->m, PX_TX_JOB_SETTLE, b.data, b.len, NULL);
  px_buf_release(&b);
  if (rc) {
    PX_LOGW(LOGMOD, "job %.16s: final JOB_SETTLE failed: %s", j->hex,
            px_strerror(rc));
    return;
  }
  j->final_sent = 1;
  j->final_height = h;
  j->dirty = 1;
  PX_LOGI(LOGMOD, "job %.16s: final settlement submitted", j->hex);
}

void px_req_on_block(px_requester_t *r, const px_ledger_state_t *s,
                     const px_block_t *b, const px_tx_result_t *res) {
  uint64_t h = b->header.height;
  r->height = h;
  for (rj_job_t *j = r->jobs; j; j = j->next) {
    uint8_t phase0 = j->phase;
    px_job_rec_t jrec;
    if (j->phase == RJ_SUBMITTED && px_market_job(s, j->id, &jrec)) {
      /* not open: did our JOB_OPEN fail in this block? */
      for (size_t t = 0; t < b->n_txs; t++)
        if (!memcmp(b->txs[t].hash, j->open_tx, PX_HASH_LEN) && res[t].code) {
          j->phase = RJ_FAILED;
          px_req_event(j, "JOB_OPEN refused by the chain: %s",
                       px_strerror(res[t].code));
        }
    }
    if (j->phase == RJ_SUBMITTED) {
      px_job_rec_t rec;
      if (j->phase == RJ_SUBMITTED && !px_market_job(s, j->id, &rec)) {
        j->escrow = rec.escrow;
        j->open_height = rec.opened_height;
        int rc = build_sched(r, j, s);
        if (rc) {
          j->phase = RJ_FAILED;
          px_req_event(j, "cannot schedule: %s", px_strerror(rc));
        } else {
          j->phase = RJ_RUNNING;
        }
      } else if (j->phase == RJ_SUBMITTED && j->resubmit) {
        /* resumed before its JOB_OPEN was seen: send it again (a second
         * copy of an included one fails harmlessly as a duplicate) */
        px_buf_t pl;
        px_buf_init(&pl, 0);
        int rc = px_market_payload_job_open(&pl, &j->spec, &j->manifest);
        if (!rc)
          rc = px_market_submit(r->m, PX_TX_JOB_OPEN, pl.data, pl.len,
                                j->open_tx);
        px_buf_release(&pl);
        j->resubmit = 0;
        j->submit_height = h;
        j->dirty = 1;
        if (rc)
          PX_LOGW(LOGMOD, "job %.16s: JOB_OPEN could not be sent again: %s",
                  j->hex, px_strerror(rc));
      } else if (j->phase == RJ_SUBMITTED && h > j->submit_height + 50) {
        j->phase = RJ_FAILED;
        px_req_event(j, "JOB_OPEN not on chain after 50 blocks");
      }
      save_job(j);
    }
    if (j->phase != RJ_RUNNING && j->phase != RJ_SETTLING) continue;
    if (j->phase == RJ_RUNNING) {
      /* providers that left the registry */
      for (size_t t = 0; t < b->n_txs; t++)
        if (b->txs[t].type == PX_TX_PROVIDER_EXIT && !res[t].code)
          provider_gone(r, j, b->txs[t].sender, "left the registry");
      px_sched_event_t ev;
      memset(&ev, 0, sizeof ev);
      ev.type = PX_SCHED_EV_HEIGHT;
      ev.height = h;
      px_req_feed(r, j, &ev);
      for (size_t i = 0; i < j->n_ls; i++)
        if (j->ls[i].retry_ms == UINT64_MAX) j->ls[i].retry_ms = 0;
    }
    check_commits(r, j, s);
    submit_commits(r, j, s);
    feed_seeds(r, j, s);
    px_reqd_on_block(r, j, s, b, res);
    submit_settle(r, j, s);
    if (j->phase == RJ_SETTLING && j->final_sent) {
      px_job_rec_t rec;
      if (!px_market_job(s, j->id, &rec) && rec.state != PX_JOBREC_OPEN) {
        j->phase = RJ_SETTLED;
        j->paid_total = rec.paid;
        j->refund = rec.refunded;
        result_sync(j);
        uint32_t acc = 0;
        for (uint32_t i = 0; i < j->n_shards; i++)
          acc += j->accepted[i] != 0;
        if (acc == j->n_shards)
          px_req_event(j, "settled at height %llu: paid %llu, refund %llu",
                       (unsigned long long)h, (unsigned long long)rec.paid,
                       (unsigned long long)rec.refunded);
        else
          px_req_event(j,
                       "expired at height %llu, incomplete (%u of %u shards "
                       "accepted): paid %llu, refund %llu",
                       (unsigned long long)h, acc, j->n_shards,
                       (unsigned long long)rec.paid,
                       (unsigned long long)rec.refunded);
      }
    }
    if (j->phase == RJ_RUNNING) send_leases(r, j);
    /* A save costs several fsyncs on the loop thread; within a phase the
     * tick saves a dirty job every FLUSH_MS, so a block saves only when it
     * changed the phase (blocks come every ~100 ms: saving on each one
     * kept the loop, and with it the leases, waiting on the disk). */
    if (j->dirty && j->phase != phase0) save_job(j);
  }
}

void px_req_tick(px_requester_t *r, uint64_t now_ms) {
  (void)now_ms;
  uint64_t now = loop_now(r);
  /* providers disconnected for long are gone for every running job */
  for (size_t i = 0; i < r->n_peers; i++) {
    rj_peer_t *p = &r->peers[i];
    if (!p->down_ms || p->gone_sent || now - p->down_ms < PX_REQ_PEER_GONE_MS)
      continue;
    p->gone_sent = 1;
    for (rj_job_t *j = r->jobs; j; j = j->next)
      if (j->phase == RJ_RUNNING && j->sched) {
        int holds = 0;
        for (size_t k = 0; k < j->n_ls; k++)
          holds |= !memcmp(j->ls[k].provider, p->pk, PX_PK_LEN);
        if (holds) provider_gone(r, j, p->pk, "disconnected");
      }
  }
  const px_ledger_state_t *s = px_chain_state(r->m->env.chain);
  /* Commitments go to chain at once when no JOB_COMMIT of the job waits
   * for inclusion; otherwise they gather until the next block (on_block),
   * so batches grow with the load and an idle job waits for no timer. */
  for (rj_job_t *j = r->jobs; j && s; j = j->next) {
    if (j->phase != RJ_RUNNING || !j->sched) continue;
    int pending = 0, in_flight = 0;
    for (size_t i = 0; i < j->n_cm && !in_flight; i++) {
      pending |= j->cm[i].st == RC_PENDING;
      in_flight |= j->cm[i].st == RC_SUBMITTED;
    }
    if (pending && !in_flight) submit_commits(r, j, s);
  }
  if (now - r->last_tick < FLUSH_MS) return;
  r->last_tick = now;
  for (rj_job_t *j = r->jobs; j; j = j->next) {
    if (j->phase == RJ_RUNNING || j->phase == RJ_SETTLING) do_rechecks(r, j, 1);
    if (j->phase != RJ_RUNNING || !j->sched) {
      if (j->dirty) save_job(j);
      continue;
    }
    px_sched_event_t ev;
    memset(&ev, 0, sizeof ev);
    ev.type = PX_SCHED_EV_TICK;
    px_req_feed(r, j, &ev);
    send_leases(r, j);
    if (s) submit_commits(r, j, s);
    px_reqd_step(r, j, NULL); /* retries and the unreachable timeout */
    if (j->dirty) save_job(j);
  }
}

/* ---- commands ----------------------------------------------------------- */

static uint32_t count_accepted(const rj_job_t *j) {
  uint32_t n = 0;
  for (uint32_t i = 0; i < j->n_shards; i++)
    n += j->accepted[i] != 0;
  return n;
}

/* "settled" only when every shard was accepted; a job closed at its
 * deadline with shards missing is "expired" (paid for what was accepted,
 * the rest refunded; job_result refuses it as incomplete). */
static const char *phase_name(const rj_job_t *j) {
  switch (j->phase) {
  case RJ_SUBMITTED:
    return "open";
  case RJ_RUNNING:
    return "running";
  case RJ_SETTLING:
    return "settling";
  case RJ_SETTLED:
    return count_accepted(j) == j->n_shards ? "settled" : "expired";
  default:
    return "failed";
  }
}

static int parse_policy(const char *p, uint8_t *policy, uint32_t *param,
                        char *err, size_t cap) {
  if (!strncmp(p, "audit:", 6)) {
    char *end;
    errno = 0;
    double v = strtod(p + 6, &end);
    if (errno || *end || end == p + 6 || !(v > 0.0) || v > 1.0) {
      snprintf(err, cap, "policy %s: audit needs a probability in (0, 1]", p);
      return PX_EINVAL;
    }
    uint32_t bps = (uint32_t)(v * PX_MARKET_BPS + 0.5);
    if (bps < PX_MARKET_MIN_AUDIT_BPS) {
      snprintf(err, cap,
               "policy %s: audit probability below the protocol minimum "
               "%.2f",
               p, PX_MARKET_MIN_AUDIT_BPS / (double)PX_MARKET_BPS);
      return PX_EINVAL;
    }
    *policy = PX_VERIFY_AUDIT;
    *param = bps;
    return 0;
  }
  if (!strncmp(p, "replicate:", 10)) {
    uint64_t k;
    if (px_parse_u64(p + 10, &k) || k < 1 || k > PX_MARKET_MAX_REPLICAS) {
      snprintf(err, cap, "policy %s: replicate needs k in 1..%d", p,
               PX_MARKET_MAX_REPLICAS);
      return PX_EINVAL;
    }
    *policy = PX_VERIFY_REPLICATE;
    *param = (uint32_t)k;
    return 0;
  }
  snprintf(err, cap, "unknown policy \"%s\" (audit:P or replicate:K)", p);
  return PX_EINVAL;
}

static int save_counter(px_requester_t *r) {
  char path[4400], txt[32];
  snprintf(path, sizeof path, "%s/counter", r->jobs_dir);
  int n =
      snprintf(txt, sizeof txt, "%llu\n", (unsigned long long)r->job_counter);
  return px_file_write_atomic(path, txt, (size_t)n, 0600);
}

static void cmd_submit(px_requester_t *r, const char *arg, px_buf_t *out) {
  px_arena_t arena;
  px_arena_init(&arena, 4096, 1 << 20);
  px_json_t *root = NULL;
  char err[512] = "";
  px_net_t *net = NULL;
  float *x = NULL;
  uint8_t *model_bytes = NULL;
  rj_job_t *j = NULL;
  int rc = px_json_parse(&arena, arg ? arg : "", arg ? strlen(arg) : 0, NULL,
                         &root, NULL);
  if (rc || !root || root->type != PX_JSON_OBJECT) {
    reply_err(out, PX_EINVAL, "job_submit needs a JSON object argument");
    goto done;
  }
  static const char *known[] = {"kind",      "model",    "input",     "policy",
                                "max_price", "deadline", "shard_size"};
  for (size_t i = 0; i < root->n; i++) {
    int ok = 0;
    for (size_t k = 0; k < sizeof known / sizeof *known; k++)
      ok |= !strcmp(root->members[i].key, known[k]);
    if (!ok) {
      reply_err(out, PX_EINVAL, "job_submit: unknown key \"%s\"",
                root->members[i].key);
      goto done;
    }
  }
  const char *kind = "infer", *model = NULL, *input = NULL, *policy = NULL;
  uint64_t max_price = 0, deadline = 1000, shard_size = 250;
  if ((px_json_get_str(root, "kind", &kind) == PX_EDECODE) ||
      px_json_get_str(root, "model", &model) ||
      px_json_get_str(root, "input", &input) ||
      px_json_get_str(root, "policy", &policy) ||
      px_json_get_u64(root, "max_price", &max_price) ||
      px_json_get_u64(root, "deadline", &deadline) == PX_EDECODE ||
      px_json_get_u64(root, "shard_size", &shard_size) == PX_EDECODE) {
    reply_err(out, PX_EINVAL,
              "job_submit needs model, input, policy (strings) and max_price "
              "(integer); deadline and shard_size are optional integers");
    goto done;
  }
  if (strcmp(kind, "infer")) {
    reply_err(out, PX_EINVAL, "job kind \"%s\" is not supported (infer)", kind);
    goto done;
  }
  uint8_t pol;
  uint32_t param;
  if ((rc = parse_policy(policy, &pol, &param, err, sizeof err))) {
    reply_err(out, rc, "%s", err);
    goto done;
  }
  if (!max_price) {
    reply_err(out, PX_EINVAL, "max_price must be at least 1");
    goto done;
  }
  if (!deadline || deadline > 100000000) {
    reply_err(out, PX_EINVAL, "deadline must be 1..100000000 blocks");
    goto done;
  }
  if (!shard_size || shard_size > PX_MKT_MAX_SHARD_SAMPLES) {
    reply_err(out, PX_EINVAL, "shard_size must be 1..%u",
              PX_MKT_MAX_SHARD_SAMPLES);
    goto done;
  }
  if ((rc = px_net_load(model, &net))) {
    reply_err(out, rc, "cannot load model %s: %s", model, px_strerror(rc));
    goto done;
  }
  size_t in = px_net_input_size(net), n = 0, model_len = 0;
  if ((rc = px_input_load(input, in, &x, &n, err, sizeof err))) {
    reply_err(out, rc, "input %s", err);
    goto done;
  }
  if (n > PX_MARKET_MAX_SAMPLES) {
    reply_err(out, PX_ELIMIT, "%zu samples, at most %u", n,
              PX_MARKET_MAX_SAMPLES);
    goto done;
  }
  if ((n + shard_size - 1) / shard_size > PX_MARKET_MAX_SHARDS) {
    reply_err(out, PX_ELIMIT,
              "%zu samples in shards of %llu make more than %u shards; use "
              "larger shards",
              n, (unsigned long long)shard_size, PX_MARKET_MAX_SHARDS);
    goto done;
  }
  if ((rc = px_file_read_all(model, (size_t)1 << 31, &model_bytes,
                             &model_len))) {
    reply_err(out, rc, "cannot read model %s: %s", model, px_strerror(rc));
    goto done;
  }
  px_job_spec_t spec;
  memset(&spec, 0, sizeof spec);
  px_market_manifest_t man;
  uint64_t wps = 0;
  if ((rc = px_market_work_units(px_net_config(net), 1, &wps)) ||
      (rc = px_market_manifest(net, &man))) {
    reply_err(out, rc, "cannot describe model %s for the market: %s", model,
              px_strerror(rc));
    goto done;
  }
  if ((rc =
           px_blobstore_put(r->m->blobs, model_bytes, model_len, spec.model)) ||
      (rc = px_blobstore_put(r->m->blobs, x, n * in * sizeof(float),
                             spec.input))) {
    reply_err(out, rc, "cannot store the job's blobs: %s", px_strerror(rc));
    goto done;
  }
  const px_ledger_state_t *s = px_chain_state(r->m->env.chain);
  uint64_t height = s ? px_ledger_height(s) : 0;
  spec.kind = PX_JOB_INFER;
  memcpy(spec.requester, r->m->key.pk, PX_PK_LEN);
  spec.nonce = r->job_counter;
  spec.input_size = (uint64_t)n * in * sizeof(float);
  spec.n_samples = (uint32_t)n;
  spec.shard_size = (uint32_t)shard_size;
  spec.work_per_sample = wps ? wps : 1;
  spec.policy = pol;
  spec.policy_param = param;
  spec.price_ceiling = max_price;
  spec.deadline = height + deadline;
  uint64_t escrow = 0;
  if ((rc = px_job_spec_check(&spec)) ||
      (rc = px_market_escrow_required(&spec, &escrow))) {
    reply_err(out, rc,
              "invalid job: %s (is max_price times the work too large?)",
              px_strerror(rc));
    goto done;
  }
  px_account_t acct;
  if (s && !px_ledger_account(s, r->m->key.pk, &acct) &&
      acct.balance < escrow) {
    reply_err(out, PX_EFUNDS,
              "insufficient funds: the job needs an escrow of %llu, the "
              "balance is %llu",
              (unsigned long long)escrow, (unsigned long long)acct.balance);
    goto done;
  }
  j = job_new(r, &spec);
  if (!j) {
    reply_err(out, PX_ENOMEM, "out of memory");
    goto done;
  }
  j->manifest = man;
  j->escrow = escrow;
  j->classes = (uint32_t)px_net_config(net)->n_classes;
  j->model_size = model_len;
  j->submit_height = height;
  j->last_now = wall_ms();
  /* the counter first: a crash after it only skips a nonce */
  r->job_counter++;
  px_buf_t b;
  px_buf_init(&b, 0);
  rc = save_counter(r);
  if (!rc) rc = px_mkdir_p(j->dir, 0700);
  if (!rc) rc = px_job_spec_encode(&spec, &b);
  if (!rc) rc = write_file(j, "spec", b.data, b.len);
  px_buf_reset(&b);
  if (!rc) rc = manifest_encode(&man, &b);
  if (!rc) rc = write_file(j, "manifest", b.data, b.len);
  px_buf_reset(&b);
  if (!rc) rc = open_result(j);
  if (!rc) rc = save_job(j);
  if (!rc) rc = px_market_payload_job_open(&b, &spec, &man);
  if (!rc)
    rc = px_market_submit(r->m, PX_TX_JOB_OPEN, b.data, b.len, j->open_tx);
  px_buf_release(&b);
  if (rc) {
    reply_err(out, rc, "cannot open the job: %s", px_strerror(rc));
    if (j->dir[0]) {
      j->phase = RJ_FAILED;
      save_job(j);
    }
    goto done;
  }
  save_job(j);
  j->net = net;
  j->input = x;
  j->in_size = in;
  net = NULL;
  x = NULL;
  j->next = r->jobs;
  r->jobs = j;
  uint32_t shards = j->n_shards;
  px_req_event(j, "submitted: %u samples in %u shards, policy %s, escrow %llu",
               spec.n_samples, shards, policy, (unsigned long long)escrow);
  j = NULL;
  char tx[65];
  px_hex_encode(r->jobs->open_tx, PX_HASH_LEN, tx);
  px_buf_printf(out,
                "{\"ok\":true,\"job\":\"%s\",\"shards\":%u,\"escrow\":%llu,"
                "\"samples\":%u,\"tx\":\"%s\"}",
                r->jobs->hex, shards, (unsigned long long)escrow,
                spec.n_samples, tx);
done:
  job_free(j);
  px_net_free(net);
  px_free(x);
  px_free(model_bytes);
  px_arena_release(&arena);
}

static void cmd_status(px_requester_t *r, const char *arg, px_buf_t *out) {
  rj_job_t *j = find_job_hex(r, arg ? arg : "");
  if (!j) {
    reply_err(out, PX_ENOTFOUND, "no job %s here (job_list shows them)",
              arg ? arg : "");
    return;
  }
  px_sched_stats_t st;
  memset(&st, 0, sizeof st);
  if (j->sched) px_sched_stats(j->sched, &st);
  uint32_t accepted = 0;
  for (uint32_t i = 0; i < j->n_shards; i++)
    accepted += j->accepted[i] != 0;
  uint64_t paid_chain = 0;
  for (size_t i = 0; i < j->n_pay; i++)
    if (j->pay[i].st == RP_DONE) paid_chain += j->pay[i].e.amount;
  px_buf_printf(
      out,
      "{\"ok\":true,\"job\":\"%s\",\"state\":\"%s\",\"shards\":%u,"
      "\"accepted\":%u,\"running\":%u,\"audits\":%u,\"disputes\":%u,"
      "\"slashed\":%u,\"expiries\":%u,\"paid\":%llu,"
      "\"paid_on_chain\":%llu,\"escrow\":%llu,\"refund\":%llu,"
      "\"samples\":%u,\"classes\":%u,\"per_provider\":[",
      j->hex, phase_name(j), j->n_shards, accepted, st.running, st.audits,
      st.disputes, j->sched ? st.slashed : j->slashed, st.expiries,
      (unsigned long long)(j->phase == RJ_SETTLED || !j->sched ? j->paid_total
                                                               : st.paid),
      (unsigned long long)paid_chain, (unsigned long long)j->escrow,
      (unsigned long long)j->refund, j->spec.n_samples, j->classes);
  /* per provider: shards paid for (as worker or auditor) and amounts */
  int first = 1;
  for (size_t i = 0; i < j->n_pay; i++) {
    int seen = 0;
    for (size_t k = 0; k < i && !seen; k++)
      seen = !memcmp(j->pay[k].e.provider, j->pay[i].e.provider, PX_PK_LEN);
    if (seen) continue;
    uint32_t shards = 0, audits = 0;
    uint64_t paid = 0;
    for (size_t k = i; k < j->n_pay; k++)
      if (!memcmp(j->pay[k].e.provider, j->pay[i].e.provider, PX_PK_LEN) &&
          j->pay[k].st != RP_DROPPED) {
        if (j->pay[k].e.flags & PX_SETTLE_AUDITOR)
          audits++;
        else
          shards++;
        paid += j->pay[k].e.amount;
      }
    char hp[65];
    px_hex_encode(j->pay[i].e.provider, PX_PK_LEN, hp);
    px_buf_printf(out,
                  "%s{\"id\":\"%s\",\"shards\":%u,\"audits\":%u,"
                  "\"paid\":%llu}",
                  first ? "" : ",", hp, shards, audits,
                  (unsigned long long)paid);
    first = 0;
  }
  px_buf_printf(out, "],\"events\":[");
  uint32_t ne = j->n_events < PX_REQ_EVENTS ? j->n_events : PX_REQ_EVENTS;
  for (uint32_t i = 0; i < ne; i++) {
    if (i) px_buf_append(out, ",", 1);
    json_str(out, j->events[(j->n_events - ne + i) % PX_REQ_EVENTS]);
  }
  px_buf_printf(out, "]}");
}

static void cmd_result(px_requester_t *r, const char *arg, px_buf_t *out) {
  rj_job_t *j = find_job_hex(r, arg ? arg : "");
  if (!j) {
    reply_err(out, PX_ENOTFOUND, "no job %s here", arg ? arg : "");
    return;
  }
  uint32_t accepted = 0;
  for (uint32_t i = 0; i < j->n_shards; i++)
    accepted += j->accepted[i] != 0;
  char path[4400];
  job_path(j, "result.f32", path, sizeof path);
  px_buf_printf(out, "{\"ok\":true,\"job\":\"%s\",\"path\":", j->hex);
  json_str(out, path);
  px_buf_printf(out,
                ",\"samples\":%u,\"classes\":%u,\"complete\":%s,"
                "\"accepted\":%u,\"shards\":%u,\"state\":\"%s\"}",
                j->spec.n_samples, j->classes,
                accepted == j->n_shards ? "true" : "false", accepted,
                j->n_shards, phase_name(j));
}

static void cmd_list(px_requester_t *r, px_buf_t *out) {
  px_buf_printf(out, "{\"ok\":true,\"jobs\":[");
  int first = 1;
  for (rj_job_t *j = r->jobs; j; j = j->next) {
    uint32_t accepted = 0;
    for (uint32_t i = 0; i < j->n_shards; i++)
      accepted += j->accepted[i] != 0;
    px_buf_printf(out,
                  "%s{\"job\":\"%s\",\"state\":\"%s\",\"shards\":%u,"
                  "\"accepted\":%u}",
                  first ? "" : ",", j->hex, phase_name(j), j->n_shards,
                  accepted);
    first = 0;
  }
  px_buf_printf(out, "]}");
}

int px_req_command(px_requester_t *r, const char *cmd, const char *arg,
                   px_buf_t *out) {
  if (!strcmp(cmd, "job_submit"))
    cmd_submit(r, arg, out);
  else if (!strcmp(cmd, "job_status"))
    cmd_status(r, arg, out);
  else if (!strcmp(cmd, "job_result"))
    cmd_result(r, arg, out);
  else if (!strcmp(cmd, "job_list"))
    cmd_list(r, out);
  else
    return 0;
  return 1;
}

void px_req_status_json(px_requester_t *r, px_buf_t *out) {
  uint32_t n = 0, running = 0;
  for (rj_job_t *j = r->jobs; j; j = j->next) {
    n++;
    running += j->phase == RJ_RUNNING || j->phase == RJ_SETTLING ||
               j->phase == RJ_SUBMITTED;
  }
  px_buf_printf(out, "{\"jobs\":%u,\"active\":%u}", n, running);
}

/* ---- lifecycle ---------------------------------------------------------- */

static int load_job(px_requester_t *r, const char *hex) {
  char path[4400];
  uint8_t *p = NULL;
  size_t n = 0;
  px_job_spec_t spec;
  snprintf(path, sizeof path, "%s/%s/spec", r->jobs_dir, hex);
  int rc = px_file_read_all(path, 4096, &p, &n);
  if (!rc) rc = px_job_spec_decode(p, n, &spec);
  px_free(p);
  if (rc) return rc;
  rj_job_t *j = job_new(r, &spec);
  if (!j) return PX_ENOMEM;
  if (strcmp(j->hex, hex)) {
    job_free(j);
    return PX_EDECODE; /* directory name must be the spec's id */
  }
  snprintf(path, sizeof path, "%s/manifest", j->dir);
  rc = px_file_read_all(path, 1 << 16, &p, &n);
  if (!rc) rc = manifest_decode(p, n, &j->manifest);
  px_free(p);
  snprintf(path, sizeof path, "%s/state", j->dir);
  if (!rc) rc = px_file_read_all(path, (size_t)1 << 30, &p, &n);
  if (!rc) {
    rc = state_decode(j, p, n);
    px_free(p);
  }
  snprintf(path, sizeof path, "%s/sched", j->dir);
  if (!rc && (j->phase == RJ_RUNNING || j->phase == RJ_SETTLING)) {
    rc = px_file_read_all(path, (size_t)1 << 30, &p, &n);
    if (!rc) {
      rc = px_sched_load(p, n, &j->sched);
      px_free(p);
    }
  }
  if (rc) {
    job_free(j);
    return rc;
  }
  /* shards written before a crash whose res files survived */
  for (uint32_t i = 0; i < j->n_shards; i++)
    if (j->accepted[i] == 1) j->accepted[i] = 2;
  j->resubmit = j->phase == RJ_SUBMITTED;
  j->next = r->jobs;
  r->jobs = j;
  if (j->phase == RJ_RUNNING || j->phase == RJ_SETTLING ||
      j->phase == RJ_SUBMITTED)
    PX_LOGI(LOGMOD, "job %.16s resumed (%s)", j->hex, phase_name(j));
  return 0;
}

int px_req_open(px_market_t *m, px_requester_t **out) {
  *out = NULL;
  px_requester_t *r = px_calloc(1, sizeof *r);
  if (!r) return PX_ENOMEM;
  r->m = m;
  snprintf(r->jobs_dir, sizeof r->jobs_dir, "%s/jobs", m->home);
  int rc = px_mkdir_p(r->jobs_dir, 0700);
  if (rc) {
    PX_LOGE(LOGMOD, "cannot create %s: %s", r->jobs_dir, px_strerror(rc));
    px_free(r);
    return rc;
  }
  char path[4400];
  uint8_t *p = NULL;
  size_t n = 0;
  snprintf(path, sizeof path, "%s/counter", r->jobs_dir);
  if (!px_file_read_all(path, 64, &p, &n)) {
    while (n && (p[n - 1] == '\n' || p[n - 1] == ' '))
      p[--n] = 0;
    if (px_parse_u64((const char *)p, &r->job_counter))
      PX_LOGW(LOGMOD, "%s is not a number; job nonces restart at 0", path);
    px_free(p);
  }
  px_compute_opts_t co;
  memset(&co, 0, sizeof co);
  co.simd = -1;
  co.threads = 1;
  rc = px_compute_new(&co, &r->compute);
  if (rc) {
    px_free(r);
    return rc;
  }
  DIR *d = opendir(r->jobs_dir);
  if (d) {
    struct dirent *e;
    while ((e = readdir(d))) {
      if (strlen(e->d_name) != 2 * PX_HASH_LEN) continue;
      rc = load_job(r, e->d_name);
      if (rc)
        PX_LOGE(LOGMOD, "job %s in %s cannot be resumed: %s", e->d_name,
                r->jobs_dir, px_strerror(rc));
    }
    closedir(d);
  }
  *out = r;
  return 0;
}

void px_req_close(px_requester_t *r) {
  if (!r) return;
  for (rj_job_t *j = r->jobs; j; j = j->next)
    if (j->dirty) save_job(j);
}

void px_req_free(px_requester_t *r) {
  if (!r) return;
  while (r->jobs) {
    rj_job_t *j = r->jobs;
    r->jobs = j->next;
    job_free(j);
  }
  px_free(r->rq);
  px_free(r->peers);
  px_compute_free(r->compute);
  px_free(r);
}
