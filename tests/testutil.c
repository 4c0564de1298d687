/* testutil.c -- seeded data, compile-and-run over the public API, and the
 * tolerant comparison of a kernel with the reference engine (testutil.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/rt.h"
#include "testutil.h"

#define GARBAGE_VAL 12345.678
#define GARBAGE_IDX 777777
#define MAX_PRINTED 6

void kft_rng_seed(kft_rng *g, uint64_t seed)
{
    g->s = seed;
}

uint64_t kft_rng_next(kft_rng *g)
{
    uint64_t z = (g->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double kft_uniform(kft_rng *g, double lo, double hi)
{
    return lo + (hi - lo) * ((double)(kft_rng_next(g) >> 11) * 0x1p-53);
}

double kft_get(const void *a, kf_dtype dtype, int64_t k)
{
    return dtype == KF_FLOAT32 ? (double)((const float *)a)[k] : ((const double *)a)[k];
}

void kft_set(void *a, kf_dtype dtype, int64_t k, double v)
{
    if (dtype == KF_FLOAT32)
        ((float *)a)[k] = (float)v;
    else
        ((double *)a)[k] = v;
}

double kft_tol(kf_dtype dtype)
{
    return dtype == KF_FLOAT32 ? 1e-4 : 1e-10;
}

static const char *dtype_name(kf_dtype t)
{
    return t == KF_FLOAT32 ? "float32" : "float64";
}

kf_kernel *kft_compile(kf_ctx *ctx, const kft_spec *s, kf_jit jit)
{
    kf_compile_opts o;
    kf_compile_opts_init(&o);
    o.k = s->k;
    o.formula2 = s->formula2;
    o.sum_scheme = s->scheme;
    o.jit = jit;
    kf_kernel *k = kf_compile(ctx, s->formula, s->aliases, s->naliases, s->reduction, s->axis,
                              s->dtype, &o);
    if (!k) {
        fprintf(stderr, "  compile failed (%s): %s\n    formula=%s formula2=%s reduction=%s axis=%d "
                        "dtype=%s K=%d\n",
                kf_status_name(kf_status_of(ctx)), kf_errmsg(ctx), s->formula,
                s->formula2 ? s->formula2 : "-", s->reduction, s->axis, dtype_name(s->dtype), s->k);
        return NULL;
    }
    const char *want = jit == KF_JIT_REFERENCE ? "reference" : "tcc";
    if (jit != KF_JIT_AUTO && !getenv("KFORGE_JIT") && strcmp(kf_kernel_engine(k), want) != 0) {
        fprintf(stderr, "  asked for engine %s, got %s\n", want, kf_kernel_engine(k));
        kf_kernel_free(k);
        return NULL;
    }
    return k;
}

int kft_data_make(kft_data *d, const kf_kernel *k, int64_t M, int64_t N, double lo, double hi,
                  int grid, uint64_t seed)
{
    kft_rng g;
    kft_rng_seed(&g, seed);
    memset(d, 0, sizeof *d);
    d->nargs = kf_kernel_nargs(k);
    kf_dtype dt = kf_kernel_dtype(k);
    size_t es = dt == KF_FLOAT32 ? sizeof(float) : sizeof(double);
    for (int v = 0; v < d->nargs && v < 256; v++) {
        int cat;
        int64_t dim;
        if (kf_kernel_var(k, v, &cat, &dim) != KF_OK || cat < 0) {
            d->cat[v] = -1;
            continue;
        }
        d->cat[v] = cat;
        d->dim[v] = dim;
        int64_t rows = cat == 0 ? M : cat == 1 ? N : 1;
        int64_t n = rows * dim;
        d->arr[v] = malloc((size_t)(n > 0 ? n : 1) * es);
        if (!d->arr[v]) {
            kft_data_free(d);
            fprintf(stderr, "  out of memory for test data\n");
            return -1;
        }
        for (int64_t q = 0; q < n; q++) {
            double x = kft_uniform(&g, lo, hi);
            if (grid)
                x = floor(x * 16) / 16;
            kft_set(d->arr[v], dt, q, x);
        }
    }
    return 0;
}

void kft_data_free(kft_data *d)
{
    for (int v = 0; v < 256; v++)
        free(d->arr[v]), d->arr[v] = NULL;
}

int kft_run(kf_kernel *k, int64_t M, int64_t N, const kft_data *d, void **out, int64_t **idx)
{
    kf_dtype dt = kf_kernel_dtype(k);
    int64_t rows = kf_kernel_axis(k) == 1 ? M : N;
    int64_t nv = rows * kf_kernel_out_dim(k), ni = rows * kf_kernel_index_dim(k);
    size_t es = dt == KF_FLOAT32 ? sizeof(float) : sizeof(double);
    *out = malloc((size_t)(nv > 0 ? nv : 1) * es);
    *idx = malloc((size_t)(ni > 0 ? ni : 1) * sizeof(int64_t));
    if (!*out || !*idx) {
        free(*out), free(*idx);
        *out = NULL, *idx = NULL;
        return KF_ERR_NOMEM;
    }
    for (int64_t q = 0; q < nv; q++)
        kft_set(*out, dt, q, GARBAGE_VAL);
    for (int64_t q = 0; q < ni; q++)
        (*idx)[q] = GARBAGE_IDX;
    int st = kf_run(k, M, N, (const void *const *)d->arr, d->nargs, kf_kernel_out_dim(k) ? *out : NULL,
                    kf_kernel_index_dim(k) ? *idx : NULL);
    if (st != KF_OK)
        fprintf(stderr, "  kf_run failed (%s): %s\n", kf_status_name(st), kf_errmsg(k->ctx));
    return st;
}

/* Runs a helper reference kernel (same aliases, axis, dtype as s) and
 * returns its values as a malloc'd double array (rows * out_dim), or NULL. */
static double *ref_aux(const kft_spec *s, const char *wrap, const char *red, const char *wrap2,
                       int64_t M, int64_t N, const kft_data *d)
{
    char *f1 = malloc(strlen(s->formula) + 16);
    /* wrap2 NULL: the helper has no formula2 */
    char *f2 = s->formula2 && wrap2 ? malloc(strlen(s->formula2) + 16) : NULL;
    double *res = NULL;
    kf_ctx *ctx = NULL;
    kf_kernel *k = NULL;
    void *out = NULL;
    int64_t *idx = NULL;
    if (!f1 || (s->formula2 && wrap2 && !f2))
        goto done;
    sprintf(f1, "%s(%s)", wrap, s->formula);
    if (f2)
        sprintf(f2, "%s(%s)", wrap2, s->formula2);
    kft_spec a = *s;
    a.formula = f1;
    a.formula2 = f2;
    a.reduction = red;
    a.k = 0;
    a.scheme = KF_SUM_AUTO;
    kf_options opt;
    kf_options_init(&opt);
    opt.threads = 1;
    if (!(ctx = kf_new(&opt)) || !(k = kft_compile(ctx, &a, KF_JIT_REFERENCE)))
        goto done;
    if (kft_run(k, M, N, d, &out, &idx) != KF_OK)
        goto done;
    int64_t n = (s->axis == 1 ? M : N) * kf_kernel_out_dim(k);
    res = malloc((size_t)(n > 0 ? n : 1) * sizeof *res);
    for (int64_t q = 0; res && q < n; q++)
        res[q] = kft_get(out, s->dtype, q);
done:
    free(out), free(idx), free(f1), free(f2);
    kf_kernel_free(k);
    kf_free(ctx);
    return res;
}

typedef enum { CL_SUM, CL_EXTREME, CL_KMIN, CL_LSE, CL_LSEW, CL_SOFTMAX, CL_MAXSHIFT } red_class;

static red_class classify(const char *red)
{
    if (!strcmp(red, "Sum"))
        return CL_SUM;
    if (!strcmp(red, "KMin") || !strcmp(red, "ArgKMin") || !strcmp(red, "KMin_ArgKMin"))
        return CL_KMIN;
    if (!strcmp(red, "LogSumExp"))
        return CL_LSE;
    if (!strcmp(red, "LogSumExpWeight"))
        return CL_LSEW;
    if (!strcmp(red, "SumSoftMaxWeight"))
        return CL_SOFTMAX;
    if (!strcmp(red, "Max_SumShiftExp"))
        return CL_MAXSHIFT;
    return CL_EXTREME;
}

static int close_enough(double got, double exp, double scale, double tol)
{
    if (isnan(exp))
        return isnan(got);
    if (isinf(exp))
        return got == exp;
    if (!isfinite(got))
        return 0;
    if (!(scale >= 0 && scale < INFINITY)) /* e.g. the scale of an empty row */
        scale = 0;
    return fabs(got - exp) <= tol * (fabs(exp) + scale);
}

typedef struct cmp_ctx {
    const kft_spec *s;
    int64_t M, N;
    int threads;
    int printed;
} cmp_ctx;

static void report(cmp_ctx *c, const char *what, int64_t row, int64_t comp, double got, double exp)
{
    if (c->printed++ >= MAX_PRINTED)
        return;
    const kft_spec *s = c->s;
    fprintf(stderr,
            "  MISMATCH %s: formula=%s%s%s reduction=%s K=%d axis=%d dtype=%s scheme=%d threads=%d "
            "M=%lld N=%lld row=%lld component=%lld got=%.17g expected=%.17g\n",
            what, s->formula, s->formula2 ? " formula2=" : "", s->formula2 ? s->formula2 : "",
            s->reduction, s->k, s->axis, dtype_name(s->dtype), (int)s->scheme, c->threads,
            (long long)c->M, (long long)c->N, (long long)row, (long long)comp, got, exp);
}

/* Component `comp` of the formula at (row, inner index t), by the oracle. */
static double formula_at(kf_kernel *ref, const kft_data *d, int64_t row, int64_t t, int64_t comp,
                         double *scratch, double *fv)
{
    int64_t i = ref->red.axis == 1 ? row : t, j = ref->red.axis == 1 ? t : row;
    kfk_ref_eval(&ref->prog, ref->prog.root, ref->red.dtype, (const void *const *)d->arr, i, j,
                 scratch, fv);
    return fv[comp];
}

/* The reference side of a comparison at one size: outputs and scales. */
typedef struct refside {
    void *out;
    int64_t *idx;
    double *sc1, *sc2, *sc3; /* testutil.h: per (row, component) scales */
    red_class cl;
    int64_t D, E, valdim, idxdim;
} refside;

static void refside_free(refside *r)
{
    free(r->out), free(r->idx), free(r->sc1), free(r->sc2), free(r->sc3);
    memset(r, 0, sizeof *r);
}

static int refside_make(const kft_spec *s, kf_kernel *ref, int64_t M, int64_t N, const kft_data *d,
                        refside *r)
{
    memset(r, 0, sizeof *r);
    if (kft_run(ref, M, N, d, &r->out, &r->idx) != KF_OK)
        return -1;
    r->D = kf_kernel_formula_dim(ref);
    r->valdim = kf_kernel_out_dim(ref);
    r->idxdim = kf_kernel_index_dim(ref);
    r->cl = classify(s->reduction);
    r->E = r->cl == CL_LSEW || r->cl == CL_SOFTMAX ? r->valdim
           : r->cl == CL_MAXSHIFT                  ? r->valdim - 1
                                                   : 1;
    r->sc1 = ref_aux(s, "Abs", r->cl == CL_SUM ? "Sum" : "Max", NULL, M, N, d);
    if (!r->sc1)
        return refside_free(r), -1;
    if (r->cl == CL_SOFTMAX) { /* Max_j |g| per component: g as the main formula */
        kft_spec g = *s;
        g.formula = s->formula2;
        g.formula2 = NULL;
        if (!(r->sc2 = ref_aux(&g, "Abs", "Max", NULL, M, N, d)))
            return refside_free(r), -1;
    }
    if (r->cl == CL_MAXSHIFT && !(r->sc3 = ref_aux(s, "", "Max_SumShiftExp", "Abs", M, N, d)))
        return refside_free(r), -1;
    return 0;
}

/* Runs test and compares it with the prepared reference side. */
static int compare_with(const kft_spec *s, kf_kernel *test, kf_kernel *ref, const refside *rs,
                        int64_t M, int64_t N, const kft_data *d)
{
    cmp_ctx c = {s, M, N, kf_threads(test->ctx), 0};
    void *tout = NULL;
    int64_t *tidx = NULL;
    double *scratch = NULL, *fv = NULL;
    int bad = -1;
    if (kft_run(test, M, N, d, &tout, &tidx) != KF_OK)
        goto done;
    int64_t rows = s->axis == 1 ? M : N, inner = s->axis == 1 ? N : M;
    int64_t D = rs->D, E = rs->E, valdim = rs->valdim, idxdim = rs->idxdim;
    if (kf_kernel_out_dim(test) != valdim || kf_kernel_index_dim(test) != idxdim) {
        fprintf(stderr, "  output dims differ: test (%lld, %lld), reference (%lld, %lld)\n",
                (long long)kf_kernel_out_dim(test), (long long)kf_kernel_index_dim(test),
                (long long)valdim, (long long)idxdim);
        goto done;
    }
    const double *sc1 = rs->sc1, *sc2 = rs->sc2, *sc3 = rs->sc3;
    bad = 0;
    double tol = kft_tol(s->dtype);
    for (int64_t r = 0; r < rows; r++) {
        for (int64_t q = 0; q < valdim; q++) {
            double got = kft_get(tout, s->dtype, r * valdim + q);
            double exp = kft_get(rs->out, s->dtype, r * valdim + q);
            double scale;
            switch (rs->cl) {
            case CL_SUM: case CL_EXTREME: scale = sc1[r * D + q]; break;
            case CL_KMIN: scale = sc1[r * D + q % D]; break;
            case CL_LSE: case CL_LSEW: scale = 1 + sc1[r]; break;
            case CL_SOFTMAX: scale = sc2[r * E + q] * (1 + sc1[r]); break;
            default: /* Max_SumShiftExp: m, then s_c */
                scale = q == 0 ? 1 + sc1[r] : sc3[r * valdim + q] * (1 + sc1[r]);
                break;
            }
            if (!close_enough(got, exp, scale, tol))
                bad++, report(&c, "value", r, q, got, exp);
        }
        for (int64_t q = 0; q < idxdim; q++) {
            int64_t got = tidx[r * idxdim + q], exp = rs->idx[r * idxdim + q];
            if (got == exp)
                continue;
            int64_t comp = q % D;
            int ok = exp >= 0 && got >= 0 && got < inner;
            if (ok && !scratch) {
                scratch = malloc(kfk_ref_scratch_size(&ref->prog) * sizeof *scratch);
                fv = malloc((size_t)D * sizeof *fv);
                if (!scratch || !fv) {
                    bad = -1;
                    goto done;
                }
            }
            if (ok) {
                /* a different index is fine only for a tie in value */
                double fe = formula_at(ref, d, r, exp, comp, scratch, fv);
                double fg = formula_at(ref, d, r, got, comp, scratch, fv);
                if (s->dtype == KF_FLOAT32)
                    fe = (float)fe, fg = (float)fg;
                ok = isfinite(fe) && isfinite(fg) &&
                     fabs(fg - fe) <= tol * (fabs(fe) + sc1[r * D + comp]);
            }
            if (!ok)
                bad++, report(&c, "index", r, q, (double)got, (double)exp);
        }
    }
    if (c.printed > MAX_PRINTED)
        fprintf(stderr, "  ... %d mismatches in all\n", c.printed);
done:
    free(tout), free(tidx), free(scratch), free(fv);
    return bad;
}

int kft_compare(const kft_spec *s, kf_kernel *test, kf_kernel *ref, int64_t M, int64_t N,
                const kft_data *d)
{
    refside rs;
    if (refside_make(s, ref, M, N, d, &rs) != 0)
        return -1;
    int bad = compare_with(s, test, ref, &rs, M, N, d);
    refside_free(&rs);
    return bad;
}

#define MAX_THREAD_CASES 8

int kft_check_spec(const kft_spec *s, const int64_t (*sizes)[2], int nsizes, const int *threads,
                   int nthreads, double lo, double hi, int grid, uint64_t seed)
{
    int64_t Mmax = 0, Nmax = 0;
    for (int q = 0; q < nsizes; q++) {
        if (sizes[q][0] > Mmax)
            Mmax = sizes[q][0];
        if (sizes[q][1] > Nmax)
            Nmax = sizes[q][1];
    }
    if (nthreads > MAX_THREAD_CASES)
        nthreads = MAX_THREAD_CASES;
    kf_ctx *ctx[MAX_THREAD_CASES] = {NULL}, *rctx = NULL;
    kf_kernel *k[MAX_THREAD_CASES] = {NULL}, *ref = NULL;
    kft_data d;
    memset(&d, 0, sizeof d);
    int total = -1;
    kf_options opt;
    kf_options_init(&opt);
    opt.threads = 1;
    if (!(rctx = kf_new(&opt)) || !(ref = kft_compile(rctx, s, KF_JIT_REFERENCE)))
        goto out;
    for (int t = 0; t < nthreads; t++) {
        opt.threads = threads[t];
        if (!(ctx[t] = kf_new(&opt)) || !(k[t] = kft_compile(ctx[t], s, KF_JIT_TCC)))
            goto out;
    }
    if (kft_data_make(&d, ref, Mmax, Nmax, lo, hi, grid, seed) != 0)
        goto out;
    total = 0;
    /* the reference side once per size, then every thread count against it */
    for (int q = 0; q < nsizes && total >= 0; q++) {
        refside rs;
        if (refside_make(s, ref, sizes[q][0], sizes[q][1], &d, &rs) != 0) {
            total = -1;
            break;
        }
        for (int t = 0; t < nthreads && total >= 0; t++) {
            int bad = compare_with(s, k[t], ref, &rs, sizes[q][0], sizes[q][1], &d);
            total = bad < 0 ? -1 : total + bad;
        }
        refside_free(&rs);
    }
out:
    kft_data_free(&d);
    for (int t = 0; t < nthreads; t++)
        kf_kernel_free(k[t]), kf_free(ctx[t]);
    kf_kernel_free(ref);
    kf_free(rctx);
    return total;
}

const char *const kft_red_al[KFT_NRED_AL] = {"x=Vi(0,3)", "y=Vj(1,3)", "p=Pm(2,1)", "a=Vi(3,1)", "b=Vj(4,1)"};

const kft_red_case kft_red_cases[KFT_NRED] = {
    {"Sum", KFT_F_SUM, NULL, 0},
    {"Max", KFT_F_EXT, NULL, 0},
    {"Min", KFT_F_EXT, NULL, 0},
    {"ArgMax", KFT_F_EXT, NULL, 0},
    {"ArgMin", KFT_F_EXT, NULL, 0},
    {"Max_ArgMax", KFT_F_EXT, NULL, 0},
    {"Min_ArgMin", KFT_F_EXT, NULL, 0},
    {"KMin", KFT_F_KMIN, NULL, 3},
    {"ArgKMin", KFT_F_KMIN, NULL, 2},
    {"KMin_ArgKMin", KFT_F_KMIN, NULL, 4},
    {"LogSumExp", KFT_F_LSE, NULL, 0},
    {"LogSumExpWeight", KFT_F_LSE, "Concat(b*b + IntCst(1), Exp(y*a))", 0},
    {"SumSoftMaxWeight", KFT_F_LSE, "y*a + b", 0},
    {"Max_SumShiftExp", KFT_F_LSE, NULL, 0},
    {"Max_SumShiftExp", KFT_F_LSE, "Concat(b, y)", 0},
};

/* ---- random block-sparse patterns ---- */

void kft_pat_free(kft_pat *p)
{
    for (int t = 0; t < 2; t++)
        free(p->rng[t]), free(p->sl[t]), free(p->red[t]);
    memset(p, 0, sizeof *p);
}

kf_ranges kft_pat_view(const kft_pat *p)
{
    kf_ranges v = {p->nc[0], p->rng[0], p->sl[0], p->nred[0], p->red[0],
                   p->nc[1], p->rng[1], p->sl[1], p->nred[1], p->red[1]};
    return v;
}

int64_t kft_rnd(kft_rng *g, int64_t n)
{
    return n > 0 ? (int64_t)(kft_rng_next(g) % (uint64_t)n) : 0;
}

/* One random valid triple over `rows` outer rows and `inner` points: gaps (rows no cluster covers), empty clusters,
 * clusters of up to maxlen - 1 rows, empty lists, empty ranges, ranges in
 * any order, overlapping or repeated. */
static int random_triple(kft_rng *g, int64_t rows, int64_t inner, int64_t maxlen, kft_pat *p, int t)
{
    int64_t cap = rows + 2, nc = 0, nred = 0, s = 0;
    p->rng[t] = malloc(sizeof(int64_t) * (size_t)(2 * cap));
    p->sl[t] = malloc(sizeof(int64_t) * (size_t)cap);
    p->red[t] = malloc(sizeof(int64_t) * (size_t)(2 * 5 * cap));
    if (!p->rng[t] || !p->sl[t] || !p->red[t])
        return -1;
    while (nc < cap) {
        s += kft_rnd(g, 4) == 0 ? kft_rnd(g, 4) : 0;
        if (s > rows)
            break;
        int64_t len = kft_rnd(g, maxlen);
        if (s + len > rows)
            len = rows - s;
        p->rng[t][2 * nc] = s;
        p->rng[t][2 * nc + 1] = s += len;
        int64_t m = kft_rnd(g, 6); /* 0: an empty list */
        for (int64_t q = 0; q < m; q++) {
            int64_t a = kft_rnd(g, inner + 1), b = kft_rnd(g, inner + 1);
            if (kft_rnd(g, 5) == 0)
                b = a; /* an empty range */
            p->red[t][2 * nred] = a < b ? a : b;
            p->red[t][2 * nred + 1] = a < b ? b : a;
            nred++;
        }
        p->sl[t][nc++] = nred;
        if (s == rows && kft_rnd(g, 2))
            break;
    }
    p->nc[t] = nc;
    p->nred[t] = nred;
    return 0;
}

int kft_random_pat(kft_rng *g, int64_t M, int64_t N, int64_t maxlen, kft_pat *p)
{
    memset(p, 0, sizeof *p);
    return random_triple(g, M, N, maxlen, p, 0) || random_triple(g, N, M, maxlen, p, 1) ? -1 : 0;
}
