/*
 * harness.h -- the test runner's tiny API. Tests register themselves:
 *
 *     KFT_TEST(parse_precedence) { KFT_CHECK(1 + 1 == 2); }
 *
 * A test passes when none of its checks failed. `kforge-tests [SUBSTRING]`
 * runs the tests whose names contain SUBSTRING and ends with the line
 * "N passed, N failed". Tests run from the repository root (golden files are
 * read from tests/golden/).
 */
#ifndef KF_TESTS_HARNESS_H
#define KF_TESTS_HARNESS_H

#include <stdio.h>

typedef void (*kft_fn)(void);
void kft_register(const char *name, kft_fn fn);
/* Records one check; prints file:line and the expression (plus the optional
 * printf-style detail) when it fails. Returns ok. */
int kft_check(int ok, const char *file, int line, const char *expr, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#define KFT_TEST(name)                                                                             \
    static void name(void);                                                                        \
    __attribute__((constructor)) static void name##_register(void) { kft_register(#name, name); } \
    static void name(void)

#define KFT_CHECK(cond) kft_check(!!(cond), __FILE__, __LINE__, #cond, NULL)
/* With a detail message printed on failure. */
#define KFT_CHECKF(cond, ...) kft_check(!!(cond), __FILE__, __LINE__, #cond, __VA_ARGS__)

/* Allocation-failure injection (tests/fault.c): the allocation after the next
 * n succeed returns NULL, once; n = -1 disarms. kft_failures() counts the
 * failures injected so far. */
#include <stdint.h>
void kft_fail_after(int64_t n);
int64_t kft_failures(void);

/* Reads a whole file into a malloc'd NUL-terminated string, or NULL. */
char *kft_read_file(const char *path);

#endif
