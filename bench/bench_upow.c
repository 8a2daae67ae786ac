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
#include "plexus/upow.h"

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
