/*
 * safetensors.c — strict safetensors reader and writer, dtype conversions,
 * and the JSON model config (config.json) helpers.
 *
 * Format (huggingface/safetensors, docs/formats.md):
 *   u64 LE  N                      header length
 *   N bytes JSON object            {"name": {"dtype": "F32",
 *                                   "shape": [d0, d1, ...],
 *                                   "data_offsets": [begin, end]}, ...,
 *                                   "__metadata__": {"k": "v", ...}}
 *   data region                    the rest of the file
 * Offsets are relative to the data region.  The reference implementation
 * (safetensors/src/tensor.rs, Metadata::validate) requires that the tensors,
 * sorted by offset, cover the data region exactly: each begins where the
 * previous one ended, the first at 0, the last at the end of the file; and
 * end - begin == numel * dtype size.  We check exactly that, plus: a cap on
 * N (the reference uses 100 MB), no unknown keys in a tensor entry, at most
 * 8 dimensions, overflow-checked products, duplicate names rejected (the
 * JSON parser's EDUP), metadata values are strings.
 *
 * Alignment: tensors are used in place (mmap), and nothing in the format
 * forces their addresses to be aligned (the header may have any length), so
 * px_st_tensor_t.data is a byte pointer with an `aligned` flag and the
 * conversion routines read through memcpy-style loads.  Our writer pads the
 * header with spaces to a multiple of 8 bytes, as the reference writer
 * does, so the data region of our files starts 8-aligned; tensors written
 * in order of decreasing element size are then all aligned.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/json.h"
#include "plexus/model_io.h"
#include "compute/model_io_internal.h"

#include "base/px_internal.h"

#define ST_HARD_MAX_HEADER (100u << 20)

/* ---- dtypes and conversions ---------------------------------------------- */

static const struct {
  const char *name;
  size_t size;
} k_dtypes[] = {
    [PX_DTYPE_F32] = {"F32", 4},   [PX_DTYPE_F16] = {"F16", 2},
    [PX_DTYPE_BF16] = {"BF16", 2}, [PX_DTYPE_I8] = {"I8", 1},
    [PX_DTYPE_U8] = {"U8", 1},
};

size_t px_dtype_size(px_dtype_t t) {
  if ((unsigned)t >= PX_ARRAY_LEN(k_dtypes)) return 0;
  return k_dtypes[t].size;
}

const char *px_dtype_name(px_dtype_t t) {
  if ((unsigned)t >= PX_ARRAY_LEN(k_dtypes)) return "?";
  return k_dtypes[t].name;
}

int px_dtype_parse(const char *s, size_t len, px_dtype_t *out) {
  for (size_t i = 0; i < PX_ARRAY_LEN(k_dtypes); i++) {
    if (strlen(k_dtypes[i].name) == len &&
        memcmp(k_dtypes[i].name, s, len) == 0) {
      *out = (px_dtype_t)i;
      return 0;
    }
  }
  return PX_EDECODE;
}

static float bits_f32(uint32_t b) {
  float f;
  memcpy(&f, &b, 4);
  return f;
}

static uint32_t f32_bits(float f) {
  uint32_t b;
  memcpy(&b, &f, 4);
  return b;
}

float px_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

float px_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
  if (exp == 0) {
    /* zero or subnormal: man * 2^-24, exact in float */
    float f = (float)man * 0x1p-24f;
    return sign ? -f : f;
  }
  if (exp == 31) return bits_f32(sign | 0x7f800000u | (man << 13));
  return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t px_f32_to_bf16(float f) {
  uint32_t x = f32_bits(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40);
  x += 0x7fffu + ((x >> 16) & 1);
  return (uint16_t)(x >> 16);
}

uint16_t px_f32_to_f16(float f) {
  uint32_t x = f32_bits(f);
  uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
  uint32_t ax = x & 0x7fffffffu;
  if (ax > 0x7f800000u) /* NaN: keep the top payload bits, force quiet */
    return (uint16_t)(sign | 0x7e00 | ((ax >> 13) & 0x3ff));
  if (ax >= 0x477ff000u) /* >= 65520 rounds to infinity */
    return (uint16_t)(sign | 0x7c00);
  if (ax >= 0x38800000u) { /* normal half: rebias and round to even */
    uint32_t m = ax - 0x38000000u;
    m += 0xfffu + ((m >> 13) & 1);
    return (uint16_t)(sign | (m >> 13));
  }
  /* subnormal half (or zero): value in units of 2^-24, rounded to even */
  uint32_t e = ax >> 23;
  if (e < 102) return sign; /* < 2^-25: rounds to zero */
  uint32_t mant = (ax & 0x7fffffu) | 0x800000u;
  uint32_t shift = 126 - e; /* 14 .. 24 */
  uint32_t r = mant >> shift, rem = mant & ((1u << shift) - 1);
  uint32_t half = 1u << (shift - 1);
  if (rem > half || (rem == half && (r & 1))) r++;
  return (uint16_t)(sign | r);
}

/* ---- reader -------------------------------------------------------------- */

struct px_safetensors {
  px_arena_t arena;
  void *map; /* when opened from a file */
  size_t map_len;
  px_st_tensor_t *t; /* document order */
  size_t n;
  const px_st_tensor_t **by_name;
  const px_json_member_t *meta; /* members of __metadata__ */
  size_t n_meta;
};

static int cmp_name(const void *x, const void *y) {
  const px_st_tensor_t *a = *(const px_st_tensor_t *const *)x;
  const px_st_tensor_t *b = *(const px_st_tensor_t *const *)y;
  return strcmp(a->name, b->name);
}

static int cmp_offset(const void *x, const void *y) {
  const px_st_tensor_t *a = *(const px_st_tensor_t *const *)x;
  const px_st_tensor_t *b = *(const px_st_tensor_t *const *)y;
  if (a->begin != b->begin) return a->begin < b->begin ? -1 : 1;
  if (a->end != b->end) return a->end < b->end ? -1 : 1;
  return 0;
}

/* One "name": {dtype, shape, data_offsets} entry. */
static int parse_entry(const px_json_t *e, const uint8_t *data,
                       uint64_t data_len, px_st_tensor_t *t) {
  if (e->type != PX_JSON_OBJECT || e->n != 3) return PX_EDECODE;
  const px_json_t *dt = px_json_get(e, "dtype");
  const px_json_t *sh = px_json_get(e, "shape");
  const px_json_t *off = px_json_get(e, "data_offsets");
  if (!dt || !sh || !off) return PX_EDECODE; /* missing or unknown keys */
  if (dt->type != PX_JSON_STRING ||
      px_dtype_parse(dt->str, dt->len, &t->dtype) != 0)
    return PX_EDECODE;
  if (sh->type != PX_JSON_ARRAY || sh->n > PX_ST_MAX_DIMS) return PX_EDECODE;
  t->ndim = (int)sh->n;
  uint64_t numel = 1;
  int zero = 0, overflow = 0;
  for (size_t i = 0; i < sh->n; i++) {
    uint64_t d;
    int rc = px_json_as_u64(sh->items[i], &d);
    if (rc == PX_ERANGE && sh->items[i]->str[0] != '-') return PX_ETOOBIG;
    if (rc) return PX_EDECODE;
    t->shape[i] = d;
    if (d == 0)
      zero = 1;
    else if (numel > UINT64_MAX / d)
      overflow = 1;
    else
      numel *= d;
  }
  if (zero)
    numel = 0;
  else if (overflow)
    return PX_ETOOBIG;
  t->numel = numel;
  size_t es = px_dtype_size(t->dtype);
  if (numel > UINT64_MAX / es) return PX_ETOOBIG;
  uint64_t nbytes = numel * es;
  if (off->type != PX_JSON_ARRAY || off->n != 2) return PX_EDECODE;
  int rc1 = px_json_as_u64(off->items[0], &t->begin);
  int rc2 = px_json_as_u64(off->items[1], &t->end);
  if ((rc1 == PX_ERANGE && off->items[0]->str[0] != '-') ||
      (rc2 == PX_ERANGE && off->items[1]->str[0] != '-'))
    return PX_ETRUNC; /* past 2^64: past any file */
  if (rc1 || rc2) return PX_EDECODE;
  if (t->begin > t->end) return PX_EDECODE;
  if (t->end - t->begin != nbytes) return PX_EDECODE; /* dtype/shape lie */
  if (t->end > data_len) return PX_ETRUNC;
  t->data = data + t->begin;
  t->nbytes = (size_t)nbytes;
  t->aligned = ((uintptr_t)t->data % es) == 0;
  return 0;
}

static int st_parse(px_safetensors_t *st, const uint8_t *p, size_t len,
                    const px_st_limits_t *lim_in) {
  px_st_limits_t lim = {16u << 20, 65536, 64ull << 30};
  if (lim_in) {
    if (lim_in->max_header) lim.max_header = lim_in->max_header;
    if (lim_in->max_tensors) lim.max_tensors = lim_in->max_tensors;
    if (lim_in->max_file) lim.max_file = lim_in->max_file;
  }
  if (lim.max_header > ST_HARD_MAX_HEADER) lim.max_header = ST_HARD_MAX_HEADER;
  if ((uint64_t)len > lim.max_file) return PX_ETOOBIG;
  if (len < 8) return PX_ETRUNC;
  uint64_t hlen = px_get_u64le(p);
  if (hlen > lim.max_header) return PX_ETOOBIG;
  if (hlen > len - 8) return PX_ETRUNC;
  const uint8_t *data = p + 8 + hlen;
  uint64_t data_len = len - 8 - hlen;

  px_json_limits_t jl = {0};
  jl.max_input = (size_t)hlen;
  jl.max_depth = 3; /* root -> entry -> shape / offsets */
  jl.max_members = lim.max_tensors + 1;
  jl.max_values = 16 * (lim.max_tensors + 1) + 64;
  px_json_t *root = NULL;
  int rc = px_json_parse(&st->arena, p + 8, (size_t)hlen, &jl, &root, NULL);
  if (rc == PX_ETRUNC || rc == PX_ETRAILING) rc = PX_EDECODE;
  if (rc) return rc;
  if (root->type != PX_JSON_OBJECT) return PX_EDECODE;

  size_t nt = root->n;
  const px_json_t *meta = px_json_get(root, "__metadata__");
  if (meta) {
    nt--;
    if (meta->type != PX_JSON_OBJECT) return PX_EDECODE;
    for (size_t i = 0; i < meta->n; i++) {
      const char *s;
      if (memchr(meta->members[i].key, 0, meta->members[i].key_len) ||
          px_json_as_str(meta->members[i].value, &s) != 0)
        return PX_EDECODE;
    }
    st->meta = meta->members;
    st->n_meta = meta->n;
  }
  if (nt > lim.max_tensors) return PX_ETOOBIG;
  st->n = nt;
  if (nt) {
    st->t = px_arena_alloc(&st->arena, nt * sizeof *st->t);
    st->by_name = px_arena_alloc(&st->arena, nt * sizeof *st->by_name);
    if (!st->t || !st->by_name) return PX_ENOMEM;
  }
  size_t k = 0;
  for (size_t i = 0; i < root->n; i++) {
    const px_json_member_t *m = &root->members[i];
    if (m->value == meta) continue;
    if (memchr(m->key, 0, m->key_len)) return PX_EDECODE;
    px_st_tensor_t *t = &st->t[k];
    t->name = m->key;
    if ((rc = parse_entry(m->value, data, data_len, t)) != 0) return rc;
    st->by_name[k++] = t;
  }
  /* Tile check on offset order (by_name is reused as scratch first). */
  if (nt > 1) qsort(st->by_name, nt, sizeof *st->by_name, cmp_offset);
  uint64_t pos = 0;
  for (size_t i = 0; i < nt; i++) {
    if (st->by_name[i]->begin != pos) return PX_EDECODE; /* overlap or gap */
    pos = st->by_name[i]->end;
  }
  if (pos != data_len) return PX_ETRAILING;
  if (nt > 1) qsort(st->by_name, nt, sizeof *st->by_name, cmp_name);
  return 0;
}

int px_st_open_mem(const void *data, size_t len, const px_st_limits_t *lim,
                   px_safetensors_t **out) {
  if (!out) return PX_EINVAL;
  *out = NULL;
  if (!data && len) return PX_EINVAL;
  px_safetensors_t *st = px_calloc(1, sizeof *st);
  if (!st) return PX_ENOMEM;
  px_arena_init(&st->arena, 64 * 1024, 0);
  int rc = st_parse(st, data, len, lim);
  if (rc) {
    px_st_free(st);
    return rc;
  }
  *out = st;
  return 0;
}

int px_st_open(const char *path, const px_st_limits_t *lim,
               px_safetensors_t **out) {
  if (!out) return PX_EINVAL;
  *out = NULL;
  void *m;
  size_t len;
  uint64_t max = lim && lim->max_file ? lim->max_file : 64ull << 30;
  int rc = px_mio_map(path, max, &m, &len);
  if (rc) return rc;
  px_safetensors_t *st = NULL;
  rc = px_st_open_mem(m, len, lim, &st);
  if (rc) {
    px_mio_unmap(m, len);
    return rc;
  }
  st->map = m;
  st->map_len = len;
  *out = st;
  return 0;
}

void px_st_free(px_safetensors_t *st) {
  if (!st) return;
  px_arena_release(&st->arena);
  px_mio_unmap(st->map, st->map_len);
  px_free(st);
}

size_t px_st_count(const px_safetensors_t *st) { return st ? st->n : 0; }

const px_st_tensor_t *px_st_at(const px_safetensors_t *st, size_t i) {
  if (!st || i >= st->n) return NULL;
  return &st->t[i];
}

const px_st_tensor_t *px_st_find(const px_safetensors_t *st, const char *name) {
  if (!st || !name) return NULL;
  size_t lo = 0, hi = st->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(name, st->by_name[mid]->name);
    if (c == 0) return st->by_name[mid];
    if (c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return NULL;
}

size_t px_st_metadata_count(const px_safetensors_t *st) {
  return st ? st->n_meta : 0;
}

int px_st_metadata_at(const px_safetensors_t *st, size_t i, const char **key,
                      const char **value) {
  if (!st || i >= st->n_meta) return PX_ENOTFOUND;
  if (key) *key = st->meta[i].key;
  if (value) *value = st->meta[i].value->str;
  return 0;
}

const char *px_st_metadata_get(const px_safetensors_t *st, const char *key) {
  if (!st || !key) return NULL;
  for (size_t i = 0; i < st->n_meta; i++)
    if (strcmp(st->meta[i].key, key) == 0) return st->meta[i].value->str;
  return NULL;
}

int px_st_to_f32(const px_st_tensor_t *t, float *out, size_t n) {
  if (!t || (!out && n)) return PX_EINVAL;
  if (n != t->numel) return PX_EINVAL;
  const uint8_t *p = t->data;
  switch (t->dtype) {
  case PX_DTYPE_F32:
    for (size_t i = 0; i < n; i++)
      out[i] = bits_f32(px_get_u32le(p + 4 * i));
    return 0;
  case PX_DTYPE_BF16:
    for (size_t i = 0; i < n; i++)
      out[i] = px_bf16_to_f32(px_get_u16le(p + 2 * i));
    return 0;
  case PX_DTYPE_F16:
    for (size_t i = 0; i < n; i++)
      out[i] = px_f16_to_f32(px_get_u16le(p + 2 * i));
    return 0;
  default:
    return PX_EDECODE;
  }
}

int px_st_read_f32(const px_safetensors_t *st, const char *name, int ndim,
                   const uint64_t *shape, float *out) {
  const px_st_tensor_t *t = px_st_find(st, name);
  if (!t) return PX_ENOTFOUND;
  if (t->ndim != ndim) return PX_EDECODE;
  for (int i = 0; i < ndim; i++)
    if (t->shape[i] != shape[i]) return PX_EDECODE;
  return px_st_to_f32(t, out, (size_t)t->numel);
}

/* ---- writer -------------------------------------------------------------- */

static int cmp_cstr(const void *x, const void *y) {
  return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* 0 if all strings are distinct, else PX_EDUP. */
static int check_unique(const char **names, size_t n) {
  qsort(names, n, sizeof *names, cmp_cstr);
  for (size_t i = 1; i < n; i++)
    if (strcmp(names[i - 1], names[i]) == 0) return PX_EDUP;
  return 0;
}

static int entry_bytes(const px_st_entry_t *e, size_t *nbytes) {
  if (!e->name || strcmp(e->name, "__metadata__") == 0) return PX_EINVAL;
  size_t es = px_dtype_size(e->dtype);
  if (es == 0 || e->ndim < 0 || e->ndim > PX_ST_MAX_DIMS) return PX_EINVAL;
  uint64_t numel = 1;
  for (int i = 0; i < e->ndim; i++) {
    if (e->shape[i] && numel > UINT64_MAX / e->shape[i]) return PX_ETOOBIG;
    numel *= e->shape[i];
  }
  if (numel > SIZE_MAX / es) return PX_ETOOBIG;
  *nbytes = (size_t)(numel * es);
  if (*nbytes && !e->data) return PX_EINVAL;
  return 0;
}

/* The 8-byte length plus the padded JSON header. */
static int build_header(px_buf_t *h, const px_st_entry_t *t, size_t n,
                        const char *const *meta_kv, size_t n_meta) {
  if ((!t && n) || (!meta_kv && n_meta)) return PX_EINVAL;
  size_t nn = PX_MAX(n, n_meta);
  const char **names = px_calloc(nn ? nn : 1, sizeof *names);
  if (!names) return PX_ENOMEM;
  int rc = 0;
  for (size_t i = 0; i < n_meta && !rc; i++) {
    if (!meta_kv[2 * i] || !meta_kv[2 * i + 1]) rc = PX_EINVAL;
    names[i] = meta_kv[2 * i];
  }
  if (!rc) rc = check_unique(names, n_meta);
  for (size_t i = 0; i < n && !rc; i++)
    names[i] = t[i].name ? t[i].name : "__metadata__";
  if (!rc) rc = check_unique(names, n);
  px_free(names);
  if (rc) return rc;

  px_json_writer_t w;
  uint8_t zero8[8] = {0};
  if ((rc = px_buf_append(h, zero8, 8)) != 0) return rc;
  px_json_writer_init(&w, h);
  px_json_write_object_begin(&w);
  if (n_meta) {
    px_json_write_key(&w, "__metadata__");
    px_json_write_object_begin(&w);
    for (size_t i = 0; i < n_meta; i++) {
      px_json_write_key(&w, meta_kv[2 * i]);
      px_json_write_str(&w, meta_kv[2 * i + 1]);
    }
    px_json_write_object_end(&w);
  }
  uint64_t off = 0;
  for (size_t i = 0; i < n; i++) {
    size_t nb;
    if ((rc = entry_bytes(&t[i], &nb)) != 0) return rc;
    px_json_write_key(&w, t[i].name);
    px_json_write_object_begin(&w);
    px_json_write_key(&w, "dtype");
    px_json_write_str(&w, px_dtype_name(t[i].dtype));
    px_json_write_key(&w, "shape");
    px_json_write_array_begin(&w);
    for (int d = 0; d < t[i].ndim; d++)
      px_json_write_u64(&w, t[i].shape[d]);
    px_json_write_array_end(&w);
    px_json_write_key(&w, "data_offsets");
    px_json_write_array_begin(&w);
    px_json_write_u64(&w, off);
    if (nb > UINT64_MAX - off) return PX_ETOOBIG;
    off += nb;
    px_json_write_u64(&w, off);
    px_json_write_array_end(&w);
    px_json_write_object_end(&w);
  }
  px_json_write_object_end(&w);
  if ((rc = px_json_writer_finish(&w)) != 0) return rc;
  while (h->len % 8)
    if ((rc = px_buf_append(h, " ", 1)) != 0) return rc;
  px_put_u64le(h->data, (uint64_t)(h->len - 8));
  return 0;
}

int px_st_write_buf(px_buf_t *out, const px_st_entry_t *t, size_t n,
                    const char *const *meta_kv, size_t n_meta) {
  if (!out) return PX_EINVAL;
  size_t start = out->len;
  px_buf_t h;
  px_buf_init(&h, 0);
  int rc = build_header(&h, t, n, meta_kv, n_meta);
  if (!rc) rc = px_buf_append(out, h.data, h.len);
  for (size_t i = 0; i < n && !rc; i++) {
    size_t nb = 0;
    rc = entry_bytes(&t[i], &nb);
    if (!rc) rc = px_buf_append(out, t[i].data, nb);
  }
  px_buf_release(&h);
  if (rc) out->len = start;
  return rc;
}

int px_st_write_file(const char *path, const px_st_entry_t *t, size_t n,
                     const char *const *meta_kv, size_t n_meta) {
  if (!path) return PX_EINVAL;
  px_buf_t h;
  px_buf_init(&h, 0);
  int rc = build_header(&h, t, n, meta_kv, n_meta);
  px_mio_part_t *parts = NULL;
  if (!rc) {
    parts = px_calloc(n + 1, sizeof *parts);
    if (!parts) rc = PX_ENOMEM;
  }
  if (!rc) {
    parts[0].p = h.data;
    parts[0].n = h.len;
    for (size_t i = 0; i < n && !rc; i++) {
      rc = entry_bytes(&t[i], &parts[i + 1].n);
      parts[i + 1].p = t[i].data;
    }
  }
  if (!rc) rc = px_mio_write_parts(path, parts, n + 1);
  px_free(parts);
  px_buf_release(&h);
  return rc;
}

/* ---- model config -------------------------------------------------------- */

#define CONFIG_MAX (1u << 20)

int px_model_config_parse(px_arena_t *arena, const void *text, size_t len,
                          const px_json_t **root) {
  if (!root) return PX_EINVAL;
  *root = NULL;
  px_json_limits_t lim = {0};
  lim.max_input = CONFIG_MAX;
  px_json_t *v;
  int rc = px_json_parse(arena, text, len, &lim, &v, NULL);
  if (rc) return rc;
  if (v->type != PX_JSON_OBJECT) return PX_EDECODE;
  *root = v;
  return 0;
}

int px_model_config_load(px_arena_t *arena, const char *path,
                         const px_json_t **root) {
  if (!root) return PX_EINVAL;
  *root = NULL;
  uint8_t *text = NULL;
  size_t len = 0;
  int rc = px_file_read_all(path, CONFIG_MAX, &text, &len);
  if (rc) return rc;
  rc = px_model_config_parse(arena, text, len, root);
  px_free(text);
  return rc;
}

int px_model_config_save(const char *path, const px_buf_t *json) {
  if (!path || !json) return PX_EINVAL;
  px_arena_t a;
  px_arena_init(&a, 0, 0);
  const px_json_t *root;
  int rc = px_model_config_parse(&a, json->data, json->len, &root);
  px_arena_release(&a);
  if (rc) return PX_EINVAL;
  px_mio_part_t parts[2] = {{json->data, json->len}, {"\n", 1}};
  return px_mio_write_parts(path, parts, 2);
}

int px_model_config_get_dims(const px_json_t *root, const char *key, int *out,
                             size_t cap, size_t *n_out) {
  const px_json_t *a;
  int rc = px_json_get_array(root, key, &a);
  if (rc) return rc;
  if (a->n > cap) return PX_ETOOBIG;
  for (size_t i = 0; i < a->n; i++) {
    int64_t v;
    rc = px_json_as_i64(a->items[i], &v);
    if (rc) return rc;
    if (v < 1 || v > INT32_MAX) return PX_ERANGE;
    out[i] = (int)v;
  }
  if (n_out) *n_out = a->n;
  return 0;
}
