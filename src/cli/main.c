/*
 * main.c — the `plexus` command: one program, subcommands.
 *
 *   plexus init    --home DIR [--p2p.listen A] [--p2p.bootstrap A,B] [...]
 *   plexus keygen  [--home DIR | --out FILE]
 *   plexus node    --home DIR [--OPTION VALUE ...]
 *   plexus status  --home DIR [--json]
 *   plexus gossip  --home DIR [--topic N] TEXT
 *   plexus request --home DIR --peer NODE_ID TEXT
 *   plexus stop    --home DIR
 *   plexus devnet  up --nodes N --home DIR [--base-port P] | status | down
 *   plexus devnet  up --validators N --home DIR   (a chain: chain_cmds.c)
 *   plexus wallet|stake|unstake|tx|query|verify-proof|chain ... (chain_cmds.c)
 *   plexus provide|providers|job ... (market_cmds.c)
 *   plexus mine|upow ... (upow_cmds.c)
 *
 * Every configuration option (docs/config.md) can be given as a flag,
 * `--p2p.listen 127.0.0.1:7000` or `--p2p.listen=127.0.0.1:7000`; flags
 * override the config file.  Errors are one line on stderr naming what is
 * wrong and what to do; exit status 1 for a failure, 2 for a usage error.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/crypto.h"
#include "plexus/node.h"
#include "cli/cli.h"
#include "base/px_internal.h"

static int usage(FILE *f) {
  fprintf(
      f,
      "usage: plexus COMMAND [OPTIONS]\n"
      "\n"
      "commands:\n"
      "  init    --home DIR [--OPTION VALUE...]  create a node home (key, "
      "config)\n"
      "  keygen  [--home DIR | --out FILE]       make a key, print the node "
      "id\n"
      "  node    --home DIR [--OPTION VALUE...]  run a node (Ctrl-C stops it)\n"
      "          [--http 127.0.0.1:PORT]         + the HTTP API (docs/api.md)\n"
      "  status  --home DIR [--json]             show a running node's peers\n"
      "  gossip  --home DIR [--topic N] TEXT     gossip TEXT to the network\n"
      "  request --home DIR --peer ID TEXT       echo request to a peer\n"
      "  stop    --home DIR                      stop a running node\n"
      "  devnet  up --nodes N --home DIR [--base-port P]\n"
      "  devnet  status --home DIR [--json]\n"
      "  devnet  down --home DIR\n"
      "  devnet  up --validators N --home DIR    a local chain of N "
      "validators\n"
      "          [--providers P]                 + P staked, registered "
      "providers\n"
      "  wallet  new|show|balance --home DIR     the wallet (DIR/wallet.key)\n"
      "  wallet  send --home DIR --to ID --amount N [--fee F] [--no-wait]\n"
      "  stake|unstake --home DIR --amount N     bond / unbond stake\n"
      "  tx status HASH --home DIR               a transaction's outcome\n"
      "  query account ID --home DIR [--prove] [--out FILE]\n"
      "  verify-proof FILE [--genesis F | --validators F | --home DIR]\n"
      "  chain status --home DIR                 height, app hash, mempool\n"
      "  provide --home DIR --stake N --price P [--slots S]  offer compute\n"
      "  providers --home DIR [--json]           the on-chain provider "
      "registry\n"
      "  job submit infer --home DIR --model M --input I --max-price P\n"
      "          --policy audit:0.05|replicate:2 [--deadline T] [--shard-size "
      "S]\n"
      "          [--wait] [--json]\n"
      "  job status|result|list [ID] --home DIR [--wait] [--out FILE] "
      "[--json]\n"
      "  mine    --home DIR [--off]              mine uPoW on a running node\n"
      "  upow    status --home DIR [--json]      epoch, difficulty, rewards\n"
      "  upow    model --home DIR --epoch N --out FILE  export a published "
      "network\n"
      "  upow    eval --model FILE [--limit N]   its Fashion-MNIST test "
      "accuracy\n"
      "  train   --model mlp|cnn --data fashion-mnist --epochs N --out FILE\n"
      "          [--batch B --lr X --optimizer sgd|adamw --seed S --limit N]\n"
      "  eval    --model FILE --data fashion-mnist [--limit N] [--json]\n"
      "          [--predictions FILE]  score a job's result file\n"
      "  infer   --model FILE --input FILE [--trace] [--json]\n"
      "  generate --model stories.bin --tokenizer tokenizer.bin --prompt TEXT\n"
      "          [--steps N --temperature T --top-p P --seed S]\n"
      "  serve   --model stories.bin [--tokenizer T] [--http 127.0.0.1:PORT]\n"
      "          [--home DIR] [--name ID] [--max-streams N]  local "
      "OpenAI-compatible API\n"
      "  gateway key new --home DIR              an API key for the gateway\n"
      "  model   add --home DIR --name ID --model M.bin --tokenizer T.bin\n"
      "          [--template F.json]             a model the gateway serves\n"
      "  model   list --home DIR [--json]        the registered models\n"
      "  version                                 print the version\n"
      "\n"
      "OPTIONs are configuration keys (docs/config.md), e.g. --p2p.listen\n"
      "127.0.0.1:7100, --p2p.bootstrap 127.0.0.1:7101, --log.level debug.\n");
  return f == stderr ? 2 : 0;
}

int px_cli_parse(int argc, char **argv, px_cli_args_t *a) {
  memset(a, 0, sizeof *a);
  px_config_init(&a->opts);
  for (int i = 0; i < argc; i++) {
    const char *s = argv[i];
    if (strncmp(s, "--", 2) != 0 || s[2] == 0) {
      if (a->npos >= PX_ARRAY_LEN(a->pos)) {
        fprintf(stderr, "plexus: too many arguments\n");
        return PX_EINVAL;
      }
      a->pos[a->npos++] = s;
      continue;
    }
    char key[PX_CONFIG_MAX_KEY];
    const char *val;
    const char *eq = strchr(s + 2, '=');
    if (eq) {
      snprintf(key, sizeof key, "%.*s", (int)(eq - s - 2), s + 2);
      val = eq + 1;
    } else {
      snprintf(key, sizeof key, "%s", s + 2);
      /* Boolean switches take no value. */
      if (!strcmp(key, "json") || !strcmp(key, "help") ||
          !strcmp(key, "force") || !strcmp(key, "prove") ||
          !strcmp(key, "no-wait") || !strcmp(key, "wait") || i + 1 >= argc ||
          strncmp(argv[i + 1], "--", 2) == 0)
        val = "true";
      else
        val = argv[++i];
    }
    int rc = px_config_set(&a->opts, key, val, 1);
    if (rc) {
      fprintf(stderr, "plexus: bad option --%s: %s\n", key, px_strerror(rc));
      return rc;
    }
  }
  return 0;
}

/* Move configuration keys (those with a dot: p2p.listen, log.level) into a
 * separate set that overrides the config file. */
void px_cli_config_flags(const px_cli_args_t *a, px_config_t *out) {
  px_config_init(out);
  for (size_t i = 0; i < a->opts.n; i++)
    if (strchr(a->opts.entries[i].key, '.'))
      px_config_set(out, a->opts.entries[i].key, a->opts.entries[i].value, 1);
}

/* Reject options a command does not know (typos should not pass silently). */
int px_cli_check_opts(const px_cli_args_t *a, const char *const *allowed,
                      int allow_config) {
  for (size_t i = 0; i < a->opts.n; i++) {
    const char *k = a->opts.entries[i].key;
    if (allow_config && strchr(k, '.')) continue;
    int ok = 0;
    for (size_t j = 0; allowed && allowed[j] && !ok; j++)
      ok = !strcmp(k, allowed[j]);
    if (!ok) {
      fprintf(stderr, "plexus: unknown option --%s (see `plexus help`)\n", k);
      return PX_EINVAL;
    }
  }
  return 0;
}

const char *px_cli_home(const px_cli_args_t *a) {
  const char *h = px_config_get(&a->opts, "home");
  if (!h || !*h || !strcmp(h, "true")) {
    fprintf(stderr, "plexus: --home DIR is required\n");
    return NULL;
  }
  return h;
}

static int cmd_init(px_cli_args_t *a) {
  static const char *const ok[] = {"home", NULL};
  if (px_cli_check_opts(a, ok, 1)) return 2;
  const char *home = px_cli_home(a);
  if (!home) return 2;
  px_config_t flags;
  px_cli_config_flags(a, &flags);
  char id[PX_NODE_ID_HEX_LEN];
  int rc = px_node_init_home(home, &flags, id);
  if (rc == PX_EEXIST) {
    fprintf(stderr,
            "plexus: %s already holds a node config; use another --home\n",
            home);
    return 1;
  }
  if (rc) {
    fprintf(stderr, "plexus: cannot initialise %s: %s\n", home,
            px_strerror(rc));
    return 1;
  }
  printf("initialised %s\nnode id: %s\n", home, id);
  /* A single-validator chain: this node's key validates, a wallet is
   * funded (`plexus node` then produces blocks). */
  const char *dirs[1] = {home};
  if ((rc = px_cli_chain_genesis(dirs, 1, 1, "plexus-local"))) {
    fprintf(stderr, "plexus: cannot create the genesis in %s: %s\n", home,
            px_strerror(rc));
    return 1;
  }
  printf("genesis: %s/genesis.json (this node validates; wallet %s/wallet.key "
         "is funded)\n",
         home, home);
  return 0;
}

static int cmd_keygen(px_cli_args_t *a) {
  static const char *const ok[] = {"home", "out", "force", NULL};
  if (px_cli_check_opts(a, ok, 0)) return 2;
  const char *out = px_config_get(&a->opts, "out");
  const char *home = px_config_get(&a->opts, "home");
  char path[600];
  if (!out && home) {
    snprintf(path, sizeof path, "%s/%s", home, PX_NODE_KEY_FILE);
    int rc = px_mkdir_p(home, 0700);
    if (rc) {
      fprintf(stderr, "plexus: cannot create %s: %s\n", home, px_strerror(rc));
      return 1;
    }
    out = path;
  }
  px_keypair_t kp;
  if (px_key_generate(&kp)) {
    fprintf(stderr, "plexus: key generation failed\n");
    return 1;
  }
  if (out) {
    int force = 0;
    px_config_get_bool(&a->opts, "force", 0, &force);
    int rc = px_keyfile_write(out, &kp, force);
    if (rc == PX_EEXIST) {
      fprintf(stderr,
              "plexus: %s exists; refusing to overwrite a key (--force "
              "replaces it)\n",
              out);
      px_key_wipe(&kp);
      return 1;
    }
    if (rc) {
      fprintf(stderr, "plexus: cannot write %s: %s\n", out, px_strerror(rc));
      px_key_wipe(&kp);
      return 1;
    }
  }
  char id[PX_NODE_ID_HEX_LEN];
  px_node_id_hex(kp.pk, id);
  px_key_wipe(&kp);
  printf("%s\n", id);
  return 0;
}

static int cmd_node(px_cli_args_t *a) {
  static const char *const ok[] = {"home", "http", NULL};
  if (px_cli_check_opts(a, ok, 1)) return 2;
  const char *home = px_cli_home(a);
  if (!home) return 2;
  px_config_t flags;
  px_cli_config_flags(a, &flags);
  const char *http = px_config_get(&a->opts, "http"); /* = --api.http */
  if (http) px_config_set(&flags, "api.http", http, 1);
  px_node_t *n;
  char err[512];
  int rc = px_node_open(home, &flags, &n, err, sizeof err);
  if (rc) {
    fprintf(stderr, "plexus: %s\n", err[0] ? err : px_strerror(rc));
    return 1;
  }
  rc = px_node_run(n);
  px_node_free(n);
  return rc ? 1 : 0;
}

/* Send a control command and print the reply (JSON) or a summary. */
int px_cli_control(const char *home, const char *cmd, char **reply) {
  int rc = px_node_control(home, cmd, reply, 15000);
  if (rc == PX_ENOENT) {
    fprintf(stderr,
            "plexus: no node is running in %s (start one with `plexus "
            "node --home %s`)\n",
            home, home);
  } else if (rc) {
    fprintf(stderr, "plexus: cannot reach the node in %s: %s\n", home,
            px_strerror(rc));
  }
  return rc;
}

static int reply_ok(const char *reply) {
  return strstr(reply, "\"ok\":true") != NULL;
}

static int cmd_status(px_cli_args_t *a) {
  static const char *const ok[] = {"home", "json", NULL};
  if (px_cli_check_opts(a, ok, 0)) return 2;
  const char *home = px_cli_home(a);
  if (!home) return 2;
  char *reply;
  if (px_cli_control(home, "status", &reply)) return 1;
  int json = 0;
  px_config_get_bool(&a->opts, "json", 0, &json);
  if (json)
    printf("%s\n", reply);
  else
    px_cli_print_status(stdout, reply);
  px_free(reply);
  return 0;
}

static int cmd_gossip(px_cli_args_t *a) {
  static const char *const ok[] = {"home", "topic", "json", NULL};
  if (px_cli_check_opts(a, ok, 0)) return 2;
  const char *home = px_cli_home(a);
  if (!home) return 2;
  if (a->npos != 1) {
    fprintf(stderr,
            "plexus: usage: plexus gossip --home DIR [--topic N] TEXT\n");
    return 2;
  }
  uint64_t topic = 1;
  const char *t = px_config_get(&a->opts, "topic");
  if (t && (px_parse_u64(t, &topic) || topic > 65535)) {
    fprintf(stderr, "plexus: --topic must be a number from 0 to 65535\n");
    return 2;
  }
  if (strchr(a->pos[0], '\n')) {
    fprintf(stderr, "plexus: the gossip text must be one line\n");
    return 2;
  }
  px_buf_t cmd;
  px_buf_init(&cmd, 0);
  px_buf_printf(&cmd, "gossip %llu %s", (unsigned long long)topic, a->pos[0]);
  char *reply;
  int rc = px_cli_control(home, (const char *)cmd.data, &reply);
  px_buf_release(&cmd);
  if (rc) return 1;
  printf("%s\n", reply);
  int good = reply_ok(reply);
  px_free(reply);
  return good ? 0 : 1;
}

static int cmd_request(px_cli_args_t *a) {
  static const char *const ok[] = {"home", "peer", NULL};
  if (px_cli_check_opts(a, ok, 0)) return 2;
  const char *home = px_cli_home(a);
  const char *peer = px_config_get(&a->opts, "peer");
  if (!home) return 2;
  if (!peer || a->npos != 1 || strchr(a->pos[0], '\n')) {
    fprintf(stderr,
            "plexus: usage: plexus request --home DIR --peer NODE_ID TEXT\n");
    return 2;
  }
  px_buf_t cmd;
  px_buf_init(&cmd, 0);
  px_buf_printf(&cmd, "request %s %s", peer, a->pos[0]);
  char *reply;
  int rc = px_cli_control(home, (const char *)cmd.data, &reply);
  px_buf_release(&cmd);
  if (rc) return 1;
  printf("%s\n", reply);
  int good = reply_ok(reply);
  px_free(reply);
  return good ? 0 : 1;
}

static int cmd_stop(px_cli_args_t *a) {
  static const char *const ok[] = {"home", NULL};
  if (px_cli_check_opts(a, ok, 0)) return 2;
  const char *home = px_cli_home(a);
  if (!home) return 2;
  char *reply;
  if (px_cli_control(home, "stop", &reply)) return 1;
  px_free(reply);
  printf("stopping node in %s\n", home);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2) return usage(stderr);
  const char *cmd = argv[1];
  if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h"))
    return usage(stdout);
  if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
    printf("plexus %s (protocol %d)\n", PX_CLI_VERSION, PX_P2P_PROTO);
    return 0;
  }
  if (px_crypto_init()) {
    fprintf(stderr, "plexus: cannot initialise libsodium\n");
    return 1;
  }
  px_cli_args_t *a = px_calloc(1, sizeof *a);
  if (!a) return 1;
  int sub = !strcmp(cmd, "devnet") || !strcmp(cmd, "gateway") ||
            !strcmp(cmd, "model") || px_cli_chain_has_sub(cmd) ||
            px_cli_market_has_sub(cmd) || px_cli_upow_has_sub(cmd);
  if (px_cli_parse(argc - 2 - sub, argv + 2 + sub, a)) {
    px_free(a);
    return 2;
  }
  int help = 0;
  px_config_get_bool(&a->opts, "help", 0, &help);
  int rc;
  if (help)
    rc = usage(stdout);
  else if (!strcmp(cmd, "init"))
    rc = cmd_init(a);
  else if (!strcmp(cmd, "keygen"))
    rc = cmd_keygen(a);
  else if (!strcmp(cmd, "node"))
    rc = cmd_node(a);
  else if (!strcmp(cmd, "status"))
    rc = cmd_status(a);
  else if (!strcmp(cmd, "gossip"))
    rc = cmd_gossip(a);
  else if (!strcmp(cmd, "request"))
    rc = cmd_request(a);
  else if (!strcmp(cmd, "stop"))
    rc = cmd_stop(a);
  else if (!strcmp(cmd, "train"))
    rc = px_cli_train(a);
  else if (!strcmp(cmd, "eval"))
    rc = px_cli_eval(a);
  else if (!strcmp(cmd, "infer"))
    rc = px_cli_infer(a);
  else if (!strcmp(cmd, "generate"))
    rc = px_cli_generate(a);
  else if (!strcmp(cmd, "serve"))
    rc = px_cli_serve(a);
  else if (!strcmp(cmd, "gateway"))
    rc = px_cli_gateway(argc > 2 ? argv[2] : "", a);
  else if (!strcmp(cmd, "model"))
    rc = px_cli_model(argc > 2 ? argv[2] : "", a);
  else if (px_cli_is_upow_cmd(cmd))
    rc = px_cli_upow(cmd, sub && argc > 2 ? argv[2] : "", a);
  else if (px_cli_is_market_cmd(cmd))
    rc = px_cli_market(cmd, sub && argc > 2 ? argv[2] : "", a);
  else if (px_cli_is_chain_cmd(cmd))
    rc = px_cli_chain(cmd, sub && argc > 2 ? argv[2] : "", a);
  else if (sub)
    rc = px_cli_devnet(argc > 2 ? argv[2] : "", a, argv[0]);
  else {
    fprintf(stderr, "plexus: unknown command '%s' (see `plexus help`)\n", cmd);
    rc = 2;
  }
  px_free(a);
  return rc;
}
