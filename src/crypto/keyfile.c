/*
 * keyfile.c — Ed25519 key files on disk (format: docs/keys.md).
 *
 * A key file is exactly three LF-terminated lines of ASCII:
 *
 *     plexus-ed25519-v1
 *     seed: <64 lowercase hex digits>
 *     pk: <64 lowercase hex digits>
 *
 * Only the 32-byte seed is secret; the public key is stored too so that a
 * damaged seed (bit rot, a bad hand edit) is caught on load: the parser
 * re-derives the key pair from the seed and refuses the file (PX_ECRYPTO)
 * unless it reproduces the stored pk.  The parser is strict — one canonical
 * text per key, no comments, no CR, no trailing bytes — because a key file
 * is written by this code, never by hand, and a strict parser is easy to
 * fuzz (tests/fuzz/fuzz_keyfile.c checks that parse ∘ format is identity).
 *
 * Permissions follow ssh's rule for private keys: the file must not be
 * readable or writable by group or others.  px_keyfile_read opens the file
 * first and checks the mode with fstat on that descriptor, so the file
 * checked is the file read; it refuses non-regular files (O_NONBLOCK keeps a
 * FIFO from hanging the open) and reads at most a small bound into a stack
 * buffer that is wiped afterwards, so no copy of the seed is left in freed
 * heap memory.
 *
 * Writes go through px_file_write_atomic (tmp + fsync + rename) with mode
 * 0600, so the seed is never visible under wider permissions and a crash
 * leaves the old key or the new one.  Without `overwrite` an existing path
 * (even a dangling symlink) is refused with PX_EEXIST; the check and the
 * rename are not one atomic step, which is acceptable for a command a user
 * runs by hand.
 *
 * Hex digits of the seed are decoded with arithmetic rather than branches,
 * as libsodium's sodium_hex2bin does, so decoding does not shape timing.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "plexus/crypto.h"
#include "crypto/keyfile.h"

#include "base/px_internal.h"

#define SEED_TAG "seed: "
#define PK_TAG "pk: "
#define VERSION_PREFIX "plexus-ed25519-v"
/* Anything larger than this cannot be a key file. */
#define KEYFILE_READ_MAX 512

_Static_assert(PX_KEYFILE_LEN == 158, "key file layout");
_Static_assert(PX_KEYFILE_LEN < KEYFILE_READ_MAX, "read bound");

/* Decode 2n lowercase hex digits.  Returns 0, or PX_EDECODE if any char is
 * not in [0-9a-f].  No branch depends on the digits. */
static int hex_decode_lower(const uint8_t *s, uint8_t *out, size_t n) {
  unsigned bad = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned byte = 0;
    for (int h = 0; h < 2; h++) {
      unsigned c = s[2 * i + (size_t)h];
      unsigned d = c - (unsigned)'0';       /* 0..9 when a digit */
      unsigned l = c - (unsigned)'a';       /* 0..5 when a-f */
      unsigned is_d = (d - 10u) >> 31 & 1u; /* d < 10, d < 2^31 */
      unsigned is_l = (l - 6u) >> 31 & 1u;  /* l < 6 */
      is_d &= ~(d >> 31); /* c < '0' wrapped d to a huge value */
      is_l &= ~(l >> 31);
      unsigned v = (d & (0u - is_d)) | ((l + 10u) & (0u - is_l));
      bad |= (is_d | is_l) ^ 1u;
      byte = (byte << 4) | (v & 15u);
    }
    out[i] = (uint8_t)byte;
  }
  return bad ? PX_EDECODE : 0;
}

void px_keyfile_format(const px_keypair_t *kp, char out[PX_KEYFILE_LEN + 1]) {
  char *w = out;
  memcpy(w, PX_KEYFILE_MAGIC "\n" SEED_TAG, sizeof PX_KEYFILE_MAGIC + 6);
  w += sizeof PX_KEYFILE_MAGIC + 6;
  px_hex_encode(kp->sk, PX_SEED_LEN, w); /* sk starts with the seed */
  w += 2 * PX_SEED_LEN;
  memcpy(w, "\n" PK_TAG, 5);
  w += 5;
  px_hex_encode(kp->pk, PX_PK_LEN, w);
  w += 2 * PX_PK_LEN;
  *w++ = '\n';
  *w = 0;
}

int px_keyfile_parse(const uint8_t *p, size_t n, px_keypair_t *kp) {
  static const char head[] = PX_KEYFILE_MAGIC "\n" SEED_TAG;
  const size_t head_len = sizeof head - 1;
  const size_t vp_len = sizeof VERSION_PREFIX - 1;
  if (!kp || (!p && n)) return PX_EINVAL;
  /* A "plexus-ed25519-vN" first line that is not ours: another version. */
  if (n >= vp_len && memcmp(p, VERSION_PREFIX, vp_len) == 0) {
    const uint8_t *nl = memchr(p, '\n', n);
    size_t line = nl ? (size_t)(nl - p) : n;
    if (line != sizeof PX_KEYFILE_MAGIC - 1 ||
        memcmp(p, PX_KEYFILE_MAGIC, line) != 0)
      return PX_EVERSION;
  }
  if (n != PX_KEYFILE_LEN) return PX_EDECODE;
  const uint8_t *seed_hex = p + head_len;
  const uint8_t *tail = seed_hex + 2 * PX_SEED_LEN;
  const uint8_t *pk_hex = tail + 5;
  if (memcmp(p, head, head_len) != 0 || memcmp(tail, "\n" PK_TAG, 5) != 0 ||
      pk_hex[2 * PX_PK_LEN] != '\n')
    return PX_EDECODE;

  uint8_t seed[PX_SEED_LEN], pk[PX_PK_LEN];
  px_keypair_t tmp;
  int rc = hex_decode_lower(seed_hex, seed, PX_SEED_LEN);
  if (!rc) rc = hex_decode_lower(pk_hex, pk, PX_PK_LEN);
  if (!rc) rc = px_key_from_seed(&tmp, seed);
  if (!rc && sodium_memcmp(tmp.pk, pk, PX_PK_LEN) != 0) rc = PX_ECRYPTO;
  if (!rc) memcpy(kp, &tmp, sizeof tmp);
  sodium_memzero(seed, sizeof seed);
  px_key_wipe(&tmp);
  return rc;
}

int px_keyfile_write(const char *path, const px_keypair_t *kp, int overwrite) {
  if (!path || !*path || !kp) return PX_EINVAL;
  /* Never write a file that would fail to load: the pair must be the one
   * its seed derives. */
  px_keypair_t check;
  int rc = px_key_from_seed(&check, kp->sk);
  if (!rc && sodium_memcmp(&check, kp, sizeof check) != 0) rc = PX_EINVAL;
  px_key_wipe(&check);
  if (rc) return rc;

  if (!overwrite) {
    struct stat st;
    if (lstat(path, &st) == 0) return PX_EEXIST;
    if (errno != ENOENT) return px_err_from_errno(errno);
  }
  char text[PX_KEYFILE_LEN + 1];
  px_keyfile_format(kp, text);
  rc = px_file_write_atomic(path, text, PX_KEYFILE_LEN, 0600);
  sodium_memzero(text, sizeof text);
  return rc;
}

int px_keyfile_read(const char *path, px_keypair_t *kp) {
  if (!path || !kp) return PX_EINVAL;
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) return px_err_from_errno(errno);

  uint8_t buf[KEYFILE_READ_MAX + 1];
  size_t len = 0;
  int rc = 0;
  struct stat st;
  if (fstat(fd, &st) != 0)
    rc = px_err_from_errno(errno);
  else if (!S_ISREG(st.st_mode))
    rc = PX_EINVAL;
  else if (st.st_mode & 077)
    rc = PX_EPERM;
  while (!rc && len < sizeof buf) {
    ssize_t r = read(fd, buf + len, sizeof buf - len);
    if (r < 0) {
      if (errno == EINTR) continue;
      rc = px_err_from_errno(errno);
    } else if (r == 0) {
      break;
    } else {
      len += (size_t)r;
    }
  }
  close(fd);
  if (!rc && len > KEYFILE_READ_MAX) rc = PX_EDECODE;
  if (!rc) rc = px_keyfile_parse(buf, len, kp);
  sodium_memzero(buf, sizeof buf);
  return rc;
}
