/*
 * print.c -- the canonical form of a formula, and the IR dump for --dump.
 *
 * Canonical form: function-call syntax only, no spaces, integers as written,
 * literals as the shortest decimal that reads back to the same double. It is
 * the cache key and what `kforge check` shows, so printing the canonical
 * form's own parse gives it back unchanged.
 *
 * The printer does not recurse (formulas may be chains thousands of nodes
 * deep): it first computes every subtree's printed length in index order,
 * which fixes where each child's text starts, then fills the buffer from a
 * work list.
 */
#define _GNU_SOURCE /* newlocale, uselocale: '.' whatever the C locale says */
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/ir.h"

/* Longer canonical forms are refused (NULL) rather than risk overflow. */
#define PRINT_MAX ((size_t)1 << 30)

/* Shortest %.Ng that reads back as v (the caller has set the C numeric locale). */
static int num_text(double v, char *buf, size_t cap)
{
    int n = 0;
    for (int prec = 1; prec <= 17; prec++) {
        n = snprintf(buf, cap, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return n;
}

/* Text of a leaf, or the "(ints)" tail of an op without its children. */
static int leaf_text(const kfc_node *n, char *buf, size_t cap)
{
    const long long iv[3] = {(long long)n->iv[0], (long long)n->iv[1], (long long)n->iv[2]};
    switch (n->op) {
    case KFC_OP_NUM:
        return num_text(n->val, buf, cap);
    case KFC_OP_VAR:
        return snprintf(buf, cap, "Var(%lld,%lld,%lld)", iv[0], iv[1], iv[2]);
    default:
        break;
    }
    const kfc_opinfo *oi = &kfc_op_info[n->op];
    int o = 0;
    if (n->op == KFC_OP_TENSORDOT) { /* ",[da],[db],[ca],[cb],[perm])": the lists, perm always */
        const kfc_tdot *t = &n->td;
        const int nk = t->na + t->nb - 2 * t->nc;
        for (int w = 0; w < 5; w++) {
            int len = w == 0 ? t->na : w == 1 ? t->nb : w < 4 ? t->nc : nk;
            o += snprintf(buf + o, cap - (size_t)o, ",[");
            for (int k = 0; k < len; k++) {
                long long v = w == 0 ? t->da[k] : w == 1 ? t->db[k] : w == 2 ? t->ca[k] : w == 3 ? t->cb[k] : t->perm[k];
                o += snprintf(buf + o, cap - (size_t)o, "%s%lld", k ? "," : "", v);
            }
            o += snprintf(buf + o, cap - (size_t)o, "]");
        }
        return o + snprintf(buf + o, cap - (size_t)o, ")");
    }
    if (oi->nargs == 0) /* IntCst, RatCst, Zero: ints are the whole argument list */
        o = snprintf(buf, cap, "%s(%lld", oi->name, iv[0]);
    for (int i = oi->nargs == 0 ? 1 : 0; i < oi->nints; i++)
        o += snprintf(buf + o, cap - (size_t)o, ",%lld", iv[i]);
    o += snprintf(buf + o, cap - (size_t)o, ")");
    return o;
}

typedef struct item {
    int32_t node;
    size_t at;
} item;

char *kfc_print(const kfc_prog *p, int32_t root)
{
    if (root < 0 || root >= p->nnodes)
        return NULL;
    locale_t cl = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0);
    if (!cl)
        return NULL;
    locale_t old = uselocale(cl);
    size_t *len = malloc((size_t)(root + 1) * sizeof *len), cap = 64, top = 0;
    item *st = malloc(cap * sizeof *st);
    char *out = NULL, tail[640]; /* TensorDot's lists: under 400 bytes */
    if (!len || !st)
        goto done;
    for (int32_t k = 0; k <= root; k++) {
        const kfc_node *n = &p->nodes[k];
        size_t l = (size_t)leaf_text(n, tail, sizeof tail);
        int nargs = kfc_op_info[n->op].nargs;
        if (nargs > 0)
            l += strlen(kfc_op_info[n->op].name) + 1 + (size_t)(nargs - 1);
        for (int c = 0; c < nargs; c++)
            l = len[n->a[c]] > PRINT_MAX || l + len[n->a[c]] > PRINT_MAX ? PRINT_MAX + 1 : l + len[n->a[c]];
        len[k] = l;
    }
    if (len[root] > PRINT_MAX || !(out = malloc(len[root] + 1)))
        goto done;
    out[len[root]] = 0;
    st[top++] = (item){root, 0};
    while (top > 0) {
        item it = st[--top];
        const kfc_node *n = &p->nodes[it.node];
        const kfc_opinfo *oi = &kfc_op_info[n->op];
        size_t tl = (size_t)leaf_text(n, tail, sizeof tail), at = it.at;
        if (oi->nargs == 0) {
            memcpy(out + at, tail, tl);
            continue;
        }
        size_t nl = strlen(oi->name);
        memcpy(out + at, oi->name, nl);
        out[at + nl] = '(';
        at += nl + 1;
        if (top + 3 > cap) {
            item *s2 = realloc(st, 2 * cap * sizeof *st);
            if (!s2) {
                free(out);
                out = NULL;
                goto done;
            }
            st = s2, cap *= 2;
        }
        for (int c = 0; c < oi->nargs; c++) {
            if (c > 0)
                out[at++] = ',';
            st[top++] = (item){n->a[c], at};
            at += len[n->a[c]];
        }
        memcpy(out + at, tail, tl); /* the ",ints)" tail */
    }
done:
    uselocale(old);
    freelocale(cl);
    free(len);
    free(st);
    return out;
}

/* Appends printf text to a growing buffer; *ok drops to 0 on out of memory. */
__attribute__((format(printf, 5, 6))) static void append(char **buf, size_t *n, size_t *cap, int *ok,
                                                        const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int l = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (!*ok || l < 0)
        return;
    if ((size_t)l >= sizeof line)
        l = sizeof line - 1;
    if (*n + (size_t)l + 1 > *cap) {
        size_t c2 = (*cap ? *cap : 256) * 2;
        while (c2 < *n + (size_t)l + 1)
            c2 *= 2;
        char *b = realloc(*buf, c2);
        if (!b) {
            *ok = 0;
            return;
        }
        *buf = b, *cap = c2;
    }
    memcpy(*buf + *n, line, (size_t)l + 1);
    *n += (size_t)l;
}

char *kfc_dump(const kfc_prog *p)
{
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int ok = 1;
    append(&buf, &n, &cap, &ok, "nodes=%d root=%d root2=%d nvars=%d\n", (int)p->nnodes, (int)p->root,
           (int)p->root2, p->nvars);
    for (int32_t k = 0; k < p->nnodes; k++) {
        const kfc_node *x = &p->nodes[k];
        const kfc_opinfo *oi = &kfc_op_info[x->op];
        append(&buf, &n, &cap, &ok, "%5d %-14s dim=%d", (int)k, oi->name, (int)x->dim);
        for (int c = 0; c < oi->nargs; c++)
            append(&buf, &n, &cap, &ok, "%s%d", c ? "," : " args=", (int)x->a[c]);
        for (int i = 0; i < oi->nints; i++)
            append(&buf, &n, &cap, &ok, "%s%lld", i ? "," : " ints=", (long long)x->iv[i]);
        if (x->op == KFC_OP_NUM || x->op == KFC_OP_INTCST || x->op == KFC_OP_RATCST)
            append(&buf, &n, &cap, &ok, " val=%.17g", x->val);
        append(&buf, &n, &cap, &ok, " at=%d:%d\n", (int)x->src, (int)x->pos);
    }
    if (!ok) {
        free(buf);
        return NULL;
    }
    return buf;
}
