/* kdtree.c -- an in-place kd-tree over cluster centroids: exact nearest (k-means) and radius (planner) searches. */
#include <math.h>
#include <stdlib.h>

#include "runtime/sparse/ranges.h"

static void *xmalloc(int64_t count, size_t size)
{
    if (count < 0 || (uint64_t)count > SIZE_MAX / size)
        return NULL;
    return malloc(count ? (size_t)count * size : 1);
}

/* A kd-tree stored in place: t->idx is a permutation of the points; the
 * node of range [lo, hi) is its middle entry mid = (lo + hi) / 2, which
 * splits along t->dim[mid] at that point's coordinate; [lo, mid) holds
 * points with coordinates <= the split, (mid, hi) points >= it. Ranges of
 * at most KFR_KD_LEAF points are scanned. */
#define KFR_KD_LEAF 8

typedef struct kd_cmp {
    const double *pts;
    int64_t d, dim;
} kd_cmp;

static int cmp_kd(const void *vc, int64_t a, int64_t b)
{
    const kd_cmp *c = vc;
    double u = c->pts[a * c->d + c->dim], v = c->pts[b * c->d + c->dim];
    return u < v ? -1 : u > v ? 1 : (a > b) - (a < b);
}

static void kd_build(kfr_kdtree *t, int64_t *tmp, int64_t lo, int64_t hi)
{
    if (hi - lo <= KFR_KD_LEAF)
        return;
    /* Split along the widest coordinate of this range. */
    int64_t dim = 0;
    double widest = -1;
    for (int64_t k = 0; k < t->d; k++) {
        double a = INFINITY, b = -INFINITY;
        for (int64_t q = lo; q < hi; q++) {
            double v = t->pts[t->idx[q] * t->d + k];
            a = v < a ? v : a;
            b = v > b ? v : b;
        }
        if (b - a > widest) {
            widest = b - a;
            dim = k;
        }
    }
    kd_cmp c = {t->pts, t->d, dim};
    kfr_msort(t->idx + lo, tmp, hi - lo, cmp_kd, &c);
    int64_t mid = lo + (hi - lo) / 2;
    t->dim[mid] = dim;
    kd_build(t, tmp, lo, mid);
    kd_build(t, tmp, mid + 1, hi);
}

void kfr_kd_init(kfr_kdtree *t, const double *pts, int64_t n, int64_t d, int64_t *idx,
                    int64_t *dim, int64_t *tmp)
{
    *t = (kfr_kdtree){pts, n, d, idx, dim};
    for (int64_t k = 0; k < n; k++)
        t->idx[k] = k;
    kd_build(t, tmp, 0, n);
}

int kfr_kd_build(kfr_kdtree *t, const double *pts, int64_t n, int64_t d)
{
    int64_t *idx = xmalloc(n, sizeof *idx), *dim = xmalloc(n, sizeof *dim);
    int64_t *tmp = xmalloc(n, sizeof *tmp);
    if (!idx || !dim || !tmp) {
        free(idx);
        free(dim);
        free(tmp);
        *t = (kfr_kdtree){0};
        return KF_ERR_NOMEM;
    }
    kfr_kd_init(t, pts, n, d, idx, dim, tmp);
    free(tmp);
    return KF_OK;
}

void kfr_kd_free(kfr_kdtree *t)
{
    free(t->idx);
    free(t->dim);
    t->idx = t->dim = NULL;
}

/* Squared distance, abandoned (returning a value > limit) once it exceeds limit. */
static double dist2(const double *a, const double *b, int64_t d, double limit)
{
    double s = 0;
    for (int64_t k = 0; k < d && s <= limit; k++) {
        double t = a[k] - b[k];
        s += t * t;
    }
    return s;
}

/* Nearest point to q in [lo, hi); (best, *bi) improves on ties by index. */
static void kd_nearest(const kfr_kdtree *t, const double *q, int64_t lo, int64_t hi,
                       double *best, int64_t *bi)
{
    if (hi - lo <= KFR_KD_LEAF) {
        for (int64_t s = lo; s < hi; s++) {
            int64_t c = t->idx[s];
            double v = dist2(q, t->pts + c * t->d, t->d, *best);
            if (v < *best || (v == *best && c < *bi)) {
                *best = v;
                *bi = c;
            }
        }
        return;
    }
    int64_t mid = lo + (hi - lo) / 2, c = t->idx[mid];
    double diff = q[t->dim[mid]] - t->pts[c * t->d + t->dim[mid]];
    double v = dist2(q, t->pts + c * t->d, t->d, *best);
    if (v < *best || (v == *best && c < *bi)) {
        *best = v;
        *bi = c;
    }
    /* The far side lies at least |diff| away: visit it unless that alone is
     * strictly worse (a tie may still win on its index). */
    if (diff < 0) {
        kd_nearest(t, q, lo, mid, best, bi);
        if (diff * diff <= *best)
            kd_nearest(t, q, mid + 1, hi, best, bi);
    } else {
        kd_nearest(t, q, mid + 1, hi, best, bi);
        if (diff * diff <= *best)
            kd_nearest(t, q, lo, mid, best, bi);
    }
}

int64_t kfr_kd_nearest(const kfr_kdtree *t, const double *q, int64_t guess)
{
    double best = dist2(q, t->pts + guess * t->d, t->d, INFINITY);
    int64_t bi = guess;
    kd_nearest(t, q, 0, t->n, &best, &bi);
    return bi;
}

static void kd_within(const kfr_kdtree *t, const double *q, double r2, int64_t lo, int64_t hi,
                      void (*fn)(void *, int64_t, double), void *user)
{
    if (hi - lo <= KFR_KD_LEAF) {
        for (int64_t s = lo; s < hi; s++) {
            double v = dist2(q, t->pts + t->idx[s] * t->d, t->d, r2);
            if (v < r2)
                fn(user, t->idx[s], v);
        }
        return;
    }
    int64_t mid = lo + (hi - lo) / 2, c = t->idx[mid];
    double diff = q[t->dim[mid]] - t->pts[c * t->d + t->dim[mid]];
    double v = dist2(q, t->pts + c * t->d, t->d, r2);
    if (v < r2)
        fn(user, c, v);
    if (diff < 0 || diff * diff < r2)
        kd_within(t, q, r2, lo, mid, fn, user);
    if (diff > 0 || diff * diff < r2)
        kd_within(t, q, r2, mid + 1, hi, fn, user);
}

void kfr_kd_within(const kfr_kdtree *t, const double *q, double r2,
                   void (*fn)(void *user, int64_t i, double dist2), void *user)
{
    kd_within(t, q, r2, 0, t->n, fn, user);
}
