/* t_ref.c -- the oracle itself (kernels/ref_eval.c) against hand-computed
 * values: every op of compiler/ops.def, the special values, and every
 * reduction of compiler/reductions.def on a tiny input. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/rt.h"
#include "harness.h"

/* The fixture: x, y dim 3; a, b, p scalars; A a 2x3 matrix; S a symmetric 3x3. */
typedef struct fixture {
    double x[3], y[3], a, b, p, A[6], S[9];
} fixture;

static const fixture FX = {
    {1, -2, 3}, {0.5, 4, -1}, 2, -3, 0.5, {1, 2, 3, 4, 5, 6}, {2, 1, 0, 1, 3, 1, 0, 1, 4},
};

static const char *const ALIASES[] = {"x=Vi(0,3)", "y=Vj(1,3)", "a=Vi(2,1)", "b=Vj(3,1)",
                                      "p=Pm(4,1)", "A=Vi(5,6)", "S=Vj(6,9)"};
#define NAL ((int)(sizeof ALIASES / sizeof ALIASES[0]))

/* Parses and checks formula (and formula2) with the fixture's aliases. */
static int build(kfc_prog *p, const char *f, const char *f2)
{
    kfc_diag d;
    kfc_diag_clear(&d);
    kfc_prog_init(p);
    if (kfc_parse(p, f, f2, ALIASES, NAL, &d) != KF_OK ||
        kfc_check(p, f, f2, ALIASES, NAL, &d) != KF_OK) {
        fprintf(stderr, "  cannot build '%s': %s\n", f, d.msg);
        kfc_prog_free(p);
        return -1;
    }
    return 0;
}

static int same(double got, double exp)
{
    if (isnan(exp))
        return isnan(got);
    if (isinf(exp) || exp == 0)
        return got == exp;
    return fabs(got - exp) <= 1e-13 * fabs(exp);
}

/* Evaluates formula at the pair (0, 0) with fixture fx and compares it with
 * the n expected values. */
static void expect(int line, const fixture *fx, const char *formula, const double *exp, int n)
{
    kfc_prog p;
    if (build(&p, formula, NULL) != 0) {
        kft_check(0, __FILE__, line, formula, "does not build");
        return;
    }
    const void *args[7] = {fx->x, fx->y, &fx->a, &fx->b, &fx->p, fx->A, fx->S};
    double *scratch = malloc(kfk_ref_scratch_size(&p) * sizeof *scratch);
    double out[64];
    int dim = p.nodes[p.root].dim;
    if (kft_check(dim == n && scratch != NULL, __FILE__, line, formula, "dim %d, expected %d", dim,
                  n)) {
        kfk_ref_eval(&p, p.root, KF_FLOAT64, args, 0, 0, scratch, out);
        for (int k = 0; k < n; k++)
            kft_check(same(out[k], exp[k]), __FILE__, line, formula,
                      "component %d: got %.17g, expected %.17g", k, out[k], exp[k]);
    }
    free(scratch);
    kfc_prog_free(&p);
}

#define VALS(...) (const double[]){__VA_ARGS__}, (int)(sizeof((const double[]){__VA_ARGS__}) / sizeof(double))
#define EXPECT(formula, ...) expect(__LINE__, &FX, formula, VALS(__VA_ARGS__))
/* With the scalar i-variable a set to av. */
#define EXPECT_A(av, formula, ...)                                                                 \
    do {                                                                                           \
        fixture fx_ = FX;                                                                          \
        fx_.a = (av);                                                                              \
        expect(__LINE__, &fx_, formula, VALS(__VA_ARGS__));                                        \
    } while (0)

KFT_TEST(ref_leaves)
{
    EXPECT("x", 1, -2, 3);
    EXPECT("y", 0.5, 4, -1);
    EXPECT("p", 0.5);
    EXPECT("IntCst(7)", 7);
    EXPECT("RatCst(3,4)", 0.75);
    EXPECT("Zero(2)", 0, 0);
    EXPECT("0.25", 0.25);
    EXPECT("Var(3,1,1)", -3);
}

KFT_TEST(ref_unary)
{
    EXPECT("Minus(x)", -1, 2, -3);
    EXPECT("-a", -2);
    EXPECT("Exp(a)", exp(2));
    EXPECT("Log(a)", log(2));
    EXPECT("Sin(a)", sin(2));
    EXPECT("Cos(a)", cos(2));
    EXPECT("Asin(p)", M_PI / 6);
    EXPECT("Acos(p)", M_PI / 3);
    EXPECT("Atan(a)", atan(2));
    EXPECT("Sqrt(a)", sqrt(2));
    EXPECT("Rsqrt(a)", 1 / sqrt(2));
    EXPECT("Inv(a)", 0.5);
    EXPECT("Abs(b)", 3);
    EXPECT("Sign(x)", 1, -1, 1);
    EXPECT("Step(x)", 1, 0, 1);
    EXPECT("ReLU(x)", 1, 0, 3);
    EXPECT("Floor(x*p)", 0, -1, 1);
    EXPECT("Square(x)", 1, 4, 9);
    EXPECT("x**2", 1, 4, 9);
    EXPECT("XLogX(a)", 2 * log(2));
    EXPECT("SinXDivX(a)", sin(2) / 2);
}

KFT_TEST(ref_unary_special_values)
{
    EXPECT_A(0, "Rsqrt(a)", 0);
    EXPECT_A(0, "XLogX(a)", 0);
    EXPECT_A(0, "SinXDivX(a)", 1);
    EXPECT_A(0, "Inv(a)", INFINITY);
    EXPECT_A(-0.0, "Inv(a)", -INFINITY);
    EXPECT_A(0, "Log(a)", -INFINITY);
    EXPECT_A(-1, "Log(a)", NAN);
    EXPECT_A(-1, "Sqrt(a)", NAN);
    EXPECT_A(2, "Asin(a)", NAN);
    EXPECT_A(-1, "XLogX(a)", NAN);
    EXPECT_A(0, "Sign(a)", 0);
    EXPECT_A(-0.5, "Sign(a)", -1);
    EXPECT_A(0.5, "Sign(a)", 1);
    EXPECT_A(NAN, "Sign(a)", NAN);
    EXPECT_A(0, "Step(a)", 1);
    EXPECT_A(-0.5, "Step(a)", 0);
    EXPECT_A(NAN, "Step(a)", NAN);
    EXPECT_A(-0.5, "ReLU(a)", 0);
    EXPECT_A(0.5, "ReLU(a)", 0.5);
    EXPECT_A(NAN, "ReLU(a)", NAN);
    EXPECT_A(NAN, "Abs(a)", NAN);
    EXPECT_A(NAN, "Floor(a)", NAN);
    EXPECT_A(-2.5, "Floor(a)", -3);
    EXPECT_A(NAN, "Exp(a)", NAN);
    EXPECT_A(-INFINITY, "Exp(a)", 0);
    EXPECT_A(INFINITY, "Rsqrt(a)", 0);
}

KFT_TEST(ref_integer_args)
{
    EXPECT("Pow(b,3)", -27);
    EXPECT("Pow(a,-2)", 0.25);
    EXPECT("Pow(a,0)", 1);
    EXPECT("b**3", -27);
    EXPECT_A(NAN, "Pow(a,0)", 1); /* like C pow */
    EXPECT_A(0, "Pow(a,-1)", INFINITY);
    EXPECT_A(1.25, "Round(a,1)", 1.3);   /* 12.5 exactly: half away from zero */
    EXPECT_A(-1.25, "Round(a,1)", -1.3);
    EXPECT_A(-1.5, "Round(a,0)", -2);
    EXPECT_A(2.5, "Round(a,0)", 3);
    EXPECT_A(3.14159, "Round(a,3)", 3.142);
    EXPECT_A(NAN, "Round(a,2)", NAN);
    EXPECT("ClampInt(x,-1,2)", 1, -1, 2);
    EXPECT_A(NAN, "ClampInt(a,0,1)", NAN);
}

KFT_TEST(ref_binary)
{
    EXPECT("Add(x,y)", 1.5, 2, 2);
    EXPECT("x + a", 3, 0, 5); /* dim-1 broadcasting */
    EXPECT("Subtract(x,b)", 4, 1, 6);
    EXPECT("b - x", -4, -1, -6);
    EXPECT("Mult(x,y)", 0.5, -8, -3);
    EXPECT("Divide(x,a)", 0.5, -1, 1.5);
    EXPECT("a / x", 2, -1, 2.0 / 3);
    EXPECT("Atan2(a,b)", atan2(2, -3));
    EXPECT("Atan2(x,y)", atan2(1, 0.5), atan2(-2, 4), atan2(3, -1));
    EXPECT("Powf(a,p)", sqrt(2));
    EXPECT("Powf(b,p)", NAN);
    EXPECT("Powf(b,a)", 9);
    EXPECT("Equal(x,IntCst(1))", 1, 0, 0);
    EXPECT("NotEqual(x,IntCst(1))", 0, 1, 1);
    EXPECT("LessThan(x,y)", 0, 1, 0);
    EXPECT("LessOrEqual(x,IntCst(1))", 1, 1, 0);
    EXPECT("x < y", 0, 1, 0);
    EXPECT("x > y", 1, 0, 1);
    EXPECT("x <= IntCst(1)", 1, 1, 0);
    EXPECT("x >= IntCst(1)", 1, 0, 1);
    /* IEEE comparisons with NaN */
    EXPECT_A(NAN, "Equal(a,a)", 0);
    EXPECT_A(NAN, "NotEqual(a,a)", 1);
    EXPECT_A(NAN, "LessThan(a,IntCst(1))", 0);
    EXPECT_A(NAN, "LessOrEqual(IntCst(1),a)", 0);
    EXPECT_A(NAN, "Add(a,x)", NAN, NAN, NAN);
}

KFT_TEST(ref_ternary)
{
    EXPECT("IfElse(x,y,a)", 0.5, 2, -1);
    EXPECT_A(NAN, "IfElse(a,IntCst(1),IntCst(2))", 2);
    EXPECT_A(0, "IfElse(a,IntCst(1),IntCst(2))", 1);
    EXPECT("Clamp(x,b,a)", 1, -2, 2);
    EXPECT("Clamp(x,IntCst(0),IntCst(1))", 1, 0, 1);
    EXPECT_A(NAN, "Clamp(a,IntCst(0),IntCst(1))", NAN);
    EXPECT("Mod(x,IntCst(2),IntCst(0))", 1, 0, 1);
    EXPECT_A(7.5, "Mod(a,IntCst(2),IntCst(1))", 1.5);
    EXPECT_A(-0.5, "Mod(a,IntCst(2),IntCst(0))", 1.5);
}

KFT_TEST(ref_vector_to_scalar)
{
    EXPECT("Sum(x)", 2);
    EXPECT("Max(x)", 3);
    EXPECT("Min(x)", -2);
    EXPECT("ArgMax(x)", 2);
    EXPECT("ArgMin(x)", 1);
    EXPECT("ArgMax(Concat(a,Concat(IntCst(1),a)))", 0); /* ties: the first */
    EXPECT("ArgMin(Concat(IntCst(1),Concat(IntCst(0),IntCst(0))))", 1);
    EXPECT_A(NAN, "Max(Concat(x,a))", NAN);
    EXPECT_A(NAN, "Min(Concat(a,x))", NAN);
    EXPECT_A(NAN, "ArgMax(Concat(x,Concat(a,a)))", 3); /* the first NaN wins */
    EXPECT_A(NAN, "ArgMin(Concat(x,a))", 3);
    EXPECT("Scalprod(x,y)", -10.5);
    EXPECT("(x|y)", -10.5);
    EXPECT("Scalprod(x,a)", 4);
    EXPECT("SqNorm2(x)", 14);
    EXPECT("Norm2(x)", sqrt(14));
    EXPECT("SqDist(x,y)", 52.25);
    EXPECT("SqDist(x,a)", 18);
    EXPECT("WeightedSqNorm(a,x)", 28);
    EXPECT("WeightedSqNorm(y,x)", 7.5);
    EXPECT("WeightedSqNorm(S,x)", 34);
    EXPECT("WeightedSqDist(a,x,y)", 104.5);
    EXPECT("WeightedSqDist(S,x,Zero(3))", 34);
    EXPECT("WeightedSqNorm(a,b)", 18); /* D = 1: the isotropic reading */
}

KFT_TEST(ref_shape)
{
    double n = sqrt(14);
    EXPECT("Normalize(x)", 1 / n, -2 / n, 3 / n);
    EXPECT("Normalize(Zero(3))", 0, 0, 0);
    EXPECT("Elem(x,2)", 3);
    EXPECT("ElemT(a,3,1)", 0, 2, 0);
    EXPECT("Extract(x,1,2)", -2, 3);
    EXPECT("ExtractT(a,1,3)", 0, 2, 0);
    EXPECT("ExtractT(Extract(x,0,2),1,4)", 0, 1, -2, 0);
    EXPECT("Concat(x,a)", 1, -2, 3, 2);
    EXPECT("OneHot(a,4)", 0, 0, 1, 0);
    EXPECT("OneHot(p,3)", 0, 1, 0); /* round(0.5) = 1: half away from zero */
    EXPECT("OneHot(b,3)", 0, 0, 0);
    EXPECT_A(2.5, "OneHot(a,4)", 0, 0, 0, 1);
    EXPECT_A(4, "OneHot(a,4)", 0, 0, 0, 0);
    EXPECT("SumT(a,3)", 2, 2, 2);
}

KFT_TEST(ref_tensor)
{
    EXPECT("MatVecMult(A,x)", 6, 12);
    EXPECT("VecMatMult(Extract(x,0,2),A)", -7, -8, -9);
    EXPECT("TensorProd(Extract(x,0,2),y)", 0.5, 4, -1, -1, -8, 2);
}

/* Soft-DTW of x = (0, 1), y = (0, 2) by hand: costs c11 = 0, c12 = 4, c21 =
 * c22 = 1; r11 = 0, r12 = 4, r21 = 1, r22 = 1 - g log(1 + e^(-4/g) + e^(-1/g)).
 * With g = 1 and S = 1 + e^-4 + e^-1, the weights are e22 = 1, e12 = e^-4/S,
 * e21 = e^-1/S, e11 = (1 + e^-4 + e^-1)/S = 1, so dx = (-4 e^-4/S,
 * 2 e^-1/S - 2), dy = (-2 e^-1/S, 4 e^-4/S + 2). Then the lengths 1 and 3. */
KFT_TEST(ref_softdtw)
{
    const char *X = "Concat(Zero(1),IntCst(1))", *Y = "Concat(Zero(1),IntCst(2))";
    char f[256];
    double S = 1 + exp(-4) + exp(-1);
    snprintf(f, sizeof f, "SoftDTW_SqDist(%s,%s,IntCst(1))", X, Y);
    EXPECT(f, 1 - log(S));
    snprintf(f, sizeof f, "SoftDTW_SqDist(%s,%s,p)", X, Y);
    EXPECT(f, 1 - 0.5 * log(1 + exp(-8) + exp(-2)));
    snprintf(f, sizeof f, "GradSoftDTW_SqDist(%s,%s,IntCst(1))", X, Y);
    EXPECT(f, -4 * exp(-4) / S, 2 * exp(-1) / S - 2, -2 * exp(-1) / S, 4 * exp(-4) / S + 2);
    /* a length-1 sequence: every path is the one row, the costs add up */
    EXPECT("SoftDTW_SqDist(a,x,p)", 1 + 16 + 1);
    EXPECT("SoftDTW_SqDist(x,b,p)", 16 + 1 + 36);
    EXPECT("GradSoftDTW_SqDist(a,x,p)", 2 * (1 + 4 - 1), -2, -8, 2);
}

/* Complex vectors are real vectors of even dim, (re, im) interleaved: A is
 * (1+2i, 3+4i, 5+6i), Concat(a,b) the complex number 2-3i. */
KFT_TEST(ref_complex)
{
    EXPECT("ComplexMult(Concat(1,2),Concat(3,-1))", 5, 5); /* (1+2i)(3-i) = 5+5i */
    EXPECT("ComplexMult(A,Concat(0,1))", -2, 1, -4, 3, -6, 5); /* times i, the scalar broadcast */
    EXPECT("ComplexMult(Concat(0,1),A)", -2, 1, -4, 3, -6, 5);
    EXPECT("ComplexMult(A,A)", -3, 4, -7, 24, -11, 60);
    EXPECT("ComplexScal(Concat(0,1),A)", -2, 1, -4, 3, -6, 5);
    EXPECT("ComplexScal(A,Concat(0,1))", -2, 1, -4, 3, -6, 5);
    EXPECT("ComplexScal(Concat(1,2),Concat(3,-1))", 5, 5);
    EXPECT("ComplexRealScal(a,A)", 2, 4, 6, 8, 10, 12);
    EXPECT("ComplexRealScal(A,b)", -3, -6, -9, -12, -15, -18);
    EXPECT("ComplexRealScal(p,Concat(a,b))", 1, -1.5);
    EXPECT("ComplexAdd(A,Concat(1,-1))", 2, 1, 4, 3, 6, 5);
    EXPECT("ComplexAdd(Concat(a,b),Concat(p,a))", 2.5, -1);
    EXPECT("ComplexSubtract(A,Concat(1,2))", 0, 0, 2, 2, 4, 4);
    EXPECT("ComplexSubtract(Concat(1,2),A)", 0, 0, -2, -2, -4, -4);
    EXPECT("ComplexDivide(Concat(5,5),Concat(3,-1))", 1, 2); /* (5+5i)/(3-i) = 1+2i */
    EXPECT("ComplexDivide(A,Concat(0,1))", 2, -1, 4, -3, 6, -5); /* divided by i */
    EXPECT("ComplexDivide(Concat(1,0),A)", 0.2, -0.4, 0.12, -0.16, 5.0 / 61, -6.0 / 61);
    EXPECT("ComplexDivide(Concat(1,1),Zero(2))", NAN, NAN); /* 1/|0|^2 = inf times 0 */
    EXPECT("Conj(A)", 1, -2, 3, -4, 5, -6);
    EXPECT("Conj(Concat(a,b))", 2, 3);
    EXPECT("ComplexReal(A)", 1, 3, 5);
    EXPECT("ComplexImag(A)", 2, 4, 6);
    EXPECT("ComplexReal(Concat(a,b))", 2);
    EXPECT("ComplexSquareAbs(A)", 5, 25, 61);
    EXPECT("ComplexAbs(A)", sqrt(5), 5, sqrt(61));
    EXPECT("ComplexAbs(Concat(3,-4))", 5);
    EXPECT("ComplexAngle(A)", atan2(2, 1), atan2(4, 3), atan2(6, 5));
    EXPECT("ComplexAngle(Concat(-1,0))", M_PI);
    EXPECT("ComplexAngle(Concat(0,-2))", -M_PI / 2);
    EXPECT("Real2Complex(x)", 1, 0, -2, 0, 3, 0);
    EXPECT("Imag2Complex(x)", 0, 1, 0, -2, 0, 3);
    EXPECT("Real2Complex(a)", 2, 0);
    EXPECT("ComplexExp(Concat(0,0))", 1, 0);
    EXPECT("ComplexExp(Concat(a,p))", exp(2) * cos(0.5), exp(2) * sin(0.5));
    EXPECT("ComplexExp(A)", exp(1) * cos(2), exp(1) * sin(2), exp(3) * cos(4), exp(3) * sin(4),
           exp(5) * cos(6), exp(5) * sin(6));
    EXPECT("ComplexExp1j(x)", cos(1), sin(1), cos(-2), sin(-2), cos(3), sin(3));
    EXPECT("ComplexExp1j(0)", 1, 0);
    EXPECT("ComplexSum(A)", 9, 12);
    EXPECT("ComplexSum(Concat(a,b))", 2, -3);
    EXPECT("ComplexSumT(Concat(a,b),6)", 2, -3, 2, -3, 2, -3);
    EXPECT("ComplexSumT(Concat(a,b),2)", 2, -3);
    EXPECT("ComplexSum(ComplexSumT(Concat(a,b),8))", 8, -12);
}

KFT_TEST(ref_eval_float32_inputs)
{
    kfc_prog p;
    if (!KFT_CHECK(build(&p, "x*b + p", NULL) == 0))
        return;
    float x[6] = {1, 2, 3, 4, 5, 6}, y[3] = {0}, a = 0, b[2] = {10, 0.5f}, pp = 0.25f;
    const void *args[7] = {x, y, &a, b, &pp, NULL, NULL};
    double *scratch = malloc(kfk_ref_scratch_size(&p) * sizeof *scratch), out[3];
    kfk_ref_eval(&p, p.root, KF_FLOAT32, args, 1, 1, scratch, out); /* i = 1, j = 1 */
    KFT_CHECK(out[0] == 2.25 && out[1] == 2.75 && out[2] == 3.25);
    free(scratch);
    kfc_prog_free(&p);
}

/* ---- reductions ---- */

/* Tiny input: a = (0, 1) (M = 2), b = (3, -1, 3, 0.5) (N = 4). */
static const double RA[2] = {0, 1}, RB[4] = {3, -1, 3, 0.5};

/* Runs reduction `red` of formula (and formula2) by the oracle over the rows
 * [r0, r1) and inner ranges jr. out/idx are prefilled with garbage. */
static int reduce(const char *formula, const char *formula2, const char *red, int axis, int K,
                  kf_dtype dtype, const int64_t *jr, int64_t nr, int64_t r0, int64_t r1, void *out,
                  int64_t *idx, kfc_red *rr)
{
    kfc_prog p;
    if (build(&p, formula, formula2) != 0)
        return -1;
    memset(rr, 0, sizeof *rr);
    rr->id = kfc_red_lookup(red);
    rr->axis = axis;
    rr->dtype = dtype;
    rr->sum_scheme = KF_SUM_F64;
    rr->K = K;
    int32_t D = p.nodes[p.root].dim, E = p.root2 >= 0 ? p.nodes[p.root2].dim : 1;
    rr->D = D;
    rr->E = E;
    switch (rr->id) {
#define X(id, name, fam, var, k, f2, scalar, VD, ID, doc)                                          \
    case KFC_RED_##id:                                                                             \
        rr->valdim = VD;                                                                           \
        rr->idxdim = ID;                                                                           \
        break;
#include "compiler/reductions.def"
#undef X
    default:
        kfc_prog_free(&p);
        return -1;
    }
    float af[2] = {0, 1}, bf[4] = {3, -1, 3, 0.5f};
    fixture fx = FX;
    const void *args[7] = {fx.x, fx.y, RA, RB, &fx.p, fx.A, fx.S};
    if (dtype == KF_FLOAT32)
        args[2] = af, args[3] = bf, args[0] = args[1] = args[4] = args[5] = args[6] = NULL;
    int st = kfk_ref_reduce(&p, rr, args, r0, r1, jr, nr, out, idx);
    kfc_prog_free(&p);
    return st;
}

#define GARB 999.0
#define GARBI 4242

/* Checks row values (n per row) and indices against expectations. */
static void expect_rows(int line, const char *what, const double *got, const double *exp, int64_t n)
{
    for (int64_t k = 0; k < n; k++)
        kft_check(same(got[k], exp[k]), __FILE__, line, what, "slot %lld: got %.17g, expected %.17g",
                  (long long)k, got[k], exp[k]);
}

static void expect_idx(int line, const char *what, const int64_t *got, const int64_t *exp, int64_t n)
{
    for (int64_t k = 0; k < n; k++)
        kft_check(got[k] == exp[k], __FILE__, line, what, "index slot %lld: got %lld, expected %lld",
                  (long long)k, (long long)got[k], (long long)exp[k]);
}

/* Runs a dense reduction (all rows, jr = {0, inner}) in float64. */
#define RUN(f, f2, red, axis, K)                                                                   \
    do {                                                                                           \
        for (int q_ = 0; q_ < 64; q_++)                                                            \
            out[q_] = GARB, idx[q_] = GARBI;                                                       \
        int64_t jr_[2] = {0, (axis) == 1 ? 4 : 2};                                                 \
        int st_ = reduce(f, f2, red, axis, K, KF_FLOAT64, jr_, 1, 0, (axis) == 1 ? 2 : 4, out, idx, \
                         &rr);                                                                     \
        KFT_CHECKF(st_ == KF_OK, "%s %s", red, f);                                                 \
    } while (0)

KFT_TEST(ref_reduce_sum_max_min)
{
    double out[64];
    int64_t idx[64];
    kfc_red rr;
    /* f = b - a: row 0 (3, -1, 3, 0.5), row 1 (2, -2, 2, -0.5) */
    RUN("b - a", NULL, "Sum", 1, 0);
    expect_rows(__LINE__, "Sum", out, VALS(5.5, 1.5));
    KFT_CHECK(out[2] == GARB); /* nothing beyond the rows */
    RUN("b - a", NULL, "Sum", 0, 0); /* axis 0: rows j, sum over i of b_j - a_i */
    expect_rows(__LINE__, "Sum axis 0", out, VALS(5, -3, 5, 0));
    RUN("b - a", NULL, "Max", 1, 0);
    expect_rows(__LINE__, "Max", out, VALS(3, 2));
    RUN("b - a", NULL, "Min", 1, 0);
    expect_rows(__LINE__, "Min", out, VALS(-1, -2));
    RUN("b - a", NULL, "ArgMax", 1, 0);
    expect_idx(__LINE__, "ArgMax (tie: first)", idx, (const int64_t[]){0, 0}, 2);
    RUN("b - a", NULL, "ArgMin", 1, 0);
    expect_idx(__LINE__, "ArgMin", idx, (const int64_t[]){1, 1}, 2);
    RUN("b - a", NULL, "Max_ArgMax", 0, 0); /* over i: b_j - 0 is the max, index 0 */
    expect_rows(__LINE__, "Max_ArgMax axis 0", out, VALS(3, -1, 3, 0.5));
    expect_idx(__LINE__, "Max_ArgMax axis 0", idx, (const int64_t[]){0, 0, 0, 0}, 4);
    RUN("b - a", NULL, "Min_ArgMin", 0, 0);
    expect_rows(__LINE__, "Min_ArgMin axis 0", out, VALS(2, -2, 2, -0.5));
    expect_idx(__LINE__, "Min_ArgMin axis 0", idx, (const int64_t[]){1, 1, 1, 1}, 4);
    /* vector formula: per component */
    RUN("Concat(b - a, -b)", NULL, "Min_ArgMin", 1, 0);
    expect_rows(__LINE__, "Min_ArgMin D=2", out, VALS(-1, -3, -2, -3));
    expect_idx(__LINE__, "Min_ArgMin D=2", idx, (const int64_t[]){1, 0, 1, 0}, 4);
}

KFT_TEST(ref_reduce_kmin)
{
    double out[64];
    int64_t idx[64];
    kfc_red rr;
    RUN("b - a", NULL, "KMin", 1, 3);
    expect_rows(__LINE__, "KMin K=3", out, VALS(-1, 0.5, 3, -2, -0.5, 2));
    RUN("b - a", NULL, "ArgKMin", 1, 3);
    expect_idx(__LINE__, "ArgKMin K=3", idx, (const int64_t[]){1, 3, 0, 1, 3, 0}, 6);
    RUN("b - a", NULL, "KMin_ArgKMin", 1, 5); /* K > N: +inf, -1 fill the rest */
    expect_rows(__LINE__, "KMin_ArgKMin K=5", out, VALS(-1, 0.5, 3, 3, INFINITY, -2, -0.5, 2, 2,
                                                        INFINITY));
    expect_idx(__LINE__, "KMin_ArgKMin K=5", idx, (const int64_t[]){1, 3, 0, 2, -1, 1, 3, 0, 2, -1},
               10);
    /* (K, D) row-major layout: slot k of component c at k*D + c */
    RUN("Concat(b - a, -b)", NULL, "KMin_ArgKMin", 1, 2);
    expect_rows(__LINE__, "KMin D=2", out, VALS(-1, -3, 0.5, -3, -2, -3, -0.5, -3));
    expect_idx(__LINE__, "KMin D=2", idx, (const int64_t[]){1, 0, 3, 2, 1, 0, 3, 2}, 8);
    RUN("b - a", NULL, "KMin", 0, 1); /* over i: the min of b_j - a_i is at a = 1 */
    expect_rows(__LINE__, "KMin axis 0", out, VALS(2, -2, 2, -0.5));
}

KFT_TEST(ref_reduce_logsumexp)
{
    double out[64];
    int64_t idx[64];
    kfc_red rr;
    double s0 = 0, s1 = 0, w0 = 0, w1 = 0;
    double m0 = 3, m1 = 2;
    for (int j = 0; j < 4; j++) {
        s0 += exp(RB[j] - 0), s1 += exp(RB[j] - 1);
        w0 += exp(RB[j] - 0) * RB[j], w1 += exp(RB[j] - 1) * RB[j];
    }
    RUN("b - a", NULL, "LogSumExp", 1, 0);
    expect_rows(__LINE__, "LogSumExp", out, VALS(log(s0), log(s1)));
    double g0 = 0, g1 = 0;
    for (int j = 0; j < 4; j++)
        g0 += exp(RB[j]) * (RB[j] * RB[j] + 1), g1 += exp(RB[j] - 1) * (RB[j] * RB[j] + 1);
    RUN("b - a", "Concat(b*b + IntCst(1), IntCst(1))", "LogSumExpWeight", 1, 0);
    expect_rows(__LINE__, "LogSumExpWeight", out, VALS(log(g0), log(s0), log(g1), log(s1)));
    RUN("b - a", "b", "SumSoftMaxWeight", 1, 0);
    expect_rows(__LINE__, "SumSoftMaxWeight", out, VALS(w0 / s0, w1 / s1));
    RUN("b - a", NULL, "Max_SumShiftExp", 1, 0);
    expect_rows(__LINE__, "Max_SumShiftExp", out, VALS(m0, s0 / exp(m0), m1, s1 / exp(m1)));
    RUN("b - a", "Concat(b, IntCst(2))", "Max_SumShiftExp", 1, 0);
    expect_rows(__LINE__, "Max_SumShiftExp with g", out,
                VALS(m0, w0 / exp(m0), 2 * s0 / exp(m0), m1, w1 / exp(m1), 2 * s1 / exp(m1)));
    KFT_CHECK(rr.valdim == 3);
}

KFT_TEST(ref_reduce_empty_and_ranges)
{
    double out[64];
    int64_t idx[64];
    kfc_red rr;
    static const struct {
        const char *red, *f2;
        int K;
        double v[4];
        int nv;
        int64_t ix;
        int ni;
    } E[] = {
        {"Sum", NULL, 0, {0}, 1, 0, 0},
        {"Max", NULL, 0, {-INFINITY}, 1, 0, 0},
        {"Min", NULL, 0, {INFINITY}, 1, 0, 0},
        {"ArgMax", NULL, 0, {0}, 0, -1, 1},
        {"ArgMin", NULL, 0, {0}, 0, -1, 1},
        {"Max_ArgMax", NULL, 0, {-INFINITY}, 1, -1, 1},
        {"Min_ArgMin", NULL, 0, {INFINITY}, 1, -1, 1},
        {"KMin", NULL, 2, {INFINITY, INFINITY}, 2, 0, 0},
        {"ArgKMin", NULL, 2, {0}, 0, -1, 2},
        {"KMin_ArgKMin", NULL, 2, {INFINITY, INFINITY}, 2, -1, 2},
        {"LogSumExp", NULL, 0, {-INFINITY}, 1, 0, 0},
        {"LogSumExpWeight", "b", 0, {-INFINITY}, 1, 0, 0},
        {"SumSoftMaxWeight", "b", 0, {NAN}, 1, 0, 0},
        {"Max_SumShiftExp", NULL, 0, {-INFINITY, 0}, 2, 0, 0},
    };
    KFT_CHECK(sizeof E / sizeof E[0] == KFC_RED_COUNT);
    for (size_t t = 0; t < sizeof E / sizeof E[0]; t++) {
        for (int q = 0; q < 64; q++)
            out[q] = GARB, idx[q] = GARBI;
        int64_t jr[4] = {2, 2, 4, 4}; /* two empty ranges */
        int st = reduce("b - a", E[t].f2, E[t].red, 1, E[t].K, KF_FLOAT64, jr, 2, 0, 2, out, idx, &rr);
        KFT_CHECKF(st == KF_OK, "%s", E[t].red);
        for (int r = 0; r < 2; r++) {
            expect_rows(__LINE__, E[t].red, out + r * E[t].nv, E[t].v, E[t].nv);
            for (int k = 0; k < E[t].ni; k++)
                KFT_CHECKF(idx[r * E[t].ni + k] == E[t].ix, "%s row %d slot %d: %lld", E[t].red, r,
                           k, (long long)idx[r * E[t].ni + k]);
        }
        KFT_CHECKF(out[2 * E[t].nv] == GARB, "%s wrote past the rows", E[t].red);
    }
    /* ranges visited in order: [2,4) then [0,1) -> the max 3 is first met at 2 */
    for (int q = 0; q < 64; q++)
        out[q] = GARB, idx[q] = GARBI;
    int64_t jr[4] = {2, 4, 0, 1};
    KFT_CHECK(reduce("b - a", NULL, "Max_ArgMax", 1, 0, KF_FLOAT64, jr, 2, 1, 2, out, idx, &rr) == 0);
    KFT_CHECK(out[0] == GARB && idx[0] == GARBI); /* row 0 outside [r0, r1) */
    KFT_CHECKF(out[1] == 2 && idx[1] == 2, "got %g at %lld", out[1], (long long)idx[1]);
    KFT_CHECK(reduce("b - a", NULL, "Sum", 1, 0, KF_FLOAT64, jr, 2, 0, 2, out, idx, &rr) == 0);
    KFT_CHECKF(out[0] == 6.5 && out[1] == 3.5, "%g %g", out[0], out[1]);
    KFT_CHECK(reduce("b - a", NULL, "KMin_ArgKMin", 1, 4, KF_FLOAT64, jr, 2, 0, 1, out, idx, &rr) == 0);
    expect_rows(__LINE__, "KMin ranges", out, VALS(0.5, 3, 3, INFINITY));
    expect_idx(__LINE__, "KMin ranges (equal values keep visiting order)", idx,
               (const int64_t[]){3, 2, 0, -1}, 4);
}

KFT_TEST(ref_reduce_float32_output)
{
    float out[8];
    int64_t idx[8], jr[2] = {0, 4};
    kfc_red rr;
    for (int q = 0; q < 8; q++)
        out[q] = 999;
    KFT_CHECK(reduce("b - a", NULL, "Sum", 1, 0, KF_FLOAT32, jr, 1, 0, 2, out, idx, &rr) == 0);
    KFT_CHECKF(out[0] == 5.5f && out[1] == 1.5f && out[2] == 999, "%g %g", out[0], out[1]);
    KFT_CHECK(reduce("b - a", NULL, "LogSumExp", 1, 0, KF_FLOAT32, jr, 1, 0, 1, out, idx, &rr) == 0);
    double s0 = exp(3) + exp(-1) + exp(3) + exp(0.5);
    KFT_CHECKF(out[0] == (float)log(s0), "%.9g", out[0]);
}
