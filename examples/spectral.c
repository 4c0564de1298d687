/*
 * spectral.c -- the scipy-eigsh tutorial (../shared/reference/tutorial-scipy-eigsh.txt)
 * through the C API: spectral coordinates of point clouds from an implicit
 * Gaussian kernel matrix K_ij = exp(-|x_i - x_j|^2 / (2 sigma^2)).
 *
 *   1. the 10,000-point 2-D spiral, sigma = 0.05: the 7 smallest eigenpairs of
 *      L = diag(D) - K and of L_norm = I - D^-1/2 K D^-1/2 (D = K 1), next to
 *      the tutorial's values (our noise differs, the spectrum's shape must not);
 *   2. the 3-D noisy Swiss roll, sigma = 0.01, with block-sparse ranges (grid
 *      cells of side eps = 0.05, cluster pairs kept within 4 sigma plus half of
 *      both cells' diagonals: the tutorial's rule), the 7 smallest eigenpairs of
 *      L_norm, the kept fraction and the time.
 *
 *   spectral [SWISSROLL_N]   default 100000: about 6 s on this project's shared
 *                            2-core machine (the block solver from a coarse start:
 *                            57 block applies of 8 columns, 2.5e8 pairs each; it was
 *                            5 minutes with ARPACK); the tutorial's size is
 *                            `spectral 1000000`
 *
 * The clouds are those of `kforge eigsh --gen spiral:N` and `--gen swissroll:N`
 * (seed 1): kf_gen_points, the library's generator of the tutorials' clouds.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kforge.h"

enum { K_EIG = 7, SPIRAL_N = 10000, SWISS_DEFAULT_N = 100000 };

/* The tutorial's printed eigenvalues of L on its 10,000-point spiral. */
static const double tutorial_L[K_EIG] = {-1.03884835e-04, 3.48848414, 14.2337055, 41.7763672,
                                         66.8747711,      77.4901962, 114.927841};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* x / sigma as float32 (the tutorial's dtype), rows reordered by perm if not NULL. */
static float *scaled(const double *x, int64_t n, int d, double sigma, const int64_t *perm)
{
    float *p = malloc(sizeof(float) * (size_t)(n * d));
    for (int64_t i = 0; p && i < n; i++)
        for (int c = 0; c < d; c++)
            p[i * d + c] = (float)(x[(perm ? perm[i] : i) * d + c] / sigma);
    return p;
}

/* The Gaussian kernel operator on points already divided by sigma. */
static kf_linop *gaussian(kf_ctx *ctx, const float *pts, int64_t n, int d, const kf_ranges *rg)
{
    char ax[32], ay[32];
    snprintf(ax, sizeof ax, "x=Vi(0,%d)", d);
    snprintf(ay, sizeof ay, "y=Vj(1,%d)", d);
    const char *aliases[] = {ax, ay};
    const void *args[] = {pts, pts, NULL};
    return kf_linop_formula(ctx, "Exp(-SqDist(x,y)/IntCst(2))*v", aliases, 2, "v", 2, args, 3, n,
                            KF_FLOAT32, NULL, rg);
}

/* The k smallest eigenpairs of the Laplacian `lap` of K, with a Lanczos basis
 * of ncv vectors (0: ARPACK's and scipy's default, max(2k+1, 20)); prints the
 * report. */
static int smallest(kf_linop *K, int lap, int ncv, float *values, double *seconds)
{
    kf_spectral_opts o;
    kf_spectral_opts_init(&o);
    o.eig.k = K_EIG;
    o.eig.ncv = ncv;
    o.eig.which = KF_WHICH_SM;
    o.laplacian = lap;
    kf_eigsh_report r;
    kf_spectral_mode mode;
    double t0 = now();
    int st = kf_spectral(K, &o, values, NULL, NULL, &r, &mode);
    *seconds = now() - t0;
    if (st != KF_OK) {
        fprintf(stderr, "spectral: %s\n", kf_errmsg(kf_linop_ctx(K)));
        return st;
    }
    static const char *const modes[] = {"auto", "direct", "shifted", "coarse-to-fine"};
    const char *solver = r.solver == KF_SOLVER_BLOCK ? "LOBPCG" : "ARPACK";
    printf("  %s mode, %s: %d iterations, %lld matvecs, %.2f s (%.2f s in matvecs, %.3f s in %s), "
           "max residual %.2g\n",
           modes[mode], solver, r.iterations, (long long)r.matvecs, *seconds, r.matvec_s,
           r.arpack_s, solver, r.max_residual);
    return KF_OK;
}

static int spiral(kf_ctx *ctx)
{
    kf_gen g = {KF_GEN_SPIRAL, SPIRAL_N, KF_GEN_DEFAULT_SEED};
    double *x = malloc(sizeof(double) * 2 * SPIRAL_N);
    float *pts = NULL, vl[K_EIG], vn[K_EIG];
    kf_linop *K = NULL;
    int rc = 1;
    double tl, tn;
    if (!x)
        goto done;
    kf_gen_points(&g, x);
    pts = scaled(x, SPIRAL_N, 2, 0.05, NULL);
    if (!pts || !(K = gaussian(ctx, pts, SPIRAL_N, 2, NULL))) {
        fprintf(stderr, "spectral: %s\n", pts ? kf_errmsg(ctx) : "out of memory");
        goto done;
    }
    printf("1. spiral, N = %d points in 2-D, sigma = 0.05, float32\n", SPIRAL_N);
    printf("L = diag(D) - K, 7 smallest:\n");
    if (smallest(K, KF_GRAPH_LAPLACIAN, 0, vl, &tl))
        goto done;
    printf("L_norm = I - D^-1/2 K D^-1/2, 7 smallest:\n");
    if (smallest(K, KF_GRAPH_LAPLACIAN_NORM, 0, vn, &tn))
        goto done;
    printf("\n    %-14s %-14s %-14s\n", "L (kforge)", "L (tutorial)", "L_norm (kforge)");
    for (int j = 0; j < K_EIG; j++)
        printf("    %-14.6g %-14.6g %-14.6g\n", vl[j], tutorial_L[j], vn[j]);
    printf("(scipy on the tutorial's GPU: 0.072 s for L)\n\n");
    rc = 0;
done:
    kf_linop_free(K);
    free(pts);
    free(x);
    return rc;
}

static int swissroll(kf_ctx *ctx, int64_t n)
{
    const double sigma = 0.01, eps = 0.05;
    kf_gen g = {KF_GEN_SWISSROLL, n, KF_GEN_DEFAULT_SEED};
    double *x = malloc(sizeof(double) * 3 * (size_t)n);
    float *pts = NULL, v[K_EIG];
    kf_plan *plan = NULL;
    kf_linop *K = NULL;
    int rc = 1;
    double ts;
    if (!x) {
        fprintf(stderr, "spectral: out of memory for %lld points\n", (long long)n);
        return 1;
    }
    kf_gen_points(&g, x);
    double t0 = now();
    /* cluster on a grid, sort, keep the cluster pairs that may hold pairs within 4 sigma */
    plan = kf_plan_block_sparse(ctx, KF_FLOAT64, x, n, x, n, 3, eps, 4 * sigma, 0);
    if (!plan) {
        fprintf(stderr, "spectral: %s\n", kf_errmsg(ctx));
        goto done;
    }
    kf_ranges rg;
    kf_blocks_view(plan->blocks, &rg);
    pts = scaled(x, n, 3, sigma, plan->perm_x); /* the SORTED points */
    if (!pts || !(K = gaussian(ctx, pts, n, 3, &rg))) {
        fprintf(stderr, "spectral: %s\n", pts ? kf_errmsg(ctx) : "out of memory");
        goto done;
    }
    printf("2. Swiss roll, N = %lld points in 3-D, sigma = %g, block-sparse eps = %g\n",
           (long long)n, sigma, eps);
    printf("  %lld clusters; we keep %.2f%% of the kernel matrix (the tutorial at 10^6: 5%%); "
           "plan %.3f s\n",
           (long long)plan->ncx, 100 * plan->kept_fraction, plan->total_s);
    /* Its low spectrum is tightly clustered (1e-4 apart): a basis of 40 instead of
     * 20 halves the matvecs (measured at N = 20000: 636 instead of 1166). */
    printf("L_norm, 7 smallest (ncv = 40):\n");
    if (smallest(K, KF_GRAPH_LAPLACIAN_NORM, 40, v, &ts))
        goto done;
    printf("   ");
    for (int j = 0; j < K_EIG; j++)
        printf(" %.4e", v[j]);
    printf("\n  total %.2f s (the tutorial: 51.8 s at 10^6 points through scipy on a GPU)\n",
           now() - t0);
    /* Eigenvectors, if asked for, are in sorted order: row p of the user's
     * cloud is row plan->iperm_x[p] (kf_permute_rows with iperm_x). */
    rc = 0;
done:
    kf_linop_free(K);
    kf_plan_free(plan);
    free(pts);
    free(x);
    return rc;
}

int main(int argc, char **argv)
{
    long n = SWISS_DEFAULT_N;
    if (argc > 1) {
        char *end;
        n = strtol(argv[1], &end, 10);
        if (argc > 2 || *end || n < 1000 || n > 10000000) {
            fprintf(stderr, "usage: spectral [SWISSROLL_N]   (1000..10000000; default %d)\n",
                    SWISS_DEFAULT_N);
            return 2;
        }
    }
    kf_ctx *ctx = kf_new(NULL);
    if (!ctx) {
        fputs("spectral: cannot create a context\n", stderr);
        return 1;
    }
    printf("kforge %s on %d threads\n\n", kf_version(), kf_threads(ctx));
    int rc = spiral(ctx) || swissroll(ctx, n);
    kf_free(ctx);
    return rc;
}
