/* t_tiers.c -- the JIT policy: auto's background build and swap, kf_kernel_wait, cc and tcc
 * on request, KFORGE_JIT, no compiler, a failing compiler, cancelling a build on free. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cacheutil.h"
#include "harness.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int stats_cache(const kf_kernel *k)
{
    kf_compile_stats st;
    return kf_kernel_stats(k, &st) == KF_OK ? st.cache : -1;
}

KFT_TEST(tiers_auto_builds_in_background_and_swaps)
{
    char *dir = kft_tmpdir("auto");
    kft_logctx lc;
    char f[128];
    kft_spec s;
    kft_gauss_spec(&s, f, sizeof f, 61, KF_FLOAT32);
    if (!KFT_CHECK(dir && kft_logctx_new(&lc, dir, 2, 0) == 0))
        return;
    double t0 = now_s();
    kf_kernel *k = kft_compile_jit(lc.ctx, &s, KF_JIT_AUTO);
    double compile_s = now_s() - t0;
    if (!KFT_CHECK(k != NULL))
        goto out;
    /* answered at once with libtcc (the cc build takes far longer) */
    KFT_CHECKF(compile_s < 0.05, "auto took %.3f s to answer", compile_s);
    kf_compile_stats st;
    KFT_CHECK(kf_kernel_stats(k, &st) == KF_OK && st.cache == KF_CACHE_MISS);
    KFT_CHECK(st.parse_s > 0 && st.emit_s > 0 && st.jit_s > 0 && st.total_s >= st.jit_s);
    /* every pass has its own time: the IR check, the lookup, the optimized emit of a miss */
    KFT_CHECKF(st.verify_s > 0 && st.cache_s > 0 && st.emit_opt_s > 0 && st.emit_cuda_s == 0 &&
                   st.total_s >= st.parse_s + st.check_s + st.simplify_s + st.verify_s + st.emit_s +
                                      st.cache_s + st.emit_opt_s + st.jit_s,
               "verify %g cache %g emit_opt %g emit_cuda %g", st.verify_s, st.cache_s, st.emit_opt_s,
               st.emit_cuda_s);
    KFT_CHECKF(strstr(lc.log, "cache miss: building cc code in the background"), "%s", lc.log);
    /* every run is right, before, during and after the swap */
    int runs = 0, bad = 0;
    while (strcmp(kf_kernel_engine(k), "cc") != 0 && now_s() - t0 < 60 && runs < 200) {
        bad += kft_vs_reference(&s, k, 64, 100, -1, 1, 0, (uint64_t)runs) != 0;
        runs++;
    }
    KFT_CHECKF(bad == 0, "%d of %d runs wrong during the build", bad, runs);
    KFT_CHECK(kf_kernel_wait(k) == KF_OK && !strcmp(kf_kernel_engine(k), "cc"));
    KFT_CHECK(kf_kernel_wait(k) == KF_OK); /* nothing pending: at once */
    KFT_CHECK(kf_kernel_stats(k, &st) == KF_OK && st.cache == KF_CACHE_MISS && st.cache_entry &&
              strncmp(st.cache_entry, dir, strlen(dir)) == 0);
    KFT_CHECK(kft_vs_reference(&s, k, 64, 100, -1, 1, 0, 99) == 0);
    /* a second compile of the same formula: the in-process table */
    kf_kernel *k2 = kft_compile_jit(lc.ctx, &s, KF_JIT_AUTO);
    KFT_CHECK(k2 && stats_cache(k2) == KF_CACHE_HIT && !strcmp(kf_kernel_engine(k2), "cc"));
    kf_kernel_free(k2);
    kf_kernel_free(k);
out:
    kft_logctx_free(&lc);
    kft_rmtree(dir);
}

KFT_TEST(tiers_explicit_and_env_policies)
{
    char *dir = kft_tmpdir("env");
    kft_logctx lc;
    char f[128];
    kft_spec s;
    kft_gauss_spec(&s, f, sizeof f, 62, KF_FLOAT64);
    if (!KFT_CHECK(dir && kft_logctx_new(&lc, dir, 1, 0) == 0))
        return;
    kft_env e = kft_env_set("KFORGE_JIT", "cc");
    kf_kernel *k = kft_compile_jit(lc.ctx, &s, KF_JIT_AUTO);
    KFT_CHECK(k && !strcmp(kf_kernel_engine(k), "cc") && stats_cache(k) == KF_CACHE_MISS);
    kf_kernel_free(k);
    /* an explicit engine wins over the environment */
    k = kft_compile_jit(lc.ctx, &s, KF_JIT_TCC);
    KFT_CHECK(k && !strcmp(kf_kernel_engine(k), "tcc") && stats_cache(k) == KF_CACHE_UNUSED);
    KFT_CHECK(k && kft_vs_reference(&s, k, 20, 30, -1, 1, 0, 1) == 0);
    kf_kernel_free(k);
    setenv("KFORGE_JIT", "tcc", 1);
    k = kft_compile_jit(lc.ctx, &s, KF_JIT_CC);
    KFT_CHECK(k && !strcmp(kf_kernel_engine(k), "cc") && stats_cache(k) == KF_CACHE_HIT);
    kf_kernel_free(k);
    setenv("KFORGE_JIT", "gcc", 1);
    KFT_CHECK(kft_compile_jit(lc.ctx, &s, KF_JIT_AUTO) == NULL);
    KFT_CHECKF(kf_status_of(lc.ctx) == KF_ERR_ARG &&
                   strstr(kf_errmsg(lc.ctx), "not one of auto, tcc, cc, reference"),
               "%s", kf_errmsg(lc.ctx));
    kft_env_restore(e);
    /* out of range engines */
    kf_compile_opts o;
    kf_compile_opts_init(&o);
    o.jit = (kf_jit)4;
    KFT_CHECK(kf_compile(lc.ctx, "x", (const char *const[]){"x=Vi(0,1)"}, 1, "Sum", 1, KF_FLOAT32,
                         &o) == NULL &&
              kf_status_of(lc.ctx) == KF_ERR_ARG && strstr(kf_errmsg(lc.ctx), "expected 0..3"));
    /* no reduction: nothing to build or look up */
    o.jit = KF_JIT_CC;
    k = kf_compile(lc.ctx, "x", (const char *const[]){"x=Vi(0,1)"}, 1, NULL, 1, KF_FLOAT32, &o);
    KFT_CHECK(k && stats_cache(k) == KF_CACHE_UNUSED);
    kf_kernel_free(k);
    KFT_CHECK(kf_kernel_stats(NULL, NULL) == KF_ERR_ARG && kf_kernel_wait(NULL) == KF_ERR_ARG);
    kft_logctx_free(&lc);
    kft_rmtree(dir);
}

KFT_TEST(tiers_without_a_compiler)
{
    kft_logctx lc;
    char f[128];
    kft_spec s;
    kft_gauss_spec(&s, f, sizeof f, 63, KF_FLOAT32);
    kft_env e = kft_env_set("CC", "/nonexistent/kforge-cc");
    if (!KFT_CHECK(kft_logctx_new(&lc, NULL, 1, 0) == 0))
        return;
    for (int rep = 0; rep < 2; rep++) {
        kf_kernel *k = kft_compile_jit(lc.ctx, &s, KF_JIT_AUTO);
        KFT_CHECK(k && !strcmp(kf_kernel_engine(k), "tcc") && stats_cache(k) == KF_CACHE_UNUSED);
        KFT_CHECK(k && kf_kernel_wait(k) == KF_OK && !strcmp(kf_kernel_engine(k), "tcc"));
        KFT_CHECK(k && kft_vs_reference(&s, k, 20, 30, -1, 1, 0, 2) == 0);
        kf_kernel_free(k);
    }
    /* one line at KF_LOG_INFO, once per context */
    const char *line = strstr(lc.log, "[1] no C compiler: '/nonexistent/kforge-cc'");
    KFT_CHECKF(line && !strstr(line + 10, "no C compiler") && strstr(line, "libtcc only"), "%s",
               lc.log);
    KFT_CHECK(kft_compile_jit(lc.ctx, &s, KF_JIT_CC) == NULL);
    KFT_CHECKF(kf_status_of(lc.ctx) == KF_ERR_JIT && strstr(kf_errmsg(lc.ctx), "no C compiler") &&
                   strstr(kf_errmsg(lc.ctx), "does not exist"),
               "%s", kf_errmsg(lc.ctx));
    kft_env_restore(e);
    /* a path that names a file which is no compiler says what is wrong with it */
    static const char *const bad[][2] = {{"/etc/passwd", "is not executable"},
                                         {"/etc", "is a directory"},
                                         {"kforge-no-such-cc", "was not found in PATH"}};
    for (int q = 0; q < 3; q++) {
        e = kft_env_set("CC", bad[q][0]);
        KFT_CHECK(kft_compile_jit(lc.ctx, &s, KF_JIT_CC) == NULL);
        KFT_CHECKF(strstr(kf_errmsg(lc.ctx), bad[q][0]) && strstr(kf_errmsg(lc.ctx), bad[q][1]),
                   "%s: %s", bad[q][0], kf_errmsg(lc.ctx));
        kft_env_restore(e);
    }
    kft_logctx_free(&lc);
}

KFT_TEST(tiers_failing_compiler_reports_its_message)
{
    kft_logctx lc;
    char f[128];
    kft_spec s;
    kft_gauss_spec(&s, f, sizeof f, 64, KF_FLOAT32);
    kft_env e = kft_env_set("CC", "cc --kforge-no-such-flag");
    if (!KFT_CHECK(kft_logctx_new(&lc, NULL, 1, 1) == 0))
        return;
    KFT_CHECK(kft_compile_jit(lc.ctx, &s, KF_JIT_CC) == NULL);
    KFT_CHECKF(kf_status_of(lc.ctx) == KF_ERR_JIT && strstr(kf_errmsg(lc.ctx), "exit status") &&
                   strstr(kf_errmsg(lc.ctx), "kforge-no-such-flag"),
               "%s", kf_errmsg(lc.ctx));
    kf_kernel *k = kft_compile_jit(lc.ctx, &s, KF_JIT_AUTO);
    KFT_CHECK(k && stats_cache(k) == KF_CACHE_DISABLED);
    KFT_CHECK(k && kf_kernel_wait(k) == KF_ERR_JIT && strstr(kf_errmsg(lc.ctx), "keeps running"));
    KFT_CHECK(k && !strcmp(kf_kernel_engine(k), "tcc"));
    KFT_CHECK(k && kft_vs_reference(&s, k, 20, 30, -1, 1, 0, 3) == 0);
    kf_kernel_free(k);
    kft_logctx_free(&lc);
    kft_env_restore(e);
}

/* A compiler that never finishes: freeing the kernel kills it when the
 * result would be thrown away (no disk cache). */
KFT_TEST(tiers_free_cancels_a_private_build)
{
    char *dir = kft_tmpdir("slowcc");
    char script[256], cc[300];
    if (!KFT_CHECK(dir != NULL))
        return;
    snprintf(script, sizeof script, "%s/slowcc.sh", dir);
    FILE *w = fopen(script, "w");
    KFT_CHECK(w && fputs("sleep 30\n", w) >= 0);
    if (w)
        fclose(w);
    snprintf(cc, sizeof cc, "sh %s", script);
    kft_env e = kft_env_set("CC", cc);
    kft_logctx lc;
    char f[128];
    kft_spec s;
    kft_gauss_spec(&s, f, sizeof f, 65, KF_FLOAT32);
    if (KFT_CHECK(kft_logctx_new(&lc, NULL, 1, 1) == 0)) {
        kf_kernel *k = kft_compile_jit(lc.ctx, &s, KF_JIT_AUTO);
        KFT_CHECK(k && stats_cache(k) == KF_CACHE_DISABLED);
        KFT_CHECK(k && kft_vs_reference(&s, k, 10, 10, -1, 1, 0, 4) == 0);
        usleep(100000); /* let the "compiler" start */
        double t0 = now_s();
        kf_kernel_free(k);
        KFT_CHECKF(now_s() - t0 < 2, "kf_kernel_free waited %.2f s", now_s() - t0);
        kft_logctx_free(&lc);
    }
    kft_env_restore(e);
    kft_rmtree(dir);
}
