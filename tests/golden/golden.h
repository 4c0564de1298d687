/*
 * golden.h -- reads the golden files of tests/golden/ (t_parse.c, t_check.c).
 *
 * A file is a list of records separated by blank lines; '#' starts a comment
 * line. Each line of a record is "key: value", the value taken verbatim (one
 * space after the colon), so formulas keep their own blanks:
 *
 *     formula: Exp(-SqDist(x,y)/IntCst(2))
 *     alias: x=Vi(0,3)
 *     canonical: Exp(Divide(Minus(SqDist(Var(0,3,0),Var(1,3,1))),IntCst(2)))
 *
 * Keys: formula, formula2, alias (repeatable), canonical, canonical2 (canonical.txt);
 * status, source, message (errors.txt).
 */
#ifndef KF_TESTS_GOLDEN_H
#define KF_TESTS_GOLDEN_H

#include <string.h>

#define KFT_REC_MAX_ALIASES 8

typedef struct kft_rec {
    int line; /* first line of the record, for failure messages */
    const char *formula, *formula2, *canonical, *canonical2, *status, *source, *message;
    const char *aliases[KFT_REC_MAX_ALIASES];
    int naliases;
    int bad; /* an unknown key or too many aliases: the golden file itself is wrong */
} kft_rec;

/* Reads the next record from *cur (a file buffer, modified in place: lines are
 * NUL-terminated) and advances *cur; *lineno counts lines. Returns 0 at the end. */
static inline int kft_golden_next(char **cur, int *lineno, kft_rec *r)
{
    memset(r, 0, sizeof *r);
    char *s = *cur;
    while (*s) {
        char *e = strchr(s, '\n');
        if (e)
            *e = 0;
        char *next = e ? e + 1 : s + strlen(s);
        ++*lineno;
        if (!*s && r->line) { /* blank line ends a record */
            *cur = next;
            return 1;
        }
        if (*s && *s != '#') {
            char *colon = strstr(s, ": ");
            const char **slot = NULL;
            if (!r->line)
                r->line = *lineno;
            if (colon) {
                *colon = 0;
                static const char *const keys[] = {"formula", "formula2", "canonical", "canonical2",
                                                   "status", "source", "message"};
                const char **slots[] = {&r->formula, &r->formula2, &r->canonical, &r->canonical2,
                                        &r->status, &r->source, &r->message};
                for (int k = 0; k < 7; k++)
                    if (strcmp(s, keys[k]) == 0)
                        slot = slots[k];
                if (strcmp(s, "alias") == 0 && r->naliases < KFT_REC_MAX_ALIASES)
                    slot = &r->aliases[r->naliases++];
            }
            if (slot)
                *slot = colon + 2;
            else
                r->bad = 1;
        }
        s = next;
    }
    *cur = s;
    return r->line != 0;
}

#endif
