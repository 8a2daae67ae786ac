/*
 * template.c — what both inference backends (local.c for `plexus serve`,
 * the network backend node/session_gateway.c) do the same way: render a
 * request into prompt text with the model's chat template, and turn a
 * generated token into the text clients see.  One copy, so a network
 * completion and a local one give the same prompt and the same text.
 *
 * Chat template.  llama2.c checkpoints carry no chat template, so the
 * default is plain text, one line per message, then the assistant's turn:
 *
 *   {role}: {content}\n   ...for each message...
 *   assistant:
 *
 * A JSON document {"chat_template": {"prefix": "...", "message":
 * "..{role}..{content}..", "suffix": "..."}} (all three optional strings)
 * overrides it: MODEL.json beside a checkpoint for `plexus serve`, the
 * --template file of `plexus model add` for a gateway.
 */
#include <string.h>

#include "plexus/api.h"
#include "plexus/json.h"
#include "base/px_internal.h"

static char *dup_str(const char *s) {
  size_t n = strlen(s);
  char *d = px_malloc(n + 1);
  if (d) memcpy(d, s, n + 1);
  return d;
}

void px_api_template_release(px_api_template_t *t) {
  if (!t) return;
  px_free(t->prefix);
  px_free(t->message);
  px_free(t->suffix);
  t->prefix = t->message = t->suffix = NULL;
}

int px_api_template_set(px_api_template_t *t, const char *prefix,
                        const char *message, const char *suffix) {
  px_api_template_t n = {dup_str(prefix ? prefix : ""),
                         dup_str(message ? message : PX_API_TPL_MESSAGE),
                         dup_str(suffix ? suffix : PX_API_TPL_SUFFIX)};
  if (!n.prefix || !n.message || !n.suffix) {
    px_api_template_release(&n);
    return PX_ENOMEM;
  }
  px_api_template_release(t);
  *t = n;
  return 0;
}

int px_api_template_from_json(px_api_template_t *t, const px_json_t *obj) {
  const px_json_t *ct = NULL;
  int rc = px_json_get_object(obj, "chat_template", &ct);
  if (rc == PX_ENOTFOUND) return px_api_template_set(t, NULL, NULL, NULL);
  if (rc) return rc;
  const char *prefix = NULL, *message = NULL, *suffix = NULL;
  if (px_json_get_str(ct, "prefix", &prefix) == PX_EDECODE ||
      px_json_get_str(ct, "message", &message) == PX_EDECODE ||
      px_json_get_str(ct, "suffix", &suffix) == PX_EDECODE)
    return PX_EDECODE;
  for (size_t i = 0; i < ct->n; i++) {
    const char *k = ct->members[i].key;
    if (strcmp(k, "prefix") && strcmp(k, "message") && strcmp(k, "suffix"))
      return PX_EINVAL;
  }
  return px_api_template_set(t, prefix, message, suffix);
}

int px_api_template_parse(px_api_template_t *t, const void *json, size_t n) {
  if (!json) return px_api_template_set(t, NULL, NULL, NULL);
  px_arena_t arena;
  px_arena_init(&arena, 4096, 4u << 20);
  px_json_t *root;
  int rc = px_json_parse(&arena, json, n, NULL, &root, NULL);
  if (!rc && root->type != PX_JSON_OBJECT) rc = PX_EDECODE;
  if (!rc) rc = px_api_template_from_json(t, root);
  px_arena_release(&arena);
  return rc;
}

int px_api_template_write(const px_api_template_t *t, px_json_writer_t *w) {
  px_json_write_object_begin(w);
  px_json_write_key(w, "prefix");
  px_json_write_str(w, t->prefix);
  px_json_write_key(w, "message");
  px_json_write_str(w, t->message);
  px_json_write_key(w, "suffix");
  px_json_write_str(w, t->suffix);
  px_json_write_object_end(w);
  return w->err;
}

/* Append tpl with {role} and {content} substituted. */
static int expand(px_buf_t *out, const char *tpl, const char *role,
                  const char *content) {
  int rc = 0;
  for (const char *p = tpl; *p && !rc;) {
    if (!strncmp(p, "{role}", 6)) {
      rc = px_buf_append(out, role, strlen(role));
      p += 6;
    } else if (!strncmp(p, "{content}", 9)) {
      rc = px_buf_append(out, content, strlen(content));
      p += 9;
    } else {
      rc = px_buf_append(out, p, 1);
      p++;
    }
  }
  return rc;
}

int px_api_template_render(const px_api_template_t *t,
                           const px_api_request_t *req, px_buf_t *out) {
  if (req->kind == PX_API_COMPLETION)
    return px_buf_append(out, req->prompt, strlen(req->prompt));
  int rc = px_buf_append(out, t->prefix, strlen(t->prefix));
  for (size_t i = 0; i < req->n_messages && !rc; i++)
    rc = expand(out, t->message, req->messages[i].role,
                req->messages[i].content);
  if (!rc) rc = px_buf_append(out, t->suffix, strlen(t->suffix));
  return rc;
}

int px_api_token_text(const px_tokenizer_t *tok, int prev, int token,
                      const char **s, size_t *len) {
  if (px_tokenizer_decode(tok, prev, token, s, len)) return 0;
  /* llama2.c's safe_printf: a lone control byte is not text */
  if (*len == 1 && (unsigned char)(*s)[0] < 0x20 && (*s)[0] != '\n' &&
      (*s)[0] != '\t')
    return 0;
  return 1;
}
