/*
 * model_io_internal.h — helpers shared by the file-format readers in
 * src/compute (safetensors.c, llama2c.c, idx.c).  Private to libplexus.
 */
#ifndef PX_MODEL_IO_INTERNAL_H
#define PX_MODEL_IO_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Map a regular file read-only.  PX_ETOOBIG past max bytes; an empty file
 * gives *p NULL and *len 0 (no mapping).  Errors from the file system are
 * translated with px_err_from_errno. */
int px_mio_map(const char *path, uint64_t max, void **p, size_t *len);
void px_mio_unmap(void *p, size_t len);

/* Write parts[0..n) to path atomically (tmp + fsync + rename + fsync of the
 * directory), mode 0644. */
typedef struct {
  const void *p;
  size_t n;
} px_mio_part_t;
int px_mio_write_parts(const char *path, const px_mio_part_t *parts, size_t n);

#endif
