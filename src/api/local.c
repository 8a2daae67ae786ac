/*
 * local.c — the local inference backend of `plexus serve`: one llama2.c
 * checkpoint and its tokenizer, run in this process by the deterministic
 * Llama runtime (px_llama_generate, exactly what `plexus generate` runs, so
 * the same prompt, seed, temperature and top_p give the same tokens here,
 * there, streamed or not).
 *
 * The model's KV cache serves one sequence at a time, so generations take
 * a mutex; concurrent requests queue on it (the server caps how many
 * streams may wait).  A request's callback returning non-zero (client gone,
 * stop string seen, max_tokens) ends its generation at once.
 *
 * Chat template (template.c, shared with the network backend): the default
 * unless a file MODEL.json beside the checkpoint holds {"chat_template":
 * {"prefix": "...", "message": "..{role}..{content}..", "suffix": "..."}}
 * (all three optional strings).
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "plexus/api.h"
#include "plexus/compute.h"
#include "plexus/model.h"
#include "plexus/model_io.h"
#include "base/px_internal.h"

#define LOGMOD "api"

typedef struct {
  px_api_backend_t b; /* first: the handle handed out */
  pthread_mutex_t mu;
  px_llama_t *m;
  px_tokenizer_t *tok;
  px_compute_t *c;
  char name[256];
  px_api_template_t tpl;
} local_t;

static size_t l_n_models(void *ud) {
  (void)ud;
  return 1;
}

static const char *l_model_name(void *ud, size_t i) {
  local_t *l = ud;
  return i == 0 ? l->name : NULL;
}

static int l_render(void *ud, const px_api_request_t *req, px_buf_t *out) {
  local_t *l = ud;
  return px_api_template_render(&l->tpl, req, out);
}

typedef struct {
  local_t *l;
  px_api_piece_fn cb;
  void *cbud;
  int max_tokens, n_gen, stopped;
} gen_t;

static int on_token(void *ud, int prev, int token) {
  gen_t *g = ud;
  g->n_gen++;
  const char *s;
  size_t len;
  int stop = 0;
  if (px_api_token_text(g->l->tok, prev, token, &s, &len))
    stop = g->cb(g->cbud, s, len);
  if (stop) g->stopped = 1;
  return stop || g->n_gen >= g->max_tokens;
}

static int l_generate(void *ud, const char *model, const char *prompt,
                      const px_api_gen_opts_t *o, px_api_piece_fn cb,
                      void *cbud, int *n_prompt, int *n_gen,
                      const char **finish) {
  local_t *l = ud;
  *n_prompt = *n_gen = 0;
  *finish = "length";
  if (strcmp(model, l->name)) return PX_ENOTFOUND;
  size_t plen = strlen(prompt), n = 0;
  int *toks = px_malloc((plen + 3) * sizeof(int));
  if (!toks) return PX_ENOMEM;
  int rc = px_tokenizer_encode(l->tok, prompt, plen, 1, 0, toks, plen + 3, &n);
  if (rc) {
    px_free(toks);
    return rc;
  }
  const px_llama2c_config_t *cf = px_llama_config(l->m);
  *n_prompt = (int)n;
  if ((int)n >= cf->seq_len) {
    px_free(toks);
    return PX_ETOOBIG;
  }
  int room = cf->seq_len - (int)n + 1; /* positions n-1 .. seq_len-1 sample */
  int max = o->max_tokens > 0 && o->max_tokens < room ? o->max_tokens : room;
  px_generate_opts_t go = {(int)n - 1 + max, o->temperature, o->top_p, o->seed};
  gen_t g = {l, cb, cbud, max, 0, 0};
  pthread_mutex_lock(&l->mu);
  int produced = 0;
  rc =
      px_llama_generate(l->m, l->c, toks, (int)n, &go, on_token, &g, &produced);
  pthread_mutex_unlock(&l->mu);
  px_free(toks);
  *n_gen = produced;
  /* "stop": the model ended the sequence or the caller stopped it (a stop
   * string); "length": max_tokens or the context ran out. */
  *finish = g.stopped || produced < max ? "stop" : "length";
  return rc;
}

/* MODEL.json's chat_template, if any. */
static int load_template(local_t *l, const char *model_path, char *errmsg,
                         size_t errcap) {
  char path[1200];
  snprintf(path, sizeof path, "%s.json", model_path);
  uint8_t *p = NULL;
  size_t n = 0;
  int rc = px_file_read_all(path, 1 << 20, &p, &n);
  if (rc == 0) {
    rc = px_api_template_parse(&l->tpl, p, n);
    if (rc)
      snprintf(errmsg, errcap,
               "%s: chat_template must be an object of strings prefix, "
               "message, suffix (%s)",
               path, px_strerror(rc));
  } else if (rc == PX_ENOENT) {
    rc = px_api_template_parse(&l->tpl, NULL, 0);
  } else {
    snprintf(errmsg, errcap, "cannot read %s: %s", path, px_strerror(rc));
  }
  px_free(p);
  return rc;
}

int px_api_local_open(const char *model_path, const char *tokenizer_path,
                      const char *name, px_api_backend_t **out, char *errmsg,
                      size_t errcap) {
  *out = NULL;
  errmsg[0] = 0;
  local_t *l = px_calloc(1, sizeof *l);
  if (!l) return PX_ENOMEM;
  pthread_mutex_init(&l->mu, NULL);
  px_llama2c_t *ck = NULL;
  int rc = px_llama2c_open(model_path, &ck);
  if (rc) {
    snprintf(errmsg, errcap,
             "cannot load model %s: %s (expected a llama2.c checkpoint, "
             "version 0, 1 or 2)",
             model_path, px_strerror(rc));
    goto fail;
  }
  if ((rc = px_tokenizer_load(tokenizer_path, ck->cfg.vocab_size, &l->tok))) {
    snprintf(errmsg, errcap,
             "cannot load tokenizer %s: %s (expected llama2.c tokenizer.bin "
             "for a vocabulary of %d)",
             tokenizer_path, px_strerror(rc), ck->cfg.vocab_size);
    goto fail;
  }
  if ((rc = px_llama_new(ck, &l->m))) {
    snprintf(errmsg, errcap, "cannot prepare model %s: %s", model_path,
             px_strerror(rc));
    goto fail;
  }
  px_llama2c_free(ck);
  ck = NULL;
  px_compute_opts_t co = {-1, 0};
  if ((rc = px_compute_new(&co, &l->c))) {
    snprintf(errmsg, errcap, "cannot set up the compute runtime: %s",
             px_strerror(rc));
    goto fail;
  }
  if ((rc = load_template(l, model_path, errmsg, errcap))) goto fail;
  snprintf(l->name, sizeof l->name, "%s", name);
  l->b.ud = l;
  l->b.n_models = l_n_models;
  l->b.model_name = l_model_name;
  l->b.render_prompt = l_render;
  l->b.generate = l_generate;
  *out = &l->b;
  return 0;
fail:
  px_llama2c_free(ck);
  px_api_local_free(&l->b);
  return rc;
}

void px_api_local_free(px_api_backend_t *b) {
  if (!b) return;
  local_t *l = (local_t *)b;
  px_llama_free(l->m);
  px_tokenizer_free(l->tok);
  px_compute_free(l->c);
  px_api_template_release(&l->tpl);
  pthread_mutex_destroy(&l->mu);
  px_free(l);
}
