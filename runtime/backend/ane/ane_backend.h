/* ane_backend.h - the "ane" backend: Apple's private AppleNeuralEngine framework from plain C.
 *
 * The vtable (backend.h) does compile -> load -> eval -> unload -> free as ane-private-api.md 2
 * and 5 describe; kernel inputs and outputs are IOSurface-backed storages (kind "iosurface") in
 * the flat [1,C,1,S] layout of section 4. This header adds what research scripts need beyond the
 * vtable: facts about a compiled kernel, per-kernel options (QoS, real-time path, perf stats) and
 * the weight-reload experiment (6.6). All functions refuse kernels of other backends. */
#ifndef ANE_BACKEND_ANE_H
#define ANE_BACKEND_ANE_H

#include <stddef.h>
#include <stdint.h>

#include "../backend.h"

const backend *ane_backend(void);
/* Called by backend_register_builtin when built with ANE_WITH_ANE_BACKEND. */
void ane_backend_register_if_built(void);
/* 1 if k was compiled by the ane backend. */
int ane_is_kernel(const kernel *k);

typedef enum { ANE_EVAL_STANDARD = 0, ANE_EVAL_REALTIME = 1 } ane_eval_path;

/* Which request index the ANE gives each input and output (docs/mac.md "First run"): the
 * references pass 0..n-1 in declaration order; whether the device reads them by declaration, by
 * name or by size is a question only hardware answers. */
typedef enum { ANE_IO_DECLARATION = 0, ANE_IO_NAME, ANE_IO_SIZE } ane_io_order;
const char *ane_io_order_name(ane_io_order o);  /* "declaration" "name" "size" */
int ane_io_order_parse(const char *s, ane_io_order *o); /* 0, or -1 if unknown */

typedef struct ane_kernel_facts {
    char hex[256];            /* -[_ANEInMemoryModel hexStringIdentifier] */
    char dir[1024];           /* NSTemporaryDirectory()/hex: model.mil, weights/, compiler output */
    int procedure;            /* procedureIndex used in requests (function position) */
    unsigned qos;
    ane_eval_path path;       /* requested evaluation path */
    ane_eval_path last_path;  /* path the last eval took (realtime falls back to standard) */
    int compile_number;       /* this kernel's compile within the process (1-based) */
    uint64_t state;           /* -[model state] (3 after load on real hardware), 0 if unknown */
    uint64_t program_handle;  /* KVC programHandle, 0 if unknown */
    unsigned perf_mask;       /* perfStatsMask requested (0 = off) */
    uint64_t last_eval_ns;    /* wall time of the last evaluate call, measured here */
    int have_hw_ns;           /* 1 if the OS filled hwExecutionTime for the last eval */
    uint64_t last_hw_ns;
    int direct_inputs, direct_outputs; /* last eval: surfaces passed without a copy */
    long evals;
    /* Request indices in use (declared input/output i -> index), and where they came from:
     * "description" (the loaded model's modelAttributes), "configured" (ane_kernel_configure),
     * "ANE_IO_ORDER", or "assumed" (declaration order: nothing told us otherwise). */
    ane_io_order io_order;    /* meaningful unless io_source is "description" */
    const char *io_source;
    int in_index[64], out_index[64]; /* the first 64 */
} ane_kernel_facts;

int ane_kernel_facts_get(const kernel *k, ane_kernel_facts *f, ane_error *e);

/* Options take effect from the next load (perf_mask) or eval (qos, path). qos 0..63. */
typedef struct ane_kernel_opts {
    int set_qos;       unsigned qos;
    int set_path;      ane_eval_path path;
    int set_perf_mask; unsigned perf_mask;
    int set_io_order;  ane_io_order io_order; /* from the next eval; overrides the description */
} ane_kernel_opts;
int ane_kernel_configure(kernel *k, const ane_kernel_opts *o, ane_error *e);

/* The weight-reload experiment: overwrite the weight file `name` ("@model_path/weights/w.bin" or
 * "weights/w.bin") in the kernel's temp directory with data, then unload and load again without
 * compiling, and rebuild the request. On M4/M5 the output stays the same (weights are baked at
 * compile time, 6.6); this call exists to measure that on other chips and OS versions. */
int ane_kernel_reload_weights(kernel *k, const char *name, const uint8_t *data, size_t n,
                              ane_error *e);

/* The framework objects behind k, borrowed: valid while k lives and until an eval with other
 * tensors rebuilds the request. model is the _ANEInMemoryModel, request the _ANERequest the last
 * eval used (NULL before the first eval), surfaces that request's IOSurfaceRefs, inputs first.
 * For ane.objc (k:objc() in l_ane_backend.c); the backend itself never needs this. */
typedef struct ane_kernel_objects {
    void *model, *request;
    void *surfaces[128];
    int nsurfaces, ninputs;
} ane_kernel_objects;
int ane_kernel_objects_get(const kernel *k, ane_kernel_objects *o, ane_error *e);

/* Compiles this process has sent to the framework (successful or not). */
int ane_framework_compiles(void);

/* IOSurface-backed storage of nbytes (flat: width = bytesPerRow = allocSize = nbytes, height 1,
 * bytesPerElement 1, pixel format 0: section 4.1). */
struct storage *ane_surface_storage_new(size_t nbytes, ane_error *e);
/* The IOSurfaceRef behind st, or NULL if st is not one of ours. */
void *ane_storage_surface(const struct storage *st);

#endif
