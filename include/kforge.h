/*
 * kforge.h -- the whole public API of libkforge.
 *
 * kforge computes reductions over all pairs (i, j) of two point clouds,
 *     out_i = Red_j F(x_i, y_j, p)      (axis = 1, M output rows)
 *     out_j = Red_i F(x_i, y_j, p)      (axis = 0, N output rows)
 * where F is a formula string in the KeOps formula language. The M x N matrix
 * is never stored.
 *
 * RULES (read these first)
 *  - Every object is created and destroyed in pairs: kf_new/kf_free,
 *    kf_compile/kf_kernel_free. A kernel must be freed BEFORE its context.
 *  - A context and its kernels are used by ONE thread at a time. kf_run uses
 *    the context's own worker threads internally.
 *  - The library never exits, aborts or writes to stdout. Every failing call
 *    returns a status (or NULL) and leaves a message in the context, readable
 *    with kf_errmsg() until the next call on that context.
 *  - Strings returned by the library belong to the library; they live as long
 *    as the object they were obtained from (see each prototype).
 *  - Arrays are C-contiguous. i-variables are (M, dim), j-variables (N, dim),
 *    parameters (dim). All arrays of one kernel have the kernel's dtype;
 *    indices are int64. Sizes are int64 everywhere.
 */
#ifndef KFORGE_H
#define KFORGE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KF_VERSION_MAJOR 0
#define KF_VERSION_MINOR 1
#define KF_VERSION_PATCH 0
#define KF_VERSION_STRING "0.1.0"

/* Status codes. 0 is success; every failure leaves a message in the context. */
typedef enum kf_status {
    KF_OK = 0,              /* success */
    KF_ERR_NOMEM = 1,       /* an allocation failed; nothing was written */
    KF_ERR_ARG = 2,         /* bad API argument: NULL pointer, negative size, wrong arity, bad option */
    KF_ERR_SYNTAX = 3,      /* formula or alias does not parse; kf_error_offset() gives the byte */
    KF_ERR_TYPE = 4,        /* dims, categories or arity of an operation disagree; offset set */
    KF_ERR_UNSUPPORTED = 5, /* a known KeOps operation or reduction that kforge does not support yet */
    KF_ERR_LIMIT = 6,       /* formula too long or too deep, a dim or index too large */
    KF_ERR_JIT = 7,         /* the JIT could not compile the generated code (a kforge bug: report it) */
    KF_ERR_IO = 8,          /* a file could not be read or written */
    KF_ERR_THREAD = 9,      /* worker threads could not be started */
    KF_ERR_INTERNAL = 10,   /* an invariant of kforge itself failed (a kforge bug: report it) */
    KF_ERR_NOCONV = 11,     /* an iterative solver (kf_eigsh, kf_cg) stopped at its iteration cap
                               before meeting its tolerance; what converged is still returned and
                               the report says how much */
    KF_ERR_DEVICE = 12      /* a GPU operation failed (out of device memory, launch failure, ...):
                               the message has the driver's error name and text */
} kf_status;

/* Element type of every array bound to a kernel. */
typedef enum kf_dtype {
    KF_FLOAT32 = 0,
    KF_FLOAT64 = 1
} kf_dtype;

/* How float32 Sum reductions accumulate (float64 kernels always accumulate in
 * float64). docs/formulas.md gives the measured accuracy of each. */
typedef enum kf_sum_scheme {
    KF_SUM_AUTO = 0,   /* KF_SUM_BLOCK for float32 */
    KF_SUM_BLOCK = 1,  /* float32 partial sums over blocks of j, added into a float32 total */
    KF_SUM_DIRECT = 2, /* one float32 accumulator (fastest, least accurate) */
    KF_SUM_F64 = 3,    /* float64 accumulator */
    KF_SUM_KAHAN = 4   /* float32 with Kahan compensation */
} kf_sum_scheme;

/* Which engine runs a kernel (the JIT policy). */
typedef enum kf_jit {
    KF_JIT_AUTO = 0,      /* the optimized kernel if cached; else libtcc at once while the optimized
                             one is built in the background and swapped in when ready */
    KF_JIT_TCC = 1,       /* generated C compiled in memory by libtcc: instant, slow code */
    KF_JIT_REFERENCE = 2, /* no code generation: the plain-C reference evaluator (slow, the oracle) */
    KF_JIT_CC = 3         /* the optimizing tier: $CC (default cc) -O3 for this CPU, built into the
                             cache (or a private temporary directory) and loaded with dlopen; the
                             compile waits for it */
} kf_jit;

/* Where a kernel runs (docs/cuda.md). */
typedef enum kf_backend {
    KF_BACKEND_AUTO = 0, /* the GPU when kforge can use one (NVIDIA driver and device present) and
                            the run has at least KF_AUTO_GPU_PAIRS pairs, else the CPU; always
                            the CPU for KF_JIT_REFERENCE (the oracle) */
    KF_BACKEND_CPU = 1,  /* the JIT engine (kf_compile_opts.jit) on the context's threads */
    KF_BACKEND_CUDA = 2  /* an NVIDIA GPU (kf_compile_opts.device): kf_compile fails with
                            KF_ERR_DEVICE when none is usable, saying why */
} kf_backend;
/* KF_BACKEND_AUTO's threshold: below it the GPU's fixed costs (copies, launch) outweigh it. */
#define KF_AUTO_GPU_PAIRS (1LL << 26)

/* Names of the enums above: the spellings of the kforge command's options, of
 * $KFORGE_JIT and $KFORGE_BACKEND, of cache metadata and of the generated
 * sources' header comments. The strings are static (owned by the library,
 * never freed, valid for the whole run); a value outside its enum gives "?". */
const char *kf_dtype_name(kf_dtype t);           /* "float32", "float64" */
const char *kf_sum_scheme_name(kf_sum_scheme s); /* "auto", "block", "direct", "f64", "kahan" */
const char *kf_jit_name(kf_jit j);               /* "auto", "tcc", "reference", "cc" */
const char *kf_backend_name(kf_backend b);       /* "auto", "cpu", "cuda" */
/* The inverses: an exact, case-sensitive match of one of the names above.
 * KF_OK with *out set, or KF_ERR_ARG (*out untouched) for an unknown name or
 * a NULL argument. No context: nothing is recorded anywhere. */
int kf_dtype_parse(const char *name, kf_dtype *out);
int kf_sum_scheme_parse(const char *name, kf_sum_scheme *out);
int kf_jit_parse(const char *name, kf_jit *out);
int kf_backend_parse(const char *name, kf_backend *out);
/* The reductions kf_compile accepts, in the order of docs/formulas.md:
 * kf_reduction_name(i) for 0 <= i < kf_reduction_count() ("Sum", "Max", ...,
 * KeOps' spelling), NULL out of range. Static strings. */
int kf_reduction_count(void);
const char *kf_reduction_name(int i);

/* Verbosity levels of messages sent to kf_options.log. */
enum { KF_LOG_ERROR = 0, KF_LOG_INFO = 1, KF_LOG_DEBUG = 2 };

typedef struct kf_ctx kf_ctx;       /* a context: options, worker threads, last error */
typedef struct kf_kernel kf_kernel; /* a compiled formula + reduction */

/* The most worker threads a context takes (kf_options.threads, $KFORGE_THREADS). */
#define KF_MAX_THREADS 1024

/* Context options. Always start from kf_options_init(); fields may be added. */
typedef struct kf_options {
    int threads;  /* worker threads, 0..KF_MAX_THREADS; 0 = $KFORGE_THREADS, else every online core */
    int verbose;  /* highest KF_LOG_* level passed to log (default KF_LOG_ERROR) */
    /* Receives diagnostics at or below `verbose`. NULL (default): discarded.
     * `msg` is valid only during the call. */
    void (*log)(void *user, int level, const char *msg);
    void *log_user;
    /* Kernel cache directory. NULL (default): $KFORGE_CACHE_DIR, else
     * $XDG_CACHE_HOME/kforge, else ~/.cache/kforge. See docs/cache.md. */
    const char *cache_dir;
    int no_cache;  /* nonzero: never read or write the disk cache (also $KFORGE_CACHE=off) */
} kf_options;

/* Compile options. Always start from kf_compile_opts_init(); fields may be added. */
typedef struct kf_compile_opts {
    int k;                    /* K of KMin, ArgKMin, KMin_ArgKMin (1 <= K); ignored otherwise */
    const char *formula2;     /* weight formula of LogSumExpWeight, SumSoftMaxWeight, and
                                 (optional, default 1) Max_SumShiftExp; NULL otherwise.
                                 Shares variables and aliases with the main formula. */
    kf_sum_scheme sum_scheme; /* float32 Sum accumulation; default KF_SUM_AUTO */
    kf_jit jit;               /* engine; default KF_JIT_AUTO, which $KFORGE_JIT may set */
    int dump;                 /* nonzero: log the AST after each compiler pass at KF_LOG_DEBUG */
    kf_backend backend;       /* default KF_BACKEND_AUTO, which $KFORGE_BACKEND (auto, cpu, cuda)
                                 may set */
    int device;               /* GPU ordinal for the CUDA backend (default 0; $KFORGE_DEVICE) */
} kf_compile_opts;

/* Fills *opt with defaults. */
void kf_options_init(kf_options *opt);
/* Fills *o with defaults. */
void kf_compile_opts_init(kf_compile_opts *o);

/* Creates a context. opt may be NULL (defaults). Returns NULL only when memory
 * or threads cannot be had. Free it with kf_free(). */
kf_ctx *kf_new(const kf_options *opt);
/* Frees a context (NULL is allowed). Every kernel of it must be freed first. */
void kf_free(kf_ctx *ctx);

/* The status and message of the last failing call on ctx ("" and KF_OK after a
 * success). The string belongs to ctx and lives until the next call on ctx. */
int kf_status_of(const kf_ctx *ctx);
const char *kf_errmsg(const kf_ctx *ctx);
/* Byte offset of the offending token in the string the message names (the
 * formula, formula2 or an alias), or -1 when the error is not about a string. */
int64_t kf_error_offset(const kf_ctx *ctx);
/* Which string kf_error_offset() refers to: -1 none, 0 the formula,
 * 1 formula2, 2 + k the k-th alias. */
int kf_error_source(const kf_ctx *ctx);
/* Threads kf_run will use. */
int kf_threads(const kf_ctx *ctx);

/* Compiles `formula` with `naliases` aliases ("x=Vi(0,3)", "y=Vj(3)", ...)
 * for a reduction ("Sum", "Min_ArgMin", "KMin", ... see docs/formulas.md)
 * over `axis` (1: over j, M rows out; 0: over i, N rows out).
 * reduction may be NULL: the kernel can then be inspected (canonical form,
 * variables, source of the formula) but not run.
 * opts may be NULL (defaults). The strings are copied; none is kept.
 * Returns a kernel owned by the caller (free with kf_kernel_free), or NULL with
 * the status and message in ctx. */
kf_kernel *kf_compile(kf_ctx *ctx, const char *formula, const char *const *aliases, int naliases,
                      const char *reduction, int axis, kf_dtype dtype, const kf_compile_opts *opts);
/* Frees a kernel (NULL is allowed). A background build still running is
 * given until it is 1 s old when its object would be cached, then cancelled
 * (docs/cache.md); a failed one is logged once at KF_LOG_ERROR. */
void kf_kernel_free(kf_kernel *k);

/* Runs the reduction for M i-points and N j-points (M, N >= 0).
 * args[v] is the array bound to variable index v, for v < nargs, where nargs
 * must equal kf_kernel_nargs(k); entries of indices the formula does not use
 * may be NULL. (Every index an alias declares counts as used, as in KeOps.)
 * out receives rows * kf_kernel_out_dim(k) values of the kernel's
 * dtype and index_out rows * kf_kernel_index_dim(k) int64 indices, where rows
 * is M (axis 1) or N (axis 0); each may be NULL when its dim is 0.
 * An empty reduction gives the neutral value (docs/formulas.md), never
 * uninitialized memory. On failure nothing is written. Returns a kf_status. */
int kf_run(kf_kernel *k, int64_t M, int64_t N, const void *const *args, int nargs, void *out,
           int64_t *index_out);

/* kf_run on arrays that already live on the kernel's GPU (KF_BACKEND_CUDA
 * kernels, or AUTO kernels once kf_kernel_backend says "cuda"): dargs[v],
 * out and index_out are CUDA device pointers (CUdeviceptr values cast to
 * void *), laid out as for kf_run; nothing is copied. stream is a CUstream
 * or NULL: with NULL the call returns when the results are written; with a
 * stream the work is queued on it and the call returns at once (synchronize
 * the stream before reading out). Calls on ONE kernel must use one stream at
 * a time (the kernel's small launch tables are reused). A CPU kernel gives
 * KF_ERR_ARG. Device failures: KF_ERR_DEVICE with the driver's message. */
int kf_run_device(kf_kernel *k, int64_t M, int64_t N, const void *const *dargs, int nargs,
                  void *out, int64_t *index_out, void *stream);

/* The CUDA devices kforge can use. */
typedef struct kf_device_info {
    char name[256];
    int major, minor;       /* compute capability */
    int sms;                /* multiprocessors */
    int64_t total_mem;      /* bytes */
    int64_t free_mem;       /* bytes, now */
    int max_smem_per_block; /* bytes a kernel may opt in to */
    int driver_version;     /* e.g. 13000 */
    int smem_per_block;     /* bytes a block may use without the opt-in */
} kf_device_info;
/* The default architecture of kf_kernel_cuda_text's PTX: PTX for it
 * JIT-compiles on every later GPU (Ampere, Hopper, ...). */
#define KF_CUDA_DEFAULT_ARCH "compute_80"
/* The CUDA code of kernel k's reduction, the code the CUDA backend runs:
 * its CUDA source (ptx == 0), or that source compiled to PTX for arch
 * ("compute_90", ...; NULL: KF_CUDA_DEFAULT_ARCH) by NVRTC, which is loaded
 * at run time (no GPU needed). Any kernel with a reduction will do, whatever
 * its backend and engine. KF_OK with *text a malloc'd NUL-terminated string
 * that BELONGS TO THE CALLER (release it with free()); on failure *text is
 * NULL and the message is in k's context: KF_ERR_ARG without a reduction,
 * KF_ERR_UNSUPPORTED when NVRTC cannot be loaded, KF_ERR_JIT with NVRTC's
 * log when it rejects the source. */
int kf_kernel_cuda_text(kf_kernel *k, int ptx, const char *arch, char **text);
/* Number of usable devices into *n. KF_OK with *n >= 1, or
 * KF_ERR_UNSUPPORTED with *n = 0 and the reason in ctx (no driver, the
 * toolkit's stub library, no device, driver too old). */
int kf_device_count(kf_ctx *ctx, int *n);
/* Properties of device ordinal dev. KF_ERR_ARG for a bad ordinal. */
int kf_device_get(kf_ctx *ctx, int dev, kf_device_info *info);

/* Introspection. Strings belong to the kernel and live as long as it does. */
int kf_kernel_nargs(const kf_kernel *k);     /* highest variable index + 1 */
/* Category (0 i, 1 j, 2 parameter) and dim of variable index v; returns
 * KF_ERR_ARG if v is out of range, and *cat = -1 if the formula does not use v. */
int kf_kernel_var(const kf_kernel *k, int v, int *cat, int64_t *dim);
int64_t kf_kernel_out_dim(const kf_kernel *k);   /* values per output row (0: indices only) */
int64_t kf_kernel_index_dim(const kf_kernel *k); /* int64 indices per output row (0: none) */
int64_t kf_kernel_formula_dim(const kf_kernel *k); /* dim of the formula itself */
int kf_kernel_axis(const kf_kernel *k);
kf_dtype kf_kernel_dtype(const kf_kernel *k);
const char *kf_kernel_reduction(const kf_kernel *k); /* canonical reduction name, or NULL */
const char *kf_kernel_canonical(const kf_kernel *k); /* canonical form of the formula */
const char *kf_kernel_canonical2(const kf_kernel *k); /* of formula2, or NULL */
/* Generated C source: the whole reduction kernel, or the formula function
 * alone when compiled without a reduction. This is libtcc's source; the
 * optimizing tier's is kf_kernel_opt_text's. */
const char *kf_kernel_source(const kf_kernel *k);
/* The optimizing tier's C source of kernel k's reduction: what the system
 * C compiler builds (KF_JIT_CC, and AUTO's background build), whatever k's
 * engine. KF_OK with *text a malloc'd string that BELONGS TO THE CALLER
 * (free()); on failure *text is NULL and the message is in k's context:
 * KF_ERR_ARG without a reduction. */
int kf_kernel_opt_text(kf_kernel *k, char **text);
/* What the kernel's LAST run (kf_run, kf_run_ranges, kf_run_device) ran: "cc", "tcc",
 * "reference" or "cuda"; for a KF_JIT_AUTO run that met the swap to the optimized code,
 * "tcc, then cc from task T of N (P% of pairs on cc)" (kf_compile_stats has the counts).
 * Before the first run and after kf_kernel_wait: what the next run starts with ("cuda"
 * for KF_BACKEND_CUDA; with KF_JIT_AUTO "tcc" until the background build is swapped in,
 * then "cc"). The string belongs to the kernel and lives until its next run,
 * kf_kernel_wait or kf_kernel_free. */
const char *kf_kernel_engine(const kf_kernel *k);
/* Where the kernel's runs go: "cpu", "cuda", or "auto" (an AUTO kernel that
 * has not yet met a run big enough for the GPU, or found none usable). */
const char *kf_kernel_backend(const kf_kernel *k);

/* What kf_compile did, for benchmarks and --verbose. Times in seconds. */
/* The seconds of each pass of kf_compile (docs/architecture.md lists them), and the
 * engines of the kernel's last run. */
typedef struct kf_compile_stats {
    double parse_s;   /* parse */
    double check_s;   /* check, and red_setup (the reduction against the formula) */
    double simplify_s; /* simplify, and print (the canonical forms) */
    double emit_s;    /* emit: the libtcc tier's C (or the formula alone) */
    double jit_s;     /* jit: libtcc, the cc build when done now, dlopen; and the CUDA module */
    double total_s;   /* the whole kf_compile call */
    int cache;        /* KF_CACHE_* below: what the cache did for this kernel's optimized code */
    const char *cache_entry; /* path of the cache entry (object file), or NULL; owned by the kernel */
    double verify_s;  /* verify: the IR check every emitter relies on */
    double cache_s;   /* cache: the key, the in-process table, the disk lookup */
    double emit_opt_s; /* emit_opt: the optimizing tier's C (only when a cc build is due) */
    double emit_cuda_s; /* the CUDA source (KF_BACKEND_CUDA; AUTO: at the first GPU run) */
    /* The kernel's last run (kf_run, kf_run_ranges, kf_run_device; zeros before the first):
     * the output rows and the pairs (i, j) each engine computed. Every row is computed by
     * exactly one engine, so the rows add up to the run's rows; a KF_JIT_AUTO run on the
     * CPU that met the swap to the optimized code has both tcc and cc counts (the rows
     * computed before and after it). Pairs count the block-sparse kept pairs only. */
    int64_t run_rows_tcc, run_rows_cc, run_rows_reference, run_rows_cuda;
    int64_t run_pairs_tcc, run_pairs_cc, run_pairs_reference, run_pairs_cuda;
    int64_t run_tasks;         /* CPU: the tasks (blocks of rows) of the last run; 0 on the GPU */
    int64_t run_first_cc_task; /* CPU: the lowest task number that ran cc code; -1 if none did */
} kf_compile_stats;
enum {
    KF_CACHE_UNUSED = 0,   /* no optimized code was looked up (tcc, reference, no reduction) */
    KF_CACHE_HIT = 1,      /* loaded from the disk cache or the in-process table */
    KF_CACHE_MISS = 2,     /* compiled now (or being compiled in the background) and stored */
    KF_CACHE_DISABLED = 3  /* compiled without the disk cache (disabled, refused or read-only) */
};
/* Fills *st. KF_OK, or KF_ERR_ARG for NULL arguments. */
int kf_kernel_stats(const kf_kernel *k, kf_compile_stats *st);
/* Waits for a background build of the optimized code (KF_JIT_AUTO) to end.
 * Returns KF_OK when the kernel now runs optimized code, or the build's
 * status (its message in the context) if it failed: the kernel keeps running
 * the libtcc code, which is still correct. KF_OK at once if nothing is pending. */
int kf_kernel_wait(kf_kernel *k);

/* ---- the kernel cache (docs/cache.md) ---- */
typedef struct kf_cache_entry {
    const char *key;       /* hex SHA-256 of everything the code depends on */
    const char *formula;   /* canonical formula (and formula2 after a ';'), as stored */
    const char *reduction; /* reduction name, axis and dtype, e.g. "Sum axis=1 float32" */
    const char *tier;      /* "cc", or "cuda" (a CUBIN or PTX image; the arch ends the reduction text) */
    const char *path;      /* the object file */
    int64_t size_bytes;    /* object + source + metadata */
    int64_t last_use;      /* Unix time of the last load (or creation) */
} kf_cache_entry;
/* The cache directory kforge uses for ctx and its mode: 1 read-write,
 * 0 read-only, -1 not usable (the message says why). *dir belongs to ctx. */
int kf_cache_dir(kf_ctx *ctx, const char **dir, int *mode);
/* Calls fn for every valid entry (fn returns nonzero to stop). Strings live
 * during the call only. Returns KF_OK or an error. */
int kf_cache_list(kf_ctx *ctx, int (*fn)(void *user, const kf_cache_entry *e), void *user);
/* Removes entries last used more than older_than_days ago (all entries if
 * older_than_days < 0); *removed gets their count (may be NULL). Needs a
 * writable cache. */
int kf_cache_clear(kf_ctx *ctx, double older_than_days, int64_t *removed);

/* ---- block-sparse reductions (docs/blocksparse.md) ----
 * Points are sorted so that each cluster is a contiguous slice; a pattern
 * says which blocks (i-cluster, j-range) are computed. The six arrays have
 * KeOps' layout, so KeOps users' data carries over:
 *   ranges_i (nci, 2)   half-open row ranges [start, end) of the i-clusters
 *   slices_i (nci)      cumulative ends into redranges_j: i-cluster k interacts
 *                       with redranges_j[slices_i[k-1] .. slices_i[k]) (0 for k = 0)
 *   redranges_j (nredj, 2)  half-open j ranges
 *   ranges_j, slices_j, redranges_i: the mirror triple, used when reducing
 *                       over i (axis 0).
 * Only the triple of the kernel's axis is read and validated: ranges sorted,
 * disjoint and within [0, M) (or [0, N)), slices non-decreasing and within
 * the reduced ranges, every reduced range within bounds and start <= end.
 * Rows covered by no range, and rows whose list is empty, get the
 * reduction's neutral value. All arrays are int64, C order. */
typedef struct kf_ranges {
    int64_t nci;               /* i-clusters */
    const int64_t *ranges_i;   /* (nci, 2) */
    const int64_t *slices_i;   /* (nci) */
    int64_t nredj;             /* reduced j ranges */
    const int64_t *redranges_j;/* (nredj, 2) */
    int64_t ncj;               /* j-clusters */
    const int64_t *ranges_j;   /* (ncj, 2) */
    const int64_t *slices_j;   /* (ncj) */
    int64_t nredi;             /* reduced i ranges */
    const int64_t *redranges_i;/* (nredi, 2) */
} kf_ranges;

/* kf_run restricted to a block-sparsity pattern (same arguments and outputs
 * as kf_run). Invalid ranges: KF_ERR_ARG naming the array and the entry,
 * nothing written. */
int kf_run_ranges(kf_kernel *k, int64_t M, int64_t N, const void *const *args, int nargs,
                  const kf_ranges *rg, void *out, int64_t *index_out);

/* Grid clustering: labels[p] = the cubic cell of side eps (> 0) holding point
 * p of x (n points of dim d, C order, dtype). Any d >= 1; cells are counted
 * from the cloud's lower corner, so far-away points cannot overflow (an eps
 * too small for the cloud's extent is KF_ERR_ARG). Labels are compacted to
 * 0..C-1 in lexicographic order of the cells; *nclusters gets C. NaN or inf
 * coordinates: KF_ERR_ARG naming the point. */
int kf_grid_cluster(kf_ctx *ctx, kf_dtype dtype, const void *x, int64_t n, int64_t d, double eps,
                    int64_t *labels, int64_t *nclusters);
/* Lloyd's k-means for dims where grid cells are useless: starts from the grid
 * clustering of side eps (its cells' centroids), runs `iters` iterations,
 * drops emptied clusters. labels (n) and *nclusters as for kf_grid_cluster;
 * centroids, if not NULL, gets (C, d) values of dtype and must have room for
 * the grid's cell count (at most n). */
int kf_kmeans(kf_ctx *ctx, kf_dtype dtype, const void *x, int64_t n, int64_t d, double eps,
              int iters, int64_t *labels, int64_t *nclusters, void *centroids);
/* Stable sort by label: perm (n) lists the points in cluster order (sorted
 * x[k] = x[perm[k]]); iperm (n, may be NULL) is its inverse. Labels must be
 * in 0..nclusters-1. */
int kf_sort_clusters(kf_ctx *ctx, const int64_t *labels, int64_t n, int64_t nclusters,
                     int64_t *perm, int64_t *iperm);
/* out[k] = in[perm[k]] for rows of `rowbytes` bytes (in and out must not overlap). */
int kf_permute_rows(kf_ctx *ctx, const void *in, int64_t n, int64_t rowbytes, const int64_t *perm,
                    void *out);
/* For points SORTED by label: ranges (C, 2), and if not NULL centroids (C, d)
 * of dtype and weights (C) of dtype (the sum of w over the cluster, or the
 * point count when w is NULL). */
int kf_cluster_ranges(kf_ctx *ctx, kf_dtype dtype, const void *x, int64_t n, int64_t d,
                      const int64_t *sorted_labels, int64_t nclusters, const void *w,
                      int64_t *ranges, void *centroids, void *weights);

/* A block-sparsity pattern with its own storage (the six arrays). */
typedef struct kf_blocks kf_blocks;
/* From a boolean cluster mask (nci x ncj, row-major, nonzero = compute) and
 * the clusters' ranges: both triples. Consecutive kept j-clusters whose ranges
 * touch are merged into one reduced range (fewer, longer loops). */
kf_blocks *kf_blocks_from_mask(kf_ctx *ctx, const int64_t *ranges_i, int64_t nci,
                               const int64_t *ranges_j, int64_t ncj, const uint8_t *mask);
/* The pattern with its two triples swapped (for the transposed problem). */
kf_blocks *kf_blocks_transpose(kf_ctx *ctx, const kf_blocks *b);
/* A view of the six arrays; valid while b lives. */
void kf_blocks_view(const kf_blocks *b, kf_ranges *view);
void kf_blocks_free(kf_blocks *b);

/* The one-call planner: clusters x (M points) and y (N points), both dim d,
 * on grids of side eps (or k-means when kmeans_iters > 0), keeps the cluster
 * pairs that could hold a point pair at most cutoff apart (the bounding boxes
 * of their points at most cutoff apart, their centroids at most cutoff plus
 * both clusters' radii: docs/blocksparse.md), and returns the permutations
 * and the pattern for the SORTED clouds. */
typedef struct kf_plan {
    int64_t M, N;
    int64_t *perm_x, *iperm_x; /* (M): sorted x[k] = x[perm_x[k]]; iperm_x inverts it */
    int64_t *perm_y, *iperm_y; /* (N) */
    kf_blocks *blocks;         /* the pattern, both triples */
    int64_t ncx, ncy;          /* clusters */
    double kept_fraction;      /* computed pairs / (M N) */
    double cluster_s, ranges_s, sort_s, mask_s, total_s; /* timings of the steps */
    /* How tight the pattern is: the fraction of the M N pairs at most `cutoff`
     * apart, estimated from within_rows rows of x spread evenly through it
     * (every such pair lies in a kept block, so each sampled row's count is
     * exact; the sample is sized to ~2e7 distances); kept_fraction /
     * within_fraction is the pattern's overhead. 0 when M or N is 0. */
    double within_fraction;
    int64_t within_rows;
    double within_s;           /* its time, inside total_s */
} kf_plan;
kf_plan *kf_plan_block_sparse(kf_ctx *ctx, kf_dtype dtype, const void *x, int64_t M,
                              const void *y, int64_t N, int64_t d, double eps, double cutoff,
                              int kmeans_iters);
void kf_plan_free(kf_plan *plan);

/* Name of a status code ("KF_ERR_SYNTAX"...). Static string. */
const char *kf_status_name(int status);
/* KF_VERSION_STRING of the library actually linked. */
const char *kf_version(void);

/* ---- solvers: linear operators, eigensolver, graph Laplacians, CG (docs/solvers.md) ----
 * A kf_linop is a SYMMETRIC operator of size n and one dtype: y = A x.
 *  - BLOCKS of b vectors are n x b, C order (row-major): x[i*b + c] is
 *    entry i of column c. This is the layout of a j-variable of dim b, so a
 *    kernel operator serves all b columns with ONE kernel evaluation.
 *  - OWNERSHIP: operators are reference counted. A combinator (scale, add,
 *    sub, compose, graph) takes its own reference to its operands, so you may
 *    kf_linop_free() an operand as soon as the combination is built. Arrays
 *    given to kf_linop_kernel / kf_linop_formula (args) and the kernel given
 *    to kf_linop_kernel are BORROWED: they must outlive every operator that
 *    uses them. kf_linop_diag copies its vector.
 *  - Errors go to the context of the operator (of the first operand for
 *    combinators). Operators of a context are used by one thread at a time.
 *  - Every constructor returns NULL with the status and message in the
 *    context on failure: mismatched sizes or dtypes are KF_ERR_ARG. */
typedef struct kf_linop kf_linop;

/* An operator from a compiled Sum kernel (axis 1, or 0: symmetric either way)
 * that is LINEAR in its j-variable `var` (the vector): y_i = sum_j F(...) v_j.
 * The formula's dim must equal var's dim w; args are the other arrays (as for
 * kf_run; args[var] is ignored), with M = N = n. rg (may be NULL) restricts
 * the sum to a block-sparsity pattern (copied pointers: the arrays it points
 * to are borrowed). Blocks: apply with b == w is one kf_run; with w == 1 and
 * any b, b runs; anything else is KF_ERR_ARG. Linearity is the caller's
 * promise (it is not checked). */
kf_linop *kf_linop_kernel(kf_kernel *k, int var, const void *const *args, int nargs, int64_t n,
                          const kf_ranges *rg);
/* The same from formula text: `vec_name` names the vector, which gets the
 * alias "vec_name=Vj(var,b)" (do NOT declare it in aliases). The operator
 * compiles one kernel per block width b it is asked for (b = 1 at once, so
 * errors in the formula show here) and keeps them; any b >= 1 works, wide
 * blocks in chunks of at most 64 columns. opts may be NULL (defaults; jit
 * picks the engine). args as for kf_linop_kernel (nargs counts var). Only a
 * formula operator can be subsampled, which the coarse-to-fine start of
 * kf_spectral needs. */
kf_linop *kf_linop_formula(kf_ctx *ctx, const char *formula, const char *const *aliases,
                           int naliases, const char *vec_name, int var, const void *const *args,
                           int nargs, int64_t n, kf_dtype dtype, const kf_compile_opts *opts,
                           const kf_ranges *rg);
/* diag(d): d has n values of dtype and is copied. */
kf_linop *kf_linop_diag(kf_ctx *ctx, kf_dtype dtype, int64_t n, const void *d);
kf_linop *kf_linop_identity(kf_ctx *ctx, kf_dtype dtype, int64_t n);
kf_linop *kf_linop_scale(kf_linop *a, double s);       /* s A */
kf_linop *kf_linop_add(kf_linop *a, kf_linop *b);      /* A + B */
kf_linop *kf_linop_sub(kf_linop *a, kf_linop *b);      /* A - B */
/* A B (apply B, then A). Symmetric only when the caller makes it so, e.g.
 * D K D with D diagonal. */
kf_linop *kf_linop_compose(kf_linop *a, kf_linop *b);
/* Drops one reference (NULL is allowed); the operator dies with the last. */
void kf_linop_free(kf_linop *op);

/* y = A x for a block of b >= 1 columns (x, y: n x b of the op's dtype, C
 * order, not overlapping). NaN in x is not checked (it propagates). */
int kf_linop_apply(kf_linop *op, const void *x, void *y, int64_t b);
/* The diagonal of A (n values of dtype). A kernel operator evaluates its
 * formula at the pairs (i, i) in one block-sparse run; combinations combine;
 * a composition needs one diagonal factor (else KF_ERR_UNSUPPORTED). */
int kf_linop_diagonal(kf_linop *op, void *d);
int64_t kf_linop_size(const kf_linop *op);
kf_dtype kf_linop_dtype(const kf_linop *op);
kf_ctx *kf_linop_ctx(const kf_linop *op);
/* Columns applied so far through this operator (b per block apply), and the
 * seconds spent in them; kf_linop_reset_stats zeroes both. */
int64_t kf_linop_matvecs(const kf_linop *op);
double kf_linop_seconds(const kf_linop *op);
void kf_linop_reset_stats(kf_linop *op);

/* Graph operators from a kernel operator K, with the degrees D = K 1
 * computed ONCE here (or taken from `degrees`, n values of dtype, when not
 * NULL). degrees_out (may be NULL) receives D. The normalized kinds need
 * every D_i > 0 (else KF_ERR_ARG naming the row). */
typedef enum kf_graph {
    KF_GRAPH_LAPLACIAN = 1,      /* L = diag(D) - K */
    KF_GRAPH_LAPLACIAN_NORM = 2, /* L_norm = I - D^-1/2 K D^-1/2 */
    KF_GRAPH_AFFINITY_NORM = 3   /* D^-1/2 K D^-1/2 = I - L_norm */
} kf_graph;
kf_linop *kf_linop_graph(kf_linop *K, kf_graph kind, const void *degrees, void *degrees_out);

/* Which eigenvalues kf_eigsh computes (ARPACK's names). */
typedef enum kf_which {
    KF_WHICH_LM = 0, /* largest magnitude */
    KF_WHICH_SM = 1, /* smallest magnitude */
    KF_WHICH_LA = 2, /* largest algebraic */
    KF_WHICH_SA = 3, /* smallest algebraic */
    KF_WHICH_BE = 4  /* both ends: k/2 from each end (the extra one from the high end) */
} kf_which;

/* Eigensolver options. Always start from kf_eigsh_opts_init(); fields may be added. */
typedef struct kf_eigsh_opts {
    int k;           /* eigenpairs wanted, 1 <= k < n (default 6) */
    kf_which which;  /* default KF_WHICH_LM */
    int ncv;         /* Lanczos basis size, k < ncv <= n; 0 (default): max(2k+1, 20) capped at n */
    double tol;      /* relative accuracy of the Ritz values; 0 (default): machine precision */
    int maxiter;     /* cap on ARPACK's restart iterations; 0 (default): 10 n, at least 1000 */
    const void *v0;  /* starting vector (n values of the op's dtype, not all zero), or NULL
                        (default): a vector drawn from `seed` */
    uint64_t seed;   /* default 1; the same seed gives the same result */
    /* Called from the solving thread after every operator application with
     * the count so far and the seconds since the solve began, so long solves
     * can show progress; NULL (default): not called. */
    void (*progress)(void *user, int64_t matvecs, double elapsed_s);
    void *progress_user;
    /* The block solver (kf_spectral, KF_SOLVER_BLOCK) also calls this, if
     * set, after every iteration: the largest relative residual of the
     * wanted pairs not yet converged, and an estimate of the seconds left
     * from the rate at which it falls (-1 until there is one). NULL
     * (default): not called. ARPACK has no such figure. */
    void (*progress_residual)(void *user, int64_t matvecs, double elapsed_s, double residual,
                              double eta_s);
} kf_eigsh_opts;
void kf_eigsh_opts_init(kf_eigsh_opts *o);

/* What a solve did. Times in seconds. */
typedef struct kf_eigsh_report {
    int converged;       /* pairs that met tol (k on success) */
    int iterations;      /* ARPACK's implicit-restart iterations (iparam[2]) */
    int restarts;        /* iterations - 1: restarts after the first Lanczos run */
    int ncv;             /* basis size used */
    int64_t matvecs;     /* operator applications (columns) of the Lanczos iterations; the
                            final residual check applies the operator to k more columns, not
                            counted here (nor in matvec_s) */
    int64_t matvecs_coarse; /* kf_spectral COARSE: applications of the small subsample operator
                               (each costs about (coarse_n / n)^2 of a full one), not in matvecs */
    double coarse_s;     /* kf_spectral COARSE: subsample solve + interpolation (in total_s) */
    double matvec_s;     /* time in the operator */
    double arpack_s;     /* time in ARPACK (the rest of the solve: total - matvec - setup) */
    double total_s;      /* the whole call */
    double max_residual; /* max over the converged pairs of |A v - lambda v| (v has norm 1) */
    int arpack_info;     /* the last ARPACK info code (0 success) */
    int solver;          /* kf_spectral: the kf_solver that ran (KF_SOLVER_ARPACK or _BLOCK) */
} kf_eigsh_report;

/* The k eigenpairs of the symmetric op selected by `which` (ARPACK-ng:
 * dsaupd/dseupd for float64, ssaupd/sseupd for float32).
 *   values    (k) of the op's dtype, ASCENDING;
 *   vectors   (n x k) C order, column j (vectors[i*k + j]) for values[j],
 *             norm 1; may be NULL;
 *   residuals (k) doubles |A v_j - values[j] v_j|, or NULL;
 *   report    may be NULL.
 * KF_ERR_NOCONV when maxiter ran out: the first report->converged values
 * (and their vectors and residuals) are valid, the others are NaN. Bad
 * arguments (k >= n, ncv out of range, NaN in v0) are KF_ERR_ARG with a
 * message; every ARPACK error code has its own message. */
int kf_eigsh(kf_linop *op, const kf_eigsh_opts *o, void *values, void *vectors,
             double *residuals, kf_eigsh_report *report);

/* Spectral coordinates of a kernel graph: eigenpairs of K, L or L_norm. */
typedef enum kf_spectral_mode {
    KF_SPECTRAL_AUTO = 0,     /* COARSE when the block solver runs a Laplacian's SM/SA on a
                                 formula operator (distributed too), else SHIFTED when it
                                 applies (a Laplacian, SM/SA), else DIRECT */
    KF_SPECTRAL_DIRECT = 1,   /* kf_eigsh on the graph operator exactly as asked (scipy's way) */
    KF_SPECTRAL_SHIFTED = 2,  /* smallest (SM/SA) of a Laplacian as the LARGEST ('LA') of
                                 c I - L: c = 1 for L_norm (the normalized affinity
                                 D^-1/2 K D^-1/2, lambda = 1 - mu), c = max D for L */
    KF_SPECTRAL_COARSE = 3    /* SHIFTED (or LA/LM on K) started from a coarse solve: the same
                                 problem (itself AUTO) on a subsample, its eigenvectors
                                 interpolated to every point through the kernel (Nystrom): the
                                 block solver's start block, or ARPACK's v0. The subsample of a
                                 block-sparse operator is every (n/m)-th row, keeping its
                                 pattern; of a dense one, random. Needs a formula operator
                                 (kf_linop_formula). Measured: 149 -> 55 block iterations at
                                 1e5 points; no fewer ARPACK matvecs (docs/solvers.md). */
} kf_spectral_mode;

/* The eigensolver kf_spectral runs on the operator its mode makes. */
typedef enum kf_solver {
    KF_SOLVER_AUTO = 0,   /* the block solver for the largest eigenpairs of the mode's operator
                             (a Laplacian's smallest through SHIFTED or COARSE, K's LA) from
                             KF_SOLVER_BLOCK_AUTO_N points on, else ARPACK: measured faster and,
                             in float32, more accurate there (docs/solvers.md) */
    KF_SOLVER_ARPACK = 1, /* Lanczos with implicit restarts (kf_eigsh): every `which` */
    KF_SOLVER_BLOCK = 2   /* LOBPCG on blocks of `block` columns: the LARGEST eigenpairs (LA) of
                             the mode's operator, so a Laplacian's smallest through SHIFTED or
                             COARSE (whose coarse solve gives the start block), or K with LA.
                             eig.tol 0 means 1e-5 (float32) or 1e-10 (float64) relative
                             residual; eig.maxiter 0: 1000 block iterations; eig.ncv unused */
} kf_solver;

#define KF_SOLVER_BLOCK_AUTO_N 20000

typedef struct kf_spectral_opts {
    kf_eigsh_opts eig;     /* k, which (of the graph operator), ncv, tol, maxiter, seed */
    int laplacian;         /* 0: K itself, KF_GRAPH_LAPLACIAN or KF_GRAPH_LAPLACIAN_NORM */
    kf_spectral_mode mode; /* default KF_SPECTRAL_AUTO */
    int64_t coarse_n;      /* subsample size of COARSE; 0 (default): n/4 for the block solver,
                              min(n/4, 2000) for ARPACK, at least 4k */
    kf_solver solver;      /* default KF_SOLVER_AUTO */
    int block;             /* KF_SOLVER_BLOCK's columns, k <= block <= 64; 0 (default): k + 1 */
} kf_spectral_opts;
void kf_spectral_opts_init(kf_spectral_opts *o);

/* Eigenpairs of the operator `laplacian` makes of K (K must be a kernel or
 * formula operator), in the requested `which`; outputs as kf_eigsh, the
 * values being those of the asked operator (1 - mu in the shifted mode).
 * *mode_used (may be NULL) gets the mode actually run. */
int kf_spectral(kf_linop *K, const kf_spectral_opts *o, void *values, void *vectors,
                double *residuals, kf_eigsh_report *report, kf_spectral_mode *mode_used);

/* Conjugate gradients for (alpha I + A) X = B, A symmetric positive
 * (semi)definite, with nrhs right-hand sides solved together (one block
 * apply per iteration for all columns). */
typedef struct kf_cg_opts {
    double alpha;        /* ridge added to the diagonal (default 0) */
    double tol;          /* stop a column when |b - (alpha I + A) x| <= tol |b| (default 1e-6) */
    int maxiter;         /* iteration cap; 0 (default): 10 n, at least 100 */
    int jacobi;          /* nonzero: Jacobi preconditioner 1 / (alpha + diag A) */
    const void *diag;    /* diag A (n of dtype) for jacobi; NULL: kf_linop_diagonal(A) */
    int x0;              /* nonzero: X holds the starting guess; else start from 0 */
} kf_cg_opts;
void kf_cg_opts_init(kf_cg_opts *o);

typedef struct kf_cg_report {
    int iterations;      /* iterations until the last column converged (or the cap) */
    int converged;       /* columns that met tol */
    int64_t matvecs;     /* columns the operator was applied to */
    double max_relres;   /* max over columns of the final relative residual */
    double matvec_s, total_s;
} kf_cg_report;

/* B and X are n x nrhs, C order, of the op's dtype (X is written; it is read
 * first when opts->x0). relres (nrhs doubles, may be NULL) gets each
 * column's final |b - (alpha I + A) x| / |b| (0 for a zero column, which
 * gives x = 0). KF_ERR_NOCONV when a column missed tol at maxiter (X holds
 * the last iterate). NaN in B: KF_ERR_ARG. Float32 operators iterate in
 * float64 and round X at the end. */
int kf_cg(kf_linop *A, const void *B, void *X, int64_t nrhs, const kf_cg_opts *opts,
          double *relres, kf_cg_report *report);

/* ---- distributed operators: MPI and PARPACK (docs/scale-out.md) ----
 * Built in only when the build found mpicc and PARPACK (kf_mpi_available());
 * otherwise every function below fails with KF_ERR_UNSUPPORTED. A kf_comm is
 * the P processes ("ranks") of an MPI job. A DISTRIBUTED operator has the
 * global size n, and each rank holds the contiguous rows [row0, row0 + rows)
 * of every vector: kf_linop_apply, kf_linop_diagonal, kf_linop_graph's
 * degrees, kf_eigsh's and kf_spectral's v0 and vectors are the rank's rows
 * (rows x b); values and residuals are global and the same on every rank.
 * These calls are COLLECTIVE: every rank makes the same ones in the same
 * order, and a failure on one rank is returned on all of them (the message
 * says which rank). A rank may hold no rows. kf_eigsh runs PARPACK
 * (p?saupd/p?seupd), the block solver reduces its small dense products
 * across ranks, the coarse mode solves its subsample on the ranks too;
 * kf_cg is not distributed. */
typedef struct kf_comm kf_comm;
/* 1 when this library was built with MPI and PARPACK, else 0. */
int kf_mpi_available(void);
/* The job's ranks (a duplicate of MPI_COMM_WORLD), initializing MPI when the
 * program has not. NULL with the message in ctx (KF_ERR_UNSUPPORTED without
 * MPI). MPI errors abort the job (MPI's default handler). */
kf_comm *kf_comm_world(kf_ctx *ctx);
/* Frees c, and finalizes MPI if kf_comm_world initialized it (after the last
 * collective call). NULL is allowed. */
void kf_comm_free(kf_comm *c);
int kf_comm_rank(const kf_comm *c);   /* 0..size-1; -1 for NULL */
int kf_comm_size(const kf_comm *c);   /* P; 0 for NULL */
/* Seconds this rank has spent inside MPI calls made through c (the matvecs'
 * exchanges, the solvers' reductions, gathers). */
double kf_comm_seconds(const kf_comm *c);
typedef enum kf_reduce_op { KF_REDUCE_SUM = 0, KF_REDUCE_MAX = 1, KF_REDUCE_MIN = 2 } kf_reduce_op;
/* Collective: v[0..count) becomes the op over the ranks, bit-identical on
 * every rank (reduced on rank 0, then broadcast). */
int kf_comm_allreduce(kf_comm *c, double *v, int count, kf_reduce_op op);
/* Collective: rank r's `rows` rows of `rowbytes` bytes land on `root`, in
 * rank order, in out (the sum of the rows; only read on root, may be NULL
 * elsewhere). */
int kf_comm_gather_rows(kf_comm *c, const void *local, int64_t rows, int64_t rowbytes, void *out,
                        int root);
/* Collective, in place: buf holds n rows of `rowbytes` bytes on every rank,
 * and rank r's rows [row0, row0 + rows) are filled in; afterwards every rank
 * holds all of them (MPI_Allgatherv). The ranks' slices must tile [0, n) in
 * rank order (a rank may have none), else KF_ERR_ARG on every rank and buf
 * is unchanged. For a cloud that each rank read in slices but every rank
 * needs whole (the j side of a dense operator). */
int kf_comm_allgather_rows(kf_comm *c, void *buf, int64_t n, int64_t row0, int64_t rows,
                           int64_t rowbytes);

/* Where a distributed kernel operator's rows live. The ranks' row slices
 * must tile [0, n) in rank order. The j side: the rows [j0, j0 + nj) of the
 * points that the rank's i rows interact with (every point for a dense
 * operator, the hull of the j-ranges its block-sparse pattern touches),
 * which must contain the rank's own rows (the diagonal). */
typedef struct kf_dist {
    kf_comm *comm;       /* borrowed: outlives every operator built on it */
    int64_t n;           /* the global size, the same on every rank */
    int64_t row0, rows;  /* this rank's rows */
    int64_t j0, nj;      /* this rank's j rows */
} kf_dist;
/* Collective: kf_linop_formula for a distributed operator. args' i-variables
 * hold the rank's `rows` rows, j-variables the `nj` rows from j0; rg (may be
 * NULL) is the rank's pattern in those local row numbers (axis 1 triple:
 * ranges_i within [0, rows), redranges_j within [0, nj)). A matvec gathers
 * the whole vector block (one MPI_Allgatherv of n x b values) and computes
 * the rank's rows. */
kf_linop *kf_linop_formula_dist(kf_ctx *ctx, const char *formula, const char *const *aliases,
                                int naliases, const char *vec_name, int var,
                                const void *const *args, int nargs, const kf_dist *dist,
                                kf_dtype dtype, const kf_compile_opts *opts, const kf_ranges *rg);
/* The rows this rank holds of op's vectors (kf_linop_size for one process). */
int64_t kf_linop_local_rows(const kf_linop *op);

/* The distributed block-sparse planner: kf_plan_block_sparse of one cloud
 * against itself (x = y, grid mode) where no rank holds more than its share
 * of the points. Each rank passes its contiguous slice of the input (the
 * slices tile the n points in rank order; any split, empty slices allowed)
 * and gets its rows of the SORTED cloud, the j rows they touch and its part
 * of the pattern, ready for kf_linop_formula_dist:
 *   sort      a sample sort by (grid cell, input index), one MPI_Alltoallv
 *   cuts      the wanted row split (even, or split[]) moved to the nearest
 *             cluster boundary, so no cluster straddles two ranks
 *   balance   one MPI_Alltoallv that gives each rank its rows
 *   stats     each cluster's count, centroid, radius and box, from the rank
 *             that holds it, then allgathered (C (3d + 2) doubles)
 *   pattern   the kept pairs of the rank's clusters against all (kd-tree)
 *   j side    one MPI_Alltoallv of the points of the j hull
 * Everything (order, pattern, kept and within fractions) is bit for bit the
 * one-process planner's (tests/t_distplan.c, tests/mpi/distplan.c). */
typedef struct kf_dist_plan {
    int64_t n, d;         /* the whole cloud */
    kf_dtype dtype;
    int64_t row0, rows;   /* this rank's rows of the sorted cloud */
    int64_t j0, nj;       /* its j rows (they contain [row0, row0 + rows)) */
    void *xj;             /* (nj, d) of dtype: sorted rows j0.. ; the rank's own at row0 - j0 */
    int64_t *index;       /* (rows): the input index of each of the rank's rows */
    kf_blocks *blocks;    /* the rank's pattern in local numbers: i rows in [0, rows), j rows
                           * in [0, nj) (axis 1 triple; the mirror triple is its transpose) */
    int64_t nclusters;    /* grid cells, over all ranks */
    double kept_fraction, within_fraction; /* as kf_plan's, over the whole cloud */
    int64_t within_rows;
    double total_s;       /* this rank's planning time */
} kf_dist_plan;
/* Collective over comm (NULL: one process, no MPI needed). x: this rank's n
 * points (dim d, dtype), the first being input point row0. eps, cutoff: as
 * kf_plan_block_sparse. split: NULL for an even split, else the wanted rows
 * of every rank (P entries >= 0 adding up to the global n, alike on every
 * rank), which the cuts move to cluster boundaries. NULL on every rank with
 * the same message when any rank fails (bad argument, NaN or inf, memory). */
kf_dist_plan *kf_plan_block_sparse_dist(kf_ctx *ctx, kf_comm *comm, kf_dtype dtype, const void *x,
                                        int64_t n, int64_t d, int64_t row0, double eps,
                                        double cutoff, const int64_t *split);
void kf_dist_plan_free(kf_dist_plan *p);

/* ---- the tutorials' point clouds, from a seed (solvers/gen.c) ----
 * What `kforge eigsh --gen`, examples/ and bench/ generate, so that all of
 * them make the same clouds. With t_k = 2 pi k / N (numpy's
 * linspace(0, 2 pi, N + 1)[:-1]), e ~ N(0, 1) and u ~ U(0, 1):
 *   spiral (2-D):    (0.4 + 0.4 (t/7) cos t,     0.5 + 0.3 sin t)             + 0.01 e
 *   swissroll (3-D): (0.4 + 0.4 (t/7) cos 1.5t,  0.1 + 0.8 u,  0.5 + 0.3 (t/7) sin 1.5t)
 *                                                                             + 0.01 e
 * The random numbers come from xoshiro256** seeded by splitmix64 (normals by
 * Box-Muller), drawn point by point in coordinate order (the Swiss roll draws
 * u first), so a (kind, N, seed) triple gives the same float64 cloud on every
 * machine with an IEEE libm; float32 is its cast. DETERMINISM IS THE CONTRACT:
 * tests/t_gen.c pins the values. No context, no allocation: the caller owns
 * every array, and calls are reentrant. */
typedef enum kf_gen_kind {
    KF_GEN_SPIRAL = 0,   /* 2-D noisy spiral */
    KF_GEN_SWISSROLL = 1 /* 3-D noisy Swiss roll */
} kf_gen_kind;
/* Largest N kf_gen_parse accepts (1e8 points of dim 3 are 2.4 GB of float64). */
#define KF_GEN_MAX_N 100000000
/* The seed when a spec gives none. */
#define KF_GEN_DEFAULT_SEED 1
typedef struct kf_gen {
    kf_gen_kind kind;
    int64_t n;     /* points, 1..KF_GEN_MAX_N */
    uint64_t seed;
} kf_gen;
/* Parses "spiral:N[:SEED]" or "swissroll:N[:SEED]" (N, SEED decimal; SEED
 * defaults to KF_GEN_DEFAULT_SEED) into *g. KF_OK, or KF_ERR_ARG with the
 * reason, "'SPEC': why", in err (errlen bytes, always NUL-terminated; err
 * may be NULL). */
int kf_gen_parse(const char *spec, kf_gen *g, char *err, size_t errlen);
/* The dimension of a kind's points (2 or 3). */
int kf_gen_dim(kf_gen_kind kind);
/* The name of a kind ("spiral", "swissroll"; "?" out of range). Static string. */
const char *kf_gen_name(kf_gen_kind kind);
/* Writes g->n points, row-major (n, kf_gen_dim(g->kind)) float64, into x. */
void kf_gen_points(const kf_gen *g, double *x);
/* Rows [r0, r1) of that cloud (0 <= r0 <= r1 <= g->n) into x ((r1 - r0) rows),
 * bit for bit kf_gen_points' rows: what one rank of an MPI job generates of
 * its slice. The draws of the rows before r0 are skipped (O(r0), cheap). */
void kf_gen_points_rows(const kf_gen *g, int64_t r0, int64_t r1, double *x);
/* The rows rows[0..m) (strictly increasing, each < g->n) into x (m rows):
 * one pass over the stream, for a sample of a cloud no rank holds whole. */
void kf_gen_points_at(const kf_gen *g, const int64_t *rows, int64_t m, double *x);
/* The block-sparse tutorial's clouds in float32 (examples/block_sparse.c,
 * bench/blocksparse.c): x (M, 2) the spiral above from `seed`; from seed + 1,
 * point by point, y (N, 2) a Gaussian blob around (0.6, 0.6) with standard
 * deviation 0.1 and, if b is not NULL, b[k] a standard normal signal. */
void kf_gen_tutorial_clouds(uint64_t seed, float *x, int64_t M, float *y, float *b, int64_t N);
/* n float32 values from seed: uniform in (0, 1), or standard normal. */
void kf_gen_uniform_f32(uint64_t seed, float *x, int64_t n);
void kf_gen_normal_f32(uint64_t seed, float *x, int64_t n);

#ifdef __cplusplus
}
#endif
#endif /* KFORGE_H */
