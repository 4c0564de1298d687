/*
 * opt.h -- what the optimizing tier's emitter (compiler/emit_opt.c), its
 * reduction skeletons (kernels/skel_opt.c) and its inline math
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
 *       kfk_opt_begin     lane state, neutral values
 *       for q < nr: for j in [jr[2q], jr[2q+1]):
 *           inner pointers yV, J nodes jN[c]                (per term, scalar)
 *           KF_LANES (for kf_l < KF_RB, not unrolled):      (vectorized)
 *               I nodes tN[c]
 *               kfk_opt_term     fold the term into lane kf_l
 *           kfk_opt_after   uniform work: term count, Sum block flush
 *       kfk_opt_end       finalize lanes < kf_nb, write their rows
 *
 * Names the skeleton may rely on: KF_T, kf_i64, KF_RB, kf_rb, kf_nb, kf_l, j,
 * kf_out (KF_T *, valdim > 0), kf_idx (kf_i64 *, idxdim > 0); its own names
 * start with kf_s. Its lane arrays are [component][KF_RB].
 */
#ifndef KF_KERNELS_OPT_H
#define KF_KERNELS_OPT_H

#include "kernels.h"

/* Component loops up to this many iterations are unrolled in the source, so
 * that per-lane arrays become scalars and the lane loop stays loop-free. */
#define KFK_OPT_UNROLL 64

/* Like kfk_buf_each, with the optimizing tier's unrolling threshold. */
void kfk_opt_each(kfk_buf *b, const char *indent, int64_t n, const char *tmpl);

/* Lane-state values per row the skeleton keeps (KF_T and kf_i64 slots), for
 * the emitter's choice of KF_RB under the stack budget. */
int64_t kfk_opt_state_values(const kfc_red *r);

/* The four pieces of the row-block loop (see above). f and g are component
 * templates of the term: an expression with '@' for the component index
 * (e.g. "t12[@]", "x0[@][kf_l]", "((KF_T)1.0)"); g is NULL when the
 * reduction has no formula2 (the constant 1). */
void kfk_opt_begin(kfk_buf *b, const kfc_red *r);
void kfk_opt_term(kfk_buf *b, const kfc_red *r, const char *f, const char *g);
void kfk_opt_after(kfk_buf *b, const kfc_red *r);
void kfk_opt_end(kfk_buf *b, const kfc_red *r);

/* C text of the inline math for dtype: static inline kf_vexp / kf_vlog
 * (float or double per KF_T) with their accuracy in comments, no libm,
 * no errno, no branches (so they vectorize); for float also kf_vexpns and
 * kf_vexpns2 (e^(s*c), compiler/exp_fuse.c). */
const char *kfk_vmath_source(kf_dtype dtype);

/* The float exp's constants (kernels/vmath.c), as numbers here so that the
 * emitter can scale them for kf_vexpns2: e^r = 1 + r + C2 r^2 + ... + C6 r^6
 * on |r| <= ln2/2 (our Remez fit, relative error 3e-9), and ln2 = LN2_HI +
 * LN2_LO with LN2_HI the float nearest ln2. Each is a float exactly. */
#define KFK_EXPF_C2 4.999999403953552e-1
#define KFK_EXPF_C3 1.666652113199234e-1
#define KFK_EXPF_C4 4.166838899254799e-2
#define KFK_EXPF_C5 8.368710055947304e-3
#define KFK_EXPF_C6 1.381461275741458e-3
#define KFK_EXPF_LN2_HI 0.693147182464599609375
#define KFK_EXPF_LN2_LO -1.904654323148236e-09
/* The double exp's: e^r = 1 + r + D2 r^2 + ... + D11 r^11 (our Remez fit,
 * relative error 3.6e-18), ln2 = LN2_HI + LN2_LO (fdlibm's split: k LN2_HI
 * is exact for |k| < 2^20). */
#define KFK_EXP_D2 0.5000000000000011
#define KFK_EXP_D3 0.16666666666666413
#define KFK_EXP_D4 0.041666666666530267
#define KFK_EXP_D5 0.008333333333494338
#define KFK_EXP_D6 0.0013888888943597566
#define KFK_EXP_D7 0.00019841269506764927
#define KFK_EXP_D8 2.48014931363218e-05
#define KFK_EXP_D9 2.755758628105193e-06
#define KFK_EXP_D10 2.7630233871620454e-07
#define KFK_EXP_D11 2.5000067274192672e-08
#define KFK_EXP_LN2_HI 6.93147180369123816490e-01
#define KFK_EXP_LN2_LO 1.90821492927058770002e-10

#endif
