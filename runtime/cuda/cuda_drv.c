/* cuda_drv.c -- the CUDA driver API (libcuda) loaded with dlopen at first use:
 * devices, their primary contexts, modules, memory, streams and launches
 * (interface and error contract: cuda_drv.h). No CUDA header is included:
 * the few types, values and prototypes used are declared below, from the
 * driver API reference (values as in CUDA 13.0's cuda.h, stable for years).
 *
 *   first call -> api_load (pthread_once): dlopen, dlsym, cuInit, device
 *                 count, handles and names (read-only afterwards)
 *   per device -> use_device: the primary context, retained once (ctx_lock),
 *                 made current on the calling thread before each driver call
 */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cuda/cuda_drv.h"
#include "runtime/rt.h"

/* ---- the driver API's declarations, as kforge uses them ---- */

typedef int cu_result;             /* CUresult; 0 is CUDA_SUCCESS */
typedef int cu_device;             /* CUdevice */
typedef struct cu_ctx_s *cu_ctx;   /* CUcontext */
typedef struct cu_mod_s *cu_mod;   /* CUmodule */
typedef struct cu_fn_s *cu_fn;     /* CUfunction */
/* CUdeviceptr is kfr_cu_ptr and CUstream is kfr_cu_stream (cuda_drv.h). */

/* CUresult values told apart here. */
enum {
    CU_SUCCESS = 0,                /* CUDA_SUCCESS */
    CU_E_STUB_LIBRARY = 34,        /* CUDA_ERROR_STUB_LIBRARY: the toolkit's link-time stub */
    CU_E_INSUFFICIENT_DRIVER = 35, /* CUDA_ERROR_INSUFFICIENT_DRIVER */
    CU_E_NO_DEVICE = 100,          /* CUDA_ERROR_NO_DEVICE */
    CU_E_INVALID_IMAGE = 200,      /* CUDA_ERROR_INVALID_IMAGE */
    CU_E_NO_BINARY_FOR_GPU = 209,  /* CUDA_ERROR_NO_BINARY_FOR_GPU */
    CU_E_INVALID_PTX = 218,        /* CUDA_ERROR_INVALID_PTX */
    CU_E_JIT_NOT_FOUND = 221,      /* CUDA_ERROR_JIT_COMPILER_NOT_FOUND */
    CU_E_PTX_VERSION = 222,        /* CUDA_ERROR_UNSUPPORTED_PTX_VERSION */
    CU_E_JIT_DISABLED = 223,       /* CUDA_ERROR_JIT_COMPILATION_DISABLED */
    CU_E_NOT_FOUND = 500,          /* CUDA_ERROR_NOT_FOUND */
    CU_E_DRIVER_MISMATCH = 803,    /* CUDA_ERROR_SYSTEM_DRIVER_MISMATCH */
    CU_E_COMPAT_UNSUPPORTED = 804  /* CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE */
};

/* CUdevice_attribute values read by kfr_cu_device_get. */
enum {
    CU_DA_MAX_THREADS_PER_BLOCK = 1, /* CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK */
    CU_DA_SMEM_PER_BLOCK = 8,        /* CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK (no opt-in) */
    CU_DA_WARP_SIZE = 10,            /* CU_DEVICE_ATTRIBUTE_WARP_SIZE */
    CU_DA_REGS_PER_BLOCK = 12,       /* CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK */
    CU_DA_SM_COUNT = 16,             /* CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT */
    CU_DA_CC_MAJOR = 75,             /* CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR */
    CU_DA_CC_MINOR = 76,             /* CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR */
    CU_DA_SMEM_PER_BLOCK_OPTIN = 97  /* CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN */
};

/* CUfunction_attribute values. */
enum {
    CU_FA_MAX_THREADS_PER_BLOCK = 0, /* CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK */
    CU_FA_NUM_REGS = 4,              /* CU_FUNC_ATTRIBUTE_NUM_REGS */
    CU_FA_MAX_DYNAMIC_SMEM = 8       /* CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES */
};

/* CUjit_option values (cuModuleLoadDataEx). */
enum {
    CU_JIT_ERROR_LOG = 5,     /* CU_JIT_ERROR_LOG_BUFFER: char * */
    CU_JIT_ERROR_LOG_SIZE = 6 /* CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES: unsigned int, in and out */
};

/* cuStreamCreate flags: CU_STREAM_DEFAULT (0), not CU_STREAM_NON_BLOCKING,
 * so that a stream stays ordered with the synchronous copies (s == NULL)
 * that go through the legacy default stream. */
enum { CU_STREAM_FLAGS = 0 };

enum { MAX_DEVICES = 64, JIT_LOG_BYTES = 8192 };

typedef struct cu_api {
    void *lib;
    cu_result (*init)(unsigned);
    cu_result (*driver_get_version)(int *);
    cu_result (*get_error_name)(cu_result, const char **);
    cu_result (*get_error_string)(cu_result, const char **);
    cu_result (*device_get_count)(int *);
    cu_result (*device_get)(cu_device *, int);
    cu_result (*device_get_name)(char *, int, cu_device);
    cu_result (*device_total_mem)(size_t *, cu_device);
    cu_result (*device_get_attribute)(int *, int, cu_device);
    cu_result (*primary_ctx_retain)(cu_ctx *, cu_device);
    cu_result (*ctx_set_current)(cu_ctx);
    cu_result (*mem_get_info)(size_t *, size_t *);
    cu_result (*module_load_data_ex)(cu_mod *, const void *, unsigned, int *, void **);
    cu_result (*module_unload)(cu_mod);
    cu_result (*module_get_function)(cu_fn *, cu_mod, const char *);
    cu_result (*module_get_global)(kfr_cu_ptr *, size_t *, cu_mod, const char *);
    cu_result (*func_get_attribute)(int *, int, cu_fn);
    cu_result (*func_set_attribute)(cu_fn, int, int);
    cu_result (*mem_alloc)(kfr_cu_ptr *, size_t);
    cu_result (*mem_free)(kfr_cu_ptr);
    cu_result (*memcpy_htod)(kfr_cu_ptr, const void *, size_t);
    cu_result (*memcpy_dtoh)(void *, kfr_cu_ptr, size_t);
    cu_result (*memcpy_htod_async)(kfr_cu_ptr, const void *, size_t, kfr_cu_stream);
    cu_result (*memcpy_dtoh_async)(void *, kfr_cu_ptr, size_t, kfr_cu_stream);
    cu_result (*memset_d8)(kfr_cu_ptr, unsigned char, size_t);
    cu_result (*memset_d8_async)(kfr_cu_ptr, unsigned char, size_t, kfr_cu_stream);
    cu_result (*stream_create)(kfr_cu_stream *, unsigned);
    cu_result (*stream_synchronize)(kfr_cu_stream);
    cu_result (*stream_destroy)(kfr_cu_stream);
    cu_result (*launch_kernel)(cu_fn, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                               unsigned, kfr_cu_stream, void **, void **);
    int status;     /* KF_OK when the driver is usable, else the status of why */
    char why[448];  /* why the driver is not usable (status != KF_OK) */
    int count;      /* devices seen, at most MAX_DEVICES (>= 1 when status is KF_OK) */
    int driver;     /* cuDriverGetVersion, e.g. 12040; 0 if unknown */
    cu_device handle[MAX_DEVICES];
    char name[MAX_DEVICES][256];
} cu_api;

/* Written once under pthread_once, read-only afterwards. */
static cu_api api;
static pthread_once_t api_once = PTHREAD_ONCE_INIT;

/* Primary contexts, retained at the first use of each device and kept for
 * the life of the process (the driver releases them at exit). */
static pthread_mutex_t ctx_lock = PTHREAD_MUTEX_INITIALIZER;
static cu_ctx ctxs[MAX_DEVICES];

/* The handles given out: the driver's, plus the device they belong to, so
 * that calls without a device argument can make its context current. A
 * module owns the functions looked up in it (freed by kfr_cu_module_unload). */
struct kfr_cu_func_s {
    cu_fn fn;
    int dev;
    struct kfr_cu_func_s *next; /* the module's list, guarded by func_lock */
    char name[];
};
struct kfr_cu_module_s {
    cu_mod mod;
    int dev;
    struct kfr_cu_func_s *funcs;
};
static pthread_mutex_t func_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---- messages ---- */

/* The driver's name and text of rc into name (e.g. "CUDA_ERROR_OUT_OF_MEMORY")
 * and *text; fallbacks when the driver cannot say (an unknown code, or the
 * stub library, which answers every call with CUDA_ERROR_STUB_LIBRARY). */
static void cu_text(cu_result rc, char *name, size_t cap, const char **text)
{
    const char *n = NULL, *t = NULL;
    if (api.get_error_name && (api.get_error_name(rc, &n) != CU_SUCCESS || !n))
        n = NULL;
    if (api.get_error_string && (api.get_error_string(rc, &t) != CU_SUCCESS || !t))
        t = NULL;
    if (n)
        snprintf(name, cap, "%s", n);
    else if (rc == CU_E_STUB_LIBRARY)
        snprintf(name, cap, "CUDA_ERROR_STUB_LIBRARY");
    else
        snprintf(name, cap, "CUDA error %d", rc);
    *text = t ? t : rc == CU_E_STUB_LIBRARY ? "CUDA driver is a stub library" : "no description";
}

/* "WHAT: NAME: TEXT" into d, e.g. "allocating 4.0 GiB on device 0 (NVIDIA
 * H100 80GB HBM3): CUDA_ERROR_OUT_OF_MEMORY: out of memory". */
static int cu_fail(kfc_diag *d, int status, cu_result rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int cu_fail(kfc_diag *d, int status, cu_result rc, const char *fmt, ...)
{
    char what[384], name[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    const char *text;
    cu_text(rc, name, sizeof name, &text);
    return kfc_diag_set(d, status, -1, -1, "%s: %s: %s", what, name, text);
}

/* Sizes as people read them: 812 B, 14.2 KiB, 4.0 GiB. */
static const char *human(double n, char *buf, size_t cap)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    int u = 0;
    while (n >= 1024 && u < 5)
        n /= 1024, u++;
    if (u == 0)
        snprintf(buf, cap, "%.0f B", n);
    else
        snprintf(buf, cap, "%.1f %s", n, unit[u]);
    return buf;
}

/* "device 0 (NVIDIA H100 80GB HBM3)" for messages; dev must be valid. */
static const char *label(int dev, char *buf, size_t cap)
{
    snprintf(buf, cap, "device %d (%s)", dev, api.name[dev]);
    return buf;
}

/* ---- loading ---- */

/* Why cuInit failed, in words, and whether that means "no usable driver"
 * (KF_ERR_UNSUPPORTED) or a driver that is there but broken (KF_ERR_DEVICE). */
static void init_failed(cu_result rc)
{
    char name[64];
    const char *text;
    cu_text(rc, name, sizeof name, &text);
    char where[300] = "libcuda";
    Dl_info info;
    void *sym = NULL;
    memcpy(&sym, &api.init, sizeof sym);
    if (sym && dladdr(sym, &info) && info.dli_fname)
        snprintf(where, sizeof where, "%s", info.dli_fname);
    char ver[48] = "";
    int v = 0;
    if (api.driver_get_version && api.driver_get_version(&v) == CU_SUCCESS && v > 0)
        snprintf(ver, sizeof ver, ", CUDA %d.%d", v / 1000, v % 1000 / 10);
    api.status = KF_ERR_UNSUPPORTED;
    switch (rc) {
    case CU_E_STUB_LIBRARY:
        snprintf(api.why, sizeof api.why,
                 "the libcuda loaded (%s) is the CUDA toolkit's stub libcuda: no NVIDIA driver is "
                 "installed (cuInit: CUDA_ERROR_STUB_LIBRARY)", where);
        break;
    case CU_E_NO_DEVICE: {
        const char *vis = getenv("CUDA_VISIBLE_DEVICES");
        char visbuf[96] = "";
        if (vis)
            snprintf(visbuf, sizeof visbuf, "; CUDA_VISIBLE_DEVICES is '%.40s'", vis);
        snprintf(api.why, sizeof api.why,
                 "the NVIDIA driver sees no CUDA device (cuInit: %s: %s)%s", name, text, visbuf);
        break;
    }
    case CU_E_INSUFFICIENT_DRIVER:
    case CU_E_DRIVER_MISMATCH:
    case CU_E_COMPAT_UNSUPPORTED:
        snprintf(api.why, sizeof api.why,
                 "the NVIDIA driver is too old or does not match its libcuda (%s%s; cuInit: %s: %s)",
                 where, ver, name, text);
        break;
    default:
        api.status = KF_ERR_DEVICE;
        snprintf(api.why, sizeof api.why, "the CUDA driver failed to initialize (%s; cuInit: %s: %s)",
                 where, name, text);
    }
}

static void api_load(void)
{
    api.status = KF_ERR_UNSUPPORTED;
    /* libcuda.so.1 is what the driver installs; plain libcuda.so is usually a
     * development link, possibly to the toolkit's stub (reported as such). */
    void *lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        char err[200];
        const char *e = dlerror();
        snprintf(err, sizeof err, "%s", e ? e : "not found");
        if (!(lib = dlopen("libcuda.so", RTLD_NOW | RTLD_LOCAL))) {
            snprintf(api.why, sizeof api.why,
                     "the NVIDIA driver's libcuda.so.1 cannot be loaded (%s): no NVIDIA driver is "
                     "installed, or its library is not on the loader's path", err);
            return;
        }
    }
    /* The _v2 names are the 64-bit versions cuda.h maps to. */
    const kfr_dl_sym syms[] = {
        {"cuInit", &api.init, sizeof api.init},
        {"cuDriverGetVersion", &api.driver_get_version, sizeof api.driver_get_version},
        {"cuGetErrorName", &api.get_error_name, sizeof api.get_error_name},
        {"cuGetErrorString", &api.get_error_string, sizeof api.get_error_string},
        {"cuDeviceGetCount", &api.device_get_count, sizeof api.device_get_count},
        {"cuDeviceGet", &api.device_get, sizeof api.device_get},
        {"cuDeviceGetName", &api.device_get_name, sizeof api.device_get_name},
        {"cuDeviceTotalMem_v2", &api.device_total_mem, sizeof api.device_total_mem},
        {"cuDeviceGetAttribute", &api.device_get_attribute, sizeof api.device_get_attribute},
        {"cuDevicePrimaryCtxRetain", &api.primary_ctx_retain, sizeof api.primary_ctx_retain},
        {"cuCtxSetCurrent", &api.ctx_set_current, sizeof api.ctx_set_current},
        {"cuMemGetInfo_v2", &api.mem_get_info, sizeof api.mem_get_info},
        {"cuModuleLoadDataEx", &api.module_load_data_ex, sizeof api.module_load_data_ex},
        {"cuModuleUnload", &api.module_unload, sizeof api.module_unload},
        {"cuModuleGetFunction", &api.module_get_function, sizeof api.module_get_function},
        {"cuModuleGetGlobal_v2", &api.module_get_global, sizeof api.module_get_global},
        {"cuFuncGetAttribute", &api.func_get_attribute, sizeof api.func_get_attribute},
        {"cuFuncSetAttribute", &api.func_set_attribute, sizeof api.func_set_attribute},
        {"cuMemAlloc_v2", &api.mem_alloc, sizeof api.mem_alloc},
        {"cuMemFree_v2", &api.mem_free, sizeof api.mem_free},
        {"cuMemcpyHtoD_v2", &api.memcpy_htod, sizeof api.memcpy_htod},
        {"cuMemcpyDtoH_v2", &api.memcpy_dtoh, sizeof api.memcpy_dtoh},
        {"cuMemcpyHtoDAsync_v2", &api.memcpy_htod_async, sizeof api.memcpy_htod_async},
        {"cuMemcpyDtoHAsync_v2", &api.memcpy_dtoh_async, sizeof api.memcpy_dtoh_async},
        {"cuMemsetD8_v2", &api.memset_d8, sizeof api.memset_d8},
        {"cuMemsetD8Async", &api.memset_d8_async, sizeof api.memset_d8_async},
        {"cuStreamCreate", &api.stream_create, sizeof api.stream_create},
        {"cuStreamSynchronize", &api.stream_synchronize, sizeof api.stream_synchronize},
        {"cuStreamDestroy_v2", &api.stream_destroy, sizeof api.stream_destroy},
        {"cuLaunchKernel", &api.launch_kernel, sizeof api.launch_kernel},
    };
    const char *missing = kfr_dl_bind(lib, syms, sizeof syms / sizeof syms[0]);
    if (missing) {
        snprintf(api.why, sizeof api.why, "the NVIDIA driver is too old: its libcuda lacks %s", missing);
        memset(&api, 0, offsetof(cu_api, status)); /* no half-loaded table */
        dlclose(lib);
        return;
    }
    api.lib = lib;
    cu_result rc = api.init(0);
    if (rc != CU_SUCCESS) {
        init_failed(rc);
        return;
    }
    if (api.driver_get_version(&api.driver) != CU_SUCCESS)
        api.driver = 0;
    int n = 0;
    if ((rc = api.device_get_count(&n)) != CU_SUCCESS) {
        char name[64];
        const char *text;
        cu_text(rc, name, sizeof name, &text);
        api.status = KF_ERR_DEVICE;
        snprintf(api.why, sizeof api.why, "counting CUDA devices: %s: %s", name, text);
        return;
    }
    if (n <= 0) {
        snprintf(api.why, sizeof api.why, "the NVIDIA driver sees no CUDA device");
        return;
    }
    n = n > MAX_DEVICES ? MAX_DEVICES : n; /* kforge uses the first 64 */
    for (int dev = 0; dev < n; dev++) {
        if ((rc = api.device_get(&api.handle[dev], dev)) != CU_SUCCESS) {
            char name[64];
            const char *text;
            cu_text(rc, name, sizeof name, &text);
            api.status = KF_ERR_DEVICE;
            snprintf(api.why, sizeof api.why, "getting CUDA device %d: %s: %s", dev, name, text);
            return;
        }
        if (api.device_get_name(api.name[dev], (int)sizeof api.name[dev], api.handle[dev]) != CU_SUCCESS)
            snprintf(api.name[dev], sizeof api.name[dev], "unnamed");
        api.name[dev][sizeof api.name[dev] - 1] = 0;
    }
    api.count = n;
    api.status = KF_OK;
}

static const cu_api *api_get(void)
{
    pthread_once(&api_once, api_load);
    return &api;
}

/* Checks dev, retains its primary context at first use and makes it current
 * on the calling thread. */
static int use_device(int dev, kfc_diag *d)
{
    const cu_api *a = api_get();
    if (a->status != KF_OK)
        return kfc_diag_set(d, a->status, -1, -1, "%s", a->why);
    if (dev < 0 || dev >= a->count)
        return kfc_diag_set(d, KF_ERR_ARG, -1, -1, "no CUDA device %d: the devices are 0 to %d", dev,
                            a->count - 1);
    char lb[300];
    pthread_mutex_lock(&ctx_lock);
    cu_ctx c = ctxs[dev];
    cu_result rc = CU_SUCCESS;
    if (!c && (rc = a->primary_ctx_retain(&c, a->handle[dev])) == CU_SUCCESS)
        ctxs[dev] = c;
    pthread_mutex_unlock(&ctx_lock);
    if (rc != CU_SUCCESS)
        return cu_fail(d, KF_ERR_DEVICE, rc, "retaining the primary context of %s",
                       label(dev, lb, sizeof lb));
    if ((rc = a->ctx_set_current(c)) != CU_SUCCESS)
        return cu_fail(d, KF_ERR_DEVICE, rc, "making the context of %s current",
                       label(dev, lb, sizeof lb));
    return KF_OK;
}

/* ---- devices ---- */

int kfr_cu_device_count(int *n, kfc_diag *d)
{
    const cu_api *a = api_get();
    *n = a->status == KF_OK ? a->count : 0;
    if (a->status != KF_OK)
        return kfc_diag_set(d, a->status, -1, -1, "%s", a->why);
    return KF_OK;
}

/* Fills info; on failure leaves it zeroed. */
static int device_get(int dev, kfr_cu_device *info, kfc_diag *d)
{
    int st = use_device(dev, d);
    if (st != KF_OK)
        return st;
    const cu_api *a = &api;
    char lb[300];
    cu_device h = a->handle[dev];
    snprintf(info->name, sizeof info->name, "%s", a->name[dev]);
    struct { int attr; int *dst; const char *what; } attrs[] = {
        {CU_DA_CC_MAJOR, &info->major, "compute capability"},
        {CU_DA_CC_MINOR, &info->minor, "compute capability"},
        {CU_DA_SM_COUNT, &info->sms, "multiprocessor count"},
        {CU_DA_MAX_THREADS_PER_BLOCK, &info->max_threads_per_block, "threads per block"},
        {CU_DA_SMEM_PER_BLOCK_OPTIN, &info->max_smem_per_block, "opt-in shared memory per block"},
        {CU_DA_SMEM_PER_BLOCK, &info->smem_per_block, "shared memory per block"},
        {CU_DA_REGS_PER_BLOCK, &info->regs_per_block, "registers per block"},
        {CU_DA_WARP_SIZE, &info->warp_size, "warp size"},
    };
    for (size_t k = 0; k < sizeof attrs / sizeof attrs[0]; k++) {
        cu_result rc = a->device_get_attribute(attrs[k].dst, attrs[k].attr, h);
        if (rc != CU_SUCCESS)
            return cu_fail(d, KF_ERR_DEVICE, rc, "reading the %s (attribute %d) of %s", attrs[k].what,
                           attrs[k].attr, label(dev, lb, sizeof lb));
    }
    size_t total = 0, free_b = 0, total2 = 0;
    cu_result rc = a->device_total_mem(&total, h);
    if (rc != CU_SUCCESS)
        return cu_fail(d, KF_ERR_DEVICE, rc, "reading the memory size of %s", label(dev, lb, sizeof lb));
    if ((rc = a->mem_get_info(&free_b, &total2)) != CU_SUCCESS)
        return cu_fail(d, KF_ERR_DEVICE, rc, "reading the free memory of %s", label(dev, lb, sizeof lb));
    info->total_mem = (int64_t)total;
    info->free_mem = (int64_t)free_b;
    info->driver_version = a->driver;
    return KF_OK;
}

int kfr_cu_device_get(int dev, kfr_cu_device *info, kfc_diag *d)
{
    memset(info, 0, sizeof *info);
    int st = device_get(dev, info, d);
    if (st != KF_OK)
        memset(info, 0, sizeof *info);
    return st;
}

/* ---- modules and functions ---- */

/* A failed load is the JIT's fault (KF_ERR_JIT) when the driver says the
 * image or its PTX is bad, or wrote to the error log. */
static int jit_error(cu_result rc, const char *log)
{
    return rc == CU_E_INVALID_PTX || rc == CU_E_PTX_VERSION || rc == CU_E_NO_BINARY_FOR_GPU ||
           rc == CU_E_INVALID_IMAGE || rc == CU_E_JIT_NOT_FOUND || rc == CU_E_JIT_DISABLED || log[0];
}

int kfr_cu_module_load(int dev, const void *image, kfr_cu_module *mod, kfc_diag *d)
{
    *mod = NULL;
    int st = use_device(dev, d);
    if (st != KF_OK)
        return st;
    if (!image)
        return kfc_diag_set(d, KF_ERR_ARG, -1, -1, "loading a CUDA module: no image");
    struct kfr_cu_module_s *m = malloc(sizeof *m);
    if (!m)
        return kfc_diag_set(d, KF_ERR_NOMEM, -1, -1, "out of memory loading a CUDA module");
    /* For messages: an ELF image is a CUBIN, one with the fatbinary magic
     * (0xba55ed50, little-endian) a fatbin, anything else PTX text. The
     * tests stop at the first mismatch, so a short PTX string is not overread. */
    const unsigned char *b = image;
    const char *kind = b[0] == 0x7f && b[1] == 'E' && b[2] == 'L' && b[3] == 'F'    ? "CUBIN"
                       : b[0] == 0x50 && b[1] == 0xed && b[2] == 0x55 && b[3] == 0xba ? "fatbin"
                                                                                        : "PTX";
    char log[JIT_LOG_BYTES];
    log[0] = 0;
    int opts[] = {CU_JIT_ERROR_LOG, CU_JIT_ERROR_LOG_SIZE};
    void *vals[] = {log, (void *)(uintptr_t)sizeof log};
    cu_result rc = api.module_load_data_ex(&m->mod, image, 2, opts, vals);
    if (rc != CU_SUCCESS) {
        free(m);
        log[sizeof log - 1] = 0;
        char lb[300], what[400];
        label(dev, lb, sizeof lb);
        snprintf(what, sizeof what, "loading a %s module on %s", kind, lb);
        if (!jit_error(rc, log))
            return cu_fail(d, KF_ERR_DEVICE, rc, "%s", what);
        /* The diag keeps the head of the log, which names the first error. */
        char name[64];
        const char *text;
        cu_text(rc, name, sizeof name, &text);
        return kfc_diag_set(d, KF_ERR_JIT, -1, -1, "%s: %s: %s%s%s", what, name, text,
                            log[0] ? "\n" : "", log);
    }
    m->dev = dev;
    m->funcs = NULL;
    *mod = m;
    return KF_OK;
}

void kfr_cu_module_unload(int dev, kfr_cu_module mod)
{
    if (!mod)
        return;
    kfc_diag d;
    kfc_diag_clear(&d);
    if (use_device(mod->dev, &d) == KF_OK)
        api.module_unload(mod->mod);
    for (struct kfr_cu_func_s *f = mod->funcs, *next; f; f = next) {
        next = f->next;
        free(f);
    }
    free(mod);
}

int kfr_cu_function(kfr_cu_module mod, const char *name, kfr_cu_func *f, kfc_diag *d)
{
    *f = NULL;
    if (!mod || !name)
        return kfc_diag_set(d, KF_ERR_ARG, -1, -1, "looking up a CUDA function: %s",
                            !mod ? "no module" : "no name");
    /* The same name gives the same handle: a module keeps one per name. */
    pthread_mutex_lock(&func_lock);
    for (struct kfr_cu_func_s *g = mod->funcs; g; g = g->next)
        if (!strcmp(g->name, name))
            *f = g;
    pthread_mutex_unlock(&func_lock);
    if (*f)
        return KF_OK;
    int st = use_device(mod->dev, d);
    if (st != KF_OK)
        return st;
    size_t len = strlen(name);
    struct kfr_cu_func_s *g = malloc(sizeof *g + len + 1);
    if (!g)
        return kfc_diag_set(d, KF_ERR_NOMEM, -1, -1, "out of memory looking up CUDA function %.64s", name);
    cu_result rc = api.module_get_function(&g->fn, mod->mod, name);
    if (rc != CU_SUCCESS) {
        free(g);
        char lb[300];
        return cu_fail(d, rc == CU_E_NOT_FOUND ? KF_ERR_ARG : KF_ERR_DEVICE, rc,
                       "looking up function '%.64s' in a module on %s", name,
                       label(mod->dev, lb, sizeof lb));
    }
    g->dev = mod->dev;
    memcpy(g->name, name, len + 1);
    /* Another thread may have looked the name up meanwhile: keep its handle. */
    pthread_mutex_lock(&func_lock);
    for (struct kfr_cu_func_s *h = mod->funcs; h; h = h->next)
        if (!strcmp(h->name, name))
            *f = h;
    if (!*f) {
        g->next = mod->funcs;
        mod->funcs = g;
        *f = g;
        g = NULL;
    }
    pthread_mutex_unlock(&func_lock);
    free(g);
    return KF_OK;
}

int kfr_cu_global_read(int dev, kfr_cu_module mod, const char *name, void *dst, size_t size, kfc_diag *d)
{
    if (!mod || !name || !dst || size == 0 || size > 64)
        return kfc_diag_set(d, KF_ERR_ARG, -1, -1,
                            "reading a CUDA global: bad argument (module, name and destination are "
                            "needed, size 1 to 64 bytes, not %zu)", size);
    if (mod->dev != dev)
        return kfc_diag_set(d, KF_ERR_ARG, -1, -1,
                            "reading global '%.64s': the module was loaded on device %d, not %d", name,
                            mod->dev, dev);
    int st = use_device(dev, d);
    if (st != KF_OK)
        return st;
    char lb[300];
    kfr_cu_ptr p = 0;
    size_t bytes = 0;
    cu_result rc = api.module_get_global(&p, &bytes, mod->mod, name);
    if (rc != CU_SUCCESS)
        return cu_fail(d, rc == CU_E_NOT_FOUND ? KF_ERR_ARG : KF_ERR_DEVICE, rc,
                       "looking up global '%.64s' in a module on %s", name, label(dev, lb, sizeof lb));
    if (bytes != size)
        return kfc_diag_set(d, KF_ERR_ARG, -1, -1, "global '%.64s' on %s is %zu bytes, not %zu", name,
                            label(dev, lb, sizeof lb), bytes, size);
    if ((rc = api.memcpy_dtoh(dst, p, size)) != CU_SUCCESS)
        return cu_fail(d, KF_ERR_DEVICE, rc, "reading global '%.64s' (%zu bytes) from %s", name, size,
                       label(dev, lb, sizeof lb));
    return KF_OK;
}

int kfr_cu_func_limits(kfr_cu_func f, int *regs, int *max_threads, kfc_diag *d)
{
    if (!f)
        return kfc_diag_set(d, KF_ERR_ARG, -1, -1, "reading a CUDA function's limits: no function");
    int st = use_device(f->dev, d);
    if (st != KF_OK)
        return st;
    char lb[300];
    cu_result rc = api.func_get_attribute(regs, CU_FA_NUM_REGS, f->fn);
    if (rc == CU_SUCCESS)
        rc = api.func_get_attribute(max_threads, CU_FA_MAX_THREADS_PER_BLOCK, f->fn);
    if (rc != CU_SUCCESS)
        return cu_fail(d, KF_ERR_DEVICE, rc, "reading the register count and block limit of %.64s on %s",
                       f->name, label(f->dev, lb, sizeof lb));
    return KF_OK;
}

int kfr_cu_func_set_smem(kfr_cu_func f, int bytes, kfc_diag *d)
{
    if (!f || bytes < 0)
        return kfc_diag_set(d, KF_ERR_ARG, -1, -1, "setting a CUDA function's shared memory: %s",
                            !f ? "no function" : "negative size");
    int st = use_device(f->dev, d);
    if (st != KF_OK)
        return st;
    cu_result rc = api.func_set_attribute(f->fn, CU_FA_MAX_DYNAMIC_SMEM, bytes);
    if (rc != CU_SUCCESS) {
        char lb[300], sz[32], mx[64] = "";
        int optin = 0;
        if (api.device_get_attribute(&optin, CU_DA_SMEM_PER_BLOCK_OPTIN, api.handle[f->dev]) == CU_SUCCESS) {
            char m[32];
            snprintf(mx, sizeof mx, ", where the device allows %s", human(optin, m, sizeof m));
        }
        return cu_fail(d, KF_ERR_DEVICE, rc, "allowing %.64s %s of dynamic shared memory on %s%s", f->name,
                       human(bytes, sz, sizeof sz), label(f->dev, lb, sizeof lb), mx);
    }
    return KF_OK;
}

/* ---- memory ---- */

int kfr_cu_alloc(int dev, size_t bytes, kfr_cu_ptr *p, kfc_diag *d)
{
    *p = 0;
    int st = use_device(dev, d);
    if (st != KF_OK)
        return st;
    if (bytes == 0) /* the driver rejects 0 bytes; 0 is the "nothing" that kfr_cu_free accepts */
        return KF_OK;
    cu_result rc = api.mem_alloc(p, bytes);
    if (rc != CU_SUCCESS) {
        *p = 0;
        char lb[300], sz[32], fr[32], tot[32], mem[96] = "";
        size_t free_b = 0, total = 0;
        if (api.mem_get_info(&free_b, &total) == CU_SUCCESS)
            snprintf(mem, sizeof mem, ", with %s free of %s", human((double)free_b, fr, sizeof fr),
                     human((double)total, tot, sizeof tot));
        return cu_fail(d, KF_ERR_DEVICE, rc, "allocating %s on %s%s", human((double)bytes, sz, sizeof sz),
                       label(dev, lb, sizeof lb), mem);
    }
    return KF_OK;
}

void kfr_cu_free(int dev, kfr_cu_ptr p)
{
    if (!p)
        return;
    kfc_diag d;
    kfc_diag_clear(&d);
    if (use_device(dev, &d) == KF_OK)
        api.mem_free(p);
}

int kfr_cu_htod(int dev, kfr_cu_ptr dst, const void *src, size_t bytes, kfr_cu_stream s, kfc_diag *d)
{
    int st = use_device(dev, d);
    if (st != KF_OK || bytes == 0)
        return st;
    cu_result rc = s ? api.memcpy_htod_async(dst, src, bytes, s) : api.memcpy_htod(dst, src, bytes);
    if (rc != CU_SUCCESS) {
        char lb[300], sz[32];
        return cu_fail(d, KF_ERR_DEVICE, rc, "copying %s from the host to %s%s",
                       human((double)bytes, sz, sizeof sz), label(dev, lb, sizeof lb),
                       s ? " (asynchronously)" : "");
    }
    return KF_OK;
}

int kfr_cu_dtoh(int dev, void *dst, kfr_cu_ptr src, size_t bytes, kfr_cu_stream s, kfc_diag *d)
{
    int st = use_device(dev, d);
    if (st != KF_OK || bytes == 0)
        return st;
    cu_result rc = s ? api.memcpy_dtoh_async(dst, src, bytes, s) : api.memcpy_dtoh(dst, src, bytes);
    if (rc != CU_SUCCESS) {
        char lb[300], sz[32];
        return cu_fail(d, KF_ERR_DEVICE, rc, "copying %s from %s to the host%s",
                       human((double)bytes, sz, sizeof sz), label(dev, lb, sizeof lb),
                       s ? " (asynchronously)" : "");
    }
    return KF_OK;
}

int kfr_cu_memset8(int dev, kfr_cu_ptr dst, unsigned char v, size_t bytes, kfr_cu_stream s, kfc_diag *d)
{
    int st = use_device(dev, d);
    if (st != KF_OK || bytes == 0)
        return st;
    cu_result rc = s ? api.memset_d8_async(dst, v, bytes, s) : api.memset_d8(dst, v, bytes);
    if (rc != CU_SUCCESS) {
        char lb[300], sz[32];
        return cu_fail(d, KF_ERR_DEVICE, rc, "setting %s to %u on %s%s", human((double)bytes, sz, sizeof sz),
                       v, label(dev, lb, sizeof lb), s ? " (asynchronously)" : "");
    }
    return KF_OK;
}

/* ---- streams and launches ---- */

int kfr_cu_stream_create(int dev, kfr_cu_stream *s, kfc_diag *d)
{
    *s = NULL;
    int st = use_device(dev, d);
    if (st != KF_OK)
        return st;
    cu_result rc = api.stream_create(s, CU_STREAM_FLAGS);
    if (rc != CU_SUCCESS) {
        *s = NULL;
        char lb[300];
        return cu_fail(d, KF_ERR_DEVICE, rc, "creating a stream on %s", label(dev, lb, sizeof lb));
    }
    return KF_OK;
}

void kfr_cu_stream_destroy(int dev, kfr_cu_stream s)
{
    if (!s)
        return;
    kfc_diag d;
    kfc_diag_clear(&d);
    if (use_device(dev, &d) == KF_OK)
        api.stream_destroy(s);
}

int kfr_cu_stream_sync(int dev, kfr_cu_stream s, kfc_diag *d)
{
    int st = use_device(dev, d);
    if (st != KF_OK)
        return st;
    cu_result rc = api.stream_synchronize(s);
    if (rc != CU_SUCCESS) {
        char lb[300];
        return cu_fail(d, KF_ERR_DEVICE, rc,
                       "waiting for the %s stream on %s (the failure may come from any kernel or copy "
                       "queued on it)", s ? "kforge" : "default", label(dev, lb, sizeof lb));
    }
    return KF_OK;
}

int kfr_cu_launch(int dev, kfr_cu_func f, unsigned gx, unsigned bx, unsigned smem, kfr_cu_stream s,
                  void **params, kfc_diag *d)
{
    if (!f)
        return kfc_diag_set(d, KF_ERR_ARG, -1, -1, "launching a CUDA kernel: no function");
    if (f->dev != dev)
        return kfc_diag_set(d, KF_ERR_ARG, -1, -1,
                            "launching %.64s on device %d: its module was loaded on device %d", f->name,
                            dev, f->dev);
    int st = use_device(dev, d);
    if (st != KF_OK)
        return st;
    cu_result rc = api.launch_kernel(f->fn, gx, 1, 1, bx, 1, 1, smem, s, params, NULL);
    if (rc != CU_SUCCESS) {
        char lb[300], sz[32];
        return cu_fail(d, KF_ERR_DEVICE, rc,
                       "launching %.64s on %s: %u block%s of %u threads, %s of dynamic shared memory",
                       f->name, label(dev, lb, sizeof lb), gx, gx == 1 ? "" : "s", bx,
                       human(smem, sz, sizeof sz));
    }
    return KF_OK;
}
