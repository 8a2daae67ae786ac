/*
 * fuzz_p2p_msg.c — libFuzzer target for px_msg_decode.
 *
 * Property checked: the decoder never reads outside its input (ASan), only
 * fails with the documented errors, and is canonical — whatever it accepts
 * re-encodes to exactly the input bytes.  Any violation abort()s.
 *
 * The input is decoded from an exact-size heap copy, so one byte of
 * over-read is caught; max_payload is 1 MiB as on the wire.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/base.h"
#include "plexus/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  uint8_t *in = malloc(size ? size : 1);
  if (!in) return 0;
  if (size) memcpy(in, data, size);

  px_msg_t m;
  int rc = px_msg_decode(in, size, 1u << 20, &m);
  if (rc != 0) {
    if (rc != PX_ETRUNC && rc != PX_ETRAILING && rc != PX_ETOOBIG &&
        rc != PX_EDECODE && rc != PX_EVERSION)
      abort();
    free(in);
    return 0;
  }

  px_buf_t b;
  px_buf_init(&b, 0);
  if (px_msg_encode(&m, &b) != 0) abort();
  if (b.len != size || memcmp(b.data, in, size) != 0) abort();
  (void)px_msg_type_name(m.type);
  if (m.type == PX_MSG_GOSSIP) {
    uint8_t id[32];
    px_msg_gossip_id(&m.u.gossip, id);
  }
  px_buf_release(&b);
  free(in);
  return 0;
}
