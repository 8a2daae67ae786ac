/*
 * provider.c — the provider role of the compute market (node/market_rt.h,
 * docs/market.md "Runtime and wire").
 *
 * Active while this node's key is a registered, active provider on chain
 * (checked at open and after every block, so a registration survives a
 * restart without any command).  A requester leases shards with LEASE
 * (method 21); the provider answers at once, accepting or refusing with a
 * reason (BUSY when its `slots` leases are taken, TOO_BIG, PRICE,
 * UNKNOWN_JOB when the job is not open on its own chain state yet, ...).
 * An accepted lease then moves through
 *
 *   NEW -> FETCH_MODEL (whole model blob, unless stored)
 *       -> FETCH_INPUT (the input chunks covering the shard's samples)
 *       -> QUEUED -> RUNNING (a worker thread: load the model, check its
 *          manifest against the job record, px_shard_run)
 *       -> DONE (loop thread: sign the commitment, RESULT as DIRECT topic
 *          PX_MKT_TOPIC_RESULT to the requester)
 *
 * Every chunk is verified on arrival (px_fetch).  The per-sample leaves of
 * every finished shard are kept (bounded, oldest dropped first, and dropped
 * once the job is closed on chain) to answer CHALLENGE (22) and REVEAL (23)
 * during disputes.  A lease that outlives its budget_ms is dropped.
 *
 * Threads: the loop thread owns every task; workers only touch a task
 * between taking it from the run queue and putting it on the done queue
 * (both under one mutex), then wake the loop with a uv_async.  Workers and
 * the async handle start with the first accepted lease (the loop is
 * running then) and stop in px_prov_close.  m->shards_busy counts accepted,
 * unfinished leases and the slots other modules hold.  Inference sessions
 * (session_provider.c) share the registered slots (px_prov_slot_take) and
 * the workers: px_prov_run queues a px_prov_job_t, taken before shards
 * (its steps are short), finished through the same async handle.
 *
 * market.fault (TEST ONLY, docs/market.md) makes this provider misbehave on
 * purpose so the integration tests can watch audits, disputes and slashing
 * work: wrong, perturb, lazy, slow, vanish, equivocate.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "plexus/codec.h"
#include "plexus/json.h"
#include "plexus/model.h"
#include "node/market_rt.h"
#include "base/px_internal.h"

#define LOGMOD "market"
#define MAX_MODEL_BYTES (1ull << 30)
#define MAX_INPUT_BYTES (256ull << 20)
#define KEEP_MAX 1024           /* finished shards kept for disputes */
#define KEEP_BYTES (256u << 20) /* their per-sample leaves, in all */
#define FETCH_TIMEOUT_MS 10000
#define DEFAULT_MAX_SHARD_WORK 1000000000ull /* > 250 samples, default CNN */

typedef enum {
  FAULT_NONE = 0,
  FAULT_WRONG,
  FAULT_PERTURB,
  FAULT_LAZY,
  FAULT_SLOW,
  FAULT_VANISH,
  FAULT_EQUIVOCATE,
  FAULT_STALL, /* sessions only (session_provider.c); shards run normally */
} fault_t;

static const char *const k_fault_names[] = {"none",       "wrong", "perturb",
                                            "lazy",       "slow",  "vanish",
                                            "equivocate", "stall"};

typedef enum {
  T_NEW = 0,
  T_WAIT_MODEL, /* another lease is fetching the same model */
  T_FETCH_MODEL,
  T_FETCH_INPUT,
  T_QUEUED, /* on the run queue or running: the workers' */
} task_state_t;

typedef struct task {
  struct task *next;     /* loop's list */
  struct task *run_next; /* run / done queue */
  uint8_t job_id[PX_HASH_LEN];
  uint32_t shard;
  uint8_t role;
  uint8_t requester[PX_PK_LEN];
  px_job_rec_t job;
  uint64_t deadline_ms;
  uint64_t model_size_hint; /* from the lease */
  task_state_t state;
  px_fetch_t *fetch;
  uint64_t fetch_c0; /* first chunk of an input fetch */
  uint64_t first_sample;
  uint32_t n; /* samples */
  float *x;
  char model_path[4400];
  atomic_int cancelled;
  /* filled by the worker */
  uint8_t status; /* px_mkt_reason_t */
  char why[PX_MKT_REASON_MAX];
  uint32_t classes;
  float *logits;
  px_shard_trace_t tr;
  uint8_t (*leaves)[PX_HASH_LEN];
  /* equivocate: the second claim */
  int has_alt;
  float *alt_logits;
  px_shard_trace_t alt_tr;
} task_t;

typedef struct kept {
  struct kept *next;
  uint8_t job_id[PX_HASH_LEN];
  uint32_t shard, n, n_layers;
  px_shard_trace_t tr;
  uint8_t (*leaves)[PX_HASH_LEN]; /* [n_layers][n] */
  uint64_t stamp;
} kept_t;

/* Verified input chunks kept after a fetch (loop thread only): the next
 * shards of a job mostly start in the chunk the last one ended in, and
 * with small shards many shards share one chunk, so a lease then needs
 * no fetch at all (LRU, CHUNK_CACHE x PX_BLOB_CHUNK bytes at most). */
#define CHUNK_CACHE 32
typedef struct {
  uint8_t root[PX_HASH_LEN];
  uint64_t size, index, stamp;
  uint8_t *data; /* px_blob_chunk_len(size, index) bytes; NULL: empty */
} chunk_t;

typedef struct {
  px_provider_t *p;
  uv_thread_t tid;
  px_compute_t *c;
  uint8_t model[PX_HASH_LEN]; /* cached net */
  px_net_t *net;
} worker_t;

struct px_provider {
  px_market_t *m;
  int active;
  px_provider_rec_t rec; /* our registration, when active */
  fault_t fault;
  uint32_t threads;
  task_t *tasks;
  uint32_t n_tasks;
  kept_t *kept;
  size_t n_kept, kept_bytes;
  uint64_t stamp;
  chunk_t chunks[CHUNK_CACHE];
  uint64_t chunk_stamp, chunk_hits, chunk_fetched;
  /* threads */
  int started, stopping;
  uv_mutex_t mu;
  uv_cond_t cv;
  task_t *runq, *runq_tail, *doneq;
  /* other modules' work (px_prov_run): FIFO run queue, done list */
  px_prov_job_t *jobq, *jobq_tail, *jobdone;
  uint32_t ext_slots; /* slots held through px_prov_slot_take */
  uv_async_t async;
  worker_t *workers;
  /* counters */
  uint64_t leases_accepted, leases_refused, shards_done, shards_failed,
      leases_dropped;
  px_buf_t scratch;
};

static uint64_t now_ms(px_provider_t *p) { return uv_now(p->m->env.loop); }

static void hex8(const uint8_t *b, char out[17]) { px_hex_encode(b, 8, out); }

/* ---- registration ------------------------------------------------------- */

static void refresh_registration(px_provider_t *p, const px_ledger_state_t *s) {
  px_provider_rec_t r;
  int was = p->active;
  p->active = s && px_market_provider(s, p->m->key.pk, &r) == 0 && r.active;
  if (p->active) p->rec = r;
  if (p->active != was)
    PX_LOGI(LOGMOD, "provider role %s (price %llu, slots %u)",
            p->active ? "active" : "inactive",
            (unsigned long long)p->rec.reg.price, p->rec.reg.slots);
}

/* ---- tasks -------------------------------------------------------------- */

static void task_free(task_t *t) {
  if (!t) return;
  px_fetch_free(t->fetch);
  px_free(t->x);
  px_free(t->logits);
  px_free(t->leaves);
  px_free(t->alt_logits);
  px_free(t);
}

static task_t *task_find(px_provider_t *p, const uint8_t job[PX_HASH_LEN],
                         uint32_t shard) {
  for (task_t *t = p->tasks; t; t = t->next)
    if (t->shard == shard && !memcmp(t->job_id, job, PX_HASH_LEN)) return t;
  return NULL;
}

static void task_unlink(px_provider_t *p, task_t *t) {
  for (task_t **pp = &p->tasks; *pp; pp = &(*pp)->next)
    if (*pp == t) {
      *pp = t->next;
      p->n_tasks--;
      atomic_fetch_sub(&p->m->shards_busy, 1);
      return;
    }
}

static kept_t *kept_find(px_provider_t *p, const uint8_t job[PX_HASH_LEN],
                         uint32_t shard) {
  for (kept_t *k = p->kept; k; k = k->next)
    if (k->shard == shard && !memcmp(k->job_id, job, PX_HASH_LEN)) return k;
  return NULL;
}

static void kept_remove(px_provider_t *p, kept_t *k) {
  for (kept_t **pp = &p->kept; *pp; pp = &(*pp)->next)
    if (*pp == k) {
      *pp = k->next;
      p->n_kept--;
      p->kept_bytes -= (size_t)k->n * k->n_layers * PX_HASH_LEN;
      px_free(k->leaves);
      px_free(k);
      return;
    }
}

/* Keep a finished shard's leaves (takes ownership of leaves). */
static void kept_add(px_provider_t *p, const task_t *t,
                     const px_shard_trace_t *tr,
                     uint8_t (*leaves)[PX_HASH_LEN]) {
  kept_t *old = kept_find(p, t->job_id, t->shard);
  if (old) kept_remove(p, old);
  size_t bytes = (size_t)t->n * tr->n_layers * PX_HASH_LEN;
  while (p->kept &&
         (p->n_kept >= KEEP_MAX || p->kept_bytes + bytes > KEEP_BYTES)) {
    kept_t *oldest = p->kept;
    for (kept_t *k = p->kept; k; k = k->next)
      if (k->stamp < oldest->stamp) oldest = k;
    kept_remove(p, oldest);
  }
  kept_t *k = px_calloc(1, sizeof *k);
  if (!k) {
    px_free(leaves);
    return;
  }
  memcpy(k->job_id, t->job_id, PX_HASH_LEN);
  k->shard = t->shard;
  k->n = t->n;
  k->n_layers = tr->n_layers;
  k->tr = *tr;
  k->leaves = leaves;
  k->stamp = ++p->stamp;
  k->next = p->kept;
  p->kept = k;
  p->n_kept++;
  p->kept_bytes += bytes;
}

/* ---- sending ------------------------------------------------------------ */

static void send_result(px_provider_t *p, const task_t *t, uint8_t status,
                        const px_commitment_t *c, const float *logits,
                        size_t n_logits) {
  px_mkt_result_t r;
  memset(&r, 0, sizeof r);
  r.role = t->role;
  r.status = status;
  if (c) r.c = *c;
  memcpy(r.c.job_id, t->job_id, PX_HASH_LEN);
  r.c.shard = t->shard;
  r.logits = (const uint8_t *)logits;
  r.logits_len = n_logits * sizeof(float);
  px_buf_t b;
  px_buf_init(&b, 0);
  int rc = px_mkt_result_encode(&r, &b);
  if (!rc)
    rc = px_p2p_send(p->m->env.p2p, t->requester, PX_MKT_TOPIC_RESULT, b.data,
                     b.len);
  px_buf_release(&b);
  char job[17];
  hex8(t->job_id, job);
  if (rc)
    PX_LOGW(LOGMOD, "job %s shard %u: cannot send the result: %s", job,
            t->shard, px_strerror(rc));
}

static void fail_task(px_provider_t *p, task_t *t, uint8_t status,
                      const char *why) {
  char job[17];
  hex8(t->job_id, job);
  PX_LOGW(LOGMOD, "job %s shard %u failed: %s", job, t->shard, why);
  p->shards_failed++;
  send_result(p, t, status, NULL, NULL, 0);
}

/* ---- workers ------------------------------------------------------------ */

static void sleep_ms(uint64_t ms) {
  struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

/* Replace the last layer by the given logits (TEST ONLY faults wrong and
 * equivocate): its per-sample leaves, then the trace. */
static void retrace_logits(const float *logits, uint32_t n, uint32_t classes,
                           uint8_t (*leaves)[PX_HASH_LEN], uint32_t n_layers,
                           px_shard_trace_t *tr) {
  uint8_t(*last)[PX_HASH_LEN] = leaves + (size_t)(n_layers - 1) * n;
  for (uint32_t j = 0; j < n; j++)
    px_merkle_leaf(last[j], logits + (size_t)j * classes,
                   (size_t)classes * sizeof(float));
  px_shard_trace_from_leaves((const uint8_t(*)[PX_HASH_LEN])leaves, n_layers, n,
                             tr);
}

static void random_logits(float *l, size_t n, uint64_t seed) {
  px_rng_t r;
  px_rng_seed(&r, seed);
  for (size_t i = 0; i < n; i++)
    l[i] = (float)(px_rng_next(&r) >> 40) * 0x1p-24f * 20.0f - 10.0f;
}

static void run_task(worker_t *w, task_t *t) {
  px_provider_t *p = w->p;
  fault_t fault = p->fault;
  if (fault == FAULT_VANISH) {
    PX_LOGW(LOGMOD, "TEST ONLY fault 'vanish': exiting mid-shard");
    _exit(3);
  }
  if (!w->net || memcmp(w->model, t->job.spec.model, PX_HASH_LEN)) {
    px_net_free(w->net);
    w->net = NULL;
    int rc = px_net_load(t->model_path, &w->net);
    if (rc) {
      t->status = PX_MKT_BAD_MODEL;
      snprintf(t->why, sizeof t->why, "model does not load: %s",
               px_strerror(rc));
      return;
    }
    memcpy(w->model, t->job.spec.model, PX_HASH_LEN);
  }
  px_market_manifest_t man;
  int rc = px_market_manifest(w->net, &man);
  if (rc || man.n_layers != t->job.manifest.n_layers ||
      memcmp(man.layer_ref, t->job.manifest.layer_ref,
             (size_t)man.n_layers * PX_HASH_LEN)) {
    t->status = PX_MKT_BAD_MODEL;
    snprintf(t->why, sizeof t->why,
             "the model's manifest does not match the job record");
    return;
  }
  size_t sample_bytes = px_net_input_size(w->net) * sizeof(float);
  if (sample_bytes * t->job.spec.n_samples != t->job.spec.input_size) {
    t->status = PX_MKT_BAD_MODEL;
    snprintf(t->why, sizeof t->why,
             "input size %llu is not %u samples of %zu bytes",
             (unsigned long long)t->job.spec.input_size, t->job.spec.n_samples,
             sample_bytes);
    return;
  }
  t->classes = (uint32_t)px_net_config(w->net)->n_classes;
  size_t nl = (size_t)t->n * t->classes;
  t->logits = px_malloc(nl * sizeof(float));
  if (!t->logits) {
    t->status = PX_MKT_INTERNAL;
    snprintf(t->why, sizeof t->why, "out of memory");
    return;
  }
  uint32_t L = (uint32_t)px_net_layer_count(w->net);
  uint64_t seed = ((uint64_t)t->shard << 32) ^ px_get_u64le(t->job_id) ^
                  (uint64_t)time(NULL);
  uint64_t t0 = px_time_mono_ms();
  if (fault == FAULT_LAZY) {
    /* a result guessed without computing: zero logits, a made-up trace */
    memset(t->logits, 0, nl * sizeof(float));
    t->leaves = px_malloc((size_t)L * t->n * PX_HASH_LEN);
    if (!t->leaves) {
      t->status = PX_MKT_INTERNAL;
      return;
    }
    px_rng_t r;
    px_rng_seed(&r, seed);
    px_rng_fill(&r, t->leaves, (size_t)L * t->n * PX_HASH_LEN);
    retrace_logits(t->logits, t->n, t->classes, t->leaves, L, &t->tr);
    t->status = PX_MKT_OK;
    return;
  }
  rc = px_shard_run_fault(w->net, w->c, t->x, t->n, t->logits, &t->tr,
                          &t->leaves, fault == FAULT_PERTURB ? (int)L / 2 : -1);
  if (rc) {
    t->status = PX_MKT_INTERNAL;
    snprintf(t->why, sizeof t->why, "shard run failed: %s", px_strerror(rc));
    return;
  }
  if (fault == FAULT_WRONG) {
    random_logits(t->logits, nl, seed);
    retrace_logits(t->logits, t->n, t->classes, t->leaves, L, &t->tr);
  } else if (fault == FAULT_EQUIVOCATE) {
    /* a second, different claim on the same shard, internally consistent */
    uint8_t(*alt)[PX_HASH_LEN] = px_malloc((size_t)L * t->n * PX_HASH_LEN);
    t->alt_logits = px_malloc(nl * sizeof(float));
    if (alt && t->alt_logits) {
      memcpy(alt, t->leaves, (size_t)L * t->n * PX_HASH_LEN);
      random_logits(t->alt_logits, nl, seed);
      retrace_logits(t->alt_logits, t->n, t->classes, alt, L, &t->alt_tr);
      t->has_alt = 1;
    }
    px_free(alt);
  } else if (fault == FAULT_SLOW) {
    uint64_t dt = px_time_mono_ms() - t0;
    sleep_ms(PX_MAX(9 * dt, (uint64_t)500));
  }
  t->status = PX_MKT_OK;
}

static void worker_main(void *arg) {
  worker_t *w = arg;
  px_provider_t *p = w->p;
  uv_mutex_lock(&p->mu);
  for (;;) {
    while (!p->stopping && !p->runq && !p->jobq)
      uv_cond_wait(&p->cv, &p->mu);
    if (p->stopping) break;
    if (p->jobq) { /* short steps (sessions) go before shards */
      px_prov_job_t *j = p->jobq;
      p->jobq = j->next_;
      if (!p->jobq) p->jobq_tail = NULL;
      uv_mutex_unlock(&p->mu);
      j->run(j, w->c);
      uv_mutex_lock(&p->mu);
      j->next_ = p->jobdone;
      p->jobdone = j;
      uv_async_send(&p->async);
      continue;
    }
    task_t *t = p->runq;
    p->runq = t->run_next;
    if (!p->runq) p->runq_tail = NULL;
    uv_mutex_unlock(&p->mu);
    if (!atomic_load(&t->cancelled)) run_task(w, t);
    uv_mutex_lock(&p->mu);
    t->run_next = p->doneq;
    p->doneq = t;
    uv_async_send(&p->async);
  }
  uv_mutex_unlock(&p->mu);
}

static void on_done(uv_async_t *a);

static int start_workers(px_provider_t *p) {
  if (p->started) return 0;
  int rc = uv_async_init(p->m->env.loop, &p->async, on_done);
  if (rc) return PX_EIO;
  p->async.data = p;
  p->workers = px_calloc(p->threads, sizeof *p->workers);
  if (!p->workers) {
    uv_close((uv_handle_t *)&p->async, NULL);
    return PX_ENOMEM;
  }
  p->started = 1;
  for (uint32_t i = 0; i < p->threads; i++) {
    worker_t *w = &p->workers[i];
    w->p = p;
    px_compute_opts_t o = {.simd = -1, .threads = 1};
    if ((rc = px_compute_new(&o, &w->c))) return rc;
    if (uv_thread_create(&w->tid, worker_main, w)) {
      px_compute_free(w->c);
      w->c = NULL;
      return PX_ENOMEM;
    }
  }
  return 0;
}

static void enqueue(px_provider_t *p, task_t *t) {
  t->state = T_QUEUED;
  t->run_next = NULL;
  uv_mutex_lock(&p->mu);
  if (p->runq_tail)
    p->runq_tail->run_next = t;
  else
    p->runq = t;
  p->runq_tail = t;
  uv_cond_signal(&p->cv);
  uv_mutex_unlock(&p->mu);
}

static void finish(px_provider_t *p, task_t *t) {
  char job[17];
  hex8(t->job_id, job);
  if (atomic_load(&t->cancelled)) {
    PX_LOGI(LOGMOD, "job %s shard %u: lease dropped (budget over or cancel)",
            job, t->shard);
    return;
  }
  if (t->status != PX_MKT_OK) {
    fail_task(p, t, t->status, t->why[0] ? t->why : "failed");
    return;
  }
  px_commitment_t c;
  memset(&c, 0, sizeof c);
  memcpy(c.job_id, t->job_id, PX_HASH_LEN);
  c.shard = t->shard;
  memcpy(c.output, t->tr.output, PX_HASH_LEN);
  memcpy(c.trace_root, t->tr.trace_root, PX_HASH_LEN);
  c.n_layers = t->tr.n_layers;
  int rc = px_commitment_sign(&c, &p->m->key);
  if (rc) {
    fail_task(p, t, PX_MKT_INTERNAL, "cannot sign the commitment");
    return;
  }
  size_t nl = (size_t)t->n * t->classes;
  send_result(p, t, PX_MKT_OK, &c, t->logits, nl);
  if (t->has_alt) {
    px_commitment_t c2 = c;
    memcpy(c2.output, t->alt_tr.output, PX_HASH_LEN);
    memcpy(c2.trace_root, t->alt_tr.trace_root, PX_HASH_LEN);
    if (!px_commitment_sign(&c2, &p->m->key)) {
      PX_LOGW(LOGMOD,
              "TEST ONLY fault 'equivocate': job %s shard %u signed "
              "twice",
              job, t->shard);
      send_result(p, t, PX_MKT_OK, &c2, t->alt_logits, nl);
    }
  }
  p->shards_done++;
  PX_LOGI(LOGMOD, "job %s shard %u done (%u samples)", job, t->shard, t->n);
  kept_add(p, t, &t->tr, t->leaves);
  t->leaves = NULL;
}

static void on_done(uv_async_t *a) {
  px_provider_t *p = a->data;
  uv_mutex_lock(&p->mu);
  task_t *d = p->doneq;
  p->doneq = NULL;
  px_prov_job_t *jd = p->jobdone, *jr = NULL;
  p->jobdone = NULL;
  uv_mutex_unlock(&p->mu);
  while (jd) { /* back to submission order */
    px_prov_job_t *next = jd->next_;
    jd->next_ = jr;
    jr = jd;
    jd = next;
  }
  while (jr) {
    px_prov_job_t *next = jr->next_;
    jr->next_ = NULL;
    if (!p->stopping) jr->done(jr);
    jr = next;
  }
  while (d) {
    task_t *next = d->run_next;
    if (!p->stopping) finish(p, d);
    task_unlink(p, d);
    task_free(d);
    d = next;
  }
  if (!p->stopping && p->m->env.flush) p->m->env.flush(p->m->env.ud);
}

/* ---- fetching -------------------------------------------------------------
 */

static int model_fetch_in_flight(px_provider_t *p, const task_t *self) {
  for (task_t *t = p->tasks; t; t = t->next)
    if (t != self && t->state == T_FETCH_MODEL &&
        !memcmp(t->job.spec.model, self->job.spec.model, PX_HASH_LEN))
      return 1;
  return 0;
}

/* Drop a lease that will not run (loop side, before QUEUED). */
static void drop(px_provider_t *p, task_t *t, uint8_t status, const char *why) {
  fail_task(p, t, status, why);
  task_unlink(p, t);
  task_free(t);
}

static chunk_t *chunk_get(px_provider_t *p, const px_job_spec_t *s,
                          uint64_t index) {
  for (int i = 0; i < CHUNK_CACHE; i++) {
    chunk_t *c = &p->chunks[i];
    if (c->data && c->index == index && c->size == s->input_size &&
        !memcmp(c->root, s->input, PX_HASH_LEN)) {
      c->stamp = ++p->chunk_stamp;
      return c;
    }
  }
  return NULL;
}

static void chunk_put(px_provider_t *p, const px_job_spec_t *s, uint64_t index,
                      const uint8_t *data) {
  if (chunk_get(p, s, index)) return;
  chunk_t *v = &p->chunks[0];
  for (int i = 1; i < CHUNK_CACHE && v->data; i++)
    if (!p->chunks[i].data || p->chunks[i].stamp < v->stamp) v = &p->chunks[i];
  size_t len = px_blob_chunk_len(s->input_size, index);
  uint8_t *d = px_malloc(len);
  if (!d) return;
  memcpy(d, data, len);
  px_free(v->data);
  memcpy(v->root, s->input, PX_HASH_LEN);
  v->size = s->input_size;
  v->index = index;
  v->data = d;
  v->stamp = ++p->chunk_stamp;
}

/* The shard's samples as byte range [lo, hi) of the input blob and its
 * chunks [c0, c1]. */
static int input_range(const task_t *t, uint64_t *lo, uint64_t *hi,
                       uint64_t *c0, uint64_t *c1) {
  const px_job_spec_t *s = &t->job.spec;
  uint64_t sb = s->input_size / s->n_samples;
  *lo = t->first_sample * sb, *hi = *lo + (uint64_t)t->n * sb;
  if (sb == 0 || sb % 4 || sb * s->n_samples != s->input_size ||
      *hi - *lo > MAX_INPUT_BYTES)
    return PX_EINVAL;
  *c0 = *lo / PX_BLOB_CHUNK, *c1 = (*hi - 1) / PX_BLOB_CHUNK;
  return 0;
}

/* t->x from the cache and (if any) the finished fetch of chunks
 * [t->fetch_c0, ...); the fetched chunks go into the cache. */
static int assemble_input(px_provider_t *p, task_t *t) {
  const px_job_spec_t *s = &t->job.spec;
  uint64_t lo, hi, c0, c1;
  if (input_range(t, &lo, &hi, &c0, &c1)) return PX_EINVAL;
  size_t flen = 0;
  const uint8_t *fd = t->fetch ? px_fetch_data(t->fetch, &flen) : NULL;
  uint64_t fn = fd ? (flen + PX_BLOB_CHUNK - 1) / PX_BLOB_CHUNK : 0;
  px_free(t->x);
  t->x = px_malloc((size_t)(hi - lo));
  if (!t->x) return PX_ENOMEM;
  for (uint64_t c = c0; c <= c1; c++) {
    uint64_t cs = c * PX_BLOB_CHUNK;
    uint64_t a = PX_MAX(lo, cs), b = PX_MIN(hi, cs + PX_BLOB_CHUNK);
    const uint8_t *src;
    if (fd && c >= t->fetch_c0 && c < t->fetch_c0 + fn) {
      src = fd + (c - t->fetch_c0) * PX_BLOB_CHUNK;
    } else {
      chunk_t *e = chunk_get(p, s, c);
      if (!e) return PX_ENOENT;
      src = e->data;
    }
    if (b - cs > px_blob_chunk_len(s->input_size, c)) return PX_EDECODE;
    /* f32 LE, this host is little-endian */
    memcpy((uint8_t *)t->x + (a - lo), src + (a - cs), (size_t)(b - a));
  }
  for (uint64_t k = 0; k < fn; k++)
    chunk_put(p, s, t->fetch_c0 + k, fd + k * PX_BLOB_CHUNK);
  return 0;
}

/* Fetch the input chunks of the shard that are not cached (the cached
 * ones at either end of the range are skipped); 1 when every chunk is
 * cached and t->x is ready. */
static int start_input(px_provider_t *p, task_t *t, uint64_t now,
                       int use_cache) {
  const px_job_spec_t *s = &t->job.spec;
  uint64_t lo, hi, c0, c1;
  if (input_range(t, &lo, &hi, &c0, &c1)) return PX_EINVAL;
  while (use_cache && c0 <= c1 && chunk_get(p, s, c0))
    c0++;
  while (use_cache && c1 >= c0 && c1 > 0 && chunk_get(p, s, c1))
    c1--;
  if (c0 > c1) {
    p->chunk_hits++;
    int rc = assemble_input(p, t);
    return rc ? rc : 1;
  }
  t->state = T_FETCH_INPUT;
  t->fetch_c0 = c0;
  p->chunk_fetched += c1 - c0 + 1;
  return px_fetch_new(p->m->env.p2p, t->requester, s->input, s->input_size, c0,
                      c1 - c0 + 1, FETCH_TIMEOUT_MS, now, &t->fetch);
}

/* Move every task as far as it can go. */
static void pump(px_provider_t *p) {
  uint64_t now = now_ms(p);
  int again = 1;
  while (again) {
    again = 0;
    for (task_t *t = p->tasks, *next; t; t = next) {
      next = t->next;
      if (t->state == T_QUEUED) continue;
      int st = t->fetch ? px_fetch_status(t->fetch) : 0;
      if (st < 0) {
        char why[96];
        snprintf(
            why, sizeof why, "fetching the %s from the requester failed: %s",
            t->state == T_FETCH_MODEL ? "model" : "input", px_strerror(st));
        drop(p, t, PX_MKT_INTERNAL, why);
        again = 1;
        break; /* the list changed */
      }
      if (t->state == T_NEW || t->state == T_WAIT_MODEL) {
        px_blobstore_path(p->m->blobs, t->job.spec.model, t->model_path,
                          sizeof t->model_path);
        if (access(t->model_path, R_OK) == 0) {
          int rc = start_input(p, t, now, 1);
          if (rc == 1) {
            enqueue(p, t); /* every chunk was cached */
            again = 1;
            continue;
          }
          if (rc) {
            drop(p, t, rc == PX_EINVAL ? PX_MKT_BAD_MODEL : PX_MKT_INTERNAL,
                 rc == PX_EINVAL
                     ? "the job's input size does not split into its samples"
                     : "cannot start fetching the input");
            again = 1;
            break;
          }
          again = 1;
        } else if (model_fetch_in_flight(p, t)) {
          t->state = T_WAIT_MODEL;
        } else {
          t->state = T_FETCH_MODEL;
          int rc = px_fetch_new(p->m->env.p2p, t->requester, t->job.spec.model,
                                t->model_size_hint, 0,
                                px_blob_chunk_count(t->model_size_hint),
                                FETCH_TIMEOUT_MS, now, &t->fetch);
          if (rc) {
            drop(p, t, PX_MKT_INTERNAL, "cannot start fetching the model");
            again = 1;
            break;
          }
          again = 1;
        }
      } else if (t->state == T_FETCH_MODEL && st == 1) {
        size_t len;
        const uint8_t *d = px_fetch_data(t->fetch, &len);
        uint8_t root[PX_HASH_LEN];
        int rc = px_blobstore_put(p->m->blobs, d, len, root);
        px_fetch_free(t->fetch);
        t->fetch = NULL;
        if (rc || memcmp(root, t->job.spec.model, PX_HASH_LEN)) {
          drop(p, t, PX_MKT_INTERNAL, "cannot store the model blob");
          again = 1;
          break;
        }
        t->state = T_NEW;
        again = 1;
      } else if (t->state == T_FETCH_INPUT && st == 1) {
        int rc = assemble_input(p, t);
        if (rc == PX_ENOENT) {
          /* a cached end chunk was evicted meanwhile: fetch it all */
          px_fetch_free(t->fetch);
          t->fetch = NULL;
          rc = start_input(p, t, now, 0);
          again = 1;
          if (!rc) continue;
        }
        if (rc) {
          drop(p, t, PX_MKT_INTERNAL, "cannot hold the shard's input");
          again = 1;
          break;
        }
        px_fetch_free(t->fetch);
        t->fetch = NULL;
        enqueue(p, t);
      }
    }
  }
}

/* ---- requests ------------------------------------------------------------ */

static void lease_reply(px_provider_t *p, const px_p2p_fx_t *fx,
                        const px_mkt_lease_t *l, uint8_t reason,
                        const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void lease_reply(px_provider_t *p, const px_p2p_fx_t *fx,
                        const px_mkt_lease_t *l, uint8_t reason,
                        const char *fmt, ...) {
  px_mkt_lease_reply_t r;
  memset(&r, 0, sizeof r);
  memcpy(r.job_id, l->job_id, PX_HASH_LEN);
  r.shard = l->shard;
  r.reason = reason;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(r.message, sizeof r.message, fmt, ap);
  va_end(ap);
  px_buf_t b;
  px_buf_init(&b, 0);
  int rc = px_mkt_lease_reply_encode(&r, &b);
  px_p2p_respond(p->m->env.p2p, fx->node_pk, fx->req_id, rc, rc ? NULL : b.data,
                 rc ? 0 : b.len);
  px_buf_release(&b);
  if (reason == PX_MKT_OK) {
    p->leases_accepted++;
  } else {
    char job[17];
    hex8(l->job_id, job);
    p->leases_refused++;
    PX_LOGI(LOGMOD, "job %s shard %u: lease refused: %s", job, l->shard,
            r.message);
  }
}

static void on_lease(px_provider_t *p, const px_p2p_fx_t *fx) {
  px_mkt_lease_t l;
  int rc = px_mkt_lease_decode(fx->data.data, fx->data.len, &l);
  if (rc) {
    px_p2p_respond(p->m->env.p2p, fx->node_pk, fx->req_id, rc, NULL, 0);
    return;
  }
  const px_ledger_state_t *s = px_chain_state(p->m->env.chain);
  if (!p->active) {
    lease_reply(p, fx, &l, PX_MKT_NOT_PROVIDER,
                "not an active provider on chain");
    return;
  }
  px_job_rec_t *job = px_malloc(sizeof *job);
  if (!job) {
    lease_reply(p, fx, &l, PX_MKT_INTERNAL, "out of memory");
    return;
  }
  uint64_t work = 0;
  if (px_market_job(s, l.job_id, job) || job->state != PX_JOBREC_OPEN) {
    lease_reply(p, fx, &l, PX_MKT_UNKNOWN_JOB,
                "job not open on chain at height %llu (retry after the next "
                "block)",
                (unsigned long long)px_ledger_height(s));
  } else if (memcmp(fx->node_pk, job->spec.requester, PX_PK_LEN)) {
    lease_reply(p, fx, &l, PX_MKT_UNKNOWN_JOB,
                "a lease must come from the job's requester");
  } else if (l.shard >= px_job_shard_count(&job->spec) ||
             px_job_shard_work(&job->spec, l.shard, &work)) {
    lease_reply(p, fx, &l, PX_MKT_UNKNOWN_JOB, "the job has no shard %u",
                l.shard);
  } else if (task_find(p, l.job_id, l.shard)) {
    lease_reply(p, fx, &l, PX_MKT_OK, "already held");
  } else if (work > p->rec.reg.max_shard_work) {
    lease_reply(p, fx, &l, PX_MKT_TOO_BIG,
                "shard work %llu is over max_shard_work %llu",
                (unsigned long long)work,
                (unsigned long long)p->rec.reg.max_shard_work);
  } else if (l.model_size > MAX_MODEL_BYTES) {
    lease_reply(p, fx, &l, PX_MKT_TOO_BIG, "model of %llu bytes is too large",
                (unsigned long long)l.model_size);
  } else if (p->rec.reg.price > job->spec.price_ceiling) {
    lease_reply(p, fx, &l, PX_MKT_PRICE,
                "price ceiling %llu is below price %llu",
                (unsigned long long)job->spec.price_ceiling,
                (unsigned long long)p->rec.reg.price);
  } else if (p->n_tasks + p->ext_slots >= p->rec.reg.slots) {
    lease_reply(p, fx, &l, PX_MKT_BUSY, "all %u slots are taken",
                p->rec.reg.slots);
  } else if ((rc = start_workers(p))) {
    lease_reply(p, fx, &l, PX_MKT_INTERNAL, "cannot start workers: %s",
                px_strerror(rc));
  } else {
    task_t *t = px_calloc(1, sizeof *t);
    if (!t) {
      lease_reply(p, fx, &l, PX_MKT_INTERNAL, "out of memory");
      px_free(job);
      return;
    }
    memcpy(t->job_id, l.job_id, PX_HASH_LEN);
    t->shard = l.shard;
    t->role = l.role;
    memcpy(t->requester, fx->node_pk, PX_PK_LEN);
    t->job = *job;
    t->deadline_ms = now_ms(p) + l.budget_ms;
    t->model_size_hint = l.model_size;
    t->first_sample = (uint64_t)l.shard * job->spec.shard_size;
    t->n = px_job_shard_samples(&job->spec, l.shard);
    atomic_init(&t->cancelled, 0);
    t->next = p->tasks;
    p->tasks = t;
    p->n_tasks++;
    atomic_fetch_add(&p->m->shards_busy, 1);
    lease_reply(p, fx, &l, PX_MKT_OK, "accepted");
    char jh[17];
    hex8(l.job_id, jh);
    PX_LOGI(LOGMOD, "job %s shard %u: lease accepted (%s, %u samples)", jh,
            l.shard, l.role == PX_MKT_ROLE_AUDITOR ? "auditor" : "worker",
            t->n);
    pump(p);
  }
  px_free(job);
}

static void on_challenge(px_provider_t *p, const px_p2p_fx_t *fx) {
  px_dispute_challenge_t ch;
  px_dispute_response_t r;
  int rc = px_dispute_challenge_decode(fx->data.data, fx->data.len, &ch);
  kept_t *k = rc ? NULL : kept_find(p, ch.job_id, ch.shard);
  if (!rc && !k) rc = PX_ENOTFOUND;
  if (!rc)
    rc = px_dispute_respond(
        &ch, (const uint8_t(*)[PX_HASH_LEN])k->tr.layer_leaf, k->n_layers, &r);
  px_buf_t b;
  px_buf_init(&b, 0);
  if (!rc) rc = px_dispute_response_encode(&r, &b);
  px_p2p_respond(p->m->env.p2p, fx->node_pk, fx->req_id, rc, rc ? NULL : b.data,
                 rc ? 0 : b.len);
  px_buf_release(&b);
}

static void on_reveal(px_provider_t *p, const px_p2p_fx_t *fx) {
  px_mkt_reveal_req_t q;
  int rc = px_mkt_reveal_req_decode(fx->data.data, fx->data.len, &q);
  kept_t *k = rc ? NULL : kept_find(p, q.job_id, q.shard);
  if (!rc && !k) rc = PX_ENOTFOUND;
  if (!rc && q.layer >= k->n_layers) rc = PX_ERANGE;
  px_buf_t b;
  px_buf_init(&b, 0);
  if (!rc) {
    px_mkt_reveal_t v;
    memcpy(v.job_id, q.job_id, PX_HASH_LEN);
    v.shard = q.shard;
    v.layer = q.layer;
    v.n = k->n;
    v.leaves =
        (const uint8_t(*)[PX_HASH_LEN])(k->leaves + (size_t)q.layer * k->n);
    rc = px_mkt_reveal_encode(&v, &b);
  }
  px_p2p_respond(p->m->env.p2p, fx->node_pk, fx->req_id, rc, rc ? NULL : b.data,
                 rc ? 0 : b.len);
  px_buf_release(&b);
}

/* CANCEL carries the LEASE encoding of the lease to drop. */
static void on_cancel(px_provider_t *p, const px_p2p_fx_t *fx) {
  px_mkt_lease_t l;
  int rc = px_mkt_lease_decode(fx->data.data, fx->data.len, &l);
  task_t *t = rc ? NULL : task_find(p, l.job_id, l.shard);
  if (t && !memcmp(t->requester, fx->node_pk, PX_PK_LEN)) {
    p->leases_dropped++;
    if (t->state == T_QUEUED) {
      atomic_store(&t->cancelled, 1);
    } else {
      task_unlink(p, t);
      task_free(t);
    }
  }
  px_p2p_respond(p->m->env.p2p, fx->node_pk, fx->req_id, rc, NULL, 0);
}

int px_prov_on_request(px_provider_t *p, const px_p2p_fx_t *fx) {
  if (!p) return 0;
  switch (fx->method) {
  case PX_MKT_METHOD_LEASE:
    on_lease(p, fx);
    return 1;
  case PX_MKT_METHOD_CHALLENGE:
    on_challenge(p, fx);
    return 1;
  case PX_MKT_METHOD_REVEAL:
    on_reveal(p, fx);
    return 1;
  case PX_MKT_METHOD_CANCEL:
    on_cancel(p, fx);
    return 1;
  default:
    return 0;
  }
}

int px_prov_on_response(px_provider_t *p, const px_p2p_fx_t *fx) {
  if (!p) return 0;
  for (task_t *t = p->tasks; t; t = t->next)
    if (t->fetch && px_fetch_on_response(t->fetch, fx, now_ms(p))) {
      pump(p);
      return 1;
    }
  return 0;
}

void px_prov_on_peer(px_provider_t *p, const px_p2p_fx_t *fx) {
  (void)p;
  (void)fx; /* a requester that leaves fails its fetches (PX_ECLOSED) */
}

void px_prov_tick(px_provider_t *p, uint64_t now) {
  if (!p) return;
  for (task_t *t = p->tasks, *next; t; t = next) {
    next = t->next;
    if (now < t->deadline_ms) {
      px_fetch_tick(t->fetch, now);
      continue;
    }
    if (t->state == T_QUEUED) {
      if (!atomic_exchange(&t->cancelled, 1)) p->leases_dropped++;
    } else {
      char job[17];
      hex8(t->job_id, job);
      PX_LOGI(LOGMOD, "job %s shard %u: lease budget over before it ran", job,
              t->shard);
      p->leases_dropped++;
      task_unlink(p, t);
      task_free(t);
    }
  }
  pump(p);
}

void px_prov_on_block(px_provider_t *p, const px_ledger_state_t *s,
                      const px_block_t *b, const px_tx_result_t *res) {
  (void)b;
  (void)res;
  if (!p) return;
  refresh_registration(p, s);
  if (px_ledger_height(s) % 8) return;
  /* forget the traces of jobs that are closed */
  px_job_rec_t *job = px_malloc(sizeof *job);
  if (!job) return;
  for (kept_t *k = p->kept, *next; k; k = next) {
    next = k->next;
    if (px_market_job(s, k->job_id, job) || job->state != PX_JOBREC_OPEN)
      kept_remove(p, k);
  }
  px_free(job);
}

/* ---- shared with other modules (sessions) ------------------------------- */

int px_prov_is_active(const px_provider_t *p, uint64_t *price) {
  if (!p || !p->active) return 0;
  if (price) *price = p->rec.reg.price;
  return 1;
}

int px_prov_slot_take(px_provider_t *p) {
  if (!p || !p->active || p->stopping) return PX_ESTATE;
  if (p->n_tasks + p->ext_slots >= p->rec.reg.slots) return PX_EBUSY;
  p->ext_slots++;
  atomic_fetch_add(&p->m->shards_busy, 1);
  return 0;
}

void px_prov_slot_give(px_provider_t *p) {
  if (!p || p->ext_slots == 0) return;
  p->ext_slots--;
  atomic_fetch_sub(&p->m->shards_busy, 1);
}

int px_prov_run(px_provider_t *p, px_prov_job_t *j) {
  if (!p || !j || !j->run || !j->done) return PX_EINVAL;
  if (p->stopping) return PX_ESTATE;
  int rc = start_workers(p);
  if (rc) return rc;
  j->next_ = NULL;
  uv_mutex_lock(&p->mu);
  if (p->jobq_tail)
    p->jobq_tail->next_ = j;
  else
    p->jobq = j;
  p->jobq_tail = j;
  uv_cond_signal(&p->cv);
  uv_mutex_unlock(&p->mu);
  return 0;
}

/* ---- commands ------------------------------------------------------------ */

static void json_err(px_buf_t *out, int err, const char *msg) {
  px_buf_printf(
      out, "{\"ok\":false,\"error\":\"%s\",\"message\":", px_err_name(err));
  px_json_writer_t w;
  px_json_writer_init(&w, out);
  px_json_write_str(&w, msg);
  px_buf_printf(out, "}");
}

static int json_u64_opt(const px_json_t *o, const char *key, uint64_t def,
                        uint64_t *out) {
  const px_json_t *v = px_json_get(o, key);
  if (!v) {
    *out = def;
    return 0;
  }
  return px_json_as_u64(v, out);
}

static void cmd_provide(px_provider_t *p, const char *arg, px_buf_t *out) {
  px_market_t *m = p->m;
  const px_ledger_state_t *s = px_chain_state(m->env.chain);
  px_arena_t a;
  px_arena_init(&a, 4096, 1u << 20);
  px_json_t *root = NULL;
  const char *text = arg && *arg ? arg : "{}";
  char msg[256];
  uint64_t stake = 0, price = 0, slots = 0, maxw = 0;
  int rc = px_json_parse(&a, text, strlen(text), NULL, &root, NULL);
  if (rc || root->type != PX_JSON_OBJECT) {
    json_err(out, PX_EINVAL,
             "usage: provide {\"stake\":N,\"price\":P,\"slots\":S,"
             "\"max_shard_work\":W} (all optional)");
    goto done;
  }
  for (size_t i = 0; i < root->n; i++) {
    const char *k = root->members[i].key;
    if (strcmp(k, "stake") && strcmp(k, "price") && strcmp(k, "slots") &&
        strcmp(k, "max_shard_work")) {
      snprintf(msg, sizeof msg, "provide: unknown key '%.64s'", k);
      json_err(out, PX_EINVAL, msg);
      goto done;
    }
  }
  if (json_u64_opt(root, "price", 1, &price) || price < 1 ||
      json_u64_opt(root, "slots", p->threads, &slots) || slots < 1 ||
      slots > 64 ||
      json_u64_opt(root, "max_shard_work", DEFAULT_MAX_SHARD_WORK, &maxw) ||
      maxw < 1) {
    json_err(out, PX_EINVAL,
             "provide: price >= 1, slots 1..64 and max_shard_work >= 1 are "
             "whole numbers");
    goto done;
  }
  /* the least stake the contract accepts: stake * p >= price * W */
  unsigned __int128 reward = (unsigned __int128)price * maxw;
  if (reward > UINT64_MAX) {
    json_err(out, PX_ERANGE, "provide: price * max_shard_work is too large");
    goto done;
  }
  unsigned __int128 need =
      (reward * PX_MARKET_BPS + PX_MARKET_MIN_AUDIT_BPS - 1) /
      PX_MARKET_MIN_AUDIT_BPS;
  if (need > UINT64_MAX) need = UINT64_MAX;
  if (json_u64_opt(root, "stake", (uint64_t)need, &stake)) {
    json_err(out, PX_EINVAL, "provide: stake must be a whole number");
    goto done;
  }
  if (px_market_stake_check(stake, (uint64_t)reward, PX_MARKET_MIN_AUDIT_BPS)) {
    snprintf(msg, sizeof msg,
             "provide: stake %llu is below %llu, the bound for price %llu x "
             "max_shard_work %llu at the minimum audit rate",
             (unsigned long long)stake, (unsigned long long)need,
             (unsigned long long)price, (unsigned long long)maxw);
    json_err(out, PX_EFUNDS, msg);
    goto done;
  }
  px_account_t acct;
  px_ledger_account(s, m->key.pk, &acct);
  uint8_t stake_tx[PX_HASH_LEN], reg_tx[PX_HASH_LEN];
  int staked = 0;
  if (acct.stake < stake) {
    uint64_t add = stake - acct.stake;
    if (acct.balance < add) {
      snprintf(msg, sizeof msg,
               "provide: staking %llu more needs that much balance (have "
               "%llu)",
               (unsigned long long)add, (unsigned long long)acct.balance);
      json_err(out, PX_EFUNDS, msg);
      goto done;
    }
    px_buf_t pl;
    px_buf_init(&pl, 64);
    rc = px_tx_payload_amount(&pl, add);
    if (!rc) rc = px_market_submit(m, PX_TX_STAKE, pl.data, pl.len, stake_tx);
    px_buf_release(&pl);
    if (rc) {
      json_err(out, rc, "provide: the STAKE transaction was rejected");
      goto done;
    }
    staked = 1;
  }
  px_provider_reg_t reg;
  memset(&reg, 0, sizeof reg);
  px_compute_t *c = NULL;
  px_compute_opts_t o = {.simd = -1, .threads = 1};
  rc = px_compute_new(&o, &c);
  if (!rc) rc = px_market_bench(c, &reg.speed, reg.bench_hash);
  px_simd_t simd = c ? px_compute_simd(c) : PX_SIMD_SCALAR;
  px_compute_free(c);
  if (rc) {
    json_err(out, rc, "provide: the benchmark failed");
    goto done;
  }
  px_simd_t best = px_cpu_best_simd();
  reg.caps = (best >= PX_SIMD_AVX2 ? PX_CAP_AVX2 : 0) |
             (best >= PX_SIMD_AVX512 ? PX_CAP_AVX512 : 0);
  reg.cores = p->threads;
  long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
  uint64_t mb =
      pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz >> 20 : 0;
  reg.mem_mb = (uint32_t)PX_MIN(mb, (uint64_t)UINT32_MAX);
  reg.simd = (uint8_t)simd;
  reg.price = price;
  reg.slots = (uint32_t)slots;
  reg.max_shard_work = maxw;
  const char *addr =
      px_config_get_str(m->env.cfg, "p2p.listen", "127.0.0.1:7100");
  if (strlen(addr) >= sizeof reg.addr) {
    json_err(out, PX_EINVAL, "provide: p2p.listen is too long to register");
    goto done;
  }
  snprintf(reg.addr, sizeof reg.addr, "%s", addr);
  px_buf_t pl;
  px_buf_init(&pl, 0);
  rc = px_market_payload_register(&pl, &reg);
  if (!rc)
    rc = px_market_submit(m, PX_TX_PROVIDER_REGISTER, pl.data, pl.len, reg_tx);
  px_buf_release(&pl);
  if (rc) {
    json_err(out, rc,
             "provide: the PROVIDER_REGISTER transaction was rejected");
    goto done;
  }
  char h1[65], h2[65];
  px_hex_encode(reg_tx, PX_HASH_LEN, h1);
  px_hex_encode(stake_tx, PX_HASH_LEN, h2);
  px_buf_printf(out, "{\"ok\":true,\"tx\":\"%s\",\"stake_tx\":", h1);
  if (staked)
    px_buf_printf(out, "\"%s\"", h2);
  else
    px_buf_printf(out, "null");
  px_buf_printf(out,
                ",\"speed\":%llu,\"stake\":%llu,\"price\":%llu,\"slots\":%llu,"
                "\"max_shard_work\":%llu,\"addr\":\"%s\"}",
                (unsigned long long)reg.speed, (unsigned long long)stake,
                (unsigned long long)price, (unsigned long long)slots,
                (unsigned long long)maxw, reg.addr);
  PX_LOGI(LOGMOD,
          "registering as a provider: price %llu, slots %llu, speed %llu",
          (unsigned long long)price, (unsigned long long)slots,
          (unsigned long long)reg.speed);
done:
  px_arena_release(&a);
}

static void cmd_providers(px_provider_t *p, px_buf_t *out) {
  const px_ledger_state_t *s = px_chain_state(p->m->env.chain);
  px_provider_rec_t *v = NULL;
  size_t n = 0;
  int rc = px_market_providers(s, &v, &n);
  if (rc) {
    json_err(out, rc, "providers: cannot read the registry");
    return;
  }
  px_buf_printf(out, "{\"ok\":true,\"height\":%llu,\"providers\":[",
                (unsigned long long)px_ledger_height(s));
  for (size_t i = 0; i < n; i++) {
    const px_provider_rec_t *r = &v[i];
    char id[65];
    px_hex_encode(r->pk, PX_PK_LEN, id);
    px_account_t a;
    px_ledger_account(s, r->pk, &a);
    px_buf_printf(
        out,
        "%s{\"id\":\"%s\",\"addr\":\"%s\",\"price\":%llu,\"speed\":%llu,"
        "\"stake\":%llu,\"reputation\":%u,\"slots\":%u,\"max_shard_work\":%llu,"
        "\"active\":%s,\"shards_completed\":%llu,\"audits_passed\":%llu,"
        "\"audits_failed\":%llu,\"leases_expired\":%llu,\"disputes_won\":%llu,"
        "\"disputes_lost\":%llu,\"slashed\":%llu,\"earned\":%llu}",
        i ? "," : "", id, r->reg.addr, (unsigned long long)r->reg.price,
        (unsigned long long)r->reg.speed, (unsigned long long)a.stake,
        px_provider_reputation(r), r->reg.slots,
        (unsigned long long)r->reg.max_shard_work, r->active ? "true" : "false",
        (unsigned long long)r->shards_completed,
        (unsigned long long)r->audits_passed,
        (unsigned long long)r->audits_failed,
        (unsigned long long)r->leases_expired,
        (unsigned long long)r->disputes_won,
        (unsigned long long)r->disputes_lost,
        (unsigned long long)r->slashed_total, (unsigned long long)r->earned);
  }
  px_buf_printf(out, "]}");
  px_free(v);
}

int px_prov_command(px_provider_t *p, const char *cmd, const char *arg,
                    px_buf_t *out) {
  if (!p) return 0;
  if (!strcmp(cmd, "provide")) {
    cmd_provide(p, arg, out);
    return 1;
  }
  if (!strcmp(cmd, "providers")) {
    cmd_providers(p, out);
    return 1;
  }
  return 0;
}

void px_prov_status_json(px_provider_t *p, px_buf_t *out) {
  if (!p) {
    px_buf_printf(out, "null");
    return;
  }
  px_buf_printf(
      out,
      "{\"active\":%s,\"price\":%llu,\"slots\":%u,\"threads\":%u,"
      "\"fault\":\"%s\",\"leases\":%u,\"busy\":%d,\"kept\":%zu,"
      "\"accepted\":%llu,\"refused\":%llu,\"done\":%llu,"
      "\"failed\":%llu,\"dropped\":%llu,\"input_cache_hits\":%llu,"
      "\"input_chunks_fetched\":%llu}",
      p->active ? "true" : "false",
      (unsigned long long)(p->active ? p->rec.reg.price : 0),
      p->active ? p->rec.reg.slots : 0, p->threads, k_fault_names[p->fault],
      p->n_tasks, atomic_load(&p->m->shards_busy), p->n_kept,
      (unsigned long long)p->leases_accepted,
      (unsigned long long)p->leases_refused, (unsigned long long)p->shards_done,
      (unsigned long long)p->shards_failed,
      (unsigned long long)p->leases_dropped, (unsigned long long)p->chunk_hits,
      (unsigned long long)p->chunk_fetched);
}

/* ---- lifecycle ------------------------------------------------------------
 */

static int parse_fault(const char *s) {
  for (size_t i = 0; i < PX_ARRAY_LEN(k_fault_names); i++)
    if (!strcmp(s, k_fault_names[i])) return (int)i;
  return -1;
}

int px_prov_open(px_market_t *m, px_provider_t **out) {
  *out = NULL;
  px_provider_t *p = px_calloc(1, sizeof *p);
  if (!p) return PX_ENOMEM;
  p->m = m;
  uint64_t threads = 1;
  px_config_get_u64(m->env.cfg, "market.threads", 1, &threads);
  p->threads = (uint32_t)PX_MAX(PX_MIN(threads, (uint64_t)64), (uint64_t)1);
  int f = parse_fault(px_config_get_str(m->env.cfg, "market.fault", "none"));
  p->fault = f > 0 ? (fault_t)f : FAULT_NONE;
  if (uv_mutex_init(&p->mu)) {
    px_free(p);
    return PX_ENOMEM;
  }
  if (uv_cond_init(&p->cv)) {
    uv_mutex_destroy(&p->mu);
    px_free(p);
    return PX_ENOMEM;
  }
  if (p->fault != FAULT_NONE)
    PX_LOGW(LOGMOD,
            "TEST ONLY: market.fault = %s — this provider MISBEHAVES ON "
            "PURPOSE and will be slashed; never use it outside tests",
            k_fault_names[p->fault]);
  refresh_registration(p, px_chain_state(m->env.chain));
  *out = p;
  return 0;
}

void px_prov_close(px_provider_t *p) {
  if (!p || !p->started || p->stopping) {
    if (p) p->stopping = 1;
    return;
  }
  uv_mutex_lock(&p->mu);
  p->stopping = 1;
  uv_cond_broadcast(&p->cv);
  uv_mutex_unlock(&p->mu);
  for (uint32_t i = 0; i < p->threads; i++) {
    worker_t *w = &p->workers[i];
    if (w->c) uv_thread_join(&w->tid);
    px_compute_free(w->c);
    px_net_free(w->net);
    w->c = NULL;
    w->net = NULL;
  }
  uv_close((uv_handle_t *)&p->async, NULL);
}

void px_prov_free(px_provider_t *p) {
  if (!p) return;
  px_prov_close(p);
  for (task_t *t = p->tasks, *next; t; t = next) {
    next = t->next;
    task_free(t);
  }
  while (p->kept)
    kept_remove(p, p->kept);
  for (int i = 0; i < CHUNK_CACHE; i++)
    px_free(p->chunks[i].data);
  px_free(p->workers);
  uv_cond_destroy(&p->cv);
  uv_mutex_destroy(&p->mu);
  px_free(p);
}
