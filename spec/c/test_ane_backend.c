/* test_ane_backend.c - the ane backend end to end against the stand-in framework.
 *
 * Compiles a program with a weight blob on "ane" and "cpu", evaluates both on the same input,
 * and checks: identical outputs (the stand-in executes with the CPU backend), zero-copy IOSurface
 * tensors (alloc_io) and copied heap tensors give the same result, the temp directory exists while
 * the kernel lives and is gone after free, and every stand-in object and surface is released.
 * First, in a child without $ANE_FRAMEWORK_PATH: off macOS nothing is loaded by default and the
 * backend says why; then the stand-in is loaded on purpose ($ANE_FRAMEWORK_PATH, or this build's
 * stand-in when the variable is unset) and its label says so. */
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend/ane/ane_backend.h"
#include "backend/ane/objc_bridge.h"
#include "backend/backend.h"
#include "core/storage.h"
#include "core/tensor.h"
#include "mil/mil.h"

static int failures;
#define CHECK(c)                                                              \
    do {                                                                      \
        if (!(c)) {                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); \
            failures++;                                                       \
        }                                                                     \
    } while (0)
#define OK(call)                                                                        \
    do {                                                                                \
        err_clear(&e);                                                                  \
        if ((call) != 0) {                                                              \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #call, e.msg); \
            exit(1);                                                                    \
        }                                                                               \
    } while (0)

static const char *prog_text =
    "program(1.3)\n"
    "{\n"
    "    func main<ios18>(tensor<fp16, [1, 8, 1, 32]> x) {\n"
    "        tensor<fp16, [1, 8, 1, 1]> w = const()[name = string(\"w\"), val = tensor<fp16, [1, 8, 1, 1]>"
    "(BLOBFILE(path = string(\"@model_path/weights/w.bin\"), offset = uint64(64)))];\n"
    "        tensor<fp16, [1, 8, 1, 32]> y0 = mul(x = x, y = w)[name = string(\"scale\")];\n"
    "        tensor<fp16, [1, 8, 1, 32]> y = add(x = y0, y = x)[name = string(\"res\")];\n"
    "    } -> (y);\n"
    "}\n";

static int (*live)(const char *);

static mil_program *make_program(ane_error *ep) {
    ane_error e;
    char dir[] = "/tmp/ane-test-XXXXXX";
    if (!mkdtemp(dir)) exit(1);
    char wdir[64], path[96];
    snprintf(wdir, sizeof wdir, "%s/weights", dir);
    mkdir(wdir, 0700);
    tensor w;
    int64_t shape[4] = {1, 8, 1, 1};
    OK(tensor_init(&w, DT_FP16, 4, shape, &e));
    for (int i = 0; i < 8; i++) tensor_set(&w, i, 0.5 * (i + 1));
    blob_writer *bw = blob_writer_new(&e);
    uint64_t off;
    OK(blob_writer_add(bw, &w, &off, &e));
    CHECK(off == 64);
    uint8_t *data;
    size_t n;
    OK(blob_writer_finish(bw, &data, &n, &e));
    snprintf(path, sizeof path, "%s/w.bin", wdir);
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, n, f);
    fclose(f);
    free(data);
    tensor_release(&w);
    mil_program *p = NULL;
    OK(mil_parse(prog_text, strlen(prog_text), "t.mil", NULL, &p, &e));
    OK(mil_resolve_weights(p, dir, &e));
    OK(mil_check(p, NULL, &e));
    remove(path);
    rmdir(wdir);
    rmdir(dir);
    (void)ep;
    return p;
}

static int dir_exists(const char *d) {
    struct stat st;
    return stat(d, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Off macOS, without $ANE_FRAMEWORK_PATH: unavailable, "not macOS", no stand-in label. Runs in a
 * child because the framework is opened once per process. */
static void check_default_is_none(void) {
#if !defined(__APPLE__)
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        unsetenv("ANE_FRAMEWORK_PATH");
        const backend *b = backend_get("ane");
        char why[512] = "", label[1200] = "", info[2048] = "";
        int bad = !b || b->available(why, sizeof why) ||
                  strcmp(why, "not macOS (Apple's private framework exists only there)") != 0 ||
                  b->label(label, sizeof label) != 0 || ob_framework_path() != NULL;
        b->info(info, sizeof info);
        bad = bad || !strstr(info, "framework=none\n") || !strstr(info, "standin=0\n");
        if (bad) fprintf(stderr, "default framework: why '%s', label '%s', info:\n%s", why, label, info);
        _exit(bad);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
#endif
}

/* Two threads evaluating one kernel on heap tensors (so every eval goes through the kernel's
 * staging surfaces): each must get its own result, every time. */
typedef struct evaler {
    const backend *be;
    kernel *k;
    double x;
    int wrong, failed;
} evaler;

static void *eval_loop(void *arg) {
    evaler *v = arg;
    ane_error e;
    tensor x, y;
    int64_t shape[4] = {1, 8, 1, 32};
    if (tensor_init(&x, DT_FP16, 4, shape, &e) || tensor_init(&y, DT_FP16, 4, shape, &e)) {
        v->failed++;
        return NULL;
    }
    for (int i = 0; i < 8 * 32; i++) tensor_set(&x, i, v->x);
    tensor *in[1] = {&x}, *out[1] = {&y};
    for (int it = 0; it < 400; it++) {
        if (v->be->eval(v->k, in, out, &e) != 0) {
            v->failed++;
            break;
        }
        for (int i = 0; i < 8 * 32; i++)
            if (fabs(tensor_get(&y, i) - v->x * (1 + 0.5 * (i / 32 + 1))) > 1e-2 * (1 + fabs(v->x * 5))) {
                v->wrong++;
                break;
            }
    }
    tensor_release(&x);
    tensor_release(&y);
    return NULL;
}

int main(void) {
    ane_error e;
    check_default_is_none();
#ifdef ANE_STANDIN_PATH
    if (!getenv("ANE_FRAMEWORK_PATH")) setenv("ANE_FRAMEWORK_PATH", ANE_STANDIN_PATH, 1); /* no thread yet */
#endif
    const backend *ane = backend_get("ane"), *cpu = backend_get("cpu");
    CHECK(ane && cpu);
    char label[1200] = "", want_label[1200];
    CHECK(ane->label && ane->label(label, sizeof label) == 1);
    snprintf(want_label, sizeof want_label, "ane (stand-in at %s)", getenv("ANE_FRAMEWORK_PATH"));
    CHECK(strcmp(label, want_label) == 0);
    char why[512] = "";
    if (!ane->available(why, sizeof why)) {
        fprintf(stderr, "ane unavailable: %s\n", why);
        return 1;
    }
    void *h = dlopen(ob_framework_path(), RTLD_NOW | RTLD_NOLOAD);
    CHECK(h != NULL);
    live = (int (*)(const char *))dlsym(h, "standin_live");
    CHECK(live != NULL);
    int base_objs = live("*"), base_surf = live("IOSurface");

    mil_program *p = make_program(&e);
    compile_opts o;
    compile_opts_default(&o);
    kernel *ka = NULL, *kc = NULL;
    OK(ane->compile(p, &o, &ka, &e));
    OK(cpu->compile(p, &o, &kc, &e));
    CHECK(ka->nin == 1 && ka->nout == 1 && ka->in[0].dt == DT_FP16);
    OK(ane->load(ka, &e));
    OK(cpu->load(kc, &e));

    ane_kernel_facts facts;
    OK(ane_kernel_facts_get(ka, &facts, &e));
    CHECK(strlen(facts.hex) > 10);
    CHECK(dir_exists(facts.dir));
    CHECK(facts.state == 3);

    /* Input on an IOSurface (zero copy), outputs on a surface and on the heap. */
    tensor xin, ya, yc, yh;
    OK(ane->alloc_io(ka, 0, 0, &xin, &e));
    CHECK(ane_storage_surface(xin.st) != NULL);
    CHECK(strcmp(xin.st->ops->kind, "iosurface") == 0);
    OK(storage_lock(xin.st, 0, &e));
    for (int i = 0; i < 8 * 32; i++) tensor_set(&xin, i, (i % 17) * 0.25 - 2);
    storage_unlock(xin.st, 0);
    OK(ane->alloc_io(ka, 1, 0, &ya, &e));
    int64_t oshape[4] = {1, 8, 1, 32};
    OK(tensor_init(&yc, DT_FP16, 4, oshape, &e));
    OK(tensor_init(&yh, DT_FP16, 4, oshape, &e));
    tensor *in[1] = {&xin}, *oa[1] = {&ya}, *oc[1] = {&yc}, *oh[1] = {&yh};
    OK(ane->eval(ka, in, oa, &e));
    OK(ane_kernel_facts_get(ka, &facts, &e));
    CHECK(facts.direct_inputs == 1 && facts.direct_outputs == 1);
    OK(ane->eval(ka, in, oh, &e));
    OK(ane_kernel_facts_get(ka, &facts, &e));
    CHECK(facts.direct_outputs == 0);
    OK(cpu->eval(kc, in, oc, &e));
    OK(storage_lock(ya.st, 1, &e));
    int diff = 0;
    for (int i = 0; i < 8 * 32; i++) {
        double a = tensor_get(&ya, i), c = tensor_get(&yc, i), hh = tensor_get(&yh, i);
        double want = ((i % 17) * 0.25 - 2) * (1 + 0.5 * (i / 32 + 1));
        if (a != c || a != hh || fabs(a - want) > 1e-2 * (1 + fabs(want))) diff++;
    }
    storage_unlock(ya.st, 1);
    CHECK(diff == 0);

    /* A second eval with the same surfaces reuses the request; a wrong shape is refused. */
    OK(ane->eval(ka, in, oa, &e));
    tensor bad;
    int64_t bshape[4] = {1, 8, 1, 16};
    OK(tensor_init(&bad, DT_FP16, 4, bshape, &e));
    tensor *ib[1] = {&bad};
    err_clear(&e);
    CHECK(ane->eval(ka, ib, oa, &e) != 0 && e.code == ERR_SHAPE);
    tensor_release(&bad);

    /* One kernel, two threads: evaluations are serialised, results never mixed. */
    evaler v[2] = {{ane, ka, 1.0, 0, 0}, {ane, ka, -2.0, 0, 0}};
    pthread_t th[2];
    for (int t = 0; t < 2; t++) CHECK(pthread_create(&th[t], NULL, eval_loop, &v[t]) == 0);
    for (int t = 0; t < 2; t++) pthread_join(th[t], NULL);
    CHECK(v[0].failed == 0 && v[1].failed == 0);
    CHECK(v[0].wrong == 0 && v[1].wrong == 0);

    char dir[1024];
    snprintf(dir, sizeof dir, "%s", facts.dir);
    ane->free(ka);
    cpu->free(kc);
    CHECK(!dir_exists(dir));
    tensor_release(&xin);
    tensor_release(&ya);
    tensor_release(&yc);
    tensor_release(&yh);
    mil_program_release(p);
    CHECK(live("*") == base_objs);
    CHECK(live("IOSurface") == base_surf);
    if (failures) fprintf(stderr, "%d failures\n", failures);
    return failures != 0;
}
