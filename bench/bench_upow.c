/*
 * bench_upow.c — Useful Proof of Work figures for issue 6 (docs/upow.md):
 *
 *   build/bench/bench_upow [--quick]
 *
 * 1. Candidates evaluated per second per core (default network family and
 *    parameters, one thread).
 * 2. The asymmetry: the cost to check one solution (px_upow_check, timed)
 *    over the mean cost of finding one at the difficulty the mining run
 *    settles at (candidate time / observed solution rate).
 * 3. Usefulness: held-out test accuracy of the parent after 1, 10 and 50
 *    epochs (1 and 10 with --quick) of a fixed-seed mining run (two miners,
 *    interleaved nonces, difficulty adjusting toward 4 solutions per
 *    epoch), and of plain seeded hill-climbing (px_upow_hill_climb) run
 *    here for the same CPU time.
 * 4. The same through the real uPoW contract (src/ledger/upow.c): a ledger
 *    state with one validator and two miners, blocks made and applied,
 *    every solution submitted as a SUBMIT tx and re-checked by the
 *    contract, the published model read back from the chain after 1, 10
 *    and 50 epochs (1 and 10 with --quick); CPU time counts everything
 *    (mining, checking, blocks), and hill-climbing gets the same CPU time.
 * Uses Fashion-MNIST from /usr/share/datasets/fashion-mnist, or learnable
 * synthetic data (figures then say so).  Exit 0 when everything was
 * measured.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "plexus/base.h"
#include "plexus/model_io.h"
#include "plexus/crypto.h"
#include "plexus/ledger.h"
#include "plexus/upow.h"
#include "plexus/upow_chain.h"

static double cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void synth(px_upow_data_t *d, size_t n, uint64_t seed) {
  d->x = malloc(n * PX_UPOW_N_IN);
  d->y = malloc(n);
  d->n = n;
  px_rng_t r;
  px_rng_seed(&r, seed);
  for (size_t i = 0; i < n; i++) {
    int c = (int)px_rng_below(&r, 10);
    d->y[i] = (uint8_t)c;
    for (int j = 0; j < PX_UPOW_N_IN; j++)
      d->x[i * PX_UPOW_N_IN + j] = (int8_t)((int)px_rng_below(&r, 3) - 1);
    for (int j = 0; j < 12; j++)
      d->x[i * PX_UPOW_N_IN + c * 19 + j] = 1;
  }
}

static double pct(uint32_t ok, size_t n) { return 100.0 * ok / (double)n; }

/* ---- 4: mining through the contract -------------------------------------- */

typedef struct {
  px_ledger_state_t *s;
  px_keypair_t val, miner[2];
} chain_t;

static int apply(chain_t *c, const uint8_t *const *txs, const size_t *lens,
                 size_t n) {
  px_buf_t enc;
  px_block_t b;
  px_tx_result_t res[32];
  px_buf_init(&enc, 0);
  int rc = px_ledger_block_make(c->s, c->val.pk, px_ledger_last_time(c->s) + 1,
                                txs, lens, n, &enc);
  if (!rc) rc = px_block_decode(enc.data, enc.len, &b);
  if (!rc) {
    rc = px_ledger_apply_block(c->s, &b, res);
    px_block_release(&b);
  }
  px_buf_release(&enc);
  for (size_t i = 0; !rc && i < n; i++)
    if (res[i].code) rc = res[i].code;
  return rc;
}

static int chain_new(chain_t *c) {
  uint8_t seed[PX_SEED_LEN];
  px_keypair_t *k[3] = {&c->val, &c->miner[0], &c->miner[1]};
  px_genesis_t g;
  px_genesis_init(&g);
  snprintf(g.chain_id, sizeof g.chain_id, "bench-upow");
  for (int i = 0; i < 3; i++) {
    memset(seed, i + 1, sizeof seed);
    if (px_key_from_seed(k[i], seed) ||
        px_genesis_add_account(&g, k[i]->pk, 1000000000000ull,
                               i == 0 ? 10000000ull : 0))
      return 1;
  }
  if (px_genesis_add_validator(&g, c->val.pk, "v0")) return 1;
  int rc = px_ledger_state_from_genesis(&g, &c->s);
  px_genesis_release(&g);
  return rc;
}

/* Run max_epoch epochs; record test accuracy and CPU at the marks. */
static int contract_run(const px_upow_data_t *te, int max_epoch, int per_miner,
                        const int *marks, int n_marks, double *mark_cpu,
                        uint32_t *mark_acc, uint64_t *n_sub, uint64_t *n_ok) {
  const px_upow_data_t *tr;
  chain_t c;
  if (px_upow_chain_dataset(&tr) || chain_new(&c)) return 1;
  double cpu0 = cpu_s();
  int rc = 0;
  for (int e = 0; !rc && e < max_epoch; e++) {
    px_upow_chain_epoch_t er;
    /* To the epoch's second block (task fixed, eval seed revealed). */
    while (!rc && (px_upow_chain_epoch(c.s, &er) || er.epoch != (uint64_t)e ||
                   !er.revealed))
      rc = apply(&c, NULL, NULL, 0);
    px_upow_net_t parent;
    px_upow_epoch_t ep;
    px_upow_task_t *t = NULL;
    if (!rc) rc = px_upow_chain_parent(c.s, &parent);
    px_upow_chain_task_epoch(&er, &ep);
    if (!rc) rc = px_upow_task_new(&ep, &parent, tr, &t);
    /* Both miners search; each submits its solutions (a deposit each). */
    px_buf_t txb[16];
    const uint8_t *txs[16];
    size_t lens[16], nt = 0;
    for (int nonce = 0; !rc && nonce < per_miner; nonce++)
      for (int m = 0; !rc && m < 2; m++) {
        px_upow_solution_t sol;
        int r =
            px_upow_candidate(t, c.miner[m].pk, (uint64_t)nonce, NULL, &sol);
        if (r < 0) rc = r;
        if (r != 1 || nt == PX_UPOW_MAX_CHECKS_PER_BLOCK) continue;
        px_account_t a;
        px_buf_t pl;
        px_buf_init(&pl, 0);
        px_buf_init(&txb[nt], 0);
        rc = px_ledger_account(c.s, c.miner[m].pk, &a);
        if (!rc) rc = px_upow_payload_submit(&pl, &sol);
        if (!rc) {
          /* Its txs already in this block come first (nonce order). */
          uint64_t own = 0;
          for (size_t j = 0; j < nt; j++) {
            px_tx_t tx;
            if (!px_tx_decode(txb[j].data, txb[j].len, &tx) &&
                !memcmp(tx.sender, c.miner[m].pk, 32))
              own++;
          }
          rc = px_tx_make("bench-upow", &c.miner[m], a.nonce + own, 10000,
                          PX_TX_UPOW_SUBMIT, pl.data, pl.len, &txb[nt]);
        }
        px_buf_release(&pl);
        if (!rc) {
          txs[nt] = txb[nt].data;
          lens[nt] = txb[nt].len;
          nt++;
        }
      }
    if (!rc && nt) rc = apply(&c, txs, lens, nt);
    *n_sub += nt;
    for (size_t j = 0; j < nt; j++)
      px_buf_release(&txb[j]);
    px_upow_task_free(t);
    px_upow_net_release(&parent);
    /* To the next epoch's first block: epoch e is published. */
    while (!rc && (px_upow_chain_epoch(c.s, &er) || er.epoch == (uint64_t)e))
      rc = apply(&c, NULL, NULL, 0);
    px_upow_chain_published_t pub;
    if (!rc) rc = px_upow_chain_published(c.s, (uint64_t)e, &pub);
    if (!rc) *n_ok += pub.n_solutions;
    uint64_t act, exp;
    if (!rc && (px_ledger_supply(c.s, &act, &exp) || act != exp)) rc = 1;
    for (int k = 0; !rc && k < n_marks; k++)
      if (e + 1 == marks[k]) {
        mark_cpu[k] = cpu_s() - cpu0;
        px_upow_net_t pn;
        if (!(rc = px_upow_chain_parent(c.s, &pn))) {
          mark_acc[k] = px_upow_net_correct(&pn, te, NULL, te->n);
          px_upow_net_release(&pn);
        }
      }
  }
  px_ledger_state_free(c.s);
  return rc;
}

int main(int argc, char **argv) {
  int quick = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--quick"))
      quick = 1;
    else {
      fprintf(stderr, "usage: bench_upow [--quick]\n");
      return 2;
    }
  }
  px_upow_data_t tr, te;
  int real = 0;
  px_mnist_t mtr, mte;
  if (!px_mnist_load(PX_FASHION_MNIST_DIR, "train", &mtr)) {
    if (px_mnist_load(PX_FASHION_MNIST_DIR, "t10k", &mte) ||
        px_upow_data_from_mnist(&mtr, 0, &tr) ||
        px_upow_data_from_mnist(&mte, quick ? 2000 : 0, &te)) {
      fprintf(stderr, "bench_upow: cannot load Fashion-MNIST\n");
      return 1;
    }
    px_mnist_release(&mtr);
    px_mnist_release(&mte);
    real = 1;
  } else {
    synth(&tr, 20000, 1);
    synth(&te, 2000, 2);
  }
  printf("uPoW bench (%s, %zu train / %zu test images%s)\n",
         real ? "Fashion-MNIST" : "SYNTHETIC data", tr.n, te.n,
         quick ? ", --quick" : "");

  px_upow_dims_t dims;
  px_upow_dims_default(&dims);
  px_upow_net_t genesis, parent;
  if (px_upow_net_random(&dims, 1, &genesis) ||
      px_upow_net_copy(&parent, &genesis))
    return 1;
  px_upow_epoch_t ep;
  memset(&ep, 0, sizeof ep);
  px_upow_params_default(&ep.params);
  ep.margin = 1;
  printf(
      "family: %u hidden, fan-in %u, output fan-in %u, %u ticks; "
      "%u steps x %u window, eval %u; %llu ops/candidate\n",
      dims.n_hidden, dims.fan_in, dims.out_fan_in, dims.ticks, ep.params.steps,
      ep.params.window, ep.params.eval_n,
      (unsigned long long)(((uint64_t)(ep.params.steps + 1) * ep.params.window +
                            ep.params.eval_n) *
                           px_upow_net_ops(&dims)));

  /* ---- 3 (and the data for 1 and 2): the mining run ---- */
  int max_epoch = quick ? 10 : 50, per_miner = quick ? 6 : 8;
  uint8_t pk[2][32];
  memset(pk[0], 0x11, 32);
  memset(pk[1], 0x22, 32);
  double mine_cpu = 0, cand_cpu = 0, check_cpu = 0;
  uint64_t n_cand = 0, n_checks = 0;
  uint64_t settled_cand = 0, settled_sol = 0; /* after epoch max/2 */
  int marks[3] = {1, 10, 50}, n_marks = quick ? 2 : 3;
  double mark_cpu[3] = {0};
  uint32_t mark_acc[3] = {0},
           acc0 = px_upow_net_correct(&parent, &te, NULL, te.n);
  for (int e = 0; e < max_epoch; e++) {
    double t0 = cpu_s();
    ep.epoch = (uint64_t)e;
    memset(ep.epoch_seed, e, 32);
    memset(ep.eval_seed, e + 101, 32);
    px_upow_task_t *t;
    if (px_upow_task_new(&ep, &parent, &tr, &t)) return 1;
    px_upow_solution_t best;
    int have = 0;
    uint32_t nsol = 0;
    double c0 = cpu_s();
    for (int nonce = 0; nonce < per_miner; nonce++)
      for (int m = 0; m < 2; m++) {
        px_upow_solution_t s;
        int rc = px_upow_candidate(t, pk[m], (uint64_t)nonce, NULL, &s);
        if (rc < 0) return 1;
        if (rc == 1) {
          nsol++;
          if (!have || px_upow_solution_cmp(&s, &best) < 0) best = s;
          have = 1;
        }
      }
    cand_cpu += cpu_s() - c0;
    n_cand += 2u * (uint64_t)per_miner;
    if (e >= max_epoch / 2) {
      settled_cand += 2u * (uint64_t)per_miner;
      settled_sol += nsol;
    }
    if (have) {
      px_upow_net_t next;
      double k0 = cpu_s();
      if (px_upow_check(t, (uint64_t)e, &best, px_upow_task_ops(t), &next))
        return 1;
      check_cpu += cpu_s() - k0;
      n_checks++;
      px_upow_net_release(&parent);
      parent = next;
    }
    ep.margin = px_upow_next_margin(ep.margin, nsol, 4, 1000);
    px_upow_task_free(t);
    mine_cpu += cpu_s() - t0;
    for (int k = 0; k < n_marks; k++)
      if (e + 1 == marks[k]) {
        mark_cpu[k] = mine_cpu;
        mark_acc[k] = px_upow_net_correct(&parent, &te, NULL, te.n);
      }
  }

  double per_cand = cand_cpu / (double)n_cand;
  printf("\n1. candidates/s/core: %.1f  (%.2f ms each)\n", 1.0 / per_cand,
         per_cand * 1e3);
  double rate = settled_cand ? (double)settled_sol / settled_cand : 0;
  double per_check = n_checks ? check_cpu / n_checks : per_cand;
  printf("2. check vs find at margin %u: solution rate %.3f (%llu/%llu in the "
         "second half), check %.2f ms, mean find %.2f ms, ratio %.4f "
         "(1 : %.1f)\n",
         ep.margin, rate, (unsigned long long)settled_sol,
         (unsigned long long)settled_cand, per_check * 1e3,
         rate > 0 ? per_cand / rate * 1e3 : 0.0,
         rate > 0 ? per_check / (per_cand / rate) : 0.0,
         rate > 0 ? (per_cand / rate) / per_check : 0.0);

  /* Baseline: plain hill-climbing from the same genesis, same CPU time. */
  printf("3. usefulness (test accuracy; genesis %.2f%%):\n", pct(acc0, te.n));
  printf("   %-7s %10s %12s %14s\n", "epochs", "cpu s", "mining", "hill-climb");
  double hc_cpu = 0;
  uint64_t round = 0;
  for (int k = 0; k < n_marks; k++) {
    while (hc_cpu < mark_cpu[k]) {
      double t0 = cpu_s();
      if (px_upow_hill_climb(&genesis, &tr, 7 + round, 1, &ep.params)) return 1;
      round++;
      hc_cpu += cpu_s() - t0;
    }
    uint32_t hc = px_upow_net_correct(&genesis, &te, NULL, te.n);
    printf("   %-7d %10.2f %11.2f%% %13.2f%%\n", marks[k], mark_cpu[k],
           pct(mark_acc[k], te.n), pct(hc, te.n));
  }

  /* ---- 4: the same through the contract ---- */
  const px_upow_data_t *chain_tr;
  if (!real || px_upow_chain_dataset(&chain_tr)) {
    printf(
        "4. through the contract: skipped (needs the pinned Fashion-MNIST)\n");
  } else {
    double c_cpu[3] = {0};
    uint32_t c_acc[3] = {0};
    uint64_t n_sub = 0, n_ok = 0;
    if (contract_run(&te, max_epoch, per_miner, marks, n_marks, c_cpu, c_acc,
                     &n_sub, &n_ok)) {
      fprintf(stderr, "bench_upow: the contract run failed\n");
      return 1;
    }
    px_upow_dims_t cd;
    px_upow_params_t cp;
    px_upow_net_t hcn;
    px_upow_chain_dims(&cd);
    px_upow_chain_params(&cp);
    if (px_upow_net_random(&cd, PX_UPOW_GENESIS_SEED, &hcn)) return 1;
    printf("4. through the contract (%d blocks/epoch, %llu SUBMIT txs, %llu "
           "valid; test accuracy, genesis %.2f%%):\n",
           PX_UPOW_EPOCH_BLOCKS, (unsigned long long)n_sub,
           (unsigned long long)n_ok,
           pct(px_upow_net_correct(&hcn, &te, NULL, te.n), te.n));
    printf("   %-7s %10s %12s %14s\n", "epochs", "cpu s", "published",
           "hill-climb");
    double h_cpu = 0;
    uint64_t hr = 0;
    for (int k = 0; k < n_marks; k++) {
      while (h_cpu < c_cpu[k]) {
        double t0 = cpu_s();
        if (px_upow_hill_climb(&hcn, chain_tr, 7 + hr, 1, &cp)) return 1;
        hr++;
        h_cpu += cpu_s() - t0;
      }
      uint32_t hc = px_upow_net_correct(&hcn, &te, NULL, te.n);
      printf("   %-7d %10.2f %11.2f%% %13.2f%%\n", marks[k], c_cpu[k],
             pct(c_acc[k], te.n), pct(hc, te.n));
    }
    px_upow_net_release(&hcn);
  }
  px_upow_net_release(&parent);
  px_upow_net_release(&genesis);
  if (real) {
    px_upow_data_release(&tr);
    px_upow_data_release(&te);
  } else {
    free(tr.x);
    free(tr.y);
    free(te.x);
    free(te.y);
  }
  return 0;
}
