/*
 * so_time.c -- times kernel objects (kf_reduce, kernels/abi.h) dlopen'ed directly, alternated
 * in one process, so two builds of one kernel.c (say with and without a compiler flag) are
 * compared on the same inputs within one run. Single thread, dense (one j range), every
 * variable array of N x 64 random values in [0, 1) (enough for any dim up to 64), outputs
 * and indices of N x 64. Prints the best of REPS per object, in ns per pair. Not part of
 * make bench: a probe (docs/performance.md, "the limit of float64").
 *   cc -O2 bench/probes/so_time.c -o so_time -ldl
 *   ./so_time N float32|float64 REPS A.so B.so ...
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef void (*reduce_fn)(const void *const *args, int64_t r0, int64_t r1, const int64_t *jr,
                          int64_t nr, void *out, int64_t *idx);

enum { MAX_OBJ = 8, MAX_VARS = 8, WIDTH = 64 };

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

int main(int argc, char **argv)
{
    if (argc < 5 || argc - 4 > MAX_OBJ) {
        fprintf(stderr, "usage: so_time N float32|float64 REPS A.so [B.so ...] (at most %d)\n",
                MAX_OBJ);
        return 2;
    }
    int64_t n = atoll(argv[1]);
    int f32 = strcmp(argv[2], "float32") == 0;
    int reps = atoi(argv[3]);
    if (n <= 0 || n > 1000000 || reps <= 0 || (!f32 && strcmp(argv[2], "float64") != 0)) {
        fprintf(stderr, "so_time: N in [1, 1e6], a dtype, REPS > 0\n");
        return 2;
    }
    size_t cnt = (size_t)n * WIDTH, es = f32 ? sizeof(float) : sizeof(double);
    void *vars[MAX_VARS];
    srand(1);
    for (int v = 0; v < MAX_VARS; v++) {
        if (!(vars[v] = malloc(cnt * es)))
            return 1;
        for (size_t i = 0; i < cnt; i++) {
            double r = rand() / (double)RAND_MAX;
            if (f32)
                ((float *)vars[v])[i] = (float)r;
            else
                ((double *)vars[v])[i] = r;
        }
    }
    void *out = malloc(cnt * es);
    int64_t *idx = malloc(cnt * sizeof *idx);
    if (!out || !idx)
        return 1;
    int nobj = argc - 4;
    reduce_fn fn[MAX_OBJ];
    double best[MAX_OBJ];
    for (int k = 0; k < nobj; k++) {
        void *h = dlopen(argv[4 + k], RTLD_NOW | RTLD_LOCAL);
        if (!h || !(fn[k] = (reduce_fn)dlsym(h, "kf_reduce"))) {
            fprintf(stderr, "so_time: %s: %s\n", argv[4 + k], dlerror());
            return 1;
        }
        best[k] = 1e300;
    }
    const void *const *args = (const void *const *)vars;
    int64_t jr[2] = {0, n};
    for (int r = 0; r < reps; r++)
        for (int k = 0; k < nobj; k++) {
            double t = now();
            fn[k](args, 0, n, jr, 1, out, idx);
            t = now() - t;
            if (t < best[k])
                best[k] = t;
        }
    for (int k = 0; k < nobj; k++)
        printf("%s %.4f ns/pair\n", argv[4 + k], best[k] * 1e9 / ((double)n * n));
    return 0;
}
