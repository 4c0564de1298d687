/*
 * exp_fuse.c -- recognizes Exp(s*c) with s provably >= 0 (or -0, or NaN) and
 * c a negative constant, so the optimizing tier can call kf_vexpns, or
 * kf_vexpns2 for c a power of two (kernels/vmath.c, float and double):
 * the Gaussian's Exp(-SqDist(x,y)/IntCst(2)) is the
 * kernel people bench. That exp starts its range reduction from s without
 * waiting for s*c and needs no overflow test; the loop is limited by
 * registers in flight, so both count (docs/performance.md).
 *
 * The value must be exactly what the unfused code computes: fl(s*c) then
 * exp. So the chain from Exp down to s may hold Minus (exact), Mult by a
 * constant, and Divide by a power-of-two constant, with at most one factor
 * that is not a power of two: then the product of the factors is exact in
 * the dtype and rounding once equals rounding at that factor's step (scaling by
 * powers of two commutes with rounding, away from under/overflow, where both
 * give e^x = 1 or 0 anyway).
 */
#include <math.h>
#include <string.h>

#include "compiler/emit/opt.h"
#include "compiler/emit/emit_ops.h"

/* Bounds the walk: chains of Add/Mult can be deeper than the parser's nesting. */
#define FUSE_DEPTH 32

/* The value of a constant leaf as the emitted literal (KF_T)v makes it. */
static int literal_value(const kfc_node *x, double *v, int f32)
{
    double d;
    switch (x->op) {
    case KFC_OP_INTCST: d = (double)x->iv[0]; break;
    case KFC_OP_RATCST: d = (double)x->iv[0] / (double)x->iv[1]; break;
    case KFC_OP_NUM: d = x->val; break;
    default: return 0;
    }
    *v = f32 ? (double)(float)d : d;
    return 1;
}

static int pow2(double v)
{
    int e;
    return isfinite(v) && v != 0 && frexp(fabs(v), &e) == 0.5;
}

/* Node n's value is >= +0, -0 or NaN in every component. */
static int nonneg(const kfc_prog *p, int32_t n, int depth, int f32)
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
        return nonneg(p, x->a[0], depth - 1, f32);
    case KFC_OP_ADD:
    case KFC_OP_MULT:
        return nonneg(p, x->a[0], depth - 1, f32) && nonneg(p, x->a[1], depth - 1, f32);
    default:
        return literal_value(x, &v, f32) && v >= 0;
    }
}

int kfc_exp_scaled(const kfc_prog *p, int32_t n, kf_dtype dtype, int32_t *s, double *c)
{
    int f32 = dtype == KF_FLOAT32;
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
        } else if (y->op == KFC_OP_MULT && (literal_value(&p->nodes[y->a[1]], &k, f32) ||
                                              literal_value(&p->nodes[y->a[0]], &k, f32))) {
            int lit1 = literal_value(&p->nodes[y->a[1]], &k, f32);
            if (!isfinite(k) || k == 0)
                return 0;
            odd += !pow2(k);
            scale *= k;
            a = lit1 ? y->a[0] : y->a[1];
        } else if (y->op == KFC_OP_DIVIDE && literal_value(&p->nodes[y->a[1]], &k, f32) && pow2(k)) {
            scale /= k;
            a = y->a[0];
        } else {
            break;
        }
    }
    /* |c| bounded so that c, c log2(e) and 88/|c| (746/|c|) are all normal floats */
    if (odd > 1 || !(scale < 0) || fabs(scale) < 1e-30 || fabs(scale) > 1e30 ||
        !nonneg(p, a, FUSE_DEPTH, f32))
        return 0;
    *s = a;
    *c = scale;
    return 1;
}

void kfc_exp_scaled_args(double c, kf_dtype dtype, kfc_expns *a)
{
    static const double cf[12] = {1, 1, KFK_EXPF_C2, KFK_EXPF_C3, KFK_EXPF_C4, KFK_EXPF_C5, KFK_EXPF_C6};
    static const double cd[12] = {1, 1, KFK_EXP_D2, KFK_EXP_D3, KFK_EXP_D4, KFK_EXP_D5, KFK_EXP_D6,
                                  KFK_EXP_D7, KFK_EXP_D8, KFK_EXP_D9, KFK_EXP_D10, KFK_EXP_D11};
    int f32 = dtype == KF_FLOAT32;
    memset(a, 0, sizeof *a);
    a->degree = f32 ? 6 : 11;
    /* the values as the kernel's type has them (a float stored in a double is exact) */
#define AS_T(v) (f32 ? (double)(float)(v) : (v))
    a->c = AS_T(c);
    a->cl = AS_T(c * 1.4426950408889634); /* any rounding: it only picks k */
    /* double: s*c >= -746 keeps k >= -1077, so the 2^k paths stay in range */
    if (!f32) {
        double lim = -746.0 / c;
        memcpy(&a->sl, &lim, sizeof a->sl);
    }
    int e;
    /* Scaling by a power of two commutes with rounding (away from under- and
     * overflow, which the bound on |c| keeps off): the reduction and every
     * Horner step of kf_vexpns2 are kf_vexpns's own divided by a power of
     * c, so the results are the same bits without the product s*c. */
    a->pow2 = frexp(fabs(c), &e) == 0.5 && e >= -15 && e <= 17;
    if (!a->pow2)
        return;
    /* float: s above st is s*c below KFK_EXPF_XMIN, exactly (c is 2^e) */
    a->st = f32 ? AS_T(KFK_EXPF_XMIN / c) : 0;
    a->l1 = AS_T((f32 ? KFK_EXPF_LN2_HI : KFK_EXP_LN2_HI) / c);
    a->l2 = AS_T((f32 ? KFK_EXPF_LN2_LO : KFK_EXP_LN2_LO) / c);
    double ci = 1;
    for (int i = 0; i <= a->degree; i++, ci *= c)
        a->q[i] = AS_T((f32 ? cf : cd)[i] * ci);
#undef AS_T
}

void kfc_expns_call(kfc_buf *t, const kfc_expns *a, kf_dtype dtype, const char *s)
{
    /* numbers only, each exact ((float) casts a float's exact double literal back) */
    const char *cast = dtype == KF_FLOAT32 ? "(float)" : "";
    char lit[48];
    double v[16];
    int nv = 0;
    kfc_buf_printf(t, "kf_vexpns%s(%s", a->pow2 ? "2" : "", s);
    if (!a->pow2)
        v[nv++] = a->c;
    v[nv++] = a->cl;
    if (a->pow2 && dtype == KF_FLOAT32)
        v[nv++] = a->st;
    for (int q = 0; q < nv; q++) {
        kfc_fmt_double(lit, sizeof lit, v[q]);
        kfc_buf_printf(t, ", %s%s", cast, lit);
    }
    if (dtype != KF_FLOAT32)
        kfc_buf_printf(t, ", %lldLL", (long long)a->sl);
    if (a->pow2) {
        nv = 0;
        v[nv++] = a->l1;
        v[nv++] = a->l2;
        for (int q = 1; q <= a->degree; q++)
            v[nv++] = a->q[q];
        for (int q = 0; q < nv; q++) {
            kfc_fmt_double(lit, sizeof lit, v[q]);
            kfc_buf_printf(t, ", %s%s", cast, lit);
        }
    }
    kfc_buf_printf(t, ")");
}
