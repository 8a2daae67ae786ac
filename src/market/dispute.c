/*
 * dispute.c — the dispute game over layer traces and the one-layer referee
 * (plexus/market.h, docs/market.md "Disputes").
 *
 * Bisection.  Two commitments to one shard claim different outputs.  The
 * shard input (call it leaf -1) is agreed by both, since it is named by the
 * job; the last leaves (the signed output hashes) differ.  The game keeps
 * lo < hi with "leaf lo agreed, leaf hi differs" and halves the gap each
 * round: the referee asks for leaf mid, each party answers with its leaf and
 * a Merkle audit path against its committed trace root.  Answers that do not
 * verify, or name the wrong index, lose the game at once, so a party cannot
 * change its trace after committing.  ceil(log2(n + 1)) rounds, each
 * O(log n) hashes to check.  It ends at hi = lo + 1: a layer whose input
 * both agree on and whose output they dispute.  If a cheater perturbed one
 * layer and everything after it follows, that is exactly the perturbed
 * layer.
 *
 * Referee.  The layer's input activations, weights and the two claimed
 * output leaves are posted; the referee checks the input against the agreed
 * leaf and the weights against their reference hash, re-executes the one
 * layer with the deterministic kernels (bit-exact everywhere, compute.h),
 * and compares leaf hashes.  A cost bound in MACs keeps on-chain
 * re-execution cheap; larger layers are refused with PX_ELIMIT.
 *
 * Message encodings (u16 tag, u8 version first):
 *   challenge: job_id[32] u32 shard u32 round u32 index
 *   response:  job_id[32] u32 shard u32 round u32 index leaf[32]
 *              u32 depth (<= PX_MERKLE_MAX_DEPTH) path[depth][32]
 *   layer:     job_id[32] u32 shard u32 layer u8 kind u32 n u32 in_c u32 in_h
 *              u32 in_w u32 out_c u32 k u32 pad weights_ref[32]
 *              claim_a[32] claim_b[32] bytes input bytes weights bytes bias
 *              (f32 little-endian; lengths must match the shapes exactly)
 */
#include <stdint.h>
#include <string.h>

#include "plexus/codec.h"
#include "plexus/compute.h"
#include "plexus/crypto.h"
#include "plexus/market.h"
#include "base/px_internal.h"

/* ---- messages ------------------------------------------------------------
 */

int px_dispute_challenge_encode(const px_dispute_challenge_t *c,
                                px_buf_t *out) {
  px_writer_t w;
  px_writer_init(&w, out);
  px_writer_u16(&w, PX_MARKET_TAG_CHALLENGE);
  px_writer_u8(&w, PX_MARKET_VERSION);
  px_writer_fixed(&w, c->job_id, PX_HASH_LEN);
  px_writer_u32(&w, c->shard);
  px_writer_u32(&w, c->round);
  px_writer_u32(&w, c->index);
  return px_writer_finish(&w);
}

int px_dispute_challenge_decode(const void *p, size_t n,
                                px_dispute_challenge_t *c) {
  px_reader_t r;
  memset(c, 0, sizeof *c);
  px_reader_init(&r, p, n);
  if (px_reader_u16(&r) != PX_MARKET_TAG_CHALLENGE)
    px_reader_fail(&r, PX_EDECODE);
  if (px_reader_u8(&r) != PX_MARKET_VERSION) px_reader_fail(&r, PX_EVERSION);
  px_reader_fixed(&r, c->job_id, PX_HASH_LEN);
  c->shard = px_reader_u32(&r);
  c->round = px_reader_u32(&r);
  c->index = px_reader_u32(&r);
  if (!r.err && c->index >= PX_TRACE_MAX_LAYERS) px_reader_fail(&r, PX_EDECODE);
  int rc = px_reader_finish(&r);
  if (rc) memset(c, 0, sizeof *c);
  return rc;
}

int px_dispute_response_encode(const px_dispute_response_t *r, px_buf_t *out) {
  if (r->depth > PX_MERKLE_MAX_DEPTH) return PX_EINVAL;
  px_writer_t w;
  px_writer_init(&w, out);
  px_writer_u16(&w, PX_MARKET_TAG_RESPONSE);
  px_writer_u8(&w, PX_MARKET_VERSION);
  px_writer_fixed(&w, r->job_id, PX_HASH_LEN);
  px_writer_u32(&w, r->shard);
  px_writer_u32(&w, r->round);
  px_writer_u32(&w, r->index);
  px_writer_fixed(&w, r->leaf, PX_HASH_LEN);
  px_writer_u32(&w, r->depth);
  for (uint32_t i = 0; i < r->depth; i++)
    px_writer_fixed(&w, r->path[i], PX_HASH_LEN);
  return px_writer_finish(&w);
}

int px_dispute_response_decode(const void *p, size_t n,
                               px_dispute_response_t *r) {
  px_reader_t rd;
  memset(r, 0, sizeof *r);
  px_reader_init(&rd, p, n);
  if (px_reader_u16(&rd) != PX_MARKET_TAG_RESPONSE)
    px_reader_fail(&rd, PX_EDECODE);
  if (px_reader_u8(&rd) != PX_MARKET_VERSION) px_reader_fail(&rd, PX_EVERSION);
  px_reader_fixed(&rd, r->job_id, PX_HASH_LEN);
  r->shard = px_reader_u32(&rd);
  r->round = px_reader_u32(&rd);
  r->index = px_reader_u32(&rd);
  px_reader_fixed(&rd, r->leaf, PX_HASH_LEN);
  r->depth = px_reader_u32(&rd);
  if (!rd.err &&
      (r->index >= PX_TRACE_MAX_LAYERS || r->depth > PX_MERKLE_MAX_DEPTH))
    px_reader_fail(&rd, PX_EDECODE);
  for (uint32_t i = 0; i < r->depth && !rd.err; i++)
    px_reader_fixed(&rd, r->path[i], PX_HASH_LEN);
  int rc = px_reader_finish(&rd);
  if (rc) memset(r, 0, sizeof *r);
  return rc;
}

int px_dispute_respond(const px_dispute_challenge_t *c,
                       const uint8_t (*leaves)[PX_HASH_LEN], size_t n,
                       px_dispute_response_t *r) {
  memset(r, 0, sizeof *r);
  if (!leaves || c->index >= n) return PX_EINVAL;
  memcpy(r->job_id, c->job_id, PX_HASH_LEN);
  r->shard = c->shard;
  r->round = c->round;
  r->index = c->index;
  memcpy(r->leaf, leaves[c->index], PX_HASH_LEN);
  size_t depth = 0;
  int rc = px_merkle_proof(leaves, n, c->index, r->path, &depth);
  r->depth = (uint32_t)depth;
  return rc;
}

/* ---- bisection -----------------------------------------------------------
 */

static void check_found(px_dispute_t *d) {
  if (d->status == PX_DISPUTE_OPEN && d->hi == d->lo + 1)
    d->status = PX_DISPUTE_FOUND;
}

int px_dispute_init(px_dispute_t *d, const px_commitment_t *a,
                    const px_commitment_t *b) {
  memset(d, 0, sizeof *d);
  if (memcmp(a->job_id, b->job_id, PX_HASH_LEN) || a->shard != b->shard ||
      a->n_layers != b->n_layers || a->n_layers < 1 ||
      a->n_layers > PX_TRACE_MAX_LAYERS ||
      !memcmp(a->output, b->output, PX_HASH_LEN))
    return PX_EINVAL;
  memcpy(d->job_id, a->job_id, PX_HASH_LEN);
  d->shard = a->shard;
  d->n = a->n_layers;
  d->lo = -1;
  d->hi = (int64_t)d->n - 1;
  memcpy(d->root[0], a->trace_root, PX_HASH_LEN);
  memcpy(d->root[1], b->trace_root, PX_HASH_LEN);
  memcpy(d->hi_leaf[0], a->output, PX_HASH_LEN);
  memcpy(d->hi_leaf[1], b->output, PX_HASH_LEN);
  d->status = PX_DISPUTE_OPEN;
  check_found(d);
  return 0;
}

static uint32_t mid_of(const px_dispute_t *d) {
  return (uint32_t)(d->lo + (d->hi - d->lo) / 2);
}

int px_dispute_challenge(const px_dispute_t *d, px_dispute_challenge_t *c) {
  memset(c, 0, sizeof *c);
  if (d->status != PX_DISPUTE_OPEN) return PX_ESTATE;
  memcpy(c->job_id, d->job_id, PX_HASH_LEN);
  c->shard = d->shard;
  c->round = d->round;
  c->index = mid_of(d);
  return 0;
}

int px_dispute_answer(px_dispute_t *d, int party,
                      const px_dispute_response_t *r) {
  if (party != 0 && party != 1) return PX_EINVAL;
  if (d->status != PX_DISPUTE_OPEN) return PX_ESTATE;
  if (memcmp(r->job_id, d->job_id, PX_HASH_LEN) || r->shard != d->shard ||
      r->round != d->round || d->got[party])
    return PX_EPROTO;
  uint32_t mid = mid_of(d);
  int ok =
      r->index == mid && r->depth <= PX_MERKLE_MAX_DEPTH &&
      px_merkle_verify(d->root[party], r->leaf, mid, d->n,
                       (const uint8_t(*)[PX_HASH_LEN])r->path, r->depth) == 0;
  if (!ok) {
    d->status = party == 0 ? PX_DISPUTE_A_LOST : PX_DISPUTE_B_LOST;
    return 0;
  }
  d->got[party] = 1;
  memcpy(d->ans[party], r->leaf, PX_HASH_LEN);
  if (!d->got[0] || !d->got[1]) return 0;
  if (!memcmp(d->ans[0], d->ans[1], PX_HASH_LEN)) {
    d->lo = mid;
    memcpy(d->lo_leaf, d->ans[0], PX_HASH_LEN);
  } else {
    d->hi = mid;
    memcpy(d->hi_leaf[0], d->ans[0], PX_HASH_LEN);
    memcpy(d->hi_leaf[1], d->ans[1], PX_HASH_LEN);
  }
  d->round++;
  d->got[0] = d->got[1] = 0;
  check_found(d);
  return 0;
}

int px_dispute_result(const px_dispute_t *d, uint32_t *layer, int *has_in,
                      uint8_t in_leaf[PX_HASH_LEN],
                      uint8_t claim[2][PX_HASH_LEN]) {
  if (d->status != PX_DISPUTE_FOUND) return PX_ESTATE;
  *layer = (uint32_t)d->hi;
  *has_in = d->lo >= 0;
  memset(in_leaf, 0, PX_HASH_LEN);
  if (*has_in) memcpy(in_leaf, d->lo_leaf, PX_HASH_LEN);
  memcpy(claim[0], d->hi_leaf[0], PX_HASH_LEN);
  memcpy(claim[1], d->hi_leaf[1], PX_HASH_LEN);
  return 0;
}

/* ---- the layer -----------------------------------------------------------
 */

#define DIM_MAX (1u << 16)

/* Shape checks; expected array sizes and cost out. */
static int layer_shape(const px_dispute_layer_t *l, size_t *n_in, size_t *n_w,
                       size_t *n_b, size_t *n_out, uint64_t *macs) {
  if (l->n < 1 || l->n > PX_DISPUTE_MAX_FLOATS || l->in_c < 1 || l->in_h < 1 ||
      l->in_w < 1 || l->in_c > DIM_MAX || l->in_h > DIM_MAX ||
      l->in_w > DIM_MAX || l->layer >= PX_TRACE_MAX_LAYERS)
    return PX_EINVAL;
  uint64_t in_size = (uint64_t)l->in_c * l->in_h * l->in_w, out_size = 0;
  uint64_t nw = 0, nb = 0, per = 0;
  switch (l->kind) {
  case PX_LAYER_LINEAR:
    if (l->out_c < 1 || l->out_c > DIM_MAX || l->k || l->pad) return PX_EINVAL;
    out_size = l->out_c;
    nw = l->out_c * in_size;
    nb = l->out_c;
    per = nw;
    break;
  case PX_LAYER_CONV: {
    if (l->out_c < 1 || l->out_c > DIM_MAX || l->k < 1 || l->k > 15 ||
        l->pad >= l->k || l->in_h + 2 * l->pad < l->k ||
        l->in_w + 2 * l->pad < l->k)
      return PX_EINVAL;
    uint64_t oh = l->in_h + 2 * l->pad - l->k + 1,
             ow = l->in_w + 2 * l->pad - l->k + 1;
    out_size = (uint64_t)l->out_c * oh * ow;
    nw = (uint64_t)l->out_c * l->in_c * l->k * l->k;
    nb = l->out_c;
    if (nw > UINT64_MAX / (oh * ow)) return PX_ELIMIT; /* oh, ow >= 1 */
    per = nw * oh * ow;
    break;
  }
  case PX_LAYER_RELU:
    if (l->out_c != l->in_c || l->k || l->pad) return PX_EINVAL;
    out_size = in_size;
    per = in_size; /* one op per element counts as a MAC for the bound */
    break;
  case PX_LAYER_MAXPOOL:
    if (l->out_c != l->in_c || l->k || l->pad || l->in_h < 2 || l->in_w < 2)
      return PX_EINVAL;
    out_size = (uint64_t)l->in_c * (l->in_h / 2) * (l->in_w / 2);
    per = in_size;
    break;
  default:
    return PX_EINVAL;
  }
  if (in_size > PX_DISPUTE_MAX_FLOATS / l->n ||
      out_size > PX_DISPUTE_MAX_FLOATS / l->n || nw > PX_DISPUTE_MAX_FLOATS)
    return PX_ELIMIT;
  if (per && l->n > UINT64_MAX / per) return PX_ELIMIT;
  *n_in = (size_t)(in_size * l->n);
  *n_out = (size_t)(out_size * l->n);
  *n_w = (size_t)nw;
  *n_b = (size_t)nb;
  *macs = per * l->n;
  return 0;
}

int px_dispute_layer_check(const px_dispute_layer_t *l, uint64_t max_macs) {
  size_t ni, nw, nb, no;
  uint64_t macs = 0;
  if (!max_macs) max_macs = PX_DISPUTE_MAX_MACS;
  int rc = layer_shape(l, &ni, &nw, &nb, &no, &macs);
  if (rc == PX_ELIMIT) {
    PX_LOGW("market",
            "dispute over layer %u refused: its activations or weights exceed "
            "%u floats, too large for on-chain re-execution; use smaller "
            "shards",
            l->layer, PX_DISPUTE_MAX_FLOATS);
    return rc;
  }
  if (!rc && macs > max_macs) {
    PX_LOGW("market",
            "dispute over layer %u refused: %llu multiply-accumulates exceed "
            "the on-chain re-execution bound of %llu; use smaller shards",
            l->layer, (unsigned long long)macs, (unsigned long long)max_macs);
    return PX_ELIMIT;
  }
  if (rc) return rc;
  if (l->n_input != ni || l->n_weights != nw || l->n_bias != nb ||
      (ni && !l->input) || (nw && !l->weights) || (nb && !l->bias))
    return PX_EINVAL;
  return 0;
}

void px_dispute_weights_ref(const float *w, size_t nw, const float *b,
                            size_t nb, uint8_t out[PX_HASH_LEN]) {
  px_hash_state_t st;
  px_hash_init(&st);
  if (nw) px_hash_update(&st, w, nw * sizeof(float));
  if (nb) px_hash_update(&st, b, nb * sizeof(float));
  px_hash_final(&st, out);
}

int px_dispute_layer_encode(const px_dispute_layer_t *l, px_buf_t *out) {
  int rc = px_dispute_layer_check(l, UINT64_MAX);
  if (rc) return rc;
  px_writer_t w;
  px_writer_init(&w, out);
  px_writer_u16(&w, PX_MARKET_TAG_LAYER);
  px_writer_u8(&w, PX_MARKET_VERSION);
  px_writer_fixed(&w, l->job_id, PX_HASH_LEN);
  px_writer_u32(&w, l->shard);
  px_writer_u32(&w, l->layer);
  px_writer_u8(&w, l->kind);
  px_writer_u32(&w, l->n);
  px_writer_u32(&w, l->in_c);
  px_writer_u32(&w, l->in_h);
  px_writer_u32(&w, l->in_w);
  px_writer_u32(&w, l->out_c);
  px_writer_u32(&w, l->k);
  px_writer_u32(&w, l->pad);
  px_writer_fixed(&w, l->weights_ref, PX_HASH_LEN);
  px_writer_fixed(&w, l->claim[0], PX_HASH_LEN);
  px_writer_fixed(&w, l->claim[1], PX_HASH_LEN);
  /* little-endian host (x86-64, as compute/trace.c): floats as they lie */
  px_writer_bytes(&w, l->input, l->n_input * sizeof(float));
  px_writer_bytes(&w, l->weights, l->n_weights * sizeof(float));
  px_writer_bytes(&w, l->bias, l->n_bias * sizeof(float));
  return px_writer_finish(&w);
}

static float *copy_floats(px_reader_t *r, size_t *n_out) {
  const uint8_t *p;
  size_t n;
  *n_out = 0;
  px_reader_bytes(r, &p, &n, (size_t)PX_DISPUTE_MAX_FLOATS * sizeof(float));
  if (r->err) return NULL;
  if (n % sizeof(float)) {
    px_reader_fail(r, PX_EDECODE);
    return NULL;
  }
  if (!n) return NULL;
  float *f = px_malloc(n);
  if (!f) {
    px_reader_fail(r, PX_ENOMEM);
    return NULL;
  }
  memcpy(f, p, n);
  *n_out = n / sizeof(float);
  return f;
}

void px_dispute_layer_release(px_dispute_layer_t *l) {
  px_free((void *)l->input);
  px_free((void *)l->weights);
  px_free((void *)l->bias);
  l->input = l->weights = l->bias = NULL;
  l->n_input = l->n_weights = l->n_bias = 0;
}

int px_dispute_layer_decode(const void *p, size_t n, px_dispute_layer_t *l) {
  px_reader_t r;
  memset(l, 0, sizeof *l);
  px_reader_init(&r, p, n);
  if (px_reader_u16(&r) != PX_MARKET_TAG_LAYER) px_reader_fail(&r, PX_EDECODE);
  if (px_reader_u8(&r) != PX_MARKET_VERSION) px_reader_fail(&r, PX_EVERSION);
  px_reader_fixed(&r, l->job_id, PX_HASH_LEN);
  l->shard = px_reader_u32(&r);
  l->layer = px_reader_u32(&r);
  l->kind = px_reader_u8(&r);
  l->n = px_reader_u32(&r);
  l->in_c = px_reader_u32(&r);
  l->in_h = px_reader_u32(&r);
  l->in_w = px_reader_u32(&r);
  l->out_c = px_reader_u32(&r);
  l->k = px_reader_u32(&r);
  l->pad = px_reader_u32(&r);
  px_reader_fixed(&r, l->weights_ref, PX_HASH_LEN);
  px_reader_fixed(&r, l->claim[0], PX_HASH_LEN);
  px_reader_fixed(&r, l->claim[1], PX_HASH_LEN);
  /* shapes first, so nothing is copied for an impossible layer */
  size_t ni, nw, nb, no;
  uint64_t macs;
  if (!r.err) {
    int rc = layer_shape(l, &ni, &nw, &nb, &no, &macs);
    if (rc) px_reader_fail(&r, rc == PX_ELIMIT ? PX_ELIMIT : PX_EDECODE);
  }
  l->input = copy_floats(&r, &l->n_input);
  l->weights = copy_floats(&r, &l->n_weights);
  l->bias = copy_floats(&r, &l->n_bias);
  int rc = px_reader_finish(&r);
  if (!rc) {
    rc = px_dispute_layer_check(l, UINT64_MAX);
    if (rc) rc = PX_EDECODE;
  }
  if (rc) px_dispute_layer_release(l);
  return rc;
}

int px_dispute_verdict(px_compute_t *c, const px_dispute_layer_t *l,
                       const uint8_t in_leaf[PX_HASH_LEN], uint64_t max_macs,
                       px_verdict_t *out) {
  *out = 0;
  int rc = px_dispute_layer_check(l, max_macs);
  if (rc) return rc;
  size_t ni, nw, nb, no;
  uint64_t macs;
  layer_shape(l, &ni, &nw, &nb, &no, &macs);
  uint8_t h[PX_HASH_LEN];
  px_merkle_leaf(h, l->input, ni * sizeof(float));
  if (memcmp(h, in_leaf, PX_HASH_LEN)) return PX_EAUTH;
  px_dispute_weights_ref(l->weights, nw, l->bias, nb, h);
  if (memcmp(h, l->weights_ref, PX_HASH_LEN)) return PX_EAUTH;
  float *y = px_malloc(no * sizeof(float));
  if (!y) return PX_ENOMEM;
  px_compute_t *own = NULL;
  if (!c && (l->kind == PX_LAYER_LINEAR || l->kind == PX_LAYER_CONV)) {
    px_compute_opts_t o = {.simd = -1, .threads = 1};
    rc = px_compute_new(&o, &own);
    if (rc) {
      px_free(y);
      return rc;
    }
    c = own;
  }
  int in_size = (int)(l->in_c * l->in_h * l->in_w);
  switch (l->kind) {
  case PX_LAYER_LINEAR:
    px_matmul_f32(c, y, (int)l->out_c, l->input, in_size, l->weights, in_size,
                  l->bias, (int)l->n, (int)l->out_c, in_size);
    break;
  case PX_LAYER_CONV: {
    px_conv2d_shape_t s = {
        (int)l->n,     (int)l->in_c, (int)l->in_h, (int)l->in_w,
        (int)l->out_c, (int)l->k,    (int)l->k,    1,
        (int)l->pad};
    px_conv2d_f32(c, y, l->input, l->weights, l->bias, &s);
    break;
  }
  case PX_LAYER_RELU:
    px_relu_f32(c, y, l->input, ni);
    break;
  case PX_LAYER_MAXPOOL:
    px_maxpool2d_f32(y, l->input, (int)l->n, (int)l->in_c, (int)l->in_h,
                     (int)l->in_w, 2, 2);
    break;
  }
  px_merkle_leaf(h, y, no * sizeof(float));
  px_free(y);
  px_compute_free(own);
  int a = !memcmp(h, l->claim[0], PX_HASH_LEN),
      b = !memcmp(h, l->claim[1], PX_HASH_LEN);
  *out = a && !b ? PX_VERDICT_A : b && !a ? PX_VERDICT_B : PX_VERDICT_NEITHER;
  return 0;
}
