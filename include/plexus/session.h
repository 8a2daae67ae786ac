/*
 * plexus/session.h — inference sessions: deterministic token generation
 * over a llama2.c model, the provider's signed commitment to a finished
 * sequence, and the payer's off-chain payment receipts (docs/market.md
 * "Sessions and payment channels").  Pure code: no ledger, no I/O.
 *
 * Determinism.  A session's tokens are exactly what px_llama_generate
 * produces for the same prompt, seed, temperature and top_p (so a network
 * completion equals `plexus serve` / `plexus generate`):
 *   rng = px_rng_seed(seed); token 0 is fed at position 0, ...; the logits
 *   after feeding token i (position i) give token i+1: prompt tokens are
 *   teacher-forced, from position n_prompt-1 on the next token is
 *   px_sample_f32(logits, vocab, temperature, top_p, &rng); a sampled BOS
 *   (token 1) ends the sequence and is not part of it.  px_sample_f32 draws
 *   exactly one px_rng_next per sample when temperature > 0 and vocab > 1,
 *   none otherwise, so resuming after k generated tokens advances the rng
 *   by k draws (or none) after teacher-forcing them.
 * A sequence of n tokens therefore holds at most seq_len + 1 tokens (the
 * token sampled at the last position is never fed).
 *
 * Threading: a generator uses its model's KV cache and its compute context
 * between calls, so one model + context serves one generator (or replay) at
 * a time; px_llama_* and px_compute_* rules apply.
 */
#ifndef PLEXUS_SESSION_H
#define PLEXUS_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include "plexus/base.h"
#include "plexus/compute.h"
#include "plexus/crypto.h"
#include "plexus/model.h"
#include "plexus/model_io.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PX_SESSION_VERSION 1
#define PX_SESSION_TAG_COMMIT 0x0540
#define PX_SESSION_BOS 1 /* ends a sequence (llama2.c) */
/* Hard cap on tokens in one session (prompt + generated); the model's
 * seq_len + 1 is the real bound. */
#define PX_SESSION_MAX_TOKENS (1u << 20)

typedef enum {
  PX_SESSION_GENERATE = 0, /* the provider sampled the generated tokens */
  PX_SESSION_REPLAY = 1,   /* an auditor's teacher-forced replay */
} px_session_mode_t;

typedef struct {
  float temperature; /* >= 0; 0: argmax */
  float top_p;       /* [0, 1]; 0 or 1: off */
  uint64_t seed;
} px_session_params_t;

/* PX_EINVAL unless temperature >= 0 and 0 <= top_p <= 1 (NaN refused),
 * as px_llama_generate checks. */
int px_session_params_check(const px_session_params_t *p);

/* tokens_hash = BLAKE2b-256("plexus-session-tokens-v1" || u32le n ||
 * i32le t[0..n)). */
void px_session_tokens_hash(const int32_t *t, size_t n, uint8_t out[32]);

/* ---- incremental generator -----------------------------------------------
 * The provider's engine: init teacher-forces tokens[0..n_have) (the prompt
 * and any tokens generated before, e.g. by a provider that stalled), then
 * each px_session_gen_next samples one more token exactly as
 * px_llama_generate would have at that point. */
typedef struct {
  px_llama_t *m;   /* borrowed */
  px_compute_t *c; /* borrowed */
  px_session_params_t p;
  px_rng_t rng;
  int vocab, seq_len;
  uint32_t n;    /* tokens in the sequence so far */
  int32_t last;  /* tokens[n-1] */
  int fed;       /* tokens[n-1] has been fed (logits valid) */
  int done;      /* 0, or the code next returns from now on */
  float *logits; /* the model's, after feeding tokens[n-1] */
  float *probs;  /* owned scratch: vocab floats */
  int *idx;      /* owned scratch: vocab ints */
} px_session_gen_t;

/* Set up and teacher-force tokens[0..n_have) (1 <= n_prompt <= n_have,
 * n_have <= seq_len + 1; tokens[n_prompt..n_have) are earlier generated
 * tokens and may not be BOS).  Runs min(n_have, seq_len) forward passes:
 * call it on the thread that generates.  0; PX_EINVAL (bad params/counts,
 * a BOS among generated tokens); PX_ERANGE (a token outside the vocab);
 * PX_ENOMEM.  On error nothing needs releasing. */
int px_session_gen_init(px_session_gen_t *g, px_llama_t *m, px_compute_t *c,
                        const px_session_params_t *p, const int32_t *tokens,
                        uint32_t n_prompt, uint32_t n_have);
/* The next token: 0 and *tok (appended to the sequence); PX_ECLOSED when
 * the model sampled BOS (the sequence ended: finish "stop"); PX_ELIMIT
 * when the context is full (seq_len + 1 tokens: finish "length").  Once
 * either is returned every later call returns the same.  A caller with a
 * smaller budget (max_tokens) simply stops calling. */
int px_session_gen_next(px_session_gen_t *g, int32_t *tok);
/* Tokens in the sequence so far (prompt included). */
uint32_t px_session_gen_count(const px_session_gen_t *g);
void px_session_gen_release(px_session_gen_t *g); /* zeroed struct ok */

/* ---- replay ---------------------------------------------------------------
 * Teacher-force tokens[0..n_tokens) and check every generated token
 * tokens[n_prompt..n_tokens) equals what sampling gives at its position
 * (and is not BOS, which would have ended the sequence).  0: all equal;
 * PX_EAUTH: *first_mismatch = the first index that differs (and, in the
 * _ex form, *expected = the token sampling gives there, PX_SESSION_BOS if
 * the sequence should have ended); PX_EINVAL/PX_ERANGE for bad input
 * (n_prompt < 1, n_tokens < n_prompt, n_tokens > seq_len + 1, a token
 * outside the vocab).  Only the generated tokens are compared: a sequence
 * that stops early is not refused.  Runs n_tokens - 1 forward passes. */
int px_session_replay(px_llama_t *m, px_compute_t *c,
                      const px_session_params_t *p, const int32_t *tokens,
                      uint32_t n_prompt, uint32_t n_tokens,
                      uint32_t *first_mismatch);
int px_session_replay_ex(px_llama_t *m, px_compute_t *c,
                         const px_session_params_t *p, const int32_t *tokens,
                         uint32_t n_prompt, uint32_t n_tokens,
                         uint32_t *first_mismatch, int32_t *expected);

/* As _ex, but the tokens tokens[n_prompt..n_check) are earlier generated
 * tokens taken as given: teacher-forced with the rng advanced as sampling
 * them did (not compared, but BOS among them is PX_EINVAL); only
 * tokens[n_check..n_tokens) are checked (n_prompt <= n_check <= n_tokens).
 * What a dispute over a commitment runs, with n_check = n_prompt +
 * n_forced. */
int px_session_replay_from(px_llama_t *m, px_compute_t *c,
                           const px_session_params_t *p, const int32_t *tokens,
                           uint32_t n_prompt, uint32_t n_check,
                           uint32_t n_tokens, uint32_t *first_mismatch,
                           int32_t *expected);

/* Multiply-accumulates of feeding n_tokens positions (0..n_tokens-1)
 * through a model of this config: per position the q/k/v/o, FFN and
 * classifier matmuls plus attention over pos+1 keys.  Saturates at
 * UINT64_MAX.  The dispute bound and price-per-token basis (a work unit
 * is one MAC, plexus/market.h). */
uint64_t px_session_macs(const px_llama2c_config_t *cfg, uint32_t n_tokens);

/* ---- commitment -----------------------------------------------------------
 * Encoding (tag PX_SESSION_TAG_COMMIT u16, u8 version): session_id[32],
 * channel_id[32], model[32], u64 model_size, f32 temperature (IEEE bits,
 * u32le), f32 top_p, u64 seed, u32 n_prompt, u32 n_tokens,
 * u32 n_forced, tokens_hash[32], u8 mode, provider[32], sig[64]
 * (= PX_SESSION_COMMIT_LEN bytes).  The signature covers
 * "plexus-session-commit-v1" || the encoding up to sig.  Strict:
 * 1 <= n_prompt, n_prompt + n_forced <= n_tokens <= PX_SESSION_MAX_TOKENS,
 * mode 0/1, params as px_session_params_check, no negative zero.
 *
 * What the provider vouches for: tokens[n_prompt + n_forced .. n_tokens)
 * are what sampling gives (px_session_replay_from).  n_forced is the count
 * of generated tokens it was GIVEN (a resumed session: OPEN carried prompt
 * + k tokens another provider generated; n_forced = k, so the rng is
 * advanced for them but a wrong one among them is not this provider's
 * fault).  A fresh session and an audit (REPLAY) have n_forced = 0.
 * A REPLAY commitment states the auditor's own sampled sequence: the
 * audited tokens up to its first mismatch fm, then the token it samples
 * there, and nothing after (n_tokens = fm + 1; or n_tokens = fm when it
 * samples BOS there), so that every token it commits to is one it sampled
 * — never the rest of the audited sequence, which it did not sample. */
#define PX_SESSION_COMMIT_LEN                                                  \
  (3 + 32 + 32 + 32 + 8 + 4 + 4 + 8 + 4 + 4 + 4 + 32 + 1 + 32 + 64)

typedef struct {
  uint8_t session_id[32];
  uint8_t channel_id[32];
  uint8_t model[32];   /* px_blob_root of the llama2.c file */
  uint64_t model_size; /* its bytes */
  px_session_params_t params;
  uint32_t n_prompt;
  uint32_t n_tokens; /* prompt + generated */
  uint32_t n_forced; /* generated tokens it was given (resume); usually 0 */
  uint8_t tokens_hash[32];
  uint8_t mode; /* px_session_mode_t */
  uint8_t provider[PX_PK_LEN];
  uint8_t sig[PX_SIG_LEN];
} px_session_commit_t;

/* Sets c->provider = kp->pk and signs.  PX_EINVAL for bad fields. */
int px_session_commit_sign(px_session_commit_t *c, const px_keypair_t *kp);
/* 0, PX_EBADSIG, PX_EINVAL (bad fields). */
int px_session_commit_verify(const px_session_commit_t *c);
int px_session_commit_encode(const px_session_commit_t *c, px_buf_t *out);
/* Exactly PX_SESSION_COMMIT_LEN bytes; PX_EDECODE/PX_EVERSION/PX_ETRUNC/
 * PX_ETRAILING; *c zeroed on error.  Does not verify the signature. */
int px_session_commit_decode(const void *p, size_t n, px_session_commit_t *c);

/* ---- payment receipts -----------------------------------------------------
 * The payer's signature over "plexus-session-receipt-v1" || u8 len ||
 * chain_id || channel_id[32] || u64le cumulative: "I owe the channel's
 * provider `cumulative` in total".  Cumulative, so a newer receipt
 * supersedes older ones; CHANNEL_CLAIM checks it (plexus/session_chain.h). */
#define PX_SESSION_RECEIPT_MSG_MAX (25 + 1 + 48 + 32 + 8)
/* Writes the message into out (PX_SESSION_RECEIPT_MSG_MAX bytes of room),
 * *n its length.  PX_EINVAL for a chain id longer than 47 chars. */
int px_session_receipt_msg(const char *chain_id, const uint8_t channel_id[32],
                           uint64_t cumulative,
                           uint8_t out[PX_SESSION_RECEIPT_MSG_MAX], size_t *n);
int px_session_receipt_sign(const px_keypair_t *payer, const char *chain_id,
                            const uint8_t channel_id[32], uint64_t cumulative,
                            uint8_t sig[PX_SIG_LEN]);
/* 0 or PX_EBADSIG (PX_EINVAL for a bad chain id). */
int px_session_receipt_verify(const uint8_t payer[PX_PK_LEN],
                              const char *chain_id,
                              const uint8_t channel_id[32], uint64_t cumulative,
                              const uint8_t sig[PX_SIG_LEN]);

#ifdef __cplusplus
}
#endif
#endif /* PLEXUS_SESSION_H */
