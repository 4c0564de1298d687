/*
 * kept.c -- the kept cluster pairs of a block-sparse plan (kfr_kept_pairs),
 * shared by kf_plan_block_sparse and the distributed planner
 * (solvers/distplan.c), which runs it on a rank's own i-clusters against
 * every cluster.
 *
 * The rule (plan.c says why): keep (a, b) iff the bounding boxes of their
 * points are at most `cutoff` apart AND |c_a - c_b| <= cutoff + r_a + r_b.
 * Candidates come from a kd-tree over the j-centroids, so the cost follows
 * the kept pairs, not ncx * ncy.
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/sparse/ranges.h"

/* Sorts n ids in [0, C) ascending: insertion for a few, else LSD radix by
 * bytes through tmp (n): qsort's callback per comparison was a third of
 * the planning at 7e4 clusters (640 kept ids a row). */
static void sort_ids(int64_t *a, int64_t n, int64_t *tmp, int64_t C)
{
    if (n < 32) {
        for (int64_t i = 1; i < n; i++) {
            int64_t v = a[i], k = i;
            for (; k > 0 && a[k - 1] > v; k--)
                a[k] = a[k - 1];
            a[k] = v;
        }
        return;
    }
    int64_t *src = a, *dst = tmp;
    for (int sh = 0; sh < 64 && (C - 1) >> sh; sh += 8) {
        int64_t count[257] = {0};
        for (int64_t i = 0; i < n; i++)
            count[((uint64_t)src[i] >> sh & 255) + 1]++;
        for (int b = 0; b < 256; b++)
            count[b + 1] += count[b];
        for (int64_t i = 0; i < n; i++)
            dst[count[(uint64_t)src[i] >> sh & 255]++] = src[i];
        int64_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != a)
        memcpy(a, src, (size_t)n * sizeof *a);
}

/* The growing list of kept j-clusters, filled by the kd-tree search. */
typedef struct kept_list {
    const kfr_cstats *cy;
    int64_t d;
    double cutoff, r_a;
    const double *box_a; /* (2d) */
    int64_t *cols, n, cap;
    double kept_b; /* points of the kept j-clusters of this row */
    int failed;
} kept_list;

/* The gap between two boxes (2d each: least, then largest): the distance
 * of their closest points, 0 when they overlap. */
static double box_gap2(const double *a, const double *b, int64_t d)
{
    double s = 0;
    for (int64_t k = 0; k < d; k++) {
        double g = a[k] - b[d + k], h = b[k] - a[d + k]; /* a right of b, b right of a */
        double t = g > h ? g : h;
        if (t > 0)
            s += t * t;
    }
    return s;
}

static void keep_if_close(void *u, int64_t b, double d2)
{
    kept_list *k = u;
    double thr = k->cutoff + k->r_a + k->cy->radius[b];
    if (!(d2 <= thr * thr) || k->failed ||
        !(box_gap2(k->box_a, k->cy->box + b * 2 * k->d, k->d) <= k->cutoff * k->cutoff))
        return;
    if (k->n == k->cap) {
        int64_t *bigger = (uint64_t)k->cap <= SIZE_MAX / (2 * sizeof *k->cols)
                              ? realloc(k->cols, (size_t)k->cap * 2 * sizeof *k->cols)
                              : NULL;
        if (!bigger) {
            k->failed = 1;
            return;
        }
        k->cols = bigger;
        k->cap *= 2;
    }
    k->cols[k->n++] = b;
    k->kept_b += (double)k->cy->counts[b];
}

/* For each x-centroid, the kd-tree answers which y-centroids lie within
 * cutoff + r_a + the largest r_b; each candidate is then tested with its own
 * radius and the boxes' gap. */
int kfr_kept_pairs(kf_ctx *ctx, const char *who, const kfr_cstats *cx, const kfr_cstats *cy,
                   int64_t d, double cutoff, int64_t *rowptr, int64_t **cols_out, double *kept)
{
    kept_list k = {.cy = cy, .d = d, .cutoff = cutoff, .cap = 1024};
    kfr_kdtree tree = {0};
    *cols_out = NULL;
    *kept = 0;
    k.cols = malloc((size_t)k.cap * sizeof *k.cols);
    if (!k.cols || kfr_kd_build(&tree, cy->cent, cy->C, d) != KF_OK) {
        free(k.cols);
        return kfr_error(ctx, KF_ERR_NOMEM, "%s: out of memory for %lld clusters", who,
                         (long long)cy->C);
    }
    int64_t *tmp = NULL, tmp_cap = 0; /* sort_ids' scratch, as long as the longest row */
    double maxr_y = 0;
    for (int64_t b = 0; b < cy->C; b++)
        maxr_y = cy->radius[b] > maxr_y ? cy->radius[b] : maxr_y;
    rowptr[0] = 0;
    for (int64_t a = 0; a < cx->C && !k.failed; a++) {
        k.r_a = cx->radius[a];
        k.box_a = cx->box + a * 2 * d;
        /* A hair over, so that rounding in the tree's distances never drops
         * a candidate the exact tests keep, and above 0: the tree's test is
         * strict, and a reach of 0 (cutoff 0, single points) must still find
         * the centroids it sits on. */
        double reach = cutoff + k.r_a + maxr_y;
        double r2 = fmax(reach * reach * (1 + 1e-12), DBL_MIN);
        int64_t first = k.n;
        k.kept_b = 0;
        kfr_kd_within(&tree, cx->cent + a * d, r2, keep_if_close, &k);
        /* The search finds clusters in tree order; patterns list them ascending. */
        if (k.n - first > tmp_cap) {
            int64_t *t2 = realloc(tmp, (size_t)(k.n - first) * sizeof *tmp);
            if (!t2) {
                k.failed = 1;
                break;
            }
            tmp = t2;
            tmp_cap = k.n - first;
        }
        sort_ids(k.cols + first, k.n - first, tmp, cy->C);
        rowptr[a + 1] = k.n;
        *kept += (double)cx->counts[a] * k.kept_b;
    }
    kfr_kd_free(&tree);
    free(tmp);
    if (k.failed) {
        free(k.cols);
        return kfr_error(ctx, KF_ERR_NOMEM, "%s: out of memory for %lld kept pairs", who,
                         (long long)k.n);
    }
    *cols_out = k.cols;
    return KF_OK;
}

