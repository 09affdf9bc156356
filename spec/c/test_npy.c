/* test_npy.c - .npy save/load round trips and every kind of malformed file, built here in memory
 * and on disk. Also truncates a valid file at every length and flips bytes at random: the loader
 * must answer with an error, never crash (run under SANITIZE=1 this checks memory safety). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/fp16.h"
#include "core/npy.h"

static int fails;
#define CHECK(c, ...) do { if (!(c)) { fails++; fprintf(stderr, "%s:%d: ", __FILE__, __LINE__); \
    fprintf(stderr, __VA_ARGS__); fputc('\n', stderr); } } while (0)

/* An .npy image: magic, version, header length (2 or 4 bytes), header text + '\n', then ndata bytes
 * of a counting pattern. */
static size_t build(unsigned char *out, int major, const char *header, size_t ndata) {
    size_t hl = strlen(header) + 1, k = 0;
    memcpy(out, "\x93NUMPY", 6);
    out[6] = (unsigned char)major;
    out[7] = 0;
    k = 8;
    out[k++] = (unsigned char)hl;
    out[k++] = (unsigned char)(hl >> 8);
    if (major != 1) { out[k++] = (unsigned char)(hl >> 16); out[k++] = (unsigned char)(hl >> 24); }
    memcpy(out + k, header, hl - 1);
    k += hl - 1;
    out[k++] = '\n';
    for (size_t i = 0; i < ndata; i++) out[k++] = (unsigned char)i;
    return k;
}

static unsigned char img[1 << 16];

static void expect_fail(const char *header, size_t ndata, int code, const char *msg) {
    size_t n = build(img, 1, header, ndata);
    tensor t;
    ane_error e;
    size_t live = storage_live_bytes();
    int rc = npy_load_mem(img, n, "m.npy", &t, &e);
    CHECK(rc == code && strcmp(e.msg, msg) == 0, "header %s\n   got  %d '%s'\n   want %d '%s'", header, rc, rc ? e.msg : "",
          code, msg);
    CHECK(t.st == NULL && storage_live_bytes() == live, "nothing allocated on failure");
}

static void test_malformed(void) {
    const char *ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    expect_fail(ok, 20, ERR_FORMAT, "m.npy: truncated .npy data: expected 24 bytes, found 20");
    expect_fail(ok, 28, ERR_FORMAT, "m.npy: 4 unexpected bytes after the .npy data");
    expect_fail("{'descr': '>f4', 'fortran_order': True, 'shape': (2, 3), }", 20, ERR_FORMAT,
                "m.npy: truncated .npy data: expected 24 bytes, found 20");
    expect_fail("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", 16, ERR_FORMAT,
                "m.npy: unsupported dtype '<f8' (supported: <f2 >f2 <f4 >f4 <i4 >i4 |i1 |u1 |b1)");
    expect_fail("{'descr': '<U3', 'fortran_order': False, 'shape': (2,), }", 16, ERR_FORMAT,
                "m.npy: unsupported dtype '<U3' (supported: <f2 >f2 <f4 >f4 <i4 >i4 |i1 |u1 |b1)");
    expect_fail("{'descr': '|i4', 'fortran_order': False, 'shape': (2,), }", 8, ERR_FORMAT,
                "m.npy: unsupported dtype '|i4' (supported: <f2 >f2 <f4 >f4 <i4 >i4 |i1 |u1 |b1)");
    expect_fail("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", 8, ERR_FORMAT,
                "m.npy: structured dtypes are not supported");
    expect_fail("{'descr': '<f2', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1), }", 2, ERR_FORMAT,
                "m.npy: rank is more than 5");
    expect_fail("{'descr': '<f2', 'fortran_order': False, 'shape': (3, 0), }", 0, ERR_FORMAT,
                "m.npy: zero-size arrays are not supported");
    expect_fail("{'descr': '<f2', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", 0, ERR_FORMAT,
                "m.npy: shape [4611686018427387904, 4] of fp16 is too large");
    expect_fail("{'descr': '<f2', 'fortran_order': False, 'shape': (99999999999999999999,), }", 0, ERR_FORMAT,
                "m.npy: malformed .npy header: dimension too large at header byte 69");
    /* a billion elements declared, 6 bytes present: refused before anything is allocated */
    expect_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000,), }", 6, ERR_FORMAT,
                "m.npy: truncated .npy data: expected 4000000000 bytes, found 6");
    expect_fail("{'descr': '<f4', 'shape': (2,), }", 8, ERR_FORMAT, "m.npy: malformed .npy header: missing key 'fortran_order'");
    expect_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'x': 1}", 8, ERR_FORMAT,
                "m.npy: malformed .npy header: unknown key 'x'");
    expect_fail("{'descr': '<f4', 'fortran_order': Nope, 'shape': (2,), }", 8, ERR_FORMAT,
                "m.npy: malformed .npy header: expected True or False at header byte 34");
    expect_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (2, x), }", 8, ERR_FORMAT,
                "m.npy: malformed .npy header: expected a dimension at header byte 54");
    expect_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (2,) } junk", 8, ERR_FORMAT,
                "m.npy: malformed .npy header: trailing characters at header byte 57");
    expect_fail("['descr']", 8, ERR_FORMAT, "m.npy: malformed .npy header: expected '{' at header byte 0");
    expect_fail("{'descr': '<f4', 'fortran_order': False, 'shape': (2,)", 8, ERR_FORMAT,
                "m.npy: malformed .npy header: expected ',' or '}' at header byte 55");
    expect_fail("{'descr: '<f4'}", 8, ERR_FORMAT, "m.npy: malformed .npy header: expected ':' at header byte 10");

    tensor t;
    ane_error e;
    CHECK(npy_load_mem("\x93NUMPZ\x01\x00\x00\x00", 10, "m.npy", &t, &e) == ERR_FORMAT &&
          strcmp(e.msg, "m.npy: not a .npy file (bad magic)") == 0, "%s", e.msg);
    CHECK(npy_load_mem("", 0, "m.npy", &t, &e) == ERR_FORMAT && strcmp(e.msg, "m.npy: not a .npy file (bad magic)") == 0, "%s",
          e.msg);
    CHECK(npy_load_mem("\x93NUMPY\x04\x00\x00\x00", 10, "m.npy", &t, &e) == ERR_FORMAT &&
          strcmp(e.msg, "m.npy: unsupported .npy format version 4.0") == 0, "%s", e.msg);
    CHECK(npy_load_mem("\x93NUMPY\x01\x00\xff\x00{", 11, "m.npy", &t, &e) == ERR_FORMAT &&
          strcmp(e.msg, "m.npy: truncated .npy header (file is 11 bytes, header needs 265)") == 0, "%s", e.msg);
    CHECK(npy_load_mem("\x93NUMPY\x02\x00\x00\x00\x00\x7f", 12, "m.npy", &t, &e) == ERR_FORMAT &&
          strcmp(e.msg, "m.npy: .npy header too long (2130706432 bytes)") == 0, "%s", e.msg);
    size_t n = build(img, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8);
    img[n - 9] = ' '; /* the newline ending the header */
    CHECK(npy_load_mem(img, n, "m.npy", &t, &e) == ERR_FORMAT &&
          strcmp(e.msg, "m.npy: malformed .npy header: no terminating newline") == 0, "%s", e.msg);
    img[20] = '\0';
    CHECK(npy_load_mem(img, n, "m.npy", &t, &e) == ERR_FORMAT, "NUL in header");
}

static void test_accepts(void) {
    tensor t;
    ane_error e;
    /* versions 2.0 and 3.0, double quotes, Python 2 longs, keys in another order, '|' on 1-byte types */
    const struct { int major; const char *h; size_t nd; dtype dt; int rank; int64_t d0; } ok[] = {
        {2, "{'descr': '<f2', 'fortran_order': False, 'shape': (3,), }", 6, DT_FP16, 1, 3},
        {3, "{\"shape\": (2L, 2L), \"fortran_order\": False, \"descr\": \"<i4\"}", 16, DT_INT32, 2, 2},
        {1, "{'descr': '|u1', 'fortran_order': False, 'shape': (5,), }", 5, DT_UINT8, 1, 5},
        {1, "{'descr': '|i1', 'fortran_order': False, 'shape': (1, 2, 1, 2, 1), }", 4, DT_INT8, 5, 1},
        {1, "{'descr': '|b1', 'fortran_order': False, 'shape': (2,), }", 2, DT_BOOL, 1, 2},
        {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 4, DT_FP32, 0, 0},
    };
    for (size_t k = 0; k < sizeof ok / sizeof ok[0]; k++) {
        size_t n = build(img, ok[k].major, ok[k].h, ok[k].nd);
        int rc = npy_load_mem(img, n, "ok.npy", &t, &e);
        CHECK(rc == 0, "accept %s: %s", ok[k].h, rc ? e.msg : "");
        if (rc) continue;
        CHECK(t.dt == ok[k].dt && t.rank == ok[k].rank && (t.rank == 0 || t.shape[0] == ok[k].d0), "desc of %s", ok[k].h);
        CHECK(memcmp(tensor_data(&t), img + n - ok[k].nd, ok[k].nd) == 0, "data of %s", ok[k].h);
        tensor_release(&t);
    }
}

/* Fortran order and big-endian data, from memory and from disk (two code paths): element
 * (i0, ..., ik) of a shape is written at its Fortran position, in the file's byte order, with the
 * value of its C position; the loaded tensor must count 0, 1, 2, ... in C order. */
static void test_orders(void) {
    static const struct { const char *descr; dtype dt; } dts[] = {
        {"<f2", DT_FP16}, {">f2", DT_FP16}, {"<f4", DT_FP32}, {">f4", DT_FP32}, {"<i4", DT_INT32},
        {">i4", DT_INT32}, {"|i1", DT_INT8}, {"|u1", DT_UINT8}, {">u1", DT_UINT8},
    };
    static const int64_t shapes[][5] = {{5}, {3, 4}, {2, 3, 4}, {2, 1, 3, 2}, {2, 3, 1, 2, 3}};
    char path[] = "/tmp/ane-test-npy-orders-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    close(fd);
    for (size_t k = 0; k < sizeof dts / sizeof dts[0]; k++)
        for (int r = 1; r <= 5; r++)
            for (int fortran = 0; fortran < 2; fortran++) {
                const int64_t *sh = shapes[r - 1];
                char hdr[200], dims[80] = "";
                size_t dl = 0;
                for (int j = 0; j < r; j++) dl += (size_t)snprintf(dims + dl, sizeof dims - dl, "%lld, ", (long long)sh[j]);
                snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': %s, 'shape': (%s), }", dts[k].descr,
                         fortran ? "True" : "False", dims);
                size_t es = dtype_size(dts[k].dt), numel = (size_t)shape_numel(r, sh);
                size_t n = build(img, 1, hdr, numel * es);
                unsigned char *data = img + n - numel * es;
                int big = dts[k].descr[0] == '>';
                for (size_t ci = 0; ci < numel; ci++) { /* C index ci -> multi-index -> Fortran offset */
                    size_t rest = ci, fo = 0, fs = 1;
                    int64_t idx[5];
                    for (int j = r - 1; j >= 0; j--) { idx[j] = (int64_t)(rest % (size_t)sh[j]); rest /= (size_t)sh[j]; }
                    for (int j = 0; j < r; j++) { fo += (size_t)idx[j] * fs; fs *= (size_t)sh[j]; }
                    size_t at = fortran ? fo : ci;
                    unsigned char le[4];
                    uint32_t bits;
                    if (dts[k].dt == DT_FP16) { uint16_t h = fp16_from_f32((float)ci); memcpy(le, &h, 2); }
                    else if (dts[k].dt == DT_FP32) { float v = (float)ci; memcpy(le, &v, 4); }
                    else { bits = (uint32_t)ci; memcpy(le, &bits, 4); }
                    for (size_t b = 0; b < es; b++) data[at * es + b] = le[big ? es - 1 - b : b];
                }
                for (int disk = 0; disk < 2; disk++) {
                    tensor t;
                    ane_error e;
                    int rc;
                    if (disk) {
                        FILE *f = fopen(path, "wb");
                        CHECK(f && fwrite(img, 1, n, f) == n, "write %s", path);
                        if (f) fclose(f);
                        rc = npy_load(path, &t, &e);
                    } else {
                        rc = npy_load_mem(img, n, "o.npy", &t, &e);
                    }
                    CHECK(rc == 0, "%s (%s): %s", hdr, disk ? "disk" : "memory", rc ? e.msg : "");
                    if (rc) continue;
                    CHECK(t.dt == dts[k].dt && shape_equal(t.rank, t.shape, r, sh), "desc of %s", hdr);
                    for (size_t ci = 0; ci < numel; ci++) {
                        double v = tensor_get(&t, (int64_t)ci);
                        if (v != (double)ci) {
                            CHECK(0, "%s (%s): element %zu is %g", hdr, disk ? "disk" : "memory", ci, v);
                            break;
                        }
                    }
                    tensor_release(&t);
                }
            }
    remove(path);
}

static void test_roundtrip(void) {
    char path[] = "/tmp/ane-test-npy-XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    close(fd);
    ane_error e;
    int64_t shapes[][5] = {{7}, {2, 3}, {1, 2, 3}, {2, 1, 2, 1, 3}, {300, 301}};
    int ranks[] = {1, 2, 3, 5, 2, 0};
    for (int d = 0; d < DT_COUNT; d++)
        for (int s = 0; s < 6; s++) {
            tensor t, u;
            int rank = ranks[s];
            CHECK(tensor_init(&t, (dtype)d, rank, shapes[s < 5 ? s : 0], &e) == 0, "init");
            for (int64_t i = 0; i < tensor_numel(&t); i++) tensor_set(&t, i, (double)(i % 97) - 40);
            CHECK(npy_save(path, &t, &e) == 0, "save: %s", e.msg);
            FILE *f = fopen(path, "rb");
            unsigned char pre[10];
            CHECK(f && fread(pre, 1, 10, f) == 10, "reread");
            fseek(f, 0, SEEK_END);
            long size = ftell(f);
            fclose(f);
            size_t hl = pre[8] | pre[9] << 8;
            CHECK(memcmp(pre, "\x93NUMPY\x01\x00", 8) == 0 && (10 + hl) % 64 == 0, "v1.0 header, data 64-aligned");
            CHECK((size_t)size == 10 + hl + tensor_nbytes(&t), "file size");
            CHECK(npy_load(path, &u, &e) == 0, "load: %s", e.msg);
            CHECK(u.dt == t.dt && shape_equal(u.rank, u.shape, t.rank, t.shape), "same desc");
            CHECK(memcmp(tensor_data(&u), tensor_data(&t), tensor_nbytes(&t)) == 0, "same bytes %s rank %d", dtype_name((dtype)d),
                  rank);
            tensor_release(&t);
            tensor_release(&u);
        }

    /* every truncation of a valid file is refused with a format error; random corruption never crashes */
    tensor t, u;
    tensor_init(&t, DT_FP32, 2, (int64_t[]){3, 4}, &e);
    npy_save(path, &t, &e);
    tensor_release(&t);
    FILE *f = fopen(path, "rb");
    size_t n = fread(img, 1, sizeof img, f);
    fclose(f);
    for (size_t k = 0; k < n; k++) {
        int rc = npy_load_mem(img, k, "cut.npy", &u, &e);
        CHECK(rc == ERR_FORMAT, "truncated to %zu bytes: rc %d", k, rc);
    }
    unsigned char copy[256];
    uint64_t r = 88172645463325252u;
    int accepted = 0;
    for (int it = 0; it < 20000; it++) {
        memcpy(copy, img, n);
        for (int j = 0; j < 3; j++) {
            r ^= r << 13; r ^= r >> 7; r ^= r << 17;
            copy[r % n] = (unsigned char)(r >> 32);
        }
        if (npy_load_mem(copy, n, "fuzz.npy", &u, &e) == 0) { accepted++; tensor_release(&u); }
        else CHECK(e.code == ERR_FORMAT && strncmp(e.msg, "fuzz.npy: ", 10) == 0, "fuzz error names the file: %s", e.msg);
    }
    CHECK(accepted > 0 && accepted < 20000, "corruption mostly refused (%d accepted: data-only flips)", accepted);

    /* on disk: missing file, a directory, a truncated file */
    CHECK(npy_load("/nonexistent/x.npy", &u, &e) == ERR_IO && strcmp(e.msg, "/nonexistent/x.npy: No such file or directory") == 0,
          "%s", e.msg);
    CHECK(npy_load("/tmp", &u, &e) == ERR_IO && strcmp(e.msg, "/tmp: not a regular file") == 0, "%s", e.msg);
    f = fopen(path, "wb");
    fwrite(img, 1, n - 5, f);
    fclose(f);
    char want[256];
    snprintf(want, sizeof want, "%s: truncated .npy data: expected 48 bytes, found 43", path);
    CHECK(npy_load(path, &u, &e) == ERR_FORMAT && strcmp(e.msg, want) == 0, "%s", e.msg);
    f = fopen(path, "wb");
    fwrite(img, 1, 9, f);
    fclose(f);
    snprintf(want, sizeof want, "%s: not a .npy file (bad magic)", path);
    CHECK(npy_load(path, &u, &e) == ERR_FORMAT && strcmp(e.msg, want) == 0, "%s", e.msg);
    remove(path);
    tensor_init(&t, DT_FP16, 1, (int64_t[]){2}, &e);
    CHECK(npy_save("/nonexistent/dir/x.npy", &t, &e) == ERR_IO &&
          strcmp(e.msg, "/nonexistent/dir/x.npy: No such file or directory") == 0, "%s", e.msg);
    tensor_release(&t);
    CHECK(npy_save(path, &t, &e) == ERR_STATE, "save closed");
}

int main(void) {
    size_t live = storage_live_bytes();
    test_malformed();
    test_accepts();
    test_orders();
    test_roundtrip();
    CHECK(storage_live_bytes() == live, "no storage leaked");
    if (fails) { fprintf(stderr, "%d failures\n", fails); return 1; }
    return 0;
}
