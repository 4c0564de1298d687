/*
 * emit_c.c -- the checked AST and a reduction to self-contained C source:
 * kf_reduce (the kernel ABI of kernels/abi.h) or kf_formula alone.
 *
 *   validate     every reachable node against its dim rule (no OOB in the output)
 *   levels       P: constants/parameters only, O: + outer variables, I: + inner
 *   prelude      KF_T, kf_i64, libm prototypes, the KF_* macros of ops.def
 *   body         P nodes once per call, O nodes once per row, I nodes per pair,
 *                the reduction state from kernels/skel_c.c around them
 *
 * Every node n becomes a local `KF_T nN[dim]`; variables are read in place
 * through `vV` pointers and constants are inlined as literals. Only numbers
 * and generated identifiers reach the source: never text of the user's.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../kernels/kernels.h"
#include "ir.h"

enum { LV_P = 0, LV_O = 1, LV_I = 2 };

typedef struct emitter {
    const kfc_prog *p;
    kfk_buf b;
    int axis;       /* 0 or 1; -1 for kf_formula (cat 0 read at i, cat 1 at j) */
    int8_t *lvl;    /* per node: LV_*, or -1 when unreachable from the roots */
    int32_t vdim[KFC_MAX_VARS]; /* 0: variable unused */
    int8_t vcat[KFC_MAX_VARS];
    kfc_diag *d;
} emitter;

/* ---- validation: the emitter trusts nothing it would index with ---- */

static int bad(emitter *e, int32_t n, const char *why)
{
    return kfc_diag_set(e->d, KF_ERR_INTERNAL, -1, -1,
                        "C emitter: node %d (%s) is inconsistent: %s (a kforge bug)", (int)n,
                        kfc_op_info[e->p->nodes[n].op].name, why);
}

static int bcast_ok(int32_t d, int32_t to)
{
    return d == to || d == 1;
}

static int validate_node(emitter *e, int32_t n)
{
    const kfc_node *x = &e->p->nodes[n];
    const kfc_opinfo *oi = &kfc_op_info[x->op];
    int32_t dim = x->dim, da = 0, db = 0, dc = 0;
    for (int k = 0; k < oi->nargs; k++)
        if (x->a[k] < 0 || x->a[k] >= n)
            return bad(e, n, "child index out of order");
    if (dim < 1 || dim > KFC_MAX_DIM)
        return bad(e, n, "dim out of range");
    if (oi->nargs > 0)
        da = e->p->nodes[x->a[0]].dim;
    if (oi->nargs > 1)
        db = e->p->nodes[x->a[1]].dim;
    if (oi->nargs > 2)
        dc = e->p->nodes[x->a[2]].dim;
    const int64_t *iv = x->iv;
    int ok = 1;
    switch (x->op) {
    case KFC_OP_VAR:
        ok = iv[0] >= 0 && iv[0] < KFC_MAX_VARS && iv[1] == dim && iv[2] >= 0 && iv[2] <= 2;
        break;
    case KFC_OP_INTCST: case KFC_OP_NUM: ok = dim == 1; break;
    case KFC_OP_RATCST: ok = dim == 1 && iv[1] != 0; break;
    case KFC_OP_ZERO: ok = iv[0] == dim; break;
    case KFC_OP_ROUND: ok = dim == da && iv[0] >= 0 && iv[0] <= 22; break;
    case KFC_OP_POW: ok = dim == da && iv[0] >= -1024 && iv[0] <= 1024; break;
    case KFC_OP_WEIGHTEDSQNORM:
        ok = dim == 1 && (da == 1 || da == db || (int64_t)da == (int64_t)db * db);
        break;
    case KFC_OP_WEIGHTEDSQDIST: {
        int32_t D = db > dc ? db : dc;
        ok = dim == 1 && bcast_ok(db, D) && bcast_ok(dc, D) &&
             (da == 1 || da == D || (int64_t)da == (int64_t)D * D);
        break;
    }
    case KFC_OP_ELEM: ok = dim == 1 && iv[0] >= 0 && iv[0] < da; break;
    case KFC_OP_ELEMT: ok = da == 1 && iv[0] == dim && iv[1] >= 0 && iv[1] < dim; break;
    case KFC_OP_EXTRACT: ok = iv[0] >= 0 && iv[1] == dim && iv[0] <= da - iv[1]; break;
    case KFC_OP_EXTRACTT: ok = iv[1] == dim && iv[0] >= 0 && iv[0] <= dim - da; break;
    case KFC_OP_CONCAT: ok = dim == da + db; break;
    case KFC_OP_ONEHOT: ok = da == 1 && iv[0] == dim; break;
    case KFC_OP_SUMT: ok = da == 1 && iv[0] == dim; break;
    case KFC_OP_MATVECMULT: ok = (int64_t)dim * db == da; break;
    case KFC_OP_VECMATMULT: ok = (int64_t)dim * da == db; break;
    case KFC_OP_TENSORPROD: ok = (int64_t)da * db == dim; break;
    default:
        switch (oi->rule) {
        case KFC_DR_SAME: ok = dim == da; break;
        case KFC_DR_RED: ok = dim == 1; break;
        case KFC_DR_RED2: ok = dim == 1 && bcast_ok(da, da > db ? da : db) && bcast_ok(db, da > db ? da : db); break;
        case KFC_DR_BCAST:
            ok = bcast_ok(da, dim) && bcast_ok(db, dim) && (oi->nargs < 3 || bcast_ok(dc, dim)) &&
                 (da == dim || db == dim || dc == dim);
            break;
        default: ok = 0; break;
        }
    }
    return ok ? KF_OK : bad(e, n, "dims or integer arguments disagree with ops.def");
}

static int is_leaf(const kfc_node *x)
{
    return kfc_op_info[x->op].nargs == 0;
}

/* Marks the nodes reachable from the roots, validates them and gives each its
 * level; collects the variables. Children have smaller indices, so one pass
 * downwards marks and one pass upwards computes levels. */
static int analyze(emitter *e, int32_t root, int32_t root2)
{
    const kfc_prog *p = e->p;
    if (root < 0 || root >= p->nnodes || root2 >= p->nnodes)
        return kfc_diag_set(e->d, KF_ERR_INTERNAL, -1, -1, "C emitter: no formula to emit");
    e->lvl = malloc((size_t)p->nnodes);
    if (!e->lvl)
        return kfc_diag_set(e->d, KF_ERR_NOMEM, -1, -1, "out of memory");
    memset(e->lvl, -1, (size_t)p->nnodes);
    e->lvl[root] = 0;
    if (root2 >= 0)
        e->lvl[root2] = 0;
    for (int32_t n = p->nnodes - 1; n >= 0; n--) {
        if (e->lvl[n] < 0)
            continue;
        const kfc_node *x = &p->nodes[n];
        if (x->op < 0 || x->op >= KFC_OP_COUNT)
            return kfc_diag_set(e->d, KF_ERR_INTERNAL, -1, -1, "C emitter: node %d has no op", (int)n);
        for (int k = 0; k < kfc_op_info[x->op].nargs; k++)
            if (x->a[k] >= 0 && x->a[k] < n)
                e->lvl[x->a[k]] = 0;
    }
    int64_t total = 0;
    for (int32_t n = 0; n < p->nnodes; n++) {
        if (e->lvl[n] < 0)
            continue;
        const kfc_node *x = &p->nodes[n];
        int st = validate_node(e, n);
        if (st)
            return st;
        total += x->dim;
        int lv = LV_P;
        if (x->op == KFC_OP_VAR) {
            int v = (int)x->iv[0];
            if (e->vdim[v] && (e->vdim[v] != x->dim || e->vcat[v] != x->iv[2]))
                return bad(e, n, "variable used with two dims or categories");
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
    /* The generated function keeps every node on its stack. */
    if (total > KFC_MAX_TOTAL_DIM)
        return kfc_diag_set(e->d, KF_ERR_LIMIT, -1, -1,
                            "formula too large: its nodes hold %lld values per pair (at most %d)",
                            (long long)total, KFC_MAX_TOTAL_DIM);
    return KF_OK;
}

/* ---- expressions ---- */

/* Component k (an index expression, possibly "@" for kfk_buf_each) of node n,
 * broadcasting dim-1 nodes. */
static void comp(const emitter *e, int32_t n, const char *k, char *dst, size_t cap)
{
    const kfc_node *x = &e->p->nodes[n];
    const char *kk = x->dim == 1 ? "0" : k;
    char lit[48];
    switch (x->op) {
    case KFC_OP_VAR: snprintf(dst, cap, "v%d[%s]", (int)x->iv[0], kk); return;
    case KFC_OP_ZERO: snprintf(dst, cap, "(KF_T)0"); return;
    case KFC_OP_INTCST: kfk_fmt_double(lit, sizeof lit, (double)x->iv[0]); break;
    case KFC_OP_RATCST: kfk_fmt_double(lit, sizeof lit, (double)x->iv[0] / (double)x->iv[1]); break;
    case KFC_OP_NUM: kfk_fmt_double(lit, sizeof lit, x->val); break;
    default: snprintf(dst, cap, "n%d[%s]", (int)n, kk); return;
    }
    snprintf(dst, cap, "((KF_T)%s)", lit);
}

#define CAP 160 /* room for one component expression */

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
            /* As a double literal: the templates use them as reals, and an
             * int64 extreme has no valid C integer literal. */
            char lit[48];
            kfk_fmt_double(lit, sizeof lit, (double)x->iv[s[1] - '0']);
            kfk_buf_printf(t, "%s", lit);
            s++;
        } else {
            kfk_buf_printf(t, "%c", *s);
        }
    }
}

/* The C template of an element-wise node: ops.def's, or Pow's and Round's. */
static void elementwise_template(const kfc_node *x, char *dst, size_t cap)
{
    if (x->op == KFC_OP_POW) {
        long long m = x->iv[0], am = m < 0 ? -m : m;
        const char *pre = m < 0 ? "((KF_T)1/" : "(", *post = ")";
        /* m = 0: pow(f, 0) is 1 even for NaN, as the shared semantics ask. */
        if (am == 1)
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
        kfk_fmt_double(lit, sizeof lit, s);
        snprintf(dst, cap, "(KF_ROUND(($a)*(KF_T)%s)/(KF_T)%s)", lit, lit);
    } else {
        snprintf(dst, cap, "%s", kfc_op_info[x->op].cexpr);
    }
}

/* ---- statements ---- */

static const char *indent(int lv)
{
    static const char *const in[] = {"    ", "        ", "                ", "                  "};
    return in[lv];
}

/* Appends, once per component (unrolled or looped, see kfk_buf_each), the
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
    kfk_buf_each(&e->b, indent(lv), n, s);
    free(s);
}

static void emit_elementwise(emitter *e, int32_t n, int lv)
{
    const kfc_node *x = &e->p->nodes[n];
    char tmpl[200];
    kfk_buf rhs = {0};
    elementwise_template(x, tmpl, sizeof tmpl);
    expand(e, x, tmpl, "@", &rhs);
    if (rhs.oom) {
        e->b.oom = 1;
    } else {
        each_stmt(e, lv, x->dim, "n%d[@] = %s;", (int)n, rhs.s);
    }
    free(rhs.s);
}

/* The ops with code of their own (NULL CEXPR in ops.def). Accumulations start
 * at 0 and run over ascending components, the reference's order, so float64
 * results agree with it to the last bit wherever libm is not involved. */
static void emit_special(emitter *e, int32_t n, int lv)
{
    const kfc_node *x = &e->p->nodes[n];
    const char *in = indent(lv);
    int32_t a = x->a[0], b2 = x->a[1], c3 = x->a[2];
    int32_t da = a >= 0 ? e->p->nodes[a].dim : 0, db = b2 >= 0 ? e->p->nodes[b2].dim : 0;
    int32_t dc = c3 >= 0 ? e->p->nodes[c3].dim : 0;
    char A[CAP], B[CAP], C[CAP] = "", ix[64];
    kfk_buf *o = &e->b;
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
        kfk_buf_printf(o, "%s  n%d[0] = %s; }\n", in, (int)n, x->op == KFC_OP_NORM2 ? "KF_SQRT(kf_a)" : "kf_a");
        return;
    case KFC_OP_MAX:
    case KFC_OP_MIN:
    case KFC_OP_ARGMAX:
    case KFC_OP_ARGMIN: {
        /* A NaN best is sticky, so the first NaN wins; otherwise strictly better. */
        int arg = x->op == KFC_OP_ARGMAX || x->op == KFC_OP_ARGMIN;
        const char *cmp = x->op == KFC_OP_MAX || x->op == KFC_OP_ARGMAX ? ">" : "<";
        CA("0");
        kfk_buf_printf(o, "%s{ KF_T kf_a = %s; kf_i64 kf_b = 0;\n", in, A);
        CA("@");
        each_stmt(e, lv, da, "{ KF_T kf_v = %s; if (kf_a == kf_a && (kf_v != kf_v || kf_v %s kf_a)) { kf_a = kf_v; kf_b = @; } }",
                  A, cmp);
        kfk_buf_printf(o, "%s  n%d[0] = %s; (void)kf_b; }\n", in, (int)n, arg ? "(KF_T)kf_b" : "kf_a");
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
        kfk_buf_printf(o, "%s  n%d[0] = kf_a; }\n", in, (int)n);
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
            kfk_buf_printf(o, "%s  n%d[0] = %s * kf_a; }\n", in, (int)n, A);
        } else if (!full) {
            CA("@");
            each_stmt(e, lv, D, "kf_a += %s * %s * %s;", A, F, F);
            kfk_buf_printf(o, "%s  n%d[0] = kf_a; }\n", in, (int)n);
        } else {
            snprintf(ix, sizeof ix, "k*%d+l", (int)D);
            CA(ix);
            kfk_buf_printf(o, "%s  for (kf_i64 k = 0; k < %d; k++) for (kf_i64 l = 0; l < %d; l++) "
                              "kf_a += %s * %s * %s;\n",
                           in, (int)D, (int)D, F, A, Fl);
            kfk_buf_printf(o, "%s  n%d[0] = kf_a; }\n", in, (int)n);
        }
        return;
    }
    case KFC_OP_NORMALIZE:
        CA("@");
        kfk_buf_printf(o, "%s{ KF_T kf_a = 0;\n", in);
        each_stmt(e, lv, da, "kf_a += %s * %s;", A, A);
        kfk_buf_printf(o, "%s  kf_a = KF_RSQRT(kf_a);\n", in);
        each_stmt(e, lv, da, "n%d[@] = %s * kf_a;", (int)n, A);
        kfk_buf_printf(o, "%s}\n", in);
        return;
    case KFC_OP_ELEM:
        snprintf(ix, sizeof ix, "%d", (int)x->iv[0]);
        CA(ix);
        kfk_buf_printf(o, "%sn%d[0] = %s;\n", in, (int)n, A);
        return;
    case KFC_OP_ELEMT:
        CA("0");
        each_stmt(e, lv, x->dim, "n%d[@] = 0;", (int)n);
        kfk_buf_printf(o, "%sn%d[%d] = %s;\n", in, (int)n, (int)x->iv[1], A);
        return;
    case KFC_OP_EXTRACT:
        snprintf(ix, sizeof ix, "%d+@", (int)x->iv[0]);
        CA(ix);
        each_stmt(e, lv, x->dim, "n%d[@] = %s;", (int)n, A);
        return;
    case KFC_OP_EXTRACTT:
        CA("@");
        each_stmt(e, lv, x->dim, "n%d[@] = 0;", (int)n);
        each_stmt(e, lv, da, "n%d[%d+@] = %s;", (int)n, (int)x->iv[0], A);
        return;
    case KFC_OP_CONCAT:
        CA("@"), CB("@");
        each_stmt(e, lv, da, "n%d[@] = %s;", (int)n, A);
        each_stmt(e, lv, db, "n%d[%d+@] = %s;", (int)n, (int)da, B);
        return;
    case KFC_OP_ONEHOT:
        /* A NaN rounds to NaN, equal to no index: all zeros, like the reference. */
        CA("0");
        kfk_buf_printf(o, "%s{ KF_T kf_r = KF_ROUND(%s);\n", in, A);
        each_stmt(e, lv, x->dim, "n%d[@] = kf_r == (KF_T)(@) ? (KF_T)1 : (KF_T)0;", (int)n);
        kfk_buf_printf(o, "%s}\n", in);
        return;
    case KFC_OP_SUMT:
        CA("0");
        each_stmt(e, lv, x->dim, "n%d[@] = %s;", (int)n, A);
        return;
    case KFC_OP_MATVECMULT:
        snprintf(ix, sizeof ix, "k*%d+l", (int)db);
        CA(ix), CB("l");
        kfk_buf_printf(o, "%sfor (kf_i64 k = 0; k < %d; k++) { KF_T kf_a = 0; "
                          "for (kf_i64 l = 0; l < %d; l++) kf_a += %s * %s; n%d[k] = kf_a; }\n",
                       in, (int)x->dim, (int)db, A, B, (int)n);
        return;
    case KFC_OP_VECMATMULT:
        snprintf(ix, sizeof ix, "k*%d+l", (int)x->dim);
        CA("k"), CB(ix);
        kfk_buf_printf(o, "%sfor (kf_i64 l = 0; l < %d; l++) { KF_T kf_a = 0; "
                          "for (kf_i64 k = 0; k < %d; k++) kf_a += %s * %s; n%d[l] = kf_a; }\n",
                       in, (int)x->dim, (int)da, A, B, (int)n);
        return;
    case KFC_OP_TENSORPROD:
        CA("k"), CB("l");
        kfk_buf_printf(o, "%sfor (kf_i64 k = 0; k < %d; k++) for (kf_i64 l = 0; l < %d; l++) "
                          "n%d[k*%d+l] = %s * %s;\n",
                       in, (int)da, (int)db, (int)n, (int)db, A, B);
        return;
    default:
        return;
    }
#undef CA
#undef CB
#undef CC
}

/* Variable pointers and nodes of one level, in index order (a valid
 * topological order). rowexpr[c]: the row index of category c at this level. */
static void emit_level(emitter *e, int lv, const char *const rowexpr[3])
{
    const char *in = indent(lv);
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
            kfk_buf_printf(&e->b, "%sconst KF_T *v%d = (const KF_T *)args[%d] + %s * %d;\n", in, v, v,
                           row, (int)e->vdim[v]);
        else
            kfk_buf_printf(&e->b, "%sconst KF_T *v%d = (const KF_T *)args[%d];\n", in, v, v);
    }
    for (int32_t n = 0; n < e->p->nnodes; n++) {
        const kfc_node *x = &e->p->nodes[n];
        if (e->lvl[n] != lv || is_leaf(x))
            continue;
        kfk_buf_printf(&e->b, "%sKF_T n%d[%d]; /* %s */\n", in, (int)n, (int)x->dim,
                       kfc_op_info[x->op].name);
        if (kfc_op_info[x->op].cexpr || x->op == KFC_OP_POW || x->op == KFC_OP_ROUND)
            emit_elementwise(e, n, lv);
        else
            emit_special(e, n, lv);
    }
}

/* The name of a KF_T array holding root's values: its node array, or `name`,
 * a copy made at the root's level when the root is a leaf. */
static void root_array(emitter *e, int32_t root, int lv, const char *name, char *dst, size_t cap)
{
    const kfc_node *x = &e->p->nodes[root];
    if (!is_leaf(x)) {
        snprintf(dst, cap, "n%d", (int)root);
        return;
    }
    snprintf(dst, cap, "%s", name);
    if (e->lvl[root] != lv)
        return;
    char c[CAP];
    comp(e, root, "@", c, sizeof c);
    kfk_buf_printf(&e->b, "%sKF_T %s[%d];\n", indent(lv), name, (int)x->dim);
    each_stmt(e, lv, x->dim, "%s[@] = %s;", name, c);
}

/* ---- prelude: everything the generated code uses, declared by hand ---- */

static void prelude(kfk_buf *b, kf_dtype dtype)
{
    int f = dtype == KF_FLOAT32;
    const char *sfx = f ? "f" : "";
    kfk_buf_printf(b, "typedef long long kf_i64;\ntypedef %s KF_T;\n\n", f ? "float" : "double");
    /* Exactly the functions kernels/libm_syms.c binds; nothing else is callable. */
    kfk_buf_printf(b, "double exp(double); double log(double); double sin(double); double cos(double);\n"
                      "double asin(double); double acos(double); double atan(double); double atan2(double, double);\n"
                      "double sqrt(double); double pow(double, double); double floor(double); double round(double);\n"
                      "double fabs(double);\n"
                      "float expf(float); float logf(float); float sinf(float); float cosf(float);\n"
                      "float asinf(float); float acosf(float); float atanf(float); float atan2f(float, float);\n"
                      "float sqrtf(float); float powf(float, float); float floorf(float); float roundf(float);\n"
                      "float fabsf(float);\n\n");
    static const char *const unary[][2] = {
        {"EXP", "exp"},   {"LOG", "log"},   {"SIN", "sin"},     {"COS", "cos"},     {"ASIN", "asin"},
        {"ACOS", "acos"}, {"ATAN", "atan"}, {"SQRT", "sqrt"},   {"FABS", "fabs"},   {"FLOOR", "floor"},
        {"ROUND", "round"},
    };
    for (size_t k = 0; k < sizeof unary / sizeof unary[0]; k++)
        kfk_buf_printf(b, "#define KF_%s(x) %s%s(x)\n", unary[k][0], unary[k][1], sfx);
    kfk_buf_printf(b, "#define KF_ATAN2(x, y) atan2%s(x, y)\n#define KF_POW(x, y) pow%s(x, y)\n", sfx, sfx);
    kfk_buf_printf(b, "#define KF_INF ((KF_T)(1.0/0.0))\n");
    /* unused: clang warns about unused static inline functions, gcc does not */
    kfk_buf_printf(b, "#define KF_HELPER static inline __attribute__((unused))\n\n");
    /* Helpers for the ops with special values; a NaN argument gives NaN
     * (x != x is the NaN test: no isnan without headers). */
    kfk_buf_printf(
        b,
        "KF_HELPER KF_T kf_rsqrt(KF_T x) { return x == 0 ? (KF_T)0 : (KF_T)1 / KF_SQRT(x); }\n"
        "KF_HELPER KF_T kf_sign(KF_T x) { return x != x ? x : x > 0 ? (KF_T)1 : x < 0 ? (KF_T)-1 : (KF_T)0; }\n"
        "KF_HELPER KF_T kf_step(KF_T x) { return x != x ? x : x >= 0 ? (KF_T)1 : (KF_T)0; }\n"
        "KF_HELPER KF_T kf_relu(KF_T x) { return x != x ? x : x >= 0 ? x : (KF_T)0; }\n"
        "KF_HELPER KF_T kf_xlogx(KF_T x) { return x == 0 ? (KF_T)0 : x * KF_LOG(x); }\n"
        "KF_HELPER KF_T kf_sinxdivx(KF_T x) { return x == 0 ? (KF_T)1 : KF_SIN(x) / x; }\n"
        "KF_HELPER KF_T kf_clamp(KF_T x, KF_T a, KF_T b)\n"
        "{\n"
        "    if (x != x || a != a || b != b)\n"
        "        return x != x ? x : a != a ? a : b;\n"
        "    if (x < a)\n"
        "        x = a;\n"
        "    return x > b ? b : x;\n"
        "}\n"
        "KF_HELPER KF_T kf_mod(KF_T x, KF_T n, KF_T d) { return x - n * KF_FLOOR((x - d) / n); }\n"
        "/* KMin order: NaN before every number, then numeric. */\n"
        "KF_HELPER int kf_kless(KF_T a, KF_T b) { return (a != a && b == b) || a < b; }\n"
        "#define KF_RSQRT(x) kf_rsqrt(x)\n#define KF_SIGN(x) kf_sign(x)\n#define KF_STEP(x) kf_step(x)\n"
        "#define KF_RELU(x) kf_relu(x)\n#define KF_XLOGX(x) kf_xlogx(x)\n#define KF_SINXDIVX(x) kf_sinxdivx(x)\n"
        "#define KF_CLAMP(x, a, b) kf_clamp(x, a, b)\n#define KF_MOD(x, n, d) kf_mod(x, n, d)\n\n");
}

static const char *dtype_name(kf_dtype t)
{
    return t == KF_FLOAT32 ? "float32" : "float64";
}

static char *finish(emitter *e)
{
    free(e->lvl);
    e->lvl = NULL;
    if (e->b.oom || !e->b.s) {
        free(e->b.s);
        kfc_diag_set(e->d, KF_ERR_NOMEM, -1, -1, "out of memory");
        return NULL;
    }
    return e->b.s;
}

static char *fail(emitter *e)
{
    free(e->lvl);
    free(e->b.s);
    return NULL;
}

char *kfc_emit_c(const kfc_prog *p, const kfc_red *r, kfc_diag *d)
{
    emitter e = {.p = p, .axis = r->axis, .d = d};
    if (r->id < 0 || r->id >= KFC_RED_COUNT || (r->axis != 0 && r->axis != 1)) {
        kfc_diag_set(d, KF_ERR_INTERNAL, -1, -1, "C emitter: reduction not set up (a kforge bug)");
        return NULL;
    }
    /* formula2 only where the reduction reads it (kfc_red_setup rejects the rest) */
    int32_t r2 = kfc_red_info[r->id].formula2 ? p->root2 : -1;
    if (analyze(&e, p->root, r2))
        return fail(&e);
    if (p->nodes[p->root].dim != r->D || (r2 >= 0 && p->nodes[r2].dim != r->E)) {
        kfc_diag_set(d, KF_ERR_INTERNAL, -1, -1, "C emitter: reduction dims disagree with the formula");
        return fail(&e);
    }
    static const char *const scheme[] = {"auto", "block", "direct", "f64", "kahan"};
    kfk_buf_printf(&e.b,
                   "/* kforge kernel: %s over %s (axis %d), %s, sum scheme %s.\n"
                   " * Generated; self-contained. The ABI is in docs/kernels.md. */\n",
                   kfc_red_info[r->id].name, r->axis == 1 ? "j" : "i", r->axis, dtype_name(r->dtype),
                   r->sum_scheme >= 0 && r->sum_scheme <= 4 ? scheme[r->sum_scheme] : "?");
    prelude(&e.b, r->dtype);
    kfk_buf_printf(&e.b, "void kf_reduce(const void *const *args, kf_i64 r0, kf_i64 r1, const kf_i64 *jr,\n"
                         "               kf_i64 nr, void *out, kf_i64 *idx)\n{\n");
    if (r->valdim > 0)
        kfk_buf_printf(&e.b, "    KF_T *kf_out = (KF_T *)out;\n");
    if (r->idxdim > 0)
        kfk_buf_printf(&e.b, "    kf_i64 *kf_idx = idx;\n");
    /* Which row index each category is read at, per level: outer at r, inner at j. */
    const char *outer_is_i = kfc_role(KFC_CAT_I, r->axis) == KFC_ROLE_OUTER ? "r" : "j";
    const char *outer_is_j = kfc_role(KFC_CAT_J, r->axis) == KFC_ROLE_OUTER ? "r" : "j";
    const char *rows[3] = {outer_is_i, outer_is_j, NULL};
    char f[32], g[32];
    kfk_buf_printf(&e.b, "    /* once per call */\n");
    emit_level(&e, LV_P, rows);
    for (int lv = LV_P; lv <= LV_I; lv++) {
        if (lv == LV_O) {
            kfk_buf_printf(&e.b, "    for (kf_i64 r = r0; r < r1; r++) {\n");
            kfk_buf_printf(&e.b, "        /* once per output row */\n");
            emit_level(&e, LV_O, rows);
        } else if (lv == LV_I) {
            kfk_skel_row_begin(&e.b, r);
            kfk_buf_printf(&e.b, "        for (kf_i64 q = 0; q < nr; q++) {\n"
                                 "            for (kf_i64 j = jr[2 * q]; j < jr[2 * q + 1]; j++) {\n"
                                 "                /* once per pair */\n");
            emit_level(&e, LV_I, rows);
        }
        root_array(&e, p->root, lv, "kf_f", f, sizeof f);
        if (r2 >= 0)
            root_array(&e, r2, lv, "kf_g", g, sizeof g);
    }
    kfk_skel_term(&e.b, r, f, r2 >= 0 ? g : NULL);
    kfk_buf_printf(&e.b, "            }\n        }\n");
    kfk_skel_row_end(&e.b, r);
    kfk_buf_printf(&e.b, "    }\n}\n");
    return finish(&e);
}

char *kfc_emit_c_formula(const kfc_prog *p, kf_dtype dtype, kfc_diag *d)
{
    emitter e = {.p = p, .axis = -1, .d = d};
    if (analyze(&e, p->root, -1))
        return fail(&e);
    kfk_buf_printf(&e.b,
                   "/* kforge formula: out = F(i, j), %s; i indexes cat-0 variables, j cat-1.\n"
                   " * Generated; self-contained. */\n",
                   dtype_name(dtype));
    prelude(&e.b, dtype);
    kfk_buf_printf(&e.b, "void kf_formula(const void *const *args, kf_i64 i, kf_i64 j, KF_T *out)\n{\n");
    const char *rows[3] = {"i", "j", NULL};
    emit_level(&e, LV_P, rows);
    char c[CAP];
    comp(&e, p->root, "@", c, sizeof c);
    each_stmt(&e, LV_P, p->nodes[p->root].dim, "out[@] = %s;", c);
    kfk_buf_printf(&e.b, "}\n");
    return finish(&e);
}
