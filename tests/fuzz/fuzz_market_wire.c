/*
 * fuzz_market_wire.c — libFuzzer target for the market's p2p messages
 * (src/node/market_wire.c, node/market_rt.h).
 *
 * The first byte picks the decoder (mod 7); the rest is its input.
 * Whatever decodes must re-encode to exactly the same bytes (one encoding
 * per value), and the decoded pointers must lie inside the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/crypto.h"
#include "node/market_rt.h"

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

static void inside(const void *q, size_t len, const uint8_t *p, size_t n) {
  const uint8_t *x = q;
  if (len && (x < p || x + len > p + n)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  if (n == 0) return 0;
  const uint8_t *p = d + 1;
  size_t len = n - 1;
  px_buf_t b;
  px_buf_init(&b, 0);
  switch (d[0] % 7) {
  case 0: {
    px_mkt_chunk_req_t m;
    if (!px_mkt_chunk_req_decode(p, len, &m)) {
      if (px_mkt_chunk_req_encode(&m, &b)) abort();
      same(&b, p, len);
    }
    break;
  }
  case 1: {
    px_mkt_chunk_t *m = malloc(sizeof *m);
    if (!m) abort();
    if (!px_mkt_chunk_decode(p, len, m)) {
      inside(m->data, m->len, p, len);
      if (px_mkt_chunk_encode(m, &b)) abort();
      same(&b, p, len);
    }
    free(m);
    break;
  }
  case 2: {
    px_mkt_lease_t m;
    if (!px_mkt_lease_decode(p, len, &m)) {
      if (px_mkt_lease_encode(&m, &b)) abort();
      same(&b, p, len);
    }
    break;
  }
  case 3: {
    px_mkt_lease_reply_t m;
    if (!px_mkt_lease_reply_decode(p, len, &m)) {
      if (px_mkt_lease_reply_encode(&m, &b)) abort();
      same(&b, p, len);
    }
    break;
  }
  case 4: {
    px_mkt_result_t m;
    if (!px_mkt_result_decode(p, len, &m)) {
      inside(m.logits, m.logits_len, p, len);
      if (px_mkt_result_encode(&m, &b)) abort();
      same(&b, p, len);
    }
    break;
  }
  case 5: {
    px_mkt_reveal_req_t m;
    if (!px_mkt_reveal_req_decode(p, len, &m)) {
      if (px_mkt_reveal_req_encode(&m, &b)) abort();
      same(&b, p, len);
    }
    break;
  }
  case 6: {
    px_mkt_reveal_t m;
    if (!px_mkt_reveal_decode(p, len, &m)) {
      inside(m.leaves, (size_t)m.n * 32, p, len);
      if (px_mkt_reveal_encode(&m, &b)) abort();
      same(&b, p, len);
    }
    break;
  }
  }
  px_buf_release(&b);
  return 0;
}
