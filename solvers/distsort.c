/*
 * distsort.c -- the first steps of the distributed block-sparse planner
 * (docs/scale-out.md, issue 16): the points put in the planner's order
 * without any rank holding more than its slice.
 *
 *   bounds     local min/max, agreed on NaN/inf, MIN/MAX reductions     kfs_dist_bounds
 *   grid       kfr_grid_last, kfr_grid_cell: the planner's own cells
 *   local sort each rank's slice by (cell, input index)
 *   splitters  P evenly spaced cells per rank, allgathered and sorted;
 *              P - 1 of them cut the cells into the ranks' ranges
 *   exchange   one alltoallv of (input index, point) records
 *   merge      a local sort of what arrived                            kfs_dist_sort
 *
 * Why it reproduces kf_plan_block_sparse's perm_x: grid labels number the
 * distinct cells in lexicographic order and the planner's counting sort is
 * stable, so its order is by (cell, input index); the bounds here are the
 * whole cloud's (min and max are exact), the cells come from the same two
 * functions, and the ranks' ranges of cells are disjoint and increasing, so
 * concatenating the ranks' sorted rows gives that order. A NULL communicator
 * is one process: the exchanges become copies and the same code runs.
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/rt.h"
#include "runtime/sparse/ranges.h"
#include "solvers/solvers.h"

static const char who_sort[] = "kfs_dist_sort";

/* An exchange that failed fails on every rank alike (MPI's errors are
 * collective, or the job is already gone); the message says which. */
static int exchange_failed(kf_ctx *ctx, int rc, const char *what)
{
    return kfr_error(ctx, rc == KF_ERR_NOMEM ? KF_ERR_NOMEM : KF_ERR_INTERNAL,
                     "%s: the exchange of %s failed (status %d)", who_sort, what, rc);
}

/* ---- bounds ---- */

static int bounds(kf_ctx *ctx, const char *who, kf_comm *c, kf_dtype dtype, const void *x,
                  int64_t n, int64_t d, int64_t row0, double *lo, double *hi)
{
    for (int64_t k = 0; k < d; k++)
        lo[k] = INFINITY, hi[k] = -INFINITY;
    int rc = KF_OK;
    for (int64_t p = 0; p < n && rc == KF_OK; p++)
        for (int64_t k = 0; k < d; k++) {
            double v = kfr_getx(dtype, x, p * d + k);
            if (!isfinite(v)) {
                rc = kfr_error(ctx, KF_ERR_ARG, "%s: point %lld has a non-finite coordinate: "
                               "x[%lld][%lld] = %g", who, (long long)(row0 + p),
                               (long long)(row0 + p), (long long)k, v);
                break;
            }
            lo[k] = v < lo[k] ? v : lo[k];
            hi[k] = v > hi[k] ? v : hi[k];
        }
    rc = kfs_comm_agree(ctx, c, rc);
    if (rc != KF_OK || !c)
        return rc;
    if (kf_comm_allreduce(c, lo, (int)d, KF_REDUCE_MIN) != KF_OK ||
        kf_comm_allreduce(c, hi, (int)d, KF_REDUCE_MAX) != KF_OK)
        return kfr_error(ctx, KF_ERR_INTERNAL, "%s: the reduction of the bounds failed", who);
    return KF_OK;
}

int kfs_dist_bounds(kf_ctx *ctx, kf_comm *c, kf_dtype dtype, const void *x, int64_t n,
                    int64_t d, int64_t row0, double *lo, double *hi)
{
    static const char who[] = "kfs_dist_bounds";
    /* Arguments are judged alike on every rank (the same d and dtype), or
     * by the rank alone and then agreed (n, x). */
    if (dtype != KF_FLOAT32 && dtype != KF_FLOAT64)
        return kfr_error(ctx, KF_ERR_ARG, "%s: dtype %d is not KF_FLOAT32 or KF_FLOAT64", who,
                         (int)dtype);
    if (d < 1 || d > INT_MAX || !lo || !hi)
        return kfr_error(ctx, KF_ERR_ARG, "%s: d = %lld, lo and hi must be given for d >= 1",
                         who, (long long)d);
    int rc = n < 0 || row0 < 0 || (n > 0 && !x)
                 ? kfr_error(ctx, KF_ERR_ARG, "%s: n = %lld, row0 = %lld, x %s", who,
                             (long long)n, (long long)row0, x ? "given" : "NULL")
                 : KF_OK;
    rc = kfs_comm_agree(ctx, c, rc);
    return rc == KF_OK ? bounds(ctx, who, c, dtype, x, n, d, row0, lo, hi) : rc;
}

/* ---- sorting ---- */

/* Rows by cell (lexicographic), then by input index when index is set. */
typedef struct key_cmp {
    const int64_t *cells; /* (rows, d) */
    const int64_t *index; /* (rows) or NULL */
    int64_t d;
} key_cmp;

static int cmp_key(const void *vc, int64_t a, int64_t b)
{
    const key_cmp *k = vc;
    const int64_t *pa = k->cells + a * k->d, *pb = k->cells + b * k->d;
    for (int64_t j = 0; j < k->d; j++)
        if (pa[j] != pb[j])
            return pa[j] < pb[j] ? -1 : 1;
    if (k->index && k->index[a] != k->index[b])
        return k->index[a] < k->index[b] ? -1 : 1;
    return 0;
}

static int cmp_cell(const int64_t *a, const int64_t *b, int64_t d)
{
    for (int64_t j = 0; j < d; j++)
        if (a[j] != b[j])
            return a[j] < b[j] ? -1 : 1;
    return 0;
}

void kfs_sorted_free(kfs_sorted *s)
{
    if (!s)
        return;
    free(s->x), free(s->index), free(s->cells), free(s->lo);
    memset(s, 0, sizeof *s);
}

/* What kfs_dist_sort allocates for its own use, freed in one place. */
typedef struct scratch {
    int64_t *cells, *order, *tmp;  /* (n d), (n), (n): the local slice */
    int64_t *cnt;                  /* (4P): send counts, send offsets, receive counts, offsets */
    int64_t *gath;                 /* (2P): samples per rank and their offsets */
    int64_t *samp, *allsamp;       /* (P d), (S d) */
    int64_t *sidx, *stmp;          /* (S) each */
    char *send, *recv;             /* (n), (m) records */
    int64_t *rcells, *rindex;      /* (m d), (m): the received rows before the merge */
} scratch;

static void scratch_free(scratch *s)
{
    free(s->cells), free(s->order), free(s->tmp), free(s->cnt), free(s->gath);
    free(s->samp), free(s->allsamp), free(s->sidx), free(s->stmp);
    free(s->send), free(s->recv), free(s->rcells), free(s->rindex);
}

static int nomem(kf_ctx *ctx, const char *what, int64_t count)
{
    return kfr_error(ctx, KF_ERR_NOMEM, "%s: out of memory for %s (%lld entries)", who_sort,
                     what, (long long)count);
}

int kfs_dist_sort(kf_ctx *ctx, kf_comm *c, kf_dtype dtype, const void *x, int64_t n, int64_t d,
                  int64_t row0, double eps, kfs_sorted *out)
{
    if (!out)
        return kfr_error(ctx, KF_ERR_ARG, "%s: out is NULL", who_sort);
    memset(out, 0, sizeof *out);
    if (dtype != KF_FLOAT32 && dtype != KF_FLOAT64)
        return kfr_error(ctx, KF_ERR_ARG, "%s: dtype %d is not KF_FLOAT32 or KF_FLOAT64",
                         who_sort, (int)dtype);
    if (d < 1 || d > INT_MAX / 64)
        return kfr_error(ctx, KF_ERR_ARG, "%s: d = %lld, expected 1..%d", who_sort,
                         (long long)d, INT_MAX / 64);
    if (!(eps > 0) || !isfinite(eps))
        return kfr_error(ctx, KF_ERR_ARG, "%s: eps = %g, expected a finite value > 0", who_sort,
                         eps);
    int P = c ? kf_comm_size(c) : 1;
    size_t esize = dtype == KF_FLOAT64 ? 8 : 4, xrow = esize * (size_t)d;
    size_t krow = sizeof(int64_t) * (size_t)d;  /* a cell */
    size_t rec = sizeof(int64_t) + xrow; /* input index, point: the receiver recomputes cells */
    scratch s = {0};
    int rc = n < 0 || row0 < 0 || (n > 0 && !x) || n > INT_MAX
                 ? kfr_error(ctx, KF_ERR_ARG, "%s: n = %lld, row0 = %lld, x %s (a rank holds "
                             "0..2^31-1 points)", who_sort, (long long)n, (long long)row0,
                             x ? "given" : "NULL")
                 : KF_OK;
    if (rc == KF_OK) {
        s.cells = kfs_alloc(n * d, sizeof *s.cells);
        s.order = kfs_alloc(n, sizeof *s.order);
        s.tmp = kfs_alloc(n, sizeof *s.tmp);
        s.cnt = kfs_alloc(4 * (int64_t)P, sizeof *s.cnt);
        s.gath = kfs_alloc(2 * (int64_t)P, sizeof *s.gath);
        s.samp = kfs_alloc((int64_t)P * d, sizeof *s.samp);
        s.send = kfs_alloc(n, rec);
        out->lo = kfs_alloc(2 * d, sizeof *out->lo);
        if (!s.cells || !s.order || !s.tmp || !s.cnt || !s.gath || !s.samp || !s.send || !out->lo)
            rc = nomem(ctx, "the local slice", n * d);
    }
    rc = kfs_comm_agree(ctx, c, rc);
    if (rc != KF_OK)
        goto done;
    out->last = out->lo + d;
    out->d = d, out->dtype = dtype;

    /* (1) The grid: every rank the same bounds, so the same cells. */
    double *lo = out->lo, *last = out->last;
    rc = bounds(ctx, who_sort, c, dtype, x, n, d, row0, lo, last);
    if (rc != KF_OK)
        goto done;
    if (!isfinite(lo[0])) { /* no points anywhere: nothing to cut */
        for (int64_t k = 0; k < d; k++)
            lo[k] = 0, last[k] = 0;
    } else if ((rc = kfr_grid_last(ctx, who_sort, "x", lo, last, d, eps, last)) != KF_OK) {
        goto done; /* the same numbers on every rank: they all fail here */
    }
    for (int64_t p = 0; p < n; p++)
        for (int64_t k = 0; k < d; k++)
            s.cells[p * d + k] = kfr_grid_cell(kfr_getx(dtype, x, p * d + k), lo[k], last[k], eps);

    /* (2) The local sort: stable by cell, so by (cell, input index). */
    for (int64_t p = 0; p < n; p++)
        s.order[p] = p;
    key_cmp kc = {s.cells, NULL, d};
    kfr_msort(s.order, s.tmp, n, cmp_key, &kc);

    /* Splitters: P evenly spaced cells of each rank's sorted slice. */
    int64_t m = n > 0 ? P : 0, S = 0;
    for (int64_t k = 0; k < m; k++)
        memcpy(s.samp + k * d, s.cells + s.order[k * n / m] * d, krow);
    int64_t *scount = s.cnt, *sdispl = s.cnt + P, *rcount = s.cnt + 2 * P,
            *rdispl = s.cnt + 3 * P;
    rc = kfs_coll_allgather_i64(c, m, s.gath);
    if (rc != KF_OK) {
        rc = exchange_failed(ctx, rc, "the sample counts");
        goto done;
    }
    for (int r = 0; r < P; r++)
        s.gath[P + r] = S, S += s.gath[r];
    s.allsamp = kfs_alloc(S * d, sizeof *s.allsamp);
    s.sidx = kfs_alloc(S, sizeof *s.sidx);
    s.stmp = kfs_alloc(S, sizeof *s.stmp);
    rc = kfs_comm_agree(ctx, c, s.allsamp && s.sidx && s.stmp ? KF_OK
                                                               : nomem(ctx, "the samples", S * d));
    if (rc != KF_OK)
        goto done;
    rc = kfs_coll_allgatherv(c, s.samp, s.allsamp, s.gath, s.gath + P, krow);
    if (rc != KF_OK) {
        rc = exchange_failed(ctx, rc, "the samples");
        goto done;
    }
    for (int64_t k = 0; k < S; k++)
        s.sidx[k] = k;
    key_cmp sc = {s.allsamp, NULL, d};
    kfr_msort(s.sidx, s.stmp, S, cmp_key, &sc);
    /* Rank r owns the cells in [split r-1, split r): split r = sample r S / P
     * of the sorted samples (equal splitters leave a rank empty). */
    memset(scount, 0, sizeof *scount * (size_t)P);
    int dst = 0;
    for (int64_t q = 0; q < n; q++) {
        int64_t p = s.order[q];
        const int64_t *cell = s.cells + p * d;
        while (dst < P - 1 && cmp_cell(s.allsamp + s.sidx[(dst + 1) * S / P] * d, cell, d) <= 0)
            dst++;
        scount[dst]++;
        char *r = s.send + (size_t)q * rec;
        int64_t gi = row0 + p;
        memcpy(r, &gi, sizeof gi);
        memcpy(r + sizeof gi, (const char *)x + (size_t)p * xrow, xrow);
    }
    /* The slice's cells and order are not held through the exchange. */
    free(s.cells), free(s.order), free(s.tmp);
    s.cells = s.order = s.tmp = NULL;
    for (int64_t r = 0, off = 0; r < P; r++)
        sdispl[r] = off, off += scount[r];
    rc = kfs_coll_alltoall_i64(c, scount, rcount);
    if (rc != KF_OK) {
        rc = exchange_failed(ctx, rc, "the counts");
        goto done;
    }
    int64_t got = 0;
    for (int r = 0; r < P; r++)
        rdispl[r] = got, got += rcount[r];
    rc = KF_OK;
    if (got > INT_MAX)
        rc = kfr_error(ctx, KF_ERR_ARG, "%s: %lld points fall in this rank's cells, more than "
                       "2^31-1", who_sort, (long long)got);
    if (rc == KF_OK) {
        s.recv = kfs_alloc(got, rec);
        if (!s.recv)
            rc = nomem(ctx, "the received points", got * d);
    }
    rc = kfs_comm_agree(ctx, c, rc);
    if (rc != KF_OK)
        goto done;
    rc = kfs_coll_alltoallv(c, s.send, scount, sdispl, s.recv, rcount, rdispl, rec);
    if (rc != KF_OK) {
        rc = exchange_failed(ctx, rc, "the points");
        goto done;
    }
    free(s.send), s.send = NULL; /* the slice's records: not held beside the next copies */

    /* The merge: the runs from each rank are sorted; one sort by (cell,
     * input index) orders them all. The cells are recomputed from the
     * points (the same grid on every rank, so the sender's cells), which
     * halves what crosses the network; the copies below are made one at a
     * time so that at most the records, the cells, the order and one output
     * array are held together. */
    s.rcells = kfs_alloc(got * d, sizeof *s.rcells);
    s.rindex = kfs_alloc(got, sizeof *s.rindex);
    s.order = kfs_alloc(got, sizeof *s.order);
    s.tmp = kfs_alloc(got, sizeof *s.tmp);
    rc = s.rcells && s.rindex && s.order && s.tmp ? KF_OK
                                                   : nomem(ctx, "the received points", got * d);
    if ((rc = kfs_comm_agree(ctx, c, rc)) != KF_OK)
        goto done;
    for (int64_t q = 0; q < got; q++) {
        const char *r = s.recv + (size_t)q * rec;
        memcpy(s.rindex + q, r, sizeof *s.rindex);
        for (int64_t k = 0; k < d; k++) {
            double v = dtype == KF_FLOAT64 ? ((const double *)(const void *)(r + 8))[k]
                                           : (double)((const float *)(const void *)(r + 8))[k];
            s.rcells[q * d + k] = kfr_grid_cell(v, lo[k], last[k], eps);
        }
        s.order[q] = q;
    }
    key_cmp mc = {s.rcells, s.rindex, d};
    kfr_msort(s.order, s.tmp, got, cmp_key, &mc);
    free(s.tmp), s.tmp = NULL;
    out->x = kfs_alloc(got, xrow);
    out->index = s.rindex, s.rindex = NULL; /* permuted in place below, through tmp */
    rc = out->x ? KF_OK : nomem(ctx, "the sorted points", got * d);
    if (rc == KF_OK) {
        for (int64_t q = 0; q < got; q++)
            memcpy((char *)out->x + (size_t)q * xrow, s.recv + (size_t)s.order[q] * rec + 8, xrow);
        free(s.recv), s.recv = NULL;
        out->cells = kfs_alloc(got * d, sizeof *out->cells);
        if (!out->cells)
            rc = nomem(ctx, "the sorted cells", got * d);
    }
    if ((rc = kfs_comm_agree(ctx, c, rc)) != KF_OK)
        goto done;
    for (int64_t q = 0; q < got; q++)
        memcpy(out->cells + q * d, s.rcells + s.order[q] * d, krow);
    for (int64_t q = 0; q < got; q++) /* the cells are copied: rcells is scratch (got d >= got) */
        s.rcells[q] = out->index[s.order[q]];
    if (got > 0)
        memcpy(out->index, s.rcells, sizeof *out->index * (size_t)got);
    out->n = got;

    /* This rank's place in the global order. */
    rc = kfs_coll_allgather_i64(c, got, s.gath);
    if (rc != KF_OK) {
        rc = exchange_failed(ctx, rc, "the row counts");
        goto done;
    }
    int me = c ? kf_comm_rank(c) : 0;
    for (int r = 0; r < P; r++) {
        if (r == me)
            out->row0 = out->N;
        out->N += s.gath[r];
    }
done:
    scratch_free(&s);
    if (rc != KF_OK)
        kfs_sorted_free(out);
    return rc;
}
