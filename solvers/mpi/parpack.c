/* parpack.c -- PARPACK's symmetric drivers (p?saupd, p?seupd) on the ranks
 * that hold rows. PARPACK refuses a local size of 0 (info -1) and would
 * leave the others waiting, so the ranks with rows get a communicator of
 * their own; kf_eigsh keeps the rest in step (it broadcasts what PARPACK
 * asked for, and they take part in the matvecs with no rows). Compiled
 * only in MPI builds. */
#include <arpack/parpack.h>
#include <mpi.h>
#include <stdlib.h>

#include "solvers/mpi/comm_mpi.h"
#include "solvers/solvers.h"

struct kfs_parpack {
    MPI_Comm comm;
    MPI_Fint fcomm; /* PARPACK is Fortran: the communicator by MPI_Comm_c2f */
};

kfs_parpack *kfs_parpack_new(kf_comm *c, int active, int *rc)
{
    MPI_Comm sub;
    int me;
    MPI_Comm_rank(kfs_comm_mpi(c), &me);
    *rc = MPI_Comm_split(kfs_comm_mpi(c), active ? 0 : MPI_UNDEFINED, me, &sub) == MPI_SUCCESS
              ? KF_OK
              : KF_ERR_INTERNAL;
    if (*rc != KF_OK || sub == MPI_COMM_NULL)
        return NULL;
    kfs_parpack *p = malloc(sizeof *p);
    if (!p) {
        MPI_Comm_free(&sub);
        *rc = KF_ERR_NOMEM;
        return NULL;
    }
    p->comm = sub;
    p->fcomm = MPI_Comm_c2f(sub);
    return p;
}

void kfs_parpack_free(kfs_parpack *p)
{
    if (!p)
        return;
    MPI_Comm_free(&p->comm);
    free(p);
}

void kfs_psaupd(kfs_parpack *p, kf_dtype t, int *ido, int n, const char *which, int nev,
                double tol, void *resid, int ncv, void *v, int ldv, int *iparam, int *ipntr,
                void *workd, void *workl, int lworkl, int *info)
{
    if (t == KF_FLOAT64)
        pdsaupd_c(p->fcomm, ido, "I", n, which, nev, tol, resid, ncv, v, ldv, iparam, ipntr,
                  workd, workl, lworkl, info);
    else
        pssaupd_c(p->fcomm, ido, "I", n, which, nev, (float)tol, resid, ncv, v, ldv, iparam,
                  ipntr, workd, workl, lworkl, info);
}

void kfs_pseupd(kfs_parpack *p, kf_dtype t, int *select, void *d, void *z, int ldz, int n,
                const char *which, int nev, double tol, void *resid, int ncv, void *v, int ldv,
                int *iparam, int *ipntr, void *workd, void *workl, int lworkl, int *info)
{
    if (t == KF_FLOAT64)
        pdseupd_c(p->fcomm, 1, "A", select, d, z, ldz, 0.0, "I", n, which, nev, tol, resid, ncv,
                  v, ldv, iparam, ipntr, workd, workl, lworkl, info);
    else
        psseupd_c(p->fcomm, 1, "A", select, d, z, ldz, 0.0f, "I", n, which, nev, (float)tol,
                  resid, ncv, v, ldv, iparam, ipntr, workd, workl, lworkl, info);
}
