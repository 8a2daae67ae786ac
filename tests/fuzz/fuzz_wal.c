/*
 * fuzz_wal.c — libFuzzer target for the WAL scanner and for replaying WAL
 * bytes into a consensus core.
 *
 * Properties: px_wal_next never reads outside its buffer, always makes
 * progress or stops, and reports a good prefix no longer than the input;
 * re-framing the records it accepted gives back exactly that prefix; every
 * accepted record, replayed into a core before and after px_cons_start,
 * returns 0 or a PX_E code and never crashes.
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

typedef struct {
  px_cons_t *core;
  px_buf_t reframed;
} ctx_t;

static int on_rec(void *ud, const px_wal_record_t *rec) {
  ctx_t *x = ud;
  if (px_wal_frame(&x->reframed, rec->type, rec->payload, rec->len) != 0)
    abort();
  int rc = px_cons_replay(x->core, rec->type, rec->payload, rec->len, 0);
  if (rc > 0) abort();
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static px_cons_valset_t vs;
  static px_keypair_t kp0;
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
      if (i == 0) kp0 = kp;
    }
    px_cons_valset_init(&vs, (const uint8_t(*)[PX_PK_LEN])pks, pw, 4);
    ready = 1;
  }
  uint8_t *in = malloc(size ? size : 1);
  if (!in) return 0;
  if (size) memcpy(in, data, size);

  px_cons_config_t cfg;
  px_cons_config_default(&cfg);
  cfg.key = kp0;
  cfg.has_key = 1;
  cfg.max_value = 1 << 16;
  cfg.app.valid = valid;
  cfg.app.get_value = value;
  ctx_t x;
  if (px_cons_new(&cfg, &x.core) != 0) {
    free(in);
    return 0;
  }
  px_buf_init(&x.reframed, 0);
  px_wal_replay_info_t info;
  if (px_wal_replay_mem(in, size, on_rec, &x, &info) != 0) abort();
  if (info.good_len > size) abort();
  if (x.reframed.len != info.good_len ||
      (info.good_len && memcmp(x.reframed.data, in, info.good_len) != 0))
    abort();
  if (info.tail_err) px_cons_set_sign_floor(x.core, info.max_height + 1);
  px_cons_start(x.core, 1, &vs, 0);
  px_buf_reset(&x.reframed);
  (void)px_wal_replay_mem(in, size, on_rec, &x, &info);
  char line[256];
  px_wal_describe("fuzz", &info, line, sizeof line);
  px_cons_fx_t fx;
  while (px_cons_poll(x.core, &fx))
    px_cons_fx_release(&fx);
  px_cons_free(x.core);
  px_buf_release(&x.reframed);
  free(in);
  return 0;
}
