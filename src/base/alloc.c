/*
 * alloc.c — the single allocation hook.  Tests install an allocator that
 * fails the Nth call to prove every failure path cleans up (curl's torture
 * approach).  The hook is process-wide by design and documented as the one
 * exception to "no global mutable state" besides the CPU feature table.
 */
#include <stdlib.h>
#include <string.h>

#include "base/px_internal.h"

static px_allocator_t g_alloc; /* zeroed: libc */

void px_set_allocator(const px_allocator_t *a) {
  if (a)
    g_alloc = *a;
  else
    memset(&g_alloc, 0, sizeof g_alloc);
}

void *px_malloc(size_t n) {
  if (n == 0) n = 1;
  if (g_alloc.malloc_fn) return g_alloc.malloc_fn(n, g_alloc.ud);
  return malloc(n);
}

void *px_calloc(size_t count, size_t size) {
  if (size && count > SIZE_MAX / size) return NULL;
  size_t n = count * size;
  void *p = px_malloc(n);
  if (p) memset(p, 0, n ? n : 1);
  return p;
}

void *px_realloc(void *p, size_t n) {
  if (n == 0) n = 1;
  if (g_alloc.realloc_fn) return g_alloc.realloc_fn(p, n, g_alloc.ud);
  return realloc(p, n);
}

void px_free(void *p) {
  if (!p) return;
  if (g_alloc.free_fn)
    g_alloc.free_fn(p, g_alloc.ud);
  else
    free(p);
}

char *px_strdup(const char *s) {
  if (!s) return NULL;
  size_t n = strlen(s) + 1;
  char *d = px_malloc(n);
  if (d) memcpy(d, s, n);
  return d;
}
