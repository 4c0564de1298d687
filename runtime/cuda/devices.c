/* devices.c -- kf_device_count and kf_device_get: the driver layer's answers
 * (runtime/cuda/cuda_drv.c) with their messages moved into the context. */
#include <stdio.h>
#include <string.h>

#include "runtime/cuda/cuda_drv.h"
#include "runtime/rt.h"

int kf_device_count(kf_ctx *ctx, int *n)
{
    if (!ctx)
        return KF_ERR_ARG;
    kfr_clear_error(ctx);
    if (!n)
        return kfr_error(ctx, KF_ERR_ARG, "kf_device_count: n is NULL");
    kfc_diag d;
    kfc_diag_clear(&d);
    return kfr_cu_device_count(n, &d) == KF_OK ? KF_OK : kfr_error_diag(ctx, &d);
}

int kf_device_get(kf_ctx *ctx, int dev, kf_device_info *info)
{
    if (!ctx)
        return KF_ERR_ARG;
    kfr_clear_error(ctx);
    if (!info)
        return kfr_error(ctx, KF_ERR_ARG, "kf_device_get: info is NULL");
    memset(info, 0, sizeof *info);
    kfc_diag d;
    kfc_diag_clear(&d);
    int n = 0;
    if (kfr_cu_device_count(&n, &d) != KF_OK)
        return kfr_error_diag(ctx, &d);
    if (dev < 0 || dev >= n)
        return kfr_error(ctx, KF_ERR_ARG, "kf_device_get: device %d does not exist (%d device%s)", dev,
                         n, n == 1 ? "" : "s");
    kfr_cu_device p;
    if (kfr_cu_device_get(dev, &p, &d) != KF_OK)
        return kfr_error_diag(ctx, &d);
    snprintf(info->name, sizeof info->name, "%s", p.name);
    info->major = p.major, info->minor = p.minor, info->sms = p.sms;
    info->total_mem = p.total_mem, info->free_mem = p.free_mem;
    info->max_smem_per_block = p.max_smem_per_block;
    info->driver_version = p.driver_version;
    info->smem_per_block = p.smem_per_block;
    return KF_OK;
}
