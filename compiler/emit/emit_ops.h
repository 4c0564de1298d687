/*
 * emit_ops.h -- the code generation of formula nodes that both C emitters
 * share: compiler/emit/emit_c.c (libtcc tier) and compiler/emit/emit_opt.c (optimizing
 * tier). Each op's C is written once, in emit_ops.c; a tier supplies where a
 * node's components live (names, levels), how component loops are written
 * (unrolling threshold) and its indentation, and picks the variants where the
 * tiers really differ (Pow by multiplications, branch-free selects).
 */
#ifndef KF_COMPILER_EMIT_OPS_H
#define KF_COMPILER_EMIT_OPS_H

#include "compiler/emit/skel.h"
#include "compiler/ir.h"

#define KFC_CAP 160 /* room for one component expression */

typedef struct kfc_opgen kfc_opgen;

/* Writes into dst the C text of component k (an index expression, possibly
 * "@" for the per-component template) of node n. */
typedef void (*kfc_comp_fn)(const kfc_opgen *g, int32_t n, const char *k, char *dst, size_t cap);

struct kfc_opgen {
    const kfc_prog *p;
    kfc_buf *b;                /* where the statements go */
    const void *ctx;           /* the tier's emitter, for comp and dst */
    kfc_comp_fn comp;          /* an operand's component (dim-1 nodes broadcast) */
    kfc_comp_fn dst;           /* an assigned component of a non-leaf node */
    /* Appends tmpl once per component ('@' the index): kfc_buf_each or kfc_opt_each. */
    void (*each)(kfc_buf *b, const char *indent, int64_t n, const char *tmpl);
    const char *const *indent; /* indentation per level */
    int powi_max;              /* Pow up to this |m| by kf_powi; 0: none (x, x*x, else pow) */
    int selects;               /* Max/ArgMax over components as selects (vectorizable) */
    int64_t split_max;         /* sums over 8 to split_max components in 4 partial sums; 0: one */
};

static inline int kfc_is_leaf(const kfc_node *x)
{
    return kfc_op_info[x->op].nargs == 0;
}

/* The literal of a constant leaf (IntCst, RatCst, Num, Zero) into dst;
 * returns 0 (dst untouched) for every other node. */
int kfc_opgen_literal(const kfc_node *x, char *dst, size_t cap);

/* Appends, once per component of n (unrolled or looped, see g->each), the
 * statement built from fmt where the operands' components use index "@". */
void kfc_opgen_stmt(const kfc_opgen *g, int lv, int64_t n, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* The code computing non-leaf node n at level lv (its array is declared by
 * the tier): an element-wise template, or the op's code of its own. */
void kfc_opgen_node(const kfc_opgen *g, int32_t n, int lv);

/* The kernel entry's definition (kernels/abi.h) up to its opening brace, and
 * the head of the loops over the inner ranges jr in the ABI's visiting order
 * (both loops left open), as every tier writes them. */
#define KFC_REDUCE_HEAD                                                                  \
    "void kf_reduce(const void *const *args, kf_i64 r0, kf_i64 r1, const kf_i64 *jr,\n" \
    "               kf_i64 nr, void *out, kf_i64 *idx)\n{\n"
#define KFC_RANGES_HEAD                               \
    "        for (kf_i64 q = 0; q < nr; q++) {\n"     \
    "            for (kf_i64 j = jr[2 * q]; j < jr[2 * q + 1]; j++) {\n"

/* Allocates *lvl, one byte per node: 0 for the nodes reachable from root
 * and root2 (root2 < 0: none), -1 for the others (the tiers then store their
 * levels there). Returns KF_OK, or KF_ERR_INTERNAL / KF_ERR_NOMEM with d set. */
int kfc_opgen_reach(const kfc_prog *p, int32_t root, int32_t root2, int8_t **lvl, kfc_diag *d);

/* Level bits of a node: which per-pair inputs it depends on. 0: parameters
 * and constants only (computed once per call); KFC_LV_OUTER: the output row's
 * variables; KFC_LV_INNER: the reduced index's. A node has the OR of its
 * children's bits. */
enum { KFC_LV_OUTER = 1, KFC_LV_INNER = 2 };
/* kfc_opgen_reach, then the level bits of every reachable node into *lvl
 * (-1 stays for the others) and, for each variable index v a reachable node
 * uses, vdim[v] (its dim; 0 for unused indices: callers zero the array) and
 * vlv[v] (its bits: 0, KFC_LV_OUTER or KFC_LV_INNER, from kfc_role and axis). */
int kfc_opgen_levels(const kfc_prog *p, int32_t root, int32_t root2, int axis, int8_t **lvl,
                     int32_t *vdim, int8_t *vlv, kfc_diag *d);

/* The name of a KF_T array holding root's values into dst: "nR" for a
 * computed node, else `name`, a copy of the leaf made (declared and filled)
 * when lv is the leaf's level lvl[root]. */
void kfc_opgen_root_array(const kfc_opgen *g, const int8_t *lvl, int32_t root, int lv,
                          const char *name, char *dst, size_t cap);

/* The naming the libtcc and CUDA tiers share: variable v's components are
 * vV[k], node n's nN[k]; dim-1 operands broadcast (index 0), constants are
 * literals. kfc_opgen_comp_vn reads an operand; kfc_opgen_dst_vn names an
 * assigned component of a non-leaf node. */
void kfc_opgen_comp_vn(const kfc_opgen *g, int32_t n, const char *k, char *dst, size_t cap);
void kfc_opgen_dst_vn(const kfc_opgen *g, int32_t n, const char *k, char *dst, size_t cap);

/* The end of an emitter: frees lvl; returns the source in b, or NULL (b
 * freed) when !ok (d already set) or when b ran out of memory (d set). */
char *kfc_opgen_finish(kfc_buf *b, int8_t *lvl, int ok, kfc_diag *d);

/* Exp node n computes e^(s*c) with node s >= 0, -0 or NaN in every component
 * and c a negative constant of dtype, exactly as the unfused nodes would
 * round it (compiler/emit/exp_fuse.c): 1 with *s and *c set, else 0. */
int kfc_exp_scaled(const kfc_prog *p, int32_t n, kf_dtype dtype, int32_t *s, double *c);
/* Its constant arguments and call text: kfc_expns in compiler/emit/opt.h. */

/* The prelude's helper functions and their KF_* macros (after KF_HELPER and
 * the libm macros): branches for libtcc, or selects (vectorizable) plus
 * kf_powi for the optimizing tier; same NaN and zero rules either way. */
void kfc_opgen_helpers(kfc_buf *b, int opt);

/* The libm functions of ops.def's MATH column, for the preludes. Prototypes
 * (libtcc tier): "double exp(double); ..." for double, then for float, four
 * a line, in PROTO order. Macros: "#define KF_EXP(x) ..." in op order, one per
 * MATH row, for a tier: */
enum kfc_math_tier {
    KFC_MATH_TCC,  /* the libm function, FN or FN##f (kernels/libm_syms.c binds them) */
    KFC_MATH_OPT,  /* OPT when given, else __builtin_FN[f] */
    KFC_MATH_CUDA  /* the CUDA device function, CUDA[f] */
};
void kfc_opgen_libm_protos(kfc_buf *b);
void kfc_opgen_libm_macros(kfc_buf *b, kf_dtype dtype, enum kfc_math_tier tier);

#endif
