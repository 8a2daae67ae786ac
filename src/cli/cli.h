/* cli.h — shared pieces of the plexus command (private to src/cli/). */
#ifndef PX_CLI_H
#define PX_CLI_H

#include <stdio.h>

#include "plexus/base.h"

#define PX_CLI_VERSION "0.1.0"

typedef struct {
  px_config_t opts;    /* every --key value given */
  const char *pos[16]; /* positional arguments */
  size_t npos;
} px_cli_args_t;

int px_cli_parse(int argc, char **argv, px_cli_args_t *a);
void px_cli_config_flags(const px_cli_args_t *a, px_config_t *out);
int px_cli_check_opts(const px_cli_args_t *a, const char *const *allowed,
                      int allow_config);
const char *px_cli_home(const px_cli_args_t *a);
int px_cli_control(const char *home, const char *cmd, char **reply);
/* Human-readable rendering of a node's status JSON. */
void px_cli_print_status(FILE *f, const char *json);
/* Pull a top-level-ish scalar out of our own status JSON ("" if absent). */
void px_cli_json_field(const char *json, const char *key, char *out,
                       size_t cap);
int px_cli_devnet(const char *sub, px_cli_args_t *a, const char *argv0);
/* Chain commands (chain_cmds.c): wallet, stake, unstake, tx, query,
 * verify-proof, chain.  has_sub: the command takes a subcommand word. */
int px_cli_is_chain_cmd(const char *cmd);
int px_cli_chain_has_sub(const char *cmd);
int px_cli_chain(const char *cmd, const char *sub, px_cli_args_t *a);
/* genesis.json in every dir: the first nval node keys are validators, each
 * dir gets a funded wallet.key (made if absent). */
int px_cli_chain_genesis(const char *const *dirs, size_t ndirs, size_t nval,
                         const char *chain_id);
/* Market commands (market_cmds.c): provide, providers, job
 * submit|status|result|list. */
int px_cli_is_market_cmd(const char *cmd);
int px_cli_market_has_sub(const char *cmd);
int px_cli_market(const char *cmd, const char *sub, px_cli_args_t *a);
/* An input file for a model taking `in` floats per sample: IDX images
 * (scaled as in training) or raw f32 LE; heap *x (px_free), *n samples.
 * Prints the error; -1 on failure. */
int px_cli_read_input(const char *path, size_t in, float **x, size_t *n);
/* uPoW commands (upow_cmds.c): mine, upow status|model|eval. */
int px_cli_is_upow_cmd(const char *cmd);
int px_cli_upow_has_sub(const char *cmd);
int px_cli_upow(const char *cmd, const char *sub, px_cli_args_t *a);
/* Model commands (compute_cmds.c). */
int px_cli_train(px_cli_args_t *a);
int px_cli_eval(px_cli_args_t *a);
int px_cli_infer(px_cli_args_t *a);
int px_cli_generate(px_cli_args_t *a);
/* Gateway commands (serve_cmds.c): serve (local OpenAI-compatible server),
 * gateway key new. */
int px_cli_serve(px_cli_args_t *a);
int px_cli_gateway(const char *sub, px_cli_args_t *a);
/* Model registry commands (model_cmds.c): model add|list. */
int px_cli_model(const char *sub, px_cli_args_t *a);

/* uPoW exports (upow_cmds.c): detection and scoring, used by `plexus eval`. */
int px_cli_upow_is_export(const char *model);
int px_cli_upow_eval(px_cli_args_t *a);

#endif
