/* cpu_movement.c - the data-movement ops taken from coremltools' definitions: pad, depth_to_space,
 * space_to_depth, pixel_shuffle, pixel_unshuffle, space_to_batch, batch_to_space, crop, reverse,
 * flatten2d, the generators fill_like and range_1d, and the iOS16 constexpr_lut_to_dense and
 * constexpr_sparse_to_dense.
 *
 * Every movement op is one gather through an index map computed at compile time: out[i] =
 * x[idx[i]], or the pad value where idx[i] < 0. Values are moved, never recomputed, so fp16 data
 * stays exactly as it was (a pad constant is rounded like any result). The map costs 8 bytes per
 * output element, which the research shapes afford; the eval loop is then a single gather. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cpu.h"

typedef struct map_p {
    int64_t n;
    float fill;
    int64_t idx[]; /* per output element: input element, or -1 for the fill value */
} map_p;

static void run_map(const cpu_exec *ex, const cpu_node *nd) {
    const map_p *p = nd->p;
    const float *x = ex->ptr[nd->in[0]];
    float *o = ex->ptr[nd->out[0]];
    for (int64_t i = 0; i < p->n; i++) o[i] = p->idx[i] >= 0 ? x[p->idx[i]] : p->fill;
}

/* What each op needs to map an output coordinate to an input one. */
typedef struct mv {
    mil_opkind kind;
    int rank;
    int64_t xs[MIL_MAX_RANK], os[MIL_MAX_RANK], xst[MIL_MAX_RANK];
    int64_t f, b[2], p[4];      /* block factor; block_shape; paddings / crops */
    int64_t before[MIL_MAX_RANK];/* pad: before, per axis (0 for unpadded axes) */
    int mode;                    /* pad: 0 constant, 1 reflect, 2 replicate */
    int rev[MIL_MAX_RANK];       /* reverse: 1 for a reversed axis */
} mv;

/* Input coordinates of output coordinates o into c; 0 when it falls outside x (pad). */
static int map_coord(const mv *m, const int64_t *o, int64_t *c) {
    const int64_t *xs = m->xs;
    memcpy(c, o, sizeof(int64_t) * (size_t)m->rank);
    switch (m->kind) {
    case MIL_OP_pad:
        for (int a = 0; a < m->rank; a++) {
            int64_t v = o[a] - m->before[a], d = xs[a];
            if (v >= 0 && v < d) { c[a] = v; continue; }
            if (m->mode == 0) return 0;
            if (m->mode == 1) v = v < 0 ? -v : 2 * (d - 1) - v;
            else v = v < 0 ? 0 : d - 1;
            c[a] = v;
        }
        return 1;
    case MIL_OP_depth_to_space: { /* DCR: channel (i*f + j)*C' + c */
        int64_t f = m->f, cc = m->os[1];
        c[1] = ((o[2] % f) * f + o[3] % f) * cc + o[1], c[2] = o[2] / f, c[3] = o[3] / f;
        return 1;
    }
    case MIL_OP_space_to_depth: {
        int64_t f = m->f, q = o[1] / xs[1];
        c[1] = o[1] % xs[1], c[2] = o[2] * f + q / f, c[3] = o[3] * f + q % f;
        return 1;
    }
    case MIL_OP_pixel_shuffle: { /* CRD: channel c*f*f + i*f + j */
        int64_t f = m->f;
        c[1] = o[1] * f * f + (o[2] % f) * f + o[3] % f, c[2] = o[2] / f, c[3] = o[3] / f;
        return 1;
    }
    case MIL_OP_pixel_unshuffle: {
        int64_t f = m->f, r = o[1] % (f * f);
        c[1] = o[1] / (f * f), c[2] = o[2] * f + r / f, c[3] = o[3] * f + r % f;
        return 1;
    }
    case MIL_OP_space_to_batch: { /* output batch (i*b1 + j)*N + n */
        int64_t N = xs[0], q = o[0] / N;
        c[0] = o[0] % N;
        c[2] = o[2] * m->b[0] + q / m->b[1] - m->p[0];
        c[3] = o[3] * m->b[1] + q % m->b[1] - m->p[2];
        return c[2] >= 0 && c[2] < xs[2] && c[3] >= 0 && c[3] < xs[3];
    }
    case MIL_OP_batch_to_space: {
        int64_t ph = o[2] + m->p[0], pw = o[3] + m->p[2];
        c[0] = ((ph % m->b[0]) * m->b[1] + pw % m->b[1]) * m->os[0] + o[0];
        c[2] = ph / m->b[0], c[3] = pw / m->b[1];
        return 1;
    }
    case MIL_OP_crop:
        c[m->rank - 2] += m->p[0], c[m->rank - 1] += m->p[2];
        return 1;
    case MIL_OP_reverse:
        for (int a = 0; a < m->rank; a++)
            if (m->rev[a]) c[a] = xs[a] - 1 - o[a];
        return 1;
    default: return 0;
    }
}

static int add_map(cpu_planner *P, const mil_op *op, int x, int out, const mv *m, float fill) {
    const cpu_val *V = P->pl->vals;
    int64_t n = V[out].n;
    map_p *p = malloc(sizeof *p + sizeof(int64_t) * (size_t)(n > 0 ? n : 1));
    if (!p) return cpu_op_error(P, op, ERR_NOMEM, "out of memory");
    p->n = n;
    p->fill = fill;
    int64_t o[MIL_MAX_RANK] = {0}, c[MIL_MAX_RANK];
    for (int64_t i = 0; i < n; i++) {
        int64_t t = i, flat = 0;
        for (int a = m->rank - 1; a >= 0; a--) {
            o[a] = t % m->os[a];
            t /= m->os[a];
        }
        if (map_coord(m, o, c)) {
            for (int a = 0; a < m->rank; a++) flat += c[a] * m->xst[a];
            p->idx[i] = flat;
        } else {
            p->idx[i] = -1;
        }
    }
    cpu_node *nd = cpu_node_new(P, op, 1, run_map);
    if (!nd) {
        free(p);
        return P->e->code;
    }
    nd->p = p;
    nd->in[0] = x;
    nd->round = m->kind == MIL_OP_pad && m->mode == 0; /* only the pad value is new */
    return 0;
}

/* fill_like and range_1d: values known at compile time (no runtime operand is read) */
typedef struct gen_p {
    double start, step;
} gen_p;

static void run_gen(const cpu_exec *ex, const cpu_node *nd) {
    const gen_p *p = nd->p;
    float *o = ex->ptr[nd->out[0]];
    int64_t n = cpu_v(ex, nd->out[0])->n;
    for (int64_t i = 0; i < n; i++) o[i] = (float)(p->start + (double)i * p->step);
}

static int add_gen(cpu_planner *P, const mil_op *op, double start, double step) {
    gen_p *p = malloc(sizeof *p);
    if (!p) return cpu_op_error(P, op, ERR_NOMEM, "out of memory");
    p->start = start;
    p->step = step;
    cpu_node *nd = cpu_node_new(P, op, 0, run_gen);
    if (!nd) {
        free(p);
        return P->e->code;
    }
    nd->p = p;
    return 0;
}

/* constexpr_lut_to_dense (in: indices, lut) and constexpr_sparse_to_dense (in: nonzero_data,
 * mask): bit fields packed LSB first, byte by byte (coremltools' iOS16 constexpr_ops). Their
 * inputs are constants, so the node runs once, at compile time. */
static void run_lut(const cpu_exec *ex, const cpu_node *nd) {
    const float *idx = ex->ptr[nd->in[0]], *lut = ex->ptr[nd->in[1]];
    float *o = ex->ptr[nd->out[0]];
    int64_t n = cpu_v(ex, nd->out[0])->n, np = cpu_v(ex, nd->in[1])->n;
    int bits = np == 2 ? 1 : np == 4 ? 2 : np == 16 ? 4 : np == 64 ? 6 : 8;
    for (int64_t i = 0; i < n; i++) {
        int64_t bit = i * bits;
        unsigned v = 0;
        for (int b = 0; b < bits; b++, bit++) v |= (unsigned)((int)idx[bit / 8] >> (bit % 8) & 1) << b;
        o[i] = lut[v < np ? v : 0];
    }
}

static void run_sparse(const cpu_exec *ex, const cpu_node *nd) {
    const float *nz = ex->ptr[nd->in[0]], *mask = ex->ptr[nd->in[1]];
    float *o = ex->ptr[nd->out[0]];
    int64_t n = cpu_v(ex, nd->out[0])->n, nnz = cpu_v(ex, nd->in[0])->n, k = 0;
    for (int64_t i = 0; i < n; i++)
        o[i] = ((int)mask[i / 8] >> (i % 8) & 1) && k < nnz ? nz[k++] : 0.0f;
}

static int plan_dense(cpu_planner *P, const mil_op *op) {
    int lut = op->kind == MIL_OP_constexpr_lut_to_dense;
    int a = cpu_arg(P, op, lut ? "indices" : "nonzero_data"), b = cpu_arg(P, op, lut ? "lut" : "mask");
    if (a < 0 || b < 0) return cpu_op_error(P, op, ERR_INVAL, "missing input");
    cpu_node *nd = cpu_node_new(P, op, 2, lut ? run_lut : run_sparse);
    if (!nd) return P->e->code;
    nd->in[0] = a;
    nd->in[1] = b;
    nd->round = 0; /* values are copied from the table */
    return 0;
}

int cpu_plan_movement(cpu_planner *P, const mil_op *op) {
    const cpu_val *V = P->pl->vals;
    if (op->nres < 1) return cpu_op_error(P, op, ERR_INVAL, "op has no result");
    int out = op->res[0], rc;
    if (op->kind == MIL_OP_constexpr_lut_to_dense || op->kind == MIL_OP_constexpr_sparse_to_dense) return plan_dense(P, op);
    if (op->kind == MIL_OP_fill_like) {
        double v;
        if ((rc = cpu_arg_float(P, op, "value", &v))) return rc;
        return add_gen(P, op, v, 0);
    }
    if (op->kind == MIL_OP_range_1d) {
        double start, step;
        if ((rc = cpu_arg_float(P, op, "start", &start)) || (rc = cpu_arg_float(P, op, "step", &step))) return rc;
        return add_gen(P, op, start, step);
    }
    int x = cpu_arg(P, op, "x");
    if (x < 0) return cpu_op_error(P, op, ERR_INVAL, "missing input 'x'");
    if (op->kind == MIL_OP_flatten2d) {
        cpu_make_view(P, out, x, 0);
        return 0;
    }
    mv m;
    memset(&m, 0, sizeof m);
    m.kind = op->kind;
    m.rank = V[x].rank;
    if (V[out].rank != m.rank || m.rank < 1) return cpu_op_error(P, op, ERR_SHAPE, "result rank differs from x's");
    memcpy(m.xs, V[x].shape, sizeof(int64_t) * (size_t)m.rank);
    memcpy(m.os, V[out].shape, sizeof(int64_t) * (size_t)m.rank);
    cpu_strides(m.rank, m.xs, m.xst);
    float fill = 0;
    int n;
    switch (op->kind) {
    case MIL_OP_pad: {
        int64_t pad[2 * MIL_MAX_RANK];
        double cv = 0;
        if ((rc = cpu_arg_ints(P, op, "pad", pad, 2 * MIL_MAX_RANK, &n)) ||
            (rc = cpu_arg_float(P, op, "constant_val", &cv)))
            return rc;
        const char *mode = cpu_arg_string(P, op, "mode");
        m.mode = mode && !strcmp(mode, "reflect") ? 1 : mode && !strcmp(mode, "replicate") ? 2 : 0;
        for (int k = 0; k < n / 2; k++) m.before[m.rank - n / 2 + k] = pad[2 * k];
        fill = (float)cv;
        break;
    }
    case MIL_OP_depth_to_space: case MIL_OP_space_to_depth:
        if ((rc = cpu_arg_int(P, op, "block_size", &m.f))) return rc;
        break;
    case MIL_OP_pixel_shuffle:
        if ((rc = cpu_arg_int(P, op, "upscale_factor", &m.f))) return rc;
        break;
    case MIL_OP_pixel_unshuffle:
        if ((rc = cpu_arg_int(P, op, "downscale_factor", &m.f))) return rc;
        break;
    case MIL_OP_space_to_batch: case MIL_OP_batch_to_space:
        if ((rc = cpu_arg_ints(P, op, "block_shape", m.b, 2, &n)) ||
            (rc = cpu_arg_ints(P, op, op->kind == MIL_OP_space_to_batch ? "paddings" : "crops", m.p, 4, &n)))
            return rc;
        break;
    case MIL_OP_crop: {
        int64_t h[2], w[2];
        if ((rc = cpu_arg_ints(P, op, "crop_height", h, 2, &n)) || (rc = cpu_arg_ints(P, op, "crop_width", w, 2, &n)))
            return rc;
        m.p[0] = h[0], m.p[2] = w[0];
        break;
    }
    case MIL_OP_reverse: {
        int64_t axes[MIL_MAX_RANK];
        if ((rc = cpu_arg_ints(P, op, "axes", axes, MIL_MAX_RANK, &n))) return rc;
        for (int k = 0; k < n; k++) {
            int a = cpu_axis(axes[k], m.rank);
            if (a < 0) return cpu_op_error(P, op, ERR_INVAL, "axis out of range");
            m.rev[a] = 1;
        }
        break;
    }
    default: return cpu_op_error(P, op, ERR_UNSUPPORTED, "not a movement op");
    }
    return add_map(P, op, x, out, &m, fill);
}
