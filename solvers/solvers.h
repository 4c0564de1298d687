/*
 * solvers.h -- solver internals: the operator object behind kf_linop and the
 * helpers the eigensolver, the spectral driver and CG share.
 *
 *   linop.c     operators: kernel/formula, diag, identity, scale, add, sub, compose
 *   graph.c     degrees and the Laplacians (kf_linop_graph)
 *   eigsh.c     the ARPACK reverse-communication driver (kf_eigsh)
 *   spectral.c  kf_spectral: direct, shifted and coarse-to-fine modes
 *   cg.c        block conjugate gradients (kf_cg)
 *   lobpcg.c    the block eigensolver (kf_spectral's KF_SOLVER_BLOCK)
 *   dist.c      distributed operators: the row partition, collective errors
 *   distsort.c  the distributed planner's first steps: global bounds, the sample sort
 *   distplan.c  kf_plan_block_sparse_dist: the rest of the distributed planner
 *   coll.c      the planner's collectives, a NULL communicator being one process
 *   mpi/comm.c  MPI (kf_comm_*) and mpi/parpack.c PARPACK, in MPI builds only;
 *   comm_none.c their stand-ins otherwise (everything KF_ERR_UNSUPPORTED)
 */
#ifndef KF_SOLVERS_H
#define KF_SOLVERS_H

#include <stddef.h>
#include <stdint.h>

#include "kforge.h"

/* The widest block one formula kernel is compiled for; wider blocks are
 * applied in chunks (each width is one more compiled kernel). */
#define KFS_MAX_BLOCK 64

typedef enum kfs_kind {
    KFS_KERNEL,   /* a caller's Sum kernel linear in var (borrowed) */
    KFS_FORMULA,  /* formula text, one owned kernel per block width */
    KFS_DIAG,     /* diag(d), d owned (double copy and dtype copy) */
    KFS_IDENTITY,
    KFS_SCALE,    /* s * a */
    KFS_ADD,      /* a + b */
    KFS_SUB,      /* a - b */
    KFS_COMPOSE   /* a * b */
} kfs_kind;

/* The rows of a distributed operator: shared (reference counted) by every
 * operator combined from one kernel operator. */
typedef struct kfs_dist {
    int refs;
    kf_comm *comm;            /* borrowed */
    int rank, size;
    int64_t n, row0, rows;    /* global size; this rank's rows [row0, row0 + rows) */
    int64_t *counts, *displs; /* (size): every rank's rows and first row */
    int root;                 /* the lowest rank with rows: it speaks for PARPACK's ranks */
} kfs_dist;

struct kf_linop {
    int refs;           /* references; the last kf_linop_free frees */
    kfs_kind kind;
    kf_ctx *ctx;
    kf_dtype dtype;
    int64_t n;          /* the global size */
    int64_t nloc;       /* the rows this process holds: n, or dist->rows */
    kfs_dist *dist;     /* NULL: one process (one reference when set) */
    kf_linop *a, *b;    /* operands (one reference each), or NULL */
    double s;           /* KFS_SCALE factor */
    double *d;          /* KFS_DIAG: the diagonal in double */
    /* KFS_KERNEL and KFS_FORMULA */
    kf_kernel *k;       /* KFS_KERNEL: the caller's kernel */
    int var;            /* the vector's variable index */
    int width;          /* KFS_KERNEL: the vector's dim */
    const void **args;  /* owned copy of the pointer array (arrays borrowed); args[var] is set per apply */
    int nargs;
    int has_rg;
    kf_ranges rg;       /* copied view (arrays borrowed) */
    /* KFS_FORMULA only */
    char *formula, *vec_name;
    char **aliases;     /* owned copies */
    int naliases;
    kf_compile_opts copts;
    kf_kernel *kw[KFS_MAX_BLOCK + 1]; /* kernel of block width w, compiled on demand */
    /* distributed kernel operators */
    int64_t j0, nj;     /* the j rows args' j-variables hold */
    void *xfull;        /* n x xcols: the gathered vector block */
    int64_t xcols;
    /* statistics */
    int64_t matvecs;
    double seconds;
};

/* Monotonic seconds. */
double kfs_now(void);
/* Size in bytes of one value of dtype. */
size_t kfs_dsize(kf_dtype dtype);
/* Reads / writes element i of an array of dtype as double. */
static inline double kfs_get(kf_dtype t, const void *p, int64_t i)
{
    return t == KF_FLOAT64 ? ((const double *)p)[i] : (double)((const float *)p)[i];
}
static inline void kfs_set(kf_dtype t, void *p, int64_t i, double v)
{
    if (t == KF_FLOAT64)
        ((double *)p)[i] = v;
    else
        ((float *)p)[i] = (float)v;
}
/* malloc of count * size with overflow check; NULL on failure (no message). */
void *kfs_alloc(int64_t count, size_t size);

/* The formula kernel for block width w (1..KFS_MAX_BLOCK), compiled on first
 * use. NULL with the message in op->ctx. */
kf_kernel *kfs_formula_kernel(kf_linop *op, int w);
/* A formula operator of the same formula on a subset of the points: rows
 * idx[0..m) (ascending) of every i- and j-variable (copied into *store, which
 * the caller frees after the operator; parameters shared), with the
 * block-sparse pattern rg over the subsample (its arrays must outlive the
 * operator) or dense when rg is NULL. Distributed op (collective): a
 * distributed sub-operator of m rows, each rank holding the subsample rows
 * among its rows and among its j rows; rg is then its part, in those local
 * numbers (kfs_map_ranges_at). */
kf_linop *kfs_formula_subsample(kf_linop *op, const int64_t *idx, int64_t m, void **store,
                                 const kf_ranges *rg);
/* The coarse start's subsample of a block-sparse operator (spectral.c):
 * m of n rows spread evenly, row floor(r n / m) for r < m (NULL when out of
 * memory), and the pattern mapped onto it: sub (subsample x subsample) and
 * ext (all n rows x the subsample), keeping every kept block, so every pair
 * within the cutoff is still computed. buf owns the mapped arrays (free it);
 * the slices are rg's own. KF_OK or KF_ERR_NOMEM. */
typedef struct kfs_sub_ranges {
    kf_ranges sub, ext;
    int64_t *buf;
} kfs_sub_ranges;
int64_t *kfs_strided_rows(int64_t n, int64_t m);
int kfs_map_ranges(const kf_ranges *rg, int64_t n, int64_t m, kfs_sub_ranges *sr);
/* The same for a rank's part of a distributed pattern: its rows are global
 * rows from off[0], its j rows from off[1], and the mapped ones are counted
 * from the sub-operator's first row off[2] and first j row off[3]. */
int kfs_map_ranges_at(const kf_ranges *rg, int64_t n, int64_t m, const int64_t off[4],
                      kfs_sub_ranges *sr);
/* The kernel operator underneath (KFS_KERNEL or KFS_FORMULA) of op, or NULL. */
int kfs_is_kernel(const kf_linop *op);

/* ---- the distributed planner's first steps (distsort.c) ---- */
/* Collective over c (NULL: one process, no messages): lo and hi (d each)
 * get the least and largest coordinate over every rank's points, the
 * bounds kfr_grid_labels takes from the whole cloud (min and max are exact,
 * so every rank gets the one-process bounds bit for bit). x is this rank's
 * (n, d) slice of the input, its first point the input's point row0 (the
 * global index in messages). A NaN or inf on any rank fails every rank with
 * KF_ERR_ARG ("point 700 has a non-finite coordinate", agreed). No rank
 * holds more than its slice. */
int kfs_dist_bounds(kf_ctx *ctx, kf_comm *c, kf_dtype dtype, const void *x, int64_t n,
                    int64_t d, int64_t row0, double *lo, double *hi);
/* One rank's part of the global sort. The rows of all ranks, concatenated in
 * rank order, are the input points in the planner's order: by grid cell of
 * side eps (lexicographic, kfr_grid_labels' labels) then input index, which
 * is kf_plan_block_sparse's perm_x (grid mode, kmeans_iters 0). A cell never
 * straddles two ranks. Every array is malloc'd and owned by the struct
 * (kfs_sorted_free). */
typedef struct kfs_sorted {
    int64_t n;      /* this rank's rows after the sort (may be 0) */
    int64_t row0;   /* its first row in the global order (sum of the lower ranks' n) */
    int64_t N;      /* all ranks' rows: the input's point count */
    int64_t d;
    kf_dtype dtype;
    void *x;        /* (n, d) the points, in dtype, in the global order */
    int64_t *index; /* (n) the input index of each row */
    int64_t *cells; /* (n, d) each row's grid cell, non-decreasing lexicographically */
    double *lo, *last; /* (d each) the grid: its lower corner and last cell index per axis */
} kfs_sorted;
/* Collective over c (NULL: one process): the sample sort. (1) the bounds
 * (kfs_dist_bounds) and the grid; (2) each rank sorts its slice by (cell,
 * input index), sends P evenly spaced cells to all (an allgather), cuts the
 * sorted samples into P - 1 splitters, and sends each point to the rank
 * owning its cell range (one MPI_Alltoallv of the points, their cells and
 * input indices); a local sort of what arrives ends it. x, n, row0: this
 * rank's contiguous slice of the input (the slices tile the input in rank
 * order). The ranks' rows need not be balanced (a heavy cell stays whole).
 * KF_OK with *out filled, or an agreed error with *out zeroed. */
int kfs_dist_sort(kf_ctx *ctx, kf_comm *c, kf_dtype dtype, const void *x, int64_t n, int64_t d,
                  int64_t row0, double eps, kfs_sorted *out);
void kfs_sorted_free(kfs_sorted *s);
/* distplan.c's cut: the cluster start nearest to row t (ties to the lower
 * one), starts[0..C] increasing from 0 to the point count. */
int64_t kfs_nearest_start(const int64_t *starts, int64_t C, int64_t t);

/* ---- coll.c: the kfs_comm_* below and kf_comm_allreduce, where a NULL
 * communicator is one process (gathers and exchanges copy rank 0's part) ---- */
int kfs_coll_allgather_i64(kf_comm *c, int64_t mine, int64_t *all);
int kfs_coll_allgatherv(kf_comm *c, const void *local, void *full, const int64_t *counts,
                        const int64_t *displs, size_t rowbytes);
int kfs_coll_alltoall_i64(kf_comm *c, const int64_t *send, int64_t *recv);
int kfs_coll_alltoallv(kf_comm *c, const void *send, const int64_t *sc, const int64_t *sd,
                       void *recv, const int64_t *rc, const int64_t *rd, size_t rowbytes);
int kfs_coll_allreduce(kf_comm *c, double *v, int count, kf_reduce_op op);

/* ---- distribution (dist.c; comm primitives in mpi/comm.c or comm_none.c) ---- */
/* Collective: the partition of n rows where this rank has [row0, row0 + rows),
 * checked to tile [0, n) in rank order. NULL with the message (agreed). */
kfs_dist *kfs_dist_new(kf_ctx *ctx, kf_comm *comm, int64_t n, int64_t row0, int64_t rows);
void kfs_dist_free(kfs_dist *d);
/* Collective (a no-op without d): the ranks' statuses made one. When some
 * rank failed, the lowest failing rank's status and message are returned
 * on all ranks ("rank R: ..." on the others); else KF_OK. */
int kfs_agree(kf_ctx *ctx, const kfs_dist *d, int rc);
/* Collective sums / maxima over op's ranks (no-ops for one process). */
int kfs_sum(const kf_linop *op, double *v, int count);
int kfs_max(const kf_linop *op, double *v, int count);
/* The first global row of op's local rows (0 for one process). */
int64_t kfs_row0(const kf_linop *op);

/* Primitives behind kfs_dist (MPI builds: solvers/mpi/comm.c). */
int kfs_comm_allgather_i64(kf_comm *c, int64_t mine, int64_t *all);
int kfs_comm_allgatherv(kf_comm *c, const void *local, void *full, const int64_t *counts,
                        const int64_t *displs, size_t rowbytes);
int kfs_comm_bcast(kf_comm *c, void *buf, size_t bytes, int root);
/* The lowest rank with failed != 0, or -1. */
int kfs_comm_first_failed(kf_comm *c, int failed);
/* Collective: send[r] to rank r, recv[r] from rank r (P entries each). */
int kfs_comm_alltoall_i64(kf_comm *c, const int64_t *send, int64_t *recv);
/* Collective: rows of rowbytes bytes, scounts[r] rows from send + sdispls[r]
 * rows to rank r, rcounts[r] rows from rank r into recv + rdispls[r] rows
 * (counts from kfs_comm_alltoall_i64; every count and offset below 2^31). */
int kfs_comm_alltoallv(kf_comm *c, const void *send, const int64_t *scounts,
                       const int64_t *sdispls, void *recv, const int64_t *rcounts,
                       const int64_t *rdispls, size_t rowbytes);
/* kfs_agree over a communicator (NULL: one process, rc unchanged). */
int kfs_comm_agree(kf_ctx *ctx, kf_comm *c, int rc);
/* PARPACK on the ranks with rows: kfs_parpack_new splits them off
 * (collective over c; NULL on ranks without rows, and *rc the status). */
typedef struct kfs_parpack kfs_parpack;
kfs_parpack *kfs_parpack_new(kf_comm *c, int active, int *rc);
void kfs_parpack_free(kfs_parpack *p);
void kfs_psaupd(kfs_parpack *p, kf_dtype t, int *ido, int n, const char *which, int nev,
                double tol, void *resid, int ncv, void *v, int ldv, int *iparam, int *ipntr,
                void *workd, void *workl, int lworkl, int *info);
void kfs_pseupd(kfs_parpack *p, kf_dtype t, int *select, void *d, void *z, int ldz, int n,
                const char *which, int nev, double tol, void *resid, int ncv, void *v, int ldv,
                int *iparam, int *ipntr, void *workd, void *workl, int lworkl, int *info);

/* Builds the diag(d) / identity with op's rows (d: op->nloc values of dtype). */
kf_linop *kfs_diag_like(const kf_linop *like, const void *d);
kf_linop *kfs_identity_like(const kf_linop *like);

/* splitmix64: the seeded generator behind start vectors and subsamples. */
uint64_t kfs_rand(uint64_t *state);
/* Uniform in [-1, 1). */
double kfs_rand_sym(uint64_t *state);
/* Skips `count` draws: a rank starts the serial stream at its first row. */
void kfs_rand_skip(uint64_t *state, int64_t count);

/* The k (o->k) LARGEST eigenpairs of the symmetric op by LOBPCG with a
 * block of m columns (k <= m, 3m <= n, m <= KFS_MAX_BLOCK): the start block
 * is X0's m0 columns (n x m0 doubles, row-major; X0 may be NULL) and random
 * ones from o->seed. o->tol (0: 1e-5 for float32, 1e-10 for float64) bounds
 * |A x - theta x| / |theta| of the wanted pairs, o->maxiter (0: 1000) the
 * block iterations, o->progress is called after every apply. values (k, the
 * op's dtype, ascending), vectors (n x k, or NULL), residuals (k, or NULL:
 * |A v - lambda v| computed afresh) and rep as kf_eigsh's (rep->iterations:
 * block iterations, rep->ncv: m, rep->matvecs: columns applied).
 * KF_ERR_NOCONV at maxiter, with every value set. */
int kfs_lobpcg(kf_linop *op, const kf_eigsh_opts *o, const double *X0, int m0, int m,
               void *values, void *vectors, double *resid, kf_eigsh_report *rep);

#endif
