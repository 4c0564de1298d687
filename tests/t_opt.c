/* t_opt.c -- the optimizing tier's emitter (kfc_emit_c_opt): kernels compiled with cc -O3 into
 * shared objects and run directly against the reference evaluator (every op, every reduction,
 * both axes and dtypes, ragged sizes, several ranges); the inline exp/log against libm. */
#include <dlfcn.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "compiler/emit/emit_ops.h"
#include "compiler/emit/opt.h"
#include "runtime/rt.h"
#include "harness.h"
#include "testutil.h"

#define CC_FLAGS "-O3 -march=native -fPIC -shared -fno-math-errno -fno-trapping-math"
#define GARBAGE 12345.678

/* ---- compiling generated sources with cc ---- */

/* Whether cc is on PATH; if not, the calling test is skipped (kft_skip). */
static int have_cc(void)
{
    static int have = -1; /* the answer cannot change during a run */
    if (have < 0)
        have = system("command -v cc >/dev/null 2>&1") == 0;
    if (!have)
        kft_skip("no cc on PATH, the optimizing tier is not tested");
    return have;
}

typedef struct tdir {
    char path[64];
} tdir;

static int tdir_make(tdir *t)
{
    snprintf(t->path, sizeof t->path, "/tmp/kft_opt_XXXXXX");
    return mkdtemp(t->path) ? 0 : -1;
}

static void tdir_free(tdir *t)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->path);
    if (system(cmd) != 0)
        fprintf(stderr, "  could not remove %s\n", t->path);
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* Compiles dir/s0.c .. dir/s{n-1}.c into .so files, two cc at a time. */
static int cc_all(const tdir *t, int n)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && ls s*.c | xargs -P 2 -n 1 sh -c 'cc " CC_FLAGS " \"$0\" -o \"${0%%.c}.so\" -lm' ",
             t->path);
    (void)n;
    return system(cmd) == 0 ? 0 : -1;
}

static void *load(const tdir *t, int q, const char *sym, void **dl)
{
    char so[128];
    snprintf(so, sizeof so, "%s/s%d.so", t->path, q);
    *dl = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (!*dl) {
        fprintf(stderr, "  dlopen %s: %s\n", so, dlerror());
        return NULL;
    }
    return dlsym(*dl, sym);
}

/* ---- kernels ---- */

typedef struct okern {
    const char *f, *f2, *red;
    const char *const *al;
    int na, axis, K;
    kf_dtype dt;
    kf_sum_scheme scheme;
    kfc_prog p;
    kfc_red r;
    kfk_reduce_fn fn;
    void *dl;
} okern;

static int okern_build(okern *k)
{
    kfc_diag d;
    kfc_diag_clear(&d);
    kfc_prog_init(&k->p);
    if (kfc_parse(&k->p, k->f, k->f2, k->al, k->na, &d) || kfc_check(&k->p, k->f, k->f2, k->al, k->na, &d) ||
        kfc_simplify(&k->p, &d) || kfc_red_setup(&k->r, &k->p, k->red, k->axis, k->dt, k->K, k->scheme, &d)) {
        fprintf(stderr, "  build %s / %s: %s\n", k->f, k->red, d.msg);
        return -1;
    }
    return 0;
}

/* Builds, emits, compiles (all in one batch) and loads n kernels. */
static int okern_compile(okern *ks, int n, tdir *t)
{
    if (tdir_make(t))
        return -1;
    for (int q = 0; q < n; q++) {
        kfc_diag d;
        kfc_diag_clear(&d);
        if (okern_build(&ks[q]))
            return -1;
        char *src = kfc_emit_c_opt(&ks[q].p, &ks[q].r, &d);
        char path[128];
        snprintf(path, sizeof path, "%s/s%d.c", t->path, q);
        if (!src || write_file(path, src)) {
            fprintf(stderr, "  emit %s: %s\n", ks[q].f, src ? "write failed" : d.msg);
            free(src);
            return -1;
        }
        free(src);
    }
    if (cc_all(t, n))
        return -1;
    for (int q = 0; q < n; q++)
        if (!(ks[q].fn = (kfk_reduce_fn)load(t, q, KFK_ENTRY, &ks[q].dl)))
            return -1;
    return 0;
}

static void okern_free(okern *ks, int n)
{
    for (int q = 0; q < n; q++) {
        if (ks[q].dl)
            dlclose(ks[q].dl);
        kfc_prog_free(&ks[q].p);
    }
}

/* ---- data ---- */

typedef struct odata {
    void *arr[KFC_MAX_VARS];
} odata;

/* Values uniform in [lo, hi), multiples of 1/16 (grid) so that small sums
 * and products are exact in float32 too and discontinuous ops agree. */
static int odata_make(odata *o, const okern *k, int64_t M, int64_t N, double lo, double hi, uint64_t seed)
{
    kft_rng g;
    kft_rng_seed(&g, seed);
    memset(o, 0, sizeof *o);
    for (int v = 0; v < k->p.nvars; v++) {
        const kfc_var *x = &k->p.vars[v];
        if (!x->used)
            continue;
        int64_t n = (x->cat == KFC_CAT_I ? M : x->cat == KFC_CAT_J ? N : 1) * x->dim;
        if (!(o->arr[v] = malloc((size_t)(n > 0 ? n : 1) * 8)))
            return -1;
        for (int64_t q = 0; q < n; q++)
            kft_set(o->arr[v], k->dt, q, floor(kft_uniform(&g, lo, hi) * 16) / 16);
    }
    return 0;
}

static void odata_free(odata *o)
{
    for (int v = 0; v < KFC_MAX_VARS; v++)
        free(o->arr[v]);
}

/* ---- comparison with the reference ---- */

/* The first characters of a formula, for messages. */
static const char *label(const char *f, char *buf, size_t cap)
{
    snprintf(buf, cap, "%.60s%s", f, strlen(f) > 60 ? "..." : "");
    return buf;
}

/* floor: an absolute allowance on top of the relative one (the float exp's
 * flush of results below FLT_MIN: < FLT_MIN per term, docs/formulas.md). */
static int close_enough(double got, double exp, double scale, double tol, double floor)
{
    if (isnan(exp))
        return isnan(got);
    if (isinf(exp))
        return got == exp;
    if (!isfinite(got))
        return 0;
    if (!(scale >= 0 && scale < INFINITY))
        scale = 0;
    return fabs(got - exp) <= tol * (fabs(exp) + scale) + floor;
}

/* Per-row scales of the outputs (testutil.h explains the choice), from the
 * formula evaluated in double at every visited term. */
typedef struct scales {
    double *sum, *max, *g, *sg; /* per component: Sum|f|, Max|f|, Max|g|, Sum e^(f-m)|g| */
    double maxf, fabsmax;
} scales;

static void row_scales(const okern *k, const void *const *args, int64_t row, const int64_t *jr, int64_t nr,
                       double *scratch, double *fv, double *gv, scales *s)
{
    int64_t D = k->r.D, E = k->r.E;
    for (int64_t c = 0; c < D; c++)
        s->sum[c] = s->max[c] = 0;
    for (int64_t c = 0; c < E; c++)
        s->g[c] = s->sg[c] = 0;
    s->maxf = -INFINITY, s->fabsmax = 0;
    int has2 = kfc_red_info[k->r.id].formula2 && k->p.root2 >= 0;
    for (int pass = 0; pass < 2; pass++) /* pass 1 needs the max of f */
        for (int64_t q = 0; q < nr; q++)
            for (int64_t t = jr[2 * q]; t < jr[2 * q + 1]; t++) {
                int64_t i = k->axis == 1 ? row : t, j = k->axis == 1 ? t : row;
                kfk_ref_eval(&k->p, k->p.root, k->dt, args, i, j, scratch, fv);
                if (has2)
                    kfk_ref_eval(&k->p, k->p.root2, k->dt, args, i, j, scratch, gv);
                for (int64_t c = 0; c < D && pass == 0; c++) {
                    s->sum[c] += fabs(fv[c]);
                    s->max[c] = fmax(s->max[c], fabs(fv[c]));
                    s->maxf = fmax(s->maxf, fv[0]);
                    s->fabsmax = fmax(s->fabsmax, fabs(fv[0]));
                }
                for (int64_t c = 0; c < E && pass == 1; c++) {
                    double gc = has2 ? fabs(gv[c]) : 1;
                    s->g[c] = fmax(s->g[c], gc);
                    s->sg[c] += exp(fv[0] - s->maxf) * gc;
                }
            }
}

static double scale_of(const okern *k, const scales *s, int64_t q)
{
    int64_t D = k->r.D;
    double lf = 1 + s->fabsmax;
    switch (k->r.id) {
    case KFC_RED_SUM: return s->sum[q];
    case KFC_RED_KMIN: case KFC_RED_ARGKMIN: case KFC_RED_KMIN_ARGKMIN: return s->max[q % D];
    case KFC_RED_LOGSUMEXP: case KFC_RED_LOGSUMEXPWEIGHT: return lf;
    case KFC_RED_SUMSOFTMAXWEIGHT: return s->g[q] * lf;
    case KFC_RED_MAX_SUMSHIFTEXP: return q == 0 ? lf : s->sg[q - 1] * lf;
    default: return s->max[q];
    }
}

/* Runs k over rows [r0, r1) of `rows` with ranges jr, and the reference over
 * the same; checks every value and index of those rows and that the other
 * rows were not written. Returns the number of mismatches (printed), -1 on
 * a failure to allocate. */
static int compare(const okern *k, const odata *o, int64_t rows, int64_t r0, int64_t r1, const int64_t *jr,
                   int64_t nr, int64_t inner)
{
    const void *const *args = (const void *const *)o->arr;
    int64_t vd = k->r.valdim, xd = k->r.idxdim, D = k->r.D;
    size_t es = k->dt == KF_FLOAT32 ? 4 : 8;
    void *got = malloc((size_t)(rows * vd + 1) * es), *exp = malloc((size_t)(rows * vd + 1) * es);
    int64_t *gi = malloc((size_t)(rows * xd + 1) * 8), *ei = malloc((size_t)(rows * xd + 1) * 8);
    double *scratch = malloc((kfk_ref_scratch_size(&k->p) + 1) * sizeof(double));
    double *fv = malloc((size_t)(D + k->r.E + 1) * 8), *gv = malloc((size_t)(k->r.E + 1) * 8);
    scales s = {malloc((size_t)D * 8), malloc((size_t)D * 8), malloc((size_t)k->r.E * 8), malloc((size_t)k->r.E * 8), 0, 0};
    int bad = -1;
    if (!got || !exp || !gi || !ei || !scratch || !fv || !gv || !s.sum || !s.max || !s.g || !s.sg)
        goto done;
    for (int64_t q = 0; q < rows * vd; q++)
        kft_set(got, k->dt, q, GARBAGE), kft_set(exp, k->dt, q, GARBAGE);
    for (int64_t q = 0; q < rows * xd; q++)
        gi[q] = ei[q] = 777;
    k->fn(args, r0, r1, jr, nr, vd ? got : NULL, xd ? gi : NULL);
    if (kfk_ref_reduce(&k->p, &k->r, args, r0, r1, jr, nr, vd ? exp : NULL, xd ? ei : NULL) != KF_OK)
        goto done;
    bad = 0;
    double tol = kft_tol(k->dt);
    /* each float term may lose up to FLT_MIN to the exp's flush; a value is
     * at most a sum of `inner` terms (and SoftMax's ratio, of two such) */
    double floor = k->dt == KF_FLOAT32 ? 2.0 * (double)inner * FLT_MIN : 0;
    int printed = 0;
    char lb[80];
    label(k->f, lb, sizeof lb);
    for (int64_t row = 0; row < rows; row++) {
        int inside = row >= r0 && row < r1;
        if (inside)
            row_scales(k, args, row, jr, nr, scratch, fv, gv, &s);
        for (int64_t q = 0; q < vd; q++) {
            double a = kft_get(got, k->dt, row * vd + q), b = kft_get(exp, k->dt, row * vd + q);
            int ok = inside ? close_enough(a, b, scale_of(k, &s, q), tol, floor)
                            : a == kft_get(exp, k->dt, row * vd + q);
            if (!ok && printed++ < 5)
                fprintf(stderr, "  MISMATCH value %s / %s axis %d %s rows %lld [%lld,%lld) nr %lld: row %lld comp %lld "
                                "got %.9g expected %.9g\n",
                        lb, k->red, k->axis, k->dt == KF_FLOAT32 ? "f32" : "f64", (long long)rows, (long long)r0,
                        (long long)r1, (long long)nr, (long long)row, (long long)q, a, b);
            bad += !ok;
        }
        for (int64_t q = 0; q < xd; q++) {
            int64_t a = gi[row * xd + q], b = ei[row * xd + q];
            int ok = a == b;
            if (!ok && inside && a >= 0 && b >= 0 && a < inner && b < inner) {
                /* a different index is fine only for a tie in value */
                int64_t c = q % D;
                double fa, fb;
                kfk_ref_eval(&k->p, k->p.root, k->dt, args, k->axis == 1 ? row : a, k->axis == 1 ? a : row,
                             scratch, fv);
                fa = fv[c];
                kfk_ref_eval(&k->p, k->p.root, k->dt, args, k->axis == 1 ? row : b, k->axis == 1 ? b : row,
                             scratch, fv);
                fb = fv[c];
                ok = isfinite(fa) && isfinite(fb) && fabs(fa - fb) <= tol * (fabs(fb) + s.max[c]);
            }
            if (!ok && printed++ < 5)
                fprintf(stderr, "  MISMATCH index %s / %s axis %d rows %lld nr %lld: row %lld slot %lld got %lld expected %lld\n",
                        lb, k->red, k->axis, (long long)rows, (long long)nr, (long long)row, (long long)q,
                        (long long)a, (long long)b);
            bad += !ok;
        }
    }
done:
    free(got), free(exp), free(gi), free(ei), free(scratch), free(fv), free(gv);
    free(s.sum), free(s.max), free(s.g), free(s.sg);
    return bad;
}

/* The usual sweep: ragged sizes around the lane count, a window of rows, and
 * several ranges (empty, reversed, repeated, overlapping, across Sum blocks). */
static int sweep(const okern *k, uint64_t seed)
{
    static const int64_t sizes[][2] = {{0, 5}, {5, 0}, {1, 1}, {7, 7}, {8, 9}, {9, 1}, {17, 255}, {3, 1000}, {1000, 3}};
    int bad = 0;
    for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
        int64_t M = sizes[z][0], N = sizes[z][1];
        int64_t rows = k->axis == 1 ? M : N, inner = k->axis == 1 ? N : M;
        odata o;
        if (odata_make(&o, k, M, N, -1, 1, seed + z)) {
            odata_free(&o);
            return -1;
        }
        int64_t jr[2] = {0, inner};
        bad += compare(k, &o, rows, 0, rows, jr, 1, inner);
        if (rows > 2)
            bad += compare(k, &o, rows, 1, rows - 1, jr, 1, inner);
        if (inner >= 9) {
            int64_t many[] = {0, 3, 5, 5, 2, 9, 9, 4, 1, inner, inner - 2, inner};
            bad += compare(k, &o, rows, 0, rows, many, 6, inner);
            bad += compare(k, &o, rows, 0, rows, many, 0, inner);
        }
        odata_free(&o);
    }
    return bad;
}

static int run_batch(okern *ks, int n, uint64_t seed)
{
    tdir t = {{0}};
    int bad = -1;
    if (okern_compile(ks, n, &t) == 0) {
        bad = 0;
        for (int q = 0; q < n; q++) {
            int b = sweep(&ks[q], seed + (uint64_t)q * 100);
            char lb[80];
            KFT_CHECKF(b == 0, "%s / %s axis %d dtype %d: %d mismatches", label(ks[q].f, lb, sizeof lb), ks[q].red, ks[q].axis,
                       (int)ks[q].dt, b);
            bad += b != 0;
        }
    }
    if (t.path[0])
        tdir_free(&t);
    okern_free(ks, n);
    return bad;
}

/* ---- every op ---- */

static const char *const op_al[] = {"x=Vi(0,3)", "y=Vj(1,3)", "u=Vi(2,1)", "w=Vj(3,1)", "p=Pm(4,3)"};

/* Each op at least once, at every level (parameter-only, outer-only,
 * inner-only, both), on grid data in [-1, 1) where every op is defined. */
static const char *const op_exprs[] = {
    "Exp(x-y)", "Log(Abs(x-y)+IntCst(1))", "Sin(x*y)", "Cos(x+y)", "Asin(x*y/IntCst(4))",
    "Acos(u*w/IntCst(2))", "Atan(x-y)", "Sqrt(Abs(x-y))", "Rsqrt(Abs(x-y))", "Inv(Abs(x-y)+IntCst(1))",
    "Abs(x-y)", "Sign(x-y)", "Step(x-y)", "ReLU(x-y)", "Floor(x*y*IntCst(3))", "Square(x-y)",
    "XLogX(Abs(x-y))", "SinXDivX(x-y)", "Pow(x-y,3)", "Pow(x-y+IntCst(3),-2)", "Pow(x-y,0)", "Pow(x,70)",
    "Round(x*y,2)", "ClampInt(x*IntCst(3)-y,0,1)", "x+y", "x-y", "x*y", "x/(y+IntCst(3))", "Atan2(x,y)",
    "Powf(Abs(x)+IntCst(1),y)", "Equal(x,y)", "NotEqual(x,y)", "LessThan(x,y)", "LessOrEqual(x,y)",
    "IfElse(x-y,x,y)", "Clamp(x,y,p)", "Mod(x*IntCst(3),IntCst(2),y)", "Sum(x*y)", "Max(x-y)", "Min(x-y)",
    "ArgMax(x-y)", "ArgMin(x-y)", "(x|y)", "SqNorm2(x-y)", "Norm2(x-y)", "SqDist(x,y)",
    "WeightedSqNorm(u*u,x-y)", "WeightedSqNorm(p,x-y)", "WeightedSqDist(TensorProd(x,y),x,p)", "Normalize(x-y)",
    "Elem(x,1)", "ElemT(u*w,4,2)", "Extract(Concat(x,y),2,3)", "ExtractT(x-y,1,6)",
    "OneHot(u*w*IntCst(4)+IntCst(2),5)", "SumT(u-w,3)", "MatVecMult(TensorProd(x,y),p)",
    "VecMatMult(p,TensorProd(x,y))", "TensorProd(x,y)", "Exp(p)*Sin(x)+Cos(y)", "Log(p*p+IntCst(1))*u",
    "Sqrt(x*x)+w", "Exp(u)*Exp(w)", "-x", "Zero(3)+x", "RatCst(1,3)*y+0.3",
    /* the shapes the optimizing tier fuses into kf_vexpns (compiler/emit/exp_fuse.c) */
    "Exp(-SqDist(x,y)/IntCst(2))", "Exp(-Norm2(x-y)*0.3)", "Exp(-(Abs(x-y)+Square(y))*IntCst(2)*0.7)",
    "Exp(Sqrt(Abs(x))*RatCst(-3,4))", "Exp(-SqDist(x,y)/IntCst(3))",
    /* complex (even dims; Concat(u,w) is one complex number), every level */
    "ComplexMult(Concat(x,y),Concat(y,p))", "ComplexMult(Concat(u,w),Concat(x,p))", "ComplexMult(Concat(p,p),Concat(p,p))",
    "ComplexAdd(Concat(x,y),Concat(w,u))", "ComplexSubtract(Concat(p,x),Concat(y,p))",
    "ComplexDivide(Concat(x,y),Real2Complex(Abs(x)+IntCst(1))+Imag2Complex(y))",
    "ComplexDivide(Concat(u,w),Real2Complex(Abs(p)+IntCst(1)))", "Conj(Concat(x,p))", "Conj(Concat(u,u))",
    "ComplexExp(Concat(x,y))", "ComplexExp(Concat(p,p))", "ComplexExp1j(x-y)", "Real2Complex(x*y)",
    "Imag2Complex(p-y)", "ComplexReal(Concat(x,y))", "ComplexImag(Concat(p,y))", "ComplexSquareAbs(Concat(x,y))",
    "ComplexAbs(Concat(x,y))", "ComplexAngle(Concat(x,y))", "ComplexAngle(Concat(w,w))",
    "ComplexScal(Concat(u,w),Concat(x,y))", "ComplexScal(Concat(x,y),Concat(w,u))",
    "ComplexRealScal(Concat(x,y),w)", "ComplexRealScal(u,Concat(p,y))", "ComplexSum(Concat(x,y))",
    "ComplexSumT(Concat(u,w),6)",
};

/* Concat(e0, Concat(e1, ...)) of op_exprs[a..b). */
static char *concat(size_t a, size_t b)
{
    kfc_buf s = {0};
    for (size_t q = a; q < b; q++)
        kfc_buf_printf(&s, q + 1 < b ? "Concat(%s," : "%s", op_exprs[q]);
    for (size_t q = a; q + 1 < b; q++)
        kfc_buf_printf(&s, ")");
    return s.oom ? (free(s.s), NULL) : s.s;
}

KFT_TEST(opt_every_op)
{
    if (!have_cc())
        return;
    size_t n = sizeof op_exprs / sizeof op_exprs[0], half = n / 2;
    char *f1 = concat(0, half), *f2 = concat(half, n);
    KFT_CHECK(f1 && f2);
    okern ks[] = {
        {.f = f1, .red = "Sum", .al = op_al, .na = 5, .axis = 1, .dt = KF_FLOAT32},
        {.f = f2, .red = "Sum", .al = op_al, .na = 5, .axis = 1, .dt = KF_FLOAT32},
        {.f = f1, .red = "Sum", .al = op_al, .na = 5, .axis = 0, .dt = KF_FLOAT64},
        {.f = f2, .red = "Sum", .al = op_al, .na = 5, .axis = 0, .dt = KF_FLOAT64},
    };
    if (f1 && f2)
        KFT_CHECK(run_batch(ks, 4, 100) == 0);
    free(f1), free(f2);
}

/* ---- every reduction ---- */

static const char *const red_al[] = {"x=Vi(0,3)", "y=Vj(1,3)", "w=Vj(2,1)", "u=Vi(3,1)"};

static void reductions(kf_dtype dt, int axis, uint64_t seed)
{
    const char *vec = "Concat(SqDist(x,y),Sin(x-y))", *sc = "-SqDist(x,y)*IntCst(4)+u", *g = "Concat(y,w)";
    okern ks[] = {
        {.f = vec, .red = "Sum"},
        {.f = vec, .red = "Max"},
        {.f = vec, .red = "Min"},
        {.f = vec, .red = "ArgMax"},
        {.f = vec, .red = "ArgMin"},
        {.f = vec, .red = "Max_ArgMax"},
        {.f = vec, .red = "Min_ArgMin"},
        {.f = vec, .red = "KMin", .K = 3},
        {.f = vec, .red = "ArgKMin", .K = 3},
        {.f = vec, .red = "KMin_ArgKMin", .K = 20}, /* K > 16: the slot loop is not unrolled */
        {.f = sc, .red = "LogSumExp"},
        {.f = sc, .f2 = g, .red = "LogSumExpWeight"},
        {.f = sc, .f2 = g, .red = "SumSoftMaxWeight"},
        {.f = sc, .f2 = g, .red = "Max_SumShiftExp"},
        {.f = sc, .red = "Max_SumShiftExp"},
        {.f = vec, .red = "Sum", .scheme = KF_SUM_DIRECT},
        {.f = vec, .red = "Sum", .scheme = KF_SUM_F64},
        {.f = vec, .red = "Sum", .scheme = KF_SUM_KAHAN},
    };
    int n = (int)(sizeof ks / sizeof ks[0]);
    if (dt == KF_FLOAT64) {
        /* each cc costs ~0.15 s: the other dtype and axis get one reduction
         * of each skeleton family and state layout (float64 Sums always
         * accumulate in double, so no schemes) */
        static const int pick[] = {0, 3, 6, 7, 10, 12, 14};
        okern sub[sizeof pick / sizeof pick[0]];
        n = (int)(sizeof pick / sizeof pick[0]);
        for (int q = 0; q < n; q++)
            sub[q] = ks[pick[q]];
        memcpy(ks, sub, sizeof sub);
    }
    for (int q = 0; q < n; q++)
        ks[q].al = red_al, ks[q].na = 4, ks[q].axis = axis, ks[q].dt = dt;
    KFT_CHECK(run_batch(ks, n, seed) == 0);
}

KFT_TEST(opt_reductions_f32_axis1)
{
    if (have_cc())
        reductions(KF_FLOAT32, 1, 200);
}

KFT_TEST(opt_reductions_f64_axis0)
{
    if (have_cc())
        reductions(KF_FLOAT64, 0, 300);
}

/* Large dims: component loops that are not unrolled (dim > KFC_OPT_UNROLL),
 * and a Min_ArgMin over them. */
KFT_TEST(opt_large_dims)
{
    if (!have_cc())
        return;
    static const char *const al[] = {"x=Vi(0,70)", "y=Vj(1,70)"};
    okern ks[] = {
        {.f = "Exp(-Square(x-y))", .red = "Sum", .al = al, .na = 2, .axis = 1, .dt = KF_FLOAT32},
        {.f = "Square(x-y)*x", .red = "Min_ArgMin", .al = al, .na = 2, .axis = 0, .dt = KF_FLOAT64},
        /* complex templates and ComplexSum over 70 complex components: looped */
        {.f = "Concat(ComplexMult(Concat(x,y),Concat(y,x)),Concat(ComplexReal(Concat(x,y)),ComplexSum(Concat(x,y))))",
         .red = "Sum", .al = al, .na = 2, .axis = 1, .dt = KF_FLOAT64},
    };
    KFT_CHECK(run_batch(ks, 3, 400) == 0);
}

/* Sums over 8 to KFC_OPT_UNROLL components go to 4 partial sums (emit_ops.c,
 * split_sum): the kernels at the edges (7, 8, 9, 64, 65: unsplit, split,
 * looped) against the reference for every summing op, both dtypes and axes,
 * and the source's shape. */
KFT_TEST(opt_split_component_sums)
{
    if (!have_cc())
        return;
    static const int dims[] = {7, 8, 9, 64, 65};
    static const char *const fs[] = {"Exp(-SqDist(x,y)*0.01)", "Sum(x*y)", "SqNorm2(x-y)", "Norm2(x-y)*w",
                                     "(x|y)"};
    enum { ND = 5, NF = 5 };
    for (int q = 0; q < ND; q++) {
        char ax[32], ay[32];
        snprintf(ax, sizeof ax, "x=Vi(0,%d)", dims[q]);
        snprintf(ay, sizeof ay, "y=Vj(1,%d)", dims[q]);
        const char *al[] = {ax, ay, "w=Vj(2,1)"};
        okern ks[NF * 2];
        memset(ks, 0, sizeof ks);
        for (int f = 0; f < NF * 2; f++)
            ks[f] = (okern){.f = fs[f % NF], .red = "Sum", .al = al, .na = 3, .axis = f & 1,
                            .dt = f < NF ? KF_FLOAT32 : KF_FLOAT64};
        /* the shape: split exactly from 8 to KFC_OPT_UNROLL components */
        if (KFT_CHECK(okern_build(&ks[0]) == 0)) {
            kfc_diag d;
            kfc_diag_clear(&d);
            char *src = kfc_emit_c_opt(&ks[0].p, &ks[0].r, &d);
            int split = dims[q] >= 8 && dims[q] <= KFC_OPT_UNROLL;
            KFT_CHECKF(src && (strstr(src, "kf_s[4]") != NULL) == split, "D = %d: split %d expected", dims[q],
                       split);
            free(src);
            kfc_prog_free(&ks[0].p);
            kfc_prog_init(&ks[0].p);
        }
        KFT_CHECKF(run_batch(ks, NF * 2, 900 + (uint64_t)q) == 0, "D = %d", dims[q]);
    }
}

/* ---- special values through whole kernels ---- */

/* Data with the special values in the outer variable u and 1 in w. */
static int special_run(okern *k, const double *uv, int64_t M, int64_t N)
{
    odata o;
    memset(&o, 0, sizeof o);
    o.arr[0] = malloc((size_t)M * 8);
    o.arr[1] = malloc((size_t)N * 8);
    if (!o.arr[0] || !o.arr[1]) {
        odata_free(&o);
        return -1;
    }
    for (int64_t q = 0; q < M; q++)
        kft_set(o.arr[0], k->dt, q, uv[q]);
    for (int64_t q = 0; q < N; q++)
        kft_set(o.arr[1], k->dt, q, q % 2 ? 1.0 : 0.5);
    int64_t jr[2] = {0, N};
    int bad = compare(k, &o, M, 0, M, jr, 1, N);
    odata_free(&o);
    return bad;
}

/* Compiles the n kernels in one batch and runs each with special_run over
 * the values uv (M rows) at 1, 5 and 9 inner points. */
static void special_batch(okern *ks, int n, const double *uv, int64_t M)
{
    tdir t = {{0}};
    if (okern_compile(ks, n, &t) == 0) {
        for (int q = 0; q < n; q++)
            for (int64_t N = 1; N <= 9; N += 4)
                KFT_CHECKF(special_run(&ks[q], uv, M, N) == 0, "%s / %s N=%lld", ks[q].f, ks[q].red,
                           (long long)N);
    } else {
        KFT_CHECK(!"compile");
    }
    if (t.path[0])
        tdir_free(&t);
}

KFT_TEST(opt_special_values)
{
    if (!have_cc())
        return;
    static const char *const al[] = {"u=Vi(0,1)", "w=Vj(1,1)"};
    /* (float32 sums of subnormal terms differ from the double reference by whole
     * subnormal ulps, far above the relative tolerance: no subnormal results here;
     * t_opt_vmath_accuracy checks them directly) */
    const double uv[] = {-1000, 100, NAN, -INFINITY, INFINITY, 0.5, 0, -0.0, -1, -60, 1e-40, 1e-310, -80};
    int64_t M = (int64_t)(sizeof uv / sizeof uv[0]);
    okern ks[] = {
        {.f = "Exp(u*w)", .red = "Sum", .al = al, .na = 2, .axis = 1, .dt = KF_FLOAT32},
        {.f = "Exp(u*w)", .red = "Sum", .al = al, .na = 2, .axis = 1, .dt = KF_FLOAT64},
        /* kf_vexpns: NaN, inf, -0 and far tails through the clamp on s */
        {.f = "Exp(-Square(u)/IntCst(2))*w", .red = "Sum", .al = al, .na = 2, .axis = 1, .dt = KF_FLOAT32},
        {.f = "Exp(-Abs(u)*0.3)", .red = "Max", .al = al, .na = 2, .axis = 1, .dt = KF_FLOAT32},
        {.f = "Exp(Sqrt(u)*IntCst(-2))", .red = "Min", .al = al, .na = 2, .axis = 1, .dt = KF_FLOAT32},
        {.f = "Exp(-Square(u)/IntCst(2))*w", .red = "Sum", .al = al, .na = 2, .axis = 1, .dt = KF_FLOAT64},
        {.f = "Exp(-Abs(u)*0.3)", .red = "Max", .al = al, .na = 2, .axis = 1, .dt = KF_FLOAT64},
        {.f = "Log(u*w)", .red = "Max", .al = al, .na = 2, .axis = 1, .dt = KF_FLOAT32},
        {.f = "Log(u*w)", .red = "Min", .al = al, .na = 2, .axis = 1, .dt = KF_FLOAT64},
        {.f = "u*w", .red = "LogSumExp", .al = al, .na = 2, .axis = 1, .dt = KF_FLOAT32},
        {.f = "u*w", .f2 = "w", .red = "SumSoftMaxWeight", .al = al, .na = 2, .axis = 1, .dt = KF_FLOAT64},
        {.f = "u*w", .red = "KMin_ArgKMin", .K = 3, .al = al, .na = 2, .axis = 1, .dt = KF_FLOAT32},
        /* a row of +inf terms: the first term is taken, index 0 */
        {.f = "u*w", .red = "Min_ArgMin", .al = al, .na = 2, .axis = 1, .dt = KF_FLOAT32},
    };
    int n = (int)(sizeof ks / sizeof ks[0]);
    special_batch(ks, n, uv, M);
    okern_free(ks, n);
}

/* Mod(x,n,d) = x - n*floor((x-d)/n) with the product rounded, as the
 * reference computes it: fused into one FMA, x = 1e16, n = 0.3 gave -0.43
 * (outside [0, 0.3)) where the reference and libtcc give 0. float64 only:
 * a float32 Mod of 1e16 is as far from the double reference as float32 is. */
KFT_TEST(opt_mod_product_is_rounded)
{
    if (!have_cc())
        return;
    static const char *const al[] = {"u=Vi(0,1)", "w=Vj(1,1)"};
    const double uv[] = {1e16, -1e16, 3e15, 1e8, 7.5, -0.25};
    int64_t M = (int64_t)(sizeof uv / sizeof uv[0]);
    okern ks[] = {
        {.f = "Mod(u,w*IntCst(3)/IntCst(5),IntCst(0))", .red = "Max", .al = al, .na = 2, .axis = 1,
         .dt = KF_FLOAT64},
        {.f = "Mod(u,w*IntCst(3)/IntCst(5),IntCst(0))", .red = "Min", .al = al, .na = 2, .axis = 1,
         .dt = KF_FLOAT64},
        {.f = "Mod(u,w*IntCst(3)/IntCst(5),w)", .red = "Sum", .al = al, .na = 2, .axis = 1,
         .dt = KF_FLOAT64},
    };
    int n = (int)(sizeof ks / sizeof ks[0]);
    special_batch(ks, n, uv, M);
    okern_free(ks, n);
}

/* float exp results below FLT_MIN are flushed to +0 (kernels/vmath.c): the
 * Gaussian of a tiny bandwidth (terms e^-88 .. e^-103, all subnormal in a
 * row) sums to 0 where the double reference has ~1e-39 per term, within the
 * documented bound of FLT_MIN per term; terms above FLT_MIN are exact to
 * the usual tolerance; the plain and fused exps flush alike. */
KFT_TEST(opt_exp_flush_bound)
{
    if (!have_cc())
        return;
    static const char *const al[] = {"u=Vi(0,1)", "w=Vj(1,1)"};
    const double uv[] = {-88, -95, -100, -103.5, -87.3, -87.4, -60, -20};
    int64_t M = (int64_t)(sizeof uv / sizeof uv[0]);
    okern ks[] = {
        {.f = "Exp(u)*w", .red = "Sum", .al = al, .na = 2, .axis = 1, .dt = KF_FLOAT32},
        {.f = "Exp(u*w*IntCst(2))", .red = "Sum", .al = al, .na = 2, .axis = 1, .dt = KF_FLOAT32},
        /* the fused Gaussian exp (compiler/emit/exp_fuse.c): s = u^2 >= 0, c = -1/200 */
        {.f = "Exp(-Square(u)/IntCst(200))*w", .red = "Sum", .al = al, .na = 2, .axis = 1, .dt = KF_FLOAT32},
    };
    int n = (int)(sizeof ks / sizeof ks[0]);
    special_batch(ks, n, uv, M);
    /* and the flush itself: rows of subnormal terms are exactly +0 (the
     * objects stay loaded after the batch's directory is gone) */
    if (ks[0].fn) {
        float u[4] = {-88, -95, -100, -103.5f}, w[4] = {1, 0.5f, 1, 0.5f}, out[4] = {1, 1, 1, 1};
        const void *args[2] = {u, w};
        int64_t jr[2] = {0, 4};
        ks[0].fn(args, 0, 4, jr, 1, out, NULL);
        for (int r = 0; r < 4; r++)
            KFT_CHECKF(out[r] == 0 && !signbit(out[r]), "row %d: %g, not +0", r, out[r]);
    }
    okern_free(ks, n);
}

/* On an AVX-512 CPU the kernel's lanes fill 512-bit vectors: emitted for
 * vec_bits 512 and compiled as the cc tier would there (-march for such a
 * CPU, -mprefer-vector-width=512), the Gaussian's object uses zmm registers,
 * and the 256-bit source compiled the same way does not need them. Compiled
 * only (-c), so any x86-64 machine checks it; whether an AVX-512 machine is
 * faster is docs/performance.md's business. */
KFT_TEST(opt_avx512_code_is_512_bit)
{
    if (!have_cc())
        return;
    if (system("command -v objdump >/dev/null 2>&1") != 0) {
        kft_skip("no objdump on PATH to read the object's instructions");
        return;
    }
#if !defined(__x86_64__)
    kft_skip("not an x86-64 machine");
    return;
#endif
    okern k = {.f = "Exp(-SqDist(x,y)/IntCst(2))*w", .red = "Sum", .al = red_al, .na = 3, .axis = 1,
               .dt = KF_FLOAT32};
    if (!KFT_CHECK(okern_build(&k) == 0))
        return;
    tdir t = {{0}};
    KFT_CHECK(tdir_make(&t) == 0);
    int zmm[2] = {-1, -1};
    for (int w = 0; w < 2; w++) {
        kfc_diag d;
        kfc_diag_clear(&d);
        char *src = kfc_emit_c_opt_w(&k.p, &k.r, w ? 512 : 256, &d);
        char path[128], cmd[512];
        snprintf(path, sizeof path, "%s/w%d.c", t.path, w);
        if (!KFT_CHECK(src && write_file(path, src) == 0)) {
            free(src);
            continue;
        }
        KFT_CHECK(strstr(src, w ? "#define KF_RB 16\n" : "#define KF_RB 8\n") != NULL);
        free(src);
        snprintf(cmd, sizeof cmd,
                 "cd '%s' && cc -O3 -march=skylake-avx512 -mprefer-vector-width=512 -fPIC "
                 "-fno-math-errno -fno-trapping-math -c w%d.c -o w%d.o && "
                 "objdump -d w%d.o | grep -c zmm > w%d.n",
                 t.path, w, w, w, w);
        int rc = system(cmd);
        snprintf(path, sizeof path, "%s/w%d.n", t.path, w);
        char *n = kft_read_file(path);
        if (n)
            zmm[w] = atoi(n);
        free(n);
        (void)rc; /* grep -c exits 1 when it counts 0 */
    }
    KFT_CHECKF(zmm[1] > 20, "512-bit lanes: %d instructions on zmm registers", zmm[1]);
    KFT_CHECKF(zmm[0] >= 0, "256-bit lanes: not compiled");
    fprintf(stderr, "  zmm instructions: 256-bit source %d, 512-bit source %d\n", zmm[0], zmm[1]);
    tdir_free(&t);
    okern_free(&k, 1);
}

/* The complex templates are straight-line, branch-free code: the lane loop
 * of a formula of complex products, a quotient and moduli vectorizes (its
 * divisions and square roots are packed AVX2 instructions), compiled as the
 * cc tier would for an AVX2 CPU. */
KFT_TEST(opt_complex_code_vectorizes)
{
    if (!have_cc())
        return;
    if (system("command -v objdump >/dev/null 2>&1") != 0) {
        kft_skip("no objdump on PATH to read the object's instructions");
        return;
    }
#if !defined(__x86_64__)
    kft_skip("not an x86-64 machine");
    return;
#endif
    okern k = {.f = "ComplexAbs(ComplexDivide(ComplexMult(Concat(x,y),Concat(y,x)),Concat(w,u)))", .red = "Sum",
               .al = red_al, .na = 4, .axis = 1, .dt = KF_FLOAT32};
    if (!KFT_CHECK(okern_build(&k) == 0))
        return;
    tdir t = {{0}};
    KFT_CHECK(tdir_make(&t) == 0);
    kfc_diag d;
    kfc_diag_clear(&d);
    char *src = kfc_emit_c_opt(&k.p, &k.r, &d), path[128], cmd[512];
    snprintf(path, sizeof path, "%s/c.c", t.path);
    int packed[2] = {-1, -1};
    if (KFT_CHECK(src && write_file(path, src) == 0)) {
        snprintf(cmd, sizeof cmd,
                 "cd '%s' && cc -O3 -march=haswell -fPIC -fno-math-errno -fno-trapping-math -c c.c -o c.o && "
                 "objdump -d c.o > c.s && grep -c 'vdivps.*ymm' c.s > div.n; grep -c 'vsqrtps.*ymm' c.s > sqrt.n",
                 t.path);
        int rc = system(cmd);
        (void)rc; /* grep -c exits 1 when it counts 0 */
        for (int q = 0; q < 2; q++) {
            snprintf(path, sizeof path, "%s/%s.n", t.path, q ? "sqrt" : "div");
            char *n = kft_read_file(path);
            if (n)
                packed[q] = atoi(n);
            free(n);
        }
    }
    free(src);
    KFT_CHECKF(packed[0] > 0 && packed[1] > 0, "packed ymm divisions %d, square roots %d", packed[0], packed[1]);
    tdir_free(&t);
    okern_free(&k, 1);
}

/* ---- the inline exp/log against libm ---- */

static const char vm_wrap_f[] = "float kft_exp(float x) { return kf_vexp(x); }\n"
                                "float kft_log(float x) { return kf_vlog(x); }\n"
                                "float kft_expns(float s, float c, float cl) { return kf_vexpns(s, c, cl); }\n"
                                "float kft_expns2(float s, float cl, float st, const float *k)\n"
                                "{ return kf_vexpns2(s, cl, st, k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7]); }\n";
static const char vm_wrap_d[] = "double kft_exp(double x) { return kf_vexp(x); }\n"
                                "double kft_log(double x) { return kf_vlog(x); }\n"
                                "double kft_expns(double s, double c, double cl, long long sl) { return kf_vexpns(s, c, cl, sl); }\n"
                                "double kft_expns2(double s, double cl, long long sl, const double *k)\n"
                                "{ return kf_vexpns2(s, cl, sl, k[0], k[1], k[2], k[3], k[4], k[5], k[6], k[7], k[8], k[9], k[10],\n"
                                "                    k[11], k[12]); }\n";

/* Error in units of the last place of the correctly rounded result (the
 * spacing at |expected|; the smallest subnormal at 0). Overflow to inf of a
 * result above the largest finite number counts as exact. */
static double ulps(double got, long double ex, int f32)
{
    double e = f32 ? (double)(float)ex : (double)ex;
    if (isnan(e) || isnan(got))
        return isnan(e) && isnan(got) ? 0 : 1e9;
    double big = f32 ? 3.4028234663852886e38 : 1.7976931348623157e308;
    if (isinf(got) && fabsl(ex) > big)
        return 0;
    if (isinf(e) || isinf(got))
        return got == e ? 0 : 1e9;
    double u = f32 ? (double)(nextafterf((float)fabs(e), INFINITY) - (float)fabs(e))
                   : nextafter(fabs(e), INFINITY) - fabs(e);
    return (double)(fabsl((long double)got - ex) / (long double)u);
}

/* ulps for the float exp, whose results below the smallest normal float
 * are +0 by design (kernels/vmath.c, docs/formulas.md): there +0 is exact
 * and anything else wrong; at the seam (within an ulp of FLT_MIN) either a
 * correctly rounded FLT_MIN or +0 is right. */
static double ulps_ftz(double got, long double ex)
{
    long double seam = (long double)FLT_MIN * (1 + 0x1p-22L);
    if (ex < seam && got == 0 && !signbit(got))
        return 0;
    if (ex < (long double)FLT_MIN * (1 - 0x1p-22L))
        return 1e9;
    return ulps(got, ex, 1);
}

KFT_TEST(opt_vmath_accuracy)
{
    if (!have_cc())
        return;
    tdir t = {{0}};
    KFT_CHECK(tdir_make(&t) == 0);
    char path[128];
    int ok = 1;
    for (int q = 0; q < 2 && ok; q++) {
        kfc_buf s = {0};
        kfc_buf_printf(&s, "%s%s", kfk_vmath_source(q ? KF_FLOAT64 : KF_FLOAT32), q ? vm_wrap_d : vm_wrap_f);
        snprintf(path, sizeof path, "%s/s%d.c", t.path, q);
        ok = !s.oom && write_file(path, s.s) == 0;
        free(s.s);
    }
    ok = ok && cc_all(&t, 2) == 0;
    void *dl[2] = {NULL, NULL};
    float (*ef)(float) = ok ? (float (*)(float))load(&t, 0, "kft_exp", &dl[0]) : NULL;
    float (*lf)(float) = dl[0] ? (float (*)(float))dlsym(dl[0], "kft_log") : NULL;
    double (*ed)(double) = ok ? (double (*)(double))load(&t, 1, "kft_exp", &dl[1]) : NULL;
    double (*ld)(double) = dl[1] ? (double (*)(double))dlsym(dl[1], "kft_log") : NULL;
    KFT_CHECK(ef && lf && ed && ld);
    if (ef && lf && ed && ld) {
        double me = 0, ml = 0, mde = 0, mdl = 0;
        /* float exp over its whole range, through the flushed results and both clamps */
        for (double x = -110; x < 90; x += 0.00731) {
            float xf = (float)x;
            me = fmax(me, ulps_ftz(ef(xf), expl(xf)));
        }
        for (double lx = -45.1; lx < 38.5; lx += 0.00113) {
            float xf = (float)pow(10, lx);
            ml = fmax(ml, ulps(lf(xf), logl(xf), 1));
        }
        for (double x = -750; x < 712; x += 0.0291) {
            mde = fmax(mde, ulps(ed(x), expl(x), 0));
        }
        for (double lx = -323.5; lx < 308.2; lx += 0.0131) {
            double xd = pow(10, lx);
            mdl = fmax(mdl, ulps(ld(xd), logl(xd), 0));
        }
        fprintf(stderr, "  inline math max ulp: expf %.3f logf %.3f exp %.3f log %.3f\n", me, ml, mde, mdl);
        /* measured: < 1 ulp each (docs/performance.md); a margin for other compilers */
        KFT_CHECKF(me <= 1.5, "expf %.3f ulp", me);
        KFT_CHECKF(ml <= 1.5, "logf %.3f ulp", ml);
        KFT_CHECKF(mde <= 1.5, "exp %.3f ulp", mde);
        KFT_CHECKF(mdl <= 1.5, "log %.3f ulp", mdl);
        /* the special values */
        KFT_CHECK(ef(-1000.0f) == 0 && ef(-INFINITY) == 0 && ef(100.0f) == INFINITY && ef(INFINITY) == INFINITY);
        KFT_CHECK(isnan(ef(NAN)) && ef(0) == 1);
        /* below FLT_MIN: +0, not a subnormal (the liberty that keeps Intel's assists away) */
        KFT_CHECK(ef(-100.0f) == 0 && !signbit(ef(-100.0f)) && ef(-87.5f) == 0 && ef(-87.0f) > 1e-38f);
        KFT_CHECK(lf(0) == -INFINITY && isnan(lf(-1)) && lf(INFINITY) == INFINITY && isnan(lf(NAN)) && lf(1) == 0);
        KFT_CHECK(ulps(lf(1e-45f), logl(1e-45f), 1) <= 1);
        KFT_CHECK(ed(-1000) == 0 && ed(-INFINITY) == 0 && ed(1000) == INFINITY && ed(INFINITY) == INFINITY);
        KFT_CHECK(isnan(ed(NAN)) && ed(0) == 1 && ed(-740) > 0);
        KFT_CHECK(ld(0) == -INFINITY && isnan(ld(-1)) && ld(INFINITY) == INFINITY && isnan(ld(NAN)) && ld(1) == 0);
        double tiny = 4.9e-324; /* the smallest subnormal */
        /* the edges of the integer scaling (kernels/vmath.c): the last finite
         * result, the subnormal/normal seam, NaN payloads, |x| past the magic
         * constant's window */
        KFT_CHECK(isfinite(ef(88.7228317f)) && ef(88.7228394f) == INFINITY);
        KFT_CHECK(ulps_ftz(ef(-87.3365479f), expl(-87.3365479f)) <= 1 && ulps_ftz(ef(-87.3365402f), expl(-87.3365402f)) <= 1);
        KFT_CHECK(ef(-1e7f) == 0 && ef(1e7f) == INFINITY && ef(-3e38f) == 0 && isnan(ef(-NAN)));
        {
            /* the flush's seam: KFK_EXPF_XMIN is the least float whose e^x is normal */
            float xm = (float)KFK_EXPF_XMIN, below = nextafterf(xm, -INFINITY);
            KFT_CHECK(expl((long double)xm) >= (long double)FLT_MIN && expl((long double)below) < (long double)FLT_MIN);
            KFT_CHECK(ef(xm) >= FLT_MIN && ef(below) == 0 && !signbit(ef(below)));
        }
        KFT_CHECK(isfinite(ed(709.78271289338397)) && ed(709.78271289338409) == INFINITY);
        KFT_CHECK(ulps(ed(-708.3964185322641), expl(-708.3964185322641), 0) <= 1 && ed(-745.1332191019411) > 0 && ed(-745.13321910194122) == 0);
        KFT_CHECK(ed(-1e16) == 0 && ed(1e16) == INFINITY && ed(-1e300) == 0 && isnan(ed(-NAN)));
        {
            float qf;
            double qd;
            uint32_t bf = 0xffc12345u; /* a negative NaN with a payload */
            uint64_t bd = 0xfff8123456789abcULL;
            memcpy(&qf, &bf, 4), memcpy(&qd, &bd, 8);
            KFT_CHECK(isnan(ef(qf)) && isnan(ed(qd)));
        }
        KFT_CHECK(ulps(ld(tiny), logl(tiny), 0) <= 1);
        /* e^(s*c) as the fused Gaussian exp computes it, for s from 0 past
         * the clamp at 104/|c|, against expl of the same rounded product */
        float (*ens)(float, float, float) = (float (*)(float, float, float))dlsym(dl[0], "kft_expns");
        float (*ens2)(float, float, float, const float *) =
            (float (*)(float, float, float, const float *))dlsym(dl[0], "kft_expns2");
        KFT_CHECK(ens != NULL && ens2 != NULL);
        /* powers of two (kf_vexpns2 too, which must give the same bits) and others */
        static const double cs[] = {-0.5, -1, -1.0 / 3, -7.3, -1e-3, -2e5, -0.125, -4096, -1.0 / 65536};
        double mns = 0;
        int64_t differ = 0, pow2 = 0, seam_bad = 0;
        for (size_t q = 0; ens && ens2 && q < sizeof cs / sizeof cs[0]; q++) {
            kfc_expns a;
            kfc_exp_scaled_args(cs[q], KF_FLOAT32, &a);
            float cf = (float)a.c, cl = (float)a.cl, ka[8];
            ka[0] = (float)a.l1, ka[1] = (float)a.l2;
            for (int i = 1; i <= 6; i++)
                ka[i + 1] = (float)a.q[i];
            float st = (float)a.st;
            pow2 += a.pow2;
            double top = 130 / fabs(cs[q]);
            for (int i = 0; i <= 200000; i++) {
                float sf = (float)(top * i / 200000), got = ens(sf, cf, cl);
                mns = fmax(mns, ulps_ftz(got, expl((long double)(sf * cf))));
                if (a.pow2) {
                    float g2 = ens2(sf, cl, st, ka);
                    differ += memcmp(&got, &g2, 4) != 0;
                }
            }
            if (a.pow2) {
                static const float sp[] = {INFINITY, 3e38f, 0, -0.0f, NAN, 1e-30f};
                for (size_t w = 0; w < sizeof sp / sizeof sp[0]; w++) {
                    float g1 = ens(sp[w], cf, cl), g2 = ens2(sp[w], cl, st, ka);
                    differ += !(memcmp(&g1, &g2, 4) == 0 || (isnan(g1) && isnan(g2)));
                }
            }
            KFT_CHECK(ens(INFINITY, cf, cl) == 0 && ens(3e38f, cf, cl) == 0);
            KFT_CHECK(ens(0, cf, cl) == 1 && ens(-0.0f, cf, cl) == 1 && isnan(ens(NAN, cf, cl)));
            uint32_t bn = 0xffc12345u, bp = 0x7f812345u; /* NaNs with payloads, both signs */
            float qn, qp;
            memcpy(&qn, &bn, 4), memcpy(&qp, &bp, 4);
            KFT_CHECK(isnan(ens(qn, cf, cl)) && isnan(ens(qp, cf, cl)));
            if (a.pow2)
                KFT_CHECK(isnan(ens2(qn, cl, st, ka)) && isnan(ens2(qp, cl, st, ka)) && ens2(INFINITY, cl, st, ka) == 0);
            /* the flush's seam, float by float: +0 exactly where the rounded
             * product is below KFK_EXPF_XMIN, a normal result everywhere else */
            float s0 = (float)(KFK_EXPF_XMIN / cs[q]);
            for (int w = -64; w < 64; w++) {
                float sw = s0;
                for (int u = 0; u < (w < 0 ? -w : w); u++)
                    sw = nextafterf(sw, w < 0 ? 0.0f : INFINITY);
                float g = ens(sw, cf, cl);
                seam_bad += sw * cf < (float)KFK_EXPF_XMIN ? !(g == 0 && !signbit(g)) : !(g >= FLT_MIN);
                if (a.pow2) {
                    float g2 = ens2(sw, cl, st, ka);
                    seam_bad += memcmp(&g, &g2, 4) != 0;
                }
            }
        }
        KFT_CHECKF(pow2 == 5 && differ == 0, "%lld powers of two, %lld results of kf_vexpns2 differ",
                   (long long)pow2, (long long)differ);
        KFT_CHECKF(seam_bad == 0, "%lld fused results wrong at the flush's seam", (long long)seam_bad);
        /* the same for double: e^(s*c) against expl of the product rounded to double */
        double (*dns)(double, double, double, long long) =
            (double (*)(double, double, double, long long))dlsym(dl[1], "kft_expns");
        double (*dns2)(double, double, long long, const double *) =
            (double (*)(double, double, long long, const double *))dlsym(dl[1], "kft_expns2");
        KFT_CHECK(dns != NULL && dns2 != NULL);
        double mnd = 0;
        int64_t ddiffer = 0, dpow2 = 0;
        for (size_t q = 0; dns && dns2 && q < sizeof cs / sizeof cs[0]; q++) {
            kfc_expns a;
            kfc_exp_scaled_args(cs[q], KF_FLOAT64, &a);
            double kd[13] = {a.l1, a.l2};
            for (int i = 1; i <= 11; i++)
                kd[i + 1] = a.q[i];
            dpow2 += a.pow2;
            double top = 800 / fabs(cs[q]);
            for (int i = 0; i <= 200000; i++) {
                double sd = top * i / 200000 * (1 + 1e-9 * (i % 7)), got = dns(sd, a.c, a.cl, a.sl);
                mnd = fmax(mnd, ulps(got, expl((long double)(sd * a.c)), 0));
                if (a.pow2) {
                    double g2 = dns2(sd, a.cl, a.sl, kd);
                    ddiffer += memcmp(&got, &g2, 8) != 0;
                }
            }
            KFT_CHECK(dns(INFINITY, a.c, a.cl, a.sl) == 0 && dns(1e308, a.c, a.cl, a.sl) == 0);
            KFT_CHECK(dns(0, a.c, a.cl, a.sl) == 1 && dns(-0.0, a.c, a.cl, a.sl) == 1 && isnan(dns(NAN, a.c, a.cl, a.sl)));
            uint64_t bn = 0xfff8123456789abcULL, bp = 0x7ff0000000000001ULL;
            double qn, qp;
            memcpy(&qn, &bn, 8), memcpy(&qp, &bp, 8);
            KFT_CHECK(isnan(dns(qn, a.c, a.cl, a.sl)) && isnan(dns(qp, a.c, a.cl, a.sl)));
            if (a.pow2)
                KFT_CHECK(isnan(dns2(qn, a.cl, a.sl, kd)) && dns2(INFINITY, a.cl, a.sl, kd) == 0);
        }
        fprintf(stderr, "  fused double exp(s*c) max ulp %.3f\n", mnd);
        KFT_CHECKF(mnd <= 1.5, "double exp(s*c) %.3f ulp", mnd);
        KFT_CHECKF(dpow2 == 5 && ddiffer == 0, "%lld powers of two, %lld double results of kf_vexpns2 differ",
                   (long long)dpow2, (long long)ddiffer);
        fprintf(stderr, "  fused exp(s*c) max ulp %.3f\n", mns);
        KFT_CHECKF(mns <= 1.5, "exp(s*c) %.3f ulp", mns); /* measured over every float s: 0.88 */
    }
    for (int q = 0; q < 2; q++)
        if (dl[q])
            dlclose(dl[q]);
    tdir_free(&t);
}

/* The emitter rejects what the libtcc emitter rejects (it validates through it). */
KFT_TEST(opt_emit_rejects_bad_ast)
{
    okern k = {.f = "Exp(x)", .red = "Sum", .al = op_al, .na = 1, .axis = 1, .dt = KF_FLOAT32};
    KFT_CHECK(okern_build(&k) == 0);
    kfc_diag d;
    kfc_diag_clear(&d);
    k.p.nodes[k.p.root].dim = 5; /* now disagrees with its argument */
    k.r.D = 5;
    char *src = kfc_emit_c_opt(&k.p, &k.r, &d);
    KFT_CHECK(src == NULL && d.status == KF_ERR_INTERNAL);
    free(src);
    kfc_prog_free(&k.p);
}

/* ---- which Exp nodes the optimizing tier fuses (compiler/emit/exp_fuse.c) ---- */

/* c of the outermost Exp node of f for dtype dt, or 0 when it is not fused. */
static double fused_c_dt(const char *f, kf_dtype dt)
{
    static const char *const al[] = {"x=Vi(0,3)", "y=Vj(1,3)", "u=Vi(2,1)", "w=Vj(3,1)", "p=Pm(4,1)"};
    okern k = {.f = f, .red = "Sum", .al = al, .na = 5, .axis = 1, .dt = dt};
    if (okern_build(&k))
        return NAN;
    double c = 0;
    for (int32_t n = k.p.nnodes - 1; n >= 0; n--) { /* parents after children */
        int32_t s;
        if (k.p.nodes[n].op == KFC_OP_EXP) {
            if (!kfc_exp_scaled(&k.p, n, dt, &s, &c))
                c = 0;
            break;
        }
    }
    kfc_prog_free(&k.p);
    return c;
}

static double fused_c(const char *f)
{
    return fused_c_dt(f, KF_FLOAT32);
}

KFT_TEST(opt_exp_fusion_shapes)
{
    /* the constants as the kernel's dtype has them */
    KFT_CHECK(fused_c_dt("Exp(-SqDist(x,y)*0.3)", KF_FLOAT64) == -0.3);
    KFT_CHECK(fused_c_dt("Exp(-SqDist(x,y)*0.3*0.7)", KF_FLOAT64) == 0);
    /* e^(s*c) with s >= 0 and one rounding step at most, exactly as unfused */
    KFT_CHECK(fused_c("Exp(-SqDist(x,y)/IntCst(2))") == -0.5);
    KFT_CHECK(fused_c("Exp(SqDist(x,y)*-0.25)") == -0.25);
    KFT_CHECK(fused_c("Exp(-Norm2(x-y))*w") == -1);
    KFT_CHECK(fused_c("Exp(IntCst(-3)*SqNorm2(x))") == -3);
    KFT_CHECK(fused_c("Exp(-(Abs(x-y)+Square(y))*IntCst(2)*0.7)") == 2 * (double)0.7f * -1);
    KFT_CHECK(fused_c("Exp(-Sum(Sqrt(x)+Exp(y))/IntCst(4))") == -0.25);
    KFT_CHECK(fused_c("Exp(-SqDist(x,y)*0.3)") == -(double)0.3f);
    /* not fused: sign of s or c unknown, c >= 0, two roundings, c out of range */
    KFT_CHECK(fused_c("Exp(-SqDist(x,y)/IntCst(3))") == 0); /* fl(s/3) != fl(s*fl(1/3)) */
    KFT_CHECK(fused_c("Exp(-SqDist(x,y)*0.3*0.7)") == 0);
    KFT_CHECK(fused_c("Exp(SqDist(x,y)/IntCst(2))") == 0);
    KFT_CHECK(fused_c("Exp(-p*SqDist(x,y))") == 0);
    KFT_CHECK(fused_c("Exp(-u*w)") == 0);
    KFT_CHECK(fused_c("Exp(-Inv(u))") == 0);
    KFT_CHECK(fused_c("Exp(-(u-w)*IntCst(2))") == 0);
    KFT_CHECK(fused_c("Exp(-SqDist(x,y)*1e-35)") == 0);
    KFT_CHECK(fused_c("Exp(-SqDist(x,y)*1e35)") == 0);
    KFT_CHECK(fused_c("Exp(x-y)") == 0);
}
