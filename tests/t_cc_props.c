/*
 * t_cc_props.c -- the optimizing tier (KF_JIT_CC: cc -O3 -march=native code)
 * against the reference evaluator on the whole op suite and every
 * reduction, both dtypes and axes, and the same bits on 1, 2 and 3 threads.
 * (The libtcc tier's twin checks are t_ops.c and t_reductions.c.)
 *
 * Kept to few cc builds (each takes 0.1-0.5 s): the op suite is four big
 * Concat formulas (one per input domain) per configuration, each reduction
 * runs as (float32, axis 1) and (float64, axis 0) (Sum and LogSumExpWeight
 * in all four combinations), and all kernels
 * are first compiled with KF_JIT_AUTO so their background builds overlap on
 * the cores, then waited for. With $KFORGE_CACHE_DIR shared between runs
 * (make test's plain and sanitizer runs) the second run only loads them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cacheutil.h"
#include "harness.h"
#include "testutil.h"

/* ---- the op suite, D = 3 (t_ops.c's cases, grouped by input domain) ---- */
static const char *const OP_AL[] = {"x=Vi(0,3)", "y=Vj(1,3)", "p=Pm(2,1)",   "a=Vi(3,1)",
                                    "b=Vj(4,1)", "A=Vi(5,9)", "w=Vj(6,3)", "q=Pm(7,3)"};
enum { R, P, U, G };
static const double LO[] = {-2, 0.1, -0.9, -2}, HI[] = {2, 2, 0.9, 2};

static const char *const OPS_R[] = {
    "IntCst(3)*x + RatCst(1,3)*y - Zero(3) + 0.25", "Vi(0,3)*Var(4,1,1) + p", "Minus(x*b) + p",
    "-x + y", "Exp(x - y*p)", "Sin(x + y*p)", "Cos(x*b - y)", "Atan(x*b + y)", "Abs(x - y*p)",
    "ReLU(x - y*p)", "Square(x - y)*p", "SinXDivX(x - y*p)", "Pow(x*b + p, 3)",
    "(x - y)**2 + x**3*b", "ClampInt(x*b + p, -1, 1)", "Add(x, b) - Subtract(y, p)*Mult(a, x)",
    "Divide(x, y + IntCst(3))", "Atan2(x*p, y + b)", "Clamp(x*b, y - IntCst(1), y + p)",
    "Sum(x*y)*p + b", "Max(x - y*b)", "Min(x*b + y)", "(x|y)*p + Scalprod(x, b)",
    "SqNorm2(x - y)*p", "Norm2(x*b + y)", "SqDist(x, y) + SqDist(x, b)*p",
    "WeightedSqNorm(p, x - y)", "WeightedSqNorm(w, x*a)", "WeightedSqNorm(A, x - y)",
    "WeightedSqDist(b, x, y)", "WeightedSqDist(A, x, y)*p", "Exp(-SqDist(x,y)/IntCst(2))*b",
    "Normalize(x - y*p)", "Elem(x, 2)*b + Elem(y, 0)", "ElemT(a*b + p, 3, 2)",
    "Extract(x - y, 2, 1)*p", "Extract(Concat(x, y), 1, 3)", "ExtractT(a*b, 2, 3) + y",
    "ExtractT(x*b, 1, 4)", "Concat(x*b, y + p)", "SumT(a*b + p, 3) + x", "MatVecMult(A, y) + x*p",
    "VecMatMult(y, A)*b", "TensorProd(x, y*p)", "TensorProd(q, w)*b + A*p",
    "TensorDot(A, y, [3,3], [3], [1], [0]) + x*p", "TensorDot(A, A*b, [3,3], [3,3], [0], [1], [1,0])",
    "TensorDot(TensorProd(x, A), w, [3,3,3], [3], [2], [0], [1,0])*b", "Kron(A, TensorProd(q, w)*b, [3,3], [3,3])",
    "SqNormIso(p, x - y) + SqNormDiag(w, x) + SymSqNorm(A, y) + IntInv(4)",
    "SoftDTW_SqDist(x, Concat(y, b), p*p + IntInv(4))*b + SoftDTW_SqDist(a, y, IntInv(3))",
    "GradSoftDTW_SqDist(x, Concat(y, b), IntInv(2))*a",
    /* derivatives (t_ops.c's): their expansions */
    "Grad(Exp(-SqDist(x,y)*p)*b, x, a)", "Grad(Sin(x*y)*p, y, x) + Grad_WithSavedForward(SqNorm2(x-y), y, a, b)",
    "Diff(Exp(-SqDist(x,y))*x, x, w)", "GradMatrix(Sin(x)*b, x)",
    "Laplacian(Exp(-SqDist(x,y)*p), x) + Divergence(x*Norm2(x-y), x)",
    "Grad(SoftDTW_SqDist(x, y, IntInv(3) + p*p), x, b) - Grad(SoftDTW_SqDist(x*a, y, IntInv(2)), y, a)",    /* complex (even dims: Concat(x, y) is 3 complex numbers, Concat(a, b) one) */
    KFT_COMPLEX_FORMULAS
};
static const char *const OPS_P[] = {
    "Log(x*b + p)", "Sqrt(x*b + p)", "Rsqrt(x + y*p)", "Inv(x + y + p)", "XLogX(x*b + p)",
    "Pow(x + y, -2)*p", "x*b + y/p - a", "Powf(x*b, y*p)",    "ComplexDivide(Concat(x, y), Concat(y + p, x*b))",
    "ComplexDivide(Concat(a, b), Concat(x, y)) + ComplexDivide(Concat(x, y), Concat(b, p))",
};
static const char *const OPS_U[] = {"Asin(x*b*p)", "Acos(x*y*p)"};
static const char *const OPS_G[] = {
    "Sign(x - y)*b + p", "Step(x - y)*a + b", "Floor(x*y) + p", "Round(x*y, 1) + p",
    "Round(x - b, 0)*p", "Equal(x, y)*a + NotEqual(x*b, y)", "LessThan(x, y*b) + LessOrEqual(x, y)*p",
    "(x < y)*a + (x >= y*p) + (x > b) - (x <= a)", "IfElse(x - y, a*p, b)",
    "Mod(x + y, IntCst(2), p)", "ArgMax(x - y) + b", "ArgMin(x*b - y)*p", "OneHot(a - b, 3)*p",
    "Grad(ClampInt(x*b, -1, 1), x, y) + DiffClampInt(x*b, 0, 1)",
    "BSpline(Concat(Concat(Concat(Concat(Concat(IntCst(-2), IntCst(-1)), Zero(1)), Zero(1)), IntCst(1)), IntCst(2)), a*b, 3)*p + BSpline(Concat(Concat(b - IntCst(2), b), b + IntCst(1)), a, 1)",
};

/* Concat(c0, Concat(c1, ...)) into a malloc'd string. */
static char *concat_all(const char *const *c, int n)
{
    size_t len = 1;
    for (int q = 0; q < n; q++)
        len += strlen(c[q]) + 16;
    char *s = malloc(len), *o = s;
    if (!s)
        return NULL;
    for (int q = 0; q < n; q++)
        o += sprintf(o, q + 1 < n ? "Concat(%s, " : "%s", c[q]);
    for (int q = 0; q + 1 < n; q++)
        *o++ = ')';
    *o = 0;
    return s;
}

/* ---- the reductions (t_reductions.c's formulas) ---- */
static const char *const RED_AL[] = {"x=Vi(0,3)", "y=Vj(1,3)", "p=Pm(2,1)", "a=Vi(3,1)",
                                     "b=Vj(4,1)"};
#define F_SUM "Exp(-SqDist(x,y)/IntCst(2))*Concat(b, y)"
#define F_EXT "Concat(x*b - y, SqDist(x,y)*p)"
#define F_KMIN "Concat(SqDist(x,y)*p, a - b)"
#define F_LSE "-SqDist(x,y)*p + a*b"

typedef struct pcase {
    kft_spec s;
    double lo, hi;
    int grid;
    kf_kernel *k;
} pcase;

#define MAXCASES 96
static pcase cases[MAXCASES];
static int ncases;
static char *owned[8];

static void add(const char *f, const char *const *al, int nal, const char *red, int axis,
                kf_dtype dt, int K, const char *f2, kf_sum_scheme sch, double lo, double hi, int grid)
{
    if (ncases == MAXCASES)
        return;
    kft_spec s = {f, al, nal, red, axis, dt, K, f2, sch};
    cases[ncases++] = (pcase){s, lo, hi, grid, NULL};
}

/* Both dtypes and both axes: (float32, axis 1) and (float64, axis 0), or
 * all four combinations with `all` (each cc build costs 0.1-0.5 s). */
static void add_axes_dtypes(const char *red, const char *f, const char *f2, int K, int all)
{
    for (int axis = 0; axis <= 1; axis++)
        for (int dt = 0; dt <= 1; dt++)
            if (all || axis != dt)
                add(f, RED_AL, 5, red, axis, dt ? KF_FLOAT64 : KF_FLOAT32, K, f2, KF_SUM_AUTO,
                    -1.5, 1.5, 0);
}

static void build_cases(void)
{
    static const struct {
        const char *const *c;
        int n, dom;
    } dom[] = {{OPS_R, (int)(sizeof OPS_R / sizeof *OPS_R), R},
               {OPS_P, (int)(sizeof OPS_P / sizeof *OPS_P), P},
               {OPS_U, (int)(sizeof OPS_U / sizeof *OPS_U), U},
               {OPS_G, (int)(sizeof OPS_G / sizeof *OPS_G), G}};
    ncases = 0;
    for (int d = 0; d < 4; d++) {
        owned[d] = concat_all(dom[d].c, dom[d].n);
        if (!owned[d])
            continue;
        int q = dom[d].dom;
        add(owned[d], OP_AL, 8, "Sum", 1, KF_FLOAT32, 0, NULL, KF_SUM_AUTO, LO[q], HI[q], q == G);
        add(owned[d], OP_AL, 8, "Sum", 0, KF_FLOAT64, 0, NULL, KF_SUM_AUTO, LO[q], HI[q], q == G);
    }
    add_axes_dtypes("Sum", F_SUM, NULL, 0, 1);
    static const kf_sum_scheme S[] = {KF_SUM_DIRECT, KF_SUM_F64, KF_SUM_KAHAN};
    for (int k = 0; k < 3; k++)
        add(F_SUM, RED_AL, 5, "Sum", k % 2, KF_FLOAT32, 0, NULL, S[k], -1.5, 1.5, 0);
    static const char *const MM[] = {"Max", "Min", "ArgMax", "ArgMin", "Max_ArgMax", "Min_ArgMin"};
    for (int k = 0; k < 6; k++)
        add_axes_dtypes(MM[k], F_EXT, NULL, 0, 0);
    static const char *const KM[] = {"KMin", "ArgKMin", "KMin_ArgKMin"};
    for (int k = 0; k < 3; k++)
        add_axes_dtypes(KM[k], F_KMIN, NULL, 3 + 2 * k, 0);
    add_axes_dtypes("LogSumExp", F_LSE, NULL, 0, 0);
    add_axes_dtypes("LogSumExpWeight", F_LSE, "Concat(b*b + IntCst(1), Exp(y*a))", 0, 1);
    add_axes_dtypes("SumSoftMaxWeight", F_LSE, "y*a + b", 0, 0);
    add_axes_dtypes("Max_SumShiftExp", F_LSE, "Concat(b, y)", 0, 0);
    add(F_LSE, RED_AL, 5, "Max_SumShiftExp", 1, KF_FLOAT32, 0, NULL, KF_SUM_AUTO, -1.5, 1.5, 0);
}

static const int64_t SIZES[][2] = {{0, 7}, {7, 0}, {1, 1}, {1, 7}, {7, 1}, {13, 257},
                                   {257, 13}, {1000, 7}, {9, 1000}, {33, 300}};
#define NSIZES ((int)(sizeof SIZES / sizeof SIZES[0]))

static const char *case_name(const pcase *c, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s of %.60s%s axis %d %s K=%d scheme %d", c->s.reduction, c->s.formula,
             strlen(c->s.formula) > 60 ? "..." : "", c->s.axis,
             c->s.dtype == KF_FLOAT32 ? "float32" : "float64", c->s.k, (int)c->s.scheme);
    return buf;
}

/* Runs kernels k[0..n) on the same data; 1 if their outputs are identical
 * (else prints the first differing slot). */
static int same_bits(kf_kernel **k, int n, int64_t M, int64_t N, const kft_data *d)
{
    kf_dtype dt = kf_kernel_dtype(k[0]);
    int64_t rows = kf_kernel_axis(k[0]) == 1 ? M : N;
    int64_t nv = rows * kf_kernel_out_dim(k[0]), ni = rows * kf_kernel_index_dim(k[0]);
    size_t es = dt == KF_FLOAT32 ? 4 : 8;
    void *out[3] = {NULL};
    int64_t *idx[3] = {NULL};
    int ok = 1;
    for (int t = 0; t < n; t++)
        ok &= kft_run(k[t], M, N, d, &out[t], &idx[t]) == KF_OK;
    for (int t = 1; t < n && ok; t++) {
        for (int64_t q = 0; q < nv && ok; q++)
            if (memcmp((char *)out[0] + q * (int64_t)es, (char *)out[t] + q * (int64_t)es, es)) {
                fprintf(stderr, "  value %lld (row %lld): %.17g with 1 thread, %.17g with %d\n",
                        (long long)q, (long long)(q / kf_kernel_out_dim(k[0])),
                        kft_get(out[0], dt, q), kft_get(out[t], dt, q), t + 1);
                ok = 0;
            }
        for (int64_t q = 0; q < ni && ok; q++)
            if (idx[0][q] != idx[t][q]) {
                fprintf(stderr, "  index %lld: %lld with 1 thread, %lld with %d\n", (long long)q,
                        (long long)idx[0][q], (long long)idx[t][q], t + 1);
                ok = 0;
            }
    }
    for (int t = 0; t < n; t++)
        free(out[t]), free(idx[t]);
    return ok;
}

KFT_TEST(cc_props_ops_and_reductions)
{
    build_cases();
    kf_ctx *ctx[3] = {NULL};
    for (int t = 0; t < 3; t++) {
        kf_options o;
        kf_options_init(&o);
        o.threads = t + 1;
        ctx[t] = kf_new(&o);
    }
    if (!KFT_CHECK(ctx[0] && ctx[1] && ctx[2]))
        goto out;
    /* all builds first, in the background, so they overlap */
    for (int c = 0; c < ncases; c++)
        cases[c].k = kft_compile_jit(ctx[0], &cases[c].s, KF_JIT_AUTO);
    int failures = 0, nocc = 0;
    for (int c = 0; c < ncases && failures < 5; c++) {
        pcase *pc = &cases[c];
        char name[200];
        case_name(pc, name, sizeof name);
        if (!KFT_CHECKF(pc->k, "%s: does not compile", name)) {
            failures++;
            continue;
        }
        int w = kf_kernel_wait(pc->k);
        if (w != KF_OK || strcmp(kf_kernel_engine(pc->k), "cc") != 0) {
            /* A machine without a C compiler has no cc tier: t_tiers says
             * whether it should have one; here nothing can be checked. */
            nocc++;
            KFT_CHECKF(w == KF_OK, "%s: cc build failed: %s", name, kf_errmsg(ctx[0]));
            continue;
        }
        kf_kernel *k[3] = {pc->k, kft_compile_jit(ctx[1], &pc->s, KF_JIT_CC),
                           kft_compile_jit(ctx[2], &pc->s, KF_JIT_CC)};
        int bad = 0;
        kft_data d;
        if (!KFT_CHECK(k[1] && k[2]) ||
            !KFT_CHECK(kft_data_make(&d, pc->k, 1000, 1000, pc->lo, pc->hi, pc->grid,
                                     (uint64_t)c * 17 + 1) == 0)) {
            kf_kernel_free(k[1]), kf_kernel_free(k[2]);
            failures++;
            continue;
        }
        /* each case sees the small sizes and two of the large ones */
        for (int q = 0; q < NSIZES; q++) {
            if (q >= 5 && q != 5 + c % 5 && q != 5 + (c + 2) % 5)
                continue;
            int64_t M = SIZES[q][0], N = SIZES[q][1];
            kf_options o;
            kf_options_init(&o);
            o.threads = 1;
            kf_ctx *rctx = kf_new(&o);
            kf_kernel *ref = rctx ? kft_compile_jit(rctx, &pc->s, KF_JIT_REFERENCE) : NULL;
            int r = ref ? kft_compare(&pc->s, pc->k, ref, M, N, &d) : -1;
            kf_kernel_free(ref);
            kf_free(rctx);
            if (!KFT_CHECKF(r == 0, "%s, M=%lld N=%lld: %d mismatches", name, (long long)M,
                            (long long)N, r))
                bad++;
            if (!KFT_CHECKF(same_bits(k, 3, M, N, &d), "%s, M=%lld N=%lld: 1/2/3 threads differ",
                            name, (long long)M, (long long)N))
                bad++;
        }
        failures += bad > 0;
        kft_data_free(&d);
        kf_kernel_free(k[1]), kf_kernel_free(k[2]);
    }
    if (nocc)
        fprintf(stderr, "  cc_props: %d of %d kernels without cc code\n", nocc, ncases);
out:
    for (int c = 0; c < ncases; c++)
        kf_kernel_free(cases[c].k), cases[c].k = NULL;
    for (int d = 0; d < 8; d++)
        free(owned[d]), owned[d] = NULL;
    for (int t = 0; t < 3; t++)
        kf_free(ctx[t]);
}
