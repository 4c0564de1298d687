/*
 * t_cuda_run.c -- the CUDA backend through the public API (docs/cuda.md).
 *
 * Without a usable GPU (CI): an explicit KF_BACKEND_CUDA compile fails with
 * KF_ERR_DEVICE and the reason, AUTO kernels fall back to the CPU with
 * the CPU's exact results, device runs of CPU kernels are refused, and the
 * environment variables are checked. With a GPU (`make test-gpu`): every
 * reduction, both dtypes and axes, sizes off the block size, empty sides,
 * block-sparse patterns, device pointers, and the shared-memory limit, each
 * against the reference engine with testutil.h's tolerances.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cuda/cuda_drv.h"
#include "harness.h"
#include "testutil.h"

/* Why gpu_count() is 0, for the skip message. */
static char no_gpu_why[512] = "kf_device_count found none";

static int gpu_count(void)
{
    static int n = -1; /* the answer cannot change during a run */
    if (n < 0) {
        kf_ctx *ctx = kf_new(NULL);
        int c = 0;
        if (ctx && kf_device_count(ctx, &c) != KF_OK) {
            snprintf(no_gpu_why, sizeof no_gpu_why, "%s", kf_errmsg(ctx));
            c = 0;
        }
        kf_free(ctx);
        n = c;
    }
    return n;
}

static kf_kernel *compile_backend(kf_ctx *ctx, const kft_spec *s, kf_backend b)
{
    kf_compile_opts o;
    kf_compile_opts_init(&o);
    o.backend = b;
    o.k = s->k;
    o.formula2 = s->formula2;
    o.sum_scheme = s->scheme;
    o.jit = KF_JIT_TCC;
    return kf_compile(ctx, s->formula, s->aliases, s->naliases, s->reduction, s->axis, s->dtype, &o);
}

static const char *const AL[] = {"x=Vi(0,3)", "y=Vj(1,3)", "p=Pm(2,1)", "a=Vi(3,1)", "b=Vj(4,1)"};

/* ---- without a GPU ---- */

KFT_TEST(cuda_run_without_gpu)
{
    if (gpu_count() > 0)
        KFT_SKIP("a GPU is present; this test is for machines without one");
    kf_ctx *ctx = kf_new(NULL);
    KFT_CHECK(ctx != NULL);
    kft_spec s = {.formula = "Exp(-SqDist(x,y))*b", .aliases = AL, .naliases = 5, .reduction = "Sum",
                  .axis = 1, .dtype = KF_FLOAT32};
    /* an explicit GPU request is kf_compile's error, with the reason */
    KFT_CHECK(compile_backend(ctx, &s, KF_BACKEND_CUDA) == NULL);
    KFT_CHECKF(kf_status_of(ctx) == KF_ERR_DEVICE && strlen(kf_errmsg(ctx)) > 10, "%s: %s",
               kf_status_name(kf_status_of(ctx)), kf_errmsg(ctx));
    int n = 7;
    KFT_CHECK(kf_device_count(ctx, &n) == KF_ERR_UNSUPPORTED && n == 0);
    kf_device_info info;
    KFT_CHECK(kf_device_get(ctx, 0, &info) == KF_ERR_UNSUPPORTED);

    /* AUTO past the size threshold: the GPU is tried once, the CPU answers,
     * bit-identical to a CPU kernel with the same engine */
    kf_kernel *ka = compile_backend(ctx, &s, KF_BACKEND_AUTO);
    kf_kernel *kc = compile_backend(ctx, &s, KF_BACKEND_CPU);
    KFT_CHECK(ka && kc && !strcmp(kf_kernel_backend(ka), "auto") && !strcmp(kf_kernel_backend(kc), "cpu"));
    int64_t M = 8192, N = 8192; /* M * N = 2^26 = KF_AUTO_GPU_PAIRS */
    kft_data d;
    if (ka && kc && kft_data_make(&d, ka, M, N, -1, 1, 0, 5) == 0) {
        void *oa = NULL, *oc = NULL;
        int64_t *ia = NULL, *ic = NULL;
        KFT_CHECK(kft_run(ka, M, N, &d, &oa, &ia) == KF_OK && kft_run(kc, M, N, &d, &oc, &ic) == KF_OK);
        KFT_CHECK(oa && oc && memcmp(oa, oc, (size_t)M * 4) == 0);
        KFT_CHECKF(!strcmp(kf_kernel_backend(ka), "cpu"), "%s", kf_kernel_backend(ka));
        /* device arrays: refused for a CPU kernel, unsupported without a GPU */
        KFT_CHECK(kf_run_device(kc, M, N, (const void *const *)d.arr, d.nargs, oc, NULL, NULL) == KF_ERR_ARG);
        KFT_CHECK(kf_run_device(ka, M, N, (const void *const *)d.arr, d.nargs, oa, NULL, NULL) ==
                  KF_ERR_DEVICE);
        free(oa), free(oc), free(ia), free(ic);
        kft_data_free(&d);
    }
    kf_kernel_free(ka);
    kf_kernel_free(kc);
    kf_free(ctx);
}

KFT_TEST(cuda_run_environment)
{
    kf_ctx *ctx = kf_new(NULL);
    kft_spec s = {.formula = "x*y", .aliases = AL, .naliases = 2, .reduction = "Sum", .axis = 1,
                  .dtype = KF_FLOAT64};
    static const char *const bad[][2] = {{"KFORGE_BACKEND", "gpu"}, {"KFORGE_DEVICE", "-1"},
                                         {"KFORGE_DEVICE", "one"}, {"KFORGE_DEVICE", "2000"}};
    for (size_t q = 0; q < sizeof bad / sizeof bad[0]; q++) {
        setenv(bad[q][0], bad[q][1], 1);
        kf_kernel *k = compile_backend(ctx, &s, KF_BACKEND_AUTO);
        KFT_CHECKF(!k && kf_status_of(ctx) == KF_ERR_ARG && strstr(kf_errmsg(ctx), bad[q][0]), "%s=%s: %s",
                   bad[q][0], bad[q][1], kf_errmsg(ctx));
        kf_kernel_free(k);
        unsetenv(bad[q][0]);
    }
    /* the reference engine stays the CPU's oracle under AUTO */
    kf_kernel *kr = kft_compile(ctx, &s, KF_JIT_REFERENCE);
    KFT_CHECK(kr && !strcmp(kf_kernel_backend(kr), "cpu"));
    kf_kernel_free(kr);
    setenv("KFORGE_BACKEND", "cpu", 1);
    kf_kernel *k = compile_backend(ctx, &s, KF_BACKEND_AUTO);
    KFT_CHECK(k && !strcmp(kf_kernel_backend(k), "cpu"));
    kf_kernel_free(k);
    unsetenv("KFORGE_BACKEND");
    kf_compile_opts o;
    kf_compile_opts_init(&o);
    o.backend = (kf_backend)7;
    KFT_CHECK(!kf_compile(ctx, "x", AL, 1, "Sum", 1, KF_FLOAT32, &o) && kf_status_of(ctx) == KF_ERR_ARG);
    kf_free(ctx);
}

/* ---- with a GPU ---- */

/* the reduction suite of testutil.h: every reduction, vector formulas, every kind of variable */

/* Compares the CUDA kernel with the reference engine on every size given. */
static int check_gpu(kf_ctx *ctx, const kft_spec *s, const int64_t (*sizes)[2], int nsizes, uint64_t seed)
{
    kf_kernel *g = compile_backend(ctx, s, KF_BACKEND_CUDA);
    kf_kernel *r = kft_compile(ctx, s, KF_JIT_REFERENCE);
    int bad = 0;
    if (!g || !r) {
        fprintf(stderr, "  %s / %s: %s\n", s->formula, s->reduction, kf_errmsg(ctx));
        bad = -1;
    }
    for (int q = 0; q < nsizes && bad == 0; q++) {
        kft_data d;
        if (kft_data_make(&d, g, sizes[q][0], sizes[q][1], -1, 1, 1, seed + (uint64_t)q)) {
            bad = -1;
            break;
        }
        bad = kft_compare(s, g, r, sizes[q][0], sizes[q][1], &d);
        kft_data_free(&d);
    }
    kf_kernel_free(g);
    kf_kernel_free(r);
    return bad;
}

KFT_TEST(cuda_run_reductions)
{
    if (gpu_count() == 0)
        KFT_SKIP("no GPU: %s; make test-gpu runs this on one", no_gpu_why);
    kf_ctx *ctx = kf_new(NULL);
    /* around the block size (256 rows per block, tiles of 256 points), the empty sides,
     * and few rows over many points: the split-j path (partials + combine) on either axis */
    static const int64_t sizes[][2] = {{0, 5}, {5, 0}, {1, 1}, {255, 257}, {256, 256}, {257, 1000}, {1000, 33},
                                       {5, 100000}, {100000, 5}};
    for (int q = 0; q < KFT_NRED; q++)
        for (int dt = 0; dt < 2; dt++)
            for (int axis = 0; axis < 2; axis++) {
                const kft_red_case *rc = &kft_red_cases[q];
                kft_spec s = {.formula = rc->f, .aliases = kft_red_al, .naliases = KFT_NRED_AL, .reduction = rc->name,
                              .axis = axis, .dtype = (kf_dtype)dt, .k = rc->k, .formula2 = rc->f2};
                KFT_CHECKF(check_gpu(ctx, &s, sizes, 9, 100 + (uint64_t)q) == 0, "%s %s axis %d", rc->name,
                           dt ? "float64" : "float32", axis);
            }
    /* the float32 Sum schemes */
    for (int sc = KF_SUM_BLOCK; sc <= KF_SUM_KAHAN; sc++) {
        kft_spec s = {.formula = KFT_F_SUM, .aliases = kft_red_al, .naliases = KFT_NRED_AL, .reduction = "Sum", .axis = 1,
                      .dtype = KF_FLOAT32, .scheme = (kf_sum_scheme)sc};
        KFT_CHECKF(check_gpu(ctx, &s, sizes + 5, 3, 7) == 0, "scheme %d", sc);
    }
    kf_free(ctx);
}

KFT_TEST(cuda_run_ranges_and_device_pointers)
{
    if (gpu_count() == 0)
        KFT_SKIP("no GPU: %s; make test-gpu runs this on one", no_gpu_why);
    kf_ctx *ctx = kf_new(NULL);
    kft_spec s = {.formula = "Exp(-SqDist(x,y)*p)*b", .aliases = AL, .naliases = 5, .reduction = "Sum",
                  .axis = 1, .dtype = KF_FLOAT64};
    kf_kernel *g = compile_backend(ctx, &s, KF_BACKEND_CUDA);
    kf_kernel *r = kft_compile(ctx, &s, KF_JIT_REFERENCE);
    KFT_CHECK(g && r && !strcmp(kf_kernel_backend(g), "cuda") && !strcmp(kf_kernel_engine(g), "cuda"));
    int64_t M = 700, N = 900;
    kft_data d;
    if (g && r && kft_data_make(&d, g, M, N, -1, 1, 0, 3) == 0) {
        /* clusters [0,100) [150,400) [400,700); rows 100..149 in none; the
         * second cluster's list is empty; a range with start == end */
        static const int64_t ri[] = {0, 100, 150, 400, 400, 700}, si[] = {2, 2, 4};
        static const int64_t rj[] = {0, 300, 500, 500, 10, 20, 600, 900};
        kf_ranges rg = {.nci = 3, .ranges_i = ri, .slices_i = si, .nredj = 4, .redranges_j = rj};
        double *og = malloc((size_t)M * 8), *orf = malloc((size_t)M * 8);
        KFT_CHECK(og && orf);
        if (og && orf) {
            KFT_CHECK(kf_run_ranges(g, M, N, (const void *const *)d.arr, d.nargs, &rg, og, NULL) == KF_OK);
            KFT_CHECK(kf_run_ranges(r, M, N, (const void *const *)d.arr, d.nargs, &rg, orf, NULL) == KF_OK);
            int bad = 0;
            for (int64_t i = 0; i < M; i++)
                bad += !(og[i] == orf[i] || (og[i] - orf[i]) * (og[i] - orf[i]) <= 1e-20 * (1 + orf[i] * orf[i]));
            KFT_CHECKF(bad == 0, "%d rows differ", bad);
            KFT_CHECK(og[120] == 0 && og[200] == 0); /* no cluster; an empty list */

            /* the same dense run from device arrays, on a stream */
            kfc_diag dg;
            kfc_diag_clear(&dg);
            kfr_cu_ptr dx = 0, dy = 0, dp = 0, db = 0, dout = 0;
            kfr_cu_stream st = NULL;
            int ok = kfr_cu_alloc(0, (size_t)M * 24, &dx, &dg) == KF_OK && kfr_cu_alloc(0, (size_t)N * 24, &dy, &dg) == KF_OK &&
                     kfr_cu_alloc(0, 8, &dp, &dg) == KF_OK && kfr_cu_alloc(0, (size_t)N * 8, &db, &dg) == KF_OK &&
                     kfr_cu_alloc(0, (size_t)M * 8, &dout, &dg) == KF_OK && kfr_cu_stream_create(0, &st, &dg) == KF_OK &&
                     kfr_cu_htod(0, dx, d.arr[0], (size_t)M * 24, NULL, &dg) == KF_OK &&
                     kfr_cu_htod(0, dy, d.arr[1], (size_t)N * 24, NULL, &dg) == KF_OK &&
                     kfr_cu_htod(0, dp, d.arr[2], 8, NULL, &dg) == KF_OK &&
                     kfr_cu_htod(0, db, d.arr[4], (size_t)N * 8, NULL, &dg) == KF_OK;
            KFT_CHECKF(ok, "%s", dg.msg);
            if (ok) {
                const void *dargs[5] = {(void *)(uintptr_t)dx, (void *)(uintptr_t)dy, (void *)(uintptr_t)dp, (void *)(uintptr_t)dx,
                                        (void *)(uintptr_t)db};
                KFT_CHECK(kf_run_device(g, M, N, dargs, 5, (void *)(uintptr_t)dout, NULL, st) == KF_OK);
                KFT_CHECK(kfr_cu_stream_sync(0, st, &dg) == KF_OK);
                KFT_CHECK(kfr_cu_dtoh(0, og, dout, (size_t)M * 8, NULL, &dg) == KF_OK);
                KFT_CHECK(kf_run(r, M, N, (const void *const *)d.arr, d.nargs, orf, NULL) == KF_OK);
                int bad2 = 0;
                for (int64_t i = 0; i < M; i++)
                    bad2 += !((og[i] - orf[i]) * (og[i] - orf[i]) <= 1e-20 * (1 + orf[i] * orf[i]));
                KFT_CHECKF(bad2 == 0, "%d rows differ", bad2);
            }
            kfr_cu_free(0, dx), kfr_cu_free(0, dy), kfr_cu_free(0, dp), kfr_cu_free(0, db), kfr_cu_free(0, dout);
            if (st)
                kfr_cu_stream_destroy(0, st);
        }
        free(og), free(orf);
        kft_data_free(&d);
    }
    kf_kernel_free(g);
    kf_kernel_free(r);

    /* inner variables too big for a block's shared memory: a clear KF_ERR_LIMIT */
    static const char *const big[] = {"x=Vi(0,3)", "y=Vj(1,16384)"};
    kft_spec sb = {.formula = "Sum(y)*x", .aliases = big, .naliases = 2, .reduction = "Sum", .axis = 1,
                   .dtype = KF_FLOAT64};
    kf_kernel *kb = compile_backend(ctx, &sb, KF_BACKEND_CUDA);
    KFT_CHECKF(!kb && kf_status_of(ctx) == KF_ERR_LIMIT && strstr(kf_errmsg(ctx), "shared memory"), "%s",
               kf_errmsg(ctx));
    kf_kernel_free(kb);
    /* a device that does not exist */
    kf_compile_opts o;
    kf_compile_opts_init(&o);
    o.backend = KF_BACKEND_CUDA;
    o.device = 1000;
    KFT_CHECK(!kf_compile(ctx, "x", AL, 1, "Sum", 1, KF_FLOAT32, &o) && kf_status_of(ctx) == KF_ERR_ARG);
    kf_free(ctx);
}
