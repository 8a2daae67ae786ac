/*
 * queue.c — px_queue_t, the FIFO behind every protocol core's effects.
 *
 * One array holds items[head..len).  A push when the array is full first
 * slides the live items down over consumed ones (head > 0), and only grows
 * (doubling) when that frees nothing, so a queue that is drained after
 * every event never grows past its peak.
 */
#include <string.h>

#include "base/px_internal.h"

void px_queue_init(px_queue_t *q, size_t elem, size_t max) {
  memset(q, 0, sizeof *q);
  q->elem = elem;
  q->max = max;
}

void *px_queue_push(px_queue_t *q) {
  if (q->head == q->len) q->head = q->len = 0;
  if (q->len == q->cap) {
    if (q->head > 0) {
      memmove(q->items, q->items + q->head * q->elem,
              (q->len - q->head) * q->elem);
      q->len -= q->head;
      q->head = 0;
    }
    if (q->len == q->cap) {
      size_t ncap = q->cap ? q->cap * 2 : 32;
      if (q->max && ncap > q->max) ncap = q->max;
      if (ncap <= q->cap || ncap > SIZE_MAX / q->elem) return NULL;
      uint8_t *n = px_realloc(q->items, ncap * q->elem);
      if (!n) return NULL;
      q->items = n;
      q->cap = ncap;
    }
  }
  void *slot = q->items + q->len * q->elem;
  q->len++;
  memset(slot, 0, q->elem);
  return slot;
}

int px_queue_pop(px_queue_t *q, void *out) {
  if (q->head == q->len) return 0;
  memcpy(out, q->items + q->head * q->elem, q->elem);
  if (++q->head == q->len) q->head = q->len = 0;
  return 1;
}

size_t px_queue_count(const px_queue_t *q) { return q->len - q->head; }

void px_queue_release(px_queue_t *q, void (*release)(void *item)) {
  if (release)
    for (size_t i = q->head; i < q->len; i++)
      release(q->items + i * q->elem);
  px_free(q->items);
  q->items = NULL;
  q->head = q->len = q->cap = 0;
}
