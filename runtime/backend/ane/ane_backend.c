/* ane_backend.c - compile, load, evaluate MIL programs on the Neural Engine (ane-private-api.md).
 *
 * The call order is the one every source uses (2.1): descriptor from MIL bytes + weights
 * dictionary, in-memory model, hexStringIdentifier, temp directory NSTemporaryDirectory()/hex
 * pre-populated with model.mil and the weights/ files, compileWithQoS:, loadWithQoS: with one retry
 * after 100 ms (6.2), then requests over IOSurfaces (4, 5.1) and evaluateWithQoS: (5.2). Every
 * entry point runs inside its own autorelease pool (10.5) and keeps only what it retained (10.4).
 * The teardown order is 5.3's: unload, release the request, release the model, release the
 * surfaces, remove the directory unless a live twin (same hex) still uses it, in this process or
 * in another: see "temp directories" below. */
#include "ane_backend.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "../../core/storage.h"
#include "../../mil/mil.h"
#include "ane_paths.h"
#include "objc_bridge.h"

#if defined(__APPLE__)
#if defined(ANE_CHECK_DARWIN)
#include "darwin_decls.h" /* make check-darwin: our own declarations of the Apple headers */
#else
#include <sys/sysctl.h>
#endif
#endif

/* Classes the core path cannot do without (section 1: the sources abort if any is missing). */
static const char *const required_classes[] = {"_ANEInMemoryModelDescriptor", "_ANEInMemoryModel",
                                               "_ANERequest", "_ANEIOSurfaceObject"};

/* Selectors, by receiver. */
#define SEL_DESC "modelWithMILText:weights:optionsPlist:"
#define SEL_MODEL "inMemoryModelWithDescriptor:"
#define SEL_HEX "hexStringIdentifier"
#define SEL_COMPILE "compileWithQoS:options:error:"
#define SEL_LOAD "loadWithQoS:options:error:"
#define SEL_EVAL "evaluateWithQoS:options:request:error:"
#define SEL_UNLOAD "unloadWithQoS:error:"
#define SEL_WRAP "objectWithIOSurface:"
#define SEL_REQUEST \
    "requestWithInputs:inputIndices:outputs:outputIndices:weightsBuffer:perfStats:procedureIndex:"
#define SEL_CLIENT "sharedConnection"
#define SEL_RT "evaluateRealTimeWithModel:options:request:error:"
#define SEL_PERF "statsWithHardwareExecutionNS:"

/* The exact C types of the calls (10.1). */
typedef ob_id (*F_cls_id3)(ob_id, ob_sel, ob_id, ob_id, ob_id);
typedef ob_id (*F_cls_id1)(ob_id, ob_sel, ob_id);
typedef ob_id (*F_id0)(ob_id, ob_sel);
typedef ob_bool (*F_qos_opt)(ob_id, ob_sel, unsigned, ob_id, ob_id *);
typedef ob_bool (*F_eval)(ob_id, ob_sel, unsigned, ob_id, ob_id, ob_id *);
typedef ob_bool (*F_unload)(ob_id, ob_sel, unsigned, ob_id *);
typedef ob_id (*F_wrap)(ob_id, ob_sel, ob_surface);
typedef ob_id (*F_req)(ob_id, ob_sel, ob_id, ob_id, ob_id, ob_id, ob_id, ob_id, ob_id);
typedef ob_bool (*F_rt)(ob_id, ob_sel, ob_id, ob_id, ob_id, ob_id *);
typedef ob_id (*F_perf)(ob_id, ob_sel, uint64_t);
typedef uint64_t (*F_u64)(ob_id, ob_sel);

#define MAX_IO 64

typedef struct ane_impl {
    ob_id model;                  /* retained _ANEInMemoryModel */
    char hex[256];
    char dir[1024];
    int procedure;
    unsigned qos;
    ane_eval_path path, last_path;
    unsigned perf_mask;
    int compile_number;
    storage *stage_in[MAX_IO], *stage_out[MAX_IO]; /* copies for tensors that are not surfaces */
    ob_id request;                /* retained; binds req_surf */
    void *req_surf[2 * MAX_IO];   /* CFRetain'ed surfaces of the cached request */
    int req_n;
    ob_id perf_stats;             /* retained _ANEPerformanceStats when perf_mask != 0 */
    uint64_t last_eval_ns, last_hw_ns;
    int have_hw_ns, direct_in, direct_out;
    long evals;
    /* One load, eval or unload of this kernel at a time: eval rebinds the cached request and the
     * staging surfaces, which two threads evaluating one kernel would corrupt. */
    pthread_mutex_t mu;
    int in_idx[MAX_IO], out_idx[MAX_IO]; /* request index of each declared input / output */
    const char *io_source;        /* see ane_kernel_facts */
    ane_io_order io_order;
    int io_configured;
} ane_impl;

static const backend ane_be;
static atomic_int framework_compiles;
static void resolve_io_indices(kernel *k);

/* ---- availability ---- */
static int avail_state = -1; /* -1 unknown, 0 no, 1 yes */
static char avail_why[512];
static pthread_mutex_t avail_mu = PTHREAD_MUTEX_INITIALIZER;

/* ANE_IO_ORDER, read once with the framework (the first touch of the backend), never again. */
static ane_io_order env_io_order = ANE_IO_DECLARATION;
static int env_io_order_set;

const char *ane_io_order_name(ane_io_order o) {
    return o == ANE_IO_NAME ? "name" : o == ANE_IO_SIZE ? "size" : "declaration";
}

int ane_io_order_parse(const char *s, ane_io_order *o) {
    if (!s) return -1;
    if (strcmp(s, "declaration") == 0) *o = ANE_IO_DECLARATION;
    else if (strcmp(s, "name") == 0) *o = ANE_IO_NAME;
    else if (strcmp(s, "size") == 0) *o = ANE_IO_SIZE;
    else return -1;
    return 0;
}

static int check_available(void) {
    pthread_mutex_lock(&avail_mu);
    if (avail_state < 0) {
        env_io_order_set = ane_io_order_parse(getenv("ANE_IO_ORDER"), &env_io_order) == 0;
        char why[512];
        if (!ob_open(why, sizeof why)) {
            snprintf(avail_why, sizeof avail_why, "%s", why);
            avail_state = 0;
        } else {
            avail_state = 1;
            for (size_t i = 0; i < sizeof required_classes / sizeof required_classes[0]; i++)
                if (!ob_class_named(required_classes[i])) {
                    snprintf(avail_why, sizeof avail_why, "class %s not found in %s",
                             required_classes[i], ob_framework_path());
                    avail_state = 0;
                    break;
                }
            /* The class methods of the core path must exist with the documented names. */
            static const char *const cm[][2] = {{"_ANEInMemoryModelDescriptor", SEL_DESC},
                                                {"_ANEInMemoryModel", SEL_MODEL},
                                                {"_ANERequest", SEL_REQUEST},
                                                {"_ANEIOSurfaceObject", SEL_WRAP}};
            for (size_t i = 0; avail_state == 1 && i < 4; i++)
                if (!ob_responds((ob_id)ob_class_named(cm[i][0]), cm[i][1])) {
                    snprintf(avail_why, sizeof avail_why, "+[%s %s] not found", cm[i][0], cm[i][1]);
                    avail_state = 0;
                }
        }
    }
    int ok = avail_state;
    pthread_mutex_unlock(&avail_mu);
    return ok;
}

static int ane_available(char *why, size_t n) {
    int ok = check_available();
    if (!ok && why && n) snprintf(why, n, "%s", avail_why);
    return ok;
}

static int need_available(const char *what, ane_error *e) {
    if (check_available()) return 0;
    return err_set(e, ERR_UNSUPPORTED, "%s: ane backend unavailable: %s (use the cpu backend)",
                   what, avail_why);
}

/* ---- temp directories: identical programs share one hex (2.3), across processes too ----
 *
 * The directory is the framework's choice, NSTemporaryDirectory()/hex (the compiler writes its
 * output there: 2.3), and the hex is content-derived (notes 9.1): two processes compiling the same
 * program share it, and removing it when one of them frees its kernel would pull it from under the
 * other. So the users of a directory are counted twice:
 *  - in this process, by path (dirs[]: one entry per directory, refs = live kernels);
 *  - across processes, by the kernel: every process with a live kernel holds a shared flock(2) on
 *    DIR.lock beside the directory (one descriptor per process and directory). A process dropping
 *    its last kernel releases its shared lock and tries for an exclusive one without waiting: only
 *    when no other process holds the lock does it remove the directory and then DIR.lock, before
 *    closing. A process that opened DIR.lock meanwhile waits for that close, sees the name no
 *    longer leads to the file it locked, and starts again on a new DIR.lock. Locks die with their
 *    process, so a crashed user never keeps the directory alive; it only leaves it behind, as
 *    before, for the next user to reuse and remove.
 * Every file is replaced atomically (write_file: temporary name + rename), so a twin compiling at
 * the same moment, in this process or another, never reads a half-written model.mil. */
typedef struct dir_ref { char path[1024]; int refs; int fd; pid_t pid; } dir_ref;
static dir_ref dirs[256];
static pthread_mutex_t dir_mu = PTHREAD_MUTEX_INITIALIZER;

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

static void rm_rf(const char *path) { nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static int mkdir_p(const char *path, ane_error *e) {
    char buf[1200];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return err_set(e, ERR_IO, "ane: mkdir %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST)
        return err_set(e, ERR_IO, "ane: mkdir %s: %s", buf, strerror(errno));
    return 0;
}

/* Replace path atomically (a temporary name beside it, then rename): a twin reading the file
 * sees the old bytes or the new ones, never a truncated file. */
static int write_file(const char *path, const void *data, size_t n, ane_error *e) {
    static atomic_uint seq;
    char tmp[1500];
    snprintf(tmp, sizeof tmp, "%s.tmp-%ld-%u", path, (long)getpid(), atomic_fetch_add(&seq, 1));
    FILE *f = fopen(tmp, "wb");
    if (!f) return err_set(e, ERR_IO, "ane: cannot write %s: %s", tmp, strerror(errno));
    size_t w = n ? fwrite(data, 1, n, f) : 0;
    int bad = fclose(f) != 0 || w != n;
    if (bad) {
        remove(tmp);
        return err_set(e, ERR_IO, "ane: short write to %s", tmp);
    }
    if (rename(tmp, path) != 0) {
        int err = errno;
        remove(tmp);
        return err_set(e, ERR_IO, "ane: cannot rename %s to %s: %s", tmp, path, strerror(err));
    }
    return 0;
}

/* A shared lock on path.lock that the name still leads to (see above); -1 and e on failure. */
static int lock_shared(const char *path, ane_error *e) {
    char lock[1100], parent[1100];
    snprintf(lock, sizeof lock, "%s.lock", path);
    snprintf(parent, sizeof parent, "%s", path);
    char *slash = strrchr(parent, '/');
    if (slash && slash != parent) {
        *slash = '\0';
        if (mkdir_p(parent, e)) return -1;
    }
    for (int attempt = 0; attempt < 1000; attempt++) {
        int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0) {
            err_set(e, ERR_IO, "ane: cannot open %s: %s", lock, strerror(errno));
            return -1;
        }
        int rc;
        while ((rc = flock(fd, LOCK_SH)) != 0 && errno == EINTR) {
        }
        if (rc != 0) {
            err_set(e, ERR_IO, "ane: cannot lock %s: %s", lock, strerror(errno));
            close(fd);
            return -1;
        }
        struct stat held, named;
        if (fstat(fd, &held) == 0 && stat(lock, &named) == 0 && held.st_dev == named.st_dev &&
            held.st_ino == named.st_ino)
            return fd;
        close(fd); /* its last user removed it while we waited: lock the new one */
    }
    err_set(e, ERR_IO, "ane: %s keeps being replaced", lock);
    return -1;
}

/* Count a kernel as a user of the directory path (creating nothing but path.lock). */
static int dir_acquire(const char *path, ane_error *e) {
    pthread_mutex_lock(&dir_mu);
    pid_t me = getpid();
    int free_slot = -1;
    for (int i = 0; i < 256; i++) {
        if (dirs[i].refs && dirs[i].pid != me) { /* inherited through fork: the parent's users */
            close(dirs[i].fd);
            dirs[i].refs = 0;
        }
        if (dirs[i].refs && strcmp(dirs[i].path, path) == 0) {
            dirs[i].refs++;
            pthread_mutex_unlock(&dir_mu);
            return 0;
        }
        if (!dirs[i].refs && free_slot < 0) free_slot = i;
    }
    int rc = 0;
    if (free_slot < 0) {
        rc = err_set(e, ERR_UNSUPPORTED, "compile: more than 256 distinct live ane kernels");
    } else {
        int fd = lock_shared(path, e);
        if (fd < 0) {
            rc = e->code;
        } else {
            snprintf(dirs[free_slot].path, sizeof dirs[free_slot].path, "%s", path);
            dirs[free_slot].refs = 1;
            dirs[free_slot].fd = fd;
            dirs[free_slot].pid = me;
        }
    }
    pthread_mutex_unlock(&dir_mu);
    return rc;
}

/* Drop one user; the last one in the last process removes the directory (and path.lock). */
static void dir_release(const char *path) {
    if (!path[0]) return;
    pthread_mutex_lock(&dir_mu);
    pid_t me = getpid();
    for (int i = 0; i < 256; i++) {
        if (!dirs[i].refs || dirs[i].pid != me || strcmp(dirs[i].path, path) != 0) continue;
        if (--dirs[i].refs == 0) {
            flock(dirs[i].fd, LOCK_UN);
            if (flock(dirs[i].fd, LOCK_EX | LOCK_NB) == 0) { /* no other process uses it */
                char lock[1100];
                snprintf(lock, sizeof lock, "%s.lock", path);
                rm_rf(path);
                unlink(lock);
            }
            close(dirs[i].fd);
        }
        break;
    }
    pthread_mutex_unlock(&dir_mu);
}

/* "@model_path/weights/w.bin" -> "weights/w.bin"; NULL for keys the framework cannot map or
 * that would escape the directory. */
static const char *weight_rel(const char *key) {
    static const char prefix[] = "@model_path/";
    if (strncmp(key, prefix, sizeof prefix - 1) != 0) return NULL;
    const char *rel = key + sizeof prefix - 1;
    if (!*rel || rel[0] == '/' || strstr(rel, "..")) return NULL;
    return rel;
}

/* Write model.mil and every weight file (2.3). */
static int populate_dir(const char *dir, const char *mil, size_t mil_len, const mil_program *p,
                        ane_error *e) {
    char path[1400];
    snprintf(path, sizeof path, "%s/weights", dir);
    int rc = mkdir_p(path, e);
    if (rc) return rc;
    snprintf(path, sizeof path, "%s/model.mil", dir);
    if ((rc = write_file(path, mil, mil_len, e))) return rc;
    for (int i = 0; i < p->nblobs; i++) {
        const char *rel = weight_rel(p->blobs[i].path);
        snprintf(path, sizeof path, "%s/%s", dir, rel);
        char *slash = strrchr(path, '/');
        *slash = '\0';
        if ((rc = mkdir_p(path, e))) return rc;
        *slash = '/';
        if ((rc = write_file(path, p->blobs[i].data, p->blobs[i].size, e))) return rc;
    }
    return 0;
}

/* ---- kernel description from the MIL function ---- */
static int io_from_value(const mil_function *f, int v, kernel_io *io, const char *what,
                         ane_error *e) {
    const mil_value *val = &f->values[v];
    io->name = val->name ? val->name : "?";
    if (val->type.kind != MIL_T_TENSOR)
        return err_set(e, ERR_UNSUPPORTED, "compile: %s '%s' is not a tensor", what, io->name);
    switch (val->type.dtype) {
    case MIL_FP16: io->dt = DT_FP16; break;
    case MIL_FP32: io->dt = DT_FP32; break;
    default:
        return err_set(e, ERR_UNSUPPORTED,
                       "compile: %s '%s' is %s; the ANE takes fp16 or fp32 at the boundary "
                       "(ane-private-api.md 4.4)",
                       what, io->name, mil_dtype_name(val->type.dtype));
    }
    if (val->type.rank < 1 || val->type.rank > TENSOR_MAX_RANK)
        return err_set(e, ERR_SHAPE, "compile: %s '%s' has rank %d (1..%d supported)", what,
                       io->name, val->type.rank, TENSOR_MAX_RANK);
    io->rank = val->type.rank;
    for (int d = 0; d < io->rank; d++) {
        if (val->type.shape[d] < 1)
            return err_set(e, ERR_SHAPE, "compile: %s '%s' has an unknown dimension", what,
                           io->name);
        io->shape[d] = val->type.shape[d];
    }
    return shape_check(io->rank, io->shape, io->dt, e);
}

static size_t io_bytes(const kernel_io *io) {
    return (size_t)shape_numel(io->rank, io->shape) * dtype_size(io->dt);
}

/* ---- compile ---- */
static void impl_drop_request(ane_impl *im) {
    const ob_env *env = ob_open(NULL, 0);
    ob_release(im->request);
    im->request = NULL;
    for (int i = 0; i < im->req_n; i++)
        if (im->req_surf[i] && env) env->rt.CFRelease(im->req_surf[i]);
    im->req_n = 0;
}

static void kernel_destroy(kernel *k) {
    if (!k) return;
    ane_impl *im = k->impl;
    if (im) {
        ob_id pool = ob_pool_push();
        impl_drop_request(im);
        ob_release(im->perf_stats);
        ob_release(im->model);
        ob_pool_pop(pool);
        for (int i = 0; i < MAX_IO; i++) {
            storage_release(im->stage_in[i]);
            storage_release(im->stage_out[i]);
        }
        dir_release(im->dir);
        pthread_mutex_destroy(&im->mu);
        free(im);
    }
    free(k->in);
    free(k->out);
    mil_program_release(k->prog);
    free(k);
}

static const char *nserror(ob_id err, char *buf, size_t n) { return ob_error_text(err, buf, n); }

/* The hint every compile failure carries once the process is near the documented limit. */
static void budget_hint(ane_error *e) {
    int used = backend_compiles_used();
    if (used >= 100)
        err_prefix(e, "after %d compiles in this process (the ANE fails compiles after ~119 per "
                      "process, ane-private-api.md 6.1: save state and restart the process, or "
                      "compile fewer kernels): ",
                   used);
}

static int ane_compile(mil_program *p, const compile_opts *o, kernel **out, ane_error *e) {
    *out = NULL;
    int rc = need_available("compile", e);
    if (rc) return rc;
    if (!p) return err_set(e, ERR_INVAL, "compile: no program");
    const char *fname = (o && o->function) ? o->function : "main";
    int fi = -1;
    for (int i = 0; i < p->nfuncs; i++)
        if (strcmp(p->funcs[i].name, fname) == 0) fi = i;
    if (fi < 0) return err_set(e, ERR_INVAL, "compile: program has no function '%s'", fname);
    const mil_function *f = &p->funcs[fi];
    if (f->nparams > MAX_IO || f->nouts > MAX_IO)
        return err_set(e, ERR_UNSUPPORTED, "compile: more than %d inputs or outputs", MAX_IO);
    for (int i = 0; i < p->nblobs; i++)
        if (!weight_rel(p->blobs[i].path))
            return err_set(e, ERR_UNSUPPORTED,
                           "compile: weight file '%s' must be @model_path/<relative path> "
                           "(ane-private-api.md 2.4)",
                           p->blobs[i].path);

    kernel *k = calloc(1, sizeof *k);
    ane_impl *im = calloc(1, sizeof *im);
    if (!k || !im) {
        free(k);
        free(im);
        return err_set(e, ERR_NOMEM, "compile: out of memory");
    }
    k->be = &ane_be;
    pthread_mutex_init(&im->mu, NULL);
    k->impl = im;
    mil_program_retain(p);
    k->prog = p;
    im->procedure = fi;
    im->qos = (o && o->qos) ? o->qos : 21;
    k->nin = f->nparams;
    k->nout = f->nouts;
    k->in = calloc((size_t)(k->nin ? k->nin : 1), sizeof *k->in);
    k->out = calloc((size_t)(k->nout ? k->nout : 1), sizeof *k->out);
    if (!k->in || !k->out) {
        kernel_destroy(k);
        return err_set(e, ERR_NOMEM, "compile: out of memory");
    }
    for (int i = 0; i < k->nin; i++)
        if ((rc = io_from_value(f, f->params[i], &k->in[i], "input", e))) goto fail_nopool;
    for (int i = 0; i < k->nout; i++)
        if ((rc = io_from_value(f, f->outs[i], &k->out[i], "output", e))) goto fail_nopool;
    kernel_warn_rows(k);

    /* The budget is counted before the framework is asked (6.1). */
    if ((rc = backend_take_compile(e))) goto fail_nopool;

    char *mil = NULL;
    size_t mil_len = 0;
    /* The source's own dialect (a program(1.0) stays 1.0 with its <ios16> functions) and always a
     * [buildInfo], as every program the references sent carried one. */
    const mil_print_opts po = {MIL_DIALECT_SOURCE, 1};
    if ((rc = mil_print(p, &po, &mil, &mil_len, e))) goto fail_nopool;

    ob_id pool = ob_pool_push();
    char msg[900];
    ob_id keys[256], vals[256];
    if (p->nblobs > 256) {
        rc = err_set(e, ERR_UNSUPPORTED, "compile: more than 256 weight files");
        goto fail;
    }
    /* { "@model_path/weights/w.bin": { "offset": 0, "data": <bytes> }, ... } (2.4) */
    for (int i = 0; i < p->nblobs; i++) {
        ob_id ek[2], ev[2];
        if (!(ek[0] = ob_new_string("offset", e)) || !(ev[0] = ob_new_u64(0, e)) ||
            !(ek[1] = ob_new_string("data", e)) ||
            !(ev[1] = ob_new_data(p->blobs[i].data, p->blobs[i].size, e)) ||
            !(keys[i] = ob_new_string(p->blobs[i].path, e)) ||
            !(vals[i] = ob_new_dict(ek, ev, 2, e))) {
            rc = e->code;
            goto fail;
        }
    }
    ob_id wdict = ob_new_dict(keys, vals, (size_t)p->nblobs, e);
    ob_id mil_data = ob_new_data(mil, mil_len, e);
    ob_id opts = ob_new_dict(NULL, NULL, 0, e);
    if (!wdict || !mil_data || !opts) {
        rc = e->code;
        goto fail;
    }
    ob_id dcls = (ob_id)ob_class_named("_ANEInMemoryModelDescriptor");
    ob_sel s = ob_selector(SEL_DESC);
    ob_id desc = ((F_cls_id3)ob_lookup(dcls, s))(dcls, s, mil_data, wdict, NULL);
    if (!desc) {
        rc = err_set(e, ERR_BACKEND, "compile: +[_ANEInMemoryModelDescriptor " SEL_DESC
                                     "] returned nil");
        goto fail;
    }
    ob_id mcls = (ob_id)ob_class_named("_ANEInMemoryModel");
    s = ob_selector(SEL_MODEL);
    ob_id model = ((F_cls_id1)ob_lookup(mcls, s))(mcls, s, desc);
    if (!model) {
        rc = err_set(e, ERR_BACKEND, "compile: +[_ANEInMemoryModel " SEL_MODEL "] returned nil");
        goto fail;
    }
    im->model = ob_retain(model);
    s = ob_selector(SEL_HEX);
    ob_imp fhex = ob_lookup(model, s);
    if (fhex) ob_string_get(((F_id0)fhex)(model, s), im->hex, sizeof im->hex);
    if (!im->hex[0] || strchr(im->hex, '/')) {
        rc = err_set(e, ERR_BACKEND, "compile: model has no usable hexStringIdentifier ('%s')",
                     im->hex);
        goto fail;
    }
    char tmp[900];
    const ob_env *env = ob_open(NULL, 0);
    ob_string_get(env->rt.NSTemporaryDirectory(), tmp, sizeof tmp);
    if (!tmp[0]) {
        rc = err_set(e, ERR_BACKEND, "compile: NSTemporaryDirectory() returned nothing");
        goto fail;
    }
    size_t tl = strlen(tmp);
    snprintf(im->dir, sizeof im->dir, "%s%s%s", tmp, tmp[tl - 1] == '/' ? "" : "/", im->hex);
    if ((rc = dir_acquire(im->dir, e))) {
        im->dir[0] = '\0'; /* not ours to release */
        goto fail;
    }
    if ((rc = populate_dir(im->dir, mil, mil_len, p, e))) goto fail;

    s = ob_selector(SEL_COMPILE);
    ob_imp fc = ob_lookup(model, s);
    if (!fc) {
        rc = err_set(e, ERR_BACKEND, "compile: -[_ANEInMemoryModel " SEL_COMPILE "] not found");
        goto fail;
    }
    ob_id err = NULL;
    im->compile_number = atomic_fetch_add(&framework_compiles, 1) + 1;
    if (!((F_qos_opt)fc)(model, s, im->qos, opts, &err)) {
        rc = err_set(e, ERR_BACKEND, "compile: ANE compile failed: %s", nserror(err, msg, sizeof msg));
        budget_hint(e);
        goto fail;
    }
    ob_pool_pop(pool);
    free(mil);
    *out = k;
    return 0;

fail:
    ob_pool_pop(pool);
    free(mil);
fail_nopool:
    kernel_destroy(k);
    return rc;
}

/* ---- load / unload ---- */
static int do_load(kernel *k, ane_error *e) {
    ane_impl *im = k->impl;
    ob_id pool = ob_pool_push();
    char msg[900], first[900];
    int rc = 0;
    ob_id opts = ob_new_dict(NULL, NULL, 0, e);
    ob_sel s = ob_selector(SEL_LOAD);
    ob_imp f = ob_lookup(im->model, s);
    if (!opts || !f) {
        rc = opts ? err_set(e, ERR_BACKEND, "load: -[_ANEInMemoryModel " SEL_LOAD "] not found")
                  : e->code;
        goto out;
    }
    ob_id err = NULL;
    if (!((F_qos_opt)f)(im->model, s, im->qos, opts, &err)) {
        /* M:bridge: one retry after 100 ms for ANE slot reclamation (6.2). */
        nserror(err, first, sizeof first);
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        err = NULL;
        if (!((F_qos_opt)f)(im->model, s, im->qos, opts, &err)) {
            rc = err_set(e, ERR_BACKEND, "load: ANE load failed twice (retried after 100 ms): %s "
                                         "(first attempt: %s)",
                         nserror(err, msg, sizeof msg), first);
            goto out;
        }
    }
    if (im->perf_mask) {
        ob_id num = ob_new_u64(im->perf_mask, e);
        /* perfStatsMask is settable on real models (E:cv2); absent -> stats stay off. */
        if (num && ob_set_value_for_key(im->model, num, "perfStatsMask", NULL) == 0 &&
            !im->perf_stats) {
            ob_id pc = (ob_id)ob_class_named("_ANEPerformanceStats");
            ob_sel ps = ob_selector(SEL_PERF);
            ob_imp pf = pc ? ob_lookup(pc, ps) : NULL;
            if (pf) im->perf_stats = ob_retain(((F_perf)pf)(pc, ps, 0));
        }
    }
    k->loaded = 1;
    resolve_io_indices(k);
out:
    ob_pool_pop(pool);
    return rc;
}

static int ane_load(kernel *k, ane_error *e) {
    if (!k || !k->impl) return err_set(e, ERR_STATE, "load: kernel is closed");
    ane_impl *im = k->impl;
    pthread_mutex_lock(&im->mu);
    int rc = k->loaded ? 0 : do_load(k, e);
    pthread_mutex_unlock(&im->mu);
    return rc;
}

static int do_unload(kernel *k, ane_error *e) {
    ane_impl *im = k->impl;
    ob_id pool = ob_pool_push();
    int rc = 0;
    ob_sel s = ob_selector(SEL_UNLOAD);
    ob_imp f = ob_lookup(im->model, s);
    ob_id err = NULL;
    char msg[900];
    if (!f) rc = err_set(e, ERR_BACKEND, "unload: -[_ANEInMemoryModel " SEL_UNLOAD "] not found");
    else if (!((F_unload)f)(im->model, s, im->qos, &err))
        rc = err_set(e, ERR_BACKEND, "unload: ANE unload failed: %s", nserror(err, msg, sizeof msg));
    /* Then the request (5.3 order); it is tied to one load (M:reload rebuilds it). */
    impl_drop_request(im);
    k->loaded = 0;
    ob_pool_pop(pool);
    return rc;
}

static int ane_unload(kernel *k, ane_error *e) {
    if (!k || !k->impl) return err_set(e, ERR_STATE, "unload: kernel is closed");
    ane_impl *im = k->impl;
    pthread_mutex_lock(&im->mu);
    int rc = k->loaded ? do_unload(k, e) : 0;
    pthread_mutex_unlock(&im->mu);
    return rc;
}

static void ane_free(kernel *k) {
    if (!k) return;
    if (k->loaded && k->impl) do_unload(k, NULL);
    kernel_destroy(k);
}

/* ---- evaluation ---- */
static int stage(storage **slot, size_t nbytes, ane_error *e) {
    if (*slot) return 0;
    *slot = ane_surface_storage_new(nbytes, e);
    return *slot ? 0 : e->code;
}

/* The surface to hand the ANE for tensor t: its own, if it is one of ours of exactly the tensor's
 * size, else a staging surface of that size (copied into for inputs). Exact: every reference
 * binds surfaces the size of the I/O tensor, and a larger one (a view at the start of a bigger
 * surface) has never been seen to run. */
static void *pick_surface(const tensor *t, storage **stage_slot, size_t nbytes, int is_input,
                          int *direct, ane_error *e) {
    void *s = ane_storage_surface(t->st);
    if (s && t->offset == 0 && t->st->nbytes == nbytes) {
        (*direct)++;
        return s;
    }
    if (stage(stage_slot, nbytes, e)) return NULL;
    if (is_input) {
        if (storage_lock(t->st, 1, e)) return NULL;
        if (storage_lock(*stage_slot, 0, e)) {
            storage_unlock(t->st, 1);
            return NULL;
        }
        memcpy((*stage_slot)->data, tensor_data(t), nbytes);
        storage_unlock(*stage_slot, 0);
        storage_unlock(t->st, 1);
    }
    return ane_storage_surface(*stage_slot);
}

static ob_id index_array(const int *idx, int n, ane_error *e) {
    ob_id v[MAX_IO];
    for (int i = 0; i < n; i++)
        if (!(v[i] = ob_new_u64((uint64_t)idx[i], e))) return NULL;
    return ob_new_array(v, (size_t)n, e);
}

/* idx[i] = the position of io[i] in `order` (stable; ties keep declaration order). */
static void order_indices(const kernel_io *io, int n, ane_io_order order, int *idx) {
    for (int i = 0; i < n; i++) {
        int r = 0;
        for (int j = 0; j < n; j++) {
            int before;
            if (order == ANE_IO_NAME) {
                int c = strcmp(io[j].name, io[i].name);
                before = c < 0 || (c == 0 && j < i);
            } else if (order == ANE_IO_SIZE) {
                size_t a = io_bytes(&io[j]), b = io_bytes(&io[i]);
                before = a < b || (a == b && j < i);
            } else {
                before = j < i;
            }
            r += before;
        }
        idx[i] = r;
    }
}

/* Names in the model's own symbol table, if the framework publishes one (field notes 5.1:
 * modelAttributes[ANEFModelDescription].InputSymbols / OutputSymbols, outputs "y@output"). */
static int described_indices(ob_id syms, const kernel_io *io, int n, int is_out, int *idx) {
    size_t ns = ob_array_count(syms);
    if (ns < (size_t)n) return 0;
    for (int i = 0; i < n; i++) {
        idx[i] = -1;
        for (size_t s = 0; s < ns && idx[i] < 0; s++) {
            char buf[300], want[300];
            const char *name = ob_string_get(ob_array_at(syms, s), buf, sizeof buf);
            snprintf(want, sizeof want, "%s@output", io[i].name);
            if (name && (strcmp(name, io[i].name) == 0 || (is_out && strcmp(name, want) == 0))) idx[i] = (int)s;
        }
        if (idx[i] < 0) return 0;
    }
    return 1;
}

/* Settle the request indices after a load: a configured order wins; else the model's own
 * description; else ANE_IO_ORDER; else declaration order, said to be assumed. */
static void resolve_io_indices(kernel *k) {
    ane_impl *im = k->impl;
    if (!im->io_configured) {
        ob_id pool = ob_pool_push();
        ob_id am = ob_responds(im->model, "model") ? ob_value_for_key(im->model, "model", NULL) : NULL;
        ob_id attrs = am && ob_responds(am, "modelAttributes") ? ob_value_for_key(am, "modelAttributes", NULL) : NULL;
        ob_id desc = ob_dict_get(attrs, "ANEFModelDescription");
        int ok = desc && described_indices(ob_dict_get(desc, "InputSymbols"), k->in, k->nin, 0, im->in_idx) &&
                 described_indices(ob_dict_get(desc, "OutputSymbols"), k->out, k->nout, 1, im->out_idx);
        ob_pool_pop(pool);
        if (ok) {
            im->io_source = "description";
            return;
        }
        im->io_order = env_io_order_set ? env_io_order : ANE_IO_DECLARATION;
        im->io_source = env_io_order_set ? "ANE_IO_ORDER" : "assumed";
    } else {
        im->io_source = "configured";
    }
    order_indices(k->in, k->nin, im->io_order, im->in_idx);
    order_indices(k->out, k->nout, im->io_order, im->out_idx);
}

static ob_id wrap_array(void *const *surf, int n, ane_error *e) {
    ob_id cls = (ob_id)ob_class_named("_ANEIOSurfaceObject");
    ob_sel s = ob_selector(SEL_WRAP);
    ob_imp f = ob_lookup(cls, s);
    ob_id v[MAX_IO];
    for (int i = 0; i < n; i++)
        if (!(v[i] = ((F_wrap)f)(cls, s, surf[i]))) {
            err_set(e, ERR_BACKEND, "eval: +[_ANEIOSurfaceObject " SEL_WRAP "] returned nil");
            return NULL;
        }
    return ob_new_array(v, (size_t)n, e);
}

/* Build (or reuse) the request binding surf[0..nin) as inputs 0..nin-1 and the rest as outputs
 * 0..nout-1 (4.5: output k <-> index k <-> k-th returned value). */
static int get_request(kernel *k, void *const *surf, ane_error *e) {
    ane_impl *im = k->impl;
    int n = k->nin + k->nout;
    if (im->request && im->req_n == n && memcmp(im->req_surf, surf, (size_t)n * sizeof *surf) == 0)
        return 0;
    impl_drop_request(im);
    ob_id ins = wrap_array(surf, k->nin, e);
    ob_id outs = ins ? wrap_array(surf + k->nin, k->nout, e) : NULL;
    ob_id iidx = outs ? index_array(im->in_idx, k->nin, e) : NULL;
    ob_id oidx = iidx ? index_array(im->out_idx, k->nout, e) : NULL;
    ob_id proc = oidx ? ob_new_u64((uint64_t)im->procedure, e) : NULL;
    ob_id perf = NULL;
    if (proc && im->perf_stats && !(perf = ob_new_array(&im->perf_stats, 1, e))) proc = NULL;
    if (!proc) return e->code;
    ob_id cls = (ob_id)ob_class_named("_ANERequest");
    ob_sel s = ob_selector(SEL_REQUEST);
    ob_id req = ((F_req)ob_lookup(cls, s))(cls, s, ins, iidx, outs, oidx, NULL, perf, proc);
    if (!req) return err_set(e, ERR_BACKEND, "eval: +[_ANERequest requestWith...] returned nil");
    im->request = ob_retain(req);
    /* Our own reference on every bound surface while the request lives (10.4: never rely on
     * the wrapper retaining it). */
    const ob_env *env = ob_open(NULL, 0);
    for (int i = 0; i < n; i++) im->req_surf[i] = (void *)env->rt.CFRetain(surf[i]);
    im->req_n = n;
    return 0;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int eval_locked(kernel *k, tensor *const *in, tensor *const *out, ane_error *e) {
    int rc = kernel_check_io(k, in, out, e); /* under the lock: an unload may have just run */
    if (rc) return rc;
    ane_impl *im = k->impl;
    ob_id pool = ob_pool_push();
    void *surf[2 * MAX_IO];
    char msg[900];
    im->direct_in = im->direct_out = 0;
    for (int i = 0; i < k->nin; i++)
        if (!(surf[i] = pick_surface(in[i], &im->stage_in[i], io_bytes(&k->in[i]), 1,
                                     &im->direct_in, e))) {
            rc = e->code;
            goto out;
        }
    for (int i = 0; i < k->nout; i++)
        if (!(surf[k->nin + i] = pick_surface(out[i], &im->stage_out[i], io_bytes(&k->out[i]), 0,
                                              &im->direct_out, e))) {
            rc = e->code;
            goto out;
        }
    if ((rc = get_request(k, surf, e))) goto out;
    ob_id opts = ob_new_dict(NULL, NULL, 0, e);
    if (!opts) {
        rc = e->code;
        goto out;
    }
    ob_id err = NULL;
    ob_bool ok = 0;
    uint64_t t0 = now_ns();
    im->last_path = ANE_EVAL_STANDARD;
    if (im->path == ANE_EVAL_REALTIME) {
        /* +[_ANEClient sharedConnection] -evaluateRealTimeWithModel:... ; E:rt falls back to the
         * standard path when it returns NO (5.2). */
        ob_id ccls = (ob_id)ob_class_named("_ANEClient");
        ob_sel cs = ob_selector(SEL_CLIENT), rs = ob_selector(SEL_RT);
        ob_imp cf = ccls ? ob_lookup(ccls, cs) : NULL;
        ob_id client = cf ? ((F_id0)cf)(ccls, cs) : NULL;
        ob_imp rf = client ? ob_lookup(client, rs) : NULL;
        if (rf && ((F_rt)rf)(client, rs, im->model, opts, im->request, &err)) {
            ok = 1;
            im->last_path = ANE_EVAL_REALTIME;
        }
        err = NULL;
    }
    if (!ok) {
        ob_sel s = ob_selector(SEL_EVAL);
        ob_imp f = ob_lookup(im->model, s);
        if (!f) {
            rc = err_set(e, ERR_BACKEND, "eval: -[_ANEInMemoryModel " SEL_EVAL "] not found");
            goto out;
        }
        ok = ((F_eval)f)(im->model, s, im->qos, opts, im->request, &err);
    }
    im->last_eval_ns = now_ns() - t0;
    if (!ok) {
        rc = err_set(e, ERR_BACKEND, "eval: ANE evaluate failed: %s", nserror(err, msg, sizeof msg));
        goto out;
    }
    im->evals++;
    im->have_hw_ns = 0;
    /* hwExecutionTime is an unsigned long long property ("Q16@0:8"; maderix m5result.md,
     * dev-erik reads it by KVC), 0 when the OS did not fill it. Called by its own encoding: a
     * class that answers an object instead is read as an NSNumber, anything else is ignored. */
    const char *enc = im->perf_stats ? ob_encoding(im->perf_stats, "hwExecutionTime") : NULL;
    if (enc) {
        ob_sel s = ob_selector("hwExecutionTime");
        uint64_t ns = 0;
        if (enc[0] == 'Q' || enc[0] == 'q') ns = ((F_u64)ob_lookup(im->perf_stats, s))(im->perf_stats, s);
        else if (enc[0] == '@') ns = ob_number_u64(((F_id0)ob_lookup(im->perf_stats, s))(im->perf_stats, s));
        im->have_hw_ns = ns != 0;
        im->last_hw_ns = ns;
    }
    for (int i = 0; i < k->nout; i++) {
        if (ane_storage_surface(out[i]->st) == surf[k->nin + i] && out[i]->offset == 0) continue;
        storage *sg = im->stage_out[i];
        size_t nb = io_bytes(&k->out[i]);
        if ((rc = storage_lock(sg, 1, e))) goto out;
        if ((rc = storage_lock(out[i]->st, 0, e))) {
            storage_unlock(sg, 1);
            goto out;
        }
        memcpy(tensor_data(out[i]), sg->data, nb);
        storage_unlock(out[i]->st, 0);
        storage_unlock(sg, 1);
    }
out:
    ob_pool_pop(pool);
    return rc;
}

/* Evaluations of one kernel from several threads run one after another (im->mu). */
static int ane_eval(kernel *k, tensor *const *in, tensor *const *out, ane_error *e) {
    if (!k) return err_set(e, ERR_STATE, "eval: kernel is closed");
    if (k->be != &ane_be) return err_set(e, ERR_INVAL, "eval: not an ane kernel");
    ane_impl *im = k->impl;
    pthread_mutex_lock(&im->mu);
    int rc = eval_locked(k, in, out, e);
    pthread_mutex_unlock(&im->mu);
    return rc;
}

static int ane_alloc_io(kernel *k, int is_output, int idx, tensor *t, ane_error *e) {
    if (!k || k->be != &ane_be) return err_set(e, ERR_INVAL, "alloc_io: not an ane kernel");
    int n = is_output ? k->nout : k->nin;
    if (idx < 0 || idx >= n)
        return err_set(e, ERR_INVAL, "alloc_io: %s %d out of range (kernel has %d)",
                       is_output ? "output" : "input", idx + 1, n);
    const kernel_io *io = is_output ? &k->out[idx] : &k->in[idx];
    storage *st = ane_surface_storage_new(io_bytes(io), e);
    if (!st) return e->code;
    int rc = tensor_init_on(t, st, 0, io->dt, io->rank, io->shape, e);
    storage_release(st); /* the tensor holds it now (or nobody, on failure) */
    return rc;
}

/* ---- facts for `ane info` ---- */
static void platform_facts(char *chip, size_t cn, char *os, size_t on) {
    snprintf(chip, cn, "unknown");
    snprintf(os, on, "unknown");
#if defined(__APPLE__)
    size_t len = cn;
    if (sysctlbyname("machdep.cpu.brand_string", chip, &len, NULL, 0) != 0) snprintf(chip, cn, "?");
    len = on;
    if (sysctlbyname("kern.osproductversion", os, &len, NULL, 0) != 0) snprintf(os, on, "?");
#else
    struct utsname u;
    if (uname(&u) == 0) {
        snprintf(chip, cn, "%s%s", u.machine, ob_is_standin() ? " (stand-in)" : "");
        snprintf(os, on, "%s %s", u.sysname, u.release);
    }
#endif
}

/* "ane (stand-in at PATH)" whenever the loaded image is the stand-in, available or not. */
static int ane_label(char *buf, size_t n) {
    if (!ob_is_standin()) return 0;
    snprintf(buf, n, "ane (stand-in at %s)", ob_framework_path());
    return 1;
}

static int ane_info(char *buf, size_t n) {
    char why[512], chip[128], os[128], sub[128] = "?";
    int ok = ane_available(why, sizeof why);
    platform_facts(chip, sizeof chip, os, sizeof os);
    if (ok) {
        ob_id pool = ob_pool_push();
        ob_id dc = (ob_id)ob_class_named("_ANEDeviceInfo");
        ob_sel s = ob_selector("aneSubType");
        ob_imp f = dc ? ob_lookup(dc, s) : NULL;
        if (f) ob_describe(((F_id0)f)(dc, s), sub, sizeof sub);
        ob_pool_pop(pool);
    }
    const char *fw = ob_framework_path();
    snprintf(buf, n,
             "platform=%s\nframework=%s\nstandin=%d\navailable=%d\n%s%s%schip=%s\nos=%s\n"
             "ane_subtype=%s\ncompiles=%d\ncompile_budget=%d\nio_order=%s\n",
             ob_is_standin() ? "standin" : ANE_PLATFORM, fw ? fw : "none", ob_is_standin(), ok,
             ok ? "" : "reason=", ok ? "" : why, ok ? "" : "\n", chip, os, sub,
             backend_compiles_used(), backend_compile_budget(),
             !ok ? "-"
             : env_io_order_set ? (env_io_order == ANE_IO_NAME ? "name (from ANE_IO_ORDER; a model's own description wins)"
                                   : env_io_order == ANE_IO_SIZE ? "size (from ANE_IO_ORDER; a model's own description wins)"
                                   : "declaration (from ANE_IO_ORDER; a model's own description wins)")
             : "from each loaded model's description; declaration order assumed where it has none "
               "(ANE_IO_ORDER sets it; ane selftest --report finds it)");
    return 0;
}

/* ---- experimental calls ---- */
int ane_is_kernel(const kernel *k) { return k && k->be == &ane_be && k->impl; }

static int check_kernel(const kernel *k, const char *what, ane_error *e) {
    if (!k || !k->impl) return err_set(e, ERR_STATE, "%s: kernel is closed", what);
    if (k->be != &ane_be)
        return err_set(e, ERR_INVAL, "%s: kernel belongs to the %s backend, not ane", what,
                       k->be ? k->be->name : "?");
    return 0;
}

int ane_kernel_objects_get(const kernel *k, ane_kernel_objects *o, ane_error *e) {
    int rc = check_kernel(k, "objc", e);
    if (rc) return rc;
    const ane_impl *im = k->impl;
    memset(o, 0, sizeof *o);
    o->model = im->model;
    o->request = im->request;
    o->ninputs = im->request ? k->nin : 0;
    o->nsurfaces = im->request ? im->req_n : 0;
    for (int i = 0; i < o->nsurfaces && i < 128; i++) o->surfaces[i] = im->req_surf[i];
    return 0;
}

int ane_kernel_facts_get(const kernel *k, ane_kernel_facts *f, ane_error *e) {
    int rc = check_kernel(k, "ane_info", e);
    if (rc) return rc;
    const ane_impl *im = k->impl;
    memset(f, 0, sizeof *f);
    snprintf(f->hex, sizeof f->hex, "%s", im->hex);
    snprintf(f->dir, sizeof f->dir, "%s", im->dir);
    f->procedure = im->procedure;
    f->qos = im->qos;
    f->path = im->path;
    f->last_path = im->last_path;
    f->compile_number = im->compile_number;
    f->perf_mask = im->perf_mask;
    f->last_eval_ns = im->last_eval_ns;
    f->have_hw_ns = im->have_hw_ns;
    f->last_hw_ns = im->last_hw_ns;
    f->direct_inputs = im->direct_in;
    f->direct_outputs = im->direct_out;
    f->evals = im->evals;
    f->io_order = im->io_order;
    f->io_source = im->io_source ? im->io_source : "assumed";
    for (int i = 0; i < k->nin && i < 64; i++) f->in_index[i] = im->io_source ? im->in_idx[i] : i;
    for (int i = 0; i < k->nout && i < 64; i++) f->out_index[i] = im->io_source ? im->out_idx[i] : i;
    ob_id pool = ob_pool_push();
    ob_sel s = ob_selector("state");
    ob_imp fs = ob_lookup(im->model, s);
    if (fs) f->state = ((F_u64)fs)(im->model, s);
    ob_id h = ob_value_for_key(im->model, "programHandle", NULL);
    if (h) f->program_handle = ob_number_u64(h);
    ob_pool_pop(pool);
    return 0;
}

int ane_kernel_configure(kernel *k, const ane_kernel_opts *o, ane_error *e) {
    int rc = check_kernel(k, "configure", e);
    if (rc) return rc;
    ane_impl *im = k->impl;
    if (o->set_qos && o->qos > 63)
        return err_set(e, ERR_INVAL, "configure: qos %u out of range 0..63", o->qos);
    if (o->set_path && o->path != ANE_EVAL_STANDARD && o->path != ANE_EVAL_REALTIME)
        return err_set(e, ERR_INVAL, "configure: unknown eval path");
    if (o->set_qos) im->qos = o->qos;
    if (o->set_path) im->path = o->path;
    if (o->set_perf_mask) im->perf_mask = o->perf_mask;
    if (o->set_io_order) {
        pthread_mutex_lock(&im->mu);
        im->io_order = o->io_order;
        im->io_configured = 1;
        if (k->loaded) resolve_io_indices(k);
        impl_drop_request(im); /* the cached request carries the old indices */
        pthread_mutex_unlock(&im->mu);
    }
    return 0;
}

int ane_kernel_reload_weights(kernel *k, const char *name, const uint8_t *data, size_t n,
                              ane_error *e) {
    int rc = check_kernel(k, "reload_weights", e);
    if (rc) return rc;
    ane_impl *im = k->impl;
    const char *rel = weight_rel(name);
    if (!rel && strncmp(name, "weights/", 8) == 0 && !strstr(name, "..")) rel = name;
    if (!rel)
        return err_set(e, ERR_INVAL,
                       "reload_weights: '%s' is not a weight path (\"@model_path/weights/x.bin\" "
                       "or \"weights/x.bin\")",
                       name);
    int known = 0;
    for (int i = 0; i < k->prog->nblobs; i++)
        if (strcmp(weight_rel(k->prog->blobs[i].path), rel) == 0) known = 1;
    if (!known)
        return err_set(e, ERR_INVAL, "reload_weights: the program has no weight file '%s'", rel);
    char path[1400];
    snprintf(path, sizeof path, "%s/%s", im->dir, rel);
    if ((rc = write_file(path, data, n, e))) return rc;
    int was_loaded = k->loaded;
    if (was_loaded && (rc = do_unload(k, e))) return rc;
    return do_load(k, e);
}

int ane_framework_compiles(void) { return atomic_load(&framework_compiles); }

/* ---- registration ---- */
static const backend ane_be = {
    .name = "ane",
    .description = "Apple Neural Engine through the private AppleNeuralEngine framework",
    .available = ane_available,
    .compile = ane_compile,
    .load = ane_load,
    .eval = ane_eval,
    .unload = ane_unload,
    .free = ane_free,
    .alloc_io = ane_alloc_io,
    .info = ane_info,
    .label = ane_label,
};

const backend *ane_backend(void) { return &ane_be; }

void ane_backend_register_if_built(void) { backend_register(&ane_be); }

#if defined(__SANITIZE_ADDRESS__) && !defined(__APPLE__)
/* Sanitizer builds on Linux: GCC's libobjc, loaded with the stand-in framework, registers its own
 * classes at load time in blocks LeakSanitizer cannot trace. LSan asks the executable for default
 * suppressions through this hook; this object is linked into every program that can load the
 * stand-in, so even a child run with an empty environment stays clean. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libobjc.so\n"; }
const char *__lsan_default_options(void);
const char *__lsan_default_options(void) { return "print_suppressions=0"; }
#endif
