/*
 * plexus/base.h — the ground every module stands on.
 *
 * Errors: every function that can fail returns int, 0 on success or a
 * negative PX_E... code; px_strerror() names it for people, px_err_name() for
 * logs and JSON.  The table below is the single source of truth (an X-macro),
 * so the enum, the names and the messages can never drift apart.
 *
 * Memory: every allocation in libplexus goes through px_malloc/px_calloc/
 * px_realloc/px_free, so tests can install a failing allocator (one hook,
 * as in curl's torture tests) and prove that every failure path is clean.
 *
 * Byte buffers (px_buf_t) grow on demand up to a caller-given cap (curl's
 * dynbuf "toobig"): anything that grows from outside input is bounded.
 *
 * Arenas hand out memory for temporaries of one request or one block and free
 * them all at once.
 *
 * Time: px_time_mono_ms() is monotonic milliseconds (CLOCK_MONOTONIC); only
 * the runtime (node/) reads clocks, protocol cores take `now` as a parameter.
 *
 * RNG: px_rng_t is a seeded xoshiro256** generator, deterministic for a given
 * seed on every platform — for simulation, shuffling and sampling; never for
 * keys (those come from libsodium's CSPRNG in crypto/).
 *
 * Config: a documented INI-like format (docs/config.md):
 *     # comment
 *     key = value
 * Keys are flat dotted names ("p2p.listen"); every key can also be given on
 * the command line as --key=value or --key value, which overrides the file.
 */
#ifndef PLEXUS_BASE_H
#define PLEXUS_BASE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- errors ------------------------------------------------------------ */

#define PX_ERRNO_MAP(X)                                                        \
  X(OK, 0, "success")                                                          \
  X(NOMEM, -1, "out of memory")                                                \
  X(INVAL, -2, "invalid argument")                                             \
  X(TOOBIG, -3, "size exceeds the allowed limit")                              \
  X(TRUNC, -4, "input is truncated")                                           \
  X(TRAILING, -5, "unexpected trailing bytes")                                 \
  X(DECODE, -6, "malformed encoding")                                          \
  X(VERSION, -7, "unsupported version")                                        \
  X(IO, -8, "input/output error")                                              \
  X(NOENT, -9, "no such file or entry")                                        \
  X(EXIST, -10, "already exists")                                              \
  X(PERM, -11, "permission denied or unsafe permissions")                      \
  X(CRYPTO, -12, "cryptographic failure")                                      \
  X(BADSIG, -13, "signature verification failed")                              \
  X(AUTH, -14, "authentication failed (message tampered or wrong key)")        \
  X(HANDSHAKE, -15, "secure handshake failed")                                 \
  X(STATE, -16, "operation not valid in the current state")                    \
  X(PROTO, -17, "protocol violation by peer")                                  \
  X(TIMEOUT, -18, "timed out")                                                 \
  X(CLOSED, -19, "connection closed")                                          \
  X(LIMIT, -20, "limit reached")                                               \
  X(BANNED, -21, "peer is banned")                                             \
  X(RATE, -22, "rate limit exceeded")                                          \
  X(CONFIG, -23, "invalid configuration")                                      \
  X(ADDR, -24, "invalid network address")                                      \
  X(NET, -25, "network error")                                                 \
  X(BUSY, -26, "resource busy")                                                \
  X(NOTFOUND, -27, "not found")                                                \
  X(DUP, -28, "duplicate")                                                     \
  X(SELF, -29, "connection to self")                                           \
  X(RANGE, -30, "value out of range")                                          \
  X(CHAIN, -31, "wrong chain id")                                              \
  X(NONCE, -32, "nonce already used (replayed transaction)")                   \
  X(NONCEGAP, -33, "nonce too high (an earlier transaction is missing)")       \
  X(FEE, -34, "fee below the minimum")                                         \
  X(FUNDS, -35, "insufficient funds")

/* The most negative code; tables indexed by -code have PX_ERR_COUNT slots. */
#define PX_ERR_LAST PX_EFUNDS
#define PX_ERR_COUNT 36

typedef enum {
#define PX_ERR_ENUM(name, code, msg) PX_E##name = (code),
  PX_ERRNO_MAP(PX_ERR_ENUM)
#undef PX_ERR_ENUM
} px_err_t;

/* Human-readable message for an error code; never NULL. */
const char *px_strerror(int err);
/* Symbolic name ("PX_EPROTO") for an error code; never NULL. */
const char *px_err_name(int err);
/* Translate a positive errno value into the closest PX_E code. */
int px_err_from_errno(int e);

/* ---- allocation -------------------------------------------------------- */

typedef struct {
  void *(*malloc_fn)(size_t n, void *ud);
  void *(*realloc_fn)(void *p, size_t n, void *ud);
  void (*free_fn)(void *p, void *ud);
  void *ud;
} px_allocator_t;

/* Install an allocator for the whole process (tests only: the one piece of
 * process-wide state besides the CPU feature table).  NULL restores libc. */
void px_set_allocator(const px_allocator_t *a);
void *px_malloc(size_t n);
void *px_calloc(size_t count, size_t size); /* overflow-checked */
void *px_realloc(void *p, size_t n);
void px_free(void *p);
char *px_strdup(const char *s);

/* ---- byte buffers ------------------------------------------------------ */

typedef struct {
  uint8_t *data;
  size_t len;
  size_t cap;
  size_t max; /* hard cap on len; 0 means SIZE_MAX */
} px_buf_t;

void px_buf_init(px_buf_t *b, size_t max);
void px_buf_release(px_buf_t *b);
void px_buf_reset(px_buf_t *b); /* len = 0, keeps memory */
/* Make room for n more bytes.  PX_ETOOBIG past the cap, PX_ENOMEM. */
int px_buf_reserve(px_buf_t *b, size_t n);
int px_buf_append(px_buf_t *b, const void *p, size_t n);
int px_buf_printf(px_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Remove the first n bytes (n <= len). */
void px_buf_consume(px_buf_t *b, size_t n);

/* ---- arenas ------------------------------------------------------------ */

typedef struct px_arena_block px_arena_block_t;
typedef struct {
  px_arena_block_t *head;
  size_t block_size;
  size_t total;
  size_t max; /* 0 = unbounded */
} px_arena_t;

void px_arena_init(px_arena_t *a, size_t block_size, size_t max);
/* 16-byte aligned, zeroed memory valid until px_arena_reset/release. */
void *px_arena_alloc(px_arena_t *a, size_t n);
void px_arena_reset(px_arena_t *a);
void px_arena_release(px_arena_t *a);

/* ---- FIFO queues ----------------------------------------------------------
 */

/* A FIFO of fixed-size items in one growable array: the effect queue every
 * sans-I/O core hands to its runtime.  Pushing returns a zeroed slot to fill
 * in place; popping copies the oldest item out.  Slots are reused once the
 * queue drains, and consumed slots are compacted away before growing. */
typedef struct {
  uint8_t *items;
  size_t elem;      /* item size in bytes */
  size_t head, len; /* items[head..len) are queued */
  size_t cap, max;  /* capacity; max items (0 = unbounded) */
} px_queue_t;

void px_queue_init(px_queue_t *q, size_t elem, size_t max);
/* A zeroed slot at the tail, or NULL when out of memory or at max. */
void *px_queue_push(px_queue_t *q);
/* Copy the oldest item into out and remove it; 1 if there was one. */
int px_queue_pop(px_queue_t *q, void *out);
size_t px_queue_count(const px_queue_t *q);
/* Pass every queued item to release (may be NULL), then free the array. */
void px_queue_release(px_queue_t *q, void (*release)(void *item));

/* ---- time ---------------------------------------------------------------- */

uint64_t px_time_mono_ms(void);
uint64_t px_time_mono_ns(void);
uint64_t px_time_wall_ms(void); /* for logs and displays only */

/* ---- deterministic RNG -----------------------------------------------------
 */

typedef struct {
  uint64_t s[4];
} px_rng_t;

void px_rng_seed(px_rng_t *r, uint64_t seed);
uint64_t px_rng_next(px_rng_t *r);
/* Uniform in [0, bound) without modulo bias; bound 0 returns 0. */
uint64_t px_rng_below(px_rng_t *r, uint64_t bound);
void px_rng_fill(px_rng_t *r, void *out, size_t n);

/* ---- logging ----------------------------------------------------------- */

typedef enum {
  PX_LOG_ERROR = 0,
  PX_LOG_WARN = 1,
  PX_LOG_INFO = 2,
  PX_LOG_DEBUG = 3,
  PX_LOG_TRACE = 4
} px_log_level_t;

/* The log sink is per process: level and an optional prefix (node name).
 * Lines go to stderr as "TIME LEVEL [prefix] module: message". */
void px_log_set_level(px_log_level_t lvl);
px_log_level_t px_log_get_level(void);
void px_log_set_prefix(const char *prefix);
/* Parse "error|warn|info|debug|trace"; PX_EINVAL otherwise. */
int px_log_parse_level(const char *s, px_log_level_t *out);
void px_log(px_log_level_t lvl, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define PX_LOGE(mod, ...) px_log(PX_LOG_ERROR, mod, __VA_ARGS__)
#define PX_LOGW(mod, ...) px_log(PX_LOG_WARN, mod, __VA_ARGS__)
#define PX_LOGI(mod, ...) px_log(PX_LOG_INFO, mod, __VA_ARGS__)
#define PX_LOGD(mod, ...)                                                      \
  do {                                                                         \
    if (px_log_get_level() >= PX_LOG_DEBUG)                                    \
      px_log(PX_LOG_DEBUG, mod, __VA_ARGS__);                                  \
  } while (0)

/* ---- config ------------------------------------------------------------ */

#define PX_CONFIG_MAX_ENTRIES 256
#define PX_CONFIG_MAX_KEY 64
#define PX_CONFIG_MAX_VALUE 1024

typedef struct {
  char key[PX_CONFIG_MAX_KEY];
  char value[PX_CONFIG_MAX_VALUE];
  int from_flag; /* 1 when set on the command line */
} px_config_entry_t;

typedef struct {
  px_config_entry_t entries[PX_CONFIG_MAX_ENTRIES];
  size_t n;
} px_config_t;

void px_config_init(px_config_t *c);
/* Parse INI-like text.  On error, *line_out (if given) is the 1-based line. */
int px_config_parse(px_config_t *c, const char *text, size_t len,
                    int *line_out);
int px_config_load_file(px_config_t *c, const char *path, int *line_out);
/* Set (or replace) a key; from_flag marks command-line values. */
int px_config_set(px_config_t *c, const char *key, const char *value,
                  int from_flag);
const char *px_config_get(const px_config_t *c, const char *key);
const char *px_config_get_str(const px_config_t *c, const char *key,
                              const char *def);
/* Typed getters: PX_ECONFIG when present but malformed or out of range. */
int px_config_get_u64(const px_config_t *c, const char *key, uint64_t def,
                      uint64_t *out);
int px_config_get_bool(const px_config_t *c, const char *key, int def,
                       int *out);
/* Write the config as text (sorted by insertion order). */
int px_config_write_file(const px_config_t *c, const char *path);

/* ---- small helpers ----------------------------------------------------- */

/* Hex encode n bytes into out (2n+1 chars incl. NUL). */
void px_hex_encode(const uint8_t *in, size_t n, char *out);
/* Decode exactly n bytes from a 2n-char hex string; PX_EDECODE otherwise. */
int px_hex_decode(const char *hex, uint8_t *out, size_t n);
/* Parse a decimal u64 with overflow check; whole string must be a number. */
int px_parse_u64(const char *s, uint64_t *out);
/* Write a whole file atomically (tmp + fsync + rename) with the given mode. */
int px_file_write_atomic(const char *path, const void *data, size_t len,
                         unsigned mode);
/* Read a whole file (up to max bytes) into a NUL-terminated heap buffer. */
int px_file_read_all(const char *path, size_t max, uint8_t **out,
                     size_t *len_out);
/* mkdir -p with mode. */
int px_mkdir_p(const char *path, unsigned mode);

#define PX_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define PX_MIN(a, b) ((a) < (b) ? (a) : (b))
#define PX_MAX(a, b) ((a) > (b) ? (a) : (b))

#ifdef __cplusplus
}
#endif
#endif /* PLEXUS_BASE_H */
