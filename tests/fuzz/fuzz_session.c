/*
 * fuzz_session.c — libFuzzer target for an inference session's signed
 * commitment (px_session_commit_decode, plexus/session.h).
 *   - what decodes re-encodes to exactly the input (one value, one
 *     encoding) and survives px_session_commit_verify (any result but a
 *     crash: the signature is random here);
 *   - a decode failure is a decode-class error and leaves the struct zeroed.
 * The tokens hash runs over the input read as i32s too (no crash, fixed
 * output for fixed input).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/session.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  px_session_commit_t c;
  int rc = px_session_commit_decode(d, n, &c);
  if (!rc) {
    px_buf_t b;
    px_buf_init(&b, 0);
    if (px_session_commit_encode(&c, &b)) abort();
    if (b.len != n || memcmp(b.data, d, n)) abort();
    px_buf_release(&b);
    rc = px_session_commit_verify(&c);
    if (rc != 0 && rc != PX_EBADSIG) abort();
  } else {
    if (rc != PX_EDECODE && rc != PX_EVERSION && rc != PX_ETRUNC &&
        rc != PX_ETRAILING)
      abort();
    static const px_session_commit_t zero;
    if (memcmp(&c, &zero, sizeof c)) abort();
  }
  size_t nt = n / 4;
  int32_t *t = malloc(nt ? nt * sizeof(int32_t) : 1);
  if (!t) return 0;
  memcpy(t, d, nt * 4);
  uint8_t h1[32], h2[32];
  px_session_tokens_hash(t, nt, h1);
  px_session_tokens_hash(t, nt, h2);
  if (memcmp(h1, h2, 32)) abort();
  free(t);
  return 0;
}
