/*
 * fuzz_sched_state.c — libFuzzer target for the persisted scheduler state
 * (src/market/sched.c, px_sched_load).  A state that loads must save back
 * to exactly the input bytes (the format is canonical) and must survive
 * being driven: a tick far in the future (every lease expires, shards are
 * re-offered) and a drain of the effects, with the invariant paid <=
 * escrow holding throughout (asserted inside the scheduler as well).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/market.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  px_sched_t *s;
  if (px_sched_load(d, n, &s)) return 0;
  px_buf_t b;
  px_buf_init(&b, 0);
  if (px_sched_save(s, &b) || b.len != n || memcmp(b.data, d, n)) abort();
  px_buf_release(&b);
  px_sched_event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.type = PX_SCHED_EV_TICK;
  ev.now_ms = UINT64_MAX - 1;
  int rc = px_sched_handle(s, &ev);
  if (rc != 0 && rc != PX_EINVAL) abort();
  px_sched_fx_t fx;
  while (px_sched_poll(s, &fx))
    ;
  px_sched_stats_t st;
  px_sched_stats(s, &st);
  if (st.paid > st.escrow) abort();
  px_sched_free(s);
  return 0;
}
