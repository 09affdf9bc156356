/* cpu_util.c - the GEMM entry point and the thread pool.
 *
 * One pool does all the parallel work of an eval. GEMMs go to CBLAS (OpenBLAS on Linux,
 * Accelerate on macOS); with OpenBLAS, large ones are split over the pool and OpenBLAS runs on
 * one thread (two thread pools on two cores fight: see pool_init). Accelerate keeps its own. */
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#ifdef ANE_ACCELERATE
#include <Accelerate/Accelerate.h>
#else
#include <cblas.h>
#endif

#if defined(__linux__)
#include <sys/resource.h>
#elif defined(__APPLE__)
#include <pthread/qos.h>
#endif

#include "../../core/bigmem.h"
#include "../../core/settings.h"
#include "cpu.h"

/* rounded to whole 64-byte lines, as this function always returned */
void *cpu_alloc_big(size_t bytes) { return bigmem_alloc(bytes ? (bytes + 63) & ~(size_t)63 : 64); }

int cpu_thread_lowered(void) {
#if defined(__linux__)
    /* Linux keeps nice and policy per thread; who = 0 is the calling thread (queue.c lowers its
     * workers this way). */
    int pol = sched_getscheduler(0);
    return pol == SCHED_IDLE || pol == SCHED_BATCH || getpriority(PRIO_PROCESS, 0) > 0;
#elif defined(__APPLE__)
    qos_class_t q = qos_class_self();
    return q != QOS_CLASS_UNSPECIFIED && q <= QOS_CLASS_UTILITY;
#else
    return 0;
#endif
}

static void sgemm1(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
                   int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j];
        return;
    }
    /* A product with one row or one column is a matrix-vector product: GEMV streams the matrix
     * once, where GEMM would pack it first (one token of decode is all GEMVs). */
    if ((m == 1 || n == 1) && beta == 0) /* BLAS may scale stale NaNs in c by zero */
        for (int64_t i = 0; i < (m == 1 ? n : m); i++) c[m == 1 ? i : i * ldc] = 0;
    if (m == 1) { /* c = op(B)ᵀ a, over B as stored */
        cblas_sgemv(CblasRowMajor, tb ? CblasNoTrans : CblasTrans, tb ? (int)n : (int)k,
                    tb ? (int)k : (int)n, alpha, b, (int)ldb, a, ta ? (int)lda : 1, beta, c, 1);
        return;
    }
    if (n == 1) { /* c[:, 0] = op(A) b */
        cblas_sgemv(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, ta ? (int)k : (int)m,
                    ta ? (int)m : (int)k, alpha, a, (int)lda, b, tb ? 1 : (int)ldb, beta, c, (int)ldc);
        return;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (int)m, (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

#if !defined(ANE_ACCELERATE)
typedef struct gemm_job {
    int ta, tb, by_rows;
    int64_t m, n, k, step;
    float alpha, beta;
    const float *a, *b;
    int64_t lda, ldb, ldc;
    float *c;
} gemm_job;

/* Parts [lo, hi) of a GEMM split by rows of C (each part packs its share of A and all of B) or,
 * when C has few rows, by columns. */
static void gemm_part(void *ctx, int64_t lo, int64_t hi) {
    const gemm_job *g = ctx;
    int64_t total = g->by_rows ? g->m : g->n;
    int64_t s = lo * g->step, e = hi * g->step < total ? hi * g->step : total;
    if (s >= e) return;
    if (g->by_rows)
        sgemm1(g->ta, g->tb, e - s, g->n, g->k, g->alpha, g->ta ? g->a + s : g->a + s * g->lda,
               g->lda, g->b, g->ldb, g->beta, g->c + s * g->ldc, g->ldc);
    else
        sgemm1(g->ta, g->tb, g->m, e - s, g->k, g->alpha, g->a, g->lda,
               g->tb ? g->b + s * g->ldb : g->b + s, g->ldb, g->beta, g->c + s, g->ldc);
}
#endif

static inline int pool_size(void);
static int pool_busy(void);

void cpu_sgemm(const cpu_plan *pl, int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha,
               const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
               int64_t ldc) {
#if !defined(ANE_ACCELERATE)
    /* One part per thread of the pool (BLAS itself runs on one thread: see pool_init); small
     * GEMMs are not worth a dispatch. Inside a job (a head of a batch), or while another
     * thread's job runs, the GEMM runs whole. (No thread-local flag for "inside a job": a
     * _Thread_local in the dlopened stand-in's copy of this code crashed LSan at exit.) */
    int parts = pool_busy() ? 1 : pool_size();
    if (pl && pl->opts.threads > 0 && pl->opts.threads < parts) parts = pl->opts.threads;
    if (parts > 1 && m * n * k >= ((int64_t)1 << 18) && (m >= 64 * parts || n >= 64 * parts)) {
        /* each part packs its share of one operand and all of the other: share the larger */
        int by_rows = n < 64 * parts || (m >= 64 * parts && m * k / parts + k * n <= m * k + k * n / parts);
        gemm_job g = {ta, tb, by_rows, m, n, k, 0, alpha, beta, a, b, lda, ldb, ldc, c};
        int64_t total = g.by_rows ? m : n;
        g.step = ((total + parts - 1) / parts + 15) & ~(int64_t)15; /* whole 16-wide tiles */
        cpu_parallel(pl, (total + g.step - 1) / g.step, m * n * k / parts, gemm_part, &g);
        return;
    }
#else
    (void)pl;
#endif
    sgemm1(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* ---- thread pool ----
 * One job at a time, split into chunks the caller and the workers take from a shared counter.
 * Nobody sleeps inside a burst of jobs: a worker spins for a while after its job, and the caller
 * waits for the workers' last chunks by spinning. Blocking looked cheaper but measured badly: a
 * thread woken from a futex is placed next to its waker, on the waker's CPU, while the other core
 * idles (wake-affine; the load balancer leaves cache-hot threads alone for many milliseconds), so
 * the caller ended up running every chunk itself at about a third of the speed (BENCHMARKS.md).
 * OpenBLAS's own threads do the same. Spinning yields the CPU after a moment, so a thread
 * sharing the core still runs. The job/sleepers handshake for the blocking case is Dekker-style
 * on seq_cst atomics: a worker registers as a sleeper and re-reads job under the mutex; the
 * caller stores a new job and then reads sleepers, so one of the two always sees the other. */

#define PAUSE_NS 50000        /* pure pause spinning, then sched_yield between checks */
#define WORKER_SPIN_NS 20000000 /* a worker blocks after 20 ms without a job */

typedef struct pool {
    pthread_mutex_t mu;
    pthread_cond_t go;
    int nthreads;          /* workers (excluding the caller) */
    /* the current job: its number << 8 | how many workers take part (the first ones; a kernel's
     * thread limit). One word, so a late worker never pairs one job's number with another's
     * count and runs a job twice. */
    atomic_ullong job;
    atomic_int sleepers;   /* workers blocked on go */
    atomic_int busy;       /* workers still inside the current job */
    atomic_int inuse;      /* a caller owns the pool */
    void (*f)(void *, int64_t, int64_t);
    void *ctx;
    int64_t n, chunk;
    atomic_llong next;
} pool;

static pool P_ = {.mu = PTHREAD_MUTEX_INITIALIZER, .go = PTHREAD_COND_INITIALIZER,
                  .inuse = 0};
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Wait while *v == old: pause, then yield; give up after WORKER_SPIN_NS. 1 if it changed. */
static int spin_while(atomic_ullong *v, unsigned long long old) {
    int64_t t0 = 0;
    for (unsigned i = 1;; i += i < 256) {
        if (atomic_load(v) != old) return 1;
        if (i < 256) {
            cpu_relax();
            continue;
        }
        int64_t t = now_ns();
        if (!t0) t0 = t;
        if (t - t0 > PAUSE_NS) sched_yield();
        else cpu_relax();
        if (t - t0 > WORKER_SPIN_NS) return 0;
    }
}

static void run_chunks(pool *p) {
    for (;;) {
        int64_t lo = atomic_fetch_add(&p->next, p->chunk);
        if (lo >= p->n) break;
        int64_t hi = lo + p->chunk < p->n ? lo + p->chunk : p->n;
        p->f(p->ctx, lo, hi);
    }
}

static void *worker(void *arg) {
    pool *p = &P_;
    int idx = (int)(intptr_t)arg;
    unsigned long long seen = 0;
    for (;;) {
        if (!spin_while(&p->job, seen)) {
            pthread_mutex_lock(&p->mu);
            atomic_fetch_add(&p->sleepers, 1);
            while (atomic_load(&p->job) == seen) pthread_cond_wait(&p->go, &p->mu);
            atomic_fetch_sub(&p->sleepers, 1);
            pthread_mutex_unlock(&p->mu);
        }
        seen = atomic_load(&p->job);
        if (idx < (int)(seen & 0xff)) {
            run_chunks(p);
            atomic_fetch_sub(&p->busy, 1);
        }
    }
    return NULL;
}

/* A forked child has none of the workers: it runs every job on the calling thread. Registered at
 * load (not in pool_init, which may run in another thread while this one forks). */
static void pool_after_fork_child(void) {
    pthread_mutex_init(&P_.mu, NULL);
    pthread_cond_init(&P_.go, NULL);
    P_.nthreads = 0;
    atomic_store(&P_.sleepers, 0);
    atomic_store(&P_.busy, 0);
    atomic_store(&P_.inuse, 0);
}

__attribute__((constructor)) static void pool_register_fork(void) {
    pthread_atfork(NULL, NULL, pool_after_fork_child);
}

static void pool_init(void) {
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    if (settings_get()->cpu_threads > 0) nc = settings_get()->cpu_threads;
    if (nc < 1) nc = 1;
    if (nc > 16) nc = 16;
    int started = 0;
    /* Workers start with asynchronous signals blocked (they inherit the mask), so a ^C or a
     * host's timer signal lands on a thread that can act on it. */
    sigset_t all, old;
    sigfillset(&all);
    sigdelset(&all, SIGSEGV), sigdelset(&all, SIGBUS), sigdelset(&all, SIGFPE), sigdelset(&all, SIGILL);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    for (int i = 0; i < nc - 1; i++) {
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &at, worker, (void *)(intptr_t)started) == 0) started++;
        pthread_attr_destroy(&at);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    P_.nthreads = started;
#if !defined(ANE_ACCELERATE) && defined(OPENBLAS_VERSION)
    /* OpenBLAS runs on one thread for the whole process and the pool splits large GEMMs
     * (cpu_sgemm). Left with its own threads, OpenBLAS's workers spin for ~2^28 cycles after
     * every call, on the very cores the pool's next job needs: a spinning BLAS worker halved the
     * pool's speed (BENCHMARKS.md). Set once and never toggled: every openblas_set_num_threads
     * after a fork() restarts those workers, spinning. Accelerate manages its own threads. */
    openblas_set_num_threads(1);
#endif
}

static int pool_busy(void) { return atomic_load(&P_.inuse); }

static inline int pool_size(void) {
    pthread_once(&pool_once, pool_init);
    return P_.nthreads + 1;
}

void cpu_parallel(const cpu_plan *pl, int64_t n, int64_t work_per_item,
                  void (*f)(void *ctx, int64_t lo, int64_t hi), void *ctx) {
    /* Below ~256K flops a dispatch costs more than it saves. */
    int want = pl ? pl->opts.threads : 0;
    if (n <= 1 || n * (work_per_item > 0 ? work_per_item : 1) < (1 << 18) || want == 1) {
        f(ctx, 0, n);
        return;
    }
    pthread_once(&pool_once, pool_init);
    pool *p = &P_;
    int nt = p->nthreads;
    if (want > 1 && want - 1 < nt) nt = want - 1;
    /* A caller at lowered priority (an ane.queue worker) keeps its work: the pool's threads run
     * at normal priority and would take the cores the foreground uses. */
    if (nt <= 0 || cpu_thread_lowered() || atomic_exchange(&p->inuse, 1)) { /* or pool busy */
        f(ctx, 0, n);
        return;
    }
    int64_t parts = (int64_t)(nt + 1) * 4;
    p->f = f;
    p->ctx = ctx;
    p->n = n;
    p->chunk = (n + parts - 1) / parts;
    atomic_store(&p->next, 0);
    atomic_store(&p->busy, nt);
    atomic_store(&p->job, ((atomic_load(&p->job) >> 8) + 1) << 8 | (unsigned)nt);
    if (atomic_load(&p->sleepers) > 0) {
        pthread_mutex_lock(&p->mu);
        pthread_cond_broadcast(&p->go);
        pthread_mutex_unlock(&p->mu);
    }
    run_chunks(p);
    /* the workers are on their last chunks (or still waking): wait without blocking */
    for (unsigned i = 1; atomic_load(&p->busy) > 0; i += i < 4096) {
        if (i < 4096) cpu_relax();
        else sched_yield();
    }
    atomic_store(&p->inuse, 0);
}

