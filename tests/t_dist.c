/* t_dist.c -- what the MPI build decides without starting MPI: how eigsh cuts
 * the rows between ranks (even, --mpi-split; the planner's cuts at cluster
 * starts), the skip-ahead that gives each rank its rows of the serial start
 * vector, and the API's answers where no communicator exists (the mpirun
 * runs are tests/mpi/run.sh). */
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
    KFT_CHECK(kfcli_split_rows(10, 3, NULL, b, err, sizeof err) == 0);
    KFT_CHECK(bounds_are(b, 3, (const int64_t[]){0, 3, 6, 10}));
    /* more ranks than rows: some hold none */
    KFT_CHECK(kfcli_split_rows(2, 3, NULL, b, err, sizeof err) == 0);
    KFT_CHECK(bounds_are(b, 3, (const int64_t[]){0, 0, 1, 2}));
    KFT_CHECK(kfcli_split_rows(10, 3, "2,0,8", b, err, sizeof err) == 0);
    KFT_CHECK(bounds_are(b, 3, (const int64_t[]){0, 2, 2, 10}));
    KFT_CHECK(kfcli_split_rows(10, 1, "10", b, err, sizeof err) == 0);
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
        int rc = kfcli_split_rows(10, 3, bad[k].spec, b, err, sizeof err);
        KFT_CHECKF(rc == -1 && strstr(err, bad[k].msg), "'%s': rc %d, '%s'", bad[k].spec, rc, err);
    }
}

/* The planner's cuts (kf_plan_block_sparse_dist) move each wanted boundary
 * to the nearest cluster start; tests/mpi/distplan checks whole runs. */
KFT_TEST(dist_cuts_snap_to_cluster_starts)
{
    const int64_t starts[] = {0, 4, 7, 10}; /* three clusters */
    KFT_CHECK(kfs_nearest_start(starts, 3, 5) == 4);
    KFT_CHECK(kfs_nearest_start(starts, 3, 9) == 10); /* the last rank may get none */
    KFT_CHECK(kfs_nearest_start(starts, 3, 6) == 7);
    KFT_CHECK(kfs_nearest_start(starts, 3, 2) == 0);  /* a tie goes to the lower start */
    KFT_CHECK(kfs_nearest_start(starts, 3, 0) == 0 && kfs_nearest_start(starts, 3, 10) == 10);
    KFT_CHECK(kfs_nearest_start(starts, 3, 7) == 7);
    const int64_t none[] = {0}; /* no points */
    KFT_CHECK(kfs_nearest_start(none, 0, 0) == 0);
    /* monotone: increasing targets never give decreasing cuts */
    int64_t last = 0;
    for (int64_t t = 0; t <= 10; t++) {
        int64_t c = kfs_nearest_start(starts, 3, t);
        KFT_CHECK(c >= last);
        last = c;
    }
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
