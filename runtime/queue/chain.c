/* chain.c - kernels evaluated back to back over shared buffers. */
#include "chain.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct link {
    kernel *k;
    int nin, nout; /* copied at bind time: freeing must not touch a kernel closed since */
    char label[96];
    tensor **in;   /* nin pointers: into the previous link's outputs or the chain inputs */
    tensor *out;   /* nout tensors owned by this link (allocated by k's backend) */
    tensor **outp; /* nout pointers to out[j]: what eval takes */
    int *bind;     /* nin: index of the previous link's output feeding each input (-1 for link 0) */
    /* Staged: the device refused the previous link's output surfaces as this link's inputs
     * (statusType 0x9 on some chips, field notes 4.6), so each run copies them into plain
     * tensors first (the backend then stages them into its own surfaces). */
    int staged;
    tensor *copy;  /* nin heap tensors when staged */
    tensor **copyp;
} link;

struct chain {
    int n;
    link *links;
    tensor *inputs;      /* the first kernel's inputs, owned */
    tensor **run_in;     /* scratch: input pointers of link 0 for one run */
    uint64_t *times;
    uint64_t total;
};

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static const char *io_str(const kernel_io *io, char *buf, size_t n) {
    char sh[96];
    snprintf(buf, n, "'%s' %s %s", io->name ? io->name : "?",
             shape_str(io->rank, io->shape, sh, sizeof sh), dtype_name(io->dt));
    return buf;
}

/* Storage for one input or output of k, from its backend when it can supply it. */
static int alloc_io(kernel *k, int is_output, int idx, tensor *t, ane_error *e) {
    const kernel_io *io = is_output ? &k->out[idx] : &k->in[idx];
    memset(t, 0, sizeof *t);
    if (k->be && k->be->alloc_io) return k->be->alloc_io(k, is_output, idx, t, e);
    return tensor_init(t, io->dt, io->rank, io->shape, e);
}

static int io_match(const kernel_io *a, const kernel_io *b) {
    return a->dt == b->dt && shape_equal(a->rank, a->shape, b->rank, b->shape);
}

void chain_free(chain *c) {
    if (!c) return;
    if (c->links) {
        for (int i = 0; i < c->n; i++) {
            link *l = &c->links[i];
            if (l->out)
                for (int j = 0; j < l->nout; j++) tensor_release(&l->out[j]);
            free(l->out);
            free(l->outp);
            free(l->in);
            free(l->bind);
            if (l->copy)
                for (int j = 0; j < l->nin; j++) tensor_release(&l->copy[j]);
            free(l->copy);
            free(l->copyp);
        }
    }
    if (c->inputs && c->links)
        for (int j = 0; j < c->links[0].nin; j++) tensor_release(&c->inputs[j]);
    free(c->inputs);
    free(c->run_in);
    free(c->links);
    free(c->times);
    free(c);
}

/* Decide which output of prev feeds each input of next. */
static int bind_link(const link *prev, link *next, chain_bind how, ane_error *e) {
    const kernel *a = prev->k, *b = next->k;
    int by_name = 0;
    if (how != CHAIN_BIND_POSITION) {
        by_name = b->nin > 0;
        for (int j = 0; j < b->nin && by_name; j++) {
            int found = 0;
            for (int o = 0; o < a->nout; o++)
                if (a->out[o].name && b->in[j].name && strcmp(a->out[o].name, b->in[j].name) == 0)
                    found = 1;
            by_name = found;
        }
        if (how == CHAIN_BIND_NAME && !by_name) {
            for (int j = 0; j < b->nin; j++) {
                int found = 0;
                for (int o = 0; o < a->nout; o++)
                    if (a->out[o].name && b->in[j].name && strcmp(a->out[o].name, b->in[j].name) == 0)
                        found = 1;
                if (!found)
                    return err_set(e, ERR_SHAPE, "chain: %s input '%s' has no output of that name "
                                                 "in %s", next->label, b->in[j].name ? b->in[j].name : "?",
                                   prev->label);
            }
        }
    }
    if (!by_name && b->nin != a->nout)
        return err_set(e, ERR_SHAPE, "chain: %s has %d input(s) but %s has %d output(s) (binding by "
                                     "position)", next->label, b->nin, prev->label, a->nout);
    for (int j = 0; j < b->nin; j++) {
        int o = j;
        if (by_name)
            for (o = 0; o < a->nout; o++)
                if (strcmp(a->out[o].name, b->in[j].name) == 0) break;
        if (!io_match(&a->out[o], &b->in[j])) {
            char x[160], y[160];
            return err_set(e, ERR_SHAPE, "chain: %s input %s does not match %s output %s", next->label,
                           io_str(&b->in[j], x, sizeof x), prev->label, io_str(&a->out[o], y, sizeof y));
        }
        next->bind[j] = o;
    }
    return 0;
}

int chain_new(kernel *const *ks, int n, const char *const *names, chain_bind how, chain **out,
              ane_error *e) {
    *out = NULL;
    if (n < 1) return err_set(e, ERR_INVAL, "chain: needs at least one kernel");
    for (int i = 0; i < n; i++)
        if (!ks[i] || !ks[i]->be) return err_set(e, ERR_INVAL, "chain: kernel %d is missing", i + 1);
    chain *c = calloc(1, sizeof *c);
    if (!c) return err_set(e, ERR_NOMEM, "chain: out of memory");
    c->n = n;
    c->links = calloc((size_t)n, sizeof *c->links);
    c->times = calloc((size_t)n, sizeof *c->times);
    if (!c->links || !c->times) goto oom;
    for (int i = 0; i < n; i++) {
        link *l = &c->links[i];
        l->k = ks[i];
        l->nin = ks[i]->nin;
        l->nout = ks[i]->nout;
        if (names && names[i]) snprintf(l->label, sizeof l->label, "%s", names[i]);
        else snprintf(l->label, sizeof l->label, "kernel %d", i + 1);
        size_t nin = (size_t)(l->k->nin > 0 ? l->k->nin : 1), nout = (size_t)(l->k->nout > 0 ? l->k->nout : 1);
        l->in = calloc(nin, sizeof *l->in);
        l->bind = calloc(nin, sizeof *l->bind);
        l->out = calloc(nout, sizeof *l->out);
        l->outp = calloc(nout, sizeof *l->outp);
        if (!l->in || !l->bind || !l->out || !l->outp) goto oom;
        for (int j = 0; j < l->k->nout; j++) l->outp[j] = &l->out[j];
        for (int j = 0; j < l->k->nin; j++) l->bind[j] = -1;
    }
    /* Check every binding before allocating any buffer. */
    for (int i = 1; i < n; i++) {
        int rc = bind_link(&c->links[i - 1], &c->links[i], how, e);
        if (rc) { chain_free(c); return rc; }
    }
    for (int i = 0; i < n; i++) {
        kernel *k = c->links[i].k;
        if (!k->loaded && k->be->load) {
            int rc = k->be->load(k, e);
            if (rc) { err_prefix(e, "chain: loading %s: ", c->links[i].label); chain_free(c); return rc; }
        }
    }
    kernel *k0 = c->links[0].k;
    c->inputs = calloc((size_t)(k0->nin > 0 ? k0->nin : 1), sizeof *c->inputs);
    c->run_in = calloc((size_t)(k0->nin > 0 ? k0->nin : 1), sizeof *c->run_in);
    if (!c->inputs || !c->run_in) goto oom;
    for (int j = 0; j < k0->nin; j++) {
        int rc = alloc_io(k0, 0, j, &c->inputs[j], e);
        if (rc) { err_prefix(e, "chain: input buffer of %s: ", c->links[0].label); chain_free(c); return rc; }
        c->links[0].in[j] = &c->inputs[j];
    }
    for (int i = 0; i < n; i++) {
        link *l = &c->links[i];
        for (int j = 0; j < l->k->nout; j++) {
            int rc = alloc_io(l->k, 1, j, &l->out[j], e);
            if (rc) { err_prefix(e, "chain: output buffer of %s: ", l->label); chain_free(c); return rc; }
        }
        if (i > 0)
            for (int j = 0; j < l->k->nin; j++) l->in[j] = &c->links[i - 1].out[l->bind[j]];
    }
    *out = c;
    return 0;
oom:
    chain_free(c);
    return err_set(e, ERR_NOMEM, "chain: out of memory");
}

int chain_length(const chain *c) { return c->n; }
int chain_ninputs(const chain *c) { return c->links[0].nin; }
int chain_noutputs(const chain *c) { return c->links[c->n - 1].nout; }
int chain_link_ninputs(const chain *c, int link_i) {
    return link_i >= 0 && link_i < c->n ? c->links[link_i].nin : -1;
}

tensor *chain_input(chain *c, int i) {
    return (i >= 0 && i < chain_ninputs(c)) ? &c->inputs[i] : NULL;
}

tensor *chain_output(chain *c, int i) {
    return (i >= 0 && i < chain_noutputs(c)) ? &c->links[c->n - 1].out[i] : NULL;
}

int chain_binding(const chain *c, int link_i, int input) {
    if (link_i < 1 || link_i >= c->n || input < 0 || input >= c->links[link_i].nin) return -1;
    return c->links[link_i].bind[input];
}

/* Copy link l's inputs into its own heap tensors; allocated on first use. */
static int stage_inputs(link *l, ane_error *e) {
    if (!l->copy) {
        l->copy = calloc((size_t)l->nin, sizeof *l->copy);
        l->copyp = calloc((size_t)l->nin, sizeof *l->copyp);
        if (!l->copy || !l->copyp) return err_set(e, ERR_NOMEM, "chain: out of memory staging inputs");
        for (int j = 0; j < l->nin; j++) {
            const kernel_io *io = &l->k->in[j];
            int rc = tensor_init(&l->copy[j], io->dt, io->rank, io->shape, e);
            if (rc) return rc;
            l->copyp[j] = &l->copy[j];
        }
    }
    for (int j = 0; j < l->nin; j++) {
        int rc = storage_lock(l->in[j]->st, 1, e); /* an IOSurface is read under its CPU lock */
        if (rc) return rc;
        rc = tensor_copy(&l->copy[j], l->in[j], e);
        storage_unlock(l->in[j]->st, 1);
        if (rc) return rc;
    }
    return 0;
}

int chain_link_staged(const chain *c, int li) {
    return li >= 0 && li < c->n && c->links[li].staged;
}

int chain_run(chain *c, tensor *const *in, ane_error *e) {
    uint64_t t0 = now_ns();
    kernel *k0 = c->links[0].k;
    tensor *const *first = (tensor *const *)c->links[0].in;
    if (in) {
        for (int j = 0; j < k0->nin; j++) {
            const tensor *t = in[j];
            if (!t || !t->st)
                return err_set(e, ERR_INVAL, "chain: input %d is missing or closed", j + 1);
            if (t->dt != k0->in[j].dt || !shape_equal(t->rank, t->shape, k0->in[j].rank, k0->in[j].shape)) {
                char x[160], sh[96];
                return err_set(e, ERR_SHAPE, "chain: input %d is %s %s, %s expects %s", j + 1,
                               shape_str(t->rank, t->shape, sh, sizeof sh), dtype_name(t->dt),
                               c->links[0].label, io_str(&k0->in[j], x, sizeof x));
            }
            c->run_in[j] = (tensor *)t;
        }
        first = (tensor *const *)c->run_in;
    }
    for (int i = 0; i < c->n; i++) {
        link *l = &c->links[i];
        uint64_t a = now_ns();
        int rc = i > 0 && l->staged ? stage_inputs(l, e) : 0;
        if (!rc)
            rc = l->k->be->eval(l->k, i == 0 ? first : l->staged ? (tensor *const *)l->copyp : (tensor *const *)l->in,
                                (tensor *const *)l->outp, e);
        if (rc == ERR_BACKEND && i > 0 && !l->staged) {
            /* the device refused the direct binding: from now on this link stages copies */
            ane_error e2;
            err_clear(&e2);
            if (stage_inputs(l, &e2) == 0 &&
                l->k->be->eval(l->k, (tensor *const *)l->copyp, (tensor *const *)l->outp, &e2) == 0) {
                l->staged = 1;
                rc = 0;
                err_clear(e);
            }
        }
        c->times[i] = now_ns() - a;
        if (rc) {
            err_prefix(e, "chain: %s: ", l->label);
            return rc;
        }
    }
    c->total = now_ns() - t0;
    return 0;
}

const uint64_t *chain_times_ns(const chain *c) { return c->times; }
uint64_t chain_total_ns(const chain *c) { return c->total; }
