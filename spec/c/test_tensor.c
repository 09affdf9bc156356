/* test_tensor.c - storage, shapes, element access, conversion, RNG and arithmetic helpers. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fp16.h"
#include "core/tensor.h"

static int fails;
#define CHECK(c, ...) do { if (!(c)) { fails++; fprintf(stderr, "%s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

/* ---- storage ---- */

static int freed, locks, unlocks, fail_lock;
static void fake_free(storage *s) { freed++; free(s->impl); }
static int fake_lock(storage *s, int ro) { (void)s; (void)ro; locks++; return fail_lock ? -1 : 0; }
static void fake_unlock(storage *s, int ro) { (void)s; (void)ro; unlocks++; }
static const storage_ops fake_ops = {"fake", fake_free, fake_lock, fake_unlock};

static void *hammer(void *arg) {
    storage *s = arg;
    for (int i = 0; i < 100000; i++) { storage_retain(s); storage_release(s); }
    return NULL;
}

static void test_storage(void) {
    ane_error e;
    size_t live0 = storage_live_bytes();
    storage *s = storage_new(1000, &e);
    CHECK(s && ((uintptr_t)s->data % STORAGE_ALIGN) == 0, "aligned");
    CHECK(storage_live_bytes() == live0 + 1000, "live bytes up by 1000");
    int zero = 1;
    for (int i = 0; i < 1000; i++) zero &= ((unsigned char *)s->data)[i] == 0;
    CHECK(zero, "zeroed");
    CHECK(strcmp(s->ops->kind, "heap") == 0, "heap kind");
    uint32_t seed = s->seed;
    CHECK(storage_lock(s, 1, &e) == 0, "heap lock");
    storage_unlock(s, 1);
    CHECK(s->seed == seed, "read unlock keeps seed");
    storage_lock(s, 0, &e);
    storage_unlock(s, 0);
    CHECK(s->seed == seed + 1, "write unlock bumps seed");

    pthread_t th[4];
    for (int i = 0; i < 4; i++) pthread_create(&th[i], NULL, hammer, s);
    for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
    CHECK(atomic_load(&s->refs) == 1, "refs back to 1 after threads, got %d", atomic_load(&s->refs));
    storage_release(s);
    CHECK(storage_live_bytes() == live0, "live bytes back");
    storage_release(NULL);

    CHECK(storage_new(SIZE_MAX - 8, &e) == NULL && e.code == ERR_NOMEM, "huge storage refused: %s", e.msg);

    char buf[256];
    storage *w = storage_wrap(buf, sizeof buf, &fake_ops, malloc(8), &e);
    CHECK(w && storage_live_bytes() == live0 + 256, "wrap counts bytes");
    CHECK(storage_lock(w, 0, &e) == 0 && locks == 1, "wrap lock");
    storage_unlock(w, 0);
    CHECK(unlocks == 1 && w->seed == 1, "wrap unlock + seed");
    fail_lock = 1;
    CHECK(storage_lock(w, 1, &e) == ERR_STATE && strstr(e.msg, "could not lock fake storage"), "lock failure: %s", e.msg);
    fail_lock = 0;
    tensor v;
    int64_t shp[1] = {16};
    CHECK(tensor_init_on(&v, w, 64, DT_FP32, 1, shp, &e) == 0, "view on wrapped");
    storage_release(w);
    CHECK(freed == 0, "view keeps wrapped storage");
    tensor_release(&v);
    tensor_release(&v); /* idempotent */
    CHECK(freed == 1 && storage_live_bytes() == live0, "freed once by last release");
    CHECK(storage_wrap(buf, 1, NULL, NULL, &e) == NULL && e.code == ERR_INVAL, "wrap without ops");
}

/* ---- shapes ---- */

static void test_shapes(void) {
    ane_error e;
    int64_t s3[] = {2, 3, 4}, big[] = {INT64_MAX / 2, 3}, z[] = {2, 0}, neg[] = {-1};
    CHECK(shape_numel(3, s3) == 24, "numel");
    CHECK(shape_numel(2, big) == -1, "overflow numel");
    CHECK(shape_numel(1, neg) == -1, "negative");
    CHECK(shape_numel(0, s3) == 1, "rank 0 is a scalar");
    char buf[64];
    CHECK(strcmp(shape_str(3, s3, buf, sizeof buf), "[2, 3, 4]") == 0, "shape_str %s", buf);
    CHECK(strcmp(shape_str(0, s3, buf, sizeof buf), "[]") == 0, "shape_str rank 0");
    CHECK(shape_check(3, s3, DT_FP16, &e) == 0, "ok shape");
    CHECK(shape_check(6, s3, DT_FP16, &e) == ERR_SHAPE && strcmp(e.msg, "rank 6 is out of range (0 to 5)") == 0, "%s", e.msg);
    CHECK(shape_check(2, z, DT_FP16, &e) == ERR_SHAPE && strcmp(e.msg, "shape [2, 0] has a dimension < 1") == 0, "%s", e.msg);
    int64_t huge[] = {1 << 30, 1 << 30, 1 << 30};
    CHECK(shape_check(3, huge, DT_FP32, &e) == ERR_SHAPE && strstr(e.msg, "too large"), "%s", e.msg);
    CHECK(shape_check(2, big, DT_FP32, &e) == ERR_SHAPE, "overflowing product");
    int64_t a[] = {2, 3}, b[] = {2, 3}, c[] = {3, 2};
    CHECK(shape_equal(2, a, 2, b) && !shape_equal(2, a, 2, c) && !shape_equal(2, a, 1, b), "shape_equal");
    tensor t;
    CHECK(tensor_init(&t, DT_FP16, 2, z, &e) == ERR_SHAPE && t.st == NULL, "init refuses bad shape, leaves t empty");
}

/* ---- elements ---- */

static void test_elements(void) {
    ane_error e;
    int64_t shp[] = {2, 5};
    for (int d = 0; d < DT_COUNT; d++) {
        tensor t;
        CHECK(tensor_init(&t, (dtype)d, 2, shp, &e) == 0, "init %s", dtype_name((dtype)d));
        CHECK(tensor_numel(&t) == 10 && tensor_nbytes(&t) == 10 * dtype_size((dtype)d), "sizes");
        CHECK(((uintptr_t)tensor_data(&t) % 64) == 0, "aligned data");
        tensor_fill(&t, 1);
        for (int i = 0; i < 10; i++) CHECK(tensor_get(&t, i) == 1, "fill %s", dtype_name((dtype)d));
        tensor_set(&t, 7, 3);
        CHECK(tensor_get(&t, 7) == (d == DT_BOOL ? 1 : 3), "set/get %s", dtype_name((dtype)d));
        tensor_release(&t);
        CHECK(tensor_data(&t) == NULL, "released tensor is empty");
    }
    /* conversion rules on store */
    tensor t;
    int64_t one[] = {1};
    struct { dtype dt; double in, out; } cases[] = {
        {DT_INT8, 127.9, 127}, {DT_INT8, -129, -128}, {DT_INT8, 300, 127}, {DT_INT8, -2.7, -2},
        {DT_UINT8, -1, 0}, {DT_UINT8, 255.5, 255}, {DT_UINT8, 1e9, 255}, {DT_UINT8, NAN, 0},
        {DT_INT32, 3e9, INT32_MAX}, {DT_INT32, -3e9, INT32_MIN}, {DT_INT32, 123456789, 123456789},
        {DT_BOOL, 0.5, 1}, {DT_BOOL, 0, 0}, {DT_BOOL, -0.0, 0}, {DT_BOOL, NAN, 1},
        {DT_FP16, 0.1, 0.0999755859375}, {DT_FP16, 70000, INFINITY}, {DT_FP16, 1.0 + 0x1p-11 + 0x1p-40, 1.0 + 0x1p-10},
        {DT_FP32, 0.1, (float)0.1},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        tensor_init(&t, cases[k].dt, 1, one, &e);
        tensor_set(&t, 0, cases[k].in);
        double got = tensor_get(&t, 0);
        CHECK(got == cases[k].out, "%s set(%g) -> %.17g, want %.17g", dtype_name(cases[k].dt), cases[k].in, got, cases[k].out);
        tensor_release(&t);
    }
}

static void test_views_and_copy(void) {
    ane_error e;
    int64_t shp[] = {4, 6};
    tensor base, view, f32;
    tensor_init(&base, DT_FP16, 2, shp, &e);
    for (int i = 0; i < 24; i++) tensor_set(&base, i, i);
    int64_t row[] = {2, 6};
    CHECK(tensor_init_on(&view, base.st, 6 * 2 * 1, DT_FP16, 2, row, &e) == 0, "view of rows 2-3");
    CHECK(tensor_get(&view, 0) == 6 && tensor_get(&view, 11) == 17, "view reads through offset");
    CHECK(atomic_load(&base.st->refs) == 2, "view retains");
    int64_t too[] = {4, 6};
    CHECK(tensor_init_on(&f32, base.st, 2, DT_FP16, 2, too, &e) == ERR_SHAPE && strstr(e.msg, "does not fit"), "%s", e.msg);
    CHECK(tensor_init_on(&f32, base.st, 1, DT_FP16, 1, (int64_t[]){2}, &e) == ERR_INVAL, "misaligned offset");
    CHECK(tensor_init_on(&f32, base.st, SIZE_MAX - 1, DT_UINT8, 1, (int64_t[]){4}, &e) == ERR_SHAPE, "offset overflow");
    storage *st = base.st;
    tensor_release(&base);
    CHECK(atomic_load(&st->refs) == 1 && tensor_get(&view, 11) == 17, "view outlives base");

    /* every dtype pair converts like get+set */
    int64_t n8[] = {8};
    double src_vals[] = {0, 1, -1, 2.5, -3.75, 100, 127, 1000};
    for (int a = 0; a < DT_COUNT; a++)
        for (int b = 0; b < DT_COUNT; b++) {
            tensor s, d, want;
            tensor_init(&s, (dtype)a, 1, n8, &e);
            tensor_init(&d, (dtype)b, 1, n8, &e);
            tensor_init(&want, (dtype)b, 1, n8, &e);
            for (int i = 0; i < 8; i++) tensor_set(&s, i, src_vals[i]);
            for (int i = 0; i < 8; i++) tensor_set(&want, i, tensor_get(&s, i));
            CHECK(tensor_copy(&d, &s, &e) == 0, "copy");
            CHECK(memcmp(tensor_data(&d), tensor_data(&want), tensor_nbytes(&d)) == 0, "copy %s -> %s", dtype_name((dtype)a),
                  dtype_name((dtype)b));
            tensor_release(&s);
            tensor_release(&d);
            tensor_release(&want);
        }
    /* overlapping copy with conversion: fp16 data read as the first half of an fp32 view's bytes */
    tensor h, wide;
    tensor_init(&h, DT_FP16, 1, (int64_t[]){8}, &e);
    for (int i = 0; i < 8; i++) tensor_set(&h, i, i + 1);
    tensor_init_on(&wide, h.st, 0, DT_FP32, 1, (int64_t[]){4}, &e);
    tensor head;
    tensor_init_on(&head, h.st, 0, DT_FP16, 1, (int64_t[]){4}, &e);
    CHECK(tensor_copy(&wide, &head, &e) == 0, "overlapping copy");
    for (int i = 0; i < 4; i++) CHECK(tensor_get(&wide, i) == i + 1, "overlap copy value %d = %g", i, tensor_get(&wide, i));
    tensor_release(&head);
    tensor_release(&wide);
    tensor bad;
    tensor_init(&bad, DT_FP16, 1, (int64_t[]){3}, &e);
    CHECK(tensor_copy(&bad, &h, &e) == ERR_SHAPE && strcmp(e.msg, "copy: [3] and [8] have different element counts") == 0, "%s",
          e.msg);
    tensor_release(&bad);
    tensor_release(&h);
    CHECK(tensor_copy(&bad, &view, &e) == ERR_STATE, "copy into released");
    tensor_release(&view);
}

/* ---- rng ---- */

static void test_rng(void) {
    rng a, b;
    rng_seed(&a, 0);
    /* splitmix64 from state 0 yields 0xe220a8397b1dcdaf first (published reference value) */
    CHECK(a.s[0] == 0xe220a8397b1dcdafu, "splitmix64 seeding, got %016llx", (unsigned long long)a.s[0]);
    rng_seed(&a, 42);
    rng_seed(&b, 42);
    int same = 1;
    for (int i = 0; i < 1000; i++) same &= rng_next(&a) == rng_next(&b);
    CHECK(same, "same seed same stream");
    rng_seed(&b, 43);
    int diff = 0;
    for (int i = 0; i < 100; i++) diff += rng_next(&a) != rng_next(&b);
    CHECK(diff > 95, "different seeds differ");

    /* one xoshiro256** step by hand from a known state */
    rng k = {{1, 2, 3, 4}};
    uint64_t s1 = 2, r = ((s1 * 5) << 7 | (s1 * 5) >> 57) * 9;
    CHECK(rng_next(&k) == r && r == 11520, "xoshiro256** output from state {1,2,3,4}");
    CHECK(k.s[0] == 7 && k.s[1] == 0 && k.s[2] == 262146 && k.s[3] == (6ull << 45), "state after one step");

    enum { N = 200000 };
    double sum = 0, sq = 0, mn = 1, mx = 0;
    rng_seed(&a, 7);
    for (int i = 0; i < N; i++) {
        double u = rng_uniform(&a);
        CHECK(u >= 0 && u < 1, "uniform range");
        sum += u; sq += u * u;
        if (u < mn) mn = u;
        if (u > mx) mx = u;
    }
    double mean = sum / N, var = sq / N - mean * mean;
    CHECK(fabs(mean - 0.5) < 0.01 && fabs(var - 1.0 / 12) < 0.01 && mn < 0.001 && mx > 0.999, "uniform stats %g %g", mean, var);
    sum = sq = 0;
    int tails = 0;
    for (int i = 0; i < N; i++) {
        double z = rng_normal(&a);
        sum += z; sq += z * z;
        tails += fabs(z) > 1.959964;
    }
    mean = sum / N;
    var = sq / N - mean * mean;
    CHECK(fabs(mean) < 0.02 && fabs(var - 1) < 0.03 && fabs(tails / (double)N - 0.05) < 0.005, "normal stats %g %g %d", mean,
          var, tails);

    /* tensor fills are the scalar stream, element by element */
    ane_error e;
    tensor t;
    tensor_init(&t, DT_FP32, 2, (int64_t[]){3, 7}, &e);
    rng_seed(&a, 5);
    rng_seed(&b, 5);
    tensor_rand_normal(&t, &a, 2, 3);
    int match = 1;
    for (int i = 0; i < 21; i++) match &= tensor_get(&t, i) == (double)(float)(2 + 3 * rng_normal(&b));
    CHECK(match, "tensor_rand_normal = rng_normal stream");
    tensor_rand_uniform(&t, &a, -2, -1);
    for (int i = 0; i < 21; i++) CHECK(tensor_get(&t, i) >= -2 && tensor_get(&t, i) <= -1, "uniform bounds");
    tensor_release(&t);
}

/* ---- arithmetic against a double reference, rounded once to the dtype ---- */

static double rounded(dtype dt, double v) { return dt == DT_FP16 ? fp16_to_f32(fp16_from_f32((float)v)) : (float)v; }

static void test_arith(void) {
    ane_error e;
    enum { N = 1003 }; /* not a block multiple: the tail path runs */
    for (int d = 0; d < 2; d++) {
        dtype dt = d ? DT_FP32 : DT_FP16;
        tensor x, y, z;
        rng r;
        rng_seed(&r, 11);
        tensor_init(&x, dt, 1, (int64_t[]){N}, &e);
        tensor_init(&y, dt, 2, (int64_t[]){17, 59}, &e);
        tensor_init(&z, dt, 1, (int64_t[]){N}, &e);
        tensor_rand_uniform(&x, &r, -4, 4);
        tensor_rand_uniform(&y, &r, -4, 4);
        double xs[N], ys[N];
        for (int i = 0; i < N; i++) { xs[i] = tensor_get(&x, i); ys[i] = tensor_get(&y, i); }
        CHECK(tensor_add(&z, &x, &y, &e) == 0, "add (shapes differ, counts equal)");
        int ok = 1;
        for (int i = 0; i < N; i++) ok &= tensor_get(&z, i) == rounded(dt, (float)xs[i] + (float)ys[i]);
        CHECK(ok, "%s add", dtype_name(dt));
        CHECK(tensor_axpy(&y, 0.3, &x, &e) == 0, "axpy");
        ok = 1;
        for (int i = 0; i < N; i++) ok &= tensor_get(&y, i) == rounded(dt, (float)ys[i] + 0.3f * (float)xs[i]);
        CHECK(ok, "%s axpy", dtype_name(dt));
        CHECK(tensor_scale(&x, -1.5, &e) == 0, "scale");
        ok = 1;
        for (int i = 0; i < N; i++) ok &= tensor_get(&x, i) == rounded(dt, (float)xs[i] * -1.5f);
        CHECK(ok, "%s scale", dtype_name(dt));
        CHECK(tensor_add(&x, &x, &x, &e) == 0 && tensor_get(&x, 5) == rounded(dt, 2 * (float)xs[5] * -1.5f), "aliased add");
        tensor_release(&x);
        tensor_release(&y);
        tensor_release(&z);
    }
    /* mixed fp16/fp32 operands are widened, the fp16 result rounded once */
    tensor h, f;
    tensor_init(&h, DT_FP16, 1, (int64_t[]){4}, &e);
    tensor_init(&f, DT_FP32, 1, (int64_t[]){4}, &e);
    tensor_fill(&h, 1);
    tensor_fill(&f, 0x1p-12);
    CHECK(tensor_axpy(&h, 3, &f, &e) == 0 && tensor_get(&h, 0) == 1.0 + 0x1p-10, "1 + 3*2^-12 rounds to 1 + 2^-10 once");
    tensor_axpy(&f, 1, &h, &e);
    CHECK(tensor_get(&f, 0) == 0x1p-12 + 1.0 + 0x1p-10, "fp32 += fp16");
    tensor_release(&f);
    tensor i8, small;
    tensor_init(&i8, DT_INT8, 1, (int64_t[]){4}, &e);
    tensor_init(&small, DT_FP16, 1, (int64_t[]){3}, &e);
    CHECK(tensor_scale(&i8, 2, &e) == ERR_TYPE && strcmp(e.msg, "scale: int8 tensor (fp16 or fp32 required)") == 0, "%s", e.msg);
    CHECK(tensor_add(&h, &h, &i8, &e) == ERR_TYPE, "add int8");
    CHECK(tensor_axpy(&h, 1, &small, &e) == ERR_SHAPE && strcmp(e.msg, "axpy: [4] and [3] have different element counts") == 0,
          "%s", e.msg);
    tensor_release(&small);
    CHECK(tensor_scale(&small, 1, &e) == ERR_STATE, "scale released");
    tensor_release(&i8);
    tensor_release(&h);
}

int main(void) {
    size_t live0 = storage_live_bytes();
    test_storage();
    test_shapes();
    test_elements();
    test_views_and_copy();
    test_rng();
    test_arith();
    CHECK(storage_live_bytes() == live0, "no storage leaked: %zu live bytes", storage_live_bytes() - live0);
    CHECK(dtype_size(DT_FP16) == 2 && dtype_size(DT_INT32) == 4 && dtype_size(DT_BOOL) == 1, "dtype sizes");
    dtype dt;
    CHECK(dtype_parse("uint8", &dt) == 0 && dt == DT_UINT8 && dtype_parse("fp64", &dt) == ERR_INVAL, "dtype_parse");
    CHECK(strcmp(dtype_name(DT_BOOL), "bool") == 0, "dtype_name");
    if (fails) { fprintf(stderr, "%d failures\n", fails); return 1; }
    return 0;
}
