/*
 * tiers.c -- the JIT policy: which code a kernel runs, and the background
 * build of the optimized code.
 *
 *   policy      cache pass (kfr_tier_lookup)        jit pass (kfr_tier_jit)
 *   tcc         -                                   libtcc
 *   reference   -                                   -
 *   cc          key; table, then disk              hit: done.  miss: cc now (waits)
 *   auto        key; table, then disk              hit: done.  miss: libtcc now, and
 *                                                   cc in a thread that swaps k->fn
 *   (no C compiler: auto behaves as tcc, with one KF_LOG_INFO line per context;
 *    cc fails with KF_ERR_JIT. No libtcc in the process, which libkforge.so
 *    allows (jit_tcc.c): auto behaves as cc, or as reference without a C
 *    compiler either; tcc fails with KF_ERR_UNSUPPORTED)
 *
 * The swap: the builder stores the new entry point atomically (release);
 * kf_run's workers load it (acquire) at the start of every task, so a run in
 * flight moves to the cc code at its next task boundary and no task mixes two
 * engines (runtime/run.c; the libtcc code stays alive until kf_kernel_free,
 * since a task that loaded it may still be running). While a build is pending
 * kf_run cuts its rows finer (kfr_tier_pending), so that boundary comes soon.
 * The builder never
 * touches the context (it belongs to the user's thread): its status and
 * message wait in the build until kf_kernel_wait reports them. It allocates
 * nothing itself: everything it needs is allocated before it starts.
 *
 * KFORGE_TEST_SWAP_AT_TASK=T (testing only, docs/api.md): the builder does
 * not swap; a CPU run's tasks below T run the code loaded when the run
 * started and tasks T and up wait for the build and swap it in
 * (kfr_tier_await), so a test can see a switch at a known task whatever the
 * timing.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/jit/jit.h"

struct kfr_build {
    kfr_cc cc;
    kfr_cache cache;
    char key[KFR_HEX_LEN + 1];
    char *src, *meta;    /* the optimized source and the entry's metadata (owned) */
    kfr_so *spare;       /* a table node for the loader (owned until used) */
    kf_kernel *k;
    pthread_t thread;
    int started;         /* the thread runs (or ran): join it */
    struct timespec t0;  /* when the thread started (CLOCK_MONOTONIC) */
    atomic_int cancel;   /* set by kf_kernel_free when the result would be thrown away */
    atomic_int done;     /* set (release) once status, msg, result and stored are final */
    int status, stored;
    kfr_so *result;
    int64_t swap_at;     /* KFORGE_TEST_SWAP_AT_TASK, or -1: the builder swaps itself */
    char msg[1024];
};

/* KFORGE_TEST_SWAP_AT_TASK as a task number: decimal digits only, else -1
 * (unset, empty or malformed: the normal swap). */
static int64_t test_swap_at(void)
{
    const char *e = getenv("KFORGE_TEST_SWAP_AT_TASK");
    if (!e || !*e)
        return -1;
    int64_t t = 0;
    for (const char *c = e; *c; c++) {
        if (*c < '0' || *c > '9' || t > (INT64_MAX - 9) / 10)
            return -1;
        t = t * 10 + (*c - '0');
    }
    return t;
}

static void build_free(kfr_build *b)
{
    if (!b)
        return;
    kfr_cache_close(&b->cache);
    free(b->src);
    free(b->meta);
    free(b->spare);
    free(b);
}

/* The kernel now runs the optimized object so. */
static void use_object(kf_kernel *k, kfr_so *so)
{
    k->so = so;
    atomic_store_explicit(&k->fn, so->fn, memory_order_release);
    atomic_store(&k->on_cc, 1);
    k->stats.cache_entry = so->path[0] ? so->path : NULL;
}

int kfr_tier_lookup(kf_kernel *k, kfc_diag *d)
{
    kf_ctx *ctx = k->ctx;
    k->stats.cache = KF_CACHE_UNUSED;
    if (!k->has_red || (k->engine != KF_JIT_AUTO && k->engine != KF_JIT_CC))
        return KF_OK;
    kfr_build *b = calloc(1, sizeof *b);
    if (!b)
        return kfc_diag_set(d, KF_ERR_NOMEM, -1, -1, "out of memory");
    b->cache.dfd = -1; /* not located yet: nothing to close */
    char why[600];
    int tcc = kfr_tcc_available();
    if (kfr_cc_find(&b->cc, why, sizeof why) != 0) {
        free(b);
        if (k->engine == KF_JIT_CC)
            return kfc_diag_set(d, KF_ERR_JIT, -1, -1,
                                "the optimizing tier (KF_JIT_CC) needs a C compiler: %s", why);
        if (!ctx->said_no_cc)
            kfr_log(ctx, KF_LOG_INFO, "%s: kernels run on %s only", why,
                    tcc ? "libtcc" : "the reference engine (no libtcc in this process either)");
        ctx->said_no_cc = 1;
        k->engine = tcc ? KF_JIT_TCC : KF_JIT_REFERENCE;
        return KF_OK;
    }
    /* No libtcc to run at once (libkforge.so in a program without it, such
     * as Python): auto waits for the cc code, which the cache then keeps. */
    if (k->engine == KF_JIT_AUTO && !tcc) {
        if (!ctx->said_no_tcc)
            kfr_log(ctx, KF_LOG_INFO, "no libtcc in this process: kf_compile waits for the cc "
                                      "build on a cache miss");
        ctx->said_no_tcc = 1;
        k->engine = KF_JIT_CC;
    }
    int rc = kfr_cache_key(k, &b->cc, b->key);
    if (rc != KF_OK) {
        free(b);
        return kfc_diag_set(d, rc, -1, -1, "cannot compute the cache key (%s)",
                            kf_status_name(rc));
    }
    kfr_so *so = kfr_so_find(b->key);
    if (so) {
        free(b);
        use_object(k, so);
        k->stats.cache = KF_CACHE_HIT;
        return KF_OK;
    }
    kfr_cache_locate(&ctx->opt, &b->cache, 0);
    if (b->cache.mode < 0 && b->cache.refused && !ctx->said_refused) {
        kfr_log(ctx, KF_LOG_ERROR, "kforge cache: %s", b->cache.why);
        ctx->said_refused = 1;
    }
    if (b->cache.mode >= 0) {
        if (!(b->spare = kfr_so_new())) {
            build_free(b);
            return kfc_diag_set(d, KF_ERR_NOMEM, -1, -1, "out of memory");
        }
        int r = kfr_cache_load(&b->cache, b->key, &b->spare, &so, why, sizeof why);
        if (r == 1) {
            build_free(b);
            use_object(k, so);
            k->stats.cache = KF_CACHE_HIT;
            return KF_OK;
        }
        /* Someone else's entry in our cache would run their code: that is
         * worth an error line even though the kernel still compiles. */
        if (r < 0)
            kfr_log(ctx, r == -2 ? KF_LOG_ERROR : KF_LOG_INFO, "kforge cache: %s", why);
    }
    k->build = b; /* a miss: the jit pass builds */
    return KF_OK;
}

static void *builder(void *vp)
{
    kfr_build *b = vp;
    int rc = kfr_cc_build(&b->cache, &b->cc, b->key, b->src, b->meta, &b->cancel, &b->spare,
                          &b->result, &b->stored, b->msg, sizeof b->msg);
    if (rc == KF_OK && b->swap_at < 0) {
        atomic_store_explicit(&b->k->fn, b->result->fn, memory_order_release);
        atomic_store(&b->k->on_cc, 1);
    }
    b->status = rc;
    atomic_store_explicit(&b->done, 1, memory_order_release);
    return NULL;
}

int kfr_tier_emit(kf_kernel *k, kfc_diag *d)
{
    kfr_build *b = k->build;
    if (!b)
        return KF_OK;
    kfc_diag_clear(d);
    b->src = KFR_EMIT_OPT(&k->prog, &k->red, d);
    b->meta = b->src ? kfr_cache_meta(k, b->key) : NULL;
    if (!b->spare)
        b->spare = kfr_so_new();
    if (!b->src || !b->meta || !b->spare) {
        k->build = NULL;
        build_free(b);
        if (d->status != KF_OK)
            return d->status;
        return kfc_diag_set(d, KF_ERR_NOMEM, -1, -1, "out of memory");
    }
    return KF_OK;
}

int kfr_tier_jit(kf_kernel *k, kfc_diag *d)
{
    kf_ctx *ctx = k->ctx;
    if (!k->has_red || k->engine == KF_JIT_REFERENCE || k->so)
        return KF_OK;
    if (k->engine == KF_JIT_TCC || k->engine == KF_JIT_AUTO) {
        void *fn = NULL;
        int rc = kfr_tcc_compile(k->source, KFK_ENTRY, &k->tcc, &fn, d);
        if (rc != KF_OK)
            return rc;
        /* POSIX guarantees object and function pointers convert (dlsym relies on it). */
        k->tcc_fn = (kfk_reduce_fn)fn;
        atomic_store(&k->fn, k->tcc_fn);
    }
    kfr_build *b = k->build;
    if (!b)
        return KF_OK;
    /* Now that something will be stored, the directory may be created. */
    if (b->cache.mode == 1) {
        kfr_cache_close(&b->cache);
        kfr_cache_locate(&ctx->opt, &b->cache, 1);
    }
    k->stats.cache = b->cache.mode == 1 ? KF_CACHE_MISS : KF_CACHE_DISABLED;
    if (b->cache.mode == 0)
        kfr_log(ctx, KF_LOG_INFO, "kforge cache: %s", b->cache.why);

    if (k->engine == KF_JIT_CC) {
        k->build = NULL;
        int rc = kfr_cc_build(&b->cache, &b->cc, b->key, b->src, b->meta, NULL, &b->spare,
                              &b->result, &b->stored, b->msg, sizeof b->msg);
        if (rc == KF_OK)
            use_object(k, b->result);
        else
            kfc_diag_set(d, rc, -1, -1, "the optimizing tier (cc) failed: %s", b->msg);
        build_free(b);
        return rc;
    }
    b->k = k;
    b->swap_at = test_swap_at();
    atomic_init(&b->cancel, 0);
    atomic_init(&b->done, 0);
    if (pthread_create(&b->thread, NULL, builder, b) != 0) {
        /* Not fatal: the libtcc code is correct, only slower. */
        kfr_log(ctx, KF_LOG_INFO, "kforge: cannot start the background build; running libtcc code");
        k->build = NULL;
        k->stats.cache = KF_CACHE_UNUSED;
        build_free(b);
        return KF_OK;
    }
    b->started = 1;
    clock_gettime(CLOCK_MONOTONIC, &b->t0);
    return KF_OK;
}

int kfr_tier_pending(const kf_kernel *k)
{
    const kfr_build *b = k->build;
    if (!b || !b->started || atomic_load(&((kf_kernel *)k)->on_cc))
        return 0;
    /* A failed build will never swap; an unfinished one may. */
    return !atomic_load_explicit(&b->done, memory_order_acquire) || b->status == KF_OK;
}

int64_t kfr_tier_swap_at(const kf_kernel *k)
{
    const kfr_build *b = k->build;
    return b && b->started ? b->swap_at : -1;
}

static double ms_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0->tv_sec) * 1e3 + (double)(now.tv_nsec - t0->tv_nsec) * 1e-6;
}

int kfr_tier_await(kf_kernel *k, double max_ms)
{
    kfr_build *b = k->build;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* A poll, not a join: several workers may wait here at once, and the
     * join (with its bookkeeping) belongs to the user's thread. */
    while (!atomic_load_explicit(&b->done, memory_order_acquire)) {
        if (max_ms >= 0 && ms_since(&t0) >= max_ms)
            return 0;
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    if (b->status == KF_OK) {
        atomic_store_explicit(&k->fn, b->result->fn, memory_order_release);
        atomic_store(&k->on_cc, 1);
    }
    return 1;
}

/* Joins the builder and takes its result into the kernel. Returns the
 * build's status; its message is in k->build->msg until build_free. */
static int join(kf_kernel *k)
{
    kfr_build *b = k->build;
    pthread_join(b->thread, NULL);
    b->started = 0;
    if (b->status == KF_OK)
        use_object(k, b->result);
    return b->status;
}

int kf_kernel_wait(kf_kernel *k)
{
    if (!k)
        return KF_ERR_ARG;
    kfr_clear_error(k->ctx);
    /* Whoever waits asks what the next run will run: kf_kernel_engine
     * answers that now, not what the last run ran (its counts stay in the
     * stats). */
    k->ran[0] = 0;
    kfr_build *b = k->build;
    if (!b)
        return KF_OK;
    int rc = join(k);
    if (rc != KF_OK)
        kfr_error(k->ctx, rc,
                  "the background build of the optimized kernel failed (it keeps running the "
                  "libtcc code, which is correct): %s",
                  b->msg);
    k->build = NULL;
    build_free(b);
    return rc;
}

/* How long kf_kernel_free lets a background build that will be stored run
 * (counted from its start) before cancelling it. Compiles take 50-300 ms;
 * a short process (one `kforge eval`) must not wait for a slow or hanging
 * compiler: its answer is ready, and kf_kernel_wait or KF_JIT_CC are there
 * for whoever wants the optimized code stored whatever it costs. */
#define KFR_BUILD_GRACE_MS 1000

void kfr_tier_free(kf_kernel *k)
{
    kfr_build *b = k->build;
    if (b) {
        /* A build that will be stored is worth finishing, briefly: the next
         * process (the next `kforge eval`) finds it. Past the grace time, or
         * when the result would be thrown away, it is killed. */
        if (b->started) {
            if (b->cache.mode == 1)
                while (!atomic_load_explicit(&b->done, memory_order_acquire) &&
                       ms_since(&b->t0) < KFR_BUILD_GRACE_MS)
                    nanosleep(&(struct timespec){0, 2000000}, NULL);
            int cut = !atomic_load_explicit(&b->done, memory_order_acquire);
            if (cut)
                atomic_store(&b->cancel, 1);
            int rc = join(k);
            /* Said once, here, unless kf_kernel_wait already reported it. */
            if (rc != KF_OK && !cut)
                kfr_log(k->ctx, KF_LOG_ERROR,
                        "the background build of the optimized kernel failed (the kernel "
                        "ran libtcc code, which is correct): %s",
                        b->msg);
            else if (cut && b->cache.mode == 1)
                kfr_log(k->ctx, KF_LOG_INFO,
                        "the optimized build was still running after %.1f s and was "
                        "cancelled, nothing stored (KF_JIT_CC, --jit cc, waits for it)",
                        KFR_BUILD_GRACE_MS / 1e3);
        }
        k->build = NULL;
        build_free(b);
    }
    kfr_so_release(k->so);
    k->so = NULL;
}

int kf_kernel_stats(const kf_kernel *k, kf_compile_stats *st)
{
    if (!k || !st)
        return KF_ERR_ARG;
    *st = k->stats;
    /* A finished background build's entry, readable without joining. */
    const kfr_build *b = k->build;
    if (b && atomic_load_explicit(&b->done, memory_order_acquire) && b->status == KF_OK &&
        b->result->path[0])
        st->cache_entry = b->result->path;
    return KF_OK;
}
