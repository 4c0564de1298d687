/* distsort.c -- run under mpirun by tests/mpi/run.sh: the distributed sort
 * (solvers/distsort.c) against the replicated planner, bit for bit. Every
 * rank makes the same cloud, takes its slice (even, or every rank's count
 * from argv), sorts with kfs_dist_sort; rank 0 gathers the ranks' rows in
 * rank order and compares the input indices with kf_plan_block_sparse's
 * perm_x on the whole cloud, the points with x[perm_x], and checks that no
 * cell straddles two ranks. Then a NaN on the last rank's slice must fail
 * every rank with one message. Rank 0 prints "ok ..." or "FAIL ..." lines;
 * the exit status is 1 on any failure.
 *
 *   distsort DTYPE(32|64) N D EPS [COUNT0,COUNT1,...]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kforge.h"
#include "solvers/solvers.h"

/* The same cloud on every rank: a swiss-roll-like sheet with lattice ties
 * (many points in one cell, some at one position), far from the origin. */
static void *make_cloud(kf_dtype dt, int64_t n, int64_t d)
{
    size_t es = dt == KF_FLOAT64 ? 8 : 4;
    void *x = malloc((size_t)(n * d) * es + 1);
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (int64_t k = 0; k < n * d; k++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        double u = (double)(s >> 11) * 0x1p-53;
        double v = (k / d) % 4 == 0 ? floor(u * 16) / 16 : 3 * sin(7 * u) + u;
        v += 500;
        if (dt == KF_FLOAT64)
            ((double *)x)[k] = v;
        else
            ((float *)x)[k] = (float)v;
    }
    return x;
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: distsort 32|64 N D EPS [COUNTS]\n");
        return 2;
    }
    kf_dtype dt = atoi(argv[1]) == 32 ? KF_FLOAT32 : KF_FLOAT64;
    int64_t N = atoll(argv[2]), d = atoll(argv[3]);
    double eps = atof(argv[4]);
    kf_options o;
    kf_options_init(&o);
    o.threads = 1;
    kf_ctx *ctx = kf_new(&o);
    kf_comm *c = kf_comm_world(ctx);
    if (!ctx || !c) {
        fprintf(stderr, "distsort: %s\n", ctx ? kf_errmsg(ctx) : "no context");
        return 1;
    }
    int P = kf_comm_size(c), me = kf_comm_rank(c), bad = 0;
    int64_t r0 = N * me / P, r1 = N * (me + 1) / P;
    if (argc > 5) { /* COUNT0,COUNT1,...: one per rank */
        const char *p = argv[5];
        int64_t sum = 0;
        for (int r = 0; r < P; r++) {
            int64_t v = strtoll(p, (char **)&p, 10);
            if (*p == ',')
                p++;
            if (r == me)
                r0 = sum, r1 = sum + v;
            sum += v;
        }
    }
    size_t xrow = (dt == KF_FLOAT64 ? 8 : 4) * (size_t)d;
    void *x = make_cloud(dt, N, d);
    char tag[128];
    snprintf(tag, sizeof tag, "P %d, float%d, n %lld, d %lld, eps %g%s%s", P, atoi(argv[1]),
             (long long)N, (long long)d, eps, argc > 5 ? ", split " : "", argc > 5 ? argv[5] : "");

    kfs_sorted s;
    int rc = kfs_dist_sort(ctx, c, dt, (char *)x + r0 * xrow, r1 - r0, d, r0, eps, &s);
    int64_t *idx = me == 0 ? malloc(sizeof *idx * (size_t)N + 8) : NULL;
    char *xs = me == 0 ? malloc(xrow * (size_t)N + 8) : NULL;
    int64_t *cells = me == 0 ? malloc(sizeof *cells * (size_t)(N * d) + 8) : NULL;
    int64_t *first = me == 0 ? malloc(sizeof *first * 2 * (size_t)P) : NULL;
    if (rc != KF_OK) {
        if (me == 0)
            printf("FAIL %s: kfs_dist_sort: %s\n", tag, kf_errmsg(ctx));
        return 1;
    }
    /* Each rank's first row, to check the cells' cut between ranks. */
    int64_t my_first[2] = {s.n > 0 ? s.row0 : -1, s.n};
    if (kf_comm_gather_rows(c, my_first, 1, sizeof my_first, first, 0) != KF_OK ||
        kf_comm_gather_rows(c, s.index, s.n, sizeof *s.index, idx, 0) != KF_OK ||
        kf_comm_gather_rows(c, s.x, s.n, (int64_t)xrow, xs, 0) != KF_OK ||
        kf_comm_gather_rows(c, s.cells, s.n, (int64_t)(sizeof *cells * (size_t)d), cells, 0) !=
            KF_OK) {
        if (me == 0)
            printf("FAIL %s: gathering the sorted rows\n", tag);
        return 1;
    }
    if (me == 0) {
        kf_plan *p = kf_plan_block_sparse(ctx, dt, x, N, x, N, d, eps, eps, 0);
        int64_t q = 0;
        if (!p || s.N != N)
            bad = 1, printf("FAIL %s: plan %s, N %lld\n", tag, p ? "made" : kf_errmsg(ctx),
                            (long long)s.N);
        for (; !bad && q < N; q++)
            if (idx[q] != p->perm_x[q] || memcmp(xs + q * xrow, (char *)x + p->perm_x[q] * xrow,
                                                 xrow))
                bad = 1, printf("FAIL %s: row %lld holds input %lld, the planner's %lld\n", tag,
                                (long long)q, (long long)idx[q], (long long)p->perm_x[q]);
        for (int r = 1; !bad && r < P; r++) {
            int64_t f = first[2 * r];
            if (f > 0 && !memcmp(cells + f * d, cells + (f - 1) * d, sizeof *cells * (size_t)d))
                bad = 1, printf("FAIL %s: a cell straddles ranks at row %lld\n", tag,
                                (long long)f);
        }
        if (!bad) {
            printf("ok %s: %lld rows in the planner's order (%lld clusters; rows per rank", tag,
                   (long long)N, (long long)p->ncx);
            for (int r = 0; r < P; r++)
                printf(" %lld", (long long)first[2 * r + 1]);
            printf(")\n");
        }
        kf_plan_free(p);
    }
    kfs_sorted_free(&s);

    /* A NaN in the last rank's slice: every rank fails, with its index. */
    int64_t nanat = N - 1;
    if (dt == KF_FLOAT64)
        ((double *)x)[nanat * d] = NAN;
    else
        ((float *)x)[nanat * d] = NAN;
    rc = kfs_dist_sort(ctx, c, dt, (char *)x + r0 * xrow, r1 - r0, d, r0, eps, &s);
    char want[64];
    snprintf(want, sizeof want, "point %lld has a non-finite", (long long)nanat);
    int mine = rc == KF_ERR_ARG && strstr(kf_errmsg(ctx), want) ? 0 : 1, any = 0;
    double v = mine;
    kf_comm_allreduce(c, &v, 1, KF_REDUCE_MAX);
    any = v > 0;
    if (me == 0 && any)
        printf("FAIL %s: a NaN: rank 0 says %d '%s'\n", tag, rc, kf_errmsg(ctx));
    else if (me == 0)
        printf("ok %s: a NaN fails every rank\n", tag);
    bad |= any;
    free(idx), free(xs), free(cells), free(first), free(x);
    kf_comm_free(c);
    kf_free(ctx);
    return bad;
}
