/*
 * fuzz_p2p_stream.c — hostile bytes into the p2p core's connection.
 *
 * Mode (first input byte, even/odd):
 *  - raw: the bytes arrive on a fresh inbound connection as they would from
 *    an unauthenticated TCP peer (length-prefixed Noise handshake frames);
 *  - authenticated: a deterministic peer completes a real Noise XX
 *    handshake first, then the input is split into application messages
 *    (u32 length + body as given), encrypted correctly and delivered, so the
 *    fuzzer reaches the app framing, the codec and every message handler.
 * Either way the core must never crash, read out of bounds, leak or accept
 * something it should not.  Effects are drained and released each run.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "plexus/codec.h"
#include "plexus/crypto.h"
#include "plexus/p2p.h"
#include "p2p/noise.h"
#include "base/px_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void det_rng(void *ud, uint8_t *out, size_t n) {
  px_rng_fill(ud, out, n);
}

static px_rng_t g_rng;

static size_t drain(px_p2p_t *p, uint64_t conn, uint8_t *buf, size_t cap,
                    int *closed) {
  size_t n = 0;
  px_p2p_fx_t f;
  while (px_p2p_poll(p, &f)) {
    if (f.kind == PX_P2P_FX_SEND && f.conn == conn && buf &&
        n + f.data.len <= cap) {
      memcpy(buf + n, f.data.data, f.data.len);
      n += f.data.len;
    }
    if (f.kind == PX_P2P_FX_CLOSE) *closed = 1;
    px_p2p_fx_release(&f);
  }
  return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int init;
  if (!init) {
    px_crypto_init();
    px_log_set_level(PX_LOG_ERROR);
    init = 1;
  }
  if (size < 1) return 0;
  px_rng_seed(&g_rng, 1);
  px_p2p_config_t cfg;
  px_p2p_config_default(&cfg);
  uint8_t seed[32] = {1};
  px_key_from_seed(&cfg.identity, seed);
  cfg.rng = det_rng;
  cfg.rng_ud = &g_rng;
  cfg.max_msg = 1 << 16;
  cfg.seen_cap = 64;
  px_p2p_t *p;
  if (px_p2p_new(&cfg, &p)) return 0;
  uint64_t conn;
  int closed = 0;
  uint64_t now = 1000;
  if (px_p2p_on_inbound(p, "192.0.2.1:1000", now, &conn)) {
    px_p2p_free(p);
    return 0;
  }
  int mode = data[0] & 1;
  data++;
  size--;
  if (mode == 0) {
    /* Raw bytes in up to three reads. */
    size_t a = size / 3, b = size / 3;
    px_p2p_on_data(p, conn, data, a, now);
    drain(p, conn, NULL, 0, &closed);
    px_p2p_on_data(p, conn, data + a, b, now);
    drain(p, conn, NULL, 0, &closed);
    px_p2p_on_data(p, conn, data + a + b, size - a - b, now);
  } else {
    static uint8_t in[8192], msg[2048], frame[70000], pt[70000];
    px_noise_hs_t hs;
    px_noise_cipher_t tx, rx;
    px_keypair_t kp;
    uint8_t s2[32] = {2}, ssk[32] = {3}, spk[32];
    px_key_from_seed(&kp, s2);
    px_x25519_public(spk, ssk);
    px_noise_hs_init(&hs, 1, (const uint8_t *)"plexus/p2p/1", 12, ssk, det_rng,
                     &g_rng);
    size_t n, pn;
    px_noise_hs_write(&hs, NULL, 0, msg, sizeof msg, &n);
    px_put_u16be(frame, (uint16_t)n);
    memcpy(frame + 2, msg, n);
    px_p2p_on_data(p, conn, frame, n + 2, now);
    size_t got = drain(p, conn, in, sizeof in, &closed);
    if (got < 2 ||
        px_noise_hs_read(&hs, in + 2, got - 2, pt, sizeof pt, &pn) != 0)
      goto out;
    px_msg_t h;
    memset(&h, 0, sizeof h);
    h.type = PX_MSG_HELLO;
    h.u.hello.proto = 1;
    memcpy(h.u.hello.node_pk, kp.pk, 32);
    uint8_t bind[24 + 32];
    memcpy(bind, "plexus-noise-static-key:", 24);
    memcpy(bind + 24, spk, 32);
    px_sign(&kp, bind, sizeof bind, h.u.hello.sig);
    memcpy(h.u.hello.network, "plexus-devnet", 14);
    px_buf_t hb;
    px_buf_init(&hb, 0);
    px_msg_encode(&h, &hb);
    px_noise_hs_write(&hs, hb.data, hb.len, msg, sizeof msg, &n);
    px_buf_release(&hb);
    px_put_u16be(frame, (uint16_t)n);
    memcpy(frame + 2, msg, n);
    px_p2p_on_data(p, conn, frame, n + 2, now);
    if (px_noise_hs_split(&hs, &tx, &rx)) goto out;
    drain(p, conn, NULL, 0, &closed);
    /* Input = sequence of (u16 body length, body): each body becomes one
     * application message, encrypted into one or more frames. */
    size_t off = 0;
    while (off + 2 <= size && !closed) {
      size_t bl = px_get_u16le(data + off);
      off += 2;
      if (bl > size - off) bl = size - off;
      size_t total = 4 + bl;
      px_put_u32le(pt, (uint32_t)bl);
      memcpy(pt + 4, data + off, bl);
      off += bl;
      for (size_t c = 0; c < total && !closed;
           c += PX_NOISE_MAX_TRANSPORT_PAYLOAD) {
        size_t m = PX_MIN(total - c, (size_t)PX_NOISE_MAX_TRANSPORT_PAYLOAD);
        px_put_u16be(frame, (uint16_t)(m + 16));
        if (px_noise_encrypt(&tx, NULL, 0, pt + c, m, frame + 2)) goto out;
        px_p2p_on_data(p, conn, frame, m + 18, now);
        drain(p, conn, NULL, 0, &closed);
      }
      now += 10;
      px_p2p_tick(p, now);
    }
  }
out:
  drain(p, conn, NULL, 0, &closed);
  px_p2p_on_closed(p, conn, 0, now);
  drain(p, conn, NULL, 0, &closed);
  px_p2p_free(p);
  return 0;
}
