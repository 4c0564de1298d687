/* t_distplan.c -- kf_plan_block_sparse_dist on one process (a NULL
 * communicator: the same code, the exchanges as copies) against
 * kf_plan_block_sparse bit for bit: order, points, pattern, fractions; its
 * errors and its allocation failures. The P = 1, 2, 3 runs with uneven and
 * empty slices are tests/mpi/distplan.c (tests/mpi/run.sh). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "kforge.h"
#include "testutil.h"

static kf_ctx *ctx1(void)
{
    kf_options o;
    kf_options_init(&o);
    o.threads = 1;
    return kf_new(&o);
}

/* The Swiss roll (kind 1) or a lattice cloud with many points per cell and
 * on one position (kind 0), in dt. */
static void *cloud(kf_dtype dt, int kind, int64_t n, int64_t d, uint64_t seed)
{
    size_t es = dt == KF_FLOAT64 ? 8 : 4;
    double *v = malloc(sizeof(double) * (size_t)(n * (d > 3 ? d : 3)) + 8);
    void *x = malloc(es * (size_t)(n * d) + 8);
    if (!v || !x) {
        free(v), free(x);
        return NULL;
    }
    if (kind == 1) {
        kf_gen g = {KF_GEN_SWISSROLL, n, seed};
        kf_gen_points(&g, v); /* d = 3 */
    } else {
        kft_rng g;
        kft_rng_seed(&g, seed);
        for (int64_t k = 0; k < n * d; k++)
            v[k] = (k / d) % 3 ? floor(kft_uniform(&g, 0, 8)) / 8 : kft_uniform(&g, -1, 1);
    }
    for (int64_t k = 0; k < n * d; k++) {
        if (dt == KF_FLOAT64)
            ((double *)x)[k] = v[k];
        else
            ((float *)x)[k] = (float)v[k];
    }
    free(v);
    return x;
}

static int same_array(const int64_t *a, const int64_t *b, int64_t n)
{
    return n == 0 || !memcmp(a, b, sizeof *a * (size_t)n);
}

/* Everything the one-process planner gives, and the same sorted points. */
static int same_as_plan(kf_ctx *ctx, kf_dtype dt, int kind, int64_t n, int64_t d, double eps,
                        double cutoff)
{
    void *x = cloud(dt, kind, n, d, (uint64_t)(n + 17 * d));
    if (!x)
        return 0;
    size_t xrow = (dt == KF_FLOAT64 ? 8 : 4) * (size_t)d;
    kf_plan *p = kf_plan_block_sparse(ctx, dt, x, n, x, n, d, eps, cutoff, 0);
    kf_dist_plan *q = kf_plan_block_sparse_dist(ctx, NULL, dt, x, n, d, 0, eps, cutoff, NULL);
    int ok = p && q;
    ok = ok && q->n == n && q->d == d && q->row0 == 0 && q->rows == n && q->j0 == 0 &&
         q->nj == n && q->nclusters == p->ncx && same_array(q->index, p->perm_x, n);
    for (int64_t r = 0; ok && r < n; r++)
        ok = !memcmp((char *)q->xj + (size_t)r * xrow, (char *)x + (size_t)p->perm_x[r] * xrow,
                     xrow);
    if (ok) {
        kf_ranges a, b;
        kf_blocks_view(p->blocks, &a);
        kf_blocks_view(q->blocks, &b);
        ok = a.nci == b.nci && a.nredj == b.nredj && a.ncj == b.ncj && a.nredi == b.nredi &&
             same_array(a.ranges_i, b.ranges_i, 2 * a.nci) &&
             same_array(a.slices_i, b.slices_i, a.nci) &&
             same_array(a.redranges_j, b.redranges_j, 2 * a.nredj) &&
             same_array(a.ranges_j, b.ranges_j, 2 * a.ncj) &&
             same_array(a.slices_j, b.slices_j, a.ncj) &&
             same_array(a.redranges_i, b.redranges_i, 2 * a.nredi);
    }
    ok = ok && q->kept_fraction == p->kept_fraction &&
         q->within_fraction == p->within_fraction && q->within_rows == p->within_rows;
    if (!ok && p && q)
        fprintf(stderr, "  n %lld d %lld: kept %.17g / %.17g, within %.17g / %.17g (%lld / %lld "
                "rows)\n", (long long)n, (long long)d, q->kept_fraction, p->kept_fraction,
                q->within_fraction, p->within_fraction, (long long)q->within_rows,
                (long long)p->within_rows);
    kf_plan_free(p);
    kf_dist_plan_free(q);
    free(x);
    return ok;
}

KFT_TEST(distplan_one_process_is_the_plan)
{
    kf_ctx *ctx = ctx1();
    KFT_CHECK(same_as_plan(ctx, KF_FLOAT64, 1, 3000, 3, 0.05, 0.1));
    KFT_CHECK(same_as_plan(ctx, KF_FLOAT32, 1, 3000, 3, 0.02, 0.04));
    KFT_CHECK(same_as_plan(ctx, KF_FLOAT64, 0, 2000, 2, 0.125, 0.25));
    KFT_CHECK(same_as_plan(ctx, KF_FLOAT32, 0, 1500, 4, 0.3, 0.2));
    KFT_CHECK(same_as_plan(ctx, KF_FLOAT64, 0, 700, 1, 0.01, 0));   /* cutoff 0 */
    KFT_CHECK(same_as_plan(ctx, KF_FLOAT64, 0, 500, 2, 100, 1));    /* one cell */
    KFT_CHECK(same_as_plan(ctx, KF_FLOAT64, 0, 1, 3, 0.1, 0.1));    /* one point */
    kf_free(ctx);
}

KFT_TEST(distplan_empty_cloud_and_split)
{
    kf_ctx *ctx = ctx1();
    kf_dist_plan *q = kf_plan_block_sparse_dist(ctx, NULL, KF_FLOAT64, NULL, 0, 2, 0, 0.1, 0.2,
                                                NULL);
    KFT_CHECKF(q, "%s", kf_errmsg(ctx));
    if (q) {
        kf_ranges v;
        kf_blocks_view(q->blocks, &v);
        KFT_CHECK(q->n == 0 && q->rows == 0 && q->nj == 0 && q->nclusters == 0 && v.nci == 0 &&
                  q->kept_fraction == 0 && q->within_rows == 0);
    }
    kf_dist_plan_free(q);
    /* one rank: the split must name every point */
    double x[6] = {0, 0, 1, 1, 2, 2};
    int64_t all = 3, few = 2;
    q = kf_plan_block_sparse_dist(ctx, NULL, KF_FLOAT64, x, 3, 2, 0, 0.5, 1, &all);
    KFT_CHECKF(q && q->rows == 3, "%s", kf_errmsg(ctx));
    kf_dist_plan_free(q);
    q = kf_plan_block_sparse_dist(ctx, NULL, KF_FLOAT64, x, 3, 2, 0, 0.5, 1, &few);
    KFT_CHECKF(!q && kf_status_of(ctx) == KF_ERR_ARG &&
                   strstr(kf_errmsg(ctx), "split adds up to 2 rows, the ranks hold 3 points"),
               "%s", kf_errmsg(ctx));
    int64_t huge = INT64_MAX;
    q = kf_plan_block_sparse_dist(ctx, NULL, KF_FLOAT64, x, 3, 2, 0, 0.5, 1, &huge);
    KFT_CHECKF(!q && strstr(kf_errmsg(ctx), "split adds up to 9223372036854775807 rows"), "%s",
               kf_errmsg(ctx));
    kf_free(ctx);
}

KFT_TEST(distplan_errors)
{
    kf_ctx *ctx = ctx1();
    double x[6] = {0, 0, 1, 1, 2, 2};
    int64_t neg = -1;
    static const struct {
        int dtype;
        int64_t n, d, row0;
        double eps, cutoff;
        int nullx, negsplit;
        const char *msg;
    } bad[] = {
        {7, 3, 2, 0, 0.5, 1, 0, 0, "dtype 7 is not"},
        {KF_FLOAT64, 3, 0, 0, 0.5, 1, 0, 0, "d = 0, expected 1.."},
        {KF_FLOAT64, 3, 2, 0, 0, 1, 0, 0, "eps = 0, expected a finite value > 0"},
        {KF_FLOAT64, 3, 2, 0, INFINITY, 1, 0, 0, "eps = inf"},
        {KF_FLOAT64, 3, 2, 0, 0.5, -1, 0, 0, "cutoff = -1, expected a finite value >= 0"},
        {KF_FLOAT64, 3, 2, 0, 0.5, NAN, 0, 0, "cutoff = nan"},
        {KF_FLOAT64, -1, 2, 0, 0.5, 1, 0, 0, "n = -1, row0 = 0"},
        {KF_FLOAT64, 3, 2, -4, 0.5, 1, 0, 0, "row0 = -4"},
        {KF_FLOAT64, 3, 2, 0, 0.5, 1, 1, 0, "x NULL"},
        {KF_FLOAT64, 3, 2, 0, 0.5, 1, 0, 1, "split[0] = -1, expected >= 0"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        kf_dist_plan *q = kf_plan_block_sparse_dist(
            ctx, NULL, (kf_dtype)bad[k].dtype, bad[k].nullx ? NULL : x, bad[k].n, bad[k].d,
            bad[k].row0, bad[k].eps, bad[k].cutoff, bad[k].negsplit ? &neg : NULL);
        KFT_CHECKF(!q && kf_status_of(ctx) == KF_ERR_ARG &&
                       strstr(kf_errmsg(ctx), "kf_plan_block_sparse_dist: ") &&
                       strstr(kf_errmsg(ctx), bad[k].msg),
                   "case %zu: '%s'", k, kf_errmsg(ctx));
        kf_dist_plan_free(q);
    }
    x[3] = NAN; /* point 1, column 1, reported with its input index */
    kf_dist_plan *q = kf_plan_block_sparse_dist(ctx, NULL, KF_FLOAT64, x, 3, 2, 50, 0.5, 1, NULL);
    KFT_CHECKF(!q && kf_status_of(ctx) == KF_ERR_ARG &&
                   strstr(kf_errmsg(ctx), "point 51 has a non-finite coordinate"),
               "'%s'", kf_errmsg(ctx));
    KFT_CHECK(kf_plan_block_sparse_dist(NULL, NULL, KF_FLOAT64, x, 3, 2, 0, 0.5, 1, NULL) == NULL);
    kf_dist_plan_free(NULL);
    kf_free(ctx);
}

/* Allocation failure (STYLE.md point 10): every allocation of one call fails
 * in turn; NULL with KF_ERR_NOMEM and a message, or the normal plan. */
KFT_TEST(distplan_nomem_sweep)
{
    kf_ctx *ctx = ctx1();
    void *x = cloud(KF_FLOAT64, 0, 400, 2, 9);
    kf_dist_plan *want = kf_plan_block_sparse_dist(ctx, NULL, KF_FLOAT64, x, 400, 2, 0, 0.25,
                                                   0.25, NULL);
    KFT_CHECK(want != NULL);
    int64_t n;
    for (n = 0; want && n < 200; n++) {
        int64_t before = kft_failures();
        kft_fail_after(n);
        kf_dist_plan *q = kf_plan_block_sparse_dist(ctx, NULL, KF_FLOAT64, x, 400, 2, 0, 0.25,
                                                    0.25, NULL);
        kft_fail_after(-1);
        int injected = kft_failures() != before;
        if (injected && !q) {
            KFT_CHECKF(kf_status_of(ctx) == KF_ERR_NOMEM && strstr(kf_errmsg(ctx), "out of memory"),
                       "n %lld: '%s'", (long long)n, kf_errmsg(ctx));
            continue;
        }
        KFT_CHECKF(q && q->rows == want->rows && same_array(q->index, want->index, q->rows) &&
                       q->kept_fraction == want->kept_fraction,
                   "n %lld: %s", (long long)n, q ? "a different plan" : kf_errmsg(ctx));
        kf_dist_plan_free(q);
        if (!injected)
            break;
    }
    KFT_CHECKF(n >= 30 && n < 200, "the sweep stopped at %lld allocations", (long long)n);
    kf_dist_plan_free(want);
    free(x);
    kf_free(ctx);
}
