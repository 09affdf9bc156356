/* safetensors.h - Hugging Face *.safetensors files: mapped, header checked, tensors converted.
 *
 * Layout: a little-endian uint64 N, N bytes of JSON header (a map from tensor name to
 * {dtype, shape, data_offsets: [begin, end]}, plus an optional "__metadata__"), then the data;
 * offsets are relative to the start of the data. The JSON itself is parsed by the caller (lua-cjson
 * in lua/ane/hf.lua); st_validate then checks every entry before any tensor is read: a known
 * dtype, a shape whose byte size is end - begin, offsets inside the data, and no two tensors
 * overlapping. */
#ifndef ANE_FORMATS_SAFETENSORS_H
#define ANE_FORMATS_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "../core/error.h"
#include "../core/storage.h"
#include "../core/tensor.h"

enum { ST_F32, ST_F16, ST_BF16, ST_F64, ST_I64, ST_U64, ST_I32, ST_U32, ST_I16, ST_U16, ST_I8, ST_U8, ST_BOOL,
       ST_F8_E4M3, ST_F8_E5M2, ST_NDTYPES };
#define ST_MAX_RANK 8

/* "F32" -> ST_F32 ...; -1 for a name safetensors does not define. */
int st_dtype_parse(const char *name);
const char *st_dtype_name(int dt);

typedef struct st_info {
    int dtype, rank;
    int64_t shape[ST_MAX_RANK];
    uint64_t begin, end; /* relative to the data section */
} st_info;

typedef struct st_file {
    storage *map;        /* one reference */
    const char *header;  /* JSON text inside the mapping (not NUL-terminated) */
    size_t header_len, data_off, data_len;
} st_file;

/* Map path and locate the header and data sections. ERR_IO / ERR_FORMAT naming the file. */
int st_open(const char *path, st_file *f, ane_error *e);
void st_close(st_file *f); /* idempotent */

/* Check n entries (names[i] for messages) against a data section of data_len bytes. */
int st_validate(const char *path, const st_info *t, const char *const *names, size_t n, size_t data_len,
                ane_error *e);

/* Convert entry ti's elements (fp32, fp16 or bf16 in the file) into dst (fp32 or fp16), numel
 * of them starting at element dst_off of dst. With heads > 0, ti is a [heads * hs, cols] matrix
 * (cols = 1 for a bias) stored in rotate-half order (HF Llama/Qwen2 q and k) and its rows are
 * reordered into llama2.c's interleaved pairs: row (h, 2i + j) <- row (h, j * hs/2 + i). */
int st_read(const st_file *f, const st_info *ti, const char *name, tensor *dst, size_t dst_off, int heads,
            ane_error *e);

#endif
