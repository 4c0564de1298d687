/* linop.c -- kf_linop: symmetric operators from kernels and formulas, and
 * their combinations (diag, identity, scale, add, sub, compose), applied to
 * n x b blocks in C order. Combinators hold references to their operands. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/rt.h"
#include "solvers/solvers.h"

double kfs_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

size_t kfs_dsize(kf_dtype dtype)
{
    return dtype == KF_FLOAT64 ? sizeof(double) : sizeof(float);
}

void *kfs_alloc(int64_t count, size_t size)
{
    size_t bytes;
    if (count < 0 || __builtin_mul_overflow((size_t)count, size, &bytes))
        return NULL;
    return malloc(bytes ? bytes : 1);
}

uint64_t kfs_rand(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double kfs_rand_sym(uint64_t *state)
{
    return (double)(kfs_rand(state) >> 11) * 0x1.0p-52 - 1.0;
}

/* splitmix64's state advances by a constant per draw, so a skip is one multiply. */
void kfs_rand_skip(uint64_t *state, int64_t count)
{
    *state += (uint64_t)count * 0x9e3779b97f4a7c15ull;
}

static kf_linop *new_op(kf_ctx *ctx, kfs_kind kind, kf_dtype dtype, int64_t n)
{
    kf_linop *op = calloc(1, sizeof *op);
    if (!op) {
        kfr_error(ctx, KF_ERR_NOMEM, "kf_linop: out of memory");
        return NULL;
    }
    op->refs = 1, op->kind = kind, op->ctx = ctx, op->dtype = dtype, op->n = n, op->nloc = n;
    return op;
}

/* A combination has its (first) operand's rows. */
static void share_rows(kf_linop *op, const kf_linop *like)
{
    op->nloc = like->nloc;
    op->dist = like->dist;
    if (op->dist)
        op->dist->refs++;
}

void kf_linop_free(kf_linop *op)
{
    if (!op || --op->refs > 0)
        return;
    kf_linop_free(op->a);
    kf_linop_free(op->b);
    free(op->d);
    free(op->args);
    free(op->formula);
    free(op->vec_name);
    for (int i = 0; i < op->naliases; i++)
        free(op->aliases[i]);
    free(op->aliases);
    for (int w = 0; w <= KFS_MAX_BLOCK; w++)
        kf_kernel_free(op->kw[w]);
    free(op->xfull);
    kfs_dist_free(op->dist);
    free(op);
}

int64_t kf_linop_size(const kf_linop *op) { return op ? op->n : -1; }
int64_t kf_linop_local_rows(const kf_linop *op) { return op ? op->nloc : -1; }
int64_t kfs_row0(const kf_linop *op) { return op && op->dist ? op->dist->row0 : 0; }
kf_dtype kf_linop_dtype(const kf_linop *op) { return op ? op->dtype : KF_FLOAT64; }
kf_ctx *kf_linop_ctx(const kf_linop *op) { return op ? op->ctx : NULL; }
int64_t kf_linop_matvecs(const kf_linop *op) { return op ? op->matvecs : 0; }
double kf_linop_seconds(const kf_linop *op) { return op ? op->seconds : 0; }
void kf_linop_reset_stats(kf_linop *op)
{
    if (op)
        op->matvecs = 0, op->seconds = 0;
}

int kfs_is_kernel(const kf_linop *op)
{
    return op && (op->kind == KFS_KERNEL || op->kind == KFS_FORMULA);
}

/* Copies the pointer array and the ranges view shared by both kernel kinds. */
static int take_args(kf_linop *op, const void *const *args, int nargs, const kf_ranges *rg)
{
    op->args = calloc((size_t)nargs, sizeof *op->args);
    if (!op->args)
        return kfr_error(op->ctx, KF_ERR_NOMEM, "kf_linop: out of memory");
    for (int v = 0; v < nargs; v++)
        op->args[v] = args ? args[v] : NULL;
    op->nargs = nargs;
    if (rg)
        op->has_rg = 1, op->rg = *rg;
    return KF_OK;
}

/* The checks a kernel must pass to act as an operator in `var`: a Sum whose
 * formula has the dim of the vector, which is a variable of the reduced
 * category. Returns the vector's dim, or 0 with the message set. */
static int64_t check_kernel(kf_ctx *ctx, const char *who, kf_kernel *k, int var, int nargs)
{
    const char *red = kf_kernel_reduction(k);
    if (!red || strcmp(red, "Sum") != 0)
        return kfr_error(ctx, KF_ERR_ARG, "%s: the kernel's reduction is %s, expected Sum", who,
                         red ? red : "none"), 0;
    if (nargs != kf_kernel_nargs(k))
        return kfr_error(ctx, KF_ERR_ARG, "%s: nargs = %d, the kernel has %d variables", who,
                         nargs, kf_kernel_nargs(k)), 0;
    int cat;
    int64_t dim;
    if (var < 0 || kf_kernel_var(k, var, &cat, &dim) != KF_OK || cat < 0)
        return kfr_error(ctx, KF_ERR_ARG, "%s: the formula does not use variable %d", who, var), 0;
    int want = kf_kernel_axis(k) == 1 ? 1 : 0; /* the reduced category */
    if (cat != want)
        return kfr_error(ctx, KF_ERR_ARG,
                         "%s: the vector (variable %d) must be a %s of a Sum over axis %d", who,
                         var, want ? "j-variable (Vj)" : "i-variable (Vi)", kf_kernel_axis(k)), 0;
    if (kf_kernel_formula_dim(k) != dim)
        return kfr_error(ctx, KF_ERR_ARG,
                         "%s: the formula has dim %lld but the vector has dim %lld; a linear "
                         "operator needs F(x, y) * v with the dims of v", who,
                         (long long)kf_kernel_formula_dim(k), (long long)dim), 0;
    return dim;
}

kf_linop *kf_linop_kernel(kf_kernel *k, int var, const void *const *args, int nargs, int64_t n,
                          const kf_ranges *rg)
{
    if (!k)
        return NULL;
    kf_ctx *ctx = k->ctx;
    kfr_clear_error(ctx);
    if (n < 1 || nargs < 1)
        return kfr_error(ctx, KF_ERR_ARG, "kf_linop_kernel: n = %lld, nargs = %d, expected >= 1",
                         (long long)n, nargs), NULL;
    int64_t w = check_kernel(ctx, "kf_linop_kernel", k, var, nargs);
    if (!w)
        return NULL;
    kf_linop *op = new_op(ctx, KFS_KERNEL, kf_kernel_dtype(k), n);
    if (!op)
        return NULL;
    op->k = k, op->var = var, op->width = (int)w;
    if (take_args(op, args, nargs, rg) != KF_OK) {
        kf_linop_free(op);
        return NULL;
    }
    return op;
}

static char *dupstr(const char *s)
{
    size_t len = strlen(s) + 1;
    char *c = malloc(len);
    return c ? memcpy(c, s, len) : NULL;
}

kf_kernel *kfs_formula_kernel(kf_linop *op, int w)
{
    if (w < 1 || w > KFS_MAX_BLOCK) {
        kfr_error(op->ctx, KF_ERR_INTERNAL, "kf_linop: block width %d out of range", w);
        return NULL;
    }
    if (op->kw[w])
        return op->kw[w];
    char vec[160];
    int len = snprintf(vec, sizeof vec, "%s=Vj(%d,%d)", op->vec_name, op->var, w);
    if (len < 0 || (size_t)len >= sizeof vec) {
        kfr_error(op->ctx, KF_ERR_ARG, "kf_linop_formula: the vector's name is too long");
        return NULL;
    }
    const char **al = calloc((size_t)op->naliases + 1, sizeof *al);
    if (!al) {
        kfr_error(op->ctx, KF_ERR_NOMEM, "kf_linop_formula: out of memory");
        return NULL;
    }
    for (int i = 0; i < op->naliases; i++)
        al[i] = op->aliases[i];
    al[op->naliases] = vec;
    kf_kernel *k = kf_compile(op->ctx, op->formula, al, op->naliases + 1, "Sum", 1, op->dtype,
                              &op->copts);
    free(al);
    if (!k)
        return NULL;
    if (!check_kernel(op->ctx, "kf_linop_formula", k, op->var, op->nargs)) {
        kf_kernel_free(k);
        return NULL;
    }
    return op->kw[w] = k;
}

/* kf_linop_formula and kf_linop_formula_dist after their own checks. */
static kf_linop *formula_op(kf_ctx *ctx, const char *formula, const char *const *aliases,
                            int naliases, const char *vec_name, int var, const void *const *args,
                            int nargs, int64_t n, kf_dtype dtype, const kf_compile_opts *opts,
                            const kf_ranges *rg);

kf_linop *kf_linop_formula(kf_ctx *ctx, const char *formula, const char *const *aliases,
                           int naliases, const char *vec_name, int var, const void *const *args,
                           int nargs, int64_t n, kf_dtype dtype, const kf_compile_opts *opts,
                           const kf_ranges *rg)
{
    if (!ctx)
        return NULL;
    kfr_clear_error(ctx);
    if (n < 1)
        return kfr_error(ctx, KF_ERR_ARG, "kf_linop_formula: n = %lld, expected n >= 1",
                         (long long)n), NULL;
    return formula_op(ctx, formula, aliases, naliases, vec_name, var, args, nargs, n, dtype, opts,
                      rg);
}

/* The checks of a kf_dist on this rank alone; KF_OK or KF_ERR_ARG. */
static int check_dist(kf_ctx *ctx, const kf_dist *d)
{
    static const char who[] = "kf_linop_formula_dist";
    if (!d || !d->comm)
        return kfr_error(ctx, KF_ERR_ARG, "%s: dist and dist->comm must not be NULL", who);
    if (d->n < 1 || d->row0 < 0 || d->rows < 0 || d->row0 > d->n - d->rows)
        return kfr_error(ctx, KF_ERR_ARG, "%s: rows [%lld, %lld) of n = %lld: expected n >= 1 "
                         "and 0 <= row0 <= row0 + rows <= n", who, (long long)d->row0,
                         (long long)(d->row0 + d->rows), (long long)d->n);
    if (d->j0 < 0 || d->nj < 0 || d->j0 > d->n - d->nj || d->j0 > d->row0 ||
        d->row0 + d->rows > d->j0 + d->nj)
        return kfr_error(ctx, KF_ERR_ARG, "%s: j rows [%lld, %lld) must lie in [0, %lld) and "
                         "contain the rank's rows [%lld, %lld)", who, (long long)d->j0,
                         (long long)(d->j0 + d->nj), (long long)d->n, (long long)d->row0,
                         (long long)(d->row0 + d->rows));
    return KF_OK;
}

kf_linop *kf_linop_formula_dist(kf_ctx *ctx, const char *formula, const char *const *aliases,
                                int naliases, const char *vec_name, int var,
                                const void *const *args, int nargs, const kf_dist *dist,
                                kf_dtype dtype, const kf_compile_opts *opts, const kf_ranges *rg)
{
    if (!ctx)
        return NULL;
    kfr_clear_error(ctx);
    if (!kf_mpi_available())
        return kfr_error(ctx, KF_ERR_UNSUPPORTED, "kf_linop_formula_dist: this kforge was built "
                         "without MPI (no mpicc or PARPACK at build time)"), NULL;
    if (!dist || !dist->comm) /* nothing to agree with */
        return check_dist(ctx, dist), NULL;
    int rc = check_dist(ctx, dist);
    /* Every rank takes part in the partition check, even one whose own
     * numbers are wrong, so that all of them return the same failure. */
    kfs_dist *d = kfs_dist_new(ctx, dist->comm, dist->n, rc == KF_OK ? dist->row0 : -1,
                               rc == KF_OK ? dist->rows : -1);
    if (!d)
        return NULL;
    kf_linop *op = formula_op(ctx, formula, aliases, naliases, vec_name, var, args, nargs,
                              dist->rows, dtype, opts, rg);
    if (op) {
        op->n = dist->n, op->nloc = dist->rows, op->dist = d;
        op->j0 = dist->j0, op->nj = dist->nj;
    } else {
        kfs_dist_free(d);
    }
    rc = kfs_agree(ctx, d, op ? KF_OK : kf_status_of(ctx));
    if (rc != KF_OK) {
        kf_linop_free(op);
        return NULL;
    }
    return op;
}

static kf_linop *formula_op(kf_ctx *ctx, const char *formula, const char *const *aliases,
                            int naliases, const char *vec_name, int var, const void *const *args,
                            int nargs, int64_t n, kf_dtype dtype, const kf_compile_opts *opts,
                            const kf_ranges *rg)
{
    if (!formula || !vec_name || (naliases > 0 && !aliases) || naliases < 0)
        return kfr_error(ctx, KF_ERR_ARG, "kf_linop_formula: formula, vec_name or aliases is NULL"),
               NULL;
    if (nargs < 1 || var < 0 || var >= nargs)
        return kfr_error(ctx, KF_ERR_ARG,
                         "kf_linop_formula: nargs = %d, var = %d: expected 0 <= var < nargs",
                         nargs, var), NULL;
    if (dtype != KF_FLOAT32 && dtype != KF_FLOAT64)
        return kfr_error(ctx, KF_ERR_ARG, "kf_linop_formula: unknown dtype %d", (int)dtype), NULL;
    kf_linop *op = new_op(ctx, KFS_FORMULA, dtype, n);
    if (!op)
        return NULL;
    op->var = var, op->width = 0;
    if (opts)
        op->copts = *opts;
    else
        kf_compile_opts_init(&op->copts);
    op->copts.formula2 = NULL;
    op->formula = dupstr(formula), op->vec_name = dupstr(vec_name);
    op->aliases = calloc((size_t)naliases + 1, sizeof *op->aliases);
    int oom = !op->formula || !op->vec_name || !op->aliases;
    for (int i = 0; !oom && i < naliases; i++, op->naliases++)
        oom = !aliases[i] || !(op->aliases[i] = dupstr(aliases[i]));
    if (oom) {
        kfr_error(ctx, KF_ERR_NOMEM, "kf_linop_formula: out of memory (or a NULL alias)");
        kf_linop_free(op);
        return NULL;
    }
    if (take_args(op, args, nargs, rg) != KF_OK || !kfs_formula_kernel(op, 1)) {
        kf_linop_free(op);
        return NULL;
    }
    return op;
}

/* The first r with idx[r] >= v (idx ascending, m entries). */
static int64_t lower_bound(const int64_t *idx, int64_t m, int64_t v)
{
    int64_t lo = 0, hi = m;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (idx[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

kf_linop *kfs_formula_subsample(kf_linop *op, const int64_t *idx, int64_t m, void **store,
                                 const kf_ranges *rg)
{
    *store = NULL;
    kf_kernel *k = op->kw[1];
    size_t es = kfs_dsize(op->dtype);
    /* The subsample rows this process holds, on the i side [i0, i1) and the
     * j side [j0, j1): all m for one process; distributed, those of its rows
     * and of its j rows (row idx[r] - off of op's arrays), which keeps the
     * sub-operator's rows inside its j rows as op's are. */
    int64_t i0 = 0, i1 = m, j0 = 0, j1 = m, ioff = 0, joff = 0;
    if (op->dist) {
        ioff = op->dist->row0, joff = op->j0;
        i0 = lower_bound(idx, m, ioff), i1 = lower_bound(idx, m, ioff + op->nloc);
        j0 = lower_bound(idx, m, joff), j1 = lower_bound(idx, m, joff + op->nj);
    }
    int64_t total = 0;
    for (int v = 0; v < op->nargs; v++) {
        int cat;
        int64_t dim;
        if (v != op->var && kf_kernel_var(k, v, &cat, &dim) == KF_OK && (cat == 0 || cat == 1))
            total += dim * (cat == 0 ? i1 - i0 : j1 - j0);
    }
    char *buf = kfs_alloc(total + 1, es);
    const void **args = calloc((size_t)op->nargs, sizeof *args);
    int rc = buf && args ? KF_OK
                         : kfr_error(op->ctx, KF_ERR_NOMEM, "kf_spectral: out of memory for the "
                                     "subsample");
    if (kfs_agree(op->ctx, op->dist, rc) != KF_OK) {
        free(buf), free(args);
        return NULL;
    }
    char *p = buf;
    for (int v = 0; v < op->nargs; v++) {
        int cat;
        int64_t dim;
        args[v] = op->args[v];
        if (v == op->var || kf_kernel_var(k, v, &cat, &dim) != KF_OK || (cat != 0 && cat != 1))
            continue;
        size_t row = (size_t)dim * es;
        int64_t r0 = cat == 0 ? i0 : j0, r1 = cat == 0 ? i1 : j1, off = cat == 0 ? ioff : joff;
        for (int64_t r = r0; r < r1; r++)
            memcpy(p + (size_t)(r - r0) * row,
                   (const char *)op->args[v] + (size_t)(idx[r] - off) * row, row);
        args[v] = p;
        p += (size_t)(r1 - r0) * row;
    }
    kf_linop *sub;
    if (op->dist) {
        kf_dist sd = {.comm = op->dist->comm, .n = m, .row0 = i0, .rows = i1 - i0, .j0 = j0,
                      .nj = j1 - j0};
        sub = kf_linop_formula_dist(op->ctx, op->formula, (const char *const *)op->aliases,
                                    op->naliases, op->vec_name, op->var, args, op->nargs, &sd,
                                    op->dtype, &op->copts, rg);
    } else {
        sub = kf_linop_formula(op->ctx, op->formula, (const char *const *)op->aliases,
                               op->naliases, op->vec_name, op->var, args, op->nargs, m,
                               op->dtype, &op->copts, rg);
    }
    free(args);
    if (!sub)
        free(buf);
    else
        *store = buf;
    return sub;
}

kf_linop *kf_linop_diag(kf_ctx *ctx, kf_dtype dtype, int64_t n, const void *d)
{
    if (!ctx)
        return NULL;
    kfr_clear_error(ctx);
    if (n < 1 || !d || (dtype != KF_FLOAT32 && dtype != KF_FLOAT64))
        return kfr_error(ctx, KF_ERR_ARG, "kf_linop_diag: n = %lld, d %s, dtype %d: expected "
                         "n >= 1, a vector and a dtype", (long long)n, d ? "set" : "NULL",
                         (int)dtype), NULL;
    kf_linop *op = new_op(ctx, KFS_DIAG, dtype, n);
    if (!op)
        return NULL;
    if (!(op->d = kfs_alloc(n, sizeof(double)))) {
        kf_linop_free(op);
        return kfr_error(ctx, KF_ERR_NOMEM, "kf_linop_diag: out of memory"), NULL;
    }
    for (int64_t i = 0; i < n; i++)
        op->d[i] = kfs_get(dtype, d, i);
    return op;
}

kf_linop *kfs_diag_like(const kf_linop *like, const void *d)
{
    if (!like->dist)
        return kf_linop_diag(like->ctx, like->dtype, like->n, d);
    kf_linop *op = new_op(like->ctx, KFS_DIAG, like->dtype, like->n);
    if (!op)
        return NULL;
    share_rows(op, like);
    if (!(op->d = kfs_alloc(op->nloc, sizeof(double)))) {
        kf_linop_free(op);
        return kfr_error(like->ctx, KF_ERR_NOMEM, "kf_linop_diag: out of memory"), NULL;
    }
    for (int64_t i = 0; i < op->nloc; i++)
        op->d[i] = kfs_get(like->dtype, d, i);
    return op;
}

kf_linop *kfs_identity_like(const kf_linop *like)
{
    if (!like->dist)
        return kf_linop_identity(like->ctx, like->dtype, like->n);
    kf_linop *op = new_op(like->ctx, KFS_IDENTITY, like->dtype, like->n);
    if (op)
        share_rows(op, like);
    return op;
}

kf_linop *kf_linop_identity(kf_ctx *ctx, kf_dtype dtype, int64_t n)
{
    if (!ctx)
        return NULL;
    kfr_clear_error(ctx);
    if (n < 1 || (dtype != KF_FLOAT32 && dtype != KF_FLOAT64))
        return kfr_error(ctx, KF_ERR_ARG, "kf_linop_identity: n = %lld, dtype %d: expected n >= 1 "
                         "and a dtype", (long long)n, (int)dtype), NULL;
    return new_op(ctx, KFS_IDENTITY, dtype, n);
}

kf_linop *kf_linop_scale(kf_linop *a, double s)
{
    if (!a)
        return NULL;
    kfr_clear_error(a->ctx);
    if (!isfinite(s))
        return kfr_error(a->ctx, KF_ERR_ARG, "kf_linop_scale: the factor is %g", s), NULL;
    kf_linop *op = new_op(a->ctx, KFS_SCALE, a->dtype, a->n);
    if (op)
        op->a = a, a->refs++, op->s = s, share_rows(op, a);
    return op;
}

static kf_linop *binary(kf_linop *a, kf_linop *b, kfs_kind kind, const char *who)
{
    if (!a || !b) {
        if (a || b)
            kfr_error((a ? a : b)->ctx, KF_ERR_ARG, "%s: an operand is NULL", who);
        return NULL;
    }
    kfr_clear_error(a->ctx);
    if (a->n != b->n || a->dtype != b->dtype)
        return kfr_error(a->ctx, KF_ERR_ARG,
                         "%s: operands of size %lld (%s) and %lld (%s): sizes and dtypes must agree",
                         who, (long long)a->n, kf_dtype_name(a->dtype),
                         (long long)b->n, kf_dtype_name(b->dtype)), NULL;
    /* One partition object per kernel operator: its combinations share it. */
    if (a->dist != b->dist)
        return kfr_error(a->ctx, KF_ERR_ARG, "%s: the operands are not distributed over the same "
                         "rows (combine a distributed operator only with what is built from it)",
                         who), NULL;
    kf_linop *op = new_op(a->ctx, kind, a->dtype, a->n);
    if (op)
        op->a = a, op->b = b, a->refs++, b->refs++, share_rows(op, a);
    return op;
}

kf_linop *kf_linop_add(kf_linop *a, kf_linop *b) { return binary(a, b, KFS_ADD, "kf_linop_add"); }
kf_linop *kf_linop_sub(kf_linop *a, kf_linop *b) { return binary(a, b, KFS_SUB, "kf_linop_sub"); }
kf_linop *kf_linop_compose(kf_linop *a, kf_linop *b)
{
    return binary(a, b, KFS_COMPOSE, "kf_linop_compose");
}

/* ---- apply ---- */

/* One kernel run for a block of exactly `w` columns stored contiguously.
 * Distributed: the ranks' rows of x are gathered into the whole block first
 * (the one exchange of a matvec), and the rank's rows against its j rows
 * computed. */
static int run_kernel(kf_linop *op, kf_kernel *k, const void *x, void *y, int64_t w)
{
    int64_t M = op->n, N = op->n;
    if (op->dist) {
        size_t es = kfs_dsize(op->dtype);
        if (op->xcols < w) {
            void *t = kfs_alloc(op->n * w, es);
            if (!t)
                return kfr_error(op->ctx, KF_ERR_NOMEM, "kf_linop_apply: out of memory for the "
                                 "gathered %lld x %lld block", (long long)op->n, (long long)w);
            free(op->xfull);
            op->xfull = t, op->xcols = w;
        }
        int rc = kfs_comm_allgatherv(op->dist->comm, x, op->xfull, op->dist->counts,
                                     op->dist->displs, (size_t)w * es);
        if (rc != KF_OK)
            return kfr_error(op->ctx, rc, "kf_linop_apply: the exchange of the vector failed");
        x = (const char *)op->xfull + (size_t)(op->j0 * w) * es;
        M = op->nloc, N = op->nj;
        if (M == 0)
            return KF_OK;
    }
    op->args[op->var] = x;
    int rc = op->has_rg ? kf_run_ranges(k, M, N, op->args, op->nargs, &op->rg, y, NULL)
                        : kf_run(k, M, N, op->args, op->nargs, y, NULL);
    op->args[op->var] = NULL;
    return rc;
}

/* Columns [c0, c0 + w) of the n x b block x into the n x w block t. */
static void gather(size_t es, int64_t n, const char *x, int64_t b, int64_t c0, int64_t w, char *t)
{
    for (int64_t i = 0; i < n; i++)
        memcpy(t + (size_t)(i * w) * es, x + (size_t)(i * b + c0) * es, (size_t)w * es);
}
static void scatter(size_t es, int64_t n, const char *t, int64_t b, int64_t c0, int64_t w, char *y)
{
    for (int64_t i = 0; i < n; i++)
        memcpy(y + (size_t)(i * b + c0) * es, t + (size_t)(i * w) * es, (size_t)w * es);
}

static int apply_kernel(kf_linop *op, const void *x, void *y, int64_t b)
{
    int64_t chunk = op->kind == KFS_KERNEL ? op->width : b < KFS_MAX_BLOCK ? b : KFS_MAX_BLOCK;
    if (op->kind == KFS_KERNEL && b != op->width && op->width != 1)
        return kfr_error(op->ctx, KF_ERR_ARG,
                         "kf_linop_apply: a block of %lld columns for a kernel operator of width "
                         "%d (use a kernel whose vector has dim %lld, or kf_linop_formula)",
                         (long long)b, op->width, (long long)b);
    if (chunk == b) {
        kf_kernel *k = op->kind == KFS_KERNEL ? op->k : kfs_formula_kernel(op, (int)b);
        return k ? run_kernel(op, k, x, y, b) : kf_status_of(op->ctx);
    }
    size_t es = kfs_dsize(op->dtype);
    char *tx = kfs_alloc(op->nloc * chunk * 2, es);
    if (!tx)
        return kfr_error(op->ctx, KF_ERR_NOMEM, "kf_linop_apply: out of memory");
    char *ty = tx + (size_t)(op->nloc * chunk) * es;
    int rc = KF_OK;
    for (int64_t c0 = 0; c0 < b && rc == KF_OK; c0 += chunk) {
        int64_t w = b - c0 < chunk ? b - c0 : chunk;
        kf_kernel *k = op->kind == KFS_KERNEL ? op->k : kfs_formula_kernel(op, (int)w);
        if (!k) {
            rc = kf_status_of(op->ctx);
            break;
        }
        gather(es, op->nloc, x, b, c0, w, tx);
        if ((rc = run_kernel(op, k, tx, ty, w)) == KF_OK)
            scatter(es, op->nloc, ty, b, c0, w, y);
    }
    free(tx);
    return rc;
}

static int apply(kf_linop *op, const void *x, void *y, int64_t b);

/* y = a x (op) b x for ADD and SUB, through one temporary block. */
static int apply_sum(kf_linop *op, const void *x, void *y, int64_t b)
{
    int64_t cnt = op->nloc * b;
    void *t = kfs_alloc(cnt, kfs_dsize(op->dtype));
    if (!t)
        return kfr_error(op->ctx, KF_ERR_NOMEM, "kf_linop_apply: out of memory");
    int rc = apply(op->a, x, y, b);
    if (rc == KF_OK)
        rc = apply(op->b, x, t, b);
    if (rc == KF_OK) {
        double sg = op->kind == KFS_SUB ? -1.0 : 1.0;
        if (op->dtype == KF_FLOAT64) {
            double *yy = y;
            const double *tt = t;
            for (int64_t i = 0; i < cnt; i++)
                yy[i] += sg * tt[i];
        } else {
            float *yy = y;
            const float *tt = t;
            for (int64_t i = 0; i < cnt; i++)
                yy[i] = (float)((double)yy[i] + sg * (double)tt[i]);
        }
    }
    free(t);
    return rc;
}

static int apply(kf_linop *op, const void *x, void *y, int64_t b)
{
    double t0 = kfs_now();
    int64_t cnt = op->nloc * b;
    int rc = KF_OK;
    switch (op->kind) {
    case KFS_KERNEL:
    case KFS_FORMULA:
        rc = apply_kernel(op, x, y, b);
        break;
    case KFS_IDENTITY:
        if (x != y)
            memcpy(y, x, (size_t)cnt * kfs_dsize(op->dtype));
        break;
    case KFS_DIAG:
        for (int64_t i = 0; i < op->nloc; i++)
            for (int64_t c = 0; c < b; c++)
                kfs_set(op->dtype, y, i * b + c, op->d[i] * kfs_get(op->dtype, x, i * b + c));
        break;
    case KFS_SCALE:
        if ((rc = apply(op->a, x, y, b)) == KF_OK)
            for (int64_t i = 0; i < cnt; i++)
                kfs_set(op->dtype, y, i, op->s * kfs_get(op->dtype, y, i));
        break;
    case KFS_ADD:
    case KFS_SUB:
        rc = apply_sum(op, x, y, b);
        break;
    case KFS_COMPOSE: {
        void *t = kfs_alloc(cnt, kfs_dsize(op->dtype));
        if (!t)
            return kfr_error(op->ctx, KF_ERR_NOMEM, "kf_linop_apply: out of memory");
        rc = apply(op->b, x, t, b);
        if (rc == KF_OK)
            rc = apply(op->a, t, y, b);
        free(t);
        break;
    }
    }
    op->matvecs += b;
    op->seconds += kfs_now() - t0;
    return rc;
}

int kf_linop_apply(kf_linop *op, const void *x, void *y, int64_t b)
{
    if (!op)
        return KF_ERR_ARG;
    kfr_clear_error(op->ctx);
    if (!x || !y || b < 1)
        return kfr_error(op->ctx, KF_ERR_ARG, "kf_linop_apply: x %s, y %s, b = %lld: expected two "
                         "blocks and b >= 1", x ? "set" : "NULL", y ? "set" : "NULL", (long long)b);
    int64_t cnt;
    if (__builtin_mul_overflow(op->n, b, &cnt) || (uint64_t)cnt > SIZE_MAX / 8)
        return kfr_error(op->ctx, KF_ERR_ARG, "kf_linop_apply: a %lld x %lld block is too large",
                         (long long)op->n, (long long)b);
    /* Distributed: the arguments are the same on every rank (no exchange
     * can be skipped), and a failure on one rank is every rank's. */
    return kfs_agree(op->ctx, op->dist, apply(op, x, y, b));
}

/* ---- the diagonal ---- */

/* K_ii of a kernel operator: the Sum over the single pair (i, i), with the
 * vector 1, as one block-sparse run whose i-cluster k is row k and whose
 * reduced range is [k, k+1). Both triples are that, so either axis works. */
static int kernel_diagonal(kf_linop *op, double *d)
{
    /* Distributed: local row i is global row0 + i, which is j row
     * row0 + i - j0 of the rank's j side (check_dist keeps it there). */
    int64_t n = op->nloc, off = op->dist ? op->dist->row0 - op->j0 : 0;
    int64_t nj = op->dist ? op->nj : n;
    int w = op->kind == KFS_KERNEL ? op->width : 1;
    kf_kernel *k = op->kind == KFS_KERNEL ? op->k : kfs_formula_kernel(op, 1);
    if (!k)
        return kf_status_of(op->ctx);
    size_t es = kfs_dsize(op->dtype);
    int64_t *rr = kfs_alloc(5 * n + 1, sizeof(int64_t));
    char *ones = kfs_alloc((nj + n) * w + 1, es);
    if (!rr || !ones) {
        free(rr), free(ones);
        return kfr_error(op->ctx, KF_ERR_NOMEM, "kf_linop_diagonal: out of memory");
    }
    int64_t *sl = rr + 2 * n, *rj = rr + 3 * n;
    for (int64_t i = 0; i < n; i++) {
        rr[2 * i] = i, rr[2 * i + 1] = i + 1, sl[i] = i + 1;
        rj[2 * i] = i + off, rj[2 * i + 1] = i + off + 1;
    }
    for (int64_t i = 0; i < nj * w; i++)
        kfs_set(op->dtype, ones, i, 1.0);
    char *out = ones + (size_t)(nj * w) * es;
    kf_ranges rg = {.nci = n, .ranges_i = rr, .slices_i = sl, .nredj = n, .redranges_j = rj,
                    .ncj = n, .ranges_j = rj, .slices_j = sl, .nredi = n, .redranges_i = rr};
    op->args[op->var] = ones;
    int rc = n > 0 ? kf_run_ranges(k, n, nj, op->args, op->nargs, &rg, out, NULL) : KF_OK;
    op->args[op->var] = NULL;
    if (rc == KF_OK)
        for (int64_t i = 0; i < n; i++)
            d[i] = kfs_get(op->dtype, out, i * w);
    free(rr), free(ones);
    return rc;
}

static int diagonal(kf_linop *op, double *d)
{
    int64_t n = op->nloc;
    int rc = KF_OK;
    switch (op->kind) {
    case KFS_KERNEL:
    case KFS_FORMULA:
        return kernel_diagonal(op, d);
    case KFS_IDENTITY:
        for (int64_t i = 0; i < n; i++)
            d[i] = 1;
        return KF_OK;
    case KFS_DIAG:
        memcpy(d, op->d, (size_t)n * sizeof *d);
        return KF_OK;
    case KFS_SCALE:
        if ((rc = diagonal(op->a, d)) == KF_OK)
            for (int64_t i = 0; i < n; i++)
                d[i] *= op->s;
        return rc;
    case KFS_ADD:
    case KFS_SUB:
    case KFS_COMPOSE: {
        if (op->kind == KFS_COMPOSE && op->a->kind != KFS_DIAG && op->b->kind != KFS_DIAG &&
            op->a->kind != KFS_IDENTITY && op->b->kind != KFS_IDENTITY)
            return kfr_error(op->ctx, KF_ERR_UNSUPPORTED,
                             "kf_linop_diagonal: the diagonal of a product needs a diagonal factor");
        double *t = kfs_alloc(n, sizeof *t);
        if (!t)
            return kfr_error(op->ctx, KF_ERR_NOMEM, "kf_linop_diagonal: out of memory");
        if ((rc = diagonal(op->a, d)) == KF_OK && (rc = diagonal(op->b, t)) == KF_OK)
            for (int64_t i = 0; i < n; i++)
                d[i] = op->kind == KFS_ADD ? d[i] + t[i] : op->kind == KFS_SUB ? d[i] - t[i]
                                                                               : d[i] * t[i];
        free(t);
        return rc;
    }
    }
    return KF_ERR_INTERNAL;
}

int kf_linop_diagonal(kf_linop *op, void *d)
{
    if (!op)
        return KF_ERR_ARG;
    kfr_clear_error(op->ctx);
    if (!d)
        return kfr_error(op->ctx, KF_ERR_ARG, "kf_linop_diagonal: d is NULL");
    double *t = kfs_alloc(op->nloc, sizeof *t);
    if (!t)
        return kfr_error(op->ctx, KF_ERR_NOMEM, "kf_linop_diagonal: out of memory");
    int rc = diagonal(op, t);
    if (rc == KF_OK)
        for (int64_t i = 0; i < op->nloc; i++)
            kfs_set(op->dtype, d, i, t[i]);
    free(t);
    return kfs_agree(op->ctx, op->dist, rc);
}
