/*
 * cpu.c — the CPU feature table and the choice of kernel table.
 *
 * The table is the one piece of process-wide state this module has
 * (STYLE.md habit 5): it is filled once, under pthread_once, from
 * __builtin_cpu_supports, which itself reads CPUID and, for the AVX
 * families, checks that the OS saves the wide registers (XGETBV).  After
 * that it is read-only.
 *
 * Levels: AVX2 needs AVX2+FMA+F16C; AVX-512 needs F, BW, VL, DQ, and VNNI
 * too, because the int8 kernel of that level is built on VPDPBUSD (a CPU
 * with AVX-512 but no VNNI runs the AVX2 level — same results, by design).
 */
#include <pthread.h>
#include <stddef.h>

#include "compute/compute_internal.h"
#include "base/px_internal.h"

static px_cpu_features_t g_cpu;
static pthread_once_t g_cpu_once = PTHREAD_ONCE_INIT;

static void cpu_detect(void) {
  __builtin_cpu_init();
  g_cpu.avx2 = __builtin_cpu_supports("avx2") != 0;
  g_cpu.fma = __builtin_cpu_supports("fma") != 0;
  g_cpu.f16c = 1; /* implied by AVX2 on every shipped CPU; not in the API */
  g_cpu.avx512f = __builtin_cpu_supports("avx512f") != 0;
  g_cpu.avx512bw = __builtin_cpu_supports("avx512bw") != 0;
  g_cpu.avx512vl = __builtin_cpu_supports("avx512vl") != 0;
  g_cpu.avx512dq = __builtin_cpu_supports("avx512dq") != 0;
  g_cpu.avx512vnni = __builtin_cpu_supports("avx512vnni") != 0;
}

const px_cpu_features_t *px_cpu_features(void) {
  pthread_once(&g_cpu_once, cpu_detect);
  return &g_cpu;
}

px_simd_t px_cpu_best_simd(void) {
  const px_cpu_features_t *f = px_cpu_features();
  if (!(f->avx2 && f->fma)) return PX_SIMD_SCALAR;
  if (f->avx512f && f->avx512bw && f->avx512vl && f->avx512dq && f->avx512vnni)
    return PX_SIMD_AVX512;
  return PX_SIMD_AVX2;
}

const char *px_simd_name(px_simd_t s) {
  switch (s) {
  case PX_SIMD_SCALAR:
    return "scalar";
  case PX_SIMD_AVX2:
    return "avx2";
  case PX_SIMD_AVX512:
    return "avx512";
  }
  return "unknown";
}

const px_kernels_t *px_kernels_for(px_simd_t s) {
  switch (s) {
  case PX_SIMD_AVX512:
    return &px_kernels_avx512;
  case PX_SIMD_AVX2:
    return &px_kernels_avx2;
  case PX_SIMD_SCALAR:
    break;
  }
  return &px_kernels_scalar;
}

const px_kernels_t *px_kernels_ctx(const px_compute_t *c) {
  return px_kernels_for(c ? c->simd : px_cpu_best_simd());
}
