/* t_plan.c -- the block-sparse planner: the tutorial's clouds, its keep rule checked by brute force, the cutoff guarantee, k-means, scale, errors. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/sparse/ranges.h"
#include "harness.h"
#include "testutil.h"

static kf_ctx *ctx1(void)
{
    kf_options o;
    kf_options_init(&o);
    o.threads = 1;
    return kf_new(&o);
}

static double randn(kft_rng *g)
{
    double u = kft_uniform(g, 0x1p-53, 1), v = kft_uniform(g, 0, 1);
    return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

/* The tutorial's clouds (tutorial-block-sparse.txt): a noisy spiral x and a
 * Gaussian blob y on the unit square, float32. */
static void tutorial_clouds(int64_t M, int64_t N, float *x, float *y, uint64_t seed)
{
    kft_rng g;
    kft_rng_seed(&g, seed);
    for (int64_t i = 0; i < M; i++) {
        double t = 2 * M_PI * (double)i / (double)M;
        x[2 * i] = (float)(.4 + .4 * (t / 7) * cos(t) + .01 * randn(&g));
        x[2 * i + 1] = (float)(.5 + .3 * sin(t) + .01 * randn(&g));
    }
    for (int64_t j = 0; j < 2 * N; j++)
        y[j] = (float)(randn(&g) / 10 + .6);
}

/* Cluster centroids of a sorted cloud, from the pattern's ranges (double). */
static double *centroids(const float *x, const int64_t *perm, int64_t d, const int64_t *r,
                         int64_t nc)
{
    double *c = calloc((size_t)(nc * d) + 1, sizeof *c);
    for (int64_t a = 0; a < nc; a++) {
        for (int64_t k = r[2 * a]; k < r[2 * a + 1]; k++)
            for (int64_t e = 0; e < d; e++)
                c[a * d + e] += x[perm[k] * d + e];
        for (int64_t e = 0; e < d; e++)
            c[a * d + e] /= (double)(r[2 * a + 1] - r[2 * a]);
    }
    return c;
}

/* Each cluster's bounding box (2d: least, then largest) and radius about
 * its centroid c, from the sorted cloud, as the planner computes them. */
static void extents(const float *x, const int64_t *perm, int64_t d, const int64_t *r, int64_t nc,
                    const double *c, double *box, double *rad)
{
    for (int64_t a = 0; a < nc; a++) {
        rad[a] = 0;
        for (int64_t e = 0; e < d; e++)
            box[a * 2 * d + e] = INFINITY, box[a * 2 * d + d + e] = -INFINITY;
        for (int64_t k = r[2 * a]; k < r[2 * a + 1]; k++) {
            double s = 0;
            for (int64_t e = 0; e < d; e++) {
                double v = x[perm[k] * d + e];
                box[a * 2 * d + e] = fmin(box[a * 2 * d + e], v);
                box[a * 2 * d + d + e] = fmax(box[a * 2 * d + d + e], v);
                s += (v - c[a * d + e]) * (v - c[a * d + e]);
            }
            rad[a] = fmax(rad[a], sqrt(s));
        }
    }
}

/* The gap between two boxes (0 when they overlap). */
static double gap(const double *a, const double *b, int64_t d)
{
    double s = 0;
    for (int64_t e = 0; e < d; e++) {
        double t = fmax(a[e] - b[d + e], b[e] - a[d + e]);
        s += t > 0 ? t * t : 0;
    }
    return sqrt(s);
}

static double dist(const double *a, const double *b, int64_t d)
{
    double s = 0;
    for (int64_t e = 0; e < d; e++)
        s += (a[e] - b[e]) * (a[e] - b[e]);
    return sqrt(s);
}

/* covered[a * N + j]: the axis-1 list of i-cluster a covers sorted j. */
static uint8_t *coverage(const kf_ranges *v, int64_t N)
{
    uint8_t *cov = calloc((size_t)(v->nci * N) + 1, 1);
    for (int64_t a = 0; a < v->nci; a++)
        for (int64_t q = a ? v->slices_i[a - 1] : 0; q < v->slices_i[a]; q++)
            for (int64_t j = v->redranges_j[2 * q]; j < v->redranges_j[2 * q + 1]; j++)
                cov[a * N + j]++;
    return cov;
}

KFT_TEST(plan_tutorial_clouds)
{
    kf_ctx *ctx = ctx1();
    const int64_t M = 5000, N = 5000, d = 2;
    const double eps = 0.05, cutoff = 0.2;
    float *x = malloc(M * d * sizeof *x), *y = malloc(N * d * sizeof *y);
    tutorial_clouds(M, N, x, y, 1);
    kf_plan *p = kf_plan_block_sparse(ctx, KF_FLOAT32, x, M, y, N, d, eps, cutoff, 0);
    KFT_CHECKF(p != NULL, "%s", kf_errmsg(ctx));
    if (!p)
        goto out;
    kf_ranges v;
    kf_blocks_view(p->blocks, &v);
    KFT_CHECK(p->M == M && p->N == N && v.nci == p->ncx && v.ncj == p->ncy);
    KFT_CHECK(kfr_ranges_check(ctx, &v, 1, M, N) == KF_OK);
    KFT_CHECK(kfr_ranges_check(ctx, &v, 0, N, M) == KF_OK);
    KFT_CHECK(p->total_s >= p->mask_s && p->cluster_s >= 0 && p->sort_s >= 0);

    /* Permutations: inverses of each other. */
    int bad = 0;
    for (int64_t k = 0; k < M; k++)
        bad += p->iperm_x[p->perm_x[k]] != k;
    for (int64_t k = 0; k < N; k++)
        bad += p->iperm_y[p->perm_y[k]] != k;
    KFT_CHECK(bad == 0);

    /* Every cluster is one grid cell: its sorted points share a cell. */
    for (int64_t a = 0; a < v.nci; a++) {
        int64_t s = v.ranges_i[2 * a], e = v.ranges_i[2 * a + 1];
        bad += e <= s;
        for (int64_t k = s + 1; k < e; k++)
            bad += fabs(x[p->perm_x[k] * 2] - x[p->perm_x[s] * 2]) >= eps + 1e-6 ||
                   fabs(x[p->perm_x[k] * 2 + 1] - x[p->perm_x[s] * 2 + 1]) >= eps + 1e-6;
    }
    KFT_CHECKF(bad == 0, "%d clusters are empty or wider than a cell", bad);

    /* The keep rule, by brute force over all cluster pairs, against the
     * pattern's coverage: the boxes at most cutoff apart and the centroids
     * at most cutoff + both radii; and the tutorial's own rule (centroids
     * closer than the cutoff, nothing for the clusters' extent) on the same
     * clusters. */
    double *cx = centroids(x, p->perm_x, d, v.ranges_i, v.nci);
    double *cy = centroids(y, p->perm_y, d, v.ranges_j, v.ncj);
    double *bx = calloc((size_t)(v.nci * 2 * d) + 1, sizeof *bx), *rx = calloc((size_t)v.nci + 1, 8);
    double *by = calloc((size_t)(v.ncj * 2 * d) + 1, sizeof *by), *ry = calloc((size_t)v.ncj + 1, 8);
    extents(x, p->perm_x, d, v.ranges_i, v.nci, cx, bx, rx);
    extents(y, p->perm_y, d, v.ranges_j, v.ncj, cy, by, ry);
    uint8_t *cov = coverage(&v, N);
    double kept = 0, kept_tutorial = 0, kept_old = 0, diag = eps * sqrt((double)d);
    for (int64_t a = 0; a < v.nci; a++)
        for (int64_t b = 0; b < v.ncj; b++) {
            double dab = dist(cx + a * d, cy + b * d, d), g = gap(bx + a * 2 * d, by + b * 2 * d, d);
            double sph = cutoff + rx[a] + ry[b];
            int want = g <= cutoff && dab <= sph;
            double area = (double)(v.ranges_i[2 * a + 1] - v.ranges_i[2 * a]) *
                          (double)(v.ranges_j[2 * b + 1] - v.ranges_j[2 * b]);
            kept += want * area;
            kept_tutorial += (dab < cutoff) * area;
            kept_old += (dab < cutoff + diag) * area; /* the rule before issue 13 */
            /* Float rounding may flip a pair sitting on a threshold; skip those. */
            if (fabs(g - cutoff) < 1e-6 || fabs(dab - sph) < 1e-6)
                continue;
            for (int64_t j = v.ranges_j[2 * b]; j < v.ranges_j[2 * b + 1]; j++)
                bad += cov[a * N + j] != want;
        }
    KFT_CHECKF(bad == 0, "%d (cluster, point) pairs disagree with the keep rule", bad);
    /* The mirror triple (axis 0) keeps the same cluster pairs. */
    kf_ranges t = {v.ncj, v.ranges_j, v.slices_j, v.nredi, v.redranges_i, 0, NULL, NULL, 0, NULL};
    uint8_t *cov0 = coverage(&t, M);
    for (int64_t a = 0; a < v.nci; a++)
        for (int64_t b = 0; b < v.ncj; b++)
            bad += cov[a * N + v.ranges_j[2 * b]] != cov0[b * M + v.ranges_i[2 * a]];
    KFT_CHECKF(bad == 0, "%d cluster pairs differ between the two triples", bad);
    free(cov0);
    KFT_CHECKF(fabs(kept / (double)(M * N) - p->kept_fraction) < 1e-3, "kept %g vs %g",
               kept / (double)(M * N), p->kept_fraction);
    /* The tutorial reports 13% with its rule; ours keeps every cluster pair
     * that could hold a close point pair, so it keeps more, but less than
     * the half-diagonal rule of before (which was not even a bound). */
    KFT_CHECKF(fabs(kept_tutorial / (double)(M * N) - 0.13) < 0.03, "tutorial rule: %g",
               kept_tutorial / (double)(M * N));
    KFT_CHECKF(p->kept_fraction > kept_tutorial / (double)(M * N) &&
                   p->kept_fraction < kept_old / (double)(M * N),
               "kept %g (tutorial's rule %g, the old rule %g)", p->kept_fraction,
               kept_tutorial / (double)(M * N), kept_old / (double)(M * N));
    free(bx), free(by), free(rx), free(ry);

    /* The guarantee: every point pair closer than the cutoff is computed
     * (a sample of rows, all columns). */
    for (int64_t k = 0; k < M; k += 13) {
        int64_t a = 0;
        while (!(k >= v.ranges_i[2 * a] && k < v.ranges_i[2 * a + 1]))
            a++;
        const float *xi = x + p->perm_x[k] * 2;
        for (int64_t j = 0; j < N; j++) {
            const float *yj = y + p->perm_y[j] * 2;
            double dx = xi[0] - yj[0], dy = xi[1] - yj[1];
            bad += dx * dx + dy * dy < cutoff * cutoff && !cov[a * N + j];
        }
    }
    KFT_CHECKF(bad == 0, "%d pairs within the cutoff are not computed", bad);

    /* within_fraction: exact on its sampled rows (s M / S, s < S), and
     * close to the count over every row. */
    double all = 0, sampled = 0;
    int64_t S = p->within_rows, next = 0, s_at = 0;
    KFT_CHECKF(S >= 64 && S <= M, "within_rows %lld", (long long)S);
    for (int64_t i = 0; i < M; i++) {
        int64_t hits = 0;
        for (int64_t j = 0; j < N; j++) {
            double d2 = 0;
            for (int64_t c = 0; c < d; c++) {
                double t2 = (double)x[i * d + c] - (double)y[j * d + c];
                d2 += t2 * t2;
            }
            hits += d2 <= cutoff * cutoff;
        }
        all += (double)hits;
        while (s_at < S && (next = s_at * M / S) == i) {
            sampled += (double)hits;
            s_at++;
        }
    }
    KFT_CHECKF(s_at == S && sampled / (double)S / (double)N == p->within_fraction,
               "within_fraction %.17g, the sampled rows give %.17g", p->within_fraction,
               sampled / (double)S / (double)N);
    double full = all / ((double)M * (double)N);
    KFT_CHECKF(fabs(p->within_fraction / full - 1) < 0.05 && p->kept_fraction > full,
               "within %g, every row gives %g, kept %g", p->within_fraction, full,
               p->kept_fraction);
    free(cx);
    free(cy);
    free(cov);
    kf_plan_free(p);
out:
    free(x);
    free(y);
    kf_free(ctx);
}

KFT_TEST(plan_kmeans_keeps_every_close_pair)
{
    kf_ctx *ctx = ctx1();
    const int64_t M = 700, N = 500, d = 4;
    const double cutoff = 0.3;
    kft_rng g;
    kft_rng_seed(&g, 4);
    float *x = malloc(M * d * sizeof *x), *y = malloc(N * d * sizeof *y);
    for (int64_t k = 0; k < M * d; k++)
        x[k] = (float)(randn(&g) * 0.5 + (k % d == 0 ? 2.0 * (double)((k / d) % 3) : 0));
    for (int64_t k = 0; k < N * d; k++)
        y[k] = (float)(randn(&g) * 0.5 + (k % d == 1 ? 2.0 * (double)((k / d) % 3) : 0));
    kf_plan *p = kf_plan_block_sparse(ctx, KF_FLOAT32, x, M, y, N, d, 0.8, cutoff, 5);
    KFT_CHECKF(p != NULL, "%s", kf_errmsg(ctx));
    if (p) {
        kf_ranges v;
        kf_blocks_view(p->blocks, &v);
        KFT_CHECK(kfr_ranges_check(ctx, &v, 1, M, N) == KF_OK);
        KFT_CHECK(kfr_ranges_check(ctx, &v, 0, N, M) == KF_OK);
        uint8_t *cov = coverage(&v, N);
        int bad = 0;
        for (int64_t a = 0; a < v.nci; a++)
            for (int64_t k = v.ranges_i[2 * a]; k < v.ranges_i[2 * a + 1]; k++)
                for (int64_t j = 0; j < N; j++) {
                    const float *xi = x + p->perm_x[k] * d, *yj = y + p->perm_y[j] * d;
                    double s = 0;
                    for (int64_t e = 0; e < d; e++)
                        s += (xi[e] - yj[e]) * (xi[e] - yj[e]);
                    bad += s < cutoff * cutoff && !cov[a * N + j];
                }
        KFT_CHECKF(bad == 0, "%d pairs within the cutoff are not computed", bad);
        KFT_CHECKF(p->kept_fraction > 0 && p->kept_fraction < 1, "kept %g", p->kept_fraction);
        free(cov);
    }
    kf_plan_free(p);
    free(x);
    free(y);
    kf_free(ctx);
}

KFT_TEST(plan_many_clusters_is_fast)
{
    /* About 10^4 clusters per cloud: the window sweep must not be quadratic.
     * (A full 10^4 x 10^4 mask alone is 10^8 distance evaluations.) */
    kf_ctx *ctx = ctx1();
    const int64_t n = 60000;
    kft_rng g;
    kft_rng_seed(&g, 8);
    double *x = malloc(2 * n * sizeof *x), *y = malloc(2 * n * sizeof *y);
    for (int64_t k = 0; k < 2 * n; k++) {
        x[k] = kft_uniform(&g, 0, 1);
        y[k] = kft_uniform(&g, 0, 1);
    }
    kf_plan *p = kf_plan_block_sparse(ctx, KF_FLOAT64, x, n, y, n, 2, 0.01, 0.02, 0);
    KFT_CHECKF(p != NULL, "%s", kf_errmsg(ctx));
    if (p) {
        KFT_CHECKF(p->ncx > 9500 && p->ncy > 9500, "%lld x %lld clusters", (long long)p->ncx,
                   (long long)p->ncy);
        /* Kept: about the area within 0.02 + 0.0141 of a cell, pi*0.034^2 ~ 0.4%. */
        KFT_CHECKF(p->kept_fraction > 0.002 && p->kept_fraction < 0.01, "kept %g",
                   p->kept_fraction);
        KFT_CHECKF(p->mask_s < 2.0, "mask step took %g s", p->mask_s);
    }
    kf_plan_free(p);
    free(x);
    free(y);
    kf_free(ctx);
}

KFT_TEST(plan_edge_cases_and_errors)
{
    kf_ctx *ctx = ctx1();
    const double x[6] = {0, 0, 1, 1, 5, 5};
    /* Empty clouds plan to an empty pattern; every row then gets neutral values. */
    kf_plan *p = kf_plan_block_sparse(ctx, KF_FLOAT64, NULL, 0, x, 3, 2, 1.0, 1.0, 0);
    KFT_CHECKF(p && p->ncx == 0 && p->ncy == 3 && p->kept_fraction == 0, "%s", kf_errmsg(ctx));
    kf_ranges v;
    kf_blocks_view(p ? p->blocks : NULL, &v);
    KFT_CHECK(kfr_ranges_check(ctx, &v, 0, 3, 0) == KF_OK && v.nredi == 0);
    kf_plan_free(p);
    p = kf_plan_block_sparse(ctx, KF_FLOAT64, x, 3, NULL, 0, 2, 1.0, 1.0, 2);
    KFT_CHECK(p && p->ncx == 3 && p->ncy == 0);
    kf_plan_free(p);
    /* Cutoff inf keeps everything; cutoff 0 keeps only clusters whose boxes
     * touch (here: each with itself, distance 0 <= 0). */
    p = kf_plan_block_sparse(ctx, KF_FLOAT64, x, 3, x, 3, 2, 0.5, INFINITY, 0);
    KFT_CHECK(p && p->kept_fraction == 1);
    kf_plan_free(p);
    p = kf_plan_block_sparse(ctx, KF_FLOAT64, x, 3, x, 3, 2, 0.5, 0, 0);
    KFT_CHECK(p && fabs(p->kept_fraction - 3.0 / 9.0) < 1e-12);
    kf_plan_free(p);
    /* A cell's mean is no half diagonal from all its points: 99 points in a
     * corner, one in the opposite corner, and a cell of y skewed the other
     * way; the outlier and y's lone point are 1.31 apart, within the cutoff.
     * (The rule before issue 13, centroids within cutoff + half diagonals,
     * dropped this pair: 2.96 > 1.35 + 1.41.) */
    {
        double sx[200], sy[200];
        for (int q = 0; q < 100; q++) {
            sx[2 * q] = sx[2 * q + 1] = 0.01;
            sy[2 * q] = 2.99, sy[2 * q + 1] = 0.01;
        }
        sx[198] = sx[199] = 0.99;
        sy[198] = 2.3, sy[199] = 0.99;
        p = kf_plan_block_sparse(ctx, KF_FLOAT64, sx, 100, sy, 100, 2, 1.0, 1.35, 0);
        KFT_CHECKF(p && p->ncx == 1 && p->ncy == 1 && p->kept_fraction == 1, "kept %g",
                   p ? p->kept_fraction : -1);
        kf_plan_free(p);
        /* and a cutoff just below their distance drops the block */
        p = kf_plan_block_sparse(ctx, KF_FLOAT64, sx, 100, sy, 100, 2, 1.0, 1.30, 0);
        KFT_CHECKF(p && p->kept_fraction == 0, "kept %g", p ? p->kept_fraction : -1);
        kf_plan_free(p);
    }

    struct {
        kf_dtype dt;
        const void *x;
        int64_t M, d;
        double eps, cutoff;
        int iters;
        const char *msg;
    } bad[] = {
        {KF_FLOAT64, NULL, 3, 2, 1, 1, 0, "x is NULL with 3 points"},
        {KF_FLOAT64, x, -1, 2, 1, 1, 0, "x has -1 points"},
        {KF_FLOAT64, x, 3, 0, 1, 1, 0, "d = 0"},
        {KF_FLOAT64, x, 3, 2, 0, 1, 0, "eps = 0"},
        {KF_FLOAT64, x, 3, 2, 1, NAN, 0, "cutoff = nan"},
        {KF_FLOAT64, x, 3, 2, 1, -1, 0, "cutoff = -1"},
        {KF_FLOAT64, x, 3, 2, 1, 1, -2, "kmeans_iters = -2"},
        {(kf_dtype)5, x, 3, 2, 1, 1, 0, "dtype 5"},
        {KF_FLOAT64, x, INT64_MAX / 4, 2, 1, 1, 0, "overflows"},
        {KF_FLOAT64, x, 3, 2, 1e-300, 1, 0, "eps = 1e-300 is too small"},
    };
    for (size_t c = 0; c < sizeof bad / sizeof bad[0]; c++) {
        p = kf_plan_block_sparse(ctx, bad[c].dt, bad[c].x, bad[c].M, x, 3, bad[c].d, bad[c].eps,
                                 bad[c].cutoff, bad[c].iters);
        KFT_CHECKF(!p && kf_status_of(ctx) == KF_ERR_ARG && strstr(kf_errmsg(ctx), bad[c].msg),
                   "case %zu: '%s'", c, kf_errmsg(ctx));
        kf_plan_free(p);
    }
    double nanx[4] = {0, 0, NAN, 1};
    p = kf_plan_block_sparse(ctx, KF_FLOAT64, x, 3, nanx, 2, 2, 1.0, 1.0, 0);
    KFT_CHECKF(!p && strstr(kf_errmsg(ctx), "y[1][0] = nan"), "%s", kf_errmsg(ctx));
    KFT_CHECK(kf_plan_block_sparse(NULL, KF_FLOAT64, x, 3, x, 3, 2, 1, 1, 0) == NULL);
    kf_plan_free(NULL);
    kf_free(ctx);
}

KFT_TEST(plan_nomem)
{
    kf_ctx *ctx = ctx1();
    kft_rng g;
    kft_rng_seed(&g, 2);
    double x[80], y[60];
    for (int k = 0; k < 80; k++)
        x[k] = kft_uniform(&g, 0, 1);
    for (int k = 0; k < 60; k++)
        y[k] = kft_uniform(&g, 0, 1);
    int bad = 0;
    for (int iters = 0; iters < 4; iters += 3)
        for (int64_t n = 0; n < 10000; n++) {
            int64_t before = kft_failures();
            kft_fail_after(n);
            kf_plan *p = kf_plan_block_sparse(ctx, KF_FLOAT64, x, 40, y, 30, 2, 0.2, 0.3, iters);
            kft_fail_after(-1);
            int injected = kft_failures() != before;
            if (injected)
                bad += p != NULL || kf_status_of(ctx) != KF_ERR_NOMEM;
            else
                bad += p == NULL;
            kf_plan_free(p);
            if (!injected)
                break;
        }
    KFT_CHECKF(bad == 0, "%d calls did not fail cleanly", bad);
    kf_free(ctx);
}
