/*
 * blobstore.c — the node's content-addressed blob store and the chunk
 * fetcher (node/market_rt.h, docs/market.md "Blobs", "Runtime and wire").
 *
 * Store: HOME/blobs/<hex root>, one file per blob, named by its Merkle root
 * (px_blob_root) and written atomically (tmp + fsync + rename), so a file
 * under its final name is always complete and the name proves the content
 * (put recomputes the root).  Serving a chunk needs its audit path, i.e.
 * every chunk leaf of the blob: the leaves of the few most recently served
 * blobs are cached (checked once against the root, which also catches a
 * file damaged on disk), so a fetch of a whole blob costs one pass over it,
 * not one per chunk.
 *
 * Fetcher: pulls chunks [first, first+count) of a blob (root, size) from
 * one peer with the CHUNK request, at most PX_FETCH_WINDOW outstanding,
 * each chunk checked on arrival with px_blob_verify_chunk (a bad peer is
 * caught after one chunk), a timed-out request retried up to
 * PX_FETCH_RETRIES times.  It is polled (px_fetch_status), never calls
 * back: the owner feeds it responses and ticks on the loop thread.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <unistd.h>

#include "plexus/crypto.h"
#include "node/market_rt.h"
#include "base/px_internal.h"

#define LEAF_CACHE 8

typedef struct {
  uint8_t root[PX_HASH_LEN];
  uint64_t size;
  uint8_t (*leaves)[PX_HASH_LEN];
  size_t n;
  uint64_t used; /* LRU stamp */
} leaf_cache_t;

struct px_blobstore {
  char dir[4200];
  leaf_cache_t cache[LEAF_CACHE];
  uint64_t stamp;
};

static void blob_path(const px_blobstore_t *bs, const uint8_t root[PX_HASH_LEN],
                      char *out, size_t cap) {
  char hex[2 * PX_HASH_LEN + 1];
  px_hex_encode(root, PX_HASH_LEN, hex);
  snprintf(out, cap, "%s/%s", bs->dir, hex);
}

int px_blobstore_open(const char *home, px_blobstore_t **out) {
  *out = NULL;
  if (!home || strlen(home) > 4000) return PX_EINVAL;
  px_blobstore_t *bs = px_calloc(1, sizeof *bs);
  if (!bs) return PX_ENOMEM;
  snprintf(bs->dir, sizeof bs->dir, "%s/blobs", home);
  int rc = px_mkdir_p(bs->dir, 0700);
  if (rc) {
    PX_LOGE("market", "cannot create %s: %s", bs->dir, px_strerror(rc));
    px_free(bs);
    return rc;
  }
  *out = bs;
  return 0;
}

void px_blobstore_free(px_blobstore_t *bs) {
  if (!bs) return;
  for (size_t i = 0; i < LEAF_CACHE; i++)
    px_free(bs->cache[i].leaves);
  px_free(bs);
}

int px_blobstore_path(const px_blobstore_t *bs, const uint8_t root[PX_HASH_LEN],
                      char *out, size_t cap) {
  if (!bs || cap < strlen(bs->dir) + 2 * PX_HASH_LEN + 2) return PX_EINVAL;
  blob_path(bs, root, out, cap);
  return 0;
}

int px_blobstore_put(px_blobstore_t *bs, const void *data, size_t n,
                     uint8_t root[PX_HASH_LEN]) {
  if (!bs || (!data && n)) return PX_EINVAL;
  int rc = px_blob_root(data, n, root);
  if (rc) return rc;
  if (px_blobstore_has(bs, root, n) == 1) return 0;
  char path[4300];
  blob_path(bs, root, path, sizeof path);
  rc = px_file_write_atomic(path, data, n, 0600);
  if (rc) PX_LOGE("market", "cannot write blob %s: %s", path, px_strerror(rc));
  return rc;
}

int px_blobstore_has(px_blobstore_t *bs, const uint8_t root[PX_HASH_LEN],
                     uint64_t size) {
  if (!bs) return 0;
  char path[4300];
  blob_path(bs, root, path, sizeof path);
  struct stat st;
  return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
         (uint64_t)st.st_size == size;
}

int px_blobstore_read(px_blobstore_t *bs, const uint8_t root[PX_HASH_LEN],
                      uint8_t **data, size_t *n) {
  *data = NULL;
  *n = 0;
  if (!bs) return PX_EINVAL;
  char path[4300];
  blob_path(bs, root, path, sizeof path);
  struct stat st;
  if (stat(path, &st) != 0) return PX_ENOENT;
  int rc = px_file_read_all(path, (size_t)st.st_size + 1, data, n);
  return rc;
}

/* Leaves of a stored blob, from the cache or computed (and checked
 * against the root) from the file. */
static int leaves_get(px_blobstore_t *bs, const uint8_t root[PX_HASH_LEN],
                      uint64_t size, leaf_cache_t **out) {
  leaf_cache_t *victim = &bs->cache[0];
  for (size_t i = 0; i < LEAF_CACHE; i++) {
    leaf_cache_t *e = &bs->cache[i];
    if (e->leaves && e->size == size && !memcmp(e->root, root, PX_HASH_LEN)) {
      e->used = ++bs->stamp;
      *out = e;
      return 0;
    }
    if (!e->leaves || e->used < victim->used) victim = e;
  }
  if (px_blobstore_has(bs, root, size) != 1) return PX_ENOENT;
  uint64_t nc = px_blob_chunk_count(size);
  if (nc == 0 || nc > PX_BLOB_MAX_CHUNKS) return PX_EINVAL;
  char path[4300];
  blob_path(bs, root, path, sizeof path);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return PX_ENOENT;
  uint8_t(*leaves)[PX_HASH_LEN] = px_malloc(nc * PX_HASH_LEN);
  uint8_t *buf = px_malloc(PX_BLOB_CHUNK);
  int rc = leaves && buf ? 0 : PX_ENOMEM;
  for (uint64_t i = 0; i < nc && !rc; i++) {
    size_t len = px_blob_chunk_len(size, i);
    ssize_t got = pread(fd, buf, len, (off_t)(i * PX_BLOB_CHUNK));
    if (got != (ssize_t)len) {
      rc = PX_EIO;
      break;
    }
    px_merkle_leaf(leaves[i], buf, len);
  }
  close(fd);
  px_free(buf);
  uint8_t check[PX_HASH_LEN];
  if (!rc)
    rc = px_merkle_root((const uint8_t(*)[PX_HASH_LEN])leaves, nc, check);
  if (!rc && memcmp(check, root, PX_HASH_LEN)) {
    PX_LOGE("market", "blob %s is damaged (content does not match its name)",
            path);
    rc = PX_EAUTH;
  }
  if (rc) {
    px_free(leaves);
    return rc;
  }
  px_free(victim->leaves);
  memcpy(victim->root, root, PX_HASH_LEN);
  victim->size = size;
  victim->leaves = leaves;
  victim->n = nc;
  victim->used = ++bs->stamp;
  *out = victim;
  return 0;
}

int px_blobstore_chunk(px_blobstore_t *bs, const uint8_t root[PX_HASH_LEN],
                       uint64_t size, uint64_t index, px_mkt_chunk_t *out,
                       px_buf_t *scratch) {
  memset(out, 0, sizeof *out);
  if (!bs || index >= px_blob_chunk_count(size)) return PX_EINVAL;
  leaf_cache_t *e;
  int rc = leaves_get(bs, root, size, &e);
  if (rc) return rc;
  size_t len = px_blob_chunk_len(size, index), depth = 0;
  rc = px_merkle_proof((const uint8_t(*)[PX_HASH_LEN])e->leaves, e->n,
                       (size_t)index, out->path, &depth);
  if (rc) return rc;
  px_buf_reset(scratch);
  if ((rc = px_buf_reserve(scratch, len))) return rc;
  char path[4300];
  blob_path(bs, root, path, sizeof path);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return PX_ENOENT;
  ssize_t got = pread(fd, scratch->data, len, (off_t)(index * PX_BLOB_CHUNK));
  close(fd);
  if (got != (ssize_t)len) return PX_EIO;
  scratch->len = len;
  uint8_t leaf[PX_HASH_LEN];
  px_merkle_leaf(leaf, scratch->data, len);
  if (memcmp(leaf, e->leaves[index], PX_HASH_LEN)) return PX_EAUTH;
  memcpy(out->root, root, PX_HASH_LEN);
  out->index = index;
  out->data = scratch->data;
  out->len = len;
  out->depth = (uint32_t)depth;
  return 0;
}

/* ---- fetcher --------------------------------------------------------------
 */

typedef struct {
  uint64_t req_id; /* 0: not outstanding */
  uint8_t done;
  uint8_t tries;
} fetch_slot_t;

struct px_fetch {
  px_p2p_t *p2p;
  uint8_t peer[PX_PK_LEN];
  uint8_t root[PX_HASH_LEN];
  uint64_t size, first, count;
  uint64_t timeout_ms;
  fetch_slot_t *slot; /* count */
  uint8_t *data;      /* chunks [first, first+count), contiguous */
  size_t len;
  uint64_t next; /* next chunk (relative) never requested */
  uint64_t outstanding, done;
  int status; /* 0 running, 1 done, < 0 failed */
};

static void fetch_fail(px_fetch_t *f, int err, const char *why) {
  if (f->status) return;
  f->status = err;
  char hex[17];
  px_hex_encode(f->root, 8, hex);
  PX_LOGW("market", "fetch of blob %s from peer failed: %s (%s)", hex, why,
          px_strerror(err));
}

static int fetch_send(px_fetch_t *f, uint64_t rel, uint64_t now) {
  px_mkt_chunk_req_t q;
  memcpy(q.root, f->root, PX_HASH_LEN);
  q.size = f->size;
  q.index = f->first + rel;
  px_buf_t b;
  px_buf_init(&b, 256);
  int rc = px_mkt_chunk_req_encode(&q, &b);
  uint64_t id = 0;
  if (!rc)
    rc = px_p2p_request(f->p2p, f->peer, PX_MKT_METHOD_CHUNK, b.data, b.len,
                        f->timeout_ms, now, &id);
  px_buf_release(&b);
  if (rc) return rc;
  f->slot[rel].req_id = id;
  f->slot[rel].tries++;
  f->outstanding++;
  return 0;
}

/* Keep the window full. */
static void fetch_pump(px_fetch_t *f, uint64_t now) {
  while (!f->status && f->outstanding < PX_FETCH_WINDOW && f->next < f->count) {
    int rc = fetch_send(f, f->next, now);
    if (rc) {
      fetch_fail(f, rc == PX_ENOTFOUND ? PX_ECLOSED : rc,
                 "cannot send chunk request (peer not connected?)");
      return;
    }
    f->next++;
  }
  if (!f->status && f->done == f->count) f->status = 1;
}

int px_fetch_new(px_p2p_t *p2p, const uint8_t peer[PX_PK_LEN],
                 const uint8_t root[PX_HASH_LEN], uint64_t size, uint64_t first,
                 uint64_t count, uint64_t timeout_ms, uint64_t now,
                 px_fetch_t **out) {
  *out = NULL;
  uint64_t nc = px_blob_chunk_count(size);
  if (!p2p || count == 0 || first >= nc || count > nc - first ||
      nc > PX_BLOB_MAX_CHUNKS)
    return PX_EINVAL;
  uint64_t end = first + count == nc ? size : (first + count) * PX_BLOB_CHUNK;
  size_t len = (size_t)(end - first * PX_BLOB_CHUNK);
  px_fetch_t *f = px_calloc(1, sizeof *f);
  if (!f) return PX_ENOMEM;
  f->slot = px_calloc((size_t)count, sizeof *f->slot);
  f->data = px_malloc(len);
  if (!f->slot || !f->data) {
    px_fetch_free(f);
    return PX_ENOMEM;
  }
  f->p2p = p2p;
  memcpy(f->peer, peer, PX_PK_LEN);
  memcpy(f->root, root, PX_HASH_LEN);
  f->size = size, f->first = first, f->count = count, f->len = len;
  f->timeout_ms = timeout_ms ? timeout_ms : 10000;
  fetch_pump(f, now);
  *out = f;
  return 0;
}

int px_fetch_on_response(px_fetch_t *f, const px_p2p_fx_t *fx, uint64_t now) {
  if (!f || !fx->req_id) return 0;
  uint64_t rel = 0;
  int found = 0;
  /* outstanding requests sit in [next - window, next): search backwards */
  for (uint64_t k = f->next; k-- > 0 && !found;) {
    if (f->slot[k].req_id == fx->req_id) rel = k, found = 1;
    if (f->next - k > 4 * PX_FETCH_WINDOW + f->count / 8 + 64) break;
  }
  if (!found) {
    for (uint64_t k = 0; k < f->count && !found; k++)
      if (f->slot[k].req_id == fx->req_id) rel = k, found = 1;
    if (!found) return 0;
  }
  f->slot[rel].req_id = 0;
  f->outstanding--;
  if (f->status) return 1;
  if (fx->err == PX_ETIMEOUT && f->slot[rel].tries < PX_FETCH_RETRIES) {
    if (fetch_send(f, rel, now))
      fetch_fail(f, PX_ECLOSED, "cannot resend chunk request");
    return 1;
  }
  if (fx->err) {
    fetch_fail(f, fx->err, "chunk request failed");
    return 1;
  }
  px_mkt_chunk_t c;
  int rc = px_mkt_chunk_decode(fx->data.data, fx->data.len, &c);
  if (!rc &&
      (memcmp(c.root, f->root, PX_HASH_LEN) || c.index != f->first + rel))
    rc = PX_EPROTO;
  if (!rc)
    rc = px_blob_verify_chunk(f->root, f->size, c.index, c.data, c.len,
                              (const uint8_t(*)[PX_HASH_LEN])c.path, c.depth);
  if (rc) {
    fetch_fail(f, PX_EAUTH, "peer sent a bad chunk");
    return 1;
  }
  memcpy(f->data + rel * PX_BLOB_CHUNK, c.data, c.len);
  f->slot[rel].done = 1;
  f->done++;
  fetch_pump(f, now);
  return 1;
}

void px_fetch_tick(px_fetch_t *f, uint64_t now) {
  if (f) fetch_pump(f, now);
}

int px_fetch_status(const px_fetch_t *f) { return f ? f->status : PX_EINVAL; }

const uint8_t *px_fetch_data(const px_fetch_t *f, size_t *len) {
  if (!f || f->status != 1) {
    if (len) *len = 0;
    return NULL;
  }
  if (len) *len = f->len;
  return f->data;
}

void px_fetch_free(px_fetch_t *f) {
  if (!f) return;
  px_free(f->slot);
  px_free(f->data);
  px_free(f);
}
