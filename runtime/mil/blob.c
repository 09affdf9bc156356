/* blob.c - weight blob files (ane-private-api.md section 3) and @model_path resolution.
 *
 * Writer: spec-conformant "MIL blob storage v2": a 64-byte header {u32 count, u32 version = 2},
 * then per tensor a 64-byte metadata record {u32 0xDEADBEEF, u32 dtype, u64 size, u64 data
 * offset} and the data, padded to 64 bytes. Reader: validates header, sentinel and bounds, and
 * tolerates the research generators' sloppy records (data offset 0, size field wrong, dtype byte
 * left at 1 for int8 chunks): with a data offset of 0 the data is taken to start right after the
 * record, which is what the compiler evidently does since those files run. */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check.h"
#include "mil_int.h"

#define BLOB_SENTINEL 0xDEADBEEFu
#define BLOB_VERSION 2u
#define BLOB_ALIGN 64u

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

const char *blob_dtype_name(int code) {
    switch (code) {
    case 1: return "fp16";
    case 2: return "fp32";
    case 3: return "uint8";
    case 4: return "int8";
    default: return "unknown";
    }
}

/* ======================= writer ======================= */

struct blob_writer {
    uint8_t *buf;
    size_t n, cap;
    uint32_t count;
};

static int reserve(blob_writer *w, size_t extra, ane_error *e) {
    if (extra > SIZE_MAX - w->n) return err_set(e, ERR_NOMEM, "blob too large");
    size_t need = w->n + extra;
    if (need <= w->cap) return 0;
    size_t cap = w->cap ? w->cap : 4096;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) { cap = need; break; }
        cap *= 2;
    }
    uint8_t *nb = realloc(w->buf, cap);
    if (!nb) return err_set(e, ERR_NOMEM, "out of memory");
    w->buf = nb;
    w->cap = cap;
    return 0;
}

blob_writer *blob_writer_new(ane_error *e) {
    blob_writer *w = calloc(1, sizeof *w);
    if (!w || reserve(w, BLOB_ALIGN, e)) {
        free(w);
        err_set(e, ERR_NOMEM, "out of memory");
        return NULL;
    }
    memset(w->buf, 0, BLOB_ALIGN);
    w->n = BLOB_ALIGN;
    return w;
}

int blob_writer_add_raw(blob_writer *w, int code, const void *data, size_t nbytes, uint64_t *meta_offset,
                        ane_error *e) {
    if (!w) return err_set(e, ERR_INVAL, "no blob writer");
    if (code < 1 || code > 4) return err_set(e, ERR_TYPE, "blob dtype code %d (1 fp16, 2 fp32, 3 uint8, 4 int8)", code);
    if (nbytes && !data) return err_set(e, ERR_INVAL, "blob tensor without data");
    size_t padded = (nbytes + BLOB_ALIGN - 1) / BLOB_ALIGN * BLOB_ALIGN;
    if (padded < nbytes || padded > SIZE_MAX - BLOB_ALIGN) return err_set(e, ERR_NOMEM, "blob too large");
    int rc = reserve(w, BLOB_ALIGN + padded, e);
    if (rc) return rc;
    uint8_t *m = w->buf + w->n;
    memset(m, 0, BLOB_ALIGN + padded);
    put_u32(m, BLOB_SENTINEL);
    put_u32(m + 4, (uint32_t)code);
    put_u64(m + 8, nbytes);
    put_u64(m + 16, (uint64_t)w->n + BLOB_ALIGN);
    if (nbytes) memcpy(m + BLOB_ALIGN, data, nbytes);
    if (meta_offset) *meta_offset = w->n;
    w->n += BLOB_ALIGN + padded;
    w->count++;
    return 0;
}

int blob_writer_add(blob_writer *w, const tensor *t, uint64_t *meta_offset, ane_error *e) {
    if (!t) return err_set(e, ERR_INVAL, "no tensor");
    int code;
    size_t es;
    switch (t->dt) {
    case DT_FP16: code = 1; es = 2; break;
    case DT_FP32: code = 2; es = 4; break;
    case DT_UINT8: code = 3; es = 1; break;
    case DT_INT8: code = 4; es = 1; break;
    default: return err_set(e, ERR_TYPE, "blob files hold fp16, fp32, int8 or uint8 tensors");
    }
    if (t->rank < 0 || t->rank > TENSOR_MAX_RANK) return err_set(e, ERR_SHAPE, "bad tensor rank");
    int64_t n = mil_shape_numel(t->rank, t->shape);
    if (n < 0 || (uint64_t)n > SIZE_MAX / es) return err_set(e, ERR_SHAPE, "bad tensor shape");
    size_t nbytes = (size_t)n * es;
    if (nbytes && (!t->st || !t->st->data || t->offset > t->st->nbytes || nbytes > t->st->nbytes - t->offset))
        return err_set(e, ERR_STATE, "tensor has no data");
    const storage_ops *ops = t->st ? t->st->ops : NULL;
    if (ops && ops->lock) {
        int rc = ops->lock(t->st, 1);
        if (rc) return err_set(e, rc, "cannot lock tensor storage");
    }
    int rc = blob_writer_add_raw(w, code, nbytes ? (const uint8_t *)t->st->data + t->offset : NULL, nbytes,
                                 meta_offset, e);
    if (ops && ops->unlock) ops->unlock(t->st, 1);
    return rc;
}

int blob_writer_finish(blob_writer *w, uint8_t **data, size_t *size, ane_error *e) {
    if (!w) return err_set(e, ERR_INVAL, "no blob writer");
    put_u32(w->buf, w->count);
    put_u32(w->buf + 4, BLOB_VERSION);
    *data = w->buf;
    *size = w->n;
    free(w);
    return 0;
}

void blob_writer_free(blob_writer *w) {
    if (!w) return;
    free(w->buf);
    free(w);
}

/* ======================= reader ======================= */

int blob_read_ex(const uint8_t *data, size_t size, uint64_t meta_offset, const char *name, int *blob_dtype,
                 const uint8_t **payload, uint64_t *payload_size, int *sloppy, ane_error *e) {
    if (!name) name = "blob";
    if (!data || size < BLOB_ALIGN)
        return err_set(e, ERR_FORMAT, "%s: %zu bytes, too small for a blob file header", name, size);
    uint32_t version = get_u32(data + 4);
    if (version != BLOB_VERSION)
        return err_set(e, ERR_FORMAT, "%s: blob file version %u, expected %u", name, version, BLOB_VERSION);
    if (meta_offset < BLOB_ALIGN)
        return err_set(e, ERR_FORMAT, "%s: offset %llu points into the file header", name,
                       (unsigned long long)meta_offset);
    if (meta_offset > size || size - meta_offset < BLOB_ALIGN)
        return err_set(e, ERR_FORMAT, "%s: offset %llu is past the end of the file (%zu bytes)", name,
                       (unsigned long long)meta_offset, size);
    const uint8_t *m = data + meta_offset;
    uint32_t sentinel = get_u32(m);
    if (sentinel != BLOB_SENTINEL)
        return err_set(e, ERR_FORMAT, "%s: no blob metadata at offset %llu (found 0x%08X, expected 0xDEADBEEF)",
                       name, (unsigned long long)meta_offset, sentinel);
    uint32_t code = get_u32(m + 4);
    uint64_t sz = get_u64(m + 8), off = get_u64(m + 16);
    if (off == 0) {
        /* research layout: data right after the record, size field unreliable */
        *sloppy = 1;
        off = meta_offset + BLOB_ALIGN;
        sz = size - off;
    } else {
        *sloppy = 0;
        if (off < meta_offset + BLOB_ALIGN)
            return err_set(e, ERR_FORMAT, "%s: tensor at offset %llu has its data at %llu, inside its own header",
                           name, (unsigned long long)meta_offset, (unsigned long long)off);
        if (off > size || sz > size - off)
            return err_set(e, ERR_FORMAT, "%s: tensor at offset %llu: %llu bytes at %llu extend past the end of the file (%zu bytes)",
                           name, (unsigned long long)meta_offset, (unsigned long long)sz, (unsigned long long)off,
                           size);
    }
    if (blob_dtype) *blob_dtype = (int)code;
    if (payload) *payload = data + off;
    if (payload_size) *payload_size = sz;
    return 0;
}

int blob_read(const uint8_t *data, size_t size, uint64_t meta_offset, const char *name, int *blob_dtype,
              const uint8_t **payload, uint64_t *payload_size, ane_error *e) {
    int sloppy;
    return blob_read_ex(data, size, meta_offset, name, blob_dtype, payload, payload_size, &sloppy, e);
}

/* ======================= decoding into literals ======================= */

static int blob_code_for(mil_dtype dt) {
    switch (dt) {
    case MIL_FP16: return 1;
    case MIL_FP32: return 2;
    case MIL_UINT8: return 3;
    case MIL_INT8: return 4;
    default: return 0; /* other dtypes have codes we do not know; not validated */
    }
}

static const mil_blob *find_blob(const mil_program *p, const char *path) {
    for (int i = 0; i < p->nblobs; i++)
        if (strcmp(p->blobs[i].path, path) == 0) return &p->blobs[i];
    return NULL;
}

static int host_little_endian(void) {
    const uint16_t one = 1;
    return *(const uint8_t *)&one == 1;
}

int mil__lit_load_blob(mil_program *p, mil_literal *lit, ane_error *e) {
    const mil_blob *b = find_blob(p, lit->blob_path);
    if (!b) return err_set(e, ERR_STATE, "weight file '%s' is not loaded", lit->blob_path);
    int code, sloppy;
    const uint8_t *pay;
    uint64_t psz;
    int rc = blob_read_ex(b->data, b->size, lit->blob_offset, lit->blob_path, &code, &pay, &psz, &sloppy, e);
    if (rc) return rc;
    mil_dtype dt = lit->type.dtype;
    int want = blob_code_for(dt);
    if (!sloppy && want && code != want)
        return err_set(e, ERR_TYPE, "%s: tensor at offset %llu is %s (code %d), the literal is %s", lit->blob_path,
                       (unsigned long long)lit->blob_offset, blob_dtype_name(code), code, mil_dtype_name(dt));
    int64_t n = mil_shape_numel(lit->type.rank, lit->type.shape);
    int bits = mil_dtype_bits(dt);
    if (n < 0 || bits <= 0) return err_set(e, ERR_TYPE, "%s: cannot hold %s data", lit->blob_path, mil_dtype_name(dt));
    if ((uint64_t)n > UINT64_MAX / 64) return err_set(e, ERR_SHAPE, "%s: tensor too large", lit->blob_path);
    uint64_t need = ((uint64_t)n * (uint64_t)bits + 7) / 8;
    if (need > psz)
        return err_set(e, ERR_FORMAT, "%s: tensor at offset %llu holds %llu bytes, %s[%lld elements] needs %llu",
                       lit->blob_path, (unsigned long long)lit->blob_offset, (unsigned long long)psz,
                       mil_dtype_name(dt), (long long)n, (unsigned long long)need);
    size_t es = mil_dtype_elem_size(dt);
    /* The stored bytes already are the decoded elements (whole bytes, little-endian host): point
     * into the program's copy of the file instead of copying it (both live in the program's
     * arena; the literal is read-only). Consumers load elements as typed values, so this needs
     * natural alignment: spec files put payloads at 64-byte offsets, but a research file's data
     * can start anywhere, and is copied then. */
    if (bits >= 8 && n > 0 && (host_little_endian() || es == 1) && (uintptr_t)pay % es == 0) {
        lit->data = b->data + (pay - b->data);
        return 0;
    }
    uint8_t *d = mil_arena_alloc_array(p->arena, (size_t)(n ? n : 1), es);
    if (!d) return err_set(e, ERR_NOMEM, "out of memory for %s", lit->blob_path);
    if (bits >= 8) {
        if (host_little_endian() || es == 1) {
            memcpy(d, pay, (size_t)need);
        } else {
            for (int64_t i = 0; i < n; i++)
                for (size_t k = 0; k < es; k++) d[i * (int64_t)es + (int64_t)k] = pay[i * (int64_t)es + (int64_t)(es - 1 - k)];
        }
    } else {
        /* sub-byte: a little-endian bit stream, element i at bits [i*bits, (i+1)*bits) */
        for (int64_t i = 0; i < n; i++) {
            uint64_t bit = (uint64_t)i * (uint64_t)bits;
            unsigned v = 0;
            for (int k = 0; k < bits; k++, bit++) v |= (unsigned)((pay[bit / 8] >> (bit % 8)) & 1u) << k;
            if (dt == MIL_INT4 && (v & 8u)) d[i] = (uint8_t)(int8_t)((int)v - 16);
            else d[i] = (uint8_t)v;
        }
    }
    lit->data = d;
    return 0;
}

/* ======================= @model_path ======================= */

#define MODEL_PATH "@model_path/"

static int load_file(mil_program *p, const char *key, const char *full, ane_error *e) {
    FILE *fp = fopen(full, "rb");
    if (!fp) return err_set(e, ERR_IO, "cannot open weight file %s (%s): %s", full, key, strerror(errno));
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(fp);
        return err_set(e, ERR_IO, "weight file %s (%s) is not a regular file", full, key);
    }
    size_t size = (size_t)st.st_size;
    uint8_t *data = mil_arena_alloc(p->arena, size ? size : 1);
    if (!data) { fclose(fp); return err_set(e, ERR_NOMEM, "out of memory reading %s", full); }
    size_t got = size ? fread(data, 1, size, fp) : 0;
    fclose(fp);
    if (got != size) return err_set(e, ERR_IO, "short read on weight file %s", full);
    if (mil_arena_grow(p->arena, (void **)&p->blobs, &p->cap_blobs, p->nblobs, 4, INT_MAX,
                       sizeof *p->blobs))
        return err_set(e, ERR_NOMEM, "out of memory");
    mil_blob *b = &p->blobs[p->nblobs];
    b->path = mil_arena_strdup(p->arena, key);
    b->data = data;
    b->size = size;
    if (!b->path) return err_set(e, ERR_NOMEM, "out of memory");
    p->nblobs++;
    return 0;
}

int mil_resolve_weights(mil_program *p, const char *model_dir, ane_error *e) {
    return mil_resolve_weights_present(p, model_dir, NULL, NULL, e);
}

/* Add path to the distinct missing-file list (arena-owned). */
static int note_missing(mil_program *p, const char ***list, int *n, int *cap, const char *path, ane_error *e) {
    for (int i = 0; i < *n; i++)
        if (!strcmp((*list)[i], path)) return 0;
    if (mil_arena_grow(p->arena, (void **)list, cap, *n, 4, INT_MAX, sizeof **list))
        return err_set(e, ERR_NOMEM, "out of memory");
    if (!((*list)[*n] = mil_arena_strdup(p->arena, path))) return err_set(e, ERR_NOMEM, "out of memory");
    (*n)++;
    return 0;
}

int mil_resolve_weights_present(mil_program *p, const char *model_dir, const char ***missing,
                                int *nmissing, ane_error *e) {
    int skipped = 0, cap = 0;
    if (missing) *missing = NULL;
    if (nmissing) *nmissing = 0;
    if (!p) return err_set(e, ERR_INVAL, "no program");
    if (!model_dir || !*model_dir) model_dir = ".";
    const char *md = mil_arena_strdup(p->arena, model_dir);
    if (!md) return err_set(e, ERR_NOMEM, "out of memory");
    p->model_dir = md;
    for (int fi = 0; fi < p->nfuncs; fi++) {
        mil_function *f = &p->funcs[fi];
        for (int vi = 0; vi < f->nvalues; vi++) {
            mil_value *v = &f->values[vi];
            mil_literal *l = v->lit;
            if (!l || l->form != MIL_LIT_BLOB || l->data) continue;
            ane_error sub;
            err_clear(&sub);
            int rc = 0;
            if (!find_blob(p, l->blob_path)) {
                if (strncmp(l->blob_path, MODEL_PATH, strlen(MODEL_PATH)) != 0) {
                    rc = err_set(&sub, ERR_FORMAT, "BLOBFILE path '%s' does not start with %s", l->blob_path,
                                 MODEL_PATH);
                } else {
                    const char *rest = l->blob_path + strlen(MODEL_PATH);
                    size_t need = strlen(model_dir) + strlen(rest) + 2;
                    char *full = malloc(need);
                    if (!full) return err_set(e, ERR_NOMEM, "out of memory");
                    snprintf(full, need, "%s/%s", model_dir, rest);
                    struct stat st;
                    if (missing && nmissing && stat(full, &st) != 0 && errno == ENOENT) {
                        rc = note_missing(p, missing, nmissing, &cap, full, e);
                        free(full);
                        if (rc) return rc;
                        skipped = 1;
                        continue;
                    }
                    rc = load_file(p, l->blob_path, full, &sub);
                    free(full);
                }
            }
            if (!rc) rc = mil__lit_load_blob(p, l, &sub);
            if (rc) {
                /* position: the literal, or for a const's shared literal its inline attribute */
                int line = v->line, col = v->col;
                return mil_error_at(e, p, rc, line, col, "%s", sub.msg);
            }
        }
    }
    p->resolved = !skipped;
    return 0;
}
