/*
 * plexus/models.h — a gateway's model registry: the Llama-style models its
 * network backend serves (docs/api.md "Network inference").
 *
 * `plexus model add --home H --name N --model M.bin --tokenizer T.bin
 * [--template F.json]` checks the checkpoint and tokenizer, puts both in
 * H's blob store (H/blobs, content-addressed by px_blob_root) and records
 * the name -> (model root and size, tokenizer root and size, chat
 * template) in H/models.json, rewritten atomically:
 *
 *   {"models":[{"name":"tiny","model":HEX,"model_size":N,
 *               "tokenizer":HEX,"tokenizer_size":N,"vocab_size":V,
 *               "seq_len":S,"chat_template":{"prefix","message","suffix"}}]}
 *
 * A node with the gateway role (`plexus node --http`) reads it at start:
 * GET /v1/models lists these names and requests for them run as inference
 * sessions on market providers, which fetch the model blob by its root.
 */
#ifndef PLEXUS_MODELS_H
#define PLEXUS_MODELS_H

#include <stddef.h>
#include <stdint.h>

#include "plexus/api.h"
#include "plexus/base.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PX_MODELS_FILE "models.json"
#define PX_MODELS_MAX 64
#define PX_MODEL_NAME_MAX 64 /* incl. NUL; [A-Za-z0-9._:-]+ */

typedef struct {
  char name[PX_MODEL_NAME_MAX];
  uint8_t model[32]; /* px_blob_root of the llama2.c file */
  uint64_t model_size;
  uint8_t tokenizer[32];
  uint64_t tokenizer_size;
  int vocab_size, seq_len;
  px_api_template_t tpl;
} px_model_entry_t;

typedef struct {
  px_model_entry_t *e;
  size_t n;
} px_models_t;

/* Read HOME/models.json strictly (every member known, roots 64 hex,
 * names valid and unique).  PX_ENOENT when there is none; PX_EDECODE /
 * PX_EINVAL with errmsg naming the problem. */
int px_models_load(const char *home, px_models_t *out, char *errmsg,
                   size_t errcap);
/* The same over the file's bytes (fuzz target fuzz_models); why gets the
 * reason.  On error *out is empty. */
int px_models_parse(const void *text, size_t len, px_models_t *out, char *why,
                    size_t whycap);
void px_models_release(px_models_t *m); /* zeroed ok */
/* The entry called name, or NULL. */
const px_model_entry_t *px_models_find(const px_models_t *m, const char *name);

/* Add (or replace) `name`: check the checkpoint (px_llama2c_open) and the
 * tokenizer (for its vocabulary), parse the template file if given, put
 * both blobs into HOME/blobs and rewrite HOME/models.json.  *out (optional)
 * gets the new entry (release its tpl).  errmsg: one line. */
int px_models_add(const char *home, const char *name, const char *model_path,
                  const char *tokenizer_path, const char *template_path,
                  px_model_entry_t *out, char *errmsg, size_t errcap);

#ifdef __cplusplus
}
#endif
#endif /* PLEXUS_MODELS_H */
