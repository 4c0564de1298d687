/* t_edge.c -- special values through the public API, in BOTH engines (JIT and
 * reference) and both dtypes, against hand-written expected outputs: NaN and
 * +-inf inputs, ties, and empty reductions (every reduction, every slot,
 * buffers prefilled with garbage to prove they are written). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "testutil.h"

static const char *const AL[] = {"a=Vi(0,1)", "b=Vj(1,1)"};
#define NAN_ NAN
#define INF INFINITY

typedef struct edge {
    const char *formula, *formula2, *red;
    int K, axis;
    int64_t M, N;
    double a[6], b[6]; /* inputs: a (M values), b (N values) */
    int nv;            /* expected values, all rows concatenated */
    double v[12];
    int ni;            /* expected indices, all rows concatenated */
    int64_t ix[12];
} edge;

static int same(double got, double exp, kf_dtype dt)
{
    if (isnan(exp))
        return isnan(got);
    if (isinf(exp) || exp == 0)
        return got == exp;
    return fabs(got - exp) <= (dt == KF_FLOAT32 ? 1e-6 : 1e-14) * fabs(exp);
}

/* Runs e for one dtype and engine and checks every output slot. */
static void run_edge(const edge *e, kf_dtype dt, kf_jit jit)
{
    const char *eng = jit == KF_JIT_REFERENCE ? "reference" : "tcc";
    kf_options opt;
    kf_options_init(&opt);
    opt.threads = 2;
    kf_ctx *ctx = kf_new(&opt);
    kft_spec s = {e->formula, AL, 2, e->red, e->axis, dt, e->K, e->formula2, KF_SUM_AUTO};
    kf_kernel *k = ctx ? kft_compile(ctx, &s, jit) : NULL;
    if (!KFT_CHECKF(k != NULL, "%s of %s (%s)", e->red, e->formula, eng)) {
        kf_free(ctx);
        return;
    }
    kft_data d;
    memset(&d, 0, sizeof d);
    double a32[6], b32[6];
    float af[6], bf[6];
    for (int q = 0; q < 6; q++)
        af[q] = (float)e->a[q], bf[q] = (float)e->b[q], a32[q] = e->a[q], b32[q] = e->b[q];
    d.nargs = kf_kernel_nargs(k);
    d.arr[0] = dt == KF_FLOAT32 ? (void *)af : (void *)a32;
    d.arr[1] = dt == KF_FLOAT32 ? (void *)bf : (void *)b32;
    void *out = NULL;
    int64_t *idx = NULL;
    int st = kft_run(k, e->M, e->N, &d, &out, &idx);
    d.arr[0] = d.arr[1] = NULL;
    const char *dts = dt == KF_FLOAT32 ? "float32" : "float64";
    if (KFT_CHECKF(st == KF_OK, "%s of %s (%s %s)", e->red, e->formula, eng, dts)) {
        KFT_CHECKF((e->axis == 1 ? e->M : e->N) * kf_kernel_out_dim(k) == e->nv &&
                       (e->axis == 1 ? e->M : e->N) * kf_kernel_index_dim(k) == e->ni,
                   "%s: output sizes", e->red);
        for (int q = 0; q < e->nv; q++) {
            double g = kft_get(out, dt, q);
            KFT_CHECKF(same(g, e->v[q], dt),
                       "%s of %s%s%s axis %d (%s %s) M=%lld N=%lld slot %d: got %.9g expected %.9g",
                       e->red, e->formula, e->formula2 ? " weight " : "",
                       e->formula2 ? e->formula2 : "", e->axis, eng, dts, (long long)e->M,
                       (long long)e->N, q, g, e->v[q]);
        }
        for (int q = 0; q < e->ni; q++)
            KFT_CHECKF(idx[q] == e->ix[q],
                       "%s of %s axis %d (%s %s) M=%lld N=%lld index slot %d: got %lld expected %lld",
                       e->red, e->formula, e->axis, eng, dts, (long long)e->M, (long long)e->N, q,
                       (long long)idx[q], (long long)e->ix[q]);
    }
    free(out);
    free(idx);
    kf_kernel_free(k);
    kf_free(ctx);
}

static void run_all(const edge *t, int n)
{
    for (int k = 0; k < n; k++)
        for (int dt = 0; dt <= 1; dt++) {
            run_edge(&t[k], dt ? KF_FLOAT64 : KF_FLOAT32, KF_JIT_REFERENCE);
            run_edge(&t[k], dt ? KF_FLOAT64 : KF_FLOAT32, KF_JIT_TCC);
        }
}
#define RUN_ALL(t) run_all(t, (int)(sizeof t / sizeof t[0]))

KFT_TEST(edge_nan_inputs)
{
    static const edge T[] = {
        /* Sum: a NaN term makes the sum NaN; axis 0 only the NaN's row */
        {"a*b", NULL, "Sum", 0, 1, 2, 3, {1, 2}, {1, NAN_, 3}, 2, {NAN_, NAN_}, 0, {0}},
        {"a*b", NULL, "Sum", 0, 0, 2, 3, {1, 2}, {1, NAN_, 3}, 3, {3, NAN_, 9}, 0, {0}},
        /* Min/Max: the first NaN wins, with its index */
        {"b - a", NULL, "Min_ArgMin", 0, 1, 1, 4, {0}, {3, NAN_, -1, NAN_}, 1, {NAN_}, 1, {1}},
        {"b - a", NULL, "Max_ArgMax", 0, 1, 1, 4, {0}, {3, NAN_, 5, NAN_}, 1, {NAN_}, 1, {1}},
        {"b - a", NULL, "ArgMin", 0, 1, 1, 4, {0}, {3, -1, NAN_, NAN_}, 0, {0}, 1, {2}},
        {"b - a", NULL, "Min", 0, 1, 1, 3, {0}, {NAN_, -1, 2}, 1, {NAN_}, 0, {0}},
        /* KMin: NaN sorts before every number; equal keys keep visiting order */
        {"b - a", NULL, "KMin_ArgKMin", 3, 1, 1, 4, {0}, {3, NAN_, -1, NAN_}, 3, {NAN_, NAN_, -1},
         3, {1, 3, 2}},
        /* axis 0: reduce over i; the NaN sits in a */
        {"b - a", NULL, "Min_ArgMin", 0, 0, 3, 2, {1, NAN_, 0}, {0, 5}, 2, {NAN_, NAN_}, 2, {1, 1}},
        /* LogSumExp family: a NaN term gives NaN, and m is NaN when s is */
        {"b", NULL, "LogSumExp", 0, 1, 1, 3, {0}, {1, NAN_, 2}, 1, {NAN_}, 0, {0}},
        {"b", NULL, "Max_SumShiftExp", 0, 1, 1, 3, {0}, {1, NAN_, 2}, 2, {NAN_, NAN_}, 0, {0}},
        {"b", "a", "SumSoftMaxWeight", 0, 1, 1, 2, {2}, {NAN_, 0}, 1, {NAN_}, 0, {0}},
    };
    RUN_ALL(T);
}

KFT_TEST(edge_inf_inputs)
{
    static const edge T[] = {
        {"b", NULL, "Sum", 0, 1, 1, 2, {0}, {INF, 1}, 1, {INF}, 0, {0}},
        {"b", NULL, "Sum", 0, 1, 1, 2, {0}, {INF, -INF}, 1, {NAN_}, 0, {0}},
        /* the first term is always taken, even -inf for Max: index 0, not -1 */
        {"b", NULL, "Max_ArgMax", 0, 1, 1, 2, {0}, {-INF, -INF}, 1, {-INF}, 1, {0}},
        {"b", NULL, "Min_ArgMin", 0, 1, 1, 2, {0}, {INF, INF}, 1, {INF}, 1, {0}},
        {"b", NULL, "Max_ArgMax", 0, 1, 1, 3, {0}, {1, INF, INF}, 1, {INF}, 1, {1}},
        {"b", NULL, "KMin_ArgKMin", 3, 1, 1, 2, {0}, {INF, 1}, 3, {1, INF, INF}, 3, {1, 0, -1}},
        /* LogSumExp with +inf terms: the f == m guard; s counts the infinities */
        {"b", NULL, "LogSumExp", 0, 1, 1, 4, {0}, {1, INF, 2, INF}, 1, {INF}, 0, {0}},
        {"b", NULL, "Max_SumShiftExp", 0, 1, 1, 4, {0}, {1, INF, 2, INF}, 2, {INF, 2}, 0, {0}},
        {"b", "a", "SumSoftMaxWeight", 0, 1, 1, 4, {5}, {1, INF, 2, INF}, 1, {5}, 0, {0}},
        {"b", "a", "LogSumExpWeight", 0, 1, 1, 4, {5}, {1, INF, 2, INF}, 1, {INF}, 0, {0}},
        /* all -inf: m stays -inf, s = number of terms */
        {"b", NULL, "LogSumExp", 0, 1, 1, 2, {0}, {-INF, -INF}, 1, {-INF}, 0, {0}},
        {"b", NULL, "Max_SumShiftExp", 0, 1, 1, 2, {0}, {-INF, -INF}, 2, {-INF, 2}, 0, {0}},
        {"b", "a", "SumSoftMaxWeight", 0, 1, 1, 2, {5}, {-INF, -INF}, 1, {5}, 0, {0}},
        {"b", NULL, "Max_SumShiftExp", 0, 1, 1, 3, {0}, {-INF, 0, -INF}, 2, {0, 1}, 0, {0}},
    };
    RUN_ALL(T);
}

KFT_TEST(edge_ties)
{
    static const edge T[] = {
        {"b", NULL, "Max_ArgMax", 0, 1, 1, 4, {0}, {2, 5, 5, 1}, 1, {5}, 1, {1}},
        {"b", NULL, "Min_ArgMin", 0, 1, 1, 3, {0}, {3, 1, 1}, 1, {1}, 1, {1}},
        {"b", NULL, "ArgKMin", 2, 1, 1, 4, {0}, {7, 1, 7, 1}, 0, {0}, 2, {1, 3}},
        {"b", NULL, "KMin_ArgKMin", 3, 1, 1, 4, {0}, {7, 1, 7, 1}, 3, {1, 1, 7}, 3, {1, 3, 0}},
        {"a*b", NULL, "ArgMax", 0, 0, 4, 2, {1, 2, 2, -1}, {1, -1}, 0, {0}, 2, {1, 3}},
    };
    RUN_ALL(T);
}

/* Empty reductions: every reduction, both axes, every output slot. */
KFT_TEST(edge_empty_reductions)
{
    static const struct {
        const char *red, *f2;
        int K, nv;
        double v[3];
        int ni;
    } R[] = {
        {"Sum", NULL, 0, 1, {0}, 0},
        {"Max", NULL, 0, 1, {-INF}, 0},
        {"Min", NULL, 0, 1, {INF}, 0},
        {"ArgMax", NULL, 0, 0, {0}, 1},
        {"ArgMin", NULL, 0, 0, {0}, 1},
        {"Max_ArgMax", NULL, 0, 1, {-INF}, 1},
        {"Min_ArgMin", NULL, 0, 1, {INF}, 1},
        {"KMin", NULL, 3, 3, {INF, INF, INF}, 0},
        {"ArgKMin", NULL, 3, 0, {0}, 3},
        {"KMin_ArgKMin", NULL, 2, 2, {INF, INF}, 2},
        {"LogSumExp", NULL, 0, 1, {-INF}, 0},
        {"LogSumExpWeight", "Concat(a, b)", 0, 2, {-INF, -INF}, 0},
        {"SumSoftMaxWeight", "Concat(a, b)", 0, 2, {NAN_, NAN_}, 0},
        {"Max_SumShiftExp", NULL, 0, 2, {-INF, 0}, 0},
        {"Max_SumShiftExp", "Concat(a, b)", 0, 3, {-INF, 0, 0}, 0},
    };
    for (size_t r = 0; r < sizeof R / sizeof R[0]; r++) {
        for (int axis = 0; axis <= 1; axis++) {
            edge e;
            memset(&e, 0, sizeof e);
            e.formula = "a - b";
            e.formula2 = R[r].f2;
            e.red = R[r].red;
            e.K = R[r].K;
            e.axis = axis;
            e.M = axis == 1 ? 3 : 0; /* 3 output rows, nothing to reduce */
            e.N = axis == 1 ? 0 : 3;
            e.nv = 3 * R[r].nv;
            e.ni = 3 * R[r].ni;
            for (int row = 0; row < 3; row++) {
                for (int q = 0; q < R[r].nv; q++)
                    e.v[row * R[r].nv + q] = R[r].v[q];
                for (int q = 0; q < R[r].ni; q++)
                    e.ix[row * R[r].ni + q] = -1;
            }
            run_all(&e, 1);
        }
    }
}

/* Element-wise special values in both engines: a Sum over one pair is the
 * formula's value itself. */
KFT_TEST(edge_special_values_of_ops)
{
    static const struct {
        const char *f;
        double a, b, v[3];
        int nv;
    } C[] = {
        {"Rsqrt(a)", 0, 0, {0}, 1},
        {"XLogX(a)", 0, 0, {0}, 1},
        {"SinXDivX(a)", 0, 0, {1}, 1},
        {"Inv(a)", 0, 0, {INF}, 1},
        {"Log(a)", 0, 0, {-INF}, 1},
        {"Sign(a)", NAN_, 0, {NAN_}, 1},
        {"Sign(a)", -2, 0, {-1}, 1},
        {"Sign(a)", 0, 0, {0}, 1},
        {"Step(a)", NAN_, 0, {NAN_}, 1},
        {"Step(a)", 0, 0, {1}, 1},
        {"ReLU(a)", NAN_, 0, {NAN_}, 1},
        {"ReLU(a)", -2, 0, {0}, 1},
        {"Floor(a)", NAN_, 0, {NAN_}, 1},
        {"Abs(a)", NAN_, 0, {NAN_}, 1},
        {"ClampInt(a,0,1)", NAN_, 0, {NAN_}, 1},
        {"Clamp(a,b,IntCst(1))", NAN_, 0, {NAN_}, 1},
        {"Clamp(a,b,IntCst(1))", 5, 0, {1}, 1},
        {"Pow(a,0)", NAN_, 0, {1}, 1},
        {"Pow(a,-1)", 0, 0, {INF}, 1},
        {"Round(a,1)", 1.25, 0, {1.3}, 1},
        {"Round(a,0)", -2.5, 0, {-3}, 1},
        {"Equal(a,b)", NAN_, NAN_, {0}, 1},
        {"NotEqual(a,b)", NAN_, NAN_, {1}, 1},
        {"LessThan(a,b)", NAN_, 1, {0}, 1},
        {"LessOrEqual(b,a)", NAN_, 1, {0}, 1},
        {"IfElse(a,IntCst(1),b)", NAN_, 2, {2}, 1},
        {"IfElse(a,IntCst(1),b)", 0, 2, {1}, 1},
        {"Mod(a,IntCst(2),b)", -0.5, 0, {1.5}, 1},
        {"Max(Concat(a,b))", NAN_, 1, {NAN_}, 1},
        {"Min(Concat(b,a))", NAN_, 1, {NAN_}, 1},
        {"ArgMax(Concat(b,Concat(a,a)))", NAN_, 1, {1}, 1},
        {"ArgMin(Concat(b,Concat(b,a)))", 5, 1, {0}, 1},
        {"Normalize(Concat(a,b))", 0, 0, {0, 0}, 2},
        {"OneHot(a,3)", 0.5, 0, {0, 1, 0}, 3},
        {"OneHot(a,3)", -0.4, 0, {1, 0, 0}, 3},
        {"OneHot(a,3)", 3, 0, {0, 0, 0}, 3},
    };
    for (size_t c = 0; c < sizeof C / sizeof C[0]; c++) {
        edge e;
        memset(&e, 0, sizeof e);
        e.formula = C[c].f;
        e.red = "Sum";
        e.axis = 1;
        e.M = e.N = 1;
        e.a[0] = C[c].a;
        e.b[0] = C[c].b;
        e.nv = C[c].nv;
        memcpy(e.v, C[c].v, sizeof C[c].v);
        run_all(&e, 1);
    }
}

/* Every float32 Sum scheme keeps IEEE results visible: an infinite term gives
 * inf (Kahan's compensation must not turn it into inf - inf = NaN), a NaN term
 * gives NaN, and +inf with -inf gives NaN. */
KFT_TEST(edge_sum_schemes_inf_nan)
{
    static const struct {
        float b[3];
        double expect;
    } C[] = {{{1, INFINITY, 2}, INFINITY}, {{1, -INFINITY, 2}, -INFINITY},
             {{1, NAN, 2}, NAN},          {{INFINITY, 1, -INFINITY}, NAN}};
    kf_ctx *ctx = kf_new(NULL);
    for (int sch = KF_SUM_BLOCK; sch <= KF_SUM_KAHAN; sch++) {
        kft_spec s = {"b", AL, 2, "Sum", 1, KF_FLOAT32, 0, NULL, (kf_sum_scheme)sch};
        kf_kernel *k = ctx ? kft_compile(ctx, &s, KF_JIT_TCC) : NULL;
        if (!KFT_CHECKF(k != NULL, "scheme %d", sch))
            continue;
        for (size_t c = 0; c < sizeof C / sizeof C[0]; c++) {
            float a = 0, out = 1234;
            const void *args[2] = {&a, C[c].b};
            KFT_CHECK(kf_run(k, 1, 3, args, 2, &out, NULL) == KF_OK);
            KFT_CHECKF(same(out, C[c].expect, KF_FLOAT32), "scheme %d case %zu: got %g, expected %g",
                       sch, c, out, C[c].expect);
        }
        kf_kernel_free(k);
    }
    kf_free(ctx);
}
