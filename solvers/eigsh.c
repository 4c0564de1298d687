/* eigsh.c -- kf_eigsh: the ARPACK-ng reverse-communication driver for
 * symmetric operators (dsaupd/dseupd in float64, ssaupd/sseupd in float32),
 * with every info code turned into a message and a residual check per pair.
 * A distributed operator runs PARPACK's twins (p?saupd/p?seupd,
 * solvers/mpi/parpack.c) on the ranks' rows: the same loop, with the rank
 * that speaks for PARPACK broadcasting its requests to ranks without rows.
 *
 *   check arguments -> v0 (given or from the seed) -> loop { saupd; OP x }
 *   -> seupd (Ritz values and vectors) -> sort ascending -> residuals
 */
#include <arpack/arpack.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/rt.h"
#include "solvers/solvers.h"

/* ARPACK keeps the state of a reverse-communication solve in Fortran SAVE
 * variables, so two solves may not interleave anywhere in the process: one
 * lock around each whole solve (the only process-wide state of solvers/). */
static pthread_mutex_t arpack_lock = PTHREAD_MUTEX_INITIALIZER;

void kf_eigsh_opts_init(kf_eigsh_opts *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->k = 6;
    o->which = KF_WHICH_LM;
    o->seed = 1;
}

static const char *which_name(kf_which w)
{
    static const char *const names[] = {"LM", "SM", "LA", "SA", "BE"};
    return w >= KF_WHICH_LM && w <= KF_WHICH_BE ? names[w] : NULL;
}

/* The messages of xsaupd's and xseupd's info codes (ARPACK-ng documentation). */
static const char *arpack_msg(int info)
{
    switch (info) {
    case 1: return "maximum number of iterations taken";
    case 3: return "no shifts could be applied during a cycle of the implicitly restarted Lanczos "
                   "iteration; try a larger ncv";
    case -1: return "N must be positive";
    case -2: return "NEV (k) must be positive";
    case -3: return "NCV must be greater than NEV (k) and at most N";
    case -4: return "the maximum number of iterations must be positive";
    case -5: return "WHICH must be one of LM, SM, LA, SA, BE";
    case -6: return "BMAT must be one of I or G";
    case -7: return "the length of the private work array WORKL is not sufficient";
    case -8: return "error in the LAPACK tridiagonal eigenvalue calculation (xsteqr)";
    case -9: return "the starting vector is zero";
    case -10: return "IPARAM(7) (mode) must be 1, 2, 3, 4 or 5";
    case -11: return "IPARAM(7) = 1 and BMAT = G are incompatible";
    case -12: return "IPARAM(1) must be 0 or 1";
    case -13: return "NEV (k) and WHICH = BE are incompatible";
    case -14: return "no eigenvalue was found to sufficient accuracy";
    case -15: return "HOWMNY must be A or S";
    case -16: return "HOWMNY = S is not implemented";
    case -17: return "the final extraction found a different count of converged Ritz values than "
                     "the iteration (the tolerance may be too tight for this dtype)";
    case -9999: return "could not build a Lanczos factorization (the operator may be zero or "
                       "produce an invariant subspace smaller than k)";
    }
    return "unknown ARPACK error";
}

/* One solve's buffers, all of the op's dtype except the ints. */
typedef struct solve {
    kf_linop *op;
    kf_dtype t;
    int n, k, ncv, lworkl;  /* n: the rows held here (the local size for PARPACK) */
    const kfs_dist *dist;   /* NULL: one process */
    kfs_parpack *pp;        /* distributed, on a rank with rows: PARPACK's ranks */
    char which[3];
    double tol;
    void *resid, *v, *workd, *workl, *d, *z;
    int *select;
    int iparam[11], ipntr[14];
} solve;

/* Distributed: what the speaking rank's PARPACK said, to every rank. */
static int share(solve *s, void *buf, size_t bytes)
{
    return s->dist ? kfs_comm_bcast(s->dist->comm, buf, bytes, s->dist->root) : KF_OK;
}

static void saupd(solve *s, int *ido, int *info)
{
    if (s->dist) {
        if (s->pp)
            kfs_psaupd(s->pp, s->t, ido, s->n, s->which, s->k, s->tol, s->resid, s->ncv, s->v,
                       s->n, s->iparam, s->ipntr, s->workd, s->workl, s->lworkl, info);
        int st[2] = {*ido, *info};
        if (share(s, st, sizeof st) != KF_OK)
            st[0] = 99, st[1] = -9999;
        *ido = st[0], *info = st[1];
        return;
    }
    if (s->t == KF_FLOAT64)
        dsaupd_c(ido, "I", s->n, s->which, s->k, s->tol, s->resid, s->ncv, s->v, s->n, s->iparam,
                 s->ipntr, s->workd, s->workl, s->lworkl, info);
    else
        ssaupd_c(ido, "I", s->n, s->which, s->k, (float)s->tol, s->resid, s->ncv, s->v, s->n,
                 s->iparam, s->ipntr, s->workd, s->workl, s->lworkl, info);
}

static void seupd(solve *s, int *info)
{
    if (s->dist) {
        if (s->pp)
            kfs_pseupd(s->pp, s->t, s->select, s->d, s->z, s->n, s->n, s->which, s->k, s->tol,
                       s->resid, s->ncv, s->v, s->n, s->iparam, s->ipntr, s->workd, s->workl,
                       s->lworkl, info);
        /* the Ritz values to the ranks without rows (their vectors are empty) */
        if (share(s, info, sizeof *info) != KF_OK ||
            share(s, s->d, (size_t)s->ncv * kfs_dsize(s->t)) != KF_OK)
            *info = -9999;
        return;
    }
    if (s->t == KF_FLOAT64)
        dseupd_c(1, "A", s->select, s->d, s->z, s->n, 0.0, "I", s->n, s->which, s->k, s->tol,
                 s->resid, s->ncv, s->v, s->n, s->iparam, s->ipntr, s->workd, s->workl, s->lworkl,
                 info);
    else
        sseupd_c(1, "A", s->select, s->d, s->z, s->n, 0.0f, "I", s->n, s->which, s->k,
                 (float)s->tol, s->resid, s->ncv, s->v, s->n, s->iparam, s->ipntr, s->workd,
                 s->workl, s->lworkl, info);
}

/* Argument checks of kf_eigsh; KF_OK or KF_ERR_ARG with the message. */
static int check_args(kf_linop *op, const kf_eigsh_opts *o, const void *values, int *ncv)
{
    kf_ctx *ctx = op->ctx;
    int64_t n = op->n;
    if (!o || !values)
        return kfr_error(ctx, KF_ERR_ARG, "kf_eigsh: opts and values must not be NULL");
    if (op->nloc > INT_MAX / 4)
        return kfr_error(ctx, KF_ERR_ARG, "kf_eigsh: n = %lld is beyond ARPACK's 32-bit sizes%s",
                         (long long)op->nloc, op->dist ? " (on this rank)" : "");
    if (!which_name(o->which))
        return kfr_error(ctx, KF_ERR_ARG, "kf_eigsh: unknown which %d (LM SM LA SA BE)",
                         (int)o->which);
    if (o->k < 1 || o->k >= n)
        return kfr_error(ctx, KF_ERR_ARG,
                         "kf_eigsh: k = %d eigenpairs of an operator of size %lld: ARPACK needs "
                         "1 <= k < n (use a dense solver for all of them)", o->k, (long long)n);
    if (o->which == KF_WHICH_BE && o->k < 2)
        return kfr_error(ctx, KF_ERR_ARG, "kf_eigsh: which = BE needs k >= 2 (one from each end)");
    int c = o->ncv;
    if (c == 0) {
        c = 2 * o->k + 1 > 20 ? 2 * o->k + 1 : 20;
        c = c > n ? (int)n : c;
    }
    if (c <= o->k || c > n)
        return kfr_error(ctx, KF_ERR_ARG,
                         "kf_eigsh: ncv = %d is out of range: it must satisfy k = %d < ncv <= n "
                         "= %lld", c, o->k, (long long)n);
    if (!(o->tol >= 0) || isinf(o->tol))
        return kfr_error(ctx, KF_ERR_ARG, "kf_eigsh: tol = %g, expected a finite value >= 0",
                         o->tol);
    if (o->maxiter < 0)
        return kfr_error(ctx, KF_ERR_ARG, "kf_eigsh: maxiter = %d, expected >= 0 (0: default)",
                         o->maxiter);
    if (o->v0) {
        /* distributed: the rank's rows of v0, so the verdicts are reduced */
        double nonzero = 0;
        int rc = KF_OK;
        for (int64_t i = 0; i < op->nloc && rc == KF_OK; i++) {
            double x = kfs_get(op->dtype, o->v0, i);
            if (!isfinite(x))
                rc = kfr_error(ctx, KF_ERR_ARG, "kf_eigsh: v0[%lld] = %g is not finite",
                               (long long)(kfs_row0(op) + i), x);
            nonzero = nonzero || x != 0;
        }
        if ((rc = kfs_agree(ctx, op->dist, rc)) != KF_OK)
            return rc;
        if ((rc = kfs_max(op, &nonzero, 1)) != KF_OK)
            return kfr_error(ctx, rc, "kf_eigsh: a reduction across ranks failed");
        if (!nonzero)
            return kfr_error(ctx, KF_ERR_ARG, "kf_eigsh: the starting vector v0 is zero");
    }
    *ncv = c;
    return KF_OK;
}

/* The ARPACK loop proper; lock held. Returns KF_OK, KF_ERR_NOCONV or an error. */
static int iterate(solve *s, const kf_eigsh_opts *o, kf_eigsh_report *rep)
{
    kf_ctx *ctx = s->op->ctx;
    size_t es = kfs_dsize(s->t);
    int ido = 0, info = 1; /* info = 1: resid holds the starting vector */
    int maxiter = o->maxiter;
    if (maxiter == 0)
        maxiter = s->op->n > INT_MAX / 20 ? INT_MAX / 2
                                          : (10 * (int)s->op->n > 1000 ? 10 * (int)s->op->n : 1000);
    memset(s->iparam, 0, sizeof s->iparam);
    s->iparam[0] = 1;       /* exact shifts */
    s->iparam[2] = maxiter;
    s->iparam[3] = 1;       /* block size: ARPACK only supports 1 */
    s->iparam[6] = 1;       /* mode 1: A x = lambda x */
    double start = kfs_now();
    for (;;) {
        saupd(s, &ido, &info);
        if (ido != -1 && ido != 1)
            break;
        /* a rank without rows has no PARPACK pointers and nothing to read */
        const char *x = s->dist && !s->pp ? (const char *)s->workd
                                          : (const char *)s->workd + (size_t)(s->ipntr[0] - 1) * es;
        char *y = s->dist && !s->pp ? (char *)s->workd
                                    : (char *)s->workd + (size_t)(s->ipntr[1] - 1) * es;
        double t0 = kfs_now();
        int rc = kf_linop_apply(s->op, x, y, 1);
        rep->matvec_s += kfs_now() - t0;
        rep->matvecs++;
        if (rc != KF_OK)
            return rc;
        if (o->progress)
            o->progress(o->progress_user, rep->matvecs, kfs_now() - start);
        for (int i = 0; i < s->n && rc == KF_OK; i++)
            if (isnan(kfs_get(s->t, y, i)))
                rc = kfr_error(ctx, KF_ERR_ARG,
                               "kf_eigsh: the operator gave NaN in row %lld (NaN or inf in the "
                               "points or arrays?)", (long long)(kfs_row0(s->op) + i));
        if ((rc = kfs_agree(ctx, s->dist, rc)) != KF_OK)
            return rc;
    }
    if (share(s, s->iparam, sizeof s->iparam) != KF_OK)
        return kfr_error(ctx, KF_ERR_INTERNAL, "kf_eigsh: a broadcast across ranks failed");
    rep->iterations = s->iparam[2];
    rep->restarts = rep->iterations > 0 ? rep->iterations - 1 : 0;
    rep->converged = s->iparam[4];
    rep->arpack_info = info;
    if (info < 0)
        return kfr_error(ctx, KF_ERR_INTERNAL, "kf_eigsh: ARPACK %csaupd info %d: %s",
                         s->t == KF_FLOAT64 ? 'd' : 's', info, arpack_msg(info));
    if (info == 3 && s->iparam[4] == 0)
        return kfr_error(ctx, KF_ERR_NOCONV, "kf_eigsh: ARPACK info 3: %s", arpack_msg(3));
    int nconv = s->iparam[4];
    if (nconv == 0) {
        rep->converged = 0;
        return kfr_error(ctx, KF_ERR_NOCONV,
                         "kf_eigsh: no eigenpair converged after %d iterations (%lld matvecs); "
                         "raise maxiter or ncv, or loosen tol", rep->iterations,
                         (long long)rep->matvecs);
    }
    int einfo = 0;
    seupd(s, &einfo);
    if (einfo != 0) {
        rep->arpack_info = einfo;
        return kfr_error(ctx, einfo == -14 ? KF_ERR_NOCONV : KF_ERR_INTERNAL,
                         "kf_eigsh: ARPACK %cseupd info %d: %s", s->t == KF_FLOAT64 ? 'd' : 's',
                         einfo, arpack_msg(einfo));
    }
    if (nconv < s->k)
        return kfr_error(ctx, KF_ERR_NOCONV,
                         "kf_eigsh: %d of %d eigenpairs converged after %d iterations (%lld "
                         "matvecs; ARPACK info %d: %s); they are returned, the rest are NaN",
                         nconv, s->k, rep->iterations, (long long)rep->matvecs, info,
                         arpack_msg(info));
    return KF_OK;
}

/* Writes values (ascending), vectors (row-major n x k) and residuals from
 * the nconv converged pairs in s->d, s->z; the rest NaN. */
static int finish(solve *s, int nconv, void *values, void *vectors, double *residuals,
                  kf_eigsh_report *rep)
{
    int n = s->n, k = s->k;
    kf_dtype t = s->t;
    int *ord = malloc((size_t)k * sizeof *ord);
    void *V = kfs_alloc((int64_t)n * (k > 0 ? k : 1) * 2, kfs_dsize(t));
    if (!ord || !V) {
        free(ord), free(V);
        return kfr_error(s->op->ctx, KF_ERR_NOMEM, "kf_eigsh: out of memory");
    }
    for (int j = 0; j < nconv; j++)
        ord[j] = j;
    for (int a = 1; a < nconv; a++) /* insertion sort: k is small */
        for (int b = a; b > 0 && kfs_get(t, s->d, ord[b]) < kfs_get(t, s->d, ord[b - 1]); b--) {
            int tmp = ord[b];
            ord[b] = ord[b - 1], ord[b - 1] = tmp;
        }
    for (int j = 0; j < k; j++) {
        kfs_set(t, values, j, j < nconv ? kfs_get(t, s->d, ord[j]) : NAN);
        for (int i = 0; i < n; i++)
            kfs_set(t, V, (int64_t)i * k + j,
                    j < nconv ? kfs_get(t, s->z, (int64_t)ord[j] * n + i) : NAN);
    }
    int rc = KF_OK;
    rep->max_residual = 0;
    double *acc = calloc((size_t)k, sizeof *acc);
    if (!acc)
        rc = kfr_error(s->op->ctx, KF_ERR_NOMEM, "kf_eigsh: out of memory");
    /* distributed: every rank takes part in the apply and the sums */
    rc = kfs_agree(s->op->ctx, s->dist, rc);
    if (rc == KF_OK) {
        void *AV = (char *)V + (size_t)n * (size_t)k * kfs_dsize(t);
        rc = nconv > 0 ? kf_linop_apply(s->op, V, AV, k) : KF_OK;
        for (int j = 0; j < nconv && rc == KF_OK; j++) {
            double lam = kfs_get(t, values, j);
            for (int i = 0; i < n; i++) {
                double e = kfs_get(t, AV, (int64_t)i * k + j) -
                           lam * kfs_get(t, V, (int64_t)i * k + j);
                acc[j] += e * e;
            }
        }
        if (rc == KF_OK && nconv > 0 && kfs_sum(s->op, acc, nconv) != KF_OK)
            rc = kfr_error(s->op->ctx, KF_ERR_INTERNAL, "kf_eigsh: a reduction across ranks failed");
        for (int j = 0; j < k && rc == KF_OK; j++) {
            double r = j < nconv ? sqrt(acc[j]) : NAN;
            if (r > rep->max_residual)
                rep->max_residual = r;
            if (residuals)
                residuals[j] = r;
        }
    }
    free(acc);
    if (rc == KF_OK && vectors)
        memcpy(vectors, V, (size_t)n * (size_t)k * kfs_dsize(t));
    free(ord), free(V);
    return rc;
}

int kf_eigsh(kf_linop *op, const kf_eigsh_opts *o, void *values, void *vectors,
             double *residuals, kf_eigsh_report *report)
{
    if (!op)
        return KF_ERR_ARG;
    double t_start = kfs_now();
    kfr_clear_error(op->ctx);
    kf_eigsh_report dummy, *rep = report ? report : &dummy;
    memset(rep, 0, sizeof *rep);
    int ncv = 0;
    int rc = check_args(op, o, values, &ncv);
    if (rc != KF_OK)
        return rc;
    solve s = {.op = op, .t = op->dtype, .n = (int)op->nloc, .k = o->k, .ncv = ncv, .tol = o->tol,
               .dist = op->dist};
    memcpy(s.which, which_name(o->which), 3);
    s.lworkl = ncv * (ncv + 8);
    size_t es = kfs_dsize(s.t);
    int64_t n = op->nloc;
    s.resid = kfs_alloc(n, es);
    s.v = kfs_alloc(n * ncv, es);
    s.workd = kfs_alloc(3 * n, es);
    s.workl = kfs_alloc(s.lworkl, es);
    s.d = kfs_alloc(ncv, es);
    s.z = kfs_alloc(n * (o->k + 1), es);
    s.select = calloc((size_t)ncv, sizeof *s.select);
    rep->ncv = ncv;
    if (!s.resid || !s.v || !s.workd || !s.workl || !s.d || !s.z || !s.select)
        rc = kfr_error(op->ctx, KF_ERR_NOMEM, "kf_eigsh: out of memory for a basis of %d vectors "
                       "of size %lld", ncv, (long long)n);
    if (s.dist && rc == KF_OK && !(s.pp = kfs_parpack_new(s.dist->comm, n > 0, &rc)) && rc != KF_OK)
        kfr_error(op->ctx, rc, "kf_eigsh: could not make PARPACK's communicator");
    if ((rc = kfs_agree(op->ctx, s.dist, rc)) != KF_OK)
        goto done;
    /* The serial start vector, each rank drawing its own rows of it. */
    uint64_t st = o->seed;
    kfs_rand_skip(&st, kfs_row0(op));
    for (int64_t i = 0; i < n; i++)
        kfs_set(s.t, s.resid, i, o->v0 ? kfs_get(s.t, o->v0, i) : kfs_rand_sym(&st));
    pthread_mutex_lock(&arpack_lock);
    double t_loop = kfs_now();
    rc = iterate(&s, o, rep);
    double loop_s = kfs_now() - t_loop;
    pthread_mutex_unlock(&arpack_lock);
    rep->arpack_s = loop_s - rep->matvec_s;
    int nconv = rep->converged < s.k ? rep->converged : s.k;
    if (rc == KF_OK || (rc == KF_ERR_NOCONV && nconv > 0 && rep->arpack_info >= 0)) {
        char keep[1024];
        memcpy(keep, op->ctx->msg, sizeof keep);
        int rc2 = finish(&s, nconv, values, vectors, residuals, rep);
        if (rc2 != KF_OK)
            rc = rc2;
        else if (rc == KF_ERR_NOCONV)
            kfr_error(op->ctx, rc, "%s", keep); /* the apply in finish cleared it */
    } else if (rc == KF_ERR_NOCONV) {
        for (int j = 0; j < s.k; j++)
            kfs_set(s.t, values, j, NAN);
    }
done:
    kfs_parpack_free(s.pp);
    free(s.resid), free(s.v), free(s.workd), free(s.workl), free(s.d), free(s.z), free(s.select);
    rep->total_s = kfs_now() - t_start;
    return rc;
}
