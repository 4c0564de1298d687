/* t_linop.c -- linear operators against dense matrices: kernel and formula operators, blocks,
 * combinators, diagonals, graph Laplacians, ranges, refcounts and rejected arguments. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "testutil.h"

/* The Gaussian kernel of points already divided by sigma (the tutorial's x_). */
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

static kf_compile_opts tcc_opts(void)
{
    kf_compile_opts c;
    kf_compile_opts_init(&c);
    c.jit = KF_JIT_TCC;
    return c;
}

/* n random points of dim 2 in [0, scale)^2 in double and in dtype. */
static void points(kft_rng *g, int64_t n, double scale, double *xd, void *x, kf_dtype t)
{
    for (int64_t i = 0; i < 2 * n; i++) {
        xd[i] = kft_uniform(g, 0, scale);
        kft_set(x, t, i, xd[i]);
        xd[i] = kft_get(x, t, i); /* the dense matrix sees the rounded points */
    }
}

/* Dense Gaussian matrix in double. */
static void dense_gauss(int64_t n, const double *x, double *K)
{
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < n; j++) {
            double dx = x[2 * i] - x[2 * j], dy = x[2 * i + 1] - x[2 * j + 1];
            K[i * n + j] = exp(-(dx * dx + dy * dy) / 2);
        }
}

/* max |A v - y| / max(1, max |y|) for a dense A (double) and y of dtype (n x b). */
static double dense_err(int64_t n, int64_t b, const double *A, const void *v, const void *y,
                        kf_dtype t)
{
    double err = 0, sc = 1;
    for (int64_t i = 0; i < n; i++)
        for (int64_t c = 0; c < b; c++) {
            double acc = 0;
            for (int64_t j = 0; j < n; j++)
                acc += A[i * n + j] * kft_get(v, t, j * b + c);
            err = fmax(err, fabs(acc - kft_get(y, t, i * b + c)));
            sc = fmax(sc, fabs(acc));
        }
    return err / sc;
}

static kf_linop *gauss_op(kf_ctx *ctx, const void *x, int64_t n, kf_dtype t, const void **args)
{
    kf_compile_opts co = tcc_opts();
    args[0] = x, args[1] = x, args[2] = NULL;
    return kf_linop_formula(ctx, GAUSS, AL2, 2, "b", 2, args, 3, n, t, &co, NULL);
}

KFT_TEST(linop_formula_block_equals_singles_and_dense)
{
    kf_ctx *ctx = newctx();
    kft_rng g;
    kft_rng_seed(&g, 11);
    for (int ti = 0; ti < 2; ti++) {
        kf_dtype t = ti ? KF_FLOAT64 : KF_FLOAT32;
        double tol = ti ? 1e-12 : 1e-5;
        int64_t n = 97, b = 70; /* 70 > KFS_MAX_BLOCK: two chunks (64 + 6) */
        double *xd = malloc(2 * n * sizeof *xd), *K = malloc(n * n * sizeof *K);
        void *x = malloc(2 * n * 8), *v = malloc(n * b * 8), *y = malloc(n * b * 8);
        void *v1 = malloc(n * 8), *y1 = malloc(n * 8);
        points(&g, n, 4, xd, x, t);
        dense_gauss(n, xd, K);
        const void *args[3];
        kf_linop *op = gauss_op(ctx, x, n, t, args);
        KFT_CHECKF(op != NULL, "%s", kf_errmsg(ctx));
        if (!op)
            break;
        for (int64_t i = 0; i < n * b; i++)
            kft_set(v, t, i, kft_uniform(&g, -1, 1));
        KFT_CHECK(kf_linop_apply(op, v, y, b) == KF_OK);
        KFT_CHECK(kf_linop_matvecs(op) == b);
        double e = dense_err(n, b, K, v, y, t);
        KFT_CHECKF(e < tol, "dtype %d block err %g", (int)t, e);
        /* Each column alone gives the same numbers as the block. */
        double maxd = 0;
        for (int64_t c = 0; c < b; c += 13) {
            for (int64_t i = 0; i < n; i++)
                kft_set(v1, t, i, kft_get(v, t, i * b + c));
            KFT_CHECK(kf_linop_apply(op, v1, y1, 1) == KF_OK);
            for (int64_t i = 0; i < n; i++)
                maxd = fmax(maxd, fabs(kft_get(y1, t, i) - kft_get(y, t, i * b + c)));
        }
        KFT_CHECKF(maxd <= tol * n, "block vs single %g", maxd);
        /* The diagonal of a Gaussian kernel is 1. */
        kf_linop_diagonal(op, v1);
        double dd = 0;
        for (int64_t i = 0; i < n; i++)
            dd = fmax(dd, fabs(kft_get(v1, t, i) - 1));
        KFT_CHECKF(dd == 0, "diag err %g (%s)", dd, kf_errmsg(ctx));
        kf_linop_free(op);
        free(xd), free(K), free(x), free(v), free(y), free(v1), free(y1);
    }
    kf_free(ctx);
}

KFT_TEST(linop_kernel_widths)
{
    kf_ctx *ctx = newctx();
    kft_rng g;
    kft_rng_seed(&g, 12);
    int64_t n = 50;
    double xd[100], K[2500], x[100], v[150], y[150];
    points(&g, n, 3, xd, x, KF_FLOAT64);
    dense_gauss(n, xd, K);
    kf_compile_opts co = tcc_opts();
    const char *al1[] = {"x=Vi(0,2)", "y=Vj(1,2)", "b=Vj(2,1)"};
    const char *al3[] = {"x=Vi(0,2)", "y=Vj(1,2)", "b=Vj(2,3)"};
    kf_kernel *k1 = kf_compile(ctx, GAUSS, al1, 3, "Sum", 1, KF_FLOAT64, &co);
    kf_kernel *k3 = kf_compile(ctx, GAUSS, al3, 3, "Sum", 1, KF_FLOAT64, &co);
    KFT_CHECK(k1 && k3);
    const void *args[3] = {x, x, NULL};
    kf_linop *o1 = kf_linop_kernel(k1, 2, args, 3, n, NULL);
    kf_linop *o3 = kf_linop_kernel(k3, 2, args, 3, n, NULL);
    KFT_CHECK(o1 && o3);
    for (int i = 0; i < 150; i++)
        v[i] = kft_uniform(&g, -1, 1);
    /* width 1: any block, column by column; width 3: exactly 3 columns. */
    KFT_CHECK(kf_linop_apply(o1, v, y, 3) == KF_OK && dense_err(n, 3, K, v, y, KF_FLOAT64) < 1e-12);
    KFT_CHECK(kf_linop_apply(o3, v, y, 3) == KF_OK && dense_err(n, 3, K, v, y, KF_FLOAT64) < 1e-12);
    KFT_CHECK(kf_linop_apply(o3, v, y, 2) == KF_ERR_ARG && strstr(kf_errmsg(ctx), "width 3"));
    /* The wrong kinds of kernel are refused with a message. */
    kf_kernel *kmax = kf_compile(ctx, GAUSS, al1, 3, "Max", 1, KF_FLOAT64, &co);
    KFT_CHECK(kf_linop_kernel(kmax, 2, args, 3, n, NULL) == NULL &&
              strstr(kf_errmsg(ctx), "expected Sum"));
    KFT_CHECK(kf_linop_kernel(k1, 0, args, 3, n, NULL) == NULL &&
              strstr(kf_errmsg(ctx), "j-variable"));
    kf_kernel *kd = kf_compile(ctx, "Exp(-SqDist(x,y))*b*x", al1, 3, "Sum", 1, KF_FLOAT64, &co);
    KFT_CHECK(kf_linop_kernel(kd, 2, args, 3, n, NULL) == NULL &&
              strstr(kf_errmsg(ctx), "dim 2 but the vector has dim 1"));
    KFT_CHECK(kf_linop_kernel(k1, 2, args, 2, n, NULL) == NULL && kf_status_of(ctx) == KF_ERR_ARG);
    kf_linop_free(o1), kf_linop_free(o3);
    kf_kernel_free(k1), kf_kernel_free(k3), kf_kernel_free(kmax), kf_kernel_free(kd);
    kf_free(ctx);
}

KFT_TEST(linop_combinators_vs_dense)
{
    kf_ctx *ctx = newctx();
    kft_rng g;
    kft_rng_seed(&g, 13);
    int64_t n = 40, b = 2;
    double xd[80], x[80], K[1600], A[1600], dv[40], v[80], y[80], dg[40];
    points(&g, n, 3, xd, x, KF_FLOAT64);
    dense_gauss(n, xd, K);
    for (int i = 0; i < n; i++)
        dv[i] = kft_uniform(&g, 0.5, 2);
    for (int i = 0; i < n * b; i++)
        v[i] = kft_uniform(&g, -1, 1);
    const void *args[3];
    kf_linop *Kop = gauss_op(ctx, x, n, KF_FLOAT64, args);
    kf_linop *D = kf_linop_diag(ctx, KF_FLOAT64, n, dv);
    kf_linop *I = kf_linop_identity(ctx, KF_FLOAT64, n);
    kf_linop *ops[5];
    ops[0] = kf_linop_scale(Kop, -2.5);
    ops[1] = kf_linop_add(Kop, D);
    ops[2] = kf_linop_sub(I, Kop);
    kf_linop *KD = kf_linop_compose(Kop, D);
    ops[3] = kf_linop_compose(D, KD); /* D K D: symmetric */
    kf_linop *I3 = kf_linop_scale(I, 3);
    ops[4] = kf_linop_sub(I3, ops[3]);
    kf_linop_free(I3); /* ops[4] keeps its own reference */
    /* The operands may be dropped at once: the combinations hold references. */
    kf_linop_free(Kop), kf_linop_free(D), kf_linop_free(I), kf_linop_free(KD);
    for (int c = 0; c < 5; c++) {
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                double k = K[i * n + j], id = i == j;
                A[i * n + j] = c == 0 ? -2.5 * k
                             : c == 1 ? k + id * dv[i]
                             : c == 2 ? id - k
                             : c == 3 ? dv[i] * k * dv[j]
                                      : 3 * id - dv[i] * k * dv[j];
            }
        KFT_CHECK(ops[c] && kf_linop_apply(ops[c], v, y, b) == KF_OK);
        double e = dense_err(n, b, A, v, y, KF_FLOAT64);
        KFT_CHECKF(e < 1e-12, "combinator %d err %g", c, e);
        KFT_CHECK(kf_linop_diagonal(ops[c], dg) == KF_OK);
        double de = 0;
        for (int i = 0; i < n; i++)
            de = fmax(de, fabs(dg[i] - A[i * n + i]));
        KFT_CHECKF(de < 1e-12, "diagonal %d err %g", c, de);
        KFT_CHECK(kf_linop_dtype(ops[c]) == KF_FLOAT64 && kf_linop_size(ops[c]) == n);
    }
    for (int c = 0; c < 5; c++)
        kf_linop_free(ops[c]);
    kf_free(ctx);
}

KFT_TEST(linop_graph_vs_dense)
{
    kf_ctx *ctx = newctx();
    kft_rng g;
    kft_rng_seed(&g, 14);
    for (int ti = 0; ti < 2; ti++) {
        kf_dtype t = ti ? KF_FLOAT64 : KF_FLOAT32;
        double tol = ti ? 1e-12 : 2e-6;
        int64_t n = 60;
        double xd[120], K[3600], A[3600], D[60], v[60];
        double x[120], y[60], deg[60]; /* big enough for either dtype */
        points(&g, n, 5, xd, x, t);
        dense_gauss(n, xd, K);
        for (int i = 0; i < n; i++) {
            D[i] = 0;
            for (int j = 0; j < n; j++)
                D[i] += K[i * n + j];
        }
        for (int i = 0; i < n; i++)
            kft_set(v, t, i, kft_uniform(&g, -1, 1));
        const void *args[3];
        kf_linop *Kop = gauss_op(ctx, x, n, t, args);
        for (int kind = KF_GRAPH_LAPLACIAN; kind <= KF_GRAPH_AFFINITY_NORM; kind++) {
            kf_linop *L = kf_linop_graph(Kop, (kf_graph)kind, NULL, deg);
            KFT_CHECKF(L != NULL, "%s", kf_errmsg(ctx));
            if (!L)
                continue;
            for (int i = 0; i < n; i++) {
                double e = fabs(kft_get(deg, t, i) - D[i]) / D[i];
                if (e > tol)
                    KFT_CHECKF(0, "degree %d: %g vs %g", i, kft_get(deg, t, i), D[i]);
                for (int j = 0; j < n; j++) {
                    double aff = K[i * n + j] / sqrt(D[i] * D[j]);
                    A[i * n + j] = kind == KF_GRAPH_LAPLACIAN ? (i == j) * D[i] - K[i * n + j]
                                 : kind == KF_GRAPH_LAPLACIAN_NORM ? (i == j) - aff
                                                                   : aff;
                }
            }
            KFT_CHECK(kf_linop_apply(L, v, y, 1) == KF_OK);
            double e = dense_err(n, 1, A, v, y, t);
            KFT_CHECKF(e < tol * 10, "graph %d dtype %d err %g", kind, (int)t, e);
            KFT_CHECK(kf_linop_dtype(L) == t); /* combinations keep the dtype */
            kf_linop_free(L);
        }
        /* Given degrees are used as they are (no K 1 apply). */
        kf_linop_reset_stats(Kop);
        kf_linop *L = kf_linop_graph(Kop, KF_GRAPH_LAPLACIAN, deg, NULL);
        KFT_CHECK(L && kf_linop_matvecs(Kop) == 0);
        kf_linop_free(L);
        /* A zero degree makes the normalization undefined: refused, naming the row. */
        kft_set(deg, t, 7, 0);
        KFT_CHECK(kf_linop_graph(Kop, KF_GRAPH_LAPLACIAN_NORM, deg, NULL) == NULL &&
                  strstr(kf_errmsg(ctx), "D[7] = 0"));
        kf_linop_free(Kop);
    }
    kf_free(ctx);
}

/* Two clusters that only see themselves: the operator is block diagonal. */
KFT_TEST(linop_ranges_block_diagonal)
{
    kf_ctx *ctx = newctx();
    kft_rng g;
    kft_rng_seed(&g, 15);
    int64_t n = 50, h = 20;
    double xd[100], x[100], K[2500], v[50], y[50];
    points(&g, n, 2, xd, x, KF_FLOAT64);
    dense_gauss(n, xd, K);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            if ((i < h) != (j < h))
                K[i * n + j] = 0;
    int64_t rr[4] = {0, h, h, n}, sl[2] = {1, 2};
    kf_ranges rg = {.nci = 2, .ranges_i = rr, .slices_i = sl, .nredj = 2, .redranges_j = rr,
                    .ncj = 2, .ranges_j = rr, .slices_j = sl, .nredi = 2, .redranges_i = rr};
    kf_compile_opts co = tcc_opts();
    const void *args[3] = {x, x, NULL};
    kf_linop *op = kf_linop_formula(ctx, GAUSS, AL2, 2, "b", 2, args, 3, n, KF_FLOAT64, &co, &rg);
    for (int i = 0; i < n; i++)
        v[i] = kft_uniform(&g, -1, 1);
    KFT_CHECK(op && kf_linop_apply(op, v, y, 1) == KF_OK);
    double e = dense_err(n, 1, K, v, y, KF_FLOAT64);
    KFT_CHECKF(e < 1e-12, "ranges err %g", e);
    kf_linop_free(op);
    kf_free(ctx);
}

KFT_TEST(linop_rejects_bad_arguments)
{
    kf_ctx *ctx = newctx();
    double d[4] = {1, 2, 3, 4}, x[8] = {0}, y[8];
    kf_linop *a = kf_linop_diag(ctx, KF_FLOAT64, 4, d);
    kf_linop *b3 = kf_linop_identity(ctx, KF_FLOAT64, 3);
    kf_linop *f4 = kf_linop_identity(ctx, KF_FLOAT32, 4);
    KFT_CHECK(kf_linop_add(a, b3) == NULL && kf_status_of(ctx) == KF_ERR_ARG &&
              strstr(kf_errmsg(ctx), "sizes and dtypes must agree"));
    KFT_CHECK(kf_linop_compose(a, f4) == NULL && strstr(kf_errmsg(ctx), "float32"));
    KFT_CHECK(kf_linop_sub(a, NULL) == NULL && kf_status_of(ctx) == KF_ERR_ARG);
    KFT_CHECK(kf_linop_scale(a, NAN) == NULL && kf_status_of(ctx) == KF_ERR_ARG);
    KFT_CHECK(kf_linop_diag(ctx, KF_FLOAT64, 0, d) == NULL && kf_status_of(ctx) == KF_ERR_ARG);
    KFT_CHECK(kf_linop_identity(ctx, (kf_dtype)7, 3) == NULL);
    KFT_CHECK(kf_linop_apply(a, x, y, 0) == KF_ERR_ARG);
    KFT_CHECK(kf_linop_apply(a, NULL, y, 1) == KF_ERR_ARG);
    KFT_CHECK(kf_linop_graph(a, (kf_graph)9, NULL, NULL) == NULL);
    kf_compile_opts co = tcc_opts();
    const void *args[3] = {x, x, NULL};
    KFT_CHECK(kf_linop_formula(ctx, "Exp(-SqDist(x,y)*b", AL2, 2, "b", 2, args, 3, 4, KF_FLOAT64,
                               &co, NULL) == NULL && kf_status_of(ctx) == KF_ERR_SYNTAX);
    KFT_CHECK(kf_linop_formula(ctx, GAUSS, AL2, 2, "b", 5, args, 3, 4, KF_FLOAT64, &co, NULL) ==
              NULL && kf_status_of(ctx) == KF_ERR_ARG);
    /* The diagonal of a product of two non-diagonal operators is not offered. */
    kf_linop *K = kf_linop_formula(ctx, GAUSS, AL2, 2, "b", 2, args, 3, 4, KF_FLOAT64, &co, NULL);
    kf_linop *KK = kf_linop_compose(K, K);
    KFT_CHECK(KK && kf_linop_diagonal(KK, y) == KF_ERR_UNSUPPORTED);
    kf_linop_free(KK), kf_linop_free(K);
    kf_linop_free(a), kf_linop_free(b3), kf_linop_free(f4);
    kf_linop_free(NULL);
    kf_free(ctx);
}
