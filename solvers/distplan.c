/*
 * distplan.c -- kf_plan_block_sparse_dist: the block-sparse planner of one
 * cloud against itself across MPI ranks, none holding more than its share
 * of the points (docs/scale-out.md, issue 16).
 *
 *   sort      kfs_dist_sort: rows by (grid cell, input index)      distsort.c
 *   stats     each rank's cells numbered, their counts, centroids,
 *             radii and boxes; one allgatherv makes every cluster's
 *             statistics known everywhere (C (3d + 2) doubles)
 *   cuts      the wanted split moved to the nearest cluster start
 *   balance   one alltoallv (indices, points) gives each rank its rows
 *   pattern   kfr_kept_pairs of the rank's clusters against all
 *   j side    one alltoallv of the points of the hull its pattern reads
 *   within    the within-cutoff sample on the rows the one-process
 *             planner samples, summed across ranks
 *
 * Why it is the one-process planner's plan bit for bit: the sorted order is
 * (distsort.c says why), grid labels number the cells in that order, a
 * cluster's points arrive in input order so its centroid sums run in the
 * order kfr_cluster_stats runs them, min and max are exact, and kept and the
 * within hits are integer counts (exact in double below 2^53).
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/rt.h"
#include "runtime/sparse/ranges.h"
#include "solvers/solvers.h"

static const char who[] = "kf_plan_block_sparse_dist";

void kf_dist_plan_free(kf_dist_plan *p)
{
    if (!p)
        return;
    free(p->xj);
    free(p->index);
    kf_blocks_free(p->blocks);
    free(p);
}

/* What the planner allocates for itself, freed in one place. */
typedef struct work {
    kfs_sorted srt;
    int64_t *labels;                 /* (srt.n) local cluster of each sorted row */
    double *mine, *all;              /* (Cl, R), (C, R) packed cluster statistics */
    int64_t *gath;                   /* (2P) counts and offsets of a gather */
    int64_t *cnt;                    /* (4P) exchange counts and offsets */
    int64_t *bounds;                 /* (P + 1) the ranks' rows after the cuts */
    int64_t *want;                   /* (2P) every rank's j hull */
    int64_t *counts, *starts;        /* (C), (C + 1) every cluster's size and first row */
    double *cent, *radius, *box;     /* (C d), (C), (C 2d) */
    int64_t *rowptr, *cols;          /* the rank's kept pairs (CSR) */
    int64_t *rgi, *rgj;              /* local cluster ranges of the pattern */
    void *xown;                      /* (rows, d) the rank's points after the balance */
} work;

static void work_free(work *w)
{
    kfs_sorted_free(&w->srt);
    free(w->labels), free(w->mine), free(w->all), free(w->gath), free(w->cnt);
    free(w->bounds), free(w->want), free(w->counts), free(w->starts), free(w->cent);
    free(w->radius), free(w->box), free(w->rowptr), free(w->cols), free(w->rgi), free(w->rgj);
    free(w->xown);
}

static int nomem(kf_ctx *ctx, const char *what, int64_t count)
{
    return kfr_error(ctx, KF_ERR_NOMEM, "%s: out of memory for %s (%lld entries)", who, what,
                     (long long)count);
}

static int exchange_failed(kf_ctx *ctx, int rc, const char *what)
{
    return kfr_error(ctx, rc == KF_ERR_NOMEM ? KF_ERR_NOMEM : KF_ERR_INTERNAL,
                     "%s: the exchange of %s failed (status %d)", who, what, rc);
}

static int64_t overlap(int64_t a0, int64_t a1, int64_t b0, int64_t b1)
{
    int64_t lo = a0 > b0 ? a0 : b0, hi = a1 < b1 ? a1 : b1;
    return hi > lo ? hi - lo : 0;
}

/* Collective: rows [want0[r], want1[r]) of a sorted array to every rank r,
 * from the ranks holding them (rank q holds [hold[q], hold[q + 1]), the
 * holds tiling the array). src: this rank's held rows; dst: room for its
 * wanted rows. cnt: 4P scratch. One alltoallv. */
static int move_rows(kf_comm *c, int P, int me, const int64_t *hold, const int64_t *want0,
                     const int64_t *want1, const void *src, void *dst, size_t rowbytes,
                     int64_t *cnt)
{
    int64_t *sc = cnt, *sd = cnt + P, *rc = cnt + 2 * P, *rd = cnt + 3 * P;
    for (int r = 0; r < P; r++) {
        sc[r] = overlap(hold[me], hold[me + 1], want0[r], want1[r]);
        sd[r] = sc[r] ? (want0[r] > hold[me] ? want0[r] : hold[me]) - hold[me] : 0;
        rc[r] = overlap(hold[r], hold[r + 1], want0[me], want1[me]);
        rd[r] = rc[r] ? (hold[r] > want0[me] ? hold[r] : want0[me]) - want0[me] : 0;
    }
    return kfs_coll_alltoallv(c, src, sc, sd, dst, rc, rd, rowbytes);
}

int64_t kfs_nearest_start(const int64_t *starts, int64_t C, int64_t t)
{
    int64_t lo = 0, hi = C; /* the last start <= t, by bisection */
    while (lo < hi) {
        int64_t m = lo + (hi - lo + 1) / 2;
        if (starts[m] <= t)
            lo = m;
        else
            hi = m - 1;
    }
    int64_t a = starts[lo];
    if (lo == C || a == t)
        return a;
    int64_t b = starts[lo + 1];
    return t - a <= b - t ? a : b;
}

/* Argument checks every rank makes alike or agrees on. */
static int check_args(kf_ctx *ctx, kf_comm *comm, kf_dtype dtype, const void *x, int64_t n,
                      int64_t d, int64_t row0, double eps, double cutoff, const int64_t *split)
{
    int P = comm ? kf_comm_size(comm) : 1;
    if (dtype != KF_FLOAT32 && dtype != KF_FLOAT64)
        return kfr_error(ctx, KF_ERR_ARG, "%s: dtype %d is not KF_FLOAT32 or KF_FLOAT64", who,
                         (int)dtype);
    if (d < 1 || d > INT_MAX / 64)
        return kfr_error(ctx, KF_ERR_ARG, "%s: d = %lld, expected 1..%d", who, (long long)d,
                         INT_MAX / 64);
    if (!(eps > 0) || !isfinite(eps))
        return kfr_error(ctx, KF_ERR_ARG, "%s: eps = %g, expected a finite value > 0", who, eps);
    if (!(cutoff >= 0) || !isfinite(cutoff))
        return kfr_error(ctx, KF_ERR_ARG, "%s: cutoff = %g, expected a finite value >= 0", who,
                         cutoff);
    if (n < 0 || row0 < 0 || (n > 0 && !x))
        return kfr_error(ctx, KF_ERR_ARG, "%s: n = %lld, row0 = %lld, x %s: expected n, row0 "
                         ">= 0 and x given for n > 0", who, (long long)n, (long long)row0,
                         x ? "given" : "NULL");
    for (int r = 0; split && r < P; r++)
        if (split[r] < 0)
            return kfr_error(ctx, KF_ERR_ARG, "%s: split[%d] = %lld, expected >= 0", who, r,
                             (long long)split[r]);
    return KF_OK;
}

/* Numbers the rank's cells (cells never straddle ranks) and packs each
 * one's count, centroid, radius and box (R = 3d + 2 doubles) into w->mine. */
static int local_stats(kf_ctx *ctx, work *w, int64_t *Cl)
{
    const kfs_sorted *s = &w->srt;
    int64_t n = s->n, d = s->d, R = 3 * d + 2, C = 0;
    w->labels = kfs_alloc(n, sizeof *w->labels);
    if (!w->labels)
        return nomem(ctx, "the labels", n);
    for (int64_t q = 0; q < n; q++) {
        if (q == 0 || memcmp(s->cells + q * d, s->cells + (q - 1) * d, sizeof(int64_t) * (size_t)d))
            C++;
        w->labels[q] = C - 1;
    }
    *Cl = C;
    int64_t *counts = kfs_alloc(C, sizeof *counts);
    double *cent = kfs_alloc(C * d, sizeof *cent), *radius = kfs_alloc(C, sizeof *radius);
    double *box = kfs_alloc(C * 2 * d, sizeof *box);
    w->mine = kfs_alloc(C * R, sizeof *w->mine);
    int rc = KF_OK;
    if (!counts || !cent || !radius || !box || !w->mine) {
        rc = nomem(ctx, "the clusters' statistics", C * R);
    } else {
        kfr_cluster_stats(ctx, who, s->dtype, s->x, n, d, w->labels, C, counts, cent, radius);
        kfr_cluster_boxes(s->dtype, s->x, n, d, w->labels, C, box);
        for (int64_t c = 0; c < C; c++) {
            double *r = w->mine + c * R;
            r[0] = (double)counts[c];
            memcpy(r + 1, cent + c * d, sizeof(double) * (size_t)d);
            r[1 + d] = radius[c];
            memcpy(r + 2 + d, box + c * 2 * d, sizeof(double) * (size_t)(2 * d));
        }
    }
    free(counts), free(cent), free(radius), free(box);
    return rc;
}

/* Collective: every cluster's statistics on every rank, and their starts. */
static int gather_stats(kf_ctx *ctx, kf_comm *c, int P, work *w, int64_t Cl, int64_t *C_out)
{
    int64_t d = w->srt.d, R = 3 * d + 2;
    int rc = kfs_coll_allgather_i64(c, Cl, w->gath);
    if (rc != KF_OK)
        return exchange_failed(ctx, rc, "the cluster counts");
    int64_t C = 0;
    for (int r = 0; r < P; r++)
        w->gath[P + r] = C, C += w->gath[r];
    *C_out = C;
    rc = KF_OK;
    int64_t CR;
    if (__builtin_mul_overflow(C, R, &CR))
        rc = nomem(ctx, "the clusters' statistics", C);
    if (rc == KF_OK) {
        w->all = kfs_alloc(CR, sizeof *w->all);
        w->counts = kfs_alloc(C, sizeof *w->counts);
        w->starts = kfs_alloc(C + 1, sizeof *w->starts);
        w->cent = kfs_alloc(C * d, sizeof *w->cent);
        w->radius = kfs_alloc(C, sizeof *w->radius);
        w->box = kfs_alloc(C * 2 * d, sizeof *w->box);
        if (!w->all || !w->counts || !w->starts || !w->cent || !w->radius || !w->box)
            rc = nomem(ctx, "the clusters' statistics", CR);
    }
    if ((rc = kfs_comm_agree(ctx, c, rc)) != KF_OK)
        return rc;
    rc = kfs_coll_allgatherv(c, w->mine, w->all, w->gath, w->gath + P, sizeof(double) * (size_t)R);
    if (rc != KF_OK)
        return exchange_failed(ctx, rc, "the clusters' statistics");
    free(w->mine), w->mine = NULL;
    w->starts[0] = 0;
    for (int64_t k = 0; k < C; k++) {
        const double *r = w->all + k * R;
        w->counts[k] = (int64_t)r[0];
        w->starts[k + 1] = w->starts[k] + w->counts[k];
        memcpy(w->cent + k * d, r + 1, sizeof(double) * (size_t)d);
        w->radius[k] = r[1 + d];
        memcpy(w->box + k * 2 * d, r + 2 + d, sizeof(double) * (size_t)(2 * d));
    }
    free(w->all), w->all = NULL;
    return KF_OK;
}

/* The fraction of the N^2 pairs at most cutoff apart, on the rows the
 * one-process planner samples (input index floor(s N / S), s < S): the rank
 * counts the hits of its own sampled rows; the sum is over ranks. */
static void within_hits(const kf_dist_plan *p, const work *w, int64_t cl0, int64_t S,
                        double cutoff, double *hits)
{
    int64_t N = p->n, d = p->d;
    double c2 = cutoff * cutoff;
    *hits = 0;
    int64_t a = 0; /* the local cluster of row q */
    for (int64_t q = 0; q < p->rows; q++) {
        while (w->starts[cl0 + a + 1] - p->row0 <= q)
            a++;
        int64_t i = p->index[q];
        int64_t s = (int64_t)(((__int128)i * S + N - 1) / N);
        if (s >= S || (int64_t)((__int128)s * N / S) != i)
            continue;
        const void *xi = (const char *)p->xj + (size_t)((p->row0 - p->j0 + q) * d) *
                                                   (p->dtype == KF_FLOAT64 ? 8 : 4);
        for (int64_t e = w->rowptr[a]; e < w->rowptr[a + 1]; e++) {
            int64_t b = w->cols[e];
            for (int64_t j = w->starts[b]; j < w->starts[b + 1]; j++) {
                double d2 = 0;
                for (int64_t k = 0; k < d; k++) {
                    double t = kfr_getx(p->dtype, xi, k) -
                               kfr_getx(p->dtype, p->xj, (j - p->j0) * d + k);
                    d2 += t * t;
                }
                *hits += d2 <= c2;
            }
        }
    }
}

kf_dist_plan *kf_plan_block_sparse_dist(kf_ctx *ctx, kf_comm *comm, kf_dtype dtype, const void *x,
                                        int64_t n, int64_t d, int64_t row0, double eps,
                                        double cutoff, const int64_t *split)
{
    if (!ctx)
        return NULL;
    kfr_clear_error(ctx);
    double t0 = kfs_now();
    int P = comm ? kf_comm_size(comm) : 1, me = comm ? kf_comm_rank(comm) : 0;
    work w = {0};
    kf_dist_plan *p = NULL;
    int rc = check_args(ctx, comm, dtype, x, n, d, row0, eps, cutoff, split);
    if (rc == KF_OK) {
        p = calloc(1, sizeof *p);
        w.gath = kfs_alloc(2 * (int64_t)P, sizeof *w.gath);
        w.cnt = kfs_alloc(4 * (int64_t)P, sizeof *w.cnt);
        w.bounds = kfs_alloc((int64_t)P + 1, sizeof *w.bounds);
        w.want = kfs_alloc(2 * (int64_t)P, sizeof *w.want);
        if (!p || !w.gath || !w.cnt || !w.bounds || !w.want)
            rc = nomem(ctx, "the ranks' tables", 4 * (int64_t)P);
    }
    if ((rc = kfs_comm_agree(ctx, comm, rc)) != KF_OK)
        goto fail;
    p->d = d, p->dtype = dtype;
    size_t xrow = (dtype == KF_FLOAT64 ? 8 : 4) * (size_t)d;

    /* (1) The sort, then every cluster's statistics everywhere. */
    if ((rc = kfs_dist_sort(ctx, comm, dtype, x, n, d, row0, eps, &w.srt)) != KF_OK)
        goto fail;
    int64_t N = w.srt.N, Cl = 0, C = 0;
    p->n = N;
    rc = kfs_comm_agree(ctx, comm, local_stats(ctx, &w, &Cl));
    if (rc == KF_OK)
        rc = gather_stats(ctx, comm, P, &w, Cl, &C);
    if (rc != KF_OK)
        goto fail;
    p->nclusters = C;

    /* (2) The cuts: the wanted rows of each rank, moved to cluster starts. */
    int64_t sum = 0;
    int over = 0;
    w.bounds[0] = 0;
    for (int r = 1; r <= P; r++) {
        over |= split && __builtin_add_overflow(sum, split[r - 1], &sum);
        int64_t t = split ? sum : (int64_t)((__int128)N * r / P);
        w.bounds[r] = r == P ? N : kfs_nearest_start(w.starts, C, t < N && !over ? t : N);
    }
    if (split && (over || sum != N)) { /* the same numbers on every rank: all fail here */
        rc = over ? kfr_error(ctx, KF_ERR_ARG, "%s: split adds up to more than 2^63-1 rows", who)
                  : kfr_error(ctx, KF_ERR_ARG, "%s: split adds up to %lld rows, the ranks hold "
                              "%lld points", who, (long long)sum, (long long)N);
        goto fail;
    }
    p->row0 = w.bounds[me], p->rows = w.bounds[me + 1] - w.bounds[me];
    int64_t cl0 = 0, cl1;
    while (cl0 < C && w.starts[cl0] < p->row0)
        cl0++;
    for (cl1 = cl0; cl1 < C && w.starts[cl1] < p->row0 + p->rows; cl1++)
        ;

    /* (3) The balance: rank r gets the sorted rows [bounds[r], bounds[r+1]). */
    free(w.labels), w.labels = NULL;
    free(w.srt.cells), w.srt.cells = NULL;
    rc = kfs_coll_allgather_i64(comm, w.srt.n, w.gath);
    if (rc != KF_OK) {
        rc = exchange_failed(ctx, rc, "the row counts");
        goto fail;
    }
    int64_t *hold = w.gath; /* 2P >= P + 1 entries: the sort's rows as bounds */
    {
        int64_t acc = 0;
        for (int r = 0; r < P; r++) {
            int64_t k = hold[r];
            hold[r] = acc;
            acc += k;
        }
        hold[P] = acc;
    }
    p->index = kfs_alloc(p->rows, sizeof *p->index);
    w.xown = kfs_alloc(p->rows, xrow);
    rc = kfs_comm_agree(ctx, comm, p->index && w.xown ? KF_OK : nomem(ctx, "the rows", p->rows));
    if (rc != KF_OK)
        goto fail;
    const int64_t *b0 = w.bounds, *b1 = w.bounds + 1;
    rc = move_rows(comm, P, me, hold, b0, b1, w.srt.index, p->index, sizeof(int64_t), w.cnt);
    if (rc == KF_OK)
        rc = move_rows(comm, P, me, hold, b0, b1, w.srt.x, w.xown, xrow, w.cnt);
    if (rc != KF_OK) {
        rc = exchange_failed(ctx, rc, "the rows");
        goto fail;
    }
    kfs_sorted_free(&w.srt);

    /* (4) The pattern of the rank's clusters, and the j hull it reads. */
    int64_t nc = cl1 - cl0;
    double kept = 0;
    kfr_cstats sx = {nc, w.counts + cl0, w.cent + cl0 * d, w.radius + cl0, w.box + cl0 * 2 * d};
    kfr_cstats sy = {C, w.counts, w.cent, w.radius, w.box};
    w.rowptr = kfs_alloc(nc + 1, sizeof *w.rowptr);
    rc = w.rowptr ? kfr_kept_pairs(ctx, who, &sx, &sy, d, cutoff, w.rowptr, &w.cols, &kept)
                  : nomem(ctx, "the kept pairs", nc + 1);
    if ((rc = kfs_comm_agree(ctx, comm, rc)) != KF_OK)
        goto fail;
    int64_t jc0 = cl0, jc1 = cl1; /* the hull holds the rank's own clusters */
    for (int64_t e = 0; e < w.rowptr[nc]; e++) {
        jc0 = w.cols[e] < jc0 ? w.cols[e] : jc0;
        jc1 = w.cols[e] + 1 > jc1 ? w.cols[e] + 1 : jc1;
    }
    p->j0 = w.starts[jc0], p->nj = w.starts[jc1] - p->j0;
    rc = kfs_coll_allgather_i64(comm, p->j0, w.want);
    if (rc == KF_OK)
        rc = kfs_coll_allgather_i64(comm, p->j0 + p->nj, w.want + P);
    if (rc != KF_OK) {
        rc = exchange_failed(ctx, rc, "the j rows wanted");
        goto fail;
    }
    p->xj = kfs_alloc(p->nj, xrow);
    rc = kfs_comm_agree(ctx, comm, p->xj ? KF_OK : nomem(ctx, "the j rows", p->nj * d));
    if (rc != KF_OK)
        goto fail;
    rc = move_rows(comm, P, me, w.bounds, w.want, w.want + P, w.xown, p->xj, xrow, w.cnt);
    if (rc != KF_OK) {
        rc = exchange_failed(ctx, rc, "the j rows");
        goto fail;
    }
    free(w.xown), w.xown = NULL;

    /* (5) The rank's pattern in local numbers. */
    w.rgi = kfs_alloc(2 * nc, sizeof *w.rgi);
    w.rgj = kfs_alloc(2 * (jc1 - jc0), sizeof *w.rgj);
    rc = w.rgi && w.rgj ? KF_OK : nomem(ctx, "the pattern", 2 * (nc + jc1 - jc0));
    if (rc == KF_OK) {
        for (int64_t a = 0; a < nc; a++)
            w.rgi[2 * a] = w.starts[cl0 + a] - p->row0,
            w.rgi[2 * a + 1] = w.starts[cl0 + a + 1] - p->row0;
        for (int64_t b = jc0; b < jc1; b++)
            w.rgj[2 * (b - jc0)] = w.starts[b] - p->j0,
            w.rgj[2 * (b - jc0) + 1] = w.starts[b + 1] - p->j0;
        for (int64_t e = 0; e < w.rowptr[nc]; e++)
            w.cols[e] -= jc0;
        p->blocks = kfr_blocks_from_csr(ctx, who, w.rgi, nc, w.rgj, jc1 - jc0, w.rowptr, w.cols);
        for (int64_t e = 0; e < w.rowptr[nc]; e++)
            w.cols[e] += jc0;
        rc = p->blocks ? KF_OK : kf_status_of(ctx);
    }
    if ((rc = kfs_comm_agree(ctx, comm, rc)) != KF_OK)
        goto fail;

    /* (6) The fractions, over the whole cloud. */
    double sums[2] = {kept, 0};
    int64_t S = 0;
    if ((rc = kfs_coll_allreduce(comm, sums, 1, KF_REDUCE_SUM)) == KF_OK && N > 0) {
        double per_row = sums[0] / (double)N;
        S = per_row > 0 ? (int64_t)fmin(4096, fmax(64, 2e7 / per_row)) : 4096;
        S = S < N ? S : N;
        within_hits(p, &w, cl0, S, cutoff, &sums[1]);
        rc = kfs_coll_allreduce(comm, sums + 1, 1, KF_REDUCE_SUM);
    }
    if (rc != KF_OK) {
        rc = exchange_failed(ctx, rc, "the pair counts");
        goto fail;
    }
    p->kept_fraction = N > 0 ? sums[0] / ((double)N * (double)N) : 0;
    p->within_fraction = N > 0 ? sums[1] / (double)S / (double)N : 0;
    p->within_rows = S;
    p->total_s = kfs_now() - t0;
    /* How much of the hull the pattern reads: the points of the distinct kept
     * j-clusters (the log's figure; reuses rgj, which is no longer needed). */
    int64_t reads = 0, ncj = jc1 - jc0;
    memset(w.rgj, 0, sizeof *w.rgj * (size_t)ncj);
    for (int64_t e = 0; e < w.rowptr[nc]; e++)
        w.rgj[w.cols[e] - jc0] = 1;
    for (int64_t b = 0; b < ncj; b++)
        reads += w.rgj[b] ? w.counts[jc0 + b] : 0;
    kfr_log(ctx, KF_LOG_INFO, "%s: rank %d of %d: rows [%lld, %lld) in %lld of %lld clusters, "
            "j rows [%lld, %lld), of which the pattern reads %lld; kept %.4g of the pairs "
            "(%.4g within the cutoff), %.3g s", who, me, P, (long long)p->row0,
            (long long)(p->row0 + p->rows), (long long)nc, (long long)C, (long long)p->j0,
            (long long)(p->j0 + p->nj), (long long)reads, p->kept_fraction, p->within_fraction,
            p->total_s);
    work_free(&w);
    return p;
fail:
    work_free(&w);
    kf_dist_plan_free(p);
    return NULL;
}
