/* reduce.c -- kfc_red_setup: a reduction name, axis, dtype and K checked against the
 * formula, resolved into the kfc_red that the emitters and the reference evaluator read. */
#include <stdio.h>
#include <string.h>

#include "compiler/base/names.h"
#include "compiler/ir.h"

/* "Sum, Max, ..." from compiler/reductions.def, for messages. */
static void valid_names(char *dst, size_t cap)
{
    kfc_names_join(KFC_NAMES_REDUCTION, ", ", dst, cap);
}

/* Output dims from the VALDIM/IDXDIM expressions of reductions.def. */
static void out_dims(kfc_red *r)
{
    const int64_t D = r->D, E = r->E, K = r->K;
    switch ((kfc_red_id)r->id) {
#define X(ID_, NAME_, FAM_, VAR_, K_, F2_, SCALAR_, VALDIM_, IDXDIM_, DOC_)                        \
    case KFC_RED_##ID_:                                                                            \
        r->valdim = (int64_t)(VALDIM_);                                                            \
        r->idxdim = (int64_t)(IDXDIM_);                                                            \
        break;
#include "compiler/reductions.def"
#undef X
    }
    (void)D, (void)E, (void)K;
}

int kfc_red_setup(kfc_red *r, const kfc_prog *p, const char *reduction, int axis, kf_dtype dtype,
                  int K, kf_sum_scheme scheme, kfc_diag *d)
{
    char names[400];
    memset(r, 0, sizeof *r);
    if (!reduction) {
        valid_names(names, sizeof names);
        return kfc_diag_set(d, KF_ERR_ARG, -1, -1, "no reduction given; valid reductions: %s", names);
    }
    int id = kfc_red_lookup(reduction);
    if (id < 0) {
        valid_names(names, sizeof names);
        /* The name is quoted for the user (length-capped), never used anywhere else. */
        return kfc_diag_set(d, KF_ERR_ARG, -1, -1, "unknown reduction '%.40s%s'; valid reductions: %s",
                            reduction, strlen(reduction) > 40 ? "..." : "", names);
    }
    const kfc_redinfo *ri = &kfc_red_info[id];
    if (axis != 0 && axis != 1)
        return kfc_diag_set(d, KF_ERR_ARG, -1, -1,
                            "axis must be 0 (reduce over i) or 1 (reduce over j), got %d", axis);
    if (dtype != KF_FLOAT32 && dtype != KF_FLOAT64)
        return kfc_diag_set(d, KF_ERR_ARG, -1, -1, "dtype must be float32 or float64");
    if (scheme < KF_SUM_AUTO || scheme > KF_SUM_KAHAN)
        return kfc_diag_set(d, KF_ERR_ARG, -1, -1, "unknown sum scheme %d", (int)scheme);
    if (!p || p->root < 0 || p->root >= p->nnodes)
        return kfc_diag_set(d, KF_ERR_INTERNAL, -1, -1, "reduction setup without a checked formula");
    const kfc_node *f = &p->nodes[p->root];
    if (f->dim < 1)
        return kfc_diag_set(d, KF_ERR_INTERNAL, -1, -1, "reduction setup before kfc_check");
    if (ri->needs_k && (K < 1 || K > KFC_MAX_K))
        return kfc_diag_set(d, KF_ERR_ARG, -1, -1, "%s needs K in 1..%d, got %d", ri->name, KFC_MAX_K, K);
    if (ri->needs_k && (int64_t)K * f->dim > KFC_MAX_DIM)
        return kfc_diag_set(d, KF_ERR_ARG, -1, -1,
                            "%s keeps K * dim = %d * %d values per output row, more than %d",
                            ri->name, K, (int)f->dim, KFC_MAX_DIM);
    if (ri->formula2 == 1 && p->root2 < 0)
        return kfc_diag_set(d, KF_ERR_ARG, -1, -1, "%s needs formula2 (the weight)", ri->name);
    if (ri->formula2 == 0 && p->root2 >= 0)
        return kfc_diag_set(d, KF_ERR_ARG, -1, -1, "%s takes no formula2", ri->name);
    if (ri->scalar && f->dim != 1)
        return kfc_diag_set(d, KF_ERR_TYPE, f->pos, f->src,
                            "%s needs a scalar formula (dim 1), but the formula has dim %d", ri->name,
                            (int)f->dim);
    r->id = id;
    r->axis = axis;
    r->dtype = dtype;
    /* float64 always accumulates in float64; float32 defaults to block sums. */
    if (dtype == KF_FLOAT64)
        r->sum_scheme = KF_SUM_F64;
    else
        r->sum_scheme = scheme == KF_SUM_AUTO ? KF_SUM_BLOCK : scheme;
    r->K = ri->needs_k ? K : 0;
    r->D = f->dim;
    r->E = p->root2 >= 0 && p->root2 < p->nnodes ? p->nodes[p->root2].dim : 1;
    if (r->E < 1)
        return kfc_diag_set(d, KF_ERR_INTERNAL, -1, -1, "reduction setup before kfc_check");
    out_dims(r);
    return KF_OK;
}
