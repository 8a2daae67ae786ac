/*
 * fuzz_config.c — the config file parser (a file a user edits: outside
 * input).  Any bytes must parse or fail cleanly; a parse that succeeds must
 * survive a write/parse round trip with the same entries.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/base.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static px_config_t c, d;
  px_config_init(&c);
  int line = 0;
  if (px_config_parse(&c, (const char *)data, size, &line) != 0) return 0;
  /* Re-serialise as the writer would and parse again. */
  px_buf_t b;
  px_buf_init(&b, 0);
  for (size_t i = 0; i < c.n; i++)
    px_buf_printf(&b, "%s = \"%s\"\n", c.entries[i].key, c.entries[i].value);
  px_config_init(&d);
  if (px_config_parse(&d, (const char *)b.data, b.len, &line) != 0) abort();
  if (d.n != c.n) abort();
  for (size_t i = 0; i < c.n; i++)
    if (strcmp(px_config_get(&d, c.entries[i].key), c.entries[i].value) != 0)
      abort();
  px_buf_release(&b);
  return 0;
}
