/*
 * abi.h -- the contract between generated kernels and the runtime.
 * docs/kernels.md explains it at length; this is the binding C form.
 *
 * Every engine (libtcc C, later the optimizing C tier and CUDA, and the
 * reference evaluator) provides ONE function with this shape:
 *
 *   void kf_reduce(const void *const *args, int64_t r0, int64_t r1,
 *                  const int64_t *jr, int64_t nr, void *out, int64_t *idx);
 *
 * It reduces the output rows r in [r0, r1) over the inner indices in the
 * union of the half-open ranges [jr[2q], jr[2q+1]), q < nr, visited in that
 * order, and writes COMPLETE rows: out + r*valdim (valdim values of the
 * kernel's dtype) and idx + r*idxdim (int64). nr == 0 or empty ranges give the
 * reduction's neutral value. Rows outside [r0, r1) are neither read nor
 * written, so the runtime can hand disjoint row blocks to threads.
 *
 *   args[v]  the array of variable index v, as the user passed it:
 *            outer variables (the output row's) at args[v] + r*dim,
 *            inner variables (the reduced index's) at args[v] + j*dim,
 *            parameters at args[v]. Which cat is outer depends on the axis
 *            (kfc_role in compiler/ir.h): the kernel is compiled for one axis.
 *
 * The function may not allocate on the heap, call anything but libm, or keep
 * state between calls: it is pure, so any number of threads run it at once.
 * The runtime validates everything before calling it (STYLE.md point 9).
 * Dense calls pass nr = 1, jr = {0, inner_count}; block-sparse calls (a later
 * issue) pass a cluster's list of j ranges.
 */
#ifndef KF_KERNELS_ABI_H
#define KF_KERNELS_ABI_H

#include <stdint.h>

typedef void (*kfk_reduce_fn)(const void *const *args, int64_t r0, int64_t r1, const int64_t *jr,
                              int64_t nr, void *out, int64_t *idx);

/* The kernel slot: what the run path calls for one task, whichever engine
 * is behind it (BLIS's reference kernels sit in the optimized kernels'
 * slots the same way). `call` reduces rows [r0, r1) over the ranges jr
 * exactly as kfk_reduce_fn does and returns 0 (KF_OK) or a kf_status; `fn`
 * is generated code (called by kfk_slot_generated), `prog`/`red` the
 * reference evaluator's program and reduction (kernels/ref.h). A slot is a
 * value: the run path copies it once per task (a block of complete rows), so
 * a swap of k->fn to cc code meanwhile takes effect at the next task and
 * never mixes two engines within one task or one row. */
typedef struct kfk_slot kfk_slot;
struct kfk_slot {
    int (*call)(const kfk_slot *s, const void *const *args, int64_t r0, int64_t r1,
                const int64_t *jr, int64_t nr, void *out, int64_t *idx);
    kfk_reduce_fn fn;
    const void *prog, *red;
};
/* The slot's call for generated code: s->fn, which cannot fail. */
static inline int kfk_slot_generated(const kfk_slot *s, const void *const *args, int64_t r0,
                                     int64_t r1, const int64_t *jr, int64_t nr, void *out,
                                     int64_t *idx)
{
    s->fn(args, r0, r1, jr, nr, out, idx);
    return 0;
}

/* Symbol name of the entry point in generated code. */
#define KFK_ENTRY "kf_reduce"
/* Symbol name of the formula-only function (kfc_emit_c_formula). */
#define KFK_FORMULA_ENTRY "kf_formula"

/* The libm functions generated C may call, bound by name into the JIT
 * (generated code has no #include and links against nothing else).
 * Defined in kernels/libm_syms.c; an emitter must not call anything else. */
typedef struct kfk_sym {
    const char *name;
    void *addr;
} kfk_sym;
extern const kfk_sym kfk_libm_syms[];
extern const int kfk_nlibm_syms;

#endif
