/* cuda_api.c -- a compiled kernel's reduction as CUDA source or PTX: kf_kernel_cuda_text
 * (`kforge check --emit cuda|ptx`) and the context-free kfr_cuda_text the tests call
 * (compiler/emit/emit_cuda.c + runtime/cuda/nvrtc.c). */
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

int kf_kernel_cuda_text(kf_kernel *k, int ptx, const char *arch, char **text)
{
    if (text)
        *text = NULL;
    if (!k)
        return KF_ERR_ARG;
    kfr_clear_error(k->ctx);
    if (!text)
        return kfr_error(k->ctx, KF_ERR_ARG, "kf_kernel_cuda_text: text is NULL");
    char msg[sizeof k->ctx->msg];
    int st = kfr_cuda_text(k, ptx, arch ? arch : KF_CUDA_DEFAULT_ARCH, text, msg, sizeof msg);
    return st == KF_OK ? KF_OK : kfr_error(k->ctx, st, "%s", msg);
}
