/*
 * test_upow.c — the uPoW core (include/plexus/upow.h, docs/upow.md).
 *
 * What is proven here: the same candidate gives identical network bytes,
 * hash and score on repeated runs and in a forked second process (with
 * PLEXUS_SIMD=scalar set there: the core is pure integer C, so SIMD level
 * and thread count cannot matter, and two threads on one task agree too);
 * a valid solution checks out, and a tampered nonce, score, key, network
 * hash or epoch is rejected, as is a solution for a past epoch, one over
 * the work bound and one that does not beat the margin; the difficulty
 * rule moves up on too many solutions and down on too few; the network
 * and solution encodings round-trip and their strict decoders reject every
 * truncation, trailing bytes, bad magic/version/trit/padding/source; the
 * safetensors export scores exactly like the network itself.  With the
 * Fashion-MNIST files installed, a short fixed-seed mining run (two miners,
 * several epochs, small subsets) never lowers the parent's held-out test
 * accuracy and raises it over the run.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "plexus/base.h"
#include "plexus/model_io.h"
#include "plexus/upow.h"

static void small_dims(px_upow_dims_t *d) {
  d->n_hidden = 48;
  d->fan_in = 8;
  d->out_fan_in = 40;
  d->ticks = 2;
}

/* Learnable synthetic data: random trits with a class-specific stripe of
 * +1 pixels, so hill-climbing has something to find. */
static void synth_data(px_upow_data_t *d, size_t n, uint64_t seed) {
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

static void synth_free(px_upow_data_t *d) {
  free(d->x);
  free(d->y);
}

typedef struct {
  px_upow_data_t data;
  px_upow_net_t parent;
  px_upow_epoch_t ep;
  px_upow_task_t *task;
} fix_t;

static void fix_init(fix_t *f, uint64_t epoch, uint32_t margin) {
  synth_data(&f->data, 600, 7);
  px_upow_dims_t d;
  small_dims(&d);
  assert_int_equal(px_upow_net_random(&d, 42, &f->parent), 0);
  memset(&f->ep, 0, sizeof f->ep);
  f->ep.epoch = epoch;
  memset(f->ep.epoch_seed, 0xA5, 32);
  memset(f->ep.eval_seed, 0x5A, 32);
  f->ep.margin = margin;
  f->ep.params.steps = 10;
  f->ep.params.window = 48;
  f->ep.params.eval_n = 200;
  assert_int_equal(px_upow_task_new(&f->ep, &f->parent, &f->data, &f->task), 0);
}

static void fix_close(fix_t *f) {
  px_upow_task_free(f->task);
  px_upow_net_release(&f->parent);
  synth_free(&f->data);
}

static void encode_sol(const px_upow_solution_t *s, uint8_t *out) {
  px_buf_t b;
  px_buf_init(&b, 0);
  assert_int_equal(px_upow_solution_encode(s, &b), 0);
  assert_int_equal(b.len, PX_UPOW_SOLUTION_LEN);
  memcpy(out, b.data, b.len);
  px_buf_release(&b);
}

/* Find a solution by nonce search (bounded). */
static int find_solution(const fix_t *f, const uint8_t pk[32],
                         px_upow_solution_t *sol) {
  for (uint64_t nonce = 0; nonce < 200; nonce++) {
    int rc = px_upow_candidate(f->task, pk, nonce, NULL, sol);
    assert_true(rc >= 0);
    if (rc == 1) return 1;
  }
  return 0;
}

typedef struct {
  const fix_t *f;
  px_upow_solution_t sol;
} thr_arg_t;

static void *thr_run(void *p) {
  thr_arg_t *a = p;
  uint8_t pk[32];
  memset(pk, 3, 32);
  px_upow_candidate(a->f->task, pk, 9, NULL, &a->sol);
  return NULL;
}

static void test_determinism(void **state) {
  (void)state;
  fix_t f;
  fix_init(&f, 3, 1);
  uint8_t pk[32];
  memset(pk, 3, 32);
  px_upow_solution_t s1, s2;
  px_upow_net_t n1, n2;
  assert_true(px_upow_candidate(f.task, pk, 9, &n1, &s1) >= 0);
  assert_true(px_upow_candidate(f.task, pk, 9, &n2, &s2) >= 0);
  assert_true(px_upow_net_equal(&n1, &n2));
  assert_false(px_upow_net_equal(&n1, &f.parent)); /* it did evolve */
  assert_memory_equal(&s1, &s2, sizeof s1);
  px_buf_t b1, b2;
  px_buf_init(&b1, 0);
  px_buf_init(&b2, 0);
  assert_int_equal(px_upow_net_encode(&n1, &b1), 0);
  assert_int_equal(px_upow_net_encode(&n2, &b2), 0);
  assert_int_equal(b1.len, b2.len);
  assert_memory_equal(b1.data, b2.data, b1.len);
  uint8_t h[32];
  assert_int_equal(px_upow_net_hash(&n1, h), 0);
  assert_memory_equal(h, s1.net_hash, 32);
  assert_int_equal(px_upow_net_correct(&n1, &f.data, NULL, f.data.n),
                   px_upow_net_correct(&n2, &f.data, NULL, f.data.n));

  /* A second process (PLEXUS_SIMD forced to scalar there). */
  int fd[2];
  assert_int_equal(pipe(fd), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(fd[0]);
    setenv("PLEXUS_SIMD", "scalar", 1);
    px_upow_solution_t cs;
    uint8_t enc[PX_UPOW_SOLUTION_LEN];
    px_upow_candidate(f.task, pk, 9, NULL, &cs);
    px_buf_t b;
    px_buf_init(&b, 0);
    px_upow_solution_encode(&cs, &b);
    memcpy(enc, b.data, sizeof enc);
    ssize_t w = write(fd[1], enc, sizeof enc);
    _exit(w == (ssize_t)sizeof enc ? 0 : 1);
  }
  close(fd[1]);
  uint8_t child[PX_UPOW_SOLUTION_LEN], mine[PX_UPOW_SOLUTION_LEN];
  size_t got = 0;
  while (got < sizeof child) {
    ssize_t r = read(fd[0], child + got, sizeof child - got);
    if (r <= 0) break;
    got += (size_t)r;
  }
  close(fd[0]);
  int st;
  assert_int_equal(waitpid(pid, &st, 0), pid);
  assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  assert_int_equal(got, sizeof child);
  encode_sol(&s1, mine);
  assert_memory_equal(child, mine, sizeof mine);

  /* Two threads on one (read-only) task agree. */
  thr_arg_t a[2] = {{&f, {0}}, {&f, {0}}};
  pthread_t th[2];
  for (int i = 0; i < 2; i++)
    assert_int_equal(pthread_create(&th[i], NULL, thr_run, &a[i]), 0);
  for (int i = 0; i < 2; i++)
    pthread_join(th[i], NULL);
  assert_memory_equal(&a[0].sol, &s1, sizeof s1);
  assert_memory_equal(&a[1].sol, &s1, sizeof s1);

  /* Another nonce or key gives another network. */
  px_upow_solution_t s3;
  assert_true(px_upow_candidate(f.task, pk, 10, NULL, &s3) >= 0);
  assert_memory_not_equal(s3.net_hash, s1.net_hash, 32);

  px_buf_release(&b1);
  px_buf_release(&b2);
  px_upow_net_release(&n1);
  px_upow_net_release(&n2);
  fix_close(&f);
}

static void test_check(void **state) {
  (void)state;
  fix_t f;
  fix_init(&f, 5, 1);
  uint8_t pk[32];
  memset(pk, 7, 32);
  px_upow_solution_t sol;
  assert_true(find_solution(&f, pk, &sol));
  assert_true(sol.score >= px_upow_task_parent_score(f.task) + 1);
  px_upow_net_t n;
  assert_int_equal(px_upow_check(f.task, 5, &sol, 0, &n), 0);
  uint8_t h[32];
  assert_int_equal(px_upow_net_hash(&n, h), 0);
  assert_memory_equal(h, sol.net_hash, 32);
  px_upow_net_release(&n);
  uint64_t ops = px_upow_task_ops(f.task);
  assert_int_equal(px_upow_check(f.task, 5, &sol, ops, NULL), 0);
  assert_int_equal(px_upow_check(f.task, 5, &sol, ops - 1, NULL), PX_ELIMIT);

  px_upow_solution_t t = sol;
  t.nonce++;
  assert_int_equal(px_upow_check(f.task, 5, &t, 0, NULL), PX_EAUTH);
  t = sol;
  t.score++;
  assert_int_equal(px_upow_check(f.task, 5, &t, 0, NULL), PX_EAUTH);
  t = sol;
  t.score--;
  assert_int_equal(px_upow_check(f.task, 5, &t, 0, NULL), PX_EAUTH);
  t = sol;
  t.miner_pk[31] ^= 1;
  assert_int_equal(px_upow_check(f.task, 5, &t, 0, NULL), PX_EAUTH);
  t = sol;
  t.net_hash[0] ^= 1;
  assert_int_equal(px_upow_check(f.task, 5, &t, 0, NULL), PX_EAUTH);
  t = sol;
  t.epoch = 6; /* claims the current epoch, but was mined for 5 */
  assert_int_equal(px_upow_check(f.task, 6, &t, 0, NULL), PX_ESTATE);
  t.epoch = 4;
  assert_int_equal(px_upow_check(f.task, 5, &t, 0, NULL), PX_ESTATE);
  /* A past epoch: the chain has moved on to 6. */
  assert_int_equal(px_upow_check(f.task, 6, &sol, 0, NULL), PX_ESTATE);

  /* The same nonce against a task with another epoch seed: not valid. */
  px_upow_epoch_t ep2 = f.ep;
  ep2.epoch_seed[0] ^= 1;
  px_upow_task_t *t2;
  assert_int_equal(px_upow_task_new(&ep2, &f.parent, &f.data, &t2), 0);
  assert_int_equal(px_upow_check(t2, 5, &sol, 0, NULL), PX_EAUTH);
  px_upow_task_free(t2);

  /* Honest but not good enough: margin far above anything reachable. */
  px_upow_epoch_t ep3 = f.ep;
  ep3.margin = 1000;
  px_upow_task_t *t3;
  assert_int_equal(px_upow_task_new(&ep3, &f.parent, &f.data, &t3), 0);
  px_upow_solution_t weak;
  assert_int_equal(px_upow_candidate(t3, pk, 0, NULL, &weak), 0);
  assert_int_equal(px_upow_check(t3, 5, &weak, 0, NULL), PX_ERANGE);
  px_upow_task_free(t3);

  /* Bad task parameters. */
  px_upow_epoch_t bad = f.ep;
  px_upow_task_t *tb;
  bad.margin = 0;
  assert_int_equal(px_upow_task_new(&bad, &f.parent, &f.data, &tb), PX_EINVAL);
  bad = f.ep;
  bad.params.eval_n = (uint32_t)f.data.n + 1;
  assert_int_equal(px_upow_task_new(&bad, &f.parent, &f.data, &tb), PX_EINVAL);
  bad = f.ep;
  bad.params.steps = 0;
  assert_int_equal(px_upow_task_new(&bad, &f.parent, &f.data, &tb), PX_EINVAL);
  fix_close(&f);
}

static void test_difficulty(void **state) {
  (void)state;
  assert_int_equal(px_upow_next_margin(5, 20, 4, 64), 6); /* too many */
  assert_int_equal(px_upow_next_margin(5, 7, 4, 64), 6);
  assert_int_equal(px_upow_next_margin(5, 6, 4, 64), 5); /* near target */
  assert_int_equal(px_upow_next_margin(5, 4, 4, 64), 5);
  assert_int_equal(px_upow_next_margin(5, 2, 4, 64), 5);
  assert_int_equal(px_upow_next_margin(5, 1, 4, 64), 4); /* too few */
  assert_int_equal(px_upow_next_margin(5, 0, 4, 64), 4);
  assert_int_equal(px_upow_next_margin(1, 0, 4, 64), 1);    /* floor */
  assert_int_equal(px_upow_next_margin(64, 99, 4, 64), 64); /* cap */
  assert_int_equal(px_upow_next_margin(9, 0, 4, 0), 1);

  /* Closed loop on a real task: raising the margin cuts solutions. */
  fix_t f;
  fix_init(&f, 1, 1);
  uint8_t pk[32];
  memset(pk, 1, 32);
  uint32_t scores[24], parent = px_upow_task_parent_score(f.task);
  for (uint64_t i = 0; i < 24; i++) {
    px_upow_solution_t s;
    assert_true(px_upow_candidate(f.task, pk, i, NULL, &s) >= 0);
    scores[i] = s.score;
  }
  uint32_t margin = 1;
  for (int round = 0; round < 8; round++) {
    uint32_t n = 0;
    for (int i = 0; i < 24; i++)
      n += scores[i] >= parent + margin;
    uint32_t next = px_upow_next_margin(margin, n, 2, 1000);
    if (2 * n > 3 * 2) assert_true(next > margin);
    if (2 * n < 2 && margin > 1) assert_true(next < margin);
    margin = next;
  }
  fix_close(&f);
}

static void test_net_encoding(void **state) {
  (void)state;
  px_upow_dims_t d;
  small_dims(&d);
  d.fan_in = 7; /* odd trit count: padding bits in play */
  px_upow_net_t n, m;
  assert_int_equal(px_upow_net_random(&d, 5, &n), 0);
  px_buf_t b;
  px_buf_init(&b, 0);
  assert_int_equal(px_upow_net_encode(&n, &b), 0);
  assert_int_equal(px_upow_net_decode(b.data, b.len, &m), 0);
  assert_true(px_upow_net_equal(&n, &m));
  px_upow_net_release(&m);
  uint8_t *c = malloc(b.len + 1);
  for (size_t i = 0; i < b.len; i++) {
    memcpy(c, b.data, i);
    assert_true(px_upow_net_decode(c, i, &m) < 0);
    assert_null(m.thr);
  }
  memcpy(c, b.data, b.len);
  c[b.len] = 0;
  assert_int_equal(px_upow_net_decode(c, b.len + 1, &m), PX_ETRAILING);
  c[0] = 'X';
  assert_int_equal(px_upow_net_decode(c, b.len, &m), PX_EDECODE);
  memcpy(c, b.data, b.len);
  c[4] = 2;
  assert_int_equal(px_upow_net_decode(c, b.len, &m), PX_EVERSION);
  memcpy(c, b.data, b.len);
  c[10] = 0; /* ticks */
  assert_int_equal(px_upow_net_decode(c, b.len, &m), PX_ERANGE);
  memcpy(c, b.data, b.len);
  c[b.len - 1] |= 0xC0; /* padding bits */
  assert_int_equal(px_upow_net_decode(c, b.len, &m), PX_EDECODE);
  memcpy(c, b.data, b.len);
  c[b.len - 2] |= 0x03; /* trit code 11 */
  assert_int_equal(px_upow_net_decode(c, b.len, &m), PX_EDECODE);
  memcpy(c, b.data, b.len);
  c[11] = 0xff; /* threshold > fan_in */
  c[12] = 0xff;
  assert_int_equal(px_upow_net_decode(c, b.len, &m), PX_EDECODE);
  memcpy(c, b.data, b.len);
  size_t src0 = 11 + 2u * d.n_hidden;
  c[src0] = 0xff; /* source index past the state vector */
  c[src0 + 1] = 0xff;
  assert_int_equal(px_upow_net_decode(c, b.len, &m), PX_EDECODE);
  free(c);
  px_buf_release(&b);
  px_upow_net_release(&n);
  px_upow_net_release(&n); /* twice: harmless */
  assert_int_equal(px_upow_dims_check(&d), 0);
  d.n_hidden = 0;
  assert_int_equal(px_upow_net_random(&d, 1, &n), PX_ERANGE);
}

static void test_solution_encoding(void **state) {
  (void)state;
  px_upow_solution_t s, t;
  memset(&s, 0, sizeof s);
  s.epoch = 0x0102030405060708ull;
  memset(s.miner_pk, 0x33, 32);
  s.nonce = 77;
  s.score = 901;
  memset(s.net_hash, 0x44, 32);
  uint8_t enc[PX_UPOW_SOLUTION_LEN + 1];
  encode_sol(&s, enc);
  assert_int_equal(px_upow_solution_decode(enc, PX_UPOW_SOLUTION_LEN, &t), 0);
  assert_memory_equal(&s, &t, sizeof s);
  for (size_t i = 0; i < PX_UPOW_SOLUTION_LEN; i++)
    assert_true(px_upow_solution_decode(enc, i, &t) < 0);
  enc[PX_UPOW_SOLUTION_LEN] = 0;
  assert_int_equal(px_upow_solution_decode(enc, sizeof enc, &t), PX_ETRAILING);
  enc[4] = 9;
  assert_int_equal(px_upow_solution_decode(enc, PX_UPOW_SOLUTION_LEN, &t),
                   PX_EVERSION);
  enc[0] = 'Q';
  assert_int_equal(px_upow_solution_decode(enc, PX_UPOW_SOLUTION_LEN, &t),
                   PX_EDECODE);
  /* Ranking: score, then hash, pk, nonce. */
  t = s;
  t.score++;
  assert_true(px_upow_solution_cmp(&t, &s) < 0);
  t = s;
  t.net_hash[0]--;
  assert_true(px_upow_solution_cmp(&t, &s) < 0);
  t = s;
  t.nonce++;
  assert_true(px_upow_solution_cmp(&t, &s) > 0);
  assert_int_equal(px_upow_solution_cmp(&s, &s), 0);
}

static void test_export(void **state) {
  (void)state;
  /* A fake 28x28 split of random images. */
  enum { N = 120 };
  uint8_t *img = malloc((size_t)N * 784), lab[N];
  px_rng_t r;
  px_rng_seed(&r, 11);
  px_rng_fill(&r, img, (size_t)N * 784);
  for (int i = 0; i < N; i++)
    lab[i] = (uint8_t)px_rng_below(&r, 10);
  px_mnist_t m;
  memset(&m, 0, sizeof m);
  m.images.data = img;
  m.labels.data = lab;
  m.n = N;
  m.rows = m.cols = 28;
  px_upow_data_t d;
  assert_int_equal(px_upow_data_from_mnist(&m, 0, &d), 0);
  px_upow_dims_t dims;
  px_upow_dims_default(&dims);
  px_upow_net_t n;
  assert_int_equal(px_upow_net_random(&dims, 3, &n), 0);
  px_upow_params_t p = {4, 32, 1};
  assert_int_equal(px_upow_hill_climb(&n, &d, 1, 2, &p), 0);
  char dir[] = "/tmp/px_upow_XXXXXX", st[64], cfg[64];
  assert_non_null(mkdtemp(dir));
  snprintf(st, sizeof st, "%s/model.safetensors", dir);
  snprintf(cfg, sizeof cfg, "%s/config.json", dir);
  assert_int_equal(px_upow_net_export_safetensors(&n, st, cfg), 0);
  uint32_t ok = 0, total = 0;
  assert_int_equal(px_upow_eval_export(st, cfg, &m, 0, &ok, &total), 0);
  assert_int_equal(total, N);
  assert_int_equal(ok, px_upow_net_correct(&n, &d, NULL, N));
  /* Per-image agreement, not only the count. */
  for (int i = 0; i < N; i++) {
    uint32_t o1, t1;
    px_mnist_t one = m;
    one.images.data = img + (size_t)i * 784;
    one.labels.data = lab + i;
    one.n = 1;
    assert_int_equal(px_upow_eval_export(st, cfg, &one, 0, &o1, &t1), 0);
    assert_int_equal(o1,
                     px_upow_net_predict(&n, d.x + i * PX_UPOW_N_IN) == lab[i]);
  }
  assert_int_equal(
      px_upow_eval_export(st, "/nonexistent/c.json", &m, 0, &ok, &total) < 0,
      1);
  unlink(st);
  unlink(cfg);
  rmdir(dir);
  px_upow_net_release(&n);
  px_upow_data_release(&d);
  free(img);
}

static void test_mining_run(void **state) {
  (void)state;
  px_mnist_t tr, te;
  if (px_mnist_load(PX_FASHION_MNIST_DIR, "train", &tr)) skip();
  assert_int_equal(px_mnist_load(PX_FASHION_MNIST_DIR, "t10k", &te), 0);
  px_upow_data_t d, dt;
  assert_int_equal(px_upow_data_from_mnist(&tr, 6000, &d), 0);
  assert_int_equal(px_upow_data_from_mnist(&te, 1000, &dt), 0);
  px_upow_dims_t dims;
  small_dims(&dims);
  px_upow_net_t parent;
  assert_int_equal(px_upow_net_random(&dims, 1, &parent), 0);
  uint32_t acc0 = px_upow_net_correct(&parent, &dt, NULL, dt.n), acc = acc0;
  px_upow_epoch_t ep;
  memset(&ep, 0, sizeof ep);
  ep.margin = 1;
  ep.params.steps = 12;
  ep.params.window = 64;
  ep.params.eval_n = 400;
  uint8_t pk[2][32];
  memset(pk[0], 0x11, 32);
  memset(pk[1], 0x22, 32);
  for (uint64_t e = 0; e < 5; e++) {
    ep.epoch = e;
    memset(ep.epoch_seed, (int)e, 32);
    memset(ep.eval_seed, (int)(e + 100), 32);
    px_upow_task_t *t;
    assert_int_equal(px_upow_task_new(&ep, &parent, &d, &t), 0);
    px_upow_solution_t best;
    int have = 0;
    uint32_t nsol = 0;
    for (uint64_t nonce = 0; nonce < 6; nonce++)
      for (int m = 0; m < 2; m++) { /* two miners, interleaved */
        px_upow_solution_t s;
        int rc = px_upow_candidate(t, pk[m], nonce, NULL, &s);
        assert_true(rc >= 0);
        if (rc != 1) continue;
        nsol++;
        if (!have || px_upow_solution_cmp(&s, &best) < 0) best = s;
        have = 1;
      }
    if (have) { /* the validators' side: check, then adopt */
      px_upow_net_t next;
      assert_int_equal(px_upow_check(t, e, &best, 0, &next), 0);
      px_upow_net_release(&parent);
      parent = next;
    }
    uint32_t a = px_upow_net_correct(&parent, &dt, NULL, dt.n);
    print_message("epoch %u: %u solutions, margin %u, test %u/%zu\n",
                  (unsigned)e, nsol, ep.margin, a, dt.n);
    assert_true(a >= acc);
    acc = a;
    ep.margin = px_upow_next_margin(ep.margin, nsol, 3, 64);
    px_upow_task_free(t);
  }
  assert_true(acc > acc0);
  px_upow_net_release(&parent);
  px_upow_data_release(&d);
  px_upow_data_release(&dt);
  px_mnist_release(&tr);
  px_mnist_release(&te);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_determinism),
      cmocka_unit_test(test_check),
      cmocka_unit_test(test_difficulty),
      cmocka_unit_test(test_net_encoding),
      cmocka_unit_test(test_solution_encoding),
      cmocka_unit_test(test_export),
      cmocka_unit_test(test_mining_run),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
