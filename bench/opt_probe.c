/* opt_probe.c -- measures the optimizing tier's generated kernels: emit, cc, dlopen, run over
 * rows on pthreads, ns per pair; checks a few rows against the reference evaluator.
 *
 *   opt_probe [--threads T] [--cc-only] [--dump] [CASE...]
 *   opt_probe --formula F --alias A... [--formula2 G] --reduction R [--k K] [--dtype f32|f64]
 *             [--axis A] [-M M] [-N N] [--dump]
 * With no CASE, runs the preset list (Gaussian float32/float64, D = 1/16/64, Laplace,
 * Cauchy, KMin K=10, LogSumExp) at M = N = 20000. Prints one line per case. */
#include <dlfcn.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "compiler/emit/opt.h"
#include "runtime/rt.h"

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

typedef struct job {
    kfk_reduce_fn fn;
    const void *const *args;
    int64_t r0, r1, jr[2];
    void *out;
    int64_t *idx;
} job;

static void *work(void *p)
{
    job *j = p;
    j->fn(j->args, j->r0, j->r1, j->jr, 1, j->out, j->idx);
    return NULL;
}

/* Median of `reps` runs of fn over all rows, split in `threads` equal blocks. */
static double run_threads(kfk_reduce_fn fn, const void *const *args, int64_t rows, int64_t inner,
                          void *out, int64_t *idx, int threads, int reps)
{
    double best[16];
    if (reps > 16)
        reps = 16;
    for (int r = 0; r < reps; r++) {
        pthread_t tid[64];
        job jb[64];
        double t0 = now();
        for (int t = 0; t < threads; t++) {
            jb[t] = (job){fn, args, rows * t / threads, rows * (t + 1) / threads, {0, inner}, out, idx};
            pthread_create(&tid[t], NULL, work, &jb[t]);
        }
        for (int t = 0; t < threads; t++)
            pthread_join(tid[t], NULL);
        best[r] = now() - t0;
    }
    for (int a = 0; a < reps; a++) /* insertion sort for the median */
        for (int b = a; b > 0 && best[b] < best[b - 1]; b--) {
            double x = best[b];
            best[b] = best[b - 1], best[b - 1] = x;
        }
    return best[reps / 2];
}

static int build(const pcase *c, kfc_prog *p, kfc_red *r)
{
    kfc_diag d;
    kfc_diag_clear(&d);
    kfc_prog_init(p);
    if (kfc_parse(p, c->formula, c->formula2, c->aliases, c->naliases, &d) ||
        kfc_check(p, c->formula, c->formula2, c->aliases, c->naliases, &d) || kfc_simplify(p, &d) ||
        kfc_red_setup(r, p, c->reduction, c->axis, c->dtype, c->k, KF_SUM_AUTO, &d)) {
        fprintf(stderr, "%s: %s\n", c->name, d.msg);
        return -1;
    }
    return 0;
}

/* Compiles src with the jit_cc flags into dir/name.so and loads it. */
static void *cc_load(const char *src, const char *dir, const char *name, double *cc_s, void **dl)
{
    char cpath[512], so[512], cmd[1400];
    snprintf(cpath, sizeof cpath, "%s/%s.c", dir, name);
    snprintf(so, sizeof so, "%s/%s.so", dir, name);
    FILE *f = fopen(cpath, "w");
    if (!f)
        return NULL;
    fputs(src, f);
    fclose(f);
    const char *cc = getenv("CC") ? getenv("CC") : "cc";
    snprintf(cmd, sizeof cmd, "%s -O3 -march=native -fPIC -shared -fno-math-errno -fno-trapping-math %s -o %s -lm",
             cc, cpath, so);
    double t0 = now();
    int rc = system(cmd);
    *cc_s = now() - t0;
    if (rc != 0)
        return NULL;
    *dl = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    return *dl ? dlsym(*dl, KFK_ENTRY) : NULL;
}

static int probe(const pcase *c, int threads, int dump, const char *dir)
{
    kfc_prog p;
    kfc_red r;
    kfc_diag d;
    kfc_diag_clear(&d);
    if (build(c, &p, &r))
        return 1;
    char *src = kfc_emit_c_opt(&p, &r, &d);
    char *tsrc = kfc_emit_c(&p, &r, &d);
    if (!src || !tsrc) {
        fprintf(stderr, "%s: emit: %s\n", c->name, d.msg);
        return 1;
    }
    if (dump)
        fputs(src, stdout);
    double cc_s = 0;
    void *dl = NULL;
    kfk_reduce_fn fn = (kfk_reduce_fn)cc_load(src, dir, c->name, &cc_s, &dl);
    kfr_tcc *tcc = NULL;
    void *tfn = NULL;
    if (!fn || kfr_tcc_compile(tsrc, KFK_ENTRY, &tcc, &tfn, &d)) {
        fprintf(stderr, "%s: compile failed\n", c->name);
        return 1;
    }
    /* data */
    size_t es = c->dtype == KF_FLOAT32 ? 4 : 8;
    const void *args[KFC_MAX_VARS] = {0};
    void *own[KFC_MAX_VARS] = {0};
    unsigned s = 12345;
    for (int v = 0; v < p.nvars; v++) {
        if (!p.vars[v].used)
            continue;
        int64_t rows = p.vars[v].cat == KFC_CAT_I ? c->M : p.vars[v].cat == KFC_CAT_J ? c->N : 1;
        int64_t n = rows * p.vars[v].dim;
        own[v] = malloc((size_t)n * es);
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
    int64_t rows = r.axis == 1 ? c->M : c->N, inner = r.axis == 1 ? c->N : c->M;
    void *out = calloc((size_t)(rows * (r.valdim ? r.valdim : 1)), es);
    int64_t *idx = calloc((size_t)(rows * (r.idxdim ? r.idxdim : 1)), sizeof *idx);
    double t_opt = run_threads(fn, args, rows, inner, out, idx, threads, 5);
    /* libtcc on a slice of the rows (it is ~30x slower), scaled per pair */
    int64_t trows = rows / 20 > 0 ? rows / 20 : rows;
    void *tout = calloc((size_t)(rows * (r.valdim ? r.valdim : 1)), es);
    int64_t *tidx = calloc((size_t)(rows * (r.idxdim ? r.idxdim : 1)), sizeof *idx);
    double t_tcc = run_threads((kfk_reduce_fn)tfn, args, trows, inner, tout, tidx, threads, 1);
    /* a few rows against the reference (relative to the row's scale) */
    int64_t jr[2] = {0, inner};
    double maxrel = 0;
    void *rout = calloc((size_t)(r.valdim ? r.valdim : 1) * 8, es);
    int64_t *ridx = calloc((size_t)(r.idxdim ? r.idxdim : 1), sizeof *idx);
    int badidx = 0;
    for (int64_t row = 0; row < rows; row += rows / 7 + 1) {
        kfk_ref_reduce(&p, &r, args, row, row + 1, jr, 1, (char *)rout - row * r.valdim * (int64_t)es,
                       ridx - row * r.idxdim);
        for (int64_t q = 0; q < r.valdim; q++) {
            double a = es == 4 ? ((float *)out)[row * r.valdim + q] : ((double *)out)[row * r.valdim + q];
            double b = es == 4 ? ((float *)rout)[q] : ((double *)rout)[q];
            double rel = fabs(a - b) / (fabs(b) > 1e-30 ? fabs(b) : 1);
            if (rel > maxrel || rel != rel)
                maxrel = rel;
        }
        for (int64_t q = 0; q < r.idxdim; q++)
            badidx += idx[row * r.idxdim + q] != ridx[q];
    }
    double pairs = (double)rows * (double)inner;
    printf("%-16s %-9s threads=%d M=%lld N=%lld  opt %.3f ns/pair (%.2f Gpair/s)  tcc %.2f ns/pair  "
           "ratio %.1fx  cc %.0f ms  maxrel %.1e  idxdiff %d\n",
           c->name, c->reduction, threads, (long long)c->M, (long long)c->N, t_opt * 1e9 / pairs,
           pairs / t_opt * 1e-9, t_tcc * 1e9 / ((double)trows * (double)inner),
           (t_tcc / ((double)trows * inner)) / (t_opt / pairs), cc_s * 1e3, maxrel, badidx);
    for (int v = 0; v < KFC_MAX_VARS; v++)
        free(own[v]);
    free(out), free(idx), free(tout), free(tidx), free(rout), free(ridx), free(src), free(tsrc);
    kfr_tcc_free(tcc);
    dlclose(dl);
    kfc_prog_free(&p);
    return 0;
}

int main(int argc, char **argv)
{
    int threads = 2, dump = 0, rc = 0, ncases = 0;
    const char *names[64];
    pcase custom = {"custom", NULL, NULL, "Sum", {0}, 0, 0, 1, KF_FLOAT32, 20000, 20000};
    for (int a = 1; a < argc; a++) {
        const char *s = argv[a], *v = a + 1 < argc ? argv[a + 1] : NULL;
        if (!strcmp(s, "--threads") && v)
            threads = atoi(v), a++;
        else if (!strcmp(s, "--dump"))
            dump = 1;
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
    char dir[] = "/tmp/kf_probe_XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    if (custom.formula) {
        rc |= probe(&custom, threads, dump, dir);
    } else {
        for (size_t q = 0; q < sizeof presets / sizeof presets[0]; q++) {
            int want = ncases == 0;
            for (int n = 0; n < ncases; n++)
                want |= !strcmp(names[n], presets[q].name);
            if (want)
                rc |= probe(&presets[q], threads, dump, dir);
        }
    }
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        rc = 1;
    return rc;
}
