/*
 * harness.h -- the test runner's tiny API. Tests register themselves, with
 * the file they are in:
 *
 *     KFT_TEST(parse_precedence) { KFT_CHECK(1 + 1 == 2); }
 *
 * A test passes when at least one check ran and none failed; it is skipped
 * when it called kft_skip (KFT_SKIP) and no check failed; otherwise it failed.
 * A test that runs no check and does not skip counts as a failure: a test
 * that cannot run says why with KFT_SKIP instead of returning early.
 *
 * `kforge-tests [SUBSTRING]` runs the tests whose names contain SUBSTRING,
 * each test file in its own child process (sequentially, files in name
 * order, tests in name order within a file): a child that dies by a signal
 * or exits abnormally is reported as
 *     CRASH tests/t_x.c: killed by signal 11 (Segmentation fault) (in test T)
 * and counted as one failure, and the other files still run. A test's own
 * output (its prints, the library's log, expected-error messages) is captured
 * and shown only if it fails or its process crashes, so a passing run prints
 * the SKIP lines (`SKIP name: reason`, once per skipped test), the FAIL lines
 * and the closing line "N passed, N failed, N skipped". KFT_VERBOSE=1 shows
 * every test's output as it runs, with a RUN line before each test. Exit
 * status 1 if anything failed or crashed. Tests run from the repository root
 * (golden files are read from tests/golden/).
 */
#ifndef KF_TESTS_HARNESS_H
#define KF_TESTS_HARNESS_H

#include <stdio.h>

typedef void (*kft_fn)(void);
void kft_register(const char *file, const char *name, kft_fn fn);
/* Records one check; prints file:line and the expression (plus the optional
 * printf-style detail) when it fails. Returns ok. */
int kft_check(int ok, const char *file, int line, const char *expr, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Marks the running test skipped, with a printf-style reason (one line, no
 * newline); the harness prints "SKIP name: reason" once when the test ends.
 * Usable from helpers; the test should then return without doing its work.
 * A check that fails in a skipped test still makes it a failure. */
void kft_skip(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define KFT_TEST(name)                                                                             \
    static void name(void);                                                                        \
    __attribute__((constructor)) static void name##_register(void)                                 \
    {                                                                                              \
        kft_register(__FILE__, #name, name);                                                       \
    }                                                                                              \
    static void name(void)

#define KFT_CHECK(cond) kft_check(!!(cond), __FILE__, __LINE__, #cond, NULL)
/* With a detail message printed on failure. */
#define KFT_CHECKF(cond, ...) kft_check(!!(cond), __FILE__, __LINE__, #cond, __VA_ARGS__)
/* Ends the test (returns from the function it is written in) as skipped, with
 * the reason: KFT_SKIP("no GPU: %s", msg). Free what the test holds first. */
#define KFT_SKIP(...)                                                                              \
    do {                                                                                           \
        kft_skip(__VA_ARGS__);                                                                     \
        return;                                                                                    \
    } while (0)

/* Allocation-failure injection (tests/fault.c): the allocation after the next
 * n succeed returns NULL, once; n = -1 disarms. kft_failures() counts the
 * failures injected so far. */
#include <stdint.h>
void kft_fail_after(int64_t n);
int64_t kft_failures(void);

/* Reads a whole file into a malloc'd NUL-terminated string, or NULL. */
char *kft_read_file(const char *path);

#endif
