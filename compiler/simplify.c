/*
 * simplify.c -- constant folding, common subexpressions, compaction.
 *
 *   fold     element-wise ops whose arguments are all scalar constants become a
 *            NUM, computed in double -- only when the result is finite and not
 *            -0.0 (so a NaN, an infinity or a signed zero keeps its formula and
 *            its per-dtype semantics). Nothing involving a variable is folded:
 *            0*x is not 0 when x is NaN.
 *   cse      hash-consing on (op, children, integers, value bits, dim): equal
 *            subtrees become one node, so the kernel computes them once.
 *   compact  only nodes reachable from the roots are kept, in index order,
 *            so children < parent still holds.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/ir.h"

static int is_const(const kfc_node *n)
{
    return n->op == KFC_OP_INTCST || n->op == KFC_OP_RATCST || n->op == KFC_OP_NUM;
}

/* Value of element-wise op on scalars a, b, c: ops.def's FOLD column (the
 * SHARED SEMANTICS). Returns 0 for ops it does not fold (NOFOLD). */
static int eval_scalar(const kfc_node *n, double a, double b, double c, double *out)
{
    const int64_t i0 = n->iv[0], i1 = n->iv[1];
    switch ((kfc_op)n->op) {
#define FOLD(e) *out = (e); return 1;
#define NOFOLD return 0;
#define X(id, name, nargs, nints, dimrule, cexpr, math, fold, deriv, doc) case KFC_OP_##id: fold
#include "compiler/ops.def"
#undef X
#undef FOLD
#undef NOFOLD
    }
    return 0;
}

/* Folds node k in place if it qualifies (its children are already folded). */
static void fold(kfc_prog *p, int32_t k)
{
    kfc_node *n = &p->nodes[k];
    const kfc_opinfo *oi = &kfc_op_info[n->op];
    double v[3] = {0, 0, 0}, r;
    if (oi->rule != KFC_DR_SAME && oi->rule != KFC_DR_BCAST)
        return;
    for (int c = 0; c < oi->nargs; c++) {
        const kfc_node *ch = &p->nodes[n->a[c]];
        if (!is_const(ch) || ch->dim != 1)
            return;
        v[c] = ch->val;
    }
    if (!eval_scalar(n, v[0], v[1], v[2], &r) || !isfinite(r) || (r == 0 && signbit(r)))
        return;
    n->op = KFC_OP_NUM;
    n->a[0] = n->a[1] = n->a[2] = -1;
    n->iv[0] = n->iv[1] = n->iv[2] = 0;
    n->val = r;
    n->dim = 1;
}

static uint64_t mix(uint64_t h, uint64_t x)
{
    h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h * 0xff51afd7ed558ccdull;
}

/* The hash and equality of CSE (here and in autodiff.c's hash-consing): op,
 * dim, children, integer arguments and the constant's bits. */
uint64_t kfc_node_hash(const kfc_node *n)
{
    uint64_t h = (uint64_t)n->op, bits;
    memcpy(&bits, &n->val, sizeof bits);
    h = mix(h, (uint64_t)(uint32_t)n->dim);
    for (int c = 0; c < 3; c++)
        h = mix(mix(h, (uint64_t)(uint32_t)n->a[c]), (uint64_t)n->iv[c]);
    return mix(h, bits);
}

int kfc_node_same(const kfc_node *x, const kfc_node *y)
{
    return x->op == y->op && x->dim == y->dim && memcmp(x->a, y->a, sizeof x->a) == 0 &&
           memcmp(x->iv, y->iv, sizeof x->iv) == 0 && memcmp(&x->val, &y->val, sizeof x->val) == 0 &&
           memcmp(&x->td, &y->td, sizeof x->td) == 0;
}

int kfc_simplify(kfc_prog *p, kfc_diag *d)
{
    kfc_diag_clear(d);
    int32_t n = p->nnodes;
    if (p->root < 0 || p->root >= n || p->root2 >= n)
        return kfc_diag_set(d, KF_ERR_INTERNAL, -1, -1, "simplify: no formula");
    for (int32_t k = 0; k < n; k++)
        fold(p, k);

    size_t cap = 64;
    while (cap < 2 * (size_t)n)
        cap *= 2;
    int32_t *map = malloc((size_t)n * sizeof *map), *table = malloc(cap * sizeof *table);
    char *live = calloc((size_t)n, 1);
    kfc_node *out = malloc((size_t)n * sizeof *out);
    if (!map || !table || !live || !out) {
        free(map), free(table), free(live), free(out);
        return kfc_diag_set(d, KF_ERR_NOMEM, -1, -1, "out of memory");
    }
    /* Reachability, top-down: parents have larger indices than their children. */
    live[p->root] = 1;
    if (p->root2 >= 0)
        live[p->root2] = 1;
    for (int32_t k = n - 1; k >= 0; k--)
        for (int c = 0; live[k] && c < 3 && p->nodes[k].a[c] >= 0; c++)
            live[p->nodes[k].a[c]] = 1;
    memset(table, 0xff, cap * sizeof *table);
    int32_t m = 0;
    for (int32_t k = 0; k < n; k++) {
        map[k] = -1;
        if (!live[k])
            continue;
        kfc_node x = p->nodes[k];
        for (int c = 0; c < 3; c++)
            if (x.a[c] >= 0)
                x.a[c] = map[x.a[c]];
        size_t h = (size_t)kfc_node_hash(&x) & (cap - 1);
        while (table[h] >= 0 && !kfc_node_same(&out[table[h]], &x))
            h = (h + 1) & (cap - 1);
        if (table[h] < 0) { /* first of its kind: keeps its own position for messages */
            out[m] = x;
            table[h] = m++;
        }
        map[k] = table[h];
    }
    p->root = map[p->root];
    if (p->root2 >= 0)
        p->root2 = map[p->root2];
    free(p->nodes);
    p->nodes = out;
    p->nnodes = m;
    p->cap = n;
    free(map), free(table), free(live);
    return KF_OK;
}
