/* arena.c - the program arena: every string, array, type and literal of a MIL program lives in
 * a list of chunks freed at once by the last mil_program_release. Small requests are bumped out
 * of 32 KiB chunks; big ones (weight data) get a chunk of their own so nothing is wasted, from
 * core/bigmem so that the next program's weights reuse the pages of the last one's. */
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "../core/bigmem.h"
#include "mil_int.h"

#define CHUNK_SIZE ((size_t)32 << 10)
#define BIG_REQUEST ((size_t)8 << 10)
#define ALIGN (alignof(max_align_t))

typedef struct chunk {
    struct chunk *next;
    size_t size, used;
    alignas(max_align_t) unsigned char data[];
} chunk;

struct mil_arena {
    chunk *head;  /* the chunk small requests come from */
    chunk *big;   /* dedicated chunks */
    size_t total;
};

mil_arena *mil_arena_new(void) { return calloc(1, sizeof(mil_arena)); }

static void free_list(chunk *c, void (*release)(void *)) {
    while (c) {
        chunk *n = c->next;
        release(c);
        c = n;
    }
}

void mil_arena_free(mil_arena *a) {
    if (!a) return;
    free_list(a->head, free);
    free_list(a->big, bigmem_free);
    free(a);
}

static void *take(mil_arena *a, size_t n, int zero) {
    if (!a) return NULL;
    if (n == 0) n = 1;
    if (n > SIZE_MAX - ALIGN - sizeof(chunk)) return NULL;
    size_t rounded = (n + ALIGN - 1) & ~(ALIGN - 1);
    if (rounded >= BIG_REQUEST) {
        chunk *c = bigmem_alloc(sizeof(chunk) + rounded);
        if (!c) return NULL;
        if (zero) memset(c->data, 0, rounded);
        c->size = c->used = rounded;
        c->next = a->big;
        a->big = c;
        a->total += rounded;
        return c->data;
    }
    chunk *c = a->head;
    if (!c || c->size - c->used < rounded) {
        c = malloc(sizeof(chunk) + CHUNK_SIZE);
        if (!c) return NULL;
        c->size = CHUNK_SIZE;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += rounded;
    a->total += rounded;
    if (zero) memset(p, 0, rounded);
    return p;
}

void *mil_arena_alloc(mil_arena *a, size_t n) { return take(a, n, 1); }

void *mil_arena_alloc_array(mil_arena *a, size_t n, size_t size) {
    if (size && n > SIZE_MAX / size) return NULL;
    return mil_arena_alloc(a, n * size);
}

int mil_arena_grow(mil_arena *a, void **arr, int *cap, int n, int first, int max, size_t size) {
    if (n < *cap) return 0;
    int nc = *cap == 0 ? first : *cap > max / 2 ? max : *cap * 2;
    if (nc > max) nc = max;
    void *na = mil_arena_alloc_array(a, (size_t)nc, size);
    if (!na) return -1;
    if (n) memcpy(na, *arr, (size_t)n * size);
    *arr = na;
    *cap = nc;
    return 0;
}

char *mil_arena_strndup(mil_arena *a, const char *s, size_t n) {
    char *d = mil_arena_alloc(a, n + 1);
    if (!d) return NULL;
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}

char *mil_arena_strdup(mil_arena *a, const char *s) {
    return s ? mil_arena_strndup(a, s, strlen(s)) : NULL;
}

void *mil_arena_memdup(mil_arena *a, const void *src, size_t n) {
    void *d = take(a, n, 0); /* every byte is written below */
    if (d && n) memcpy(d, src, n);
    return d;
}

size_t mil_arena_bytes(const mil_arena *a) { return a ? a->total : 0; }

int mil_arena_free_big(mil_arena *a, void *p) {
    if (!a || !p) return 0;
    for (chunk **c = &a->big; *c; c = &(*c)->next)
        if ((void *)(*c)->data == p) {
            chunk *dead = *c;
            *c = dead->next;
            a->total -= dead->size;
            bigmem_free(dead);
            return 1;
        }
    return 0;
}
