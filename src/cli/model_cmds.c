/*
 * model_cmds.c — `plexus model add|list`: the models a gateway home serves
 * over the network (plexus/models.h, docs/api.md "Network inference").
 *
 *   plexus model add --home H --name N --model M.bin --tokenizer T.bin
 *                    [--template F.json]
 *   plexus model list --home H [--json]
 *
 * A running node reads the registry when it starts: restart it (`plexus
 * stop`, `plexus node ... --http ...`) after adding a model.
 */
#include <stdio.h>
#include <string.h>

#include "plexus/models.h"
#include "cli/cli.h"
#include "base/px_internal.h"

static const char *opt(const px_cli_args_t *a, const char *k) {
  const char *v = px_config_get(&a->opts, k);
  return v && strcmp(v, "true") ? v : NULL;
}

static int model_add(px_cli_args_t *a) {
  static const char *const ok[] = {"home",      "name",     "model",
                                   "tokenizer", "template", NULL};
  if (px_cli_check_opts(a, ok, 0)) return 2;
  const char *home = px_cli_home(a);
  if (!home) return 2;
  const char *name = opt(a, "name"), *model = opt(a, "model"),
             *tok = opt(a, "tokenizer"), *tpl = opt(a, "template");
  if (!name || !model || !tok || a->npos) {
    fprintf(stderr, "usage: plexus model add --home DIR --name ID --model "
                    "M.bin --tokenizer T.bin [--template F.json]\n");
    return 2;
  }
  px_model_entry_t e;
  char err[1024];
  int rc = px_models_add(home, name, model, tok, tpl, &e, err, sizeof err);
  if (rc) {
    fprintf(stderr, "plexus: %s\n", err[0] ? err : px_strerror(rc));
    return rc == PX_EINVAL ? 2 : 1;
  }
  char hex[65];
  px_hex_encode(e.model, 32, hex);
  printf("model %s: %s (%llu bytes, vocabulary %d, context %d)\n", e.name, hex,
         (unsigned long long)e.model_size, e.vocab_size, e.seq_len);
  printf("registered in %s/%s; restart the node to serve it\n", home,
         PX_MODELS_FILE);
  px_api_template_release(&e.tpl);
  return 0;
}

static int model_list(px_cli_args_t *a) {
  static const char *const ok[] = {"home", "json", NULL};
  if (px_cli_check_opts(a, ok, 0)) return 2;
  const char *home = px_cli_home(a);
  if (!home) return 2;
  int json = 0;
  px_config_get_bool(&a->opts, "json", 0, &json);
  px_models_t m;
  char err[1024];
  int rc = px_models_load(home, &m, err, sizeof err);
  if (rc && rc != PX_ENOENT) {
    fprintf(stderr, "plexus: %s\n", err);
    return 1;
  }
  if (json) printf("{\"models\":[");
  for (size_t i = 0; i < m.n; i++) {
    char hex[65];
    px_hex_encode(m.e[i].model, 32, hex);
    if (json)
      printf("%s{\"name\":\"%s\",\"model\":\"%s\",\"model_size\":%llu}",
             i ? "," : "", m.e[i].name, hex,
             (unsigned long long)m.e[i].model_size);
    else
      printf("%-24s %s %llu bytes\n", m.e[i].name, hex,
             (unsigned long long)m.e[i].model_size);
  }
  if (json) printf("]}\n");
  if (!json && !m.n)
    printf("no models registered in %s (add one with `plexus model add`)\n",
           home);
  px_models_release(&m);
  return 0;
}

int px_cli_model(const char *sub, px_cli_args_t *a) {
  if (!strcmp(sub, "add")) return model_add(a);
  if (!strcmp(sub, "list")) return model_list(a);
  fprintf(stderr, "usage: plexus model add|list --home DIR ... (see `plexus "
                  "help`)\n");
  return 2;
}
