/*
 * fuzz_vote.c — libFuzzer target for px_cons_vote_decode and the core's
 * vote path.
 *
 * Properties: the decoder never reads outside its input (ASan), fails only
 * with the documented errors, and is canonical (whatever it accepts
 * re-encodes to exactly the input).  Every input is also fed to a started
 * consensus core (as a message of any kind), which must not crash and must
 * return a PX_E code.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/base.h"
#include "plexus/consensus.h"
#include "plexus/crypto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int valid(void *ud, uint64_t h, const uint8_t *v, size_t n) {
  (void)ud;
  (void)h;
  (void)v;
  return n > 0;
}
static int value(void *ud, uint64_t h, uint32_t r, px_buf_t *out) {
  (void)ud;
  (void)h;
  (void)r;
  return px_buf_append(out, "v", 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *in = malloc(size ? size : 1);
  if (!in) return 0;
  if (size) memcpy(in, data, size);
  px_cons_vote_t v;
  int rc = px_cons_vote_decode(in, size, &v);
  if (rc != 0) {
    if (rc != PX_ETRUNC && rc != PX_ETRAILING && rc != PX_EDECODE &&
        rc != PX_EVERSION)
      abort();
  } else {
    px_buf_t b;
    px_buf_init(&b, 0);
    if (px_cons_vote_encode(&v, &b) != 0) abort();
    if (b.len != size || memcmp(b.data, in, size) != 0) abort();
    px_buf_release(&b);
  }

  /* The core: a 4-validator set with fixed keys. */
  static px_cons_valset_t vs;
  static int ready;
  if (!ready) {
    px_crypto_init();
    uint8_t pks[4][PX_PK_LEN];
    uint64_t pw[4] = {1, 1, 1, 1};
    for (int i = 0; i < 4; i++) {
      uint8_t seed[PX_SEED_LEN] = {(uint8_t)(i + 1)};
      px_keypair_t kp;
      px_key_from_seed(&kp, seed);
      memcpy(pks[i], kp.pk, PX_PK_LEN);
    }
    px_cons_valset_init(&vs, (const uint8_t(*)[PX_PK_LEN])pks, pw, 4);
    ready = 1;
  }
  px_cons_config_t cfg;
  px_cons_config_default(&cfg);
  cfg.app.valid = valid;
  cfg.app.get_value = value;
  px_cons_t *c;
  if (px_cons_new(&cfg, &c) == 0) {
    px_cons_start(c, 1, &vs, 0);
    rc = px_cons_on_message(c, in, size, 1);
    if (rc > 0) abort();
    px_cons_fx_t fx;
    while (px_cons_poll(c, &fx))
      px_cons_fx_release(&fx);
    px_cons_free(c);
  }
  free(in);
  return 0;
}
