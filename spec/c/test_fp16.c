/* test_fp16.c - fp16 <-> fp32 against independent references, every path.
 *
 * fp16 -> fp32: all 65536 halves against ldexp of the decoded fields.
 * fp32 -> fp16: millions of floats (every half, every midpoint between neighbours and one ulp either
 * side, subnormal and overflow ranges, random bit patterns) against a nearest-even search over the
 * sorted table of half values done in double precision. Each check runs the scalar function, the
 * _n form on the vector path and the _n form forced to the scalar loop. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fp16.h"

static int fails;
#define CHECK(c, ...) do { if (!(c)) { if (++fails <= 20) { fprintf(stderr, "%s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } } while (0)

static uint32_t fbits(float x) { uint32_t u; memcpy(&u, &x, 4); return u; }
static float bitsf(uint32_t u) { float x; memcpy(&x, &u, 4); return x; }

/* Value of a finite half from its fields; 0x7c00 maps to 65536 (the virtual next step), which makes
 * "rounds past the largest half" fall out of the same search. */
static double half_value(uint16_t h) {
    int exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    double v = exp == 0 ? ldexp(man, -24) : ldexp(1024 + man, exp - 25);
    return (h & 0x8000) ? -v : v;
}

static uint64_t rs = 0x9e3779b97f4a7c15u;
static uint64_t rnd(void) { rs ^= rs << 13; rs ^= rs >> 7; rs ^= rs << 17; return rs; }

static double table[0x7c01]; /* non-negative halves 0..0x7c00, increasing */

static uint16_t ref_from_f64(double x) {
    uint16_t sign = signbit(x) ? 0x8000 : 0;
    double a = fabs(x);
    if (a >= table[0x7c00]) return sign | 0x7c00;
    int lo = 0, hi = 0x7c00; /* table[lo] <= a < table[hi] */
    while (hi - lo > 1) {
        int mid = (lo + hi) / 2;
        if (table[mid] <= a) lo = mid; else hi = mid;
    }
    double dl = a - table[lo], dh = table[hi] - a;
    int pick = dl < dh ? lo : dh < dl ? hi : ((lo & 1) ? hi : lo);
    return (uint16_t)(sign | pick);
}

static uint16_t ref_from_f32(float x) {
    uint32_t u = fbits(x);
    if (isnan(x)) return (uint16_t)(((u >> 31) ? 0x8000 : 0) | 0x7e00 | ((u & 0x7fffff) >> 13));
    return ref_from_f64(x);
}

/* Doubles just off a midpoint are where rounding through fp32 first would go wrong. */
static void check_from_f64(void) {
    long n = 0;
    for (int h = 0; h < 0x7c00; h++) {
        double mid = (table[h] + table[h + 1]) / 2, d = ldexp(mid > 0 ? mid : 0x1p-25, -35);
        double c[] = {table[h], mid, mid + d, mid - d, nextafter(mid, 0), nextafter(mid, 1e300)};
        for (size_t k = 0; k < sizeof c / sizeof c[0]; k++)
            for (int sg = 0; sg < 2; sg++) {
                double x = sg ? -c[k] : c[k];
                uint16_t want = ref_from_f64(x), got = fp16_from_f64(x);
                CHECK(got == want, "from_f64(%a) = %04x, want %04x", x, got, want);
                n++;
            }
    }
    for (int k = 0; k < 1000000; k++) {
        uint64_t u = rnd();
        double x;
        memcpy(&x, &u, 8);
        if (isnan(x)) continue;
        x = ldexp(frexp(x, &(int){0}), (int)(rnd() % 50) - 30);
        CHECK(fp16_from_f64(x) == ref_from_f64(x), "from_f64(%a)", x);
        n++;
    }
    CHECK(fp16_from_f64(1e300) == 0x7c00 && fp16_from_f64(-1e300) == 0xfc00, "from_f64 overflow");
    CHECK(fp16_from_f64(1e-300) == 0 && fp16_from_f64(-1e-300) == 0x8000, "from_f64 underflow");
    CHECK(fp16_from_f64(INFINITY) == 0x7c00 && isnan(fp16_to_f32(fp16_from_f64(NAN))), "from_f64 inf/nan");
    CHECK(fp16_from_f64(1.0 + 0x1p-11 + 0x1p-40) == 0x3c01, "just above a tie rounds up, not to even via fp32");
    printf("fp16: %ld doubles checked\n", n);
}


static void check_to_f32(void) {
    static uint16_t hs[65536 + 1];
    static float fs[65536 + 1], fs2[65536 + 1];
    for (uint32_t h = 0; h < 65536; h++) {
        float f = fp16_to_f32((uint16_t)h);
        int exp = (h >> 10) & 0x1f, man = h & 0x3ff;
        if (exp == 0x1f && man) {
            uint32_t want = ((h & 0x8000u) << 16) | 0x7fc00000u | ((uint32_t)man << 13);
            CHECK(fbits(f) == want, "to_f32(%04x) = %08x, want quiet NaN %08x", h, fbits(f), want);
            CHECK(fp16_from_f32(f) == (h | 0x200), "NaN %04x round trip gave %04x", h, fp16_from_f32(f));
        } else {
            double want = exp == 0x1f ? ((h & 0x8000) ? -INFINITY : INFINITY) : half_value((uint16_t)h);
            CHECK((double)f == want && !!signbit(f) == !!(h & 0x8000), "to_f32(%04x) = %a, want %a", h, f, want);
            CHECK(fp16_from_f32(f) == h, "round trip %04x -> %a -> %04x", h, f, fp16_from_f32(f));
        }
        CHECK(fbits(fp16_round(f)) == fbits(f) || (isnan(f) && isnan(fp16_round(f))), "fp16_round(%a)", f);
        hs[h + 1] = (uint16_t)h;
    }
    /* vector and forced-scalar _n forms, from an odd start so vector bodies and tails both run */
    for (int simd = 1; simd >= 0; simd--) {
        fp16_set_simd(simd);
        fp16_to_f32_n(fs + 1, hs + 1, 65536);
        fp16_to_f32_n(fs2, hs + 1, 65535);
        for (uint32_t h = 0; h < 65536; h++) {
            float f = fp16_to_f32((uint16_t)h);
            CHECK(fbits(fs[h + 1]) == fbits(f), "to_f32_n[%s](%04x) = %08x, want %08x", fp16_simd(), h,
                  fbits(fs[h + 1]), fbits(f));
            if (h < 65535) CHECK(fbits(fs2[h]) == fbits(f), "to_f32_n tail (%04x)", h);
        }
        uint16_t back[65536];
        fp16_from_f32_n(back, fs + 1, 65536);
        for (uint32_t h = 0; h < 65536; h++) {
            int nan = ((h >> 10) & 0x1f) == 0x1f && (h & 0x3ff);
            CHECK(back[h] == (nan ? (h | 0x200) : h), "from_f32_n[%s] round trip %04x -> %04x", fp16_simd(), h, back[h]);
        }
    }
    fp16_set_simd(1);
}

static float *vals;
static size_t nvals, capvals;
static void add(float x) {
    if (nvals == capvals) {
        capvals = capvals ? capvals * 2 : 1 << 16;
        vals = realloc(vals, capvals * sizeof *vals);
        if (!vals) { perror("realloc"); exit(2); }
    }
    vals[nvals++] = x;
}

static void check_from_f32(void) {
    for (int h = 0; h <= 0x7c00; h++) table[h] = half_value((uint16_t)h);
    /* every half, each midpoint to the next, and one float ulp either side of those */
    for (int h = 0; h < 0x7c00; h++) {
        float a = (float)table[h], mid = (float)((table[h] + table[h + 1]) / 2);
        CHECK((double)mid == (table[h] + table[h + 1]) / 2, "midpoint not exact in fp32 at %04x", h);
        float c[] = {a, nextafterf(a, 0), nextafterf(a, INFINITY), mid, nextafterf(mid, 0), nextafterf(mid, INFINITY)};
        for (size_t k = 0; k < sizeof c / sizeof c[0]; k++) { add(c[k]); add(-c[k]); }
    }
    /* edges: below the smallest subnormal, around 65504/65520, huge, fp32 subnormals, inf, NaN */
    float edge[] = {0x1p-25f, 0x1.000002p-25f, 0x0.fffffep-25f, 0x1p-26f, 0x1.8p-25f, 0x1p-149f, 0x1p-126f, 0x1.fffffcp-127f,
                    65504.f, 65519.f, 65519.99f, 65520.f, 65520.01f, 65536.f, 1e10f, 3.4028235e38f, INFINITY,
                    NAN, bitsf(0x7f800001), bitsf(0x7fbfffff), bitsf(0x7fc00000), bitsf(0x7fffffff), bitsf(0x7f802000)};
    for (size_t k = 0; k < sizeof edge / sizeof edge[0]; k++) { add(edge[k]); add(-edge[k]); }
    /* random bit patterns (all exponents), and random values concentrated in the half range */
    for (int k = 0; k < 2000000; k++) add(bitsf((uint32_t)rnd()));
    for (int k = 0; k < 2000000; k++) {
        uint32_t u = (uint32_t)rnd();
        uint32_t exp = 100 + (uint32_t)(rnd() % 45); /* 2^-27 .. 2^17 */
        add(bitsf((u & 0x807fffff) | (exp << 23)));
    }

    uint16_t *out = malloc(nvals * sizeof *out);
    float *rt = malloc(nvals * sizeof *rt);
    if (!out || !rt) { perror("malloc"); exit(2); }
    for (size_t i = 0; i < nvals; i++) {
        uint16_t want = ref_from_f32(vals[i]), got = fp16_from_f32(vals[i]);
        CHECK(got == want, "from_f32(%a [%08x]) = %04x, want %04x", vals[i], fbits(vals[i]), got, want);
        float r = fp16_round(vals[i]), wr = fp16_to_f32(want);
        CHECK(fbits(r) == fbits(wr), "fp16_round(%a) = %a, want %a", vals[i], r, wr);
    }
    for (int simd = 1; simd >= 0; simd--) {
        fp16_set_simd(simd);
        for (size_t start = 0; start < 3; start++) { /* shifted starts exercise unaligned bodies and tails */
            fp16_from_f32_n(out, vals + start, nvals - start);
            memcpy(rt, vals + start, (nvals - start) * sizeof *rt);
            fp16_round_n(rt, nvals - start);
            for (size_t i = 0; i + start < nvals; i++) {
                float x = vals[i + start];
                uint16_t want = ref_from_f32(x);
                CHECK(out[i] == want, "from_f32_n[%s](%a) = %04x, want %04x", fp16_simd(), x, out[i], want);
                CHECK(fbits(rt[i]) == fbits(fp16_to_f32(want)), "round_n[%s](%a) = %a", fp16_simd(), x, rt[i]);
            }
        }
    }
    fp16_set_simd(1);
    free(out);
    free(rt);
    printf("fp16: %zu fp32 values checked, vector path %s\n", nvals, fp16_simd());
}

int main(void) {
    check_to_f32();
    check_from_f32();
    check_from_f64();
    /* spot values a reader can verify by hand */
    CHECK(fp16_from_f32(1.0f) == 0x3c00, "1.0");
    CHECK(fp16_from_f32(-2.0f) == 0xc000, "-2.0");
    CHECK(fp16_from_f32(65504.f) == 0x7bff, "max");
    CHECK(fp16_from_f32(65520.f) == 0x7c00, "65520 ties to inf");
    CHECK(fp16_from_f32(0x1p-24f) == 0x0001, "min subnormal");
    CHECK(fp16_from_f32(0x1p-25f) == 0x0000, "half of min subnormal ties to 0");
    CHECK(fp16_from_f32(0x1.8p-24f) == 0x0002, "1.5 * min subnormal ties to even 2");
    CHECK(fp16_from_f32(1.0f + 0x1p-11f) == 0x3c00, "1 + half ulp ties to even");
    CHECK(fp16_from_f32(1.0f + 3 * 0x1p-11f) == 0x3c02, "1 + 1.5 ulp ties to even");
    CHECK(fp16_to_f32(0x3555) == 0x1.554p-2f, "1/3");
    if (fails) { fprintf(stderr, "%d failures\n", fails); return 1; }
    return 0;
}
