/* t_check.c -- the checker: golden error messages, dims, the variable table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/ir.h"
#include "golden/golden.h"
#include "harness.h"

/* Local on purpose: the golden file must not depend on the runtime's name table. */
static const char *status_name(int st)
{
    static const char *const names[] = {"KF_OK",          "KF_ERR_NOMEM", "KF_ERR_ARG",
                                        "KF_ERR_SYNTAX",  "KF_ERR_TYPE",  "KF_ERR_UNSUPPORTED",
                                        "KF_ERR_LIMIT",   "KF_ERR_JIT",   "KF_ERR_IO",
                                        "KF_ERR_THREAD",  "KF_ERR_INTERNAL"};
    return st >= 0 && st < (int)(sizeof names / sizeof *names) ? names[st] : "?";
}

static int parse_check(kfc_prog *p, const char *f, const char *f2, const char *const *al, int nal,
                       kfc_diag *d)
{
    kfc_prog_init(p);
    int st = kfc_parse(p, f, f2, al, nal, d);
    return st ? st : kfc_check(p, f, f2, al, nal, d);
}

KFT_TEST(check_golden_errors)
{
    char *buf = kft_read_file("tests/golden/errors.txt"), *cur = buf;
    int line = 0, ncases = 0;
    kft_rec r;
    KFT_CHECK(buf != NULL);
    while (buf && kft_golden_next(&cur, &line, &r)) {
        ncases++;
        KFT_CHECKF(!r.bad && r.formula && r.status && r.message, "errors.txt:%d: malformed record",
                   r.line);
        if (r.bad || !r.formula || !r.status || !r.message)
            continue;
        kfc_prog p;
        kfc_diag d;
        int st = parse_check(&p, r.formula, r.formula2, r.aliases, r.naliases, &d);
        KFT_CHECKF(strcmp(status_name(st), r.status) == 0 && strcmp(d.msg, r.message) == 0 &&
                       d.status == st,
                   "errors.txt:%d:\n    got  %s %s\n    want %s %s", r.line, status_name(st), d.msg,
                   r.status, r.message);
        if (r.source)
            KFT_CHECKF(d.src == atoi(r.source), "errors.txt:%d: source %d", r.line, d.src);
        /* The offset points into the string named by src, at the reported column. */
        KFT_CHECK(d.offset >= 0);
        kfc_prog_free(&p);
    }
    KFT_CHECKF(ncases >= 30, "only %d golden error cases", ncases);
    free(buf);
}

/* Dim of the root of f (aliases al), or -status. */
static int dim_of(const char *f, const char *const *al, int nal)
{
    kfc_prog p;
    kfc_diag d;
    int st = parse_check(&p, f, NULL, al, nal, &d);
    int dim = st ? -st : p.nodes[p.root].dim;
    kfc_prog_free(&p);
    return dim;
}

KFT_TEST(check_dims)
{
    static const char *const al[] = {"x=Vi(0,3)", "y=Vj(1,3)", "s=Pm(2,1)", "A=Pm(3,6)", "M=Pm(4,9)",
                                     "b=Vj(5,2)"};
    static const struct {
        const char *f;
        int dim;
    } cases[] = {
        {"x", 3},
        {"x+s", 3},
        {"s*x-y", 3},
        {"Exp(s)", 1},
        {"SqDist(x,y)", 1},
        {"SqDist(x,s)", 1},
        {"(x|y)", 1},
        {"WeightedSqNorm(s,x)", 1},
        {"WeightedSqNorm(x,y)", 1},
        {"WeightedSqNorm(M,x)", 1},
        {"WeightedSqDist(M,x,y)", 1},
        {"WeightedSqDist(x,s,y)", 1},
        {"Elem(x,2)", 1},
        {"ElemT(s,5,4)", 5},
        {"Extract(x,0,3)", 3},
        {"ExtractT(b,1,3)", 3},
        {"Concat(x,b)", 5},
        {"OneHot(s,7)", 7},
        {"SumT(s,4)", 4},
        {"MatVecMult(A,b)", 3},
        {"MatVecMult(A,x)", 2},
        {"VecMatMult(b,A)", 3},
        {"VecMatMult(x,A)", 2},
        {"TensorProd(x,b)", 6},
        {"Normalize(x)", 3},
        {"Zero(4)+x*0", -KF_ERR_TYPE},
        {"Zero(3)+x", 3},
        {"IfElse(s,x,y)", 3},
        {"Clamp(x,s,s)", 3},
        {"Mod(s,s,x)", 3},
        {"Max(x)+ArgMin(y)", 1},
        {"Round(x,0)+ClampInt(x,-2,-2)+Pow(x,-1024)", 3},
        {"Var(7,2,2)", 2},
        {"MatVecMult(A,s)", 6},
        {"Elem(x,-1)", -KF_ERR_TYPE},
        {"ExtractT(x,0,2)", -KF_ERR_TYPE},
        {"ExtractT(x,0,70000)", -KF_ERR_LIMIT},
        {"WeightedSqNorm(A,x)", -KF_ERR_TYPE},
        /* complex: even dims; a dim-2 argument (one complex number) broadcasts */
        {"ComplexMult(A,A)", 6},
        {"ComplexMult(A,b)", 6},
        {"ComplexMult(b,A)", 6},
        {"ComplexMult(b,b)", 2},
        {"ComplexMult(A,Concat(b,b))", -KF_ERR_TYPE},
        {"ComplexMult(x,x)", -KF_ERR_TYPE},
        {"ComplexMult(A,s)", -KF_ERR_TYPE},
        {"ComplexAdd(A,b)+ComplexSubtract(b,A)+ComplexDivide(A,b)", 6},
        {"ComplexDivide(b,Concat(x,x))", 6},
        {"ComplexAdd(x,b)", -KF_ERR_TYPE},
        {"Conj(A)", 6},
        {"Conj(x)", -KF_ERR_TYPE},
        {"ComplexExp(b)", 2},
        {"ComplexExp(s)", -KF_ERR_TYPE},
        {"ComplexReal(A)+ComplexImag(A)+ComplexAbs(A)+ComplexSquareAbs(A)+ComplexAngle(A)", 3},
        {"ComplexReal(b)", 1},
        {"ComplexImag(x)", -KF_ERR_TYPE},
        {"ComplexAngle(s)", -KF_ERR_TYPE},
        {"Real2Complex(x)", 6},
        {"Imag2Complex(s)", 2},
        {"ComplexExp1j(M)", 18},
        {"Real2Complex(Zero(40000))", -KF_ERR_LIMIT},
        {"ComplexSum(A)", 2},
        {"ComplexSum(b)", 2},
        {"ComplexSum(x)", -KF_ERR_TYPE},
        {"ComplexSumT(b,6)", 6},
        {"ComplexSumT(b,2)", 2},
        {"ComplexSumT(b,5)", -KF_ERR_TYPE},
        {"ComplexSumT(b,0)", -KF_ERR_TYPE},
        {"ComplexSumT(A,6)", -KF_ERR_TYPE},
        {"ComplexSumT(b,70000)", -KF_ERR_LIMIT},
        {"ComplexScal(b,A)", 6},
        {"ComplexScal(A,b)", 6},
        {"ComplexScal(b,b)", 2},
        {"ComplexScal(A,A)", -KF_ERR_TYPE},
        {"ComplexScal(b,x)", -KF_ERR_TYPE},
        {"ComplexRealScal(s,A)", 6},
        {"ComplexRealScal(A,s)", 6},
        {"ComplexRealScal(s,b)", 2},
        {"ComplexRealScal(s,s)", -KF_ERR_TYPE},
        {"ComplexRealScal(s,x)", -KF_ERR_TYPE},
        {"ComplexRealScal(b,A)", -KF_ERR_TYPE},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        int dim = dim_of(cases[k].f, al, 6);
        KFT_CHECKF(dim == cases[k].dim, "%s: dim %d, want %d", cases[k].f, dim, cases[k].dim);
    }
}

KFT_TEST(check_var_table)
{
    /* Aliases declare their variables even when the formula does not use them
     * (KeOps' argument list); indices not mentioned anywhere stay unused. */
    static const char *const al[] = {"x=Vi(0,3)", "y=Vj(1,3)", "b=Vj(3,1)"};
    kfc_prog p;
    kfc_diag d;
    KFT_CHECK(parse_check(&p, "SqDist(x,y)*Pm(5,2)", NULL, al, 3, &d) == KF_OK);
    KFT_CHECK(p.nvars == 6);
    KFT_CHECK(p.vars[0].used && p.vars[0].cat == KFC_CAT_I && p.vars[0].dim == 3);
    KFT_CHECK(p.vars[1].used && p.vars[1].cat == KFC_CAT_J && p.vars[1].dim == 3);
    KFT_CHECK(!p.vars[2].used && !p.vars[4].used);
    KFT_CHECK(p.vars[3].used && p.vars[3].cat == KFC_CAT_J && p.vars[3].dim == 1 && p.vars[3].src == 4);
    KFT_CHECK(p.vars[5].used && p.vars[5].cat == KFC_CAT_P && p.vars[5].dim == 2 && p.vars[5].src == 0);
    /* Constants carry their value in val. */
    kfc_prog_free(&p);
    KFT_CHECK(parse_check(&p, "IntCst(-7)*RatCst(3,-4)*Var(0,1,0)", NULL, NULL, 0, &d) == KF_OK);
    int seen = 0;
    for (int32_t k = 0; k < p.nnodes; k++) {
        seen += p.nodes[k].op == KFC_OP_INTCST && p.nodes[k].val == -7.0;
        seen += p.nodes[k].op == KFC_OP_RATCST && p.nodes[k].val == -0.75;
    }
    KFT_CHECK(seen == 2);
    kfc_prog_free(&p);
    /* Checking twice gives the same table (the pass resets it). */
    KFT_CHECK(parse_check(&p, "Var(2,4,1)", NULL, NULL, 0, &d) == KF_OK);
    KFT_CHECK(kfc_check(&p, "Var(2,4,1)", NULL, NULL, 0, &d) == KF_OK && p.nvars == 3 && p.vars[2].dim == 4);
    kfc_prog_free(&p);
    /* Per-pair scratch is bounded. */
    static const char *const big[] = {"x=Vi(0,40000)", "y=Vj(1,40000)"};
    KFT_CHECK(parse_check(&p, "x-y", NULL, big, 2, &d) == KF_ERR_LIMIT && strstr(d.msg, "values per pair"));
    kfc_prog_free(&p);
    /* A conflict between two aliases is reported in the later alias. */
    static const char *const clash[] = {"x=Vi(0,3)", "y=Vj(0,3)"};
    KFT_CHECK(parse_check(&p, "x", NULL, clash, 2, &d) == KF_ERR_TYPE && d.src == 3 &&
              strcmp(d.msg, "1:3: Var(0,...) is a j-variable (cat 1) here but an i-variable (cat 0) "
                            "at 1:3 of alias 0") == 0);
    kfc_prog_free(&p);
}

KFT_TEST(check_malformed_ir)
{
    /* Hand-built IR that breaks the index invariant is refused, not followed. */
    kfc_prog p;
    kfc_diag d;
    kfc_prog_init(&p);
    int32_t a = kfc_node_new(&p, KFC_OP_EXP, 0, 0, &d);
    p.nodes[a].a[0] = a; /* its own child */
    p.root = a;
    KFT_CHECK(kfc_check(&p, "Exp(x)", NULL, NULL, 0, &d) == KF_ERR_INTERNAL);
    kfc_prog_free(&p);
}
