/*
 * fuzz_safetensors.c — the safetensors reader (model files come from
 * anywhere).  Any bytes must load or fail cleanly; a file that loads must
 * convert every float tensor, and re-writing it with our writer must give a
 * file that loads with the same names, dtypes, shapes, bytes and metadata.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/base.h"
#include "plexus/model_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  px_safetensors_t *st = NULL;
  px_st_limits_t lim = {0};
  lim.max_header = 1u << 20;
  lim.max_tensors = 4096;
  int rc = px_st_open_mem(data, size, &lim, &st);
  if (rc) {
    if (st || rc >= 0) abort();
    return 0;
  }
  size_t n = px_st_count(st), nm = px_st_metadata_count(st);
  px_st_entry_t *e = calloc(n ? n : 1, sizeof *e);
  const char **meta = calloc(nm ? 2 * nm : 1, sizeof *meta);
  if (!e || !meta) abort();
  for (size_t i = 0; i < n; i++) {
    const px_st_tensor_t *t = px_st_at(st, i);
    if (px_st_find(st, t->name) != t) abort();
    if ((const uint8_t *)t->data < data ||
        (const uint8_t *)t->data + t->nbytes > data + size)
      abort();
    if (t->dtype == PX_DTYPE_F32 || t->dtype == PX_DTYPE_F16 ||
        t->dtype == PX_DTYPE_BF16) {
      float *f = malloc(t->numel ? (size_t)t->numel * sizeof(float) : 1);
      if (!f || px_st_to_f32(t, f, (size_t)t->numel) != 0) abort();
      free(f);
    }
    e[i].name = t->name;
    e[i].dtype = t->dtype;
    e[i].ndim = t->ndim;
    memcpy(e[i].shape, t->shape, sizeof e[i].shape);
    e[i].data = t->data;
  }
  for (size_t i = 0; i < nm; i++)
    if (px_st_metadata_at(st, i, &meta[2 * i], &meta[2 * i + 1]) != 0) abort();
  px_buf_t b;
  px_buf_init(&b, 0);
  if (px_st_write_buf(&b, e, n, meta, nm) != 0) abort();
  px_safetensors_t *st2 = NULL;
  if (px_st_open_mem(b.data, b.len, NULL, &st2) != 0) abort();
  if (px_st_count(st2) != n || px_st_metadata_count(st2) != nm) abort();
  for (size_t i = 0; i < n; i++) {
    const px_st_tensor_t *a = px_st_at(st, i), *c = px_st_at(st2, i);
    if (strcmp(a->name, c->name) != 0 || a->dtype != c->dtype ||
        a->ndim != c->ndim || a->numel != c->numel || a->nbytes != c->nbytes ||
        memcmp(a->shape, c->shape, sizeof a->shape) != 0 ||
        (a->nbytes && memcmp(a->data, c->data, a->nbytes) != 0))
      abort();
  }
  for (size_t i = 0; i < nm; i++)
    if (strcmp(px_st_metadata_get(st2, meta[2 * i]), meta[2 * i + 1]) != 0)
      abort();
  px_st_free(st2);
  px_buf_release(&b);
  free(e);
  free(meta);
  px_st_free(st);
  return 0;
}
