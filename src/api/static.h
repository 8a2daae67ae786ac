/*
 * static.h — private to src/api: the web explorer (web/, docs/explorer.md).
 *
 * The files of web/ are compiled in by cmake/embed_web.cmake (the table
 * api_web_files, generated into the build directory) and served by
 * static.c; the explorer's own read-only node routes (/jobs, /upow/epochs)
 * are in node_routes.c.
 */
#ifndef PX_API_STATIC_H
#define PX_API_STATIC_H

#include <stddef.h>

#include "api/api_internal.h"

typedef struct {
  const char *name; /* "index.html": a plain file name, no '/' */
  const unsigned char *data;
  size_t len;
  const char *etag; /* "\"<16 hex digits of its SHA-256>\"" */
} api_web_file_t;

/* NULL-terminated; api_web_n_files entries before the terminator. */
extern const api_web_file_t api_web_files[];
extern const size_t api_web_n_files;

/* The explorer's routes, node role only (api.c calls this before its other
 * chain routes): the static files at / and /NAME, and the read-only
 * GET /jobs, /jobs/{id}, /upow/epochs.  Returns -1 when url is none of
 * them (nothing sent), else the MHD result of the response sent. */
int api_route_explorer(px_api_t *a, struct MHD_Connection *c, req_t *q,
                       const char *url, const char *method);

/* node_routes.c.  GET /jobs?limit=N: the job_status of this node's N most
 * recent jobs; GET /jobs/{id} (id_hex 64 hex digits, checked): one. */
int api_route_jobs_public(px_api_t *a, struct MHD_Connection *c, req_t *q,
                          const char *id_hex);
/* GET /upow/epochs?from=E&limit=N: the models published by epochs
 * from .. from+N-1 (default: the last 50). */
int api_route_upow_epochs(px_api_t *a, struct MHD_Connection *c, req_t *q);

#endif
