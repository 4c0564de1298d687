/* npy.c -- strict .npy reader and atomic .npy writer (the format is NumPy's NEP 1). */
#include "cli/npy.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kforge.h"

static const char npy_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

size_t kfcli_npy_elsize(kfcli_npy_type t)
{
    return t == KFCLI_NPY_F4 ? 4 : 8;
}

void kfcli_npy_shape_str(const kfcli_npy *a, char *buf, size_t cap)
{
    if (a->ndim == 0)
        snprintf(buf, cap, "()");
    else if (a->ndim == 1)
        snprintf(buf, cap, "(%lld,)", (long long)a->shape[0]);
    else
        snprintf(buf, cap, "(%lld, %lld)", (long long)a->shape[0], (long long)a->shape[1]);
}

const char *kfcli_npy_descr(kfcli_npy_type t)
{
    return t == KFCLI_NPY_F4 ? "<f4" : t == KFCLI_NPY_F8 ? "<f8" : "<i8";
}

void kfcli_npy_free(kfcli_npy *a)
{
    if (!a)
        return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

static int fail(char *err, size_t errlen, int status, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int fail(char *err, size_t errlen, int status, const char *name, const char *fmt, ...)
{
    if (err && errlen) {
        int n = snprintf(err, errlen, "%s: ", name);
        if (n >= 0 && (size_t)n < errlen) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
            va_end(ap);
        }
    }
    return status;
}

/* ---- the header dictionary ------------------------------------------------
 * header := ' '* '{' ' '* item (' '* ',' ' '* item)* (' '* ',')? ' '* '}' ' '* '\n'
 * item   := key ' '* ':' ' '* value, with exactly the keys 'descr' (a string),
 *           'fortran_order' (True/False) and 'shape' (a tuple of at most 2 ints)
 * This is what numpy writes (a Python dict literal), no more: anything else
 * is more likely a corrupt or hostile file than a legitimate one. */
typedef struct hdr_parser {
    const char *s; /* header text, without the final '\n' */
    size_t n, i;
    const char *name;
    char *err;
    size_t errlen;
} hdr_parser;

#define HFAIL(p, ...) fail((p)->err, (p)->errlen, KF_ERR_ARG, (p)->name, __VA_ARGS__)

static void hp_space(hdr_parser *p)
{
    while (p->i < p->n && p->s[p->i] == ' ')
        p->i++;
}

/* Describes the character at the cursor for messages (it is untrusted: only
 * printable ASCII is shown as itself). */
static const char *hp_near(const hdr_parser *p, char *buf)
{
    if (p->i >= p->n)
        return "the end of the header";
    unsigned char c = (unsigned char)p->s[p->i];
    if (c > 32 && c < 127)
        snprintf(buf, 16, "'%c'", c);
    else
        snprintf(buf, 16, "byte 0x%02x", c);
    return buf;
}

static int hp_expect(hdr_parser *p, char c, const char *what)
{
    hp_space(p);
    if (p->i < p->n && p->s[p->i] == c) {
        p->i++;
        return KF_OK;
    }
    char b[16];
    return HFAIL(p, "header: expected %s at byte %zu, found %s", what, p->i, hp_near(p, b));
}

/* A quoted string of printable ASCII ('...' or "..."), no escapes, at most 63 bytes. */
static int hp_string(hdr_parser *p, char *out, size_t cap, const char *what)
{
    hp_space(p);
    char b[16];
    if (p->i >= p->n || (p->s[p->i] != '\'' && p->s[p->i] != '"'))
        return HFAIL(p, "header: expected %s (a quoted string) at byte %zu, found %s", what, p->i,
                     hp_near(p, b));
    char q = p->s[p->i++];
    size_t len = 0;
    while (p->i < p->n && p->s[p->i] != q) {
        unsigned char c = (unsigned char)p->s[p->i];
        if (c < 32 || c > 126 || c == '\\')
            return HFAIL(p, "header: %s contains %s at byte %zu", what, hp_near(p, b), p->i);
        if (len + 1 >= cap)
            return HFAIL(p, "header: %s at byte %zu is too long", what, p->i - len - 1);
        out[len++] = (char)c;
        p->i++;
    }
    if (p->i >= p->n)
        return HFAIL(p, "header: unterminated string");
    p->i++;
    out[len] = 0;
    return KF_OK;
}

/* A non-negative decimal integer without sign, leading zeros or '_' (Python
 * literal rules, as numpy writes them), at most INT64_MAX. */
static int hp_uint(hdr_parser *p, int64_t *v)
{
    char b[16];
    size_t start = p->i;
    if (p->i >= p->n || p->s[p->i] < '0' || p->s[p->i] > '9')
        return HFAIL(p, "header: 'shape' needs a non-negative integer at byte %zu, found %s", p->i,
                     hp_near(p, b));
    int64_t x = 0;
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9') {
        int d = p->s[p->i] - '0';
        if (x > (INT64_MAX - d) / 10)
            return HFAIL(p, "header: 'shape' entry at byte %zu is too large", start);
        x = x * 10 + d;
        p->i++;
    }
    if (p->i - start > 1 && p->s[start] == '0')
        return HFAIL(p, "header: 'shape' entry at byte %zu has a leading zero", start);
    *v = x;
    return KF_OK;
}

/* '(' ')' | '(' int ',' ')' | '(' int (',' int)+ ','? ')' */
static int hp_shape(hdr_parser *p, kfcli_npy *a)
{
    int st;
    if ((st = hp_expect(p, '(', "'(' opening the 'shape' tuple")))
        return st;
    int n = 0, commas = 0;
    hp_space(p);
    while (p->i < p->n && p->s[p->i] != ')') {
        int64_t v = 0;
        if ((st = hp_uint(p, &v)))
            return st;
        if (n < 2)
            a->shape[n] = v;
        n++;
        hp_space(p);
        if (p->i < p->n && p->s[p->i] == ',') {
            p->i++, commas++;
            hp_space(p);
        } else if (p->i < p->n && p->s[p->i] != ')') {
            char b[16];
            return HFAIL(p, "header: expected ',' or ')' in 'shape' at byte %zu, found %s", p->i,
                         hp_near(p, b));
        }
    }
    if ((st = hp_expect(p, ')', "')' closing the 'shape' tuple")))
        return st;
    if (n == 1 && commas == 0)
        return HFAIL(p, "header: 'shape' (%lld) is not a tuple; expected (%lld,)",
                     (long long)a->shape[0], (long long)a->shape[0]);
    if (n > 2)
        return HFAIL(p, "header: 'shape' has %d dims; expected at most 2", n);
    a->ndim = n;
    return KF_OK;
}

static int hp_descr(hdr_parser *p, kfcli_npy *a)
{
    char d[64];
    int st = hp_string(p, d, sizeof d, "the value of 'descr'");
    if (st) {
        /* A list here is a structured dtype: say so rather than "expected a string". */
        if (p->i < p->n && p->s[p->i] == '[')
            return HFAIL(p, "'descr' is a structured dtype; expected '<f4' or '<f8'");
        return st;
    }
    if (!strcmp(d, "<f4"))
        a->type = KFCLI_NPY_F4;
    else if (!strcmp(d, "<f8"))
        a->type = KFCLI_NPY_F8;
    else if (!strcmp(d, "<i8"))
        a->type = KFCLI_NPY_I8;
    else if (d[0] == '>')
        return HFAIL(p, "'descr' is '%s' (big-endian); expected '<f4' or '<f8'", d);
    else
        return HFAIL(p, "'descr' is '%s'; expected '<f4' or '<f8'", d);
    return KF_OK;
}

static int hp_fortran(hdr_parser *p)
{
    hp_space(p);
    if (p->n - p->i >= 5 && !memcmp(p->s + p->i, "False", 5)) {
        p->i += 5;
        return KF_OK;
    }
    if (p->n - p->i >= 4 && !memcmp(p->s + p->i, "True", 4))
        return HFAIL(p, "'fortran_order' is True; expected False (C order)");
    char b[16];
    return HFAIL(p, "header: 'fortran_order' must be False or True at byte %zu, found %s", p->i,
                 hp_near(p, b));
}

static int parse_dict(hdr_parser *p, kfcli_npy *a)
{
    static const char *const keys[3] = {"descr", "fortran_order", "shape"};
    int seen[3] = {0, 0, 0};
    int st;
    if ((st = hp_expect(p, '{', "'{' opening the header dictionary")))
        return st;
    for (;;) {
        hp_space(p);
        if (p->i < p->n && p->s[p->i] == '}')
            break;
        char key[64];
        if ((st = hp_string(p, key, sizeof key, "a key")))
            return st;
        int k = 0;
        while (k < 3 && strcmp(key, keys[k]))
            k++;
        if (k == 3)
            return HFAIL(p, "header: unknown key '%s'; expected 'descr', 'fortran_order' and 'shape'",
                         key);
        if (seen[k]++)
            return HFAIL(p, "header: key '%s' appears twice", key);
        if ((st = hp_expect(p, ':', "':' after a key")))
            return st;
        st = k == 0 ? hp_descr(p, a) : k == 1 ? hp_fortran(p) : hp_shape(p, a);
        if (st)
            return st;
        hp_space(p);
        if (p->i < p->n && p->s[p->i] == ',') {
            p->i++;
            continue;
        }
        if (p->i < p->n && p->s[p->i] == '}')
            break;
        char b[16];
        return HFAIL(p, "header: expected ',' or '}' at byte %zu, found %s", p->i, hp_near(p, b));
    }
    p->i++; /* the '}' */
    for (int k = 0; k < 3; k++)
        if (!seen[k])
            return HFAIL(p, "header: missing key '%s'", keys[k]);
    hp_space(p);
    if (p->i != p->n) {
        char b[16];
        return HFAIL(p, "header: unexpected %s at byte %zu after the dictionary", hp_near(p, b),
                     p->i);
    }
    return KF_OK;
}

/* The bytes of one row of a (elsize times the dims after the first; elsize
 * for 1-D and 0-D) into *row, and of the whole array into *bytes. Refused
 * when the nonzero dims times elsize exceed INT64_MAX, as NumPy refuses to
 * make such an array: a (0, 2^61) '<f8' array holds 0 bytes, but each of its
 * rows would hold 2^64, and the slice reader's offsets are multiples of that. */
static int shape_bytes(const kfcli_npy *a, const char *name, int64_t *row, int64_t *bytes,
                       char *err, size_t errlen)
{
    /* 2^63-1 where size_t is 64 bits; SIZE_MAX where it is narrower (the data is held in memory) */
    const int64_t limit = (uint64_t)SIZE_MAX < (uint64_t)INT64_MAX ? (int64_t)SIZE_MAX : INT64_MAX;
    int64_t es = (int64_t)kfcli_npy_elsize(a->type), r = es, nz = es;
    int over = 0;
    for (int k = 1; k < a->ndim; k++)
        over |= __builtin_mul_overflow(r, a->shape[k], &r);
    for (int k = 0; k < a->ndim; k++)
        if (a->shape[k] != 0)
            over |= __builtin_mul_overflow(nz, a->shape[k], &nz);
    if (over || nz > limit) {
        char shp[64];
        kfcli_npy_shape_str(a, shp, sizeof shp);
        return fail(err, errlen, KF_ERR_ARG, name,
                    "'shape' %s of '%s' has too many elements: expected its nonzero dims times "
                    "%lld bytes to be at most %lld bytes",
                    shp, kfcli_npy_descr(a->type), (long long)es, (long long)limit);
    }
    /* Both are 0 or divide nz, so neither overflows. */
    *row = r;
    *bytes = a->ndim == 0 ? es : a->shape[0] * r;
    return KF_OK;
}

/* Validates the preamble and header of buf (its first len bytes: the whole
 * file, or at least the header) and fills a's type and shape; *off gets the
 * data offset and *row the bytes of one row (shape_bytes). Every size is
 * checked against total, the file's size, including the data's (exactly
 * count * elsize bytes must follow). */
static int parse_header(const unsigned char *buf, size_t len, size_t total, const char *name,
                        kfcli_npy *a, size_t *off, int64_t *row, char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    a->shape[0] = a->shape[1] = 1;
    if (len < sizeof npy_magic || memcmp(buf, npy_magic, sizeof npy_magic))
        return fail(err, errlen, KF_ERR_ARG, name, "not a .npy file (no \\x93NUMPY magic string)");
    if (len < 10)
        return fail(err, errlen, KF_ERR_ARG, name, "truncated .npy file (%zu bytes)", len);
    unsigned major = buf[6], minor = buf[7];
    size_t hlen, start;
    if (major == 1 && minor == 0) {
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
        start = 10;
    } else if ((major == 2 || major == 3) && minor == 0) {
        if (len < 12)
            return fail(err, errlen, KF_ERR_ARG, name, "truncated .npy file (%zu bytes)", len);
        hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
        start = 12;
    } else {
        return fail(err, errlen, KF_ERR_ARG, name,
                    "format version %u.%u is not supported; expected 1.0, 2.0 or 3.0", major, minor);
    }
    if (hlen == 0)
        return fail(err, errlen, KF_ERR_ARG, name, "header is empty");
    if (hlen > KFCLI_NPY_MAX_HEADER)
        return fail(err, errlen, KF_ERR_ARG, name, "header length %zu exceeds the limit of %d bytes",
                    hlen, KFCLI_NPY_MAX_HEADER);
    if (hlen > len - start)
        return fail(err, errlen, KF_ERR_ARG, name,
                    "header length %zu runs past the end of the file (%zu bytes)", hlen, total);
    const char *h = (const char *)buf + start;
    if (h[hlen - 1] != '\n')
        return fail(err, errlen, KF_ERR_ARG, name, "header does not end with a newline");
    hdr_parser p = {h, hlen - 1, 0, name, err, errlen};
    int st = parse_dict(&p, a);
    if (st)
        return st;

    int64_t bytes = 0;
    if ((st = shape_bytes(a, name, row, &bytes, err, errlen)))
        return st;
    int64_t count = bytes / (int64_t)kfcli_npy_elsize(a->type); /* exact */
    size_t need = (size_t)bytes;
    size_t have = total - start - hlen;
    if (have != need) {
        char shp[64];
        kfcli_npy_shape_str(a, shp, sizeof shp);
        return fail(err, errlen, KF_ERR_ARG, name,
                    "data has %zu bytes, but 'shape' %s of '%s' needs %zu (%s)", have, shp,
                    kfcli_npy_descr(a->type), need, have < need ? "truncated file" : "trailing bytes");
    }
    a->count = count;
    *off = start + hlen;
    return KF_OK;
}

int kfcli_npy_parse(const void *buf, size_t len, const char *name, kfcli_npy *a, char *err,
                    size_t errlen)
{
    size_t off;
    int64_t row;
    int st = parse_header(buf, len, len, name, a, &off, &row, err, errlen);
    if (st) {
        memset(a, 0, sizeof *a);
        return st;
    }
    size_t bytes = len - off;
    /* Never NULL, even for 0 elements: callers pass it on as a non-NULL array. */
    a->data = malloc(bytes ? bytes : 16);
    if (!a->data) {
        memset(a, 0, sizeof *a);
        return fail(err, errlen, KF_ERR_NOMEM, name, "out of memory for %zu bytes", bytes);
    }
    memcpy(a->data, (const unsigned char *)buf + off, bytes);
    return KF_OK;
}

/* Opens path for reading, refusing anything but a regular file; *sb gets its
 * status. */
static int open_regular(const char *path, int *fdp, struct stat *sb, char *err, size_t errlen)
{
    /* O_NONBLOCK: opening a FIFO without a writer would block forever; the
     * type is checked on the descriptor, so what is read is what was checked.
     * Only regular files: /dev/zero would be read until memory runs out, and
     * a pipe gives no size to check the header against. */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return fail(err, errlen, KF_ERR_IO, path, "%s", strerror(errno));
    if (fstat(fd, sb) != 0) {
        int e = errno;
        close(fd);
        return fail(err, errlen, KF_ERR_IO, path, "%s", strerror(e));
    }
    if (!S_ISREG(sb->st_mode)) {
        close(fd);
        return fail(err, errlen, KF_ERR_ARG, path,
                    "is %s, not a regular file: .npy inputs are read from regular files only",
                    S_ISFIFO(sb->st_mode)  ? "a FIFO or pipe"
                    : S_ISCHR(sb->st_mode) ? "a character device"
                    : S_ISBLK(sb->st_mode) ? "a block device"
                    : S_ISDIR(sb->st_mode) ? "a directory"
                    : S_ISSOCK(sb->st_mode) ? "a socket"
                                            : "a special file");
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    *fdp = fd;
    return KF_OK;
}

int kfcli_npy_read(const char *path, kfcli_npy *a, char *err, size_t errlen)
{
    memset(a, 0, sizeof *a);
    int fd;
    struct stat sb;
    int st0 = open_regular(path, &fd, &sb, err, errlen);
    if (st0)
        return st0;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        int e = errno;
        close(fd);
        return fail(err, errlen, e == ENOMEM ? KF_ERR_NOMEM : KF_ERR_IO, path, "%s", strerror(e));
    }
    size_t cap = 1 << 16;
    if (sb.st_size >= 0 && (uint64_t)sb.st_size < SIZE_MAX - 16)
        cap = (size_t)sb.st_size + 1; /* +1: the read that sees EOF needs room */
    unsigned char *buf = malloc(cap);
    size_t len = 0;
    int st = KF_OK;
    while (buf) {
        if (len == cap) {
            unsigned char *b = cap > SIZE_MAX / 2 ? NULL : realloc(buf, cap * 2);
            if (!b) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = b, cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0)
            break;
    }
    if (!buf)
        st = fail(err, errlen, KF_ERR_NOMEM, path, "out of memory reading the file");
    else if (ferror(f))
        st = fail(err, errlen, KF_ERR_IO, path, "%s", strerror(errno ? errno : EIO));
    fclose(f);
    if (st) {
        free(buf);
        return st;
    }
    /* Parse in place: move the data to the front of the buffer and keep it
     * (malloc's alignment suits every element type), so a big file is never
     * held twice. */
    size_t off;
    int64_t row;
    st = parse_header(buf, len, len, path, a, &off, &row, err, errlen);
    if (st) {
        free(buf);
        memset(a, 0, sizeof *a);
        return st;
    }
    size_t bytes = len - off;
    memmove(buf, buf + off, bytes);
    unsigned char *shrunk = realloc(buf, bytes ? bytes : 16);
    a->data = shrunk ? shrunk : buf;
    return KF_OK;
}

/* Reads exactly n bytes at offset off (pread: the descriptor's position is
 * never used, so slices may be read in any order). */
static int pread_all(kfcli_npy_file *f, void *buf, size_t n, uint64_t off, char *err,
                     size_t errlen)
{
    unsigned char *p = buf;
    while (n > 0) {
        size_t want = n < ((size_t)1 << 30) ? n : (size_t)1 << 30;
        ssize_t got = pread(f->fd, p, want, (off_t)off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            return fail(err, errlen, KF_ERR_IO, f->path, "%s", strerror(errno));
        if (got == 0) /* the header said more: the file shrank since it was opened */
            return fail(err, errlen, KF_ERR_ARG, f->path,
                        "truncated .npy file: no data at byte %llu (the file changed since it "
                        "was opened?)", (unsigned long long)off);
        p += got, n -= (size_t)got, off += (uint64_t)got;
    }
    return KF_OK;
}

int kfcli_npy_open(const char *path, kfcli_npy_file *f, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    f->fd = -1;
    int fd;
    struct stat sb;
    int st = open_regular(path, &fd, &sb, err, errlen);
    if (st)
        return st;
    f->fd = fd, f->path = path;
    if (sb.st_size < 0 || (uint64_t)sb.st_size > SIZE_MAX) {
        kfcli_npy_close(f);
        return fail(err, errlen, KF_ERR_ARG, path, "file size %lld cannot be addressed",
                    (long long)sb.st_size);
    }
    size_t total = (size_t)sb.st_size;
    /* The preamble and the longest header accepted; parse_header checks the
     * rest against the file's size. */
    size_t len = total < 12 + KFCLI_NPY_MAX_HEADER ? total : 12 + KFCLI_NPY_MAX_HEADER;
    unsigned char *buf = malloc(len ? len : 1);
    if (!buf) {
        kfcli_npy_close(f);
        return fail(err, errlen, KF_ERR_NOMEM, path, "out of memory for the header");
    }
    st = pread_all(f, buf, len, 0, err, errlen);
    kfcli_npy a;
    size_t off = 0;
    int64_t row = 0;
    if (st == KF_OK)
        st = parse_header(buf, len, total, path, &a, &off, &row, err, errlen);
    free(buf);
    if (st) {
        kfcli_npy_close(f);
        return st;
    }
    f->type = a.type, f->ndim = a.ndim, f->count = a.count;
    f->shape[0] = a.shape[0], f->shape[1] = a.shape[1];
    f->data_off = off;
    f->row_bytes = row; /* checked by parse_header even when shape[0] is 0 */
    return KF_OK;
}

int kfcli_npy_read_rows(kfcli_npy_file *f, int64_t r0, int64_t r1, void *out, char *err,
                        size_t errlen)
{
    const char *name = f->path ? f->path : "(npy)";
    if (f->fd < 0)
        return fail(err, errlen, KF_ERR_ARG, name, "not open");
    if (f->ndim == 0)
        return fail(err, errlen, KF_ERR_ARG, name, "'shape' () has no rows to read");
    if (r0 < 0 || r1 < r0 || r1 > f->shape[0])
        return fail(err, errlen, KF_ERR_ARG, name,
                    "rows [%lld, %lld) are not a slice of the %lld rows", (long long)r0,
                    (long long)r1, (long long)f->shape[0]);
    int64_t at, bytes;
    uint64_t off;
    if (__builtin_mul_overflow(r0, f->row_bytes, &at) ||
        __builtin_mul_overflow(r1 - r0, f->row_bytes, &bytes) || (uint64_t)bytes > SIZE_MAX ||
        __builtin_add_overflow((uint64_t)at, f->data_off, &off) || off > (uint64_t)INT64_MAX ||
        (uint64_t)bytes > (uint64_t)INT64_MAX - off)
        return fail(err, errlen, KF_ERR_ARG, name,
                    "rows [%lld, %lld) of %lld bytes overflow the file offsets", (long long)r0,
                    (long long)r1, (long long)f->row_bytes);
    if (bytes == 0)
        return KF_OK;
    if (!out)
        return fail(err, errlen, KF_ERR_ARG, name, "no buffer for %lld bytes", (long long)bytes);
    return pread_all(f, out, (size_t)bytes, off, err, errlen);
}

void kfcli_npy_close(kfcli_npy_file *f)
{
    if (!f)
        return;
    if (f->fd >= 0)
        close(f->fd);
    memset(f, 0, sizeof *f);
    f->fd = -1;
}

size_t kfcli_npy_header(const kfcli_npy *a, char *hdr, size_t cap)
{
    char dict[160];
    int n;
    if (a->ndim == 0)
        n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (), }",
                     kfcli_npy_descr(a->type));
    else if (a->ndim == 1)
        n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%lld,), }",
                     kfcli_npy_descr(a->type), (long long)a->shape[0]);
    else
        n = snprintf(dict, sizeof dict,
                     "{'descr': '%s', 'fortran_order': False, 'shape': (%lld, %lld), }",
                     kfcli_npy_descr(a->type), (long long)a->shape[0], (long long)a->shape[1]);
    if (n < 0 || (size_t)n >= sizeof dict)
        return 0;
    size_t total = (10 + (size_t)n + 1 + 63) / 64 * 64; /* preamble + dict + '\n', padded */
    if (total > cap || total - 10 > 0xffff)
        return 0;
    size_t hlen = total - 10;
    memcpy(hdr, npy_magic, 6);
    hdr[6] = 1, hdr[7] = 0;
    hdr[8] = (char)(hlen & 0xff), hdr[9] = (char)(hlen >> 8);
    memcpy(hdr + 10, dict, (size_t)n);
    memset(hdr + 10 + n, ' ', total - 10 - (size_t)n - 1);
    hdr[total - 1] = '\n';
    return total;
}

/* The directory part of path including its '/', or "" (malloc'd). */
static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) + 1 : 0;
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, path, n);
        d[n] = 0;
    }
    return d;
}

/* The directory part of path resolved (links, "..", "./"), then the last
 * component: two names of one file to be written compare equal, whether it
 * exists yet or not. NULL when the directory cannot be resolved. */
static char *resolved_name(const char *path)
{
    char *dir = dir_of(path);
    if (!dir)
        return NULL;
    char *real = realpath(*dir ? dir : ".", NULL);
    free(dir);
    if (!real)
        return NULL;
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t n = strlen(real) + strlen(base) + 2;
    char *out = malloc(n);
    if (out)
        snprintf(out, n, "%s/%s", real, base);
    free(real);
    return out;
}

int kfcli_same_output(const char *a, const char *b)
{
    if (!strcmp(a, b))
        return 1;
    struct stat sa, sb;
    /* Both exist: the same inode is the same file (hard links included). */
    if (stat(a, &sa) == 0 && stat(b, &sb) == 0)
        return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
    char *ra = resolved_name(a), *rb = resolved_name(b);
    int same = ra && rb && !strcmp(ra, rb);
    free(ra);
    free(rb);
    return same;
}

int kfcli_npy_stage(const char *path, const kfcli_npy *a, char **tmp, char *err, size_t errlen)
{
    *tmp = NULL;
    struct stat sb;
    /* rename() would replace a device or directory entry (think -o /dev/null as root). */
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
        return fail(err, errlen, KF_ERR_IO, path, "exists and is not a regular file");
    char hdr[256];
    size_t hl = kfcli_npy_header(a, hdr, sizeof hdr);
    if (!hl)
        return fail(err, errlen, KF_ERR_ARG, path, "array shape cannot be written");
    char *dir = dir_of(path);
    size_t tn = dir ? strlen(dir) + 32 : 0;
    char *name = dir ? malloc(tn) : NULL;
    if (!name) {
        free(dir);
        return fail(err, errlen, KF_ERR_NOMEM, path, "out of memory");
    }
    snprintf(name, tn, "%s.kforge-tmp-XXXXXX", dir);
    free(dir);
    int fd = mkstemp(name);
    if (fd < 0) {
        int e = errno;
        free(name);
        return fail(err, errlen, KF_ERR_IO, path, "cannot create a temporary file: %s", strerror(e));
    }
    mode_t um = umask(0); /* mkstemp makes 0600; give the file the usual 0666 & ~umask */
    umask(um);
    if (fchmod(fd, 0666 & ~um) != 0) {
        /* Not fatal: the file is merely private. */
    }
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        int e = errno;
        close(fd);
        unlink(name);
        free(name);
        return fail(err, errlen, KF_ERR_IO, path, "%s", strerror(e));
    }
    size_t bytes = (size_t)a->count * kfcli_npy_elsize(a->type);
    int ok = fwrite(hdr, 1, hl, f) == hl;
    if (ok && bytes)
        ok = fwrite(a->data, 1, bytes, f) == bytes;
    int e = errno;
    if (fclose(f) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    if (!ok) {
        unlink(name);
        free(name);
        return fail(err, errlen, KF_ERR_IO, path, "write failed: %s", strerror(e ? e : EIO));
    }
    *tmp = name;
    return KF_OK;
}

int kfcli_npy_commit(char *tmp, const char *path, int commit, char *err, size_t errlen)
{
    if (!tmp)
        return KF_OK;
    int st = KF_OK;
    if (commit && rename(tmp, path) != 0)
        st = fail(err, errlen, KF_ERR_IO, path, "%s", strerror(errno));
    if (!commit || st)
        unlink(tmp);
    free(tmp);
    return st;
}

int kfcli_npy_write(const char *path, const kfcli_npy *a, char *err, size_t errlen)
{
    char *tmp;
    int st = kfcli_npy_stage(path, a, &tmp, err, errlen);
    return st ? st : kfcli_npy_commit(tmp, path, 1, err, errlen);
}
