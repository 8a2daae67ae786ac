/*
 * session_wire.c — encodings of the inference-session messages between a
 * gateway and a provider (node/session_rt.h has the layouts and the
 * payment rule; docs/market.md "Sessions").
 *
 * Same style as market_wire.c: plexus/codec.h readers and writers, u16 tag
 * + u8 version (PX_MARKET_VERSION), fixed-width little-endian fields.
 * Decoders are strict — every enum, count and bound is checked, trailing
 * bytes are refused, and a value has exactly one encoding (floats travel
 * as their IEEE bits, so fuzz_session_wire can re-encode whatever is
 * accepted and compare the bytes).  Encoders refuse (PX_EINVAL) what the
 * decoders would refuse, so a peer never sees a message its own code
 * could not have produced.
 *
 * OPEN is the one message with a variable token array; its decoder copies
 * the tokens into an aligned heap array (px_ses_open_release).  TOKENS
 * holds at most PX_SES_TOKENS_MAX tokens in a fixed array.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "plexus/codec.h"
#include "node/session_rt.h"
#include "base/px_internal.h"

static void head_write(px_writer_t *w, uint16_t tag) {
  px_writer_u16(w, tag);
  px_writer_u8(w, PX_MARKET_VERSION);
}

static void head_read(px_reader_t *r, uint16_t tag) {
  if (px_reader_u16(r) != tag) px_reader_fail(r, PX_EDECODE);
  if (px_reader_u8(r) != PX_MARKET_VERSION) px_reader_fail(r, PX_EVERSION);
}

static uint32_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static float f32_from(uint32_t u) {
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

static uint64_t max_blob_size(void) {
  return (uint64_t)PX_BLOB_MAX_CHUNKS * PX_BLOB_CHUNK;
}

const char *px_ses_reason_name(uint8_t reason) {
  static const char *const names[] = {
      "ok",        "busy",     "unknown_channel", "not_provider", "price",
      "bad_model", "too_long", "no_credit",       "bad_request",  "internal",
  };
  return reason < PX_ARRAY_LEN(names) ? names[reason] : "unknown";
}

const char *px_ses_finish_name(uint8_t finish) {
  static const char *const names[] = {
      "stop", "length", "max", "credit", "replay", "error",
  };
  return finish < PX_ARRAY_LEN(names) ? names[finish] : "unknown";
}

/* ---- open -----------------------------------------------------------------
 */

static int open_ok(const px_ses_open_t *m) {
  if (m->model_size < 1 || m->model_size > max_blob_size()) return 0;
  /* as the commitment: no negative zero (one encoding per parameter set) */
  if (px_session_params_check(&m->params) || signbit(m->params.temperature) ||
      signbit(m->params.top_p))
    return 0;
  if (m->n_prompt < 1 || m->n_prompt > m->n_tokens ||
      m->n_tokens > m->max_total || m->max_total > PX_SES_MAX_TOKENS)
    return 0;
  if (m->mode != PX_SESSION_GENERATE && m->mode != PX_SESSION_REPLAY) return 0;
  if (m->mode == PX_SESSION_REPLAY && m->max_total != m->n_tokens) return 0;
  return 1;
}

int px_ses_open_encode(const px_ses_open_t *m, px_buf_t *out) {
  if (!open_ok(m) || !m->tokens) return PX_EINVAL;
  for (uint32_t i = 0; i < m->n_tokens; i++)
    if (m->tokens[i] < 0) return PX_EINVAL;
  px_writer_t w;
  px_writer_init(&w, out);
  head_write(&w, PX_SES_TAG_OPEN);
  px_writer_fixed(&w, m->session_id, 32);
  px_writer_fixed(&w, m->channel_id, 32);
  px_writer_fixed(&w, m->model, 32);
  px_writer_u64(&w, m->model_size);
  px_writer_u32(&w, f32_bits(m->params.temperature));
  px_writer_u32(&w, f32_bits(m->params.top_p));
  px_writer_u64(&w, m->params.seed);
  px_writer_u32(&w, m->n_prompt);
  px_writer_u32(&w, m->n_tokens);
  for (uint32_t i = 0; i < m->n_tokens; i++)
    px_writer_i32(&w, m->tokens[i]);
  px_writer_u32(&w, m->max_total);
  px_writer_u64(&w, m->price_per_token);
  px_writer_u8(&w, m->mode);
  return px_writer_finish(&w);
}

void px_ses_open_release(px_ses_open_t *m) {
  if (!m) return;
  px_free(m->tokens_);
  m->tokens_ = NULL;
  m->tokens = NULL;
}

int px_ses_open_decode(const uint8_t *p, size_t n, px_ses_open_t *m) {
  px_reader_t r;
  memset(m, 0, sizeof *m);
  px_reader_init(&r, p, n);
  head_read(&r, PX_SES_TAG_OPEN);
  px_reader_fixed(&r, m->session_id, 32);
  px_reader_fixed(&r, m->channel_id, 32);
  px_reader_fixed(&r, m->model, 32);
  m->model_size = px_reader_u64(&r);
  m->params.temperature = f32_from(px_reader_u32(&r));
  m->params.top_p = f32_from(px_reader_u32(&r));
  m->params.seed = px_reader_u64(&r);
  m->n_prompt = px_reader_u32(&r);
  m->n_tokens = px_reader_u32(&r);
  /* bound the count before allocating: the tokens must be in the input */
  if (!r.err && (m->n_tokens < 1 || m->n_tokens > PX_SES_MAX_TOKENS))
    px_reader_fail(&r, PX_EDECODE);
  if (!r.err && px_reader_remaining(&r) < (size_t)m->n_tokens * 4)
    px_reader_fail(&r, PX_ETRUNC);
  if (!r.err) {
    m->tokens_ = px_malloc((size_t)m->n_tokens * sizeof(int32_t));
    if (!m->tokens_) px_reader_fail(&r, PX_ENOMEM);
  }
  for (uint32_t i = 0; i < m->n_tokens && !r.err; i++) {
    m->tokens_[i] = px_reader_i32(&r);
    if (!r.err && m->tokens_[i] < 0) px_reader_fail(&r, PX_EDECODE);
  }
  m->max_total = px_reader_u32(&r);
  m->price_per_token = px_reader_u64(&r);
  m->mode = px_reader_u8(&r);
  int rc = px_reader_finish(&r);
  if (!rc && !open_ok(m)) rc = PX_EDECODE;
  if (rc) {
    px_free(m->tokens_);
    memset(m, 0, sizeof *m);
    return rc;
  }
  m->tokens = m->tokens_;
  return 0;
}

/* ---- open reply ------------------------------------------------------------
 */

int px_ses_open_reply_encode(const px_ses_open_reply_t *m, px_buf_t *out) {
  if (m->reason > PX_SES_REASON_LAST ||
      memchr(m->message, 0, sizeof m->message) == NULL)
    return PX_EINVAL;
  for (const char *c = m->message; *c; c++)
    if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e) return PX_EINVAL;
  px_writer_t w;
  px_writer_init(&w, out);
  head_write(&w, PX_SES_TAG_OPEN_REPLY);
  px_writer_fixed(&w, m->session_id, 32);
  px_writer_u8(&w, m->reason);
  px_writer_u64(&w, m->price_per_token);
  px_writer_u32(&w, m->credit_tokens);
  px_writer_str(&w, m->message);
  return px_writer_finish(&w);
}

int px_ses_open_reply_decode(const uint8_t *p, size_t n,
                             px_ses_open_reply_t *m) {
  px_reader_t r;
  memset(m, 0, sizeof *m);
  px_reader_init(&r, p, n);
  head_read(&r, PX_SES_TAG_OPEN_REPLY);
  px_reader_fixed(&r, m->session_id, 32);
  m->reason = px_reader_u8(&r);
  m->price_per_token = px_reader_u64(&r);
  m->credit_tokens = px_reader_u32(&r);
  px_reader_str(&r, m->message, sizeof m->message);
  int rc = px_reader_finish(&r);
  if (!rc && m->reason > PX_SES_REASON_LAST) rc = PX_EDECODE;
  if (rc) memset(m, 0, sizeof *m);
  return rc;
}

/* ---- cancel ----------------------------------------------------------------
 */

int px_ses_cancel_encode(const px_ses_cancel_t *m, px_buf_t *out) {
  px_writer_t w;
  px_writer_init(&w, out);
  head_write(&w, PX_SES_TAG_CANCEL);
  px_writer_fixed(&w, m->session_id, 32);
  return px_writer_finish(&w);
}

int px_ses_cancel_decode(const uint8_t *p, size_t n, px_ses_cancel_t *m) {
  px_reader_t r;
  memset(m, 0, sizeof *m);
  px_reader_init(&r, p, n);
  head_read(&r, PX_SES_TAG_CANCEL);
  px_reader_fixed(&r, m->session_id, 32);
  int rc = px_reader_finish(&r);
  if (rc) memset(m, 0, sizeof *m);
  return rc;
}

/* ---- receipt ---------------------------------------------------------------
 */

int px_ses_receipt_encode(const px_ses_receipt_t *m, px_buf_t *out) {
  px_writer_t w;
  px_writer_init(&w, out);
  head_write(&w, PX_SES_TAG_RECEIPT);
  px_writer_fixed(&w, m->channel_id, 32);
  px_writer_u64(&w, m->cumulative);
  px_writer_fixed(&w, m->sig, PX_SIG_LEN);
  return px_writer_finish(&w);
}

int px_ses_receipt_decode(const uint8_t *p, size_t n, px_ses_receipt_t *m) {
  px_reader_t r;
  memset(m, 0, sizeof *m);
  px_reader_init(&r, p, n);
  head_read(&r, PX_SES_TAG_RECEIPT);
  px_reader_fixed(&r, m->channel_id, 32);
  m->cumulative = px_reader_u64(&r);
  px_reader_fixed(&r, m->sig, PX_SIG_LEN);
  int rc = px_reader_finish(&r);
  if (rc) memset(m, 0, sizeof *m);
  return rc;
}

/* ---- tokens ----------------------------------------------------------------
 */

static int tokens_ok(const px_ses_tokens_t *m) {
  if (m->n < 1 || m->n > PX_SES_TOKENS_MAX) return 0;
  if ((uint64_t)m->first + m->n > PX_SES_MAX_TOKENS) return 0;
  return 1;
}

int px_ses_tokens_encode(const px_ses_tokens_t *m, px_buf_t *out) {
  if (!tokens_ok(m)) return PX_EINVAL;
  for (uint32_t i = 0; i < m->n; i++)
    if (m->tokens[i] < 0) return PX_EINVAL;
  px_writer_t w;
  px_writer_init(&w, out);
  head_write(&w, PX_SES_TAG_TOKENS);
  px_writer_fixed(&w, m->session_id, 32);
  px_writer_u32(&w, m->first);
  px_writer_u32(&w, m->n);
  for (uint32_t i = 0; i < m->n; i++)
    px_writer_i32(&w, m->tokens[i]);
  return px_writer_finish(&w);
}

int px_ses_tokens_decode(const uint8_t *p, size_t n, px_ses_tokens_t *m) {
  px_reader_t r;
  memset(m, 0, sizeof *m);
  px_reader_init(&r, p, n);
  head_read(&r, PX_SES_TAG_TOKENS);
  px_reader_fixed(&r, m->session_id, 32);
  m->first = px_reader_u32(&r);
  m->n = px_reader_u32(&r);
  if (!r.err && !tokens_ok(m)) px_reader_fail(&r, PX_EDECODE);
  for (uint32_t i = 0; i < m->n && !r.err; i++) {
    m->tokens[i] = px_reader_i32(&r);
    if (!r.err && m->tokens[i] < 0) px_reader_fail(&r, PX_EDECODE);
  }
  int rc = px_reader_finish(&r);
  if (rc) memset(m, 0, sizeof *m);
  return rc;
}

/* ---- done ------------------------------------------------------------------
 */

int px_ses_done_encode(const px_ses_done_t *m, px_buf_t *out) {
  if (m->finish > PX_SES_FINISH_LAST) return PX_EINVAL;
  px_buf_t cb;
  px_buf_init(&cb, 0);
  if (m->finish != PX_SES_FINISH_ERROR) {
    int rc = px_session_commit_encode(&m->commit, &cb);
    if (!rc && cb.len != PX_SESSION_COMMIT_LEN) rc = PX_EINVAL;
    if (!rc && memcmp(m->commit.session_id, m->session_id, 32)) rc = PX_EINVAL;
    if (rc) {
      px_buf_release(&cb);
      return rc;
    }
  } else {
    if (memchr(m->message, 0, sizeof m->message) == NULL) return PX_EINVAL;
    for (const char *c = m->message; *c; c++)
      if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e)
        return PX_EINVAL;
  }
  px_writer_t w;
  px_writer_init(&w, out);
  head_write(&w, PX_SES_TAG_DONE);
  px_writer_fixed(&w, m->session_id, 32);
  px_writer_u8(&w, m->finish);
  px_writer_u64(&w, m->cost);
  if (m->finish != PX_SES_FINISH_ERROR)
    px_writer_fixed(&w, cb.data, cb.len);
  else
    px_writer_str(&w, m->message);
  px_buf_release(&cb);
  return px_writer_finish(&w);
}

int px_ses_done_decode(const uint8_t *p, size_t n, px_ses_done_t *m) {
  px_reader_t r;
  memset(m, 0, sizeof *m);
  px_reader_init(&r, p, n);
  head_read(&r, PX_SES_TAG_DONE);
  px_reader_fixed(&r, m->session_id, 32);
  m->finish = px_reader_u8(&r);
  m->cost = px_reader_u64(&r);
  if (!r.err && m->finish > PX_SES_FINISH_LAST) px_reader_fail(&r, PX_EDECODE);
  if (!r.err && m->finish != PX_SES_FINISH_ERROR) {
    if (px_reader_remaining(&r) < PX_SESSION_COMMIT_LEN) {
      px_reader_fail(&r, PX_ETRUNC);
    } else {
      int rc = px_session_commit_decode(r.p + r.pos, PX_SESSION_COMMIT_LEN,
                                        &m->commit);
      if (rc) px_reader_fail(&r, rc);
      r.pos += PX_SESSION_COMMIT_LEN;
      if (!r.err && memcmp(m->commit.session_id, m->session_id, 32))
        px_reader_fail(&r, PX_EDECODE);
    }
  } else if (!r.err) {
    px_reader_str(&r, m->message, sizeof m->message);
  }
  int rc = px_reader_finish(&r);
  if (rc) memset(m, 0, sizeof *m);
  return rc;
}

/* ---- price -----------------------------------------------------------------
 */

int px_ses_price_per_token(uint64_t price, const px_llama2c_config_t *cfg,
                           uint64_t *out) {
  *out = 0;
  if (!cfg || cfg->seq_len <= 0 || cfg->n_heads <= 0 || cfg->dim <= 0)
    return PX_EINVAL;
  uint64_t macs = px_session_macs(cfg, (uint32_t)cfg->seq_len);
  if (macs == UINT64_MAX) return PX_ERANGE;
  uint64_t seq = (uint64_t)cfg->seq_len;
  uint64_t work = macs / seq + (macs % seq != 0);
  if (work < 1) work = 1;
  unsigned __int128 v = (unsigned __int128)price * work;
  if (v > UINT64_MAX) return PX_ERANGE;
  *out = (uint64_t)v;
  return 0;
}

int px_ses_cost(uint64_t price_per_token, uint64_t n_tokens, uint64_t *out) {
  unsigned __int128 v = (unsigned __int128)price_per_token * n_tokens;
  if (v > UINT64_MAX) {
    *out = 0;
    return PX_ERANGE;
  }
  *out = (uint64_t)v;
  return 0;
}
