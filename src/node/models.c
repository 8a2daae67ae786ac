/*
 * models.c — the gateway's model registry, HOME/models.json (plexus/models.h).
 *
 * The registry names blobs by their Merkle root; the bytes live in the
 * node's blob store (blobstore.c), from which providers fetch the model by
 * CHUNK requests and which a SESSION_DISPUTE reads back.  The file is small
 * and rewritten whole, atomically (tmp + fsync + rename), so a crash leaves
 * the old or the new registry, never half of one.
 */
#include <stdio.h>
#include <string.h>

#include "plexus/json.h"
#include "plexus/market.h"
#include "plexus/model_io.h"
#include "plexus/models.h"
#include "node/market_rt.h"
#include "base/px_internal.h"

#define MODELS_MAX_FILE (1u << 20)
#define BLOB_MAX ((size_t)4 << 30)

static int name_ok(const char *s) {
  size_t n = strlen(s);
  if (!n || n >= PX_MODEL_NAME_MAX) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
          (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' ||
          c == '-'))
      return 0;
  }
  return 1;
}

void px_models_release(px_models_t *m) {
  if (!m) return;
  for (size_t i = 0; i < m->n; i++)
    px_api_template_release(&m->e[i].tpl);
  px_free(m->e);
  m->e = NULL;
  m->n = 0;
}

const px_model_entry_t *px_models_find(const px_models_t *m, const char *name) {
  for (size_t i = 0; m && i < m->n; i++)
    if (!strcmp(m->e[i].name, name)) return &m->e[i];
  return NULL;
}

static int get_root(const px_json_t *o, const char *key, uint8_t out[32]) {
  const char *s;
  if (px_json_get_str(o, key, &s) || strlen(s) != 64 ||
      px_hex_decode(s, out, 32))
    return PX_EDECODE;
  return 0;
}

static int entry_decode(const px_json_t *o, px_model_entry_t *e, char *errmsg,
                        size_t errcap) {
  static const char *const known[] = {
      "name",           "model",      "model_size", "tokenizer",
      "tokenizer_size", "vocab_size", "seq_len",    "chat_template"};
  if (!o || o->type != PX_JSON_OBJECT) {
    snprintf(errmsg, errcap, "a model entry is not an object");
    return PX_EDECODE;
  }
  for (size_t i = 0; i < o->n; i++) {
    int ok = 0;
    for (size_t j = 0; j < PX_ARRAY_LEN(known) && !ok; j++)
      ok = !strcmp(o->members[i].key, known[j]);
    if (!ok) {
      snprintf(errmsg, errcap, "unknown member '%s' in a model entry",
               o->members[i].key);
      return PX_EINVAL;
    }
  }
  const char *name;
  uint64_t vs, sl;
  if (px_json_get_str(o, "name", &name) || !name_ok(name)) {
    snprintf(errmsg, errcap, "a model entry has no valid name");
    return PX_EINVAL;
  }
  snprintf(e->name, sizeof e->name, "%s", name);
  if (get_root(o, "model", e->model) ||
      get_root(o, "tokenizer", e->tokenizer) ||
      px_json_get_u64(o, "model_size", &e->model_size) || !e->model_size ||
      px_json_get_u64(o, "tokenizer_size", &e->tokenizer_size) ||
      !e->tokenizer_size || px_json_get_u64(o, "vocab_size", &vs) || !vs ||
      vs > PX_LLAMA2C_MAX_DIM || px_json_get_u64(o, "seq_len", &sl) || !sl ||
      sl > PX_LLAMA2C_MAX_DIM) {
    snprintf(errmsg, errcap,
             "model '%s': model, tokenizer (64 hex), model_size, "
             "tokenizer_size, vocab_size and seq_len (positive) are needed",
             e->name);
    return PX_EDECODE;
  }
  e->vocab_size = (int)vs;
  e->seq_len = (int)sl;
  int rc = px_api_template_from_json(&e->tpl, o);
  if (rc)
    snprintf(errmsg, errcap,
             "model '%s': chat_template must be an object of strings prefix, "
             "message, suffix",
             e->name);
  return rc;
}

int px_models_parse(const void *text, size_t len, px_models_t *out, char *why,
                    size_t whycap) {
  memset(out, 0, sizeof *out);
  why[0] = 0;
  px_arena_t arena;
  px_arena_init(&arena, 4096, 16u << 20);
  px_json_t *root;
  const px_json_t *arr = NULL;
  int rc = px_json_parse(&arena, text, len, NULL, &root, NULL);
  if (!rc && (root->type != PX_JSON_OBJECT || root->n != 1 ||
              px_json_get_array(root, "models", &arr))) {
    snprintf(why, whycap, "expected {\"models\":[...]}");
    rc = PX_EDECODE;
  }
  if (!rc && arr->n > PX_MODELS_MAX) {
    snprintf(why, whycap, "more than %d models", PX_MODELS_MAX);
    rc = PX_ELIMIT;
  }
  if (!rc && arr->n && !(out->e = px_calloc(arr->n, sizeof *out->e)))
    rc = PX_ENOMEM;
  for (size_t i = 0; !rc && i < arr->n; i++) {
    rc = entry_decode(arr->items[i], &out->e[i], why, whycap);
    out->n = i + 1;
    for (size_t j = 0; !rc && j < i; j++)
      if (!strcmp(out->e[j].name, out->e[i].name)) {
        snprintf(why, whycap, "the name '%s' appears twice", out->e[i].name);
        rc = PX_EINVAL;
      }
  }
  if (rc) {
    if (!why[0]) snprintf(why, whycap, "%s", px_strerror(rc));
    px_models_release(out);
  }
  px_arena_release(&arena);
  return rc;
}

int px_models_load(const char *home, px_models_t *out, char *errmsg,
                   size_t errcap) {
  memset(out, 0, sizeof *out);
  errmsg[0] = 0;
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", home, PX_MODELS_FILE);
  uint8_t *p = NULL;
  size_t n = 0;
  int rc = px_file_read_all(path, MODELS_MAX_FILE, &p, &n);
  if (rc) {
    if (rc != PX_ENOENT)
      snprintf(errmsg, errcap, "cannot read %s: %s", path, px_strerror(rc));
    return rc;
  }
  char why[256];
  rc = px_models_parse(p, n, out, why, sizeof why);
  if (rc)
    snprintf(errmsg, errcap,
             "%s is not a valid model registry (%s): fix it or add the models "
             "again with `plexus model add`",
             path, why);
  px_free(p);
  return rc;
}

static int models_write(const char *home, const px_models_t *m) {
  px_buf_t b;
  px_buf_init(&b, 0);
  px_json_writer_t w;
  px_json_writer_init(&w, &b);
  px_json_write_object_begin(&w);
  px_json_write_key(&w, "models");
  px_json_write_array_begin(&w);
  for (size_t i = 0; i < m->n; i++) {
    const px_model_entry_t *e = &m->e[i];
    char hex[65];
    px_json_write_object_begin(&w);
    px_json_write_key(&w, "name");
    px_json_write_str(&w, e->name);
    px_hex_encode(e->model, 32, hex);
    px_json_write_key(&w, "model");
    px_json_write_str(&w, hex);
    px_json_write_key(&w, "model_size");
    px_json_write_u64(&w, e->model_size);
    px_hex_encode(e->tokenizer, 32, hex);
    px_json_write_key(&w, "tokenizer");
    px_json_write_str(&w, hex);
    px_json_write_key(&w, "tokenizer_size");
    px_json_write_u64(&w, e->tokenizer_size);
    px_json_write_key(&w, "vocab_size");
    px_json_write_u64(&w, (uint64_t)e->vocab_size);
    px_json_write_key(&w, "seq_len");
    px_json_write_u64(&w, (uint64_t)e->seq_len);
    px_json_write_key(&w, "chat_template");
    px_api_template_write(&e->tpl, &w);
    px_json_write_object_end(&w);
  }
  px_json_write_array_end(&w);
  px_json_write_object_end(&w);
  int rc = px_json_writer_finish(&w);
  if (!rc) rc = px_buf_append(&b, "\n", 1);
  char path[4200];
  snprintf(path, sizeof path, "%s/%s", home, PX_MODELS_FILE);
  if (!rc) rc = px_file_write_atomic(path, b.data, b.len, 0600);
  px_buf_release(&b);
  return rc;
}

/* Read a file and put it in the blob store. */
static int put_file(px_blobstore_t *bs, const char *path, uint8_t root[32],
                    uint64_t *size, char *errmsg, size_t errcap) {
  uint8_t *p = NULL;
  size_t n = 0;
  int rc = px_file_read_all(path, BLOB_MAX, &p, &n);
  if (!rc) rc = px_blobstore_put(bs, p, n, root);
  if (rc)
    snprintf(errmsg, errcap, "cannot store %s in the blob store: %s", path,
             px_strerror(rc));
  *size = n;
  px_free(p);
  return rc;
}

int px_models_add(const char *home, const char *name, const char *model_path,
                  const char *tokenizer_path, const char *template_path,
                  px_model_entry_t *out, char *errmsg, size_t errcap) {
  errmsg[0] = 0;
  if (out) memset(out, 0, sizeof *out);
  if (!name_ok(name)) {
    snprintf(errmsg, errcap,
             "the model name '%s' must be 1 to %d characters of A-Z a-z 0-9 "
             ". _ : -",
             name, PX_MODEL_NAME_MAX - 1);
    return PX_EINVAL;
  }
  px_model_entry_t e;
  memset(&e, 0, sizeof e);
  snprintf(e.name, sizeof e.name, "%s", name);
  px_llama2c_t *ck = NULL;
  px_tokenizer_t *tok = NULL;
  px_blobstore_t *bs = NULL;
  px_models_t reg = {0};
  uint8_t *tp = NULL;
  int rc = px_llama2c_open(model_path, &ck);
  if (rc) {
    snprintf(errmsg, errcap,
             "cannot load model %s: %s (expected a llama2.c checkpoint, "
             "version 0, 1 or 2)",
             model_path, px_strerror(rc));
    goto done;
  }
  e.vocab_size = ck->cfg.vocab_size;
  e.seq_len = ck->cfg.seq_len;
  if ((rc = px_tokenizer_load(tokenizer_path, e.vocab_size, &tok))) {
    snprintf(errmsg, errcap,
             "cannot load tokenizer %s: %s (expected llama2.c tokenizer.bin "
             "for a vocabulary of %d)",
             tokenizer_path, px_strerror(rc), e.vocab_size);
    goto done;
  }
  if (template_path) {
    size_t tn = 0;
    rc = px_file_read_all(template_path, 1u << 20, &tp, &tn);
    if (!rc) rc = px_api_template_parse(&e.tpl, tp, tn);
    if (rc) {
      snprintf(errmsg, errcap,
               "%s: expected {\"chat_template\":{\"prefix\",\"message\","
               "\"suffix\"}} with string values (%s)",
               template_path, px_strerror(rc));
      goto done;
    }
  } else if ((rc = px_api_template_set(&e.tpl, NULL, NULL, NULL))) {
    goto done;
  }
  rc = px_models_load(home, &reg, errmsg, errcap);
  if (rc == PX_ENOENT)
    rc = 0;
  else if (rc)
    goto done;
  if ((rc = px_blobstore_open(home, &bs))) {
    snprintf(errmsg, errcap, "cannot open the blob store under %s: %s", home,
             px_strerror(rc));
    goto done;
  }
  if ((rc = put_file(bs, model_path, e.model, &e.model_size, errmsg, errcap)) ||
      (rc = put_file(bs, tokenizer_path, e.tokenizer, &e.tokenizer_size, errmsg,
                     errcap)))
    goto done;
  size_t i = 0;
  while (i < reg.n && strcmp(reg.e[i].name, name))
    i++;
  if (i == reg.n) {
    if (reg.n >= PX_MODELS_MAX) {
      snprintf(errmsg, errcap, "the registry already holds %d models",
               PX_MODELS_MAX);
      rc = PX_ELIMIT;
      goto done;
    }
    px_model_entry_t *ne = px_realloc(reg.e, (reg.n + 1) * sizeof *ne);
    if (!ne) {
      rc = PX_ENOMEM;
      goto done;
    }
    reg.e = ne;
    memset(&reg.e[reg.n], 0, sizeof *ne);
    reg.n++;
  }
  px_api_template_release(&reg.e[i].tpl);
  reg.e[i] = e; /* the registry owns e's template now */
  memset(&e.tpl, 0, sizeof e.tpl);
  if ((rc = models_write(home, &reg))) {
    snprintf(errmsg, errcap, "cannot write %s/%s: %s", home, PX_MODELS_FILE,
             px_strerror(rc));
    goto done;
  }
  if (out) {
    *out = reg.e[i];
    memset(&out->tpl, 0, sizeof out->tpl);
    rc = px_api_template_set(&out->tpl, reg.e[i].tpl.prefix,
                             reg.e[i].tpl.message, reg.e[i].tpl.suffix);
  }
done:
  px_api_template_release(&e.tpl);
  px_models_release(&reg);
  px_blobstore_free(bs);
  px_tokenizer_free(tok);
  px_llama2c_free(ck);
  px_free(tp);
  return rc;
}
