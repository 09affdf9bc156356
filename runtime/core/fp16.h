/* fp16.h - IEEE binary16 <-> binary32 conversion.
 *
 * Round-to-nearest-even, subnormals kept, overflow to +-inf, NaN preserved (quiet). The _n forms are
 * vectorised where the CPU allows (F16C on x86-64, NEON on arm64) and agree bit for bit with the
 * scalar forms, which are the portable reference. */
#ifndef ANE_CORE_FP16_H
#define ANE_CORE_FP16_H

#include <stddef.h>
#include <stdint.h>

uint16_t fp16_from_f32(float x);
float fp16_to_f32(uint16_t h);
/* A double rounded once to fp16 (no double rounding through fp32): for constants and Lua numbers. */
uint16_t fp16_from_f64(double x);
void fp16_from_f32_n(uint16_t *dst, const float *src, size_t n);
void fp16_to_f32_n(float *dst, const uint16_t *src, size_t n);
/* x rounded through fp16 and back: what the ANE holds for an fp32 value. In place for the _n form. */
float fp16_round(float x);
void fp16_round_n(float *x, size_t n);

/* Which path the _n forms take: "f16c", "neon" or "scalar". */
const char *fp16_simd(void);
/* Enable (1) or disable (0) the vector paths, for tests and benchmarks; returns the old setting.
 * Atomic: conversions already running on other threads finish on the path they started. */
int fp16_set_simd(int on);

#endif
