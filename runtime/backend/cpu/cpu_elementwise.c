/* cpu_elementwise.c - binary ops with NumPy broadcasting, unary ops and activations, cast, select,
 * prelu (mil-reference.md 6, 8.2-8.4, select from 8.8).
 *
 * Broadcasting is resolved at plan time: shapes are right-aligned, broadcast axes get stride 0,
 * and neighbouring axes that walk memory the same way are merged, so most ops run as one flat
 * loop (same shape, or one operand a scalar) and the rest as an outer odometer over an inner
 * flat loop. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/fp16.h"
#include "cpu.h"

/* ---- broadcasting ---- */

#define BC_MAX 3
typedef struct bcast {
    int nd;                       /* merged rank (>= 1) */
    int64_t shape[MIL_MAX_RANK];
    int64_t st[BC_MAX][MIL_MAX_RANK];
    int nops;
} bcast;

static void bcast_init(bcast *b, const cpu_val *o, const cpu_val *const *in, int nops) {
    int r = o->rank;
    int64_t shape[MIL_MAX_RANK], st[BC_MAX][MIL_MAX_RANK];
    for (int i = 0; i < r; i++) shape[i] = o->shape[i];
    for (int k = 0; k < nops; k++) {
        int64_t s = 1;
        for (int i = r - 1; i >= 0; i--) {
            int j = i - (r - in[k]->rank);
            int64_t d = j >= 0 ? in[k]->shape[j] : 1;
            st[k][i] = (d == 1) ? 0 : s;
            s *= d;
        }
    }
    /* merge axis i into i+1 when every operand steps contiguously across them */
    int nd = 0;
    int64_t ms[MIL_MAX_RANK], mst[BC_MAX][MIL_MAX_RANK];
    for (int i = 0; i < r; i++) {
        if (shape[i] == 1) continue; /* size-1 axes never move */
        if (nd > 0) {
            int ok = 1;
            for (int k = 0; k < nops; k++)
                if (mst[k][nd - 1] != st[k][i] * shape[i]) ok = 0;
            if (ok) {
                ms[nd - 1] *= shape[i];
                for (int k = 0; k < nops; k++) mst[k][nd - 1] = st[k][i];
                continue;
            }
        }
        ms[nd] = shape[i];
        for (int k = 0; k < nops; k++) mst[k][nd] = st[k][i];
        nd++;
    }
    if (nd == 0) {
        ms[0] = 1;
        for (int k = 0; k < nops; k++) mst[k][0] = 0;
        nd = 1;
    }
    b->nd = nd;
    b->nops = nops;
    for (int i = 0; i < nd; i++) {
        b->shape[i] = ms[i];
        for (int k = 0; k < nops; k++) b->st[k][i] = mst[k][i];
    }
}

/* ---- binary ops ---- */

enum { B_ADD, B_SUB, B_MUL, B_DIV, B_POW, B_MAX, B_MIN, B_FLOORDIV, B_MOD, B_EQ, B_NE, B_GT, B_GE,
       B_LT, B_LE, B_AND, B_OR, B_XOR };

typedef struct bin_p {
    int op;
    bcast b;
} bin_p;

static inline float fmodpy(float a, float b) {
    float r = a - floorf(a / b) * b;
    return r;
}

#define BIN_CASES(OP, X, Y)                                                                        \
    switch (OP) {                                                                                  \
    case B_ADD: BIN_LOOP((X) + (Y)); break;                                                        \
    case B_SUB: BIN_LOOP((X) - (Y)); break;                                                        \
    case B_MUL: BIN_LOOP((X) * (Y)); break;                                                        \
    case B_DIV: BIN_LOOP((X) / (Y)); break;                                                        \
    case B_POW: BIN_LOOP(powf((X), (Y))); break;                                                   \
    case B_MAX: BIN_LOOP((X) != (X) || (Y) != (Y) ? NAN : (X) > (Y) ? (X) : (Y)); break;           \
    case B_MIN: BIN_LOOP((X) != (X) || (Y) != (Y) ? NAN : (X) < (Y) ? (X) : (Y)); break;           \
    case B_FLOORDIV: BIN_LOOP(floorf((X) / (Y))); break;                                           \
    case B_MOD: BIN_LOOP(fmodpy((X), (Y))); break;                                                 \
    case B_EQ: BIN_LOOP((X) == (Y) ? 1.0f : 0.0f); break;                                          \
    case B_NE: BIN_LOOP((X) != (Y) ? 1.0f : 0.0f); break;                                          \
    case B_GT: BIN_LOOP((X) > (Y) ? 1.0f : 0.0f); break;                                           \
    case B_GE: BIN_LOOP((X) >= (Y) ? 1.0f : 0.0f); break;                                          \
    case B_LT: BIN_LOOP((X) < (Y) ? 1.0f : 0.0f); break;                                           \
    case B_LE: BIN_LOOP((X) <= (Y) ? 1.0f : 0.0f); break;                                          \
    case B_AND: BIN_LOOP(((X) != 0 && (Y) != 0) ? 1.0f : 0.0f); break;                             \
    case B_OR: BIN_LOOP(((X) != 0 || (Y) != 0) ? 1.0f : 0.0f); break;                              \
    case B_XOR: BIN_LOOP(((X) != 0) != ((Y) != 0) ? 1.0f : 0.0f); break;                           \
    }

/* Inner loop over n elements with operand strides sx, sy in {0, 1} (specialised for vectorising). */
CPU_VEC static void bin_inner(int op, float *restrict o, const float *x, const float *y, int64_t n,
                      int64_t sx, int64_t sy) {
    if (sx == 1 && sy == 1) {
#define BIN_LOOP(E) for (int64_t i = 0; i < n; i++) { float a = x[i], b = y[i]; o[i] = E; }
        BIN_CASES(op, a, b)
#undef BIN_LOOP
    } else if (sx == 1 && sy == 0) {
        const float b = y[0];
#define BIN_LOOP(E) for (int64_t i = 0; i < n; i++) { float a = x[i]; o[i] = E; }
        BIN_CASES(op, a, b)
#undef BIN_LOOP
    } else if (sx == 0 && sy == 1) {
        const float a = x[0];
#define BIN_LOOP(E) for (int64_t i = 0; i < n; i++) { float b = y[i]; o[i] = E; }
        BIN_CASES(op, a, b)
#undef BIN_LOOP
    } else {
#define BIN_LOOP(E) for (int64_t i = 0; i < n; i++) { float a = x[i * sx], b = y[i * sy]; o[i] = E; }
        BIN_CASES(op, a, b)
#undef BIN_LOOP
    }
}

typedef struct bin_job {
    const bin_p *p;
    float *o;
    const float *x, *y;
} bin_job;

/* Rows of the merged shape: [0, rows) where a row is the innermost axis. */
static void bin_rows(void *ctx, int64_t lo, int64_t hi) {
    const bin_job *j = ctx;
    const bcast *b = &j->p->b;
    int nd = b->nd;
    int64_t inner = b->shape[nd - 1];
    int64_t idx[MIL_MAX_RANK];
    for (int64_t r = lo; r < hi; r++) {
        int64_t t = r, ox = 0, oy = 0;
        for (int i = nd - 2; i >= 0; i--) {
            idx[i] = t % b->shape[i];
            t /= b->shape[i];
            ox += idx[i] * b->st[0][i];
            oy += idx[i] * b->st[1][i];
        }
        bin_inner(j->p->op, j->o + r * inner, j->x + ox, j->y + oy, inner, b->st[0][nd - 1],
                  b->st[1][nd - 1]);
    }
}

/* A fully merged shape: one flat loop, split in ranges. */
static void bin_flat(void *ctx, int64_t lo, int64_t hi) {
    const bin_job *j = ctx;
    int64_t sx = j->p->b.st[0][0], sy = j->p->b.st[1][0];
    bin_inner(j->p->op, j->o + lo, j->x + lo * sx, j->y + lo * sy, hi - lo, sx, sy);
}

static void run_binary(const cpu_exec *ex, const cpu_node *nd) {
    const bin_p *p = nd->p;
    bin_job j = {p, ex->ptr[nd->out[0]], ex->ptr[nd->in[0]], ex->ptr[nd->in[1]]};
    int64_t inner = p->b.shape[p->b.nd - 1];
    if (p->b.nd == 1) {
        cpu_parallel(ex->pl, inner, 2, bin_flat, &j);
        return;
    }
    int64_t rows = cpu_v(ex, nd->out[0])->n / (inner ? inner : 1);
    cpu_parallel(ex->pl, rows, inner * 2, bin_rows, &j);
}

/* ---- unary ops ---- */

typedef struct un_p {
    mil_opkind k;
    float a, b;      /* alpha/beta/epsilon */
    int mode;        /* gelu: 0 exact, 1 tanh, 2 sigmoid */
    int to_bool;     /* cast -> bool */
} un_p;

static inline float sigm(float x) { return 1.0f / (1.0f + cpu_expf(-x)); }

typedef struct un_job {
    const un_p *p;
    float *o;
    const float *x;
} un_job;

CPU_VEC static void un_range(void *ctx, int64_t lo, int64_t hi) {
    const un_job *j = ctx;
    const float *restrict x = j->x + lo;
    float *o = j->o + lo;
    int64_t n = hi - lo;
    const float a = j->p->a, b = j->p->b;
#define L(E) for (int64_t i = 0; i < n; i++) { float v = x[i]; o[i] = (E); } break
    switch (j->p->k) {
    case MIL_OP_relu: L(v > 0 ? v : (v != v ? v : 0.0f));
    case MIL_OP_relu6: L(v != v ? v : v < 0 ? 0.0f : v > 6 ? 6.0f : v);
    case MIL_OP_sigmoid: L(sigm(v));
    case MIL_OP_silu: L(v * sigm(v));
    case MIL_OP_tanh: L(cpu_tanhf(v));
    case MIL_OP_exp: L(cpu_expf(v));
    case MIL_OP_exp2: L(exp2f(v));
    case MIL_OP_sqrt: L(sqrtf(v));
    case MIL_OP_sin: L(sinf(v));
    case MIL_OP_cos: L(cosf(v));
    case MIL_OP_tan: L(tanf(v));
    case MIL_OP_asin: L(asinf(v));
    case MIL_OP_acos: L(acosf(v));
    case MIL_OP_atan: L(atanf(v));
    case MIL_OP_atanh: L(atanhf(v));
    case MIL_OP_sinh: L(sinhf(v));
    case MIL_OP_cosh: L(coshf(v));
    case MIL_OP_erf: L(erff(v));
    case MIL_OP_floor: L(floorf(v));
    case MIL_OP_ceil: L(ceilf(v));
    case MIL_OP_round: L(rintf(v)); /* ties to even (CT); the ANE rounds ties away, field notes 1.12 */
    case MIL_OP_abs: L(fabsf(v));
    case MIL_OP_sign: L(v > 0 ? 1.0f : v < 0 ? -1.0f : v);
    case MIL_OP_square: L(v * v);
    case MIL_OP_rsqrt: L(1.0f / sqrtf(v + a));
    case MIL_OP_inverse: L(1.0f / (v + a));
    case MIL_OP_log: L(logf(v + a));
    case MIL_OP_clip: L(v != v ? v : v < a ? a : v > b ? b : v);
    case MIL_OP_threshold: L(v != v ? v : v > a ? v : a);
    case MIL_OP_gelu:
        if (j->p->mode == 0) {
            L(0.5f * v * (1.0f + erff(v * 0.70710678118654752f)));
        } else if (j->p->mode == 1) {
            L(0.5f * v * (1.0f + cpu_tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v))));
        } else {
            L(v * sigm(1.702f * v));
        }
        break;
    case MIL_OP_leaky_relu: L(v >= 0 ? v : a * v);
    case MIL_OP_elu: L(v > 0 ? v : a * (expf(v) - 1.0f));
    case MIL_OP_thresholded_relu: L(v >= a ? v : 0.0f);
    case MIL_OP_clamped_relu: L(fminf(b, v >= 0 ? v : a * v));
    case MIL_OP_linear_activation: L(a * v + b);
    case MIL_OP_scaled_tanh: L(a * cpu_tanhf(b * v));
    case MIL_OP_sigmoid_hard: L(fminf(fmaxf(a * v + b, 0.0f), 1.0f));
    case MIL_OP_softplus: L(v > 20 ? v : log1pf(expf(v)));
    case MIL_OP_softsign: L(v / (1.0f + fabsf(v)));
    case MIL_OP_logical_not: L(v == 0 ? 1.0f : 0.0f);
    case MIL_OP_cast:
        if (j->p->to_bool) {
            L(v != 0 ? 1.0f : 0.0f);
        } else if (o != x) {
            memcpy(o, x, (size_t)n * sizeof(float));
        }
        break;
    default: break;
    }
#undef L
}

static void run_unary(const cpu_exec *ex, const cpu_node *nd) {
    un_job j = {nd->p, ex->ptr[nd->out[0]], ex->ptr[nd->in[0]]};
    int64_t n = cpu_v(ex, nd->out[0])->n;
    cpu_parallel(ex->pl, n, 8, un_range, &j);
}

/* ---- prelu: per-channel slope on axis 1 ---- */

CPU_VEC static void run_prelu(const cpu_exec *ex, const cpu_node *nd) {
    const cpu_val *vx = cpu_v(ex, nd->in[0]);
    const float *x = ex->ptr[nd->in[0]], *al = ex->ptr[nd->in[1]];
    float *o = ex->ptr[nd->out[0]];
    int64_t C = vx->shape[1], inner = 1;
    for (int i = 2; i < vx->rank; i++) inner *= vx->shape[i];
    int64_t outer = vx->shape[0];
    for (int64_t b = 0; b < outer; b++)
        for (int64_t c = 0; c < C; c++) {
            const float s = al[c];
            const float *xi = x + (b * C + c) * inner;
            float *oi = o + (b * C + c) * inner;
            for (int64_t i = 0; i < inner; i++) oi[i] = xi[i] > 0 ? xi[i] : s * xi[i];
        }
}

/* ---- select: cond ? a : b with three-way broadcasting ---- */

CPU_VEC static void run_select(const cpu_exec *ex, const cpu_node *nd) {
    const bcast *b = nd->p;
    const float *c = ex->ptr[nd->in[0]], *x = ex->ptr[nd->in[1]], *y = ex->ptr[nd->in[2]];
    float *o = ex->ptr[nd->out[0]];
    int d = b->nd;
    int64_t inner = b->shape[d - 1], rows = cpu_v(ex, nd->out[0])->n / inner;
    for (int64_t r = 0; r < rows; r++) {
        int64_t t = r, oc = 0, ox = 0, oy = 0;
        for (int i = d - 2; i >= 0; i--) {
            int64_t id = t % b->shape[i];
            t /= b->shape[i];
            oc += id * b->st[0][i];
            ox += id * b->st[1][i];
            oy += id * b->st[2][i];
        }
        float *orow = o + r * inner;
        int64_t sc = b->st[0][d - 1], sx = b->st[1][d - 1], sy = b->st[2][d - 1];
        for (int64_t i = 0; i < inner; i++)
            orow[i] = c[oc + i * sc] != 0 ? x[ox + i * sx] : y[oy + i * sy];
    }
}

/* ---- planning ---- */

static int bin_code(mil_opkind k) {
    switch (k) {
    case MIL_OP_add: return B_ADD;
    case MIL_OP_sub: return B_SUB;
    case MIL_OP_mul: return B_MUL;
    case MIL_OP_real_div: return B_DIV;
    case MIL_OP_pow: return B_POW;
    case MIL_OP_maximum: return B_MAX;
    case MIL_OP_minimum: return B_MIN;
    case MIL_OP_floor_div: return B_FLOORDIV;
    case MIL_OP_mod: return B_MOD;
    case MIL_OP_equal: return B_EQ;
    case MIL_OP_not_equal: return B_NE;
    case MIL_OP_greater: return B_GT;
    case MIL_OP_greater_equal: return B_GE;
    case MIL_OP_less: return B_LT;
    case MIL_OP_less_equal: return B_LE;
    case MIL_OP_logical_and: return B_AND;
    case MIL_OP_logical_or: return B_OR;
    case MIL_OP_logical_xor: return B_XOR;
    default: return -1;
    }
}

/* A parameter default as the ANE would hold it: fp16 when x is fp16 or in fp16 mode. */
static float param_value(const cpu_planner *P, double v, mil_dtype xdt) {
    if (xdt == MIL_FP16 || P->pl->opts.precision == PREC_FP16) return fp16_round((float)v);
    return (float)v;
}

static int need(const cpu_planner *P, const mil_op *op, const char *name, int *v) {
    *v = cpu_arg(P, op, name);
    if (*v < 0) return cpu_op_error(P, op, ERR_INVAL, "missing input '%s'", name);
    return 0;
}

int cpu_fold_scale_into_matmul(cpu_planner *P, int v, int out, float scale);

int cpu_plan_elementwise(cpu_planner *P, const mil_op *op) {
    cpu_val *V = P->pl->vals;
    int rc, x, y;
    if (op->nres < 1) return cpu_op_error(P, op, ERR_INVAL, "op has no result");
    int out = op->res[0];
    int bc = bin_code(op->kind);
    if (bc >= 0) {
        if ((rc = need(P, op, "x", &x)) || (rc = need(P, op, "y", &y))) return rc;
        if (bc == B_MUL && !P->pl->opts.strict) { /* matmul * 2^k: the GEMM's alpha (strict checks each result) */
            int s = cpu_is_const(P, y) && V[y].n == 1 ? y : cpu_is_const(P, x) && V[x].n == 1 ? x : -1;
            int m = s == y ? x : y;
            if (s >= 0 && cpu_fold_scale_into_matmul(P, m, out, V[s].cdata[0])) return 0;
        }
        bin_p *p = calloc(1, sizeof *p);
        if (!p) return cpu_op_error(P, op, ERR_NOMEM, "out of memory");
        p->op = bc;
        const cpu_val *ins[2] = {&V[x], &V[y]};
        bcast_init(&p->b, &V[out], ins, 2);
        cpu_node *nd = cpu_node_new(P, op, 2, run_binary);
        if (!nd) {
            free(p);
            return P->e->code;
        }
        nd->p = p;
        nd->in[0] = x;
        nd->in[1] = y;
        nd->inplace = V[x].n == V[out].n;
        return 0;
    }
    if (op->kind == MIL_OP_select) {
        int c;
        if ((rc = need(P, op, "cond", &c)) || (rc = need(P, op, "a", &x)) ||
            (rc = need(P, op, "b", &y)))
            return rc;
        bcast *b = calloc(1, sizeof *b);
        if (!b) return cpu_op_error(P, op, ERR_NOMEM, "out of memory");
        const cpu_val *ins[3] = {&V[c], &V[x], &V[y]};
        bcast_init(b, &V[out], ins, 3);
        cpu_node *nd = cpu_node_new(P, op, 3, run_select);
        if (!nd) {
            free(b);
            return P->e->code;
        }
        nd->p = b;
        nd->in[0] = c;
        nd->in[1] = x;
        nd->in[2] = y;
        return 0;
    }
    if (op->kind == MIL_OP_prelu) {
        int a;
        if ((rc = need(P, op, "x", &x)) || (rc = need(P, op, "alpha", &a))) return rc;
        if (V[x].rank < 2 || V[a].n != V[x].shape[1])
            return cpu_op_error(P, op, ERR_SHAPE, "alpha must have one value per channel");
        cpu_node *nd = cpu_node_new(P, op, 2, run_prelu);
        if (!nd) return P->e->code;
        nd->in[0] = x;
        nd->in[1] = a;
        nd->inplace = 1;
        return 0;
    }

    /* unary family */
    if ((rc = need(P, op, "x", &x))) return rc;
    if (op->kind == MIL_OP_cast && !P->pl->opts.strict && V[out].dt == MIL_FP32 &&
        cpu_is_float(V[x].dt) && V[out].n == V[x].n) {
        /* A cast into fp32 from a float changes no value (exact, 7.3 rule 3; elements are fp32
         * here): a view. Reading a function input through it keeps the input read in place. */
        cpu_make_view(P, out, x, 0);
        V[out].exact_cast = 1;
        return 0;
    }
    un_p *p = calloc(1, sizeof *p);
    if (!p) return cpu_op_error(P, op, ERR_NOMEM, "out of memory");
    p->k = op->kind;
    mil_dtype xdt = V[x].dt;
    double a = 0, b = 0;
    switch (op->kind) {
    case MIL_OP_rsqrt:
    case MIL_OP_inverse:
    case MIL_OP_log: rc = cpu_arg_float(P, op, "epsilon", &a); break;
    case MIL_OP_clip:
    case MIL_OP_clamped_relu:
    case MIL_OP_linear_activation:
    case MIL_OP_scaled_tanh:
    case MIL_OP_sigmoid_hard:
        rc = cpu_arg_float(P, op, "alpha", &a);
        if (!rc) rc = cpu_arg_float(P, op, "beta", &b);
        break;
    case MIL_OP_threshold:
    case MIL_OP_leaky_relu:
    case MIL_OP_elu:
    case MIL_OP_thresholded_relu: rc = cpu_arg_float(P, op, "alpha", &a); break;
    case MIL_OP_gelu: {
        const char *m = cpu_arg_string(P, op, "mode");
        if (!m) rc = cpu_op_error(P, op, ERR_INVAL, "'mode' must be a constant string");
        else if (strcmp(m, "EXACT") == 0) p->mode = 0;
        else if (strcmp(m, "TANH_APPROXIMATION") == 0) p->mode = 1;
        else if (strcmp(m, "SIGMOID_APPROXIMATION") == 0) p->mode = 2;
        else rc = cpu_op_error(P, op, ERR_INVAL, "unknown gelu mode '%s'", m);
        break;
    }
    case MIL_OP_cast: {
        mil_dtype to = V[out].dt, from = xdt;
        p->to_bool = to == MIL_BOOL;
        (void)from;
        break;
    }
    case MIL_OP_relu: case MIL_OP_relu6: case MIL_OP_sigmoid: case MIL_OP_silu: case MIL_OP_tanh:
    case MIL_OP_exp: case MIL_OP_exp2: case MIL_OP_sqrt: case MIL_OP_sin: case MIL_OP_cos:
    case MIL_OP_tan: case MIL_OP_asin: case MIL_OP_acos: case MIL_OP_atan: case MIL_OP_atanh:
    case MIL_OP_sinh: case MIL_OP_cosh: case MIL_OP_erf: case MIL_OP_floor: case MIL_OP_ceil:
    case MIL_OP_round: case MIL_OP_abs: case MIL_OP_sign: case MIL_OP_square:
    case MIL_OP_softplus: case MIL_OP_softsign: case MIL_OP_logical_not:
        break;
    default:
        rc = cpu_op_error(P, op, ERR_UNSUPPORTED, "op is not supported by the cpu backend");
    }
    if (rc) {
        free(p);
        return rc;
    }
    /* Absent parameters take their defaults as the ANE would hold them (7.3, 7.4 #9). */
    p->a = cpu_arg(P, op, "epsilon") < 0 && cpu_arg(P, op, "alpha") < 0 ? param_value(P, a, xdt) : (float)a;
    p->b = cpu_arg(P, op, "beta") < 0 ? param_value(P, b, xdt) : (float)b;
    cpu_node *nd = cpu_node_new(P, op, 1, run_unary);
    if (!nd) {
        free(p);
        return P->e->code;
    }
    nd->p = p;
    nd->in[0] = x;
    nd->inplace = 1;
    if (op->kind == MIL_OP_cast) {
        /* cast is exact into fp32 (7.3 rule 3); into fp16 it rounds (RNE) like any fp16 result */
        nd->round = !(V[out].dt == MIL_FP32 && cpu_is_float(xdt));
    }
    return 0;
}
