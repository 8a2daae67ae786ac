/*
 * pool.c — the compute context and its persistent thread pool.
 *
 * The pool keeps threads-1 workers parked on a condition variable.  A run
 * publishes (fn, arg, ntasks) under the mutex and bumps a generation
 * counter; every thread, the caller included (worker 0), then takes task
 * indices from a shared counter until none are left.  The caller returns
 * once every worker has reported the generation finished, so no task of a
 * run outlives px_pool_run.  Tasks only ever write disjoint outputs (the
 * kernels split rows or column panels), never a shared reduction, so which
 * thread runs which task cannot change a result.
 *
 * One caller at a time per context: a px_compute_t is not re-entrant.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compute/compute_internal.h"
#include "base/px_internal.h"

struct px_pool {
  int threads;
  pthread_t tid[PX_COMPUTE_MAX_THREADS];
  int started;
  pthread_mutex_t mu;
  pthread_cond_t wake, done;
  uint64_t gen; /* bumped per run */
  int stop;
  int active; /* workers still inside the current run */
  px_task_fn fn;
  void *arg;
  int ntasks;
  atomic_int next;
};

typedef struct {
  px_pool_t *p;
  int id;
} worker_arg_t;

static void pool_work(px_pool_t *p, int worker) {
  for (;;) {
    int t = atomic_fetch_add(&p->next, 1);
    if (t >= p->ntasks) break;
    p->fn(p->arg, t, worker);
  }
}

static void *pool_main(void *argp) {
  px_pool_t *p = ((worker_arg_t *)argp)->p;
  int id = ((worker_arg_t *)argp)->id;
  px_free(argp);
  uint64_t seen = 0;
  pthread_mutex_lock(&p->mu);
  for (;;) {
    while (!p->stop && p->gen == seen)
      pthread_cond_wait(&p->wake, &p->mu);
    if (p->stop) break;
    seen = p->gen;
    pthread_mutex_unlock(&p->mu);
    pool_work(p, id);
    pthread_mutex_lock(&p->mu);
    if (--p->active == 0) pthread_cond_signal(&p->done);
  }
  pthread_mutex_unlock(&p->mu);
  return NULL;
}

int px_pool_new(int threads, px_pool_t **out) {
  *out = NULL;
  px_pool_t *p = px_calloc(1, sizeof *p);
  if (!p) return PX_ENOMEM;
  p->threads = threads;
  pthread_mutex_init(&p->mu, NULL);
  pthread_cond_init(&p->wake, NULL);
  pthread_cond_init(&p->done, NULL);
  atomic_init(&p->next, 0);
  for (int i = 1; i < threads; i++) {
    worker_arg_t *wa = px_malloc(sizeof *wa);
    if (!wa) {
      px_pool_free(p);
      return PX_ENOMEM;
    }
    wa->p = p;
    wa->id = i;
    if (pthread_create(&p->tid[i], NULL, pool_main, wa) != 0) {
      px_free(wa);
      px_pool_free(p);
      return PX_ENOMEM;
    }
    p->started = i;
  }
  *out = p;
  return 0;
}

void px_pool_free(px_pool_t *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mu);
  p->stop = 1;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);
  for (int i = 1; i <= p->started; i++)
    pthread_join(p->tid[i], NULL);
  pthread_cond_destroy(&p->wake);
  pthread_cond_destroy(&p->done);
  pthread_mutex_destroy(&p->mu);
  px_free(p);
}

void px_pool_run(px_pool_t *p, int ntasks, px_task_fn fn, void *arg) {
  pthread_mutex_lock(&p->mu);
  p->fn = fn;
  p->arg = arg;
  p->ntasks = ntasks;
  atomic_store(&p->next, 0);
  p->active = p->threads - 1;
  p->gen++;
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mu);
  pool_work(p, 0);
  pthread_mutex_lock(&p->mu);
  while (p->active > 0)
    pthread_cond_wait(&p->done, &p->mu);
  pthread_mutex_unlock(&p->mu);
}

/* ---- the context --------------------------------------------------------- */

static int env_simd(int *out) {
  const char *s = getenv("PLEXUS_SIMD");
  if (!s || !*s) return 0;
  if (strcmp(s, "scalar") == 0)
    *out = PX_SIMD_SCALAR;
  else if (strcmp(s, "avx2") == 0)
    *out = PX_SIMD_AVX2;
  else if (strcmp(s, "avx512") == 0)
    *out = PX_SIMD_AVX512;
  else {
    PX_LOGE("compute", "PLEXUS_SIMD=%s: expected scalar, avx2 or avx512", s);
    return PX_EINVAL;
  }
  return 1;
}

static int default_threads(void) {
  const char *s = getenv("PLEXUS_THREADS");
  if (s && *s) {
    uint64_t v;
    if (px_parse_u64(s, &v) == 0 && v >= 1 && v <= PX_COMPUTE_MAX_THREADS)
      return (int)v;
    PX_LOGW("compute", "PLEXUS_THREADS=%s ignored: expected 1..%d", s,
            PX_COMPUTE_MAX_THREADS);
  }
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1) n = 1;
  if (n > PX_COMPUTE_MAX_THREADS) n = PX_COMPUTE_MAX_THREADS;
  return (int)n;
}

int px_compute_new(const px_compute_opts_t *opts, px_compute_t **out) {
  *out = NULL;
  int simd = opts ? opts->simd : -1;
  int threads = opts ? opts->threads : 0;
  if (simd < 0) {
    int rc = env_simd(&simd);
    if (rc < 0) return rc;
    if (rc == 0) simd = px_cpu_best_simd();
  }
  if (simd < PX_SIMD_SCALAR || simd > PX_SIMD_AVX512) {
    PX_LOGE("compute", "unknown SIMD level %d", simd);
    return PX_EINVAL;
  }
  if (simd > (int)px_cpu_best_simd()) {
    PX_LOGE("compute", "SIMD level %s is not supported by this CPU (best: %s)",
            px_simd_name((px_simd_t)simd), px_simd_name(px_cpu_best_simd()));
    return PX_EINVAL;
  }
  if (threads < 0 || threads > PX_COMPUTE_MAX_THREADS) return PX_EINVAL;
  if (threads == 0) threads = default_threads();

  px_compute_t *c = px_calloc(1, sizeof *c);
  if (!c) return PX_ENOMEM;
  c->simd = (px_simd_t)simd;
  c->threads = threads;
  size_t bytes = (size_t)threads * PX_SCRATCH_FLOATS * sizeof(float) + 64;
  c->scratch_raw = px_malloc(bytes);
  c->q8a = px_malloc(PX_Q8_SCRATCH_BYTES);
  c->q8s = px_malloc(PX_Q8_SCRATCH_BYTES * sizeof(float));
  c->q8sum = px_malloc(PX_Q8_SCRATCH_BYTES * sizeof(int32_t));
  if (!c->scratch_raw || !c->q8a || !c->q8s || !c->q8sum) {
    px_compute_free(c);
    return PX_ENOMEM;
  }
  c->scratch = (float *)(((uintptr_t)c->scratch_raw + 63) & ~(uintptr_t)63);
  if (threads > 1) {
    int rc = px_pool_new(threads, &c->pool);
    if (rc) {
      px_compute_free(c);
      return rc;
    }
  }
  *out = c;
  return 0;
}

void px_compute_free(px_compute_t *c) {
  if (!c) return;
  px_pool_free(c->pool);
  px_free(c->scratch_raw);
  px_free(c->q8a);
  px_free(c->q8s);
  px_free(c->q8sum);
  px_free(c);
}

px_simd_t px_compute_simd(const px_compute_t *c) { return c->simd; }
int px_compute_threads(const px_compute_t *c) { return c->threads; }

void px_compute_parallel(px_compute_t *c, int ntasks, px_task_fn fn,
                         void *arg) {
  if (ntasks <= 0) return;
  if (!c->pool || ntasks == 1) {
    for (int t = 0; t < ntasks; t++)
      fn(arg, t, 0);
    return;
  }
  px_pool_run(c->pool, ntasks, fn, arg);
}
