/* t_gen.c -- the point-cloud generators kf_gen_* (`kforge eigsh --gen`, examples, bench):
 * parsing, determinism, shapes and noise. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "kforge.h"

enum { NP = 2000 };

static double *make(kf_gen_kind kind, int64_t n, uint64_t seed)
{
    kf_gen g = {kind, n, seed};
    double *x = malloc(sizeof(double) * 3 * (size_t)n);
    if (x)
        kf_gen_points(&g, x);
    return x;
}

KFT_TEST(gen_parse_accepts)
{
    kf_gen g;
    char err[256];
    KFT_CHECK(kf_gen_parse("spiral:10000", &g, err, sizeof err) == KF_OK);
    KFT_CHECK(g.kind == KF_GEN_SPIRAL && g.n == 10000 && g.seed == KF_GEN_DEFAULT_SEED);
    KFT_CHECK(kf_gen_parse("swissroll:7:42", &g, err, sizeof err) == KF_OK);
    KFT_CHECK(g.kind == KF_GEN_SWISSROLL && g.n == 7 && g.seed == 42);
    KFT_CHECK(kf_gen_parse("spiral:1:18446744073709551615", &g, err, sizeof err) == KF_OK);
    KFT_CHECK(g.seed == UINT64_MAX);
    KFT_CHECK(kf_gen_parse("spiral:100000000:0", &g, err, sizeof err) == KF_OK);
    KFT_CHECK(kf_gen_dim(KF_GEN_SPIRAL) == 2 && kf_gen_dim(KF_GEN_SWISSROLL) == 3);
    KFT_CHECK(!strcmp(kf_gen_name(KF_GEN_SWISSROLL), "swissroll"));
}

KFT_TEST(gen_parse_rejects)
{
    static const struct {
        const char *spec, *msg;
    } bad[] = {
        {"", "the generators are"},
        {"circle:10", "the generators are"},
        {"spirals:10", "the generators are"},
        {"spiral", "missing the point count"},
        {"spiral:", "point count must be"},
        {"spiral:0", "point count must be"},
        {"spiral:-5", "point count must be"},
        {"spiral:100000001", "point count must be"},
        {"spiral:1e4", "point count must be"},
        {"spiral:10:", "seed must be"},
        {"spiral:10:x", "seed must be"},
        {"spiral:10:1:2", "seed must be"},
        {"spiral:10:18446744073709551616", "seed must be"},
        {"swissroll:99999999999999999999999", "point count must be"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        kf_gen g;
        char err[256] = "";
        int rc = kf_gen_parse(bad[k].spec, &g, err, sizeof err);
        KFT_CHECKF(rc == KF_ERR_ARG && strstr(err, bad[k].msg), "'%s' -> %d '%s'", bad[k].spec, rc, err);
    }
}

/* Same seed, same bits; another seed, another cloud; and the draws are pinned:
 * these values are the documented output of seed 1 (a change of PRNG or draw
 * order would silently change every user's --gen cloud). */
KFT_TEST(gen_deterministic)
{
    double *a = make(KF_GEN_SPIRAL, 1000, 1), *b = make(KF_GEN_SPIRAL, 1000, 1);
    double *c = make(KF_GEN_SPIRAL, 1000, 2), *s = make(KF_GEN_SWISSROLL, 1000, 1);
    KFT_CHECK(a && b && c && s);
    if (a && b && c && s) {
        KFT_CHECK(!memcmp(a, b, sizeof(double) * 2000));
        int differ = 0;
        for (int k = 0; k < 2000; k++)
            differ += a[k] != c[k];
        KFT_CHECKF(differ == 2000, "%d of 2000 coordinates differ between seeds 1 and 2", differ);
        KFT_CHECKF(fabs(a[0] - 0.3916725856553433) < 1e-12 && fabs(a[1] - 0.49182679018884889) < 1e-12,
                   "spiral:1000:1 point 0 = (%.17g, %.17g)", a[0], a[1]);
        KFT_CHECKF(fabs(a[1998] - 0.76756785590459453) < 1e-12, "point 999 x = %.17g", a[1998]);
        KFT_CHECKF(fabs(s[0] - 0.38978787213776883) < 1e-12 && fabs(s[1] - 0.6578741940442685) < 1e-12 &&
                       fabs(s[2] - 0.51777176793510737) < 1e-12,
                   "swissroll:1000:1 point 0 = (%.17g, %.17g, %.17g)", s[0], s[1], s[2]);
    }
    free(a);
    free(b);
    free(c);
    free(s);
}

/* The points follow the tutorial's curves with N(0, 0.01^2) noise: the
 * residuals have mean ~0 and standard deviation ~0.01, and every point lies
 * in the unit square (cube). */
KFT_TEST(gen_spiral_shape)
{
    double *x = make(KF_GEN_SPIRAL, NP, 7);
    KFT_CHECK(x != NULL);
    if (!x)
        return;
    double sum = 0, sq = 0, worst = 0;
    int outside = 0;
    for (int k = 0; k < NP; k++) {
        double t = 2 * M_PI * k / NP;
        double r[2] = {x[2 * k] - (0.4 + 0.4 * (t / 7) * cos(t)), x[2 * k + 1] - (0.5 + 0.3 * sin(t))};
        for (int d = 0; d < 2; d++) {
            sum += r[d], sq += r[d] * r[d];
            worst = fmax(worst, fabs(r[d]));
            outside += !(x[2 * k + d] > 0 && x[2 * k + d] < 1);
        }
    }
    double mean = sum / (2 * NP), sd = sqrt(sq / (2 * NP) - mean * mean);
    KFT_CHECKF(fabs(mean) < 1e-3, "noise mean %g", mean);
    KFT_CHECKF(sd > 0.0095 && sd < 0.0105, "noise sd %g", sd);
    KFT_CHECKF(worst < 0.06, "largest deviation %g (6 sigma)", worst);
    KFT_CHECKF(outside == 0, "%d coordinates outside (0, 1)", outside);
    free(x);
}

KFT_TEST(gen_swissroll_shape)
{
    double *x = make(KF_GEN_SWISSROLL, NP, 7);
    KFT_CHECK(x != NULL);
    if (!x)
        return;
    double sum = 0, sq = 0, ymean = 0, ymin = 1, ymax = 0;
    int outside = 0;
    for (int k = 0; k < NP; k++) {
        double t = 2 * M_PI * k / NP, *p = x + 3 * k;
        double r[2] = {p[0] - (0.4 + 0.4 * (t / 7) * cos(1.5 * t)),
                       p[2] - (0.5 + 0.3 * (t / 7) * sin(1.5 * t))};
        for (int d = 0; d < 2; d++)
            sum += r[d], sq += r[d] * r[d];
        ymean += p[1] / NP;
        ymin = fmin(ymin, p[1]), ymax = fmax(ymax, p[1]);
        for (int d = 0; d < 3; d++)
            outside += !(p[d] > 0 && p[d] < 1);
    }
    double mean = sum / (2 * NP), sd = sqrt(sq / (2 * NP) - mean * mean);
    KFT_CHECKF(fabs(mean) < 1e-3 && sd > 0.0095 && sd < 0.0105, "noise mean %g sd %g", mean, sd);
    /* the width coordinate is 0.1 + 0.8 U(0,1) (+ noise): spread over [0.1, 0.9] */
    KFT_CHECKF(fabs(ymean - 0.5) < 0.02, "mean width %g", ymean);
    KFT_CHECKF(ymin > 0.04 && ymin < 0.12 && ymax > 0.88 && ymax < 0.96, "width in [%g, %g]", ymin, ymax);
    KFT_CHECKF(outside == 0, "%d coordinates outside (0, 1)", outside);
    free(x);
}

/* A rank's slice (kf_gen_points_rows) and a sample (kf_gen_points_at) are the
 * whole cloud's rows bit for bit, for both kinds, at the ends and in the
 * middle, and an empty slice writes nothing. */
KFT_TEST(gen_rows_are_the_cloud_rows)
{
    for (int kind = KF_GEN_SPIRAL; kind <= KF_GEN_SWISSROLL; kind++) {
        kf_gen g = {(kf_gen_kind)kind, 1001, 7};
        int d = kf_gen_dim(g.kind);
        double *all = make(g.kind, g.n, g.seed), *part = malloc(sizeof(double) * 3 * 1001);
        KFT_CHECK(all && part);
        if (!all || !part) {
            free(all), free(part);
            return;
        }
        static const int64_t cuts[][2] = {{0, 1001}, {0, 1}, {1, 2}, {500, 777}, {1000, 1001}};
        for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
            int64_t r0 = cuts[c][0], r1 = cuts[c][1];
            kf_gen_points_rows(&g, r0, r1, part);
            KFT_CHECKF(!memcmp(part, all + d * r0, sizeof(double) * (size_t)(d * (r1 - r0))),
                       "kind %d rows [%lld, %lld)", kind, (long long)r0, (long long)r1);
        }
        part[0] = 12345;
        kf_gen_points_rows(&g, 300, 300, part);
        KFT_CHECK(part[0] == 12345);
        const int64_t at[] = {0, 1, 2, 500, 501, 999, 1000};
        kf_gen_points_at(&g, at, 7, part);
        for (int q = 0; q < 7; q++)
            KFT_CHECKF(!memcmp(part + d * q, all + d * at[q], sizeof(double) * (size_t)d),
                       "kind %d row %lld", kind, (long long)at[q]);
        free(all), free(part);
    }
}
