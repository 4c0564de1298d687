/* comm.c -- kf_comm: the job's ranks over MPI, and the few collectives the
 * solvers need (gather a vector block, reduce small arrays, broadcast a
 * failure). Compiled only in MPI builds (the Makefile found mpicc and
 * PARPACK); solvers/comm_none.c stands in otherwise. Every call is timed
 * into the communicator's seconds, the "communication" of the reports. */
#include <limits.h>
#include <mpi.h>
#include <stdlib.h>

#include "runtime/rt.h"
#include "solvers/mpi/comm_mpi.h"
#include "solvers/solvers.h"

struct kf_comm {
    MPI_Comm comm;   /* a duplicate of MPI_COMM_WORLD: our messages never meet the caller's */
    int rank, size;
    int finalize;    /* kf_comm_world initialized MPI: kf_comm_free finalizes it */
    double seconds;  /* time inside MPI */
};

int kf_mpi_available(void) { return 1; }

kf_comm *kf_comm_world(kf_ctx *ctx)
{
    int up = 0, down = 0;
    MPI_Initialized(&up);
    MPI_Finalized(&down);
    if (down) {
        if (ctx)
            kfr_error(ctx, KF_ERR_ARG, "kf_comm_world: MPI was already finalized");
        return NULL;
    }
    kf_comm *c = calloc(1, sizeof *c);
    if (!c) {
        if (ctx)
            kfr_error(ctx, KF_ERR_NOMEM, "kf_comm_world: out of memory");
        return NULL;
    }
    /* The library's worker threads never call MPI: the calling thread is the
     * only one that does, which MPI_THREAD_FUNNELED promises. */
    if (!up) {
        int got;
        if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &got) != MPI_SUCCESS) {
            free(c);
            if (ctx)
                kfr_error(ctx, KF_ERR_INTERNAL, "kf_comm_world: MPI_Init failed");
            return NULL;
        }
        c->finalize = 1;
    }
    MPI_Comm_dup(MPI_COMM_WORLD, &c->comm);
    MPI_Comm_rank(c->comm, &c->rank);
    MPI_Comm_size(c->comm, &c->size);
    return c;
}

void kf_comm_free(kf_comm *c)
{
    if (!c)
        return;
    int down = 0;
    MPI_Finalized(&down);
    if (!down) {
        MPI_Comm_free(&c->comm);
        if (c->finalize)
            MPI_Finalize();
    }
    free(c);
}

MPI_Comm kfs_comm_mpi(const kf_comm *c) { return c->comm; }
int kf_comm_rank(const kf_comm *c) { return c ? c->rank : -1; }
int kf_comm_size(const kf_comm *c) { return c ? c->size : 0; }
double kf_comm_seconds(const kf_comm *c) { return c ? c->seconds : 0; }

int kf_comm_allreduce(kf_comm *c, double *v, int count, kf_reduce_op op)
{
    if (!c || (!v && count > 0) || count < 0 || op < KF_REDUCE_SUM || op > KF_REDUCE_MIN)
        return KF_ERR_ARG;
    if (count == 0)
        return KF_OK;
    double t0 = kfs_now();
    MPI_Op mop = op == KF_REDUCE_SUM ? MPI_SUM : op == KF_REDUCE_MAX ? MPI_MAX : MPI_MIN;
    /* Reduce then broadcast: MPI_Allreduce may round a sum differently on
     * different ranks, and the solvers' decisions (converged? restart?)
     * must be the same everywhere. */
    int rc = MPI_Reduce(c->rank == 0 ? MPI_IN_PLACE : v, c->rank == 0 ? v : NULL, count,
                        MPI_DOUBLE, mop, 0, c->comm);
    if (rc == MPI_SUCCESS)
        rc = MPI_Bcast(v, count, MPI_DOUBLE, 0, c->comm);
    c->seconds += kfs_now() - t0;
    return rc == MPI_SUCCESS ? KF_OK : KF_ERR_INTERNAL;
}

/* A row of `bytes` bytes as one MPI datatype, so counts stay row counts
 * (an int of bytes would overflow at 2 GB). */
static int row_type(size_t bytes, MPI_Datatype *t)
{
    if (bytes == 0 || bytes > INT_MAX)
        return KF_ERR_ARG;
    if (MPI_Type_contiguous((int)bytes, MPI_BYTE, t) != MPI_SUCCESS || MPI_Type_commit(t) != MPI_SUCCESS)
        return KF_ERR_INTERNAL;
    return KF_OK;
}

/* Row counts and offsets as MPI's ints. */
static int int_counts(int P, const int64_t *counts, const int64_t *displs, int *ic, int *id)
{
    for (int r = 0; r < P; r++) {
        if (counts[r] < 0 || counts[r] > INT_MAX || displs[r] < 0 || displs[r] > INT_MAX)
            return KF_ERR_ARG;
        ic[r] = (int)counts[r], id[r] = (int)displs[r];
    }
    return KF_OK;
}

int kf_comm_gather_rows(kf_comm *c, const void *local, int64_t rows, int64_t rowbytes, void *out,
                        int root)
{
    if (!c || rows < 0 || rows > INT_MAX || rowbytes < 1 || root < 0 || root >= c->size ||
        (rows > 0 && !local))
        return KF_ERR_ARG;
    double t0 = kfs_now();
    int64_t *cnt = calloc((size_t)c->size * 2, sizeof *cnt);
    int *ic = calloc((size_t)c->size * 2, sizeof *ic);
    int rc = cnt && ic ? KF_OK : KF_ERR_NOMEM;
    /* Everyone takes part in the count exchange whatever happened above:
     * a rank that returned early would leave the others waiting. */
    int64_t mine = rc == KF_OK ? rows : -1;
    int64_t dummy;
    if (MPI_Gather(&mine, 1, MPI_INT64_T, cnt ? cnt : &dummy, 1, MPI_INT64_T, root, c->comm) !=
        MPI_SUCCESS)
        rc = KF_ERR_INTERNAL;
    if (rc == KF_OK && c->rank == root) {
        int64_t off = 0;
        for (int r = 0; r < c->size; r++) {
            if (cnt[r] < 0)
                rc = KF_ERR_NOMEM;
            cnt[c->size + r] = off;
            off += cnt[r] > 0 ? cnt[r] : 0;
        }
        if (rc == KF_OK && !out && off > 0)
            rc = KF_ERR_ARG;
        if (rc == KF_OK)
            rc = int_counts(c->size, cnt, cnt + c->size, ic, ic + c->size);
    }
    /* The root says whether it can take the rows; if not, nobody sends. */
    int go = c->rank == root ? rc == KF_OK : 0;
    if (MPI_Bcast(&go, 1, MPI_INT, root, c->comm) != MPI_SUCCESS)
        go = 0;
    MPI_Datatype t;
    int trc = go ? row_type((size_t)rowbytes, &t) : KF_ERR_INTERNAL;
    if (trc == KF_OK) {
        if (MPI_Gatherv(local, (int)rows, t, out, ic, ic ? ic + c->size : NULL, t, root,
                        c->comm) != MPI_SUCCESS && rc == KF_OK)
            rc = KF_ERR_INTERNAL;
        MPI_Type_free(&t);
    } else if (rc == KF_OK) {
        rc = trc; /* the root could not receive */
    }
    free(cnt), free(ic);
    c->seconds += kfs_now() - t0;
    return rc;
}

int kf_comm_allgather_rows(kf_comm *c, void *buf, int64_t n, int64_t row0, int64_t rows,
                           int64_t rowbytes)
{
    if (!c)
        return KF_ERR_ARG;
    /* Every rank's (row0, rows, n) first, whatever its own arguments, and
     * every allocation before the agreement: all ranks then judge the same
     * numbers alike, and none is left waiting in the exchange alone. */
    int P = c->size;
    int64_t *all = malloc(sizeof(int64_t) * 3 * (size_t)P);
    int *ic = malloc(sizeof(int) * 2 * (size_t)P);
    int64_t mine[3] = {row0, rows, n}, none[3];
    double t0 = kfs_now();
    int ok = MPI_Allgather(mine, 3, MPI_INT64_T, all ? all : none, all ? 3 : 0, MPI_INT64_T,
                           c->comm) == MPI_SUCCESS && all && ic;
    int rc = ok ? KF_OK : KF_ERR_NOMEM;
    int64_t next = 0;
    for (int r = 0; ok && r < P; r++) {
        int64_t r0 = all[3 * r], nr = all[3 * r + 1];
        if (r0 != next || nr < 0 || nr > INT_MAX || r0 > INT_MAX || all[3 * r + 2] != n)
            ok = 0, rc = KF_ERR_ARG;
        ic[r] = (int)nr, ic[P + r] = (int)r0;
        next = r0 + nr;
    }
    if (ok && (next != n || rowbytes < 1 || rowbytes > INT_MAX || (!buf && n > 0)))
        ok = 0, rc = KF_ERR_ARG;
    int every = 0;
    MPI_Allreduce(&ok, &every, 1, MPI_INT, MPI_MIN, c->comm);
    MPI_Datatype t;
    if (every && (rc = row_type((size_t)rowbytes, &t)) == KF_OK) {
        if (MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, buf, ic, ic + P, t, c->comm) !=
            MPI_SUCCESS)
            rc = KF_ERR_INTERNAL;
        MPI_Type_free(&t);
    } else if (!every && rc == KF_OK) {
        rc = KF_ERR_ARG; /* another rank's slice or allocation failed */
    }
    free(all), free(ic);
    c->seconds += kfs_now() - t0;
    return rc;
}

int kfs_comm_allgather_i64(kf_comm *c, int64_t mine, int64_t *all)
{
    double t0 = kfs_now();
    int rc = MPI_Allgather(&mine, 1, MPI_INT64_T, all, 1, MPI_INT64_T, c->comm);
    c->seconds += kfs_now() - t0;
    return rc == MPI_SUCCESS ? KF_OK : KF_ERR_INTERNAL;
}

int kfs_comm_allgatherv(kf_comm *c, const void *local, void *full, const int64_t *counts,
                        const int64_t *displs, size_t rowbytes)
{
    double t0 = kfs_now();
    int *ic = malloc(sizeof(int) * 2 * (size_t)c->size);
    if (!ic)
        return KF_ERR_NOMEM;
    int rc = int_counts(c->size, counts, displs, ic, ic + c->size);
    MPI_Datatype t;
    if (rc == KF_OK)
        rc = row_type(rowbytes, &t);
    if (rc == KF_OK) {
        if (MPI_Allgatherv(local, ic[c->rank], t, full, ic, ic + c->size, t, c->comm) !=
            MPI_SUCCESS)
            rc = KF_ERR_INTERNAL;
        MPI_Type_free(&t);
    }
    free(ic);
    c->seconds += kfs_now() - t0;
    return rc;
}

int kfs_comm_bcast(kf_comm *c, void *buf, size_t bytes, int root)
{
    if (bytes > INT_MAX)
        return KF_ERR_ARG;
    double t0 = kfs_now();
    int rc = MPI_Bcast(buf, (int)bytes, MPI_BYTE, root, c->comm);
    c->seconds += kfs_now() - t0;
    return rc == MPI_SUCCESS ? KF_OK : KF_ERR_INTERNAL;
}

int kfs_comm_first_failed(kf_comm *c, int failed)
{
    double t0 = kfs_now();
    int mine = failed ? c->rank : INT_MAX, first = INT_MAX;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, c->comm);
    c->seconds += kfs_now() - t0;
    return first == INT_MAX ? -1 : first;
}

int kfs_comm_alltoall_i64(kf_comm *c, const int64_t *send, int64_t *recv)
{
    double t0 = kfs_now();
    int rc = MPI_Alltoall(send, 1, MPI_INT64_T, recv, 1, MPI_INT64_T, c->comm);
    c->seconds += kfs_now() - t0;
    return rc == MPI_SUCCESS ? KF_OK : KF_ERR_INTERNAL;
}

int kfs_comm_alltoallv(kf_comm *c, const void *send, const int64_t *scounts,
                       const int64_t *sdispls, void *recv, const int64_t *rcounts,
                       const int64_t *rdispls, size_t rowbytes)
{
    double t0 = kfs_now();
    int P = c->size;
    int *ic = malloc(sizeof(int) * 4 * (size_t)P);
    if (!ic)
        return KF_ERR_NOMEM;
    int rc = int_counts(P, scounts, sdispls, ic, ic + P);
    if (rc == KF_OK)
        rc = int_counts(P, rcounts, rdispls, ic + 2 * P, ic + 3 * P);
    MPI_Datatype t;
    if (rc == KF_OK)
        rc = row_type(rowbytes, &t);
    if (rc == KF_OK) {
        if (MPI_Alltoallv(send, ic, ic + P, t, recv, ic + 2 * P, ic + 3 * P, t, c->comm) !=
            MPI_SUCCESS)
            rc = KF_ERR_INTERNAL;
        MPI_Type_free(&t);
    }
    free(ic);
    c->seconds += kfs_now() - t0;
    return rc;
}
