/* cuda_api.c -- a compiled kernel's reduction as CUDA source or PTX, for
 * `kforge check --emit cuda|ptx` (compiler/emit/emit_cuda.c + runtime/cuda/nvrtc.c). */
#include <stdio.h>
#include <stdlib.h>

#include "runtime/cuda/cuda_api.h"
#include "runtime/rt.h"

int kfr_cuda_text(kf_kernel *k, int ptx, const char *arch, char **text, char *msg, size_t cap)
{
    *text = NULL;
    kfc_diag d;
    kfc_diag_clear(&d);
    if (!k || !k->has_red) {
        snprintf(msg, cap, "CUDA code needs a reduction (--reduction)");
        return KF_ERR_ARG;
    }
    char *src = kfc_emit_cuda(&k->prog, &k->red, &d);
    if (src && ptx) {
        kfr_nvrtc_ptx(src, arch, text, &d);
        free(src);
    } else {
        *text = src;
    }
    if (*text)
        return KF_OK;
    snprintf(msg, cap, "%s", d.msg);
    return d.status ? d.status : KF_ERR_INTERNAL;
}
