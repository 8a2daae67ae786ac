/*
 * input.c — model input samples from a file, the one reader shared by
 * `plexus infer`, `plexus job submit` and the requester's job_submit.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "plexus/model.h"
#include "plexus/model_io.h"
#include "base/px_internal.h"

static int is_idx(const uint8_t *b, size_t len) {
  return len >= 4 &&
         ((b[0] == 0x1f && b[1] == 0x8b) ||
          (b[0] == 0 && b[1] == 0 && b[2] == 8 && b[3] >= 1 && b[3] <= 4));
}

int px_input_load(const char *path, size_t in, float **x, size_t *n, char *err,
                  size_t cap) {
  uint8_t *buf;
  size_t len;
  *x = NULL;
  *n = 0;
  if (!in) return PX_EINVAL;
  int rc = px_file_read_all(path, (size_t)1 << 30, &buf, &len);
  if (rc) {
    snprintf(err, cap, "%s: %s", path, px_strerror(rc));
    return rc;
  }
  if (is_idx(buf, len)) {
    px_idx_t im;
    rc = px_idx_parse(buf, len, 0, &im);
    if (rc) {
      snprintf(err, cap, "%s: bad IDX file: %s", path, px_strerror(rc));
    } else if (!im.n || im.n % in) {
      snprintf(err, cap,
               "%s: %zu pixels is not a whole number of %zu-pixel images", path,
               im.n, in);
      rc = PX_EDECODE;
    } else {
      *n = im.n / in;
      *x = px_malloc(im.n * sizeof(float));
      if (*x)
        px_net_pixels_to_input(im.data, im.n, *x);
      else
        rc = PX_ENOMEM;
    }
    px_idx_release(&im);
  } else if (!len || len % (in * 4)) {
    snprintf(err, cap,
             "%s: %zu bytes is neither an IDX file nor raw f32 samples of "
             "%zu floats (%zu bytes each)",
             path, len, in, in * 4);
    rc = PX_EDECODE;
  } else {
    *n = len / (in * 4);
    *x = px_malloc(len);
    if (*x)
      memcpy(*x, buf, len);
    else
      rc = PX_ENOMEM;
    for (size_t i = 0; !rc && i < len / 4; i++)
      if (!isfinite((*x)[i])) {
        snprintf(err, cap, "%s: value %zu is not finite", path, i);
        rc = PX_EDECODE;
      }
  }
  px_free(buf);
  if (rc) {
    if (rc == PX_ENOMEM) snprintf(err, cap, "out of memory");
    px_free(*x);
    *x = NULL;
    *n = 0;
  }
  return rc;
}
