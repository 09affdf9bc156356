/* test_bigmem.c - the recycling allocator: alignment, reuse of a freed buffer of about the same
 * size (and not of a much larger one), the limit on what is kept, trim, small buffers never kept,
 * and two threads allocating, filling, checking and freeing at once (also run under TSan). */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bigmem.h"

#include "expect.h"

#define MB ((size_t)1 << 20)

static void test_reuse_and_limit(void) {
    size_t old = bigmem_limit(64 * MB); /* sanitizer builds keep nothing by default */
    bigmem_trim();
    char *a = bigmem_alloc(3 * MB);
    EXPECT(a && (uintptr_t)a % BIGMEM_ALIGN == 0, "3 MB buffer %p not 64-byte aligned", (void *)a);
    memset(a, 0x5a, 3 * MB);
    bigmem_free(a);
    EXPECT(bigmem_cached() >= 3 * MB, "a freed 3 MB buffer is kept (%zu cached)", bigmem_cached());
    char *b = bigmem_alloc(3 * MB);
    EXPECT(b == a, "the same size reuses the kept buffer");
    bigmem_free(b);
    char *c = bigmem_alloc(1 * MB + 1);
    EXPECT(c != a, "a request under three quarters of a kept buffer does not take it");
    char *d = bigmem_alloc(5 * MB / 2);
    EXPECT(d == a, "a request within a quarter of a kept buffer takes it");
    memset(d, 1, 5 * MB / 2);
    bigmem_free(c);
    bigmem_free(d);

    bigmem_trim();
    EXPECT(bigmem_cached() == 0, "trim keeps nothing (%zu)", bigmem_cached());
    bigmem_limit(4 * MB);
    char *e = bigmem_alloc(3 * MB), *f = bigmem_alloc(3 * MB);
    bigmem_free(e);
    bigmem_free(f);
    EXPECT(bigmem_cached() > 0 && bigmem_cached() <= 4 * MB, "the limit bounds what is kept (%zu)", bigmem_cached());
    char *g = bigmem_alloc(3 * MB);
    EXPECT(g == f, "the most recently freed buffer is the one kept");
    bigmem_free(g);
    bigmem_limit(0);
    EXPECT(bigmem_cached() == 0, "a zero limit releases everything (%zu)", bigmem_cached());

    bigmem_limit(64 * MB);
    char *s = bigmem_alloc(1000);
    EXPECT(s && (uintptr_t)s % BIGMEM_ALIGN == 0, "small buffer aligned");
    bigmem_free(s);
    EXPECT(bigmem_cached() == 0, "small buffers are not kept (%zu)", bigmem_cached());
    bigmem_free(NULL);
    bigmem_trim();
    bigmem_limit(old);
}

static void *churn(void *arg) {
    unsigned seed = (unsigned)(uintptr_t)arg;
    int *bad = calloc(1, sizeof *bad);
    for (int r = 0; r < 300; r++) {
        seed = seed * 1103515245u + 12345u;
        size_t n = MB / 2 + (seed >> 8) % (3 * MB);
        unsigned char tag = (unsigned char)(seed >> 24);
        unsigned char *p = bigmem_alloc(n);
        if (!p) {
            (*bad)++;
            continue;
        }
        memset(p, tag, n);
        for (size_t i = 0; i < n; i += 4093)
            if (p[i] != tag) (*bad)++;
        if (p[n - 1] != tag) (*bad)++;
        bigmem_free(p);
    }
    return bad;
}

static void test_threads(void) {
    size_t old = bigmem_limit(16 * MB);
    pthread_t t[2];
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, churn, (void *)(uintptr_t)(i + 1));
    for (int i = 0; i < 2; i++) {
        int *bad = NULL;
        pthread_join(t[i], (void **)&bad);
        EXPECT(bad && *bad == 0, "thread %d saw %d corrupted bytes or failed allocations", i, bad ? *bad : -1);
        free(bad);
    }
    EXPECT(bigmem_cached() <= 16 * MB, "limit held under two threads (%zu)", bigmem_cached());
    bigmem_trim();
    bigmem_limit(old);
}

int main(void) {
    test_reuse_and_limit();
    test_threads();
    printf("test_bigmem: %d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
