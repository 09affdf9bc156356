/* queue.c - worker pool, bounded FIFO with back-pressure, futures.
 *
 * Locking: a queue has one mutex for its list and counters; each future has its own mutex for
 * its state. Order is always queue then future. A queued future holds a reference on its queue
 * (so a concurrent cancel can unlink it safely); the queue holds one reference on each queued
 * future, a worker one on the future it runs. The queue struct is freed when its owner has
 * called queue_free and no queued future or canceller still refers to it. */
#include "queue.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__linux__)
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#elif defined(__APPLE__)
#include <pthread/qos.h>
#endif

static atomic_long live_futures;

struct future {
    atomic_int refs;
    pthread_mutex_t mu;
    pthread_cond_t cv;          /* broadcast on every transition to a final state */
    future_state state;
    job_run_fn run;
    void *arg;                  /* owned until run finishes or the job is cancelled */
    job_free_fn free_arg, free_result;
    void *result;               /* owned until taken */
    ane_error err;
    queue *q;                   /* while queued: the queue (one reference held) */
    future *prev, *next;        /* queue links, guarded by q->mu */
};

struct queue {
    atomic_int refs;            /* owner + queued futures + cancellers in flight */
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full, idle;
    future *head, *tail;
    int len, cap, closed, joined, nice, idle_sched, running, paused;
    int nworkers;
    pthread_t *threads;
    long submitted, done, failed, cancelled;
};

const char *future_state_name(future_state s) {
    switch (s) {
    case FUTURE_PENDING: return "pending";
    case FUTURE_RUNNING: return "running";
    case FUTURE_DONE: return "done";
    case FUTURE_FAILED: return "failed";
    case FUTURE_CANCELLED: return "cancelled";
    }
    return "?";
}

void queue_opts_default(queue_opts *o) {
    o->workers = 1;
    o->capacity = 64;
    o->nice = 10;
    o->idle = 0;
}

/* ---- futures ---- */

static future *future_new(job_run_fn run, void *arg, job_free_fn free_arg, job_free_fn free_result) {
    future *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
#if !defined(__APPLE__)
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
#endif
    if (pthread_mutex_init(&f->mu, NULL) != 0) { free(f); pthread_condattr_destroy(&ca); return NULL; }
    if (pthread_cond_init(&f->cv, &ca) != 0) {
        pthread_mutex_destroy(&f->mu);
        pthread_condattr_destroy(&ca);
        free(f);
        return NULL;
    }
    pthread_condattr_destroy(&ca);
    atomic_init(&f->refs, 1);
    f->state = FUTURE_PENDING;
    f->run = run;
    f->arg = arg;
    f->free_arg = free_arg;
    f->free_result = free_result;
    atomic_fetch_add(&live_futures, 1);
    return f;
}

void future_retain(future *f) {
    if (f) atomic_fetch_add_explicit(&f->refs, 1, memory_order_relaxed);
}

void future_release(future *f) {
    if (!f) return;
    if (atomic_fetch_sub_explicit(&f->refs, 1, memory_order_acq_rel) != 1) return;
    /* Last reference: no other thread can see f any more. */
    if (f->arg && f->free_arg) f->free_arg(f->arg);
    if (f->result && f->free_result) f->free_result(f->result);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f);
    atomic_fetch_sub(&live_futures, 1);
}

long future_live_count(void) { return atomic_load(&live_futures); }

future_state future_get_state(future *f) {
    pthread_mutex_lock(&f->mu);
    future_state s = f->state;
    pthread_mutex_unlock(&f->mu);
    return s;
}

static int is_final(future_state s) {
    return s == FUTURE_DONE || s == FUTURE_FAILED || s == FUTURE_CANCELLED;
}

int future_is_final(future *f) { return is_final(future_get_state(f)); }

int future_wait(future *f, double timeout_s, ane_error *e) {
    pthread_mutex_lock(&f->mu);
    if (timeout_s < 0) {
        while (!is_final(f->state)) pthread_cond_wait(&f->cv, &f->mu);
    } else if (!is_final(f->state) && timeout_s > 0) {
        struct timespec dl;
#if defined(__APPLE__)
        clock_gettime(CLOCK_REALTIME, &dl); /* Darwin condvars only time out on the wall clock */
#else
        clock_gettime(CLOCK_MONOTONIC, &dl);
#endif
        if (timeout_s > 1e9) timeout_s = 1e9;
        time_t whole = (time_t)timeout_s;
        long ns = (long)((timeout_s - (double)whole) * 1e9);
        dl.tv_sec += whole;
        dl.tv_nsec += ns;
        if (dl.tv_nsec >= 1000000000L) { dl.tv_sec++; dl.tv_nsec -= 1000000000L; }
        while (!is_final(f->state)) {
            if (pthread_cond_timedwait(&f->cv, &f->mu, &dl) == ETIMEDOUT) break;
        }
    }
    int rc;
    switch (f->state) {
    case FUTURE_DONE: rc = 0; err_clear(e); break;
    case FUTURE_FAILED:
        rc = f->err.code ? f->err.code : ERR_BACKEND;
        if (e) *e = f->err;
        break;
    case FUTURE_CANCELLED: rc = err_set(e, ERR_CANCELLED, "cancelled"); break;
    default:
        rc = err_set(e, ERR_TIMEOUT, "timed out after %g s (job %s)", timeout_s,
                     future_state_name(f->state));
        break;
    }
    pthread_mutex_unlock(&f->mu);
    return rc;
}

void *future_take(future *f) {
    pthread_mutex_lock(&f->mu);
    void *r = NULL;
    if (f->state == FUTURE_DONE) {
        r = f->result;
        f->result = NULL;
    }
    pthread_mutex_unlock(&f->mu);
    return r;
}

/* ---- queue ---- */

static void queue_unref(queue *q) {
    if (atomic_fetch_sub_explicit(&q->refs, 1, memory_order_acq_rel) != 1) return;
    pthread_cond_destroy(&q->not_empty);
    pthread_cond_destroy(&q->not_full);
    pthread_cond_destroy(&q->idle);
    pthread_mutex_destroy(&q->mu);
    free(q->threads);
    free(q);
}

/* Unlink f from q's list. Caller holds q->mu. */
static void unlink_locked(queue *q, future *f) {
    if (f->prev) f->prev->next = f->next; else q->head = f->next;
    if (f->next) f->next->prev = f->prev; else q->tail = f->prev;
    f->prev = f->next = NULL;
    q->len--;
    pthread_cond_signal(&q->not_full);
}

/* Mark a queued (pending) future cancelled. Caller holds q->mu and f->mu and has unlinked f.
 * f->arg stays in place: the caller frees it after dropping the locks (nobody else touches the
 * arg of a cancelled future). The reference f held on q is dropped by the caller too. */
static void cancel_pending_locked(queue *q, future *f) {
    f->q = NULL;
    f->state = FUTURE_CANCELLED;
    q->cancelled++;
    pthread_cond_broadcast(&f->cv);
}

/* After cancel_pending_locked, outside every lock: free the arg. */
static void drop_cancelled_arg(future *f) {
    pthread_mutex_lock(&f->mu);
    void *arg = f->arg;
    f->arg = NULL;
    pthread_mutex_unlock(&f->mu);
    if (arg && f->free_arg) f->free_arg(arg);
}

static void set_priority(int nice, int idle) {
#if defined(__linux__)
    if (idle) {
        /* SCHED_IDLE: a waking foreground thread always preempts the worker at once, so a
         * foreground eval split over every core never waits for a compile's time slice. */
        struct sched_param sp = { 0 };
        (void)pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
    }
    /* Linux applies nice per thread (tid), so only the workers are lowered. */
    if (nice > 0) (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), nice > 19 ? 19 : nice);
#elif defined(__APPLE__)
    if (idle || nice > 0)
        (void)pthread_set_qos_class_self_np(idle || nice >= 10 ? QOS_CLASS_BACKGROUND : QOS_CLASS_UTILITY, 0);
#else
    (void)nice;
    (void)idle;
#endif
}

static void *worker_main(void *p) {
    queue *q = p;
    set_priority(q->nice, q->idle_sched);
    for (;;) {
        pthread_mutex_lock(&q->mu);
        while ((!q->head || q->paused) && !q->closed) pthread_cond_wait(&q->not_empty, &q->mu);
        future *f = q->head;
        if (!f) { /* closed and drained */
            pthread_mutex_unlock(&q->mu);
            break;
        }
        unlink_locked(q, f);
        q->running++;
        pthread_mutex_lock(&f->mu);
        f->state = FUTURE_RUNNING;
        f->q = NULL;
        void *arg = f->arg;
        f->arg = NULL;
        pthread_mutex_unlock(&f->mu);
        pthread_mutex_unlock(&q->mu);
        queue_unref(q); /* the queued future's reference; the owner still holds one */

        /* The queue's reference on f passes to this worker. Run without locks. */
        void *result = NULL;
        ane_error err;
        err_clear(&err);
        int rc = f->run(arg, &result, &err);
        if (f->free_arg) f->free_arg(arg);
        if (rc == 0 && !result) rc = err_set(&err, ERR_BACKEND, "job produced no result");
        if (rc != 0 && err.code == 0) err.code = rc;
        if (rc != 0 && !err.msg[0]) err_set(&err, rc, "job failed (%s)", err_codename(rc));

        void *discard = NULL;
        pthread_mutex_lock(&q->mu);
        pthread_mutex_lock(&f->mu);
        if (f->state == FUTURE_CANCELLED) {
            discard = result; /* cancelled while running */
            q->cancelled++;
        } else if (rc == 0) {
            f->result = result;
            f->state = FUTURE_DONE;
            q->done++;
        } else {
            f->err = err;
            f->state = FUTURE_FAILED;
            q->failed++;
            discard = result;
        }
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
        q->running--;
        if (q->running == 0 && !q->head) pthread_cond_broadcast(&q->idle);
        pthread_mutex_unlock(&q->mu);
        if (discard && f->free_result) f->free_result(discard);
        future_release(f);
    }
    return NULL;
}

int queue_new(const queue_opts *o, queue **out, ane_error *e) {
    *out = NULL;
    queue_opts d;
    queue_opts_default(&d);
    if (!o) o = &d;
    if (o->workers < 0 || o->workers > 256)
        return err_set(e, ERR_INVAL, "queue: workers must be 1..256, got %d", o->workers);
    if (o->capacity < 0) return err_set(e, ERR_INVAL, "queue: capacity must be >= 1, got %d", o->capacity);
    queue *q = calloc(1, sizeof *q);
    if (!q) return err_set(e, ERR_NOMEM, "queue: out of memory");
    q->nworkers = o->workers ? o->workers : 1;
    q->cap = o->capacity ? o->capacity : 64;
    q->nice = o->nice;
    q->idle_sched = o->idle;
    q->threads = calloc((size_t)q->nworkers, sizeof *q->threads);
    if (!q->threads) { free(q); return err_set(e, ERR_NOMEM, "queue: out of memory"); }
    atomic_init(&q->refs, 1);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->not_empty, NULL);
    pthread_cond_init(&q->not_full, NULL);
    pthread_cond_init(&q->idle, NULL);
    for (int i = 0; i < q->nworkers; i++) {
        int rc = pthread_create(&q->threads[i], NULL, worker_main, q);
        if (rc != 0) {
            q->nworkers = i; /* join the ones that started */
            queue_free(q);
            return err_set(e, ERR_NOMEM, "queue: cannot start worker %d: %s", i + 1, strerror(rc));
        }
    }
    *out = q;
    return 0;
}

int queue_closed(const queue *q) {
    queue *m = (queue *)q;
    pthread_mutex_lock(&m->mu);
    int c = m->closed;
    pthread_mutex_unlock(&m->mu);
    return c;
}

void queue_close(queue *q) {
    if (!q) return;
    pthread_mutex_lock(&q->mu);
    if (q->joined) { pthread_mutex_unlock(&q->mu); return; }
    q->closed = 1;
    /* Cancel everything still queued; free the args outside the lock. */
    future *cancelled = NULL; /* a private list through ->next once unlinked */
    while (q->head) {
        future *f = q->head;
        unlink_locked(q, f);
        pthread_mutex_lock(&f->mu);
        cancel_pending_locked(q, f);
        pthread_mutex_unlock(&f->mu);
        f->next = cancelled;
        cancelled = f;
    }
    pthread_cond_broadcast(&q->not_empty);
    pthread_cond_broadcast(&q->not_full);
    pthread_mutex_unlock(&q->mu);
    while (cancelled) {
        future *f = cancelled;
        cancelled = f->next;
        f->next = NULL;
        drop_cancelled_arg(f);
        queue_unref(q);       /* the queued future's reference on q */
        future_release(f);    /* the queue's reference on f */
    }
    /* Only one closer joins; a second concurrent close waits on the first through joined. */
    pthread_mutex_lock(&q->mu);
    int joiner = !q->joined;
    q->joined = 1;
    pthread_mutex_unlock(&q->mu);
    if (joiner)
        for (int i = 0; i < q->nworkers; i++) pthread_join(q->threads[i], NULL);
}

void queue_free(queue *q) {
    if (!q) return;
    queue_close(q);
    queue_unref(q);
}

void queue_pause(queue *q, int paused) {
    pthread_mutex_lock(&q->mu);
    q->paused = paused != 0;
    if (!q->paused) pthread_cond_broadcast(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
}

void queue_get_stats(queue *q, queue_stats *s) {
    pthread_mutex_lock(&q->mu);
    s->workers = q->nworkers;
    s->capacity = q->cap;
    s->queued = q->len;
    s->running = q->running;
    s->paused = q->paused;
    s->submitted = q->submitted;
    s->done = q->done;
    s->failed = q->failed;
    s->cancelled = q->cancelled;
    pthread_mutex_unlock(&q->mu);
}

int queue_submit(queue *q, job_run_fn run, void *arg, job_free_fn free_arg,
                 job_free_fn free_result, int block, future **out, ane_error *e) {
    *out = NULL;
    if (!q || !run) {
        if (arg && free_arg) free_arg(arg);
        return err_set(e, ERR_INVAL, "queue_submit: no queue or no job");
    }
    future *f = future_new(run, arg, free_arg, free_result);
    if (!f) {
        if (arg && free_arg) free_arg(arg);
        return err_set(e, ERR_NOMEM, "queue: out of memory");
    }
    pthread_mutex_lock(&q->mu);
    while (!q->closed && q->len >= q->cap) {
        if (block && q->paused) {
            /* Nobody would free a slot: waiting could hang the caller that holds the pause. */
            pthread_mutex_unlock(&q->mu);
            future_release(f);
            return err_set(e, ERR_STATE, "queue full (%d jobs waiting) and paused: resume it first", q->cap);
        }
        if (!block) {
            pthread_mutex_unlock(&q->mu);
            future_release(f); /* frees arg */
            return err_set(e, ERR_BUDGET, "queue full (%d jobs waiting)", q->cap);
        }
        pthread_cond_wait(&q->not_full, &q->mu);
    }
    if (q->closed) {
        pthread_mutex_unlock(&q->mu);
        future_release(f);
        return err_set(e, ERR_STATE, "queue is closed");
    }
    atomic_fetch_add(&q->refs, 1); /* held by the queued future */
    f->q = q;
    future_retain(f);              /* held by the queue */
    f->prev = q->tail;
    if (q->tail) q->tail->next = f; else q->head = f;
    q->tail = f;
    q->len++;
    q->submitted++;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
    *out = f;
    return 0;
}

int future_cancel(future *f) {
    pthread_mutex_lock(&f->mu);
    future_state s = f->state;
    queue *q = f->q;
    if (s == FUTURE_RUNNING) {
        /* The worker sees the state when it finishes and frees the result. */
        f->state = FUTURE_CANCELLED;
        pthread_cond_broadcast(&f->cv);
        pthread_mutex_unlock(&f->mu);
        return 1;
    }
    if (s != FUTURE_PENDING) {
        pthread_mutex_unlock(&f->mu);
        return 0;
    }
    /* Pending: keep q alive while we reacquire locks in queue -> future order. */
    atomic_fetch_add(&q->refs, 1);
    pthread_mutex_unlock(&f->mu);

    int did = 0;
    pthread_mutex_lock(&q->mu);
    pthread_mutex_lock(&f->mu);
    if (f->state == FUTURE_PENDING && f->q == q) {
        unlink_locked(q, f);
        cancel_pending_locked(q, f);
        did = 2; /* also drop the queue's reference on f and f's on q */
    } else if (f->state == FUTURE_RUNNING) {
        f->state = FUTURE_CANCELLED; /* picked up meanwhile */
        pthread_cond_broadcast(&f->cv);
        did = 1;
    }
    pthread_mutex_unlock(&f->mu);
    pthread_mutex_unlock(&q->mu);
    if (did == 2) {
        drop_cancelled_arg(f);
        queue_unref(q);      /* f's reference on q */
        future_release(f);   /* the queue's reference on f; the caller still holds one */
    }
    queue_unref(q);          /* ours */
    return did != 0;
}
