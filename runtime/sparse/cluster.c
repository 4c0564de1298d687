/* cluster.c -- clustering helpers of block-sparse runs: grid labels, k-means, sort by label, per-cluster ranges and centroids. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/sparse/ranges.h"

/* A cell index must stay exact in a double and far from int64 overflow:
 * 2^52 cells per axis is both, and no real cloud needs more. */
#define KFR_MAX_CELLS 4503599627370496.0 /* 2^52 */

/* ---- small shared pieces ---- */

static void setx(kf_dtype dt, void *x, int64_t k, double v)
{
    if (dt == KF_FLOAT64)
        ((double *)x)[k] = v;
    else
        ((float *)x)[k] = (float)v;
}

/* malloc(count * size) with the product checked; NULL if it overflows. */
static void *xmalloc(int64_t count, size_t size)
{
    if (count < 0 || (uint64_t)count > SIZE_MAX / size)
        return NULL;
    return malloc(count ? (size_t)count * size : 1);
}

static int nomem(kf_ctx *ctx, const char *who, const char *what, int64_t count)
{
    return kfr_error(ctx, KF_ERR_NOMEM, "%s: out of memory for %s (%lld entries)", who, what,
                     (long long)count);
}

void kfr_msort(int64_t *a, int64_t *tmp, int64_t n,
               int (*cmp)(const void *c, int64_t a, int64_t b), const void *c)
{
    int64_t *src = a, *dst = tmp;
    for (int64_t w = 1; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int64_t i = lo, j = mid, k = lo;
            while (i < mid && j < hi)
                dst[k++] = cmp(c, src[j], src[i]) < 0 ? src[j++] : src[i++];
            while (i < mid)
                dst[k++] = src[i++];
            while (j < hi)
                dst[k++] = src[j++];
        }
        int64_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != a)
        memcpy(a, src, (size_t)n * sizeof *a);
}

/* The API checks every clustering call shares. */
static int check_cloud(kf_ctx *ctx, const char *who, kf_dtype dtype, const void *x, int64_t n,
                       int64_t d)
{
    if (dtype != KF_FLOAT32 && dtype != KF_FLOAT64)
        return kfr_error(ctx, KF_ERR_ARG, "%s: dtype %d is not KF_FLOAT32 or KF_FLOAT64", who,
                         (int)dtype);
    if (n < 0)
        return kfr_error(ctx, KF_ERR_ARG, "%s: n = %lld is negative", who, (long long)n);
    if (d < 1)
        return kfr_error(ctx, KF_ERR_ARG, "%s: d = %lld, expected >= 1", who, (long long)d);
    int64_t count, bytes;
    if (__builtin_mul_overflow(n, d, &count) ||
        __builtin_mul_overflow(count, (int64_t)(dtype == KF_FLOAT64 ? 8 : 4), &bytes) ||
        (uint64_t)bytes > SIZE_MAX)
        return kfr_error(ctx, KF_ERR_ARG, "%s: %lld points of dim %lld overflow the address space",
                         who, (long long)n, (long long)d);
    if (n > 0 && !x)
        return kfr_error(ctx, KF_ERR_ARG, "%s: x is NULL with n = %lld", who, (long long)n);
    return KF_OK;
}

static int check_eps(kf_ctx *ctx, const char *who, double eps)
{
    if (!(eps > 0) || !isfinite(eps))
        return kfr_error(ctx, KF_ERR_ARG, "%s: eps = %g, expected a finite value > 0", who, eps);
    return KF_OK;
}

/* ---- grid labels ---- */

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

typedef struct cells_cmp {
    const int64_t *cells; /* (n, d) */
    int64_t d;
} cells_cmp;

/* Lexicographic order of the cells of two points. */
static int cmp_cells(const void *vc, int64_t a, int64_t b)
{
    const cells_cmp *c = vc;
    const int64_t *pa = c->cells + a * c->d, *pb = c->cells + b * c->d;
    for (int64_t k = 0; k < c->d; k++)
        if (pa[k] != pb[k])
            return pa[k] < pb[k] ? -1 : 1;
    return 0;
}

/* Min and max per coordinate, rejecting NaN and inf. */
static int bounds(kf_ctx *ctx, const char *who, const char *xname, kf_dtype dt, const void *x,
                  int64_t n, int64_t d, double *lo, double *hi)
{
    for (int64_t k = 0; k < d; k++) {
        lo[k] = INFINITY;
        hi[k] = -INFINITY;
    }
    for (int64_t p = 0; p < n; p++)
        for (int64_t k = 0; k < d; k++) {
            double v = kfr_getx(dt, x, p * d + k);
            if (!isfinite(v))
                return kfr_error(ctx, KF_ERR_ARG,
                                 "%s: point %lld has a non-finite coordinate: %s[%lld][%lld] = %g",
                                 who, (long long)p, xname, (long long)p, (long long)k, v);
            lo[k] = v < lo[k] ? v : lo[k];
            hi[k] = v > hi[k] ? v : hi[k];
        }
    return KF_OK;
}

int kfr_grid_last(kf_ctx *ctx, const char *who, const char *xname, const double *lo,
                  const double *hi, int64_t d, double eps, double *last)
{
    for (int64_t k = 0; k < d; k++) {
        double cells_k = (hi[k] - lo[k]) / eps;
        if (!(cells_k < KFR_MAX_CELLS))
            return kfr_error(ctx, KF_ERR_ARG,
                             "%s: eps = %g is too small: coordinate %lld of %s spans %g, more "
                             "than 2^52 cells",
                             who, eps, (long long)k, xname, hi[k] - lo[k]);
        last[k] = floor(cells_k);
    }
    return KF_OK;
}

int kfr_grid_labels(kf_ctx *ctx, const char *who, const char *xname, kf_dtype dtype,
                    const void *x, int64_t n, int64_t d, double eps, int64_t *labels,
                    int64_t *nclusters)
{
    *nclusters = 0;
    if (n == 0)
        return KF_OK;
    int rc = KF_OK;
    double *lo = xmalloc(2 * d, sizeof *lo), *hi = lo ? lo + d : NULL;
    int64_t *cells = xmalloc(n * d, sizeof *cells);
    int64_t tsize = 1;
    while (tsize < 2 * n)
        tsize *= 2;
    int64_t *table = xmalloc(tsize, sizeof *table);
    int64_t *reps = xmalloc(n, sizeof *reps); /* first point of each distinct cell */
    /* Everything is allocated before labels is touched: a failure writes nothing. */
    int64_t *order = xmalloc(n, sizeof *order), *tmp = xmalloc(n, sizeof *tmp);
    if (!lo || !cells || !table || !reps || !order || !tmp) {
        rc = nomem(ctx, who, "grid cells", n * d);
        goto done;
    }
    rc = bounds(ctx, who, xname, dtype, x, n, d, lo, hi);
    if (rc == KF_OK)
        rc = kfr_grid_last(ctx, who, xname, lo, hi, d, eps, hi); /* hi: the last cells */
    if (rc != KF_OK)
        goto done;
    for (int64_t p = 0; p < n; p++)
        for (int64_t k = 0; k < d; k++)
            cells[p * d + k] = kfr_grid_cell(kfr_getx(dtype, x, p * d + k), lo[k], hi[k], eps);

    /* Distinct cells by hashing (O(n)); provisional labels in first-seen order. */
    for (int64_t s = 0; s < tsize; s++)
        table[s] = -1;
    cells_cmp cc = {cells, d};
    int64_t C = 0;
    for (int64_t p = 0; p < n; p++) {
        uint64_t h = 0x9e3779b97f4a7c15ull;
        for (int64_t k = 0; k < d; k++)
            h = mix(h ^ (uint64_t)cells[p * d + k]);
        int64_t s = (int64_t)(h & (uint64_t)(tsize - 1));
        while (table[s] >= 0 && cmp_cells(&cc, reps[table[s]], p) != 0)
            s = (s + 1) & (tsize - 1);
        if (table[s] < 0) {
            table[s] = C;
            reps[C++] = p;
        }
        labels[p] = table[s];
    }

    /* Only the C distinct cells are sorted, through their representative
     * points; tmp[provisional] = final label. */
    for (int64_t c = 0; c < C; c++)
        order[c] = reps[c];
    kfr_msort(order, tmp, C, cmp_cells, &cc);
    /* order now lists representative points; map each back to its class. */
    for (int64_t r = 0; r < C; r++)
        tmp[labels[order[r]]] = r;
    for (int64_t p = 0; p < n; p++)
        labels[p] = tmp[labels[p]];
    *nclusters = C;
done:
    free(lo);
    free(cells);
    free(table);
    free(reps);
    free(order);
    free(tmp);
    return rc;
}

int kf_grid_cluster(kf_ctx *ctx, kf_dtype dtype, const void *x, int64_t n, int64_t d, double eps,
                    int64_t *labels, int64_t *nclusters)
{
    static const char who[] = "kf_grid_cluster";
    if (!ctx)
        return KF_ERR_ARG;
    kfr_clear_error(ctx);
    int rc = check_cloud(ctx, who, dtype, x, n, d);
    if (rc == KF_OK)
        rc = check_eps(ctx, who, eps);
    if (rc != KF_OK)
        return rc;
    if (!nclusters || (n > 0 && !labels))
        return kfr_error(ctx, KF_ERR_ARG, "%s: %s is NULL", who, nclusters ? "labels" : "nclusters");
    return kfr_grid_labels(ctx, who, "x", dtype, x, n, d, eps, labels, nclusters);
}

/* ---- per-cluster statistics ---- */

void kfr_cluster_boxes(kf_dtype dtype, const void *x, int64_t n, int64_t d, const int64_t *labels,
                       int64_t C, double *box)
{
    for (int64_t c = 0; c < C; c++)
        for (int64_t k = 0; k < d; k++) {
            box[c * 2 * d + k] = INFINITY;
            box[c * 2 * d + d + k] = -INFINITY;
        }
    for (int64_t p = 0; p < n; p++) {
        double *b = box + labels[p] * 2 * d;
        for (int64_t k = 0; k < d; k++) {
            double v = kfr_getx(dtype, x, p * d + k);
            b[k] = v < b[k] ? v : b[k];
            b[d + k] = v > b[d + k] ? v : b[d + k];
        }
    }
}

int kfr_cluster_stats(kf_ctx *ctx, const char *who, kf_dtype dtype, const void *x, int64_t n,
                      int64_t d, const int64_t *labels, int64_t C, int64_t *counts, double *cent,
                      double *radius)
{
    memset(counts, 0, (size_t)C * sizeof *counts);
    if (cent)
        memset(cent, 0, (size_t)(C * d) * sizeof *cent);
    for (int64_t p = 0; p < n; p++) {
        int64_t c = labels[p];
        counts[c]++;
        if (cent)
            for (int64_t k = 0; k < d; k++)
                cent[c * d + k] += kfr_getx(dtype, x, p * d + k);
    }
    if (!cent)
        return KF_OK;
    for (int64_t c = 0; c < C; c++)
        for (int64_t k = 0; k < d; k++)
            cent[c * d + k] = counts[c] ? cent[c * d + k] / (double)counts[c] : NAN;
    if (!radius)
        return KF_OK;
    for (int64_t c = 0; c < C; c++)
        radius[c] = counts[c] ? 0 : NAN;
    for (int64_t p = 0; p < n; p++) {
        int64_t c = labels[p];
        double s = 0;
        for (int64_t k = 0; k < d; k++) {
            double t = kfr_getx(dtype, x, p * d + k) - cent[c * d + k];
            s += t * t;
        }
        s = sqrt(s);
        radius[c] = s > radius[c] ? s : radius[c];
    }
    (void)ctx;
    (void)who;
    return KF_OK;
}

/* ---- k-means ---- */

/* One k-means assignment step as pool tasks: task t handles the points of
 * block t, with its own coordinate buffer pt + t*d and change counter. */
typedef struct assign_job {
    kf_dtype dt;
    const void *x;
    int64_t n, d, block;
    const kfr_kdtree *tree;
    double *pt;       /* (ntasks, d) */
    int64_t *labels;
    int64_t *changed; /* (ntasks) */
} assign_job;

/* Assigns the block's points to their nearest centroid (ties: the lowest
 * index), so the result does not depend on the search order or on the
 * threads: an exact kd-tree search seeded with the current centroid. */
static void assign_block(void *vj, int64_t t)
{
    assign_job *j = vj;
    double *pt = j->pt + t * j->d;
    int64_t p1 = (t + 1) * j->block < j->n ? (t + 1) * j->block : j->n, changed = 0;
    for (int64_t p = t * j->block; p < p1; p++) {
        for (int64_t k = 0; k < j->d; k++)
            pt[k] = kfr_getx(j->dt, j->x, p * j->d + k);
        int64_t bi = kfr_kd_nearest(j->tree, pt, j->labels[p]);
        changed += bi != j->labels[p];
        j->labels[p] = bi;
    }
    j->changed[t] = changed;
}

/* Removes clusters with no points, keeping the order of the others. */
static int64_t drop_empty(int64_t *labels, int64_t n, int64_t C, int64_t d, const int64_t *counts,
                          double *cent, int64_t *remap)
{
    int64_t m = 0;
    for (int64_t c = 0; c < C; c++) {
        remap[c] = counts[c] ? m : -1;
        if (counts[c]) {
            memmove(cent + m * d, cent + c * d, (size_t)d * sizeof *cent);
            m++;
        }
    }
    if (m != C)
        for (int64_t p = 0; p < n; p++)
            labels[p] = remap[labels[p]];
    return m;
}

int kfr_kmeans(kf_ctx *ctx, const char *who, const char *xname, kf_dtype dtype, const void *x,
               int64_t n, int64_t d, double eps, int iters, int64_t *labels, int64_t *nclusters,
               double *centroids)
{
    *nclusters = 0;
    if (n == 0)
        return KF_OK;
    /* Everything, the kd-tree's storage included, is allocated before
     * labels is touched (at most n clusters): a failure writes nothing. */
    int64_t ntasks = (int64_t)kfr_pool_threads(ctx->pool) * 4; /* a few blocks per worker */
    ntasks = ntasks < n ? ntasks : n;
    int64_t *counts = xmalloc(n, sizeof *counts), *tmp = xmalloc(n, sizeof *tmp);
    int64_t *kidx = xmalloc(n, sizeof *kidx), *kdim = xmalloc(n, sizeof *kdim);
    int64_t *changed = xmalloc(ntasks, sizeof *changed);
    double *pt = xmalloc(ntasks * d, sizeof *pt);
    int64_t C = 0;
    int rc = KF_OK;
    if (!counts || !tmp || !kidx || !kdim || !pt || !changed) {
        rc = nomem(ctx, who, "k-means state", n);
        goto done;
    }
    rc = kfr_grid_labels(ctx, who, xname, dtype, x, n, d, eps, labels, &C);
    if (rc != KF_OK)
        goto done;
    assign_job job = {dtype, x, n, d, (n + ntasks - 1) / ntasks, NULL, pt, labels, changed};
    kfr_cluster_stats(ctx, who, dtype, x, n, d, labels, C, counts, centroids, NULL);
    for (int it = 0; it < iters; it++) {
        kfr_kdtree tree;
        kfr_kd_init(&tree, centroids, C, d, kidx, kdim, tmp);
        job.tree = &tree;
        kfr_pool_run(ctx->pool, ntasks, assign_block, &job);
        int64_t moved = 0;
        for (int64_t t = 0; t < ntasks; t++)
            moved += changed[t];
        if (moved == 0)
            break; /* converged: centroids already are the means of these labels */
        kfr_cluster_stats(ctx, who, dtype, x, n, d, labels, C, counts, centroids, NULL);
        C = drop_empty(labels, n, C, d, counts, centroids, tmp);
    }
    *nclusters = C;
done:
    free(counts);
    free(tmp);
    free(kidx);
    free(kdim);
    free(pt);
    free(changed);
    return rc;
}

int kf_kmeans(kf_ctx *ctx, kf_dtype dtype, const void *x, int64_t n, int64_t d, double eps,
              int iters, int64_t *labels, int64_t *nclusters, void *centroids)
{
    static const char who[] = "kf_kmeans";
    if (!ctx)
        return KF_ERR_ARG;
    kfr_clear_error(ctx);
    int rc = check_cloud(ctx, who, dtype, x, n, d);
    if (rc == KF_OK)
        rc = check_eps(ctx, who, eps);
    if (rc != KF_OK)
        return rc;
    if (iters < 0)
        return kfr_error(ctx, KF_ERR_ARG, "%s: iters = %d is negative", who, iters);
    if (!nclusters || (n > 0 && !labels))
        return kfr_error(ctx, KF_ERR_ARG, "%s: %s is NULL", who, nclusters ? "labels" : "nclusters");
    double *cent = xmalloc(n * d, sizeof *cent);
    if (!cent)
        return nomem(ctx, who, "centroids", n * d);
    rc = kfr_kmeans(ctx, who, "x", dtype, x, n, d, eps, iters, labels, nclusters, cent);
    if (rc == KF_OK && centroids)
        for (int64_t k = 0; k < *nclusters * d; k++)
            setx(dtype, centroids, k, cent[k]);
    free(cent);
    return rc;
}

/* ---- sorting by label ---- */

static int cmp_label(const void *c, int64_t a, int64_t b)
{
    const int64_t *l = c;
    return l[a] < l[b] ? -1 : l[a] > l[b];
}

int kfr_sort_labels(kf_ctx *ctx, const char *who, const int64_t *labels, int64_t n, int64_t C,
                    int64_t *perm, int64_t *iperm)
{
    int64_t top = 0; /* labels are < top; a counting array of top + 1 */
    for (int64_t p = 0; p < n; p++)
        top = labels[p] + 1 > top ? labels[p] + 1 : top;
    (void)C;
    if ((top - 1024) / 4 <= n) {
        int64_t *start = calloc((size_t)top + 1, sizeof *start);
        if (!start)
            return nomem(ctx, who, "label counts", top + 1);
        for (int64_t p = 0; p < n; p++)
            start[labels[p] + 1]++;
        for (int64_t c = 0; c < top; c++)
            start[c + 1] += start[c];
        for (int64_t p = 0; p < n; p++)
            perm[start[labels[p]]++] = p;
        free(start);
    } else {
        /* Sparse labels (a few points among many clusters): a counting array
         * would be mostly empty, so sort the points themselves instead. */
        int64_t *tmp = xmalloc(n, sizeof *tmp);
        if (!tmp)
            return nomem(ctx, who, "sort buffer", n);
        for (int64_t p = 0; p < n; p++)
            perm[p] = p;
        kfr_msort(perm, tmp, n, cmp_label, labels);
        free(tmp);
    }
    if (iperm)
        for (int64_t k = 0; k < n; k++)
            iperm[perm[k]] = k;
    return KF_OK;
}

int kf_sort_clusters(kf_ctx *ctx, const int64_t *labels, int64_t n, int64_t nclusters,
                     int64_t *perm, int64_t *iperm)
{
    static const char who[] = "kf_sort_clusters";
    if (!ctx)
        return KF_ERR_ARG;
    kfr_clear_error(ctx);
    if (n < 0 || nclusters < 0)
        return kfr_error(ctx, KF_ERR_ARG, "%s: n = %lld and nclusters = %lld, expected both >= 0",
                         who, (long long)n, (long long)nclusters);
    if (n > 0 && (!labels || !perm))
        return kfr_error(ctx, KF_ERR_ARG, "%s: %s is NULL with n = %lld", who,
                         labels ? "perm" : "labels", (long long)n);
    for (int64_t p = 0; p < n; p++)
        if (labels[p] < 0 || labels[p] >= nclusters)
            return kfr_error(ctx, KF_ERR_ARG, "%s: labels[%lld] = %lld is not in 0..%lld", who,
                             (long long)p, (long long)labels[p], (long long)nclusters - 1);
    return kfr_sort_labels(ctx, who, labels, n, nclusters, perm, iperm);
}

int kf_permute_rows(kf_ctx *ctx, const void *in, int64_t n, int64_t rowbytes, const int64_t *perm,
                    void *out)
{
    static const char who[] = "kf_permute_rows";
    if (!ctx)
        return KF_ERR_ARG;
    kfr_clear_error(ctx);
    int64_t bytes;
    if (n < 0 || rowbytes < 0)
        return kfr_error(ctx, KF_ERR_ARG, "%s: n = %lld and rowbytes = %lld, expected both >= 0",
                         who, (long long)n, (long long)rowbytes);
    if (__builtin_mul_overflow(n, rowbytes, &bytes) || (uint64_t)bytes > SIZE_MAX)
        return kfr_error(ctx, KF_ERR_ARG, "%s: %lld rows of %lld bytes overflow the address space",
                         who, (long long)n, (long long)rowbytes);
    if (bytes == 0)
        return KF_OK;
    if (!in || !out || !perm)
        return kfr_error(ctx, KF_ERR_ARG, "%s: %s is NULL", who,
                         !in ? "in" : !out ? "out" : "perm");
    uintptr_t a = (uintptr_t)in, b = (uintptr_t)out;
    if (a < b + (uintptr_t)bytes && b < a + (uintptr_t)bytes)
        return kfr_error(ctx, KF_ERR_ARG, "%s: in and out overlap", who);
    for (int64_t k = 0; k < n; k++)
        if (perm[k] < 0 || perm[k] >= n)
            return kfr_error(ctx, KF_ERR_ARG, "%s: perm[%lld] = %lld is not in 0..%lld", who,
                             (long long)k, (long long)perm[k], (long long)n - 1);
    const char *src = in;
    char *dst = out;
    for (int64_t k = 0; k < n; k++)
        memcpy(dst + k * rowbytes, src + perm[k] * rowbytes, (size_t)rowbytes);
    return KF_OK;
}

/* ---- ranges and centroids of sorted clusters ---- */

int kf_cluster_ranges(kf_ctx *ctx, kf_dtype dtype, const void *x, int64_t n, int64_t d,
                      const int64_t *sorted_labels, int64_t nclusters, const void *w,
                      int64_t *ranges, void *centroids, void *weights)
{
    static const char who[] = "kf_cluster_ranges";
    if (!ctx)
        return KF_ERR_ARG;
    kfr_clear_error(ctx);
    if (dtype != KF_FLOAT32 && dtype != KF_FLOAT64)
        return kfr_error(ctx, KF_ERR_ARG, "%s: dtype %d is not KF_FLOAT32 or KF_FLOAT64", who,
                         (int)dtype);
    if (n < 0 || nclusters < 0)
        return kfr_error(ctx, KF_ERR_ARG, "%s: n = %lld and nclusters = %lld, expected both >= 0",
                         who, (long long)n, (long long)nclusters);
    /* x and d matter only for centroids. */
    int rc = centroids ? check_cloud(ctx, who, dtype, x, n, d) : KF_OK;
    if (rc != KF_OK)
        return rc;
    if (n > 0 && !sorted_labels)
        return kfr_error(ctx, KF_ERR_ARG, "%s: sorted_labels is NULL with n = %lld", who,
                         (long long)n);
    if (nclusters > 0 && !ranges)
        return kfr_error(ctx, KF_ERR_ARG, "%s: ranges is NULL with nclusters = %lld", who,
                         (long long)nclusters);
    for (int64_t p = 0; p < n; p++) {
        int64_t l = sorted_labels[p];
        if (l < 0 || l >= nclusters)
            return kfr_error(ctx, KF_ERR_ARG, "%s: sorted_labels[%lld] = %lld is not in 0..%lld",
                             who, (long long)p, (long long)l, (long long)nclusters - 1);
        if (p > 0 && l < sorted_labels[p - 1])
            return kfr_error(ctx, KF_ERR_ARG,
                             "%s: sorted_labels[%lld] = %lld follows %lld: the labels are not "
                             "sorted (kf_sort_clusters and kf_permute_rows first)",
                             who, (long long)p, (long long)l, (long long)sorted_labels[p - 1]);
    }
    double *acc = NULL;
    if (centroids && !(acc = xmalloc(d, sizeof *acc)))
        return nomem(ctx, who, "a centroid", d);
    int64_t p = 0;
    for (int64_t c = 0; c < nclusters; c++) {
        int64_t s = p;
        while (p < n && sorted_labels[p] == c)
            p++;
        ranges[2 * c] = s;
        ranges[2 * c + 1] = p;
        /* A cluster is a contiguous slice, so its sums need d doubles only. */
        double wsum = 0;
        if (acc)
            memset(acc, 0, (size_t)d * sizeof *acc);
        for (int64_t q = s; q < p; q++) {
            double wq = w ? kfr_getx(dtype, w, q) : 1;
            wsum += wq;
            if (acc)
                for (int64_t k = 0; k < d; k++)
                    acc[k] += wq * kfr_getx(dtype, x, q * d + k);
        }
        if (weights)
            setx(dtype, weights, c, wsum);
        if (acc)
            for (int64_t k = 0; k < d; k++)
                setx(dtype, centroids, c * d + k, p > s ? acc[k] / wsum : NAN);
    }
    free(acc);
    return KF_OK;
}
