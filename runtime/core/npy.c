/* npy.c - NumPy .npy files: format 1.0, 2.0 and 3.0 headers, read in either byte order and
 * either memory order (NumPy writes fortran_order: True for any Fortran-contiguous array and
 * '>' dtypes for big-endian data); written little-endian, C order.
 *
 * A loaded tensor is always C order in the host's (little-endian) byte order: Fortran-order data
 * is transposed while it is copied into the tensor, big-endian data is byte-swapped in place.
 * Every size read from a file is checked against the file's real size before anything is
 * allocated, so a malformed or hostile file costs at most its own length (twice for a
 * Fortran-order file read from disk: the file's bytes, then the tensor). */
#include "npy.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c reads and writes little-endian data in place; add byte swapping for this host"
#endif

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAX_HEADER (1u << 20) /* NumPy itself refuses headers over 10 kB by default */

typedef struct npy_desc {
    dtype dt;
    int rank;
    int64_t shape[TENSOR_MAX_RANK];
    size_t data_off; /* bytes before the array data */
    int swap;        /* big-endian multi-byte elements: swap each after reading */
    int fortran;     /* the data is in Fortran (column-major) order */
} npy_desc;

/* ---- header parsing ---- */

typedef struct cursor {
    const char *p, *end, *start;
    const char *name;
    ane_error *e;
} cursor;

static int bad(cursor *c, const char *what) {
    return err_set(c->e, ERR_FORMAT, "%s: malformed .npy header: %s at header byte %d", c->name, what,
                   (int)(c->p - c->start));
}

static void skipws(cursor *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r')) c->p++;
}

static int expect(cursor *c, char ch, const char *what) {
    skipws(c);
    if (c->p >= c->end || *c->p != ch) return bad(c, what);
    c->p++;
    return 0;
}

/* A Python string literal in '' or "" (no escapes: NumPy never writes any in these fields). */
static int pystring(cursor *c, char *out, size_t n) {
    skipws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return bad(c, "expected a quoted string");
    char q = *c->p++;
    size_t k = 0;
    while (c->p < c->end && *c->p != q) {
        if (*c->p == '\\' || k + 1 >= n) return bad(c, "unsupported string");
        out[k++] = *c->p++;
    }
    if (c->p >= c->end) return bad(c, "unterminated string");
    c->p++;
    out[k] = '\0';
    return 0;
}

static int word(cursor *c, const char *w) {
    size_t n = strlen(w);
    if ((size_t)(c->end - c->p) >= n && memcmp(c->p, w, n) == 0) {
        c->p += n;
        return 1;
    }
    return 0;
}

static int parse_dtype(cursor *c, const char *descr, npy_desc *d) {
    static const struct { const char *code; dtype dt; } codes[] = {
        {"f2", DT_FP16}, {"f4", DT_FP32}, {"i4", DT_INT32}, {"i1", DT_INT8}, {"u1", DT_UINT8}, {"b1", DT_BOOL},
    };
    char order = descr[0];
    const char *code = descr + (order ? 1 : 0);
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        if (strcmp(code, codes[i].code) != 0) continue;
        int one_byte = dtype_size(codes[i].dt) == 1;
        /* NumPy writes '|' for one-byte types and '<' or '>' for the others ('=' is native) */
        if (order == '<' || order == '=' || order == '>' || (one_byte && order == '|')) {
            d->dt = codes[i].dt;
            d->swap = order == '>' && !one_byte;
            return 0;
        }
    }
    return err_set(c->e, ERR_FORMAT, "%s: unsupported dtype '%s' (supported: <f2 >f2 <f4 >f4 <i4 >i4 |i1 |u1 |b1)",
                   c->name, descr);
}

static int parse_shape(cursor *c, npy_desc *d) {
    if (expect(c, '(', "expected '(' for shape")) return c->e ? c->e->code : ERR_FORMAT;
    d->rank = 0;
    for (;;) {
        skipws(c);
        if (c->p < c->end && *c->p == ')') { c->p++; return 0; }
        if (c->p >= c->end || *c->p < '0' || *c->p > '9') return bad(c, "expected a dimension");
        int64_t v = 0;
        while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
            if (v > (INT64_MAX - 9) / 10) return bad(c, "dimension too large");
            v = v * 10 + (*c->p++ - '0');
        }
        if (c->p < c->end && *c->p == 'L') c->p++; /* Python 2 long literals */
        if (d->rank == TENSOR_MAX_RANK)
            return err_set(c->e, ERR_FORMAT, "%s: rank is more than %d", c->name, TENSOR_MAX_RANK);
        d->shape[d->rank++] = v;
        skipws(c);
        if (c->p < c->end && *c->p == ',') c->p++;
        else if (c->p >= c->end || *c->p != ')') return bad(c, "expected ',' or ')' in shape");
    }
}

/* The dict literal: exactly the keys descr, fortran_order and shape, in any order. */
static int parse_dict(const char *hdr, size_t n, const char *name, npy_desc *d, ane_error *e) {
    cursor c = {hdr, hdr + n, hdr, name, e};
    int rc, seen = 0, fortran = 0;
    char descr[32] = "";
    if ((rc = expect(&c, '{', "expected '{'"))) return rc;
    for (;;) {
        skipws(&c);
        if (c.p < c.end && *c.p == '}') { c.p++; break; }
        char key[32];
        if ((rc = pystring(&c, key, sizeof key)) || (rc = expect(&c, ':', "expected ':'"))) return rc;
        skipws(&c);
        if (strcmp(key, "descr") == 0) {
            if (c.p < c.end && (*c.p == '[' || *c.p == '{'))
                return err_set(e, ERR_FORMAT, "%s: structured dtypes are not supported", name);
            if ((rc = pystring(&c, descr, sizeof descr))) return rc;
            seen |= 1;
        } else if (strcmp(key, "fortran_order") == 0) {
            if (word(&c, "True")) fortran = 1;
            else if (word(&c, "False")) fortran = 0;
            else return bad(&c, "expected True or False");
            seen |= 2;
        } else if (strcmp(key, "shape") == 0) {
            if ((rc = parse_shape(&c, d))) return rc;
            seen |= 4;
        } else {
            return err_set(e, ERR_FORMAT, "%s: malformed .npy header: unknown key '%s'", name, key);
        }
        skipws(&c);
        if (c.p < c.end && *c.p == ',') c.p++;
        else if (c.p >= c.end || *c.p != '}') return bad(&c, "expected ',' or '}'");
    }
    skipws(&c);
    if (c.p != c.end) return bad(&c, "trailing characters");
    if (seen != 7)
        return err_set(e, ERR_FORMAT, "%s: malformed .npy header: missing key '%s'", name,
                       !(seen & 1) ? "descr" : !(seen & 2) ? "fortran_order" : "shape");
    if ((rc = parse_dtype(&c, descr, d))) return rc;
    d->fortran = fortran;
    for (int i = 0; i < d->rank; i++)
        if (d->shape[i] < 1) return err_set(e, ERR_FORMAT, "%s: zero-size arrays are not supported", name);
    ane_error se;
    if (shape_check(d->rank, d->shape, d->dt, &se)) return err_set(e, ERR_FORMAT, "%s: %s", name, se.msg);
    return 0;
}

/* From the first bytes (at least 12 or the whole file), the header length and where data starts. */
static int parse_preamble(const unsigned char *b, size_t have, uint64_t file_size, const char *name, size_t *hstart,
                          size_t *hlen, ane_error *e) {
    if (have < 10 || memcmp(b, NPY_MAGIC, 6) != 0)
        return err_set(e, ERR_FORMAT, "%s: not a .npy file (bad magic)", name);
    int major = b[6], minor = b[7];
    if (major == 1) {
        *hstart = 10;
        *hlen = (size_t)b[8] | (size_t)b[9] << 8;
    } else if (major == 2 || major == 3) {
        if (have < 12) return err_set(e, ERR_FORMAT, "%s: truncated .npy header", name);
        *hstart = 12;
        *hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
    } else {
        return err_set(e, ERR_FORMAT, "%s: unsupported .npy format version %d.%d", name, major, minor);
    }
    if (*hlen > NPY_MAX_HEADER) return err_set(e, ERR_FORMAT, "%s: .npy header too long (%zu bytes)", name, *hlen);
    if (*hstart + *hlen > file_size)
        return err_set(e, ERR_FORMAT, "%s: truncated .npy header (file is %llu bytes, header needs %zu)", name,
                       (unsigned long long)file_size, *hstart + *hlen);
    return 0;
}

static int check_header_bytes(const char *h, size_t n, const char *name, ane_error *e) {
    if (n == 0 || h[n - 1] != '\n') return err_set(e, ERR_FORMAT, "%s: malformed .npy header: no terminating newline", name);
    if (memchr(h, '\0', n)) return err_set(e, ERR_FORMAT, "%s: malformed .npy header: NUL byte", name);
    return 0;
}

static int check_data_size(const npy_desc *d, uint64_t file_size, const char *name, ane_error *e) {
    uint64_t need = (uint64_t)shape_numel(d->rank, d->shape) * dtype_size(d->dt), have = file_size - d->data_off;
    if (have < need)
        return err_set(e, ERR_FORMAT, "%s: truncated .npy data: expected %llu bytes, found %llu", name,
                       (unsigned long long)need, (unsigned long long)have);
    if (have > need)
        return err_set(e, ERR_FORMAT, "%s: %llu unexpected bytes after the .npy data", name, (unsigned long long)(have - need));
    return 0;
}

/* ---- Fortran order and byte order ---- */

/* Copy n elements of size es from src (Fortran order: the first index varies fastest) into dst
 * in C order (the last index varies fastest). An odometer over the C index keeps the source
 * offset: stepping dimension j moves the source by fstride[j] elements. */
static void fortran_to_c(void *dst, const void *src, const npy_desc *d) {
    size_t es = dtype_size(d->dt);
    int64_t fstride[TENSOR_MAX_RANK], idx[TENSOR_MAX_RANK] = {0};
    int64_t n = shape_numel(d->rank, d->shape), acc = 1;
    for (int j = 0; j < d->rank; j++) {
        fstride[j] = acc;
        acc *= d->shape[j];
    }
    const unsigned char *s = src;
    unsigned char *o = dst;
    int64_t off = 0;
    int last = d->rank - 1;
    for (int64_t i = 0; i < n; i++) {
        switch (es) {
        case 1: o[i] = s[off]; break;
        case 2: memcpy(o + 2 * i, s + 2 * off, 2); break;
        default: memcpy(o + 4 * i, s + 4 * off, 4); break;
        }
        for (int j = last; j >= 0; j--) { /* next C index */
            off += fstride[j];
            if (++idx[j] < d->shape[j]) break;
            off -= fstride[j] * d->shape[j];
            idx[j] = 0;
        }
    }
}

static void swap_bytes(void *data, const npy_desc *d) {
    size_t es = dtype_size(d->dt);
    int64_t n = shape_numel(d->rank, d->shape);
    unsigned char *p = data;
    if (es == 2)
        for (int64_t i = 0; i < n; i++, p += 2) {
            unsigned char t = p[0];
            p[0] = p[1];
            p[1] = t;
        }
    else if (es == 4)
        for (int64_t i = 0; i < n; i++, p += 4) {
            uint32_t v;
            memcpy(&v, p, 4);
            v = __builtin_bswap32(v);
            memcpy(p, &v, 4);
        }
}

/* The file's data bytes (in file order) into t's storage in C order, host byte order. */
static void place_data(tensor *t, const void *file_data, const npy_desc *d) {
    if (d->fortran && d->rank > 1) fortran_to_c(tensor_data(t), file_data, d);
    else memcpy(tensor_data(t), file_data, tensor_nbytes(t));
    if (d->swap) swap_bytes(tensor_data(t), d);
}

int npy_load_mem(const void *buf, size_t n, const char *name, tensor *t, ane_error *e) {
    memset(t, 0, sizeof *t);
    if (!name) name = "<memory>";
    const unsigned char *b = buf;
    size_t hs, hl;
    npy_desc d;
    memset(&d, 0, sizeof d);
    int rc = parse_preamble(b, n, n, name, &hs, &hl, e);
    if (rc) return rc;
    if ((rc = check_header_bytes((const char *)b + hs, hl, name, e)) ||
        (rc = parse_dict((const char *)b + hs, hl, name, &d, e)))
        return rc;
    d.data_off = hs + hl;
    if ((rc = check_data_size(&d, n, name, e))) return rc;
    if ((rc = tensor_init(t, d.dt, d.rank, d.shape, e))) return err_prefix(e, "%s", name);
    place_data(t, b + d.data_off, &d);
    return 0;
}

int npy_load(const char *path, tensor *t, ane_error *e) {
    memset(t, 0, sizeof *t);
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(e, ERR_IO, "%s: %s", path, strerror(errno));
    struct stat st;
    int rc;
    char *hdr = NULL;
    void *scratch = NULL;
    if (fstat(fileno(f), &st) != 0) { rc = err_set(e, ERR_IO, "%s: %s", path, strerror(errno)); goto done; }
    if (!S_ISREG(st.st_mode)) { rc = err_set(e, ERR_IO, "%s: not a regular file", path); goto done; }
    uint64_t size = (uint64_t)st.st_size;
    unsigned char pre[12];
    size_t got = fread(pre, 1, sizeof pre, f);
    size_t hs, hl;
    if ((rc = parse_preamble(pre, got, size, path, &hs, &hl, e))) goto done;
    hdr = malloc(hl ? hl : 1); /* bounded by NPY_MAX_HEADER and by the file size */
    if (!hdr) { rc = err_set(e, ERR_NOMEM, "%s: out of memory for the header", path); goto done; }
    if (fseek(f, (long)hs, SEEK_SET) != 0 || fread(hdr, 1, hl, f) != hl) {
        rc = err_set(e, ERR_IO, "%s: read error in the header", path);
        goto done;
    }
    npy_desc d;
    memset(&d, 0, sizeof d);
    if ((rc = check_header_bytes(hdr, hl, path, e)) || (rc = parse_dict(hdr, hl, path, &d, e))) goto done;
    d.data_off = hs + hl;
    if ((rc = check_data_size(&d, size, path, e))) goto done;
    if ((rc = tensor_init(t, d.dt, d.rank, d.shape, e))) { err_prefix(e, "%s", path); goto done; }
    if (d.fortran && d.rank > 1) { /* read the file's order aside, then transpose into t */
        scratch = malloc(tensor_nbytes(t)); /* no larger than the file (checked above) */
        if (!scratch) {
            rc = err_set(e, ERR_NOMEM, "%s: out of memory for the Fortran-order data", path);
            tensor_release(t);
            goto done;
        }
    }
    if (fread(scratch ? scratch : tensor_data(t), 1, tensor_nbytes(t), f) != tensor_nbytes(t)) {
        rc = err_set(e, ERR_IO, "%s: read error in the data", path);
        tensor_release(t);
        goto done;
    }
    if (scratch) fortran_to_c(tensor_data(t), scratch, &d);
    if (d.swap) swap_bytes(tensor_data(t), &d);
done:
    free(scratch);
    free(hdr);
    fclose(f);
    return rc;
}

/* ---- saving ---- */

static const char *descr_of(dtype dt) {
    switch (dt) {
    case DT_FP16: return "<f2";
    case DT_FP32: return "<f4";
    case DT_INT32: return "<i4";
    case DT_INT8: return "|i1";
    case DT_UINT8: return "|u1";
    case DT_BOOL: return "|b1";
    default: return NULL;
    }
}

int npy_save(const char *path, const tensor *t, ane_error *e) {
    if (!t->st) return err_set(e, ERR_STATE, "%s: cannot save a closed tensor", path);
    const char *descr = descr_of(t->dt);
    if (!descr) return err_set(e, ERR_TYPE, "%s: dtype %s cannot be saved", path, dtype_name(t->dt));
    char dict[512], shp[256];
    size_t k = 0;
    shp[0] = '\0';
    for (int i = 0; i < t->rank; i++)
        k += (size_t)snprintf(shp + k, sizeof shp - k, "%lld,%s", (long long)t->shape[i], i + 1 < t->rank ? " " : "");
    if (t->rank > 1 && k > 0) shp[k - 1] = '\0'; /* "(2, 3)" but "(4,)" as Python writes them */
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, shp);
    /* pad with spaces so magic + length + dict + '\n' is a multiple of 64 (NumPy aligns the data) */
    size_t total = 10 + (size_t)n + 1;
    size_t pad = (64 - total % 64) % 64;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, 0, 0};
    size_t hlen = (size_t)n + pad + 1;
    pre[8] = (unsigned char)(hlen & 0xff);
    pre[9] = (unsigned char)(hlen >> 8);
    FILE *f = fopen(path, "wb");
    if (!f) return err_set(e, ERR_IO, "%s: %s", path, strerror(errno));
    int ok = fwrite(pre, 1, 10, f) == 10 && fwrite(dict, 1, (size_t)n, f) == (size_t)n;
    for (size_t i = 0; ok && i < pad; i++) ok = fputc(' ', f) != EOF;
    ok = ok && fputc('\n', f) != EOF;
    ok = ok && fwrite(tensor_data(t), 1, tensor_nbytes(t), f) == tensor_nbytes(t);
    int err = errno;
    if (fclose(f) != 0 && ok) { ok = 0; err = errno; }
    if (!ok) {
        remove(path);
        return err_set(e, ERR_IO, "%s: write failed: %s", path, strerror(err));
    }
    return 0;
}
