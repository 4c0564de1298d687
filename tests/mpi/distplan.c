/* distplan.c -- run under mpirun by tests/mpi/run.sh: the distributed
 * planner (kf_plan_block_sparse_dist) against kf_plan_block_sparse on the
 * whole cloud, bit for bit. Every rank makes the same cloud (the Swiss roll,
 * or a lattice with many points per cell), takes its input slice (even, or
 * SLICES), plans, and checks its own part against the one-process plan that
 * it also makes: its rows (the wanted split, even or SPLIT, moved to the
 * nearest cluster start), their input indices and points, its j hull and
 * points, its pattern (the global one's rows for its clusters, in local
 * numbers), the cluster count and both fractions. Then a NaN in the last
 * rank's slice must fail every rank with one message. Rank 0 prints "ok" or
 * "FAIL" lines; the exit status is 1 on any failure.
 *
 *   distplan KIND(roll|lattice) DTYPE(32|64) N EPS CUTOFF [SLICES|-] [SPLIT]
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kforge.h"

static void *make_cloud(int roll, kf_dtype dt, int64_t n, int64_t *d)
{
    *d = roll ? 3 : 2;
    double *v = malloc(sizeof(double) * (size_t)(3 * n) + 8);
    size_t es = dt == KF_FLOAT64 ? 8 : 4;
    void *x = malloc(es * (size_t)(3 * n) + 8);
    if (roll) {
        kf_gen g = {KF_GEN_SWISSROLL, n, 5};
        kf_gen_points(&g, v);
    } else {
        uint64_t s = 0x9e3779b97f4a7c15ull;
        for (int64_t k = 0; k < 2 * n; k++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            double u = (double)(s >> 11) * 0x1p-53;
            v[k] = k % 3 ? floor(u * 16) / 16 : u;
        }
    }
    for (int64_t k = 0; k < *d * n; k++) {
        if (dt == KF_FLOAT64)
            ((double *)x)[k] = v[k];
        else
            ((float *)x)[k] = (float)v[k];
    }
    free(v);
    return x;
}

/* P counts "a,b,c" into out (P entries); -1 when malformed. */
static int parse_counts(const char *p, int P, int64_t *out)
{
    for (int r = 0; r < P; r++) {
        char *end;
        out[r] = strtoll(p, &end, 10);
        if (end == p || (r < P - 1 && *end != ','))
            return -1;
        p = end + (*end == ',');
    }
    return 0;
}

/* The start of the cluster nearest to t (ties to the lower one). */
static int64_t nearest_start(const kf_ranges *g, int64_t N, int64_t t)
{
    int64_t best = N;
    for (int64_t c = g->nci; c >= 0; c--) {
        int64_t s = c < g->nci ? g->ranges_i[2 * c] : N;
        if (llabs(s - t) <= llabs(best - t))
            best = s;
    }
    return best;
}

static int fail(const char *tag, const char *what, int me)
{
    printf("FAIL %s: rank %d: %s\n", tag, me, what);
    return 1;
}

/* This rank's part of plan q against the one-process plan p. */
static int check_part(const char *tag, int me, int P, const kf_dist_plan *q, const kf_plan *p,
                      const void *x, size_t xrow, const int64_t *split)
{
    int64_t N = p->M;
    kf_ranges g, l;
    kf_blocks_view(p->blocks, &g);
    kf_blocks_view(q->blocks, &l);
    if (q->n != N || q->nclusters != p->ncx)
        return fail(tag, "n or the cluster count differ", me);
    /* the rows: the wanted cut moved to the nearest cluster start */
    int64_t want0 = 0, want1 = 0, acc = 0;
    for (int r = 0; r <= me; r++) {
        acc += split ? split[r] : 0;
        int64_t t0 = r == 0 ? 0 : want1;
        int64_t t1 = split ? acc : (int64_t)((__int128)N * (r + 1) / P);
        want0 = t0;
        want1 = r + 1 == P ? N : nearest_start(&g, N, t1);
    }
    if (q->row0 != want0 || q->rows != want1 - want0) {
        char m[160];
        snprintf(m, sizeof m, "rows [%lld, %lld), expected [%lld, %lld)", (long long)q->row0,
                 (long long)(q->row0 + q->rows), (long long)want0, (long long)want1);
        return fail(tag, m, me);
    }
    for (int64_t r = 0; r < q->rows; r++)
        if (q->index[r] != p->perm_x[q->row0 + r])
            return fail(tag, "an input index differs", me);
    for (int64_t r = 0; r < q->nj; r++)
        if (memcmp((const char *)q->xj + r * xrow, (const char *)x + p->perm_x[q->j0 + r] * xrow,
                   xrow))
            return fail(tag, "a j point differs", me);
    /* the pattern: the global clusters within the rank's rows */
    int64_t c0 = 0;
    while (c0 < g.nci && g.ranges_i[2 * c0] < q->row0)
        c0++;
    int64_t c1 = c0;
    while (c1 < g.nci && g.ranges_i[2 * c1 + 1] <= q->row0 + q->rows)
        c1++;
    if (l.nci != c1 - c0)
        return fail(tag, "the cluster count of the part differs", me);
    int64_t s0 = c0 > 0 ? g.slices_i[c0 - 1] : 0, s1 = c1 > 0 ? g.slices_i[c1 - 1] : 0;
    int64_t j0 = q->row0, j1 = q->row0 + q->rows;
    for (int64_t e = s0; e < s1; e++) {
        j0 = g.redranges_j[2 * e] < j0 ? g.redranges_j[2 * e] : j0;
        j1 = g.redranges_j[2 * e + 1] > j1 ? g.redranges_j[2 * e + 1] : j1;
    }
    if (q->rows > 0 && (q->j0 != j0 || q->nj != j1 - j0))
        return fail(tag, "the j hull differs", me);
    if (l.nredj != s1 - s0)
        return fail(tag, "the reduced range count differs", me);
    for (int64_t c = c0; c < c1; c++)
        if (l.ranges_i[2 * (c - c0)] != g.ranges_i[2 * c] - q->row0 ||
            l.ranges_i[2 * (c - c0) + 1] != g.ranges_i[2 * c + 1] - q->row0 ||
            l.slices_i[c - c0] != g.slices_i[c] - s0)
            return fail(tag, "a cluster range or slice differs", me);
    for (int64_t e = s0; e < s1; e++)
        if (l.redranges_j[2 * (e - s0)] != g.redranges_j[2 * e] - q->j0 ||
            l.redranges_j[2 * (e - s0) + 1] != g.redranges_j[2 * e + 1] - q->j0)
            return fail(tag, "a reduced j range differs", me);
    if (q->kept_fraction != p->kept_fraction || q->within_fraction != p->within_fraction ||
        q->within_rows != p->within_rows)
        return fail(tag, "the fractions differ", me);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: distplan roll|lattice 32|64 N EPS CUTOFF [SLICES|-] [SPLIT]\n");
        return 2;
    }
    int roll = !strcmp(argv[1], "roll");
    kf_dtype dt = atoi(argv[2]) == 32 ? KF_FLOAT32 : KF_FLOAT64;
    int64_t N = atoll(argv[3]), d;
    double eps = atof(argv[4]), cutoff = atof(argv[5]);
    kf_options o;
    kf_options_init(&o);
    o.threads = 1;
    kf_ctx *ctx = kf_new(&o);
    kf_comm *c = kf_comm_world(ctx);
    if (!ctx || !c) {
        fprintf(stderr, "distplan: %s\n", ctx ? kf_errmsg(ctx) : "no context");
        return 1;
    }
    int P = kf_comm_size(c), me = kf_comm_rank(c);
    int64_t *slices = calloc((size_t)P, sizeof *slices), *split = NULL;
    int64_t r0 = N * me / P, r1 = N * (me + 1) / P;
    if (argc > 6 && strcmp(argv[6], "-")) {
        if (parse_counts(argv[6], P, slices))
            return fprintf(stderr, "distplan: bad SLICES\n"), 2;
        r0 = 0;
        for (int r = 0; r < me; r++)
            r0 += slices[r];
        r1 = r0 + slices[me];
    }
    if (argc > 7) {
        split = calloc((size_t)P, sizeof *split);
        if (parse_counts(argv[7], P, split))
            return fprintf(stderr, "distplan: bad SPLIT\n"), 2;
    }
    void *x = make_cloud(roll, dt, N, &d);
    size_t xrow = (dt == KF_FLOAT64 ? 8 : 4) * (size_t)d;
    char tag[160];
    snprintf(tag, sizeof tag, "P %d, %s float%d, n %lld, eps %g, cutoff %g%s%s%s%s", P, argv[1],
             atoi(argv[2]), (long long)N, eps, cutoff, argc > 6 ? ", slices " : "",
             argc > 6 ? argv[6] : "", argc > 7 ? ", split " : "", argc > 7 ? argv[7] : "");

    kf_dist_plan *q = kf_plan_block_sparse_dist(ctx, c, dt, (char *)x + r0 * xrow, r1 - r0, d,
                                                r0, eps, cutoff, split);
    kf_plan *p = kf_plan_block_sparse(ctx, dt, x, N, x, N, d, eps, cutoff, 0);
    int bad = !q || !p ? (printf("FAIL %s: rank %d: %s\n", tag, me, kf_errmsg(ctx)), 1)
                       : check_part(tag, me, P, q, p, x, xrow, split);
    double v = bad;
    kf_comm_allreduce(c, &v, 1, KF_REDUCE_MAX);
    if (me == 0 && v == 0)
        printf("ok %s: rank 0 rows %lld, j rows %lld of %lld clusters' %lld points\n", tag,
               (long long)q->rows, (long long)q->nj, (long long)q->nclusters, (long long)N);
    bad = v > 0;
    kf_dist_plan_free(q);
    kf_plan_free(p);

    /* A NaN in the last rank's slice: every rank fails, with its index. */
    if (N > 0) {
        int64_t at = N - 1;
        if (dt == KF_FLOAT64)
            ((double *)x)[at * d] = NAN;
        else
            ((float *)x)[at * d] = NAN;
        q = kf_plan_block_sparse_dist(ctx, c, dt, (char *)x + r0 * xrow, r1 - r0, d, r0, eps,
                                      cutoff, split);
        char want[64];
        snprintf(want, sizeof want, "point %lld has a non-finite", (long long)at);
        v = !q && kf_status_of(ctx) == KF_ERR_ARG && strstr(kf_errmsg(ctx), want) ? 0 : 1;
        kf_comm_allreduce(c, &v, 1, KF_REDUCE_MAX);
        if (me == 0)
            printf(v > 0 ? "FAIL %s: a NaN: rank 0 says '%s'\n" : "ok %s: a NaN fails every rank%s\n",
                   tag, v > 0 ? kf_errmsg(ctx) : "");
        bad |= v > 0;
        kf_dist_plan_free(q);
    }
    free(x), free(slices), free(split);
    kf_comm_free(c);
    kf_free(ctx);
    return bad;
}
