/* comm_mpi.h -- what the MPI files of solvers/mpi/ share: a kf_comm's
 * MPI communicator. Includes <mpi.h>, so only MPI builds see it. */
#ifndef KF_SOLVERS_MPI_COMM_MPI_H
#define KF_SOLVERS_MPI_COMM_MPI_H

#include <mpi.h>

#include "kforge.h"

MPI_Comm kfs_comm_mpi(const kf_comm *c);

#endif
