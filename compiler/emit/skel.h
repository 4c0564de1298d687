/*
 * skel.h -- what the C emitters (emit_c.c, emit_opt.c, emit_cuda.c) and the
 * reduction skeletons (skel_c.c, skel_opt.c, skel_common.c) share:
 * per-component expansion, the reduction families, and the three pieces of
 * the libtcc tier's reduction loop. docs/kernels.md describes the generated code.
 *
 * The emitter owns the function: its header, the variable pointers, the
 * formula nodes at their hoisting level and the loops over rows and ranges.
 * The skeleton owns the reduction state of one output row:
 *
 *   for (r = r0; r < r1; r++) {
 *       ...outer nodes...
 *       kfc_skel_row_begin     declare + initialize the row's state
 *       for (q) for (j) {
 *           ...inner nodes...
 *           kfc_skel_term      fold the term f (and g) at inner index j
 *       }
 *       kfc_skel_row_end       finalize, write out row r
 *   }
 *
 * Names the skeleton may rely on in the generated code: KF_T, kf_i64, the
 * prelude's KF_* macros, `r` (output row), `j` (inner index), `kf_out`
 * (KF_T *, only when valdim > 0) and `kf_idx` (kf_i64 *, only when idxdim >
 * 0), `kf_f`/`kf_g` (root copies of leaf roots). Its row state is named
 * `kf_s*`; its other temporaries (`kf_k`, `kf_t`, `kf_v`, `kf_w`, ...) live in
 * their own braces.
 */
#ifndef KF_COMPILER_EMIT_SKEL_H
#define KF_COMPILER_EMIT_SKEL_H

#include <stddef.h>

#include "compiler/base/buf.h"
#include "compiler/ir.h"

/* Float32 Sum block length (BLOCK scheme), counted across jr ranges. */
#define KFC_SUM_BLOCK 256

/* Writes into dst a C literal of the double v that reads back exactly
 * ("-0.0", "(1.0/0.0)" and "(0.0/0.0)" included): numbers only, never user
 * text. 40 bytes are always enough. */
void kfc_fmt_double(char *dst, size_t cap, double v);
/* Appends tmpl once per component c < n, each '@' replaced by c: unrolled
 * (one line each, after indent) for n <= unroll_max, a loop over `kf_k`
 * otherwise. Each tier has its own threshold (kfc_buf_each, kfc_opt_each). */
void kfc_buf_each_upto(kfc_buf *b, const char *indent, int64_t n, const char *tmpl, int64_t unroll_max);
/* The same with the template formatted first ('@' survives printf); a
 * template past 1023 bytes sets oom rather than emit a truncated line. */
void kfc_buf_eachf(kfc_buf *b, int64_t unroll_max, const char *indent, int64_t n, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* kfc_buf_each_upto with the libtcc tier's threshold: small, since libtcc
 * does not optimize and emits a loop's overhead verbatim. */
void kfc_buf_each(kfc_buf *b, const char *indent, int64_t n, const char *tmpl);

/* The FAMILY and VARIANT columns of reductions.def (kfc_fam, kfc_redvar in
 * compiler/ir.h), as the skeletons of every tier switch on them. */
kfc_fam kfc_red_family(int id);
kfc_redvar kfc_red_variant(int id);
/* VARIANT MAX: Max, ArgMax and Max_ArgMax (the others of KFC_FAM_MAXMIN minimize). */
int kfc_red_is_max(int id);

/* The row state's declaration and initial (neutral) value. */
void kfc_skel_row_begin(kfc_buf *b, const kfc_red *r);
/* Folds one term: f names a KF_T array of r->D values, g one of r->E values
 * (NULL when the reduction has no formula2: the constant 1). */
void kfc_skel_term(kfc_buf *b, const kfc_red *r, const char *f, const char *g);
/* Finalizes the row state and writes the complete output row r. */
void kfc_skel_row_end(kfc_buf *b, const kfc_red *r);

/* The split-j scheme (CUDA, docs/cuda.md): the state of one row after one
 * contiguous non-empty chunk of the inner range (a "partial"), and the merge
 * of the chunks' partials, in chunk order, into the row state of
 * kfc_skel_row_begin. skel_c.c's comment gives each family's partial.
 * A row's partial is nv values of vbytes bytes each (double, or KF_T: the
 * emitted type is kfc_skel_partial_type) and nx int64 (0: none). */
typedef struct kfc_partial {
    int64_t nv, nx;
    int vbytes;
} kfc_partial;
kfc_partial kfc_skel_partial(const kfc_red *r);
const char *kfc_skel_partial_type(const kfc_red *r);
/* After the chunk's terms (in place of kfc_skel_row_end): writes the state
 * into pv[0..nv) and px[0..nx) (names of pointers of the right types). */
void kfc_skel_partial_end(kfc_buf *b, const kfc_red *r, const char *pv, const char *px);
/* Between kfc_skel_row_begin and kfc_skel_row_end, once per chunk in chunk
 * order: merges the partial at pv/px (const pointers) into the row state. */
void kfc_skel_merge(kfc_buf *b, const kfc_red *r, const char *pv, const char *px);

#endif
