/* t_simplify.c -- constant folding (and what it must not fold), CSE, compaction. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/ir.h"
#include "harness.h"

static int build(kfc_prog *p, const char *f, const char *f2, kfc_diag *d)
{
    static const char *const al[] = {"x=Vi(0,3)", "y=Vj(1,3)", "s=Pm(2,1)", "unused=Vj(3,2)"};
    kfc_prog_init(p);
    int st = kfc_parse(p, f, f2, al, 4, d);
    if (!st)
        st = kfc_check(p, f, f2, al, 4, d);
    if (!st)
        st = kfc_simplify(p, d);
    return st;
}

static int count_op(const kfc_prog *p, int op)
{
    int n = 0;
    for (int32_t k = 0; k < p->nnodes; k++)
        n += p->nodes[k].op == op;
    return n;
}

/* Children precede parents, roots are in range, and nothing unreachable is left. */
static int well_formed(const kfc_prog *p)
{
    char *live = calloc((size_t)p->nnodes + 1, 1);
    int ok = live && p->root >= 0 && p->root < p->nnodes && p->root2 < p->nnodes;
    if (ok) {
        live[p->root] = 1;
        if (p->root2 >= 0)
            live[p->root2] = 1;
    }
    for (int32_t k = p->nnodes - 1; ok && k >= 0; k--) {
        ok = live[k];
        for (int c = 0; ok && c < kfc_op_info[p->nodes[k].op].nargs; c++) {
            int32_t a = p->nodes[k].a[c];
            ok = a >= 0 && a < k;
            if (ok)
                live[a] = 1;
        }
    }
    free(live);
    return ok;
}

KFT_TEST(simplify_cse)
{
    kfc_prog p;
    kfc_diag d;
    KFT_CHECK(build(&p, "Exp(x)+Exp(x)", NULL, &d) == KF_OK);
    /* One Var, one Exp, one Add; the alias declarations are gone. */
    KFT_CHECKF(p.nnodes == 3 && count_op(&p, KFC_OP_EXP) == 1 && well_formed(&p), "%d nodes", p.nnodes);
    KFT_CHECK(p.nodes[p.root].a[0] == p.nodes[p.root].a[1]);
    /* The variable table survives compaction (aliases still declare). */
    KFT_CHECK(p.nvars == 4 && p.vars[3].used);
    kfc_prog_free(&p);

    /* formula and formula2 share subexpressions. */
    KFT_CHECK(build(&p, "SqDist(x,y)*s", "Exp(-SqDist(x,y))", &d) == KF_OK);
    KFT_CHECK(count_op(&p, KFC_OP_SQDIST) == 1 && count_op(&p, KFC_OP_VAR) == 3 && well_formed(&p));
    KFT_CHECK(p.root2 >= 0 && p.root != p.root2);
    kfc_prog_free(&p);

    /* Same formula, different dims or ints: not merged. */
    KFT_CHECK(build(&p, "Pow(x,2)+Pow(x,3)+Round(x,2)+Elem(x,0)*Elem(x,1)", NULL, &d) == KF_OK);
    KFT_CHECK(count_op(&p, KFC_OP_POW) == 2 && count_op(&p, KFC_OP_ELEM) == 2 && well_formed(&p));
    kfc_prog_free(&p);

    /* A whole repeated subtree collapses, in a chain deep enough to matter. */
    KFT_CHECK(build(&p, "Sum(Exp(x-y)*s)+Sum(Exp(x-y)*s)+Sum(Exp(x-y)*s)", NULL, &d) == KF_OK);
    KFT_CHECKF(p.nnodes == 9 && well_formed(&p), "%d nodes", p.nnodes);
    kfc_prog_free(&p);

    /* Root that is a leaf shared with nothing. */
    KFT_CHECK(build(&p, "x", "x", &d) == KF_OK && p.nnodes == 1 && p.root == 0 && p.root2 == 0);
    kfc_prog_free(&p);
}

/* The root's folded value, or NAN if the root is not a literal. */
static double folded(const char *f)
{
    kfc_prog p;
    kfc_diag d;
    double v = NAN;
    if (build(&p, f, NULL, &d) == KF_OK && p.nodes[p.root].op == KFC_OP_NUM && p.nnodes == 1)
        v = p.nodes[p.root].val;
    kfc_prog_free(&p);
    return v;
}

KFT_TEST(simplify_folding)
{
    KFT_CHECK(folded("IntCst(2)*IntCst(3)") == 6);
    KFT_CHECK(folded("RatCst(1,4)+0.5") == 0.75);
    KFT_CHECK(folded("-IntCst(2)") == -2);
    KFT_CHECK(folded("Exp(0)") == 1);
    KFT_CHECK(folded("Pow(2,-2)") == 0.25);
    KFT_CHECK(folded("Round(2.345,2)") == round(2.345 * 100.0) / 100.0);
    KFT_CHECK(folded("Round(-2.5,0)") == -3);
    KFT_CHECK(folded("ClampInt(7,-1,3)") == 3);
    KFT_CHECK(folded("IfElse(-1,2,3)") == 3);
    KFT_CHECK(folded("Mod(7,3,0)") == 1);
    KFT_CHECK(folded("Rsqrt(4)") == 0.5);
    KFT_CHECK(folded("SinXDivX(IntCst(0))+XLogX(IntCst(1))") == 1);
    KFT_CHECK(folded("Step(0)+Sign(-3)+ReLU(-2)") == 0);
    KFT_CHECK(folded("LessThan(1,2)+Equal(1,1)+NotEqual(1,1)+LessOrEqual(2,1)") == 2);
    KFT_CHECK(folded("1 < 2") == 1);
    KFT_CHECK(folded("Normalize(-3)") == -1);
    /* Not folded: NaN, infinities and -0.0 keep their formulas. */
    KFT_CHECK(isnan(folded("Sqrt(-1)")));
    KFT_CHECK(isnan(folded("Log(0)")));
    KFT_CHECK(isnan(folded("Inv(0)")));
    KFT_CHECK(isnan(folded("Exp(1000)")));
    KFT_CHECK(isnan(folded("Minus(0)")));
    KFT_CHECK(isnan(folded("0*-1")));
    KFT_CHECK(isnan(folded("Powf(-1,0.5)")));
    /* Not folded: non-element-wise ops, even on constants. */
    KFT_CHECK(isnan(folded("Sum(IntCst(3))")));
    /* Not folded: anything with a variable, however "obvious". */
    kfc_prog p;
    kfc_diag d;
    KFT_CHECK(build(&p, "0*s + s-s + s/s + Exp(s)*0", NULL, &d) == KF_OK);
    KFT_CHECK(count_op(&p, KFC_OP_MULT) == 2 && count_op(&p, KFC_OP_DIVIDE) == 1 && well_formed(&p));
    kfc_prog_free(&p);
    /* Folding below a variable op leaves the literal in place. */
    KFT_CHECK(build(&p, "x*(IntCst(1)+IntCst(2))", NULL, &d) == KF_OK);
    KFT_CHECK(p.nnodes == 3 && count_op(&p, KFC_OP_NUM) == 1 && count_op(&p, KFC_OP_INTCST) == 0);
    char *c = kfc_print(&p, p.root);
    KFT_CHECKF(c && strcmp(c, "Mult(Var(0,3,0),3)") == 0, "%s", c ? c : "");
    free(c);
    kfc_prog_free(&p);
}
