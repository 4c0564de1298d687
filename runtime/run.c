/* run.c -- kf_run: validates at the boundary, then splits output rows over the pool. */
#include <stdatomic.h>
#include <stddef.h>

#include "rt.h"

/* About this many blocks of rows per worker: enough to even out uneven
 * blocks (a NaN-heavy or cache-unlucky block) without a per-row task cost. */
#define KFR_BLOCKS_PER_THREAD 4

/* One kf_run as the pool's tasks see it. Read-only during the run except
 * `failed`, the first failing status of the reference engine. */
typedef struct run_job {
    const kf_kernel *k;
    kfk_reduce_fn fn; /* k->fn as loaded once for this call: a swap to cc code meanwhile
                         does not mix two engines within one run */
    const void *const *args;
    void *out;
    int64_t *idx;
    int64_t rows, block;
    int64_t jr[2]; /* the whole inner range {0, inner} */
    atomic_int failed;
} run_job;

static void run_block(void *vp, int64_t t)
{
    run_job *j = vp;
    int64_t r0 = t * j->block;
    int64_t r1 = r0 + j->block < j->rows ? r0 + j->block : j->rows;
    const kf_kernel *k = j->k;
    if (j->fn) {
        j->fn(j->args, r0, r1, j->jr, 1, j->out, j->idx);
        return;
    }
    int rc = kfr_ref_reduce(&k->prog, &k->red, j->args, r0, r1, j->jr, 1, j->out, j->idx);
    if (rc != KF_OK) {
        int expected = KF_OK;
        atomic_compare_exchange_strong(&j->failed, &expected, rc);
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
static int validate(kf_kernel *k, int64_t M, int64_t N, const void *const *args, int nargs,
                    const void *out, const int64_t *index_out, int64_t rows)
{
    kf_ctx *ctx = k->ctx;
    if (!k->has_red)
        return kfr_error(ctx, KF_ERR_ARG,
                         "kf_run: the kernel was compiled without a reduction; it can be "
                         "inspected but not run");
    if (M < 0 || N < 0)
        return kfr_error(ctx, KF_ERR_ARG, "kf_run: M = %lld and N = %lld, expected both >= 0",
                         (long long)M, (long long)N);
    int64_t elem = k->red.dtype == KF_FLOAT64 ? 8 : 4, bytes;
    if (!array_bytes(rows, k->red.valdim, elem, &bytes) ||
        !array_bytes(rows, k->red.idxdim, 8, &bytes))
        return kfr_error(ctx, KF_ERR_ARG, "kf_run: %lld output rows overflow the address space",
                         (long long)rows);
    int want = k->prog.nvars;
    if (nargs != want)
        return kfr_error(ctx, KF_ERR_ARG, "kf_run: nargs is %d, expected %d (kf_kernel_nargs)",
                         nargs, want);
    if (nargs > 0 && !args)
        return kfr_error(ctx, KF_ERR_ARG, "kf_run: args is NULL, expected %d arrays", nargs);
    for (int v = 0; v < nargs; v++) {
        const kfc_var *var = &k->prog.vars[v];
        if (!var->used)
            continue;
        int64_t n = var->cat == KFC_CAT_I ? M : var->cat == KFC_CAT_J ? N : 1;
        if (!array_bytes(n, var->dim, elem, &bytes))
            return kfr_error(ctx, KF_ERR_ARG,
                             "kf_run: variable %d (%s, dim %d) with %lld rows overflows the "
                             "address space",
                             v, cat_name(var->cat), (int)var->dim, (long long)n);
        /* An empty array may be NULL (numpy gives no data pointer for it). */
        if (!args[v] && bytes > 0)
            return kfr_error(ctx, KF_ERR_ARG,
                             "kf_run: args[%d] is NULL, expected the %s of dim %d (%lld values)",
                             v, cat_name(var->cat), (int)var->dim, (long long)(bytes / elem));
    }
    if (!out && rows * k->red.valdim > 0)
        return kfr_error(ctx, KF_ERR_ARG,
                         "kf_run: out is NULL, expected room for %lld x %lld values",
                         (long long)rows, (long long)k->red.valdim);
    if (!index_out && rows * k->red.idxdim > 0)
        return kfr_error(ctx, KF_ERR_ARG,
                         "kf_run: index_out is NULL, expected room for %lld x %lld int64 indices",
                         (long long)rows, (long long)k->red.idxdim);
    return KF_OK;
}

int kf_run(kf_kernel *k, int64_t M, int64_t N, const void *const *args, int nargs, void *out,
           int64_t *index_out)
{
    if (!k)
        return KF_ERR_ARG; /* no context to hold a message */
    kf_ctx *ctx = k->ctx;
    kfr_clear_error(ctx);
    int axis = k->has_red ? k->red.axis : k->axis;
    int64_t rows = axis == 1 ? M : N, inner = axis == 1 ? N : M;
    int rc = validate(k, M, N, args, nargs, out, index_out, rows);
    if (rc != KF_OK)
        return rc;
    if (rows == 0)
        return KF_OK;

    int threads = kfr_pool_threads(ctx->pool);
    int64_t nblocks = (int64_t)threads * KFR_BLOCKS_PER_THREAD;
    if (nblocks > rows)
        nblocks = rows;
    int64_t block = (rows + nblocks - 1) / nblocks;
    run_job j = {.k = k, .fn = atomic_load_explicit(&k->fn, memory_order_acquire), .args = args, .out = out, .idx = index_out, .rows = rows,
                 .block = block, .jr = {0, inner}};
    atomic_init(&j.failed, KF_OK);
    kfr_pool_run(ctx->pool, (rows + block - 1) / block, run_block, &j);
    rc = atomic_load(&j.failed);
    if (rc != KF_OK)
        return kfr_error(ctx, rc, "kf_run: the reference engine failed (%s)%s", kf_status_name(rc),
                         rc == KF_ERR_NOMEM ? ": out of memory for its scratch" : "");
    return KF_OK;
}
