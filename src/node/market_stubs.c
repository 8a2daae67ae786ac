/* market_stubs.c — TEMPORARY link placeholders while the market runtime and
 * contract are written (removed before commit). */
#include <string.h>
#include "plexus/market_chain.h"
#include "node/market_rt.h"
#include "base/px_internal.h"

int px_market_payload_register(px_buf_t *out, const px_provider_reg_t *r) {
  (void)out;
  (void)r;
  return PX_ESTATE;
}

int px_market_payload_register_decode(const uint8_t *p, size_t n,
                                      px_provider_reg_t *r) {
  (void)p;
  (void)n;
  (void)r;
  return PX_ESTATE;
}

int px_market_bench(px_compute_t *c, uint64_t *speed,
                    uint8_t hash[PX_HASH_LEN]) {
  (void)c;
  (void)speed;
  (void)hash;
  return PX_ESTATE;
}

int px_market_bench_hash(uint8_t hash[PX_HASH_LEN]) {
  (void)hash;
  return PX_ESTATE;
}

int px_market_manifest(const px_net_t *net, px_market_manifest_t *m) {
  (void)net;
  (void)m;
  return PX_ESTATE;
}

void px_market_layer_ref(const px_dispute_layer_t *l,
                         uint8_t out[PX_HASH_LEN]) {
  (void)l;
  (void)out;
}

int px_market_payload_job_open(px_buf_t *out, const px_job_spec_t *spec,
                               const px_market_manifest_t *m) {
  (void)out;
  (void)spec;
  (void)m;
  return PX_ESTATE;
}

int px_market_payload_job_open_decode(const uint8_t *p, size_t n,
                                      px_job_spec_t *spec,
                                      px_market_manifest_t *m) {
  (void)p;
  (void)n;
  (void)spec;
  (void)m;
  return PX_ESTATE;
}

int px_market_payload_commit(px_buf_t *out, const px_commitment_t *c,
                             size_t n) {
  (void)out;
  (void)c;
  (void)n;
  return PX_ESTATE;
}

int px_market_payload_dispute(px_buf_t *out, const px_market_dispute_t *d) {
  (void)out;
  (void)d;
  return PX_ESTATE;
}

int px_market_payload_dispute_decode(const uint8_t *p, size_t n,
                                     px_market_dispute_t *d) {
  (void)p;
  (void)n;
  (void)d;
  return PX_ESTATE;
}

void px_market_dispute_release(px_market_dispute_t *d) {
  (void)d;
}

int px_market_payload_settle(px_buf_t *out, const uint8_t job_id[PX_HASH_LEN],
                             int final, const px_settle_entry_t *e, size_t n,
                             const uint8_t (*expired)[PX_PK_LEN],
                             size_t n_expired) {
  (void)out;
  (void)job_id;
  (void)final;
  (void)e;
  (void)n;
  (void)expired;
  (void)n_expired;
  return PX_ESTATE;
}

uint32_t px_provider_reputation(const px_provider_rec_t *r) {
  (void)r;
  return 0;
}

int px_provider_rec_decode(const uint8_t *p, size_t n, px_provider_rec_t *r) {
  (void)p;
  (void)n;
  (void)r;
  return PX_ESTATE;
}

int px_job_rec_decode(const uint8_t *p, size_t n, px_job_rec_t *r) {
  (void)p;
  (void)n;
  (void)r;
  return PX_ESTATE;
}

int px_commit_rec_decode(const uint8_t *p, size_t n, px_commit_rec_t *r) {
  (void)p;
  (void)n;
  (void)r;
  return PX_ESTATE;
}

int px_market_provider(const px_ledger_state_t *s, const uint8_t pk[PX_PK_LEN],
                       px_provider_rec_t *r) {
  (void)s;
  (void)pk;
  (void)r;
  return PX_ESTATE;
}

int px_market_providers(const px_ledger_state_t *s, px_provider_rec_t **out,
                        size_t *n) {
  (void)s;
  (void)out;
  (void)n;
  return PX_ESTATE;
}

int px_market_job(const px_ledger_state_t *s, const uint8_t id[PX_HASH_LEN],
                  px_job_rec_t *r) {
  (void)s;
  (void)id;
  (void)r;
  return PX_ESTATE;
}

int px_market_commitment(const px_ledger_state_t *s,
                         const uint8_t job_id[PX_HASH_LEN], uint32_t shard,
                         const uint8_t pk[PX_PK_LEN], px_commit_rec_t *r) {
  (void)s;
  (void)job_id;
  (void)shard;
  (void)pk;
  (void)r;
  return PX_ESTATE;
}

int px_market_escrow_total(const px_ledger_state_t *s, uint64_t *out) {
  (void)s;
  (void)out;
  return PX_ESTATE;
}

void px_market_audit_randomness(const uint8_t block_hash_next[PX_HASH_LEN],
                                uint8_t out[PX_HASH_LEN]) {
  (void)block_hash_next;
  (void)out;
}

int px_mkt_chunk_req_encode(const px_mkt_chunk_req_t *m, px_buf_t *out) {
  (void)m;
  (void)out;
  return PX_ESTATE;
}

int px_mkt_chunk_req_decode(const uint8_t *p, size_t n, px_mkt_chunk_req_t *m) {
  (void)p;
  (void)n;
  (void)m;
  return PX_ESTATE;
}

int px_mkt_chunk_encode(const px_mkt_chunk_t *m, px_buf_t *out) {
  (void)m;
  (void)out;
  return PX_ESTATE;
}

int px_mkt_chunk_decode(const uint8_t *p, size_t n, px_mkt_chunk_t *m) {
  (void)p;
  (void)n;
  (void)m;
  return PX_ESTATE;
}

int px_mkt_lease_encode(const px_mkt_lease_t *m, px_buf_t *out) {
  (void)m;
  (void)out;
  return PX_ESTATE;
}

int px_mkt_lease_decode(const uint8_t *p, size_t n, px_mkt_lease_t *m) {
  (void)p;
  (void)n;
  (void)m;
  return PX_ESTATE;
}

int px_mkt_lease_reply_encode(const px_mkt_lease_reply_t *m, px_buf_t *out) {
  (void)m;
  (void)out;
  return PX_ESTATE;
}

int px_mkt_lease_reply_decode(const uint8_t *p, size_t n,
                              px_mkt_lease_reply_t *m) {
  (void)p;
  (void)n;
  (void)m;
  return PX_ESTATE;
}

int px_mkt_result_encode(const px_mkt_result_t *m, px_buf_t *out) {
  (void)m;
  (void)out;
  return PX_ESTATE;
}

int px_mkt_result_decode(const uint8_t *p, size_t n, px_mkt_result_t *m) {
  (void)p;
  (void)n;
  (void)m;
  return PX_ESTATE;
}

int px_mkt_reveal_req_encode(const px_mkt_reveal_req_t *m, px_buf_t *out) {
  (void)m;
  (void)out;
  return PX_ESTATE;
}

int px_mkt_reveal_req_decode(const uint8_t *p, size_t n,
                             px_mkt_reveal_req_t *m) {
  (void)p;
  (void)n;
  (void)m;
  return PX_ESTATE;
}

int px_mkt_reveal_encode(const px_mkt_reveal_t *m, px_buf_t *out) {
  (void)m;
  (void)out;
  return PX_ESTATE;
}

int px_mkt_reveal_decode(const uint8_t *p, size_t n, px_mkt_reveal_t *m) {
  (void)p;
  (void)n;
  (void)m;
  return PX_ESTATE;
}

int px_shard_run(px_net_t *net, px_compute_t *c, const float *x, uint32_t n,
                 float *logits, px_shard_trace_t *tr,
                 uint8_t (**sample_leaves)[PX_HASH_LEN]) {
  (void)net;
  (void)c;
  (void)x;
  (void)n;
  (void)logits;
  (void)tr;
  (void)sample_leaves;
  return PX_ESTATE;
}

int px_blobstore_open(const char *home, px_blobstore_t **out) {
  (void)home;
  (void)out;
  return PX_ESTATE;
}

void px_blobstore_free(px_blobstore_t *bs) {
  (void)bs;
}

int px_blobstore_put(px_blobstore_t *bs, const void *data, size_t n,
                     uint8_t root[PX_HASH_LEN]) {
  (void)bs;
  (void)data;
  (void)n;
  (void)root;
  return PX_ESTATE;
}

int px_blobstore_has(px_blobstore_t *bs, const uint8_t root[PX_HASH_LEN],
                     uint64_t size) {
  (void)bs;
  (void)root;
  (void)size;
  return PX_ESTATE;
}

int px_blobstore_read(px_blobstore_t *bs, const uint8_t root[PX_HASH_LEN],
                      uint8_t **data, size_t *n) {
  (void)bs;
  (void)root;
  (void)data;
  (void)n;
  return PX_ESTATE;
}

int px_blobstore_chunk(px_blobstore_t *bs, const uint8_t root[PX_HASH_LEN],
                       uint64_t size, uint64_t index, px_mkt_chunk_t *out,
                       px_buf_t *scratch) {
  (void)bs;
  (void)root;
  (void)size;
  (void)index;
  (void)out;
  (void)scratch;
  return PX_ESTATE;
}

int px_market_open(const px_market_env_t *env, px_market_t **out,
                   char *errmsg, size_t errcap) {
  (void)env; (void)errmsg; (void)errcap;
  *out = NULL;
  return 0;
}

int px_market_start(px_market_t *m) {
  (void)m;
  return PX_ESTATE;
}

void px_market_close(px_market_t *m) {
  (void)m;
}

void px_market_free(px_market_t *m) {
  (void)m;
}

int px_market_on_request(px_market_t *m, const px_p2p_fx_t *fx) {
  (void)m;
  (void)fx;
  return PX_ESTATE;
}

int px_market_on_response(px_market_t *m, const px_p2p_fx_t *fx) {
  (void)m;
  (void)fx;
  return PX_ESTATE;
}

int px_market_on_direct(px_market_t *m, const px_p2p_fx_t *fx) {
  (void)m;
  (void)fx;
  return PX_ESTATE;
}

void px_market_on_peer(px_market_t *m, const px_p2p_fx_t *fx) {
  (void)m;
  (void)fx;
}

void px_market_tick(px_market_t *m, uint64_t now_ms) {
  (void)m;
  (void)now_ms;
}

void px_market_on_block(px_market_t *m, const px_ledger_state_t *s,
                        const px_block_t *b, const px_tx_result_t *res) {
  (void)m;
  (void)s;
  (void)b;
  (void)res;
}

int px_market_command(px_market_t *m, const char *cmd, const char *arg,
                      px_buf_t *out) {
  (void)m;
  (void)cmd;
  (void)arg;
  (void)out;
  return PX_ESTATE;
}

void px_market_status_json(px_market_t *m, px_buf_t *out) {
  (void)m;
  (void)out;
}

int px_market_submit(px_market_t *m, uint16_t type, const void *payload,
                     size_t n, uint8_t hash[PX_HASH_LEN]) {
  (void)m;
  (void)type;
  (void)payload;
  (void)n;
  (void)hash;
  return PX_ESTATE;
}

int px_prov_open(px_market_t *m, px_provider_t **out) {
  (void)m;
  (void)out;
  return PX_ESTATE;
}

void px_prov_close(px_provider_t *p) {
  (void)p;
}

void px_prov_free(px_provider_t *p) {
  (void)p;
}

int px_prov_on_request(px_provider_t *p, const px_p2p_fx_t *fx) {
  (void)p;
  (void)fx;
  return PX_ESTATE;
}

int px_prov_on_response(px_provider_t *p, const px_p2p_fx_t *fx) {
  (void)p;
  (void)fx;
  return PX_ESTATE;
}

void px_prov_on_peer(px_provider_t *p, const px_p2p_fx_t *fx) {
  (void)p;
  (void)fx;
}

void px_prov_on_block(px_provider_t *p, const px_ledger_state_t *s,
                      const px_block_t *b, const px_tx_result_t *res) {
  (void)p;
  (void)s;
  (void)b;
  (void)res;
}

void px_prov_tick(px_provider_t *p, uint64_t now_ms) {
  (void)p;
  (void)now_ms;
}

int px_prov_command(px_provider_t *p, const char *cmd, const char *arg,
                    px_buf_t *out) {
  (void)p;
  (void)cmd;
  (void)arg;
  (void)out;
  return PX_ESTATE;
}

void px_prov_status_json(px_provider_t *p, px_buf_t *out) {
  (void)p;
  (void)out;
}

int px_req_open(px_market_t *m, px_requester_t **out) {
  (void)m;
  (void)out;
  return PX_ESTATE;
}

void px_req_close(px_requester_t *r) {
  (void)r;
}

void px_req_free(px_requester_t *r) {
  (void)r;
}

int px_req_on_direct(px_requester_t *r, const px_p2p_fx_t *fx) {
  (void)r;
  (void)fx;
  return PX_ESTATE;
}

int px_req_on_response(px_requester_t *r, const px_p2p_fx_t *fx) {
  (void)r;
  (void)fx;
  return PX_ESTATE;
}

void px_req_on_peer(px_requester_t *r, const px_p2p_fx_t *fx) {
  (void)r;
  (void)fx;
}

void px_req_on_block(px_requester_t *r, const px_ledger_state_t *s,
                     const px_block_t *b, const px_tx_result_t *res) {
  (void)r;
  (void)s;
  (void)b;
  (void)res;
}

void px_req_tick(px_requester_t *r, uint64_t now_ms) {
  (void)r;
  (void)now_ms;
}

int px_req_command(px_requester_t *r, const char *cmd, const char *arg,
                   px_buf_t *out) {
  (void)r;
  (void)cmd;
  (void)arg;
  (void)out;
  return PX_ESTATE;
}

void px_req_status_json(px_requester_t *r, px_buf_t *out) {
  (void)r;
  (void)out;
}
