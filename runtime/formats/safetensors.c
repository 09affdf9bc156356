/* safetensors.c - mapping, header bounds, entry validation and dtype conversion. */
#include "safetensors.h"

#include <stdlib.h>
#include <string.h>

#include "../core/fp16.h"
#include "mapfile.h"

static const struct { const char *name; int size; } dtypes[ST_NDTYPES] = {
    [ST_F32] = {"F32", 4},  [ST_F16] = {"F16", 2},   [ST_BF16] = {"BF16", 2}, [ST_F64] = {"F64", 8},
    [ST_I64] = {"I64", 8},  [ST_U64] = {"U64", 8},   [ST_I32] = {"I32", 4},   [ST_U32] = {"U32", 4},
    [ST_I16] = {"I16", 2},  [ST_U16] = {"U16", 2},   [ST_I8] = {"I8", 1},     [ST_U8] = {"U8", 1},
    [ST_BOOL] = {"BOOL", 1}, [ST_F8_E4M3] = {"F8_E4M3", 1}, [ST_F8_E5M2] = {"F8_E5M2", 1},
};

int st_dtype_parse(const char *name) {
    for (int i = 0; i < ST_NDTYPES; i++)
        if (strcmp(name, dtypes[i].name) == 0) return i;
    return -1;
}

const char *st_dtype_name(int dt) { return dt >= 0 && dt < ST_NDTYPES ? dtypes[dt].name : "?"; }

#define ST_MAX_HEADER ((uint64_t)100 << 20) /* the format's own limit is 100 MB */

int st_open(const char *path, st_file *f, ane_error *e) {
    memset(f, 0, sizeof *f);
    storage *s = mapfile_open(path, e);
    if (!s) return e ? e->code : ERR_IO;
    const unsigned char *p = s->data;
    size_t n = s->nbytes;
    if (n < 8) {
        storage_release(s);
        return err_set(e, ERR_FORMAT, "%s: truncated safetensors file: %zu bytes, the header length alone is 8", path, n);
    }
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | p[i];
    if (hl > ST_MAX_HEADER || hl > n - 8) {
        storage_release(s);
        return err_set(e, ERR_FORMAT, "%s: not a safetensors file: header length %llu %s (file size %zu)", path,
                       (unsigned long long)hl, hl > ST_MAX_HEADER ? "is over the format's 100 MB limit" : "runs past the end",
                       n);
    }
    if (hl < 2 || p[8] != '{') {
        storage_release(s);
        return err_set(e, ERR_FORMAT, "%s: not a safetensors file: the header is not a JSON object", path);
    }
    f->map = s;
    f->header = (const char *)p + 8;
    f->header_len = (size_t)hl;
    f->data_off = 8 + (size_t)hl;
    f->data_len = n - f->data_off;
    return 0;
}

void st_close(st_file *f) {
    storage_release(f->map);
    f->map = NULL;
}

typedef struct span { uint64_t b, e; size_t i; } span;

static int span_cmp(const void *x, const void *y) {
    const span *a = x, *b = y;
    return a->b < b->b ? -1 : a->b > b->b ? 1 : (a->e > b->e) - (a->e < b->e);
}

int st_validate(const char *path, const st_info *t, const char *const *names, size_t n, size_t data_len,
                ane_error *e) {
    for (size_t i = 0; i < n; i++) {
        const st_info *ti = &t[i];
        if (ti->dtype < 0 || ti->dtype >= ST_NDTYPES)
            return err_set(e, ERR_FORMAT, "%s: tensor %s: unknown dtype", path, names[i]);
        if (ti->rank < 0 || ti->rank > ST_MAX_RANK)
            return err_set(e, ERR_FORMAT, "%s: tensor %s: rank %d is more than %d", path, names[i], ti->rank, ST_MAX_RANK);
        uint64_t numel = 1;
        for (int d = 0; d < ti->rank; d++) {
            if (ti->shape[d] < 0)
                return err_set(e, ERR_FORMAT, "%s: tensor %s: negative dimension", path, names[i]);
            if (ti->shape[d] && numel > UINT64_MAX / 16 / (uint64_t)ti->shape[d])
                return err_set(e, ERR_FORMAT, "%s: tensor %s: the shape's size overflows", path, names[i]);
            numel *= (uint64_t)ti->shape[d];
        }
        if (ti->end < ti->begin)
            return err_set(e, ERR_FORMAT, "%s: tensor %s: data_offsets [%llu, %llu] end before they begin", path,
                           names[i], (unsigned long long)ti->begin, (unsigned long long)ti->end);
        if (ti->end > data_len)
            return err_set(e, ERR_FORMAT, "%s: tensor %s: data_offsets [%llu, %llu] run past the data section (%zu bytes): the file is truncated or inconsistent",
                           path, names[i], (unsigned long long)ti->begin, (unsigned long long)ti->end, data_len);
        uint64_t want = numel * (uint64_t)dtypes[ti->dtype].size;
        if (ti->end - ti->begin != want)
            return err_set(e, ERR_FORMAT, "%s: tensor %s: %s with %llu elements needs %llu bytes, data_offsets give %llu",
                           path, names[i], dtypes[ti->dtype].name, (unsigned long long)numel, (unsigned long long)want,
                           (unsigned long long)(ti->end - ti->begin));
    }
    span *sp = malloc((n ? n : 1) * sizeof *sp);
    if (!sp) return err_set(e, ERR_NOMEM, "%s: out of memory", path);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (t[i].end > t[i].begin) sp[k++] = (span){t[i].begin, t[i].end, i};
    qsort(sp, k, sizeof *sp, span_cmp);
    for (size_t i = 1; i < k; i++)
        if (sp[i].b < sp[i - 1].e) {
            int rc = err_set(e, ERR_FORMAT, "%s: tensors %s and %s overlap (bytes [%llu, %llu) and [%llu, %llu))", path,
                             names[sp[i - 1].i], names[sp[i].i], (unsigned long long)sp[i - 1].b,
                             (unsigned long long)sp[i - 1].e, (unsigned long long)sp[i].b, (unsigned long long)sp[i].e);
            free(sp);
            return rc;
        }
    free(sp);
    return 0;
}

/* Element i of a source of dtype sdt as fp32. */
static inline float load_f32(const unsigned char *p, int sdt, size_t i) {
    if (sdt == ST_F32) { float v; memcpy(&v, p + 4 * i, 4); return v; }
    uint16_t h;
    memcpy(&h, p + 2 * i, 2);
    if (sdt == ST_F16) return fp16_to_f32(h);
    uint32_t b = (uint32_t)h << 16;
    float v;
    memcpy(&v, &b, 4);
    return v;
}

/* Convert n elements starting at src element s0 into dst (fp32 or fp16) at element d0. */
static void convert_run(const unsigned char *src, int sdt, size_t s0, void *dst, dtype ddt, size_t d0, size_t n) {
    if (ddt == DT_FP32) {
        float *d = (float *)dst + d0;
        if (sdt == ST_F32) memcpy(d, src + 4 * s0, 4 * n);
        else if (sdt == ST_F16) {
            for (size_t i = 0; i < n; i++) { uint16_t h; memcpy(&h, src + 2 * (s0 + i), 2); d[i] = fp16_to_f32(h); }
        } else
            for (size_t i = 0; i < n; i++) d[i] = load_f32(src, sdt, s0 + i);
    } else {
        uint16_t *d = (uint16_t *)dst + d0;
        if (sdt == ST_F16) memcpy(d, src + 2 * s0, 2 * n);
        else
            for (size_t i = 0; i < n; i++) d[i] = fp16_from_f32(load_f32(src, sdt, s0 + i));
    }
}

int st_read(const st_file *f, const st_info *ti, const char *name, tensor *dst, size_t dst_off, int heads,
            ane_error *e) {
    if (ti->dtype != ST_F32 && ti->dtype != ST_F16 && ti->dtype != ST_BF16)
        return err_set(e, ERR_TYPE, "tensor %s has dtype %s; F32, F16 and BF16 are supported", name,
                       dtypes[ti->dtype].name);
    if (dst->dt != DT_FP32 && dst->dt != DT_FP16)
        return err_set(e, ERR_TYPE, "tensor %s: can only convert to fp32 or fp16", name);
    size_t numel = (ti->end - ti->begin) / (size_t)dtypes[ti->dtype].size;
    if (dst_off > (size_t)tensor_numel(dst) || numel > (size_t)tensor_numel(dst) - dst_off)
        return err_set(e, ERR_SHAPE, "tensor %s: %zu elements do not fit the destination", name, numel);
    const unsigned char *src = (const unsigned char *)f->map->data + f->data_off + ti->begin;
    void *d = tensor_data(dst);
    if (heads <= 0) {
        convert_run(src, ti->dtype, 0, d, dst->dt, dst_off, numel);
        return 0;
    }
    size_t rows = ti->rank >= 1 ? (size_t)ti->shape[0] : 1, cols = rows ? numel / rows : 0;
    if (rows % (size_t)heads != 0 || (rows / (size_t)heads) % 2 != 0)
        return err_set(e, ERR_SHAPE, "tensor %s: %zu rows do not split into %d heads of an even size", name, rows, heads);
    size_t hs = rows / (size_t)heads, half = hs / 2;
    for (size_t h = 0; h < (size_t)heads; h++)
        for (size_t i = 0; i < half; i++)
            for (size_t j = 0; j < 2; j++) {
                size_t to = h * hs + 2 * i + j, from = h * hs + j * half + i;
                convert_run(src, ti->dtype, from * cols, d, dst->dt, dst_off + to * cols, cols);
            }
    return 0;
}
