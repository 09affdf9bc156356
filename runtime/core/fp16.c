/* fp16.c - IEEE binary16 <-> binary32.
 *
 * The scalar functions are the reference. The _n forms use F16C (x86-64, chosen at run time so the
 * build needs no -mf16c) or NEON (arm64), and fall back to the scalar loop. NaNs come out quiet with
 * the payload truncated (fp32->fp16) or widened (fp16->fp32): what both F16C and NEON do, so every
 * path agrees bit for bit. */
#include "fp16.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define FP16_X86 1
#include <cpuid.h>
#include <immintrin.h>
#elif defined(__aarch64__)
#define FP16_NEON 1
#include <arm_neon.h>
#endif

static uint32_t f32_bits(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }
static float bits_f32(uint32_t u) { float x; memcpy(&x, &u, 4); return x; }

uint16_t fp16_from_f32(float x) {
    uint32_t f = f32_bits(x);
    uint16_t sign = (uint16_t)((f >> 16) & 0x8000);
    uint32_t exp = (f >> 23) & 0xff, man = f & 0x7fffff;
    if (exp == 0xff) /* inf, or NaN made quiet with the top payload bits kept */
        return (uint16_t)(sign | 0x7c00 | (man ? 0x200 | (man >> 13) : 0));
    int e = (int)exp - 127 + 15;
    if (e >= 0x1f) return sign | 0x7c00;
    if (e <= 0) {
        /* Subnormal half: value = m * 2^(exp-150); in units of 2^-24 that is m >> (126 - exp). */
        if (exp == 0) return sign; /* fp32 subnormals are far below half a half-subnormal */
        uint32_t m = man | 0x800000;
        int s = 126 - (int)exp;
        if (s > 24) return sign;
        uint32_t q = m >> s, rem = m & ((1u << s) - 1), half = 1u << (s - 1);
        if (rem > half || (rem == half && (q & 1))) q++;
        return (uint16_t)(sign | q); /* q == 0x400 is the smallest normal: still right */
    }
    uint32_t h = ((uint32_t)e << 10) | (man >> 13), rem = man & 0x1fff;
    if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) h++; /* a carry rolls into the exponent, maybe inf */
    return (uint16_t)(sign | h);
}

float fp16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    if (exp == 0x1f) return bits_f32(sign | 0x7f800000 | (man ? 0x400000 | (man << 13) : 0));
    if (exp == 0) {
        if (man == 0) return bits_f32(sign);
        int sh = 0; /* normalise: shift the leading 1 up to bit 10 */
        while (!(man & 0x400)) { man <<= 1; sh++; }
        return bits_f32(sign | ((uint32_t)(113 - sh) << 23) | ((man & 0x3ff) << 13));
    }
    return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

/* Round to fp32 with round-to-odd (truncate, then set the last bit if anything was lost), then to
 * fp16 with nearest-even: with 13 spare bits this equals one direct nearest-even rounding. */
uint16_t fp16_from_f64(double x) {
    float f = (float)x;
    if (x != x || (double)f == x) return fp16_from_f32(f);
    if (fabs((double)f) > fabs(x)) f = nextafterf(f, 0.0f);
    uint32_t u = f32_bits(f) | 1u;
    return fp16_from_f32(bits_f32(u));
}

float fp16_round(float x) { return fp16_to_f32(fp16_from_f32(x)); }

/* ---- path selection ---- */
/* fp16_set_simd(0) forces the scalar loops (tests, benchmarks); atomic so workers may convert meanwhile */
static atomic_int simd_off;
#define SIMD_OFF() atomic_load_explicit(&simd_off, memory_order_relaxed)

#ifdef FP16_X86
/* CPUID leaf 1 (ECX: OSXSAVE 27, AVX 28, F16C 29) and XCR0 (the OS saves XMM and YMM state).
 * Read directly: clang before 15 has no "f16c" in __builtin_cpu_supports. */
static int probe_f16c(void) {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return 0;
    if ((c & (7u << 27)) != (7u << 27)) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & 6u) == 6u;
}

/* Probed once: CPUID traps to the hypervisor in a VM (tens of microseconds on a loaded host),
 * and every fp16 conversion and rounding pass asks. */
static int have_f16c(void) {
    static atomic_int known = -1;
    int v = atomic_load_explicit(&known, memory_order_relaxed);
    if (v < 0) {
        v = probe_f16c();
        atomic_store_explicit(&known, v, memory_order_relaxed);
    }
    return v;
}

__attribute__((target("avx,f16c"))) static void from_f32_f16c(uint16_t *dst, const float *src, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm_storeu_si128((__m128i *)(void *)(dst + i), h);
    }
    for (; i < n; i++) dst[i] = fp16_from_f32(src[i]);
}

__attribute__((target("avx,f16c"))) static void to_f32_f16c(float *dst, const uint16_t *src, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(const void *)(src + i))));
    for (; i < n; i++) dst[i] = fp16_to_f32(src[i]);
}

__attribute__((target("avx,f16c"))) static void round_f16c(float *x, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_storeu_ps(x + i, _mm256_cvtph_ps(h));
    }
    for (; i < n; i++) x[i] = fp16_round(x[i]);
}
#endif

const char *fp16_simd(void) {
    if (SIMD_OFF()) return "scalar";
#if defined(FP16_X86)
    return have_f16c() ? "f16c" : "scalar";
#elif defined(FP16_NEON)
    return "neon";
#else
    return "scalar";
#endif
}

int fp16_set_simd(int on) {
    return !atomic_exchange_explicit(&simd_off, !on, memory_order_relaxed);
}

void fp16_from_f32_n(uint16_t *dst, const float *src, size_t n) {
    size_t i = 0;
#if defined(FP16_X86)
    if (!SIMD_OFF() && have_f16c()) { from_f32_f16c(dst, src, n); return; }
#elif defined(FP16_NEON)
    if (!SIMD_OFF())
        for (; i + 4 <= n; i += 4)
            vst1_u16(dst + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(src + i))));
#endif
    for (; i < n; i++) dst[i] = fp16_from_f32(src[i]);
}

void fp16_to_f32_n(float *dst, const uint16_t *src, size_t n) {
    size_t i = 0;
#if defined(FP16_X86)
    if (!SIMD_OFF() && have_f16c()) { to_f32_f16c(dst, src, n); return; }
#elif defined(FP16_NEON)
    if (!SIMD_OFF())
        for (; i + 4 <= n; i += 4)
            vst1q_f32(dst + i, vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16(src + i))));
#endif
    for (; i < n; i++) dst[i] = fp16_to_f32(src[i]);
}

void fp16_round_n(float *x, size_t n) {
    size_t i = 0;
#if defined(FP16_X86)
    if (!SIMD_OFF() && have_f16c()) { round_f16c(x, n); return; }
#elif defined(FP16_NEON)
    if (!SIMD_OFF())
        for (; i + 4 <= n; i += 4) vst1q_f32(x + i, vcvt_f32_f16(vcvt_f16_f32(vld1q_f32(x + i))));
#endif
    for (; i < n; i++) x[i] = fp16_round(x[i]);
}
