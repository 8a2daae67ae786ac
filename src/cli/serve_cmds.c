/*
 * serve_cmds.c — `plexus serve` (a local OpenAI-compatible server over one
 * llama2.c model, no network) and `plexus gateway key new` (API keys for
 * a gateway home).  docs/api.md describes the HTTP API both serve.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "plexus/api.h"
#include "plexus/crypto.h"
#include "cli/cli.h"
#include "base/px_internal.h"

static int opt_u64(const px_cli_args_t *a, const char *key, uint64_t lo,
                   uint64_t hi, uint64_t *v) {
  const char *s = px_config_get(&a->opts, key);
  if (!s) return 0;
  uint64_t u;
  if (px_parse_u64(s, &u) || u < lo || u > hi) {
    fprintf(stderr, "plexus: --%s must be a whole number from %llu to %llu\n",
            key, (unsigned long long)lo, (unsigned long long)hi);
    return -1;
  }
  *v = u;
  return 0;
}

/* The model id: --name, else the checkpoint's file name without ".bin". */
static void model_name(const char *path, const char *name, char *out,
                       size_t cap) {
  if (name) {
    snprintf(out, cap, "%s", name);
    return;
  }
  const char *b = strrchr(path, '/');
  b = b ? b + 1 : path;
  size_t n = strlen(b);
  if (n > 4 && !strcmp(b + n - 4, ".bin")) n -= 4;
  snprintf(out, cap, "%.*s", (int)n, b);
}

int px_cli_serve(px_cli_args_t *a) {
  static const char *const ok[] = {
      "model",   "tokenizer",          "name",     "http",
      "home",    "max-streams",        "max-body", "timeout",
      "key-rpm", "key-tokens-per-day", NULL};
  if (px_cli_check_opts(a, ok, 1)) return 2;
  const char *model = px_config_get(&a->opts, "model");
  if (!model || !strcmp(model, "true")) {
    fprintf(stderr, "plexus: serve needs --model FILE (a llama2.c "
                    "checkpoint)\n");
    return 2;
  }
  char tokdef[1024];
  const char *tok = px_config_get(&a->opts, "tokenizer");
  if (!tok) { /* tokenizer.bin beside the model */
    const char *sl = strrchr(model, '/');
    snprintf(tokdef, sizeof tokdef, "%.*stokenizer.bin",
             sl ? (int)(sl - model + 1) : 0, model);
    tok = tokdef;
  }
  const char *http = px_config_get(&a->opts, "http");
  if (!http) http = "127.0.0.1:8080";
  const char *home = px_config_get(&a->opts, "home");
  uint64_t max_streams = 8, max_body = 1u << 20, timeout = 30;
  px_api_quota_t kq = {0, 0}; /* keys without their own quota */
  if (opt_u64(a, "max-streams", 1, 1024, &max_streams) ||
      opt_u64(a, "max-body", 1024, 1u << 30, &max_body) ||
      opt_u64(a, "timeout", 1, 3600, &timeout) ||
      opt_u64(a, "key-rpm", 0, PX_API_QUOTA_MAX, &kq.rpm) ||
      opt_u64(a, "key-tokens-per-day", 0, PX_API_QUOTA_MAX, &kq.tokens_per_day))
    return 2;
  const char *lvl = px_config_get(&a->opts, "log.level");
  px_log_level_t ll;
  if (lvl && !px_log_parse_level(lvl, &ll)) px_log_set_level(ll);
  if (px_crypto_init()) {
    fprintf(stderr, "plexus: cannot initialise libsodium\n");
    return 1;
  }
  char name[256], err[1024];
  model_name(model, px_config_get(&a->opts, "name"), name, sizeof name);
  px_api_backend_t *be = NULL;
  int rc = px_api_local_open(model, tok, name, &be, err, sizeof err);
  if (rc) {
    fprintf(stderr, "plexus: %s\n", err[0] ? err : px_strerror(rc));
    return 1;
  }
  /* Signals are taken by sigwait below; block them before the server's
   * threads start so they inherit the mask. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);
  px_api_config_t ac = {.listen = http,
                        .home = home,
                        .max_body = (size_t)max_body,
                        .max_streams = (unsigned)max_streams,
                        .idle_timeout_s = (unsigned)timeout,
                        .backend = be,
                        .key_quota = kq};
  px_api_t *api = NULL;
  int ret = 1;
  if ((rc = px_api_open(&ac, &api, err, sizeof err)) ||
      (rc = px_api_start(api, err, sizeof err))) {
    fprintf(stderr, "plexus: %s\n", err[0] ? err : px_strerror(rc));
    goto done;
  }
  printf("serving %s on http://%s (OpenAI-compatible: /v1/models, "
         "/v1/completions, /v1/chat/completions)\n",
         name, px_api_address(api));
  fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  fprintf(stderr, "plexus: %s: stopping\n",
          sig == SIGINT ? "SIGINT" : "SIGTERM");
  ret = 0;
done:
  px_api_free(api);
  px_api_local_free(be);
  return ret;
}

/* `plexus gateway key new --home DIR [--rpm N] [--tokens-per-day T]`: the
 * key pays from the home's wallet (wallet.key, else the node key); its own
 * quota, if given, is stored on its line (docs/api.md "Quotas"). */
int px_cli_gateway(const char *sub, px_cli_args_t *a) {
  static const char *const ok[] = {"home", "rpm", "tokens-per-day", NULL};
  if (strcmp(sub, "key") || a->npos != 1 || strcmp(a->pos[0], "new")) {
    fprintf(stderr, "usage: plexus gateway key new --home DIR [--rpm N] "
                    "[--tokens-per-day T]\n");
    return 2;
  }
  if (px_cli_check_opts(a, ok, 0)) return 2;
  px_api_quota_t quota = {PX_API_QUOTA_UNSET, PX_API_QUOTA_UNSET};
  if (opt_u64(a, "rpm", 0, PX_API_QUOTA_MAX, &quota.rpm) ||
      opt_u64(a, "tokens-per-day", 0, PX_API_QUOTA_MAX, &quota.tokens_per_day))
    return 2;
  const char *home = px_cli_home(a);
  if (!home) return 2;
  if (px_crypto_init()) return 1;
  char path[1024];
  px_keypair_t kp;
  snprintf(path, sizeof path, "%s/wallet.key", home);
  int rc = px_keyfile_read(path, &kp);
  if (rc == PX_ENOENT) {
    snprintf(path, sizeof path, "%s/node.key", home);
    rc = px_keyfile_read(path, &kp);
  }
  if (rc) {
    fprintf(stderr,
            "plexus: cannot read a wallet in %s (%s): run `plexus init --home "
            "%s` or `plexus wallet new --home %s` first\n",
            home, px_strerror(rc), home, home);
    return 1;
  }
  char key[PX_API_KEY_LEN + 1];
  rc = px_api_key_new_quota(home, kp.pk, &quota, key);
  char wh[65];
  px_hex_encode(kp.pk, 32, wh);
  px_key_wipe(&kp);
  if (rc) {
    fprintf(stderr, "plexus: cannot add a key to %s/%s: %s\n", home,
            PX_API_KEYS_FILE, px_strerror(rc));
    return 1;
  }
  printf("%s\n", key);
  fprintf(stderr,
          "new API key for wallet %s (stored hashed in %s/%s; shown once, "
          "keep it)\n",
          wh, home, PX_API_KEYS_FILE);
  sodium_memzero(key, sizeof key);
  return 0;
}
