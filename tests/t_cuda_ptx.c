/* t_cuda_ptx.c -- the CUDA emitter (compiler/emit/emit_cuda.c) through NVRTC
 * (runtime/cuda/nvrtc.c), no GPU needed: every op of ops.def and every reduction
 * of reductions.def, both dtypes, both axes, emitted as CUDA and compiled to
 * PTX. Kernels are batched into one translation unit per configuration (each
 * in a namespace of its own, entry renamed) because NVRTC's fixed cost per
 * program dominates; a failing batch is retried kernel by kernel so the
 * failure names its formula and prints NVRTC's log. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/emit/skel.h"
#include "runtime/rt.h"
#include "harness.h"
#include "testutil.h"

#define ARCH "compute_80"

/* Every op (with D = 3): the cases of t_ops.c, plus ops only reachable there by aliases. */
static const char *const FORMULAS[] = {
    "IntCst(3)*x + RatCst(1,3)*y - Zero(3) + 0.25", "Vi(0,3)*Var(4,1,1) + p", "Minus(x*b) + p", "-x + y",
    "Exp(x - y*p)", "Log(x*b + p)", "Sin(x + y*p)", "Cos(x*b - y)", "Asin(x*b*p)", "Acos(x*y*p)",
    "Atan(x*b + y)", "Sqrt(x*b + p)", "Rsqrt(x + y*p)", "Inv(x + y + p)", "Abs(x - y*p)",
    "Sign(x - y)*b + p", "Step(x - y)*a + b", "ReLU(x - y*p)", "Floor(x*y) + p", "Square(x - y)*p",
    "XLogX(x*b + p)", "SinXDivX(x - y*p)", "Pow(x*b + p, 3)", "Pow(x + y, -2)*p", "Pow(x, 0) + Pow(y, 77)",
    "(x - y)**2 + x**3*b", "Round(x*y, 1) + p", "Round(x - b, 0)*p", "ClampInt(x*b + p, -1, 1)",
    "x*b + y/p - a", "Add(x, b) - Subtract(y, p)*Mult(a, x)", "Divide(x, y + IntCst(3))",
    "Atan2(x*p, y + b)", "Powf(x*b, y*p)", "Equal(x, y)*a + NotEqual(x*b, y)",
    "LessThan(x, y*b) + LessOrEqual(x, y)*p", "(x < y)*a + (x >= y*p) + (x > b) - (x <= a)",
    "IfElse(x - y, a*p, b)", "Clamp(x*b, y - IntCst(1), y + p)", "Mod(x + y, IntCst(2), p)",
    "Sum(x*y)*p + b", "Max(x - y*b)", "Min(x*b + y)", "ArgMax(x - y) + b", "ArgMin(x*b - y)*p",
    "(x|y)*p + Scalprod(x, b)", "SqNorm2(x - y)*p", "Norm2(x*b + y)", "SqDist(x, y) + SqDist(x, b)*p",
    "WeightedSqNorm(p, x - y)", "WeightedSqNorm(w, x*a)", "WeightedSqNorm(A, x - y)",
    "WeightedSqDist(b, x, y)", "WeightedSqDist(A, x, y)*p", "Exp(-SqDist(x,y)/IntCst(2))*b",
    "Normalize(x - y*p)", "Elem(x, 2)*b + Elem(y, 0)", "ElemT(a*b + p, 3, 2)", "Extract(x - y, 2, 1)*p",
    "Extract(Concat(x, y), 1, 3)", "ExtractT(a*b, 2, 3) + y", "ExtractT(x*b, 1, 4)", "Concat(x*b, y + p)",
    "OneHot(a - b, 3)*p", "SumT(a*b + p, 3) + x", "MatVecMult(A, y) + x*p", "VecMatMult(y, A)*b",
    "TensorProd(x, y*p)", "TensorProd(q, w)*b + A*p",
    "TensorDot(A, y, [3,3], [3], [1], [0]) + x*p", "TensorDot(A, A*b, [3,3], [3,3], [0], [1], [1,0])",
    "TensorDot(TensorProd(x, A), w, [3,3,3], [3], [2], [0], [1,0])*b", "Kron(A, TensorProd(q, w)*b, [3,3], [3,3])",
    "SqNormIso(p, x - y) + SqNormDiag(w, x) + SymSqNorm(A, y) + IntInv(4)",
    "BSpline(Concat(Concat(Concat(Concat(Concat(IntCst(-2), IntCst(-1)), Zero(1)), Zero(1)), IntCst(1)), IntCst(2)), a*b, 3)*p + BSpline(Concat(Concat(b - IntCst(2), b), b + IntCst(1)), a, 1)",
    "SoftDTW_SqDist(x, Concat(y, b), p*p + IntInv(2))*a + SoftDTW_SqDist(a, y, IntInv(3))",
    "GradSoftDTW_SqDist(x, Concat(y, b), IntInv(2))*p", "Grad(SoftDTW_SqDist(x, y, IntInv(2)), y, a)",
    "x", "p + Sum(y)",    /* complex */
    KFT_COMPLEX_FORMULAS
    "ComplexDivide(Concat(x, y), Concat(y + p, x*b))",
    "ComplexDivide(Concat(a, b), Concat(x, y)) + ComplexDivide(Concat(x, y), Concat(b, p))",
    /* derivatives: their expansions */
    "Grad(Exp(-SqDist(x,y)*p)*b, x, a)", "Grad(Sin(x*y)*p, y, x) + Grad_WithSavedForward(SqNorm2(x-y), y, a, b)",
    "Diff(Exp(-SqDist(x,y))*x, x, w)", "GradMatrix(Sin(x)*b, x)",
    "Laplacian(Exp(-SqDist(x,y)*p), x) + Divergence(x*Norm2(x-y), x)",
    "Grad(ClampInt(x*b, -1, 1), x, y) + DiffClampInt(x*b, 0, 1)",
};
#define NFORM ((int)(sizeof FORMULAS / sizeof FORMULAS[0]))
static const char *const ALIASES[] = {"x=Vi(0,3)", "y=Vj(1,3)", "p=Pm(2,1)", "a=Vi(3,1)",
                                      "b=Vj(4,1)", "A=Vi(5,9)", "w=Vj(6,3)", "q=Pm(7,3)"};
#define NALIAS 8

/* One kernel of a batch: its formula, reduction and source. */
typedef struct kcase {
    const char *formula, *red;
    char f[512], f2[512]; /* the formula (and formula2) as compiled */
    int K;
    kf_sum_scheme scheme;
    char *src;
} kcase;

/* Appends s to *b (grown with realloc) with every `from` replaced by `from`
 * followed by _n; returns 0 or -1 on out of memory. */
static int append_renamed(kfc_buf *b, const char *s, int n)
{
    static const char *const names[] = {"kf_reduce_cuda", "kf_smem_per_point", "KF_SMEM_PER_POINT"};
    while (*s) {
        size_t k;
        for (k = 0; k < 3; k++)
            if (!strncmp(s, names[k], strlen(names[k])))
                break;
        if (k < 3) {
            kfc_buf_printf(b, "%s_%d", names[k], n);
            s += strlen(names[k]);
        } else {
            const char *e = s + 1;
            while (*e && *e != 'k' && *e != 'K')
                e++;
            kfc_buf_printf(b, "%.*s", (int)(e - s), s);
            s = e;
        }
    }
    return b->oom ? -1 : 0;
}

/* Parses, checks, simplifies, sets up the reduction and emits CUDA. Marks
 * the ops seen (after parsing, and before simplification) in seen. Returns 0 or -1 (printed). */
static int emit_case(kcase *c, int axis, kf_dtype dt, int *seen)
{
    kfc_prog p;
    kfc_diag d;
    kfc_diag_clear(&d);
    kfc_prog_init(&p);
    const char *f2 = c->f2[0] ? c->f2 : NULL;
    int st = kfc_parse(&p, c->f, f2, ALIASES, NALIAS, &d);
    for (int32_t n = 0; !st && n < p.nnodes; n++) /* the derivative operators, before check expands them */
        seen[p.nodes[n].op] = 1;
    if (!st)
        st = kfc_check(&p, c->f, f2, ALIASES, NALIAS, &d);
    if (!st)
        for (int32_t n = 0; n < p.nnodes; n++)
            seen[p.nodes[n].op] = 1;
    kfc_red r;
    if (!st)
        st = kfc_simplify(&p, &d);
    if (!st)
        st = kfc_red_setup(&r, &p, c->red, axis, dt, c->K, c->scheme, &d);
    if (!st && !(c->src = kfc_emit_cuda(&p, &r, &d)))
        st = d.status ? d.status : -1;
    kfc_prog_free(&p);
    if (st)
        fprintf(stderr, "  emit %s '%s' (formula2 '%s'): %s\n", c->red, c->f, c->f2, d.msg);
    return st ? -1 : 0;
}

/* NVRTC on one source; prints the log and what failed. Returns 0 or -1. */
static int compile(const char *src, const char *what)
{
    char *ptx = NULL;
    kfc_diag d;
    kfc_diag_clear(&d);
    int st = kfr_nvrtc_ptx(src, ARCH, &ptx, &d);
    int ok = st == KF_OK && ptx && strstr(ptx, ".entry");
    if (!ok)
        fprintf(stderr, "  NVRTC %s: %s\n", what, st ? d.msg : "no .entry in the PTX");
    free(ptx);
    return ok ? 0 : -1;
}

/* Compiles the batch as one program; on failure, each kernel alone. */
static int compile_batch(kcase *cs, int n, const char *what)
{
    kfc_buf b = {0};
    for (int k = 0; k < n; k++) {
        kfc_buf_printf(&b, "namespace kfb%d {\n", k);
        append_renamed(&b, cs[k].src, k);
        kfc_buf_printf(&b, "}\n");
    }
    if (b.oom) {
        free(b.s);
        return -1;
    }
    int st = compile(b.s, what);
    free(b.s);
    if (!st)
        return 0;
    int bad = 0;
    for (int k = 0; k < n; k++) {
        char w[1200];
        snprintf(w, sizeof w, "%s: %s '%s' formula2 '%s'", what, cs[k].red, cs[k].f, cs[k].f2);
        bad += compile(cs[k].src, w) != 0;
    }
    KFT_CHECKF(bad > 0, "%s: the batch failed but every kernel alone compiled", what);
    return -1;
}

/* The reductions an op's formula is rotated through; the LSE family reads
 * the scalar Sum(F), those with formula2 take F as formula2. */
static void set_red(kcase *c, int red, const char *f)
{
    c->red = kfc_red_info[red].name;
    c->K = kfc_red_info[red].needs_k ? 3 : 0;
    c->scheme = KF_SUM_AUTO;
    c->f2[0] = 0;
    if (kfc_red_info[red].scalar)
        snprintf(c->f, sizeof c->f, "Sum(%s)", f);
    else
        snprintf(c->f, sizeof c->f, "%s", f);
    if (kfc_red_info[red].formula2)
        snprintf(c->f2, sizeof c->f2, "%s", f);
}

static int nvrtc_present(void)
{
    int major = 0, minor = 0;
    if (kfr_nvrtc_version(&major, &minor) != KF_OK) {
        kft_skip("NVRTC cannot be loaded (no libnvrtc.so*)");
        return 0;
    }
    return 1;
}

/* One dtype and axis: every formula under a reduction picked by rotation
 * (every reduction several times), under Sum too for axis 1, plus each
 * float32 Sum scheme. */
static void run_config(kf_dtype dt, int axis, int *seen)
{
    enum { EXTRA = 4 };
    int n = 2 * NFORM + EXTRA, made = 0, rot = axis * 5 + (dt == KF_FLOAT32) * 3;
    kcase *cs = calloc((size_t)n, sizeof *cs);
    KFT_CHECK(cs != NULL);
    if (!cs)
        return;
    for (int f = 0; f < NFORM; f++) {
        for (int w = axis == 1 ? 0 : 1; w < 2; w++) { /* Sum: axis 1 only (time) */
            kcase *c = &cs[made];
            set_red(c, w ? (f + rot) % KFC_RED_COUNT : KFC_RED_SUM, FORMULAS[f]);
            KFT_CHECKF(emit_case(c, axis, dt, seen) == 0, "%s", c->f);
            made += c->src != NULL;
        }
    }
    static const kf_sum_scheme schemes[EXTRA] = {KF_SUM_BLOCK, KF_SUM_DIRECT, KF_SUM_F64, KF_SUM_KAHAN};
    for (int s = 0; s < EXTRA; s++) {
        kcase *c = &cs[made];
        set_red(c, KFC_RED_SUM, "Exp(-SqDist(x,y))*w");
        c->scheme = dt == KF_FLOAT32 ? schemes[s] : KF_SUM_F64;
        KFT_CHECK(emit_case(c, axis, dt, seen) == 0);
        made += c->src != NULL;
    }
    KFT_CHECK(made == n - (axis == 1 ? 0 : NFORM));
    char what[64];
    snprintf(what, sizeof what, "%s axis %d (%d kernels)", dt == KF_FLOAT32 ? "float32" : "float64", axis, made);
    KFT_CHECKF(compile_batch(cs, made, what) == 0, "%s", what);
    for (int k = 0; k < n; k++)
        free(cs[k].src);
    free(cs);
}

KFT_TEST(cuda_ptx_every_op_and_reduction)
{
    if (!nvrtc_present())
        return;
    int seen[KFC_OP_COUNT] = {0};
    for (int dt = 0; dt < 2; dt++)
        for (int axis = 0; axis < 2; axis++)
            run_config(dt ? KF_FLOAT64 : KF_FLOAT32, axis, seen);
    for (int op = 0; op < KFC_OP_COUNT; op++)
        KFT_CHECKF(seen[op], "op %s is not covered by the CUDA test", kfc_op_info[op].name);
}

/* Each reduction appears in the rotation of every configuration (the
 * coverage above relies on it: NFORM >= KFC_RED_COUNT). */
KFT_TEST(cuda_ptx_rotation_covers_reductions)
{
    KFT_CHECK(NFORM >= KFC_RED_COUNT);
}

KFT_TEST(cuda_ptx_errors)
{
    char *ptx = NULL;
    kfc_diag d;
    kfc_diag_clear(&d);
    /* A bad architecture string never reaches NVRTC's options. */
    KFT_CHECK(kfr_nvrtc_ptx("int x;", "compute_90 --foo", &ptx, &d) != KF_OK && !ptx);
    if (!nvrtc_present())
        return;
    kfc_diag_clear(&d);
    int st = kfr_nvrtc_ptx("__global__ void k() { undeclared_thing(); }", ARCH, &ptx, &d);
    KFT_CHECKF(st == KF_ERR_JIT && !ptx && strstr(d.msg, "undeclared_thing"), "%d %s", st, d.msg);
    kfc_diag_clear(&d);
    st = kfr_nvrtc_ptx("extern \"C\" __global__ void k(float *o) { o[0] = expf(o[1]); }", ARCH, &ptx, &d);
    KFT_CHECKF(st == KF_OK && ptx && strstr(ptx, ".entry k"), "%d %s", st, d.msg);
    free(ptx);
}
