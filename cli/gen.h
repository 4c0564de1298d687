/*
 * gen.h -- the point clouds of the scipy-eigsh tutorial, generated from a seed:
 * `kforge eigsh --gen spiral:N[:SEED]` and `--gen swissroll:N[:SEED]`, and
 * the examples and benches (linked with libkforge-cli.a, so all make the same clouds).
 *
 * With t_k = 2 pi k / N (numpy's linspace(0, 2 pi, N + 1)[:-1]) and e ~ N(0, 1):
 *   spiral (2-D):     (0.4 + 0.4 (t/7) cos t,        0.5 + 0.3 sin t)            + 0.01 e
 *   swissroll (3-D):  (0.4 + 0.4 (t/7) cos 1.5t,  0.1 + 0.8 u,  0.5 + 0.3 (t/7) sin 1.5t)
 *                                                                                 + 0.01 e
 * with u ~ U(0, 1). The random numbers come from xoshiro256** seeded by
 * splitmix64 (normals by Box-Muller), drawn point by point in coordinate order
 * (the Swiss roll draws u first), so a (kind, N, SEED) triple always gives the
 * same float64 cloud on every machine with an IEEE libm; float32 is its cast.
 */
#ifndef KF_CLI_GEN_H
#define KF_CLI_GEN_H

#include <stddef.h>
#include <stdint.h>

typedef enum kfcli_gen_kind {
    KFCLI_GEN_SPIRAL = 0,   /* 2-D noisy spiral */
    KFCLI_GEN_SWISSROLL = 1 /* 3-D noisy Swiss roll */
} kfcli_gen_kind;

/* Largest N a generator accepts (1e8 points of dim 3 are 2.4 GB of float64). */
#define KFCLI_GEN_MAX_N 100000000
/* The seed when the spec gives none. */
#define KFCLI_GEN_DEFAULT_SEED 1

typedef struct kfcli_gen {
    kfcli_gen_kind kind;
    int64_t n;     /* points, 1..KFCLI_GEN_MAX_N */
    uint64_t seed;
} kfcli_gen;

/* Parses "spiral:N[:SEED]" or "swissroll:N[:SEED]" (N, SEED decimal).
 * Returns 0, or -1 with a message in err (always NUL-terminated). */
int kfcli_gen_parse(const char *spec, kfcli_gen *g, char *err, size_t errlen);
/* The dimension of the points of a kind (2 or 3). */
int kfcli_gen_dim(kfcli_gen_kind kind);
/* The name of a kind ("spiral", "swissroll"). */
const char *kfcli_gen_name(kfcli_gen_kind kind);
/* Writes the g->n points, row-major (n, dim) float64, into x. */
void kfcli_gen_points(const kfcli_gen *g, double *x);

/* The block-sparse tutorial's clouds in float32 (examples/block_sparse.c,
 * bench/blocksparse.c): x (M, 2) the spiral above from `seed`; from seed + 1,
 * point by point, y (N, 2) a Gaussian blob around (0.6, 0.6) with standard
 * deviation 0.1 and, if b is not NULL, b[k] a standard normal signal. */
void kfcli_gen_tutorial_clouds(uint64_t seed, float *x, int64_t M, float *y, float *b, int64_t N);
/* n values uniform in (0, 1) / standard normal, float32, from seed. */
void kfcli_gen_uniform_f32(uint64_t seed, float *x, int64_t n);
void kfcli_gen_normal_f32(uint64_t seed, float *x, int64_t n);

#endif
