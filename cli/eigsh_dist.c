/*
 * eigsh_dist.c -- what `mpirun -np P kforge eigsh` decides before MPI
 * starts: whether a launcher started it, how many ranks share the node, and
 * the ranks' row slices (even, or --mpi-split). A block-sparse operator's
 * slices are then moved to cluster starts by the distributed planner
 * (kf_plan_block_sparse_dist), which also makes each rank's pattern and j
 * rows. Pure functions: the unit tests run them without MPI.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

int kfcli_mpi_launched(void)
{
    /* Open MPI's mpirun, then MPICH's Hydra (and other PMI launchers). */
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};
    for (size_t k = 0; k < sizeof vars / sizeof vars[0]; k++) {
        const char *v = getenv(vars[k]);
        int64_t n;
        if (v && !kfcli_parse_i64(v, 1, 1 << 24, &n))
            return (int)n;
    }
    return 0;
}

int kfcli_mpi_local_ranks(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS",
                                       "PMIX_LOCAL_SIZE"};
    for (size_t k = 0; k < sizeof vars / sizeof vars[0]; k++) {
        const char *v = getenv(vars[k]);
        int64_t n;
        if (v && !kfcli_parse_i64(v, 1, 1 << 24, &n))
            return (int)n;
    }
    return 1;
}

int kfcli_split_rows(int64_t n, int P, const char *spec, int64_t *bounds, char *err,
                     size_t errlen)
{
    if (P < 1 || n < 1) {
        snprintf(err, errlen, "%d ranks for %lld rows", P, (long long)n);
        return -1;
    }
    /* The wanted boundaries: even, or the running sums of the spec. */
    bounds[0] = 0;
    if (!spec) {
        for (int r = 1; r <= P; r++)
            bounds[r] = (int64_t)((__int128)n * r / P);
    } else {
        const char *p = spec;
        int r = 0;
        int64_t sum = 0;
        while (*p) {
            char *end;
            errno = 0;
            long long v = strtoll(p, &end, 10);
            if (end == p || errno || v < 0 || (*end && *end != ',') || *p == '+' || *p == ' ') {
                snprintf(err, errlen, "--mpi-split '%s': expected %d row counts >= 0 separated "
                         "by commas", spec, P);
                return -1;
            }
            if (r == P) {
                snprintf(err, errlen, "--mpi-split '%s': more counts than the %d ranks", spec, P);
                return -1;
            }
            if (v > n - sum) {
                snprintf(err, errlen, "--mpi-split '%s': the counts add up to more than the %lld "
                         "points", spec, (long long)n);
                return -1;
            }
            sum += v;
            bounds[++r] = sum;
            p = *end ? end + 1 : end;
            if (*end && !*p) {
                snprintf(err, errlen, "--mpi-split '%s': a count is missing after the last comma",
                         spec);
                return -1;
            }
        }
        if (r != P || sum != n) {
            snprintf(err, errlen, "--mpi-split '%s': %d counts adding up to %lld; expected %d "
                     "(one per rank) adding up to the %lld points", spec, r, (long long)sum, P,
                     (long long)n);
            return -1;
        }
    }
    bounds[P] = n;
    return 0;
}
