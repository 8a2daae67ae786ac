/*
 * test_market_devnet.c — the compute market on real processes over loopback
 * (issue 5, "Faults to test").
 *
 * Devnets of 4 validators and 4 providers (`plexus devnet up --validators 4
 * --providers 4`: 8 node processes, every provider staked and registered on
 * chain).  The requester is node0 (a validator with a funded node key); it
 * is driven through the real `plexus job ...` commands.  The model is a
 * tiny seeded MLP (8x8 inputs, one hidden layer of 32, 10 classes) saved
 * with px_net_save and the inputs are seeded random floats, so the work is
 * negligible and the test measures the protocol; the reference for every
 * result is px_net_forward of the same model on the same input in this
 * process.  Tests, in order:
 *  1. malformed job specs are refused with one clear line (CLI: exit 2 for
 *     a usage error, 1 for a refusal; control socket: ok:false with a
 *     message), and nothing is opened on chain;
 *  2. a liar: the last provider runs the TEST-ONLY market.fault = perturb
 *     (1 ulp added to one hidden activation).  Under audit:0.2, with enough
 *     shards that it is audited almost surely, the job settles, no wrong
 *     result is in the final output (every shard equals the local forward
 *     pass bit for bit), and the liar lost a dispute and was slashed (its
 *     stake went down);
 *  3. the requester (node0) is killed with SIGKILL mid-job and restarted:
 *     it resumes the job from HOME/jobs and settles it, with correct
 *     results;
 *  4. a fresh devnet with 4 honest providers: 2 of them are killed mid-job;
 *     the job completes, every shard's result is correct, and the money
 *     adds up: what the job paid equals the sum of its per-provider
 *     payments and the providers' on-chain earnings grew by exactly that
 *     (a shard paid twice would show), paid <= escrow, refund = escrow -
 *     paid;
 *  5. a fresh devnet where the last provider returns `wrong` (random)
 *     logits and the one before it `equivocate`s (signs a second, different
 *     commitment for each shard and sends both): a replicate:2 job settles
 *     with every result correct, the liar lost disputes and the equivocator
 *     was slashed on evidence (both stakes went down), the two honest
 *     providers lost nothing;
 *  6. the user's commands on that devnet: `plexus provide` registers a
 *     validator as a provider too (one process, two roles) and `plexus
 *     providers` lists it; a stake under the incentive bound is refused
 *     (exit 2, the bound named); `job list`, `job status --wait` on a
 *     settled job, `devnet status` with the roles; and a job over the
 *     10,000 Fashion-MNIST test images (IDX file, converted by `job
 *     submit`) through a seeded 784-512-256-10 MLP, whose result file
 *     scored by `plexus eval --predictions` gives exactly the local `plexus
 *     eval` figure and output hash (skipped without the dataset);
 *  7. a fresh devnet where the last provider is `lazy` (zero logits, a
 *     made-up trace) and the one before it `vanish`es (exits as its first
 *     shard starts): an audit:0.2 job settles with every result correct,
 *     the lazy one is slashed, the vanished one's expired lease is on its
 *     on-chain record, the honest ones lost nothing;
 *  8. throughout, balances conserve: every node checks balances + stakes +
 *     unbonding + escrow = genesis + emitted - burned after each block it
 *     commits and logs "supply invariant broken" otherwise (none may), and
 *     every `chain` query made while jobs run reports supply_ok.
 * Teardown kills every node by pid, even after a failed assertion.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "plexus/base.h"
#include "plexus/compute.h"
#include "plexus/json.h"
#include "plexus/model.h"
#include "plexus/model_io.h"

#define NODES 8
#define LIAR 7
#define UP_MS 180000
#define JOB_MS 150000
#define IN_SIDE 8
#define CLASSES 10

typedef struct {
  char *home;
  char dir[NODES][600];
  char id[NODES][80];
} net_t;

static net_t g_net;
static char *g_work; /* model, inputs, results */
static char g_model[700];
static int g_supply_checks;

/* ---- devnet ----------------------------------------------------------------
 */

static void kill_all(net_t *n) {
  if (!n->home) return;
  for (int i = 0; i < NODES; i++) {
    char p[700];
    h_path(p, sizeof p, n->dir[i], "node.pid");
    pid_t pid = h_read_pid_file(p);
    if (pid > 0 && h_pid_alive(pid)) {
      h_kill(pid, SIGKILL);
      h_wait_gone(pid, 2000);
    }
  }
  h_reap();
}

static void log_tail(const net_t *n, int i) {
  char p[700];
  h_path(p, sizeof p, n->dir[i], "node.log");
  char *s = h_read_file(p);
  if (!s) return;
  size_t len = strlen(s);
  print_message("---- tail of %s ----\n%s\n", p,
                s + (len > 3000 ? len - 3000 : 0));
  free(s);
}

static int net_up(net_t *n, const char *tag, const char *fault) {
  memset(n, 0, sizeof *n);
  if (!(n->home = h_tmpdir(tag))) return -1;
  for (int i = 0; i < NODES; i++)
    snprintf(n->dir[i], sizeof n->dir[i], "%s/node%d", n->home, i);
  h_result_t r;
  uint64_t t0 = h_now_ms();
  int rc = fault ? h_runl(&r, UP_MS, "devnet", "up", "--validators", "4",
                          "--providers", "4", "--fault", fault, "--home",
                          n->home, NULL)
                 : h_runl(&r, UP_MS, "devnet", "up", "--validators", "4",
                          "--providers", "4", "--home", n->home, NULL);
  if (rc) print_message("devnet up: %d\n%s\n%s\n", rc, r.out, r.err);
  h_result_free(&r);
  if (rc) return -1;
  print_message("devnet %s up with 4 registered providers in %.1f s\n", tag,
                (double)(h_now_ms() - t0) / 1000.0);
  for (int i = 0; i < NODES; i++) {
    char *s = h_status(n->dir[i], 5000);
    if (!s || h_json_str(s, "node_id", n->id[i], sizeof n->id[i])) {
      free(s);
      return -1;
    }
    free(s);
  }
  return 0;
}

static void net_down(net_t *n) {
  if (!n->home) return;
  h_result_t r;
  h_runl(&r, 30000, "devnet", "down", "--home", n->home, NULL);
  h_result_free(&r);
  kill_all(n);
  if (getenv("PX_TEST_KEEP")) /* debugging: keep the nodes' logs */
    fprintf(stderr, "kept %s\n", n->home);
  else
    h_rmrf(n->home);
  free(n->home);
  n->home = NULL;
}

/* No node of n ever logged a broken supply invariant, and every running
 * node's `chain` reply says supply_ok now. */
static void check_supply(const net_t *n) {
  for (int i = 0; i < NODES; i++) {
    char p[700];
    h_path(p, sizeof p, n->dir[i], "node.log");
    assert_int_equal(h_count_lines_containing(p, "supply invariant broken"), 0);
    char *s = h_control(n->dir[i], "chain", 3000);
    if (!s) continue; /* a node this test killed */
    if (strstr(s, "\"supply_ok\":false")) {
      print_message("node%d: %s\n", i, s);
      free(s);
      fail_msg("supply invariant broken on node%d", i);
    }
    assert_non_null(strstr(s, "\"supply_ok\":true"));
    g_supply_checks++;
    free(s);
  }
}

/* ---- the model and the reference ---------------------------------------- */

static int make_model(void) {
  px_net_config_t cfg;
  memset(&cfg, 0, sizeof cfg);
  cfg.arch = PX_NET_MLP;
  cfg.in_c = 1, cfg.in_h = IN_SIDE, cfg.in_w = IN_SIDE;
  cfg.n_classes = CLASSES;
  cfg.hidden[0] = 32, cfg.n_hidden = 1;
  px_net_t *net;
  if (px_net_new(&cfg, &net)) return -1;
  px_net_init(net, 20261123);
  h_path(g_model, sizeof g_model, g_work, "tiny.safetensors");
  int rc = px_net_save(net, g_model);
  px_net_free(net);
  return rc;
}

/* n seeded samples of IN_SIDE^2 floats in [0, 1) written raw to path. */
static float *make_input(const char *path, uint32_t n, uint64_t seed) {
  size_t k = (size_t)n * IN_SIDE * IN_SIDE;
  float *x = malloc(k * sizeof *x);
  if (!x) return NULL;
  uint64_t s = seed * 0x9e3779b97f4a7c15ull + 1;
  for (size_t i = 0; i < k; i++) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    x[i] = (float)(s >> 40) / (float)(1u << 24);
  }
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(x, sizeof *x, k, f) != k) {
    if (f) fclose(f);
    free(x);
    return NULL;
  }
  fclose(f);
  return x;
}

static float *local_forward(const float *x, uint32_t n) {
  px_net_t *net;
  px_compute_t *c;
  px_compute_opts_t o = {-1, 0};
  if (px_net_load(g_model, &net)) return NULL;
  if (px_compute_new(&o, &c)) {
    px_net_free(net);
    return NULL;
  }
  float *lg = malloc((size_t)n * CLASSES * sizeof *lg);
  int rc = lg ? 0 : -1;
  size_t in = px_net_input_size(net);
  for (uint32_t s = 0; s < n && !rc; s += 256) {
    int b = (int)(n - s < 256 ? n - s : 256);
    rc = px_net_forward(net, c, x + (size_t)s * in, b, lg + (size_t)s * CLASSES,
                        NULL);
  }
  px_compute_free(c);
  px_net_free(net);
  if (rc) {
    free(lg);
    return NULL;
  }
  return lg;
}

/* ---- jobs -----------------------------------------------------------------
 */

typedef struct {
  char id[65];
  uint32_t n, shard_size;
  float *x, *want;
  char input[700];
} job_t;

static void job_release(job_t *j) {
  free(j->x);
  free(j->want);
  memset(j, 0, sizeof *j);
}

static void submit(const net_t *n, job_t *j, const char *tag, uint32_t samples,
                   uint32_t shard_size, const char *policy, uint64_t seed) {
  memset(j, 0, sizeof *j);
  j->n = samples, j->shard_size = shard_size;
  char name[64];
  snprintf(name, sizeof name, "%s.f32", tag);
  h_path(j->input, sizeof j->input, g_work, name);
  j->x = make_input(j->input, samples, seed);
  assert_non_null(j->x);
  j->want = local_forward(j->x, samples);
  assert_non_null(j->want);
  char ss[16];
  snprintf(ss, sizeof ss, "%u", shard_size);
  h_result_t r;
  int rc = h_runl(&r, 60000, "job", "submit", "infer", "--home", n->dir[0],
                  "--model", g_model, "--input", j->input, "--policy", policy,
                  "--max-price", "1", "--shard-size", ss, "--json", NULL);
  if (rc) print_message("job submit: %d\n%s\n%s\n", rc, r.out, r.err);
  assert_int_equal(rc, 0);
  assert_int_equal(h_json_str(r.out, "job", j->id, sizeof j->id), 0);
  assert_int_equal(strlen(j->id), 64);
  assert_int_equal(h_json_int(r.out, "shards", -1),
                   (samples + shard_size - 1) / shard_size);
  h_result_free(&r);
}

static char *job_status(const net_t *n, const job_t *j) {
  char cmd[100];
  snprintf(cmd, sizeof cmd, "job_status %s", j->id);
  return h_control(n->dir[0], cmd, 5000);
}

typedef struct {
  const net_t *n;
  const job_t *j;
  long long min_accepted; /* -1: wait for the end */
  char state[32];
  uint64_t last_check;
} wait_t;

static int job_reached(void *ud) {
  wait_t *w = ud;
  if (h_now_ms() - w->last_check > 2000) {
    check_supply(w->n);
    w->last_check = h_now_ms();
  }
  char *s = job_status(w->n, w->j);
  if (!s) return 0;
  w->state[0] = 0;
  h_json_str(s, "state", w->state, sizeof w->state);
  long long acc = h_json_int(s, "accepted", -1);
  free(s);
  if (w->min_accepted >= 0) return acc >= w->min_accepted;
  return !strcmp(w->state, "settled") || !strcmp(w->state, "failed");
}

static void wait_settled(const net_t *n, const job_t *j) {
  wait_t w = {n, j, -1, "", 0};
  uint64_t t0 = h_now_ms();
  int ok = h_wait_until(job_reached, &w, JOB_MS, 200);
  print_message("job %.16s: %s after %.1f s\n", j->id, w.state,
                (double)(h_now_ms() - t0) / 1000.0);
  if (!ok || strcmp(w.state, "settled")) {
    char *s = job_status(n, j);
    print_message("job %s: %s\n", j->id, s ? s : "(no reply)");
    free(s);
    log_tail(n, 0);
  }
  assert_true(ok);
  assert_string_equal(w.state, "settled");
}

/* The job's result through `plexus job result`, compared shard by shard with
 * the local forward pass.  Returns the number of wrong shards. */
static int wrong_shards(const net_t *n, const job_t *j) {
  char out[700];
  h_path(out, sizeof out, g_work, "result.f32");
  h_result_t r;
  int rc = h_runl(&r, 30000, "job", "result", j->id, "--home", n->dir[0],
                  "--out", out, NULL);
  if (rc) print_message("job result: %d\n%s\n%s\n", rc, r.out, r.err);
  h_result_free(&r);
  assert_int_equal(rc, 0);
  char *got = h_read_file(out);
  assert_non_null(got);
  int bad = 0;
  size_t row = CLASSES * sizeof(float);
  for (uint32_t s = 0; s < j->n; s += j->shard_size) {
    uint32_t k = j->n - s < j->shard_size ? j->n - s : j->shard_size;
    bad +=
        memcmp(got + (size_t)s * row, (const char *)j->want + (size_t)s * row,
               (size_t)k * row) != 0;
  }
  free(got);
  unlink(out);
  return bad;
}

/* ---- the registry ------------------------------------------------------- */

typedef struct {
  uint64_t stake, earned, disputes_lost, audits_failed, leases_expired;
  int found;
} prov_t;

static int provider_rec(const net_t *n, int via, const char *id, prov_t *p) {
  memset(p, 0, sizeof *p);
  char *s = h_control(n->dir[via], "providers", 5000);
  if (!s) return -1;
  px_arena_t a;
  px_arena_init(&a, 1 << 16, 0);
  px_json_t *root;
  int rc = px_json_parse(&a, s, strlen(s), NULL, &root, NULL);
  const px_json_t *ps = rc ? NULL : px_json_get(root, "providers");
  for (size_t i = 0; i < px_json_count(ps); i++) {
    const px_json_t *e = px_json_at(ps, i);
    const char *pid = "";
    px_json_get_str(e, "id", &pid);
    if (strcmp(pid, id)) continue;
    p->found = 1;
    px_json_get_u64(e, "stake", &p->stake);
    px_json_get_u64(e, "earned", &p->earned);
    px_json_get_u64(e, "disputes_lost", &p->disputes_lost);
    px_json_get_u64(e, "audits_failed", &p->audits_failed);
    px_json_get_u64(e, "leases_expired", &p->leases_expired);
  }
  px_arena_release(&a);
  free(s);
  return rc ? -1 : 0;
}

static uint64_t earned_total(const net_t *n) {
  uint64_t t = 0;
  for (int i = 4; i < NODES; i++) {
    prov_t p;
    assert_int_equal(provider_rec(n, 1, n->id[i], &p), 0);
    assert_true(p.found);
    t += p.earned;
  }
  return t;
}

/* ---- fixtures ----------------------------------------------------------- */

static int setup(void **state) {
  (void)state;
  if (!(g_work = h_tmpdir("market-work"))) return -1;
  if (make_model()) return -1;
  return net_up(&g_net, "market", "perturb");
}

static int teardown(void **state) {
  (void)state;
  net_down(&g_net);
  if (g_work) {
    h_rmrf(g_work);
    free(g_work);
    g_work = NULL;
  }
  return 0;
}

/* ---- 1. malformed specs ------------------------------------------------- */

static void expect_cli(int want_status, const char *needle,
                       const char *const *argv) {
  h_result_t r;
  int rc = h_run(&r, 30000, argv);
  if (rc != want_status || !strstr(r.err, needle) ||
      strchr(r.err, '\n') != r.err + strlen(r.err) - 1)
    print_message("%s %s: status %d\nstdout: %s\nstderr: %s\n", argv[0],
                  argv[1], rc, r.out, r.err);
  assert_int_equal(rc, want_status);
  assert_non_null(strstr(r.err, needle));
  /* one line */
  assert_ptr_equal(strchr(r.err, '\n'), r.err + strlen(r.err) - 1);
  h_result_free(&r);
}

static void expect_refused(const char *cmd) {
  char *s = h_control(g_net.dir[0], cmd, 10000);
  assert_non_null(s);
  char msg[300] = "";
  if (!strstr(s, "\"ok\":false") || h_json_str(s, "message", msg, sizeof msg) ||
      !msg[0])
    print_message("%s -> %s\n", cmd, s);
  assert_non_null(strstr(s, "\"ok\":false"));
  assert_int_equal(h_json_str(s, "message", msg, sizeof msg), 0);
  assert_true(strlen(msg) > 5);
  free(s);
}

static void test_bad_specs(void **state) {
  (void)state;
  const char *home = g_net.dir[0];
  char input[700];
  h_path(input, sizeof input, g_work, "bad.f32");
  float *x = make_input(input, 20, 1);
  assert_non_null(x);
  free(x);
  {
    const char *a[] = {"job", "submit",   "infer",      "--home",
                       home,  "--model",  g_model,      "--input",
                       input, "--policy", "audit:0.01", "--max-price",
                       "1",   NULL};
    expect_cli(2, "audit", a);
  }
  {
    const char *a[] = {"job", "submit",   "infer",       "--home",
                       home,  "--model",  g_model,       "--input",
                       input, "--policy", "replicate:9", "--max-price",
                       "1",   NULL};
    expect_cli(2, "replicate:K", a);
  }
  {
    const char *a[] = {"job", "submit",   "infer",     "--home",
                       home,  "--model",  g_model,     "--input",
                       input, "--policy", "audit:0.2", "--max-price",
                       "0",   NULL};
    expect_cli(2, "--max-price", a);
  }
  {
    const char *a[] = {"job",
                       "submit",
                       "infer",
                       "--home",
                       home,
                       "--model",
                       "/nonexistent/m.safetensors",
                       "--input",
                       input,
                       "--policy",
                       "audit:0.2",
                       "--max-price",
                       "1",
                       NULL};
    expect_cli(1, "cannot load --model", a);
  }
  {
    /* 20 samples of 64 floats + 4 bytes: not a whole number of samples */
    char odd[700];
    h_path(odd, sizeof odd, g_work, "odd.f32");
    FILE *f = fopen(odd, "wb");
    assert_non_null(f);
    for (int i = 0; i < 20 * 64 + 1; i++) {
      float v = 0.5f;
      fwrite(&v, sizeof v, 1, f);
    }
    fclose(f);
    const char *a[] = {"job", "submit",   "infer",     "--home",
                       home,  "--model",  g_model,     "--input",
                       odd,   "--policy", "audit:0.2", "--max-price",
                       "1",   NULL};
    expect_cli(1, "raw f32", a);
  }
  {
    const char *a[] = {"job", "submit", "train", "--home", home, NULL};
    expect_cli(2, "infer", a);
  }
  {
    const char *a[] = {"job", "status", "xyz", "--home", home, NULL};
    expect_cli(2, "job id", a);
  }
  {
    const char *a[] = {"job",
                       "status",
                       "00000000000000000000000000000000000000000000000000000"
                       "00000000000",
                       "--home",
                       home,
                       NULL};
    h_result_t r;
    int rc = h_run(&r, 30000, a);
    assert_int_equal(rc, 1);
    assert_true(strlen(r.err) > 10);
    h_result_free(&r);
  }
  /* Straight to the control socket: the node's own checks. */
  char cmd[2048];
  expect_refused("job_submit {not json");
  snprintf(cmd, sizeof cmd,
           "job_submit {\"kind\":\"train\",\"model\":\"%s\",\"input\":\"%s\","
           "\"policy\":\"audit:0.2\",\"max_price\":1}",
           g_model, input);
  expect_refused(cmd);
  snprintf(cmd, sizeof cmd,
           "job_submit {\"kind\":\"infer\",\"model\":\"%s\",\"input\":\"%s\","
           "\"policy\":\"audit:0.001\",\"max_price\":1}",
           g_model, input);
  expect_refused(cmd);
  snprintf(cmd, sizeof cmd,
           "job_submit {\"kind\":\"infer\",\"model\":\"%s\",\"input\":\"%s\","
           "\"policy\":\"audit:0.2\",\"max_price\":0}",
           g_model, input);
  expect_refused(cmd);
  snprintf(cmd, sizeof cmd,
           "job_submit {\"kind\":\"infer\",\"model\":\"%s\",\"input\":\"%s\","
           "\"policy\":\"audit:0.2\",\"max_price\":1,\"shard_size\":0}",
           g_model, input);
  expect_refused(cmd);
  snprintf(cmd, sizeof cmd,
           "job_submit {\"kind\":\"infer\",\"model\":\"/nonexistent\","
           "\"input\":\"%s\",\"policy\":\"audit:0.2\",\"max_price\":1}",
           input);
  expect_refused(cmd);
  expect_refused("job_status zz");
  /* Nothing was opened. */
  char *s = h_control(home, "job_list", 5000);
  assert_non_null(s);
  assert_null(strstr(s, "\"job\":\""));
  free(s);
  check_supply(&g_net);
}

/* ---- 2. a liar under audit:0.2 ------------------------------------------ */

static void test_liar_caught(void **state) {
  (void)state;
  prov_t before;
  assert_int_equal(provider_rec(&g_net, 1, g_net.id[LIAR], &before), 0);
  assert_true(before.found);
  assert_true(before.stake > 0);
  job_t j;
  /* 150 shards of 4: the liar gets tens of them; at p = 0.2 the chance that
   * none is audited is below 1e-3. */
  submit(&g_net, &j, "liar", 600, 4, "audit:0.2", 7);
  wait_settled(&g_net, &j);
  int bad = wrong_shards(&g_net, &j);
  char *s = job_status(&g_net, &j);
  assert_non_null(s);
  print_message("liar job: %s\n", s);
  long long audits = h_json_int(s, "audits", -1);
  long long slashed = h_json_int(s, "slashed", -1);
  free(s);
  assert_int_equal(bad, 0); /* no wrong result accepted */
  assert_true(audits > 0);
  prov_t after;
  assert_int_equal(provider_rec(&g_net, 1, g_net.id[LIAR], &after), 0);
  print_message("liar %.16s: stake %llu -> %llu, disputes lost %llu, "
                "audits failed %llu; job: %lld audits, %lld slashed\n",
                g_net.id[LIAR], (unsigned long long)before.stake,
                (unsigned long long)after.stake,
                (unsigned long long)after.disputes_lost,
                (unsigned long long)after.audits_failed, audits, slashed);
  assert_true(after.stake < before.stake);
  assert_true(after.disputes_lost >= 1 || after.audits_failed >= 1);
  assert_true(slashed >= 1);
  /* The honest providers were not slashed. */
  for (int i = 4; i < LIAR; i++) {
    prov_t p;
    assert_int_equal(provider_rec(&g_net, 1, g_net.id[i], &p), 0);
    assert_int_equal(p.disputes_lost, 0);
  }
  check_supply(&g_net);
  job_release(&j);
}

/* ---- 3. the requester killed and restarted ------------------------------ */

static void test_requester_restart(void **state) {
  (void)state;
  char p[700];
  h_path(p, sizeof p, g_net.dir[0], "node.pid");
  pid_t pid = h_read_pid_file(p);
  assert_true(pid > 0);
  job_t j;
  submit(&g_net, &j, "restart", 1600, 4, "audit:0.05", 11);
  wait_t w = {&g_net, &j, 1, "", h_now_ms()}; /* no supply polls here */
  assert_true(h_wait_until(job_reached, &w, JOB_MS, 5));
  h_kill(pid, SIGKILL);
  assert_string_not_equal(w.state, "settled"); /* it was mid-job */
  assert_true(h_wait_gone(pid, 5000));
  char jl[700];
  snprintf(jl, sizeof jl, "%s/jobs/%s", g_net.dir[0], j.id);
  print_message("killed the requester mid-job (its state: %s)\n", jl);
  h_result_t r;
  int rc = h_runl(&r, UP_MS, "devnet", "up", "--home", g_net.home, NULL);
  if (rc) print_message("devnet up: %d\n%s\n%s\n", rc, r.out, r.err);
  h_result_free(&r);
  assert_int_equal(rc, 0);
  wait_settled(&g_net, &j);
  assert_int_equal(wrong_shards(&g_net, &j), 0);
  check_supply(&g_net);
  job_release(&j);
}

/* ---- 4. half the providers killed mid-job ------------------------------- */

static void test_half_killed(void **state) {
  (void)state;
  net_down(&g_net);
  assert_int_equal(net_up(&g_net, "market2", NULL), 0);
  uint64_t earned0 = earned_total(&g_net);
  job_t j;
  submit(&g_net, &j, "half", 1200, 4, "audit:0.05", 13);
  pid_t pids[NODES];
  for (int i = 6; i < NODES; i++) {
    char p[700];
    h_path(p, sizeof p, g_net.dir[i], "node.pid");
    pids[i] = h_read_pid_file(p);
    assert_true(pids[i] > 0);
  }
  wait_t w = {&g_net, &j, 10, "", h_now_ms()}; /* no supply polls here */
  assert_true(h_wait_until(job_reached, &w, JOB_MS, 10));
  for (int i = 6; i < NODES; i++)
    h_kill(pids[i], SIGKILL);
  for (int i = 6; i < NODES; i++)
    assert_true(h_wait_gone(pids[i], 5000));
  char *s = job_status(&g_net, &j);
  print_message("killed node6 and node7 mid-job: %s\n", s ? s : "");
  free(s);
  wait_settled(&g_net, &j);
  assert_int_equal(wrong_shards(&g_net, &j), 0);
  s = job_status(&g_net, &j);
  assert_non_null(s);
  print_message("half-killed job: %s\n", s);
  long long shards = h_json_int(s, "shards", -1);
  long long accepted = h_json_int(s, "accepted", -1);
  long long paid = h_json_int(s, "paid", -1);
  long long escrow = h_json_int(s, "escrow", -1);
  long long refund = h_json_int(s, "refund", -1);
  assert_int_equal(shards, 300);
  assert_int_equal(accepted, shards);
  assert_true(paid > 0 && escrow >= paid);
  assert_int_equal(refund, escrow - paid);
  /* per_provider payments add up to the job's total */
  px_arena_t a;
  px_arena_init(&a, 1 << 16, 0);
  px_json_t *root;
  assert_int_equal(px_json_parse(&a, s, strlen(s), NULL, &root, NULL), 0);
  const px_json_t *pp = px_json_get(root, "per_provider");
  uint64_t sum = 0, worked = 0;
  for (size_t i = 0; i < px_json_count(pp); i++) {
    uint64_t v = 0, k = 0;
    px_json_get_u64(px_json_at(pp, i), "paid", &v);
    px_json_get_u64(px_json_at(pp, i), "shards", &k);
    sum += v, worked += k;
  }
  px_arena_release(&a);
  free(s);
  assert_int_equal(sum, (uint64_t)paid);
  assert_true(worked >= (uint64_t)shards);
  /* On chain: the providers' earnings grew by exactly what the job paid
   * (each (job, shard, provider) is paid at most once by the contract). */
  uint64_t earned1 = earned_total(&g_net);
  print_message("providers earned %llu, the job paid %lld; %d supply checks\n",
                (unsigned long long)(earned1 - earned0), paid, g_supply_checks);
  assert_int_equal(earned1 - earned0, (uint64_t)paid);
  check_supply(&g_net);
  job_release(&j);
}

/* ---- 5. wrong + equivocate under replicate:2 ----------------------------- */

static void test_replicate_faults(void **state) {
  (void)state;
  net_down(&g_net);
  assert_int_equal(net_up(&g_net, "market3", "wrong"), 0);
  /* node6 becomes an equivocator: stop it, set the fault, restart. */
  char p[700];
  h_path(p, sizeof p, g_net.dir[6], "node.pid");
  pid_t pid = h_read_pid_file(p);
  assert_true(pid > 0);
  h_kill(pid, SIGKILL);
  assert_true(h_wait_gone(pid, 5000));
  h_path(p, sizeof p, g_net.dir[6], "config");
  FILE *f = fopen(p, "a");
  assert_non_null(f);
  fputs("market.fault = \"equivocate\"\n", f);
  fclose(f);
  h_result_t r;
  int rc = h_runl(&r, UP_MS, "devnet", "up", "--home", g_net.home, NULL);
  if (rc) print_message("devnet up: %d\n%s\n%s\n", rc, r.out, r.err);
  h_result_free(&r);
  assert_int_equal(rc, 0);
  prov_t before[NODES];
  for (int i = 4; i < NODES; i++) {
    assert_int_equal(provider_rec(&g_net, 1, g_net.id[i], &before[i]), 0);
    assert_true(before[i].found);
  }
  /* node4 (honest) also mines uPoW while idle (issue 6): the shards it
   * takes must pre-empt the miner, within the miner's stated bound (one
   * window of work between polls, well under the node's 50 ms tick). */
  rc = h_runl(&r, 30000, "mine", "--home", g_net.dir[4], NULL);
  if (rc) print_message("mine: %d\n%s\n%s\n", rc, r.out, r.err);
  assert_int_equal(rc, 0);
  h_result_free(&r);
  job_t j;
  submit(&g_net, &j, "repl", 400, 4, "replicate:2", 17);
  wait_settled(&g_net, &j);
  assert_int_equal(wrong_shards(&g_net, &j), 0);
  rc = h_runl(&r, 30000, "upow", "status", "--home", g_net.dir[4], "--json",
              NULL);
  assert_int_equal(rc, 0);
  long long pre = h_json_int(r.out, "preemptions", -1);
  long long gap = h_json_int(r.out, "poll_gap_max_us", -1);
  print_message("miner on node4: %lld pre-emptions by shards, max %lld us of "
                "mining between polls\n",
                pre, gap);
  assert_true(pre >= 1);
  assert_true(gap >= 0 && gap < 50000);
  h_result_free(&r);
  char *s = job_status(&g_net, &j);
  print_message("replicate:2 job: %s\n", s ? s : "");
  free(s);
  prov_t after[NODES];
  for (int i = 4; i < NODES; i++) {
    assert_int_equal(provider_rec(&g_net, 1, g_net.id[i], &after[i]), 0);
    print_message("node%d %.16s: stake %llu -> %llu, disputes lost %llu\n", i,
                  g_net.id[i], (unsigned long long)before[i].stake,
                  (unsigned long long)after[i].stake,
                  (unsigned long long)after[i].disputes_lost);
  }
  assert_true(after[7].stake < before[7].stake); /* wrong: lost disputes */
  assert_true(after[7].disputes_lost >= 1);
  assert_true(after[6].stake < before[6].stake); /* equivocation evidence */
  for (int i = 4; i < 6; i++) {
    assert_int_equal(after[i].stake, before[i].stake);
    assert_int_equal(after[i].disputes_lost, 0);
  }
  check_supply(&g_net);
  job_release(&j);
}

/* ---- 6. the user's commands --------------------------------------------- */

static void test_cli(void **state) {
  (void)state;
  const char *home1 = g_net.dir[1];
  {
    const char *a[] = {"provide", "--home",  home1, "--stake",
                       "1000",    "--price", "2",   "--max-shard-work",
                       "1000000", NULL};
    expect_cli(2, "bound", a);
  }
  h_result_t r;
  int rc = h_runl(&r, 120000, "provide", "--home", home1, "--stake",
                  "100000000000", "--price", "2", "--slots", "1",
                  "--max-shard-work", "1000000000", "--json", NULL);
  if (rc) print_message("provide: %d\n%s\n%s\n", rc, r.out, r.err);
  assert_int_equal(rc, 0);
  char id[80];
  assert_int_equal(h_json_str(r.out, "id", id, sizeof id), 0);
  assert_string_equal(id, g_net.id[1]);
  assert_int_equal(h_json_int(r.out, "price", -1), 2);
  h_result_free(&r);
  rc = h_runl(&r, 30000, "providers", "--home", g_net.dir[0], NULL);
  assert_int_equal(rc, 0);
  char prefix[20];
  snprintf(prefix, sizeof prefix, "%.16s", g_net.id[1]);
  assert_non_null(strstr(r.out, prefix));
  assert_non_null(strstr(r.out, "PROVIDER"));
  h_result_free(&r);
  prov_t p;
  assert_int_equal(provider_rec(&g_net, 2, g_net.id[1], &p), 0);
  assert_true(p.found);
  assert_true(p.stake >= 100000000000ull);
  /* job list / status --wait on the settled job of test 5 */
  rc = h_runl(&r, 30000, "job", "list", "--home", g_net.dir[0], "--json", NULL);
  assert_int_equal(rc, 0);
  char job[80];
  assert_int_equal(h_json_str(r.out, "job", job, sizeof job), 0);
  h_result_free(&r);
  job[12] = 0; /* a unique prefix is enough */
  rc = h_runl(&r, 30000, "job", "status", job, "--home", g_net.dir[0], "--wait",
              NULL);
  if (rc) print_message("job status: %d\n%s\n%s\n", rc, r.out, r.err);
  assert_int_equal(rc, 0);
  assert_non_null(strstr(r.out, "settled"));
  h_result_free(&r);
  rc = h_runl(&r, 30000, "devnet", "status", "--home", g_net.home, NULL);
  assert_int_equal(rc, 0);
  assert_non_null(strstr(r.out, "validator"));
  assert_non_null(strstr(r.out, "provider (price"));
  h_result_free(&r);
  check_supply(&g_net);

  /* Fashion-MNIST through the market, scored like a local eval. */
  const char *images = PX_FASHION_MNIST_DIR "/t10k-images-idx3-ubyte.gz";
  if (access(images, R_OK) != 0) {
    print_message("no %s: the Fashion-MNIST part is skipped\n", images);
    return;
  }
  px_net_config_t cfg;
  px_net_config_default(&cfg, PX_NET_MLP);
  px_net_t *net;
  assert_int_equal(px_net_new(&cfg, &net), 0);
  px_net_init(net, 5);
  char mlp[700], res[700];
  h_path(mlp, sizeof mlp, g_work, "mlp.safetensors");
  h_path(res, sizeof res, g_work, "fashion.f32");
  assert_int_equal(px_net_save(net, mlp), 0);
  px_net_free(net);
  rc = h_runl(&r, JOB_MS, "job", "submit", "infer", "--home", g_net.dir[0],
              "--model", mlp, "--input", images, "--policy", "audit:0.05",
              "--max-price", "1", "--shard-size", "1000", "--wait", "--timeout",
              "120", "--json", NULL);
  if (rc) print_message("job submit --wait: %d\n%s\n%s\n", rc, r.out, r.err);
  assert_int_equal(rc, 0);
  assert_int_equal(h_json_str(r.out, "job", job, sizeof job), 0);
  assert_int_equal(h_json_int(r.out, "accepted", -1), 10);
  h_result_free(&r);
  rc = h_runl(&r, 30000, "job", "result", job, "--home", g_net.dir[0], "--out",
              res, NULL);
  assert_int_equal(rc, 0);
  h_result_free(&r);
  h_result_t ev, loc;
  assert_int_equal(h_runl(&ev, 60000, "eval", "--model", mlp, "--data",
                          "fashion-mnist", "--predictions", res, "--json",
                          NULL),
                   0);
  assert_int_equal(h_runl(&loc, 60000, "eval", "--model", mlp, "--data",
                          "fashion-mnist", "--json", NULL),
                   0);
  char h1[80], h2[80];
  assert_int_equal(h_json_str(ev.out, "output_hash", h1, sizeof h1), 0);
  assert_int_equal(h_json_str(loc.out, "output_hash", h2, sizeof h2), 0);
  print_message("job eval: %s local eval: %s\n", ev.out, loc.out);
  assert_int_equal(h_json_int(ev.out, "correct", -1),
                   h_json_int(loc.out, "correct", -2));
  assert_int_equal(h_json_int(ev.out, "samples", -1), 10000);
  assert_string_equal(h1, h2);
  h_result_free(&ev);
  h_result_free(&loc);
  check_supply(&g_net);
}

/* ---- 7. lazy + vanish under audit:0.2 ------------------------------------ */

static void test_lazy_vanish(void **state) {
  (void)state;
  net_down(&g_net);
  assert_int_equal(net_up(&g_net, "market4", "lazy"), 0);
  char p[700];
  h_path(p, sizeof p, g_net.dir[6], "node.pid");
  pid_t pid = h_read_pid_file(p);
  assert_true(pid > 0);
  h_kill(pid, SIGKILL);
  assert_true(h_wait_gone(pid, 5000));
  h_path(p, sizeof p, g_net.dir[6], "config");
  FILE *f = fopen(p, "a");
  assert_non_null(f);
  fputs("market.fault = \"vanish\"\n", f);
  fclose(f);
  h_result_t r;
  int rc = h_runl(&r, UP_MS, "devnet", "up", "--home", g_net.home, NULL);
  if (rc) print_message("devnet up: %d\n%s\n%s\n", rc, r.out, r.err);
  h_result_free(&r);
  assert_int_equal(rc, 0);
  prov_t before[NODES];
  for (int i = 4; i < NODES; i++) {
    assert_int_equal(provider_rec(&g_net, 1, g_net.id[i], &before[i]), 0);
    assert_true(before[i].found);
  }
  job_t j;
  submit(&g_net, &j, "lazy", 600, 4, "audit:0.2", 19);
  wait_settled(&g_net, &j);
  assert_int_equal(wrong_shards(&g_net, &j), 0);
  char *s = job_status(&g_net, &j);
  print_message("lazy/vanish job: %s\n", s ? s : "");
  free(s);
  prov_t after[NODES];
  for (int i = 4; i < NODES; i++) {
    assert_int_equal(provider_rec(&g_net, 1, g_net.id[i], &after[i]), 0);
    print_message("node%d %.16s: stake %llu -> %llu, disputes lost %llu, "
                  "leases expired %llu\n",
                  i, g_net.id[i], (unsigned long long)before[i].stake,
                  (unsigned long long)after[i].stake,
                  (unsigned long long)after[i].disputes_lost,
                  (unsigned long long)after[i].leases_expired);
  }
  h_path(p, sizeof p, g_net.dir[6], "node.pid");
  assert_false(h_pid_alive(h_read_pid_file(p))); /* it vanished */
  assert_true(after[7].stake < before[7].stake);
  assert_true(after[6].leases_expired > before[6].leases_expired);
  for (int i = 4; i < 6; i++) {
    assert_int_equal(after[i].stake, before[i].stake);
    assert_int_equal(after[i].disputes_lost, 0);
  }
  check_supply(&g_net);
  job_release(&j);
}

int main(void) {
  h_init();
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bad_specs),
      cmocka_unit_test(test_liar_caught),
      cmocka_unit_test(test_requester_restart),
      cmocka_unit_test(test_half_killed),
      cmocka_unit_test(test_replicate_faults),
      cmocka_unit_test(test_cli),
      cmocka_unit_test(test_lazy_vanish),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
