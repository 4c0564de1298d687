/*
 * check.c -- the type checker: sets every node's dim by the DIMRULE of
 * ops.def, validates integer arguments, and builds the variable table.
 *
 * Nodes are visited in index order, which is a topological order (children
 * first), so one pass suffices and nothing recurses. Errors name the node's
 * position and, for conflicts, the position of the other party.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/lex.h"

typedef struct checker {
    kfc_prog *p;
    kfc_diag *d;
    const char *formula, *formula2;
    const char *const *aliases;
    int naliases;
    int32_t *start; /* leftmost byte offset of each node's subtree (operand positions) */
} checker;

static const char *src_text(const checker *C, int src)
{
    if (src == 0)
        return C->formula;
    if (src == 1)
        return C->formula2;
    if (src >= 2 && src - 2 < C->naliases && C->aliases)
        return C->aliases[src - 2];
    return NULL;
}

/* "L:C" of an offset in source src, plus where it is when that differs from `here`. */
static void where(const checker *C, int src, int64_t off, int here, char *buf, size_t cap)
{
    const char *t = src_text(C, src);
    kfc_linecol(t, t ? off : 0, buf, cap);
    size_t n = strlen(buf);
    if (src != here && n < cap) {
        if (src >= 2)
            snprintf(buf + n, cap - n, " of alias %d", src - 2);
        else
            snprintf(buf + n, cap - n, " of %s", src == 1 ? "formula2" : "the formula");
    }
}

/* An error at node k: "L:C: message". */
__attribute__((format(printf, 4, 5))) static int err(checker *C, int32_t k, int status,
                                                    const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const kfc_node *n = &C->p->nodes[k];
    const char *t = src_text(C, n->src);
    if (!t)
        return kfc_diag_set(C->d, status, n->pos, n->src, "%s", msg);
    return kfc_diag_at(C->d, status, t, n->pos, n->src, "%s", msg);
}

/* "Pow(f,m)" from the op's DOC, or just its name. */
static void sig(int op, char *buf, size_t cap)
{
    const char *doc = kfc_op_info[op].doc, *name = kfc_op_info[op].name, *e = strchr(doc, ')');
    if (e && strncmp(doc, name, strlen(name)) == 0 && doc[strlen(name)] == '(')
        snprintf(buf, cap, "%.*s", (int)(e - doc + 1), doc);
    else
        snprintf(buf, cap, "%s", name);
}

/* Name of integer argument i of op, from its signature ("m" of Pow(f,m)). */
static void int_name(int op, int i, char *buf, size_t cap)
{
    char s[96];
    const char *p = s;
    sig(op, s, sizeof s);
    for (int c = 0; c <= kfc_op_info[op].nargs + i && p && (p = strpbrk(p, "(,")); c++)
        p++;
    snprintf(buf, cap, "%.*s", p ? (int)strcspn(p, ",)") : 0, p ? p : "?");
}

/* Integer argument i of node k must lie in [lo, hi]; above hi gives status_hi. */
static int int_range(checker *C, int32_t k, int i, int64_t lo, int64_t hi, int status_hi)
{
    const kfc_node *n = &C->p->nodes[k];
    int64_t v = n->iv[i];
    if (v >= lo && v <= hi)
        return KF_OK;
    char s[96], nm[32];
    sig(n->op, s, sizeof s);
    int_name(n->op, i, nm, sizeof nm);
    return err(C, k, v > hi ? status_hi : KF_ERR_TYPE, "%s: %s = %lld is out of range (%lld to %lld)",
               s, nm, (long long)v, (long long)lo, (long long)hi);
}

/* Argument c (0-based) of node k must have dim 1. */
static int scalar_arg(checker *C, int32_t k, int c)
{
    const kfc_node *n = &C->p->nodes[k];
    int32_t dim = C->p->nodes[n->a[c]].dim;
    if (dim == 1)
        return KF_OK;
    char s[96];
    sig(n->op, s, sizeof s);
    return err(C, k, KF_ERR_TYPE, "%s: argument %d must have dim 1, got dim %d", s, c + 1, dim);
}

/* Broadcasting over children first..nargs-1: each dim is the largest or
 * `unit` (1 for real element-wise ops; 2, one complex number repeated, for
 * complex ones, whose message says so in `rule`). Returns the largest, or -1
 * (error set, naming the two operands that disagree). */
static int32_t broadcast(checker *C, int32_t k, int first, int nargs, int32_t unit,
                         const char *rule)
{
    const kfc_node *n = &C->p->nodes[k];
    int32_t big = 0, at = first;
    for (int c = first; c < nargs; c++)
        if (C->p->nodes[n->a[c]].dim > big)
            big = C->p->nodes[n->a[c]].dim, at = c;
    for (int c = first; c < nargs; c++) {
        int32_t dim = C->p->nodes[n->a[c]].dim;
        if (dim == big || dim == unit)
            continue;
        int lo = c < at ? c : at, hi = c < at ? at : c;
        const kfc_node *x = &C->p->nodes[n->a[lo]], *y = &C->p->nodes[n->a[hi]];
        char wx[64], wy[64]; /* no start offsets: a node built by a pass (kfc_check_dim) */
        where(C, x->src, C->start ? C->start[n->a[lo]] : x->pos, n->src, wx, sizeof wx);
        where(C, y->src, C->start ? C->start[n->a[hi]] : y->pos, n->src, wy, sizeof wy);
        err(C, k, KF_ERR_TYPE, "dims %d and %d of %s do not broadcast%s (operands at %s and %s)",
            x->dim, y->dim, kfc_op_info[n->op].name, rule, wx, wy);
        return -1;
    }
    return big;
}

/* Element-wise broadcasting over children first..nargs-1: each dim is the
 * largest or 1. Returns the largest, or -1 (error set). */
static int32_t bcast(checker *C, int32_t k, int first, int nargs)
{
    return broadcast(C, k, first, nargs, 1, "");
}

/* Argument c of node k holds complex numbers: its dim must be even. */
static int even_arg(checker *C, int32_t k, int c)
{
    const kfc_node *n = &C->p->nodes[k];
    int32_t dim = C->p->nodes[n->a[c]].dim;
    if (dim % 2 == 0)
        return KF_OK;
    char s[96];
    sig(n->op, s, sizeof s);
    return err(C, k, KF_ERR_TYPE,
               "%s: argument %d must be complex (an even dim: re, im pairs), got dim %d", s, c + 1, dim);
}

/* Complex broadcasting over the children: even dims, each the largest or 2
 * (one complex number, repeated), as KeOps' complex element-wise ops. Returns
 * the largest, or -1 (error set). */
static int32_t cbcast(checker *C, int32_t k)
{
    const kfc_node *n = &C->p->nodes[k];
    int nargs = kfc_op_info[n->op].nargs;
    for (int c = 0; c < nargs; c++)
        if (even_arg(C, k, c))
            return -1;
    return broadcast(C, k, 0, nargs, 2, " (complex: equal, or one of them 2)");
}

static int check_var(checker *C, int32_t k)
{
    kfc_node *n = &C->p->nodes[k];
    if (int_range(C, k, 0, 0, KFC_MAX_VARS - 1, KF_ERR_LIMIT) ||
        int_range(C, k, 1, 1, KFC_MAX_DIM, KF_ERR_LIMIT) || int_range(C, k, 2, 0, 2, KF_ERR_TYPE))
        return C->d->status;
    static const char *const cats[] = {"an i-variable (cat 0)", "a j-variable (cat 1)",
                                       "a parameter (cat 2)"};
    int idx = (int)n->iv[0], cat = (int)n->iv[2];
    int32_t dim = (int32_t)n->iv[1];
    kfc_var *v = &C->p->vars[idx];
    n->dim = dim;
    if (!v->used) {
        *v = (kfc_var){.used = 1, .cat = cat, .dim = dim, .pos = n->pos, .src = n->src};
        if (idx + 1 > C->p->nvars)
            C->p->nvars = idx + 1;
        return KF_OK;
    }
    char w[64];
    where(C, v->src, v->pos, n->src, w, sizeof w);
    if (v->cat != cat)
        return err(C, k, KF_ERR_TYPE, "Var(%d,...) is %s here but %s at %s", idx, cats[cat], cats[v->cat],
                   w);
    if (v->dim != dim)
        return err(C, k, KF_ERR_TYPE, "Var(%d,...) has dim %d here but dim %d at %s", idx, dim, v->dim, w);
    return KF_OK;
}

/* The ops whose dim needs more than the table's rule. Returns the dim or -1. */
static int32_t check_special(checker *C, int32_t k)
{
    kfc_node *n = &C->p->nodes[k];
    kfc_prog *p = C->p;
    int64_t d0 = n->a[0] >= 0 ? p->nodes[n->a[0]].dim : 0, d1 = n->a[1] >= 0 ? p->nodes[n->a[1]].dim : 0;
    char s[96];
    sig(n->op, s, sizeof s);
    switch (n->op) {
    case KFC_OP_WEIGHTEDSQNORM:
    case KFC_OP_WEIGHTEDSQDIST: {
        /* s is not broadcast: its dim selects the isotropic, diagonal or full reading. */
        int64_t D = d1;
        if (n->op == KFC_OP_WEIGHTEDSQDIST && (D = bcast(C, k, 1, 3)) < 0)
            return -1;
        if (d0 != 1 && d0 != D && d0 != D * D)
            return err(C, k, KF_ERR_TYPE, "%s: dim s = %lld must be 1, %lld or %lld (dim f squared)", s,
                       (long long)d0, (long long)D, (long long)(D * D)),
                   -1;
        return 1;
    }
    case KFC_OP_ELEM:
        return int_range(C, k, 0, 0, d0 - 1, KF_ERR_TYPE) ? -1 : 1;
    case KFC_OP_ELEMT:
        if (scalar_arg(C, k, 0) || int_range(C, k, 0, 1, KFC_MAX_DIM, KF_ERR_LIMIT) ||
            int_range(C, k, 1, 0, n->iv[0] - 1, KF_ERR_TYPE))
            return -1;
        return (int32_t)n->iv[0];
    case KFC_OP_EXTRACT:
        if (int_range(C, k, 0, 0, d0 - 1, KF_ERR_TYPE) || int_range(C, k, 1, 1, d0 - n->iv[0], KF_ERR_TYPE))
            return -1;
        return (int32_t)n->iv[1];
    case KFC_OP_EXTRACTT:
        if (int_range(C, k, 1, d0, KFC_MAX_DIM, KF_ERR_LIMIT) ||
            int_range(C, k, 0, 0, n->iv[1] - d0, KF_ERR_TYPE))
            return -1;
        return (int32_t)n->iv[1];
    case KFC_OP_ONEHOT:
    case KFC_OP_SUMT:
        if (scalar_arg(C, k, 0) || int_range(C, k, 0, 1, KFC_MAX_DIM, KF_ERR_LIMIT))
            return -1;
        return (int32_t)n->iv[0];
    case KFC_OP_CONCAT:
    case KFC_OP_TENSORPROD: {
        int64_t dim = n->op == KFC_OP_CONCAT ? d0 + d1 : d0 * d1;
        if (dim > KFC_MAX_DIM)
            return err(C, k, KF_ERR_LIMIT, "%s: result dim %lld is too large (at most %d)", s,
                       (long long)dim, KFC_MAX_DIM),
                   -1;
        return (int32_t)dim;
    }
    case KFC_OP_COMPLEXSUM:
        return even_arg(C, k, 0) ? -1 : 2;
    case KFC_OP_COMPLEXSUMT:
        if (d0 != 2)
            return err(C, k, KF_ERR_TYPE, "%s: f must be one complex number (dim 2), got dim %lld", s,
                       (long long)d0),
                   -1;
        if (int_range(C, k, 0, 2, KFC_MAX_DIM, KF_ERR_LIMIT))
            return -1;
        if (n->iv[0] % 2)
            return err(C, k, KF_ERR_TYPE,
                       "%s: d = %lld must be even (the real dim of the result: 2 per complex number)", s,
                       (long long)n->iv[0]),
                   -1;
        return (int32_t)n->iv[0];
    case KFC_OP_COMPLEXSCAL:
    case KFC_OP_COMPLEXREALSCAL: {
        /* One argument is the scalar (complex: dim 2, real: dim 1), either
         * one, as KeOps swaps them; the other is complex and gives the dim. */
        int64_t sd = n->op == KFC_OP_COMPLEXSCAL ? 2 : 1, other = d0 == sd ? d1 : d1 == sd ? d0 : -1;
        if (other < 0 || other % 2)
            return err(C, k, KF_ERR_TYPE,
                       "%s: one argument must be %s (dim %lld) and the other complex (an even dim); "
                       "got dims %lld and %lld",
                       s, sd == 2 ? "one complex number" : "a real scalar", (long long)sd, (long long)d0,
                       (long long)d1),
                   -1;
        return (int32_t)other;
    }
    case KFC_OP_TENSORDOT: {
        kfc_tdot_shape sh;
        kfc_tdot_shape_of(&n->td, &sh);
        if (sh.dima != d0 || sh.dimb != d1)
            return err(C, k, KF_ERR_TYPE, "TensorDot: %s has dim %lld, but its shape lists %lld components",
                       sh.dima != d0 ? "a" : "b", (long long)(sh.dima != d0 ? d0 : d1),
                       (long long)(sh.dima != d0 ? sh.dima : sh.dimb)),
                   -1;
        if (sh.dim > KFC_MAX_DIM)
            return err(C, k, KF_ERR_LIMIT, "TensorDot: result dim %lld is too large (at most %d)",
                       (long long)sh.dim, KFC_MAX_DIM),
                   -1;
        return (int32_t)sh.dim;
    }
    case KFC_OP_BSPLINE:
        if (scalar_arg(C, k, 1))
            return -1;
        if (d0 < 2)
            return err(C, k, KF_ERR_TYPE, "%s: t needs at least 2 knots, got dim %lld", s, (long long)d0), -1;
        /* the order bounds the triangle every tier keeps per spline */
        if (int_range(C, k, 0, 0, d0 - 2, KF_ERR_TYPE) || int_range(C, k, 0, 0, KFC_BSPLINE_MAX_ORDER, KF_ERR_LIMIT))
            return -1;
        return (int32_t)(d0 - n->iv[0] - 1);
    case KFC_OP_SOFTDTW_SQDIST:
    case KFC_OP_GRADSOFTDTW_SQDIST:
        if (scalar_arg(C, k, 2))
            return -1;
        /* every tier keeps the DP table of one pair (the gradient's is n*m
         * values) in its locals: bounded so generated code cannot blow a
         * stack, nor a GPU's per-thread local memory */
        if (d0 * d1 > KFC_SOFTDTW_MAX_CELLS)
            return err(C, k, KF_ERR_LIMIT, "%s: n*m = %lld*%lld = %lld is too large (at most %d)", s,
                       (long long)d0, (long long)d1, (long long)(d0 * d1), KFC_SOFTDTW_MAX_CELLS),
                   -1;
        return n->op == KFC_OP_SOFTDTW_SQDIST ? 1 : (int32_t)(d0 + d1);
    case KFC_OP_MATVECMULT:
    case KFC_OP_VECMATMULT: {
        int64_t da = n->op == KFC_OP_MATVECMULT ? d0 : d1, db = n->op == KFC_OP_MATVECMULT ? d1 : d0;
        if (da % db != 0)
            return err(C, k, KF_ERR_TYPE, "%s: dim A = %lld is not a multiple of dim b = %lld", s,
                       (long long)da, (long long)db),
                   -1;
        return (int32_t)(da / db);
    }
    default:
        return err(C, k, KF_ERR_INTERNAL, "no dim rule for %s", kfc_op_info[n->op].name), -1;
    }
}

/* Grad(f,v,e), Diff(f,v,u), GradMatrix(f,v), Laplacian(f,v), Divergence(f,v):
 * v must be a variable, the dims as their DOC says. Returns the dim or -1. */
static int32_t check_deriv(checker *C, int32_t k)
{
    const kfc_node *n = &C->p->nodes[k], *f = &C->p->nodes[n->a[0]], *v = &C->p->nodes[n->a[1]];
    int32_t de = n->a[2] >= 0 ? C->p->nodes[n->a[2]].dim : 0;
    char s[96];
    sig(n->op, s, sizeof s);
    if (v->op != KFC_OP_VAR)
        return err(C, k, KF_ERR_TYPE,
                   "%s: v must be a variable (Var, Vi, Vj, Pm or an alias), got an expression (%s)", s,
                   kfc_op_info[v->op].name),
               -1;
    switch (n->op) {
    case KFC_OP_GRAD:
    case KFC_OP_GRADSF:
        if (de != f->dim)
            return err(C, k, KF_ERR_TYPE, "%s: dim e = %d must equal dim f = %d", s, (int)de, (int)f->dim), -1;
        return v->dim;
    case KFC_OP_DIFF:
        if (de != v->dim)
            return err(C, k, KF_ERR_TYPE, "%s: dim u = %d must equal dim v = %d", s, (int)de, (int)v->dim), -1;
        return f->dim;
    case KFC_OP_GRADMATRIX:
        if ((int64_t)f->dim * v->dim > KFC_MAX_DIM)
            return err(C, k, KF_ERR_LIMIT, "%s: result dim %lld is too large (at most %d)", s,
                       (long long)f->dim * v->dim, KFC_MAX_DIM),
                   -1;
        return f->dim * v->dim;
    case KFC_OP_LAPLACIAN:
        if (f->dim != 1)
            return err(C, k, KF_ERR_TYPE, "%s: f must be a scalar (dim 1), got dim %d", s, (int)f->dim), -1;
        return 1;
    case KFC_OP_DIVERGENCE:
        if (f->dim != v->dim)
            return err(C, k, KF_ERR_TYPE, "%s: dim f = %d must equal dim v = %d", s, (int)f->dim, (int)v->dim),
                   -1;
        return 1;
    default:
        return err(C, k, KF_ERR_INTERNAL, "no dim rule for %s", kfc_op_info[n->op].name), -1;
    }
}

/* Dim of node k by its rule; also validates integer arguments. -1 on error. */
static int32_t check_node(checker *C, int32_t k)
{
    kfc_node *n = &C->p->nodes[k];
    const kfc_opinfo *oi = &kfc_op_info[n->op];
    int32_t d0 = n->a[0] >= 0 ? C->p->nodes[n->a[0]].dim : 0;
    switch (n->op) {
    case KFC_OP_VAR:
        return check_var(C, k) ? -1 : n->dim;
    case KFC_OP_INTCST:
        n->val = (double)n->iv[0];
        return 1;
    case KFC_OP_RATCST:
        if (n->iv[1] == 0)
            return err(C, k, KF_ERR_TYPE, "RatCst(p,q): q must not be 0"), -1;
        n->val = (double)n->iv[0] / (double)n->iv[1];
        return 1;
    case KFC_OP_ZERO:
        return int_range(C, k, 0, 1, KFC_MAX_DIM, KF_ERR_LIMIT) ? -1 : (int32_t)n->iv[0];
    case KFC_OP_NUM:
        return 1;
    case KFC_OP_POW:
        return int_range(C, k, 0, -1024, 1024, KF_ERR_TYPE) ? -1 : d0;
    case KFC_OP_ROUND:
        return int_range(C, k, 0, 0, 15, KF_ERR_TYPE) ? -1 : d0;
    case KFC_OP_CLAMPINT:
    case KFC_OP_DIFFCLAMPINT:
        if (n->iv[0] > n->iv[1])
            return err(C, k, KF_ERR_TYPE, "%s(f,a,b): a = %lld is larger than b = %lld", oi->name,
                       (long long)n->iv[0], (long long)n->iv[1]),
                   -1;
        return d0;
    default:
        break;
    }
    switch (oi->rule) {
    case KFC_DR_SAME:
        return d0;
    case KFC_DR_BCAST:
        return bcast(C, k, 0, oi->nargs);
    case KFC_DR_RED:
        return 1;
    case KFC_DR_RED2:
        return bcast(C, k, 0, 2) < 0 ? -1 : 1;
    case KFC_DR_CBCAST:
        return cbcast(C, k);
    case KFC_DR_CHALF:
        return even_arg(C, k, 0) ? -1 : d0 / 2;
    case KFC_DR_CTWICE:
        if ((int64_t)d0 * 2 > KFC_MAX_DIM) {
            char s[96];
            sig(n->op, s, sizeof s);
            return err(C, k, KF_ERR_LIMIT, "%s: result dim %lld is too large (at most %d)", s,
                       (long long)d0 * 2, KFC_MAX_DIM),
                   -1;
        }
        return 2 * d0;
    case KFC_DR_SPECIAL:
        return check_special(C, k);
    case KFC_DR_DERIV:
        return check_deriv(C, k);
    default:
        return err(C, k, KF_ERR_INTERNAL, "no dim rule for %s", oi->name), -1;
    }
}

/* The IR invariant the passes rely on: op known, children < parent, -1 beyond nargs. */
static int well_formed(const kfc_prog *p, int32_t k)
{
    const kfc_node *n = &p->nodes[k];
    if (n->op < 0 || n->op >= KFC_OP_COUNT)
        return 0;
    for (int c = 0; c < 3; c++) {
        int want = c < kfc_op_info[n->op].nargs;
        if (want ? (n->a[c] < 0 || n->a[c] >= k) : n->a[c] != -1)
            return 0;
    }
    return 1;
}

/* Sum of dims of the reachable nodes (a variable counted once): the per-pair scratch. */
static int check_total(checker *C)
{
    kfc_prog *p = C->p;
    char *mark = calloc((size_t)p->nnodes + 1, 1), seen[KFC_MAX_VARS] = {0};
    if (!mark)
        return kfc_diag_set(C->d, KF_ERR_NOMEM, -1, -1, "out of memory");
    if (p->root >= 0)
        mark[p->root] = 1;
    if (p->root2 >= 0)
        mark[p->root2] = 1;
    int64_t total = 0;
    for (int32_t k = p->nnodes - 1; k >= 0; k--) {
        const kfc_node *n = &p->nodes[k];
        if (!mark[k])
            continue;
        for (int c = 0; c < 3 && n->a[c] >= 0; c++)
            mark[n->a[c]] = 1;
        if (n->op != KFC_OP_VAR)
            total += n->dim;
        else if (!seen[n->iv[0]])
            seen[n->iv[0]] = 1, total += n->dim;
    }
    free(mark);
    if (total > KFC_MAX_TOTAL_DIM)
        return err(C, p->root, KF_ERR_LIMIT,
                   "formula too large: %lld values per pair of points (at most %d)", (long long)total,
                   KFC_MAX_TOTAL_DIM);
    return KF_OK;
}

int kfc_check(kfc_prog *p, const char *formula, const char *formula2, const char *const *aliases,
              int naliases, kfc_diag *d)
{
    kfc_diag_clear(d);
    if (p->root < 0 || p->root >= p->nnodes || p->root2 >= p->nnodes)
        return kfc_diag_set(d, KF_ERR_INTERNAL, -1, -1, "check: no formula parsed");
    checker C = {p, d, formula, formula2, aliases, naliases, NULL};
    C.start = malloc((size_t)p->nnodes * sizeof *C.start);
    if (!C.start)
        return kfc_diag_set(d, KF_ERR_NOMEM, -1, -1, "out of memory");
    memset(p->vars, 0, sizeof p->vars);
    p->nvars = 0;
    int st = KF_OK;
    for (int32_t k = 0; k < p->nnodes && !st; k++) {
        kfc_node *n = &p->nodes[k];
        if (!well_formed(p, k)) {
            st = kfc_diag_set(d, KF_ERR_INTERNAL, -1, -1, "check: malformed node %d", (int)k);
            break;
        }
        C.start[k] = n->pos;
        for (int c = 0; c < 3 && n->a[c] >= 0; c++)
            if (p->nodes[n->a[c]].src == n->src && C.start[n->a[c]] < C.start[k])
                C.start[k] = C.start[n->a[c]];
        int32_t dim = check_node(&C, k);
        if (dim < 0)
            st = d->status;
        else
            n->dim = dim;
    }
    free(C.start);
    /* Derivatives become plain formulas here, so that every later pass (and
     * every caller of kfc_check) sees differentiated IR only. */
    if (!st)
        st = kfc_autodiff(p, formula, formula2, aliases, naliases, d);
    if (!st)
        st = check_total(&C);
    return st;
}

int32_t kfc_check_dim(kfc_prog *p, int32_t k, const char *formula, const char *formula2,
                      const char *const *aliases, int naliases, kfc_diag *d)
{
    checker C = {p, d, formula, formula2, aliases, naliases, NULL};
    const kfc_node *n = &p->nodes[k];
    if (!well_formed(p, k) || n->op == KFC_OP_VAR)
        return kfc_diag_set(d, KF_ERR_INTERNAL, -1, -1, "check: malformed node %d", (int)k), -1;
    return check_node(&C, k);
}
