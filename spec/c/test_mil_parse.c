/* test_mil_parse.c - MIL front-end pieces best tested from C: single rounding of literals to
 * fp16 (cross-checked against the core converter), the lexer's corner cases, program equality,
 * the build API's all-or-nothing ops, parser limits, positioned errors, and the blob reader's
 * bounds on arbitrary bytes and zero-copy resolution. Exit 0 = pass. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fp16.h"
#include "mil/check.h"
#include "mil/lexer.h"
#include "mil/mil.h"

static int failures;
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);               \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
        }                                                                                          \
    } while (0)

static mil_program *parse(const char *text, ane_error *e) {
    mil_program *p = NULL;
    err_clear(e);
    mil_parse(text, strlen(text), "t.mil", NULL, &p, e);
    return p;
}

static void test_fp16_rounding(void) {
    /* every finite half survives half -> double -> half */
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff)) continue; /* NaN */
        uint16_t back = mil_f16_from_double(mil_f16_to_double((uint16_t)h));
        CHECK(back == h, "half 0x%04x -> 0x%04x", h, back);
        if (back != h) break;
    }
    /* agrees with the core's float -> half (RNE) on every float it sees exactly */
    uint64_t s = 12345;
    for (int i = 0; i < 200000; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        uint32_t bits = (uint32_t)(s >> 32);
        float f;
        memcpy(&f, &bits, 4);
        if (isnan(f)) continue;
        uint16_t a = mil_f16_from_double((double)f), b = fp16_from_f32(f);
        CHECK(a == b, "float %a: mil 0x%04x core 0x%04x", (double)f, a, b);
        if (a != b) break;
    }
    /* rounds once: 1 + 2^-11 + 2^-40 is just above the halfway point, so it rounds up; going
     * through float first would land exactly on the tie and round down to even */
    double x = 1.0 + ldexp(1, -11) + ldexp(1, -40);
    CHECK(mil_f16_from_double(x) == 0x3c01, "got 0x%04x", mil_f16_from_double(x));
    CHECK(fp16_from_f32((float)x) == 0x3c00, "double rounding through float expected");
    CHECK(mil_f16_from_double(65520.0) == 0x7c00, "65520 overflows to inf");
    CHECK(mil_f16_from_double(65519.99) == 0x7bff, "just below the overflow threshold");
    CHECK(mil_f16_from_double(ldexp(1, -25)) == 0x0000, "tie at half the smallest subnormal -> 0");
    CHECK(mil_f16_from_double(ldexp(1.0000001, -25)) == 0x0001, "above the tie -> smallest subnormal");
    CHECK(mil_f16_from_double(-0.0) == 0x8000, "negative zero");
    CHECK((mil_f16_from_double(NAN) & 0x7e00) == 0x7e00, "quiet NaN");
    CHECK(mil_bf16_from_double(1.0 + ldexp(1, -8)) == 0x3f80, "bf16 tie to even");
    CHECK(mil_bf16_from_double(1.0 + ldexp(1, -8) + ldexp(1, -30)) == 0x3f81, "bf16 above tie");
}

static void test_lexer(void) {
    const char *src = "dict<tensor<string, []>, tensor<string, []>>({}) -1 ->0x1.8p-3 -inf 1e-05 x@1 }->(y)";
    lexer lx;
    lex_init(&lx, src, strlen(src), 0);
    tk_kind want[] = {TK_IDENT, TK_LT, TK_IDENT, TK_LT, TK_IDENT, TK_COMMA, TK_LBRACK, TK_RBRACK, TK_GT,
                      TK_COMMA, TK_IDENT, TK_LT, TK_IDENT, TK_COMMA, TK_LBRACK, TK_RBRACK, TK_GT, TK_GT,
                      TK_LPAREN, TK_LBRACE, TK_RBRACE, TK_RPAREN, TK_INT, TK_ARROW, TK_FLOAT, TK_FLOAT,
                      TK_FLOAT, TK_IDENT, TK_RBRACE, TK_ARROW, TK_LPAREN, TK_IDENT, TK_RPAREN, TK_EOF};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        token t = lex_next(&lx);
        CHECK(t.kind == want[i], "token %zu: got %s want %s", i, tk_name(t.kind), tk_name(want[i]));
        if (t.kind != want[i]) break;
    }
    /* a NUL byte inside the text is an error token, not the end of input */
    const char nul[] = "program\0(1.3)";
    lex_init(&lx, nul, sizeof nul - 1, 0);
    lex_next(&lx);
    token t = lex_next(&lx);
    CHECK(t.kind == TK_ERROR && t.col == 8, "NUL: %s at %d", tk_name(t.kind), t.col);
}

static const char *PROG =
    "program(1.3)\n{\n    func main<ios18>(tensor<fp16, [1, 4]> x) {\n"
    "        fp16 s = const()[name = string(\"s\"), val = fp16(0.5)];\n"
    "        tensor<fp16, [1, 4]> y = mul(x = x, y = s)[name = string(\"m\")];\n"
    "    } -> (y);\n}\n";

static void test_equality(void) {
    ane_error e;
    mil_program *a = parse(PROG, &e);
    CHECK(a != NULL, "%s", e.msg);
    if (!a) return;
    char why[256];
    struct { const char *from, *to, *why; } muts[] = {
        {"fp16(0.5)", "fp16(0.25)", "literal data differs"},
        {"string(\"m\")", "string(\"n\")", "label"},
        {"mul(x = x, y = s)", "add(x = x, y = s)", "is mul vs add"},
        {"y = s)[", "y = x)[", "operand"},
        {"program(1.3)", "program(1.0)", "version"},
    };
    for (size_t i = 0; i < sizeof muts / sizeof muts[0]; i++) {
        char text[1024];
        const char *at = strstr(PROG, muts[i].from);
        snprintf(text, sizeof text, "%.*s%s%s", (int)(at - PROG), PROG, muts[i].to, at + strlen(muts[i].from));
        mil_program *b = parse(text, &e);
        CHECK(b != NULL, "%s", e.msg);
        if (!b) continue;
        CHECK(!mil_program_equal(a, b, why, sizeof why), "mutation %zu not detected", i);
        CHECK(strstr(why, muts[i].why) != NULL, "mutation %zu: reason '%s'", i, why);
        mil_program_release(b);
    }
    /* argument order and spacing do not matter */
    mil_program *c = parse("program(1.3){func main<ios18>(tensor<fp16,[1,4]> x){fp16 s=const()[val=fp16(0.5),"
                           "name=string(\"s\")];tensor<fp16,[1,4]> y=mul(y=s,x=x)[name=string(\"m\")];}->(y);}",
                           &e);
    CHECK(c && mil_program_equal(a, c, why, sizeof why), "reordered: %s", c ? why : e.msg);
    mil_program_release(c);
    mil_program_release(a);
}

static void test_build(void) {
    ane_error e;
    err_clear(&e);
    mil_program *p = mil_program_new(NULL, &e);
    int fn = mil_func_new(p, "main", "ios18", &e);
    CHECK(fn == 0, "%s", e.msg);
    mil_type t = {0};
    t.kind = MIL_T_TENSOR;
    t.dtype = MIL_FP16;
    t.rank = 2;
    t.shape[0] = 1;
    t.shape[1] = 4;
    int x = mil_func_add_param(p, fn, "x", &t, &e);
    CHECK(x == 0, "%s", e.msg);
    mil_binding in = {0};
    in.name = "x";
    in.n = 1;
    in.values = &x;
    int y = mil_func_add_op(p, fn, "relu", &in, 1, NULL, NULL, 0, &e);
    CHECK(y > 0, "relu: %s", e.msg);
    const mil_function *f = &p->funcs[fn];
    CHECK(y > 0 && mil_type_equal(&f->values[y].type, &t), "relu result type");
    CHECK(y > 0 && strcmp(f->values[y].name, "relu") == 0, "generated name %s", y > 0 ? f->values[y].name : "");
    int nv = f->nvalues, no = f->nops;
    /* rejected ops append nothing */
    int bad = mil_func_add_op(p, fn, "conv", &in, 1, NULL, NULL, 0, &e);
    CHECK(bad < 0 && f->nvalues == nv && f->nops == no, "conv without weight: %d (%s)", bad, e.msg);
    bad = mil_func_add_op(p, fn, "no_such_op", &in, 1, NULL, NULL, 0, &e);
    CHECK(bad < 0 && f->nvalues == nv && f->nops == no, "unknown op: %d", bad);
    const char *dup[] = {"x"};
    bad = mil_func_add_op(p, fn, "relu", &in, 1, NULL, dup, 1, &e);
    CHECK(bad < 0 && strstr(e.msg, "duplicate name 'x'") && f->nvalues == nv, "duplicate result name: %s", e.msg);
    /* outputs must be named values */
    mil_literal lit = {0};
    int8_t one = 1;
    lit.type.kind = MIL_T_TENSOR;
    lit.type.dtype = MIL_INT8;
    lit.count = 1;
    lit.data = &one;
    int l = mil_func_add_literal(p, fn, &lit, &e);
    CHECK(l > 0, "%s", e.msg);
    CHECK(mil_func_set_outputs(p, fn, &l, 1, &e) == ERR_INVAL, "inline literal output accepted");
    CHECK(mil_func_set_outputs(p, fn, &y, 1, &e) == 0, "%s", e.msg);
    lit.count = 2; /* shape [] needs 1 */
    CHECK(mil_func_add_literal(p, fn, &lit, &e) == ERR_SHAPE, "count/shape mismatch accepted");
    char *text;
    size_t n;
    CHECK(mil_print(p, NULL, &text, &n, &e) == 0, "%s", e.msg);
    mil_program *q = parse(text, &e);
    char why[256];
    CHECK(q && mil_program_equal(p, q, why, sizeof why), "built program round trip: %s", q ? why : e.msg);
    CHECK(mil_check(q, NULL, &e) == 0, "built program checks: %s", e.msg);
    /* a checked program is immutable */
    CHECK(mil_func_add_op(q, 0, "relu", &in, 1, NULL, NULL, 0, &e) == ERR_STATE, "checked program changed");
    free(text);
    mil_program_release(q);
    mil_program_release(p);
}

static void test_limits(void) {
    ane_error e;
    /* a long program: many statements parse (names are hashed, so this stays linear) */
    size_t cap = 1 << 23, len = 0;
    char *big = malloc(cap);
    len += (size_t)snprintf(big + len, cap - len, "program(1.3) { func main<ios18>(tensor<fp16, [4]> v0) {\n");
    int n = 20000;
    for (int i = 1; i <= n; i++)
        len += (size_t)snprintf(big + len, cap - len, "tensor<fp16, [4]> v%d = relu(x = v%d)[name = string(\"v%d\")];\n",
                                i, i - 1, i);
    len += (size_t)snprintf(big + len, cap - len, "} -> (v%d); }", n);
    mil_program *p = NULL;
    CHECK(mil_parse(big, len, "big.mil", NULL, &p, &e) == 0, "%s", e.msg);
    CHECK(p && p->funcs[0].nops == n, "ops");
    mil_program_release(p);
    /* deep type nesting and long names are errors, not crashes */
    len = (size_t)snprintf(big, cap, "program(1.3) { func main<ios18>(");
    for (int i = 0; i < 100000; i++) len += (size_t)snprintf(big + len, cap - len, "dict<");
    CHECK(mil_parse(big, len, "deep.mil", NULL, &p, &e) == ERR_FORMAT && strstr(e.msg, "nested deeper"), "%s", e.msg);
    len = (size_t)snprintf(big, cap, "program(1.3) { func ");
    memset(big + len, 'a', 5000);
    len += 5000;
    CHECK(mil_parse(big, len, "long.mil", NULL, &p, &e) == ERR_FORMAT && strstr(e.msg, "identifier too long"), "%s", e.msg);
    /* nested lists deeper than the rank stop at the rank */
    len = (size_t)snprintf(big, cap, "program(1.3) { func main<ios18>() { tensor<int32, [1, 1]> a = const()[val = "
                                     "tensor<int32, [1, 1]>(");
    for (int i = 0; i < 100000; i++) big[len++] = '[';
    CHECK(mil_parse(big, len, "lists.mil", NULL, &p, &e) == ERR_FORMAT && strstr(e.msg, "nesting does not match"), "%s",
          e.msg);
    free(big);
}

static void test_error_format(void) {
    ane_error e;
    mil_program *p = parse("program(1.3) {\n\tfunc main<ios18>() {\n\t\tfp16 a = relu(x = q);\n\t} -> (a);\n}\n", &e);
    CHECK(p == NULL, "parsed");
    CHECK(strcmp(e.file, "t.mil") == 0 && e.line == 3 && e.col == 21, "%s:%d:%d", e.file, e.line, e.col);
    /* tabs are kept in the caret line so the caret lines up in a terminal */
    CHECK(strcmp(e.msg, "t.mil:3:21: undefined value 'q'\n    \t\tfp16 a = relu(x = q);\n    \t\t                  ^") == 0,
          "%s", e.msg);
    /* positions on built programs (line 0) are left out */
    mil_program *b = mil_program_new("1.3", &e);
    mil_error_at(&e, b, ERR_TYPE, 0, 0, "%s: bad", "conv");
    CHECK(strcmp(e.msg, "conv: bad") == 0 && e.line == 0, "%s", e.msg);
    mil_program_release(b);
}

static void test_blob_bounds(void) {
    ane_error e;
    blob_writer *w = blob_writer_new(&e);
    uint64_t off[3];
    const char a[] = "0123456789", c[] = "z";
    CHECK(blob_writer_add_raw(w, 1, a, 10, &off[0], &e) == 0, "%s", e.msg);
    CHECK(blob_writer_add_raw(w, 4, NULL, 0, &off[1], &e) == 0, "%s", e.msg);
    CHECK(blob_writer_add_raw(w, 3, c, 1, &off[2], &e) == 0, "%s", e.msg);
    CHECK(blob_writer_add_raw(w, 9, c, 1, NULL, &e) == ERR_TYPE, "bad code accepted");
    uint8_t *data;
    size_t size;
    blob_writer_finish(w, &data, &size, &e);
    CHECK(off[0] == 64 && off[1] == 192 && off[2] == 256 && size == 384, "%llu %llu %llu %zu",
          (unsigned long long)off[0], (unsigned long long)off[1], (unsigned long long)off[2], size);
    CHECK(data[0] == 3 && data[4] == 2, "header count/version");
    int code, sloppy;
    const uint8_t *pay;
    uint64_t psz;
    CHECK(blob_read(data, size, off[2], "b", &code, &pay, &psz, &e) == 0 && code == 3 && psz == 1 && *pay == 'z',
          "%s", e.msg);
    /* arbitrary bytes at every offset: never a payload outside the buffer */
    uint64_t s = 99;
    for (int round = 0; round < 2000; round++) {
        for (size_t i = 0; i < size; i++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            if ((s >> 60) == 0) data[i] = (uint8_t)(s >> 32);
        }
        for (uint64_t o = 0; o < size + 8; o += 8)
            if (blob_read_ex(data, size, o, "b", &code, &pay, &psz, &sloppy, &e) == 0)
                CHECK(pay >= data && pay + psz <= data + size, "payload out of bounds at %llu", (unsigned long long)o);
    }
    free(data);
}

/* Resolved BLOBFILE literals point into the program's copy of the file when its bytes already are
 * the decoded elements and are naturally aligned; a misaligned payload (a research file's data can
 * start anywhere) is copied. Either way the elements are the file's. */
static const mil_literal *const_lit(const mil_program *p, const char *name) {
    const mil_function *f = &p->funcs[0];
    int v = mil_func_value(f, name);
    return v >= 0 ? f->values[v].lit : NULL;
}

static void test_blob_alias(void) {
    ane_error e;
    err_clear(&e);
    /* spec layout: fp16 [3] at 128, fp32 [2] at 256 */
    const uint16_t h[3] = {0x3c00, 0xb800, 0x7bff};
    const float f[2] = {0.25f, -3.0f};
    blob_writer *w = blob_writer_new(&e);
    uint64_t off[2];
    CHECK(blob_writer_add_raw(w, 1, h, sizeof h, &off[0], &e) == 0, "%s", e.msg);
    CHECK(blob_writer_add_raw(w, 2, f, sizeof f, &off[1], &e) == 0, "%s", e.msg);
    uint8_t *spec;
    size_t spec_size;
    blob_writer_finish(w, &spec, &spec_size, &e);
    /* sloppy layout at an odd offset: record at 65, data (fp16 [2], then int8 [3]) right after it */
    uint8_t sloppy[64 + 1 + 64 + 7] = {0};
    sloppy[4] = 2; /* version */
    uint8_t *m = sloppy + 65;
    m[0] = 0xEF, m[1] = 0xBE, m[2] = 0xAD, m[3] = 0xDE, m[4] = 1; /* sentinel, dtype; offset 0 */
    const uint8_t pay[7] = {0x00, 0x3c, 0x00, 0xc0, 0xfd, 0x07, 0x80};
    memcpy(m + 64, pay, sizeof pay);
    char text[1024];
    snprintf(text, sizeof text,
             "program(1.3)\n{\n    func main<ios18>() {\n"
             "        tensor<fp16, [3]> a = const()[name = string(\"a\"), val = tensor<fp16, [3]>(BLOBFILE(path = string(\"@model_path/s.bin\"), offset = uint64(%llu)))];\n"
             "        tensor<fp32, [2]> b = const()[name = string(\"b\"), val = tensor<fp32, [2]>(BLOBFILE(path = string(\"@model_path/s.bin\"), offset = uint64(%llu)))];\n"
             "        tensor<fp16, [2]> c = const()[name = string(\"c\"), val = tensor<fp16, [2]>(BLOBFILE(path = string(\"@model_path/r.bin\"), offset = uint64(65)))];\n"
             "        tensor<int8, [3]> d = const()[name = string(\"d\"), val = tensor<int8, [3]>(BLOBFILE(path = string(\"@model_path/r.bin\"), offset = uint64(65)))];\n"
             "    } -> (a, b, c, d);\n}\n",
             (unsigned long long)off[0], (unsigned long long)off[1]);
    mil_program *p = parse(text, &e);
    CHECK(p, "%s", e.msg);
    if (!p) { free(spec); return; }
    CHECK(mil_program_add_blob(p, "@model_path/s.bin", spec, spec_size, &e) == 0, "%s", e.msg);
    CHECK(mil_program_add_blob(p, "@model_path/r.bin", sloppy, sizeof sloppy, &e) == 0, "%s", e.msg);
    free(spec);
    CHECK(mil_resolve_weights(p, NULL, &e) == 0, "%s", e.msg);
    const uint8_t *s0 = p->blobs[0].data, *r0 = p->blobs[1].data;
    const mil_literal *a = const_lit(p, "a"), *b = const_lit(p, "b"), *c = const_lit(p, "c"), *d = const_lit(p, "d");
    CHECK(a && b && c && d, "constants missing");
    if (!a || !b || !c || !d) { mil_program_release(p); return; }
    const uint16_t one = 1;
    if (*(const uint8_t *)&one == 1) { /* little-endian host: no byte swapping needed */
        CHECK((const uint8_t *)a->data == s0 + off[0] + 64, "fp16 payload copied, not aliased");
        CHECK((const uint8_t *)b->data == s0 + off[1] + 64, "fp32 payload copied, not aliased");
    }
    CHECK((const uint8_t *)c->data < r0 || (const uint8_t *)c->data >= r0 + sizeof sloppy,
          "misaligned fp16 payload aliased");
    CHECK((uintptr_t)c->data % 2 == 0, "fp16 copy misaligned");
    CHECK((const uint8_t *)d->data == r0 + 65 + 64, "int8 payload copied, not aliased");
    CHECK(memcmp(a->data, h, sizeof h) == 0 && memcmp(b->data, f, sizeof f) == 0, "spec elements differ");
    const uint16_t *cv = c->data;
    const int8_t *dv = d->data;
    CHECK(cv[0] == 0x3c00 && cv[1] == 0xc000, "sloppy fp16 0x%04x 0x%04x", cv[0], cv[1]);
    CHECK(dv[0] == 0 && dv[1] == 0x3c && dv[2] == 0, "sloppy int8 %d %d %d", dv[0], dv[1], dv[2]);
    mil_program_release(p);
}

/* A program prints in its own dialect unless told otherwise; build_info adds coremlc's pairs only
 * when the program has none. (The ANE backend prints with {SOURCE, build_info = 1}.) */
static void test_print_dialect(void) {
    ane_error e;
    const char *v10 = "program(1.0)\n{\n    func main<ios16>(tensor<fp16, [1, 4]> x) {\n"
                      "        tensor<fp16, [1, 4]> y = relu(x = x)[name = tensor<string, []>(\"y\")];\n"
                      "    } -> (y);\n}\n";
    mil_program *p = parse(v10, &e);
    CHECK(p, "%s", e.msg);
    if (!p) return;
    char *text;
    size_t n;
    CHECK(mil_print(p, NULL, &text, &n, &e) == 0, "%s", e.msg);
    CHECK(strncmp(text, "program(1.0)\n", 13) == 0 && strstr(text, "tensor<string, []>(\"y\")") &&
              !strstr(text, "buildInfo"), "1.0 source printed as:\n%s", text);
    free(text);
    mil_print_opts force13 = {MIL_DIALECT_1_3, 0};
    CHECK(mil_print(p, &force13, &text, &n, &e) == 0, "%s", e.msg);
    CHECK(strncmp(text, "program(1.3)\n", 13) == 0 && strstr(text, "string(\"y\")"), "forced 1.3:\n%s", text);
    free(text);
    mil_print_opts bi = {MIL_DIALECT_SOURCE, 1};
    CHECK(mil_print(p, &bi, &text, &n, &e) == 0, "%s", e.msg);
    CHECK(strstr(text, "[buildInfo = dict<tensor<string, []>, tensor<string, []>>({{\"coremlc-version\", \"3505.4.1\"}})]\n"),
          "1.0 buildInfo:\n%s", text);
    mil_program *q = parse(text, &e);
    CHECK(q && q->nattrs == 1 && strcmp(q->attrs[0].name, "buildInfo") == 0, "added buildInfo does not parse back: %s", e.msg);
    /* printing that again with build_info adds nothing */
    char *again;
    if (q) {
        CHECK(mil_print(q, &bi, &again, &n, &e) == 0, "%s", e.msg);
        CHECK(strcmp(again, text) == 0, "buildInfo added twice:\n%s", again);
        free(again);
        mil_program_release(q);
    }
    free(text);
    mil_program_release(p);
}

int main(void) {
    test_fp16_rounding();
    test_lexer();
    test_equality();
    test_build();
    test_print_dialect();
    test_limits();
    test_error_format();
    test_blob_bounds();
    test_blob_alias();
    if (failures) fprintf(stderr, "%d failure(s)\n", failures);
    return failures != 0;
}
