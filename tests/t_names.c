/* t_names.c -- the enum <-> name tables (compiler/base/names.c): every value has a name that
 * parses back to it, the spellings are the ones the CLI, the environment and the cache use,
 * and the reduction list is reductions.def's. */
#include <string.h>

#include "compiler/base/names.h"
#include "compiler/ir.h"
#include "harness.h"

KFT_TEST(names_round_trip)
{
    for (int v = 0; v <= 1; v++) {
        kf_dtype t = (kf_dtype)-1;
        KFT_CHECK(kf_dtype_parse(kf_dtype_name((kf_dtype)v), &t) == KF_OK && t == (kf_dtype)v);
    }
    for (int v = KF_SUM_AUTO; v <= KF_SUM_KAHAN; v++) {
        kf_sum_scheme s = (kf_sum_scheme)-1;
        KFT_CHECK(kf_sum_scheme_parse(kf_sum_scheme_name((kf_sum_scheme)v), &s) == KF_OK &&
                  s == (kf_sum_scheme)v);
    }
    for (int v = KF_JIT_AUTO; v <= KF_JIT_CC; v++) {
        kf_jit j = (kf_jit)-1;
        KFT_CHECK(kf_jit_parse(kf_jit_name((kf_jit)v), &j) == KF_OK && j == (kf_jit)v);
    }
    for (int v = KF_BACKEND_AUTO; v <= KF_BACKEND_CUDA; v++) {
        kf_backend b = (kf_backend)-1;
        KFT_CHECK(kf_backend_parse(kf_backend_name((kf_backend)v), &b) == KF_OK && b == (kf_backend)v);
    }
}

/* The spellings are an interface (options, $KFORGE_JIT, cache keys, generated comments). */
KFT_TEST(names_spellings)
{
    static const char *const dtypes[] = {"float32", "float64"};
    static const char *const sums[] = {"auto", "block", "direct", "f64", "kahan"};
    static const char *const jits[] = {"auto", "tcc", "reference", "cc"};
    static const char *const backends[] = {"auto", "cpu", "cuda"};
    for (int v = 0; v < 2; v++)
        KFT_CHECKF(!strcmp(kf_dtype_name((kf_dtype)v), dtypes[v]), "dtype %d", v);
    for (int v = 0; v < 5; v++)
        KFT_CHECKF(!strcmp(kf_sum_scheme_name((kf_sum_scheme)v), sums[v]), "sum scheme %d", v);
    for (int v = 0; v < 4; v++)
        KFT_CHECKF(!strcmp(kf_jit_name((kf_jit)v), jits[v]), "jit %d", v);
    for (int v = 0; v < 3; v++)
        KFT_CHECKF(!strcmp(kf_backend_name((kf_backend)v), backends[v]), "backend %d", v);
    char all[128];
    kfc_names_join(KFC_NAMES_BACKEND, ", ", all, sizeof all);
    KFT_CHECKF(!strcmp(all, "auto, cpu, cuda"), "'%s'", all);
    kfc_names_join(KFC_NAMES_SUM, " ", all, 8); /* cut short, still terminated */
    KFT_CHECKF(!strcmp(all, "auto bl"), "'%s'", all);
}

KFT_TEST(names_rejects)
{
    kf_jit j = KF_JIT_CC;
    KFT_CHECK(kf_jit_parse("TCC", &j) == KF_ERR_ARG && j == KF_JIT_CC);
    KFT_CHECK(kf_jit_parse("", &j) == KF_ERR_ARG && kf_jit_parse(NULL, &j) == KF_ERR_ARG);
    KFT_CHECK(kf_jit_parse("tcc", NULL) == KF_ERR_ARG);
    kf_dtype t;
    KFT_CHECK(kf_dtype_parse("float16", &t) == KF_ERR_ARG && kf_dtype_parse("f64", &t) == KF_ERR_ARG);
    kf_sum_scheme s;
    KFT_CHECK(kf_sum_scheme_parse("pairwise", &s) == KF_ERR_ARG);
    kf_backend b;
    KFT_CHECK(kf_backend_parse("gpu", &b) == KF_ERR_ARG);
    KFT_CHECK(!strcmp(kf_jit_name((kf_jit)9), "?") && !strcmp(kf_sum_scheme_name((kf_sum_scheme)-1), "?") &&
              !strcmp(kf_dtype_name((kf_dtype)2), "?") && !strcmp(kf_backend_name((kf_backend)3), "?"));
}

KFT_TEST(names_reductions)
{
    KFT_CHECK(kf_reduction_count() == KFC_RED_COUNT);
    for (int r = 0; r < KFC_RED_COUNT; r++) {
        KFT_CHECKF(!strcmp(kf_reduction_name(r), kfc_red_info[r].name), "%d: %s", r, kf_reduction_name(r));
        KFT_CHECK(kfc_red_lookup(kf_reduction_name(r)) == r);
    }
    KFT_CHECK(kf_reduction_name(-1) == NULL && kf_reduction_name(KFC_RED_COUNT) == NULL);
}
