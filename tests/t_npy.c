/* t_npy.c -- the .npy reader and writer: round trips, and every rejection with its message. */
#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/npy.h"
#include "harness.h"
#include "kforge.h"

/* A .npy image: preamble of version major.0, the header text (its final '\n'
 * included by the caller), then nbytes of data. Returns the length. */
static size_t mk(unsigned char *buf, int major, const char *hdr, const void *data, size_t nbytes)
{
    size_t hl = strlen(hdr), pre = major == 1 ? 10 : 12;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (unsigned char)major, buf[7] = 0;
    buf[8] = (unsigned char)(hl & 0xff), buf[9] = (unsigned char)(hl >> 8);
    if (major != 1)
        buf[10] = (unsigned char)(hl >> 16), buf[11] = (unsigned char)(hl >> 24);
    memcpy(buf + pre, hdr, hl);
    if (nbytes)
        memcpy(buf + pre + hl, data, nbytes);
    return pre + hl + nbytes;
}

static unsigned char img[1 << 16];
static char err[KFCLI_ERRLEN];

/* Parses a header + data and expects success. */
static int parse_ok(int major, const char *hdr, const void *data, size_t n, kfcli_npy *a)
{
    size_t len = mk(img, major, hdr, data, n);
    err[0] = 0;
    int st = kfcli_npy_parse(img, len, "t.npy", a, err, sizeof err);
    KFT_CHECKF(st == KF_OK, "%s -> %s", hdr, err);
    return st == KF_OK;
}

/* Parses and expects a rejection whose message contains `want`. */
static void parse_bad(int major, const char *hdr, size_t n, const char *want)
{
    static const double zeros[64];
    size_t len = mk(img, major, hdr, zeros, n);
    kfcli_npy a;
    err[0] = 0;
    int st = kfcli_npy_parse(img, len, "t.npy", &a, err, sizeof err);
    KFT_CHECKF(st == KF_ERR_ARG, "%s accepted", hdr);
    KFT_CHECKF(strstr(err, want) != NULL, "header %s: message '%s' lacks '%s'", hdr, err, want);
    KFT_CHECKF(!strncmp(err, "t.npy: ", 7), "message '%s' does not name the file", err);
    KFT_CHECK(a.data == NULL);
}

KFT_TEST(npy_parse_versions_and_spellings)
{
    double d[6] = {1, 2, 3, 4, 5, -0.5};
    kfcli_npy a;
    if (parse_ok(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }          \n", d,
                 sizeof d, &a)) {
        KFT_CHECK(a.type == KFCLI_NPY_F8 && a.ndim == 2 && a.shape[0] == 3 && a.shape[1] == 2);
        KFT_CHECK(a.count == 6 && ((double *)a.data)[5] == -0.5);
        kfcli_npy_free(&a);
    }
    /* Versions 2.0 and 3.0 have a 4-byte header length. */
    if (parse_ok(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,)}\n", d, 16, &a)) {
        KFT_CHECK(a.type == KFCLI_NPY_F4 && a.ndim == 1 && a.shape[0] == 4 && a.count == 4);
        kfcli_npy_free(&a);
    }
    if (parse_ok(3, "{\"shape\": (2,1,), \"descr\": \"<i8\", \"fortran_order\": False}\n", d, 16,
                 &a)) {
        KFT_CHECK(a.type == KFCLI_NPY_I8 && a.ndim == 2 && a.shape[0] == 2 && a.shape[1] == 1);
        kfcli_npy_free(&a);
    }
    /* Scalars and empty arrays. */
    if (parse_ok(1, "{'descr':'<f8','fortran_order':False,'shape':()}\n", d, 8, &a)) {
        KFT_CHECK(a.ndim == 0 && a.count == 1 && ((double *)a.data)[0] == 1);
        kfcli_npy_free(&a);
    }
    if (parse_ok(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 3), }\n", d, 0, &a)) {
        KFT_CHECK(a.ndim == 2 && a.count == 0 && a.shape[1] == 3 && a.data != NULL);
        kfcli_npy_free(&a);
    }
    /* Empty, with the largest nonzero dims that fit: 8 * (2^60 - 1) and 4 * (2^61 - 1) bytes. */
    if (parse_ok(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 1152921504606846975), }\n",
                 d, 0, &a)) {
        KFT_CHECK(a.ndim == 2 && a.count == 0 && a.shape[1] == 1152921504606846975);
        kfcli_npy_free(&a);
    }
    if (parse_ok(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2305843009213693951, 0), }\n",
                 d, 0, &a)) {
        KFT_CHECK(a.ndim == 2 && a.count == 0 && a.shape[0] == 2305843009213693951);
        kfcli_npy_free(&a);
    }
    kfcli_npy_free(&a); /* freeing a freed (zeroed) struct is fine */
}

KFT_TEST(npy_rejects_bad_preambles)
{
    kfcli_npy a;
    KFT_CHECK(kfcli_npy_parse("hello world, not npy", 20, "t.npy", &a, err, sizeof err) == KF_ERR_ARG);
    KFT_CHECK(strstr(err, "t.npy: not a .npy file") != NULL);
    KFT_CHECK(kfcli_npy_parse("\x93NUMPY\x01", 7, "t.npy", &a, err, sizeof err) == KF_ERR_ARG);
    KFT_CHECK(strstr(err, "truncated") != NULL);
    KFT_CHECK(kfcli_npy_parse("\x93NUMPY\x02\x00\x10\x00", 10, "t.npy", &a, err, sizeof err) ==
              KF_ERR_ARG);
    KFT_CHECK(strstr(err, "truncated") != NULL);
    KFT_CHECK(kfcli_npy_parse("", 0, "t.npy", &a, err, sizeof err) == KF_ERR_ARG);

    const char *h = "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }\n";
    size_t len = mk(img, 1, h, "\0\0\0\0\0\0\0\0", 8);
    img[6] = 4;
    KFT_CHECK(kfcli_npy_parse(img, len, "t.npy", &a, err, sizeof err) == KF_ERR_ARG);
    KFT_CHECKF(strstr(err, "version 4.0 is not supported") != NULL, "%s", err);
    img[6] = 1, img[7] = 1;
    KFT_CHECK(kfcli_npy_parse(img, len, "t.npy", &a, err, sizeof err) == KF_ERR_ARG);
    KFT_CHECKF(strstr(err, "version 1.1") != NULL, "%s", err);
    img[7] = 0;
    /* Header length running past the end, zero, or over the limit. */
    img[8] = 0xff, img[9] = 0x7f;
    KFT_CHECK(kfcli_npy_parse(img, len, "t.npy", &a, err, sizeof err) == KF_ERR_ARG);
    KFT_CHECKF(strstr(err, "runs past the end of the file") != NULL, "%s", err);
    img[8] = 0, img[9] = 0;
    KFT_CHECK(kfcli_npy_parse(img, len, "t.npy", &a, err, sizeof err) == KF_ERR_ARG);
    KFT_CHECKF(strstr(err, "header is empty") != NULL, "%s", err);
    len = mk(img, 2, h, "", 0);
    img[10] = 0x10; /* 1 MiB + ... */
    KFT_CHECK(kfcli_npy_parse(img, len, "t.npy", &a, err, sizeof err) == KF_ERR_ARG);
    KFT_CHECKF(strstr(err, "exceeds the limit") != NULL, "%s", err);
    img[10] = 0xff, img[11] = 0xff; /* 4 GiB: must not overflow anything */
    KFT_CHECK(kfcli_npy_parse(img, len, "t.npy", &a, err, sizeof err) == KF_ERR_ARG);
}

KFT_TEST(npy_rejects_bad_headers)
{
    parse_bad(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }\n", 4,
              "t.npy: 'descr' is '>f4' (big-endian); expected '<f4' or '<f8'");
    parse_bad(1, "{'descr': '|u1', 'fortran_order': False, 'shape': (1,), }\n", 1,
              "'descr' is '|u1'; expected '<f4' or '<f8'");
    parse_bad(1, "{'descr': '<f2', 'fortran_order': False, 'shape': (1,), }\n", 2, "'<f2'");
    parse_bad(1, "{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (1,), }\n", 8,
              "structured");
    parse_bad(1, "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 2), }\n", 32,
              "'fortran_order' is True; expected False");
    parse_bad(1, "{'descr': '<f8', 'fortran_order': 0, 'shape': (1,), }\n", 8, "'fortran_order'");
    parse_bad(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3), }\n", 24, "not a tuple");
    parse_bad(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1, 1), }\n", 8,
              "'shape' has 3 dims; expected at most 2");
    parse_bad(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }\n", 8, "non-negative");
    parse_bad(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (01,), }\n", 8, "leading zero");
    parse_bad(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999999999999,), }\n",
              8, "too large");
    parse_bad(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }\n",
              8, "too many elements");
    /* The nonzero dims must fit 2^63-1 bytes even when the array is empty:
     * a (0, 2^61) '<f8' has 0 bytes, but a row of it 2^64. */
    parse_bad(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 2305843009213693952), }\n",
              0, "t.npy: 'shape' (0, 2305843009213693952) of '<f8' has too many elements: "
                 "expected its nonzero dims times 8 bytes to be at most 9223372036854775807 bytes");
    parse_bad(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 1152921504606846976), }\n",
              0, "'shape' (0, 1152921504606846976) of '<f8' has too many elements"); /* 2^63 */
    parse_bad(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2305843009213693952, 0), }\n",
              0, "'shape' (2305843009213693952, 0) of '<f4' has too many elements");
    parse_bad(1, "{'descr': '<i8', 'fortran_order': False, 'shape': (1152921504606846976,), }\n",
              0, "'shape' (1152921504606846976,) of '<i8' has too many elements");
    parse_bad(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 9223372036854775807), }\n",
              0, "too many elements");
    parse_bad(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1 2), }\n", 8,
              "expected ',' or ')'");
    parse_bad(1, "{'descr': '<f8', 'fortran_order': False, }\n", 8, "missing key 'shape'");
    parse_bad(1, "{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (1,)}\n", 8,
              "appears twice");
    parse_bad(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'x': 1}\n", 8,
              "unknown key 'x'");
    parse_bad(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,)} x\n", 8,
              "after the dictionary");
    parse_bad(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,)}\t\n", 8,
              "after the dictionary");
    parse_bad(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (1,)}   ", 8,
              "does not end with a newline");
    parse_bad(1, "{'descr': '<f8', 'fortran_order': False 'shape': (1,)}\n", 8,
              "expected ',' or '}'");
    parse_bad(1, "{'descr': '<f8\n", 8, "unterminated string");
    parse_bad(1, "{'des\x01': '<f8', 'fortran_order': False, 'shape': (1,)}\n", 8, "byte 0x01");
    parse_bad(1, "{'descr' '<f8', 'fortran_order': False, 'shape': (1,)}\n", 8, "expected ':'");
    parse_bad(1, "['descr', '<f8']\n", 8, "expected '{'");
    parse_bad(1, "{descr: '<f8'}\n", 8, "a key");
    /* Data size against the shape. */
    parse_bad(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }\n", 40,
              "data has 40 bytes, but 'shape' (3, 2) of '<f8' needs 48 (truncated file)");
    parse_bad(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }\n", 12,
              "needs 8 (trailing bytes)");
    parse_bad(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }\n", 0, "needs 4");
}

/* A scratch directory under /tmp, removed by rmdir_all. */
static char *scratch_dir(void)
{
    static char tmpl[64];
    snprintf(tmpl, sizeof tmpl, "/tmp/kft-npy-XXXXXX");
    return mkdtemp(tmpl);
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    if (d)
        closedir(d);
    return n;
}

KFT_TEST(npy_round_trip)
{
    char *dir = scratch_dir();
    KFT_CHECK(dir != NULL);
    if (!dir)
        return;
    char path[128];
    snprintf(path, sizeof path, "%s/a.npy", dir);
    float f[6] = {1.5f, -2.0f, NAN, INFINITY, 0.0f, -0.0f};
    double d[3] = {1e300, -1e-300, 3.0};
    int64_t iv[2] = {-1, INT64_MAX};
    struct {
        kfcli_npy a;
        size_t bytes;
    } cases[] = {
        {{KFCLI_NPY_F4, 2, {3, 2}, 6, f}, sizeof f},
        {{KFCLI_NPY_F4, 1, {6, 1}, 6, f}, sizeof f},
        {{KFCLI_NPY_F8, 1, {3, 1}, 3, d}, sizeof d},
        {{KFCLI_NPY_F8, 0, {1, 1}, 1, d}, 8},
        {{KFCLI_NPY_I8, 2, {1, 2}, 2, iv}, sizeof iv},
        {{KFCLI_NPY_F8, 2, {0, 5}, 0, d}, 0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const kfcli_npy *w = &cases[c].a;
        int st = kfcli_npy_write(path, w, err, sizeof err);
        KFT_CHECKF(st == KF_OK, "case %zu: %s", c, err);
        kfcli_npy r;
        st = kfcli_npy_read(path, &r, err, sizeof err);
        KFT_CHECKF(st == KF_OK, "case %zu: %s", c, err);
        if (st)
            continue;
        KFT_CHECK(r.type == w->type && r.ndim == w->ndim && r.count == w->count);
        for (int k = 0; k < w->ndim; k++)
            KFT_CHECK(r.shape[k] == w->shape[k]);
        KFT_CHECKF(!memcmp(r.data, w->data, cases[c].bytes), "case %zu: data differs", c);
        kfcli_npy_free(&r);
        /* The header is padded to a multiple of 64 bytes and ends with '\n'. */
        char *raw = kft_read_file(path);
        size_t total = raw ? (size_t)(unsigned char)raw[8] + 10 : 0;
        KFT_CHECKF(raw && total % 64 == 0 && raw[9] == 0 && raw[total - 1] == '\n', "total %zu",
                   total);
        free(raw);
    }
    /* The header alone. */
    char hdr[256];
    kfcli_npy big = {KFCLI_NPY_F8, 2, {INT64_MAX, 1}, 0, NULL};
    size_t hl = kfcli_npy_header(&big, hdr, sizeof hdr);
    KFT_CHECK(hl == 128 && hdr[127] == '\n' && strstr(hdr + 10, "(9223372036854775807, 1)"));
    KFT_CHECK(kfcli_npy_header(&big, hdr, 64) == 0);
    KFT_CHECK(count_entries(dir) == 1); /* no temporary file left behind */
    unlink(path);
    rmdir(dir);
}

KFT_TEST(npy_io_failures)
{
    kfcli_npy r;
    KFT_CHECK(kfcli_npy_read("/nonexistent/x.npy", &r, err, sizeof err) == KF_ERR_IO);
    KFT_CHECKF(!strncmp(err, "/nonexistent/x.npy: ", 20), "%s", err);
    KFT_CHECK(r.data == NULL);
    KFT_CHECK(kfcli_npy_read("/", &r, err, sizeof err) != KF_OK);

    char *dir = scratch_dir();
    if (!dir)
        return;
    double d[2] = {1, 2};
    kfcli_npy w = {KFCLI_NPY_F8, 1, {2, 1}, 2, d};
    char path[160];
    snprintf(path, sizeof path, "%s/missing/a.npy", dir);
    KFT_CHECK(kfcli_npy_write(path, &w, err, sizeof err) == KF_ERR_IO);
    KFT_CHECKF(strstr(err, "a.npy: cannot create a temporary file") != NULL, "%s", err);
    /* Never replaces a directory (nor a device). */
    KFT_CHECK(kfcli_npy_write(dir, &w, err, sizeof err) == KF_ERR_IO);
    KFT_CHECKF(strstr(err, "not a regular file") != NULL, "%s", err);
    /* A staged file that is not committed leaves nothing. */
    snprintf(path, sizeof path, "%s/b.npy", dir);
    char *tmp = NULL;
    KFT_CHECK(kfcli_npy_stage(path, &w, &tmp, err, sizeof err) == KF_OK && tmp);
    KFT_CHECK(count_entries(dir) == 1 && access(path, F_OK) != 0);
    KFT_CHECK(kfcli_npy_commit(tmp, path, 0, err, sizeof err) == KF_OK);
    KFT_CHECK(count_entries(dir) == 0);
    KFT_CHECK(kfcli_npy_commit(NULL, path, 1, err, sizeof err) == KF_OK);
    rmdir(dir);
}

/* Writes len bytes of buf to path. */
static int put_file(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int ok = fwrite(buf, 1, len, f) == len;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* The slice reader: every slice of a (5, 3) float64 file (first, last, empty,
 * whole), a 1-D float32 file, and the rejections: bad ranges, a 0-D array,
 * Fortran order, truncated data or header, a file that shrinks after open. */
KFT_TEST(npy_read_rows)
{
    char *dir = scratch_dir();
    KFT_CHECK(dir != NULL);
    if (!dir)
        return;
    char path[128];
    snprintf(path, sizeof path, "%s/s.npy", dir);
    double d[15];
    for (int e = 0; e < 15; e++)
        d[e] = e * 0.5 - 3;
    kfcli_npy w = {KFCLI_NPY_F8, 2, {5, 3}, 15, d};
    KFT_CHECK(kfcli_npy_write(path, &w, err, sizeof err) == KF_OK);
    kfcli_npy_file f;
    int st = kfcli_npy_open(path, &f, err, sizeof err);
    KFT_CHECKF(st == KF_OK, "%s", err);
    if (st) {
        unlink(path), rmdir(dir);
        return;
    }
    KFT_CHECK(f.type == KFCLI_NPY_F8 && f.ndim == 2 && f.shape[0] == 5 && f.shape[1] == 3);
    KFT_CHECK(f.row_bytes == 24 && f.data_off == 128 && f.count == 15);
    double got[15];
    for (int r0 = 0; r0 <= 5; r0++)
        for (int r1 = r0; r1 <= 5; r1++) {
            memset(got, 0x7f, sizeof got);
            st = kfcli_npy_read_rows(&f, r0, r1, got, err, sizeof err);
            KFT_CHECKF(st == KF_OK, "[%d, %d): %s", r0, r1, err);
            KFT_CHECKF(!memcmp(got, d + 3 * r0, sizeof(double) * 3 * (size_t)(r1 - r0)),
                       "[%d, %d): data differs", r0, r1);
        }
    KFT_CHECK(kfcli_npy_read_rows(&f, 5, 5, NULL, err, sizeof err) == KF_OK); /* empty, at the end */
    static const struct {
        int64_t r0, r1;
        const char *want;
    } bad[] = {
        {-1, 2, "rows [-1, 2) are not a slice of the 5 rows"},
        {3, 2, "rows [3, 2) are not a slice"},
        {0, 6, "rows [0, 6) are not a slice"},
        {INT64_MAX, INT64_MAX, "not a slice"},
    };
    for (size_t b = 0; b < sizeof bad / sizeof bad[0]; b++) {
        st = kfcli_npy_read_rows(&f, bad[b].r0, bad[b].r1, got, err, sizeof err);
        KFT_CHECKF(st == KF_ERR_ARG && strstr(err, bad[b].want) && strstr(err, path),
                   "[%lld, %lld): %d '%s'", (long long)bad[b].r0, (long long)bad[b].r1, st, err);
    }
    /* Overflow of r0 * row_bytes: a header that claims a huge row (checked
     * against the file's size at open, so only a forged struct gets here). */
    kfcli_npy_file forged = f;
    forged.shape[0] = INT64_MAX, forged.row_bytes = INT64_MAX / 2;
    st = kfcli_npy_read_rows(&forged, 4, 5, got, err, sizeof err);
    KFT_CHECKF(st == KF_ERR_ARG && strstr(err, "overflow the file offsets"), "%s", err);
    /* The file shrinks after the header was checked: the read says so. */
    KFT_CHECK(truncate(path, 128 + 2 * 24 + 5) == 0);
    st = kfcli_npy_read_rows(&f, 1, 4, got, err, sizeof err);
    KFT_CHECKF(st == KF_ERR_ARG && strstr(err, "truncated .npy file: no data at byte 181"), "%s",
               err);
    KFT_CHECK(kfcli_npy_read_rows(&f, 0, 2, got, err, sizeof err) == KF_OK);
    kfcli_npy_close(&f);
    kfcli_npy_close(&f); /* twice is harmless */
    KFT_CHECK(kfcli_npy_read_rows(&f, 0, 1, got, err, sizeof err) == KF_ERR_ARG);
    /* Now truncated on open: the same check as the whole-file reader. */
    st = kfcli_npy_open(path, &f, err, sizeof err);
    KFT_CHECKF(st == KF_ERR_ARG && strstr(err, "data has 53 bytes, but 'shape' (5, 3) of '<f8' "
                                              "needs 120 (truncated file)"), "%s", err);
    KFT_CHECK(f.fd == -1);

    /* 1-D float32: one element a row. */
    float v[4] = {1, 2, 3, 4};
    kfcli_npy w1 = {KFCLI_NPY_F4, 1, {4, 1}, 4, v};
    KFT_CHECK(kfcli_npy_write(path, &w1, err, sizeof err) == KF_OK);
    KFT_CHECK(kfcli_npy_open(path, &f, err, sizeof err) == KF_OK && f.row_bytes == 4);
    float g[4] = {0};
    KFT_CHECK(kfcli_npy_read_rows(&f, 3, 4, g, err, sizeof err) == KF_OK && g[0] == 4);
    KFT_CHECK(kfcli_npy_read_rows(&f, 0, 1, g, err, sizeof err) == KF_OK && g[0] == 1);
    kfcli_npy_close(&f);
    /* 0-D: no rows. */
    kfcli_npy w0 = {KFCLI_NPY_F8, 0, {1, 1}, 1, d};
    KFT_CHECK(kfcli_npy_write(path, &w0, err, sizeof err) == KF_OK);
    KFT_CHECK(kfcli_npy_open(path, &f, err, sizeof err) == KF_OK);
    st = kfcli_npy_read_rows(&f, 0, 1, g, err, sizeof err);
    KFT_CHECKF(st == KF_ERR_ARG && strstr(err, "'shape' () has no rows"), "%s", err);
    kfcli_npy_close(&f);

    /* Fortran order, a truncated header, an empty file, a directory. */
    size_t len = mk(img, 1, "{'descr': '<f8', 'fortran_order': True, 'shape': (2, 1), }\n", d, 16);
    KFT_CHECK(put_file(path, img, len) == 0);
    st = kfcli_npy_open(path, &f, err, sizeof err);
    KFT_CHECKF(st == KF_ERR_ARG && strstr(err, "'fortran_order' is True"), "%s", err);
    len = mk(img, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 1), }\n", d, 16);
    KFT_CHECK(put_file(path, img, 30) == 0);
    st = kfcli_npy_open(path, &f, err, sizeof err);
    KFT_CHECKF(st == KF_ERR_ARG && strstr(err, "runs past the end of the file (30 bytes)"), "%s",
               err);
    KFT_CHECK(put_file(path, img, len - 1) == 0);
    st = kfcli_npy_open(path, &f, err, sizeof err);
    KFT_CHECKF(st == KF_ERR_ARG && strstr(err, "(truncated file)"), "%s", err);
    KFT_CHECK(put_file(path, img, 0) == 0);
    st = kfcli_npy_open(path, &f, err, sizeof err);
    KFT_CHECKF(st == KF_ERR_ARG && strstr(err, "not a .npy file"), "%s", err);
    st = kfcli_npy_open(dir, &f, err, sizeof err);
    KFT_CHECKF(st == KF_ERR_ARG && strstr(err, "a directory, not a regular file"), "%s", err);
    st = kfcli_npy_open("/nonexistent/x.npy", &f, err, sizeof err);
    KFT_CHECK(st == KF_ERR_IO && f.fd == -1);
    unlink(path);
    rmdir(dir);
}

/* Empty arrays with huge rows, through the slice reader: the row size is
 * checked when the leading dim is 0 (a (0, 2^61) '<f8' would make it 2^64
 * bytes), and the largest that fits opens with exact row sizes; its only
 * slice is the empty one. */
KFT_TEST(npy_read_rows_huge_empty)
{
    char *dir = scratch_dir();
    KFT_CHECK(dir != NULL);
    if (!dir)
        return;
    char path[128];
    snprintf(path, sizeof path, "%s/e.npy", dir);
    kfcli_npy_file f;
    size_t len = mk(img, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 2305843009213693952), }\n",
                    NULL, 0);
    KFT_CHECK(put_file(path, img, len) == 0);
    int st = kfcli_npy_open(path, &f, err, sizeof err);
    KFT_CHECKF(st == KF_ERR_ARG && strstr(err, "'shape' (0, 2305843009213693952) of '<f8' has too "
                                              "many elements: expected its nonzero dims times 8 "
                                              "bytes to be at most 9223372036854775807 bytes") &&
                   strstr(err, path) && f.fd == -1,
               "%d '%s'", st, err);

    len = mk(img, 3, "{'descr': '<f8', 'fortran_order': False, 'shape': (0, 1152921504606846975), }\n",
             NULL, 0);
    KFT_CHECK(put_file(path, img, len) == 0);
    st = kfcli_npy_open(path, &f, err, sizeof err);
    KFT_CHECKF(st == KF_OK, "%s", err);
    if (st == KF_OK) {
        KFT_CHECK(f.shape[0] == 0 && f.count == 0 && f.row_bytes == INT64_MAX - 7);
        KFT_CHECK(kfcli_npy_read_rows(&f, 0, 0, NULL, err, sizeof err) == KF_OK);
        st = kfcli_npy_read_rows(&f, 0, 1, NULL, err, sizeof err);
        KFT_CHECKF(st == KF_ERR_ARG && strstr(err, "rows [0, 1) are not a slice of the 0 rows"),
                   "%s", err);
        kfcli_npy_close(&f);
    }
    /* Many empty rows: row_bytes 0, every slice reads nothing. */
    len = mk(img, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2305843009213693951, 0), }\n",
             NULL, 0);
    KFT_CHECK(put_file(path, img, len) == 0);
    st = kfcli_npy_open(path, &f, err, sizeof err);
    KFT_CHECKF(st == KF_OK, "%s", err);
    if (st == KF_OK) {
        KFT_CHECK(f.row_bytes == 0 && f.count == 0);
        KFT_CHECK(kfcli_npy_read_rows(&f, 0, 2305843009213693951, NULL, err, sizeof err) == KF_OK);
        KFT_CHECK(kfcli_npy_read_rows(&f, 7, 9, NULL, err, sizeof err) == KF_OK);
        kfcli_npy_close(&f);
    }
    unlink(path);
    rmdir(dir);
}
