/* bigmem.c - see bigmem.h. Every buffer starts with a 64-byte header (its mapping size, a magic
 * and the cache links); buffers from 1 MiB are their own mmap, smaller ones come from
 * posix_memalign and are never cached. */
#include "bigmem.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define MIN_CACHED ((size_t)1 << 20)
#define MAGIC_MAPPED 0x6269676dU /* "bigm" */
#define MAGIC_HEAP 0x6269676cU

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANITIZED 1
#endif
#endif

typedef struct blk {
    size_t size;             /* bytes mapped, header included */
    uint32_t magic;
    struct blk *prev, *next; /* cache links, most recently freed first */
} blk;

_Static_assert(sizeof(blk) <= BIGMEM_ALIGN, "header must fit its 64 bytes");

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static blk *head, *tail;
static size_t cached, limit = (size_t)-1; /* (size_t)-1: not yet set */

/* fork() while another thread holds mu would leave the child's copy locked forever. Registered
 * at load, before any thread can be inside this file: registering lazily (pthread_once on first
 * use) raced with a fork in another thread and hung the child. */
static void fork_prepare(void) { pthread_mutex_lock(&mu); }
static void fork_parent(void) { pthread_mutex_unlock(&mu); }
static void fork_child(void) { pthread_mutex_init(&mu, NULL); }
__attribute__((constructor)) static void fork_register(void) {
    pthread_atfork(fork_prepare, fork_parent, fork_child);
}

static size_t page_size(void) {
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

static size_t default_limit(void) {
#ifdef SANITIZED
    return 0;
#else
    size_t l = (size_t)1 << 30;
    long pages = sysconf(_SC_PHYS_PAGES);
    if (pages > 0 && (size_t)pages / 4 < l / page_size()) l = (size_t)pages / 4 * page_size();
    return l;
#endif
}

static void unlink_blk(blk *b) {
    if (b->prev) b->prev->next = b->next;
    else head = b->next;
    if (b->next) b->next->prev = b->prev;
    else tail = b->prev;
    b->prev = b->next = NULL;
    cached -= b->size;
}

/* Drop the oldest buffers until at most `keep` bytes are kept; the caller holds mu and unmaps
 * the returned list after unlocking. */
static blk *evict(size_t keep) {
    blk *out = NULL;
    while (tail && cached > keep) {
        blk *b = tail;
        unlink_blk(b);
        b->next = out;
        out = b;
    }
    return out;
}

static void unmap_list(blk *b) {
    while (b) {
        blk *n = b->next;
        munmap(b, b->size);
        b = n;
    }
}

void *bigmem_alloc(size_t bytes) {
    if (bytes > SIZE_MAX - 2 * page_size()) return NULL;
    size_t pg = page_size();
    size_t need = (bytes + BIGMEM_ALIGN + pg - 1) & ~(pg - 1);
    if (need < MIN_CACHED) {
        void *p = NULL;
        if (posix_memalign(&p, BIGMEM_ALIGN, bytes + BIGMEM_ALIGN)) return NULL;
        blk *b = p;
        b->size = bytes + BIGMEM_ALIGN;
        b->magic = MAGIC_HEAP;
        return (char *)p + BIGMEM_ALIGN;
    }
    /* the smallest kept buffer that fits, wasting at most a quarter */
    pthread_mutex_lock(&mu);
    blk *best = NULL;
    for (blk *b = head; b; b = b->next)
        if (b->size >= need && b->size - need <= need / 4 && (!best || b->size < best->size)) best = b;
    if (best) unlink_blk(best);
    pthread_mutex_unlock(&mu);
    if (!best) {
        void *m = mmap(NULL, need, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED) {
            bigmem_trim(); /* kept buffers may be what is missing */
            m = mmap(NULL, need, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (m == MAP_FAILED) return NULL;
        }
        best = m;
        best->size = need;
    }
    best->magic = MAGIC_MAPPED;
    best->prev = best->next = NULL;
    return (char *)best + BIGMEM_ALIGN;
}

void bigmem_free(void *p) {
    if (!p) return;
    blk *b = (blk *)((char *)p - BIGMEM_ALIGN);
    if (b->magic == MAGIC_HEAP) {
        b->magic = 0;
        free(b);
        return;
    }
    if (b->magic != MAGIC_MAPPED) abort(); /* not ours, or freed twice */
    b->magic = 0;
    pthread_mutex_lock(&mu);
    if (limit == (size_t)-1) limit = default_limit();
    if (b->size > limit) {
        pthread_mutex_unlock(&mu);
        munmap(b, b->size);
        return;
    }
    b->prev = NULL;
    b->next = head;
    if (head) head->prev = b;
    else tail = b;
    head = b;
    cached += b->size;
    blk *drop = evict(limit); /* the oldest make room; b, the newest, stays */
    pthread_mutex_unlock(&mu);
    unmap_list(drop);
}

size_t bigmem_limit(size_t bytes) {
    pthread_mutex_lock(&mu);
    size_t old = limit == (size_t)-1 ? default_limit() : limit;
    limit = bytes;
    blk *drop = evict(limit);
    pthread_mutex_unlock(&mu);
    unmap_list(drop);
    return old;
}

size_t bigmem_cached(void) {
    pthread_mutex_lock(&mu);
    size_t c = cached;
    pthread_mutex_unlock(&mu);
    return c;
}

void bigmem_trim(void) {
    pthread_mutex_lock(&mu);
    blk *drop = evict(0);
    pthread_mutex_unlock(&mu);
    unmap_list(drop);
}
