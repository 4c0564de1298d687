/* harness.c -- registers and runs the tests; prints "N passed, N failed". */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define KFT_MAX_TESTS 4096

static struct {
    const char *name;
    kft_fn fn;
} tests[KFT_MAX_TESTS];
static int ntests;
static int current_failed;

void kft_register(const char *name, kft_fn fn)
{
    if (ntests < KFT_MAX_TESTS)
        tests[ntests].name = name, tests[ntests].fn = fn, ntests++;
}

int kft_check(int ok, const char *file, int line, const char *expr, const char *fmt, ...)
{
    if (ok)
        return 1;
    current_failed++;
    fprintf(stderr, "  %s:%d: check failed: %s", file, line, expr);
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        fputs(": ", stderr);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
    }
    fputc('\n', stderr);
    return 0;
}

char *kft_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    size_t got;
    while (buf && (got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0) {
            char *b = realloc(buf, cap * 2);
            if (!b)
                free(buf);
            buf = b;
            cap *= 2;
        }
    }
    fclose(f);
    if (buf)
        buf[n] = 0;
    return buf;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const typeof(tests[0]) *)a)->name, ((const typeof(tests[0]) *)b)->name);
}

int main(int argc, char **argv)
{
    const char *filter = argc > 1 ? argv[1] : NULL;
    int verbose = getenv("KFT_VERBOSE") != NULL;
    int passed = 0, failed = 0;
    qsort(tests, (size_t)ntests, sizeof tests[0], by_name);
    for (int t = 0; t < ntests; t++) {
        if (filter && !strstr(tests[t].name, filter))
            continue;
        current_failed = 0;
        if (verbose)
            fprintf(stderr, "RUN  %s\n", tests[t].name);
        tests[t].fn();
        if (current_failed) {
            fprintf(stderr, "FAIL %s (%d checks failed)\n", tests[t].name, current_failed);
            failed++;
        } else {
            passed++;
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
