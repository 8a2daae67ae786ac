/*
 * test_noise.c — Noise_XX_25519_ChaChaPoly_SHA256 (src/p2p/noise.c).
 *
 * 1. Published vectors (tests/vectors/noise_xx_25519_chachapoly_sha256.txt,
 *    from cacophony, snow and noise-c): both roles run with the vector's
 *    fixed keys and prologue; every handshake message and every transport
 *    message is compared byte for byte, both payloads are recovered, and
 *    the handshake hash is compared where the vector has one (noise-c's is
 *    the final h; cacophony's is h after message 2, see the vector file).
 *    Those implementations are independent of ours: this is the interop
 *    check.
 * 2. Properties with random keys: both sides agree, transport round-trips
 *    both ways for many messages; tampering, reordering, oversize inputs,
 *    nonce exhaustion, low-order points and wrong prologues all fail with
 *    the documented error and leave no usable state behind.
 *
 * Set PX_NOISE_CORPUS_DIR to a directory to have the vector test also write
 * the fuzz seed corpus (tests/fuzz/corpus/noise/) from vector 1.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "p2p/noise.h"
#include "plexus/base.h"

#define VECTOR_FILE                                                            \
  PX_SOURCE_DIR "/tests/vectors/noise_xx_25519_chachapoly_sha256.txt"
#define MAX_VEC_MSGS 16
#define MAX_HEX_BYTES 1024

/* ---- vector file ----------------------------------------------------------
 */

typedef struct {
  uint8_t data[MAX_HEX_BYTES];
  size_t len;
} blob_t;

typedef struct {
  char protocol_name[64];
  blob_t init_prologue, init_static, init_ephemeral;
  blob_t resp_prologue, resp_static, resp_ephemeral;
  blob_t handshake_hash; /* len 0 when absent */
  int handshake_hash_at; /* after which message it holds (default 3) */
  blob_t payload[MAX_VEC_MSGS], ciphertext[MAX_VEC_MSGS];
  size_t n_payload, n_ciphertext;
} vector_t;

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static void parse_hex(const char *s, blob_t *b) {
  size_t n = strlen(s);
  assert_true(n % 2 == 0);
  assert_true(n / 2 <= sizeof b->data);
  for (size_t i = 0; i < n / 2; i++) {
    int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);
    assert_true(hi >= 0 && lo >= 0);
    b->data[i] = (uint8_t)(hi << 4 | lo);
  }
  b->len = n / 2;
}

static char *trim(char *s) {
  size_t n;
  while (*s == ' ' || *s == '\t')
    s++;
  n = strlen(s);
  while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' ' ||
               s[n - 1] == '\t'))
    s[--n] = '\0';
  return s;
}

/* Load every [vector] of the file; returns how many. */
static size_t load_vectors(vector_t *out, size_t cap) {
  FILE *f = fopen(VECTOR_FILE, "r");
  char line[4096];
  size_t n = 0;
  vector_t *v = NULL;
  assert_non_null(f);
  while (fgets(line, sizeof line, f)) {
    char *s = trim(line), *eq, *key, *val;
    if (*s == '\0' || *s == '#') continue;
    if (strcmp(s, "[vector]") == 0) {
      assert_true(n < cap);
      v = &out[n++];
      memset(v, 0, sizeof *v);
      v->handshake_hash_at = 3;
      continue;
    }
    if (strcmp(s, "[end]") == 0) {
      assert_non_null(v);
      assert_int_equal(v->n_payload, v->n_ciphertext);
      v = NULL;
      continue;
    }
    assert_non_null(v);
    eq = strchr(s, '=');
    assert_non_null(eq);
    *eq = '\0';
    key = trim(s);
    val = trim(eq + 1);
    if (strcmp(key, "source") == 0) continue;
    if (strcmp(key, "protocol_name") == 0) {
      assert_true(strlen(val) < sizeof v->protocol_name);
      snprintf(v->protocol_name, sizeof v->protocol_name, "%s", val);
    } else if (strcmp(key, "init_prologue") == 0) {
      parse_hex(val, &v->init_prologue);
    } else if (strcmp(key, "init_static") == 0) {
      parse_hex(val, &v->init_static);
    } else if (strcmp(key, "init_ephemeral") == 0) {
      parse_hex(val, &v->init_ephemeral);
    } else if (strcmp(key, "resp_prologue") == 0) {
      parse_hex(val, &v->resp_prologue);
    } else if (strcmp(key, "resp_static") == 0) {
      parse_hex(val, &v->resp_static);
    } else if (strcmp(key, "resp_ephemeral") == 0) {
      parse_hex(val, &v->resp_ephemeral);
    } else if (strcmp(key, "handshake_hash") == 0) {
      parse_hex(val, &v->handshake_hash);
    } else if (strcmp(key, "handshake_hash_at") == 0) {
      assert_true(strcmp(val, "1") == 0 || strcmp(val, "2") == 0 ||
                  strcmp(val, "3") == 0);
      v->handshake_hash_at = val[0] - '0';
    } else if (strcmp(key, "payload") == 0) {
      assert_true(v->n_payload < MAX_VEC_MSGS);
      parse_hex(val, &v->payload[v->n_payload++]);
    } else if (strcmp(key, "ciphertext") == 0) {
      assert_true(v->n_ciphertext < MAX_VEC_MSGS);
      parse_hex(val, &v->ciphertext[v->n_ciphertext++]);
    } else {
      fail_msg("unknown key '%s' in %s", key, VECTOR_FILE);
    }
  }
  fclose(f);
  assert_null(v); /* last entry closed */
  return n;
}

/* Seed corpus for tests/fuzz/fuzz_noise.c: chunks of u16le length + bytes,
 * in the order the fuzz target consumes them. */
static void write_seed(const char *dir, const char *name, const blob_t **parts,
                       size_t nparts) {
  char path[1024];
  FILE *f;
  snprintf(path, sizeof path, "%s/%s", dir, name);
  f = fopen(path, "wb");
  assert_non_null(f);
  for (size_t i = 0; i < nparts; i++) {
    uint8_t len[2] = {(uint8_t)parts[i]->len, (uint8_t)(parts[i]->len >> 8)};
    fwrite(len, 1, 2, f);
    fwrite(parts[i]->data, 1, parts[i]->len, f);
  }
  fclose(f);
}

static void dump_corpus(const vector_t *v) {
  const char *dir = getenv("PX_NOISE_CORPUS_DIR");
  const blob_t *all[4] = {&v->ciphertext[0], &v->ciphertext[1],
                          &v->ciphertext[2], &v->ciphertext[3]};
  if (!dir || !*dir) return;
  write_seed(dir, "seed_msg1", all, 1);
  write_seed(dir, "seed_msg12", all, 2);
  write_seed(dir, "seed_msg123", all, 3);
  write_seed(dir, "seed_full", all, 4);
}

/* ---- helpers ---------------------------------------------------------------
 */

static uint8_t g_buf[PX_NOISE_MAX_MSG];
static uint8_t g_pay[PX_NOISE_MAX_MSG];

static void pubkey(const uint8_t sk[32], uint8_t pk[32]) {
  assert_int_equal(crypto_scalarmult_base(pk, sk), 0);
}

/* Write on `from`, read on `to`; return the message length. */
static size_t pass(px_noise_hs_t *from, px_noise_hs_t *to, const uint8_t *pl,
                   size_t plen) {
  size_t mlen = 0, got = 0;
  assert_int_equal(
      px_noise_hs_write(from, pl, plen, g_buf, sizeof g_buf, &mlen), 0);
  assert_int_equal(px_noise_hs_read(to, g_buf, mlen, g_pay, sizeof g_pay, &got),
                   0);
  assert_int_equal(got, plen);
  if (plen) assert_memory_equal(g_pay, pl, plen);
  return mlen;
}

static void random_pair(px_noise_hs_t *i, px_noise_hs_t *r,
                        const char *prologue) {
  uint8_t si[32], sr[32];
  size_t plen = prologue ? strlen(prologue) : 0;
  randombytes_buf(si, sizeof si);
  randombytes_buf(sr, sizeof sr);
  assert_int_equal(
      px_noise_hs_init(i, 1, (const uint8_t *)prologue, plen, si, NULL, NULL),
      0);
  assert_int_equal(
      px_noise_hs_init(r, 0, (const uint8_t *)prologue, plen, sr, NULL, NULL),
      0);
}

static void full_handshake(px_noise_hs_t *i, px_noise_hs_t *r) {
  pass(i, r, (const uint8_t *)"one", 3);
  pass(r, i, (const uint8_t *)"two", 3);
  pass(i, r, (const uint8_t *)"three", 5);
  assert_true(px_noise_hs_done(i));
  assert_true(px_noise_hs_done(r));
}

/* ---- 1. published vectors -------------------------------------------------
 */

static void run_vector(const vector_t *v, size_t *msgs_checked,
                       size_t *hashes_checked) {
  px_noise_hs_t ini, res;
  px_noise_cipher_t i_send, i_recv, r_send, r_recv;
  uint8_t h_i[32], h_r[32], pk[32], rs[32];

  assert_string_equal(v->protocol_name, PX_NOISE_PROTOCOL_NAME);
  assert_int_equal(v->init_static.len, 32);
  assert_int_equal(v->resp_static.len, 32);
  assert_int_equal(v->init_ephemeral.len, 32);
  assert_int_equal(v->resp_ephemeral.len, 32);
  assert_true(v->n_payload >= 3);

  assert_int_equal(px_noise_hs_init(&ini, 1, v->init_prologue.data,
                                    v->init_prologue.len, v->init_static.data,
                                    NULL, NULL),
                   0);
  assert_int_equal(px_noise_hs_init(&res, 0, v->resp_prologue.data,
                                    v->resp_prologue.len, v->resp_static.data,
                                    NULL, NULL),
                   0);
  px_noise_hs_set_ephemeral(&ini, v->init_ephemeral.data);
  px_noise_hs_set_ephemeral(&res, v->resp_ephemeral.data);

  for (size_t m = 0; m < 3; m++) {
    px_noise_hs_t *w = (m % 2 == 0) ? &ini : &res;
    px_noise_hs_t *rd = (m % 2 == 0) ? &res : &ini;
    size_t mlen = 0, got = 0;
    assert_true(px_noise_hs_my_turn(w));
    assert_false(px_noise_hs_my_turn(rd));
    assert_int_equal(px_noise_hs_write(w, v->payload[m].data, v->payload[m].len,
                                       g_buf, sizeof g_buf, &mlen),
                     0);
    assert_int_equal(mlen, v->ciphertext[m].len);
    assert_memory_equal(g_buf, v->ciphertext[m].data, mlen);
    assert_int_equal(px_noise_hs_read(rd, v->ciphertext[m].data,
                                      v->ciphertext[m].len, g_pay, sizeof g_pay,
                                      &got),
                     0);
    assert_int_equal(got, v->payload[m].len);
    assert_memory_equal(g_pay, v->payload[m].data, got);
    px_noise_hs_hash(w, h_i);
    px_noise_hs_hash(rd, h_r);
    assert_memory_equal(h_i, h_r, 32); /* both transcripts agree */
    if (v->handshake_hash.len && (size_t)v->handshake_hash_at == m + 1) {
      assert_int_equal(v->handshake_hash.len, 32);
      assert_memory_equal(h_i, v->handshake_hash.data, 32);
      (*hashes_checked)++;
    }
    (*msgs_checked)++;
  }
  assert_true(px_noise_hs_done(&ini));
  assert_true(px_noise_hs_done(&res));

  px_noise_hs_hash(&ini, h_i);
  px_noise_hs_hash(&res, h_r);
  assert_memory_equal(h_i, h_r, 32);

  pubkey(v->resp_static.data, pk);
  px_noise_hs_remote_static(&ini, rs);
  assert_memory_equal(rs, pk, 32);
  pubkey(v->init_static.data, pk);
  px_noise_hs_remote_static(&res, rs);
  assert_memory_equal(rs, pk, 32);

  assert_int_equal(px_noise_hs_split(&ini, &i_send, &i_recv), 0);
  assert_int_equal(px_noise_hs_split(&res, &r_send, &r_recv), 0);
  assert_memory_equal(i_send.k, r_recv.k, 32);
  assert_memory_equal(i_recv.k, r_send.k, 32);

  for (size_t m = 3; m < v->n_payload; m++) {
    /* Alternation continues past the handshake: even index = initiator. */
    px_noise_cipher_t *enc = (m % 2 == 0) ? &i_send : &r_send;
    px_noise_cipher_t *dec = (m % 2 == 0) ? &r_recv : &i_recv;
    const blob_t *pl = &v->payload[m], *ct = &v->ciphertext[m];
    assert_int_equal(ct->len, pl->len + 16);
    assert_int_equal(px_noise_encrypt(enc, NULL, 0, pl->data, pl->len, g_buf),
                     0);
    assert_memory_equal(g_buf, ct->data, ct->len);
    assert_int_equal(px_noise_decrypt(dec, NULL, 0, ct->data, ct->len, g_pay),
                     0);
    assert_memory_equal(g_pay, pl->data, pl->len);
    (*msgs_checked)++;
  }

  /* The hash and remote static survive the split; the secrets do not. */
  px_noise_hs_hash(&ini, h_r);
  assert_memory_equal(h_i, h_r, 32);
  assert_true(sodium_is_zero(ini.ck, 32));
  assert_true(sodium_is_zero(ini.e_sk, 32));
  assert_true(sodium_is_zero(ini.s_sk, 32));
  assert_true(sodium_is_zero(res.e_sk, 32));
  px_noise_hs_wipe(&ini);
  px_noise_hs_wipe(&res);
  px_noise_cipher_wipe(&i_send);
  px_noise_cipher_wipe(&i_recv);
  px_noise_cipher_wipe(&r_send);
  px_noise_cipher_wipe(&r_recv);
}

static void test_published_vectors(void **state) {
  static vector_t vecs[4];
  size_t n, msgs = 0, hashes = 0;
  (void)state;
  n = load_vectors(vecs, PX_ARRAY_LEN(vecs));
  assert_int_equal(n, 3);
  for (size_t i = 0; i < n; i++)
    run_vector(&vecs[i], &msgs, &hashes);
  /* cacophony 3 + 3 messages, snow 3 + 2, noise-c 3 + 3; hashes from
   * cacophony (after message 2) and noise-c (final) */
  assert_int_equal(msgs, 17);
  assert_int_equal(hashes, 2);
  dump_corpus(&vecs[0]);
}

/* ---- 2. properties ---------------------------------------------------------
 */

static void test_random_handshake_and_transport(void **state) {
  px_noise_hs_t ini, res;
  px_noise_cipher_t i_send, i_recv, r_send, r_recv;
  uint8_t h_i[32], h_r[32], pt[2048], ct[2048 + 16], back[2048];
  (void)state;

  for (int round = 0; round < 8; round++) {
    random_pair(&ini, &res, round % 2 ? "plexus/1 test" : NULL);
    full_handshake(&ini, &res);
    px_noise_hs_hash(&ini, h_i);
    px_noise_hs_hash(&res, h_r);
    assert_memory_equal(h_i, h_r, 32);
    assert_int_equal(px_noise_hs_split(&ini, &i_send, &i_recv), 0);
    assert_int_equal(px_noise_hs_split(&res, &r_send, &r_recv), 0);

    for (int m = 0; m < 500; m++) {
      int from_i = (m % 3) != 0; /* uneven interleaving */
      size_t n = (size_t)randombytes_uniform(sizeof pt + 1);
      px_noise_cipher_t *enc = from_i ? &i_send : &r_send;
      px_noise_cipher_t *dec = from_i ? &r_recv : &i_recv;
      randombytes_buf(pt, n);
      assert_int_equal(px_noise_encrypt(enc, NULL, 0, pt, n, ct), 0);
      assert_int_equal(px_noise_decrypt(dec, NULL, 0, ct, n + 16, back), 0);
      if (n) assert_memory_equal(back, pt, n);
    }
    /* in place, with associated data */
    memcpy(ct, "hello plexus", 12);
    assert_int_equal(
        px_noise_encrypt(&r_send, (const uint8_t *)"ad", 2, ct, 12, ct), 0);
    assert_int_equal(
        px_noise_decrypt(&i_recv, (const uint8_t *)"ad", 2, ct, 28, ct), 0);
    assert_memory_equal(ct, "hello plexus", 12);
    assert_int_equal(i_send.n, r_recv.n);
    assert_int_equal(r_send.n, i_recv.n);
  }
}

static void test_empty_payloads(void **state) {
  px_noise_hs_t ini, res;
  px_noise_cipher_t a, b, c, d;
  size_t mlen = 0, got = 99;
  (void)state;
  random_pair(&ini, &res, "");
  assert_int_equal(px_noise_hs_write(&ini, NULL, 0, g_buf, 32, &mlen), 0);
  assert_int_equal(mlen, 32);
  assert_int_equal(px_noise_hs_read(&res, g_buf, mlen, NULL, 0, &got), 0);
  assert_int_equal(got, 0);
  assert_int_equal(px_noise_hs_write(&res, NULL, 0, g_buf, 96, &mlen), 0);
  assert_int_equal(mlen, 96);
  assert_int_equal(px_noise_hs_read(&ini, g_buf, mlen, NULL, 0, &got), 0);
  assert_int_equal(px_noise_hs_write(&ini, NULL, 0, g_buf, 64, &mlen), 0);
  assert_int_equal(mlen, 64);
  assert_int_equal(px_noise_hs_read(&res, g_buf, mlen, NULL, 0, &got), 0);
  assert_int_equal(px_noise_hs_split(&ini, &a, &b), 0);
  assert_int_equal(px_noise_hs_split(&res, &c, &d), 0);
  assert_int_equal(px_noise_encrypt(&a, NULL, 0, NULL, 0, g_buf), 0);
  assert_int_equal(px_noise_decrypt(&d, NULL, 0, g_buf, 16, NULL), 0);
}

static void test_tampered_handshake(void **state) {
  px_noise_hs_t ini, res;
  size_t mlen = 0, got = 0;
  (void)state;

  /* Message 1 is not authenticated on its own: a flipped bit in it changes
   * the responder's transcript, so message 2 fails at the initiator. */
  for (size_t pos = 0; pos < 35; pos += 7) {
    random_pair(&ini, &res, "p");
    assert_int_equal(px_noise_hs_write(&ini, (const uint8_t *)"abc", 3, g_buf,
                                       sizeof g_buf, &mlen),
                     0);
    g_buf[pos] ^= 0x01;
    assert_int_equal(
        px_noise_hs_read(&res, g_buf, mlen, g_pay, sizeof g_pay, &got), 0);
    int rc = px_noise_hs_write(&res, NULL, 0, g_buf, sizeof g_buf, &mlen);
    if (rc == 0) {
      rc = px_noise_hs_read(&ini, g_buf, mlen, g_pay, sizeof g_pay, &got);
      assert_int_equal(rc, PX_EAUTH);
    } else {
      assert_int_equal(rc, PX_ECRYPTO); /* flipped e became low order */
    }
  }

  /* Every byte of message 2 is covered by an AEAD tag (or feeds the DH). */
  for (size_t pos = 0; pos < 96 + 5; pos++) {
    random_pair(&ini, &res, "p");
    pass(&ini, &res, NULL, 0);
    assert_int_equal(px_noise_hs_write(&res, (const uint8_t *)"hello", 5, g_buf,
                                       sizeof g_buf, &mlen),
                     0);
    g_buf[pos] ^= 0x80;
    int rc = px_noise_hs_read(&ini, g_buf, mlen, g_pay, sizeof g_pay, &got);
    assert_true(rc == PX_EAUTH || rc == PX_ECRYPTO);
    assert_int_equal(got, 0);
    /* the handshake is dead and its secrets are gone */
    assert_int_equal(
        px_noise_hs_write(&ini, NULL, 0, g_buf, sizeof g_buf, &mlen),
        PX_ESTATE);
    assert_int_equal(
        px_noise_hs_read(&ini, g_buf, mlen, g_pay, sizeof g_pay, &got),
        PX_ESTATE);
    assert_true(sodium_is_zero(ini.e_sk, 32));
    assert_true(sodium_is_zero(ini.s_sk, 32));
    assert_false(px_noise_hs_done(&ini));
  }

  /* Every byte of message 3. */
  for (size_t pos = 0; pos < 64 + 4; pos++) {
    random_pair(&ini, &res, "p");
    pass(&ini, &res, NULL, 0);
    pass(&res, &ini, NULL, 0);
    assert_int_equal(px_noise_hs_write(&ini, (const uint8_t *)"abcd", 4, g_buf,
                                       sizeof g_buf, &mlen),
                     0);
    g_buf[pos] ^= 0x04;
    assert_int_equal(
        px_noise_hs_read(&res, g_buf, mlen, g_pay, sizeof g_pay, &got),
        PX_EAUTH);
    assert_false(px_noise_hs_done(&res));
  }

  /* Truncated messages. */
  random_pair(&ini, &res, "p");
  assert_int_equal(px_noise_hs_read(&res, g_buf, 31, g_pay, sizeof g_pay, &got),
                   PX_EHANDSHAKE);
  assert_int_equal(px_noise_hs_write(&res, NULL, 0, g_buf, sizeof g_buf, &mlen),
                   PX_ESTATE);
  random_pair(&ini, &res, "p");
  pass(&ini, &res, NULL, 0);
  assert_int_equal(px_noise_hs_write(&res, NULL, 0, g_buf, sizeof g_buf, &mlen),
                   0);
  assert_int_equal(
      px_noise_hs_read(&ini, g_buf, mlen - 1, g_pay, sizeof g_pay, &got),
      PX_EHANDSHAKE);
  random_pair(&ini, &res, "p");
  pass(&ini, &res, NULL, 0);
  pass(&res, &ini, NULL, 0);
  assert_int_equal(px_noise_hs_write(&ini, NULL, 0, g_buf, sizeof g_buf, &mlen),
                   0);
  assert_int_equal(px_noise_hs_read(&res, g_buf, 63, g_pay, sizeof g_pay, &got),
                   PX_EHANDSHAKE);
  /* Extra bytes on message 2 become "payload" and break the tag. */
  random_pair(&ini, &res, "p");
  pass(&ini, &res, NULL, 0);
  assert_int_equal(px_noise_hs_write(&res, NULL, 0, g_buf, sizeof g_buf, &mlen),
                   0);
  g_buf[mlen] = 0;
  assert_int_equal(
      px_noise_hs_read(&ini, g_buf, mlen + 1, g_pay, sizeof g_pay, &got),
      PX_EAUTH);
}

static void test_tampered_transport(void **state) {
  px_noise_hs_t ini, res;
  px_noise_cipher_t i_send, i_recv, r_send, r_recv;
  uint8_t ct[64 + 16], out[64];
  const uint8_t msg[64] = "the quick brown fox";
  (void)state;
  random_pair(&ini, &res, NULL);
  full_handshake(&ini, &res);
  assert_int_equal(px_noise_hs_split(&ini, &i_send, &i_recv), 0);
  assert_int_equal(px_noise_hs_split(&res, &r_send, &r_recv), 0);

  assert_int_equal(px_noise_encrypt(&i_send, NULL, 0, msg, sizeof msg, ct), 0);
  for (size_t pos = 0; pos < sizeof ct; pos++) {
    ct[pos] ^= 0x10;
    assert_int_equal(px_noise_decrypt(&r_recv, NULL, 0, ct, sizeof ct, out),
                     PX_EAUTH);
    ct[pos] ^= 0x10;
  }
  assert_int_equal(r_recv.n, 0); /* failures do not consume nonces */
  /* wrong associated data, truncation */
  assert_int_equal(
      px_noise_decrypt(&r_recv, (const uint8_t *)"x", 1, ct, sizeof ct, out),
      PX_EAUTH);
  assert_int_equal(px_noise_decrypt(&r_recv, NULL, 0, ct, 15, out), PX_EAUTH);
  assert_int_equal(px_noise_decrypt(&r_recv, NULL, 0, ct, sizeof ct - 1, out),
                   PX_EAUTH);
  /* the genuine message still decrypts, once */
  assert_int_equal(px_noise_decrypt(&r_recv, NULL, 0, ct, sizeof ct, out), 0);
  assert_memory_equal(out, msg, sizeof msg);
  assert_int_equal(px_noise_decrypt(&r_recv, NULL, 0, ct, sizeof ct, out),
                   PX_EAUTH); /* replay */
  /* a message for the other direction does not decrypt here */
  assert_int_equal(px_noise_encrypt(&i_send, NULL, 0, msg, sizeof msg, ct), 0);
  assert_int_equal(px_noise_decrypt(&i_recv, NULL, 0, ct, sizeof ct, out),
                   PX_EAUTH);
}

static void test_out_of_order(void **state) {
  px_noise_hs_t ini, res, zero;
  px_noise_cipher_t a, b, none;
  size_t mlen = 0, got = 0;
  (void)state;
  memset(&zero, 0, sizeof zero);
  memset(&none, 0, sizeof none);
  random_pair(&ini, &res, NULL);

  /* an uninitialised state does nothing */
  assert_int_equal(
      px_noise_hs_write(&zero, NULL, 0, g_buf, sizeof g_buf, &mlen), PX_ESTATE);
  assert_int_equal(
      px_noise_hs_read(&zero, g_buf, 32, g_pay, sizeof g_pay, &got), PX_ESTATE);
  /* the responder speaks second, the initiator first */
  assert_int_equal(px_noise_hs_write(&res, NULL, 0, g_buf, sizeof g_buf, &mlen),
                   PX_ESTATE);
  assert_int_equal(px_noise_hs_read(&ini, g_buf, 96, g_pay, sizeof g_pay, &got),
                   PX_ESTATE);
  assert_int_equal(px_noise_hs_split(&ini, &a, &b), PX_ESTATE);
  pass(&ini, &res, NULL, 0);
  /* initiator may not write twice in a row */
  assert_int_equal(px_noise_hs_write(&ini, NULL, 0, g_buf, sizeof g_buf, &mlen),
                   PX_ESTATE);
  assert_int_equal(px_noise_hs_read(&res, g_buf, 64, g_pay, sizeof g_pay, &got),
                   PX_ESTATE);
  pass(&res, &ini, NULL, 0);
  assert_int_equal(px_noise_hs_split(&res, &a, &b), PX_ESTATE);
  pass(&ini, &res, NULL, 0);
  /* after the third message nothing more is accepted */
  assert_int_equal(px_noise_hs_write(&ini, NULL, 0, g_buf, sizeof g_buf, &mlen),
                   PX_ESTATE);
  assert_int_equal(px_noise_hs_write(&res, NULL, 0, g_buf, sizeof g_buf, &mlen),
                   PX_ESTATE);
  assert_int_equal(px_noise_hs_read(&ini, g_buf, 64, g_pay, sizeof g_pay, &got),
                   PX_ESTATE);
  assert_int_equal(px_noise_hs_split(&ini, &a, &a), PX_EINVAL);
  assert_int_equal(px_noise_hs_split(&ini, &a, &b), 0);
  assert_int_equal(px_noise_hs_split(&ini, &a, &b), PX_ESTATE); /* twice */
  /* transport without a key */
  assert_int_equal(px_noise_encrypt(&none, NULL, 0, g_pay, 1, g_buf),
                   PX_ESTATE);
  assert_int_equal(px_noise_decrypt(&none, NULL, 0, g_pay, 17, g_buf),
                   PX_ESTATE);
  assert_int_equal(px_noise_cipher_rekey(&none), PX_ESTATE);
  /* bad arguments */
  assert_int_equal(px_noise_hs_init(NULL, 1, NULL, 0, g_pay, NULL, NULL),
                   PX_EINVAL);
  assert_int_equal(px_noise_hs_init(&zero, 1, NULL, 3, g_pay, NULL, NULL),
                   PX_EINVAL);
  assert_int_equal(px_noise_hs_init(&zero, 1, NULL, 0, NULL, NULL, NULL),
                   PX_EINVAL);
}

static void test_oversize(void **state) {
  px_noise_hs_t ini, res;
  px_noise_cipher_t i_send, i_recv, r_send, r_recv;
  size_t mlen = 0, got = 0;
  static uint8_t big[PX_NOISE_MAX_MSG + 1];
  (void)state;

  random_pair(&ini, &res, NULL);
  /* message 1: 32 + payload <= 65535 */
  assert_int_equal(px_noise_hs_write(&ini, big, PX_NOISE_MAX_MSG - 32 + 1, big,
                                     sizeof big, &mlen),
                   PX_ETOOBIG);
  /* too small an output buffer is the caller's error and changes nothing */
  assert_int_equal(px_noise_hs_write(&ini, g_pay, 10, g_buf, 41, &mlen),
                   PX_EINVAL);
  memset(g_pay, 0x5a, PX_NOISE_MAX_MSG - 32);
  assert_int_equal(px_noise_hs_write(&ini, g_pay, PX_NOISE_MAX_MSG - 32, g_buf,
                                     sizeof g_buf, &mlen),
                   0);
  assert_int_equal(mlen, PX_NOISE_MAX_MSG);
  /* payload larger than the reader's buffer: PX_EINVAL, state kept */
  assert_int_equal(px_noise_hs_read(&res, g_buf, mlen, big, 100, &got),
                   PX_EINVAL);
  assert_int_equal(px_noise_hs_read(&res, g_buf, mlen, big, sizeof big, &got),
                   0);
  assert_int_equal(got, PX_NOISE_MAX_MSG - 32);
  /* message 2: 96 + payload */
  assert_int_equal(px_noise_hs_write(&res, g_pay, PX_NOISE_MAX_MSG - 96 + 1,
                                     g_buf, sizeof g_buf, &mlen),
                   PX_ETOOBIG);
  assert_int_equal(px_noise_hs_write(&res, g_pay, PX_NOISE_MAX_MSG - 96, g_buf,
                                     sizeof g_buf, &mlen),
                   0);
  assert_int_equal(mlen, PX_NOISE_MAX_MSG);
  assert_int_equal(px_noise_hs_read(&ini, g_buf, mlen, big, sizeof big, &got),
                   0);
  /* message 3: 64 + payload */
  assert_int_equal(px_noise_hs_write(&ini, g_pay, PX_NOISE_MAX_MSG - 64 + 1,
                                     g_buf, sizeof g_buf, &mlen),
                   PX_ETOOBIG);
  assert_int_equal(px_noise_hs_write(&ini, g_pay, PX_NOISE_MAX_MSG - 64, g_buf,
                                     sizeof g_buf, &mlen),
                   0);
  assert_int_equal(mlen, PX_NOISE_MAX_MSG);
  assert_int_equal(px_noise_hs_read(&res, g_buf, mlen, big, sizeof big, &got),
                   0);
  assert_int_equal(got, PX_NOISE_MAX_MSG - 64);
  assert_int_equal(px_noise_hs_split(&ini, &i_send, &i_recv), 0);
  assert_int_equal(px_noise_hs_split(&res, &r_send, &r_recv), 0);

  /* transport: payload + 16 <= 65535 */
  assert_int_equal(
      px_noise_encrypt(&i_send, NULL, 0, g_pay, PX_NOISE_MAX_MSG - 15, big),
      PX_ETOOBIG);
  assert_int_equal(
      px_noise_encrypt(&i_send, NULL, 0, g_pay, PX_NOISE_MAX_MSG - 16, big), 0);
  assert_int_equal(
      px_noise_decrypt(&r_recv, NULL, 0, big, PX_NOISE_MAX_MSG + 1, g_buf),
      PX_ETOOBIG);
  assert_int_equal(
      px_noise_decrypt(&r_recv, NULL, 0, big, PX_NOISE_MAX_MSG, g_buf), 0);
  assert_memory_equal(g_buf, g_pay, PX_NOISE_MAX_MSG - 16);

  /* an incoming handshake message over the limit kills the handshake */
  random_pair(&ini, &res, NULL);
  assert_int_equal(
      px_noise_hs_read(&res, big, sizeof big, big, sizeof big, &got),
      PX_ETOOBIG);
  assert_int_equal(px_noise_hs_read(&res, big, 32, big, sizeof big, &got),
                   PX_ESTATE);
}

static void test_remote_static(void **state) {
  px_noise_hs_t ini, res;
  uint8_t si[32], sr[32], pi[32], pr[32], rs[32], ls[32];
  (void)state;
  randombytes_buf(si, 32);
  randombytes_buf(sr, 32);
  pubkey(si, pi);
  pubkey(sr, pr);
  assert_int_equal(px_noise_hs_init(&ini, 1, NULL, 0, si, NULL, NULL), 0);
  assert_int_equal(px_noise_hs_init(&res, 0, NULL, 0, sr, NULL, NULL), 0);
  px_noise_hs_local_static(&ini, ls);
  assert_memory_equal(ls, pi, 32);
  px_noise_hs_local_static(&res, ls);
  assert_memory_equal(ls, pr, 32);

  px_noise_hs_remote_static(&ini, rs);
  assert_true(sodium_is_zero(rs, 32));
  pass(&ini, &res, NULL, 0);
  px_noise_hs_remote_static(&res, rs);
  assert_true(sodium_is_zero(rs, 32)); /* msg 1 carries no static */
  pass(&res, &ini, NULL, 0);
  px_noise_hs_remote_static(&ini, rs); /* initiator learns it from msg 2 */
  assert_memory_equal(rs, pr, 32);
  pass(&ini, &res, NULL, 0);
  px_noise_hs_remote_static(&res, rs); /* responder from msg 3 */
  assert_memory_equal(rs, pi, 32);
}

static void test_nonce_exhaustion(void **state) {
  px_noise_hs_t ini, res;
  px_noise_cipher_t i_send, i_recv, r_send, r_recv;
  uint8_t ct[20], pt[4] = {1, 2, 3, 4}, out[4];
  (void)state;
  random_pair(&ini, &res, NULL);
  full_handshake(&ini, &res);
  assert_int_equal(px_noise_hs_split(&ini, &i_send, &i_recv), 0);
  assert_int_equal(px_noise_hs_split(&res, &r_send, &r_recv), 0);
  i_send.n = UINT64_MAX - 1;
  r_recv.n = UINT64_MAX - 1;
  assert_int_equal(px_noise_encrypt(&i_send, NULL, 0, pt, 4, ct), 0);
  assert_int_equal(px_noise_decrypt(&r_recv, NULL, 0, ct, 20, out), 0);
  assert_memory_equal(out, pt, 4);
  assert_true(i_send.n == UINT64_MAX);
  assert_int_equal(px_noise_encrypt(&i_send, NULL, 0, pt, 4, ct), PX_ELIMIT);
  assert_int_equal(px_noise_decrypt(&r_recv, NULL, 0, ct, 20, out), PX_ELIMIT);
}

static void test_low_order_points(void **state) {
  px_noise_hs_t ini, res;
  size_t mlen = 0, got = 0;
  uint8_t msg1[32] = {0}; /* e = 0: X25519 with it gives all zeros */
  (void)state;
  random_pair(&ini, &res, NULL);
  assert_int_equal(px_noise_hs_read(&res, msg1, 32, g_pay, sizeof g_pay, &got),
                   0);
  assert_int_equal(px_noise_hs_write(&res, NULL, 0, g_buf, sizeof g_buf, &mlen),
                   PX_ECRYPTO);
  assert_int_equal(px_noise_hs_write(&res, NULL, 0, g_buf, sizeof g_buf, &mlen),
                   PX_ESTATE);

  random_pair(&ini, &res, NULL);
  assert_int_equal(px_noise_hs_write(&ini, NULL, 0, g_buf, sizeof g_buf, &mlen),
                   0);
  memset(g_buf, 0, 96);
  g_buf[0] = 1; /* the identity point, also low order */
  assert_int_equal(px_noise_hs_read(&ini, g_buf, 96, g_pay, sizeof g_pay, &got),
                   PX_ECRYPTO);
}

static void test_prologue_mismatch(void **state) {
  px_noise_hs_t ini, res;
  uint8_t si[32], sr[32];
  size_t mlen = 0, got = 0;
  (void)state;
  randombytes_buf(si, 32);
  randombytes_buf(sr, 32);
  assert_int_equal(
      px_noise_hs_init(&ini, 1, (const uint8_t *)"net-a", 5, si, NULL, NULL),
      0);
  assert_int_equal(
      px_noise_hs_init(&res, 0, (const uint8_t *)"net-b", 5, sr, NULL, NULL),
      0);
  pass(&ini, &res, NULL, 0);
  assert_int_equal(px_noise_hs_write(&res, NULL, 0, g_buf, sizeof g_buf, &mlen),
                   0);
  assert_int_equal(
      px_noise_hs_read(&ini, g_buf, mlen, g_pay, sizeof g_pay, &got), PX_EAUTH);
}

static void test_rekey(void **state) {
  px_noise_hs_t ini, res;
  px_noise_cipher_t i_send, i_recv, r_send, r_recv, saved;
  uint8_t ct[21], out[5];
  (void)state;
  random_pair(&ini, &res, NULL);
  full_handshake(&ini, &res);
  assert_int_equal(px_noise_hs_split(&ini, &i_send, &i_recv), 0);
  assert_int_equal(px_noise_hs_split(&res, &r_send, &r_recv), 0);
  saved = r_recv;
  assert_int_equal(px_noise_cipher_rekey(&i_send), 0);
  assert_int_equal(i_send.n, 0); /* n unchanged */
  assert_int_equal(
      px_noise_encrypt(&i_send, NULL, 0, (const uint8_t *)"hello", 5, ct), 0);
  assert_int_equal(px_noise_decrypt(&saved, NULL, 0, ct, 21, out), PX_EAUTH);
  assert_int_equal(px_noise_cipher_rekey(&r_recv), 0);
  assert_int_equal(px_noise_decrypt(&r_recv, NULL, 0, ct, 21, out), 0);
  assert_memory_equal(out, "hello", 5);
}

static void counting_rng(void *ud, uint8_t *out, size_t n) {
  int *calls = ud;
  (*calls)++;
  memset(out, 0x42, n);
}

static void test_injected_rng(void **state) {
  px_noise_hs_t a, b;
  uint8_t s[32] = {7}, first[32];
  size_t mlen = 0;
  int calls = 0;
  (void)state;
  assert_int_equal(px_noise_hs_init(&a, 1, NULL, 0, s, counting_rng, &calls),
                   0);
  assert_int_equal(px_noise_hs_init(&b, 1, NULL, 0, s, counting_rng, &calls),
                   0);
  assert_int_equal(calls, 0); /* drawn only when e is first needed */
  assert_int_equal(px_noise_hs_write(&a, NULL, 0, g_buf, sizeof g_buf, &mlen),
                   0);
  memcpy(first, g_buf, 32);
  assert_int_equal(px_noise_hs_write(&b, NULL, 0, g_buf, sizeof g_buf, &mlen),
                   0);
  assert_int_equal(calls, 2);
  assert_memory_equal(first, g_buf, 32); /* deterministic through the rng */
  px_noise_hs_wipe(&a);
  assert_true(sodium_is_zero((const unsigned char *)&a, sizeof a));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_published_vectors),
      cmocka_unit_test(test_random_handshake_and_transport),
      cmocka_unit_test(test_empty_payloads),
      cmocka_unit_test(test_tampered_handshake),
      cmocka_unit_test(test_tampered_transport),
      cmocka_unit_test(test_out_of_order),
      cmocka_unit_test(test_oversize),
      cmocka_unit_test(test_remote_static),
      cmocka_unit_test(test_nonce_exhaustion),
      cmocka_unit_test(test_low_order_points),
      cmocka_unit_test(test_prologue_mismatch),
      cmocka_unit_test(test_rekey),
      cmocka_unit_test(test_injected_rng),
  };
  if (sodium_init() < 0) return 1;
  return cmocka_run_group_tests(tests, NULL, NULL);
}
