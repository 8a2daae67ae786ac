/*
 * fuzz_idx.c — the IDX reader, plain and gzip (datasets are downloaded
 * files).  Any bytes must parse or fail cleanly within a 16 MiB
 * decompression cap; a parsed file's element count must match its dims and
 * every element must be readable.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/base.h"
#include "plexus/model_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  px_idx_t x;
  int rc = px_idx_parse(data, size, 16u << 20, &x);
  if (rc) {
    if (rc >= 0 || x.data) abort();
    return 0;
  }
  uint64_t n = 1;
  for (int i = 0; i < x.ndim; i++)
    n *= x.dims[i];
  if (n != x.n || x.ndim < 1 || x.ndim > PX_IDX_MAX_DIMS) abort();
  unsigned sum = 0;
  for (size_t i = 0; i < x.n; i++)
    sum += x.data[i];
  (void)sum;
  px_idx_release(&x);
  return 0;
}
