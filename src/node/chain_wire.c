/*
 * chain_wire.c — the chain runtime's own wire formats (docs/chain.md
 * "Gossip topics" and "Block sync"), kept apart from chain.c so that the
 * fuzz targets can run the decoders without a node.
 *
 *   tx batch (gossip topic PX_CHAIN_TOPIC_TXS):
 *     repeated { u32 len (LE), len bytes of one tx encoding }
 *   block-sync reply (response to PX_CHAIN_METHOD_BLOCK):
 *     u32 block_len (LE), block encoding, consensus COMMIT encoding (rest)
 *
 * Both come from peers, so both are decoded defensively: every length is
 * checked against what remains, a batch entry over PX_LEDGER_TX_MAX_SIZE or
 * a torn tail stops the walk with an error (the entries before it stay
 * usable: a batch is a bundle of independent txs), and a sync reply must
 * frame exactly, with a block and a commit that both decode strictly.
 */
#include <string.h>

#include "plexus/codec.h"
#include "plexus/consensus.h"
#include "plexus/ledger.h"
#include "node/chain.h"

#include "base/px_internal.h"

int px_chain_batch_append(px_buf_t *b, const uint8_t *tx, size_t len) {
  if (!b || (!tx && len) || len > PX_LEDGER_TX_MAX_SIZE) return PX_EINVAL;
  uint8_t l[4];
  px_put_u32le(l, (uint32_t)len);
  size_t mark = b->len;
  int rc = px_buf_append(b, l, 4);
  if (!rc && len) rc = px_buf_append(b, tx, len);
  if (rc) b->len = mark;
  return rc;
}

int px_chain_batch_next(const uint8_t *p, size_t n, size_t *off,
                        const uint8_t **tx, size_t *len) {
  if (!off || !tx || !len || (!p && n) || *off > n) return PX_EINVAL;
  size_t rem = n - *off;
  if (rem == 0) return 0;
  if (rem < 4) return PX_ETRUNC;
  size_t l = px_get_u32le(p + *off);
  if (l > PX_LEDGER_TX_MAX_SIZE) return PX_ETOOBIG;
  if (l > rem - 4) return PX_ETRUNC;
  *tx = p + *off + 4;
  *len = l;
  *off += 4 + l;
  return 1;
}

int px_chain_sync_reply_encode(const uint8_t *block, size_t block_len,
                               const uint8_t *cert, size_t cert_len,
                               px_buf_t *out) {
  if (!out || (!block && block_len) || (!cert && cert_len) ||
      block_len > UINT32_MAX)
    return PX_EINVAL;
  uint8_t l[4];
  px_put_u32le(l, (uint32_t)block_len);
  size_t mark = out->len;
  int rc = px_buf_append(out, l, 4);
  if (!rc && block_len) rc = px_buf_append(out, block, block_len);
  if (!rc && cert_len) rc = px_buf_append(out, cert, cert_len);
  if (rc) out->len = mark;
  return rc;
}

int px_chain_sync_reply_decode(const uint8_t *p, size_t n,
                               px_chain_sync_reply_t *out) {
  if (!out) return PX_EINVAL;
  memset(out, 0, sizeof *out);
  if (!p && n) return PX_EINVAL;
  if (n < 4) return PX_ETRUNC;
  size_t bl = px_get_u32le(p);
  if (bl > n - 4) return PX_ETRUNC;
  int rc = px_cons_commit_decode(p + 4 + bl, n - 4 - bl, &out->commit);
  if (rc) return rc;
  if ((rc = px_block_decode(p + 4, bl, &out->block))) return rc;
  out->block_raw = p + 4;
  out->block_len = bl;
  out->cert = p + 4 + bl;
  out->cert_len = n - 4 - bl;
  return 0;
}

void px_chain_sync_reply_release(px_chain_sync_reply_t *r) {
  if (!r) return;
  px_block_release(&r->block);
  memset(r, 0, sizeof *r);
}
