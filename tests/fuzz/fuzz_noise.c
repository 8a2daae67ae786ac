/*
 * fuzz_noise.c — libFuzzer target for the Noise XX handshake reader
 * (src/p2p/noise.c).
 *
 * The input is a sequence of chunks, each a u16 little-endian length and
 * that many bytes (the last chunk may be short):
 *
 *   chunk 0  message 1, read by a fresh responder; if accepted, the
 *            responder writes message 2;
 *   chunk 1  message 2, read by an initiator that has already written
 *            message 1 with a fixed ephemeral key; if accepted, it writes
 *            message 3 and splits;
 *   chunk 2  message 3, read by the responder; if accepted, it splits;
 *   chunk 3+ transport messages, decrypted by the initiator (and by the
 *            responder, which must reject what it did not get from the
 *            initiator).
 *
 * Keys, prologue and payloads are those of the cacophony vector in
 * tests/vectors/noise_xx_25519_chachapoly_sha256.txt, so the real messages
 * of that vector walk the whole handshake: the seeds in
 * tests/fuzz/corpus/noise/ are its messages in this chunk format (written by
 * tests/unit/test_noise.c when PX_NOISE_CORPUS_DIR is set) plus junk.
 *
 * Nothing may crash, read out of bounds or leak; beyond that the target
 * checks the module's contract: a failed read leaves the handshake dead,
 * and two sides that both finished agree on the handshake hash.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "p2p/noise.h"
#include "plexus/base.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t k_prologue[] = "John Galt"; /* 9 bytes used */
static const uint8_t k_init_static[32] = {
    0xe6, 0x1e, 0xf9, 0x91, 0x9c, 0xde, 0x45, 0xdd, 0x5f, 0x82, 0x16,
    0x64, 0x04, 0xbd, 0x08, 0xe3, 0x8b, 0xce, 0xb5, 0xdf, 0xdf, 0xde,
    0xd0, 0xa3, 0x4c, 0x8d, 0xf7, 0xed, 0x54, 0x22, 0x14, 0xd1};
static const uint8_t k_init_ephemeral[32] = {
    0x89, 0x3e, 0x28, 0xb9, 0xdc, 0x6c, 0xa8, 0xd6, 0x11, 0xab, 0x66,
    0x47, 0x54, 0xb8, 0xce, 0xb7, 0xba, 0xc5, 0x11, 0x73, 0x49, 0xa4,
    0x43, 0x9a, 0x6b, 0x05, 0x69, 0xda, 0x97, 0x7c, 0x46, 0x4a};
static const uint8_t k_resp_static[32] = {
    0x4a, 0x3a, 0xcb, 0xfd, 0xb1, 0x63, 0xde, 0xc6, 0x51, 0xdf, 0xa3,
    0x19, 0x4d, 0xec, 0xe6, 0x76, 0xd4, 0x37, 0x02, 0x9c, 0x62, 0xa4,
    0x08, 0xb4, 0xc5, 0xea, 0x91, 0x14, 0x24, 0x6e, 0x48, 0x93};
static const uint8_t k_resp_ephemeral[32] = {
    0xbb, 0xdb, 0x4c, 0xdb, 0xd3, 0x09, 0xf1, 0xa1, 0xf2, 0xe1, 0x45,
    0x69, 0x67, 0xfe, 0x28, 0x8c, 0xad, 0xd6, 0xf7, 0x12, 0xd6, 0x5d,
    0xc7, 0xb7, 0x79, 0x3d, 0x5e, 0x63, 0xda, 0x6b, 0x37, 0x5b};
static const uint8_t k_payload1[] = "Ludwig von Mises"; /* 16 bytes used */
static const uint8_t k_payload2[] = "Murray Rothbard";  /* 15 */
static const uint8_t k_payload3[] = "F. A. Hayek";      /* 11 */

static uint8_t g_out[PX_NOISE_MAX_MSG];
static uint8_t g_pay[PX_NOISE_MAX_MSG];

/* Next chunk; returns 0 when the input is exhausted. */
static int next_chunk(const uint8_t **p, size_t *left, const uint8_t **chunk,
                      size_t *len) {
  size_t n;
  if (*left < 2) return 0;
  n = (size_t)(*p)[0] | ((size_t)(*p)[1] << 8);
  *p += 2;
  *left -= 2;
  if (n > *left) n = *left;
  *chunk = *p;
  *len = n;
  *p += n;
  *left -= n;
  return 1;
}

static void expect_dead(px_noise_hs_t *hs) {
  size_t n = 0;
  if (px_noise_hs_done(hs) ||
      px_noise_hs_write(hs, NULL, 0, g_out, sizeof g_out, &n) != PX_ESTATE ||
      px_noise_hs_read(hs, g_out, 64, g_pay, sizeof g_pay, &n) != PX_ESTATE)
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  px_noise_hs_t ini, res;
  px_noise_cipher_t i_send, i_recv, r_send, r_recv;
  const uint8_t *p = data, *chunk = NULL;
  size_t left = size, len = 0, n = 0, plen = 0;
  int ini_split = 0, res_split = 0, rc;

  if (px_noise_hs_init(&ini, 1, k_prologue, 9, k_init_static, NULL, NULL) ||
      px_noise_hs_init(&res, 0, k_prologue, 9, k_resp_static, NULL, NULL))
    abort();
  px_noise_hs_set_ephemeral(&ini, k_init_ephemeral);
  px_noise_hs_set_ephemeral(&res, k_resp_ephemeral);
  if (px_noise_hs_write(&ini, k_payload1, 16, g_out, sizeof g_out, &n) != 0)
    abort();

  /* chunk 0 -> responder, as message 1 */
  if (!next_chunk(&p, &left, &chunk, &len)) goto out;
  rc = px_noise_hs_read(&res, chunk, len, g_pay, sizeof g_pay, &plen);
  if (rc == 0) {
    if (plen != len - 32) abort();
    /* a low-order e makes this fail with PX_ECRYPTO; that is fine */
    rc = px_noise_hs_write(&res, k_payload2, 15, g_out, sizeof g_out, &n);
    if (rc != 0 && rc != PX_ECRYPTO) abort();
  } else if (rc != PX_EHANDSHAKE && rc != PX_ETOOBIG) {
    abort();
  } else {
    expect_dead(&res);
  }

  /* chunk 1 -> initiator, as message 2 */
  if (!next_chunk(&p, &left, &chunk, &len)) goto out;
  rc = px_noise_hs_read(&ini, chunk, len, g_pay, sizeof g_pay, &plen);
  if (rc == 0) {
    if (plen != len - 96) abort();
    if (px_noise_hs_write(&ini, k_payload3, 11, g_out, sizeof g_out, &n) != 0)
      abort();
    if (px_noise_hs_split(&ini, &i_send, &i_recv) != 0) abort();
    ini_split = 1;
  } else {
    expect_dead(&ini);
  }

  /* chunk 2 -> responder, as message 3 */
  if (!next_chunk(&p, &left, &chunk, &len)) goto out;
  rc = px_noise_hs_read(&res, chunk, len, g_pay, sizeof g_pay, &plen);
  if (rc == 0) {
    if (plen != len - 64) abort();
    if (ini_split) {
      uint8_t h1[32], h2[32];
      px_noise_hs_hash(&ini, h1);
      px_noise_hs_hash(&res, h2);
      if (memcmp(h1, h2, 32) != 0) abort(); /* both finished: must agree */
    }
    if (px_noise_hs_split(&res, &r_send, &r_recv) != 0) abort();
    res_split = 1;
  }

  /* chunks 3.. -> transport */
  while (next_chunk(&p, &left, &chunk, &len)) {
    if (ini_split) {
      rc = px_noise_decrypt(&i_recv, NULL, 0, chunk, len, g_pay);
      if (rc != 0 && rc != PX_EAUTH) abort();
    }
    if (res_split) {
      rc = px_noise_decrypt(&r_recv, NULL, 0, chunk, len, g_pay);
      if (rc != 0 && rc != PX_EAUTH) abort();
    }
  }
  if (ini_split && len <= PX_NOISE_MAX_TRANSPORT_PAYLOAD) {
    /* round-trip the last chunk through the live keys */
    if (px_noise_encrypt(&i_send, NULL, 0, chunk, len, g_out) != 0) abort();
    if (res_split) {
      if (px_noise_decrypt(&r_recv, NULL, 0, g_out, len + 16, g_pay) != 0 ||
          (len && memcmp(g_pay, chunk, len) != 0))
        abort();
    }
  }

out:
  if (ini_split) {
    px_noise_cipher_wipe(&i_send);
    px_noise_cipher_wipe(&i_recv);
  }
  if (res_split) {
    px_noise_cipher_wipe(&r_send);
    px_noise_cipher_wipe(&r_recv);
  }
  px_noise_hs_wipe(&ini);
  px_noise_hs_wipe(&res);
  return 0;
}
