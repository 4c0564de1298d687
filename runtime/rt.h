/*
 * rt.h -- runtime internals: the context and kernel objects behind the
 * opaque handles of kforge.h, the thread pool, the JIT, the reference engine.
 *
 *   kf_new     (ctx.c):      options, threads, the last error, logging
 *   kf_compile (compile.c):  compiler passes -> engine (jit_tcc.c | ref_eval.c)
 *   kf_run     (run.c):      validate at the boundary -> split rows over the pool (pool.c)
 *                        -> the engine's kf_reduce on each block of rows
 */
#ifndef KF_RUNTIME_RT_H
#define KF_RUNTIME_RT_H

#include <stddef.h>
#include <stdint.h>

#include "../compiler/ir.h"
#include "../kernels/abi.h"
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
void kfr_tcc_free(kfr_tcc *jit);

/* ---- reference evaluator (ref_eval.c): the oracle ---- */
/* Same contract as kfk_reduce_fn (kernels/abi.h) plus the program; computes
 * in double straight from the AST, writes the kernel's dtype. Returns KF_OK or
 * KF_ERR_NOMEM (scratch is heap-allocated per call). */
int kfr_ref_reduce(const kfc_prog *p, const kfc_red *r, const void *const *args, int64_t r0,
                   int64_t r1, const int64_t *jr, int64_t nr, void *out, int64_t *idx);
/* Evaluates the subtree at root for the pair (i, j) in double; out gets
 * p->nodes[root].dim values. args hold arrays of dtype. scratch must have
 * room for the sum of all node dims (kfr_ref_scratch_size). */
void kfr_ref_eval(const kfc_prog *p, int32_t root, kf_dtype dtype, const void *const *args,
                  int64_t i, int64_t j, double *scratch, double *out);
size_t kfr_ref_scratch_size(const kfc_prog *p);

/* ---- context and kernel objects (ctx.c, compile.c) ---- */
struct kf_ctx {
    kf_options opt;
    int threads;
    kfr_pool *pool;
    int status;      /* last call's status */
    int64_t offset;  /* last error's byte offset or -1 */
    int src;         /* last error's source string or -1 */
    char msg[1024];  /* last error's message ("" after success) */
};

struct kf_kernel {
    kf_ctx *ctx;
    kfc_prog prog;
    int axis;             /* as requested (also without a reduction) */
    kf_dtype dtype;       /* as requested (also without a reduction) */
    int has_red;          /* nonzero: red is set and the kernel can run */
    kfc_red red;
    char *canon, *canon2; /* malloc'd canonical forms */
    char *source;         /* malloc'd generated C */
    kf_jit engine;        /* resolved: KF_JIT_TCC or KF_JIT_REFERENCE */
    kfr_tcc *tcc;
    kfk_reduce_fn fn;     /* NULL for the reference engine */
};

void kfr_clear_error(kf_ctx *ctx);
/* Sets status and message (printf format); returns status. Offset/src = -1. */
int kfr_error(kf_ctx *ctx, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Copies a compiler diagnostic into the context; returns its status. */
int kfr_error_diag(kf_ctx *ctx, const kfc_diag *d);
/* Sends a message to the user's log callback if level <= verbose. */
void kfr_log(kf_ctx *ctx, int level, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
