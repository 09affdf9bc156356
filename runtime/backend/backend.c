/* backend.c - the backend registry, compile option defaults, and eval argument checks.
 *
 * Backends register by name into a small fixed table. The ANE backend lives in
 * runtime/backend/ane/ and is optional: when its build fragment defines ANE_WITH_ANE_BACKEND it
 * provides ane_backend_register_if_built(), which backend_register_builtin() calls. No weak
 * symbols, no constructors: one explicit call, so static linking never drops it. */
#include "backend.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/settings.h"
#include "cpu/cpu.h"

#ifdef ANE_WITH_ANE_BACKEND
void ane_backend_register_if_built(void); /* runtime/backend/ane/: registers "ane" */
#endif

#define MAX_BACKENDS 16

static const backend *registry[MAX_BACKENDS];
static int nregistry;
static atomic_int builtin_done;

int backend_register(const backend *b) {
    if (!b || !b->name) return ERR_INVAL;
    for (int i = 0; i < nregistry; i++)
        if (strcmp(registry[i]->name, b->name) == 0) {
            registry[i] = b;
            return 0;
        }
    if (nregistry >= MAX_BACKENDS) return ERR_NOMEM;
    registry[nregistry++] = b;
    return 0;
}

void backend_register_builtin(void) {
    /* The Lua state is single-threaded, but embedders may call this from several threads. */
    int expected = 0;
    if (!atomic_compare_exchange_strong(&builtin_done, &expected, 1)) return;
    backend_register(cpu_backend());
#ifdef ANE_WITH_ANE_BACKEND
    ane_backend_register_if_built();
#endif
}

const backend *backend_get(const char *name) {
    backend_register_builtin();
    if (!name) return NULL;
    for (int i = 0; i < nregistry; i++)
        if (strcmp(registry[i]->name, name) == 0) return registry[i];
    return NULL;
}

int backend_count(void) {
    backend_register_builtin();
    return nregistry;
}

const backend *backend_at(int i) {
    backend_register_builtin();
    return (i >= 0 && i < nregistry) ? registry[i] : NULL;
}

static int usable(const backend *b) {
    char why[256];
    return b && (!b->available || b->available(why, sizeof why));
}

/* The default chosen by name (ane.backend(name), --backend, ane_options.backend): read by compile
 * workers while the Lua thread may set it, hence atomic. NULL: $ANE_BACKEND or automatic. */
static _Atomic(const backend *) chosen;

void backend_set_default(const backend *b) { atomic_store(&chosen, b); }

int backend_names(char *buf, size_t n) {
    backend_register_builtin();
    const backend *sorted[MAX_BACKENDS];
    for (int i = 0; i < nregistry; i++) { /* by name, as ane.host lists them */
        int j = i;
        while (j > 0 && strcmp(sorted[j - 1]->name, registry[i]->name) > 0) {
            sorted[j] = sorted[j - 1];
            j--;
        }
        sorted[j] = registry[i];
    }
    size_t used = 0;
    if (n) buf[0] = '\0';
    for (int i = 0; i < nregistry && used < n; i++) {
        int w = snprintf(buf + used, n - used, "%s%s", i ? ", " : "", sorted[i]->name);
        if (w < 0) break;
        used += (size_t)w;
    }
    return nregistry;
}

int backend_unknown(ane_error *e, const char *name, const char *where) {
    char names[256];
    backend_names(names, sizeof names);
    return err_set(e, ERR_INVAL, "%s%sunknown backend '%s' (known: %s)", where ? where : "",
                   where ? ": " : "", name, names);
}

int backend_default_ex(const backend **out, ane_error *e) {
    backend_register_builtin();
    *out = atomic_load(&chosen);
    if (*out) return 0;
    const char *env = settings_get()->backend;
    if (env) {
        *out = backend_get(env); /* even if unavailable: compile then says why */
        return *out ? 0 : backend_unknown(e, env, "ANE_BACKEND");
    }
#if defined(__APPLE__)
    const int prefer_ane = 1;
#else
    const int prefer_ane = 0; /* elsewhere "ane" is the test stand-in: used only when named */
#endif
    const backend *ane = backend_get("ane");
    *out = (prefer_ane && usable(ane)) ? ane : backend_get("cpu");
    return *out ? 0 : err_set(e, ERR_STATE, "no backend is registered");
}

const backend *backend_default(void) {
    const backend *b;
    return backend_default_ex(&b, NULL) == 0 ? b : NULL;
}

void compile_opts_default(compile_opts *o) {
    memset(o, 0, sizeof *o);
    const ane_settings *s = settings_get();
    o->precision = s->precision_fp32 ? PREC_FP32 : PREC_FP16;
    o->qos = 21;
    o->strict = s->strict;
}

static int check_one(const kernel_io *io, const tensor *t, const char *what, ane_error *e) {
    char want[96], got[96];
    if (!t || !t->st)
        return err_set(e, ERR_INVAL, "eval: %s '%s' is missing or closed", what, io->name);
    if (t->dt != io->dt)
        return err_set(e, ERR_TYPE, "eval: %s '%s' has dtype %s, expected %s", what, io->name,
                       dtype_name(t->dt), dtype_name(io->dt));
    if (!shape_equal(t->rank, t->shape, io->rank, io->shape))
        return err_set(e, ERR_SHAPE, "eval: %s '%s' has shape %s, expected %s", what, io->name,
                       shape_str(t->rank, t->shape, got, sizeof got),
                       shape_str(io->rank, io->shape, want, sizeof want));
    return 0;
}

void kernel_warn(kernel *k, const char *fmt, ...) {
    size_t n = strlen(k->warnings), cap = sizeof k->warnings;
    if (n + 5 >= cap) return; /* already full (ends in "...") */
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n + strlen(line) + 2 + 4 > cap) {
        snprintf(k->warnings + n, cap - n, "...\n");
        return;
    }
    snprintf(k->warnings + n, cap - n, "%s\n", line);
}

void kernel_warn_rows(kernel *k) {
    for (int side = 0; side < 2; side++) {
        const kernel_io *io = side ? k->out : k->in;
        for (int i = 0; i < (side ? k->nout : k->nin); i++) {
            if (io[i].rank < 1) continue;
            size_t row = (size_t)io[i].shape[io[i].rank - 1] * dtype_size(io[i].dt);
            if (row % 64 == 0) continue;
            kernel_warn(k,
                        "%s '%s': innermost row of %zu bytes is not a multiple of 64; the ANE pads "
                        "rows to 64 bytes (ane-field-notes.md 2.8), so keep the last axis a multiple "
                        "of %zu elements",
                        side ? "output" : "input", io[i].name, row, 64 / dtype_size(io[i].dt));
        }
    }
}

int kernel_check_io(const kernel *k, tensor *const *in, tensor *const *out, ane_error *e) {
    if (!k) return err_set(e, ERR_STATE, "eval: kernel is closed");
    if (!k->loaded) return err_set(e, ERR_STATE, "eval: kernel is not loaded (call kernel:load())");
    for (int i = 0; i < k->nin; i++) {
        int rc = check_one(&k->in[i], in ? in[i] : NULL, "input", e);
        if (rc) return rc;
    }
    for (int i = 0; i < k->nout; i++) {
        int rc = check_one(&k->out[i], out ? out[i] : NULL, "output", e);
        if (rc) return rc;
    }
    return 0;
}

/* ---- compile budget ---- */
static atomic_int budget = BACKEND_COMPILE_BUDGET_DEFAULT;
static atomic_int compiles_used;

void backend_set_compile_budget(int n) { atomic_store(&budget, n < 0 ? -1 : n); }
int backend_compile_budget(void) { return atomic_load(&budget); }
int backend_compiles_used(void) { return atomic_load(&compiles_used); }

int backend_take_compile(ane_error *e) {
    for (;;) {
        int used = atomic_load(&compiles_used), lim = atomic_load(&budget);
        if (lim >= 0 && used >= lim)
            return err_set(e, ERR_BUDGET,
                           "compile: ANE compile budget spent (%d of %d compiles in this process; "
                           "the ANE fails every compile after ~119, ane-private-api.md 6.1): "
                           "restart the process, or compile fewer kernels (dynamic weights)",
                           used, lim);
        if (atomic_compare_exchange_weak(&compiles_used, &used, used + 1)) return 0;
    }
}
