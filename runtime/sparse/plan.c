/*
 * plan.c -- kf_plan_block_sparse: the one-call planner of block-sparse runs.
 *
 *   cluster x, y   grid cells of side eps (or k-means)      cluster_s
 *   sort           stable counting sort by label           sort_s
 *   ranges         cluster slices, centroids, radii        ranges_s
 *   mask           kept pairs from a kd-tree search,       mask_s
 *                  then both triples of the pattern
 *   within         the pairs truly within the cutoff,      within_s
 *                  counted exactly on a sample of rows
 *
 * The rule: keep (a, b) iff the bounding boxes of their points are at most
 * `cutoff` apart AND |c_a - c_b| <= cutoff + r_a + r_b, r the largest
 * distance of a cluster's points to its centroid (both are lower bounds of
 * every point pair's distance, so each alone would be correct; together they
 * are tighter than either). Any point pair at most `cutoff` apart then lies
 * in a kept block. (Until issue 13 the rule used half a grid cell's diagonal
 * for r, which a cell's mean does not bound: a cell with its points in one
 * corner and one in the opposite corner has a point almost a whole diagonal
 * from its centroid.) Kept pairs come from a kd-tree over the y-centroids,
 * so the cost follows the kept pairs, not ncx * ncy.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/sparse/ranges.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void *xmalloc(int64_t count, size_t size)
{
    if (count < 0 || (uint64_t)count > SIZE_MAX / size)
        return NULL;
    return malloc(count ? (size_t)count * size : 1);
}

void kf_plan_free(kf_plan *plan)
{
    if (!plan)
        return;
    free(plan->perm_x);
    free(plan->iperm_x);
    free(plan->perm_y);
    free(plan->iperm_y);
    kf_blocks_free(plan->blocks);
    free(plan);
}

/* One clustered, sorted cloud as the mask step needs it. */
typedef struct cloud {
    int64_t n, C;
    int64_t *labels;   /* (n) */
    int64_t *counts;   /* (C) */
    int64_t *ranges;   /* (C, 2) in sorted order */
    double *cent;      /* (max(C, n), d): k-means needs room for the grid's cells */
    double *radius;    /* (C): the largest distance of a cluster's points to its centroid */
    double *box;       /* (C, 2d): the bounding box of its points, least then largest */
} cloud;

static void cloud_free(cloud *c)
{
    free(c->labels);
    free(c->counts);
    free(c->ranges);
    free(c->cent);
    free(c->radius);
    free(c->box);
}

static const char who[] = "kf_plan_block_sparse";

static int check_input(kf_ctx *ctx, kf_dtype dtype, const char *name, const void *x, int64_t n,
                       int64_t d)
{
    int64_t count, bytes;
    if (n < 0)
        return kfr_error(ctx, KF_ERR_ARG, "%s: %s has %lld points, expected >= 0", who, name,
                         (long long)n);
    if (__builtin_mul_overflow(n, d, &count) ||
        __builtin_mul_overflow(count, (int64_t)(dtype == KF_FLOAT64 ? 8 : 4), &bytes) ||
        (uint64_t)bytes > SIZE_MAX)
        return kfr_error(ctx, KF_ERR_ARG, "%s: %s with %lld points of dim %lld overflows the "
                         "address space", who, name, (long long)n, (long long)d);
    if (n > 0 && !x)
        return kfr_error(ctx, KF_ERR_ARG, "%s: %s is NULL with %lld points", who, name,
                         (long long)n);
    return KF_OK;
}

/* Clusters one cloud: labels, count C, and (k-means) centroids. */
static int cluster(kf_ctx *ctx, const char *name, kf_dtype dtype, const void *x, int64_t n,
                   int64_t d, double eps, int iters, cloud *c)
{
    c->n = n;
    c->labels = xmalloc(n, sizeof *c->labels);
    c->cent = xmalloc((n > 0 ? n : 1) * d, sizeof *c->cent);
    if (!c->labels || !c->cent)
        return kfr_error(ctx, KF_ERR_NOMEM, "%s: out of memory for the labels of %lld points",
                         who, (long long)n);
    if (iters > 0)
        return kfr_kmeans(ctx, who, name, dtype, x, n, d, eps, iters, c->labels, &c->C, c->cent);
    return kfr_grid_labels(ctx, who, name, dtype, x, n, d, eps, c->labels, &c->C);
}

/* Centroids, radii, bounding boxes, counts and the sorted ranges. */
static int stats(kf_ctx *ctx, kf_dtype dtype, const void *x, int64_t d, cloud *c)
{
    c->counts = xmalloc(c->C, sizeof *c->counts);
    c->ranges = xmalloc(2 * c->C, sizeof *c->ranges);
    c->radius = xmalloc(c->C, sizeof *c->radius);
    c->box = c->C > 0 && (uint64_t)c->C > SIZE_MAX / (2 * (size_t)d * sizeof(double))
                 ? NULL
                 : xmalloc(c->C * 2 * d, sizeof *c->box);
    if (!c->counts || !c->ranges || !c->radius || !c->box)
        return kfr_error(ctx, KF_ERR_NOMEM, "%s: out of memory for %lld clusters", who,
                         (long long)c->C);
    kfr_cluster_stats(ctx, who, dtype, x, c->n, d, c->labels, c->C, c->counts, c->cent,
                      c->radius);
    kfr_cluster_boxes(dtype, x, c->n, d, c->labels, c->C, c->box);
    int64_t s = 0;
    for (int64_t k = 0; k < c->C; k++) {
        c->ranges[2 * k] = s;
        s += c->counts[k];
        c->ranges[2 * k + 1] = s;
    }
    return KF_OK;
}

/* The fraction of the M N pairs at most cutoff apart, from a sample of x's
 * rows (original indices spread evenly): each sampled row scans the points
 * of its cluster's kept j-clusters, which hold all its neighbours within the
 * cutoff (the rule is a bound), so only the sampling is an estimate. The
 * sample is sized to about 2e7 distances (64 to 4096 rows). */
static void within_sample(kf_dtype dtype, const void *x, const void *y, int64_t d, double cutoff,
                          const cloud *cx, const cloud *cy, const int64_t *perm_y,
                          const int64_t *rowptr, const int64_t *cols, double kept, kf_plan *p)
{
    int64_t M = cx->n, N = cy->n;
    if (M == 0 || N == 0)
        return;
    double per_row = kept / (double)M, budget = 2e7;
    int64_t S = per_row > 0 ? (int64_t)fmin(4096, fmax(64, budget / per_row)) : 4096;
    S = S < M ? S : M;
    double c2 = cutoff * cutoff, hits = 0;
    for (int64_t s = 0; s < S; s++) {
        int64_t i = s * M / S, a = cx->labels[i];
        for (int64_t e = rowptr[a]; e < rowptr[a + 1]; e++) {
            int64_t b = cols[e];
            for (int64_t q = cy->ranges[2 * b]; q < cy->ranges[2 * b + 1]; q++) {
                int64_t j = perm_y[q];
                double d2 = 0;
                for (int64_t c = 0; c < d; c++) {
                    double t = kfr_getx(dtype, x, i * d + c) - kfr_getx(dtype, y, j * d + c);
                    d2 += t * t;
                }
                hits += d2 <= c2;
            }
        }
    }
    p->within_fraction = hits / (double)S / (double)N;
    p->within_rows = S;
}

kf_plan *kf_plan_block_sparse(kf_ctx *ctx, kf_dtype dtype, const void *x, int64_t M,
                              const void *y, int64_t N, int64_t d, double eps, double cutoff,
                              int kmeans_iters)
{
    if (!ctx)
        return NULL;
    kfr_clear_error(ctx);
    double t0 = now();
    int rc = KF_OK;
    if (dtype != KF_FLOAT32 && dtype != KF_FLOAT64)
        rc = kfr_error(ctx, KF_ERR_ARG, "%s: dtype %d is not KF_FLOAT32 or KF_FLOAT64", who,
                       (int)dtype);
    else if (d < 1)
        rc = kfr_error(ctx, KF_ERR_ARG, "%s: d = %lld, expected >= 1", who, (long long)d);
    else if (!(eps > 0) || !isfinite(eps))
        rc = kfr_error(ctx, KF_ERR_ARG, "%s: eps = %g, expected a finite value > 0", who, eps);
    else if (!(cutoff >= 0))
        rc = kfr_error(ctx, KF_ERR_ARG, "%s: cutoff = %g, expected a value >= 0", who, cutoff);
    else if (kmeans_iters < 0)
        rc = kfr_error(ctx, KF_ERR_ARG, "%s: kmeans_iters = %d is negative", who, kmeans_iters);
    if (rc == KF_OK)
        rc = check_input(ctx, dtype, "x", x, M, d);
    if (rc == KF_OK)
        rc = check_input(ctx, dtype, "y", y, N, d);
    if (rc != KF_OK)
        return NULL;

    cloud cx = {0}, cy = {0};
    int64_t *rowptr = NULL, *cols = NULL;
    kf_plan *p = calloc(1, sizeof *p);
    if (!p) {
        kfr_error(ctx, KF_ERR_NOMEM, "%s: out of memory", who);
        return NULL;
    }
    p->M = M;
    p->N = N;
    double t = now();
    rc = cluster(ctx, "x", dtype, x, M, d, eps, kmeans_iters, &cx);
    if (rc == KF_OK)
        rc = cluster(ctx, "y", dtype, y, N, d, eps, kmeans_iters, &cy);
    if (rc != KF_OK)
        goto fail;
    p->ncx = cx.C;
    p->ncy = cy.C;
    p->cluster_s = now() - t;

    t = now();
    p->perm_x = xmalloc(M, sizeof *p->perm_x);
    p->iperm_x = xmalloc(M, sizeof *p->iperm_x);
    p->perm_y = xmalloc(N, sizeof *p->perm_y);
    p->iperm_y = xmalloc(N, sizeof *p->iperm_y);
    if (!p->perm_x || !p->iperm_x || !p->perm_y || !p->iperm_y) {
        kfr_error(ctx, KF_ERR_NOMEM, "%s: out of memory for the permutations", who);
        goto fail;
    }
    if (kfr_sort_labels(ctx, who, cx.labels, M, cx.C, p->perm_x, p->iperm_x) != KF_OK ||
        kfr_sort_labels(ctx, who, cy.labels, N, cy.C, p->perm_y, p->iperm_y) != KF_OK)
        goto fail;
    p->sort_s = now() - t;

    t = now();
    if (stats(ctx, dtype, x, d, &cx) != KF_OK || stats(ctx, dtype, y, d, &cy) != KF_OK)
        goto fail;
    p->ranges_s = now() - t;

    t = now();
    double kept;
    rowptr = xmalloc(cx.C + 1, sizeof *rowptr);
    if (!rowptr) {
        kfr_error(ctx, KF_ERR_NOMEM, "%s: out of memory for %lld clusters", who, (long long)cx.C);
        goto fail;
    }
    kfr_cstats sx = {cx.C, cx.counts, cx.cent, cx.radius, cx.box};
    kfr_cstats sy = {cy.C, cy.counts, cy.cent, cy.radius, cy.box};
    if (kfr_kept_pairs(ctx, who, &sx, &sy, d, cutoff, rowptr, &cols, &kept) != KF_OK)
        goto fail;
    p->blocks = kfr_blocks_from_csr(ctx, who, cx.ranges, cx.C, cy.ranges, cy.C, rowptr, cols);
    if (!p->blocks)
        goto fail;
    p->kept_fraction = M > 0 && N > 0 ? kept / ((double)M * (double)N) : 0;
    p->mask_s = now() - t;
    t = now();
    within_sample(dtype, x, y, d, cutoff, &cx, &cy, p->perm_y, rowptr, cols, kept, p);
    p->within_s = now() - t;
    p->total_s = now() - t0;
    kf_ranges v;
    kf_blocks_view(p->blocks, &v);
    kfr_log(ctx, KF_LOG_INFO,
            "%s: %lld x %lld clusters, kept %.4g of the pairs in %lld (axis 1) and %lld (axis 0) "
            "reduced ranges (%.4g are within the cutoff, counted on %lld rows: %.2fx), %.3g s",
            who, (long long)cx.C, (long long)cy.C, p->kept_fraction, (long long)v.nredj,
            (long long)v.nredi, p->within_fraction, (long long)p->within_rows,
            p->within_fraction > 0 ? p->kept_fraction / p->within_fraction : 0.0, p->total_s);
    cloud_free(&cx);
    cloud_free(&cy);
    free(rowptr);
    free(cols);
    return p;
fail:
    cloud_free(&cx);
    cloud_free(&cy);
    free(rowptr);
    free(cols);
    kf_plan_free(p);
    return NULL;
}
