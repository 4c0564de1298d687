/*
 * testutil.h -- shared helpers of the property tests: seeded random data,
 * "compile this formula for engine E and run it" over the public API, and
 * comparison of a kernel against the reference engine with per-dtype
 * tolerances.
 *
 * TOLERANCES (why these numbers). Both engines read the same float32/float64
 * inputs, so differences come only from arithmetic:
 *  - float64: the kernel computes in double like the reference; only the
 *    order of operations and libm differ. 1e-10 relative to a scale is far
 *    above that (~1e-16 * depth) and far below any real bug.
 *  - float32: the formula is evaluated in float (relative error a few ulps,
 *    ~1e-7, times the condition of the formula) and accumulated in float:
 *    the worst case of a direct float sum of N terms is N*eps*sum|terms|,
 *    ~6e-5 at N = 1000, and block/Kahan/f64 schemes are far better. 1e-4
 *    relative to sum|terms| covers every scheme at the sizes tested here
 *    while a wrong term (an index off by one, a missed range) moves the
 *    result by ~1/N of the sum, i.e. >= 1e-3.
 * The scale of an output is computed by the reference engine itself: for
 * Sum, Sum_j |f|; for Max/Min/KMin values, Max_j |f|; for the LogSumExp
 * family, 1 + Max_j |f| (log domain) times the matching |g| statistics.
 * Non-finite expected values (NaN, +-inf) must be matched exactly.
 * An index may differ from the reference's only where its value ties with
 * the reference's value within the same tolerance (float rounding can swap
 * near-ties); non-finite values require the same index.
 */
#ifndef KF_TESTS_TESTUTIL_H
#define KF_TESTS_TESTUTIL_H

#include <stdint.h>

#include "kforge.h"

/* ---- seeded random numbers (splitmix64: same sequence everywhere) ---- */
typedef struct kft_rng {
    uint64_t s;
} kft_rng;
void kft_rng_seed(kft_rng *g, uint64_t seed);
uint64_t kft_rng_next(kft_rng *g);
/* Uniform in [lo, hi). */
double kft_uniform(kft_rng *g, double lo, double hi);

/* Element k of an array of dtype, as double / set from a double. */
double kft_get(const void *a, kf_dtype dtype, int64_t k);
void kft_set(void *a, kf_dtype dtype, int64_t k, double v);

/* What to compile: a formula with aliases, a reduction and its options. */
typedef struct kft_spec {
    const char *formula;
    const char *const *aliases;
    int naliases;
    const char *reduction; /* non-NULL */
    int axis;
    kf_dtype dtype;
    int k;                 /* K of the KMin family, else 0 */
    const char *formula2;  /* or NULL */
    kf_sum_scheme scheme;  /* KF_SUM_AUTO by default */
} kft_spec;

/* Compiles s on ctx for engine jit (also checking that the engine actually
 * used is the one asked for, unless $KFORGE_JIT overrides it). Prints the
 * status and message and returns NULL on failure. */
kf_kernel *kft_compile(kf_ctx *ctx, const kft_spec *s, kf_jit jit);

/* Input arrays for every variable a kernel uses, sized for up to M i-rows
 * and N j-rows, uniform in [lo, hi); with grid != 0 the values are
 * multiples of 1/16 so that sums, differences and products of two or three
 * of them are exact in float32 too (ties and discontinuous ops such as
 * Sign, Floor, comparisons then agree exactly between the engines). */
typedef struct kft_data {
    int nargs;
    void *arr[256];
    int64_t dim[256];
    int cat[256];
} kft_data;
/* Returns 0, or -1 on failure (message printed). */
int kft_data_make(kft_data *d, const kf_kernel *k, int64_t M, int64_t N, double lo, double hi,
                  int grid, uint64_t seed);
void kft_data_free(kft_data *d);

/* Runs k on M x N; allocates *out and *idx (rows * dims, filled with garbage
 * first so that unwritten slots show). Returns kf_run's status. */
int kft_run(kf_kernel *k, int64_t M, int64_t N, const kft_data *d, void **out, int64_t **idx);

/* Compares `test` with the reference kernel `ref` (both compiled from s)
 * on one size: runs both, computes the scales with helper reference kernels
 * and checks every output slot as described above. Prints up to a few
 * mismatches (formula, reduction, axis, dtype, M, N, row, component, got,
 * expected). Returns the number of mismatching slots (0 = pass), or -1 when
 * something failed to compile or run. */
int kft_compare(const kft_spec *s, kf_kernel *test, kf_kernel *ref, int64_t M, int64_t N,
                const kft_data *d);

/* The usual whole check: for each thread count in threads[0..nthreads),
 * compiles s for KF_JIT_TCC and compares it with KF_JIT_REFERENCE on each
 * (M, N) of sizes[0..nsizes) with data from kft_data_make(lo, hi, grid).
 * Returns the total of kft_compare (0 = pass, -1 on a failure to compile). */
int kft_check_spec(const kft_spec *s, const int64_t (*sizes)[2], int nsizes, const int *threads,
                   int nthreads, double lo, double hi, int grid, uint64_t seed);

/* Relative tolerance of a dtype (see above). */
double kft_tol(kf_dtype dtype);

/* ---- the reduction suite shared by the reduction, block-sparse and CUDA tests ---- */
/* Aliases: x, y (dim 3), a parameter p, and dim-1 a (i) and b (j). */
#define KFT_NRED_AL 5
extern const char *const kft_red_al[KFT_NRED_AL];
/* Vector formulas (dim 4 and 2) so per-component reductions show; every
 * kind of variable appears. */
#define KFT_F_SUM "Exp(-SqDist(x,y)/IntCst(2))*Concat(b, y)"
#define KFT_F_EXT "Concat(x*b - y, SqDist(x,y)*p)"
#define KFT_F_KMIN "Concat(SqDist(x,y)*p, a - b)"
#define KFT_F_LSE "-SqDist(x,y)*p + a*b"
/* Every reduction once over those formulas (Max_SumShiftExp with and without formula2). */
typedef struct kft_red_case {
    const char *name, *f, *f2;
    int k;
} kft_red_case;
#define KFT_NRED 15
extern const kft_red_case kft_red_cases[KFT_NRED];

/* ---- random block-sparse patterns (the block-sparse and CUDA tests) ---- */
/* A pattern with its own storage: both triples, [0] the axis-1 one (over M
 * rows and N inner points), [1] the mirror. */
typedef struct kft_pat {
    int64_t nc[2], nred[2];
    int64_t *rng[2], *sl[2], *red[2];
} kft_pat;
void kft_pat_free(kft_pat *p);
kf_ranges kft_pat_view(const kft_pat *p);
/* Uniform in [0, n) (0 when n <= 0). */
int64_t kft_rnd(kft_rng *g, int64_t n);
/* Random valid triples for both axes: gaps (rows no cluster covers), empty
 * clusters, clusters of up to maxlen - 1 rows, empty lists, empty ranges,
 * ranges in any order, overlapping or repeated. 0, or -1 out of memory
 * (free with kft_pat_free either way). */
int kft_random_pat(kft_rng *g, int64_t M, int64_t N, int64_t maxlen, kft_pat *p);

/* Every complex operation (docs/formulas.md), as formulas over the aliases
 * x=Vi(0,3), y=Vj(1,3), p=Pm(2,1), a=Vi(3,1), b=Vj(4,1) that t_cc_props.c and
 * t_cuda_ptx.c share: Concat(x, y) is 3 complex numbers, Concat(a, b) one. */
#define KFT_COMPLEX_FORMULAS \
    "ComplexMult(Concat(x, y), Concat(y*p, x - b))", \
    "ComplexMult(Concat(a, b), Concat(x, y)) + ComplexMult(Concat(x, y), Concat(b, p))", \
    "ComplexAdd(Concat(x, y), Concat(a, p)) - ComplexSubtract(Concat(b, a), Concat(y, x))", \
    "ComplexAdd(Conj(Concat(x, y*p)), Conj(Concat(a, b)))", \
    "ComplexSubtract(ComplexExp(Concat(x, y - p)), ComplexExp(Concat(a, b)))", \
    "ComplexExp1j(x - y*p)", \
    "Real2Complex(x*b) + Imag2Complex(y - p)", \
    "ComplexReal(Concat(x, y)) + ComplexImag(Concat(y*p, x))*b", \
    "ComplexSquareAbs(Concat(x, y)) + ComplexAbs(Concat(y*p, x))", \
    "ComplexAngle(Concat(x - y, y*p)) + ComplexAngle(Concat(a, b))", \
    "ComplexScal(Concat(a, b), Concat(x, y)) + ComplexScal(Concat(y, x), Concat(p, a))", \
    "ComplexRealScal(b, Concat(x, y)) + ComplexRealScal(Concat(y, x), p)", \
    "ComplexSum(Concat(x, y*p))*b", \
    "ComplexSumT(Concat(a, b*p), 6) + ComplexSumT(ComplexSum(Concat(x, y)), 6)",

#endif
