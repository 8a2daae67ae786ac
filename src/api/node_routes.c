/*
 * node_routes.c — the gateway's node role (`plexus node --http`): /health,
 * /metrics, /chain/..., /providers, /upow and /v1/jobs (docs/api.md).
 *
 * Every answer comes from the node's own control commands (the JSON the CLI
 * gets: chain.c, market.c, requester.c, provider.c, miner.c), run on the
 * node's loop thread: the connection thread hands the command line over
 * with px_node_call and waits on a condition variable, in 100 ms slices so
 * that a stopping server releases it at once, for at most call_timeout_ms
 * (504).  The call object is reference-counted between the two threads, so
 * a waiter that gave up never frees what the loop is about to write.  Path
 * parameters are validated (digits, 64 hex digits) before they become part
 * of a command line.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "plexus/api.h"
#include "plexus/json.h"
#include "plexus/node.h"
#include "plexus/upow.h"
#include "api/api_internal.h"
#include "api/static.h"
#include "base/px_internal.h"

typedef struct {
  px_api_t *a;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  int refs, done, rc;
  char *line;
  px_buf_t out;
} call_t;

static void call_unref(call_t *k) {
  pthread_mutex_lock(&k->mu);
  int last = --k->refs == 0;
  pthread_mutex_unlock(&k->mu);
  if (!last) return;
  pthread_mutex_destroy(&k->mu);
  pthread_cond_destroy(&k->cv);
  px_free(k->line);
  px_buf_release(&k->out);
  px_free(k);
}

static void call_on_loop(px_node_t *n, px_p2p_t *p2p, void *ud) {
  (void)p2p;
  call_t *k = ud;
  int rc = k->a->cfg.command(n, k->line, &k->out);
  pthread_mutex_lock(&k->mu);
  k->rc = rc;
  k->done = 1;
  pthread_cond_signal(&k->cv);
  pthread_mutex_unlock(&k->mu);
  call_unref(k);
}

/* Run one control command on the loop and wait for its JSON reply (heap,
 * *out).  PX_ETIMEOUT, PX_ECLOSED (server stopping), PX_ENOTFOUND (no such
 * command in this node), PX_ENOMEM. */
static int node_command(px_api_t *a, const char *line, px_buf_t *out) {
  call_t *k = px_calloc(1, sizeof *k);
  if (!k) return PX_ENOMEM;
  size_t n = strlen(line);
  if (!(k->line = px_malloc(n + 1))) {
    px_free(k);
    return PX_ENOMEM;
  }
  memcpy(k->line, line, n + 1);
  k->a = a;
  k->refs = 2;
  pthread_mutex_init(&k->mu, NULL);
  api_cond_init_mono(&k->cv);
  px_buf_init(&k->out, 0);
  if (px_node_call(a->cfg.node, call_on_loop, k)) {
    k->refs = 1;
    call_unref(k);
    return PX_ENOMEM;
  }
  uint64_t t0 = px_time_mono_ms();
  int rc = 0;
  pthread_mutex_lock(&k->mu);
  while (!k->done) {
    if (atomic_load(&a->closing)) {
      rc = PX_ECLOSED;
      break;
    }
    if (px_time_mono_ms() - t0 >= a->cfg.call_timeout_ms) {
      rc = PX_ETIMEOUT;
      break;
    }
    struct timespec ts;
    api_deadline_in(&ts, WAIT_SLICE_MS);
    pthread_cond_timedwait(&k->cv, &k->mu, &ts);
  }
  if (k->done) {
    rc = k->rc;
    px_buf_release(out); /* callers reuse one buffer: free what it held */
    *out = k->out;       /* move */
    px_buf_init(&k->out, 0);
  }
  pthread_mutex_unlock(&k->mu);
  call_unref(k);
  return rc;
}

/* Run `line`; on success *root is the parsed reply (in arena) and raw the
 * text.  On failure an error response has been sent and MHD_YES/NO is in
 * *sent. */
static int node_json(px_api_t *a, struct MHD_Connection *c, req_t *q,
                     const char *line, px_arena_t *arena, px_buf_t *raw,
                     px_json_t **root, int *sent) {
  *root = NULL;
  int rc = node_command(a, line, raw);
  if (rc == PX_ENOTFOUND) {
    *sent = api_send_error(c, q, 404, "not_found",
                           "this node does not serve that (no chain or market "
                           "here)");
    return rc;
  }
  if (rc == PX_ETIMEOUT) {
    *sent = api_send_error(c, q, 504, "timeout",
                           "the node did not answer within %llu ms",
                           (unsigned long long)a->cfg.call_timeout_ms);
    return rc;
  }
  if (rc) {
    *sent = api_send_error(c, q, 503, "unavailable", "the node is %s",
                           rc == PX_ECLOSED ? "stopping" : px_strerror(rc));
    return rc;
  }
  rc = px_json_parse(arena, raw->data, raw->len, NULL, root, NULL);
  if (rc || (*root)->type != PX_JSON_OBJECT) {
    *sent = api_send_error(c, q, 500, "internal_error",
                           "the node's reply is not a JSON object");
    return rc ? rc : PX_EDECODE;
  }
  int ok = 1;
  if (px_json_get_bool(*root, "ok", &ok) == 0 && !ok) {
    const char *err = "", *msg = "failed";
    px_json_get_str(*root, "error", &err);
    px_json_get_str(*root, "message", &msg);
    unsigned st = !strcmp(err, "PX_ENOTFOUND")                             ? 404
                  : !strcmp(err, "PX_EINVAL") || !strcmp(err, "PX_ERANGE") ? 400
                  : !strcmp(err, "PX_ESTATE")                              ? 409
                                              : 500;
    *sent = api_send_error(c, q, st, err[0] ? err : NULL, "%s", msg);
    return PX_EINVAL;
  }
  return 0;
}

/* ---- node routes --------------------------------------------------------- */

/* Reject query parameters a route does not take (typos are not ignored). */
int api_check_query(struct MHD_Connection *c, req_t *q,
                    const char *const *allowed, int *sent) {
  const char *p = q->query;
  while (p && *p) {
    const char *end = strchr(p, '&');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    const char *eq = memchr(p, '=', n);
    size_t nk = eq ? (size_t)(eq - p) : n;
    int ok = 0;
    for (size_t i = 0; allowed[i]; i++)
      ok |= strlen(allowed[i]) == nk && !memcmp(allowed[i], p, nk);
    if (!ok && nk) {
      *sent = api_send_error(c, q, 400, "invalid_query",
                             "unsupported query parameter '%.*s'",
                             (int)PX_MIN(nk, 64), p);
      return PX_EINVAL;
    }
    if (!end) break;
    p = end + 1;
  }
  return 0;
}

/* Pass the node's reply through (it is already our JSON). */
int api_route_simple(px_api_t *a, struct MHD_Connection *c, req_t *q,
                     const char *line) {
  px_arena_t arena;
  px_arena_init(&arena, 1 << 16, 64u << 20);
  px_buf_t raw;
  px_buf_init(&raw, 0);
  px_json_t *root;
  int sent = MHD_YES;
  if (node_json(a, c, q, line, &arena, &raw, &root, &sent) == 0)
    sent = api_send_json(c, q, 200, &raw);
  px_buf_release(&raw);
  px_arena_release(&arena);
  return sent;
}

uint64_t api_jget_u64(const px_json_t *o, const char *path) {
  /* "a.b.c" */
  char key[64];
  const px_json_t *v = o;
  while (v && *path) {
    const char *dot = strchr(path, '.');
    size_t n = dot ? (size_t)(dot - path) : strlen(path);
    if (n >= sizeof key) return 0;
    memcpy(key, path, n);
    key[n] = 0;
    v = px_json_get(v, key);
    path += n + (dot ? 1 : 0);
  }
  uint64_t u = 0;
  if (v && v->type == PX_JSON_TRUE) return 1;
  if (!v || px_json_as_u64(v, &u)) return 0;
  return u;
}

int api_route_blocks(px_api_t *a, struct MHD_Connection *c, req_t *q) {
  static const char *const allowed[] = {"from", "limit", NULL};
  int sent = MHD_YES;
  if (api_check_query(c, q, allowed, &sent)) return sent;
  px_arena_t arena;
  px_arena_init(&arena, 1 << 16, 64u << 20);
  px_buf_t raw, out;
  px_buf_init(&raw, 0);
  px_buf_init(&out, 0);
  px_json_t *root;
  if (node_json(a, c, q, "chain", &arena, &raw, &root, &sent)) goto done;
  uint64_t tip = api_jget_u64(root, "chain.height");
  uint64_t limit = 20, from = tip > 19 ? tip - 19 : 1;
  int rc1 = px_api_query_u64(q->query, "from", UINT64_MAX, &from);
  int rc2 = px_api_query_u64(q->query, "limit", 100, &limit);
  if ((rc1 && rc1 != PX_ENOTFOUND) || (rc2 && rc2 != PX_ENOTFOUND) ||
      limit == 0 || from == 0) {
    sent = api_send_error(c, q, 400, "invalid_query",
                          "from must be a block height >= 1 and limit a number "
                          "from 1 to 100");
    goto done;
  }
  px_buf_printf(&out, "{\"height\":%llu,\"from\":%llu,\"blocks\":[",
                (unsigned long long)tip, (unsigned long long)from);
  uint64_t h = from, n = 0;
  for (; h <= tip && n < limit; h++, n++) {
    char line[64];
    snprintf(line, sizeof line, "block %llu", (unsigned long long)h);
    px_buf_reset(&raw);
    if (node_json(a, c, q, line, &arena, &raw, &root, &sent)) goto done;
    if (n) px_buf_append(&out, ",", 1);
    px_buf_append(&out, raw.data, raw.len);
  }
  if (h <= tip)
    px_buf_printf(&out, "],\"next\":%llu}", (unsigned long long)h);
  else
    px_buf_printf(&out, "],\"next\":null}");
  sent = api_send_json(c, q, 200, &out);
done:
  px_buf_release(&raw);
  px_buf_release(&out);
  px_arena_release(&arena);
  return sent;
}

int api_route_jobs_post(px_api_t *a, struct MHD_Connection *c, req_t *q) {
  /* job_submit takes the body as one JSON line: re-serialise it compactly
   * (a body may hold newlines between tokens). */
  px_arena_t arena;
  px_arena_init(&arena, 4096, 8u << 20);
  px_json_t *root = NULL;
  int sent;
  if (px_json_parse(&arena, q->body.data, q->body.len, NULL, &root, NULL) ||
      root->type != PX_JSON_OBJECT) {
    px_arena_release(&arena);
    return api_send_error(c, q, 400, "invalid_json",
                          "the request body must be a JSON object (the job "
                          "spec, docs/api.md)");
  }
  px_buf_t line;
  px_buf_init(&line, 0);
  px_buf_printf(&line, "job_submit ");
  px_json_writer_t w;
  px_json_writer_init(&w, &line);
  px_json_write_value(&w, root);
  px_buf_append(&line, "", 1);
  if (px_json_writer_finish(&w))
    sent =
        api_send_error(c, q, 400, "invalid_json", "cannot re-encode the body");
  else
    sent = api_route_simple(a, c, q, (const char *)line.data);
  px_buf_release(&line);
  px_arena_release(&arena);
  return sent;
}

int api_node_metrics(px_api_t *a, struct MHD_Connection *c, req_t *q,
                     px_buf_t *b) {
  px_arena_t arena;
  px_arena_init(&arena, 1 << 16, 64u << 20);
  px_buf_t raw;
  px_buf_init(&raw, 0);
  px_json_t *st, *jobs = NULL;
  int sent = MHD_YES;
  if (node_json(a, c, q, "status", &arena, &raw, &st, &sent)) goto fail;
  struct {
    const char *name, *type, *path, *help;
  } g[] = {
      {"plexus_height", "gauge", "chain.height", "committed block height"},
      {"plexus_round", "gauge", "chain.round", "consensus round"},
      {"plexus_consensus_height", "gauge", "chain.cons_height",
       "height consensus is deciding"},
      {"plexus_peers", "gauge", "peer_count", "connected peers"},
      {"plexus_validators", "gauge", "chain.validators", "validator count"},
      {"plexus_mempool_txs", "gauge", "chain.mempool", "transactions pending"},
      {"plexus_mempool_bytes", "gauge", "chain.mempool_bytes", "bytes pending"},
      {"plexus_txs_committed_total", "counter", "chain.txs_committed",
       "transactions committed since start"},
      {"plexus_txs_rejected_total", "counter", "chain.txs_rejected",
       "transactions rejected since start"},
      {"plexus_blocks_decided_total", "counter", "chain.blocks_decided",
       "blocks decided by consensus since start"},
      {"plexus_slashing_evidence_total", "counter", "chain.evidence_committed",
       "equivocation evidence committed (slashes)"},
      {"plexus_shards_busy", "gauge", "market.shards_busy",
       "shards this node is computing"},
      {"plexus_provider_shards_done_total", "counter", "market.provider.done",
       "shards computed as a provider"},
      {"plexus_provider_shards_failed_total", "counter",
       "market.provider.failed", "shards failed as a provider"},
      {"plexus_provider_leases_total", "counter", "market.provider.accepted",
       "shard leases accepted as a provider"},
      {"plexus_jobs_active", "gauge", "market.requester.active",
       "jobs this node requested that are running"},
      {"plexus_upow_solutions_total", "counter", "upow.found",
       "uPoW solutions found"},
      {"plexus_upow_epoch", "gauge", "upow.epoch", "uPoW epoch"},
      /* network inference (node/session_gateway.c) */
      {"plexus_sessions_active", "gauge", "gateway.active",
       "inference sessions and audits running on providers"},
      {"plexus_sessions_total", "counter", "gateway.sessions",
       "inference sessions finished by providers"},
      {"plexus_session_tokens_total", "counter", "gateway.tokens",
       "tokens received from providers"},
      {"plexus_session_stalls_replaced_total", "counter",
       "gateway.stalls_replaced", "stalled providers replaced mid-stream"},
      {"plexus_session_audits_total", "counter", "gateway.audits",
       "sessions audited by replay on another provider"},
      {"plexus_session_disputes_total", "counter", "gateway.disputes",
       "SESSION_DISPUTE transactions submitted after a failed audit"},
      {"plexus_session_disputes_upheld_total", "counter",
       "gateway.disputes_upheld", "session disputes that slashed a provider"},
  };
  for (size_t i = 0; i < PX_ARRAY_LEN(g); i++) {
    api_metric(b, g[i].name, g[i].type, g[i].help);
    px_buf_printf(b, "%s %llu\n", g[i].name,
                  (unsigned long long)api_jget_u64(st, g[i].path));
  }
  uint64_t now = px_time_mono_ms(), h = api_jget_u64(st, "chain.height"),
           tx = api_jget_u64(st, "chain.txs_committed");
  pthread_mutex_lock(&a->mu);
  if (!a->prev_t_ms) {
    a->prev_t_ms = now;
    a->prev_height = h;
    a->prev_txs = tx;
  } else if (now - a->prev_t_ms >= 1000) {
    double dt = (double)(now - a->prev_t_ms) / 1000.0;
    a->tx_per_s = (double)(tx - a->prev_txs) / dt;
    if (h > a->prev_height) a->block_time_s = dt / (double)(h - a->prev_height);
    a->prev_t_ms = now;
    a->prev_height = h;
    a->prev_txs = tx;
  }
  double tps = a->tx_per_s, bt = a->block_time_s;
  pthread_mutex_unlock(&a->mu);
  api_metric(b, "plexus_tx_per_second", "gauge",
             "transactions committed per second between scrapes");
  px_buf_printf(b, "plexus_tx_per_second %.3f\n", tps);
  api_metric(b, "plexus_block_time_seconds", "gauge",
             "mean seconds per block between scrapes");
  px_buf_printf(b, "plexus_block_time_seconds %.3f\n", bt);
  /* jobs by state */
  px_buf_reset(&raw);
  if (node_command(a, "job_list", &raw) == 0 &&
      px_json_parse(&arena, raw.data, raw.len, NULL, &jobs, NULL) == 0) {
    const px_json_t *list = px_json_get(jobs, "jobs");
    static const char *const states[] = {"open", "running", "settling",
                                         "settled", "failed"};
    api_metric(b, "plexus_jobs", "gauge", "jobs this node requested, by state");
    uint64_t other = 0, cnt[PX_ARRAY_LEN(states)] = {0};
    for (size_t i = 0; i < px_json_count(list); i++) {
      const char *s = "";
      px_json_get_str(px_json_at(list, i), "state", &s);
      size_t k = 0;
      while (k < PX_ARRAY_LEN(states) && strcmp(states[k], s))
        k++;
      if (k < PX_ARRAY_LEN(states))
        cnt[k]++;
      else
        other++;
    }
    for (size_t k = 0; k < PX_ARRAY_LEN(states); k++)
      px_buf_printf(b, "plexus_jobs{state=\"%s\"} %llu\n", states[k],
                    (unsigned long long)cnt[k]);
    px_buf_printf(b, "plexus_jobs{state=\"other\"} %llu\n",
                  (unsigned long long)other);
  }
  /* the provider registry (on chain): audits, disputes, shards */
  px_buf_reset(&raw);
  px_json_t *pr = NULL;
  if (node_command(a, "providers", &raw) == 0 &&
      px_json_parse(&arena, raw.data, raw.len, NULL, &pr, NULL) == 0) {
    const px_json_t *list = px_json_get(pr, "providers");
    uint64_t sum[8] = {0}, active = 0;
    static const char *const f[8] = {
        "audits_passed",    "audits_failed",  "disputes_won", "disputes_lost",
        "shards_completed", "leases_expired", "earned",       "slashed"};
    for (size_t i = 0; i < px_json_count(list); i++) {
      const px_json_t *p = px_json_at(list, i);
      for (int k = 0; k < 8; k++)
        sum[k] += api_jget_u64(p, f[k]);
      active += api_jget_u64(p, "active");
    }
    api_metric(b, "plexus_providers", "gauge",
               "registered providers, by state");
    px_buf_printf(b, "plexus_providers{state=\"active\"} %llu\n",
                  (unsigned long long)active);
    px_buf_printf(b, "plexus_providers{state=\"inactive\"} %llu\n",
                  (unsigned long long)(px_json_count(list) - active));
    api_metric(b, "plexus_audits_total", "counter",
               "shard audits on chain, by outcome for the audited provider");
    px_buf_printf(b, "plexus_audits_total{outcome=\"passed\"} %llu\n",
                  (unsigned long long)sum[0]);
    px_buf_printf(b, "plexus_audits_total{outcome=\"failed\"} %llu\n",
                  (unsigned long long)sum[1]);
    api_metric(
        b, "plexus_disputes_total", "counter",
        "disputes on chain, by outcome for the provider (lost: slashed)");
    px_buf_printf(b, "plexus_disputes_total{outcome=\"won\"} %llu\n",
                  (unsigned long long)sum[2]);
    px_buf_printf(b, "plexus_disputes_total{outcome=\"lost\"} %llu\n",
                  (unsigned long long)sum[3]);
    api_metric(b, "plexus_shards_completed_total", "counter",
               "shards completed by all providers (on chain)");
    px_buf_printf(b, "plexus_shards_completed_total %llu\n",
                  (unsigned long long)sum[4]);
    api_metric(b, "plexus_leases_expired_total", "counter",
               "shard leases that expired (on chain)");
    px_buf_printf(b, "plexus_leases_expired_total %llu\n",
                  (unsigned long long)sum[5]);
    api_metric(b, "plexus_provider_earned_total", "counter",
               "tokens earned by all providers (on chain)");
    px_buf_printf(b, "plexus_provider_earned_total %llu\n",
                  (unsigned long long)sum[6]);
    api_metric(b, "plexus_slashed_tokens_total", "counter",
               "provider stake slashed in disputes (on chain)");
    px_buf_printf(b, "plexus_slashed_tokens_total %llu\n",
                  (unsigned long long)sum[7]);
  }
  px_buf_release(&raw);
  px_arena_release(&arena);
  return -1; /* nothing sent */
fail:
  px_buf_release(&raw);
  px_arena_release(&arena);
  return sent;
}

int api_route_health(px_api_t *a, struct MHD_Connection *c, req_t *q) {
  px_buf_t b;
  px_buf_init(&b, 0);
  int sent;
  if (a->cfg.node) {
    px_arena_t arena;
    px_arena_init(&arena, 1 << 16, 64u << 20);
    px_buf_t raw;
    px_buf_init(&raw, 0);
    px_json_t *st;
    sent = MHD_YES;
    if (node_json(a, c, q, "status", &arena, &raw, &st, &sent) == 0) {
      const char *id = "";
      px_json_get_str(st, "node_id", &id);
      px_buf_printf(&b,
                    "{\"ok\":true,\"node_id\":\"%s\",\"height\":%llu,"
                    "\"peers\":%llu,\"uptime_ms\":%llu}",
                    api_is_hex(id, 64) ? id : "",
                    (unsigned long long)api_jget_u64(st, "chain.height"),
                    (unsigned long long)api_jget_u64(st, "peer_count"),
                    (unsigned long long)api_jget_u64(st, "uptime_ms"));
      sent = api_send_json(c, q, 200, &b);
    }
    px_buf_release(&raw);
    px_arena_release(&arena);
  } else {
    px_buf_printf(&b, "{\"ok\":true}");
    sent = api_send_json(c, q, 200, &b);
  }
  px_buf_release(&b);
  return sent;
}

/* ---- the explorer's read-only routes (static.h) -------------------------- */

int api_route_jobs_public(px_api_t *a, struct MHD_Connection *c, req_t *q,
                          const char *id_hex) {
  static const char *const none[] = {NULL};
  static const char *const allowed[] = {"limit", NULL};
  int sent = MHD_YES;
  if (api_check_query(c, q, id_hex ? none : allowed, &sent)) return sent;
  char line[128];
  if (id_hex) {
    snprintf(line, sizeof line, "job_status %s", id_hex);
    return api_route_simple(a, c, q, line);
  }
  uint64_t limit = 20;
  int rc = px_api_query_u64(q->query, "limit", 100, &limit);
  if ((rc && rc != PX_ENOTFOUND) || limit == 0)
    return api_send_error(c, q, 400, "invalid_query",
                          "limit must be a number from 1 to 100");
  px_arena_t arena;
  px_arena_init(&arena, 1 << 16, 64u << 20);
  px_buf_t raw, out;
  px_buf_init(&raw, 0);
  px_buf_init(&out, 0);
  px_json_t *root, *st;
  if (node_json(a, c, q, "job_list", &arena, &raw, &root, &sent)) goto done;
  const px_json_t *list = px_json_get(root, "jobs");
  size_t n = px_json_count(list);
  /* job_list is newest first; copy the ids out of the reply before raw is
   * reused */
  char(*ids)[65] = px_calloc(n ? n : 1, sizeof *ids);
  if (!ids) {
    sent = api_send_error(c, q, 503, "unavailable", "out of memory");
    goto done;
  }
  size_t k = 0;
  for (size_t i = 0; i < n && k < limit; i++) {
    const char *id = "";
    px_json_get_str(px_json_at(list, i), "job", &id);
    if (api_is_hex(id, 64)) memcpy(ids[k++], id, 65);
  }
  px_buf_printf(&out, "{\"ok\":true,\"total\":%zu,\"jobs\":[", n);
  for (size_t i = 0; i < k; i++) {
    snprintf(line, sizeof line, "job_status %s", ids[i]);
    px_buf_reset(&raw);
    if (node_json(a, c, q, line, &arena, &raw, &st, &sent)) {
      px_free(ids);
      goto done;
    }
    if (i) px_buf_append(&out, ",", 1);
    px_buf_append(&out, raw.data, raw.len);
  }
  px_free(ids);
  px_buf_printf(&out, "]}");
  sent = api_send_json(c, q, 200, &out);
done:
  px_buf_release(&raw);
  px_buf_release(&out);
  px_arena_release(&arena);
  return sent;
}

int api_route_upow_epochs(px_api_t *a, struct MHD_Connection *c, req_t *q) {
  static const char *const allowed[] = {"from", "limit", NULL};
  int sent = MHD_YES;
  if (api_check_query(c, q, allowed, &sent)) return sent;
  px_arena_t arena;
  px_arena_init(&arena, 1 << 16, 64u << 20);
  px_buf_t raw, out;
  px_buf_init(&raw, 0);
  px_buf_init(&out, 0);
  px_json_t *root;
  if (node_json(a, c, q, "upow", &arena, &raw, &root, &sent)) goto done;
  /* epochs before the current one have published their model */
  uint64_t cur = api_jget_u64(root, "upow.epoch");
  uint64_t limit = 50, from = cur > 50 ? cur - 50 : 0;
  int rc1 = px_api_query_u64(q->query, "from", UINT64_MAX, &from);
  int rc2 = px_api_query_u64(q->query, "limit", 100, &limit);
  if ((rc1 && rc1 != PX_ENOTFOUND) || (rc2 && rc2 != PX_ENOTFOUND) ||
      limit == 0) {
    sent = api_send_error(c, q, 400, "invalid_query",
                          "from must be an epoch number and limit a number "
                          "from 1 to 100");
    goto done;
  }
  px_upow_params_t pp;
  px_upow_params_default(&pp);
  px_buf_printf(&out,
                "{\"ok\":true,\"epoch\":%llu,\"eval_n\":%u,\"from\":%llu,"
                "\"epochs\":[",
                (unsigned long long)cur, pp.eval_n, (unsigned long long)from);
  uint64_t e = from, n = 0;
  int first = 1;
  for (; e < cur && n < limit; e++, n++) {
    char line[64];
    snprintf(line, sizeof line, "upow_published %llu", (unsigned long long)e);
    px_buf_reset(&raw);
    px_json_t *pub = NULL;
    int rc = node_command(a, line, &raw);
    if (rc == PX_ETIMEOUT || rc == PX_ECLOSED) {
      sent = api_send_error(c, q, rc == PX_ETIMEOUT ? 504 : 503,
                            rc == PX_ETIMEOUT ? "timeout" : "unavailable",
                            "the node did not answer");
      goto done;
    }
    int ok = 0;
    if (rc || px_json_parse(&arena, raw.data, raw.len, NULL, &pub, NULL) ||
        pub->type != PX_JSON_OBJECT || px_json_get_bool(pub, "ok", &ok) || !ok)
      continue; /* not published (yet) */
    /* the record without "ok" and the node-local "path" of the model */
    px_json_writer_t w;
    if (!first) px_buf_append(&out, ",", 1);
    first = 0;
    px_json_writer_init(&w, &out);
    px_json_write_object_begin(&w);
    for (size_t i = 0; i < pub->n; i++) {
      const px_json_member_t *m = &pub->members[i];
      if (!strcmp(m->key, "ok") || !strcmp(m->key, "path")) continue;
      px_json_write_key(&w, m->key);
      px_json_write_value(&w, m->value);
    }
    px_json_write_object_end(&w);
    px_json_writer_finish(&w);
  }
  if (e < cur)
    px_buf_printf(&out, "],\"next\":%llu}", (unsigned long long)e);
  else
    px_buf_printf(&out, "],\"next\":null}");
  sent = api_send_json(c, q, 200, &out);
done:
  px_buf_release(&raw);
  px_buf_release(&out);
  px_arena_release(&arena);
  return sent;
}
