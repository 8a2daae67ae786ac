/*
 * bench.c — the standard provider benchmark (plexus/market_chain.h).
 *
 * A seeded CNN (1x28x28 input, one 5x5 conv block of 16 channels, 64
 * hidden, 10 classes; Kaiming-uniform weights from seed 0x706c657875732d62)
 * runs a fixed batch of 64 seeded inputs.  Two results:
 *  - hash: the trace root of that forward pass.  The kernels are bit-exact
 *    at every SIMD level and thread count, so every honest machine gets the
 *    same hash and the market contract checks a registration's bench_hash
 *    against px_market_bench_hash() (computed once per process, under
 *    pthread_once: a constant, like the CPU feature table).  It shows the
 *    provider ran the deterministic kernels; it cannot prove the speed.
 *  - speed: work units (multiply-accumulates, px_market_work_units) per
 *    second, measured here with the monotonic clock over repeated runs
 *    (at least 3 and about 250 ms).  The contract stores it as declared;
 *    the requester's scheduler uses it only to estimate lease lengths, and
 *    a provider that overstates it just lets its leases expire.
 */
#include <pthread.h>
#include <string.h>

#include "plexus/compute.h"
#include "plexus/crypto.h"
#include "plexus/market_chain.h"
#include "plexus/model.h"
#include "base/px_internal.h"

#define BENCH_SEED 0x706c657875732d62ull
#define BENCH_BATCH 64
#define BENCH_MIN_RUNS 3
#define BENCH_MAX_RUNS 200
#define BENCH_TIME_NS 250000000ull

static void bench_config(px_net_config_t *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->arch = PX_NET_CNN;
  cfg->in_c = 1, cfg->in_h = 28, cfg->in_w = 28;
  cfg->n_classes = 10;
  cfg->conv[0] = 16, cfg->n_conv = 1;
  cfg->kernel = 5;
  cfg->hidden[0] = 64, cfg->n_hidden = 1;
}

/* Build the net and its input; run once with a trace. */
static int bench_setup(px_compute_t *c, px_net_t **net, float **x,
                       float **logits, uint8_t hash[PX_HASH_LEN]) {
  px_net_config_t cfg;
  bench_config(&cfg);
  *net = NULL;
  *x = *logits = NULL;
  int rc = px_net_new(&cfg, net);
  if (rc) return rc;
  px_net_init(*net, BENCH_SEED);
  size_t in = px_net_input_size(*net);
  *x = px_malloc(in * BENCH_BATCH * sizeof(float));
  *logits = px_malloc((size_t)cfg.n_classes * BENCH_BATCH * sizeof(float));
  if (!*x || !*logits) return PX_ENOMEM;
  px_rng_t r;
  px_rng_seed(&r, BENCH_SEED + 1);
  for (size_t i = 0; i < in * BENCH_BATCH; i++)
    (*x)[i] = (float)(px_rng_next(&r) >> 40) * 0x1p-24f;
  px_trace_t t;
  px_trace_init(&t, 1);
  rc = px_net_forward(*net, c, *x, BENCH_BATCH, *logits, &t);
  if (!rc) rc = px_trace_root(&t, hash);
  px_trace_release(&t);
  return rc;
}

static void bench_free(px_net_t *net, float *x, float *logits) {
  px_net_free(net);
  px_free(x);
  px_free(logits);
}

int px_market_bench(px_compute_t *c, uint64_t *speed,
                    uint8_t hash[PX_HASH_LEN]) {
  if (!c || !speed || !hash) return PX_EINVAL;
  px_net_t *net;
  float *x, *logits;
  int rc = bench_setup(c, &net, &x, &logits, hash);
  px_net_config_t cfg;
  bench_config(&cfg);
  uint64_t work = 0;
  if (!rc) rc = px_market_work_units(&cfg, BENCH_BATCH, &work);
  uint64_t t0 = px_time_mono_ns(), dt = 0, runs = 0;
  while (!rc && runs < BENCH_MAX_RUNS &&
         (runs < BENCH_MIN_RUNS || dt < BENCH_TIME_NS)) {
    rc = px_net_forward(net, c, x, BENCH_BATCH, logits, NULL);
    runs++;
    dt = px_time_mono_ns() - t0;
  }
  bench_free(net, x, logits);
  if (rc) return rc;
  if (dt == 0) dt = 1;
  /* work * runs * 1e9 / dt in 128 bits; at least 1 */
  unsigned __int128 s = (unsigned __int128)work * runs * 1000000000u / dt;
  *speed = s > UINT64_MAX ? UINT64_MAX : s < 1 ? 1 : (uint64_t)s;
  return 0;
}

static pthread_once_t g_bench_once = PTHREAD_ONCE_INIT;
static uint8_t g_bench_hash[PX_HASH_LEN];
static int g_bench_rc;

static void bench_hash_once(void) {
  px_compute_opts_t o = {.simd = -1, .threads = 1};
  px_compute_t *c = NULL;
  int rc = px_compute_new(&o, &c);
  px_net_t *net = NULL;
  float *x = NULL, *logits = NULL;
  if (!rc) rc = bench_setup(c, &net, &x, &logits, g_bench_hash);
  bench_free(net, x, logits);
  px_compute_free(c);
  g_bench_rc = rc;
}

int px_market_bench_hash(uint8_t hash[PX_HASH_LEN]) {
  if (!hash) return PX_EINVAL;
  pthread_once(&g_bench_once, bench_hash_once);
  if (g_bench_rc) return g_bench_rc;
  memcpy(hash, g_bench_hash, PX_HASH_LEN);
  return 0;
}
