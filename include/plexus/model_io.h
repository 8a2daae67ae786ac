/*
 * plexus/model_io.h — model and data file formats (docs/formats.md).
 *
 * Every reader here is a strict, bounded decoder of outside bytes: every
 * size is computed with overflow checks and compared with the file size
 * before anything is touched, trailing bytes are an error, and a file that
 * lies about itself gives a negative PX_E code, never a crash:
 *   PX_ETRUNC    the file is shorter than its header says;
 *   PX_ETRAILING bytes left over after the last declared byte;
 *   PX_ETOOBIG   a size past a cap (header length, dimensions, file size);
 *   PX_EDECODE   malformed content (bad JSON, unknown dtype, overlapping or
 *                gapped offsets, inconsistent dimensions, bad magic);
 *   PX_EVERSION  a format version this code does not read;
 *   PX_ENOENT / PX_EIO / PX_EPERM from the file system.
 *
 * Files are memory-mapped read-only (mmap) where the format allows using the
 * bytes in place; tensors then point into the mapping and live as long as
 * the handle.  (As with any mmap reader, truncating the file while it is
 * open is undefined: don't.)
 *
 * Formats:
 *  - safetensors (huggingface/safetensors): u64 LE header length N, N bytes
 *    of JSON {name: {dtype, shape, data_offsets}, "__metadata__": {str:
 *    str}}, then the data region, which the tensors cover contiguously.
 *    Dtypes F32, F16, BF16, I8, U8.  Plus a JSON model config
 *    ("config.json": architecture and dimensions) read/written with
 *    plexus/json.h.
 *  - llama2.c checkpoints (karpathy/llama2.c): version 0 (legacy 7-int
 *    header), version 1 ("ak42" magic, f32) and version 2 ("ak42", int8
 *    Q8_0 in groups), and tokenizer.bin with llama2.c's BPE encode/decode.
 *  - IDX (MNIST / Fashion-MNIST), optionally gzip-compressed.
 */
#ifndef PLEXUS_MODEL_IO_H
#define PLEXUS_MODEL_IO_H

#include <stddef.h>
#include <stdint.h>

#include "plexus/base.h"
#include "plexus/json.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- dtypes -------------------------------------------------------------- */

typedef enum {
  PX_DTYPE_F32 = 0,
  PX_DTYPE_F16 = 1,
  PX_DTYPE_BF16 = 2,
  PX_DTYPE_I8 = 3,
  PX_DTYPE_U8 = 4,
} px_dtype_t;

size_t px_dtype_size(px_dtype_t t);      /* bytes per element; 0 if bad */
const char *px_dtype_name(px_dtype_t t); /* "F32" ...; "?" if bad */
/* Parse a safetensors dtype name (exact, case-sensitive); PX_EDECODE. */
int px_dtype_parse(const char *s, size_t len, px_dtype_t *out);

/* Exact widening conversions (every bf16/f16 value is a float; NaN payloads
 * and signs are kept). */
float px_bf16_to_f32(uint16_t h);
float px_f16_to_f32(uint16_t h);
/* Round to nearest, ties to even; NaN stays NaN (quiet). */
uint16_t px_f32_to_bf16(float f);
uint16_t px_f32_to_f16(float f);

/* ---- safetensors reader -------------------------------------------------- */

#define PX_ST_MAX_DIMS 8

typedef struct {
  const char *name; /* NUL-terminated UTF-8, owned by the handle */
  px_dtype_t dtype;
  int ndim; /* 0 (scalar) .. PX_ST_MAX_DIMS */
  uint64_t shape[PX_ST_MAX_DIMS];
  uint64_t numel;      /* product of shape (1 for a scalar) */
  uint64_t begin, end; /* data_offsets, relative to data */
  /* numel * dtype size bytes, in place in the file: NOT necessarily aligned
   * for the dtype (other writers need not pad); read through memcpy or
   * px_st_to_f32, or check `aligned` (address % dtype size == 0). */
  const void *data;
  size_t nbytes;
  int aligned;
} px_st_tensor_t;

typedef struct {
  uint64_t max_header; /* header bytes; default 16 MiB (cap 100 MiB) */
  size_t max_tensors;  /* default 65536 */
  uint64_t max_file;   /* default 64 GiB */
} px_st_limits_t;

typedef struct px_safetensors px_safetensors_t;

/* Open and validate a file (mmap).  lim NULL: defaults.  Checks, in order:
 * file >= 8 bytes (PX_ETRUNC), header length <= max_header (PX_ETOOBIG) and
 * inside the file (PX_ETRUNC), header is a JSON object (PX_EDECODE; EDUP for
 * duplicate names), each entry has exactly dtype/shape/data_offsets with a
 * known dtype, <= 8 dims, begin <= end, end - begin == numel * size
 * (PX_EDECODE), end inside the data region (PX_ETRUNC); sorted by offset the
 * tensors tile the data region from 0 with no overlap or gap (PX_EDECODE)
 * and no byte after the last one (PX_ETRAILING).  __metadata__ must be an
 * object of string values. */
int px_st_open(const char *path, const px_st_limits_t *lim,
               px_safetensors_t **out);
/* The same over bytes in memory, which are borrowed: keep them alive and
 * unchanged until px_st_free. */
int px_st_open_mem(const void *data, size_t len, const px_st_limits_t *lim,
                   px_safetensors_t **out);
void px_st_free(px_safetensors_t *st); /* NULL ok */

/* Tensors in header (document) order. */
size_t px_st_count(const px_safetensors_t *st);
const px_st_tensor_t *px_st_at(const px_safetensors_t *st, size_t i);
/* By name (binary search); NULL if absent. */
const px_st_tensor_t *px_st_find(const px_safetensors_t *st, const char *name);
/* __metadata__ entries, in document order; value NULL if absent. */
size_t px_st_metadata_count(const px_safetensors_t *st);
int px_st_metadata_at(const px_safetensors_t *st, size_t i, const char **key,
                      const char **value);
const char *px_st_metadata_get(const px_safetensors_t *st, const char *key);

/* Convert a F32/F16/BF16 tensor to n floats (exact; n must equal numel,
 * else PX_EINVAL; integer dtypes are PX_EDECODE). */
int px_st_to_f32(const px_st_tensor_t *t, float *out, size_t n);
/* Look up `name`, check dtype class (float), ndim and shape exactly
 * (PX_ENOTFOUND, PX_EDECODE on mismatch) and convert into out[numel]. */
int px_st_read_f32(const px_safetensors_t *st, const char *name, int ndim,
                   const uint64_t *shape, float *out);

/* ---- safetensors writer -------------------------------------------------- */

typedef struct {
  const char *name; /* UTF-8, unique, not "__metadata__" */
  px_dtype_t dtype;
  int ndim;
  uint64_t shape[PX_ST_MAX_DIMS];
  const void *data; /* numel * dtype size bytes, little-endian */
} px_st_entry_t;

/* Serialise tensors (data laid out in the given order) and optional
 * metadata (n_meta key/value string pairs) as safetensors.  The header is
 * compact JSON padded with spaces so the data starts at a multiple of 8, as
 * the reference implementation does.  PX_EINVAL for a bad entry, PX_EDUP
 * for a repeated name or key.  px_st_write_file writes atomically (tmp +
 * fsync + rename), mode 0644. */
int px_st_write_buf(px_buf_t *out, const px_st_entry_t *t, size_t n,
                    const char *const *meta_kv, size_t n_meta);
int px_st_write_file(const char *path, const px_st_entry_t *t, size_t n,
                     const char *const *meta_kv, size_t n_meta);

/* ---- model config (config.json) ------------------------------------------ */

/* A flat JSON object such as
 *   {"architecture":"mlp","dims":[784,256,10],"activation":"relu"}
 * Read: parse (<= 1 MiB) into the caller's arena; the root must be an
 * object (PX_EDECODE); read values with px_json_get_*.  Write: fill a
 * px_json_writer_t (object begin, keys and values, object end) and save its
 * buffer with px_model_config_save. */
int px_model_config_parse(px_arena_t *arena, const void *text, size_t len,
                          const px_json_t **root);
int px_model_config_load(px_arena_t *arena, const char *path,
                         const px_json_t **root);
/* Validates that buf holds one JSON object, then writes it atomically. */
int px_model_config_save(const char *path, const px_buf_t *json);
/* Helper: read an array of positive ints ("dims") into out[cap]; PX_EDECODE
 * if not an array of integers, PX_ERANGE if a value is outside
 * [1, INT32_MAX], PX_ETOOBIG if more than cap elements. */
int px_model_config_get_dims(const px_json_t *root, const char *key, int *out,
                             size_t cap, size_t *n_out);

/* ---- llama2.c checkpoints -------------------------------------------------
 */

#define PX_LLAMA2C_MAGIC 0x616b3432u /* "ak42" */
#define PX_LLAMA2C_MAX_DIM (1 << 20) /* cap on every header int */

typedef struct {
  int version; /* 0, 1 or 2 */
  int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
  int shared_classifier; /* wcls == token embedding */
  int group_size;        /* version 2 only, else 0 */
  int head_size;         /* dim / n_heads */
} px_llama2c_config_t;

typedef struct {
  const int8_t *q; /* n values, in the file */
  const float *s;  /* n / group_size scales (aligned copy, owned) */
} px_q8_ref_t;

typedef struct {
  px_llama2c_config_t cfg;
  /* f32 weights in llama2.c run.c layout (layer-major, W[out][in]).  For
   * version 2 only the three norms are set; the others are NULL. */
  const float *token_embedding; /* [vocab][dim] */
  const float *rms_att;         /* [L][dim] */
  const float *wq;              /* [L][n_heads*hs][dim] */
  const float *wk, *wv;         /* [L][n_kv_heads*hs][dim] */
  const float *wo;              /* [L][dim][n_heads*hs] */
  const float *rms_ffn;         /* [L][dim] */
  const float *w1, *w3;         /* [L][hidden][dim] */
  const float *w2;              /* [L][dim][hidden] */
  const float *rms_final;       /* [dim] */
  const float *wcls;            /* [vocab][dim]; == token_embedding shared */
  /* version 2 int8 weights: one px_q8_ref_t per layer ([n_layers]) */
  px_q8_ref_t q_tokens, q_cls; /* q_cls == q_tokens when shared */
  px_q8_ref_t *q_wq, *q_wk, *q_wv, *q_wo, *q_w1, *q_w2, *q_w3;
  /* internal */
  void *map_;
  size_t map_len_;
  float *scales_;
} px_llama2c_t;

/* Open a checkpoint (mmap).  Version 0 is recognised by the absence of the
 * magic.  Every header int must be in [1, PX_LLAMA2C_MAX_DIM]; dim %
 * n_heads == 0, n_heads % n_kv_heads == 0, head_size even, dim % group_size
 * == 0 (PX_EDECODE); the file size must equal the layout's size exactly
 * (PX_ETRUNC short, PX_ETRAILING long); versions > 2 are PX_EVERSION. */
int px_llama2c_open(const char *path, px_llama2c_t **out);
/* Over borrowed bytes (4-byte aligned, else PX_EINVAL). */
int px_llama2c_open_mem(const void *data, size_t len, px_llama2c_t **out);
void px_llama2c_free(px_llama2c_t *m); /* NULL ok */

/* ---- tokenizer.bin (llama2.c BPE) -----------------------------------------
 */

#define PX_TOKENIZER_MAX_TOKEN_LEN 4096

typedef struct px_tokenizer px_tokenizer_t;

/* Layout: i32 max_token_length, then vocab_size times {f32 score, i32 len,
 * len bytes}; 0 <= len <= max_token_length <= PX_TOKENIZER_MAX_TOKEN_LEN,
 * scores finite, no bytes left over.  The bytes are copied. */
int px_tokenizer_load(const char *path, int vocab_size, px_tokenizer_t **out);
int px_tokenizer_load_mem(const void *data, size_t len, int vocab_size,
                          px_tokenizer_t **out);
void px_tokenizer_free(px_tokenizer_t *t);
int px_tokenizer_vocab_size(const px_tokenizer_t *t);
/* Token id's bytes (not NUL-terminated in general) and score. */
int px_tokenizer_piece(const px_tokenizer_t *t, int id, const char **s,
                       size_t *len, float *score);
/* Token id of an exact byte string, or -1. */
int px_tokenizer_lookup(const px_tokenizer_t *t, const char *s, size_t len);

/* llama2.c run.c encode(): optional BOS (1), a " " dummy prefix when text is
 * not empty (if " " is in the vocabulary), one token per UTF-8 character
 * (up to 4 bytes) or byte fallback (byte + 3), then repeatedly merge the
 * adjacent pair whose concatenation is the token with the highest score
 * (first such pair on ties), optional EOS (2).  tokens[cap]: at most
 * len + 3 are needed (PX_ETOOBIG if cap is smaller than what is produced);
 * text longer than 1 MiB is PX_ETOOBIG; a byte-fallback id past the
 * vocabulary is PX_ERANGE. */
int px_tokenizer_encode(const px_tokenizer_t *t, const char *text, size_t len,
                        int bos, int eos, int *tokens, size_t cap,
                        size_t *n_out);
/* llama2.c decode(): the piece of `token`, minus a leading space right after
 * BOS (prev == 1); a piece spelled exactly "<0xHH>" becomes that one raw
 * byte.  *s stays valid as long as t.  PX_ERANGE for a bad id. */
int px_tokenizer_decode(const px_tokenizer_t *t, int prev, int token,
                        const char **s, size_t *len);

/* ---- IDX (MNIST format) ----------------------------------------------------
 */

#define PX_IDX_MAX_DIMS 4
#define PX_IDX_DEFAULT_MAX (256u << 20) /* decompressed bytes */

typedef struct {
  int ndim;                       /* 1 .. PX_IDX_MAX_DIMS */
  uint32_t dims[PX_IDX_MAX_DIMS]; /* big-endian in the file */
  uint8_t *data;                  /* unsigned bytes, heap (owned) */
  size_t n;                       /* product of dims */
} px_idx_t;

/* Parse an IDX file of unsigned bytes (magic 00 00 08 ndim), gzip-
 * compressed or not (detected by the 1f 8b magic; inflated with an output
 * cap of max_bytes, 0 = PX_IDX_DEFAULT_MAX, PX_ETOOBIG past it; a corrupt
 * stream is PX_EDECODE, a cut one PX_ETRUNC).  Other element types are
 * PX_EVERSION.  The data size must match the dims exactly. */
int px_idx_parse(const void *data, size_t len, size_t max_bytes, px_idx_t *out);
int px_idx_load(const char *path, size_t max_bytes, px_idx_t *out);
void px_idx_release(px_idx_t *x);

/* Model input samples from a file, as `plexus infer` and job submission
 * read them: an IDX image file (gzip or not; magic 00 00 08 nd, or 1f 8b)
 * of u8 pixels, scaled x = p / 255 as in training, otherwise raw
 * little-endian f32 already scaled: a whole number of `sample_floats`-float
 * samples, all finite.  *x is heap (px_free), *n the sample count.  On error
 * err gets a one-line reason naming the file; PX_EDECODE for a bad file,
 * the file's read error, PX_ENOMEM. */
int px_input_load(const char *path, size_t sample_floats, float **x, size_t *n,
                  char *err, size_t errcap);

#define PX_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

typedef struct {
  px_idx_t images; /* [n][rows][cols] */
  px_idx_t labels; /* [n], each < 10 */
  size_t n;
  int rows, cols;
} px_mnist_t;

/* Load "<dir>/<split>-images-idx3-ubyte[.gz]" and the matching labels
 * ("-labels-idx1-ubyte"), split "train" or "t10k"; checks 3 and 1 dims,
 * equal counts and labels 0..9 (PX_EDECODE).  PX_ENOENT if absent. */
int px_mnist_load(const char *dir, const char *split, px_mnist_t *out);
void px_mnist_release(px_mnist_t *m);

#ifdef __cplusplus
}
#endif
#endif /* PLEXUS_MODEL_IO_H */
