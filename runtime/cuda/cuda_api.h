/* cuda_api.h -- a kernel's CUDA source or PTX with the message in a buffer, for the
 * tests (callers outside the library use kf_kernel_cuda_text of include/kforge.h). */
#ifndef KF_RUNTIME_CUDA_API_H
#define KF_RUNTIME_CUDA_API_H

#include <stddef.h>

#include "kforge.h"

/* The CUDA source of kernel k's reduction (ptx == 0) or its PTX for arch
 * (ptx != 0), malloc'd into *text. On failure returns the kf_status and
 * writes a message into msg: KF_ERR_ARG when k has no reduction,
 * KF_ERR_UNSUPPORTED when NVRTC cannot be loaded, KF_ERR_JIT with NVRTC's
 * log when it rejects the source. */
int kfr_cuda_text(kf_kernel *k, int ptx, const char *arch, char **text, char *msg, size_t cap);

#endif
