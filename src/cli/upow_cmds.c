/*
 * upow_cmds.c — Useful Proof of Work commands (docs/upow.md "Commands"):
 *
 *   plexus mine --home DIR [--off]          turn a running node's miner on
 *   plexus upow status --home DIR [--json]  epoch, difficulty, best score,
 *                                           own solutions and rewards
 *   plexus upow model --home DIR --epoch N --out FILE [--config FILE]
 *        export the network epoch N published (checked against its hash on
 *        chain) as safetensors + config.json
 *   plexus upow eval --model FILE [--config FILE] [--limit N] [--json]
 *        score an exported network on the Fashion-MNIST test set
 *
 * The node does the chain work (control commands `mine on|off`, `upow`,
 * `upow_published N`); the published network itself is the file the node
 * wrote at the epoch's end (HOME/upow/epoch-N.pxun), whose hash must equal
 * the one on chain before anything is exported.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/json.h"
#include "plexus/model_io.h"
#include "plexus/node.h"
#include "plexus/upow.h"
#include "cli/cli.h"
#include "base/px_internal.h"

#define CALL_MS 10000

typedef struct {
  char *text;
  px_arena_t arena;
  px_json_t *root;
} ureply_t;

static void ureply_free(ureply_t *r) {
  free(r->text);
  px_arena_release(&r->arena);
}

static int ucall(const char *home, const char *cmd, ureply_t *r) {
  memset(r, 0, sizeof *r);
  px_arena_init(&r->arena, 1 << 14, 0);
  int rc = px_node_control(home, cmd, &r->text, CALL_MS);
  if (rc == PX_ENOENT || rc == PX_ENET) {
    fprintf(stderr,
            "plexus: no node is running in %s (start one with `plexus node "
            "--home %s`)\n",
            home, home);
    return 1;
  }
  if (rc) {
    fprintf(stderr, "plexus: cannot reach the node in %s: %s\n", home,
            px_strerror(rc));
    return 1;
  }
  if (px_json_parse(&r->arena, r->text, strlen(r->text), NULL, &r->root,
                    NULL)) {
    fprintf(stderr, "plexus: the node sent a malformed reply\n");
    return 1;
  }
  int ok = 0;
  px_json_get_bool(r->root, "ok", &ok);
  if (!ok) {
    const char *msg = "", *err = "";
    px_json_get_str(r->root, "message", &msg);
    px_json_get_str(r->root, "error", &err);
    if (strstr(msg, "unknown command"))
      fprintf(stderr,
              "plexus: the node in %s runs no chain (uPoW needs a chain: "
              "genesis.json in its home)\n",
              home);
    else
      fprintf(stderr, "plexus: %s%s%s\n", err, *msg ? ": " : "", msg);
    return 1;
  }
  return 0;
}

static uint64_t ju(const px_json_t *o, const char *k) {
  uint64_t v = 0;
  px_json_get_u64(o, k, &v);
  return v;
}

static const char *js(const px_json_t *o, const char *k) {
  const char *s = "";
  px_json_get_str(o, k, &s);
  return s;
}

static int flag(const px_cli_args_t *a, const char *k) {
  int v = 0;
  px_config_get_bool(&a->opts, k, 0, &v);
  return v;
}

static int cmd_mine(px_cli_args_t *a) {
  static const char *const ok[] = {"home", "off", "json", NULL};
  if (px_cli_check_opts(a, ok, 0)) return 2;
  const char *home = px_cli_home(a);
  if (!home) return 2;
  ureply_t r;
  int rc = ucall(home, flag(a, "off") ? "mine off" : "mine on", &r);
  if (!rc) {
    int on = 0;
    px_json_get_bool(r.root, "mining", &on);
    if (flag(a, "json"))
      printf("%s\n", r.text);
    else
      printf("mining %s (see `plexus upow status --home %s`)\n",
             on ? "on" : "off", home);
  }
  ureply_free(&r);
  return rc;
}

static int upow_status(px_cli_args_t *a, const char *home) {
  static const char *const ok[] = {"home", "json", NULL};
  if (px_cli_check_opts(a, ok, 0)) return 2;
  ureply_t r;
  if (ucall(home, "upow", &r)) {
    ureply_free(&r);
    return 1;
  }
  if (flag(a, "json")) {
    printf("%s\n", r.text);
    ureply_free(&r);
    return 0;
  }
  const px_json_t *u = px_json_get(r.root, "upow");
  int mining = 0, revealed = 0;
  px_json_get_bool(u, "mining", &mining);
  px_json_get_bool(u, "revealed", &revealed);
  printf("epoch %llu (from block %llu, %llu blocks each)%s\n",
         (unsigned long long)ju(u, "epoch"),
         (unsigned long long)ju(u, "epoch_start"),
         (unsigned long long)ju(u, "epoch_blocks"),
         revealed ? "" : ", task not revealed yet");
  printf("difficulty: score >= parent %llu + margin %llu\n",
         (unsigned long long)ju(u, "parent_score"),
         (unsigned long long)ju(u, "margin"));
  printf("best score this epoch: %llu (%llu valid solutions, deposits held "
         "%llu)\n",
         (unsigned long long)ju(u, "best_score"),
         (unsigned long long)ju(u, "solutions"),
         (unsigned long long)ju(u, "deposits_held"));
  printf("parent network: %s\n", js(u, "parent"));
  const px_json_t *p = px_json_get(u, "published");
  if (p)
    printf("last published: epoch %llu, %s, score %llu (parent %llu), %llu "
           "solutions, reward %llu\n",
           (unsigned long long)ju(p, "epoch"), js(p, "hash"),
           (unsigned long long)ju(p, "score"),
           (unsigned long long)ju(p, "parent_score"),
           (unsigned long long)ju(p, "solutions"),
           (unsigned long long)ju(p, "reward"));
  printf("this node: mining %s, %llu candidates, %llu found, %llu submitted, "
         "%llu pre-emptions (max poll gap %llu us)\n",
         mining ? "on" : "off", (unsigned long long)ju(u, "candidates"),
         (unsigned long long)ju(u, "found"),
         (unsigned long long)ju(u, "submitted"),
         (unsigned long long)ju(u, "preemptions"),
         (unsigned long long)ju(u, "poll_gap_max_us"));
  const px_json_t *o = px_json_get(u, "own");
  if (o)
    printf("on chain: %llu submitted, %llu valid, %llu rejected, rewards "
           "%llu, forfeited %llu\n",
           (unsigned long long)ju(o, "submitted"),
           (unsigned long long)ju(o, "valid"),
           (unsigned long long)ju(o, "rejected"),
           (unsigned long long)ju(o, "rewards"),
           (unsigned long long)ju(o, "forfeited"));
  ureply_free(&r);
  return 0;
}

/* FILE.safetensors -> FILE.config.json; anything else -> FILE.config.json */
static void default_config(const char *st, char *out, size_t cap) {
  size_t n = strlen(st);
  const char *ext = ".safetensors";
  size_t el = strlen(ext);
  if (n > el && !strcmp(st + n - el, ext)) n -= el;
  snprintf(out, cap, "%.*s.config.json", (int)n, st);
}

static int upow_model(px_cli_args_t *a, const char *home) {
  static const char *const ok[] = {"home",   "epoch", "out",
                                   "config", "json",  NULL};
  if (px_cli_check_opts(a, ok, 0)) return 2;
  const char *es = px_config_get(&a->opts, "epoch");
  const char *out = px_config_get(&a->opts, "out");
  uint64_t epoch;
  if (!es || px_parse_u64(es, &epoch) || !out || !*out) {
    fprintf(stderr, "plexus: usage: plexus upow model --home DIR --epoch N "
                    "--out FILE [--config FILE]\n");
    return 2;
  }
  char cfg[4200];
  const char *c = px_config_get(&a->opts, "config");
  if (c && *c)
    snprintf(cfg, sizeof cfg, "%s", c);
  else
    default_config(out, cfg, sizeof cfg);
  char cmd[64];
  snprintf(cmd, sizeof cmd, "upow_published %llu", (unsigned long long)epoch);
  ureply_t r;
  if (ucall(home, cmd, &r)) {
    ureply_free(&r);
    return 1;
  }
  const char *path = js(r.root, "path"), *hash = js(r.root, "hash");
  uint8_t want[32], got[32];
  uint8_t *bytes = NULL;
  size_t len = 0;
  px_upow_net_t net;
  memset(&net, 0, sizeof net);
  int rc = px_file_read_all(path, PX_UPOW_NET_MAX_BYTES, &bytes, &len);
  if (rc) {
    fprintf(stderr,
            "plexus: cannot read %s: %s (the node writes it when epoch %llu "
            "ends; it was not running then)\n",
            path, px_strerror(rc), (unsigned long long)epoch);
    goto fail;
  }
  if ((rc = px_upow_net_decode(bytes, len, &net)) ||
      (rc = px_upow_net_hash(&net, got)) || px_hex_decode(hash, want, 32) ||
      memcmp(got, want, 32)) {
    fprintf(stderr,
            "plexus: %s does not hold the network named on chain for epoch "
            "%llu (%s)\n",
            path, (unsigned long long)epoch, hash);
    rc = PX_EAUTH;
    goto fail;
  }
  if ((rc = px_upow_net_export_safetensors(&net, out, cfg))) {
    fprintf(stderr, "plexus: cannot write %s / %s: %s\n", out, cfg,
            px_strerror(rc));
    goto fail;
  }
  if (flag(a, "json"))
    printf("{\"ok\":true,\"epoch\":%llu,\"hash\":\"%s\",\"out\":\"%s\","
           "\"config\":\"%s\",\"score\":%llu}\n",
           (unsigned long long)epoch, hash, out, cfg,
           (unsigned long long)ju(r.root, "score"));
  else
    printf("epoch %llu network %s -> %s (+ %s)\n", (unsigned long long)epoch,
           hash, out, cfg);
fail:
  px_upow_net_release(&net);
  px_free(bytes);
  ureply_free(&r);
  return rc ? 1 : 0;
}

/* A network exported by `plexus upow model`: FILE.config.json beside it
 * names the upow-ternary family.  `plexus eval` hands such files here. */
int px_cli_upow_is_export(const char *model) {
  char cfg[4200];
  default_config(model, cfg, sizeof cfg);
  uint8_t *buf = NULL;
  size_t len = 0;
  if (px_file_read_all(cfg, 1 << 16, &buf, &len)) return 0;
  int yes = 0;
  for (size_t i = 0; i + 12 <= len && !yes; i++)
    yes = !memcmp(buf + i, "upow-ternary", 12);
  px_free(buf);
  return yes;
}

int px_cli_upow_eval(px_cli_args_t *a) {
  static const char *const ok[] = {"model", "config", "limit",
                                   "data",  "json",   NULL};
  if (px_cli_check_opts(a, ok, 0)) return 2;
  const char *model = px_config_get(&a->opts, "model");
  if (!model || !*model) {
    fprintf(stderr, "plexus: usage: plexus upow eval --model FILE [--config "
                    "FILE] [--limit N] [--json]\n");
    return 2;
  }
  char cfg[4200];
  const char *c = px_config_get(&a->opts, "config");
  if (c && *c)
    snprintf(cfg, sizeof cfg, "%s", c);
  else
    default_config(model, cfg, sizeof cfg);
  uint64_t limit = 0;
  const char *ls = px_config_get(&a->opts, "limit");
  if (ls && px_parse_u64(ls, &limit)) {
    fprintf(stderr, "plexus: --limit must be a whole number\n");
    return 2;
  }
  const char *data = px_config_get(&a->opts, "data");
  const char *dir =
      !data || !strcmp(data, "fashion-mnist") ? PX_FASHION_MNIST_DIR : data;
  px_mnist_t m;
  int rc = px_mnist_load(dir, "t10k", &m);
  if (rc) {
    fprintf(stderr,
            "plexus: cannot load the Fashion-MNIST test set from %s: %s "
            "(install dataset-fashion-mnist)\n",
            dir, px_strerror(rc));
    return 1;
  }
  uint32_t correct = 0, total = 0;
  rc = px_upow_eval_export(model, cfg, &m, (size_t)limit, &correct, &total);
  px_mnist_release(&m);
  if (rc) {
    fprintf(stderr,
            "plexus: cannot score %s (config %s): %s (expected a network "
            "exported by `plexus upow model`)\n",
            model, cfg, px_strerror(rc));
    return 1;
  }
  double acc = total ? 100.0 * correct / total : 0;
  if (flag(a, "json"))
    printf("{\"ok\":true,\"correct\":%u,\"total\":%u,\"accuracy\":%.4f}\n",
           correct, total, acc / 100.0);
  else
    printf("test accuracy %.2f%% (%u / %u)\n", acc, correct, total);
  return 0;
}

int px_cli_is_upow_cmd(const char *cmd) {
  return !strcmp(cmd, "mine") || !strcmp(cmd, "upow");
}

int px_cli_upow_has_sub(const char *cmd) { return !strcmp(cmd, "upow"); }

int px_cli_upow(const char *cmd, const char *sub, px_cli_args_t *a) {
  if (!strcmp(cmd, "mine")) return cmd_mine(a);
  if (!strcmp(sub, "eval")) return px_cli_upow_eval(a);
  if (!strcmp(sub, "status") || !strcmp(sub, "model")) {
    const char *home = px_cli_home(a);
    if (!home) return 2;
    return !strcmp(sub, "status") ? upow_status(a, home) : upow_model(a, home);
  }
  fprintf(stderr, "plexus: usage: plexus upow status|model|eval ... (see "
                  "`plexus help`)\n");
  return 2;
}
