/* t_parse.c -- the parser and printer: golden canonical forms, round trips, precedence, limits. */
#define _GNU_SOURCE
#include <locale.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/ir.h"
#include "golden/golden.h"
#include "harness.h"

/* Parse, check, simplify; returns the status, *canon (and *canon2) on success. */
static int compile_text(const char *f, const char *f2, const char *const *al, int nal, char **canon,
                        char **canon2, kfc_diag *d)
{
    kfc_prog p;
    kfc_prog_init(&p);
    int st = kfc_parse(&p, f, f2, al, nal, d);
    if (!st)
        st = kfc_check(&p, f, f2, al, nal, d);
    if (!st)
        st = kfc_simplify(&p, d);
    *canon = NULL;
    if (canon2)
        *canon2 = NULL;
    if (!st) {
        *canon = kfc_print(&p, p.root);
        if (canon2 && p.root2 >= 0)
            *canon2 = kfc_print(&p, p.root2);
    }
    kfc_prog_free(&p);
    return st;
}

/* Canonical form of f (no aliases), or NULL on error. */
static char *canon_of(const char *f)
{
    kfc_diag d;
    char *c;
    return compile_text(f, NULL, NULL, 0, &c, NULL, &d) ? NULL : c;
}

static int same(const char *a, const char *b) { return a && b && strcmp(a, b) == 0; }

KFT_TEST(parse_golden_canonical)
{
    char *buf = kft_read_file("tests/golden/canonical.txt"), *cur = buf, *all = NULL;
    size_t allen = 0;
    int line = 0, ncases = 0;
    kft_rec r;
    KFT_CHECK(buf != NULL);
    while (buf && kft_golden_next(&cur, &line, &r)) {
        ncases++;
        KFT_CHECKF(!r.bad && r.formula && r.canonical, "canonical.txt:%d: malformed record", r.line);
        if (r.bad || !r.formula || !r.canonical)
            continue;
        kfc_diag d;
        char *c = NULL, *c2 = NULL;
        int st = compile_text(r.formula, r.formula2, r.aliases, r.naliases, &c, &c2, &d);
        KFT_CHECKF(st == KF_OK && same(c, r.canonical), "canonical.txt:%d: got '%s' (%s)", r.line,
                   c ? c : "", d.msg);
        if (r.canonical2)
            KFT_CHECKF(same(c2, r.canonical2), "canonical.txt:%d: formula2 gave '%s'", r.line,
                       c2 ? c2 : "");
        /* The canonical form is a fixed point: its own canonical form is itself. */
        char *again = canon_of(r.canonical);
        KFT_CHECKF(same(again, r.canonical), "canonical.txt:%d: reprinted as '%s'", r.line,
                   again ? again : "(error)");
        /* the formula too: a derivative operator is gone from its canonical form */
        for (int t = 0; t < 2; t++) {
            const char *txt = t ? r.formula : r.canonical;
            size_t l = strlen(txt);
            char *a2 = realloc(all, allen + l + 2);
            if (a2) {
                all = a2;
                memcpy(all + allen, txt, l);
                allen += l;
                all[allen++] = ' ';
                all[allen] = 0;
            }
        }
        free(again), free(c), free(c2);
    }
    KFT_CHECKF(ncases >= 40, "only %d golden cases", ncases);
    /* Every operation of ops.def is covered by some golden case. */
    for (int op = 0; op < KFC_OP_COUNT && all; op++) {
        char pat[64];
        if (op == KFC_OP_NUM)
            continue;
        snprintf(pat, sizeof pat, "%s(", kfc_op_info[op].name);
        int found = 0;
        for (const char *s = all; !found && (s = strstr(s, pat)); s++)
            found = s == all || !((s[-1] >= 'A' && s[-1] <= 'Z') || (s[-1] >= 'a' && s[-1] <= 'z'));
        KFT_CHECKF(found, "no golden case uses %s", kfc_op_info[op].name);
    }
    free(all);
    free(buf);
}

KFT_TEST(parse_precedence)
{
    static const char *const cases[][2] = {
        {"-Var(0,1,0)**2", "Minus(Square(Var(0,1,0)))"},
        {"(-Var(0,1,0))**2", "Square(Minus(Var(0,1,0)))"},
        {"Var(0,1,0)-Var(1,1,1)-Var(2,1,2)", "Subtract(Subtract(Var(0,1,0),Var(1,1,1)),Var(2,1,2))"},
        {"Var(0,1,0)-(Var(1,1,1)-Var(2,1,2))", "Subtract(Var(0,1,0),Subtract(Var(1,1,1),Var(2,1,2)))"},
        {"Var(0,1,0)*Var(1,1,1)**3", "Mult(Var(0,1,0),Pow(Var(1,1,1),3))"},
        {"Var(0,2,0)|Var(1,2,1)<1", "LessThan(Scalprod(Var(0,2,0),Var(1,2,1)),1)"},
        {"1 < Var(0,1,0) + 2 * 3", "LessThan(1,Add(Var(0,1,0),6))"},
        {"(Var(0,1,0) > 1) > 0", "LessThan(0,LessThan(1,Var(0,1,0)))"},
        {"Var(0,1,0) > (1 > 0)", "LessThan(1,Var(0,1,0))"}, /* (1 > 0) folds to 1 */
        {"Var(0,1,0)\n+\tVar(1,1,1)\r\n", "Add(Var(0,1,0),Var(1,1,1))"},
        {"Var(0,1,0)/-2", "Divide(Var(0,1,0),-2)"},
        {"Var(0,1,0)**0 + Var(0,1,0)**1", "Add(Pow(Var(0,1,0),0),Pow(Var(0,1,0),1))"},
        {"Var(0,1,0)**2.0", "Square(Var(0,1,0))"},
        /* ** is right-associative and binds tighter than a sign on its left, as in
         * Python: the exponent is a constant folded the way Python computes it */
        {"Var(0,1,0)**2**2", "Pow(Var(0,1,0),4)"},
        {"Var(0,1,0)**2**3**0", "Square(Var(0,1,0))"},
        {"Var(0,1,0)**2**2**2", "Pow(Var(0,1,0),16)"},
        {"Var(0,1,0)**-2**2", "Pow(Var(0,1,0),-4)"},
        {"Var(0,1,0)**(-2)**2", "Pow(Var(0,1,0),4)"},
        {"Var(0,1,0)**(-1)**3", "Pow(Var(0,1,0),-1)"},
        {"Var(0,1,0)**(2**2)", "Pow(Var(0,1,0),4)"},
        {"Var(0,1,0)**2**-1", "Sqrt(Var(0,1,0))"},
        {"Var(0,1,0)**-(2**-1)", "Rsqrt(Var(0,1,0))"},
        {"Var(0,1,0)**0**0", "Pow(Var(0,1,0),1)"},
        {"-Var(0,1,0)**2**2", "Minus(Pow(Var(0,1,0),4))"},
        {"(Var(0,1,0)**2)**3", "Pow(Square(Var(0,1,0)),3)"},
        {"2**2**Var(0,1,0)", NULL},
        /* a trailing comma in a call, as Python allows */
        {"Exp(Var(0,1,0),)", "Exp(Var(0,1,0))"},
        {"Sum(Var(0,3,0), )", "Sum(Var(0,3,0))"},
        {"Pow(Var(0,1,0),3,)", "Pow(Var(0,1,0),3)"},
        {"Var(0,1,0,)+Vi(0,1,)", "Add(Var(0,1,0),Var(0,1,0))"},
        {"IfElse(Var(0,1,0),1,2,)", "IfElse(Var(0,1,0),1,2)"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        char *c = canon_of(cases[k][0]);
        if (cases[k][1])
            KFT_CHECKF(same(c, cases[k][1]), "%s -> %s", cases[k][0], c ? c : "(error)");
        else
            KFT_CHECKF(!c, "%s -> %s, expected an error", cases[k][0], c);
        free(c);
    }
}

static int status_of(const char *f, kfc_diag *d);

/* What Python syntax allows and KeOps formulas use, and what would read
 * differently here than in Python: refused, with the column. */
KFT_TEST(parse_python_syntax)
{
    static const struct {
        const char *f;
        int status;
        const char *msg; /* the start of the message */
    } cases[] = {
        {"Var(0,1,0) < Var(1,1,1) < 2", KF_ERR_SYNTAX, "1:25: comparisons do not chain"},
        {"Var(0,1,0)>=1>0", KF_ERR_SYNTAX, "1:14: comparisons do not chain"},
        {"Exp(Var(0,1,0) <= 1 > 0)", KF_ERR_SYNTAX, "1:21: comparisons do not chain"},
        {"Var(0,1,0)**2**Var(1,1,1)", KF_ERR_SYNTAX, "1:13: integer exponent expected after '**'"},
        {"Var(0,1,0)**2**0.5", KF_ERR_SYNTAX, "1:13: integer exponent expected after '**'"},
        {"Var(0,1,0)**0**-1", KF_ERR_SYNTAX, "1:13: integer exponent expected"}, /* 0**-1: no value */
        {"Var(0,1,0)**(-8)**0.5", KF_ERR_SYNTAX, "1:13: integer exponent expected"},
        {"Var(0,1,0)**(-1)**9007199254740993", KF_ERR_SYNTAX, "1:13: integer exponent expected"},
        {"Var(2,1,0)**2**11", KF_ERR_TYPE, "1:11: Pow(f,m): m = 2048 is out of range"},
        {"Exp(Var(0,1,0),,)", KF_ERR_SYNTAX, "1:16: expected an expression, near ','"},
        {"Exp(,)", KF_ERR_SYNTAX, "1:5: expected an expression, near ','"},
        {"Pow(Var(0,1,0),)", KF_ERR_TYPE, "1:1: Pow takes 2 arguments, as in Pow(f,m); got 1"},
        {"Pow(Var(0,1,0),2,3,)", KF_ERR_TYPE, "1:1: Pow takes 2 arguments, as in Pow(f,m); got 3"},
        {"Exp(Var(0,1,0),Var(0,1,0),)", KF_ERR_TYPE, "1:1: Exp takes 1 argument, as in Exp(f); got 2"},
        {"Exp(Var(0,1,0),", KF_ERR_SYNTAX, "1:16: expected ')' to close '(' at 1:4, near end of formula"},
        {"Vi(0,1,2,)", KF_ERR_TYPE, "1:1: Vi takes 2 arguments, as in Vi(index,dim); got 3"},
        {"Vi(0,)", KF_ERR_SYNTAX, "1:1: Vi(dim) is only allowed in an alias"},
        {"(Var(0,1,0),)", KF_ERR_SYNTAX, "1:12: expected ')' to close '(' at 1:1, near ','"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        kfc_diag d;
        int st = status_of(cases[k].f, &d);
        KFT_CHECKF(st == cases[k].status && strncmp(d.msg, cases[k].msg, strlen(cases[k].msg)) == 0,
                   "%s: %d %s", cases[k].f, st, d.msg);
    }
    /* The alias' short form takes a trailing comma too. */
    static const char *const al[] = {"x=Vi(3,)", "y=Vj(1,3,)", "z=Var(2,3,2,)"};
    kfc_diag d;
    char *c = NULL;
    KFT_CHECKF(compile_text("x+y+z", NULL, al, 3, &c, NULL, &d) == KF_OK &&
                   same(c, "Add(Add(Var(0,3,0),Var(1,3,1)),Var(2,3,2))"),
               "%s %s", c ? c : "", d.msg);
    free(c);
}

KFT_TEST(parse_literals_roundtrip)
{
    /* Shortest decimals that read back exactly, whatever their size. */
    static const char *const lits[] = {"0.1", "1e-300", "123456789012345680", "2.2250738585072014e-308",
                                       "0.30000000000000004", "5e-324", "1.7976931348623157e+308"};
    for (size_t k = 0; k < sizeof lits / sizeof *lits; k++) {
        char f[64];
        snprintf(f, sizeof f, "Var(0,1,0)*%s", lits[k]);
        char *c = canon_of(f);
        double want = strtod(lits[k], NULL), got = 0;
        const char *star = c ? strchr(c, ',') : NULL;
        if (star && strstr(star, "),"))
            got = strtod(strstr(star, "),") + 2, NULL);
        KFT_CHECKF(c && got == want, "%s -> %s", lits[k], c ? c : "(error)");
        char *again = c ? canon_of(c) : NULL;
        KFT_CHECKF(same(again, c), "%s not a fixed point: %s", c ? c : "", again ? again : "");
        free(c), free(again);
    }
    /* Numbers never depend on the C locale (only testable where a ',' locale exists). */
    const char *locs[] = {"de_DE.UTF-8", "fr_FR.UTF-8", "de_DE", "fr_FR"};
    for (size_t k = 0; k < sizeof locs / sizeof *locs; k++) {
        if (!setlocale(LC_NUMERIC, locs[k]))
            continue;
        char *c = canon_of("Var(0,1,0)*0.5");
        setlocale(LC_NUMERIC, "C");
        KFT_CHECKF(same(c, "Mult(Var(0,1,0),0.5)"), "under %s: %s", locs[k], c ? c : "(error)");
        free(c);
        break;
    }
}

/* Status of parse+check on f with the standard test aliases. */
static int status_of(const char *f, kfc_diag *d)
{
    static const char *const al[] = {"x=Vi(0,3)", "y=Vj(1,3)"};
    kfc_prog p;
    kfc_prog_init(&p);
    int st = kfc_parse(&p, f, NULL, al, 2, d);
    if (!st)
        st = kfc_check(&p, f, NULL, al, 2, d);
    kfc_prog_free(&p);
    return st;
}

static char *repeat(const char *a, int n, const char *mid, const char *b, int m)
{
    size_t la = strlen(a), lm = strlen(mid), lb = strlen(b);
    char *s = malloc(la * (size_t)n + lm + lb * (size_t)m + 1), *o = s;
    if (!s)
        return NULL;
    for (int k = 0; k < n; k++, o += la)
        memcpy(o, a, la);
    memcpy(o, mid, lm), o += lm;
    for (int k = 0; k < m; k++, o += lb)
        memcpy(o, b, lb);
    *o = 0;
    return s;
}

KFT_TEST(parse_limits)
{
    kfc_diag d;
    /* 100k characters: refused by length, before any parsing. */
    char *s = repeat("x+", 50000, "x", "", 0);
    KFT_CHECK(s && status_of(s, &d) == KF_ERR_LIMIT && strstr(d.msg, "too long"));
    free(s);
    /* 10000 nested parentheses, and a long chain of unary minus. */
    s = repeat("(", 10000, "x", ")", 10000);
    KFT_CHECKF(s && status_of(s, &d) == KF_ERR_LIMIT && strstr(d.msg, "nested too deeply"), "%s", d.msg);
    free(s);
    s = repeat("-", 10000, "x", "", 0);
    KFT_CHECK(s && status_of(s, &d) == KF_ERR_LIMIT);
    free(s);
    s = repeat("Exp(", 300, "x", ")", 300);
    KFT_CHECK(s && status_of(s, &d) == KF_ERR_LIMIT);
    free(s);
    s = repeat("x**(", 5000, "2", ")", 5000);
    KFT_CHECK(s && status_of(s, &d) != KF_OK);
    free(s);
    /* Exponent chains recurse (** is right-associative): capped as well. */
    s = repeat("1**", 10000, "x", "", 0);
    KFT_CHECKF(s && status_of(s, &d) == KF_ERR_LIMIT && strstr(d.msg, "nested too deeply"), "%s", d.msg);
    free(s);
    s = repeat("x", 1, "", "**1", 10000);
    KFT_CHECKF(s && status_of(s, &d) == KF_ERR_LIMIT && strstr(d.msg, "nested too deeply"), "%s", d.msg);
    free(s);
    s = repeat("x**", 1, "", "-", 10000);
    KFT_CHECKF(s && status_of(s, &d) == KF_ERR_LIMIT && strstr(d.msg, "nested too deeply"), "%s", d.msg);
    free(s);
    s = repeat("x", 1, "", "**1", 100); /* x**1**1**...: Pow(x,1) */
    KFT_CHECKF(s && status_of(s, &d) == KF_OK, "%s", d.msg);
    free(s);
    /* Nesting just under the cap is fine. */
    s = repeat("(", 200, "x", ")", 200);
    KFT_CHECKF(s && status_of(s, &d) == KF_OK, "%s", d.msg);
    free(s);
    /* Too many nodes: a flat chain of 30000 terms (short enough in bytes). */
    s = repeat("x+", 30000, "x", "", 0);
    KFT_CHECKF(s && status_of(s, &d) == KF_ERR_LIMIT && strstr(d.msg, "nodes"), "%s", d.msg);
    free(s);
    /* Huge integers: not UB, a clear status. */
    KFT_CHECK(status_of("Var(9223372036854775808,1,0)", &d) == KF_ERR_LIMIT);
    KFT_CHECK(status_of("Var(-9223372036854775809,1,0)", &d) == KF_ERR_LIMIT);
    KFT_CHECK(status_of("IntCst(-9223372036854775808)", &d) == KF_OK);
    KFT_CHECK(status_of("IntCst(9223372036854775807)*x", &d) == KF_OK);
    KFT_CHECK(status_of("Pow(x,-9223372036854775808)", &d) == KF_ERR_TYPE);
    KFT_CHECK(status_of("x**99999999999", &d) == KF_ERR_SYNTAX);
    KFT_CHECK(status_of("1e999999999999999999999", &d) == KF_ERR_LIMIT);
    KFT_CHECK(status_of("Zero(65537)", &d) == KF_ERR_LIMIT);
    /* Bytes that are not formula text. */
    KFT_CHECK(status_of("x+\x01", &d) == KF_ERR_SYNTAX && strstr(d.msg, "1:3: ") && strstr(d.msg, "\\x01"));
    KFT_CHECK(status_of("x\xff", &d) == KF_ERR_SYNTAX && strstr(d.msg, "\\xff"));
    /* Long tokens are truncated in messages. */
    s = repeat("a", 5000, "", "", 0);
    KFT_CHECK(s && status_of(s, &d) == KF_ERR_SYNTAX && strlen(d.msg) < 120);
    free(s);
}

KFT_TEST(parse_long_chain_prints)
{
    /* 8000 left-nested additions: deep trees print without recursion. */
    char *s = repeat("x+", 8000, "x", "", 0), *c = NULL;
    static const char *const al[] = {"x=Vi(0,3)"};
    kfc_diag d;
    KFT_CHECK(s && compile_text(s, NULL, al, 1, &c, NULL, &d) == KF_OK);
    KFT_CHECK(c && strncmp(c, "Add(Add(Add(", 12) == 0 && strlen(c) == 8000 * strlen("Add(,Var(0,3,0))") + 10);
    free(s), free(c);
}

KFT_TEST(parse_arguments)
{
    kfc_diag d;
    kfc_prog p;
    /* Bad API arguments. */
    kfc_prog_init(&p);
    KFT_CHECK(kfc_parse(&p, NULL, NULL, NULL, 0, &d) == KF_ERR_ARG);
    KFT_CHECK(kfc_parse(&p, "x", NULL, NULL, 1, &d) == KF_ERR_ARG);
    const char *nul[] = {NULL};
    KFT_CHECK(kfc_parse(&p, "x", NULL, nul, 1, &d) == KF_ERR_ARG);
    kfc_prog_free(&p);
    /* Positions: every node keeps its byte offset and its source string. */
    kfc_prog_init(&p);
    static const char *const al[] = {"x=Vi(0,3)", "y = Vj(1,3)"};
    KFT_CHECK(kfc_parse(&p, "Exp(x) + y", "y*2", al, 2, &d) == KF_OK);
    int found_plus = 0, found_use = 0, found_decl = 0, found_f2 = 0;
    for (int32_t k = 0; k < p.nnodes; k++) {
        const kfc_node *n = &p.nodes[k];
        found_plus |= n->op == KFC_OP_ADD && n->pos == 7 && n->src == 0;
        found_use |= n->op == KFC_OP_VAR && n->pos == 9 && n->src == 0 && n->iv[0] == 1;
        found_decl |= n->op == KFC_OP_VAR && n->pos == 4 && n->src == 3 && n->iv[1] == 3;
        found_f2 |= n->op == KFC_OP_MULT && n->pos == 1 && n->src == 1;
        for (int c = 0; c < 3; c++)
            KFT_CHECK(n->a[c] < k);
    }
    KFT_CHECK(found_plus && found_use && found_decl && found_f2);
    KFT_CHECK(p.root >= 0 && p.root2 >= 0 && p.root != p.root2);
    kfc_prog_free(&p);
    /* Too many aliases: a limit, not a crash. */
    const char **many = calloc(300, sizeof *many);
    char (*txt)[16] = calloc(300, sizeof *txt);
    for (int k = 0; many && txt && k < 300; k++)
        snprintf(txt[k], sizeof txt[k], "a%d=Vi(1)", k), many[k] = txt[k];
    kfc_prog_init(&p);
    KFT_CHECK(many && txt && kfc_parse(&p, "a0", NULL, many, 300, &d) == KF_ERR_LIMIT);
    kfc_prog_free(&p);
    kfc_prog_init(&p);
    KFT_CHECK(many && txt && kfc_parse(&p, "a0+a99", NULL, many, 100, &d) == KF_OK);
    kfc_prog_free(&p);
    free(many), free(txt);
}

KFT_TEST(parse_dump)
{
    kfc_prog p;
    kfc_diag d;
    kfc_prog_init(&p);
    KFT_CHECK(kfc_parse(&p, "Pow(Var(0,2,0),3)*0.5", NULL, NULL, 0, &d) == KF_OK);
    char *s = kfc_dump(&p);
    KFT_CHECKF(s && strstr(s, "Pow") && strstr(s, "ints=3") && strstr(s, "val=0.5") &&
                   strstr(s, "ints=0,2,0"),
               "%s", s ? s : "(null)");
    int lines = 0;
    for (const char *c = s; c && *c; c++)
        lines += *c == '\n';
    KFT_CHECK(lines == p.nnodes + 1);
    free(s);
    kfc_prog_free(&p);
}
