/*
 * coll.c -- the collectives of the distributed planner (distsort.c,
 * distplan.c) with a NULL communicator meaning one process: the exchanges
 * become copies and the same code path runs, so the one-process tests cover
 * the arithmetic that the MPI runs use.
 */
#include <string.h>

#include "solvers/solvers.h"

int kfs_coll_allgather_i64(kf_comm *c, int64_t mine, int64_t *all)
{
    if (!c) {
        all[0] = mine;
        return KF_OK;
    }
    return kfs_comm_allgather_i64(c, mine, all);
}

int kfs_coll_allgatherv(kf_comm *c, const void *local, void *full, const int64_t *counts,
                        const int64_t *displs, size_t rowbytes)
{
    if (!c) {
        if (counts[0] > 0 && (char *)full + displs[0] * rowbytes != local)
            memmove((char *)full + displs[0] * rowbytes, local, (size_t)counts[0] * rowbytes);
        return KF_OK;
    }
    return kfs_comm_allgatherv(c, local, full, counts, displs, rowbytes);
}

int kfs_coll_alltoall_i64(kf_comm *c, const int64_t *send, int64_t *recv)
{
    if (!c) {
        recv[0] = send[0];
        return KF_OK;
    }
    return kfs_comm_alltoall_i64(c, send, recv);
}

int kfs_coll_alltoallv(kf_comm *c, const void *send, const int64_t *sc, const int64_t *sd,
                       void *recv, const int64_t *rc, const int64_t *rd, size_t rowbytes)
{
    if (!c) {
        if (sc[0] > 0)
            memcpy((char *)recv + rd[0] * rowbytes, (const char *)send + sd[0] * rowbytes,
                   (size_t)sc[0] * rowbytes);
        return KF_OK;
    }
    return kfs_comm_alltoallv(c, send, sc, sd, recv, rc, rd, rowbytes);
}

int kfs_coll_allreduce(kf_comm *c, double *v, int count, kf_reduce_op op)
{
    return c ? kf_comm_allreduce(c, v, count, op) : KF_OK;
}
