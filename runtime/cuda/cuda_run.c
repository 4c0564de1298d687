/*
 * cuda_run.c -- a kernel's CUDA backend: from the checked AST to a loaded
 * module, and runs on host or device arrays (docs/cuda.md).
 *
 *   prepare   device query -> kfc_emit_cuda -> key (source, arch, NVRTC)
 *             -> in-process module table -> disk cache (CUBIN, else PTX)
 *             -> NVRTC on a miss, stored -> module, function, block size
 *   run       task table (runtime/cuda/cuda_tasks.c: dense row blocks, or the
 *             block-sparse pattern's slices) -> one device buffer holding
 *             arguments, pointer table, tasks, ranges, outputs (kept by the
 *             kernel and grown as needed, so eigsh's matvecs allocate once)
 *             -> copies and launches on the kernel's stream -> results back
 *   split-j   a dense run with too few row blocks to fill the device and a
 *             long inner range (kfr_cuda_split_plan): the partial kernel
 *             over row blocks x chunks of j into a scratch part of the same
 *             buffer, then the combine kernel, one thread per row
 *
 * Everything a GPU can refuse (no driver, out of memory, launch failure)
 * comes back as a status with the driver's words; nothing here exits.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "compiler/emit/skel.h"
#include "runtime/jit/jit.h"
#include "runtime/cuda/cuda_drv.h"
#include "runtime/cuda/cuda_run.h"
#include "runtime/cuda/cuda_tasks.h"
#include "runtime/sparse/ranges.h"
#include "runtime/rt.h"

#define MAX_BLOCK 256      /* threads per block: one row each; 256 keeps tiles long */
#define ARG_ALIGN 256      /* bytes: each array of the shared buffer starts aligned */
#define MAX_GRID 2147483647LL

/* ---- loaded modules, shared by the kernels of the process ---- */

typedef struct module {
    struct module *next;
    char key[KFR_HEX_LEN + 1];
    int dev, refs;
    kfr_cu_module mod;
} module;

static pthread_mutex_t mods_lock = PTHREAD_MUTEX_INITIALIZER;
static module *mods;

static module *module_find(const char *key, int dev)
{
    pthread_mutex_lock(&mods_lock);
    module *m = mods;
    while (m && (m->dev != dev || strcmp(m->key, key)))
        m = m->next;
    if (m)
        m->refs++;
    pthread_mutex_unlock(&mods_lock);
    return m;
}

/* Loads image as key's module unless another kernel did meanwhile. */
static int module_add(const char *key, int dev, const char *image, module **out, kfc_diag *d)
{
    module *m = module_find(key, dev);
    if (m) {
        *out = m;
        return KF_OK;
    }
    if (!(m = calloc(1, sizeof *m)))
        return kfc_diag_set(d, KF_ERR_NOMEM, -1, -1, "out of memory");
    int rc = kfr_cu_module_load(dev, image, &m->mod, d);
    if (rc != KF_OK) {
        free(m);
        return rc;
    }
    snprintf(m->key, sizeof m->key, "%s", key);
    m->dev = dev;
    m->refs = 1;
    pthread_mutex_lock(&mods_lock);
    m->next = mods;
    mods = m;
    pthread_mutex_unlock(&mods_lock);
    *out = m;
    return KF_OK;
}

/* Drops a reference. Modules stay loaded while the process lives (loading
 * costs milliseconds; a kernel compiled again should find its module). */
static void module_release(module *m)
{
    if (!m)
        return;
    pthread_mutex_lock(&mods_lock);
    m->refs--;
    pthread_mutex_unlock(&mods_lock);
}

/* ---- the per-kernel state ---- */

struct kfr_cuda {
    int dev;
    kfr_cu_device info;
    module *mod;
    kfr_cu_func fn;      /* kf_reduce_cuda */
    kfr_cu_func fn_part; /* kf_reduce_cuda_partial, kf_reduce_cuda_combine: split-j */
    kfr_cu_func fn_comb;
    char arch[48];       /* what the image was built for: "sm_90" (CUBIN) or "compute_80" (PTX) */
    int block;           /* threads (rows) per block of kf_reduce_cuda */
    int pblock, cblock;  /* the same for the partial and combine kernels */
    kfc_partial part;    /* a row's partial state (compiler/emit/skel.h) */
    long long smem_pp;   /* dynamic shared memory per inner point, bytes */
    kfr_cu_stream stream;
    kfr_cu_ptr mem;      /* the run buffer and its size */
    size_t cap;
};

/* The module for the kernel's source: the in-process table, the disk cache,
 * else NVRTC and a store. Two kinds of image, each with its own key (the
 * arch is part of it): a CUBIN for the device (c->arch, "sm_90"), and PTX for
 * compute_80 when NVRTC cannot build that CUBIN (a device newer than it). */
static int get_module(kf_kernel *k, const char *src, const char *ver, kfr_cuda *c, kfc_diag *d)
{
    static const char *const files[] = {"kernel.cubin", "kernel.ptx"};
    char arch[2][48], key[2][KFR_HEX_LEN + 1], why[512];
    snprintf(arch[0], sizeof arch[0], "%s", c->arch);
    snprintf(arch[1], sizeof arch[1], "compute_80");
    for (int f = 0; f < 2; f++)
        if (kfr_cache_key_cuda(k, src, arch[f], ver, key[f]) != KF_OK)
            return kfc_diag_set(d, KF_ERR_NOMEM, -1, -1, "out of memory for the cache key");
    for (int f = 0; f < 2; f++)
        if ((c->mod = module_find(key[f], c->dev))) {
            memcpy(c->arch, arch[f], sizeof c->arch);
            k->stats.cache = KF_CACHE_HIT;
            return KF_OK;
        }
    kfr_cache cache;
    kfr_cache_locate(&k->ctx->opt, &cache, 1);
    int use_cache = cache.mode >= 0 && !k->ctx->opt.no_cache;
    char *img = NULL;
    size_t len = 0;
    int f = 0, rc;
    for (f = 0; f < 2 && use_cache; f++) {
        int r = kfr_cache_load_blob(&cache, key[f], files[f], &img, &len, why, sizeof why);
        if (r == 1)
            break;
        if (r < 0)
            kfr_log(k->ctx, KF_LOG_INFO, "cuda cache: %s", why);
    }
    if (img) {
        k->stats.cache = KF_CACHE_HIT;
    } else {
        f = 0;
        rc = kfr_nvrtc_compile(src, arch[0], 1, &img, &len, d);
        if (rc == KF_ERR_UNSUPPORTED || (rc == KF_ERR_JIT && strstr(d->msg, "architecture"))) {
            kfr_log(k->ctx, KF_LOG_INFO, "NVRTC cannot build a CUBIN for %s (%s): PTX for compute_80",
                    arch[0], d->msg);
            kfc_diag_clear(d);
            f = 1;
            rc = kfr_nvrtc_compile(src, arch[1], 0, &img, &len, d);
        }
        if (rc != KF_OK) {
            kfr_cache_close(&cache);
            return rc;
        }
        k->stats.cache = use_cache && cache.mode == 1 ? KF_CACHE_MISS : KF_CACHE_DISABLED;
        if (k->stats.cache == KF_CACHE_MISS) {
            char *meta = kfr_cache_meta_cuda(k, key[f], arch[f], ver);
            int stored = 0;
            if (!meta || kfr_cache_store_blob(&cache, key[f], files[f], img, len, src, meta, &stored,
                                              why, sizeof why) != KF_OK)
                kfr_log(k->ctx, KF_LOG_INFO, "cuda cache: not stored: %s", meta ? why : "out of memory");
            free(meta);
        }
    }
    kfr_cache_close(&cache);
    memcpy(c->arch, arch[f], sizeof c->arch);
    rc = module_add(key[f], c->dev, img, &c->mod, d);
    free(img);
    return rc;
}

/* Threads per block of fn: as many rows as fit (MAX_BLOCK, the function's
 * limit, the shared memory a tile of smem_pp-byte inner points needs), a
 * multiple of 32. */
static int pick_block(kfr_cuda *c, kfr_cu_func fn, long long smem_pp, int *block, kfc_diag *d)
{
    int regs = 0, maxt = MAX_BLOCK;
    int rc = kfr_cu_func_limits(fn, &regs, &maxt, d);
    if (rc != KF_OK)
        return rc;
    int b = maxt < MAX_BLOCK ? maxt : MAX_BLOCK;
    b -= b % 32;
    while (b > 32 && (long long)b * smem_pp > c->info.max_smem_per_block)
        b -= 32;
    if (b < 32 || (long long)b * smem_pp > c->info.max_smem_per_block)
        return kfc_diag_set(d, KF_ERR_LIMIT, -1, -1,
                            "the inner variables need %lld bytes of shared memory per point: a "
                            "block of 32 points needs %lld, device %d (%s) allows %d",
                            smem_pp, 32 * smem_pp, c->dev, c->info.name,
                            c->info.max_smem_per_block);
    long long smem = (long long)b * smem_pp;
    if (smem > c->info.smem_per_block && (rc = kfr_cu_func_set_smem(fn, (int)smem, d)) != KF_OK)
        return rc;
    *block = b;
    return KF_OK;
}

int kfr_cuda_prepare(kf_kernel *k, kfc_diag *d)
{
    if (k->cuda)
        return KF_OK;
    int n = 0;
    int rc = kfr_cu_device_count(&n, d);
    if (rc != KF_OK)
        return rc;
    if (k->device < 0 || k->device >= n)
        return kfc_diag_set(d, KF_ERR_ARG, -1, -1, "CUDA device %d does not exist: %d device%s (0..%d)",
                            k->device, n, n == 1 ? "" : "s", n - 1);
    kfr_cuda *c = calloc(1, sizeof *c);
    if (!c)
        return kfc_diag_set(d, KF_ERR_NOMEM, -1, -1, "out of memory");
    c->dev = k->device;
    char *src = NULL;
    char ver[32];
    if ((rc = kfr_cu_device_get(c->dev, &c->info, d)) != KF_OK)
        goto fail;
    snprintf(c->arch, sizeof c->arch, "sm_%d%d", c->info.major, c->info.minor);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    src = kfc_emit_cuda(&k->prog, &k->red, d);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    k->stats.emit_cuda_s += (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
    if (!src) {
        rc = d->status ? d->status : KF_ERR_INTERNAL;
        goto fail;
    }
    if (kfr_nvrtc_version_string(ver, sizeof ver) != KF_OK) {
        rc = kfc_diag_set(d, KF_ERR_UNSUPPORTED, -1, -1,
                          "NVRTC (libnvrtc.so) cannot be loaded: install the CUDA toolkit's NVRTC "
                          "to run kernels on the GPU");
        goto fail;
    }
    if ((rc = get_module(k, src, ver, c, d)) != KF_OK)
        goto fail;
    /* The shared memory per point, from the source itself (the emitted
     * __device__ constant is const, so NVRTC may give it internal linkage and
     * the driver would not find it by name). */
    const char *sm = strstr(src, "#define KF_SMEM_PER_POINT ");
    c->smem_pp = sm ? strtoll(sm + 26, NULL, 10) : -1;
    if (c->smem_pp < 0) {
        rc = kfc_diag_set(d, KF_ERR_INTERNAL, -1, -1, "the CUDA source lacks KF_SMEM_PER_POINT");
        goto fail;
    }
    if ((rc = kfr_cu_function(c->mod->mod, "kf_reduce_cuda", &c->fn, d)) != KF_OK ||
        (rc = kfr_cu_function(c->mod->mod, "kf_reduce_cuda_partial", &c->fn_part, d)) != KF_OK ||
        (rc = kfr_cu_function(c->mod->mod, "kf_reduce_cuda_combine", &c->fn_comb, d)) != KF_OK ||
        (rc = pick_block(c, c->fn, c->smem_pp, &c->block, d)) != KF_OK ||
        (rc = pick_block(c, c->fn_part, c->smem_pp, &c->pblock, d)) != KF_OK ||
        (rc = pick_block(c, c->fn_comb, 0, &c->cblock, d)) != KF_OK ||
        (rc = kfr_cu_stream_create(c->dev, &c->stream, d)) != KF_OK)
        goto fail;
    c->part = kfc_skel_partial(&k->red);
    free(src);
    k->cuda = c;
    kfr_log(k->ctx, KF_LOG_INFO, "cuda: device %d (%s, sm_%d%d), %s image, %d threads per block, %lld B of shared memory per block",
            c->dev, c->info.name, c->info.major, c->info.minor, c->arch, c->block,
            (long long)c->block * c->smem_pp);
    return KF_OK;
fail:
    free(src);
    module_release(c->mod);
    free(c);
    return rc;
}

void kfr_cuda_free(kf_kernel *k)
{
    kfr_cuda *c = k->cuda;
    if (!c)
        return;
    kfc_diag d;
    kfc_diag_clear(&d);
    if (c->stream)
        kfr_cu_stream_sync(c->dev, c->stream, &d); /* a queued kf_run_device may still use mem */
    kfr_cu_free(c->dev, c->mem);
    kfr_cu_stream_destroy(c->dev, c->stream);
    module_release(c->mod);
    free(c);
    k->cuda = NULL;
}

/* ---- runs ---- */

static size_t align_up(size_t n)
{
    return (n + ARG_ALIGN - 1) / ARG_ALIGN * ARG_ALIGN;
}

/* Makes the kernel's device buffer hold at least bytes. */
static int reserve(kfr_cuda *c, size_t bytes, kfc_diag *d)
{
    if (bytes <= c->cap)
        return KF_OK;
    int rc = kfr_cu_stream_sync(c->dev, c->stream, d);
    if (rc != KF_OK)
        return rc;
    kfr_cu_free(c->dev, c->mem);
    c->mem = 0;
    c->cap = 0;
    if ((rc = kfr_cu_alloc(c->dev, bytes, &c->mem, d)) != KF_OK)
        return rc;
    c->cap = bytes;
    return KF_OK;
}

/* Launches the task table (already on the device at dtasks) in grids of at
 * most MAX_GRID blocks. */
static int launch(kfr_cuda *c, kfr_cu_stream s, kfr_cu_ptr dargs, kfr_cu_ptr dtasks, int64_t ntasks,
                  kfr_cu_ptr djr, kfr_cu_ptr dout, kfr_cu_ptr didx, kfc_diag *d)
{
    unsigned smem = (unsigned)((long long)c->block * c->smem_pp);
    for (int64_t t0 = 0; t0 < ntasks; t0 += MAX_GRID) {
        int64_t nt = ntasks - t0 < MAX_GRID ? ntasks - t0 : MAX_GRID;
        kfr_cu_ptr tp = dtasks + (kfr_cu_ptr)t0 * 4 * sizeof(int64_t);
        void *params[] = {&dargs, &tp, &djr, &dout, &didx};
        int rc = kfr_cu_launch(c->dev, c->fn, (unsigned)nt, (unsigned)c->block, smem, s, params, d);
        if (rc != KF_OK)
            return rc;
    }
    return KF_OK;
}

/* Split-j's two launches: the partial kernel over the task table at dtasks
 * (5 int64 per task) into dpart/dpidx, then the combine kernel. */
static int launch_split(kfr_cuda *c, kfr_cu_stream s, kfr_cu_ptr dargs, kfr_cu_ptr dtasks, int64_t ntasks,
                        long long rows, long long nslots, kfr_cu_ptr dpart, kfr_cu_ptr dpidx, kfr_cu_ptr dout,
                        kfr_cu_ptr didx, kfc_diag *d)
{
    unsigned smem = (unsigned)((long long)c->pblock * c->smem_pp);
    for (int64_t t0 = 0; t0 < ntasks; t0 += MAX_GRID) {
        int64_t nt = ntasks - t0 < MAX_GRID ? ntasks - t0 : MAX_GRID;
        kfr_cu_ptr tp = dtasks + (kfr_cu_ptr)t0 * 5 * sizeof(int64_t);
        void *params[] = {&dargs, &tp, &rows, &dpart, &dpidx};
        int rc = kfr_cu_launch(c->dev, c->fn_part, (unsigned)nt, (unsigned)c->pblock, smem, s, params, d);
        if (rc != KF_OK)
            return rc;
    }
    /* split runs have few rows (fewer blocks than 2 per multiprocessor) */
    int64_t nb = (rows + c->cblock - 1) / c->cblock;
    void *params[] = {&dpart, &dpidx, &nslots, &rows, &dout, &didx};
    return kfr_cu_launch(c->dev, c->fn_comb, (unsigned)nb, (unsigned)c->cblock, 0, s, params, d);
}

/* The task table and inner ranges of a run: dense (rg NULL) or block-sparse.
 * *nchunks > 1: a split-j run, tasks for the partial kernel (5 int64 each). */
static int make_tasks(kf_kernel *k, const kf_ranges *rg, int64_t rows, int64_t inner,
                      int64_t **tasks, int64_t *ntasks, int64_t **jr, int64_t *njr, int64_t *nchunks,
                      kfc_diag *d)
{
    kfr_cuda *c = k->cuda;
    *tasks = *jr = NULL;
    *nchunks = 1;
    int rc;
    if (!rg) {
        if (!(*jr = malloc(2 * sizeof(int64_t))))
            return kfc_diag_set(d, KF_ERR_NOMEM, -1, -1, "out of memory");
        (*jr)[0] = 0, (*jr)[1] = inner, *njr = 2;
        *nchunks = kfr_cuda_split_plan((rows + c->pblock - 1) / c->pblock, inner, c->info.sms);
        if (*nchunks > 1)
            rc = kfr_cuda_tasks_split(rows, c->pblock, inner, *nchunks, tasks, ntasks);
        else
            rc = kfr_cuda_tasks_dense(rows, c->block, tasks, ntasks);
    } else {
        int axis = k->red.axis;
        int64_t nred = axis == 1 ? rg->nredj : rg->nredi;
        const int64_t *red = axis == 1 ? rg->redranges_j : rg->redranges_i;
        kfr_task *cpu = NULL;
        int64_t ncpu = 0;
        rc = kfr_ranges_tasks(k->ctx, rg, axis, rows, 1, &cpu, &ncpu);
        if (rc != KF_OK)
            return kfc_diag_set(d, rc, -1, -1, "%s", kf_errmsg(k->ctx));
        rc = kfr_cuda_tasks_ranges(cpu, ncpu, red, c->block, tasks, ntasks);
        free(cpu);
        *njr = 2 * (nred > 0 ? nred : 1);
        if (rc == KF_OK && !(*jr = calloc((size_t)*njr, sizeof(int64_t))))
            rc = KF_ERR_NOMEM;
        if (rc == KF_OK && nred > 0)
            memcpy(*jr, red, (size_t)nred * 2 * sizeof(int64_t));
    }
    if (rc != KF_OK) {
        free(*tasks), free(*jr);
        *tasks = *jr = NULL;
        return kfc_diag_set(d, KF_ERR_NOMEM, -1, -1, "out of memory for the launch tables");
    }
    return KF_OK;
}

/* Rows of variable v's array for M and N. */
static int64_t var_rows(const kf_kernel *k, int v, int64_t M, int64_t N)
{
    int cat = k->prog.vars[v].cat;
    return cat == KFC_CAT_I ? M : cat == KFC_CAT_J ? N : 1;
}

int kfr_cuda_run(kf_kernel *k, int64_t M, int64_t N, const void *const *args, void *out,
                 int64_t *idx, const kf_ranges *rg, int device_ptrs, void *stream, kfc_diag *d)
{
    kfr_cuda *c = k->cuda;
    int axis = k->red.axis, nargs = k->prog.nvars;
    int64_t rows = axis == 1 ? M : N, inner = axis == 1 ? N : M;
    size_t elem = k->red.dtype == KF_FLOAT64 ? 8 : 4;
    size_t out_b = (size_t)rows * (size_t)k->red.valdim * elem, idx_b = (size_t)rows * (size_t)k->red.idxdim * 8;
    int64_t *tasks = NULL, *jr = NULL, ntasks = 0, njr = 0, nchunks = 1;
    uint64_t *ptrs = NULL;
    int rc = make_tasks(k, rg, rows, inner, &tasks, &ntasks, &jr, &njr, &nchunks, d);
    if (rc != KF_OK)
        return rc;
    if (!(ptrs = calloc((size_t)(nargs > 0 ? nargs : 1), sizeof *ptrs))) {
        rc = kfc_diag_set(d, KF_ERR_NOMEM, -1, -1, "out of memory");
        goto done;
    }
    /* the buffer: [arrays (host runs)] [pointer table] [tasks] [jr] [out] [idx]
     * [part] [pidx] (the last two: split-j's partial states, nchunks > 1) */
    size_t off = 0, arr_off[KFC_MAX_VARS];
    for (int v = 0; v < nargs && !device_ptrs; v++) {
        arr_off[v] = off;
        if (k->prog.vars[v].used)
            off += align_up((size_t)var_rows(k, v, M, N) * (size_t)k->prog.vars[v].dim * elem);
    }
    size_t task_b = (size_t)ntasks * (nchunks > 1 ? 40 : 32);
    size_t ptr_off = off, task_off = ptr_off + align_up((size_t)nargs * 8);
    size_t jr_off = task_off + align_up(task_b), out_off = jr_off + align_up((size_t)njr * 8);
    size_t idx_off = out_off + (device_ptrs ? 0 : align_up(out_b));
    size_t part_off = idx_off + (device_ptrs ? 0 : align_up(idx_b)), pidx_off = part_off, total = part_off;
    if (nchunks > 1) {
        size_t prows = (size_t)nchunks * (size_t)rows;
        pidx_off = part_off + align_up(prows * (size_t)c->part.nv * (size_t)c->part.vbytes);
        total = pidx_off + align_up(prows * (size_t)c->part.nx * 8);
    }
    if ((rc = reserve(c, total > 0 ? total : ARG_ALIGN, d)) != KF_OK)
        goto done;
    kfr_cu_stream s = device_ptrs && stream ? (kfr_cu_stream)stream : c->stream;
    for (int v = 0; v < nargs; v++) {
        if (!k->prog.vars[v].used)
            continue;
        if (device_ptrs) {
            ptrs[v] = (uint64_t)(uintptr_t)args[v];
            continue;
        }
        size_t b = (size_t)var_rows(k, v, M, N) * (size_t)k->prog.vars[v].dim * elem;
        ptrs[v] = c->mem + arr_off[v];
        if (b > 0 && (rc = kfr_cu_htod(c->dev, ptrs[v], args[v], b, s, d)) != KF_OK)
            goto done;
    }
    if ((nargs > 0 && (rc = kfr_cu_htod(c->dev, c->mem + ptr_off, ptrs, (size_t)nargs * 8, s, d)) != KF_OK) ||
        (ntasks > 0 && (rc = kfr_cu_htod(c->dev, c->mem + task_off, tasks, task_b, s, d)) != KF_OK) ||
        (rc = kfr_cu_htod(c->dev, c->mem + jr_off, jr, (size_t)njr * 8, s, d)) != KF_OK)
        goto done;
    kfr_cu_ptr dout = device_ptrs ? (kfr_cu_ptr)(uintptr_t)out : c->mem + out_off;
    kfr_cu_ptr didx = device_ptrs ? (kfr_cu_ptr)(uintptr_t)idx : c->mem + idx_off;
    if (nchunks > 1)
        rc = launch_split(c, s, c->mem + ptr_off, c->mem + task_off, ntasks, (long long)rows, (long long)nchunks,
                          c->mem + part_off, c->mem + pidx_off, dout, didx, d);
    else
        rc = launch(c, s, c->mem + ptr_off, c->mem + task_off, ntasks, c->mem + jr_off, dout, didx, d);
    if (rc != KF_OK)
        goto done;
    if (!device_ptrs) {
        if ((out_b > 0 && (rc = kfr_cu_dtoh(c->dev, out, dout, out_b, s, d)) != KF_OK) ||
            (idx_b > 0 && (rc = kfr_cu_dtoh(c->dev, idx, didx, idx_b, s, d)) != KF_OK))
            goto done;
    }
    /* Host runs, and device runs without a stream, wait for the results. A
     * device run on the caller's stream returns at once: copies from pageable
     * host memory are staged before cuMemcpyHtoDAsync returns, so the host
     * tables may be freed now. */
    if (!(device_ptrs && stream))
        rc = kfr_cu_stream_sync(c->dev, s, d);
done:
    free(tasks);
    free(jr);
    free(ptrs);
    return rc;
}
