/*
 * market_cmds.c — the user's commands for the compute market
 * (docs/market.md, issue 5 "What users do"):
 *
 *   plexus provide   --home DIR --stake N --price P [--slots S]
 *                    [--max-shard-work W] [--no-wait] [--json]
 *   plexus providers --home DIR [--json]
 *   plexus job submit infer --home DIR --model M --input I
 *                    --policy audit:0.05|replicate:2 --max-price P
 *                    [--deadline T] [--shard-size S] [--wait] [--json]
 *   plexus job status ID --home DIR [--wait] [--json]
 *   plexus job result ID --home DIR --out FILE [--json]
 *   plexus job list  --home DIR [--json]
 *
 * Each command is a thin client of the node's control socket: it checks
 * what it can locally (options, files, the model, the policy) so that a
 * mistake is one clear line before anything reaches the chain, sends one
 * market control command (provide, providers, job_submit, job_status,
 * job_result, job_list: src/node/market.c answers with one JSON object)
 * and renders the reply.  --json prints the node's reply as it is.
 *
 * Inputs.  The market moves raw f32 samples (the input blob is what the
 * providers run, sample after sample).  `job submit` therefore takes the
 * same files as `plexus infer`: raw little-endian f32, or an IDX image
 * file (gzip or not) that it converts with the training scaling into
 * DIR/inputs/<hash>.f32 first.  Paths are made absolute: the node does not
 * share the client's working directory.
 *
 * Progress.  `--wait` polls job_status and draws a bar on stderr (redrawn
 * in place on a terminal, a line every few seconds otherwise) until the
 * job is settled or failed.
 *
 * Exit status: 0 done, 1 a failure (the node refused, the job failed),
 * 2 a usage error.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/px_internal.h"
#include "cli/cli.h"
#include "plexus/crypto.h"
#include "plexus/json.h"
#include "plexus/market.h"
#include "plexus/market_chain.h"
#include "plexus/model.h"
#include "plexus/model_io.h"
#include "plexus/node.h"

#define CALL_MS 60000
#define POLL_MS 250
/* Samples per shard a provider takes (PX_MKT_MAX_SHARD_SAMPLES, node). */
#define MAX_SHARD_SAMPLES 65536

/* ---- talking to the node ------------------------------------------------ */

typedef struct {
  px_arena_t arena;
  px_json_t *root;
  char *text;
} mreply_t;

static void mreply_free(mreply_t *r) {
  px_arena_release(&r->arena);
  px_free(r->text);
  memset(r, 0, sizeof *r);
}

/* One control call.  0 with r->root set when the node answered ok:true;
 * otherwise the one-line error is printed (unless quiet) and 1 returned. */
static int mcall(const char *home, const char *cmd, mreply_t *r, int quiet) {
  memset(r, 0, sizeof *r);
  px_arena_init(&r->arena, 1 << 16, 0);
  int rc = px_node_control(home, cmd, &r->text, CALL_MS);
  if (rc == PX_ENOENT || rc == PX_ENET) {
    if (!quiet)
      fprintf(stderr,
              "plexus: no node is running in %s (start one with `plexus node "
              "--home %s`)\n",
              home, home);
    return 1;
  }
  if (rc) {
    if (!quiet)
      fprintf(stderr, "plexus: cannot reach the node in %s: %s\n", home,
              px_strerror(rc));
    return 1;
  }
  if (px_json_parse(&r->arena, r->text, strlen(r->text), NULL, &r->root,
                    NULL)) {
    if (!quiet) fprintf(stderr, "plexus: the node sent a malformed reply\n");
    return 1;
  }
  int ok = 0;
  px_json_get_bool(r->root, "ok", &ok);
  if (!ok) {
    const char *msg = "", *name = "";
    px_json_get_str(r->root, "message", &msg);
    px_json_get_str(r->root, "error", &name);
    if (!quiet) {
      if (strstr(msg, "unknown command") && !strstr(msg, "provide"))
        fprintf(stderr,
                "plexus: the node in %s runs no market (it needs a chain: "
                "start it with a genesis.json, e.g. `plexus devnet up "
                "--validators 4 --providers 4`)\n",
                home);
      else
        fprintf(stderr, "plexus: %s%s%s%s\n", msg, *name ? " (" : "", name,
                *name ? ")" : "");
    }
    return 1;
  }
  return 0;
}

static int want_json(const px_cli_args_t *a) {
  int j = 0;
  px_config_get_bool(&a->opts, "json", 0, &j);
  return j;
}

static int want_flag(const px_cli_args_t *a, const char *k) {
  int j = 0;
  px_config_get_bool(&a->opts, k, 0, &j);
  return j;
}

static uint64_t ju64(const px_json_t *o, const char *k) {
  uint64_t v = 0;
  if (px_json_get_u64(o, k, &v)) {
    double d = 0;
    if (!px_json_get_double(o, k, &d) && d >= 0 && d < 1.8e19) v = (uint64_t)d;
  }
  return v;
}

static const char *jstr(const px_json_t *o, const char *k) {
  const char *s = "";
  px_json_get_str(o, k, &s);
  return s;
}

/* A required positive integer option (0 ok, 1 when absent and optional,
 * -1 usage error printed). */
static int opt_num(const px_cli_args_t *a, const char *key, int required,
                   uint64_t lo, uint64_t hi, uint64_t *out) {
  const char *v = px_config_get(&a->opts, key);
  if (!v) {
    if (required) {
      fprintf(stderr, "plexus: --%s N is required\n", key);
      return -1;
    }
    return 1;
  }
  if (px_parse_u64(v, out) || *out < lo || *out > hi) {
    fprintf(stderr,
            "plexus: --%s must be a whole number from %llu to %llu, "
            "got '%s'\n",
            key, (unsigned long long)lo, (unsigned long long)hi, v);
    return -1;
  }
  return 0;
}

static const char *opt_path(const px_cli_args_t *a, const char *key) {
  const char *v = px_config_get(&a->opts, key);
  if (!v) {
    fprintf(stderr, "plexus: --%s FILE is required\n", key);
    return NULL;
  }
  if (!*v || !strcmp(v, "true")) {
    fprintf(stderr, "plexus: --%s needs a file name\n", key);
    return NULL;
  }
  return v;
}

/* Human form of a large count: 1234567 -> "1.23M". */
static const char *human(uint64_t v, char *buf, size_t cap) {
  static const char *const unit[] = {"", "k", "M", "G", "T", "P", "E"};
  double d = (double)v;
  int u = 0;
  while (d >= 1000.0 && u < 6) {
    d /= 1000.0;
    u++;
  }
  if (u == 0)
    snprintf(buf, cap, "%llu", (unsigned long long)v);
  else
    snprintf(buf, cap, "%.2f%s", d, unit[u]);
  return buf;
}

/* ---- provide / providers ------------------------------------------------ */

static int cmd_provide(px_cli_args_t *a, const char *home) {
  static const char *const ok[] = {"home",           "stake",   "price",
                                   "slots",          "json",    "no-wait",
                                   "max-shard-work", "timeout", NULL};
  if (px_cli_check_opts(a, ok, 0)) return 2;
  uint64_t stake = 0, price = 0, slots = 0, msw = 0, timeout_s = 60;
  if (opt_num(a, "stake", 1, 1, UINT64_MAX, &stake) < 0 ||
      opt_num(a, "price", 1, 1, UINT64_MAX, &price) < 0)
    return 2;
  int has_slots = opt_num(a, "slots", 0, 1, 64, &slots);
  int has_msw = opt_num(a, "max-shard-work", 0, 1, UINT64_MAX, &msw);
  if (has_slots < 0 || has_msw < 0 ||
      opt_num(a, "timeout", 0, 1, 86400, &timeout_s) < 0)
    return 2;
  if (has_msw == 0) {
    /* The incentive bound the chain enforces at registration, checked here
     * so that the error names the fix: stake x p_min >= price x work. */
    unsigned __int128 need = (unsigned __int128)price * msw * PX_MARKET_BPS,
                      have = (unsigned __int128)stake * PX_MARKET_MIN_AUDIT_BPS;
    if (have < need) {
      fprintf(stderr,
              "plexus: --stake %llu is below the bound for --price %llu and "
              "--max-shard-work %llu: stake >= price x work / p_min = %.0f "
              "(p_min = %u%%); raise --stake or lower --max-shard-work\n",
              (unsigned long long)stake, (unsigned long long)price,
              (unsigned long long)msw, (double)need / PX_MARKET_MIN_AUDIT_BPS,
              PX_MARKET_MIN_AUDIT_BPS / 100);
      return 2;
    }
  }
  px_buf_t cmd;
  px_buf_init(&cmd, 0);
  px_buf_printf(&cmd, "provide {\"stake\":%llu,\"price\":%llu",
                (unsigned long long)stake, (unsigned long long)price);
  if (has_slots == 0)
    px_buf_printf(&cmd, ",\"slots\":%llu", (unsigned long long)slots);
  if (has_msw == 0)
    px_buf_printf(&cmd, ",\"max_shard_work\":%llu", (unsigned long long)msw);
  px_buf_printf(&cmd, "}");
  mreply_t r;
  int rc = mcall(home, (const char *)cmd.data, &r, 0);
  px_buf_release(&cmd);
  if (rc) {
    mreply_free(&r);
    return 1;
  }
  uint64_t speed = ju64(r.root, "speed");
  char tx[80];
  snprintf(tx, sizeof tx, "%s", jstr(r.root, "tx"));
  int json = want_json(a);
  if (want_flag(a, "no-wait")) {
    if (json)
      printf("%s\n", r.text);
    else
      printf("registration submitted (tx %.16s): price %llu, stake %llu, "
             "speed %llu work units/s\n",
             tx, (unsigned long long)price, (unsigned long long)stake,
             (unsigned long long)speed);
    mreply_free(&r);
    return 0;
  }
  mreply_free(&r);
  /* Wait until the registry on chain lists this node as active. */
  char id[80] = "";
  if (mcall(home, "status", &r, 0)) {
    mreply_free(&r);
    return 1;
  }
  snprintf(id, sizeof id, "%s", jstr(r.root, "node_id"));
  mreply_free(&r);
  uint64_t t0 = px_time_mono_ms();
  for (;;) {
    if (mcall(home, "providers", &r, 0)) {
      mreply_free(&r);
      return 1;
    }
    const px_json_t *ps = px_json_get(r.root, "providers");
    for (size_t i = 0; i < px_json_count(ps); i++) {
      const px_json_t *p = px_json_at(ps, i);
      int active = 0;
      px_json_get_bool(p, "active", &active);
      if (!strcmp(jstr(p, "id"), id) && active) {
        char sb[32];
        if (json) {
          printf("{\"ok\":true,\"id\":\"%s\",\"tx\":\"%s\",\"price\":%llu,"
                 "\"stake\":%llu,\"speed\":%llu,\"slots\":%llu}\n",
                 id, tx, (unsigned long long)ju64(p, "price"),
                 (unsigned long long)ju64(p, "stake"),
                 (unsigned long long)ju64(p, "speed"),
                 (unsigned long long)ju64(p, "slots"));
        } else {
          printf("provider %.16s registered: price %llu per work unit, stake "
                 "%llu, %llu slot(s), speed %s work units/s (standard "
                 "benchmark)\n",
                 id, (unsigned long long)ju64(p, "price"),
                 (unsigned long long)ju64(p, "stake"),
                 (unsigned long long)ju64(p, "slots"),
                 human(ju64(p, "speed"), sb, sizeof sb));
        }
        mreply_free(&r);
        return 0;
      }
    }
    mreply_free(&r);
    if (px_time_mono_ms() - t0 > timeout_s * 1000) {
      fprintf(stderr,
              "plexus: the registration (tx %.16s) is not on chain after %llu "
              "s; check `plexus tx status %s --home %s` and the node log\n",
              tx, (unsigned long long)timeout_s, tx, home);
      return 1;
    }
    usleep(POLL_MS * 1000);
  }
}

static int cmd_providers(px_cli_args_t *a, const char *home) {
  static const char *const ok[] = {"home", "json", NULL};
  if (px_cli_check_opts(a, ok, 0)) return 2;
  if (a->npos) {
    fprintf(stderr, "plexus: usage: plexus providers --home DIR [--json]\n");
    return 2;
  }
  mreply_t r;
  if (mcall(home, "providers", &r, 0)) {
    mreply_free(&r);
    return 1;
  }
  if (want_json(a)) {
    printf("%s\n", r.text);
    mreply_free(&r);
    return 0;
  }
  const px_json_t *ps = px_json_get(r.root, "providers");
  size_t n = px_json_count(ps);
  if (!n) {
    printf("no providers registered (register one with `plexus provide "
           "--home DIR --stake N --price P`)\n");
    mreply_free(&r);
    return 0;
  }
  printf("%-16s %-6s %8s %10s %12s %6s %5s %8s %9s %7s %9s %10s\n", "PROVIDER",
         "STATE", "PRICE", "SPEED/s", "STAKE", "REP%", "SLOTS", "SHARDS",
         "AUDITS", "FAILED", "DISPUTES", "EARNED");
  for (size_t i = 0; i < n; i++) {
    const px_json_t *p = px_json_at(ps, i);
    int active = 0;
    px_json_get_bool(p, "active", &active);
    char sp[32], st[32], ea[32], au[32], dp[32];
    snprintf(au, sizeof au, "%llu",
             (unsigned long long)ju64(p, "audits_passed"));
    snprintf(dp, sizeof dp, "%llu/%llu",
             (unsigned long long)ju64(p, "disputes_won"),
             (unsigned long long)ju64(p, "disputes_lost"));
    printf("%-16.16s %-6s %8llu %10s %12s %6.2f %5llu %8llu %9s %7llu %9s "
           "%10s\n",
           jstr(p, "id"), active ? "active" : "exited",
           (unsigned long long)ju64(p, "price"),
           human(ju64(p, "speed"), sp, sizeof sp),
           human(ju64(p, "stake"), st, sizeof st),
           (double)ju64(p, "reputation") / 100.0,
           (unsigned long long)ju64(p, "slots"),
           (unsigned long long)ju64(p, "shards_completed"), au,
           (unsigned long long)ju64(p, "audits_failed"), dp,
           human(ju64(p, "earned"), ea, sizeof ea));
  }
  printf("%zu provider(s); REP%% is the on-chain reputation, DISPUTES "
         "won/lost\n",
         n);
  mreply_free(&r);
  return 0;
}

/* ---- jobs ---------------------------------------------------------------- */

/* Parse and check --policy: audit:P (a fraction, at least the contract's
 * minimum) or replicate:K (1..4).  Writes the canonical form. */
static int parse_policy(const char *s, char *out, size_t cap) {
  if (!strncmp(s, "audit:", 6)) {
    const char *v = s + 6;
    char *end;
    errno = 0;
    double p = strtod(v, &end);
    if (!*v || *end || errno || !isfinite(p) || p <= 0 || p > 1) {
      fprintf(stderr,
              "plexus: --policy audit:P needs a probability in (0, 1], e.g. "
              "audit:0.05; got '%s'\n",
              s);
      return -1;
    }
    long bps = lround(p * PX_MARKET_BPS);
    if (bps < (long)PX_MARKET_MIN_AUDIT_BPS) {
      fprintf(stderr,
              "plexus: --policy %s audits too rarely: the chain requires p >= "
              "%.2f (stake >= reward / p must deter cheating); use e.g. "
              "audit:0.05\n",
              s, PX_MARKET_MIN_AUDIT_BPS / (double)PX_MARKET_BPS);
      return -1;
    }
    snprintf(out, cap, "%s", s);
    return 0;
  }
  if (!strncmp(s, "replicate:", 10)) {
    uint64_t k;
    if (px_parse_u64(s + 10, &k) || k < 1 || k > PX_MARKET_MAX_REPLICAS) {
      fprintf(stderr,
              "plexus: --policy replicate:K needs K from 1 to %d, got '%s'\n",
              PX_MARKET_MAX_REPLICAS, s);
      return -1;
    }
    snprintf(out, cap, "replicate:%llu", (unsigned long long)k);
    return 0;
  }
  fprintf(stderr,
          "plexus: --policy must be audit:P (e.g. audit:0.05) or replicate:K "
          "(e.g. replicate:2), got '%s'\n",
          s);
  return -1;
}

/* A job id: 64 hex characters, or a unique prefix of one of this node's
 * jobs (resolved through job_list). */
static int resolve_job(const char *home, const char *arg, char id[65]) {
  size_t n = strlen(arg);
  int hex = n > 0 && n <= 64;
  for (size_t i = 0; hex && i < n; i++)
    hex = (arg[i] >= '0' && arg[i] <= '9') || (arg[i] >= 'a' && arg[i] <= 'f');
  if (!hex) {
    fprintf(stderr,
            "plexus: '%s' is not a job id (64 hex characters, or a unique "
            "prefix; see `plexus job list --home %s`)\n",
            arg, home);
    return -2;
  }
  if (n == 64) {
    memcpy(id, arg, 65);
    return 0;
  }
  mreply_t r;
  if (mcall(home, "job_list", &r, 0)) {
    mreply_free(&r);
    return -1;
  }
  const px_json_t *js = px_json_get(r.root, "jobs");
  int found = 0;
  for (size_t i = 0; i < px_json_count(js); i++) {
    const char *j = jstr(px_json_at(js, i), "job");
    if (strlen(j) == 64 && !strncmp(j, arg, n)) {
      if (found++ == 0) memcpy(id, j, 65);
    }
  }
  mreply_free(&r);
  if (found == 1) return 0;
  fprintf(stderr,
          found ? "plexus: job prefix '%s' is ambiguous; give more characters "
                  "(see `plexus job list --home %s`)\n"
                : "plexus: no job '%s' on the node in %s (see `plexus job list "
                  "--home %s`)\n",
          arg, home, home);
  return -1;
}

static int terminal_state(const char *s) {
  return !strcmp(s, "settled") || !strcmp(s, "failed") || !strcmp(s, "expired");
}

static void print_bar(int tty, const px_json_t *st, uint64_t t0_ms, int final) {
  uint64_t shards = ju64(st, "shards"), acc = ju64(st, "accepted");
  uint64_t run = ju64(st, "running"), aud = ju64(st, "audits");
  uint64_t dis = ju64(st, "disputes"), sl = ju64(st, "slashed");
  const char *state = jstr(st, "state");
  double secs = (double)(px_time_mono_ms() - t0_ms) / 1000.0;
  int w = 30, fill = shards ? (int)((double)acc / (double)shards * w) : 0;
  char bar[40];
  for (int i = 0; i < w; i++)
    bar[i] = i < fill ? '#' : '.';
  bar[w] = 0;
  fprintf(stderr,
          "%s[%s] %llu/%llu shards  %llu running  %llu audits  %llu "
          "disputes  %llu slashed  %-8s %.1f s%s",
          tty ? "\r\033[K" : "", bar, (unsigned long long)acc,
          (unsigned long long)shards, (unsigned long long)run,
          (unsigned long long)aud, (unsigned long long)dis,
          (unsigned long long)sl, state, secs, tty && !final ? "" : "\n");
  fflush(stderr);
}

static void print_job(const px_json_t *st) {
  char b1[32], b2[32], b3[32];
  printf("job      %s\nstate    %s\nshards   %llu (accepted %llu, running "
         "%llu)\naudits   %llu   disputes %llu   slashed %llu\n",
         jstr(st, "job"), jstr(st, "state"),
         (unsigned long long)ju64(st, "shards"),
         (unsigned long long)ju64(st, "accepted"),
         (unsigned long long)ju64(st, "running"),
         (unsigned long long)ju64(st, "audits"),
         (unsigned long long)ju64(st, "disputes"),
         (unsigned long long)ju64(st, "slashed"));
  if (px_json_get(st, "expiries"))
    printf("leases   %llu expired and re-offered\n",
           (unsigned long long)ju64(st, "expiries"));
  printf("escrow   %s   paid %s   refund %s\n",
         human(ju64(st, "escrow"), b1, sizeof b1),
         human(ju64(st, "paid"), b2, sizeof b2),
         human(ju64(st, "refund"), b3, sizeof b3));
  const px_json_t *pp = px_json_get(st, "per_provider");
  if (px_json_count(pp)) {
    printf("  %-16s %8s %8s %14s\n", "provider", "shards", "audits", "paid");
    for (size_t i = 0; i < px_json_count(pp); i++) {
      const px_json_t *p = px_json_at(pp, i);
      printf("  %-16.16s %8llu %8llu %14llu\n", jstr(p, "id"),
             (unsigned long long)ju64(p, "shards"),
             (unsigned long long)ju64(p, "audits"),
             (unsigned long long)ju64(p, "paid"));
    }
  }
  const px_json_t *ev = px_json_get(st, "events");
  if (px_json_count(ev)) {
    printf("events:\n");
    for (size_t i = 0; i < px_json_count(ev); i++) {
      const px_json_t *e = px_json_at(ev, i);
      if (e->type == PX_JSON_STRING) {
        printf("  %s\n", e->str);
      } else {
        px_buf_t b;
        px_buf_init(&b, 0);
        px_json_writer_t w;
        px_json_writer_init(&w, &b);
        px_json_write_value(&w, e);
        if (!px_json_writer_finish(&w))
          printf("  %.*s\n", (int)b.len, (const char *)b.data);
        px_buf_release(&b);
      }
    }
  }
}

/* Poll job_status until the job is settled or failed; the bar on stderr.
 * Leaves the final reply in *r.  0 settled, 1 failed / gone / timeout. */
static int watch_job(const char *home, const char *id, uint64_t timeout_s,
                     mreply_t *r) {
  int tty = isatty(2);
  uint64_t t0 = px_time_mono_ms(), last = 0, settled_ms = 0;
  char cmd[100], prev[256] = "";
  snprintf(cmd, sizeof cmd, "job_status %s", id);
  for (;;) {
    if (mcall(home, cmd, r, 0)) return 1;
    const char *state = jstr(r->root, "state");
    int done = terminal_state(state);
    uint64_t now = px_time_mono_ms();
    /* The job's counters can trail its state by a moment: a settled job
     * reports all its shards accepted within a poll or two. */
    if (done && !strcmp(state, "settled") &&
        ju64(r->root, "accepted") < ju64(r->root, "shards")) {
      if (!settled_ms) settled_ms = now;
      if (now - settled_ms < 3000) done = 0;
    }
    char sig[256];
    snprintf(sig, sizeof sig, "%s/%llu/%llu/%llu/%llu", state,
             (unsigned long long)ju64(r->root, "accepted"),
             (unsigned long long)ju64(r->root, "running"),
             (unsigned long long)ju64(r->root, "audits"),
             (unsigned long long)ju64(r->root, "disputes"));
    if (done || (tty && now - last >= 100) ||
        (!tty && now - last >= 5000 && strcmp(sig, prev))) {
      print_bar(tty, r->root, t0, done);
      last = now;
      memcpy(prev, sig, sizeof sig);
    }
    if (done) return strcmp(state, "settled") ? 1 : 0;
    if (timeout_s && now - t0 > timeout_s * 1000) {
      if (tty) fputc('\n', stderr);
      fprintf(stderr,
              "plexus: job %.16s not settled after %llu s; it keeps running "
              "(follow it with `plexus job status %s --home %s --wait`)\n",
              id, (unsigned long long)timeout_s, id, home);
      return 1;
    }
    mreply_free(r);
    usleep(POLL_MS * 1000);
  }
}

/* The input as raw f32: a raw file is passed on as it is (absolute path);
 * an IDX file is converted into HOME/inputs/<hash>.f32.  *n_out samples. */
static int prepare_input(const char *home, const char *input, size_t in,
                         char *path, size_t cap, size_t *n_out) {
  float *x = NULL;
  size_t n = 0;
  if (px_cli_read_input(input, in, &x, &n)) return -1;
  *n_out = n;
  if (n > PX_MARKET_MAX_SAMPLES) {
    fprintf(stderr,
            "plexus: --input %s holds %zu samples; a job takes at "
            "most %u\n",
            input, n, PX_MARKET_MAX_SAMPLES);
    px_free(x);
    return -1;
  }
  uint8_t *raw = NULL;
  size_t len = 0;
  int is_raw = 0;
  if (!px_file_read_all(input, (size_t)1 << 34, &raw, &len))
    is_raw = len == n * in * sizeof(float) && !memcmp(raw, x, len);
  px_free(raw);
  if (is_raw) {
    px_free(x);
    if (!realpath(input, path)) {
      fprintf(stderr, "plexus: cannot resolve --input %s: %s\n", input,
              strerror(errno));
      return -1;
    }
    (void)cap;
    return 0;
  }
  uint8_t h[PX_HASH_LEN];
  px_hash(h, x, n * in * sizeof(float));
  char hex[65], dir[PATH_MAX + 16];
  px_hex_encode(h, 16, hex);
  char abshome[PATH_MAX];
  if (!realpath(home, abshome)) {
    fprintf(stderr, "plexus: cannot resolve --home %s: %s\n", home,
            strerror(errno));
    px_free(x);
    return -1;
  }
  int rc = snprintf(dir, sizeof dir, "%s/inputs", abshome) >= (int)sizeof dir
               ? PX_ETOOBIG
               : px_mkdir_p(dir, 0700);
  size_t dl = strlen(dir);
  if (!rc && dl + 1 + strlen(hex) + 5 > cap) rc = PX_ETOOBIG;
  if (!rc) {
    memcpy(path, dir, dl);
    path[dl] = '/';
    memcpy(path + dl + 1, hex, 32);
    memcpy(path + dl + 33, ".f32", 5);
  }
  if (!rc && access(path, F_OK) != 0)
    rc = px_file_write_atomic(path, x, n * in * sizeof(float), 0600);
  px_free(x);
  if (rc) {
    fprintf(stderr, "plexus: cannot write the converted input %s: %s\n", path,
            px_strerror(rc));
    return -1;
  }
  return 0;
}

static int job_submit(px_cli_args_t *a, const char *home) {
  static const char *const ok[] = {
      "home",       "model", "input", "policy",  "max-price", "deadline",
      "shard-size", "wait",  "json",  "timeout", NULL};
  if (px_cli_check_opts(a, ok, 0)) return 2;
  if (a->npos != 1 || strcmp(a->pos[0], "infer")) {
    fprintf(stderr,
            a->npos >= 1 ? "plexus: job kind '%s' is not supported: only "
                           "`infer` (batch inference) is\n"
                         : "plexus: usage: plexus job submit infer --home DIR "
                           "--model M --input I --policy audit:0.05 "
                           "--max-price P%s\n",
            a->npos >= 1 ? a->pos[0] : "");
    return 2;
  }
  const char *model = opt_path(a, "model");
  const char *input = opt_path(a, "input");
  if (!model || !input) return 2;
  const char *pol = px_config_get(&a->opts, "policy");
  char policy[64];
  if (!pol) {
    fprintf(stderr, "plexus: --policy is required: audit:P (e.g. audit:0.05) "
                    "or replicate:K (e.g. replicate:2)\n");
    return 2;
  }
  if (parse_policy(pol, policy, sizeof policy)) return 2;
  uint64_t max_price = 0, deadline = 1000, shard = 250, timeout_s = 0;
  if (opt_num(a, "max-price", 1, 1, UINT64_MAX, &max_price) < 0 ||
      opt_num(a, "deadline", 0, 1, 100000000, &deadline) < 0 ||
      opt_num(a, "shard-size", 0, 1, MAX_SHARD_SAMPLES, &shard) < 0 ||
      opt_num(a, "timeout", 0, 1, 86400 * 30, &timeout_s) < 0)
    return 2;
  /* The model: load it here so a bad file is named before anything is
   * submitted, and to know the sample size of the input. */
  px_net_t *net;
  int rc = px_net_load(model, &net);
  if (rc) {
    fprintf(stderr,
            "plexus: cannot load --model %s: %s (expected a safetensors file "
            "written by `plexus train`)\n",
            model, px_strerror(rc));
    return 1;
  }
  size_t in = px_net_input_size(net);
  px_net_free(net);
  char mpath[PATH_MAX], ipath[PATH_MAX];
  if (!realpath(model, mpath)) {
    fprintf(stderr, "plexus: cannot resolve --model %s: %s\n", model,
            strerror(errno));
    return 1;
  }
  size_t n = 0;
  if (prepare_input(home, input, in, ipath, sizeof ipath, &n)) return 1;
  px_buf_t cmd;
  px_buf_init(&cmd, 0);
  px_buf_printf(&cmd, "job_submit ");
  px_json_writer_t w;
  px_json_writer_init(&w, &cmd);
  px_json_write_object_begin(&w);
  px_json_write_key(&w, "kind");
  px_json_write_str(&w, "infer");
  px_json_write_key(&w, "model");
  px_json_write_str(&w, mpath);
  px_json_write_key(&w, "input");
  px_json_write_str(&w, ipath);
  px_json_write_key(&w, "policy");
  px_json_write_str(&w, policy);
  px_json_write_key(&w, "max_price");
  px_json_write_u64(&w, max_price);
  px_json_write_key(&w, "deadline");
  px_json_write_u64(&w, deadline);
  px_json_write_key(&w, "shard_size");
  px_json_write_u64(&w, shard);
  px_json_write_object_end(&w);
  if (px_json_writer_finish(&w) || px_buf_append(&cmd, "", 1)) {
    px_buf_release(&cmd);
    fprintf(stderr, "plexus: out of memory\n");
    return 1;
  }
  mreply_t r;
  rc = mcall(home, (const char *)cmd.data, &r, 0);
  px_buf_release(&cmd);
  if (rc) {
    mreply_free(&r);
    return 1;
  }
  char id[65];
  snprintf(id, sizeof id, "%s", jstr(r.root, "job"));
  int json = want_json(a);
  if (!want_flag(a, "wait")) {
    char eb[32];
    if (json)
      printf("%s\n", r.text);
    else
      printf("job %s submitted: %zu samples in %llu shards, %s, escrow %s "
             "(follow it with `plexus job status %.16s --home %s --wait`)\n",
             id, n, (unsigned long long)ju64(r.root, "shards"), policy,
             human(ju64(r.root, "escrow"), eb, sizeof eb), id, home);
    mreply_free(&r);
    return 0;
  }
  if (!json)
    printf("job %s submitted: %zu samples in %llu shards, %s\n", id, n,
           (unsigned long long)ju64(r.root, "shards"), policy);
  fflush(stdout);
  mreply_free(&r);
  rc = watch_job(home, id, timeout_s, &r);
  if (r.root) {
    if (json)
      printf("%s\n", r.text);
    else
      print_job(r.root);
  }
  mreply_free(&r);
  return rc ? 1 : 0;
}

static int job_status(px_cli_args_t *a, const char *home) {
  static const char *const ok[] = {"home", "json", "wait", "timeout", NULL};
  if (px_cli_check_opts(a, ok, 0)) return 2;
  if (a->npos != 1) {
    fprintf(stderr, "plexus: usage: plexus job status ID --home DIR [--wait] "
                    "[--json]\n");
    return 2;
  }
  uint64_t timeout_s = 0;
  if (opt_num(a, "timeout", 0, 1, 86400 * 30, &timeout_s) < 0) return 2;
  char id[65];
  int rr = resolve_job(home, a->pos[0], id);
  if (rr) return rr == -2 ? 2 : 1;
  mreply_t r;
  int rc;
  if (want_flag(a, "wait")) {
    rc = watch_job(home, id, timeout_s, &r);
  } else {
    char cmd[100];
    snprintf(cmd, sizeof cmd, "job_status %s", id);
    rc = mcall(home, cmd, &r, 0);
    if (rc) {
      mreply_free(&r);
      return 1;
    }
  }
  if (r.root) {
    if (want_json(a))
      printf("%s\n", r.text);
    else
      print_job(r.root);
  }
  mreply_free(&r);
  return rc ? 1 : 0;
}

static int job_result(px_cli_args_t *a, const char *home) {
  static const char *const ok[] = {"home", "out", "json", NULL};
  if (px_cli_check_opts(a, ok, 0)) return 2;
  const char *out = opt_path(a, "out");
  if (!out) return 2;
  if (a->npos != 1) {
    fprintf(stderr,
            "plexus: usage: plexus job result ID --home DIR --out FILE\n");
    return 2;
  }
  char id[65];
  int rr = resolve_job(home, a->pos[0], id);
  if (rr) return rr == -2 ? 2 : 1;
  char cmd[100];
  snprintf(cmd, sizeof cmd, "job_status %s", id);
  mreply_t r;
  if (mcall(home, cmd, &r, 0)) {
    mreply_free(&r);
    return 1;
  }
  uint64_t shards = ju64(r.root, "shards"), acc = ju64(r.root, "accepted");
  mreply_free(&r);
  if (acc < shards) {
    fprintf(stderr,
            "plexus: job %.16s is not complete (%llu/%llu shards accepted); "
            "wait with `plexus job status %s --home %s --wait`\n",
            id, (unsigned long long)acc, (unsigned long long)shards, id, home);
    return 1;
  }
  snprintf(cmd, sizeof cmd, "job_result %s", id);
  if (mcall(home, cmd, &r, 0)) {
    mreply_free(&r);
    return 1;
  }
  const char *path = jstr(r.root, "path");
  uint64_t samples = ju64(r.root, "samples"), classes = ju64(r.root, "classes");
  uint8_t *data = NULL;
  size_t len = 0;
  int rc = px_file_read_all(path, (size_t)1 << 36, &data, &len);
  if (rc) {
    fprintf(stderr, "plexus: cannot read the result %s: %s\n", path,
            px_strerror(rc));
    mreply_free(&r);
    return 1;
  }
  if (!samples || !classes || len != samples * classes * sizeof(float)) {
    fprintf(stderr,
            "plexus: the result %s holds %zu bytes, expected %llu samples x "
            "%llu classes x 4; the job's result is incomplete\n",
            path, len, (unsigned long long)samples,
            (unsigned long long)classes);
    px_free(data);
    mreply_free(&r);
    return 1;
  }
  rc = px_file_write_atomic(out, data, len, 0644);
  uint8_t h[PX_HASH_LEN];
  px_hash(h, data, len);
  px_free(data);
  if (rc) {
    fprintf(stderr, "plexus: cannot write --out %s: %s\n", out,
            px_strerror(rc));
    mreply_free(&r);
    return 1;
  }
  char hex[65];
  px_hex_encode(h, PX_HASH_LEN, hex);
  if (want_json(a))
    printf("{\"ok\":true,\"job\":\"%s\",\"out\":\"%s\",\"samples\":%llu,"
           "\"classes\":%llu,\"bytes\":%zu,\"output_hash\":\"%s\"}\n",
           id, out, (unsigned long long)samples, (unsigned long long)classes,
           len, hex);
  else
    printf("wrote %s: %llu samples x %llu logits (raw f32 LE, %zu bytes)\n"
           "output_hash %s\n",
           out, (unsigned long long)samples, (unsigned long long)classes, len,
           hex);
  mreply_free(&r);
  return 0;
}

static int job_list(px_cli_args_t *a, const char *home) {
  static const char *const ok[] = {"home", "json", NULL};
  if (px_cli_check_opts(a, ok, 0)) return 2;
  mreply_t r;
  if (mcall(home, "job_list", &r, 0)) {
    mreply_free(&r);
    return 1;
  }
  if (want_json(a)) {
    printf("%s\n", r.text);
    mreply_free(&r);
    return 0;
  }
  const px_json_t *js = px_json_get(r.root, "jobs");
  size_t n = px_json_count(js);
  if (!n)
    printf("no jobs (submit one with `plexus job submit infer --home %s "
           "...`)\n",
           home);
  else
    printf("%-64s  %-9s %8s %8s\n", "JOB", "STATE", "SHARDS", "ACCEPTED");
  for (size_t i = 0; i < n; i++) {
    const px_json_t *j = px_json_at(js, i);
    printf("%-64s  %-9s %8llu %8llu\n", jstr(j, "job"), jstr(j, "state"),
           (unsigned long long)ju64(j, "shards"),
           (unsigned long long)ju64(j, "accepted"));
  }
  mreply_free(&r);
  return 0;
}

/* ---- dispatch ------------------------------------------------------------ */

int px_cli_is_market_cmd(const char *cmd) {
  return !strcmp(cmd, "provide") || !strcmp(cmd, "providers") ||
         !strcmp(cmd, "job");
}

int px_cli_market_has_sub(const char *cmd) { return !strcmp(cmd, "job"); }

int px_cli_market(const char *cmd, const char *sub, px_cli_args_t *a) {
  if (!strcmp(cmd, "job") && strcmp(sub, "submit") && strcmp(sub, "status") &&
      strcmp(sub, "result") && strcmp(sub, "list")) {
    fprintf(stderr, "plexus: usage: plexus job submit|status|result|list "
                    "--home DIR ... (see `plexus help`)\n");
    return 2;
  }
  const char *home = px_cli_home(a);
  if (!home) return 2;
  if (!strcmp(cmd, "provide")) return cmd_provide(a, home);
  if (!strcmp(cmd, "providers")) return cmd_providers(a, home);
  if (!strcmp(sub, "submit")) return job_submit(a, home);
  if (!strcmp(sub, "status")) return job_status(a, home);
  if (!strcmp(sub, "result")) return job_result(a, home);
  return job_list(a, home);
}
