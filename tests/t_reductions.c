/* t_reductions.c -- every reduction of compiler/reductions.def, JIT kernel
 * against the reference engine: both axes, both dtypes, empty, tiny, ragged
 * and 1000-long sizes, 1 to 3 threads, K below and above N, every float32 sum
 * scheme, formula2 for the weighted ones. */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "testutil.h"

/* the shared aliases and formulas (testutil.h) */
#define AL kft_red_al
#define NAL KFT_NRED_AL
#define F_SUM KFT_F_SUM
#define F_EXT KFT_F_EXT
#define F_KMIN KFT_F_KMIN
#define F_LSE KFT_F_LSE

static const int THREADS[3] = {1, 2, 3};

/* Empty and tiny sizes for every spec, then two of BIG by rotation
 * (ragged lengths: 13, 257, 300, and 1000 on either side). */
static const int64_t SMALL[][2] = {{0, 7}, {7, 0}, {1, 1}, {1, 7}, {7, 1}};
static const int64_t BIG[][2] = {{7, 13},   {13, 257}, {257, 13}, {1000, 7},
                                 {7, 1000}, {3, 1000}, {1000, 3}, {33, 300}};
#define NSMALL 5
#define NBIG 8

static int rot; /* rotation counter: which BIG sizes and K the next spec gets */

static void check(const char *red, const char *f, const char *f2, int axis, kf_dtype dtype, int K,
                  kf_sum_scheme scheme)
{
    int64_t sizes[NSMALL + 2][2];
    memcpy(sizes, SMALL, sizeof SMALL);
    for (int q = 0; q < 2; q++) {
        sizes[NSMALL + q][0] = BIG[(rot * 3 + q * 5) % NBIG][0];
        sizes[NSMALL + q][1] = BIG[(rot * 3 + q * 5) % NBIG][1];
    }
    rot++;
    /* one thread, and 2 or 3 by rotation: rows split over threads the same
     * way for every reduction, so the full product would only cost time */
    int threads[2] = {1, THREADS[1 + rot % 2]};
    kft_spec s = {f, AL, NAL, red, axis, dtype, K, f2, scheme};
    int bad = kft_check_spec(&s, (const int64_t(*)[2])sizes, NSMALL + 2, threads, 2, -1.5, 1.5, 0,
                             (uint64_t)rot * 31);
    KFT_CHECKF(bad == 0, "%s of %s%s%s axis %d %s K=%d scheme %d: %d", red, f, f2 ? " with " : "",
               f2 ? f2 : "", axis, dtype == KF_FLOAT32 ? "float32" : "float64", K, (int)scheme, bad);
}

/* Every combination of axis and dtype for one reduction. */
static void all_axes_dtypes(const char *red, const char *f, const char *f2, int K)
{
    for (int axis = 0; axis <= 1; axis++)
        for (int dt = 0; dt <= 1; dt++)
            check(red, f, f2, axis, dt ? KF_FLOAT64 : KF_FLOAT32, K, KF_SUM_AUTO);
}

KFT_TEST(reductions_sum_schemes)
{
    static const kf_sum_scheme S[] = {KF_SUM_AUTO, KF_SUM_BLOCK, KF_SUM_DIRECT, KF_SUM_F64,
                                      KF_SUM_KAHAN};
    for (int axis = 0; axis <= 1; axis++) {
        check("Sum", F_SUM, NULL, axis, KF_FLOAT64, 0, KF_SUM_AUTO);
        for (size_t k = 0; k < sizeof S / sizeof S[0]; k++)
            check("Sum", F_SUM, NULL, axis, KF_FLOAT32, 0, S[k]);
    }
}

KFT_TEST(reductions_max_min)
{
    static const char *const R[] = {"Max", "Min", "ArgMax", "ArgMin", "Max_ArgMax", "Min_ArgMin"};
    for (int k = 0; k < 6; k++)
        all_axes_dtypes(R[k], F_EXT, NULL, 0);
}

KFT_TEST(reductions_kmin)
{
    /* K rotates through 1, 3, 5 and 9 (above N for the small sizes) */
    static const char *const R[] = {"KMin", "ArgKMin", "KMin_ArgKMin"};
    static const int K[] = {1, 3, 5, 9};
    int n = 0;
    for (int k = 0; k < 3; k++)
        for (int axis = 0; axis <= 1; axis++)
            for (int dt = 0; dt <= 1; dt++, n++)
                check(R[k], F_KMIN, NULL, axis, dt ? KF_FLOAT64 : KF_FLOAT32, K[n % 4], KF_SUM_AUTO);
}

KFT_TEST(reductions_logsumexp_family)
{
    all_axes_dtypes("LogSumExp", F_LSE, NULL, 0);
    /* log needs positive weights */
    all_axes_dtypes("LogSumExpWeight", F_LSE, "Concat(b*b + IntCst(1), Exp(y*a))", 0);
    all_axes_dtypes("SumSoftMaxWeight", F_LSE, "y*a + b", 0);
    all_axes_dtypes("Max_SumShiftExp", F_LSE, NULL, 0);
    all_axes_dtypes("Max_SumShiftExp", F_LSE, "Concat(b, y)", 0);
}

/* TensorDot, Kron, BSpline and KeOps' shorthands in the other families. */
KFT_TEST(reductions_tensor_ops)
{
    all_axes_dtypes("Max_ArgMax",
                    "TensorDot(TensorProd(x, y), y, [3,3], [3], [1], [0], [0]) + Kron(x, b, [3], [1])", NULL, 0);
    check("KMin", "BSpline(Concat(Concat(Concat(b - IntCst(2), b), b + IntCst(1)), b + IntCst(2)), a, 1) + "
                  "SqNormDiag(y, x)", NULL, 1, KF_FLOAT32, 3, KF_SUM_AUTO);
    check("ArgKMin", "BSpline(Concat(Concat(Concat(b - IntCst(2), b), b + IntCst(1)), b + IntCst(2)), a, 2)",
          NULL, 0, KF_FLOAT64, 3, KF_SUM_AUTO);
    all_axes_dtypes("LogSumExp", "SymSqNorm(TensorProd(y, y), x) + SqNormIso(p, x - y)*IntInv(2)", NULL, 0);
}

/* SoftDTW_SqDist and its gradient in the other families. */
KFT_TEST(reductions_softdtw)
{
    all_axes_dtypes("Sum", "SoftDTW_SqDist(x, Concat(y, b), p*p + IntInv(2))*a", NULL, 0);
    all_axes_dtypes("LogSumExp", "-SoftDTW_SqDist(x, y, IntInv(2))", NULL, 0);
    check("KMin", "SoftDTW_SqDist(Concat(x, a), y, IntInv(3))", NULL, 1, KF_FLOAT32, 3, KF_SUM_AUTO);
    check("ArgKMin", "SoftDTW_SqDist(x, b, IntInv(3)) + SoftDTW_SqDist(a, y, IntInv(3))", NULL, 0, KF_FLOAT64, 3,
          KF_SUM_AUTO);
    all_axes_dtypes("Sum", "Grad(SoftDTW_SqDist(x, y, p*p + IntInv(3)), x, b)", NULL, 0);
}

/* One full 1000 x 1000 run: block sums cross many 256-blocks, rows split
 * over 3 threads. */
KFT_TEST(reductions_large)
{
    static const int64_t big[1][2] = {{1000, 1000}};
    static const int thr[1] = {3};
    kft_spec s = {F_SUM, AL, NAL, "Sum", 0, KF_FLOAT32, 0, NULL, KF_SUM_BLOCK};
    KFT_CHECK(kft_check_spec(&s, big, 1, thr, 1, -1, 1, 0, 99) == 0);
}
