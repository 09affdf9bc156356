/* parser.c - recursive-descent parser for MIL text (mil-reference.md sections 3-5).
 *
 * Builds the IR directly into the program's arena; on any error the half-built program is
 * released, so nothing here frees arena memory by hand. Names are resolved while parsing (SSA:
 * every operand refers to an earlier definition), so undefined and duplicate names are parse
 * errors with the position of the offending token. Bounds: type nesting is capped, list literals
 * never hold more elements than their shape (checked element by element, before any buffer
 * grows), and BLOBFILE payloads are not read here at all. */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "lexer.h"
#include "mil_int.h"

typedef struct parser {
    lexer lx;
    mil_program *p;
    ane_error *e;
    int lenient;
    unsigned char *scratch; /* element buffer of the list literal being parsed (malloc) */
    size_t scap;
} parser;

/* ======================= errors and token helpers ======================= */

static int perr_at(parser *P, int line, int col, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
static int perr_at(parser *P, int line, int col, const char *fmt, ...) {
    char text[ERR_MSG_MAX / 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    return mil_error_at(P->e, P->p, ERR_FORMAT, line, col, "%s", text);
}

static int tok_is(const parser *P, const token *t, const char *word) {
    size_t n = strlen(word);
    return t->kind == TK_IDENT && t->len == n && memcmp(P->lx.src + t->pos, word, n) == 0;
}

/* A short printable rendering of a token for messages: 'abc', "string", ')'. */
static const char *tok_desc(const parser *P, const token *t, char *buf, size_t n) {
    if (t->kind == TK_IDENT || t->kind == TK_INT || t->kind == TK_FLOAT || t->kind == TK_STRING) {
        size_t len = t->len > 40 ? 40 : t->len;
        char tmp[48];
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)P->lx.src[t->pos + i];
            tmp[i] = c < 0x20 || c >= 0x7f ? '?' : (char)c;
        }
        tmp[len] = '\0';
        snprintf(buf, n, "'%s%s'", tmp, t->len > len ? "..." : "");
        return buf;
    }
    return tk_name(t->kind);
}

/* Error at token t: for a lexer error its own message, else "expected X, got Y". */
static int perr_expected(parser *P, const token *t, const char *what) {
    if (t->kind == TK_ERROR) return perr_at(P, t->line, t->col, "%s", t->err);
    char d[64];
    return perr_at(P, t->line, t->col, "expected %s, got %s", what, tok_desc(P, t, d, sizeof d));
}

static const token *peek(parser *P, int k) { return lex_peek(&P->lx, k); }

static int expect(parser *P, tk_kind k, token *out) {
    const token *t = peek(P, 0);
    if (t->kind != k) return perr_expected(P, t, tk_name(k));
    token got = lex_next(&P->lx);
    if (out) *out = got;
    return 0;
}

static int expect_word(parser *P, const char *word) {
    const token *t = peek(P, 0);
    if (!tok_is(P, t, word)) {
        char w[64];
        snprintf(w, sizeof w, "'%s'", word);
        return perr_expected(P, t, w);
    }
    lex_next(&P->lx);
    return 0;
}

static int accept(parser *P, tk_kind k) {
    if (peek(P, 0)->kind != k) return 0;
    lex_next(&P->lx);
    return 1;
}

static char *tok_str(parser *P, const token *t) {
    char *s = mil_arena_strndup(P->p->arena, P->lx.src + t->pos, t->len);
    if (!s) err_set(P->e, ERR_NOMEM, "out of memory");
    return s;
}

static int expect_ident(parser *P, const char *what, token *out, char **str) {
    const token *t = peek(P, 0);
    if (t->kind != TK_IDENT) return perr_expected(P, t, what);
    *out = lex_next(&P->lx);
    if (str && !(*str = tok_str(P, out))) return ERR_NOMEM;
    return 0;
}

static int tok_dtype(const parser *P, const token *t, mil_dtype *dt) {
    if (t->kind != TK_IDENT || t->len > 8) return 0;
    char buf[16];
    memcpy(buf, P->lx.src + t->pos, t->len);
    buf[t->len] = '\0';
    return mil_dtype_lookup(buf, dt) == 0;
}

/* Decode a STRING token (quotes stripped, \" and \\ unescaped) into the arena. */
static char *tok_string_value(parser *P, const token *t) {
    const char *s = P->lx.src + t->pos + 1;
    size_t n = t->len - 2;
    char *d = mil_arena_alloc(P->p->arena, n + 1);
    if (!d) { err_set(P->e, ERR_NOMEM, "out of memory"); return NULL; }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n) i++;
        d[k++] = s[i];
    }
    d[k] = '\0';
    return d;
}

/* ======================= comments ======================= */

/* Claim the whole-line comments the lexer has passed that start before text position `before`
 * (the first token of the construct they are kept with) into out, copied into the arena. The
 * lookahead may have scanned comments past that token; those stay for the next claim. */
static int take_comments(parser *P, size_t before, mil_comments *out) {
    lexer *lx = &P->lx;
    if (lx->oom) return err_set(P->e, ERR_NOMEM, "out of memory");
    int first = lx->ctaken, n = 0;
    while (lx->ctaken < lx->ncomments && lx->comments[lx->ctaken].pos < before) {
        n += lx->comments[lx->ctaken].whole_line;
        lx->ctaken++;
    }
    if (!n) return 0;
    const char **t = mil_arena_alloc_array(P->p->arena, (size_t)(out->n + n), sizeof *t);
    if (!t) return err_set(P->e, ERR_NOMEM, "out of memory");
    if (out->n) memcpy(t, out->text, sizeof *t * (size_t)out->n);
    for (int i = first; i < lx->ctaken; i++) {
        const struct lex_comment *c = &lx->comments[i];
        if (!c->whole_line) continue;
        size_t len = c->len;
        while (len > 2 && (lx->src[c->pos + len - 1] == ' ' || lx->src[c->pos + len - 1] == '\t' ||
                           lx->src[c->pos + len - 1] == '\r'))
            len--;
        if (!(t[out->n++] = mil_arena_strndup(P->p->arena, lx->src + c->pos, len)))
            return err_set(P->e, ERR_NOMEM, "out of memory");
    }
    out->text = t;
    return 0;
}

/* ======================= types ======================= */

static int parse_type(parser *P, mil_type *t, int depth);

static int parse_shape(parser *P, mil_type *t) {
    int rc;
    token open;
    if ((rc = expect(P, TK_LBRACK, &open))) return rc;
    t->rank = 0;
    if (accept(P, TK_RBRACK)) return 0;
    for (;;) {
        const token *d = peek(P, 0);
        if (t->rank >= MIL_MAX_RANK)
            return perr_at(P, d->line, d->col, "rank exceeds the limit of %d", MIL_MAX_RANK);
        if (d->kind == TK_INT) {
            token dt = lex_next(&P->lx);
            const char *s = P->lx.src + dt.pos;
            if (*s == '-' || *s == '+') {
                if (*s == '-') return perr_at(P, dt.line, dt.col, "negative dimension");
                s++;
            }
            int64_t v = 0;
            for (size_t i = (size_t)(s - (P->lx.src + dt.pos)); i < dt.len; i++) {
                int digit = P->lx.src[dt.pos + i] - '0';
                if (v > (INT64_MAX - digit) / 10)
                    return perr_at(P, dt.line, dt.col, "dimension too large");
                v = v * 10 + digit;
            }
            t->shape[t->rank++] = v;
        } else if (d->kind == TK_QUEST || d->kind == TK_IDENT) {
            if (!P->lenient)
                return perr_at(P, d->line, d->col,
                               "unknown dimension is accepted only with " MIL_LENIENT_SWITCH);
            lex_next(&P->lx);
            t->shape[t->rank++] = -1;
        } else {
            return perr_expected(P, d, "a dimension");
        }
        if (accept(P, TK_RBRACK)) return 0;
        if ((rc = expect(P, TK_COMMA, NULL))) return rc;
    }
}

static int parse_tensor_type(parser *P, mil_type *t, mil_typekind kind) {
    int rc;
    token dtok;
    if ((rc = expect(P, TK_LT, NULL))) return rc;
    const token *d = peek(P, 0);
    if (!tok_dtype(P, d, &t->dtype)) return perr_expected(P, d, "an element type (fp16, int32, ...)");
    dtok = lex_next(&P->lx);
    (void)dtok;
    if ((rc = expect(P, TK_COMMA, NULL)) || (rc = parse_shape(P, t)) || (rc = expect(P, TK_GT, NULL)))
        return rc;
    t->kind = kind;
    return 0;
}

#define MAX_TUPLE 64

static int parse_type(parser *P, mil_type *t, int depth) {
    int rc;
    memset(t, 0, sizeof *t);
    const token *k = peek(P, 0);
    if (depth > MIL_MAX_TYPE_DEPTH)
        return perr_at(P, k->line, k->col, "types nested deeper than %d", MIL_MAX_TYPE_DEPTH);
    if (tok_dtype(P, k, &t->dtype)) {
        lex_next(&P->lx);
        t->kind = MIL_T_TENSOR;
        return 0;
    }
    if (tok_is(P, k, "tensor")) {
        lex_next(&P->lx);
        return parse_tensor_type(P, t, MIL_T_TENSOR);
    }
    if (tok_is(P, k, "state")) {
        lex_next(&P->lx);
        if ((rc = expect(P, TK_LT, NULL)) || (rc = expect_word(P, "tensor")) ||
            (rc = parse_tensor_type(P, t, MIL_T_STATE)) || (rc = expect(P, TK_GT, NULL)))
            return rc;
        return 0;
    }
    int is_dict = tok_is(P, k, "dict"), is_list = tok_is(P, k, "list"), is_tuple = tok_is(P, k, "tuple");
    if (!is_dict && !is_list && !is_tuple) return perr_expected(P, k, "a type");
    lex_next(&P->lx);
    if ((rc = expect(P, TK_LT, NULL))) return rc;
    mil_type sub[MAX_TUPLE];
    int nsub = 0;
    for (;;) {
        const token *at = peek(P, 0);
        if (nsub >= MAX_TUPLE) return perr_at(P, at->line, at->col, "too many tuple members");
        if ((rc = parse_type(P, &sub[nsub++], depth + 1))) return rc;
        if (is_list) {
            if ((rc = expect(P, TK_COMMA, NULL))) return rc;
            const token *n = peek(P, 0);
            if (n->kind == TK_QUEST) {
                lex_next(&P->lx);
                t->list_len = -1;
            } else if (n->kind == TK_INT && P->lx.src[n->pos] != '-' && n->len < 12) {
                t->list_len = strtoll(P->lx.src + n->pos, NULL, 10);
                lex_next(&P->lx);
            } else {
                return perr_expected(P, n, "a list length or '?'");
            }
            break;
        }
        if (is_dict && nsub == 2) break;
        if (!is_dict && peek(P, 0)->kind == TK_GT) break; /* tuple */
        if ((rc = expect(P, TK_COMMA, NULL))) return rc;
    }
    if ((rc = expect(P, TK_GT, NULL))) return rc;
    t->kind = is_dict ? MIL_T_DICT : is_list ? MIL_T_LIST : MIL_T_TUPLE;
    t->nsub = nsub;
    t->sub = mil_arena_memdup(P->p->arena, sub, sizeof(mil_type) * (size_t)nsub);
    if (!t->sub) return err_set(P->e, ERR_NOMEM, "out of memory");
    return 0;
}

/* ======================= scalars ======================= */

/* Integer token -> value with overflow detection. neg receives the sign; mag the magnitude. */
static int tok_integer(const parser *P, const token *t, int *neg, uint64_t *mag) {
    const char *s = P->lx.src + t->pos;
    size_t i = 0;
    *neg = 0;
    if (s[0] == '-' || s[0] == '+') { *neg = s[0] == '-'; i = 1; }
    uint64_t v = 0;
    for (; i < t->len; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    *mag = v;
    return 0;
}

static int tok_double(parser *P, const token *t, double *out) {
    char buf[128];
    if (tok_is(P, t, "inf")) { *out = INFINITY; return 0; }
    if (tok_is(P, t, "nan")) { *out = NAN; return 0; }
    if (t->len >= sizeof buf) return perr_at(P, t->line, t->col, "number too long");
    memcpy(buf, P->lx.src + t->pos, t->len);
    buf[t->len] = '\0';
    const char *s = buf;
    int neg = 0;
    if (*s == '-' || *s == '+') { neg = *s == '-'; s++; }
    if (strcmp(s, "inf") == 0) { *out = neg ? -INFINITY : INFINITY; return 0; }
    if (strcmp(s, "nan") == 0) { *out = NAN; return 0; }
    char *end;
    errno = 0;
    double v = strtod(buf, &end);
    /* strtod follows the C locale's decimal point; refuse rather than misread */
    if (*end) return perr_at(P, t->line, t->col, "cannot read number (locale decimal point?)");
    *out = v; /* overflow gives +-inf, which the float dtypes represent */
    return 0;
}

static int range_check(parser *P, const token *t, mil_dtype dt, int neg, uint64_t mag,
                       int64_t *sv, uint64_t *uv) {
    int64_t lo = 0;
    uint64_t hi = 0;
    switch (dt) {
    case MIL_INT4: lo = -8; hi = 7; break;
    case MIL_INT8: lo = INT8_MIN; hi = INT8_MAX; break;
    case MIL_INT16: lo = INT16_MIN; hi = INT16_MAX; break;
    case MIL_INT32: lo = INT32_MIN; hi = INT32_MAX; break;
    case MIL_INT64: lo = INT64_MIN; hi = INT64_MAX; break;
    case MIL_UINT1: hi = 1; break;
    case MIL_UINT2: hi = 3; break;
    case MIL_UINT3: hi = 7; break;
    case MIL_UINT4: hi = 15; break;
    case MIL_UINT6: hi = 63; break;
    case MIL_UINT8: hi = UINT8_MAX; break;
    case MIL_UINT16: hi = UINT16_MAX; break;
    case MIL_UINT32: hi = UINT32_MAX; break;
    case MIL_UINT64: hi = UINT64_MAX; break;
    default: break;
    }
    char d[64];
    if (neg) {
        /* magnitude of lo: -(lo+1)+1 avoids overflow for INT64_MIN */
        uint64_t lim = lo < 0 ? (uint64_t)(-(lo + 1)) + 1 : 0;
        if (mag > lim)
            return perr_at(P, t->line, t->col, "value %s out of range for %s", tok_desc(P, t, d, sizeof d),
                           mil_dtype_name(dt));
        *sv = mag == 0 ? 0 : -(int64_t)(mag - 1) - 1;
    } else {
        if (mag > hi)
            return perr_at(P, t->line, t->col, "value %s out of range for %s", tok_desc(P, t, d, sizeof d),
                           mil_dtype_name(dt));
        *sv = (int64_t)(mag > (uint64_t)INT64_MAX ? 0 : mag);
    }
    *uv = mag;
    return 0;
}

/* Consume one scalar token and store it, converted to dt, at dst (mil_literal element layout). */
static int parse_scalar(parser *P, mil_dtype dt, void *dst) {
    const token *t = peek(P, 0);
    char d[64];
    int rc;
    switch (dt) {
    case MIL_FP16: case MIL_FP32: case MIL_FP64: case MIL_BF16: {
        if (!(t->kind == TK_INT || t->kind == TK_FLOAT || tok_is(P, t, "inf") || tok_is(P, t, "nan")))
            return perr_expected(P, t, mil_dtype_name(dt) == NULL ? "a number" : "a number");
        double v = 0;
        token tk = lex_next(&P->lx);
        if ((rc = tok_double(P, &tk, &v))) return rc;
        if (dt == MIL_FP16) { uint16_t h = mil_f16_from_double(v); memcpy(dst, &h, 2); }
        else if (dt == MIL_BF16) { uint16_t h = mil_bf16_from_double(v); memcpy(dst, &h, 2); }
        else if (dt == MIL_FP32) { float f = (float)v; memcpy(dst, &f, 4); }
        else memcpy(dst, &v, 8);
        return 0;
    }
    case MIL_BOOL: {
        int b;
        if (tok_is(P, t, "true")) b = 1;
        else if (tok_is(P, t, "false")) b = 0;
        else return perr_expected(P, t, "true or false");
        lex_next(&P->lx);
        *(uint8_t *)dst = (uint8_t)b;
        return 0;
    }
    case MIL_STRING: {
        if (t->kind != TK_STRING) return perr_expected(P, t, "a string");
        token tk = lex_next(&P->lx);
        char *s = tok_string_value(P, &tk);
        if (!s) return ERR_NOMEM;
        memcpy(dst, &s, sizeof s);
        return 0;
    }
    default: break;
    }
    /* integer dtypes */
    if (t->kind != TK_INT) {
        if (t->kind == TK_FLOAT)
            return perr_at(P, t->line, t->col, "expected an integer for %s, got %s", mil_dtype_name(dt),
                           tok_desc(P, t, d, sizeof d));
        return perr_expected(P, t, "an integer");
    }
    token tk = lex_next(&P->lx);
    int neg;
    uint64_t mag;
    if (tok_integer(P, &tk, &neg, &mag))
        return perr_at(P, tk.line, tk.col, "value %s out of range for %s", tok_desc(P, &tk, d, sizeof d),
                       mil_dtype_name(dt));
    int64_t sv;
    uint64_t uv;
    if ((rc = range_check(P, &tk, dt, neg, mag, &sv, &uv))) return rc;
    switch (dt) {
    case MIL_INT4: case MIL_INT8: { int8_t v = (int8_t)sv; memcpy(dst, &v, 1); break; }
    case MIL_INT16: { int16_t v = (int16_t)sv; memcpy(dst, &v, 2); break; }
    case MIL_INT32: { int32_t v = (int32_t)sv; memcpy(dst, &v, 4); break; }
    case MIL_INT64: memcpy(dst, &sv, 8); break;
    case MIL_UINT16: { uint16_t v = (uint16_t)uv; memcpy(dst, &v, 2); break; }
    case MIL_UINT32: { uint32_t v = (uint32_t)uv; memcpy(dst, &v, 4); break; }
    case MIL_UINT64: memcpy(dst, &uv, 8); break;
    default: { uint8_t v = (uint8_t)uv; memcpy(dst, &v, 1); break; } /* uint1..uint8 */
    }
    return 0;
}

/* ======================= literals ======================= */

typedef struct list_ctx {
    mil_dtype dt;
    size_t es;
    int rank;
    const int64_t *shape;
    int64_t numel;
    int64_t count;  /* elements stored in P->scratch */
    int nested;     /* -1 undecided, 0 flat, 1 nested to the rank */
} list_ctx;

static int scratch_push(parser *P, list_ctx *c, void **slot) {
    size_t need = (size_t)(c->count + 1) * c->es;
    if (need > P->scap) {
        size_t cap = P->scap ? P->scap * 2 : 256;
        while (cap < need) cap *= 2;
        unsigned char *n = realloc(P->scratch, cap);
        if (!n) return err_set(P->e, ERR_NOMEM, "out of memory");
        P->scratch = n;
        P->scap = cap;
    }
    *slot = P->scratch + (size_t)c->count * c->es;
    c->count++;
    return 0;
}

static void shape_text(int rank, const int64_t *shape, char *buf, size_t n) {
    size_t k = (size_t)snprintf(buf, n, "[");
    for (int i = 0; i < rank && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (k < n) snprintf(buf + k, n - k, "]");
}

/* One `[ ... ]` at nesting depth `depth` (0 = outermost). */
static int parse_list(parser *P, list_ctx *c, int depth) {
    int rc;
    token open;
    if ((rc = expect(P, TK_LBRACK, &open))) return rc;
    int64_t items = 0;
    if (peek(P, 0)->kind != TK_RBRACK) {
        for (;;) {
            const token *t = peek(P, 0);
            int is_list = t->kind == TK_LBRACK;
            if (c->nested < 0) c->nested = is_list;
            if (!c->nested) {
                if (is_list)
                    return perr_at(P, t->line, t->col, "nested list inside a flat list literal");
                if (c->count >= c->numel) {
                    char sh[128];
                    shape_text(c->rank, c->shape, sh, sizeof sh);
                    return perr_at(P, t->line, t->col, "too many elements for shape %s (%lld expected)",
                                   sh, (long long)c->numel);
                }
            } else {
                int want_list = depth < c->rank - 1;
                if (depth >= c->rank || is_list != want_list)
                    return perr_at(P, t->line, t->col, "list literal nesting does not match rank %d",
                                   c->rank);
                if (items >= c->shape[depth])
                    return perr_at(P, t->line, t->col, "too many elements in dimension %d (size %lld)",
                                   depth, (long long)c->shape[depth]);
            }
            if (is_list) {
                if ((rc = parse_list(P, c, depth + 1))) return rc;
            } else {
                void *slot = NULL;
                if ((rc = scratch_push(P, c, &slot))) return rc;
                if ((rc = parse_scalar(P, c->dt, slot))) return rc;
            }
            items++;
            if (accept(P, TK_RBRACK)) break;
            if ((rc = expect(P, TK_COMMA, NULL))) return rc;
        }
    } else {
        lex_next(&P->lx);
        if (c->nested < 0) c->nested = 0;
    }
    if (c->nested == 1 && depth < c->rank && items != c->shape[depth])
        return perr_at(P, open.line, open.col, "dimension %d has %lld elements, shape says %lld", depth,
                       (long long)items, (long long)c->shape[depth]);
    return 0;
}

static int parse_literal(parser *P, mil_literal **out, int depth);

/* BLOBFILE(path = string("..."), offset = uint64(N)); also the tensor<T, []> spellings. */
static int parse_blobfile(parser *P, mil_literal *l) {
    int rc;
    token kw = lex_next(&P->lx); /* BLOBFILE */
    if ((rc = expect(P, TK_LPAREN, NULL)) || (rc = expect_word(P, "path")) || (rc = expect(P, TK_EQ, NULL)))
        return rc;
    const token *pt = peek(P, 0);
    int pl = pt->line, pc = pt->col;
    mil_literal *path, *off;
    if ((rc = parse_literal(P, &path, 1))) return rc;
    if (path->form != MIL_LIT_DATA || path->type.kind != MIL_T_TENSOR || path->type.dtype != MIL_STRING ||
        path->type.rank != 0)
        return perr_at(P, pl, pc, "BLOBFILE path must be a string");
    if ((rc = expect(P, TK_COMMA, NULL)) || (rc = expect_word(P, "offset")) || (rc = expect(P, TK_EQ, NULL)))
        return rc;
    const token *ot = peek(P, 0);
    int ol = ot->line, oc = ot->col;
    if ((rc = parse_literal(P, &off, 1))) return rc;
    if (off->form != MIL_LIT_DATA || off->type.kind != MIL_T_TENSOR || off->type.dtype != MIL_UINT64 ||
        off->type.rank != 0)
        return perr_at(P, ol, oc, "BLOBFILE offset must be a uint64");
    if ((rc = expect(P, TK_RPAREN, NULL))) return rc;
    (void)kw;
    l->form = MIL_LIT_BLOB;
    l->blob_path = ((const char *const *)path->data)[0];
    memcpy(&l->blob_offset, off->data, sizeof l->blob_offset);
    return 0;
}

static int parse_dict_payload(parser *P, mil_literal *l) {
    int rc;
    const mil_type *kt = &l->type.sub[0], *vt = &l->type.sub[1];
    if (kt->kind != MIL_T_TENSOR || kt->rank != 0 || vt->kind != MIL_T_TENSOR || vt->rank != 0) {
        const token *t = peek(P, 0);
        return perr_at(P, t->line, t->col, "dict literal keys and values must be scalar types");
    }
    if ((rc = expect(P, TK_LBRACE, NULL))) return rc;
    int64_t cap = 0;
    l->count = 0;
    if (accept(P, TK_RBRACE)) return 0;
    for (;;) {
        if (l->count == cap) {
            int64_t nc = cap ? cap * 2 : 8;
            if (nc > MIL_MAX_VALUES) return perr_at(P, peek(P, 0)->line, peek(P, 0)->col, "dict too large");
            mil_literal *nk = mil_arena_alloc_array(P->p->arena, (size_t)nc, sizeof *nk);
            mil_literal *nv = mil_arena_alloc_array(P->p->arena, (size_t)nc, sizeof *nv);
            if (!nk || !nv) return err_set(P->e, ERR_NOMEM, "out of memory");
            if (l->count) {
                memcpy(nk, l->keys, sizeof *nk * (size_t)l->count);
                memcpy(nv, l->vals, sizeof *nv * (size_t)l->count);
            }
            l->keys = nk;
            l->vals = nv;
            cap = nc;
        }
        mil_literal *k = &l->keys[l->count], *v = &l->vals[l->count];
        k->type = *kt;
        v->type = *vt;
        k->count = v->count = 1;
        k->data = mil_arena_alloc(P->p->arena, mil_dtype_elem_size(kt->dtype));
        v->data = mil_arena_alloc(P->p->arena, mil_dtype_elem_size(vt->dtype));
        if (!k->data || !v->data) return err_set(P->e, ERR_NOMEM, "out of memory");
        if ((rc = expect(P, TK_LBRACE, NULL)) || (rc = parse_scalar(P, kt->dtype, k->data)) ||
            (rc = expect(P, TK_COMMA, NULL)) || (rc = parse_scalar(P, vt->dtype, v->data)) ||
            (rc = expect(P, TK_RBRACE, NULL)))
            return rc;
        l->count++;
        if (accept(P, TK_RBRACE)) return 0;
        if ((rc = expect(P, TK_COMMA, NULL))) return rc;
    }
}

/* value = DTYPE "(" scalar ")" | tensor_type "(" payload ")" | dict_type "(" "{" pairs "}" ")" */
static int parse_literal(parser *P, mil_literal **out, int depth) {
    int rc;
    const token *t = peek(P, 0);
    int line = t->line, col = t->col;
    if (depth > 4) return perr_at(P, line, col, "literal nested too deeply");
    mil_literal *l = mil_arena_alloc(P->p->arena, sizeof *l);
    if (!l) return err_set(P->e, ERR_NOMEM, "out of memory");
    int is_dict = tok_is(P, t, "dict");
    mil_dtype dt;
    if (!tok_is(P, t, "tensor") && !is_dict && !tok_dtype(P, t, &dt))
        return perr_expected(P, t, "a literal");
    if ((rc = parse_type(P, &l->type, 0))) return rc;
    if ((rc = expect(P, TK_LPAREN, NULL))) return rc;
    if (is_dict) {
        l->form = MIL_LIT_DICT;
        if ((rc = parse_dict_payload(P, l))) return rc;
    } else {
        mil_type *ty = &l->type;
        int64_t numel = mil_shape_numel(ty->rank, ty->shape);
        if (numel < 0) return perr_at(P, line, col, "literal shape must be static and not overflow");
        size_t es = mil_dtype_elem_size(ty->dtype);
        if ((uint64_t)numel > (uint64_t)(INT64_MAX / 8)) return perr_at(P, line, col, "literal too large");
        l->count = numel;
        const token *pl = peek(P, 0);
        if (tok_is(P, pl, "BLOBFILE")) {
            if (ty->dtype == MIL_STRING || ty->dtype == MIL_BOOL)
                return perr_at(P, pl->line, pl->col, "BLOBFILE cannot hold %s data", mil_dtype_name(ty->dtype));
            if ((rc = parse_blobfile(P, l))) return rc;
        } else if (pl->kind == TK_LBRACK) {
            list_ctx c = {ty->dtype, es, ty->rank, ty->shape, numel, 0, -1};
            if ((rc = parse_list(P, &c, 0))) return rc;
            if (c.count != numel) {
                char sh[128];
                shape_text(ty->rank, ty->shape, sh, sizeof sh);
                return perr_at(P, pl->line, pl->col, "list literal has %lld elements, shape %s needs %lld",
                               (long long)c.count, sh, (long long)numel);
            }
            if (numel && !(l->data = mil_arena_memdup(P->p->arena, P->scratch, (size_t)numel * es)))
                return err_set(P->e, ERR_NOMEM, "out of memory");
        } else {
            if (numel != 1) {
                char sh[128];
                shape_text(ty->rank, ty->shape, sh, sizeof sh);
                return perr_at(P, pl->line, pl->col, "a single value cannot fill shape %s; write a list", sh);
            }
            if (!(l->data = mil_arena_alloc(P->p->arena, es))) return err_set(P->e, ERR_NOMEM, "out of memory");
            if ((rc = parse_scalar(P, ty->dtype, l->data))) return rc;
        }
    }
    if ((rc = expect(P, TK_RPAREN, NULL))) return rc;
    *out = l;
    return 0;
}

/* ======================= statements ======================= */

static int push_inline(parser *P, mil_function *f, mil_literal *l, int line, int col) {
    mil_value v = {0};
    v.type = l->type;
    v.def_op = -1;
    v.lit = l;
    v.line = line;
    v.col = col;
    v.is_inline = 1;
    return mil__func_push_value(P->p, f, &v, P->e);
}

static int parse_operand(parser *P, mil_function *f, int *vidx) {
    const token *t = peek(P, 0);
    int line = t->line, col = t->col, rc;
    mil_dtype dt;
    if (t->kind == TK_IDENT) {
        const token *n = peek(P, 1);
        int lit = ((tok_is(P, t, "tensor") || tok_is(P, t, "dict")) && n->kind == TK_LT) ||
                  (tok_dtype(P, t, &dt) && n->kind == TK_LPAREN);
        if (lit) {
            mil_literal *l;
            if ((rc = parse_literal(P, &l, 0))) return rc;
            if ((*vidx = push_inline(P, f, l, line, col)) < 0) return *vidx;
            return 0;
        }
        char name[MIL_MAX_NAME + 1];
        memcpy(name, P->lx.src + t->pos, t->len);
        name[t->len] = '\0';
        int v = mil_func_value(f, name);
        if (v >= 0) {
            lex_next(&P->lx);
            *vidx = v;
            return 0;
        }
        if (strcmp(name, "true") == 0 || strcmp(name, "false") == 0) {
            if (!P->lenient)
                return perr_at(P, line, col, "bare '%s' is accepted only with " MIL_LENIENT_SWITCH "; write bool(%s)",
                               name, name);
            lex_next(&P->lx);
            mil_literal *l = mil_arena_alloc(P->p->arena, sizeof *l);
            uint8_t *b = mil_arena_alloc(P->p->arena, 1);
            if (!l || !b) return err_set(P->e, ERR_NOMEM, "out of memory");
            *b = name[0] == 't';
            l->type.kind = MIL_T_TENSOR;
            l->type.dtype = MIL_BOOL;
            l->count = 1;
            l->data = b;
            if ((*vidx = push_inline(P, f, l, line, col)) < 0) return *vidx;
            return 0;
        }
        return perr_at(P, line, col, "undefined value '%s'", name);
    }
    if (t->kind == TK_INT || t->kind == TK_FLOAT || t->kind == TK_STRING)
        return perr_at(P, line, col, "a literal needs its type, e.g. fp16(1) or string(\"x\")");
    return perr_expected(P, t, "a value name or a literal");
}

#define MAX_BINDINGS 1024

typedef struct bind_vec {
    mil_binding *b;
    int n, cap;
} bind_vec;

static int bind_push(parser *P, bind_vec *v, mil_binding **out) {
    if (mil_arena_grow(P->p->arena, (void **)&v->b, &v->cap, v->n, 8, INT_MAX, sizeof *v->b))
        return err_set(P->e, ERR_NOMEM, "out of memory");
    *out = &v->b[v->n++];
    memset(*out, 0, sizeof **out);
    return 0;
}

/* name = operand | name = ( operand, ... )   (attributes: literals only) */
static int parse_binding(parser *P, mil_function *f, bind_vec *v, int attr, const char *what) {
    int rc;
    token nt;
    char *name;
    if (v->n >= MAX_BINDINGS) {
        const token *t = peek(P, 0);
        return perr_at(P, t->line, t->col, "too many %ss", what);
    }
    if ((rc = expect_ident(P, what, &nt, &name))) return rc;
    for (int i = 0; i < v->n; i++)
        if (strcmp(v->b[i].name, name) == 0) return perr_at(P, nt.line, nt.col, "duplicate %s '%s'", what, name);
    if ((rc = expect(P, TK_EQ, NULL))) return rc;
    mil_binding *b = NULL;
    if ((rc = bind_push(P, v, &b))) return rc;
    b->name = name;
    b->line = nt.line;
    b->col = nt.col;
    if (attr) {
        const token *t = peek(P, 0);
        int line = t->line, col = t->col;
        mil_literal *l;
        if ((rc = parse_literal(P, &l, 0))) return rc;
        int vi = push_inline(P, f, l, line, col);
        if (vi < 0) return vi;
        b->n = 1;
        if (!(b->values = mil_arena_memdup(P->p->arena, &vi, sizeof vi))) return err_set(P->e, ERR_NOMEM, "out of memory");
        return 0;
    }
    if (peek(P, 0)->kind != TK_LPAREN) {
        int vi;
        if ((rc = parse_operand(P, f, &vi))) return rc;
        b->n = 1;
        if (!(b->values = mil_arena_memdup(P->p->arena, &vi, sizeof vi))) return err_set(P->e, ERR_NOMEM, "out of memory");
        return 0;
    }
    lex_next(&P->lx); /* ( */
    b->is_tuple = 1;
    int cap = 0;
    if (accept(P, TK_RPAREN)) return 0;
    for (;;) {
        int vi;
        /* b may move when literals are appended? No: bindings live in v->b, values in f. */
        if ((rc = parse_operand(P, f, &vi))) return rc;
        if (mil_arena_grow(P->p->arena, (void **)&b->values, &cap, b->n, 4, INT_MAX, sizeof(int)))
            return err_set(P->e, ERR_NOMEM, "out of memory");
        b->values[b->n++] = vi;
        if (accept(P, TK_RPAREN)) return 0;
        if ((rc = expect(P, TK_COMMA, NULL))) return rc;
    }
}

static int parse_attr_block(parser *P, mil_function *f, bind_vec *v) {
    int rc;
    if ((rc = expect(P, TK_LBRACK, NULL))) return rc;
    if (accept(P, TK_RBRACK)) return 0;
    for (;;) {
        if ((rc = parse_binding(P, f, v, 1, "attribute"))) return rc;
        if (accept(P, TK_RBRACK)) return 0;
        if ((rc = expect(P, TK_COMMA, NULL))) return rc;
    }
}

typedef struct result_decl {
    mil_type type;
    token name;
} result_decl;

static int parse_result(parser *P, result_decl *r) {
    int rc;
    if ((rc = parse_type(P, &r->type, 0))) return rc;
    return expect_ident(P, "a result name", &r->name, NULL);
}

static int is_type_start(const parser *P, const token *t) {
    mil_dtype dt;
    return tok_dtype(P, t, &dt) || tok_is(P, t, "tensor") || tok_is(P, t, "state") ||
           tok_is(P, t, "dict") || tok_is(P, t, "list") || tok_is(P, t, "tuple");
}

static int parse_statement(parser *P, int fi) {
    mil_function *f = &P->p->funcs[fi];
    int rc;
    const token *st = peek(P, 0);
    int sline = st->line, scol = st->col;
    mil_comments comments = {0};
    if ((rc = take_comments(P, st->pos, &comments))) return rc;
    result_decl res[MIL_MAX_RESULTS];
    int nres = 0;
    int paren = st->kind == TK_LPAREN;
    if (paren && !P->lenient)
        return perr_at(P, sline, scol,
                       "parenthesised results are accepted only with " MIL_LENIENT_SWITCH " (Apple's parser "
                       "rejects them); write them without parentheses: "
                       "tensor<...> a, tensor<...> b = split(...)");
    if (paren) lex_next(&P->lx);
    for (;;) {
        const token *t = peek(P, 0);
        if (nres >= MIL_MAX_RESULTS)
            return perr_at(P, t->line, t->col, "more than %d results", MIL_MAX_RESULTS);
        if (!is_type_start(P, t)) return perr_expected(P, t, "a result type");
        if ((rc = parse_result(P, &res[nres++]))) return rc;
        if (peek(P, 0)->kind != TK_COMMA) break;
        lex_next(&P->lx);
    }
    if (paren && (rc = expect(P, TK_RPAREN, NULL))) return rc;
    if ((rc = expect(P, TK_EQ, NULL))) return rc;
    token opt;
    char *optype;
    if ((rc = expect_ident(P, "an op type", &opt, &optype))) return rc;
    if ((rc = expect(P, TK_LPAREN, NULL))) return rc;
    bind_vec in = {0}, attr = {0};
    if (!accept(P, TK_RPAREN)) {
        for (;;) {
            if ((rc = parse_binding(P, f, &in, 0, "input"))) return rc;
            if (accept(P, TK_RPAREN)) break;
            if ((rc = expect(P, TK_COMMA, NULL))) return rc;
        }
    }
    if (peek(P, 0)->kind == TK_LBRACK && (rc = parse_attr_block(P, f, &attr))) return rc;
    token semi;
    if ((rc = expect(P, TK_SEMI, &semi))) return rc;
    /* comments inside the statement stay with it (not those the lookahead passed after it) */
    if ((rc = take_comments(P, semi.pos, &comments))) return rc;

    /* Results become visible only now (an op cannot use its own result). */
    int *ri = mil_arena_alloc_array(P->p->arena, (size_t)nres, sizeof(int));
    if (!ri) return err_set(P->e, ERR_NOMEM, "out of memory");
    int opi = f->nops;
    for (int r = 0; r < nres; r++) {
        char *name = tok_str(P, &res[r].name);
        if (!name) return ERR_NOMEM;
        if (mil_func_value(f, name) >= 0)
            return perr_at(P, res[r].name.line, res[r].name.col, "duplicate name '%s'", name);
        mil_value v = {0};
        v.name = name;
        v.type = res[r].type;
        v.def_op = opi;
        v.def_result = r;
        v.line = res[r].name.line;
        v.col = res[r].name.col;
        if ((ri[r] = mil__func_push_value(P->p, f, &v, P->e)) < 0) return ri[r];
    }
    mil_op op = {0};
    op.type = optype;
    op.kind = mil_op_lookup(optype);
    op.nin = in.n;
    op.in = in.b;
    op.nattr = attr.n;
    op.attr = attr.b;
    op.nres = nres;
    op.res = ri;
    op.line = sline;
    op.col = scol;
    op.comments = comments;
    for (int i = 0; i < attr.n; i++) {
        const mil_value *av = &f->values[attr.b[i].values[0]];
        if (strcmp(attr.b[i].name, "name") == 0 && av->lit->form == MIL_LIT_DATA &&
            av->type.kind == MIL_T_TENSOR && av->type.dtype == MIL_STRING && av->type.rank == 0)
            op.label = ((const char *const *)av->lit->data)[0];
        if (strcmp(attr.b[i].name, "val") == 0 && op.kind == MIL_OP_const && nres == 1)
            f->values[ri[0]].lit = av->lit;
    }
    if ((rc = mil__func_push_op(P->p, f, &op, P->e)) < 0) return rc;
    return 0;
}

/* ======================= functions and the program ======================= */

static int parse_function(parser *P) {
    int rc;
    token kw, nt, ot;
    char *name, *opset;
    mil_comments comments = {0};
    if ((rc = take_comments(P, peek(P, 0)->pos, &comments))) return rc;
    if ((rc = expect_ident(P, "'func'", &kw, NULL))) return rc;
    if ((rc = expect_ident(P, "a function name", &nt, &name))) return rc;
    if (mil_program_func(P->p, name)) return perr_at(P, nt.line, nt.col, "duplicate function '%s'", name);
    if ((rc = expect(P, TK_LT, NULL)) || (rc = expect_ident(P, "an opset (ios18)", &ot, &opset)) ||
        (rc = expect(P, TK_GT, NULL)))
        return rc;
    int fi = mil__prog_push_func(P->p, name, opset, P->e);
    if (fi < 0) return fi;
    P->p->funcs[fi].line = kw.line;
    P->p->funcs[fi].col = kw.col;
    P->p->funcs[fi].comments = comments;
    if ((rc = expect(P, TK_LPAREN, NULL))) return rc;
    if (!accept(P, TK_RPAREN)) {
        for (;;) {
            result_decl r;
            if ((rc = parse_result(P, &r))) return rc;
            mil_function *f = &P->p->funcs[fi];
            char *pname = tok_str(P, &r.name);
            if (!pname) return ERR_NOMEM;
            if (mil_func_value(f, pname) >= 0)
                return perr_at(P, r.name.line, r.name.col, "duplicate parameter '%s'", pname);
            mil_value v = {0};
            v.name = pname;
            v.type = r.type;
            v.def_op = -1;
            v.is_param = 1;
            v.line = r.name.line;
            v.col = r.name.col;
            int vi = mil__func_push_value(P->p, f, &v, P->e);
            if (vi < 0) return vi;
            if ((rc = mil__func_push_param(P->p, f, vi, P->e)) < 0) return rc;
            if (accept(P, TK_RPAREN)) break;
            if ((rc = expect(P, TK_COMMA, NULL))) return rc;
        }
    }
    if ((rc = expect(P, TK_LBRACE, NULL))) return rc;
    while (peek(P, 0)->kind != TK_RBRACE) {
        if (peek(P, 0)->kind == TK_EOF || peek(P, 0)->kind == TK_ERROR)
            return perr_expected(P, peek(P, 0), "a statement or '}'");
        if ((rc = parse_statement(P, fi))) return rc;
    }
    if ((rc = take_comments(P, peek(P, 0)->pos, &P->p->funcs[fi].end_comments))) return rc;
    lex_next(&P->lx);
    if ((rc = expect(P, TK_ARROW, NULL)) || (rc = expect(P, TK_LPAREN, NULL))) return rc;
    mil_function *f = &P->p->funcs[fi];
    int cap = 0;
    if (!accept(P, TK_RPAREN)) {
        for (;;) {
            token on;
            char *oname;
            if ((rc = expect_ident(P, "an output name", &on, &oname))) return rc;
            int v = mil_func_value(f, oname);
            if (v < 0) return perr_at(P, on.line, on.col, "undefined output '%s'", oname);
            if (f->nouts >= MIL_MAX_VALUES) return perr_at(P, on.line, on.col, "too many outputs");
            if (mil_arena_grow(P->p->arena, (void **)&f->outs, &cap, f->nouts, 4, INT_MAX, sizeof(int)))
                return err_set(P->e, ERR_NOMEM, "out of memory");
            f->outs[f->nouts++] = v;
            if (accept(P, TK_RPAREN)) break;
            if ((rc = expect(P, TK_COMMA, NULL))) return rc;
        }
    }
    return expect(P, TK_SEMI, NULL);
}

static int parse_program(parser *P) {
    int rc;
    if ((rc = take_comments(P, peek(P, 0)->pos, &P->p->comments))) return rc;
    if ((rc = expect_word(P, "program")) || (rc = expect(P, TK_LPAREN, NULL))) return rc;
    const token *v = peek(P, 0);
    if (v->kind != TK_INT && v->kind != TK_FLOAT) return perr_expected(P, v, "a version (1.3)");
    token vt = lex_next(&P->lx);
    const char *s = P->lx.src + vt.pos;
    int dots = 0, ok = vt.len < sizeof P->p->version && s[0] >= '0' && s[0] <= '9';
    for (size_t i = 0; ok && i < vt.len; i++) {
        if (s[i] == '.') dots++;
        else if (s[i] < '0' || s[i] > '9') ok = 0;
    }
    if (!ok || dots > 1 || s[vt.len - 1] == '.') return perr_at(P, vt.line, vt.col, "bad program version");
    memcpy(P->p->version, s, vt.len);
    P->p->version[vt.len] = '\0';
    if ((rc = expect(P, TK_RPAREN, NULL))) return rc;
    if (peek(P, 0)->kind == TK_LBRACK) {
        lex_next(&P->lx);
        if (!accept(P, TK_RBRACK)) {
            for (;;) {
                token nt;
                char *name;
                mil_literal *l;
                if ((rc = expect_ident(P, "an attribute name", &nt, &name))) return rc;
                for (int i = 0; i < P->p->nattrs; i++)
                    if (strcmp(P->p->attrs[i].name, name) == 0)
                        return perr_at(P, nt.line, nt.col, "duplicate attribute '%s'", name);
                if ((rc = expect(P, TK_EQ, NULL)) || (rc = parse_literal(P, &l, 0))) return rc;
                if ((rc = mil__prog_push_attr(P->p, name, l, P->e)) < 0) return rc;
                if (accept(P, TK_RBRACK)) break;
                if ((rc = expect(P, TK_COMMA, NULL))) return rc;
            }
        }
    }
    if ((rc = expect(P, TK_LBRACE, NULL))) return rc;
    do {
        if ((rc = parse_function(P))) return rc;
    } while (tok_is(P, peek(P, 0), "func"));
    if ((rc = take_comments(P, peek(P, 0)->pos, &P->p->end_comments))) return rc;
    if ((rc = expect(P, TK_RBRACE, NULL))) return rc;
    const token *end = peek(P, 0);
    if (end->kind != TK_EOF) return perr_expected(P, end, "end of input after the program");
    return take_comments(P, P->lx.len + 1, &P->p->tail_comments);
}

int mil_parse(const char *text, size_t len, const char *source_name, const mil_parse_opts *o,
              mil_program **out, ane_error *e) {
    *out = NULL;
    if (!text) return err_set(e, ERR_INVAL, "mil_parse: no text");
    if (len > MIL_MAX_TEXT) return err_set(e, ERR_INVAL, "MIL text too large (%zu bytes)", len);
    mil_program *p = mil__program_alloc(e);
    if (!p) return ERR_NOMEM;
    char *src = mil_arena_strndup(p->arena, text, len);
    const char *nm = mil_arena_strdup(p->arena, source_name ? source_name : "<string>");
    if (!src || !nm) {
        mil_program_release(p);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    p->source = src;
    p->source_name = nm;
    parser P = {0};
    P.p = p;
    P.e = e;
    P.lenient = o && o->lenient;
    lex_init(&P.lx, src, len, P.lenient);
    int rc = parse_program(&P);
    free(P.scratch);
    lex_free(&P.lx);
    if (rc) {
        if (e && e->code == 0) err_set(e, rc, "parse failed");
        mil_program_release(p);
        return rc;
    }
    *out = p;
    return 0;
}

int mil_parse_file(const char *path, const mil_parse_opts *o, mil_program **out, ane_error *e) {
    *out = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return err_set(e, ERR_IO, "%s: %s", path, strerror(errno));
    char *buf = NULL;
    size_t n = 0, cap = 0;
    for (;;) {
        if (n == cap) {
            if (cap >= MIL_MAX_TEXT) {
                free(buf);
                fclose(fp);
                return err_set(e, ERR_INVAL, "%s: MIL text too large", path);
            }
            size_t nc = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, nc);
            if (!nb) { free(buf); fclose(fp); return err_set(e, ERR_NOMEM, "out of memory"); }
            buf = nb;
            cap = nc;
        }
        size_t got = fread(buf + n, 1, cap - n, fp);
        n += got;
        if (got == 0) break;
    }
    int rd_err = ferror(fp);
    fclose(fp);
    if (rd_err) { free(buf); return err_set(e, ERR_IO, "%s: read error", path); }
    int rc = mil_parse(buf ? buf : "", n, path, o, out, e);
    free(buf);
    return rc;
}
