/*
 * rt.h -- runtime internals: the context and kernel objects behind the
 * opaque handles of kforge.h, the thread pool, the JIT, the reference engine.
 *
 *   kf_new     (ctx.c):      options, threads, the last error, logging
 *   kf_compile (compile.c):  compiler passes -> engine (jit_tcc.c | ref_eval.c |
 *                            tiers.c: the cache and the cc tier, cache/ + jit_cc.c)
 *   kf_run     (run.c):      validate at the boundary -> split rows over the pool (pool.c)
 *                        -> the engine's kf_reduce on each block of rows
 */
#ifndef KF_RUNTIME_RT_H
#define KF_RUNTIME_RT_H

#include <limits.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler/ir.h"
#include "kernels/abi.h"
#include "kernels/ref.h"
#include "kforge.h"

/* ---- thread pool (pool.c) ---- */
typedef struct kfr_pool kfr_pool;
/* A pool of nthreads worker threads, each with a large stack (generated
 * kernels keep per-pair scratch on the stack, up to about 1 MiB); the caller
 * only waits, so user threads with small stacks are safe. NULL if threads
 * cannot be started. */
kfr_pool *kfr_pool_new(int nthreads);
void kfr_pool_free(kfr_pool *pool);
/* Runs task(arg, t) for t in [0, ntasks) on the workers; returns
 * when all are done. Tasks must not call kfr_pool_run themselves. */
void kfr_pool_run(kfr_pool *pool, int64_t ntasks, void (*task)(void *arg, int64_t t), void *arg);
int kfr_pool_threads(const kfr_pool *pool);
/* Online cores of this machine (at least 1). */
int kfr_cpu_count(void);

/* ---- libtcc JIT (jit_tcc.c) ---- */
typedef struct kfr_tcc kfr_tcc;
/* Compiles src in memory; on success sets *jit and the entry point *fn
 * (symbol `entry`) and returns KF_OK; else fills d (KF_ERR_JIT with tcc's
 * message, or KF_ERR_NOMEM). */
int kfr_tcc_compile(const char *src, const char *entry, kfr_tcc **jit, void **fn, kfc_diag *d);
/* 1 when libtcc is linked into the process. Always 1 in the static archive;
 * in libkforge.so, 1 when the program carries libtcc (jit_tcc.c). Without
 * it kfr_tcc_compile fails with KF_ERR_UNSUPPORTED. */
int kfr_tcc_available(void);
void kfr_tcc_free(kfr_tcc *jit);

/* ---- context and kernel objects (ctx.c, compile.c) ---- */
struct kf_ctx {
    kf_options opt;
    int threads;
    kfr_pool *pool;
    int status;      /* last call's status */
    int64_t offset;  /* last error's byte offset or -1 */
    int src;         /* last error's source string or -1 */
    char msg[1024];  /* last error's message ("" after success) */
    int said_no_cc;  /* the "no C compiler" line was logged (once per context) */
    int said_no_tcc; /* the "no libtcc in this process" line was logged (once per context) */
    int said_refused; /* the "cache refused" line was logged (once per context) */
    char cache_dir[PATH_MAX]; /* kf_cache_dir's answer */
    char *cache_dir_opt; /* malloc'd copy of opt.cache_dir, which points to it */
};

typedef struct kfr_so kfr_so;       /* cache.h: a loaded optimized object */
typedef struct kfr_cuda kfr_cuda;   /* cuda_run.c: a kernel's CUDA module and buffers */
typedef struct kfr_build kfr_build; /* tiers.c: a build of the optimized code */

struct kf_kernel {
    kf_ctx *ctx;
    kfc_prog prog;
    int axis;             /* as requested (also without a reduction) */
    kf_dtype dtype;       /* as requested (also without a reduction) */
    int has_red;          /* nonzero: red is set and the kernel can run */
    kfc_red red;
    char *canon, *canon2; /* malloc'd canonical forms */
    char *source;         /* malloc'd generated C */
    kf_jit engine;        /* resolved policy: KF_JIT_TCC, KF_JIT_REFERENCE, KF_JIT_CC, or
                             KF_JIT_AUTO (tcc code until the background build swaps in cc code) */
    kfr_tcc *tcc;         /* libtcc code; kept until kf_kernel_free even after the swap to cc
                             code, because a task that loaded fn before the swap finishes
                             with the code it started with */
    /* The entry point kf_run calls; NULL for the reference engine. Written
     * once by kf_compile and at most once more by the background builder
     * (the swap, release), so kf_run's tasks load it atomically (acquire),
     * once per task. */
    _Atomic(kfk_reduce_fn) fn;
    kfk_reduce_fn tcc_fn; /* the libtcc entry point, or NULL: a task whose fn is another
                             one ran cc code (run.c's per-engine counts) */
    atomic_int on_cc;     /* nonzero once fn is optimized (cc) code */
    kfr_so *so;           /* the optimized object's table reference, or NULL */
    kfr_build *build;     /* a background build (KF_JIT_AUTO), joined by wait/free; or NULL */
    kf_compile_stats stats; /* kf_kernel_stats; cache_entry points into so or build */
    kf_backend backend;   /* resolved: KF_BACKEND_CPU, _CUDA (no CPU code is built), or _AUTO
                             (the CPU, and the GPU for runs of KF_AUTO_GPU_PAIRS or more) */
    int device;           /* GPU ordinal */
    kfr_cuda *cuda;       /* the CUDA side once prepared (CUDA: by kf_compile; AUTO: by the
                             first big run), or NULL */
    int cuda_off;         /* AUTO: the GPU was tried and is not usable; the CPU from now on */
    /* kf_kernel_engine's answer after a run (run.c): what the last run ran, "" before the
     * first; stats.run_* hold its counts. */
    char ran[96];
};

/* ---- the optimizing tier and the cache (tiers.c) ----
 * The "cache" pass: for KF_JIT_AUTO and KF_JIT_CC, finds the compiler,
 * computes the key and looks it up (in-process table, then disk). */
int kfr_tier_lookup(kf_kernel *k, kfc_diag *d);
/* The "emit_opt" pass: on a miss (a cc build is due), the optimizing
 * tier's source and the entry's metadata. */
int kfr_tier_emit(kf_kernel *k, kfc_diag *d);
/* The "jit" pass: libtcc for KF_JIT_TCC and for an AUTO miss; on a miss,
 * the cc build of the emit_opt pass's source (synchronous for KF_JIT_CC, a
 * background thread for AUTO). */
int kfr_tier_jit(kf_kernel *k, kfc_diag *d);
/* Ends a background build (waits if it is storing into the cache, else
 * cancels it) and drops the kernel's optimized object. */
void kfr_tier_free(kf_kernel *k);

/* Nonzero while a started background build may still swap cc code in (not
 * yet swapped, not failed): kf_run then cuts its rows into finer tasks. */
int kfr_tier_pending(const kf_kernel *k);
/* KFORGE_TEST_SWAP_AT_TASK of the kernel's started background build, or -1. */
int64_t kfr_tier_swap_at(const kf_kernel *k);
/* Waits for the pending build to end, up to max_ms (< 0: no limit), and, if
 * it succeeded, swaps its code in; nonzero if it ended. Callers: that test
 * hook (from worker threads, no limit) and kf_run's wait for a big run. */
int kfr_tier_await(kf_kernel *k, double max_ms);

/* The kernel's slot for one task (kernels/abi.h): the reference evaluator
 * for KF_JIT_REFERENCE, else its generated code with k->fn loaded now
 * (acquire), so each task runs one engine from start to end. */
kfk_slot kfr_kernel_slot(kf_kernel *k);

void kfr_clear_error(kf_ctx *ctx);
/* Sets status and message (printf format); returns status. Offset/src = -1. */
int kfr_error(kf_ctx *ctx, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Copies a compiler diagnostic into the context; returns its status. */
int kfr_error_diag(kf_ctx *ctx, const kfc_diag *d);
/* Sends a message to the user's log callback if level <= verbose. */
void kfr_log(kf_ctx *ctx, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- libraries loaded at run time (dlsyms.c) ---- */
/* One entry of a symbol table: the name and the function pointer to fill. */
typedef struct kfr_dl_sym {
    const char *name;
    void *slot;
    size_t size;
} kfr_dl_sym;
/* Fills every slot from lib; NULL, or the name of the first symbol lib lacks
 * (the slots before it are filled: callers clear their table on failure). */
const char *kfr_dl_bind(void *lib, const kfr_dl_sym *syms, size_t n);

/* ---- CUDA: NVRTC, loaded with dlopen at first use (nvrtc.c) ---- */
/* Compiles CUDA source to PTX for arch ("compute_90", "sm_80", ...): *ptx is
 * malloc'd (kfr_nvrtc_compile with cubin = 0). KF_ERR_JIT with the head of
 * NVRTC's log in d on a compile error; KF_ERR_UNSUPPORTED (d says what was
 * tried) when NVRTC cannot be loaded. */
int kfr_nvrtc_ptx(const char *src, const char *arch, char **ptx, kfc_diag *d);
/* Compiles CUDA source to a CUBIN (cubin != 0; arch must be real: "sm_90")
 * or to PTX (cubin == 0; for "sm_NN" the PTX is for compute_NN, the virtual
 * architecture a driver JIT-compiles for that device and later ones). *img
 * is malloc'd and NUL-terminated, *len its size (for PTX the text's length,
 * without the NUL). Errors as kfr_nvrtc_ptx, plus KF_ERR_UNSUPPORTED when
 * this NVRTC predates nvrtcGetCUBIN (CUDA 11.1): the caller falls back to
 * PTX. Options: --gpu-architecture=ARCH, then kfr_nvrtc_flags(). */
int kfr_nvrtc_compile(const char *src, const char *arch, int cubin, char **img, size_t *len,
                      kfc_diag *d);
/* NVRTC's version, or KF_ERR_UNSUPPORTED when it cannot be loaded. */
int kfr_nvrtc_version(int *major, int *minor);
/* NVRTC's version as text ("13.0", for cache keys) into buf. KF_OK,
 * KF_ERR_UNSUPPORTED (buf "") when NVRTC cannot be loaded, KF_ERR_ARG when
 * cap is too small. */
int kfr_nvrtc_version_string(char *buf, size_t cap);
/* The options every compile passes after --gpu-architecture, space-separated
 * (part of the CUDA cache key). */
const char *kfr_nvrtc_flags(void);

#endif
