/*
 * fuzz_dispute_msg.c — libFuzzer target for the dispute game's messages
 * (src/market/dispute.c).
 *
 * First byte mod 4: 0 challenge, 1 response, 2 layer, 3 a game: the rest
 * (as a response) is fed to a bisection over a fixed 13-layer dispute, for
 * both parties; the game must stay consistent (lo < hi, FOUND only at
 * hi = lo + 1).  Every decoded message re-encodes to the input bytes; a
 * decoded layer is then judged under a small cost bound.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/compute.h"
#include "plexus/crypto.h"
#include "plexus/market.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static px_compute_t *g_c;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  px_compute_opts_t o = {.simd = -1, .threads = 1};
  if (px_crypto_init() != 0 || px_compute_new(&o, &g_c)) abort();
  return 0;
}

static void same(const px_buf_t *b, const uint8_t *d, size_t n) {
  if (b->len != n || memcmp(b->data, d, n)) abort();
}

static void game(const uint8_t *d, size_t n) {
  uint8_t la[13][32], lb[13][32];
  for (int i = 0; i < 13; i++) {
    uint8_t x[2] = {(uint8_t)i, 0};
    px_merkle_leaf(la[i], x, 2);
    x[1] = i >= 6;
    px_merkle_leaf(lb[i], x, 2);
  }
  px_commitment_t ca, cb;
  memset(&ca, 0, sizeof ca);
  ca.n_layers = 13;
  cb = ca;
  memcpy(ca.output, la[12], 32);
  memcpy(cb.output, lb[12], 32);
  px_merkle_root((const uint8_t(*)[32])la, 13, ca.trace_root);
  px_merkle_root((const uint8_t(*)[32])lb, 13, cb.trace_root);
  px_dispute_t g;
  if (px_dispute_init(&g, &ca, &cb)) abort();
  px_dispute_response_t r;
  int honest_b = n > 0 && (d[0] & 1);
  if (px_dispute_response_decode(d + (n > 0), n - (n > 0), &r)) return;
  for (int step = 0; step < 8 && g.status == PX_DISPUTE_OPEN; step++) {
    px_dispute_challenge_t ch;
    px_dispute_response_t ra, rb;
    if (px_dispute_challenge(&g, &ch)) abort();
    if (px_dispute_respond(&ch, (const uint8_t(*)[32])la, 13, &ra)) abort();
    if (px_dispute_respond(&ch, (const uint8_t(*)[32])lb, 13, &rb)) abort();
    r.round = ch.round;
    memcpy(r.job_id, ch.job_id, 32);
    r.shard = ch.shard;
    if (px_dispute_answer(&g, 0, &ra)) abort();
    if (px_dispute_answer(&g, 1, honest_b ? &rb : &r)) abort();
    if (g.status == PX_DISPUTE_OPEN && !(g.lo < g.hi)) abort();
  }
  if (g.status == PX_DISPUTE_FOUND && g.hi != g.lo + 1) abort();
  if (g.status == PX_DISPUTE_A_LOST) abort(); /* A was honest */
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  if (n == 0) return 0;
  int mode = d[0] & 3;
  d++, n--;
  px_buf_t b;
  px_buf_init(&b, 0);
  if (mode == 0) {
    px_dispute_challenge_t c;
    if (!px_dispute_challenge_decode(d, n, &c)) {
      if (px_dispute_challenge_encode(&c, &b)) abort();
      same(&b, d, n);
    }
  } else if (mode == 1) {
    px_dispute_response_t *r = malloc(sizeof *r);
    if (!r) abort();
    if (!px_dispute_response_decode(d, n, r)) {
      if (px_dispute_response_encode(r, &b)) abort();
      same(&b, d, n);
    }
    free(r);
  } else if (mode == 2) {
    px_dispute_layer_t l;
    if (!px_dispute_layer_decode(d, n, &l)) {
      if (px_dispute_layer_encode(&l, &b)) abort();
      same(&b, d, n);
      px_verdict_t v;
      uint8_t in_leaf[32];
      px_merkle_leaf(in_leaf, l.input, l.n_input * sizeof(float));
      int rc = px_dispute_verdict(g_c, &l, in_leaf, 1u << 16, &v);
      if (rc != 0 && rc != PX_ELIMIT && rc != PX_EAUTH) abort();
      px_dispute_layer_release(&l);
    }
  } else {
    game(d, n);
  }
  px_buf_release(&b);
  return 0;
}
