/* backend.h - the one interface every executor implements (cpu, ane).
 *
 * A backend turns a checked, weight-resolved MIL program into a kernel for one function, loads
 * it, evaluates it on tensors, and unloads and frees it. Kernels describe their inputs and
 * outputs; a backend may supply the storage for them (IOSurfaces on the ANE) through alloc_io so
 * that Lua writes inputs and reads outputs without copies. */
#ifndef ANE_BACKEND_H
#define ANE_BACKEND_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"
#include "../core/tensor.h"
#include "../mil/ir.h"

typedef enum { PREC_FP16 = 0, PREC_FP32 = 1 } precision_mode;

typedef struct compile_opts {
    const char *function;   /* NULL -> "main" */
    precision_mode precision;/* default fp16 (ANE numerics); ANE_PRECISION overrides the default */
    int strict;             /* refuse/flag what the ANE refuses (ANE_STRICT=1 sets the default) */
    const char *chip;       /* strict mode: chip family ("m1".."m5", NULL = newest) */
    unsigned qos;           /* ANE: QoS (default 21) */
    int threads;            /* CPU: worker threads, 0 = auto */
} compile_opts;

void compile_opts_default(compile_opts *o); /* ANE_PRECISION / ANE_STRICT, as read at start-up */

typedef struct kernel_io {
    const char *name;
    dtype dt;
    int rank;
    int64_t shape[TENSOR_MAX_RANK];
} kernel_io;

typedef struct backend backend;

typedef struct kernel {
    const backend *be;
    mil_program *prog;      /* retained */
    int nin, nout;
    kernel_io *in, *out;
    int loaded;
    void *impl;             /* backend-private state */
    /* Compile warnings, one per line (bounded: later ones are dropped with a final "..."). The
     * Lua binding hands them to lua_warning and lists them in k.warnings. */
    char warnings[1024];
} kernel;

struct backend {
    const char *name;                       /* "cpu", "ane" */
    const char *description;
    /* 1 if usable here; else 0 and why (e.g. "framework not found: ..."). */
    int (*available)(char *why, size_t n);
    int (*compile)(mil_program *p, const compile_opts *o, kernel **out, ane_error *e);
    int (*load)(kernel *k, ane_error *e);
    /* in[i]/out[i] follow k->in/k->out order; shapes and dtypes must match exactly. */
    int (*eval)(kernel *k, tensor *const *in, tensor *const *out, ane_error *e);
    int (*unload)(kernel *k, ane_error *e);
    void (*free)(kernel *k);                /* also unloads; NULL-safe */
    /* Optional: give t storage suited to k's input (is_output = 0) or output number idx. */
    int (*alloc_io)(kernel *k, int is_output, int idx, tensor *t, ane_error *e);
    /* Optional: facts for `ane info` as "key=value\n" lines. */
    int (*info)(char *buf, size_t n);
    /* Optional: the name as every report shows it, when the name alone would mislead (the ane
     * backend on the project's stand-in: "ane (stand-in at PATH)"). 0: use name. */
    int (*label)(char *buf, size_t n);
};

int backend_register(const backend *b);        /* at most 16; later names replace earlier ones */
const backend *backend_get(const char *name);  /* NULL if unknown */
int backend_count(void);
const backend *backend_at(int i);
/* The default: the one set by backend_set_default if any, else $ANE_BACKEND (read once at
 * start-up, runtime/core/settings.h), else "ane" when available on macOS, else "cpu" (the Linux
 * "ane" is the test stand-in and is used only by name). An $ANE_BACKEND naming no backend is an
 * error listing the known ones (backend_default_ex); backend_default returns NULL for it. */
int backend_default_ex(const backend **out, ane_error *e);
const backend *backend_default(void);
/* Make b the default for every later compile in the process (NULL: back to $ANE_BACKEND or
 * automatic). Safe beside compile workers; never touches the environment. */
void backend_set_default(const backend *b);
/* The registered names as "cpu, ane" into buf; returns how many there are. */
int backend_names(char *buf, size_t n);
/* The one "unknown backend" error: "WHERE: unknown backend 'NAME' (known: cpu, ane)" (where may
 * be NULL); returns ERR_INVAL. */
int backend_unknown(ane_error *e, const char *name, const char *where);
void backend_register_builtin(void);          /* cpu (+ ane where built); idempotent */

/* Per-process compile budget (ane-private-api.md 6.1, ane-field-notes.md 8): the ANE fails every
 * compile after about 119 in one process. The ane backend counts every compile; the cpu backend
 * counts them in strict mode, so scripts meet the limit before they reach a Mac. Default 119;
 * n < 0 means unlimited. */
#define BACKEND_COMPILE_BUDGET_DEFAULT 119
void backend_set_compile_budget(int n);
int backend_compile_budget(void);
int backend_compiles_used(void);
/* Count one compile; when the budget is spent, fails with ERR_BUDGET and the message both
 * backends share ("compile: ANE compile budget spent: ..."), counting nothing. */
int backend_take_compile(ane_error *e);

/* Append one line to k->warnings. */
void kernel_warn(kernel *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Warn for every input and output whose innermost row is not a multiple of 64 bytes: the ANE
 * stores the last axis contiguous in 64-byte rows (ane-field-notes.md 2.8), so such a tensor is
 * padded on the device and its surface layout is unverified. The ane backend and strict mode call it. */
void kernel_warn_rows(kernel *k);

/* Generic helpers over the vtable (check kernel state, shapes and dtypes of eval arguments). */
int kernel_check_io(const kernel *k, tensor *const *in, tensor *const *out, ane_error *e);

#endif
