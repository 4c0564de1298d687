/*
 * cuda_drv.h -- the CUDA driver API as kforge uses it, loaded with dlopen
 * (libcuda.so.1) at first use: no CUDA header or library is needed to build
 * kforge, and every call works (reporting "no GPU") on machines without one.
 *
 * Every function returns a kf_status; on failure it writes a complete message
 * into d (the driver's error name and string, e.g. "CUDA_ERROR_OUT_OF_MEMORY:
 * out of memory", and what kforge was doing: "allocating 4.0 GiB on device 0
 * (NVIDIA H100 80GB HBM3)"). Statuses: KF_ERR_DEVICE for driver and device
 * failures, KF_ERR_UNSUPPORTED when no usable driver is installed (the
 * message says which: library missing, stub library, driver too old, no
 * device), KF_ERR_ARG for a bad ordinal, a NULL handle, a name the module
 * lacks or a global of another size, KF_ERR_NOMEM for host memory.
 *
 * Device memory handles are CUdeviceptr values (unsigned 64-bit integers)
 * and streams are CUstream values (so a caller's own CUstream can be passed).
 * Modules and functions are kforge's handles around a CUmodule / CUfunction
 * that remember their device. The calls are thread-safe as the driver's are;
 * loading is done once (pthread_once). The primary context of a device is
 * retained at the first use of that device and made current on the calling
 * thread by every function taking a device ordinal, a module or a function,
 * so callers never manage contexts.
 */
#ifndef KF_RUNTIME_CUDA_DRV_H
#define KF_RUNTIME_CUDA_DRV_H

#include <stddef.h>
#include <stdint.h>

#include "compiler/ir.h" /* kfc_diag */
#include "kforge.h"

typedef uint64_t kfr_cu_ptr;                 /* CUdeviceptr */
typedef struct kfr_cu_module_s *kfr_cu_module; /* a CUmodule and its device */
typedef struct kfr_cu_func_s *kfr_cu_func;     /* a CUfunction, its device and name; owned by its module */
typedef struct kfr_cu_stream_s *kfr_cu_stream; /* CUstream; NULL is the legacy default stream */

/* What kforge needs to know of a device. */
typedef struct kfr_cu_device {
    char name[256];
    int major, minor;           /* compute capability */
    int sms;                    /* multiprocessors */
    int max_threads_per_block;
    int max_smem_per_block;     /* bytes, opt-in maximum (cuFuncSetAttribute may raise to it) */
    int smem_per_block;         /* bytes, default limit without opt-in */
    int regs_per_block;
    int warp_size;
    int64_t total_mem;          /* bytes */
    int64_t free_mem;           /* bytes, at the time of the query */
    int driver_version;         /* e.g. 13000 for CUDA 13.0 */
} kfr_cu_device;

/* Number of devices into *n (>= 1 on KF_OK; the first 64 at most). When the
 * driver is missing, is the toolkit's stub, is too old, or sees no device:
 * KF_ERR_UNSUPPORTED with the reason in d and *n = 0, so `kforge devices` can
 * print it; a driver whose cuInit fails otherwise: KF_ERR_DEVICE, *n = 0. */
int kfr_cu_device_count(int *n, kfc_diag *d);
/* Properties of device ordinal dev (0 <= dev < count), free memory included. */
int kfr_cu_device_get(int dev, kfr_cu_device *info, kfc_diag *d);

/* Loads a CUBIN or PTX image (NUL-terminated text for PTX) into device dev's
 * primary context; a PTX the driver's JIT rejects gives KF_ERR_JIT with the
 * JIT's error log. The module stays loaded until kfr_cu_module_unload. */
int kfr_cu_module_load(int dev, const void *image, kfr_cu_module *mod, kfc_diag *d);
/* Unloads mod (NULL: nothing) and frees its function handles. */
void kfr_cu_module_unload(int dev, kfr_cu_module mod);
/* The kernel `name` of mod; the same handle for the same name, valid until
 * the module is unloaded. A name mod lacks is KF_ERR_ARG (CUDA_ERROR_NOT_FOUND). */
int kfr_cu_function(kfr_cu_module mod, const char *name, kfr_cu_func *f, kfc_diag *d);
/* The value of a __device__ global `name` of a module loaded on dev (size
 * bytes, at most 64, and the global's exact size). */
int kfr_cu_global_read(int dev, kfr_cu_module mod, const char *name, void *dst, size_t size, kfc_diag *d);
/* Registers per thread and the largest block the function can be launched with. */
int kfr_cu_func_limits(kfr_cu_func f, int *regs, int *max_threads, kfc_diag *d);
/* Allows f to use up to bytes of dynamic shared memory (needed above 48 KiB). */
int kfr_cu_func_set_smem(kfr_cu_func f, int bytes, kfc_diag *d);

/* Device memory on dev. 0 bytes gives *p = 0, and kfr_cu_free(dev, 0) does nothing. */
int kfr_cu_alloc(int dev, size_t bytes, kfr_cu_ptr *p, kfc_diag *d);
void kfr_cu_free(int dev, kfr_cu_ptr p);
/* Copies; with a non-NULL stream they are asynchronous on it (host memory
 * must then stay valid until the stream is synchronized). 0 bytes does nothing. */
int kfr_cu_htod(int dev, kfr_cu_ptr dst, const void *src, size_t bytes, kfr_cu_stream s, kfc_diag *d);
int kfr_cu_dtoh(int dev, void *dst, kfr_cu_ptr src, size_t bytes, kfr_cu_stream s, kfc_diag *d);
int kfr_cu_memset8(int dev, kfr_cu_ptr dst, unsigned char v, size_t bytes, kfr_cu_stream s, kfc_diag *d);

/* A stream created with CU_STREAM_DEFAULT: ordered with the legacy default
 * stream, so the synchronous calls (s NULL) never race with it. */
int kfr_cu_stream_create(int dev, kfr_cu_stream *s, kfc_diag *d);
void kfr_cu_stream_destroy(int dev, kfr_cu_stream s); /* NULL: nothing */
/* Waits for everything queued on s; reports an earlier asynchronous failure
 * (e.g. CUDA_ERROR_LAUNCH_FAILED) as KF_ERR_DEVICE. */
int kfr_cu_stream_sync(int dev, kfr_cu_stream s, kfc_diag *d);

/* Launches f (from a module loaded on dev) on grid (gx, 1, 1) x block
 * (bx, 1, 1) with smem bytes of dynamic shared memory; params as
 * cuLaunchKernel's kernelParams (an array of pointers to each argument's
 * value). Asynchronous on s. */
int kfr_cu_launch(int dev, kfr_cu_func f, unsigned gx, unsigned bx, unsigned smem, kfr_cu_stream s,
                  void **params, kfc_diag *d);

#endif
