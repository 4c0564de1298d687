/*
 * ir.h -- the compiler's internal representation, shared by every pass.
 *
 *   formula, formula2, aliases
 *        |  kfc_parse      (parse.c)     text -> nodes, byte offsets kept
 *        v
 *   kfc_prog (nodes)
 *        |  kfc_check      (check.c)     dims, categories, arity, var table;
 *        |                 (autodiff.c)  then derivatives expanded (kfc_autodiff)
 *        |  kfc_simplify   (simplify.c)  constant folding, CSE, compaction
 *        |  kfc_print      (print.c)     canonical form (also the cache key)
 *        |  kfc_red_setup  (reduce.c)    reduction spec, output dims
 *        v
 *   kfc_emit_c         (emit_c.c + kernels/)  C source of the kernel
 *   kfk_ref_run        (kernels/ref_eval.c)   the oracle, straight from nodes
 *
 * The AST is an array of nodes (STYLE.md point 5): children are int32 indices
 * into p->nodes, and ALWAYS smaller than the parent's index, so evaluating
 * nodes in index order is a valid topological order. Every pass keeps that.
 */
#ifndef KF_COMPILER_IR_H
#define KF_COMPILER_IR_H

#include <stddef.h>
#include <stdint.h>

#include "compiler/base/diag.h"
#include "kforge.h"

/* Limits: untrusted formulas must not exhaust memory, stack or time. */
#define KFC_MAX_FORMULA_LEN 65536 /* bytes of formula text */
#define KFC_MAX_DEPTH 256         /* parser nesting depth */
#define KFC_MAX_NODES 16384       /* nodes in one program */
#define KFC_MAX_VARS 256          /* variable indices are 0..KFC_MAX_VARS-1 */
#define KFC_MAX_DIM 65536         /* dim of any node */
#define KFC_MAX_TOTAL_DIM 65536   /* sum of the dims of all nodes (per-pair scratch) */
#define KFC_MAX_K 4096            /* K of KMin-like reductions */
#define KFC_MAX_ALIASES 256
#define KFC_BSPLINE_MAX_ORDER 64  /* order of BSpline (its per-spline triangle) */
#define KFC_SOFTDTW_MAX_CELLS 4096 /* n*m of (Grad)SoftDTW_SqDist: its DP table, per pair */

/* Op ids, generated from ops.def. KFC_OP_COUNT is no kfc_op, so a switch
 * over a kfc_op without `default:` lists exactly the ops (-Wswitch names a
 * missing one). */
typedef enum kfc_op {
#define X(id, ...) KFC_OP_##id,
#include "compiler/ops.def"
#undef X
} kfc_op;
enum {
    KFC_OP_COUNT = 0
#define X(id, ...) +1
#include "compiler/ops.def"
#undef X
};

/* Dim rules of ops.def. */
typedef enum kfc_dimrule {
    KFC_DR_LEAF,
    KFC_DR_SAME,
    KFC_DR_BCAST,
    KFC_DR_RED,
    KFC_DR_RED2,
    KFC_DR_CBCAST, /* complex element-wise: even dims, each the largest or 2 */
    KFC_DR_CHALF,  /* complex (dim 2k) -> one real per complex component (dim k) */
    KFC_DR_CTWICE, /* real (dim k) -> one complex per component (dim 2k) */
    KFC_DR_SPECIAL,
    KFC_DR_DERIV   /* a derivative operator: check.c's case, then autodiff.c expands it */
} kfc_dimrule;

/* One row of ops.def, as data (kfc_op_info[op]). Defined in ops.c. The FOLD
 * column is code, not data: simplify.c expands it. */
typedef struct kfc_opinfo {
    const char *name;  /* KeOps name */
    int nargs;         /* formula arguments */
    int nints;         /* trailing integer arguments */
    kfc_dimrule rule;
    const char *cexpr; /* element-wise C template or NULL */
    const char *libm;  /* MATH: the double libm function (float: + "f"), or NULL */
    int libm_proto;    /* MATH: its place in the libtcc prelude's prototypes (1..), or 0 */
    const char *libm_opt;  /* MATH: the optimizing tier's function, or NULL: __builtin_ */
    const char *libm_cuda; /* MATH: the CUDA device function (float: + "f"), or NULL */
    const char *deriv; /* DERIV: the derivative rules ("R1;R2"), "*" (autodiff.c's case), or NULL */
    const char *doc;
} kfc_opinfo;
extern const kfc_opinfo kfc_op_info[KFC_OP_COUNT];
/* Op of a KeOps name, or -1. */
int kfc_op_lookup(const char *name, size_t len);

/* Variable categories (KeOps' cat of Var(index,dim,cat)). */
enum { KFC_CAT_I = 0, KFC_CAT_J = 1, KFC_CAT_P = 2 };

/* TensorDot's integer lists (KeOps' dimsfa, dimsfb, contfa, contfb, permute),
 * kept in the node so that every pass copying nodes carries them. Axes of a
 * are 0..na-1, row-major (the last varies fastest); pair t contracts a's axis
 * ca[t] with b's axis cb[t]. The kept axes, a's in order then b's, are
 * numbered 0..na+nb-2nc-1; perm[k] is the output position of kept axis k.
 * All zero in every other node (memset by kfc_node_new), so comparing nodes
 * byte-wise stays right. */
#define KFC_TD_AXES 8
typedef struct kfc_tdot {
    uint8_t na, nb, nc;
    uint8_t ca[KFC_TD_AXES], cb[KFC_TD_AXES];
    uint8_t perm[2 * KFC_TD_AXES];
    int32_t da[KFC_TD_AXES], db[KFC_TD_AXES];
} kfc_tdot;

/* What TensorDot's lists imply (tdot.c). Kept axis k is, for k < nka, axis
 * kax[k] of a, else axis kax[k] of b; loops run over the kept axes in order,
 * then over the pairs, so every tier and the reference sum in one order. */
typedef struct kfc_tdot_shape {
    int nk, nka;                        /* kept axes; those of a */
    int kax[2 * KFC_TD_AXES];
    int32_t kdim[2 * KFC_TD_AXES];      /* dim of kept axis k */
    int64_t ostride[2 * KFC_TD_AXES];   /* its stride in the result */
    int64_t astride[KFC_TD_AXES], bstride[KFC_TD_AXES]; /* row-major strides of a's, b's axes */
    int32_t cdim[KFC_TD_AXES];          /* dim of pair t */
    int64_t dim, dima, dimb;            /* products; past KFC_MAX_DIM: some value above it */
} kfc_tdot_shape;
void kfc_tdot_shape_of(const kfc_tdot *t, kfc_tdot_shape *s);

/* One AST node. Invariant: a[k] < own index for k < nargs, a[k] = -1 beyond. */
typedef struct kfc_node {
    int32_t op;    /* kfc_op */
    int32_t dim;   /* result dim; 0 until kfc_check sets it */
    int32_t a[3];  /* children (node indices), -1 if unused */
    int64_t iv[3]; /* integer arguments: Var (index,dim,cat), IntCst (n), RatCst (p,q), Zero (d),
                      Pow (m), Round (d), ClampInt (a,b), Elem (m), ElemT (n,m), Extract (start,d),
                      ExtractT (start,D), OneHot (D), SumT (d), ComplexSumT (d) */
    double val;    /* value of NUM; for IntCst/RatCst kfc_check stores the value here too */
    int32_t pos;   /* byte offset of the node's token in its source string */
    int16_t src;   /* which string pos refers to: 0 formula, 1 formula2, 2+k alias k */
    kfc_tdot td;   /* TensorDot only */
} kfc_node;

/* The variable table, filled by kfc_check. */
typedef struct kfc_var {
    int used;     /* nonzero if some node refers to this index */
    int cat;      /* KFC_CAT_* */
    int32_t dim;
    int32_t pos;  /* first occurrence (for messages) */
    int16_t src;
} kfc_var;

/* A parsed formula (and optional formula2) sharing one node array. */
typedef struct kfc_prog {
    kfc_node *nodes; /* owned; malloc'd array */
    int32_t nnodes, cap;
    int32_t root;    /* main formula */
    int32_t root2;   /* formula2, or -1 */
    kfc_var vars[KFC_MAX_VARS];
    int nvars;       /* highest used index + 1 (set by kfc_check) */
} kfc_prog;

/* Reduction ids, generated from compiler/reductions.def; KFC_RED_COUNT is no
 * kfc_red_id (see KFC_OP_COUNT). */
typedef enum kfc_red_id {
#define X(id, ...) KFC_RED_##id,
#include "compiler/reductions.def"
#undef X
} kfc_red_id;
enum {
    KFC_RED_COUNT = 0
#define X(id, ...) +1
#include "compiler/reductions.def"
#undef X
};

/* The reduction families (FAMILY column of reductions.def): how the
 * skeletons of every tier and the reference evaluator keep a row's state. */
typedef enum kfc_fam {
    KFC_FAM_SUM,    /* running sums */
    KFC_FAM_MAXMIN, /* best value and index per component */
    KFC_FAM_KMIN,   /* the K best per component */
    KFC_FAM_LSE     /* online log-sum-exp: running max, weighted sums */
} kfc_fam;

/* What sets a reduction apart within its family (VARIANT column). */
typedef enum kfc_redvar {
    KFC_RV_PLAIN,   /* SUM */
    KFC_RV_MAX,     /* MAXMIN: the largest */
    KFC_RV_MIN,     /* MAXMIN, KMIN: the smallest */
    KFC_RV_LOG,     /* LSE: m + log s per component */
    KFC_RV_SOFTMAX, /* LSE: s / s0 per component */
    KFC_RV_SHIFT    /* LSE: (m, s) */
} kfc_redvar;

typedef struct kfc_redinfo {
    const char *name;
    kfc_fam family;
    kfc_redvar variant;
    int needs_k, formula2, scalar;
    const char *doc;
} kfc_redinfo;
extern const kfc_redinfo kfc_red_info[KFC_RED_COUNT];
/* Reduction of a name, or -1. */
int kfc_red_lookup(const char *name);

/* A reduction as the emitters and the reference evaluator see it. */
typedef struct kfc_red {
    int id;          /* kfc_red_id */
    int axis;        /* 1: reduce over j (rows = M), 0: reduce over i (rows = N) */
    kf_dtype dtype;
    kf_sum_scheme sum_scheme; /* resolved: never KF_SUM_AUTO; KF_SUM_F64 for float64 */
    int K;           /* KMin-like, else 0 */
    int32_t D;       /* dim of the main formula */
    int32_t E;       /* dim of formula2 (1 when absent) */
    int64_t valdim;  /* values per output row */
    int64_t idxdim;  /* indices per output row */
} kfc_red;

/* Roles, after the axis is applied: the "outer" variables are indexed by the
 * output row, the "inner" ones by the reduced index. axis 1: outer = cat I;
 * axis 0: outer = cat J. Every emitter and the reference use these. */
enum { KFC_ROLE_OUTER = 0, KFC_ROLE_INNER = 1, KFC_ROLE_PARAM = 2 };
static inline int kfc_role(int cat, int axis)
{
    if (cat == KFC_CAT_P)
        return KFC_ROLE_PARAM;
    return (cat == KFC_CAT_I) == (axis == 1) ? KFC_ROLE_OUTER : KFC_ROLE_INNER;
}

/* --- node arena (ops.c) --- */
void kfc_prog_init(kfc_prog *p);
void kfc_prog_free(kfc_prog *p);
/* Appends a node; returns its index, or -1 (diag set: KF_ERR_NOMEM or KF_ERR_LIMIT). */
int32_t kfc_node_new(kfc_prog *p, int op, int32_t pos, int src, kfc_diag *d);

/* --- passes --- */
/* Parses formula (required), formula2 (may be NULL) and the aliases into p.
 * Grammar and messages: docs/formulas.md. */
int kfc_parse(kfc_prog *p, const char *formula, const char *formula2, const char *const *aliases,
              int naliases, kfc_diag *d);
/* Sets every node's dim, fills p->vars and p->nvars; rejects inconsistent
 * variables, dim mismatches, bad integer arguments. Needs the source strings
 * only for messages (formula2 and aliases may be NULL). */
int kfc_check(kfc_prog *p, const char *formula, const char *formula2, const char *const *aliases,
              int naliases, kfc_diag *d);
/* The dim of node k, built by a pass after kfc_check (its children have
 * theirs), by the checker's own rules: >= 1, or -1 with d set (a limit, or a
 * bug of the pass). Not for VAR nodes. The strings only serve messages. */
int32_t kfc_check_dim(kfc_prog *p, int32_t k, const char *formula, const char *formula2,
                      const char *const *aliases, int naliases, kfc_diag *d);
/* Replaces every derivative operator (Grad, Diff, GradMatrix, Laplacian,
 * Divergence, Grad_WithSavedForward) of a checked program by its expansion,
 * built from ops.def's DERIV rules (autodiff.c); kfc_check calls it last. The
 * program is rebuilt (children < parent kept, equal subtrees shared); a
 * program without one is left as it is. KF_OK, or KF_ERR_LIMIT (the expansion
 * is too large), KF_ERR_NOMEM, KF_ERR_INTERNAL, with d set. */
int kfc_autodiff(kfc_prog *p, const char *formula, const char *formula2, const char *const *aliases,
                 int naliases, kfc_diag *d);
/* Constant folding (never folds a NaN, an infinity or -0.0), common
 * subexpressions merged, unreachable nodes dropped. Keeps the index invariant. */
int kfc_simplify(kfc_prog *p, kfc_diag *d);
/* CSE's node hash and equality (simplify.c), shared with autodiff.c. */
uint64_t kfc_node_hash(const kfc_node *n);
int kfc_node_same(const kfc_node *x, const kfc_node *y);
/* Canonical form of the subtree at root: function-call syntax only, e.g.
 * "Exp(Divide(Minus(SqDist(Var(0,3,0),Var(1,3,1))),IntCst(2)))".
 * Returns a malloc'd string (NULL on out of memory). */
char *kfc_print(const kfc_prog *p, int32_t root);
/* Writes a debug dump of all nodes (one per line) to a malloc'd string. */
char *kfc_dump(const kfc_prog *p);
/* Allocates *mark, one byte per node: 0 for the nodes reachable from root
 * and root2 (root2 < 0: none), -1 for the others. KF_OK, or KF_ERR_INTERNAL
 * / KF_ERR_NOMEM with d set (*mark may then be allocated: free it). */
int kfc_reach(const kfc_prog *p, int32_t root, int32_t root2, int8_t **mark, kfc_diag *d);
/* The IR check every emitter relies on (verify.c): the nodes reachable from
 * the roots against their dim rules and integer arguments, one dim and
 * category per variable, the per-pair value limit, and r's dims against the
 * formula (r NULL: the formula alone). KF_OK, KF_ERR_INTERNAL (a bug: an
 * inconsistent program), KF_ERR_LIMIT or KF_ERR_NOMEM, with d set. */
int kfc_verify(const kfc_prog *p, const kfc_red *r, kfc_diag *d);
/* Fills r from a reduction name, axis, dtype, K and the checked program. */
int kfc_red_setup(kfc_red *r, const kfc_prog *p, const char *reduction, int axis, kf_dtype dtype,
                  int K, kf_sum_scheme scheme, kfc_diag *d);
/* C source of the whole kernel (see docs/kernels.md for the ABI), malloc'd. */
char *kfc_emit_c(const kfc_prog *p, const kfc_red *r, kfc_diag *d);
/* Version of the code generators: part of every cache key. Bump it whenever
 * generated code changes meaning or shape. */
#define KFC_CODEGEN_VERSION 9
/* C source of the whole kernel for the optimizing tier (same ABI as
 * kfc_emit_c, kernels/abi.h), written for `cc -O3 -march=native` to vectorize:
 * needs no libm for exp/log (inline polynomials, accuracy in docs/performance.md). */
char *kfc_emit_c_opt(const kfc_prog *p, const kfc_red *r, kfc_diag *d);
/* The same for a target whose vectors are vec_bits wide (256: AVX2, the
 * default above; 512: AVX-512): the lanes per row block follow the width.
 * The compiler never asks the CPU; the runtime says (runtime/jit/cpu.c). */
char *kfc_emit_c_opt_w(const kfc_prog *p, const kfc_red *r, int vec_bits, kfc_diag *d);
/* CUDA C source of the whole reduction (for NVRTC, no headers): extern "C"
 * kf_reduce_cuda(args, rows, jr, nr, out, idx), one thread per output row;
 * launch contract in docs/cuda.md. Malloc'd; NULL with d set on failure. */
char *kfc_emit_cuda(const kfc_prog *p, const kfc_red *r, kfc_diag *d);
/* C source of the formula alone: void kf_formula(const void *const *args,
 * int64_t i, int64_t j, T *out) -- for `kforge check --emit c` without reduction. */
char *kfc_emit_c_formula(const kfc_prog *p, kf_dtype dtype, kfc_diag *d);

#endif /* KF_COMPILER_IR_H */
