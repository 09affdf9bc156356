/* tensor.c - dense row-major tensors over a storage: shapes, element access, conversion, random
 * fills and the few arithmetic helpers training loops need.
 *
 * Data access assumes the storage is CPU-addressable: heap storage always is; callers bracket access
 * to lockable kinds (IOSurface) with storage_lock/storage_unlock, as the Lua binding does. */
#include "tensor.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fp16.h"

/* ---- shapes ---- */

int64_t shape_numel(int rank, const int64_t *shape) {
    if (rank < 0 || rank > TENSOR_MAX_RANK) return -1;
    int64_t n = 1;
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 0) return -1;
        if (shape[i] != 0 && n > INT64_MAX / shape[i]) return -1;
        n *= shape[i];
    }
    return n;
}

const char *shape_str(int rank, const int64_t *shape, char *buf, size_t n) {
    if (!buf || n == 0) return buf;
    size_t used = 0;
    buf[0] = '\0';
    used += (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < rank && used < n; i++)
        used += (size_t)snprintf(buf + used, n - used, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (used < n) snprintf(buf + used, n - used, "]");
    return buf;
}

int shape_check(int rank, const int64_t *shape, dtype dt, ane_error *e) {
    char s[128];
    if ((unsigned)dt >= DT_COUNT) return err_set(e, ERR_TYPE, "unknown dtype %d", (int)dt);
    if (rank < 0 || rank > TENSOR_MAX_RANK)
        return err_set(e, ERR_SHAPE, "rank %d is out of range (0 to %d)", rank, TENSOR_MAX_RANK);
    for (int i = 0; i < rank; i++)
        if (shape[i] < 1)
            return err_set(e, ERR_SHAPE, "shape %s has a dimension < 1", shape_str(rank, shape, s, sizeof s));
    int64_t n = shape_numel(rank, shape);
    if (n < 0 || (uint64_t)n > (uint64_t)(SIZE_MAX / 2) / dtype_size(dt))
        return err_set(e, ERR_SHAPE, "shape %s of %s is too large", shape_str(rank, shape, s, sizeof s), dtype_name(dt));
    return 0;
}

int shape_equal(int ra, const int64_t *a, int rb, const int64_t *b) {
    if (ra != rb) return 0;
    for (int i = 0; i < ra; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

/* ---- lifetime ---- */

static void set_header(tensor *t, dtype dt, int rank, const int64_t *shape) {
    t->dt = dt;
    t->rank = rank;
    for (int i = 0; i < TENSOR_MAX_RANK; i++) t->shape[i] = i < rank ? shape[i] : 0;
}

int tensor_init(tensor *t, dtype dt, int rank, const int64_t *shape, ane_error *e) {
    memset(t, 0, sizeof *t);
    int rc = shape_check(rank, shape, dt, e);
    if (rc) return rc;
    size_t nbytes = (size_t)shape_numel(rank, shape) * dtype_size(dt);
    storage *st = storage_new(nbytes, e);
    if (!st) return e ? e->code : ERR_NOMEM;
    set_header(t, dt, rank, shape);
    t->st = st;
    return 0;
}

int tensor_init_on(tensor *t, storage *st, size_t offset, dtype dt, int rank, const int64_t *shape,
                   ane_error *e) {
    memset(t, 0, sizeof *t);
    if (!st) return err_set(e, ERR_STATE, "tensor_init_on: no storage");
    int rc = shape_check(rank, shape, dt, e);
    if (rc) return rc;
    size_t nbytes = (size_t)shape_numel(rank, shape) * dtype_size(dt);
    if (offset % dtype_size(dt))
        return err_set(e, ERR_INVAL, "offset %zu is not a multiple of the %s element size", offset, dtype_name(dt));
    if (offset > st->nbytes || nbytes > st->nbytes - offset)
        return err_set(e, ERR_SHAPE, "view of %zu bytes at offset %zu does not fit in a storage of %zu bytes", nbytes,
                       offset, st->nbytes);
    set_header(t, dt, rank, shape);
    t->offset = offset;
    storage_retain(st);
    t->st = st;
    return 0;
}

void tensor_release(tensor *t) {
    if (!t) return;
    storage *st = t->st;
    t->st = NULL;
    storage_release(st);
}

int64_t tensor_numel(const tensor *t) { return shape_numel(t->rank, t->shape); }

size_t tensor_nbytes(const tensor *t) { return (size_t)tensor_numel(t) * dtype_size(t->dt); }

void *tensor_data(const tensor *t) { return t->st ? (char *)t->st->data + t->offset : NULL; }

/* ---- element access ---- */

/* Integer stores truncate toward zero and saturate; NaN becomes 0 (C leaves these undefined). */
static double clampd(double v, double lo, double hi) {
    if (v != v) return 0;
    v = trunc(v);
    return v < lo ? lo : v > hi ? hi : v;
}

static double get(const void *p, dtype dt, size_t i) {
    switch (dt) {
    case DT_FP16: return fp16_to_f32(((const uint16_t *)p)[i]);
    case DT_FP32: return ((const float *)p)[i];
    case DT_INT32: return ((const int32_t *)p)[i];
    case DT_INT8: return ((const int8_t *)p)[i];
    case DT_UINT8: return ((const uint8_t *)p)[i];
    case DT_BOOL: return ((const uint8_t *)p)[i] != 0;
    default: return 0;
    }
}

double tensor_get(const tensor *t, int64_t i) { return get(tensor_data(t), t->dt, (size_t)i); }

/* Store v at p[i] (no bounds check): one rounding for fp16, straight from the double. */
static void put(void *p, dtype dt, size_t i, double v) {
    switch (dt) {
    case DT_FP16: ((uint16_t *)p)[i] = fp16_from_f64(v); break;
    case DT_FP32: ((float *)p)[i] = (float)v; break;
    case DT_INT32: ((int32_t *)p)[i] = (int32_t)clampd(v, INT32_MIN, INT32_MAX); break;
    case DT_INT8: ((int8_t *)p)[i] = (int8_t)clampd(v, INT8_MIN, INT8_MAX); break;
    case DT_UINT8: ((uint8_t *)p)[i] = (uint8_t)clampd(v, 0, UINT8_MAX); break;
    case DT_BOOL: ((uint8_t *)p)[i] = v != 0; break; /* NaN is true, as in C and NumPy */
    default: break;
    }
}

void tensor_set(tensor *t, int64_t i, double v) { put(tensor_data(t), t->dt, (size_t)i, v); }

void tensor_fill(tensor *t, double v) {
    void *p = tensor_data(t);
    if (!p) return;
    size_t n = (size_t)tensor_numel(t), es = dtype_size(t->dt);
    if (n == 0) return;
    put(p, t->dt, 0, v);
    /* doubling copies of the first element: any dtype, few calls */
    for (size_t have = 1; have < n;) {
        size_t k = have < n - have ? have : n - have;
        memcpy((char *)p + have * es, p, k * es);
        have += k;
    }
}

/* Convert n elements; dst and src must not overlap unless dtypes are equal. */
static void convert(void *dst, dtype dd, const void *src, dtype sd, size_t n) {
    if (dd == sd) { memmove(dst, src, n * dtype_size(dd)); return; }
    if (dd == DT_FP32 && sd == DT_FP16) { fp16_to_f32_n(dst, src, n); return; }
    if (dd == DT_FP16 && sd == DT_FP32) { fp16_from_f32_n(dst, src, n); return; }
    for (size_t i = 0; i < n; i++) put(dst, dd, i, get(src, sd, i));
}

int tensor_copy(tensor *dst, const tensor *src, ane_error *e) {
    if (!dst->st || !src->st) return err_set(e, ERR_STATE, "copy: tensor is closed");
    int64_t n = tensor_numel(dst);
    if (n != tensor_numel(src)) {
        char a[128], b[128];
        return err_set(e, ERR_SHAPE, "copy: %s and %s have different element counts",
                       shape_str(dst->rank, dst->shape, a, sizeof a), shape_str(src->rank, src->shape, b, sizeof b));
    }
    void *d = tensor_data(dst);
    const void *s = tensor_data(src);
    size_t db = tensor_nbytes(dst), sb = tensor_nbytes(src);
    int overlap = dst->st == src->st && (char *)d < (const char *)s + sb && (const char *)s < (char *)d + db;
    if (overlap && dst->dt != src->dt) { /* convert through a private copy of the source */
        void *tmp = malloc(sb ? sb : 1);
        if (!tmp) return err_set(e, ERR_NOMEM, "copy: out of memory for %zu bytes", sb);
        memcpy(tmp, s, sb);
        convert(d, dst->dt, tmp, src->dt, (size_t)n);
        free(tmp);
        return 0;
    }
    convert(d, dst->dt, s, src->dt, (size_t)n);
    return 0;
}

/* ---- random numbers: xoshiro256** seeded through splitmix64 ---- */

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

void rng_seed(rng *r, uint64_t seed) {
    /* splitmix64 spreads any seed (0 included) over the whole state; the state is never all zero */
    for (int i = 0; i < 4; i++) {
        uint64_t z = (seed += 0x9e3779b97f4a7c15u);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
        r->s[i] = z ^ (z >> 31);
    }
}

uint64_t rng_next(rng *r) {
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double rng_uniform(rng *r) { return (double)(rng_next(r) >> 11) * 0x1p-53; }

/* Box-Muller, one value per call (no hidden cache, so a copied rng replays exactly). */
double rng_normal(rng *r) {
    double u1 = 1.0 - rng_uniform(r); /* (0, 1]: log stays finite */
    double u2 = rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void tensor_rand_uniform(tensor *t, rng *r, double lo, double hi) {
    void *p = tensor_data(t);
    if (!p) return;
    size_t n = (size_t)tensor_numel(t);
    for (size_t i = 0; i < n; i++) put(p, t->dt, i, lo + (hi - lo) * rng_uniform(r));
}

void tensor_rand_normal(tensor *t, rng *r, double mean, double std) {
    void *p = tensor_data(t);
    if (!p) return;
    size_t n = (size_t)tensor_numel(t);
    for (size_t i = 0; i < n; i++) put(p, t->dt, i, mean + std * rng_normal(r));
}

/* ---- arithmetic: fp32 math, fp16 operands widened and the result rounded once ---- */

enum { BLK = 256 };

static void load_f32(const tensor *t, size_t i, size_t n, float *buf) {
    if (t->dt == DT_FP32) memcpy(buf, (const float *)tensor_data(t) + i, n * sizeof *buf);
    else fp16_to_f32_n(buf, (const uint16_t *)tensor_data(t) + i, n);
}

static void store_f32(tensor *t, size_t i, size_t n, const float *buf) {
    if (t->dt == DT_FP32) memcpy((float *)tensor_data(t) + i, buf, n * sizeof *buf);
    else fp16_from_f32_n((uint16_t *)tensor_data(t) + i, buf, n);
}

static int check_float(const char *op, const tensor *t, ane_error *e) {
    if (!t->st) return err_set(e, ERR_STATE, "%s: tensor is closed", op);
    if (t->dt != DT_FP16 && t->dt != DT_FP32)
        return err_set(e, ERR_TYPE, "%s: %s tensor (fp16 or fp32 required)", op, dtype_name(t->dt));
    return 0;
}

static int check_same_numel(const char *op, const tensor *a, const tensor *b, ane_error *e) {
    if (tensor_numel(a) == tensor_numel(b)) return 0;
    char sa[128], sb[128];
    return err_set(e, ERR_SHAPE, "%s: %s and %s have different element counts", op,
                   shape_str(a->rank, a->shape, sa, sizeof sa), shape_str(b->rank, b->shape, sb, sizeof sb));
}

int tensor_scale(tensor *t, double a, ane_error *e) {
    int rc = check_float("scale", t, e);
    if (rc) return rc;
    size_t n = (size_t)tensor_numel(t);
    float fa = (float)a, buf[BLK];
    for (size_t i = 0; i < n; i += BLK) {
        size_t k = n - i < BLK ? n - i : BLK;
        load_f32(t, i, k, buf);
        for (size_t j = 0; j < k; j++) buf[j] *= fa;
        store_f32(t, i, k, buf);
    }
    return 0;
}

/* Operands may be the same tensor (dst = a + a) or disjoint; blocks are read before written. */
int tensor_add(tensor *dst, const tensor *a, const tensor *b, ane_error *e) {
    int rc;
    if ((rc = check_float("add", dst, e)) || (rc = check_float("add", a, e)) || (rc = check_float("add", b, e)) ||
        (rc = check_same_numel("add", dst, a, e)) || (rc = check_same_numel("add", dst, b, e)))
        return rc;
    size_t n = (size_t)tensor_numel(dst);
    float x[BLK], y[BLK];
    for (size_t i = 0; i < n; i += BLK) {
        size_t k = n - i < BLK ? n - i : BLK;
        load_f32(a, i, k, x);
        load_f32(b, i, k, y);
        for (size_t j = 0; j < k; j++) x[j] += y[j];
        store_f32(dst, i, k, x);
    }
    return 0;
}

int tensor_axpy(tensor *y, double a, const tensor *x, ane_error *e) {
    int rc;
    if ((rc = check_float("axpy", y, e)) || (rc = check_float("axpy", x, e)) || (rc = check_same_numel("axpy", y, x, e)))
        return rc;
    size_t n = (size_t)tensor_numel(y);
    float fa = (float)a, xb[BLK], yb[BLK];
    for (size_t i = 0; i < n; i += BLK) {
        size_t k = n - i < BLK ? n - i : BLK;
        load_f32(x, i, k, xb);
        load_f32(y, i, k, yb);
        for (size_t j = 0; j < k; j++) yb[j] += fa * xb[j];
        store_f32(y, i, k, yb);
    }
    return 0;
}
