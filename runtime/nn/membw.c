/* membw.c - stream read over threads: the memory-bandwidth bound a weight-streaming decode step
 * cannot beat (every weight byte read once per token). */
#include "membw.h"

#include <pthread.h>
#include <string.h>

typedef struct part {
    const unsigned char *p;
    size_t n;
    uint64_t sum;
} part;

static uint64_t fold(const unsigned char *p, size_t n) {
    uint64_t a[8] = {0};
    size_t i = 0;
    for (; i + 64 <= n; i += 64) { /* eight independent lanes: the loop vectorises */
        uint64_t w[8];
        memcpy(w, p + i, 64);
        for (int k = 0; k < 8; k++) a[k] ^= w[k];
    }
    uint64_t s = a[0] ^ a[1] ^ a[2] ^ a[3] ^ a[4] ^ a[5] ^ a[6] ^ a[7];
    for (; i < n; i++) s ^= p[i];
    return s;
}

static void *run_part(void *arg) {
    part *pt = arg;
    pt->sum = fold(pt->p, pt->n);
    return NULL;
}

uint64_t nn_stream_read(const void *p, size_t n, int threads) {
    if (threads < 1) threads = 1;
    if (threads > 64) threads = 64;
    part parts[64];
    pthread_t tid[64];
    int started[64] = {0};
    size_t share = (n / (size_t)threads + 63) & ~(size_t)63;
    for (int t = 0; t < threads; t++) {
        size_t lo = share * (size_t)t, hi = lo + share;
        if (lo > n) lo = n;
        if (hi > n) hi = n;
        parts[t] = (part){(const unsigned char *)p + lo, hi - lo, 0};
        if (t > 0) started[t] = pthread_create(&tid[t], NULL, run_part, &parts[t]) == 0;
    }
    run_part(&parts[0]);
    uint64_t s = parts[0].sum;
    for (int t = 1; t < threads; t++) {
        if (started[t]) pthread_join(tid[t], NULL);
        else run_part(&parts[t]); /* no thread: read it here */
        s ^= parts[t].sum;
    }
    return s;
}
