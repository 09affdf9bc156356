/* tokenizer.c - llama2.c and Hugging Face BPE tokenizers (see tokenizer.h for the rules). */
#include "tokenizer.h"

#include <errno.h>
#include <oniguruma.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <utf8proc.h>

#include "../core/atomic_file.h"

enum { KIND_BIN = 1, KIND_BPE = 2 };

typedef struct heap_ent { double key; int32_t pos, right, a, b, res; } heap_ent;

typedef struct strvec { char *data; size_t n, cap; size_t *off; size_t cnt, ocap; } strvec;

struct tokenizer {
    int kind;
    char name[256];
    int n, max_len;
    char *arena; size_t *off; uint32_t *len; float *score;  /* pieces as stored */
    char *darena; size_t *doff; uint32_t *dlen;             /* what each id decodes to */
    int32_t *ht; size_t hcap;                               /* piece -> id (model vocabulary) */
    uint64_t *mkey; int32_t *mrank, *mres; size_t mcap;     /* (left, right) -> rank, result */
    int bos, eos, unk, byte_id[256];
    int byte_fallback, ignore_merges, fuse_unk;
    int n_added; int32_t *added; unsigned char added_first[256];
    int n_norm; tok_norm_step norm[TOK_MAX_STEPS];
    int n_pre; tok_pre_step pre[TOK_MAX_STEPS];
    OnigRegex re[TOK_MAX_STEPS]; OnigRegion *region; int search_err;
    int decoder, decoder_strip;
    char *strings;                                          /* owned copies of step strings */
    /* encode scratch */
    int32_t *out; size_t outn, outcap;
    int32_t *prev, *next; size_t scap, ncap;
    heap_ent *heap; size_t hn, hcapn;
    char *buf; size_t bufcap;
    strvec wa, wb;
};

/* ---- small helpers ---- */

static uint64_t fnv(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap : 64;
    while (c < need) {
        if (c > SIZE_MAX / 2 / elem) return -1;
        c *= 2;
    }
    void *q = realloc(*p, c * elem);
    if (!q) return -1;
    *p = q;
    *cap = c;
    return 0;
}

static const char *piece_of(const tokenizer *t, int id, size_t *len) {
    *len = t->len[id];
    return t->arena + t->off[id];
}

int tok_lookup(const tokenizer *t, const char *s, size_t len) {
    if (!t->hcap) return -1;
    size_t mask = t->hcap - 1, i = fnv(s, len) & mask;
    for (;;) {
        int32_t id = t->ht[i];
        if (id < 0) return -1;
        if (t->len[id] == len && memcmp(t->arena + t->off[id], s, len) == 0) return id;
        i = (i + 1) & mask;
    }
}

/* Build the piece hash over ids where in_model (NULL: all). The first id of a duplicate wins. */
static int build_hash(tokenizer *t, const unsigned char *in_model) {
    size_t cap = 16;
    while (cap < (size_t)t->n * 2) cap *= 2;
    t->ht = malloc(cap * sizeof *t->ht);
    if (!t->ht) return -1;
    memset(t->ht, 0xff, cap * sizeof *t->ht);
    t->hcap = cap;
    for (int id = 0; id < t->n; id++) {
        if (in_model && !in_model[id]) continue;
        size_t len;
        const char *s = piece_of(t, id, &len);
        size_t i = fnv(s, len) & (cap - 1);
        int dup = 0;
        while (t->ht[i] >= 0) {
            int32_t o = t->ht[i];
            if (t->len[o] == len && memcmp(t->arena + t->off[o], s, len) == 0) { dup = 1; break; }
            i = (i + 1) & (cap - 1);
        }
        if (!dup) t->ht[i] = id;
    }
    return 0;
}

static int hexval(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* "<0xHH>" -> HH, else -1. */
static int byte_piece(const char *s, size_t n) {
    if (n != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return -1;
    int hi = hexval((unsigned char)s[3]), lo = hexval((unsigned char)s[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

void tok_free(tokenizer *t) {
    if (!t) return;
    free(t->arena); free(t->off); free(t->len); free(t->score);
    free(t->darena); free(t->doff); free(t->dlen);
    free(t->ht); free(t->mkey); free(t->mrank); free(t->mres);
    free(t->added); free(t->strings);
    for (int i = 0; i < TOK_MAX_STEPS; i++) if (t->re[i]) onig_free(t->re[i]);
    if (t->region) onig_region_free(t->region, 1);
    free(t->out); free(t->prev); free(t->next); free(t->heap); free(t->buf);
    free(t->wa.data); free(t->wa.off); free(t->wb.data); free(t->wb.off);
    free(t);
}

static tokenizer *tok_alloc(const char *name, int n, size_t arena_bytes, ane_error *e) {
    tokenizer *t = calloc(1, sizeof *t);
    if (!t) { err_set(e, ERR_NOMEM, "%s: out of memory", name); return NULL; }
    snprintf(t->name, sizeof t->name, "%s", name);
    t->n = n;
    size_t cnt = n ? (size_t)n : 1;
    t->arena = malloc(arena_bytes ? arena_bytes : 1);
    t->off = malloc(cnt * sizeof *t->off);
    t->len = malloc(cnt * sizeof *t->len);
    t->score = calloc(cnt, sizeof *t->score);
    t->doff = malloc(cnt * sizeof *t->doff);
    t->dlen = malloc(cnt * sizeof *t->dlen);
    if (!t->arena || !t->off || !t->len || !t->score || !t->doff || !t->dlen) {
        tok_free(t);
        err_set(e, ERR_NOMEM, "%s: out of memory for %d tokens", name, n);
        return NULL;
    }
    t->bos = t->eos = t->unk = -1;
    for (int i = 0; i < 256; i++) t->byte_id[i] = -1;
    return t;
}

/* ---- accessors ---- */

int tok_vocab_size(const tokenizer *t) { return t->n; }
int tok_bos(const tokenizer *t) { return t->bos; }
int tok_eos(const tokenizer *t) { return t->eos; }
int tok_max_len(const tokenizer *t) { return t->max_len; }
const char *tok_kind(const tokenizer *t) { return t->kind == KIND_BIN ? "llama2c" : "bpe"; }

const char *tok_piece(const tokenizer *t, int id, size_t *len) {
    if (id < 0 || id >= t->n) return NULL;
    return piece_of(t, id, len);
}

float tok_score(const tokenizer *t, int id) { return id >= 0 && id < t->n ? t->score[id] : 0.0f; }

const char *tok_decode(const tokenizer *t, int prev, int id, size_t *len) {
    if (id < 0 || id >= t->n) return NULL;
    const char *s = t->darena + t->doff[id];
    size_t n = t->dlen[id];
    int strip = t->kind == KIND_BIN ? prev == 1 : t->decoder_strip && (prev < 0 || (prev == t->bos && t->bos >= 0));
    /* run.c tests the stored piece's first byte: a "<0x20>" byte token keeps its space */
    if (strip && n > 0 && s[0] == ' ' && !(t->kind == KIND_BIN && byte_piece(t->arena + t->off[id], t->len[id]) >= 0)) {
        s++;
        n--;
    }
    *len = n;
    return s;
}

/* ---- the merge engine: a heap over a linked list of symbols ---- */

static int heap_less(const heap_ent *x, const heap_ent *y) {
    return x->key < y->key || (x->key == y->key && x->pos < y->pos);
}

static int heap_push(tokenizer *t, heap_ent v) {
    if (grow((void **)&t->heap, &t->hcapn, t->hn + 1, sizeof *t->heap)) return -1;
    size_t i = t->hn++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&v, &t->heap[p])) break;
        t->heap[i] = t->heap[p];
        i = p;
    }
    t->heap[i] = v;
    return 0;
}

static heap_ent heap_pop(tokenizer *t) {
    heap_ent top = t->heap[0], last = t->heap[--t->hn];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= t->hn) break;
        if (c + 1 < t->hn && heap_less(&t->heap[c + 1], &t->heap[c])) c++;
        if (!heap_less(&t->heap[c], &last)) break;
        t->heap[i] = t->heap[c];
        i = c;
    }
    if (t->hn) t->heap[i] = last;
    return top;
}

/* The merge of (a, b), if any: its heap key (smaller merges first) and result. 1 if mergeable,
 * 0 if not, -1 on out of memory. */
static int pair_of(tokenizer *t, int32_t a, int32_t b, double *key, int32_t *res) {
    if (t->kind == KIND_BIN) {
        size_t la, lb;
        const char *sa = piece_of(t, a, &la), *sb = piece_of(t, b, &lb);
        if (grow((void **)&t->buf, &t->bufcap, la + lb + 1, 1)) return -1;
        memcpy(t->buf, sa, la);
        memcpy(t->buf + la, sb, lb);
        int id = tok_lookup(t, t->buf, la + lb);
        if (id < 0 || !(t->score[id] > -1e10f)) return 0; /* run.c starts its best score at -1e10 */
        *key = -(double)t->score[id];
        *res = id;
        return 1;
    }
    if (!t->mcap) return 0;
    uint64_t k = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
    size_t mask = t->mcap - 1, i = (size_t)((k * 0x9E3779B97F4A7C15ull) >> 20) & mask;
    for (;;) {
        if (t->mres[i] < 0) return 0;
        if (t->mkey[i] == k) { *key = t->mrank[i]; *res = t->mres[i]; return 1; }
        i = (i + 1) & mask;
    }
}

static int try_push(tokenizer *t, const int32_t *ids, int32_t l, int32_t r) {
    double key;
    int32_t res;
    int m = pair_of(t, ids[l], ids[r], &key, &res);
    if (m <= 0) return m;
    heap_ent v = {key, l, r, ids[l], ids[r], res};
    return heap_push(t, v);
}

/* Merge ids[0..n) in place; returns the new count, or -1 on out of memory. */
static long merge_all(tokenizer *t, int32_t *ids, size_t n) {
    if (n < 2) return (long)n;
    if (grow((void **)&t->prev, &t->scap, n, sizeof *t->prev)) return -1;
    if (grow((void **)&t->next, &t->ncap, n, sizeof *t->next)) return -1;
    t->hn = 0;
    for (size_t i = 0; i < n; i++) {
        t->prev[i] = (int32_t)i - 1;
        t->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    for (size_t i = 0; i + 1 < n; i++)
        if (try_push(t, ids, (int32_t)i, (int32_t)i + 1) < 0) return -1;
    while (t->hn) {
        heap_ent v = heap_pop(t);
        if (ids[v.pos] != v.a || t->next[v.pos] != v.right || ids[v.right] != v.b) continue; /* stale */
        ids[v.pos] = v.res;
        ids[v.right] = -1;
        int32_t nx = t->next[v.right];
        t->next[v.pos] = nx;
        if (nx >= 0) t->prev[nx] = v.pos;
        if (t->prev[v.pos] >= 0 && try_push(t, ids, t->prev[v.pos], v.pos) < 0) return -1;
        if (nx >= 0 && try_push(t, ids, v.pos, nx) < 0) return -1;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= 0) ids[k++] = ids[i];
    return (long)k;
}

static int out_push(tokenizer *t, int32_t id) {
    if (grow((void **)&t->out, &t->outcap, t->outn + 1, sizeof *t->out)) return -1;
    t->out[t->outn++] = id;
    return 0;
}

/* ---- llama2.c tokenizer.bin ---- */

static int32_t rd32(const unsigned char *p) {
    return (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
}

static int set_decoded_bin(tokenizer *t) {
    /* decoded text = the piece, except <0xXX> = that byte: never longer than the pieces */
    size_t total = t->n ? t->off[t->n - 1] + t->len[t->n - 1] : 0;
    t->darena = malloc(total ? total : 1);
    if (!t->darena) return -1;
    size_t k = 0;
    for (int id = 0; id < t->n; id++) {
        size_t len;
        const char *s = piece_of(t, id, &len);
        int b = byte_piece(s, len);
        t->doff[id] = k;
        if (b >= 0) { t->darena[k++] = (char)b; t->dlen[id] = 1; }
        else { memcpy(t->darena + k, s, len); k += len; t->dlen[id] = (uint32_t)len; }
    }
    return 0;
}

tokenizer *tok_load_bin_mem(const void *buf, size_t n, const char *name, int vocab_size, ane_error *e) {
    const unsigned char *p = buf;
    if (n < 4) {
        err_set(e, ERR_FORMAT, "%s: truncated tokenizer.bin: %zu bytes, the max token length alone is 4", name, n);
        return NULL;
    }
    int32_t max_len = rd32(p);
    if (max_len < 0) {
        err_set(e, ERR_FORMAT, "%s: not a tokenizer.bin: max token length %d is negative", name, (int)max_len);
        return NULL;
    }
    /* first pass: count and check */
    size_t pos = 4, count = 0, bytes = 0;
    while (vocab_size < 0 ? pos < n : count < (size_t)vocab_size) {
        if (n - pos < 8) {
            err_set(e, ERR_FORMAT, "%s: truncated tokenizer.bin: token %zu needs a score and a length at byte %zu, the file has %zu bytes",
                    name, count, pos, n);
            return NULL;
        }
        int32_t len = rd32(p + pos + 4);
        if (len < 0 || len > max_len) {
            err_set(e, ERR_FORMAT, "%s: inconsistent tokenizer.bin: token %zu has length %d, the header's max token length is %d",
                    name, count, (int)len, (int)max_len);
            return NULL;
        }
        if (n - pos - 8 < (size_t)len) {
            err_set(e, ERR_FORMAT, "%s: truncated tokenizer.bin: token %zu needs %d bytes at byte %zu, the file has %zu bytes",
                    name, count, (int)len, pos + 8, n);
            return NULL;
        }
        pos += 8 + (size_t)len;
        bytes += (size_t)len;
        if (++count > INT32_MAX) { err_set(e, ERR_FORMAT, "%s: too many tokens", name); return NULL; }
    }
    if (count == 0) {
        err_set(e, ERR_FORMAT, "%s: tokenizer.bin holds no tokens", name);
        return NULL;
    }
    tokenizer *t = tok_alloc(name, (int)count, bytes, e);
    if (!t) return NULL;
    t->kind = KIND_BIN;
    t->max_len = max_len;
    pos = 4;
    size_t k = 0;
    for (size_t i = 0; i < count; i++) {
        float sc;
        memcpy(&sc, p + pos, 4);
        uint32_t len = (uint32_t)rd32(p + pos + 4);
        t->score[i] = sc;
        t->off[i] = k;
        t->len[i] = len;
        memcpy(t->arena + k, p + pos + 8, len);
        k += len;
        pos += 8 + len;
    }
    t->bos = count > 1 ? 1 : -1;
    t->eos = count > 2 ? 2 : -1;
    if (build_hash(t, NULL) || set_decoded_bin(t)) {
        tok_free(t);
        err_set(e, ERR_NOMEM, "%s: out of memory", name);
        return NULL;
    }
    return t;
}

tokenizer *tok_load_bin(const char *path, int vocab_size, ane_error *e) {
    FILE *f = fopen(path, "rb");
    if (!f) { err_set(e, ERR_IO, "%s: cannot open: %s", path, strerror(errno)); return NULL; }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        err_set(e, ERR_IO, "%s: not a regular file", path);
        return NULL;
    }
    size_t n = (size_t)st.st_size;
    char *buf = malloc(n ? n : 1);
    if (!buf) { fclose(f); err_set(e, ERR_NOMEM, "%s: out of memory for %zu bytes", path, n); return NULL; }
    size_t got = fread(buf, 1, n, f);
    fclose(f);
    if (got != n) { free(buf); err_set(e, ERR_IO, "%s: short read", path); return NULL; }
    tokenizer *t = tok_load_bin_mem(buf, n, path, vocab_size, e);
    free(buf);
    return t;
}

int tok_save_bin(const char *path, int n, const char *const *pieces, const size_t *lens, const float *scores,
                 int max_len, ane_error *e) {
    for (int i = 0; i < n; i++)
        if (lens[i] > (size_t)max_len)
            return err_set(e, ERR_INVAL, "%s: token %d is %zu bytes, longer than max_len %d", path, i, lens[i], max_len);
    atomic_file f;
    int rc = atomic_file_open(&f, path, e);
    if (rc) return rc;
    int32_t ml = max_len;
    rc = atomic_file_write(&f, &ml, 4, e);
    for (int i = 0; rc == 0 && i < n; i++) {
        int32_t len = (int32_t)lens[i];
        rc = atomic_file_write(&f, &scores[i], 4, e);
        if (rc == 0) rc = atomic_file_write(&f, &len, 4, e);
        if (rc == 0) rc = atomic_file_write(&f, pieces[i], lens[i], e);
    }
    if (rc) { atomic_file_abort(&f); return rc; }
    return atomic_file_commit(&f, e);
}

static int encode_bin(tokenizer *t, const char *text, size_t n, ane_error *e) {
    if (n > 0) {
        int dummy = tok_lookup(t, " ", 1);
        if (dummy < 0)
            return err_set(e, ERR_FORMAT, "%s: the vocabulary has no \" \" token, which run.c's encoder needs for its dummy prefix", t->name);
        if (out_push(t, dummy)) goto nomem;
    }
    unsigned char sb[4];
    size_t sl = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)text[i];
        if ((c & 0xC0) != 0x80) sl = 0;
        sb[sl++] = c;
        if (i + 1 < n && ((unsigned char)text[i + 1] & 0xC0) == 0x80 && sl < 4) continue;
        int id = tok_lookup(t, (const char *)sb, sl);
        if (id >= 0) {
            if (out_push(t, id)) goto nomem;
        } else {
            for (size_t k = 0; k < sl; k++) {
                int b = sb[k] + 3;
                if (b >= t->n)
                    return err_set(e, ERR_INVAL, "%s: byte 0x%02X of the text falls back to token %d, but the vocabulary has %d tokens",
                                   t->name, sb[k], b, t->n);
                if (out_push(t, b)) goto nomem;
            }
        }
        sl = 0;
    }
    /* run.c merges over everything emitted so far, BOS included */
    long k = merge_all(t, t->out, t->outn);
    if (k < 0) goto nomem;
    t->outn = (size_t)k;
    return 0;
nomem:
    return err_set(e, ERR_NOMEM, "%s: out of memory encoding %zu bytes", t->name, n);
}

/* ---- Hugging Face BPE ---- */

/* GPT-2's byte <-> character table: printable Latin-1 bytes stand for themselves, the others
 * (0-32, 127-160, 173) for U+0100 onwards, in order. */
static int bl_cp[256];
static int bl_byte[512]; /* code point -> byte, -1 */
static OnigEncoding onig_encs[1];
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static void init_tables(void) {
    int k = 0;
    for (int i = 0; i < 512; i++) bl_byte[i] = -1;
    for (int b = 0; b < 256; b++) {
        int keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
        bl_cp[b] = keep ? b : 256 + k++;
        bl_byte[bl_cp[b]] = b;
    }
    onig_encs[0] = ONIG_ENCODING_UTF8;
    onig_initialize(onig_encs, 1);
}

static size_t utf8_put(int cp, char *out) {
    return (size_t)utf8proc_encode_char(cp, (utf8proc_uint8_t *)out);
}

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0 if invalid. */
static size_t utf8_len(const char *s, size_t n) {
    utf8proc_int32_t cp;
    utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s, n < 4 ? (utf8proc_ssize_t)n : 4, &cp);
    return k > 0 ? (size_t)k : 0;
}

static int sv_reset(strvec *v) { v->n = 0; v->cnt = 0; return 0; }
static int sv_add(strvec *v, const char *s, size_t n) {
    if (grow((void **)&v->data, &v->cap, v->n + n + 1, 1)) return -1;
    if (grow((void **)&v->off, &v->ocap, v->cnt + 2, sizeof *v->off)) return -1;
    if (v->cnt == 0) v->off[0] = 0;
    memcpy(v->data + v->n, s, n);
    v->n += n;
    v->off[++v->cnt] = v->n;
    return 0;
}
/* Append bytes to the last word (creating one when there is none). */
static int sv_append(strvec *v, const char *s, size_t n) {
    if (v->cnt == 0) return sv_add(v, s, n);
    if (grow((void **)&v->data, &v->cap, v->n + n + 1, 1)) return -1;
    memcpy(v->data + v->n, s, n);
    v->n += n;
    v->off[v->cnt] = v->n;
    return 0;
}
#define SV_STR(v, i) ((v)->data + (v)->off[i])
#define SV_LEN(v, i) ((v)->off[(i) + 1] - (v)->off[i])

static char *dupmem(tokenizer *t, const char *s, size_t n, size_t *used) {
    (void)t;
    char *p = t->strings + *used;
    memcpy(p, s, n);
    p[n] = '\0';
    *used += n + 1;
    return p;
}

static int compile_regex(tokenizer *t, int slot, const char *pat, size_t n, ane_error *e) {
    OnigErrorInfo info;
    int r = onig_new(&t->re[slot], (const OnigUChar *)pat, (const OnigUChar *)pat + n, ONIG_OPTION_NONE,
                     ONIG_ENCODING_UTF8, ONIG_SYNTAX_DEFAULT, &info);
    if (r != ONIG_NORMAL) {
        OnigUChar msg[ONIG_MAX_ERROR_MESSAGE_LEN];
        onig_error_code_to_str(msg, r, &info);
        t->re[slot] = NULL;
        return err_set(e, ERR_FORMAT, "%s: pre_tokenizer Split: the regex does not compile with Oniguruma: %s", t->name,
                       (const char *)msg);
    }
    return 0;
}

/* GPT-2's pattern, what ByteLevel uses when use_regex is true. */
static const char gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

tokenizer *tok_new_bpe(const tok_bpe_spec *s, ane_error *e) {
    pthread_once(&init_once, init_tables);
    const char *name = s->name ? s->name : "tokenizer.json";
    if (s->n <= 0) { err_set(e, ERR_FORMAT, "%s: the vocabulary is empty", name); return NULL; }
    if (s->n_norm > TOK_MAX_STEPS || s->n_pre > TOK_MAX_STEPS) {
        err_set(e, ERR_UNSUPPORTED, "%s: more than %d normalizer or pre-tokenizer steps", name, TOK_MAX_STEPS);
        return NULL;
    }
    size_t bytes = 0;
    for (int i = 0; i < s->n; i++) bytes += s->pieces[i] ? s->lens[i] : 0;
    tokenizer *t = tok_alloc(name, s->n, bytes, e);
    if (!t) return NULL;
    t->kind = KIND_BPE;
    size_t k = 0;
    for (int i = 0; i < s->n; i++) {
        size_t len = s->pieces[i] ? s->lens[i] : 0;
        if (len > UINT32_MAX) { err_set(e, ERR_FORMAT, "%s: token %d is too long", name, i); goto fail; }
        t->off[i] = k;
        t->len[i] = (uint32_t)len;
        if (len) memcpy(t->arena + k, s->pieces[i], len);
        k += len;
        if ((int)len > t->max_len) t->max_len = (int)len;
    }
    if (build_hash(t, s->in_model)) goto nomem;
    for (int b = 0; b < 256; b++) {
        char p[7];
        snprintf(p, sizeof p, "<0x%02X>", b);
        t->byte_id[b] = tok_lookup(t, p, 6);
    }
    t->bos = s->bos_id;
    t->eos = s->eos_id;
    t->unk = s->unk_id;
    t->byte_fallback = s->byte_fallback;
    t->ignore_merges = s->ignore_merges;
    t->fuse_unk = s->fuse_unk;
    t->decoder = s->decoder;
    t->decoder_strip = s->decoder_strip;
    const int ids[3] = {t->bos, t->eos, t->unk};
    const char *what[3] = {"bos", "eos", "unk"};
    for (int i = 0; i < 3; i++)
        if (ids[i] < -1 || ids[i] >= t->n) {
            err_set(e, ERR_FORMAT, "%s: %s token id %d is out of range [0, %d)", name, what[i], ids[i], t->n);
            goto fail;
        }
    /* merges: both sides and their concatenation must be tokens */
    if (s->n_merges > 0) {
        size_t cap = 16;
        while (cap < (size_t)s->n_merges * 2) cap *= 2;
        t->mkey = malloc(cap * sizeof *t->mkey);
        t->mrank = malloc(cap * sizeof *t->mrank);
        t->mres = malloc(cap * sizeof *t->mres);
        if (!t->mkey || !t->mrank || !t->mres) goto nomem;
        memset(t->mres, 0xff, cap * sizeof *t->mres);
        t->mcap = cap;
        for (int m = 0; m < s->n_merges; m++) {
            int a = tok_lookup(t, s->merge_l[m], s->merge_ll[m]);
            int b = tok_lookup(t, s->merge_r[m], s->merge_rl[m]);
            if (grow((void **)&t->buf, &t->bufcap, s->merge_ll[m] + s->merge_rl[m] + 1, 1)) goto nomem;
            memcpy(t->buf, s->merge_l[m], s->merge_ll[m]);
            memcpy(t->buf + s->merge_ll[m], s->merge_r[m], s->merge_rl[m]);
            int r = tok_lookup(t, t->buf, s->merge_ll[m] + s->merge_rl[m]);
            if (a < 0 || b < 0 || r < 0) {
                err_set(e, ERR_FORMAT, "%s: merge %d (\"%.*s %.*s\"): %s is not in the vocabulary", name, m + 1,
                        (int)(s->merge_ll[m] > 64 ? 64 : s->merge_ll[m]), s->merge_l[m],
                        (int)(s->merge_rl[m] > 64 ? 64 : s->merge_rl[m]), s->merge_r[m],
                        a < 0 ? "its left part" : b < 0 ? "its right part" : "the merged token");
                goto fail;
            }
            uint64_t key = (uint64_t)(uint32_t)a << 32 | (uint32_t)b;
            size_t i = (size_t)((key * 0x9E3779B97F4A7C15ull) >> 20) & (cap - 1);
            while (t->mres[i] >= 0 && t->mkey[i] != key) i = (i + 1) & (cap - 1);
            if (t->mres[i] < 0) { t->mkey[i] = key; t->mrank[i] = m; t->mres[i] = r; } /* first rank wins */
        }
    }
    /* added tokens, longest first so the first match is the longest */
    t->n_added = s->n_added;
    t->added = malloc((s->n_added ? (size_t)s->n_added : 1) * sizeof *t->added);
    if (!t->added) goto nomem;
    for (int i = 0; i < s->n_added; i++) {
        int id = s->added_id[i];
        if (id < 0 || id >= t->n || t->len[id] == 0) {
            err_set(e, ERR_FORMAT, "%s: added token %d has id %d, out of range or empty", name, i + 1, id);
            goto fail;
        }
        int j = i;
        while (j > 0 && t->len[t->added[j - 1]] < t->len[id]) { t->added[j] = t->added[j - 1]; j--; }
        t->added[j] = id;
        t->added_first[(unsigned char)t->arena[t->off[id]]] = 1;
    }
    /* step strings */
    size_t sbytes = 1;
    for (int i = 0; i < s->n_norm; i++) sbytes += s->norm[i].alen + s->norm[i].blen + 2;
    for (int i = 0; i < s->n_pre; i++) sbytes += s->pre[i].regex_len + s->pre[i].replacement_len + 2;
    t->strings = malloc(sbytes);
    if (!t->strings) goto nomem;
    size_t used = 0;
    t->n_norm = s->n_norm;
    for (int i = 0; i < s->n_norm; i++) {
        t->norm[i] = s->norm[i];
        t->norm[i].a = dupmem(t, s->norm[i].a ? s->norm[i].a : "", s->norm[i].alen, &used);
        t->norm[i].b = dupmem(t, s->norm[i].b ? s->norm[i].b : "", s->norm[i].blen, &used);
        if (t->norm[i].kind == TOK_NORM_REPLACE && t->norm[i].alen == 0) {
            err_set(e, ERR_FORMAT, "%s: normalizer Replace with an empty pattern", name);
            goto fail;
        }
    }
    t->n_pre = s->n_pre;
    for (int i = 0; i < s->n_pre; i++) {
        t->pre[i] = s->pre[i];
        t->pre[i].regex = dupmem(t, s->pre[i].regex ? s->pre[i].regex : "", s->pre[i].regex_len, &used);
        t->pre[i].replacement =
            dupmem(t, s->pre[i].replacement ? s->pre[i].replacement : "", s->pre[i].replacement_len, &used);
        if (t->pre[i].kind == TOK_PRE_SPLIT) {
            if (t->pre[i].behavior == TOK_SPLIT_CONTIGUOUS) {
                err_set(e, ERR_UNSUPPORTED, "%s: pre_tokenizer Split behavior \"Contiguous\" is not implemented", name);
                goto fail;
            }
            if (compile_regex(t, i, t->pre[i].regex, t->pre[i].regex_len, e)) goto fail;
        } else if (t->pre[i].kind == TOK_PRE_BYTELEVEL && t->pre[i].use_regex) {
            if (compile_regex(t, i, gpt2_pattern, sizeof gpt2_pattern - 1, e)) goto fail;
        } else if (t->pre[i].kind == TOK_PRE_METASPACE && t->pre[i].replacement_len == 0) {
            err_set(e, ERR_FORMAT, "%s: pre_tokenizer Metaspace with an empty replacement", name);
            goto fail;
        }
    }
    t->region = onig_region_new();
    if (!t->region) goto nomem;
    /* what each id decodes to */
    {
        size_t dbytes = 0;
        for (int i = 0; i < t->n; i++) dbytes += t->len[i];
        t->darena = malloc(dbytes ? dbytes : 1);
        if (!t->darena) goto nomem;
        unsigned char *is_added = calloc((size_t)t->n, 1);
        if (!is_added) goto nomem;
        for (int i = 0; i < t->n_added; i++) is_added[t->added[i]] = 1;
        size_t d = 0;
        for (int id = 0; id < t->n; id++) {
            const char *p = t->arena + t->off[id];
            size_t len = t->len[id];
            t->doff[id] = d;
            int b;
            if (is_added[id] || t->decoder == TOK_DEC_NONE) {
                memcpy(t->darena + d, p, len);
                d += len;
            } else if (t->decoder == TOK_DEC_BYTELEVEL) {
                for (size_t i = 0; i < len;) {
                    utf8proc_int32_t cp;
                    utf8proc_ssize_t cl = utf8proc_iterate((const utf8proc_uint8_t *)p + i, (utf8proc_ssize_t)(len - i), &cp);
                    if (cl <= 0) { t->darena[d++] = p[i++]; continue; }
                    if (cp < 512 && bl_byte[cp] >= 0) t->darena[d++] = (char)bl_byte[cp];
                    else { memcpy(t->darena + d, p + i, (size_t)cl); d += (size_t)cl; }
                    i += (size_t)cl;
                }
            } else if (t->decoder == TOK_DEC_SENTENCEPIECE && (b = byte_piece(p, len)) >= 0) {
                t->darena[d++] = (char)b;
            } else { /* sentencepiece / metaspace: the replacement character becomes a space */
                const char *rep = "\xe2\x96\x81";
                size_t rl = 3;
                for (size_t i = 0; i < len;) {
                    if (len - i >= rl && memcmp(p + i, rep, rl) == 0) { t->darena[d++] = ' '; i += rl; }
                    else t->darena[d++] = p[i++];
                }
            }
            t->dlen[id] = (uint32_t)(d - t->doff[id]);
        }
        free(is_added);
    }
    return t;
nomem:
    err_set(e, ERR_NOMEM, "%s: out of memory", name);
fail:
    tok_free(t);
    return NULL;
}

static int nomem(tokenizer *t, ane_error *e) { return err_set(e, ERR_NOMEM, "%s: out of memory", t->name); }

/* Apply the normalizer steps to in[0..n) -> t->wa as a single string. 0 or an error code (e set). */
static int normalize(tokenizer *t, const char *in, size_t n, ane_error *e) {
    strvec *a = &t->wa, *b = &t->wb;
    sv_reset(a);
    if (sv_add(a, in, n)) return nomem(t, e);
    for (int s = 0; s < t->n_norm; s++) {
        const tok_norm_step *st = &t->norm[s];
        const char *cur = SV_STR(a, 0);
        size_t cl = SV_LEN(a, 0);
        sv_reset(b);
        if (st->kind == TOK_NORM_NFC) {
            utf8proc_uint8_t *dst = NULL;
            utf8proc_ssize_t r = cl ? utf8proc_map((const utf8proc_uint8_t *)cur, (utf8proc_ssize_t)cl, &dst,
                                                   UTF8PROC_STABLE | UTF8PROC_COMPOSE) : 0;
            if (r < 0) { free(dst); return err_set(e, ERR_INVAL, "%s: NFC normalization failed: %s", t->name, utf8proc_errmsg(r)); }
            int rc = sv_add(b, r ? (const char *)dst : "", (size_t)r);
            free(dst);
            if (rc) return nomem(t, e);
        } else if (st->kind == TOK_NORM_PREPEND) {
            if (cl == 0) { if (sv_add(b, "", 0)) return nomem(t, e); }
            else if (sv_add(b, st->a, st->alen) || sv_append(b, cur, cl)) return nomem(t, e);
        } else { /* replace every occurrence of a literal pattern */
            if (sv_add(b, "", 0)) return nomem(t, e);
            for (size_t i = 0; i < cl;) {
                if (cl - i >= st->alen && memcmp(cur + i, st->a, st->alen) == 0) {
                    if (sv_append(b, st->b, st->blen)) return nomem(t, e);
                    i += st->alen;
                } else {
                    if (sv_append(b, cur + i, 1)) return nomem(t, e);
                    i++;
                }
            }
        }
        strvec tmp = *a; *a = *b; *b = tmp;
    }
    return 0;
}

/* Split word w by regex re into `to`: matches are delimiters, handled as behavior beh says. */
static int split_regex(tokenizer *t, OnigRegex re, const char *w, size_t n, int beh, strvec *to) {
    const OnigUChar *start = (const OnigUChar *)w, *end = start + n;
    size_t pos = 0, last = 0;
    int pending_next = 0; /* MergedWithNext: the last added word waits for the following gap */
    while (last <= n) {
        int r = n ? onig_search(re, start, end, start + last, end, t->region, ONIG_OPTION_NONE) : ONIG_MISMATCH;
        if (r < 0 && r != ONIG_MISMATCH) { t->search_err = r; return -1; }
        size_t ms, me;
        if (r >= 0) {
            ms = (size_t)t->region->beg[0];
            me = (size_t)t->region->end[0];
        } else {
            ms = me = n;
        }
        if (r >= 0 && me == ms) { /* empty match: not a delimiter; step over one character */
            size_t cl = ms < n ? utf8_len(w + ms, n - ms) : 1;
            last = ms + (cl ? cl : 1);
            if (last > n) { ms = me = n; r = ONIG_MISMATCH; }
            else continue;
        }
        /* gap [pos, ms), match [ms, me) */
        size_t gl = ms - pos, ml = me - ms;
        if (gl) {
            if (pending_next) { if (sv_append(to, w + pos, gl)) return -1; pending_next = 0; }
            else if (sv_add(to, w + pos, gl)) return -1;
        }
        if (r >= 0 && ml) {
            switch (beh) {
            case TOK_SPLIT_ISOLATED: if (sv_add(to, w + ms, ml)) return -1; pending_next = 0; break;
            case TOK_SPLIT_REMOVED: pending_next = 0; break;
            case TOK_SPLIT_MERGED_PREV:
                if (gl && !pending_next) { if (sv_append(to, w + ms, ml)) return -1; }
                else if (sv_add(to, w + ms, ml)) return -1;
                pending_next = 0;
                break;
            case TOK_SPLIT_MERGED_NEXT:
                if (sv_add(to, w + ms, ml)) return -1;
                pending_next = 1;
                break;
            }
        }
        if (r < 0) break;
        pos = last = me;
    }
    return 0;
}

/* Split with invert: what the regex matches are the words; everything else is the delimiter. */
static int split_inverted(tokenizer *t, OnigRegex re, const char *w, size_t n, int beh, strvec *to) {
    /* find matches, treat gaps as delimiters */
    size_t pos = 0, last = 0;
    int pending_next = 0;
    const OnigUChar *start = (const OnigUChar *)w, *end = start + n;
    while (last <= n) {
        int r = n ? onig_search(re, start, end, start + last, end, t->region, ONIG_OPTION_NONE) : ONIG_MISMATCH;
        if (r < 0 && r != ONIG_MISMATCH) { t->search_err = r; return -1; }
        size_t ms = r >= 0 ? (size_t)t->region->beg[0] : n, me = r >= 0 ? (size_t)t->region->end[0] : n;
        if (r >= 0 && me == ms) {
            size_t cl = ms < n ? utf8_len(w + ms, n - ms) : 1;
            last = ms + (cl ? cl : 1);
            if (last <= n) continue;
            ms = me = n;
            r = ONIG_MISMATCH;
        }
        size_t gl = ms - pos, ml = me - ms;
        /* the gap is the delimiter, the match the word */
        if (gl) {
            switch (beh) {
            case TOK_SPLIT_ISOLATED: if (sv_add(to, w + pos, gl)) return -1; pending_next = 0; break;
            case TOK_SPLIT_REMOVED: break;
            case TOK_SPLIT_MERGED_PREV:
                if (to->cnt && !pending_next && pos > 0) { if (sv_append(to, w + pos, gl)) return -1; }
                else if (sv_add(to, w + pos, gl)) return -1;
                break;
            case TOK_SPLIT_MERGED_NEXT: if (sv_add(to, w + pos, gl)) return -1; pending_next = 1; break;
            }
        }
        if (r >= 0 && ml) {
            if (pending_next) { if (sv_append(to, w + ms, ml)) return -1; pending_next = 0; }
            else if (sv_add(to, w + ms, ml)) return -1;
        }
        if (r < 0) break;
        pos = last = me;
    }
    return 0;
}

static int search_error(tokenizer *t, ane_error *e) {
    OnigUChar msg[ONIG_MAX_ERROR_MESSAGE_LEN];
    onig_error_code_to_str(msg, t->search_err);
    t->search_err = 0;
    return err_set(e, ERR_INVAL, "%s: pre_tokenizer Split: Oniguruma failed on this text: %s", t->name, (const char *)msg);
}

/* Pre-tokenize t->wa (one string) into words in t->wa. first: this segment starts the text. */
static int pretokenize(tokenizer *t, int first, ane_error *e) {
    strvec *a = &t->wa, *b = &t->wb;
    for (int s = 0; s < t->n_pre; s++) {
        const tok_pre_step *st = &t->pre[s];
        sv_reset(b);
        for (size_t i = 0; i < a->cnt; i++) {
            const char *w = SV_STR(a, i);
            size_t n = SV_LEN(a, i);
            if (st->kind == TOK_PRE_SPLIT) {
                if ((st->invert ? split_inverted(t, t->re[s], w, n, st->behavior, b)
                                : split_regex(t, t->re[s], w, n, st->behavior, b)) < 0) return t->search_err ? search_error(t, e) : nomem(t, e);
            } else if (st->kind == TOK_PRE_BYTELEVEL) {
                /* optional prefix space, optional GPT-2 split, then bytes -> characters */
                strvec tmp = {0};
                if (st->add_prefix_space && (n == 0 || w[0] != ' ')) {
                    if (sv_add(&tmp, " ", 1) || sv_append(&tmp, w, n)) { free(tmp.data); free(tmp.off); return t->search_err ? search_error(t, e) : nomem(t, e); }
                } else if (sv_add(&tmp, w, n)) { free(tmp.data); free(tmp.off); return t->search_err ? search_error(t, e) : nomem(t, e); }
                strvec parts = {0};
                int rc = 0;
                if (st->use_regex) rc = split_regex(t, t->re[s], SV_STR(&tmp, 0), SV_LEN(&tmp, 0), TOK_SPLIT_ISOLATED, &parts);
                else rc = sv_add(&parts, SV_STR(&tmp, 0), SV_LEN(&tmp, 0));
                for (size_t p = 0; rc == 0 && p < parts.cnt; p++) {
                    const char *q = SV_STR(&parts, p);
                    size_t ql = SV_LEN(&parts, p);
                    rc = sv_add(b, "", 0);
                    for (size_t j = 0; rc == 0 && j < ql; j++) {
                        char enc[4];
                        size_t el = utf8_put(bl_cp[(unsigned char)q[j]], enc);
                        rc = sv_append(b, enc, el);
                    }
                }
                free(tmp.data); free(tmp.off); free(parts.data); free(parts.off);
                if (rc) return t->search_err ? search_error(t, e) : nomem(t, e);
            } else { /* Metaspace: spaces -> replacement, optional prefix, optional split before each */
                const char *rep = st->replacement;
                size_t rl = st->replacement_len;
                int prepend = st->prepend_scheme == TOK_PREPEND_ALWAYS || (st->prepend_scheme == TOK_PREPEND_FIRST && first && i == 0);
                strvec tmp = {0};
                int rc = sv_add(&tmp, "", 0);
                if (rc == 0 && prepend && !(n >= rl && memcmp(w, rep, rl) == 0) && !(n && w[0] == ' ')) rc = sv_append(&tmp, rep, rl);
                for (size_t j = 0; rc == 0 && j < n; j++) rc = w[j] == ' ' ? sv_append(&tmp, rep, rl) : sv_append(&tmp, w + j, 1);
                if (rc == 0) {
                    const char *q = SV_STR(&tmp, 0);
                    size_t ql = SV_LEN(&tmp, 0);
                    if (!st->split) rc = sv_add(b, q, ql);
                    else {
                        size_t startw = 0;
                        for (size_t j = 0; rc == 0 && j <= ql; j++) {
                            if (j == ql || (j > startw && ql - j >= rl && memcmp(q + j, rep, rl) == 0)) {
                                if (j > startw) rc = sv_add(b, q + startw, j - startw);
                                startw = j;
                            }
                        }
                    }
                }
                free(tmp.data); free(tmp.off);
                if (rc) return t->search_err ? search_error(t, e) : nomem(t, e);
            }
        }
        strvec tmp = *a; *a = *b; *b = tmp;
    }
    return 0;
}

/* BPE over one word. */
static int bpe_word(tokenizer *t, const char *w, size_t n, ane_error *e) {
    if (n == 0) return 0;
    if (t->ignore_merges) {
        int id = tok_lookup(t, w, n);
        if (id >= 0) return out_push(t, id) ? err_set(e, ERR_NOMEM, "%s: out of memory", t->name) : 0;
    }
    size_t start = t->outn;
    int last_unk = 0;
    for (size_t i = 0; i < n;) {
        size_t cl = utf8_len(w + i, n - i);
        if (cl == 0) cl = 1;
        int id = tok_lookup(t, w + i, cl);
        if (id >= 0) {
            if (out_push(t, id)) goto nomem;
            last_unk = 0;
        } else {
            int ok = t->byte_fallback;
            for (size_t k = 0; ok && k < cl; k++) ok = t->byte_id[(unsigned char)w[i + k]] >= 0;
            if (ok) {
                for (size_t k = 0; k < cl; k++)
                    if (out_push(t, t->byte_id[(unsigned char)w[i + k]])) goto nomem;
                last_unk = 0;
            } else if (t->unk >= 0) {
                if (!(t->fuse_unk && last_unk) && out_push(t, t->unk)) goto nomem;
                last_unk = 1;
            } else {
                utf8proc_int32_t cp = 0;
                utf8proc_iterate((const utf8proc_uint8_t *)w + i, (utf8proc_ssize_t)cl, &cp);
                return err_set(e, ERR_INVAL, "%s: character U+%04X is not in the vocabulary, and the model has neither byte fallback nor an unk token",
                               t->name, (unsigned)cp);
            }
        }
        i += cl;
    }
    long k = merge_all(t, t->out + start, t->outn - start);
    if (k < 0) goto nomem;
    t->outn = start + (size_t)k;
    return 0;
nomem:
    return err_set(e, ERR_NOMEM, "%s: out of memory", t->name);
}

static int encode_plain(tokenizer *t, const char *s, size_t n, int first, ane_error *e) {
    if (n == 0) return 0;
    int rc = normalize(t, s, n, e);
    if (rc) return rc;
    if ((rc = pretokenize(t, first, e)) != 0) return rc;
    /* words live in t->wa; bpe_word uses t->buf only through pair_of (bin kind), so wa is stable */
    for (size_t i = 0; i < t->wa.cnt; i++) {
        if ((rc = bpe_word(t, SV_STR(&t->wa, i), SV_LEN(&t->wa, i), e)) != 0) return rc;
    }
    return 0;
}

static int encode_bpe(tokenizer *t, const char *text, size_t n, ane_error *e) {
    for (size_t i = 0; i < n;) {
        size_t cl = utf8_len(text + i, n - i);
        if (cl == 0) return err_set(e, ERR_INVAL, "%s: the text is not valid UTF-8 at byte %zu", t->name, i + 1);
        i += cl;
    }
    size_t seg = 0;
    int first = 1;
    for (size_t i = 0; i < n;) {
        int hit = -1;
        if (t->added_first[(unsigned char)text[i]]) {
            for (int a = 0; a < t->n_added; a++) {
                int id = t->added[a];
                size_t len = t->len[id];
                if (n - i >= len && memcmp(text + i, t->arena + t->off[id], len) == 0) { hit = id; break; }
            }
        }
        if (hit < 0) { i++; continue; }
        int rc = encode_plain(t, text + seg, i - seg, first, e);
        if (rc) return rc;
        if (out_push(t, hit)) return err_set(e, ERR_NOMEM, "%s: out of memory", t->name);
        first = 0;
        i += t->len[hit];
        seg = i;
    }
    return encode_plain(t, text + seg, n - seg, first, e);
}

int tok_encode(tokenizer *t, const char *text, size_t n, int bos, int eos, const int32_t **ids, size_t *nids,
               ane_error *e) {
    t->outn = 0;
    int rc = 0;
    if (bos && t->bos >= 0 && out_push(t, t->bos)) rc = err_set(e, ERR_NOMEM, "%s: out of memory", t->name);
    if (rc == 0) rc = t->kind == KIND_BIN ? encode_bin(t, text, n, e) : encode_bpe(t, text, n, e);
    if (rc == 0 && eos && t->eos >= 0 && out_push(t, t->eos)) rc = err_set(e, ERR_NOMEM, "%s: out of memory", t->name);
    if (rc) { t->outn = 0; return rc; }
    *ids = t->out;
    *nids = t->outn;
    return 0;
}
