/* queue.h - background workers, a bounded job queue and futures (plain C, no Lua).
 *
 * A queue owns N worker threads and a FIFO of at most `capacity` jobs. Submitting to a full
 * queue blocks the caller until a slot frees (back-pressure) or fails with ERR_BUDGET when the
 * caller asked not to block. Every job has a future: a refcounted handle that outlives the queue
 * and reports pending -> running -> done | failed, or cancelled.
 *
 * Jobs only see the C objects handed to them. Compile jobs (queue_compile) own a retained,
 * checked mil_program (immutable once checked, so workers may read it concurrently), a private
 * copy of the compile options and a backend pointer, and produce a kernel* or an ane_error.
 *
 * Threading contract: queue_* and future_* may be called from any thread; a queue must be freed
 * by one thread once. Results are handed to exactly one taker (future_take). */
#ifndef ANE_QUEUE_QUEUE_H
#define ANE_QUEUE_QUEUE_H

#include "../backend/backend.h"
#include "../core/error.h"

typedef struct queue queue;
typedef struct future future;

typedef enum {
    FUTURE_PENDING = 0, /* queued, not started */
    FUTURE_RUNNING,     /* a worker runs it */
    FUTURE_DONE,        /* finished with a result */
    FUTURE_FAILED,      /* finished with an error */
    FUTURE_CANCELLED,   /* cancelled before it delivered; a running job's result is discarded */
} future_state;

const char *future_state_name(future_state s); /* "pending", "running", ... */

typedef struct queue_opts {
    int workers;  /* threads, >= 1 (0 -> 1) */
    int capacity; /* queued (not yet running) jobs, >= 1 (0 -> 64) */
    int nice;     /* priority offset of the workers: > 0 runs them below the caller (Linux nice,
                     Darwin QoS background); 0 = same priority. Default in queue_opts_default: 10 */
    int idle;     /* 1: workers run only on otherwise idle cores (Linux SCHED_IDLE; Darwin QoS
                     background). Foreground work is then never delayed, but a foreground that
                     keeps every core busy starves the compiles. Default 0 */
} queue_opts;

void queue_opts_default(queue_opts *o);

/* Start the workers. *out is NULL on failure. */
int queue_new(const queue_opts *o, queue **out, ane_error *e);
/* Stop accepting jobs, cancel the pending ones, wait for the running ones and join the workers.
 * Idempotent. Futures stay valid. */
void queue_close(queue *q);
/* queue_close, then free. NULL-safe. */
void queue_free(queue *q);
int queue_closed(const queue *q);

/* Hold (paused = 1) or release (0) the workers: while held they start no new job (running ones
 * finish). Lets a caller fill a batch before any of it starts, and tests set up pending jobs. */
void queue_pause(queue *q, int paused);

typedef struct queue_stats {
    int workers, capacity;
    int queued;   /* jobs waiting (cancelled ones are removed at once) */
    int running;
    int paused;
    long submitted, done, failed, cancelled;
} queue_stats;
void queue_get_stats(queue *q, queue_stats *s);

/* A generic job: run(arg, &result, e) on a worker returns 0 and sets *result, or an ERR_* code
 * with e filled. free_arg(arg) is called exactly once when the job no longer needs arg (after
 * run, or on cancel). free_result(result) drops a result nobody took. Either may be NULL. */
typedef int (*job_run_fn)(void *arg, void **result, ane_error *e);
typedef void (*job_free_fn)(void *p);

/* Submit; on success *out holds a new future reference (release it with future_release).
 * block = 0: a full queue gives ERR_BUDGET "queue full". A closed queue gives ERR_STATE, and so
 * does a full queue that is paused (waiting would never end if the caller holds the pause). On
 * failure free_arg(arg) has been called and *out is NULL. */
int queue_submit(queue *q, job_run_fn run, void *arg, job_free_fn free_arg,
                 job_free_fn free_result, int block, future **out, ane_error *e);

/* Compile p (retained; must be checked) with a private copy of o (NULL = defaults) on be, then
 * load the kernel when load != 0. The future's result is a kernel* (free with be->free). */
int queue_compile(queue *q, const backend *be, mil_program *p, const compile_opts *o, int load,
                  int block, future **out, ane_error *e);

/* ---- futures ---- */
void future_retain(future *f);
void future_release(future *f); /* NULL-safe; the last release frees an untaken result */
future_state future_get_state(future *f);
int future_is_final(future *f); /* done, failed or cancelled */

/* Wait until final or timeout_s elapsed (timeout_s < 0: forever; 0: poll). Returns 0 when done,
 * ERR_TIMEOUT (e says so) when still pending/running, ERR_CANCELLED when cancelled, or the job's
 * own error code with its message copied into e when failed. */
int future_wait(future *f, double timeout_s, ane_error *e);

/* Cancel a pending or running job: returns 1 if this call cancelled it (a pending job never
 * runs; a running one keeps running but its result is freed when it ends), 0 if it was already
 * final (a no-op). */
int future_cancel(future *f);

/* Hand the result of a done future to the caller (once; later calls and non-done futures give
 * NULL). The caller then owns it. */
void *future_take(future *f);

/* Futures alive in this process (all queues); lets tests prove nothing leaks. */
long future_live_count(void);

#endif
