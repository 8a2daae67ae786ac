/*
 * test_upow_miner.c — the node's mining thread (src/node/miner.h).
 *
 * Proven here (needs Debian's dataset-fashion-mnist; skipped without it):
 *  - the mining thread finds solutions of a task it was given, and each
 *    one checks out bit-exactly when re-run on another thread
 *    (px_upow_check), i.e. at another thread count;
 *  - pre-emption: when the market's shards_busy goes non-zero, the thread
 *    stops computing after less than about one mutation step of CPU (3
 *    windows of forward passes, calibrated on this build, + 3 ms), stays
 *    off the core while busy, and resumes when it drops; the thread's own
 *    measured bound (poll_gap_max_us: the most CPU between two polls of
 *    the flag) is under the same figure;
 *  - mining off stops it too.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "plexus/crypto.h"
#include "plexus/upow.h"
#include "plexus/upow_chain.h"

#include "node/miner.h"

/* The design bound: the CPU of about one `window`-image step between two
 * polls of the flag (~2 ms in an optimised build, far below the node's
 * 50 ms tick).  The test calibrates the cost of one window of forward
 * passes on this build (sanitizers make it 10-30x slower) and allows
 * 3 windows (a candidate's set-up plus one step) + 3 ms. */
static uint64_t g_bound_us;

static uint64_t proc_cpu_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t thread_cpu_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static uint64_t wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static int wait_for(px_miner_t *m, int want_computing, uint64_t min_cand,
                    unsigned timeout_ms) {
  uint64_t end = wall_ms() + timeout_ms;
  for (;;) {
    px_miner_stats_t st;
    px_miner_stats(m, &st);
    if (st.computing == want_computing && st.candidates >= min_cand) return 1;
    if (wall_ms() > end) return 0;
    sleep_ms(1);
  }
}

static void test_miner(void **state) {
  (void)state;
  const px_upow_data_t *data;
  if (px_upow_chain_dataset(&data)) skip();
  px_keypair_t kp;
  uint8_t seed[PX_SEED_LEN];
  memset(seed, 7, sizeof seed);
  assert_int_equal(px_key_from_seed(&kp, seed), 0);
  atomic_int busy;
  atomic_init(&busy, 0);
  px_miner_env_t env = {
      .home = "/tmp", .key = &kp, .busy = &busy, .data = data};
  px_miner_t *m;
  char err[200];
  assert_int_equal(px_miner_open(&env, &m, err, sizeof err), 0);
  assert_int_equal(px_miner_start(m), 0);

  px_upow_dims_t d;
  px_upow_net_t parent;
  px_upow_chain_dims(&d);
  assert_int_equal(px_upow_net_random(&d, PX_UPOW_GENESIS_SEED, &parent), 0);
  px_upow_epoch_t ep;
  memset(&ep, 0, sizeof ep);
  ep.epoch = 3;
  memset(ep.epoch_seed, 1, 32);
  memset(ep.eval_seed, 2, 32);
  ep.margin = 2;
  px_upow_chain_params(&ep.params);
  assert_int_equal(px_miner_set_job(m, &ep, &parent), 0);
  px_miner_set_mining(m, 1);

  /* It mines, and what it finds checks out on this thread. */
  assert_true(wait_for(m, 1, 3, 60000));
  px_upow_task_t *t;
  assert_int_equal(px_upow_task_new(&ep, &parent, data, &t), 0);
  px_upow_solution_t sol;
  int checked = 0;
  uint64_t end = wall_ms() + 60000;
  while (checked < 1 && wall_ms() < end) {
    if (px_miner_pop(m, &sol) == 0) {
      assert_memory_equal(sol.miner_pk, kp.pk, 32);
      assert_int_equal(px_upow_check(t, 3, &sol, PX_UPOW_MAX_CHECK_OPS, NULL),
                       0);
      checked++;
    } else {
      sleep_ms(5);
    }
  }
  assert_int_equal(checked, 1);

  /* Calibrate: CPU of one window of forward passes here. */
  uint64_t win_us = 0;
  for (int i = 0; i < 5; i++) {
    uint64_t c0 = thread_cpu_us();
    (void)px_upow_net_correct(&parent, data, NULL, ep.params.window);
    uint64_t dt = thread_cpu_us() - c0;
    if (dt > win_us) win_us = dt;
  }
  g_bound_us = 3 * win_us + 3000;
  print_message("one window: %llu us CPU; bound %llu us\n",
                (unsigned long long)win_us, (unsigned long long)g_bound_us);

  /* Pre-emption by a market shard: a few rounds. */
  for (int round = 0; round < 5; round++) {
    assert_true(wait_for(m, 1, 0, 30000));
    uint64_t c0 = proc_cpu_us();
    atomic_store(&busy, 1);
    assert_true(wait_for(m, 0, 0, 30000));
    uint64_t used = proc_cpu_us() - c0;
    print_message("round %d: %llu us of CPU after the shard arrived\n", round,
                  (unsigned long long)used);
    assert_true(used < g_bound_us);
    /* Stays off the core while the shard runs (< 10% of a core). */
    uint64_t c1 = proc_cpu_us();
    sleep_ms(200);
    assert_true(proc_cpu_us() - c1 < 20000);
    px_miner_stats_t st;
    px_miner_stats(m, &st);
    uint64_t cand = st.candidates;
    atomic_store(&busy, 0);
    assert_true(wait_for(m, 1, 0, 30000));
    assert_true(wait_for(m, 1, cand + 1, 60000)); /* resumed */
  }
  px_miner_stats_t st;
  px_miner_stats(m, &st);
  print_message("poll gap max %llu us CPU, %llu pre-emptions\n",
                (unsigned long long)st.poll_gap_max_us,
                (unsigned long long)st.preemptions);
  assert_true(st.poll_gap_max_us < g_bound_us);
  assert_true(st.preemptions >= 1);

  /* Mining off. */
  px_miner_set_mining(m, 0);
  assert_true(wait_for(m, 0, 0, 30000));
  uint64_t c2 = proc_cpu_us();
  sleep_ms(100);
  assert_true(proc_cpu_us() - c2 < 10000); /* idle: waits on a condition */

  px_upow_task_free(t);
  px_miner_free(m);
  px_upow_net_release(&parent);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_miner),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
