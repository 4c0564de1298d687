/*
 * compile.c -- kf_compile, the pass driver, and the kernel's introspection.
 *
 *   formula, formula2, aliases (only read during the call, never kept)
 *        |
 *     parse      kfc_parse        text -> node array, byte offsets kept
 *     check      kfc_check        dims, categories, arity, variable table; derivative
 *                                 operators expanded (compiler/autodiff.c)
 *     simplify   kfc_simplify     constant folding, CSE, compaction
 *     print      kfc_print        canonical forms of formula and formula2
 *     red_setup  kfc_red_setup    reduction spec and output dims (skipped without a reduction)
 *     verify     kfc_verify       the IR check every emitter relies on (compiler/verify.c)
 *     emit       kfc_emit_c       C source of the whole kernel for libtcc
 *                                 (kfc_emit_c_formula without a reduction)
 *     cache      kfr_tier_lookup  auto/cc: the key, then the in-process table and the
 *                                 disk cache (runtime/jit/tiers.c, runtime/cache/)
 *     emit_opt   kfr_tier_emit    on a miss: kfc_emit_c_opt, the optimizing tier's C
 *     jit        kfr_tier_jit     libtcc in memory (tcc, and auto on a miss); the cc
 *                                 build on a miss (cc: now; auto: in the background)
 *                                 (cache, emit_opt and jit are skipped for the
 *                                 reference engine, without a reduction, and for the
 *                                 CUDA backend)
 *     cuda       kfr_cuda_prepare KF_BACKEND_CUDA: the device, kfc_emit_cuda (timed as
 *                                 emit_cuda_s), NVRTC or the cache, the module
 *                                 (runtime/cuda/cuda_run.c)
 *        |
 *   kf_kernel: program + reduction + source + entry point
 *
 * Each pass is one row of `passes` below; with kf_compile_opts.dump the node
 * array is logged after every pass at KF_LOG_DEBUG, and every pass is timed.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compiler/base/names.h"
#include "runtime/cuda/cuda_run.h"
#include "runtime/rt.h"

/* Everything one compile needs; passes read the inputs and fill k. */
typedef struct job {
    kf_ctx *ctx;
    kf_kernel *k;
    const char *formula;
    const char *formula2;
    const char *const *aliases;
    int naliases;
    const char *reduction; /* NULL: inspection only */
    int axis;
    kf_dtype dtype;
    const kf_compile_opts *o;
    kfc_diag d;
} job;

static int pass_parse(job *j)
{
    return kfc_parse(&j->k->prog, j->formula, j->formula2, j->aliases, j->naliases, &j->d);
}

static int pass_check(job *j)
{
    return kfc_check(&j->k->prog, j->formula, j->formula2, j->aliases, j->naliases, &j->d);
}

static int pass_simplify(job *j)
{
    return kfc_simplify(&j->k->prog, &j->d);
}

static int pass_print(job *j)
{
    kf_kernel *k = j->k;
    k->canon = kfc_print(&k->prog, k->prog.root);
    if (k->canon && k->prog.root2 >= 0)
        k->canon2 = kfc_print(&k->prog, k->prog.root2);
    if (!k->canon || (k->prog.root2 >= 0 && !k->canon2))
        return kfc_diag_set(&j->d, KF_ERR_NOMEM, -1, -1, "out of memory");
    return KF_OK;
}

static int pass_red_setup(job *j)
{
    if (!j->reduction)
        return KF_OK;
    int rc = kfc_red_setup(&j->k->red, &j->k->prog, j->reduction, j->axis, j->dtype, j->o->k,
                           j->o->sum_scheme, &j->d);
    j->k->has_red = rc == KF_OK;
    return rc;
}

static int pass_emit(job *j)
{
    kf_kernel *k = j->k;
    kfc_diag_clear(&j->d);
    k->source = k->has_red ? kfc_emit_c(&k->prog, &k->red, &j->d)
                           : kfc_emit_c_formula(&k->prog, j->dtype, &j->d);
    if (k->source)
        return KF_OK;
    if (j->d.status == KF_OK)
        kfc_diag_set(&j->d, KF_ERR_NOMEM, -1, -1, "out of memory");
    return j->d.status;
}

static int pass_verify(job *j)
{
    return kfc_verify(&j->k->prog, j->k->has_red ? &j->k->red : NULL, &j->d);
}

/* The CPU tiers; a CUDA-only kernel builds no CPU code. */
static int pass_cache(job *j)
{
    return j->k->backend == KF_BACKEND_CUDA ? KF_OK : kfr_tier_lookup(j->k, &j->d);
}

static int pass_emit_opt(job *j)
{
    return j->k->backend == KF_BACKEND_CUDA ? KF_OK : kfr_tier_emit(j->k, &j->d);
}

static int pass_jit(job *j)
{
    return j->k->backend == KF_BACKEND_CUDA ? KF_OK : kfr_tier_jit(j->k, &j->d);
}

/* KF_BACKEND_CUDA: the GPU now, so a missing one is kf_compile's error.
 * (AUTO waits for a run big enough: most machines have no GPU.) */
static int pass_cuda(job *j)
{
    kf_kernel *k = j->k;
    if (k->backend != KF_BACKEND_CUDA || !k->has_red)
        return KF_OK;
    int rc = kfr_cuda_prepare(k, &j->d);
    if (rc == KF_ERR_UNSUPPORTED) /* no driver, device or NVRTC: the GPU asked for is missing */
        rc = j->d.status = KF_ERR_DEVICE;
    return rc;
}

/* Each pass and the kf_compile_stats field its time adds to. */
#define STAT(f) offsetof(kf_compile_stats, f)
static const struct pass {
    const char *name;
    int (*run)(job *j);
    size_t stat;
} passes[] = {
    {"parse", pass_parse, STAT(parse_s)},
    {"check", pass_check, STAT(check_s)},
    {"simplify", pass_simplify, STAT(simplify_s)},
    {"print", pass_print, STAT(simplify_s)},
    {"red_setup", pass_red_setup, STAT(check_s)},
    {"verify", pass_verify, STAT(verify_s)},
    {"emit", pass_emit, STAT(emit_s)},
    {"cache", pass_cache, STAT(cache_s)},
    {"emit_opt", pass_emit_opt, STAT(emit_opt_s)},
    {"jit", pass_jit, STAT(jit_s)},
    {"cuda", pass_cuda, STAT(jit_s)}, /* less emit_cuda_s, moved out below */
};
#undef STAT

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static int debug_logging(const kf_ctx *ctx)
{
    return ctx->opt.log && ctx->opt.verbose >= KF_LOG_DEBUG;
}

/* The engine: opts->jit; $KFORGE_JIT (an empty value counts as unset) decides
 * only when that is KF_JIT_AUTO, so an explicit choice (API or --jit) wins.
 * A bad value is an error even then, so a typo never goes unnoticed.
 * Returns KF_OK or KF_ERR_ARG (message set). */
static int resolve_engine(kf_ctx *ctx, kf_jit requested, kf_jit *engine)
{
    const char *env = getenv("KFORGE_JIT");
    if (env && *env) {
        kf_jit from_env;
        /* The message's order (cc before reference) is older than the table's: kept. */
        if (kf_jit_parse(env, &from_env) != KF_OK)
            return kfr_error(ctx, KF_ERR_ARG,
                             "KFORGE_JIT='%.40s%s' is not one of auto, tcc, cc, reference", env,
                             strlen(env) > 40 ? "..." : "");
        if (requested == KF_JIT_AUTO)
            requested = from_env;
    }
    *engine = requested;
    return KF_OK;
}

/* The backend and device: opts, unless AUTO / 0 and $KFORGE_BACKEND /
 * $KFORGE_DEVICE say otherwise (empty values count as unset; bad ones are
 * errors, as for $KFORGE_JIT). KF_OK or KF_ERR_ARG (message set). */
static int resolve_backend(kf_ctx *ctx, const kf_compile_opts *o, kf_backend *backend, int *device)
{
    *backend = o->backend;
    *device = o->device;
    const char *env = getenv("KFORGE_BACKEND");
    if (env && *env) {
        kf_backend b;
        if (kf_backend_parse(env, &b) != KF_OK) {
            char valid[64];
            kfc_names_join(KFC_NAMES_BACKEND, ", ", valid, sizeof valid);
            return kfr_error(ctx, KF_ERR_ARG, "KFORGE_BACKEND='%.40s%s' is not one of %s", env,
                             strlen(env) > 40 ? "..." : "", valid);
        }
        if (*backend == KF_BACKEND_AUTO)
            *backend = b;
    }
    env = getenv("KFORGE_DEVICE");
    if (env && *env) {
        char *end;
        long v = strtol(env, &end, 10);
        if (*end || end == env || v < 0 || v > 1023 || env[0] == '+' || env[0] == ' ')
            return kfr_error(ctx, KF_ERR_ARG, "KFORGE_DEVICE='%.40s%s' is not a device ordinal 0..1023",
                             env, strlen(env) > 40 ? "..." : "");
        if (*device == 0)
            *device = (int)v;
    }
    return KF_OK;
}

/* Boundary checks of kf_compile's arguments (STYLE.md point 9). */
static int check_args(kf_ctx *ctx, const char *formula, const char *const *aliases, int naliases,
                      int axis, kf_dtype dtype, const kf_compile_opts *o)
{
    if (!formula)
        return kfr_error(ctx, KF_ERR_ARG, "kf_compile: formula is NULL");
    if (naliases < 0)
        return kfr_error(ctx, KF_ERR_ARG, "kf_compile: naliases is %d, expected >= 0", naliases);
    if (naliases > KFC_MAX_ALIASES)
        return kfr_error(ctx, KF_ERR_LIMIT, "kf_compile: %d aliases, at most %d are allowed",
                         naliases, KFC_MAX_ALIASES);
    if (naliases > 0 && !aliases)
        return kfr_error(ctx, KF_ERR_ARG, "kf_compile: aliases is NULL but naliases is %d",
                         naliases);
    for (int a = 0; a < naliases; a++)
        if (!aliases[a])
            return kfr_error(ctx, KF_ERR_ARG, "kf_compile: alias %d is NULL", a);
    if (axis != 0 && axis != 1)
        return kfr_error(ctx, KF_ERR_ARG,
                         "kf_compile: axis is %d, expected 0 (reduce over i) or 1 (over j)", axis);
    if ((int)dtype != KF_FLOAT32 && (int)dtype != KF_FLOAT64)
        return kfr_error(ctx, KF_ERR_ARG,
                         "kf_compile: dtype is %d, expected KF_FLOAT32 or KF_FLOAT64", (int)dtype);
    if ((int)o->sum_scheme < KF_SUM_AUTO || (int)o->sum_scheme > KF_SUM_KAHAN)
        return kfr_error(ctx, KF_ERR_ARG, "kf_compile: sum_scheme is %d, expected 0..4",
                         (int)o->sum_scheme);
    if ((int)o->jit < KF_JIT_AUTO || (int)o->jit > KF_JIT_CC)
        return kfr_error(ctx, KF_ERR_ARG, "kf_compile: jit is %d, expected 0..3", (int)o->jit);
    if ((int)o->backend < KF_BACKEND_AUTO || (int)o->backend > KF_BACKEND_CUDA)
        return kfr_error(ctx, KF_ERR_ARG, "kf_compile: backend is %d, expected 0..2", (int)o->backend);
    if (o->device < 0 || o->device > 1023)
        return kfr_error(ctx, KF_ERR_ARG, "kf_compile: device is %d, expected 0..1023", o->device);
    return KF_OK;
}

kf_kernel *kf_compile(kf_ctx *ctx, const char *formula, const char *const *aliases, int naliases,
                      const char *reduction, int axis, kf_dtype dtype, const kf_compile_opts *opts)
{
    if (!ctx)
        return NULL;
    kfr_clear_error(ctx);
    kf_compile_opts defaults;
    kf_compile_opts_init(&defaults);
    const kf_compile_opts *o = opts ? opts : &defaults;
    if (check_args(ctx, formula, aliases, naliases, axis, dtype, o) != KF_OK)
        return NULL;
    kf_jit engine = KF_JIT_TCC;
    kf_backend backend;
    int device;
    if (resolve_engine(ctx, o->jit, &engine) != KF_OK || resolve_backend(ctx, o, &backend, &device) != KF_OK)
        return NULL;

    kf_kernel *k = calloc(1, sizeof *k);
    if (!k) {
        kfr_error(ctx, KF_ERR_NOMEM, "out of memory");
        return NULL;
    }
    k->ctx = ctx;
    k->engine = engine;
    /* The reference engine is the oracle: AUTO never moves it to the GPU. */
    k->backend = backend == KF_BACKEND_AUTO && engine == KF_JIT_REFERENCE ? KF_BACKEND_CPU : backend;
    k->device = device;
    k->stats.run_first_cc_task = -1; /* no run yet, so no task ran cc code */
    k->axis = axis;
    k->dtype = dtype;
    kfc_prog_init(&k->prog);
    job j = {ctx, k, formula, o->formula2, aliases, naliases, reduction, axis, dtype, o, {0}};
    kfc_diag_clear(&j.d);

    int dump = o->dump && debug_logging(ctx);
    double t_start = now_ms();
    for (size_t p = 0; p < sizeof passes / sizeof passes[0]; p++) {
        double t0 = now_ms(), ec0 = k->stats.emit_cuda_s;
        int rc = passes[p].run(&j);
        if (rc != KF_OK) {
            if (j.d.status == KF_OK) /* a pass that forgot its diagnostic */
                kfc_diag_set(&j.d, rc, -1, -1, "%s pass failed without a message", passes[p].name);
            kfr_error_diag(ctx, &j.d);
            kf_kernel_free(k);
            return NULL;
        }
        double ms = now_ms() - t0;
        /* A pass that times a part of itself into another field (cuda:
         * emit_cuda_s) has that part taken out of its own. */
        *(double *)((char *)&k->stats + passes[p].stat) += ms * 1e-3 - (k->stats.emit_cuda_s - ec0);
        kfr_log(ctx, KF_LOG_DEBUG, "pass %s: %.3f ms", passes[p].name, ms);
        if (dump) {
            char *text = kfc_dump(&k->prog);
            kfr_log(ctx, KF_LOG_DEBUG, "after %s:\n%s", passes[p].name,
                    text ? text : "(out of memory for the dump)");
            free(text);
        }
    }
    k->stats.total_s = (now_ms() - t_start) * 1e-3;
    /* What the cache did, and for a miss where the cc code is (AUTO: on its way). */
    static const char *const outcome[] = {"", ", cache hit", ", cache miss", ", no disk cache"};
    int c = k->stats.cache >= 0 && k->stats.cache <= KF_CACHE_DISABLED ? k->stats.cache : 0;
    const char *cc = c < KF_CACHE_MISS ? ""
                     : k->engine == KF_JIT_AUTO ? ": building cc code in the background"
                                                : ": cc code built";
    kfr_log(ctx, KF_LOG_INFO, "compiled %.200s%s (%s, %s%s%s) in %.3f ms", k->canon,
            strlen(k->canon) > 200 ? "..." : "",
            k->has_red ? kfc_red_info[k->red.id].name : "no reduction", kf_kernel_engine(k),
            outcome[c], cc,
            k->stats.total_s * 1e3);
    return k;
}

kfk_slot kfr_kernel_slot(kf_kernel *k)
{
    /* Acquire: pairs with the builder's release store, so the cc object's
     * code and data are visible to the task that calls it. */
    kfk_reduce_fn fn = atomic_load_explicit(&k->fn, memory_order_acquire);
    /* No generated code (the reference engine, or a CPU run of a kernel that
     * has none): the oracle fills the slot, as it always did. */
    if (k->engine == KF_JIT_REFERENCE || !fn)
        return (kfk_slot){.call = kfk_ref_slot_call, .prog = &k->prog, .red = &k->red};
    return (kfk_slot){.call = kfk_slot_generated, .fn = fn};
}

void kf_kernel_free(kf_kernel *k)
{
    if (!k)
        return;
    /* The builder first: it may still be about to swap k->fn. */
    kfr_tier_free(k);
    kfr_cuda_free(k);
    kfr_tcc_free(k->tcc);
    kfc_prog_free(&k->prog);
    free(k->canon);
    free(k->canon2);
    free(k->source);
    free(k);
}

/* ---- introspection: reads the kernel only, never the context's error ---- */

int kf_kernel_nargs(const kf_kernel *k)
{
    return k ? k->prog.nvars : 0;
}

int kf_kernel_var(const kf_kernel *k, int v, int *cat, int64_t *dim)
{
    if (cat)
        *cat = -1;
    if (dim)
        *dim = 0;
    if (!k || v < 0 || v >= k->prog.nvars)
        return KF_ERR_ARG;
    const kfc_var *var = &k->prog.vars[v];
    if (var->used) {
        if (cat)
            *cat = var->cat;
        if (dim)
            *dim = var->dim;
    }
    return KF_OK;
}

int64_t kf_kernel_out_dim(const kf_kernel *k)
{
    return k && k->has_red ? k->red.valdim : 0;
}

int64_t kf_kernel_index_dim(const kf_kernel *k)
{
    return k && k->has_red ? k->red.idxdim : 0;
}

int64_t kf_kernel_formula_dim(const kf_kernel *k)
{
    return k && k->prog.root >= 0 ? k->prog.nodes[k->prog.root].dim : 0;
}

int kf_kernel_axis(const kf_kernel *k)
{
    return k ? k->axis : -1;
}

kf_dtype kf_kernel_dtype(const kf_kernel *k)
{
    return k ? k->dtype : KF_FLOAT32;
}

const char *kf_kernel_reduction(const kf_kernel *k)
{
    return k && k->has_red ? kfc_red_info[k->red.id].name : NULL;
}

const char *kf_kernel_canonical(const kf_kernel *k)
{
    return k ? k->canon : NULL;
}

const char *kf_kernel_canonical2(const kf_kernel *k)
{
    return k ? k->canon2 : NULL;
}

const char *kf_kernel_source(const kf_kernel *k)
{
    return k ? k->source : NULL;
}

const char *kf_kernel_engine(const kf_kernel *k)
{
    if (!k)
        return NULL;
    if (k->ran[0])
        return k->ran;
    if (k->backend == KF_BACKEND_CUDA)
        return "cuda";
    if (k->engine == KF_JIT_REFERENCE)
        return "reference";
    return atomic_load(&((kf_kernel *)k)->on_cc) ? "cc" : "tcc";
}

const char *kf_kernel_backend(const kf_kernel *k)
{
    if (!k)
        return NULL;
    if (k->backend == KF_BACKEND_CPU)
        return "cpu";
    if (k->backend == KF_BACKEND_CUDA)
        return "cuda";
    return k->cuda ? "cuda" : k->cuda_off ? "cpu" : "auto";
}
