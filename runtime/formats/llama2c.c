/* llama2c.c - llama2.c checkpoints: header checks, the file layout, mmap loading, atomic saving. */
#include "llama2c.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/atomic_file.h"
#include "../core/fp16.h"
#include "mapfile.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "llama2c.c reads little-endian data in place; add byte swapping for this host"
#endif

#define HEADER_BYTES (7 * 4)

const char *const llama2c_names[L2C_NWEIGHTS] = {
    "embed", "rms_att", "wq", "wk", "wv", "wo", "rms_ffn", "w1", "w2", "w3", "rms_final", "wcls",
};

int llama2c_check_config(const llama2c_config *c, const char *name, ane_error *e) {
    const struct { const char *what; int v; } f[] = {
        {"dim", c->dim}, {"hidden_dim", c->hidden}, {"n_layers", c->n_layers}, {"n_heads", c->n_heads},
        {"n_kv_heads", c->n_kv_heads}, {"vocab_size", c->vocab}, {"seq_len", c->seq},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++)
        if (f[i].v <= 0) return err_set(e, ERR_FORMAT, "%s: %s is %d, must be positive", name, f[i].what, f[i].v);
    if (c->dim % c->n_heads != 0)
        return err_set(e, ERR_FORMAT, "%s: dim %d is not a multiple of n_heads %d", name, c->dim, c->n_heads);
    if (c->n_heads % c->n_kv_heads != 0)
        return err_set(e, ERR_FORMAT, "%s: n_heads %d is not a multiple of n_kv_heads %d", name, c->n_heads,
                       c->n_kv_heads);
    if ((c->dim / c->n_heads) % 2 != 0)
        return err_set(e, ERR_FORMAT, "%s: head size %d (dim / n_heads) is odd; RoPE needs pairs", name,
                       c->dim / c->n_heads);
    return 0;
}

int llama2c_shape(const llama2c_config *c, int which, int64_t s[3]) {
    int64_t L = c->n_layers, d = c->dim, h = c->hidden, kv = (int64_t)c->dim * c->n_kv_heads / c->n_heads;
    switch (which) {
    case L2C_EMBED: case L2C_WCLS: s[0] = c->vocab; s[1] = d; return 2;
    case L2C_RMS_ATT: case L2C_RMS_FFN: s[0] = L; s[1] = d; return 2;
    case L2C_WQ: case L2C_WO: s[0] = L; s[1] = d; s[2] = d; return 3;
    case L2C_WK: case L2C_WV: s[0] = L; s[1] = kv; s[2] = d; return 3;
    case L2C_W1: case L2C_W3: s[0] = L; s[1] = h; s[2] = d; return 3;
    case L2C_W2: s[0] = L; s[1] = d; s[2] = h; return 3;
    case L2C_RMS_FINAL: s[0] = d; return 1;
    default: return 0;
    }
}

/* Element count of a weight; -1 when it does not fit in 52 bits (no real checkpoint comes close). */
static int64_t numel_of(const llama2c_config *c, int which) {
    int64_t s[3];
    int r = llama2c_shape(c, which, s);
    uint64_t n = 1;
    for (int i = 0; i < r; i++)
        if (__builtin_mul_overflow(n, (uint64_t)s[i], &n) || n > ((uint64_t)1 << 52)) return -1;
    return (int64_t)n;
}

static int32_t rd32(const unsigned char *p) {
    return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
}

/* Offsets of every weight under c in file order; returns the total size, or 0 on overflow. */
static size_t layout_of(const llama2c_config *c, llama2c_layout *lay) {
    const uint64_t limit = (uint64_t)1 << 52; /* no real file is larger; keeps sums exact */
    uint64_t off = HEADER_BYTES;
    for (int w = 0; w < L2C_WCLS; w++) {
        lay->off[w] = (size_t)off;
        int64_t k = numel_of(c, w);
        if (k < 0) return 0;
        off += (uint64_t)k * 4;
        if (off > limit) return 0;
    }
    int64_t head = c->dim / c->n_heads;
    lay->rope_off = (size_t)off;
    uint64_t rope = (uint64_t)c->seq * (uint64_t)(head / 2); /* < 2^61: no overflow yet */
    if (rope > limit / 8) return 0;
    lay->rope_bytes = (size_t)(rope * 8);
    off += lay->rope_bytes;
    lay->off[L2C_WCLS] = c->shared_classifier ? lay->off[L2C_EMBED] : (size_t)off;
    if (!c->shared_classifier) {
        int64_t k = numel_of(c, L2C_WCLS);
        if (k < 0) return 0;
        off += (uint64_t)k * 4;
    }
    if (off > limit || off > SIZE_MAX) return 0;
    return lay->total = (size_t)off;
}

int llama2c_parse(const void *buf, size_t n, const char *name, llama2c_layout *lay, ane_error *e) {
    memset(lay, 0, sizeof *lay);
    if (n < HEADER_BYTES)
        return err_set(e, ERR_FORMAT, "%s: truncated llama2.c checkpoint: %zu bytes, the header alone is %d", name, n,
                       HEADER_BYTES);
    const unsigned char *p = buf;
    llama2c_config *c = &lay->cfg;
    c->dim = rd32(p);
    c->hidden = rd32(p + 4);
    c->n_layers = rd32(p + 8);
    c->n_heads = rd32(p + 12);
    c->n_kv_heads = rd32(p + 16);
    int32_t vocab = rd32(p + 20);
    c->seq = rd32(p + 24);
    c->shared_classifier = vocab > 0;
    c->vocab = vocab == INT32_MIN ? 0 : vocab < 0 ? -vocab : vocab;
    ane_error why;
    int rc = llama2c_check_config(c, "header", &why);
    if (rc)
        return err_set(e, rc, "%s: not a llama2.c checkpoint (dim %d, hidden %d, layers %d, heads %d, kv heads %d, vocab %d, seq %d): %s",
                       name, c->dim, c->hidden, c->n_layers, c->n_heads, c->n_kv_heads, (int)vocab, c->seq, why.msg);
    size_t total = layout_of(c, lay);
    if (total == 0) return err_set(e, ERR_FORMAT, "%s: the header's sizes describe an impossibly large checkpoint", name);
    if (n < total) {
        /* name the first array, in file order, that does not fit */
        const char *missing = NULL;
        size_t from = 0;
        for (int w = 0; w < L2C_WCLS && !missing; w++)
            if (lay->off[w] + (size_t)numel_of(c, w) * 4 > n) missing = llama2c_names[w], from = lay->off[w];
        if (!missing && lay->rope_off + lay->rope_bytes > n)
            missing = "freq_cis_real/imag (the RoPE tables)", from = lay->rope_off;
        if (!missing) missing = "wcls (the unshared classifier)", from = lay->off[L2C_WCLS];
        return err_set(e, ERR_FORMAT,
                       "%s: truncated llama2.c checkpoint: %zu bytes, the header (dim %d, layers %d, vocab %d, %s classifier) needs %zu; %s (from byte %zu) is missing",
                       name, n, c->dim, c->n_layers, c->vocab, c->shared_classifier ? "shared" : "unshared", total,
                       missing, from);
    }
    if (n > total)
        return err_set(e, ERR_FORMAT,
                       "%s: inconsistent llama2.c checkpoint: %zu bytes, the header (dim %d, layers %d, vocab %d, %s classifier) implies %zu (%zu extra)",
                       name, n, c->dim, c->n_layers, c->vocab, c->shared_classifier ? "shared" : "unshared", total,
                       n - total);
    return 0;
}

/* ---- loading ---- */

void llama2c_ckpt_release(llama2c_ckpt *ck) {
    for (int i = 0; i < L2C_NWEIGHTS; i++) tensor_release(&ck->w[i]);
}

int llama2c_load(const char *path, llama2c_ckpt *ck, ane_error *e) {
    memset(ck, 0, sizeof *ck);
    storage *s = mapfile_open(path, e);
    if (!s) return e ? e->code : ERR_IO;
    llama2c_layout lay;
    int rc = llama2c_parse(s->data ? s->data : "", s->nbytes, path, &lay, e);
    if (rc) { storage_release(s); return rc; }
    ck->cfg = lay.cfg;
    for (int w = 0; w < L2C_NWEIGHTS; w++) {
        int64_t shape[3];
        int r = llama2c_shape(&lay.cfg, w, shape);
        if ((rc = tensor_init_on(&ck->w[w], s, lay.off[w], DT_FP32, r, shape, e)) != 0) {
            llama2c_ckpt_release(ck);
            storage_release(s);
            return err_prefix(e, "%s: %s: ", path, llama2c_names[w]);
        }
    }
    storage_release(s); /* the tensors hold it now */
    return 0;
}

/* ---- saving ---- */

/* n fp32 values from t (fp32 or fp16) to the file, converting fp16 through a bounded buffer. */
static int put_tensor(atomic_file *f, const tensor *t, ane_error *e) {
    size_t n = (size_t)tensor_numel(t);
    if (t->dt == DT_FP32) return atomic_file_write(f, tensor_data(t), n * 4, e);
    float tmp[4096];
    const uint16_t *h = tensor_data(t);
    for (size_t i = 0; i < n; i += 4096) {
        size_t k = n - i < 4096 ? n - i : 4096;
        fp16_to_f32_n(tmp, h + i, k);
        int rc = atomic_file_write(f, tmp, k * 4, e);
        if (rc) return rc;
    }
    return 0;
}

static int put_rope(atomic_file *f, const llama2c_config *c, int imag, ane_error *e) {
    int head = c->dim / c->n_heads;
    for (int pos = 0; pos < c->seq; pos++) {
        for (int i = 0; i < head / 2; i++) {
            double freq = 1.0 / pow(10000.0, (double)(2 * i) / head);
            float v = (float)(imag ? sin(pos * freq) : cos(pos * freq));
            int rc = atomic_file_write(f, &v, 4, e);
            if (rc) return rc;
        }
    }
    return 0;
}

int llama2c_save(const char *path, const llama2c_config *c, const tensor *const w[L2C_NWEIGHTS], ane_error *e) {
    int rc = llama2c_check_config(c, path, e);
    if (rc) return rc;
    for (int i = 0; i < L2C_NWEIGHTS; i++) {
        if (i == L2C_WCLS && c->shared_classifier) continue;
        const tensor *t = w[i];
        int64_t shape[3];
        int r = llama2c_shape(c, i, shape);
        char want[96], got[96];
        if (!t || !t->st) return err_set(e, ERR_INVAL, "%s: weight %s is missing", path, llama2c_names[i]);
        if (t->dt != DT_FP32 && t->dt != DT_FP16)
            return err_set(e, ERR_TYPE, "%s: weight %s is %s; fp32 or fp16 expected", path, llama2c_names[i],
                           dtype_name(t->dt));
        if (!shape_equal(r, shape, t->rank, t->shape))
            return err_set(e, ERR_SHAPE, "%s: weight %s has shape %s; the config needs %s", path, llama2c_names[i],
                           shape_str(t->rank, t->shape, got, sizeof got), shape_str(r, shape, want, sizeof want));
    }
    for (int i = 0; i < L2C_NWEIGHTS; i++) {
        if (i == L2C_WCLS && c->shared_classifier) continue;
        if ((rc = storage_lock(w[i]->st, 1, e)) != 0) {
            for (int j = 0; j < i; j++)
                if (!(j == L2C_WCLS && c->shared_classifier)) storage_unlock(w[j]->st, 1);
            return err_prefix(e, "%s: %s: ", path, llama2c_names[i]);
        }
    }
    atomic_file f;
    rc = atomic_file_open(&f, path, e);
    if (rc == 0) {
        int32_t hdr[7] = {c->dim, c->hidden, c->n_layers, c->n_heads, c->n_kv_heads,
                          c->shared_classifier ? c->vocab : -c->vocab, c->seq};
        rc = atomic_file_write(&f, hdr, sizeof hdr, e);
        for (int i = 0; rc == 0 && i < L2C_WCLS; i++) rc = put_tensor(&f, w[i], e);
        if (rc == 0) rc = put_rope(&f, c, 0, e);
        if (rc == 0) rc = put_rope(&f, c, 1, e);
        if (rc == 0 && !c->shared_classifier) rc = put_tensor(&f, w[L2C_WCLS], e);
        if (rc == 0) rc = atomic_file_commit(&f, e);
        else atomic_file_abort(&f);
    }
    for (int i = 0; i < L2C_NWEIGHTS; i++)
        if (!(i == L2C_WCLS && c->shared_classifier)) storage_unlock(w[i]->st, 1);
    return rc;
}
