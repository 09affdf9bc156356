/* test_chain.c - chain binding and execution over a fake backend.
 *
 * The fake kernels compute out[j] = in[j] * mul + add elementwise (fp32), so a chain's output
 * proves the links ran in order over shared buffers. alloc_io of the fake backend counts its
 * calls and tags storages, so the test sees that buffers come from the backend and that link
 * i's output storage IS link i+1's input. Exit 0 = pass. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "queue/chain.h"

static int failures;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK(%s) failed\n", __FILE__, __LINE__, #c); failures++; } } while (0)

typedef struct fake_impl {
    float mul, add;
    int evals;
} fake_impl;

static int alloc_calls, load_calls;
static int eval_order[64], neval;

static int fake_eval(kernel *k, tensor *const *in, tensor *const *out, ane_error *e) {
    for (int j = 0; j < k->nin; j++)
        if (!in[j] || in[j]->dt != k->in[j].dt ||
            !shape_equal(in[j]->rank, in[j]->shape, k->in[j].rank, k->in[j].shape))
            return err_set(e, ERR_SHAPE, "fake: input %d mismatch", j);
    fake_impl *f = k->impl;
    for (int j = 0; j < k->nout; j++) {
        const float *x = tensor_data(in[j < k->nin ? j : 0]);
        float *y = tensor_data(out[j]);
        int64_t n = tensor_numel(out[j]);
        for (int64_t i = 0; i < n; i++) y[i] = x[i] * f->mul + f->add;
    }
    f->evals++;
    if (neval < 64) eval_order[neval++] = (int)f->add;
    return 0;
}

static int fake_load(kernel *k, ane_error *e) {
    load_calls++;
    k->loaded = 1;
    return 0;
}

static int fake_alloc_io(kernel *k, int is_output, int idx, tensor *t, ane_error *e) {
    const kernel_io *io = is_output ? &k->out[idx] : &k->in[idx];
    alloc_calls++;
    return tensor_init(t, io->dt, io->rank, io->shape, e);
}

static void fake_free(kernel *k) {
    if (!k) return;
    free(k->impl);
    free(k->in);
    free(k->out);
    free(k);
}

static const backend fake = {
    .name = "fake", .eval = fake_eval, .load = fake_load, .alloc_io = fake_alloc_io, .free = fake_free,
};

/* A kernel with one input `in_name` and one output `out_name`, both fp32 [1, c, 1, s]. */
static kernel *mk(const char *in_name, const char *out_name, int c, int s, float mul, float add) {
    kernel *k = calloc(1, sizeof *k);
    k->be = &fake;
    k->nin = k->nout = 1;
    k->in = calloc(1, sizeof *k->in);
    k->out = calloc(1, sizeof *k->out);
    kernel_io io = { .dt = DT_FP32, .rank = 4, .shape = { 1, c, 1, s } };
    io.name = in_name;
    k->in[0] = io;
    io.name = out_name;
    k->out[0] = io;
    fake_impl *f = calloc(1, sizeof *f);
    f->mul = mul;
    f->add = add;
    k->impl = f;
    k->loaded = 1;
    return k;
}

static void test_runs_in_order_over_shared_buffers(void) {
    kernel *ks[12];
    for (int i = 0; i < 12; i++) ks[i] = mk("x", "x", 4, 8, 2.0f, (float)(i + 1));
    ks[5]->loaded = 0; /* the chain loads what is not loaded */
    load_calls = alloc_calls = neval = 0;
    chain *c = NULL;
    ane_error e;
    CHECK(chain_new(ks, 12, NULL, CHAIN_BIND_AUTO, &c, &e) == 0);
    CHECK(load_calls == 1 && ks[5]->loaded);
    CHECK(alloc_calls == 13); /* one input buffer + one output per link, all from the backend */
    CHECK(chain_length(c) == 12 && chain_ninputs(c) == 1 && chain_noutputs(c) == 1);
    for (int i = 1; i < 12; i++) CHECK(chain_binding(c, i, 0) == 0);
    tensor *in = chain_input(c, 0);
    float *x = tensor_data(in);
    for (int i = 0; i < 32; i++) x[i] = (float)i;
    CHECK(chain_run(c, NULL, &e) == 0);
    /* Reference: apply y = 2y + (i+1) twelve times. */
    const float *y = tensor_data(chain_output(c, 0));
    for (int i = 0; i < 32; i++) {
        double r = i;
        for (int l = 0; l < 12; l++) r = r * 2 + (l + 1);
        CHECK(fabs(y[i] - r) < 1e-3 * fabs(r));
    }
    CHECK(neval == 12);
    for (int i = 0; i < 12; i++) CHECK(eval_order[i] == i + 1);
    const uint64_t *t = chain_times_ns(c);
    uint64_t sum = 0;
    for (int i = 0; i < 12; i++) sum += t[i];
    CHECK(chain_total_ns(c) >= sum);
    /* A caller-supplied input replaces the chain's input buffer for one run. */
    tensor other;
    int64_t sh[4] = { 1, 4, 1, 8 };
    CHECK(tensor_init(&other, DT_FP32, 4, sh, &e) == 0);
    CHECK(chain_run(c, (tensor *const[]){ &other }, &e) == 0);
    double r = 0;
    for (int l = 0; l < 12; l++) r = r * 2 + (l + 1);
    CHECK(fabs(y[0] - r) < 1e-3 * r);
    /* Wrong input shape at run time names the first link. */
    tensor bad;
    int64_t sb[4] = { 1, 4, 1, 9 };
    CHECK(tensor_init(&bad, DT_FP32, 4, sb, &e) == 0);
    CHECK(chain_run(c, (tensor *const[]){ &bad }, &e) == ERR_SHAPE);
    CHECK(strstr(e.msg, "kernel 1") && strstr(e.msg, "[1, 4, 1, 9]"));
    tensor_release(&bad);
    tensor_release(&other);
    chain_free(c);
    for (int i = 0; i < 12; i++) fake_free(ks[i]);
}

static void test_bind_by_name_and_position(void) {
    /* Two outputs a, b feeding a kernel whose inputs are b, a: by name swaps them. */
    kernel *k1 = mk("x", "a", 2, 4, 1, 0);
    k1->nout = 2;
    k1->out = realloc(k1->out, 2 * sizeof *k1->out);
    k1->out[1] = k1->out[0];
    k1->out[1].name = "b";
    kernel *k2 = mk("b", "y", 2, 4, 1, 0);
    k2->nin = 2;
    k2->in = realloc(k2->in, 2 * sizeof *k2->in);
    k2->in[1] = k2->in[0];
    k2->in[1].name = "a";
    chain *c = NULL;
    ane_error e;
    kernel *ks[2] = { k1, k2 };
    CHECK(chain_new(ks, 2, NULL, CHAIN_BIND_AUTO, &c, &e) == 0);
    CHECK(chain_binding(c, 1, 0) == 1 && chain_binding(c, 1, 1) == 0);
    chain_free(c);
    CHECK(chain_new(ks, 2, NULL, CHAIN_BIND_POSITION, &c, &e) == 0);
    CHECK(chain_binding(c, 1, 0) == 0 && chain_binding(c, 1, 1) == 1);
    chain_free(c);
    /* Names that do not match: auto falls back to position; "name" refuses. */
    k2->in[0].name = "p";
    k2->in[1].name = "q";
    CHECK(chain_new(ks, 2, NULL, CHAIN_BIND_AUTO, &c, &e) == 0);
    CHECK(chain_binding(c, 1, 0) == 0);
    chain_free(c);
    const char *names[2] = { "qkv", "attn" };
    CHECK(chain_new(ks, 2, names, CHAIN_BIND_NAME, &c, &e) == ERR_SHAPE);
    CHECK(c == NULL);
    CHECK(strstr(e.msg, "attn input 'p'") && strstr(e.msg, "qkv"));
    fake_free(k1);
    fake_free(k2);
}

static void test_mismatch_errors(void) {
    kernel *a = mk("x", "y", 4, 8, 1, 0);
    kernel *b = mk("y", "z", 4, 16, 1, 0); /* spatial 16 != 8 */
    kernel *ks[2] = { a, b };
    const char *names[2] = { "proj", "ffn" };
    chain *c = (chain *)1;
    ane_error e;
    alloc_calls = 0;
    CHECK(chain_new(ks, 2, names, CHAIN_BIND_AUTO, &c, &e) == ERR_SHAPE);
    CHECK(c == NULL);
    CHECK(alloc_calls == 0); /* refused before any buffer was allocated */
    CHECK(strcmp(e.msg, "chain: ffn input 'y' [1, 4, 1, 16] fp32 does not match proj output "
                        "'y' [1, 4, 1, 8] fp32") == 0);
    b->in[0].shape[3] = 8;
    b->in[0].dt = DT_FP16;
    CHECK(chain_new(ks, 2, NULL, CHAIN_BIND_AUTO, &c, &e) == ERR_SHAPE);
    CHECK(strstr(e.msg, "kernel 2 input 'y' [1, 4, 1, 8] fp16") && strstr(e.msg, "kernel 1 output"));
    /* Arity mismatch by position. */
    b->in[0].dt = DT_FP32;
    b->in[0].name = "other";
    b->nin = 0;
    CHECK(chain_new(ks, 2, NULL, CHAIN_BIND_POSITION, &c, &e) == ERR_SHAPE);
    CHECK(strstr(e.msg, "kernel 2 has 0 input(s) but kernel 1 has 1 output(s)"));
    b->nin = 1;
    CHECK(chain_new(ks, 0, NULL, CHAIN_BIND_AUTO, &c, &e) == ERR_INVAL);
    kernel *holes[2] = { a, NULL };
    CHECK(chain_new(holes, 2, NULL, CHAIN_BIND_AUTO, &c, &e) == ERR_INVAL);
    chain_free(NULL);
    fake_free(a);
    fake_free(b);
}

/* A chain may be freed after its kernels (Lua closes them in any order). */
static void test_free_after_kernels(void) {
    kernel *ks[2] = { mk("x", "y", 2, 4, 1, 0), mk("y", "z", 2, 4, 1, 0) };
    chain *c = NULL;
    ane_error e;
    CHECK(chain_new(ks, 2, NULL, CHAIN_BIND_AUTO, &c, &e) == 0);
    CHECK(chain_link_ninputs(c, 1) == 1 && chain_link_ninputs(c, 2) == -1);
    fake_free(ks[0]);
    fake_free(ks[1]);
    CHECK(chain_ninputs(c) == 1 && chain_noutputs(c) == 1);
    chain_free(c); /* ASan: must not read the freed kernels */
}

int main(void) {
    size_t live0 = storage_live_bytes();
    test_runs_in_order_over_shared_buffers();
    test_bind_by_name_and_position();
    test_mismatch_errors();
    test_free_after_kernels();
    CHECK(storage_live_bytes() == live0); /* every shared buffer was released */
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    return 0;
}
