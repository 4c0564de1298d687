/* session.c -- what eval and check share: the context, the compile, formula errors with a caret. */
#include <string.h>
#include <time.h>

#include "cli/cli.h"

double kfcli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int kfcli_exit_of(int status)
{
    switch (status) {
    case KF_OK:
        return KFCLI_EXIT_OK;
    case KF_ERR_ARG:
    case KF_ERR_SYNTAX:
    case KF_ERR_TYPE:
    case KF_ERR_UNSUPPORTED:
    case KF_ERR_LIMIT:
        return KFCLI_EXIT_USAGE;
    default:
        return KFCLI_EXIT_RUNTIME;
    }
}

/* The library's log goes to stderr, prefixed like every other message.
 * Every error that becomes a call's status is also logged; the command
 * prints that one itself (kf_errmsg, with context), so an error-level line
 * equal to the context's message is skipped. The others (a refused cache
 * directory or entry, a failed background build) are said here, once, as
 * the library says them. One context per command: the log's user data. */
typedef struct log_target {
    const char *cmd;
    kf_ctx *ctx; /* NULL until kf_new returns */
} log_target;
static log_target the_log;

static void log_stderr(void *user, int level, const char *msg)
{
    const log_target *lt = user;
    /* During kf_new (ctx still NULL) an error is the context's status, which
     * kfcli_ctx_new prints. */
    if (level <= KF_LOG_ERROR && (!lt->ctx || !strcmp(msg, kf_errmsg(lt->ctx))))
        return;
    size_t n = strlen(msg);
    fprintf(stderr, "kforge %s: %s%s", lt->cmd, msg, n && msg[n - 1] == '\n' ? "" : "\n");
}

kf_ctx *kfcli_ctx_new(const kfcli_args *a, int *exit_code)
{
    kf_options opt;
    kf_options_init(&opt);
    opt.threads = a->threads;
    opt.cache_dir = a->cache_dir; /* NULL unless --cache-dir: the environment decides */
    opt.verbose = a->dump ? KF_LOG_DEBUG : a->verbose ? KF_LOG_INFO : KF_LOG_ERROR;
    opt.log = log_stderr;
    the_log.cmd = a->cmd;
    the_log.ctx = NULL;
    opt.log_user = &the_log;
    kf_ctx *ctx = kf_new(&opt);
    the_log.ctx = ctx;
    if (!ctx) {
        fprintf(stderr, "kforge %s: cannot create a context (out of memory or threads)\n", a->cmd);
        *exit_code = KFCLI_EXIT_RUNTIME;
        return NULL;
    }
    /* kf_new reports a bad environment (KFORGE_THREADS=abc) here rather than failing. */
    int st = kf_status_of(ctx);
    if (st != KF_OK) {
        fprintf(stderr, "kforge %s: %s\n", a->cmd, kf_errmsg(ctx));
        kf_free(ctx);
        the_log.ctx = NULL;
        *exit_code = KFCLI_EXIT_USAGE;
        return NULL;
    }
    return ctx;
}

/* Prints the line of text holding byte `off`, and a caret under it:
 *     --formula2 Exp(Foo(x))
 *                    ^
 * Long lines are cut around the offset, control bytes shown as '?', and UTF-8
 * continuation bytes take no column, so the caret lands under the right char. */
static void show_caret(const char *label, const char *text, size_t off)
{
    size_t len = strlen(text);
    if (off > len)
        return;
    size_t ls = off, le = off;
    while (ls > 0 && text[ls - 1] != '\n')
        ls--;
    while (le < len && text[le] != '\n')
        le++;
    size_t start = ls, end = le;
    int cut_left = 0, cut_right = 0;
    if (off - start > 60) {
        start = off - 50;
        while (start < off && ((unsigned char)text[start] & 0xC0) == 0x80)
            start++;
        cut_left = 1;
    }
    if (end - start > 110) {
        end = start + 100 > off ? start + 100 : off;
        while (end < le && ((unsigned char)text[end] & 0xC0) == 0x80)
            end++;
        cut_right = 1;
    }
    fprintf(stderr, "  %s%s", label, cut_left ? "..." : "");
    for (size_t k = start; k < end; k++) {
        unsigned char c = (unsigned char)text[k];
        fputc(c == '\t' || c >= 32 ? (c == 127 ? '?' : c) : '?', stderr);
    }
    fprintf(stderr, "%s\n  %*s%s", cut_right ? "..." : "", (int)strlen(label), "",
            cut_left ? "   " : "");
    for (size_t k = start; k < off; k++) {
        unsigned char c = (unsigned char)text[k];
        if (c == '\t')
            fputc('\t', stderr);
        else if ((c & 0xC0) != 0x80)
            fputc(' ', stderr);
    }
    fputs("^\n", stderr);
}

kf_kernel *kfcli_compile(kf_ctx *ctx, const kfcli_args *a, kf_dtype dtype, int *exit_code)
{
    kf_compile_opts co;
    kf_compile_opts_init(&co);
    co.k = a->k;
    co.formula2 = a->formula2;
    co.sum_scheme = a->sum_scheme;
    co.jit = a->jit;
    co.backend = a->backend;
    co.device = a->device;
    co.dump = a->dump;
    int axis = a->axis < 0 ? 1 : a->axis;
    kf_kernel *k = kf_compile(ctx, a->formula, a->aliases, a->naliases, a->reduction, axis, dtype,
                              &co);
    if (k)
        return k;
    int st = kf_status_of(ctx);
    fprintf(stderr, "kforge %s: %s\n", a->cmd, kf_errmsg(ctx));
    int64_t off = kf_error_offset(ctx);
    int src = kf_error_source(ctx);
    const char *text = NULL, *label = "";
    if (src == 0)
        text = a->formula;
    else if (src == 1)
        text = a->formula2, label = "--formula2 ";
    else if (src >= 2 && src - 2 < a->naliases)
        text = a->aliases[src - 2], label = "--alias ";
    if (text && off >= 0)
        show_caret(label, text, (size_t)off);
    *exit_code = kfcli_exit_of(st ? st : KF_ERR_INTERNAL);
    return NULL;
}

int kfcli_first_var(const kf_kernel *k, int cat, int64_t *dim)
{
    for (int v = 0; v < kf_kernel_nargs(k); v++) {
        int c;
        if (kf_kernel_var(k, v, &c, dim) == KF_OK && c == cat)
            return v;
    }
    return -1;
}
