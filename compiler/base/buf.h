/* buf.h -- the growable string every emitter, the printer's callers and the cache's key builder write into. */
#ifndef KF_COMPILER_BASE_BUF_H
#define KF_COMPILER_BASE_BUF_H

#include <stddef.h>

/* A growable NUL-terminated string. After an allocation failure `oom` is set
 * and every later append is a no-op, so emitters check once at the end. */
typedef struct kfc_buf {
    char *s;
    size_t len, cap;
    int oom;
} kfc_buf;

/* Appends printf-formatted text. */
void kfc_buf_printf(kfc_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
