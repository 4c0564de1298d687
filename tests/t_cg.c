/* t_cg.c -- kf_cg on kernel ridge regression (alpha I + K) X = B against a dense Cholesky
 * solve: several right-hand sides, Jacobi on and off, both dtypes, non-convergence, zero
 * columns and rejected arguments. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "testutil.h"

#define GAUSS "Exp(-SqDist(x,y)/IntCst(2))*b"
static const char *const AL2[] = {"x=Vi(0,2)", "y=Vj(1,2)"};

static kf_ctx *newctx(void)
{
    kf_options o;
    kf_options_init(&o);
    o.threads = 2;
    o.no_cache = 1;
    return kf_new(&o);
}

/* Solves A X = B in place (B n x m row-major) by Cholesky of the SPD A (n x n, destroyed). */
static int cholesky_solve(int n, double *A, int m, double *B)
{
    for (int j = 0; j < n; j++) {
        double s = A[j * n + j];
        for (int k = 0; k < j; k++)
            s -= A[j * n + k] * A[j * n + k];
        if (!(s > 0))
            return -1;
        A[j * n + j] = sqrt(s);
        for (int i = j + 1; i < n; i++) {
            double t = A[i * n + j];
            for (int k = 0; k < j; k++)
                t -= A[i * n + k] * A[j * n + k];
            A[i * n + j] = t / A[j * n + j];
        }
    }
    for (int c = 0; c < m; c++) {
        for (int i = 0; i < n; i++) { /* L y = b */
            double t = B[i * m + c];
            for (int k = 0; k < i; k++)
                t -= A[i * n + k] * B[k * m + c];
            B[i * m + c] = t / A[i * n + i];
        }
        for (int i = n - 1; i >= 0; i--) { /* L^T x = y */
            double t = B[i * m + c];
            for (int k = i + 1; k < n; k++)
                t -= A[k * n + i] * B[k * m + c];
            B[i * m + c] = t / A[i * n + i];
        }
    }
    return 0;
}

KFT_TEST(cg_matches_dense_solve)
{
    kf_ctx *ctx = newctx();
    enum { N = 120, M = 3 };
    const double alpha = 0.1;
    kft_rng g;
    kft_rng_seed(&g, 31);
    for (int ti = 0; ti < 2; ti++) {
        kf_dtype t = ti ? KF_FLOAT64 : KF_FLOAT32;
        double x[2 * N], xd[2 * N], A[N * N], B[N * M], Xref[N * M], X[N * M], Bt[N * M];
        for (int i = 0; i < 2 * N; i++) {
            kft_set(x, t, i, kft_uniform(&g, 0, 6));
            xd[i] = kft_get(x, t, i);
        }
        for (int i = 0; i < N; i++)
            for (int j = 0; j < N; j++) {
                double dx = xd[2 * i] - xd[2 * j], dy = xd[2 * i + 1] - xd[2 * j + 1];
                A[i * N + j] = exp(-(dx * dx + dy * dy) / 2) + (i == j) * alpha;
            }
        for (int i = 0; i < N * M; i++) {
            Xref[i] = kft_uniform(&g, -1, 1);
            kft_set(Bt, t, i, Xref[i]);
            Xref[i] = B[i] = kft_get(Bt, t, i);
        }
        KFT_CHECK(cholesky_solve(N, A, M, Xref) == 0);
        kf_compile_opts co;
        kf_compile_opts_init(&co);
        co.jit = KF_JIT_TCC;
        const void *args[3] = {x, x, NULL};
        kf_linop *K = kf_linop_formula(ctx, GAUSS, AL2, 2, "b", 2, args, 3, N, t, &co, NULL);
        int iters[2] = {0, 0};
        for (int jac = 0; jac < 2; jac++) {
            kf_cg_opts o;
            kf_cg_opts_init(&o);
            o.alpha = alpha, o.jacobi = jac, o.tol = ti ? 1e-10 : 1e-5;
            double rel[M];
            kf_cg_report rep;
            int rc = kf_cg(K, Bt, X, M, &o, rel, &rep);
            KFT_CHECKF(rc == KF_OK, "dtype %d jacobi %d: %s", (int)t, jac, kf_errmsg(ctx));
            double err = 0, sc = 0;
            for (int i = 0; i < N * M; i++)
                err = fmax(err, fabs(kft_get(X, t, i) - Xref[i])), sc = fmax(sc, fabs(Xref[i]));
            /* cond(A) <= (max eig + alpha) / alpha: the error is at most cond * tol. */
            KFT_CHECKF(err / sc < (ti ? 1e-7 : 3e-2), "dtype %d jacobi %d: err %g", (int)t, jac,
                       err / sc);
            for (int c = 0; c < M; c++)
                KFT_CHECKF(rel[c] <= o.tol * (ti ? 10 : 50), "relres %g", rel[c]);
            KFT_CHECK(rep.converged == M && rep.iterations > 0 &&
                      rep.matvecs == (int64_t)M * (rep.iterations + 1));
            iters[jac] = rep.iterations;
        }
        /* The Gaussian's diagonal is constant: Jacobi only rescales, same iteration count. */
        KFT_CHECKF(abs(iters[0] - iters[1]) <= 2 + iters[0] / 10, "iterations %d vs %d", iters[0],
                   iters[1]);
        kf_linop_free(K);
    }
    kf_free(ctx);
}

/* Jacobi with an uneven diagonal: alpha I + diag(d) + K, d spread over 1..1000. */
KFT_TEST(cg_jacobi_helps_uneven_diagonal)
{
    kf_ctx *ctx = newctx();
    enum { N = 100 };
    kft_rng g;
    kft_rng_seed(&g, 32);
    double x[2 * N], d[N], B[N], X[N], rel[1];
    for (int i = 0; i < 2 * N; i++)
        x[i] = kft_uniform(&g, 0, 5);
    for (int i = 0; i < N; i++)
        d[i] = pow(10, kft_uniform(&g, 0, 3)), B[i] = kft_uniform(&g, -1, 1);
    kf_compile_opts co;
    kf_compile_opts_init(&co);
    co.jit = KF_JIT_TCC;
    const void *args[3] = {x, x, NULL};
    kf_linop *K = kf_linop_formula(ctx, GAUSS, AL2, 2, "b", 2, args, 3, N, KF_FLOAT64, &co, NULL);
    kf_linop *D = kf_linop_diag(ctx, KF_FLOAT64, N, d);
    kf_linop *A = kf_linop_add(D, K);
    kf_cg_opts o;
    kf_cg_opts_init(&o);
    o.tol = 1e-10;
    kf_cg_report plain, jac;
    KFT_CHECK(kf_cg(A, B, X, 1, &o, rel, &plain) == KF_OK);
    o.jacobi = 1; /* diag(A) = d + 1, from the operators themselves */
    KFT_CHECK(kf_cg(A, B, X, 1, &o, rel, &jac) == KF_OK && rel[0] < 1e-9);
    KFT_CHECKF(jac.iterations * 2 < plain.iterations, "jacobi %d vs plain %d", jac.iterations,
               plain.iterations);
    kf_linop_free(A), kf_linop_free(D), kf_linop_free(K);
    kf_free(ctx);
}

KFT_TEST(cg_noconv_zero_columns_and_bad_args)
{
    kf_ctx *ctx = newctx();
    enum { N = 80 };
    kft_rng g;
    kft_rng_seed(&g, 33);
    double x[2 * N], B[N * 2], X[N * 2], rel[2];
    for (int i = 0; i < 2 * N; i++)
        x[i] = kft_uniform(&g, 0, 4);
    for (int i = 0; i < N; i++)
        B[2 * i] = kft_uniform(&g, -1, 1), B[2 * i + 1] = 0, X[2 * i + 1] = 5;
    kf_compile_opts co;
    kf_compile_opts_init(&co);
    co.jit = KF_JIT_TCC;
    const void *args[3] = {x, x, NULL};
    kf_linop *K = kf_linop_formula(ctx, GAUSS, AL2, 2, "b", 2, args, 3, N, KF_FLOAT64, &co, NULL);
    kf_cg_opts o;
    kf_cg_opts_init(&o);
    o.alpha = 1e-3, o.maxiter = 2, o.tol = 1e-12;
    kf_cg_report rep;
    KFT_CHECK(kf_cg(K, B, X, 2, &o, rel, &rep) == KF_ERR_NOCONV &&
              strstr(kf_errmsg(ctx), "1 of 2 columns"));
    KFT_CHECK(rep.iterations == 2 && rep.converged == 1 && rel[0] > 1e-12 && rel[1] == 0);
    for (int i = 0; i < N; i++)
        KFT_CHECK(X[2 * i + 1] == 0); /* a zero column gives 0, whatever X held */
    o.maxiter = 0, o.tol = 0;
    KFT_CHECK(kf_cg(K, B, X, 2, &o, rel, NULL) == KF_ERR_ARG);
    o.tol = 1e-6;
    KFT_CHECK(kf_cg(K, B, X, 0, &o, rel, NULL) == KF_ERR_ARG);
    B[6] = NAN;
    KFT_CHECK(kf_cg(K, B, X, 2, &o, rel, NULL) == KF_ERR_ARG && strstr(kf_errmsg(ctx), "B[3, 0]"));
    B[6] = 0;
    o.alpha = -5, o.jacobi = 1; /* alpha + diag = -4: Jacobi impossible */
    KFT_CHECK(kf_cg(K, B, X, 2, &o, rel, NULL) == KF_ERR_ARG &&
              strstr(kf_errmsg(ctx), "positive diagonal"));
    o.jacobi = 0; /* -5 I + K is indefinite: detected, not looped on */
    KFT_CHECK(kf_cg(K, B, X, 2, &o, rel, NULL) == KF_ERR_ARG &&
              strstr(kf_errmsg(ctx), "not positive definite"));
    kf_linop_free(K);
    kf_free(ctx);
}
