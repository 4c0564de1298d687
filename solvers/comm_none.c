/* comm_none.c -- the MPI entry points of a build without MPI (no mpicc or
 * PARPACK was found): kf_comm_world says so, and since no kf_comm can exist
 * the rest is never reached with one. The Makefile compiles this file or
 * solvers/mpi/, never both. */
#include <stddef.h>

#include "runtime/rt.h"
#include "solvers/solvers.h"

int kf_mpi_available(void) { return 0; }

kf_comm *kf_comm_world(kf_ctx *ctx)
{
    if (ctx)
        kfr_error(ctx, KF_ERR_UNSUPPORTED, "kf_comm_world: this kforge was built without MPI "
                  "(no mpicc or PARPACK at build time; docs/scale-out.md)");
    return NULL;
}

void kf_comm_free(kf_comm *c) { (void)c; }
int kf_comm_rank(const kf_comm *c) { return (void)c, -1; }
int kf_comm_size(const kf_comm *c) { return (void)c, 0; }
double kf_comm_seconds(const kf_comm *c) { return (void)c, 0; }
int kf_comm_allreduce(kf_comm *c, double *v, int count, kf_reduce_op op)
{
    return (void)c, (void)v, (void)count, (void)op, KF_ERR_UNSUPPORTED;
}
int kf_comm_gather_rows(kf_comm *c, const void *local, int64_t rows, int64_t rowbytes, void *out,
                        int root)
{
    return (void)c, (void)local, (void)rows, (void)rowbytes, (void)out, (void)root,
           KF_ERR_UNSUPPORTED;
}

int kf_comm_allgather_rows(kf_comm *c, void *buf, int64_t n, int64_t row0, int64_t rows,
                           int64_t rowbytes)
{
    return (void)c, (void)buf, (void)n, (void)row0, (void)rows, (void)rowbytes,
           KF_ERR_UNSUPPORTED;
}

int kfs_comm_allgather_i64(kf_comm *c, int64_t mine, int64_t *all)
{
    return (void)c, (void)mine, (void)all, KF_ERR_UNSUPPORTED;
}
int kfs_comm_allgatherv(kf_comm *c, const void *local, void *full, const int64_t *counts,
                        const int64_t *displs, size_t rowbytes)
{
    return (void)c, (void)local, (void)full, (void)counts, (void)displs, (void)rowbytes,
           KF_ERR_UNSUPPORTED;
}
int kfs_comm_bcast(kf_comm *c, void *buf, size_t bytes, int root)
{
    return (void)c, (void)buf, (void)bytes, (void)root, KF_ERR_UNSUPPORTED;
}
int kfs_comm_first_failed(kf_comm *c, int failed) { return (void)c, failed ? 0 : -1; }
int kfs_comm_alltoall_i64(kf_comm *c, const int64_t *send, int64_t *recv)
{
    return (void)c, (void)send, (void)recv, KF_ERR_UNSUPPORTED;
}
int kfs_comm_alltoallv(kf_comm *c, const void *send, const int64_t *scounts,
                       const int64_t *sdispls, void *recv, const int64_t *rcounts,
                       const int64_t *rdispls, size_t rowbytes)
{
    return (void)c, (void)send, (void)scounts, (void)sdispls, (void)recv, (void)rcounts,
           (void)rdispls, (void)rowbytes, KF_ERR_UNSUPPORTED;
}

kfs_parpack *kfs_parpack_new(kf_comm *c, int active, int *rc)
{
    (void)c, (void)active;
    *rc = KF_ERR_UNSUPPORTED;
    return NULL;
}
void kfs_parpack_free(kfs_parpack *p) { (void)p; }
void kfs_psaupd(kfs_parpack *p, kf_dtype t, int *ido, int n, const char *which, int nev,
                double tol, void *resid, int ncv, void *v, int ldv, int *iparam, int *ipntr,
                void *workd, void *workl, int lworkl, int *info)
{
    (void)p, (void)t, (void)n, (void)which, (void)nev, (void)tol, (void)resid, (void)ncv, (void)v;
    (void)ldv, (void)iparam, (void)ipntr, (void)workd, (void)workl, (void)lworkl;
    *ido = 99, *info = -9999;
}
void kfs_pseupd(kfs_parpack *p, kf_dtype t, int *select, void *d, void *z, int ldz, int n,
                const char *which, int nev, double tol, void *resid, int ncv, void *v, int ldv,
                int *iparam, int *ipntr, void *workd, void *workl, int lworkl, int *info)
{
    (void)p, (void)t, (void)select, (void)d, (void)z, (void)ldz, (void)n, (void)which, (void)nev;
    (void)tol, (void)resid, (void)ncv, (void)v, (void)ldv, (void)iparam, (void)ipntr, (void)workd;
    (void)workl, (void)lworkl;
    *info = -9999;
}
