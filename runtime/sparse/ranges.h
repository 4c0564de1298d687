/*
 * ranges.h -- block-sparse internals shared by the runtime: validating a
 * kf_ranges at the API boundary, turning it into pool tasks, and the pieces
 * the planner builds patterns from (docs/blocksparse.md).
 *
 *   ranges.c   kfr_ranges_check, kfr_ranges_tasks
 *   cluster.c  grid labels, k-means, sort, per-cluster statistics
 *   kdtree.c   exact nearest / radius searches over centroids
 *   blocks.c   kf_blocks (from a mask, from kept pairs, transpose)
 *   kept.c     the kept cluster pairs (kd-tree search, boxes and radii)
 *   plan.c     kf_plan_block_sparse
 */
#ifndef KF_RUNTIME_RANGES_H
#define KF_RUNTIME_RANGES_H

#include <stdint.h>

#include "runtime/rt.h"

/* Element k of a float32 or float64 array, as double (clusters, planner). */
static inline double kfr_getx(kf_dtype dt, const void *x, int64_t k)
{
    return dt == KF_FLOAT64 ? ((const double *)x)[k] : (double)((const float *)x)[k];
}

/* Validates the triple of `axis` (1: ranges_i, slices_i, redranges_j over
 * rows = M and inner = N; 0: the mirror triple, rows = N, inner = M):
 * cluster ranges within [0, rows), start <= end, sorted and disjoint; slices
 * non-decreasing within [0, nred]; every reduced range within [0, inner] with
 * start <= end; non-NULL arrays where counts are positive. The other triple
 * is not read. KF_OK, or KF_ERR_ARG with a message naming the array and the
 * entry ("kf_run_ranges: ranges_i[3] = [40, 20) is reversed"). O(nc + nred). */
int kfr_ranges_check(kf_ctx *ctx, const kf_ranges *rg, int axis, int64_t rows, int64_t inner);

/* One unit of pool work: output rows [r0, r1) reduced over the nr half-open
 * inner ranges jr[0..2nr) (pointing into the caller's redranges array, so
 * it lives as long as that array). nr == 0: the rows get neutral values. */
typedef struct kfr_task {
    int64_t r0, r1;
    const int64_t *jr;
    int64_t nr;
} kfr_task;

/* The tasks of a VALIDATED pattern (kfr_ranges_check first): every row of
 * [0, rows) lies in exactly one task, tasks in increasing row order. Rows no
 * cluster covers, and clusters with an empty list, become nr = 0 tasks.
 * Clusters are cut into row blocks so that no task holds more than about
 * 1/(4 threads) of the total work (pairs, plus one per row for the neutral
 * writes) and no neutral task more than rows/(4 threads) rows, so the pool's
 * workers stay balanced. *tasks is malloc'd (free it with free()); *ntasks
 * gets its length. KF_OK or KF_ERR_NOMEM (message in ctx). */
int kfr_ranges_tasks(kf_ctx *ctx, const kf_ranges *rg, int axis, int64_t rows, int threads,
                     kfr_task **tasks, int64_t *ntasks);
/* The same with no task holding more than about max_work (pairs plus one per
 * row) either, when max_work > 0: finer tasks for a run that may switch
 * engines at a task boundary (run.c). */
int kfr_ranges_tasks_fine(kf_ctx *ctx, const kf_ranges *rg, int axis, int64_t rows, int threads,
                          double max_work, kfr_task **tasks, int64_t *ntasks);
/* The pairs (i, j) a VALIDATED pattern reduces (rows times their reduced
 * lengths; a double, as overlapping ranges could exceed int64). */
double kfr_ranges_pairs(const kf_ranges *rg, int axis);

/* ---- cluster.c ---- */
/* kf_grid_cluster without the argument checks (ctx non-NULL, n >= 0, d >= 1,
 * eps > 0 finite, arrays valid); messages start with `who` (the API call)
 * and call the array `xname`. Checks coordinates (finite) and the
 * extent/eps bound. */
int kfr_grid_labels(kf_ctx *ctx, const char *who, const char *xname, kf_dtype dtype,
                    const void *x, int64_t n, int64_t d, double eps, int64_t *labels,
                    int64_t *nclusters);
/* The grid of kfr_grid_labels, in two pieces that the distributed sort
 * (solvers/distsort.c) shares so that its cells are the planner's, bit for
 * bit. kfr_grid_last: from the cloud's least and largest coordinates lo, hi
 * (d each), last[k] the last cell index along k (last may be hi); KF_ERR_ARG
 * when a coordinate spans 2^52 cells or more. kfr_grid_cell: the cell along
 * one axis of coordinate v, relative to the lower corner (no overflow however
 * far the cloud is from the origin). Rounding is monotone, so the quotient
 * already lies in [0, last]; the clamp only guards that argument. */
int kfr_grid_last(kf_ctx *ctx, const char *who, const char *xname, const double *lo,
                  const double *hi, int64_t d, double eps, double *last);
static inline int64_t kfr_grid_cell(double v, double lo, double last, double eps)
{
    double c = __builtin_floor((v - lo) / eps);
    c = c < 0 ? 0 : c > last ? last : c;
    return (int64_t)c;
}
/* Lloyd's k-means from the grid, as kf_kmeans without argument checks;
 * centroids gets (C, d) doubles (room for n rows, or 1 row when n == 0). */
int kfr_kmeans(kf_ctx *ctx, const char *who, const char *xname, kf_dtype dtype, const void *x,
               int64_t n, int64_t d, double eps, int iters, int64_t *labels, int64_t *nclusters,
               double *centroids);
/* Per cluster c of labels (any order, all in 0..C-1): counts[c] and, when
 * non-NULL, cent (C, d) the mean point in double and radius[c] the largest
 * distance of its points to that mean (needs cent). NaN means for empty
 * clusters. Allocates nothing; returns KF_OK. */
/* Per cluster c: box (C, 2d) the bounding box of its points, box[c*2d + k]
 * the least and box[c*2d + d + k] the largest coordinate k (+inf/-inf for an
 * empty cluster), in double. Allocates nothing. */
void kfr_cluster_boxes(kf_dtype dtype, const void *x, int64_t n, int64_t d, const int64_t *labels,
                       int64_t C, double *box);
int kfr_cluster_stats(kf_ctx *ctx, const char *who, kf_dtype dtype, const void *x, int64_t n,
                      int64_t d, const int64_t *labels, int64_t C, int64_t *counts, double *cent,
                      double *radius);
/* Stable bottom-up merge sort of a[0..n) by cmp(c, a, b) < 0 (tmp has room
 * for n); for the small sets of distinct cells and clusters. */
void kfr_msort(int64_t *a, int64_t *tmp, int64_t n,
               int (*cmp)(const void *c, int64_t a, int64_t b), const void *c);
/* Stable counting sort of valid labels (0..C-1): perm and, if non-NULL,
 * iperm. KF_OK or KF_ERR_NOMEM. */
int kfr_sort_labels(kf_ctx *ctx, const char *who, const int64_t *labels, int64_t n, int64_t C,
                    int64_t *perm, int64_t *iperm);

/* ---- kdtree.c ---- */
/* A kd-tree over n points of dim d (pts, (n, d) doubles, not copied: it
 * must outlive the tree). Exact searches; used by k-means (nearest
 * centroid) and the planner (centroids within reach). */
typedef struct kfr_kdtree {
    const double *pts;
    int64_t n, d;
    int64_t *idx, *dim; /* the tree, in place (kdtree.c) */
} kfr_kdtree;
/* KF_OK or KF_ERR_NOMEM (no message: the caller words it). O(n log^2 n). */
int kfr_kd_build(kfr_kdtree *t, const double *pts, int64_t n, int64_t d);
/* The same in caller-provided storage (idx, dim, tmp: n entries each);
 * nothing to free. */
void kfr_kd_init(kfr_kdtree *t, const double *pts, int64_t n, int64_t d, int64_t *idx,
                 int64_t *dim, int64_t *tmp);
void kfr_kd_free(kfr_kdtree *t);
/* The nearest point to q, the lowest index among equally near ones; guess
 * (a valid index, n > 0) seeds the search bound. */
int64_t kfr_kd_nearest(const kfr_kdtree *t, const double *q, int64_t guess);
/* Calls fn for every point strictly closer than sqrt(r2) to q (any order). */
void kfr_kd_within(const kfr_kdtree *t, const double *q, double r2,
                   void (*fn)(void *user, int64_t i, double dist2), void *user);

/* ---- kept.c ---- */
/* What the kept-pairs rule reads of C clusters (arrays borrowed): counts
 * (C), cent (C, d) centroids, radius (C) the largest distance of a
 * cluster's points to its centroid, box (C, 2d) least then largest
 * coordinates. A view of clusters a0..a1 of a larger set is the same
 * pointers advanced by a0 rows. */
typedef struct kfr_cstats {
    int64_t C;
    const int64_t *counts;
    const double *cent, *radius, *box;
} kfr_cstats;
/* The kept pairs of x-clusters cx against y-clusters cy in CSR form:
 * rowptr (cx->C + 1) and *cols_out (malloc'd; y-cluster ids ascending in
 * each row); *kept gets the points pairs they hold (sum over kept (a, b) of
 * counts_a counts_b; exact in double below 2^53). KF_OK, or KF_ERR_NOMEM
 * with a message starting with `who` and *cols_out NULL. */
int kfr_kept_pairs(kf_ctx *ctx, const char *who, const kfr_cstats *cx, const kfr_cstats *cy,
                   int64_t d, double cutoff, int64_t *rowptr, int64_t **cols_out, double *kept);

/* ---- blocks.c ---- */
/* A pattern from kept cluster pairs in CSR form: i-cluster a keeps the
 * j-clusters cols[rowptr[a] .. rowptr[a+1]), ascending. Builds both triples
 * (merging touching ranges) in O(nci + ncj + pairs). NULL with the message in
 * ctx on failure (KF_ERR_NOMEM). Ranges must be valid (start <= end). */
kf_blocks *kfr_blocks_from_csr(kf_ctx *ctx, const char *who, const int64_t *ranges_i, int64_t nci,
                               const int64_t *ranges_j, int64_t ncj, const int64_t *rowptr,
                               const int64_t *cols);

#endif
