/* t_pool.c -- the thread pool: every task exactly once, on workers, with large stacks, reusable. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/rt.h"
#include "harness.h"

typedef struct count_job {
    atomic_int *hits;
    pthread_t caller;
    atomic_int on_caller;
} count_job;

static void count_task(void *vp, int64_t t)
{
    count_job *j = vp;
    atomic_fetch_add(&j->hits[t], 1);
    if (pthread_equal(pthread_self(), j->caller))
        atomic_fetch_add(&j->on_caller, 1);
}

/* Runs ntasks counting tasks on a pool of nthreads; 1 if each ran once, off the caller. */
static int each_once(kfr_pool *p, int64_t ntasks)
{
    atomic_int *hits = calloc((size_t)ntasks + 1, sizeof *hits);
    if (!hits)
        return 0;
    count_job j = {hits, pthread_self(), 0};
    kfr_pool_run(p, ntasks, count_task, &j);
    int ok = atomic_load(&j.on_caller) == 0;
    for (int64_t t = 0; t < ntasks; t++)
        ok &= atomic_load(&hits[t]) == 1;
    ok &= atomic_load(&hits[ntasks]) == 0; /* nothing past the end */
    free(hits);
    return ok;
}

KFT_TEST(pool_each_task_once)
{
    for (int n = 1; n <= 3; n++) {
        kfr_pool *p = kfr_pool_new(n);
        KFT_CHECK(p != NULL);
        if (!p)
            continue;
        KFT_CHECKF(kfr_pool_threads(p) == n, "threads %d", n);
        const int64_t sizes[] = {0, 1, 2, 3, 7, 1000};
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
            KFT_CHECKF(each_once(p, sizes[s]), "threads %d, %lld tasks", n, (long long)sizes[s]);
        kfr_pool_free(p);
    }
}

static void sum_task(void *vp, int64_t t)
{
    atomic_fetch_add((atomic_llong *)vp, (long long)t);
}

KFT_TEST(pool_many_jobs_reuse_workers)
{
    kfr_pool *p = kfr_pool_new(3);
    KFT_CHECK(p != NULL);
    if (!p)
        return;
    int ok = 1;
    for (int rep = 0; rep < 2000 && ok; rep++) {
        atomic_llong sum = 0;
        int64_t n = rep % 17;
        kfr_pool_run(p, n, sum_task, &sum);
        ok = atomic_load(&sum) == n * (n - 1) / 2;
    }
    KFT_CHECK(ok);
    kfr_pool_free(p);
}

/* Generated kernels keep up to about 1 MiB of scratch on the stack. */
static void deep_stack_task(void *vp, int64_t t)
{
    volatile char buf[2 << 20];
    buf[0] = (char)t;
    buf[sizeof buf - 1] = (char)t;
    memset((char *)buf + 4096, 1, 4096);
    if (buf[0] == (char)t && buf[sizeof buf - 1] == (char)t && buf[5000] == 1)
        atomic_fetch_add((atomic_int *)vp, 1);
}

KFT_TEST(pool_large_worker_stacks)
{
    kfr_pool *p = kfr_pool_new(2);
    KFT_CHECK(p != NULL);
    if (!p)
        return;
    atomic_int ok = 0;
    kfr_pool_run(p, 4, deep_stack_task, &ok);
    KFT_CHECK(atomic_load(&ok) == 4);
    kfr_pool_free(p);
}

KFT_TEST(pool_free_idle_and_null)
{
    kfr_pool_free(NULL);
    kfr_pool *p = kfr_pool_new(4);
    KFT_CHECK(p != NULL);
    kfr_pool_free(p); /* never ran a job: must still join cleanly */
    p = kfr_pool_new(0); /* clamped to one worker */
    KFT_CHECK(p != NULL && kfr_pool_threads(p) == 1);
    KFT_CHECK(each_once(p, 5));
    kfr_pool_free(p);
    KFT_CHECK(kfr_pool_threads(NULL) == 0);
}

KFT_TEST(pool_cpu_count)
{
    int n = kfr_cpu_count();
    KFT_CHECKF(n >= 1 && n <= 1024, "cpu count %d", n);
}
