/* diag.c -- diagnostics with positions: "L:C: message". */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "compiler/base/diag.h"

void kfc_diag_clear(kfc_diag *d)
{
    d->status = KF_OK;
    d->offset = -1;
    d->src = -1;
    d->msg[0] = 0;
}

static void diag_vset(kfc_diag *d, int status, int64_t offset, int src, const char *prefix,
                      const char *fmt, va_list ap)
{
    d->status = status;
    d->offset = offset;
    d->src = src;
    size_t n = (size_t)snprintf(d->msg, sizeof d->msg, "%s", prefix);
    if (n < sizeof d->msg)
        vsnprintf(d->msg + n, sizeof d->msg - n, fmt, ap);
}

int kfc_diag_set(kfc_diag *d, int status, int64_t offset, int src, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_vset(d, status, offset, src, "", fmt, ap);
    va_end(ap);
    return status;
}

void kfc_linecol(const char *text, int64_t offset, char *buf, size_t cap)
{
    /* Lines and columns are 1-based; the column counts bytes from the line start. */
    int64_t line = 1, col = 1;
    for (int64_t k = 0; text && k < offset && text[k]; k++) {
        if (text[k] == '\n')
            line++, col = 1;
        else
            col++;
    }
    snprintf(buf, cap, "%lld:%lld", (long long)line, (long long)col);
}

int kfc_diag_at(kfc_diag *d, int status, const char *text, int64_t offset, int src,
                const char *fmt, ...)
{
    char prefix[48];
    kfc_linecol(text, offset, prefix, sizeof prefix - 2);
    strcat(prefix, ": ");
    va_list ap;
    va_start(ap, fmt);
    diag_vset(d, status, offset, src, prefix, fmt, ap);
    va_end(ap);
    return status;
}
