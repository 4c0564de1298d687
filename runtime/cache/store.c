/*
 * store.c -- the kernel cache as a store of entries: where the directory is
 * and whether it can be trusted, what an entry holds and how it is verified
 * (before anything of it runs), and how one is written (atomically, whatever
 * other processes do). It knows bytes, file names and keys -- not kernels,
 * not compilers, not dlopen (objects.c). docs/cache.md is the user's
 * description of all this.
 *
 *   DIR/KEY/meta        text: key, tier, formula, reduction, created, the
 *                       object's size and SHA-256 (written last: it vouches
 *                       for kernel.so, kernel.cubin or kernel.ptx)
 *   DIR/KEY/kernel.so   the object (tier cc); carries `kf_cache_key`
 *   DIR/KEY/kernel.c    the generated source, for debugging
 *   DIR/KEY/kernel.cubin or kernel.ptx   the GPU image (tier cuda; the meta
 *                       also names the arch and NVRTC version), and
 *   DIR/KEY/kernel.cu   its CUDA source, for debugging
 *   DIR/tmp-XXXXXX/     a build in progress, renamed to DIR/KEY when complete
 *   DIR/trash-*         an entry being removed
 *
 * Errors: kf_status and a (why, cap) reason; lookups return a kfr_found
 * (cache.h).
 */
#define _GNU_SOURCE /* mkdtemp, O_NOFOLLOW, utimensat */
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

#include "runtime/cache/cache.h"

/* snprintf for paths and messages whose length was bounded earlier (the
 * directory's length is checked once in cache_path); a longer result is
 * cut, which at worst fails the open that follows. */
static void fmt(char *buf, size_t cap, const char *f, ...) __attribute__((format(printf, 3, 4)));
static void fmt(char *buf, size_t cap, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, cap, f, ap);
    va_end(ap);
}

/* ---- trust: who may have written a file we are about to run ---- */

/* Ours or root's (root can replace our binaries anyway, so a team cache
 * installed by an administrator is as trusted as the library itself), and
 * writable by nobody else. */
static int trusted_owner(const struct stat *st)
{
    return st->st_uid == geteuid() || st->st_uid == 0;
}

/* Copies s for a message: printable ASCII, the rest as \xHH, at most cap-1. */
static const char *printable(const char *s, char *buf, size_t cap)
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

/* Why st (of the file or directory named) cannot be trusted, or NULL. */
static const char *distrust(const struct stat *st, char *why, size_t cap)
{
    if (!trusted_owner(st))
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

/* ---- the directory ---- */

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
    /* Room for "/KEY/kernel.so" and the temporary names under it. */
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

void kfr_cache_locate(const kf_options *opt, kfr_cache *c, int create)
{
    memset(c, 0, sizeof *c);
    c->mode = -1;
    const char *t = getenv("TMPDIR");
    snprintf(c->tmp, sizeof c->tmp, "%s", t && t[0] == '/' && strlen(t) < 512 ? t : "/tmp");
    if (cache_path(opt, c) != KF_OK)
        return;
    char q[300], why[160];
    printable(c->dir, q, sizeof q);
    struct stat st;
    if (stat(c->dir, &st) != 0) {
        if (errno != ENOENT) {
            snprintf(c->why, sizeof c->why, "cache directory %s: %s", q, strerror(errno));
            return;
        }
        if (!create) {
            /* Not there yet: the first build creates it. */
            if (creatable(c->dir))
                c->mode = 1;
            else
                snprintf(c->why, sizeof c->why, "cache directory %s does not exist and cannot "
                                                "be created", q);
            return;
        }
        if (mkdir_p(c->dir) != KF_OK || stat(c->dir, &st) != 0) {
            snprintf(c->why, sizeof c->why, "cannot create cache directory %s: %s", q,
                     strerror(errno));
            return;
        }
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(c->why, sizeof c->why, "cache directory %s is not a directory", q);
        return;
    }
    if (distrust(&st, why, sizeof why)) {
        c->refused = 1;
        fmt(c->why, sizeof c->why,
                 "refusing cache directory %s: %s, and loading code from it would run what "
                 "someone else put there (chmod go-w it, or set KFORGE_CACHE_DIR to a directory "
                 "of your own)",
                 q, why);
        return;
    }
    /* access() alone would call every directory writable for root; the
     * owner's write bit is the owner's decision, and we honour it. */
    if (st.st_uid == geteuid() && (st.st_mode & S_IWUSR) && access(c->dir, W_OK | X_OK) == 0) {
        c->mode = 1;
        return;
    }
    c->mode = 0;
    snprintf(c->why, sizeof c->why,
             "cache directory %s is read-only (mode %04o, owner uid %u): cached kernels are "
             "loaded, new ones are built in a private temporary directory",
             q, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid);
}

/* The short fields of a meta file; long lines (the formula) are skipped, so
 * this reads any meta with a fixed buffer and no heap. A cc entry vouches
 * for kernel.so with so_size/so_sha256; a cuda entry names its image file
 * (image) and vouches for it with image_size/image_sha256. */
typedef struct meta_fields {
    char key[KFR_HEX_LEN + 1], sha[KFR_HEX_LEN + 1], tier[16];
    char arch[32], image[16], image_sha[KFR_HEX_LEN + 1];
    int64_t so_size, image_size, created;
    int header;
} meta_fields;

/* The files a cuda entry's image may be. */
static int image_name_ok(const char *f)
{
    return f && (strcmp(f, "kernel.cubin") == 0 || strcmp(f, "kernel.ptx") == 0);
}

/* A key names a directory: it must be the hex we compute, nothing else. */
static int key_ok(const char *key)
{
    return key && strspn(key, "0123456789abcdef") == KFR_HEX_LEN && !key[KFR_HEX_LEN];
}

static void meta_field(meta_fields *m, const char *line)
{
    if (strcmp(line, "kforge-cache 1") == 0)
        m->header = 1;
    else if (strncmp(line, "key ", 4) == 0 && strlen(line + 4) == KFR_HEX_LEN)
        memcpy(m->key, line + 4, KFR_HEX_LEN + 1);
    else if (strncmp(line, "so_sha256 ", 10) == 0 && strlen(line + 10) == KFR_HEX_LEN)
        memcpy(m->sha, line + 10, KFR_HEX_LEN + 1);
    else if (strncmp(line, "tier ", 5) == 0)
        fmt(m->tier, sizeof m->tier, "%s", line + 5);
    else if (strncmp(line, "so_size ", 8) == 0)
        m->so_size = strtoll(line + 8, NULL, 10);
    else if (strncmp(line, "created ", 8) == 0)
        m->created = strtoll(line + 8, NULL, 10);
    else if (strncmp(line, "arch ", 5) == 0)
        fmt(m->arch, sizeof m->arch, "%s", line + 5);
    else if (strncmp(line, "image ", 6) == 0)
        fmt(m->image, sizeof m->image, "%s", line + 6);
    else if (strncmp(line, "image_size ", 11) == 0)
        m->image_size = strtoll(line + 11, NULL, 10);
    else if (strncmp(line, "image_sha256 ", 13) == 0 && strlen(line + 13) == KFR_HEX_LEN)
        memcpy(m->image_sha, line + 13, KFR_HEX_LEN + 1);
}

/* KF_OK, or KF_ERR_IO when fd cannot be read. */
static int meta_scan(int fd, meta_fields *m)
{
    memset(m, 0, sizeof *m);
    m->so_size = -1;
    m->image_size = -1;
    char line[256], chunk[4096];
    size_t n = 0;
    int skipping = 0;
    ssize_t got;
    while ((got = read(fd, chunk, sizeof chunk)) > 0) {
        for (ssize_t q = 0; q < got; q++) {
            char c = chunk[q];
            if (c == '\n') {
                line[n] = 0;
                if (!skipping)
                    meta_field(m, line);
                n = 0;
                skipping = 0;
            } else if (n + 1 < sizeof line) {
                line[n++] = c;
            } else {
                skipping = 1;
            }
        }
    }
    return got < 0 ? KF_ERR_IO : KF_OK;
}

/* ---- removing ---- */

/* Removes name (relative to dfd) and, if it is a directory, what is in it,
 * never through a link: a link is removed itself (unlinkat does not follow
 * it), and directories are opened with O_NOFOLLOW, so an entry that someone
 * replaced by a link to their own files (or to ours) never deletes outside
 * the cache. Depth-bounded: kforge's entries are one level deep. */
static void remove_at(int dfd, const char *name, int depth)
{
    if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT || depth > 8)
        return;
    int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
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

/* Removes an entry, a build or a trash, whatever it turned out to be (a
 * directory, a plain file, a link), without following links. */
void kfr_cache_remove_tree(const char *dir)
{
    remove_at(AT_FDCWD, dir, 0);
}

/* Takes an entry out of the cache: renamed first (atomic: no reader sees
 * half an entry), then deleted. */
int kfr_cache_trash(const char *cachedir, const char *entry)
{
    static atomic_uint serial;
    char t[PATH_MAX];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    fmt(t, sizeof t, "%s/trash-%ld-%u-%ld", cachedir, (long)getpid(),
             atomic_fetch_add(&serial, 1), (long)ts.tv_nsec);
    if (rename(entry, t) != 0)
        return KF_ERR_IO;
    kfr_cache_remove_tree(t);
    return KF_OK;
}

/* ---- verifying an entry ---- */

/* Opens dir/name without following a link and checks it is a trusted
 * regular file. KF_OK with *fd, or KF_ERR_IO with why (and *untrusted for
 * ownership). */
static int open_trusted(const char *dir, const char *name, int *fd, struct stat *st, char *why,
                        size_t cap, int *untrusted)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    /* O_NONBLOCK: opening a FIFO planted in the entry would block until a
     * writer came; the type is checked on the descriptor before any read
     * (reads of a regular file ignore the flag). */
    *fd = open(p, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (*fd < 0) {
        snprintf(why, cap, "%s: %s", name, strerror(errno));
        return KF_ERR_IO;
    }
    char w[160];
    if (fstat(*fd, st) != 0 || !S_ISREG(st->st_mode)) {
        snprintf(why, cap, "%s is not a regular file", name);
    } else if (distrust(st, w, sizeof w)) {
        snprintf(why, cap, "%s: %s", name, w);
        *untrusted = 1;
    } else {
        return KF_OK;
    }
    close(*fd);
    *fd = -1;
    return KF_ERR_IO;
}

/* Reads exactly n bytes of fd into a malloc'd, NUL-terminated buffer.
 * KF_OK with *out; KF_ERR_IO when the file is shorter; KF_ERR_NOMEM. */
static int read_image(int fd, int64_t n, char **out)
{
    char *buf = malloc((size_t)n + 1);
    if (!buf)
        return KF_ERR_NOMEM;
    int64_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, buf + got, (size_t)(n - got), got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += r;
    }
    if (got != n) {
        free(buf);
        return KF_ERR_IO;
    }
    buf[n] = 0;
    *out = buf;
    return KF_OK;
}

/* The largest GPU image an entry may vouch for (a CUBIN is kilobytes to a
 * few megabytes); a meta claiming more is invalid rather than a huge malloc. */
#define KFR_MAX_IMAGE ((int64_t)256 << 20)

/* Checks the entry directory against key: trust (directory, meta, object),
 * the meta names key and a known tier, the object has the meta's size and
 * SHA-256. want, if not NULL, is the object the caller needs ("kernel.so",
 * "kernel.cubin", "kernel.ptx"): an entry holding another is invalid. With
 * img, the object is read into memory (*img malloc'd, NUL-terminated, *len)
 * and the hash is taken over those bytes, so what is returned is exactly
 * what was verified. KF_OK; KF_ERR_IO with why (*untrusted set for ownership
 * or permissions); KF_ERR_NOMEM (says nothing about the entry). */
static int verify_entry(const char *entry, const char *key, const char *want, meta_fields *m,
                        char **img, size_t *len, char *why, size_t cap, int *untrusted)
{
    struct stat st;
    char w[160];
    if (lstat(entry, &st) != 0) {
        snprintf(why, cap, "%s", strerror(errno));
        return KF_ERR_IO;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(why, cap, "not a directory");
        return KF_ERR_IO;
    }
    if (distrust(&st, w, sizeof w)) {
        snprintf(why, cap, "%s", w);
        *untrusted = 1;
        return KF_ERR_IO;
    }
    int fd;
    if (open_trusted(entry, "meta", &fd, &st, why, cap, untrusted) != KF_OK)
        return KF_ERR_IO;
    int rc = meta_scan(fd, m);
    close(fd);
    int cc = strcmp(m->tier, "cc") == 0 && m->sha[0] && m->so_size >= 0;
    int cuda = strcmp(m->tier, "cuda") == 0 && m->arch[0] && image_name_ok(m->image) &&
               m->image_sha[0] && m->image_size >= 0;
    if (rc != KF_OK || !m->header || strcmp(m->key, key) != 0 || !(cc || cuda)) {
        snprintf(why, cap, "its metadata is incomplete or names another key");
        return KF_ERR_IO;
    }
    const char *name = cc ? "kernel.so" : m->image, *sha = cc ? m->sha : m->image_sha;
    int64_t want_size = cc ? m->so_size : m->image_size;
    if (want && strcmp(want, name) != 0) {
        snprintf(why, cap, "it holds %s (tier %s), not %s", name, m->tier, want);
        return KF_ERR_IO;
    }
    /* The object's bytes must be the ones the metadata vouches for: this
     * catches truncation and alteration BEFORE anything uses them. */
    if (open_trusted(entry, name, &fd, &st, why, cap, untrusted) != KF_OK)
        return KF_ERR_IO;
    char got[KFR_HEX_LEN + 1] = "";
    int64_t size = -1;
    if (!img) {
        rc = kfr_sha256_fd(fd, got, &size) == KF_OK ? KF_OK : KF_ERR_IO;
    } else {
        char *buf = NULL;
        size = st.st_size;
        rc = size != want_size || size > KFR_MAX_IMAGE ? KF_ERR_IO : read_image(fd, size, &buf);
        if (rc == KF_OK && kfr_sha256_hex(buf, (size_t)size, got) != KF_OK)
            rc = KF_ERR_IO;
        if (rc == KF_OK && strcmp(got, sha) == 0) {
            *img = buf;
            *len = (size_t)size;
        } else {
            free(buf);
        }
    }
    close(fd);
    if (rc == KF_ERR_NOMEM) {
        snprintf(why, cap, "out of memory reading %s (%lld bytes)", name, (long long)want_size);
        return KF_ERR_NOMEM;
    }
    if (rc != KF_OK || size != want_size || strcmp(got, sha) != 0) {
        snprintf(why, cap, "%s (%lld bytes) does not match its metadata (%lld bytes, "
                           "sha256 %.12s...): truncated or altered",
                 name, (long long)size, (long long)want_size, sha);
        return KF_ERR_IO;
    }
    return KF_OK;
}

/* (cache.h) */
int kfr_cache_check_entry(const char *entry, const char *key, char *why, size_t cap, int *untrusted)
{
    meta_fields m;
    return verify_entry(entry, key, NULL, &m, NULL, NULL, why, cap, untrusted) == KF_OK
               ? KF_OK
               : KF_ERR_IO;
}

/* ---- looking entries up ---- */

/* DIR/KEY. The key is checked by the callers that take it from outside. */
static void entry_dir(const kfr_cache *c, const char *key, char *entry)
{
    fmt(entry, PATH_MAX, "%s/%s", c->dir, key);
}

void kfr_entry_touch(const kfr_cache *c, const char *key)
{
    if (c->mode == 1) {
        char meta[PATH_MAX];
        fmt(meta, sizeof meta, "%s/%s/meta", c->dir, key);
        utimensat(AT_FDCWD, meta, NULL, 0);
    }
}

kfr_found kfr_entry_reject(const kfr_cache *c, const char *key, int untrusted, const char *w,
                           char *why, size_t cap)
{
    char entry[PATH_MAX], q[300];
    entry_dir(c, key, entry);
    int removed = c->mode == 1 && kfr_cache_trash(c->dir, entry) == KF_OK;
    snprintf(why, cap, "%s cache entry %s: %s; %s", untrusted ? "refusing" : "invalid",
             printable(entry, q, sizeof q), w,
             removed ? "removed it, rebuilding" : "not loading it, compiling anew");
    return untrusted ? KFR_UNTRUSTED : KFR_INVALID;
}

/* kfr_entry_find and kfr_cache_load_blob: img NULL checks the object on
 * disk, img not NULL reads it. A failure of our memory, not of the entry,
 * keeps it (INVALID, not removed). */
static kfr_found lookup(const kfr_cache *c, const char *key, const char *fname, char **img,
                        size_t *len, char *why, size_t cap)
{
    if (c->mode < 0)
        return KFR_ABSENT;
    char entry[PATH_MAX];
    entry_dir(c, key, entry);
    struct stat st;
    if (lstat(entry, &st) != 0 && errno == ENOENT)
        return KFR_ABSENT;
    int untrusted = 0;
    char w[400];
    meta_fields m;
    int rc = verify_entry(entry, key, fname, &m, img, len, w, sizeof w, &untrusted);
    if (rc == KF_OK)
        return KFR_FOUND;
    if (rc == KF_ERR_NOMEM) {
        char q[300];
        snprintf(why, cap, "cache entry %s: %s; not loading it", printable(entry, q, sizeof q), w);
        return KFR_INVALID;
    }
    return kfr_entry_reject(c, key, untrusted, w, why, cap);
}

kfr_found kfr_entry_find(const kfr_cache *c, const char *key, const char *fname, char *path,
                         char *why, size_t cap)
{
    if (!key_ok(key)) {
        snprintf(why, cap, "kfr_entry_find: bad key");
        return KFR_INVALID;
    }
    kfr_found f = lookup(c, key, fname, NULL, NULL, why, cap);
    if (f == KFR_FOUND)
        fmt(path, PATH_MAX, "%s/%s/%s", c->dir, key, fname);
    return f;
}

kfr_found kfr_cache_load_blob(const kfr_cache *c, const char *key, const char *fname, char **img,
                              size_t *len, char *why, size_t cap)
{
    *img = NULL;
    *len = 0;
    if (c->mode < 0)
        return KFR_ABSENT;
    if (!key_ok(key) || !image_name_ok(fname)) {
        snprintf(why, cap, "kfr_cache_load_blob: bad key or file name (kernel.cubin or kernel.ptx)");
        return KFR_INVALID;
    }
    kfr_found f = lookup(c, key, fname, img, len, why, cap);
    if (f == KFR_FOUND)
        kfr_entry_touch(c, key);
    return f;
}

/* ---- writing an entry ---- */

static int write_all(int fd, const void *data, size_t n)
{
    const char *s = data;
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return KF_ERR_IO;
        s += w;
        n -= (size_t)w;
    }
    return KF_OK;
}

/* Writes dir/name from n pieces of bytes, fsync'd. KF_OK or KF_ERR_IO (errno). */
static int write_pieces(const char *dir, const char *name, const kfr_bytes *v, int n)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return KF_ERR_IO;
    int rc = KF_OK;
    for (int k = 0; k < n && rc == KF_OK; k++)
        rc = write_all(fd, v[k].p, v[k].n);
    if (rc == KF_OK && fsync(fd) != 0)
        rc = KF_ERR_IO;
    return close(fd) != 0 || rc != KF_OK ? KF_ERR_IO : KF_OK;
}

static void fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

/* DIR/tmp-XXXXXX, created; a writable cache may not exist yet
 * (kfr_cache_locate without create). KF_OK or KF_ERR_IO (errno). */
static int shared_dir(const kfr_cache *c, char *out, size_t cap)
{
    fmt(out, cap, "%s/tmp-XXXXXX", c->dir);
    int made = mkdtemp(out) != NULL;
    if (!made && errno == ENOENT && mkdir_p(c->dir) == KF_OK) {
        fmt(out, cap, "%s/tmp-XXXXXX", c->dir);
        made = mkdtemp(out) != NULL;
    }
    if (!made)
        return KF_ERR_IO;
    chmod(out, 0755); /* the entry it becomes: readable where the cache is */
    return KF_OK;
}

/* A private build directory for an unwritable cache, under c->tmp. The key
 * is in its name so that no two different objects are ever dlopen'ed under
 * one path (glibc would hand back the first by name). */
static int private_dir(const kfr_cache *c, const char *key, char *out, size_t cap)
{
    fmt(out, cap, "%s/kforge-%.16s-XXXXXX", c->tmp, key);
    return mkdtemp(out) ? KF_OK : KF_ERR_IO;
}

int kfr_entry_begin(const kfr_cache *c, const char *key, int private_ok, kfr_entry_tx *tx,
                    char *why, size_t cap)
{
    memset(tx, 0, sizeof *tx);
    tx->c = c;
    snprintf(tx->key, sizeof tx->key, "%s", key);
    /* A full disk or a vanished directory: build privately, if allowed. */
    tx->shared = c->mode == 1 && shared_dir(c, tx->dir, sizeof tx->dir) == KF_OK;
    if (tx->shared)
        return KF_OK;
    if (!private_ok) {
        snprintf(why, cap, "cannot create a build directory in the cache: %s", strerror(errno));
        tx->dir[0] = 0;
        return KF_ERR_IO;
    }
    if (private_dir(c, key, tx->dir, sizeof tx->dir) != KF_OK) {
        snprintf(why, cap, "cannot create a temporary build directory: %s", strerror(errno));
        tx->dir[0] = 0;
        return KF_ERR_IO;
    }
    return KF_OK;
}

void kfr_entry_path(const kfr_entry_tx *tx, const char *name, char *path)
{
    fmt(path, PATH_MAX, "%s/%s", tx->dir, name);
}

int kfr_entry_write(kfr_entry_tx *tx, const char *name, const kfr_bytes *v, int n, char *why,
                    size_t cap)
{
    if (write_pieces(tx->dir, name, v, n) == KF_OK)
        return KF_OK;
    int e = errno;
    char p[PATH_MAX];
    kfr_entry_path(tx, name, p);
    snprintf(why, cap, "cannot write %s: %s", p, strerror(e));
    errno = e;
    return KF_ERR_IO;
}

int kfr_entry_seal(kfr_entry_tx *tx, const char *meta, const char *fname, char *why, size_t cap)
{
    /* A cc entry vouches for kernel.so with so_size/so_sha256, a cuda entry
     * names its image and vouches for it with image_size/image_sha256
     * (meta_field reads them back). */
    int so = strcmp(fname, "kernel.so") == 0;
    char obj[PATH_MAX], sha[KFR_HEX_LEN + 1] = "", sums[KFR_HEX_LEN + 96];
    kfr_entry_path(tx, fname, obj);
    /* The linker creates kernel.so with the umask's mode; a group-writable
     * umask must not make our own entry untrusted. (kfr_entry_write's files
     * are 0644 less the umask, which never adds group or other write.) */
    if (so)
        chmod(obj, 0644);
    int64_t size = -1;
    int fd = open(obj, O_RDONLY | O_CLOEXEC);
    int hashed = fd >= 0 && fsync(fd) == 0 && kfr_sha256_fd(fd, sha, &size) == KF_OK;
    if (fd >= 0)
        close(fd);
    if (so)
        snprintf(sums, sizeof sums, "so_size %lld\nso_sha256 %s\n", (long long)size, sha);
    else
        snprintf(sums, sizeof sums, "image %s\nimage_size %lld\nimage_sha256 %s\n", fname,
                 (long long)size, sha);
    kfr_bytes v[2] = {{meta, strlen(meta)}, {sums, strlen(sums)}};
    if (!hashed || write_pieces(tx->dir, "meta", v, 2) != KF_OK) {
        snprintf(why, cap, "cannot hash %s or write its metadata: %s", obj, strerror(errno));
        return KF_ERR_IO;
    }
    return KF_OK;
}

int kfr_entry_publish(kfr_entry_tx *tx, int *exists, char *why, size_t cap)
{
    *exists = 0;
    if (!tx->shared) {
        snprintf(why, cap, "a private build is never published");
        return KF_ERR_IO;
    }
    char entry[PATH_MAX];
    entry_dir(tx->c, tx->key, entry);
    if (rename(tx->dir, entry) == 0) {
        fsync_dir(tx->c->dir);
        tx->dir[0] = 0;
        return KF_OK;
    }
    if (errno == EEXIST || errno == ENOTEMPTY) {
        *exists = 1;
        return KF_OK;
    }
    snprintf(why, cap, "%s", strerror(errno));
    return KF_ERR_IO;
}

void kfr_entry_abort(kfr_entry_tx *tx)
{
    if (tx->dir[0])
        kfr_cache_remove_tree(tx->dir);
    tx->dir[0] = 0;
}

/* ---- storing a GPU image ---- */

int kfr_cache_store_blob(const kfr_cache *c, const char *key, const char *fname, const void *img,
                         size_t len, const char *src, const char *meta, int *stored, char *why,
                         size_t cap)
{
    *stored = 0;
    if (cap)
        why[0] = 0;
    if (!key_ok(key) || !image_name_ok(fname) || !meta || (!img && len)) {
        snprintf(why, cap, "kfr_cache_store_blob: bad key, file name (kernel.cubin or kernel.ptx), "
                           "image or meta");
        return KF_ERR_ARG;
    }
    if (c->mode != 1)
        return KF_OK; /* read-only or no cache: the caller keeps its image */
    kfr_entry_tx tx;
    int rc = kfr_entry_begin(c, key, 0, &tx, why, cap);
    if (rc != KF_OK)
        return rc;
    /* The source first and the meta last, as for kernel.so: the meta
     * vouches for the image, so an entry with a meta is complete. */
    kfr_bytes source = {src, src ? strlen(src) : 0}, image = {len ? img : "", len};
    if (src)
        rc = kfr_entry_write(&tx, "kernel.cu", &source, 1, why, cap);
    if (rc == KF_OK)
        rc = kfr_entry_write(&tx, fname, &image, 1, why, cap);
    if (rc == KF_OK)
        rc = kfr_entry_seal(&tx, meta, fname, why, cap);
    if (rc != KF_OK) {
        kfr_entry_abort(&tx);
        return KF_ERR_IO;
    }
    /* The whole entry appears at once or not at all; the first complete
     * entry wins. */
    char entry[PATH_MAX], w[600] = "";
    entry_dir(c, key, entry);
    for (int attempt = 0; attempt < 3; attempt++) {
        int exists;
        if (kfr_entry_publish(&tx, &exists, w, sizeof w) != KF_OK)
            break;
        if (!exists) {
            *stored = 1;
            return KF_OK;
        }
        /* Someone else's entry: keep it if it is valid and of this kind;
         * otherwise move it away and try again. */
        meta_fields m;
        int untrusted = 0;
        int v = verify_entry(entry, key, fname, &m, NULL, NULL, w, sizeof w, &untrusted);
        if (v == KF_OK) {
            kfr_entry_abort(&tx);
            *stored = 1;
            return KF_OK;
        }
        if (v == KF_ERR_NOMEM || (kfr_cache_trash(c->dir, entry) != KF_OK && errno != ENOENT))
            break;
    }
    kfr_entry_abort(&tx);
    char q[300];
    snprintf(why, cap, "cannot store cache entry %s: %s", printable(entry, q, sizeof q),
             w[0] ? w : "it kept changing");
    return KF_ERR_IO;
}
