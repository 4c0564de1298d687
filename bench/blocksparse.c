/*
 * blocksparse.c -- the block-sparse figures of `make bench` (bench/run.sh),
 * one Markdown table row per call:
 *
 *   blocksparse speed N SIGMA EPS THREADS DENSE_ROWS
 *       the tutorial's clouds (noisy spiral, Gaussian blob) at M = N, float32,
 *       the Gaussian of width SIGMA on the cc tier, planned with grid side EPS
 *       and cutoff 4 SIGMA: clusters, kept fraction, ns per computed pair of the
 *       block-sparse run against ns per pair of the dense run (timed on the
 *       first DENSE_ROWS rows: the per-pair cost does not depend on M), their
 *       ratio, and the relative error on those rows.
 *   blocksparse pipeline N SIGMA EPS THREADS
 *       the whole pipeline (plan, sort the inputs, sparse run, results back in
 *       the user's order) against one dense run, both over all M = N rows.
 *   blocksparse plan N EPS CUTOFF THREADS
 *       the planner alone on two uniform clouds of N points in the unit square
 *       (1/EPS^2 clusters each): its steps' times.
 *
 * Times are the minimum of two runs (the machine is shared: the minimum is
 * the least disturbed; one run when the sparse run computes over 4e9 pairs),
 * dense and sparse back to back so that ratios compare like with like.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kforge.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}


/* The tutorial's clouds: x a noisy spiral (M), y a blob around (.6, .6) (N), b ~ N(0, 1). */
static void tutorial(float *x, int64_t M, float *y, float *b, int64_t N)
{
    kf_gen_tutorial_clouds(2024, x, M, y, b, N);
}

static int die(kf_ctx *ctx, const char *what)
{
    fprintf(stderr, "blocksparse: %s: %s\n", what, ctx ? kf_errmsg(ctx) : "out of memory");
    return 1;
}

static kf_ctx *new_ctx(int threads)
{
    kf_options o;
    kf_options_init(&o);
    o.threads = threads;
    return kf_new(&o);
}

/* The Gaussian kernel sum exp(-|x-y|^2 g) b on the cc tier (from the cache
 * when $KFORGE_CACHE_DIR holds it). */
static kf_kernel *gauss(kf_ctx *ctx)
{
    const char *al[] = {"x=Vi(0,2)", "y=Vj(1,2)", "b=Vj(2,1)", "g=Pm(3,1)"};
    kf_compile_opts o;
    kf_compile_opts_init(&o);
    o.jit = KF_JIT_CC;
    return kf_compile(ctx, "Exp(-SqDist(x,y)*g)*b", al, 4, "Sum", 1, KF_FLOAT32, &o);
}

/* The result back in the user's order (row r of the user = sorted row iperm[r]). */
static void unsort(const float *s, const int64_t *iperm, int64_t n, float *u)
{
    for (int64_t r = 0; r < n; r++)
        u[r] = s[iperm[r]];
}

static int speed(int64_t n, double sigma, double eps, int threads, int64_t drows, int pipeline)
{
    int64_t M = n, N = n;
    if (drows > M || pipeline)
        drows = M;
    float *x = malloc(sizeof(float) * (size_t)(2 * M)), *y = malloc(sizeof(float) * (size_t)(2 * N));
    float *b = malloc(sizeof(float) * (size_t)N), *xs = malloc(sizeof(float) * (size_t)(2 * M));
    float *ys = malloc(sizeof(float) * (size_t)(2 * N)), *bs = malloc(sizeof(float) * (size_t)N);
    float *dense = malloc(sizeof(float) * (size_t)M), *sout = malloc(sizeof(float) * (size_t)M);
    float *user = malloc(sizeof(float) * (size_t)M);
    if (!x || !y || !b || !xs || !ys || !bs || !dense || !sout || !user)
        return die(NULL, "allocation");
    tutorial(x, M, y, b, N);
    kf_ctx *ctx = new_ctx(threads);
    kf_kernel *k = ctx ? gauss(ctx) : NULL;
    if (!k)
        return die(ctx, "compile");
    float g = (float)(1 / (2 * sigma * sigma));
    const void *dargs[4] = {x, y, b, &g}, *sargs[4] = {xs, ys, bs, &g};
    double t_dense = INFINITY, t_sparse = INFINITY, t_plan = INFINITY, t_perm = INFINITY;
    double t_back = INFINITY, kept = 0;
    int64_t ncx = 0, ncy = 0;
    for (int rep = 0, reps = 2; rep < reps; rep++) {
        double t0 = now();
        if (kf_run(k, drows, N, dargs, 4, dense, NULL) != KF_OK)
            return die(ctx, "kf_run");
        t_dense = fmin(t_dense, now() - t0);

        t0 = now();
        kf_plan *p = kf_plan_block_sparse(ctx, KF_FLOAT32, x, M, y, N, 2, eps, 4 * sigma, 0);
        if (!p)
            return die(ctx, "kf_plan_block_sparse");
        t_plan = fmin(t_plan, now() - t0);
        t0 = now();
        if (kf_permute_rows(ctx, x, M, 8, p->perm_x, xs) != KF_OK ||
            kf_permute_rows(ctx, y, N, 8, p->perm_y, ys) != KF_OK ||
            kf_permute_rows(ctx, b, N, 4, p->perm_y, bs) != KF_OK)
            return die(ctx, "kf_permute_rows");
        t_perm = fmin(t_perm, now() - t0);
        kf_ranges rg;
        kf_blocks_view(p->blocks, &rg);
        t0 = now();
        if (kf_run_ranges(k, M, N, sargs, 4, &rg, sout, NULL) != KF_OK)
            return die(ctx, "kf_run_ranges");
        t_sparse = fmin(t_sparse, now() - t0);
        t0 = now();
        unsort(sout, p->iperm_x, M, user);
        t_back = fmin(t_back, now() - t0);
        kept = p->kept_fraction, ncx = p->ncx, ncy = p->ncy;
        kf_plan_free(p);
        if (kept * (double)M * (double)N > 4e9)
            reps = 1; /* a big sparse run is long enough to be steady: once */
    }
    double num = 0, den = 0;
    for (int64_t r = 0; r < drows; r++) {
        num += fabs((double)user[r] - dense[r]);
        den += fabs((double)dense[r]);
    }
    double pairs = (double)M * (double)N, computed = kept * pairs;
    if (pipeline) {
        double whole = t_plan + t_perm + t_sparse + t_back;
        /* | M=N | sigma | clusters | kept | dense s | plan | sort inputs | sparse | back | pipeline | dense / pipeline | */
        printf("| %lld | %g | %lld x %lld | %.1f%% | %.3f | %.1f ms | %.1f ms | %.3f | %.1f ms | "
               "%.3f | %.2f |\n",
               (long long)n, sigma, (long long)ncx, (long long)ncy, 100 * kept, t_dense,
               1e3 * t_plan, 1e3 * t_perm, t_sparse, 1e3 * t_back, whole, t_dense / whole);
    } else {
        double dn = 1e9 * t_dense / ((double)drows * (double)N), sn = 1e9 * t_sparse / computed;
        /* | M=N | sigma | eps | clusters | kept | dense ns/pair | sparse ns/computed pair |
         * speed ratio | sparse s | plan | rel. error | */
        printf("| %lld | %g | %g | %lld x %lld | %.1f%% | %.3f | %.3f | %.2f | %.2f | %.1f ms | "
               "%.2e |\n",
               (long long)n, sigma, eps, (long long)ncx, (long long)ncy, 100 * kept, dn, sn,
               dn / sn, t_sparse, 1e3 * t_plan, den > 0 ? num / den : 0);
    }
    kf_kernel_free(k);
    kf_free(ctx);
    free(x), free(y), free(b), free(xs), free(ys), free(bs), free(dense), free(sout), free(user);
    return 0;
}

static int plan_only(int64_t n, double eps, double cutoff, int threads)
{
    float *x = malloc(sizeof(float) * (size_t)(2 * n)), *y = malloc(sizeof(float) * (size_t)(2 * n));
    if (!x || !y)
        return die(NULL, "allocation");
    kf_gen_uniform_f32(7, x, 2 * n);
    kf_gen_uniform_f32(8, y, 2 * n);
    kf_ctx *ctx = new_ctx(threads);
    if (!ctx)
        return die(NULL, "kf_new");
    kf_plan *best = NULL;
    for (int rep = 0; rep < 2; rep++) {
        kf_plan *p = kf_plan_block_sparse(ctx, KF_FLOAT32, x, n, y, n, 2, eps, cutoff, 0);
        if (!p)
            return die(ctx, "kf_plan_block_sparse");
        if (!best || p->total_s < best->total_s)
            kf_plan_free(best), best = p;
        else
            kf_plan_free(p);
    }
    /* | n | eps | cutoff | clusters | kept | cluster | sort | ranges | mask | total | */
    printf("| %lld | %g | %g | %lld x %lld | %.2f%% | %.1f ms | %.1f ms | %.1f ms | %.1f ms | "
           "%.1f ms |\n",
           (long long)n, eps, cutoff, (long long)best->ncx, (long long)best->ncy,
           100 * best->kept_fraction, 1e3 * best->cluster_s, 1e3 * best->sort_s,
           1e3 * best->ranges_s, 1e3 * best->mask_s, 1e3 * best->total_s);
    kf_plan_free(best);
    kf_free(ctx);
    free(x), free(y);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 7 && !strcmp(argv[1], "speed"))
        return speed(atoll(argv[2]), atof(argv[3]), atof(argv[4]), atoi(argv[5]), atoll(argv[6]), 0);
    if (argc == 6 && !strcmp(argv[1], "pipeline"))
        return speed(atoll(argv[2]), atof(argv[3]), atof(argv[4]), atoi(argv[5]), 0, 1);
    if (argc == 6 && !strcmp(argv[1], "plan"))
        return plan_only(atoll(argv[2]), atof(argv[3]), atof(argv[4]), atoi(argv[5]));
    fprintf(stderr, "usage: blocksparse speed N SIGMA EPS THREADS DENSE_ROWS\n"
                    "       blocksparse pipeline N SIGMA EPS THREADS\n"
                    "       blocksparse plan N EPS CUTOFF THREADS\n");
    return 2;
}
