/* cache_admin.c -- kf_cache_dir, kf_cache_list, kf_cache_clear: the cache as the user manages it
 * (optimized objects and GPU images alike: docs/cache.md). The public API's boundary: the store's
 * statuses and reasons become the context's error here (kfr_error). */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime/cache/cache.h"
#include "runtime/rt.h" /* kf_ctx, kfr_error */

/* Builds and temporaries older than this belong to a crashed process. */
#define KFR_STALE_TMP_S 3600
/* Metadata is a few lines plus the canonical formula. */
#define KFR_MAX_META ((size_t)8 << 20)

int kf_cache_dir(kf_ctx *ctx, const char **dir, int *mode)
{
    if (!ctx)
        return KF_ERR_ARG;
    kfr_clear_error(ctx);
    if (!dir || !mode)
        return kfr_error(ctx, KF_ERR_ARG, "kf_cache_dir: dir and mode must not be NULL");
    kfr_cache c;
    kfr_cache_locate(&ctx->opt, &c, 0);
    kfr_cache_close(&c);
    snprintf(ctx->cache_dir, sizeof ctx->cache_dir, "%s", c.dir);
    *dir = ctx->cache_dir[0] ? ctx->cache_dir : NULL;
    *mode = c.mode;
    /* Not a failure of this call: the answer is the mode, the message its reason. */
    if (c.mode != 1)
        snprintf(ctx->msg, sizeof ctx->msg, "%s", c.why);
    return KF_OK;
}

static int is_key(const char *name)
{
    size_t n = strspn(name, "0123456789abcdef");
    return n == KFR_HEX_LEN && name[n] == 0;
}

/* Every name in the directory dfd, malloc'd (NULL-terminated array), or
 * NULL with errno. */
static char **names_of(int dfd)
{
    int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    size_t n = 0, cap = 16;
    char **v = malloc(cap * sizeof *v);
    struct dirent *e;
    while (v && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        if (n + 2 > cap) {
            char **w = realloc(v, (cap *= 2) * sizeof *v);
            if (!w)
                break;
            v = w;
        }
        if (!(v[n] = strdup(e->d_name)))
            break;
        v[++n] = NULL;
    }
    int failed = !v || e;
    closedir(d);
    if (failed) {
        for (size_t q = 0; v && q < n; q++)
            free(v[q]);
        free(v);
        errno = ENOMEM;
        return NULL;
    }
    if (!n)
        v[0] = NULL;
    return v;
}

static void names_free(char **v)
{
    for (size_t q = 0; v && v[q]; q++)
        free(v[q]);
    free(v);
}

/* The cache for list/clear: KF_OK with *c (mode may be -1 for "none"), or
 * an error for a refused directory. */
static int open_cache(kf_ctx *ctx, kfr_cache *c, const char *what)
{
    kfr_cache_locate(&ctx->opt, c, 0);
    if (c->mode < 0 && c->refused)
        return kfr_error(ctx, KF_ERR_IO, "%s: %s", what, c->why);
    return KF_OK;
}

/* Reads the whole meta of the entry efd into *out (malloc'd), and its stat
 * (the last use is its mtime). KF_OK, KF_ERR_NOMEM, or KF_ERR_IO
 * (unreadable: the entry is skipped). */
static int read_meta(int efd, char **out, struct stat *st)
{
    *out = NULL;
    /* O_NONBLOCK: a FIFO planted as meta must not hang the listing; the type
     * is checked on the descriptor before any read. */
    int fd = openat(efd, "meta", O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return KF_ERR_IO;
    int rc = KF_ERR_IO;
    if (fstat(fd, st) == 0 && S_ISREG(st->st_mode) && (size_t)st->st_size < KFR_MAX_META) {
        char *s = malloc((size_t)st->st_size + 1);
        ssize_t got = s ? read(fd, s, (size_t)st->st_size) : -1;
        if (!s) {
            rc = KF_ERR_NOMEM;
        } else if (got >= 0) {
            s[got] = 0;
            *out = s;
            rc = KF_OK;
        } else {
            free(s);
        }
    }
    close(fd);
    return rc;
}

/* The value of the "name value" line in meta (n bytes, its newlines
 * already turned into NULs by split_lines); "" if absent. */
static const char *field(const char *meta, size_t n, const char *name)
{
    size_t len = strlen(name);
    for (const char *line = meta; line < meta + n; line += strlen(line) + 1)
        if (strncmp(line, name, len) == 0 && line[len] == ' ')
            return line + len + 1;
    return "";
}

static size_t split_lines(char *meta)
{
    size_t n = strlen(meta);
    for (size_t q = 0; q < n; q++)
        if (meta[q] == '\n')
            meta[q] = 0;
    return n;
}

/* Bytes of the plain files in the entry efd; -1 when out of memory. */
static int64_t entry_size(int efd)
{
    int64_t total = 0;
    char **v = names_of(efd);
    if (!v && errno == ENOMEM)
        return -1;
    for (size_t q = 0; v && v[q]; q++) {
        struct stat st;
        if (fstatat(efd, v[q], &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode))
            total += st.st_size;
    }
    names_free(v);
    return total;
}

/* Lists entry key of c to fn (KF_OK, or the status that stops the listing;
 * *stop set when fn asked to). An entry that fails its checks, or vanishes
 * meanwhile, is skipped. */
static int list_one(kf_ctx *ctx, const kfr_cache *c, const char *key,
                    int (*fn)(void *user, const kf_cache_entry *e), void *user, int *stop)
{
    char why[600], obj[PATH_MAX + 16], red[256];
    int untrusted = 0;
    if (kfr_cache_check_entry(c, key, why, sizeof why, &untrusted) != KF_OK)
        return KF_OK;
    int efd = openat(c->dfd, key, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (efd < 0)
        return KF_OK; /* removed meanwhile */
    char *meta = NULL;
    struct stat st;
    int mrc = read_meta(efd, &meta, &st);
    int64_t size = mrc == KF_OK ? entry_size(efd) : 0;
    close(efd);
    if (mrc == KF_ERR_NOMEM || size < 0) {
        free(meta);
        return kfr_error(ctx, KF_ERR_NOMEM, "kf_cache_list: out of memory");
    }
    if (mrc != KF_OK)
        return KF_OK;
    snprintf(obj, sizeof obj, "%s/%s/meta", c->dir, key);
    kf_cache_entry e = {.key = key, .path = obj, .last_use = (int64_t)st.st_mtime,
                        .size_bytes = size};
    size_t n = split_lines(meta);
    e.tier = field(meta, n, "tier");
    e.reduction = field(meta, n, "reduction");
    e.formula = field(meta, n, "formula");
    /* A GPU entry (checked above: its image is kernel.cubin or kernel.ptx):
     * the image is its object, and the architecture it is for follows the
     * reduction ("Sum axis=1 float32 sm_90"), since kf_cache_entry has no
     * field of its own for it. */
    if (!strcmp(e.tier, "cuda")) {
        snprintf(obj, sizeof obj, "%s/%s/%s", c->dir, key, field(meta, n, "image"));
        snprintf(red, sizeof red, "%s %s", e.reduction, field(meta, n, "arch"));
        e.reduction = red;
    } else {
        snprintf(obj, sizeof obj, "%s/%s/kernel.so", c->dir, key);
    }
    *stop = fn(user, &e);
    free(meta);
    return KF_OK;
}

int kf_cache_list(kf_ctx *ctx, int (*fn)(void *user, const kf_cache_entry *e), void *user)
{
    if (!ctx)
        return KF_ERR_ARG;
    kfr_clear_error(ctx);
    if (!fn)
        return kfr_error(ctx, KF_ERR_ARG, "kf_cache_list: fn must not be NULL");
    kfr_cache c;
    int rc = open_cache(ctx, &c, "kf_cache_list");
    if (rc != KF_OK || c.dfd < 0) {
        kfr_cache_close(&c);
        return rc; /* no cache, or not created yet: empty */
    }
    char **names = names_of(c.dfd);
    if (!names) {
        int e = errno;
        kfr_cache_close(&c);
        if (e == ENOMEM)
            return kfr_error(ctx, KF_ERR_NOMEM, "kf_cache_list: out of memory");
        return kfr_error(ctx, KF_ERR_IO, "kf_cache_list: cannot read %s: %s", c.dir, strerror(e));
    }
    int stop = 0;
    for (size_t q = 0; names[q] && rc == KF_OK && !stop; q++)
        if (is_key(names[q]))
            rc = list_one(ctx, &c, names[q], fn, user, &stop);
    names_free(names);
    kfr_cache_close(&c);
    return rc;
}

int kf_cache_clear(kf_ctx *ctx, double older_than_days, int64_t *removed)
{
    if (!ctx)
        return KF_ERR_ARG;
    kfr_clear_error(ctx);
    if (removed)
        *removed = 0;
    kfr_cache c;
    int rc = open_cache(ctx, &c, "kf_cache_clear");
    if (rc == KF_OK && c.mode != 1)
        rc = kfr_error(ctx, KF_ERR_IO, "kf_cache_clear: %s", c.why);
    if (rc != KF_OK || c.dfd < 0) {
        kfr_cache_close(&c);
        return rc; /* or not created yet: nothing to clear */
    }
    /* Only in a directory that is kforge's: named as the cache, a home
     * directory must not lose its trash-2019/ (kfr_cache_locate tags the
     * directories kforge made or that hold only kforge's names). */
    if (!kfr_cache_is_ours(&c)) {
        rc = kfr_error(ctx, KF_ERR_IO,
                       "kf_cache_clear: %s is not a kforge cache (it has no CACHEDIR.TAG "
                       "written by kforge, and holds files kforge did not make): nothing removed",
                       c.dir);
        kfr_cache_close(&c);
        return rc;
    }
    char **names = names_of(c.dfd);
    if (!names) {
        int e = errno;
        kfr_cache_close(&c);
        if (e == ENOMEM)
            return kfr_error(ctx, KF_ERR_NOMEM, "kf_cache_clear: out of memory");
        return kfr_error(ctx, KF_ERR_IO, "kf_cache_clear: cannot read %s: %s", c.dir,
                         strerror(e));
    }
    time_t now = time(NULL);
    int64_t count = 0;
    for (size_t q = 0; names[q]; q++) {
        const char *name = names[q];
        struct stat st;
        if (fstatat(c.dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (is_key(name)) {
            /* Last use is the meta's mtime (touched on every load); an entry
             * without one counts from its own. Whatever it is (a directory, a
             * file, a link), it is removed whole and never followed. */
            struct stat ms;
            int efd = S_ISDIR(st.st_mode) ? openat(c.dfd, name, O_RDONLY | O_DIRECTORY |
                                                                   O_NOFOLLOW | O_CLOEXEC)
                                          : -1;
            time_t used = efd >= 0 && fstatat(efd, "meta", &ms, AT_SYMLINK_NOFOLLOW) == 0
                              ? ms.st_mtime
                              : st.st_mtime;
            if (efd >= 0)
                close(efd);
            if ((older_than_days < 0 || (double)(now - used) > older_than_days * 86400.0) &&
                kfr_cache_trash(&c, name) == KF_OK)
                count++;
        } else if (kfr_cache_is_trash(name) || (kfr_cache_is_build(name) && now - st.st_mtime > KFR_STALE_TMP_S)) {
            /* Leftovers of crashed processes; a build in progress is younger. */
            kfr_cache_remove(&c, name);
        }
    }
    names_free(names);
    kfr_cache_close(&c);
    if (removed)
        *removed = count;
    return KF_OK;
}
