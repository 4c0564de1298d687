/*
 * parse.c -- recursive-descent parser: formula text and aliases -> IR nodes.
 *
 * Grammar (Python precedence, loosest first; docs/formulas.md):
 *   formula  := cmp END
 *   cmp      := bar [('<' | '<=' | '>' | '>=') bar]  (a second one: error, see parse_cmp)
 *   bar      := add ('|' add)*                       (scalar product)
 *   add      := mul (('+' | '-') mul)*
 *   mul      := unary (('*' | '/') unary)*
 *   unary    := ('-' | '+') unary | power
 *   power    := atom ['**' exponent]
 *   exponent := ('+' | '-') exponent | ebase ['**' exponent]  (a constant: integer or +-0.5)
 *   ebase    := NUMBER | '(' exponent ')'
 *   atom     := NUMBER | NAME | NAME '(' args ')' | '(' cmp ')'
 *   args     := arg (',' arg)* [',']                 (a trailing comma, as in Python)
 *   alias    := NAME '=' ('Vi' | 'Vj' | 'Pm') '(' [INT ','] INT [','] ')'
 *             | NAME '=' 'Var' '(' INT ',' INT ',' INT [','] ')'
 *
 * Nodes are appended after their children, so children < parent always holds.
 * Every alias declaration becomes a VAR node of its own (before the formula's
 * nodes): it declares its variable even if the formula never uses it, as
 * KeOps' aliases do, and kfc_simplify drops it as unreachable. A use of an
 * alias creates a fresh VAR node at the use site; CSE merges them later.
 */
#define _GNU_SOURCE /* newlocale, strtod_l: numbers never depend on the C locale */
#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/lex.h"

#define KF_STR_(x) #x
#define KF_STR(x) KF_STR_(x)

/* kfc_node.src (an int16_t) names alias k as 2 + k, which KFC_MAX_ALIASES keeps in range. */
#define MAX_ALIASES KFC_MAX_ALIASES

typedef struct alias {
    const char *name; /* points into the alias string */
    int32_t len;
    int64_t iv[3];    /* index, dim, cat */
} alias;

typedef struct parser {
    kfc_prog *p;
    kfc_diag *d;
    kfc_lex x;
    int depth;
    locale_t cloc;
    alias *al;
    int nal;
} parser;

/* KeOps operations kforge does not implement yet: a clear status, not "unknown name". */
static const char *const unsupported[] = {
    "SoftDTW", "Sinh", "Cosh", "Tanh", "Asinh",
    "Acosh", "Atanh", "Factorize", "AutoFactorize", "LogSumExp", "KMin", "ArgKMin", "DivideSafe",
};

static int name_is(const char *s, int32_t n, const char *lit)
{
    return (size_t)n == strlen(lit) && memcmp(s, lit, (size_t)n) == 0;
}

/* Vi/Vj/Pm: the category they declare, or -1. */
static int var_shorthand(const char *s, int32_t n)
{
    if (name_is(s, n, "Vi"))
        return KFC_CAT_I;
    if (name_is(s, n, "Vj"))
        return KFC_CAT_J;
    if (name_is(s, n, "Pm"))
        return KFC_CAT_P;
    return -1;
}

/* ---------- errors ---------- */

/* "L:C: WHAT, near 'TOKEN'" at the current token. Kept out of line so the
 * recursive functions keep small frames. */
__attribute__((noinline)) static int err_near(parser *P, int status, const char *what)
{
    char near[64];
    kfc_lex_near(&P->x, near, sizeof near);
    return kfc_diag_at(P->d, status, P->x.text, P->x.start, P->x.src, "%s, near %s", what, near);
}

__attribute__((noinline)) static int err_close(parser *P, const char *expected, int32_t lp)
{
    char lc[32], what[96];
    kfc_linecol(P->x.text, lp, lc, sizeof lc);
    snprintf(what, sizeof what, "expected %s to close '(' at %s", expected, lc);
    return err_near(P, KF_ERR_SYNTAX, what);
}

/* The signature at the head of an op's DOC string, e.g. "Pow(f,m)". */
static int signature(int op, char *buf, size_t cap)
{
    const char *doc = kfc_op_info[op].doc, *e = strchr(doc, ')');
    size_t n = e ? (size_t)(e - doc + 1) : 0;
    if (!e || strncmp(doc, kfc_op_info[op].name, strlen(kfc_op_info[op].name)) != 0)
        n = 0;
    return snprintf(buf, cap, "%.*s", (int)n, doc);
}

/* Arguments after the '(' at lp up to its matching ')' (a trailing comma
 * ends the list, it adds no argument), or -1 if unbalanced. */
static int count_args(const char *s, int32_t lp)
{
    int depth = 0, n = 1, any = 0, last = 0; /* last: the current argument has text */
    for (int32_t i = lp + 1; s[i]; i++) {
        char c = s[i];
        if (c == '(' || c == '[') {
            depth++;
        } else if (c == ']') {
            depth--;
        } else if (c == ')' && depth-- == 0) {
            return !any ? 0 : n > 1 && !last ? n - 1 : n;
        } else if (c == ',' && depth == 0) {
            n++, any = 1, last = 0;
            continue;
        }
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            any = last = 1;
    }
    return -1;
}

/* Arguments of op as written: its formulas and integers, and for
 * Grad_WithSavedForward KeOps' saved forward result f0, which is parsed and
 * checked but kept by no node (it is not used: see its DOC). */
static int arity(int op)
{
    return kfc_op_info[op].nargs + kfc_op_info[op].nints + (op == KFC_OP_GRADSF);
}

__attribute__((noinline)) static int err_arity(parser *P, int op, int32_t pos, int32_t lp)
{
    const kfc_opinfo *oi = &kfc_op_info[op];
    int want = arity(op), got = count_args(P->x.text, lp);
    char sig[96], gots[32] = "";
    signature(op, sig, sizeof sig);
    if (got >= 0)
        snprintf(gots, sizeof gots, "; got %d", got);
    return kfc_diag_at(P->d, KF_ERR_TYPE, P->x.text, pos, P->x.src, "%s takes %d argument%s, as in %s%s",
                       oi->name, want, want == 1 ? "" : "s", sig, gots);
}

/* ---------- nodes ---------- */

static int32_t node(parser *P, int op, int32_t pos, int32_t a0, int32_t a1, int32_t a2)
{
    int32_t k = kfc_node_new(P->p, op, pos, P->x.src, P->d);
    if (k >= 0) {
        kfc_node *n = &P->p->nodes[k];
        n->a[0] = a0, n->a[1] = a1, n->a[2] = a2;
    }
    return k;
}

static int32_t var_node(parser *P, int32_t pos, const int64_t iv[3])
{
    int32_t k = node(P, KFC_OP_VAR, pos, -1, -1, -1);
    if (k >= 0)
        memcpy(P->p->nodes[k].iv, iv, 3 * sizeof iv[0]);
    return k;
}

static int next(parser *P) { return kfc_lex_next(&P->x); }

/* ---------- integers and numbers ---------- */

/* INT := ['-'] digits, fitting int64. `what` names it in messages ("'dim' of Var"). */
static int parse_int(parser *P, const char *what, int64_t *out)
{
    int neg = 0;
    if (P->x.tok == KFC_TK_MINUS) {
        neg = 1;
        if (next(P))
            return -1;
    }
    const char *s = P->x.text + P->x.start;
    int32_t n = P->x.len, k;
    for (k = 0; P->x.tok == KFC_TK_NUM && k < n && s[k] >= '0' && s[k] <= '9'; k++)
        ;
    if (P->x.tok != KFC_TK_NUM || k != n) {
        char msg[96];
        snprintf(msg, sizeof msg, "expected an integer for %s", what);
        return err_near(P, KF_ERR_SYNTAX, msg), -1;
    }
    /* Accumulate the magnitude in uint64 so INT64_MIN parses and nothing overflows. */
    uint64_t v = 0, lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (k = 0; k < n; k++) {
        unsigned dgt = (unsigned)(s[k] - '0');
        if (v > (lim - dgt) / 10)
            return err_near(P, KF_ERR_LIMIT, "integer does not fit in 64 bits"), -1;
        v = v * 10 + dgt;
    }
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return next(P) ? -1 : 0;
}

/* Value of the current NUM token, locale-independent; inf is refused. */
static int number_value(parser *P, double *out)
{
    char small[64], *buf = small;
    size_t n = (size_t)P->x.len;
    if (n >= sizeof small && !(buf = malloc(n + 1)))
        return kfc_diag_set(P->d, KF_ERR_NOMEM, -1, -1, "out of memory"), -1;
    memcpy(buf, P->x.text + P->x.start, n);
    buf[n] = 0;
    double v = strtod_l(buf, NULL, P->cloc);
    if (buf != small)
        free(buf);
    if (!isfinite(v))
        return err_near(P, KF_ERR_LIMIT, "number too large for a double"), -1;
    *out = v;
    return 0;
}

/* ---------- expressions ---------- */

static int32_t parse_cmp(parser *P);
static int32_t parse_unary(parser *P);

/* Integer argument k of op; names it from the signature in messages, e.g.
 * "expected an integer for 'dim' of Var". Out of line: keeps parse_call's frame small. */
__attribute__((noinline)) static int parse_int_arg(parser *P, int op, int k, int64_t *out)
{
    char sig[96], what[128];
    const char *p = sig;
    signature(op, sig, sizeof sig);
    for (int c = 0; c <= k && (p = strpbrk(p, "(,")); c++)
        p++;
    int len = p ? (int)strcspn(p, ",)") : 0;
    snprintf(what, sizeof what, "'%.*s' of %s", len, p ? p : "", kfc_op_info[op].name);
    return parse_int(P, what, out);
}

/* After an argument of the call at lp (more: others must follow): takes a
 * ',' (and a ')' right after it: the trailing comma Python allows) or the
 * ')'. Returns 1 when the call's ')' was read, 0 for a ',' before the next
 * argument, -1 on an error (reported). */
static int call_sep(parser *P, int op, int32_t pos, int32_t lp, int more)
{
    if (P->x.tok == KFC_TK_COMMA) {
        if (next(P))
            return -1;
        if (P->x.tok == KFC_TK_RP && !more)
            return next(P) ? -1 : 1;
        if (P->x.tok == KFC_TK_END)
            return err_close(P, "')'", lp), -1;
        if (P->x.tok == KFC_TK_COMMA)
            return err_near(P, KF_ERR_SYNTAX, "expected an expression"), -1;
        if (P->x.tok == KFC_TK_RP || !more)
            return err_arity(P, op, pos, lp), -1; /* too few, too many */
        return 0;
    }
    if (P->x.tok == KFC_TK_RP) {
        if (more)
            return err_arity(P, op, pos, lp), -1;
        return next(P) ? -1 : 1;
    }
    return err_close(P, more ? "',' or ')'" : "')'", lp), -1;
}

/* args := arg (',' arg)* [',']  -- nargs formulas, then nints integers; creates the node */
static int32_t parse_call(parser *P, int op, int32_t pos)
{
    const kfc_opinfo *oi = &kfc_op_info[op];
    int total = arity(op);
    int32_t lp = P->x.start, ch[3] = {-1, -1, -1};
    int64_t iv[3] = {0, 0, 0};
    if (next(P))
        return -1;
    if (P->x.tok == KFC_TK_RP)
        return err_arity(P, op, pos, lp), -1;
    for (int k = 0; k < total; k++) {
        if (k < oi->nargs) {
            if ((ch[k] = parse_cmp(P)) < 0)
                return -1;
        } else if (op == KFC_OP_GRADSF) {
            if (parse_cmp(P) < 0) /* f0: its nodes stay unreachable, checked all the same */
                return -1;
        } else if (parse_int_arg(P, op, k, &iv[k - oi->nargs])) {
            return -1;
        }
        if (call_sep(P, op, pos, lp, k < total - 1) < 0)
            return -1;
    }
    int32_t n = node(P, op, pos, ch[0], ch[1], ch[2]);
    if (n >= 0)
        memcpy(P->p->nodes[n].iv, iv, sizeof iv);
    return n;
}

/* Vi(index,dim) / Vj / Pm inside a formula or an alias; Vi(dim) only in an alias
 * (alias_k >= 0), where the index is the alias' position. Fills iv. */
static int parse_shorthand(parser *P, int cat, int alias_k, int64_t iv[3])
{
    int32_t pos = P->x.start, lp;
    const char *nm = P->x.text + pos;
    int64_t a = 0, b = 0;
    if (next(P))
        return -1;
    if (P->x.tok != KFC_TK_LP) {
        char msg[64];
        snprintf(msg, sizeof msg, "expected '(' after '%.2s'", nm);
        return err_near(P, KF_ERR_SYNTAX, msg), -1;
    }
    lp = P->x.start;
    if (next(P) || parse_int(P, "the variable index", &a))
        return -1;
    int two = 0; /* Vi(a,b), else Vi(a): a ',' before the ')' is a trailing comma */
    if (P->x.tok == KFC_TK_COMMA) {
        if (next(P))
            return -1;
        if (P->x.tok != KFC_TK_RP) {
            if (parse_int(P, "the variable dim", &b))
                return -1;
            two = 1;
        }
    }
    if (two) {
        iv[0] = a, iv[1] = b;
    } else if (alias_k >= 0) {
        iv[0] = alias_k, iv[1] = a;
    } else {
        return kfc_diag_at(P->d, KF_ERR_SYNTAX, P->x.text, pos, P->x.src,
                           "%.2s(dim) is only allowed in an alias; inside a formula write "
                           "%.2s(index,dim)",
                           nm, nm),
               -1;
    }
    iv[2] = cat;
    if (two && P->x.tok == KFC_TK_COMMA) { /* a trailing comma, or a third argument */
        if (next(P))
            return -1;
        if (P->x.tok != KFC_TK_RP && P->x.tok != KFC_TK_END) {
            int got = count_args(P->x.text, lp);
            return kfc_diag_at(P->d, KF_ERR_TYPE, P->x.text, pos, P->x.src,
                               "%.2s takes 2 arguments, as in %.2s(index,dim); got %d", nm, nm, got),
                   -1;
        }
    }
    if (P->x.tok != KFC_TK_RP)
        return err_close(P, "')'", lp), -1;
    return next(P) ? -1 : 0;
}

static const alias *find_alias(const parser *P, const char *s, int32_t n)
{
    for (int k = 0; k < P->nal; k++)
        if (P->al[k].len == n && memcmp(P->al[k].name, s, (size_t)n) == 0)
            return &P->al[k];
    return NULL;
}

/* The current token, a NAME, is no operation or alias: a KeOps name kforge
 * lacks, or unknown. Out of line for small frames. */
__attribute__((noinline)) static int err_name(parser *P, int unsupported_yet)
{
    char q[64];
    kfc_lex_quote(P->x.text + P->x.start, (size_t)P->x.len, q, sizeof q);
    if (unsupported_yet)
        return kfc_diag_at(P->d, KF_ERR_UNSUPPORTED, P->x.text, P->x.start, P->x.src,
                           "not supported yet: %.*s", (int)P->x.len, P->x.text + P->x.start);
    return kfc_diag_at(P->d, KF_ERR_SYNTAX, P->x.text, P->x.start, P->x.src,
                       "unknown name %s (not an operation or an alias)", q);
}

__attribute__((noinline)) static int err_paren_after(parser *P, const char *name, int32_t len)
{
    char q[64], msg[96];
    kfc_lex_quote(name, (size_t)len, q, sizeof q);
    snprintf(msg, sizeof msg, "expected '(' after %s", q);
    return err_near(P, KF_ERR_SYNTAX, msg);
}

/* ---------- KeOps' shorthands and TensorDot's lists ---------- */

/* Names KeOps itself defines as an expansion into other operations (its
 * classes return the expanded formula from __new__), expanded the same way
 * here, so they have no row in ops.def: SqNormIso(s,f) = s*SqNorm2(f),
 * SqNormDiag(s,f) = Sum(s*Square(f)), SymSqNorm(s,f) =
 * Sum(s*TensorProd(f,f)), IntInv(n) = RatCst(1,n). Kron is TensorDot's
 * (parse_tensordot). docs/formulas.md lists them under "Shorthands". */
enum { SUGAR_SQNORMISO, SUGAR_SQNORMDIAG, SUGAR_SYMSQNORM, SUGAR_INTINV, SUGAR_KRON };
static const char *const sugar_names[] = {"SqNormIso", "SqNormDiag", "SymSqNorm", "IntInv", "Kron"};
static const char *const sugar_sigs[] = {"SqNormIso(s,f)", "SqNormDiag(s,f)", "SymSqNorm(s,f)", "IntInv(n)",
                                         "Kron(a,b,[dims a],[dims b])"};

static int sugar_lookup(const char *s, int32_t n)
{
    for (int k = 0; k < (int)(sizeof sugar_names / sizeof *sugar_names); k++)
        if (name_is(s, n, sugar_names[k]))
            return k;
    return -1;
}

/* "NAME takes N arguments, as in SIG; got M" at the name, for the shorthands and TensorDot. */
__attribute__((noinline)) static int err_arity_sig(parser *P, const char *name, const char *want,
                                                   const char *sig, int32_t pos, int32_t lp)
{
    int got = count_args(P->x.text, lp);
    char gots[32] = "";
    if (got >= 0)
        snprintf(gots, sizeof gots, "; got %d", got);
    return kfc_diag_at(P->d, KF_ERR_TYPE, P->x.text, pos, P->x.src, "%s takes %s, as in %s%s", name, want,
                       sig, gots);
}

/* ilist := '[' [INT (',' INT)* [',']] ']'  -- at most 2*KFC_TD_AXES entries */
static int parse_ilist(parser *P, const char *what, int64_t *v, int *n)
{
    char msg[160];
    if (P->x.tok != KFC_TK_LB) {
        snprintf(msg, sizeof msg, "expected '[' to start %s (a list of integers)", what);
        return err_near(P, KF_ERR_SYNTAX, msg);
    }
    if (next(P))
        return -1;
    for (*n = 0; P->x.tok != KFC_TK_RB;) {
        if (*n == 2 * KFC_TD_AXES) {
            snprintf(msg, sizeof msg, "%s has more than %d entries", what, 2 * KFC_TD_AXES);
            return err_near(P, KF_ERR_LIMIT, msg);
        }
        if (parse_int(P, what, &v[(*n)++]))
            return -1;
        if (P->x.tok == KFC_TK_COMMA) {
            if (next(P))
                return -1;
        } else if (P->x.tok != KFC_TK_RB) {
            snprintf(msg, sizeof msg, "expected ',' or ']' in %s", what);
            return err_near(P, KF_ERR_SYNTAX, msg);
        }
    }
    return next(P) ? -1 : 0;
}

/* The lists' own consistency (their dims against a's and b's are check.c's). */
static int tdot_fill(parser *P, kfc_tdot *t, int64_t l[5][2 * KFC_TD_AXES], const int nl[5],
                     const int32_t at[5], int has_perm, int kron, const char *nm)
{
    const char *T = P->x.text;
    int S = P->x.src;
    if (nl[0] > KFC_TD_AXES || nl[1] > KFC_TD_AXES)
        return kfc_diag_at(P->d, KF_ERR_LIMIT, T, at[nl[0] > KFC_TD_AXES ? 0 : 1], S,
                           "%s: at most %d axes per tensor", nm, KFC_TD_AXES);
    if (kron && nl[0] != nl[1])
        return kfc_diag_at(P->d, KF_ERR_TYPE, T, at[1], S,
                           "Kron: both tensors need the same number of axes; got %d and %d", nl[0], nl[1]);
    if (nl[2] != nl[3])
        return kfc_diag_at(P->d, KF_ERR_TYPE, T, at[3], S,
                           "%s: contfa and contfb must have the same length; got %d and %d", nm, nl[2],
                           nl[3]);
    t->na = (uint8_t)nl[0], t->nb = (uint8_t)nl[1], t->nc = (uint8_t)nl[2];
    for (int w = 0; w < 2; w++)
        for (int k = 0; k < nl[w]; k++) {
            if (l[w][k] < 1 || l[w][k] > KFC_MAX_DIM)
                return kfc_diag_at(P->d, KF_ERR_TYPE, T, at[w], S, "%s: axis dim %lld must be in 1..%d", nm,
                                   (long long)l[w][k], KFC_MAX_DIM);
            (w ? t->db : t->da)[k] = (int32_t)l[w][k];
        }
    for (int w = 0; w < 2; w++)
        for (int k = 0; k < t->nc; k++) {
            int64_t ax = l[2 + w][k];
            if (ax < 0 || ax >= nl[w])
                return kfc_diag_at(P->d, KF_ERR_TYPE, T, at[2 + w], S,
                                   "%s: contracted axis %lld of %c is not in 0..%d", nm, (long long)ax,
                                   "ab"[w], nl[w] - 1);
            for (int q = 0; q < k; q++)
                if (l[2 + w][q] == ax)
                    return kfc_diag_at(P->d, KF_ERR_TYPE, T, at[2 + w], S,
                                       "%s: axis %lld of %c is contracted twice", nm, (long long)ax, "ab"[w]);
            (w ? t->cb : t->ca)[k] = (uint8_t)ax;
        }
    for (int k = 0; k < t->nc; k++)
        if (t->da[t->ca[k]] != t->db[t->cb[k]])
            return kfc_diag_at(P->d, KF_ERR_TYPE, T, at[3], S,
                               "%s: contracted axes %d of a (dim %d) and %d of b (dim %d) differ in dim", nm,
                               t->ca[k], (int)t->da[t->ca[k]], t->cb[k], (int)t->db[t->cb[k]]);
    int nk = t->na + t->nb - 2 * t->nc;
    if (has_perm && nl[4] != nk)
        return kfc_diag_at(P->d, KF_ERR_TYPE, T, at[4], S,
                           "%s: permute must list the %d kept axes; got %d entries", nm, nk, nl[4]);
    for (int k = 0; k < nk; k++) {
        int64_t v = !has_perm ? k : l[4][k];
        if (v < 0 || v >= nk)
            return kfc_diag_at(P->d, KF_ERR_TYPE, T, at[4], S, "%s: permute entry %lld is not in 0..%d", nm,
                               (long long)v, nk - 1);
        for (int q = 0; q < k; q++)
            if (t->perm[q] == v)
                return kfc_diag_at(P->d, KF_ERR_TYPE, T, at[4], S, "%s: permute lists %lld twice", nm,
                                   (long long)v);
        t->perm[k] = (uint8_t)v;
    }
    if (kron) /* a's axis k goes to 2k, b's to 2k+1: np.kron's interleaving */
        for (int k = 0; k < nk; k++)
            t->perm[k] = (uint8_t)(k < t->na ? 2 * k : 2 * (k - t->na) + 1);
    return 0;
}

/* TensorDot(a, b, ilist, ilist, ilist, ilist [, ilist] [','])  -- dimsfa dimsfb contfa contfb permute
 * Kron(a, b, ilist, ilist [','])                                -- TensorDot without contraction */
static int32_t parse_tensordot(parser *P, int32_t pos, int kron)
{
    static const char *const what[5] = {"dimsfa", "dimsfb", "contfa", "contfb", "permute"};
    const char *nm = kron ? "Kron" : "TensorDot";
    const char *sig = kron ? "Kron(a,b,[2,2],[3,3])" : "TensorDot(a,b,[2,3],[3,4],[1],[0])";
    const char *want = kron ? "4 arguments" : "6 or 7 arguments";
    int32_t lp = P->x.start, ch[2], at[5] = {0};
    int64_t l[5][2 * KFC_TD_AXES];
    int nl[5] = {0}, most = kron ? 2 : 5, least = kron ? 2 : 4, k = 0;
    if (next(P))
        return -1;
    for (int c = 0; c < 2; c++) {
        if (P->x.tok == KFC_TK_RP)
            return err_arity_sig(P, nm, want, sig, pos, lp), -1;
        if ((ch[c] = parse_cmp(P)) < 0)
            return -1;
        if (P->x.tok == KFC_TK_RP)
            return err_arity_sig(P, nm, want, sig, pos, lp), -1;
        if (P->x.tok != KFC_TK_COMMA)
            return err_close(P, "','", lp), -1;
        if (next(P))
            return -1;
    }
    for (;; k++) {
        char w[64];
        snprintf(w, sizeof w, "'%s' of %s", what[k], nm);
        at[k] = P->x.start;
        if (parse_ilist(P, w, l[k], &nl[k]))
            return -1;
        int comma = P->x.tok == KFC_TK_COMMA;
        if (comma && next(P)) /* a ',' right before the ')' is a trailing comma */
            return -1;
        if (P->x.tok == KFC_TK_RP && k + 1 >= least)
            break;
        if (P->x.tok == KFC_TK_RP || (comma && k + 1 == most))
            return err_arity_sig(P, nm, want, sig, pos, lp), -1;
        if (!comma)
            return err_close(P, "',' or ')'", lp), -1;
    }
    if (next(P))
        return -1;
    kfc_tdot t;
    memset(&t, 0, sizeof t);
    if (tdot_fill(P, &t, l, nl, at, k + 1 == 5, kron, nm))
        return -1;
    int32_t n = node(P, KFC_OP_TENSORDOT, pos, ch[0], ch[1], -1);
    if (n >= 0)
        P->p->nodes[n].td = t;
    return n;
}

/* SqNormIso(s,f), SqNormDiag(s,f), SymSqNorm(s,f), IntInv(n): '(' args ')', then their expansion */
static int32_t parse_sugar(parser *P, int which, int32_t pos)
{
    const char *nm = sugar_names[which], *sig = sugar_sigs[which];
    int32_t lp = P->x.start, f[2] = {-1, -1};
    if (next(P))
        return -1;
    if (P->x.tok == KFC_TK_RP)
        return err_arity_sig(P, nm, which == SUGAR_INTINV ? "1 argument" : "2 arguments", sig, pos, lp), -1;
    if (which == SUGAR_INTINV) {
        int64_t q;
        if (parse_int(P, "'n' of IntInv", &q))
            return -1;
        if (P->x.tok == KFC_TK_COMMA && next(P))
            return -1;
        if (P->x.tok != KFC_TK_RP)
            return (P->x.tok == KFC_TK_END ? err_close(P, "')'", lp)
                                           : err_arity_sig(P, nm, "1 argument", sig, pos, lp)),
                   -1;
        int32_t k = node(P, KFC_OP_RATCST, pos, -1, -1, -1);
        if (k < 0 || next(P))
            return -1;
        P->p->nodes[k].iv[0] = 1, P->p->nodes[k].iv[1] = q;
        return k;
    }
    for (int c = 0; c < 2; c++) {
        if ((f[c] = parse_cmp(P)) < 0)
            return -1;
        int r = call_sep(P, KFC_OP_SCALPROD, pos, lp, c == 0);
        if (r < 0) { /* call_sep named Scalprod, which has the same arity: say it again with this name */
            if (P->d->status == KF_ERR_TYPE)
                return err_arity_sig(P, nm, "2 arguments", sig, pos, lp), -1;
            return -1;
        }
    }
    int32_t t = which == SUGAR_SQNORMISO    ? node(P, KFC_OP_SQNORM2, pos, f[1], -1, -1)
                : which == SUGAR_SQNORMDIAG ? node(P, KFC_OP_SQUARE, pos, f[1], -1, -1)
                                            : node(P, KFC_OP_TENSORPROD, pos, f[1], f[1], -1);
    int32_t m = t < 0 ? -1 : node(P, KFC_OP_MULT, pos, f[0], t, -1);
    if (m < 0 || which == SUGAR_SQNORMISO)
        return m;
    return node(P, KFC_OP_SUM, pos, m, -1, -1);
}

/* atom := NUMBER | NAME | NAME '(' args ')' | '(' cmp ')' */
static int32_t parse_atom(parser *P)
{
    int32_t pos = P->x.start, len = P->x.len;
    const char *s = P->x.text + pos;
    switch (P->x.tok) {
    case KFC_TK_NUM: {
        double v;
        if (number_value(P, &v))
            return -1;
        int32_t k = node(P, KFC_OP_NUM, pos, -1, -1, -1);
        if (k < 0 || next(P))
            return -1;
        P->p->nodes[k].val = v;
        return k;
    }
    case KFC_TK_LP: {
        if (next(P))
            return -1;
        int32_t e = parse_cmp(P);
        if (e < 0)
            return -1;
        if (P->x.tok != KFC_TK_RP)
            return err_close(P, "')'", pos), -1;
        return next(P) ? -1 : e;
    }
    case KFC_TK_NAME:
        break;
    default:
        return err_near(P, KF_ERR_SYNTAX, "expected an expression"), -1;
    }
    int op = kfc_op_lookup(s, (size_t)len), cat = var_shorthand(s, len);
    const alias *a = find_alias(P, s, len);
    if (a) {
        if (next(P))
            return -1;
        if (P->x.tok == KFC_TK_LP)
            return kfc_diag_at(P->d, KF_ERR_SYNTAX, P->x.text, pos, P->x.src,
                               "'%.*s' is an alias, not an operation", (int)(len < 20 ? len : 20), s),
                   -1;
        return var_node(P, pos, a->iv);
    }
    int sg = op < 0 && cat < 0 ? sugar_lookup(s, len) : -1;
    if (sg >= 0 || op == KFC_OP_TENSORDOT) {
        if (next(P))
            return -1;
        if (P->x.tok != KFC_TK_LP)
            return err_paren_after(P, s, len), -1;
        return sg == SUGAR_KRON || op == KFC_OP_TENSORDOT ? parse_tensordot(P, pos, sg == SUGAR_KRON)
                                                          : parse_sugar(P, sg, pos);
    }
    if (op < 0 && cat < 0) {
        int known = 0;
        for (size_t u = 0; u < sizeof unsupported / sizeof *unsupported; u++)
            known |= name_is(s, len, unsupported[u]);
        return err_name(P, known), -1;
    }
    if (cat >= 0) {
        int64_t iv[3];
        if (parse_shorthand(P, cat, -1, iv))
            return -1;
        return var_node(P, pos, iv);
    }
    if (next(P))
        return -1;
    if (P->x.tok != KFC_TK_LP)
        return err_paren_after(P, s, len), -1;
    return parse_call(P, op, pos);
}

/* An exponent's values on the way stay below 2^53 in magnitude: every
 * integer there is exact in a double (and no larger literal rounds into
 * that range), so the folding below is Python's integer arithmetic and
 * (-1)**n keeps the parity of n. */
#define EXPONENT_MAX 9007199254740992.0

/* exponent := ('+' | '-') exponent | ebase ['**' exponent]
 * ebase    := NUMBER | '(' exponent ')'
 * A constant, folded as Python evaluates it: '**' to the right first, and
 * binding tighter than a sign on its left (2**3**2 is 2**9, -2**2 is -4,
 * (-2)**2 is 4). Returns 0 with *v set; 1 when the text is no constant of
 * that form, or a value on the way reaches 2^53 in magnitude or is no
 * number (nothing reported: the caller says what an exponent must be); -1
 * with an error set. */
static int exponent_value(parser *P, double *v)
{
    int r = 0;
    if (++P->depth > KFC_MAX_DEPTH)
        return err_near(P, KF_ERR_LIMIT, "formula nested too deeply (more than "
                                         KF_STR(KFC_MAX_DEPTH) " levels)"),
               -1;
    if (P->x.tok == KFC_TK_MINUS || P->x.tok == KFC_TK_PLUS) {
        int neg = P->x.tok == KFC_TK_MINUS;
        if (next(P))
            r = -1;
        else if ((r = exponent_value(P, v)) == 0 && neg)
            *v = -*v;
        P->depth--;
        return r;
    }
    if (P->x.tok == KFC_TK_LP) {
        if (next(P) || (r = exponent_value(P, v)) < 0)
            r = -1;
        else if (r == 0 && P->x.tok != KFC_TK_RP)
            r = 1;
        else if (r == 0 && next(P))
            r = -1;
    } else if (P->x.tok == KFC_TK_NUM) {
        r = number_value(P, v) || next(P) ? -1 : 0;
    } else {
        r = 1;
    }
    if (r == 0 && P->x.tok == KFC_TK_POW) {
        double e;
        if (next(P))
            r = -1;
        else if ((r = exponent_value(P, &e)) == 0)
            *v = pow(*v, e);
    }
    if (r == 0 && !(fabs(*v) < EXPONENT_MAX)) /* also NaN: (-8)**0.5, and 0**-1 is inf */
        r = 1;
    P->depth--;
    return r;
}

/* The exponent after '**': an integer (Square for 2, else Pow), or +-0.5
 * (Sqrt, Rsqrt), as KeOps' Python front end maps them. Returns the op and
 * sets *m; -1 with an error set. */
static int parse_exponent(parser *P, int64_t *m)
{
    int32_t at = P->x.start;
    double v = 0;
    int r = exponent_value(P, &v);
    if (r < 0)
        return -1;
    if (r == 0 && v == 0.5)
        return KFC_OP_SQRT;
    if (r == 0 && v == -0.5)
        return KFC_OP_RSQRT;
    if (r != 0 || v != floor(v) || fabs(v) > 1e9)
        return kfc_diag_at(P->d, KF_ERR_SYNTAX, P->x.text, at, P->x.src,
                           "integer exponent expected after '**' (use Powf(f,g) for a real "
                           "exponent)"),
               -1;
    *m = (int64_t)v;
    return *m == 2 ? KFC_OP_SQUARE : KFC_OP_POW;
}

/* power := atom ['**' exponent] */
static int32_t parse_power(parser *P)
{
    int32_t f = parse_atom(P);
    if (f < 0 || P->x.tok != KFC_TK_POW)
        return f;
    int32_t pos = P->x.start;
    int64_t m = 0;
    if (next(P))
        return -1;
    int op = parse_exponent(P, &m);
    if (op < 0)
        return -1;
    int32_t k = node(P, op, pos, f, -1, -1);
    if (k >= 0 && op == KFC_OP_POW)
        P->p->nodes[k].iv[0] = m;
    return k;
}

/* unary := ('-' | '+') unary | power   -- also where nesting depth is counted:
 * every recursion of the grammar passes through here. */
static int32_t parse_unary(parser *P)
{
    int32_t r;
    if (++P->depth > KFC_MAX_DEPTH)
        return err_near(P, KF_ERR_LIMIT, "formula nested too deeply (more than "
                                          KF_STR(KFC_MAX_DEPTH) " levels)"),
               -1;
    if (P->x.tok == KFC_TK_MINUS || P->x.tok == KFC_TK_PLUS) {
        int minus = P->x.tok == KFC_TK_MINUS;
        int32_t pos = P->x.start;
        if (next(P) || (r = parse_unary(P)) < 0)
            r = -1;
        else if (minus)
            r = node(P, KFC_OP_MINUS, pos, r, -1, -1);
    } else {
        r = parse_power(P);
    }
    P->depth--;
    return r;
}

/* A left-associative binary level: l (OP r)*, with OP/op pairs in toks/ops. */
static int32_t parse_binary(parser *P, int32_t (*sub)(parser *), const int *toks, const int *ops,
                            int n)
{
    int32_t l = sub(P);
    while (l >= 0) {
        int t = 0;
        while (t < n && P->x.tok != toks[t])
            t++;
        if (t == n)
            break;
        int32_t pos = P->x.start, r;
        if (next(P) || (r = sub(P)) < 0)
            return -1;
        l = node(P, ops[t], pos, l, r, -1);
    }
    return l;
}

/* mul := unary (('*' | '/') unary)* */
static int32_t parse_mul(parser *P)
{
    static const int toks[] = {KFC_TK_STAR, KFC_TK_SLASH};
    static const int ops[] = {KFC_OP_MULT, KFC_OP_DIVIDE};
    return parse_binary(P, parse_unary, toks, ops, 2);
}

/* add := mul (('+' | '-') mul)* */
static int32_t parse_add(parser *P)
{
    static const int toks[] = {KFC_TK_PLUS, KFC_TK_MINUS};
    static const int ops[] = {KFC_OP_ADD, KFC_OP_SUBTRACT};
    return parse_binary(P, parse_mul, toks, ops, 2);
}

/* bar := add ('|' add)* */
static int32_t parse_bar(parser *P)
{
    static const int toks[] = {KFC_TK_BAR};
    static const int ops[] = {KFC_OP_SCALPROD};
    return parse_binary(P, parse_add, toks, ops, 1);
}

static int is_cmp(int t)
{
    return t == KFC_TK_LT || t == KFC_TK_LE || t == KFC_TK_GT || t == KFC_TK_GE;
}

/* cmp := bar [('<' | '<=' | '>' | '>=') bar]   -- a > b is LessThan(b,a).
 * Python reads a < b < c as (a < b) and (b < c), which no KeOps formula
 * means (in keopscore every formula is true as a Python value, so `and`
 * gives b < c): refused rather than read another way. (a < b) < c is a
 * formula. */
static int32_t parse_cmp(parser *P)
{
    int32_t l = parse_bar(P);
    if (l < 0 || !is_cmp(P->x.tok))
        return l;
    int t = P->x.tok;
    int32_t pos = P->x.start, r;
    if (next(P) || (r = parse_bar(P)) < 0)
        return -1;
    if (is_cmp(P->x.tok))
        return err_near(P, KF_ERR_SYNTAX,
                        "comparisons do not chain (Python reads a < b < c as a < b and b < c); "
                        "write (a < b)*(b < c) for that, or add parentheses"),
               -1;
    int op = (t == KFC_TK_LT || t == KFC_TK_GT) ? KFC_OP_LESSTHAN : KFC_OP_LESSOREQUAL;
    int swap = t == KFC_TK_GT || t == KFC_TK_GE;
    return node(P, op, pos, swap ? r : l, swap ? l : r, -1);
}

/* ---------- top level ---------- */

static int check_length(kfc_diag *d, const char *text, int src, const char *what)
{
    if (strnlen(text, (size_t)KFC_MAX_FORMULA_LEN + 1) > KFC_MAX_FORMULA_LEN)
        return kfc_diag_at(d, KF_ERR_LIMIT, text, KFC_MAX_FORMULA_LEN, src,
                           "%s too long (more than %d bytes)", what, KFC_MAX_FORMULA_LEN);
    return KF_OK;
}

/* formula := cmp END */
static int parse_formula(parser *P, const char *text, int src, int32_t *root)
{
    if (check_length(P->d, text, src, "formula") || kfc_lex_init(&P->x, text, src, P->d))
        return P->d->status;
    P->depth = 0;
    int32_t r = parse_cmp(P);
    if (r < 0)
        return P->d->status;
    if (P->x.tok != KFC_TK_END)
        return err_near(P, KF_ERR_SYNTAX, "expected an operator or end of formula");
    *root = r;
    return KF_OK;
}

/* alias := NAME '=' ('Vi' | 'Vj' | 'Pm') '(' [INT ','] INT [','] ')'
 *        | NAME '=' 'Var' '(' INT ',' INT ',' INT [','] ')' */
static int parse_alias(parser *P, const char *text, int k)
{
    int src = 2 + k;
    if (check_length(P->d, text, src, "alias") || kfc_lex_init(&P->x, text, src, P->d))
        return P->d->status;
    if (P->x.tok != KFC_TK_NAME)
        return err_near(P, KF_ERR_SYNTAX, "expected an alias name as in 'x=Vi(0,3)'");
    alias *a = &P->al[k];
    a->name = text + P->x.start;
    a->len = P->x.len;
    char q[64];
    kfc_lex_quote(a->name, (size_t)a->len, q, sizeof q);
    if (kfc_op_lookup(a->name, (size_t)a->len) >= 0 || var_shorthand(a->name, a->len) >= 0)
        return kfc_diag_at(P->d, KF_ERR_SYNTAX, text, P->x.start, src,
                           "alias name %s is the name of an operation", q);
    for (int j = 0; j < k; j++)
        if (P->al[j].len == a->len && memcmp(P->al[j].name, a->name, (size_t)a->len) == 0)
            return kfc_diag_at(P->d, KF_ERR_SYNTAX, text, P->x.start, src,
                               "duplicate alias %s (already alias %d)", q, j);
    if (next(P))
        return P->d->status;
    if (P->x.tok != KFC_TK_EQ)
        return err_near(P, KF_ERR_SYNTAX, "expected '=' after the alias name");
    if (next(P))
        return P->d->status;
    int32_t pos = P->x.start;
    int cat = P->x.tok == KFC_TK_NAME ? var_shorthand(text + pos, P->x.len) : -1;
    if (cat >= 0) {
        if (parse_shorthand(P, cat, k, a->iv))
            return P->d->status;
    } else if (P->x.tok == KFC_TK_NAME && name_is(text + pos, P->x.len, "Var")) {
        if (next(P))
            return P->d->status;
        if (P->x.tok != KFC_TK_LP)
            return err_near(P, KF_ERR_SYNTAX, "expected '(' after 'Var'");
        /* parse_call appends the declaration node itself. */
        int32_t n = parse_call(P, KFC_OP_VAR, pos);
        if (n < 0)
            return P->d->status;
        memcpy(a->iv, P->p->nodes[n].iv, sizeof a->iv);
    } else {
        return err_near(P, KF_ERR_SYNTAX, "expected Vi(...), Vj(...), Pm(...) or Var(...) after '='");
    }
    if (P->x.tok != KFC_TK_END)
        return err_near(P, KF_ERR_SYNTAX, "expected end of alias");
    return cat >= 0 && var_node(P, pos, a->iv) < 0 ? P->d->status : KF_OK;
}

int kfc_parse(kfc_prog *p, const char *formula, const char *formula2, const char *const *aliases,
              int naliases, kfc_diag *d)
{
    kfc_diag_clear(d);
    if (!formula)
        return kfc_diag_set(d, KF_ERR_ARG, -1, -1, "formula is NULL");
    if (naliases < 0 || (naliases > 0 && !aliases))
        return kfc_diag_set(d, KF_ERR_ARG, -1, -1, "bad alias list (%d aliases)", naliases);
    if (naliases > MAX_ALIASES)
        return kfc_diag_set(d, KF_ERR_LIMIT, -1, -1, "too many aliases: %d (at most %d)", naliases,
                            MAX_ALIASES);
    for (int k = 0; k < naliases; k++)
        if (!aliases[k])
            return kfc_diag_set(d, KF_ERR_ARG, -1, -1, "alias %d is NULL", k);
    parser P = {.p = p, .d = d};
    P.cloc = newlocale(LC_ALL_MASK, "C", (locale_t)0);
    P.al = calloc((size_t)naliases + 1, sizeof *P.al);
    int st = KF_OK;
    if (!P.cloc || !P.al)
        st = kfc_diag_set(d, KF_ERR_NOMEM, -1, -1, "out of memory");
    for (int k = 0; !st && k < naliases; k++, P.nal = k)
        st = parse_alias(&P, aliases[k], k);
    if (!st)
        st = parse_formula(&P, formula, 0, &p->root);
    if (!st && formula2)
        st = parse_formula(&P, formula2, 1, &p->root2);
    if (P.cloc)
        freelocale(P.cloc);
    free(P.al);
    return st;
}
