/*
 * store_read.c -- an entry as read: its meta, its verification (trust, key,
 * size, SHA-256: before anything of it is used), looking one up, and
 * rejecting one.
 *
 *   DIR/KEY/meta        text: key, tier, formula, reduction, created, the
 *                       object's size and SHA-256 (written last: it vouches
 *                       for kernel.so, kernel.cubin or kernel.ptx)
 *   DIR/KEY/kernel.so   the object (tier cc); carries its key (objects.c)
 *   DIR/KEY/kernel.c    the generated source, for debugging
 *   DIR/KEY/kernel.cubin or kernel.ptx   the GPU image (tier cuda; the meta
 *                       also names the arch and NVRTC version), and
 *   DIR/KEY/kernel.cu   its CUDA source, for debugging
 *
 * Every open is relative to the cache's descriptor and the entry's, with
 * O_NOFOLLOW; the object is read into memory once and hashed there, so the
 * bytes a caller gets are the bytes that were verified.
 */
#define _GNU_SOURCE /* O_NOFOLLOW, O_DIRECTORY */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/cache/store_int.h"

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

static void meta_field(meta_fields *m, const char *line)
{
    if (strcmp(line, "kforge-cache 1") == 0)
        m->header = 1;
    else if (strncmp(line, "key ", 4) == 0 && strlen(line + 4) == KFR_HEX_LEN)
        memcpy(m->key, line + 4, KFR_HEX_LEN + 1);
    else if (strncmp(line, "so_sha256 ", 10) == 0 && strlen(line + 10) == KFR_HEX_LEN)
        memcpy(m->sha, line + 10, KFR_HEX_LEN + 1);
    else if (strncmp(line, "tier ", 5) == 0)
        kfr_store_fmt(m->tier, sizeof m->tier, "%s", line + 5);
    else if (strncmp(line, "so_size ", 8) == 0)
        m->so_size = strtoll(line + 8, NULL, 10);
    else if (strncmp(line, "created ", 8) == 0)
        m->created = strtoll(line + 8, NULL, 10);
    else if (strncmp(line, "arch ", 5) == 0)
        kfr_store_fmt(m->arch, sizeof m->arch, "%s", line + 5);
    else if (strncmp(line, "image ", 6) == 0)
        kfr_store_fmt(m->image, sizeof m->image, "%s", line + 6);
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

/* Opens name under the entry's descriptor efd without following a link and
 * checks it is a trusted regular file. KF_OK with *fd, or KF_ERR_IO with why
 * (and *untrusted for ownership). */
static int open_trusted(int efd, const char *name, int *fd, struct stat *st, char *why,
                        size_t cap, int *untrusted)
{
    /* O_NONBLOCK: opening a FIFO planted in the entry would block until a
     * writer came; the type is checked on the descriptor before any read
     * (reads of a regular file ignore the flag). */
    *fd = openat(efd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (*fd < 0) {
        snprintf(why, cap, "%s: %s", name, errno == ELOOP ? "a symbolic link" : strerror(errno));
        return KF_ERR_IO;
    }
    char w[160];
    if (fstat(*fd, st) != 0 || !S_ISREG(st->st_mode)) {
        snprintf(why, cap, "%s is not a regular file", name);
    } else if (kfr_store_distrust(st, w, sizeof w)) {
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

/* The largest object an entry may vouch for (a kernel.so or a CUBIN is
 * kilobytes to a few megabytes); a meta claiming more is invalid rather
 * than a huge malloc. */
#define KFR_MAX_IMAGE ((int64_t)256 << 20)

/* Hashes the object (open as fd, st its stat) against the meta's size and
 * sha; with img, reads it into memory and hashes those bytes. */
static int hash_object(int fd, const struct stat *st, int64_t want_size, const char *sha,
                       char **img, size_t *len, int64_t *size)
{
    char got[KFR_HEX_LEN + 1] = "";
    *size = -1;
    if (!img) {
        int rc = kfr_sha256_fd(fd, got, size) == KF_OK ? KF_OK : KF_ERR_IO;
        return rc == KF_OK && *size == want_size && strcmp(got, sha) == 0 ? KF_OK : KF_ERR_IO;
    }
    *size = st->st_size;
    if (*size != want_size || *size > KFR_MAX_IMAGE)
        return KF_ERR_IO;
    char *buf = NULL;
    int rc = read_image(fd, *size, &buf);
    if (rc != KF_OK)
        return rc;
    if (kfr_sha256_hex(buf, (size_t)*size, got) != KF_OK || strcmp(got, sha) != 0) {
        free(buf);
        return KF_ERR_IO;
    }
    *img = buf;
    *len = (size_t)*size;
    return KF_OK;
}

/* (store_int.h) Checks entry key (under the cache's descriptor dfd): trust (directory,
 * meta, object), the meta names key and a known tier, the object has the
 * meta's size and SHA-256. want, if not NULL, is the object the caller needs
 * ("kernel.so", "kernel.cubin", "kernel.ptx"): an entry holding another is
 * invalid. With img, the object is read into memory (*img malloc'd,
 * NUL-terminated, *len) and the hash is taken over those bytes, so what is
 * returned is exactly what was verified. KF_OK; KF_ERR_IO with why
 * (*untrusted set for ownership or permissions); KF_ERR_NOMEM (says nothing
 * about the entry). */
int kfr_store_verify(int dfd, const char *key, const char *want, char **img, size_t *len,
                        char *why, size_t cap, int *untrusted)
{
    struct stat st;
    char w[160];
    int efd = kfr_store_open_dir(dfd, key);
    if (efd < 0) {
        int e = errno;
        struct stat ls;
        if (fstatat(dfd, key, &ls, AT_SYMLINK_NOFOLLOW) == 0 && !S_ISDIR(ls.st_mode))
            snprintf(why, cap, "not a directory%s", S_ISLNK(ls.st_mode) ? " (a symbolic link)" : "");
        else
            snprintf(why, cap, "%s", strerror(e));
        return KF_ERR_IO;
    }
    int rc = KF_ERR_IO, fd = -1;
    meta_fields m;
    if (fstat(efd, &st) != 0) {
        snprintf(why, cap, "%s", strerror(errno));
        goto out;
    }
    if (kfr_store_distrust(&st, w, sizeof w)) {
        snprintf(why, cap, "%s", w);
        *untrusted = 1;
        goto out;
    }
    if (open_trusted(efd, "meta", &fd, &st, why, cap, untrusted) != KF_OK)
        goto out;
    int mrc = meta_scan(fd, &m);
    close(fd);
    int cc = strcmp(m.tier, "cc") == 0 && m.sha[0] && m.so_size >= 0;
    int cuda = strcmp(m.tier, "cuda") == 0 && m.arch[0] && kfr_store_image_ok(m.image) &&
               m.image_sha[0] && m.image_size >= 0;
    if (mrc != KF_OK || !m.header || strcmp(m.key, key) != 0 || !(cc || cuda)) {
        snprintf(why, cap, "its metadata is incomplete or names another key");
        goto out;
    }
    const char *name = cc ? "kernel.so" : m.image, *sha = cc ? m.sha : m.image_sha;
    int64_t want_size = cc ? m.so_size : m.image_size;
    if (want && strcmp(want, name) != 0) {
        snprintf(why, cap, "it holds %s (tier %s), not %s", name, m.tier, want);
        goto out;
    }
    /* The object's bytes must be the ones the metadata vouches for: this
     * catches truncation and alteration BEFORE anything uses them. */
    if (open_trusted(efd, name, &fd, &st, why, cap, untrusted) != KF_OK)
        goto out;
    int64_t size;
    rc = hash_object(fd, &st, want_size, sha, img, len, &size);
    close(fd);
    if (rc == KF_ERR_NOMEM)
        snprintf(why, cap, "out of memory reading %s (%lld bytes)", name, (long long)want_size);
    else if (rc != KF_OK)
        snprintf(why, cap, "%s (%lld bytes) does not match its metadata (%lld bytes, "
                           "sha256 %.12s...): truncated or altered",
                 name, (long long)size, (long long)want_size, sha);
out:
    close(efd);
    return rc;
}

int kfr_cache_check_entry(const kfr_cache *c, const char *key, char *why, size_t cap,
                          int *untrusted)
{
    if (c->dfd < 0 || !kfr_store_key_ok(key)) {
        snprintf(why, cap, "no cache directory, or a bad key");
        return KF_ERR_IO;
    }
    return kfr_store_verify(c->dfd, key, NULL, NULL, NULL, why, cap, untrusted) == KF_OK ? KF_OK
                                                                                     : KF_ERR_IO;
}

/* ---- looking entries up ---- */

void kfr_entry_touch(const kfr_cache *c, const char *key)
{
    if (c->mode != 1 || c->dfd < 0)
        return;
    int efd = kfr_store_open_dir(c->dfd, key);
    if (efd >= 0) {
        utimensat(efd, "meta", NULL, AT_SYMLINK_NOFOLLOW);
        close(efd);
    }
}

kfr_found kfr_entry_reject(const kfr_cache *c, const char *key, int untrusted, const char *w,
                           char *why, size_t cap)
{
    char entry[PATH_MAX], q[300];
    kfr_store_fmt(entry, sizeof entry, "%s/%s", c->dir, key);
    /* Only in a directory that is kforge's (tagged): a directory of 64 hex
     * digits in a home directory named as the cache is someone's, not a
     * damaged entry. */
    int removed = c->mode == 1 && kfr_store_tagged(c) && kfr_cache_trash(c, key) == KF_OK;
    snprintf(why, cap, "%s cache entry %s: %s; %s", untrusted ? "refusing" : "invalid",
             kfr_store_printable(entry, q, sizeof q), w,
             removed ? "removed it, rebuilding" : "not loading it, compiling anew");
    return untrusted ? KFR_UNTRUSTED : KFR_INVALID;
}

kfr_found kfr_entry_read(const kfr_cache *c, const char *key, const char *fname, char **img,
                         size_t *len, char *why, size_t cap)
{
    *img = NULL;
    *len = 0;
    if (c->mode < 0 || c->dfd < 0)
        return KFR_ABSENT;
    if (!kfr_store_key_ok(key) || !kfr_store_object_ok(fname)) {
        snprintf(why, cap, "kfr_entry_read: bad key or file name");
        return KFR_INVALID;
    }
    struct stat st;
    if (fstatat(c->dfd, key, &st, AT_SYMLINK_NOFOLLOW) != 0 && errno == ENOENT)
        return KFR_ABSENT;
    int untrusted = 0;
    char w[400];
    int rc = kfr_store_verify(c->dfd, key, fname, img, len, w, sizeof w, &untrusted);
    if (rc == KF_OK)
        return KFR_FOUND;
    if (rc == KF_ERR_NOMEM) {
        /* A failure of our memory, not of the entry: kept. */
        char q[300], entry[PATH_MAX];
        kfr_store_fmt(entry, sizeof entry, "%s/%s", c->dir, key);
        snprintf(why, cap, "cache entry %s: %s; not loading it",
                 kfr_store_printable(entry, q, sizeof q), w);
        return KFR_INVALID;
    }
    return kfr_entry_reject(c, key, untrusted, w, why, cap);
}

kfr_found kfr_cache_load_blob(const kfr_cache *c, const char *key, const char *fname, char **img,
                              size_t *len, char *why, size_t cap)
{
    *img = NULL;
    *len = 0;
    if (!kfr_store_image_ok(fname)) {
        snprintf(why, cap, "kfr_cache_load_blob: bad file name (kernel.cubin or kernel.ptx)");
        return KFR_INVALID;
    }
    kfr_found f = kfr_entry_read(c, key, fname, img, len, why, cap);
    if (f == KFR_FOUND)
        kfr_entry_touch(c, key);
    return f;
}
