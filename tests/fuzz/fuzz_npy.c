/* fuzz_npy.c -- libFuzzer target: the .npy reader on arbitrary bytes must never crash, leak or hang. */
#include <stddef.h>
#include <stdint.h>

#include "cli/npy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[KFCLI_ERRLEN];
    kfcli_npy a;
    if (kfcli_npy_parse(data, size, "fuzz.npy", &a, err, sizeof err) == 0) {
        /* Touch every element: the parser promised count * elsize readable bytes. */
        size_t n = (size_t)a.count * kfcli_npy_elsize(a.type);
        volatile unsigned char sink = 0;
        for (size_t k = 0; k < n; k++)
            sink ^= ((const unsigned char *)a.data)[k];
        (void)sink;
        char hdr[256];
        kfcli_npy_header(&a, hdr, sizeof hdr);
    }
    kfcli_npy_free(&a);
    return 0;
}
