/*
 * block_sparse.c -- KeOps' tutorial "Block-sparse reductions" reproduced with
 * the C API (../shared/reference/tutorial-block-sparse.txt; docs/blocksparse.md).
 *
 * Two clouds on the unit square (a noisy spiral x, a Gaussian blob y), M = N =
 * 5000, float32. Cluster both on grids of side eps = 0.05, sort, compute the
 * clusters' ranges and centroids, keep the cluster pairs whose centroids are
 * closer than 4 sigma (sigma = 0.05, the tutorial's rule), build the ranges
 * with kf_blocks_from_mask, and compare a Gaussian convolution computed
 * densely and block-sparsely: times and relative error, printed as the
 * tutorial prints them. A second block shows kforge's own planner
 * (kf_plan_block_sparse), whose rule keeps every cluster pair that could
 * hold a pair within 4 sigma (the clusters' boxes and radii), so that none
 * is skipped.
 *
 *   build/examples/block_sparse [M [SIGMA]]     (M = N; defaults 5000 and 0.05)
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kforge.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}


static int fail(kf_ctx *ctx, const char *what)
{
    fprintf(stderr, "block_sparse: %s: %s\n", what, ctx ? kf_errmsg(ctx) : "out of memory");
    return 1;
}

/* One timed run (the median of three, to steady a shared machine). */
static double timed(kf_kernel *k, int64_t M, int64_t N, const void *const *args,
                    const kf_ranges *rg, float *out, int *st)
{
    double t[3];
    for (int r = 0; r < 3; r++) {
        double t0 = now();
        *st = rg ? kf_run_ranges(k, M, N, args, 4, rg, out, NULL) : kf_run(k, M, N, args, 4, out, NULL);
        t[r] = now() - t0;
        if (*st != KF_OK)
            return 0;
    }
    double lo = fmin(t[0], fmin(t[1], t[2])), hi = fmax(t[0], fmax(t[1], t[2]));
    return t[0] + t[1] + t[2] - lo - hi;
}

static double rel_error(const float *a, const float *ref, int64_t n)
{
    double num = 0, den = 0;
    for (int64_t q = 0; q < n; q++) {
        num += fabs((double)a[q] - (double)ref[q]);
        den += fabs((double)ref[q]);
    }
    return num / den;
}

int main(int argc, char **argv)
{
    int64_t M = argc > 1 ? atoll(argv[1]) : 5000;
    double sigma = argc > 2 ? atof(argv[2]) : 0.05, eps = 0.05;
    if (M < 1 || M > 100000000 || !(sigma > 0)) {
        fprintf(stderr, "usage: block_sparse [M [SIGMA]]  (M = N >= 1, SIGMA > 0)\n");
        return 2;
    }
    int64_t N = M;
    float *x = malloc(sizeof *x * (size_t)(2 * M)), *y = malloc(sizeof *y * (size_t)(2 * N));
    float *xs = malloc(sizeof *xs * (size_t)(2 * M));
    float *ys = malloc(sizeof *ys * (size_t)(2 * N)), *bs = malloc(sizeof *bs * (size_t)N);
    float *a_full = malloc(sizeof(float) * (size_t)M), *a_sparse = malloc(sizeof(float) * (size_t)M);
    int64_t *xl = malloc(sizeof(int64_t) * (size_t)M), *yl = malloc(sizeof(int64_t) * (size_t)N);
    int64_t *xp = malloc(sizeof(int64_t) * (size_t)M), *yp = malloc(sizeof(int64_t) * (size_t)N);
    int64_t *xls = malloc(sizeof(int64_t) * (size_t)M), *yls = malloc(sizeof(int64_t) * (size_t)N);
    if (!x || !y || !xs || !ys || !bs || !a_full || !a_sparse || !xl || !yl || !xp || !yp ||
        !xls || !yls)
        return fail(NULL, "allocation");

    /* The dataset: t = linspace(0, 2 pi, M + 1)[:-1]; a spiral plus noise, a blob
     * (kf_gen_tutorial_clouds). */
    kf_gen_tutorial_clouds(12345, x, M, y, NULL, N);

    kf_options opt;
    kf_options_init(&opt);
    kf_ctx *ctx = kf_new(&opt);
    if (!ctx)
        return fail(NULL, "kf_new");

    /* ---- pre-processing, timed step by step as in the tutorial ---- */
    int64_t ncx, ncy;
    double Start = now(), start = now();
    if (kf_grid_cluster(ctx, KF_FLOAT32, x, M, 2, eps, xl, &ncx) != KF_OK ||
        kf_grid_cluster(ctx, KF_FLOAT32, y, N, 2, eps, yl, &ncy) != KF_OK)
        return fail(ctx, "kf_grid_cluster");
    printf("Perform clustering : %.4fs\n", now() - start);

    /* kforge computes ranges from sorted labels, so it sorts first. */
    start = now();
    if (kf_sort_clusters(ctx, xl, M, ncx, xp, NULL) != KF_OK ||
        kf_sort_clusters(ctx, yl, N, ncy, yp, NULL) != KF_OK ||
        kf_permute_rows(ctx, x, M, 2 * sizeof(float), xp, xs) != KF_OK ||
        kf_permute_rows(ctx, y, N, 2 * sizeof(float), yp, ys) != KF_OK ||
        kf_permute_rows(ctx, xl, M, sizeof(int64_t), xp, xls) != KF_OK ||
        kf_permute_rows(ctx, yl, N, sizeof(int64_t), yp, yls) != KF_OK)
        return fail(ctx, "sorting");
    printf("Sort the points : %.4fs\n", now() - start);

    int64_t *xr = malloc(sizeof(int64_t) * (size_t)(2 * ncx)), *yr = malloc(sizeof(int64_t) * (size_t)(2 * ncy));
    float *xc = malloc(sizeof(float) * (size_t)(2 * ncx)), *yc = malloc(sizeof(float) * (size_t)(2 * ncy));
    uint8_t *keep = malloc((size_t)(ncx * ncy));
    if (!xr || !yr || !xc || !yc || !keep)
        return fail(NULL, "allocation");
    start = now();
    if (kf_cluster_ranges(ctx, KF_FLOAT32, xs, M, 2, xls, ncx, NULL, xr, xc, NULL) != KF_OK ||
        kf_cluster_ranges(ctx, KF_FLOAT32, ys, N, 2, yls, ncy, NULL, yr, yc, NULL) != KF_OK)
        return fail(ctx, "kf_cluster_ranges");
    printf("Compute ranges+centroids : %.4fs\n", now() - start);

    /* The tutorial's mask: centroids closer than 4 sigma. */
    start = now();
    double cut2 = (4 * sigma) * (4 * sigma);
    for (int64_t p = 0; p < ncx; p++)
        for (int64_t q = 0; q < ncy; q++) {
            double dx = (double)xc[2 * p] - yc[2 * q], dy = (double)xc[2 * p + 1] - yc[2 * q + 1];
            keep[p * ncy + q] = dx * dx + dy * dy < cut2;
        }
    kf_blocks *ranges_ij = kf_blocks_from_mask(ctx, xr, ncx, yr, ncy, keep);
    if (!ranges_ij)
        return fail(ctx, "kf_blocks_from_mask");
    printf("Process the ranges : %.4fs\n", now() - start);
    double t_cluster = now() - Start;
    printf("Total time (synchronized): %.4fs\n\n", t_cluster);

    double sparse_area = 0, total_area = (double)M * (double)N;
    for (int64_t p = 0; p < ncx; p++)
        for (int64_t q = 0; q < ncy; q++)
            if (keep[p * ncy + q])
                sparse_area += (double)(xr[2 * p + 1] - xr[2 * p]) * (double)(yr[2 * q + 1] - yr[2 * q]);
    printf("We keep %.2e/%.2e = %2d%% of the original kernel matrix.\n", sparse_area, total_area,
           (int)(100 * sparse_area / total_area));

    /* kforge's planner: the same clouds, its conservative rule, one call. */
    kf_plan *plan = kf_plan_block_sparse(ctx, KF_FLOAT32, x, M, y, N, 2, eps, 4 * sigma, 0);
    if (!plan)
        return fail(ctx, "kf_plan_block_sparse");
    printf("kforge's planner (cluster boxes within 4 sigma and centroids within 4 sigma + both\n"
           "radii, so no pair closer than 4 sigma is skipped): we keep %.2e/%.2e = %2d%% of the original\n"
           "kernel matrix, planned in %.4fs (%lld x %lld clusters).\n\n",
           plan->kept_fraction * total_area, total_area, (int)(100 * plan->kept_fraction),
           plan->total_s, (long long)plan->ncx, (long long)plan->ncy);

    /* ---- the Gaussian convolution, dense and block-sparse ---- */
    kf_gen_normal_f32(54321, bs, N); /* a signal on the SORTED y, as in the tutorial */
    float g = (float)(1 / (2 * sigma * sigma));
    const char *aliases[] = {"x=Vi(0,2)", "y=Vj(1,2)", "b=Vj(2,1)", "g=Pm(3,1)"};
    kf_kernel *K = kf_compile(ctx, "Exp(-SqDist(x,y)*g)*b", aliases, 4, "Sum", 1, KF_FLOAT32, NULL);
    if (!K)
        return fail(ctx, "kf_compile");
    /* Time the optimized code, not libtcc's while the build runs. */
    if (kf_kernel_wait(K) != KF_OK)
        fprintf(stderr, "block_sparse: no optimized code (%s); timing libtcc's\n", kf_errmsg(ctx));
    printf("engine: %s, %d threads, median of 3 runs\n", kf_kernel_engine(K), kf_threads(ctx));
    const void *args[4] = {xs, ys, bs, &g};
    int st;
    timed(K, M, N, args, NULL, a_full, &st); /* warm-up (the tutorial's "GPU warm-up") */
    double t_full = st == KF_OK ? timed(K, M, N, args, NULL, a_full, &st) : 0;
    if (st != KF_OK)
        return fail(ctx, "kf_run");
    printf(" Full convolution, CPU backend: %2.4fs\n", t_full);
    kf_ranges rg;
    kf_blocks_view(ranges_ij, &rg);
    double t_sparse = timed(K, M, N, args, &rg, a_sparse, &st);
    if (st != KF_OK)
        return fail(ctx, "kf_run_ranges");
    printf("Sparse convolution, CPU backend: %2.4fs\n", t_sparse);
    printf("Relative time : %3d%% (%3d%% including clustering), \n", (int)(100 * t_sparse / t_full),
           (int)(100 * (t_sparse + t_cluster) / t_full));
    printf("Relative error: %3.4f%%\n\n", 100 * rel_error(a_sparse, a_full, M));

    /* The planner's pattern is for ITS sorted order: sort the clouds and b by
     * its permutations (b goes back to the user's order first). */
    float *b0 = malloc(sizeof(float) * (size_t)N), *ref = malloc(sizeof(float) * (size_t)M);
    float *xs2 = malloc(sizeof(float) * (size_t)(2 * M)), *ys2 = malloc(sizeof(float) * (size_t)(2 * N));
    float *bs2 = malloc(sizeof(float) * (size_t)N);
    if (!b0 || !ref || !xs2 || !ys2 || !bs2)
        return fail(NULL, "allocation");
    for (int64_t j = 0; j < N; j++)
        b0[yp[j]] = bs[j];
    for (int64_t k = 0; k < M; k++) /* the dense result, in the planner's order */
        ref[plan->iperm_x[xp[k]]] = a_full[k];
    kf_permute_rows(ctx, x, M, 2 * sizeof(float), plan->perm_x, xs2);
    kf_permute_rows(ctx, y, N, 2 * sizeof(float), plan->perm_y, ys2);
    kf_permute_rows(ctx, b0, N, sizeof(float), plan->perm_y, bs2);
    const void *args2[4] = {xs2, ys2, bs2, &g};
    kf_blocks_view(plan->blocks, &rg);
    double t_plan_sparse = timed(K, M, N, args2, &rg, a_sparse, &st);
    if (st != KF_OK)
        return fail(ctx, "kf_run_ranges (planner)");
    printf("Sparse convolution, kforge's planner: %2.4fs\n", t_plan_sparse);
    printf("Relative time : %3d%% (%3d%% including planning), \n",
           (int)(100 * t_plan_sparse / t_full), (int)(100 * (t_plan_sparse + plan->total_s) / t_full));
    printf("Relative error: %3.4f%%\n", 100 * rel_error(a_sparse, ref, M));

    free(b0), free(ref), free(xs2), free(ys2), free(bs2);
    kf_kernel_free(K);
    kf_plan_free(plan);
    kf_blocks_free(ranges_ij);
    kf_free(ctx);
    free(x), free(y), free(xs), free(ys), free(bs), free(a_full), free(a_sparse);
    free(xl), free(yl), free(xp), free(yp), free(xls), free(yls);
    free(xr), free(yr), free(xc), free(yc), free(keep);
    return 0;
}
