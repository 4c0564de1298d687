/* t_emit.c -- the C emitter and the reduction skeletons: generated code is compiled (libtcc,
 * and cc -Werror when present) and run on tiny inputs against hand-computed values. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libtcc.h>

#include "compiler/emit/skel.h"
#include "runtime/rt.h"
#include "harness.h"

/* ---- helpers ---- */

/* Parses and checks (no simplification: every op reaches the emitter as written). */
static int build(kfc_prog *p, const char *f, const char *f2, const char *const *al, int na)
{
    kfc_diag d;
    kfc_diag_clear(&d);
    kfc_prog_init(p);
    if (kfc_parse(p, f, f2, al, na, &d) || kfc_check(p, f, f2, al, na, &d)) {
        fprintf(stderr, "  build '%s': %s\n", f, d.msg);
        return -1;
    }
    return 0;
}

/* Compiles src with `cc -std=c99 -O2 -Wall -Werror -c` too (a later tier uses cc).
 * Returns 1 when it compiled or no cc is installed. */
static int cc_compiles(const char *src)
{
    static int have_cc = -1;
    if (have_cc < 0)
        have_cc = system("command -v cc >/dev/null 2>&1") == 0;
    if (!have_cc)
        return 1;
    char path[] = "/tmp/kft_emit_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return 0;
    size_t n = strlen(src);
    int ok = write(fd, src, n) == (ssize_t)n;
    close(fd);
    char cpath[64], cmd[256];
    snprintf(cpath, sizeof cpath, "%s.c", path);
    ok = ok && rename(path, cpath) == 0;
    snprintf(cmd, sizeof cmd, "cc -std=c99 -O2 -Wall -Werror -c %s -o %s.o", cpath, path);
    ok = ok && system(cmd) == 0;
    snprintf(cmd, sizeof cmd, "%s.o", path);
    remove(cmd);
    remove(cpath);
    remove(path);
    return ok;
}

static void ignore_tcc_error(void *opaque, const char *msg)
{
    fprintf(stderr, "  tcc: %s\n", msg);
}

/* Compiles and relocates src with libtcc binding ONLY kfk_libm_syms: no
 * libtcc1.a helpers, no memset/memcpy (the runtime binds those as a safety
 * net; generated code must not need them). Returns 1 on success. */
static int tcc_strict(const char *src)
{
    TCCState *s = tcc_new();
    if (!s)
        return 0;
    tcc_set_error_func(s, NULL, ignore_tcc_error);
    tcc_set_options(s, "-nostdinc -nostdlib");
    int ok = tcc_set_output_type(s, TCC_OUTPUT_MEMORY) == 0;
    for (int k = 0; ok && k < kfk_nlibm_syms; k++)
        tcc_add_symbol(s, kfk_libm_syms[k].name, kfk_libm_syms[k].addr);
    ok = ok && tcc_compile_string(s, src) == 0 && tcc_relocate(s, TCC_RELOCATE_AUTO) >= 0;
    tcc_delete(s);
    return ok;
}

typedef struct kern {
    kfc_prog p;
    kfc_red r;
    char *src;
    kfr_tcc *jit;
    kfk_reduce_fn fn;
} kern;

/* Formula + reduction -> a JIT-compiled kf_reduce. Returns 0 or -1. */
static int kern_make(kern *k, const char *f, const char *f2, const char *const *al, int na,
                     const char *red, int axis, kf_dtype dt, int K, kf_sum_scheme sch)
{
    memset(k, 0, sizeof *k);
    kfc_diag d;
    kfc_diag_clear(&d);
    if (build(&k->p, f, f2, al, na))
        return -1;
    if (kfc_red_setup(&k->r, &k->p, red, axis, dt, K, sch, &d) ||
        !(k->src = kfc_emit_c(&k->p, &k->r, &d))) {
        fprintf(stderr, "  emit %s '%s': %s\n", red, f, d.msg);
        return -1;
    }
    void *fn;
    if (kfr_tcc_compile(k->src, KFK_ENTRY, &k->jit, &fn, &d)) {
        fprintf(stderr, "  tcc %s '%s': %s\n%s\n", red, f, d.msg, k->src);
        return -1;
    }
    k->fn = (kfk_reduce_fn)fn;
    return 0;
}

static void kern_free(kern *k)
{
    kfr_tcc_free(k->jit);
    free(k->src);
    kfc_prog_free(&k->p);
}

/* Same values: equal, both NaN, or within a relative tolerance. */
static int same(double got, double want, double tol)
{
    if (isnan(want))
        return isnan(got);
    if (isinf(want))
        return got == want;
    return fabs(got - want) <= tol * (1 + fabs(want));
}

static double tol_of(kf_dtype dt)
{
    return dt == KF_FLOAT32 ? 2e-6 : 1e-13;
}

/* ---- single ops through kf_formula ---- */

static const char *const op_aliases[] = {"x=Vi(0,3)", "y=Vj(1,3)", "p=Pm(2,1)",
                                         "q=Pm(3,9)", "w=Pm(4,6)", "n=Pm(5,1)"};
/* Row 1 of x and row 2 of y are read (i = 1, j = 2): row offsets are tested too. */
static const double x_rows[2][3] = {{9, 9, 9}, {0.5, -2, 0}};
static const double y_rows[3][3] = {{9, 9, 9}, {9, 9, 9}, {1.5, 0.25, -1}};
static const double p_val[1] = {2}, q_val[9] = {1, 0, 0, 0, 2, 0, 0, 0, 3};
static const double w_val[6] = {1, 2, 3, 4, 5, 6};

typedef struct op_case {
    const char *f;
    int dim;
    double want[8];
} op_case;

static const op_case op_cases[] = {
    {"Exp(p)", 1, {7.38905609893065}},
    {"Log(y)", 3, {0.4054651081081644, -1.3862943611198906, NAN}},
    {"Sqrt(x)", 3, {0.7071067811865476, NAN, 0}},
    {"Rsqrt(x)", 3, {1.4142135623730951, NAN, 0}},
    {"Inv(x)", 3, {2, -0.5, INFINITY}},
    {"-x", 3, {-0.5, 2, -0.0}},
    {"Abs(x)", 3, {0.5, 2, 0}},
    {"Sign(x)", 3, {1, -1, 0}},
    {"Step(x)", 3, {1, 0, 1}},
    {"ReLU(x)", 3, {0.5, 0, 0}},
    {"Floor(y)", 3, {1, 0, -1}},
    {"Square(x)", 3, {0.25, 4, 0}},
    {"XLogX(y)", 3, {0.6081976621622465, -0.34657359027997264, NAN}},
    {"SinXDivX(x)", 3, {0.958851077208406, 0.45464871341284085, 1}},
    {"Sin(p)", 1, {0.9092974268256817}},
    {"Cos(p)", 1, {-0.4161468365471424}},
    {"Asin(y)", 3, {NAN, 0.25268025514207865, -1.5707963267948966}},
    {"Acos(y)", 3, {NAN, 1.318116071652818, 3.141592653589793}},
    {"Atan(y)", 3, {0.982793723247329, 0.24497866312686414, -0.7853981633974483}},
    {"Pow(x,3)", 3, {0.125, -8, 0}},
    {"Pow(x,-2)", 3, {4, 0.25, INFINITY}},
    {"Pow(n,0)", 1, {1}},
    {"x**2", 3, {0.25, 4, 0}},
    {"Round(y,1)", 3, {1.5, 0.3, -1}},
    {"ClampInt(x,-1,0)", 3, {0, -1, 0}},
    {"Clamp(x,y,p)", 3, {1.5, 0.25, 0}},
    {"Mod(x,p,y)", 3, {2.5, 2, 0}},
    {"IfElse(x,y,p)", 3, {1.5, 2, -1}},
    {"Atan2(x,y)", 3, {0.3217505543966422, -1.446441332248135, 3.141592653589793}},
    {"Powf(y,p)", 3, {2.25, 0.0625, 1}},
    {"x+p", 3, {2.5, 0, 2}},
    {"x-RatCst(1,2)", 3, {0, -2.5, -0.5}},
    {"x*0.5", 3, {0.25, -1, 0}},
    {"y/IntCst(4)", 3, {0.375, 0.0625, -0.25}},
    {"Equal(x,y)", 3, {0, 0, 0}},
    {"NotEqual(x,x)", 3, {0, 0, 0}},
    {"x<y", 3, {1, 1, 0}},
    {"x<=Zero(3)", 3, {0, 1, 1}},
    {"y>=x", 3, {1, 1, 0}},
    {"Sum(x)", 1, {-1.5}},
    {"Max(y)", 1, {1.5}},
    {"Min(y)", 1, {-1}},
    {"ArgMax(y)", 1, {0}},
    {"ArgMin(x)", 1, {1}},
    {"(x|y)", 1, {0.25}},
    {"SqNorm2(x)", 1, {4.25}},
    {"Norm2(x)", 1, {2.0615528128088303}},
    {"SqDist(x,y)", 1, {7.0625}},
    {"WeightedSqNorm(p,x)", 1, {8.5}},
    {"WeightedSqNorm(y,x)", 1, {1.375}},
    {"WeightedSqNorm(q,x)", 1, {8.25}},
    {"WeightedSqDist(p,x,y)", 1, {14.125}},
    {"WeightedSqDist(q,x,y)", 1, {1 + 10.125 + 3}},
    {"Normalize(x)", 3, {0.24253562503633297, -0.9701425001453319, 0}},
    {"Normalize(Zero(3))", 3, {0, 0, 0}},
    {"Elem(x,1)", 1, {-2}},
    {"ElemT(p,3,1)", 3, {0, 2, 0}},
    {"Extract(x,1,2)", 2, {-2, 0}},
    {"ExtractT(p,1,3)", 3, {0, 2, 0}},
    {"Concat(x,p)", 4, {0.5, -2, 0, 2}},
    {"OneHot(p,4)", 4, {0, 0, 1, 0}},
    {"OneHot(n,2)", 2, {0, 0}},
    {"SumT(p,2)", 2, {2, 2}},
    {"MatVecMult(q,x)", 3, {0.5, -4, 0}},
    {"MatVecMult(w,x)", 2, {-3.5, -8}},
    {"VecMatMult(Extract(x,0,2),w)", 3, {-7.5, -9, -10.5}},
    {"TensorProd(Extract(x,0,2),y)", 6, {0.75, 0.125, -0.5, -3, -0.5, 2}},
    /* a large dim takes the looped (not unrolled) path */
    {"SumT(p,7)*Concat(x,Concat(y,p))", 7, {1, -4, 0, 3, 0.5, -2, 4}},
    {"Sum(SumT(p,7))", 1, {14}},
    {"ArgMin(Concat(Concat(x,y),-p))", 1, {1}}, /* the first -2 */
    /* complex: w is (1+2i, 3+4i, 5+6i), Concat(Zero(1),p) is 2i */
    {"ComplexMult(Concat(IntCst(1),IntCst(2)),Concat(IntCst(3),-IntCst(1)))", 2, {5, 5}},
    {"ComplexMult(w,Concat(Zero(1),p))", 6, {-4, 2, -8, 6, -12, 10}},
    {"ComplexScal(Concat(Zero(1),p),w)", 6, {-4, 2, -8, 6, -12, 10}},
    {"ComplexRealScal(w,-p)", 6, {-2, -4, -6, -8, -10, -12}},
    {"ComplexAdd(w,Concat(p,p))", 6, {3, 4, 5, 6, 7, 8}},
    {"ComplexSubtract(Concat(p,p),w)", 6, {1, 0, -1, -2, -3, -4}},
    {"ComplexDivide(w,Concat(Zero(1),p))", 6, {1, -0.5, 2, -1.5, 3, -2.5}},
    {"ComplexDivide(w,Zero(2))", 6, {NAN, NAN, NAN, NAN, NAN, NAN}},
    {"Conj(w)", 6, {1, -2, 3, -4, 5, -6}},
    {"ComplexReal(w)", 3, {1, 3, 5}},
    {"ComplexImag(w)", 3, {2, 4, 6}},
    {"ComplexSquareAbs(w)", 3, {5, 25, 61}},
    {"ComplexAbs(w)", 3, {2.23606797749979, 5, 7.810249675906654}},
    {"ComplexAbs(Concat(n,p))", 1, {NAN}},
    {"ComplexAngle(Concat(x,y))", 3, {-1.3258176636680326, 1.5707963267948966, -1.3258176636680326}},
    {"Real2Complex(x)", 6, {0.5, 0, -2, 0, 0, 0}},
    {"Imag2Complex(y)", 6, {0, 1.5, 0, 0.25, 0, -1}},
    {"ComplexExp(Concat(p,x))", 4, {6.484506781251244, 3.5425022000064983, 0.1353352832366127, 0}},
    {"ComplexExp1j(y)", 6,
     {0.0707372016677029, 0.9974949866040544, 0.9689124217106447, 0.24740395925452294, 0.5403023058681398,
      -0.8414709848078965}},
    {"ComplexSum(w)", 2, {9, 12}},
    {"ComplexSumT(Concat(p,-p),6)", 6, {2, -2, 2, -2, 2, -2}},
    /* NaN: propagates, except comparisons and IfElse's condition */
    {"Sign(n)", 1, {NAN}},
    {"Step(n)", 1, {NAN}},
    {"ReLU(n)", 1, {NAN}},
    {"Abs(n)", 1, {NAN}},
    {"Floor(n)", 1, {NAN}},
    {"Clamp(x,n,p)", 3, {NAN, NAN, NAN}},
    {"ClampInt(n,0,1)", 1, {NAN}},
    {"IfElse(n,x,y)", 3, {1.5, 0.25, -1}},
    {"Equal(n,n)", 1, {0}},
    {"NotEqual(n,n)", 1, {1}},
    {"n<p", 1, {0}},
    {"Max(Concat(x,n))", 1, {NAN}},
    {"Min(Concat(n,x))", 1, {NAN}},
    {"ArgMax(Concat(Concat(x,n),n))", 1, {3}},
    {"ArgMin(Concat(x,n))", 1, {3}},
};

static void *make_arr(const double *v, int n, kf_dtype dt)
{
    void *a = malloc((size_t)n * 8);
    for (int k = 0; k < n; k++) {
        if (dt == KF_FLOAT32)
            ((float *)a)[k] = (float)v[k];
        else
            ((double *)a)[k] = v[k];
    }
    return a;
}

static double get(const void *a, kf_dtype dt, int64_t k)
{
    return dt == KF_FLOAT32 ? ((const float *)a)[k] : ((const double *)a)[k];
}

static void run_op_cases(kf_dtype dt)
{
    double nan_v = NAN;
    void *args[6] = {make_arr(&x_rows[0][0], 6, dt), make_arr(&y_rows[0][0], 9, dt),
                     make_arr(p_val, 1, dt), make_arr(q_val, 9, dt), make_arr(w_val, 6, dt),
                     make_arr(&nan_v, 1, dt)};
    for (size_t c = 0; c < sizeof op_cases / sizeof op_cases[0]; c++) {
        const op_case *oc = &op_cases[c];
        kfc_prog p;
        kfc_diag d;
        kfc_diag_clear(&d);
        if (!KFT_CHECKF(build(&p, oc->f, NULL, op_aliases, 6) == 0, "%s", oc->f))
            continue;
        char *src = kfc_emit_c_formula(&p, dt, &d);
        kfr_tcc *jit = NULL;
        void *fn = NULL;
        if (KFT_CHECKF(src != NULL, "%s: %s", oc->f, d.msg) &&
            KFT_CHECKF(kfr_tcc_compile(src, KFK_FORMULA_ENTRY, &jit, &fn, &d) == KF_OK, "%s: %s",
                       oc->f, d.msg)) {
            KFT_CHECKF(p.nodes[p.root].dim == oc->dim, "%s: dim %d", oc->f, p.nodes[p.root].dim);
            double out[8];
            void *o = malloc(64);
            if (dt == KF_FLOAT32) {
                ((void (*)(const void *const *, int64_t, int64_t, float *))fn)(
                    (const void *const *)args, 1, 2, o);
            } else {
                ((void (*)(const void *const *, int64_t, int64_t, double *))fn)(
                    (const void *const *)args, 1, 2, o);
            }
            for (int k = 0; k < oc->dim && k < 8; k++) {
                out[k] = get(o, dt, k);
                KFT_CHECKF(same(out[k], oc->want[k], tol_of(dt)), "%s [%s] component %d: got %.17g want %.17g",
                           oc->f, dt == KF_FLOAT32 ? "float32" : "float64", k, out[k], oc->want[k]);
            }
            free(o);
        }
        kfr_tcc_free(jit);
        free(src);
        kfc_prog_free(&p);
    }
    for (int k = 0; k < 6; k++)
        free(args[k]);
}

KFT_TEST(emit_ops_float64) { run_op_cases(KF_FLOAT64); }
KFT_TEST(emit_ops_float32) { run_op_cases(KF_FLOAT32); }

KFT_TEST(emit_minus_zero_keeps_sign)
{
    /* -x at x = 0 must be -0.0, and a literal -0.0 must not print as the integer -0. */
    char lit[48];
    kfc_fmt_double(lit, sizeof lit, -0.0);
    KFT_CHECKF(strcmp(lit, "-0.0") == 0, "%s", lit);
    kfc_fmt_double(lit, sizeof lit, 2);
    KFT_CHECKF(strcmp(lit, "2.0") == 0, "%s", lit);
    kfc_fmt_double(lit, sizeof lit, 0.1);
    KFT_CHECKF(strtod(lit, NULL) == 0.1, "%s", lit);
    kfc_fmt_double(lit, sizeof lit, -INFINITY);
    KFT_CHECKF(strcmp(lit, "(-1.0/0.0)") == 0, "%s", lit);
    kfc_fmt_double(lit, sizeof lit, 1e300 * 1e10);
    KFT_CHECKF(strcmp(lit, "(1.0/0.0)") == 0, "%s", lit);
}

KFT_TEST(emit_source_is_self_contained)
{
    /* Every op of the table in one formula: no #include, only libm names the
     * JIT binds, and it compiles with cc -Werror in both dtypes. */
    const char *f = "Exp(x)+Log(y)+Sin(x)+Cos(y)+Asin(y)+Acos(y)+Atan(x)+Sqrt(y)+Rsqrt(x)+Inv(x)+Abs(x)"
                    "+Sign(x)+Step(x)+ReLU(x)+Floor(x)+Square(x)+XLogX(y)+SinXDivX(x)+Pow(x,3)+Round(x,2)"
                    "+ClampInt(x,0,1)+Atan2(x,y)+Powf(y,p)+Equal(x,y)+NotEqual(x,y)+(x<y)+(x<=y)"
                    "+IfElse(x,y,p)+Clamp(x,y,p)+Mod(x,p,y)+Sum(x)+Max(x)+Min(y)+ArgMax(x)+ArgMin(y)"
                    "+(x|y)+SqNorm2(x)+Norm2(y)+SqDist(x,y)+WeightedSqNorm(q,x)+WeightedSqDist(y,x,y)"
                    "+Normalize(x)+Elem(x,2)+ElemT(p,3,0)+Extract(Concat(x,y),2,3)+ExtractT(p,2,3)"
                    "+OneHot(p,3)+SumT(p,3)+MatVecMult(q,x)+VecMatMult(x,q)+Extract(TensorProd(x,p),0,3)"
                    "+Pow(x,-3)+0.25+RatCst(1,3)+Zero(3)+ClampInt(x,-9223372036854775807,9223372036854775807)";
    for (int dt = 0; dt < 2; dt++) {
        kfc_prog p;
        kfc_diag d;
        kfc_diag_clear(&d);
        if (!KFT_CHECK(build(&p, f, NULL, op_aliases, 6) == 0))
            return;
        char *src = kfc_emit_c_formula(&p, (kf_dtype)dt, &d);
        if (KFT_CHECKF(src != NULL, "%s", d.msg)) {
            KFT_CHECK(strstr(src, "#include") == NULL);
            KFT_CHECK(strstr(src, "memset") == NULL && strstr(src, "memcpy") == NULL);
            KFT_CHECKF(cc_compiles(src), "cc rejected the source:\n%s", src);
            KFT_CHECK(tcc_strict(src));
            kfr_tcc *jit;
            void *fn;
            KFT_CHECKF(kfr_tcc_compile(src, KFK_FORMULA_ENTRY, &jit, &fn, &d) == KF_OK, "%s", d.msg);
            kfr_tcc_free(jit);
        }
        free(src);
        kfc_prog_free(&p);
    }
}

KFT_TEST(emit_rejects_inconsistent_nodes)
{
    /* A node whose dims disagree with its children is an internal error, not
     * out-of-bounds code: Elem(x, 5) on a dim-3 x, built by hand. */
    kfc_prog p;
    kfc_diag d;
    kfc_diag_clear(&d);
    kfc_prog_init(&p);
    int32_t v = kfc_node_new(&p, KFC_OP_VAR, 0, 0, &d);
    p.nodes[v].iv[0] = 0, p.nodes[v].iv[1] = 3, p.nodes[v].iv[2] = 0, p.nodes[v].dim = 3;
    int32_t e = kfc_node_new(&p, KFC_OP_ELEM, 0, 0, &d);
    p.nodes[e].a[0] = v, p.nodes[e].iv[0] = 5, p.nodes[e].dim = 1;
    p.root = e;
    char *src = kfc_emit_c_formula(&p, KF_FLOAT64, &d);
    KFT_CHECK(src == NULL);
    KFT_CHECKF(d.status == KF_ERR_INTERNAL, "%d %s", d.status, d.msg);
    free(src);
    p.nodes[e].iv[0] = 2;
    kfc_diag_clear(&d);
    src = kfc_emit_c_formula(&p, KF_FLOAT64, &d);
    KFT_CHECKF(src != NULL, "%s", d.msg);
    free(src);
    kfc_prog_free(&p);
}

/* ---- reductions ---- */

/*
 * An independent, plain statement of the shared semantics for small inputs:
 * T holds the terms f (D per term) and G the weights g (E per term, or NULL
 * for 1) of one row in visiting order, J their inner indices. Writes the row.
 */
static int kless_d(double a, double b)
{
    return (isnan(a) && !isnan(b)) || a < b;
}

static void expect_row(const kfc_red *r, int nt, const double *T, const double *G, const int64_t *J,
                       double *val, int64_t *idx)
{
    int D = r->D, E = r->E, K = r->K, id = r->id;
    switch (id) {
    case KFC_RED_SUM:
        for (int c = 0; c < D; c++) {
            double s = 0;
            for (int t = 0; t < nt; t++)
                s += T[t * D + c];
            val[c] = s;
        }
        return;
    case KFC_RED_MAX: case KFC_RED_MIN: case KFC_RED_ARGMAX: case KFC_RED_ARGMIN:
    case KFC_RED_MAX_ARGMAX: case KFC_RED_MIN_ARGMIN: {
        int mx = id == KFC_RED_MAX || id == KFC_RED_ARGMAX || id == KFC_RED_MAX_ARGMAX;
        for (int c = 0; c < D; c++) {
            double b = mx ? -INFINITY : INFINITY;
            int64_t bi = -1;
            for (int t = 0; t < nt; t++) {
                double v = T[t * D + c];
                if (t == 0 || (mx ? v > b : v < b) || (isnan(v) && !isnan(b)))
                    b = v, bi = J[t];
            }
            val[c] = b, idx[c] = bi;
        }
        return;
    }
    case KFC_RED_KMIN: case KFC_RED_ARGKMIN: case KFC_RED_KMIN_ARGKMIN:
        /* Stable selection: the K first terms in the order (kless, then visiting order). */
        for (int c = 0; c < D; c++) {
            int used[64] = {0};
            for (int s = 0; s < K; s++) {
                int best = -1;
                for (int t = 0; t < nt; t++)
                    if (!used[t] && (best < 0 || kless_d(T[t * D + c], T[best * D + c])))
                        best = t;
                val[s * D + c] = best < 0 ? INFINITY : T[best * D + c];
                idx[s * D + c] = best < 0 ? -1 : J[best];
                if (best >= 0)
                    used[best] = 1;
            }
        }
        return;
    default: { /* LogSumExp family, two passes */
        double m = -INFINITY;
        for (int t = 0; t < nt; t++)
            if (T[t] > m)
                m = T[t];
        double s0 = 0, s[8] = {0};
        for (int t = 0; t < nt; t++) {
            double w = T[t] == m ? 1 : exp(T[t] - m);
            s0 += w;
            for (int c = 0; c < E; c++)
                s[c] += w * (G ? G[t * E + c] : 1);
        }
        for (int c = 0; c < E; c++) {
            if (id == KFC_RED_LOGSUMEXP || id == KFC_RED_LOGSUMEXPWEIGHT)
                val[c] = m + log(s[c]);
            else if (id == KFC_RED_SUMSOFTMAXWEIGHT)
                val[c] = s[c] / s0;
            else
                val[1 + c] = s[c];
        }
        if (id == KFC_RED_MAX_SUMSHIFTEXP) {
            val[0] = m;
            for (int c = 0; c < E; c++)
                if (isnan(s[c]))
                    val[0] = NAN;
        }
        return;
    }
    }
}

/* The data of the reduction tests: x (M = 2, dim 1) and y (N = 5, dim 1). */
static const double rx[2] = {0, 1};
static const double ry[5] = {3, -1, 1, 2, -1};
static const char *const red_aliases[] = {"x=Vi(0,1)", "y=Vj(1,1)"};
/* f = (x - y, x * y): row 0 of the second component is all ties (0). */
static const char *const red_f = "Concat(x-y,x*y)";
static const char *const red_f1 = "x-y";
static const char *const red_g = "Concat(y,IntCst(1))";

static double term_f(int c, double xv, double yv)
{
    return c == 0 ? xv - yv : xv * yv;
}

/* Runs one reduction on rows [r0, r1) with ranges jr and compares every
 * written slot with expect_row; rows outside [r0, r1) must stay untouched. */
static void check_reduction(const char *red, int axis, kf_dtype dt, int K, const int64_t *jr, int nr,
                            int scalar, int with_cc)
{
    kern k;
    const char *f = scalar ? red_f1 : red_f;
    const char *f2 = kfc_red_info[kfc_red_lookup(red)].formula2 ? red_g : NULL;
    if (!KFT_CHECKF(kern_make(&k, f, f2, red_aliases, 2, red, axis, dt, K, KF_SUM_AUTO) == 0, "%s", red))
        return;
    if (with_cc) {
        KFT_CHECKF(cc_compiles(k.src), "%s axis %d: cc rejected:\n%s", red, axis, k.src);
        KFT_CHECKF(tcc_strict(k.src), "%s axis %d: needs more than libm", red, axis);
    }
    const kfc_red *r = &k.r;
    int M = 2, N = 5, rows = axis == 1 ? M : N;
    void *args[2] = {make_arr(rx, M, dt), make_arr(ry, N, dt)};
    int64_t vd = r->valdim, xd = r->idxdim;
    double *o = calloc((size_t)(rows * vd + 1), 8);
    int64_t *ix = calloc((size_t)(rows * xd + 1), 8);
    for (int64_t s = 0; s < rows * vd; s++)
        if (dt == KF_FLOAT32)
            ((float *)o)[s] = 12345;
        else
            o[s] = 12345;
    for (int64_t s = 0; s < rows * xd; s++)
        ix[s] = 777;
    int r0 = 1, r1 = rows; /* row 0 must stay untouched */
    k.fn((const void *const *)args, r0, r1, jr, nr, vd ? (void *)o : NULL, xd ? ix : NULL);
    for (int row = 0; row < rows; row++) {
        double T[64], G[64], want[64];
        int64_t J[64], wix[64];
        int nt = 0;
        for (int q = 0; q < nr; q++)
            for (int64_t t = jr[2 * q]; t < jr[2 * q + 1]; t++, nt++) {
                double xv = get(args[0], dt, axis == 1 ? row : t), yv = get(args[1], dt, axis == 1 ? t : row);
                for (int c = 0; c < r->D; c++)
                    T[nt * r->D + c] = term_f(c, xv, yv);
                G[nt * 2] = yv, G[nt * 2 + 1] = 1;
                J[nt] = t;
            }
        expect_row(r, nt, T, f2 ? G : NULL, J, want, wix);
        for (int64_t s = 0; s < vd; s++) {
            double got = get(o, dt, row * vd + s), w = row < r0 ? 12345 : want[s];
            KFT_CHECKF(same(got, w, tol_of(dt) * 10), "%s axis %d %s row %d value %lld: got %.9g want %.9g",
                       red, axis, dt ? "f64" : "f32", row, (long long)s, got, w);
        }
        for (int64_t s = 0; s < xd; s++) {
            int64_t got = ix[row * xd + s], w = row < r0 ? 777 : wix[s];
            KFT_CHECKF(got == w, "%s axis %d row %d index %lld: got %lld want %lld", red, axis, row,
                       (long long)s, (long long)got, (long long)w);
        }
    }
    free(args[0]), free(args[1]), free(o), free(ix);
    kern_free(&k);
}

KFT_TEST(emit_every_reduction_both_axes)
{
    /* Full range, two pieces with a gap, an empty piece, and nr = 0. */
    for (int red = 0; red < KFC_RED_COUNT; red++) {
        const char *name = kfc_red_info[red].name;
        int scalar = kfc_red_info[red].scalar;
        for (int axis = 0; axis < 2; axis++) {
            int n_in = axis == 1 ? 5 : 2;
            int64_t full[2] = {0, n_in};
            int64_t pieces[6] = {n_in - 1, n_in, 1, 1, 0, n_in - 1}; /* visits the last first */
            for (int dt = 0; dt < 2; dt++) {
                /* cc is slow to start: each skeleton once, Sum in both dtypes */
                int with_cc = axis == 1 && (dt == red % 2 || red == KFC_RED_SUM);
                check_reduction(name, axis, (kf_dtype)dt, 3, full, 1, scalar, with_cc);
                check_reduction(name, axis, (kf_dtype)dt, 2, pieces, 3, scalar, 0);
                check_reduction(name, axis, (kf_dtype)dt, 7, full, 0, scalar, 0);
            }
        }
    }
}

KFT_TEST(emit_reduction_hand_values)
{
    /* Spot values written out by hand, so the test above cannot agree with a
     * wrong expect_row. axis 1, rows x = 0 and x = 1, y = (3, -1, 1, 2, -1). */
    int64_t full[2] = {0, 5};
    struct {
        const char *red;
        int K;
        double v[4];
        int64_t ix[4];
    } cases[] = {
        /* row 1: x - y = (-2, 2, 0, -1, 2), x * y = (3, -1, 1, 2, -1) */
        {"Sum", 0, {1, 4}, {0}},
        {"Min_ArgMin", 0, {-2, -1}, {0, 1}},
        {"Max_ArgMax", 0, {2, 3}, {1, 0}},                   /* the first of the tied 2s */
        {"KMin_ArgKMin", 2, {-2, -1, -1, -1}, {0, 1, 3, 4}}, /* (K, D) layout; ties in order */
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        kern k;
        if (!KFT_CHECK(kern_make(&k, red_f, NULL, red_aliases, 2, cases[c].red, 1, KF_FLOAT64,
                                 cases[c].K, KF_SUM_AUTO) == 0))
            continue;
        double x[2] = {0, 1}, y[5] = {3, -1, 1, 2, -1}, o[16];
        int64_t ix[16];
        const void *args[2] = {x, y};
        k.fn(args, 1, 2, full, 1, o, ix); /* row 1 only */
        for (int s = 0; s < k.r.valdim; s++)
            KFT_CHECKF(o[k.r.valdim + s] == cases[c].v[s], "%s value %d: %g", cases[c].red, s,
                       o[k.r.valdim + s]);
        for (int s = 0; s < k.r.idxdim; s++)
            KFT_CHECKF(ix[k.r.idxdim + s] == cases[c].ix[s], "%s index %d: %lld", cases[c].red, s,
                       (long long)ix[k.r.idxdim + s]);
        kern_free(&k);
    }
}

KFT_TEST(emit_reduction_special_values)
{
    /* y = (2, NaN, -inf, 2, NaN, 5) with f = y: the first NaN wins Max/Min,
     * NaN sorts first in KMin, LSE gives NaN; then (-inf, -inf) and (inf, 1). */
    const char *al[] = {"y=Vj(0,1)", "x=Vi(1,1)"};
    double y[6] = {2, NAN, -INFINITY, 2, NAN, 5}, x[1] = {0};
    const void *args[2] = {y, x};
    int64_t full[2] = {0, 6}, two[2] = {2, 3}, twice[4] = {2, 3, 2, 3}, lastpair[2] = {4, 6};
    double o[8];
    int64_t ix[8];
    kern k;
    if (kern_make(&k, "y+x", NULL, al, 2, "Max_ArgMax", 1, KF_FLOAT64, 0, KF_SUM_AUTO) == 0) {
        k.fn(args, 0, 1, full, 1, o, ix);
        KFT_CHECKF(isnan(o[0]) && ix[0] == 1, "%g %lld", o[0], (long long)ix[0]);
        k.fn(args, 0, 1, twice, 2, o, ix); /* -inf twice: the first term is taken */
        KFT_CHECKF(o[0] == -INFINITY && ix[0] == 2, "%g %lld", o[0], (long long)ix[0]);
        kern_free(&k);
    }
    if (kern_make(&k, "y+x", NULL, al, 2, "Min_ArgMin", 1, KF_FLOAT32, 0, KF_SUM_AUTO) == 0) {
        float yf[6], xf[1] = {0}, of[2];
        for (int t = 0; t < 6; t++)
            yf[t] = (float)y[t];
        const void *af[2] = {yf, xf};
        k.fn(af, 0, 1, two, 1, of, ix);
        KFT_CHECKF(of[0] == -INFINITY && ix[0] == 2, "%g %lld", of[0], (long long)ix[0]);
        k.fn(af, 0, 1, full, 1, of, ix);
        KFT_CHECKF(isnan(of[0]) && ix[0] == 1, "%g %lld", of[0], (long long)ix[0]);
        kern_free(&k);
    }
    if (kern_make(&k, "y+x", NULL, al, 2, "KMin_ArgKMin", 1, KF_FLOAT64, 4, KF_SUM_AUTO) == 0) {
        k.fn(args, 0, 1, full, 1, o, ix);
        KFT_CHECKF(isnan(o[0]) && isnan(o[1]) && o[2] == -INFINITY && o[3] == 2, "%g %g %g %g", o[0],
                   o[1], o[2], o[3]);
        KFT_CHECKF(ix[0] == 1 && ix[1] == 4 && ix[2] == 2 && ix[3] == 0, "%lld %lld %lld %lld",
                   (long long)ix[0], (long long)ix[1], (long long)ix[2], (long long)ix[3]);
        kern_free(&k);
    }
    if (kern_make(&k, "y+x", NULL, al, 2, "LogSumExp", 1, KF_FLOAT64, 0, KF_SUM_AUTO) == 0) {
        k.fn(args, 0, 1, full, 1, o, NULL);
        KFT_CHECKF(isnan(o[0]), "%g", o[0]);
        k.fn(args, 0, 1, twice, 2, o, NULL); /* all -inf */
        KFT_CHECKF(o[0] == -INFINITY, "%g", o[0]);
        k.fn(args, 0, 1, full, 0, o, NULL); /* empty */
        KFT_CHECKF(o[0] == -INFINITY, "%g", o[0]);
        k.fn(args, 0, 1, lastpair, 1, o, NULL); /* NaN, 5: NaN */
        KFT_CHECKF(isnan(o[0]), "%g", o[0]);
        kern_free(&k);
    }
    if (kern_make(&k, "y+x", NULL, al, 2, "Max_SumShiftExp", 1, KF_FLOAT64, 0, KF_SUM_AUTO) == 0) {
        double yi[2] = {INFINITY, 1};
        const void *ai[2] = {yi, x};
        int64_t both[2] = {0, 2};
        k.fn(ai, 0, 1, both, 1, o, NULL);
        KFT_CHECKF(o[0] == INFINITY && o[1] == 1, "%g %g", o[0], o[1]);
        k.fn(args, 0, 1, twice, 2, o, NULL);
        KFT_CHECKF(o[0] == -INFINITY && o[1] == 2, "%g %g", o[0], o[1]);
        k.fn(args, 0, 1, full, 1, o, NULL);
        KFT_CHECKF(isnan(o[0]) && isnan(o[1]), "%g %g", o[0], o[1]);
        kern_free(&k);
    }
}

/* Float32 Sum schemes on 16777216 followed by ones, visited in two ranges:
 * each scheme's exact result is emulated here. */
KFT_TEST(emit_float32_sum_schemes)
{
    enum { N = 700 };
    static float y[N];
    float x[1] = {0};
    y[0] = 16777216.0f;
    for (int t = 1; t < N; t++)
        y[t] = 1;
    const char *al[] = {"y=Vj(0,1)", "x=Vi(1,1)"};
    const void *args[2] = {y, x};
    int64_t jr[4] = {0, 200, 200, N}; /* the block counter must run across the ranges */
    /* BLOCK: blocks of 256 visited terms. */
    volatile float tot = 0, part = 0;
    for (int t = 0; t < N; t++) {
        part += y[t];
        if ((t + 1) % KFC_SUM_BLOCK == 0)
            tot += part, part = 0;
    }
    tot += part;
    volatile float direct = 0;
    for (int t = 0; t < N; t++)
        direct += y[t];
    volatile double f64 = 0;
    for (int t = 0; t < N; t++)
        f64 += y[t];
    volatile float ks = 0, kc = 0;
    for (int t = 0; t < N; t++) {
        volatile float ky = y[t] - kc, kt = ks + ky;
        kc = (kt - ks) - ky;
        ks = kt;
    }
    float want[5] = {0, tot, direct, (float)f64, ks};
    /* the data tells the schemes apart (and a block counter reset per range) */
    KFT_CHECK(want[1] != want[2] && want[2] != want[3] && want[1] != 16777216.0f + 500);
    for (int s = KF_SUM_BLOCK; s <= KF_SUM_KAHAN; s++) {
        kern k;
        if (!KFT_CHECK(kern_make(&k, "y+x", NULL, al, 2, "Sum", 1, KF_FLOAT32, 0, (kf_sum_scheme)s) == 0))
            continue;
        KFT_CHECKF(cc_compiles(k.src), "scheme %d: cc rejected:\n%s", s, k.src);
        float o[1];
        k.fn(args, 0, 1, jr, 2, o, NULL);
        KFT_CHECKF(o[0] == want[s], "scheme %d: got %.9g want %.9g", s, o[0], want[s]);
        kern_free(&k);
    }
}

KFT_TEST(emit_hoisting_levels)
{
    /* Parameter-only nodes are computed before the row loop, outer-only nodes
     * before the inner loop: visible in the source's structure. */
    const char *al[] = {"x=Vi(0,3)", "y=Vj(1,3)", "p=Pm(2,1)"};
    kern k;
    if (!KFT_CHECK(kern_make(&k, "Exp(p*p)*SqNorm2(x)*Sum(y)", NULL, al, 3, "Sum", 1, KF_FLOAT64, 0,
                             KF_SUM_AUTO) == 0))
        return;
    const char *rowloop = strstr(k.src, "for (kf_i64 r = r0");
    const char *jloop = strstr(k.src, "for (kf_i64 j = ");
    const char *e = strstr(k.src, "/* Exp */"), *sq = strstr(k.src, "/* SqNorm2 */"),
               *sm = strstr(k.src, "/* Sum */");
    KFT_CHECK(rowloop && jloop && e && sq && sm);
    KFT_CHECK(e < rowloop && rowloop < sq && sq < jloop && jloop < sm);
    /* axis 0 swaps the roles: y becomes outer */
    kern k0;
    if (KFT_CHECK(kern_make(&k0, "Exp(p*p)*SqNorm2(x)*Sum(y)", NULL, al, 3, "Sum", 0, KF_FLOAT64, 0,
                            KF_SUM_AUTO) == 0)) {
        const char *j0 = strstr(k0.src, "for (kf_i64 j = ");
        const char *sq0 = strstr(k0.src, "/* SqNorm2 */"), *sm0 = strstr(k0.src, "/* Sum */");
        KFT_CHECK(j0 && sq0 && sm0 && sm0 < j0 && j0 < sq0);
        kern_free(&k0);
    }
    kern_free(&k);
}

KFT_TEST(emit_large_dims_loop_paths)
{
    /* Dims above the unrolling limit take the looped paths of every node kind
     * and of the skeletons: they must compile (tcc and cc -Werror) and run. */
    const char *al[] = {"x=Vi(0,7)", "y=Vj(1,7)"};
    const char *f = "Exp(x)+Sum(x)+Max(y)+ArgMin(x)+(x|y)+SqDist(x,y)+WeightedSqNorm(y,x)+Normalize(x)"
                    "+Extract(Concat(x,y),3,7)+ExtractT(Elem(x,6),1,7)+OneHot(Elem(y,0),7)"
                    "+SumT(Elem(x,1),7)+Clamp(x,y,x)+Pow(x,5)+Round(y,3)";
    static const struct {
        const char *red;
        kf_dtype dt;
        kf_sum_scheme sch;
    } reds[] = {
        {"Sum", KF_FLOAT32, KF_SUM_KAHAN}, {"Sum", KF_FLOAT32, KF_SUM_BLOCK},
        {"Sum", KF_FLOAT32, KF_SUM_F64},   {"Max_ArgMax", KF_FLOAT64, KF_SUM_AUTO},
        {"ArgMin", KF_FLOAT32, KF_SUM_AUTO}, {"KMin_ArgKMin", KF_FLOAT64, KF_SUM_AUTO},
        {"ArgKMin", KF_FLOAT32, KF_SUM_AUTO},
    };
    double x[2 * 7], y[3 * 7];
    for (int k = 0; k < 14; k++)
        x[k] = 0.25 * (k % 5) - 0.5;
    for (int k = 0; k < 21; k++)
        y[k] = 0.125 * (k % 7) - 0.25;
    int64_t jr[2] = {0, 3};
    for (size_t c = 0; c < sizeof reds / sizeof reds[0]; c++) {
        kern k;
        if (!KFT_CHECKF(kern_make(&k, f, NULL, al, 2, reds[c].red, 1, reds[c].dt, 5, reds[c].sch) == 0,
                        "%s", reds[c].red))
            continue;
        KFT_CHECKF(cc_compiles(k.src), "%s: cc rejected:\n%s", reds[c].red, k.src);
        KFT_CHECKF(tcc_strict(k.src), "%s: needs more than libm", reds[c].red);
        if (reds[c].dt == KF_FLOAT64 && strcmp(reds[c].red, "Max_ArgMax") == 0) {
            /* The formula itself, term by term, through kf_formula. */
            kfc_diag d;
            kfc_diag_clear(&d);
            char *fs = kfc_emit_c_formula(&k.p, KF_FLOAT64, &d);
            kfr_tcc *fj = NULL;
            void *ff = NULL;
            if (KFT_CHECK(fs && kfr_tcc_compile(fs, KFK_FORMULA_ENTRY, &fj, &ff, &d) == KF_OK)) {
                const void *args[2] = {x, y};
                double o[14], best[7];
                int64_t ix[14], bi[7];
                k.fn(args, 0, 2, jr, 1, o, ix);
                for (int row = 0; row < 2; row++) {
                    for (int64_t t = 0; t < 3; t++) {
                        double v[7];
                        ((void (*)(const void *const *, int64_t, int64_t, double *))ff)(args, row, t, v);
                        for (int cc = 0; cc < 7; cc++)
                            if (t == 0 || v[cc] > best[cc])
                                best[cc] = v[cc], bi[cc] = t;
                    }
                    for (int cc = 0; cc < 7; cc++)
                        KFT_CHECKF(o[row * 7 + cc] == best[cc] && ix[row * 7 + cc] == bi[cc],
                                   "row %d comp %d: %g/%lld vs %g/%lld", row, cc, o[row * 7 + cc],
                                   (long long)ix[row * 7 + cc], best[cc], (long long)bi[cc]);
                }
            }
            kfr_tcc_free(fj);
            free(fs);
        }
        kern_free(&k);
    }
}
