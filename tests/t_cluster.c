/* t_cluster.c -- clustering helpers: grid labels, k-means, sort by label, permutation, cluster ranges and centroids. */
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

/* A double array as dtype (malloc'd). */
static void *as_dtype(const double *v, int64_t n, kf_dtype dt)
{
    void *a = malloc((size_t)n * (dt == KF_FLOAT64 ? 8 : 4) + 1);
    for (int64_t k = 0; k < n; k++)
        kft_set(a, dt, k, v[k]);
    return a;
}

static int has(const char *msg, const char *part)
{
    return strstr(msg, part) != NULL;
}

/* ---- grid ---- */

KFT_TEST(cluster_grid_hand_made)
{
    kf_ctx *ctx = ctx1();
    /* Cells (0,0) (0,0) (1,0) (0,1) (1,1): lexicographic labels 0 0 2 1 3.
     * The shifted copy (negative coordinates) has the same cells, since
     * cells count from the cloud's lower corner. */
    const double base[] = {0, 0, 0.5, 0.25, 1.5, 0, 0, 1.5, 1.25, 1.75};
    const int64_t want[] = {0, 0, 2, 1, 3};
    for (int shift = 0; shift < 2; shift++)
        for (int t = 0; t < 2; t++) {
            kf_dtype dt = t ? KF_FLOAT64 : KF_FLOAT32;
            double v[10];
            for (int k = 0; k < 10; k++)
                v[k] = base[k] - (shift ? (k % 2 ? 3.0 : 10.0) : 0);
            void *x = as_dtype(v, 10, dt);
            int64_t labels[5], C = -1;
            KFT_CHECK(kf_grid_cluster(ctx, dt, x, 5, 2, 1.0, labels, &C) == KF_OK);
            KFT_CHECK(C == 4);
            for (int p = 0; p < 5; p++)
                KFT_CHECKF(labels[p] == want[p], "shift %d dtype %d point %d: %lld", shift, t, p,
                           (long long)labels[p]);
            free(x);
        }
    /* n = 0: no clusters. */
    int64_t C = 7;
    KFT_CHECK(kf_grid_cluster(ctx, KF_FLOAT64, NULL, 0, 3, 0.5, NULL, &C) == KF_OK && C == 0);
    kf_free(ctx);
}

/* Lexicographic comparison of the cells of two points (brute force). */
static int cell_cmp(const double *x, int64_t d, double eps, const double *lo, int64_t p,
                    int64_t q)
{
    for (int64_t k = 0; k < d; k++) {
        double a = floor((x[p * d + k] - lo[k]) / eps), b = floor((x[q * d + k] - lo[k]) / eps);
        if (a != b)
            return a < b ? -1 : 1;
    }
    return 0;
}

KFT_TEST(cluster_grid_matches_brute_force)
{
    kf_ctx *ctx = ctx1();
    kft_rng g;
    kft_rng_seed(&g, 11);
    const int64_t dims[] = {1, 2, 5};
    for (int di = 0; di < 3; di++) {
        int64_t d = dims[di], n = 300;
        double eps = d == 5 ? 1.0 : 0.25;
        double *x = malloc((size_t)(n * d) * sizeof *x), lo[5];
        /* Values on a 1/8 grid, so cell boundaries are hit exactly. */
        for (int64_t k = 0; k < n * d; k++)
            x[k] = floor(kft_uniform(&g, -2, 2) * 8) / 8;
        for (int64_t k = 0; k < d; k++) {
            lo[k] = INFINITY;
            for (int64_t p = 0; p < n; p++)
                lo[k] = fmin(lo[k], x[p * d + k]);
        }
        int64_t *labels = malloc((size_t)n * sizeof *labels), C = 0;
        KFT_CHECK(kf_grid_cluster(ctx, KF_FLOAT64, x, n, d, eps, labels, &C) == KF_OK);
        int bad = 0, *used = calloc((size_t)n, sizeof *used);
        for (int64_t p = 0; p < n; p++) {
            bad += labels[p] < 0 || labels[p] >= C;
            if (labels[p] >= 0 && labels[p] < C)
                used[labels[p]] = 1;
            for (int64_t q = 0; q < n; q++) {
                int c = cell_cmp(x, d, eps, lo, p, q);
                int l = labels[p] < labels[q] ? -1 : labels[p] > labels[q];
                bad += c != l;
            }
        }
        for (int64_t c = 0; c < C; c++)
            bad += !used[c];
        KFT_CHECKF(bad == 0, "d = %lld: %d disagreements with the brute-force cell order",
                   (long long)d, bad);
        free(used);
        free(labels);
        free(x);
    }
    kf_free(ctx);
}

KFT_TEST(cluster_grid_far_away_and_eps_too_small)
{
    kf_ctx *ctx = ctx1();
    int64_t labels[4], C;
    /* A cloud far from the origin: cells count from its corner, no overflow. */
    const double far[] = {1e300, 1e300, 1e300};
    KFT_CHECK(kf_grid_cluster(ctx, KF_FLOAT64, far, 3, 1, 1.0, labels, &C) == KF_OK);
    KFT_CHECK(C == 1 && labels[0] == 0 && labels[2] == 0);
    /* Spanning -1e300..1e300 in 20 cells of 1e299 (floor(x/eps) alone is fine
     * here; the point is that nothing is computed as a product of cells). */
    const double wide[] = {1e300, -1e300, 0, 1e300};
    KFT_CHECK(kf_grid_cluster(ctx, KF_FLOAT64, wide, 4, 1, 1e299, labels, &C) == KF_OK);
    KFT_CHECK(C == 3 && labels[0] == 2 && labels[1] == 0 && labels[2] == 1 && labels[3] == 2);
    /* Two points 2^-52 * 1e300 apart with eps 1: far more than 2^52 cells. */
    const double near[] = {1e300, 1e300 * (1 + 0x1p-51)};
    KFT_CHECK(kf_grid_cluster(ctx, KF_FLOAT64, near, 2, 1, 1.0, labels, &C) == KF_ERR_ARG);
    KFT_CHECKF(has(kf_errmsg(ctx), "eps = 1 is too small"), "%s", kf_errmsg(ctx));
    /* An extent that overflows to inf. */
    const double huge[] = {-1e308, 0, 1e308, 0};
    KFT_CHECK(kf_grid_cluster(ctx, KF_FLOAT64, huge, 2, 2, 1.0, labels, &C) == KF_ERR_ARG);
    KFT_CHECKF(has(kf_errmsg(ctx), "coordinate 0 of x spans inf"), "%s", kf_errmsg(ctx));
    /* float32 far away. */
    const float f[] = {3e38f, 3e38f, -3e38f, -3e38f};
    KFT_CHECK(kf_grid_cluster(ctx, KF_FLOAT32, f, 2, 2, 1e37, labels, &C) == KF_OK && C == 2);
    KFT_CHECK(labels[0] == 1 && labels[1] == 0);
    kf_free(ctx);
}

KFT_TEST(cluster_grid_rejects_bad_input)
{
    kf_ctx *ctx = ctx1();
    int64_t labels[4], C;
    double x[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    x[7] = NAN;
    KFT_CHECK(kf_grid_cluster(ctx, KF_FLOAT64, x, 4, 2, 1.0, labels, &C) == KF_ERR_ARG);
    KFT_CHECKF(has(kf_errmsg(ctx), "point 3") && has(kf_errmsg(ctx), "x[3][1] = nan"), "%s",
               kf_errmsg(ctx));
    x[7] = 7;
    x[2] = -INFINITY;
    KFT_CHECK(kf_kmeans(ctx, KF_FLOAT64, x, 4, 2, 1.0, 3, labels, &C, NULL) == KF_ERR_ARG);
    KFT_CHECKF(has(kf_errmsg(ctx), "x[1][0] = -inf"), "%s", kf_errmsg(ctx));
    float xf[2] = {1, INFINITY};
    KFT_CHECK(kf_grid_cluster(ctx, KF_FLOAT32, xf, 2, 1, 1.0, labels, &C) == KF_ERR_ARG);
    KFT_CHECKF(has(kf_errmsg(ctx), "x[1][0] = inf"), "%s", kf_errmsg(ctx));
    x[2] = 2;
    KFT_CHECK(kf_grid_cluster(NULL, KF_FLOAT64, x, 4, 2, 1.0, labels, &C) == KF_ERR_ARG);
    KFT_CHECK(kf_grid_cluster(ctx, KF_FLOAT64, x, 4, 2, 0.0, labels, &C) == KF_ERR_ARG);
    KFT_CHECK(has(kf_errmsg(ctx), "eps = 0"));
    KFT_CHECK(kf_grid_cluster(ctx, KF_FLOAT64, x, 4, 2, NAN, labels, &C) == KF_ERR_ARG);
    KFT_CHECK(kf_grid_cluster(ctx, KF_FLOAT64, x, 4, 2, INFINITY, labels, &C) == KF_ERR_ARG);
    KFT_CHECK(kf_grid_cluster(ctx, KF_FLOAT64, x, -1, 2, 1.0, labels, &C) == KF_ERR_ARG);
    KFT_CHECK(has(kf_errmsg(ctx), "n = -1"));
    KFT_CHECK(kf_grid_cluster(ctx, KF_FLOAT64, x, 4, 0, 1.0, labels, &C) == KF_ERR_ARG);
    KFT_CHECK(kf_grid_cluster(ctx, (kf_dtype)7, x, 4, 2, 1.0, labels, &C) == KF_ERR_ARG);
    KFT_CHECK(kf_grid_cluster(ctx, KF_FLOAT64, NULL, 4, 2, 1.0, labels, &C) == KF_ERR_ARG);
    KFT_CHECK(kf_grid_cluster(ctx, KF_FLOAT64, x, 4, 2, 1.0, NULL, &C) == KF_ERR_ARG);
    KFT_CHECK(kf_grid_cluster(ctx, KF_FLOAT64, x, 4, 2, 1.0, labels, NULL) == KF_ERR_ARG);
    KFT_CHECK(kf_grid_cluster(ctx, KF_FLOAT64, x, INT64_MAX / 2, 4, 1.0, labels, &C) ==
              KF_ERR_ARG);
    KFT_CHECKF(has(kf_errmsg(ctx), "overflow"), "%s", kf_errmsg(ctx));
    KFT_CHECK(kf_kmeans(ctx, KF_FLOAT64, x, 4, 2, 1.0, -1, labels, &C, NULL) == KF_ERR_ARG);
    KFT_CHECK(has(kf_errmsg(ctx), "iters = -1"));
    kf_free(ctx);
}

/* ---- k-means ---- */

/* Sum of squared distances of points to their cluster's centroid. */
static double inertia(const double *x, int64_t n, int64_t d, const int64_t *labels,
                      const double *cent)
{
    double s = 0;
    for (int64_t p = 0; p < n; p++)
        for (int64_t k = 0; k < d; k++) {
            double t = x[p * d + k] - cent[labels[p] * d + k];
            s += t * t;
        }
    return s;
}

KFT_TEST(cluster_kmeans_blobs)
{
    kf_ctx *ctx = ctx1();
    kft_rng g;
    kft_rng_seed(&g, 5);
    const int64_t d = 6, per = 80, n = 3 * per;
    double *x = malloc((size_t)(n * d) * sizeof *x);
    for (int64_t p = 0; p < n; p++)
        for (int64_t k = 0; k < d; k++)
            x[p * d + k] = 40.0 * (double)(p / per) * (k == p / per) + kft_uniform(&g, -1, 1);
    int64_t *labels = malloc((size_t)n * sizeof *labels), C = 0;
    double *cent = malloc((size_t)(n * d) * sizeof *cent);
    /* Cells of side 30 hold each blob whole (blob b sits at 40 b along axis
     * b, 2 wide, and the grid starts at the cloud's corner, -1): three
     * clusters, one per blob. */
    KFT_CHECK(kf_kmeans(ctx, KF_FLOAT64, x, n, d, 30.0, 4, labels, &C, cent) == KF_OK);
    KFT_CHECK(C == 3);
    int bad = 0;
    for (int64_t p = 0; p < n; p++)
        bad += labels[p] != labels[(p / per) * per];
    KFT_CHECK(bad == 0);
    KFT_CHECK(labels[0] != labels[per] && labels[per] != labels[2 * per] &&
              labels[0] != labels[2 * per]);
    for (int64_t b = 0; b < 3 && C == 3; b++) {
        double want = 40.0 * (double)b, got = cent[labels[b * per] * d + b];
        KFT_CHECKF(fabs(got - want) < 0.3, "blob %lld: centroid %g, expected about %g",
                   (long long)b, got, want);
    }

    /* A fine grid over-splits the blobs; Lloyd must not increase the
     * inertia, must give compact labels (no empty cluster) and must be
     * deterministic, with centroids the means of their points. */
    double in0 = 0, in5 = 0;
    int64_t C0 = 0, C5 = 0, C5b = 0;
    int64_t *labels2 = malloc((size_t)n * sizeof *labels2);
    double *cent2 = malloc((size_t)(n * d) * sizeof *cent2);
    KFT_CHECK(kf_kmeans(ctx, KF_FLOAT64, x, n, d, 1.0, 0, labels, &C0, cent) == KF_OK);
    in0 = inertia(x, n, d, labels, cent);
    KFT_CHECK(kf_kmeans(ctx, KF_FLOAT64, x, n, d, 1.0, 5, labels, &C5, cent) == KF_OK);
    in5 = inertia(x, n, d, labels, cent);
    KFT_CHECK(kf_kmeans(ctx, KF_FLOAT64, x, n, d, 1.0, 5, labels2, &C5b, cent2) == KF_OK);
    KFT_CHECKF(C0 > 3 && C5 <= C0 && in5 <= in0 * (1 + 1e-12), "C0 %lld C5 %lld %g -> %g",
               (long long)C0, (long long)C5, in0, in5);
    KFT_CHECK(C5 == C5b && memcmp(labels, labels2, (size_t)n * sizeof *labels) == 0 &&
              memcmp(cent, cent2, (size_t)(C5 * d) * sizeof *cent) == 0);
    /* The same on 3 threads (the assignment step runs on the pool). */
    kf_options o3;
    kf_options_init(&o3);
    o3.threads = 3;
    kf_ctx *ctx3 = kf_new(&o3);
    KFT_CHECK(kf_kmeans(ctx3, KF_FLOAT64, x, n, d, 1.0, 5, labels2, &C5b, cent2) == KF_OK);
    KFT_CHECK(C5 == C5b && memcmp(labels, labels2, (size_t)n * sizeof *labels) == 0 &&
              memcmp(cent, cent2, (size_t)(C5 * d) * sizeof *cent) == 0);
    kf_free(ctx3);
    int64_t *cnt = calloc((size_t)C5 + 1, sizeof *cnt);
    double *mean = calloc((size_t)(C5 * d) + 1, sizeof *mean);
    for (int64_t p = 0; p < n; p++) {
        cnt[labels[p]]++;
        for (int64_t k = 0; k < d; k++)
            mean[labels[p] * d + k] += x[p * d + k];
    }
    bad = 0;
    for (int64_t c = 0; c < C5; c++) {
        bad += cnt[c] == 0;
        for (int64_t k = 0; k < d && cnt[c]; k++)
            bad += fabs(mean[c * d + k] / (double)cnt[c] - cent[c * d + k]) > 1e-12;
    }
    KFT_CHECKF(bad == 0, "%d empty clusters or centroids that are not means", bad);

    /* float32 input gives float32 centroids. */
    float *xf = as_dtype(x, n * d, KF_FLOAT32), *cf = malloc((size_t)(n * d) * sizeof *cf);
    int64_t Cf = 0;
    KFT_CHECK(kf_kmeans(ctx, KF_FLOAT32, xf, n, d, 30.0, 4, labels, &Cf, cf) == KF_OK && Cf == 3);
    KFT_CHECK(fabs(cf[labels[per] * d + 1] - 40.0f) < 0.3f);
    free(xf);
    free(cf);
    free(cnt);
    free(mean);
    free(labels2);
    free(cent2);
    free(labels);
    free(cent);
    free(x);
    kf_free(ctx);
}

/* ---- kd-tree (k-means' nearest centroid, the planner's neighbours) ---- */

typedef struct within_acc {
    uint8_t *hit;
    int bad;
} within_acc;

static void mark(void *u, int64_t i, double d2)
{
    within_acc *w = u;
    w->bad += w->hit[i]++ != 0 || !(d2 >= 0);
}

KFT_TEST(cluster_kdtree_matches_brute_force)
{
    kft_rng g;
    kft_rng_seed(&g, 17);
    int bad = 0;
    for (int64_t d = 1; d <= 5; d += 2)
        for (int64_t n = 1; n <= 300; n += 299) {
            /* Coarse values: many exact ties and duplicate points. */
            double *pts = malloc((size_t)(n * d) * sizeof *pts), q[5];
            for (int64_t k = 0; k < n * d; k++)
                pts[k] = floor(kft_uniform(&g, 0, 6));
            kfr_kdtree t;
            if (kfr_kd_build(&t, pts, n, d) != KF_OK) {
                bad++;
                free(pts);
                continue;
            }
            uint8_t *hit = calloc((size_t)n, 1);
            for (int trial = 0; trial < 200; trial++) {
                for (int64_t k = 0; k < d; k++)
                    q[k] = floor(kft_uniform(&g, -1, 7) * 2) / 2;
                double best = INFINITY, r2 = kft_uniform(&g, 0, 10);
                int64_t bi = -1, guess = (int64_t)(kft_rng_next(&g) % (uint64_t)n);
                for (int64_t c = 0; c < n; c++) {
                    double s = 0;
                    for (int64_t k = 0; k < d; k++)
                        s += (q[k] - pts[c * d + k]) * (q[k] - pts[c * d + k]);
                    if (s < best)
                        best = s, bi = c;
                }
                bad += kfr_kd_nearest(&t, q, guess) != bi; /* the lowest index of the nearest */
                memset(hit, 0, (size_t)n);
                within_acc w = {hit, 0};
                kfr_kd_within(&t, q, r2, mark, &w);
                bad += w.bad;
                for (int64_t c = 0; c < n; c++) {
                    double s = 0;
                    for (int64_t k = 0; k < d; k++)
                        s += (q[k] - pts[c * d + k]) * (q[k] - pts[c * d + k]);
                    bad += hit[c] != (s < r2);
                }
            }
            free(hit);
            kfr_kd_free(&t);
            free(pts);
        }
    KFT_CHECKF(bad == 0, "%d disagreements", bad);
}

/* ---- sort and permute ---- */

KFT_TEST(cluster_sort_stable_with_inverse)
{
    kf_ctx *ctx = ctx1();
    kft_rng g;
    kft_rng_seed(&g, 3);
    for (int sparse = 0; sparse < 2; sparse++) {
        const int64_t n = 200;
        /* Sparse: labels up to 10^12, which takes the comparison-sort path. */
        int64_t C = sparse ? 1000000000000 : 7;
        int64_t labels[200], perm[200], iperm[200];
        for (int64_t p = 0; p < n; p++)
            labels[p] = (int64_t)(kft_rng_next(&g) % 7) * (sparse ? 100000000000 : 1);
        KFT_CHECK(kf_sort_clusters(ctx, labels, n, C, perm, iperm) == KF_OK);
        int bad = 0;
        for (int64_t k = 0; k < n; k++) {
            bad += iperm[perm[k]] != k;
            if (k > 0) {
                int64_t a = labels[perm[k - 1]], b = labels[perm[k]];
                bad += a > b || (a == b && perm[k - 1] > perm[k]); /* stable */
            }
        }
        KFT_CHECKF(bad == 0, "sparse %d: %d violations", sparse, bad);
    }
    int64_t labels[3] = {0, 3, 1}, perm[3];
    KFT_CHECK(kf_sort_clusters(ctx, labels, 3, 3, perm, NULL) == KF_ERR_ARG);
    KFT_CHECKF(has(kf_errmsg(ctx), "labels[1] = 3 is not in 0..2"), "%s", kf_errmsg(ctx));
    labels[1] = -1;
    KFT_CHECK(kf_sort_clusters(ctx, labels, 3, 3, perm, NULL) == KF_ERR_ARG);
    KFT_CHECK(kf_sort_clusters(ctx, labels, -3, 3, perm, NULL) == KF_ERR_ARG);
    KFT_CHECK(kf_sort_clusters(ctx, NULL, 3, 3, perm, NULL) == KF_ERR_ARG);
    KFT_CHECK(kf_sort_clusters(ctx, NULL, 0, 0, NULL, NULL) == KF_OK);

    /* Permuting rows: out[k] = in[perm[k]]. */
    const double in[6] = {0, 1, 10, 11, 20, 21};
    double out[6];
    const int64_t pm[3] = {2, 0, 1};
    KFT_CHECK(kf_permute_rows(ctx, in, 3, 16, pm, out) == KF_OK);
    KFT_CHECK(out[0] == 20 && out[1] == 21 && out[2] == 0 && out[5] == 11);
    const int64_t badp[3] = {2, 0, 3};
    KFT_CHECK(kf_permute_rows(ctx, in, 3, 16, badp, out) == KF_ERR_ARG);
    KFT_CHECKF(has(kf_errmsg(ctx), "perm[2] = 3 is not in 0..2"), "%s", kf_errmsg(ctx));
    KFT_CHECK(kf_permute_rows(ctx, out, 3, 16, pm, out + 1) == KF_ERR_ARG);
    KFT_CHECK(has(kf_errmsg(ctx), "overlap"));
    KFT_CHECK(kf_permute_rows(ctx, in, 3, -1, pm, out) == KF_ERR_ARG);
    KFT_CHECK(kf_permute_rows(ctx, in, INT64_MAX, 16, pm, out) == KF_ERR_ARG);
    kf_free(ctx);
}

/* ---- ranges and centroids ---- */

KFT_TEST(cluster_ranges_centroids_weights)
{
    kf_ctx *ctx = ctx1();
    const int64_t sl[6] = {0, 0, 2, 2, 2, 4};
    const double xv[12] = {0, 0, 2, 4, 1, 1, 2, 2, 3, 3, 5, 7};
    const double wv[6] = {1, 3, 1, 1, 2, 0.5};
    for (int t = 0; t < 2; t++) {
        kf_dtype dt = t ? KF_FLOAT64 : KF_FLOAT32;
        void *x = as_dtype(xv, 12, dt), *w = as_dtype(wv, 6, dt);
        void *cent = as_dtype((double[12]){0}, 12, dt), *wt = as_dtype((double[6]){0}, 6, dt);
        int64_t ranges[12];
        KFT_CHECK(kf_cluster_ranges(ctx, dt, x, 6, 2, sl, 6, NULL, ranges, cent, wt) == KF_OK);
        const int64_t want[12] = {0, 2, 2, 2, 2, 5, 5, 5, 5, 6, 6, 6};
        KFT_CHECK(memcmp(ranges, want, sizeof want) == 0);
        KFT_CHECK(kft_get(cent, dt, 0) == 1 && kft_get(cent, dt, 1) == 2);   /* (0,0),(2,4) */
        KFT_CHECK(kft_get(cent, dt, 4) == 2 && kft_get(cent, dt, 5) == 2);   /* 3 points */
        KFT_CHECK(isnan(kft_get(cent, dt, 2)) && isnan(kft_get(cent, dt, 11))); /* empty */
        KFT_CHECK(kft_get(wt, dt, 0) == 2 && kft_get(wt, dt, 2) == 3 && kft_get(wt, dt, 1) == 0);
        /* Weighted: cluster 0 = (0*1 + 2*3)/4, (0*1 + 4*3)/4; weights summed. */
        KFT_CHECK(kf_cluster_ranges(ctx, dt, x, 6, 2, sl, 6, w, ranges, cent, wt) == KF_OK);
        KFT_CHECK(kft_get(cent, dt, 0) == 1.5 && kft_get(cent, dt, 1) == 3);
        KFT_CHECK(kft_get(wt, dt, 0) == 4 && kft_get(wt, dt, 2) == 4 && kft_get(wt, dt, 4) == 0.5);
        KFT_CHECK(kft_get(cent, dt, 8) == 5 && kft_get(cent, dt, 9) == 7);
        free(x);
        free(w);
        free(cent);
        free(wt);
    }
    /* Ranges only: x may be NULL. */
    int64_t ranges[12];
    KFT_CHECK(kf_cluster_ranges(ctx, KF_FLOAT64, NULL, 6, 0, sl, 6, NULL, ranges, NULL, NULL) ==
              KF_OK);
    KFT_CHECK(ranges[9] == 6);
    const int64_t unsorted[4] = {0, 2, 1, 1};
    KFT_CHECK(kf_cluster_ranges(ctx, KF_FLOAT64, NULL, 4, 1, unsorted, 3, NULL, ranges, NULL,
                                NULL) == KF_ERR_ARG);
    KFT_CHECKF(has(kf_errmsg(ctx), "sorted_labels[2] = 1 follows 2"), "%s", kf_errmsg(ctx));
    KFT_CHECK(kf_cluster_ranges(ctx, KF_FLOAT64, NULL, 4, 1, unsorted, 2, NULL, ranges, NULL,
                                NULL) == KF_ERR_ARG);
    KFT_CHECK(has(kf_errmsg(ctx), "is not in 0..1"));
    KFT_CHECK(kf_cluster_ranges(ctx, KF_FLOAT64, NULL, 4, 1, unsorted, 3, NULL, ranges,
                                ranges, NULL) == KF_ERR_ARG); /* centroids need x */
    KFT_CHECK(kf_cluster_ranges(ctx, KF_FLOAT64, NULL, 4, 1, unsorted, 3, NULL, NULL, NULL,
                                NULL) == KF_ERR_ARG);
    kf_free(ctx);
}

/* ---- allocation failures ---- */

/* Runs call(arg) with the n-th allocation failing, n = 0, 1, ... until a run
 * needs no injected failure; each injected run must return KF_ERR_NOMEM with
 * a message (LSan, in the sanitizer run, checks that nothing leaked). */
static void sweep(const char *name, int (*call)(kf_ctx *, void *), void *arg)
{
    kf_ctx *ctx = ctx1();
    int bad = 0;
    for (int64_t n = 0; n < 10000; n++) {
        int64_t before = kft_failures();
        kft_fail_after(n);
        int rc = call(ctx, arg);
        kft_fail_after(-1);
        if (kft_failures() == before) {
            KFT_CHECKF(rc == KF_OK, "%s: %s without injection", name, kf_status_name(rc));
            break;
        }
        if (rc != KF_ERR_NOMEM || !kf_errmsg(ctx)[0]) {
            bad++;
            kft_check(0, __FILE__, __LINE__, "injected failure gives KF_ERR_NOMEM",
                      "%s: allocation %lld failed, got %s '%s'", name, (long long)n,
                      kf_status_name(rc), kf_errmsg(ctx));
        }
    }
    KFT_CHECK(bad == 0);
    kf_free(ctx);
}

typedef struct cloud_arg {
    double x[60];
    int64_t labels[30], perm[30], iperm[30], ranges[60];
    double cent[60];
} cloud_arg;

/* A failing call must leave labels as they were (KF_ERR_NOMEM: nothing written). */
static int untouched(const cloud_arg *c, int rc)
{
    for (int k = 0; k < 30 && rc != KF_OK; k++)
        if (c->labels[k] != -7)
            return KF_ERR_INTERNAL;
    return rc;
}

static int call_grid(kf_ctx *ctx, void *a)
{
    cloud_arg *c = a;
    int64_t C;
    for (int k = 0; k < 30; k++)
        c->labels[k] = -7;
    return untouched(c, kf_grid_cluster(ctx, KF_FLOAT64, c->x, 30, 2, 0.3, c->labels, &C));
}

static int call_kmeans(kf_ctx *ctx, void *a)
{
    cloud_arg *c = a;
    int64_t C;
    for (int k = 0; k < 30; k++)
        c->labels[k] = -7;
    return untouched(c, kf_kmeans(ctx, KF_FLOAT64, c->x, 30, 2, 0.3, 3, c->labels, &C, c->cent));
}

static int call_sort_sparse(kf_ctx *ctx, void *a)
{
    cloud_arg *c = a;
    int64_t labels[30];
    for (int k = 0; k < 30; k++)
        labels[k] = (k * 7 % 30) * 1000000;
    return kf_sort_clusters(ctx, labels, 30, 30000000, c->perm, c->iperm);
}

static int call_ranges(kf_ctx *ctx, void *a)
{
    cloud_arg *c = a;
    int64_t sl[30];
    for (int k = 0; k < 30; k++)
        sl[k] = k / 4;
    return kf_cluster_ranges(ctx, KF_FLOAT64, c->x, 30, 2, sl, 8, NULL, c->ranges, c->cent, NULL);
}

KFT_TEST(cluster_nomem)
{
    cloud_arg c;
    kft_rng g;
    kft_rng_seed(&g, 9);
    for (int k = 0; k < 60; k++)
        c.x[k] = kft_uniform(&g, 0, 1);
    sweep("kf_grid_cluster", call_grid, &c);
    sweep("kf_kmeans", call_kmeans, &c);
    sweep("kf_sort_clusters", call_sort_sparse, &c);
    sweep("kf_cluster_ranges", call_ranges, &c);
}
