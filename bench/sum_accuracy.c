/*
 * sum_accuracy.c -- accuracy and speed of the float32 Sum schemes (block,
 * direct, f64, kahan) on the Gaussian kernel sum
 *     a_i = sum_j exp(-|x_i - y_j|^2 / 2) b_j
 * for N = 1e4, 1e5, 1e6 j-points and M = 64 rows, against a float64 kernel
 * run on the very same (float32-representable) inputs. The float64 kernel
 * accumulates in double, so its own error (~N * 1e-16) is negligible here;
 * it stands in for the reference engine, which is far too slow at N = 1e6
 * (the suite checks the float64 kernel against the reference engine).
 *
 *   build/bench/sum_accuracy [threads]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kforge.h"

#define M 64

static const char *const ALIASES[] = {"x=Vi(0,3)", "y=Vj(1,3)", "b=Vj(2,1)"};
static const char *const FORMULA = "Exp(-SqDist(x,y)/IntCst(2))*b";

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* splitmix64: a fixed seed gives the same data on every machine */
static uint64_t rng = 12345;
static double uniform(void)
{
    uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (double)((z ^ (z >> 31)) >> 11) * 0x1p-53;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Compiles and runs the formula; returns the run time in seconds or -1. */
static double run(kf_ctx *ctx, kf_dtype dt, kf_sum_scheme scheme, int64_t N,
                  const void *const *args, void *out)
{
    kf_compile_opts o;
    kf_compile_opts_init(&o);
    o.sum_scheme = scheme;
    o.jit = KF_JIT_TCC;
    kf_kernel *k = kf_compile(ctx, FORMULA, ALIASES, 3, "Sum", 1, dt, &o);
    if (!k) {
        fprintf(stderr, "compile failed: %s\n", kf_errmsg(ctx));
        return -1;
    }
    double best = INFINITY;
    for (int rep = 0; rep < 3; rep++) { /* best of 3: the first run warms the pool */
        double t0 = now();
        int st = kf_run(k, M, N, args, 3, out, NULL);
        double t = now() - t0;
        if (st != KF_OK) {
            fprintf(stderr, "run failed: %s\n", kf_errmsg(ctx));
            kf_kernel_free(k);
            return -1;
        }
        if (t < best)
            best = t;
    }
    kf_kernel_free(k);
    return best;
}

int main(int argc, char **argv)
{
    kf_options opt;
    kf_options_init(&opt);
    opt.threads = argc > 1 ? atoi(argv[1]) : 0;
    kf_ctx *ctx = kf_new(&opt);
    if (!ctx)
        return 1;
    static const kf_sum_scheme S[] = {KF_SUM_BLOCK, KF_SUM_DIRECT, KF_SUM_F64, KF_SUM_KAHAN};
    printf("Gaussian kernel sum %s, M = %d rows, %d threads, float32 schemes vs float64\n",
           FORMULA, M, kf_threads(ctx));
    printf("%9s  %-7s %14s %14s %11s\n", "N", "scheme", "max rel err", "median rel err", "time (ms)");
    static const int64_t Ns[] = {10000, 100000, 1000000};
    for (int n = 0; n < 3; n++) {
        int64_t N = Ns[n];
        float *x = malloc(M * 3 * sizeof *x), *y = malloc((size_t)N * 3 * sizeof *y),
              *b = malloc((size_t)N * sizeof *b);
        double *xd = malloc(M * 3 * sizeof *xd), *yd = malloc((size_t)N * 3 * sizeof *yd),
               *bd = malloc((size_t)N * sizeof *bd);
        float out32[M];
        double out64[M], rel[M];
        if (!x || !y || !b || !xd || !yd || !bd)
            return 1;
        for (int64_t q = 0; q < M * 3; q++)
            x[q] = (float)uniform(), xd[q] = x[q];
        for (int64_t q = 0; q < N * 3; q++)
            y[q] = (float)uniform(), yd[q] = y[q];
        for (int64_t q = 0; q < N; q++)
            b[q] = (float)uniform(), bd[q] = b[q];
        const void *a32[3] = {x, y, b}, *a64[3] = {xd, yd, bd};
        double t64 = run(ctx, KF_FLOAT64, KF_SUM_AUTO, N, a64, out64);
        if (t64 < 0)
            return 1;
        for (size_t s = 0; s < sizeof S / sizeof S[0]; s++) {
            double t = run(ctx, KF_FLOAT32, S[s], N, a32, out32);
            if (t < 0)
                return 1;
            double mx = 0;
            for (int i = 0; i < M; i++) {
                rel[i] = fabs((double)out32[i] - out64[i]) / fabs(out64[i]);
                if (rel[i] > mx)
                    mx = rel[i];
            }
            qsort(rel, M, sizeof rel[0], cmp_double);
            printf("%9lld  %-7s %14.3e %14.3e %11.2f\n", (long long)N, kf_sum_scheme_name(S[s]), mx,
                   0.5 * (rel[M / 2 - 1] + rel[M / 2]), 1e3 * t);
        }
        printf("%9lld  %-7s %14s %14s %11.2f\n", (long long)N, "(f64)", "-", "-", 1e3 * t64);
        free(x), free(y), free(b), free(xd), free(yd), free(bd);
    }
    kf_free(ctx);
    return 0;
}
