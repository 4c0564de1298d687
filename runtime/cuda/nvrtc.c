/* nvrtc.c -- CUDA source to PTX or CUBIN with NVRTC, loaded with dlopen at
 * first use (kforge builds and runs without CUDA; no CUDA header is needed).
 * The CUBIN calls (CUDA 11.1 and later) are optional: without them the
 * library still compiles PTX, and a CUBIN request says KF_ERR_UNSUPPORTED. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/rt.h"

/* The few NVRTC declarations used (nvrtc.h, stable since CUDA 7). */
typedef int nvrtc_result; /* NVRTC_SUCCESS = 0 */
typedef struct nvrtc_prog_s *nvrtc_prog;

typedef struct nvrtc_api {
    void *lib;
    nvrtc_result (*create)(nvrtc_prog *, const char *, const char *, int, const char *const *,
                           const char *const *);
    nvrtc_result (*compile)(nvrtc_prog, int, const char *const *);
    nvrtc_result (*ptx_size)(nvrtc_prog, size_t *);
    nvrtc_result (*ptx)(nvrtc_prog, char *);
    nvrtc_result (*log_size)(nvrtc_prog, size_t *);
    nvrtc_result (*log)(nvrtc_prog, char *);
    nvrtc_result (*destroy)(nvrtc_prog *);
    nvrtc_result (*version)(int *, int *);
    nvrtc_result (*cubin_size)(nvrtc_prog, size_t *); /* NULL before CUDA 11.1 */
    nvrtc_result (*cubin)(nvrtc_prog, char *);        /* NULL before CUDA 11.1 */
    char why[256]; /* why loading failed, when lib is NULL */
} nvrtc_api;

/* Written once under pthread_once, read-only afterwards. */
static nvrtc_api api;
static pthread_once_t api_once = PTHREAD_ONCE_INIT;

static void api_load(void)
{
    static const char *const names[] = {
        "libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12", "/usr/local/cuda/lib64/libnvrtc.so",
        "/usr/local/cuda/lib64/libnvrtc.so.13", "/usr/local/cuda/lib64/libnvrtc.so.12",
    };
    void *lib = NULL;
    for (size_t k = 0; k < sizeof names / sizeof names[0] && !lib; k++)
        lib = dlopen(names[k], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(api.why, sizeof api.why,
                 "NVRTC not found (tried libnvrtc.so, .so.13, .so.12 on the library path and in "
                 "/usr/local/cuda/lib64): install the CUDA toolkit's NVRTC to compile CUDA kernels");
        return;
    }
    const kfr_dl_sym syms[] = {
        {"nvrtcCreateProgram", &api.create, sizeof api.create},
        {"nvrtcCompileProgram", &api.compile, sizeof api.compile},
        {"nvrtcGetPTXSize", &api.ptx_size, sizeof api.ptx_size},
        {"nvrtcGetPTX", &api.ptx, sizeof api.ptx},
        {"nvrtcGetProgramLogSize", &api.log_size, sizeof api.log_size},
        {"nvrtcGetProgramLog", &api.log, sizeof api.log},
        {"nvrtcDestroyProgram", &api.destroy, sizeof api.destroy},
        {"nvrtcVersion", &api.version, sizeof api.version},
    };
    const char *missing = kfr_dl_bind(lib, syms, sizeof syms / sizeof syms[0]);
    if (missing) {
        snprintf(api.why, sizeof api.why, "NVRTC library lacks %s", missing);
        dlclose(lib);
        return;
    }
    void *cs = dlsym(lib, "nvrtcGetCUBINSize"), *cb = dlsym(lib, "nvrtcGetCUBIN");
    if (cs && cb) {
        memcpy(&api.cubin_size, &cs, sizeof api.cubin_size);
        memcpy(&api.cubin, &cb, sizeof api.cubin);
    }
    api.lib = lib;
}

static const nvrtc_api *api_get(void)
{
    pthread_once(&api_once, api_load);
    return api.lib ? &api : NULL;
}

int kfr_nvrtc_version(int *major, int *minor)
{
    const nvrtc_api *a = api_get();
    if (!a || a->version(major, minor) != 0)
        return KF_ERR_UNSUPPORTED;
    return KF_OK;
}

int kfr_nvrtc_version_string(char *buf, size_t cap)
{
    int major = 0, minor = 0;
    if (cap)
        buf[0] = 0;
    if (kfr_nvrtc_version(&major, &minor) != KF_OK)
        return KF_ERR_UNSUPPORTED;
    int n = snprintf(buf, cap, "%d.%d", major, minor);
    return n < 0 || (size_t)n >= cap ? KF_ERR_ARG : KF_OK;
}

/* The options after --gpu-architecture, one macro each so that the list
 * passed to NVRTC and the string in the cache key cannot drift apart. */
#define NVRTC_OPT_STD "--std=c++17"
#define NVRTC_OPT_FMAD "--fmad=false" /* no FMA contraction, like the C tiers */

const char *kfr_nvrtc_flags(void)
{
    return NVRTC_OPT_STD " " NVRTC_OPT_FMAD;
}

/* The arch must look like compute_NN or sm_NN (it becomes an option string). */
static int arch_ok(const char *arch)
{
    const char *p = !strncmp(arch, "compute_", 8) ? arch + 8 : !strncmp(arch, "sm_", 3) ? arch + 3 : NULL;
    if (!p || !*p || strlen(p) > 4)
        return 0;
    for (; *p; p++)
        if (!((*p >= '0' && *p <= '9') || *p == 'a' || *p == 'f'))
            return 0;
    return 1;
}

/* The program's log, malloc'd ("" if it cannot be read; NULL on OOM). */
static char *prog_log(const nvrtc_api *a, nvrtc_prog prog)
{
    size_t n = 0;
    char *log = NULL;
    if (a->log_size(prog, &n) == 0 && n > 0 && (log = malloc(n + 1)) && a->log(prog, log) == 0)
        log[n] = 0;
    else if (log)
        log[0] = 0;
    return log;
}

int kfr_nvrtc_compile(const char *src, const char *arch, int cubin, char **img, size_t *len,
                      kfc_diag *d)
{
    *img = NULL;
    *len = 0;
    const nvrtc_api *a = api_get();
    if (!a)
        return kfc_diag_set(d, KF_ERR_UNSUPPORTED, -1, -1, "%s", api.why);
    if (!arch || !arch_ok(arch))
        return kfc_diag_set(d, KF_ERR_ARG, -1, -1,
                            "bad CUDA architecture '%.32s' (e.g. sm_90 or compute_90)",
                            arch ? arch : "(null)");
    int real = arch[0] == 's'; /* sm_NN */
    if (cubin && !real)
        return kfc_diag_set(d, KF_ERR_ARG, -1, -1,
                            "a CUBIN is for a real architecture (sm_%s), not %s", arch + 8, arch);
    if (cubin && !a->cubin) {
        int major = 0, minor = 0;
        a->version(&major, &minor);
        return kfc_diag_set(d, KF_ERR_UNSUPPORTED, -1, -1,
                            "NVRTC %d.%d cannot produce a CUBIN (no nvrtcGetCUBIN, added in CUDA "
                            "11.1): use PTX",
                            major, minor);
    }
    /* PTX is always for a virtual architecture: the driver JIT-compiles it
     * for the device, this one or any later. */
    char opt_arch[48];
    snprintf(opt_arch, sizeof opt_arch, "--gpu-architecture=%s%s", !cubin && real ? "compute_" : "",
             !cubin && real ? arch + 3 : arch);
    const char *opts[] = {opt_arch, NVRTC_OPT_STD, NVRTC_OPT_FMAD};
    nvrtc_prog prog = NULL;
    if (a->create(&prog, src, "kforge.cu", 0, NULL, NULL) != 0)
        return kfc_diag_set(d, KF_ERR_NOMEM, -1, -1, "NVRTC could not create a program");
    int st = KF_OK;
    int rc = a->compile(prog, (int)(sizeof opts / sizeof opts[0]), opts);
    if (rc != 0) {
        char *log = prog_log(a, prog);
        /* The diag holds the head of the log; the whole log is long for big kernels. */
        st = kfc_diag_set(d, KF_ERR_JIT, -1, -1, "NVRTC failed (error %d):\n%s", rc, log ? log : "");
        free(log);
    } else {
        size_t n = 0;
        char *out = NULL;
        int bad = cubin ? a->cubin_size(prog, &n) != 0 || n == 0 || !(out = malloc(n + 1)) ||
                              a->cubin(prog, out) != 0
                        : a->ptx_size(prog, &n) != 0 || !(out = malloc(n + 1)) ||
                              a->ptx(prog, out) != 0;
        if (bad) {
            free(out);
            st = kfc_diag_set(d, KF_ERR_NOMEM, -1, -1, "NVRTC: cannot read the %s",
                              cubin ? "CUBIN" : "PTX");
        } else {
            /* NUL-terminated either way; PTX's size counts its own NUL. */
            out[n] = 0;
            *img = out;
            *len = cubin ? n : strlen(out);
        }
    }
    a->destroy(&prog);
    return st;
}

int kfr_nvrtc_ptx(const char *src, const char *arch, char **ptx, kfc_diag *d)
{
    size_t len;
    return kfr_nvrtc_compile(src, arch, 0, ptx, &len, d);
}
