/*
 * gauss.c -- the baseline `make bench` compares with: the tutorial's Gaussian
 * kernel sum a_i = sum_j exp(-|x_i - y_j|^2 / 2) b_j (D = 3) written by hand
 * the way a careful user would: rows split over pthreads, the inner loop a
 * plain C loop calling libm's expf/exp on the arrays as they come (x (M,3),
 * y (N,3), b (N), row-major). The Makefile builds it with
 * `-O3 -march=native -ffast-math`, which lets GCC vectorize the loop with
 * libmvec's vector exp (_ZGVdN8v_expf / _ZGVdN4v_exp on AVX2): the fastest
 * a user gets without writing their own exp.
 *
 *   baseline_gauss M [N [float32|float64 [THREADS [REPEAT]]]]
 *
 * Prints one line: "NS ns/pair (median of REPEAT; min NS) gauss DTYPE M=.. N=.. threads=..
 * checksum X". Inputs are uniform in [-1, 1) from splitmix64 (seed 1), like kforge bench.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { D = 3, MAX_THREADS = 64 };

typedef struct job {
    int f32;
    long long r0, r1, N;
    const void *x, *y, *b;
    void *out;
} job;

static void rows_f32(const job *jb)
{
    const float *x = jb->x, *y = jb->y, *b = jb->b;
    float *out = jb->out;
    for (long long i = jb->r0; i < jb->r1; i++) {
        float x0 = x[D * i], x1 = x[D * i + 1], x2 = x[D * i + 2], acc = 0;
        for (long long j = 0; j < jb->N; j++) {
            float d0 = x0 - y[D * j], d1 = x1 - y[D * j + 1], d2 = x2 - y[D * j + 2];
            acc += expf(-0.5f * (d0 * d0 + d1 * d1 + d2 * d2)) * b[j];
        }
        out[i] = acc;
    }
}

static void rows_f64(const job *jb)
{
    const double *x = jb->x, *y = jb->y, *b = jb->b;
    double *out = jb->out;
    for (long long i = jb->r0; i < jb->r1; i++) {
        double x0 = x[D * i], x1 = x[D * i + 1], x2 = x[D * i + 2], acc = 0;
        for (long long j = 0; j < jb->N; j++) {
            double d0 = x0 - y[D * j], d1 = x1 - y[D * j + 1], d2 = x2 - y[D * j + 2];
            acc += exp(-0.5 * (d0 * d0 + d1 * d1 + d2 * d2)) * b[j];
        }
        out[i] = acc;
    }
}

static void *worker(void *arg)
{
    job *jb = arg;
    if (jb->f32)
        rows_f32(jb);
    else
        rows_f64(jb);
    return NULL;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double uniform(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (double)((z ^ (z >> 31)) >> 11) * 0x1p-52 - 1.0;
}

static void *random_array(long long n, int f32, uint64_t *seed)
{
    void *a = malloc((size_t)(n > 0 ? n : 1) * (f32 ? 4 : 8));
    for (long long k = 0; a && k < n; k++) {
        if (f32)
            ((float *)a)[k] = (float)uniform(seed);
        else
            ((double *)a)[k] = uniform(seed);
    }
    return a;
}

static int cmp_double(const void *p, const void *q)
{
    double a = *(const double *)p, b = *(const double *)q;
    return (a > b) - (a < b);
}

static long long arg_ll(const char *s, long long lo, long long hi, const char *what)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || v < lo || v > hi) {
        fprintf(stderr, "baseline_gauss: %s must be an integer from %lld to %lld, not '%s'\n", what,
                lo, hi, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 6) {
        fputs("usage: baseline_gauss M [N [float32|float64 [THREADS [REPEAT]]]]\n", stderr);
        return 2;
    }
    long long M = arg_ll(argv[1], 1, 100000000, "M");
    long long N = argc > 2 ? arg_ll(argv[2], 1, 100000000, "N") : M;
    int f32 = 1;
    if (argc > 3) {
        if (strcmp(argv[3], "float32") && strcmp(argv[3], "float64")) {
            fprintf(stderr, "baseline_gauss: dtype must be float32 or float64, not '%s'\n", argv[3]);
            return 2;
        }
        f32 = !strcmp(argv[3], "float32");
    }
    int threads = argc > 4 ? (int)arg_ll(argv[4], 1, MAX_THREADS, "THREADS") : 2;
    int repeat = argc > 5 ? (int)arg_ll(argv[5], 1, 1000, "REPEAT") : 3;

    uint64_t seed = 1;
    void *x = random_array(M * D, f32, &seed), *y = random_array(N * D, f32, &seed);
    void *b = random_array(N, f32, &seed), *out = random_array(M, f32, &seed);
    double *times = malloc(sizeof *times * (size_t)repeat);
    if (!x || !y || !b || !out || !times) {
        fputs("baseline_gauss: out of memory\n", stderr);
        return 1;
    }
    job jobs[MAX_THREADS];
    pthread_t th[MAX_THREADS];
    for (int r = 0; r < repeat; r++) {
        double t0 = now();
        for (int t = 0; t < threads; t++) {
            jobs[t] = (job){f32, M * t / threads, M * (t + 1) / threads, N, x, y, b, out};
            if (pthread_create(&th[t], NULL, worker, &jobs[t])) {
                fputs("baseline_gauss: cannot start a thread\n", stderr);
                return 1;
            }
        }
        for (int t = 0; t < threads; t++)
            pthread_join(th[t], NULL);
        times[r] = now() - t0;
    }
    qsort(times, (size_t)repeat, sizeof *times, cmp_double);
    double med = repeat % 2 ? times[repeat / 2] : 0.5 * (times[repeat / 2 - 1] + times[repeat / 2]);
    double pairs = (double)M * (double)N, check = 0;
    for (long long i = 0; i < M; i++)
        check += f32 ? ((float *)out)[i] : ((double *)out)[i];
    printf("%.4f ns/pair (median of %d; min %.4f) gauss %s M=%lld N=%lld threads=%d checksum %.9g\n",
           1e9 * med / pairs, repeat, 1e9 * times[0] / pairs, f32 ? "float32" : "float64", M, N,
           threads, check);
    free(x);
    free(y);
    free(b);
    free(out);
    free(times);
    return 0;
}
