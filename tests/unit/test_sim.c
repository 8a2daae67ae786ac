/*
 * test_sim.c — thousands of seeded adversarial schedules of the consensus
 * cores in the deterministic simulator (src/sim, plexus/sim.h).
 *
 * Every schedule checks agreement, validity, liveness after GST and that
 * no correct validator is ever caught double-signing.  Environment:
 *   PX_SIM_SEEDS=N      schedules per run (default 1000: half with 4
 *                       validators / 1 Byzantine, half 7 / 2); sanitizer
 *                       builds default to 200
 *   PX_SIM_SEED_BASE=B  first seed (default 1)
 *   PX_SIM_SEED=S       run only seed S (with PX_SIM_N, PX_SIM_F: default
 *                       4 and 1), e.g. to replay a failure
 *   PX_SIM_TRACE=1      print every event of the run(s)
 * A failure prints the one command that replays it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "plexus/base.h"
#include "plexus/crypto.h"
#include "plexus/sim.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define DEFAULT_SEEDS 200
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define DEFAULT_SEEDS 200
#endif
#endif
#ifndef DEFAULT_SEEDS
#define DEFAULT_SEEDS 1000
#endif

static uint64_t env_u64(const char *name, uint64_t def) {
  const char *v = getenv(name);
  uint64_t out;
  if (!v || px_parse_u64(v, &out) != 0) return def;
  return out;
}

static double now_s(void) { return (double)px_time_mono_ns() / 1e9; }

/* Run one schedule; on failure print the replay command and return 0. */
static int run_one(uint64_t seed, uint32_t n, uint32_t f, int trace,
                   px_sim_result_t *res) {
  px_sim_config_t cfg;
  px_sim_config_default(&cfg, seed, n, f);
  cfg.trace = trace;
  int rc = px_sim_run(&cfg, res);
  if (rc != 0 || !res->ok) {
    fprintf(stderr,
            "sim FAILED (seed %llu, %u validators, %u Byzantine): %s\n"
            "  replay: PX_SIM_SEED=%llu PX_SIM_N=%u PX_SIM_F=%u "
            "PX_SIM_TRACE=1 build/tests/test_sim\n",
            (unsigned long long)seed, n, f, rc ? px_strerror(rc) : res->failure,
            (unsigned long long)seed, n, f);
    return 0;
  }
  return 1;
}

static void test_sim_seeds(void **state) {
  (void)state;
  int trace = env_u64("PX_SIM_TRACE", 0) != 0;
  const char *one = getenv("PX_SIM_SEED");
  px_sim_result_t res;
  if (one) {
    uint64_t seed = env_u64("PX_SIM_SEED", 1);
    uint32_t n = (uint32_t)env_u64("PX_SIM_N", 4);
    uint32_t f = (uint32_t)env_u64("PX_SIM_F", 1);
    int ok = run_one(seed, n, f, trace, &res);
    fprintf(stderr,
            "seed %llu: %s, %llu events, min height %llu, max round %u, "
            "%llu evidence, t=%llu ms\n",
            (unsigned long long)seed, ok ? "ok" : "FAILED",
            (unsigned long long)res.events, (unsigned long long)res.heights_min,
            res.max_round, (unsigned long long)res.evidence,
            (unsigned long long)res.end_ms);
    assert_true(ok);
    return;
  }
  uint64_t seeds = env_u64("PX_SIM_SEEDS", DEFAULT_SEEDS);
  uint64_t base = env_u64("PX_SIM_SEED_BASE", 1);
  uint64_t failures = 0, events = 0, evidence = 0, crashes = 0, parts = 0;
  uint64_t equiv = 0, heights = 0;
  uint32_t max_round = 0;
  double t0 = now_s();
  for (uint64_t i = 0; i < seeds; i++) {
    uint64_t seed = base + i;
    uint32_t n = (i % 2) ? 7 : 4, f = (i % 2) ? 2 : 1;
    if (!run_one(seed, n, f, trace, &res)) failures++;
    events += res.events;
    evidence += res.evidence;
    crashes += res.crashes;
    parts += res.partitions;
    equiv += res.equivocations;
    heights += res.heights_min;
    if (res.max_round > max_round) max_round = res.max_round;
  }
  fprintf(stderr,
          "sim: %llu schedules (4/1 and 7/2), %llu failed, %.1f s; %llu "
          "events, %llu heights, %llu crashes, %llu partitions, %llu "
          "equivocations, %llu evidence, max round %u\n",
          (unsigned long long)seeds, (unsigned long long)failures, now_s() - t0,
          (unsigned long long)events, (unsigned long long)heights,
          (unsigned long long)crashes, (unsigned long long)parts,
          (unsigned long long)equiv, (unsigned long long)evidence, max_round);
  assert_int_equal(failures, 0);
}

/* The same seed gives the same run, event for event. */
static void test_sim_deterministic(void **state) {
  (void)state;
  px_sim_config_t cfg;
  px_sim_result_t a, b;
  px_sim_config_default(&cfg, 42, 7, 2);
  assert_int_equal(px_sim_run(&cfg, &a), 0);
  assert_int_equal(px_sim_run(&cfg, &b), 0);
  assert_true(a.ok);
  assert_int_equal(a.events, b.events);
  assert_int_equal(a.messages, b.messages);
  assert_int_equal(a.end_ms, b.end_ms);
  assert_int_equal(a.heights_min, b.heights_min);
}

/* No faults at all: every height decides in round 0. */
static void test_sim_calm(void **state) {
  (void)state;
  px_sim_config_t cfg;
  px_sim_result_t r;
  px_sim_config_default(&cfg, 7, 4, 0);
  cfg.loss_pm = cfg.dup_pm = 0;
  cfg.partitions = cfg.crashes = 0;
  cfg.chaos_delay_max_ms = cfg.delay_max_ms;
  cfg.heights_after_gst = 10;
  assert_int_equal(px_sim_run(&cfg, &r), 0);
  assert_true(r.ok);
  assert_int_equal(r.max_round, 0);
  assert_int_equal(r.evidence, 0);
}

static void test_sim_bad_config(void **state) {
  (void)state;
  px_sim_config_t cfg;
  px_sim_result_t r;
  px_sim_config_default(&cfg, 1, 3, 1); /* 3f >= n */
  assert_int_equal(px_sim_run(&cfg, &r), PX_EINVAL);
  px_sim_config_default(&cfg, 1, 17, 1);
  assert_int_equal(px_sim_run(&cfg, &r), PX_EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sim_bad_config),
      cmocka_unit_test(test_sim_calm),
      cmocka_unit_test(test_sim_deterministic),
      cmocka_unit_test(test_sim_seeds),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
