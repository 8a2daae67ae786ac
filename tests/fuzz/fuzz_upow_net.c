/*
 * fuzz_upow_net.c — the uPoW network decoder (networks arrive from miners
 * and from the store).  Any bytes must decode or fail cleanly; a decoded
 * network must re-encode to exactly the input (canonical encoding), hash,
 * and run a forward pass without reading outside its arrays.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/base.h"
#include "plexus/upow.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  px_upow_net_t n;
  int rc = px_upow_net_decode(data, size, &n);
  if (rc) {
    if (rc >= 0 || n.thr) abort();
    return 0;
  }
  px_buf_t b;
  px_buf_init(&b, 0);
  if (px_upow_net_encode(&n, &b) || b.len != size ||
      memcmp(b.data, data, size) != 0)
    abort();
  uint8_t h[32];
  if (px_upow_net_hash(&n, h)) abort();
  int8_t x[PX_UPOW_N_IN];
  for (int i = 0; i < PX_UPOW_N_IN; i++)
    x[i] = (int8_t)(i % 3 - 1);
  int c = px_upow_net_predict(&n, x);
  if (c < 0 || c >= PX_UPOW_N_OUT) abort();
  px_buf_release(&b);
  px_upow_net_release(&n);
  return 0;
}
