/* cuda_run.h -- a kernel's CUDA backend (runtime/cuda/cuda_run.c, docs/cuda.md). */
#ifndef KF_RUNTIME_CUDA_RUN_H
#define KF_RUNTIME_CUDA_RUN_H

#include "runtime/rt.h"

/* Readies k for the GPU k->device: the device, its module (in-process
 * table, disk cache or NVRTC), the launch configuration. KF_OK at once when
 * already done. KF_ERR_UNSUPPORTED (no driver, device or NVRTC: d says
 * which), KF_ERR_ARG (bad ordinal), KF_ERR_DEVICE, KF_ERR_JIT, KF_ERR_LIMIT
 * (inner variables too big for shared memory), KF_ERR_NOMEM. */
int kfr_cuda_prepare(kf_kernel *k, kfc_diag *d);
/* One run of a prepared kernel on VALIDATED arguments (run.c checks them),
 * rows > 0: host arrays (device_ptrs == 0: copied in and out, waits) or
 * device pointers (no copies; stream NULL waits, else queued on it). rg:
 * a validated block-sparsity pattern or NULL (dense). */
int kfr_cuda_run(kf_kernel *k, int64_t M, int64_t N, const void *const *args, void *out,
                 int64_t *idx, const kf_ranges *rg, int device_ptrs, void *stream, kfc_diag *d);
/* Frees k's device buffer and stream (the module stays loaded for the process). */
void kfr_cuda_free(kf_kernel *k);

#endif
