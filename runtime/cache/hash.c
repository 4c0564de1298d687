/* hash.c -- SHA-256 in lowercase hex, through OpenSSL's EVP interface (never our own). */
#include <errno.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "runtime/cache/cache.h"

static void to_hex(const unsigned char *md, unsigned n, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    for (unsigned q = 0; q < n; q++) {
        hex[2 * q] = digits[md[q] >> 4];
        hex[2 * q + 1] = digits[md[q] & 15];
    }
    hex[2 * n] = 0;
}

int kfr_sha256_hex(const void *data, size_t n, char hex[KFR_HEX_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    hex[0] = 0;
    if (!EVP_Digest(data, n, md, &len, EVP_sha256(), NULL) || len * 2 != KFR_HEX_LEN)
        return KF_ERR_INTERNAL;
    to_hex(md, len, hex);
    return KF_OK;
}

int kfr_sha256_fd(int fd, char hex[KFR_HEX_LEN + 1], int64_t *size)
{
    /* Streams through a stack buffer: the file is an object of tens of KiB
     * to a few MiB, and hashing must not need the heap of the caller. */
    unsigned char buf[16384], md[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    int64_t total = 0;
    int rc = KF_ERR_INTERNAL;
    hex[0] = 0;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c || !EVP_DigestInit_ex(c, EVP_sha256(), NULL))
        goto out;
    for (;;) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = KF_ERR_IO;
            goto out;
        }
        if (r == 0)
            break;
        if (!EVP_DigestUpdate(c, buf, (size_t)r))
            goto out;
        total += r;
    }
    if (!EVP_DigestFinal_ex(c, md, &len) || len * 2 != KFR_HEX_LEN)
        goto out;
    to_hex(md, len, hex);
    rc = KF_OK;
out:
    EVP_MD_CTX_free(c);
    if (size)
        *size = total;
    return rc;
}
