/* cpu_backend.c - the "cpu" backend vtable: compile (plan), load (arena), eval, unload, free.
 *
 * Eval converts each input into the plan's fp32 domain (fp32 inputs are read in place when no
 * rounding is due), runs the node list, rounds each result as the ANE would hold it, and converts
 * the outputs into the caller's tensors. The arena is the only working memory and is allocated
 * by load, so eval allocates nothing. */
#include <math.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/fp16.h"
#include "../../core/storage.h"
#include "../../core/bigmem.h"
#include "../../core/settings.h"
#include "cpu.h"

int cpu_plan_build(mil_program *p, const compile_opts *o, cpu_plan **out, kernel_io **in_io,
                   kernel_io **out_io, ane_error *e);
void cpu_plan_free(cpu_plan *pl);
void cpu_finish_node(const cpu_plan *pl, const cpu_node *nd, float *const *ptr);

static int cpu_available(char *why, size_t n) {
    if (why && n) why[0] = 0;
    return 1;
}

static int cpu_unload(kernel *k, ane_error *e) {
    if (!k) return 0;
    cpu_plan *pl = k->impl;
    if (pl) {
        bigmem_free(pl->arena);
        pl->arena = NULL;
    }
    k->loaded = 0;
    return 0;
}

static double wall(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ANE_CPU_PROFILE=1: per-node times on stderr when the kernel is freed (where eval time goes). */
static void print_profile(const cpu_plan *pl) {
    if (!pl->prof || pl->nprof_evals == 0) return;
    double total = 0;
    for (int i = 0; i < pl->nnodes; i++) total += pl->prof[i];
    fprintf(stderr, "cpu profile: %ld evals, %.3f ms per eval\n", pl->nprof_evals, 1e3 * total / (double)pl->nprof_evals);
    for (int i = 0; i < pl->nnodes; i++) {
        const mil_op *op = pl->nodes[i].op;
        fprintf(stderr, "  %8.3f ms %5.1f%%  %-24s %s (line %d)\n", 1e3 * pl->prof[i] / (double)pl->nprof_evals,
                total > 0 ? 100.0 * pl->prof[i] / total : 0.0, op->type, op->label ? op->label : "", op->line);
    }
}

static void cpu_free(kernel *k) {
    if (!k) return;
    if (k->impl) {
        print_profile(k->impl);
        free(((cpu_plan *)k->impl)->prof);
    }
    cpu_unload(k, NULL);
    cpu_plan_free(k->impl);
    mil_program_release_ir(k->prog);
    free(k->in);
    free(k->out);
    free(k);
}

static int cpu_compile(mil_program *p, const compile_opts *o, kernel **out, ane_error *e) {
    *out = NULL;
    compile_opts def;
    if (!o) {
        compile_opts_default(&def);
        o = &def;
    }
    if (o->strict) {
        int rc = backend_take_compile(e); /* ane-private-api.md 6.1 */
        if (rc) return rc;
    }
    kernel *k = calloc(1, sizeof *k);
    if (!k) return err_set(e, ERR_NOMEM, "out of memory");
    cpu_plan *pl;
    int rc = cpu_plan_build(p, o, &pl, &k->in, &k->out, e);
    if (rc) {
        free(k);
        return rc;
    }
    k->be = cpu_backend();
    k->prog = p;
    mil_program_retain_ir(p); /* the plan converted every constant it reads */
    k->nin = pl->f->nparams;
    k->nout = pl->f->nouts;
    k->impl = pl;
    if (o->strict) kernel_warn_rows(k);
    if (settings_get()->cpu_profile) pl->prof = calloc((size_t)(pl->nnodes ? pl->nnodes : 1), sizeof(double));
    *out = k;
    return 0;
}

static int cpu_load(kernel *k, ane_error *e) {
    if (!k || !k->impl) return err_set(e, ERR_STATE, "load: kernel is closed");
    if (k->loaded) return 0;
    cpu_plan *pl = k->impl;
    size_t bytes = (size_t)(pl->arena_n > 0 ? pl->arena_n : 16) * sizeof(float);
    bytes = (bytes + 63) & ~(size_t)63;
    pl->arena = cpu_alloc_big(bytes);
    if (!pl->arena) return err_set(e, ERR_NOMEM, "load: out of memory for a %zu-byte arena", bytes);
    memset(pl->arena, 0, bytes);
    for (int v = 0; v < pl->nvals; v++) {
        cpu_val *cv = &pl->vals[v];
        if (cv->kind == CV_CONST) pl->ptr[v] = cv->cdata;
        else if (cv->arena_off >= 0) pl->ptr[v] = pl->arena + cv->arena_off;
    }
    for (int v = 0; v < pl->nvals; v++) { /* views after their roots */
        cpu_val *cv = &pl->vals[v];
        if (cv->kind == CV_VIEW && pl->ptr[cv->root]) pl->ptr[v] = pl->ptr[cv->root] + cv->off;
    }
    for (int i = 0; i < pl->nnodes; i++)
        pl->nodes[i].scratch = pl->nodes[i].scratch_n > 0 ? pl->arena + pl->nodes[i].scratch_off : NULL;
    k->loaded = 1;
    return 0;
}

/* fp16 <-> fp32 conversions of large inputs/outputs split across the pool (they are memory-bound
 * and, around a GEMM, a visible share of a kernel's time). */
typedef struct conv_job {
    void *h;   /* uint16_t fp16 data */
    float *f;
    int to16;
} conv_job;

static void conv_range(void *ctx, int64_t lo, int64_t hi) {
    conv_job *j = ctx;
    if (j->to16) fp16_from_f32_n((uint16_t *)j->h + lo, j->f + lo, (size_t)(hi - lo));
    else fp16_to_f32_n(j->f + lo, (const uint16_t *)j->h + lo, (size_t)(hi - lo));
}

void cpu_fp16_to_f32_par(const cpu_plan *pl, float *dst, const uint16_t *src, int64_t n) {
    conv_job j = {(void *)src, dst, 0};
    cpu_parallel(pl, n, 2, conv_range, &j);
}

static void input_to_f32(const cpu_plan *pl, float *dst, const tensor *t, int round16) {
    const void *src = tensor_data(t);
    int64_t n = tensor_numel(t);
    switch (t->dt) {
    case DT_FP16: cpu_fp16_to_f32_par(pl, dst, src, n); break;
    case DT_FP32:
        memcpy(dst, src, (size_t)n * sizeof(float));
        if (round16) fp16_round_n(dst, (size_t)n); /* mil-reference.md 7.3 rule 3 */
        break;
    case DT_INT32: for (int64_t i = 0; i < n; i++) dst[i] = (float)((const int32_t *)src)[i]; break;
    case DT_INT8: for (int64_t i = 0; i < n; i++) dst[i] = ((const int8_t *)src)[i]; break;
    case DT_UINT8: case DT_BOOL:
        for (int64_t i = 0; i < n; i++) dst[i] = ((const uint8_t *)src)[i];
        break;
    default: break;
    }
}

static void f32_to_output(const cpu_plan *pl, tensor *t, const float *src) {
    void *dst = tensor_data(t);
    int64_t n = tensor_numel(t);
    switch (t->dt) {
    case DT_FP16: {
        conv_job j = {dst, (float *)src, 1};
        cpu_parallel(pl, n, 2, conv_range, &j);
        break;
    }
    case DT_FP32: memcpy(dst, src, (size_t)n * sizeof(float)); break;
    case DT_INT32:
        for (int64_t i = 0; i < n; i++) {
            float x = src[i];
            ((int32_t *)dst)[i] = x != x ? 0 : x >= 2147483647.0f ? INT32_MAX
                                 : x <= -2147483648.0f ? INT32_MIN : (int32_t)x;
        }
        break;
    case DT_INT8:
        for (int64_t i = 0; i < n; i++) {
            float x = src[i];
            ((int8_t *)dst)[i] = (int8_t)(x != x ? 0 : x > 127 ? 127 : x < -128 ? -128 : (int)x);
        }
        break;
    case DT_UINT8:
        for (int64_t i = 0; i < n; i++) {
            float x = src[i];
            ((uint8_t *)dst)[i] = (uint8_t)(x != x ? 0 : x > 255 ? 255 : x < 0 ? 0 : (int)x);
        }
        break;
    case DT_BOOL: for (int64_t i = 0; i < n; i++) ((uint8_t *)dst)[i] = src[i] != 0; break;
    default: break;
    }
}

static int lock_all(tensor *const *ts, int n, int readonly, ane_error *e) {
    for (int i = 0; i < n; i++) {
        int rc = storage_lock(ts[i]->st, readonly, e);
        if (rc) {
            while (i-- > 0) storage_unlock(ts[i]->st, readonly);
            return rc;
        }
    }
    return 0;
}

static void unlock_all(tensor *const *ts, int n, int readonly) {
    for (int i = 0; i < n; i++) storage_unlock(ts[i]->st, readonly);
}

static int cpu_eval(kernel *k, tensor *const *in, tensor *const *out, ane_error *e) {
    int rc = kernel_check_io(k, in, out, e);
    if (rc) return rc;
    cpu_plan *pl = k->impl;
    const mil_function *f = pl->f;
    if ((rc = lock_all(in, k->nin, 1, e))) return rc;
    if ((rc = lock_all(out, k->nout, 0, e))) {
        unlock_all(in, k->nin, 1);
        return rc;
    }
    float **ptr = pl->ptr;
    int round_in = pl->opts.precision == PREC_FP16;
    for (int i = 0; i < k->nin; i++) {
        int v = f->params[i];
        if (pl->in_direct[i]) ptr[v] = tensor_data(in[i]);
        else input_to_f32(pl, ptr[v], in[i], round_in);
    }
    for (int j = 0; j < pl->nin_views; j++) {
        int v = pl->in_views[j];
        const cpu_val *cv = &pl->vals[v];
        if (cv->kind == CV_VIEW) ptr[v] = ptr[cv->root] + cv->off;
    }
    uint16_t *o16[16];
    uint16_t **out16 = NULL;
    if (k->nout <= 16) {
        for (int i = 0; i < k->nout; i++)
            o16[i] = pl->out_by_node[i] && out[i]->dt == DT_FP16 ? tensor_data(out[i]) : NULL;
        out16 = o16;
    }
    cpu_exec ex = {pl, ptr, out16};
    if (pl->prof) pl->nprof_evals++;
    for (int i = 0; i < pl->nnodes; i++) {
        const cpu_node *nd = &pl->nodes[i];
        double t0 = pl->prof ? wall() : 0;
        nd->run(&ex, nd);
        cpu_finish_node(pl, nd, ptr);
        if (pl->prof) pl->prof[i] += wall() - t0;
        if (pl->opts.strict && (rc = cpu_strict_check_node(pl, nd, ptr, e))) goto done;
    }
    for (int i = 0; i < k->nout; i++)
        if (!(out16 && out16[i])) f32_to_output(pl, out[i], ptr[f->outs[i]]);
done:
    unlock_all(out, k->nout, 0);
    unlock_all(in, k->nin, 1);
    return rc;
}

static int cpu_alloc_io(kernel *k, int is_output, int idx, tensor *t, ane_error *e) {
    if (!k) return err_set(e, ERR_STATE, "kernel is closed");
    int n = is_output ? k->nout : k->nin;
    if (idx < 0 || idx >= n) return err_set(e, ERR_INVAL, "no %s number %d", is_output ? "output" : "input", idx);
    const kernel_io *io = is_output ? &k->out[idx] : &k->in[idx];
    return tensor_init(t, io->dt, io->rank, io->shape, e);
}

static int cpu_info(char *buf, size_t n) {
#ifdef ANE_ACCELERATE
    const char *blas = "accelerate";
#else
    const char *blas = "openblas";
#endif
    snprintf(buf, n, "blas=%s\nprecision_default=fp16\n", blas);
    return 0;
}

static const backend cpu_vtable = {
    .name = "cpu",
    .description = "CPU executor with ANE numerics (fp16 rounding, strict-mode limits)",
    .available = cpu_available,
    .compile = cpu_compile,
    .load = cpu_load,
    .eval = cpu_eval,
    .unload = cpu_unload,
    .free = cpu_free,
    .alloc_io = cpu_alloc_io,
    .info = cpu_info,
};

const backend *cpu_backend(void) { return &cpu_vtable; }

int cpu_kernel_stats(const kernel *k, cpu_stats *st) {
    if (!k || k->be != &cpu_vtable || !k->impl) return -1;
    const cpu_plan *pl = k->impl;
    st->arena_bytes = (size_t)pl->arena_n * sizeof(float);
    st->const_bytes = pl->const_bytes;
    st->nodes = pl->nnodes;
    st->values = pl->nvals;
    return 0;
}
