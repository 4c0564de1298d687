/*
 * emit_ops.c -- each formula op's generated C, once for both tiers: the
 * element-wise templates of ops.def (real and complex; Pow and Round built
 * here) and the ops with code of their own (reductions over components,
 * Scalprod/SqDist, WeightedSqNorm/Dist, Normalize, Elem/Extract/Concat/
 * OneHot/SumT, MatVecMult/VecMatMult/TensorProd, TensorDot, BSpline, the
 * soft-DTW pair SoftDTW_SqDist/GradSoftDTW_SqDist, ComplexSum), plus the
 * prelude helpers they call.
 * Where the tiers put values and how they loop is the kfc_opgen's business.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/emit/emit_ops.h"

/* ---- what every emitter does around the nodes ---- */

int kfc_opgen_reach(const kfc_prog *p, int32_t root, int32_t root2, int8_t **lvl, kfc_diag *d)
{
    return kfc_reach(p, root, root2, lvl, d);
}

void kfc_opgen_comp_vn(const kfc_opgen *g, int32_t n, const char *k, char *dst, size_t cap)
{
    const kfc_node *x = &g->p->nodes[n];
    const char *kk = x->dim == 1 ? "0" : k;
    if (kfc_opgen_literal(x, dst, cap))
        return;
    if (x->op == KFC_OP_VAR)
        snprintf(dst, cap, "v%d[%s]", (int)x->iv[0], kk);
    else
        snprintf(dst, cap, "n%d[%s]", (int)n, kk);
}

void kfc_opgen_dst_vn(const kfc_opgen *g, int32_t n, const char *k, char *dst, size_t cap)
{
    (void)g;
    snprintf(dst, cap, "n%d[%s]", (int)n, k);
}

int kfc_opgen_levels(const kfc_prog *p, int32_t root, int32_t root2, int axis, int8_t **lvl,
                     int32_t *vdim, int8_t *vlv, kfc_diag *d)
{
    int st = kfc_opgen_reach(p, root, root2, lvl, d);
    if (st)
        return st;
    int8_t *l = *lvl;
    /* children have smaller indices: one pass upwards sees them first */
    for (int32_t n = 0; n < p->nnodes; n++) {
        if (l[n] < 0)
            continue;
        const kfc_node *x = &p->nodes[n];
        int lv = 0;
        if (x->op == KFC_OP_VAR) {
            int v = (int)x->iv[0], role = kfc_role((int)x->iv[2], axis);
            lv = role == KFC_ROLE_PARAM ? 0 : role == KFC_ROLE_OUTER ? KFC_LV_OUTER : KFC_LV_INNER;
            vdim[v] = x->dim;
            vlv[v] = (int8_t)lv;
        }
        for (int k = 0; k < kfc_op_info[x->op].nargs; k++)
            lv |= l[x->a[k]];
        l[n] = (int8_t)lv;
    }
    return KF_OK;
}

void kfc_opgen_root_array(const kfc_opgen *g, const int8_t *lvl, int32_t root, int lv,
                          const char *name, char *dst, size_t cap)
{
    const kfc_node *x = &g->p->nodes[root];
    if (!kfc_is_leaf(x)) {
        snprintf(dst, cap, "n%d", (int)root);
        return;
    }
    snprintf(dst, cap, "%s", name);
    if (lvl[root] != lv)
        return;
    char c[KFC_CAP];
    g->comp(g, root, "@", c, sizeof c);
    kfc_buf_printf(g->b, "%sKF_T %s[%d];\n", g->indent[lv], name, (int)x->dim);
    kfc_opgen_stmt(g, lv, x->dim, "%s[@] = %s;", name, c);
}

char *kfc_opgen_finish(kfc_buf *b, int8_t *lvl, int ok, kfc_diag *d)
{
    free(lvl);
    if (ok && (b->oom || !b->s)) {
        kfc_diag_set(d, KF_ERR_NOMEM, -1, -1, "out of memory");
        ok = 0;
    }
    if (!ok) {
        free(b->s);
        return NULL;
    }
    return b->s;
}

int kfc_opgen_literal(const kfc_node *x, char *dst, size_t cap)
{
    char lit[48];
    switch (x->op) {
    case KFC_OP_ZERO: snprintf(dst, cap, "(KF_T)0"); return 1;
    case KFC_OP_INTCST: kfc_fmt_double(lit, sizeof lit, (double)x->iv[0]); break;
    case KFC_OP_RATCST: kfc_fmt_double(lit, sizeof lit, (double)x->iv[0] / (double)x->iv[1]); break;
    case KFC_OP_NUM: kfc_fmt_double(lit, sizeof lit, x->val); break;
    default: return 0;
    }
    snprintf(dst, cap, "((KF_T)%s)", lit);
    return 1;
}

void kfc_opgen_stmt(const kfc_opgen *g, int lv, int64_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = len >= 0 ? malloc((size_t)len + 1) : NULL;
    if (!s) {
        g->b->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(s, (size_t)len + 1, fmt, ap);
    va_end(ap);
    g->each(g->b, g->indent[lv], n, s);
    free(s);
}

/* ---- sums over components ---- */

/* A sum over n components opens "{ KF_T kf_a" and returns the accumulator
 * its statements add to. One accumulator makes a chain of n dependent adds
 * (4 cycles each), and at D = 64 the loop over j waited on that chain, not
 * on the FMA pipes: the optimizing tier splits a sum of 8 to split_max
 * (unrolled) components into 4 partial sums, component k into kf_s[k & 3]
 * (a constant index, so GCC keeps each in a register), added pairwise at the
 * end. That reassociates the components' sum (not the reduction's over j),
 * at least as accurately; docs/performance.md. */
static int split_sum(const kfc_opgen *g, int64_t n)
{
    return g->split_max > 0 && n >= 8 && n <= g->split_max;
}

static const char *sum_open(const kfc_opgen *g, kfc_buf *o, const char *in, int64_t n)
{
    if (!split_sum(g, n)) {
        kfc_buf_printf(o, "%s{ KF_T kf_a = 0;\n", in);
        return "kf_a";
    }
    kfc_buf_printf(o, "%s{ KF_T kf_a, kf_s[4] = {0, 0, 0, 0};\n", in);
    return "kf_s[@ & 3]";
}

static void sum_close(const kfc_opgen *g, kfc_buf *o, const char *in, int64_t n)
{
    if (split_sum(g, n))
        kfc_buf_printf(o, "%s  kf_a = (kf_s[0] + kf_s[1]) + (kf_s[2] + kf_s[3]);\n", in);
}

/* ---- element-wise ops ---- */

/* Appends tmpl (up to end) to t with $a $b $c replaced by the children's
 * components at k, $ar $ai ... by the re and im of their complex component k
 * (a dim-2 child is one complex number: 0 and 1; dim-1 children are
 * broadcast by comp), and $0 $1 by the integer arguments (as double literals). */
static void expand(const kfc_opgen *g, const kfc_node *x, const char *tmpl, const char *end, const char *k,
                   kfc_buf *t)
{
    for (const char *s = tmpl; s < end; s++) {
        if (s[0] == '$' && s[1] >= 'a' && s[1] <= 'c') {
            char c[KFC_CAP], ix[64];
            int32_t ch = x->a[s[1] - 'a'];
            const char *at = k;
            if (s[2] == 'r' || s[2] == 'i') {
                int im = s[2] == 'i';
                if (g->p->nodes[ch].dim == 2)
                    snprintf(ix, sizeof ix, "%d", im);
                else
                    snprintf(ix, sizeof ix, "2*%s%s", k, im ? "+1" : "");
                at = ix;
                s++;
            }
            g->comp(g, ch, at, c, sizeof c);
            kfc_buf_printf(t, "%s", c);
            s++;
        } else if (s[0] == '$' && (s[1] == '0' || s[1] == '1')) {
            /* As a double literal: the templates use them as reals, and an
             * int64 extreme has no valid C integer literal. */
            char lit[48];
            kfc_fmt_double(lit, sizeof lit, (double)x->iv[s[1] - '0']);
            kfc_buf_printf(t, "%s", lit);
            s++;
        } else {
            kfc_buf_printf(t, "%c", *s);
        }
    }
}

/* The C template of an element-wise node: ops.def's (returned), or Pow's
 * and Round's (built in dst). */
static const char *elementwise_template(const kfc_opgen *g, const kfc_node *x, char *dst, size_t cap)
{
    if (x->op == KFC_OP_POW) {
        long long m = x->iv[0], am = m < 0 ? -m : m;
        const char *pre = m < 0 ? "((KF_T)1/" : "(", *post = ")";
        /* m = 0: pow(f, 0) is 1 even for NaN, as the shared semantics ask.
         * kf_powi (optimizing tier) vectorizes, within a few ulps. */
        if (g->powi_max > 0 && am <= g->powi_max)
            snprintf(dst, cap, "%skf_powi($a,%lld)%s", pre, am, post);
        else if (am == 1)
            snprintf(dst, cap, "%s($a)%s", pre, post);
        else if (am == 2)
            snprintf(dst, cap, "%s(($a)*($a))%s", pre, post);
        else
            snprintf(dst, cap, "%sKF_POW($a,(KF_T)%lld)%s", pre, am, post);
    } else if (x->op == KFC_OP_ROUND) {
        /* 10^d by exact multiplications, as the reference does. */
        double s = 1;
        char lit[48];
        for (int64_t k = 0; k < x->iv[0]; k++)
            s *= 10;
        kfc_fmt_double(lit, sizeof lit, s);
        snprintf(dst, cap, "(KF_ROUND(($a)*(KF_T)%s)/(KF_T)%s)", lit, lit);
    } else {
        return kfc_op_info[x->op].cexpr;
    }
    return dst;
}

/* One statement per component, or for a complex template "RE;IM" one pair
 * of statements per complex component of the result (dim / 2 of them). */
static void emit_elementwise(const kfc_opgen *g, int32_t n, int lv)
{
    const kfc_node *x = &g->p->nodes[n];
    char buf[200], dst[KFC_CAP], dst2[KFC_CAP];
    kfc_buf rhs = {0}, rhs2 = {0};
    const char *tmpl = elementwise_template(g, x, buf, sizeof buf), *semi = strchr(tmpl, ';');
    if (!semi) {
        expand(g, x, tmpl, tmpl + strlen(tmpl), "@", &rhs);
        g->dst(g, n, "@", dst, sizeof dst);
    } else {
        expand(g, x, tmpl, semi, "@", &rhs);
        expand(g, x, semi + 1, semi + strlen(semi), "@", &rhs2);
        g->dst(g, n, "2*@", dst, sizeof dst);
        g->dst(g, n, "2*@+1", dst2, sizeof dst2);
    }
    if (rhs.oom || rhs2.oom)
        g->b->oom = 1;
    else if (!semi)
        kfc_opgen_stmt(g, lv, x->dim, "%s = %s;", dst, rhs.s);
    else
        kfc_opgen_stmt(g, lv, x->dim / 2, "%s = %s; %s = %s;", dst, rhs.s, dst2, rhs2.s);
    free(rhs.s);
    free(rhs2.s);
}

/* ---- the ops with code of their own ---- */

/* NULL CEXPR in ops.def. Accumulations start at 0 and run over ascending
 * components, the reference's order, so float64 results agree with it to the
 * last bit wherever libm is not involved. */
static void emit_special(const kfc_opgen *g, int32_t n, int lv)
{
    const kfc_node *x = &g->p->nodes[n];
    const char *in = g->indent[lv];
    int32_t a = x->a[0], b2 = x->a[1], c3 = x->a[2];
    int32_t da = a >= 0 ? g->p->nodes[a].dim : 0, db = b2 >= 0 ? g->p->nodes[b2].dim : 0;
    int32_t dc = c3 >= 0 ? g->p->nodes[c3].dim : 0;
    char A[KFC_CAP], B[KFC_CAP], C[KFC_CAP] = "", ix[64], N0[KFC_CAP], NA[KFC_CAP], NK[KFC_CAP];
    kfc_buf *o = g->b;
    g->dst(g, n, "0", N0, sizeof N0);
    g->dst(g, n, "@", NA, sizeof NA);
#define CA(k) g->comp(g, a, k, A, sizeof A)
#define CB(k) g->comp(g, b2, k, B, sizeof B)
#define CC(k) g->comp(g, c3, k, C, sizeof C)
#define NK_AT(...) (snprintf(ix, sizeof ix, __VA_ARGS__), g->dst(g, n, ix, NK, sizeof NK))
    switch (x->op) {
    case KFC_OP_SUM:
    case KFC_OP_SQNORM2:
    case KFC_OP_NORM2: {
        CA("@");
        const char *acc = sum_open(g, o, in, da);
        if (x->op == KFC_OP_SUM)
            kfc_opgen_stmt(g, lv, da, "%s += %s;", acc, A);
        else
            kfc_opgen_stmt(g, lv, da, "%s += %s * %s;", acc, A, A);
        sum_close(g, o, in, da);
        kfc_buf_printf(o, "%s  %s = %s; }\n", in, N0, x->op == KFC_OP_NORM2 ? "KF_SQRT(kf_a)" : "kf_a");
        return;
    }
    case KFC_OP_MAX:
    case KFC_OP_MIN:
    case KFC_OP_ARGMAX:
    case KFC_OP_ARGMIN: {
        /* A NaN best is sticky, so the first NaN wins; otherwise strictly better. */
        int arg = x->op == KFC_OP_ARGMAX || x->op == KFC_OP_ARGMIN;
        const char *cmp = x->op == KFC_OP_MAX || x->op == KFC_OP_ARGMAX ? ">" : "<";
        CA("0");
        kfc_buf_printf(o, "%s{ KF_T kf_a = %s; %s kf_b = 0;\n", in, A, g->selects ? "KF_T" : "kf_i64");
        CA("@");
        if (g->selects)
            kfc_opgen_stmt(g, lv, da,
                           "{ KF_T kf_v = %s; int kf_u = (kf_a == kf_a) & ((kf_v != kf_v) | (kf_v %s kf_a)); "
                           "kf_a = kf_u ? kf_v : kf_a; kf_b = kf_u ? (KF_T)(@) : kf_b; }",
                           A, cmp);
        else
            kfc_opgen_stmt(g, lv, da,
                           "{ KF_T kf_v = %s; if (kf_a == kf_a && (kf_v != kf_v || kf_v %s kf_a)) "
                           "{ kf_a = kf_v; kf_b = @; } }",
                           A, cmp);
        kfc_buf_printf(o, "%s  %s = %s; (void)kf_b; }\n", in, N0,
                       !arg ? "kf_a" : g->selects ? "kf_b" : "(KF_T)kf_b");
        return;
    }
    case KFC_OP_SCALPROD:
    case KFC_OP_SQDIST: {
        CA("@"), CB("@");
        int32_t dn = da > db ? da : db;
        const char *acc = sum_open(g, o, in, dn);
        if (x->op == KFC_OP_SCALPROD)
            kfc_opgen_stmt(g, lv, dn, "%s += %s * %s;", acc, A, B);
        else
            kfc_opgen_stmt(g, lv, dn, "{ KF_T kf_t = %s - %s; %s += kf_t * kf_t; }", A, B, acc);
        sum_close(g, o, in, dn);
        kfc_buf_printf(o, "%s  %s = kf_a; }\n", in, N0);
        return;
    }
    case KFC_OP_WEIGHTEDSQNORM:
    case KFC_OP_WEIGHTEDSQDIST: {
        /* s = A; f = B, or B - C for the distance. s is read by its dim:
         * 1 (isotropic, checked first so D = 1 takes it), D (diagonal), D*D. */
        int dist = x->op == KFC_OP_WEIGHTEDSQDIST;
        int32_t D = dist && dc > db ? dc : db;
        int full = da != 1 && da != D;
        char F[2 * KFC_CAP + 8], Fl[2 * KFC_CAP + 8];
        for (int w = 0; w < 2; w++) {
            const char *k = w ? "l" : full ? "k" : "@";
            CB(k);
            if (dist)
                CC(k);
            snprintf(w ? Fl : F, sizeof F, dist ? "(%s - %s)" : "%s", B, C);
        }
        kfc_buf_printf(o, "%s{ KF_T kf_a = 0;\n", in);
        if (da == 1) {
            CA("0");
            kfc_opgen_stmt(g, lv, D, "kf_a += %s * %s;", F, F);
            kfc_buf_printf(o, "%s  %s = %s * kf_a; }\n", in, N0, A);
        } else if (!full) {
            CA("@");
            kfc_opgen_stmt(g, lv, D, "kf_a += %s * %s * %s;", A, F, F);
            kfc_buf_printf(o, "%s  %s = kf_a; }\n", in, N0);
        } else {
            snprintf(ix, sizeof ix, "k*%d+l", (int)D);
            CA(ix);
            kfc_buf_printf(o, "%s  for (kf_i64 k = 0; k < %d; k++) for (kf_i64 l = 0; l < %d; l++) "
                              "kf_a += %s * %s * %s;\n",
                           in, (int)D, (int)D, F, A, Fl);
            kfc_buf_printf(o, "%s  %s = kf_a; }\n", in, N0);
        }
        return;
    }
    case KFC_OP_NORMALIZE:
        CA("@");
        kfc_buf_printf(o, "%s{ KF_T kf_a = 0;\n", in);
        kfc_opgen_stmt(g, lv, da, "kf_a += %s * %s;", A, A);
        kfc_buf_printf(o, "%s  kf_a = KF_RSQRT(kf_a);\n", in);
        kfc_opgen_stmt(g, lv, da, "%s = %s * kf_a;", NA, A);
        kfc_buf_printf(o, "%s}\n", in);
        return;
    case KFC_OP_ELEM:
        snprintf(ix, sizeof ix, "%d", (int)x->iv[0]);
        CA(ix);
        kfc_buf_printf(o, "%s%s = %s;\n", in, N0, A);
        return;
    case KFC_OP_ELEMT:
        CA("0");
        NK_AT("%d", (int)x->iv[1]);
        kfc_opgen_stmt(g, lv, x->dim, "%s = 0;", NA);
        kfc_buf_printf(o, "%s%s = %s;\n", in, NK, A);
        return;
    case KFC_OP_EXTRACT:
        snprintf(ix, sizeof ix, "%d+@", (int)x->iv[0]);
        CA(ix);
        kfc_opgen_stmt(g, lv, x->dim, "%s = %s;", NA, A);
        return;
    case KFC_OP_EXTRACTT:
        CA("@");
        NK_AT("%d+@", (int)x->iv[0]);
        kfc_opgen_stmt(g, lv, x->dim, "%s = 0;", NA);
        kfc_opgen_stmt(g, lv, da, "%s = %s;", NK, A);
        return;
    case KFC_OP_CONCAT:
        CA("@"), CB("@");
        NK_AT("%d+@", (int)da);
        kfc_opgen_stmt(g, lv, da, "%s = %s;", NA, A);
        kfc_opgen_stmt(g, lv, db, "%s = %s;", NK, B);
        return;
    case KFC_OP_ONEHOT:
        /* A NaN rounds to NaN, equal to no index: all zeros, like the reference. */
        CA("0");
        kfc_buf_printf(o, "%s{ KF_T kf_r = KF_ROUND(%s);\n", in, A);
        kfc_opgen_stmt(g, lv, x->dim, "%s = kf_r == (KF_T)(@) ? (KF_T)1 : (KF_T)0;", NA);
        kfc_buf_printf(o, "%s}\n", in);
        return;
    case KFC_OP_SUMT:
        CA("0");
        kfc_opgen_stmt(g, lv, x->dim, "%s = %s;", NA, A);
        return;
    case KFC_OP_COMPLEXSUM: {
        /* both sums from 0 over ascending components, as the reference */
        char AI[KFC_CAP], N1[KFC_CAP];
        CA("2*@");
        g->comp(g, a, "2*@+1", AI, sizeof AI);
        g->dst(g, n, "1", N1, sizeof N1);
        kfc_buf_printf(o, "%s{ KF_T kf_a = 0, kf_b = 0;\n", in);
        kfc_opgen_stmt(g, lv, da / 2, "kf_a += %s; kf_b += %s;", A, AI);
        kfc_buf_printf(o, "%s  %s = kf_a; %s = kf_b; }\n", in, N0, N1);
        return;
    }
    case KFC_OP_MATVECMULT:
        snprintf(ix, sizeof ix, "k*%d+l", (int)db);
        CA(ix), CB("l");
        NK_AT("k");
        kfc_buf_printf(o, "%sfor (kf_i64 k = 0; k < %d; k++) { KF_T kf_a = 0; "
                          "for (kf_i64 l = 0; l < %d; l++) kf_a += %s * %s; %s = kf_a; }\n",
                       in, (int)x->dim, (int)db, A, B, NK);
        return;
    case KFC_OP_VECMATMULT:
        snprintf(ix, sizeof ix, "k*%d+l", (int)x->dim);
        CA("k"), CB(ix);
        NK_AT("l");
        kfc_buf_printf(o, "%sfor (kf_i64 l = 0; l < %d; l++) { KF_T kf_a = 0; "
                          "for (kf_i64 k = 0; k < %d; k++) kf_a += %s * %s; %s = kf_a; }\n",
                       in, (int)x->dim, (int)da, A, B, NK);
        return;
    case KFC_OP_TENSORPROD:
        CA("k"), CB("l");
        NK_AT("k*%d+l", (int)db);
        kfc_buf_printf(o, "%sfor (kf_i64 k = 0; k < %d; k++) for (kf_i64 l = 0; l < %d; l++) "
                          "%s = %s * %s;\n",
                       in, (int)da, (int)db, NK, A, B);
        return;
    case KFC_OP_TENSORDOT: {
        /* Loops over the kept axes, then the pairs (the reference's order of
         * the sums); the three offsets are computed in the innermost loop. */
        kfc_tdot_shape sh;
        const kfc_tdot *t = &x->td;
        kfc_tdot_shape_of(t, &sh);
        int nl = sh.nk + t->nc;
        CA("kf_ta"), CB("kf_tb");
        NK_AT("kf_to");
        kfc_opgen_stmt(g, lv, x->dim, "%s = 0;", NA);
        kfc_buf_printf(o, "%s{", in);
        for (int q = 0; q < nl; q++)
            kfc_buf_printf(o, " for (kf_i64 kf_t%d = 0; kf_t%d < %d; kf_t%d++)", q, q,
                           (int)(q < sh.nk ? sh.kdim[q] : sh.cdim[q - sh.nk]), q);
        kfc_buf_printf(o, " {\n%s  kf_i64 kf_to = 0", in);
        for (int q = 0; q < sh.nk; q++)
            kfc_buf_printf(o, " + kf_t%d*%lld", q, (long long)sh.ostride[q]);
        kfc_buf_printf(o, ", kf_ta = 0");
        for (int q = 0; q < sh.nka; q++)
            kfc_buf_printf(o, " + kf_t%d*%lld", q, (long long)sh.astride[sh.kax[q]]);
        for (int c = 0; c < t->nc; c++)
            kfc_buf_printf(o, " + kf_t%d*%lld", sh.nk + c, (long long)sh.astride[t->ca[c]]);
        kfc_buf_printf(o, ", kf_tb = 0");
        for (int q = sh.nka; q < sh.nk; q++)
            kfc_buf_printf(o, " + kf_t%d*%lld", q, (long long)sh.bstride[sh.kax[q]]);
        for (int c = 0; c < t->nc; c++)
            kfc_buf_printf(o, " + kf_t%d*%lld", sh.nk + c, (long long)sh.bstride[t->cb[c]]);
        kfc_buf_printf(o, ";\n%s  %s += %s * %s; } }\n", in, NK, A, B);
        return;
    }
    case KFC_OP_BSPLINE: {
        /* Spline kf_bi of order K from the triangle of its K+1 order-0
         * splines, each level in place: K+1 values per spline, whatever the
         * number of knots. */
        int K = (int)x->iv[0];
        char T0[KFC_CAP], T1[KFC_CAP], T2[KFC_CAP], T3[KFC_CAP];
        CB("0");
        g->comp(g, a, "kf_bi+kf_bm", T0, sizeof T0);
        g->comp(g, a, "kf_bi+kf_bm+1", T1, sizeof T1);
        NK_AT("kf_bi");
        kfc_buf_printf(o, "%s{ KF_T kf_bx = %s;\n", in, B);
        kfc_buf_printf(o, "%s  for (kf_i64 kf_bi = 0; kf_bi < %d; kf_bi++) { KF_T kf_b[%d];\n", in, (int)x->dim,
                       K + 1);
        kfc_buf_printf(o, "%s    for (kf_i64 kf_bm = 0; kf_bm <= %d; kf_bm++) "
                          "kf_b[kf_bm] = %s <= kf_bx && kf_bx < %s ? (KF_T)1 : (KF_T)0;\n",
                       in, K, T0, T1);
        g->comp(g, a, "kf_bi+kf_bm+kf_bj", T1, sizeof T1);
        g->comp(g, a, "kf_bi+kf_bm+1", T2, sizeof T2);
        g->comp(g, a, "kf_bi+kf_bm+1+kf_bj", T3, sizeof T3);
        kfc_buf_printf(o, "%s    for (kf_i64 kf_bj = 1; kf_bj <= %d; kf_bj++) "
                          "for (kf_i64 kf_bm = 0; kf_bm <= %d - kf_bj; kf_bm++) {\n",
                       in, K, K);
        kfc_buf_printf(o, "%s      KF_T kf_t0 = %s, kf_t1 = %s, kf_t2 = %s, kf_t3 = %s;\n", in, T0, T1, T2, T3);
        kfc_buf_printf(o, "%s      KF_T kf_w1 = kf_t0 < kf_t1 ? (kf_bx - kf_t0) / (kf_t1 - kf_t0) : (KF_T)0;\n"
                          "%s      KF_T kf_w2 = kf_t2 < kf_t3 ? (kf_bx - kf_t2) / (kf_t3 - kf_t2) : (KF_T)0;\n"
                          "%s      kf_b[kf_bm] = kf_w1 * kf_b[kf_bm] + ((KF_T)1 - kf_w2) * kf_b[kf_bm + 1]; }\n",
                       in, in, in);
        kfc_buf_printf(o, "%s    %s = kf_b[0]; } }\n", in, NK);
        return;
    }
    case KFC_OP_SOFTDTW_SQDIST:
    case KFC_OP_GRADSOFTDTW_SQDIST: {
        /* KeOps' loops: column j of the DP table from column j-1, x's index
         * i fastest; the first row and column are running sums of the costs
         * (their soft-min has one term). The value keeps one column (kf_sc);
         * the gradient keeps the table (kf_sr, n*m) and runs back over it with
         * one column of weights (kf_se), as the reference's e. */
        const int grad = x->op == KFC_OP_GRADSOFTDTW_SQDIST, N = (int)da, M = (int)db;
        char X0[KFC_CAP], Y0[KFC_CAP], XI[KFC_CAP], YJ[KFC_CAP], G[KFC_CAP];
        CC("0");
        snprintf(G, sizeof G, "%s", C);
        g->comp(g, a, "0", X0, sizeof X0);
        g->comp(g, a, "kf_si", XI, sizeof XI);
        g->comp(g, b2, "0", Y0, sizeof Y0);
        g->comp(g, b2, "kf_sj", YJ, sizeof YJ);
        /* R[i][j]: the current column (value) or the table (gradient) */
        const char *cur = grad ? "kf_sr[kf_sj*%d+%s]" : "kf_sc[%s]";
        char Ri[64], Rim1[64], R0[64];
#define SD_CELL(buf, ix) (grad ? snprintf(buf, sizeof buf, cur, N, ix) : snprintf(buf, sizeof buf, cur, ix))
        SD_CELL(Ri, "kf_si"), SD_CELL(Rim1, "kf_si-1"), SD_CELL(R0, "0");
        kfc_buf_printf(o, "%s{ KF_T kf_sg = %s, kf_sd, kf_su, kf_sp, kf_sl, kf_sa;\n", in, G);
        kfc_buf_printf(o, "%s  KF_T %s[%d];\n", in, grad ? "kf_sr" : "kf_sc", grad ? N * M : N);
        kfc_buf_printf(o, "%s  for (kf_i64 kf_sj = 0; kf_sj < %d; kf_sj++) {\n", in, M);
        kfc_buf_printf(o, "%s    kf_sd = %s - %s;\n", in, X0, YJ);
        if (grad)
            kfc_buf_printf(o, "%s    kf_sp = kf_sj ? kf_sr[(kf_sj-1)*%d] : (KF_T)0;\n", in, N);
        else
            kfc_buf_printf(o, "%s    kf_sp = kf_sj ? kf_sc[0] : (KF_T)0;\n", in);
        kfc_buf_printf(o, "%s    %s = kf_sd*kf_sd + kf_sp;\n", in, R0);
        kfc_buf_printf(o, "%s    for (kf_i64 kf_si = 1; kf_si < %d; kf_si++) {\n", in, N);
        kfc_buf_printf(o, "%s      kf_sd = %s - %s;\n", in, XI, YJ);
        /* kf_sp: R[i-1][j-1], kf_sl: R[i][j-1], kf_su: R[i-1][j] */
        kfc_buf_printf(o, "%s      if (kf_sj == 0) { %s = kf_sd*kf_sd + %s; continue; }\n", in, Ri, Rim1);
        if (grad)
            kfc_buf_printf(o, "%s      kf_sp = kf_sr[(kf_sj-1)*%d+kf_si-1]; kf_sl = kf_sr[(kf_sj-1)*%d+kf_si];\n",
                           in, N, N);
        else
            kfc_buf_printf(o, "%s      kf_sl = kf_sc[kf_si];\n", in);
        kfc_buf_printf(o, "%s      kf_su = %s;\n", in, Rim1);
        kfc_buf_printf(o, "%s      kf_sa = kf_sp < kf_su ? kf_sp : kf_su; kf_sa = kf_sa < kf_sl ? kf_sa : kf_sl;\n"
                          "%s      %s = kf_sd*kf_sd + (kf_sa - kf_sg * KF_LOG(KF_EXP((kf_sa - kf_sp) / kf_sg) + "
                          "KF_EXP((kf_sa - kf_su) / kf_sg) + KF_EXP((kf_sa - kf_sl) / kf_sg)));\n",
                       in, in, Ri);
        if (!grad)
            kfc_buf_printf(o, "%s      kf_sp = kf_sl;\n", in);
        kfc_buf_printf(o, "%s    } }\n", in);
        if (!grad) {
            kfc_buf_printf(o, "%s  %s = kf_sc[%d]; }\n", in, N0, N - 1);
            return;
        }
        /* Backwards: kf_se[i] holds e[i][j+1] until e[i][j] is known, kf_sb
         * is e[i+1][j]; each weight exp((R[next] - R[i][j] - cost(next)) /
         * gamma), the terms in the reference's order. */
        char GX[KFC_CAP], GY[KFC_CAP], XN[KFC_CAP], YN[KFC_CAP];
        g->comp(g, a, "kf_si+1", XN, sizeof XN);
        g->comp(g, b2, "kf_sj+1", YN, sizeof YN);
        g->dst(g, n, "kf_si", GX, sizeof GX);
        snprintf(ix, sizeof ix, "%d+kf_sj", N);
        g->dst(g, n, ix, GY, sizeof GY);
        kfc_opgen_stmt(g, lv, x->dim, "%s = 0;", NA);
        kfc_buf_printf(o, "%s  KF_T kf_se[%d], kf_sb, kf_sw;\n", in, N);
        kfc_buf_printf(o, "%s  for (kf_i64 kf_sj = %d; kf_sj >= 0; kf_sj--) { kf_sb = 0;\n", in, M - 1);
        kfc_buf_printf(o, "%s    for (kf_i64 kf_si = %d; kf_si >= 0; kf_si--) {\n", in, N - 1);
        kfc_buf_printf(o, "%s      kf_sw = kf_si == %d && kf_sj == %d ? (KF_T)1 : (KF_T)0; kf_sa = kf_sr[kf_sj*%d+kf_si];\n",
                       in, N - 1, M - 1, N);
        kfc_buf_printf(o, "%s      if (kf_si < %d) { kf_sd = %s - %s; "
                          "kf_sw += KF_EXP((kf_sr[kf_sj*%d+kf_si+1] - kf_sa - kf_sd*kf_sd) / kf_sg) * kf_sb; }\n",
                       in, N - 1, XN, YJ, N);
        kfc_buf_printf(o, "%s      if (kf_sj < %d) { kf_sd = %s - %s; "
                          "kf_sw += KF_EXP((kf_sr[(kf_sj+1)*%d+kf_si] - kf_sa - kf_sd*kf_sd) / kf_sg) * kf_se[kf_si]; }\n",
                       in, M - 1, XI, YN, N);
        kfc_buf_printf(o, "%s      if (kf_si < %d && kf_sj < %d) { kf_sd = %s - %s; "
                          "kf_sw += KF_EXP((kf_sr[(kf_sj+1)*%d+kf_si+1] - kf_sa - kf_sd*kf_sd) / kf_sg) * kf_se[kf_si+1]; }\n",
                       in, N - 1, M - 1, XN, YN, N);
        kfc_buf_printf(o, "%s      if (kf_si < %d) kf_se[kf_si+1] = kf_sb;\n", in, N - 1);
        kfc_buf_printf(o, "%s      kf_sb = kf_sw; kf_sd = %s - %s; %s += 2*kf_sd*kf_sw; %s -= 2*kf_sd*kf_sw;\n",
                       in, XI, YJ, GX, GY);
        kfc_buf_printf(o, "%s    }\n%s    kf_se[0] = kf_sb; } }\n", in, in);
        return;
#undef SD_CELL
    }
    default:
        return;
    }
#undef CA
#undef CB
#undef CC
#undef NK_AT
}

void kfc_opgen_node(const kfc_opgen *g, int32_t n, int lv)
{
    const kfc_node *x = &g->p->nodes[n];
    if (kfc_op_info[x->op].cexpr || x->op == KFC_OP_POW || x->op == KFC_OP_ROUND)
        emit_elementwise(g, n, lv);
    else
        emit_special(g, n, lv);
}

/* ---- prelude: ops.def's libm functions ---- */

void kfc_opgen_libm_protos(kfc_buf *b)
{
    for (int f = 0; f < 2; f++) {
        const char *t = f ? "float" : "double";
        int k = 0;
        for (int rank = 1; rank <= KFC_OP_COUNT; rank++)
            for (int op = 0; op < KFC_OP_COUNT; op++) {
                const kfc_opinfo *oi = &kfc_op_info[op];
                if (oi->libm_proto != rank)
                    continue;
                kfc_buf_printf(b, "%s%s %s%s(%s%s%s);", k % 4 ? " " : "", t, oi->libm, f ? "f" : "", t,
                               oi->nargs > 1 ? ", " : "", oi->nargs > 1 ? t : "");
                if (++k % 4 == 0)
                    kfc_buf_printf(b, "\n");
            }
        if (k % 4)
            kfc_buf_printf(b, "\n");
    }
    kfc_buf_printf(b, "\n");
}

void kfc_opgen_libm_macros(kfc_buf *b, kf_dtype dtype, enum kfc_math_tier tier)
{
    const char *sfx = dtype == KF_FLOAT32 ? "f" : "";
    for (int op = 0; op < KFC_OP_COUNT; op++) {
        const kfc_opinfo *oi = &kfc_op_info[op];
        if (!oi->libm)
            continue;
        char up[32];
        size_t k = 0;
        for (; oi->libm[k] && k + 1 < sizeof up; k++)
            up[k] = (char)(oi->libm[k] >= 'a' && oi->libm[k] <= 'z' ? oi->libm[k] - 'a' + 'A' : oi->libm[k]);
        up[k] = 0;
        const char *args = oi->nargs > 1 ? "x, y" : "x";
        switch (tier) {
        case KFC_MATH_TCC:
            kfc_buf_printf(b, "#define KF_%s(%s) %s%s(%s)\n", up, args, oi->libm, sfx, args);
            break;
        case KFC_MATH_OPT:
            if (oi->libm_opt)
                kfc_buf_printf(b, "#define KF_%s(%s) %s(%s)\n", up, args, oi->libm_opt, args);
            else
                kfc_buf_printf(b, "#define KF_%s(%s) __builtin_%s%s(%s)\n", up, args, oi->libm, sfx, args);
            break;
        case KFC_MATH_CUDA:
            kfc_buf_printf(b, "#define KF_%s(%s) %s%s(%s)\n", up, args, oi->libm_cuda, sfx, args);
            break;
        }
    }
}

/* ---- prelude helpers ---- */

void kfc_opgen_helpers(kfc_buf *b, int opt)
{
    /* A NaN argument gives NaN (x != x is the NaN test: no isnan without
     * headers). The optimizing tier's are written as selects so they vectorize. */
    kfc_buf_printf(b, "KF_HELPER KF_T kf_rsqrt(KF_T x) { return x == 0 ? (KF_T)0 : (KF_T)1 / KF_SQRT(x); }\n");
    if (opt)
        kfc_buf_printf(
            b,
            "KF_HELPER KF_T kf_sign(KF_T x) { KF_T s = x > 0 ? (KF_T)1 : x < 0 ? (KF_T)-1 : (KF_T)0; return x != x ? x : s; }\n"
            "KF_HELPER KF_T kf_step(KF_T x) { KF_T s = x >= 0 ? (KF_T)1 : (KF_T)0; return x != x ? x : s; }\n");
    else
        kfc_buf_printf(
            b,
            "KF_HELPER KF_T kf_sign(KF_T x) { return x != x ? x : x > 0 ? (KF_T)1 : x < 0 ? (KF_T)-1 : (KF_T)0; }\n"
            "KF_HELPER KF_T kf_step(KF_T x) { return x != x ? x : x >= 0 ? (KF_T)1 : (KF_T)0; }\n");
    kfc_buf_printf(b, "KF_HELPER KF_T kf_relu(KF_T x) { return x != x ? x : x >= 0 ? x : (KF_T)0; }\n"
                      "KF_HELPER KF_T kf_xlogx(KF_T x) { return x == 0 ? (KF_T)0 : x * KF_LOG(x); }\n"
                      "KF_HELPER KF_T kf_sinxdivx(KF_T x) { return x == 0 ? (KF_T)1 : KF_SIN(x) / x; }\n"
                      "KF_HELPER KF_T kf_clamp(KF_T x, KF_T a, KF_T b)\n"
                      "{\n");
    if (opt)
        kfc_buf_printf(b, "    KF_T y = x < a ? a : x;\n"
                          "    y = y > b ? b : y;\n"
                          "    y = b != b ? b : y;\n"
                          "    y = a != a ? a : y;\n"
                          "    return x != x ? x : y;\n");
    else
        kfc_buf_printf(b, "    if (x != x || a != a || b != b)\n"
                          "        return x != x ? x : a != a ? a : b;\n"
                          "    if (x < a)\n"
                          "        x = a;\n"
                          "    return x > b ? b : x;\n");
    kfc_buf_printf(b, "}\n"
                      /* The product is rounded before the subtraction, as in the
                       * reference: fused into one FMA (GCC contracts across
                       * statements), x - n*q is exact and lands outside [d, d+n)
                       * when n*q rounds far from x (x = 1e16, n = 0.3: -0.43, not 0).
                       * "+ 0" cannot be folded away (it turns -0 into +0), so at
                       * most n*q + 0 is fused, which is the rounded product. */
                      "KF_HELPER KF_T kf_mod(KF_T x, KF_T n, KF_T d)\n"
                      "{\n"
                      "    KF_T p = n * KF_FLOOR((x - d) / n) + (KF_T)0;\n"
                      "    return x - p;\n"
                      "}\n");
    if (opt)
        kfc_buf_printf(b, "/* x^m, m >= 0, by squaring (m is a constant: the loop unrolls) */\n"
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
                          "}\n");
    else /* the KMin skeleton's order (compiler/emit/skel_c.c) */
        kfc_buf_printf(b, "/* KMin order: NaN before every number, then numeric. */\n"
                          "KF_HELPER int kf_kless(KF_T a, KF_T b) { return (a != a && b == b) || a < b; }\n");
    kfc_buf_printf(
        b, "#define KF_RSQRT(x) kf_rsqrt(x)\n#define KF_SIGN(x) kf_sign(x)\n#define KF_STEP(x) kf_step(x)\n"
           "#define KF_RELU(x) kf_relu(x)\n#define KF_XLOGX(x) kf_xlogx(x)\n#define KF_SINXDIVX(x) kf_sinxdivx(x)\n"
           "#define KF_CLAMP(x, a, b) kf_clamp(x, a, b)\n#define KF_MOD(x, n, d) kf_mod(x, n, d)\n\n");
}
