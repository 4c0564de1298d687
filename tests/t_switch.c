/*
 * t_switch.c -- a run in flight that meets the swap to the optimized (cc) code.
 *
 * KFORGE_TEST_SWAP_AT_TASK=T (docs/api.md) makes the switch happen at task T
 * whatever the timing: tasks below T run the libtcc code, T and up wait for
 * the background build and run its cc code. For every reduction, dense and
 * block-sparse, the switched run must then (1) report both engines, T as the
 * first cc task and rows that add up, (2) hold in its first run_rows_tcc rows
 * exactly the bits of a libtcc-only kernel and in the others exactly those of
 * a cc-only kernel (each row computed by one engine, nothing mixed or
 * combined), and (3) dense: those twins match the reference engine within
 * the usual tolerances (per slot, so every row of the switched run does;
 * t_ranges_run.c checks the block-sparse twins against the oracle). Also: tasks are cut finer while a build is pending, and
 * kf_kernel_engine words a switched run. No timing is measured or assumed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "testutil.h"

#define SWAP_AT 3
#define THREADS 3

static kf_ctx *ctx_threads(int threads)
{
    kf_options o;
    kf_options_init(&o);
    o.threads = threads;
    /* No disk cache: every process misses, so the background build always
     * runs (a disk hit would leave nothing to switch to). */
    o.no_cache = 1;
    return kf_new(&o);
}

static kf_kernel *compile(kf_ctx *ctx, const kft_spec *s, kf_jit jit)
{
    kf_compile_opts o;
    kf_compile_opts_init(&o);
    o.k = s->k, o.formula2 = s->formula2, o.jit = jit, o.sum_scheme = s->scheme;
    o.backend = KF_BACKEND_CPU;
    kf_kernel *k = kf_compile(ctx, s->formula, s->aliases, s->naliases, s->reduction, s->axis,
                              s->dtype, &o);
    if (!k)
        printf("  %s %s: %s\n", s->reduction, kf_jit_name(jit), kf_errmsg(ctx));
    return k;
}

/* An AUTO kernel whose cc build runs in the background with the switch at
 * SWAP_AT; NULL with *skip set when this machine has no C compiler. */
static kf_kernel *compile_switching(kf_ctx *ctx, const kft_spec *s, int64_t at, int *skip)
{
    char v[32];
    snprintf(v, sizeof v, "%lld", (long long)at);
    setenv("KFORGE_TEST_SWAP_AT_TASK", v, 1);
    kf_kernel *k = compile(ctx, s, KF_JIT_AUTO);
    unsetenv("KFORGE_TEST_SWAP_AT_TASK");
    kf_compile_stats st;
    if (k && kf_kernel_stats(k, &st) == KF_OK && st.cache == KF_CACHE_UNUSED) {
        *skip = 1; /* AUTO fell back to libtcc: no C compiler here */
        kf_kernel_free(k);
        return NULL;
    }
    return k;
}

typedef struct res {
    char *out;
    int64_t *idx;
    size_t ob, ib; /* bytes per row */
} res;

static int res_alloc(res *r, const kf_kernel *k, int64_t rows)
{
    r->ob = (size_t)kf_kernel_out_dim(k) * (kf_kernel_dtype(k) == KF_FLOAT64 ? 8 : 4);
    r->ib = (size_t)kf_kernel_index_dim(k) * 8;
    r->out = malloc(r->ob * (size_t)rows + 1);
    r->idx = malloc(r->ib * (size_t)rows + 8);
    if (r->out)
        memset(r->out, 0x5a, r->ob * (size_t)rows); /* garbage: unwritten rows show */
    if (r->idx)
        memset(r->idx, 0x5a, r->ib * (size_t)rows);
    return r->out && r->idx ? 0 : -1;
}

static void res_free(res *r)
{
    free(r->out);
    free(r->idx);
    r->out = NULL, r->idx = NULL;
}

static int run(kf_kernel *k, int64_t M, int64_t N, const kft_data *d, const kf_ranges *rg,
               int64_t rows, res *r)
{
    if (res_alloc(r, k, rows) != 0)
        return KF_ERR_NOMEM;
    const void *const *args = (const void *const *)d->arr;
    return rg ? kf_run_ranges(k, M, N, args, d->nargs, rg, r->out, r->idx)
              : kf_run(k, M, N, args, d->nargs, r->out, r->idx);
}

/* Rows [r0, r1) of a and b hold the same bytes. */
static int same_rows(const res *a, const res *b, int64_t r0, int64_t r1)
{
    size_t n = (size_t)(r1 - r0);
    return memcmp(a->out + a->ob * (size_t)r0, b->out + b->ob * (size_t)r0, a->ob * n) == 0 &&
           memcmp((char *)a->idx + a->ib * (size_t)r0, (char *)b->idx + b->ib * (size_t)r0,
                  a->ib * n) == 0;
}

/* One reduction, dense (rg NULL) or block-sparse: the checks of the header.
 * Returns the number of failed checks (their detail printed). */
static int one_case(kf_ctx *ctx, const kft_spec *s, int64_t M, int64_t N, const kf_ranges *rg,
                    uint64_t seed, int *skip)
{
    int64_t rows = s->axis == 1 ? M : N;
    int bad = 0;
    kf_kernel *sw = compile_switching(ctx, s, SWAP_AT, skip);
    kf_kernel *tcc = sw ? compile(ctx, s, KF_JIT_TCC) : NULL;
    kft_data d = {0};
    res a = {0}, t = {0}, c = {0};
    if (!sw || !tcc || kft_data_make(&d, sw, M, N, -1, 1, 0, seed) != 0) {
        bad += !*skip;
        goto out;
    }
    int rc = run(sw, M, N, &d, rg, rows, &a);
    kf_compile_stats st;
    kf_kernel_stats(sw, &st);
    const char *eng = kf_kernel_engine(sw);
    char want[64];
    snprintf(want, sizeof want, "tcc, then cc from task %d of %lld (", SWAP_AT,
             (long long)st.run_tasks);
    if (!KFT_CHECKF(rc == KF_OK && st.run_first_cc_task == SWAP_AT && st.run_tasks > SWAP_AT &&
                        st.run_rows_tcc > 0 && st.run_rows_cc > 0 &&
                        st.run_rows_tcc + st.run_rows_cc == rows && st.run_rows_reference == 0 &&
                        st.run_rows_cuda == 0 && strncmp(eng, want, strlen(want)) == 0,
                    "%s axis %d %s: rc %d, first cc task %lld of %lld, rows tcc %lld cc %lld of "
                    "%lld, engine '%s'",
                    s->reduction, s->axis, rg ? "ranges" : "dense", rc,
                    (long long)st.run_first_cc_task, (long long)st.run_tasks,
                    (long long)st.run_rows_tcc, (long long)st.run_rows_cc, (long long)rows, eng)) {
        bad++;
        goto out;
    }
    if (!rg)
        bad += !KFT_CHECKF(st.run_pairs_tcc == st.run_rows_tcc * (rows == M ? N : M) &&
                               st.run_pairs_tcc + st.run_pairs_cc == M * N,
                           "%s: pairs tcc %lld cc %lld", s->reduction,
                           (long long)st.run_pairs_tcc, (long long)st.run_pairs_cc);
    /* The twins: the same kernel on one engine each (the cc one from the
     * in-process table the switched kernel's build filled). */
    kf_kernel *cc = compile(ctx, s, KF_JIT_CC);
    int ok = cc && run(tcc, M, N, &d, rg, rows, &t) == KF_OK &&
             run(cc, M, N, &d, rg, rows, &c) == KF_OK;
    bad += !KFT_CHECKF(ok, "%s: the twins did not run: %s", s->reduction, kf_errmsg(ctx));
    if (ok) {
        /* Tasks run in row order, so the libtcc tasks hold the first rows. */
        bad += !KFT_CHECKF(same_rows(&a, &t, 0, st.run_rows_tcc), "%s axis %d %s: the libtcc rows "
                           "differ from the libtcc kernel's", s->reduction, s->axis,
                           rg ? "ranges" : "dense");
        bad += !KFT_CHECKF(same_rows(&a, &c, st.run_rows_tcc, rows), "%s axis %d %s: the cc rows "
                           "differ from the cc kernel's", s->reduction, s->axis,
                           rg ? "ranges" : "dense");
    }
    if (ok && !rg) {
        /* Each row of the switched run is a twin's row, so both twins
         * within the tolerances (per slot) put every row of it there. */
        kf_kernel *ref = compile(ctx, s, KF_JIT_REFERENCE);
        int mt = ref ? kft_compare(s, tcc, ref, M, N, &d) : -1;
        int mc = ref ? kft_compare(s, cc, ref, M, N, &d) : -1;
        bad += !KFT_CHECKF(mt == 0 && mc == 0, "%s: %d (tcc) and %d (cc) slots off the reference",
                           s->reduction, mt, mc);
        kf_kernel_free(ref);
    }
    kf_kernel_free(cc);
    bad += !KFT_CHECK(kf_kernel_wait(sw) == KF_OK);
out:
    res_free(&a);
    res_free(&t);
    res_free(&c);
    kft_data_free(&d);
    kf_kernel_free(tcc);
    kf_kernel_free(sw);
    return bad;
}

static kft_spec spec_of(const kft_red_case *r, int axis, kf_dtype dt)
{
    kft_spec s = {r->f, kft_red_al, KFT_NRED_AL, r->name, axis, dt, r->k, r->f2, KF_SUM_AUTO};
    return s;
}

/* Every reduction, dense, axis 1, float32: 12 row blocks of 10 rows on 3
 * threads, so task 3 starts at row 30. */
KFT_TEST(switch_dense_every_reduction)
{
    kf_ctx *ctx = ctx_threads(THREADS);
    if (!KFT_CHECK(ctx))
        return;
    int skip = 0;
    for (int r = 0; r < KFT_NRED && !skip; r++) {
        kft_spec s = spec_of(&kft_red_cases[r], 1, KF_FLOAT32);
        KFT_CHECK(one_case(ctx, &s, 120, 77, NULL, 500 + (uint64_t)r, &skip) == 0);
    }
    kf_free(ctx);
    if (skip)
        KFT_SKIP("no C compiler for the optimizing tier");
}

/* Every reduction over a random block-sparse pattern, axis 0, float64 (other
 * keys than the dense test's: each build must be a miss). */
KFT_TEST(switch_ranges_every_reduction)
{
    kf_ctx *ctx = ctx_threads(THREADS);
    if (!KFT_CHECK(ctx))
        return;
    int skip = 0;
    kft_rng g;
    kft_rng_seed(&g, 77);
    for (int r = 0; r < KFT_NRED && !skip; r++) {
        kft_spec s = spec_of(&kft_red_cases[r], 0, KF_FLOAT64);
        kft_pat p;
        if (!KFT_CHECK(kft_random_pat(&g, 90, 150, 12, &p) == 0)) {
            kft_pat_free(&p);
            break;
        }
        kf_ranges rg = kft_pat_view(&p);
        KFT_CHECK(one_case(ctx, &s, 90, 150, &rg, 600 + (uint64_t)r, &skip) == 0);
        kft_pat_free(&p);
    }
    kf_free(ctx);
    if (skip)
        KFT_SKIP("no C compiler for the optimizing tier");
}

/* While the build is pending a dense run's tasks hold about 2^22 pairs (here
 * 128 rows of 32768), not 4 per thread; once cc runs, 4 per thread again. A
 * switch point past the last task keeps the build pending for the whole run. */
KFT_TEST(switch_pending_build_cuts_finer_tasks)
{
    kf_ctx *ctx = ctx_threads(1);
    if (!KFT_CHECK(ctx))
        return;
    static const char *const al[] = {"a=Vi(0,1)", "b=Vj(1,1)"};
    kft_spec s = {"a*b-b", al, 2, "Sum", 1, KF_FLOAT32, 0, NULL, KF_SUM_AUTO};
    int skip = 0;
    kf_kernel *k = compile_switching(ctx, &s, 1000, &skip);
    kft_data d = {0};
    res a = {0}, b = {0};
    if (skip || !KFT_CHECK(k && kft_data_make(&d, k, 1024, 32768, -1, 1, 0, 9) == 0))
        goto out;
    kf_compile_stats st;
    KFT_CHECK(run(k, 1024, 32768, &d, NULL, 1024, &a) == KF_OK && kf_kernel_stats(k, &st) == 0);
    KFT_CHECKF(st.run_tasks == 8 && st.run_rows_tcc == 1024 && st.run_first_cc_task == -1 &&
                   st.run_pairs_tcc == 1024 * 32768 && !strcmp(kf_kernel_engine(k), "tcc"),
               "tasks %lld, rows tcc %lld, first cc %lld, engine %s", (long long)st.run_tasks,
               (long long)st.run_rows_tcc, (long long)st.run_first_cc_task, kf_kernel_engine(k));
    /* Rows do not depend on where the blocks are cut: a libtcc kernel's 4
     * blocks give the bits of the 8 finer ones. */
    kf_kernel *t = compile(ctx, &s, KF_JIT_TCC);
    KFT_CHECK(t && run(t, 1024, 32768, &d, NULL, 1024, &b) == KF_OK && same_rows(&a, &b, 0, 1024));
    kf_compile_stats ts;
    KFT_CHECK(t && kf_kernel_stats(t, &ts) == 0 && ts.run_tasks == 4);
    kf_kernel_free(t);
    res_free(&b);
    KFT_CHECK(kf_kernel_wait(k) == KF_OK);
    KFT_CHECK(run(k, 1024, 32768, &d, NULL, 1024, &b) == KF_OK && kf_kernel_stats(k, &st) == 0);
    KFT_CHECKF(st.run_tasks == 4 && st.run_rows_cc == 1024 && st.run_rows_tcc == 0 &&
                   st.run_first_cc_task == 0 && st.run_pairs_cc == 1024 * 32768 &&
                   !strcmp(kf_kernel_engine(k), "cc"),
               "tasks %lld, rows cc %lld, first cc %lld, engine %s", (long long)st.run_tasks,
               (long long)st.run_rows_cc, (long long)st.run_first_cc_task, kf_kernel_engine(k));
out:
    res_free(&a);
    res_free(&b);
    kft_data_free(&d);
    kf_kernel_free(k);
    kf_free(ctx);
    if (skip)
        KFT_SKIP("no C compiler for the optimizing tier");
}

static void note_wait(void *user, int level, const char *msg)
{
    (void)level;
    if (strstr(msg, "waited") && strstr(msg, "for the optimized (cc) build"))
        (*(int *)user)++;
}

/* A run big enough that libtcc code would outlast the build (50 million
 * pairs a worker, runtime/run.c) waits for it instead: every row on cc, the
 * usual 4 tasks a thread (no finer cut), one INFO line saying so. A small
 * run on the same kind of kernel still starts at once on libtcc code. */
KFT_TEST(switch_big_run_waits_for_build)
{
    kf_options o;
    kf_options_init(&o);
    o.threads = 1, o.no_cache = 1, o.verbose = KF_LOG_INFO, o.log = note_wait;
    int waits = 0;
    o.log_user = &waits;
    kf_ctx *ctx = kf_new(&o);
    if (!KFT_CHECK(ctx))
        return;
    static const char *const al[] = {"a=Vi(0,1)", "b=Vj(1,1)"};
    kft_spec s = {"a*b-b", al, 2, "Sum", 1, KF_FLOAT32, 0, NULL, KF_SUM_AUTO};
    enum { M = 8192, N = 8192 }; /* 6.7e7 pairs, one worker */
    kf_kernel *k = compile(ctx, &s, KF_JIT_AUTO), *small = NULL;
    kf_compile_stats st;
    kft_data d = {0}, e = {0};
    res a = {0};
    int skip = k && kf_kernel_stats(k, &st) == KF_OK && st.cache == KF_CACHE_UNUSED;
    if (skip || !KFT_CHECK(k && kft_data_make(&d, k, M, N, -1, 1, 0, 11) == 0))
        goto out;
    KFT_CHECK(run(k, M, N, &d, NULL, M, &a) == KF_OK && kf_kernel_stats(k, &st) == 0);
    KFT_CHECKF(st.run_rows_cc == M && st.run_rows_tcc == 0 && st.run_first_cc_task == 0 &&
                   st.run_tasks == 4 && !strcmp(kf_kernel_engine(k), "cc") && waits == 1,
               "rows cc %lld, rows tcc %lld, first cc %lld, tasks %lld, engine %s, %d wait lines",
               (long long)st.run_rows_cc, (long long)st.run_rows_tcc,
               (long long)st.run_first_cc_task, (long long)st.run_tasks, kf_kernel_engine(k), waits);
    res_free(&a);
    /* 64 x 8192 pairs: far below the bar, so no wait (another formula, so a
     * build of its own is pending) */
    s.formula = "a*b+b";
    small = compile(ctx, &s, KF_JIT_AUTO);
    kf_compile_stats ss;
    if (KFT_CHECK(small && kf_kernel_stats(small, &ss) == 0 && ss.cache == KF_CACHE_DISABLED &&
                  kft_data_make(&e, small, 64, N, -1, 1, 0, 12) == 0)) {
        KFT_CHECK(run(small, 64, N, &e, NULL, 64, &a) == KF_OK);
        KFT_CHECKF(waits == 1, "%d wait lines after the small run", waits);
    }
out:
    res_free(&a);
    kft_data_free(&d);
    kft_data_free(&e);
    kf_kernel_free(small);
    kf_kernel_free(k);
    kf_free(ctx);
    if (skip)
        KFT_SKIP("no C compiler for the optimizing tier");
}
