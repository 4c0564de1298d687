/*
 * autodiff.c -- symbolic differentiation: Grad, Diff, GradMatrix, Laplacian,
 * Divergence and Grad_WithSavedForward become plain formulas (kfc_autodiff,
 * the last step of kfc_check).
 *
 * Reverse mode, as KeOps does it. Grad(f,v,e) walks f's nodes from the root
 * down (node indices are a topological order): each node that depends on v
 * passes its share of the gradient to each argument that does, by its DERIV
 * rule of ops.def, and the shares reaching v add up to the result. The other
 * operators are built on it:
 *
 *   Diff(f,v,u)     = Grad(Grad(f,v,t), t, u) for a fresh variable t: Grad(f,v,t)
 *                     is J^T t, linear in t, so its gradient in t applied to u
 *                     is J u (KeOps' AdjointOperator); t cannot remain
 *   GradMatrix(f,v) = Concat of Grad(f,v,e_k), e_k = ElemT(1,dim f,k), k = 0, 1, ...
 *   Divergence(f,v) = sum_k Elem(Grad(f,v,e_k), k), e_k of dim v
 *   Laplacian(f,v)  = Divergence(Grad(f,v,1), v)
 *
 * The program is rebuilt into a fresh node array in index order, a derivative
 * operator's node mapped to the root of its expansion, so children < parent
 * holds and nested derivatives work (the inner one is expanded first, the
 * outer one differentiates its expansion). Every node goes through the
 * hash-consing table, so equal subtrees are one node while the expansion
 * grows (kfc_simplify merges the rest); the nodes the rules build also go
 * through `mk`, which applies the simplifications that hold for every value:
 * a Zero argument of a linear op, a factor 1, Elem of ElemT, Minus(Minus(x)).
 * (A Zero times a NaN is taken as Zero, as KeOps does.)
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/ir.h"

#define NONE (-2) /* a rule's "no share": a derivative that is zero almost everywhere */
#define TABLE_CAP (2 * KFC_MAX_NODES) /* a power of 2 above twice the node limit */

typedef struct ad {
    kfc_prog *p; /* the program being built */
    kfc_diag *d;
    const char *formula, *formula2; /* for messages only */
    const char *const *aliases;
    int naliases;
    int32_t pos;   /* the derivative operator being expanded: */
    int16_t src;   /* what it builds points there in messages */
    int32_t *table; /* hash-consing: node indices, -1 empty */
    int ntemp;     /* fresh variables made so far (Diff) */
} ad;

/* ---------- nodes: hash-consing and the simplifying constructor ---------- */

/* The last node of the array, complete with its dim, becomes the shared one:
 * returns an equal earlier node (dropping the last) or the last itself. */
static int32_t intern_last(ad *A)
{
    kfc_prog *p = A->p;
    int32_t k = p->nnodes - 1;
    size_t h = (size_t)kfc_node_hash(&p->nodes[k]) & (TABLE_CAP - 1);
    while (A->table[h] >= 0 && !kfc_node_same(&p->nodes[A->table[h]], &p->nodes[k]))
        h = (h + 1) & (TABLE_CAP - 1);
    if (A->table[h] >= 0) {
        p->nnodes--;
        return A->table[h];
    }
    return A->table[h] = k;
}

/* A copy of node x (dim set, children already in the new program), shared. */
static int32_t put(ad *A, const kfc_node *x)
{
    int32_t k = kfc_node_new(A->p, x->op, x->pos, x->src, A->d);
    if (k < 0)
        return -1;
    A->p->nodes[k] = *x;
    return intern_last(A);
}

static const kfc_node *N(const ad *A, int32_t k) { return &A->p->nodes[k]; }
static int is_zero(const ad *A, int32_t k) { return N(A, k)->op == KFC_OP_ZERO; }
static int is_one(const ad *A, int32_t k)
{
    const kfc_node *n = N(A, k);
    return (n->op == KFC_OP_INTCST && n->iv[0] == 1) || (n->op == KFC_OP_NUM && n->val == 1);
}

static int32_t mk(ad *A, int op, int32_t a0, int32_t a1, int32_t a2, int64_t i0, int64_t i1);

static int32_t zero(ad *A, int32_t dim) { return mk(A, KFC_OP_ZERO, -1, -1, -1, dim, 0); }

/* Ops whose value is 0 when all their (formula) arguments are; and those
 * whose value is 0 when any is (products). */
static int linear_op(int op)
{
    switch (op) {
    case KFC_OP_ADD: case KFC_OP_SUBTRACT: case KFC_OP_MINUS: case KFC_OP_SUM: case KFC_OP_SUMT:
    case KFC_OP_ELEM: case KFC_OP_ELEMT: case KFC_OP_EXTRACT: case KFC_OP_EXTRACTT: case KFC_OP_CONCAT:
    case KFC_OP_COMPLEXREAL: case KFC_OP_COMPLEXIMAG: case KFC_OP_REAL2COMPLEX: case KFC_OP_IMAG2COMPLEX:
    case KFC_OP_CONJ: case KFC_OP_COMPLEXADD: case KFC_OP_COMPLEXSUBTRACT: case KFC_OP_COMPLEXSUM:
    case KFC_OP_COMPLEXSUMT:
        return 1;
    default:
        return 0;
    }
}

static int product_op(int op)
{
    switch (op) {
    case KFC_OP_MULT: case KFC_OP_SCALPROD: case KFC_OP_MATVECMULT: case KFC_OP_VECMATMULT:
    case KFC_OP_TENSORPROD: case KFC_OP_TENSORDOT: case KFC_OP_COMPLEXMULT: case KFC_OP_COMPLEXSCAL: case KFC_OP_COMPLEXREALSCAL:
        return 1;
    default:
        return 0;
    }
}

/* Component k of node q: q itself if it has dim 1 (a broadcast scalar). */
static int32_t comp(ad *A, int32_t q, int64_t k)
{
    return N(A, q)->dim == 1 ? q : mk(A, KFC_OP_ELEM, q, -1, -1, k, 0);
}

/* A one-hot argument (ElemT(x,D,k): the gradient seeds of GradMatrix and
 * Divergence) kept one-hot through products, sums and Elem, so that these
 * operators compute one component where they would compute D. */
static int32_t one_hot(ad *A, const kfc_node *x)
{
    if (kfc_op_info[x->op].nargs == 0)
        return -2;
    /* copies: every mk may move the node array */
    int32_t a = x->a[0], b = x->a[1], D = x->dim;
    kfc_node na = *N(A, a), nb = b >= 0 ? *N(A, b) : (kfc_node){.op = KFC_OP_ZERO};
    switch (x->op) {
    case KFC_OP_MULT:
        if (nb.op == KFC_OP_ELEMT && na.op != KFC_OP_ELEMT) {
            kfc_node t = na;
            na = nb, nb = t, b = x->a[0];
        }
        if (na.op == KFC_OP_ELEMT && D == na.dim) { /* e_k x times b: e_k (x b_k) */
            int64_t k = na.iv[1];
            int32_t bk = comp(A, b, k), t = bk < 0 ? -1 : mk(A, KFC_OP_MULT, na.a[0], bk, -1, 0, 0);
            return t < 0 ? -1 : mk(A, KFC_OP_ELEMT, t, -1, -1, D, k);
        }
        break;
    case KFC_OP_ADD:
    case KFC_OP_SUBTRACT:
        if (na.op == KFC_OP_ELEMT && nb.op == KFC_OP_ELEMT && na.iv[1] == nb.iv[1]) {
            int32_t t = mk(A, x->op, na.a[0], nb.a[0], -1, 0, 0);
            return t < 0 ? -1 : mk(A, KFC_OP_ELEMT, t, -1, -1, D, na.iv[1]);
        }
        break;
    case KFC_OP_SUM:
        if (na.op == KFC_OP_ELEMT)
            return na.a[0];
        break;
    case KFC_OP_ELEM: /* through the linear ops, down to the ElemT */
        if (na.op == KFC_OP_ADD || na.op == KFC_OP_SUBTRACT || na.op == KFC_OP_MULT) {
            int32_t p = comp(A, na.a[0], x->iv[0]), q = p < 0 ? -1 : comp(A, na.a[1], x->iv[0]);
            return q < 0 ? -1 : mk(A, na.op, p, q, -1, 0, 0);
        }
        if (na.op == KFC_OP_MINUS) {
            int32_t p = comp(A, na.a[0], x->iv[0]);
            return p < 0 ? -1 : mk(A, KFC_OP_MINUS, p, -1, -1, 0, 0);
        }
        break;
    default:
        break;
    }
    return -2;
}

/* A simpler node equal to the one just built (the array's last, dim D), or -1 for none. */
static int32_t simpler(ad *A, const kfc_node *x)
{
    int nargs = kfc_op_info[x->op].nargs, nz = 0;
    int32_t a = x->a[0], b = x->a[1], D = x->dim;
    for (int c = 0; c < nargs; c++)
        nz += is_zero(A, x->a[c]);
    if (nargs && ((linear_op(x->op) && nz == nargs) || (product_op(x->op) && nz > 0)))
        return zero(A, D);
    switch (x->op) {
    case KFC_OP_ADD:
    case KFC_OP_COMPLEXADD:
        if (is_zero(A, a) && N(A, b)->dim == D)
            return b;
        if (is_zero(A, b) && N(A, a)->dim == D)
            return a;
        break;
    case KFC_OP_SUBTRACT:
    case KFC_OP_COMPLEXSUBTRACT:
        if (is_zero(A, b) && N(A, a)->dim == D)
            return a;
        if (is_zero(A, a) && N(A, b)->dim == D)
            return mk(A, KFC_OP_MINUS, b, -1, -1, 0, 0);
        break;
    case KFC_OP_MULT:
        if (is_one(A, a) && N(A, b)->dim == D)
            return b;
        if (is_one(A, b) && N(A, a)->dim == D)
            return a;
        break;
    case KFC_OP_DIVIDE:
    case KFC_OP_COMPLEXDIVIDE:
        if (is_zero(A, a))
            return zero(A, D);
        if (x->op == KFC_OP_DIVIDE && is_one(A, b) && N(A, a)->dim == D)
            return a;
        break;
    case KFC_OP_IFELSE:
        if (is_zero(A, b) && is_zero(A, x->a[2]))
            return zero(A, D);
        break;
    case KFC_OP_MINUS:
        if (N(A, a)->op == KFC_OP_MINUS)
            return N(A, a)->a[0];
        break;
    case KFC_OP_SUM:
        if (N(A, a)->dim == 1)
            return a;
        break;
    case KFC_OP_ELEM:
        if (N(A, a)->op == KFC_OP_ELEMT)
            return N(A, a)->iv[1] == x->iv[0] ? N(A, a)->a[0] : zero(A, 1);
        if (N(A, a)->op == KFC_OP_SUMT)
            return N(A, a)->a[0];
        break;
    case KFC_OP_EXTRACT:
        if (x->iv[0] == 0 && N(A, a)->dim == D)
            return a;
        break;
    default:
        break;
    }
    int32_t h = one_hot(A, x);
    return h == -2 ? -1 : h < 0 ? -3 : h;
}

/* The node op(a0,a1,a2; i0,i1), its dim by the checker's rules, simplified
 * and shared. -1 with A->d set. */
static int32_t mk(ad *A, int op, int32_t a0, int32_t a1, int32_t a2, int64_t i0, int64_t i1)
{
    int32_t k = kfc_node_new(A->p, op, A->pos, A->src, A->d);
    if (k < 0)
        return -1;
    kfc_node *x = &A->p->nodes[k];
    x->a[0] = a0, x->a[1] = a1, x->a[2] = a2;
    x->iv[0] = i0, x->iv[1] = i1;
    int32_t dim = kfc_check_dim(A->p, k, A->formula, A->formula2, A->aliases, A->naliases, A->d);
    if (dim < 0) {
        if (A->d->status != KF_ERR_LIMIT) /* the rules built a node the checker refuses */
            kfc_diag_set(A->d, KF_ERR_INTERNAL, A->pos, A->src,
                         "autodiff: built an inconsistent %s (a kforge bug): %s", kfc_op_info[op].name,
                         A->d->msg);
        return -1;
    }
    A->p->nodes[k].dim = dim;
    kfc_node cp = A->p->nodes[k];
    int32_t s = op == KFC_OP_ZERO ? -1 : simpler(A, &cp);
    if (s == -3 || (s == -1 && A->d->status))
        return -1;
    if (s >= 0) { /* the candidate is the last node unless simpler built more: then it stays unused */
        if (A->p->nnodes == k + 1)
            A->p->nnodes--;
        return s;
    }
    return intern_last(A);
}

/* ---------- the rules of ops.def's DERIV column ---------- */

/* Reading one rule: the node whose share it builds (k), the gradient at k (g). */
typedef struct rule {
    ad *A;
    const char *s;
    int32_t k, g;
    kfc_node x; /* node k (a copy: the array moves as nodes are added) */
} rule;

static int rule_bad(rule *R, const char *why)
{
    return kfc_diag_set(R->A->d, KF_ERR_INTERNAL, R->A->pos, R->A->src,
                        "ops.def: DERIV rule of %s: %s at \"%s\" (a kforge bug)",
                        kfc_op_info[R->x.op].name, why, R->s);
}

/* int := term (('+' | '-') term)*   term := ['-'] digits | $0 | $1 | #a | #b | #c | #r */
static int rule_int(rule *R, int64_t *out)
{
    int64_t v = 0;
    int sign = 1;
    for (;;) {
        int64_t t = 0, neg = 1;
        if (*R->s == '-')
            neg = -1, R->s++;
        if (isdigit((unsigned char)*R->s)) {
            while (isdigit((unsigned char)*R->s))
                t = t * 10 + (*R->s++ - '0');
        } else if (R->s[0] == '$' && (R->s[1] == '0' || R->s[1] == '1')) {
            t = R->x.iv[R->s[1] - '0'], R->s += 2;
        } else if (R->s[0] == '#' && strchr("abcr", R->s[1]) && R->s[1]) {
            int c = R->s[1] == 'r' ? -1 : R->s[1] - 'a';
            if (c >= kfc_op_info[R->x.op].nargs)
                return rule_bad(R, "no such argument");
            t = c < 0 ? R->x.dim : N(R->A, R->x.a[c])->dim, R->s += 2;
        } else {
            return rule_bad(R, "integer expected");
        }
        v += sign * neg * t;
        if (*R->s != '+' && *R->s != '-')
            break;
        sign = *R->s++ == '-' ? -1 : 1;
    }
    *out = v;
    return KF_OK;
}

/* expr := a | b | c | g | r | int (an IntCst) | NAME '(' expr,... int,... ')' */
static int32_t rule_expr(rule *R)
{
    const char *s = R->s;
    if (strchr("abcgr", s[0]) && s[0] && !isalnum((unsigned char)s[1])) {
        R->s++;
        if (s[0] == 'g')
            return R->g;
        if (s[0] == 'r')
            return R->k;
        int c = s[0] - 'a';
        if (c >= kfc_op_info[R->x.op].nargs)
            return rule_bad(R, "no such argument"), -1;
        return R->x.a[c];
    }
    if (!isupper((unsigned char)s[0])) {
        int64_t v;
        if (rule_int(R, &v))
            return -1;
        return mk(R->A, KFC_OP_INTCST, -1, -1, -1, v, 0);
    }
    size_t len = 0;
    while (isalnum((unsigned char)s[len]) || s[len] == '_')
        len++;
    int op = kfc_op_lookup(s, len);
    R->s += len;
    if (op < 0 || *R->s != '(')
        return rule_bad(R, "unknown operation"), -1;
    R->s++;
    const kfc_opinfo *oi = &kfc_op_info[op];
    if (oi->nints > 2)
        return rule_bad(R, "no rule builds a variable"), -1;
    int32_t ch[3] = {-1, -1, -1};
    int64_t iv[2] = {0, 0};
    for (int i = 0; i < oi->nargs + oi->nints; i++) {
        if (i > 0 && *R->s++ != ',')
            return rule_bad(R, "',' expected"), -1;
        if (i < oi->nargs ? (ch[i] = rule_expr(R)) < 0 : rule_int(R, &iv[i - oi->nargs]) != KF_OK)
            return -1;
    }
    if (*R->s++ != ')')
        return rule_bad(R, "')' expected"), -1;
    return mk(R->A, op, ch[0], ch[1], ch[2], iv[0], iv[1]);
}

/* WeightedSqNorm(s,f) and WeightedSqDist(s,f,h): the dim of s selects the
 * reading (s |u|^2, sum_k s_k u_k^2, u^T S u with u = f or f - h), so each has
 * its own derivative. The share of argument c. */
static int32_t weighted_share(ad *A, const kfc_node *x, int c, int32_t g)
{
    int32_t s = x->a[0], u = x->a[1];
    if (x->op == KFC_OP_WEIGHTEDSQDIST && (u = mk(A, KFC_OP_SUBTRACT, x->a[1], x->a[2], -1, 0, 0)) < 0)
        return -1;
    int32_t ds = N(A, s)->dim, D = N(A, u)->dim, t;
    int full = ds != 1 && ds != D; /* ds = D*D */
    if (c == 0) {
        if (ds == 1)
            t = mk(A, KFC_OP_SQNORM2, u, -1, -1, 0, 0);
        else
            t = full ? mk(A, KFC_OP_TENSORPROD, u, u, -1, 0, 0) : mk(A, KFC_OP_SQUARE, u, -1, -1, 0, 0);
        return t < 0 ? -1 : mk(A, KFC_OP_MULT, g, t, -1, 0, 0);
    }
    if (full) {
        int32_t l = mk(A, KFC_OP_MATVECMULT, s, u, -1, 0, 0), r = mk(A, KFC_OP_VECMATMULT, u, s, -1, 0, 0);
        t = l < 0 || r < 0 ? -1 : mk(A, KFC_OP_ADD, l, r, -1, 0, 0);
    } else {
        int32_t two = mk(A, KFC_OP_INTCST, -1, -1, -1, 2, 0), su = mk(A, KFC_OP_MULT, s, u, -1, 0, 0);
        t = two < 0 || su < 0 ? -1 : mk(A, KFC_OP_MULT, two, su, -1, 0, 0);
    }
    if (t >= 0)
        t = mk(A, KFC_OP_MULT, g, t, -1, 0, 0);
    return t >= 0 && c == 2 ? mk(A, KFC_OP_MINUS, t, -1, -1, 0, 0) : t;
}

/* TensorDot(g, w, lists of t): its dim by the checker's rules, shared. */
static int32_t mk_tdot(ad *A, int32_t g, int32_t w, const kfc_tdot *t)
{
    int32_t k = kfc_node_new(A->p, KFC_OP_TENSORDOT, A->pos, A->src, A->d);
    if (k < 0)
        return -1;
    kfc_node *x = &A->p->nodes[k];
    x->a[0] = g, x->a[1] = w;
    x->td = *t;
    int32_t dim = kfc_check_dim(A->p, k, A->formula, A->formula2, A->aliases, A->naliases, A->d);
    if (dim < 0) {
        if (A->d->status != KF_ERR_LIMIT)
            kfc_diag_set(A->d, KF_ERR_INTERNAL, A->pos, A->src,
                         "autodiff: built an inconsistent TensorDot (a kforge bug): %s", A->d->msg);
        return -1;
    }
    A->p->nodes[k].dim = dim;
    if (is_zero(A, g) || is_zero(A, w)) {
        A->p->nnodes--;
        return zero(A, dim);
    }
    return intern_last(A);
}

/* TensorDot's share for a (c = 0) or b: the gradient g, shaped as the
 * result, contracted with the other argument w over w's kept axes (each with
 * the output axis it went to), leaving the argument's own kept axes (in
 * output order) and then w's contracted axes (ascending), which the
 * permutation puts back at the argument's axes. */
static int32_t tensordot_share(ad *A, const kfc_node *x, int c, int32_t g)
{
    const kfc_tdot *t = &x->td;
    kfc_tdot_shape sh;
    kfc_tdot_shape_of(t, &sh);
    int mine0 = c == 0 ? 0 : sh.nka, nmine = c == 0 ? sh.nka : sh.nk - sh.nka;
    int other0 = c == 0 ? sh.nka : 0, nother = sh.nk - nmine;
    const uint8_t *cw = c == 0 ? t->cb : t->ca, *cme = c == 0 ? t->ca : t->cb;
    kfc_tdot u;
    memset(&u, 0, sizeof u);
    u.nb = c == 0 ? t->nb : t->na;
    for (int q = 0; q < u.nb; q++)
        u.db[q] = (c == 0 ? t->db : t->da)[q];
    /* g's axes: the output axes, in order */
    u.na = (uint8_t)sh.nk;
    for (int q = 0; q < sh.nk; q++)
        u.da[t->perm[q]] = sh.kdim[q];
    u.nc = (uint8_t)nother;
    for (int q = 0; q < nother; q++) {
        u.ca[q] = t->perm[other0 + q];
        u.cb[q] = (uint8_t)sh.kax[other0 + q];
    }
    /* the new kept axes: g's left (this argument's, by output position), then w's contracted ones */
    int r = 0;
    for (int o = 0; o < sh.nk; o++)
        for (int q = 0; q < nmine; q++)
            if (t->perm[mine0 + q] == o)
                u.perm[r++] = (uint8_t)sh.kax[mine0 + q];
    for (int ax = 0; ax < u.nb; ax++)
        for (int p = 0; p < t->nc; p++)
            if (cw[p] == ax)
                u.perm[r++] = cme[p];
    return mk_tdot(A, g, c == 0 ? x->a[1] : x->a[0], &u);
}

/* BSpline's share for x: k (B_i,k-1/(t_i+k - t_i) - B_i+1,k-1/(t_i+k+1 - t_i+1)),
 * a ratio whose knots coincide counting 0 (B_i,k-1 is 0 there), against g.
 * The knots have none (nor in KeOps). */
static int32_t bspline_share(ad *A, const kfc_node *x, int c, int32_t g)
{
    int64_t K = x->iv[0], n = x->dim;
    if (c == 0)
        return kfc_diag_set(A->d, KF_ERR_UNSUPPORTED, x->pos, x->src,
                            "autodiff: BSpline has no derivative with respect to its knots"),
               -1;
    if (K == 0)
        return NONE;
    int32_t t = x->a[0], q = mk(A, KFC_OP_BSPLINE, t, x->a[1], -1, K - 1, 0);
    int32_t lo = mk(A, KFC_OP_EXTRACT, t, -1, -1, 0, n + 1), hi = mk(A, KFC_OP_EXTRACT, t, -1, -1, K, n + 1);
    if (q < 0 || lo < 0 || hi < 0)
        return -1;
    int32_t dl = mk(A, KFC_OP_SUBTRACT, hi, lo, -1, 0, 0), one = mk(A, KFC_OP_INTCST, -1, -1, -1, 1, 0);
    int32_t m = dl < 0 ? -1 : mk(A, KFC_OP_MINUS, dl, -1, -1, 0, 0);
    int32_t den = m < 0 || one < 0 ? -1 : mk(A, KFC_OP_IFELSE, m, one, dl, 0, 0); /* 1 where t_i+k <= t_i */
    int32_t live = mk(A, KFC_OP_LESSTHAN, lo, hi, -1, 0, 0);
    int32_t w = den < 0 ? -1 : mk(A, KFC_OP_DIVIDE, q, den, -1, 0, 0);
    w = w < 0 || live < 0 ? -1 : mk(A, KFC_OP_MULT, w, live, -1, 0, 0);
    int32_t w0 = w < 0 ? -1 : mk(A, KFC_OP_EXTRACT, w, -1, -1, 0, n);
    int32_t w1 = w < 0 ? -1 : mk(A, KFC_OP_EXTRACT, w, -1, -1, 1, n);
    int32_t d = w0 < 0 || w1 < 0 ? -1 : mk(A, KFC_OP_SUBTRACT, w0, w1, -1, 0, 0);
    int32_t kk = mk(A, KFC_OP_INTCST, -1, -1, -1, K, 0);
    int32_t sp = d < 0 ? -1 : mk(A, KFC_OP_SCALPROD, g, d, -1, 0, 0);
    return sp < 0 || kk < 0 ? -1 : mk(A, KFC_OP_MULT, kk, sp, -1, 0, 0);
}

/* SoftDTW_SqDist's shares, KeOps' DiffT: GradSoftDTW_SqDist(x,y,gamma) (dim
 * n + m, one node for both) times g, x's part then y's. Neither gamma nor
 * GradSoftDTW_SqDist has a derivative (nor in KeOps). */
static int32_t softdtw_share(ad *A, const kfc_node *x, int c, int32_t g)
{
    if (x->op == KFC_OP_GRADSOFTDTW_SQDIST || c == 2)
        return kfc_diag_set(A->d, KF_ERR_UNSUPPORTED, x->pos, x->src, "autodiff: %s",
                            c == 2 && x->op == KFC_OP_SOFTDTW_SQDIST
                                ? "SoftDTW_SqDist has no derivative with respect to gamma"
                                : "GradSoftDTW_SqDist has no derivative"),
               -1;
    int32_t n = N(A, x->a[0])->dim, m = N(A, x->a[1])->dim;
    int32_t gr = mk(A, KFC_OP_GRADSOFTDTW_SQDIST, x->a[0], x->a[1], x->a[2], 0, 0);
    int32_t t = gr < 0 ? -1 : mk(A, KFC_OP_MULT, gr, g, -1, 0, 0);
    return t < 0 ? -1 : mk(A, KFC_OP_EXTRACT, t, -1, -1, c == 0 ? 0 : n, c == 0 ? n : m);
}

/* Argument c's share of the gradient g at node k: a node, NONE, or -1 (error). */
static int32_t share(ad *A, int32_t k, int c, int32_t g)
{
    rule R = {.A = A, .s = "", .k = k, .g = g, .x = *N(A, k)};
    const char *rules = kfc_op_info[R.x.op].deriv;
    if (!rules)
        return kfc_diag_set(A->d, KF_ERR_INTERNAL, A->pos, A->src,
                            "autodiff: %s has no derivative rule (a kforge bug)", kfc_op_info[R.x.op].name),
               -1;
    if (strcmp(rules, "*") == 0)
        return R.x.op == KFC_OP_TENSORDOT ? tensordot_share(A, &R.x, c, g)
               : R.x.op == KFC_OP_BSPLINE ? bspline_share(A, &R.x, c, g)
               : R.x.op == KFC_OP_SOFTDTW_SQDIST || R.x.op == KFC_OP_GRADSOFTDTW_SQDIST
                   ? softdtw_share(A, &R.x, c, g)
                                          : weighted_share(A, &R.x, c, g);
    R.s = rules;
    for (int i = 0; i < c; i++) {
        const char *semi = strchr(R.s, ';');
        if (!semi)
            return rule_bad(&R, "fewer rules than arguments"), -1;
        R.s = semi + 1;
    }
    if (R.s[0] == '0' && (R.s[1] == ';' || R.s[1] == 0))
        return NONE;
    int32_t r = rule_expr(&R);
    if (r >= 0 && *R.s != ';' && *R.s != 0)
        return rule_bad(&R, "end of the rule expected"), -1;
    return r;
}

/* A share of dim sd for an argument of dim want: what broadcasting spread
 * over the components is summed back (real: one value; complex: one number). */
static int32_t fit(ad *A, int32_t s, int32_t want)
{
    int32_t sd = N(A, s)->dim;
    if (sd == want)
        return s;
    if (want == 1)
        return mk(A, KFC_OP_SUM, s, -1, -1, 0, 0);
    if (sd == 1)
        return mk(A, KFC_OP_SUMT, s, -1, -1, want, 0);
    if (want == 2 && sd % 2 == 0)
        return mk(A, KFC_OP_COMPLEXSUM, s, -1, -1, 0, 0);
    if (sd == 2 && want % 2 == 0)
        return mk(A, KFC_OP_COMPLEXSUMT, s, -1, -1, want, 0);
    return kfc_diag_set(A->d, KF_ERR_INTERNAL, A->pos, A->src,
                        "autodiff: a share of dim %d for an argument of dim %d (a kforge bug)", (int)sd,
                        (int)want),
           -1;
}

/* Grad(root, v, e): v is the variable of index vidx and dim vdim. */
static int32_t vjp(ad *A, int32_t root, int64_t vidx, int32_t vdim, int32_t e)
{
    int32_t n = root + 1, res = NONE;
    char *dep = calloc((size_t)n, 1);
    int32_t *adj = malloc((size_t)n * sizeof *adj);
    if (!dep || !adj) {
        free(dep), free(adj);
        return kfc_diag_set(A->d, KF_ERR_NOMEM, -1, -1, "out of memory"), -1;
    }
    for (int32_t k = 0; k < n; k++) {
        const kfc_node *x = N(A, k);
        dep[k] = x->op == KFC_OP_VAR && x->iv[0] == vidx;
        for (int c = 0; c < 3 && x->a[c] >= 0; c++)
            dep[k] |= dep[x->a[c]];
        adj[k] = NONE;
    }
    adj[root] = e;
    int ok = 1;
    for (int32_t k = root; k >= 0 && ok; k--) {
        if (adj[k] < 0 || !dep[k] || is_zero(A, adj[k]))
            continue;
        const kfc_node x = *N(A, k);
        if (x.op == KFC_OP_VAR) {
            res = res == NONE ? adj[k] : mk(A, KFC_OP_ADD, res, adj[k], -1, 0, 0);
            ok = res >= 0;
            continue;
        }
        for (int c = 0; c < kfc_op_info[x.op].nargs && ok; c++) {
            int32_t ch = x.a[c], s;
            if (!dep[ch])
                continue;
            if ((s = share(A, k, c, adj[k])) == NONE)
                continue;
            if (s < 0 || (s = fit(A, s, N(A, ch)->dim)) < 0) {
                ok = 0;
                break;
            }
            adj[ch] = adj[ch] == NONE ? s : mk(A, KFC_OP_ADD, adj[ch], s, -1, 0, 0);
            ok = adj[ch] >= 0;
        }
    }
    free(dep), free(adj);
    if (!ok)
        return -1;
    return res == NONE ? zero(A, vdim) : res;
}

/* The k-th vector of the standard basis of R^dim (the constant 1 for dim 1). */
static int32_t basis(ad *A, int32_t dim, int32_t k)
{
    int32_t one = mk(A, KFC_OP_INTCST, -1, -1, -1, 1, 0);
    return one < 0 || dim == 1 ? one : mk(A, KFC_OP_ELEMT, one, -1, -1, dim, k);
}

/* sum_k Elem(Grad(f, v, e_k), k) */
static int32_t divergence(ad *A, int32_t f, const kfc_node *v)
{
    int32_t res = -1, D = v->dim;
    for (int32_t k = 0; k < D; k++) {
        int32_t e = basis(A, D, k), gk = e < 0 ? -1 : vjp(A, f, v->iv[0], D, e);
        if (gk >= 0 && D > 1)
            gk = mk(A, KFC_OP_ELEM, gk, -1, -1, k, 0);
        if (gk < 0)
            return -1;
        res = k == 0 ? gk : mk(A, KFC_OP_ADD, res, gk, -1, 0, 0);
        if (res < 0)
            return -1;
    }
    return res;
}

/* Nonzero if a variable of index vidx is reachable from root. */
static int reaches(const ad *A, int32_t root, int64_t vidx, int *nomem)
{
    char *live = calloc((size_t)root + 1, 1);
    int found = 0;
    if (!live)
        return *nomem = 1, 0;
    live[root] = 1;
    for (int32_t k = root; k >= 0 && !found; k--) {
        const kfc_node *x = N(A, k);
        if (!live[k])
            continue;
        found = x->op == KFC_OP_VAR && x->iv[0] == vidx;
        for (int c = 0; c < 3 && x->a[c] >= 0; c++)
            live[x->a[c]] = 1;
    }
    free(live);
    return found;
}

/* Diff(f,v,u) = Grad(Grad(f,v,t), t, u), t a fresh variable of dim f. */
static int32_t diff(ad *A, int32_t f, const kfc_node *v, int32_t u)
{
    /* Fresh indices lie past the variable table: nothing else can have them,
     * and no such variable survives (checked below). */
    int64_t tidx = KFC_MAX_VARS + A->ntemp++;
    kfc_node t = {.op = KFC_OP_VAR, .dim = N(A, f)->dim, .a = {-1, -1, -1}, .iv = {tidx, N(A, f)->dim, 0},
                  .pos = A->pos, .src = A->src};
    int32_t tk = put(A, &t), g1 = tk < 0 ? -1 : vjp(A, f, v->iv[0], v->dim, tk);
    int32_t r = g1 < 0 ? -1 : vjp(A, g1, tidx, t.dim, u);
    int nomem = 0;
    if (r >= 0 && reaches(A, r, tidx, &nomem))
        return kfc_diag_set(A->d, KF_ERR_INTERNAL, A->pos, A->src,
                            "autodiff: Diff left its temporary variable (a kforge bug)"),
               -1;
    if (nomem)
        return kfc_diag_set(A->d, KF_ERR_NOMEM, -1, -1, "out of memory"), -1;
    return r;
}

/* The expansion of derivative node x, whose arguments are in the new program. */
static int32_t expand(ad *A, const kfc_node *x)
{
    int32_t f = x->a[0];
    const kfc_node v = *N(A, x->a[1]);
    A->pos = x->pos, A->src = x->src;
    switch (x->op) {
    case KFC_OP_GRAD:
    case KFC_OP_GRADSF:
        return vjp(A, f, v.iv[0], v.dim, x->a[2]);
    case KFC_OP_DIFF:
        return diff(A, f, &v, x->a[2]);
    case KFC_OP_GRADMATRIX: {
        int32_t res = -1, D = N(A, f)->dim;
        for (int32_t k = 0; k < D; k++) {
            int32_t e = basis(A, D, k), gk = e < 0 ? -1 : vjp(A, f, v.iv[0], v.dim, e);
            if (gk < 0 || (res = k == 0 ? gk : mk(A, KFC_OP_CONCAT, res, gk, -1, 0, 0)) < 0)
                return -1;
        }
        return res;
    }
    case KFC_OP_LAPLACIAN: {
        int32_t one = mk(A, KFC_OP_INTCST, -1, -1, -1, 1, 0), g = one < 0 ? -1 : vjp(A, f, v.iv[0], v.dim, one);
        return g < 0 ? -1 : divergence(A, g, &v);
    }
    case KFC_OP_DIVERGENCE:
        return divergence(A, f, &v);
    default:
        return kfc_diag_set(A->d, KF_ERR_INTERNAL, -1, -1, "autodiff: %s is no derivative",
                            kfc_op_info[x->op].name),
               -1;
    }
}

int kfc_autodiff(kfc_prog *p, const char *formula, const char *formula2, const char *const *aliases,
                 int naliases, kfc_diag *d)
{
    int any = 0;
    for (int32_t k = 0; k < p->nnodes; k++)
        any |= kfc_op_info[p->nodes[k].op].rule == KFC_DR_DERIV;
    if (!any)
        return KF_OK;
    kfc_prog out;
    kfc_prog_init(&out);
    ad A = {.p = &out, .d = d, .formula = formula, .formula2 = formula2, .aliases = aliases,
            .naliases = naliases};
    int32_t *map = malloc((size_t)p->nnodes * sizeof *map);
    A.table = malloc(TABLE_CAP * sizeof *A.table);
    if (!map || !A.table) {
        free(map), free(A.table);
        return kfc_diag_set(d, KF_ERR_NOMEM, -1, -1, "out of memory");
    }
    memset(A.table, 0xff, TABLE_CAP * sizeof *A.table);
    int st = KF_OK;
    for (int32_t k = 0; k < p->nnodes && !st; k++) {
        kfc_node x = p->nodes[k];
        for (int c = 0; c < 3; c++)
            if (x.a[c] >= 0)
                x.a[c] = map[x.a[c]];
        map[k] = kfc_op_info[x.op].rule == KFC_DR_DERIV ? expand(&A, &x) : put(&A, &x);
        if (map[k] < 0)
            st = d->status ? d->status : kfc_diag_set(d, KF_ERR_INTERNAL, -1, -1, "autodiff failed");
    }
    if (!st) {
        out.root = map[p->root];
        out.root2 = p->root2 >= 0 ? map[p->root2] : -1;
        memcpy(out.vars, p->vars, sizeof out.vars);
        out.nvars = p->nvars;
        kfc_prog_free(p);
        *p = out;
    } else {
        kfc_prog_free(&out);
    }
    free(map), free(A.table);
    return st;
}
