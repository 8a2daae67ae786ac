/*
 * sample.c — seeded token sampling (llama2.c's sampler, made exact).
 *
 * temperature == 0 (or below): argmax, first maximum.  Otherwise:
 *   p_i = softmax(logits_i / T)            (ops.c's row softmax)
 *   coin = (rng >> 40) * 2^-24, uniform in [0, 1) with 24 bits
 *   0 < top_p < 1: candidates are the i with p_i >= (1 - top_p) / (n - 1);
 *     they are sorted by (p descending, index ascending) — a total order,
 *     so every correct sort agrees; keep the shortest prefix whose running
 *     sum (sequential, +) exceeds top_p (all of them if none does);
 *     r = coin * that sum; return the first candidate whose running sum
 *     exceeds r (the last one if rounding leaves none).
 *   otherwise: the first i whose running sum of p exceeds coin (else n-1).
 */
#include <stdlib.h>

#include "compute/compute_internal.h"
#include "base/px_internal.h"

static void sort_desc(int *idx, const float *p, int n) {
  /* Insertion into a heap would do too; a shell sort keeps it simple and
   * allocation-free.  The key (p desc, index asc) is a total order. */
  static const int gaps[] = {701, 301, 132, 57, 23, 10, 4, 1};
  for (size_t gi = 0; gi < PX_ARRAY_LEN(gaps); gi++) {
    int gap = gaps[gi];
    for (int a = gap; a < n; a++) {
      int v = idx[a];
      int b = a;
      while (b >= gap) {
        int u = idx[b - gap];
        int before = p[v] > p[u] || (p[v] == p[u] && v < u);
        if (!before) break;
        idx[b] = u;
        b -= gap;
      }
      idx[b] = v;
    }
  }
}

int px_sample_f32(const float *logits, int n, float temperature, float top_p,
                  px_rng_t *rng, float *probs, int *idx) {
  if (n <= 1) return 0;
  if (!(temperature > 0.0f)) return px_argmax_f32(logits, n);
  for (int i = 0; i < n; i++)
    probs[i] = logits[i] / temperature;
  px_kernels_for(px_cpu_best_simd())->softmax(probs, probs, n);
  float coin = (float)(px_rng_next(rng) >> 40) * (1.0f / 16777216.0f);
  if (top_p > 0.0f && top_p < 1.0f) {
    float cutoff = (1.0f - top_p) / (float)(n - 1);
    int nc = 0;
    for (int i = 0; i < n; i++)
      if (probs[i] >= cutoff) idx[nc++] = i;
    if (nc == 0) return px_argmax_f32(probs, n);
    sort_desc(idx, probs, nc);
    float cum = 0.0f;
    int last = nc - 1;
    for (int i = 0; i < nc; i++) {
      cum = cum + probs[idx[i]];
      if (cum > top_p) {
        last = i;
        break;
      }
    }
    float r = coin * cum;
    float run = 0.0f;
    for (int i = 0; i <= last; i++) {
      run = run + probs[idx[i]];
      if (r < run) return idx[i];
    }
    return idx[last];
  }
  float run = 0.0f;
  for (int i = 0; i < n; i++) {
    run = run + probs[i];
    if (coin < run) return i;
  }
  return n - 1;
}
