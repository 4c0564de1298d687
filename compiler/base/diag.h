/* diag.h -- the diagnostic every pass and the runtime's internal layers report errors with. */
#ifndef KF_COMPILER_BASE_DIAG_H
#define KF_COMPILER_BASE_DIAG_H

#include <stddef.h>
#include <stdint.h>

#include "kforge.h" /* kf_status */

/* A diagnostic: status, message, and where. The message text is complete,
 * e.g. "1:17: expected ')' to close '(' at 1:4, near 'Var'". */
typedef struct kfc_diag {
    int status;     /* kf_status */
    int64_t offset; /* byte offset, or -1 */
    int src;        /* -1 none, 0 formula, 1 formula2, 2+k alias k */
    char msg[512];
} kfc_diag;

void kfc_diag_clear(kfc_diag *d);
/* Sets status, offset and a printf-formatted message; returns status. The
 * "L:C: " prefix is NOT added here: callers that know the text add it with
 * kfc_diag_at. */
int kfc_diag_set(kfc_diag *d, int status, int64_t offset, int src, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Writes "L:C" (1-based line and byte column of offset in text) into buf. */
void kfc_linecol(const char *text, int64_t offset, char *buf, size_t cap);
/* Like kfc_diag_set but prefixes "L:C: " computed from text and offset
 * (1-based line and column, column counted in bytes). */
int kfc_diag_at(kfc_diag *d, int status, const char *text, int64_t offset, int src,
                const char *fmt, ...) __attribute__((format(printf, 6, 7)));

#endif
