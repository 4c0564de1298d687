/* dist.c -- the row partition of distributed operators and the one way a
 * failure becomes collective: every rank learns that some rank failed, and
 * which, instead of waiting forever in the next exchange. The MPI calls
 * themselves are in mpi/comm.c (comm_none.c without MPI). */
#include <stdlib.h>
#include <string.h>

#include "runtime/rt.h"
#include "solvers/solvers.h"

int kfs_comm_agree(kf_ctx *ctx, kf_comm *c, int rc)
{
    if (!c)
        return rc;
    int who = kfs_comm_first_failed(c, rc != KF_OK), me = kf_comm_rank(c);
    if (who < 0)
        return KF_OK;
    /* The failing rank's status and message travel to the others. */
    struct {
        int status;
        char msg[sizeof ctx->msg];
    } m;
    memset(&m, 0, sizeof m);
    if (who == me) {
        m.status = rc;
        memcpy(m.msg, ctx->msg, sizeof m.msg);
    }
    if (kfs_comm_bcast(c, &m, sizeof m, who) != KF_OK)
        return kfr_error(ctx, KF_ERR_INTERNAL, "rank %d failed, and its message was lost", who);
    m.msg[sizeof m.msg - 1] = 0;
    if (who != me)
        return kfr_error(ctx, m.status, "rank %d: %s", who, m.msg);
    return rc;
}

int kfs_agree(kf_ctx *ctx, const kfs_dist *d, int rc)
{
    return d ? kfs_comm_agree(ctx, d->comm, rc) : rc;
}

kfs_dist *kfs_dist_new(kf_ctx *ctx, kf_comm *comm, int64_t n, int64_t row0, int64_t rows)
{
    int P = kf_comm_size(comm), me = kf_comm_rank(comm);
    kfs_dist *d = calloc(1, sizeof *d);
    int64_t *all = kfs_alloc(3 * (int64_t)P, sizeof *all);
    if (!d || !all) { /* a few bytes per rank: the job is out of memory anyway */
        free(d), free(all);
        return kfr_error(ctx, KF_ERR_NOMEM, "kf_linop_formula_dist: out of memory"), NULL;
    }
    /* Every rank gathers (row0, rows, n), so the check below sees the same
     * numbers everywhere and reaches the same verdict: no rank is left
     * waiting for one that gave up. */
    int64_t mine[3] = {row0, rows, n};
    int rc = KF_OK;
    for (int f = 0; f < 3 && rc == KF_OK; f++)
        rc = kfs_comm_allgather_i64(comm, mine[f], all + (size_t)f * P);
    int64_t next = 0;
    for (int r = 0; rc == KF_OK && r < P; r++) {
        int64_t r0 = all[r], nr = all[P + r], nn = all[2 * P + r];
        if (r0 == -1) { /* that rank's own message says why */
            rc = r == me ? KF_ERR_ARG
                         : kfr_error(ctx, KF_ERR_ARG, "kf_linop_formula_dist: rank %d was given "
                                     "invalid rows", r);
        } else if (nn != n) {
            rc = kfr_error(ctx, KF_ERR_ARG, "kf_linop_formula_dist: rank %d has n = %lld, rank %d "
                           "n = %lld: the global size must be the same on every rank", r,
                           (long long)nn, me, (long long)n);
        } else if (r0 != next || nr < 0) {
            rc = kfr_error(ctx, KF_ERR_ARG, "kf_linop_formula_dist: rank %d has rows [%lld, %lld) "
                           "but the ranks before it end at row %lld: the slices must tile [0, n) "
                           "in rank order", r, (long long)r0, (long long)(r0 + nr),
                           (long long)next);
        }
        next = r0 + nr;
    }
    if (rc == KF_OK && next != n)
        rc = kfr_error(ctx, KF_ERR_ARG, "kf_linop_formula_dist: the ranks hold %lld rows of n = "
                       "%lld", (long long)next, (long long)n);
    if (rc != KF_OK) {
        free(d), free(all);
        return NULL;
    }
    d->refs = 1, d->comm = comm, d->rank = me, d->size = P;
    d->n = n, d->row0 = row0, d->rows = rows;
    d->displs = all, d->counts = all + P;
    d->root = -1;
    for (int r = 0; r < P && d->root < 0; r++)
        if (d->counts[r] > 0)
            d->root = r;
    return d;
}

void kfs_dist_free(kfs_dist *d)
{
    if (!d || --d->refs > 0)
        return;
    free(d->displs); /* counts share its allocation */
    free(d);
}

int kfs_sum(const kf_linop *op, double *v, int count)
{
    return op->dist ? kf_comm_allreduce(op->dist->comm, v, count, KF_REDUCE_SUM) : KF_OK;
}

int kfs_max(const kf_linop *op, double *v, int count)
{
    return op->dist ? kf_comm_allreduce(op->dist->comm, v, count, KF_REDUCE_MAX) : KF_OK;
}
