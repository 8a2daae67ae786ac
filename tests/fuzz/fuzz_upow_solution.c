/*
 * fuzz_upow_solution.c — the uPoW solution decoder (solutions arrive in
 * transactions).  Any bytes must decode or fail cleanly; a decoded solution
 * re-encodes to exactly the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/base.h"
#include "plexus/upow.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  px_upow_solution_t s;
  int rc = px_upow_solution_decode(data, size, &s);
  if (rc) {
    if (rc >= 0) abort();
    return 0;
  }
  px_buf_t b;
  px_buf_init(&b, 0);
  if (px_upow_solution_encode(&s, &b) || b.len != size ||
      memcmp(b.data, data, size) != 0)
    abort();
  px_buf_release(&b);
  return 0;
}
