/*
 * math.c — the project's own exp, log, tanh, sigmoid, SiLU and GELU.
 *
 * libm's results differ between libc versions (and glibc's expf between
 * releases), so a verifiable kernel may not call it.  These functions use
 * only IEEE-754 operations that are correctly rounded everywhere — +, -, *,
 * /, fmaf (correctly rounded by C11 F.10.10.1, glibc implements it exactly
 * when the CPU lacks FMA) — plus bit manipulation.  The vector versions in
 * ops_avx2.c and ops_avx512.c perform the very same operations in the same
 * order, lane by lane, which is why every SIMD level gives the same bits.
 *
 * exp (Cephes' expf polynomial, rearranged for FMA):
 *   NaN -> x + x;  x is clamped to [-104, 89] (exp is 0 / inf beyond);
 *   n = (fma(x, log2e, 1.5*2^23) - 1.5*2^23)      round-to-nearest integer
 *   r = fma(n, -C1, x); r = fma(n, -C2, r)         C1 + C2 = ln 2
 *   p = P0; p = fma(p, r, Pi) for P1..P5;  y = fma(p, r*r, r) + 1
 *   result = (y * 2^n1) * 2^n2 with n1 = n >> 1, n2 = n - n1
 * The split scaling reaches the subnormal range with one rounding and
 * overflows to +inf exactly where exp does.  Max error about 1 ulp.
 *
 * tanh:  |x| < 2^-12: x;  |x| < 0.625: z = x*x, Cephes' odd polynomial,
 * fma(p*z, x, x); otherwise:   t = 1 - 2 / (exp(2|x|) + 1), with the sign of x.
 * sigmoid(x) = 1 / (1 + exp(-x));  silu(x) = x / (1 + exp(-x));
 * gelu(x) = x / (1 + exp(-v)), v = B * fma(A, (x*x)*x, x), which equals
 *   GPT-2's 0.5 x (1 + tanh(sqrt(2/pi)(x + 0.044715 x^3))) and keeps its
 *   relative accuracy for negative x;  silu(-inf) = gelu(-inf) = -0.
 * log (scalar only): Cephes' logf on the mantissa in [sqrt(1/2), sqrt(2)).
 */
#include <math.h>
#include <stdint.h>

#include "compute/compute_internal.h"
#include "base/px_internal.h"

float px_expf(float x) {
  if (x != x) return x + x;
  float xc = x < PX_EXP_LO ? PX_EXP_LO : x;
  xc = xc > PX_EXP_HI ? PX_EXP_HI : xc;
  float n = fmaf(xc, PX_EXP_LOG2E, PX_EXP_MAGIC) - PX_EXP_MAGIC;
  float r = fmaf(n, -PX_EXP_C1, xc);
  r = fmaf(n, -PX_EXP_C2, r);
  float p = PX_EXP_P0;
  p = fmaf(p, r, PX_EXP_P1);
  p = fmaf(p, r, PX_EXP_P2);
  p = fmaf(p, r, PX_EXP_P3);
  p = fmaf(p, r, PX_EXP_P4);
  p = fmaf(p, r, PX_EXP_P5);
  float y = fmaf(p, r * r, r) + 1.0f;
  int32_t ni = (int32_t)n;
  int32_t n1 = ni >> 1; /* arithmetic shift: floor(n / 2) */
  int32_t n2 = ni - n1;
  float s1 = px_u2f((uint32_t)(n1 + 127) << 23);
  float s2 = px_u2f((uint32_t)(n2 + 127) << 23);
  return (y * s1) * s2;
}

#define PX_TANH_SMALL 0.625f
#define PX_TANH_Q0 (-5.70498872745e-3f)
#define PX_TANH_Q1 2.06390887954e-2f
#define PX_TANH_Q2 (-5.37397155531e-2f)
#define PX_TANH_Q3 1.33314422036e-1f
#define PX_TANH_Q4 (-3.33332819422e-1f)

float px_tanhf(float x) {
  float ax = px_u2f(px_f2u(x) & 0x7fffffffu);
  if (ax < 0x1p-12f) /* tanh x == x in float; keeps -0 */
    return x;
  if (ax < PX_TANH_SMALL) {
    float z = x * x;
    float p = PX_TANH_Q0;
    p = fmaf(p, z, PX_TANH_Q1);
    p = fmaf(p, z, PX_TANH_Q2);
    p = fmaf(p, z, PX_TANH_Q3);
    p = fmaf(p, z, PX_TANH_Q4);
    return fmaf(p * z, x, x);
  }
  float e = px_expf(ax + ax);
  float t = 1.0f - 2.0f / (e + 1.0f);
  return px_u2f(px_f2u(t) | (px_f2u(x) & 0x80000000u));
}

float px_sigmoidf(float x) { return 1.0f / (1.0f + px_expf(-x)); }

float px_siluf(float x) {
  if (x == -INFINITY) return -0.0f;
  return x / (1.0f + px_expf(-x));
}

float px_geluf(float x) {
  if (x == -INFINITY) return -0.0f;
  float v = PX_GELU_B * fmaf(PX_GELU_A, (x * x) * x, x);
  return x / (1.0f + px_expf(-v));
}

float px_logf(float x) {
  uint32_t u = px_f2u(x);
  if (x != x) return x + x;
  if (x < 0.0f) return NAN;
  if (x == 0.0f) return -INFINITY;
  if (x == INFINITY) return x;
  int e = 0;
  if (u < 0x00800000u) { /* subnormal: scale by 2^25 */
    x = x * 33554432.0f;
    u = px_f2u(x);
    e = -25;
  }
  e += (int)(u >> 23) - 126; /* x = m * 2^e, m in [0.5, 1) */
  float m = px_u2f((u & 0x007fffffu) | 0x3f000000u);
  if (m < 0.70710678118654752f) {
    e -= 1;
    m = m + m - 1.0f;
  } else {
    m = m - 1.0f;
  }
  float z = m * m;
  float p = 7.0376836292e-2f;
  p = fmaf(p, m, -1.1514610310e-1f);
  p = fmaf(p, m, 1.1676998740e-1f);
  p = fmaf(p, m, -1.2420140846e-1f);
  p = fmaf(p, m, 1.4249322787e-1f);
  p = fmaf(p, m, -1.6668057665e-1f);
  p = fmaf(p, m, 2.0000714765e-1f);
  p = fmaf(p, m, -2.4999993993e-1f);
  p = fmaf(p, m, 3.3333331174e-1f);
  float fe = (float)e;
  float y = (p * m) * z;
  y = fmaf(fe, -2.12194440e-4f, y);
  y = fmaf(-0.5f, z, y);
  float r = m + y;
  return fmaf(fe, 0.693359375f, r);
}
