/*
 * devnet.c — `plexus devnet up|status|down`: a local network of real node
 * processes on 127.0.0.1.
 *
 * `up` creates DIR/node0..node<N-1> (each a normal node home made by
 * px_node_init_home) with distinct loopback ports and every other node as a
 * bootstrap peer, starts `plexus node` for each as a daemon (its own session,
 * output in DIR/nodeI/node.log, pid in DIR/nodeI/node.pid), and waits until
 * every node sees all the others, printing progress.  Running `up` again on
 * an existing devnet restarts the nodes that are not running.
 *
 * With --validators V the devnet is a chain (docs/chain.md): one genesis
 * names the node keys of node0..node<V-1> as validators (each staked and
 * funded) and funds a wallet.key in every node home; it is copied into
 * each home, so every node starts the same chain.  --validators alone
 * means V nodes; --nodes N (N >= V) adds N-V followers.  Without
 * --validators the devnet is p2p only, as before.
 *
 * With --providers P (needs --validators) the devnet also runs a compute
 * market (docs/market.md): P provider nodes, by default the last P of
 * V + P nodes (--nodes N < V + P makes some processes both validator and
 * provider).  Each provider's node key -- its chain account -- gets a
 * genesis balance, and once the network is up each provider is staked and
 * registered through the node's `provide` control command (the same as
 * `plexus provide`) with --provider-stake (default 100e9), --provider-price
 * (1 per work unit), --provider-slots (2) and --provider-max-work (4e9
 * work units per shard: a 1,000-image shard of the Fashion-MNIST CNN);
 * `up` waits until the registry on chain lists every provider as active.
 * --fault KIND [--faulty N] is TEST ONLY: the last N providers (default 1)
 * run with market.fault = KIND (wrong, perturb, lazy, slow, vanish,
 * equivocate; docs/market.md), i.e. they cheat or fail on purpose.
 *
 * All nodes share one IP address, so the devnet turns p2p.ban_ip off: a ban
 * of 127.0.0.1 would ban every honest node with the culprit.  Bans by node
 * id still apply.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <unistd.h>

#include "plexus/crypto.h"
#include "plexus/ledger.h"
#include "plexus/node.h"
#include "cli/cli.h"
#include "base/px_internal.h"

#define DEVNET_MAX_NODES 64
#define DEVNET_META "devnet.conf"
#define DEVNET_PROVIDER_BALANCE 1000000000000ull /* as the wallets */
#define DEVNET_PROVIDER_STAKE 100000000000ull
#define DEVNET_PROVIDER_MAX_WORK 4000000000ull

void px_cli_json_field(const char *json, const char *key, char *out,
                       size_t cap) {
  char pat[96];
  snprintf(pat, sizeof pat, "\"%s\":", key);
  out[0] = 0;
  const char *p = strstr(json, pat);
  if (!p) return;
  p += strlen(pat);
  size_t n = 0;
  if (*p == '"') {
    p++;
    while (*p && *p != '"' && n + 1 < cap)
      out[n++] = *p++;
  } else {
    while (*p && *p != ',' && *p != '}' && *p != ']' && n + 1 < cap)
      out[n++] = *p++;
  }
  out[n] = 0;
}

void px_cli_print_status(FILE *f, const char *json) {
  char id[80], listen[80], net[64], count[16], up[32];
  px_cli_json_field(json, "node_id", id, sizeof id);
  px_cli_json_field(json, "listen", listen, sizeof listen);
  px_cli_json_field(json, "network", net, sizeof net);
  px_cli_json_field(json, "peer_count", count, sizeof count);
  px_cli_json_field(json, "uptime_ms", up, sizeof up);
  fprintf(
      f, "node     %s\nnetwork  %s\nlisten   %s\nuptime   %s ms\npeers    %s\n",
      id, net, listen, up, count);
  const char *p = strstr(json, "\"peers\":[");
  while (p && (p = strstr(p, "{\"node_id\":")) != NULL) {
    char pid[80], addr[80], remote[80], inb[8], rtt[16];
    px_cli_json_field(p, "node_id", pid, sizeof pid);
    px_cli_json_field(p, "addr", addr, sizeof addr);
    px_cli_json_field(p, "remote", remote, sizeof remote);
    px_cli_json_field(p, "inbound", inb, sizeof inb);
    px_cli_json_field(p, "rtt_ms", rtt, sizeof rtt);
    fprintf(f, "  %.16s  %-21s %-8s rtt %s ms\n", pid, addr[0] ? addr : remote,
            strcmp(inb, "true") ? "outbound" : "inbound", rtt);
    p++;
  }
}

static int node_dir(char *out, size_t cap, const char *home, int i) {
  int k = snprintf(out, cap, "%s/node%d", home, i);
  return (k < 0 || (size_t)k >= cap) ? PX_ETOOBIG : 0;
}

typedef struct {
  int validators, providers; /* providers: the last `providers` nodes */
} devnet_roles_t;

static int read_meta_roles(const char *home, devnet_roles_t *r) {
  char path[600];
  snprintf(path, sizeof path, "%s/%s", home, DEVNET_META);
  px_config_t c;
  px_config_init(&c);
  memset(r, 0, sizeof *r);
  int rc = px_config_load_file(&c, path, NULL);
  if (rc) return rc;
  uint64_t v = 0, p = 0;
  px_config_get_u64(&c, "devnet.validators", 0, &v);
  px_config_get_u64(&c, "devnet.providers", 0, &p);
  r->validators = (int)PX_MIN(v, DEVNET_MAX_NODES);
  r->providers = (int)PX_MIN(p, DEVNET_MAX_NODES);
  return 0;
}

static int read_meta(const char *home, int *nodes) {
  char path[600];
  snprintf(path, sizeof path, "%s/%s", home, DEVNET_META);
  px_config_t c;
  px_config_init(&c);
  int rc = px_config_load_file(&c, path, NULL);
  if (rc) return rc;
  uint64_t v;
  if (px_config_get_u64(&c, "devnet.nodes", 0, &v) || v < 1 ||
      v > DEVNET_MAX_NODES)
    return PX_ECONFIG;
  *nodes = (int)v;
  return 0;
}

static long read_pid(const char *dir) {
  char path[700];
  snprintf(path, sizeof path, "%s/node.pid", dir);
  uint8_t *d;
  size_t n;
  if (px_file_read_all(path, 64, &d, &n)) return 0;
  while (n && (d[n - 1] == '\n' || d[n - 1] == ' '))
    d[--n] = 0;
  uint64_t v = 0;
  int rc = px_parse_u64((char *)d, &v);
  px_free(d);
  return rc ? 0 : (long)v;
}

static int pid_alive(long pid) {
  if (pid <= 0) return 0;
  /* Reap it if it is our child that already exited. */
  int st;
  if (waitpid((pid_t)pid, &st, WNOHANG) == (pid_t)pid) return 0;
  if (kill((pid_t)pid, 0) != 0) return 0;
  /* A killed process whose parent has not reaped it is a zombie: dead. */
  char path[64];
  snprintf(path, sizeof path, "/proc/%ld/stat", pid);
  uint8_t *d;
  size_t n;
  if (px_file_read_all(path, 4096, &d, &n)) return 1;
  const char *rp = strrchr((const char *)d, ')');
  int zombie = rp && (rp[1] == ' ') && (rp[2] == 'Z' || rp[2] == 'X');
  px_free(d);
  return !zombie;
}

/* A running node holds an exclusive flock on DIR/node.lock: that, not a pid
 * that may have been reused, says whether the node is up. */
static int node_running(const char *dir) {
  char path[700];
  snprintf(path, sizeof path, "%s/%s", dir, PX_NODE_LOCK_FILE);
  int fd = open(path, O_RDWR | O_CLOEXEC);
  if (fd < 0) return 0;
  int busy = flock(fd, LOCK_EX | LOCK_NB) != 0;
  close(fd); /* releases the lock if we took it */
  return busy;
}

/* Pick `n` free loopback ports by binding them all at once. */
static int free_ports(int n, unsigned *ports) {
  int fds[DEVNET_MAX_NODES];
  int rc = 0, k = 0;
  for (; k < n; k++) {
    fds[k] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    if (fds[k] < 0 || bind(fds[k], (struct sockaddr *)&sa, sizeof sa) ||
        getsockname(fds[k], (struct sockaddr *)&sa, &len)) {
      rc = PX_ENET;
      if (fds[k] >= 0) close(fds[k]);
      break;
    }
    ports[k] = ntohs(sa.sin_port);
  }
  for (int i = 0; i < k; i++)
    close(fds[i]);
  return rc;
}

static int spawn_node(const char *exe, const char *dir) {
  char logp[700], pidp[700];
  snprintf(logp, sizeof logp, "%s/node.log", dir);
  snprintf(pidp, sizeof pidp, "%s/node.pid", dir);
  pid_t pid = fork();
  if (pid < 0) return px_err_from_errno(errno);
  if (pid == 0) {
    setsid();
    int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0600);
    int nul = open("/dev/null", O_RDONLY);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    if (nul >= 0) dup2(nul, 0);
    execl(exe, exe, "node", "--home", dir, (char *)NULL);
    _exit(127);
  }
  char buf[32];
  int k = snprintf(buf, sizeof buf, "%ld\n", (long)pid);
  return px_file_write_atomic(pidp, buf, (size_t)k, 0644);
}

static int devnet_status_one(const char *dir, int *peers, char *id,
                             size_t idcap) {
  char *reply = NULL;
  int rc = px_node_control(dir, "status", &reply, 2000);
  if (rc) return rc;
  char count[16];
  px_cli_json_field(reply, "peer_count", count, sizeof count);
  px_cli_json_field(reply, "node_id", id, idcap);
  *peers = atoi(count);
  px_free(reply);
  return 0;
}

/* Give each provider's node key (its chain account) a genesis balance: the
 * validators' keys have one already; the genesis is rewritten in every
 * home. */
static int fund_providers(const char *const *dirs, int nodes, int validators,
                          int providers) {
  char gpath[700];
  snprintf(gpath, sizeof gpath, "%s/genesis.json", dirs[0]);
  px_genesis_t g;
  px_genesis_init(&g);
  int rc = px_genesis_read_file(gpath, &g);
  for (int i = nodes - providers; !rc && i < nodes; i++) {
    if (i < validators) continue;
    char kp[700];
    snprintf(kp, sizeof kp, "%s/%s", dirs[i], PX_NODE_KEY_FILE);
    px_keypair_t k;
    if ((rc = px_keyfile_read(kp, &k))) break;
    rc = px_genesis_add_account(&g, k.pk, DEVNET_PROVIDER_BALANCE, 0);
    px_key_wipe(&k);
  }
  if (!rc) rc = px_genesis_check(&g);
  for (int i = 0; !rc && i < nodes; i++) {
    snprintf(gpath, sizeof gpath, "%s/genesis.json", dirs[i]);
    rc = px_genesis_write_file(&g, gpath);
  }
  px_genesis_release(&g);
  return rc;
}

/* 1 when `id` is an active provider in a `providers` reply. */
static int provider_active(const char *reply, const char *id) {
  const char *p = strstr(reply, id);
  if (!p) return 0;
  const char *end = strchr(p, '}');
  const char *act = strstr(p, "\"active\":true");
  return act && (!end || act < end);
}

/* Stake and register every provider node (skipping those already on the
 * registry), then wait until node0's chain lists all of them as active. */
static int register_providers(px_cli_args_t *a, const char *home, int nodes,
                              int providers, uint64_t timeout_s) {
  uint64_t stake = DEVNET_PROVIDER_STAKE, price = 1, slots = 2,
           max_work = DEVNET_PROVIDER_MAX_WORK;
  const char *v;
  if (((v = px_config_get(&a->opts, "provider-stake")) &&
       (px_parse_u64(v, &stake) || !stake)) ||
      ((v = px_config_get(&a->opts, "provider-price")) &&
       (px_parse_u64(v, &price) || !price)) ||
      ((v = px_config_get(&a->opts, "provider-slots")) &&
       (px_parse_u64(v, &slots) || !slots || slots > 64)) ||
      ((v = px_config_get(&a->opts, "provider-max-work")) &&
       (px_parse_u64(v, &max_work) || !max_work))) {
    fprintf(stderr, "plexus: --provider-stake, --provider-price, "
                    "--provider-max-work must be numbers above 0 and "
                    "--provider-slots 1 to 64\n");
    return 2;
  }
  char dir0[600], ids[DEVNET_MAX_NODES][80];
  node_dir(dir0, sizeof dir0, home, 0);
  char *reg = NULL;
  if (px_node_control(dir0, "providers", &reg, 30000)) reg = NULL;
  int submitted = 0;
  for (int i = nodes - providers; i < nodes; i++) {
    char dir[600];
    int peers;
    node_dir(dir, sizeof dir, home, i);
    ids[i][0] = 0;
    if (devnet_status_one(dir, &peers, ids[i], sizeof ids[i])) {
      fprintf(stderr,
              "plexus: provider node%d does not answer; see %s/node.log"
              "\n",
              i, dir);
      px_free(reg);
      return 1;
    }
    if (reg && provider_active(reg, ids[i])) continue;
    char cmd[256], *reply = NULL;
    snprintf(cmd, sizeof cmd,
             "provide {\"stake\":%llu,\"price\":%llu,\"slots\":%llu,"
             "\"max_shard_work\":%llu}",
             (unsigned long long)stake, (unsigned long long)price,
             (unsigned long long)slots, (unsigned long long)max_work);
    int rc = px_node_control(dir, cmd, &reply, 120000);
    if (rc || !strstr(reply, "\"ok\":true")) {
      char msg[300] = "";
      if (!rc) px_cli_json_field(reply, "message", msg, sizeof msg);
      fprintf(stderr,
              "plexus: node%d could not register as a provider: %s; "
              "see %s/node.log\n",
              i, rc ? px_strerror(rc) : msg, dir);
      px_free(reply);
      px_free(reg);
      return 1;
    }
    char speed[32];
    px_cli_json_field(reply, "speed", speed, sizeof speed);
    printf("devnet: node%d (%.16s) registers as a provider: stake %llu, price "
           "%llu, %llu slots, benchmark %s work units/s\n",
           i, ids[i], (unsigned long long)stake, (unsigned long long)price,
           (unsigned long long)slots, speed);
    fflush(stdout);
    px_free(reply);
    submitted++;
  }
  px_free(reg);
  uint64_t t0 = px_time_mono_ms();
  for (;;) {
    char *r = NULL;
    int active = 0;
    if (px_node_control(dir0, "providers", &r, 30000) == 0) {
      for (int i = nodes - providers; i < nodes; i++)
        active += provider_active(r, ids[i]);
      px_free(r);
    }
    if (active == providers) {
      printf("devnet: %d provider%s registered and active on chain%s\n",
             providers, providers == 1 ? "" : "s",
             submitted ? "" : " (already)");
      return 0;
    }
    if (px_time_mono_ms() - t0 > timeout_s * 1000) {
      fprintf(stderr,
              "plexus: only %d of %d providers are active on chain after %llu "
              "s; see %s/node*/node.log\n",
              active, providers, (unsigned long long)timeout_s, home);
      return 1;
    }
    usleep(200 * 1000);
  }
}

static int devnet_up(px_cli_args_t *a, const char *home) {
  uint64_t nodes = 4, base = 0, timeout_s = 60, validators = 0;
  const char *v;
  if ((v = px_config_get(&a->opts, "validators")) &&
      (px_parse_u64(v, &validators) || validators < 1 ||
       validators > DEVNET_MAX_NODES)) {
    fprintf(stderr, "plexus: --validators must be 1 to %d\n", DEVNET_MAX_NODES);
    return 2;
  }
  if (validators && !px_config_get(&a->opts, "nodes")) nodes = validators;
  if ((v = px_config_get(&a->opts, "nodes")) &&
      (px_parse_u64(v, &nodes) || nodes < 1 || nodes > DEVNET_MAX_NODES)) {
    fprintf(stderr, "plexus: --nodes must be 1 to %d\n", DEVNET_MAX_NODES);
    return 2;
  }
  if ((v = px_config_get(&a->opts, "base-port")) &&
      (px_parse_u64(v, &base) || base < 1 || base + nodes > 65536)) {
    fprintf(stderr, "plexus: --base-port must leave room for %llu ports\n",
            (unsigned long long)nodes);
    return 2;
  }
  if ((v = px_config_get(&a->opts, "timeout")) &&
      (px_parse_u64(v, &timeout_s) || timeout_s < 1)) {
    fprintf(stderr, "plexus: --timeout must be a number of seconds\n");
    return 2;
  }
  uint64_t providers = 0, faulty = 1;
  if ((v = px_config_get(&a->opts, "providers")) &&
      (px_parse_u64(v, &providers) || providers > DEVNET_MAX_NODES)) {
    fprintf(stderr, "plexus: --providers must be 0 to %d\n", DEVNET_MAX_NODES);
    return 2;
  }
  if (providers && !validators) {
    fprintf(stderr, "plexus: --providers needs a chain: add --validators V "
                    "(e.g. --validators 4 --providers 4)\n");
    return 2;
  }
  if (providers && !px_config_get(&a->opts, "nodes")) {
    nodes = validators + providers;
    if (nodes > DEVNET_MAX_NODES) {
      fprintf(stderr,
              "plexus: --validators + --providers must be at most %d "
              "(or give --nodes N to share processes)\n",
              DEVNET_MAX_NODES);
      return 2;
    }
  }
  const char *fault = px_config_get(&a->opts, "fault");
  if (fault && (!*fault || !strcmp(fault, "true") || !providers)) {
    fprintf(stderr, "plexus: --fault KIND (TEST ONLY: wrong, perturb, lazy, "
                    "slow, vanish, equivocate) needs --providers P\n");
    return 2;
  }
  if ((v = px_config_get(&a->opts, "faulty")) &&
      (px_parse_u64(v, &faulty) || faulty < 1 || faulty > providers)) {
    fprintf(stderr, "plexus: --faulty must be 1 to --providers (%llu)\n",
            (unsigned long long)providers);
    return 2;
  }
  if (validators > nodes) {
    fprintf(stderr, "plexus: --validators cannot exceed --nodes\n");
    return 2;
  }
  if (providers > nodes) {
    fprintf(stderr, "plexus: --providers cannot exceed --nodes\n");
    return 2;
  }
  int existing = 0;
  if (read_meta(home, &existing) == 0 && existing != (int)nodes) {
    if (px_config_get(&a->opts, "nodes")) {
      fprintf(stderr,
              "plexus: %s holds a devnet of %d nodes; run `plexus "
              "devnet down --home %s` and remove it to make a new one\n",
              home, existing, home);
      return 1;
    }
    nodes = (uint64_t)existing;
  }
  int rc = px_mkdir_p(home, 0700);
  if (rc) {
    fprintf(stderr, "plexus: cannot create %s: %s\n", home, px_strerror(rc));
    return 1;
  }
  if (!existing) {
    unsigned ports[DEVNET_MAX_NODES];
    if (base) {
      for (uint64_t i = 0; i < nodes; i++)
        ports[i] = (unsigned)(base + i);
    } else if (free_ports((int)nodes, ports)) {
      fprintf(stderr, "plexus: cannot find free loopback ports\n");
      return 1;
    }
    for (int i = 0; i < (int)nodes; i++) {
      char dir[600], listen[64], boot[PX_CONFIG_MAX_VALUE] = "";
      node_dir(dir, sizeof dir, home, i);
      snprintf(listen, sizeof listen, "127.0.0.1:%u", ports[i]);
      size_t off = 0;
      for (int j = 0; j < (int)nodes; j++) {
        if (j == i) continue;
        int k = snprintf(boot + off, sizeof boot - off, "%s127.0.0.1:%u",
                         off ? "," : "", ports[j]);
        if (k < 0 || (size_t)k >= sizeof boot - off) break;
        off += (size_t)k;
      }
      px_config_t c;
      px_config_init(&c);
      px_config_set(&c, "p2p.listen", listen, 0);
      px_config_set(&c, "p2p.bootstrap", boot, 0);
      px_config_set(&c, "p2p.ban_ip", "false", 0);
      if (fault && (uint64_t)i >= nodes - faulty)
        px_config_set(&c, "market.fault", fault, 0); /* TEST ONLY */
      /* Flags given to `devnet up` apply to every node's config. */
      for (size_t e = 0; e < a->opts.n; e++)
        if (strchr(a->opts.entries[e].key, '.'))
          px_config_set(&c, a->opts.entries[e].key, a->opts.entries[e].value,
                        0);
      char id[PX_NODE_ID_HEX_LEN];
      rc = px_node_init_home(dir, &c, id);
      if (rc && rc != PX_EEXIST) {
        fprintf(stderr, "plexus: cannot initialise %s: %s\n", dir,
                px_strerror(rc));
        return 1;
      }
    }
    if (validators) {
      char(*dirs)[600] = px_calloc(nodes, sizeof *dirs);
      const char **dp = px_calloc(nodes, sizeof *dp);
      for (int i = 0; dirs && dp && i < (int)nodes; i++) {
        node_dir(dirs[i], sizeof dirs[i], home, i);
        dp[i] = dirs[i];
      }
      rc = dirs && dp
               ? px_cli_chain_genesis(dp, nodes, validators, "plexus-devnet")
               : PX_ENOMEM;
      if (!rc && providers)
        rc = fund_providers(dp, (int)nodes, (int)validators, (int)providers);
      px_free(dirs);
      px_free(dp);
      if (rc) {
        fprintf(stderr, "plexus: cannot create the devnet genesis: %s\n",
                px_strerror(rc));
        return 1;
      }
      printf("devnet: genesis with %llu validator%s written to every node "
             "home (wallets: %s/nodeI/wallet.key)\n",
             (unsigned long long)validators, validators == 1 ? "" : "s", home);
    }
    char meta[600], text[160];
    snprintf(meta, sizeof meta, "%s/%s", home, DEVNET_META);
    int k = snprintf(text, sizeof text,
                     "devnet.nodes = %llu\ndevnet.validators = %llu\n"
                     "devnet.providers = %llu\n",
                     (unsigned long long)nodes, (unsigned long long)validators,
                     (unsigned long long)providers);
    px_file_write_atomic(meta, text, (size_t)k, 0644);
  }
  char exe[4096];
  ssize_t el = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (el <= 0) {
    fprintf(stderr, "plexus: cannot find own executable\n");
    return 1;
  }
  exe[el] = 0;
  int started = 0;
  for (int i = 0; i < (int)nodes; i++) {
    char dir[600];
    node_dir(dir, sizeof dir, home, i);
    /* A node killed a moment ago can still hold its lock: the process
     * shows as a zombie while its last threads exit.  Give such a one a
     * few seconds instead of taking it for a running node. */
    for (int w = 0; w < 100 && node_running(dir) && !pid_alive(read_pid(dir));
         w++)
      usleep(50 * 1000);
    if (node_running(dir)) continue;
    if ((rc = spawn_node(exe, dir))) {
      fprintf(stderr, "plexus: cannot start node %d: %s\n", i, px_strerror(rc));
      return 1;
    }
    started++;
  }
  printf("devnet: %d node%s started in %s, waiting for a full peer view\n",
         started, started == 1 ? "" : "s", home);
  fflush(stdout);
  uint64_t t0 = px_time_mono_ms(), last_print = 0;
  for (;;) {
    int ready = 0, running = 0;
    for (int i = 0; i < (int)nodes; i++) {
      char dir[600], id[80];
      int peers = 0;
      node_dir(dir, sizeof dir, home, i);
      if (devnet_status_one(dir, &peers, id, sizeof id) == 0) {
        running++;
        if (peers >= (int)nodes - 1) ready++;
      }
    }
    uint64_t el_ms = px_time_mono_ms() - t0;
    if (ready == (int)nodes) {
      printf("devnet: all %llu nodes running, each connected to the other %llu "
             "(%.1f s)\n",
             (unsigned long long)nodes, (unsigned long long)(nodes - 1),
             el_ms / 1000.0);
      fflush(stdout);
      devnet_roles_t roles;
      if (read_meta_roles(home, &roles) || !roles.providers) return 0;
      return register_providers(a, home, (int)nodes, roles.providers,
                                timeout_s);
    }
    if (el_ms - last_print >= 1000) {
      printf("devnet: %d/%llu running, %d/%llu with a full peer view\n",
             running, (unsigned long long)nodes, ready,
             (unsigned long long)nodes);
      fflush(stdout);
      last_print = el_ms;
    }
    if (el_ms > timeout_s * 1000) {
      fprintf(stderr,
              "plexus: devnet did not converge in %llu s; see "
              "%s/node*/node.log\n",
              (unsigned long long)timeout_s, home);
      return 1;
    }
    usleep(100 * 1000);
  }
}

static int devnet_status(px_cli_args_t *a, const char *home) {
  int nodes;
  if (read_meta(home, &nodes)) {
    fprintf(stderr,
            "plexus: no devnet in %s (create one with `plexus devnet "
            "up --nodes N --home %s`)\n",
            home, home);
    return 1;
  }
  int json = 0;
  px_config_get_bool(&a->opts, "json", 0, &json);
  devnet_roles_t roles;
  read_meta_roles(home, &roles);
  /* The provider registry as some running node's chain sees it. */
  char *reg = NULL;
  for (int i = 0; roles.providers && !reg && i < nodes; i++) {
    char dir[600];
    node_dir(dir, sizeof dir, home, i);
    if (px_node_control(dir, "providers", &reg, 2000)) reg = NULL;
    if (reg && !strstr(reg, "\"ok\":true")) {
      px_free(reg);
      reg = NULL;
    }
  }
  int up = 0;
  if (json) printf("{\"nodes\":[");
  for (int i = 0; i < nodes; i++) {
    char dir[600];
    node_dir(dir, sizeof dir, home, i);
    char *reply = NULL;
    int rc = px_node_control(dir, "status", &reply, 2000);
    if (json) {
      printf("%s%s", i ? "," : "", rc ? "{\"ok\":false}" : reply);
    } else if (rc) {
      printf("node%-3d down\n", i);
    } else {
      char id[80], listen[80], count[16];
      px_cli_json_field(reply, "node_id", id, sizeof id);
      px_cli_json_field(reply, "listen", listen, sizeof listen);
      px_cli_json_field(reply, "peer_count", count, sizeof count);
      char height[24] = "", app[80] = "";
      const char *ch = strstr(reply, "\"chain\":{");
      if (ch) {
        px_cli_json_field(ch, "height", height, sizeof height);
        px_cli_json_field(ch, "app_hash", app, sizeof app);
      }
      printf("node%-3d up   %.16s  %-21s peers %s", i, id, listen, count);
      if (ch) printf("  height %s app %.16s", height, app);
      if (i < roles.validators) printf("  validator");
      if (i >= nodes - roles.providers) {
        const char *p = reg ? strstr(reg, id) : NULL;
        if (p && provider_active(reg, id)) {
          char price[24], stake[24], done[24], earned[24];
          px_cli_json_field(p, "price", price, sizeof price);
          px_cli_json_field(p, "stake", stake, sizeof stake);
          px_cli_json_field(p, "shards_completed", done, sizeof done);
          px_cli_json_field(p, "earned", earned, sizeof earned);
          printf("  provider (price %s, stake %s, shards %s, earned %s)", price,
                 stake, done, earned);
        } else {
          printf("  provider (not registered)");
        }
      }
      printf("\n");
    }
    if (!rc) up++;
    px_free(reply);
  }
  if (json) {
    printf("],\"up\":%d,\"total\":%d,\"validators\":%d,\"providers\":%d", up,
           nodes, roles.validators, roles.providers);
    if (reg) printf(",\"registry\":%s", reg);
    printf("}\n");
  } else {
    printf("%d/%d nodes up", up, nodes);
    if (roles.validators) printf(", %d validators", roles.validators);
    if (roles.providers) printf(", %d providers", roles.providers);
    printf("\n");
  }
  px_free(reg);
  return 0;
}

static int devnet_down(const char *home) {
  int nodes;
  if (read_meta(home, &nodes)) {
    fprintf(stderr, "plexus: no devnet in %s\n", home);
    return 1;
  }
  long pids[DEVNET_MAX_NODES];
  for (int i = 0; i < nodes; i++) {
    char dir[600];
    node_dir(dir, sizeof dir, home, i);
    pids[i] = read_pid(dir);
    if (pid_alive(pids[i]))
      kill((pid_t)pids[i], SIGTERM);
    else
      pids[i] = 0;
  }
  uint64_t t0 = px_time_mono_ms();
  int left;
  do {
    left = 0;
    for (int i = 0; i < nodes; i++)
      if (pids[i] && pid_alive(pids[i])) left++;
    if (left) usleep(50 * 1000);
  } while (left && px_time_mono_ms() - t0 < 10000);
  int killed = 0;
  for (int i = 0; i < nodes; i++) {
    if (pids[i] && pid_alive(pids[i])) {
      kill((pid_t)pids[i], SIGKILL);
      killed++;
    }
    char dir[600], pidp[700];
    node_dir(dir, sizeof dir, home, i);
    snprintf(pidp, sizeof pidp, "%s/node.pid", dir);
    unlink(pidp);
  }
  printf("devnet: stopped %d nodes%s\n", nodes,
         killed ? " (some had to be killed)" : " cleanly");
  return 0;
}

int px_cli_devnet(const char *sub, px_cli_args_t *a, const char *argv0) {
  (void)argv0;
  static const char *const ok[] = {"home",
                                   "nodes",
                                   "base-port",
                                   "json",
                                   "timeout",
                                   "validators",
                                   "providers",
                                   "provider-stake",
                                   "provider-price",
                                   "provider-slots",
                                   "provider-max-work",
                                   "fault",
                                   "faulty",
                                   NULL};
  if (px_cli_check_opts(a, ok, 1)) return 2;
  const char *home = px_cli_home(a);
  if (!home) return 2;
  if (!strcmp(sub, "up")) return devnet_up(a, home);
  if (!strcmp(sub, "status")) return devnet_status(a, home);
  if (!strcmp(sub, "down")) return devnet_down(home);
  fprintf(stderr, "plexus: usage: plexus devnet up|status|down --home DIR\n");
  return 2;
}
