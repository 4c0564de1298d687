/*
 * lex.h -- the formula tokenizer, shared by the formula and alias parsers (parse.c).
 *
 * One token of lookahead; every token keeps its byte offset so diagnostics can
 * say "L:C: ... near 'TOKEN'". Only printable ASCII and blanks are accepted:
 * anything else is a syntax error at its column, never a token.
 */
#ifndef KF_COMPILER_LEX_H
#define KF_COMPILER_LEX_H

#include <stddef.h>
#include <stdint.h>

#include "compiler/ir.h"

typedef enum kfc_tok {
    KFC_TK_END,   /* end of the string */
    KFC_TK_NAME,  /* [A-Za-z_][A-Za-z0-9_]* */
    KFC_TK_NUM,   /* digits, optional fraction and exponent: 2, 0.5, .5, 1e-3 */
    KFC_TK_LP,    /* ( */
    KFC_TK_RP,    /* ) */
    KFC_TK_COMMA, /* , */
    KFC_TK_PLUS,  /* + */
    KFC_TK_MINUS, /* - */
    KFC_TK_STAR,  /* * */
    KFC_TK_SLASH, /* / */
    KFC_TK_POW,   /* ** */
    KFC_TK_BAR,   /* | */
    KFC_TK_LT,    /* < */
    KFC_TK_LE,    /* <= */
    KFC_TK_GT,    /* > */
    KFC_TK_GE,    /* >= */
    KFC_TK_EQ,    /* = (aliases only) */
    KFC_TK_LB,    /* [ (TensorDot's and Kron's integer lists) */
    KFC_TK_RB     /* ] */
} kfc_tok;

typedef struct kfc_lex {
    const char *text; /* NUL-terminated, at most KFC_MAX_FORMULA_LEN bytes (caller checks) */
    int src;          /* kfc_node.src of this string: 0 formula, 1 formula2, 2+k alias k */
    kfc_diag *d;
    int32_t next;     /* offset of the first byte not yet tokenized */
    int tok;          /* current token (kfc_tok) */
    int32_t start;    /* its byte offset */
    int32_t len;      /* its length in bytes */
} kfc_lex;

/* Starts on text and reads the first token. Returns KF_OK or KF_ERR_SYNTAX (d set). */
int kfc_lex_init(kfc_lex *x, const char *text, int src, kfc_diag *d);
/* Advances to the next token. Returns KF_OK or KF_ERR_SYNTAX (d set). */
int kfc_lex_next(kfc_lex *x);
/* Writes "'TOKEN'" (truncated, non-printable bytes as \xNN) or "end of formula"
 * / "end of alias" for the current token into buf. */
void kfc_lex_near(const kfc_lex *x, char *buf, size_t cap);
/* Quotes n bytes of s the same way ('...' with \xNN escapes, truncated). */
void kfc_lex_quote(const char *s, size_t n, char *buf, size_t cap);

#endif /* KF_COMPILER_LEX_H */
