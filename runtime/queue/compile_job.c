/* compile_job.c - queue_compile: a compile (+ load) of an immutable program on a worker.
 *
 * The job owns only C objects: one reference on the checked program, a private copy of the
 * compile options (strings duplicated) and the backend pointer (backends are static tables). */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>

#include "queue.h"

/* ---- compile jobs ---- */

typedef struct compile_job {
    const backend *be;
    mil_program *prog;     /* one reference */
    compile_opts o;        /* strings point into the copies below */
    char *function, *chip;
    int load;
} compile_job;

static void compile_job_free(void *p) {
    compile_job *j = p;
    if (!j) return;
    mil_program_release(j->prog);
    free(j->function);
    free(j->chip);
    free(j);
}

static void kernel_result_free(void *p) {
    kernel *k = p;
    if (k && k->be && k->be->free) k->be->free(k);
}

static int compile_job_run(void *p, void **result, ane_error *e) {
    compile_job *j = p;
    kernel *k = NULL;
    int rc = j->be->compile(j->prog, &j->o, &k, e);
    if (rc != 0) {
        if (k) j->be->free(k);
        return rc ? rc : ERR_BACKEND;
    }
    if (!k) return err_set(e, ERR_BACKEND, "%s: compile returned no kernel", j->be->name);
    if (j->load && j->be->load && !k->loaded) {
        rc = j->be->load(k, e);
        if (rc != 0) {
            j->be->free(k);
            return rc;
        }
    }
    *result = k;
    return 0;
}

static char *dupstr(const char *s, int *oom) {
    if (!s) return NULL;
    char *d = strdup(s);
    if (!d) *oom = 1;
    return d;
}

int queue_compile(queue *q, const backend *be, mil_program *p, const compile_opts *o, int load,
                  int block, future **out, ane_error *e) {
    *out = NULL;
    if (!be || !be->compile) return err_set(e, ERR_INVAL, "queue_compile: no backend");
    if (!p) return err_set(e, ERR_INVAL, "queue_compile: no program");
    if (!p->checked)
        return err_set(e, ERR_STATE, "queue_compile: the program must be checked before it is "
                                     "handed to a worker");
    /* Availability is settled here, on the submitting thread, never first on a worker: for the
     * ane backend that loads the framework, and CoreFoundation has a history of halting when it
     * is first initialised off the main thread. */
    char why[256] = "";
    if (be->available && !be->available(why, sizeof why))
        return err_set(e, ERR_UNSUPPORTED, "compile: backend '%s' is not available here: %s", be->name, why);
    compile_job *j = calloc(1, sizeof *j);
    if (!j) return err_set(e, ERR_NOMEM, "queue: out of memory");
    j->be = be;
    mil_program_retain(p);
    j->prog = p;
    j->load = load;
    if (o) j->o = *o; else compile_opts_default(&j->o);
    int oom = 0;
    j->function = dupstr(j->o.function, &oom);
    j->chip = dupstr(j->o.chip, &oom);
    j->o.function = j->function;
    j->o.chip = j->chip;
    if (oom) {
        compile_job_free(j);
        return err_set(e, ERR_NOMEM, "queue: out of memory");
    }
    return queue_submit(q, compile_job_run, j, compile_job_free, kernel_result_free, block, out, e);
}
