/* cmd_devices.c -- `kforge devices`: the CUDA devices the driver sees, one line each, or why
 * there are none. */
#include <string.h>

#include "cli/cli.h"

void kfcli_help_devices(FILE *f)
{
    fputs("Usage: kforge devices\n"
          "\n"
          "Lists the CUDA devices that the NVIDIA driver (libcuda.so.1, loaded at run time) sees,\n"
          "one line each:\n"
          "\n"
          "  ORDINAL: NAME, cc MAJOR.MINOR, N SMs, TOTAL GiB (FREE GiB free), S KiB smem/block, driver V\n"
          "\n"
          "  ORDINAL      the device number (0, 1, ...), as CUDA_VISIBLE_DEVICES leaves them\n"
          "  cc           the compute capability (9.0 is Hopper, 8.0 Ampere A100)\n"
          "  SMs          the number of multiprocessors\n"
          "  GiB          the device memory, and how much of it is free now\n"
          "  smem/block   the most shared memory one block can use (with the opt-in that\n"
          "               kernels above 48 KiB need)\n"
          "  driver       the CUDA version the driver supports (e.g. 12.4)\n"
          "\n"
          "With no usable driver or no device it prints the reason (no driver installed, the\n"
          "CUDA toolkit's stub libcuda, a driver too old, no device) on stderr and exits 1.\n"
          "\n"
          "Options:\n"
          "  -h, --help           this text\n"
          "\n"
          "Exit status: 0 ok, 1 no usable driver or device (or a device could not be queried), 2 usage.\n"
          "\n"
          "Example:\n"
          "  kforge devices\n"
          "  0: NVIDIA H100 80GB HBM3, cc 9.0, 132 SMs, 79.2 GiB (78.7 GiB free), 227 KiB smem/block, "
          "driver 12.4\n",
          f);
}

int kfcli_devices(int argc, char **argv)
{
    for (int k = 1; k < argc; k++) {
        if (!strcmp(argv[k], "-h") || !strcmp(argv[k], "--help")) {
            kfcli_help_devices(stdout);
            return KFCLI_EXIT_OK;
        }
        fprintf(stderr, "kforge devices: unexpected argument '%s'\n(see 'kforge help devices')\n", argv[k]);
        return KFCLI_EXIT_USAGE;
    }
    /* One worker thread and no disk cache: the context is only the messages' home. */
    kf_options opt;
    kf_options_init(&opt);
    opt.threads = 1;
    opt.no_cache = 1;
    kf_ctx *ctx = kf_new(&opt);
    if (!ctx) {
        fprintf(stderr, "kforge devices: cannot create a context (out of memory or threads)\n");
        return KFCLI_EXIT_RUNTIME;
    }
    int n = 0;
    if (kf_device_count(ctx, &n) != KF_OK) {
        fprintf(stderr, "kforge devices: no CUDA device: %s\n", kf_errmsg(ctx));
        kf_free(ctx);
        return KFCLI_EXIT_RUNTIME;
    }
    int rc = KFCLI_EXIT_OK;
    for (int dev = 0; dev < n; dev++) {
        kf_device_info info;
        if (kf_device_get(ctx, dev, &info) != KF_OK) {
            fflush(stdout); /* keep the lines in device order when both go to a terminal */
            fprintf(stderr, "kforge devices: device %d: %s\n", dev, kf_errmsg(ctx));
            rc = KFCLI_EXIT_RUNTIME;
            continue;
        }
        const double gib = 1024.0 * 1024 * 1024;
        int smem = info.max_smem_per_block > info.smem_per_block ? info.max_smem_per_block
                                                                  : info.smem_per_block;
        printf("%d: %s, cc %d.%d, %d SMs, %.1f GiB (%.1f GiB free), %d KiB smem/block, driver %d.%d\n", dev,
               info.name, info.major, info.minor, info.sms, (double)info.total_mem / gib,
               (double)info.free_mem / gib, smem / 1024, info.driver_version / 1000,
               info.driver_version % 1000 / 10);
    }
    kf_free(ctx);
    return rc;
}
