/* ranges.c -- a block-sparsity pattern at the API boundary: validation, then pool tasks. */
#include <stdlib.h>

#include "runtime/sparse/ranges.h"

/* About this many tasks per worker, as in run.c: enough to even out blocks
 * of unequal cost, few enough that the per-task overhead stays invisible. */
#define KFR_TASKS_PER_THREAD 4

/* The triple of one axis, with the names messages use. */
typedef struct triple {
    int64_t nc, nred;
    const int64_t *ranges, *slices, *red;
    const char *rname, *sname, *redname, *ncname, *nredname, *rowsname, *innername;
} triple;

static triple pick(const kf_ranges *rg, int axis)
{
    triple t;
    if (axis == 1)
        t = (triple){rg->nci, rg->nredj, rg->ranges_i, rg->slices_i, rg->redranges_j,
                     "ranges_i", "slices_i", "redranges_j", "nci", "nredj", "M", "N"};
    else
        t = (triple){rg->ncj, rg->nredi, rg->ranges_j, rg->slices_j, rg->redranges_i,
                     "ranges_j", "slices_j", "redranges_i", "ncj", "nredi", "N", "M"};
    return t;
}

#define WHO "kf_run_ranges"

/* One half-open range [a[0], a[1]) of array `name` entry q within [0, hi]. */
static int check_range(kf_ctx *ctx, const char *name, int64_t q, const int64_t *a, int64_t hi,
                       const char *hiname)
{
    long long s = a[0], e = a[1];
    if (s > e)
        return kfr_error(ctx, KF_ERR_ARG, WHO ": %s[%lld] = [%lld, %lld) is reversed", name,
                         (long long)q, s, e);
    if (s < 0)
        return kfr_error(ctx, KF_ERR_ARG, WHO ": %s[%lld] = [%lld, %lld) starts below 0", name,
                         (long long)q, s, e);
    if (e > hi)
        return kfr_error(ctx, KF_ERR_ARG,
                         WHO ": %s[%lld] = [%lld, %lld) ends beyond the %lld rows of %s", name,
                         (long long)q, s, e, (long long)hi, hiname);
    return KF_OK;
}

int kfr_ranges_check(kf_ctx *ctx, const kf_ranges *rg, int axis, int64_t rows, int64_t inner)
{
    if (!rg)
        return kfr_error(ctx, KF_ERR_ARG, WHO ": the ranges (kf_ranges *) are NULL");
    if (axis != 0 && axis != 1)
        return kfr_error(ctx, KF_ERR_ARG, WHO ": axis %d is not 0 or 1", axis);
    if (rows < 0 || inner < 0)
        return kfr_error(ctx, KF_ERR_ARG, WHO ": negative sizes %lld x %lld", (long long)rows,
                         (long long)inner);
    triple t = pick(rg, axis);
    if (t.nc < 0)
        return kfr_error(ctx, KF_ERR_ARG, WHO ": %s = %lld is negative", t.ncname,
                         (long long)t.nc);
    if (t.nred < 0)
        return kfr_error(ctx, KF_ERR_ARG, WHO ": %s = %lld is negative", t.nredname,
                         (long long)t.nred);
    if (t.nc > 0 && !t.ranges)
        return kfr_error(ctx, KF_ERR_ARG, WHO ": %s is NULL but %s = %lld", t.rname, t.ncname,
                         (long long)t.nc);
    if (t.nc > 0 && !t.slices)
        return kfr_error(ctx, KF_ERR_ARG, WHO ": %s is NULL but %s = %lld", t.sname, t.ncname,
                         (long long)t.nc);
    if (t.nred > 0 && !t.red)
        return kfr_error(ctx, KF_ERR_ARG, WHO ": %s is NULL but %s = %lld", t.redname,
                         t.nredname, (long long)t.nred);

    for (int64_t k = 0; k < t.nc; k++) {
        const int64_t *r = t.ranges + 2 * k;
        int rc = check_range(ctx, t.rname, k, r, rows, t.rowsname);
        if (rc != KF_OK)
            return rc;
        if (k > 0 && r[0] < r[-1])
            return kfr_error(ctx, KF_ERR_ARG,
                             WHO ": %s[%lld] = [%lld, %lld) overlaps or precedes %s[%lld] = "
                             "[%lld, %lld): cluster ranges must be sorted and disjoint",
                             t.rname, (long long)k, (long long)r[0], (long long)r[1], t.rname,
                             (long long)(k - 1), (long long)r[-2], (long long)r[-1]);
    }
    for (int64_t k = 0; k < t.nc; k++) {
        int64_t s = t.slices[k];
        if (k == 0 && s < 0)
            return kfr_error(ctx, KF_ERR_ARG, WHO ": %s[0] = %lld is negative", t.sname,
                             (long long)s);
        if (k > 0 && s < t.slices[k - 1])
            return kfr_error(ctx, KF_ERR_ARG,
                             WHO ": %s[%lld] = %lld is less than %s[%lld] = %lld: slices must "
                             "be non-decreasing",
                             t.sname, (long long)k, (long long)s, t.sname, (long long)(k - 1),
                             (long long)t.slices[k - 1]);
        if (s > t.nred)
            return kfr_error(ctx, KF_ERR_ARG, WHO ": %s[%lld] = %lld is beyond %s = %lld",
                             t.sname, (long long)k, (long long)s, t.nredname,
                             (long long)t.nred);
    }
    for (int64_t q = 0; q < t.nred; q++) {
        int rc = check_range(ctx, t.redname, q, t.red + 2 * q, inner, t.innername);
        if (rc != KF_OK)
            return rc;
    }
    return KF_OK;
}

/* Inner pairs per row of cluster k (as a double: overlapping reduced ranges
 * could in principle exceed int64). */
static double pairs_of(const triple *t, int64_t k)
{
    int64_t q0 = k ? t->slices[k - 1] : 0, q1 = t->slices[k];
    double p = 0;
    for (int64_t q = q0; q < q1; q++)
        p += (double)(t->red[2 * q + 1] - t->red[2 * q]);
    return p;
}

/* Appends [r0, r1) cut into `pieces` near-equal blocks, or counts them when
 * out is NULL. */
static void emit(kfr_task *out, int64_t *n, int64_t r0, int64_t r1, int64_t pieces,
                 const int64_t *jr, int64_t nr)
{
    int64_t len = r1 - r0;
    if (pieces > len)
        pieces = len;
    for (int64_t p = 0; p < pieces; p++) {
        if (out) {
            /* Cut points len*p/pieces, computed without overflowing len*p. */
            int64_t a = r0 + p * (len / pieces) + (p * (len % pieces)) / pieces;
            int64_t b = r0 + (p + 1) * (len / pieces) + ((p + 1) * (len % pieces)) / pieces;
            out[*n] = (kfr_task){a, b, jr, nr};
        }
        (*n)++;
    }
}

static int64_t ceil_div(int64_t a, int64_t b)
{
    return a / b + (a % b != 0);
}

/* One pass over the pattern: counts the tasks (out NULL) or writes them. */
static int64_t walk(const triple *t, int64_t rows, double cap_work, int64_t cap_rows,
                    kfr_task *out)
{
    int64_t n = 0, pos = 0, neutral0 = 0; /* [neutral0, pos) is a pending neutral run */
    for (int64_t k = 0; k <= t->nc; k++) {
        int64_t s = k < t->nc ? t->ranges[2 * k] : rows;
        int64_t e = k < t->nc ? t->ranges[2 * k + 1] : rows;
        /* Rows between clusters, and clusters with nothing to reduce, extend
         * the neutral run; anything else ends it. */
        double pairs = k < t->nc && e > s ? pairs_of(t, k) : 0;
        pos = s;
        if (pairs == 0 && k < t->nc) {
            pos = e;
            continue;
        }
        if (pos > neutral0)
            emit(out, &n, neutral0, pos, ceil_div(pos - neutral0, cap_rows), NULL, 0);
        if (k == t->nc)
            break;
        int64_t q0 = k ? t->slices[k - 1] : 0;
        double per_row = pairs + 1;
        double rows_fit = cap_work / per_row; /* rows one task may hold */
        int64_t pieces = rows_fit >= (double)(e - s) ? 1
                         : rows_fit < 1          ? e - s
                                                 : ceil_div(e - s, (int64_t)rows_fit);
        emit(out, &n, s, e, pieces, t->red + 2 * q0, t->slices[k] - q0);
        neutral0 = pos = e;
    }
    return n;
}

double kfr_ranges_pairs(const kf_ranges *rg, int axis)
{
    triple t = pick(rg, axis);
    double p = 0;
    for (int64_t k = 0; k < t.nc; k++)
        p += (double)(t.ranges[2 * k + 1] - t.ranges[2 * k]) * pairs_of(&t, k);
    return p;
}

int kfr_ranges_tasks(kf_ctx *ctx, const kf_ranges *rg, int axis, int64_t rows, int threads,
                     kfr_task **tasks, int64_t *ntasks)
{
    return kfr_ranges_tasks_fine(ctx, rg, axis, rows, threads, 0, tasks, ntasks);
}

int kfr_ranges_tasks_fine(kf_ctx *ctx, const kf_ranges *rg, int axis, int64_t rows, int threads,
                          double max_work, kfr_task **tasks, int64_t *ntasks)
{
    *tasks = NULL;
    *ntasks = 0;
    triple t = pick(rg, axis);
    if (threads < 1)
        threads = 1;
    double work = 0;
    int64_t covered = 0;
    for (int64_t k = 0; k < t.nc; k++) {
        int64_t len = t.ranges[2 * k + 1] - t.ranges[2 * k];
        covered += len;
        work += (double)len * (pairs_of(&t, k) + 1);
    }
    work += (double)(rows - covered); /* neutral rows: one write each */
    int64_t parts = (int64_t)threads * KFR_TASKS_PER_THREAD;
    double cap_work = work / (double)parts;
    if (max_work > 0 && cap_work > max_work)
        cap_work = max_work;
    int64_t cap_rows = rows / parts + 1;
    int64_t n = walk(&t, rows, cap_work, cap_rows, NULL);
    if (n == 0)
        return KF_OK;
    kfr_task *out = malloc((size_t)n * sizeof *out);
    if (!out)
        return kfr_error(ctx, KF_ERR_NOMEM, WHO ": out of memory for %lld tasks", (long long)n);
    int64_t m = walk(&t, rows, cap_work, cap_rows, out);
    if (m != n) {
        free(out);
        return kfr_error(ctx, KF_ERR_INTERNAL, WHO ": task count changed (%lld, %lld)",
                         (long long)n, (long long)m);
    }
    *tasks = out;
    *ntasks = n;
    return KF_OK;
}
