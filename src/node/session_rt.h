/*
 * session_rt.h — inference sessions inside a node (private to src/node/):
 * the peer-to-peer messages between a gateway and a market provider, the
 * provider side (session_provider.c) and the gateway side
 * (session_gateway.c).  docs/market.md "Sessions" describes the protocol.
 *
 * Flow.  The gateway (it holds the tokenizer) sends OPEN (request method
 * PX_SES_METHOD_OPEN) to a provider chosen from the registry: the channel
 * that pays, the model by blob root, sampling params and the token ids
 * (prompt, plus tokens generated so far when it resumes a stalled
 * session).  The provider checks the channel on its own chain state, the
 * price and its capacity, answers OPEN_REPLY (accept or refuse + reason),
 * fetches the model blob from the gateway if it lacks it (CHUNK requests,
 * market.c), generates one token at a time on a worker thread and streams
 * them back (DIRECT topic PX_SES_TOPIC_TOKENS); at BOS / the context limit
 * / max_total it sends DONE (DIRECT topic PX_SES_TOPIC_DONE) with its
 * signed px_session_commit_t.  CANCEL (method PX_SES_METHOD_CANCEL) stops
 * a session within one token (no DONE follows).
 *
 * Payment.  What a session costs is fixed by this rule, which the gateway
 * and the provider both apply:
 *     cost = price_per_token x (n_tokens of OPEN + tokens sent in TOKENS)
 * (REPLAY: price_per_token x n_tokens of OPEN), with price_per_token the
 * OPEN's (the provider refuses one below its own, px_ses_price_per_token).
 * The OPEN's tokens count once the provider has fed them (a session that
 * fails before costs nothing); DONE.cost states the session's cost.
 * The gateway signs cumulative receipts per channel (RECEIPT, method
 * PX_SES_METHOD_RECEIPT, px_session_receipt_sign): the sum of the costs of
 * all the channel's sessions so far.  The provider lets a channel's unpaid
 * amount (cost delivered - last receipt) reach
 *     price_per_token x (n_tokens of the session's OPEN + credit)
 * (credit = the OPEN_REPLY's credit_tokens) and then pauses the session
 * until a RECEIPT raises the paid amount; it never delivers past the
 * channel's deposit (DONE finish CREDIT).  What a session ran ahead of the
 * receipts is written off when it ends (the gateway pays what its client
 * was given).  Receipts are kept in HOME/session-receipts and claimed on
 * chain (CHANNEL_CLAIM).
 *
 * Encodings (plexus/codec.h: u16 tag, u8 version PX_MARKET_VERSION, fixed
 * width little-endian; strict; one encoding per value):
 *   OPEN        session_id[32] channel_id[32] model[32] u64 model_size
 *               u32 temperature-bits u32 top_p-bits u64 seed
 *               u32 n_prompt u32 n_tokens i32 tokens[n_tokens]
 *               u32 max_total u64 price_per_token u8 mode
 *               1 <= n_prompt <= n_tokens <= max_total <= PX_SES_MAX_TOKENS,
 *               params as px_session_params_check (no -0), mode 0/1 (REPLAY:
 *               max_total == n_tokens), every token >= 0
 *   OPEN_REPLY  session_id[32] u8 reason u64 price_per_token
 *               u32 credit_tokens str message
 *   CANCEL      session_id[32]
 *   RECEIPT     channel_id[32] u64 cumulative sig[64]
 *   TOKENS      session_id[32] u32 first u32 n (1..PX_SES_TOKENS_MAX)
 *               i32 tokens[n]      (first = sequence index of tokens[0])
 *   DONE        session_id[32] u8 finish u64 cost;
 *               finish != ERROR: commit (PX_SESSION_COMMIT_LEN bytes,
 *               plexus/session.h); ERROR: str message
 */
#ifndef PX_NODE_SESSION_RT_H
#define PX_NODE_SESSION_RT_H

#include <stddef.h>
#include <stdint.h>

#include "plexus/base.h"
#include "plexus/crypto.h"
#include "plexus/ledger.h"
#include "plexus/model.h"
#include "plexus/model_io.h"
#include "plexus/p2p.h"
#include "plexus/session.h"

#include "node/market_rt.h"

/* ---- p2p methods and topics (docs/market.md "Wire") -------------------- */
#define PX_SES_METHOD_OPEN 25    /* OPEN -> OPEN_REPLY */
#define PX_SES_METHOD_CANCEL 26  /* CANCEL -> empty */
#define PX_SES_METHOD_RECEIPT 27 /* RECEIPT -> empty (status 0 or error) */
#define PX_SES_TOPIC_TOKENS 21   /* DIRECT: provider -> gateway */
#define PX_SES_TOPIC_DONE 22     /* DIRECT: provider -> gateway */

#define PX_SES_TAG_OPEN 0x0530
#define PX_SES_TAG_OPEN_REPLY 0x0531
#define PX_SES_TAG_CANCEL 0x0532
#define PX_SES_TAG_RECEIPT 0x0533
#define PX_SES_TAG_TOKENS 0x0534
#define PX_SES_TAG_DONE 0x0535

/* Tokens in one session (prompt + generated), wire bound; the model's
 * seq_len + 1 is the real one. */
#define PX_SES_MAX_TOKENS 65536u
/* Tokens in one TOKENS message. */
#define PX_SES_TOKENS_MAX 256u
#define PX_SES_REASON_MAX 128 /* incl. NUL */
/* Default credit window (tokens served ahead of the last receipt). */
#define PX_SES_DEFAULT_CREDIT 32u

/* OPEN refusal reasons (also in the reply's message text). */
typedef enum {
  PX_SES_OK = 0,
  PX_SES_BUSY = 1,            /* all slots taken */
  PX_SES_UNKNOWN_CHANNEL = 2, /* not (yet) open on chain, or not ours:
                                 retry after the next block */
  PX_SES_NOT_PROVIDER = 3,    /* this node is not an active provider */
  PX_SES_PRICE = 4,           /* price_per_token below ours */
  PX_SES_BAD_MODEL = 5,       /* blob unavailable / not a llama2.c model */
  PX_SES_TOO_LONG = 6,        /* max_total past the model's seq_len + 1 */
  PX_SES_NO_CREDIT = 7,       /* the channel's deposit cannot pay it */
  PX_SES_BAD_REQUEST = 8,     /* e.g. a token outside the vocab, dup id */
  PX_SES_INTERNAL = 9,
} px_ses_reason_t;
#define PX_SES_REASON_LAST PX_SES_INTERNAL
const char *px_ses_reason_name(uint8_t reason);

/* How a session ended (DONE). */
typedef enum {
  PX_SES_FINISH_STOP = 0,   /* the model sampled BOS */
  PX_SES_FINISH_LENGTH = 1, /* context full (seq_len + 1 tokens) */
  PX_SES_FINISH_MAX = 2,    /* max_total tokens reached */
  PX_SES_FINISH_CREDIT = 3, /* the channel's deposit is used up */
  PX_SES_FINISH_REPLAY = 4, /* REPLAY finished (commit = its sequence) */
  PX_SES_FINISH_ERROR = 5,  /* failed: message, no commitment */
} px_ses_finish_t;
#define PX_SES_FINISH_LAST PX_SES_FINISH_ERROR
const char *px_ses_finish_name(uint8_t finish);

typedef struct {
  uint8_t session_id[32]; /* chosen by the gateway, unique per provider */
  uint8_t channel_id[32];
  uint8_t model[32]; /* px_blob_root of the llama2.c file */
  uint64_t model_size;
  px_session_params_t params;
  uint32_t n_prompt;
  uint32_t n_tokens;     /* prompt + already generated (REPLAY: all) */
  const int32_t *tokens; /* n_tokens; decode: points at tokens_ */
  uint32_t max_total;    /* stop at this many tokens in the sequence */
  uint64_t price_per_token;
  uint8_t mode;     /* px_session_mode_t */
  int32_t *tokens_; /* decode: owned copy (px_ses_open_release) */
} px_ses_open_t;

typedef struct {
  uint8_t session_id[32];
  uint8_t reason;           /* px_ses_reason_t; 0 = accepted */
  uint64_t price_per_token; /* the provider's own price per token */
  uint32_t credit_tokens;   /* accepted: its credit window */
  char message[PX_SES_REASON_MAX];
} px_ses_open_reply_t;

typedef struct {
  uint8_t session_id[32];
} px_ses_cancel_t;

typedef struct {
  uint8_t channel_id[32];
  uint64_t cumulative;
  uint8_t sig[PX_SIG_LEN]; /* the payer's px_session_receipt_sign */
} px_ses_receipt_t;

typedef struct {
  uint8_t session_id[32];
  uint32_t first; /* sequence index of tokens[0] */
  uint32_t n;     /* 1..PX_SES_TOKENS_MAX */
  int32_t tokens[PX_SES_TOKENS_MAX];
} px_ses_tokens_t;

typedef struct {
  uint8_t session_id[32];
  uint8_t finish;                  /* px_ses_finish_t */
  uint64_t cost;                   /* what the session cost (the rule above) */
  px_session_commit_t commit;      /* finish != ERROR */
  char message[PX_SES_REASON_MAX]; /* finish == ERROR */
} px_ses_done_t;

/* Strict codecs (fuzz target fuzz_session_wire).  Encoders refuse
 * (PX_EINVAL) what the decoder would refuse.  px_ses_open_decode copies
 * the tokens to the heap: release with px_ses_open_release (also after a
 * failed decode: it is then a no-op). */
int px_ses_open_encode(const px_ses_open_t *m, px_buf_t *out);
int px_ses_open_decode(const uint8_t *p, size_t n, px_ses_open_t *m);
void px_ses_open_release(px_ses_open_t *m); /* zeroed ok */
int px_ses_open_reply_encode(const px_ses_open_reply_t *m, px_buf_t *out);
int px_ses_open_reply_decode(const uint8_t *p, size_t n,
                             px_ses_open_reply_t *m);
int px_ses_cancel_encode(const px_ses_cancel_t *m, px_buf_t *out);
int px_ses_cancel_decode(const uint8_t *p, size_t n, px_ses_cancel_t *m);
int px_ses_receipt_encode(const px_ses_receipt_t *m, px_buf_t *out);
int px_ses_receipt_decode(const uint8_t *p, size_t n, px_ses_receipt_t *m);
int px_ses_tokens_encode(const px_ses_tokens_t *m, px_buf_t *out);
int px_ses_tokens_decode(const uint8_t *p, size_t n, px_ses_tokens_t *m);
int px_ses_done_encode(const px_ses_done_t *m, px_buf_t *out);
int px_ses_done_decode(const uint8_t *p, size_t n, px_ses_done_t *m);

/* Price per token = price (per work unit, the provider's registered
 * price) x work units of one token forward, taken as the model's average
 * per position over its full context: ceil(px_session_macs(cfg, seq_len)
 * / seq_len) (>= 1).  PX_ERANGE on overflow, PX_EINVAL for a bad cfg. */
int px_ses_price_per_token(uint64_t price, const px_llama2c_config_t *cfg,
                           uint64_t *out);
/* price_per_token x n, PX_ERANGE on overflow. */
int px_ses_cost(uint64_t price_per_token, uint64_t n_tokens, uint64_t *out);

/* ---- provider side (session_provider.c) --------------------------------
 * One per market (px_market_t.sesprov), open while the market is; serves
 * sessions while this node is an active registered provider.  Shares the
 * provider role's slots (market.threads) and worker threads.  Everything
 * on the loop thread except generation.  Each *_on_* returns 1 when it
 * took the message. */
typedef struct px_sesprov px_sesprov_t;

int px_sesprov_open(px_market_t *m, px_sesprov_t **out);
void px_sesprov_close(px_sesprov_t *sp); /* stops generation; NULL ok */
void px_sesprov_free(px_sesprov_t *sp);  /* NULL ok */
/* Methods PX_SES_METHOD_OPEN/CANCEL/RECEIPT. */
int px_sesprov_on_request(px_sesprov_t *sp, const px_p2p_fx_t *fx);
/* Its model fetches (CHUNK responses). */
int px_sesprov_on_response(px_sesprov_t *sp, const px_p2p_fx_t *fx);
void px_sesprov_on_peer(px_sesprov_t *sp, const px_p2p_fx_t *fx);
void px_sesprov_on_block(px_sesprov_t *sp, const px_ledger_state_t *s,
                         const px_block_t *b, const px_tx_result_t *res);
void px_sesprov_tick(px_sesprov_t *sp, uint64_t now_ms);
/* Command "sessions": {"ok":true,"sessions":{...}}. */
int px_sesprov_command(px_sesprov_t *sp, const char *cmd, const char *arg,
                       px_buf_t *out);
void px_sesprov_status_json(px_sesprov_t *sp, px_buf_t *out);

/* The sequence an auditor commits to in REPLAY mode (plexus/session.h):
 * tokens[0..n_tokens) teacher-forced; at the first generated token that
 * sampling does not reproduce, its own sampled token takes its place and
 * the sequence ends there (it ends before it when that token is BOS); with
 * no mismatch it is the given sequence.  out (n_tokens entries; may be
 * tokens) gets it, *n_out its length, *mismatch 1 when one was found.
 * 0, or px_session_replay_ex's input errors (PX_EINVAL, PX_ERANGE). */
int px_ses_replay_seq(px_llama_t *m, px_compute_t *c,
                      const px_session_params_t *p, const int32_t *tokens,
                      uint32_t n_prompt, uint32_t n_tokens, int32_t *out,
                      uint32_t *n_out, int *mismatch);

/* ---- gateway side (session_gateway.c; helper sgate owns this section) ---
 * Called by market.c with the decoded DIRECT messages from peer (the
 * provider): 1 when taken.  px_sesgw_on_response: responses to the
 * gateway's requests (OPEN_REPLY, RECEIPT, CANCEL), 1 when taken. */
int px_sesgw_on_tokens(px_market_t *m, const uint8_t peer[PX_PK_LEN],
                       const px_ses_tokens_t *t);
int px_sesgw_on_done(px_market_t *m, const uint8_t peer[PX_PK_LEN],
                     const px_ses_done_t *d);
int px_sesgw_on_response(px_market_t *m, const px_p2p_fx_t *fx);

/* The gateway itself: one per node with the gateway role and models in
 * HOME/models.json (node.c opens it with the market and hands
 * px_sesgw_backend to the HTTP API).  Options: api.audit (probability,
 * default 0.05), api.stall_ms (3000), api.max_price (per work unit; no
 * limit), api.channel_deposit (100e9).  px_sesgw_open sets m->sesgw.
 * Loop thread: open, tick, on_block, status, close; px_sesgw_free after
 * the API's threads are joined (px_api_free) and before the market. */
struct px_api_backend;
struct px_node;
typedef struct px_sesgw px_sesgw_t;
int px_sesgw_open(px_market_t *m, struct px_node *node, const px_config_t *cfg,
                  px_sesgw_t **out, char *errmsg, size_t errcap);
struct px_api_backend *px_sesgw_backend(px_sesgw_t *gw);
void px_sesgw_tick(px_sesgw_t *gw, uint64_t now_ms);
void px_sesgw_on_block(px_sesgw_t *gw, const px_ledger_state_t *s,
                       const px_block_t *b, const px_tx_result_t *res);
/* {"models","active","sessions","tokens","stalls_replaced","audits",
 *  "audits_failed","disputes","disputes_upheld","failed","channels",
 *  "signed" (receipts, summed), "claimed" (on chain, summed)} */
void px_sesgw_status_json(px_sesgw_t *gw, px_buf_t *out);
/* At stop, before the API stops: waiting requests end (PX_ECLOSED). */
void px_sesgw_close(px_sesgw_t *gw);
void px_sesgw_free(px_sesgw_t *gw); /* NULL ok */

#endif
