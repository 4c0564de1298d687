/* cmd_bench.c -- `kforge bench`: random inputs, then per JIT tier the compile passes' times, the
 * cache outcome, the run time (median of repeats) and the agreement between tiers. */
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"

void kfcli_help_bench(FILE *f)
{
    fputs(
        "Usage: kforge bench FORMULA [--alias A]... --reduction R --axis 0|1 [options]\n"
        "\n"
        "Times FORMULA's reduction on random inputs (uniform in [-1, 1), the same for every\n"
        "tier) for each JIT tier asked: the compile passes, what the kernel cache did, the run\n"
        "time (median and minimum of the repeats), ns per pair and pairs per second. Then it\n"
        "compares the tiers on the first 1000 output rows, and each tier with the reference\n"
        "engine on the first few rows (when that costs under ~2e7 pairs).\n"
        "\n"
        "Options:\n"
        "  -a, --alias A        a variable name, e.g. x=Vi(0,3), y=Vj(1,3), p=Pm(2,1)\n"
        "  -r, --reduction R    Sum Max Min ArgMax ArgMin Max_ArgMax Min_ArgMin KMin ArgKMin\n"
        "                       KMin_ArgKMin LogSumExp LogSumExpWeight SumSoftMaxWeight\n"
        "                       Max_SumShiftExp\n"
        "  --axis 0|1           reduce over i (0) or over j (1)\n"
        "  -K N                 K of KMin, ArgKMin and KMin_ArgKMin\n"
        "  --formula2 F         the weight formula of the LogSumExp family\n"
        "  -M M, -N N           the number of i and j points (default 10000 each)\n"
        "  --dtype T            float32 (default) or float64\n"
        "  --jit LIST           tiers to time, comma-separated, in order: auto, tcc, cc,\n"
        "                       reference, cuda (the GPU, docs/cuda.md), or all (=\n"
        "                       tcc,cc,reference); default tcc,cc. auto: the time to the\n"
        "                       first answer, then the wait for the background build\n"
        "                       before the runs. CPU tiers always run on the CPU\n"
        "  --backend B          cpu or auto: the CPU tiers (default); cuda: the cuda tier\n"
        "                       alone when --jit is not given\n"
        "  --device D           the GPU of the cuda tier (default 0)\n"
        "  --repeat R           timed runs per tier (default 5)\n"
        "  --threads N          worker threads (default: $KFORGE_THREADS, else every core)\n"
        "  --seed S             seed of the random inputs (default 1)\n"
        "  --sum-scheme S       float32 Sum accumulation: block (default), direct, f64, kahan\n"
        "  --cache-dir DIR      kernel cache directory (default: $KFORGE_CACHE_DIR, else\n"
        "                       $XDG_CACHE_HOME/kforge, else ~/.cache/kforge)\n"
        "  --block-sparse EPS:CUTOFF[:kmeans=ITERS]\n"
        "                       also time the block-sparse run (docs/blocksparse.md): the\n"
        "                       first i- and j-variable clustered on grids of side EPS, the\n"
        "                       cluster pairs that could hold a pair within CUTOFF computed\n"
        "  -v, --verbose        the library's messages on stderr\n"
        "  -h, --help           this text\n"
        "\n"
        "Output: one table row per tier: tier, engine, cache (hit, miss, off: the disk cache was\n"
        "not used, -: no optimized code), compile_ms (the whole kf_compile), the times of its\n"
        "passes parse/check/simplify/emit/jit in ms (jit: libtcc, cc + dlopen, or the load from\n"
        "the cache), run_ms (median), min_ms, ns/pair and pairs/s. A progress line goes to\n"
        "stderr when it is a terminal and a step takes over a second.\n"
        "With --block-sparse: the clusters, the kept fraction of the pairs, the planning\n"
        "steps' times, then per tier dense_ms and sparse_ms (medians), speed-up (dense /\n"
        "sparse), pipeline (dense / (planning + sorting the inputs + sparse run + restoring\n"
        "the order)), ns/pair of the dense run, ns/kept (sparse time per computed pair) and\n"
        "rel_error = sum|sparse - dense| / sum|dense| (the tutorial's measure).\n"
        "Exit status: 0 ok, 1 a tier failed to compile or run, 2 usage or formula error.\n"
        "\n"
        "Example (the Gaussian kernel sum on 10^5 x 10^5 points, both JIT tiers):\n"
        "  kforge bench 'Exp(-SqDist(x,y)/IntCst(2))*b' --alias 'x=Vi(0,3)' \\\n"
        "      --alias 'y=Vj(1,3)' --alias 'b=Vj(2,1)' --reduction Sum --axis 1 \\\n"
        "      -M 100000 -N 100000 --dtype float32 --jit tcc,cc --repeat 3\n",
        f);
}

enum { MAX_TIERS = 4, CMP_ROWS = 1000, REF_ROWS = 8 };
#define REF_PAIRS 2e7 /* the reference check's budget: ~1-2 s at its speed */

/* The tiers are the kf_jit engines and one more: the GPU (--backend cuda, or "cuda" in --jit). */
#define TIER_CUDA ((kf_jit)4)

static const char *tier_name(kf_jit j)
{
    return j == TIER_CUDA ? kf_backend_name(KF_BACKEND_CUDA) : kf_jit_name(j);
}

/* What one tier gave. */
typedef struct tier {
    kf_jit jit;
    int ok;                 /* compiled and ran */
    kf_compile_stats st;
    double compile_s;       /* wall time of kf_compile as the caller sees it */
    double ready_s;         /* auto: kf_kernel_wait after the compile, else 0 */
    double med_s, min_s;
    char engine[16];
    char *entry;            /* copy of st.cache_entry, or NULL */
    void *out;              /* the first cmp_rows rows of the output */
    int64_t *idx;
    /* --block-sparse */
    int sp_ok;
    double sp_med_s, sp_min_s, back_s; /* sparse run (median, min), restoring the order */
    double rel_err;         /* sum|sparse - dense| / sum|dense| over finite values */
    int64_t nonfinite_bad, idx_diff;
} tier;

/* Everything bench holds, freed in one place. */
typedef struct bench {
    kfcli_args a;
    kf_ctx *ctx;
    kf_kernel *k;
    kf_dtype dtype;
    int64_t M, N, rows, odim, idim;
    int nargs;
    void **args;            /* random inputs, NULL for unused indices */
    int inputs_failed;      /* make_inputs failed (out of memory): the bench stops */
    void *out;
    int64_t *idx;
    tier t[MAX_TIERS];
    int nt;
    /* --block-sparse: one plan for every tier (the inputs are the same) */
    kf_plan *plan;
    double plan_s, perm_s;
    int xv, yv;
    int64_t bsdim;
    void **sargs;           /* the inputs sorted by cluster (parameters: b->args') */
    void *sout, *uout;      /* sparse result, sorted and in the inputs' order */
    int64_t *sidx, *uidx;
} bench;

static int fail_usage(const char *msg, const char *arg)
{
    fprintf(stderr, "kforge bench: %s%s%s\n(see 'kforge help bench')\n", msg, arg ? arg : "",
            arg ? "'" : "");
    return KFCLI_EXIT_USAGE;
}

/* --jit LIST: comma-separated tier names, "all" for tcc,cc,reference. */
static int parse_tiers(bench *b)
{
    static const kf_jit all[] = {KF_JIT_TCC, KF_JIT_CC, KF_JIT_REFERENCE};
    const char *s = b->a.jits ? b->a.jits : b->a.backend == KF_BACKEND_CUDA ? "cuda" : "tcc,cc";
    while (1) {
        size_t n = strcspn(s, ",");
        kf_jit add[3];
        int nadd = 0;
        if (n == 3 && !strncmp(s, "all", 3)) {
            memcpy(add, all, sizeof all);
            nadd = 3;
        }
        for (int w = 0; w <= (int)TIER_CUDA && !nadd; w++)
            if (strlen(tier_name((kf_jit)w)) == n && !strncmp(s, tier_name((kf_jit)w), n))
                add[nadd++] = (kf_jit)w;
        if (!nadd) {
            fprintf(stderr, "kforge bench: --jit takes auto, tcc, cc, reference, cuda or all, "
                            "comma-separated; not '%.*s'\n(see 'kforge help bench')\n",
                    (int)(n > 64 ? 64 : n), s);
            return KFCLI_EXIT_USAGE;
        }
        for (int q = 0; q < nadd; q++) {
            int dup = 0;
            for (int p = 0; p < b->nt; p++)
                dup |= b->t[p].jit == add[q];
            if (!dup && b->nt < MAX_TIERS)
                b->t[b->nt++].jit = add[q];
        }
        if (!s[n])
            return 0;
        s += n + 1;
    }
}

/* ---- a progress line on stderr, from a helper thread, for steps over a second ---- */
typedef struct progress {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t th;
    int on, stop, shown;
    double t0;
    char what[96];
} progress;

static void *progress_main(void *arg)
{
    progress *p = arg;
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 500000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&p->cv, &p->mu, &ts);
        double el = kfcli_now() - p->t0;
        if (!p->stop && el >= 1.0) {
            fprintf(stderr, "\rkforge bench: %s ... %.0f s ", p->what, el);
            fflush(stderr);
            p->shown = 1;
        }
    }
    if (p->shown)
        fputs("\r\033[K", stderr); /* erase the line: the report follows */
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Starts the line's clock; nothing appears unless stderr is a terminal and
 * the step lasts a second. A thread that cannot start just means no line. */
static void progress_start(progress *p, const char *what)
{
    memset(p, 0, sizeof *p);
    if (!isatty(2))
        return;
    snprintf(p->what, sizeof p->what, "%s", what);
    p->t0 = kfcli_now();
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca))
        return;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int bad = pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (bad)
        return;
    if (pthread_mutex_init(&p->mu, NULL)) {
        pthread_cond_destroy(&p->cv);
        return;
    }
    if (pthread_create(&p->th, NULL, progress_main, p)) {
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
        return;
    }
    p->on = 1;
}

static void progress_stop(progress *p)
{
    if (!p->on)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->th, NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    p->on = 0;
}

/* ---- inputs ---- */

/* splitmix64, uniform in [-1, 1): the same inputs on every machine for a seed. */
static double uniform(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (double)((z ^ (z >> 31)) >> 11) * 0x1p-52 - 1.0;
}

/* n * m * es bytes, or 0 on overflow (callers treat 0 as "too large"). */
static size_t bytes_of(int64_t n, int64_t m, size_t es)
{
    size_t r;
    if (n < 0 || m < 0 || __builtin_mul_overflow((uint64_t)n, (uint64_t)m, &r) ||
        __builtin_mul_overflow(r, es, &r) || r > (size_t)INT64_MAX)
        return 0;
    return r ? r : 16; /* never malloc(0): an empty array still gets a valid pointer */
}

/* Random arrays for every variable kernel k uses; output buffers. */
static int make_inputs(bench *b)
{
    size_t es = b->dtype == KF_FLOAT32 ? 4 : 8;
    uint64_t seed = b->a.seed_set ? b->a.seed : 1;
    b->nargs = kf_kernel_nargs(b->k);
    b->args = calloc((size_t)b->nargs + 1, sizeof *b->args);
    if (!b->args)
        goto nomem;
    for (int v = 0; v < b->nargs; v++) {
        int cat;
        int64_t dim;
        if (kf_kernel_var(b->k, v, &cat, &dim) != KF_OK || cat < 0)
            continue;
        int64_t n = cat == 0 ? b->M : cat == 1 ? b->N : 1;
        size_t sz = bytes_of(n, dim, es);
        if (!sz) {
            fprintf(stderr, "kforge bench: variable %d (%lld x %lld) is too large\n", v,
                    (long long)n, (long long)dim);
            return KFCLI_EXIT_RUNTIME;
        }
        if (!(b->args[v] = malloc(sz)))
            goto nomem;
        int64_t cnt = n * dim;
        for (int64_t q = 0; q < cnt; q++) {
            double x = uniform(&seed);
            if (es == 4)
                ((float *)b->args[v])[q] = (float)x;
            else
                ((double *)b->args[v])[q] = x;
        }
    }
    b->rows = b->a.axis == 1 ? b->M : b->N;
    b->odim = kf_kernel_out_dim(b->k);
    b->idim = kf_kernel_index_dim(b->k);
    size_t ob = bytes_of(b->rows, b->odim, es), ib = bytes_of(b->rows, b->idim, 8);
    if (!ob || !ib) {
        fprintf(stderr, "kforge bench: the output (%lld rows) is too large\n", (long long)b->rows);
        return KFCLI_EXIT_RUNTIME;
    }
    if (!(b->out = malloc(ob)) || !(b->idx = malloc(ib)))
        goto nomem;
    return 0;
nomem:
    fputs("kforge bench: out of memory for the inputs\n", stderr);
    return KFCLI_EXIT_RUNTIME;
}

/* ---- one tier ---- */

static int cmp_double(const void *x, const void *y)
{
    double p = *(const double *)x, q = *(const double *)y;
    return (p > q) - (p < q);
}

/* Keeps a copy of the first cmp rows of the last output. */
static int keep_rows(bench *b, tier *t)
{
    int64_t cmp = b->rows < CMP_ROWS ? b->rows : CMP_ROWS;
    size_t es = b->dtype == KF_FLOAT32 ? 4 : 8;
    size_t ob = bytes_of(cmp, b->odim, es), ib = bytes_of(cmp, b->idim, 8);
    if (!(t->out = malloc(ob)) || !(t->idx = malloc(ib)))
        return -1;
    memcpy(t->out, b->out, ob);
    memcpy(t->idx, b->idx, ib);
    return 0;
}

/* Compiles for t->jit, runs the repeats. Returns 0, or the exit status: a
 * formula error (2) ends the bench, a tier's failure (1) only that tier. */
static int run_tier(bench *b, tier *t)
{
    kfcli_args ta = b->a;
    /* CPU tiers stay on the CPU whatever the size; the cuda tier is the GPU */
    ta.jit = t->jit == TIER_CUDA ? KF_JIT_AUTO : t->jit;
    ta.backend = t->jit == TIER_CUDA ? KF_BACKEND_CUDA : KF_BACKEND_CPU;
    const char *name = tier_name(t->jit);
    char what[64];
    progress pg;
    int rc;

    snprintf(what, sizeof what, "%s: compiling", name);
    progress_start(&pg, what);
    double t0 = kfcli_now();
    b->k = kfcli_compile(b->ctx, &ta, b->dtype, &rc);
    t->compile_s = kfcli_now() - t0;
    if (b->k && t->jit == KF_JIT_AUTO) {
        /* The first answer came from libtcc; the runs time what runs after the swap. */
        double t1 = kfcli_now();
        int st = kf_kernel_wait(b->k);
        t->ready_s = kfcli_now() - t1;
        if (st != KF_OK)
            fprintf(stderr, "kforge bench: auto: the background build failed (the libtcc "
                            "kernel runs): %s\n", kf_errmsg(b->ctx));
    }
    progress_stop(&pg);
    if (!b->k)
        return rc;
    if (kf_kernel_stats(b->k, &t->st) != KF_OK)
        memset(&t->st, 0, sizeof t->st);
    if (t->st.cache_entry && !(t->entry = strdup(t->st.cache_entry)))
        return KFCLI_EXIT_RUNTIME;
    t->st.cache_entry = NULL; /* belongs to the kernel, freed below */
    /* Made once, for every tier; out is made last, so a failure part-way is
     * seen (and it ends the bench: the next tier has no inputs either). */
    if (!b->out && (rc = make_inputs(b))) {
        b->inputs_failed = 1;
        return rc;
    }

    int reps = b->a.repeat > 0 ? b->a.repeat : 5;
    double *ts = malloc(sizeof *ts * (size_t)reps);
    if (!ts)
        return KFCLI_EXIT_RUNTIME;
    for (int r = 0; r < reps; r++) {
        snprintf(what, sizeof what, "%s: run %d of %d", name, r + 1, reps);
        progress_start(&pg, what);
        double r0 = kfcli_now();
        int st = kf_run(b->k, b->M, b->N, (const void *const *)b->args, b->nargs, b->out, b->idx);
        ts[r] = kfcli_now() - r0;
        progress_stop(&pg);
        if (st != KF_OK) {
            fprintf(stderr, "kforge bench: %s: %s\n", name, kf_errmsg(b->ctx));
            free(ts);
            return kfcli_exit_of(st);
        }
    }
    qsort(ts, (size_t)reps, sizeof *ts, cmp_double);
    t->min_s = ts[0];
    t->med_s = reps % 2 ? ts[reps / 2] : 0.5 * (ts[reps / 2 - 1] + ts[reps / 2]);
    free(ts);
    snprintf(t->engine, sizeof t->engine, "%s", kf_kernel_engine(b->k));
    if (keep_rows(b, t)) {
        fputs("kforge bench: out of memory\n", stderr);
        return KFCLI_EXIT_RUNTIME;
    }
    t->ok = 1;
    return 0;
}

/* ---- block-sparse ---- */


/* Plans on the first i- and j-variable, sorts every i- and j-variable, and
 * makes the sparse outputs (once: every tier runs on the same inputs). */
static int plan_inputs(bench *b)
{
    int64_t dx = 0, dy = 0;
    b->xv = kfcli_first_var(b->k, 0, &dx);
    b->yv = kfcli_first_var(b->k, 1, &dy);
    if (b->xv < 0 || b->yv < 0) {
        fprintf(stderr, "kforge bench: --block-sparse clusters the first i-variable and the "
                        "first j-variable; the formula has no %s\n",
                b->xv < 0 ? "i-variable (Vi)" : "j-variable (Vj)");
        return KFCLI_EXIT_USAGE;
    }
    if (dx != dy) {
        fprintf(stderr, "kforge bench: --block-sparse clusters the first i-variable and the "
                        "first j-variable, which need the same dim: variable %d has dim %lld, "
                        "variable %d dim %lld\n",
                b->xv, (long long)dx, b->yv, (long long)dy);
        return KFCLI_EXIT_USAGE;
    }
    b->bsdim = dx;
    double t0 = kfcli_now();
    b->plan = kf_plan_block_sparse(b->ctx, b->dtype, b->args[b->xv], b->M, b->args[b->yv], b->N,
                                   dx, b->a.bs_eps, b->a.bs_cutoff, b->a.bs_kmeans);
    b->plan_s = kfcli_now() - t0;
    if (!b->plan) {
        fprintf(stderr, "kforge bench: --block-sparse: %s\n", kf_errmsg(b->ctx));
        return kfcli_exit_of(kf_status_of(b->ctx));
    }
    size_t es = b->dtype == KF_FLOAT32 ? 4 : 8;
    if (!(b->sargs = calloc((size_t)b->nargs + 1, sizeof *b->sargs)))
        goto nomem;
    t0 = kfcli_now();
    for (int v = 0; v < b->nargs; v++) {
        int cat;
        int64_t dim;
        if (kf_kernel_var(b->k, v, &cat, &dim) != KF_OK || (cat != 0 && cat != 1))
            continue;
        int64_t n = cat == 0 ? b->M : b->N;
        if (!(b->sargs[v] = malloc(bytes_of(n, dim, es))))
            goto nomem;
        if (kf_permute_rows(b->ctx, b->args[v], n, dim * (int64_t)es,
                            cat == 0 ? b->plan->perm_x : b->plan->perm_y, b->sargs[v]) != KF_OK) {
            fprintf(stderr, "kforge bench: --block-sparse: %s\n", kf_errmsg(b->ctx));
            return KFCLI_EXIT_RUNTIME;
        }
    }
    b->perm_s = kfcli_now() - t0;
    size_t ob = bytes_of(b->rows, b->odim, es), ib = bytes_of(b->rows, b->idim, 8);
    if (!(b->sout = malloc(ob)) || !(b->uout = malloc(ob)) || !(b->sidx = malloc(ib)) ||
        !(b->uidx = malloc(ib)))
        goto nomem;
    return 0;
nomem:
    fputs("kforge bench: out of memory for the block-sparse inputs\n", stderr);
    return KFCLI_EXIT_RUNTIME;
}

/* The block-sparse runs of tier t (its kernel is b->k, its dense output is
 * still in b->out): times, then the result in the inputs' order against dense. */
static int run_sparse(bench *b, tier *t)
{
    int rc;
    if (!b->plan && (rc = plan_inputs(b)))
        return rc;
    const kf_plan *p = b->plan;
    kf_ranges rg;
    kf_blocks_view(p->blocks, &rg);
    const void **args = calloc((size_t)b->nargs + 1, sizeof *args);
    int reps = b->a.repeat > 0 ? b->a.repeat : 5;
    double *ts = malloc(sizeof *ts * (size_t)reps);
    if (!args || !ts) {
        free(args), free(ts);
        return KFCLI_EXIT_RUNTIME;
    }
    for (int v = 0; v < b->nargs; v++)
        args[v] = b->sargs[v] ? b->sargs[v] : b->args[v];
    progress pg;
    char what[64];
    for (int r = 0; r < reps; r++) {
        snprintf(what, sizeof what, "%s: block-sparse run %d of %d", tier_name(t->jit), r + 1,
                 reps);
        progress_start(&pg, what);
        double r0 = kfcli_now();
        int st = kf_run_ranges(b->k, b->M, b->N, args, b->nargs, &rg, b->sout, b->sidx);
        ts[r] = kfcli_now() - r0;
        progress_stop(&pg);
        if (st != KF_OK) {
            fprintf(stderr, "kforge bench: %s: %s\n", tier_name(t->jit), kf_errmsg(b->ctx));
            free(args), free(ts);
            return kfcli_exit_of(st);
        }
    }
    free(args);
    qsort(ts, (size_t)reps, sizeof *ts, cmp_double);
    t->sp_min_s = ts[0];
    t->sp_med_s = reps % 2 ? ts[reps / 2] : 0.5 * (ts[reps / 2 - 1] + ts[reps / 2]);
    free(ts);

    /* back to the inputs' order: rows by the outer iperm, indices by the inner perm */
    int axis1 = b->a.axis == 1;
    size_t es = b->dtype == KF_FLOAT32 ? 4 : 8;
    double t0 = kfcli_now();
    const int64_t *inner = axis1 ? p->perm_y : p->perm_x;
    for (int64_t q = 0; q < b->rows * b->idim; q++)
        if (b->sidx[q] >= 0)
            b->sidx[q] = inner[b->sidx[q]];
    const int64_t *iperm = axis1 ? p->iperm_x : p->iperm_y;
    if ((b->odim > 0 && kf_permute_rows(b->ctx, b->sout, b->rows, b->odim * (int64_t)es, iperm,
                                        b->uout) != KF_OK) ||
        (b->idim > 0 &&
         kf_permute_rows(b->ctx, b->sidx, b->rows, b->idim * 8, iperm, b->uidx) != KF_OK)) {
        fprintf(stderr, "kforge bench: --block-sparse: %s\n", kf_errmsg(b->ctx));
        return KFCLI_EXIT_RUNTIME;
    }
    t->back_s = kfcli_now() - t0;

    double num = 0, den = 0;
    int64_t n = b->rows * b->odim;
    t->nonfinite_bad = t->idx_diff = 0;
    for (int64_t q = 0; q < n; q++) {
        double u = es == 4 ? ((const float *)b->uout)[q] : ((const double *)b->uout)[q];
        double d = es == 4 ? ((const float *)b->out)[q] : ((const double *)b->out)[q];
        if (isfinite(u) && isfinite(d)) {
            num += fabs(u - d);
            den += fabs(d);
        } else if (!(isnan(u) && isnan(d)) && u != d) {
            t->nonfinite_bad++;
        }
    }
    t->rel_err = den > 0 ? num / den : num > 0 ? INFINITY : 0;
    for (int64_t q = 0; q < b->rows * b->idim; q++)
        t->idx_diff += b->uidx[q] != b->idx[q];
    t->sp_ok = 1;
    return 0;
}

static void print_sparse(const bench *b)
{
    const kf_plan *p = b->plan;
    double pairs = (double)b->M * (double)b->N, kept = pairs * p->kept_fraction;
    printf("\nblock-sparse %g:%g on variables %d (i) and %d (j), dim %lld: %lld x %lld clusters, "
           "kept %.2f%% of the pairs (%.4g of %.4g)\n",
           b->a.bs_eps, b->a.bs_cutoff, b->xv, b->yv, (long long)b->bsdim, (long long)p->ncx,
           (long long)p->ncy, 100 * p->kept_fraction, kept, pairs);
    printf("planning %.3f ms (cluster %.3f, sort %.3f, ranges %.3f, mask %.3f), sorting the "
           "inputs %.3f ms\n",
           1e3 * b->plan_s, 1e3 * p->cluster_s, 1e3 * p->sort_s, 1e3 * p->ranges_s,
           1e3 * p->mask_s, 1e3 * b->perm_s);
    printf("%-9s %-9s %11s %11s %9s %9s %9s %9s %10s\n", "tier", "engine", "dense_ms",
           "sparse_ms", "speed-up", "pipeline", "ns/pair", "ns/kept", "rel_error");
    for (int q = 0; q < b->nt; q++) {
        const tier *t = &b->t[q];
        if (!t->sp_ok)
            continue;
        double whole = b->plan_s + b->perm_s + t->sp_med_s + t->back_s;
        printf("%-9s %-9s %11.3f %11.3f %9.3f %9.3f %9.4f %9.4f ", tier_name(t->jit), t->engine,
               1e3 * t->med_s, 1e3 * t->sp_med_s, t->sp_med_s > 0 ? t->med_s / t->sp_med_s : 0,
               whole > 0 ? t->med_s / whole : 0, pairs > 0 ? 1e9 * t->med_s / pairs : 0,
               kept > 0 ? 1e9 * t->sp_med_s / kept : 0);
        if (b->odim > 0)
            printf("%10.3g\n", t->rel_err);
        else
            printf("%10s\n", "-");
    }
    for (int q = 0; q < b->nt; q++) {
        const tier *t = &b->t[q];
        if (t->sp_ok && (t->idx_diff || t->nonfinite_bad))
            printf("%s: block-sparse vs dense: %lld of %lld indices differ, %lld non-finite "
                   "values differ\n",
                   tier_name(t->jit), (long long)t->idx_diff, (long long)(b->rows * b->idim),
                   (long long)t->nonfinite_bad);
    }
}

/* ---- agreement ---- */

/* max |x - y| / max |y| over n values of dtype (NaN matches NaN, an infinity
 * only itself); *bad counts the values that do not match that way. */
static double rel_diff(const void *x, const void *y, int64_t n, kf_dtype dt, int64_t *bad)
{
    double maxd = 0, maxy = 0;
    for (int64_t q = 0; q < n; q++) {
        double p = dt == KF_FLOAT32 ? ((const float *)x)[q] : ((const double *)x)[q];
        double r = dt == KF_FLOAT32 ? ((const float *)y)[q] : ((const double *)y)[q];
        if (isnan(p) || isnan(r) || isinf(p) || isinf(r)) {
            if (!(isnan(p) && isnan(r)) && p != r)
                (*bad)++;
            continue;
        }
        maxd = fmax(maxd, fabs(p - r));
        maxy = fmax(maxy, fabs(r));
    }
    return maxy > 0 ? maxd / maxy : maxd > 0 ? INFINITY : 0;
}

static void print_agreement(FILE *o, const bench *b, const tier *t, const void *ref_out,
                            const int64_t *ref_idx, int64_t n, int *worried)
{
    int64_t bad = 0, idiff = 0;
    double rel = rel_diff(t->out, ref_out, n * b->odim, b->dtype, &bad);
    for (int64_t q = 0; q < n * b->idim; q++)
        idiff += t->idx[q] != ref_idx[q];
    if (b->odim > 0)
        fprintf(o, " %.2g", rel);
    if (bad)
        fprintf(o, " (%lld non-finite mismatches)", (long long)bad);
    if (b->idim > 0)
        fprintf(o, " (%lld of %lld indices differ)", (long long)idiff, (long long)(n * b->idim));
    /* Far beyond rounding: float32 formulas are good to ~1e-6 relative, sums to ~1e-5. */
    if (bad || rel > (b->dtype == KF_FLOAT32 ? 1e-3 : 1e-9))
        *worried = 1;
}

/* The reference engine on the first rows: those rows' results do not depend
 * on the others, so running it with M (or N) cut to them is enough. */
static int reference_rows(bench *b, int *worried)
{
    int axis1 = b->a.axis == 1, compiled = 0;
    for (int q = 0; q < b->nt; q++)
        compiled += b->t[q].ok && b->t[q].jit != KF_JIT_REFERENCE;
    if (!compiled)
        return 0; /* only the reference engine ran: nothing to check it against */
    int64_t inner = axis1 ? b->N : b->M;
    int64_t n = b->rows < REF_ROWS ? b->rows : REF_ROWS;
    if (inner > 0 && (double)n * (double)inner > REF_PAIRS)
        n = (int64_t)(REF_PAIRS / (double)inner);
    if (n <= 0) {
        printf("reference engine: not run (one row is %lld pairs)\n", (long long)inner);
        return 0;
    }
    kfcli_args ra = b->a;
    ra.jit = KF_JIT_REFERENCE;
    int rc;
    kf_kernel *rk = kfcli_compile(b->ctx, &ra, b->dtype, &rc);
    if (!rk)
        return rc;
    int64_t M = axis1 ? n : b->M, N = axis1 ? b->N : n;
    int st = kf_run(rk, M, N, (const void *const *)b->args, b->nargs, b->out, b->idx);
    kf_kernel_free(rk);
    if (st != KF_OK) {
        fprintf(stderr, "kforge bench: reference: %s\n", kf_errmsg(b->ctx));
        return kfcli_exit_of(st);
    }
    printf("reference engine, first %lld rows, max|diff|/max|value|:", (long long)n);
    for (int q = 0; q < b->nt; q++) {
        if (!b->t[q].ok || b->t[q].jit == KF_JIT_REFERENCE)
            continue;
        printf("%s %s", q ? "," : "", tier_name(b->t[q].jit));
        print_agreement(stdout, b, &b->t[q], b->out, b->idx, n, worried);
    }
    printf("\n");
    return 0;
}

/* ---- the report ---- */

static const char *cache_word(int c)
{
    switch (c) {
    case KF_CACHE_HIT:
        return "hit";
    case KF_CACHE_MISS:
        return "miss";
    case KF_CACHE_DISABLED:
        return "off";
    default:
        return "-";
    }
}

static void print_header(const bench *b)
{
    const char *red = kf_kernel_reduction(b->k);
    double pairs = (double)b->M * (double)b->N;
    printf("formula    %s\n", b->a.formula);
    printf("canonical  %s\n", kf_kernel_canonical(b->k));
    if (kf_kernel_canonical2(b->k))
        printf("formula2   %s\n", kf_kernel_canonical2(b->k));
    printf("reduction  %s", red ? red : "?");
    if (b->a.k > 0)
        printf(" K=%d", b->a.k);
    printf(", axis %d, %s, %lld output rows\n", kf_kernel_axis(b->k),
           kf_dtype_name(b->dtype), (long long)b->rows);
    printf("sizes      M=%lld N=%lld: %.4g pairs; %d thread%s; %d repeat%s; seed %llu\n",
           (long long)b->M, (long long)b->N, pairs, kf_threads(b->ctx),
           kf_threads(b->ctx) == 1 ? "" : "s", b->a.repeat > 0 ? b->a.repeat : 5,
           b->a.repeat == 1 ? "" : "s", (unsigned long long)(b->a.seed_set ? b->a.seed : 1));
    printf("\n%-9s %-9s %-5s %10s %7s %7s %8s %7s %9s %11s %11s %9s %10s\n", "tier", "engine",
           "cache", "compile_ms", "parse", "check", "simplify", "emit", "jit", "run_ms", "min_ms",
           "ns/pair", "pairs/s");
}

static void print_tier(const bench *b, const tier *t)
{
    double pairs = (double)b->M * (double)b->N;
    const kf_compile_stats *s = &t->st;
    printf("%-9s %-9s %-5s %10.3f %7.3f %7.3f %8.3f %7.3f %9.3f %11.3f %11.3f ",
           tier_name(t->jit), t->engine, cache_word(s->cache), 1e3 * t->compile_s,
           1e3 * s->parse_s, 1e3 * s->check_s, 1e3 * s->simplify_s, 1e3 * s->emit_s,
           1e3 * s->jit_s, 1e3 * t->med_s, 1e3 * t->min_s);
    if (pairs > 0 && t->med_s > 0)
        printf("%9.4f %10.4g\n", 1e9 * t->med_s / pairs, pairs / t->med_s);
    else
        printf("%9s %10s\n", "-", "-");
}

static void bench_free(bench *b)
{
    for (int q = 0; q < b->nt; q++) {
        free(b->t[q].entry);
        free(b->t[q].out);
        free(b->t[q].idx);
    }
    for (int v = 0; b->args && v < b->nargs; v++)
        free(b->args[v]);
    free(b->args);
    free(b->out);
    free(b->idx);
    for (int v = 0; b->sargs && v < b->nargs; v++)
        free(b->sargs[v]);
    free(b->sargs);
    free(b->sout), free(b->uout), free(b->sidx), free(b->uidx);
    kf_plan_free(b->plan);
    kf_kernel_free(b->k);
    kf_free(b->ctx);
    kfcli_args_free(&b->a);
}

static int bench_main(bench *b, int argc, char **argv)
{
    kfcli_args *a = &b->a;
    int rc = kfcli_args_parse(KFCLI_CMD_BENCH, "bench", argc, argv, a);
    if (rc)
        return rc;
    if (a->help) {
        kfcli_help_bench(stdout);
        return 0;
    }
    if (!a->formula)
        return fail_usage("missing FORMULA", NULL);
    if (a->nfiles > 0)
        return fail_usage("bench makes its own inputs; unexpected argument '", a->files[0]);
    if (!a->reduction)
        return fail_usage("missing --reduction", NULL);
    if (a->axis < 0)
        return fail_usage("missing --axis 0|1", NULL);
    if ((rc = parse_tiers(b)))
        return rc;
    b->dtype = a->dtype < 0 ? KF_FLOAT32 : (kf_dtype)a->dtype;
    b->M = a->M < 0 ? 10000 : a->M;
    b->N = a->N < 0 ? 10000 : a->N;
    if (!(b->ctx = kfcli_ctx_new(a, &rc)))
        return rc;

    int status = 0, worried = 0, shown = 0;
    for (int q = 0; q < b->nt; q++) {
        tier *t = &b->t[q];
        rc = run_tier(b, t);
        if (rc == KFCLI_EXIT_USAGE)
            return rc; /* the formula itself is wrong: every tier would say so */
        if (b->inputs_failed)
            return rc; /* no inputs (said): no tier can run */
        if (rc) {
            fprintf(stderr, "kforge bench: tier %s failed\n", tier_name(t->jit));
            status = KFCLI_EXIT_RUNTIME;
        }
        if (t->ok && a->bs_eps > 0 && b->rows > 0) {
            rc = run_sparse(b, t);
            if (rc == KFCLI_EXIT_USAGE)
                return rc; /* no variables to cluster on, or EPS unusable: every tier */
            if (rc) {
                fprintf(stderr, "kforge bench: tier %s: the block-sparse run failed\n",
                        tier_name(t->jit));
                status = KFCLI_EXIT_RUNTIME;
            }
        }
        if (t->ok && !shown) {
            print_header(b);
            shown = 1;
        }
        if (t->ok)
            print_tier(b, t);
        kf_kernel_free(b->k); /* one kernel at a time: an auto build must not run beside */
        b->k = NULL;
    }
    if (!shown)
        return status ? status : KFCLI_EXIT_RUNTIME;
    printf("\n");
    for (int q = 0; q < b->nt; q++) {
        const tier *t = &b->t[q];
        if (t->ok && t->jit == KF_JIT_AUTO && t->st.cache == KF_CACHE_HIT)
            printf("auto: the optimized code came from the cache: runnable after %.3f ms\n",
                   1e3 * t->compile_s);
        else if (t->ok && t->jit == KF_JIT_AUTO)
            printf("auto: first answer after %.3f ms (libtcc), optimized code ready %.3f ms "
                   "later\n",
                   1e3 * t->compile_s, 1e3 * t->ready_s);
        if (t->entry)
            printf("cache entry (%s): %s\n", tier_name(t->jit), t->entry);
    }
    /* Every tier against the first that ran, on the rows kept. */
    int base = -1;
    for (int q = 0; q < b->nt && base < 0; q++)
        if (b->t[q].ok)
            base = q;
    int64_t cmp = b->rows < CMP_ROWS ? b->rows : CMP_ROWS;
    int others = 0;
    for (int q = base + 1; q < b->nt; q++)
        others += b->t[q].ok;
    if (others && cmp > 0) {
        printf("agreement, first %lld rows, max|diff|/max|value|:", (long long)cmp);
        int first = 1;
        for (int q = base + 1; q < b->nt; q++) {
            if (!b->t[q].ok)
                continue;
            printf("%s %s vs %s", first ? "" : ",", tier_name(b->t[q].jit),
                   tier_name(b->t[base].jit));
            print_agreement(stdout, b, &b->t[q], b->t[base].out, b->t[base].idx, cmp, &worried);
            first = 0;
        }
        printf("\n");
    }
    if (b->rows > 0 && (rc = reference_rows(b, &worried)) && !status)
        status = rc;
    if (b->plan)
        print_sparse(b);
    if (worried)
        fputs("kforge bench: warning: the tiers disagree beyond rounding (see above)\n", stderr);
    return status;
}

int kfcli_bench(int argc, char **argv)
{
    bench b;
    memset(&b, 0, sizeof b);
    int rc = bench_main(&b, argc, argv);
    bench_free(&b);
    return rc;
}
