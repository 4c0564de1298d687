/*
 * cache.h -- the kernel cache: a store of entries on disk that knows files,
 * keys and trust but not kernels, and the table of the objects this process
 * has loaded from it.
 *
 *   store_dir.c    where the directory is and whether it is trusted (opened
 *                  once with O_NOFOLLOW: everything else is relative to that
 *                  descriptor), its CACHEDIR.TAG, removing things in it
 *   store_read.c   entries (layout, meta, size + SHA-256), verified and read
 *                  into memory before anything of them is used
 *   store_write.c  entries published atomically (built in DIR/tmp-XXXXXX,
 *                  renamed to DIR/KEY)
 *   objects.c      the in-process table of dlopen'ed objects (refcounted),
 *                  and loading a cc entry of the store into it
 *   cache_admin.c  kf_cache_dir, kf_cache_list, kf_cache_clear
 *   hash.c         SHA-256 (OpenSSL EVP) in hex
 *
 * What is NOT here, and why: what a key is made of (the kernel's fields, the
 * compiler, the CPU) and running the compiler belong to the JIT
 * (runtime/jit/jit.h), which hands the store a key and the bytes of an entry.
 * The store never sees a kf_kernel, so the rules of trust and of the write
 * protocol can be read (and, later, hardened) in one file.
 *
 * ERRORS, one convention for the whole folder:
 *   - An operation returns a kf_status: KF_OK (0), or KF_ERR_IO (the disk or
 *     an entry failed), KF_ERR_NOMEM, KF_ERR_ARG (a bad key or file name),
 *     KF_ERR_JIT (an object does not load); the reason, one line, goes into
 *     the caller's (why, cap) buffer. errno is kept where the comment says so.
 *   - A lookup is not a failure: it returns a kfr_found (below), with the
 *     reason for anything but KFR_FOUND and KFR_ABSENT in (why, cap).
 *   - kfr_cache_locate describes, it does not fail: mode and why in kfr_cache.
 * Why a buffer and not a kfc_diag: the compiler's own message travels through
 * here (up to 1 KiB, more than kfc_diag.msg holds), and the callers (tiers.c,
 * cuda_run.c) log most of these reasons rather than fail with them.
 *
 * Paths: an entry is named by (cache, key) and its files by name only
 * ("meta", "kernel.so", ...); the store works relative to the cache's
 * directory descriptor (openat/fstatat/renameat/unlinkat, never following a
 * link), and the compiler runs in the build directory's descriptor
 * (kfr_entry_dirfd). Paths (kfr_cache.dir) are for messages only.
 *
 * docs/cache.md describes the layout, the key and the write protocol.
 */
#ifndef KF_RUNTIME_CACHE_H
#define KF_RUNTIME_CACHE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "kernels/abi.h" /* kfk_reduce_fn */
#include "kforge.h"      /* kf_options, kf_status */

#define KFR_HEX_LEN 64 /* SHA-256 in hex */

/* ---- hash.c ---- */
/* SHA-256 of data[0..n) into hex (NUL-terminated). KF_OK, or KF_ERR_INTERNAL
 * if OpenSSL failed. */
int kfr_sha256_hex(const void *data, size_t n, char hex[KFR_HEX_LEN + 1]);
/* SHA-256 of what is left to read from fd; *size gets the bytes read. KF_OK,
 * KF_ERR_IO (read failed) or KF_ERR_INTERNAL. */
int kfr_sha256_fd(int fd, char hex[KFR_HEX_LEN + 1], int64_t *size);

/* ---- store_dir.c: the directory ---- */
/* Where the cache is and what may be done with it. */
typedef struct kfr_cache {
    char dir[PATH_MAX]; /* absolute path ("" when there is none): for messages */
    int dfd;            /* the directory, opened with O_NOFOLLOW and checked on this
                           descriptor; -1 when there is none (or not created yet) */
    int mode;           /* 1 read-write, 0 read-only, -1 not usable */
    int refused;        /* mode -1 because of ownership or permissions (a security refusal) */
    char why[512];      /* for mode 0 and -1: the reason, one line */
    char tmp[600];      /* where private builds go: $TMPDIR or /tmp (read here, not in the
                           builder thread, which must not call getenv) */
} kfr_cache;
/* Resolves the directory from the options and the environment, opens it
 * (a symbolic link as the directory itself is refused) and checks it on the
 * descriptor; with create, a missing directory is created (0700). A writable
 * directory that kforge made, or that holds only what kforge puts there, is
 * tagged (CACHEDIR.TAG); nothing is ever removed from an untagged one but
 * kforge's own fresh builds. kfr_cache_close releases c->dfd. */
void kfr_cache_locate(const kf_options *opt, kfr_cache *c, int create);
void kfr_cache_close(kfr_cache *c);

/* What a lookup found. The values are those the loaders always returned. */
typedef enum kfr_found {
    KFR_FOUND = 1,      /* a valid entry: verified, its last use touched */
    KFR_ABSENT = 0,     /* no entry under this key (or no usable cache) */
    KFR_INVALID = -1,   /* an entry that fails its checks (damaged, incomplete, of
                           another kind); removed when the cache is writable */
    KFR_UNTRUSTED = -2, /* an entry someone else could have written; removed likewise */
} kfr_found;

/* ---- store_read.c: entries ----
 * An entry is DIR/KEY holding "meta" and exactly one object: "kernel.so"
 * (tier cc) or "kernel.cubin" / "kernel.ptx" (tier cuda), plus its source
 * for debugging. The meta is written last and vouches for the object with
 * its size and SHA-256. A key is 64 lowercase hex digits. */

/* Looks entry key up for its object fname ("kernel.so", "kernel.cubin",
 * "kernel.ptx"): trust (directory, meta, object), the meta names key and the
 * tier fname belongs to, the object has the meta's size and SHA-256. FOUND:
 * *img (malloc'd, NUL-terminated beyond *len bytes) holds exactly the bytes
 * that were hashed, read once through descriptors that never follow a link;
 * the last use is NOT touched (a caller that runs the object checks more
 * first: kfr_entry_touch). INVALID / UNTRUSTED: why is the log line, and the
 * entry was removed when c is writable and tagged (kfr_entry_reject); a key
 * that is not 64 lowercase hex digits is INVALID and touches nothing; out of
 * memory is INVALID and keeps the entry. Nothing of the entry runs here. */
kfr_found kfr_entry_read(const kfr_cache *c, const char *key, const char *fname, char **img,
                         size_t *len, char *why, size_t cap);
/* An entry the caller found wanting after kfr_entry_read (w says why: its
 * object does not load): removed when c is writable and tagged. Returns KFR_INVALID
 * (KFR_UNTRUSTED with untrusted) with the log line in why. */
kfr_found kfr_entry_reject(const kfr_cache *c, const char *key, int untrusted, const char *w,
                           char *why, size_t cap);
/* The last use, for `kforge cache clear --older-than`: the meta's mtime
 * (only when c is writable). */
void kfr_entry_touch(const kfr_cache *c, const char *key);

/* GPU images (tier cuda): fname is "kernel.cubin" or "kernel.ptx"; anything
 * else is refused, as is a key that is not 64 lowercase hex digits. */

/* kfr_entry_read for a GPU image (so PTX comes back as a C string), with
 * the last use touched. */
kfr_found kfr_cache_load_blob(const kfr_cache *c, const char *key, const char *fname, char **img,
                              size_t *len, char *why, size_t cap);
/* Stores img[0..len) as fname of entry key, with src (the CUDA source, may
 * be NULL) as kernel.cu and meta (the JIT's text) followed by the image's
 * name, size and SHA-256, by the protocol of docs/cache.md: written and
 * fsync'ed in DIR/tmp-XXXXXX, renamed to DIR/KEY; if a valid entry of this
 * kind is already there it wins (an invalid one is moved away first). KF_OK
 * with *stored = 1 when the entry is in the cache; KF_OK with *stored = 0
 * when c is read-only or unusable; KF_ERR_IO (why, *stored = 0) when writing
 * failed -- never fatal for the caller, whose image is good; KF_ERR_ARG for
 * a bad key, fname or meta. */
int kfr_cache_store_blob(const kfr_cache *c, const char *key, const char *fname, const void *img,
                         size_t len, const char *src, const char *meta, int *stored, char *why,
                         size_t cap);

/* ---- store_write.c: writing an entry ----
 * A new entry is made in a fresh directory, file by file, then published as
 * DIR/KEY in one rename; a reader sees no entry or a complete one. */
typedef struct kfr_entry_tx {
    const kfr_cache *c;
    char key[KFR_HEX_LEN + 1];
    int parent;          /* c->dfd for a shared build, AT_FDCWD for a private one */
    char name[PATH_MAX]; /* tmp-XXXXXX under parent, or the private TMP/kforge-KEY-XXXXXX;
                            "" once published or removed */
    int dfd;             /* the build directory, held open (-1 when none) */
    int shared;          /* it is in the cache and can be published */
} kfr_entry_tx;
/* Bytes to write: a file is the concatenation of some of these. */
typedef struct kfr_bytes {
    const void *p;
    size_t n;
} kfr_bytes;
/* Starts entry key. With c writable (and opened), in the cache; otherwise, or when that fails and private_ok, in a private
 * directory under c->tmp that can never be published (its name carries the
 * key, so no two objects are dlopen'ed under one path). KF_OK, or KF_ERR_IO
 * with why (nothing to abort). */
int kfr_entry_begin(const kfr_cache *c, const char *key, int private_ok, kfr_entry_tx *tx,
                    char *why, size_t cap);
/* Writes the file name of tx from the n pieces v, fsync'ed, mode 0644 (it
 * must not exist). KF_OK, or KF_ERR_IO with why and errno. */
int kfr_entry_write(kfr_entry_tx *tx, const char *name, const kfr_bytes *v, int n, char *why,
                    size_t cap);
/* The build directory's descriptor: the compiler runs in it (fchdir). */
int kfr_entry_dirfd(const kfr_entry_tx *tx);
/* Writes the meta, last: meta followed by the size and SHA-256 of the
 * object fname, which is fsync'ed, read into memory and hashed there (so
 * this vouches for what was written, whoever wrote it: the compiler writes
 * kernel.so, which is made 0644 here, so that a group-writable umask does
 * not make our own entry untrusted). With img, *img (malloc'd) and *len get
 * those very bytes: what the caller loads is what the meta vouches for.
 * KF_OK, or KF_ERR_IO / KF_ERR_NOMEM with why. */
int kfr_entry_seal(kfr_entry_tx *tx, const char *meta, const char *fname, char **img, size_t *len,
                   char *why, size_t cap);
/* Renames a shared tx to DIR/KEY. KF_OK with *exists = 0: published (tx is
 * then empty: nothing to abort); KF_OK with *exists = 1: an entry is there
 * already (the first complete one wins: rename onto a non-empty directory
 * fails) and tx is unchanged: the caller uses that entry and aborts, or
 * rejects it and tries again. KF_ERR_IO with why: neither. */
int kfr_entry_publish(kfr_entry_tx *tx, int *exists, char *why, size_t cap);
/* Deletes tx's directory (an abandoned build, or a private one after use). */
void kfr_entry_abort(kfr_entry_tx *tx);

/* ---- objects.c: the in-process table ---- */
/* A loaded optimized object, shared by every kernel of the process that uses
 * it (refcounted). */
typedef struct kfr_so kfr_so;
struct kfr_so {
    kfr_so *next;           /* table link; guarded by the table's mutex */
    int refs;               /* kernels holding it; guarded by the table's mutex */
    char key[KFR_HEX_LEN + 1];
    void *handle;           /* dlopen handle */
    int fd;                 /* the sealed memory file it was loaded from: held while the
                               object is, so no later object gets its /proc/self/fd name */
    kfk_reduce_fn fn;       /* its kf_reduce */
    char path[PATH_MAX];    /* the cache entry's object it came from ("" for a private build) */
};
/* A blank node, allocated up front by the caller so that the background
 * builder allocates nothing itself. NULL on out of memory. */
kfr_so *kfr_so_new(void);
/* The table's object for key with one more reference, or NULL. */
kfr_so *kfr_so_find(const char *key);
/* Loads the object img[0..len) (bytes verified by the caller) and puts it
 * in the table. Before any code of it runs (constructors run inside dlopen),
 * the bytes must carry key (the JIT compiles it into the object: "kforge
 * cache key " followed by the key, kfr_so_key_marker); then they are copied
 * into a sealed memory file and THAT is dlopen'ed, so what runs is what was
 * verified, whatever happens on disk meanwhile; the object's kf_cache_key
 * symbol is checked once more. entry, if not NULL, is the cache entry's path
 * the node remembers (for statistics). *spare is used and set to NULL; if
 * key is loaded already, that object gets the reference. KF_OK with *out (a
 * table reference), or KF_ERR_JIT / KF_ERR_NOMEM with why. */
int kfr_so_open_image(const char *img, size_t len, const char *key, const char *entry,
                      kfr_so **spare, kfr_so **out, char *why, size_t cap);
/* The text before the key in an object's bytes (objects.c). */
extern const char kfr_so_key_marker[];
/* Drops one reference; the last one unloads the object (NULL is allowed). */
void kfr_so_release(kfr_so *so);
/* Looks the cc entry key up in the store and loads its kernel.so into the
 * table: FOUND with *out (a table reference; *spare used as above), last use
 * touched. ABSENT, INVALID, UNTRUSTED as kfr_entry_read (an object that does
 * not load is INVALID, and removed likewise); nothing of a refused entry ran. */
kfr_found kfr_cache_load(const kfr_cache *c, const char *key, kfr_so **spare, kfr_so **out,
                         char *why, size_t cap);

/* ---- for kf_cache_list/clear (cache_admin.c) ---- */
/* Checks entry key of c, whatever its kind: trusted owner and modes, the
 * meta names key and tier cc (kernel.so) or cuda (an arch and kernel.cubin
 * or kernel.ptx), that file has the meta's size and SHA-256. KF_OK, or
 * KF_ERR_IO with why (*untrusted set when ownership or permissions are the
 * reason). Loads nothing. */
int kfr_cache_check_entry(const kfr_cache *c, const char *key, char *why, size_t cap,
                          int *untrusted);
/* Renames name (in c's directory) out of the way, atomically for readers,
 * then deletes it without following links. KF_OK, or KF_ERR_IO with errno
 * from the rename. The caller decides it is kforge's (kfr_cache_is_ours). */
int kfr_cache_trash(const kfr_cache *c, const char *name);
/* Deletes name in c's directory, whatever it is, never through a link. */
void kfr_cache_remove(const kfr_cache *c, const char *name);
/* The names kforge gives a build in progress (tmp-XXXXXX) and an entry
 * being removed (trash-PID-SERIAL-NS); clear removes nothing else but
 * entries. */
int kfr_cache_is_build(const char *name);
int kfr_cache_is_trash(const char *name);
/* Whether c's directory carries kforge's CACHEDIR.TAG (it is kforge's to
 * clean). */
int kfr_cache_is_ours(const kfr_cache *c);

#endif
