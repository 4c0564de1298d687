/* cg.c -- kf_cg: block conjugate gradients for (alpha I + A) X = B, every
 * column its own CG (own step sizes) but all columns applied together, so a
 * kernel operator is evaluated once per iteration for all right-hand sides.
 * Iterates in float64 whatever the operator's dtype. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/rt.h"
#include "solvers/solvers.h"

void kf_cg_opts_init(kf_cg_opts *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->tol = 1e-6;
}

typedef struct cg {
    kf_linop *A;
    int64_t n, m;
    double alpha;
    void *in, *out; /* n x m blocks of the op's dtype for the applies */
    kf_cg_report *rep;
} cg;

/* q = (alpha I + A) p for the whole n x m block. */
static int apply(cg *c, const double *p, double *q)
{
    kf_dtype t = c->A->dtype;
    int64_t cnt = c->n * c->m;
    for (int64_t i = 0; i < cnt; i++)
        kfs_set(t, c->in, i, p[i]);
    double t0 = kfs_now();
    int rc = kf_linop_apply(c->A, c->in, c->out, c->m);
    c->rep->matvec_s += kfs_now() - t0;
    c->rep->matvecs += c->m;
    if (rc != KF_OK)
        return rc;
    for (int64_t i = 0; i < cnt; i++)
        q[i] = c->alpha * p[i] + kfs_get(t, c->out, i);
    return KF_OK;
}

/* Column dot products: out[j] = sum_i a[i, j] b[i, j]. */
static void coldot(const cg *c, const double *a, const double *b, double *out)
{
    for (int64_t j = 0; j < c->m; j++)
        out[j] = 0;
    for (int64_t i = 0; i < c->n; i++)
        for (int64_t j = 0; j < c->m; j++)
            out[j] += a[i * c->m + j] * b[i * c->m + j];
}

/* The Jacobi preconditioner 1 / (alpha + diag A) into minv (n), or all ones. */
static int precond(cg *c, const kf_cg_opts *o, double *minv)
{
    int64_t n = c->n;
    if (!o->jacobi) {
        for (int64_t i = 0; i < n; i++)
            minv[i] = 1;
        return KF_OK;
    }
    void *d = (void *)o->diag;
    void *own = NULL;
    if (!d) {
        if (!(own = d = kfs_alloc(n, kfs_dsize(c->A->dtype))))
            return kfr_error(c->A->ctx, KF_ERR_NOMEM, "kf_cg: out of memory");
        int rc = kf_linop_diagonal(c->A, d);
        if (rc != KF_OK) {
            free(own);
            return rc;
        }
    }
    int rc = KF_OK;
    for (int64_t i = 0; i < n && rc == KF_OK; i++) {
        double v = c->alpha + kfs_get(c->A->dtype, d, i);
        if (!(v > 0) || !isfinite(v))
            rc = kfr_error(c->A->ctx, KF_ERR_ARG,
                           "kf_cg: alpha + diag[%lld] = %g; Jacobi preconditioning needs a "
                           "positive diagonal", (long long)i, v);
        else
            minv[i] = 1 / v;
    }
    free(own);
    return rc;
}

static int check_args(kf_linop *A, const void *B, void *X, int64_t nrhs, const kf_cg_opts *o)
{
    kf_ctx *ctx = A->ctx;
    if (!B || !X || !o)
        return kfr_error(ctx, KF_ERR_ARG, "kf_cg: B, X and opts must not be NULL");
    if (nrhs < 1 || nrhs > (1 << 20))
        return kfr_error(ctx, KF_ERR_ARG, "kf_cg: nrhs = %lld, expected 1..%d", (long long)nrhs,
                         1 << 20);
    if (!isfinite(o->alpha) || !(o->tol > 0) || !isfinite(o->tol) || o->maxiter < 0)
        return kfr_error(ctx, KF_ERR_ARG,
                         "kf_cg: alpha = %g, tol = %g, maxiter = %d: expected a finite alpha, "
                         "tol > 0 and maxiter >= 0", o->alpha, o->tol, o->maxiter);
    int64_t cnt;
    if (__builtin_mul_overflow(A->n, nrhs, &cnt) || cnt > INT64_MAX / 64)
        return kfr_error(ctx, KF_ERR_ARG, "kf_cg: %lld x %lld is too large", (long long)A->n,
                         (long long)nrhs);
    for (int64_t i = 0; i < cnt; i++) {
        double b = kfs_get(A->dtype, B, i);
        double x = o->x0 ? kfs_get(A->dtype, X, i) : 0;
        if (!isfinite(b) || !isfinite(x))
            return kfr_error(ctx, KF_ERR_ARG, "kf_cg: %s[%lld, %lld] = %g is not finite",
                             isfinite(b) ? "X" : "B", (long long)(i / nrhs),
                             (long long)(i % nrhs), isfinite(b) ? x : b);
    }
    return KF_OK;
}

/* The CG iterations on the whole block; buffers set up by kf_cg. */
static int iterate(cg *c, const kf_cg_opts *o, const double *minv, const double *bn, double *x,
                   double *r, double *z, double *p, double *q, double *rz, double *tmp,
                   unsigned char *done)
{
    int64_t n = c->n, m = c->m;
    int maxiter = o->maxiter ? o->maxiter : (n > 100000 ? 1000000 : (int)(10 * n > 100 ? 10 * n : 100));
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < m; j++)
            z[i * m + j] = minv[i] * r[i * m + j];
    memcpy(p, z, (size_t)(n * m) * sizeof *p);
    coldot(c, r, z, rz);
    coldot(c, r, r, tmp);
    int active = 0;
    for (int64_t j = 0; j < m; j++)
        active += !(done[j] = bn[j] == 0 || sqrt(tmp[j]) <= o->tol * bn[j]);
    int it = 0;
    while (active > 0 && it < maxiter) {
        int rc = apply(c, p, q);
        if (rc != KF_OK)
            return rc;
        it++;
        coldot(c, p, q, tmp);
        for (int64_t j = 0; j < m; j++) {
            if (done[j])
                continue;
            if (!(tmp[j] > 0))
                return kfr_error(c->A->ctx, KF_ERR_ARG,
                                 "kf_cg: p.(alpha I + A) p = %g <= 0 in column %lld at iteration "
                                 "%d: the operator is not positive definite", tmp[j], (long long)j,
                                 it);
            double a = rz[j] / tmp[j];
            for (int64_t i = 0; i < n; i++) {
                x[i * m + j] += a * p[i * m + j];
                r[i * m + j] -= a * q[i * m + j];
            }
        }
        coldot(c, r, r, tmp);
        for (int64_t j = 0; j < m; j++)
            if (!done[j] && sqrt(tmp[j]) <= o->tol * bn[j])
                done[j] = 1, active--;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < m; j++)
                z[i * m + j] = minv[i] * r[i * m + j];
        coldot(c, r, z, tmp);
        for (int64_t j = 0; j < m; j++) {
            if (done[j])
                continue;
            double beta = tmp[j] / rz[j];
            rz[j] = tmp[j];
            for (int64_t i = 0; i < n; i++)
                p[i * m + j] = z[i * m + j] + beta * p[i * m + j];
        }
    }
    c->rep->iterations = it;
    return KF_OK;
}

int kf_cg(kf_linop *A, const void *B, void *X, int64_t nrhs, const kf_cg_opts *o, double *relres,
          kf_cg_report *report)
{
    if (!A)
        return KF_ERR_ARG;
    double t_start = kfs_now();
    kfr_clear_error(A->ctx);
    kf_cg_report dummy, *rep = report ? report : &dummy;
    memset(rep, 0, sizeof *rep);
    if (A->dist)
        return kfr_error(A->ctx, KF_ERR_UNSUPPORTED, "kf_cg: distributed operators are not "
                         "supported (kf_eigsh and kf_spectral are)");
    int rc = check_args(A, B, X, nrhs, o);
    if (rc != KF_OK)
        return rc;
    int64_t n = A->n, m = nrhs, cnt = n * m;
    size_t es = kfs_dsize(A->dtype);
    cg c = {.A = A, .n = n, .m = m, .alpha = o->alpha, .rep = rep};
    double *buf = kfs_alloc(5 * cnt + n + 3 * m, sizeof(double));
    char *io = kfs_alloc(2 * cnt, es);
    unsigned char *done = calloc((size_t)m, 1);
    if (!buf || !io || !done) {
        free(buf), free(io), free(done);
        return kfr_error(A->ctx, KF_ERR_NOMEM, "kf_cg: out of memory");
    }
    double *x = buf, *r = x + cnt, *z = r + cnt, *p = z + cnt, *q = p + cnt, *minv = q + cnt;
    double *bn = minv + n, *rz = bn + m, *tmp = rz + m;
    c.in = io, c.out = io + (size_t)cnt * es;
    for (int64_t i = 0; i < cnt; i++)
        r[i] = kfs_get(A->dtype, B, i), x[i] = o->x0 ? kfs_get(A->dtype, X, i) : 0;
    coldot(&c, r, r, bn);
    for (int64_t j = 0; j < m; j++)
        bn[j] = sqrt(bn[j]);
    for (int64_t i = 0; i < cnt; i++) /* a zero column's solution is 0, whatever x0 says */
        if (bn[i % m] == 0)
            x[i] = 0;
    rc = precond(&c, o, minv);
    if (rc == KF_OK && o->x0 && (rc = apply(&c, x, q)) == KF_OK)
        for (int64_t i = 0; i < cnt; i++)
            r[i] -= q[i];
    if (rc == KF_OK)
        rc = iterate(&c, o, minv, bn, x, r, z, p, q, rz, tmp, done);
    /* The true residual of the final X, reported per column (one more apply). */
    if (rc == KF_OK && (rc = apply(&c, x, q)) == KF_OK) {
        for (int64_t i = 0; i < cnt; i++)
            r[i] = kfs_get(A->dtype, B, i) - q[i];
        coldot(&c, r, r, tmp);
        for (int64_t j = 0; j < m; j++) {
            double rr = bn[j] > 0 ? sqrt(tmp[j]) / bn[j] : 0;
            if (relres)
                relres[j] = rr;
            if (rr > rep->max_relres)
                rep->max_relres = rr;
            rep->converged += done[j];
        }
        for (int64_t i = 0; i < cnt; i++)
            kfs_set(A->dtype, X, i, x[i]);
        if (rep->converged < m)
            rc = kfr_error(A->ctx, KF_ERR_NOCONV,
                           "kf_cg: %d of %lld columns reached tol = %g in %d iterations (largest "
                           "relative residual %g); X holds the last iterate",
                           rep->converged, (long long)m, o->tol, rep->iterations, rep->max_relres);
    }
    free(buf), free(io), free(done);
    rep->total_s = kfs_now() - t_start;
    return rc;
}
