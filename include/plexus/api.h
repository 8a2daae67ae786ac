/*
 * plexus/api.h — the HTTP gateway: OpenAI-compatible inference, the job,
 * chain and node API, Prometheus metrics (docs/api.md).
 *
 * The server runs on libmicrohttpd's own threads (one per connection, a
 * capped number of connections), never on the node's libuv loop: a request
 * that needs node state is handed to the loop with px_node_call and the
 * connection thread waits for the answer with a deadline.  So a slow client
 * or a long generation never delays consensus.
 *
 * Two roles, both optional, one server:
 *  - inference (`plexus serve`): a px_api_backend_t serves /v1/models,
 *    /v1/completions and /v1/chat/completions.  px_api_local_open is the
 *    local backend (one llama2.c model in this process); a network backend
 *    (inference sessions on market providers) slots in behind the same
 *    interface.
 *  - node (`plexus node --http`): env.node and env.command answer /health,
 *    /metrics, /chain/..., /providers, /upow and /v1/jobs... by running the
 *    node's control commands (the same JSON `plexus` CLI commands get) on
 *    the loop thread.
 *
 * Every error is OpenAI-shaped: {"error":{"message","type","code"}} with
 * the matching HTTP status (401, 400, 404, 405, 413, 429, 500, 503, 504).
 *
 * Thread rules: px_api_open/start/stop/free from one thread (the owner);
 * backend functions are called from connection threads and must be
 * thread-safe; env.command is only ever called on the node's loop thread.
 */
#ifndef PLEXUS_API_H
#define PLEXUS_API_H

#include <stddef.h>
#include <stdint.h>

#include "plexus/base.h"
#include "plexus/json.h"
#include "plexus/model_io.h"
#include "plexus/node.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PX_API_KEYS_FILE "gateway.keys"
#define PX_API_KEY_PREFIX "pxk-"
#define PX_API_KEY_LEN (4 + 64) /* "pxk-" + 32 random bytes in hex */

/* ---- requests (decode.c, fuzzed by tests/fuzz/fuzz_api_request.c) ------- */

#define PX_API_MAX_STOP 4
#define PX_API_MAX_MESSAGES 256

typedef enum { PX_API_COMPLETION = 0, PX_API_CHAT = 1 } px_api_kind_t;

typedef struct {
  const char *role; /* "system", "user" or "assistant" */
  const char *content;
} px_api_message_t;

/* A decoded /v1/completions or /v1/chat/completions body.  Strings live in
 * the arena passed to px_api_decode_request. */
typedef struct {
  px_api_kind_t kind;
  const char *model;
  const char *prompt;                             /* COMPLETION */
  px_api_message_t messages[PX_API_MAX_MESSAGES]; /* CHAT */
  size_t n_messages;
  int max_tokens; /* -1: not given (until the context is full) */
  double temperature, top_p;
  uint64_t seed;
  int has_seed;
  const char *stop[PX_API_MAX_STOP];
  size_t n_stop;
  int stream;
  int include_usage; /* stream_options.include_usage */
} px_api_request_t;

/* Decode a request body strictly: the body must be a JSON object, every
 * member known (unknown or unsupported ones, e.g. "n": 2, "logprobs",
 * "tools", are PX_EINVAL with a message naming the field), every value of
 * the right type and range (temperature 0..2, top_p 0..1, max_tokens >= 1,
 * n == 1 only, at most PX_API_MAX_STOP stop strings, 1..256 messages).
 * Errors: PX_EDECODE malformed JSON, PX_EINVAL a bad field; errmsg gets one
 * line for the client. */
int px_api_decode_request(px_arena_t *arena, px_api_kind_t kind,
                          const void *body, size_t len, px_api_request_t *req,
                          char *errmsg, size_t errcap);

/* Query strings: "a=1&b=x%20y".  Finds key's value, percent-decoded, into
 * out[cap] (NUL-terminated).  PX_ENOTFOUND if absent, PX_EDECODE for a bad
 * escape or an embedded NUL, PX_ETOOBIG if it does not fit. */
int px_api_query_get(const char *query, const char *key, char *out, size_t cap);
/* The same, as an unsigned integer no larger than max (PX_ERANGE). */
int px_api_query_u64(const char *query, const char *key, uint64_t max,
                     uint64_t *out);

/* ---- API keys (keys.c) --------------------------------------------------- */

/* HOME/gateway.keys, one key per line: "BLAKE2B256(key) WALLET_PK created_ms"
 * in hex, then the key's quota options if any (below; the key itself is
 * never stored).  Make a new key for the wallet
 * wallet_pk, append it atomically (file mode 0600), and return the key
 * text in key_out (PX_API_KEY_LEN + 1 bytes). */
int px_api_key_new(const char *home, const uint8_t wallet_pk[32],
                   char key_out[PX_API_KEY_LEN + 1]);

typedef struct px_api_keys px_api_keys_t;
/* Load HOME/gateway.keys (PX_ENOENT if there is none; PX_EDECODE for a
 * malformed line). */
int px_api_keys_load(const char *home, px_api_keys_t **out);
/* The same from the file's bytes (fuzzed: tests/fuzz/fuzz_api_keys.c). */
int px_api_keys_parse(const void *data, size_t n, px_api_keys_t **out);
void px_api_keys_free(px_api_keys_t *k); /* NULL ok */
size_t px_api_keys_count(const px_api_keys_t *k);
/* 0 and the key's wallet if `key` (exactly as sent) is known, PX_EAUTH
 * otherwise.  Constant-time in the key bytes. */
int px_api_keys_check(const px_api_keys_t *k, const char *key, size_t len,
                      uint8_t wallet_pk[32]);
/* The same, also giving the key's index (for the quota functions). */
int px_api_keys_find(const px_api_keys_t *k, const char *key, size_t len,
                     uint8_t wallet_pk[32], size_t *index);

/* ---- per-key quotas (keys.c, docs/api.md "Quotas") ------------------------
 * A key line may carry its own limits ("... CREATED_MS rpm=N tpd=T", each
 * optional; lines without them take the server's defaults,
 * px_api_config_t.key_quota).  0 means unlimited.  Counters live in memory
 * in the loaded px_api_keys_t (thread-safe: one mutex); a restart forgets
 * them.  Requests per minute is a token bucket (a burst of rpm, then one
 * per 60/rpm s); tokens per day counts prompt + completion tokens per UTC
 * day, charged when a request ends. */
#define PX_API_QUOTA_UNSET UINT64_MAX     /* in a key: use the default */
#define PX_API_QUOTA_MAX 1000000000000ull /* largest value stored */
typedef struct {
  uint64_t rpm;            /* requests per minute; 0: unlimited */
  uint64_t tokens_per_day; /* prompt + completion tokens; 0: unlimited */
} px_api_quota_t;

/* px_api_key_new with the key's own quota (NULL or UNSET fields: the
 * server's default); PX_ERANGE for a value over PX_API_QUOTA_MAX. */
int px_api_key_new_quota(const char *home, const uint8_t wallet_pk[32],
                         const px_api_quota_t *quota,
                         char key_out[PX_API_KEY_LEN + 1]);
/* The key's effective quota: its own values, else defaults' (NULL: none). */
int px_api_keys_quota(const px_api_keys_t *k, size_t index,
                      const px_api_quota_t *defaults, px_api_quota_t *out);
/* Admit one request of key `index` at wall time now_ms: 0 (one request
 * taken from its bucket), PX_ELIMIT when today's tokens are spent, PX_ERATE
 * when its requests per minute are; then *retry_after_s says when to retry
 * (the next UTC day, or when the bucket holds one request again). */
int px_api_keys_admit(px_api_keys_t *k, size_t index,
                      const px_api_quota_t *defaults, uint64_t now_ms,
                      uint64_t *retry_after_s);
/* Count `tokens` against the key's budget for now_ms's UTC day. */
void px_api_keys_charge(px_api_keys_t *k, size_t index, uint64_t tokens,
                        uint64_t now_ms);
/* Tokens charged to the key on now_ms's UTC day. */
uint64_t px_api_keys_tokens_used(px_api_keys_t *k, size_t index,
                                 uint64_t now_ms);

/* ---- inference backends -------------------------------------------------- */

typedef struct {
  int max_tokens;
  float temperature, top_p;
  uint64_t seed;
} px_api_gen_opts_t;

/* Called with each generated token's text; return non-zero to stop. */
typedef int (*px_api_piece_fn)(void *ud, const char *piece, size_t len);

typedef struct px_api_backend px_api_backend_t;
struct px_api_backend {
  void *ud;
  /* Model ids served, and their context lengths. */
  size_t (*n_models)(void *ud);
  const char *(*model_name)(void *ud, size_t i);
  /* Turn a request into prompt text (the chat template for CHAT). */
  int (*render_prompt)(void *ud, const px_api_request_t *req, px_buf_t *out);
  /* Generate: tokenise prompt, sample up to o->max_tokens tokens (or to the
   * end of the context, or the end-of-sequence token), calling cb with each
   * piece.  *n_prompt, *n_gen count tokens; *finish is "stop" or "length".
   * Blocking; called from a connection thread. */
  int (*generate)(void *ud, const char *model, const char *prompt,
                  const px_api_gen_opts_t *o, px_api_piece_fn cb, void *cbud,
                  int *n_prompt, int *n_gen, const char **finish);
};

/* A local backend over one llama2.c checkpoint + tokenizer (`plexus serve`).
 * `name` is the model id clients use.  Requests are served one at a time
 * (the model's KV cache is single-user); others wait their turn.  The chat
 * template is docs/api.md's default unless the file MODEL.json next to the
 * model holds {"chat_template": {"message": "...{role}...{content}...",
 * "suffix": "..."}}. */
int px_api_local_open(const char *model_path, const char *tokenizer_path,
                      const char *name, px_api_backend_t **out, char *errmsg,
                      size_t errcap);
void px_api_local_free(px_api_backend_t *b); /* NULL ok */

/* ---- shared by the backends (template.c) ----------------------------------
 * The chat template (docs/api.md "Chat template") and the text of a
 * generated token, one copy for the local and the network backend so both
 * render the same prompt and emit the same text. */
#define PX_API_TPL_MESSAGE "{role}: {content}\n"
#define PX_API_TPL_SUFFIX "assistant:"
typedef struct {
  char *prefix, *message, *suffix; /* heap */
} px_api_template_t;
/* NULL strings take the defaults ("", PX_API_TPL_MESSAGE,
 * PX_API_TPL_SUFFIX).  Replaces t's strings (t zeroed or set). */
int px_api_template_set(px_api_template_t *t, const char *prefix,
                        const char *message, const char *suffix);
/* From a document {"chat_template":{"prefix","message","suffix"}} (each
 * optional; no chat_template: the default).  json NULL: the default.
 * PX_EDECODE not JSON / not strings, PX_EINVAL an unknown member. */
int px_api_template_parse(px_api_template_t *t, const void *json, size_t n);
int px_api_template_from_json(px_api_template_t *t, const px_json_t *obj);
/* Write {"prefix","message","suffix"} (w->err). */
int px_api_template_write(const px_api_template_t *t, px_json_writer_t *w);
void px_api_template_release(px_api_template_t *t); /* zeroed ok */
/* COMPLETION: the prompt; CHAT: prefix, message per message, suffix. */
int px_api_template_render(const px_api_template_t *t,
                           const px_api_request_t *req, px_buf_t *out);
/* 1 and the text of `token` following `prev` (llama2.c decode(), a lone
 * control byte dropped as its safe_printf does), or 0: nothing to emit. */
int px_api_token_text(const px_tokenizer_t *tok, int prev, int token,
                      const char **s, size_t *len);

/* ---- the server ---------------------------------------------------------- */

typedef struct {
  const char *listen;        /* "127.0.0.1:8080" (port 0: pick one) */
  const char *home;          /* for gateway.keys; NULL: no keys */
  size_t max_body;           /* bytes; default 1 MiB */
  unsigned max_streams;      /* concurrent streaming responses; default 8 */
  unsigned max_connections;  /* default 64 */
  unsigned idle_timeout_s;   /* connection idle timeout; default 30 */
  uint64_t call_timeout_ms;  /* wait for the node loop; default 10000 */
  px_api_backend_t *backend; /* inference role, or NULL */
  /* Quotas for keys whose line sets none (zero: unlimited). */
  px_api_quota_t key_quota;
  /* node role, or NULL: command(n, line, out) runs one control command
   * line ("status", "block 5", ...) on the loop thread, appending its JSON
   * reply to out; PX_ENOTFOUND if the command is unknown. */
  px_node_t *node;
  int (*command)(px_node_t *n, const char *line, px_buf_t *out);
} px_api_config_t;

typedef struct px_api px_api_t;

/* Check the config (PX_ECONFIG with errmsg) and load the keys. */
int px_api_open(const px_api_config_t *cfg, px_api_t **out, char *errmsg,
                size_t errcap);
/* Bind and start serving (PX_ENET with errmsg if the address is taken). */
int px_api_start(px_api_t *a, char *errmsg, size_t errcap);
/* The bound address "127.0.0.1:PORT" (after start). */
const char *px_api_address(const px_api_t *a);
/* Stop serving: waiting requests are answered 503 and every connection
 * thread is joined.  Safe to call twice, and on the node's loop thread. */
void px_api_stop(px_api_t *a);
void px_api_free(px_api_t *a); /* stops first; NULL ok */

#ifdef __cplusplus
}
#endif
#endif /* PLEXUS_API_H */
