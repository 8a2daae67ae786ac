/*
 * http_client.h — a plain blocking HTTP/1.1 client over loopback for the
 * gateway tests: one request per connection ("Connection: close"), the
 * response read to EOF and de-chunked.  Header-only (static functions).
 */
#ifndef PX_TESTS_GATEWAY_HTTP_CLIENT_H
#define PX_TESTS_GATEWAY_HTTP_CLIENT_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static inline int free_port(void) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t al = sizeof a;
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) ||
      getsockname(s, (struct sockaddr *)&a, &al)) {
    if (s >= 0) close(s);
    return -1;
  }
  close(s);
  return ntohs(a.sin_port);
}

static inline int connect_to(int port, int rcvbuf) {
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (s < 0) return -1;
  if (rcvbuf) setsockopt(s, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  struct timeval tv = {30, 0};
  setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons((uint16_t)port);
  if (connect(s, (struct sockaddr *)&a, sizeof a)) {
    close(s);
    return -1;
  }
  return s;
}

static inline int send_all(int s, const void *p, size_t n) {
  const char *c = p;
  while (n) {
    ssize_t w = send(s, c, n, MSG_NOSIGNAL);
    if (w <= 0) return -1;
    c += w;
    n -= (size_t)w;
  }
  return 0;
}

static inline int send_request(int s, const char *method, const char *path,
                               const char *key, const char *body, size_t blen,
                               int close_conn) {
  char head[2048];
  int n = snprintf(head, sizeof head,
                   "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s%s"
                   "Content-Type: application/json\r\nContent-Length: %zu\r\n"
                   "%s\r\n",
                   method, path, key ? "Authorization: Bearer " : "",
                   key ? key : "", key ? "\r\n" : "", body ? blen : 0,
                   close_conn ? "Connection: close\r\n" : "");
  if (send_all(s, head, (size_t)n)) return -1;
  return body && blen ? send_all(s, body, blen) : 0;
}

typedef struct {
  int status;
  char *body; /* de-chunked, NUL-terminated */
  size_t len;
} resp_t;

static inline void resp_free(resp_t *r) {
  free(r->body);
  memset(r, 0, sizeof *r);
}

/* Read to EOF, then split and de-chunk. */
static inline int read_response(int s, resp_t *r) {
  size_t cap = 1 << 16, n = 0;
  char *raw = malloc(cap + 1);
  for (;;) {
    if (n == cap) raw = realloc(raw, (cap *= 2) + 1);
    ssize_t got = recv(s, raw + n, cap - n, 0);
    if (got <= 0) break;
    n += (size_t)got;
  }
  raw[n] = 0;
  memset(r, 0, sizeof *r);
  char *eoh = strstr(raw, "\r\n\r\n");
  if (strncmp(raw, "HTTP/1.1 ", 9) || !eoh) {
    free(raw);
    return -1;
  }
  r->status = atoi(raw + 9);
  *eoh = 0;
  char *b = eoh + 4;
  size_t bl = n - (size_t)(b - raw);
  int chunked = strstr(raw, "chunked") != NULL;
  r->body = malloc(bl + 1);
  if (!chunked) {
    memcpy(r->body, b, bl);
    r->len = bl;
  } else {
    char *p = b, *end = b + bl;
    while (p < end) {
      unsigned long cl = strtoul(p, NULL, 16);
      char *crlf = strstr(p, "\r\n");
      if (!crlf || cl == 0) break;
      p = crlf + 2;
      if (p + cl > end) cl = (unsigned long)(end - p);
      memcpy(r->body + r->len, p, cl);
      r->len += cl;
      p += cl + 2;
    }
  }
  r->body[r->len] = 0;
  free(raw);
  return 0;
}

static inline int http(int port, const char *method, const char *path,
                       const char *key, const char *body, resp_t *r) {
  memset(r, 0, sizeof *r);
  int s = connect_to(port, 0);
  if (s < 0) return -1;
  int rc = send_request(s, method, path, key, body, body ? strlen(body) : 0, 1);
  if (!rc) rc = read_response(s, r);
  close(s);
  return rc;
}

#endif
