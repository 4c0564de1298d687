/* fuzz_npy_slice.c -- libFuzzer target: the slice reader (kfcli_npy_open + kfcli_npy_read_rows)
 * against the whole-file readers, on a .npy built from the input in a memfd (no file on disk).
 *
 * Input: 37 seed bytes (9 ranges, two little-endian 16-bit endpoints each, then how much to
 * cut off the file; missing bytes read as 0), then the .npy file itself. Checked, beyond "never crashes, leaks or hangs":
 *   - kfcli_npy_parse (the bytes), kfcli_npy_read and kfcli_npy_open (the memfd, by its
 *     /proc/self/fd name) accept the same files, and refuse the others with one status and
 *     one message;
 *   - an accepted file opens with the parsed type, shape and count, row_bytes = elsize times
 *     the dims after the first, and its data right at the end of the file;
 *   - 11 row ranges (the whole array, an empty one at the end, and 9 from the seeds, which
 *     may be out of bounds or reversed) each read exactly those rows of the parsed data, or
 *     fail with KF_ERR_ARG when they are not a slice (always, for a 0-D array);
 *   - after the file is cut short, reading every row fails with KF_ERR_ARG exactly when the
 *     rows reach past the cut, and reads the same bytes otherwise. */
#define _GNU_SOURCE
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cli/npy.h"
#include "kforge.h"

#define SEED_BYTES 37 /* 9 ranges of two 16-bit endpoints, then the cut */
#define NRANGES 11

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken promise: say which, then stop the fuzzer with a crash it reports. */
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_npy_slice: %s: ", #cond);                                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

/* Seed k (0-based) of the 18 endpoints as a row index in [-1, n + 1]: low 15 bits counted
 * from the front, or from the end when the top bit is set, so both ends of a long array
 * are reached. */
static int64_t endpoint(const uint8_t *seeds, int k, int64_t n)
{
    unsigned v = seeds[2 * k] | (unsigned)seeds[2 * k + 1] << 8;
    int64_t m = (int64_t)(v & 0x7fff) % (n + 3);
    return v & 0x8000 ? n + 1 - m : m - 1;
}

/* Reads rows [r0, r1) of f and checks the outcome against the parsed array a (its data
 * ends at byte avail of the file, which is shorter than the header says after a cut). */
static void check_slice(kfcli_npy_file *f, const kfcli_npy *a, int64_t r0, int64_t r1,
                        uint64_t avail, int null_when_empty)
{
    char err[KFCLI_ERRLEN];
    int64_t n = a->ndim ? a->shape[0] : 0;
    int valid = a->ndim > 0 && r0 >= 0 && r0 <= r1 && r1 <= n;
    size_t bytes = valid ? (size_t)(r1 - r0) * (size_t)f->row_bytes : 0;
    size_t at = valid ? (size_t)r0 * (size_t)f->row_bytes : 0;
    int fits = f->data_off + at + bytes <= avail || bytes == 0;
    unsigned char *out = bytes || !null_when_empty ? malloc(bytes ? bytes : 1) : NULL;
    CHECK(out || (!bytes && null_when_empty), "out of memory");
    if (out)
        memset(out, 0xa5, bytes ? bytes : 1);
    err[0] = 0;
    int st = kfcli_npy_read_rows(f, r0, r1, out, err, sizeof err);
    if (!valid || !fits) {
        CHECK(st == KF_ERR_ARG, "rows [%lld, %lld) of %lld (avail %llu): status %d, '%s'",
              (long long)r0, (long long)r1, (long long)n, (unsigned long long)avail, st, err);
        CHECK(err[0] != 0, "rows [%lld, %lld): refused without a message", (long long)r0,
              (long long)r1);
    } else {
        CHECK(st == KF_OK, "rows [%lld, %lld) of %lld: status %d, '%s'", (long long)r0,
              (long long)r1, (long long)n, st, err);
        CHECK(!bytes || !memcmp(out, (const unsigned char *)a->data + at, bytes),
              "rows [%lld, %lld): the slice differs from the whole-file read", (long long)r0,
              (long long)r1);
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int mfd = -1;
    static char path[64];
    if (mfd < 0) {
        mfd = memfd_create("fuzz_npy_slice", MFD_CLOEXEC);
        CHECK(mfd >= 0, "memfd_create failed");
        snprintf(path, sizeof path, "/proc/self/fd/%d", mfd);
    }
    uint8_t seeds[SEED_BYTES] = {0};
    memcpy(seeds, data, size < SEED_BYTES ? size : SEED_BYTES);
    const uint8_t *file = size > SEED_BYTES ? data + SEED_BYTES : data;
    size_t flen = size > SEED_BYTES ? size - SEED_BYTES : 0;
    CHECK(ftruncate(mfd, 0) == 0, "ftruncate failed");
    CHECK(!flen || pwrite(mfd, file, flen, 0) == (ssize_t)flen, "pwrite failed");

    /* Three readers, one verdict: the name is the same, so the messages are too. */
    char e1[KFCLI_ERRLEN] = "", e2[KFCLI_ERRLEN] = "", e3[KFCLI_ERRLEN] = "";
    kfcli_npy a, b;
    kfcli_npy_file f;
    int s1 = kfcli_npy_parse(file, flen, path, &a, e1, sizeof e1);
    int s2 = kfcli_npy_read(path, &b, e2, sizeof e2);
    int s3 = kfcli_npy_open(path, &f, e3, sizeof e3);
    CHECK(s1 == s2 && s1 == s3, "parse %d '%s', read %d '%s', open %d '%s'", s1, e1, s2, e2, s3, e3);
    if (s1) {
        CHECK(s1 == KF_ERR_ARG && e1[0], "refused with status %d, '%s'", s1, e1);
        CHECK(!strcmp(e1, e2) && !strcmp(e1, e3), "messages differ: '%s', '%s', '%s'", e1, e2, e3);
        CHECK(a.data == NULL && b.data == NULL && f.fd == -1, "a refusal left something open");
        return 0;
    }
    size_t es = kfcli_npy_elsize(a.type), dbytes = (size_t)a.count * es;
    CHECK(b.type == a.type && b.ndim == a.ndim && b.count == a.count &&
              b.shape[0] == a.shape[0] && b.shape[1] == a.shape[1] &&
              !memcmp(b.data, a.data, dbytes),
          "kfcli_npy_read and kfcli_npy_parse disagree");
    CHECK(f.type == a.type && f.ndim == a.ndim && f.count == a.count &&
              f.shape[0] == a.shape[0] && f.shape[1] == a.shape[1],
          "kfcli_npy_open and kfcli_npy_parse disagree");
    CHECK(f.row_bytes == (int64_t)es * (a.ndim == 2 ? a.shape[1] : 1), "row_bytes %lld",
          (long long)f.row_bytes);
    CHECK(f.data_off + dbytes == flen, "data at %llu, %zu bytes, in a file of %zu",
          (unsigned long long)f.data_off, dbytes, flen);

    int64_t n = a.ndim ? a.shape[0] : 0;
    int64_t r[NRANGES][2] = {{0, n}, {n, n}};
    for (int k = 2; k < NRANGES; k++) {
        r[k][0] = endpoint(seeds, 2 * (k - 2), n);
        r[k][1] = endpoint(seeds, 2 * (k - 2) + 1, n);
    }
    for (int k = 0; k < NRANGES; k++)
        check_slice(&f, &a, r[k][0], r[k][1], flen, seeds[k] & 1);

    /* Cut the file short (by 1 to 256 bytes, never before the data): slices wholly before
     * the cut still read, the whole array does not unless it is empty. */
    size_t cut = (size_t)seeds[36] + 1;
    if (dbytes >= cut) {
        CHECK(ftruncate(mfd, (off_t)(flen - cut)) == 0, "ftruncate failed");
        check_slice(&f, &a, 0, n, flen - cut, 0);
        check_slice(&f, &a, r[2][0], r[2][1], flen - cut, 0);
    }
    kfcli_npy_close(&f);
    kfcli_npy_free(&a);
    kfcli_npy_free(&b);
    return 0;
}
