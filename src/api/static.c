/*
 * static.c — the web explorer at / (docs/explorer.md).
 *
 * The files of web/ are compiled into the binary (cmake/embed_web.cmake
 * writes them as C arrays into the build directory), so `plexus node
 * --http` serves the explorer from wherever it is installed, with no file
 * beside it to find or lose.  A request path is matched exactly against the
 * table's plain file names ("/" is index.html); nothing is ever looked up
 * on disk, so no path ("/../etc/passwd", "/%2e%2e/", "//x") can reach a
 * file that is not in the table.
 *
 * Responses carry the content type of the name's extension, an ETag (a
 * digest of the content made at build time; If-None-Match answers 304),
 * Cache-Control: no-cache (browsers revalidate, so a new binary's page is
 * seen at once) and a Content-Security-Policy that allows only this origin:
 * the page loads nothing from any other host.
 */
#include <stdio.h>
#include <string.h>

#include <microhttpd.h>

#include "api/api_internal.h"
#include "api/static.h"
#include "base/px_internal.h"

static const char k_csp[] =
    "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'";

static const char *content_type(const char *name) {
  static const struct {
    const char *ext, *type;
  } k[] = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".json", "application/json"},
      {".txt", "text/plain; charset=utf-8"},
  };
  const char *dot = strrchr(name, '.');
  for (size_t i = 0; dot && i < PX_ARRAY_LEN(k); i++)
    if (!strcmp(dot, k[i].ext)) return k[i].type;
  return "application/octet-stream";
}

/* The table entry for a request path, or NULL. */
static const api_web_file_t *find_file(const char *url) {
  if (url[0] != '/') return NULL;
  const char *name = url[1] ? url + 1 : "index.html";
  for (size_t i = 0; i < api_web_n_files; i++)
    if (!strcmp(api_web_files[i].name, name)) return &api_web_files[i];
  return NULL;
}

/* Does an If-None-Match header list etag (or "*")? */
static int etag_matches(const char *inm, const char *etag) {
  size_t n = strlen(etag);
  for (const char *p = inm; p && *p;) {
    while (*p == ' ' || *p == ',')
      p++;
    if (!strncmp(p, "W/", 2)) p += 2;
    if (*p == '*') return 1;
    if (!strncmp(p, etag, n) && (p[n] == 0 || p[n] == ',' || p[n] == ' '))
      return 1;
    p = strchr(p, ',');
  }
  return 0;
}

static int send_file(struct MHD_Connection *c, req_t *q,
                     const api_web_file_t *f) {
  const char *inm =
      MHD_lookup_connection_value(c, MHD_HEADER_KIND, "If-None-Match");
  unsigned status = inm && etag_matches(inm, f->etag) ? 304 : 200;
  struct MHD_Response *r = MHD_create_response_from_buffer(
      status == 304 ? 0 : f->len, (void *)f->data, MHD_RESPMEM_PERSISTENT);
  if (!r) return MHD_NO;
  if (status == 200)
    MHD_add_response_header(r, "Content-Type", content_type(f->name));
  MHD_add_response_header(r, "ETag", f->etag);
  MHD_add_response_header(r, "Cache-Control", "no-cache");
  MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
  MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
  MHD_add_response_header(r, "Content-Security-Policy", k_csp);
  q->status = status;
  q->answered = 1;
  int ok = MHD_queue_response(c, status, r);
  MHD_destroy_response(r);
  return ok;
}

int api_route_explorer(px_api_t *a, struct MHD_Connection *c, req_t *q,
                       const char *url, const char *method) {
  int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
  if (!strcmp(url, "/jobs") || !strncmp(url, "/jobs/", 6)) {
    const char *id = url[5] ? url + 6 : NULL;
    if (id && !api_is_hex(id, 64))
      return api_send_error(c, q, 404, "unknown_route",
                            "no route %s %s: a job id is 64 hex digits", method,
                            url);
    if (!get)
      return api_send_error(c, q, 405, "method_not_allowed",
                            "%s is not allowed on %s (jobs are submitted with "
                            "POST /v1/jobs)",
                            method, url);
    return api_route_jobs_public(a, c, q, id);
  }
  if (!strcmp(url, "/upow/epochs")) {
    if (!get)
      return api_send_error(c, q, 405, "method_not_allowed",
                            "%s is not allowed on %s", method, url);
    return api_route_upow_epochs(a, c, q);
  }
  const api_web_file_t *f = find_file(url);
  if (!f) return -1;
  if (!get)
    return api_send_error(c, q, 405, "method_not_allowed",
                          "%s is not allowed on %s", method, url);
  return send_file(c, q, f);
}
