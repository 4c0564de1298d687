/*
 * cache.h -- the kernel cache: a store of entries on disk that knows files,
 * keys and trust but not kernels, and the table of the objects this process
 * has loaded from it.
 *
 *   store.c        where the directory is and whether it is trusted; entries
 *                  (layout, meta, size + SHA-256), looked up by key, published
 *                  atomically (build in DIR/tmp-XXXXXX, rename to DIR/KEY)
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
 * ("meta", "kernel.so", ...), so that the store can move to working relative
 * to a directory descriptor (openat/fstatat/renameat/unlinkat) without its
 * callers changing. The exceptions are kfr_entry_path (the compiler and
 * dlopen need a path) and the admin helpers at the end.
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

/* ---- store.c: the directory ---- */
/* Where the cache is and what may be done with it. */
typedef struct kfr_cache {
    char dir[PATH_MAX]; /* absolute path ("" when there is none) */
    int mode;           /* 1 read-write, 0 read-only, -1 not usable */
    int refused;        /* mode -1 because of ownership or permissions (a security refusal) */
    char why[512];      /* for mode 0 and -1: the reason, one line */
    char tmp[600];      /* where private builds go: $TMPDIR or /tmp (read here, not in the
                           builder thread, which must not call getenv) */
} kfr_cache;
/* Resolves the directory from the options and the environment and checks it;
 * with create, a missing directory is created (0700). */
void kfr_cache_locate(const kf_options *opt, kfr_cache *c, int create);

/* What a lookup found. The values are those the loaders always returned. */
typedef enum kfr_found {
    KFR_FOUND = 1,      /* a valid entry: verified, its last use touched */
    KFR_ABSENT = 0,     /* no entry under this key (or no usable cache) */
    KFR_INVALID = -1,   /* an entry that fails its checks (damaged, incomplete, of
                           another kind); removed when the cache is writable */
    KFR_UNTRUSTED = -2, /* an entry someone else could have written; removed likewise */
} kfr_found;

/* ---- store.c: entries ----
 * An entry is DIR/KEY holding "meta" and exactly one object: "kernel.so"
 * (tier cc) or "kernel.cubin" / "kernel.ptx" (tier cuda), plus its source
 * for debugging. The meta is written last and vouches for the object with
 * its size and SHA-256. A key is 64 lowercase hex digits. */

/* Looks entry key up for its object fname ("kernel.so", "kernel.cubin",
 * "kernel.ptx"): trust (directory, meta, object), the meta names key and the
 * tier fname belongs to, the object has the meta's size and SHA-256. FOUND:
 * path (cap PATH_MAX) names the verified object; the last use is NOT touched
 * (a caller that runs the object checks more first: kfr_entry_touch).
 * INVALID / UNTRUSTED: why is the log line, and the entry was removed when c
 * is writable (kfr_entry_reject); a key that is not 64 lowercase hex digits
 * is INVALID and touches nothing. Nothing of the entry runs here. */
kfr_found kfr_entry_find(const kfr_cache *c, const char *key, const char *fname, char *path,
                         char *why, size_t cap);
/* An entry the caller found wanting after kfr_entry_find (w says why: its
 * object does not load): removed when c is writable. Returns KFR_INVALID
 * (KFR_UNTRUSTED with untrusted) with the log line in why. */
kfr_found kfr_entry_reject(const kfr_cache *c, const char *key, int untrusted, const char *w,
                           char *why, size_t cap);
/* The last use, for `kforge cache clear --older-than`: the meta's mtime
 * (only when c is writable). */
void kfr_entry_touch(const kfr_cache *c, const char *key);

/* GPU images (tier cuda): fname is "kernel.cubin" or "kernel.ptx"; anything
 * else is refused, as is a key that is not 64 lowercase hex digits. */

/* Looks key up in the disk cache c, as kfr_entry_find does. FOUND: *img
 * (malloc'd, NUL-terminated beyond *len bytes, so PTX is a C string) holds
 * exactly the bytes whose size and SHA-256 the meta records (read once,
 * hashed in memory, then returned); the last use is touched. ABSENT: no
 * entry. INVALID: damaged, incomplete, holding another file than fname, a
 * bad key or fname, or out of memory (the only case where the entry is
 * kept); UNTRUSTED. why says what (a log line). */
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

/* ---- store.c: writing an entry ----
 * A new entry is made in a fresh directory, file by file, then published as
 * DIR/KEY in one rename; a reader sees no entry or a complete one. */
typedef struct kfr_entry_tx {
    const kfr_cache *c;
    char key[KFR_HEX_LEN + 1];
    char dir[PATH_MAX]; /* DIR/tmp-XXXXXX, or a private TMP/kforge-KEY-XXXXXX */
    int shared;         /* dir is in the cache and can be published */
} kfr_entry_tx;
/* Bytes to write: a file is the concatenation of some of these. */
typedef struct kfr_bytes {
    const void *p;
    size_t n;
} kfr_bytes;
/* Starts entry key. With c writable, in the cache (a missing directory is
 * created); otherwise, or when that fails and private_ok, in a private
 * directory under c->tmp that can never be published (its name carries the
 * key, so no two objects are dlopen'ed under one path). KF_OK, or KF_ERR_IO
 * with why (nothing to abort). */
int kfr_entry_begin(const kfr_cache *c, const char *key, int private_ok, kfr_entry_tx *tx,
                    char *why, size_t cap);
/* Writes the file name of tx from the n pieces v, fsync'ed, mode 0644 (it
 * must not exist). KF_OK, or KF_ERR_IO with why and errno. */
int kfr_entry_write(kfr_entry_tx *tx, const char *name, const kfr_bytes *v, int n, char *why,
                    size_t cap);
/* The path of file name of tx (for the compiler and dlopen), cap PATH_MAX. */
void kfr_entry_path(const kfr_entry_tx *tx, const char *name, char *path);
/* Writes the meta, last: meta followed by the size and SHA-256 of the
 * object fname, which is fsync'ed and hashed from disk (so this vouches for
 * what was written, whoever wrote it: the compiler writes kernel.so, which is
 * made 0644 here, so that a group-writable umask does not make our own entry
 * untrusted). KF_OK, or KF_ERR_IO with why. */
int kfr_entry_seal(kfr_entry_tx *tx, const char *meta, const char *fname, char *why, size_t cap);
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
    kfk_reduce_fn fn;       /* its kf_reduce */
    char path[PATH_MAX];    /* the object it was loaded from ("" once that was removed) */
};
/* A blank node, allocated up front by the caller so that the background
 * builder allocates nothing itself. NULL on out of memory. */
kfr_so *kfr_so_new(void);
/* The table's object for key with one more reference, or NULL. */
kfr_so *kfr_so_find(const char *key);
/* dlopen(path), checks that the object carries kf_cache_key == key and has
 * the entry point, and puts it in the table (*spare is used and set to NULL;
 * if key is there already, that object gets the reference). keep_path: the
 * node remembers path (an entry of the cache, not a private build). KF_OK
 * with *out (a table reference), or KF_ERR_JIT with why. */
int kfr_so_open(const char *path, const char *key, int keep_path, kfr_so **spare, kfr_so **out,
                char *why, size_t cap);
/* Drops one reference; the last one unloads the object (NULL is allowed). */
void kfr_so_release(kfr_so *so);
/* Looks the cc entry key up in the store and loads its kernel.so into the
 * table: FOUND with *out (a table reference; *spare used as above), last use
 * touched. ABSENT, INVALID, UNTRUSTED as kfr_entry_find (an object that does
 * not load is INVALID, and removed likewise); nothing of a refused entry ran. */
kfr_found kfr_cache_load(const kfr_cache *c, const char *key, kfr_so **spare, kfr_so **out,
                         char *why, size_t cap);

/* ---- store.c: for kf_cache_list/clear (cache_admin.c) ---- */
/* Checks the entry directory against key, whatever its kind: trusted owner
 * and modes, the meta names key and tier cc (kernel.so) or cuda (an arch and
 * kernel.cubin or kernel.ptx), that file has the meta's size and SHA-256.
 * KF_OK, or KF_ERR_IO with why (*untrusted set when ownership or permissions
 * are the reason). Loads nothing. */
int kfr_cache_check_entry(const char *entry, const char *key, char *why, size_t cap,
                          int *untrusted);
/* Renames entry out of the way (atomic for readers), then deletes it. KF_OK,
 * or KF_ERR_IO with errno from the rename. */
int kfr_cache_trash(const char *cachedir, const char *entry);
/* Deletes a directory of plain files. */
void kfr_cache_remove_tree(const char *dir);

#endif
