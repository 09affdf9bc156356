/* printer.c - canonical MIL text (mil-reference.md 4.3).
 *
 * V1: program(1.3) (or the program's own version unless that is 1.0), bare scalar types and
 * constructors. V2: program(1.0) and every scalar spelled tensor<T, []>. By default a program
 * prints in its own dialect (a parsed program(1.0) stays 1.0); mil_print_opts can force either.
 * Functions at 4 spaces, statements at 8, inputs and attributes sorted by name (byte order),
 * every op carries a name attribute (its label, else its first result's name), floats as C99 hex
 * (`%a`: lowercase, minimal digits, signed exponent), lists nested to the shape for rank >= 2.
 * Whole-line comments come back where they stood (before the statement, function or program
 * they preceded), at that construct's indent. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mil_int.h"

/* ======================= buffer ======================= */

void mil__buf_put(mil_buf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (n + 1 > b->cap - b->n || !b->s) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->n < n + 1) {
            if (cap > SIZE_MAX / 2) { b->oom = 1; return; }
            cap *= 2;
        }
        char *ns = realloc(b->s, cap);
        if (!ns) { b->oom = 1; return; }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

void mil__buf_puts(mil_buf *b, const char *s) { mil__buf_put(b, s, strlen(s)); }

void mil__buf_printf(mil_buf *b, const char *fmt, ...) {
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) { b->oom = 1; return; }
    if ((size_t)n < sizeof tmp) { mil__buf_put(b, tmp, (size_t)n); return; }
    char *big = malloc((size_t)n + 1);
    if (!big) { b->oom = 1; return; }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    mil__buf_put(b, big, (size_t)n);
    free(big);
}

/* ======================= types ======================= */

static void print_shape(mil_buf *b, int rank, const int64_t *shape) {
    mil__buf_puts(b, "[");
    for (int i = 0; i < rank; i++) {
        if (i) mil__buf_puts(b, ", ");
        if (shape[i] < 0) mil__buf_puts(b, "?");
        else mil__buf_printf(b, "%lld", (long long)shape[i]);
    }
    mil__buf_puts(b, "]");
}

void mil__print_type(mil_buf *b, const mil_type *t, int v2) {
    switch (t->kind) {
    case MIL_T_TENSOR:
        if (t->rank == 0 && !v2) { mil__buf_puts(b, mil_dtype_name(t->dtype)); return; }
        mil__buf_printf(b, "tensor<%s, ", mil_dtype_name(t->dtype));
        print_shape(b, t->rank, t->shape);
        mil__buf_puts(b, ">");
        return;
    case MIL_T_STATE:
        mil__buf_printf(b, "state<tensor<%s, ", mil_dtype_name(t->dtype));
        print_shape(b, t->rank, t->shape);
        mil__buf_puts(b, ">>");
        return;
    case MIL_T_DICT: mil__buf_puts(b, "dict<"); break;
    case MIL_T_LIST: mil__buf_puts(b, "list<"); break;
    case MIL_T_TUPLE: mil__buf_puts(b, "tuple<"); break;
    }
    for (int i = 0; i < t->nsub; i++) {
        if (i) mil__buf_puts(b, ", ");
        mil__print_type(b, &t->sub[i], v2);
    }
    if (t->kind == MIL_T_LIST) {
        if (t->list_len < 0) mil__buf_puts(b, ", ?");
        else mil__buf_printf(b, ", %lld", (long long)t->list_len);
    }
    mil__buf_puts(b, ">");
}

/* ======================= scalars ======================= */

static void print_float(mil_buf *b, double v) {
    if (isnan(v)) { mil__buf_puts(b, "nan"); return; }
    if (isinf(v)) { mil__buf_puts(b, v < 0 ? "-inf" : "inf"); return; }
    mil__buf_printf(b, "%a", v);
}

static void print_string(mil_buf *b, const char *s) {
    mil__buf_puts(b, "\"");
    for (const char *p = s;; ) {
        size_t run = strcspn(p, "\"\\");
        mil__buf_put(b, p, run);
        p += run;
        if (!*p) break;
        char esc[2] = {'\\', *p};
        mil__buf_put(b, esc, 2);
        p++;
    }
    mil__buf_puts(b, "\"");
}

static void print_elem(mil_buf *b, mil_dtype dt, const void *data, int64_t i) {
    const uint8_t *d = data;
    switch (dt) {
    case MIL_FP16: { uint16_t h; memcpy(&h, d + i * 2, 2); print_float(b, mil_f16_to_double(h)); return; }
    case MIL_BF16: { uint16_t h; memcpy(&h, d + i * 2, 2); print_float(b, mil_bf16_to_double(h)); return; }
    case MIL_FP32: { float f; memcpy(&f, d + i * 4, 4); print_float(b, (double)f); return; }
    case MIL_FP64: { double f; memcpy(&f, d + i * 8, 8); print_float(b, f); return; }
    case MIL_INT4: case MIL_INT8: mil__buf_printf(b, "%d", (int)(int8_t)d[i]); return;
    case MIL_INT16: { int16_t v; memcpy(&v, d + i * 2, 2); mil__buf_printf(b, "%d", (int)v); return; }
    case MIL_INT32: { int32_t v; memcpy(&v, d + i * 4, 4); mil__buf_printf(b, "%ld", (long)v); return; }
    case MIL_INT64: { int64_t v; memcpy(&v, d + i * 8, 8); mil__buf_printf(b, "%lld", (long long)v); return; }
    case MIL_UINT16: { uint16_t v; memcpy(&v, d + i * 2, 2); mil__buf_printf(b, "%u", (unsigned)v); return; }
    case MIL_UINT32: { uint32_t v; memcpy(&v, d + i * 4, 4); mil__buf_printf(b, "%lu", (unsigned long)v); return; }
    case MIL_UINT64: { uint64_t v; memcpy(&v, d + i * 8, 8); mil__buf_printf(b, "%llu", (unsigned long long)v); return; }
    case MIL_BOOL: mil__buf_puts(b, d[i] ? "true" : "false"); return;
    case MIL_STRING: { const char *s; memcpy(&s, d + i * (int64_t)sizeof s, sizeof s); print_string(b, s ? s : ""); return; }
    default: mil__buf_printf(b, "%u", (unsigned)d[i]); return; /* uint1..uint8 */
    }
}

/* ======================= literals ======================= */

static void print_nested(mil_buf *b, const mil_literal *l, int d, int64_t *next) {
    const mil_type *t = &l->type;
    mil__buf_puts(b, "[");
    for (int64_t i = 0; i < t->shape[d]; i++) {
        if (i) mil__buf_puts(b, ", ");
        if (d == t->rank - 1) print_elem(b, t->dtype, l->data, (*next)++);
        else print_nested(b, l, d + 1, next);
    }
    mil__buf_puts(b, "]");
}

static void print_scalar_lit(mil_buf *b, mil_dtype dt, const void *data, int v2) {
    if (v2) mil__buf_printf(b, "tensor<%s, []>(", mil_dtype_name(dt));
    else mil__buf_printf(b, "%s(", mil_dtype_name(dt));
    print_elem(b, dt, data, 0);
    mil__buf_puts(b, ")");
}

void mil__print_literal(mil_buf *b, const mil_literal *l, int v2) {
    const mil_type *t = &l->type;
    if (l->form == MIL_LIT_DICT) {
        mil__print_type(b, t, v2);
        mil__buf_puts(b, "({");
        for (int64_t i = 0; i < l->count; i++) {
            if (i) mil__buf_puts(b, ", ");
            mil__buf_puts(b, "{");
            print_elem(b, l->keys[i].type.dtype, l->keys[i].data, 0);
            mil__buf_puts(b, ", ");
            print_elem(b, l->vals[i].type.dtype, l->vals[i].data, 0);
            mil__buf_puts(b, "}");
        }
        mil__buf_puts(b, "})");
        return;
    }
    if (l->form == MIL_LIT_BLOB) {
        mil__buf_printf(b, "tensor<%s, ", mil_dtype_name(t->dtype));
        print_shape(b, t->rank, t->shape);
        mil__buf_puts(b, ">(BLOBFILE(path = ");
        const char *path = l->blob_path;
        print_scalar_lit(b, MIL_STRING, &path, v2);
        mil__buf_puts(b, ", offset = ");
        print_scalar_lit(b, MIL_UINT64, &l->blob_offset, v2);
        mil__buf_puts(b, "))");
        return;
    }
    if (t->rank == 0) {
        print_scalar_lit(b, t->dtype, l->data, v2);
        return;
    }
    mil__buf_printf(b, "tensor<%s, ", mil_dtype_name(t->dtype));
    print_shape(b, t->rank, t->shape);
    mil__buf_puts(b, ">(");
    if (t->rank == 1) {
        mil__buf_puts(b, "[");
        for (int64_t i = 0; i < l->count; i++) {
            if (i) mil__buf_puts(b, ", ");
            print_elem(b, t->dtype, l->data, i);
        }
        mil__buf_puts(b, "]");
    } else {
        int64_t next = 0;
        print_nested(b, l, 0, &next);
    }
    mil__buf_puts(b, ")");
}

/* ======================= program ======================= */

static void print_operand(mil_buf *b, const mil_function *f, int v, int v2) {
    const mil_value *val = &f->values[v];
    if (val->name && !val->is_inline) mil__buf_puts(b, val->name);
    else if (val->lit) mil__print_literal(b, val->lit, v2);
    else mil__buf_puts(b, "?");
}

static void print_binding(mil_buf *b, const mil_function *f, const mil_binding *x, int v2) {
    mil__buf_printf(b, "%s = ", x->name);
    if (!x->is_tuple && x->n == 1) { print_operand(b, f, x->values[0], v2); return; }
    mil__buf_puts(b, "(");
    for (int i = 0; i < x->n; i++) {
        if (i) mil__buf_puts(b, ", ");
        print_operand(b, f, x->values[i], v2);
    }
    mil__buf_puts(b, ")");
}

static int cmp_bind(const void *a, const void *b) {
    return strcmp((*(const mil_binding *const *)a)->name, (*(const mil_binding *const *)b)->name);
}

/* Whole-line comments, one per line at the given indent. */
static void print_comments(mil_buf *b, const mil_comments *c, const char *indent) {
    for (int i = 0; i < c->n; i++) mil__buf_printf(b, "%s%s\n", indent, c->text[i]);
}

static int print_op(mil_buf *b, const mil_function *f, const mil_op *op, int v2) {
    print_comments(b, &op->comments, "        ");
    mil__buf_puts(b, "        ");
    for (int r = 0; r < op->nres; r++) {
        const mil_value *v = &f->values[op->res[r]];
        if (r) mil__buf_puts(b, ", ");
        mil__print_type(b, &v->type, v2);
        mil__buf_printf(b, " %s", v->name);
    }
    mil__buf_printf(b, " = %s(", op->type);
    int n = op->nin > op->nattr ? op->nin : op->nattr;
    const mil_binding **s = malloc(sizeof *s * (size_t)(n + 1));
    if (!s) return ERR_NOMEM;
    for (int i = 0; i < op->nin; i++) s[i] = &op->in[i];
    qsort(s, (size_t)op->nin, sizeof *s, cmp_bind);
    for (int i = 0; i < op->nin; i++) {
        if (i) mil__buf_puts(b, ", ");
        print_binding(b, f, s[i], v2);
    }
    mil__buf_puts(b, ")[");
    /* attributes, with a synthetic name attribute when the op has none */
    int na = 0, has_name = 0;
    for (int i = 0; i < op->nattr; i++) {
        s[na++] = &op->attr[i];
        if (strcmp(op->attr[i].name, "name") == 0) has_name = 1;
    }
    qsort(s, (size_t)na, sizeof *s, cmp_bind);
    const char *label = op->label ? op->label : op->nres ? f->values[op->res[0]].name : op->type;
    int first = 1, named = has_name;
    for (int i = 0; i <= na; i++) {
        if (!named && (i == na || strcmp(s[i]->name, "name") > 0)) {
            if (!first) mil__buf_puts(b, ", ");
            mil__buf_puts(b, "name = ");
            print_scalar_lit(b, MIL_STRING, &label, v2);
            first = 0;
            named = 1;
        }
        if (i == na) break;
        if (!first) mil__buf_puts(b, ", ");
        print_binding(b, f, s[i], v2);
        first = 0;
    }
    mil__buf_puts(b, "];\n");
    free(s);
    return 0;
}

int mil_print(const mil_program *p, const mil_print_opts *o, char **out, size_t *len, ane_error *e) {
    *out = NULL;
    if (len) *len = 0;
    if (!p) return err_set(e, ERR_INVAL, "no program");
    mil_dialect d = o ? o->dialect : MIL_DIALECT_SOURCE;
    int v2 = d == MIL_DIALECT_1_0 || (d == MIL_DIALECT_SOURCE && strcmp(p->version, "1.0") == 0);
    mil_buf b = {0};
    const char *version = v2 ? "1.0" : strcmp(p->version, "1.0") == 0 ? "1.3" : p->version;
    print_comments(&b, &p->comments, "");
    mil__buf_printf(&b, "program(%s)\n", version);
    int has_build_info = 0;
    for (int i = 0; i < p->nattrs; i++) has_build_info |= strcmp(p->attrs[i].name, "buildInfo") == 0;
    int add_build_info = o && o->build_info && !has_build_info;
    if (p->nattrs || add_build_info) {
        mil__buf_puts(&b, "[");
        for (int i = 0; i < p->nattrs; i++) {
            if (i) mil__buf_puts(&b, ", ");
            mil__buf_printf(&b, "%s = ", p->attrs[i].name);
            mil__print_literal(&b, p->attrs[i].lit, v2);
        }
        /* what coremlc writes (the same pairs as the Lua builder's default): the 1.0 dialect's
         * programs carry only the compiler version */
        if (add_build_info)
            mil__buf_printf(&b, "%sbuildInfo = %s", p->nattrs ? ", " : "",
                            v2 ? "dict<tensor<string, []>, tensor<string, []>>({{\"coremlc-version\", \"3505.4.1\"}})"
                               : "dict<string, string>({{\"coremlc-component-MIL\", \"3510.2.1\"}, "
                                 "{\"coremlc-version\", \"3505.4.1\"}})");
        mil__buf_puts(&b, "]\n");
    }
    mil__buf_puts(&b, "{\n");
    for (int fi = 0; fi < p->nfuncs; fi++) {
        const mil_function *f = &p->funcs[fi];
        print_comments(&b, &f->comments, "    ");
        mil__buf_printf(&b, "    func %s<%s>(", f->name, f->opset);
        for (int i = 0; i < f->nparams; i++) {
            const mil_value *v = &f->values[f->params[i]];
            if (i) mil__buf_puts(&b, ", ");
            mil__print_type(&b, &v->type, v2);
            mil__buf_printf(&b, " %s", v->name);
        }
        mil__buf_puts(&b, ") {\n");
        for (int i = 0; i < f->nops; i++)
            if (print_op(&b, f, &f->ops[i], v2)) { free(b.s); return err_set(e, ERR_NOMEM, "out of memory"); }
        print_comments(&b, &f->end_comments, "        ");
        mil__buf_puts(&b, "    } -> (");
        for (int i = 0; i < f->nouts; i++) {
            if (i) mil__buf_puts(&b, ", ");
            mil__buf_puts(&b, f->values[f->outs[i]].name);
        }
        mil__buf_puts(&b, ");\n");
    }
    print_comments(&b, &p->end_comments, "    ");
    mil__buf_puts(&b, "}\n");
    print_comments(&b, &p->tail_comments, "");
    if (b.oom) {
        free(b.s);
        return err_set(e, ERR_NOMEM, "out of memory printing the program");
    }
    *out = b.s;
    if (len) *len = b.n;
    return 0;
}

int mil_print_literal(const mil_literal *l, int dialect_1_0, char **out, size_t *len, ane_error *e) {
    *out = NULL;
    if (!l) return err_set(e, ERR_INVAL, "no literal");
    mil_buf b = {0};
    mil__print_literal(&b, l, dialect_1_0);
    if (b.oom || !b.s) {
        free(b.s);
        return err_set(e, ERR_NOMEM, "out of memory");
    }
    *out = b.s;
    if (len) *len = b.n;
    return 0;
}
