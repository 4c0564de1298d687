/* t_autodiff.c -- the derivative operators (compiler/autodiff.c and the DERIV
 * column of compiler/ops.def) against central finite differences of the
 * reference evaluator in float64: Grad with respect to every variable of a
 * formula for every differentiable op, Diff, GradMatrix, Divergence and
 * Laplacian on the same formulas; and the gradients of the Gaussian, Laplace
 * and Cauchy kernel sums with respect to x against hand-derived ones, run
 * through the public API (libtcc kernels, both dtypes). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "kernels/ref.h"
#include "runtime/rt.h"

/* The fixture's variables: names, dims; index k of the table is Var index k.
 * z holds 3 complex numbers, w one; M is 2x3, S is 3x3. Index 9 is the
 * gradient seed e, 10 the direction u (dims set per case). */
#define NV 9
static const char *const NAMES[NV] = {"x", "y", "a", "b", "z", "w", "M", "S", "s"};
static const char *const ALIASES[NV] = {"x=Vi(0,3)", "y=Vj(1,3)", "a=Vi(2,1)", "b=Vj(3,1)", "z=Vi(4,6)",
                                        "w=Vj(5,2)", "M=Vi(6,6)", "S=Vj(7,9)", "s=Pm(8,3)"};
static const int DIMS[NV] = {3, 3, 1, 1, 6, 2, 6, 9, 3};
#define MAXD 64

/* Every differentiable op, away from the points where it is not (the
 * values below are fixed), the broadcasting of each argument included. */
static const char *const CASES[] = {
    /* unary */
    "Minus(x)", "Exp(x*a)", "Log(Square(x) + 1)", "Sin(x*b)", "Cos(x - y)", "Asin(x*RatCst(1,2))",
    "Acos(x*RatCst(1,2)*b)", "Atan(x*y)", "Sqrt(Square(x) + a*a + 1)", "Rsqrt(Square(x - y) + 1)",
    "Inv(x + 3)", "Abs(x - y)", "Sign(x)*x + Step(x - y)*y", "ReLU(x - y)", "Floor(x*3)*x", "Square(x - y)*a",
    "XLogX(Square(x) + RatCst(1,2))", "SinXDivX(x*b + 2)",
    /* integer arguments */
    "Pow(x, 3)", "Pow(x + 3, -2)", "Round(x, 1)*y", "ClampInt(x*3, -1, 2)", "DiffClampInt(x, 0, 1)*x",
    /* binary, ternary */
    "Add(x, a) + Subtract(y, b)", "Mult(x, b)*a", "Divide(x, y + 3)", "Divide(a, x + 3)", "Atan2(x, y + 2)",
    "Powf(Square(x) + 1, y)", "Equal(x, y) + NotEqual(x, y)*x + LessThan(x, y)*y + LessOrEqual(x, y)*a",
    "IfElse(x - y, Square(x), y*b)", "Clamp(x, y - RatCst(1,2), y + RatCst(1,2))", "Mod(x*5, y + 3, a)",
    /* vector to scalar */
    "Sum(x*y)", "Max(x - y)", "Min(x*y)", "ArgMax(x)*a + ArgMin(y)*b", "Scalprod(x, y) + Scalprod(x, a)",
    "SqNorm2(x - y)", "Norm2(x - y)", "SqDist(x, y) + SqDist(x, b)", "WeightedSqNorm(a, x)",
    "WeightedSqNorm(s, x)", "WeightedSqNorm(S, x)", "WeightedSqDist(b, x, y)", "WeightedSqDist(s, x, a)",
    "WeightedSqDist(S, x, y)",
    /* shape, tensor */
    "Normalize(x - y)", "Elem(x, 1)*y", "ElemT(a*b, 3, 1) + x", "Extract(x, 1, 2)*b", "ExtractT(x, 1, 5)",
    "Concat(x, y*a)", "OneHot(a*2 + 1, 3)*x", "SumT(a*b, 3)*x", "MatVecMult(M, y)",
    "VecMatMult(Extract(x, 0, 2), M)", "TensorProd(x, y)", "TensorDot(M, y, [2,3], [3], [1], [0])",
    "TensorDot(M, S, [2,3], [3,3], [1], [1], [1,0])", "TensorDot(TensorProd(x, M), S, [3,2,3], [3,3], [0,2], [1,0])",
    "TensorDot(x, y, [3], [3], [0], [0])*a", "Kron(M, y, [2,3], [3,1])",
    /* splines (x only: the knots have no derivative), with a repeated knot */
    "BSpline(Concat(Concat(Concat(Concat(IntCst(-2), IntCst(-1)), Zero(1)), IntCst(1)), IntCst(2)), a, 2)",
    "BSpline(Concat(Concat(Concat(Concat(Concat(IntCst(-2), IntCst(-1)), Zero(1)), Zero(1)), IntCst(1)), "
    "IntCst(2)), a*b, 3)",
    "BSpline(Concat(Concat(IntCst(-2), Zero(1)), IntCst(2)), a, 0)*Extract(x, 0, 2)",
    /* soft-DTW (x and y only: gamma has no derivative, nor in KeOps), times a
     * vector so that no Laplacian differentiates GradSoftDTW_SqDist */
    "SoftDTW_SqDist(x, y, RatCst(1,2))*y", "SoftDTW_SqDist(Concat(x, a), y*b, IntCst(1))*x",
    /* complex */
    "ComplexReal(z) + ComplexImag(z)", "Real2Complex(x) + Imag2Complex(y)", "Conj(z)", "ComplexAdd(z, w)",
    "ComplexSubtract(w, z)", "ComplexMult(z, w)", "ComplexScal(w, z)", "ComplexRealScal(a, z)",
    "ComplexDivide(z, w)", "ComplexDivide(w, z)", "ComplexSquareAbs(z)", "ComplexAbs(z)", "ComplexAngle(z)",
    "ComplexExp(z)", "ComplexExp1j(x)", "ComplexSum(z)", "ComplexSumT(w, 6)",
    /* kernels, and a derivative differentiated again */
    "Exp(-SqDist(x, y)*a)*b", "Exp(-Norm2(x - y))", "Inv(1 + SqDist(x, y))", "Grad(Exp(-SqDist(x, y))*b, x, a)",
    "Grad_WithSavedForward(Sin(x*y), y, x, a)",
};
#define NCASES ((int)(sizeof CASES / sizeof CASES[0]))

/* The fixture's values: one row per variable; e and u after them. */
typedef struct fix {
    double v[NV + 2][MAXD];
} fix;

static void fix_init(fix *F, unsigned seed)
{
    uint64_t s = 0x9e3779b97f4a7c15ull * (seed + 1);
    for (int k = 0; k < NV + 2; k++)
        for (int c = 0; c < MAXD; c++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            F->v[k][c] = ((double)(s >> 11) / 9007199254740992.0) * 2.4 - 1.2;
        }
}

/* Parses and checks f with the fixture's aliases (and e, u of dims de, du). */
static int build(kfc_prog *p, const char *f, int de, int du)
{
    char ae[32], au[32];
    const char *al[NV + 2];
    for (int k = 0; k < NV; k++)
        al[k] = ALIASES[k];
    snprintf(ae, sizeof ae, "e=Vi(9,%d)", de > 0 ? de : 1);
    snprintf(au, sizeof au, "u=Vi(10,%d)", du > 0 ? du : 1);
    al[NV] = ae, al[NV + 1] = au;
    kfc_diag d;
    kfc_diag_clear(&d);
    kfc_prog_init(p);
    if (kfc_parse(p, f, NULL, al, NV + 2, &d) || kfc_check(p, f, NULL, al, NV + 2, &d) ||
        kfc_simplify(p, &d)) {
        fprintf(stderr, "  cannot build '%s': %s\n", f, d.msg);
        kfc_prog_free(p);
        return -1;
    }
    return 0;
}

/* f's value at the fixture (dim returned, values in out). */
static int eval(const kfc_prog *p, const fix *F, double *out)
{
    const void *args[NV + 2];
    for (int k = 0; k < NV + 2; k++)
        args[k] = F->v[k];
    double *scratch = malloc(kfk_ref_scratch_size(p) * sizeof *scratch);
    if (!scratch)
        return -1;
    kfk_ref_eval(p, p->root, KF_FLOAT64, args, 0, 0, scratch, out);
    free(scratch);
    return p->nodes[p->root].dim;
}

/* Builds and evaluates f; -1 on failure (reported). */
static int value(const char *f, int de, int du, const fix *F, double *out)
{
    kfc_prog p;
    if (build(&p, f, de, du))
        return -1;
    int D = p.nodes[p.root].dim <= MAXD ? eval(&p, F, out) : -1;
    kfc_prog_free(&p);
    return D;
}

static int close_to(double got, double want, double tol)
{
    return fabs(got - want) <= tol * (1 + fabs(want));
}

/* Central difference of f at the fixture along direction dir of variable v
 * (f's dim D): (f(v + h dir) - f(v - h dir)) / 2h into out. */
static int fd(const kfc_prog *p, const fix *F, int v, const double *dir, double h, double *out)
{
    fix P = *F, Q = *F;
    double fp[MAXD], fm[MAXD];
    for (int c = 0; c < DIMS[v]; c++)
        P.v[v][c] += h * dir[c], Q.v[v][c] -= h * dir[c];
    int D = eval(p, &P, fp);
    if (D < 0 || eval(p, &Q, fm) < 0)
        return -1;
    for (int k = 0; k < D; k++)
        out[k] = (fp[k] - fm[k]) / (2 * h);
    return D;
}

/* Grad, Diff, GradMatrix (and Divergence, Laplacian where their dims allow)
 * of case f with respect to each of its variables, against finite
 * differences. Returns the number of mismatches. */
static int check_case(const char *f, const fix *F)
{
    kfc_prog p;
    double out[MAXD], g[MAXD], num[MAXD], dir[MAXD];
    char buf[512];
    if (build(&p, f, 1, 1))
        return 1;
    int D = p.nodes[p.root].dim, bad = 0;
    int used[NV] = {0};
    for (int32_t n = 0; n < p.nnodes; n++) /* after kfc_simplify: the variables f reads */
        if (p.nodes[n].op == KFC_OP_VAR && p.nodes[n].iv[0] < NV)
            used[p.nodes[n].iv[0]] = 1;
    for (int v = 0; v < NV && D <= MAXD; v++) {
        if (!used[v])
            continue;
        int dv = DIMS[v];
        /* Grad(f, v, e) = sum_k e_k df_k/dv */
        snprintf(buf, sizeof buf, "Grad(%s, %s, e)", f, NAMES[v]);
        if (value(buf, D, dv, F, g) != dv) {
            bad++;
            continue;
        }
        for (int l = 0; l < dv; l++) {
            memset(dir, 0, sizeof dir);
            dir[l] = 1;
            fd(&p, F, v, dir, 1e-6, num);
            double want = 0;
            for (int k = 0; k < D; k++)
                want += F->v[9][k] * num[k];
            if (!close_to(g[l], want, 1e-6))
                bad++, fprintf(stderr, "  %s: component %d: %.12g, finite differences %.12g\n", buf, l, g[l], want);
        }
        /* Diff(f, v, u) = the derivative along u */
        snprintf(buf, sizeof buf, "Diff(%s, %s, u)", f, NAMES[v]);
        if (value(buf, D, dv, F, out) != D) {
            bad++;
            continue;
        }
        fd(&p, F, v, F->v[10], 1e-6, num);
        for (int k = 0; k < D; k++)
            if (!close_to(out[k], num[k], 1e-6))
                bad++, fprintf(stderr, "  %s: component %d: %.12g, finite differences %.12g\n", buf, k, out[k], num[k]);
        /* GradMatrix(f, v)_{k dv + l} = df_k/dv_l */
        if (D * dv <= MAXD) {
            snprintf(buf, sizeof buf, "GradMatrix(%s, %s)", f, NAMES[v]);
            if (value(buf, D, dv, F, out) != D * dv) {
                bad++;
                continue;
            }
            for (int l = 0; l < dv; l++) {
                memset(dir, 0, sizeof dir);
                dir[l] = 1;
                fd(&p, F, v, dir, 1e-6, num);
                for (int k = 0; k < D; k++)
                    if (!close_to(out[k * dv + l], num[k], 1e-6))
                        bad++, fprintf(stderr, "  %s: (%d,%d): %.12g, finite differences %.12g\n", buf, k, l,
                                       out[k * dv + l], num[k]);
            }
        }
        /* Divergence(f, v) = sum_l df_l/dv_l */
        if (D == dv) {
            snprintf(buf, sizeof buf, "Divergence(%s, %s)", f, NAMES[v]);
            double want = 0;
            for (int l = 0; l < dv; l++) {
                memset(dir, 0, sizeof dir);
                dir[l] = 1;
                fd(&p, F, v, dir, 1e-6, num);
                want += num[l];
            }
            if (value(buf, D, dv, F, out) != 1 || !close_to(out[0], want, 1e-6))
                bad++, fprintf(stderr, "  %s: %.12g, finite differences %.12g\n", buf, out[0], want);
        }
        /* Laplacian(f, v) = sum_l d2f/dv_l2: second differences */
        if (D == 1) {
            snprintf(buf, sizeof buf, "Laplacian(%s, %s)", f, NAMES[v]);
            double want = 0, f0[MAXD], fp[MAXD], fm[MAXD], h = 1e-4;
            eval(&p, F, f0);
            for (int l = 0; l < dv; l++) {
                fix P = *F, Q = *F;
                P.v[v][l] += h, Q.v[v][l] -= h;
                eval(&p, &P, fp), eval(&p, &Q, fm);
                want += (fp[0] - 2 * f0[0] + fm[0]) / (h * h);
            }
            if (value(buf, D, dv, F, out) != 1 || !close_to(out[0], want, 1e-4))
                bad++, fprintf(stderr, "  %s: %.12g, finite differences %.12g\n", buf, out[0], want);
        }
    }
    kfc_prog_free(&p);
    return bad;
}

KFT_TEST(autodiff_rules_against_finite_differences)
{
    for (unsigned seed = 0; seed < 2; seed++) {
        fix F;
        fix_init(&F, seed);
        for (int c = 0; c < NCASES; c++) {
            int bad = check_case(CASES[c], &F);
            KFT_CHECKF(bad == 0, "%s (values %u): %d mismatches", CASES[c], seed, bad);
        }
    }
}

/* Every op with a derivative rule appears in a case (so its rule is
 * checked above), and every rule string is well formed for its op. */
KFT_TEST(autodiff_cases_cover_rules)
{
    for (int op = 0; op < KFC_OP_COUNT; op++) {
        const kfc_opinfo *oi = &kfc_op_info[op];
        if (oi->rule == KFC_DR_DERIV) {
            KFT_CHECKF(oi->deriv == NULL, "%s: a derivative operator has no rule of its own", oi->name);
            continue;
        }
        KFT_CHECKF(oi->deriv != NULL, "%s: no DERIV rule", oi->name);
        if (!oi->deriv || oi->nargs == 0 || op == KFC_OP_GRADSOFTDTW_SQDIST) /* refused: autodiff_refused */
            continue;
        int rules = 1;
        for (const char *s = oi->deriv; *s; s++)
            rules += *s == ';';
        KFT_CHECKF(strcmp(oi->deriv, "*") == 0 || rules == oi->nargs, "%s: %d rules for %d arguments", oi->name,
                   rules, oi->nargs);
        char pat[64];
        snprintf(pat, sizeof pat, "%s(", oi->name);
        int found = 0;
        for (int c = 0; c < NCASES && !found; c++)
            for (const char *at = strstr(CASES[c], pat); at && !found; at = strstr(at + 1, pat))
                found = at == CASES[c] || !(at[-1] >= 'A' && at[-1] <= 'z');
        KFT_CHECKF(found, "no autodiff case uses %s", oi->name);
    }
}

/* A derivative with respect to a variable f does not contain is 0; Diff
 * leaves no temporary variable; nested derivatives of the Gaussian. */
KFT_TEST(autodiff_zero_and_nested)
{
    fix F;
    fix_init(&F, 3);
    double out[MAXD];
    KFT_CHECK(value("Grad(Exp(x), y, e)", 3, 1, &F, out) == 3 && out[0] == 0 && out[1] == 0 && out[2] == 0);
    KFT_CHECK(value("Laplacian(Sum(x), x)", 1, 1, &F, out) == 1 && out[0] == 0);
    /* Grad(Grad(F,x,1),x,u) = H u: the Hessian of exp(-|x-y|^2) applied to u */
    KFT_CHECK(value("Grad(Grad(Exp(-SqDist(x,y)), x, IntCst(1)), x, u)", 1, 3, &F, out) == 3);
    const double *x = F.v[0], *y = F.v[1], *u = F.v[10];
    double r2 = 0, du = 0;
    for (int k = 0; k < 3; k++)
        r2 += (x[k] - y[k]) * (x[k] - y[k]), du += (x[k] - y[k]) * u[k];
    for (int k = 0; k < 3; k++) {
        double want = exp(-r2) * (4 * (x[k] - y[k]) * du - 2 * u[k]);
        KFT_CHECKF(close_to(out[k], want, 1e-12), "Hessian-vector product %d: %.17g, expected %.17g", k, out[k],
                   want);
    }
    kfc_prog p;
    KFT_CHECK(build(&p, "Diff(Diff(Sin(x*y), x, u), y, x)", 3, 3) == 0);
    if (p.nodes)
        for (int32_t n = 0; n < p.nnodes; n++)
            KFT_CHECK(p.nodes[n].op != KFC_OP_VAR || p.nodes[n].iv[0] < KFC_MAX_VARS);
    kfc_prog_free(&p);
}

/* Gradients with respect to x of the three kernel sums of kernel methods and
 * shape registration, a_i = sum_j grad_x k(x_i, y_j) b_j, by the libtcc
 * kernel (both dtypes) against the hand-derived formulas. */
KFT_TEST(autodiff_kernel_gradients)
{
    enum { M = 37, N = 53, D = 3 };
    static const char *const KERN[3] = {
        "Grad(Exp(-SqDist(x,y)*g)*b, x, e)",     /* Gaussian: -2 g exp(-g r^2) (x-y) b */
        "Grad(Exp(-Norm2(x-y)*g)*b, x, e)",      /* Laplace:  -g exp(-g r) (x-y)/r b */
        "Grad(Inv(IntCst(1) + g*SqDist(x,y))*b, x, e)", /* Cauchy: -2 g (x-y) / (1 + g r^2)^2 b */
    };
    static const char *const AL[] = {"x=Vi(0,3)", "y=Vj(1,3)", "b=Vj(2,1)", "g=Pm(3,1)", "e=Vi(4,1)"};
    double x[M * D], y[N * D], b[N], g = 0.7, e[M];
    uint64_t s = 12345;
    for (int k = 0; k < M * D; k++)
        s = s * 6364136223846793005ull + 1, x[k] = (double)(s >> 11) / 9007199254740992.0;
    for (int k = 0; k < N * D; k++)
        s = s * 6364136223846793005ull + 1, y[k] = (double)(s >> 11) / 9007199254740992.0;
    for (int k = 0; k < N; k++)
        s = s * 6364136223846793005ull + 1, b[k] = (double)(s >> 11) / 9007199254740992.0 - 0.5;
    for (int k = 0; k < M; k++)
        e[k] = 1;
    kf_ctx *ctx = kf_new(NULL);
    KFT_CHECK(ctx != NULL);
    if (!ctx)
        return;
    for (int kind = 0; kind < 3; kind++) {
        double want[M * D];
        for (int i = 0; i < M; i++)
            for (int c = 0; c < D; c++) {
                double acc = 0;
                for (int j = 0; j < N; j++) {
                    double r2 = 0;
                    for (int q = 0; q < D; q++)
                        r2 += (x[i * D + q] - y[j * D + q]) * (x[i * D + q] - y[j * D + q]);
                    double dx = x[i * D + c] - y[j * D + c], r = sqrt(r2);
                    if (kind == 0)
                        acc += -2 * g * exp(-g * r2) * dx * b[j];
                    else if (kind == 1)
                        acc += -g * exp(-g * r) * dx / r * b[j];
                    else
                        acc += -2 * g * dx / ((1 + g * r2) * (1 + g * r2)) * b[j];
                }
                want[i * D + c] = acc;
            }
        for (int dt = 0; dt < 2; dt++) {
            kf_dtype dtype = dt ? KF_FLOAT64 : KF_FLOAT32;
            kf_compile_opts o;
            kf_compile_opts_init(&o);
            o.jit = KF_JIT_TCC;
            kf_kernel *k = kf_compile(ctx, KERN[kind], AL, 5, "Sum", 1, dtype, &o);
            KFT_CHECKF(k != NULL, "%s: %s", KERN[kind], kf_errmsg(ctx));
            if (!k)
                continue;
            float xf[M * D], yf[N * D], bf[N], gf = (float)g, ef[M], outf[M * D];
            double out[M * D];
            for (int q = 0; q < M * D; q++)
                xf[q] = (float)x[q];
            for (int q = 0; q < N * D; q++)
                yf[q] = (float)y[q];
            for (int q = 0; q < N; q++)
                bf[q] = (float)b[q];
            for (int q = 0; q < M; q++)
                ef[q] = 1;
            const void *a64[5] = {x, y, b, &g, e}, *a32[5] = {xf, yf, bf, &gf, ef};
            int st = kf_run(k, M, N, dt ? a64 : a32, 5, dt ? (void *)out : (void *)outf, NULL);
            KFT_CHECKF(st == KF_OK, "%s: %s", KERN[kind], kf_errmsg(ctx));
            double worst = 0;
            for (int q = 0; q < M * D; q++) {
                double got = dt ? out[q] : outf[q], err = fabs(got - want[q]) / (1 + fabs(want[q]));
                worst = err > worst ? err : worst;
            }
            KFT_CHECKF(worst <= (dt ? 1e-12 : 1e-5), "%s (%s): relative error %.3g", KERN[kind],
                       dt ? "float64" : "float32", worst);
            kf_kernel_free(k);
        }
    }
    kf_free(ctx);
}

/* Large expansions: within the limits they build (the node array grows under
 * the rules' feet), beyond them a KF_ERR_LIMIT error, never a crash. */
/* The derivatives KeOps does not have either: a clear KF_ERR_UNSUPPORTED. */
KFT_TEST(autodiff_refused)
{
    static const char *const F[] = {
        "Grad(SoftDTW_SqDist(x, y, a*a + 1), a, b)",
        "Grad(GradSoftDTW_SqDist(x, y, RatCst(1,2)), x, Concat(x, y))",
        "Laplacian(SoftDTW_SqDist(x, y, RatCst(1,2)), x)",
        "Grad(BSpline(Concat(Concat(a, a + 1), a + 2), b, 1), a, b)",
    };
    for (size_t k = 0; k < sizeof F / sizeof F[0]; k++) {
        kfc_prog p;
        kfc_diag d;
        kfc_diag_clear(&d);
        kfc_prog_init(&p);
        int st = kfc_parse(&p, F[k], NULL, ALIASES, NV, &d);
        if (!st)
            st = kfc_check(&p, F[k], NULL, ALIASES, NV, &d);
        KFT_CHECKF(st == KF_ERR_UNSUPPORTED && strstr(d.msg, "no derivative") != NULL, "%s: status %d (%s)",
                   F[k], st, d.msg);
        kfc_prog_free(&p);
    }
}

KFT_TEST(autodiff_limits)
{
    static const struct {
        const char *f;
        int status;
    } C[] = {
        {"Laplacian(Exp(-SqNorm2(Var(11,300,0))),Var(11,300,0))", KF_OK},
        {"Divergence(Var(11,200,0)*Sum(Sin(Var(11,200,0))),Var(11,200,0))", KF_OK},
        {"Laplacian(Exp(-SqNorm2(Var(11,3000,0))),Var(11,3000,0))", KF_ERR_LIMIT},
        {"GradMatrix(Exp(Var(11,200,0)),Var(11,200,0))", KF_ERR_LIMIT},
        {"Laplacian(Laplacian(Laplacian(Laplacian(Laplacian(Laplacian(Exp(-SqDist(x,y)),x),x),x),x),x),x)",
         KF_ERR_LIMIT},
    };
    for (size_t k = 0; k < sizeof C / sizeof C[0]; k++) {
        kfc_prog p;
        kfc_diag d;
        kfc_diag_clear(&d);
        kfc_prog_init(&p);
        int st = kfc_parse(&p, C[k].f, NULL, ALIASES, NV, &d);
        if (!st)
            st = kfc_check(&p, C[k].f, NULL, ALIASES, NV, &d);
        KFT_CHECKF(st == C[k].status, "%s: status %d (%s)", C[k].f, st, d.msg);
        kfc_prog_free(&p);
    }
}
