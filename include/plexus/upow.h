/*
 * plexus/upow.h — Useful Proof of Work: the pure, deterministic core
 * (docs/upow.md, issue 6).
 *
 * Miners evolve open ternary neural networks that classify Fashion-MNIST.
 * Everything here is integer-only C with no threads, clocks, I/O (except the
 * explicit export/eval helpers) or floats, so a candidate's network bytes
 * and score are bit-identical on every machine, build and SIMD level.
 *
 * The pieces:
 *  - px_upow_data_t: a dataset ternarised once (28x28 u8 -> 2x2 pooled
 *    14x14 trits) plus labels.
 *  - px_upow_net_t: the network family (sparse trit synapses, integer
 *    thresholds, ternary states, PX_UPOW ticks of recurrence, 10 output
 *    neurons accumulated over ticks, argmax with ties to the lowest index).
 *    Canonical binary encoding (strict decoder with caps), BLAKE2b hash,
 *    safetensors + config.json export and a scorer over the export.
 *  - px_upow_task_t: one epoch's task (epoch, seeds, difficulty margin,
 *    parameters, parent network, training data); it fixes the evaluation
 *    subset (from eval_seed) and the parent's score once.
 *  - candidates: (task, miner pk, nonce) -> seeded hill-climbing from the
 *    parent -> (network, score, network hash).  A solution carries (epoch,
 *    pk, nonce, score, network hash); checking re-runs that one candidate
 *    under a hard bound on the work.
 *
 * Thread rules: a task is read-only after px_upow_task_new, so any number
 * of threads may run candidates on one task at once.  Nets are plain values
 * owned by the caller (px_upow_net_release frees their contents).
 */
#ifndef PLEXUS_UPOW_H
#define PLEXUS_UPOW_H

#include <stddef.h>
#include <stdint.h>

#include "plexus/base.h"
#include "plexus/model_io.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- the network family -------------------------------------------------- */

#define PX_UPOW_SIDE 14 /* input is 14x14 after 2x2 pooling */
#define PX_UPOW_N_IN (PX_UPOW_SIDE * PX_UPOW_SIDE) /* 196 */
#define PX_UPOW_N_OUT 10
#define PX_UPOW_MAX_HIDDEN 1024
#define PX_UPOW_MAX_FAN_IN 64
#define PX_UPOW_MAX_OUT_FAN_IN 127
#define PX_UPOW_MAX_TICKS 8
#define PX_UPOW_NET_MAX_BYTES (1u << 20) /* cap on an encoding */
#define PX_UPOW_NET_VERSION 1

/* Pixel ternarisation of a 2x2 pooled sum s (0..1020): s < 4*PX_UPOW_LO ->
 * -1 (background), s >= 4*PX_UPOW_HI -> +1 (ink), else 0. */
#define PX_UPOW_LO 32
#define PX_UPOW_HI 128

typedef struct {
  uint16_t n_hidden;   /* 1 .. PX_UPOW_MAX_HIDDEN */
  uint8_t fan_in;      /* synapses per hidden neuron, 1 .. 64 */
  uint16_t out_fan_in; /* synapses per output neuron, 1 .. 127 */
  uint8_t ticks;       /* recurrent ticks, 1 .. PX_UPOW_MAX_TICKS */
} px_upow_dims_t;

/* The default family member: 256 hidden, fan-in 16, outputs fan-in 96,
 * 3 ticks. */
void px_upow_dims_default(px_upow_dims_t *d);
/* 0 or PX_ERANGE if a field is outside its range. */
int px_upow_dims_check(const px_upow_dims_t *d);

/* Sources index the state vector v = [196 input trits | n_hidden states]. */
typedef struct {
  px_upow_dims_t dims;
  int16_t *thr;   /* [n_hidden], 0 .. fan_in */
  uint16_t *hsrc; /* [n_hidden][fan_in] */
  int8_t *hw;     /* [n_hidden][fan_in], each -1, 0, +1 */
  uint16_t *osrc; /* [10][out_fan_in] */
  int8_t *ow;     /* [10][out_fan_in] */
} px_upow_net_t;

/* A seeded random network (the genesis parent).  PX_ERANGE, PX_ENOMEM.
 * On success *out owns its arrays: px_upow_net_release. */
int px_upow_net_random(const px_upow_dims_t *dims, uint64_t seed,
                       px_upow_net_t *out);
int px_upow_net_copy(px_upow_net_t *dst, const px_upow_net_t *src);
void px_upow_net_release(px_upow_net_t *n); /* zeroes; NULL contents ok */
/* Integer operations of one forward pass (the unit of the work bound). */
uint64_t px_upow_net_ops(const px_upow_dims_t *d);
/* Class 0..9 for one ternarised image x[196]. */
int px_upow_net_predict(const px_upow_net_t *n, const int8_t *x);

/* Canonical encoding (docs/upow.md): "PXUN", u8 version, dims, thresholds,
 * sources (u16 LE), then all trits packed 4 per byte (00=0, 01=+1, 10=-1;
 * 11 and non-zero padding are rejected).  One network has one encoding. */
int px_upow_net_encode(const px_upow_net_t *n, px_buf_t *out);
/* Strict: PX_ETRUNC, PX_ETRAILING, PX_EDECODE (magic, trit code 11, bad
 * padding, source or threshold out of range), PX_EVERSION, PX_ERANGE
 * (dims), PX_ENOMEM.  *out is zeroed on error. */
int px_upow_net_decode(const void *data, size_t len, px_upow_net_t *out);
/* BLAKE2b-256 of the canonical encoding. */
int px_upow_net_hash(const px_upow_net_t *n, uint8_t out[32]);
/* 1 when the two networks are identical. */
int px_upow_net_equal(const px_upow_net_t *a, const px_upow_net_t *b);

/* Export as safetensors (dense I8 tensors "hidden.weight" [H][196+H],
 * "hidden.threshold" [H], "output.weight" [10][196+H]; duplicate synapses
 * summed) with metadata, plus a config.json naming the family. */
int px_upow_net_export_safetensors(const px_upow_net_t *n, const char *st_path,
                                   const char *config_path);
/* Score an exported model on a Fashion-MNIST split (the scorer `plexus eval`
 * will call): reads config.json (ticks) and the safetensors, ternarises each
 * image and counts correct predictions.  PX_EDECODE for a wrong family. */
int px_upow_eval_export(const char *st_path, const char *config_path,
                        const px_mnist_t *m, size_t max_images,
                        uint32_t *correct, uint32_t *total);

/* ---- data ---------------------------------------------------------------- */

typedef struct {
  int8_t *x;  /* [n][196] trits */
  uint8_t *y; /* [n] labels 0..9 */
  size_t n;
} px_upow_data_t;

/* Ternarise the first min(max_n, m->n) images (max_n 0 = all).  The images
 * must be 28x28 (PX_EINVAL).  px_upow_data_release frees. */
int px_upow_data_from_mnist(const px_mnist_t *m, size_t max_n,
                            px_upow_data_t *out);
void px_upow_data_release(px_upow_data_t *d);
void px_upow_ternarise(const uint8_t *img28, int8_t *x196);
/* Correct predictions over idx[0..k) (idx NULL: the first k images). */
uint32_t px_upow_net_correct(const px_upow_net_t *n, const px_upow_data_t *d,
                             const uint32_t *idx, size_t k);

/* ---- epochs, candidates, solutions --------------------------------------- */

typedef struct {
  uint32_t steps;  /* mutation steps per candidate, 1 .. 4096 */
  uint32_t window; /* training images per step, 1 .. 4096 */
  uint32_t eval_n; /* evaluation subset size, 1 .. 65536 */
} px_upow_params_t;

void px_upow_params_default(px_upow_params_t *p); /* 24, 128, 1024 */

typedef struct {
  uint64_t epoch;
  uint8_t epoch_seed[32]; /* fixed with the task */
  uint8_t eval_seed[32];  /* revealed after the task is fixed */
  uint32_t margin;        /* difficulty: score >= parent + margin, >= 1 */
  px_upow_params_t params;
} px_upow_epoch_t;

typedef struct px_upow_task px_upow_task_t;

/* Build a task.  parent and data are borrowed: keep them alive and
 * unchanged until px_upow_task_free.  Computes the evaluation subset
 * (eval_n distinct indices drawn from BLAKE2b(eval_seed, epoch)) and the
 * parent's score.  PX_EINVAL (margin 0, params out of range, eval_n > data
 * size, empty data), PX_ENOMEM. */
int px_upow_task_new(const px_upow_epoch_t *ep, const px_upow_net_t *parent,
                     const px_upow_data_t *data, px_upow_task_t **out);
void px_upow_task_free(px_upow_task_t *t); /* NULL ok */
uint32_t px_upow_task_parent_score(const px_upow_task_t *t);
const px_upow_epoch_t *px_upow_task_epoch(const px_upow_task_t *t);
/* Operations one candidate costs (steps*window + eval_n forward passes). */
uint64_t px_upow_task_ops(const px_upow_task_t *t);

typedef struct {
  uint64_t epoch;
  uint8_t miner_pk[32];
  uint64_t nonce;
  uint32_t score;       /* claimed */
  uint8_t net_hash[32]; /* BLAKE2b of the candidate network's encoding */
} px_upow_solution_t;

/* Run one candidate: net_out (NULL ok; else released first by the caller,
 * then owned by the caller) receives the network; *sol is filled whether or
 * not it is a solution.  Returns 1 if score >= parent + margin, 0 if not,
 * negative PX_ENOMEM. */
int px_upow_candidate(const px_upow_task_t *t, const uint8_t miner_pk[32],
                      uint64_t nonce, px_upow_net_t *net_out,
                      px_upow_solution_t *sol);

/* The same, pre-emptible: stop(ud) is polled before the climb's first
 * window evaluation, before each mutation step and before each
 * `window`-image chunk of the final scoring (so at most
 * `window` forward passes apart, ~2 ms for the default parameters); when it
 * returns nonzero the work is abandoned and
 * PX_EBUSY returned (nothing in *sol or net_out).  The result, when not
 * stopped, is bit-identical to px_upow_candidate's. */
int px_upow_candidate_ex(const px_upow_task_t *t, const uint8_t miner_pk[32],
                         uint64_t nonce, px_upow_net_t *net_out,
                         px_upow_solution_t *sol, int (*stop)(void *ud),
                         void *ud);

/* Plain seeded hill-climbing (no network, no selection): `rounds` rounds,
 * each p->steps mutation steps on a fresh window of p->window images, in
 * place.  The baseline of the usefulness benchmark.  PX_EINVAL, PX_ENOMEM. */
int px_upow_hill_climb(px_upow_net_t *n, const px_upow_data_t *d, uint64_t seed,
                       uint32_t rounds, const px_upow_params_t *p);

/* Check a solution against the current epoch's task: PX_ESTATE if
 * sol->epoch or the task's epoch is not current_epoch (past or future),
 * PX_ELIMIT if one candidate would cost more than max_ops (0 = no bound;
 * nothing is run), PX_EAUTH if the re-run gives another score or network
 * hash (tampered nonce, key, score or epoch seed), PX_ERANGE if it checks
 * out but does not beat the parent by the margin.  0: valid; net_out (NULL
 * ok) then holds the network. */
int px_upow_check(const px_upow_task_t *t, uint64_t current_epoch,
                  const px_upow_solution_t *sol, uint64_t max_ops,
                  px_upow_net_t *net_out);

#define PX_UPOW_SOLUTION_VERSION 1
#define PX_UPOW_SOLUTION_LEN                                                   \
  89 /* "PXUS" u8 ver, u64 epoch, pk, u64 nonce, u32 score, hash */
/* Canonical fixed-size encoding; decode is strict (PX_ETRUNC, PX_ETRAILING,
 * PX_EDECODE magic/padding, PX_EVERSION). */
int px_upow_solution_encode(const px_upow_solution_t *s, px_buf_t *out);
int px_upow_solution_decode(const void *data, size_t len,
                            px_upow_solution_t *out);
/* Order for picking an epoch's winner: higher score first, then lower net
 * hash, then lower pk, then lower nonce.  <0 when a ranks before b. */
int px_upow_solution_cmp(const px_upow_solution_t *a,
                         const px_upow_solution_t *b);

/* Difficulty rule: with n solutions in the epoch just ended and a target,
 * margin + 1 if 2n > 3*target, margin - 1 (never below 1) if 2n < target,
 * else unchanged; capped at max_margin (>= 1). */
uint32_t px_upow_next_margin(uint32_t margin, uint32_t n_solutions,
                             uint32_t target, uint32_t max_margin);

#ifdef __cplusplus
}
#endif
#endif /* PLEXUS_UPOW_H */
