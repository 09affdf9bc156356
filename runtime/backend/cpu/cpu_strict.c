/* cpu_strict.c - strict mode: refuse or flag what the ANE refuses or mis-executes.
 *
 * Each rule cites its source in shared/docs (ane-private-api.md = API, ane-field-notes.md = FN,
 * mil-reference.md = REF). Rules marked disputed in the sources (multi-input 0x1d, the 49152-byte
 * surface floor, reduce_mean/rsqrt availability) are not enforced. Chip families follow FN 2.1:
 * m1 = A14, m2/m3 = A15 era limits, m4/m5 = A16. docs/strict-mode.md lists every rule. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cpu.h"

static int chip_of(const char *s) {
    if (!s || !*s) return 5;
    if ((s[0] == 'm' || s[0] == 'M') && s[1] >= '1' && s[1] <= '5' && s[2] == 0) return s[1] - '0';
    return -1;
}

static int refuse(cpu_planner *P, const mil_op *op, const char *src, const char *fmt, const char *what) {
    char msg[512];
    snprintf(msg, sizeof msg, fmt, what);
    if (op) return cpu_op_error(P, op, ERR_UNSUPPORTED, "strict: %s (%s)", msg, src);
    return err_set(P->e, ERR_UNSUPPORTED, "compile: strict: %s (%s)", msg, src);
}

static int check_value_shape(cpu_planner *P, const mil_op *op, int v) {
    const cpu_val *cv = &P->pl->vals[v];
    const char *nm = cv->name ? cv->name : "value";
    if (cv->rank > 5) return refuse(P, op, "ane-field-notes.md 1.15", "'%s' has rank > 5; the ANE handles rank <= 5", nm);
    for (int i = 0; i < cv->rank; i++)
        if (cv->shape[i] > 65536)
            return refuse(P, op, "ane-field-notes.md 2.1", "'%s' has an axis longer than 65536", nm);
    return 0;
}

int cpu_strict_check_function(cpu_planner *P) {
    cpu_plan *pl = P->pl;
    const mil_function *f = P->f;
    pl->chip = chip_of(pl->opts.chip);
    if (pl->chip < 0)
        return err_set(P->e, ERR_INVAL, "compile: unknown chip '%s' (expected m1..m5)", pl->opts.chip);
    int spatial_cap = pl->chip <= 3 ? 16384 : 65536;
    for (int side = 0; side < 2; side++) {
        int n = side ? f->nouts : f->nparams;
        for (int i = 0; i < n; i++) {
            int v = side ? f->outs[i] : f->params[i];
            const cpu_val *cv = &pl->vals[v];
            const char *nm = cv->name ? cv->name : "?";
            int rc = check_value_shape(P, NULL, v);
            if (rc) return rc;
            if (cv->dt == MIL_FP32 && pl->chip <= 2)
                return refuse(P, NULL, "ane-private-api.md 4.4, 6.9",
                              "fp32 I/O '%s' with casts fails to compile on M1/M2; use fp16 I/O", nm);
            if (cv->dt != MIL_FP16 && cv->dt != MIL_FP32 && cv->dt != MIL_INT8 && cv->dt != MIL_UINT8)
                return refuse(P, NULL, "ane-field-notes.md 1.15, 4.1",
                              "I/O '%s' must be fp16 (or fp32 cast at the boundary, int8/uint8)", nm);
            if (cv->rank > 0 && cv->shape[cv->rank - 1] > spatial_cap)
                return refuse(P, NULL, "ane-field-notes.md 2.1",
                              "I/O '%s' has a last (spatial) axis over this chip's cap (16384 before M4)", nm);
        }
    }
    for (int i = 0; i < f->nouts; i++)
        if (f->values[f->outs[i]].is_param)
            return refuse(P, NULL, "ane-field-notes.md 1.12",
                          "output '%s' is an input: a program with an empty body crashes the ANE compiler",
                          f->values[f->outs[i]].name ? f->values[f->outs[i]].name : "?");
    double wbytes = 0;
    for (int v = 0; v < f->nvalues; v++)
        if (f->values[v].lit && f->values[v].lit->form == MIL_LIT_BLOB)
            wbytes += (double)f->values[v].lit->count * mil_dtype_bits(f->values[v].type.dtype) / 8.0;
    if (wbytes > 2.0e9)
        return refuse(P, NULL, "ane-field-notes.md 2.3", "%s holds more than ~2 GB of weights; split it",
                      "the program");
    return 0;
}

static int is_pow2(int64_t n) { return n > 0 && (n & (n - 1)) == 0; }

int cpu_strict_check_op(cpu_planner *P, const mil_op *op) {
    cpu_plan *pl = P->pl;
    cpu_val *V = pl->vals;
    int chip = pl->chip;
    switch (op->kind) {
    case MIL_OP_asin: case MIL_OP_acos:
        return refuse(P, op, "ane-field-notes.md 1.15; ironmill docs/design/ane-op-support-matrix.md",
                      "%s: the ANE has no inverse-trig path", op->type);
    case MIL_OP_atan: case MIL_OP_atanh:
        return refuse(P, op, "ane-field-notes.md 1.15", "%s: the ANE has no inverse-trig path", op->type);
    case MIL_OP_mod:
        return refuse(P, op, "ironmill docs/design/ane-op-support-matrix.md; ANEForge op sweep",
                      "%s is refused by the ANE compiler; write sub(x, mul(floor_div(x, y), y))", op->type);
    case MIL_OP_sin: case MIL_OP_tan:
        return refuse(P, op, "ironmill docs/design/ane-op-support-matrix.md",
                      "%s is refused by the ANE compiler", op->type);
    case MIL_OP_sinh: case MIL_OP_cosh:
        return refuse(P, op, "ironmill docs/design/ane-op-support-matrix.md",
                      "%s is refused by the ANE compiler; write it with exp", op->type);
    case MIL_OP_logical_and: case MIL_OP_logical_or: case MIL_OP_logical_xor:
        return refuse(P, op, "ane-field-notes.md 1.15; ironmill docs/design/ane-op-support-matrix.md",
                      "%s has no hardware path on the ANE; cast to fp16 and use mul/maximum/not_equal", op->type);
    case MIL_OP_reduce_prod: case MIL_OP_logical_not:
        return refuse(P, op, "ane-field-notes.md 1.15", "%s has no hardware path on the ANE", op->type);
    case MIL_OP_rsqrt: case MIL_OP_log: case MIL_OP_inverse:
        if (cpu_arg(P, op, "epsilon") < 0)
            return refuse(P, op, "ironmill docs/design/ane-op-support-matrix.md",
                          "%s without an explicit epsilon is rejected by the ANE compiler; give epsilon", op->type);
        break;
    case MIL_OP_cos:
        if (chip <= 1)
            return refuse(P, op, "ane-field-notes.md 1.14", "%s needs A15 or newer (not M1)", op->type);
        break;
    case MIL_OP_scaled_dot_product_attention:
        if (cpu_arg(P, op, "attn_mask") >= 0)
            return refuse(P, op, "ane-private-api.md 6.4, ane-field-notes.md 1.5",
                          "%s ignores attn_mask on the ANE; write matmul, add the mask, softmax, matmul",
                          op->type);
        break;
    case MIL_OP_softmax: {
        int x = cpu_arg(P, op, "x");
        int64_t ax = -1;
        if (x >= 0 && !cpu_arg_int(P, op, "axis", &ax) && V[x].rank >= 2 && cpu_axis(ax, V[x].rank) == 1 &&
            !is_pow2(V[x].shape[1]))
            return refuse(P, op, "ane-field-notes.md 1.1",
                          "%s over a channel axis whose size is not a power of two fails on the ANE", op->type);
        break;
    }
    case MIL_OP_conv: {
        int x = cpu_arg(P, op, "x"), w = cpu_arg(P, op, "weight");
        if (x < 0 || w < 0) break;
        int kw = (int)V[w].shape[V[w].rank - 1];
        if (kw > (chip <= 1 ? 13 : 15))
            return refuse(P, op, "ane-field-notes.md 1.13", "%s kernel width over the ANE limit (13 on M1, 15 on M5)", op->type);
        if (!cpu_is_const(P, w)) {
            int64_t g = 1, dl[3] = {1, 1, 1};
            int n;
            if (cpu_arg_int(P, op, "groups", &g)) g = 1;
            if (cpu_arg_ints(P, op, "dilations", dl, 3, &n)) n = 0;
            if (g > 1 || V[x].shape[0] > 1)
                return refuse(P, op, "ane-field-notes.md 1.13",
                              "%s with runtime weights works only at batch 1 without groups", op->type);
            for (int i = 0; i < n; i++)
                if (dl[i] > 1)
                    return refuse(P, op, "mil-reference.md 7.4 #7", "%s with runtime weights cannot dilate", op->type);
        }
        break;
    }
    case MIL_OP_matmul: {
        int x = cpu_arg(P, op, "x"), y = cpu_arg(P, op, "y");
        int tx = 0;
        if (x < 0 || y < 0) break;
        if (cpu_arg_bool(P, op, "transpose_x", &tx)) tx = 0;
        int64_t K = tx ? V[x].shape[V[x].rank >= 2 ? V[x].rank - 2 : 0] : V[x].shape[V[x].rank - 1];
        if (!cpu_is_const(P, x) && !cpu_is_const(P, y) && K % 32 != 0)
            return refuse(P, op, "ane-field-notes.md 2.9",
                          "%s with a runtime inner dimension that is not a multiple of 32 returns zeros", op->type);
        if (K > (chip <= 3 ? 16384 : 65536))
            return refuse(P, op, "ane-field-notes.md 2.1", "%s contraction over the chip's cap", op->type);
        break;
    }
    default: break;
    }
    /* fp16 compute only: no fp32 operand or result except around cast (REF 7.3, API 4.4) */
    if (op->kind != MIL_OP_cast && op->kind != MIL_OP_const && op->kind != MIL_OP_constexpr_cast) {
        for (int b = 0; b < op->nin; b++)
            for (int k = 0; k < op->in[b].n; k++) {
                int v = op->in[b].values[k];
                if (v >= 0 && V[v].dt == MIL_FP32 && V[v].kind != CV_NONE && V[v].kind != CV_CONST)
                    return refuse(P, op, "mil-reference.md 7.3, ane-private-api.md 4.4",
                                  "%s computes in fp32; the ANE computes in fp16 (cast at the boundary only)",
                                  op->type);
            }
        for (int k = 0; k < op->nres; k++) {
            int v = op->res[k];
            if (V[v].dt == MIL_FP32)
                return refuse(P, op, "mil-reference.md 7.3", "%s produces fp32 inside the program", op->type);
        }
    }
    /* int32 data tensors are rejected (FN 1.15): an int32 result computed from runtime data */
    for (int k = 0; k < op->nres && op->kind != MIL_OP_const; k++) {
        if (V[op->res[k]].dt != MIL_INT32) continue;
        for (int b = 0; b < op->nin; b++)
            for (int j = 0; j < op->in[b].n; j++) {
                int u = op->in[b].values[j];
                if (u >= 0 && V[u].kind != CV_CONST && V[u].kind != CV_NONE)
                    return refuse(P, op, "ane-field-notes.md 1.15", "%s makes an int32 tensor at run time", op->type);
            }
    }
    for (int k = 0; k < op->nres; k++) {
        int rc = check_value_shape(P, op, op->res[k]);
        if (rc) return rc;
    }
    return 0;
}

static int has_nonfinite(const float *x, int64_t n, int nan_only) {
    for (int64_t i = 0; i < n; i++)
        if (nan_only ? x[i] != x[i] : !isfinite(x[i])) return 1;
    return 0;
}

static int eval_error(const cpu_plan *pl, const cpu_node *nd, ane_error *e, const char *what,
                      const char *src) {
    const mil_op *op = nd->op;
    char where[300] = "";
    if (op->line > 0) /* built programs (no text) have no position: the op's label names it */
        snprintf(where, sizeof where, "%s:%d:%d: ", pl->prog->source_name ? pl->prog->source_name : "<string>",
                 op->line, op->col);
    return err_set(e, ERR_BACKEND, "eval: strict: %s%s%s%s%s %s (%s)", where, op->type,
                   op->label ? " '" : "", op->label ? op->label : "", op->label ? "'" : "", what, src);
}

int cpu_strict_check_node(const cpu_plan *pl, const cpu_node *nd, float *const *ptr, ane_error *e) {
    if (nd->kind == MIL_OP_round && nd->nin > 0 && nd->in[0] >= 0) {
        /* the ANE rounds ties away from zero and mis-rounds |x| >= 1024 (FN 1.12): results that
         * differ from ties-to-even are flagged rather than silently differing from a Mac */
        const float *x = ptr[nd->in[0]];
        for (int64_t i = 0; i < pl->vals[nd->in[0]].n; i++) {
            float a = fabsf(x[i]);
            if (a >= 1024.0f && isfinite(a))
                return eval_error(pl, nd, e, "rounds a value >= 1024, which the ANE mis-rounds", "ane-field-notes.md 1.12");
            if (a - floorf(a) == 0.5f && fmodf(floorf(a), 2.0f) == 0.0f)
                return eval_error(pl, nd, e, "rounds a tie to even, where the ANE rounds ties away from zero",
                                  "ane-field-notes.md 1.12");
        }
    }
    for (int k = 0; k < nd->nout; k++) {
        int v = nd->out[k];
        const cpu_val *cv = &pl->vals[v];
        if (!cpu_is_float(cv->dt)) continue;
        const float *o = ptr[v];
        int64_t n = cv->n;
        if (nd->saturate32k)
            for (int64_t i = 0; i < n; i++)
                if (fabsf(o[i]) > 32752.0f && isfinite(o[i]))
                    return eval_error(pl, nd, e, "produced a value beyond +-32752, which the ANE saturates to inf",
                                      "ane-field-notes.md 3.1");
        if (nd->dma_cliff && pl->chip <= 2)
            for (int64_t i = 0; i < n; i++)
                if (fabsf(o[i]) > 4094.0f)
                    return eval_error(pl, nd, e,
                                      "moves a value beyond +-4094 through a last-axis-offset slice, which M1/M2 turn into inf",
                                      "ane-field-notes.md 3.2");
        int bad = 0;
        for (int64_t i = 0; i < n && !bad; i++)
            if (!isfinite(o[i])) {
                if (o[i] != o[i]) bad = 2;
                else if (!(o[i] < 0 && cv->only_softmax)) bad = 1; /* -inf into softmax is a mask */
            }
        if (!bad) continue;
        int inherited = 0;
        for (int j = 0; j < nd->nin && !inherited; j++) {
            int u = nd->in[j];
            if (u >= 0 && cpu_is_float(pl->vals[u].dt) && has_nonfinite(ptr[u], pl->vals[u].n, bad == 2))
                inherited = 1;
        }
        if (inherited) continue;
        return eval_error(pl, nd, e, bad == 2 ? "produced NaN from finite inputs (the ANE does not propagate NaN)"
                                              : "overflowed fp16 (|value| > 65504 became inf)",
                          bad == 2 ? "ane-field-notes.md 3.4" : "ane-private-api.md 6.5, mil-reference.md 7.3");
    }
    return 0;
}
