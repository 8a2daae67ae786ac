/*
 * market_dispute.c — the DISPUTE transaction of the market contract: its
 * payload and the on-chain referee (docs/market.md "Dispute transaction").
 *
 * Per-sample traces.  For a shard of n samples, layer i's trace leaf is
 *   layer_leaf_i = px_merkle_root(s_0 .. s_{n-1}),
 *   s_j = px_merkle_leaf(f32 LE bytes of sample j's output of layer i)
 * (for n = 1 the layer leaf is the sample leaf: RFC 6962's root of one leaf
 * is that leaf).  The commitment's trace_root is px_merkle_root over the
 * n_layers layer leaves and its output is the last layer leaf.  So one
 * disputed sample is proven by two audit paths: sample leaf -> layer leaf
 * (index j of n) and layer leaf -> trace root (index L of n_layers), and the
 * referee re-executes one layer for one sample (px_dispute_verdict, n = 1),
 * which keeps a dispute transaction to one layer's weights plus a few
 * hundred hashes.
 *
 * Payload (no tag: the tx type names it):
 *   bytes a, bytes b                    two px_commitment_encode
 *   u32 layer L, u32 sample j, u32 n_samples
 *   2 x { layer_leaf[32], u32 depth, depth x [32],
 *         sample_leaf[32], u32 depth, depth x [32] }      party a, then b
 *   L > 0:  in_layer_leaf[32], 2 x { u32 depth, depth x [32] },
 *           in_sample_leaf[32], u32 depth, depth x [32]
 *   L = 0:  u32 n_chunks (1..2), n_chunks x { u64 index, bytes chunk,
 *           u32 depth, depth x [32] }    (consecutive indices)
 *   bytes layer                          px_dispute_layer_encode, n = 1
 *
 * The referee (market_dispute_execute) checks, in order: the job is open;
 * both commitments are exactly the ones on chain (so their signatures were
 * checked at JOB_COMMIT), by different providers, for the same shard, not
 * lost, with different outputs; every Merkle path; the posted layer's
 * layer_ref equals the job manifest's entry L; the layer input: for L > 0
 * the layer L-1 leaf is proven in both traces (agreed) and the sample's
 * leaf is proven under it; for L = 0 the sample's bytes are cut from input
 * blob chunks verified against the job's input root.  Then
 * px_dispute_verdict.  Any failed check fails the tx (PX_EAUTH for a proof
 * or hash that does not verify, PX_EINVAL for inconsistent fields,
 * PX_ESTATE for a closed job or a lost commitment, PX_ELIMIT for a layer
 * over the bound) and nothing is slashed.
 */
#include <string.h>

#include "plexus/codec.h"
#include "plexus/crypto.h"
#include "plexus/market_chain.h"

#include "ledger/market_internal.h"

#include "base/px_internal.h"

/* Envelope bytes of a tx around its payload (tag, chain id, sender, nonce,
 * fee, type, payload length, signature), with room to spare. */
#define TX_ENVELOPE_MAX 256

static void path_write(px_writer_t *w, uint32_t depth,
                       const uint8_t (*path)[PX_HASH_LEN]) {
  px_writer_u32(w, depth);
  for (uint32_t i = 0; i < depth && i < PX_MERKLE_MAX_DEPTH; i++)
    px_writer_fixed(w, path[i], PX_HASH_LEN);
}

static void path_read(px_reader_t *r, uint32_t *depth,
                      uint8_t (*path)[PX_HASH_LEN]) {
  *depth = px_reader_u32(r);
  if (!r->err && *depth > PX_MERKLE_MAX_DEPTH) px_reader_fail(r, PX_EDECODE);
  for (uint32_t i = 0; !r->err && i < *depth; i++)
    px_reader_fixed(r, path[i], PX_HASH_LEN);
}

static int shape_ok(const px_market_dispute_t *d) {
  if (d->layer >= PX_MARKET_MAX_LAYERS || d->n_samples < 1 ||
      d->n_samples > PX_MARKET_MAX_SAMPLES || d->sample >= d->n_samples)
    return 0;
  for (int p = 0; p < 2; p++)
    if (d->layer_depth[p] > PX_MERKLE_MAX_DEPTH ||
        d->sample_depth[p] > PX_MERKLE_MAX_DEPTH ||
        (d->layer && d->in_layer_depth[p] > PX_MERKLE_MAX_DEPTH))
      return 0;
  if (d->layer && d->in_sample_depth > PX_MERKLE_MAX_DEPTH) return 0;
  if (!d->layer) {
    if (d->n_chunks < 1 || d->n_chunks > 2) return 0;
    for (uint32_t i = 0; i < d->n_chunks; i++)
      if (!d->chunk[i] || !d->chunk_len[i] || d->chunk_len[i] > PX_BLOB_CHUNK ||
          d->chunk_depth[i] > PX_MERKLE_MAX_DEPTH ||
          d->chunk_index[i] >= PX_BLOB_MAX_CHUNKS)
        return 0;
    if (d->n_chunks == 2 && d->chunk_index[1] != d->chunk_index[0] + 1)
      return 0;
  }
  const px_dispute_layer_t *l = &d->l;
  return l->n == 1 && l->layer == d->layer &&
         !memcmp(l->job_id, d->a.job_id, PX_HASH_LEN) &&
         !memcmp(d->a.job_id, d->b.job_id, PX_HASH_LEN) &&
         l->shard == d->a.shard && d->a.shard == d->b.shard &&
         memcmp(d->a.provider, d->b.provider, PX_PK_LEN) != 0;
}

int px_market_payload_dispute(px_buf_t *out, const px_market_dispute_t *d) {
  if (!out || !d) return PX_EINVAL;
  int rc = px_dispute_layer_check(&d->l, PX_DISPUTE_MAX_MACS);
  if (rc) return rc; /* PX_ELIMIT logged by the check */
  if (!shape_ok(d)) return PX_EINVAL;
  size_t mark = out->len;
  px_buf_t cb;
  px_buf_init(&cb, 0);
  px_writer_t w;
  px_writer_init(&w, out);
  rc = px_commitment_encode(&d->a, &cb);
  if (!rc) px_writer_bytes(&w, cb.data, cb.len);
  px_buf_reset(&cb);
  if (!rc) rc = px_commitment_encode(&d->b, &cb);
  if (!rc) px_writer_bytes(&w, cb.data, cb.len);
  px_buf_release(&cb);
  px_writer_u32(&w, d->layer);
  px_writer_u32(&w, d->sample);
  px_writer_u32(&w, d->n_samples);
  for (int p = 0; p < 2; p++) {
    px_writer_fixed(&w, d->layer_leaf[p], PX_HASH_LEN);
    path_write(&w, d->layer_depth[p],
               (const uint8_t(*)[PX_HASH_LEN])d->layer_path[p]);
    px_writer_fixed(&w, d->sample_leaf[p], PX_HASH_LEN);
    path_write(&w, d->sample_depth[p],
               (const uint8_t(*)[PX_HASH_LEN])d->sample_path[p]);
  }
  if (d->layer) {
    px_writer_fixed(&w, d->in_layer_leaf, PX_HASH_LEN);
    for (int p = 0; p < 2; p++)
      path_write(&w, d->in_layer_depth[p],
                 (const uint8_t(*)[PX_HASH_LEN])d->in_layer_path[p]);
    px_writer_fixed(&w, d->in_sample_leaf, PX_HASH_LEN);
    path_write(&w, d->in_sample_depth,
               (const uint8_t(*)[PX_HASH_LEN])d->in_sample_path);
  } else {
    px_writer_u32(&w, d->n_chunks);
    for (uint32_t i = 0; i < d->n_chunks; i++) {
      px_writer_u64(&w, d->chunk_index[i]);
      px_writer_bytes(&w, d->chunk[i], d->chunk_len[i]);
      path_write(&w, d->chunk_depth[i],
                 (const uint8_t(*)[PX_HASH_LEN])d->chunk_path[i]);
    }
  }
  px_buf_t lb;
  px_buf_init(&lb, 0);
  if (!rc) rc = px_dispute_layer_encode(&d->l, &lb);
  if (!rc) px_writer_bytes(&w, lb.data, lb.len);
  px_buf_release(&lb);
  if (!rc) rc = px_writer_finish(&w);
  if (!rc && out->len - mark > PX_MARKET_DISPUTE_TX_MAX - TX_ENVELOPE_MAX) {
    PX_LOGW("market",
            "dispute over layer %u refused: the transaction would take %zu "
            "bytes, over the %u-byte bound for a dispute; use a model with "
            "smaller layers",
            d->layer, out->len - mark + TX_ENVELOPE_MAX,
            (unsigned)PX_MARKET_DISPUTE_TX_MAX);
    rc = PX_ELIMIT;
  }
  if (rc) out->len = mark;
  return rc;
}

void px_market_dispute_release(px_market_dispute_t *d) {
  if (!d) return;
  for (int i = 0; i < 2; i++) {
    px_free((void *)d->chunk[i]);
    d->chunk[i] = NULL;
    d->chunk_len[i] = 0;
  }
  px_dispute_layer_release(&d->l);
}

static void commitment_read(px_reader_t *r, px_commitment_t *c) {
  const uint8_t *p;
  size_t n;
  px_reader_bytes(r, &p, &n, 1024);
  if (!r->err) {
    int rc = px_commitment_decode(p, n, c);
    if (rc) px_reader_fail(r, rc);
  }
}

int px_market_payload_dispute_decode(const uint8_t *p, size_t n,
                                     px_market_dispute_t *d) {
  if (!d || (!p && n)) return PX_EINVAL;
  memset(d, 0, sizeof *d);
  if (n > PX_MARKET_DISPUTE_TX_MAX - TX_ENVELOPE_MAX) return PX_ELIMIT;
  px_reader_t r;
  px_reader_init(&r, p, n);
  commitment_read(&r, &d->a);
  commitment_read(&r, &d->b);
  d->layer = px_reader_u32(&r);
  d->sample = px_reader_u32(&r);
  d->n_samples = px_reader_u32(&r);
  for (int q = 0; q < 2; q++) {
    px_reader_fixed(&r, d->layer_leaf[q], PX_HASH_LEN);
    path_read(&r, &d->layer_depth[q], d->layer_path[q]);
    px_reader_fixed(&r, d->sample_leaf[q], PX_HASH_LEN);
    path_read(&r, &d->sample_depth[q], d->sample_path[q]);
  }
  if (!r.err && d->layer) {
    px_reader_fixed(&r, d->in_layer_leaf, PX_HASH_LEN);
    for (int q = 0; q < 2; q++)
      path_read(&r, &d->in_layer_depth[q], d->in_layer_path[q]);
    px_reader_fixed(&r, d->in_sample_leaf, PX_HASH_LEN);
    path_read(&r, &d->in_sample_depth, d->in_sample_path);
  } else if (!r.err) {
    d->n_chunks = px_reader_u32(&r);
    if (!r.err && (d->n_chunks < 1 || d->n_chunks > 2))
      px_reader_fail(&r, PX_EDECODE);
    for (uint32_t i = 0; !r.err && i < d->n_chunks; i++) {
      d->chunk_index[i] = px_reader_u64(&r);
      const uint8_t *cp;
      size_t cn;
      px_reader_bytes(&r, &cp, &cn, PX_BLOB_CHUNK);
      if (!r.err && cn == 0) px_reader_fail(&r, PX_EDECODE);
      if (!r.err) {
        uint8_t *c = px_malloc(cn);
        if (!c) {
          px_reader_fail(&r, PX_ENOMEM);
        } else {
          memcpy(c, cp, cn);
          d->chunk[i] = c;
          d->chunk_len[i] = cn;
        }
      }
      path_read(&r, &d->chunk_depth[i], d->chunk_path[i]);
    }
  }
  const uint8_t *lp;
  size_t ln;
  px_reader_bytes(&r, &lp, &ln, PX_MARKET_DISPUTE_TX_MAX);
  if (!r.err) {
    int rc = px_dispute_layer_decode(lp, ln, &d->l);
    if (rc) px_reader_fail(&r, rc);
  }
  if (!r.err) {
    int rc = px_dispute_layer_check(&d->l, PX_DISPUTE_MAX_MACS);
    if (rc) px_reader_fail(&r, rc == PX_ELIMIT ? PX_ELIMIT : PX_EDECODE);
  }
  if (!r.err && !shape_ok(d)) px_reader_fail(&r, PX_EDECODE);
  int rc = px_reader_finish(&r);
  if (rc) {
    px_market_dispute_release(d);
    memset(d, 0, sizeof *d);
  }
  return rc;
}

/* ---- the referee ----------------------------------------------------------
 */

static int verify_path(const uint8_t root[PX_HASH_LEN],
                       const uint8_t leaf[PX_HASH_LEN], size_t index, size_t n,
                       const uint8_t (*path)[PX_HASH_LEN], uint32_t depth) {
  return px_merkle_verify(root, leaf, index, n, path, depth) ? PX_EAUTH : 0;
}

#define P(x) ((const uint8_t(*)[PX_HASH_LEN])(x))

/* The commitment c must be exactly the one on chain for its provider. */
static int on_chain(const px_ledger_state_t *s, const px_commitment_t *c) {
  px_commit_rec_t cr;
  int rc = market_commit_get(s, c->job_id, c->shard, c->provider, &cr);
  if (rc) return rc; /* PX_ENOTFOUND: not committed on chain */
  if (memcmp(cr.c.output, c->output, PX_HASH_LEN) ||
      memcmp(cr.c.trace_root, c->trace_root, PX_HASH_LEN) ||
      cr.c.n_layers != c->n_layers || memcmp(cr.c.sig, c->sig, PX_SIG_LEN))
    return PX_EINVAL; /* not the commitment on chain */
  return cr.lost ? PX_ESTATE : 0;
}

/* The sample's per-sample input leaf for layer 0, from the input blob. */
static int input_leaf_from_blob(const px_job_rec_t *j,
                                const px_market_dispute_t *d,
                                uint8_t leaf[PX_HASH_LEN]) {
  const px_dispute_layer_t *l = &d->l;
  uint64_t floats = (uint64_t)l->in_c * l->in_h * l->in_w; /* <= 2^48 */
  uint64_t bytes = floats * sizeof(float);
  uint64_t g = (uint64_t)d->a.shard * j->spec.shard_size + d->sample;
  if (bytes > 2ull * PX_BLOB_CHUNK) return PX_ELIMIT;
  if (g >= j->spec.n_samples || g > UINT64_MAX / bytes) return PX_EINVAL;
  uint64_t off = g * bytes;
  if (off + bytes > j->spec.input_size) return PX_EINVAL;
  uint64_t first = off / PX_BLOB_CHUNK,
           last = (off + bytes - 1) / PX_BLOB_CHUNK;
  if (d->chunk_index[0] != first || d->n_chunks != last - first + 1)
    return PX_EINVAL;
  for (uint32_t i = 0; i < d->n_chunks; i++) {
    int rc = px_blob_verify_chunk(
        j->spec.input, j->spec.input_size, d->chunk_index[i], d->chunk[i],
        d->chunk_len[i], P(d->chunk_path[i]), d->chunk_depth[i]);
    if (rc) return rc == PX_EAUTH ? PX_EAUTH : PX_EINVAL;
  }
  uint8_t *x = px_malloc((size_t)bytes);
  if (!x) return PX_ENOMEM;
  size_t in_first = (size_t)(off - first * PX_BLOB_CHUNK);
  size_t take = PX_MIN((size_t)bytes, d->chunk_len[0] - in_first);
  memcpy(x, d->chunk[0] + in_first, take);
  if (take < bytes) memcpy(x + take, d->chunk[1], (size_t)bytes - take);
  px_merkle_leaf(leaf, x, (size_t)bytes);
  px_free(x);
  return 0;
}

static int referee(px_ledger_ctx_t *ctx, const px_market_dispute_t *d,
                   px_job_rec_t *j, px_verdict_t *v) {
  const px_ledger_state_t *s = ctx->s;
  int rc = market_job_get(s, d->a.job_id, j);
  if (rc) return rc;
  if (j->state != PX_JOBREC_OPEN) return PX_ESTATE;
  if ((rc = on_chain(s, &d->a)) || (rc = on_chain(s, &d->b))) return rc;
  const px_commitment_t *c[2] = {&d->a, &d->b};
  uint32_t nl = j->manifest.n_layers;
  if (!memcmp(d->a.output, d->b.output, PX_HASH_LEN) || d->layer >= nl ||
      d->n_samples != px_job_shard_samples(&j->spec, d->a.shard) ||
      !memcmp(d->sample_leaf[0], d->sample_leaf[1], PX_HASH_LEN) ||
      memcmp(d->l.claim[0], d->sample_leaf[0], PX_HASH_LEN) ||
      memcmp(d->l.claim[1], d->sample_leaf[1], PX_HASH_LEN))
    return PX_EINVAL;
  for (int p = 0; p < 2; p++) {
    if ((rc = verify_path(c[p]->trace_root, d->layer_leaf[p], d->layer, nl,
                          P(d->layer_path[p]), d->layer_depth[p])))
      return rc;
    if ((rc = verify_path(d->layer_leaf[p], d->sample_leaf[p], d->sample,
                          d->n_samples, P(d->sample_path[p]),
                          d->sample_depth[p])))
      return rc;
  }
  uint8_t ref[PX_HASH_LEN];
  px_market_layer_ref(&d->l, ref);
  if (memcmp(ref, j->manifest.layer_ref[d->layer], PX_HASH_LEN))
    return PX_EAUTH; /* not the job's model layer */
  uint8_t in_leaf[PX_HASH_LEN];
  if (d->layer) {
    for (int p = 0; p < 2; p++)
      if ((rc = verify_path(c[p]->trace_root, d->in_layer_leaf, d->layer - 1,
                            nl, P(d->in_layer_path[p]), d->in_layer_depth[p])))
        return rc;
    if ((rc = verify_path(d->in_layer_leaf, d->in_sample_leaf, d->sample,
                          d->n_samples, P(d->in_sample_path),
                          d->in_sample_depth)))
      return rc;
    memcpy(in_leaf, d->in_sample_leaf, PX_HASH_LEN);
  } else if ((rc = input_leaf_from_blob(j, d, in_leaf))) {
    return rc;
  }
  return px_dispute_verdict(NULL, &d->l, in_leaf, PX_DISPUTE_MAX_MACS, v);
}

int market_dispute_execute(px_ledger_ctx_t *ctx, const px_tx_t *tx) {
  px_market_dispute_t *d = px_calloc(1, sizeof *d);
  if (!d) return PX_ENOMEM;
  int rc = px_market_payload_dispute_decode(tx->payload, tx->payload_len, d);
  px_job_rec_t j;
  px_verdict_t v = 0;
  if (!rc) rc = referee(ctx, d, &j, &v);
  if (!rc) {
    uint64_t amt;
    const uint8_t *pa = d->a.provider, *pb = d->b.provider;
    const uint8_t *winner = v == PX_VERDICT_A   ? pa
                            : v == PX_VERDICT_B ? pb
                                                : NULL;
    if (v != PX_VERDICT_B) /* B lost (A won, or neither) */
      rc = market_slash(ctx, &j, d->a.shard, pb, winner, &amt);
    if (!rc && v != PX_VERDICT_A)
      rc = market_slash(ctx, &j, d->a.shard, pa, winner, &amt);
    if (rc == PX_EDUP) rc = PX_ESTATE; /* punished already for this shard */
    if (!rc && winner) {
      px_provider_rec_t pr;
      rc = px_market_provider(ctx->s, winner, &pr);
      if (!rc) {
        pr.disputes_won++;
        px_buf_t b;
        px_buf_init(&b, 0);
        uint8_t key[MARKET_PK_KEY_LEN];
        key[0] = PX_CONTRACT_MARKET;
        key[1] = KEY_MARKET_PROVIDER;
        memcpy(key + 2, winner, PX_PK_LEN);
        rc = market_provider_rec_encode(&pr, &b);
        if (!rc) rc = ctx_put(ctx, key, sizeof key, b.data, b.len);
        px_buf_release(&b);
      }
    }
    if (!rc) {
      j.n_disputes++;
      rc = market_job_put(ctx, &j);
    }
  }
  px_market_dispute_release(d);
  px_free(d);
  return rc;
}
