/* lex.c -- splits formula and alias text into tokens with byte offsets. */
#include <stdio.h>
#include <string.h>

#include "compiler/lex.h"

/* Token text in messages is capped so a hostile formula cannot flood them. */
#define NEAR_MAX 20

static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_name0(int c) { return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'; }
static int is_blank(int c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

void kfc_lex_quote(const char *s, size_t n, char *buf, size_t cap)
{
    size_t o = 0, k;
    if (cap < 8) { /* room for at least "''" and a NUL */
        if (cap)
            buf[0] = 0;
        return;
    }
    buf[o++] = '\'';
    for (k = 0; k < n && k < NEAR_MAX && o + 8 < cap; k++) {
        unsigned char c = (unsigned char)s[k];
        if (c >= 0x20 && c < 0x7f && c != '\\')
            buf[o++] = (char)c;
        else
            o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", c);
    }
    if (k < n && o + 5 < cap) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '\'';
    buf[o] = 0;
}

void kfc_lex_near(const kfc_lex *x, char *buf, size_t cap)
{
    if (x->tok == KFC_TK_END)
        snprintf(buf, cap, "%s", x->src >= 2 ? "end of alias" : "end of formula");
    else
        kfc_lex_quote(x->text + x->start, (size_t)x->len, buf, cap);
}

/* A byte that can start no token: say which, escaped, at its column. */
static int bad_byte(kfc_lex *x, int32_t at)
{
    unsigned char c = (unsigned char)x->text[at];
    if (c >= 0x80)
        return kfc_diag_at(x->d, KF_ERR_SYNTAX, x->text, at, x->src,
                           "unexpected byte '\\x%02x' (formulas are plain ASCII)", c);
    if (c < 0x20 || c == 0x7f)
        return kfc_diag_at(x->d, KF_ERR_SYNTAX, x->text, at, x->src,
                           "unexpected control byte '\\x%02x'", c);
    return kfc_diag_at(x->d, KF_ERR_SYNTAX, x->text, at, x->src, "unexpected character '%c'", c);
}

/* NUM := (digits ['.' digits*] | '.' digits) [('e'|'E') ['+'|'-'] digits] */
static int32_t lex_number(const char *s, int32_t i)
{
    while (is_digit(s[i]))
        i++;
    if (s[i] == '.') {
        i++;
        while (is_digit(s[i]))
            i++;
    }
    if (s[i] == 'e' || s[i] == 'E') {
        int32_t j = i + 1;
        if (s[j] == '+' || s[j] == '-')
            j++;
        if (is_digit(s[j])) {
            while (is_digit(s[j]))
                j++;
            i = j;
        }
    }
    return i;
}

int kfc_lex_next(kfc_lex *x)
{
    const char *s = x->text;
    int32_t i = x->next;
    while (is_blank(s[i]))
        i++;
    x->start = i;
    int c = (unsigned char)s[i];
    int tok, n = 1;
    if (c == 0) {
        tok = KFC_TK_END, n = 0;
    } else if (is_name0(c)) {
        int32_t j = i + 1;
        while (is_name0(s[j]) || is_digit(s[j]))
            j++;
        tok = KFC_TK_NAME, n = j - i;
    } else if (is_digit(c) || (c == '.' && is_digit(s[i + 1]))) {
        tok = KFC_TK_NUM, n = lex_number(s, i) - i;
    } else {
        switch (c) {
        case '(': tok = KFC_TK_LP; break;
        case ')': tok = KFC_TK_RP; break;
        case ',': tok = KFC_TK_COMMA; break;
        case '+': tok = KFC_TK_PLUS; break;
        case '-': tok = KFC_TK_MINUS; break;
        case '/': tok = KFC_TK_SLASH; break;
        case '|': tok = KFC_TK_BAR; break;
        case '=': tok = KFC_TK_EQ; break;
        case '[': tok = KFC_TK_LB; break;
        case ']': tok = KFC_TK_RB; break;
        case '*':
            tok = s[i + 1] == '*' ? (n = 2, KFC_TK_POW) : KFC_TK_STAR;
            break;
        case '<':
            tok = s[i + 1] == '=' ? (n = 2, KFC_TK_LE) : KFC_TK_LT;
            break;
        case '>':
            tok = s[i + 1] == '=' ? (n = 2, KFC_TK_GE) : KFC_TK_GT;
            break;
        default:
            x->tok = KFC_TK_END, x->len = 0;
            return bad_byte(x, i);
        }
    }
    x->tok = tok;
    x->len = n;
    x->next = i + n;
    return KF_OK;
}

int kfc_lex_init(kfc_lex *x, const char *text, int src, kfc_diag *d)
{
    x->text = text;
    x->src = src;
    x->d = d;
    x->next = 0;
    return kfc_lex_next(x);
}
