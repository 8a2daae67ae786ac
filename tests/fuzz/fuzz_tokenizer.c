/*
 * fuzz_tokenizer.c — tokenizer.bin and llama2.c BPE encode/decode.  Input:
 * u16 LE vocab_size, u8 text length, the text, then tokenizer.bin bytes.
 * Loading must succeed or fail cleanly; encode must return ids inside the
 * vocabulary, and decode must accept every one of them.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/base.h"
#include "plexus/model_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 3) return 0;
  int vocab = data[0] | (data[1] << 8);
  size_t tl = data[2];
  if (size - 3 < tl) return 0;
  const char *text = (const char *)data + 3;
  size_t rest = size - 3 - tl;
  uint8_t *tb = malloc(rest ? rest : 1);
  if (!tb) return 0;
  memcpy(tb, data + 3 + tl, rest);
  px_tokenizer_t *t = NULL;
  int rc = px_tokenizer_load_mem(tb, rest, vocab, &t);
  free(tb); /* the tokenizer keeps its own copy */
  if (rc) {
    if (t || rc >= 0) abort();
    return 0;
  }
  int tokens[260];
  size_t n = 0;
  rc = px_tokenizer_encode(t, text, tl, 1, 1, tokens, 260, &n);
  if (rc == 0) {
    for (size_t i = 0; i < n; i++) {
      const char *s;
      size_t len;
      if (tokens[i] < 0 || tokens[i] >= vocab) abort();
      if (px_tokenizer_decode(t, i ? tokens[i - 1] : 1, tokens[i], &s, &len))
        abort();
      if (len && !s) abort();
    }
  } else if (rc != PX_ERANGE) {
    abort();
  }
  px_tokenizer_free(t);
  return 0;
}
