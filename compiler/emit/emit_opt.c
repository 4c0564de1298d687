/*
 * emit_opt.c -- the checked AST and a reduction to C for the optimizing tier
 * (cc -O3 -march=native): the kernel ABI of kernels/abi.h, vectorized over
 * blocks of output rows (compiler/emit/opt.h has the loop shape).
 *
 *   validate     kfc_verify, as every emitter (compiler/verify.c)
 *   levels       P: constants/parameters, O: + outer variables (per row),
 *                J: + inner variables but no outer (per term, scalar),
 *                I: both (per term and lane, inside the vectorized loop)
 *   prelude      KF_T, KF_RB, inline exp/log (kernels/vmath.c), KF_* macros
 *   body         P once per call; per block of KF_RB rows: outer tiles and O
 *                nodes per lane; per visited term: J nodes, then the lane loop
 *                with the I nodes and the fold (compiler/emit/skel_opt.c); each
 *                op's code from emit_ops.c, shared with emit_c.c
 *
 * Node n lives in pN[c] (P), oN[c][kf_l] (O), uN[c] (J) or tN[c] (I);
 * variables in vV[c] (parameters), xV[c][kf_l] (outer tile), yV[c] (inner,
 * read in place). Component loops up to KFC_OPT_UNROLL are unrolled so the
 * lane loop body is straight-line code. Only numbers and generated
 * identifiers reach the source: never text of the user's.
 */
#include <stdio.h>
#include <stdlib.h>

#include "compiler/emit/opt.h"
#include "compiler/emit/emit_ops.h"
#include "compiler/ir.h"

enum { LV_P = 0, LV_O = 1, LV_J = 2, LV_I = 3 }; /* bit 0: outer, bit 1: inner */

/* Lanes (rows per block) by dtype for 256-bit vectors: one AVX2 vector of
 * floats, two of doubles; for 512-bit vectors (AVX-512, which also has twice
 * the registers) the same number of vectors, twice the lanes. Halved while
 * the lane arrays would pass LANE_BUDGET values. */
#define RB_F32 8
#define RB_F64 8
#define LANE_BUDGET 65536

typedef struct emitter {
    const kfc_prog *p;
    kfc_buf b;
    int axis;
    kf_dtype dtype;
    int8_t *lvl;                /* per node: LV_*, or -1 when unreachable */
    int32_t vdim[KFC_MAX_VARS]; /* 0: variable unused */
    int8_t vlv[KFC_MAX_VARS];   /* LV_P, LV_O or LV_J */
    kfc_diag *d;
    kfc_opgen g; /* the node code generator (emit_ops.c), set by opgen_init */
} emitter;

/* ---- where values live (the node code itself is in emit_ops.c) ---- */

/* Component k (an index expression, possibly "@") of node n, broadcasting
 * dim-1 nodes, where it lives at its level. */
static void comp(const kfc_opgen *g, int32_t n, const char *k, char *dst, size_t cap)
{
    const emitter *e = g->ctx;
    const kfc_node *x = &e->p->nodes[n];
    const char *kk = x->dim == 1 ? "0" : k;
    if (kfc_opgen_literal(x, dst, cap))
        return;
    if (x->op == KFC_OP_VAR) {
        int v = (int)x->iv[0];
        if (e->vlv[v] == LV_O)
            snprintf(dst, cap, "x%d[%s][kf_l]", v, kk);
        else
            snprintf(dst, cap, "%c%d[%s]", e->vlv[v] == LV_J ? 'y' : 'v', v, kk);
    } else if (e->lvl[n] == LV_O) {
        snprintf(dst, cap, "o%d[%s][kf_l]", (int)n, kk);
    } else {
        snprintf(dst, cap, "%c%d[%s]", "pout"[e->lvl[n]], (int)n, kk);
    }
}

/* Pow(f, m) by multiplications up to this |m| (vectorizable, a few ulps);
 * beyond it by pow(), as the libtcc tier does. */
#define POWI_MAX 64

static const char *const indent[] = {"    ", "            ", "                ", "                    "};

static void opgen_init(emitter *e)
{
    /* nodes are written where they are read: comp serves as dst */
    e->g = (kfc_opgen){.p = e->p, .b = &e->b, .ctx = e, .comp = comp, .dst = comp,
                       .each = kfc_opt_each, .indent = indent, .powi_max = POWI_MAX, .selects = 1,
                       .split_max = KFC_OPT_UNROLL};
}

/* Exp(s*c) with s >= 0 and c < 0 as kf_vexpns, or kf_vexpns2 when c is a
 * power of two (kernels/vmath.c): the Gaussian's exp, started from s. 0 when
 * the node is not of that shape. */
static int fused_exp(emitter *e, int32_t n, int lv)
{
    int32_t s;
    double c;
    if (!kfc_exp_scaled(e->p, n, e->dtype, &s, &c))
        return 0;
    kfc_expns a;
    kfc_exp_scaled_args(c, e->dtype, &a);
    kfc_buf t = {0};
    char arg[KFC_CAP];
    comp(&e->g, n, "@", arg, sizeof arg);
    kfc_buf_printf(&t, "%s = ", arg);
    comp(&e->g, s, "@", arg, sizeof arg);
    kfc_expns_call(&t, &a, e->dtype, arg);
    kfc_buf_printf(&t, ";");
    if (t.oom)
        e->b.oom = 1;
    else
        kfc_opgen_stmt(&e->g, lv, e->p->nodes[n].dim, "%s", t.s);
    free(t.s);
    return 1;
}

/* Declarations and code of the nodes of one level, in index order. */
static void emit_nodes(emitter *e, int lv, int declare_only)
{
    for (int32_t n = 0; n < e->p->nnodes; n++) {
        const kfc_node *x = &e->p->nodes[n];
        if (e->lvl[n] != lv || kfc_is_leaf(x))
            continue;
        if (declare_only) {
            kfc_buf_printf(&e->b, "        KF_T o%d[%d][KF_RB]; /* %s */\n", (int)n, (int)x->dim,
                           kfc_op_info[x->op].name);
            continue;
        }
        if (lv != LV_O)
            kfc_buf_printf(&e->b, "%sKF_T %c%d[%d]; /* %s */\n", indent[lv], "pout"[lv], (int)n,
                           (int)x->dim, kfc_op_info[x->op].name);
        if (!fused_exp(e, n, lv))
            kfc_opgen_node(&e->g, n, lv);
    }
}

/* ---- prelude: types, inline math, macros; no #include ---- */

static void prelude(kfc_buf *b, kf_dtype dtype, int rb)
{
    int f = dtype == KF_FLOAT32;
    kfc_buf_printf(b, "typedef long long kf_i64;\ntypedef %s KF_T;\n#define KF_RB %d\n", f ? "float" : "double", rb);
    /* The loop over the lanes of a block. Not unrolled: GCC would otherwise
     * unroll its KF_RB iterations before the loop vectorizer sees it and
     * leave the pieces to the weaker basic-block vectorizer (measured 2-3x
     * slower on KMin). The vectorized loop is one iteration anyway. */
    kfc_buf_printf(b, "#define KF_LANES _Pragma(\"GCC unroll 1\") for (int kf_l = 0; kf_l < KF_RB; kf_l++)\n");
    /* One j per iteration of the loop over j: GCC 12's unroll-and-jam (on at
     * -O3, deaf to "GCC unroll 1") fuses two j into small float64 bodies
     * (Gaussian, Laplace, Cauchy), for no speed (measured within noise on
     * Zen 5, docs/performance.md) but with twice the pairs per iteration that
     * bench/limit.sh's count assumes. Other compilers ignore the pragma. */
    kfc_buf_printf(b, "#pragma GCC optimize(\"no-loop-unroll-and-jam\")\n\n");
    kfc_buf_printf(b, "%s\n", kfk_vmath_source(dtype));
    /* exp/log inline; sqrt, fabs, floor become instructions (-fno-math-errno);
     * the rest are libm calls, which keep their loop scalar but correct. */
    kfc_opgen_libm_macros(b, dtype, KFC_MATH_OPT);
    kfc_buf_printf(b, "#define KF_INF ((KF_T)__builtin_inf())\n");
    kfc_buf_printf(b, "#define KF_HELPER static inline __attribute__((always_inline, unused))\n\n");
    kfc_opgen_helpers(b, 1);
}

/* Lanes per block: the dtype's default, halved while the per-lane arrays
 * (outer tiles, O nodes, reduction state) would pass the stack budget. */
static int lanes(const emitter *e, const kfc_red *r, int vec_bits)
{
    int64_t per = kfc_opt_state_values(r);
    for (int v = 0; v < KFC_MAX_VARS; v++)
        if (e->vdim[v] && e->vlv[v] == LV_O)
            per += e->vdim[v];
    for (int32_t n = 0; n < e->p->nnodes; n++)
        if (e->lvl[n] == LV_O)
            per += e->p->nodes[n].dim;
    int rb = (r->dtype == KF_FLOAT32 ? RB_F32 : RB_F64) * (vec_bits >= 512 ? 2 : 1);
    while (rb > 1 && per * rb > LANE_BUDGET)
        rb /= 2;
    return rb;
}

/* The term's components as a template ('@'): where the root lives. */
static void root_template(const emitter *e, int32_t root, char *dst, size_t cap)
{
    char c[KFC_CAP];
    comp(&e->g, root, "@", c, sizeof c);
    snprintf(dst, cap, "%s", c);
}

char *kfc_emit_c_opt(const kfc_prog *p, const kfc_red *r, kfc_diag *d)
{
    return kfc_emit_c_opt_w(p, r, 256, d);
}

char *kfc_emit_c_opt_w(const kfc_prog *p, const kfc_red *r, int vec_bits, kfc_diag *d)
{
    emitter e = {.p = p, .axis = r->axis, .dtype = r->dtype, .d = d};
    opgen_init(&e);
    /* The IR check every emitter relies on (compiler/verify.c). */
    if (kfc_verify(p, r, d))
        return NULL;
    int32_t r2 = kfc_red_info[r->id].formula2 ? p->root2 : -1;
    if (kfc_opgen_levels(p, p->root, r2, e.axis, &e.lvl, e.vdim, e.vlv, e.d))
        return kfc_opgen_finish(&e.b, e.lvl, 0, d);
    int rb = lanes(&e, r, vec_bits);
    kfc_buf_printf(&e.b,
                   "/* kforge kernel, optimizing tier: %s over %s (axis %d), %s, sum scheme %s.\n"
                   " * Generated; self-contained; vectorized over blocks of KF_RB output rows.\n"
                   " * The ABI is in docs/kernels.md, the loop shape in compiler/emit/opt.h. */\n",
                   kfc_red_info[r->id].name, r->axis == 1 ? "j" : "i", r->axis,
                   kf_dtype_name(r->dtype), kf_sum_scheme_name(r->sum_scheme));
    prelude(&e.b, r->dtype, rb);
    kfc_buf_printf(&e.b, KFC_REDUCE_HEAD);
    kfc_buf_printf(&e.b, "    KF_T *kf_out = (KF_T *)out;\n    kf_i64 *kf_idx = idx;\n"
                         "    (void)kf_out;\n    (void)kf_idx;\n");
    kfc_buf_printf(&e.b, "    /* once per call */\n");
    for (int v = 0; v < KFC_MAX_VARS; v++)
        if (e.vdim[v] && e.vlv[v] == LV_P)
            kfc_buf_printf(&e.b, "    const KF_T *v%d = (const KF_T *)args[%d];\n", v, v);
    emit_nodes(&e, LV_P, 0);
    /* per block of rows: outer tiles (lanes past the last row repeat row
     * kf_rb, so they compute on real data and are never written) and O nodes */
    kfc_buf_printf(&e.b, "    for (kf_i64 kf_rb = r0; kf_rb < r1; kf_rb += KF_RB) {\n"
                         "        kf_i64 kf_nb = r1 - kf_rb < KF_RB ? r1 - kf_rb : KF_RB;\n");
    for (int v = 0; v < KFC_MAX_VARS; v++)
        if (e.vdim[v] && e.vlv[v] == LV_O)
            kfc_buf_printf(&e.b, "        KF_T x%d[%d][KF_RB];\n", v, (int)e.vdim[v]);
    emit_nodes(&e, LV_O, 1);
    kfc_buf_printf(&e.b, "        KF_LANES {\n"
                         "            kf_i64 kf_row = kf_rb + (kf_l < kf_nb ? kf_l : 0);\n"
                         "            (void)kf_row;\n");
    for (int v = 0; v < KFC_MAX_VARS; v++)
        if (e.vdim[v] && e.vlv[v] == LV_O) {
            kfc_buf_printf(&e.b, "            { const KF_T *kf_p = (const KF_T *)args[%d] + kf_row * %d;\n", v,
                           (int)e.vdim[v]);
            kfc_opgen_stmt(&e.g, LV_J, e.vdim[v], "x%d[@][kf_l] = kf_p[@];", v);
            kfc_buf_printf(&e.b, "            }\n");
        }
    emit_nodes(&e, LV_O, 0);
    kfc_buf_printf(&e.b, "        }\n");
    kfc_opt_begin(&e.b, r);
    kfc_buf_printf(&e.b, KFC_RANGES_HEAD);
    for (int v = 0; v < KFC_MAX_VARS; v++)
        if (e.vdim[v] && e.vlv[v] == LV_J)
            kfc_buf_printf(&e.b, "                const KF_T *y%d = (const KF_T *)args[%d] + j * %d;\n", v, v,
                           (int)e.vdim[v]);
    emit_nodes(&e, LV_J, 0);
    kfc_buf_printf(&e.b, "                KF_LANES {\n");
    emit_nodes(&e, LV_I, 0);
    char f[KFC_CAP], g[KFC_CAP];
    root_template(&e, p->root, f, sizeof f);
    if (r2 >= 0)
        root_template(&e, r2, g, sizeof g);
    kfc_opt_term(&e.b, r, f, r2 >= 0 ? g : NULL);
    kfc_buf_printf(&e.b, "                }\n");
    kfc_opt_after(&e.b, r);
    kfc_buf_printf(&e.b, "            }\n        }\n");
    kfc_opt_end(&e.b, r);
    kfc_buf_printf(&e.b, "    }\n}\n");
    return kfc_opgen_finish(&e.b, e.lvl, 1, d);
}
