/* run.c -- kf_run, kf_run_ranges and kf_run_device: validate at the
 * boundary, then either the GPU (runtime/cuda/cuda_run.c) or blocks of output
 * rows on the pool (dense: equal row blocks over the whole inner range;
 * block-sparse: the tasks of runtime/sparse/ranges.c), each task on the
 * kernel's best code when it starts; then what ran, for kf_kernel_stats and
 * kf_kernel_engine. */
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "runtime/cuda/cuda_run.h"
#include "runtime/sparse/ranges.h"
#include "runtime/rt.h"

/* About this many blocks of rows per worker: enough to even out uneven
 * blocks (a NaN-heavy or cache-unlucky block) without a per-row task cost. */
#define KFR_BLOCKS_PER_THREAD 4

/* While a background build may still swap cc code in (KF_JIT_AUTO on a
 * cache miss), tasks hold at most about this many pairs: a worker moves to
 * the cc code at its next task, so a task's length is how long it can stay
 * on libtcc code (15-90x slower) once cc is ready. 2^22 pairs are tens of
 * milliseconds on libtcc code; the per-task cost (an atomic, a call) is
 * below a microsecond. */
#define KFR_SWITCH_TASK_PAIRS ((int64_t)1 << 22)
/* ... but never fewer rows than this, so that the cc code still gets whole
 * blocks of KF_RB rows (its vector width) on a huge inner range. */
#define KFR_SWITCH_MIN_ROWS 64
/* A run of at least this many pairs per worker waits for a pending build
 * instead of starting on libtcc code. libtcc takes 8-120 ns a pair, so this
 * is at least 0.4 s of libtcc work a worker, longer than a cc build (70-300
 * ms); what libtcc would compute meanwhile is worth about 1% of that time on
 * cc code, and its workers take the cores the compiler needs: on 2 cores a
 * cold ArgKMin over 10^10 pairs took 1.45-1.7x the warm run that way. */
#define KFR_WAIT_PAIRS_PER_WORKER ((int64_t)50 * 1000 * 1000)
/* ... for at most this long (a build is 20-100x quicker): a compiler that
 * hangs (it is killed at 60 s) must not hold the run, which then starts on
 * libtcc code with the finer tasks and takes the cc code when it comes. */
#define KFR_WAIT_MAX_MS 5000.0

/* The engines a task can run, for the per-engine counts of kf_compile_stats. */
enum { RAN_REFERENCE, RAN_TCC, RAN_CC, RAN_COUNT };

/* One kf_run as the pool's tasks see it. Read-only during the run except
 * `failed`, the first failing status of a task (the reference engine can
 * run out of memory), and the counts.
 *
 * Each task loads the kernel's slot when it starts (kfr_kernel_slot), so a
 * run in flight moves to the cc code at a task boundary and each task, hence
 * each row, is computed by one engine. No row is split across tasks (a task
 * holds complete rows with their whole inner range, dense or block-sparse),
 * so nothing combines results of two engines. */
typedef struct run_job {
    kf_kernel *k;
    kfk_slot slot0;  /* the slot as loaded when the run started */
    int64_t swap_at; /* KFORGE_TEST_SWAP_AT_TASK (tasks below it run slot0), or -1 */
    const void *const *args;
    void *out;
    int64_t *idx;
    int64_t rows, block;
    int64_t jr[2];         /* dense: the whole inner range {0, inner} */
    const kfr_task *tasks; /* block-sparse: task t, instead of row block t */
    atomic_int failed;
    atomic_int_fast64_t ran_rows[RAN_COUNT], ran_pairs[RAN_COUNT];
    atomic_int_fast64_t first_cc; /* lowest task number on cc code; INT64_MAX: none */
} run_job;

static int64_t mul_sat(int64_t a, int64_t b)
{
    int64_t p;
    return __builtin_mul_overflow(a, b, &p) ? INT64_MAX : p;
}

/* The inner indices of nr ranges. */
static int64_t ranges_len(const int64_t *jr, int64_t nr)
{
    int64_t len = 0;
    for (int64_t q = 0; q < nr; q++)
        len += jr[2 * q + 1] - jr[2 * q];
    return len;
}

/* The slot task t runs, and which engine that is. */
static kfk_slot task_slot(run_job *j, int64_t t, int *ran)
{
    kfk_slot s;
    if (j->swap_at >= 0 && t < j->swap_at)
        s = j->slot0;
    else {
        if (j->swap_at >= 0)
            kfr_tier_await(j->k, -1);
        s = kfr_kernel_slot(j->k);
    }
    /* kfk_slot_generated is static inline (one copy per file): compare with
     * the reference call, which has one address. */
    *ran = s.call == kfk_ref_slot_call ? RAN_REFERENCE : s.fn == j->k->tcc_fn ? RAN_TCC : RAN_CC;
    return s;
}

static void run_block(void *vp, int64_t t)
{
    run_job *j = vp;
    int64_t r0, r1, nr;
    const int64_t *jr;
    if (j->tasks) {
        r0 = j->tasks[t].r0, r1 = j->tasks[t].r1, jr = j->tasks[t].jr, nr = j->tasks[t].nr;
    } else {
        r0 = t * j->block;
        r1 = r0 + j->block < j->rows ? r0 + j->block : j->rows;
        jr = j->jr, nr = 1;
    }
    int ran;
    kfk_slot slot = task_slot(j, t, &ran);
    int rc = slot.call(&slot, j->args, r0, r1, jr, nr, j->out, j->idx);
    if (rc != KF_OK) {
        int expected = KF_OK;
        atomic_compare_exchange_strong(&j->failed, &expected, rc);
    }
    atomic_fetch_add(&j->ran_rows[ran], r1 - r0);
    atomic_fetch_add(&j->ran_pairs[ran], mul_sat(r1 - r0, ranges_len(jr, nr)));
    if (ran == RAN_CC) {
        int_fast64_t seen = atomic_load(&j->first_cc);
        while (t < seen && !atomic_compare_exchange_weak(&j->first_cc, &seen, t))
            ;
    }
}

/* n * dim * elem bytes without overflowing int64 or size_t; 0 if it would. */
static int array_bytes(int64_t n, int64_t dim, int64_t elem, int64_t *bytes)
{
    int64_t count, b;
    if (__builtin_mul_overflow(n, dim, &count) || __builtin_mul_overflow(count, elem, &b) ||
        (uint64_t)b > (uint64_t)SIZE_MAX)
        return 0;
    *bytes = b;
    return 1;
}

static const char *cat_name(int cat)
{
    return cat == KFC_CAT_I ? "i-variable" : cat == KFC_CAT_J ? "j-variable" : "parameter";
}

/* Every check of kf_run, in the order a caller would want them reported. */
static int validate(const char *who, kf_kernel *k, int64_t M, int64_t N, const void *const *args,
                    int nargs, const void *out, const int64_t *index_out, int64_t rows)
{
    kf_ctx *ctx = k->ctx;
    if (!k->has_red)
        return kfr_error(ctx, KF_ERR_ARG,
                         "%s: the kernel was compiled without a reduction; it can be "
                         "inspected but not run", who);
    if (M < 0 || N < 0)
        return kfr_error(ctx, KF_ERR_ARG, "%s: M = %lld and N = %lld, expected both >= 0", who,
                         (long long)M, (long long)N);
    int64_t elem = k->red.dtype == KF_FLOAT64 ? 8 : 4, bytes;
    if (!array_bytes(rows, k->red.valdim, elem, &bytes) ||
        !array_bytes(rows, k->red.idxdim, 8, &bytes))
        return kfr_error(ctx, KF_ERR_ARG, "%s: %lld output rows overflow the address space", who,
                         (long long)rows);
    int want = k->prog.nvars;
    if (nargs != want)
        return kfr_error(ctx, KF_ERR_ARG, "%s: nargs is %d, expected %d (kf_kernel_nargs)", who,
                         nargs, want);
    if (nargs > 0 && !args)
        return kfr_error(ctx, KF_ERR_ARG, "%s: args is NULL, expected %d arrays", who, nargs);
    for (int v = 0; v < nargs; v++) {
        const kfc_var *var = &k->prog.vars[v];
        if (!var->used)
            continue;
        int64_t n = var->cat == KFC_CAT_I ? M : var->cat == KFC_CAT_J ? N : 1;
        if (!array_bytes(n, var->dim, elem, &bytes))
            return kfr_error(ctx, KF_ERR_ARG,
                             "%s: variable %d (%s, dim %d) with %lld rows overflows the "
                             "address space", who,
                             v, cat_name(var->cat), (int)var->dim, (long long)n);
        /* An empty array may be NULL (numpy gives no data pointer for it). */
        if (!args[v] && bytes > 0)
            return kfr_error(ctx, KF_ERR_ARG,
                             "%s: args[%d] is NULL, expected the %s of dim %d (%lld values)", who,
                             v, cat_name(var->cat), (int)var->dim, (long long)(bytes / elem));
    }
    if (!out && rows * k->red.valdim > 0)
        return kfr_error(ctx, KF_ERR_ARG,
                         "%s: out is NULL, expected room for %lld x %lld values", who,
                         (long long)rows, (long long)k->red.valdim);
    if (!index_out && rows * k->red.idxdim > 0)
        return kfr_error(ctx, KF_ERR_ARG,
                         "%s: index_out is NULL, expected room for %lld x %lld int64 indices", who,
                         (long long)rows, (long long)k->red.idxdim);
    return KF_OK;
}

/* Forgets the last run's counts: a run that gets past validation starts
 * here, so a failed or empty one does not leave the previous run's behind. */
static void ran_reset(kf_kernel *k)
{
    kf_compile_stats *st = &k->stats;
    st->run_rows_tcc = st->run_rows_cc = st->run_rows_reference = st->run_rows_cuda = 0;
    st->run_pairs_tcc = st->run_pairs_cc = st->run_pairs_reference = st->run_pairs_cuda = 0;
    st->run_tasks = 0;
    st->run_first_cc_task = -1;
    k->ran[0] = 0;
}

/* The counts of a CPU run into k->stats, and kf_kernel_engine's answer. */
static void ran_record(kf_kernel *k, run_job *j, int64_t ntasks)
{
    kf_compile_stats *st = &k->stats;
    st->run_rows_reference = atomic_load(&j->ran_rows[RAN_REFERENCE]);
    st->run_rows_tcc = atomic_load(&j->ran_rows[RAN_TCC]);
    st->run_rows_cc = atomic_load(&j->ran_rows[RAN_CC]);
    st->run_pairs_reference = atomic_load(&j->ran_pairs[RAN_REFERENCE]);
    st->run_pairs_tcc = atomic_load(&j->ran_pairs[RAN_TCC]);
    st->run_pairs_cc = atomic_load(&j->ran_pairs[RAN_CC]);
    st->run_tasks = ntasks;
    int64_t first = atomic_load(&j->first_cc);
    st->run_first_cc_task = first == INT64_MAX ? -1 : first;
    const char *only = st->run_rows_reference ? "reference"
                       : !st->run_rows_tcc    ? "cc"
                       : !st->run_rows_cc     ? "tcc"
                                              : NULL;
    if (only) {
        snprintf(k->ran, sizeof k->ran, "%s", only);
        return;
    }
    /* Both: the share of the work on cc (pairs, or rows when only neutral
     * rows were written), rounded down so that a switched run never reads
     * as all cc. */
    int by_pairs = st->run_pairs_tcc + st->run_pairs_cc > 0;
    double cc = (double)(by_pairs ? st->run_pairs_cc : st->run_rows_cc);
    double all = cc + (double)(by_pairs ? st->run_pairs_tcc : st->run_rows_tcc);
    snprintf(k->ran, sizeof k->ran, "tcc, then cc from task %lld of %lld (%d%% of %s on cc)",
             (long long)st->run_first_cc_task, (long long)ntasks, (int)(100 * cc / all),
             by_pairs ? "pairs" : "rows");
}

/* A big run on a kernel whose cc build is pending waits for it (see
 * KFR_WAIT_PAIRS_PER_WORKER), then runs on whatever the kernel has: the cc
 * code, or libtcc's if the build failed. Not under KFORGE_TEST_SWAP_AT_TASK,
 * whose tests place the switch themselves. The run's pairs: dense, rows x
 * inner; block-sparse, the tasks' ranges. */
static void wait_if_big(kf_kernel *k, const char *who, int64_t rows, int64_t inner,
                        const kfr_task *tasks, int64_t ntasks)
{
    if (!kfr_tier_pending(k) || kfr_tier_swap_at(k) >= 0)
        return;
    int64_t pairs = tasks ? 0 : mul_sat(rows, inner);
    for (int64_t t = 0; tasks && t < ntasks; t++) {
        int64_t p = mul_sat(tasks[t].r1 - tasks[t].r0, ranges_len(tasks[t].jr, tasks[t].nr));
        pairs = pairs > INT64_MAX - p ? INT64_MAX : pairs + p;
    }
    if (pairs / kfr_pool_threads(k->ctx->pool) < KFR_WAIT_PAIRS_PER_WORKER)
        return;
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int ended = kfr_tier_await(k, KFR_WAIT_MAX_MS);
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ms = 1e3 * (double)(b.tv_sec - a.tv_sec) + 1e-6 * (double)(b.tv_nsec - a.tv_nsec);
    kfr_log(k->ctx, KF_LOG_INFO, "%s: waited %.0f ms for the optimized (cc) build before %.3g pairs%s",
            who, ms, (double)pairs,
            !ended                     ? ", still running: starting on libtcc code"
            : atomic_load(&k->on_cc) ? ": cheaper than starting on libtcc code"
                                       : ", which failed: running libtcc code");
}

/* The part of kf_run and kf_run_ranges after validation: runs the row
 * blocks (tasks == NULL) or the given tasks on the pool, each task with the
 * kernel's code as it is when the task starts. */
static int run_tasks(kf_kernel *k, const char *who, const void *const *args, void *out,
                     int64_t *index_out, int64_t rows, int64_t inner, const kfr_task *tasks,
                     int64_t ntasks)
{
    kf_ctx *ctx = k->ctx;
    wait_if_big(k, who, rows, inner, tasks, ntasks);
    run_job j = {.k = k, .slot0 = kfr_kernel_slot(k), .swap_at = kfr_tier_swap_at(k),
                 .args = args, .out = out, .idx = index_out, .rows = rows, .jr = {0, inner},
                 .tasks = tasks};
    if (!tasks) {
        int64_t nblocks = (int64_t)kfr_pool_threads(ctx->pool) * KFR_BLOCKS_PER_THREAD;
        if (nblocks > rows)
            nblocks = rows;
        j.block = (rows + nblocks - 1) / nblocks;
        if (kfr_tier_pending(k)) {
            int64_t fine = inner > 0 ? KFR_SWITCH_TASK_PAIRS / inner : j.block;
            if (fine < KFR_SWITCH_MIN_ROWS)
                fine = KFR_SWITCH_MIN_ROWS;
            if (fine < j.block)
                j.block = fine;
        }
        ntasks = (rows + j.block - 1) / j.block;
    }
    atomic_init(&j.failed, KF_OK);
    for (int e = 0; e < RAN_COUNT; e++) {
        atomic_init(&j.ran_rows[e], 0);
        atomic_init(&j.ran_pairs[e], 0);
    }
    atomic_init(&j.first_cc, INT64_MAX);
    kfr_pool_run(ctx->pool, ntasks, run_block, &j);
    ran_record(k, &j, ntasks);
    int rc = atomic_load(&j.failed);
    if (rc != KF_OK)
        return kfr_error(ctx, rc, "%s: the reference engine failed (%s)%s", who,
                         kf_status_name(rc),
                         rc == KF_ERR_NOMEM ? ": out of memory for its scratch" : "");
    return KF_OK;
}

/* Whether this run goes to the GPU: always for KF_BACKEND_CUDA (prepared by
 * kf_compile); for AUTO when it has KF_AUTO_GPU_PAIRS pairs or more and a
 * GPU can be readied (tried once per kernel; a failure is logged and the
 * kernel stays on the CPU). */
static int use_gpu(kf_kernel *k, int64_t rows, int64_t inner)
{
    if (k->backend == KF_BACKEND_CUDA)
        return 1;
    if (k->backend != KF_BACKEND_AUTO || k->cuda_off || (double)rows * (double)inner < (double)KF_AUTO_GPU_PAIRS)
        return 0;
    kfc_diag d;
    kfc_diag_clear(&d);
    if (kfr_cuda_prepare(k, &d) == KF_OK)
        return 1;
    k->cuda_off = 1;
    kfr_log(k->ctx, KF_LOG_INFO, "backend auto: the GPU is not used (%s); running on the CPU", d.msg);
    return 0;
}

static int run_gpu(kf_kernel *k, int64_t M, int64_t N, const void *const *args, void *out,
                   int64_t *index_out, const kf_ranges *rg, int device_ptrs, void *stream)
{
    kfc_diag d;
    kfc_diag_clear(&d);
    int rc = kfr_cuda_run(k, M, N, args, out, index_out, rg, device_ptrs, stream, &d);
    if (rc != KF_OK)
        return kfr_error_diag(k->ctx, &d);
    int axis = k->has_red ? k->red.axis : k->axis;
    int64_t rows = axis == 1 ? M : N, inner = axis == 1 ? N : M;
    double pairs = rg ? kfr_ranges_pairs(rg, axis) : (double)rows * (double)inner;
    k->stats.run_rows_cuda = rows;
    k->stats.run_pairs_cuda = pairs < 9.2e18 ? (int64_t)pairs : INT64_MAX;
    snprintf(k->ran, sizeof k->ran, "cuda");
    return KF_OK;
}

int kf_run(kf_kernel *k, int64_t M, int64_t N, const void *const *args, int nargs, void *out,
           int64_t *index_out)
{
    if (!k)
        return KF_ERR_ARG; /* no context to hold a message */
    kfr_clear_error(k->ctx);
    int axis = k->has_red ? k->red.axis : k->axis;
    int64_t rows = axis == 1 ? M : N, inner = axis == 1 ? N : M;
    int rc = validate("kf_run", k, M, N, args, nargs, out, index_out, rows);
    if (rc != KF_OK)
        return rc;
    ran_reset(k);
    if (rows == 0)
        return KF_OK;
    if (use_gpu(k, rows, inner))
        return run_gpu(k, M, N, args, out, index_out, NULL, 0, NULL);
    return run_tasks(k, "kf_run", args, out, index_out, rows, inner, NULL, 0);
}

int kf_run_device(kf_kernel *k, int64_t M, int64_t N, const void *const *dargs, int nargs,
                  void *out, int64_t *index_out, void *stream)
{
    static const char who[] = "kf_run_device";
    if (!k)
        return KF_ERR_ARG;
    kfr_clear_error(k->ctx);
    int axis = k->has_red ? k->red.axis : k->axis;
    int64_t rows = axis == 1 ? M : N;
    int rc = validate(who, k, M, N, dargs, nargs, out, index_out, rows);
    if (rc != KF_OK)
        return rc;
    if (k->backend == KF_BACKEND_CPU)
        return kfr_error(k->ctx, KF_ERR_ARG,
                         "%s: the kernel was compiled for the CPU backend; compile it with "
                         "KF_BACKEND_CUDA (or AUTO) to pass device arrays", who);
    kfc_diag d;
    kfc_diag_clear(&d);
    if (kfr_cuda_prepare(k, &d) != KF_OK) {
        if (d.status == KF_ERR_UNSUPPORTED)
            d.status = KF_ERR_DEVICE; /* device arrays without a usable GPU */
        return kfr_error_diag(k->ctx, &d);
    }
    ran_reset(k);
    if (rows == 0)
        return KF_OK;
    return run_gpu(k, M, N, dargs, out, index_out, NULL, 1, stream);
}

int kf_run_ranges(kf_kernel *k, int64_t M, int64_t N, const void *const *args, int nargs,
                  const kf_ranges *rg, void *out, int64_t *index_out)
{
    static const char who[] = "kf_run_ranges";
    if (!k)
        return KF_ERR_ARG;
    kf_ctx *ctx = k->ctx;
    kfr_clear_error(ctx);
    int axis = k->has_red ? k->red.axis : k->axis;
    int64_t rows = axis == 1 ? M : N, inner = axis == 1 ? N : M;
    int rc = validate(who, k, M, N, args, nargs, out, index_out, rows);
    if (rc != KF_OK)
        return rc;
    if (!rg)
        return kfr_error(ctx, KF_ERR_ARG, "%s: rg is NULL, expected a block-sparsity pattern", who);
    rc = kfr_ranges_check(ctx, rg, axis, rows, inner);
    if (rc != KF_OK)
        return rc;
    ran_reset(k);
    if (rows == 0)
        return KF_OK;
    if (use_gpu(k, rows, inner))
        return run_gpu(k, M, N, args, out, index_out, rg, 0, NULL);
    kfr_task *tasks;
    int64_t ntasks;
    /* Finer tasks while cc code may still arrive, as for dense runs. */
    double max_work = kfr_tier_pending(k) ? (double)KFR_SWITCH_TASK_PAIRS : 0;
    rc = kfr_ranges_tasks_fine(ctx, rg, axis, rows, kfr_pool_threads(ctx->pool), max_work,
                               &tasks, &ntasks);
    if (rc != KF_OK)
        return rc;
    rc = run_tasks(k, who, args, out, index_out, rows, inner, tasks, ntasks);
    free(tasks);
    return rc;
}
