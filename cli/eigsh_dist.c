/*
 * eigsh_dist.c -- how `mpirun -np P kforge eigsh` cuts the problem: the
 * ranks' row slices (even, or --mpi-split, and for a block-sparse operator
 * only at cluster boundaries, so no cluster straddles two ranks), each
 * rank's part of the block-sparse pattern in its own row numbers, and the
 * hull of the j rows that part touches (what the rank keeps of the points).
 * Pure functions: the unit tests run them without MPI.
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

/* The cluster boundary in starts[0..ncl] closest to target, not below lo. */
static int64_t snap(const int64_t *starts, int64_t ncl, int64_t target, int64_t lo)
{
    int64_t best = starts[ncl];
    for (int64_t c = 0; c <= ncl; c++) {
        int64_t b = starts[c];
        if (b < lo)
            continue;
        if (llabs(b - target) < llabs(best - target))
            best = b;
    }
    return best;
}

int kfcli_split_rows(int64_t n, int P, const int64_t *starts, int64_t ncl, const char *spec,
                     int64_t *bounds, char *err, size_t errlen)
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
    /* Block-sparse: each boundary moves to the nearest cluster boundary. */
    if (starts)
        for (int r = 1; r < P; r++)
            bounds[r] = snap(starts, ncl, bounds[r], bounds[r - 1]);
    bounds[P] = n;
    return 0;
}

int kfcli_local_pattern(const kf_ranges *rg, int64_t row0, int64_t row1, kfcli_local *out,
                        char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->row0 = row0, out->rows = row1 - row0;
    int64_t c0 = 0;
    while (c0 < rg->nci && rg->ranges_i[2 * c0] < row0)
        c0++;
    int64_t c1 = c0;
    while (c1 < rg->nci && rg->ranges_i[2 * c1 + 1] <= row1)
        c1++;
    if ((c0 < rg->nci && rg->ranges_i[2 * c0] != row0 && row1 > row0) ||
        (c1 < rg->nci && rg->ranges_i[2 * c1] < row1)) {
        snprintf(err, errlen, "internal: rows [%lld, %lld) cut a cluster", (long long)row0,
                 (long long)row1);
        return -1;
    }
    int64_t r0 = c0 > 0 ? rg->slices_i[c0 - 1] : 0, r1 = c1 > 0 ? rg->slices_i[c1 - 1] : 0;
    if (r1 < r0)
        r1 = r0;
    out->nci = c1 - c0, out->nredj = r1 - r0;
    out->ranges_i = malloc(sizeof(int64_t) * (size_t)(3 * out->nci + 2 * out->nredj + 1));
    if (!out->ranges_i) {
        snprintf(err, errlen, "out of memory for the rank's block-sparse pattern");
        return -1;
    }
    out->slices_i = out->ranges_i + 2 * out->nci;
    out->redranges_j = out->slices_i + out->nci;
    /* The j hull: the rank's own rows (the diagonal) and every range it reads. */
    int64_t j0 = row0, j1 = row1;
    for (int64_t q = r0; q < r1; q++) {
        int64_t a = rg->redranges_j[2 * q], b = rg->redranges_j[2 * q + 1];
        if (a < b) {
            j0 = a < j0 ? a : j0;
            j1 = b > j1 ? b : j1;
        }
    }
    out->j0 = j0, out->nj = j1 - j0;
    for (int64_t c = c0; c < c1; c++) {
        out->ranges_i[2 * (c - c0)] = rg->ranges_i[2 * c] - row0;
        out->ranges_i[2 * (c - c0) + 1] = rg->ranges_i[2 * c + 1] - row0;
        out->slices_i[c - c0] = rg->slices_i[c] - r0;
    }
    for (int64_t q = r0; q < r1; q++) {
        int64_t a = rg->redranges_j[2 * q], b = rg->redranges_j[2 * q + 1];
        out->redranges_j[2 * (q - r0)] = a < b ? a - j0 : 0;
        out->redranges_j[2 * (q - r0) + 1] = a < b ? b - j0 : 0;
    }
    return 0;
}

void kfcli_local_view(const kfcli_local *l, kf_ranges *rg)
{
    memset(rg, 0, sizeof *rg);
    rg->nci = l->nci, rg->ranges_i = l->ranges_i, rg->slices_i = l->slices_i;
    rg->nredj = l->nredj, rg->redranges_j = l->redranges_j;
    /* the mirror triple is never read: the operator's kernel reduces over j */
}

void kfcli_local_free(kfcli_local *l)
{
    free(l->ranges_i);
    memset(l, 0, sizeof *l);
}
