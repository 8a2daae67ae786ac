/*
 * api_internal.h — private to src/api: the server object, the per-request
 * state, and the helpers the route files share (api.c: server, routing,
 * errors, keys check, the gateway's own metrics; node_routes.c: the node
 * role through px_node_call; openai.c: OpenAI-compatible inference).
 */
#ifndef PX_API_INTERNAL_H
#define PX_API_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#include <microhttpd.h>

#include "plexus/api.h"
#include "plexus/json.h"

#define LOGMOD "api"
#define WAIT_SLICE_MS 100
#define N_BUCKETS 12

struct px_api {
  px_api_config_t cfg;
  char listen[128];
  char addr[160];
  px_api_keys_t *keys;
  struct MHD_Daemon *d;
  atomic_int closing;
  pthread_mutex_t mu; /* everything below */
  unsigned streams_active;
  uint64_t streams_total, streams_cancelled, tokens_generated, prompt_tokens;
  uint64_t requests_by_class[6]; /* 1xx..5xx by status / 100 */
  uint64_t lat_buckets[N_BUCKETS + 1];
  double lat_sum;
  uint64_t lat_count;
  /* for rates between /metrics scrapes */
  uint64_t prev_t_ms, prev_height, prev_txs;
  double tx_per_s, block_time_s;
};

typedef struct {
  char *query; /* raw, after '?', heap; "" if none */
  px_buf_t body;
  int too_big;
  int answered;
  uint64_t t0_ns;
  unsigned status;
  int has_key; /* authorised by key number `key` (quotas, keys.c) */
  size_t key;
} req_t;

/* ---- responses (api.c) ----------------------------------------------------
 */

int api_send_bytes(struct MHD_Connection *c, unsigned status, const char *type,
                   const void *p, size_t n);
/* Records the status in q for the metrics. */
int api_send_json(struct MHD_Connection *c, req_t *q, unsigned status,
                  const px_buf_t *b);
/* {"error":{"message","type","code","param"}}; code NULL is null. */
int api_send_error(struct MHD_Connection *c, req_t *q, unsigned status,
                   const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* The same with an explicit error type, and a Retry-After header when
 * retry_after_s (429 over a key's quota). */
int api_send_error_ex(struct MHD_Connection *c, req_t *q, unsigned status,
                      const char *type, const char *code,
                      uint64_t retry_after_s, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));
void api_metric(px_buf_t *b, const char *name, const char *type,
                const char *help);
int api_is_hex(const char *s, size_t n);
/* Waits on CLOCK_MONOTONIC condition variables in WAIT_SLICE_MS slices. */
void api_deadline_in(struct timespec *ts, unsigned ms);
void api_cond_init_mono(pthread_cond_t *cv);

/* ---- node role (node_routes.c) ------------------------------------------- */

int api_check_query(struct MHD_Connection *c, req_t *q,
                    const char *const *allowed, int *sent);
/* Run one control line on the node's loop; the reply JSON as the body. */
int api_route_simple(px_api_t *a, struct MHD_Connection *c, req_t *q,
                     const char *line);
/* Unsigned integer at "a.b.c" in a parsed reply (true is 1), else 0. */
uint64_t api_jget_u64(const px_json_t *o, const char *path);
int api_route_blocks(px_api_t *a, struct MHD_Connection *c, req_t *q);
int api_route_jobs_post(px_api_t *a, struct MHD_Connection *c, req_t *q);
int api_route_health(px_api_t *a, struct MHD_Connection *c, req_t *q);
/* Append the node's series to b; -1 when nothing was sent, else an error
 * response has been sent and this is its MHD result. */
int api_node_metrics(px_api_t *a, struct MHD_Connection *c, req_t *q,
                     px_buf_t *b);

/* ---- inference (openai.c) -------------------------------------------------
 */

int api_route_models(px_api_t *a, struct MHD_Connection *c, req_t *q);
int api_route_completion(px_api_t *a, struct MHD_Connection *c, req_t *q,
                         px_api_kind_t kind);

#endif
