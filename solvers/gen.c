/* gen.c -- kf_gen_*: the tutorials' point clouds (the spiral and the Swiss roll of the
 * scipy-eigsh tutorial, the block-sparse tutorial's spiral and blob) from a seed. The
 * formulas and the draw order are stated in kforge.h; tests/t_gen.c pins the values. */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "kforge.h"

/* xoshiro256** (Blackman and Vigna): fast, passes BigCrush, and its state is
 * a local struct, so generating is reentrant. */
typedef struct rng {
    uint64_t s[4];
} rng;

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static void rng_seed(rng *r, uint64_t seed)
{
    /* splitmix64 spreads any seed (0 included) over the state, which is then never all zero */
    for (int k = 0; k < 4; k++)
        r->s[k] = splitmix64(&seed);
}

static uint64_t rng_next(rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

/* Uniform in the open interval (0, 1): 53 random bits, never 0 (log below). */
static double rng_uniform(rng *r)
{
    return ((double)(rng_next(r) >> 11) + 0.5) * 0x1p-53;
}

/* One standard normal per call (Box-Muller's cosine half: simpler to keep the
 * draw order fixed than caching the sine half). */
static double rng_normal(rng *r)
{
    double u1 = rng_uniform(r), u2 = rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

/* The kinds' names, indexed by kf_gen_kind: what kf_gen_parse reads and kf_gen_name gives. */
static const char *const gen_names[] = {[KF_GEN_SPIRAL] = "spiral", [KF_GEN_SWISSROLL] = "swissroll"};
enum { NGEN = (int)(sizeof gen_names / sizeof gen_names[0]) };

int kf_gen_dim(kf_gen_kind kind)
{
    return kind == KF_GEN_SPIRAL ? 2 : 3;
}

const char *kf_gen_name(kf_gen_kind kind)
{
    return (int)kind >= 0 && (int)kind < NGEN ? gen_names[kind] : "?";
}

/* Point k of g's cloud into p (dim values), drawing from r in the documented order. */
static void gen_point(const kf_gen *g, rng *r, int64_t k, double *p)
{
    const double noise = 0.01;
    double t = 2.0 * M_PI * (double)k / (double)g->n;
    if (g->kind == KF_GEN_SPIRAL) {
        p[0] = 0.4 + 0.4 * (t / 7) * cos(t) + noise * rng_normal(r);
        p[1] = 0.5 + 0.3 * sin(t) + noise * rng_normal(r);
    } else {
        double u = rng_uniform(r);
        p[0] = 0.4 + 0.4 * (t / 7) * cos(1.5 * t) + noise * rng_normal(r);
        p[1] = 0.1 + 0.8 * u + noise * rng_normal(r);
        p[2] = 0.5 + 0.3 * (t / 7) * sin(1.5 * t) + noise * rng_normal(r);
    }
}

void kf_gen_points(const kf_gen *g, double *x)
{
    rng r;
    rng_seed(&r, g->seed);
    int d = kf_gen_dim(g->kind);
    for (int64_t k = 0; k < g->n; k++)
        gen_point(g, &r, k, x + d * k);
}

/* The draws of one point: two normals of two uniforms each (spiral), or a
 * uniform and three normals (Swiss roll). */
static int64_t draws_per_point(kf_gen_kind kind)
{
    return kind == KF_GEN_SPIRAL ? 4 : 7;
}

void kf_gen_points_rows(const kf_gen *g, int64_t r0, int64_t r1, double *x)
{
    rng r;
    rng_seed(&r, g->seed);
    int d = kf_gen_dim(g->kind);
    /* The stream up to point r0, skipped draw by draw (xoshiro has no jump by
     * an arbitrary count; 7e8 draws for 1e8 Swiss-roll points take about a
     * second), so row k is bit for bit kf_gen_points' row k. */
    int64_t draws = r0 * draws_per_point(g->kind);
    for (int64_t k = 0; k < draws; k++)
        (void)rng_next(&r);
    for (int64_t k = r0; k < r1; k++)
        gen_point(g, &r, k, x + d * (k - r0));
}

void kf_gen_points_at(const kf_gen *g, const int64_t *rows, int64_t m, double *x)
{
    rng r;
    rng_seed(&r, g->seed);
    int d = kf_gen_dim(g->kind);
    int64_t at = 0; /* the point the stream is at */
    for (int64_t q = 0; q < m; q++) {
        for (int64_t k = (rows[q] - at) * draws_per_point(g->kind); k > 0; k--)
            (void)rng_next(&r);
        gen_point(g, &r, rows[q], x + d * q);
        at = rows[q] + 1;
    }
}

void kf_gen_tutorial_clouds(uint64_t seed, float *x, int64_t M, float *y, float *b, int64_t N)
{
    kf_gen g = {KF_GEN_SPIRAL, M, seed};
    rng r;
    rng_seed(&r, seed);
    for (int64_t k = 0; k < M; k++) {
        double p[2];
        gen_point(&g, &r, k, p);
        x[2 * k] = (float)p[0], x[2 * k + 1] = (float)p[1];
    }
    rng_seed(&r, seed + 1);
    for (int64_t k = 0; k < N; k++) {
        y[2 * k] = (float)(0.6 + 0.1 * rng_normal(&r));
        y[2 * k + 1] = (float)(0.6 + 0.1 * rng_normal(&r));
        if (b)
            b[k] = (float)rng_normal(&r);
    }
}

void kf_gen_uniform_f32(uint64_t seed, float *x, int64_t n)
{
    rng r;
    rng_seed(&r, seed);
    for (int64_t k = 0; k < n; k++)
        x[k] = (float)rng_uniform(&r);
}

void kf_gen_normal_f32(uint64_t seed, float *x, int64_t n)
{
    rng r;
    rng_seed(&r, seed);
    for (int64_t k = 0; k < n; k++)
        x[k] = (float)rng_normal(&r);
}

/* Strict decimal in [lo, hi]: digits only, no sign, no overflow. */
static int parse_u64(const char *s, size_t len, uint64_t lo, uint64_t hi, uint64_t *out)
{
    if (len == 0 || len > 20)
        return -1;
    uint64_t v = 0;
    for (size_t k = 0; k < len; k++) {
        if (s[k] < '0' || s[k] > '9')
            return -1;
        unsigned d = (unsigned)(s[k] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* The reason of a refused spec into err (when there is one): "'SPEC': why". */
static int refuse(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int refuse(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return KF_ERR_ARG;
}

int kf_gen_parse(const char *spec, kf_gen *g, char *err, size_t errlen)
{
    if (!spec || !g)
        return refuse(err, errlen, "kf_gen_parse: %s is NULL", spec ? "g" : "spec");
    memset(g, 0, sizeof *g);
    const char *c1 = strchr(spec, ':');
    size_t nlen = c1 ? (size_t)(c1 - spec) : strlen(spec);
    int kind = 0;
    while (kind < NGEN && !(strlen(gen_names[kind]) == nlen && !strncmp(spec, gen_names[kind], nlen)))
        kind++;
    if (kind < NGEN)
        g->kind = (kf_gen_kind)kind;
    else
        return refuse(err, errlen, "'%.60s': the generators are spiral:N[:SEED] and swissroll:N[:SEED]",
                      spec);
    if (!c1)
        return refuse(err, errlen, "'%.60s': missing the point count (e.g. %.*s:10000)", spec, (int)nlen,
                      spec);
    const char *ns = c1 + 1, *c2 = strchr(ns, ':');
    size_t nslen = c2 ? (size_t)(c2 - ns) : strlen(ns);
    uint64_t n, seed = KF_GEN_DEFAULT_SEED;
    if (parse_u64(ns, nslen, 1, KF_GEN_MAX_N, &n))
        return refuse(err, errlen, "'%.60s': the point count must be an integer from 1 to %d", spec,
                      KF_GEN_MAX_N);
    if (c2 && parse_u64(c2 + 1, strlen(c2 + 1), 0, UINT64_MAX, &seed))
        return refuse(err, errlen, "'%.60s': the seed must be a non-negative decimal integer below 2^64",
                      spec);
    g->n = (int64_t)n;
    g->seed = seed;
    if (err && errlen)
        err[0] = 0;
    return KF_OK;
}
