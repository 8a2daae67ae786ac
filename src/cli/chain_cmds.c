/*
 * chain_cmds.c — the user's commands for the chain (docs/chain.md):
 *
 *   plexus wallet new|show|balance --home DIR [--json]
 *   plexus wallet send --home DIR --to ID --amount N [--fee F] [--no-wait]
 *   plexus stake|unstake --home DIR --amount N [--fee F] [--no-wait]
 *   plexus tx status HASH --home DIR
 *   plexus query account ID --home DIR [--prove] [--out FILE]
 *   plexus verify-proof FILE [--genesis FILE | --validators FILE]
 *   plexus chain status --home DIR
 *
 * The wallet key is DIR/wallet.key (crypto.h key file, mode 0600).  Every
 * command talks to the node in DIR through its control socket (one JSON
 * line per reply); the nonce comes from the node ("next_nonce" counts the
 * sender's txs already in the mempool), the minimum fee from the genesis
 * parameters.  Every command takes --json.
 *
 * Proofs.  The state root after height H is the app_hash in block H+1's
 * header, and block H+1 carries a commit certificate (precommits of more
 * than 2/3 of the power).  `query account --prove` takes the proof at H,
 * waits for block H+1 with its commit, and checks the chain of trust:
 * commit verifies against a trusted validator set -> block hash -> header
 * app_hash == proof root -> px_smt_verify(key, value).  The saved proof file
 * holds all of it, so `verify-proof` repeats the check offline.
 *
 * Also here: px_cli_chain_genesis, the genesis maker shared by `plexus
 * init` and `plexus devnet up --validators N`.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "plexus/consensus.h"
#include "plexus/crypto.h"
#include "plexus/json.h"
#include "plexus/ledger.h"
#include "plexus/node.h"
#include "cli/cli.h"
#include "base/px_internal.h"

#define WALLET_FILE "wallet.key"
#define GENESIS_FILE "genesis.json"
#define WAIT_MS 20000
#define GENESIS_BALANCE 1000000000000ull
#define GENESIS_STAKE 10000000ull

/* ---- genesis ------------------------------------------------------------ */

static int read_pk(const char *dir, const char *file, uint8_t pk[PX_PK_LEN]) {
  char p[700];
  snprintf(p, sizeof p, "%s/%s", dir, file);
  px_keypair_t kp;
  int rc = px_keyfile_read(p, &kp);
  if (!rc) memcpy(pk, kp.pk, PX_PK_LEN);
  px_key_wipe(&kp);
  return rc;
}

static int ensure_wallet(const char *dir, uint8_t pk[PX_PK_LEN]) {
  char p[700];
  snprintf(p, sizeof p, "%s/%s", dir, WALLET_FILE);
  if (access(p, F_OK) == 0) return read_pk(dir, WALLET_FILE, pk);
  px_keypair_t kp;
  int rc = px_key_generate(&kp);
  if (!rc) rc = px_keyfile_write(p, &kp, 0);
  if (!rc) memcpy(pk, kp.pk, PX_PK_LEN);
  px_key_wipe(&kp);
  return rc;
}

int px_cli_chain_genesis(const char *const *dirs, size_t ndirs, size_t nval,
                         const char *chain_id) {
  if (nval < 1 || nval > ndirs || ndirs > 256) return PX_EINVAL;
  uint8_t(*vpk)[PX_PK_LEN] = px_calloc(nval, PX_PK_LEN);
  if (!vpk) return PX_ENOMEM;
  px_genesis_t g;
  px_genesis_init(&g);
  int rc = 0;
  for (size_t i = 0; !rc && i < nval; i++)
    rc = read_pk(dirs[i], PX_NODE_KEY_FILE, vpk[i]);
  if (!rc)
    rc = px_genesis_make(&g, chain_id, (const uint8_t(*)[PX_PK_LEN])vpk, nval,
                         GENESIS_BALANCE, GENESIS_STAKE);
  for (size_t i = 0; !rc && i < ndirs; i++) {
    uint8_t wpk[PX_PK_LEN];
    rc = ensure_wallet(dirs[i], wpk);
    if (!rc) rc = px_genesis_add_account(&g, wpk, GENESIS_BALANCE, 0);
  }
  if (!rc) rc = px_genesis_check(&g);
  for (size_t i = 0; !rc && i < ndirs; i++) {
    char p[700];
    snprintf(p, sizeof p, "%s/%s", dirs[i], GENESIS_FILE);
    rc = px_genesis_write_file(&g, p);
  }
  px_genesis_release(&g);
  px_free(vpk);
  return rc;
}

/* ---- helpers --------------------------------------------------------------
 */

typedef struct {
  px_arena_t arena;
  px_json_t *root;
  char *text;
} reply_t;

static void reply_free(reply_t *r) {
  px_arena_release(&r->arena);
  px_free(r->text);
  memset(r, 0, sizeof *r);
}

/* Send cmd, parse the JSON reply.  Prints the error (one line) and returns
 * non-zero when the node is not there or answered ok:false. */
static int node_call(const char *home, const char *cmd, reply_t *r,
                     int quiet_errors) {
  memset(r, 0, sizeof *r);
  px_arena_init(&r->arena, 1 << 16, 0);
  int rc = px_node_control(home, cmd, &r->text, 30000);
  if (rc == PX_ENOENT) {
    fprintf(stderr,
            "plexus: no node is running in %s (start one with `plexus node "
            "--home %s`)\n",
            home, home);
    return rc;
  }
  if (rc) {
    fprintf(stderr, "plexus: cannot reach the node in %s: %s\n", home,
            px_strerror(rc));
    return rc;
  }
  if ((rc = px_json_parse(&r->arena, r->text, strlen(r->text), NULL, &r->root,
                          NULL))) {
    fprintf(stderr, "plexus: the node sent a malformed reply\n");
    return rc;
  }
  int ok = 0;
  px_json_get_bool(r->root, "ok", &ok);
  if (!ok) {
    const char *msg = "", *name = "";
    px_json_get_str(r->root, "message", &msg);
    px_json_get_str(r->root, "error", &name);
    if (!quiet_errors) fprintf(stderr, "plexus: %s (%s)\n", msg, name);
    return PX_EINVAL;
  }
  return 0;
}

static int want_json(const px_cli_args_t *a) {
  int j = 0;
  px_config_get_bool(&a->opts, "json", 0, &j);
  return j;
}

static uint64_t jget_u64(const px_json_t *o, const char *k) {
  uint64_t v = 0;
  px_json_get_u64(o, k, &v);
  return v;
}

static const char *jget_str(const px_json_t *o, const char *k) {
  const char *s = "";
  px_json_get_str(o, k, &s);
  return s;
}

static int load_wallet(const char *home, px_keypair_t *kp) {
  char p[700];
  snprintf(p, sizeof p, "%s/%s", home, WALLET_FILE);
  int rc = px_keyfile_read(p, kp);
  if (rc == PX_ENOENT)
    fprintf(stderr,
            "plexus: no wallet in %s (create one with `plexus wallet new "
            "--home %s`)\n",
            home, home);
  else if (rc == PX_EPERM)
    fprintf(stderr, "plexus: %s is readable by others: run `chmod 600 %s`\n", p,
            p);
  else if (rc)
    fprintf(stderr, "plexus: cannot read %s: %s\n", p, px_strerror(rc));
  return rc;
}

static int read_genesis(const char *path, px_genesis_t *g) {
  px_genesis_init(g);
  int rc = px_genesis_read_file(path, g);
  if (rc)
    fprintf(stderr, "plexus: cannot read genesis %s: %s\n", path,
            px_strerror(rc));
  return rc;
}

static int parse_amount(const px_cli_args_t *a, const char *key, int required,
                        uint64_t *out) {
  const char *v = px_config_get(&a->opts, key);
  if (!v) {
    if (required) fprintf(stderr, "plexus: --%s N is required\n", key);
    return required ? PX_EINVAL : 1;
  }
  if (px_parse_u64(v, out) || (required && *out == 0)) {
    fprintf(stderr, "plexus: --%s must be a whole number%s\n", key,
            required ? " above 0" : "");
    return PX_EINVAL;
  }
  return 0;
}

/* ---- wallet ---------------------------------------------------------------
 */

static int wallet_new(px_cli_args_t *a, const char *home) {
  char p[700];
  snprintf(p, sizeof p, "%s/%s", home, WALLET_FILE);
  int force = 0;
  px_config_get_bool(&a->opts, "force", 0, &force);
  int rc = px_mkdir_p(home, 0700);
  px_keypair_t kp;
  if (!rc) rc = px_key_generate(&kp);
  if (rc) {
    fprintf(stderr, "plexus: cannot create a wallet: %s\n", px_strerror(rc));
    return 1;
  }
  rc = px_keyfile_write(p, &kp, force);
  char id[PX_NODE_ID_HEX_LEN];
  px_node_id_hex(kp.pk, id);
  px_key_wipe(&kp);
  if (rc == PX_EEXIST) {
    fprintf(stderr,
            "plexus: %s exists; refusing to overwrite a wallet (--force "
            "replaces it)\n",
            p);
    return 1;
  }
  if (rc) {
    fprintf(stderr, "plexus: cannot write %s: %s\n", p, px_strerror(rc));
    return 1;
  }
  if (want_json(a))
    printf("{\"ok\":true,\"address\":\"%s\",\"file\":\"%s\"}\n", id, p);
  else
    printf("wallet %s\naddress %s\n", p, id);
  return 0;
}

static int account_query(const char *home, const char *id, int prove,
                         reply_t *r) {
  char cmd[200];
  snprintf(cmd, sizeof cmd, "account %s%s", id, prove ? " prove" : "");
  return node_call(home, cmd, r, 0);
}

static int wallet_balance(px_cli_args_t *a, const char *home, int show_only) {
  px_keypair_t kp;
  if (load_wallet(home, &kp)) return 1;
  char id[PX_NODE_ID_HEX_LEN];
  px_node_id_hex(kp.pk, id);
  px_key_wipe(&kp);
  if (show_only) {
    if (want_json(a))
      printf("{\"ok\":true,\"address\":\"%s\"}\n", id);
    else
      printf("%s\n", id);
    return 0;
  }
  reply_t r;
  if (account_query(home, id, 0, &r)) {
    reply_free(&r);
    return 1;
  }
  if (want_json(a)) {
    printf("%s\n", r.text);
  } else {
    const px_json_t *acc = px_json_get(r.root, "account");
    printf("address  %s\nbalance  %llu\nstake    %llu\nunbonding %llu\n"
           "nonce    %llu\nheight   %llu\n",
           id, (unsigned long long)jget_u64(acc, "balance"),
           (unsigned long long)jget_u64(acc, "stake"),
           (unsigned long long)jget_u64(acc, "unbonding"),
           (unsigned long long)jget_u64(acc, "nonce"),
           (unsigned long long)jget_u64(r.root, "height"));
  }
  reply_free(&r);
  return 0;
}

/* Build, sign, submit one tx from the wallet; wait until committed unless
 * --no-wait.  The fee defaults to the chain's minimum for its size. */
static int submit_tx(px_cli_args_t *a, const char *home, uint16_t type,
                     const px_buf_t *payload, const char *what) {
  px_keypair_t kp;
  if (load_wallet(home, &kp)) return 1;
  char gpath[700];
  snprintf(gpath, sizeof gpath, "%s/%s", home, GENESIS_FILE);
  px_genesis_t g;
  if (read_genesis(gpath, &g)) {
    px_key_wipe(&kp);
    return 1;
  }
  char id[PX_NODE_ID_HEX_LEN];
  px_node_id_hex(kp.pk, id);
  reply_t r;
  int rc = account_query(home, id, 0, &r);
  uint64_t nonce = rc ? 0 : jget_u64(r.root, "next_nonce");
  reply_free(&r);
  px_buf_t tx;
  px_buf_init(&tx, 0);
  uint64_t fee = 0;
  int has_fee = 0;
  if (!rc) {
    int f = parse_amount(a, "fee", 0, &fee);
    if (f < 0) rc = f;
    has_fee = f == 0;
  }
  if (!rc && !has_fee) {
    /* The size does not depend on the fee (fixed-width u64). */
    rc = px_tx_make(g.chain_id, &kp, nonce, 0, type, payload->data,
                    payload->len, &tx);
    fee = g.params.fee_base + g.params.fee_per_byte * tx.len;
    px_buf_reset(&tx);
  }
  if (!rc)
    rc = px_tx_make(g.chain_id, &kp, nonce, fee, type, payload->data,
                    payload->len, &tx);
  px_key_wipe(&kp);
  px_genesis_release(&g);
  if (rc) {
    px_buf_release(&tx);
    return 1;
  }
  char *cmd = px_malloc(tx.len * 2 + 8);
  if (!cmd) return 1;
  memcpy(cmd, "tx ", 3);
  px_hex_encode(tx.data, tx.len, cmd + 3);
  uint8_t hash[PX_HASH_LEN];
  px_hash(hash, tx.data, tx.len);
  px_buf_release(&tx);
  rc = node_call(home, cmd, &r, 0);
  px_free(cmd);
  reply_free(&r);
  if (rc) return 1;
  char hh[65];
  px_hex_encode(hash, PX_HASH_LEN, hh);
  int nowait = 0;
  px_config_get_bool(&a->opts, "no-wait", 0, &nowait);
  if (nowait) {
    if (want_json(a))
      printf("{\"ok\":true,\"hash\":\"%s\",\"status\":\"pending\",\"nonce\":"
             "%llu,\"fee\":%llu}\n",
             hh, (unsigned long long)nonce, (unsigned long long)fee);
    else
      printf("%s submitted: tx %s (nonce %llu, fee %llu)\n", what, hh,
             (unsigned long long)nonce, (unsigned long long)fee);
    return 0;
  }
  char q[100];
  snprintf(q, sizeof q, "txstatus %s", hh);
  uint64_t t0 = px_time_mono_ms();
  for (;;) {
    if (node_call(home, q, &r, 0)) {
      reply_free(&r);
      return 1;
    }
    if (!strcmp(jget_str(r.root, "status"), "committed")) break;
    reply_free(&r);
    if (px_time_mono_ms() - t0 > WAIT_MS) {
      fprintf(stderr,
              "plexus: tx %s not committed after %d s (check `plexus tx "
              "status %s --home %s`)\n",
              hh, WAIT_MS / 1000, hh, home);
      return 1;
    }
    usleep(20 * 1000);
  }
  const char *res = jget_str(r.root, "result");
  int good = !strcmp(res, "ok");
  if (want_json(a))
    printf("%s\n", r.text);
  else
    printf("%s: tx %s committed at height %llu, result %s (fee %llu)\n", what,
           hh, (unsigned long long)jget_u64(r.root, "height"),
           good ? "ok" : res, (unsigned long long)jget_u64(r.root, "fee_paid"));
  reply_free(&r);
  return good ? 0 : 1;
}

static int wallet_send(px_cli_args_t *a, const char *home) {
  const char *to = px_config_get(&a->opts, "to");
  uint8_t pk[PX_PK_LEN];
  if (!to || px_node_id_parse(to, pk)) {
    fprintf(stderr, "plexus: --to must be an address (64 hex characters)\n");
    return 2;
  }
  uint64_t amount;
  if (parse_amount(a, "amount", 1, &amount)) return 2;
  px_buf_t pl;
  px_buf_init(&pl, 0);
  px_tx_payload_transfer(&pl, pk, amount);
  char what[160];
  snprintf(what, sizeof what, "sent %llu to %.16s", (unsigned long long)amount,
           to);
  int rc = submit_tx(a, home, PX_TX_TRANSFER, &pl, what);
  px_buf_release(&pl);
  return rc;
}

static int stake_cmd(px_cli_args_t *a, const char *home, int unstake) {
  uint64_t amount;
  if (parse_amount(a, "amount", 1, &amount)) return 2;
  px_buf_t pl;
  px_buf_init(&pl, 0);
  px_tx_payload_amount(&pl, amount);
  char what[80];
  snprintf(what, sizeof what, "%s %llu", unstake ? "unstaked" : "staked",
           (unsigned long long)amount);
  int rc = submit_tx(a, home, unstake ? PX_TX_UNSTAKE : PX_TX_STAKE, &pl, what);
  px_buf_release(&pl);
  return rc;
}

/* ---- proofs ---------------------------------------------------------------
 */

/* Trusted validator set: --validators FILE ({"validators":[{"pk","power"}]}
 * in set order), else the genesis (--genesis FILE or DIR/genesis.json). */
static int trusted_valset(const px_cli_args_t *a, const char *home,
                          px_cons_valset_t *vs, char *chain_id, size_t cap) {
  const char *vf = px_config_get(&a->opts, "validators");
  const char *gf = px_config_get(&a->opts, "genesis");
  char gpath[700];
  if (vf) {
    uint8_t *d;
    size_t n;
    int rc = px_file_read_all(vf, 1 << 20, &d, &n);
    if (rc) {
      fprintf(stderr, "plexus: cannot read %s: %s\n", vf, px_strerror(rc));
      return rc;
    }
    px_arena_t ar;
    px_arena_init(&ar, 1 << 16, 0);
    px_json_t *root = NULL;
    const px_json_t *arr = NULL;
    rc = px_json_parse(&ar, d, n, NULL, &root, NULL);
    if (!rc) rc = px_json_get_array(root, "validators", &arr);
    uint32_t cnt = (uint32_t)px_json_count(arr);
    if (!rc && (cnt == 0 || cnt > PX_CONS_MAX_VALIDATORS)) rc = PX_EINVAL;
    uint8_t(*pks)[PX_PK_LEN] = px_calloc(cnt ? cnt : 1, PX_PK_LEN);
    uint64_t *pw = px_calloc(cnt ? cnt : 1, sizeof *pw);
    for (uint32_t i = 0; !rc && i < cnt; i++) {
      const px_json_t *v = px_json_at(arr, i);
      const char *pk = NULL;
      if (px_json_get_str(v, "pk", &pk) || px_node_id_parse(pk, pks[i]) ||
          px_json_get_u64(v, "power", &pw[i]))
        rc = PX_EINVAL;
    }
    if (!rc)
      rc = px_cons_valset_init(vs, (const uint8_t(*)[PX_PK_LEN])pks, pw, cnt);
    const char *cid = NULL;
    if (!rc && px_json_get_str(root, "chain_id", &cid) == 0)
      snprintf(chain_id, cap, "%s", cid);
    px_free(pks);
    px_free(pw);
    px_arena_release(&ar);
    px_free(d);
    if (rc)
      fprintf(stderr,
              "plexus: %s is not a validator set file "
              "({\"chain_id\":..,\"validators\":[{\"pk\":..,\"power\":N}]})\n",
              vf);
    return rc;
  }
  if (!gf) {
    if (!home) {
      fprintf(stderr, "plexus: give the trusted validators: --genesis FILE, "
                      "--validators FILE or --home DIR\n");
      return PX_EINVAL;
    }
    snprintf(gpath, sizeof gpath, "%s/%s", home, GENESIS_FILE);
    gf = gpath;
  }
  px_genesis_t g;
  if (read_genesis(gf, &g)) return PX_EINVAL;
  px_ledger_state_t *s = NULL;
  int rc = px_ledger_state_from_genesis(&g, &s);
  px_validator_t *v = px_calloc(PX_LEDGER_MAX_VALIDATORS, sizeof *v);
  size_t n = 0;
  if (!rc)
    rc = v ? px_ledger_validators(s, v, PX_LEDGER_MAX_VALIDATORS, &n)
           : PX_ENOMEM;
  if (!rc && (n == 0 || n > PX_CONS_MAX_VALIDATORS)) rc = PX_EINVAL;
  uint8_t(*pks)[PX_PK_LEN] = px_calloc(n ? n : 1, PX_PK_LEN);
  uint64_t *pw = px_calloc(n ? n : 1, sizeof *pw);
  for (size_t i = 0; !rc && i < n; i++) {
    memcpy(pks[i], v[i].pk, PX_PK_LEN);
    pw[i] = v[i].power;
  }
  if (!rc)
    rc = px_cons_valset_init(vs, (const uint8_t(*)[PX_PK_LEN])pks, pw,
                             (uint32_t)n);
  snprintf(chain_id, cap, "%s", g.chain_id);
  px_free(pks);
  px_free(pw);
  px_free(v);
  px_ledger_state_free(s);
  px_genesis_release(&g);
  return rc;
}

static int hex_to_buf(const char *hex, px_buf_t *out) {
  size_t n = strlen(hex);
  if (n % 2) return PX_EDECODE;
  if (px_buf_reserve(out, n / 2 + 1)) return PX_ENOMEM;
  char t[3] = {0};
  for (size_t i = 0; i < n / 2; i++) {
    t[0] = hex[2 * i];
    t[1] = hex[2 * i + 1];
    if (px_hex_decode(t, out->data + out->len, 1)) return PX_EDECODE;
    out->len++;
  }
  return 0;
}

typedef struct {
  uint64_t balance, nonce;
  int present;
  uint64_t state_height, block_height;
  char app_hash[65], block_hash[65];
  uint32_t signers, round;
  uint64_t power, total;
} proof_result_t;

/* The whole check of a proof document (see the file comment). */
static int proof_check(const px_json_t *doc, const px_cons_valset_t *vs,
                       const char *chain_id, proof_result_t *res, char *why,
                       size_t whycap) {
  memset(res, 0, sizeof *res);
  px_buf_t key, val, proof, blk, cert;
  px_buf_init(&key, 0);
  px_buf_init(&val, 0);
  px_buf_init(&proof, 0);
  px_buf_init(&blk, 0);
  px_buf_init(&cert, 0);
  const px_json_t *vj = px_json_get(doc, "value");
  int rc = hex_to_buf(jget_str(doc, "key"), &key);
  res->present = vj && vj->type == PX_JSON_STRING;
  if (!rc && res->present) rc = hex_to_buf(jget_str(doc, "value"), &val);
  if (!rc) rc = hex_to_buf(jget_str(doc, "proof"), &proof);
  if (!rc) rc = hex_to_buf(jget_str(doc, "block"), &blk);
  if (!rc) rc = hex_to_buf(jget_str(doc, "commit"), &cert);
  if (rc) snprintf(why, whycap, "the proof file is malformed");
  px_smt_proof_t *pf = px_malloc(sizeof *pf);
  px_block_t b;
  memset(&b, 0, sizeof b);
  px_cons_commit_t cm;
  if (!rc && !pf) rc = PX_ENOMEM;
  if (!rc && (rc = px_smt_proof_decode(proof.data, proof.len, pf)))
    snprintf(why, whycap, "the proof does not decode: %s", px_strerror(rc));
  if (!rc && (rc = px_block_decode(blk.data, blk.len, &b)))
    snprintf(why, whycap, "the block does not decode: %s", px_strerror(rc));
  if (!rc && (rc = px_cons_commit_decode(cert.data, cert.len, &cm)))
    snprintf(why, whycap, "the commit does not decode: %s", px_strerror(rc));
  if (!rc && cm.height != b.header.height) {
    rc = PX_EAUTH;
    snprintf(why, whycap, "the commit is for another height");
  }
  if (!rc && (rc = px_cons_commit_verify(chain_id, vs, &cm, b.hash)))
    snprintf(why, whycap,
             "the commit does not verify against the trusted validators: %s",
             px_strerror(rc));
  if (!rc && (rc = px_smt_verify(b.header.app_hash, key.data, key.len,
                                 res->present ? val.data : NULL, val.len, pf)))
    snprintf(why, whycap,
             "the proof does not match the committed state root: %s",
             px_strerror(rc));
  if (!rc) {
    res->block_height = b.header.height;
    res->state_height = b.header.height - 1;
    px_hex_encode(b.header.app_hash, 32, res->app_hash);
    px_hex_encode(b.hash, 32, res->block_hash);
    res->signers = cm.n;
    res->round = cm.round;
    res->total = vs->total;
    for (uint32_t i = 0; i < cm.n; i++)
      if (cm.sigs[i].validator < vs->n)
        res->power += vs->v[cm.sigs[i].validator].power;
    if (res->present && val.len >= 16) {
      res->balance = px_get_u64le(val.data);
      res->nonce = px_get_u64le(val.data + 8);
    }
  }
  px_block_release(&b);
  px_free(pf);
  px_buf_release(&key);
  px_buf_release(&val);
  px_buf_release(&proof);
  px_buf_release(&blk);
  px_buf_release(&cert);
  return rc;
}

static void print_proof_result(const proof_result_t *r, const char *proof_hex) {
  if (r->present)
    printf("value    balance %llu, nonce %llu\n",
           (unsigned long long)r->balance, (unsigned long long)r->nonce);
  else
    printf("value    (no such account: proof of absence)\n");
  printf("proof    %.64s%s (%zu bytes)\n", proof_hex,
         strlen(proof_hex) > 64 ? "..." : "", strlen(proof_hex) / 2);
  printf("state    height %llu, root %s\n", (unsigned long long)r->state_height,
         r->app_hash);
  printf("commit   block %llu %s, round %u, %u signatures, power %llu of "
         "%llu\n",
         (unsigned long long)r->block_height, r->block_hash, r->round,
         r->signers, (unsigned long long)r->power,
         (unsigned long long)r->total);
  printf("verified OK: commit > 2/3 of trusted power -> block -> app_hash -> "
         "proof\n");
}

static int query_account(px_cli_args_t *a, const char *home) {
  if (a->npos != 2 || strcmp(a->pos[0], "account") != 0) {
    fprintf(stderr, "plexus: usage: plexus query account ID --home DIR "
                    "[--prove] [--out FILE]\n");
    return 2;
  }
  const char *id = a->pos[1];
  uint8_t pk[PX_PK_LEN];
  if (px_node_id_parse(id, pk)) {
    fprintf(stderr, "plexus: ID must be an address (64 hex characters)\n");
    return 2;
  }
  int prove = 0;
  px_config_get_bool(&a->opts, "prove", 0, &prove);
  const char *outp = px_config_get(&a->opts, "out");
  if (outp) prove = 1;
  reply_t r;
  if (account_query(home, id, prove, &r)) {
    reply_free(&r);
    return 1;
  }
  if (!prove) {
    if (want_json(a)) {
      printf("%s\n", r.text);
    } else {
      const px_json_t *acc = px_json_get(r.root, "account");
      printf("account  %s\nbalance  %llu\nnonce    %llu\nstake    %llu\n"
             "height   %llu\napp_hash %s\n",
             id, (unsigned long long)jget_u64(acc, "balance"),
             (unsigned long long)jget_u64(acc, "nonce"),
             (unsigned long long)jget_u64(acc, "stake"),
             (unsigned long long)jget_u64(r.root, "height"),
             jget_str(r.root, "app_hash"));
    }
    reply_free(&r);
    return 0;
  }
  /* The root of this proof is committed in block height+1: wait for it. */
  uint64_t h = jget_u64(r.root, "height");
  char cmd[64];
  snprintf(cmd, sizeof cmd, "block %llu raw", (unsigned long long)(h + 1));
  reply_t b;
  uint64_t t0 = px_time_mono_ms();
  while (node_call(home, cmd, &b, 1)) {
    reply_free(&b);
    if (px_time_mono_ms() - t0 > WAIT_MS) {
      fprintf(stderr,
              "plexus: block %llu (which commits the state root) did "
              "not appear in %d s\n",
              (unsigned long long)(h + 1), WAIT_MS / 1000);
      reply_free(&r);
      return 1;
    }
    usleep(20 * 1000);
  }
  px_cons_valset_t *vs = px_malloc(sizeof *vs);
  char chain_id[PX_CONS_CHAIN_ID_MAX] = "";
  px_buf_t doc;
  px_buf_init(&doc, 0);
  const char *value_hex = NULL;
  const px_json_t *vj = px_json_get(r.root, "value");
  if (vj && vj->type == PX_JSON_STRING) value_hex = vj->str;
  int rc = vs ? 0 : PX_ENOMEM;
  if (!rc) rc = trusted_valset(a, home, vs, chain_id, sizeof chain_id);
  px_buf_printf(&doc,
                "{\"chain_id\":\"%s\",\"address\":\"%s\",\"height\":%llu,"
                "\"key\":\"%s\",\"value\":%s%s%s,\"proof\":\"%s\","
                "\"block_height\":%llu,\"block\":\"%s\",\"commit\":\"%s\"}",
                chain_id, id, (unsigned long long)h, jget_str(r.root, "key"),
                value_hex ? "\"" : "", value_hex ? value_hex : "null",
                value_hex ? "\"" : "", jget_str(r.root, "proof"),
                (unsigned long long)(h + 1), jget_str(b.root, "raw"),
                jget_str(b.root, "commit"));
  px_arena_t ar;
  px_arena_init(&ar, 1 << 16, 0);
  px_json_t *dj = NULL;
  proof_result_t res;
  char why[256] = "";
  if (!rc) rc = px_json_parse(&ar, doc.data, doc.len, NULL, &dj, NULL);
  if (!rc) rc = proof_check(dj, vs, chain_id, &res, why, sizeof why);
  if (!rc && outp && (rc = px_file_write_atomic(outp, doc.data, doc.len, 0644)))
    snprintf(why, sizeof why, "cannot write %s: %s", outp, px_strerror(rc));
  if (rc) {
    fprintf(stderr, "plexus: proof check failed: %s\n",
            why[0] ? why : px_strerror(rc));
  } else if (want_json(a)) {
    printf("%.*s\n", (int)doc.len, (const char *)doc.data);
  } else {
    printf("account  %s\n", id);
    print_proof_result(&res, jget_str(r.root, "proof"));
    if (outp)
      printf("saved    %s (check it with `plexus verify-proof`)\n", outp);
  }
  px_arena_release(&ar);
  px_buf_release(&doc);
  px_free(vs);
  reply_free(&b);
  reply_free(&r);
  return rc ? 1 : 0;
}

static int verify_proof(px_cli_args_t *a) {
  if (a->npos != 1) {
    fprintf(stderr, "plexus: usage: plexus verify-proof FILE [--genesis FILE "
                    "| --validators FILE | --home DIR]\n");
    return 2;
  }
  uint8_t *d;
  size_t n;
  int rc = px_file_read_all(a->pos[0], 64u << 20, &d, &n);
  if (rc) {
    fprintf(stderr, "plexus: cannot read %s: %s\n", a->pos[0], px_strerror(rc));
    return 1;
  }
  const char *home = px_config_get(&a->opts, "home");
  px_cons_valset_t *vs = px_malloc(sizeof *vs);
  char chain_id[PX_CONS_CHAIN_ID_MAX] = "";
  rc = vs ? trusted_valset(a, home, vs, chain_id, sizeof chain_id) : PX_ENOMEM;
  px_arena_t ar;
  px_arena_init(&ar, 1 << 16, 0);
  px_json_t *dj = NULL;
  proof_result_t res;
  char why[256] = "";
  if (!rc && (rc = px_json_parse(&ar, d, n, NULL, &dj, NULL)))
    snprintf(why, sizeof why, "%s is not JSON", a->pos[0]);
  if (!rc && !chain_id[0])
    snprintf(chain_id, sizeof chain_id, "%s", jget_str(dj, "chain_id"));
  if (!rc) rc = proof_check(dj, vs, chain_id, &res, why, sizeof why);
  if (rc) {
    if (want_json(a))
      printf("{\"ok\":false,\"error\":\"%s\",\"message\":\"%s\"}\n",
             px_err_name(rc), why);
    else
      fprintf(stderr, "plexus: proof NOT verified: %s\n",
              why[0] ? why : px_strerror(rc));
  } else if (want_json(a)) {
    printf("{\"ok\":true,\"verified\":true,\"address\":\"%s\",\"present\":%s,"
           "\"balance\":%llu,\"nonce\":%llu,\"state_height\":%llu,"
           "\"app_hash\":\"%s\",\"block_hash\":\"%s\",\"signers\":%u}\n",
           jget_str(dj, "address"), res.present ? "true" : "false",
           (unsigned long long)res.balance, (unsigned long long)res.nonce,
           (unsigned long long)res.state_height, res.app_hash, res.block_hash,
           res.signers);
  } else {
    printf("account  %s\n", jget_str(dj, "address"));
    print_proof_result(&res, jget_str(dj, "proof"));
  }
  px_arena_release(&ar);
  px_free(vs);
  px_free(d);
  return rc ? 1 : 0;
}

/* ---- tx status, chain status -----------------------------------------------
 */

static int tx_status(px_cli_args_t *a, const char *home) {
  if (a->npos != 2 || strcmp(a->pos[0], "status") != 0) {
    fprintf(stderr, "plexus: usage: plexus tx status HASH --home DIR\n");
    return 2;
  }
  char cmd[128];
  snprintf(cmd, sizeof cmd, "txstatus %.64s", a->pos[1]);
  reply_t r;
  if (node_call(home, cmd, &r, 0)) {
    reply_free(&r);
    return 1;
  }
  const char *st = jget_str(r.root, "status");
  if (want_json(a))
    printf("%s\n", r.text);
  else if (!strcmp(st, "committed"))
    printf("tx %s\nstatus   committed\nheight   %llu\nindex    %llu\n"
           "result   %s\nfee paid %llu\n",
           a->pos[1], (unsigned long long)jget_u64(r.root, "height"),
           (unsigned long long)jget_u64(r.root, "index"),
           jget_str(r.root, "result"),
           (unsigned long long)jget_u64(r.root, "fee_paid"));
  else
    printf("tx %s\nstatus   %s\n", a->pos[1], st);
  int known = strcmp(st, "unknown") != 0;
  reply_free(&r);
  return known ? 0 : 1;
}

static int chain_status(px_cli_args_t *a, const char *home) {
  reply_t r;
  if (node_call(home, "chain", &r, 0)) {
    reply_free(&r);
    return 1;
  }
  const px_json_t *c = px_json_get(r.root, "chain");
  if (want_json(a)) {
    printf("%s\n", r.text);
  } else {
    int val = 0, sok = 0;
    px_json_get_bool(c, "validator", &val);
    px_json_get_bool(c, "supply_ok", &sok);
    printf("chain     %s\nheight    %llu\napp_hash  %s\nround     %llu "
           "(%s)\nrole      %s (%llu validators)\nmempool   %llu txs\n"
           "committed %llu txs, %llu blocks synced\nsupply    %llu "
           "(expected %llu: %s)\n",
           jget_str(c, "chain_id"), (unsigned long long)jget_u64(c, "height"),
           jget_str(c, "app_hash"), (unsigned long long)jget_u64(c, "round"),
           jget_str(c, "step"), val ? "validator" : "follower",
           (unsigned long long)jget_u64(c, "validators"),
           (unsigned long long)jget_u64(c, "mempool"),
           (unsigned long long)jget_u64(c, "txs_committed"),
           (unsigned long long)jget_u64(c, "blocks_synced"),
           (unsigned long long)jget_u64(c, "supply_actual"),
           (unsigned long long)jget_u64(c, "supply_expected"),
           sok ? "ok" : "MISMATCH");
  }
  reply_free(&r);
  return 0;
}

/* ---- dispatch ---------------------------------------------------------------
 */

int px_cli_chain_has_sub(const char *cmd) {
  return !strcmp(cmd, "wallet") || !strcmp(cmd, "chain");
}

int px_cli_is_chain_cmd(const char *cmd) {
  return px_cli_chain_has_sub(cmd) || !strcmp(cmd, "stake") ||
         !strcmp(cmd, "unstake") || !strcmp(cmd, "tx") ||
         !strcmp(cmd, "query") || !strcmp(cmd, "verify-proof");
}

int px_cli_chain(const char *cmd, const char *sub, px_cli_args_t *a) {
  static const char *const ok[] = {"home", "json",       "to",      "amount",
                                   "fee",  "no-wait",    "force",   "prove",
                                   "out",  "validators", "genesis", NULL};
  if (px_cli_check_opts(a, ok, 0)) return 2;
  if (!strcmp(cmd, "verify-proof")) return verify_proof(a);
  const char *home = px_cli_home(a);
  if (!home) return 2;
  if (!strcmp(cmd, "wallet")) {
    if (!strcmp(sub, "new")) return wallet_new(a, home);
    if (!strcmp(sub, "show")) return wallet_balance(a, home, 1);
    if (!strcmp(sub, "balance")) return wallet_balance(a, home, 0);
    if (!strcmp(sub, "send")) return wallet_send(a, home);
    fprintf(stderr, "plexus: usage: plexus wallet new|show|balance|send "
                    "--home DIR\n");
    return 2;
  }
  if (!strcmp(cmd, "stake")) return stake_cmd(a, home, 0);
  if (!strcmp(cmd, "unstake")) return stake_cmd(a, home, 1);
  if (!strcmp(cmd, "tx")) return tx_status(a, home);
  if (!strcmp(cmd, "query")) return query_account(a, home);
  if (!strcmp(cmd, "chain")) {
    if (!strcmp(sub, "status")) return chain_status(a, home);
    fprintf(stderr, "plexus: usage: plexus chain status --home DIR\n");
    return 2;
  }
  return 2;
}
