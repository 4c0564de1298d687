/*
 * emit_opt.c -- the checked AST and a reduction to C for the optimizing tier
 * (cc -O3 -march=native): the kernel ABI of kernels/abi.h, vectorized over
 * blocks of output rows (kernels/opt.h has the loop shape).
 *
 *   validate     kfc_emit_c's own validation (the two tiers accept the same ASTs)
 *   levels       P: constants/parameters, O: + outer variables (per row),
 *                J: + inner variables but no outer (per term, scalar),
 *                I: both (per term and lane, inside the vectorized loop)
 *   prelude      KF_T, KF_RB, inline exp/log (kernels/vmath.c), KF_* macros
 *   body         P once per call; per block of KF_RB rows: outer tiles and O
 *                nodes per lane; per visited term: J nodes, then the lane loop
 *                with the I nodes and the fold (kernels/skel_opt.c)
 *
 * Node n lives in pN[c] (P), oN[c][kf_l] (O), uN[c] (J) or tN[c] (I);
 * variables in vV[c] (parameters), xV[c][kf_l] (outer tile), yV[c] (inner,
 * read in place). Component loops up to KFK_OPT_UNROLL are unrolled so the
 * lane loop body is straight-line code. Only numbers and generated
 * identifiers reach the source: never text of the user's.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/opt.h"
#include "ir.h"

enum { LV_P = 0, LV_O = 1, LV_J = 2, LV_I = 3 }; /* bit 0: outer, bit 1: inner */

/* Lanes (rows per block) by dtype: one AVX2 vector of floats, two of doubles;
 * halved while the lane arrays would pass LANE_BUDGET values. */
#define RB_F32 8
#define RB_F64 8
#define LANE_BUDGET 65536

typedef struct emitter {
    const kfc_prog *p;
    kfk_buf b;
    int axis;
    int8_t *lvl;                /* per node: LV_*, or -1 when unreachable */
    int32_t vdim[KFC_MAX_VARS]; /* 0: variable unused */
    int8_t vlv[KFC_MAX_VARS];   /* LV_P, LV_O or LV_J */
    kfc_diag *d;
} emitter;

static int is_leaf(const kfc_node *x)
{
    return kfc_op_info[x->op].nargs == 0;
}

/* Reachability and levels. kfc_emit_c has validated every reachable node. */
static int analyze(emitter *e, int32_t root, int32_t root2)
{
    const kfc_prog *p = e->p;
    e->lvl = malloc((size_t)p->nnodes);
    if (!e->lvl)
        return kfc_diag_set(e->d, KF_ERR_NOMEM, -1, -1, "out of memory");
    memset(e->lvl, -1, (size_t)p->nnodes);
    e->lvl[root] = 0;
    if (root2 >= 0)
        e->lvl[root2] = 0;
    for (int32_t n = p->nnodes - 1; n >= 0; n--)
        if (e->lvl[n] >= 0)
            for (int k = 0; k < kfc_op_info[p->nodes[n].op].nargs; k++)
                e->lvl[p->nodes[n].a[k]] = 0;
    for (int32_t n = 0; n < p->nnodes; n++) {
        if (e->lvl[n] < 0)
            continue;
        const kfc_node *x = &p->nodes[n];
        int lv = LV_P;
        if (x->op == KFC_OP_VAR) {
            int v = (int)x->iv[0], role = kfc_role((int)x->iv[2], e->axis);
            lv = role == KFC_ROLE_PARAM ? LV_P : role == KFC_ROLE_OUTER ? LV_O : LV_J;
            e->vdim[v] = x->dim;
            e->vlv[v] = (int8_t)lv;
        }
        for (int k = 0; k < kfc_op_info[x->op].nargs; k++)
            lv |= e->lvl[x->a[k]];
        e->lvl[n] = (int8_t)lv;
    }
    return KF_OK;
}

/* ---- expressions ---- */

#define CAP 160 /* room for one component expression */

/* Component k (an index expression, possibly "@") of node n, broadcasting
 * dim-1 nodes, where it lives at its level. */
static void comp(const emitter *e, int32_t n, const char *k, char *dst, size_t cap)
{
    const kfc_node *x = &e->p->nodes[n];
    const char *kk = x->dim == 1 ? "0" : k;
    char lit[48];
    switch (x->op) {
    case KFC_OP_VAR: {
        int v = (int)x->iv[0];
        if (e->vlv[v] == LV_O)
            snprintf(dst, cap, "x%d[%s][kf_l]", v, kk);
        else
            snprintf(dst, cap, "%c%d[%s]", e->vlv[v] == LV_J ? 'y' : 'v', v, kk);
        return;
    }
    case KFC_OP_ZERO: snprintf(dst, cap, "(KF_T)0"); return;
    case KFC_OP_INTCST: kfk_fmt_double(lit, sizeof lit, (double)x->iv[0]); break;
    case KFC_OP_RATCST: kfk_fmt_double(lit, sizeof lit, (double)x->iv[0] / (double)x->iv[1]); break;
    case KFC_OP_NUM: kfk_fmt_double(lit, sizeof lit, x->val); break;
    default: {
        static const char pre[] = {'p', 'o', 'u', 't'};
        if (e->lvl[n] == LV_O)
            snprintf(dst, cap, "o%d[%s][kf_l]", (int)n, kk);
        else
            snprintf(dst, cap, "%c%d[%s]", pre[e->lvl[n]], (int)n, kk);
        return;
    }
    }
    snprintf(dst, cap, "((KF_T)%s)", lit);
}

/* Appends tmpl to t with $a $b $c replaced by the children's components at k
 * and $0 $1 by the integer arguments (as double literals). */
static void expand(const emitter *e, const kfc_node *x, const char *tmpl, const char *k, kfk_buf *t)
{
    for (const char *s = tmpl; *s; s++) {
        if (s[0] == '$' && s[1] >= 'a' && s[1] <= 'c') {
            char c[CAP];
            comp(e, x->a[s[1] - 'a'], k, c, sizeof c);
            kfk_buf_printf(t, "%s", c);
            s++;
        } else if (s[0] == '$' && (s[1] == '0' || s[1] == '1')) {
            char lit[48];
            kfk_fmt_double(lit, sizeof lit, (double)x->iv[s[1] - '0']);
            kfk_buf_printf(t, "%s", lit);
            s++;
        } else {
            kfk_buf_printf(t, "%c", *s);
        }
    }
}

/* Pow(f, m) by multiplications up to this |m| (vectorizable, a few ulps);
 * beyond it by pow(), as the libtcc tier does. */
#define POWI_MAX 64

/* The C template of an element-wise node: ops.def's, or Pow's and Round's. */
static void elementwise_template(const kfc_node *x, char *dst, size_t cap)
{
    if (x->op == KFC_OP_POW) {
        long long m = x->iv[0], am = m < 0 ? -m : m;
        const char *pre = m < 0 ? "((KF_T)1/" : "(", *post = ")";
        if (am <= POWI_MAX)
            snprintf(dst, cap, "%skf_powi($a,%lld)%s", pre, am, post);
        else
            snprintf(dst, cap, "%sKF_POW($a,(KF_T)%lld)%s", pre, am, post);
    } else if (x->op == KFC_OP_ROUND) {
        double s = 1;
        char lit[48];
        for (int64_t k = 0; k < x->iv[0]; k++)
            s *= 10;
        kfk_fmt_double(lit, sizeof lit, s);
        snprintf(dst, cap, "(KF_ROUND(($a)*(KF_T)%s)/(KF_T)%s)", lit, lit);
    } else {
        snprintf(dst, cap, "%s", kfc_op_info[x->op].cexpr);
    }
}

/* ---- statements ---- */

static const char *indent(int lv)
{
    static const char *const in[] = {"    ", "            ", "                ", "                    "};
    return in[lv];
}

/* Appends, once per component (unrolled or looped, see kfk_opt_each), the
 * statement built from fmt where the operands' components use index "@". */
static void each_stmt(emitter *e, int lv, int64_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void each_stmt(emitter *e, int lv, int64_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (!s) {
        e->b.oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(s, (size_t)len + 1, fmt, ap);
    va_end(ap);
    kfk_opt_each(&e->b, indent(lv), n, s);
    free(s);
}

static void emit_elementwise(emitter *e, int32_t n, int lv)
{
    const kfc_node *x = &e->p->nodes[n];
    char tmpl[200], dst[CAP];
    kfk_buf rhs = {0};
    elementwise_template(x, tmpl, sizeof tmpl);
    expand(e, x, tmpl, "@", &rhs);
    comp(e, n, "@", dst, sizeof dst);
    if (rhs.oom)
        e->b.oom = 1;
    else
        each_stmt(e, lv, x->dim, "%s = %s;", dst, rhs.s);
    free(rhs.s);
}

/* The ops with code of their own (NULL CEXPR in ops.def), as in emit_c.c:
 * accumulations start at 0 and run over ascending components. */
static void emit_special(emitter *e, int32_t n, int lv)
{
    const kfc_node *x = &e->p->nodes[n];
    const char *in = indent(lv);
    int32_t a = x->a[0], b2 = x->a[1], c3 = x->a[2];
    int32_t da = a >= 0 ? e->p->nodes[a].dim : 0, db = b2 >= 0 ? e->p->nodes[b2].dim : 0;
    int32_t dc = c3 >= 0 ? e->p->nodes[c3].dim : 0;
    char A[CAP], B[CAP], C[CAP] = "", ix[64], N0[CAP], NA[CAP], NK[CAP];
    kfk_buf *o = &e->b;
    comp(e, n, "0", N0, sizeof N0);
    comp(e, n, "@", NA, sizeof NA);
#define CA(k) comp(e, a, k, A, sizeof A)
#define CB(k) comp(e, b2, k, B, sizeof B)
#define CC(k) comp(e, c3, k, C, sizeof C)
    switch (x->op) {
    case KFC_OP_SUM:
    case KFC_OP_SQNORM2:
    case KFC_OP_NORM2:
        CA("@");
        kfk_buf_printf(o, "%s{ KF_T kf_a = 0;\n", in);
        if (x->op == KFC_OP_SUM)
            each_stmt(e, lv, da, "kf_a += %s;", A);
        else
            each_stmt(e, lv, da, "kf_a += %s * %s;", A, A);
        kfk_buf_printf(o, "%s  %s = %s; }\n", in, N0, x->op == KFC_OP_NORM2 ? "KF_SQRT(kf_a)" : "kf_a");
        return;
    case KFC_OP_MAX:
    case KFC_OP_MIN:
    case KFC_OP_ARGMAX:
    case KFC_OP_ARGMIN: {
        /* A NaN best is sticky, so the first NaN wins; otherwise strictly better. */
        int arg = x->op == KFC_OP_ARGMAX || x->op == KFC_OP_ARGMIN;
        const char *cmp = x->op == KFC_OP_MAX || x->op == KFC_OP_ARGMAX ? ">" : "<";
        CA("0");
        kfk_buf_printf(o, "%s{ KF_T kf_a = %s; KF_T kf_b = 0;\n", in, A);
        CA("@");
        each_stmt(e, lv, da,
                  "{ KF_T kf_v = %s; int kf_u = (kf_a == kf_a) & ((kf_v != kf_v) | (kf_v %s kf_a)); "
                  "kf_a = kf_u ? kf_v : kf_a; kf_b = kf_u ? (KF_T)(@) : kf_b; }",
                  A, cmp);
        kfk_buf_printf(o, "%s  %s = %s; (void)kf_b; }\n", in, N0, arg ? "kf_b" : "kf_a");
        return;
    }
    case KFC_OP_SCALPROD:
    case KFC_OP_SQDIST:
        CA("@"), CB("@");
        kfk_buf_printf(o, "%s{ KF_T kf_a = 0;\n", in);
        if (x->op == KFC_OP_SCALPROD)
            each_stmt(e, lv, da > db ? da : db, "kf_a += %s * %s;", A, B);
        else
            each_stmt(e, lv, da > db ? da : db, "{ KF_T kf_t = %s - %s; kf_a += kf_t * kf_t; }", A, B);
        kfk_buf_printf(o, "%s  %s = kf_a; }\n", in, N0);
        return;
    case KFC_OP_WEIGHTEDSQNORM:
    case KFC_OP_WEIGHTEDSQDIST: {
        /* s = A; f = B, or B - C for the distance. s is read by its dim:
         * 1 (isotropic, checked first so D = 1 takes it), D (diagonal), D*D. */
        int dist = x->op == KFC_OP_WEIGHTEDSQDIST;
        int32_t D = dist && dc > db ? dc : db;
        int full = da != 1 && da != D;
        char F[2 * CAP + 8], Fl[2 * CAP + 8];
        for (int w = 0; w < 2; w++) {
            const char *k = w ? "l" : full ? "k" : "@";
            CB(k);
            if (dist)
                CC(k);
            snprintf(w ? Fl : F, sizeof F, dist ? "(%s - %s)" : "%s", B, C);
        }
        kfk_buf_printf(o, "%s{ KF_T kf_a = 0;\n", in);
        if (da == 1) {
            CA("0");
            each_stmt(e, lv, D, "kf_a += %s * %s;", F, F);
            kfk_buf_printf(o, "%s  %s = %s * kf_a; }\n", in, N0, A);
        } else if (!full) {
            CA("@");
            each_stmt(e, lv, D, "kf_a += %s * %s * %s;", A, F, F);
            kfk_buf_printf(o, "%s  %s = kf_a; }\n", in, N0);
        } else {
            snprintf(ix, sizeof ix, "k*%d+l", (int)D);
            CA(ix);
            kfk_buf_printf(o, "%s  for (kf_i64 k = 0; k < %d; k++) for (kf_i64 l = 0; l < %d; l++) "
                              "kf_a += %s * %s * %s;\n",
                           in, (int)D, (int)D, F, A, Fl);
            kfk_buf_printf(o, "%s  %s = kf_a; }\n", in, N0);
        }
        return;
    }
    case KFC_OP_NORMALIZE:
        CA("@");
        kfk_buf_printf(o, "%s{ KF_T kf_a = 0;\n", in);
        each_stmt(e, lv, da, "kf_a += %s * %s;", A, A);
        kfk_buf_printf(o, "%s  kf_a = KF_RSQRT(kf_a);\n", in);
        each_stmt(e, lv, da, "%s = %s * kf_a;", NA, A);
        kfk_buf_printf(o, "%s}\n", in);
        return;
    case KFC_OP_ELEM:
        snprintf(ix, sizeof ix, "%d", (int)x->iv[0]);
        CA(ix);
        kfk_buf_printf(o, "%s%s = %s;\n", in, N0, A);
        return;
    case KFC_OP_ELEMT:
        CA("0");
        snprintf(ix, sizeof ix, "%d", (int)x->iv[1]);
        comp(e, n, ix, NK, sizeof NK);
        each_stmt(e, lv, x->dim, "%s = 0;", NA);
        kfk_buf_printf(o, "%s%s = %s;\n", in, NK, A);
        return;
    case KFC_OP_EXTRACT:
        snprintf(ix, sizeof ix, "%d+@", (int)x->iv[0]);
        CA(ix);
        each_stmt(e, lv, x->dim, "%s = %s;", NA, A);
        return;
    case KFC_OP_EXTRACTT:
        CA("@");
        snprintf(ix, sizeof ix, "%d+@", (int)x->iv[0]);
        comp(e, n, ix, NK, sizeof NK);
        each_stmt(e, lv, x->dim, "%s = 0;", NA);
        each_stmt(e, lv, da, "%s = %s;", NK, A);
        return;
    case KFC_OP_CONCAT:
        CA("@"), CB("@");
        snprintf(ix, sizeof ix, "%d+@", (int)da);
        comp(e, n, ix, NK, sizeof NK);
        each_stmt(e, lv, da, "%s = %s;", NA, A);
        each_stmt(e, lv, db, "%s = %s;", NK, B);
        return;
    case KFC_OP_ONEHOT:
        /* A NaN rounds to NaN, equal to no index: all zeros, like the reference. */
        CA("0");
        kfk_buf_printf(o, "%s{ KF_T kf_r = KF_ROUND(%s);\n", in, A);
        each_stmt(e, lv, x->dim, "%s = kf_r == (KF_T)(@) ? (KF_T)1 : (KF_T)0;", NA);
        kfk_buf_printf(o, "%s}\n", in);
        return;
    case KFC_OP_SUMT:
        CA("0");
        each_stmt(e, lv, x->dim, "%s = %s;", NA, A);
        return;
    case KFC_OP_MATVECMULT:
        snprintf(ix, sizeof ix, "k*%d+l", (int)db);
        CA(ix), CB("l");
        comp(e, n, "k", NK, sizeof NK);
        kfk_buf_printf(o, "%sfor (kf_i64 k = 0; k < %d; k++) { KF_T kf_a = 0; "
                          "for (kf_i64 l = 0; l < %d; l++) kf_a += %s * %s; %s = kf_a; }\n",
                       in, (int)x->dim, (int)db, A, B, NK);
        return;
    case KFC_OP_VECMATMULT:
        snprintf(ix, sizeof ix, "k*%d+l", (int)x->dim);
        CA("k"), CB(ix);
        comp(e, n, "l", NK, sizeof NK);
        kfk_buf_printf(o, "%sfor (kf_i64 l = 0; l < %d; l++) { KF_T kf_a = 0; "
                          "for (kf_i64 k = 0; k < %d; k++) kf_a += %s * %s; %s = kf_a; }\n",
                       in, (int)x->dim, (int)da, A, B, NK);
        return;
    case KFC_OP_TENSORPROD:
        CA("k"), CB("l");
        snprintf(ix, sizeof ix, "k*%d+l", (int)db);
        comp(e, n, ix, NK, sizeof NK);
        kfk_buf_printf(o, "%sfor (kf_i64 k = 0; k < %d; k++) for (kf_i64 l = 0; l < %d; l++) "
                          "%s = %s * %s;\n",
                       in, (int)da, (int)db, NK, A, B);
        return;
    default:
        return;
    }
#undef CA
#undef CB
#undef CC
}

/* Declarations and code of the nodes of one level, in index order. */
static void emit_nodes(emitter *e, int lv, int declare_only)
{
    for (int32_t n = 0; n < e->p->nnodes; n++) {
        const kfc_node *x = &e->p->nodes[n];
        if (e->lvl[n] != lv || is_leaf(x))
            continue;
        if (declare_only) {
            kfk_buf_printf(&e->b, "        KF_T o%d[%d][KF_RB]; /* %s */\n", (int)n, (int)x->dim,
                           kfc_op_info[x->op].name);
            continue;
        }
        if (lv != LV_O)
            kfk_buf_printf(&e->b, "%sKF_T %c%d[%d]; /* %s */\n", indent(lv), "pout"[lv], (int)n,
                           (int)x->dim, kfc_op_info[x->op].name);
        if (kfc_op_info[x->op].cexpr || x->op == KFC_OP_POW || x->op == KFC_OP_ROUND)
            emit_elementwise(e, n, lv);
        else
            emit_special(e, n, lv);
    }
}

/* ---- prelude: types, inline math, macros; no #include ---- */

static void prelude(kfk_buf *b, kf_dtype dtype, int rb)
{
    int f = dtype == KF_FLOAT32;
    const char *sfx = f ? "f" : "";
    kfk_buf_printf(b, "typedef long long kf_i64;\ntypedef %s KF_T;\n#define KF_RB %d\n", f ? "float" : "double", rb);
    /* The loop over the lanes of a block. Not unrolled: GCC would otherwise
     * unroll its KF_RB iterations before the loop vectorizer sees it and
     * leave the pieces to the weaker basic-block vectorizer (measured 2-3x
     * slower on KMin). The vectorized loop is one iteration anyway. */
    kfk_buf_printf(b, "#define KF_LANES _Pragma(\"GCC unroll 1\") for (int kf_l = 0; kf_l < KF_RB; kf_l++)\n\n");
    kfk_buf_printf(b, "%s\n", kfk_vmath_source(dtype));
    /* exp/log inline; sqrt, fabs, floor become instructions (-fno-math-errno);
     * the rest are libm calls, which keep their loop scalar but correct. */
    kfk_buf_printf(b, "#define KF_EXP(x) kf_vexp(x)\n#define KF_LOG(x) kf_vlog(x)\n");
    static const char *const unary[][2] = {
        {"SIN", "sin"},   {"COS", "cos"},   {"ASIN", "asin"},   {"ACOS", "acos"},  {"ATAN", "atan"},
        {"SQRT", "sqrt"}, {"FABS", "fabs"}, {"FLOOR", "floor"}, {"ROUND", "round"},
    };
    for (size_t k = 0; k < sizeof unary / sizeof unary[0]; k++)
        kfk_buf_printf(b, "#define KF_%s(x) __builtin_%s%s(x)\n", unary[k][0], unary[k][1], sfx);
    kfk_buf_printf(b, "#define KF_ATAN2(x, y) __builtin_atan2%s(x, y)\n#define KF_POW(x, y) __builtin_pow%s(x, y)\n",
                   sfx, sfx);
    kfk_buf_printf(b, "#define KF_INF ((KF_T)__builtin_inf())\n");
    kfk_buf_printf(b, "#define KF_HELPER static inline __attribute__((always_inline, unused))\n\n");
    /* The libtcc tier's helpers (emit_c.c), written as selects so they
     * vectorize; same NaN and zero rules. */
    kfk_buf_printf(
        b,
        "KF_HELPER KF_T kf_rsqrt(KF_T x) { return x == 0 ? (KF_T)0 : (KF_T)1 / KF_SQRT(x); }\n"
        "KF_HELPER KF_T kf_sign(KF_T x) { KF_T s = x > 0 ? (KF_T)1 : x < 0 ? (KF_T)-1 : (KF_T)0; return x != x ? x : s; }\n"
        "KF_HELPER KF_T kf_step(KF_T x) { KF_T s = x >= 0 ? (KF_T)1 : (KF_T)0; return x != x ? x : s; }\n"
        "KF_HELPER KF_T kf_relu(KF_T x) { return x != x ? x : x >= 0 ? x : (KF_T)0; }\n"
        "KF_HELPER KF_T kf_xlogx(KF_T x) { return x == 0 ? (KF_T)0 : x * KF_LOG(x); }\n"
        "KF_HELPER KF_T kf_sinxdivx(KF_T x) { return x == 0 ? (KF_T)1 : KF_SIN(x) / x; }\n"
        "KF_HELPER KF_T kf_clamp(KF_T x, KF_T a, KF_T b)\n"
        "{\n"
        "    KF_T y = x < a ? a : x;\n"
        "    y = y > b ? b : y;\n"
        "    y = b != b ? b : y;\n"
        "    y = a != a ? a : y;\n"
        "    return x != x ? x : y;\n"
        "}\n"
        "KF_HELPER KF_T kf_mod(KF_T x, KF_T n, KF_T d) { return x - n * KF_FLOOR((x - d) / n); }\n"
        "/* x^m, m >= 0, by squaring (m is a constant: the loop unrolls) */\n"
        "KF_HELPER KF_T kf_powi(KF_T x, int m)\n"
        "{\n"
        "    KF_T r = 1;\n"
        "    while (m) {\n"
        "        if (m & 1)\n"
        "            r = r * x;\n"
        "        m >>= 1;\n"
        "        if (m)\n"
        "            x = x * x;\n"
        "    }\n"
        "    return r;\n"
        "}\n"
        "#define KF_RSQRT(x) kf_rsqrt(x)\n#define KF_SIGN(x) kf_sign(x)\n#define KF_STEP(x) kf_step(x)\n"
        "#define KF_RELU(x) kf_relu(x)\n#define KF_XLOGX(x) kf_xlogx(x)\n#define KF_SINXDIVX(x) kf_sinxdivx(x)\n"
        "#define KF_CLAMP(x, a, b) kf_clamp(x, a, b)\n#define KF_MOD(x, n, d) kf_mod(x, n, d)\n\n");
}

/* Lanes per block: the dtype's default, halved while the per-lane arrays
 * (outer tiles, O nodes, reduction state) would pass the stack budget. */
static int lanes(const emitter *e, const kfc_red *r)
{
    int64_t per = kfk_opt_state_values(r);
    for (int v = 0; v < KFC_MAX_VARS; v++)
        if (e->vdim[v] && e->vlv[v] == LV_O)
            per += e->vdim[v];
    for (int32_t n = 0; n < e->p->nnodes; n++)
        if (e->lvl[n] == LV_O)
            per += e->p->nodes[n].dim;
    int rb = r->dtype == KF_FLOAT32 ? RB_F32 : RB_F64;
    while (rb > 1 && per * rb > LANE_BUDGET)
        rb /= 2;
    return rb;
}

/* The term's components as a template ('@'): where the root lives. */
static void root_template(const emitter *e, int32_t root, char *dst, size_t cap)
{
    char c[CAP];
    comp(e, root, "@", c, sizeof c);
    snprintf(dst, cap, "%s", c);
}

static char *fail(emitter *e)
{
    free(e->lvl);
    free(e->b.s);
    return NULL;
}

char *kfc_emit_c_opt(const kfc_prog *p, const kfc_red *r, kfc_diag *d)
{
    emitter e = {.p = p, .axis = r->axis, .d = d};
    /* The libtcc emitter validates the AST and the reduction against it (an
     * inconsistent one is KF_ERR_INTERNAL there); both tiers accept the same. */
    char *check = kfc_emit_c(p, r, d);
    if (!check)
        return NULL;
    free(check);
    int32_t r2 = kfc_red_info[r->id].formula2 ? p->root2 : -1;
    if (analyze(&e, p->root, r2))
        return fail(&e);
    int rb = lanes(&e, r);
    static const char *const scheme[] = {"auto", "block", "direct", "f64", "kahan"};
    kfk_buf_printf(&e.b,
                   "/* kforge kernel, optimizing tier: %s over %s (axis %d), %s, sum scheme %s.\n"
                   " * Generated; self-contained; vectorized over blocks of KF_RB output rows.\n"
                   " * The ABI is in docs/kernels.md, the loop shape in kernels/opt.h. */\n",
                   kfc_red_info[r->id].name, r->axis == 1 ? "j" : "i", r->axis,
                   r->dtype == KF_FLOAT32 ? "float32" : "float64",
                   r->sum_scheme >= 0 && r->sum_scheme <= 4 ? scheme[r->sum_scheme] : "?");
    prelude(&e.b, r->dtype, rb);
    kfk_buf_printf(&e.b, "void kf_reduce(const void *const *args, kf_i64 r0, kf_i64 r1, const kf_i64 *jr,\n"
                         "               kf_i64 nr, void *out, kf_i64 *idx)\n{\n");
    kfk_buf_printf(&e.b, "    KF_T *kf_out = (KF_T *)out;\n    kf_i64 *kf_idx = idx;\n"
                         "    (void)kf_out;\n    (void)kf_idx;\n");
    kfk_buf_printf(&e.b, "    /* once per call */\n");
    for (int v = 0; v < KFC_MAX_VARS; v++)
        if (e.vdim[v] && e.vlv[v] == LV_P)
            kfk_buf_printf(&e.b, "    const KF_T *v%d = (const KF_T *)args[%d];\n", v, v);
    emit_nodes(&e, LV_P, 0);
    /* per block of rows: outer tiles (lanes past the last row repeat row
     * kf_rb, so they compute on real data and are never written) and O nodes */
    kfk_buf_printf(&e.b, "    for (kf_i64 kf_rb = r0; kf_rb < r1; kf_rb += KF_RB) {\n"
                         "        kf_i64 kf_nb = r1 - kf_rb < KF_RB ? r1 - kf_rb : KF_RB;\n");
    for (int v = 0; v < KFC_MAX_VARS; v++)
        if (e.vdim[v] && e.vlv[v] == LV_O)
            kfk_buf_printf(&e.b, "        KF_T x%d[%d][KF_RB];\n", v, (int)e.vdim[v]);
    emit_nodes(&e, LV_O, 1);
    kfk_buf_printf(&e.b, "        KF_LANES {\n"
                         "            kf_i64 kf_row = kf_rb + (kf_l < kf_nb ? kf_l : 0);\n"
                         "            (void)kf_row;\n");
    for (int v = 0; v < KFC_MAX_VARS; v++)
        if (e.vdim[v] && e.vlv[v] == LV_O) {
            kfk_buf_printf(&e.b, "            { const KF_T *kf_p = (const KF_T *)args[%d] + kf_row * %d;\n", v,
                           (int)e.vdim[v]);
            each_stmt(&e, LV_J, e.vdim[v], "x%d[@][kf_l] = kf_p[@];", v);
            kfk_buf_printf(&e.b, "            }\n");
        }
    emit_nodes(&e, LV_O, 0);
    kfk_buf_printf(&e.b, "        }\n");
    kfk_opt_begin(&e.b, r);
    kfk_buf_printf(&e.b, "        for (kf_i64 q = 0; q < nr; q++) {\n"
                         "            for (kf_i64 j = jr[2 * q]; j < jr[2 * q + 1]; j++) {\n");
    for (int v = 0; v < KFC_MAX_VARS; v++)
        if (e.vdim[v] && e.vlv[v] == LV_J)
            kfk_buf_printf(&e.b, "                const KF_T *y%d = (const KF_T *)args[%d] + j * %d;\n", v, v,
                           (int)e.vdim[v]);
    emit_nodes(&e, LV_J, 0);
    kfk_buf_printf(&e.b, "                KF_LANES {\n");
    emit_nodes(&e, LV_I, 0);
    char f[CAP], g[CAP];
    root_template(&e, p->root, f, sizeof f);
    if (r2 >= 0)
        root_template(&e, r2, g, sizeof g);
    kfk_opt_term(&e.b, r, f, r2 >= 0 ? g : NULL);
    kfk_buf_printf(&e.b, "                }\n");
    kfk_opt_after(&e.b, r);
    kfk_buf_printf(&e.b, "            }\n        }\n");
    kfk_opt_end(&e.b, r);
    kfk_buf_printf(&e.b, "    }\n}\n");
    free(e.lvl);
    if (e.b.oom || !e.b.s) {
        free(e.b.s);
        kfc_diag_set(d, KF_ERR_NOMEM, -1, -1, "out of memory");
        return NULL;
    }
    return e.b.s;
}
