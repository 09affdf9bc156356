/* build.c - the build API of mil.h: programs made op by op (the Lua builder's C half).
 *
 * Every call validates its arguments completely and types the op with the checker's rule
 * (mil_infer_op) before anything is appended, so a failed call leaves the program as it was
 * (apart from unreachable arena bytes). Built values carry no source position (line 0). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "mil_int.h"

static mil_function *get_func(mil_program *p, int fn, ane_error *e) {
    if (!p) { err_set(e, ERR_INVAL, "no program"); return NULL; }
    if (fn < 0 || fn >= p->nfuncs) {
        err_set(e, ERR_INVAL, "no function with index %d (program has %d)", fn, p->nfuncs);
        return NULL;
    }
    if (p->checked) {
        err_set(e, ERR_STATE, "program is checked and immutable; build a new one");
        return NULL;
    }
    return &p->funcs[fn];
}

static int check_version(const char *v) {
    size_t n = strlen(v);
    if (!n || n >= 16 || v[0] < '0' || v[0] > '9' || v[n - 1] == '.') return 0;
    int dots = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] == '.') { if (++dots > 1) return 0; }
        else if (v[i] < '0' || v[i] > '9') return 0;
    }
    return 1;
}

mil_program *mil_program_new(const char *version, ane_error *e) {
    if (!version) version = "1.3";
    if (!check_version(version)) {
        err_set(e, ERR_INVAL, "bad program version '%s' (expected like 1.3)", version);
        return NULL;
    }
    mil_program *p = mil__program_alloc(e);
    if (!p) return NULL;
    snprintf(p->version, sizeof p->version, "%s", version);
    p->source_name = "<built>";
    return p;
}

int mil_func_new(mil_program *p, const char *name, const char *opset, ane_error *e) {
    if (!p) return err_set(e, ERR_INVAL, "no program");
    if (p->checked) return err_set(e, ERR_STATE, "program is checked and immutable; build a new one");
    if (!mil__is_ident(name)) return err_set(e, ERR_INVAL, "bad function name '%s'", name ? name : "(null)");
    if (!mil__is_ident(opset)) return err_set(e, ERR_INVAL, "bad opset '%s'", opset ? opset : "(null)");
    if (mil_program_func(p, name)) return err_set(e, ERR_INVAL, "duplicate function '%s'", name);
    return mil__prog_push_func(p, name, opset, e);
}

static int check_type(const mil_type *t, int allow_composite, ane_error *e) {
    if (!t) return err_set(e, ERR_INVAL, "no type");
    if (t->kind == MIL_T_TENSOR || t->kind == MIL_T_STATE) {
        if ((unsigned)t->dtype >= MIL_DTYPE_COUNT) return err_set(e, ERR_TYPE, "bad dtype %d", (int)t->dtype);
        if (t->rank < 0 || t->rank > MIL_MAX_RANK)
            return err_set(e, ERR_SHAPE, "rank %d outside 0..%d", t->rank, MIL_MAX_RANK);
        for (int i = 0; i < t->rank; i++)
            if (t->shape[i] < 0) return err_set(e, ERR_SHAPE, "dimension %d is negative", i);
        return 0;
    }
    if (!allow_composite) return err_set(e, ERR_TYPE, "expected a tensor type");
    if (t->nsub < 0 || t->nsub > 64 || (t->nsub && !t->sub)) return err_set(e, ERR_TYPE, "bad composite type");
    for (int i = 0; i < t->nsub; i++) {
        int rc = check_type(&t->sub[i], 1, e);
        if (rc) return rc;
    }
    return 0;
}

static int name_free(const mil_function *f, const char *name, ane_error *e) {
    if (!mil__is_ident(name)) return err_set(e, ERR_INVAL, "bad name '%s'", name ? name : "(null)");
    if (mil_func_value(f, name) >= 0) return err_set(e, ERR_INVAL, "duplicate name '%s'", name);
    return 0;
}

int mil_func_add_param(mil_program *p, int fn, const char *name, const mil_type *t, ane_error *e) {
    mil_function *f = get_func(p, fn, e);
    if (!f) return e ? e->code : ERR_INVAL;
    int rc = name_free(f, name, e);
    if (rc || (rc = check_type(t, 0, e))) return rc;
    mil_value v = {0};
    if (!(v.name = mil_arena_strdup(p->arena, name))) return err_set(e, ERR_NOMEM, "out of memory");
    if ((rc = mil__type_copy(p, &v.type, t, e))) return rc;
    v.def_op = -1;
    v.is_param = 1;
    /* Reserve the params slot first so a failure cannot leave a value without its param. */
    int vi = mil__func_push_value(p, f, &v, e);
    if (vi < 0) return vi;
    if ((rc = mil__func_push_param(p, f, vi, e)) < 0) return rc;
    return vi;
}

static int check_literal(const mil_literal *l, ane_error *e) {
    int rc = check_type(&l->type, l->form == MIL_LIT_DICT, e);
    if (rc) return rc;
    switch (l->form) {
    case MIL_LIT_DATA: {
        int64_t n = mil_shape_numel(l->type.rank, l->type.shape);
        if (n < 0) return err_set(e, ERR_SHAPE, "literal shape overflows");
        if (l->count != n)
            return err_set(e, ERR_SHAPE, "literal has %lld elements, its shape needs %lld",
                           (long long)l->count, (long long)n);
        if (n > 0 && !l->data) return err_set(e, ERR_INVAL, "literal without data");
        if (l->type.dtype == MIL_STRING)
            for (int64_t i = 0; i < n; i++)
                if (!((const char *const *)l->data)[i]) return err_set(e, ERR_INVAL, "NULL string element");
        return 0;
    }
    case MIL_LIT_BLOB: {
        int64_t n = mil_shape_numel(l->type.rank, l->type.shape);
        if (n < 0) return err_set(e, ERR_SHAPE, "literal shape overflows");
        if (!l->blob_path || !*l->blob_path) return err_set(e, ERR_INVAL, "BLOBFILE literal without a path");
        if (l->type.dtype == MIL_STRING || l->type.dtype == MIL_BOOL)
            return err_set(e, ERR_TYPE, "BLOBFILE cannot hold %s data", mil_dtype_name(l->type.dtype));
        if (l->count != n) return err_set(e, ERR_SHAPE, "BLOBFILE literal count does not match its shape");
        return 0;
    }
    case MIL_LIT_DICT:
        if (l->type.kind != MIL_T_DICT || l->type.nsub != 2) return err_set(e, ERR_TYPE, "dict literal needs a dict type");
        if (l->count < 0 || (l->count && (!l->keys || !l->vals))) return err_set(e, ERR_INVAL, "bad dict literal");
        for (int64_t i = 0; i < l->count; i++) {
            if ((rc = check_literal(&l->keys[i], e)) || (rc = check_literal(&l->vals[i], e))) return rc;
            if (l->keys[i].count != 1 || l->vals[i].count != 1)
                return err_set(e, ERR_SHAPE, "dict entries must be scalars");
        }
        return 0;
    }
    return err_set(e, ERR_INVAL, "bad literal form");
}

int mil_func_add_literal(mil_program *p, int fn, const mil_literal *lit, ane_error *e) {
    mil_function *f = get_func(p, fn, e);
    if (!f) return e ? e->code : ERR_INVAL;
    if (!lit) return err_set(e, ERR_INVAL, "no literal");
    int rc = check_literal(lit, e);
    if (rc) return rc;
    mil_literal *l = mil__lit_copy(p, lit, e);
    if (!l) return e ? e->code : ERR_NOMEM;
    if (l->form == MIL_LIT_BLOB && !l->data) {
        rc = mil__lit_load_blob(p, l, e);
        if (rc && rc != ERR_STATE) return rc; /* ERR_STATE: the file comes later (resolve) */
        err_clear(e);
    }
    mil_value v = {0};
    v.type = l->type;
    v.def_op = -1;
    v.lit = l;
    v.is_inline = 1;
    return mil__func_push_value(p, f, &v, e);
}

#define MAX_IN 256 /* inputs + attributes of one built op */

static int check_bindings(const mil_function *f, const mil_binding *in, int nin, ane_error *e) {
    for (int i = 0; i < nin; i++) {
        const mil_binding *b = &in[i];
        if (!mil__is_ident(b->name)) return err_set(e, ERR_INVAL, "bad input name '%s'", b->name ? b->name : "(null)");
        if (b->n < 0 || (b->n == 0 && !b->is_tuple) || (b->n > 1 && !b->is_tuple) || (b->n && !b->values))
            return err_set(e, ERR_INVAL, "input '%s': bad operand list", b->name);
        for (int j = 0; j < b->n; j++)
            if (b->values[j] < 0 || b->values[j] >= f->nvalues)
                return err_set(e, ERR_INVAL, "input '%s': no value with index %d", b->name, b->values[j]);
        for (int j = 0; j < i; j++)
            if (strcmp(in[j].name, b->name) == 0 && in[j].is_attr == b->is_attr)
                return err_set(e, ERR_INVAL, "duplicate input '%s'", b->name);
    }
    return 0;
}

/* Copy bindings into the arena. */
static mil_binding *copy_bindings(mil_program *p, const mil_binding *const *src, int n, ane_error *e) {
    if (n == 0) return NULL;
    mil_binding *d = mil_arena_alloc_array(p->arena, (size_t)n, sizeof *d);
    if (!d) { err_set(e, ERR_NOMEM, "out of memory"); return NULL; }
    for (int i = 0; i < n; i++) {
        d[i] = *src[i];
        d[i].is_attr = 0;
        d[i].name = mil_arena_strdup(p->arena, src[i]->name);
        d[i].values = src[i]->n ? mil_arena_memdup(p->arena, src[i]->values, sizeof(int) * (size_t)src[i]->n) : NULL;
        if (!d[i].name || (src[i]->n && !d[i].values)) { err_set(e, ERR_NOMEM, "out of memory"); return NULL; }
    }
    return d;
}

int mil_func_add_op(mil_program *p, int fn, const char *type, const mil_binding *in, int nin,
                    const char *label, const char *const *result_names, int nres_names,
                    ane_error *e) {
    mil_function *f = get_func(p, fn, e);
    if (!f) return e ? e->code : ERR_INVAL;
    if (!mil__is_ident(type)) return err_set(e, ERR_INVAL, "bad op type '%s'", type ? type : "(null)");
    if (nin < 0 || nin > MAX_IN || (nin && !in)) return err_set(e, ERR_INVAL, "bad input list");
    if (nres_names < 0 || nres_names > MIL_MAX_RESULTS) return err_set(e, ERR_INVAL, "bad result name list");
    int rc = check_bindings(f, in, nin, e);
    if (rc) return rc;
    if (label && !*label) label = NULL;
    mil_opkind kind = mil_op_lookup(type);

    /* Split into inputs and attributes; a const's `val` is always an attribute. */
    const mil_binding *ins[MAX_IN], *attrs[MAX_IN];
    int ni = 0, na = 0;
    for (int i = 0; i < nin; i++) {
        int is_attr = in[i].is_attr || (kind == MIL_OP_const && strcmp(in[i].name, "val") == 0);
        if (strcmp(in[i].name, "name") == 0 && is_attr)
            return err_set(e, ERR_INVAL, "give the op label as the label argument, not as a name attribute");
        if (is_attr) {
            if (in[i].n != 1 || in[i].is_tuple || !f->values[in[i].values[0]].is_inline)
                return err_set(e, ERR_INVAL, "attribute '%s' must be one inline literal", in[i].name);
            attrs[na++] = &in[i];
        } else {
            ins[ni++] = &in[i];
        }
    }
    /* Type the op on a temporary view that borrows the caller's bindings. */
    mil_binding tin[MAX_IN], tattr[MAX_IN];
    for (int i = 0; i < ni; i++) tin[i] = *ins[i];
    for (int i = 0; i < na; i++) tattr[i] = *attrs[i];
    mil_op tmp = {0};
    tmp.type = type;
    tmp.kind = kind;
    tmp.nin = ni;
    tmp.in = tin;
    tmp.nattr = na;
    tmp.attr = tattr;
    tmp.label = label;
    mil_type res[MIL_MAX_RESULTS];
    int nres = 0;
    memset(res, 0, sizeof res);
    if ((rc = mil_infer_op(p, f, &tmp, res, &nres, e))) return rc;
    if (nres < 0 || nres > MIL_MAX_RESULTS) return err_set(e, ERR_INVAL, "%s: bad result count", type);
    /* one name for several results is their base: name_0, name_1, ... */
    const char *name_base = nres_names == 1 && nres > 1 ? result_names[0] : NULL;
    if (name_base) nres_names = 0;
    if (nres_names && nres_names != nres)
        return err_set(e, ERR_INVAL, "%s: produces %d result%s, %d name%s given", type, nres,
                       nres == 1 ? "" : "s", nres_names, nres_names == 1 ? "" : "s");

    /* Result names: given, or derived from the label / op type, made unique. */
    const char *names[MIL_MAX_RESULTS];
    char gen[MIL_MAX_NAME + 16];
    for (int r = 0; r < nres; r++) {
        const char *given = r < nres_names ? result_names[r] : NULL;
        if (given) {
            if ((rc = name_free(f, given, e))) return rc;
            for (int q = 0; q < r; q++)
                if (strcmp(names[q], given) == 0) return err_set(e, ERR_INVAL, "duplicate name '%s'", given);
            names[r] = given;
            continue;
        }
        if (name_base) {
            snprintf(gen, sizeof gen, "%s_%d", name_base, r);
            if ((rc = name_free(f, gen, e))) return rc;
            if (!(names[r] = mil_arena_strdup(p->arena, gen))) return err_set(e, ERR_NOMEM, "out of memory");
            continue;
        }
        const char *base = label && mil__is_ident(label) ? label : type;
        for (int k = 0;; k++) {
            if (k == 0 && nres == 1) snprintf(gen, sizeof gen, "%s", base);
            else snprintf(gen, sizeof gen, "%s_%d", base, k);
            int clash = mil_func_value(f, gen) >= 0;
            for (int q = 0; q < r && !clash; q++) clash = strcmp(names[q], gen) == 0;
            if (!clash) break;
        }
        if (!(names[r] = mil_arena_strdup(p->arena, gen))) return err_set(e, ERR_NOMEM, "out of memory");
    }

    /* Commit: label literal, result values, the op. */
    const char *lab = label ? label : (nres ? names[0] : type);
    mil_literal ll = {0};
    ll.type.kind = MIL_T_TENSOR;
    ll.type.dtype = MIL_STRING;
    ll.count = 1;
    ll.data = &lab;
    mil_literal *lcopy = mil__lit_copy(p, &ll, e);
    if (!lcopy) return e ? e->code : ERR_NOMEM;
    mil_op op = {0};
    op.type = mil_arena_strdup(p->arena, type);
    op.kind = kind;
    op.label = ((const char *const *)lcopy->data)[0];
    op.nin = ni;
    op.in = copy_bindings(p, ins, ni, e);
    op.nattr = na + 1;
    const mil_binding *allattr[MAX_IN + 1];
    for (int i = 0; i < na; i++) allattr[i] = attrs[i];
    mil_binding nameb = {0};
    allattr[na] = &nameb;
    nameb.name = "name";
    nameb.n = 1;
    int lab_value_placeholder = 0;
    nameb.values = &lab_value_placeholder;
    op.attr = copy_bindings(p, allattr, na + 1, e);
    op.res = mil_arena_alloc_array(p->arena, (size_t)(nres ? nres : 1), sizeof(int));
    if (!op.type || (ni && !op.in) || !op.attr || !op.res) return e && e->code ? e->code : err_set(e, ERR_NOMEM, "out of memory");
    mil_type rt[MIL_MAX_RESULTS];
    for (int r = 0; r < nres; r++)
        if ((rc = mil__type_copy(p, &rt[r], &res[r], e))) return rc;
    char *rn[MIL_MAX_RESULTS];
    for (int r = 0; r < nres; r++)
        if (!(rn[r] = mil_arena_strdup(p->arena, names[r]))) return err_set(e, ERR_NOMEM, "out of memory");

    /* From here on only appends; capacity failures are reported but cannot half-apply an op
     * in a way later calls would see: values without an op are unreachable by name only if
     * we roll back, so roll back on failure. */
    int nv0 = f->nvalues;
    mil_value lv = {0};
    lv.type = lcopy->type;
    lv.def_op = -1;
    lv.lit = lcopy;
    lv.is_inline = 1;
    int lvi = mil__func_push_value(p, f, &lv, e);
    if (lvi < 0) return lvi;
    op.attr[na].values[0] = lvi;
    int first = -1;
    for (int r = 0; r < nres; r++) {
        mil_value v = {0};
        v.name = rn[r];
        v.type = rt[r];
        v.def_op = f->nops;
        v.def_result = r;
        int vi = mil__func_push_value(p, f, &v, e);
        if (vi < 0) goto rollback;
        op.res[r] = vi;
        if (r == 0) first = vi;
    }
    op.nres = nres;
    if (kind == MIL_OP_const && nres == 1)
        for (int i = 0; i < na; i++)
            if (strcmp(op.attr[i].name, "val") == 0) f->values[first].lit = f->values[op.attr[i].values[0]].lit;
    if (mil__func_push_op(p, f, &op, e) < 0) goto rollback;
    return first >= 0 ? first : lvi;
rollback:
    /* Drop the appended values and their names (rebuild the table without them). */
    f->nvalues = nv0;
    f->names = NULL;
    for (int i = 0; i < f->nvalues; i++)
        if (f->values[i].name && mil__names_add(p, f, f->values[i].name, i, NULL)) break;
    return e && e->code ? e->code : ERR_NOMEM;
}

int mil_func_set_outputs(mil_program *p, int fn, const int *values, int n, ane_error *e) {
    mil_function *f = get_func(p, fn, e);
    if (!f) return e ? e->code : ERR_INVAL;
    if (n < 0 || (n && !values)) return err_set(e, ERR_INVAL, "bad output list");
    for (int i = 0; i < n; i++) {
        if (values[i] < 0 || values[i] >= f->nvalues)
            return err_set(e, ERR_INVAL, "output %d: no value with index %d", i + 1, values[i]);
        if (!f->values[values[i]].name)
            return err_set(e, ERR_INVAL, "output %d: an inline literal cannot be an output", i + 1);
    }
    int *outs = n ? mil_arena_memdup(p->arena, values, sizeof(int) * (size_t)n) : NULL;
    if (n && !outs) return err_set(e, ERR_NOMEM, "out of memory");
    f->outs = outs;
    f->nouts = n;
    return 0;
}

int mil_program_add_blob(mil_program *p, const char *path, const uint8_t *data, size_t size,
                         ane_error *e) {
    if (!p) return err_set(e, ERR_INVAL, "no program");
    if (!path || !*path) return err_set(e, ERR_INVAL, "weight file needs a path");
    if (size && !data) return err_set(e, ERR_INVAL, "weight file without data");
    for (int i = 0; i < p->nblobs; i++)
        if (strcmp(p->blobs[i].path, path) == 0)
            return err_set(e, ERR_INVAL, "weight file '%s' is already registered", path);
    if (p->nblobs >= 65536) return err_set(e, ERR_INVAL, "too many weight files");
    if (mil_arena_grow(p->arena, (void **)&p->blobs, &p->cap_blobs, p->nblobs, 4, INT_MAX,
                       sizeof *p->blobs))
        return err_set(e, ERR_NOMEM, "out of memory");
    mil_blob b;
    b.path = mil_arena_strdup(p->arena, path);
    b.data = mil_arena_memdup(p->arena, data, size ? size : 1);
    b.size = size;
    if (!b.path || !b.data) return err_set(e, ERR_NOMEM, "out of memory");
    p->blobs[p->nblobs++] = b;
    return 0;
}

int mil_program_add_attr(mil_program *p, const char *name, const mil_literal *lit, ane_error *e) {
    if (!p) return err_set(e, ERR_INVAL, "no program");
    if (p->checked) return err_set(e, ERR_STATE, "program is checked and immutable; build a new one");
    if (!mil__is_ident(name)) return err_set(e, ERR_INVAL, "bad attribute name '%s'", name ? name : "(null)");
    if (!lit) return err_set(e, ERR_INVAL, "no literal");
    for (int i = 0; i < p->nattrs; i++)
        if (strcmp(p->attrs[i].name, name) == 0) return err_set(e, ERR_INVAL, "duplicate attribute '%s'", name);
    int rc = check_literal(lit, e);
    if (rc) return rc;
    mil_literal *l = mil__lit_copy(p, lit, e);
    if (!l) return e && e->code ? e->code : ERR_NOMEM;
    rc = mil__prog_push_attr(p, name, l, e);
    return rc < 0 ? rc : 0;
}
