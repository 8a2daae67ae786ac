/*
 * fuzz_models.c — libFuzzer target for the gateway's model registry
 * decoder (px_models_parse, HOME/models.json; src/node/models.c).
 *
 * It must return 0 or a negative code, never crash, and on success every
 * entry is valid: a name of 1..PX_MODEL_NAME_MAX-1 allowed characters,
 * unique; sizes, vocabulary and context positive; the three template
 * strings present.  On failure nothing is left allocated (LSan).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plexus/models.h"

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) {
  px_models_t m;
  char why[256];
  int rc = px_models_parse(d, n, &m, why, sizeof why);
  if (rc > 0) abort();
  if (rc) {
    if (m.n || m.e || !why[0]) abort();
    return 0;
  }
  if (m.n > PX_MODELS_MAX) abort();
  for (size_t i = 0; i < m.n; i++) {
    const px_model_entry_t *e = &m.e[i];
    size_t l = strnlen(e->name, PX_MODEL_NAME_MAX);
    if (!l || l >= PX_MODEL_NAME_MAX) abort();
    if (!e->model_size || !e->tokenizer_size || e->vocab_size < 1 ||
        e->seq_len < 1)
      abort();
    if (!e->tpl.prefix || !e->tpl.message || !e->tpl.suffix) abort();
    if (px_models_find(&m, e->name) != e) abort();
  }
  px_models_release(&m);
  return 0;
}
