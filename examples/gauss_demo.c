/*
 * gauss_demo.c -- `make demo`: the tutorial's Gaussian kernel sum
 *     a_i = sum_j exp(-|x_i - y_j|^2 / (2 sigma^2)) b_j,   sigma = 0.05,
 * on its two clouds (a noisy spiral x, a Gaussian blob y; M = N = 10000,
 * float32, fixed seed) through the C API with the default engine. Prints the
 * compile and run times, ns per pair, and the largest error of 100 rows
 * against the double-precision reference engine. `gauss_demo SIZE` uses
 * M = N = SIZE instead (100 to 1000000).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kforge.h"

enum { DEFAULT_SIZE = 10000, CHECK_ROWS = 100 };
static const double sigma = 0.05;

/* splitmix64: a small, good, reproducible generator (no global state). */
static double uniform(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return ((double)(z >> 11) + 0.5) / 9007199254740992.0; /* in (0, 1) */
}

static double gauss(uint64_t *s) /* Box-Muller */
{
    return sqrt(-2 * log(uniform(s))) * cos(2 * M_PI * uniform(s));
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static kf_kernel *compile(kf_ctx *ctx, kf_jit jit)
{
    /* x and y are given divided by sigma, as in the tutorial (x_, y_ = x / sigma, y / sigma). */
    const char *aliases[] = {"x=Vi(0,2)", "y=Vj(1,2)", "b=Vj(2,1)"};
    kf_compile_opts o;
    kf_compile_opts_init(&o);
    o.jit = jit;
    kf_kernel *k = kf_compile(ctx, "Exp(-SqDist(x,y)/IntCst(2))*b", aliases, 3, "Sum", 1,
                              KF_FLOAT32, &o);
    if (!k)
        fprintf(stderr, "gauss_demo: %s\n", kf_errmsg(ctx));
    return k;
}

int main(int argc, char **argv)
{
    long size = DEFAULT_SIZE;
    if (argc > 1) {
        char *end;
        size = strtol(argv[1], &end, 10);
        if (argc > 2 || *end || size < CHECK_ROWS || size > 1000000) {
            fprintf(stderr, "usage: gauss_demo [SIZE]   (M = N = SIZE, 100..1000000; default %d)\n",
                    DEFAULT_SIZE);
            return 2;
        }
    }
    const int M = (int)size, N = (int)size;
    float *x = malloc(sizeof(float) * 2 * M), *y = malloc(sizeof(float) * 2 * N);
    float *b = malloc(sizeof(float) * N), *a = malloc(sizeof(float) * M);
    float xs[2 * CHECK_ROWS], ref[CHECK_ROWS];
    kf_ctx *ctx = kf_new(NULL);
    kf_kernel *k = NULL, *kref = NULL;
    int rc = 1;
    if (!x || !y || !b || !a || !ctx)
        goto done;

    uint64_t seed = 20240611;
    for (int i = 0; i < M; i++) { /* the noisy spiral */
        double t = 2 * M_PI * i / M;
        x[2 * i] = (float)((0.4 + 0.4 * (t / 7) * cos(t) + 0.01 * gauss(&seed)) / sigma);
        x[2 * i + 1] = (float)((0.5 + 0.3 * sin(t) + 0.01 * gauss(&seed)) / sigma);
    }
    for (int j = 0; j < N; j++) { /* the blob, and a random signal on it */
        y[2 * j] = (float)((gauss(&seed) / 10 + 0.6) / sigma);
        y[2 * j + 1] = (float)((gauss(&seed) / 10 + 0.6) / sigma);
        b[j] = (float)gauss(&seed);
    }

    double t0 = now();
    if (!(k = compile(ctx, KF_JIT_AUTO)))
        goto done;
    double t_compile = now() - t0;
    const void *args[] = {x, y, b};
    t0 = now();
    if (kf_run(k, M, N, args, 3, a, NULL) != KF_OK) {
        fprintf(stderr, "gauss_demo: %s\n", kf_errmsg(ctx));
        goto done;
    }
    double t_run = now() - t0;

    /* 100 rows spread over the spiral, through the reference engine. */
    for (int r = 0; r < CHECK_ROWS; r++) {
        xs[2 * r] = x[2 * (r * (M / CHECK_ROWS))];
        xs[2 * r + 1] = x[2 * (r * (M / CHECK_ROWS)) + 1];
    }
    const void *rargs[] = {xs, y, b};
    if (!(kref = compile(ctx, KF_JIT_REFERENCE)) ||
        kf_run(kref, CHECK_ROWS, N, rargs, 3, ref, NULL) != KF_OK) {
        if (kref)
            fprintf(stderr, "gauss_demo: %s\n", kf_errmsg(ctx));
        goto done;
    }
    double maxref = 0, maxerr = 0;
    for (int r = 0; r < CHECK_ROWS; r++) {
        maxref = fmax(maxref, fabs(ref[r]));
        maxerr = fmax(maxerr, fabs((double)a[r * (M / CHECK_ROWS)] - ref[r]));
    }

    printf("kforge %s gauss_demo: a_i = sum_j exp(-|x_i - y_j|^2 / 2 sigma^2) b_j, sigma = %g\n",
           kf_version(), sigma);
    printf("  clouds:   M = %d (noisy spiral), N = %d (Gaussian blob), float32\n", M, N);
    printf("  engine:   %s, %d thread%s\n", kf_kernel_engine(k), kf_threads(ctx),
           kf_threads(ctx) == 1 ? "" : "s");
    printf("  compile:  %.3f ms\n", 1e3 * t_compile);
    printf("  run:      %.3f s for %.3g pairs, %.3f ns/pair\n", t_run, (double)M * N,
           1e9 * t_run / ((double)M * N));
    printf("  a[0..4]:  %.6g %.6g %.6g %.6g %.6g\n", a[0], a[1], a[2], a[3], a[4]);
    printf("  check:    max |a_i - ref_i| / max |ref_i| = %.3g over %d rows (reference engine,\n"
           "            double precision)\n",
           maxref > 0 ? maxerr / maxref : maxerr, CHECK_ROWS);
    rc = maxref > 0 && maxerr / maxref < 1e-4 ? 0 : 1;
    if (rc)
        fprintf(stderr, "gauss_demo: the error is larger than expected (1e-4)\n");
done:
    if (rc && !ctx)
        fprintf(stderr, "gauss_demo: out of memory or threads\n");
    kf_kernel_free(k);
    kf_kernel_free(kref);
    kf_free(ctx);
    free(x);
    free(y);
    free(b);
    free(a);
    return rc;
}
