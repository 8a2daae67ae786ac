/*
 * fuzz_smt_proof.c — libFuzzer target for sparse Merkle proofs
 * (src/ledger/smt.c).
 *
 * First byte selects the mode:
 *   even  raw: the rest is a proof encoding; decode must not crash, a
 *         decoded proof re-encodes to the same bytes, and verifying it
 *         against a fixed tree's root for a few keys must answer 0 or
 *         PX_EAUTH — and 0 only for the truth (the key's real value, or
 *         absence for an absent key).
 *   odd   structured: a tree of 1 + byte1 % 200 keys; byte 2 picks a key
 *         (present or not); the honest proof must verify; then pairs
 *         (position, xor mask) corrupt the encoded proof; if the bytes
 *         changed and still decode, the proof must not verify unless it
 *         still proves the truth.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/crypto.h"
#include "plexus/ledger.h"

#include "ledger/ledger_internal.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

static smt_t g_tree;
static uint8_t g_root[PX_HASH_LEN];
#define FIXED_KEYS 64

static void key_of(uint32_t i, uint8_t k[4]) { memcpy(k, &i, 4); }

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  if (px_crypto_init() != 0) abort();
  smt_init(&g_tree);
  for (uint32_t i = 0; i < FIXED_KEYS; i += 2) {
    uint8_t k[4];
    key_of(i, k);
    if (smt_put(&g_tree, k, 4, k, 4)) abort();
  }
  smt_root(&g_tree, g_root);
  return 0;
}

/* Does the proof verify for key i, and is that the truth? */
static void check_truth(const uint8_t root[PX_HASH_LEN], const smt_t *t,
                        uint32_t i, const px_smt_proof_t *p) {
  uint8_t k[4];
  key_of(i, k);
  const uint8_t *v;
  size_t vl;
  int present = smt_get(t, k, 4, &v, &vl) == 0;
  int rc_abs = px_smt_verify(root, k, 4, NULL, 0, p);
  int rc_mem = px_smt_verify(root, k, 4, k, 4, p);
  uint8_t other[4] = {0xde, 0xad, 0xbe, 0xef};
  int rc_oth = px_smt_verify(root, k, 4, other, 4, p);
  if ((rc_abs && rc_abs != PX_EAUTH) || (rc_mem && rc_mem != PX_EAUTH) ||
      (rc_oth && rc_oth != PX_EAUTH))
    abort();
  if (present && rc_abs == 0) abort();  /* forged absence */
  if (!present && rc_mem == 0) abort(); /* forged membership */
  if (rc_oth == 0) abort();             /* forged value */
}

static void fuzz_raw(const uint8_t *d, size_t n) {
  px_smt_proof_t *p = malloc(sizeof *p);
  if (!p) abort();
  int rc = px_smt_proof_decode(d, n, p);
  if (rc > 0) abort();
  if (rc == 0) {
    px_buf_t re;
    px_buf_init(&re, 0);
    if (px_smt_proof_encode(p, &re)) abort();
    if (re.len != n || memcmp(re.data, d, n)) abort();
    px_buf_release(&re);
    for (uint32_t i = 0; i < 4; i++)
      check_truth(g_root, &g_tree, i, p);
  }
  free(p);
}

static void fuzz_structured(const uint8_t *d, size_t n) {
  if (n < 3) return;
  uint32_t count = 1 + d[1] % 200, pick = d[2] % (2 * count);
  smt_t t;
  smt_init(&t);
  for (uint32_t i = 0; i < count; i++) {
    uint8_t k[4];
    key_of(2 * i, k); /* odd picks are absent */
    if (smt_put(&t, k, 4, k, 4)) abort();
  }
  uint8_t root[PX_HASH_LEN];
  smt_root(&t, root);
  px_smt_proof_t *p = malloc(sizeof *p);
  if (!p) abort();
  uint8_t k[4];
  key_of(pick, k);
  if (smt_prove(&t, k, 4, p)) abort();
  int want = (pick % 2 == 0) ? px_smt_verify(root, k, 4, k, 4, p)
                             : px_smt_verify(root, k, 4, NULL, 0, p);
  if (want != 0) abort();
  px_buf_t enc;
  px_buf_init(&enc, 0);
  if (px_smt_proof_encode(p, &enc)) abort();
  for (size_t i = 3; i + 1 < n; i += 2)
    enc.data[d[i] % enc.len] ^= d[i + 1];
  if (px_smt_proof_decode(enc.data, enc.len, p) == 0)
    check_truth(root, &t, pick, p);
  px_buf_release(&enc);
  free(p);
  smt_release(&t);
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  if (n == 0) return 0;
  if (d[0] & 1)
    fuzz_structured(d, n);
  else
    fuzz_raw(d + 1, n - 1);
  return 0;
}
