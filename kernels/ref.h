/* ref.h -- the reference evaluator (ref_eval.c): the plain-C oracle every generated kernel is checked against. */
#ifndef KF_KERNELS_REF_H
#define KF_KERNELS_REF_H

#include <stddef.h>
#include <stdint.h>

#include "compiler/ir.h"
#include "kernels/abi.h"

/* Same contract as kfk_reduce_fn (kernels/abi.h) plus the program; computes
 * in double straight from the AST, writes the kernel's dtype. Returns KF_OK or
 * KF_ERR_NOMEM (scratch is heap-allocated per call). */
int kfk_ref_reduce(const kfc_prog *p, const kfc_red *r, const void *const *args, int64_t r0,
                   int64_t r1, const int64_t *jr, int64_t nr, void *out, int64_t *idx);
/* The slot's call for the reference engine (s->prog, s->red): kfk_ref_reduce. */
int kfk_ref_slot_call(const kfk_slot *s, const void *const *args, int64_t r0, int64_t r1,
                      const int64_t *jr, int64_t nr, void *out, int64_t *idx);
/* Evaluates the subtree at root for the pair (i, j) in double; out gets
 * p->nodes[root].dim values. args hold arrays of dtype. scratch must have
 * room for the sum of all node dims (kfk_ref_scratch_size). */
void kfk_ref_eval(const kfc_prog *p, int32_t root, kf_dtype dtype, const void *const *args,
                  int64_t i, int64_t j, double *scratch, double *out);
size_t kfk_ref_scratch_size(const kfc_prog *p);

#endif
