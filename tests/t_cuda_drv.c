/* t_cuda_drv.c -- the CUDA driver layer (runtime/cuda/cuda_drv.c). Without a
 * driver (the CI machine): every call fails cleanly with a status and a
 * message, from several threads at once. With one (a GPU machine): device 0's
 * properties, a memory round trip (synchronous and on a stream), an
 * out-of-memory message, and a hand-written PTX kernel loaded, launched and
 * read back, plus a PTX the JIT rejects. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cuda/cuda_drv.h"
#include "harness.h"

/* Whether the driver's library can be loaded at all (decides which branch
 * the tests expect). */
static int driver_lib_present(void)
{
    void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (h)
        dlclose(h);
    return h != NULL;
}

/* Device count, or 0 when no usable driver (then d says why). */
static int gpu_count(kfc_diag *d)
{
    int n = -1;
    kfc_diag_clear(d);
    return kfr_cu_device_count(&n, d) == KF_OK ? n : 0;
}

KFT_TEST(cuda_drv_count)
{
    kfc_diag d;
    kfc_diag_clear(&d);
    int n = -1;
    int st = kfr_cu_device_count(&n, &d);
    if (st == KF_OK) {
        KFT_CHECKF(n >= 1, "count %d", n);
        return;
    }
    printf("  cuda_drv: no CUDA device: %s\n", d.msg);
    KFT_CHECK(n == 0);
    KFT_CHECK(d.status == st && d.msg[0] != 0);
    if (!driver_lib_present()) {
        /* This machine has no driver: the reason is "library missing", or
         * the toolkit's stub when LD_LIBRARY_PATH leads to it. */
        KFT_CHECKF(st == KF_ERR_UNSUPPORTED, "status %d: %s", st, d.msg);
        KFT_CHECKF(strstr(d.msg, "libcuda.so.1") || strstr(d.msg, "stub"), "%s", d.msg);
    } else {
        KFT_CHECKF(st == KF_ERR_UNSUPPORTED || st == KF_ERR_DEVICE, "status %d: %s", st, d.msg);
    }
    /* The same answer every time (loaded once). */
    kfc_diag d2;
    kfc_diag_clear(&d2);
    int n2 = -1;
    KFT_CHECK(kfr_cu_device_count(&n2, &d2) == st && n2 == 0 && !strcmp(d.msg, d2.msg));
}

/* Every call given ordinal `dev` fails with a status and a message, writes
 * no handle, and the void calls do nothing. */
static void all_fail(int dev, int want)
{
    kfc_diag d;
    kfr_cu_device info;
    kfc_diag_clear(&d);
    KFT_CHECK(kfr_cu_device_get(dev, &info, &d) == want && d.msg[0] && info.name[0] == 0);
    kfr_cu_module mod = (kfr_cu_module)&d;
    kfc_diag_clear(&d);
    KFT_CHECK(kfr_cu_module_load(dev, ".version 6.0\n", &mod, &d) == want && d.msg[0] && !mod);
    kfr_cu_ptr p = 123;
    kfc_diag_clear(&d);
    KFT_CHECK(kfr_cu_alloc(dev, 1 << 20, &p, &d) == want && d.msg[0] && p == 0);
    char buf[16] = {0};
    kfc_diag_clear(&d);
    KFT_CHECK(kfr_cu_htod(dev, 4096, buf, sizeof buf, NULL, &d) == want && d.msg[0]);
    kfc_diag_clear(&d);
    KFT_CHECK(kfr_cu_dtoh(dev, buf, 4096, sizeof buf, NULL, &d) == want && d.msg[0]);
    kfc_diag_clear(&d);
    KFT_CHECK(kfr_cu_memset8(dev, 4096, 7, sizeof buf, NULL, &d) == want && d.msg[0]);
    kfr_cu_stream s = (kfr_cu_stream)&d;
    kfc_diag_clear(&d);
    KFT_CHECK(kfr_cu_stream_create(dev, &s, &d) == want && d.msg[0] && !s);
    kfc_diag_clear(&d);
    KFT_CHECK(kfr_cu_stream_sync(dev, NULL, &d) == want && d.msg[0]);
    kfr_cu_free(dev, 0);
    kfr_cu_free(dev, 4096);
    kfr_cu_stream_destroy(dev, NULL);
    kfr_cu_module_unload(dev, NULL);
}

KFT_TEST(cuda_drv_fails_cleanly)
{
    kfc_diag d;
    int n = gpu_count(&d);
    int none = n == 0 ? d.status : KF_ERR_ARG;
    if (n == 0)
        all_fail(0, none);
    all_fail(-1, none);
    all_fail(n, none);
    all_fail(64, none);
    /* NULL handles are arguments errors whatever the machine. */
    kfr_cu_func f = (kfr_cu_func)&d;
    kfc_diag_clear(&d);
    KFT_CHECK(kfr_cu_function(NULL, "k", &f, &d) == KF_ERR_ARG && !f && d.msg[0]);
    int regs = 0, maxt = 0;
    kfc_diag_clear(&d);
    KFT_CHECK(kfr_cu_func_limits(NULL, &regs, &maxt, &d) == KF_ERR_ARG);
    kfc_diag_clear(&d);
    KFT_CHECK(kfr_cu_func_set_smem(NULL, 1024, &d) == KF_ERR_ARG);
    kfc_diag_clear(&d);
    KFT_CHECK(kfr_cu_launch(0, NULL, 1, 1, 0, NULL, NULL, &d) == KF_ERR_ARG);
    int v = 0;
    kfc_diag_clear(&d);
    KFT_CHECK(kfr_cu_global_read(0, NULL, "x", &v, sizeof v, &d) == KF_ERR_ARG);
}

/* Several threads at once on a process's first calls: same answers, no crash. */
typedef struct thread_res {
    int st, n, st_get;
    char msg[512];
} thread_res;

static void *count_thread(void *arg)
{
    thread_res *r = arg;
    kfc_diag d;
    kfc_diag_clear(&d);
    r->st = kfr_cu_device_count(&r->n, &d);
    snprintf(r->msg, sizeof r->msg, "%s", d.msg);
    kfr_cu_device info;
    kfc_diag_clear(&d);
    r->st_get = kfr_cu_device_get(0, &info, &d);
    return NULL;
}

KFT_TEST(cuda_drv_threads)
{
    enum { T = 8 };
    pthread_t th[T];
    thread_res res[T];
    int started[T];
    memset(res, 0, sizeof res);
    for (int t = 0; t < T; t++)
        started[t] = pthread_create(&th[t], NULL, count_thread, &res[t]) == 0;
    for (int t = 0; t < T; t++)
        if (started[t])
            pthread_join(th[t], NULL);
    int ref = -1;
    for (int t = 0; t < T; t++) {
        if (!started[t])
            continue;
        if (ref < 0) {
            ref = t;
            continue;
        }
        KFT_CHECK(res[t].st == res[ref].st && res[t].n == res[ref].n && res[t].st_get == res[ref].st_get);
        KFT_CHECK(!strcmp(res[t].msg, res[ref].msg));
    }
    KFT_CHECK(ref >= 0);
}

/* ---- with a GPU ---- */

KFT_TEST(cuda_drv_gpu_device0)
{
    kfc_diag d;
    if (gpu_count(&d) == 0)
        KFT_SKIP("no GPU: %s", d.msg);
    kfr_cu_device info;
    kfc_diag_clear(&d);
    int st = kfr_cu_device_get(0, &info, &d);
    KFT_CHECKF(st == KF_OK, "%s", d.msg);
    if (st != KF_OK)
        return;
    printf("  cuda_drv: device 0: %s, cc %d.%d, %d SMs, %lld MiB (%lld MiB free), smem %d/%d, regs %d, "
           "warp %d, threads %d, driver %d\n",
           info.name, info.major, info.minor, info.sms, (long long)(info.total_mem >> 20),
           (long long)(info.free_mem >> 20), info.smem_per_block, info.max_smem_per_block,
           info.regs_per_block, info.warp_size, info.max_threads_per_block, info.driver_version);
    KFT_CHECK(info.name[0] != 0);
    KFT_CHECK(info.major > 3 || (info.major == 3 && info.minor >= 0));
    KFT_CHECK(info.sms >= 1 && info.warp_size == 32);
    KFT_CHECK(info.max_threads_per_block >= 512 && info.regs_per_block >= 16384);
    KFT_CHECK(info.smem_per_block >= 16384 && info.max_smem_per_block >= info.smem_per_block);
    KFT_CHECK(info.total_mem > 0 && info.free_mem > 0 && info.free_mem <= info.total_mem);
    KFT_CHECK(info.driver_version >= 3000);
}

KFT_TEST(cuda_drv_gpu_memory)
{
    kfc_diag d;
    if (gpu_count(&d) == 0)
        KFT_SKIP("no GPU: %s", d.msg);
    const size_t bytes = 1 << 20;
    unsigned char *h = malloc(bytes), *back = malloc(bytes);
    KFT_CHECK(h && back);
    if (!h || !back) {
        free(h);
        free(back);
        return;
    }
    for (size_t k = 0; k < bytes; k++)
        h[k] = (unsigned char)(k * 7 + 3);
    kfr_cu_ptr p = 0;
    kfc_diag_clear(&d);
    int st = kfr_cu_alloc(0, bytes, &p, &d);
    KFT_CHECKF(st == KF_OK && p != 0, "%s", d.msg);
    if (st == KF_OK) {
        /* Synchronous: copy in, clear the second half, copy back. */
        KFT_CHECKF(kfr_cu_htod(0, p, h, bytes, NULL, &d) == KF_OK, "%s", d.msg);
        KFT_CHECKF(kfr_cu_memset8(0, p + bytes / 2, 0xAB, bytes / 2, NULL, &d) == KF_OK, "%s", d.msg);
        memset(back, 0, bytes);
        KFT_CHECKF(kfr_cu_dtoh(0, back, p, bytes, NULL, &d) == KF_OK, "%s", d.msg);
        size_t bad = bytes;
        for (size_t k = 0; k < bytes && bad == bytes; k++)
            if (back[k] != (k < bytes / 2 ? h[k] : 0xAB))
                bad = k;
        KFT_CHECKF(bad == bytes, "byte %zu differs after the round trip", bad);
        /* The same on a stream. */
        kfr_cu_stream s = NULL;
        kfc_diag_clear(&d);
        st = kfr_cu_stream_create(0, &s, &d);
        KFT_CHECKF(st == KF_OK && s, "%s", d.msg);
        if (st == KF_OK) {
            KFT_CHECKF(kfr_cu_memset8(0, p, 0, bytes, s, &d) == KF_OK, "%s", d.msg);
            KFT_CHECKF(kfr_cu_htod(0, p, h, bytes / 2, s, &d) == KF_OK, "%s", d.msg);
            memset(back, 0xFF, bytes);
            KFT_CHECKF(kfr_cu_dtoh(0, back, p, bytes, s, &d) == KF_OK, "%s", d.msg);
            KFT_CHECKF(kfr_cu_stream_sync(0, s, &d) == KF_OK, "%s", d.msg);
            bad = bytes;
            for (size_t k = 0; k < bytes && bad == bytes; k++)
                if (back[k] != (k < bytes / 2 ? h[k] : 0))
                    bad = k;
            KFT_CHECKF(bad == bytes, "byte %zu differs after the stream round trip", bad);
            kfr_cu_stream_destroy(0, s);
        }
        KFT_CHECKF(kfr_cu_stream_sync(0, NULL, &d) == KF_OK, "%s", d.msg);
        kfr_cu_free(0, p);
    }
    free(h);
    free(back);
    /* 1 PiB: out of memory, said so. */
    kfr_cu_ptr q = 1;
    kfc_diag_clear(&d);
    st = kfr_cu_alloc(0, (size_t)1 << 50, &q, &d);
    printf("  cuda_drv: 1 PiB: %s\n", d.msg);
    KFT_CHECK(st == KF_ERR_DEVICE && q == 0);
    KFT_CHECKF(strstr(d.msg, "OUT_OF_MEMORY") && strstr(d.msg, "1.0 PiB") && strstr(d.msg, "device 0"),
               "%s", d.msg);
    /* 0 bytes: nothing, and nothing to free. */
    kfc_diag_clear(&d);
    KFT_CHECK(kfr_cu_alloc(0, 0, &q, &d) == KF_OK && q == 0);
}

/* out[i] = v + i for i < n; and a global kf_answer = 42. PTX ISA 6.0 for
 * sm_50, so any driver of the last years JIT-compiles it (checked with
 * ptxas for sm_75 and sm_90). */
static const char KF_FILL_PTX[] =
    ".version 6.0\n"
    ".target sm_50\n"
    ".address_size 64\n"
    ".visible .global .align 4 .u32 kf_answer = 42;\n"
    ".visible .entry kf_fill(.param .u64 kf_fill_out, .param .u32 kf_fill_n, .param .u32 kf_fill_v)\n"
    "{\n"
    "    .reg .pred %p<2>;\n"
    "    .reg .b32 %r<8>;\n"
    "    .reg .b64 %rd<5>;\n"
    "    ld.param.u64 %rd1, [kf_fill_out];\n"
    "    ld.param.u32 %r1, [kf_fill_n];\n"
    "    ld.param.u32 %r2, [kf_fill_v];\n"
    "    mov.u32 %r3, %ctaid.x;\n"
    "    mov.u32 %r4, %ntid.x;\n"
    "    mov.u32 %r5, %tid.x;\n"
    "    mad.lo.s32 %r6, %r3, %r4, %r5;\n"
    "    setp.ge.u32 %p1, %r6, %r1;\n"
    "    @%p1 bra DONE;\n"
    "    cvta.to.global.u64 %rd2, %rd1;\n"
    "    mul.wide.u32 %rd3, %r6, 4;\n"
    "    add.s64 %rd4, %rd2, %rd3;\n"
    "    add.s32 %r7, %r2, %r6;\n"
    "    st.global.u32 [%rd4], %r7;\n"
    "DONE:\n"
    "    ret;\n"
    "}\n";

KFT_TEST(cuda_drv_gpu_module)
{
    kfc_diag d;
    if (gpu_count(&d) == 0)
        KFT_SKIP("no GPU: %s", d.msg);
    kfr_cu_device info;
    kfc_diag_clear(&d);
    if (kfr_cu_device_get(0, &info, &d) != KF_OK)
        return; /* reported by cuda_drv_gpu_device0 */
    kfr_cu_module mod = NULL;
    kfc_diag_clear(&d);
    int st = kfr_cu_module_load(0, KF_FILL_PTX, &mod, &d);
    KFT_CHECKF(st == KF_OK && mod, "%s", d.msg);
    if (st != KF_OK)
        return;
    kfr_cu_func f = NULL, f2 = NULL;
    KFT_CHECKF(kfr_cu_function(mod, "kf_fill", &f, &d) == KF_OK && f, "%s", d.msg);
    KFT_CHECK(kfr_cu_function(mod, "kf_fill", &f2, &d) == KF_OK && f2 == f);
    kfc_diag_clear(&d);
    KFT_CHECK(kfr_cu_function(mod, "kf_nothing", &f2, &d) == KF_ERR_ARG && !f2);
    KFT_CHECKF(strstr(d.msg, "NOT_FOUND") && strstr(d.msg, "kf_nothing"), "%s", d.msg);
    unsigned answer = 0;
    KFT_CHECKF(kfr_cu_global_read(0, mod, "kf_answer", &answer, sizeof answer, &d) == KF_OK, "%s", d.msg);
    KFT_CHECK(answer == 42);
    uint64_t wide = 0;
    kfc_diag_clear(&d);
    KFT_CHECK(kfr_cu_global_read(0, mod, "kf_answer", &wide, sizeof wide, &d) == KF_ERR_ARG);
    if (!f) {
        kfr_cu_module_unload(0, mod);
        return;
    }
    int regs = -1, maxt = -1;
    KFT_CHECKF(kfr_cu_func_limits(f, &regs, &maxt, &d) == KF_OK, "%s", d.msg);
    KFT_CHECKF(regs > 0 && regs <= 255 && maxt >= 128 && maxt <= info.max_threads_per_block,
               "regs %d, threads %d", regs, maxt);
    /* Dynamic shared memory above the 48 KiB default needs the opt-in. */
    unsigned smem = 0;
    if (info.max_smem_per_block > info.smem_per_block) {
        smem = (unsigned)info.max_smem_per_block;
        KFT_CHECKF(kfr_cu_func_set_smem(f, (int)smem, &d) == KF_OK, "%s", d.msg);
        kfc_diag_clear(&d);
        KFT_CHECK(kfr_cu_func_set_smem(f, info.max_smem_per_block + 4096, &d) == KF_ERR_DEVICE);
        printf("  cuda_drv: too much shared memory: %s\n", d.msg);
    }
    const unsigned n = 1000, bx = 128;
    kfr_cu_ptr out = 0;
    kfc_diag_clear(&d);
    st = kfr_cu_alloc(0, n * sizeof(unsigned), &out, &d);
    KFT_CHECKF(st == KF_OK, "%s", d.msg);
    if (st == KF_OK) {
        unsigned nn = n, v = 7;
        void *params[] = {&out, &nn, &v};
        kfr_cu_stream s = NULL;
        KFT_CHECKF(kfr_cu_stream_create(0, &s, &d) == KF_OK, "%s", d.msg);
        KFT_CHECKF(kfr_cu_launch(0, f, (n + bx - 1) / bx, bx, smem, s, params, &d) == KF_OK, "%s", d.msg);
        KFT_CHECKF(kfr_cu_stream_sync(0, s, &d) == KF_OK, "%s", d.msg);
        unsigned *back = calloc(n, sizeof *back);
        KFT_CHECK(back != NULL);
        if (back) {
            KFT_CHECKF(kfr_cu_dtoh(0, back, out, n * sizeof *back, NULL, &d) == KF_OK, "%s", d.msg);
            unsigned bad = n;
            for (unsigned k = 0; k < n && bad == n; k++)
                if (back[k] != 7 + k)
                    bad = k;
            KFT_CHECKF(bad == n, "out[%u] = %u", bad, bad < n ? back[bad] : 0);
            free(back);
        }
        /* A block larger than the device allows fails at the launch. */
        kfc_diag_clear(&d);
        st = kfr_cu_launch(0, f, 1, (unsigned)info.max_threads_per_block * 2, 0, s, params, &d);
        KFT_CHECK(st == KF_ERR_DEVICE && strstr(d.msg, "kf_fill"));
        printf("  cuda_drv: block too large: %s\n", d.msg);
        kfr_cu_stream_destroy(0, s);
        kfr_cu_free(0, out);
    }
    kfr_cu_module_unload(0, mod);

    /* A PTX the JIT rejects: KF_ERR_JIT with the JIT's log. */
    kfc_diag_clear(&d);
    mod = (kfr_cu_module)&d;
    st = kfr_cu_module_load(0, ".version 6.0\n.target sm_50\n.address_size 64\n"
                               ".visible .entry bad() { frob.u32 %r1; }\n", &mod, &d);
    printf("  cuda_drv: bad PTX: %s\n", d.msg);
    KFT_CHECKF(st == KF_ERR_JIT && !mod, "status %d", st);
    KFT_CHECKF(strstr(d.msg, "CUDA_ERROR_") && strstr(d.msg, "PTX"), "%s", d.msg);
}
