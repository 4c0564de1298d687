/*
 * verify.c -- the one check of the IR that every emitter relies on: each node
 * reachable from the roots against its dim rule and integer arguments (so no
 * emitter can index out of bounds), one dim and category per variable, the
 * per-pair scratch limit, and the reduction's dims against the formula's.
 *
 * kfc_check has already proven all of this for parsed formulas; this pass
 * trusts nothing, because emitters also take programs built or transformed by
 * hand (kfc_simplify, tests), and an inconsistency must be KF_ERR_INTERNAL,
 * not out-of-bounds code. It reads the nodes once: the compile driver runs it
 * as a pass, and each emitter calls it again on entry (cheap) so a direct
 * caller gets the same guarantee.
 */
#include <stdlib.h>
#include <string.h>

#include "compiler/ir.h"

static int bad(const kfc_prog *p, int32_t n, const char *why, kfc_diag *d)
{
    return kfc_diag_set(d, KF_ERR_INTERNAL, -1, -1,
                        "IR check: node %d (%s) is inconsistent: %s (a kforge bug)", (int)n,
                        kfc_op_info[p->nodes[n].op].name, why);
}

int kfc_reach(const kfc_prog *p, int32_t root, int32_t root2, int8_t **mark, kfc_diag *d)
{
    *mark = NULL;
    if (root < 0 || root >= p->nnodes || root2 >= p->nnodes)
        return kfc_diag_set(d, KF_ERR_INTERNAL, -1, -1, "C emitter: no formula to emit");
    int8_t *l = malloc((size_t)p->nnodes);
    if (!l)
        return kfc_diag_set(d, KF_ERR_NOMEM, -1, -1, "out of memory");
    *mark = l;
    memset(l, -1, (size_t)p->nnodes);
    l[root] = 0;
    if (root2 >= 0)
        l[root2] = 0;
    /* children have smaller indices: one pass downwards marks them all */
    for (int32_t n = p->nnodes - 1; n >= 0; n--) {
        if (l[n] < 0)
            continue;
        const kfc_node *x = &p->nodes[n];
        if (x->op < 0 || x->op >= KFC_OP_COUNT)
            return kfc_diag_set(d, KF_ERR_INTERNAL, -1, -1, "C emitter: node %d has no op", (int)n);
        for (int k = 0; k < kfc_op_info[x->op].nargs; k++)
            if (x->a[k] >= 0 && x->a[k] < n)
                l[x->a[k]] = 0;
    }
    return KF_OK;
}

static int bcast_ok(int32_t d, int32_t to)
{
    return d == to || d == 1;
}

/* Complex broadcasting: the dim itself, or 2 (one complex number). */
static int cbcast_ok(int32_t d, int32_t to)
{
    return d == to || d == 2;
}

static int validate_node(const kfc_prog *p, int32_t n, kfc_diag *d)
{
    const kfc_node *x = &p->nodes[n];
    const kfc_opinfo *oi = &kfc_op_info[x->op];
    int32_t dim = x->dim, da = 0, db = 0, dc = 0;
    for (int k = 0; k < oi->nargs; k++)
        if (x->a[k] < 0 || x->a[k] >= n)
            return bad(p, n, "child index out of order", d);
    if (dim < 1 || dim > KFC_MAX_DIM)
        return bad(p, n, "dim out of range", d);
    if (oi->nargs > 0)
        da = p->nodes[x->a[0]].dim;
    if (oi->nargs > 1)
        db = p->nodes[x->a[1]].dim;
    if (oi->nargs > 2)
        dc = p->nodes[x->a[2]].dim;
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
    case KFC_OP_CLAMPINT: case KFC_OP_DIFFCLAMPINT: ok = dim == da && iv[0] <= iv[1]; break;
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
    case KFC_OP_TENSORDOT: {
        kfc_tdot_shape sh;
        ok = x->td.na <= KFC_TD_AXES && x->td.nb <= KFC_TD_AXES && x->td.nc <= x->td.na &&
             x->td.nc <= x->td.nb;
        if (ok) {
            kfc_tdot_shape_of(&x->td, &sh);
            ok = sh.dima == da && sh.dimb == db && sh.dim == dim && sh.nk == x->td.na + x->td.nb - 2 * x->td.nc;
        }
        break;
    }
    case KFC_OP_BSPLINE: ok = db == 1 && iv[0] >= 0 && (int64_t)dim == da - iv[0] - 1 && dim >= 1; break;
    case KFC_OP_SOFTDTW_SQDIST: ok = dc == 1 && dim == 1 && (int64_t)da * db <= KFC_SOFTDTW_MAX_CELLS; break;
    case KFC_OP_GRADSOFTDTW_SQDIST:
        ok = dc == 1 && (int64_t)dim == (int64_t)da + db && (int64_t)da * db <= KFC_SOFTDTW_MAX_CELLS;
        break;
    case KFC_OP_COMPLEXSUM: ok = dim == 2 && da % 2 == 0; break;
    case KFC_OP_COMPLEXSUMT: ok = da == 2 && iv[0] == dim && dim % 2 == 0; break;
    case KFC_OP_COMPLEXSCAL: ok = dim % 2 == 0 && ((da == 2 && db == dim) || (db == 2 && da == dim)); break;
    case KFC_OP_COMPLEXREALSCAL: ok = dim % 2 == 0 && ((da == 1 && db == dim) || (db == 1 && da == dim)); break;
    default:
        switch (oi->rule) {
        case KFC_DR_SAME: ok = dim == da; break;
        case KFC_DR_RED: ok = dim == 1; break;
        case KFC_DR_RED2: ok = dim == 1 && bcast_ok(da, da > db ? da : db) && bcast_ok(db, da > db ? da : db); break;
        case KFC_DR_BCAST:
            ok = bcast_ok(da, dim) && bcast_ok(db, dim) && (oi->nargs < 3 || bcast_ok(dc, dim)) &&
                 (da == dim || db == dim || dc == dim);
            break;
        case KFC_DR_CBCAST:
            ok = dim % 2 == 0 && cbcast_ok(da, dim) && (oi->nargs < 2 || cbcast_ok(db, dim)) &&
                 (da == dim || db == dim);
            break;
        case KFC_DR_CHALF: ok = (int64_t)da == 2 * (int64_t)dim; break;
        case KFC_DR_CTWICE: ok = (int64_t)dim == 2 * (int64_t)da; break;
        case KFC_DR_LEAF: case KFC_DR_SPECIAL: ok = 0; break; /* each has its case above */
        case KFC_DR_DERIV: return bad(p, n, "a derivative operator left unexpanded", d);
        }
    }
    return ok ? KF_OK : bad(p, n, "dims or integer arguments disagree with ops.def", d);
}

int kfc_verify(const kfc_prog *p, const kfc_red *r, kfc_diag *d)
{
    if (r && (r->id < 0 || r->id >= KFC_RED_COUNT || (r->axis != 0 && r->axis != 1)))
        return kfc_diag_set(d, KF_ERR_INTERNAL, -1, -1, "IR check: reduction not set up (a kforge bug)");
    /* formula2 only where the reduction reads it (kfc_red_setup rejects the rest) */
    int32_t r2 = r && kfc_red_info[r->id].formula2 ? p->root2 : -1;
    int8_t *reach = NULL;
    int st = kfc_reach(p, p->root, r2, &reach, d);
    if (st) {
        free(reach);
        return st;
    }
    int32_t vdim[KFC_MAX_VARS] = {0};
    int8_t vcat[KFC_MAX_VARS] = {0};
    int64_t total = 0;
    for (int32_t n = 0; n < p->nnodes && st == KF_OK; n++) {
        if (reach[n] < 0)
            continue;
        const kfc_node *x = &p->nodes[n];
        if ((st = validate_node(p, n, d)))
            break;
        total += x->dim;
        if (x->op == KFC_OP_VAR) {
            int v = (int)x->iv[0];
            if (vdim[v] && (vdim[v] != x->dim || vcat[v] != x->iv[2]))
                st = bad(p, n, "variable used with two dims or categories", d);
            vdim[v] = x->dim;
            vcat[v] = (int8_t)x->iv[2];
        }
    }
    free(reach);
    if (st)
        return st;
    /* The generated function keeps every node on its stack. */
    if (total > KFC_MAX_TOTAL_DIM)
        return kfc_diag_set(d, KF_ERR_LIMIT, -1, -1,
                            "formula too large: its nodes hold %lld values per pair (at most %d)",
                            (long long)total, KFC_MAX_TOTAL_DIM);
    if (r && (p->nodes[p->root].dim != r->D || (r2 >= 0 && p->nodes[r2].dim != r->E)))
        return kfc_diag_set(d, KF_ERR_INTERNAL, -1, -1,
                            "IR check: reduction dims disagree with the formula (a kforge bug)");
    return KF_OK;
}
