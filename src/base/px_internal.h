/*
 * px_internal.h — included last by every .c file in libplexus.
 *
 * Pulls in the public base header and then bans the C library calls that
 * have no bound (git's banned.h idea): using one is a compile error naming
 * the sized replacement.  It must come after the system headers, since the
 * macros would otherwise rewrite their declarations.
 */
#ifndef PX_INTERNAL_H
#define PX_INTERNAL_H

#include "plexus/base.h"

#define PX_BANNED(func) sorry_##func##_is_banned_use_px_buf_or_snprintf
#undef strcpy
#define strcpy(x, y) PX_BANNED(strcpy)
#undef strcat
#define strcat(x, y) PX_BANNED(strcat)
#undef sprintf
#define sprintf(...) PX_BANNED(sprintf)
#undef vsprintf
#define vsprintf(...) PX_BANNED(vsprintf)
#undef gets
#define gets(x) PX_BANNED(gets)
#undef strtok
#define strtok(x, y) PX_BANNED(strtok)
#undef gmtime
#define gmtime(x) PX_BANNED(gmtime)
#undef localtime
#define localtime(x) PX_BANNED(localtime)

/* Store/load little-endian integers (wire and file formats). */
static inline void px_put_u16le(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}
static inline void px_put_u32le(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}
static inline void px_put_u64le(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++)
    p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t px_get_u16le(const uint8_t *p) {
  return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t px_get_u32le(const uint8_t *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}
static inline uint64_t px_get_u64le(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--)
    v = (v << 8) | p[i];
  return v;
}
static inline void px_put_u16be(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static inline uint16_t px_get_u16be(const uint8_t *p) {
  return (uint16_t)((p[0] << 8) | p[1]);
}

#endif
