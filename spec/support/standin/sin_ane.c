/* sin_ane.c - stand-in _ANE* classes that run programs on the project's CPU backend.
 *
 * Same class names, selectors and argument types as ane-private-api.md 2.2, 5.1, 5.2, 6.7. What
 * the stand-in enforces beyond the real framework is the documented protocol: the MIL must be
 * NSData, the weights a dictionary of {offset, data}, the temp directory NSTemporaryDirectory()/hex
 * must hold model.mil and every weight file with the exact bytes before compileWithQoS: (2.3), and
 * evaluation needs a loaded model. Weights are read from that directory at compile time, so a
 * blob rewritten later does not change the output after unload+load, as measured on M4/M5 (6.6).
 * Everything that is not known about the real framework is kept out (no invented limits). */
#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "standin.h"

#include "backend/backend.h"
#include "backend/cpu/cpu.h"
#include "core/storage.h"
#include "core/tensor.h"
#include "mil/mil.h"

#define ANE_DOMAIN "com.apple.appleneuralengine"

/* ---- helpers ---- */
static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static void set_err(id *err, long code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_err(id *err, long code, const char *fmt, ...) {
    char buf[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (err) *err = sin_error(ANE_DOMAIN, code, buf);
}

static int read_file(const char *path, uint8_t **data, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    *data = malloc(len > 0 ? (size_t)len : 1);
    *n = (size_t)(len > 0 ? len : 0);
    size_t got = *n ? fread(*data, 1, *n, f) : 0;
    fclose(f);
    if (got != *n) {
        free(*data);
        return -1;
    }
    return 0;
}

/* ================= _ANEInMemoryModelDescriptor ================= */
typedef struct wentry { char *key; uint64_t offset; uint8_t *data; size_t n; } wentry;
typedef struct desc_p {
    uint8_t *mil;
    size_t mil_len;
    wentry *w;
    size_t nw;
    char hex[64];
} desc_p;

static void desc_fin(void *pp) {
    desc_p *d = pp;
    for (size_t i = 0; i < d->nw; i++) {
        free(d->w[i].key);
        free(d->w[i].data);
    }
    free(d->w);
    free(d->mil);
    free(d);
    sin_record("dealloc class=_ANEInMemoryModelDescriptor");
}

static Class cls_desc, cls_model, cls_request, cls_surfobj, cls_perf;

static id desc_make(Class self, SEL _cmd, id mil, id weights, id options) {
    const uint8_t *mb;
    size_t mn;
    if (sin_should_fail("descriptor")) {
        sin_record("desc.create error=injected");
        return nil;
    }
    if (!sin_data_bytes(mil, &mb, &mn)) {
        /* Every working caller passes NSData (2.1); an NSString here is a protocol error. */
        sin_record("desc.create error=mil-not-nsdata class=%s",
                   mil ? class_getName(object_getClass(mil)) : "nil");
        return nil;
    }
    if (weights && !sin_isa(weights, "NSDictionary")) {
        sin_record("desc.create error=weights-not-dictionary");
        return nil;
    }
    desc_p *d = calloc(1, sizeof *d);
    d->mil = malloc(mn ? mn : 1);
    memcpy(d->mil, mb, mn);
    d->mil_len = mn;
    size_t nw = sin_dict_count(weights);
    d->w = calloc(nw ? nw : 1, sizeof *d->w);
    uint64_t hw = 1469598103934665603ull;
    sin_capture_descriptor(mb, mn);
    for (size_t i = 0; i < nw; i++) {
        id k = sin_dict_key_at(weights, i);
        const char *ks = sin_cstr(k);
        id entry = ks ? sin_dict_get(weights, ks) : nil;
        uint64_t off;
        const uint8_t *wb;
        size_t wn;
        if (!ks || !sin_isa(entry, "NSDictionary") ||
            !sin_number_value(sin_dict_get(entry, "offset"), &off) ||
            !sin_data_bytes(sin_dict_get(entry, "data"), &wb, &wn)) {
            sin_record("desc.create error=bad-weight-entry index=%zu", i);
            d->nw = i;
            desc_fin(d);
            return nil;
        }
        d->w[i].key = strdup(ks);
        d->w[i].offset = off;
        d->w[i].data = malloc(wn ? wn : 1);
        memcpy(d->w[i].data, wb, wn);
        d->w[i].n = wn;
        d->nw = i + 1;
        hw = fnv(fnv(hw, ks, strlen(ks) + 1), wb, wn);
        sin_capture_weight(ks, off, wb, wn);
        sin_record("desc.weight key=%s offset=%llu bytes=%zu", ks, (unsigned long long)off, wn);
    }
    /* Content-derived like the real identifier (field notes 9.1: hashes of MIL, options,
     * weights), so identical programs share one directory. */
    uint64_t hm = fnv(1469598103934665603ull, d->mil, d->mil_len);
    uint64_t ho = fnv(1469598103934665603ull, "", 0);
    snprintf(d->hex, sizeof d->hex, "%016llx_%016llx_%016llx", (unsigned long long)hm,
             (unsigned long long)ho, (unsigned long long)hw);
    sin_record("desc.create mil_bytes=%zu weights=%s nweights=%zu options=%s pool=%d", mn,
               weights ? "dict" : "nil", nw, options ? "set" : "nil", sin_pool_depth());
    id o = sin_new(self, d, desc_fin);
    return sin_autorelease(o);
}

/* ================= _ANEInMemoryModel ================= */
typedef struct model_p {
    id desc;
    int state;                /* 1 created, 2 compiled, 3 loaded (E:chain Exp P) */
    mil_program *prog;
    kernel **k;
    int nk;
    uint64_t handle;
    unsigned perf_mask;
    char dir[1024];
} model_p;

static long compiles_done;
static uint64_t next_handle = 0x1000;

static void model_drop_kernels(model_p *m) {
    for (int i = 0; i < m->nk; i++) cpu_backend()->free(m->k[i]);
    free(m->k);
    m->k = NULL;
    m->nk = 0;
    mil_program_release(m->prog);
    m->prog = NULL;
}

static void model_fin(void *pp) {
    model_p *m = pp;
    model_drop_kernels(m);
    sin_release(m->desc);
    free(m);
    sin_record("dealloc class=_ANEInMemoryModel");
}

static id model_make(Class self, SEL _cmd, id desc) {
    if (!sin_isa(desc, "_ANEInMemoryModelDescriptor")) {
        sin_record("model.create error=not-a-descriptor");
        return nil;
    }
    model_p *m = calloc(1, sizeof *m);
    m->desc = sin_retain(desc);
    m->state = 1;
    sin_record("model.create pool=%d", sin_pool_depth());
    return sin_autorelease(sin_new(self, m, model_fin));
}

static id model_hex(id self, SEL _cmd) {
    model_p *m = sin_payload(self);
    desc_p *d = sin_payload(m->desc);
    sin_record("model.hex hex=%s pool=%d", d->hex, sin_pool_depth());
    return sin_string(d->hex);
}

static uint64_t model_state(id self, SEL _cmd) { return ((model_p *)sin_payload(self))->state; }
static uint64_t model_handle(id self, SEL _cmd) { return ((model_p *)sin_payload(self))->handle; }
static unsigned model_perf_mask(id self, SEL _cmd) { return ((model_p *)sin_payload(self))->perf_mask; }
static void model_set_perf_mask(id self, SEL _cmd, unsigned v) {
    ((model_p *)sin_payload(self))->perf_mask = v;
    sin_record("model.set_perf_mask mask=%u", v);
}

/* Snapshot dir (model.mil and weights/ one level down) into the capture list. */
static void snapshot_dir(const char *dir) {
    sin_capture_file(NULL, NULL, 0, 1);
    const char *subs[] = {"", "weights/"};
    for (int s = 0; s < 2; s++) {
        char path[1200];
        snprintf(path, sizeof path, "%s/%s", dir, subs[s]);
        DIR *dp = opendir(path);
        if (!dp) continue;
        struct dirent *de;
        while ((de = readdir(dp))) {
            char full[2400], rel[600];
            struct stat st;
            snprintf(full, sizeof full, "%s%s", path, de->d_name);
            if (stat(full, &st) != 0 || !S_ISREG(st.st_mode)) continue;
            snprintf(rel, sizeof rel, "%s%s", subs[s], de->d_name);
            uint8_t *b;
            size_t n;
            if (read_file(full, &b, &n) == 0) {
                sin_capture_file(rel, b, n, 0);
                free(b);
            }
        }
        closedir(dp);
    }
}

/* The documented protocol (2.3): dir/model.mil == the descriptor's MIL and dir/<key minus
 * "@model_path/"> == each weight's bytes, before compile. */
static int check_dir(const model_p *m, const desc_p *d, id *err) {
    uint8_t *b;
    size_t n;
    char path[1400];
    snprintf(path, sizeof path, "%s/model.mil", m->dir);
    if (read_file(path, &b, &n) != 0) {
        set_err(err, 2, "stand-in: %s missing: the temp directory must be pre-populated "
                "(ane-private-api.md 2.3)", path);
        return -1;
    }
    int same = n == d->mil_len && memcmp(b, d->mil, n) == 0;
    free(b);
    if (!same) {
        set_err(err, 2, "stand-in: %s differs from the descriptor's MIL", path);
        return -1;
    }
    for (size_t i = 0; i < d->nw; i++) {
        const char *rel = d->w[i].key;
        if (strncmp(rel, "@model_path/", 12) != 0) {
            set_err(err, 2, "stand-in: weight key '%s' does not start with @model_path/", rel);
            return -1;
        }
        snprintf(path, sizeof path, "%s/%s", m->dir, rel + 12);
        if (read_file(path, &b, &n) != 0) {
            set_err(err, 2, "stand-in: %s missing: every weight must be written into the temp "
                    "directory before compile (ane-private-api.md 2.3)", path);
            return -1;
        }
        same = n == d->w[i].n && memcmp(b, d->w[i].data, n) == 0;
        free(b);
        if (!same) {
            set_err(err, 2, "stand-in: %s differs from the weights dictionary's data", path);
            return -1;
        }
    }
    return 0;
}

static bool model_compile(id self, SEL _cmd, unsigned qos, id opts, id *err) {
    model_p *m = sin_payload(self);
    desc_p *d = sin_payload(m->desc);
    sin_lock();
    long n = ++compiles_done;
    sin_record("model.compile qos=%u options=%s pool=%d", qos,
               opts ? (sin_dict_count(opts) ? "dict" : "empty") : "nil", sin_pool_depth());
    const char *tmp = NULL;
    id t = NSTemporaryDirectory();
    tmp = sin_cstr(t);
    snprintf(m->dir, sizeof m->dir, "%s%s", tmp, d->hex);
    snapshot_dir(m->dir);
    bool ok = false;
    long lim = sin_compile_limit();
    if (lim >= 0 && n > lim) {
        set_err(err, 1, "stand-in: ANECCompile() FAILED: compile %ld exceeds the per-process limit "
                "of %ld (ane-private-api.md 6.1)", n, lim);
        goto out;
    }
    if (sin_should_fail("compile")) {
        set_err(err, 1, "stand-in: injected compile failure: InvalidMILProgram");
        goto out;
    }
    if (check_dir(m, d, err) != 0) goto out;

    ane_error e;
    err_clear(&e);
    mil_program *p = NULL;
    mil_parse_opts po = {0};
    if (mil_parse((const char *)d->mil, d->mil_len, "model.mil", &po, &p, &e) != 0 ||
        mil_resolve_weights(p, m->dir, &e) != 0 || mil_check(p, NULL, &e) != 0) {
        mil_program_release(p);
        set_err(err, 3, "stand-in: InvalidMILProgram: %s", e.msg);
        goto out;
    }
    model_drop_kernels(m);
    m->prog = p;
    m->k = calloc((size_t)p->nfuncs, sizeof *m->k);
    for (int i = 0; i < p->nfuncs; i++) {
        compile_opts co;
        compile_opts_default(&co);
        co.function = p->funcs[i].name;
        co.qos = qos;
        if (cpu_backend()->compile(p, &co, &m->k[i], &e) != 0) {
            model_drop_kernels(m);
            set_err(err, 3, "stand-in: compile of function %s failed: %s", p->funcs[i].name, e.msg);
            goto out;
        }
        m->nk = i + 1;
    }
    /* The compiler writes its output beside the inputs (2.3: net.plist and data appear). */
    char path[1200];
    snprintf(path, sizeof path, "%s/net.plist", m->dir);
    FILE *f = fopen(path, "w");
    if (f) {
        fprintf(f, "<plist><!-- stand-in compile output for %s --></plist>\n", d->hex);
        fclose(f);
    }
    m->state = 2;
    ok = true;
out:
    sin_unlock();
    return ok;
}

/* The compiler's output stays in NSTemporaryDirectory()/hex (2.3: net.plist and data appear
 * there); the stand-in takes the strict reading that a compiled model needs it for as long as it
 * lives, so load and evaluate fail once the directory was removed under a live model (what a
 * twin freeing the shared directory would do: ane-private-api.md 2.3 calls it untested). */
static int compile_output_present(const model_p *m, const char *what, id *err) {
    char path[1200];
    struct stat st;
    snprintf(path, sizeof path, "%s/net.plist", m->dir);
    if (stat(path, &st) == 0) return 1;
    set_err(err, 0xb, "stand-in: %s: %s is gone: the compile output was removed under a live model",
            what, path);
    return 0;
}

static bool model_load(id self, SEL _cmd, unsigned qos, id opts, id *err) {
    model_p *m = sin_payload(self);
    sin_lock();
    sin_record("model.load qos=%u options=%s pool=%d", qos,
               opts ? (sin_dict_count(opts) ? "dict" : "empty") : "nil", sin_pool_depth());
    bool ok = false;
    if (sin_should_fail("load")) {
        set_err(err, 4, "stand-in: injected load failure: program load failed (slot busy)");
        goto out;
    }
    if (m->state < 2 || !m->nk) {
        set_err(err, 5, "stand-in: load before a successful compile");
        goto out;
    }
    if (!compile_output_present(m, "load", err)) goto out;
    ane_error e;
    err_clear(&e);
    for (int i = 0; i < m->nk; i++)
        if (!m->k[i]->loaded && cpu_backend()->load(m->k[i], &e) != 0) {
            set_err(err, 4, "stand-in: load failed: %s", e.msg);
            goto out;
        }
    m->handle = next_handle++;
    m->state = 3;
    ok = true;
out:
    sin_unlock();
    return ok;
}

static bool model_unload(id self, SEL _cmd, unsigned qos, id *err) {
    model_p *m = sin_payload(self);
    sin_lock();
    sin_record("model.unload qos=%u state=%d pool=%d", qos, m->state, sin_pool_depth());
    bool ok = true;
    if (sin_should_fail("unload")) {
        set_err(err, 6, "stand-in: injected unload failure");
        ok = false;
    } else if (m->state == 3) {
        ane_error e;
        for (int i = 0; i < m->nk; i++) cpu_backend()->unload(m->k[i], &e);
        m->state = 2;
        m->handle = 0;
    }
    sin_unlock();
    return ok;
}

/* ================= _ANEIOSurfaceObject ================= */
static void surfobj_fin(void *p) {
    sin_surface_release(p);
    sin_record("dealloc class=_ANEIOSurfaceObject");
}

extern uint64_t sin_surface_id(void *ref);

static id surfobj_make(Class self, SEL _cmd, void *ref) {
    sin_surface *s = sin_surface_check(ref);
    if (!s) {
        sin_record("surface.wrap error=not-a-surface");
        return nil;
    }
    sin_surface_retain(s); /* whether the real one retains is unknown (10.4): callers keep theirs */
    sin_record("surface.wrap id=%llu", (unsigned long long)sin_surface_id(ref));
    return sin_autorelease(sin_new(self, s, surfobj_fin));
}

static void *surfobj_surface(id self, SEL _cmd) { return sin_payload(self); }

/* ================= _ANEPerformanceStats ================= */
typedef struct perf_p { uint64_t ns; int filled; } perf_p;
static id perf_make(Class self, SEL _cmd, uint64_t ns) {
    perf_p *p = calloc(1, sizeof *p);
    p->ns = ns;
    return sin_autorelease(sin_new(self, p, free));
}
/* Stays nil on real hardware (6.7); the stand-in fills it only when told to ("perf"). */
/* As the real class declares it: @property (readonly) unsigned long long hwExecutionTime, 0 when
 * the OS filled nothing (maderix training/m5result.md). */
static unsigned long long perf_hw_time(id self, SEL _cmd) {
    perf_p *p = sin_payload(self);
    return p->filled ? (unsigned long long)p->ns : 0;
}

/* ================= _ANERequest ================= */
typedef struct req_p { id in, in_idx, out, out_idx, wbuf, perf, proc; } req_p;
static void req_fin(void *pp) {
    req_p *r = pp;
    sin_release(r->in);
    sin_release(r->in_idx);
    sin_release(r->out);
    sin_release(r->out_idx);
    sin_release(r->wbuf);
    sin_release(r->perf);
    sin_release(r->proc);
    free(r);
    sin_record("dealloc class=_ANERequest");
}

static void list_ids(id arr, int surfaces, char *buf, size_t n) {
    buf[0] = '\0';
    size_t cnt = sin_array_count(arr);
    for (size_t i = 0; i < cnt; i++) {
        uint64_t v = 0;
        id o = sin_array_at(arr, i);
        if (surfaces) v = sin_isa(o, "_ANEIOSurfaceObject") ? sin_surface_id(sin_payload(o)) : 0;
        else sin_number_value(o, &v);
        size_t len = strlen(buf);
        snprintf(buf + len, n - len, "%s%llu", i ? "," : "", (unsigned long long)v);
    }
}

static int indices_ok(id surfaces, id idx) {
    size_t n = sin_array_count(surfaces);
    if (!sin_isa(surfaces, "NSArray") || !sin_isa(idx, "NSArray") || sin_array_count(idx) != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t v;
        if (!sin_isa(sin_array_at(surfaces, i), "_ANEIOSurfaceObject") ||
            !sin_number_value(sin_array_at(idx, i), &v))
            return 0;
    }
    return 1;
}

static id req_make(Class self, SEL _cmd, id in, id in_idx, id out, id out_idx, id wbuf, id perf,
                   id proc) {
    uint64_t pi;
    if (!indices_ok(in, in_idx) || !indices_ok(out, out_idx) || !sin_number_value(proc, &pi) ||
        (perf && !sin_isa(perf, "NSArray"))) {
        /* The real request sends `count` to perfStats (E:chain): a non-array crashes there. */
        sin_record("request.create error=bad-arguments");
        return nil;
    }
    req_p *r = calloc(1, sizeof *r);
    r->in = sin_retain(in);
    r->in_idx = sin_retain(in_idx);
    r->out = sin_retain(out);
    r->out_idx = sin_retain(out_idx);
    r->wbuf = sin_retain(wbuf);
    r->perf = sin_retain(perf);
    r->proc = sin_retain(proc);
    char a[256], b[256], c[256], d[256];
    list_ids(in, 1, a, sizeof a);
    list_ids(in_idx, 0, b, sizeof b);
    list_ids(out, 1, c, sizeof c);
    list_ids(out_idx, 0, d, sizeof d);
    sin_record("request.create inputs=%s in_idx=%s outputs=%s out_idx=%s weights_buffer=%s "
               "perf=%s proc=%llu pool=%d",
               a, b, c, d, wbuf ? "set" : "nil", perf ? "array" : "nil", (unsigned long long)pi,
               sin_pool_depth());
    return sin_autorelease(sin_new(self, r, req_fin));
}

/* ================= evaluation ================= */
static void borrowed_free(storage *s) { (void)s; }
static const storage_ops borrowed_ops = {"borrowed", borrowed_free, NULL, NULL};

/* The stand-in's answer to "which I/O does request index i mean" (ANE_STANDIN_IO_ORDER):
 * perm[symbol] = position in the program's declaration, for declaration, name or size order. */
static size_t io_bytes_of(const kernel_io *io) {
    return (size_t)shape_numel(io->rank, io->shape) * dtype_size(io->dt);
}
static void io_perm(const kernel *k, int is_out, int *perm) {
    int n = is_out ? k->nout : k->nin, order = sin_io_order();
    const kernel_io *io = is_out ? k->out : k->in;
    for (int i = 0; i < n; i++) perm[i] = i;
    for (int i = 1; i < n; i++) /* insertion sort: stable, n is small */
        for (int j = i; j > 0; j--) {
            const kernel_io *a = &io[perm[j - 1]], *b = &io[perm[j]];
            int swap = order == 1 ? strcmp(a->name, b->name) > 0 : order == 2 ? io_bytes_of(a) > io_bytes_of(b) : 0;
            if (!swap) break;
            int t = perm[j]; perm[j] = perm[j - 1]; perm[j - 1] = t;
        }
}

/* Bind surface arr[i] to the io slot that request index idx[i] names in kernel k. */
static int bind(kernel *k, const void *model, id arr, id idx, int is_out, tensor *ts, int *bound,
                int *locked, id *err) {
    int nio = is_out ? k->nout : k->nin;
    size_t n = sin_array_count(arr);
    ane_error e;
    int perm[64];
    io_perm(k, is_out, perm);
    for (size_t i = 0; i < n; i++) {
        uint64_t sym;
        sin_number_value(sin_array_at(idx, i), &sym);
        if (sym >= (uint64_t)nio) {
            set_err(err, 0x2, "stand-in: %s index %llu out of range (program has %d)",
                    is_out ? "output" : "input", (unsigned long long)sym, nio);
            return -1;
        }
        int slot = perm[sym];
        const kernel_io *io = is_out ? &k->out[slot] : &k->in[slot];
        sin_surface *s = sin_payload(sin_array_at(arr, i));
        if (!is_out && sin_refuse_external() && sin_surface_producer(s) && sin_surface_producer(s) != model) {
            set_err(err, 0x9, "stand-in: input surface %zu is another model's output (external surfaces "
                              "refused, statusType=0x9)", i);
            return -1;
        }
        size_t need = (size_t)shape_numel(io->rank, io->shape) * dtype_size(io->dt);
        if (sin_surface_size(s) < need) {
            set_err(err, 0x1d, "stand-in: %s surface %zu has %zu bytes, '%s' needs %zu",
                    is_out ? "output" : "input", i, sin_surface_size(s), io->name, need);
            return -1;
        }
        *locked += sin_surface_locked(s) > 0;
        storage *st = storage_wrap(sin_surface_base(s), need, &borrowed_ops, NULL, &e);
        if (!st || tensor_init_on(&ts[slot], st, 0, io->dt, io->rank, io->shape, &e) != 0) {
            storage_release(st);
            set_err(err, 0x2, "stand-in: cannot bind surface: %s", e.msg);
            return -1;
        }
        storage_release(st);
        bound[slot] = 1;
    }
    for (int i = 0; i < nio; i++)
        if (!bound[i]) {
            set_err(err, 0x1d, "stand-in: %s '%s' has no surface in the request",
                    is_out ? "output" : "input", is_out ? k->out[i].name : k->in[i].name);
            return -1;
        }
    return 0;
}

static bool do_eval(const char *what, id model, id request, id *err) {
    if (!sin_isa(model, "_ANEInMemoryModel") || !sin_isa(request, "_ANERequest")) {
        set_err(err, 0x2, "stand-in: %s: bad model or request", what);
        sin_record("%s error=bad-arguments", what);
        return false;
    }
    model_p *m = sin_payload(model);
    req_p *r = sin_payload(request);
    char a[256], b[256];
    list_ids(r->in, 1, a, sizeof a);
    list_ids(r->out, 1, b, sizeof b);
    sin_lock();
    bool ok = false;
    uint64_t pi = 0;
    sin_number_value(r->proc, &pi);
    kernel *k = NULL;
    tensor tin[64], tout[64];
    int bin[64] = {0}, bout[64] = {0}, locked = 0;
    memset(tin, 0, sizeof tin);
    memset(tout, 0, sizeof tout);
    if (sin_should_fail("eval")) {
        set_err(err, 0x9, "stand-in: injected eval failure (statusType=0x9)");
        goto out;
    }
    if (m->state == 3 && !compile_output_present(m, what, err)) goto out;
    if (m->state != 3) {
        set_err(err, 0x5, "stand-in: evaluate on a model that is not loaded (state %d)", m->state);
        goto out;
    }
    /* One procedure per MIL function; indices 0-15 all run on a single-procedure model (5.1). */
    k = m->k[pi < (uint64_t)m->nk ? pi : 0];
    if (k->nin > 64 || k->nout > 64) {
        set_err(err, 0x2, "stand-in: too many inputs or outputs");
        goto out;
    }
    if (bind(k, m, r->in, r->in_idx, 0, tin, bin, &locked, err) != 0 ||
        bind(k, m, r->out, r->out_idx, 1, tout, bout, &locked, err) != 0)
        goto out;
    tensor *pin[64], *pout[64];
    for (int i = 0; i < k->nin; i++) pin[i] = &tin[i];
    for (int i = 0; i < k->nout; i++) pout[i] = &tout[i];
    ane_error e;
    err_clear(&e);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (cpu_backend()->eval(k, pin, pout, &e) != 0) {
        set_err(err, 0x9, "stand-in: program execution failed: %s", e.msg);
        goto out;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    for (size_t i = 0; i < sin_array_count(r->out); i++) {
        sin_surface_touch(sin_payload(sin_array_at(r->out, i)));
        sin_surface_set_producer(sin_payload(sin_array_at(r->out, i)), m);
    }
    if (sin_perf_enabled())
        for (size_t i = 0; i < sin_array_count(r->perf); i++) {
            id ps = sin_array_at(r->perf, i);
            if (sin_isa(ps, "_ANEPerformanceStats")) {
                perf_p *pp = sin_payload(ps);
                pp->ns = (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000ull +
                         (uint64_t)(t1.tv_nsec - t0.tv_nsec);
                pp->filled = 1;
            }
        }
    ok = true;
out:
    sin_record("%s inputs=%s outputs=%s proc=%llu locked=%d ok=%d pool=%d", what, a, b,
               (unsigned long long)pi, locked, ok, sin_pool_depth());
    for (int i = 0; i < 64; i++) {
        tensor_release(&tin[i]);
        tensor_release(&tout[i]);
    }
    sin_unlock();
    return ok;
}

static bool model_eval(id self, SEL _cmd, unsigned qos, id opts, id request, id *err) {
    return do_eval("model.eval", self, request, err);
}

/* ================= _ANEClient ================= */
static id shared_client;
static id client_shared(Class self, SEL _cmd) { return shared_client; }
static bool client_eval_rt(id self, SEL _cmd, id model, id opts, id request, id *err) {
    return do_eval("client.eval_rt", model, request, err);
}
static bool client_rt_task(id self, SEL _cmd) { return false; } /* NO, as documented (5.2) */

/* ================= paths and classes reached only through ane.objc =================
 * The research record's other evaluation paths (5.2) and the chaining family (9.2), so the
 * bridge's probe scripts run here. Evaluations go through do_eval like the standard path; the
 * chaining classes build, validate and fail to prepare as the record reports for _ANEModel
 * (Code=15). Nothing in the ane backend calls these. */
static bool client_eval_direct(id self, SEL _cmd, id model, id opts, id request, unsigned qos, id *err) {
    return do_eval("client.eval_direct", model, request, err);
}
static bool client_eval(id self, SEL _cmd, id model, id opts, id request, unsigned qos, id *err) {
    return do_eval("client.eval", model, request, err);
}

/* -[_ANEInMemoryModel model]: an _ANEModel whose modelAttributes carry ANEFModelDescription as
 * field notes 5.1 records it (InputSymbols, OutputSymbols "y@output", ANEFModelProcedures with
 * each procedure's symbol index arrays), in the stand-in's own index order; {} with
 * ANE_STANDIN_DESCRIBE=0 (what an _ANEModel shell answers, API 9). Not retained: like program. */
static Class cls_anemodel;
static id model_model(id self, SEL _cmd) { return sin_autorelease(sin_new(cls_anemodel, self, NULL)); }
static id sym_names(const kernel *k, int is_out) {
    int n = is_out ? k->nout : k->nin, perm[64];
    io_perm(k, is_out, perm);
    id v[64];
    for (int s = 0; s < n; s++) {
        char name[300];
        snprintf(name, sizeof name, "%s%s", (is_out ? k->out : k->in)[perm[s]].name, is_out ? "@output" : "");
        v[s] = sin_string(name);
    }
    return sin_array_new(v, (size_t)n);
}
static id anemodel_attributes(id self, SEL _cmd) {
    model_p *m = sin_payload(sin_payload(self));
    if (!sin_describe() || m->nk == 0) return sin_dict_new(NULL, NULL, 0);
    const kernel *k = m->k[0];
    id procs[16];
    int np = m->nk < 16 ? m->nk : 16;
    for (int p = 0; p < np; p++) {
        id ii[64], oi[64];
        for (int i = 0; i < m->k[p]->nin; i++) ii[i] = sin_number((uint64_t)i);
        for (int i = 0; i < m->k[p]->nout; i++) oi[i] = sin_number((uint64_t)i);
        id pk[2] = {sin_string("InputSymbolIndexArray"), sin_string("OutputSymbolIndexArray")};
        id pv[2] = {sin_array_new(ii, (size_t)m->k[p]->nin), sin_array_new(oi, (size_t)m->k[p]->nout)};
        procs[p] = sin_dict_new(pk, pv, 2);
    }
    id dk[3] = {sin_string("InputSymbols"), sin_string("OutputSymbols"), sin_string("ANEFModelProcedures")};
    id dv[3] = {sym_names(k, 0), sym_names(k, 1), sin_array_new(procs, (size_t)np)};
    id desc = sin_dict_new(dk, dv, 3);
    id tk = sin_string("ANEFModelDescription");
    return sin_dict_new(&tk, &desc, 1);
}

/* model.program: a _ANEProgramForEvaluation pointing back at its model (not retaining it). */
static Class cls_program;
static id model_program(id self, SEL _cmd) { return sin_autorelease(sin_new(cls_program, self, NULL)); }
static bool program_process(id self, SEL _cmd, id request, id model, unsigned qos, int qindex,
                            id hex, id opts, bool *rv, id *err) {
    bool ok = do_eval("program.process_request", model, request, err);
    if (rv) *rv = false; /* the record: returns YES with returnValue NO */
    return ok;
}

/* Objects holding up to three retained ids and a number. */
typedef struct held { id a, b, c; long long n; void *ref; } held;
static void held_fin(void *p) {
    held *h = p;
    sin_release(h->a);
    sin_release(h->b);
    sin_release(h->c);
    free(h);
}
static id held_new(Class c, id a, id b, id x, long long n, void *ref) {
    held *h = calloc(1, sizeof *h);
    h->a = sin_retain(a);
    h->b = sin_retain(b);
    h->c = sin_retain(x);
    h->n = n;
    h->ref = ref;
    return sin_autorelease(sin_new(c, h, held_fin));
}
static Class cls_buffer, cls_outsets, cls_chain;
static id buffer_make(Class self, SEL _cmd, id surfobj, id symbol, long long source) {
    if (!sin_isa(surfobj, "_ANEIOSurfaceObject")) return nil;
    sin_record("chain.buffer source=%lld", source);
    return held_new(self, surfobj, symbol, nil, source, NULL);
}
static id buffer_description(id self, SEL _cmd) {
    char buf[96];
    snprintf(buf, sizeof buf, "<_ANEBuffer: %p ANEBufferProducerAgent=%lld>", (void *)self,
             ((held *)sin_payload(self))->n);
    return sin_string(buf);
}
static id outsets_make(Class self, SEL _cmd, void *stats, id buffers) {
    if (!stats) return nil; /* as recorded: nil without a stats surface */
    return held_new(self, buffers, nil, nil, 0, stats);
}
static id chain_make(Class self, SEL _cmd, id inputs, id outsets, id lb_in, id lb_out, id proc,
                     id signals, id txn, id delay, id pool) {
    return held_new(self, inputs, outsets, signals, 0, NULL);
}
static bool chain_validate(id self, SEL _cmd) {
    held *h = sin_payload(self);
    size_t n = sin_array_count(h->a);
    for (size_t i = 0; i < n; i++)
        if (!sin_isa(sin_array_at(h->a, i), "_ANEBuffer")) return false; /* needs symbolIndex */
    return n > 0 && sin_array_count(h->b) > 0;
}
static bool client_prepare_chaining(id self, SEL _cmd, id model, id opts, id req, unsigned qos, id *err) {
    sin_record("client.prepare_chaining");
    set_err(err, 15, "ANEProgramChainingPrepare() Failed: Program chaining prepare error");
    return false;
}

static Class begin(const char *name);
static void register_objc_only(void) {
    Class c;
    if (cls_model) {
        sin_add(cls_model, "program", SIN_IMP(model_program), "@16@0:8");
    }
    if ((c = cls_program = begin("_ANEProgramForEvaluation"))) {
        sin_add(c, "processRequest:model:qos:qIndex:modelStringID:options:returnValue:error:",
                SIN_IMP(program_process), "B72@0:8@16@24I32i36@40@48^B56^@64");
        sin_class_done(c);
    }
    if ((c = cls_buffer = begin("_ANEBuffer"))) {
        sin_add_class(c, "bufferWithIOSurfaceObject:symbolIndex:source:", SIN_IMP(buffer_make),
                      "@40@0:8@16@24q32");
        sin_add(c, "description", SIN_IMP(buffer_description), "@16@0:8");
        sin_class_done(c);
    }
    if ((c = cls_outsets = begin("_ANEIOSurfaceOutputSets"))) {
        sin_add_class(c, "objectWithstatsSurRef:outputBuffer:", SIN_IMP(outsets_make),
                      "@32@0:8^{__IOSurface=}16@24");
        sin_class_done(c);
    }
    if ((c = cls_chain = begin("_ANEChainingRequest"))) {
        sin_add_class(c,
                      "chainingRequestWithInputs:outputSets:lbInputSymbolId:lbOutputSymbolId:"
                      "procedureIndex:signalEvents:transactionHandle:fwEnqueueDelay:memoryPoolId:",
                      SIN_IMP(chain_make), "@88@0:8@16@24@32@40@48@56@64@72@80");
        sin_add(c, "validate", SIN_IMP(chain_validate), "B16@0:8");
        sin_class_done(c);
    }
}

/* ================= _ANEDeviceInfo ================= */
static id devinfo_subtype(Class self, SEL _cmd) { return sin_string("standin"); }

/* ---- registration ---- */
static Class begin(const char *name) {
    if (sin_class_missing(name)) return Nil; /* failure injection: class absent */
    return sin_class_begin(name, Nil);
}

void sin_register_ane(void) {
    Class c;
    if ((c = cls_desc = begin("_ANEInMemoryModelDescriptor"))) {
        sin_add_class(c, "modelWithMILText:weights:optionsPlist:", SIN_IMP(desc_make),
                      "@40@0:8@16@24@32");
        sin_class_done(c);
    }
    if ((c = cls_model = begin("_ANEInMemoryModel"))) {
        sin_add_class(c, "inMemoryModelWithDescriptor:", SIN_IMP(model_make), "@24@0:8@16");
        sin_add(c, "hexStringIdentifier", SIN_IMP(model_hex), "@16@0:8");
        sin_add(c, "compileWithQoS:options:error:", SIN_IMP(model_compile), "B36@0:8I16@20^@28");
        sin_add(c, "loadWithQoS:options:error:", SIN_IMP(model_load), "B36@0:8I16@20^@28");
        sin_add(c, "evaluateWithQoS:options:request:error:", SIN_IMP(model_eval),
                "B44@0:8I16@20@28^@36");
        sin_add(c, "unloadWithQoS:error:", SIN_IMP(model_unload), "B28@0:8I16^@20");
        sin_add(c, "state", SIN_IMP(model_state), "Q16@0:8");
        sin_add(c, "programHandle", SIN_IMP(model_handle), "Q16@0:8");
        sin_add(c, "perfStatsMask", SIN_IMP(model_perf_mask), "I16@0:8");
        sin_add(c, "setPerfStatsMask:", SIN_IMP(model_set_perf_mask), "v20@0:8I16");
        sin_add(c, "model", SIN_IMP(model_model), "@16@0:8");
        sin_class_done(c);
    }
    if ((c = cls_anemodel = begin("_ANEModel"))) {
        sin_add(c, "modelAttributes", SIN_IMP(anemodel_attributes), "@16@0:8");
        sin_class_done(c);
    }
    if ((c = cls_request = begin("_ANERequest"))) {
        sin_add_class(c,
                      "requestWithInputs:inputIndices:outputs:outputIndices:weightsBuffer:"
                      "perfStats:procedureIndex:",
                      SIN_IMP(req_make), "@72@0:8@16@24@32@40@48@56@64");
        sin_class_done(c);
    }
    if ((c = cls_surfobj = begin("_ANEIOSurfaceObject"))) {
        sin_add_class(c, "objectWithIOSurface:", SIN_IMP(surfobj_make), "@24@0:8^{__IOSurface=}16");
        sin_add(c, "ioSurface", SIN_IMP(surfobj_surface), "^{__IOSurface=}16@0:8");
        sin_class_done(c);
    }
    if ((c = cls_perf = begin("_ANEPerformanceStats"))) {
        sin_add_class(c, "statsWithHardwareExecutionNS:", SIN_IMP(perf_make), "@24@0:8Q16");
        sin_add(c, "hwExecutionTime", SIN_IMP(perf_hw_time), "Q16@0:8");
        sin_class_done(c);
    }
    if ((c = begin("_ANEClient"))) {
        sin_add_class(c, "sharedConnection", SIN_IMP(client_shared), "@16@0:8");
        sin_add(c, "evaluateRealTimeWithModel:options:request:error:", SIN_IMP(client_eval_rt),
                "B48@0:8@16@24@32^@40");
        sin_add(c, "beginRealTimeTask", SIN_IMP(client_rt_task), "B16@0:8");
        sin_add(c, "doEvaluateDirectWithModel:options:request:qos:error:",
                SIN_IMP(client_eval_direct), "B52@0:8@16@24@32I40^@44");
        sin_add(c, "evaluateWithModel:options:request:qos:error:", SIN_IMP(client_eval),
                "B52@0:8@16@24@32I40^@44");
        sin_add(c, "prepareChainingWithModel:options:chainingReq:qos:error:",
                SIN_IMP(client_prepare_chaining), "B52@0:8@16@24@32I40^@44");
        sin_class_done(c);
        shared_client = sin_new(c, NULL, NULL); /* a process-wide singleton, never released */
    }
    if ((c = begin("_ANEDeviceInfo"))) {
        sin_add_class(c, "aneSubType", SIN_IMP(devinfo_subtype), "@16@0:8");
        sin_class_done(c);
    }
    register_objc_only();
}
