/* ops.c -- the op and reduction tables as data, and the node arena. */
#include <stdlib.h>
#include <string.h>

#include "compiler/ir.h"

const kfc_opinfo kfc_op_info[KFC_OP_COUNT] = {
#define LIBM(fn, proto, opt, cuda) #fn, proto, opt, cuda
#define NOLIBM NULL, 0, NULL, NULL
#define X(id, name, nargs, nints, dimrule, cexpr, math, fold, deriv, doc) \
    {name, nargs, nints, KFC_DR_##dimrule, cexpr, math, deriv, doc},
#define DERIV(rules) rules
#define NODERIV NULL
#include "compiler/ops.def"
#undef X
#undef DERIV
#undef NODERIV
#undef LIBM
#undef NOLIBM
};

const kfc_redinfo kfc_red_info[KFC_RED_COUNT] = {
#define X(id, name, family, variant, k, f2, scalar, valdim, idxdim, doc) \
    {name, KFC_FAM_##family, KFC_RV_##variant, k, f2, scalar, doc},
#include "compiler/reductions.def"
#undef X
};

int kfc_op_lookup(const char *name, size_t len)
{
    for (int op = 0; op < KFC_OP_COUNT; op++) {
        /* Num is the printed name of a literal, not a callable function. */
        if (op == KFC_OP_NUM)
            continue;
        if (strlen(kfc_op_info[op].name) == len && memcmp(kfc_op_info[op].name, name, len) == 0)
            return op;
    }
    return -1;
}

int kfc_red_lookup(const char *name)
{
    for (int r = 0; r < KFC_RED_COUNT; r++)
        if (strcmp(kfc_red_info[r].name, name) == 0)
            return r;
    return -1;
}

void kfc_prog_init(kfc_prog *p)
{
    memset(p, 0, sizeof *p);
    p->root = p->root2 = -1;
}

void kfc_prog_free(kfc_prog *p)
{
    free(p->nodes);
    kfc_prog_init(p);
}

int32_t kfc_node_new(kfc_prog *p, int op, int32_t pos, int src, kfc_diag *d)
{
    if (p->nnodes >= KFC_MAX_NODES)
        return kfc_diag_set(d, KF_ERR_LIMIT, pos, src, "formula too large: more than %d nodes",
                            KFC_MAX_NODES),
               -1;
    if (p->nnodes == p->cap) {
        int32_t cap = p->cap ? 2 * p->cap : 64;
        kfc_node *n = realloc(p->nodes, (size_t)cap * sizeof *n);
        if (!n)
            return kfc_diag_set(d, KF_ERR_NOMEM, -1, -1, "out of memory"), -1;
        p->nodes = n;
        p->cap = cap;
    }
    kfc_node *n = &p->nodes[p->nnodes];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->a[0] = n->a[1] = n->a[2] = -1;
    n->pos = pos;
    n->src = (int16_t)src;
    return p->nnodes++;
}
