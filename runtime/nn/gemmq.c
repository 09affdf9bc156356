/* gemmq.c - a FIFO of GEMMs run by one worker thread (nn.h). Jobs hold tensor copies with a
 * storage reference each; the worker runs them in order and publishes the last finished ticket. */
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>

#include "nn_util.h"

typedef struct job {
    struct job *next;
    tensor C, A, B;
    int ta, tb;
    int64_t batch, M, N, K;
    double alpha, beta;
    uint64_t ticket;
} job;

struct nn_gemmq {
    pthread_mutex_t mu;
    pthread_cond_t work, done;
    pthread_t thread;
    job *head, *tail;
    uint64_t issued, finished;
    int stop;
};

static void job_free(job *j) {
    tensor_release(&j->C);
    tensor_release(&j->A);
    tensor_release(&j->B);
    free(j);
}

static void *worker(void *arg) {
    nn_gemmq *q = arg;
    sigset_t all; /* signals go to the threads that handle them (the host's SIGINT hook) */
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->head && !q->stop) pthread_cond_wait(&q->work, &q->mu);
        if (!q->head) break; /* stop, and nothing left */
        job *j = q->head;
        pthread_mutex_unlock(&q->mu);
        ane_error e;
        int la = storage_lock(j->A.st, 1, &e) == 0;
        int lb = storage_lock(j->B.st, 1, &e) == 0;
        int lc = storage_lock(j->C.st, 0, &e) == 0;
        if (la && lb && lc) nn_gemm_run(&j->C, &j->A, &j->B, j->ta, j->tb, j->batch, j->M, j->N, j->K, j->alpha, j->beta);
        if (lc) storage_unlock(j->C.st, 0);
        if (lb) storage_unlock(j->B.st, 1);
        if (la) storage_unlock(j->A.st, 1);
        pthread_mutex_lock(&q->mu);
        q->head = j->next;
        if (!q->head) q->tail = NULL;
        q->finished = j->ticket;
        pthread_cond_broadcast(&q->done);
        pthread_mutex_unlock(&q->mu);
        job_free(j);
        pthread_mutex_lock(&q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

nn_gemmq *nn_gemmq_new(ane_error *e) {
    nn_gemmq *q = calloc(1, sizeof *q);
    if (!q) {
        err_set(e, ERR_NOMEM, "gemm_queue: out of memory");
        return NULL;
    }
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->work, NULL);
    pthread_cond_init(&q->done, NULL);
    if (pthread_create(&q->thread, NULL, worker, q) != 0) {
        pthread_cond_destroy(&q->done);
        pthread_cond_destroy(&q->work);
        pthread_mutex_destroy(&q->mu);
        free(q);
        err_set(e, ERR_NOMEM, "gemm_queue: cannot start its thread");
        return NULL;
    }
    return q;
}

static void copy_ref(tensor *dst, const tensor *src) {
    *dst = *src;
    storage_retain(dst->st);
}

int nn_gemmq_push(nn_gemmq *q, const tensor *C, const tensor *A, const tensor *B, int ta, int tb,
                  int64_t batch, double alpha, double beta, uint64_t *ticket, ane_error *e) {
    int64_t M, N, K;
    if (batch < 1) batch = 1;
    if (nn_gemm_dims(C, A, B, batch, &M, &N, &K, e)) return e->code;
    job *j = calloc(1, sizeof *j);
    if (!j) return err_set(e, ERR_NOMEM, "gemm_queue: out of memory");
    copy_ref(&j->C, C);
    copy_ref(&j->A, A);
    copy_ref(&j->B, B);
    j->ta = ta, j->tb = tb, j->batch = batch, j->M = M, j->N = N, j->K = K;
    j->alpha = alpha, j->beta = beta;
    pthread_mutex_lock(&q->mu);
    uint64_t t = j->ticket = ++q->issued; /* j belongs to the worker once unlocked */
    if (q->tail) q->tail->next = j;
    else q->head = j;
    q->tail = j;
    pthread_cond_signal(&q->work);
    pthread_mutex_unlock(&q->mu);
    if (ticket) *ticket = t;
    return 0;
}

void nn_gemmq_wait(nn_gemmq *q, uint64_t ticket) {
    pthread_mutex_lock(&q->mu);
    if (ticket == 0 || ticket > q->issued) ticket = q->issued;
    while (q->finished < ticket) pthread_cond_wait(&q->done, &q->mu);
    pthread_mutex_unlock(&q->mu);
}

void nn_gemmq_free(nn_gemmq *q) {
    if (!q) return;
    nn_gemmq_wait(q, 0);
    pthread_mutex_lock(&q->mu);
    q->stop = 1;
    pthread_cond_signal(&q->work);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->thread, NULL);
    pthread_cond_destroy(&q->done);
    pthread_cond_destroy(&q->work);
    pthread_mutex_destroy(&q->mu);
    free(q);
}
