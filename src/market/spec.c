/*
 * spec.c — job specs, work units and escrow (plexus/market.h,
 * docs/market.md "Job spec").
 *
 * Encoding (after u16 tag PX_MARKET_TAG_JOB_SPEC, u8 version):
 *   u8 kind, u32 train_steps, requester[32], u64 nonce, model[32],
 *   input[32], u64 input_size, u32 n_samples, u32 shard_size,
 *   u64 work_per_sample, u32 caps, u8 policy, u32 policy_param,
 *   u64 price_ceiling, u64 deadline
 * The decoder accepts only specs px_job_spec_check accepts, so every
 * decoded spec is canonical and re-encodes to the same bytes (the job id is
 * the hash of those bytes).  The training kind has a reserved field now so
 * the frame does not change when training jobs arrive; decoding one is
 * refused until then.
 *
 * Work units are multiply-accumulates computed from shapes only, with the
 * same shape rules as px_net_new (compute/net.c), so cost is known before
 * anything runs.
 */
#include <stdint.h>
#include <string.h>

#include "plexus/codec.h"
#include "plexus/crypto.h"
#include "plexus/market.h"
#include "base/px_internal.h"

int px_job_spec_check(const px_job_spec_t *s) {
  if (!s || s->kind != PX_JOB_INFER || s->train_steps != 0) return PX_EINVAL;
  if (s->n_samples == 0 || s->n_samples > PX_MARKET_MAX_SAMPLES ||
      s->shard_size == 0 || s->shard_size > s->n_samples ||
      s->work_per_sample == 0 || s->price_ceiling == 0)
    return PX_EINVAL;
  if (px_job_shard_count(s) > PX_MARKET_MAX_SHARDS) return PX_EINVAL;
  if (s->input_size == 0 ||
      px_blob_chunk_count(s->input_size) > PX_BLOB_MAX_CHUNKS)
    return PX_EINVAL;
  if (s->policy == PX_VERIFY_REPLICATE) {
    if (s->policy_param < 1 || s->policy_param > PX_MARKET_MAX_REPLICAS)
      return PX_EINVAL;
  } else if (s->policy == PX_VERIFY_AUDIT) {
    if (s->policy_param < 1 || s->policy_param > PX_MARKET_BPS)
      return PX_EINVAL;
  } else {
    return PX_EINVAL;
  }
  uint64_t e;
  if (px_market_escrow_required(s, &e)) return PX_EINVAL;
  return 0;
}

uint32_t px_job_shard_count(const px_job_spec_t *s) {
  if (!s->shard_size) return 0;
  return s->n_samples / s->shard_size + (s->n_samples % s->shard_size != 0);
}

uint32_t px_job_shard_samples(const px_job_spec_t *s, uint32_t shard) {
  uint32_t n = px_job_shard_count(s);
  if (shard >= n) return 0;
  if (shard + 1 < n) return s->shard_size;
  return s->n_samples - shard * s->shard_size;
}

int px_job_shard_work(const px_job_spec_t *s, uint32_t shard, uint64_t *out) {
  *out = 0;
  uint32_t n = px_job_shard_samples(s, shard);
  if (!n) return PX_EINVAL;
  if (s->work_per_sample > UINT64_MAX / n) return PX_ERANGE;
  *out = s->work_per_sample * n;
  return 0;
}

int px_job_spec_encode(const px_job_spec_t *s, px_buf_t *out) {
  if (px_job_spec_check(s)) return PX_EINVAL;
  px_writer_t w;
  px_writer_init(&w, out);
  px_writer_u16(&w, PX_MARKET_TAG_JOB_SPEC);
  px_writer_u8(&w, PX_MARKET_VERSION);
  px_writer_u8(&w, s->kind);
  px_writer_u32(&w, s->train_steps);
  px_writer_fixed(&w, s->requester, PX_PK_LEN);
  px_writer_u64(&w, s->nonce);
  px_writer_fixed(&w, s->model, PX_HASH_LEN);
  px_writer_fixed(&w, s->input, PX_HASH_LEN);
  px_writer_u64(&w, s->input_size);
  px_writer_u32(&w, s->n_samples);
  px_writer_u32(&w, s->shard_size);
  px_writer_u64(&w, s->work_per_sample);
  px_writer_u32(&w, s->caps);
  px_writer_u8(&w, s->policy);
  px_writer_u32(&w, s->policy_param);
  px_writer_u64(&w, s->price_ceiling);
  px_writer_u64(&w, s->deadline);
  return px_writer_finish(&w);
}

int px_job_spec_decode(const void *p, size_t n, px_job_spec_t *s) {
  px_reader_t r;
  memset(s, 0, sizeof *s);
  px_reader_init(&r, p, n);
  if (px_reader_u16(&r) != PX_MARKET_TAG_JOB_SPEC)
    px_reader_fail(&r, PX_EDECODE);
  if (px_reader_u8(&r) != PX_MARKET_VERSION) px_reader_fail(&r, PX_EVERSION);
  s->kind = px_reader_u8(&r);
  s->train_steps = px_reader_u32(&r);
  px_reader_fixed(&r, s->requester, PX_PK_LEN);
  s->nonce = px_reader_u64(&r);
  px_reader_fixed(&r, s->model, PX_HASH_LEN);
  px_reader_fixed(&r, s->input, PX_HASH_LEN);
  s->input_size = px_reader_u64(&r);
  s->n_samples = px_reader_u32(&r);
  s->shard_size = px_reader_u32(&r);
  s->work_per_sample = px_reader_u64(&r);
  s->caps = px_reader_u32(&r);
  s->policy = px_reader_u8(&r);
  s->policy_param = px_reader_u32(&r);
  s->price_ceiling = px_reader_u64(&r);
  s->deadline = px_reader_u64(&r);
  int rc = px_reader_finish(&r);
  if (!rc && px_job_spec_check(s)) rc = PX_EDECODE;
  if (rc) memset(s, 0, sizeof *s);
  return rc;
}

int px_job_spec_id(const px_job_spec_t *s, uint8_t id[PX_HASH_LEN]) {
  px_buf_t b;
  px_buf_init(&b, 1024);
  int rc = px_job_spec_encode(s, &b);
  if (!rc) px_hash(id, b.data, b.len);
  px_buf_release(&b);
  return rc;
}

/* ---- work units --------------------------------------------------------- */

uint64_t px_market_layer_macs(const px_layer_t *l) {
  switch (l->kind) {
  case PX_LAYER_LINEAR:
    return (uint64_t)l->in_size * (uint64_t)l->out_c;
  case PX_LAYER_CONV:
    return (uint64_t)l->out_c * (uint64_t)l->in_c * (uint64_t)l->k *
           (uint64_t)l->k * (uint64_t)l->out_h * (uint64_t)l->out_w;
  default:
    return 0;
  }
}

static int add_u64(uint64_t *acc, uint64_t v) {
  if (v > UINT64_MAX - *acc) return PX_ERANGE;
  *acc += v;
  return 0;
}

int px_market_work_units(const px_net_config_t *cfg, uint64_t n_samples,
                         uint64_t *out) {
  *out = 0;
  const uint64_t dim_max = 1u << 16;
  if (!cfg || cfg->in_c <= 0 || cfg->in_h <= 0 || cfg->in_w <= 0 ||
      (uint64_t)cfg->in_c > dim_max || (uint64_t)cfg->in_h > dim_max ||
      (uint64_t)cfg->in_w > dim_max || cfg->n_classes <= 0 ||
      (uint64_t)cfg->n_classes > dim_max || cfg->n_hidden < 0 ||
      cfg->n_hidden > PX_NET_MAX_DIMS || cfg->n_conv < 0 ||
      cfg->n_conv > PX_NET_MAX_DIMS)
    return PX_EINVAL;
  uint64_t c = (uint64_t)cfg->in_c, h = (uint64_t)cfg->in_h,
           w = (uint64_t)cfg->in_w, per = 0;
  if (cfg->arch == PX_NET_CNN) {
    uint64_t k = (uint64_t)cfg->kernel;
    if (cfg->n_conv < 1 || cfg->kernel <= 0 || cfg->kernel % 2 == 0 ||
        cfg->kernel > 15)
      return PX_EINVAL;
    for (int i = 0; i < cfg->n_conv; i++) {
      uint64_t oc = (uint64_t)cfg->conv[i];
      if (cfg->conv[i] <= 0 || oc > dim_max) return PX_EINVAL;
      /* all factors < 2^16 except h*w (< 2^32): oc*c*k*k < 2^40, h*w < 2^32 */
      uint64_t a = oc * c * k * k, b = h * w;
      if (b && a > UINT64_MAX / b) return PX_ERANGE;
      if (add_u64(&per, a * b)) return PX_ERANGE;
      if (h < 2 || w < 2) return PX_EINVAL;
      c = oc, h /= 2, w /= 2;
    }
  } else if (cfg->arch != PX_NET_MLP || cfg->n_conv != 0) {
    return PX_EINVAL;
  }
  uint64_t in = c * h * w; /* < 2^48 */
  for (int i = 0; i <= cfg->n_hidden; i++) {
    int o = i < cfg->n_hidden ? cfg->hidden[i] : cfg->n_classes;
    if (o <= 0 || (uint64_t)o > dim_max) return PX_EINVAL;
    if (in > UINT64_MAX / (uint64_t)o) return PX_ERANGE;
    if (add_u64(&per, in * (uint64_t)o)) return PX_ERANGE;
    in = (uint64_t)o;
  }
  if (n_samples && per > UINT64_MAX / n_samples) return PX_ERANGE;
  *out = per * n_samples;
  return 0;
}

/* ceil(a * bps / 10000), overflow-free for bps <= 10000. */
static uint64_t mul_bps_ceil(uint64_t a, uint32_t bps) {
  uint64_t lo = (a % PX_MARKET_BPS) * bps;
  return (a / PX_MARKET_BPS) * bps + lo / PX_MARKET_BPS +
         (lo % PX_MARKET_BPS != 0);
}

int px_market_escrow_required(const px_job_spec_t *s, uint64_t *out) {
  *out = 0;
  uint64_t work = s->work_per_sample, base;
  if (s->n_samples && work > UINT64_MAX / s->n_samples) return PX_ERANGE;
  work *= s->n_samples;
  if (work && s->price_ceiling > UINT64_MAX / work) return PX_ERANGE;
  base = work * s->price_ceiling;
  if (s->policy == PX_VERIFY_REPLICATE) {
    if (s->policy_param && base > UINT64_MAX / s->policy_param)
      return PX_ERANGE;
    *out = base * s->policy_param;
    return 0;
  }
  if (s->policy == PX_VERIFY_AUDIT) {
    uint32_t p2 = s->policy_param > PX_MARKET_BPS / 2 ? PX_MARKET_BPS
                                                      : 2 * s->policy_param;
    uint64_t audit = mul_bps_ceil(base, p2);
    if (audit > UINT64_MAX - base) return PX_ERANGE;
    *out = base + audit;
    return 0;
  }
  return PX_EINVAL;
}
