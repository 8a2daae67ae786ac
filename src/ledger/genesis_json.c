/*
 * genesis_json.c — the genesis file: JSON (docs/ledger.md) <-> px_genesis_t.
 *
 *   {
 *     "chain_id": "plexus-devnet",
 *     "genesis_time": 0,
 *     "params": { "fee_base": 100, "fee_per_byte": 1, "max_tx_size": 4096,
 *                 "max_block_txs": 10000, "unbonding_blocks": 100,
 *                 "min_stake": 1000000, "power_unit": 1000,
 *                 "max_validators": 100, "emission_initial": 1000000,
 *                 "emission_halving": 1000000, "slash_fraction_bps": 500 },
 *     "accounts":   [ { "pk": "<64 hex>", "balance": 1, "stake": 0 } ],
 *     "validators": [ { "pk": "<64 hex>", "moniker": "validator-0" } ]
 *   }
 *
 * Parsing is strict on top of json.h's strictness: every key is required,
 * no other key is allowed (a typo must not silently become a default), all
 * numbers are exact u64 integers (u32 fields range-checked), and the result
 * goes through px_genesis_check.  Writing produces exactly this shape, so
 * from_json(to_json(g)) == g.
 */
#include <string.h>

#include "plexus/crypto.h"
#include "plexus/json.h"
#include "plexus/ledger.h"

#include "base/px_internal.h"

#define GENESIS_JSON_MAX (64u << 20)

static void write_pk(px_json_writer_t *w, const uint8_t pk[PX_PK_LEN]) {
  char hex[2 * PX_PK_LEN + 1];
  px_hex_encode(pk, PX_PK_LEN, hex);
  px_json_write_str(w, hex);
}

static void kv_u64(px_json_writer_t *w, const char *k, uint64_t v) {
  px_json_write_key(w, k);
  px_json_write_u64(w, v);
}

int px_genesis_to_json(const px_genesis_t *g, px_buf_t *out) {
  if (!g || !out) return PX_EINVAL;
  int rc = px_genesis_check(g);
  if (rc) return rc;
  const px_ledger_params_t *p = &g->params;
  size_t mark = out->len;
  px_json_writer_t w;
  px_json_writer_init(&w, out);
  px_json_write_object_begin(&w);
  px_json_write_key(&w, "chain_id");
  px_json_write_str(&w, g->chain_id);
  kv_u64(&w, "genesis_time", g->genesis_time);
  px_json_write_key(&w, "params");
  px_json_write_object_begin(&w);
  kv_u64(&w, "fee_base", p->fee_base);
  kv_u64(&w, "fee_per_byte", p->fee_per_byte);
  kv_u64(&w, "max_tx_size", p->max_tx_size);
  kv_u64(&w, "max_block_txs", p->max_block_txs);
  kv_u64(&w, "unbonding_blocks", p->unbonding_blocks);
  kv_u64(&w, "min_stake", p->min_stake);
  kv_u64(&w, "power_unit", p->power_unit);
  kv_u64(&w, "max_validators", p->max_validators);
  kv_u64(&w, "emission_initial", p->emission_initial);
  kv_u64(&w, "emission_halving", p->emission_halving);
  kv_u64(&w, "slash_fraction_bps", p->slash_fraction_bps);
  px_json_write_object_end(&w);
  px_json_write_key(&w, "accounts");
  px_json_write_array_begin(&w);
  for (size_t i = 0; i < g->n_accounts; i++) {
    px_json_write_object_begin(&w);
    px_json_write_key(&w, "pk");
    write_pk(&w, g->accounts[i].pk);
    kv_u64(&w, "balance", g->accounts[i].balance);
    kv_u64(&w, "stake", g->accounts[i].stake);
    px_json_write_object_end(&w);
  }
  px_json_write_array_end(&w);
  px_json_write_key(&w, "validators");
  px_json_write_array_begin(&w);
  for (size_t i = 0; i < g->n_validators; i++) {
    px_json_write_object_begin(&w);
    px_json_write_key(&w, "pk");
    write_pk(&w, g->validators[i].pk);
    px_json_write_key(&w, "moniker");
    px_json_write_str(&w, g->validators[i].moniker);
    px_json_write_object_end(&w);
  }
  px_json_write_array_end(&w);
  px_json_write_object_end(&w);
  rc = px_json_writer_finish(&w);
  if (!rc) rc = px_buf_append(out, "\n", 1);
  if (rc) out->len = mark;
  return rc;
}

/* An object with exactly n_keys members, all of which are looked up. */
static int exact_object(const px_json_t *v, size_t n_keys) {
  if (!v || v->type != PX_JSON_OBJECT) return PX_EDECODE;
  return px_json_count(v) == n_keys ? 0 : PX_EDECODE;
}

static int get_u32(const px_json_t *o, const char *k, uint32_t *out) {
  uint64_t v;
  int rc = px_json_get_u64(o, k, &v);
  if (rc) return rc;
  if (v > UINT32_MAX) return PX_ERANGE;
  *out = (uint32_t)v;
  return 0;
}

static int get_pk(const px_json_t *o, uint8_t pk[PX_PK_LEN]) {
  const char *s;
  int rc = px_json_get_str(o, "pk", &s);
  if (rc) return rc;
  if (strlen(s) != 2 * PX_PK_LEN) return PX_EDECODE;
  return px_hex_decode(s, pk, PX_PK_LEN);
}

static int str_into(const px_json_t *o, const char *k, char *out, size_t cap) {
  const char *s;
  int rc = px_json_get_str(o, k, &s);
  if (rc) return rc;
  if (strlen(s) >= cap) return PX_ETOOBIG;
  memcpy(out, s, strlen(s) + 1);
  return 0;
}

static int parse_tree(const px_json_t *root, px_genesis_t *g) {
  int rc = exact_object(root, 5);
  if (!rc) rc = str_into(root, "chain_id", g->chain_id, sizeof g->chain_id);
  if (!rc) rc = px_json_get_u64(root, "genesis_time", &g->genesis_time);
  const px_json_t *p = NULL, *acc = NULL, *val = NULL;
  if (!rc) rc = px_json_get_object(root, "params", &p);
  if (!rc) rc = exact_object(p, 11);
  px_ledger_params_t *q = &g->params;
  if (!rc) rc = px_json_get_u64(p, "fee_base", &q->fee_base);
  if (!rc) rc = px_json_get_u64(p, "fee_per_byte", &q->fee_per_byte);
  if (!rc) rc = get_u32(p, "max_tx_size", &q->max_tx_size);
  if (!rc) rc = get_u32(p, "max_block_txs", &q->max_block_txs);
  if (!rc) rc = px_json_get_u64(p, "unbonding_blocks", &q->unbonding_blocks);
  if (!rc) rc = px_json_get_u64(p, "min_stake", &q->min_stake);
  if (!rc) rc = px_json_get_u64(p, "power_unit", &q->power_unit);
  if (!rc) rc = get_u32(p, "max_validators", &q->max_validators);
  if (!rc) rc = px_json_get_u64(p, "emission_initial", &q->emission_initial);
  if (!rc) rc = px_json_get_u64(p, "emission_halving", &q->emission_halving);
  if (!rc) rc = get_u32(p, "slash_fraction_bps", &q->slash_fraction_bps);
  if (!rc) rc = px_json_get_array(root, "accounts", &acc);
  if (!rc) rc = px_json_get_array(root, "validators", &val);
  if (!rc && px_json_count(acc) > PX_GENESIS_MAX_ACCOUNTS) rc = PX_ETOOBIG;
  if (!rc && px_json_count(val) > PX_LEDGER_MAX_VALIDATORS) rc = PX_ETOOBIG;
  for (size_t i = 0; !rc && i < px_json_count(acc); i++) {
    const px_json_t *a = px_json_at(acc, i);
    uint8_t pk[PX_PK_LEN];
    uint64_t balance = 0, stake = 0;
    rc = exact_object(a, 3);
    if (!rc) rc = get_pk(a, pk);
    if (!rc) rc = px_json_get_u64(a, "balance", &balance);
    if (!rc) rc = px_json_get_u64(a, "stake", &stake);
    if (!rc) rc = px_genesis_add_account(g, pk, balance, stake);
  }
  for (size_t i = 0; !rc && i < px_json_count(val); i++) {
    const px_json_t *v = px_json_at(val, i);
    uint8_t pk[PX_PK_LEN];
    char moniker[PX_LEDGER_MONIKER_MAX];
    rc = exact_object(v, 2);
    if (!rc) rc = get_pk(v, pk);
    if (!rc) rc = str_into(v, "moniker", moniker, sizeof moniker);
    if (!rc) rc = px_genesis_add_validator(g, pk, moniker);
  }
  if (rc == PX_ENOTFOUND) rc = PX_EDECODE; /* a required key is missing */
  if (!rc) rc = px_genesis_check(g);
  return rc;
}

int px_genesis_from_json(const char *text, size_t len, px_genesis_t *g) {
  if (!g) return PX_EINVAL;
  px_genesis_init(g);
  if (!text && len) return PX_EINVAL;
  if (len > GENESIS_JSON_MAX) return PX_ETOOBIG;
  px_arena_t arena;
  px_arena_init(&arena, 64 * 1024, 0);
  px_json_limits_t lim;
  px_json_limits_default(&lim);
  lim.max_input = GENESIS_JSON_MAX;
  lim.max_depth = 4;
  lim.max_string = 256;
  px_json_t *root = NULL;
  int rc = px_json_parse(&arena, text, len, &lim, &root, NULL);
  if (!rc) rc = parse_tree(root, g);
  px_arena_release(&arena);
  if (rc) px_genesis_release(g);
  return rc;
}

int px_genesis_write_file(const px_genesis_t *g, const char *path) {
  if (!g || !path) return PX_EINVAL;
  px_buf_t b;
  px_buf_init(&b, 0);
  int rc = px_genesis_to_json(g, &b);
  if (!rc) rc = px_file_write_atomic(path, b.data, b.len, 0644);
  px_buf_release(&b);
  return rc;
}

int px_genesis_read_file(const char *path, px_genesis_t *g) {
  if (!path || !g) return PX_EINVAL;
  uint8_t *data = NULL;
  size_t len = 0;
  int rc = px_file_read_all(path, GENESIS_JSON_MAX, &data, &len);
  if (rc) {
    px_genesis_init(g);
    return rc;
  }
  rc = px_genesis_from_json((const char *)data, len, g);
  px_free(data);
  return rc;
}
