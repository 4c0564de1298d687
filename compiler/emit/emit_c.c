/*
 * emit_c.c -- the checked AST and a reduction to self-contained C source:
 * kf_reduce (the kernel ABI of kernels/abi.h) or kf_formula alone.
 *
 *   verify       kfc_verify (compiler/verify.c): every reachable node against its dim rule
 *   levels       P: constants/parameters only, O: + outer variables, I: + inner
 *   prelude      KF_T, kf_i64, libm prototypes, the KF_* macros of ops.def
 *   body         P nodes once per call, O nodes once per row, I nodes per pair
 *                (each op's code from emit_ops.c, shared with emit_opt.c),
 *                the reduction state from compiler/emit/skel_c.c around them
 *
 * Every node n becomes a local `KF_T nN[dim]`; variables are read in place
 * through `vV` pointers and constants are inlined as literals. Only numbers
 * and generated identifiers reach the source: never text of the user's.
 */
#include <stdio.h>

#include "compiler/emit/skel.h"
#include "compiler/emit/emit_ops.h"
#include "compiler/ir.h"

enum { LV_P = 0, LV_O = 1, LV_I = 2 };

typedef struct emitter {
    const kfc_prog *p;
    kfc_buf b;
    int axis;       /* 0 or 1; -1 for kf_formula (cat 0 read at i, cat 1 at j) */
    int8_t *lvl;    /* per node: LV_*, or -1 when unreachable from the roots */
    int32_t vdim[KFC_MAX_VARS]; /* 0: variable unused */
    int8_t vcat[KFC_MAX_VARS];
    kfc_diag *d;
    kfc_opgen g; /* the node code generator (emit_ops.c), set by opgen_init */
} emitter;

/* Marks the nodes reachable from the roots and gives each its level;
 * collects the variables. The program passed kfc_verify (compiler/verify.c),
 * so every index and dim is consistent. Children have smaller indices, so
 * one pass upwards computes levels. */
static int analyze(emitter *e, int32_t root, int32_t root2)
{
    const kfc_prog *p = e->p;
    int st = kfc_opgen_reach(p, root, root2, &e->lvl, e->d);
    if (st)
        return st;
    for (int32_t n = 0; n < p->nnodes; n++) {
        if (e->lvl[n] < 0)
            continue;
        const kfc_node *x = &p->nodes[n];
        int lv = LV_P;
        if (x->op == KFC_OP_VAR) {
            int v = (int)x->iv[0];
            e->vdim[v] = x->dim;
            e->vcat[v] = (int8_t)x->iv[2];
            if (e->axis >= 0) {
                int role = kfc_role((int)x->iv[2], e->axis);
                lv = role == KFC_ROLE_PARAM ? LV_P : role == KFC_ROLE_OUTER ? LV_O : LV_I;
            }
        }
        for (int k = 0; k < kfc_op_info[x->op].nargs; k++)
            if (e->lvl[x->a[k]] > lv)
                lv = e->lvl[x->a[k]];
        e->lvl[n] = (int8_t)lv;
    }
    return KF_OK;
}

/* ---- where values live (the node code itself is in emit_ops.c) ---- */

static const char *const indent[] = {"    ", "        ", "                ", "                  "};

static void opgen_init(emitter *e)
{
    e->g = (kfc_opgen){.p = e->p, .b = &e->b, .ctx = e, .comp = kfc_opgen_comp_vn,
                       .dst = kfc_opgen_dst_vn,
                       .each = kfc_buf_each, .indent = indent};
}

/* Variable pointers and nodes of one level, in index order (a valid
 * topological order). rowexpr[c]: the row index of category c at this level. */
static void emit_level(emitter *e, int lv, const char *const rowexpr[3])
{
    const char *in = indent[lv];
    for (int v = 0; v < KFC_MAX_VARS; v++) {
        if (!e->vdim[v])
            continue;
        int vl = LV_P;
        if (e->axis >= 0) {
            int role = kfc_role(e->vcat[v], e->axis);
            vl = role == KFC_ROLE_PARAM ? LV_P : role == KFC_ROLE_OUTER ? LV_O : LV_I;
        }
        if (vl != lv)
            continue;
        const char *row = rowexpr[e->vcat[v]];
        if (row)
            kfc_buf_printf(&e->b, "%sconst KF_T *v%d = (const KF_T *)args[%d] + %s * %d;\n", in, v, v,
                           row, (int)e->vdim[v]);
        else
            kfc_buf_printf(&e->b, "%sconst KF_T *v%d = (const KF_T *)args[%d];\n", in, v, v);
    }
    for (int32_t n = 0; n < e->p->nnodes; n++) {
        const kfc_node *x = &e->p->nodes[n];
        if (e->lvl[n] != lv || kfc_is_leaf(x))
            continue;
        kfc_buf_printf(&e->b, "%sKF_T n%d[%d]; /* %s */\n", in, (int)n, (int)x->dim,
                       kfc_op_info[x->op].name);
        kfc_opgen_node(&e->g, n, lv);
    }
}

/* ---- prelude: everything the generated code uses, declared by hand ---- */

static void prelude(kfc_buf *b, kf_dtype dtype)
{
    int f = dtype == KF_FLOAT32;
    kfc_buf_printf(b, "typedef long long kf_i64;\ntypedef %s KF_T;\n\n", f ? "float" : "double");
    /* Exactly the functions kernels/libm_syms.c binds (ops.def's MATH column);
     * nothing else is callable. */
    kfc_opgen_libm_protos(b);
    kfc_opgen_libm_macros(b, dtype, KFC_MATH_TCC);
    kfc_buf_printf(b, "#define KF_INF ((KF_T)(1.0/0.0))\n");
    /* unused: clang warns about unused static inline functions, gcc does not */
    kfc_buf_printf(b, "#define KF_HELPER static inline __attribute__((unused))\n\n");
    kfc_opgen_helpers(b, 0);
}

static char *finish(emitter *e)
{
    return kfc_opgen_finish(&e->b, e->lvl, 1, e->d);
}

static char *fail(emitter *e)
{
    return kfc_opgen_finish(&e->b, e->lvl, 0, e->d);
}

char *kfc_emit_c(const kfc_prog *p, const kfc_red *r, kfc_diag *d)
{
    if (kfc_verify(p, r, d))
        return NULL;
    emitter e = {.p = p, .axis = r->axis, .d = d};
    opgen_init(&e);
    /* formula2 only where the reduction reads it (kfc_red_setup rejects the rest) */
    int32_t r2 = kfc_red_info[r->id].formula2 ? p->root2 : -1;
    if (analyze(&e, p->root, r2))
        return fail(&e);
    kfc_buf_printf(&e.b,
                   "/* kforge kernel: %s over %s (axis %d), %s, sum scheme %s.\n"
                   " * Generated; self-contained. The ABI is in docs/kernels.md. */\n",
                   kfc_red_info[r->id].name, r->axis == 1 ? "j" : "i", r->axis, kf_dtype_name(r->dtype),
                   kf_sum_scheme_name(r->sum_scheme));
    prelude(&e.b, r->dtype);
    kfc_buf_printf(&e.b, KFC_REDUCE_HEAD);
    if (r->valdim > 0)
        kfc_buf_printf(&e.b, "    KF_T *kf_out = (KF_T *)out;\n");
    if (r->idxdim > 0)
        kfc_buf_printf(&e.b, "    kf_i64 *kf_idx = idx;\n");
    /* Which row index each category is read at, per level: outer at r, inner at j. */
    const char *outer_is_i = kfc_role(KFC_CAT_I, r->axis) == KFC_ROLE_OUTER ? "r" : "j";
    const char *outer_is_j = kfc_role(KFC_CAT_J, r->axis) == KFC_ROLE_OUTER ? "r" : "j";
    const char *rows[3] = {outer_is_i, outer_is_j, NULL};
    char f[32], g[32];
    kfc_buf_printf(&e.b, "    /* once per call */\n");
    emit_level(&e, LV_P, rows);
    for (int lv = LV_P; lv <= LV_I; lv++) {
        if (lv == LV_O) {
            kfc_buf_printf(&e.b, "    for (kf_i64 r = r0; r < r1; r++) {\n");
            kfc_buf_printf(&e.b, "        /* once per output row */\n");
            emit_level(&e, LV_O, rows);
        } else if (lv == LV_I) {
            kfc_skel_row_begin(&e.b, r);
            kfc_buf_printf(&e.b, KFC_RANGES_HEAD "                /* once per pair */\n");
            emit_level(&e, LV_I, rows);
        }
        kfc_opgen_root_array(&e.g, e.lvl, p->root, lv, "kf_f", f, sizeof f);
        if (r2 >= 0)
            kfc_opgen_root_array(&e.g, e.lvl, r2, lv, "kf_g", g, sizeof g);
    }
    kfc_skel_term(&e.b, r, f, r2 >= 0 ? g : NULL);
    kfc_buf_printf(&e.b, "            }\n        }\n");
    kfc_skel_row_end(&e.b, r);
    kfc_buf_printf(&e.b, "    }\n}\n");
    return finish(&e);
}

char *kfc_emit_c_formula(const kfc_prog *p, kf_dtype dtype, kfc_diag *d)
{
    if (kfc_verify(p, NULL, d))
        return NULL;
    emitter e = {.p = p, .axis = -1, .d = d};
    opgen_init(&e);
    if (analyze(&e, p->root, -1))
        return fail(&e);
    kfc_buf_printf(&e.b,
                   "/* kforge formula: out = F(i, j), %s; i indexes cat-0 variables, j cat-1.\n"
                   " * Generated; self-contained. */\n",
                   kf_dtype_name(dtype));
    prelude(&e.b, dtype);
    kfc_buf_printf(&e.b, "void kf_formula(const void *const *args, kf_i64 i, kf_i64 j, KF_T *out)\n{\n");
    const char *rows[3] = {"i", "j", NULL};
    emit_level(&e, LV_P, rows);
    char c[KFC_CAP];
    kfc_opgen_comp_vn(&e.g, p->root, "@", c, sizeof c);
    kfc_opgen_stmt(&e.g, LV_P, p->nodes[p->root].dim, "out[@] = %s;", c);
    kfc_buf_printf(&e.b, "}\n");
    return finish(&e);
}
