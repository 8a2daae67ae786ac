/*
 * requester_dispute.c — the requester's side of a dispute (docs/market.md
 * "Requester runtime", "Disputes").
 *
 * When two commitments to one shard differ (replicas, or worker and
 * auditor), the scheduler emits DISPUTE.  The requester referees:
 *   1. wait until both commitments are on chain (the DISPUTE tx needs them
 *      there; a commitment the chain already holds as lost loses at once);
 *   2. bisection (px_dispute_*): CHALLENGE rounds to both providers until
 *      the first trace layer L where the layer leaves part;
 *   3. proofs of leaves L and L-1 in both traces (CHALLENGE at those
 *      indices) and the per-sample leaves of layer L from both parties and
 *      of layer L-1 (REVEAL), each checked against the committed roots;
 *   4. the first sample j whose leaves differ at L; the requester computes
 *      j's input to layer L itself from its own model and input (it must
 *      hash to the agreed per-sample leaf of L-1), builds the DISPUTE tx
 *      (px_reqd_build) and submits it;
 *   5. the verdict: the block holding the tx; the contract's commit records
 *      say who lost (the loser's record is marked lost), and the scheduler
 *      gets DISPUTE_RESOLVED.
 * A party that does not answer in time (PX_REQ_GAME_TIMEOUT_MS per
 * request), answers with a bad proof, or reveals leaves that do not hash to
 * its committed leaf loses the game off chain: the scheduler drops its
 * result and never leases to it again for this job, but no slash happens
 * (the chain cannot judge silence).  When the layer is too large for
 * on-chain re-execution (PX_ELIMIT), or the tx fails, the requester falls
 * back to its own re-execution (px_dispute_verdict run locally), again
 * without a slash.  Nothing here is persisted beyond (shard, A, B): a game
 * restarts from scratch after a restart.
 */
#include <stdio.h>
#include <string.h>

#include "plexus/codec.h"
#include "plexus/compute.h"
#include "plexus/crypto.h"
#include "plexus/market.h"
#include "plexus/market_chain.h"

#include "node/requester.h"
#include "base/px_internal.h"

#define LOGMOD "market"
#define ROUND_PROOF 0x7fff0000u /* round numbers of the proof challenges */

static void short_hex(const uint8_t *pk, char out[17]) {
  px_hex_encode(pk, 8, out);
}

/* ---- pure parts -----------------------------------------------------------
 */

int px_reqd_layer_input(px_compute_t *c, const px_net_t *net, const float *x,
                        uint32_t upto, float **out, size_t *n) {
  *out = NULL;
  *n = 0;
  if (upto > (uint32_t)px_net_layer_count(net)) return PX_EINVAL;
  size_t cur_n = px_net_input_size(net);
  float *cur = px_malloc(cur_n * sizeof(float));
  if (!cur) return PX_ENOMEM;
  memcpy(cur, x, cur_n * sizeof(float));
  for (uint32_t i = 0; i < upto; i++) {
    const px_layer_t *l = px_net_layer(net, (int)i);
    float *y = px_malloc(l->out_size * sizeof(float));
    if (!y) {
      px_free(cur);
      return PX_ENOMEM;
    }
    switch (l->kind) {
    case PX_LAYER_LINEAR:
      px_matmul_f32(c, y, l->out_c, cur, (int)l->in_size, l->w, (int)l->in_size,
                    l->b, 1, l->out_c, (int)l->in_size);
      break;
    case PX_LAYER_CONV: {
      px_conv2d_shape_t s = {1,    l->in_c, l->in_h, l->in_w, l->out_c,
                             l->k, l->k,    1,       l->pad};
      px_conv2d_f32(c, y, cur, l->w, l->b, &s);
      break;
    }
    case PX_LAYER_RELU:
      px_relu_f32(c, y, cur, l->in_size);
      break;
    case PX_LAYER_MAXPOOL:
      px_maxpool2d_f32(y, cur, 1, l->in_c, l->in_h, l->in_w, 2, 2);
      break;
    }
    px_free(cur);
    cur = y;
    cur_n = l->out_size;
  }
  *out = cur;
  *n = cur_n;
  return 0;
}

static int fail(char *errmsg, size_t cap, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail(char *errmsg, size_t cap, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  if (errmsg && cap) vsnprintf(errmsg, cap, fmt, ap);
  va_end(ap);
  return rc;
}

static int proof_ok(const px_dispute_response_t *p, const px_commitment_t *c,
                    uint32_t index) {
  return p && p->index == index && p->depth <= PX_MERKLE_MAX_DEPTH &&
         px_merkle_verify(c->trace_root, p->leaf, index, c->n_layers,
                          (const uint8_t(*)[PX_HASH_LEN])p->path,
                          p->depth) == 0;
}

int px_reqd_build(px_compute_t *c, const px_reqd_input_t *in, px_buf_t *out,
                  uint32_t *sample_out, char *errmsg, size_t errcap) {
  const px_job_spec_t *spec = in->spec;
  const px_commitment_t *ab[2] = {in->a, in->b};
  uint32_t L = in->layer, n = in->n_samples;
  if (!n || n != px_job_shard_samples(spec, in->a->shard))
    return fail(errmsg, errcap, PX_EINVAL, "shard %u has %u samples, not %u",
                in->a->shard, px_job_shard_samples(spec, in->a->shard), n);
  if (L >= in->manifest->n_layers ||
      L >= (uint32_t)px_net_layer_count(in->net) ||
      in->a->n_layers != in->manifest->n_layers ||
      in->b->n_layers != in->manifest->n_layers)
    return fail(errmsg, errcap, PX_EINVAL,
                "layer %u / trace lengths %u, %u do not fit the %u-layer "
                "manifest",
                L, in->a->n_layers, in->b->n_layers, in->manifest->n_layers);
  if ((uint64_t)in->input_floats * 4 != spec->input_size)
    return fail(errmsg, errcap, PX_EINVAL,
                "input holds %zu floats, spec %llu "
                "bytes",
                in->input_floats, (unsigned long long)spec->input_size);
  /* the layer leaves and the per-sample leaves under them */
  for (int p = 0; p < 2; p++) {
    uint8_t root[PX_HASH_LEN];
    if (!proof_ok(in->proof_l[p], ab[p], L))
      return fail(errmsg, errcap, PX_EAUTH,
                  "party %c: leaf of layer %u does not verify", 'A' + p, L);
    if (px_merkle_root(in->leaves_l[p], n, root) ||
        memcmp(root, in->proof_l[p]->leaf, PX_HASH_LEN))
      return fail(errmsg, errcap, PX_EAUTH,
                  "party %c: revealed per-sample leaves of layer %u do not "
                  "hash to its layer leaf",
                  'A' + p, L);
  }
  uint32_t j = 0;
  while (j < n && !memcmp(in->leaves_l[0][j], in->leaves_l[1][j], PX_HASH_LEN))
    j++;
  if (j == n)
    return fail(errmsg, errcap, PX_EINVAL,
                "the parties agree on every sample of layer %u", L);
  if (L > 0) {
    for (int p = 0; p < 2; p++)
      if (!proof_ok(in->proof_in[p], ab[p], L - 1))
        return fail(errmsg, errcap, PX_EAUTH,
                    "party %c: leaf of layer %u does not verify", 'A' + p,
                    L - 1);
    uint8_t root[PX_HASH_LEN];
    if (memcmp(in->proof_in[0]->leaf, in->proof_in[1]->leaf, PX_HASH_LEN))
      return fail(errmsg, errcap, PX_EINVAL,
                  "the parties disagree on layer %u: not the first parting",
                  L - 1);
    if (!in->leaves_in || px_merkle_root(in->leaves_in, n, root) ||
        memcmp(root, in->proof_in[0]->leaf, PX_HASH_LEN))
      return fail(errmsg, errcap, PX_EAUTH,
                  "per-sample leaves of layer %u do not hash to the agreed "
                  "leaf",
                  L - 1);
  }
  /* the sample's input to layer L, computed here */
  size_t in_size = px_net_input_size(in->net);
  uint64_t global = (uint64_t)in->a->shard * spec->shard_size + j;
  if ((global + 1) * in_size > in->input_floats)
    return fail(errmsg, errcap, PX_EINVAL, "sample %llu is past the input",
                (unsigned long long)global);
  const float *x = in->input + global * in_size;
  float *act = NULL;
  size_t act_n = 0;
  int rc = px_reqd_layer_input(c, in->net, x, L, &act, &act_n);
  if (rc)
    return fail(errmsg, errcap, rc, "cannot run the sample: %s",
                px_strerror(rc));
  px_market_dispute_t *d = px_calloc(1, sizeof *d);
  if (!d) {
    px_free(act);
    return PX_ENOMEM;
  }
  d->a = *in->a;
  d->b = *in->b;
  d->layer = L;
  d->sample = j;
  d->n_samples = n;
  for (int p = 0; p < 2; p++) {
    size_t depth = 0;
    memcpy(d->layer_leaf[p], in->proof_l[p]->leaf, PX_HASH_LEN);
    d->layer_depth[p] = in->proof_l[p]->depth;
    memcpy(d->layer_path[p], in->proof_l[p]->path,
           sizeof(uint8_t[PX_HASH_LEN]) * in->proof_l[p]->depth);
    memcpy(d->sample_leaf[p], in->leaves_l[p][j], PX_HASH_LEN);
    rc = px_merkle_proof(in->leaves_l[p], n, j, d->sample_path[p], &depth);
    d->sample_depth[p] = (uint32_t)depth;
    if (rc) goto out;
  }
  uint8_t in_leaf[PX_HASH_LEN];
  if (L > 0) {
    px_merkle_leaf(in_leaf, act, act_n * sizeof(float));
    if (memcmp(in_leaf, in->leaves_in[j], PX_HASH_LEN)) {
      rc = fail(errmsg, errcap, PX_EAUTH,
                "sample %u: the input to layer %u computed here differs from "
                "the one both providers agree on",
                j, L);
      goto out;
    }
    memcpy(d->in_layer_leaf, in->proof_in[0]->leaf, PX_HASH_LEN);
    for (int p = 0; p < 2; p++) {
      d->in_layer_depth[p] = in->proof_in[p]->depth;
      memcpy(d->in_layer_path[p], in->proof_in[p]->path,
             sizeof(uint8_t[PX_HASH_LEN]) * in->proof_in[p]->depth);
    }
    memcpy(d->in_sample_leaf, in->leaves_in[j], PX_HASH_LEN);
    size_t depth = 0;
    rc = px_merkle_proof(in->leaves_in, n, j, d->in_sample_path, &depth);
    d->in_sample_depth = (uint32_t)depth;
    if (rc) goto out;
  } else {
    /* the input blob chunks that hold the sample's bytes */
    const uint8_t *blob = (const uint8_t *)in->input;
    uint64_t off = global * in_size * sizeof(float);
    uint64_t end = off + in_size * sizeof(float) - 1;
    uint64_t c0 = off / PX_BLOB_CHUNK, c1 = end / PX_BLOB_CHUNK;
    if (c1 - c0 > 1) {
      rc = fail(errmsg, errcap, PX_ELIMIT,
                "a sample of %zu floats spans more than two input chunks",
                in_size);
      goto out;
    }
    d->n_chunks = (uint32_t)(c1 - c0 + 1);
    for (uint32_t k = 0; k < d->n_chunks; k++) {
      uint64_t idx = c0 + k;
      size_t depth = 0;
      d->chunk_index[k] = idx;
      d->chunk[k] = blob + idx * PX_BLOB_CHUNK;
      d->chunk_len[k] = px_blob_chunk_len(spec->input_size, idx);
      rc = px_blob_proof(blob, spec->input_size, idx, d->chunk_path[k], &depth);
      d->chunk_depth[k] = (uint32_t)depth;
      if (rc) goto out;
    }
    px_merkle_leaf(in_leaf, act, act_n * sizeof(float));
  }
  /* the layer itself, one sample */
  const px_layer_t *ly = px_net_layer(in->net, (int)L);
  px_dispute_layer_t *l = &d->l;
  memcpy(l->job_id, in->a->job_id, PX_HASH_LEN);
  l->shard = in->a->shard;
  l->layer = L;
  l->kind = (uint8_t)ly->kind;
  l->n = 1;
  l->in_c = (uint32_t)ly->in_c;
  l->in_h = (uint32_t)ly->in_h;
  l->in_w = (uint32_t)ly->in_w;
  l->out_c = (uint32_t)ly->out_c;
  l->k = (uint32_t)ly->k;
  l->pad = (uint32_t)ly->pad;
  l->input = act;
  l->n_input = act_n;
  l->weights = ly->w;
  l->n_weights = ly->nw;
  l->bias = ly->b;
  l->n_bias = ly->nb;
  px_dispute_weights_ref(ly->w, ly->nw, ly->b, ly->nb, l->weights_ref);
  memcpy(l->claim[0], d->sample_leaf[0], PX_HASH_LEN);
  memcpy(l->claim[1], d->sample_leaf[1], PX_HASH_LEN);
  uint8_t ref[PX_HASH_LEN];
  px_market_layer_ref(l, ref);
  if (memcmp(ref, in->manifest->layer_ref[L], PX_HASH_LEN)) {
    rc = fail(errmsg, errcap, PX_EAUTH,
              "layer %u of the local model does not match the job manifest", L);
    goto out;
  }
  rc = px_dispute_layer_check(l, 0);
  if (rc) {
    fail(errmsg, errcap, rc,
         "layer %u cannot be re-executed on chain (%s): too large", L,
         px_strerror(rc));
    goto out;
  }
  (void)in_leaf;
  rc = px_market_payload_dispute(out, d);
  if (rc)
    fail(errmsg, errcap, rc, "cannot encode the dispute: %s", px_strerror(rc));
  else if (out->len > PX_MARKET_DISPUTE_TX_MAX - 512)
    rc = fail(errmsg, errcap, PX_ELIMIT,
              "dispute payload of %zu bytes exceeds the %u-byte bound",
              out->len, PX_MARKET_DISPUTE_TX_MAX);
  if (!rc && sample_out) *sample_out = j;
out:
  px_free(act);
  px_free(d);
  return rc;
}

/* ---- runtime --------------------------------------------------------------
 */

void px_reqd_release(rj_dispute_t *d) {
  for (int i = 0; i < 3; i++) {
    px_free(d->rev[i]);
    d->rev[i] = NULL;
  }
}

int px_reqd_start(px_requester_t *r, rj_job_t *j, uint32_t shard,
                  const uint8_t a[PX_PK_LEN], const uint8_t b[PX_PK_LEN]) {
  (void)r;
  for (size_t i = 0; i < j->n_dp; i++)
    if (j->dp[i].shard == shard && j->dp[i].phase != RD_DONE) return 0;
  if (j->n_dp == j->cap_dp) {
    size_t cap = j->cap_dp ? 2 * j->cap_dp : 4;
    rj_dispute_t *v = px_realloc(j->dp, cap * sizeof *v);
    if (!v) return PX_ENOMEM;
    j->dp = v;
    j->cap_dp = cap;
  }
  rj_dispute_t *d = &j->dp[j->n_dp++];
  memset(d, 0, sizeof *d);
  d->shard = shard;
  memcpy(d->pk[0], a, PX_PK_LEN);
  memcpy(d->pk[1], b, PX_PK_LEN);
  d->phase = RD_WAIT_CHAIN;
  d->started_ms = px_req_now(j);
  char ha[17], hb[17];
  short_hex(a, ha);
  short_hex(b, hb);
  px_req_event(j, "dispute shard %u: %s vs %s", shard, ha, hb);
  px_req_mark_dirty(j);
  return 0;
}

/* Give the scheduler the verdict and close the game. */
static void resolve(px_requester_t *r, rj_job_t *j, rj_dispute_t *d, int loser,
                    const char *why, int slashed) {
  px_sched_event_t ev;
  memset(&ev, 0, sizeof ev);
  ev.type = PX_SCHED_EV_DISPUTE_RESOLVED;
  ev.shard = d->shard;
  memcpy(ev.provider, d->pk[!loser], PX_PK_LEN);
  memcpy(ev.loser, d->pk[loser], PX_PK_LEN);
  char hl[17], hw[17];
  short_hex(d->pk[loser], hl);
  short_hex(d->pk[!loser], hw);
  px_req_event(j, "dispute shard %u: %s lost%s (%s), %s wins", d->shard, hl,
               slashed ? ", slashed" : "", why, hw);
  d->phase = RD_DONE;
  px_reqd_release(d);
  px_req_feed(r, j, &ev);
}

/* A request could not be sent (peer not connected): the party has
 * PX_REQ_GAME_TIMEOUT_MS to come back (px_reqd_step checks). */
static void unreachable(rj_job_t *j, rj_dispute_t *d, int party) {
  if (!d->unreach_ms[party]) d->unreach_ms[party] = px_req_now(j);
}

static void send_challenge(px_requester_t *r, rj_job_t *j, rj_dispute_t *d,
                           int party, uint32_t round, uint32_t index,
                           uint8_t kind) {
  px_dispute_challenge_t ch;
  memset(&ch, 0, sizeof ch);
  memcpy(ch.job_id, j->id, PX_HASH_LEN);
  ch.shard = d->shard;
  ch.round = round;
  ch.index = index;
  px_buf_t b;
  px_buf_init(&b, 0);
  uint64_t id = 0;
  if (!px_dispute_challenge_encode(&ch, &b) &&
      !px_req_send(r, j, d->pk[party], PX_MKT_METHOD_CHALLENGE, &b, kind,
                   d->shard, (uint32_t)party, PX_REQ_GAME_TIMEOUT_MS, &id)) {
    d->req[party] = id;
    d->unreach_ms[party] = 0;
  } else {
    unreachable(j, d, party);
  }
  px_buf_release(&b);
}

static void send_reveal(px_requester_t *r, rj_job_t *j, rj_dispute_t *d,
                        int slot, int party, uint32_t layer) {
  px_mkt_reveal_req_t q;
  memset(&q, 0, sizeof q);
  memcpy(q.job_id, j->id, PX_HASH_LEN);
  q.shard = d->shard;
  q.layer = layer;
  px_buf_t b;
  px_buf_init(&b, 0);
  uint64_t id = 0;
  if (!px_mkt_reveal_req_encode(&q, &b) &&
      !px_req_send(r, j, d->pk[party], PX_MKT_METHOD_REVEAL, &b, RQ_REVEAL,
                   d->shard, (uint32_t)(slot | party << 4),
                   PX_REQ_GAME_TIMEOUT_MS, &id)) {
    d->req_rev[slot] = id;
    d->unreach_ms[party] = 0;
  } else {
    unreachable(j, d, party);
  }
  px_buf_release(&b);
}

static void local_verdict(px_requester_t *r, rj_job_t *j, rj_dispute_t *d,
                          const char *why);

static void submit(px_requester_t *r, rj_job_t *j, rj_dispute_t *d,
                   const px_ledger_state_t *s) {
  rj_commit_t *ca = px_req_find_commit(j, d->shard, d->pk[0]);
  rj_commit_t *cb = px_req_find_commit(j, d->shard, d->pk[1]);
  if (!ca || !cb || px_req_load_data(r, j)) return;
  px_reqd_input_t in;
  memset(&in, 0, sizeof in);
  in.spec = &j->spec;
  in.manifest = &j->manifest;
  in.net = j->net;
  in.input = j->input;
  in.input_floats = (size_t)j->spec.n_samples * j->in_size;
  in.a = &ca->c;
  in.b = &cb->c;
  in.layer = d->layer;
  in.n_samples = px_job_shard_samples(&j->spec, d->shard);
  for (int p = 0; p < 2; p++) {
    in.proof_l[p] = &d->proof[p][0];
    in.proof_in[p] = d->layer ? &d->proof[p][1] : NULL;
    in.leaves_l[p] = (const uint8_t(*)[PX_HASH_LEN])d->rev[p];
  }
  in.leaves_in = (const uint8_t(*)[PX_HASH_LEN])d->rev[2];
  px_buf_t b;
  px_buf_init(&b, 0);
  char err[256] = "";
  uint32_t sample = 0;
  int rc = px_reqd_build(r->compute, &in, &b, &sample, err, sizeof err);
  if (!rc) rc = px_market_submit(r->m, PX_TX_DISPUTE, b.data, b.len, d->tx);
  px_buf_release(&b);
  if (rc) {
    PX_LOGW(LOGMOD, "job %.16s dispute shard %u: cannot post on chain: %s%s%s",
            j->hex, d->shard, err[0] ? err : "", err[0] ? "; " : "",
            px_strerror(rc));
    local_verdict(r, j, d, err[0] ? err : px_strerror(rc));
    return;
  }
  d->phase = RD_SUBMITTED;
  d->sent_height = s ? px_ledger_height(s) : r->height;
  char tx[65];
  px_hex_encode(d->tx, PX_HASH_LEN, tx);
  PX_LOGI(LOGMOD,
          "job %.16s dispute shard %u: layer %u sample %u posted on chain "
          "(tx %.16s)",
          j->hex, d->shard, d->layer, sample, tx);
}

/* Referee locally when the chain cannot: re-execute the layer of the first
 * differing sample and compare with both claims. */
static void local_verdict(px_requester_t *r, rj_job_t *j, rj_dispute_t *d,
                          const char *why) {
  int loser = 1; /* default when nothing can be judged: B (docs) */
  if (d->rev[0] && d->rev[1] && !px_req_load_data(r, j)) {
    uint32_t n = px_job_shard_samples(&j->spec, d->shard), s = 0;
    while (s < n && !memcmp(d->rev[0][s], d->rev[1][s], PX_HASH_LEN))
      s++;
    if (s < n) {
      uint64_t g = (uint64_t)d->shard * j->spec.shard_size + s;
      float *act = NULL;
      size_t na = 0;
      if (!px_reqd_layer_input(r->compute, j->net, j->input + g * j->in_size,
                               d->layer + 1, &act, &na)) {
        uint8_t h[PX_HASH_LEN];
        px_merkle_leaf(h, act, na * sizeof(float));
        int a_ok = !memcmp(h, d->rev[0][s], PX_HASH_LEN);
        loser = a_ok ? 1 : 0;
      }
      px_free(act);
    }
  }
  char msg[PX_REQ_EVENT_LEN];
  snprintf(msg, sizeof msg, "judged off chain: %.100s", why);
  resolve(r, j, d, loser, msg, 0);
}

static int reveal_check(rj_job_t *j, rj_dispute_t *d, int slot,
                        const px_mkt_reveal_t *rv, uint32_t layer,
                        const uint8_t want[PX_HASH_LEN]) {
  uint8_t root[PX_HASH_LEN];
  if (memcmp(rv->job_id, j->id, PX_HASH_LEN) || rv->shard != d->shard ||
      rv->layer != layer || rv->n != px_job_shard_samples(&j->spec, d->shard) ||
      px_merkle_root(rv->leaves, rv->n, root) ||
      memcmp(root, want, PX_HASH_LEN))
    return 0;
  d->rev[slot] = px_malloc((size_t)rv->n * PX_HASH_LEN);
  if (!d->rev[slot]) return 0;
  memcpy(d->rev[slot], rv->leaves, (size_t)rv->n * PX_HASH_LEN);
  d->rev_n[slot] = rv->n;
  return 1;
}

void px_reqd_on_response(px_requester_t *r, rj_job_t *j, const rj_req_t *q,
                         const px_p2p_fx_t *fx) {
  rj_dispute_t *d = NULL;
  for (size_t i = 0; i < j->n_dp && !d; i++)
    if (j->dp[i].shard == q->shard && j->dp[i].phase != RD_DONE) d = &j->dp[i];
  if (!d) return;
  if (q->kind == RQ_CHALLENGE || q->kind == RQ_PROOF) {
    int party = (int)(q->aux & 1);
    if (d->req[party] != fx->req_id) return;
    d->req[party] = 0;
    px_dispute_response_t resp;
    int rc = fx->err ? fx->err
                     : px_dispute_response_decode(fx->data.data, fx->data.len,
                                                  &resp);
    if (rc) {
      char why[96];
      snprintf(why, sizeof why, "no valid answer to the challenge: %s",
               px_strerror(rc));
      resolve(r, j, d, party, why, 0);
      return;
    }
    if (q->kind == RQ_CHALLENGE) {
      if (d->phase != RD_GAME) return;
      rc = px_dispute_answer(&d->game, party, &resp);
      if (rc) {
        resolve(r, j, d, party, "answered another round", 0);
        return;
      }
      if (d->game.status == PX_DISPUTE_A_LOST ||
          d->game.status == PX_DISPUTE_B_LOST) {
        resolve(r, j, d, d->game.status == PX_DISPUTE_A_LOST ? 0 : 1,
                "bad proof in the bisection", 0);
        return;
      }
      px_reqd_step(r, j, NULL);
      return;
    }
    /* a proof of leaf L (slot 0) or L-1 (slot 1) */
    if (d->phase != RD_PROOF) return;
    rj_commit_t *c = px_req_find_commit(j, d->shard, d->pk[party]);
    int slot = resp.index == d->layer ? 0 : 1;
    uint32_t want = slot ? d->layer - 1 : d->layer;
    if (!c || resp.round != ROUND_PROOF || (slot && !d->layer) ||
        !proof_ok(&resp, &c->c, want)) {
      resolve(r, j, d, party, "bad trace proof", 0);
      return;
    }
    d->proof[party][slot] = resp;
    d->got_proof[party][slot] = 1;
    px_reqd_step(r, j, NULL);
    return;
  }
  if (q->kind == RQ_REVEAL) {
    int slot = (int)(q->aux & 0xf), party = (int)(q->aux >> 4);
    if (d->phase != RD_REVEAL || d->req_rev[slot] != fx->req_id) return;
    d->req_rev[slot] = 0;
    px_mkt_reveal_t rv;
    int rc = fx->err ? fx->err
                     : px_mkt_reveal_decode(fx->data.data, fx->data.len, &rv);
    const uint8_t *want =
        slot < 2 ? d->proof[slot][0].leaf : d->proof[0][1].leaf;
    uint32_t layer = slot < 2 ? d->layer : d->layer - 1;
    if (rc || !reveal_check(j, d, slot, &rv, layer, want)) {
      if (slot == 2 && party == 0) { /* try B for the agreed layer */
        d->reveal_from = 1;
        px_reqd_step(r, j, NULL);
        return;
      }
      resolve(r, j, d, party, "bad reveal of per-sample leaves", 0);
      return;
    }
    px_reqd_step(r, j, NULL);
  }
}

void px_reqd_step(px_requester_t *r, rj_job_t *j, const px_ledger_state_t *s) {
  for (size_t i = 0; i < j->n_dp; i++) {
    rj_dispute_t *d = &j->dp[i];
    if (d->phase == RD_DONE) continue;
    uint64_t now = px_req_now(j);
    int gone = -1;
    for (int p = 0; p < 2 && gone < 0; p++)
      if (d->unreach_ms[p] && now - d->unreach_ms[p] >= PX_REQ_GAME_TIMEOUT_MS)
        gone = p;
    if (gone >= 0) {
      resolve(r, j, d, gone, "unreachable during the game", 0);
      continue;
    }
    switch (d->phase) {
    case RD_WAIT_CHAIN: {
      rj_commit_t *c[2] = {px_req_find_commit(j, d->shard, d->pk[0]),
                           px_req_find_commit(j, d->shard, d->pk[1])};
      if (!c[0] || !c[1]) {
        /* should not happen: both results were verified here */
        resolve(r, j, d, c[0] ? 1 : 0, "no commitment held", 0);
        break;
      }
      if (c[0]->st == RC_LOST || c[1]->st == RC_LOST) {
        resolve(r, j, d, c[0]->st == RC_LOST ? 0 : 1,
                "its commitment is already lost on chain", 0);
        break;
      }
      if (c[0]->st != RC_ONCHAIN || c[1]->st != RC_ONCHAIN) break;
      if (px_dispute_init(&d->game, &c[0]->c, &c[1]->c)) {
        int bad = c[0]->c.n_layers != j->manifest.n_layers ? 0 : 1;
        resolve(r, j, d, bad, "trace length differs from the manifest", 0);
        break;
      }
      d->phase = RD_GAME;
      d->req[0] = d->req[1] = 0;
    }
      /* fall through */
    case RD_GAME:
      if (d->game.status == PX_DISPUTE_OPEN) {
        px_dispute_challenge_t ch;
        if (px_dispute_challenge(&d->game, &ch)) break;
        for (int p = 0; p < 2; p++)
          if (!d->req[p] && !d->game.got[p])
            send_challenge(r, j, d, p, ch.round, ch.index, RQ_CHALLENGE);
        break;
      }
      if (d->game.status != PX_DISPUTE_FOUND) break;
      px_dispute_result(&d->game, &d->layer, &d->has_in, d->in_leaf, d->claim);
      PX_LOGI("market", "job %.16s dispute shard %u: traces part at layer %u",
              j->hex, d->shard, d->layer);
      d->phase = RD_PROOF;
      d->req[0] = d->req[1] = 0;
      /* fall through */
    case RD_PROOF: {
      int done = 1;
      for (int p = 0; p < 2; p++) {
        int slot = !d->got_proof[p][0]                   ? 0
                   : d->layer > 0 && !d->got_proof[p][1] ? 1
                                                         : -1;
        if (slot < 0) continue;
        done = 0;
        if (!d->req[p])
          send_challenge(r, j, d, p, ROUND_PROOF,
                         slot ? d->layer - 1 : d->layer, RQ_PROOF);
      }
      if (!done) break;
      d->phase = RD_REVEAL;
      memset(d->req_rev, 0, sizeof d->req_rev);
    }
      /* fall through */
    case RD_REVEAL: {
      int need = d->layer > 0 ? 3 : 2, done = 1;
      for (int k = 0; k < need; k++) {
        if (d->rev[k]) continue;
        done = 0;
        if (!d->req_rev[k])
          send_reveal(r, j, d, k, k < 2 ? k : (int)d->reveal_from,
                      k < 2 ? d->layer : d->layer - 1);
      }
      if (done) submit(r, j, d, s);
      break;
    }
    case RD_SUBMITTED:
      if (s && px_ledger_height(s) > d->sent_height + PX_REQ_RESUBMIT_BLOCKS) {
        PX_LOGW("market",
                "job %.16s dispute shard %u: tx not included after %u blocks; "
                "restarting the game",
                j->hex, d->shard, PX_REQ_RESUBMIT_BLOCKS);
        px_reqd_release(d);
        d->phase = RD_WAIT_CHAIN;
        memset(d->got_proof, 0, sizeof d->got_proof);
        memset(d->req, 0, sizeof d->req);
        memset(d->req_rev, 0, sizeof d->req_rev);
        d->reveal_from = 0;
      }
      break;
    default:
      break;
    }
  }
  /* compact finished games */
  size_t w = 0;
  for (size_t i = 0; i < j->n_dp; i++)
    if (j->dp[i].phase != RD_DONE) j->dp[w++] = j->dp[i];
  if (w != j->n_dp) {
    j->n_dp = w;
    px_req_mark_dirty(j);
  }
}

void px_reqd_on_block(px_requester_t *r, rj_job_t *j,
                      const px_ledger_state_t *s, const px_block_t *b,
                      const px_tx_result_t *res) {
  for (size_t i = 0; i < j->n_dp; i++) {
    rj_dispute_t *d = &j->dp[i];
    if (d->phase != RD_SUBMITTED) continue;
    for (size_t t = 0; t < b->n_txs; t++) {
      if (memcmp(b->txs[t].hash, d->tx, PX_HASH_LEN)) continue;
      if (res[t].code) {
        char why[128];
        snprintf(why, sizeof why, "DISPUTE tx refused: %s",
                 px_strerror(res[t].code));
        PX_LOGW(LOGMOD, "job %.16s dispute shard %u: %s", j->hex, d->shard,
                why);
        local_verdict(r, j, d, why);
        break;
      }
      px_commit_rec_t ra, rb;
      int ha = px_market_commitment(s, j->id, d->shard, d->pk[0], &ra) == 0,
          hb = px_market_commitment(s, j->id, d->shard, d->pk[1], &rb) == 0;
      int la = ha && ra.lost, lb = hb && rb.lost;
      rj_commit_t *ca = px_req_find_commit(j, d->shard, d->pk[0]);
      rj_commit_t *cb = px_req_find_commit(j, d->shard, d->pk[1]);
      if (la && ca) ca->st = RC_LOST;
      if (lb && cb) cb->st = RC_LOST;
      if (la && lb)
        /* NEITHER: both slashed.  B's result goes first; A's lost record
         * makes it lose the next dispute at once (docs). */
        resolve(r, j, d, 1, "verdict: neither computed the layer right", 1);
      else if (la || lb)
        resolve(r, j, d, la ? 0 : 1, "on-chain verdict", 1);
      else
        local_verdict(r, j, d, "the tx landed but no verdict is recorded");
      break;
    }
  }
  px_reqd_step(r, j, s);
}
