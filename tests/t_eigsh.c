/* t_eigsh.c -- kf_eigsh and kf_spectral against LAPACK's dsyevd on dense kernel matrices:
 * every `which`, both dtypes, eigenvectors up to sign (subspace for repeated values), the
 * spectral modes, non-convergence, reproducibility and rejected arguments. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "testutil.h"

/* LAPACK (Fortran): all eigenpairs of a symmetric matrix, ascending. The
 * trailing lengths are gfortran's hidden CHARACTER lengths. */
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
             double *work, const int *lwork, int *iwork, const int *liwork, int *info, size_t,
             size_t);

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

/* A test problem: n points in [0, scale)^2 (already divided by sigma), the
 * Gaussian formula operator, and the dense K, L and L_norm in double. */
typedef struct prob {
    int n;
    kf_dtype t;
    double *x;      /* points of dtype (room for double) */
    const void *args[3];
    kf_linop *K;
    double *Kd, *Ld, *Nd; /* dense K, L = diag(D) - K, L_norm (column-major = row-major: symmetric) */
} prob;

static int prob_make(prob *p, kf_ctx *ctx, int n, double scale, kf_dtype t, uint64_t seed)
{
    memset(p, 0, sizeof *p);
    p->n = n, p->t = t;
    p->x = malloc(2 * (size_t)n * sizeof(double));
    p->Kd = malloc((size_t)n * n * sizeof(double));
    p->Ld = malloc((size_t)n * n * sizeof(double));
    p->Nd = malloc((size_t)n * n * sizeof(double));
    double *xd = malloc(2 * (size_t)n * sizeof(double)), *D = calloc((size_t)n, sizeof(double));
    kft_rng g;
    kft_rng_seed(&g, seed);
    for (int i = 0; i < 2 * n; i++) {
        kft_set(p->x, t, i, kft_uniform(&g, 0, scale));
        xd[i] = kft_get(p->x, t, i);
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double dx = xd[2 * i] - xd[2 * j], dy = xd[2 * i + 1] - xd[2 * j + 1];
            D[i] += p->Kd[i * n + j] = exp(-(dx * dx + dy * dy) / 2);
        }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double k = p->Kd[i * n + j];
            p->Ld[i * n + j] = (i == j) * D[i] - k;
            p->Nd[i * n + j] = (i == j) - k / sqrt(D[i] * D[j]);
        }
    free(xd), free(D);
    kf_compile_opts co;
    kf_compile_opts_init(&co);
    co.jit = KF_JIT_TCC;
    p->args[0] = p->x, p->args[1] = p->x;
    p->K = kf_linop_formula(ctx, GAUSS, AL2, 2, "b", 2, p->args, 3, n, t, &co, NULL);
    if (!p->K)
        printf("prob_make: %s\n", kf_errmsg(ctx));
    return p->K ? 0 : -1;
}

static void prob_free(prob *p)
{
    kf_linop_free(p->K);
    free(p->x), free(p->Kd), free(p->Ld), free(p->Nd);
}

/* All eigenpairs of the dense symmetric A (n x n, copied): w ascending, Z
 * column-major (column j = vector j). Returns LAPACK's info. */
static int dense_eig(int n, const double *A, double *w, double *Z)
{
    memcpy(Z, A, (size_t)n * n * sizeof *Z);
    int lwork = -1, liwork = -1, info = 0, iw;
    double wq;
    dsyevd_("V", "U", &n, Z, &n, w, &wq, &lwork, &iw, &liwork, &info, 1, 1);
    lwork = (int)wq, liwork = iw;
    double *work = malloc((size_t)lwork * sizeof *work);
    int *iwork = malloc((size_t)liwork * sizeof *iwork);
    dsyevd_("V", "U", &n, Z, &n, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    free(work), free(iwork);
    return info;
}

/* The indices of the reference eigenvalues `which` selects (k of them), ascending by value. */
static void select_ref(int n, const double *w, kf_which which, int k, int *sel)
{
    int *ord = malloc((size_t)n * sizeof *ord), c = 0;
    for (int i = 0; i < n; i++)
        ord[i] = i;
    /* sort indices by the selection key (largest key first) */
    for (int a = 1; a < n; a++)
        for (int b = a; b > 0; b--) {
            double ka, kb;
            int ia = ord[b], ib = ord[b - 1];
            switch (which) {
            case KF_WHICH_LM: ka = fabs(w[ia]), kb = fabs(w[ib]); break;
            case KF_WHICH_SM: ka = -fabs(w[ia]), kb = -fabs(w[ib]); break;
            case KF_WHICH_LA: ka = w[ia], kb = w[ib]; break;
            default: ka = -w[ia], kb = -w[ib]; break;
            }
            if (ka <= kb)
                break;
            ord[b] = ib, ord[b - 1] = ia;
        }
    if (which == KF_WHICH_BE) { /* k/2 from the bottom, the rest from the top */
        for (int i = 0; i < k / 2; i++)
            sel[c++] = i;
        for (int i = n - (k - k / 2); i < n; i++)
            sel[c++] = i;
    } else {
        for (int i = 0; i < k; i++)
            sel[c++] = ord[i];
    }
    for (int a = 1; a < k; a++) /* ascending by value */
        for (int b = a; b > 0 && w[sel[b]] < w[sel[b - 1]]; b--) {
            int tmp = sel[b];
            sel[b] = sel[b - 1], sel[b - 1] = tmp;
        }
    free(ord);
}

/* Compares k computed pairs (values of dtype t, vectors row-major n x k) with
 * the dense reference: values to rtol relative to max(|lambda|, 1e-2 |A|);
 * each vector must lie in the span of the reference vectors whose values are
 * within the tolerance (so repeated values compare as subspaces). */
static int check_pairs(int n, int k, kf_dtype t, const void *vals, const void *vecs,
                       const double *w, const double *Z, const int *sel, double rtol,
                       double vtol, const char *what)
{
    double anorm = fmax(fabs(w[0]), fabs(w[n - 1]));
    int bad = 0;
    for (int j = 0; j < k; j++) {
        double got = kft_get(vals, t, j), want = w[sel[j]];
        double scale = fmax(fabs(want), 1e-2 * anorm);
        if (!(fabs(got - want) <= rtol * scale)) {
            if (bad++ < 3)
                printf("  %s: value %d = %.15g, LAPACK %.15g\n", what, j, got, want);
            continue;
        }
        double proj = 0, nv = 0;
        for (int r = 0; r < n; r++) {
            if (fabs(w[r] - want) > fmax(1e3 * rtol * scale, 1e-9 * anorm))
                continue;
            double dot = 0;
            for (int i = 0; i < n; i++)
                dot += kft_get(vecs, t, (int64_t)i * k + j) * Z[(size_t)r * n + i];
            proj += dot * dot;
        }
        for (int i = 0; i < n; i++)
            nv += pow(kft_get(vecs, t, (int64_t)i * k + j), 2);
        if (!(fabs(proj - 1) <= vtol && fabs(nv - 1) <= vtol)) {
            if (bad++ < 3)
                printf("  %s: vector %d: |projection|^2 = %.12g, norm^2 %.12g\n", what, j, proj,
                       nv);
        }
    }
    return bad;
}

KFT_TEST(eigsh_every_which_float64_vs_dsyevd)
{
    kf_ctx *ctx = newctx();
    prob p;
    int n = 120, k = 5;
    if (prob_make(&p, ctx, n, 8, KF_FLOAT64, 21))
        return;
    double *w = malloc(n * sizeof *w), *Z = malloc((size_t)n * n * sizeof *Z);
    kf_linop *L = kf_linop_graph(p.K, KF_GRAPH_LAPLACIAN, NULL, NULL);
    KFT_CHECK(L && dense_eig(n, p.Ld, w, Z) == 0);
    double vals[8], vecs[120 * 8], res[8];
    int sel[8];
    for (int wh = KF_WHICH_LM; wh <= KF_WHICH_BE; wh++) {
        kf_eigsh_opts o;
        kf_eigsh_opts_init(&o);
        o.k = k, o.which = (kf_which)wh, o.seed = 3;
        if (wh == KF_WHICH_SM)
            o.ncv = 40; /* SM without shift-invert converges slowly on a small basis */
        kf_eigsh_report rep;
        int rc = kf_eigsh(L, &o, vals, vecs, res, &rep);
        KFT_CHECKF(rc == KF_OK, "which %d: %s", wh, kf_errmsg(ctx));
        select_ref(n, w, (kf_which)wh, k, sel);
        char what[32];
        snprintf(what, sizeof what, "f64 which %d", wh);
        KFT_CHECK(check_pairs(n, k, KF_FLOAT64, vals, vecs, w, Z, sel, 1e-8, 1e-8, what) == 0);
        KFT_CHECK(rep.converged == k && rep.matvecs > 0 && rep.iterations >= 1);
        KFT_CHECKF(rep.max_residual < 1e-8 * fabs(w[n - 1]), "residual %g", rep.max_residual);
        for (int j = 0; j < k; j++)
            KFT_CHECK(res[j] <= rep.max_residual);
        KFT_CHECK(rep.total_s >= rep.matvec_s && rep.arpack_s >= 0);
    }
    kf_linop_free(L);
    free(w), free(Z);
    prob_free(&p);
    kf_free(ctx);
}

KFT_TEST(eigsh_float32_and_kernel_vs_dsyevd)
{
    kf_ctx *ctx = newctx();
    int n = 150, k = 4;
    double *w = malloc(n * sizeof *w), *Z = malloc((size_t)n * n * sizeof *Z);
    float vals[8], vecs[150 * 8];
    int sel[8];
    prob p;
    if (prob_make(&p, ctx, n, 5, KF_FLOAT32, 22))
        return;
    kf_linop *L = kf_linop_graph(p.K, KF_GRAPH_LAPLACIAN, NULL, NULL);
    KFT_CHECK(L && dense_eig(n, p.Ld, w, Z) == 0);
    const kf_which ws[] = {KF_WHICH_LA, KF_WHICH_SA, KF_WHICH_BE};
    for (int c = 0; c < 3; c++) {
        kf_eigsh_opts o;
        kf_eigsh_opts_init(&o);
        o.k = k, o.which = ws[c], o.ncv = 30;
        int rc = kf_eigsh(L, &o, vals, vecs, NULL, NULL);
        KFT_CHECKF(rc == KF_OK, "%s", kf_errmsg(ctx));
        select_ref(n, w, ws[c], k, sel);
        KFT_CHECK(check_pairs(n, k, KF_FLOAT32, vals, vecs, w, Z, sel, 1e-4, 1e-3, "f32 L") ==
                  0);
    }
    /* The top of K itself (LM) in float32. */
    KFT_CHECK(dense_eig(n, p.Kd, w, Z) == 0);
    kf_eigsh_opts o;
    kf_eigsh_opts_init(&o);
    o.k = k;
    KFT_CHECK(kf_eigsh(p.K, &o, vals, vecs, NULL, NULL) == KF_OK);
    select_ref(n, w, KF_WHICH_LM, k, sel);
    KFT_CHECK(check_pairs(n, k, KF_FLOAT32, vals, vecs, w, Z, sel, 1e-4, 1e-3, "f32 K") == 0);
    kf_linop_free(L);
    prob_free(&p);
    free(w), free(Z);
    kf_free(ctx);
}

/* Repeated eigenvalues: a diagonal operator with a double value, compared as a subspace. */
KFT_TEST(eigsh_repeated_values_subspace)
{
    kf_ctx *ctx = newctx();
    enum { N = 60 };
    double d[N], A[N * N] = {0}, w[N], Z[N * N], vals[3], vecs[N * 3];
    for (int i = 0; i < N; i++)
        d[i] = 1 + i % 17 * 0.1;
    d[5] = d[40] = 10; /* the top value twice */
    d[9] = 9;
    for (int i = 0; i < N; i++)
        A[i * N + i] = d[i];
    kf_linop *D = kf_linop_diag(ctx, KF_FLOAT64, N, d);
    kf_eigsh_opts o;
    kf_eigsh_opts_init(&o);
    o.k = 3, o.which = KF_WHICH_LA;
    KFT_CHECKF(kf_eigsh(D, &o, vals, vecs, NULL, NULL) == KF_OK, "%s", kf_errmsg(ctx));
    dense_eig(N, A, w, Z);
    int sel[3] = {N - 3, N - 2, N - 1};
    KFT_CHECK(check_pairs(N, 3, KF_FLOAT64, vals, vecs, w, Z, sel, 1e-10, 1e-8, "repeated") == 0);
    KFT_CHECK(fabs(vals[1] - 10) < 1e-12 && fabs(vals[2] - 10) < 1e-12 && fabs(vals[0] - 9) < 1e-12);
    kf_linop_free(D);
    kf_free(ctx);
}

KFT_TEST(eigsh_spectral_modes_agree)
{
    kf_ctx *ctx = newctx();
    int n = 200, k = 5;
    prob p;
    if (prob_make(&p, ctx, n, 8, KF_FLOAT64, 23))
        return;
    double *w = malloc(n * sizeof *w), *Z = malloc((size_t)n * n * sizeof *Z);
    double vals[8], *vecs = malloc((size_t)n * 8 * sizeof *vecs), res[8];
    int sel[8];
    for (int lap = 1; lap <= 2; lap++) {
        KFT_CHECK(dense_eig(n, lap == 1 ? p.Ld : p.Nd, w, Z) == 0);
        select_ref(n, w, KF_WHICH_SA, k, sel);
        for (int mode = KF_SPECTRAL_DIRECT; mode <= KF_SPECTRAL_COARSE; mode++) {
            kf_spectral_opts so;
            kf_spectral_opts_init(&so);
            so.eig.k = k, so.eig.which = KF_WHICH_SM, so.laplacian = lap;
            so.eig.ncv = 40, so.mode = (kf_spectral_mode)mode;
            kf_eigsh_report rep;
            kf_spectral_mode used;
            int rc = kf_spectral(p.K, &so, vals, vecs, res, &rep, &used);
            KFT_CHECKF(rc == KF_OK, "lap %d mode %d: %s", lap, mode, kf_errmsg(ctx));
            KFT_CHECK((int)used == mode);
            char what[32];
            snprintf(what, sizeof what, "lap %d mode %d", lap, mode);
            KFT_CHECK(check_pairs(n, k, KF_FLOAT64, vals, vecs, w, Z, sel, 1e-8, 1e-7, what) == 0);
            KFT_CHECK(rep.max_residual < 1e-8 * fabs(w[n - 1]));
            KFT_CHECK(mode != KF_SPECTRAL_COARSE || (rep.matvecs_coarse > 0 && rep.coarse_s > 0));
            if (getenv("KFT_VERBOSE"))
                printf("  lap %d mode %d: %lld matvecs (+%lld coarse), %d iterations\n", lap, mode,
                       (long long)rep.matvecs, (long long)rep.matvecs_coarse, rep.iterations);
        }
    }
    /* Modes that cannot apply are refused, not silently replaced. */
    kf_spectral_opts so;
    kf_spectral_opts_init(&so);
    so.eig.k = 3, so.eig.which = KF_WHICH_LA, so.laplacian = KF_GRAPH_LAPLACIAN;
    so.mode = KF_SPECTRAL_SHIFTED;
    KFT_CHECK(kf_spectral(p.K, &so, vals, vecs, NULL, NULL, NULL) == KF_ERR_ARG &&
              strstr(kf_errmsg(ctx), "shifted mode needs"));
    so.laplacian = 5;
    KFT_CHECK(kf_spectral(p.K, &so, vals, vecs, NULL, NULL, NULL) == KF_ERR_ARG);
    kf_linop *L = kf_linop_graph(p.K, KF_GRAPH_LAPLACIAN, NULL, NULL);
    so.laplacian = 0, so.mode = KF_SPECTRAL_AUTO;
    KFT_CHECK(kf_spectral(L, &so, vals, vecs, NULL, NULL, NULL) == KF_ERR_ARG &&
              strstr(kf_errmsg(ctx), "kernel or formula operator"));
    kf_linop_free(L);
    free(w), free(Z), free(vecs);
    prob_free(&p);
    kf_free(ctx);
}

/* The block solver (LOBPCG, solvers/lobpcg.c) against dense LAPACK: the
 * smallest of L_norm and of L through the shifted and coarse modes, K's
 * largest directly, both dtypes, blocks of k + 1 and wider; and what it
 * refuses (the smallest directly, a block narrower than k). */
/* The block solver's residual progress: called every iteration with the
 * worst unconverged residual; the ETA appears once the window is full. */
typedef struct res_seen {
    int calls, etas;
    double first, last;
} res_seen;

static void on_residual(void *user, int64_t matvecs, double elapsed_s, double residual,
                        double eta_s)
{
    res_seen *r = user;
    if (r->calls++ == 0)
        r->first = residual;
    r->last = residual;
    r->etas += eta_s >= 0;
    (void)matvecs, (void)elapsed_s;
}

KFT_TEST(eigsh_block_solver_vs_dsyevd)
{
    kf_ctx *ctx = newctx();
    int n = 300, k = 5;
    double *w = malloc(n * sizeof *w), *Z = malloc((size_t)n * n * sizeof *Z);
    double vals[8], *vecs = malloc((size_t)n * 8 * sizeof *vecs), res[8];
    int sel[8];
    for (int dt = 0; dt < 2; dt++) {
        kf_dtype t = dt ? KF_FLOAT32 : KF_FLOAT64;
        prob p;
        if (prob_make(&p, ctx, n, 8, t, 31))
            break;
        static const struct {
            int lap, mode, block;
            kf_which which;
        } C[] = {
            {KF_GRAPH_LAPLACIAN_NORM, KF_SPECTRAL_SHIFTED, 0, KF_WHICH_SM},
            {KF_GRAPH_LAPLACIAN_NORM, KF_SPECTRAL_COARSE, 0, KF_WHICH_SM},
            {KF_GRAPH_LAPLACIAN_NORM, KF_SPECTRAL_AUTO, 9, KF_WHICH_SA},
            {KF_GRAPH_LAPLACIAN, KF_SPECTRAL_SHIFTED, 8, KF_WHICH_SM},
            {0, KF_SPECTRAL_DIRECT, 0, KF_WHICH_LA},
        };
        for (size_t c = 0; c < sizeof C / sizeof C[0]; c++) {
            const double *A = C[c].lap == 0 ? p.Kd : C[c].lap == KF_GRAPH_LAPLACIAN ? p.Ld : p.Nd;
            KFT_CHECK(dense_eig(n, A, w, Z) == 0);
            select_ref(n, w, C[c].which, k, sel);
            kf_spectral_opts so;
            kf_spectral_opts_init(&so);
            so.eig.k = k, so.eig.which = C[c].which, so.laplacian = C[c].lap;
            so.mode = (kf_spectral_mode)C[c].mode, so.solver = KF_SOLVER_BLOCK;
            so.block = C[c].block;
            kf_eigsh_report rep;
            int rc = kf_spectral(p.K, &so, vals, vecs, res, &rep, NULL);
            char what[64];
            snprintf(what, sizeof what, "%s case %zu", dt ? "float32" : "float64", c);
            KFT_CHECKF(rc == KF_OK, "%s: %s", what, kf_errmsg(ctx));
            KFT_CHECK(rep.ncv == (C[c].block ? C[c].block : k + 1) && rep.iterations > 0 &&
                      rep.converged == k && rep.matvecs >= (int64_t)rep.iterations * rep.ncv);
            /* float32: the operator itself is float32 (its rounding bounds the values) */
            double rtol = dt ? 2e-4 : 1e-8, vtol = dt ? 1e-2 : 1e-6;
            KFT_CHECK(check_pairs(n, k, t, vals, vecs, w, Z, sel, rtol, vtol, what) == 0);
            double top = fmax(fabs(w[0]), fabs(w[n - 1]));
            for (int j = 0; j < k; j++)
                KFT_CHECKF(res[j] <= (dt ? 1e-3 : 1e-7) * top, "%s: residual %d = %g", what, j,
                           res[j]);
            if (getenv("KFT_VERBOSE"))
                printf("  %s: %d block iterations of %d, %lld columns\n", what, rep.iterations,
                       rep.ncv, (long long)rep.matvecs);
        }
        /* the residual progress of one solve */
        {
            kf_spectral_opts so;
            kf_spectral_opts_init(&so);
            res_seen seen = {0};
            so.eig.k = k, so.eig.which = KF_WHICH_SM, so.laplacian = KF_GRAPH_LAPLACIAN_NORM;
            so.solver = KF_SOLVER_BLOCK, so.eig.progress_residual = on_residual;
            so.eig.progress_user = &seen;
            kf_eigsh_report rep;
            KFT_CHECK(kf_spectral(p.K, &so, vals, vecs, NULL, &rep, NULL) == KF_OK);
            KFT_CHECKF(seen.calls == rep.iterations && seen.last < seen.first &&
                           (rep.iterations <= 10 || seen.etas > 0),
                       "%d calls for %d iterations, residual %g -> %g, %d ETAs", seen.calls,
                       rep.iterations, seen.first, seen.last, seen.etas);
        }
        /* refused: the smallest without a shift, a block narrower than k */
        kf_spectral_opts so;
        kf_spectral_opts_init(&so);
        so.eig.k = k, so.eig.which = KF_WHICH_SM, so.laplacian = KF_GRAPH_LAPLACIAN_NORM;
        so.mode = KF_SPECTRAL_DIRECT, so.solver = KF_SOLVER_BLOCK;
        KFT_CHECKF(kf_spectral(p.K, &so, vals, vecs, NULL, NULL, NULL) == KF_ERR_ARG &&
                       strstr(kf_errmsg(ctx), "largest eigenpairs"),
                   "%s", kf_errmsg(ctx));
        so.mode = KF_SPECTRAL_SHIFTED, so.block = k - 1;
        KFT_CHECKF(kf_spectral(p.K, &so, vals, vecs, NULL, NULL, NULL) == KF_ERR_ARG &&
                       strstr(kf_errmsg(ctx), "block"),
                   "%s", kf_errmsg(ctx));
        so.block = 0, so.solver = (kf_solver)7;
        KFT_CHECK(kf_spectral(p.K, &so, vals, vecs, NULL, NULL, NULL) == KF_ERR_ARG);
        /* a cap on the iterations: KF_ERR_NOCONV with every value set */
        so.solver = KF_SOLVER_BLOCK, so.eig.maxiter = 2, so.eig.tol = 1e-14;
        kf_eigsh_report rep;
        KFT_CHECK(kf_spectral(p.K, &so, vals, vecs, NULL, &rep, NULL) == KF_ERR_NOCONV &&
                  rep.iterations == 2 && strstr(kf_errmsg(ctx), "met tol"));
        for (int j = 0; j < k; j++)
            KFT_CHECK(isfinite(kft_get(vals, t, j)));
        prob_free(&p);
    }
    free(w), free(Z), free(vecs);
    kf_free(ctx);
}

KFT_TEST(eigsh_noconv_keeps_converged)
{
    kf_ctx *ctx = newctx();
    prob p;
    int n = 200, k = 6;
    if (prob_make(&p, ctx, n, 10, KF_FLOAT64, 24))
        return;
    kf_linop *L = kf_linop_graph(p.K, KF_GRAPH_LAPLACIAN, NULL, NULL);
    double vals[6], vecs[200 * 6], res[6];
    kf_eigsh_opts o;
    kf_eigsh_opts_init(&o);
    o.k = k, o.which = KF_WHICH_SM, o.maxiter = 2;
    kf_eigsh_report rep;
    int rc = kf_eigsh(L, &o, vals, vecs, res, &rep);
    KFT_CHECKF(rc == KF_ERR_NOCONV, "rc %d: %s", rc, kf_errmsg(ctx));
    KFT_CHECK(strstr(kf_errmsg(ctx), "converged") != NULL);
    KFT_CHECKF(rep.converged < k && rep.arpack_info == 1, "converged %d info %d", rep.converged,
               rep.arpack_info);
    /* Two well separated values converge at once, a tight cluster does not:
     * at the cap the two are returned (ascending), the rest are NaN. */
    enum { N = 300 };
    double d[N], dv[N * 4];
    for (int i = 0; i < N; i++)
        d[i] = 1 + 1e-3 * sin(i * 1.7) + (i == 7 ? 100 : 0) + (i == 100 ? 50 : 0);
    kf_linop *D = kf_linop_diag(ctx, KF_FLOAT64, N, d);
    o.k = 4, o.which = KF_WHICH_LA, o.maxiter = 3;
    rc = kf_eigsh(D, &o, vals, dv, res, &rep);
    KFT_CHECKF(rc == KF_ERR_NOCONV && rep.converged == 2, "rc %d converged %d", rc, rep.converged);
    KFT_CHECK(strstr(kf_errmsg(ctx), "2 of 4 eigenpairs converged") != NULL);
    KFT_CHECK(fabs(vals[0] - d[100]) < 1e-12 && fabs(vals[1] - d[7]) < 1e-12);
    KFT_CHECK(isnan(vals[2]) && isnan(vals[3]) && isnan(res[2]));
    KFT_CHECK(res[0] < 1e-10 && res[1] < 1e-10 && fabs(fabs(dv[7 * 4 + 1]) - 1) < 1e-10);
    kf_linop_free(D);
    KFT_CHECK(strcmp(kf_status_name(KF_ERR_NOCONV), "KF_ERR_NOCONV") == 0);
    kf_linop_free(L);
    prob_free(&p);
    kf_free(ctx);
}

KFT_TEST(eigsh_seed_reproducible)
{
    kf_ctx *ctx = newctx();
    prob p;
    if (prob_make(&p, ctx, 120, 6, KF_FLOAT64, 25))
        return;
    double a[4], b[4], c[4];
    kf_eigsh_opts o;
    kf_eigsh_opts_init(&o);
    o.k = 4, o.which = KF_WHICH_LA, o.seed = 77, o.tol = 1e-6;
    kf_eigsh_report ra, rb, rc;
    KFT_CHECK(kf_eigsh(p.K, &o, a, NULL, NULL, &ra) == KF_OK);
    KFT_CHECK(kf_eigsh(p.K, &o, b, NULL, NULL, &rb) == KF_OK);
    KFT_CHECK(memcmp(a, b, sizeof a) == 0 && ra.matvecs == rb.matvecs);
    o.seed = 78;
    KFT_CHECK(kf_eigsh(p.K, &o, c, NULL, NULL, &rc) == KF_OK);
    KFT_CHECK(fabs(c[3] - a[3]) < 1e-6 * a[3]);
    /* A given v0 is used: the eigenvector itself converges at once. */
    double v0[120], vec[120 * 4];
    o.k = 1;
    KFT_CHECK(kf_eigsh(p.K, &o, a, vec, NULL, &ra) == KF_OK);
    for (int i = 0; i < 120; i++)
        v0[i] = vec[i];
    o.v0 = v0;
    KFT_CHECK(kf_eigsh(p.K, &o, b, NULL, NULL, &rb) == KF_OK && rb.matvecs <= ra.matvecs);
    prob_free(&p);
    kf_free(ctx);
}

KFT_TEST(eigsh_rejects_bad_arguments)
{
    kf_ctx *ctx = newctx();
    prob p;
    if (prob_make(&p, ctx, 30, 3, KF_FLOAT64, 26))
        return;
    double vals[40], v0[30] = {0};
    kf_eigsh_opts o;
    kf_eigsh_opts_init(&o);
    o.k = 30;
    KFT_CHECK(kf_eigsh(p.K, &o, vals, NULL, NULL, NULL) == KF_ERR_ARG &&
              strstr(kf_errmsg(ctx), "1 <= k < n"));
    o.k = 3, o.ncv = 3;
    KFT_CHECK(kf_eigsh(p.K, &o, vals, NULL, NULL, NULL) == KF_ERR_ARG &&
              strstr(kf_errmsg(ctx), "ncv = 3 is out of range"));
    o.ncv = 31;
    KFT_CHECK(kf_eigsh(p.K, &o, vals, NULL, NULL, NULL) == KF_ERR_ARG);
    o.ncv = 0, o.which = (kf_which)9;
    KFT_CHECK(kf_eigsh(p.K, &o, vals, NULL, NULL, NULL) == KF_ERR_ARG &&
              strstr(kf_errmsg(ctx), "unknown which"));
    o.which = KF_WHICH_BE, o.k = 1;
    KFT_CHECK(kf_eigsh(p.K, &o, vals, NULL, NULL, NULL) == KF_ERR_ARG);
    o.which = KF_WHICH_LA, o.k = 2, o.v0 = v0;
    KFT_CHECK(kf_eigsh(p.K, &o, vals, NULL, NULL, NULL) == KF_ERR_ARG &&
              strstr(kf_errmsg(ctx), "zero"));
    v0[4] = NAN;
    KFT_CHECK(kf_eigsh(p.K, &o, vals, NULL, NULL, NULL) == KF_ERR_ARG &&
              strstr(kf_errmsg(ctx), "v0[4]"));
    o.v0 = NULL, o.tol = -1;
    KFT_CHECK(kf_eigsh(p.K, &o, vals, NULL, NULL, NULL) == KF_ERR_ARG);
    o.tol = 0;
    KFT_CHECK(kf_eigsh(p.K, &o, NULL, NULL, NULL, NULL) == KF_ERR_ARG);
    /* NaN in the points: the operator's output is checked, the solve refused. */
    p.x[7] = NAN;
    KFT_CHECK(kf_eigsh(p.K, &o, vals, NULL, NULL, NULL) == KF_ERR_ARG &&
              strstr(kf_errmsg(ctx), "NaN"));
    prob_free(&p);
    kf_free(ctx);
}

/* The largest size the issue names: n = 2000, float64. LAPACK's eigenvalues
 * (dsyevd without vectors: 2.5 s with the reference BLAS, vectors would take
 * 10 s) against kf_eigsh's to 1e-8 relative; the vectors checked densely:
 * |L v - lambda v| small and V^T V = I. */
KFT_TEST(eigsh_n2000_float64_vs_dsyevd)
{
    kf_ctx *ctx = newctx();
    enum { N2 = 2000, K2 = 5 };
    prob p;
    if (prob_make(&p, ctx, N2, 30, KF_FLOAT64, 23))
        return;
    /* The optimized tier when there is a C compiler: ~300 matvecs of 4e6
     * pairs take 18 s with libtcc, under 2 s with cc (cached for the ASan run). */
    kf_compile_opts co;
    kf_compile_opts_init(&co);
    co.jit = KF_JIT_CC;
    kf_linop *Kcc = kf_linop_formula(ctx, GAUSS, AL2, 2, "b", 2, p.args, 3, N2, KF_FLOAT64, &co,
                                     NULL);
    kf_linop *L = kf_linop_graph(Kcc ? Kcc : p.K, KF_GRAPH_LAPLACIAN, NULL, NULL);
    kf_linop_free(Kcc); /* L keeps its own reference */
    double *w = malloc(N2 * sizeof *w), *A = malloc((size_t)N2 * N2 * sizeof *A);
    double *vals = malloc(K2 * sizeof *vals), *vecs = malloc((size_t)N2 * K2 * sizeof *vecs);
    memcpy(A, p.Ld, (size_t)N2 * N2 * sizeof *A);
    int n = N2, lwork = -1, liwork = -1, info = 0, iw;
    double wq;
    dsyevd_("N", "U", &n, A, &n, w, &wq, &lwork, &iw, &liwork, &info, 1, 1);
    lwork = (int)wq, liwork = iw;
    double *work = malloc((size_t)lwork * sizeof *work);
    int *iwork = malloc((size_t)liwork * sizeof *iwork);
    dsyevd_("N", "U", &n, A, &n, w, work, &lwork, iwork, &liwork, &info, 1, 1);
    KFT_CHECK(L && info == 0);
    kf_eigsh_opts o;
    kf_eigsh_opts_init(&o);
    o.k = K2, o.which = KF_WHICH_LA;
    kf_eigsh_report rep;
    int rc = L ? kf_eigsh(L, &o, vals, vecs, NULL, &rep) : KF_ERR_ARG;
    KFT_CHECKF(rc == KF_OK, "%s", kf_errmsg(ctx));
    if (getenv("KFT_VERBOSE"))
        fprintf(stderr, "  n2000: %lld matvecs, %.2f s in matvecs, %.2f s total\n",
                (long long)rep.matvecs, rep.matvec_s, rep.total_s);
    double top = fabs(w[N2 - 1]);
    for (int j = 0; rc == KF_OK && j < K2; j++) {
        double want = w[N2 - K2 + j];
        KFT_CHECKF(fabs(vals[j] - want) <= 1e-8 * fmax(fabs(want), 1e-2 * top),
                   "value %d: %.15g, LAPACK %.15g", j, vals[j], want);
        double res = 0;
        for (int i = 0; i < N2; i++) {
            double lv = 0;
            for (int c = 0; c < N2; c++)
                lv += p.Ld[(size_t)i * N2 + c] * vecs[(size_t)c * K2 + j];
            res += pow(lv - vals[j] * vecs[(size_t)i * K2 + j], 2);
        }
        KFT_CHECKF(sqrt(res) <= 1e-7 * top, "vector %d: |L v - lambda v| = %g", j, sqrt(res));
        for (int m = 0; m <= j; m++) {
            double dot = 0;
            for (int i = 0; i < N2; i++)
                dot += vecs[(size_t)i * K2 + j] * vecs[(size_t)i * K2 + m];
            KFT_CHECKF(fabs(dot - (m == j)) <= 1e-8, "v%d . v%d = %g", j, m, dot);
        }
    }
    free(work), free(iwork), free(w), free(A), free(vals), free(vecs);
    kf_linop_free(L);
    prob_free(&p);
    kf_free(ctx);
}

/* The coarse start of a block-sparse operator: its strided subsample keeps
 * every pair within the cutoff in the mapped pattern (sub: subsample x
 * subsample; ext: every row x the subsample), both patterns are valid, and
 * the solve started from it gives the shifted solve's eigenvalues in fewer
 * block iterations. */
#include "runtime/sparse/ranges.h"
#include "solvers/solvers.h"

/* Whether every pair (r, q) of rows x cols at most cutoff apart lies in r's
 * cluster's reduced ranges; rows/cols are points (2-D) by index maps. */
static int64_t uncovered(const kf_ranges *rg, const double *xr, const int64_t *ri, int64_t nr,
                         const double *xc, const int64_t *ci, int64_t nc, double cutoff)
{
    int64_t bad = 0, a = 0;
    uint8_t *cov = calloc((size_t)nc + 1, 1);
    for (int64_t r = 0; r < nr; r++) {
        while (a < rg->nci && r >= rg->ranges_i[2 * a + 1])
            a++;
        memset(cov, 0, (size_t)nc);
        if (a < rg->nci && r >= rg->ranges_i[2 * a])
            for (int64_t q = a ? rg->slices_i[a - 1] : 0; q < rg->slices_i[a]; q++)
                for (int64_t j = rg->redranges_j[2 * q]; j < rg->redranges_j[2 * q + 1]; j++)
                    cov[j] = 1;
        const double *p = xr + 2 * (ri ? ri[r] : r);
        for (int64_t j = 0; j < nc; j++) {
            const double *q = xc + 2 * (ci ? ci[j] : j);
            double dx = p[0] - q[0], dy = p[1] - q[1];
            bad += dx * dx + dy * dy <= cutoff * cutoff && !cov[j];
        }
    }
    free(cov);
    return bad;
}

KFT_TEST(eigsh_coarse_start_block_sparse)
{
    kf_ctx *ctx = newctx();
    const int64_t n = 3000, m = n / 4;
    const double cutoff = 0.2, eps = 0.1; /* the kernel below has sigma 0.05 */
    kf_gen g = {KF_GEN_SPIRAL, n, 3};
    double *x = malloc(n * 2 * sizeof *x), *xs = malloc(n * 2 * sizeof *xs);
    kf_gen_points(&g, x);
    kf_plan *p = kf_plan_block_sparse(ctx, KF_FLOAT64, x, n, x, n, 2, eps, cutoff, 0);
    KFT_CHECKF(p != NULL, "%s", kf_errmsg(ctx));
    if (!p)
        goto out;
    for (int64_t k = 0; k < n; k++)
        xs[2 * k] = x[2 * p->perm_x[k]], xs[2 * k + 1] = x[2 * p->perm_x[k] + 1];
    kf_ranges v;
    kf_blocks_view(p->blocks, &v);
    int64_t *idx = kfs_strided_rows(n, m);
    kfs_sub_ranges sr = {0};
    KFT_CHECK(idx && kfs_map_ranges(&v, n, m, &sr) == KF_OK);
    KFT_CHECK(idx[0] == 0 && idx[m - 1] < n && idx[1] == 4);
    KFT_CHECKF(kfr_ranges_check(ctx, &sr.sub, 1, m, m) == KF_OK &&
                   kfr_ranges_check(ctx, &sr.sub, 0, m, m) == KF_OK &&
                   kfr_ranges_check(ctx, &sr.ext, 1, n, m) == KF_OK,
               "%s", kf_errmsg(ctx));
    KFT_CHECKF(uncovered(&sr.sub, xs, idx, m, xs, idx, m, cutoff) == 0,
               "pairs of the subsample within the cutoff are not in its pattern");
    KFT_CHECKF(uncovered(&sr.ext, xs, NULL, n, xs, idx, m, cutoff) == 0,
               "pairs of a row and the subsample within the cutoff are not in the extension's");
    /* A pattern that kept too much would pass the above: the subsample's
     * kept pairs must be about (m/n)^2 of the full ones. */
    double full = 0, sub = 0;
    for (int64_t q = 0; q < v.nredj; q++) {
        full += (double)(v.redranges_j[2 * q + 1] - v.redranges_j[2 * q]);
        sub += (double)(sr.sub.redranges_j[2 * q + 1] - sr.sub.redranges_j[2 * q]);
    }
    KFT_CHECKF(sub > 0.2 * full && sub < 0.3 * full, "sub %g of %g j-points", sub, full);
    free(idx);
    free(sr.buf);

    const void *args[3] = {xs, xs, NULL};
    kf_linop *K = kf_linop_formula(ctx, "Exp(-SqDist(x,y)*IntCst(200))*v", AL2, 2, "v", 2, args, 3,
                                   n, KF_FLOAT64, NULL, &v);
    KFT_CHECKF(K != NULL, "%s", kf_errmsg(ctx));
    double val[2][5];
    kf_eigsh_report rep[2];
    for (int c = 0; K && c < 2; c++) {
        kf_spectral_opts so;
        kf_spectral_opts_init(&so);
        so.eig.k = 5, so.eig.which = KF_WHICH_SM, so.laplacian = KF_GRAPH_LAPLACIAN_NORM;
        so.solver = KF_SOLVER_BLOCK;
        so.mode = c ? KF_SPECTRAL_SHIFTED : KF_SPECTRAL_AUTO;
        kf_spectral_mode used;
        KFT_CHECKF(kf_spectral(K, &so, val[c], NULL, NULL, &rep[c], &used) == KF_OK, "%s",
                   kf_errmsg(ctx));
        KFT_CHECK(used == (c ? KF_SPECTRAL_SHIFTED : KF_SPECTRAL_COARSE));
    }
    if (K) {
        for (int j = 1; j < 5; j++)
            KFT_CHECKF(fabs(val[0][j] - val[1][j]) <= 1e-7 * fabs(val[1][j]),
                       "lambda_%d: coarse %.12g, shifted %.12g", j, val[0][j], val[1][j]);
        KFT_CHECKF(rep[0].matvecs_coarse > 0 && rep[0].iterations < rep[1].iterations,
                   "coarse: %d iterations (+%lld matvecs on the subsample), shifted: %d",
                   rep[0].iterations, (long long)rep[0].matvecs_coarse, rep[1].iterations);
    }
    kf_linop_free(K);
    kf_plan_free(p);
out:
    free(x);
    free(xs);
    kf_free(ctx);
}
