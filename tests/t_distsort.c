/* t_distsort.c -- the distributed planner's first steps on one process (a
 * NULL communicator, the same code with the exchanges as copies): the global
 * bounds, and the sample sort's order against kf_plan_block_sparse's perm_x
 * bit for bit. The P = 2, 3 runs compare the same under mpirun
 * (tests/mpi/distsort.c, from tests/mpi/run.sh). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "kforge.h"
#include "solvers/solvers.h"
#include "testutil.h"

static kf_ctx *ctx1(void)
{
    kf_options o;
    kf_options_init(&o);
    o.threads = 1;
    return kf_new(&o);
}

/* A cloud with ties in every cell and far from the origin: n points of dim
 * d, coordinates on a coarse lattice (many points share a cell and even a
 * position) plus some spread ones. */
static void *cloud(kf_dtype dt, int64_t n, int64_t d, uint64_t seed)
{
    kft_rng g;
    kft_rng_seed(&g, seed);
    size_t es = dt == KF_FLOAT64 ? 8 : 4;
    void *x = malloc((size_t)(n * d) * es + 1);
    for (int64_t k = 0; k < n * d; k++) {
        double v = (k / d) % 3 ? floor(kft_uniform(&g, 0, 8)) / 8 : kft_uniform(&g, -1, 1);
        v = 1000 + v;
        if (dt == KF_FLOAT64)
            ((double *)x)[k] = v;
        else
            ((float *)x)[k] = (float)v;
    }
    return x;
}

/* The sort on one process is the planner's order, points and all. */
static int same_as_plan(kf_ctx *ctx, kf_dtype dt, int64_t n, int64_t d, double eps)
{
    void *x = cloud(dt, n, d, (uint64_t)(n * 31 + d));
    size_t xrow = (dt == KF_FLOAT64 ? 8 : 4) * (size_t)d;
    kf_plan *p = kf_plan_block_sparse(ctx, dt, x, n, x, n, d, eps, eps, 0);
    kfs_sorted s;
    int rc = kfs_dist_sort(ctx, NULL, dt, x, n, d, 0, eps, &s), ok = p && rc == KF_OK;
    ok = ok && s.n == n && s.N == n && s.row0 == 0 && s.d == d;
    for (int64_t q = 0; ok && q < n; q++) {
        ok = s.index[q] == p->perm_x[q] &&
             !memcmp((char *)s.x + q * xrow, (char *)x + p->perm_x[q] * xrow, xrow);
        for (int64_t k = 0; ok && q > 0 && k < d; k++) { /* cells non-decreasing */
            int64_t a = s.cells[(q - 1) * d + k], b = s.cells[q * d + k];
            if (a != b) {
                ok = a < b;
                break;
            }
        }
    }
    kf_plan_free(p);
    kfs_sorted_free(&s);
    free(x);
    return ok;
}

KFT_TEST(dist_sort_one_process_is_plan_order)
{
    kf_ctx *ctx = ctx1();
    KFT_CHECK(same_as_plan(ctx, KF_FLOAT64, 2000, 3, 0.1));
    KFT_CHECK(same_as_plan(ctx, KF_FLOAT32, 2000, 2, 0.05));
    KFT_CHECK(same_as_plan(ctx, KF_FLOAT64, 500, 1, 0.3));
    KFT_CHECK(same_as_plan(ctx, KF_FLOAT64, 1, 4, 0.3));
    KFT_CHECK(same_as_plan(ctx, KF_FLOAT32, 3000, 5, 10)); /* one cell */
    kf_free(ctx);
}

KFT_TEST(dist_sort_empty_and_offsets)
{
    kf_ctx *ctx = ctx1();
    kfs_sorted s;
    KFT_CHECK(kfs_dist_sort(ctx, NULL, KF_FLOAT64, NULL, 0, 2, 0, 0.1, &s) == KF_OK);
    KFT_CHECK(s.n == 0 && s.N == 0 && s.row0 == 0);
    kfs_sorted_free(&s);
    /* row0 shifts the input indices, not the order */
    double x[6] = {0.5, 0.1, 0.05, 0.2, 0.51, 0.1};
    KFT_CHECK(kfs_dist_sort(ctx, NULL, KF_FLOAT64, x, 3, 2, 40, 0.1, &s) == KF_OK);
    KFT_CHECK(s.n == 3 && s.index[0] == 41 && s.index[1] == 40 && s.index[2] == 42);
    kfs_sorted_free(&s);
    kf_free(ctx);
}

KFT_TEST(dist_bounds_and_errors)
{
    kf_ctx *ctx = ctx1();
    float x[6] = {3, -1, 2, 5, -4, 0};
    double lo[2], hi[2];
    KFT_CHECK(kfs_dist_bounds(ctx, NULL, KF_FLOAT32, x, 3, 2, 0, lo, hi) == KF_OK);
    KFT_CHECK(lo[0] == -4 && lo[1] == -1 && hi[0] == 3 && hi[1] == 5);
    x[3] = NAN;
    KFT_CHECK(kfs_dist_bounds(ctx, NULL, KF_FLOAT32, x, 3, 2, 700, lo, hi) == KF_ERR_ARG);
    KFT_CHECKF(strstr(kf_errmsg(ctx), "point 701 has a non-finite coordinate: x[701][1]"), "%s",
               kf_errmsg(ctx));
    kfs_sorted s;
    KFT_CHECK(kfs_dist_sort(ctx, NULL, KF_FLOAT32, x, 3, 2, 700, 0.1, &s) == KF_ERR_ARG);
    KFT_CHECKF(strstr(kf_errmsg(ctx), "kfs_dist_sort: point 701"), "%s", kf_errmsg(ctx));
    KFT_CHECK(s.n == 0 && !s.x && !s.index);
    x[3] = 1;
    KFT_CHECK(kfs_dist_sort(ctx, NULL, KF_FLOAT32, x, 3, 2, 0, 1e-300, &s) == KF_ERR_ARG);
    KFT_CHECKF(strstr(kf_errmsg(ctx), "more than 2^52 cells"), "%s", kf_errmsg(ctx));
    KFT_CHECK(kfs_dist_sort(ctx, NULL, KF_FLOAT32, x, 3, 2, 0, 0, &s) == KF_ERR_ARG);
    KFT_CHECK(kfs_dist_sort(ctx, NULL, (kf_dtype)7, x, 3, 2, 0, 0.1, &s) == KF_ERR_ARG);
    kf_free(ctx);
}

/* Allocation failure (STYLE.md point 10; the sweep of t_nomem.c): every
 * allocation of one call fails in turn; the call fails with KF_ERR_NOMEM and
 * a message and *out empty, or succeeds with the normal order. */
KFT_TEST(dist_sort_nomem_sweep)
{
    kf_ctx *ctx = ctx1();
    void *x = cloud(KF_FLOAT64, 300, 2, 7);
    kfs_sorted want;
    KFT_CHECK(kfs_dist_sort(ctx, NULL, KF_FLOAT64, x, 300, 2, 0, 0.1, &want) == KF_OK);
    int64_t n;
    for (n = 0; n < 100; n++) {
        kfs_sorted s;
        int64_t before = kft_failures();
        kft_fail_after(n);
        int rc = kfs_dist_sort(ctx, NULL, KF_FLOAT64, x, 300, 2, 0, 0.1, &s);
        kft_fail_after(-1);
        int injected = kft_failures() != before;
        if (injected && rc != KF_OK) {
            KFT_CHECKF(rc == KF_ERR_NOMEM && strstr(kf_errmsg(ctx), "out of memory"),
                       "n %lld: rc %d '%s'", (long long)n, rc, kf_errmsg(ctx));
            KFT_CHECK(s.n == 0 && !s.x && !s.index && !s.cells && !s.lo);
            continue;
        }
        KFT_CHECKF(rc == KF_OK && s.n == want.n &&
                       !memcmp(s.index, want.index, sizeof *s.index * (size_t)s.n),
                   "n %lld: rc %d", (long long)n, rc);
        kfs_sorted_free(&s);
        if (!injected)
            break;
    }
    KFT_CHECKF(n >= 15 && n < 100, "the sweep stopped at %lld allocations", (long long)n);
    kfs_sorted_free(&want);
    free(x);
    kf_free(ctx);
}
