/*
 * exp_fuse.c -- recognizes Exp(s*c) with s provably >= 0 (or -0, or NaN) and
 * c a negative constant, so the optimizing tier can call kf_vexpns
 * (kernels/vmath.c): the Gaussian's Exp(-SqDist(x,y)/IntCst(2)) is the
 * kernel people bench. That exp starts its range reduction from s without
 * waiting for s*c and needs no overflow test; the loop is limited by
 * registers in flight, so both count (docs/performance.md).
 *
 * The value must be exactly what the unfused code computes: fl(s*c) then
 * exp. So the chain from Exp down to s may hold Minus (exact), Mult by a
 * constant, and Divide by a power-of-two constant, with at most one factor
 * that is not a power of two: then the product of the factors is exact in
 * float and rounding once equals rounding at that factor's step (scaling by
 * powers of two commutes with rounding, away from under/overflow, where both
 * give e^x = 1 or 0 anyway).
 */
#include <math.h>
#include <string.h>

#include "../kernels/opt.h"
#include "emit_ops.h"

/* Bounds the walk: chains of Add/Mult can be deeper than the parser's nesting. */
#define FUSE_DEPTH 32

/* The float value of a constant leaf, as the emitted literal (KF_T)v makes it. */
static int literal_f32(const kfc_node *x, double *v)
{
    double d;
    switch (x->op) {
    case KFC_OP_INTCST: d = (double)x->iv[0]; break;
    case KFC_OP_RATCST: d = (double)x->iv[0] / (double)x->iv[1]; break;
    case KFC_OP_NUM: d = x->val; break;
    default: return 0;
    }
    *v = (double)(float)d;
    return 1;
}

static int pow2(double v)
{
    int e;
    return isfinite(v) && v != 0 && frexp(fabs(v), &e) == 0.5;
}

/* Node n's value is >= +0, -0 or NaN in every component. */
static int nonneg(const kfc_prog *p, int32_t n, int depth)
{
    const kfc_node *x = &p->nodes[n];
    double v;
    if (depth <= 0)
        return 0;
    switch (x->op) {
    case KFC_OP_SQDIST:
    case KFC_OP_SQNORM2:
    case KFC_OP_NORM2:
    case KFC_OP_SQUARE:
    case KFC_OP_ABS:
    case KFC_OP_EXP:
    case KFC_OP_SQRT: /* NaN below 0; Sqrt(-0) = -0 */
        return 1;
    case KFC_OP_SUM:
        return nonneg(p, x->a[0], depth - 1);
    case KFC_OP_ADD:
    case KFC_OP_MULT:
        return nonneg(p, x->a[0], depth - 1) && nonneg(p, x->a[1], depth - 1);
    default:
        return literal_f32(x, &v) && v >= 0;
    }
}

int kfc_exp_scaled(const kfc_prog *p, int32_t n, int32_t *s, double *c)
{
    const kfc_node *x = &p->nodes[n];
    if (x->op != KFC_OP_EXP)
        return 0;
    int32_t a = x->a[0];
    double scale = 1, k;
    int odd = 0; /* factors that are not powers of two */
    for (int depth = 0; depth < FUSE_DEPTH; depth++) {
        const kfc_node *y = &p->nodes[a];
        if (y->op == KFC_OP_MINUS) {
            scale = -scale;
            a = y->a[0];
        } else if (y->op == KFC_OP_MULT && (literal_f32(&p->nodes[y->a[1]], &k) ||
                                              literal_f32(&p->nodes[y->a[0]], &k))) {
            int lit1 = literal_f32(&p->nodes[y->a[1]], &k);
            if (!isfinite(k) || k == 0)
                return 0;
            odd += !pow2(k);
            scale *= k;
            a = lit1 ? y->a[0] : y->a[1];
        } else if (y->op == KFC_OP_DIVIDE && literal_f32(&p->nodes[y->a[1]], &k) && pow2(k)) {
            scale /= k;
            a = y->a[0];
        } else {
            break;
        }
    }
    /* |c| bounded so that c, c log2(e) and 104/|c| are all normal floats */
    if (odd > 1 || !(scale < 0) || fabs(scale) < 1e-30 || fabs(scale) > 1e30 ||
        !nonneg(p, a, FUSE_DEPTH))
        return 0;
    *s = a;
    *c = scale;
    return 1;
}

void kfc_exp_scaled_args(double c, kfc_expns *a)
{
    static const double coef[7] = {1, 1, KFK_EXPF_C2, KFK_EXPF_C3, KFK_EXPF_C4, KFK_EXPF_C5, KFK_EXPF_C6};
    float lim = (float)(-104.0 / c); /* s*c >= -104 keeps k >= -151 */
    memset(a, 0, sizeof *a);
    a->c = (float)c;
    a->cl = (float)(c * 1.4426950408889634); /* any rounding: it only picks k */
    memcpy(&a->sl, &lim, sizeof a->sl);
    int e;
    /* Scaling by a power of two commutes with rounding (away from under- and
     * overflow, which the bound on |c| keeps off): the reduction and every
     * Horner step of kf_vexpns2 are kf_vexpns's own divided by a power of
     * c, so the results are the same bits without the product s*c. */
    a->pow2 = frexp(fabs(c), &e) == 0.5 && e >= -15 && e <= 17;
    if (!a->pow2)
        return;
    a->l1 = (float)(KFK_EXPF_LN2_HI / c);
    a->l2 = (float)(KFK_EXPF_LN2_LO / c);
    double ci = 1;
    for (int i = 0; i < 7; i++, ci *= c)
        a->q[i] = (float)(coef[i] * ci);
}
