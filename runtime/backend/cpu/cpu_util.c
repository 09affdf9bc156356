/* cpu_util.c - BLAS entry point and a small thread pool for the loops BLAS does not cover.
 *
 * GEMMs go to CBLAS (OpenBLAS on Linux, Accelerate on macOS), which has its own threads. The
 * pool here serves large elementwise/softmax/norm loops; it runs only between GEMMs (eval is
 * sequential), so the two never compete for the cores at the same moment. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#ifdef ANE_ACCELERATE
#include <Accelerate/Accelerate.h>
#else
#include <cblas.h>
#endif

#if defined(__linux__)
#include <sched.h>
#include <sys/resource.h>
#elif defined(__APPLE__)
#include <pthread/qos.h>
#endif

#include "cpu.h"

/* BLAS threads for one eval of a kernel compiled with `threads = n` (n > 0); returns the
 * previous count for cpu_blas_threads_restore. OpenBLAS's setting is process-wide, so it is
 * set around each eval rather than once. 0 means "nothing changed". */
int cpu_blas_threads(int n);
int cpu_blas_threads(int n) {
#if !defined(ANE_ACCELERATE) && defined(OPENBLAS_VERSION)
    if (n > 0) {
        int old = openblas_get_num_threads();
        if (old != n) openblas_set_num_threads(n);
        return old;
    }
#endif
    (void)n;
    return 0;
}

void cpu_blas_threads_restore(int old);
void cpu_blas_threads_restore(int old) {
#if !defined(ANE_ACCELERATE) && defined(OPENBLAS_VERSION)
    if (old > 0 && openblas_get_num_threads() != old) openblas_set_num_threads(old);
#endif
    (void)old;
}

void *cpu_alloc_big(size_t bytes) {
    void *p = NULL;
    if (bytes == 0) bytes = 64;
    bytes = (bytes + 63) & ~(size_t)63;
    return posix_memalign(&p, 64, bytes) == 0 ? p : NULL;
}

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

void cpu_sgemm(int ta, int tb, int64_t m, int64_t n, int64_t k, float alpha, const float *a,
               int64_t lda, const float *b, int64_t ldb, float beta, float *c, int64_t ldc) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) c[i * ldc + j] = beta == 0 ? 0 : beta * c[i * ldc + j];
        return;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                (int)m, (int)n, (int)k, alpha, a, (int)lda, b, (int)ldb, beta, c, (int)ldc);
}

/* ---- thread pool ---- */

typedef struct pool {
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    int nthreads;          /* workers (excluding the caller) */
    unsigned long gen;
    void (*f)(void *, int64_t, int64_t);
    void *ctx;
    int64_t n, chunk;
    atomic_llong next;
    int busy;              /* workers still inside the current job */
} pool;

static pool P_ = {.mu = PTHREAD_MUTEX_INITIALIZER, .go = PTHREAD_COND_INITIALIZER,
                  .done = PTHREAD_COND_INITIALIZER};
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void run_chunks(pool *p) {
    for (;;) {
        int64_t lo = atomic_fetch_add(&p->next, p->chunk);
        if (lo >= p->n) break;
        int64_t hi = lo + p->chunk < p->n ? lo + p->chunk : p->n;
        p->f(p->ctx, lo, hi);
    }
}

static void *worker(void *arg) {
    pool *p = arg;
    unsigned long seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->gen == seen) pthread_cond_wait(&p->go, &p->mu);
        seen = p->gen;
        pthread_mutex_unlock(&p->mu);
        run_chunks(p);
        pthread_mutex_lock(&p->mu);
        if (--p->busy == 0) pthread_cond_signal(&p->done);
    }
    return NULL;
}

static void pool_init(void) {
    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    const char *env = getenv("ANE_CPU_THREADS");
    if (env && atoi(env) > 0) nc = atoi(env);
    if (nc < 1) nc = 1;
    if (nc > 16) nc = 16;
    int started = 0;
    for (int i = 0; i < nc - 1; i++) {
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (pthread_create(&t, &at, worker, &P_) == 0) started++;
        pthread_attr_destroy(&at);
    }
    P_.nthreads = started;
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
    if (nt <= 0 || pthread_mutex_trylock(&p->mu) != 0) { /* pool busy (another thread): run here */
        f(ctx, 0, n);
        return;
    }
    if (p->busy > 0) { /* a job from another thread is still running */
        pthread_mutex_unlock(&p->mu);
        f(ctx, 0, n);
        return;
    }
    int64_t parts = (int64_t)(nt + 1) * 4;
    p->f = f;
    p->ctx = ctx;
    p->n = n;
    p->chunk = (n + parts - 1) / parts;
    atomic_store(&p->next, 0);
    p->busy = p->nthreads;
    p->gen++;
    pthread_cond_broadcast(&p->go);
    pthread_mutex_unlock(&p->mu);
    run_chunks(p);
    pthread_mutex_lock(&p->mu);
    while (p->busy > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
