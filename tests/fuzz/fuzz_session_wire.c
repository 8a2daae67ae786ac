/*
 * fuzz_session_wire.c — libFuzzer target for the inference-session
 * messages (src/node/session_wire.c, node/session_rt.h).
 *
 * The first byte picks the decoder (mod 6); the rest is its input.
 * Whatever decodes must re-encode to exactly the same bytes (one encoding
 * per value); a decoded OPEN owns its tokens and is released.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/crypto.h"
#include "node/session_rt.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  if (px_crypto_init() != 0) abort();
  return 0;
}

static void same(const px_buf_t *b, const uint8_t *p, size_t n) {
  if (b->len != n || memcmp(b->data, p, n)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  if (n == 0) return 0;
  const uint8_t *p = d + 1;
  size_t len = n - 1;
  px_buf_t b;
  px_buf_init(&b, 0);
  switch (d[0] % 6) {
  case 0: {
    px_ses_open_t m;
    if (!px_ses_open_decode(p, len, &m)) {
      if (!m.tokens || m.n_tokens < m.n_prompt) abort();
      if (px_ses_open_encode(&m, &b)) abort();
      same(&b, p, len);
    } else if (m.tokens) {
      abort(); /* a failed decode holds nothing */
    }
    px_ses_open_release(&m);
    break;
  }
  case 1: {
    px_ses_open_reply_t m;
    if (!px_ses_open_reply_decode(p, len, &m)) {
      if (px_ses_open_reply_encode(&m, &b)) abort();
      same(&b, p, len);
    }
    break;
  }
  case 2: {
    px_ses_cancel_t m;
    if (!px_ses_cancel_decode(p, len, &m)) {
      if (px_ses_cancel_encode(&m, &b)) abort();
      same(&b, p, len);
    }
    break;
  }
  case 3: {
    px_ses_receipt_t m;
    if (!px_ses_receipt_decode(p, len, &m)) {
      if (px_ses_receipt_encode(&m, &b)) abort();
      same(&b, p, len);
    }
    break;
  }
  case 4: {
    px_ses_tokens_t *m = malloc(sizeof *m);
    if (!m) abort();
    if (!px_ses_tokens_decode(p, len, m)) {
      if (px_ses_tokens_encode(m, &b)) abort();
      same(&b, p, len);
    }
    free(m);
    break;
  }
  case 5: {
    px_ses_done_t m;
    if (!px_ses_done_decode(p, len, &m)) {
      if (px_ses_done_encode(&m, &b)) abort();
      same(&b, p, len);
    }
    break;
  }
  }
  px_buf_release(&b);
  return 0;
}
