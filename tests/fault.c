/* fault.c -- allocation-failure injection for the test binary (linked with
 * -Wl,--wrap=malloc,calloc,realloc): kft_fail_after(n) makes the allocation
 * after the next n succeed fail, once; kft_fail_after(-1) disarms. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "harness.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);

static int64_t countdown = -1; /* allocations left before the failing one; -1: off */
static int64_t failures;

void kft_fail_after(int64_t n)
{
    countdown = n;
}

int64_t kft_failures(void)
{
    return failures;
}

/* Nonzero if this allocation must fail. Tests that use this run on one thread
 * (the pool's workers allocate nothing), so a plain counter is enough. */
static int should_fail(void)
{
    if (countdown < 0)
        return 0;
    if (countdown-- > 0)
        return 0;
    failures++;
    errno = ENOMEM; /* as a real failing malloc does: callers may read it */
    return 1;
}

void *__wrap_malloc(size_t n)
{
    return should_fail() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t k, size_t n)
{
    return should_fail() ? NULL : __real_calloc(k, n);
}

void *__wrap_realloc(void *p, size_t n)
{
    return should_fail() ? NULL : __real_realloc(p, n);
}
