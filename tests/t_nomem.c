/*
 * t_nomem.c -- allocation-failure injection (STYLE.md point 10): every
 * allocation of a call is made to fail in turn, and the call must fail
 * cleanly or cope.
 *
 * THE SWEEP. For n = 0, 1, 2, ... the test arms kft_fail_after(n) (the
 * allocation after the next n succeed returns NULL, once), makes ONE call,
 * disarms, then checks. It stops at the first n where no failure was injected:
 * the call then needed at most n allocations, and its result must be the
 * normal one. Every call in which a failure was injected must either
 *   - fail with KF_ERR_NOMEM (or the call's own error, for a bad formula)
 *     and a message, leaving nothing half-made (LSan checks the leaks: run
 *     this file under `make SAN=1`, ASAN_OPTIONS=detect_leaks=1), or
 *   - succeed with exactly the result of a call without injection (some
 *     allocations are optional: a log message falls back to its truncated
 *     text, a realloc that only shrinks keeps the larger block).
 * Checks run disarmed: an armed KFT_CHECK could itself be the victim.
 *
 * OUT OF SCOPE: the tcc and cc engines. libtcc 0.9.27 is linked statically,
 * so its mallocs are wrapped too, and on a failed allocation it calls exit()
 * outside its own error handling; the cc tier forks a compiler. kf_compile is
 * therefore driven with KF_JIT_REFERENCE, which still runs every compiler pass
 * (parse, check, simplify, print, red_setup, emit), and kf_run with the
 * reference engine, whose per-block scratch is heap memory.
 *
 * Contexts here have ONE worker: tests/fault.c's countdown is a plain counter,
 * and the reference engine allocates on the worker thread.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/npy.h"
#include "compiler/ir.h"
#include "harness.h"
#include "kforge.h"
#include "testutil.h"

/* More than any call here makes (the largest, kforge eval, makes ~150). */
#define NOMEM_CAP 4000

/* ---- arming ---- */

/* Arms the n-th allocation from now; returns the failure count to pass to disarm. */
static int64_t arm(int64_t n)
{
    int64_t before = kft_failures();
    kft_fail_after(n);
    return before;
}

/* Disarms; nonzero if a failure was injected since arm() returned `before`. */
static int disarm(int64_t before)
{
    kft_fail_after(-1);
    return kft_failures() > before;
}

/* Tally of one sweep. */
typedef struct sweep {
    int64_t calls;    /* calls made with a failure injected */
    int64_t failed;   /* of those, calls that reported the failure */
    int64_t survived; /* of those, calls that coped and gave the normal result */
} sweep;

/* Closing checks of a sweep that ended after n calls with injection. */
static void sweep_done(const char *what, const sweep *s, int64_t n)
{
    KFT_CHECKF(n < NOMEM_CAP, "%s: still injecting after %d allocations", what, NOMEM_CAP);
    KFT_CHECKF(s->calls > 0, "%s: the call allocated nothing; nothing was tested", what);
    KFT_CHECKF(s->failed > 0, "%s: no injected failure was ever reported", what);
    if (getenv("KFT_VERBOSE"))
        fprintf(stderr, "  %s: %lld allocations, %lld failed cleanly, %lld coped\n", what,
                (long long)s->calls, (long long)s->failed, (long long)s->survived);
}

/* ---- the formulas: aliases, a parameter, formula2, constants to fold, shared
 * subexpressions to merge, a number longer than the parser's small buffer,
 * and more than 64 nodes (the node array's first growth) ---- */

static const char *const al[] = {"x=Vi(0,3)", "y=Vj(1,3)", "b=Vj(2,2)", "s=Pm(3,1)"};
#define F_MAIN                                                                                     \
    "-SqDist(x,y)*(IntCst(1)+IntCst(1))/s + Sum(x*y)*"                                            \
    "1.0000000000000000000000000000000000000000000000000000000000000000000000001"                 \
    " + Norm2(x-y) - Norm2(x-y) + Exp(IntCst(2)*IntCst(3)-IntCst(6))"
#define F_WEIGHT "b*Exp(-SqDist(x,y)) + Sum(x-y)*b + Concat(Sum(x), Sum(y))*Elem(b,0) + Sqrt(Abs(b))"
/* KMin_ArgKMin per component of a dim-2 formula. */
#define F_KNN "Concat(SqDist(x,y)*IntCst(2)/s, Norm2(x-y) + Sum(b)*(RatCst(1,2)-RatCst(1,2)))"

typedef struct ccase {
    const char *name;
    const char *formula, *formula2;
    const char *reduction;
    int axis;
    kf_dtype dtype;
    int k;
} ccase;

static const ccase cases[] = {
    {"SumSoftMaxWeight axis 1 f64", F_MAIN, F_WEIGHT, "SumSoftMaxWeight", 1, KF_FLOAT64, 0},
    {"LogSumExpWeight axis 0 f32", F_MAIN, F_WEIGHT, "LogSumExpWeight", 0, KF_FLOAT32, 0},
    {"KMin_ArgKMin axis 1 f64", F_KNN, NULL, "KMin_ArgKMin", 1, KF_FLOAT64, 3},
    {"KMin_ArgKMin axis 0 f32", F_KNN, NULL, "KMin_ArgKMin", 0, KF_FLOAT32, 2},
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))
enum { RUN_M = 7, RUN_N = 5 };

/* A context with one worker and no disk cache. NULL only if kf_new failed. */
static kf_ctx *ctx_one(int verbose, void (*log)(void *, int, const char *), void *user)
{
    kf_options o;
    kf_options_init(&o);
    o.threads = 1;
    o.no_cache = 1;
    o.verbose = verbose;
    o.log = log;
    o.log_user = user;
    return kf_new(&o);
}

static kf_kernel *compile_case(kf_ctx *ctx, const ccase *c, int dump, kf_jit engine)
{
    kf_compile_opts o;
    kf_compile_opts_init(&o);
    o.jit = engine;
    o.formula2 = c->formula2;
    o.k = c->k;
    o.dump = dump;
    return kf_compile(ctx, c->formula, al, 4, c->reduction, c->axis, c->dtype, &o);
}

/* The outputs of one kf_run. */
typedef struct outs {
    void *out;
    int64_t *idx;
    size_t ob, ib, rows; /* bytes of out and idx, output rows */
} outs;

static int outs_make(outs *o, const kf_kernel *k)
{
    o->rows = (size_t)(kf_kernel_axis(k) == 1 ? RUN_M : RUN_N);
    o->ob = o->rows * (size_t)kf_kernel_out_dim(k) * (kf_kernel_dtype(k) == KF_FLOAT32 ? 4 : 8);
    o->ib = o->rows * (size_t)kf_kernel_index_dim(k) * 8;
    o->out = malloc(o->ob + 1);
    o->idx = malloc(o->ib + 1);
    return o->out && o->idx ? 0 : -1;
}

static void outs_free(outs *o)
{
    free(o->out);
    free(o->idx);
}

/* Marks every byte as unwritten. */
#define UNWRITTEN 0xA5
static void outs_mark(outs *o)
{
    memset(o->out, UNWRITTEN, o->ob);
    memset(o->idx, UNWRITTEN, o->ib);
}

static int run_into(kf_kernel *k, const kft_data *d, outs *o)
{
    return kf_run(k, RUN_M, RUN_N, (const void *const *)d->arr, d->nargs, o->out, o->idx);
}

static int all_unwritten(const unsigned char *p, size_t n)
{
    for (size_t b = 0; b < n; b++)
        if (p[b] != UNWRITTEN)
            return 0;
    return 1;
}

/* Rows of got that are neither untouched nor identical to want's; -1 if all are. */
static int64_t bad_row(const outs *got, const outs *want)
{
    size_t orow = got->ob / got->rows, irow = got->ib / got->rows;
    for (size_t r = 0; r < got->rows; r++) {
        const unsigned char *go = (const unsigned char *)got->out + r * orow;
        const unsigned char *gi = (const unsigned char *)got->idx + r * irow;
        int untouched = all_unwritten(go, orow) && all_unwritten(gi, irow);
        int same = !memcmp(go, (const unsigned char *)want->out + r * orow, orow) &&
                   !memcmp(gi, (const unsigned char *)want->idx + r * irow, irow);
        if (!untouched && !same)
            return (int64_t)r;
    }
    return -1;
}

static int same_outs(const outs *a, const outs *b)
{
    return !memcmp(a->out, b->out, a->ob) && !memcmp(a->idx, b->idx, a->ib);
}

/* A NOMEM failure reported through the context: status, message, no offset. */
static void check_nomem_ctx(const char *what, int64_t n, kf_ctx *ctx)
{
    KFT_CHECKF(kf_status_of(ctx) == KF_ERR_NOMEM, "%s, allocation %lld: status %s (%s)", what,
               (long long)n, kf_status_name(kf_status_of(ctx)), kf_errmsg(ctx));
    KFT_CHECKF(kf_errmsg(ctx)[0] != 0, "%s, allocation %lld: no message", what, (long long)n);
    KFT_CHECKF(kf_error_offset(ctx) == -1 && kf_error_source(ctx) == -1,
               "%s, allocation %lld: offset %lld source %d for an out-of-memory error", what,
               (long long)n, (long long)kf_error_offset(ctx), kf_error_source(ctx));
}

/* ---- kf_new ---- */

static void sweep_new(const char *what, const kf_options *o)
{
    sweep s = {0};
    int64_t n = 0;
    for (; n < NOMEM_CAP; n++) {
        int64_t before = arm(n);
        kf_ctx *ctx = kf_new(o);
        if (!disarm(before)) {
            KFT_CHECKF(ctx && kf_status_of(ctx) == KF_OK, "%s: failed without injection", what);
            kf_free(ctx);
            break;
        }
        s.calls++;
        if (!ctx) {
            s.failed++;
            /* A NULL context still answers the error getters. */
            KFT_CHECK(kf_status_of(NULL) == KF_ERR_NOMEM && kf_errmsg(NULL)[0]);
            continue;
        }
        s.survived++;
        KFT_CHECKF(kf_status_of(ctx) == KF_OK && kf_threads(ctx) == 1,
                   "%s, allocation %lld: a context came back with status %s, %d threads", what,
                   (long long)n, kf_status_name(kf_status_of(ctx)), kf_threads(ctx));
        kf_free(ctx);
    }
    sweep_done(what, &s, n);
}

KFT_TEST(nomem_kf_new)
{
    kf_options o;
    kf_options_init(&o);
    o.threads = 1;
    o.no_cache = 1;
    sweep_new("kf_new", &o);

    /* With a cache directory to resolve (a private one, so nothing is shared). */
    char dir[] = "/tmp/kft_nomem_cache_XXXXXX";
    if (!KFT_CHECK(mkdtemp(dir) != NULL))
        return;
    o.no_cache = 0;
    o.cache_dir = dir;
    sweep_new("kf_new with a cache_dir", &o);
    /* kf_new may have made a layout inside; remove what is there (one level). */
    DIR *dd = opendir(dir);
    struct dirent *e;
    while (dd && (e = readdir(dd))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char path[sizeof dir + 512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (unlink(path) != 0)
            rmdir(path);
    }
    if (dd)
        closedir(dd);
    KFT_CHECKF(rmdir(dir) == 0, "%s: kf_new left files in the cache directory", dir);
}

/* ---- kf_compile (reference engine) ---- */

/* Counts log lines; allocates nothing (the log runs while armed). */
static void count_log(void *user, int level, const char *msg)
{
    (void)level;
    (void)msg;
    ++*(int64_t *)user;
}

/* The whole compile of case c, then a run of each kernel that came back. */
static void sweep_compile(const ccase *c, int dump)
{
    char what[160];
    snprintf(what, sizeof what, "kf_compile %s%s", c->name, dump ? " (dump)" : "");
    int64_t lines = 0;
    kf_ctx *ctx = dump ? ctx_one(KF_LOG_DEBUG, count_log, &lines) : ctx_one(KF_LOG_ERROR, NULL, NULL);
    kf_kernel *ref = ctx ? compile_case(ctx, c, dump, KF_JIT_REFERENCE) : NULL;
    kft_data d = {0};
    outs want = {0}, got = {0};
    if (!KFT_CHECKF(ref, "%s: %s", what, ctx ? kf_errmsg(ctx) : "no context") ||
        !KFT_CHECK(kft_data_make(&d, ref, RUN_M, RUN_N, -1, 1, 0, 7) == 0) ||
        !KFT_CHECK(outs_make(&want, ref) == 0 && outs_make(&got, ref) == 0) ||
        !KFT_CHECKF(run_into(ref, &d, &want) == KF_OK, "%s: %s", what, kf_errmsg(ctx)))
        goto done;
    KFT_CHECKF(!dump || lines > 0, "%s: the dump logged nothing", what);

    sweep s = {0};
    int64_t n = 0;
    for (; n < NOMEM_CAP; n++) {
        int64_t before = arm(n);
        kf_kernel *k = compile_case(ctx, c, dump, KF_JIT_REFERENCE);
        int injected = disarm(before);
        if (injected)
            s.calls++;
        if (!k) {
            KFT_CHECKF(injected, "%s: failed without injection: %s", what, kf_errmsg(ctx));
            check_nomem_ctx(what, n, ctx);
            s.failed++;
            continue;
        }
        /* A kernel that came back must be the kernel: same text, same results. */
        s.survived += injected;
        KFT_CHECKF(!strcmp(kf_kernel_canonical(k), kf_kernel_canonical(ref)) &&
                       (!c->formula2 ||
                        !strcmp(kf_kernel_canonical2(k), kf_kernel_canonical2(ref))) &&
                       !strcmp(kf_kernel_source(k), kf_kernel_source(ref)) &&
                       !strcmp(kf_kernel_engine(k), "reference"),
                   "%s, allocation %lld: the kernel differs", what, (long long)n);
        KFT_CHECKF(kf_status_of(ctx) == KF_OK && !kf_errmsg(ctx)[0],
                   "%s, allocation %lld: success with status %s '%s'", what, (long long)n,
                   kf_status_name(kf_status_of(ctx)), kf_errmsg(ctx));
        outs_mark(&got);
        int rc = run_into(k, &d, &got);
        KFT_CHECKF(rc == KF_OK && same_outs(&got, &want), "%s, allocation %lld: run %s", what,
                   (long long)n, kf_status_name(rc));
        kf_kernel_free(k);
        if (!injected)
            break;
    }
    sweep_done(what, &s, n);
done:
    outs_free(&want);
    outs_free(&got);
    kft_data_free(&d);
    kf_kernel_free(ref);
    kf_free(ctx);
}

KFT_TEST(nomem_kf_compile_reference)
{
    for (int c = 0; c < NCASES; c++)
        sweep_compile(&cases[c], 0);
    /* The dump and the debug log allocate too (a message longer than the
     * logger's stack buffer); both may fall back, never fail the compile. */
    sweep_compile(&cases[0], 1);
}

/* Compiles that fail on their own, at each pass: every call must fail, with
 * the injected KF_ERR_NOMEM while the failing allocation comes before the
 * error, and with exactly the error itself once it comes after. */
typedef struct badcase {
    const char *formula, *formula2, *reduction;
    int k, status;
} badcase;

static const badcase bad[] = {
    /* check: dims 3 and 2 disagree, after a parse that grew the node array */
    {F_MAIN " + Sum(x + b)", F_WEIGHT, "SumSoftMaxWeight", 0, KF_ERR_TYPE},
    /* parse: formula2 ends early, after the whole formula and a long number */
    {F_MAIN, "b*Exp(-SqDist(x,y)) + ", "SumSoftMaxWeight", 0, KF_ERR_SYNTAX},
    /* red_setup: after parse, check, simplify and print */
    {F_MAIN, F_WEIGHT, "NoSuchReduction", 0, KF_ERR_ARG},
    {F_KNN, NULL, "KMin_ArgKMin", KFC_MAX_K + 1, KF_ERR_ARG},
};

KFT_TEST(nomem_kf_compile_bad_formula)
{
    kf_ctx *ctx = ctx_one(KF_LOG_ERROR, NULL, NULL);
    if (!KFT_CHECK(ctx))
        return;
    for (int b = 0; b < (int)(sizeof bad / sizeof bad[0]); b++) {
        char what[64];
        snprintf(what, sizeof what, "kf_compile of bad input %d", b);
        kf_compile_opts o;
        kf_compile_opts_init(&o);
        o.jit = KF_JIT_REFERENCE;
        o.formula2 = bad[b].formula2;
        o.k = bad[b].k;
        /* The clean error first: what every call without injection must give. */
        kf_kernel *k = kf_compile(ctx, bad[b].formula, al, 4, bad[b].reduction, 1, KF_FLOAT64, &o);
        int want = kf_status_of(ctx);
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", kf_errmsg(ctx));
        KFT_CHECKF(!k && want == bad[b].status, "%s: expected %s, got %s", what,
                   kf_status_name(bad[b].status), kf_status_name(want));
        kf_kernel_free(k);

        sweep s = {0};
        int64_t n = 0;
        for (; n < NOMEM_CAP; n++) {
            int64_t before = arm(n);
            k = kf_compile(ctx, bad[b].formula, al, 4, bad[b].reduction, 1, KF_FLOAT64, &o);
            int injected = disarm(before);
            KFT_CHECKF(k == NULL, "%s, allocation %lld: compiled", what, (long long)n);
            kf_kernel_free(k);
            int same = kf_status_of(ctx) == want && !strcmp(kf_errmsg(ctx), msg);
            if (!injected) {
                KFT_CHECKF(same, "%s: %s '%s' without injection", what,
                           kf_status_name(kf_status_of(ctx)), kf_errmsg(ctx));
                break;
            }
            s.calls++;
            if (same) {
                s.survived++; /* the failing allocation came after the error, or was optional */
                continue;
            }
            check_nomem_ctx(what, n, ctx);
            s.failed++;
        }
        sweep_done(what, &s, n);
    }
    kf_free(ctx);
}

/* ---- kf_run (reference engine) ---- */

static void sweep_run(const ccase *c, kf_jit engine)
{
    char what[160];
    snprintf(what, sizeof what, "kf_run %s %s", engine == KF_JIT_TCC ? "tcc" : "reference", c->name);
    kf_ctx *ctx = ctx_one(KF_LOG_ERROR, NULL, NULL);
    kf_kernel *k = ctx ? compile_case(ctx, c, 0, engine) : NULL;
    kft_data d = {0};
    outs want = {0}, got = {0};
    if (!KFT_CHECKF(k, "%s: %s", what, ctx ? kf_errmsg(ctx) : "no context") ||
        !KFT_CHECK(kft_data_make(&d, k, RUN_M, RUN_N, -1, 1, 0, 11) == 0) ||
        !KFT_CHECK(outs_make(&want, k) == 0 && outs_make(&got, k) == 0) ||
        !KFT_CHECKF(run_into(k, &d, &want) == KF_OK, "%s: %s", what, kf_errmsg(ctx)))
        goto done;

    sweep s = {0};
    int64_t n = 0;
    for (; n < NOMEM_CAP; n++) {
        outs_mark(&got);
        int64_t before = arm(n);
        int rc = run_into(k, &d, &got);
        int injected = disarm(before);
        if (!injected) {
            KFT_CHECKF(rc == KF_OK && same_outs(&got, &want), "%s: %s after the sweep", what,
                       kf_status_name(rc));
            break;
        }
        s.calls++;
        if (rc == KF_OK) {
            s.survived++;
            KFT_CHECKF(same_outs(&got, &want), "%s, allocation %lld: wrong result", what,
                       (long long)n);
            continue;
        }
        s.failed++;
        KFT_CHECKF(rc == KF_ERR_NOMEM, "%s, allocation %lld: %s", what, (long long)n,
                   kf_status_name(rc));
        check_nomem_ctx(what, n, ctx);
        /* docs/api.md: the reference engine may have written some rows; each
         * row must be either untouched or complete and right, never garbage. */
        int64_t r = bad_row(&got, &want);
        KFT_CHECKF(r < 0, "%s, allocation %lld: row %lld half-written or wrong", what, (long long)n,
                   (long long)r);
    }
    if (engine == KF_JIT_TCC && s.calls == 0)
        KFT_CHECKF(n == 0, "%s: sweep ended at %lld without injection", what, (long long)n);
    else
        sweep_done(what, &s, n);
done:
    outs_free(&want);
    outs_free(&got);
    kft_data_free(&d);
    kf_kernel_free(k);
    kf_free(ctx);
}

KFT_TEST(nomem_kf_run_reference)
{
    for (int c = 0; c < NCASES; c++)
        sweep_run(&cases[c], KF_JIT_REFERENCE);
}

/* A libtcc kernel, compiled before arming (libtcc itself is out of scope):
 * kf_run may allocate around it, and must then fail cleanly too. Today it
 * allocates nothing, which the sweep accepts. */
KFT_TEST(nomem_kf_run_tcc)
{
    sweep_run(&cases[0], KF_JIT_TCC);
    sweep_run(&cases[3], KF_JIT_TCC);
}

/* ---- the compiler passes alone (compiler/ir.h) ---- */

/* What the front end and the emitters produce for one case. */
typedef struct fe {
    char *canon, *canon2, *dump, *src, *srcf, *srcopt;
} fe;

static void fe_free(fe *f)
{
    free(f->canon), free(f->canon2), free(f->dump);
    free(f->src), free(f->srcf), free(f->srcopt);
    memset(f, 0, sizeof *f);
}

/* An emitter that returned NULL must say why, or say nothing at all
 * (compile.c then reports "out of memory"): never another status. */
static int emit_status(const char *s, const kfc_diag *d)
{
    return s ? KF_OK : d->status == KF_OK ? KF_ERR_NOMEM : d->status;
}

/* Runs every pass on case c. The passes that return a status stop the chain
 * at their first failure (returned, with d filled); the string producers
 * (print, dump, the emitters) leave NULL and the chain goes on. */
static int front_end(const ccase *c, fe *o, int *emit_rc, kfc_diag *d)
{
    kfc_prog p;
    kfc_prog_init(&p);
    kfc_diag_clear(d);
    memset(o, 0, sizeof *o);
    *emit_rc = KF_OK;
    int rc = kfc_parse(&p, c->formula, c->formula2, al, 4, d);
    if (!rc)
        rc = kfc_check(&p, c->formula, c->formula2, al, 4, d);
    if (!rc)
        rc = kfc_simplify(&p, d);
    kfc_red r;
    if (!rc)
        rc = kfc_red_setup(&r, &p, c->reduction, c->axis, c->dtype, c->k, KF_SUM_AUTO, d);
    if (!rc) {
        o->canon = kfc_print(&p, p.root);
        o->canon2 = p.root2 >= 0 ? kfc_print(&p, p.root2) : NULL;
        o->dump = kfc_dump(&p);
        kfc_diag e;
        int erc[3];
        kfc_diag_clear(&e);
        o->src = kfc_emit_c(&p, &r, &e);
        erc[0] = emit_status(o->src, &e);
        kfc_diag_clear(&e);
        o->srcf = kfc_emit_c_formula(&p, c->dtype, &e);
        erc[1] = emit_status(o->srcf, &e);
        kfc_diag_clear(&e);
        o->srcopt = kfc_emit_c_opt(&p, &r, &e);
        erc[2] = emit_status(o->srcopt, &e);
        for (int k = 0; k < 3; k++)
            if (erc[k] != KF_OK)
                *emit_rc = erc[k];
    }
    kfc_prog_free(&p);
    return rc;
}

/* Each string of got is NULL (its allocation was the injected one) or equal to want's. */
static int fe_matches(const fe *got, const fe *want)
{
    const char *g[] = {got->canon, got->canon2, got->dump, got->src, got->srcf, got->srcopt};
    const char *w[] = {want->canon, want->canon2, want->dump, want->src, want->srcf, want->srcopt};
    for (int k = 0; k < 6; k++)
        if (g[k] && (!w[k] || strcmp(g[k], w[k])))
            return 0;
    return 1;
}

static int fe_complete(const fe *f, const ccase *c)
{
    return f->canon && (!c->formula2 || f->canon2) && f->dump && f->src && f->srcf && f->srcopt;
}

KFT_TEST(nomem_compiler_passes)
{
    /* One case with formula2 and one KMin; the other two add only a dtype
     * or an axis, and every case costs (allocations)^2 pass runs. */
    for (int c = 0; c < NCASES; c += 3) {
        const ccase *cc = &cases[c];
        char what[160];
        snprintf(what, sizeof what, "compiler passes %s", cc->name);
        fe want, got;
        kfc_diag d;
        int erc;
        int rc = front_end(cc, &want, &erc, &d);
        if (!KFT_CHECKF(rc == KF_OK && erc == KF_OK && fe_complete(&want, cc), "%s: %s", what,
                        d.msg)) {
            fe_free(&want);
            continue;
        }
        sweep s = {0};
        int64_t n = 0;
        for (; n < NOMEM_CAP; n++) {
            int64_t before = arm(n);
            rc = front_end(cc, &got, &erc, &d);
            int injected = disarm(before);
            if (!injected) {
                KFT_CHECKF(rc == KF_OK && erc == KF_OK && fe_complete(&got, cc) &&
                               fe_matches(&got, &want),
                           "%s: different without injection", what);
                fe_free(&got);
                break;
            }
            s.calls++;
            if (rc != KF_OK) {
                s.failed++;
                KFT_CHECKF(rc == KF_ERR_NOMEM && d.status == KF_ERR_NOMEM && d.msg[0] &&
                               d.offset == -1,
                           "%s, allocation %lld: status %s / diag %s '%s' offset %lld", what,
                           (long long)n, kf_status_name(rc), kf_status_name(d.status), d.msg,
                           (long long)d.offset);
            } else if (!fe_complete(&got, cc)) {
                s.failed++; /* a printer or an emitter reported it by returning NULL */
                KFT_CHECKF(erc == KF_OK || erc == KF_ERR_NOMEM, "%s, allocation %lld: emit %s",
                           what, (long long)n, kf_status_name(erc));
            } else {
                s.survived++;
            }
            KFT_CHECKF(fe_matches(&got, &want), "%s, allocation %lld: a result differs", what,
                       (long long)n);
            fe_free(&got);
        }
        sweep_done(what, &s, n);
        fe_free(&want);
    }
}

/* ---- the .npy reader and writer (cli/npy.h) ---- */

/* A private directory for the files of one test. */
typedef struct tdir {
    char path[64];
} tdir;

static int tdir_make(tdir *t)
{
    snprintf(t->path, sizeof t->path, "/tmp/kft_nomem_XXXXXX");
    return mkdtemp(t->path) ? 0 : -1;
}

static void tdir_file(const tdir *t, const char *name, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/%s", t->path, name);
}

/* Entries of the directory (temporary files included), or -1. */
static int tdir_count(const tdir *t)
{
    DIR *d = opendir(t->path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
    closedir(d);
    return n;
}

/* Removes the directory and the plain files in it. */
static void tdir_remove(const tdir *t)
{
    DIR *d = opendir(t->path);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char path[sizeof t->path + 300];
        snprintf(path, sizeof path, "%s/%s", t->path, e->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(t->path);
}

static int file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* Deterministic values in [-1, 1). */
static void fill(double *a, int64_t n, unsigned seed)
{
    uint32_t s = seed * 2654435761u + 1;
    for (int64_t k = 0; k < n; k++) {
        s = s * 1664525u + 1013904223u;
        a[k] = (double)(s >> 8) / (double)(1u << 23) - 1.0;
    }
}

static int same_npy(const kfcli_npy *a, const kfcli_npy *b)
{
    return a->type == b->type && a->ndim == b->ndim && a->shape[0] == b->shape[0] &&
           a->shape[1] == b->shape[1] && a->count == b->count &&
           !memcmp(a->data, b->data, (size_t)a->count * kfcli_npy_elsize(a->type));
}

/* A NOMEM failure of an npy function: status, a message naming the file, *a zeroed. */
static void check_npy_nomem(const char *what, int64_t n, int st, const char *err, const char *name,
                            const kfcli_npy *a)
{
    KFT_CHECKF(st == KF_ERR_NOMEM, "%s, allocation %lld: %s (%s)", what, (long long)n,
               kf_status_name(st), err);
    KFT_CHECKF(!strncmp(err, name, strlen(name)) && strstr(err, "memory"),
               "%s, allocation %lld: message '%s'", what, (long long)n, err);
    KFT_CHECKF(!a || (!a->data && a->count == 0 && a->ndim == 0),
               "%s, allocation %lld: the array is not zeroed", what, (long long)n);
}

KFT_TEST(nomem_npy_read_parse_write)
{
    tdir t;
    if (!KFT_CHECK(tdir_make(&t) == 0))
        return;
    char path[128], err[KFCLI_ERRLEN];
    tdir_file(&t, "a.npy", path, sizeof path);
    double vals[5 * 3];
    fill(vals, 15, 3);
    kfcli_npy src = {KFCLI_NPY_F8, 2, {5, 3}, 15, vals}, got;
    if (!KFT_CHECKF(kfcli_npy_write(path, &src, err, sizeof err) == KF_OK, "%s", err))
        goto done;

    /* kfcli_npy_read: the whole file, then the data kept in place (a shrinking realloc). */
    sweep s = {0};
    int64_t n = 0;
    for (; n < NOMEM_CAP; n++) {
        err[0] = 0;
        int64_t before = arm(n);
        int st = kfcli_npy_read(path, &got, err, sizeof err);
        int injected = disarm(before);
        s.calls += injected;
        if (st == KF_OK) {
            s.survived += injected;
            KFT_CHECKF(same_npy(&got, &src), "npy_read, allocation %lld: wrong array", (long long)n);
            kfcli_npy_free(&got);
        } else {
            s.failed++;
            check_npy_nomem("npy_read", n, st, err, path, &got);
        }
        if (!injected)
            break;
    }
    sweep_done("kfcli_npy_read", &s, n);

    /* kfcli_npy_parse of the same bytes held in memory. */
    unsigned char img[512];
    size_t len = kfcli_npy_header(&src, (char *)img, sizeof img);
    if (!KFT_CHECK(len > 0 && len + sizeof vals <= sizeof img))
        goto done;
    memcpy(img + len, vals, sizeof vals);
    len += sizeof vals;
    memset(&s, 0, sizeof s);
    for (n = 0; n < NOMEM_CAP; n++) {
        err[0] = 0;
        int64_t before = arm(n);
        int st = kfcli_npy_parse(img, len, "mem.npy", &got, err, sizeof err);
        int injected = disarm(before);
        s.calls += injected;
        if (st == KF_OK) {
            s.survived += injected;
            KFT_CHECKF(same_npy(&got, &src), "npy_parse, allocation %lld: wrong array",
                       (long long)n);
            kfcli_npy_free(&got);
        } else {
            s.failed++;
            check_npy_nomem("npy_parse", n, st, err, "mem.npy", &got);
        }
        if (!injected)
            break;
    }
    sweep_done("kfcli_npy_parse", &s, n);

    /* kfcli_npy_write to a new name: on failure neither the file nor a
     * temporary one may be left behind. */
    char out[128];
    tdir_file(&t, "out.npy", out, sizeof out);
    memset(&s, 0, sizeof s);
    for (n = 0; n < NOMEM_CAP; n++) {
        err[0] = 0;
        int64_t before = arm(n);
        int st = kfcli_npy_write(out, &src, err, sizeof err);
        int injected = disarm(before);
        s.calls += injected;
        if (st == KF_OK) {
            s.survived += injected;
            int rs = kfcli_npy_read(out, &got, err, sizeof err);
            KFT_CHECKF(rs == KF_OK && same_npy(&got, &src), "npy_write, allocation %lld: %s",
                       (long long)n, rs ? err : "wrong array");
            kfcli_npy_free(&got);
            unlink(out);
        } else {
            s.failed++;
            check_npy_nomem("npy_write", n, st, err, out, NULL);
            KFT_CHECKF(!file_exists(out) && tdir_count(&t) == 1,
                       "npy_write, allocation %lld: %d files left in %s", (long long)n,
                       tdir_count(&t), t.path);
        }
        if (!injected)
            break;
    }
    sweep_done("kfcli_npy_write", &s, n);
done:
    tdir_remove(&t);
}

/* ---- kforge eval, in process (cli/cmd_eval.c: arguments, .npy files in,
 * context, compile, run, .npy files out) ---- */

/* Runs kfcli_eval with stderr sent to the file errpath; returns its exit status. */
static int eval_quiet(int argc, char **argv, const char *errpath)
{
    fflush(stderr);
    int saved = dup(2);
    int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (saved < 0 || fd < 0) {
        if (saved >= 0)
            close(saved);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    dup2(fd, 2);
    close(fd);
    int rc = kfcli_eval(argc, argv);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    return rc;
}

/* kforge eval of KMin_ArgKMin with two outputs (-o, --index-out); the dtype
 * comes from the files (a probe compile, then the compile). */
static void sweep_eval(const tdir *t)
{
    const char *what = "kforge eval KMin_ArgKMin";
    char in[4][128], out[128], idx[128], errf[128];
    static const char *const names[] = {"x.npy", "y.npy", "b.npy", "s.npy"};
    for (int f = 0; f < 4; f++)
        tdir_file(t, names[f], in[f], sizeof in[f]);
    tdir_file(t, "out.npy", out, sizeof out);
    tdir_file(t, "idx.npy", idx, sizeof idx);
    tdir_file(t, "err.txt", errf, sizeof errf);
    char *argv[40];
    int argc = 0;
    argv[argc++] = (char *)"eval";
    for (int a = 0; a < 4; a++)
        argv[argc++] = (char *)"--alias", argv[argc++] = (char *)al[a];
    argv[argc++] = (char *)"--reduction";
    argv[argc++] = (char *)"KMin_ArgKMin";
    argv[argc++] = (char *)"-K", argv[argc++] = (char *)"2";
    argv[argc++] = (char *)"--axis", argv[argc++] = (char *)"1";
    argv[argc++] = (char *)"--jit", argv[argc++] = (char *)"reference";
    argv[argc++] = (char *)"--threads", argv[argc++] = (char *)"1";
    argv[argc++] = (char *)"-o", argv[argc++] = out;
    argv[argc++] = (char *)"--index-out", argv[argc++] = idx;
    argv[argc++] = (char *)"--"; /* positional arguments only from here */
    argv[argc++] = (char *)F_KNN;
    for (int f = 0; f < 4; f++)
        argv[argc++] = in[f];
    argv[argc] = NULL;

    char err[KFCLI_ERRLEN];
    kfcli_npy want[2] = {{0}}, got[2] = {{0}};
    int rc = eval_quiet(argc, argv, errf);
    char *msg = kft_read_file(errf);
    if (!KFT_CHECKF(rc == 0, "%s: exit %d: %s", what, rc, msg ? msg : "") ||
        !KFT_CHECKF(kfcli_npy_read(out, &want[0], err, sizeof err) == KF_OK, "%s", err) ||
        !KFT_CHECKF(kfcli_npy_read(idx, &want[1], err, sizeof err) == KF_OK, "%s", err))
        goto done;
    unlink(out), unlink(idx);
    int files = tdir_count(t); /* the inputs and err.txt */

    sweep s = {0};
    int64_t n = 0;
    for (; n < NOMEM_CAP; n++) {
        int64_t before = arm(n);
        rc = eval_quiet(argc, argv, errf);
        int injected = disarm(before);
        s.calls += injected;
        if (rc == 0) {
            s.survived += injected;
            int ok = kfcli_npy_read(out, &got[0], err, sizeof err) == KF_OK &&
                     same_npy(&got[0], &want[0]) &&
                     kfcli_npy_read(idx, &got[1], err, sizeof err) == KF_OK &&
                     same_npy(&got[1], &want[1]);
            KFT_CHECKF(ok, "%s, allocation %lld: wrong output", what, (long long)n);
            kfcli_npy_free(&got[0]), kfcli_npy_free(&got[1]);
            unlink(out), unlink(idx);
        } else {
            /* Exit 1 (a runtime failure, not the user's fault), a message,
             * and no output file, complete or not. */
            s.failed++;
            free(msg);
            msg = kft_read_file(errf);
            KFT_CHECKF(rc == KFCLI_EXIT_RUNTIME, "%s, allocation %lld: exit %d", what,
                       (long long)n, rc);
            KFT_CHECKF(msg && strstr(msg, "memory"), "%s, allocation %lld: message '%s'", what,
                       (long long)n, msg ? msg : "(none)");
            KFT_CHECKF(tdir_count(t) == files, "%s, allocation %lld: %d files in %s, expected %d",
                       what, (long long)n, tdir_count(t), t->path, files);
        }
        if (!injected)
            break;
    }
    sweep_done(what, &s, n);
done:
    free(msg);
    for (int k = 0; k < 2; k++)
        kfcli_npy_free(&want[k]), kfcli_npy_free(&got[k]);
    unlink(out), unlink(idx);
}

KFT_TEST(nomem_cli_eval)
{
    tdir t;
    if (!KFT_CHECK(tdir_make(&t) == 0))
        return;
    enum { M = 6, N = 5 };
    double x[M * 3], y[N * 3], b[N * 2], p[1] = {0.75};
    fill(x, M * 3, 1), fill(y, N * 3, 2), fill(b, N * 2, 3);
    kfcli_npy arr[4] = {{KFCLI_NPY_F8, 2, {M, 3}, M * 3, x},
                        {KFCLI_NPY_F8, 2, {N, 3}, N * 3, y},
                        {KFCLI_NPY_F8, 2, {N, 2}, N * 2, b},
                        {KFCLI_NPY_F8, 1, {1, 1}, 1, p}};
    static const char *const names[] = {"x.npy", "y.npy", "b.npy", "s.npy"};
    char path[128], err[KFCLI_ERRLEN];
    for (int f = 0; f < 4; f++) {
        tdir_file(&t, names[f], path, sizeof path);
        if (!KFT_CHECKF(kfcli_npy_write(path, &arr[f], err, sizeof err) == KF_OK, "%s", err))
            goto done;
    }
    sweep_eval(&t);
done:
    tdir_remove(&t);
}

/* ---- the kernel cache's administration (kf_cache_dir, kf_cache_list) ----
 * One real entry is built with the cc tier BEFORE arming (building forks a
 * compiler, and a failed build would fall back on libtcc); listing it then
 * only reads the directory and the entry's metadata. */

typedef struct listed {
    int count;
    int64_t size;
    char key[80], formula[256];
} listed;

static int on_entry(void *user, const kf_cache_entry *e)
{
    listed *l = user;
    if (!l->count++) {
        l->size = e->size_bytes;
        snprintf(l->key, sizeof l->key, "%s", e->key ? e->key : "(null)");
        snprintf(l->formula, sizeof l->formula, "%s", e->formula ? e->formula : "(null)");
    }
    return 0;
}

KFT_TEST(nomem_cache_list)
{
    tdir t;
    if (!KFT_CHECK(tdir_make(&t) == 0))
        return;
    char dir[128];
    tdir_file(&t, "cache", dir, sizeof dir);
    kf_options o;
    kf_options_init(&o);
    o.threads = 1;
    o.cache_dir = dir;
    kf_ctx *ctx = kf_new(&o);
    kf_compile_opts co;
    kf_compile_opts_init(&co);
    co.jit = KF_JIT_CC;
    /* A small kernel: the cc build is most of this test's time. */
    kf_kernel *k = ctx ? kf_compile(ctx, "SqDist(x,y)", al, 4, "Sum", 1, KF_FLOAT64, &co) : NULL;
    listed want = {0};
    if (!KFT_CHECK(ctx))
        goto done;
    if (!k || strcmp(kf_kernel_engine(k), "cc")) {
        /* A machine without a C compiler has no cc tier (t_api and the
         * cache tests say whether it should have one). */
        kft_skip("no cc tier: %s", kf_errmsg(ctx));
        goto done;
    }
    if (!KFT_CHECKF(kf_cache_list(ctx, on_entry, &want) == KF_OK && want.count == 1,
                    "%d entries listed: %s", want.count, kf_errmsg(ctx)))
        goto done;

    sweep s = {0};
    int64_t n = 0;
    for (; n < NOMEM_CAP; n++) {
        listed got = {0};
        int64_t before = arm(n);
        int rc = kf_cache_list(ctx, on_entry, &got);
        int injected = disarm(before);
        s.calls += injected;
        if (rc == KF_OK) {
            /* Success means the whole list: an entry skipped for want of
             * memory would look like a cache that lost it. */
            s.survived += injected;
            KFT_CHECKF(got.count == 1 && !strcmp(got.key, want.key) &&
                           !strcmp(got.formula, want.formula) && got.size == want.size,
                       "kf_cache_list, allocation %lld: %d entries listed, size %lld (not %lld)",
                       (long long)n, got.count, (long long)got.size, (long long)want.size);
        } else {
            s.failed++;
            check_nomem_ctx("kf_cache_list", n, ctx);
        }
        if (!injected)
            break;
    }
    sweep_done("kf_cache_list", &s, n);

    /* kf_cache_dir: the answer lives in the context; it may allocate nothing. */
    for (n = 0; n < NOMEM_CAP; n++) {
        const char *d = NULL;
        int mode = -2;
        int64_t before = arm(n);
        int rc = kf_cache_dir(ctx, &d, &mode);
        int injected = disarm(before);
        KFT_CHECKF((rc == KF_OK && d && !strcmp(d, dir) && mode == 1) ||
                       (injected && rc == KF_ERR_NOMEM),
                   "kf_cache_dir, allocation %lld: %s, mode %d, dir %s", (long long)n,
                   kf_status_name(rc), mode, d ? d : "(null)");
        if (!injected)
            break;
    }
done:
    kf_kernel_free(k);
    kf_free(ctx);
    /* The cache's own layout is deeper than tdir_remove goes. */
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", t.path);
    KFT_CHECK(system(cmd) == 0);
}
