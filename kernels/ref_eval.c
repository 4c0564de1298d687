/*
 * ref_eval.c -- the reference evaluator: the oracle every generated kernel is
 * compared with (STYLE.md point 8).
 *
 * It evaluates the checked AST directly, node by node in index order (children
 * have smaller indices, so that order is topological), in double precision,
 * for one pair (i, j) at a time, and runs the reductions of
 * compiler/reductions.def in double with plain loops. It shares NO code with
 * the emitter on purpose: semantics come from the DOC strings of
 * compiler/ops.def and the shared semantics of the reductions, so a bug in one
 * implementation shows up as a disagreement instead of being copied into both.
 * From the tables it takes facts only: the libm function of ops.def's MATH
 * column for the ops it declares to be exactly that function (in double), and
 * each reduction's FAMILY and VARIANT. Speed does not matter here; clarity and exact special values do.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/ref.h"

/* Scratch, counted in doubles: one slot per node holding that node's offset
 * (see plan()), then every node's values (the sum of all dims). Keeping the
 * offsets there lets kfk_ref_eval find children in O(1) without allocating
 * (offsets < 2^53 are exact in a double). */
size_t kfk_ref_scratch_size(const kfc_prog *p)
{
    size_t n = (size_t)p->nnodes;
    for (int32_t k = 0; k < p->nnodes; k++)
        n += (size_t)(p->nodes[k].dim > 0 ? p->nodes[k].dim : 0);
    return n;
}

/* ---- element-wise scalar semantics (ops.def DOC strings) ---- */

static double rsqrt_d(double f)
{
    return f == 0 ? 0 : 1 / sqrt(f);
}

static double sign_d(double f)
{
    if (isnan(f))
        return f;
    return f > 0 ? 1 : f < 0 ? -1 : 0;
}

static double step_d(double f)
{
    if (isnan(f))
        return f;
    return f >= 0 ? 1 : 0;
}

static double relu_d(double f)
{
    if (isnan(f))
        return f;
    return f >= 0 ? f : 0;
}

static double xlogx_d(double f)
{
    return f == 0 ? 0 : f * log(f);
}

static double sinxdivx_d(double f)
{
    return f == 0 ? 1 : sin(f) / f;
}

/* min(max(f,a),b) with NaN in any operand giving NaN (NaN propagates). */
static double clamp_d(double f, double a, double b)
{
    if (isnan(f) || isnan(a) || isnan(b))
        return NAN;
    if (f < a)
        f = a;
    if (f > b)
        f = b;
    return f;
}

/* Pow(f,m): m = 0 gives 1 (like C pow, even for NaN); m < 0 gives 1/f^-m. */
static double pow_int_d(double f, int64_t m)
{
    if (m == 0)
        return 1;
    if (m < 0)
        return 1 / pow(f, (double)-m);
    return pow(f, (double)m);
}

/* Round(f,d) = round(f*10^d)/10^d; 10^d is exact in double for d <= 22
 * (kfc_check keeps d <= 15; the cap only bounds the loop). */
static double round_d(double f, int64_t d)
{
    double s = 1;
    for (int64_t k = 0; k < d && k < 400; k++)
        s *= 10;
    return round(f * s) / s;
}

/* The ops whose semantics are exactly a libm function in double: the function
 * of ops.def's MATH column (the emitters call the same one, or its float twin
 * or a vectorized stand-in). Which ops those are is this file's decision: see
 * the libm cases of eval_node. */
typedef void (*libm_fn)(void); /* the generic function pointer: cast back before a call */
static const libm_fn libm_of[KFC_OP_COUNT] = {
#define LIBM(fn, proto, opt, cuda) (libm_fn)fn
#define NOLIBM NULL
#define X(id, name, nargs, nints, dimrule, cexpr, math, fold, deriv, doc) math,
#include "compiler/ops.def"
#undef X
#undef LIBM
#undef NOLIBM
};

/* ---- vector ops ---- */

/* Component k of an operand of dim d broadcast to a larger dim (dim 1 repeats). */
static inline double bc(const double *v, int32_t d, int32_t k)
{
    return d == 1 ? v[0] : v[k];
}

/* Sum_k s f_k^2 with s read per the three readings of WeightedSqNorm; f is
 * given as the difference fa - fb (fb may be NULL) so WeightedSqDist needs no
 * temporary. */
static double wsqnorm(const double *s, int32_t ds, const double *fa, int32_t da, const double *fb,
                      int32_t db, int32_t D)
{
    double acc = 0;
#define FK(k) (bc(fa, da, k) - (fb ? bc(fb, db, k) : 0))
    if (ds == 1) {
        for (int32_t k = 0; k < D; k++)
            acc += FK(k) * FK(k);
        return s[0] * acc;
    }
    if (ds == D) {
        for (int32_t k = 0; k < D; k++)
            acc += s[k] * FK(k) * FK(k);
        return acc;
    }
    /* ds == D*D: a full (symmetric) matrix, row-major */
    for (int32_t k = 0; k < D; k++)
        for (int32_t l = 0; l < D; l++)
            acc += FK(k) * s[(int64_t)k * D + l] * FK(l);
    return acc;
#undef FK
}

/* Component k of a variable's row, read from the user's array of dtype. */
static double load(const void *arr, kf_dtype dtype, int64_t off)
{
    if (dtype == KF_FLOAT32)
        return (double)((const float *)arr)[off];
    return ((const double *)arr)[off];
}

/* Max (want_max) or Min over components: NaN if any component is NaN. */
static double comp_extreme(const double *a, int32_t d, int want_max)
{
    double b = a[0];
    for (int32_t k = 0; k < d; k++) {
        if (isnan(a[k]))
            return a[k];
        if (want_max ? a[k] > b : a[k] < b)
            b = a[k];
    }
    return b;
}

/* Index of the first largest (smallest) component; the first NaN wins. */
static double comp_argextreme(const double *a, int32_t d, int want_max)
{
    for (int32_t k = 0; k < d; k++)
        if (isnan(a[k]))
            return (double)k;
    int32_t best = 0;
    for (int32_t k = 1; k < d; k++)
        if (want_max ? a[k] > a[best] : a[k] < a[best])
            best = k;
    return (double)best;
}

/* Complex component k (re at *re, im at *im) of an operand of real dim d:
 * a dim-2 operand is one complex number, repeated (KeOps' broadcasting). */
static void cpx(const double *v, int32_t d, int32_t k, double *re, double *im)
{
    int32_t at = d == 2 ? 0 : 2 * k;
    *re = v[at];
    *im = v[at + 1];
}

/* (ar + ai i)(br + bi i) into o[0], o[1]. */
static void cmul(double ar, double ai, double br, double bi, double *o)
{
    o[0] = ar * br - ai * bi;
    o[1] = ar * bi + ai * br;
}

/* TensorDot from its definition: each result component decoded into its
 * output axes, then summed over the pairs' index tuples (lexicographic). */
static void tensordot_d(const kfc_tdot *t, const double *A, const double *B, int32_t d, double *o)
{
    kfc_tdot_shape sh;
    kfc_tdot_shape_of(t, &sh);
    int64_t ncont = 1;
    for (int c = 0; c < t->nc; c++)
        ncont *= sh.cdim[c];
    for (int32_t r = 0; r < d; r++) {
        int64_t ia = 0, ib = 0, rest;
        for (int k = 0; k < sh.nk; k++) { /* kept axis k's index in component r */
            int64_t v = r / sh.ostride[k] % sh.kdim[k];
            if (k < sh.nka)
                ia += v * sh.astride[sh.kax[k]];
            else
                ib += v * sh.bstride[sh.kax[k]];
        }
        double acc = 0;
        for (int64_t u = 0; u < ncont; u++) {
            int64_t ja = ia, jb = ib;
            rest = u;
            for (int c = t->nc - 1; c >= 0; c--) { /* the last pair varies fastest */
                int64_t v = rest % sh.cdim[c];
                rest /= sh.cdim[c];
                ja += v * sh.astride[t->ca[c]];
                jb += v * sh.bstride[t->cb[c]];
            }
            acc += A[ja] * B[jb];
        }
        o[r] = acc;
    }
}

/* The Cox-de Boor recursion over the whole vector, one order at a time:
 * B[i] of order j from B[i], B[i+1] of order j-1. w(p,j) is 0 where the
 * knots t_p, t_p+j coincide. */
static double bs_w(const double *t, int64_t p, int64_t j, double x)
{
    return t[p] < t[p + j] ? (x - t[p]) / (t[p + j] - t[p]) : 0;
}

static void bspline_d(const double *t, int32_t nt, int64_t order, double x, int32_t d, double *o)
{
    double b[KFC_BSPLINE_MAX_ORDER + 2];
    /* o[i] needs B[i..i+order] of order 0; one output at a time keeps b small */
    for (int32_t i = 0; i < d; i++) {
        for (int64_t m = 0; m <= order; m++)
            b[m] = t[i + m] <= x && x < t[i + m + 1] ? 1 : 0;
        for (int64_t j = 1; j <= order; j++)
            for (int64_t m = 0; m + j <= order; m++)
                b[m] = bs_w(t, i + m, j, x) * b[m] + (1 - bs_w(t, i + m + 1, j, x)) * b[m + 1];
        o[i] = b[0];
    }
    (void)nt;
}

/* Soft-DTW straight from its definition: R (n+1 by m+1, row i for x_i) with
 * R[0][0] = 0 and +inf on the rest of row and column 0, so the first row and
 * column come out of the general rule (their soft-min has one finite term:
 * u - gamma log(1) = u exactly). The tiers write those out instead; both are
 * KeOps' values. */
static double sdtw_softmin(double a, double b, double c, double gm)
{
    double u = a < b ? a : b;
    u = u < c ? u : c;
    return u - gm * log(exp((u - a) / gm) + exp((u - b) / gm) + exp((u - c) / gm));
}

/* R of x (n), y (m) into r, (n+1)*(m+1) values, row-major. */
static void sdtw_table(const double *x, int32_t n, const double *y, int32_t m, double gm, double *r)
{
    const int64_t w = m + 1;
    for (int64_t q = 0; q < (n + 1) * w; q++)
        r[q] = q ? INFINITY : 0;
    for (int32_t i = 1; i <= n; i++)
        for (int32_t j = 1; j <= m; j++) {
            double d = x[i - 1] - y[j - 1];
            r[i * w + j] = d * d + sdtw_softmin(r[(i - 1) * w + j - 1], r[(i - 1) * w + j], r[i * w + j - 1], gm);
        }
}

/* The gradient of R[n][m] in x, then y: e[i][j] = dR[n][m]/dR[i][j] runs
 * backwards over the cells that R[i][j] feeds, each with its soft-min weight
 * exp((R[next] - R[i][j] - cost(next)) / gamma); dR/dx_i = sum_j 2 (x_i - y_j) e[i][j]. */
static void sdtw_grad(const double *x, int32_t n, const double *y, int32_t m, double gm, double *o)
{
    static const int di[3] = {1, 0, 1}, dj[3] = {0, 1, 1};
    const int64_t w = m + 1;
    double r[2 * KFC_SOFTDTW_MAX_CELLS + 2], e[2 * KFC_SOFTDTW_MAX_CELLS + 2];
    sdtw_table(x, n, y, m, gm, r);
    for (int32_t c = 0; c < n + m; c++)
        o[c] = 0;
    for (int32_t i = n; i >= 1; i--)
        for (int32_t j = m; j >= 1; j--) {
            double acc = i == n && j == m ? 1 : 0;
            for (int t = 0; t < 3; t++) {
                int32_t ni = i + di[t], nj = j + dj[t];
                if (ni > n || nj > m)
                    continue;
                double d = x[ni - 1] - y[nj - 1];
                acc += exp((r[ni * w + nj] - r[i * w + j] - d * d) / gm) * e[ni * w + nj];
            }
            e[i * w + j] = acc;
            double d = x[i - 1] - y[j - 1];
            o[i - 1] += 2 * d * acc;
            o[n + j - 1] -= 2 * d * acc;
        }
}

static double sdtw_value(const double *x, int32_t n, const double *y, int32_t m, double gm)
{
    double r[2 * KFC_SOFTDTW_MAX_CELLS + 2];
    sdtw_table(x, n, y, m, gm, r);
    return r[(int64_t)n * (m + 1) + m];
}

/* Evaluates one node into o (its dim values) from its children's values. */
static void eval_node(const kfc_node *n, const double *A, int32_t da, const double *B, int32_t db,
                      const double *C, int32_t dc, kf_dtype dtype, const void *const *args,
                      int64_t i, int64_t j, double *o)
{
    const int32_t d = n->dim;
    double acc;
    /* every op of ops.def, no default: -Wswitch names a new one */
    switch ((kfc_op)n->op) {
    case KFC_OP_VAR: {
        int64_t dim = n->iv[1], cat = n->iv[2];
        int64_t row = cat == KFC_CAT_I ? i : cat == KFC_CAT_J ? j : 0;
        for (int32_t c = 0; c < d; c++)
            o[c] = load(args[n->iv[0]], dtype, row * dim + c);
        return;
    }
    case KFC_OP_INTCST: o[0] = (double)n->iv[0]; return;
    case KFC_OP_RATCST: o[0] = (double)n->iv[0] / (double)n->iv[1]; return;
    case KFC_OP_NUM: o[0] = n->val; return;
    case KFC_OP_ZERO:
        for (int32_t c = 0; c < d; c++)
            o[c] = 0;
        return;
    case KFC_OP_NORMALIZE:
        acc = 0;
        for (int32_t c = 0; c < da; c++)
            acc += A[c] * A[c];
        acc = rsqrt_d(acc);
        for (int32_t c = 0; c < d; c++)
            o[c] = A[c] * acc;
        return;
    case KFC_OP_SUM:
        acc = 0;
        for (int32_t c = 0; c < da; c++)
            acc += A[c];
        o[0] = acc;
        return;
    case KFC_OP_MAX: o[0] = comp_extreme(A, da, 1); return;
    case KFC_OP_MIN: o[0] = comp_extreme(A, da, 0); return;
    case KFC_OP_ARGMAX: o[0] = comp_argextreme(A, da, 1); return;
    case KFC_OP_ARGMIN: o[0] = comp_argextreme(A, da, 0); return;
    case KFC_OP_SCALPROD: {
        int32_t D = da > db ? da : db;
        acc = 0;
        for (int32_t c = 0; c < D; c++)
            acc += bc(A, da, c) * bc(B, db, c);
        o[0] = acc;
        return;
    }
    case KFC_OP_SQNORM2:
    case KFC_OP_NORM2:
        acc = 0;
        for (int32_t c = 0; c < da; c++)
            acc += A[c] * A[c];
        o[0] = n->op == KFC_OP_NORM2 ? sqrt(acc) : acc;
        return;
    case KFC_OP_SQDIST: {
        int32_t D = da > db ? da : db;
        acc = 0;
        for (int32_t c = 0; c < D; c++) {
            double t = bc(A, da, c) - bc(B, db, c);
            acc += t * t;
        }
        o[0] = acc;
        return;
    }
    case KFC_OP_WEIGHTEDSQNORM: o[0] = wsqnorm(A, da, B, db, NULL, 0, db); return;
    case KFC_OP_WEIGHTEDSQDIST: o[0] = wsqnorm(A, da, B, db, C, dc, db > dc ? db : dc); return;
    case KFC_OP_ELEM: o[0] = A[n->iv[0]]; return;
    case KFC_OP_ELEMT:
        for (int32_t c = 0; c < d; c++)
            o[c] = 0;
        o[n->iv[1]] = A[0];
        return;
    case KFC_OP_EXTRACT:
        for (int32_t c = 0; c < d; c++)
            o[c] = A[n->iv[0] + c];
        return;
    case KFC_OP_EXTRACTT:
        for (int32_t c = 0; c < d; c++)
            o[c] = 0;
        for (int32_t c = 0; c < da; c++)
            o[n->iv[0] + c] = A[c];
        return;
    case KFC_OP_CONCAT:
        for (int32_t c = 0; c < da; c++)
            o[c] = A[c];
        for (int32_t c = 0; c < db; c++)
            o[da + c] = B[c];
        return;
    case KFC_OP_ONEHOT: {
        double r = round(A[0]); /* NaN fails both comparisons: all zeros */
        for (int32_t c = 0; c < d; c++)
            o[c] = 0;
        if (r >= 0 && r < (double)d)
            o[(int32_t)r] = 1;
        return;
    }
    case KFC_OP_SUMT:
        for (int32_t c = 0; c < d; c++)
            o[c] = A[0];
        return;
    case KFC_OP_MATVECMULT: /* A (d x db) row-major times B (db) */
        for (int32_t r = 0; r < d; r++) {
            acc = 0;
            for (int32_t k = 0; k < db; k++)
                acc += A[(int64_t)r * db + k] * B[k];
            o[r] = acc;
        }
        return;
    case KFC_OP_VECMATMULT: /* A (da) times B (da x d) row-major */
        for (int32_t l = 0; l < d; l++) {
            acc = 0;
            for (int32_t k = 0; k < da; k++)
                acc += A[k] * B[(int64_t)k * d + l];
            o[l] = acc;
        }
        return;
    case KFC_OP_TENSORDOT: tensordot_d(&n->td, A, B, d, o); return;
    case KFC_OP_BSPLINE: bspline_d(A, da, n->iv[0], B[0], d, o); return;
    case KFC_OP_SOFTDTW_SQDIST: o[0] = sdtw_value(A, da, B, db, C[0]); return;
    case KFC_OP_GRADSOFTDTW_SQDIST: sdtw_grad(A, da, B, db, C[0], o); return;
    case KFC_OP_TENSORPROD:
        for (int32_t k = 0; k < da; k++)
            for (int32_t l = 0; l < db; l++)
                o[(int64_t)k * db + l] = A[k] * B[l];
        return;
    /* complex: component k of a dim-2k vector is (re, im) = (v[2k], v[2k+1]) */
    case KFC_OP_COMPLEXREAL:
        for (int32_t k = 0; k < d; k++)
            o[k] = A[2 * k];
        return;
    case KFC_OP_COMPLEXIMAG:
        for (int32_t k = 0; k < d; k++)
            o[k] = A[2 * k + 1];
        return;
    case KFC_OP_COMPLEXSQUAREABS:
        for (int32_t k = 0; k < d; k++)
            o[k] = A[2 * k] * A[2 * k] + A[2 * k + 1] * A[2 * k + 1];
        return;
    case KFC_OP_COMPLEXABS: /* sqrt(re^2 + im^2), not hypot: KeOps' Sqrt(ComplexSquareAbs) */
        for (int32_t k = 0; k < d; k++)
            o[k] = sqrt(A[2 * k] * A[2 * k] + A[2 * k + 1] * A[2 * k + 1]);
        return;
    case KFC_OP_COMPLEXANGLE:
        for (int32_t k = 0; k < d; k++)
            o[k] = atan2(A[2 * k + 1], A[2 * k]);
        return;
    case KFC_OP_REAL2COMPLEX:
    case KFC_OP_IMAG2COMPLEX:
    case KFC_OP_COMPLEXEXP1J:
        for (int32_t k = 0; k < da; k++) {
            double f = A[k];
            if (n->op == KFC_OP_COMPLEXEXP1J)
                o[2 * k] = cos(f), o[2 * k + 1] = sin(f);
            else if (n->op == KFC_OP_REAL2COMPLEX)
                o[2 * k] = f, o[2 * k + 1] = 0;
            else
                o[2 * k] = 0, o[2 * k + 1] = f;
        }
        return;
    case KFC_OP_CONJ:
    case KFC_OP_COMPLEXEXP:
        for (int32_t k = 0; k < d / 2; k++) {
            double re, im;
            cpx(A, da, k, &re, &im);
            if (n->op == KFC_OP_CONJ) {
                o[2 * k] = re, o[2 * k + 1] = -im;
            } else {
                double r = exp(re);
                o[2 * k] = r * cos(im), o[2 * k + 1] = r * sin(im);
            }
        }
        return;
    case KFC_OP_COMPLEXADD:
    case KFC_OP_COMPLEXSUBTRACT:
    case KFC_OP_COMPLEXMULT:
    case KFC_OP_COMPLEXSCAL: /* the checker made one of them dim 2 */
    case KFC_OP_COMPLEXDIVIDE:
        for (int32_t k = 0; k < d / 2; k++) {
            double ar, ai, br, bi, t[2];
            cpx(A, da, k, &ar, &ai);
            cpx(B, db, k, &br, &bi);
            if (n->op == KFC_OP_COMPLEXADD) {
                t[0] = ar + br, t[1] = ai + bi;
            } else if (n->op == KFC_OP_COMPLEXSUBTRACT) {
                t[0] = ar - br, t[1] = ai - bi;
            } else if (n->op == KFC_OP_COMPLEXDIVIDE) {
                /* KeOps' composition Real2Complex(Inv(ComplexSquareAbs(g))) *
                 * (f*Conj(g)), less its products by the 0 imaginary part
                 * (which change nothing unless a value is infinite) */
                double s = 1 / (br * br + bi * bi);
                cmul(ar, ai, br, -bi, t);
                t[0] *= s, t[1] *= s;
            } else {
                cmul(ar, ai, br, bi, t);
            }
            o[2 * k] = t[0], o[2 * k + 1] = t[1];
        }
        return;
    case KFC_OP_COMPLEXREALSCAL: { /* a real scalar times a complex vector, in either order */
        const double *z = da == 1 ? B : A, s = da == 1 ? A[0] : B[0];
        for (int32_t c = 0; c < d; c++)
            o[c] = s * z[c];
        return;
    }
    case KFC_OP_COMPLEXSUM:
        o[0] = o[1] = 0;
        for (int32_t k = 0; k < da / 2; k++)
            o[0] += A[2 * k], o[1] += A[2 * k + 1];
        return;
    case KFC_OP_COMPLEXSUMT:
        for (int32_t k = 0; k < d / 2; k++)
            o[2 * k] = A[0], o[2 * k + 1] = A[1];
        return;
    /* element-wise: f the component of the argument; a, b, c those of the
     * arguments broadcast (c is 0 for two arguments) */
#define EACH1(e)                                                                                   \
    do {                                                                                           \
        for (int32_t k = 0; k < d; k++) {                                                          \
            const double f = A[k];                                                                 \
            o[k] = (e);                                                                            \
        }                                                                                          \
    } while (0)
#define EACH3(e)                                                                                   \
    do {                                                                                           \
        for (int32_t k = 0; k < d; k++) {                                                          \
            const double a = bc(A, da, k), b = bc(B, db, k), c = C ? bc(C, dc, k) : 0;            \
            o[k] = (e);                                                                            \
            (void)c;                                                                               \
        }                                                                                          \
    } while (0)
    case KFC_OP_EXP:
    case KFC_OP_LOG:
    case KFC_OP_SIN:
    case KFC_OP_COS:
    case KFC_OP_ASIN:
    case KFC_OP_ACOS:
    case KFC_OP_ATAN:
    case KFC_OP_SQRT:
    case KFC_OP_ABS:
    case KFC_OP_FLOOR:
        EACH1(((double (*)(double))libm_of[n->op])(f)); /* libm's, in double */
        return;
    case KFC_OP_ATAN2:
    case KFC_OP_POWF:
        EACH3(((double (*)(double, double))libm_of[n->op])(a, b)); /* libm's, in double */
        return;
    case KFC_OP_MINUS: EACH1(-f); return;
    case KFC_OP_RSQRT: EACH1(rsqrt_d(f)); return;
    case KFC_OP_INV: EACH1(1 / f); return;
    case KFC_OP_SIGN: EACH1(sign_d(f)); return;
    case KFC_OP_STEP: EACH1(step_d(f)); return;
    case KFC_OP_RELU: EACH1(relu_d(f)); return;
    case KFC_OP_SQUARE: EACH1(f * f); return;
    case KFC_OP_XLOGX: EACH1(xlogx_d(f)); return;
    case KFC_OP_SINXDIVX: EACH1(sinxdivx_d(f)); return;
    case KFC_OP_POW: EACH1(pow_int_d(f, n->iv[0])); return;
    case KFC_OP_ROUND: EACH1(round_d(f, n->iv[0])); return;
    case KFC_OP_CLAMPINT: EACH1(clamp_d(f, (double)n->iv[0], (double)n->iv[1])); return;
    case KFC_OP_DIFFCLAMPINT: EACH1(f >= (double)n->iv[0] && f <= (double)n->iv[1] ? 1 : 0); return;
    case KFC_OP_ADD: EACH3(a + b); return;
    case KFC_OP_SUBTRACT: EACH3(a - b); return;
    case KFC_OP_MULT: EACH3(a * b); return;
    case KFC_OP_DIVIDE: EACH3(a / b); return;
    /* IEEE comparisons: false with a NaN, except != which is true. */
    case KFC_OP_EQUAL: EACH3(a == b ? 1 : 0); return;
    case KFC_OP_NOTEQUAL: EACH3(a != b ? 1 : 0); return;
    case KFC_OP_LESSTHAN: EACH3(a < b ? 1 : 0); return;
    case KFC_OP_LESSOREQUAL: EACH3(a <= b ? 1 : 0); return;
    case KFC_OP_IFELSE: EACH3(a >= 0 ? b : c); return; /* a NaN condition picks c */
    case KFC_OP_CLAMP: EACH3(clamp_d(a, b, c)); return;
    case KFC_OP_MOD: EACH3(a - b * floor((a - c) / b)); return;
#undef EACH1
#undef EACH3
    case KFC_OP_GRAD:
    case KFC_OP_GRADSF:
    case KFC_OP_DIFF:
    case KFC_OP_GRADMATRIX:
    case KFC_OP_LAPLACIAN:
    case KFC_OP_DIVERGENCE: /* expanded by kfc_check; kfc_verify refuses one left over */
        for (int32_t c = 0; c < d; c++)
            o[c] = NAN;
        return;
    }
}

/*
 * Plans an evaluation of root (and root2 if >= 0): the first nnodes slots of
 * scratch receive, for each node, the offset of its values after those
 * slots, or -1 when neither root needs it (the program may hold nodes of
 * unused aliases whose arrays are NULL: they must not be read). One
 * descending pass finds the needed nodes since children have smaller indices.
 */
static void plan(const kfc_prog *p, int32_t root, int32_t root2, double *scratch)
{
    int32_t upto = root2 > root ? root2 : root;
    for (int32_t k = 0; k < p->nnodes; k++)
        scratch[k] = -1;
    scratch[root] = 0;
    if (root2 >= 0)
        scratch[root2] = 0;
    for (int32_t k = upto; k >= 0; k--)
        if (scratch[k] >= 0)
            for (int c = 0; c < 3; c++)
                if (p->nodes[k].a[c] >= 0)
                    scratch[p->nodes[k].a[c]] = 0;
    size_t off = 0;
    for (int32_t k = 0; k <= upto; k++) {
        if (scratch[k] < 0)
            continue;
        scratch[k] = (double)off;
        off += (size_t)p->nodes[k].dim;
    }
}

/* Evaluates the planned nodes up to upto for the pair (i, j) (i indexes
 * cat-0 variables, j cat-1 ones). Returns the base of the values: node k's
 * values start at base + scratch[k]. */
static double *eval_planned(const kfc_prog *p, int32_t upto, kf_dtype dtype,
                            const void *const *args, int64_t i, int64_t j, double *scratch)
{
    double *base = scratch + p->nnodes;
    for (int32_t k = 0; k <= upto; k++) {
        if (scratch[k] < 0)
            continue;
        const kfc_node *n = &p->nodes[k];
        const double *ch[3] = {NULL, NULL, NULL};
        int32_t dm[3] = {0, 0, 0};
        for (int c = 0; c < 3; c++) {
            if (n->a[c] >= 0) {
                ch[c] = base + (size_t)scratch[n->a[c]];
                dm[c] = p->nodes[n->a[c]].dim;
            }
        }
        eval_node(n, ch[0], dm[0], ch[1], dm[1], ch[2], dm[2], dtype, args, i, j,
                  base + (size_t)scratch[k]);
    }
    return base;
}

void kfk_ref_eval(const kfc_prog *p, int32_t root, kf_dtype dtype, const void *const *args,
                  int64_t i, int64_t j, double *scratch, double *out)
{
    plan(p, root, -1, scratch);
    double *base = eval_planned(p, root, dtype, args, i, j, scratch);
    memcpy(out, base + (size_t)scratch[root], (size_t)p->nodes[root].dim * sizeof *out);
}

/* ---- reductions (compiler/reductions.def, shared semantics) ---- */

static void put(void *out, kf_dtype dtype, int64_t k, double v)
{
    if (dtype == KF_FLOAT32)
        ((float *)out)[k] = (float)v;
    else
        ((double *)out)[k] = v;
}

/* The Max/Min rule: a later term replaces the best iff strictly better or
 * the first NaN; the first term is always taken (handled by idx == -1). */
static int beats(double v, double best, int want_max)
{
    if (isnan(v))
        return !isnan(best);
    return want_max ? v > best : v < best;
}

/* KMin order: NaN before every number, then numeric. */
static int kless(double a, double b)
{
    return (isnan(a) && !isnan(b)) || a < b;
}

/* Per-row accumulators, sized for the reduction at hand. */
typedef struct acc {
    double *v;   /* Sum: D; Max/Min: D; KMin: K*D; LSE family: s_1..s_E */
    int64_t *ix; /* Max/Min: D; KMin: K*D */
    double m, s0;
} acc;

static void acc_init(const kfc_red *r, acc *a)
{
    int32_t D = r->D, K = r->K;
    const kfc_redinfo *ri = &kfc_red_info[r->id];
    switch (ri->family) {
    case KFC_FAM_SUM:
        for (int32_t c = 0; c < D; c++)
            a->v[c] = 0;
        break;
    case KFC_FAM_MAXMIN: {
        int want_max = ri->variant == KFC_RV_MAX;
        for (int32_t c = 0; c < D; c++)
            a->v[c] = want_max ? -INFINITY : INFINITY, a->ix[c] = -1;
        break;
    }
    case KFC_FAM_KMIN:
        for (int64_t s = 0; s < (int64_t)K * D; s++)
            a->v[s] = INFINITY, a->ix[s] = -1;
        break;
    case KFC_FAM_LSE:
        a->m = -INFINITY;
        a->s0 = 0;
        for (int32_t c = 0; c < r->E; c++)
            a->v[c] = 0;
        break;
    }
}

/* Folds the term f (dim D), g (dim E or NULL for the constant 1) at inner index t. */
static void acc_add(const kfc_red *r, acc *a, const double *f, const double *g, int64_t t)
{
    int32_t D = r->D, K = r->K;
    const kfc_redinfo *ri = &kfc_red_info[r->id];
    switch (ri->family) {
    case KFC_FAM_SUM:
        for (int32_t c = 0; c < D; c++)
            a->v[c] += f[c];
        break;
    case KFC_FAM_MAXMIN: {
        int want_max = ri->variant == KFC_RV_MAX;
        for (int32_t c = 0; c < D; c++)
            if (a->ix[c] < 0 || beats(f[c], a->v[c], want_max))
                a->v[c] = f[c], a->ix[c] = t;
        break;
    }
    case KFC_FAM_KMIN:
        for (int32_t c = 0; c < D; c++) {
            /* slot s of component c lives at s*D + c (the (K, D) output layout) */
            int32_t s = 0;
            while (s < K && !(a->ix[(int64_t)s * D + c] < 0 || kless(f[c], a->v[(int64_t)s * D + c])))
                s++;
            if (s == K)
                continue;
            for (int32_t q = K - 1; q > s; q--) {
                a->v[(int64_t)q * D + c] = a->v[(int64_t)(q - 1) * D + c];
                a->ix[(int64_t)q * D + c] = a->ix[(int64_t)(q - 1) * D + c];
            }
            a->v[(int64_t)s * D + c] = f[c];
            a->ix[(int64_t)s * D + c] = t;
        }
        break;
    case KFC_FAM_LSE: { /* the online LogSumExp of the shared semantics, in double */
        double x = f[0];
        if (x > a->m) {
            double sc = exp(a->m - x);
            for (int32_t c = 0; c < r->E; c++)
                a->v[c] = a->v[c] * sc + (g ? g[c] : 1);
            a->s0 = a->s0 * sc + 1;
            a->m = x;
        } else {
            double w = x == a->m ? 1 : exp(x - a->m);
            for (int32_t c = 0; c < r->E; c++)
                a->v[c] += w * (g ? g[c] : 1);
            a->s0 += w;
        }
        break;
    }
    }
}

static void acc_write(const kfc_red *r, const acc *a, void *out, int64_t *idx, int64_t row)
{
    int64_t vo = row * r->valdim, io = row * r->idxdim;
    int64_t n = (int64_t)r->D * (r->K > 0 ? r->K : 1);
    const kfc_redinfo *ri = &kfc_red_info[r->id];
    switch (ri->family) {
    case KFC_FAM_SUM:
    case KFC_FAM_MAXMIN:
    case KFC_FAM_KMIN: /* the state is the output: its values and/or its indices */
        for (int64_t c = 0; r->valdim > 0 && c < n; c++)
            put(out, r->dtype, vo + c, a->v[c]);
        for (int64_t c = 0; r->idxdim > 0 && c < n; c++)
            idx[io + c] = a->ix[c];
        break;
    case KFC_FAM_LSE:
        switch (ri->variant) {
        case KFC_RV_LOG:
            for (int32_t c = 0; c < r->E; c++)
                put(out, r->dtype, vo + c, a->m + log(a->v[c]));
            break;
        case KFC_RV_SOFTMAX:
            for (int32_t c = 0; c < r->E; c++)
                put(out, r->dtype, vo + c, a->v[c] / a->s0);
            break;
        case KFC_RV_SHIFT: {
            double m = a->m;
            for (int32_t c = 0; c < r->E; c++) {
                if (isnan(a->v[c]))
                    m = NAN;
                put(out, r->dtype, vo + 1 + c, a->v[c]);
            }
            put(out, r->dtype, vo, m);
            break;
        }
        case KFC_RV_PLAIN: case KFC_RV_MAX: case KFC_RV_MIN: break; /* not LSE variants */
        }
        break;
    }
}

int kfk_ref_reduce(const kfc_prog *p, const kfc_red *r, const void *const *args, int64_t r0,
                   int64_t r1, const int64_t *jr, int64_t nr, void *out, int64_t *idx)
{
    int64_t slots = (int64_t)r->D * (r->K > 0 ? r->K : 1);
    if (slots < r->E)
        slots = r->E;
    size_t ns = kfk_ref_scratch_size(p);
    double *scratch = malloc(ns * sizeof *scratch);
    acc a = {malloc((size_t)slots * sizeof(double)), malloc((size_t)slots * sizeof(int64_t)), 0, 0};
    if (!scratch || !a.v || !a.ix) {
        free(scratch), free(a.v), free(a.ix);
        return KF_ERR_NOMEM;
    }
    int32_t root = p->root, root2 = p->root2;
    int32_t upto = root2 > root ? root2 : root;
    plan(p, root, root2, scratch); /* once: the same for every pair */
    int outer_is_i = kfc_role(KFC_CAT_I, r->axis) == KFC_ROLE_OUTER;
    for (int64_t row = r0; row < r1; row++) {
        acc_init(r, &a);
        for (int64_t q = 0; q < nr; q++) {
            for (int64_t t = jr[2 * q]; t < jr[2 * q + 1]; t++) {
                int64_t i = outer_is_i ? row : t, j = outer_is_i ? t : row;
                double *base = eval_planned(p, upto, r->dtype, args, i, j, scratch);
                const double *g = root2 >= 0 ? base + (size_t)scratch[root2] : NULL;
                acc_add(r, &a, base + (size_t)scratch[root], g, t);
            }
        }
        acc_write(r, &a, out, idx, row);
    }
    free(scratch), free(a.v), free(a.ix);
    return KF_OK;
}

int kfk_ref_slot_call(const kfk_slot *s, const void *const *args, int64_t r0, int64_t r1,
                      const int64_t *jr, int64_t nr, void *out, int64_t *idx)
{
    return kfk_ref_reduce(s->prog, s->red, args, r0, r1, jr, nr, out, idx);
}
