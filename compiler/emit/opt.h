/*
 * opt.h -- what the optimizing tier's emitter (compiler/emit/emit_opt.c), its
 * reduction skeletons (compiler/emit/skel_opt.c) and its inline math
 * (kernels/vmath.c) share. docs/performance.md describes the generated code.
 *
 * The generated kernel vectorizes over OUTPUT ROWS: a block of KF_RB rows
 * (lanes) is transposed into structure-of-arrays tiles, and every visited
 * inner index t is folded into all lanes at once by a branch-free loop over
 * the lanes `kf_l`, which cc -O3 vectorizes. Each lane keeps its own row
 * state and sees the terms in the ABI's visiting order, so every reduction
 * rule (Sum blocks, first index on ties, first NaN, KMin order) holds per
 * row exactly as in the libtcc tier:
 *
 *   for each block of KF_RB rows [kf_rb, kf_rb + kf_nb):
 *       outer tiles xV[c][kf_l], O nodes oN[c][kf_l]       (per block)
 *       kfc_opt_begin     lane state, neutral values
 *       for q < nr: for j in [jr[2q], jr[2q+1]):
 *           inner pointers yV, J nodes jN[c]                (per term, scalar)
 *           KF_LANES (for kf_l < KF_RB, not unrolled):      (vectorized)
 *               I nodes tN[c]
 *               kfc_opt_term     fold the term into lane kf_l
 *           kfc_opt_after   uniform work: term count, Sum block flush
 *       kfc_opt_end       finalize lanes < kf_nb, write their rows
 *
 * Names the skeleton may rely on: KF_T, kf_i64, KF_RB, kf_rb, kf_nb, kf_l, j,
 * kf_out (KF_T *, valdim > 0), kf_idx (kf_i64 *, idxdim > 0); its own names
 * start with kf_s. Its lane arrays are [component][KF_RB].
 */
#ifndef KF_COMPILER_EMIT_OPT_H
#define KF_COMPILER_EMIT_OPT_H

#include "compiler/emit/skel.h"
#include "kernels/vmath.h"

/* Component loops up to this many iterations are unrolled in the source, so
 * that per-lane arrays become scalars and the lane loop stays loop-free. */
#define KFC_OPT_UNROLL 64

/* Like kfc_buf_each, with the optimizing tier's unrolling threshold. */
void kfc_opt_each(kfc_buf *b, const char *indent, int64_t n, const char *tmpl);

/* The constant arguments of the fused exp for c, as values of the dtype. */
typedef struct kfc_expns {
    int pow2;            /* |c| a power of two in [2^-16, 2^16]: kf_vexpns2 with l1, l2, q */
    int degree;          /* of the exp's polynomial: 6 (float), 11 (double) */
    double c, cl;        /* c and c log2(e) */
    int64_t sl;          /* double: the bits of 746/|c|, the clamp on s */
    double st;           /* float and pow2: KFK_EXPF_XMIN/c, the flush threshold on s */
    double l1, l2, q[12]; /* pow2: ln2's two parts over c; q[i] = the exp's coefficient of r^i
                            times c^i (q[0] unused), all exact */
} kfc_expns;
void kfc_exp_scaled_args(double c, kf_dtype dtype, kfc_expns *a);
/* Appends the call e^(s*c) of a's function (kf_vexpns or kf_vexpns2) on the
 * expression s, with its constants, to t. */
void kfc_expns_call(kfc_buf *t, const kfc_expns *a, kf_dtype dtype, const char *s);

/* Lane-state values per row the skeleton keeps (KF_T and kf_i64 slots), for
 * the emitter's choice of KF_RB under the stack budget. */
int64_t kfc_opt_state_values(const kfc_red *r);

/* The four pieces of the row-block loop (see above). f and g are component
 * templates of the term: an expression with '@' for the component index
 * (e.g. "t12[@]", "x0[@][kf_l]", "((KF_T)1.0)"); g is NULL when the
 * reduction has no formula2 (the constant 1). */
void kfc_opt_begin(kfc_buf *b, const kfc_red *r);
void kfc_opt_term(kfc_buf *b, const kfc_red *r, const char *f, const char *g);
void kfc_opt_after(kfc_buf *b, const kfc_red *r);
void kfc_opt_end(kfc_buf *b, const kfc_red *r);


#endif
