/*
 * jit.h -- internals of the optimizing tier: the system C compiler, what a
 * cache key is made of, and building an entry of the kernel cache.
 *   cpu.c     the CPU features a -march=native object depends on
 *   jit_cc.c  finding $CC, running it (no shell, timeout, cancel), and
 *             building an optimized object into the cache (kfr_cc_build)
 *   cc_key.c  the keys and meta texts of cache entries, from a kernel's
 *             fields (the cc tier's, and the CUDA backend's GPU images)
 *   tiers.c   the policy: which code a kernel runs (rt.h: kfr_tier_*)
 * The cache itself (runtime/cache/cache.h) is a store that never sees a
 * kernel: everything that reads kf_kernel fields to name an entry is here.
 * Errors follow the cache's convention: a kf_status, the reason in a
 * (why, cap) buffer (a compiler's message is longer than a kfc_diag holds).
 * docs/cache.md describes the key and the build.
 */
#ifndef KF_RUNTIME_JIT_H
#define KF_RUNTIME_JIT_H

#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/cache/cache.h"
#include "runtime/rt.h"

/* The emitter of the optimizing tier, for this CPU's vector width, and its
 * name in the cache key (the width follows from the CPU features there). */
#define KFR_EMIT_OPT(p, r, d) kfc_emit_c_opt_w(p, r, kfr_cpu_vector_bits(), d)
#define KFR_OPT_EMITTER_NAME "opt"

/* ---- cpu.c ---- */
/* "x86_64/x86_64 sse4.2 avx avx2 fma ...": architecture and the features present. */
void kfr_cpu_features(char *buf, size_t cap);
/* The vector width the optimizing tier targets on this CPU: 512 with
 * AVX-512 (F, VL, DQ), else 256. */
int kfr_cpu_vector_bits(void);

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
/* Finds the compiler. KF_OK, or KF_ERR_JIT with why filled ("$CC='cc' was
 * not found in PATH"). */
int kfr_cc_find(kfr_cc *cc, char *why, size_t cap);
/* The flags every optimized build uses, space-separated (part of the key). */
const char *kfr_cc_flags(void);
/* Compiles src into the shared object out, both names relative to the
 * directory dirfd, in which the compiler is started (so no path above it can
 * be redirected between writing the source and loading the object).
 * *cancel (may be NULL) turning nonzero kills the compiler. KF_OK, or
 * KF_ERR_JIT with the compiler's message (or the reason: timeout, cancelled,
 * could not start) in err. */
int kfr_cc_run(const kfr_cc *cc, int dirfd, const char *src, const char *out,
               const atomic_int *cancel, char *err, size_t cap);
/* Builds the optimized object from src with cc and loads it. With a
 * writable c the entry is stored (*stored = 1) by the protocol of
 * docs/cache.md; otherwise it is built in a private temporary directory that
 * is removed once the object is loaded. meta is kfr_cache_meta's text.
 * KF_OK with *out (a table reference), or a status with err filled. */
int kfr_cc_build(const kfr_cache *c, const kfr_cc *cc, const char *key, const char *src,
                 const char *meta, const atomic_int *cancel, kfr_so **spare, kfr_so **out,
                 int *stored, char *err, size_t cap);

/* ---- cc_key.c ---- */
/* The key of a kernel's optimized code: SHA-256 over everything the object
 * depends on (docs/cache.md). KF_OK, KF_ERR_NOMEM or KF_ERR_INTERNAL. */
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

#endif
