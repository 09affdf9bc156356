/* mil_fuzz.c - libFuzzer target: parse (strict and lenient, chosen by the input's last byte),
 * then demand that printing succeeds and round-trips (parse(print(p)) equals p, in both
 * dialects, whole-line comments kept), run the checker, and feed the same bytes to the blob reader. Any crash, sanitizer
 * report or broken round trip is a finding. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mil/check.h"
#include "mil/mil.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whole-line comments the program carries; printing must keep every one. */
static long ncomments(const mil_program *p) {
    long n = p->comments.n + p->end_comments.n + p->tail_comments.n;
    for (int i = 0; i < p->nfuncs; i++) {
        const mil_function *f = &p->funcs[i];
        n += f->comments.n + f->end_comments.n;
        for (int k = 0; k < f->nops; k++) n += f->ops[k].comments.n;
    }
    return n;
}

static void roundtrip(const mil_program *p, const mil_parse_opts *o, mil_dialect d) {
    ane_error e;
    char *text = NULL;
    size_t n = 0;
    mil_print_opts po = {d, 0};
    if (mil_print(p, &po, &text, &n, &e)) {
        fprintf(stderr, "print failed: %s\n", e.msg);
        abort();
    }
    mil_program *q = NULL;
    if (mil_parse(text, n, "printed.mil", o, &q, &e)) {
        fprintf(stderr, "printed text does not parse: %s\n--- text:\n%s\n", e.msg, text);
        abort();
    }
    char why[512];
    /* V2 printing writes program(1.0); V1 printing keeps the version unless it was 1.0; the
     * source's own dialect always keeps it */
    int v10 = strcmp(p->version, "1.0") == 0;
    int same_version = d == MIL_DIALECT_SOURCE || (d == MIL_DIALECT_1_0 ? v10 : !v10);
    if (same_version && !mil_program_equal(p, q, why, sizeof why)) {
        fprintf(stderr, "round trip changed the program: %s\n--- text:\n%s\n", why, text);
        abort();
    }
    if (ncomments(p) != ncomments(q)) {
        fprintf(stderr, "round trip changed the comments (%ld -> %ld)\n--- text:\n%s\n", ncomments(p),
                ncomments(q), text);
        abort();
    }
    mil_program_release(q);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    mil_parse_opts o = {size > 0 && data[size - 1] == '\n' ? 0 : 1};
    ane_error e;
    mil_program *p = NULL;
    if (mil_parse((const char *)data, size, "fuzz.mil", &o, &p, &e) == 0) {
        roundtrip(p, &o, MIL_DIALECT_SOURCE);
        roundtrip(p, &o, MIL_DIALECT_1_3);
        roundtrip(p, &o, MIL_DIALECT_1_0);
        mil_check_opts co = {0};
        (void)mil_check(p, &co, &e);
        mil_program_release(p);
    }
    int code, sloppy;
    const uint8_t *pay;
    uint64_t psz;
    for (uint64_t off = 64; off < 256 && off < size; off += 64)
        if (blob_read_ex(data, size, off, "fuzz.bin", &code, &pay, &psz, &sloppy, &e) == 0 &&
            (pay < data || pay + psz > data + size))
            abort(); /* the reader must never hand out bytes outside the file */
    return 0;
}
