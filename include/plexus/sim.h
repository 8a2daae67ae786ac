/*
 * plexus/sim.h — the deterministic discrete-event simulator.
 *
 * px_sim_run() runs N consensus cores (the very px_cons_t the node runs)
 * over a simulated clock and network, all driven by one seeded px_rng_t:
 * the same config and seed replay the same run event for event.  Before
 * the global stabilisation time (gst_ms) the network delays, loses,
 * duplicates and reorders messages, splits into partitions that heal, and
 * correct validators crash and restart (a restarted core replays its
 * in-memory WAL, framed exactly as the file WAL).  Byzantine validators
 * equivocate (sign two proposals or two votes for one height and round and
 * send each to a different part of the network), stay silent, or both; they
 * hold less than a third of the voting power.  After gst_ms the network
 * delivers every message within delay_max_ms.
 *
 * Checked on every run (a violation ends the run with ok = 0 and a
 * one-line failure naming height, validators and values):
 *   agreement  no two correct validators decide different values at a
 *              height, and every decision's commit certificate verifies;
 *   validity   every decided value was proposed (signed by the round's
 *              proposer) and passes the application's validity check;
 *   liveness   every correct validator decides heights_after_gst more
 *              heights within liveness_ms of gst_ms;
 *   accountability  evidence emitted by correct cores verifies and never
 *              names a correct validator (no correct node double-signs).
 */
#ifndef PLEXUS_SIM_H
#define PLEXUS_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "plexus/base.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PX_SIM_MAX_NODES 16

enum {
  PX_SIM_BYZ_EQUIVOCATE = 1, /* conflicting proposals and votes */
  PX_SIM_BYZ_SILENT = 2,     /* withholds messages */
  PX_SIM_BYZ_INVALID = 4,    /* proposes values the app rejects */
};

typedef struct {
  uint64_t seed;
  uint32_t n;         /* validators, <= PX_SIM_MAX_NODES */
  uint32_t byzantine; /* Byzantine validators, 3 * their power < total */
  uint32_t byz_modes; /* PX_SIM_BYZ_* chosen from (0: all) */
  int weighted;       /* random stakes instead of equal ones */
  uint64_t gst_ms;    /* faults before, synchrony after */
  uint64_t heights_after_gst;
  uint64_t liveness_ms;
  uint32_t delay_min_ms, delay_max_ms; /* after GST */
  uint32_t chaos_delay_max_ms;         /* before GST */
  uint32_t loss_pm, dup_pm;            /* per mille, before GST */
  int partitions, crashes;             /* enable the fault kinds */
  uint64_t max_events;                 /* give up (a failure) past this */
  int trace;                           /* print every event to stderr */
} px_sim_config_t;

typedef struct {
  int ok;
  char failure[512];
  uint64_t heights_min; /* heights decided by the slowest correct node */
  uint32_t max_round;   /* highest round any decision took */
  uint64_t events, messages, dropped;
  uint64_t crashes, partitions, equivocations, evidence;
  uint64_t end_ms;
} px_sim_result_t;

/* A config with every fault kind on, derived from seed: GST, loss rates
 * and modes vary with the seed so that a sweep of seeds covers many
 * shapes of schedule. */
void px_sim_config_default(px_sim_config_t *cfg, uint64_t seed, uint32_t n,
                           uint32_t byzantine);
/* Run one schedule.  0 when it ran to the end (see res->ok for the
 * verdict); PX_EINVAL for a bad config, PX_ENOMEM. */
int px_sim_run(const px_sim_config_t *cfg, px_sim_result_t *res);

#ifdef __cplusplus
}
#endif
#endif /* PLEXUS_SIM_H */
