/*
 * fma.c -- the machine's vector FMA throughput, for `make bench`'s "limit"
 * row: how many vector fused multiply-adds per second the cores retire when
 * nothing else stands in the way (independent chains, all in registers).
 * Built like the other baselines (-O3 -march=native), so its vectors are the
 * widest the compiler is allowed here: 512 bits with AVX-512 (GCC is told to
 * prefer them below), else 256.
 *
 *   baseline_fma [THREADS [SECONDS]]
 *
 * Prints one line: "RATE vfma/s BITS-bit THREADS threads" (RATE for all
 * threads together).
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if defined(__AVX512F__)
#pragma GCC target("prefer-vector-width=512")
#define BYTES 64
#else
#define BYTES 32
#endif
typedef float vf __attribute__((vector_size(BYTES)));

/* More independent chains than FMA latency x issue width (4 cycles x 2 on
 * current cores), so the units, not the chains, are the limit. */
enum { CHAINS = 12, MAX_THREADS = 256 };

typedef struct work {
    long long iters;
    float sink;
} work;

static void *spin(void *p)
{
    work *w = p;
    vf acc[CHAINS], m, a;
    for (int q = 0; q < CHAINS; q++)
        acc[q] = (vf){0} + (float)q;
    m = (vf){0} + 0.999999f;
    a = (vf){0} + 1e-7f;
    for (long long i = 0; i < w->iters; i++) {
        for (int q = 0; q < CHAINS; q++)
            acc[q] = acc[q] * m + a; /* one FMA each (contracted) */
        __asm__ volatile("" : "+x"(m)); /* m is not loop-invariant to the compiler */
    }
    float s = 0;
    for (int q = 0; q < CHAINS; q++)
        for (int l = 0; l < BYTES / 4; l++)
            s += acc[q][l];
    w->sink = s;
    return NULL;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    double seconds = argc > 2 ? atof(argv[2]) : 0.5;
    if (threads < 1 || threads > MAX_THREADS || !(seconds > 0 && seconds < 100)) {
        fprintf(stderr, "usage: baseline_fma [THREADS (1..%d) [SECONDS]]\n", MAX_THREADS);
        return 2;
    }
    /* Calibrate on one thread, then run all of them for about `seconds`. */
    work w[MAX_THREADS];
    long long iters = 1 << 20;
    for (;;) {
        w[0].iters = iters;
        double t0 = now();
        spin(&w[0]);
        double t = now() - t0;
        if (t > 0.05) {
            iters = (long long)((double)iters * seconds / t);
            break;
        }
        iters *= 4;
    }
    pthread_t th[MAX_THREADS];
    double t0 = now();
    for (int q = 0; q < threads; q++) {
        w[q].iters = iters;
        if (pthread_create(&th[q], NULL, spin, &w[q]) != 0) {
            fprintf(stderr, "baseline_fma: cannot start thread %d\n", q);
            return 1;
        }
    }
    float sink = 0;
    for (int q = 0; q < threads; q++) {
        pthread_join(th[q], NULL);
        sink += w[q].sink;
    }
    double t = now() - t0;
    printf("%.4g vfma/s %d-bit %d threads (sink %g)\n", (double)iters * CHAINS * threads / t,
           BYTES * 8, threads, (double)sink);
    return 0;
}
