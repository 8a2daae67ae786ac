/*
 * miner.c — the node's uPoW miner (miner.h, docs/upow.md "The miner").
 *
 * The loop thread follows the contract: after each block it reads the
 * epoch record, and once the epoch's evaluation seed is revealed it hands
 * (epoch, parent) to the mining thread as a new job (a generation number
 * tells the thread its current task is stale).  It also writes the network
 * an epoch published (the parent right after the rollover) to
 * HOME/upow/epoch-N.pxun (canonical encoding, checked against the hash on
 * chain) plus the safetensors export and its config.
 *
 * The mining thread (nice 19, so consensus and the market always come
 * first) builds the task for its job, then runs candidates with nonces
 * 0, 1, 2, ... of its key.  Before every mutation step it polls stop():
 * quit, mining off, a newer job, or a market shard running (*busy != 0).
 * A pre-empted candidate is abandoned and retried later with the same
 * nonce; the thread then sleeps in 2 ms waits until busy drops.  The gap
 * between polls is bounded by one mutation step (window forward passes) or
 * a `window`-image chunk of the final scoring; the largest gap in thread
 * CPU time seen is reported (poll_gap_max_us).
 *
 * Found solutions wait in a small queue; the loop thread's tick signs them
 * as SUBMIT txs with the node key (nonce from px_chain_next_nonce, the
 * minimum fee) while their epoch is still open and the account can pay the
 * deposit; at most MAX_SUBMIT_PER_EPOCH per epoch (a deposit each).  A
 * SUBMIT the contract refused because the block's checks were used up
 * (PX_EBUSY) is queued again when its block is seen.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "plexus/crypto.h"
#include "plexus/ledger.h"
#include "plexus/upow.h"
#include "plexus/upow_chain.h"

#include "node/miner.h"

#include "base/px_internal.h"

#define LOGMOD "miner"
#define QUEUE_MAX 16
#define MAX_SUBMIT_PER_EPOCH 8

struct px_miner {
  px_miner_env_t env;
  px_keypair_t key;
  char home[4096];
  const px_upow_data_t *data;

  pthread_t thread;
  int started;
  pthread_mutex_t mu;
  pthread_cond_t cv;
  /* Under mu: */
  int quit;
  int on;
  uint64_t gen; /* bumped per job */
  int have_job;
  px_upow_epoch_t job_ep;
  px_upow_net_t job_parent;
  px_upow_solution_t queue[QUEUE_MAX];
  size_t nq;
  uint64_t found_epoch; /* epoch of found_in_epoch */
  uint32_t found_in_epoch;
  /* Atomics read by stop() and status without the lock. */
  atomic_int a_on;
  atomic_int a_quit;
  atomic_uint_fast64_t a_gen;
  atomic_int computing;
  atomic_uint_fast64_t candidates, solutions, preemptions, gap_max_us;
  uint64_t last_poll_us; /* mining thread only */
  uint64_t poll_gen;     /* the generation the thread works on */

  /* Loop thread only: */
  uint64_t job_epoch;
  int job_revealed;
  uint8_t job_parent_hash[32];
  uint64_t submitted, submit_errors, resubmitted;
  /* Submitted and not yet seen in a block: a SUBMIT refused because the
   * block's checks were used up (PX_EBUSY) is queued again. */
  struct {
    uint8_t hash[PX_HASH_LEN];
    px_upow_solution_t sol;
  } pending[QUEUE_MAX];
  size_t npending;
  uint64_t written_epoch; /* last epoch whose model was written, +1 */
  char last_error[160];
};

/* CPU time of the calling thread: the pre-emption bound is about the CPU
 * the miner still burns after a shard arrives, not about how long the OS
 * keeps a nice-19 thread off the core. */
static uint64_t thread_cpu_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* ---- mining thread ------------------------------------------------------- */

static int stop_poll(void *ud) {
  px_miner_t *m = ud;
  uint64_t t = thread_cpu_us();
  if (m->last_poll_us && t - m->last_poll_us > atomic_load(&m->gap_max_us))
    atomic_store(&m->gap_max_us, t - m->last_poll_us);
  m->last_poll_us = t;
  return atomic_load(&m->a_quit) || !atomic_load(&m->a_on) ||
         atomic_load(&m->a_gen) != m->poll_gen ||
         (m->env.busy && atomic_load(m->env.busy) != 0);
}

static void *mine_main(void *arg) {
  px_miner_t *m = arg;
  /* The miner only uses what nobody else wants. */
  setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19);
  px_upow_task_t *task = NULL;
  px_upow_net_t parent;
  memset(&parent, 0, sizeof parent);
  uint64_t task_gen = 0, nonce = 0;
  pthread_mutex_lock(&m->mu);
  while (!m->quit) {
    int busy = m->env.busy && atomic_load(m->env.busy) != 0;
    if (!m->on || !m->have_job || !m->data || busy) {
      atomic_store(&m->computing, 0);
      m->last_poll_us = 0;
      if (busy) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 2000000;
        if (ts.tv_nsec >= 1000000000) {
          ts.tv_sec++;
          ts.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&m->cv, &m->mu, &ts);
      } else {
        pthread_cond_wait(&m->cv, &m->mu);
      }
      continue;
    }
    if (!task || task_gen != m->gen) {
      px_upow_task_free(task);
      task = NULL;
      px_upow_net_release(&parent);
      px_upow_epoch_t ep = m->job_ep;
      const px_upow_data_t *data = m->data;
      int rc = px_upow_net_copy(&parent, &m->job_parent);
      task_gen = m->gen;
      nonce = 0;
      pthread_mutex_unlock(&m->mu);
      if (!rc) rc = px_upow_task_new(&ep, &parent, data, &task);
      pthread_mutex_lock(&m->mu);
      if (rc) {
        PX_LOGE(LOGMOD, "cannot build the task of epoch %llu: %s",
                (unsigned long long)ep.epoch, px_strerror(rc));
        m->have_job = 0;
        continue;
      }
    }
    atomic_store(&m->computing, 1);
    m->poll_gen = task_gen;
    pthread_mutex_unlock(&m->mu);
    px_upow_solution_t sol;
    int rc =
        px_upow_candidate_ex(task, m->key.pk, nonce, NULL, &sol, stop_poll, m);
    pthread_mutex_lock(&m->mu);
    if (rc == PX_EBUSY) {
      if (m->env.busy && atomic_load(m->env.busy) != 0)
        atomic_fetch_add(&m->preemptions, 1);
      atomic_store(&m->computing, 0);
      continue; /* same nonce again later */
    }
    if (rc < 0) {
      PX_LOGE(LOGMOD, "candidate failed: %s", px_strerror(rc));
      m->on = 0;
      atomic_store(&m->a_on, 0);
      continue;
    }
    nonce++;
    atomic_fetch_add(&m->candidates, 1);
    if (rc == 1 && task_gen == m->gen) {
      atomic_fetch_add(&m->solutions, 1);
      if (m->found_epoch != sol.epoch) {
        m->found_epoch = sol.epoch;
        m->found_in_epoch = 0;
      }
      if (m->nq < QUEUE_MAX && m->found_in_epoch < MAX_SUBMIT_PER_EPOCH) {
        m->queue[m->nq++] = sol;
        m->found_in_epoch++;
      }
    }
  }
  atomic_store(&m->computing, 0);
  pthread_mutex_unlock(&m->mu);
  px_upow_task_free(task);
  px_upow_net_release(&parent);
  return NULL;
}

/* ---- lifecycle ------------------------------------------------------------
 */

int px_miner_open(const px_miner_env_t *env, px_miner_t **out, char *errmsg,
                  size_t errcap) {
  static const char *known[] = {"upow.mine"};
  *out = NULL;
  int on = 0;
  if (env->cfg) {
    for (size_t i = 0; i < env->cfg->n; i++) {
      const char *k = env->cfg->entries[i].key;
      if (strncmp(k, "upow.", 5) != 0) continue;
      int ok = 0;
      for (size_t j = 0; j < PX_ARRAY_LEN(known) && !ok; j++)
        ok = strcmp(k, known[j]) == 0;
      if (!ok) {
        snprintf(errmsg, errcap,
                 "config: unknown option '%s' (see docs/upow.md)", k);
        return PX_ECONFIG;
      }
    }
    if (px_config_get_bool(env->cfg, "upow.mine", 0, &on)) {
      snprintf(errmsg, errcap, "config: upow.mine must be a boolean");
      return PX_ECONFIG;
    }
  }
  px_miner_t *m = px_calloc(1, sizeof *m);
  if (!m) return PX_ENOMEM;
  m->env = *env;
  m->env.cfg = NULL;
  snprintf(m->home, sizeof m->home, "%s", env->home ? env->home : ".");
  m->env.home = m->home;
  m->key = *env->key;
  m->env.key = &m->key;
  m->data = env->data;
  pthread_mutex_init(&m->mu, NULL);
  pthread_cond_init(&m->cv, NULL);
  m->on = on;
  atomic_store(&m->a_on, on);
  m->written_epoch = 0;
  *out = m;
  return 0;
}

int px_miner_start(px_miner_t *m) {
  if (!m || m->started) return 0;
  if (!m->data) {
    /* Load (and check) the dataset only when this node mines; a validator
     * loads it when it first checks a solution. */
    if (m->on) {
      int rc = px_upow_chain_dataset(&m->data);
      if (rc) {
        PX_LOGE(LOGMOD, "mining is off: the uPoW dataset is unavailable: %s",
                px_strerror(rc));
        m->on = 0;
        atomic_store(&m->a_on, 0);
      }
    }
  }
  if (pthread_create(&m->thread, NULL, mine_main, m) != 0) return PX_ENOMEM;
  m->started = 1;
  if (m->on) PX_LOGI(LOGMOD, "mining on (upow.mine)");
  return 0;
}

void px_miner_close(px_miner_t *m) {
  if (!m || !m->started) return;
  pthread_mutex_lock(&m->mu);
  m->quit = 1;
  atomic_store(&m->a_quit, 1);
  pthread_cond_broadcast(&m->cv);
  pthread_mutex_unlock(&m->mu);
  pthread_join(m->thread, NULL);
  m->started = 0;
}

void px_miner_free(px_miner_t *m) {
  if (!m) return;
  px_miner_close(m);
  px_upow_net_release(&m->job_parent);
  pthread_mutex_destroy(&m->mu);
  pthread_cond_destroy(&m->cv);
  sodium_memzero(&m->key, sizeof m->key);
  px_free(m);
}

void px_miner_set_mining(px_miner_t *m, int on) {
  pthread_mutex_lock(&m->mu);
  m->on = on;
  atomic_store(&m->a_on, on);
  pthread_cond_broadcast(&m->cv);
  pthread_mutex_unlock(&m->mu);
}

int px_miner_set_job(px_miner_t *m, const px_upow_epoch_t *ep,
                     const px_upow_net_t *parent) {
  px_upow_net_t copy;
  int rc = px_upow_net_copy(&copy, parent);
  if (rc) return rc;
  pthread_mutex_lock(&m->mu);
  px_upow_net_release(&m->job_parent);
  m->job_parent = copy;
  m->job_ep = *ep;
  m->have_job = 1;
  m->gen++;
  atomic_store(&m->a_gen, m->gen);
  pthread_cond_broadcast(&m->cv);
  pthread_mutex_unlock(&m->mu);
  return 0;
}

void px_miner_stats(px_miner_t *m, px_miner_stats_t *out) {
  out->candidates = atomic_load(&m->candidates);
  out->solutions = atomic_load(&m->solutions);
  out->preemptions = atomic_load(&m->preemptions);
  out->poll_gap_max_us = atomic_load(&m->gap_max_us);
  out->computing = atomic_load(&m->computing);
}

int px_miner_pop(px_miner_t *m, px_upow_solution_t *out) {
  int rc = PX_ENOTFOUND;
  pthread_mutex_lock(&m->mu);
  if (m->nq) {
    *out = m->queue[0];
    memmove(m->queue, m->queue + 1, (m->nq - 1) * sizeof m->queue[0]);
    m->nq--;
    rc = 0;
  }
  pthread_mutex_unlock(&m->mu);
  return rc;
}

/* ---- loop thread: follow the chain -----------------------------------------
 */

static void model_paths(const px_miner_t *m, uint64_t epoch, const char *ext,
                        char *out, size_t cap) {
  snprintf(out, cap, "%s/upow/epoch-%llu.%s", m->home,
           (unsigned long long)epoch, ext);
}

/* Write the network epoch `epoch` published (= the parent now). */
static void write_published(px_miner_t *m, const px_ledger_state_t *s,
                            uint64_t epoch) {
  px_upow_chain_published_t pub;
  px_upow_net_t net;
  uint8_t h[32];
  if (px_upow_chain_published(s, epoch, &pub)) return;
  if (px_upow_chain_parent(s, &net)) return;
  if (px_upow_net_hash(&net, h) || memcmp(h, pub.net_hash, 32)) {
    px_upow_net_release(&net); /* a later epoch's parent: too late */
    return;
  }
  char dir[4200], p1[4300], p2[4300], p3[4300];
  snprintf(dir, sizeof dir, "%s/upow", m->home);
  px_mkdir_p(dir, 0700);
  model_paths(m, epoch, "pxun", p1, sizeof p1);
  model_paths(m, epoch, "safetensors", p2, sizeof p2);
  model_paths(m, epoch, "config.json", p3, sizeof p3);
  px_buf_t b;
  px_buf_init(&b, 0);
  int rc = px_upow_net_encode(&net, &b);
  if (!rc) rc = px_file_write_atomic(p1, b.data, b.len, 0644);
  if (!rc) rc = px_upow_net_export_safetensors(&net, p2, p3);
  px_buf_release(&b);
  px_upow_net_release(&net);
  char hex[65];
  px_hex_encode(pub.net_hash, 32, hex);
  if (rc)
    PX_LOGE(LOGMOD, "cannot write the model of epoch %llu to %s: %s",
            (unsigned long long)epoch, dir, px_strerror(rc));
  else
    PX_LOGI(LOGMOD,
            "epoch %llu published %s (score %u, %u solutions, reward %llu) "
            "-> %s",
            (unsigned long long)epoch, hex, pub.score, pub.n_solutions,
            (unsigned long long)pub.reward, p2);
}

/* Our SUBMITs in block b: forget them; queue again those refused for the
 * block's check cap (they are still good for their epoch). */
static void track_results(px_miner_t *m, const px_block_t *b,
                          const px_tx_result_t *res) {
  for (size_t i = 0; b && res && i < b->n_txs && m->npending; i++) {
    if (b->txs[i].type != PX_TX_UPOW_SUBMIT) continue;
    for (size_t j = 0; j < m->npending; j++) {
      if (memcmp(m->pending[j].hash, res[i].tx_hash, PX_HASH_LEN)) continue;
      if (res[i].code == PX_EBUSY) {
        pthread_mutex_lock(&m->mu);
        if (m->nq < QUEUE_MAX) m->queue[m->nq++] = m->pending[j].sol;
        pthread_mutex_unlock(&m->mu);
        m->resubmitted++;
      }
      m->pending[j] = m->pending[--m->npending];
      break;
    }
  }
}

void px_miner_on_block(px_miner_t *m, const px_ledger_state_t *s,
                       const px_block_t *b, const px_tx_result_t *res) {
  if (!m || !s) return;
  track_results(m, b, res);
  px_upow_chain_epoch_t e;
  if (px_upow_chain_epoch(s, &e)) return;
  if (e.epoch > 0 && m->written_epoch < e.epoch) {
    write_published(m, s, e.epoch - 1);
    m->written_epoch = e.epoch;
  }
  if (!e.revealed) return;
  if (m->job_revealed && m->job_epoch == e.epoch &&
      !memcmp(m->job_parent_hash, e.parent_hash, 32))
    return;
  px_upow_net_t parent;
  if (px_upow_chain_parent(s, &parent)) return;
  px_upow_epoch_t ep;
  px_upow_chain_task_epoch(&e, &ep);
  if (px_miner_set_job(m, &ep, &parent) == 0) {
    m->job_epoch = e.epoch;
    m->job_revealed = 1;
    memcpy(m->job_parent_hash, e.parent_hash, 32);
  }
  px_upow_net_release(&parent);
}

static int submit_one(px_miner_t *m, const px_upow_solution_t *sol,
                      uint8_t hash[PX_HASH_LEN]) {
  const px_ledger_state_t *s = px_chain_state(m->env.chain);
  px_upow_chain_epoch_t e;
  if (!s || px_upow_chain_epoch(s, &e) || e.epoch != sol->epoch || !e.revealed)
    return PX_ESTATE; /* its epoch is over: drop it */
  const px_ledger_params_t *p = px_ledger_params(s);
  px_account_t a;
  px_buf_t pl, tx;
  px_buf_init(&pl, 0);
  px_buf_init(&tx, 0);
  int rc = px_ledger_account(s, m->key.pk, &a);
  if (!rc) rc = px_upow_payload_submit(&pl, sol);
  uint64_t nonce = px_chain_next_nonce(m->env.chain, m->key.pk);
  if (!rc)
    rc = px_tx_make(px_ledger_chain_id(s), &m->key, nonce, 0, PX_TX_UPOW_SUBMIT,
                    pl.data, pl.len, &tx);
  uint64_t fee = p->fee_base + p->fee_per_byte * (uint64_t)tx.len;
  if (!rc && a.balance < fee + PX_UPOW_DEPOSIT) rc = PX_EFUNDS;
  if (!rc) {
    tx.len = 0;
    rc = px_tx_make(px_ledger_chain_id(s), &m->key, nonce, fee,
                    PX_TX_UPOW_SUBMIT, pl.data, pl.len, &tx);
  }
  if (!rc) rc = px_chain_submit(m->env.chain, tx.data, tx.len, hash);
  px_buf_release(&pl);
  px_buf_release(&tx);
  return rc;
}

void px_miner_tick(px_miner_t *m, uint64_t now_ms) {
  (void)now_ms;
  if (!m || !m->env.chain) return;
  px_upow_solution_t sol;
  while (px_miner_pop(m, &sol) == 0) {
    uint8_t hash[PX_HASH_LEN];
    int rc = submit_one(m, &sol, hash);
    if (rc == 0) {
      if (m->npending == QUEUE_MAX) {
        memmove(m->pending, m->pending + 1,
                (QUEUE_MAX - 1) * sizeof m->pending[0]);
        m->npending--;
      }
      memcpy(m->pending[m->npending].hash, hash, PX_HASH_LEN);
      m->pending[m->npending++].sol = sol;
      char hx[65];
      px_hex_encode(sol.net_hash, 32, hx);
      m->submitted++;
      PX_LOGI(LOGMOD,
              "submitted solution epoch %llu nonce %llu score %u net %s",
              (unsigned long long)sol.epoch, (unsigned long long)sol.nonce,
              sol.score, hx);
    } else if (rc != PX_ESTATE) {
      m->submit_errors++;
      snprintf(m->last_error, sizeof m->last_error, "submit: %s",
               px_strerror(rc));
      PX_LOGW(LOGMOD, "cannot submit a solution (epoch %llu): %s",
              (unsigned long long)sol.epoch, px_strerror(rc));
    }
  }
}

/* ---- control ----------------------------------------------------------------
 */

void px_miner_status_json(px_miner_t *m, px_buf_t *out) {
  px_miner_stats_t st;
  px_miner_stats(m, &st);
  px_buf_printf(
      out,
      "{\"mining\":%s,\"candidates\":%llu,\"found\":%llu,"
      "\"submitted\":%llu,\"resubmitted\":%llu,"
      "\"submit_errors\":%llu,"
      "\"preemptions\":%llu,\"poll_gap_max_us\":%llu,"
      "\"computing\":%s",
      atomic_load(&m->a_on) ? "true" : "false",
      (unsigned long long)st.candidates, (unsigned long long)st.solutions,
      (unsigned long long)m->submitted, (unsigned long long)m->resubmitted,
      (unsigned long long)m->submit_errors, (unsigned long long)st.preemptions,
      (unsigned long long)st.poll_gap_max_us, st.computing ? "true" : "false");
  const px_ledger_state_t *s =
      m->env.chain ? px_chain_state(m->env.chain) : NULL;
  px_upow_chain_epoch_t e;
  if (s && px_upow_chain_epoch(s, &e) == 0) {
    char ph[65], es[65], vs[65];
    px_hex_encode(e.parent_hash, 32, ph);
    px_hex_encode(e.epoch_seed, 32, es);
    px_hex_encode(e.eval_seed, 32, vs);
    px_buf_printf(out,
                  ",\"epoch\":%llu,\"epoch_start\":%llu,\"epoch_blocks\":%u,"
                  "\"revealed\":%s,\"margin\":%u,\"parent\":\"%s\","
                  "\"parent_score\":%u,\"best_score\":%u,\"solutions\":%u,"
                  "\"deposits_held\":%llu,\"epoch_seed\":\"%s\","
                  "\"eval_seed\":\"%s\"",
                  (unsigned long long)e.epoch,
                  (unsigned long long)e.start_height, PX_UPOW_EPOCH_BLOCKS,
                  e.revealed ? "true" : "false", e.margin, ph, e.parent_score,
                  e.best_score, e.n_solutions,
                  (unsigned long long)px_upow_chain_deposits(s), es, vs);
    px_upow_chain_miner_t mm;
    if (px_upow_chain_miner(s, m->key.pk, &mm) == 0)
      px_buf_printf(
          out,
          ",\"own\":{\"submitted\":%llu,\"valid\":%llu,"
          "\"rejected\":%llu,\"rewards\":%llu,\"forfeited\":%llu}",
          (unsigned long long)mm.submitted, (unsigned long long)mm.valid,
          (unsigned long long)mm.rejected, (unsigned long long)mm.rewards,
          (unsigned long long)mm.forfeited);
    px_upow_chain_published_t pub;
    if (e.epoch > 0 && px_upow_chain_published(s, e.epoch - 1, &pub) == 0) {
      char hh[65];
      px_hex_encode(pub.net_hash, 32, hh);
      px_buf_printf(out,
                    ",\"published\":{\"epoch\":%llu,\"hash\":\"%s\","
                    "\"score\":%u,\"parent_score\":%u,\"solutions\":%u,"
                    "\"reward\":%llu}",
                    (unsigned long long)pub.epoch, hh, pub.score,
                    pub.parent_score, pub.n_solutions,
                    (unsigned long long)pub.reward);
    }
  }
  if (m->last_error[0])
    px_buf_printf(out, ",\"last_error\":\"%s\"", m->last_error);
  px_buf_printf(out, "}");
}

int px_miner_command(px_miner_t *m, const char *cmd, const char *arg,
                     px_buf_t *out) {
  if (!strcmp(cmd, "mine")) {
    int on;
    if (arg && !strcmp(arg, "on"))
      on = 1;
    else if (arg && !strcmp(arg, "off"))
      on = 0;
    else {
      px_buf_printf(out, "{\"ok\":false,\"error\":\"usage: mine on|off\"}");
      return 1;
    }
    pthread_mutex_lock(&m->mu);
    const px_upow_data_t *data = m->data;
    pthread_mutex_unlock(&m->mu);
    if (on && !data) {
      int rc = px_upow_chain_dataset(&data);
      if (rc) {
        px_buf_printf(out,
                      "{\"ok\":false,\"error\":\"the uPoW dataset is "
                      "unavailable (%s): install dataset-fashion-mnist\"}",
                      px_strerror(rc));
        return 1;
      }
    }
    pthread_mutex_lock(&m->mu);
    if (data) m->data = data;
    pthread_mutex_unlock(&m->mu);
    px_miner_set_mining(m, on);
    PX_LOGI(LOGMOD, "mining %s", on ? "on" : "off");
    px_buf_printf(out, "{\"ok\":true,\"mining\":%s}", on ? "true" : "false");
    return 1;
  }
  if (!strcmp(cmd, "upow")) {
    px_buf_printf(out, "{\"ok\":true,\"upow\":");
    px_miner_status_json(m, out);
    px_buf_printf(out, "}");
    return 1;
  }
  if (!strcmp(cmd, "upow_published")) {
    const px_ledger_state_t *s =
        m->env.chain ? px_chain_state(m->env.chain) : NULL;
    uint64_t epoch;
    px_upow_chain_published_t pub;
    if (!arg || px_parse_u64(arg, &epoch)) {
      px_buf_printf(out,
                    "{\"ok\":false,\"error\":\"usage: upow_published EPOCH\"}");
      return 1;
    }
    if (!s || px_upow_chain_published(s, epoch, &pub)) {
      px_buf_printf(out,
                    "{\"ok\":false,\"error\":\"epoch %llu has not published "
                    "a model yet\"}",
                    (unsigned long long)epoch);
      return 1;
    }
    char hh[65], win[65], path[4300];
    px_hex_encode(pub.net_hash, 32, hh);
    px_hex_encode(pub.winner, 32, win);
    model_paths(m, epoch, "pxun", path, sizeof path);
    px_buf_printf(out,
                  "{\"ok\":true,\"epoch\":%llu,\"height\":%llu,\"hash\":\"%s\","
                  "\"score\":%u,\"parent_score\":%u,\"margin\":%u,"
                  "\"solutions\":%u,\"winner\":\"%s\",\"reward\":%llu,"
                  "\"path\":\"%s\"}",
                  (unsigned long long)epoch, (unsigned long long)pub.height, hh,
                  pub.score, pub.parent_score, pub.margin, pub.n_solutions, win,
                  (unsigned long long)pub.reward, path);
    return 1;
  }
  return 0;
}
