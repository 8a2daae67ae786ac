/*
 * buf.c — growable byte buffers with a hard cap, and arenas.
 *
 * A px_buf_t never grows past `max`: everything that grows from outside
 * input (frames, HTTP bodies, files) is bounded where it is buffered.
 * Growth doubles, so appends are amortised O(1).
 *
 * Arenas chain blocks of `block_size` (larger requests get a block of their
 * own); px_arena_reset frees all but nothing is tracked per allocation.
 */
#include <stdio.h>
#include <string.h>

#include "base/px_internal.h"

void px_buf_init(px_buf_t *b, size_t max) {
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  b->max = max ? max : SIZE_MAX;
}

void px_buf_release(px_buf_t *b) {
  px_free(b->data);
  b->data = NULL;
  b->len = b->cap = 0;
}

void px_buf_reset(px_buf_t *b) { b->len = 0; }

int px_buf_reserve(px_buf_t *b, size_t n) {
  if (n > b->max - b->len) return PX_ETOOBIG;
  size_t need = b->len + n;
  if (need <= b->cap) return 0;
  size_t ncap = b->cap ? b->cap : 64;
  while (ncap < need)
    ncap = (ncap > SIZE_MAX / 2) ? need : ncap * 2;
  if (ncap > b->max && b->max != SIZE_MAX) ncap = PX_MAX(need, b->max);
  uint8_t *p = px_realloc(b->data, ncap);
  if (!p) return PX_ENOMEM;
  b->data = p;
  b->cap = ncap;
  return 0;
}

int px_buf_append(px_buf_t *b, const void *p, size_t n) {
  if (n == 0) return 0;
  int rc = px_buf_reserve(b, n);
  if (rc) return rc;
  memcpy(b->data + b->len, p, n);
  b->len += n;
  return 0;
}

int px_buf_printf(px_buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return PX_EINVAL;
  int rc = px_buf_reserve(b, (size_t)n + 1);
  if (rc) return rc;
  va_start(ap, fmt);
  vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return 0;
}

void px_buf_consume(px_buf_t *b, size_t n) {
  if (n >= b->len) {
    b->len = 0;
    return;
  }
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
}

/* ---- arenas ---- */

struct px_arena_block {
  px_arena_block_t *next;
  size_t used, size;
  _Alignas(16) uint8_t mem[];
};

void px_arena_init(px_arena_t *a, size_t block_size, size_t max) {
  a->head = NULL;
  a->block_size = block_size ? block_size : 64 * 1024;
  a->total = 0;
  a->max = max;
}

void *px_arena_alloc(px_arena_t *a, size_t n) {
  if (n > SIZE_MAX - 15) return NULL;
  n = (n + 15) & ~(size_t)15;
  px_arena_block_t *b = a->head;
  if (!b || b->size - b->used < n) {
    size_t sz = PX_MAX(a->block_size, n);
    if (a->max && (a->total + sz > a->max)) return NULL;
    b = px_malloc(sizeof *b + sz);
    if (!b) return NULL;
    b->size = sz;
    b->used = 0;
    b->next = a->head;
    a->head = b;
    a->total += sz;
  }
  void *p = b->mem + b->used;
  b->used += n;
  memset(p, 0, n);
  return p;
}

void px_arena_reset(px_arena_t *a) { px_arena_release(a); }

void px_arena_release(px_arena_t *a) {
  px_arena_block_t *b = a->head;
  while (b) {
    px_arena_block_t *n = b->next;
    px_free(b);
    b = n;
  }
  a->head = NULL;
  a->total = 0;
}
