/* cmd_cache.c -- `kforge cache list|info|clear`: what the kernel cache holds, where, and removing it. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"

void kfcli_help_cache(FILE *f)
{
    fputs(
        "Usage: kforge cache list|info|clear [--older-than DAYS] [--cache-dir DIR]\n"
        "\n"
        "The kernel cache keeps the kernels the optimizing tier (cc) built, so that later runs\n"
        "load them in a few milliseconds instead of compiling again (docs/cache.md).\n"
        "\n"
        "Commands:\n"
        "  list                 one line per entry: key (first 16 hex digits), tier, size, last\n"
        "                       use (local time), reduction, formula\n"
        "  info                 the directory, its mode (read-write, read-only, or unusable and\n"
        "                       why), the number of entries and their total size\n"
        "  clear                remove every entry, or with --older-than DAYS those last used\n"
        "                       more than DAYS days ago (a decimal number, e.g. 0.5); prints\n"
        "                       how many were removed\n"
        "\n"
        "Options:\n"
        "  --cache-dir DIR      the cache directory (default: $KFORGE_CACHE_DIR, else\n"
        "                       $XDG_CACHE_HOME/kforge, else ~/.cache/kforge)\n"
        "  --older-than DAYS    clear only: the age, by last use, of the entries to remove\n"
        "  -v, --verbose        the library's messages on stderr\n"
        "  -h, --help           this text\n"
        "\n"
        "Exit status: 0 ok, 1 the cache cannot be read (list) or written (clear), 2 usage.\n"
        "\n"
        "Examples:\n"
        "  kforge cache info\n"
        "  kforge cache list\n"
        "  kforge cache clear --older-than 30      # entries unused for a month\n"
        "  KFORGE_CACHE_DIR=/tmp/kc kforge cache clear\n",
        f);
}

static int usage(const char *fmt, const char *arg) __attribute__((format(printf, 1, 0)));
static int usage(const char *fmt, const char *arg)
{
    fputs("kforge cache: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\n(see 'kforge help cache')\n", stderr);
    return KFCLI_EXIT_USAGE;
}

/* Sizes as people read them: 812 B, 14.2 KiB, 3.1 MiB. */
static void human_size(int64_t n, char *buf, size_t cap)
{
    if (n < 1024)
        snprintf(buf, cap, "%lld B", (long long)n);
    else if (n < 1024 * 1024)
        snprintf(buf, cap, "%.1f KiB", (double)n / 1024);
    else if (n < 1024LL * 1024 * 1024)
        snprintf(buf, cap, "%.1f MiB", (double)n / (1024.0 * 1024));
    else
        snprintf(buf, cap, "%.1f GiB", (double)n / (1024.0 * 1024 * 1024));
}

/* The entry's strings come from files on disk: control bytes would move the
 * terminal's cursor, so they are shown as '?'; long ones end in "...". */
static const char *clean(const char *s, char *buf, size_t cap)
{
    size_t n = 0;
    for (; s && *s && n + 4 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        buf[n++] = c < 32 || c == 127 ? '?' : (char)c;
    }
    if (s && *s)
        memcpy(buf + n, "...", 3), n += 3;
    buf[n] = 0;
    return buf;
}

typedef struct totals {
    int64_t count, bytes;
} totals;

static int count_entry(void *user, const kf_cache_entry *e)
{
    totals *t = user;
    t->count++;
    t->bytes += e->size_bytes > 0 ? e->size_bytes : 0;
    return 0;
}

static int list_entry(void *user, const kf_cache_entry *e)
{
    count_entry(user, e);
    char size[32], when[32] = "?";
    human_size(e->size_bytes, size, sizeof size);
    time_t t = (time_t)e->last_use;
    struct tm tm;
    if (e->last_use > 0 && localtime_r(&t, &tm))
        strftime(when, sizeof when, "%Y-%m-%d %H:%M", &tm);
    char key[80], tier[12], red[80], formula[4096];
    clean(e->key, key, sizeof key);
    key[16] = 0; /* a prefix names an entry well enough, as in git */
    printf("%-16s  %-4s  %10s  %-16s  %-20s  %s", key, clean(e->tier, tier, sizeof tier), size,
           when, clean(e->reduction, red, sizeof red), clean(e->formula, formula, sizeof formula));
    putchar('\n');
    return 0;
}

static int cache_main(kfcli_args *a, int argc, char **argv, kf_ctx **ctxp)
{
    int rc = kfcli_args_parse(KFCLI_CMD_CACHE, "cache", argc, argv, a);
    if (rc)
        return rc;
    if (a->help) {
        kfcli_help_cache(stdout);
        return 0;
    }
    const char *sub = a->formula; /* the first word after "cache" */
    if (!sub)
        return usage("missing command: list, info or clear%s", "");
    if (strcmp(sub, "list") && strcmp(sub, "info") && strcmp(sub, "clear"))
        return usage("unknown command '%s'; the commands are list, info and clear", sub);
    if (a->nfiles > 0)
        return usage("unexpected argument '%s'", a->files[0]);
    if (a->older_than >= 0 && strcmp(sub, "clear"))
        return usage("--older-than goes with clear, not %s", sub);

    a->threads = 1; /* no kernel runs here: one worker is plenty */
    if (!(*ctxp = kfcli_ctx_new(a, &rc)))
        return rc;
    kf_ctx *ctx = *ctxp;
    const char *d = NULL;
    int mode = -1;
    int st = kf_cache_dir(ctx, &d, &mode);
    if (st != KF_OK)
        mode = -1;
    /* Both strings belong to ctx: copies outlive the calls below. */
    char dir[4096], whybuf[1024];
    snprintf(dir, sizeof dir, "%s", d ? d : "(none)");
    snprintf(whybuf, sizeof whybuf, "%s", mode < 0 ? kf_errmsg(ctx) : "");

    if (!strcmp(sub, "info")) {
        printf("directory  %s\n", dir);
        if (mode > 0)
            printf("mode       read-write\n");
        else if (mode == 0)
            printf("mode       read-only (hits load; new kernels are built in a private "
                   "temporary directory)\n");
        else
            printf("mode       unusable: %s\n", *whybuf ? whybuf : "no reason given");
        if (mode < 0)
            return 0;
        totals t = {0, 0};
        if ((st = kf_cache_list(ctx, count_entry, &t)) != KF_OK) {
            fprintf(stderr, "kforge cache: %s\n", kf_errmsg(ctx));
            return kfcli_exit_of(st) == KFCLI_EXIT_USAGE ? KFCLI_EXIT_RUNTIME : kfcli_exit_of(st);
        }
        char size[32];
        human_size(t.bytes, size, sizeof size);
        printf("entries    %lld\nsize       %s (%lld bytes)\n", (long long)t.count, size,
               (long long)t.bytes);
        return 0;
    }
    if (mode < 0) {
        fprintf(stderr, "kforge cache: the cache %s is not usable: %s\n", dir,
                *whybuf ? whybuf : "no reason given");
        return KFCLI_EXIT_RUNTIME;
    }
    if (!strcmp(sub, "list")) {
        totals t = {0, 0};
        printf("%-16s  %-4s  %10s  %-16s  %-20s  %s\n", "key", "tier", "size", "last use",
               "reduction", "formula");
        if ((st = kf_cache_list(ctx, list_entry, &t)) != KF_OK) {
            fprintf(stderr, "kforge cache: %s\n", kf_errmsg(ctx));
            return KFCLI_EXIT_RUNTIME;
        }
        char size[32];
        human_size(t.bytes, size, sizeof size);
        printf("%lld entr%s, %s, in %s\n", (long long)t.count, t.count == 1 ? "y" : "ies", size,
               dir);
        return 0;
    }
    /* clear */
    if (mode == 0) {
        fprintf(stderr, "kforge cache: %s is read-only: nothing can be removed\n", dir);
        return KFCLI_EXIT_RUNTIME;
    }
    int64_t removed = 0;
    if ((st = kf_cache_clear(ctx, a->older_than >= 0 ? a->older_than : -1.0, &removed)) != KF_OK) {
        fprintf(stderr, "kforge cache: %s\n", kf_errmsg(ctx));
        if (removed > 0)
            fprintf(stderr, "kforge cache: %lld entr%s removed before the failure\n",
                    (long long)removed, removed == 1 ? "y was" : "ies were");
        return KFCLI_EXIT_RUNTIME;
    }
    if (a->older_than >= 0)
        printf("removed %lld entr%s last used more than %g day%s ago from %s\n", (long long)removed,
               removed == 1 ? "y" : "ies", a->older_than, a->older_than == 1 ? "" : "s", dir);
    else
        printf("removed %lld entr%s from %s\n", (long long)removed, removed == 1 ? "y" : "ies",
               dir);
    return 0;
}

int kfcli_cache(int argc, char **argv)
{
    kfcli_args a;
    kf_ctx *ctx = NULL;
    int rc = cache_main(&a, argc, argv, &ctx);
    kf_free(ctx);
    kfcli_args_free(&a);
    return rc;
}
