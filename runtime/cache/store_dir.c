/*
 * store_dir.c -- the cache directory: where it is, whether it can be
 * trusted, its descriptor and its tag, and removing things in it.
 *
 * The directory is opened once, with O_NOFOLLOW, and checked on that
 * descriptor (owner, modes); everything after is relative to it. A user who
 * names a path that someone else can change (KFORGE_CACHE_DIR=/tmp/kc) thus
 * gets the directory that was checked, whatever happens to the path during
 * the run.
 *
 * The tag (CACHEDIR.TAG, https://bford.info/cachedir/) says the directory is
 * a cache, so that backup tools skip it and, here, so that kforge only ever
 * deletes in a directory it knows to be its own: `KFORGE_CACHE_DIR=$HOME
 * kforge cache clear` must not empty someone's trash-2019/ folder.
 */
#define _GNU_SOURCE /* O_NOFOLLOW, O_DIRECTORY */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime/cache/store_int.h"

void kfr_store_fmt(char *buf, size_t cap, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, cap, f, ap);
    va_end(ap);
}

const char *kfr_store_printable(const char *s, char *buf, size_t cap)
{
    size_t n = 0;
    for (; *s && n + 5 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c < 0x7f)
            buf[n++] = (char)c;
        else
            n += (size_t)snprintf(buf + n, cap - n, "\\x%02x", c);
    }
    buf[n] = 0;
    return buf;
}

/* Ours or root's (root can replace our binaries anyway, so a team cache
 * installed by an administrator is as trusted as the library itself), and
 * writable by nobody else. */
const char *kfr_store_distrust(const struct stat *st, char *why, size_t cap)
{
    if (st->st_uid != geteuid() && st->st_uid != 0)
        snprintf(why, cap, "it is owned by uid %u, not by you (uid %u)", (unsigned)st->st_uid,
                 (unsigned)geteuid());
    else if (st->st_mode & (S_IWGRP | S_IWOTH))
        snprintf(why, cap, "it is %s-writable (mode %04o)",
                 (st->st_mode & S_IWGRP) && (st->st_mode & S_IWOTH) ? "group- and other"
                 : (st->st_mode & S_IWGRP)                          ? "group"
                                                                    : "other",
                 (unsigned)(st->st_mode & 07777));
    else
        return NULL;
    return why;
}

int kfr_store_key_ok(const char *key)
{
    return key && strspn(key, "0123456789abcdef") == KFR_HEX_LEN && !key[KFR_HEX_LEN];
}

int kfr_store_image_ok(const char *f)
{
    return f && (strcmp(f, "kernel.cubin") == 0 || strcmp(f, "kernel.ptx") == 0);
}

int kfr_store_object_ok(const char *f)
{
    return kfr_store_image_ok(f) || (f && strcmp(f, "kernel.so") == 0);
}

int kfr_store_open_dir(int dfd, const char *name)
{
    return openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* ---- the tag ---- */

/* The first line is the convention's; the rest names us, and kfr_store_tagged
 * looks for it, so another program's cache is not taken for ours. */
#define TAG_NAME "CACHEDIR.TAG"
#define TAG_SIGNATURE "Signature: 8a477f597d28d172789f06886806bc55"
#define TAG_TEXT                                                                                   \
    TAG_SIGNATURE "\n"                                                                             \
    "# kforge kernel cache: compiled kernels, rebuilt on demand; no need to back it up.\n"        \
    "# `kforge cache clear` deletes only what kforge made here (see docs/cache.md).\n"

int kfr_store_tagged(const kfr_cache *c)
{
    if (c->dfd < 0)
        return 0;
    int fd = openat(c->dfd, TAG_NAME, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char buf[256];
    struct stat st;
    ssize_t n = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) ? pread(fd, buf, sizeof buf - 1, 0) : -1;
    close(fd);
    if (n < (ssize_t)strlen(TAG_SIGNATURE))
        return 0;
    buf[n] = 0;
    return strncmp(buf, TAG_SIGNATURE, strlen(TAG_SIGNATURE)) == 0 && strstr(buf, "kforge");
}

/* The names kforge gives builds: tmp- and six characters of make_tmp's
 * (and mkdtemp's) alphabet. */
int kfr_cache_is_build(const char *s)
{
    return strncmp(s, "tmp-", 4) == 0 && strlen(s) == 10 &&
           strspn(s + 4, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") == 6;
}

/* ... and trash: trash-PID-SERIAL-NS (kfr_cache_trash). */
int kfr_cache_is_trash(const char *s)
{
    if (strncmp(s, "trash-", 6) != 0)
        return 0;
    int parts = 0;
    for (s += 6; *s; parts++) {
        size_t n = strspn(s, "0123456789");
        if (!n)
            return 0;
        s += n;
        if (*s == '-')
            s++;
        else if (*s)
            return 0;
    }
    return parts == 3;
}

/* Names kforge puts in a cache directory (entries, builds, trash, the tag). */
static int kforge_name(const char *s)
{
    return kfr_store_key_ok(s) || kfr_cache_is_build(s) || kfr_cache_is_trash(s) ||
           strcmp(s, TAG_NAME) == 0;
}

/* Tags a writable cache directory that kforge made (made), or that holds
 * nothing but what kforge puts there (a cache of an earlier version, or an
 * empty directory made for it); a directory with anything else in it (a
 * home directory named as the cache) is used but never tagged, and so
 * nothing in it is ever deleted but kforge's own fresh builds. */
static void tag_if_ours(int dfd, int made)
{
    kfr_cache probe = {.dfd = dfd};
    if (kfr_store_tagged(&probe))
        return;
    if (!made) {
        int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
        if (!d) {
            if (fd >= 0)
                close(fd);
            return;
        }
        struct dirent *e;
        int ours = 1;
        while (ours && (e = readdir(d)))
            ours = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || kforge_name(e->d_name);
        closedir(d);
        if (!ours)
            return;
    }
    int fd = openat(dfd, TAG_NAME, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        return; /* another process tagged it, or a read-only disk: either way fine */
    /* One write: a reader sees the signature whole or not at all, nearly always;
     * a torn tag only makes one `cache clear` refuse. */
    ssize_t w = write(fd, TAG_TEXT, strlen(TAG_TEXT));
    close(fd);
    if (w != (ssize_t)strlen(TAG_TEXT))
        unlinkat(dfd, TAG_NAME, 0);
}

/* ---- where the directory is ---- */

/* mkdir -p; every directory it creates is 0700. KF_OK or KF_ERR_IO (errno). */
static int mkdir_p(const char *dir)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = 0;
        if (mkdir(p, 0700) != 0 && errno != EEXIST)
            return KF_ERR_IO;
        *s = '/';
    }
    return mkdir(p, 0700) != 0 && errno != EEXIST ? KF_ERR_IO : KF_OK;
}

/* The directory the options and environment name, absolute: KF_OK, or
 * KF_ERR_IO with c->why (disabled, unset, too long). */
static int cache_path(const kf_options *opt, kfr_cache *c)
{
    const char *env = getenv("KFORGE_CACHE");
    if (opt->no_cache) {
        snprintf(c->why, sizeof c->why, "the disk cache is disabled (kf_options.no_cache)");
        return KF_ERR_IO;
    }
    if (env && (strcmp(env, "off") == 0 || strcmp(env, "0") == 0)) {
        snprintf(c->why, sizeof c->why, "the disk cache is disabled (KFORGE_CACHE=%s)", env);
        return KF_ERR_IO;
    }
    char base[PATH_MAX];
    const char *v;
    int n;
    if (opt->cache_dir && *opt->cache_dir)
        n = snprintf(base, sizeof base, "%s", opt->cache_dir);
    else if ((v = getenv("KFORGE_CACHE_DIR")) && *v)
        n = snprintf(base, sizeof base, "%s", v);
    /* The XDG spec says a relative $XDG_CACHE_HOME is invalid and ignored. */
    else if ((v = getenv("XDG_CACHE_HOME")) && *v == '/')
        n = snprintf(base, sizeof base, "%s/kforge", v);
    else if ((v = getenv("HOME")) && *v)
        n = snprintf(base, sizeof base, "%s/.cache/kforge", v);
    else {
        snprintf(c->why, sizeof c->why,
                 "no cache directory: none of KFORGE_CACHE_DIR, XDG_CACHE_HOME, HOME is set");
        return KF_ERR_IO;
    }
    if (n > 0 && base[0] != '/') {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd)) {
            snprintf(c->why, sizeof c->why, "the cache directory is relative and the current "
                                            "directory is unknown");
            return KF_ERR_IO;
        }
        n = snprintf(c->dir, sizeof c->dir, "%s/%s", cwd, base);
    } else {
        n = snprintf(c->dir, sizeof c->dir, "%s", base);
    }
    /* Room for "/KEY/kernel.so" in messages and for the compiler's paths. */
    if (n < 0 || (size_t)n + KFR_HEX_LEN + 32 >= sizeof c->dir) {
        c->dir[0] = 0;
        snprintf(c->why, sizeof c->why, "the cache directory's path is too long");
        return KF_ERR_IO;
    }
    while (n > 1 && c->dir[n - 1] == '/')
        c->dir[--n] = 0;
    return KF_OK;
}

/* For a directory that does not exist: can its nearest existing ancestor take it? */
static int creatable(const char *dir)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s", dir);
    for (;;) {
        char *slash = strrchr(p, '/');
        if (!slash)
            return 0;
        if (slash == p)
            slash[1] = 0;
        else
            *slash = 0;
        struct stat st;
        if (stat(p, &st) == 0)
            return S_ISDIR(st.st_mode) && access(p, W_OK | X_OK) == 0;
        if (errno != ENOENT || slash == p)
            return 0;
    }
}

/* c->why for a cache directory that open(O_NOFOLLOW | O_DIRECTORY) refused
 * with errno e; q is its printable name. Sets c->refused for a link. */
static void explain_open(kfr_cache *c, int e, const char *q)
{
    struct stat st;
    if (e == ELOOP || (e == ENOTDIR && lstat(c->dir, &st) == 0 && S_ISLNK(st.st_mode))) {
        char target[PATH_MAX] = "?", t[300];
        ssize_t n = readlink(c->dir, target, sizeof target - 1);
        target[n > 0 ? n : 1] = 0;
        c->refused = 1;
        kfr_store_fmt(c->why, sizeof c->why,
                      "refusing cache directory %s: it is a symbolic link (to %s), and whoever "
                      "can change the link chooses the code kforge loads (set KFORGE_CACHE_DIR "
                      "to the directory itself)",
                      q, kfr_store_printable(target, t, sizeof t));
    } else if (e == ENOTDIR) {
        snprintf(c->why, sizeof c->why, "cache directory %s is not a directory", q);
    } else {
        snprintf(c->why, sizeof c->why, "cache directory %s: %s", q, strerror(e));
    }
}

void kfr_cache_locate(const kf_options *opt, kfr_cache *c, int create)
{
    memset(c, 0, sizeof *c);
    c->mode = -1;
    c->dfd = -1;
    const char *t = getenv("TMPDIR");
    snprintf(c->tmp, sizeof c->tmp, "%s", t && t[0] == '/' && strlen(t) < 512 ? t : "/tmp");
    if (cache_path(opt, c) != KF_OK)
        return;
    char q[300], why[160];
    kfr_store_printable(c->dir, q, sizeof q);
    int made = 0;
    int fd = kfr_store_open_dir(AT_FDCWD, c->dir);
    if (fd < 0 && errno == ENOENT) {
        if (!create) {
            /* Not there yet: the first build creates it. */
            if (creatable(c->dir))
                c->mode = 1;
            else
                snprintf(c->why, sizeof c->why, "cache directory %s does not exist and cannot "
                                                "be created", q);
            return;
        }
        if (mkdir_p(c->dir) != KF_OK) {
            snprintf(c->why, sizeof c->why, "cannot create cache directory %s: %s", q,
                     strerror(errno));
            return;
        }
        made = 1;
        fd = kfr_store_open_dir(AT_FDCWD, c->dir);
    }
    if (fd < 0) {
        explain_open(c, errno, q);
        return;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(c->why, sizeof c->why, "cache directory %s: %s", q, strerror(errno));
        close(fd);
        return;
    }
    if (kfr_store_distrust(&st, why, sizeof why)) {
        c->refused = 1;
        kfr_store_fmt(c->why, sizeof c->why,
                      "refusing cache directory %s: %s, and loading code from it would run what "
                      "someone else put there (chmod go-w it, or set KFORGE_CACHE_DIR to a "
                      "directory of your own)",
                      q, why);
        close(fd);
        return;
    }
    c->dfd = fd;
    /* access() alone would call every directory writable for root; the
     * owner's write bit is the owner's decision, and we honour it. */
    if (st.st_uid == geteuid() && (st.st_mode & S_IWUSR) &&
        faccessat(fd, ".", W_OK | X_OK, AT_EACCESS) == 0) {
        c->mode = 1;
        tag_if_ours(fd, made);
        return;
    }
    c->mode = 0;
    snprintf(c->why, sizeof c->why,
             "cache directory %s is read-only (mode %04o, owner uid %u): cached kernels are "
             "loaded, new ones are built in a private temporary directory",
             q, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
}

void kfr_cache_close(kfr_cache *c)
{
    if (c && c->dfd >= 0)
        close(c->dfd);
    if (c)
        c->dfd = -1;
}

/* ---- removing ---- */

/* Never through a link: a link is removed itself (unlinkat does not follow
 * it), and directories are opened with O_NOFOLLOW, so an entry that someone
 * replaced by a link to their own files (or to ours) never deletes outside
 * the cache. Depth-bounded: kforge's entries are one level deep. */
static void remove_at(int dfd, const char *name, int depth)
{
    if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT || depth > 8)
        return;
    int fd = kfr_store_open_dir(dfd, name);
    if (fd < 0)
        return;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, ".."))
            remove_at(dirfd(d), e->d_name, depth + 1);
    closedir(d);
    unlinkat(dfd, name, AT_REMOVEDIR);
}

void kfr_store_remove_at(int dfd, const char *name)
{
    remove_at(dfd, name, 0);
}

void kfr_cache_remove(const kfr_cache *c, const char *name)
{
    if (c->dfd >= 0)
        remove_at(c->dfd, name, 0);
}

int kfr_cache_trash(const kfr_cache *c, const char *name)
{
    static atomic_uint serial;
    if (c->dfd < 0) {
        errno = EBADF;
        return KF_ERR_IO;
    }
    char t[96];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    snprintf(t, sizeof t, "trash-%ld-%u-%ld", (long)getpid(), atomic_fetch_add(&serial, 1),
             (long)ts.tv_nsec);
    if (renameat(c->dfd, name, c->dfd, t) != 0)
        return KF_ERR_IO;
    remove_at(c->dfd, t, 0);
    return KF_OK;
}

int kfr_cache_is_ours(const kfr_cache *c)
{
    return kfr_store_tagged(c);
}
