/*
 * cache.h -- internals of the optimizing tier and the kernel cache:
 *   hash.c    SHA-256 (OpenSSL EVP) in hex
 *   cpu.c     the CPU features a -march=native object depends on
 *   jit_cc.c  finding $CC, running it (no shell, timeout, cancel), dlopen
 *   cache.c   the cache directory, its entries (optimized objects and GPU
 *             images) and the in-process table
 * docs/cache.md describes the layout, the key and the write protocol.
 */
#ifndef KF_RUNTIME_CACHE_H
#define KF_RUNTIME_CACHE_H

#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/rt.h"

#define KFR_HEX_LEN 64 /* SHA-256 in hex */

/* The emitter of the optimizing tier and its name in the cache key. */
#define KFR_EMIT_OPT kfc_emit_c_opt
#define KFR_OPT_EMITTER_NAME "opt"

/* ---- hash.c ---- */
/* SHA-256 of data[0..n) into hex (NUL-terminated). 0, or -1 if OpenSSL failed. */
int kfr_sha256_hex(const void *data, size_t n, char hex[KFR_HEX_LEN + 1]);
/* SHA-256 of what is left to read from fd; *size gets the bytes read. 0 or -1. */
int kfr_sha256_fd(int fd, char hex[KFR_HEX_LEN + 1], int64_t *size);

/* ---- cpu.c ---- */
/* "x86_64/x86_64 sse4.2 avx avx2 fma ...": architecture and the features present. */
void kfr_cpu_features(char *buf, size_t cap);

/* ---- jit_cc.c ---- */
#define KFR_CC_MAX_WORDS 32
/* The C compiler of the optimizing tier: $CC (default "cc") split on blanks. */
typedef struct kfr_cc {
    char words[1024];  /* the words of $CC, each NUL-terminated, back to back */
    int nwords;
    char path[PATH_MAX]; /* words[0] resolved through $PATH: what is executed */
    char real[PATH_MAX]; /* realpath(path): the compiler's identity in the key */
    int64_t size, mtime_ns; /* of real: a reinstalled compiler changes the key */
} kfr_cc;
/* Finds the compiler. 0, or -1 with why filled ("$CC='cc' was not found in PATH"). */
int kfr_cc_find(kfr_cc *cc, char *why, size_t cap);
/* The flags every optimized build uses, space-separated (part of the key). */
const char *kfr_cc_flags(void);
/* Compiles src into the shared object out. *cancel (may be NULL) turning
 * nonzero kills the compiler. KF_OK, or KF_ERR_JIT with the compiler's
 * message (or the reason: timeout, cancelled, could not start) in err. */
int kfr_cc_run(const kfr_cc *cc, const char *src, const char *out, const atomic_int *cancel,
               char *err, size_t cap);

/* ---- cache.c ---- */
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

/* A loaded optimized object, shared by every kernel of the process that uses
 * it (the in-process table, refcounted). */
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
/* Drops one reference; the last one unloads the object (NULL is allowed). */
void kfr_so_release(kfr_so *so);

/* The key of a kernel's optimized code: SHA-256 over everything the object
 * depends on (docs/cache.md). KF_OK or KF_ERR_NOMEM. */
int kfr_cache_key(const kf_kernel *k, const kfr_cc *cc, char key[KFR_HEX_LEN + 1]);
/* The metadata text of an entry, without the object's hash (malloc'd, NULL on OOM). */
char *kfr_cache_meta(const kf_kernel *k, const char *key);

/* The key of a kernel's compiled GPU code (cuda_run.c computes it): SHA-256
 * over the tier "cuda", KFC_CODEGEN_VERSION, the reduction and canonical
 * formulas (as kfr_cache_key), arch, the NVRTC version, the NVRTC options
 * (--gpu-architecture=ARCH and kfr_nvrtc_flags()) and the SHA-256 of src
 * (may be NULL). arch is the one the image is compiled for: "sm_90" for a
 * CUBIN, "compute_90" for PTX, so the two never share a key.
 * KF_OK, KF_ERR_NOMEM or KF_ERR_INTERNAL. */
int kfr_cache_key_cuda(const kf_kernel *k, const char *src, const char *arch,
                       const char *nvrtc_version, char key[KFR_HEX_LEN + 1]);
/* The metadata text of a GPU entry (tier cuda, with arch and nvrtc lines),
 * without the image's name, size and hash, which kfr_cache_store_blob adds
 * (malloc'd, NULL on OOM). arch and nvrtc_version ("13.0") are shown as
 * words: other characters become '_'. */
char *kfr_cache_meta_cuda(const kf_kernel *k, const char *key, const char *arch,
                          const char *nvrtc_version);

/* Looks key up in the disk cache c. 1: loaded, *out set (a table reference;
 * *spare is used and set to NULL when a new table node was needed). 0: no
 * entry. -1: the entry exists but is invalid, -2: it is untrusted (another
 * owner, group/other-writable): why says what (a log line); either way it
 * was removed when c is writable, and nothing of it ran. */
int kfr_cache_load(const kfr_cache *c, const char *key, kfr_so **spare, kfr_so **out, char *why,
                   size_t cap);

/* Builds the optimized object from src with cc and loads it. With a
 * writable c the entry is stored (*stored = 1) by the protocol of
 * docs/cache.md; otherwise it is built in a private temporary directory that
 * is removed once the object is loaded. meta is kfr_cache_meta's text.
 * KF_OK with *out (a table reference), or a status with err filled. */
int kfr_cache_build(const kfr_cache *c, const kfr_cc *cc, const char *key, const char *src,
                    const char *meta, const atomic_int *cancel, kfr_so **spare, kfr_so **out,
                    int *stored, char *err, size_t cap);

/* GPU images (tier cuda) live beside the .so entries: DIR/KEY/{meta,
 * kernel.cubin or kernel.ptx, kernel.cu}. fname is "kernel.cubin" or
 * "kernel.ptx"; anything else is refused (KF_ERR_ARG / -1), as is a key that
 * is not 64 lowercase hex digits. */

/* Looks key up in the disk cache c, as kfr_cache_load does. 1: loaded:
 * *img (malloc'd, NUL-terminated beyond *len bytes, so PTX is a C string)
 * holds exactly the bytes whose size and SHA-256 the meta records (read
 * once, hashed in memory, then returned); the last use is touched. 0: no
 * entry. -1: invalid (damaged, incomplete, holding another file than fname,
 * or out of memory -- the only case where it is kept), -2: untrusted; why
 * says what (a log line), and the entry was removed when c is writable. */
int kfr_cache_load_blob(const kfr_cache *c, const char *key, const char *fname, char **img,
                        size_t *len, char *why, size_t cap);
/* Stores img[0..len) as fname of entry key, with src (the CUDA source, may
 * be NULL) as kernel.cu and meta (kfr_cache_meta_cuda's text) followed by
 * the image's name, size and SHA-256, by the protocol of docs/cache.md:
 * written and fsync'ed in DIR/tmp-XXXXXX, renamed to DIR/KEY; if a valid
 * entry of this kind is already there it wins (an invalid one is moved
 * away first). KF_OK with *stored = 1 when the entry is in the cache;
 * KF_OK with *stored = 0 when c is read-only or unusable; KF_ERR_IO (err
 * says why, *stored = 0) when writing failed -- never fatal for the caller,
 * whose image is good; KF_ERR_ARG for a bad key, fname or meta. */
int kfr_cache_store_blob(const kfr_cache *c, const char *key, const char *fname, const void *img,
                         size_t len, const char *src, const char *meta, int *stored, char *err,
                         size_t cap);

/* For kf_cache_list/clear (cache_admin.c): */
/* Checks the entry directory against key, whatever its kind: trusted owner
 * and modes, the meta names key and tier cc (kernel.so) or cuda (an arch and
 * kernel.cubin or kernel.ptx), that file has the meta's size and SHA-256.
 * 0, or -1 with why (*untrusted set when ownership or permissions are the
 * reason). Loads nothing. */
int kfr_cache_check_entry(const char *entry, const char *key, char *why, size_t cap,
                          int *untrusted);
/* Renames entry out of the way (atomic for readers), then deletes it. 0 or -1. */
int kfr_cache_trash(const char *cachedir, const char *entry);
/* Deletes a directory of plain files. */
void kfr_cache_remove_tree(const char *dir);

#endif
