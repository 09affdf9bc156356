/* sin_control.c - the stand-in's recording, failure injection and control API.
 *
 * Events are short lines "name key=value ..." appended under a lock. Captures keep the bytes the
 * backend handed over (last descriptor's MIL and weights, the temp directory at the last compile).
 * Failures are injected per call kind ("compile", "load", "eval", "unload", "descriptor",
 * "surface") as: let `after` calls succeed, then fail `count` calls. The environment can set the
 * same at load time for subprocess tests:
 *   ANE_STANDIN_FAIL="compile:0:1,load:0:1"   ANE_STANDIN_COMPILE_LIMIT=5
 *   ANE_STANDIN_MISSING_CLASS=_ANERequest      ANE_STANDIN_LOG=/path (append events there too)
 * and the answers only a Mac can give (docs/mac.md "First run"), one switch each:
 *   ANE_STANDIN_IO_ORDER=declaration|name|size  how request indices map to the program's I/O
 *   ANE_STANDIN_DESCRIBE=0|1   the model publishes modelAttributes[ANEFModelDescription] (default 1)
 *   ANE_STANDIN_REFUSE_EXTERNAL=1   inputs that are another model's output fail with statusType 0x9 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "standin.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#endif

#define EXPORT __attribute__((visibility("default")))

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t big = PTHREAD_MUTEX_INITIALIZER;

void sin_lock(void) { pthread_mutex_lock(&big); }
void sin_unlock(void) { pthread_mutex_unlock(&big); }

/* ---- events ----
 * Bounded: the last EVENTS_KEPT events in a ring (what the specs read, oldest first), plus a count
 * per kind (the event's first word) over everything since the last reset. Keeping every event
 * grew without limit: 200,000 evals held 150 MB. */
#define EVENTS_KEPT 8192
#define EVENT_KINDS 128
static char *events[EVENTS_KEPT];
static size_t nevents;     /* events recorded since reset; the ring holds the last EVENTS_KEPT */
static struct { char name[48]; size_t n; } kinds[EVENT_KINDS];
static int nkinds;
static FILE *log_file;

static void count_kind(const char *ev) {
    size_t len = strcspn(ev, " ");
    if (len >= sizeof kinds[0].name) len = sizeof kinds[0].name - 1;
    for (int i = 0; i < nkinds; i++)
        if (strlen(kinds[i].name) == len && strncmp(kinds[i].name, ev, len) == 0) {
            kinds[i].n++;
            return;
        }
    if (nkinds < EVENT_KINDS - 1) { /* a new kind */
        memcpy(kinds[nkinds].name, ev, len);
        kinds[nkinds].name[len] = '\0';
        kinds[nkinds++].n = 1;
        return;
    }
    if (nkinds == EVENT_KINDS - 1) snprintf(kinds[nkinds++].name, sizeof kinds[0].name, "(other)");
    kinds[EVENT_KINDS - 1].n++; /* the last slot counts every kind beyond the table */
}

void sin_record(const char *fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    char *copy = strdup(buf);
    if (!copy) abort();
    pthread_mutex_lock(&mu);
    size_t slot = nevents % EVENTS_KEPT;
    free(events[slot]);
    events[slot] = copy;
    nevents++;
    count_kind(buf);
    if (log_file) {
        fprintf(log_file, "%s\n", buf);
        fflush(log_file);
    }
    pthread_mutex_unlock(&mu);
}

/* ---- captures ---- */
typedef struct blobcap { char *key; uint64_t offset; uint8_t *data; size_t n; } blobcap;
static uint8_t *cap_mil;
static size_t cap_mil_len;
static blobcap *cap_w, *cap_f;
static size_t ncap_w, ncap_f;

static void free_caps(blobcap **v, size_t *n) {
    for (size_t i = 0; i < *n; i++) {
        free((*v)[i].key);
        free((*v)[i].data);
    }
    free(*v);
    *v = NULL;
    *n = 0;
}

static void push_cap(blobcap **v, size_t *n, const char *key, uint64_t off, const uint8_t *d,
                     size_t len) {
    blobcap *nv = realloc(*v, (*n + 1) * sizeof *nv);
    if (!nv) abort();
    *v = nv;
    nv[*n].key = strdup(key);
    nv[*n].offset = off;
    nv[*n].data = malloc(len ? len : 1);
    if (len) memcpy(nv[*n].data, d, len);
    nv[*n].n = len;
    (*n)++;
}

void sin_capture_descriptor(const uint8_t *mil, size_t mil_len) {
    pthread_mutex_lock(&mu);
    free(cap_mil);
    cap_mil = malloc(mil_len ? mil_len : 1);
    if (mil_len) memcpy(cap_mil, mil, mil_len);
    cap_mil_len = mil_len;
    free_caps(&cap_w, &ncap_w);
    pthread_mutex_unlock(&mu);
}

void sin_capture_weight(const char *key, uint64_t offset, const uint8_t *data, size_t n) {
    pthread_mutex_lock(&mu);
    push_cap(&cap_w, &ncap_w, key, offset, data, n);
    pthread_mutex_unlock(&mu);
}

void sin_capture_file(const char *rel, const uint8_t *data, size_t n, int reset) {
    pthread_mutex_lock(&mu);
    if (reset) free_caps(&cap_f, &ncap_f);
    if (rel) push_cap(&cap_f, &ncap_f, rel, 0, data, n);
    pthread_mutex_unlock(&mu);
}

/* ---- failure injection ---- */
typedef struct shot { char what[32]; long after, count; } shot;
static shot shots[16];
static int nshots;
static long compile_limit = -1;
static char missing_class[256];
static int perf_enabled;

static void add_shot(const char *what, long after, long count) {
    for (int i = 0; i < nshots; i++)
        if (strcmp(shots[i].what, what) == 0) {
            shots[i].after = after;
            shots[i].count = count;
            return;
        }
    if (nshots < 16) {
        snprintf(shots[nshots].what, sizeof shots[nshots].what, "%s", what);
        shots[nshots].after = after;
        shots[nshots].count = count;
        nshots++;
    }
}

int sin_should_fail(const char *what) {
    int fail = 0;
    pthread_mutex_lock(&mu);
    for (int i = 0; i < nshots; i++)
        if (strcmp(shots[i].what, what) == 0) {
            if (shots[i].after > 0) shots[i].after--;
            else if (shots[i].count > 0) {
                shots[i].count--;
                fail = 1;
            }
        }
    pthread_mutex_unlock(&mu);
    return fail;
}

long sin_compile_limit(void) { return compile_limit; }
int sin_class_missing(const char *name) { return missing_class[0] && strcmp(name, missing_class) == 0; }
int sin_perf_enabled(void) { return perf_enabled; }

/* The first-run switches: the environment's values, and the current ones (reset restores). */
static int io_order_env, describe_env = 1, refuse_env, io_order_now, describe_now = 1, refuse_now;
int sin_io_order(void) { return io_order_now; }
int sin_describe(void) { return describe_now; }
int sin_refuse_external(void) { return refuse_now; }

/* ---- the control API (C; spec/support/standin/l_standin.c wraps it for Lua) ---- */
EXPORT void standin_reset(void);
void standin_reset(void) {
    pthread_mutex_lock(&mu);
    for (size_t i = 0; i < EVENTS_KEPT; i++) {
        free(events[i]);
        events[i] = NULL;
    }
    nevents = 0;
    memset(kinds, 0, sizeof kinds);
    nkinds = 0;
    nshots = 0;
    compile_limit = -1;
    perf_enabled = 0;
    io_order_now = io_order_env;
    describe_now = describe_env;
    refuse_now = refuse_env;
    free(cap_mil);
    cap_mil = NULL;
    cap_mil_len = 0;
    free_caps(&cap_w, &ncap_w);
    free_caps(&cap_f, &ncap_f);
    pthread_mutex_unlock(&mu);
}

/* How many events the ring holds (at most EVENTS_KEPT: the most recent ones). */
EXPORT size_t standin_event_count(void);
size_t standin_event_count(void) {
    pthread_mutex_lock(&mu);
    size_t n = nevents < EVENTS_KEPT ? nevents : EVENTS_KEPT;
    pthread_mutex_unlock(&mu);
    return n;
}

/* How many were recorded since the last reset (kept or not). */
EXPORT size_t standin_event_total(void);
size_t standin_event_total(void) {
    pthread_mutex_lock(&mu);
    size_t n = nevents;
    pthread_mutex_unlock(&mu);
    return n;
}

/* Copies held event i (0 = the oldest held) into buf; returns 0, or -1 past the end. */
EXPORT int standin_event(size_t i, char *buf, size_t n);
int standin_event(size_t i, char *buf, size_t n) {
    int rc = -1;
    pthread_mutex_lock(&mu);
    size_t held = nevents < EVENTS_KEPT ? nevents : EVENTS_KEPT;
    if (i < held) {
        snprintf(buf, n, "%s", events[(nevents - held + i) % EVENTS_KEPT]);
        rc = 0;
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

/* Kind i of the per-kind counts since reset: its name into buf and its count into *count;
 * returns 0, or -1 past the end. */
EXPORT int standin_event_kind(int i, char *buf, size_t n, size_t *count);
int standin_event_kind(int i, char *buf, size_t n, size_t *count) {
    int rc = -1;
    pthread_mutex_lock(&mu);
    if (i >= 0 && i < nkinds) {
        snprintf(buf, n, "%s", kinds[i].name);
        *count = kinds[i].n;
        rc = 0;
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

/* what: "compile" "load" "eval" "unload" "descriptor" "surface" "compile_limit" (after = limit,
 * negative = none) "perf" (after = 1 fills hwExecutionTime). */
EXPORT int standin_inject(const char *what, long after, long count);
int standin_inject(const char *what, long after, long count) {
    pthread_mutex_lock(&mu);
    if (strcmp(what, "compile_limit") == 0) compile_limit = after;
    else if (strcmp(what, "perf") == 0) perf_enabled = after != 0;
    else if (strcmp(what, "io_order") == 0) io_order_now = (int)after; /* 0 declaration, 1 name, 2 size */
    else if (strcmp(what, "describe") == 0) describe_now = after != 0;
    else if (strcmp(what, "refuse_external") == 0) refuse_now = after != 0;
    else add_shot(what, after, count);
    pthread_mutex_unlock(&mu);
    return 0;
}

/* Live objects of a class ("*" = all, "IOSurface" = surfaces). */
EXPORT int standin_live(const char *cls);
int standin_live(const char *cls) {
    if (strcmp(cls, "IOSurface") == 0) return sin_surface_live();
    return sin_live(cls);
}

/* Captures: kind "mil" (i ignored), "weight" i, "file" i. Pointers stay valid until the next
 * capture of that kind or reset; the caller copies at once. Returns 0, or -1 past the end. */
EXPORT int standin_capture(const char *kind, size_t i, const char **key, uint64_t *offset,
                           const uint8_t **data, size_t *n);
int standin_capture(const char *kind, size_t i, const char **key, uint64_t *offset,
                    const uint8_t **data, size_t *n) {
    int rc = -1;
    pthread_mutex_lock(&mu);
    if (strcmp(kind, "mil") == 0 && cap_mil) {
        *key = "model.mil";
        *offset = 0;
        *data = cap_mil;
        *n = cap_mil_len;
        rc = 0;
    } else if (strcmp(kind, "weight") == 0 && i < ncap_w) {
        *key = cap_w[i].key;
        *offset = cap_w[i].offset;
        *data = cap_w[i].data;
        *n = cap_w[i].n;
        rc = 0;
    } else if (strcmp(kind, "file") == 0 && i < ncap_f) {
        *key = cap_f[i].key;
        *offset = 0;
        *data = cap_f[i].data;
        *n = cap_f[i].n;
        rc = 0;
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

/* ---- load time: register everything, read the environment ---- */
static void parse_fail_env(const char *s) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        char what[32];
        long after = 0, count = 1;
        if (sscanf(tok, "%31[^:]:%ld:%ld", what, &after, &count) >= 1) add_shot(what, after, count);
    }
}

__attribute__((constructor)) static void standin_init(void) {
    const char *m = getenv("ANE_STANDIN_MISSING_CLASS");
    if (m) snprintf(missing_class, sizeof missing_class, "%s", m);
    const char *f = getenv("ANE_STANDIN_FAIL");
    if (f) parse_fail_env(f);
    const char *l = getenv("ANE_STANDIN_COMPILE_LIMIT");
    if (l) compile_limit = strtol(l, NULL, 10);
    const char *io = getenv("ANE_STANDIN_IO_ORDER");
    if (io) io_order_now = io_order_env = strcmp(io, "name") == 0 ? 1 : strcmp(io, "size") == 0 ? 2 : 0;
    const char *ds = getenv("ANE_STANDIN_DESCRIBE");
    if (ds) describe_now = describe_env = strcmp(ds, "0") != 0;
    const char *rx = getenv("ANE_STANDIN_REFUSE_EXTERNAL");
    if (rx) refuse_now = refuse_env = strcmp(rx, "1") == 0;
    const char *lp = getenv("ANE_STANDIN_LOG");
    if (lp && *lp) log_file = fopen(lp, "a");
#if defined(__SANITIZE_ADDRESS__)
    /* GCC's libobjc keeps its class and method tables in blocks LeakSanitizer cannot trace;
     * they live as long as the process, like a real framework's classes. */
    __lsan_disable();
#endif
    sin_register_root();
    sin_register_foundation();
    sin_register_iosurface_keys();
    sin_register_ane();
#if defined(__SANITIZE_ADDRESS__)
    __lsan_enable();
#endif
}
