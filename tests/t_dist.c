/* t_dist.c -- what the MPI build decides without starting MPI: how eigsh cuts
 * the rows between ranks (even, --mpi-split, at cluster boundaries), a rank's
 * part of a block-sparse pattern and its j hull, the skip-ahead that gives
 * each rank its rows of the serial start vector, and the API's answers where
 * no communicator exists (the mpirun runs are tests/mpi/run.sh). */
#include <string.h>

#include "cli/cli.h"
#include "harness.h"
#include "kforge.h"
#include "solvers/solvers.h"

static int bounds_are(const int64_t *b, int P, const int64_t *want)
{
    for (int r = 0; r <= P; r++)
        if (b[r] != want[r])
            return 0;
    return 1;
}

KFT_TEST(dist_split_even_and_spec)
{
    int64_t b[8];
    char err[256];
    KFT_CHECK(kfcli_split_rows(10, 3, NULL, 0, NULL, b, err, sizeof err) == 0);
    KFT_CHECK(bounds_are(b, 3, (const int64_t[]){0, 3, 6, 10}));
    /* more ranks than rows: some hold none */
    KFT_CHECK(kfcli_split_rows(2, 3, NULL, 0, NULL, b, err, sizeof err) == 0);
    KFT_CHECK(bounds_are(b, 3, (const int64_t[]){0, 0, 1, 2}));
    KFT_CHECK(kfcli_split_rows(10, 3, NULL, 0, "2,0,8", b, err, sizeof err) == 0);
    KFT_CHECK(bounds_are(b, 3, (const int64_t[]){0, 2, 2, 10}));
    KFT_CHECK(kfcli_split_rows(10, 1, NULL, 0, "10", b, err, sizeof err) == 0);
    KFT_CHECK(bounds_are(b, 1, (const int64_t[]){0, 10}));
}

KFT_TEST(dist_split_rejects)
{
    static const struct {
        const char *spec, *msg;
    } bad[] = {
        {"1,2", "2 counts adding up to 3; expected 3"},
        {"1,2,3,4", "more counts than the 3 ranks"},
        {"5,6,7", "add up to more than the 10 points"},
        {"a,b,c", "expected 3 row counts >= 0"},
        {"1,,9", "expected 3 row counts >= 0"},
        {"1,2,", "a count is missing after the last comma"},
        {"-1,5,6", "expected 3 row counts >= 0"},
        {"+1,3,6", "expected 3 row counts >= 0"},
        {"", "0 counts adding up to 0"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        int64_t b[4];
        char err[256] = "";
        int rc = kfcli_split_rows(10, 3, NULL, 0, bad[k].spec, b, err, sizeof err);
        KFT_CHECKF(rc == -1 && strstr(err, bad[k].msg), "'%s': rc %d, '%s'", bad[k].spec, rc, err);
    }
}

KFT_TEST(dist_split_snaps_to_clusters)
{
    const int64_t starts[] = {0, 4, 7, 10}; /* three clusters */
    int64_t b[4];
    char err[256];
    KFT_CHECK(kfcli_split_rows(10, 2, starts, 3, NULL, b, err, sizeof err) == 0);
    KFT_CHECK(bounds_are(b, 2, (const int64_t[]){0, 4, 10})); /* 5 -> 4 */
    KFT_CHECK(kfcli_split_rows(10, 2, starts, 3, "9,1", b, err, sizeof err) == 0);
    KFT_CHECK(bounds_are(b, 2, (const int64_t[]){0, 10, 10})); /* 9 -> 10: rank 1 gets none */
    KFT_CHECK(kfcli_split_rows(10, 3, starts, 3, "3,3,4", b, err, sizeof err) == 0);
    KFT_CHECK(bounds_are(b, 3, (const int64_t[]){0, 4, 7, 10}));
    /* boundaries never go back: a later target cannot land before an earlier one */
    KFT_CHECK(kfcli_split_rows(10, 3, starts, 3, "9,0,1", b, err, sizeof err) == 0);
    KFT_CHECK(bounds_are(b, 3, (const int64_t[]){0, 10, 10, 10}));
}

/* Clusters [0,4) [4,7) [7,10); cluster 0 reads j [0,7), cluster 1 [0,4) and
 * [7,10), cluster 2 [4,10). */
static const int64_t ri[] = {0, 4, 4, 7, 7, 10}, si[] = {1, 3, 4},
                     rj[] = {0, 7, 0, 4, 7, 10, 4, 10};
static const kf_ranges pattern = {.nci = 3, .ranges_i = ri, .slices_i = si, .nredj = 4,
                                  .redranges_j = rj};

KFT_TEST(dist_local_pattern)
{
    kfcli_local l;
    char err[256];
    KFT_CHECK(kfcli_local_pattern(&pattern, 4, 10, &l, err, sizeof err) == 0);
    KFT_CHECK(l.row0 == 4 && l.rows == 6 && l.j0 == 0 && l.nj == 10);
    KFT_CHECK(l.nci == 2 && l.nredj == 3);
    KFT_CHECK(l.ranges_i[0] == 0 && l.ranges_i[1] == 3 && l.ranges_i[2] == 3 && l.ranges_i[3] == 6);
    KFT_CHECK(l.slices_i[0] == 2 && l.slices_i[1] == 3);
    KFT_CHECK(l.redranges_j[0] == 0 && l.redranges_j[1] == 4 && l.redranges_j[4] == 4 &&
              l.redranges_j[5] == 10);
    kfcli_local_free(&l);
    /* the last cluster alone: j rows [4, 10), ranges counted from 4 */
    KFT_CHECK(kfcli_local_pattern(&pattern, 7, 10, &l, err, sizeof err) == 0);
    KFT_CHECK(l.j0 == 4 && l.nj == 6 && l.nci == 1 && l.nredj == 1);
    KFT_CHECK(l.ranges_i[0] == 0 && l.ranges_i[1] == 3 && l.slices_i[0] == 1);
    KFT_CHECK(l.redranges_j[0] == 0 && l.redranges_j[1] == 6);
    kf_ranges v;
    kfcli_local_view(&l, &v);
    KFT_CHECK(v.nci == 1 && v.ranges_i == l.ranges_i && v.nredj == 1 && v.ncj == 0);
    kfcli_local_free(&l);
    /* no rows: nothing to read, j rows empty at the rank's place */
    KFT_CHECK(kfcli_local_pattern(&pattern, 4, 4, &l, err, sizeof err) == 0);
    KFT_CHECK(l.rows == 0 && l.nci == 0 && l.nredj == 0 && l.j0 == 4 && l.nj == 0);
    kfcli_local_free(&l);
    /* a slice that cuts a cluster is a bug of the caller, said so */
    KFT_CHECK(kfcli_local_pattern(&pattern, 5, 10, &l, err, sizeof err) == -1);
    KFT_CHECK(strstr(err, "cut a cluster") != NULL);
    kfcli_local_free(&l);
}

KFT_TEST(dist_rand_skip_is_the_serial_stream)
{
    uint64_t a = 42, b = 42;
    double serial[9];
    for (int k = 0; k < 9; k++)
        serial[k] = kfs_rand_sym(&a);
    kfs_rand_skip(&b, 5);
    KFT_CHECK(kfs_rand_sym(&b) == serial[5] && kfs_rand_sym(&b) == serial[6]);
}

KFT_TEST(dist_api_without_a_communicator)
{
    kf_ctx *ctx = kf_new(NULL);
    KFT_CHECK(ctx != NULL);
    if (!ctx)
        return;
    KFT_CHECK(kf_comm_rank(NULL) == -1 && kf_comm_size(NULL) == 0 && kf_comm_seconds(NULL) == 0);
    double v = 1;
    KFT_CHECK(kf_comm_allreduce(NULL, &v, 1, KF_REDUCE_SUM) != KF_OK);
    kf_comm_free(NULL);
    float pts[4] = {0, 1, 2, 3};
    const void *args[3] = {pts, pts, NULL};
    const char *al[2] = {"x=Vi(0,1)", "y=Vj(1,1)"};
    kf_dist d = {.comm = NULL, .n = 4, .row0 = 0, .rows = 4, .j0 = 0, .nj = 4};
    kf_linop *op = kf_linop_formula_dist(ctx, "Exp(-SqDist(x,y))*v", al, 2, "v", 2, args, 3, &d,
                                         KF_FLOAT32, NULL, NULL);
    KFT_CHECK(op == NULL);
    if (kf_mpi_available()) {
        KFT_CHECKF(kf_status_of(ctx) == KF_ERR_ARG && strstr(kf_errmsg(ctx), "must not be NULL"),
                   "%s", kf_errmsg(ctx));
    } else {
        KFT_CHECKF(kf_status_of(ctx) == KF_ERR_UNSUPPORTED &&
                       strstr(kf_errmsg(ctx), "built without MPI"), "%s", kf_errmsg(ctx));
        KFT_CHECK(kf_comm_world(ctx) == NULL && kf_status_of(ctx) == KF_ERR_UNSUPPORTED);
    }
    kf_free(ctx);
}
