/* ctx.c -- the context: options, worker threads, the last error, logging, names and version. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/rt.h"


void kf_options_init(kf_options *opt)
{
    if (!opt)
        return;
    memset(opt, 0, sizeof *opt);
    opt->threads = 0;
    opt->verbose = KF_LOG_ERROR;
}

void kf_compile_opts_init(kf_compile_opts *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->k = 0;
    o->formula2 = NULL;
    o->sum_scheme = KF_SUM_AUTO;
    o->jit = KF_JIT_AUTO;
}

/* Copies an untrusted string into buf for a message: at most about 40 bytes,
 * non-printable bytes as \xHH, so a message stays one readable line. */
static const char *quote_value(const char *s, char *buf, size_t cap)
{
    size_t n = 0;
    for (; *s && n + 8 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (n >= 40) {
            n += (size_t)snprintf(buf + n, cap - n, "...");
            break;
        }
        if (c >= 0x20 && c < 0x7f && c != '\'')
            buf[n++] = (char)c;
        else
            n += (size_t)snprintf(buf + n, cap - n, "\\x%02x", c);
    }
    buf[n < cap ? n : cap - 1] = 0;
    return buf;
}

/* Strict parse of a thread count: decimal digits only, 1..KF_MAX_THREADS.
 * Returns the count or 0 if s is anything else. */
static int parse_threads(const char *s)
{
    long v = 0;
    if (!*s)
        return 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return 0;
        v = v * 10 + (*s - '0');
        if (v > KF_MAX_THREADS)
            return 0;
    }
    return v >= 1 ? (int)v : 0;
}

kf_ctx *kf_new(const kf_options *opt)
{
    kf_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return NULL;
    if (opt)
        ctx->opt = *opt;
    else
        kf_options_init(&ctx->opt);
    kfr_clear_error(ctx);
    /* Strings passed in are never kept: the context owns a copy. */
    if (ctx->opt.cache_dir) {
        size_t n = strlen(ctx->opt.cache_dir) + 1;
        if (!(ctx->cache_dir_opt = malloc(n))) {
            free(ctx);
            return NULL;
        }
        ctx->opt.cache_dir = memcpy(ctx->cache_dir_opt, ctx->opt.cache_dir, n);
    }

    /* Thread count: the option, else $KFORGE_THREADS, else every core. A bad
     * value is reported (status KF_ERR_ARG) but the context still works with
     * the core count, so callers decide whether that is fatal. */
    int cores = kfr_cpu_count();
    char bad[160] = "";
    int threads = 0;
    if (ctx->opt.threads < 0 || ctx->opt.threads > KF_MAX_THREADS) {
        snprintf(bad, sizeof bad, "kf_options.threads = %d is not in 0..%d", ctx->opt.threads,
                 KF_MAX_THREADS);
    } else if (ctx->opt.threads > 0) {
        threads = ctx->opt.threads;
    } else {
        const char *env = getenv("KFORGE_THREADS");
        /* An empty variable counts as unset (the usual way to clear it in a shell). */
        if (env && *env) {
            threads = parse_threads(env);
            if (!threads) {
                char q[64];
                snprintf(bad, sizeof bad, "KFORGE_THREADS='%s' is not an integer in 1..%d",
                         quote_value(env, q, sizeof q), KF_MAX_THREADS);
            }
        }
    }
    if (!threads)
        threads = cores;
    ctx->threads = threads;
    ctx->pool = kfr_pool_new(threads);
    if (!ctx->pool) {
        free(ctx->cache_dir_opt);
        free(ctx);
        return NULL;
    }
    ctx->threads = kfr_pool_threads(ctx->pool);
    if (bad[0])
        kfr_error(ctx, KF_ERR_ARG, "%s; using %d threads (the online cores)", bad, threads);
    kfr_log(ctx, KF_LOG_INFO, "kforge %s: %d worker threads", KF_VERSION_STRING, ctx->threads);
    return ctx;
}

void kf_free(kf_ctx *ctx)
{
    if (!ctx)
        return;
    kfr_pool_free(ctx->pool);
    free(ctx->cache_dir_opt);
    free(ctx);
}

int kf_status_of(const kf_ctx *ctx)
{
    return ctx ? ctx->status : KF_ERR_NOMEM;
}

const char *kf_errmsg(const kf_ctx *ctx)
{
    /* kf_new returns NULL only when memory or threads ran out. */
    return ctx ? ctx->msg : "no context: kf_new failed (out of memory or threads)";
}

int64_t kf_error_offset(const kf_ctx *ctx)
{
    return ctx ? ctx->offset : -1;
}

int kf_error_source(const kf_ctx *ctx)
{
    return ctx ? ctx->src : -1;
}

int kf_threads(const kf_ctx *ctx)
{
    return ctx ? ctx->threads : 0;
}

void kfr_clear_error(kf_ctx *ctx)
{
    ctx->status = KF_OK;
    ctx->offset = -1;
    ctx->src = -1;
    ctx->msg[0] = 0;
}

int kfr_error(kf_ctx *ctx, int status, const char *fmt, ...)
{
    ctx->status = status;
    ctx->offset = -1;
    ctx->src = -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->msg, sizeof ctx->msg, fmt, ap);
    va_end(ap);
    kfr_log(ctx, KF_LOG_ERROR, "%s", ctx->msg);
    return status;
}

int kfr_error_diag(kf_ctx *ctx, const kfc_diag *d)
{
    int status = d->status != KF_OK ? d->status : KF_ERR_INTERNAL;
    /* The "L:C: " of a message counts in the string it names; say which one
     * unless it is the formula itself. */
    char where[32] = "";
    if (d->src == 1)
        snprintf(where, sizeof where, "formula2 ");
    else if (d->src >= 2)
        snprintf(where, sizeof where, "alias %d ", d->src - 2);
    kfr_error(ctx, status, "%s%s", where, d->msg[0] ? d->msg : "internal error without a message");
    ctx->offset = d->offset;
    ctx->src = d->src;
    return status;
}

void kfr_log(kf_ctx *ctx, int level, const char *fmt, ...)
{
    if (!ctx || !ctx->opt.log || level > ctx->opt.verbose)
        return;
    char small[1024];
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    char *msg = small;
    /* Dumps of large programs exceed any fixed buffer; fall back to the heap
     * and, failing that, to the truncated text. */
    if (n >= (int)sizeof small) {
        char *big = malloc((size_t)n + 1);
        if (big) {
            vsnprintf(big, (size_t)n + 1, fmt, ap2);
            msg = big;
        }
    }
    va_end(ap2);
    if (n >= 0)
        ctx->opt.log(ctx->opt.log_user, level, msg);
    if (msg != small)
        free(msg);
}

const char *kf_status_name(int status)
{
    switch (status) {
    case KF_OK: return "KF_OK";
    case KF_ERR_NOMEM: return "KF_ERR_NOMEM";
    case KF_ERR_ARG: return "KF_ERR_ARG";
    case KF_ERR_SYNTAX: return "KF_ERR_SYNTAX";
    case KF_ERR_TYPE: return "KF_ERR_TYPE";
    case KF_ERR_UNSUPPORTED: return "KF_ERR_UNSUPPORTED";
    case KF_ERR_LIMIT: return "KF_ERR_LIMIT";
    case KF_ERR_JIT: return "KF_ERR_JIT";
    case KF_ERR_IO: return "KF_ERR_IO";
    case KF_ERR_THREAD: return "KF_ERR_THREAD";
    case KF_ERR_INTERNAL: return "KF_ERR_INTERNAL";
    case KF_ERR_NOCONV: return "KF_ERR_NOCONV";
    case KF_ERR_DEVICE: return "KF_ERR_DEVICE";
    }
    return "KF_ERR_UNKNOWN";
}

const char *kf_version(void)
{
    return KF_VERSION_STRING;
}
