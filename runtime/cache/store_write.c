/*
 * store_write.c -- writing an entry, atomically whatever other processes
 * do: made in a fresh directory DIR/tmp-XXXXXX (or, for a cache we cannot
 * write, a private TMP/kforge-KEY-XXXXXX), file by file, sealed with the meta
 * (which vouches for the object), published as DIR/KEY in one rename. A
 * reader sees no entry or a complete one.
 *
 * The build directory is held open: every file is written, and the
 * compiler runs, relative to its descriptor (jit_cc.c starts the compiler
 * in it), so no rename of a path above it can send a write, or a read of
 * the source, somewhere else.
 */
#define _GNU_SOURCE /* O_NOFOLLOW, O_DIRECTORY, mkdtemp */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime/cache/store_int.h"

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

/* Writes name under dfd from n pieces of bytes, fsync'd. KF_OK or KF_ERR_IO (errno). */
static int write_pieces(int dfd, const char *name, const kfr_bytes *v, int n)
{
    int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0)
        return KF_ERR_IO;
    int rc = KF_OK;
    for (int k = 0; k < n && rc == KF_OK; k++)
        rc = write_all(fd, v[k].p, v[k].n);
    if (rc == KF_OK && fsync(fd) != 0)
        rc = KF_ERR_IO;
    int e = errno;
    rc = close(fd) != 0 || rc != KF_OK ? KF_ERR_IO : KF_OK;
    errno = e;
    return rc;
}

/* mkdtemp relative to a descriptor: tmp-XXXXXX under dfd, created 0700.
 * KF_OK with name, or KF_ERR_IO (errno). */
static int make_tmp(int dfd, char *name, size_t cap)
{
    static const char abc[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    for (int attempt = 0; attempt < 100; attempt++) {
        unsigned char r[6];
        if (getrandom(r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r) {
            /* No entropy yet (early boot): uniqueness is all that matters. */
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            unsigned long v = (unsigned long)ts.tv_nsec * 2654435761u ^ (unsigned long)getpid() ^
                              (unsigned long)attempt << 20;
            for (int q = 0; q < 6; q++, v >>= 6)
                r[q] = (unsigned char)v;
        }
        char s[7];
        for (int q = 0; q < 6; q++)
            s[q] = abc[r[q] % (sizeof abc - 1)];
        s[6] = 0;
        snprintf(name, cap, "tmp-%s", s);
        if (mkdirat(dfd, name, 0700) == 0)
            return KF_OK;
        if (errno != EEXIST)
            break;
    }
    name[0] = 0; /* not ours: nothing to remove */
    return KF_ERR_IO;
}

/* Opens the build directory just made (parent, name) and checks it is ours:
 * KF_OK with tx->dfd, or KF_ERR_IO (the directory is removed). */
static int hold(kfr_entry_tx *tx)
{
    tx->dfd = kfr_store_open_dir(tx->parent, tx->name);
    struct stat st;
    if (tx->dfd >= 0 && fstat(tx->dfd, &st) == 0 && st.st_uid == geteuid() &&
        !(st.st_mode & (S_IWGRP | S_IWOTH)))
        return KF_OK;
    int e = errno ? errno : EPERM;
    if (tx->dfd >= 0)
        close(tx->dfd);
    tx->dfd = -1;
    unlinkat(tx->parent, tx->name, AT_REMOVEDIR);
    tx->name[0] = 0;
    errno = e;
    return KF_ERR_IO;
}

int kfr_entry_begin(const kfr_cache *c, const char *key, int private_ok, kfr_entry_tx *tx,
                    char *why, size_t cap)
{
    memset(tx, 0, sizeof *tx);
    tx->c = c;
    tx->dfd = -1;
    snprintf(tx->key, sizeof tx->key, "%s", key);
    /* A full disk or a vanished directory: build privately, if allowed. */
    if (c->mode == 1 && c->dfd >= 0) {
        tx->parent = c->dfd;
        tx->shared = make_tmp(c->dfd, tx->name, sizeof tx->name) == KF_OK && hold(tx) == KF_OK;
        /* The entry it becomes is readable where the cache is. */
        if (tx->shared && fchmod(tx->dfd, 0755) == 0)
            return KF_OK;
        kfr_entry_abort(tx);
        tx->shared = 0;
    }
    if (!private_ok) {
        snprintf(why, cap, "cannot create a build directory in the cache: %s", strerror(errno));
        return KF_ERR_IO;
    }
    /* The key is in the name so that no two different objects are ever
     * built under one path (the compiler's messages name it). */
    tx->parent = AT_FDCWD;
    kfr_store_fmt(tx->name, sizeof tx->name, "%s/kforge-%.16s-XXXXXX", c->tmp, key);
    if (!mkdtemp(tx->name) || hold(tx) != KF_OK) {
        snprintf(why, cap, "cannot create a temporary build directory in %s: %s", c->tmp,
                 strerror(errno));
        tx->name[0] = 0;
        return KF_ERR_IO;
    }
    return KF_OK;
}

int kfr_entry_dirfd(const kfr_entry_tx *tx)
{
    return tx->dfd;
}

/* The build directory's name for messages. */
static const char *tx_where(const kfr_entry_tx *tx, char *buf, size_t cap)
{
    if (tx->shared)
        kfr_store_fmt(buf, cap, "%s/%s", tx->c->dir, tx->name);
    else
        kfr_store_fmt(buf, cap, "%s", tx->name);
    return buf;
}

int kfr_entry_write(kfr_entry_tx *tx, const char *name, const kfr_bytes *v, int n, char *why,
                    size_t cap)
{
    if (write_pieces(tx->dfd, name, v, n) == KF_OK)
        return KF_OK;
    int e = errno;
    char p[PATH_MAX];
    snprintf(why, cap, "cannot write %s/%s: %s", tx_where(tx, p, sizeof p), name, strerror(e));
    errno = e;
    return KF_ERR_IO;
}

/* The largest object sealed (the reader's limit, store_read.c). */
#define KFR_MAX_OBJECT ((int64_t)256 << 20)

/* Reads the object fname of tx whole (the compiler wrote it; the directory
 * is ours and held open). KF_OK with *buf, *size; KF_ERR_IO (errno); NOMEM. */
static int read_object(kfr_entry_tx *tx, const char *fname, int so, char **buf, int64_t *size)
{
    int fd = openat(tx->dfd, fname, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    struct stat st;
    if (fd < 0)
        return KF_ERR_IO;
    int rc = KF_ERR_IO;
    /* The linker creates kernel.so with the umask's mode; a group-writable
     * umask must not make our own entry untrusted. (kfr_entry_write's files
     * are 0644 less the umask, which never adds group or other write.) */
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= KFR_MAX_OBJECT &&
        (!so || fchmod(fd, 0644) == 0) && fsync(fd) == 0) {
        char *b = malloc((size_t)st.st_size + 1);
        int64_t got = 0;
        while (b && got < st.st_size) {
            ssize_t r = pread(fd, b + got, (size_t)(st.st_size - got), got);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0)
                break;
            got += r;
        }
        if (!b) {
            rc = KF_ERR_NOMEM;
        } else if (got == st.st_size) {
            b[got] = 0;
            *buf = b;
            *size = got;
            rc = KF_OK;
        } else {
            free(b);
            errno = EIO;
        }
    }
    close(fd);
    return rc;
}

int kfr_entry_seal(kfr_entry_tx *tx, const char *meta, const char *fname, char **img, size_t *len,
                   char *why, size_t cap)
{
    /* A cc entry vouches for kernel.so with so_size/so_sha256, a cuda entry
     * names its image and vouches for it with image_size/image_sha256
     * (store_read.c reads them back). The hash is taken over the bytes in
     * memory, and those are the bytes handed back: the caller loads exactly
     * what the meta vouches for. */
    int so = strcmp(fname, "kernel.so") == 0;
    char sha[KFR_HEX_LEN + 1] = "", sums[KFR_HEX_LEN + 96], p[PATH_MAX];
    char *buf = NULL;
    int64_t size = -1;
    int rc = read_object(tx, fname, so, &buf, &size);
    if (rc == KF_OK && kfr_sha256_hex(buf, (size_t)size, sha) != KF_OK)
        rc = KF_ERR_INTERNAL;
    if (rc != KF_OK) {
        snprintf(why, cap, "cannot read or hash %s/%s: %s", tx_where(tx, p, sizeof p), fname,
                 rc == KF_ERR_NOMEM ? "out of memory" : strerror(errno));
        free(buf);
        return rc == KF_ERR_NOMEM ? KF_ERR_NOMEM : KF_ERR_IO;
    }
    if (so)
        snprintf(sums, sizeof sums, "so_size %lld\nso_sha256 %s\n", (long long)size, sha);
    else
        snprintf(sums, sizeof sums, "image %s\nimage_size %lld\nimage_sha256 %s\n", fname,
                 (long long)size, sha);
    kfr_bytes v[2] = {{meta, strlen(meta)}, {sums, strlen(sums)}};
    if (write_pieces(tx->dfd, "meta", v, 2) != KF_OK) {
        snprintf(why, cap, "cannot write the metadata of %s: %s", tx_where(tx, p, sizeof p),
                 strerror(errno));
        free(buf);
        return KF_ERR_IO;
    }
    if (img) {
        *img = buf;
        *len = (size_t)size;
    } else {
        free(buf);
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
    if (renameat(tx->parent, tx->name, tx->parent, tx->key) == 0) {
        fsync(tx->parent);
        close(tx->dfd);
        tx->dfd = -1;
        tx->name[0] = 0;
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
    if (tx->dfd >= 0)
        close(tx->dfd);
    tx->dfd = -1;
    if (tx->name[0])
        kfr_store_remove_at(tx->parent, tx->name);
    tx->name[0] = 0;
}

/* ---- storing a GPU image ---- */

int kfr_cache_store_blob(const kfr_cache *c, const char *key, const char *fname, const void *img,
                         size_t len, const char *src, const char *meta, int *stored, char *why,
                         size_t cap)
{
    *stored = 0;
    if (cap)
        why[0] = 0;
    if (!kfr_store_key_ok(key) || !kfr_store_image_ok(fname) || !meta || (!img && len)) {
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
        rc = kfr_entry_seal(&tx, meta, fname, NULL, NULL, why, cap);
    if (rc != KF_OK) {
        kfr_entry_abort(&tx);
        return KF_ERR_IO;
    }
    /* The whole entry appears at once or not at all; the first complete
     * entry wins. */
    char entry[PATH_MAX], w[600] = "";
    kfr_store_fmt(entry, sizeof entry, "%s/%s", c->dir, key);
    for (int attempt = 0; attempt < 3; attempt++) {
        int exists;
        if (kfr_entry_publish(&tx, &exists, w, sizeof w) != KF_OK)
            break;
        if (!exists) {
            *stored = 1;
            return KF_OK;
        }
        /* Someone else's entry: keep it if it is valid and of this kind;
         * otherwise move it away (only in a cache that is kforge's) and try
         * again. */
        int untrusted = 0;
        int v = kfr_store_verify(c->dfd, key, fname, NULL, NULL, w, sizeof w, &untrusted);
        if (v == KF_OK) {
            kfr_entry_abort(&tx);
            *stored = 1;
            return KF_OK;
        }
        if (v == KF_ERR_NOMEM || !kfr_store_tagged(c) ||
            (kfr_cache_trash(c, key) != KF_OK && errno != ENOENT))
            break;
    }
    kfr_entry_abort(&tx);
    char q[300];
    snprintf(why, cap, "cannot store cache entry %s: %s", kfr_store_printable(entry, q, sizeof q),
             w[0] ? w : "it kept changing");
    return KF_ERR_IO;
}
