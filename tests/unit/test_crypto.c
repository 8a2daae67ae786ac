/*
 * test_crypto.c — unit tests for src/crypto: published test vectors for
 * every primitive (RFC 8032 Ed25519, RFC 7693/BLAKE2b, RFC 7748 X25519,
 * RFC 8439 ChaCha20-Poly1305), Merkle trees checked against a direct
 * recursive transcription of RFC 6962 section 2.1, and key files on disk
 * (permissions, corruption, mismatch, overwrite rules).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "plexus/crypto.h"
#include "crypto/keyfile.h"

static void unhex(const char *hex, uint8_t *out, size_t n) {
  assert_int_equal(strlen(hex), 2 * n);
  assert_int_equal(px_hex_decode(hex, out, n), 0);
}

static void assert_hex(const uint8_t *got, size_t n, const char *want) {
  char buf[1024];
  assert_true(2 * n < sizeof buf);
  px_hex_encode(got, n, buf);
  assert_string_equal(buf, want);
}

/* ---- Ed25519 --------------------------------------------------------------
 */

static void test_sign_verify(void **state) {
  (void)state;
  px_keypair_t kp, other;
  assert_int_equal(px_key_generate(&kp), 0);
  assert_int_equal(px_key_generate(&other), 0);
  assert_memory_not_equal(kp.pk, other.pk, PX_PK_LEN);
  /* sk = seed || pk */
  assert_memory_equal(kp.sk + PX_SEED_LEN, kp.pk, PX_PK_LEN);

  uint8_t msg[100], sig[PX_SIG_LEN];
  for (size_t i = 0; i < sizeof msg; i++)
    msg[i] = (uint8_t)i;
  px_sign(&kp, msg, sizeof msg, sig);
  assert_int_equal(px_verify(kp.pk, msg, sizeof msg, sig), 0);
  assert_int_equal(px_verify(other.pk, msg, sizeof msg, sig), PX_EBADSIG);
  assert_int_equal(px_verify(kp.pk, msg, sizeof msg - 1, sig), PX_EBADSIG);
  msg[50] ^= 1;
  assert_int_equal(px_verify(kp.pk, msg, sizeof msg, sig), PX_EBADSIG);
  msg[50] ^= 1;
  for (size_t i = 0; i < PX_SIG_LEN; i++) {
    sig[i] ^= 0x80;
    assert_int_equal(px_verify(kp.pk, msg, sizeof msg, sig), PX_EBADSIG);
    sig[i] ^= 0x80;
  }
  assert_int_equal(px_verify(kp.pk, msg, sizeof msg, sig), 0);

  /* Empty message, NULL pointer allowed when n == 0. */
  px_sign(&kp, NULL, 0, sig);
  assert_int_equal(px_verify(kp.pk, NULL, 0, sig), 0);

  /* Same seed, same key; wipe clears everything. */
  px_keypair_t again;
  assert_int_equal(px_key_from_seed(&again, kp.sk), 0);
  assert_memory_equal(&again, &kp, sizeof kp);
  px_key_wipe(&again);
  uint8_t zero[sizeof again];
  memset(zero, 0, sizeof zero);
  assert_memory_equal(&again, zero, sizeof again);
  /* Deriving in place (seed points into the output) works. */
  assert_int_equal(px_key_from_seed(&kp, kp.sk), 0);
  assert_memory_equal(kp.sk + PX_SEED_LEN, kp.pk, PX_PK_LEN);
}

static void check_rfc8032(const char *seed_hex, const char *pk_hex,
                          const char *msg_hex, const char *sig_hex) {
  uint8_t seed[PX_SEED_LEN], msg[16], sig[PX_SIG_LEN], want_sig[PX_SIG_LEN];
  size_t mlen = strlen(msg_hex) / 2;
  assert_true(mlen <= sizeof msg);
  unhex(seed_hex, seed, sizeof seed);
  if (mlen) unhex(msg_hex, msg, mlen);
  unhex(sig_hex, want_sig, sizeof want_sig);
  px_keypair_t kp;
  assert_int_equal(px_key_from_seed(&kp, seed), 0);
  assert_hex(kp.pk, PX_PK_LEN, pk_hex);
  px_sign(&kp, msg, mlen, sig);
  assert_memory_equal(sig, want_sig, PX_SIG_LEN);
  assert_int_equal(px_verify(kp.pk, msg, mlen, want_sig), 0);
}

static void test_ed25519_rfc8032(void **state) {
  (void)state;
  /* RFC 8032 section 7.1, TEST 1 (empty message). */
  check_rfc8032(
      "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
      "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
      "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
      "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b");
  /* TEST 2 (one byte, 0x72). */
  check_rfc8032(
      "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
      "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
      "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
      "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00");
}

static void test_node_id(void **state) {
  (void)state;
  uint8_t pk[PX_PK_LEN], back[PX_PK_LEN];
  for (size_t i = 0; i < sizeof pk; i++)
    pk[i] = (uint8_t)(0xa0 + i);
  char hex[PX_NODE_ID_HEX_LEN];
  px_node_id_hex(pk, hex);
  assert_int_equal(strlen(hex), 64);
  assert_memory_equal(hex, "a0a1a2a3", 8);
  assert_int_equal(px_node_id_parse(hex, back), 0);
  assert_memory_equal(back, pk, sizeof pk);

  memset(back, 0x55, sizeof back);
  assert_int_equal(px_node_id_parse("abcd", back), PX_EDECODE);
  hex[10] = 'g';
  assert_int_equal(px_node_id_parse(hex, back), PX_EDECODE);
  assert_int_equal(back[0], 0x55); /* untouched on failure */
  assert_int_not_equal(px_node_id_parse(NULL, back), 0);
}

/* ---- BLAKE2b-256 ------------------------------------------------------- */

static void test_hash_vectors(void **state) {
  (void)state;
  uint8_t h[PX_HASH_LEN];
  px_hash(h, "abc", 3);
  assert_hex(
      h, PX_HASH_LEN,
      "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
  px_hash(h, "", 0);
  assert_hex(
      h, PX_HASH_LEN,
      "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");

  /* Streaming in uneven pieces equals one shot. */
  uint8_t data[1000], one[PX_HASH_LEN], streamed[PX_HASH_LEN];
  for (size_t i = 0; i < sizeof data; i++)
    data[i] = (uint8_t)(i * 7 + 3);
  px_hash(one, data, sizeof data);
  px_hash_state_t st;
  px_hash_init(&st);
  size_t off = 0, step = 1;
  while (off < sizeof data) {
    size_t n = PX_MIN(step, sizeof data - off);
    px_hash_update(&st, data + off, n);
    off += n;
    step = step * 3 + 1;
  }
  px_hash_final(&st, streamed);
  assert_memory_equal(one, streamed, PX_HASH_LEN);

  px_hash_init(&st);
  px_hash_update(&st, "a", 1);
  px_hash_update(&st, "", 0);
  px_hash_update(&st, "bc", 2);
  px_hash_final(&st, streamed);
  assert_hex(
      streamed, PX_HASH_LEN,
      "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
}

/* ---- X25519 ------------------------------------------------------------ */

static void test_x25519_rfc7748(void **state) {
  (void)state;
  /* RFC 7748 section 6.1. */
  uint8_t a[32], b[32], pa[32], pb[32], k1[32], k2[32];
  unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a", a,
        32);
  unhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb", b,
        32);
  assert_int_equal(px_x25519_public(pa, a), 0);
  assert_hex(
      pa, 32,
      "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
  assert_int_equal(px_x25519_public(pb, b), 0);
  assert_hex(
      pb, 32,
      "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
  assert_int_equal(px_x25519(k1, a, pb), 0);
  assert_int_equal(px_x25519(k2, b, pa), 0);
  const char *k =
      "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
  assert_hex(k1, 32, k);
  assert_hex(k2, 32, k);
}

static void test_x25519_random_and_low_order(void **state) {
  (void)state;
  uint8_t pa[32], sa[32], pb[32], sb[32], k1[32], k2[32];
  assert_int_equal(px_x25519_keypair(pa, sa), 0);
  assert_int_equal(px_x25519_keypair(pb, sb), 0);
  assert_int_equal(px_x25519(k1, sa, pb), 0);
  assert_int_equal(px_x25519(k2, sb, pa), 0);
  assert_memory_equal(k1, k2, 32);

  /* Low-order points (u = 0 and u = 1) give an all-zero secret: refused. */
  uint8_t low[32];
  memset(low, 0, sizeof low);
  memset(k1, 0xaa, sizeof k1);
  assert_int_equal(px_x25519(k1, sa, low), PX_ECRYPTO);
  uint8_t zero[32];
  memset(zero, 0, sizeof zero);
  assert_memory_equal(k1, zero, 32);
  low[0] = 1;
  assert_int_equal(px_x25519(k1, sa, low), PX_ECRYPTO);
}

/* ---- ChaCha20-Poly1305 ------------------------------------------------- */

static const char rfc8439_plain[] =
    "Ladies and Gentlemen of the class of '99: If I could offer you only one "
    "tip for the future, sunscreen would be it.";

static const char rfc8439_cipher[] =
    "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d6"
    "3dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b36"
    "92ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc"
    "3ff4def08e4b7a9de576d26586cec64b6116"
    "1ae10b594f09e26a7e902ecbd0600691"; /* tag */

static void rfc8439_inputs(uint8_t key[32], uint8_t nonce[12], uint8_t ad[12]) {
  for (int i = 0; i < 32; i++)
    key[i] = (uint8_t)(0x80 + i);
  unhex("070000004041424344454647", nonce, 12);
  unhex("50515253c0c1c2c3c4c5c6c7", ad, 12);
}

static void test_aead_rfc8439(void **state) {
  (void)state;
  uint8_t key[32], nonce[12], ad[12];
  rfc8439_inputs(key, nonce, ad);
  const size_t n = sizeof rfc8439_plain - 1;
  assert_int_equal(n, 114);
  uint8_t out[114 + PX_AEAD_TAG_LEN], back[114];
  px_aead_encrypt(out, (const uint8_t *)rfc8439_plain, n, ad, sizeof ad, nonce,
                  key);
  assert_hex(out, sizeof out, rfc8439_cipher);
  assert_int_equal(
      px_aead_decrypt(back, out, sizeof out, ad, sizeof ad, nonce, key), 0);
  assert_memory_equal(back, rfc8439_plain, n);

  /* In place, both ways. */
  uint8_t io[114 + PX_AEAD_TAG_LEN];
  memcpy(io, rfc8439_plain, n);
  px_aead_encrypt(io, io, n, ad, sizeof ad, nonce, key);
  assert_memory_equal(io, out, sizeof out);
  assert_int_equal(
      px_aead_decrypt(io, io, sizeof io, ad, sizeof ad, nonce, key), 0);
  assert_memory_equal(io, rfc8439_plain, n);
}

static void test_aead_tamper(void **state) {
  (void)state;
  uint8_t key[32], nonce[12], ad[12];
  rfc8439_inputs(key, nonce, ad);
  const size_t n = sizeof rfc8439_plain - 1;
  uint8_t ct[114 + PX_AEAD_TAG_LEN], back[114], zero[114];
  memset(zero, 0, sizeof zero);
  px_aead_encrypt(ct, (const uint8_t *)rfc8439_plain, n, ad, sizeof ad, nonce,
                  key);
  /* Every flipped bit position in ciphertext and tag is caught. */
  for (size_t i = 0; i < sizeof ct; i++) {
    ct[i] ^= (uint8_t)(1u << (i % 8));
    memset(back, 0x77, sizeof back);
    assert_int_equal(
        px_aead_decrypt(back, ct, sizeof ct, ad, sizeof ad, nonce, key),
        PX_EAUTH);
    assert_memory_equal(back, zero, sizeof back); /* zeroed on failure */
    ct[i] ^= (uint8_t)(1u << (i % 8));
  }
  /* Wrong AD, nonce, key; missing AD; truncated input. */
  ad[0] ^= 1;
  assert_int_equal(
      px_aead_decrypt(back, ct, sizeof ct, ad, sizeof ad, nonce, key),
      PX_EAUTH);
  ad[0] ^= 1;
  assert_int_equal(px_aead_decrypt(back, ct, sizeof ct, NULL, 0, nonce, key),
                   PX_EAUTH);
  nonce[11] ^= 1;
  assert_int_equal(
      px_aead_decrypt(back, ct, sizeof ct, ad, sizeof ad, nonce, key),
      PX_EAUTH);
  nonce[11] ^= 1;
  key[5] ^= 1;
  assert_int_equal(
      px_aead_decrypt(back, ct, sizeof ct, ad, sizeof ad, nonce, key),
      PX_EAUTH);
  key[5] ^= 1;
  assert_int_equal(
      px_aead_decrypt(back, ct, sizeof ct - 1, ad, sizeof ad, nonce, key),
      PX_EAUTH);
  assert_int_equal(
      px_aead_decrypt(back, ct, PX_AEAD_TAG_LEN - 1, ad, sizeof ad, nonce, key),
      PX_EAUTH);
  assert_int_equal(
      px_aead_decrypt(back, ct, sizeof ct, ad, sizeof ad, nonce, key), 0);

  /* Empty plaintext: just a tag. */
  uint8_t tag[PX_AEAD_TAG_LEN];
  px_aead_encrypt(tag, NULL, 0, NULL, 0, nonce, key);
  assert_int_equal(px_aead_decrypt(back, tag, sizeof tag, NULL, 0, nonce, key),
                   0);
  tag[0] ^= 1;
  assert_int_equal(px_aead_decrypt(back, tag, sizeof tag, NULL, 0, nonce, key),
                   PX_EAUTH);
}

/* ---- Merkle ------------------------------------------------------------ */

/* Reference: RFC 6962 section 2.1 written out recursively, with hashing
 * done by hand through px_hash, independent of merkle.c. */
static void ref_leaf(uint8_t out[32], const void *d, size_t n) {
  uint8_t buf[256];
  assert_true(n < sizeof buf);
  buf[0] = 0;
  memcpy(buf + 1, d, n);
  px_hash(out, buf, n + 1);
}

static void ref_node(uint8_t out[32], const uint8_t l[32],
                     const uint8_t r[32]) {
  uint8_t buf[65];
  buf[0] = 1;
  memcpy(buf + 1, l, 32);
  memcpy(buf + 33, r, 32);
  px_hash(out, buf, sizeof buf);
}

static size_t ref_split(size_t n) {
  size_t k = 1;
  while (2 * k < n)
    k *= 2;
  return k;
}

static void ref_mth(const uint8_t (*d)[32], size_t n, uint8_t out[32]) {
  if (n == 1) {
    memcpy(out, d[0], 32);
    return;
  }
  size_t k = ref_split(n);
  uint8_t l[32], r[32];
  ref_mth(d, k, l);
  ref_mth(d + k, n - k, r);
  ref_node(out, l, r);
}

/* PATH(m, D[n]), appended bottom-up at path[*len]. */
static void ref_path(const uint8_t (*d)[32], size_t n, size_t m,
                     uint8_t (*path)[32], size_t *len) {
  if (n == 1) return;
  size_t k = ref_split(n);
  uint8_t sib[32];
  if (m < k) {
    ref_path(d, k, m, path, len);
    ref_mth(d + k, n - k, sib);
  } else {
    ref_path(d + k, n - k, m - k, path, len);
    ref_mth(d, k, sib);
  }
  memcpy(path[(*len)++], sib, 32);
}

#define MAXN 33

static void make_leaves(uint8_t (*leaves)[32], size_t n) {
  for (size_t i = 0; i < n; i++) {
    char data[16];
    int len = snprintf(data, sizeof data, "leaf-%zu", i);
    px_merkle_leaf(leaves[i], data, (size_t)len);
  }
}

static void test_merkle_hashes(void **state) {
  (void)state;
  uint8_t a[32], b[32], l[32], r[32];
  px_merkle_leaf(a, "hello", 5);
  ref_leaf(b, "hello", 5);
  assert_memory_equal(a, b, 32);
  px_merkle_leaf(a, NULL, 0);
  ref_leaf(b, "", 0);
  assert_memory_equal(a, b, 32);
  px_merkle_leaf(l, "l", 1);
  px_merkle_leaf(r, "r", 1);
  px_merkle_node(a, l, r);
  ref_node(b, l, r);
  assert_memory_equal(a, b, 32);
  /* Output may alias an input. */
  px_merkle_node(l, l, r);
  assert_memory_equal(l, b, 32);
}

static void test_merkle_known_roots(void **state) {
  (void)state;
  uint8_t root[32], want[32], t1[32], t2[32];
  /* Empty tree: BLAKE2b-256(""). */
  assert_int_equal(px_merkle_root(NULL, 0, root), 0);
  assert_hex(
      root, 32,
      "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");

  uint8_t lv[7][32];
  const char *names[7] = {"a", "b", "c", "d", "e", "f", "g"};
  for (int i = 0; i < 7; i++)
    ref_leaf(lv[i], names[i], 1);

  /* n = 1: the leaf hash itself. */
  assert_int_equal(px_merkle_root(lv, 1, root), 0);
  assert_memory_equal(root, lv[0], 32);

  /* n = 3: H(1 || H(1 || a || b) || c). */
  ref_node(t1, lv[0], lv[1]);
  ref_node(want, t1, lv[2]);
  assert_int_equal(px_merkle_root(lv, 3, root), 0);
  assert_memory_equal(root, want, 32);

  /* n = 5: H(1 || [abcd] || e), [abcd] = H(1 || [ab] || [cd]). */
  uint8_t ab[32], cd[32], abcd[32], ef[32];
  ref_node(ab, lv[0], lv[1]);
  ref_node(cd, lv[2], lv[3]);
  ref_node(abcd, ab, cd);
  ref_node(want, abcd, lv[4]);
  assert_int_equal(px_merkle_root(lv, 5, root), 0);
  assert_memory_equal(root, want, 32);

  /* n = 7: H(1 || [abcd] || H(1 || [ef] || g)). */
  ref_node(ef, lv[4], lv[5]);
  ref_node(t2, ef, lv[6]);
  ref_node(want, abcd, t2);
  assert_int_equal(px_merkle_root(lv, 7, root), 0);
  assert_memory_equal(root, want, 32);

  /* Bottom-up proof for "e" (index 4) of the 7-tree: f, g, [abcd]. */
  uint8_t path[PX_MERKLE_MAX_DEPTH][32];
  size_t depth = 99;
  assert_int_equal(px_merkle_proof(lv, 7, 4, path, &depth), 0);
  assert_int_equal(depth, 3);
  assert_memory_equal(path[0], lv[5], 32);
  assert_memory_equal(path[1], lv[6], 32);
  assert_memory_equal(path[2], abcd, 32);
  /* The proof for "g" (index 6): [ef], then [abcd]. */
  assert_int_equal(px_merkle_proof(lv, 7, 6, path, &depth), 0);
  assert_int_equal(depth, 2);
  assert_memory_equal(path[0], ef, 32);
  assert_memory_equal(path[1], abcd, 32);
  assert_int_equal(px_merkle_verify(want, lv[6], 6, 7, path, depth), 0);

  assert_int_equal(px_merkle_root(NULL, 3, root), PX_EINVAL);
}

static void test_merkle_all_proofs(void **state) {
  (void)state;
  uint8_t leaves[MAXN][32];
  make_leaves(leaves, MAXN);
  for (size_t n = 1; n <= MAXN; n++) {
    uint8_t root[32], want[32];
    assert_int_equal(px_merkle_root(leaves, n, root), 0);
    ref_mth(leaves, n, want);
    assert_memory_equal(root, want, 32);
    for (size_t i = 0; i < n; i++) {
      uint8_t path[PX_MERKLE_MAX_DEPTH][32], rpath[PX_MERKLE_MAX_DEPTH][32];
      size_t depth = 0, rdepth = 0;
      assert_int_equal(px_merkle_proof(leaves, n, i, path, &depth), 0);
      ref_path(leaves, n, i, rpath, &rdepth);
      assert_int_equal(depth, rdepth);
      if (depth) assert_memory_equal(path, rpath, depth * 32);
      assert_int_equal(px_merkle_verify(root, leaves[i], i, n, path, depth), 0);

      /* Tampered leaf. */
      uint8_t bad[32];
      memcpy(bad, leaves[i], 32);
      bad[31] ^= 1;
      assert_int_equal(px_merkle_verify(root, bad, i, n, path, depth),
                       PX_EAUTH);
      /* Another leaf of the same tree at this index. */
      if (n > 1)
        assert_int_not_equal(
            px_merkle_verify(root, leaves[(i + 1) % n], i, n, path, depth), 0);
      /* Tampered root. */
      memcpy(bad, root, 32);
      bad[0] ^= 0x40;
      assert_int_equal(px_merkle_verify(bad, leaves[i], i, n, path, depth),
                       PX_EAUTH);
      /* Every path entry matters. */
      for (size_t j = 0; j < depth; j++) {
        path[j][j % 32] ^= 1;
        assert_int_equal(px_merkle_verify(root, leaves[i], i, n, path, depth),
                         PX_EAUTH);
        path[j][j % 32] ^= 1;
      }
      /* Wrong index, in range and out of range. */
      for (size_t k = 0; k < n; k++)
        if (k != i)
          assert_int_not_equal(
              px_merkle_verify(root, leaves[i], k, n, path, depth), 0);
      assert_int_equal(px_merkle_verify(root, leaves[i], n, n, path, depth),
                       PX_EINVAL);
      /* Path too short or too long for (index, n). */
      if (depth)
        assert_int_not_equal(
            px_merkle_verify(root, leaves[i], i, n, path, depth - 1), 0);
      memcpy(path[depth], root, 32);
      assert_int_not_equal(
          px_merkle_verify(root, leaves[i], i, n, path, depth + 1), 0);
    }
  }
}

static void test_merkle_bad_shapes(void **state) {
  (void)state;
  uint8_t leaves[4][32], root[32], path[PX_MERKLE_MAX_DEPTH + 1][32];
  size_t depth = 0;
  make_leaves(leaves, 4);
  assert_int_equal(px_merkle_root(leaves, 4, root), 0);
  assert_int_equal(px_merkle_proof(leaves, 4, 4, path, &depth), PX_EINVAL);
  assert_int_equal(px_merkle_proof(leaves, 0, 0, path, &depth), PX_EINVAL);
  assert_int_equal(px_merkle_proof(NULL, 4, 0, path, &depth), PX_EINVAL);
  assert_int_equal(px_merkle_verify(root, leaves[0], 0, 0, path, 0), PX_EINVAL);
  assert_int_equal(px_merkle_verify(root, leaves[0], 0, 4, NULL, 2), PX_EINVAL);
  assert_int_equal(
      px_merkle_verify(root, leaves[0], 0, 4, path, PX_MERKLE_MAX_DEPTH + 1),
      PX_EINVAL);
  /* Huge trees: shape arithmetic must not overflow. */
  memset(path, 0x33, sizeof path);
  assert_int_not_equal(px_merkle_verify(root, leaves[0], SIZE_MAX - 1, SIZE_MAX,
                                        path, PX_MERKLE_MAX_DEPTH),
                       0);
  assert_int_not_equal(
      px_merkle_verify(root, leaves[0], 0, SIZE_MAX, path, PX_MERKLE_MAX_DEPTH),
      0);
  /* A one-leaf tree: root is the leaf, path empty. */
  assert_int_equal(px_merkle_verify(leaves[2], leaves[2], 0, 1, NULL, 0), 0);
  assert_int_equal(px_merkle_verify(leaves[2], leaves[2], 0, 1, path, 1),
                   PX_EINVAL);
}

/* ---- key files ----------------------------------------------------------- */

typedef struct {
  char dir[64];
  char path[128];
} tmpdir_t;

static int kf_setup(void **state) {
  tmpdir_t *t = calloc(1, sizeof *t);
  if (!t) return -1;
  snprintf(t->dir, sizeof t->dir, "/tmp/px_crypto_XXXXXX");
  if (!mkdtemp(t->dir)) {
    free(t);
    return -1;
  }
  snprintf(t->path, sizeof t->path, "%s/node.key", t->dir);
  *state = t;
  return 0;
}

static int kf_teardown(void **state) {
  tmpdir_t *t = *state;
  char cmd[256];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->dir);
  int rc = system(cmd);
  free(t);
  return rc == 0 ? 0 : -1;
}

static void write_raw(const char *path, const char *text, mode_t mode) {
  assert_int_equal(px_file_write_atomic(path, text, strlen(text), mode), 0);
}

static void test_keyfile_roundtrip(void **state) {
  tmpdir_t *t = *state;
  px_keypair_t kp, back;
  assert_int_equal(px_key_generate(&kp), 0);
  assert_int_equal(px_keyfile_read(t->path, &back), PX_ENOENT);
  assert_int_equal(px_keyfile_write(t->path, &kp, 0), 0);
  struct stat st;
  assert_int_equal(stat(t->path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal(st.st_size, PX_KEYFILE_LEN);
  memset(&back, 0, sizeof back);
  assert_int_equal(px_keyfile_read(t->path, &back), 0);
  assert_memory_equal(&back, &kp, sizeof kp);

  /* The text is what docs/keys.md says. */
  uint8_t *text = NULL;
  size_t len = 0;
  assert_int_equal(px_file_read_all(t->path, 4096, &text, &len), 0);
  assert_int_equal(len, 158);
  assert_memory_equal(text, "plexus-ed25519-v1\nseed: ", 24);
  char hex[65];
  px_hex_encode(kp.pk, 32, hex);
  assert_memory_equal(text + 88, "\npk: ", 5);
  assert_memory_equal(text + 93, hex, 64);
  assert_int_equal(text[157], '\n');
  px_free(text);

  /* Existing file: refused without overwrite, replaced with it. */
  px_keypair_t kp2;
  assert_int_equal(px_key_generate(&kp2), 0);
  assert_int_equal(px_keyfile_write(t->path, &kp2, 0), PX_EEXIST);
  assert_int_equal(px_keyfile_read(t->path, &back), 0);
  assert_memory_equal(&back, &kp, sizeof kp);
  assert_int_equal(px_keyfile_write(t->path, &kp2, 1), 0);
  assert_int_equal(px_keyfile_read(t->path, &back), 0);
  assert_memory_equal(&back, &kp2, sizeof kp2);
  assert_int_equal(stat(t->path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);

  /* An inconsistent pair is never written. */
  kp2.pk[0] ^= 1;
  assert_int_equal(px_keyfile_write(t->path, &kp2, 1), PX_EINVAL);
  assert_int_equal(px_keyfile_read(t->path, &back), 0);
}

static void test_keyfile_rfc8032_golden(void **state) {
  tmpdir_t *t = *state;
  const char *text =
      "plexus-ed25519-v1\n"
      "seed: 9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60\n"
      "pk: d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a\n";
  write_raw(t->path, text, 0600);
  px_keypair_t kp;
  assert_int_equal(px_keyfile_read(t->path, &kp), 0);
  assert_hex(
      kp.pk, 32,
      "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a");
  char out[PX_KEYFILE_LEN + 1];
  px_keyfile_format(&kp, out);
  assert_string_equal(out, text);
}

static void test_keyfile_permissions(void **state) {
  tmpdir_t *t = *state;
  px_keypair_t kp, back;
  assert_int_equal(px_key_generate(&kp), 0);
  assert_int_equal(px_keyfile_write(t->path, &kp, 0), 0);
  const mode_t bad[] = {0644, 0640, 0604, 0660, 0602, 0620, 0700 | 001};
  for (size_t i = 0; i < PX_ARRAY_LEN(bad); i++) {
    assert_int_equal(chmod(t->path, bad[i]), 0);
    assert_int_equal(px_keyfile_read(t->path, &back), PX_EPERM);
  }
  assert_int_equal(chmod(t->path, 0400), 0);
  assert_int_equal(px_keyfile_read(t->path, &back), 0);
  assert_memory_equal(&back, &kp, sizeof kp);

  /* Not a regular file: a directory, a FIFO (must not block). */
  assert_int_equal(px_keyfile_read(t->dir, &back), PX_EINVAL);
  char fifo[160];
  snprintf(fifo, sizeof fifo, "%s/fifo", t->dir);
  assert_int_equal(mkfifo(fifo, 0600), 0);
  assert_int_equal(px_keyfile_read(fifo, &back), PX_EINVAL);
  /* Even a dangling symlink counts as existing for write. */
  char link[160];
  snprintf(link, sizeof link, "%s/dangling", t->dir);
  assert_int_equal(symlink("/nonexistent/px", link), 0);
  assert_int_equal(px_keyfile_write(link, &kp, 0), PX_EEXIST);
}

static void test_keyfile_corrupt(void **state) {
  tmpdir_t *t = *state;
  px_keypair_t kp, back;
  assert_int_equal(px_key_generate(&kp), 0);
  char good[PX_KEYFILE_LEN + 1], text[PX_KEYFILE_LEN + 8];
  px_keyfile_format(&kp, good);

  /* Truncated file. */
  memcpy(text, good, 100);
  text[100] = 0;
  write_raw(t->path, text, 0600);
  assert_int_equal(px_keyfile_read(t->path, &back), PX_EDECODE);
  /* Empty file. */
  write_raw(t->path, "", 0600);
  assert_int_equal(px_keyfile_read(t->path, &back), PX_EDECODE);
  /* Garbage in the seed. */
  memcpy(text, good, sizeof good);
  text[30] = 'x';
  write_raw(t->path, text, 0600);
  assert_int_equal(px_keyfile_read(t->path, &back), PX_EDECODE);
  /* Big file. */
  char big[2000];
  memset(big, 'a', sizeof big - 1);
  big[sizeof big - 1] = 0;
  write_raw(t->path, big, 0600);
  assert_int_equal(px_keyfile_read(t->path, &back), PX_EDECODE);
  /* Another version. */
  memcpy(text, good, sizeof good);
  text[16] = '2';
  write_raw(t->path, text, 0600);
  assert_int_equal(px_keyfile_read(t->path, &back), PX_EVERSION);

  /* Public key that does not match the seed. */
  memcpy(text, good, sizeof good);
  text[100] = text[100] == '0' ? '1' : '0';
  write_raw(t->path, text, 0600);
  memset(&back, 0x5a, sizeof back);
  assert_int_equal(px_keyfile_read(t->path, &back), PX_ECRYPTO);
  assert_int_equal(back.pk[0], 0x5a); /* untouched */
  /* A seed that changed (bit rot) is caught the same way. */
  memcpy(text, good, sizeof good);
  text[40] = text[40] == '0' ? '1' : '0';
  write_raw(t->path, text, 0600);
  assert_int_equal(px_keyfile_read(t->path, &back), PX_ECRYPTO);
}

static void test_keyfile_parse_strict(void **state) {
  (void)state;
  px_keypair_t kp, back;
  assert_int_equal(px_key_generate(&kp), 0);
  char good[PX_KEYFILE_LEN + 1];
  uint8_t buf[PX_KEYFILE_LEN + 2];
  px_keyfile_format(&kp, good);
  assert_int_equal(strlen(good), PX_KEYFILE_LEN);
  assert_int_equal(
      px_keyfile_parse((const uint8_t *)good, PX_KEYFILE_LEN, &back), 0);
  assert_memory_equal(&back, &kp, sizeof kp);

  /* Every prefix and one-longer text is refused. */
  for (size_t n = 0; n < PX_KEYFILE_LEN; n++)
    assert_int_not_equal(px_keyfile_parse((const uint8_t *)good, n, &back), 0);
  memcpy(buf, good, PX_KEYFILE_LEN);
  buf[PX_KEYFILE_LEN] = '\n';
  assert_int_equal(px_keyfile_parse(buf, PX_KEYFILE_LEN + 1, &back),
                   PX_EDECODE);

  /* Every byte position, every byte value: only lowercase hex digits are
   * accepted inside the hex fields (then the pair may mismatch), and the
   * fixed text admits no substitution at all. */
  const size_t seed_at = 24, pk_at = 93;
  for (size_t pos = 0; pos < PX_KEYFILE_LEN; pos++) {
    int in_hex = (pos >= seed_at && pos < seed_at + 64) ||
                 (pos >= pk_at && pos < pk_at + 64);
    for (unsigned c = 0; c < 256; c++) {
      if (c == (uint8_t)good[pos]) continue;
      memcpy(buf, good, PX_KEYFILE_LEN);
      buf[pos] = (uint8_t)c;
      int rc = px_keyfile_parse(buf, PX_KEYFILE_LEN, &back);
      int hexdigit = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
      if (in_hex && hexdigit)
        assert_int_equal(rc, PX_ECRYPTO);
      else if (pos == 16 && c >= '0' && c <= '9')
        assert_int_equal(rc, PX_EVERSION);
      else
        assert_int_not_equal(rc, 0);
      if (in_hex && !hexdigit) assert_int_equal(rc, PX_EDECODE);
    }
  }
  /* CRLF line endings and a longer version line. */
  const char *crlf = "plexus-ed25519-v1\r\n";
  assert_int_equal(px_keyfile_parse((const uint8_t *)crlf, strlen(crlf), &back),
                   PX_EVERSION);
  const char *v10 = "plexus-ed25519-v10\n";
  assert_int_equal(px_keyfile_parse((const uint8_t *)v10, strlen(v10), &back),
                   PX_EVERSION);
  assert_int_equal(px_keyfile_parse(NULL, 0, &back), PX_EDECODE);
}

/* The AEAD (OpenSSL underneath) agrees byte for byte with libsodium's
 * RFC 8439 implementation on random sizes, with and without AD, in place
 * and not, and both reject each other's tampered output. */
static void test_aead_matches_libsodium(void **state) {
  (void)state;
  static uint8_t pt[70000], a[70000 + 16], b[70000 + 16], ad[64], back[70000];
  uint8_t key[32], nonce[12];
  for (int it = 0; it < 200; it++) {
    size_t n = it < 20 ? (size_t)it : (size_t)randombytes_uniform(70000);
    size_t adlen = (size_t)randombytes_uniform(64) * (it & 1);
    randombytes_buf(pt, n);
    randombytes_buf(ad, adlen);
    randombytes_buf(key, 32);
    randombytes_buf(nonce, 12);
    px_aead_encrypt(a, pt, n, ad, adlen, nonce, key);
    unsigned long long clen;
    crypto_aead_chacha20poly1305_ietf_encrypt(b, &clen, pt, n, ad, adlen, NULL,
                                              nonce, key);
    assert_int_equal(clen, n + 16);
    assert_memory_equal(a, b, n + 16);
    /* In place. */
    memcpy(b, pt, n);
    px_aead_encrypt(b, b, n, ad, adlen, nonce, key);
    assert_memory_equal(a, b, n + 16);
    assert_int_equal(px_aead_decrypt(back, a, n + 16, ad, adlen, nonce, key),
                     0);
    assert_memory_equal(back, pt, n);
    a[randombytes_uniform((uint32_t)(n + 16))] ^= 0x40;
    assert_int_equal(px_aead_decrypt(back, a, n + 16, ad, adlen, nonce, key),
                     PX_EAUTH);
  }
}

int main(void) {
  if (px_crypto_init() != 0) return 1;
  assert_int_equal(px_crypto_init(), 0); /* idempotent */
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sign_verify),
      cmocka_unit_test(test_ed25519_rfc8032),
      cmocka_unit_test(test_node_id),
      cmocka_unit_test(test_hash_vectors),
      cmocka_unit_test(test_x25519_rfc7748),
      cmocka_unit_test(test_x25519_random_and_low_order),
      cmocka_unit_test(test_aead_rfc8439),
      cmocka_unit_test(test_aead_tamper),
      cmocka_unit_test(test_merkle_hashes),
      cmocka_unit_test(test_merkle_known_roots),
      cmocka_unit_test(test_merkle_all_proofs),
      cmocka_unit_test(test_merkle_bad_shapes),
      cmocka_unit_test_setup_teardown(test_keyfile_roundtrip, kf_setup,
                                      kf_teardown),
      cmocka_unit_test_setup_teardown(test_keyfile_rfc8032_golden, kf_setup,
                                      kf_teardown),
      cmocka_unit_test_setup_teardown(test_keyfile_permissions, kf_setup,
                                      kf_teardown),
      cmocka_unit_test_setup_teardown(test_keyfile_corrupt, kf_setup,
                                      kf_teardown),
      cmocka_unit_test(test_keyfile_parse_strict),
      cmocka_unit_test(test_aead_matches_libsodium),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
