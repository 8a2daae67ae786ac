/*
 * market.c — the compute market inside a node: the shell that owns the
 * blob store and the two roles and routes the node's events to them
 * (node/market_rt.h, docs/market.md "Runtime and wire").
 *
 *   p2p request   CHUNK -> blob store (any node serves the blobs it holds);
 *                 LEASE, CHALLENGE, REVEAL, CANCEL -> provider role
 *   p2p response  provider (its chunk fetches), then requester
 *   DIRECT        topic PX_MKT_TOPIC_RESULT -> requester;
 *                 PX_SES_TOPIC_TOKENS/DONE -> gateway (session_gateway.c)
 *   p2p request   OPEN, CANCEL, RECEIPT (methods 25-27) -> session
 *                 provider (session_provider.c)
 *   peer, tick, committed block -> both roles
 *   commands      provide, providers -> provider; job_* -> requester;
 *                 sessions -> session provider; market -> the status object
 *
 * Market transactions are signed with the node key; px_market_submit takes
 * the nonce from the chain (account nonce + this sender's queued txs, so
 * several txs in a row chain correctly) and pays the minimum fee.
 *
 * Options (the node's config; an unknown market.* key is an error):
 *   market.threads  worker threads of the provider role (1..64, default 1)
 *   market.fault    TEST ONLY misbehaviour of the provider role:
 *                   none|wrong|perturb|lazy|slow|vanish|equivocate|stall
 *                   (perturb, vanish and stall also act on sessions:
 *                   node/session_provider.c)
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "plexus/codec.h"
#include "node/market_rt.h"
#include "node/session_rt.h"
#include "base/px_internal.h"

#define LOGMOD "market"

static const char *const k_known[] = {
    "market.threads",
    "market.fault",
};

static const char *const k_faults[] = {
    "none", "wrong", "perturb", "lazy", "slow", "vanish", "equivocate", "stall",
};

static int check_config(const px_config_t *cfg, char *errmsg, size_t errcap) {
  for (size_t i = 0; i < cfg->n; i++) {
    const char *k = cfg->entries[i].key;
    if (strncmp(k, "market.", 7) != 0) continue;
    int ok = 0;
    for (size_t j = 0; j < PX_ARRAY_LEN(k_known) && !ok; j++)
      ok = strcmp(k, k_known[j]) == 0;
    if (!ok) {
      snprintf(errmsg, errcap,
               "config: unknown option '%s' (see docs/market.md)", k);
      return PX_ECONFIG;
    }
  }
  uint64_t threads = 0;
  if (px_config_get_u64(cfg, "market.threads", 1, &threads) || threads < 1 ||
      threads > 64) {
    snprintf(errmsg, errcap,
             "config: market.threads must be a whole number from 1 to 64");
    return PX_ECONFIG;
  }
  const char *fault = px_config_get_str(cfg, "market.fault", "none");
  int ok = 0;
  for (size_t j = 0; j < PX_ARRAY_LEN(k_faults) && !ok; j++)
    ok = strcmp(fault, k_faults[j]) == 0;
  if (!ok) {
    snprintf(errmsg, errcap,
             "config: market.fault must be one of none, wrong, perturb, lazy, "
             "slow, vanish, equivocate, stall (TEST ONLY)");
    return PX_ECONFIG;
  }
  return 0;
}

int px_market_open(const px_market_env_t *env, px_market_t **out, char *errmsg,
                   size_t errcap) {
  *out = NULL;
  if (!env || !env->home || !env->key || !env->cfg || !env->chain) {
    snprintf(errmsg, errcap, "market: bad environment");
    return PX_EINVAL;
  }
  int rc = check_config(env->cfg, errmsg, errcap);
  if (rc) return rc;
  px_market_t *m = px_calloc(1, sizeof *m);
  if (!m) return PX_ENOMEM;
  m->env = *env;
  m->key = *env->key;
  snprintf(m->home, sizeof m->home, "%s", env->home);
  m->env.home = m->home;
  m->env.key = &m->key;
  atomic_init(&m->shards_busy, 0);
  if ((rc = px_blobstore_open(m->home, &m->blobs))) {
    snprintf(errmsg, errcap, "market: cannot open the blob store under %s: %s",
             m->home, px_strerror(rc));
    goto fail;
  }
  if ((rc = px_prov_open(m, &m->prov))) {
    snprintf(errmsg, errcap, "market: cannot start the provider role: %s",
             px_strerror(rc));
    goto fail;
  }
  if ((rc = px_sesprov_open(m, &m->sesprov))) {
    snprintf(errmsg, errcap, "market: cannot start the session provider: %s",
             px_strerror(rc));
    goto fail;
  }
  if ((rc = px_req_open(m, &m->req))) {
    snprintf(errmsg, errcap, "market: cannot resume the requester's jobs: %s",
             px_strerror(rc));
    goto fail;
  }
  *out = m;
  return 0;
fail:
  px_market_free(m);
  return rc;
}

int px_market_start(px_market_t *m) {
  (void)m;
  return 0;
}

void px_market_close(px_market_t *m) {
  if (!m) return;
  px_sesprov_close(m->sesprov); /* sessions stop at their next token */
  px_prov_close(m->prov);
  px_req_close(m->req);
}

void px_market_free(px_market_t *m) {
  if (!m) return;
  px_req_free(m->req);
  px_prov_close(m->prov); /* workers joined before sessions are freed */
  px_sesprov_free(m->sesprov);
  px_prov_free(m->prov);
  px_blobstore_free(m->blobs);
  sodium_memzero(&m->key, sizeof m->key);
  px_free(m);
}

/* ---- events ----------------------------------------------------------------
 */

static void serve_chunk(px_market_t *m, const px_p2p_fx_t *fx) {
  px_mkt_chunk_req_t q;
  px_mkt_chunk_t *c = px_malloc(sizeof *c);
  px_buf_t scratch, b;
  px_buf_init(&scratch, 0);
  px_buf_init(&b, 0);
  int rc =
      c ? px_mkt_chunk_req_decode(fx->data.data, fx->data.len, &q) : PX_ENOMEM;
  if (!rc)
    rc = px_blobstore_chunk(m->blobs, q.root, q.size, q.index, c, &scratch);
  if (rc == PX_ENOENT) rc = PX_ENOTFOUND;
  if (!rc) rc = px_mkt_chunk_encode(c, &b);
  px_p2p_respond(m->env.p2p, fx->node_pk, fx->req_id, rc, rc ? NULL : b.data,
                 rc ? 0 : b.len);
  px_buf_release(&b);
  px_buf_release(&scratch);
  px_free(c);
}

int px_market_on_request(px_market_t *m, const px_p2p_fx_t *fx) {
  if (!m) return 0;
  if (fx->method == PX_MKT_METHOD_CHUNK) {
    serve_chunk(m, fx);
    return 1;
  }
  if (fx->method == PX_SES_METHOD_OPEN || fx->method == PX_SES_METHOD_CANCEL ||
      fx->method == PX_SES_METHOD_RECEIPT)
    return px_sesprov_on_request(m->sesprov, fx) == 1;
  return px_prov_on_request(m->prov, fx) == 1;
}

int px_market_on_response(px_market_t *m, const px_p2p_fx_t *fx) {
  if (!m) return 0;
  if (px_prov_on_response(m->prov, fx) == 1) return 1;
  if (px_sesprov_on_response(m->sesprov, fx) == 1) return 1;
  if (m->sesgw && px_sesgw_on_response(m, fx) == 1) return 1;
  return m->req && px_req_on_response(m->req, fx) == 1;
}

/* Session messages to the gateway side (session_gateway.c); malformed
 * ones are dropped here. */
static void session_direct(px_market_t *m, const px_p2p_fx_t *fx) {
  if (!m->sesgw) return;
  if (fx->topic == PX_SES_TOPIC_TOKENS) {
    px_ses_tokens_t *t = px_malloc(sizeof *t);
    if (t && px_ses_tokens_decode(fx->data.data, fx->data.len, t) == 0)
      px_sesgw_on_tokens(m, fx->node_pk, t);
    px_free(t);
  } else {
    px_ses_done_t *d = px_malloc(sizeof *d);
    if (d && px_ses_done_decode(fx->data.data, fx->data.len, d) == 0)
      px_sesgw_on_done(m, fx->node_pk, d);
    px_free(d);
  }
}

int px_market_on_direct(px_market_t *m, const px_p2p_fx_t *fx) {
  if (!m) return 0;
  if (fx->topic == PX_SES_TOPIC_TOKENS || fx->topic == PX_SES_TOPIC_DONE) {
    session_direct(m, fx);
    return 1;
  }
  if (fx->topic != PX_MKT_TOPIC_RESULT) return 0;
  if (m->req) px_req_on_direct(m->req, fx);
  return 1; /* our topic, even with no requester to take it */
}

void px_market_on_peer(px_market_t *m, const px_p2p_fx_t *fx) {
  if (!m) return;
  px_prov_on_peer(m->prov, fx);
  px_sesprov_on_peer(m->sesprov, fx);
  if (m->req) px_req_on_peer(m->req, fx);
}

void px_market_tick(px_market_t *m, uint64_t now_ms) {
  if (!m) return;
  px_prov_tick(m->prov, now_ms);
  px_sesprov_tick(m->sesprov, now_ms);
  if (m->req) px_req_tick(m->req, now_ms);
}

void px_market_on_block(px_market_t *m, const px_ledger_state_t *s,
                        const px_block_t *b, const px_tx_result_t *res) {
  if (!m) return;
  px_prov_on_block(m->prov, s, b, res);
  px_sesprov_on_block(m->sesprov, s, b, res);
  if (m->req) px_req_on_block(m->req, s, b, res);
}

int px_market_command(px_market_t *m, const char *cmd, const char *arg,
                      px_buf_t *out) {
  if (!m) return 0;
  if (!strcmp(cmd, "market")) {
    px_buf_printf(out, "{\"ok\":true,\"market\":");
    px_market_status_json(m, out);
    px_buf_printf(out, "}");
    return 1;
  }
  if (px_prov_command(m->prov, cmd, arg, out) == 1) return 1;
  if (px_sesprov_command(m->sesprov, cmd, arg, out) == 1) return 1;
  return m->req && px_req_command(m->req, cmd, arg, out) == 1;
}

void px_market_status_json(px_market_t *m, px_buf_t *out) {
  if (!m) {
    px_buf_printf(out, "null");
    return;
  }
  px_buf_printf(
      out, "{\"shards_busy\":%d,\"provider\":", atomic_load(&m->shards_busy));
  px_prov_status_json(m->prov, out);
  px_buf_printf(out, ",\"sessions\":");
  px_sesprov_status_json(m->sesprov, out);
  px_buf_printf(out, ",\"requester\":");
  if (m->req)
    px_req_status_json(m->req, out);
  else
    px_buf_printf(out, "null");
  px_buf_printf(out, "}");
}

/* ---- transactions
 * ------------------------------------------------------------ */

int px_market_submit(px_market_t *m, uint16_t type, const void *payload,
                     size_t n, uint8_t hash[PX_HASH_LEN]) {
  if (!m || (!payload && n)) return PX_EINVAL;
  const px_ledger_state_t *s = px_chain_state(m->env.chain);
  const px_ledger_params_t *pp = px_ledger_params(s);
  uint64_t nonce = px_chain_next_nonce(m->env.chain, m->key.pk);
  px_buf_t b;
  px_buf_init(&b, 0);
  /* the encoding's size does not depend on the fee (a fixed u64) */
  int rc = px_tx_make(px_ledger_chain_id(s), &m->key, nonce, pp->fee_base, type,
                      payload, n, &b);
  uint64_t fee = 0;
  if (!rc) {
    unsigned __int128 f =
        (unsigned __int128)pp->fee_per_byte * b.len + pp->fee_base;
    if (f > UINT64_MAX) rc = PX_ERANGE;
    fee = (uint64_t)f;
  }
  if (!rc) {
    px_buf_reset(&b);
    rc = px_tx_make(px_ledger_chain_id(s), &m->key, nonce, fee, type, payload,
                    n, &b);
  }
  if (!rc) rc = px_chain_submit(m->env.chain, b.data, b.len, hash);
  if (rc)
    PX_LOGW(LOGMOD, "%s transaction (nonce %llu, %zu bytes) rejected: %s",
            px_tx_type_name(type), (unsigned long long)nonce, b.len,
            px_strerror(rc));
  px_buf_release(&b);
  return rc;
}
