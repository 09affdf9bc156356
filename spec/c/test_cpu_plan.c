/* test_cpu_plan.c - what the CPU planner promises, checked through the C API: views and folded
 * constants run no node, transposes fold into matmul, the arena reuses dead buffers, eval
 * allocates nothing, wrong arguments give the documented messages, the compile budget counts,
 * a thread at lowered priority is recognised, the pool runs every item of every job exactly once
 * with two callers racing for it, and a GEMM split over the pool equals the GEMM done whole. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/resource.h>
#endif

#include "backend/backend.h"
#include "backend/cpu/cpu.h"
#include "core/bigmem.h"
#include "core/fp16.h"
#include "core/settings.h"
#include "core/storage.h"
#include "mil/mil.h"

#include "expect.h"

static const backend *cpu;

/* Parse + check + compile + load; NULL (and a message) on failure. */
static kernel *build(const char *text, const compile_opts *o, ane_error *e) {
    mil_program *p = NULL;
    kernel *k = NULL;
    if (mil_parse(text, strlen(text), "t.mil", NULL, &p, e) || mil_check(p, NULL, e) ||
        mil_resolve_weights(p, NULL, e)) {
        mil_program_release(p);
        return NULL;
    }
    compile_opts def;
    compile_opts_default(&def);
    int rc = cpu->compile(p, o ? o : &def, &k, e);
    mil_program_release(p); /* the kernel keeps its own reference */
    if (rc) return NULL;
    if (cpu->load(k, e)) {
        cpu->free(k);
        return NULL;
    }
    return k;
}

static cpu_stats stats(const kernel *k) {
    cpu_stats st = {0};
    cpu_kernel_stats(k, &st);
    return st;
}

static void fill(tensor *t, float base) {
    for (int64_t i = 0; i < tensor_numel(t); i++) tensor_set(t, i, base + (double)(i % 17) * 0.25);
}

#define PROG_HEAD "program(1.3)\n{\n    func main<ios18>("
#define PROG_TAIL "\n}\n"

static void test_views_run_nothing(void) {
    const char *src = PROG_HEAD "tensor<fp16, [1, 64, 1, 32]> x) {\n"
        "        tensor<fp16, [1, 2, 32, 32]> r = reshape(x = x, shape = tensor<int32, [4]>([1, 2, 32, 32]))[name = string(\"r\")];\n"
        "        tensor<fp16, [2, 32, 32]> s = squeeze(x = r, axes = tensor<int32, [1]>([0]))[name = string(\"s\")];\n"
        "        tensor<fp16, [1, 32, 32]> y = slice_by_size(x = s, begin = tensor<int32, [3]>([1, 0, 0]), size = tensor<int32, [3]>([1, 32, 32]))[name = string(\"y\")];\n"
        "    } -> (y);" PROG_TAIL;
    ane_error e;
    kernel *k = build(src, NULL, &e);
    EXPECT(k, "build: %s", e.msg);
    if (!k) return;
    EXPECT(stats(k).nodes == 0, "views should run no node, got %d", stats(k).nodes);
    tensor x, y;
    int64_t xs[] = {1, 64, 1, 32}, ys[] = {1, 32, 32};
    tensor_init(&x, DT_FP16, 4, xs, &e);
    tensor_init(&y, DT_FP16, 3, ys, &e);
    fill(&x, -2);
    tensor *in[] = {&x}, *out[] = {&y};
    EXPECT(cpu->eval(k, in, out, &e) == 0, "eval: %s", e.msg);
    int ok = 1;
    for (int64_t i = 0; i < 1024; i++) ok &= tensor_get(&y, i) == tensor_get(&x, 1024 + i);
    EXPECT(ok, "the second half of x, unchanged");
    tensor_release(&x);
    tensor_release(&y);
    cpu->free(k);
}

static void test_folding_and_transpose_folds(void) {
    /* const arithmetic folds; q/k/v transposes fold into the GEMMs; the output transpose too;
     * the power-of-two scale after the first matmul folds into its alpha */
    const char *src = PROG_HEAD "tensor<fp16, [1, 2, 32, 16]> q, tensor<fp16, [1, 2, 32, 16]> v) {\n"
        "        tensor<int32, [4]> swap = const()[name = string(\"swap\"), val = tensor<int32, [4]>([0, 1, 3, 2])];\n"
        "        fp16 a = const()[name = string(\"a\"), val = fp16(0.5)];\n"
        "        fp16 sc = mul(x = a, y = a)[name = string(\"sc\")];\n"
        "        tensor<fp16, [1, 2, 16, 32]> qt = transpose(x = q, perm = swap)[name = string(\"qt\")];\n"
        "        tensor<fp16, [1, 2, 16, 32]> vt = transpose(x = v, perm = swap)[name = string(\"vt\")];\n"
        "        tensor<fp16, [1, 2, 16, 16]> s = matmul(x = qt, y = qt, transpose_x = bool(false), transpose_y = bool(true))[name = string(\"s\")];\n"
        "        tensor<fp16, [1, 2, 16, 16]> ss = mul(x = s, y = sc)[name = string(\"ss\")];\n"
        "        tensor<fp16, [1, 2, 16, 16]> p = softmax(x = ss, axis = int32(-1))[name = string(\"p\")];\n"
        "        tensor<fp16, [1, 2, 16, 32]> o = matmul(x = p, y = vt, transpose_x = bool(false), transpose_y = bool(false))[name = string(\"o\")];\n"
        "        tensor<fp16, [1, 2, 32, 16]> y = transpose(x = o, perm = swap)[name = string(\"y\")];\n"
        "    } -> (y);" PROG_TAIL;
    ane_error e;
    kernel *k = build(src, NULL, &e);
    EXPECT(k, "build: %s", e.msg);
    if (!k) return;
    /* the scale 0.25 (a power of two) becomes the first GEMM's alpha */
    EXPECT(stats(k).nodes == 3, "matmul (scaled), softmax, matmul should run; got %d nodes", stats(k).nodes);
    /* same result as with the transposes done by hand: compare against a plain evaluation */
    tensor q, v, y;
    int64_t s4[] = {1, 2, 32, 16};
    tensor_init(&q, DT_FP16, 4, s4, &e);
    tensor_init(&v, DT_FP16, 4, s4, &e);
    tensor_init(&y, DT_FP16, 4, s4, &e);
    fill(&q, -1);
    fill(&v, 0.5);
    tensor *in[] = {&q, &v}, *out[] = {&y};
    EXPECT(cpu->eval(k, in, out, &e) == 0, "eval: %s", e.msg);
    double maxerr = 0;
    for (int h = 0; h < 2; h++)
        for (int d = 0; d < 32; d++)
            for (int i = 0; i < 16; i++) {
                /* y[h,d,i] = sum_j p[h,i,j] v[h,d,j], p = softmax_j(0.25 * sum_e q[h,e,i] q[h,e,j]) */
                double sc[16], m = -1e30, z = 0;
                for (int j = 0; j < 16; j++) {
                    double acc = 0;
                    for (int ee = 0; ee < 32; ee++)
                        acc += tensor_get(&q, (h * 32 + ee) * 16 + i) * tensor_get(&q, (h * 32 + ee) * 16 + j);
                    sc[j] = 0.25 * acc;
                    if (sc[j] > m) m = sc[j];
                }
                for (int j = 0; j < 16; j++) z += (sc[j] = __builtin_exp(sc[j] - m));
                double acc = 0;
                for (int j = 0; j < 16; j++) acc += sc[j] / z * tensor_get(&v, (h * 32 + d) * 16 + j);
                double err = __builtin_fabs(acc - tensor_get(&y, (h * 32 + d) * 16 + i));
                if (err > maxerr) maxerr = err;
            }
    EXPECT(maxerr < 2e-2, "attention through folded transposes: max error %g", maxerr);
    tensor_release(&q);
    tensor_release(&v);
    tensor_release(&y);
    cpu->free(k);
}

static void test_arena_reuse_and_no_allocation(void) {
    /* ten elementwise ops in a chain: in-place reuse keeps the arena at the input plus one buffer */
    char src[4096];
    int n = snprintf(src, sizeof src, PROG_HEAD "tensor<fp16, [1, 64, 1, 32]> x) {\n"
                     "        tensor<fp16, [1, 64, 1, 32]> t0 = relu(x = x)[name = string(\"t0\")];\n");
    for (int i = 1; i < 10; i++)
        n += snprintf(src + n, sizeof src - (size_t)n,
                      "        tensor<fp16, [1, 64, 1, 32]> t%d = %s(x = t%d%s)[name = string(\"t%d\")];\n", i,
                      i % 2 ? "mul" : "sigmoid", i - 1, i % 2 ? ", y = fp16(0.5)" : "", i);
    snprintf(src + n, sizeof src - (size_t)n, "    } -> (t9);" PROG_TAIL);
    ane_error e;
    kernel *k = build(src, NULL, &e);
    EXPECT(k, "build: %s", e.msg);
    if (!k) return;
    cpu_stats st = stats(k);
    EXPECT(st.nodes == 10, "10 nodes, got %d", st.nodes);
    EXPECT(st.arena_bytes <= 2 * 64 * 32 * sizeof(float), "arena %zu bytes: buffers not reused", st.arena_bytes);
    tensor x, y;
    int64_t s[] = {1, 64, 1, 32};
    tensor_init(&x, DT_FP16, 4, s, &e);
    tensor_init(&y, DT_FP16, 4, s, &e);
    fill(&x, -3);
    tensor *in[] = {&x}, *out[] = {&y};
    size_t before = storage_live_bytes();
    for (int r = 0; r < 100; r++) cpu->eval(k, in, out, &e);
    EXPECT(storage_live_bytes() == before, "eval allocated storage");
    /* reference: the same chain with fp16 rounding after each op */
    int ok = 1;
    for (int64_t i = 0; i < 64 * 32; i++) {
        float v = fp16_round((float)tensor_get(&x, i));
        v = v > 0 ? v : 0;
        for (int j = 1; j < 10; j++) v = fp16_round(j % 2 ? v * 0.5f : 1.0f / (1.0f + __builtin_expf(-v)));
        if (__builtin_fabs(v - tensor_get(&y, i)) > 1e-3) ok = 0;
    }
    EXPECT(ok, "chain result");
    tensor_release(&x);
    tensor_release(&y);
    cpu->free(k);
}

static void test_errors(void) {
    ane_error e;
    const char *src = PROG_HEAD "tensor<fp16, [1, 64, 1, 32]> x) {\n"
        "        tensor<fp16, [1, 64, 1, 32]> y = relu(x = x)[name = string(\"r\")];\n    } -> (y);" PROG_TAIL;
    mil_program *p = NULL;
    EXPECT(mil_parse(src, strlen(src), "t.mil", NULL, &p, &e) == 0, "parse: %s", e.msg);
    kernel *k = NULL;
    compile_opts o;
    compile_opts_default(&o);
    EXPECT(cpu->compile(p, &o, &k, &e) == ERR_STATE && strstr(e.msg, "not been checked"), "unchecked: %s", e.msg);
    mil_check(p, NULL, &e);
    o.function = "nope";
    EXPECT(cpu->compile(p, &o, &k, &e) == ERR_INVAL && strcmp(e.msg, "compile: the program has no function 'nope'") == 0,
           "%s", e.msg);
    o.function = NULL;
    EXPECT(cpu->compile(p, &o, &k, &e) == 0, "compile: %s", e.msg);
    tensor x, y, bad;
    int64_t s[] = {1, 64, 1, 32}, sb[] = {1, 64, 1, 16};
    tensor_init(&x, DT_FP16, 4, s, &e);
    tensor_init(&y, DT_FP16, 4, s, &e);
    tensor_init(&bad, DT_FP16, 4, sb, &e);
    tensor *in[] = {&x}, *out[] = {&y}, *inb[] = {&bad};
    EXPECT(cpu->eval(k, in, out, &e) == ERR_STATE && strstr(e.msg, "not loaded"), "%s", e.msg);
    cpu->load(k, &e);
    EXPECT(cpu->eval(k, inb, out, &e) == ERR_SHAPE &&
               strcmp(e.msg, "eval: input 'x' has shape [1, 64, 1, 16], expected [1, 64, 1, 32]") == 0, "%s", e.msg);
    EXPECT(cpu->eval(k, in, out, &e) == 0, "%s", e.msg);
    cpu->unload(k, &e);
    EXPECT(cpu->eval(k, in, out, &e) == ERR_STATE, "eval after unload");
    cpu->free(k);
    cpu->free(NULL);
    tensor_release(&x);
    tensor_release(&y);
    tensor_release(&bad);
    mil_program_release(p);
}

static void test_budget(void) {
    ane_error e;
    backend_set_compile_budget(-1);
    int used = backend_compiles_used();
    backend_set_compile_budget(used + 1);
    EXPECT(backend_take_compile(&e) == 0, "first compile within the budget");
    EXPECT(backend_take_compile(&e) == ERR_BUDGET && strstr(e.msg, "compile budget spent"), "%s", e.msg);
    EXPECT(backend_compiles_used() == used + 1, "a refused compile is not counted");
    backend_set_compile_budget(-1);
    EXPECT(backend_take_compile(&e) == 0, "unlimited");
}

static void test_registry(void) {
    EXPECT(backend_get("cpu") == cpu, "cpu registered");
    EXPECT(backend_get("nope") == NULL, "unknown name");
    EXPECT(backend_count() >= 1 && backend_at(0) != NULL && backend_at(-1) == NULL, "enumeration");
    /* The environment is read once (runtime/core/settings.h): the defaults follow what it said
     * then, and a later change is not seen (the runtime never races a setenv). */
    compile_opts o, before;
    compile_opts_default(&before);
    const ane_settings *st = settings_get();
    EXPECT(before.precision == (st->precision_fp32 ? PREC_FP32 : PREC_FP16) && before.strict == st->strict &&
               before.qos == 21, "defaults from the settings");
    setenv("ANE_PRECISION", st->precision_fp32 ? "fp16" : "fp32", 1);
    setenv("ANE_STRICT", st->strict ? "0" : "1", 1);
    compile_opts_default(&o);
    EXPECT(o.precision == before.precision && o.strict == before.strict, "the environment is read once");
    unsetenv("ANE_PRECISION");
    unsetenv("ANE_STRICT");
}

#if defined(__linux__)
/* A thread that lowers its own priority (as an ane.queue worker does) counts as lowered, so a
 * compile there keeps its weight conversion off the pool's normal-priority threads. */
static void *lowered_thread(void *arg) {
    int *out = arg;
    out[0] = cpu_thread_lowered();
    int now = getpriority(PRIO_PROCESS, 0);
    out[1] = setpriority(PRIO_PROCESS, 0, now < 10 ? 10 : 19) == 0 && cpu_thread_lowered();
    return NULL;
}

/* Work handed to the pool by a thread at lowered priority stays on that thread. */
typedef struct where_job {
    pthread_t caller;
    atomic_int elsewhere;
} where_job;

static void note_thread(void *ctx, int64_t lo, int64_t hi) {
    where_job *j = ctx;
    if (!pthread_equal(pthread_self(), j->caller)) atomic_fetch_add(&j->elsewhere, (int)(hi - lo));
    /* ~20 us of work per item, so a woken pool thread arrives while chunks are left */
    struct timespec t0, t;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    do clock_gettime(CLOCK_MONOTONIC, &t);
    while ((t.tv_sec - t0.tv_sec) * 1000000000L + (t.tv_nsec - t0.tv_nsec) < 20000L * (hi - lo));
}

static void *lowered_parallel(void *arg) {
    int *out = arg;
    int now = getpriority(PRIO_PROCESS, 0);
    if (setpriority(PRIO_PROCESS, 0, now < 10 ? 10 : 19) != 0) return NULL;
    where_job j = {pthread_self(), 0};
    for (int r = 0; r < 20; r++) cpu_parallel(NULL, 64, 1 << 16, note_thread, &j);
    out[0] = atomic_load(&j.elsewhere);
    return NULL;
}

static void test_lowered_stays_home(void) {
    int out[1] = {-1};
    pthread_t t;
    EXPECT(pthread_create(&t, NULL, lowered_parallel, out) == 0, "pthread_create");
    pthread_join(t, NULL);
    EXPECT(out[0] == 0, "a nice-10 caller's items ran on pool threads: %d", out[0]);
    where_job j = {pthread_self(), 0};
    if (cpu_thread_lowered()) return; /* the suite itself runs niced: nothing to compare */
    for (int r = 0; r < 50 && atomic_load(&j.elsewhere) == 0; r++) cpu_parallel(NULL, 64, 1 << 16, note_thread, &j);
    EXPECT(atomic_load(&j.elsewhere) > 0, "a normal caller's items never reached the pool");
}

static void test_thread_lowered(void) {
    int r[2] = {-1, -1};
    pthread_t t;
    EXPECT(pthread_create(&t, NULL, lowered_thread, r) == 0, "pthread_create");
    pthread_join(t, NULL);
    EXPECT(r[0] == cpu_thread_lowered(), "a new thread inherits the caller's priority: %d", r[0]);
    EXPECT(r[1] == 1, "a thread at nice 10 is not seen as lowered");
}
#else
static void test_thread_lowered(void) {}
static void test_lowered_stays_home(void) {}
#endif

/* ---- a kernel keeps the IR, not the weight bytes: they go with the program's last user ---- */

static void test_kernel_drops_weight_bytes(void) {
    const char *src = PROG_HEAD "tensor<fp16, [64, 128]> x) {\n"
        "        tensor<fp16, [64, 128]> w = const()[name = string(\"w\"), val = tensor<fp16, [64, 128]>"
        "(BLOBFILE(path = string(\"@model_path/weights/w.bin\"), offset = uint64(64)))];\n"
        "        tensor<fp16, [64, 128]> y = mul(x = x, y = w)[name = string(\"y\")];\n"
        "    } -> (y);" PROG_TAIL;
    ane_error e;
    err_clear(&e);
    tensor w, x, y;
    int64_t sh[] = {64, 128};
    tensor_init(&w, DT_FP16, 2, sh, &e);
    tensor_init(&x, DT_FP16, 2, sh, &e);
    tensor_init(&y, DT_FP16, 2, sh, &e);
    fill(&w, -1);
    fill(&x, 0.5f);
    blob_writer *bw = blob_writer_new(&e);
    uint64_t off = 0;
    uint8_t *bytes = NULL;
    size_t nbytes = 0;
    EXPECT(bw && blob_writer_add(bw, &w, &off, &e) == 0 && blob_writer_finish(bw, &bytes, &nbytes, &e) == 0,
           "blob: %s", e.msg);
    mil_program *p = NULL;
    kernel *k = NULL;
    int ok = mil_parse(src, strlen(src), "t.mil", NULL, &p, &e) == 0 && mil_check(p, NULL, &e) == 0 &&
             mil_program_add_blob(p, "@model_path/weights/w.bin", bytes, nbytes, &e) == 0 &&
             mil_resolve_weights(p, NULL, &e) == 0;
    free(bytes);
    EXPECT(ok, "program: %s", e.msg);
    compile_opts o;
    compile_opts_default(&o);
    if (ok) ok = cpu->compile(p, &o, &k, &e) == 0;
    EXPECT(ok, "compile: %s", e.msg);
    if (!ok) {
        mil_program_release(p);
        return;
    }
    EXPECT(p->nblobs == 1 && p->blobs[0].data, "the program has its weight file while the caller holds it");
    mil_program_release(p); /* the kernel is the program's only holder now, of its IR */
    EXPECT(p->blobs[0].data == NULL, "the weight file's bytes were kept for a kernel that does not read them");
    int lits = 0;
    for (int v = 0; v < p->funcs[0].nvalues; v++)
        if (p->funcs[0].values[v].lit && p->funcs[0].values[v].lit->form == MIL_LIT_BLOB)
            lits += p->funcs[0].values[v].lit->data != NULL;
    EXPECT(lits == 0, "%d blob literals still point at weight bytes", lits);
    EXPECT(cpu->load(k, &e) == 0, "load: %s", e.msg);
    tensor *in[] = {&x}, *out[] = {&y};
    EXPECT(cpu->eval(k, in, out, &e) == 0, "eval: %s", e.msg);
    int same = 1;
    for (int64_t i = 0; i < 64 * 128; i++) {
        float want = fp16_to_f32(fp16_from_f32((float)(tensor_get(&x, i) * tensor_get(&w, i))));
        same &= (float)tensor_get(&y, i) == want;
    }
    EXPECT(same, "the kernel computes with the weights after their bytes are gone");
    cpu->free(k);
    tensor_release(&w);
    tensor_release(&x);
    tensor_release(&y);
}

/* ---- the pool: items of a job run once each, also while another thread wants the pool ---- */

enum { POOL_ITEMS = 257, POOL_JOBS = 1500 };

typedef struct pool_job {
    atomic_int hits[POOL_ITEMS];
} pool_job;

static void count_items(void *ctx, int64_t lo, int64_t hi) {
    pool_job *j = ctx;
    for (int64_t i = lo; i < hi; i++) atomic_fetch_add(&j->hits[i], 1);
}

static void *pool_caller(void *arg) {
    int *bad = arg;
    pool_job *j = calloc(1, sizeof *j);
    if (!j) return NULL;
    for (int r = 1; r <= POOL_JOBS; r++) {
        /* work per item large enough that the job is dispatched, not run inline */
        cpu_parallel(NULL, POOL_ITEMS, 1 << 16, count_items, j);
        for (int i = 0; i < POOL_ITEMS; i++)
            if (atomic_load(&j->hits[i]) != r) (*bad)++;
    }
    free(j);
    return NULL;
}

static void test_pool(void) {
    int bad_main = 0, bad_other = 0;
    pthread_t t;
    EXPECT(pthread_create(&t, NULL, pool_caller, &bad_other) == 0, "pthread_create");
    pool_caller(&bad_main);
    pthread_join(t, NULL);
    EXPECT(bad_main == 0, "pool: %d items run other than once (main caller)", bad_main);
    EXPECT(bad_other == 0, "pool: %d items run other than once (second caller)", bad_other);
}

/* ---- a kernel's thread limit holds on a pool with more threads ---- */

enum { MAX_SEEN = 16 };
typedef struct who_job {
    pthread_mutex_t mu;
    pthread_t seen[MAX_SEEN];
    int nseen;
} who_job;

static void note_who(void *ctx, int64_t lo, int64_t hi) {
    who_job *j = ctx;
    pthread_mutex_lock(&j->mu);
    int known = 0;
    for (int i = 0; i < j->nseen; i++) known |= pthread_equal(j->seen[i], pthread_self());
    if (!known && j->nseen < MAX_SEEN) j->seen[j->nseen++] = pthread_self();
    pthread_mutex_unlock(&j->mu);
    /* items that sleep: every thread taking part gets some, however few cores there are */
    struct timespec d = {0, 100000L * (hi - lo)};
    nanosleep(&d, NULL);
}

static void test_thread_limit(void) {
    cpu_plan *pl = calloc(1, sizeof *pl);
    if (!pl) return;
    int most = 0, most_unlimited = 0;
    for (int r = 0; r < 10; r++) {
        who_job j = {.mu = PTHREAD_MUTEX_INITIALIZER};
        pl->opts.threads = 2;
        cpu_parallel(pl, 64, 1 << 16, note_who, &j);
        if (j.nseen > most) most = j.nseen;
        who_job u = {.mu = PTHREAD_MUTEX_INITIALIZER};
        cpu_parallel(NULL, 64, 1 << 16, note_who, &u);
        if (u.nseen > most_unlimited) most_unlimited = u.nseen;
    }
    EXPECT(most <= 2, "threads = 2 ran items on %d threads", most);
    EXPECT(most_unlimited > 2, "the 4-thread pool never used more than %d threads unlimited", most_unlimited);
    /* limited and unlimited jobs in turn: a worker left out of one job must still run the next
     * one's items exactly once */
    pool_job *j = calloc(1, sizeof *j);
    int bad = 0;
    for (int r = 1; r <= 3000 && j; r++) {
        pl->opts.threads = r % 3 == 0 ? 2 : 0;
        cpu_parallel(r % 3 == 1 ? NULL : pl, POOL_ITEMS, 1 << 16, count_items, j);
        for (int i = 0; i < POOL_ITEMS; i++)
            if (atomic_load(&j->hits[i]) != r) bad++;
    }
    EXPECT(bad == 0, "%d items run other than once with the limit changing from job to job", bad);
    free(j);
    free(pl);
}

/* ---- fork: a child has none of the parent's threads; the pool and the allocator still work ---- */

static void *hold_bigmem(void *arg) {
    /* allocate and free in a loop while the parent forks, so the allocator's lock may be held */
    atomic_int *stop = arg;
    while (!atomic_load(stop)) bigmem_free(bigmem_alloc((size_t)2 << 20));
    return NULL;
}

static void test_fork_child(void) {
    pool_job *warm = calloc(1, sizeof *warm);
    cpu_parallel(NULL, POOL_ITEMS, 1 << 16, count_items, warm); /* the pool exists in the parent */
    free(warm);
    atomic_int stop = 0;
    pthread_t t;
    pthread_create(&t, NULL, hold_bigmem, &stop);
    int bad = 0;
    for (int r = 0; r < 8; r++) {
        fflush(NULL);
        pid_t pid = fork();
        if (pid == 0) {
            alarm(3); /* a hang shows as a failure, not a stuck suite */
            pool_job *j = calloc(1, sizeof *j);
            cpu_parallel(NULL, POOL_ITEMS, 1 << 16, count_items, j);
            int ok = 1;
            for (int i = 0; i < POOL_ITEMS; i++) ok &= atomic_load(&j->hits[i]) == 1;
            void *m = bigmem_alloc((size_t)3 << 20);
            ok &= m != NULL;
            bigmem_free(m);
            _exit(ok ? 0 : 1);
        }
        int st = 0;
        if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            bad++;
            fprintf(stderr, "fork child %d: %s %d\n", r, WIFSIGNALED(st) ? "signal" : "exit",
                    WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        }
    }
    atomic_store(&stop, 1);
    pthread_join(t, NULL);
    EXPECT(bad == 0, "%d of 8 forked children failed or hung using the pool and the allocator", bad);
}

/* ---- cpu_sgemm split over the pool (by rows and by columns, all transposes) ---- */

static void naive_gemm(int ta, int tb, int m, int n, int k, const float *a, int lda, const float *b,
                       int ldb, double *c) {
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double acc = 0;
            for (int p = 0; p < k; p++)
                acc += (double)(ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]);
            c[i * n + j] = acc;
        }
}

static void test_sgemm_split(void) {
    /* (m, n, k): 200x130 splits by rows, 130x200 by columns, both above the split threshold */
    static const int shapes[][3] = {{200, 130, 96}, {130, 200, 96}, {8, 4, 3}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
        float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * k * n);
        float *c = malloc(sizeof(float) * m * n);
        double *ref = malloc(sizeof(double) * m * n);
        if (!a || !b || !c || !ref) abort();
        for (int i = 0; i < m * k; i++) a[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
        for (int i = 0; i < k * n; i++) b[i] = (float)((i * 53) % 97) / 48.0f - 1.0f;
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                int lda = ta ? m : k, ldb = tb ? k : n;
                naive_gemm(ta, tb, m, n, k, a, lda, b, ldb, ref);
                for (int i = 0; i < m * n; i++) c[i] = 12345.0f; /* beta = 0 must overwrite */
                cpu_sgemm(NULL, ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, n);
                double worst = 0;
                for (int i = 0; i < m * n; i++) {
                    double d = c[i] - ref[i];
                    if (d < 0) d = -d;
                    if (d > worst) worst = d;
                }
                EXPECT(worst < 1e-3, "cpu_sgemm %dx%dx%d ta=%d tb=%d: off by %g", m, n, k, ta, tb, worst);
            }
        free(a);
        free(b);
        free(c);
        free(ref);
    }
}

int main(void) {
    setenv("ANE_CPU_THREADS", "4", 1); /* a pool larger than a 2-core machine's, for the limit */
    backend_register_builtin();
    cpu = backend_get("cpu");
    if (!cpu) {
        fprintf(stderr, "no cpu backend\n");
        return 1;
    }
    test_registry();
    test_views_run_nothing();
    test_folding_and_transpose_folds();
    test_arena_reuse_and_no_allocation();
    test_errors();
    test_budget();
    test_thread_lowered();
    test_kernel_drops_weight_bytes();
    test_pool();
    test_sgemm_split();
    test_lowered_stays_home();
    test_fork_child();
    test_thread_limit();
    printf("test_cpu_plan: %d checks, %d failures\n", checks, failures);
    return failures ? 1 : 0;
}
