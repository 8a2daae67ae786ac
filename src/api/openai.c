/*
 * openai.c — OpenAI-compatible inference: /v1/models, /v1/completions,
 * /v1/chat/completions over a px_api_backend_t (docs/api.md).
 *
 * Streams (stream: true): a producer thread runs the backend's generation
 * and appends SSE events to a bounded buffer; MHD's content reader hands
 * them to the socket.  When the client goes away, the next write fails, MHD
 * frees the response, and the free callback cancels the producer, whose
 * token callback then returns "stop": generation ends within a token.  The
 * producer waits while more than STREAM_BUF bytes are unsent and the
 * socket's send buffer is fixed and small, so a client that stops reading
 * also stops generation within a few kilobytes (backpressure).
 *
 * Text is emitted through one emitter for both modes, so streamed and
 * non-streamed responses agree byte for byte: stop strings are found across
 * token boundaries (text that might start a stop string is held back until
 * it cannot), and incomplete UTF-8 at the end of a piece waits for the next.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <microhttpd.h>
#include <sodium.h>

#include "plexus/api.h"
#include "plexus/json.h"
#include "api/api_internal.h"
#include "base/px_internal.h"

#define STREAM_BUF (16u << 10)
#define STREAM_SNDBUF (16 << 10) /* fixed: no autotuning to megabytes */
#define MAX_TEXT (8u << 20)      /* generated text kept per request */

/* ---- inference ----------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s[0..n): >0 valid, 0 invalid, -1
 * incomplete (a valid start cut short). */
static int utf8_seq(const unsigned char *s, size_t n) {
  unsigned char c = s[0];
  int len;
  unsigned char lo = 0x80, hi = 0xbf;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf)
    len = 2;
  else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    if (c == 0xe0) lo = 0xa0;
    if (c == 0xed) hi = 0x9f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    if (c == 0xf0) lo = 0x90;
    if (c == 0xf4) hi = 0x8f;
  } else
    return 0;
  for (int i = 1; i < len; i++) {
    if ((size_t)i >= n) return -1;
    unsigned char b = s[i];
    if (i == 1 ? (b < lo || b > hi) : (b < 0x80 || b > 0xbf)) return 0;
  }
  return len;
}

typedef struct emitter emitter_t;
typedef int (*emit_fn)(emitter_t *e, const char *s, size_t n);

struct emitter {
  px_api_t *a;
  const px_api_request_t *req;
  px_buf_t text;  /* everything generated, truncated at a stop string */
  size_t sent;    /* bytes of text handed to emit */
  px_buf_t clean; /* scratch: valid UTF-8 of one emission */
  emit_fn emit;
  int stopped; /* a stop string ended it */
  int abort;   /* emit refused (client gone) */
};

/* Hand text[sent..end) to emit as valid UTF-8: invalid bytes become
 * U+FFFD; an incomplete sequence at the end waits unless final. */
static int emit_upto(emitter_t *e, size_t end, int final) {
  const unsigned char *s = e->text.data;
  px_buf_reset(&e->clean);
  size_t i = e->sent;
  while (i < end) {
    int l = utf8_seq(s + i, end - i);
    if (l > 0) {
      px_buf_append(&e->clean, s + i, (size_t)l);
      i += (size_t)l;
    } else if (l < 0 && !final) {
      break;
    } else {
      px_buf_append(&e->clean, "\xef\xbf\xbd", 3);
      i++;
    }
  }
  e->sent = i;
  if (!e->clean.len) return 0;
  return e->emit(e, (const char *)e->clean.data, e->clean.len);
}

static int on_piece(void *ud, const char *p, size_t n) {
  emitter_t *e = ud;
  if (e->abort || atomic_load(&e->a->closing)) return 1;
  if (px_buf_append(&e->text, p, n)) return 1; /* MAX_TEXT */
  const char *t = (const char *)e->text.data;
  size_t len = e->text.len, hold = 0;
  /* earliest stop string, searching from where a new match could begin */
  size_t best = len;
  for (size_t k = 0; k < e->req->n_stop; k++) {
    const char *st = e->req->stop[k];
    size_t sl = strlen(st);
    size_t from = e->sent;
    for (size_t i = from; i + sl <= len; i++)
      if (!memcmp(t + i, st, sl)) {
        if (i < best) best = i;
        break;
      }
  }
  if (best < len) {
    e->text.len = best;
    e->stopped = 1;
    emit_upto(e, best, 1);
    return 1;
  }
  for (size_t k = 0; k < e->req->n_stop; k++) {
    const char *st = e->req->stop[k];
    size_t sl = strlen(st);
    for (size_t h = PX_MIN(sl - 1, len - e->sent); h > hold; h--)
      if (!memcmp(t + len - h, st, h)) {
        hold = h;
        break;
      }
  }
  if (emit_upto(e, len - hold, 0)) e->abort = 1;
  return e->abort;
}

typedef struct {
  char id[40];
  uint64_t created;
  px_api_request_t req;
  px_api_gen_opts_t go;
  px_buf_t prompt;
  px_buf_t strs; /* own copies of model and stop strings */
  int has_key;   /* charge the tokens to this API key (quotas) */
  size_t key;
} gen_job_t;

/* Copy the strings a generation reads after the request's arena is gone
 * (model, stop) into j->strs and point req at them; the rest (prompt,
 * messages) has been rendered into j->prompt already. */
static int job_own_strings(gen_job_t *j) {
  px_api_request_t *r = &j->req;
  size_t need = strlen(r->model) + 1;
  for (size_t i = 0; i < r->n_stop; i++)
    need += strlen(r->stop[i]) + 1;
  px_buf_init(&j->strs, 0);
  if (px_buf_reserve(&j->strs, need)) return PX_ENOMEM; /* no moves later */
  const char *src[1 + PX_API_MAX_STOP];
  src[0] = r->model;
  for (size_t i = 0; i < r->n_stop; i++)
    src[1 + i] = r->stop[i];
  const char *dst[1 + PX_API_MAX_STOP] = {0};
  for (size_t i = 0; i < 1 + r->n_stop; i++) {
    dst[i] = (const char *)j->strs.data + j->strs.len;
    px_buf_append(&j->strs, src[i], strlen(src[i]) + 1);
  }
  r->model = dst[0];
  for (size_t i = 0; i < r->n_stop; i++)
    r->stop[i] = dst[1 + i];
  r->prompt = NULL;
  r->n_messages = 0;
  return 0;
}

static void job_setup(gen_job_t *j, const px_api_request_t *req) {
  uint8_t r[12];
  randombytes_buf(r, sizeof r);
  char hx[25];
  px_hex_encode(r, sizeof r, hx);
  snprintf(j->id, sizeof j->id, "%s-%s",
           req->kind == PX_API_CHAT ? "chatcmpl" : "cmpl", hx);
  j->created = px_time_wall_ms() / 1000;
  j->req = *req;
  j->go.max_tokens = req->max_tokens;
  j->go.temperature = (float)req->temperature;
  j->go.top_p = (float)req->top_p;
  if (req->has_seed)
    j->go.seed = req->seed;
  else
    randombytes_buf(&j->go.seed, sizeof j->go.seed);
}

/* The head of a response object / chunk, up to "choices":[. */
static void write_head(px_json_writer_t *w, const gen_job_t *j,
                       const char *object) {
  px_json_write_object_begin(w);
  px_json_write_key(w, "id");
  px_json_write_str(w, j->id);
  px_json_write_key(w, "object");
  px_json_write_str(w, object);
  px_json_write_key(w, "created");
  px_json_write_u64(w, j->created);
  px_json_write_key(w, "model");
  px_json_write_str(w, j->req.model);
}

static void write_usage(px_json_writer_t *w, int np, int ng) {
  px_json_write_key(w, "usage");
  px_json_write_object_begin(w);
  px_json_write_key(w, "prompt_tokens");
  px_json_write_i64(w, np);
  px_json_write_key(w, "completion_tokens");
  px_json_write_i64(w, ng);
  px_json_write_key(w, "total_tokens");
  px_json_write_i64(w, np + ng);
  px_json_write_object_end(w);
}

/* One chunk: text (NULL: none), role (first chat chunk), finish (last). */
static void write_chunk(px_buf_t *b, const gen_job_t *j, const char *text,
                        size_t n, int role, const char *finish) {
  px_json_writer_t w;
  px_buf_printf(b, "data: ");
  px_json_writer_init(&w, b);
  int chat = j->req.kind == PX_API_CHAT;
  write_head(&w, j, chat ? "chat.completion.chunk" : "text_completion");
  px_json_write_key(&w, "choices");
  px_json_write_array_begin(&w);
  px_json_write_object_begin(&w);
  px_json_write_key(&w, "index");
  px_json_write_i64(&w, 0);
  if (chat) {
    px_json_write_key(&w, "delta");
    px_json_write_object_begin(&w);
    if (role) {
      px_json_write_key(&w, "role");
      px_json_write_str(&w, "assistant");
    }
    if (text) {
      px_json_write_key(&w, "content");
      px_json_write_strn(&w, text, n);
    }
    px_json_write_object_end(&w);
  } else {
    px_json_write_key(&w, "text");
    px_json_write_strn(&w, text ? text : "", text ? n : 0);
  }
  px_json_write_key(&w, "logprobs");
  px_json_write_null(&w);
  px_json_write_key(&w, "finish_reason");
  if (finish)
    px_json_write_str(&w, finish);
  else
    px_json_write_null(&w);
  px_json_write_object_end(&w);
  px_json_write_array_end(&w);
  px_json_write_object_end(&w);
  px_json_writer_finish(&w);
  px_buf_printf(b, "\n\n");
}

/* ---- non-streaming ------------------------------------------------------- */

typedef struct {
  emitter_t e;
  px_buf_t content;
} collect_t;

static int collect_emit(emitter_t *e, const char *s, size_t n) {
  collect_t *c = (collect_t *)e;
  return px_buf_append(&c->content, s, n);
}

static void count_tokens(px_api_t *a, const gen_job_t *j, int np, int ng) {
  pthread_mutex_lock(&a->mu);
  a->prompt_tokens += (uint64_t)np;
  a->tokens_generated += (uint64_t)ng;
  pthread_mutex_unlock(&a->mu);
  if (j->has_key)
    px_api_keys_charge(a->keys, j->key, (uint64_t)np + (uint64_t)ng,
                       px_time_wall_ms());
}

static int gen_error(struct MHD_Connection *c, req_t *q, int rc,
                     const char *model) {
  if (rc == PX_ENOTFOUND)
    return api_send_error(c, q, 404, "model_not_found",
                          "the model '%s' does not exist (GET /v1/models lists "
                          "them)",
                          model);
  if (rc == PX_ETOOBIG)
    return api_send_error(c, q, 400, "context_length_exceeded",
                          "the prompt does not fit the model's context");
  /* the network backend (node/session_gateway.c) */
  if (rc == PX_EBUSY || rc == PX_ETIMEOUT)
    return api_send_error(c, q, 503, "no_provider",
                          "no provider could serve '%s' now (%s); retry later",
                          model, px_strerror(rc));
  if (rc == PX_EFUNDS)
    return api_send_error(c, q, 402, "insufficient_funds",
                          "the gateway's wallet cannot fund a payment channel "
                          "for '%s'",
                          model);
  return api_send_error(c, q, 500, "generation_failed", "generation failed: %s",
                        px_strerror(rc));
}

static int complete_sync(px_api_t *a, struct MHD_Connection *c, req_t *q,
                         gen_job_t *j) {
  collect_t col;
  memset(&col, 0, sizeof col);
  col.e.a = a;
  col.e.req = &j->req;
  col.e.emit = collect_emit;
  px_buf_init(&col.e.text, MAX_TEXT);
  px_buf_init(&col.e.clean, 0);
  px_buf_init(&col.content, 0);
  int np = 0, ng = 0;
  const char *finish = "stop";
  px_api_backend_t *be = a->cfg.backend;
  int rc = be->generate(be->ud, j->req.model, (const char *)j->prompt.data,
                        &j->go, on_piece, &col.e, &np, &ng, &finish);
  int sent;
  if (rc) {
    sent = gen_error(c, q, rc, j->req.model);
  } else {
    emit_upto(&col.e, col.e.text.len, 1);
    if (col.e.stopped) finish = "stop";
    count_tokens(a, j, np, ng);
    int chat = j->req.kind == PX_API_CHAT;
    px_buf_t b;
    px_buf_init(&b, 0);
    px_json_writer_t w;
    px_json_writer_init(&w, &b);
    write_head(&w, j, chat ? "chat.completion" : "text_completion");
    px_json_write_key(&w, "choices");
    px_json_write_array_begin(&w);
    px_json_write_object_begin(&w);
    px_json_write_key(&w, "index");
    px_json_write_i64(&w, 0);
    if (chat) {
      px_json_write_key(&w, "message");
      px_json_write_object_begin(&w);
      px_json_write_key(&w, "role");
      px_json_write_str(&w, "assistant");
      px_json_write_key(&w, "content");
      px_json_write_strn(&w, (const char *)col.content.data, col.content.len);
      px_json_write_object_end(&w);
    } else {
      px_json_write_key(&w, "text");
      px_json_write_strn(&w, (const char *)col.content.data, col.content.len);
    }
    px_json_write_key(&w, "logprobs");
    px_json_write_null(&w);
    px_json_write_key(&w, "finish_reason");
    px_json_write_str(&w, finish);
    px_json_write_object_end(&w);
    px_json_write_array_end(&w);
    write_usage(&w, np, ng);
    px_json_write_object_end(&w);
    if (px_json_writer_finish(&w))
      sent = api_send_error(c, q, 500, "internal_error", "cannot encode reply");
    else
      sent = api_send_json(c, q, 200, &b);
    px_buf_release(&b);
  }
  px_buf_release(&col.e.text);
  px_buf_release(&col.e.clean);
  px_buf_release(&col.content);
  return sent;
}

/* ---- streaming ----------------------------------------------------------- */

typedef struct {
  emitter_t e; /* first */
  gen_job_t job;
  pthread_t th;
  int th_started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  px_buf_t out;  /* SSE bytes not yet handed to MHD */
  int done;      /* producer finished (out may still hold bytes) */
  int cancelled; /* the response was freed before done */
  int np, ng;
} stream_t;

static int stream_emit(emitter_t *e, const char *s, size_t n) {
  stream_t *st = (stream_t *)e;
  px_buf_t chunk;
  px_buf_init(&chunk, 0);
  write_chunk(&chunk, &st->job, s, n, 0, NULL);
  pthread_mutex_lock(&st->mu);
  while (st->out.len > STREAM_BUF && !st->cancelled &&
         !atomic_load(&e->a->closing)) {
    struct timespec ts;
    api_deadline_in(&ts, WAIT_SLICE_MS);
    pthread_cond_timedwait(&st->cv, &st->mu, &ts);
  }
  int stop = st->cancelled || atomic_load(&e->a->closing);
  if (!stop) px_buf_append(&st->out, chunk.data, chunk.len);
  pthread_cond_broadcast(&st->cv);
  pthread_mutex_unlock(&st->mu);
  px_buf_release(&chunk);
  return stop;
}

static void *stream_main(void *arg) {
  stream_t *st = arg;
  px_api_t *a = st->e.a;
  px_api_backend_t *be = a->cfg.backend;
  const char *finish = "stop";
  int np = 0, ng = 0;
  int rc =
      be->generate(be->ud, st->job.req.model, (const char *)st->job.prompt.data,
                   &st->job.go, on_piece, &st->e, &np, &ng, &finish);
  if (!rc) emit_upto(&st->e, st->e.text.len, 1);
  if (st->e.stopped) finish = "stop";
  px_buf_t tail;
  px_buf_init(&tail, 0);
  if (rc) {
    px_buf_printf(&tail,
                  "data: {\"error\":{\"message\":\"generation failed: %s\","
                  "\"type\":\"server_error\",\"code\":null}}\n\n",
                  px_strerror(rc));
  } else {
    write_chunk(&tail, &st->job, NULL, 0, 0, finish);
    if (st->job.req.include_usage) {
      px_json_writer_t w;
      px_buf_printf(&tail, "data: ");
      px_json_writer_init(&w, &tail);
      write_head(&w, &st->job,
                 st->job.req.kind == PX_API_CHAT ? "chat.completion.chunk"
                                                 : "text_completion");
      px_json_write_key(&w, "choices");
      px_json_write_array_begin(&w);
      px_json_write_array_end(&w);
      write_usage(&w, np, ng);
      px_json_write_object_end(&w);
      px_json_writer_finish(&w);
      px_buf_printf(&tail, "\n\n");
    }
  }
  px_buf_printf(&tail, "data: [DONE]\n\n");
  count_tokens(a, &st->job, np, ng);
  pthread_mutex_lock(&st->mu);
  px_buf_append(&st->out, tail.data, tail.len);
  st->np = np;
  st->ng = ng;
  st->done = 1;
  pthread_cond_broadcast(&st->cv);
  pthread_mutex_unlock(&st->mu);
  px_buf_release(&tail);
  return NULL;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
  (void)pos;
  stream_t *st = cls;
  pthread_mutex_lock(&st->mu);
  while (!st->out.len && !st->done && !atomic_load(&st->e.a->closing)) {
    struct timespec ts;
    api_deadline_in(&ts, WAIT_SLICE_MS);
    pthread_cond_timedwait(&st->cv, &st->mu, &ts);
  }
  ssize_t r;
  if (st->out.len) {
    size_t n = PX_MIN(max, st->out.len);
    memcpy(buf, st->out.data, n);
    px_buf_consume(&st->out, n);
    pthread_cond_broadcast(&st->cv);
    r = (ssize_t)n;
  } else if (st->done) {
    r = MHD_CONTENT_READER_END_OF_STREAM;
  } else {
    r = MHD_CONTENT_READER_END_WITH_ERROR; /* server stopping */
  }
  pthread_mutex_unlock(&st->mu);
  return r;
}

static void stream_free(void *cls) {
  stream_t *st = cls;
  px_api_t *a = st->e.a;
  pthread_mutex_lock(&st->mu);
  int early = !st->done;
  st->cancelled = 1;
  pthread_cond_broadcast(&st->cv);
  pthread_mutex_unlock(&st->mu);
  if (st->th_started) pthread_join(st->th, NULL);
  if (early)
    PX_LOGI(LOGMOD, "stream %s cancelled by the client after %d tokens",
            st->job.id, st->ng);
  pthread_mutex_lock(&a->mu);
  a->streams_active--;
  if (early) a->streams_cancelled++;
  pthread_mutex_unlock(&a->mu);
  px_buf_release(&st->out);
  px_buf_release(&st->e.text);
  px_buf_release(&st->e.clean);
  px_buf_release(&st->job.prompt);
  px_buf_release(&st->job.strs);
  pthread_mutex_destroy(&st->mu);
  pthread_cond_destroy(&st->cv);
  px_free(st);
}

static int complete_stream(px_api_t *a, struct MHD_Connection *c, req_t *q,
                           gen_job_t *j) {
  pthread_mutex_lock(&a->mu);
  if (a->streams_active >= a->cfg.max_streams) {
    pthread_mutex_unlock(&a->mu);
    px_buf_release(&j->prompt);
    px_buf_release(&j->strs);
    return api_send_error(
        c, q, 429, "too_many_streams",
        "too many concurrent streams (the limit is %u); retry "
        "later",
        a->cfg.max_streams);
  }
  a->streams_active++;
  a->streams_total++;
  pthread_mutex_unlock(&a->mu);
  stream_t *st = px_calloc(1, sizeof *st);
  if (!st) {
    pthread_mutex_lock(&a->mu);
    a->streams_active--;
    pthread_mutex_unlock(&a->mu);
    px_buf_release(&j->prompt);
    px_buf_release(&j->strs);
    return api_send_error(c, q, 503, "unavailable", "out of memory");
  }
  st->job = *j; /* takes the prompt */
  st->e.a = a;
  st->e.req = &st->job.req;
  st->e.emit = stream_emit;
  px_buf_init(&st->e.text, MAX_TEXT);
  px_buf_init(&st->e.clean, 0);
  px_buf_init(&st->out, 0);
  pthread_mutex_init(&st->mu, NULL);
  api_cond_init_mono(&st->cv);
  if (j->req.kind == PX_API_CHAT) /* the role comes first */
    write_chunk(&st->out, &st->job, "", 0, 1, NULL);
  struct MHD_Response *r = MHD_create_response_from_callback(
      MHD_SIZE_UNKNOWN, 16384, stream_read, st, stream_free);
  if (!r) {
    stream_free(st);
    return MHD_NO;
  }
  if (pthread_create(&st->th, NULL, stream_main, st) == 0)
    st->th_started = 1;
  else {
    st->done = 1; /* the reader ends at once */
  }
  /* A small fixed socket buffer: generation runs at most a few dozen
   * kilobytes ahead of what the client has read. */
  const union MHD_ConnectionInfo *ci =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
  int sndbuf = STREAM_SNDBUF;
  if (ci)
    setsockopt(ci->connect_fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  MHD_add_response_header(r, "Content-Type", "text/event-stream");
  MHD_add_response_header(r, "Cache-Control", "no-cache");
  q->status = 200;
  q->answered = 1;
  int ok = MHD_queue_response(c, 200, r);
  MHD_destroy_response(r); /* MHD holds it; stream_free runs at the end */
  return ok;
}

int api_route_completion(px_api_t *a, struct MHD_Connection *c, req_t *q,
                         px_api_kind_t kind) {
  px_api_backend_t *be = a->cfg.backend;
  px_arena_t arena;
  px_arena_init(&arena, 4096, 64u << 20);
  px_api_request_t *req = px_malloc(sizeof *req);
  char err[512];
  int sent;
  if (!req) {
    px_arena_release(&arena);
    return api_send_error(c, q, 503, "unavailable", "out of memory");
  }
  int rc = px_api_decode_request(&arena, kind, q->body.data, q->body.len, req,
                                 err, sizeof err);
  if (rc) {
    sent = api_send_error(c, q, 400,
                          rc == PX_EDECODE ? "invalid_json" : "invalid_request",
                          "%s", err);
    goto done;
  }
  size_t i = 0, nm = be->n_models(be->ud);
  while (i < nm && strcmp(be->model_name(be->ud, i), req->model))
    i++;
  if (i == nm) {
    sent = gen_error(c, q, PX_ENOTFOUND, req->model);
    goto done;
  }
  gen_job_t j;
  memset(&j, 0, sizeof j);
  job_setup(&j, req);
  j.has_key = q->has_key;
  j.key = q->key;
  px_buf_init(&j.prompt, 16u << 20);
  if (be->render_prompt(be->ud, req, &j.prompt) ||
      px_buf_append(&j.prompt, "", 1)) {
    px_buf_release(&j.prompt);
    sent =
        api_send_error(c, q, 400, "invalid_request", "the prompt is too long");
    goto done;
  }
  j.prompt.len--; /* keep the NUL out of the length */
  if (job_own_strings(&j)) {
    px_buf_release(&j.prompt);
    sent = api_send_error(c, q, 503, "unavailable", "out of memory");
    goto done;
  }
  if (req->stream) {
    sent = complete_stream(a, c, q, &j); /* takes j's buffers */
  } else {
    sent = complete_sync(a, c, q, &j);
    px_buf_release(&j.prompt);
    px_buf_release(&j.strs);
  }
done:
  px_free(req);
  px_arena_release(&arena);
  return sent;
}

int api_route_models(px_api_t *a, struct MHD_Connection *c, req_t *q) {
  px_api_backend_t *be = a->cfg.backend;
  px_buf_t b;
  px_buf_init(&b, 0);
  px_json_writer_t w;
  px_json_writer_init(&w, &b);
  px_json_write_object_begin(&w);
  px_json_write_key(&w, "object");
  px_json_write_str(&w, "list");
  px_json_write_key(&w, "data");
  px_json_write_array_begin(&w);
  size_t n = be->n_models(be->ud);
  for (size_t i = 0; i < n; i++) {
    px_json_write_object_begin(&w);
    px_json_write_key(&w, "id");
    px_json_write_str(&w, be->model_name(be->ud, i));
    px_json_write_key(&w, "object");
    px_json_write_str(&w, "model");
    px_json_write_key(&w, "created");
    px_json_write_u64(&w, 0);
    px_json_write_key(&w, "owned_by");
    px_json_write_str(&w, "plexus");
    px_json_write_object_end(&w);
  }
  px_json_write_array_end(&w);
  px_json_write_object_end(&w);
  int sent = px_json_writer_finish(&w)
                 ? api_send_error(c, q, 500, "internal_error", "bad model name")
                 : api_send_json(c, q, 200, &b);
  px_buf_release(&b);
  return sent;
}
