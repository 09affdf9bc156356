/* test_compile_job.c - queue_compile over a fake backend: kernels compiled on a worker thread,
 * backend errors delivered on wait, the job's private option copy, program references.
 * Exit 0 = pass. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mil/mil.h"
#include "queue/queue.h"

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #c); failures++; } } while (0)

typedef struct fake_impl {
    pthread_t compiled_on;
    char function[64];
} fake_impl;

static atomic_int kernels_live;
static pthread_mutex_t hold_mu = PTHREAD_MUTEX_INITIALIZER;

static int fake_compile(mil_program *p, const compile_opts *o, kernel **out, ane_error *e) {
    /* Tests can hold compiles by locking hold_mu. */
    pthread_mutex_lock(&hold_mu);
    pthread_mutex_unlock(&hold_mu);
    const char *fn = o->function ? o->function : "main";
    if (strcmp(fn, "missing") == 0) return err_set(e, ERR_BACKEND, "fake: no function '%s' in %s", fn, "prog.mil");
    kernel *k = calloc(1, sizeof *k);
    fake_impl *f = calloc(1, sizeof *f);
    f->compiled_on = pthread_self();
    snprintf(f->function, sizeof f->function, "%s", fn);
    k->impl = f;
    k->be = NULL; /* set by the caller below through the table */
    mil_program_retain(p);
    k->prog = p;
    atomic_fetch_add(&kernels_live, 1);
    *out = k;
    return 0;
}

static int fake_load(kernel *k, ane_error *e) {
    fake_impl *f = k->impl;
    if (strcmp(f->function, "noload") == 0) return err_set(e, ERR_BACKEND, "fake: load refused");
    k->loaded = 1;
    return 0;
}

static void fake_free(kernel *k) {
    if (!k) return;
    mil_program_release(k->prog);
    free(k->impl);
    free(k);
    atomic_fetch_sub(&kernels_live, 1);
}

static int fake_compile_set_be(mil_program *p, const compile_opts *o, kernel **out, ane_error *e);

static const backend fake = {
    .name = "fake", .compile = fake_compile_set_be, .load = fake_load, .free = fake_free,
};

static int fake_compile_set_be(mil_program *p, const compile_opts *o, kernel **out, ane_error *e) {
    int rc = fake_compile(p, o, out, e);
    if (rc == 0) (*out)->be = &fake;
    return rc;
}

static mil_program *checked_program(void) {
    ane_error e;
    mil_program *p = mil_program_new("1.3", &e);
    CHECK(p != NULL);
    p->checked = 1; /* an empty program: enough for a backend that does not read it */
    return p;
}

static queue *mkqueue(int workers, int capacity) {
    queue_opts o;
    queue_opts_default(&o);
    o.workers = workers;
    o.capacity = capacity;
    queue *q = NULL;
    ane_error e;
    CHECK(queue_new(&o, &q, &e) == 0);
    return q;
}

static void test_compile_on_worker(void) {
    queue *q = mkqueue(2, 8);
    mil_program *p = checked_program();
    compile_opts o;
    compile_opts_default(&o);
    char fname[16] = "main";
    o.function = fname;
    future *f = NULL;
    ane_error e;
    pthread_mutex_lock(&hold_mu);
    CHECK(queue_compile(q, &fake, p, &o, 1, 1, &f, &e) == 0);
    strcpy(fname, "XXXX"); /* the job owns a copy */
    CHECK(atomic_load(&p->refs) == 2);
    pthread_mutex_unlock(&hold_mu);
    CHECK(future_wait(f, -1, &e) == 0);
    kernel *k = future_take(f);
    CHECK(k && k->loaded && k->be == &fake);
    fake_impl *fi = k->impl;
    CHECK(strcmp(fi->function, "main") == 0);
    CHECK(!pthread_equal(fi->compiled_on, pthread_self()));
    future_release(f);
    CHECK(atomic_load(&p->refs) == 2); /* the job dropped its reference; the kernel holds one */
    fake_free(k);
    CHECK(atomic_load(&p->refs) == 1);

    /* Without load. */
    CHECK(queue_compile(q, &fake, p, NULL, 0, 1, &f, &e) == 0);
    CHECK(future_wait(f, -1, &e) == 0);
    k = future_take(f);
    CHECK(k && !k->loaded);
    fake_free(k);
    future_release(f);
    mil_program_release(p);
    queue_free(q);
}

static void test_errors(void) {
    queue *q = mkqueue(1, 8);
    mil_program *p = checked_program();
    compile_opts o;
    compile_opts_default(&o);
    future *f = NULL;
    ane_error e;
    o.function = "missing";
    CHECK(queue_compile(q, &fake, p, &o, 1, 1, &f, &e) == 0);
    CHECK(future_wait(f, -1, &e) == ERR_BACKEND);
    CHECK(strcmp(e.msg, "fake: no function 'missing' in prog.mil") == 0);
    future_release(f);
    o.function = "noload";
    CHECK(queue_compile(q, &fake, p, &o, 1, 1, &f, &e) == 0);
    CHECK(future_wait(f, -1, &e) == ERR_BACKEND);
    CHECK(strcmp(e.msg, "fake: load refused") == 0);
    future_release(f);
    CHECK(atomic_load(&kernels_live) == 0); /* the kernel that failed to load was freed */
    /* Unchecked programs never reach a worker. */
    p->checked = 0;
    CHECK(queue_compile(q, &fake, p, NULL, 1, 1, &f, &e) == ERR_STATE);
    CHECK(f == NULL && strstr(e.msg, "checked"));
    p->checked = 1;
    CHECK(queue_compile(q, NULL, p, NULL, 1, 1, &f, &e) == ERR_INVAL);
    CHECK(atomic_load(&p->refs) == 1);
    queue_close(q);
    CHECK(queue_compile(q, &fake, p, NULL, 1, 1, &f, &e) == ERR_STATE);
    CHECK(atomic_load(&p->refs) == 1); /* refused job released its reference */
    mil_program_release(p);
    queue_free(q);
}

static void test_cancel_and_close_release_everything(void) {
    queue *q = mkqueue(1, 64);
    mil_program *p = checked_program();
    future *fs[40];
    ane_error e;
    pthread_mutex_lock(&hold_mu); /* the first compile blocks: the rest stay queued */
    for (int i = 0; i < 40; i++) CHECK(queue_compile(q, &fake, p, NULL, 1, 1, &fs[i], &e) == 0);
    for (int i = 1; i < 40; i += 2) future_cancel(fs[i]);
    pthread_mutex_unlock(&hold_mu);
    CHECK(future_wait(fs[0], -1, &e) == 0);
    queue_free(q); /* cancels what is still queued, joins */
    int done = 0;
    for (int i = 0; i < 40; i++) {
        int rc = future_wait(fs[i], -1, &e);
        CHECK(rc == 0 || rc == ERR_CANCELLED);
        if (i % 2 == 1) CHECK(rc == ERR_CANCELLED);
        done += rc == 0;
        future_release(fs[i]); /* untaken kernels are freed here */
    }
    CHECK(done >= 1);
    CHECK(atomic_load(&kernels_live) == 0);
    CHECK(atomic_load(&p->refs) == 1);
    mil_program_release(p);
}

/* A backend's availability is asked on the submitting thread, never first on a worker (the ane
 * backend loads its framework there; CoreFoundation wants the main thread), and an unavailable
 * backend is refused at submit with its reason. */
static pthread_t avail_asked_on;
static atomic_int avail_calls, avail_answer = 1;
static int fake_available(char *why, size_t n) {
    avail_asked_on = pthread_self();
    atomic_fetch_add(&avail_calls, 1);
    if (!atomic_load(&avail_answer)) snprintf(why, n, "no such device");
    return atomic_load(&avail_answer);
}
static const backend fake_avail = {
    .name = "fakeav", .available = fake_available, .compile = fake_compile_set_be, .load = fake_load,
    .free = fake_free,
};

static void test_available_on_submitter(void) {
    queue *q = mkqueue(1, 4);
    mil_program *p = checked_program();
    future *f = NULL;
    ane_error e;
    CHECK(queue_compile(q, &fake_avail, p, NULL, 0, 1, &f, &e) == 0);
    CHECK(atomic_load(&avail_calls) == 1 && pthread_equal(avail_asked_on, pthread_self()));
    CHECK(future_wait(f, -1, &e) == 0);
    fake_free(future_take(f));
    future_release(f);
    atomic_store(&avail_answer, 0);
    f = NULL;
    CHECK(queue_compile(q, &fake_avail, p, NULL, 0, 1, &f, &e) == ERR_UNSUPPORTED && f == NULL);
    CHECK(strstr(e.msg, "backend 'fakeav' is not available here: no such device") != NULL);
    mil_program_release(p);
    queue_free(q);
}

int main(void) {
    test_compile_on_worker();
    test_errors();
    test_cancel_and_close_release_everything();
    test_available_on_submitter();
    CHECK(future_live_count() == 0);
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    return 0;
}
