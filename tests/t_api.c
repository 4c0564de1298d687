/* t_api.c -- the public API: contexts, errors, env vars, kf_compile/kf_run boundaries, the JIT. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/rt.h"
#include "harness.h"

/* ---- helpers ---- */

static const char *const gauss_alias[] = {"x=Vi(0,3)", "y=Vj(1,3)", "b=Vj(2,1)"};
#define GAUSS "Exp(-SqDist(x,y)/IntCst(2))*b"

/* Deterministic values in [-1, 1). */
static void fill(double *a, int64_t n, unsigned seed)
{
    uint32_t s = seed * 2654435761u + 1;
    for (int64_t k = 0; k < n; k++) {
        s = s * 1664525u + 1013904223u;
        a[k] = (double)(s >> 8) / (double)(1u << 23) - 1.0;
    }
}

static kf_ctx *ctx_threads(int threads)
{
    kf_options o;
    kf_options_init(&o);
    o.threads = threads;
    return kf_new(&o);
}

/* Sets or (value NULL) unsets an environment variable for one test and
 * restores the old value afterwards with env_restore. */
typedef struct saved_env {
    const char *name;
    char *old;
} saved_env;

static saved_env env_set(const char *name, const char *value)
{
    const char *old = getenv(name);
    saved_env s = {name, old ? strdup(old) : NULL};
    if (value)
        setenv(name, value, 1);
    else
        unsetenv(name);
    return s;
}

static void env_restore(saved_env s)
{
    if (s.old)
        setenv(s.name, s.old, 1);
    else
        unsetenv(s.name);
    free(s.old);
}

/* A kernel built by hand, without the compiler passes: out_i = sum_j (x_i - y_j),
 * x = Var(0,1,0), y = Var(1,1,1), float64, axis 1. engine picks the JIT'd
 * hand-written C or the reference evaluator. Tests run.c, the pool and the
 * JIT independently of the parser and emitter. */
static const char *handmade_src =
    "typedef long long int64_t;\n"
    "void kf_reduce(const void *const *args, int64_t r0, int64_t r1, const int64_t *jr,\n"
    "               int64_t nr, void *out, int64_t *idx) {\n"
    "    const double *x = args[0], *y = args[1]; double *o = out;\n"
    "    for (int64_t r = r0; r < r1; r++) {\n"
    "        double s = 0;\n"
    "        for (int64_t q = 0; q < nr; q++)\n"
    "            for (int64_t j = jr[2*q]; j < jr[2*q+1]; j++) s += x[r] - y[j];\n"
    "        o[r] = s;\n"
    "    }\n"
    "}\n";

static kf_kernel *handmade_kernel(kf_ctx *ctx, kf_jit engine)
{
    kf_kernel *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->ctx = ctx;
    kfc_prog_init(&k->prog);
    kfc_diag d;
    kfc_diag_clear(&d);
    int32_t x = kfc_node_new(&k->prog, KFC_OP_VAR, 0, 0, &d);
    int32_t y = kfc_node_new(&k->prog, KFC_OP_VAR, 0, 0, &d);
    int32_t s = kfc_node_new(&k->prog, KFC_OP_SUBTRACT, 0, 0, &d);
    if (x < 0 || y < 0 || s < 0) {
        kf_kernel_free(k);
        return NULL;
    }
    kfc_node *n = k->prog.nodes;
    n[x].iv[0] = 0, n[x].iv[1] = 1, n[x].iv[2] = 0, n[x].dim = 1;
    n[y].iv[0] = 1, n[y].iv[1] = 1, n[y].iv[2] = 1, n[y].dim = 1;
    n[s].a[0] = x, n[s].a[1] = y, n[s].dim = 1;
    k->prog.root = s;
    k->prog.vars[0] = (kfc_var){1, KFC_CAT_I, 1, 0, 0};
    k->prog.vars[1] = (kfc_var){1, KFC_CAT_J, 1, 0, 0};
    k->prog.nvars = 2;
    k->axis = 1;
    k->dtype = KF_FLOAT64;
    k->has_red = 1;
    k->red = (kfc_red){.id = KFC_RED_SUM, .axis = 1, .dtype = KF_FLOAT64,
                       .sum_scheme = KF_SUM_F64, .K = 0, .D = 1, .E = 1, .valdim = 1, .idxdim = 0};
    k->engine = engine;
    k->source = strdup(handmade_src);
    if (engine == KF_JIT_TCC) {
        void *fn = NULL;
        if (!k->source || kfr_tcc_compile(k->source, KFK_ENTRY, &k->tcc, &fn, &d) != KF_OK) {
            kf_kernel_free(k);
            return NULL;
        }
        k->fn = (kfk_reduce_fn)fn;
    }
    return k;
}

/* ---- contexts, status names, version ---- */

KFT_TEST(api_status_names_and_version)
{
    KFT_CHECK(strcmp(kf_status_name(KF_OK), "KF_OK") == 0);
    KFT_CHECK(strcmp(kf_status_name(KF_ERR_SYNTAX), "KF_ERR_SYNTAX") == 0);
    KFT_CHECK(strcmp(kf_status_name(KF_ERR_INTERNAL), "KF_ERR_INTERNAL") == 0);
    KFT_CHECK(strcmp(kf_status_name(KF_ERR_JIT), "KF_ERR_JIT") == 0);
    KFT_CHECK(strcmp(kf_status_name(KF_ERR_DEVICE), "KF_ERR_DEVICE") == 0);
    KFT_CHECK(strcmp(kf_status_name(-1), "KF_ERR_UNKNOWN") == 0);
    KFT_CHECK(strcmp(kf_status_name(99), "KF_ERR_UNKNOWN") == 0);
    /* every code has its own name */
    for (int a = KF_OK; a <= KF_ERR_INTERNAL; a++)
        for (int b = a + 1; b <= KF_ERR_INTERNAL; b++)
            KFT_CHECK(strcmp(kf_status_name(a), kf_status_name(b)) != 0);
    KFT_CHECK(strcmp(kf_version(), KF_VERSION_STRING) == 0);
}

KFT_TEST(api_null_handles)
{
    kf_free(NULL);
    kf_kernel_free(NULL);
    kf_options_init(NULL);
    kf_compile_opts_init(NULL);
    KFT_CHECK(kf_status_of(NULL) != KF_OK);
    KFT_CHECK(kf_errmsg(NULL) != NULL && kf_errmsg(NULL)[0] != 0);
    KFT_CHECK(kf_error_offset(NULL) == -1);
    KFT_CHECK(kf_error_source(NULL) == -1);
    KFT_CHECK(kf_threads(NULL) == 0);
    KFT_CHECK(kf_compile(NULL, "x", NULL, 0, "Sum", 1, KF_FLOAT64, NULL) == NULL);
    KFT_CHECK(kf_run(NULL, 1, 1, NULL, 0, NULL, NULL) == KF_ERR_ARG);
    KFT_CHECK(kf_kernel_nargs(NULL) == 0);
    int cat = 7;
    int64_t dim = 7;
    KFT_CHECK(kf_kernel_var(NULL, 0, &cat, &dim) == KF_ERR_ARG && cat == -1);
    KFT_CHECK(kf_kernel_out_dim(NULL) == 0 && kf_kernel_index_dim(NULL) == 0);
    KFT_CHECK(kf_kernel_reduction(NULL) == NULL && kf_kernel_canonical(NULL) == NULL);
    KFT_CHECK(kf_kernel_source(NULL) == NULL && kf_kernel_engine(NULL) == NULL);
}

KFT_TEST(api_new_defaults)
{
    saved_env e = env_set("KFORGE_THREADS", NULL);
    kf_ctx *ctx = kf_new(NULL);
    KFT_CHECK(ctx != NULL);
    KFT_CHECK(kf_status_of(ctx) == KF_OK && strcmp(kf_errmsg(ctx), "") == 0);
    KFT_CHECK(kf_error_offset(ctx) == -1 && kf_error_source(ctx) == -1);
    KFT_CHECK(kf_threads(ctx) == kfr_cpu_count());
    kf_free(ctx);
    env_restore(e);
}

KFT_TEST(api_threads_option_and_env)
{
    saved_env e = env_set("KFORGE_THREADS", "3");
    kf_ctx *ctx = kf_new(NULL);
    KFT_CHECK(ctx && kf_threads(ctx) == 3 && kf_status_of(ctx) == KF_OK);
    kf_free(ctx);
    ctx = ctx_threads(2); /* the option beats the environment */
    KFT_CHECK(ctx && kf_threads(ctx) == 2 && kf_status_of(ctx) == KF_OK);
    kf_free(ctx);
    env_restore(e);

    e = env_set("KFORGE_THREADS", ""); /* empty counts as unset */
    ctx = kf_new(NULL);
    KFT_CHECK(ctx && kf_threads(ctx) == kfr_cpu_count() && kf_status_of(ctx) == KF_OK);
    kf_free(ctx);
    env_restore(e);
}

KFT_TEST(api_threads_env_rejected)
{
    const char *bad[] = {"abc", "0", "-2", "+3", " 3", "3 ", "3x", "1025", "99999999999999999999",
                         "0x10", "2.5"};
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        saved_env e = env_set("KFORGE_THREADS", bad[b]);
        kf_ctx *ctx = kf_new(NULL);
        KFT_CHECKF(ctx != NULL, "'%s'", bad[b]);
        if (ctx) {
            KFT_CHECKF(kf_status_of(ctx) == KF_ERR_ARG, "'%s' gave %d", bad[b], kf_status_of(ctx));
            KFT_CHECKF(strstr(kf_errmsg(ctx), "KFORGE_THREADS") != NULL, "%s", kf_errmsg(ctx));
            KFT_CHECKF(strlen(bad[b]) > 12 || strstr(kf_errmsg(ctx), bad[b]) != NULL, "%s",
                       kf_errmsg(ctx));
            KFT_CHECK(kf_threads(ctx) == kfr_cpu_count()); /* not silently used */
        }
        kf_free(ctx);
        env_restore(e);
    }
    /* Control bytes in the value are escaped, not pasted into the message. */
    saved_env e = env_set("KFORGE_THREADS", "1\n\033[2J");
    kf_ctx *ctx = kf_new(NULL);
    KFT_CHECK(ctx && !strchr(kf_errmsg(ctx), '\n') && !strchr(kf_errmsg(ctx), '\033'));
    KFT_CHECK(ctx && strstr(kf_errmsg(ctx), "\\x0a") != NULL);
    kf_free(ctx);
    env_restore(e);
}

KFT_TEST(api_threads_option_rejected)
{
    saved_env e = env_set("KFORGE_THREADS", NULL);
    kf_ctx *ctx = ctx_threads(-1);
    KFT_CHECK(ctx && kf_status_of(ctx) == KF_ERR_ARG && strstr(kf_errmsg(ctx), "threads"));
    KFT_CHECK(ctx && kf_threads(ctx) == kfr_cpu_count());
    kf_free(ctx);
    ctx = ctx_threads(5000);
    KFT_CHECK(ctx && kf_status_of(ctx) == KF_ERR_ARG);
    kf_free(ctx);
    env_restore(e);
}

/* ---- the JIT, directly ---- */

KFT_TEST(api_jit_compiles_and_reports)
{
    kfr_tcc *jit = NULL;
    void *fn = NULL;
    kfc_diag d;
    kfc_diag_clear(&d);
    /* Calls a libm symbol, and a float -> unsigned conversion for which tcc
     * needs a libtcc1 helper (__fixunsdfdi), and zeroes an array (memset). */
    const char *src = "double exp(double);\n"
                      "double f(double x) { double a[40] = {0}; a[3] = x;\n"
                      "  unsigned long long u = (unsigned long long)(x * 1e3);\n"
                      "  return exp(a[3]) + (double)u; }\n";
    KFT_CHECKF(kfr_tcc_compile(src, "f", &jit, &fn, &d) == KF_OK, "%s", d.msg);
    if (fn) {
        double (*f)(double) = (double (*)(double))fn;
        KFT_CHECK(fabs(f(2.0) - (exp(2.0) + 2000.0)) < 1e-9);
    }
    kfr_tcc_free(jit);

    kfc_diag_clear(&d);
    jit = (kfr_tcc *)1;
    KFT_CHECK(kfr_tcc_compile("int f( { return 1; }", "f", &jit, &fn, &d) == KF_ERR_JIT);
    KFT_CHECK(jit == NULL && fn == NULL && d.status == KF_ERR_JIT);
    KFT_CHECKF(strstr(d.msg, "kforge bug") != NULL, "%s", d.msg);
    KFT_CHECKF(strstr(d.msg, "1:") != NULL, "%s", d.msg); /* tcc's own position */

    kfc_diag_clear(&d);
    KFT_CHECK(kfr_tcc_compile("int g(void) { return 1; }", "f", &jit, &fn, &d) == KF_ERR_JIT);
    KFT_CHECKF(strstr(d.msg, "'f'") != NULL, "%s", d.msg);

    kfc_diag_clear(&d);
    KFT_CHECK(kfr_tcc_compile("double nope(double); double f(double x) { return nope(x); }", "f",
                              &jit, &fn, &d) == KF_ERR_JIT);
    KFT_CHECKF(strstr(d.msg, "nope") != NULL, "%s", d.msg);
}

/* ---- kf_run on hand-made kernels: boundaries, threads, engines ---- */

KFT_TEST(api_run_handmade_threads_and_engines)
{
    enum { M = 1003, N = 37 };
    double x[M], y[N], ref[M], got[M];
    fill(x, M, 1);
    fill(y, N, 2);
    for (int i = 0; i < M; i++) {
        double s = 0;
        for (int j = 0; j < N; j++)
            s += x[i] - y[j];
        ref[i] = s;
    }
    const void *args[2] = {x, y};
    for (int t = 1; t <= 3; t++) {
        kf_ctx *ctx = ctx_threads(t);
        for (int e = 0; e < 2; e++) {
            kf_kernel *k = handmade_kernel(ctx, e ? KF_JIT_REFERENCE : KF_JIT_TCC);
            KFT_CHECK(k != NULL);
            if (!k)
                continue;
            KFT_CHECK(strcmp(kf_kernel_engine(k), e ? "reference" : "tcc") == 0);
            /* Each run over a different M: blocks of every shape. */
            const int64_t Ms[] = {M, 1, 2, 7, 5 * t + 1};
            for (size_t m = 0; m < sizeof Ms / sizeof Ms[0]; m++) {
                for (int i = 0; i < M; i++)
                    got[i] = -12345.0;
                KFT_CHECK(kf_run(k, Ms[m], N, args, 2, got, NULL) == KF_OK);
                int ok = 1;
                for (int64_t i = 0; i < Ms[m]; i++)
                    ok &= got[i] == ref[i];
                for (int64_t i = Ms[m]; i < M; i++)
                    ok &= got[i] == -12345.0; /* rows past M are not written */
                KFT_CHECKF(ok, "threads %d, engine %d, M %lld", t, e, (long long)Ms[m]);
            }
            kf_kernel_free(k);
        }
        kf_free(ctx);
    }
}

KFT_TEST(api_run_empty_sizes)
{
    kf_ctx *ctx = ctx_threads(2);
    kf_kernel *k = handmade_kernel(ctx, KF_JIT_TCC);
    KFT_CHECK(k != NULL);
    if (k) {
        double x[4] = {1, 2, 3, 4}, out[4] = {9, 9, 9, 9};
        const void *args[2] = {x, NULL};
        /* N = 0: the neutral value 0, and y may be NULL since it is empty. */
        KFT_CHECK(kf_run(k, 4, 0, args, 2, out, NULL) == KF_OK);
        KFT_CHECK(out[0] == 0 && out[3] == 0);
        /* M = 0: nothing to write, out may be NULL. */
        const void *none[2] = {NULL, NULL};
        KFT_CHECK(kf_run(k, 0, 5, none, 2, NULL, NULL) == KF_ERR_ARG); /* y is not empty */
        const void *only_y[2] = {NULL, x};
        KFT_CHECK(kf_run(k, 0, 4, only_y, 2, NULL, NULL) == KF_OK);
        KFT_CHECK(kf_status_of(ctx) == KF_OK);
    }
    kf_kernel_free(k);
    kf_free(ctx);
}

KFT_TEST(api_run_rejects_bad_arguments)
{
    kf_ctx *ctx = ctx_threads(2);
    kf_kernel *k = handmade_kernel(ctx, KF_JIT_TCC);
    KFT_CHECK(k != NULL);
    if (!k) {
        kf_free(ctx);
        return;
    }
    double x[3] = {1, 2, 3}, y[2] = {4, 5}, out[3] = {7, 7, 7};
    const void *args[2] = {x, y};
    struct {
        int64_t M, N;
        const void *const *args;
        int nargs;
        void *out;
        const char *says;
    } bad[] = {
        {-1, 2, args, 2, out, "M = -1"},
        {3, -5, args, 2, out, "N = -5"},
        {3, 2, args, 1, out, "nargs is 1, expected 2"},
        {3, 2, args, 3, out, "nargs is 3, expected 2"},
        {3, 2, NULL, 2, out, "args is NULL"},
        {3, 2, (const void *const[]){x, NULL}, 2, out, "args[1] is NULL"},
        {3, 2, (const void *const[]){NULL, y}, 2, out, "args[0] is NULL"},
        {3, 2, args, 2, NULL, "out is NULL"},
        {INT64_MAX / 2, 2, args, 2, out, "overflow"},
        {3, INT64_MAX / 4, args, 2, out, "overflow"},
    };
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        int rc = kf_run(k, bad[b].M, bad[b].N, bad[b].args, bad[b].nargs, bad[b].out, NULL);
        KFT_CHECKF(rc == KF_ERR_ARG && kf_status_of(ctx) == KF_ERR_ARG, "case %zu: %d", b, rc);
        KFT_CHECKF(strstr(kf_errmsg(ctx), bad[b].says) != NULL, "case %zu: '%s'", b,
                   kf_errmsg(ctx));
        KFT_CHECK(kf_error_offset(ctx) == -1 && kf_error_source(ctx) == -1);
        KFT_CHECK(out[0] == 7 && out[1] == 7 && out[2] == 7); /* nothing written */
    }
    /* A success clears the last error. */
    KFT_CHECK(kf_run(k, 3, 2, args, 2, out, NULL) == KF_OK);
    KFT_CHECK(kf_status_of(ctx) == KF_OK && kf_errmsg(ctx)[0] == 0);
    KFT_CHECK(out[0] == (1 - 4) + (1 - 5));

    /* Without a reduction a kernel is for inspection only. */
    k->has_red = 0;
    KFT_CHECK(kf_run(k, 3, 2, args, 2, out, NULL) == KF_ERR_ARG);
    KFT_CHECK(strstr(kf_errmsg(ctx), "without a reduction") != NULL);
    kf_kernel_free(k);
    kf_free(ctx);
}

KFT_TEST(api_introspection_handmade)
{
    kf_ctx *ctx = ctx_threads(1);
    kf_kernel *k = handmade_kernel(ctx, KF_JIT_REFERENCE);
    KFT_CHECK(k != NULL);
    if (k) {
        KFT_CHECK(kf_kernel_nargs(k) == 2);
        int cat;
        int64_t dim;
        KFT_CHECK(kf_kernel_var(k, 1, &cat, &dim) == KF_OK && cat == 1 && dim == 1);
        KFT_CHECK(kf_kernel_var(k, 2, &cat, &dim) == KF_ERR_ARG && cat == -1);
        KFT_CHECK(kf_kernel_var(k, -1, NULL, NULL) == KF_ERR_ARG);
        k->prog.vars[0].used = 0;
        KFT_CHECK(kf_kernel_var(k, 0, &cat, &dim) == KF_OK && cat == -1);
        KFT_CHECK(kf_kernel_out_dim(k) == 1 && kf_kernel_index_dim(k) == 0);
        KFT_CHECK(kf_kernel_formula_dim(k) == 1);
        KFT_CHECK(kf_kernel_axis(k) == 1 && kf_kernel_dtype(k) == KF_FLOAT64);
        KFT_CHECK(strcmp(kf_kernel_reduction(k), "Sum") == 0);
        KFT_CHECK(kf_kernel_source(k) && strstr(kf_kernel_source(k), "kf_reduce"));
    }
    kf_kernel_free(k);
    kf_free(ctx);
}

/* ---- kf_compile: boundary checks that come before any pass ---- */

KFT_TEST(api_compile_rejects_bad_arguments)
{
    kf_ctx *ctx = ctx_threads(1);
    const char *nul_alias[] = {"x=Vi(0,3)", NULL};
    kf_compile_opts o;
    kf_compile_opts_init(&o);
    KFT_CHECK(o.k == 0 && o.formula2 == NULL && o.jit == KF_JIT_AUTO && o.dump == 0);
/* Each call must fail with the status and a message containing `says`. */
#define EXPECT_FAIL(call, status, says)                                                          \
    do {                                                                                           \
        kf_kernel *k_ = (call);                                                                    \
        KFT_CHECK(k_ == NULL);                                                                     \
        kf_kernel_free(k_);                                                                        \
        KFT_CHECKF(kf_status_of(ctx) == (status) && strstr(kf_errmsg(ctx), says), "%s: %s",      \
                   kf_status_name(kf_status_of(ctx)), kf_errmsg(ctx));                             \
    } while (0)
    EXPECT_FAIL(kf_compile(ctx, NULL, NULL, 0, "Sum", 1, KF_FLOAT32, NULL), KF_ERR_ARG,
                "formula is NULL");
    EXPECT_FAIL(kf_compile(ctx, "x", NULL, -1, "Sum", 1, KF_FLOAT32, NULL), KF_ERR_ARG,
                "naliases is -1");
    EXPECT_FAIL(kf_compile(ctx, "x", NULL, 2, "Sum", 1, KF_FLOAT32, NULL), KF_ERR_ARG,
                "aliases is NULL");
    EXPECT_FAIL(kf_compile(ctx, "x", nul_alias, 2, "Sum", 1, KF_FLOAT32, NULL), KF_ERR_ARG,
                "alias 1 is NULL");
    EXPECT_FAIL(kf_compile(ctx, "x", NULL, 100000, "Sum", 1, KF_FLOAT32, NULL), KF_ERR_LIMIT,
                "aliases");
    EXPECT_FAIL(kf_compile(ctx, "x", NULL, 0, "Sum", 2, KF_FLOAT32, NULL), KF_ERR_ARG,
                "axis is 2");
    EXPECT_FAIL(kf_compile(ctx, "x", NULL, 0, "Sum", -1, KF_FLOAT32, NULL), KF_ERR_ARG,
                "axis is -1");
    EXPECT_FAIL(kf_compile(ctx, "x", NULL, 0, "Sum", 1, (kf_dtype)7, NULL), KF_ERR_ARG,
                "dtype is 7");
    o.sum_scheme = (kf_sum_scheme)9;
    EXPECT_FAIL(kf_compile(ctx, "x", NULL, 0, "Sum", 1, KF_FLOAT32, &o), KF_ERR_ARG, "sum_scheme");
    kf_compile_opts_init(&o);
    o.jit = (kf_jit)-3;
    EXPECT_FAIL(kf_compile(ctx, "x", NULL, 0, "Sum", 1, KF_FLOAT32, &o), KF_ERR_ARG, "jit is -3");
#undef EXPECT_FAIL
    kf_free(ctx);
}

KFT_TEST(api_compile_bad_jit_env)
{
    kf_ctx *ctx = ctx_threads(1);
    saved_env e = env_set("KFORGE_JIT", "llvm");
    KFT_CHECK(kf_compile(ctx, GAUSS, gauss_alias, 3, "Sum", 1, KF_FLOAT32, NULL) == NULL);
    KFT_CHECK(kf_status_of(ctx) == KF_ERR_ARG);
    KFT_CHECKF(strstr(kf_errmsg(ctx), "KFORGE_JIT") && strstr(kf_errmsg(ctx), "llvm"), "%s",
               kf_errmsg(ctx));
    env_restore(e);
    kf_free(ctx);
}

/* ---- end to end: needs the whole compiler ---- */

/* Runs GAUSS (Sum, axis 1) on M x N random points; out has M values. */
static int run_gauss(kf_ctx *ctx, kf_dtype dt, const kf_compile_opts *o, int64_t M, int64_t N,
                     const double *x, const double *y, const double *b, double *out)
{
    kf_kernel *k = kf_compile(ctx, GAUSS, gauss_alias, 3, "Sum", 1, dt, o);
    if (!k)
        return kf_status_of(ctx);
    int rc;
    if (dt == KF_FLOAT64) {
        const void *args[3] = {x, y, b};
        rc = kf_run(k, M, N, args, 3, out, NULL);
    } else {
        float *buf = malloc(sizeof(float) * (size_t)(3 * M + 3 * N + N + M));
        if (!buf) {
            kf_kernel_free(k);
            return KF_ERR_NOMEM;
        }
        float *xf = buf, *yf = xf + 3 * M, *bf = yf + 3 * N, *of = bf + N;
        for (int64_t q = 0; q < 3 * M; q++)
            xf[q] = (float)x[q];
        for (int64_t q = 0; q < 3 * N; q++)
            yf[q] = (float)y[q];
        for (int64_t q = 0; q < N; q++)
            bf[q] = (float)b[q];
        const void *args[3] = {xf, yf, bf};
        rc = kf_run(k, M, N, args, 3, of, NULL);
        for (int64_t q = 0; q < M; q++)
            out[q] = of[q];
        free(buf);
    }
    kf_kernel_free(k);
    return rc;
}

KFT_TEST(api_e2e_gauss_threads_engines)
{
    enum { M = 301, N = 517 };
    static double x[3 * M], y[3 * N], b[N], out[4][M], ref[M];
    fill(x, 3 * M, 3);
    fill(y, 3 * N, 4);
    fill(b, N, 5);
    for (int i = 0; i < M; i++) {
        double s = 0;
        for (int j = 0; j < N; j++) {
            double d2 = 0;
            for (int c = 0; c < 3; c++)
                d2 += (x[3 * i + c] - y[3 * j + c]) * (x[3 * i + c] - y[3 * j + c]);
            s += exp(-d2 / 2) * b[j];
        }
        ref[i] = s;
    }
    for (int dt = 0; dt < 2; dt++) {
        double tol = dt == KF_FLOAT64 ? 1e-12 : 1e-4;
        /* libtcc pinned: under the default auto policy a later compile may
         * pick up the cached cc code, whose last bits differ (FMA). */
        kf_compile_opts tcc_only;
        kf_compile_opts_init(&tcc_only);
        tcc_only.jit = KF_JIT_TCC;
        for (int t = 1; t <= 3; t++) {
            kf_ctx *ctx = ctx_threads(t);
            int rc = run_gauss(ctx, (kf_dtype)dt, &tcc_only, M, N, x, y, b, out[t]);
            KFT_CHECKF(rc == KF_OK, "%s", kf_errmsg(ctx));
            kf_free(ctx);
        }
        int same = 1, close = 1;
        for (int i = 0; i < M; i++) {
            same &= out[1][i] == out[2][i] && out[1][i] == out[3][i];
            close &= fabs(out[1][i] - ref[i]) <= tol * (1 + fabs(ref[i]));
        }
        KFT_CHECKF(same, "dtype %d: thread counts 1/2/3 disagree", dt);
        KFT_CHECKF(close, "dtype %d: far from the plain loop", dt);

        kf_compile_opts o;
        kf_compile_opts_init(&o);
        o.jit = KF_JIT_REFERENCE;
        kf_ctx *ctx = ctx_threads(2);
        KFT_CHECKF(run_gauss(ctx, (kf_dtype)dt, &o, M, N, x, y, b, out[0]) == KF_OK, "%s",
                   kf_errmsg(ctx));
        kf_free(ctx);
        close = 1;
        for (int i = 0; i < M; i++)
            close &= fabs(out[0][i] - out[1][i]) <= tol * (1 + fabs(ref[i]));
        KFT_CHECKF(close, "dtype %d: reference engine disagrees with tcc", dt);
    }
}

KFT_TEST(api_e2e_jit_env_and_introspection)
{
    kf_ctx *ctx = ctx_threads(1);
    saved_env e = env_set("KFORGE_JIT", "reference");
    kf_kernel *k = kf_compile(ctx, GAUSS, gauss_alias, 3, "Sum", 1, KF_FLOAT64, NULL);
    KFT_CHECKF(k != NULL, "%s", kf_errmsg(ctx));
    if (k) {
        KFT_CHECK(strcmp(kf_kernel_engine(k), "reference") == 0);
        KFT_CHECK(kf_kernel_source(k) && strstr(kf_kernel_source(k), KFK_ENTRY));
    }
    kf_kernel_free(k);
    env_restore(e);

    e = env_set("KFORGE_JIT", "tcc");
    kf_compile_opts o;
    kf_compile_opts_init(&o);
    o.jit = KF_JIT_REFERENCE; /* an explicit option beats the environment */
    kf_kernel *kref = kf_compile(ctx, GAUSS, gauss_alias, 3, "Sum", 0, KF_FLOAT32, &o);
    KFT_CHECKF(kref && strcmp(kf_kernel_engine(kref), "reference") == 0, "%s", kf_errmsg(ctx));
    kf_kernel_free(kref);
    o.jit = KF_JIT_AUTO; /* ... and the environment decides for auto */
    k = kf_compile(ctx, GAUSS, gauss_alias, 3, "Sum", 0, KF_FLOAT32, &o);
    KFT_CHECKF(k != NULL, "%s", kf_errmsg(ctx));
    if (k) {
        KFT_CHECK(strcmp(kf_kernel_engine(k), "tcc") == 0);
        KFT_CHECK(kf_kernel_nargs(k) == 3);
        int cat;
        int64_t dim;
        KFT_CHECK(kf_kernel_var(k, 0, &cat, &dim) == KF_OK && cat == 0 && dim == 3);
        KFT_CHECK(kf_kernel_var(k, 2, &cat, &dim) == KF_OK && cat == 1 && dim == 1);
        KFT_CHECK(kf_kernel_var(k, 3, &cat, &dim) == KF_ERR_ARG);
        KFT_CHECK(kf_kernel_out_dim(k) == 1 && kf_kernel_index_dim(k) == 0);
        KFT_CHECK(kf_kernel_formula_dim(k) == 1);
        KFT_CHECK(kf_kernel_axis(k) == 0 && kf_kernel_dtype(k) == KF_FLOAT32);
        KFT_CHECK(kf_kernel_reduction(k) && strcmp(kf_kernel_reduction(k), "Sum") == 0);
        KFT_CHECK(kf_kernel_canonical(k) && strstr(kf_kernel_canonical(k), "SqDist"));
        KFT_CHECK(kf_kernel_canonical2(k) == NULL);
    }
    kf_kernel_free(k);
    env_restore(e);
    kf_free(ctx);
}

KFT_TEST(api_e2e_errors_carry_offsets)
{
    kf_ctx *ctx = ctx_threads(1);
    /* a syntax error in the formula */
    KFT_CHECK(kf_compile(ctx, "Exp(x", gauss_alias, 3, "Sum", 1, KF_FLOAT64, NULL) == NULL);
    KFT_CHECK(kf_status_of(ctx) == KF_ERR_SYNTAX);
    KFT_CHECK(kf_error_source(ctx) == 0 && kf_error_offset(ctx) >= 0);
    KFT_CHECKF(strncmp(kf_errmsg(ctx), "1:", 2) == 0, "%s", kf_errmsg(ctx));

    /* an error inside alias 1 names it */
    const char *bad_alias[] = {"x=Vi(0,3)", "y=Vj(1,3", "b=Vj(2,1)"};
    KFT_CHECK(kf_compile(ctx, GAUSS, bad_alias, 3, "Sum", 1, KF_FLOAT64, NULL) == NULL);
    KFT_CHECK(kf_status_of(ctx) == KF_ERR_SYNTAX && kf_error_source(ctx) == 3);
    KFT_CHECKF(strncmp(kf_errmsg(ctx), "alias 1 1:", 10) == 0, "%s", kf_errmsg(ctx));

    /* an error in formula2 names it */
    kf_compile_opts o;
    kf_compile_opts_init(&o);
    o.formula2 = "b+(";
    KFT_CHECK(kf_compile(ctx, "-SqDist(x,y)", gauss_alias, 3, "SumSoftMaxWeight", 1, KF_FLOAT64,
                         &o) == NULL);
    KFT_CHECK(kf_status_of(ctx) == KF_ERR_SYNTAX && kf_error_source(ctx) == 1);
    KFT_CHECKF(strncmp(kf_errmsg(ctx), "formula2 1:", 11) == 0, "%s", kf_errmsg(ctx));

    /* a type error: dims 3 and 2 */
    const char *mix[] = {"x=Vi(0,3)", "z=Vj(1,2)"};
    KFT_CHECK(kf_compile(ctx, "x+z", mix, 2, "Sum", 1, KF_FLOAT64, NULL) == NULL);
    KFT_CHECK(kf_status_of(ctx) == KF_ERR_TYPE && kf_error_offset(ctx) >= 0);

    /* an unknown reduction, then a KeOps one kforge lacks */
    KFT_CHECK(kf_compile(ctx, GAUSS, gauss_alias, 3, "Summ", 1, KF_FLOAT64, NULL) == NULL);
    KFT_CHECK(kf_status_of(ctx) != KF_OK && strstr(kf_errmsg(ctx), "Summ"));

    /* a success clears the error */
    kf_kernel *k = kf_compile(ctx, GAUSS, gauss_alias, 3, NULL, 1, KF_FLOAT64, NULL);
    KFT_CHECKF(k && kf_status_of(ctx) == KF_OK && kf_errmsg(ctx)[0] == 0, "%s", kf_errmsg(ctx));
    KFT_CHECK(kf_error_offset(ctx) == -1 && kf_error_source(ctx) == -1);
    if (k) {
        KFT_CHECK(kf_kernel_reduction(k) == NULL && kf_kernel_out_dim(k) == 0);
        KFT_CHECK(kf_kernel_source(k) && strstr(kf_kernel_source(k), KFK_FORMULA_ENTRY));
        double v = 0;
        const void *args[3] = {&v, &v, &v};
        KFT_CHECK(kf_run(k, 1, 1, args, 3, &v, NULL) == KF_ERR_ARG);
    }
    kf_kernel_free(k);
    kf_free(ctx);
}

KFT_TEST(api_e2e_index_outputs_and_neutral)
{
    kf_ctx *ctx = ctx_threads(2);
    kf_kernel *k = kf_compile(ctx, "SqDist(x,y)", gauss_alias, 3, "Min_ArgMin", 1, KF_FLOAT64, NULL);
    KFT_CHECKF(k != NULL, "%s", kf_errmsg(ctx));
    if (k) {
        /* b is declared by its alias: it counts as an argument */
        KFT_CHECK(kf_kernel_nargs(k) == 3);
        KFT_CHECK(kf_kernel_out_dim(k) == 1 && kf_kernel_index_dim(k) == 1);
        double x[6] = {0, 0, 0, 5, 5, 5}, y[9] = {9, 9, 9, 5, 5, 4, 0, 0, 1}, out[2] = {-1, -1};
        double b[3] = {0, 0, 0};
        int64_t idx[2] = {-7, -7};
        const void *args[3] = {x, y, b};
        KFT_CHECK(kf_run(k, 2, 3, args, 3, out, NULL) == KF_ERR_ARG);
        KFT_CHECK(strstr(kf_errmsg(ctx), "index_out is NULL") != NULL);
        KFT_CHECK(out[0] == -1 && idx[0] == -7);
        KFT_CHECK(kf_run(k, 2, 3, args, 3, out, idx) == KF_OK);
        KFT_CHECK(out[0] == 1 && idx[0] == 2 && out[1] == 1 && idx[1] == 1);
        /* N = 0: +inf and -1 */
        KFT_CHECK(kf_run(k, 2, 0, args, 3, out, idx) == KF_OK);
        KFT_CHECK(isinf(out[0]) && out[0] > 0 && idx[0] == -1 && idx[1] == -1);
    }
    kf_kernel_free(k);
    kf_free(ctx);
}

KFT_TEST(api_e2e_run_many_times_and_compile_loop)
{
    kf_ctx *ctx = ctx_threads(2);
    double x[3 * 5], y[3 * 7], b[7], first[5], out[5];
    fill(x, 15, 6);
    fill(y, 21, 7);
    fill(b, 7, 8);
    kf_kernel *k = kf_compile(ctx, GAUSS, gauss_alias, 3, "Sum", 1, KF_FLOAT64, NULL);
    KFT_CHECKF(k != NULL, "%s", kf_errmsg(ctx));
    if (k) {
        const void *args[3] = {x, y, b};
        KFT_CHECK(kf_run(k, 5, 7, args, 3, first, NULL) == KF_OK);
        int ok = 1;
        for (int rep = 0; rep < 500 && ok; rep++)
            ok = kf_run(k, 5, 7, args, 3, out, NULL) == KF_OK && memcmp(out, first, sizeof out) == 0;
        KFT_CHECK(ok);
    }
    kf_kernel_free(k);
    /* Compile and free in a loop: the ASan run of the suite catches any leak,
     * and a leak of libtcc states would also show up as failing compiles. */
    int ok = 1;
    for (int rep = 0; rep < 60 && ok; rep++) {
        k = kf_compile(ctx, GAUSS, gauss_alias, 3, rep % 2 ? "Sum" : "Max", rep % 2,
                       rep % 3 ? KF_FLOAT32 : KF_FLOAT64, NULL);
        ok = k != NULL;
        kf_kernel_free(k);
        /* failing compiles must clean up as well */
        ok &= kf_compile(ctx, "Exp(x+", gauss_alias, 3, "Sum", 1, KF_FLOAT32, NULL) == NULL;
    }
    KFT_CHECKF(ok, "%s", kf_errmsg(ctx));
    kf_free(ctx);
}

/* Collects log lines for the dump test. */
typedef struct log_sink {
    int n, errors, saw_parse_dump, saw_jit_time;
} log_sink;

static void sink(void *user, int level, const char *msg)
{
    log_sink *s = user;
    s->n++;
    s->errors += level == KF_LOG_ERROR;
    s->saw_parse_dump |= strncmp(msg, "after parse:\n", 13) == 0;
    s->saw_jit_time |= strncmp(msg, "pass jit:", 9) == 0;
}

KFT_TEST(api_e2e_log_and_dump)
{
    log_sink s = {0, 0, 0, 0};
    kf_options opt;
    kf_options_init(&opt);
    opt.threads = 1;
    opt.verbose = KF_LOG_DEBUG;
    opt.log = sink;
    opt.log_user = &s;
    kf_ctx *ctx = kf_new(&opt);
    kf_compile_opts o;
    kf_compile_opts_init(&o);
    o.dump = 1;
    kf_kernel *k = kf_compile(ctx, GAUSS, gauss_alias, 3, "Sum", 1, KF_FLOAT64, &o);
    KFT_CHECKF(k != NULL, "%s", kf_errmsg(ctx));
    KFT_CHECK(s.saw_parse_dump && s.saw_jit_time && s.errors == 0);
    kf_kernel_free(k);
    KFT_CHECK(kf_compile(ctx, "Exp(", gauss_alias, 3, "Sum", 1, KF_FLOAT64, &o) == NULL);
    KFT_CHECK(s.errors == 1); /* failures are logged at KF_LOG_ERROR */
    kf_free(ctx);

    /* verbose below DEBUG: no dump, no pass timings */
    log_sink quiet = {0, 0, 0, 0};
    opt.verbose = KF_LOG_INFO;
    opt.log_user = &quiet;
    ctx = kf_new(&opt);
    k = kf_compile(ctx, GAUSS, gauss_alias, 3, "Sum", 1, KF_FLOAT64, &o);
    KFT_CHECK(k && !quiet.saw_parse_dump && !quiet.saw_jit_time && quiet.n > 0);
    kf_kernel_free(k);
    kf_free(ctx);
}
