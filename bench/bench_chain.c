/*
 * bench_chain.c — finalized transfers per second on a 4-validator chain
 * (docs/bench.md, docs/chain.md).
 *
 *   build/bench/bench_chain [--quick] [--txs N]
 *
 * What runs: `plexus devnet up --validators 4` (real node processes of the
 * plexus binary, PX_BIN, on 127.0.0.1) and this process as the client.
 *  1. This machine's Ed25519 verification rate (px_verify in a loop, one
 *     core, the best of 10 short windows so that other load on the machine
 *     does not lower it), measured in the same run: the reference.  Every
 *     validator must check every tx signature once, so the ceiling on
 *     throughput is cores × verify rate ÷ validators.
 *  2. Light load: one transfer at a time; latency from submission (control
 *     socket `tx`) to commit (polled with `txstatus` every 1 ms): p50, p99.
 *  3. Throughput: N transfers from the 4 funded wallets, signed and
 *     hex-encoded before the clock starts, in `txs` batches of 500; wallet k
 *     goes through node k.  One submitter thread per node sends its batches
 *     back to back (waiting only for its own node's reply), so no node
 *     idles for want of input; this thread reads each block's tx list as it
 *     commits.  Rate = committed txs ÷ (last commit − first submission);
 *     latency percentiles under load (all txs are queued at once, so they
 *     mostly measure the queue) are printed for context.  The CPU the nodes,
 *     the client and other processes used during the load is printed too
 *     (/proc), with the rate ÷ (node CPU × verify rate ÷ validators): the
 *     efficiency on the CPU the nodes actually got.
 * Goals: throughput ≥ 0.7 × ceiling; light-load p50 < 100 ms.  Exit status
 * 0 when measured (a goal NOT MET is a result), 1 when it could not run.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "plexus/base.h"
#include "plexus/crypto.h"
#include "plexus/json.h"
#include "plexus/ledger.h"
#include "plexus/node.h"
#include "base/px_internal.h"

#define VALIDATORS 4
#define BATCH 500

typedef struct {
  uint8_t hash[PX_HASH_LEN];
  uint32_t idx;
} hidx_t;

static char g_home[256];
static char g_dir[VALIDATORS][300];

static int run_plexus(const char *const *args) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    const char *argv[16];
    size_t n = 0;
    argv[n++] = PX_BIN;
    for (; args[n - 1] && n < 15; n++)
      argv[n] = args[n - 1];
    argv[n] = NULL;
    int nul = open("/dev/null", O_WRONLY);
    if (nul >= 0) dup2(nul, 1);
    execv(PX_BIN, (char *const *)argv);
    _exit(127);
  }
  int st;
  while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void devnet_down(void) {
  const char *a[] = {"devnet", "down", "--home", g_home, NULL};
  run_plexus(a);
  char cmd[400];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_home);
  if (system(cmd)) {
  }
}

static char *ctl(int node, const char *cmd) {
  char *r = NULL;
  if (px_node_control(g_dir[node], cmd, &r, 30000)) return NULL;
  return r;
}

static long long json_int(const char *s, const char *key) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\":", key);
  const char *p = s ? strstr(s, pat) : NULL;
  return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static int cmp_hidx(const void *a, const void *b) {
  return memcmp(((const hidx_t *)a)->hash, ((const hidx_t *)b)->hash,
                PX_HASH_LEN);
}

static double pct(uint64_t *v, size_t n, double p) {
  if (!n) return 0;
  qsort(v, n, sizeof *v, cmp_u64);
  size_t i = (size_t)(p * (double)(n - 1) + 0.5);
  return (double)v[i] / 1000.0;
}

/* Ed25519 verifications per second on one core: the best of several short
 * windows, so that other processes on the machine do not lower the
 * reference (which would flatter the ratio). */
static double verify_rate(double seconds) {
  px_keypair_t kp;
  px_key_generate(&kp);
  uint8_t msg[180], sig[PX_SIG_LEN];
  memset(msg, 7, sizeof msg);
  px_sign(&kp, msg, sizeof msg, sig);
  double best = 0;
  for (int w = 0; w < 10; w++) {
    uint64_t t0 = px_time_mono_ns(), n = 0;
    while (px_time_mono_ns() - t0 < (uint64_t)(seconds * 1e8)) {
      for (int i = 0; i < 64; i++)
        if (px_verify(kp.pk, msg, sizeof msg, sig)) return 0;
      n += 64;
    }
    double r = (double)n / ((double)(px_time_mono_ns() - t0) / 1e9);
    if (r > best) best = r;
  }
  return best;
}

/* A submitter: batches b with b % VALIDATORS == node, in order, to node. */
typedef struct {
  int node;
  size_t ntx, nbatch;
  char **cmd;
  _Atomic uint64_t *sub_ns; /* per batch: when it was sent */
} submitter_t;

static void *submit_main(void *arg) {
  submitter_t *s = arg;
  for (size_t b = (size_t)s->node; b < s->nbatch; b += VALIDATORS) {
    size_t n = PX_MIN(s->ntx, (b + 1) * BATCH) - b * BATCH;
    atomic_store(&s->sub_ns[b], px_time_mono_ns());
    char *r = ctl(s->node, s->cmd[b]);
    if (!r || json_int(r, "accepted") != (long long)n)
      fprintf(stderr, "bench_chain: batch: %s\n", r ? r : "no reply");
    px_free(r);
  }
  return NULL;
}

/* CPU seconds used so far by node i (from /proc; 0 when unknown). */
static double node_cpu_s(int i) {
  char p[400], buf[1024];
  snprintf(p, sizeof p, "%s/node.pid", g_dir[i]);
  FILE *f = fopen(p, "r");
  long pid = 0;
  if (f) {
    if (fscanf(f, "%ld", &pid) != 1) pid = 0;
    fclose(f);
  }
  snprintf(p, sizeof p, "/proc/%ld/stat", pid);
  if (pid <= 0 || !(f = fopen(p, "r"))) return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  const char *q = strrchr(buf, ')');
  unsigned long long ut = 0, st = 0;
  if (!q ||
      sscanf(q + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
             &ut, &st) != 2)
    return 0;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Busy CPU seconds of the whole machine (all processes), from /proc/stat. */
static double machine_busy_s(void) {
  FILE *f = fopen("/proc/stat", "r");
  unsigned long long v[8] = {0};
  if (!f) return 0;
  int k = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1],
                 &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
  fclose(f);
  if (k != 8) return 0;
  return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) /
         (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_s(void) {
  struct rusage ru;
  if (getrusage(RUSAGE_SELF, &ru)) return 0;
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int make_tx(px_buf_t *out, const char *chain, const px_keypair_t *k,
                   uint64_t nonce, const uint8_t *to) {
  px_buf_t pl;
  px_buf_init(&pl, 0);
  px_tx_payload_transfer(&pl, to, 1);
  int rc =
      px_tx_make(chain, k, nonce, 1000, PX_TX_TRANSFER, pl.data, pl.len, out);
  px_buf_release(&pl);
  return rc;
}

static uint64_t next_nonce(int node, const uint8_t *pk) {
  char id[65], cmd[100];
  px_node_id_hex(pk, id);
  snprintf(cmd, sizeof cmd, "account %s", id);
  char *r = ctl(node, cmd);
  uint64_t n = (uint64_t)json_int(r, "next_nonce");
  px_free(r);
  return n;
}

int main(int argc, char **argv) {
  int quick = 0;
  size_t ntx = 20000;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--quick"))
      quick = 1;
    else if (!strcmp(argv[i], "--txs") && i + 1 < argc)
      ntx = (size_t)strtoull(argv[++i], NULL, 10);
  }
  if (quick && ntx == 20000) ntx = 2000;
  signal(SIGPIPE, SIG_IGN);
  if (px_crypto_init()) return 1;
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  double vrate = verify_rate(quick ? 0.2 : 1.0);
  double ceiling = (double)cores * vrate / VALIDATORS;
  printf("bench_chain: %d validators on 127.0.0.1, %ld cores\n", VALIDATORS,
         cores);
  printf("  Ed25519 verify (1 core)      %10.0f /s\n", vrate);
  printf("  ceiling cores*verify/vals    %10.0f tx/s\n", ceiling);
  fflush(stdout);

  snprintf(g_home, sizeof g_home, "/tmp/plexus-bench-chain-%ld",
           (long)getpid());
  for (int i = 0; i < VALIDATORS; i++)
    snprintf(g_dir[i], sizeof g_dir[i], "%s/node%d", g_home, i);
  const char *up[] = {"devnet", "up",          "--validators", "4", "--home",
                      g_home,   "--log.level", "warn",         NULL};
  if (run_plexus(up)) {
    fprintf(stderr, "bench_chain: devnet up failed\n");
    devnet_down();
    return 1;
  }
  int result = 1;
  px_keypair_t w[VALIDATORS];
  char chain[64] = "plexus-devnet";
  for (int i = 0; i < VALIDATORS; i++) {
    char p[1300];
    snprintf(p, sizeof p, "%s/wallet.key", g_dir[i]);
    if (px_keyfile_read(p, &w[i])) goto out;
  }
  for (int t = 0; t < 200; t++) {
    char *r = ctl(0, "chain");
    long long h = json_int(r, "height");
    px_free(r);
    if (h >= 2) break;
    usleep(50000);
  }

  /* ---- 2. light load latency ------------------------------------------- */
  size_t nlight = quick ? 10 : 40;
  uint64_t *lat = px_calloc(nlight, sizeof *lat);
  size_t nl = 0;
  for (size_t i = 0; i < nlight; i++) {
    int node = (int)(i % VALIDATORS);
    uint64_t nonce = next_nonce(node, w[node].pk);
    px_buf_t tx;
    px_buf_init(&tx, 0);
    if (make_tx(&tx, chain, &w[node], nonce, w[(node + 1) % 4].pk)) goto out;
    char *cmd = px_malloc(tx.len * 2 + 8), q[100], hx[65];
    memcpy(cmd, "tx ", 3);
    px_hex_encode(tx.data, tx.len, cmd + 3);
    uint8_t h[32];
    px_hash(h, tx.data, tx.len);
    px_hex_encode(h, 32, hx);
    snprintf(q, sizeof q, "txstatus %s", hx);
    uint64_t t0 = px_time_mono_ns();
    char *r = ctl(node, cmd);
    int ok = r && strstr(r, "\"ok\":true");
    px_free(r);
    px_free(cmd);
    px_buf_release(&tx);
    while (ok) {
      r = ctl(node, q);
      int done = r && strstr(r, "committed");
      px_free(r);
      if (done) {
        lat[nl++] = (px_time_mono_ns() - t0) / 1000;
        break;
      }
      if (px_time_mono_ns() - t0 > 10000000000ull) break;
      usleep(1000);
    }
    usleep(37000); /* land at different points of the block cycle */
  }
  double l50 = pct(lat, nl, 0.5), l99 = pct(lat, nl, 0.99);
  printf("  light load: %zu txs one at a time, commit latency p50 %.1f ms, "
         "p99 %.1f ms\n",
         nl, l50, l99);
  fflush(stdout);

  /* ---- 3. throughput ------------------------------------------------------
   * One submitter thread per node: node k gets wallet k's batches, in nonce
   * order, back to back (each waits only for its own node's reply), so every
   * node always has admission work queued; this thread reads the blocks. */
  px_buf_t *txs = px_calloc(ntx, sizeof *txs);
  hidx_t *hi = px_calloc(ntx, sizeof *hi);
  size_t nbatch = (ntx + BATCH - 1) / BATCH;
  _Atomic uint64_t *bsub = px_calloc(nbatch ? nbatch : 1, sizeof *bsub);
  char **bcmd = px_calloc(nbatch ? nbatch : 1, sizeof *bcmd);
  uint64_t *lat2 = px_calloc(ntx, sizeof *lat2);
  uint8_t *done = px_calloc(ntx, 1);
  uint64_t nonce[VALIDATORS];
  for (int i = 0; i < VALIDATORS; i++)
    nonce[i] = next_nonce(i, w[i].pk);
  for (size_t i = 0; i < ntx; i++) {
    int k = (int)((i / BATCH) % VALIDATORS);
    px_buf_init(&txs[i], 0);
    make_tx(&txs[i], chain, &w[k], nonce[k]++, w[(k + 1) % 4].pk);
    px_hash(hi[i].hash, txs[i].data, txs[i].len);
    hi[i].idx = (uint32_t)i;
  }
  /* The commands are encoded before the clock starts, like the signing. */
  for (size_t b = 0; b < nbatch; b++) {
    size_t end = PX_MIN(ntx, (b + 1) * BATCH), len = 4;
    for (size_t i = b * BATCH; i < end; i++)
      len += 1 + 2 * txs[i].len;
    char *q = bcmd[b] = px_malloc(len);
    memcpy(q, "txs", 3);
    q += 3;
    for (size_t i = b * BATCH; i < end; i++) {
      *q++ = ' ';
      px_hex_encode(txs[i].data, txs[i].len, q);
      q += 2 * txs[i].len;
    }
    *q = 0;
  }
  qsort(hi, ntx, sizeof *hi, cmp_hidx);
  char *r0 = ctl(0, "chain");
  long long seen_h = json_int(r0, "height");
  px_free(r0);
  size_t ncommit = 0;
  double cpu0[VALIDATORS], mach0 = machine_busy_s(), self0 = self_cpu_s();
  for (int k = 0; k < VALIDATORS; k++)
    cpu0[k] = node_cpu_s(k);
  uint64_t t_first = px_time_mono_ns(), t_last = t_first;
  submitter_t sub[VALIDATORS];
  pthread_t th[VALIDATORS];
  int started[VALIDATORS];
  for (int k = 0; k < VALIDATORS; k++) {
    sub[k] = (submitter_t){k, ntx, nbatch, bcmd, bsub};
    started[k] = pthread_create(&th[k], NULL, submit_main, &sub[k]) == 0;
    if (!started[k]) submit_main(&sub[k]);
  }
  px_arena_t ar;
  px_arena_init(&ar, 1 << 20, 0);
  while (ncommit < ntx && px_time_mono_ns() - t_last < 30000000000ull) {
    /* Read every block committed since the last look. */
    char *r = ctl(0, "chain");
    long long h = json_int(r, "height");
    px_free(r);
    for (; seen_h < h; seen_h++) {
      char q[64];
      snprintf(q, sizeof q, "block %lld", seen_h + 1);
      char *b = ctl(0, q);
      uint64_t now = px_time_mono_ns();
      px_json_t *root = NULL;
      const px_json_t *arr = NULL;
      px_arena_reset(&ar);
      if (b && !px_json_parse(&ar, b, strlen(b), NULL, &root, NULL) &&
          !px_json_get_array(root, "txs", &arr)) {
        for (size_t i = 0; i < px_json_count(arr); i++) {
          const char *s = NULL;
          hidx_t key;
          if (px_json_as_str(px_json_at(arr, i), &s) ||
              px_hex_decode(s, key.hash, 32))
            continue;
          hidx_t *f = bsearch(&key, hi, ntx, sizeof *hi, cmp_hidx);
          if (!f || done[f->idx]) continue;
          done[f->idx] = 1;
          uint64_t at = atomic_load(&bsub[f->idx / BATCH]);
          lat2[ncommit++] = (now > at ? now - at : 0) / 1000;
          t_last = now;
        }
      }
      px_free(b);
    }
    usleep(2000);
  }
  for (int k = 0; k < VALIDATORS; k++)
    if (started[k]) pthread_join(th[k], NULL);
  double wall = (double)(px_time_mono_ns() - t_first) / 1e9, nodes_cpu = 0;
  for (int k = 0; k < VALIDATORS; k++)
    nodes_cpu += node_cpu_s(k) - cpu0[k];
  double mach = machine_busy_s() - mach0, self = self_cpu_s() - self0;
  double secs = (double)(t_last - t_first) / 1e9;
  double tps = secs > 0 ? (double)ncommit / secs : 0;
  double ratio = tps / ceiling;
  printf("  load: %zu of %zu transfers committed in %.2f s: %.0f tx/s "
         "(latency p50 %.0f ms, p99 %.0f ms)\n",
         ncommit, ntx, secs, tps, pct(lat2, ncommit, 0.5),
         pct(lat2, ncommit, 0.99));
  if (wall > 0 && nodes_cpu > 0) {
    printf("  CPU during load (cores)      nodes %.2f, client %.2f, other "
           "processes %.2f, of %ld\n",
           nodes_cpu / wall, self / wall,
           PX_MAX(0.0, mach - nodes_cpu - self) / wall, cores);
    printf(
        "  throughput / (node CPU*verify/vals) %6.3f   (efficiency on the CPU "
        "the nodes got)\n",
        tps / (nodes_cpu / wall * vrate / VALIDATORS));
  }
  printf("  throughput / ceiling         %10.3f   goal >= 0.70: %s\n", ratio,
         ratio >= 0.7 ? "MET" : "NOT MET");
  printf("  light-load p50 commit        %10.1f ms goal < 100 ms: %s\n", l50,
         nl && l50 < 100 ? "MET" : "NOT MET");
  result = ncommit == ntx && nl == nlight ? 0 : 1;
  px_arena_release(&ar);
  for (size_t b = 0; b < nbatch; b++)
    px_free(bcmd[b]);
  px_free(bcmd);
  px_free(bsub);
  for (size_t i = 0; i < ntx; i++)
    px_buf_release(&txs[i]);
  px_free(txs);
  px_free(hi);
  px_free(lat2);
  px_free(done);
  px_free(lat);
out:
  for (int i = 0; i < VALIDATORS; i++)
    px_key_wipe(&w[i]);
  devnet_down();
  return result;
}
