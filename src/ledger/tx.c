/*
 * tx.c — transactions: canonical encoding, strict decoding, signing.
 *
 * Encoding (codec.h primitives, little-endian; docs/ledger.md):
 *
 *   u16 tag = PX_LEDGER_TAG_TX, u8 version = 1
 *   str chain_id            1..47 printable ASCII bytes
 *   fixed sender[32]        Ed25519 public key
 *   u64 nonce, u64 fee
 *   u16 type                (contract id << 8) | procedure
 *   bytes payload           type-specific, checked by its contract
 *   fixed sig[64]           Ed25519 over every byte before it
 *
 * Because the signature is the last field and the encoding is canonical,
 * the signed message is simply the encoding minus its last 64 bytes, and
 * the tx hash (BLAKE2b-256 of the whole encoding) is unique per tx: libsodium
 * rejects non-canonical signatures, so a third party cannot re-encode a tx
 * under a different hash.  The envelope tag keeps a tx signature from being
 * valid for any other signed structure.
 *
 * Decoding is bounded: the whole input is capped at PX_LEDGER_TX_MAX_SIZE
 * (the hard cap) before anything is read, and the payload is validated by
 * its contract's stateless check, so a decoded tx is always executable (it
 * may still fail on state).  Admission then applies the per-type limit,
 * px_ledger_tx_size_limit: params.max_tx_size for every tx but a market
 * DISPUTE, which may reach PX_MARKET_DISPUTE_TX_MAX, and a SESSION_DISPUTE
 * (PX_SESSION_DISPUTE_TX_MAX).
 */
#include <string.h>

#include "plexus/codec.h"
#include "plexus/crypto.h"
#include "plexus/ledger.h"
#include "plexus/market_chain.h"
#include "plexus/session_chain.h"
#include "plexus/upow_chain.h"

#include "ledger/ledger_internal.h"

#include "base/px_internal.h"

static int chain_id_ok(const char *c) {
  size_t n = strnlen(c, PX_LEDGER_CHAIN_ID_MAX);
  if (n == 0 || n >= PX_LEDGER_CHAIN_ID_MAX) return 0;
  for (size_t i = 0; i < n; i++)
    if (c[i] < 0x20 || c[i] > 0x7e) return 0;
  return 1;
}

/* Stateless check of the type and payload by the owning contract. */
static int check_payload(const px_tx_t *tx) {
  const px_contract_t *c = ledger_contract((uint8_t)(tx->type >> 8));
  if (!c || !c->check) return PX_EDECODE;
  return c->check(tx);
}

static void write_unsigned(px_writer_t *w, const px_tx_t *tx) {
  px_writer_u16(w, PX_LEDGER_TAG_TX);
  px_writer_u8(w, PX_LEDGER_VERSION);
  px_writer_str(w, tx->chain_id);
  px_writer_fixed(w, tx->sender, PX_PK_LEN);
  px_writer_u64(w, tx->nonce);
  px_writer_u64(w, tx->fee);
  px_writer_u16(w, tx->type);
  px_writer_bytes(w, tx->payload, tx->payload_len);
}

int px_tx_encode(const px_tx_t *tx, px_buf_t *out) {
  if (!tx || !out || !chain_id_ok(tx->chain_id)) return PX_EINVAL;
  if (!tx->payload && tx->payload_len) return PX_EINVAL;
  if (check_payload(tx) != 0) return PX_EINVAL;
  size_t mark = out->len;
  px_writer_t w;
  px_writer_init(&w, out);
  write_unsigned(&w, tx);
  px_writer_fixed(&w, tx->sig, PX_SIG_LEN);
  int rc = px_writer_finish(&w);
  if (!rc && out->len - mark > PX_LEDGER_TX_MAX_SIZE) rc = PX_EINVAL;
  if (rc) out->len = mark;
  return rc;
}

int px_tx_make(const char *chain_id, const px_keypair_t *kp, uint64_t nonce,
               uint64_t fee, uint16_t type, const void *payload,
               size_t payload_len, px_buf_t *out) {
  if (!chain_id || !kp || !out || (!payload && payload_len)) return PX_EINVAL;
  px_tx_t tx;
  memset(&tx, 0, sizeof tx);
  if (strlen(chain_id) >= sizeof tx.chain_id) return PX_EINVAL;
  memcpy(tx.chain_id, chain_id, strlen(chain_id) + 1);
  memcpy(tx.sender, kp->pk, PX_PK_LEN);
  tx.nonce = nonce;
  tx.fee = fee;
  tx.type = type;
  tx.payload = payload;
  tx.payload_len = payload_len;
  size_t mark = out->len;
  /* Encode with a zero signature, sign the prefix, patch the signature. */
  int rc = px_tx_encode(&tx, out);
  if (rc) return rc;
  size_t n = out->len - mark;
  px_sign(kp, out->data + mark, n - PX_SIG_LEN,
          out->data + mark + n - PX_SIG_LEN);
  return 0;
}

int px_tx_decode(const uint8_t *p, size_t len, px_tx_t *tx) {
  if (!tx) return PX_EINVAL;
  memset(tx, 0, sizeof *tx);
  if (!p && len) return PX_EINVAL;
  if (len > PX_LEDGER_TX_MAX_SIZE) return PX_ETOOBIG;
  px_reader_t r;
  px_reader_init(&r, p, len);
  uint16_t tag = px_reader_u16(&r);
  uint8_t ver = px_reader_u8(&r);
  if (!r.err && tag != PX_LEDGER_TAG_TX) px_reader_fail(&r, PX_EDECODE);
  if (!r.err && ver != PX_LEDGER_VERSION) px_reader_fail(&r, PX_EVERSION);
  px_reader_str(&r, tx->chain_id, sizeof tx->chain_id);
  if (!r.err && tx->chain_id[0] == 0) px_reader_fail(&r, PX_EDECODE);
  px_reader_fixed(&r, tx->sender, PX_PK_LEN);
  tx->nonce = px_reader_u64(&r);
  tx->fee = px_reader_u64(&r);
  tx->type = px_reader_u16(&r);
  px_reader_bytes(&r, &tx->payload, &tx->payload_len, PX_LEDGER_TX_MAX_SIZE);
  px_reader_fixed(&r, tx->sig, PX_SIG_LEN);
  int rc = px_reader_finish(&r);
  if (!rc) rc = check_payload(tx);
  if (rc) {
    memset(tx, 0, sizeof *tx);
    return rc;
  }
  tx->raw = p;
  tx->raw_len = len;
  px_hash(tx->hash, p, len);
  return 0;
}

int px_tx_verify(const px_tx_t *tx) {
  if (!tx || !tx->raw || tx->raw_len < PX_SIG_LEN) return PX_EINVAL;
  return px_verify(tx->sender, tx->raw, tx->raw_len - PX_SIG_LEN, tx->sig);
}

/* ---- payloads ------------------------------------------------------------ */

int px_tx_payload_transfer(px_buf_t *out, const uint8_t to[PX_PK_LEN],
                           uint64_t amount) {
  px_writer_t w;
  px_writer_init(&w, out);
  px_writer_fixed(&w, to, PX_PK_LEN);
  px_writer_u64(&w, amount);
  return px_writer_finish(&w);
}

int px_tx_payload_amount(px_buf_t *out, uint64_t amount) {
  px_writer_t w;
  px_writer_init(&w, out);
  px_writer_u64(&w, amount);
  return px_writer_finish(&w);
}

int px_tx_payload_validator(px_buf_t *out, const char *moniker, int active) {
  if (!moniker || strlen(moniker) >= PX_LEDGER_MONIKER_MAX) return PX_EINVAL;
  px_writer_t w;
  px_writer_init(&w, out);
  px_writer_str(&w, moniker);
  px_writer_u8(&w, active ? 1 : 0);
  return px_writer_finish(&w);
}

int payload_transfer(const px_tx_t *tx, uint8_t to[PX_PK_LEN],
                     uint64_t *amount) {
  px_reader_t r;
  px_reader_init(&r, tx->payload, tx->payload_len);
  px_reader_fixed(&r, to, PX_PK_LEN);
  *amount = px_reader_u64(&r);
  int rc = px_reader_finish(&r);
  if (!rc && *amount == 0) rc = PX_EDECODE;
  return rc;
}

int payload_amount(const px_tx_t *tx, uint64_t *amount) {
  px_reader_t r;
  px_reader_init(&r, tx->payload, tx->payload_len);
  *amount = px_reader_u64(&r);
  int rc = px_reader_finish(&r);
  if (!rc && *amount == 0) rc = PX_EDECODE;
  return rc;
}

int payload_validator(const px_tx_t *tx, char moniker[PX_LEDGER_MONIKER_MAX],
                      int *active) {
  px_reader_t r;
  px_reader_init(&r, tx->payload, tx->payload_len);
  px_reader_str(&r, moniker, PX_LEDGER_MONIKER_MAX);
  uint8_t a = px_reader_u8(&r);
  if (!r.err && a > 1) px_reader_fail(&r, PX_EDECODE);
  *active = a;
  return px_reader_finish(&r);
}

uint32_t px_ledger_tx_size_limit(const px_ledger_params_t *p, uint16_t type) {
  if (type == PX_TX_DISPUTE) return PX_MARKET_DISPUTE_TX_MAX;
  if (type == PX_TX_SESSION_DISPUTE) return PX_SESSION_DISPUTE_TX_MAX;
  return p ? p->max_tx_size : 0;
}

const char *px_tx_type_name(uint16_t type) {
  switch (type) {
  case PX_TX_TRANSFER:
    return "transfer";
  case PX_TX_STAKE:
    return "stake";
  case PX_TX_UNSTAKE:
    return "unstake";
  case PX_TX_VALIDATOR_REGISTER:
    return "validator_register";
  case PX_TX_VALIDATOR_UPDATE:
    return "validator_update";
  case PX_TX_UPOW_SUBMIT:
    return "upow_submit";
  case PX_TX_PROVIDER_REGISTER:
    return "provider_register";
  case PX_TX_PROVIDER_EXIT:
    return "provider_exit";
  case PX_TX_JOB_OPEN:
    return "job_open";
  case PX_TX_JOB_COMMIT:
    return "job_commit";
  case PX_TX_MARKET_EVIDENCE:
    return "market_evidence";
  case PX_TX_DISPUTE:
    return "dispute";
  case PX_TX_JOB_SETTLE:
    return "job_settle";
  case PX_TX_CHANNEL_OPEN:
    return "channel_open";
  case PX_TX_CHANNEL_CLAIM:
    return "channel_claim";
  case PX_TX_CHANNEL_CLOSE:
    return "channel_close";
  case PX_TX_SESSION_DISPUTE:
    return "session_dispute";
  default:
    return "unknown";
  }
}
