/* pool.c -- persistent worker threads that share out numbered tasks of one job at a time. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "runtime/rt.h"

/* Generated kernels keep per-pair scratch (up to KFC_MAX_TOTAL_DIM values,
 * about 0.5 MiB of doubles) plus the reference evaluator's frames on the
 * stack; 16 MiB leaves a wide margin whatever the platform default is. */
#define KFR_WORKER_STACK ((size_t)16 << 20)

/* One job at a time: kfr_pool_run publishes (task, arg, ntasks), bumps `gen`
 * and wakes everyone; workers claim task numbers from the atomic `next` until
 * they run out, then report in through `busy`. The caller only waits, so the
 * tasks always run on the workers' large stacks. */
struct kfr_pool {
    int nthreads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake; /* workers wait here for a new generation or stop */
    pthread_cond_t done; /* the caller waits here for busy == 0 */
    uint64_t gen;        /* job generation; guarded by mu */
    int stop;            /* guarded by mu */
    int busy;            /* workers not yet finished with the current job; guarded by mu */
    void (*task)(void *arg, int64_t t);
    void *arg;
    int64_t ntasks;
    atomic_int_fast64_t next; /* next unclaimed task number */
};

static void *worker(void *vp)
{
    kfr_pool *p = vp;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->gen == seen && !p->stop)
            pthread_cond_wait(&p->wake, &p->mu);
        if (p->stop)
            break;
        seen = p->gen;
        void (*task)(void *, int64_t) = p->task;
        void *arg = p->arg;
        int64_t ntasks = p->ntasks;
        pthread_mutex_unlock(&p->mu);
        for (int64_t t; (t = atomic_fetch_add(&p->next, 1)) < ntasks;)
            task(arg, t);
        pthread_mutex_lock(&p->mu);
        if (--p->busy == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

/* Stops and joins the first n workers. */
static void stop_workers(kfr_pool *p, int n)
{
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int k = 0; k < n; k++)
        pthread_join(p->threads[k], NULL);
}

kfr_pool *kfr_pool_new(int nthreads)
{
    if (nthreads < 1)
        nthreads = 1;
    kfr_pool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->threads = calloc((size_t)nthreads, sizeof *p->threads);
    if (!p->threads) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->next, 0);
    pthread_attr_t attr;
    int ok = pthread_attr_init(&attr) == 0;
    if (ok)
        ok = pthread_attr_setstacksize(&attr, KFR_WORKER_STACK) == 0;
    int started = 0;
    while (ok && started < nthreads) {
        if (pthread_create(&p->threads[started], &attr, worker, p) != 0)
            ok = 0;
        else
            started++;
    }
    pthread_attr_destroy(&attr);
    p->nthreads = started;
    if (!ok) {
        stop_workers(p, started);
        kfr_pool_free(p);
        return NULL;
    }
    return p;
}

void kfr_pool_free(kfr_pool *p)
{
    if (!p)
        return;
    if (!p->stop)
        stop_workers(p, p->nthreads);
    pthread_cond_destroy(&p->done);
    pthread_cond_destroy(&p->wake);
    pthread_mutex_destroy(&p->mu);
    free(p->threads);
    free(p);
}

void kfr_pool_run(kfr_pool *p, int64_t ntasks, void (*task)(void *arg, int64_t t), void *arg)
{
    if (ntasks <= 0)
        return;
    pthread_mutex_lock(&p->mu);
    p->task = task;
    p->arg = arg;
    p->ntasks = ntasks;
    atomic_store(&p->next, 0);
    p->busy = p->nthreads;
    p->gen++;
    pthread_cond_broadcast(&p->wake);
    while (p->busy > 0)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

int kfr_pool_threads(const kfr_pool *p)
{
    return p ? p->nthreads : 0;
}

int kfr_cpu_count(void)
{
    /* The cores this process may run on (taskset, cgroups cpusets), which can
     * be fewer than the machine's online cores. */
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int n = CPU_COUNT(&set);
        if (n >= 1)
            return n;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        return 1;
    return n > 1024 ? 1024 : (int)n;
}
