/* opt_probe.c -- measures the optimizing tier's kernels through the public API: the cc
 * build (kf_compile_stats.jit_s: $CC + dlopen, the disk cache off), ns per pair of
 * kf_run on the context's threads against libtcc's, and a few rows checked against the
 * reference engine (KF_JIT_REFERENCE, the oracle).
 *
 *   opt_probe [--threads T] [CASE...]
 *   opt_probe --formula F --alias A... [--formula2 G] --reduction R [--k K] [--dtype f32|f64]
 *             [--axis A] [-M M] [-N N]
 * With no CASE, runs the preset list (Gaussian float32/float64, D = 1/16/64, Laplace,
 * Cauchy, KMin K=10, LogSumExp) at M = N = 20000. Prints one line per case. The
 * optimized C itself is not public; `kforge check --emit c` shows the libtcc tier's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kforge.h"

enum { MAX_ARGS = 64 };

typedef struct pcase {
    const char *name, *formula, *formula2, *reduction;
    const char *aliases[4];
    int naliases, k, axis;
    kf_dtype dtype;
    int64_t M, N;
} pcase;

static const pcase presets[] = {
    {"gauss-f32-D3", "Exp(-SqDist(x,y)/IntCst(2))*b", NULL, "Sum", {"x=Vi(0,3)", "y=Vj(1,3)", "b=Vj(2,1)"}, 3, 0, 1, KF_FLOAT32, 20000, 20000},
    {"gauss-f64-D3", "Exp(-SqDist(x,y)/IntCst(2))*b", NULL, "Sum", {"x=Vi(0,3)", "y=Vj(1,3)", "b=Vj(2,1)"}, 3, 0, 1, KF_FLOAT64, 20000, 20000},
    {"gauss-f32-D1", "Exp(-SqDist(x,y)/IntCst(2))*b", NULL, "Sum", {"x=Vi(0,1)", "y=Vj(1,1)", "b=Vj(2,1)"}, 3, 0, 1, KF_FLOAT32, 20000, 20000},
    {"gauss-f32-D16", "Exp(-SqDist(x,y)/IntCst(2))*b", NULL, "Sum", {"x=Vi(0,16)", "y=Vj(1,16)", "b=Vj(2,1)"}, 3, 0, 1, KF_FLOAT32, 20000, 20000},
    {"gauss-f32-D64", "Exp(-SqDist(x,y)/IntCst(2))*b", NULL, "Sum", {"x=Vi(0,64)", "y=Vj(1,64)", "b=Vj(2,1)"}, 3, 0, 1, KF_FLOAT32, 20000, 20000},
    {"laplace-f32", "Exp(-Norm2(x-y))*b", NULL, "Sum", {"x=Vi(0,3)", "y=Vj(1,3)", "b=Vj(2,1)"}, 3, 0, 1, KF_FLOAT32, 20000, 20000},
    {"cauchy-f32", "Inv(IntCst(1)+SqDist(x,y))*b", NULL, "Sum", {"x=Vi(0,3)", "y=Vj(1,3)", "b=Vj(2,1)"}, 3, 0, 1, KF_FLOAT32, 20000, 20000},
    {"kmin10-f32", "SqDist(x,y)", NULL, "ArgKMin", {"x=Vi(0,3)", "y=Vj(1,3)"}, 2, 10, 1, KF_FLOAT32, 20000, 20000},
    {"lse-f32", "-SqDist(x,y)/IntCst(2)", NULL, "LogSumExp", {"x=Vi(0,3)", "y=Vj(1,3)"}, 2, 0, 1, KF_FLOAT32, 20000, 20000},
    {"gauss-f32-axis0", "Exp(-SqDist(x,y)/IntCst(2))*b", NULL, "Sum", {"x=Vi(0,3)", "y=Vj(1,3)", "b=Vi(2,1)"}, 3, 0, 0, KF_FLOAT32, 20000, 20000},
};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* Median of `reps` kf_runs (at most 16). */
static double run_median(kf_kernel *k, int64_t M, int64_t N, const void *const *args, int nargs,
                         void *out, int64_t *idx, int reps, int *st)
{
    double t[16];
    if (reps > 16)
        reps = 16;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        *st |= kf_run(k, M, N, args, nargs, out, idx);
        t[r] = now() - t0;
    }
    for (int a = 0; a < reps; a++) /* insertion sort for the median */
        for (int b = a; b > 0 && t[b] < t[b - 1]; b--) {
            double x = t[b];
            t[b] = t[b - 1], t[b - 1] = x;
        }
    return t[reps / 2];
}

static kf_kernel *compile(kf_ctx *ctx, const pcase *c, kf_jit jit)
{
    kf_compile_opts o;
    kf_compile_opts_init(&o);
    o.k = c->k;
    o.formula2 = c->formula2;
    o.jit = jit;
    o.backend = KF_BACKEND_CPU;
    kf_kernel *k = kf_compile(ctx, c->formula, c->aliases, c->naliases, c->reduction, c->axis, c->dtype, &o);
    if (!k)
        fprintf(stderr, "%s (%s): %s\n", c->name, kf_jit_name(jit), kf_errmsg(ctx));
    return k;
}

static int probe(kf_ctx *ctx, const pcase *c, int threads)
{
    kf_kernel *opt = compile(ctx, c, KF_JIT_CC), *tcc = compile(ctx, c, KF_JIT_TCC),
              *ref = compile(ctx, c, KF_JIT_REFERENCE);
    int rc = 1;
    const void *args[MAX_ARGS] = {0}, *rargs[MAX_ARGS] = {0};
    void *own[MAX_ARGS] = {0};
    int64_t dims[MAX_ARGS] = {0};
    int cats[MAX_ARGS];
    void *out = NULL, *tout = NULL, *rout = NULL;
    int64_t *idx = NULL, *tidx = NULL, *ridx = NULL;
    int nargs = opt ? kf_kernel_nargs(opt) : 0;
    if (!opt || !tcc || !ref || nargs > MAX_ARGS)
        goto done;
    kf_compile_stats st;
    kf_kernel_stats(opt, &st);
    /* data: uniform in [0, 1) from a fixed LCG */
    size_t es = c->dtype == KF_FLOAT32 ? 4 : 8;
    unsigned s = 12345;
    for (int v = 0; v < nargs; v++) {
        kf_kernel_var(opt, v, &cats[v], &dims[v]);
        if (cats[v] < 0)
            continue;
        int64_t rows = cats[v] == 0 ? c->M : cats[v] == 1 ? c->N : 1, n = rows * dims[v];
        if (!(own[v] = malloc((size_t)n * es)))
            goto done;
        for (int64_t q = 0; q < n; q++) {
            s = s * 1103515245u + 12345u;
            double x = (double)(s >> 8) / 16777216.0;
            if (c->dtype == KF_FLOAT32)
                ((float *)own[v])[q] = (float)x;
            else
                ((double *)own[v])[q] = x;
        }
        args[v] = own[v];
    }
    int axis = kf_kernel_axis(opt), outer = axis == 1 ? 0 : 1;
    int64_t rows = axis == 1 ? c->M : c->N, inner = axis == 1 ? c->N : c->M;
    int64_t vd = kf_kernel_out_dim(opt), id = kf_kernel_index_dim(opt);
    out = calloc((size_t)(rows * (vd ? vd : 1)), es);
    tout = calloc((size_t)(rows * (vd ? vd : 1)), es);
    rout = calloc((size_t)(vd ? vd : 1), es);
    idx = calloc((size_t)(rows * (id ? id : 1)), sizeof *idx);
    tidx = calloc((size_t)(rows * (id ? id : 1)), sizeof *idx);
    ridx = calloc((size_t)(id ? id : 1), sizeof *idx);
    if (!out || !tout || !rout || !idx || !tidx || !ridx)
        goto done;
    int bad = 0;
    double t_opt = run_median(opt, c->M, c->N, args, nargs, out, idx, 5, &bad);
    /* libtcc on a slice of the rows (it is ~30x slower), scaled per pair */
    int64_t trows = rows / 20 > 0 ? rows / 20 : rows;
    double t_tcc = run_median(tcc, axis == 1 ? trows : c->M, axis == 1 ? c->N : trows, args, nargs, tout,
                              tidx, 1, &bad);
    /* a few rows against the reference (relative to the row's scale): the outer
     * variables start at the row, and one row is reduced */
    double maxrel = 0;
    int badidx = 0;
    for (int64_t row = 0; row < rows && !bad; row += rows / 7 + 1) {
        for (int v = 0; v < nargs; v++)
            rargs[v] = args[v] && cats[v] == outer ? (const char *)args[v] + row * dims[v] * (int64_t)es
                                                   : args[v];
        bad |= kf_run(ref, axis == 1 ? 1 : c->M, axis == 1 ? c->N : 1, rargs, nargs, rout, ridx);
        for (int64_t q = 0; q < vd; q++) {
            double a = es == 4 ? ((float *)out)[row * vd + q] : ((double *)out)[row * vd + q];
            double b = es == 4 ? ((float *)rout)[q] : ((double *)rout)[q];
            double rel = fabs(a - b) / (fabs(b) > 1e-30 ? fabs(b) : 1);
            if (rel > maxrel || rel != rel)
                maxrel = rel;
        }
        for (int64_t q = 0; q < id; q++)
            badidx += idx[row * id + q] != ridx[q];
    }
    if (bad) {
        fprintf(stderr, "%s: kf_run: %s\n", c->name, kf_errmsg(ctx));
        goto done;
    }
    double pairs = (double)rows * (double)inner;
    printf("%-16s %-9s threads=%d M=%lld N=%lld  opt %.3f ns/pair (%.2f Gpair/s)  tcc %.2f ns/pair  "
           "ratio %.1fx  cc %.0f ms  maxrel %.1e  idxdiff %d\n",
           c->name, c->reduction, threads, (long long)c->M, (long long)c->N, t_opt * 1e9 / pairs,
           pairs / t_opt * 1e-9, t_tcc * 1e9 / ((double)trows * (double)inner),
           (t_tcc / ((double)trows * inner)) / (t_opt / pairs), st.jit_s * 1e3, maxrel, badidx);
    rc = 0;
done:
    for (int v = 0; v < MAX_ARGS; v++)
        free(own[v]);
    free(out), free(idx), free(tout), free(tidx), free(rout), free(ridx);
    kf_kernel_free(opt);
    kf_kernel_free(tcc);
    kf_kernel_free(ref);
    return rc;
}

int main(int argc, char **argv)
{
    int threads = 2, rc = 0, ncases = 0;
    const char *names[64];
    pcase custom = {"custom", NULL, NULL, "Sum", {0}, 0, 0, 1, KF_FLOAT32, 20000, 20000};
    for (int a = 1; a < argc; a++) {
        const char *s = argv[a], *v = a + 1 < argc ? argv[a + 1] : NULL;
        if (!strcmp(s, "--threads") && v)
            threads = atoi(v), a++;
        else if (!strcmp(s, "--formula") && v)
            custom.formula = v, a++;
        else if (!strcmp(s, "--formula2") && v)
            custom.formula2 = v, a++;
        else if (!strcmp(s, "--alias") && v && custom.naliases < 4)
            custom.aliases[custom.naliases++] = v, a++;
        else if (!strcmp(s, "--reduction") && v)
            custom.reduction = v, a++;
        else if (!strcmp(s, "--k") && v)
            custom.k = atoi(v), a++;
        else if (!strcmp(s, "--axis") && v)
            custom.axis = atoi(v), a++;
        else if (!strcmp(s, "--dtype") && v)
            custom.dtype = !strcmp(v, "f64") ? KF_FLOAT64 : KF_FLOAT32, a++;
        else if (!strcmp(s, "-M") && v)
            custom.M = atoll(v), a++;
        else if (!strcmp(s, "-N") && v)
            custom.N = atoll(v), a++;
        else if (ncases < 64)
            names[ncases++] = s;
    }
    if (threads < 1 || threads > 64)
        threads = 2;
    kf_options o;
    kf_options_init(&o);
    o.threads = threads;
    o.no_cache = 1; /* every case pays its cc build, which is what is measured */
    kf_ctx *ctx = kf_new(&o);
    if (!ctx)
        return 1;
    if (custom.formula) {
        rc |= probe(ctx, &custom, threads);
    } else {
        for (size_t q = 0; q < sizeof presets / sizeof presets[0]; q++) {
            int want = ncases == 0;
            for (int n = 0; n < ncases; n++)
                want |= !strcmp(names[n], presets[q].name);
            if (want)
                rc |= probe(ctx, &presets[q], threads);
        }
    }
    kf_free(ctx);
    return rc;
}
