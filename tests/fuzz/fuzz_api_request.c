/*
 * fuzz_api_request.c — libFuzzer target for the gateway's request decoders
 * (src/api/decode.c): OpenAI request bodies and URL query strings.
 *
 * The first byte picks the decoder (completion body, chat body, query
 * string); the rest is the input.  Decoders must return 0 or a negative
 * code, never crash or read out of bounds (ASan), and when a body decodes
 * its fields must be within the documented ranges: strings valid and
 * NUL-free, temperature 0..2, top_p 0..1, max_tokens -1 or 1..2^20, at most
 * PX_API_MAX_STOP stop strings, 1..PX_API_MAX_MESSAGES messages for chat
 * with a known role each.  A query value found is NUL-terminated within
 * its buffer and has no NUL before its end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/api.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static void check_body(px_api_kind_t kind, const uint8_t *d, size_t n) {
  px_arena_t arena;
  px_arena_init(&arena, 4096, 8u << 20);
  px_api_request_t *r = malloc(sizeof *r);
  char err[256];
  if (!r) abort();
  int rc = px_api_decode_request(&arena, kind, d, n, r, err, sizeof err);
  if (rc > 0) abort();
  if (rc == 0) {
    if (!r->model || !r->model[0]) abort();
    if (!(r->temperature >= 0 && r->temperature <= 2)) abort();
    if (!(r->top_p >= 0 && r->top_p <= 1)) abort();
    if (r->max_tokens != -1 && (r->max_tokens < 1 || r->max_tokens > 1 << 20))
      abort();
    if (r->n_stop > PX_API_MAX_STOP) abort();
    for (size_t i = 0; i < r->n_stop; i++)
      if (!r->stop[i][0]) abort();
    if (kind == PX_API_COMPLETION && !r->prompt) abort();
    if (kind == PX_API_CHAT) {
      if (r->n_messages < 1 || r->n_messages > PX_API_MAX_MESSAGES) abort();
      for (size_t i = 0; i < r->n_messages; i++) {
        const char *role = r->messages[i].role;
        if (strcmp(role, "system") && strcmp(role, "user") &&
            strcmp(role, "assistant"))
          abort();
        if (!r->messages[i].content) abort();
      }
    }
    if (r->include_usage && !r->stream) abort();
  } else if (!err[0]) {
    abort(); /* every refusal explains itself */
  }
  free(r);
  px_arena_release(&arena);
}

static void check_query(const uint8_t *d, size_t n) {
  char *q = malloc(n + 1);
  if (!q) abort();
  memcpy(q, d, n);
  q[n] = 0;
  static const char *const keys[] = {"from", "limit", "prove", "a b", ""};
  for (size_t k = 0; k < sizeof keys / sizeof *keys; k++) {
    char out[16];
    memset(out, 'x', sizeof out);
    int rc = px_api_query_get(q, keys[k], out, sizeof out);
    if (rc > 0) abort();
    if (rc == 0 && !memchr(out, 0, sizeof out)) abort();
    uint64_t u;
    rc = px_api_query_u64(q, keys[k], 1000, &u);
    if (rc > 0 || (rc == 0 && u > 1000)) abort();
  }
  free(q);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  if (n < 1) return 0;
  switch (d[0] % 3) {
  case 0:
    check_body(PX_API_COMPLETION, d + 1, n - 1);
    break;
  case 1:
    check_body(PX_API_CHAT, d + 1, n - 1);
    break;
  default:
    check_query(d + 1, n - 1);
  }
  return 0;
}
