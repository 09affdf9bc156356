/* mil.h - parse, build, check, print MIL programs and their weight blobs.
 *
 * Every function that can fail returns 0 or a negative ERR_* code and fills e. Errors about the
 * text carry file:line:col and, in e->msg, the offending source line with a caret under the
 * column:
 *     prog.mil:12:5: conv: weight has 3 dims, expected 4
 *         tensor<fp16, [1, 8, 1, 4]> y = conv(weight = w, x = x)[name = string("c")];
 *         ^
 */
#ifndef ANE_MIL_MIL_H
#define ANE_MIL_MIL_H

#include <stddef.h>

#include "../core/error.h"
#include "../core/tensor.h"
#include "ir.h"

/* ---- parse ---- */
typedef struct mil_parse_opts {
    int lenient;          /* accept the extension forms of mil-reference.md 4.2 (bare bools, ? dims, (a, b) results) */
} mil_parse_opts;

/* The one switch that sets mil_parse_opts.lenient, as every lenient-only error names it: the
 * `ane mil check|fmt|run` flag and the option of ane.compile, q:compile, ane.mil_parse and
 * ane.mil_parse_file. */
#define MIL_LENIENT_SWITCH "--lenient (or {lenient = true})"

/* Parse MIL text. source_name is used in positions (NULL -> "<string>"). The text is copied. */
int mil_parse(const char *text, size_t len, const char *source_name, const mil_parse_opts *o,
              mil_program **out, ane_error *e);
int mil_parse_file(const char *path, const mil_parse_opts *o, mil_program **out, ane_error *e);

/* ---- check ---- */
typedef struct mil_check_opts {
    int strict;           /* reject the lenient-only forms too */
    /* Warnings (duplicate op labels, subnormal fp16 constants) go here, one positioned message
     * per call ("prog.mil:3:9: warning: ..." plus the caret line); NULL drops them. */
    void (*warn)(void *ud, const char *msg);
    void *warn_ud;
} mil_check_opts;

/* Resolve op kinds, apply every op's input rules and shape rule, compare inferred with declared
 * types, reject undefined/duplicate names, wrong dtypes, arity, incompatible shapes, out-of-range
 * attributes. Sets p->checked. */
int mil_check(mil_program *p, const mil_check_opts *o, ane_error *e);

/* ---- weights ---- */
/* Read every BLOBFILE the program references from model_dir (the directory @model_path names)
 * unless p->blobs already holds that path, validate headers/offsets/sizes, and decode each const
 * literal's data. Sets p->model_dir and p->resolved. */
int mil_resolve_weights(mil_program *p, const char *model_dir, ane_error *e);
/* The same, except that a weight file that does not exist is not an error: its full path is
 * listed once in *missing (*nmissing entries, owned by p's arena), its literals stay unread, and
 * p->resolved stays 0. Files that exist are read and checked as above. */
int mil_resolve_weights_present(mil_program *p, const char *model_dir, const char ***missing,
                                int *nmissing, ane_error *e);

/* Blob files (ane-private-api.md section 3): a 64-byte header {u32 count, u32 version = 2}, then
 * per tensor a 64-byte metadata record {u32 0xDEADBEEF, u32 dtype (1 fp16, 2 fp32, 3 uint8,
 * 4 int8), u64 size, u64 data offset} followed by the data padded to 64 bytes. */
typedef struct blob_writer blob_writer;
blob_writer *blob_writer_new(ane_error *e);
/* Append one tensor (fp16, fp32, int8, uint8); *meta_offset receives the value to write in
 * BLOBFILE(offset = ...) (the metadata record's position). */
int blob_writer_add(blob_writer *w, const tensor *t, uint64_t *meta_offset, ane_error *e);
/* Same from raw little-endian bytes with a blob dtype code (1 fp16, 2 fp32, 3 uint8, 4 int8). */
int blob_writer_add_raw(blob_writer *w, int code, const void *data, size_t nbytes, uint64_t *meta_offset,
                        ane_error *e);
/* Hand out the finished bytes (caller frees with free()); the writer is freed. */
int blob_writer_finish(blob_writer *w, uint8_t **data, size_t *size, ane_error *e);
void blob_writer_free(blob_writer *w);
/* Find the tensor whose metadata record is at meta_offset; checks sentinel, bounds, dtype. */
int blob_read(const uint8_t *data, size_t size, uint64_t meta_offset, const char *name,
              int *blob_dtype, const uint8_t **payload, uint64_t *payload_size, ane_error *e);

/* blob_read that also says whether the record is the research generators' sloppy form (data
 * offset 0: data taken right after the record; size and dtype fields not trusted; then
 * *payload_size is everything up to the end of the file). */
int blob_read_ex(const uint8_t *data, size_t size, uint64_t meta_offset, const char *name, int *blob_dtype,
                 const uint8_t **payload, uint64_t *payload_size, int *sloppy, ane_error *e);
/* The dtype name of a blob dtype code ("fp16" for 1, ..., "unknown"). */
const char *blob_dtype_name(int code);

/* ---- print ---- */
typedef enum {
    MIL_DIALECT_SOURCE = 0, /* the program's own: program(1.0) prints the 1.0 dialect, others 1.3 */
    MIL_DIALECT_1_3,        /* program(1.3) (or the program's newer version), bare scalars */
    MIL_DIALECT_1_0         /* program(1.0) + tensor<T, []> scalars (M1/M2 era) */
} mil_dialect;

typedef struct mil_print_opts {
    mil_dialect dialect;
    /* Add coremlc's [buildInfo] when the program has none: every in-memory program the research
     * sent to the ANE compiler carried one (docs/mac.md), so the ANE backend never sends a bare one. */
    int build_info;
} mil_print_opts;

/* Canonical text (mil-reference.md 4.3). *out is malloc'd and NUL-terminated. */
int mil_print(const mil_program *p, const mil_print_opts *o, char **out, size_t *len, ane_error *e);
/* One literal as MIL text (`int32(1)`, `tensor<fp16, [2]>([0x1p+0, 0x0p+0])`); *out malloc'd. */
int mil_print_literal(const mil_literal *l, int dialect_1_0, char **out, size_t *len, ane_error *e);

/* ---- build (used by the Lua builder) ---- */
mil_program *mil_program_new(const char *version, ane_error *e);
int mil_func_new(mil_program *p, const char *name, const char *opset, ane_error *e); /* -> index */
/* Add a parameter; returns its value index. */
int mil_func_add_param(mil_program *p, int fn, const char *name, const mil_type *t, ane_error *e);
/* Add an inline literal (copied into the arena); returns its value index. */
int mil_func_add_literal(mil_program *p, int fn, const mil_literal *lit, ane_error *e);
/* Append an op. Inputs are bindings over existing value indices. result_names may hold NULLs
 * (names are generated); one name for an op with several results is their base (name_0,
 * name_1, ...). The op's rule infers the result types immediately; on a rule violation
 * nothing is appended and e says why. Returns the index of the first result value; the op's
 * results are consecutive values. */
int mil_func_add_op(mil_program *p, int fn, const char *type, const mil_binding *in, int nin,
                    const char *label, const char *const *result_names, int nres_names,
                    ane_error *e);
int mil_func_set_outputs(mil_program *p, int fn, const int *values, int n, ane_error *e);
/* Add a program attribute (`[buildInfo = dict<string, string>(...)]`); the literal is copied. */
int mil_program_add_attr(mil_program *p, const char *name, const mil_literal *lit, ane_error *e);
/* Register a weight file's bytes under path (copied). */
int mil_program_add_blob(mil_program *p, const char *path, const uint8_t *data, size_t size,
                         ane_error *e);

#endif
