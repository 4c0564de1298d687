/* t_ops.c -- every op of compiler/ops.def, JIT kernel (KF_JIT_TCC) against the
 * reference engine through the public API, in a Sum reduction over formulas
 * mixing i-, j-variables and parameters, with dim-1 broadcasting. */
#include <stdio.h>
#include <string.h>

#include "compiler/ir.h"
#include "harness.h"
#include "kernels/abi.h"
#include "testutil.h"

/* Inputs: R general, P positive (Log, Sqrt, Powf...), U inside (-1, 1)
 * (Asin, Acos), G on a 1/16 grid: exact in float32 so that discontinuous ops
 * (Sign, Floor, comparisons, ties of ArgMax) see the same values in both
 * engines. */
enum { R, P, U, G };
static const double LO[] = {-2, 0.1, -0.9, -2}, HI[] = {2, 2, 0.9, 2};

typedef struct opcase {
    const char *formula; /* $D: the dim D, $L: D-1, $P: D+1 */
    int dom;
} opcase;

/* The aliases of every case; $DD is D*D. */
static const char *const ALIAS_T[] = {"x=Vi(0,$D)", "y=Vj(1,$D)", "p=Pm(2,1)",   "a=Vi(3,1)",
                                      "b=Vj(4,1)",  "A=Vi(5,$DD)", "w=Vj(6,$D)", "q=Pm(7,$D)"};
#define NALIAS 8

/* Copies t into buf with $DD, $D, $L, $P replaced. */
static void expand(const char *t, int D, char *buf, size_t n)
{
    size_t o = 0;
    while (*t && o + 16 < n) {
        if (t[0] == '$' && t[1] == 'D' && t[2] == 'D')
            o += (size_t)snprintf(buf + o, n - o, "%d", D * D), t += 3;
        else if (t[0] == '$' && t[1] == 'D')
            o += (size_t)snprintf(buf + o, n - o, "%d", D), t += 2;
        else if (t[0] == '$' && t[1] == 'L')
            o += (size_t)snprintf(buf + o, n - o, "%d", D - 1), t += 2;
        else if (t[0] == '$' && t[1] == 'P')
            o += (size_t)snprintf(buf + o, n - o, "%d", D + 1), t += 2;
        else
            buf[o++] = *t++;
    }
    buf[o] = 0;
}

/* Sizes (M, N) the configurations rotate through: 1, 7, 1000 and ragged
 * ones, all non-empty so that every configuration checks something; the
 * empty ones (M or N = 0) are added to the second configuration. */
static const int64_t SIZES[][2] = {{7, 13}, {13, 7},  {1, 7},   {7, 1},   {1000, 3},
                                   {3, 1000}, {257, 9}, {1, 1}, {31, 33}, {9, 257}};
#define NSIZES ((int)(sizeof SIZES / sizeof SIZES[0]))
static const int64_t EMPTY[][2] = {{0, 5}, {5, 0}};

/* Runs one case in three configurations: (D 1, float32, axis 1), (D 3,
 * float64, axis 0, plus an empty size), (D 7, alternating dtype and axis),
 * each on a size and a thread count picked by rotation. Returns the number
 * of failures. */
static int run_case(const opcase *c, int ci)
{
    static const int dims[3] = {1, 3, 7};
    int failures = 0;
    for (int v = 0; v < 3; v++) {
        int D = dims[v];
        char f[512], albuf[NALIAS][32];
        const char *al[NALIAS];
        expand(c->formula, D, f, sizeof f);
        for (int k = 0; k < NALIAS; k++)
            expand(ALIAS_T[k], D, albuf[k], sizeof albuf[k]), al[k] = albuf[k];
        kft_spec s = {f, al, NALIAS, "Sum", 1, KF_FLOAT32, 0, NULL, KF_SUM_AUTO};
        if (v == 1)
            s.axis = 0, s.dtype = KF_FLOAT64;
        if (v == 2)
            s.axis = (ci / 2) % 2, s.dtype = ci % 2 ? KF_FLOAT32 : KF_FLOAT64;
        int64_t sizes[2][2] = {{SIZES[(ci + 3 * v) % NSIZES][0], SIZES[(ci + 3 * v) % NSIZES][1]},
                               {EMPTY[ci % 2][0], EMPTY[ci % 2][1]}};
        int threads = 1 + (ci + v) % 3;
        int bad = kft_check_spec(&s, (const int64_t(*)[2])sizes, v == 1 ? 2 : 1, &threads, 1,
                                 LO[c->dom], HI[c->dom], c->dom == G,
                                 1000 + (uint64_t)ci * 7 + (uint64_t)v);
        if (!KFT_CHECKF(bad == 0, "%s (D=%d): %d mismatches", f, D, bad))
            failures++;
    }
    return failures;
}

static void run_table(const opcase *t, int n, int base)
{
    for (int k = 0; k < n; k++)
        run_case(&t[k], base + k);
}
#define RUN_TABLE(t, base) run_table(t, (int)(sizeof t / sizeof t[0]), base)

static const opcase T_ops_leaves_and_unary[] = {
    {"IntCst(3)*x + RatCst(1,3)*y - Zero($D) + 0.25", R},
    {"Vi(0,$D)*Var(4,1,1) + p", R},
    {"Minus(x*b) + p", R},
    {"-x + y", R},
    {"Exp(x - y*p)", R},
    {"Log(x*b + p)", P},
    {"Sin(x + y*p)", R},
    {"Cos(x*b - y)", R},
    {"Asin(x*b*p)", U},
    {"Acos(x*y*p)", U},
    {"Atan(x*b + y)", R},
    {"Sqrt(x*b + p)", P},
    {"Rsqrt(x + y*p)", P},
    {"Inv(x + y + p)", P},
    {"Abs(x - y*p)", R},
    {"Sign(x - y)*b + p", G},
    {"Step(x - y)*a + b", G},
    {"ReLU(x - y*p)", R},
    {"Floor(x*y) + p", G},
    {"Square(x - y)*p", R},
    {"XLogX(x*b + p)", P},
    {"SinXDivX(x - y*p)", R},
};

KFT_TEST(ops_leaves_and_unary)
{
    RUN_TABLE(T_ops_leaves_and_unary, 0);
}

static const opcase T_ops_integer_args[] = {
    {"Pow(x*b + p, 3)", R},
    {"Pow(x + y, -2)*p", P},
    {"(x - y)**2 + x**3*b", R},
    {"Round(x*y, 1) + p", G},
    {"Round(x - b, 0)*p", G},
    {"ClampInt(x*b + p, -1, 1)", R},
};

KFT_TEST(ops_integer_args)
{
    RUN_TABLE(T_ops_integer_args, 100);
}

static const opcase T_ops_binary_ternary[] = {
    {"x*b + y/p - a", P},
    {"Add(x, b) - Subtract(y, p)*Mult(a, x)", R},
    {"Divide(x, y + IntCst(3))", R},
    {"Atan2(x*p, y + b)", R},
    {"Powf(x*b, y*p)", P},
    {"Equal(x, y)*a + NotEqual(x*b, y)", G},
    {"LessThan(x, y*b) + LessOrEqual(x, y)*p", G},
    {"(x < y)*a + (x >= y*p) + (x > b) - (x <= a)", G},
    {"IfElse(x - y, a*p, b)", G},
    {"Clamp(x*b, y - IntCst(1), y + p)", R},
    {"Mod(x + y, IntCst(2), p)", G},
};

KFT_TEST(ops_binary_ternary)
{
    RUN_TABLE(T_ops_binary_ternary, 200);
}

static const opcase T_ops_vector_to_scalar[] = {
    {"Sum(x*y)*p + b", R},
    {"Max(x - y*b)", R},
    {"Min(x*b + y)", R},
    {"ArgMax(x - y) + b", G},
    {"ArgMin(x*b - y)*p", G},
    {"(x|y)*p + Scalprod(x, b)", R},
    {"SqNorm2(x - y)*p", R},
    {"Norm2(x*b + y)", R},
    {"SqDist(x, y) + SqDist(x, b)*p", R},
    {"WeightedSqNorm(p, x - y)", R},
    {"WeightedSqNorm(w, x*a)", R},
    {"WeightedSqNorm(A, x - y)", R},
    {"WeightedSqDist(b, x, y)", R},
    {"WeightedSqDist(A, x, y)*p", R},
    {"Exp(-SqDist(x,y)/IntCst(2))*b", R},
};

KFT_TEST(ops_vector_to_scalar)
{
    RUN_TABLE(T_ops_vector_to_scalar, 300);
}

static const opcase T_ops_shape_and_tensor[] = {
    {"Normalize(x - y*p)", R},
    {"Elem(x, $L)*b + Elem(y, 0)", R},
    {"ElemT(a*b + p, $D, $L)", R},
    {"Extract(x - y, $L, 1)*p", R},
    {"Extract(Concat(x, y), 1, $D)", R},
    {"ExtractT(a*b, $L, $D) + y", R},
    {"ExtractT(x*b, 1, $P)", R},
    {"Concat(x*b, y + p)", R},
    {"OneHot(a - b, $D)*p", G},
    {"SumT(a*b + p, $D) + x", R},
    {"MatVecMult(A, y) + x*p", R},
    {"VecMatMult(y, A)*b", R},
    {"TensorProd(x, y*p)", R},
    {"TensorProd(q, w)*b + A*p", R},
    {"TensorDot(A, y, [$D,$D], [$D], [1], [0]) + x*p", R},
    {"TensorDot(A, A*b, [$D,$D], [$D,$D], [0], [1], [1,0])", R},
    {"TensorDot(x, y*p, [$D], [$D], [], []) + A", R},
    {"TensorDot(TensorProd(x, A), w, [$D,$D,$D], [$D], [2], [0], [1,0])*b", R},
    {"Kron(A, TensorProd(q, w)*b, [$D,$D], [$D,$D])", R},
    {"SqNormIso(p, x - y) + SqNormDiag(w, x) + SymSqNorm(A, y) + IntInv(4)", R},
    /* knots ascending, one repeated; and knots that move with b */
    {"BSpline(Concat(Concat(Concat(Concat(Concat(IntCst(-2), IntCst(-1)), Zero(1)), Zero(1)), IntCst(1)), "
     "IntCst(2)), a*b, 3)*p + BSpline(Concat(Concat(b - IntCst(2), b), b + IntCst(1)), a, 1)", G},
    /* soft-DTW: sequences of lengths D, D+1, 1; gamma a constant and one that moves with p */
    {"SoftDTW_SqDist(x, y, p*p + IntInv(4))*b + SoftDTW_SqDist(Concat(x, a), y*b, IntInv(2)) + "
     "SoftDTW_SqDist(a, y, IntInv(3))", R},
    {"GradSoftDTW_SqDist(x, Concat(y, b), IntInv(2))*a", R},
    {"Grad(SoftDTW_SqDist(x, y, IntInv(3) + p*p), x, b) - Grad(SoftDTW_SqDist(x*a, y, IntInv(2)), y, a)", R},
};

KFT_TEST(ops_shape_and_tensor)
{
    RUN_TABLE(T_ops_shape_and_tensor, 400);
}

/* Complex vectors (re, im interleaved) need even dims: Concat(x, y) has dim
 * 2D, Concat(a, b) is one complex number (dim 2, broadcast). */
static const opcase T_ops_complex[] = {
    {"ComplexMult(Concat(x, y), Concat(y*p, x - b))", R},
    {"ComplexMult(Concat(a, b), Concat(x, y)) + ComplexMult(Concat(x, y), Concat(b, p))", R},
    {"ComplexAdd(Concat(x, y), Concat(a, p)) - ComplexSubtract(Concat(b, a), Concat(y, x))", R},
    {"ComplexDivide(Concat(x, y), Concat(y + p, x*b))", P},
    {"ComplexDivide(Concat(a, b), Concat(x, y)) + ComplexDivide(Concat(x, y), Concat(b, p))", P},
    {"ComplexAdd(Conj(Concat(x, y*p)), Conj(Concat(a, b)))", R},
    {"ComplexSubtract(ComplexExp(Concat(x, y - p)), ComplexExp(Concat(a, b)))", R},
    {"ComplexExp1j(x - y*p)", R},
    {"Real2Complex(x*b) + Imag2Complex(y - p)", R},
    {"ComplexReal(Concat(x, y)) + ComplexImag(Concat(y*p, x))*b", R},
    {"ComplexSquareAbs(Concat(x, y)) + ComplexAbs(Concat(y*p, x))", R},
    {"ComplexAngle(Concat(x - y, y*p)) + ComplexAngle(Concat(a, b))", R},
    {"ComplexScal(Concat(a, b), Concat(x, y)) + ComplexScal(Concat(y, x), Concat(p, a))", R},
    {"ComplexRealScal(b, Concat(x, y)) + ComplexRealScal(Concat(y, x), p)", R},
    {"ComplexSum(Concat(x, y*p))*b", R},
    {"ComplexSumT(Concat(a, b*p), 6) + ComplexSumT(ComplexSum(Concat(x, y)), 6)", R},
};

KFT_TEST(ops_complex)
{
    RUN_TABLE(T_ops_complex, 500);
}

/* The derivative operators: their expansions (compiler/autodiff.c) are
 * plain formulas, so this runs them on every tier like any other. */
static const opcase T_ops_autodiff[] = {
    {"Grad(Exp(-SqDist(x,y)*p)*b, x, a)", R},
    {"Grad(Sin(x*y)*p, y, x) + Grad_WithSavedForward(SqNorm2(x-y), y, a, b)", R},
    {"Diff(Exp(-SqDist(x,y))*x, x, w)", R},
    {"GradMatrix(Sin(x)*b, x)", R},
    {"Laplacian(Exp(-SqDist(x,y)*p), x) + Divergence(x*Norm2(x-y), x)", R},
    {"Grad(ClampInt(x*b, -1, 1), x, y) + DiffClampInt(x*b, 0, 1)", G},
    {"Grad(Grad(SqNorm2(x-y)*Exp(-p*SqDist(x,y)), x, a), x, w)", R},
};

KFT_TEST(ops_autodiff)
{
    RUN_TABLE(T_ops_autodiff, 600);
}

/* Large runs (the reference is slow: keep 1000 x 1000 to one here). */
KFT_TEST(ops_large)
{
    static const char *const al[] = {"x=Vi(0,3)", "y=Vj(1,3)", "b=Vj(2,1)"};
    static const int64_t big[1][2] = {{1000, 1000}};
    static const int thr[2] = {2, 3};
    kft_spec s = {"Exp(-SqDist(x,y)/IntCst(2))*b", al, 3, "Sum", 1, KF_FLOAT32, 0, NULL,
                  KF_SUM_AUTO};
    KFT_CHECK(kft_check_spec(&s, big, 1, thr, 2, -1, 1, 0, 7) == 0);
    static const int64_t tall[1][2] = {{257, 1000}};
    s.formula = "Cos(x - y)*b + Sqrt(SqNorm2(x))";
    s.dtype = KF_FLOAT64;
    s.axis = 0;
    KFT_CHECK(kft_check_spec(&s, tall, 1, thr, 1, -1, 1, 0, 8) == 0);
}

/* The case lists above are kept by hand: every op of ops.def must appear in
 * one of them by name (Num as a literal), so a new op without a case fails here. */
static int names_op(const char *f, const char *name)
{
    size_t n = strlen(name);
    for (const char *at = strstr(f, name); at; at = strstr(at + 1, name)) {
        int before = at > f && (at[-1] == '_' || (at[-1] >= 'A' && at[-1] <= 'Z') ||
                                (at[-1] >= 'a' && at[-1] <= 'z') || (at[-1] >= '0' && at[-1] <= '9'));
        if (!before && at[n] == '(')
            return 1;
    }
    return 0;
}

KFT_TEST(ops_cases_cover_ops_def)
{
    static const struct {
        const opcase *t;
        size_t n;
    } lists[] = {
#define L(t) {t, sizeof t / sizeof t[0]}
        L(T_ops_leaves_and_unary), L(T_ops_integer_args), L(T_ops_binary_ternary), L(T_ops_vector_to_scalar),
        L(T_ops_shape_and_tensor), L(T_ops_complex), L(T_ops_autodiff),
#undef L
    };
    for (int op = 0; op < KFC_OP_COUNT; op++) {
        if (op == KFC_OP_NUM)
            continue; /* literals: "+ 0.25" in the first case */
        int found = 0;
        for (size_t l = 0; !found && l < sizeof lists / sizeof lists[0]; l++)
            for (size_t k = 0; !found && k < lists[l].n; k++)
                found = names_op(lists[l].t[k].formula, kfc_op_info[op].name);
        KFT_CHECKF(found, "tests/t_ops.c has no case naming %s (ops.def)", kfc_op_info[op].name);
    }
}

/* ops.def's MATH column is self-consistent: PROTO numbers 1..n once each, every
 * template of a MATH op calls its KF_ macro, every function bound for libtcc
 * in both precisions and named for CUDA. */
KFT_TEST(ops_def_math_column)
{
    int n = 0, rank[KFC_OP_COUNT + 1] = {0};
    for (int op = 0; op < KFC_OP_COUNT; op++) {
        const kfc_opinfo *oi = &kfc_op_info[op];
        if (!oi->libm) {
            KFT_CHECKF(oi->libm_proto == 0 && !oi->libm_opt && !oi->libm_cuda, "%s: MATH fields without LIBM",
                       oi->name);
            continue;
        }
        n++;
        KFT_CHECKF(oi->libm_proto >= 1 && oi->libm_proto <= KFC_OP_COUNT, "%s: PROTO out of range", oi->name);
        if (oi->libm_proto >= 1 && oi->libm_proto <= KFC_OP_COUNT)
            rank[oi->libm_proto]++;
        KFT_CHECKF(oi->libm_cuda != NULL, "%s: no CUDA function", oi->name);
        KFT_CHECKF(oi->nargs == 1 || oi->nargs == 2, "%s: libm functions take 1 or 2 arguments", oi->name);
        char mac[40];
        size_t k = 0;
        mac[0] = 'K', mac[1] = 'F', mac[2] = '_';
        for (; oi->libm[k] && k + 5 < sizeof mac; k++)
            mac[3 + k] = (char)(oi->libm[k] >= 'a' && oi->libm[k] <= 'z' ? oi->libm[k] - 'a' + 'A' : oi->libm[k]);
        mac[3 + k] = '(', mac[4 + k] = 0;
        KFT_CHECKF(!oi->cexpr || strstr(oi->cexpr, mac), "%s: CEXPR does not call %s)", oi->name, mac);
        int bound = 0;
        for (int q = 0; q < kfk_nlibm_syms; q++) {
            const char *s = kfk_libm_syms[q].name;
            size_t ls = strlen(oi->libm);
            if (strncmp(s, oi->libm, ls) == 0 && (s[ls] == 0 || (s[ls] == 'f' && s[ls + 1] == 0)))
                bound++;
        }
        KFT_CHECKF(bound == 2, "%s: %s bound %d times for libtcc (want double and float)", oi->name, oi->libm,
                   bound);
    }
    for (int r = 1; r <= n; r++)
        KFT_CHECKF(rank[r] == 1, "ops.def: PROTO %d used %d times (want each of 1..%d once)", r, rank[r], n);
    KFT_CHECK(kfk_nlibm_syms == 2 * n);
}
