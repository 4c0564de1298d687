/*
 * emit_cuda.c -- the checked AST and a reduction to self-contained CUDA C
 * (for NVRTC): one module, three kernels: kf_reduce_cuda, one thread per
 * output row; and split-j's kf_reduce_cuda_partial (the same per-row body
 * over one chunk of the inner range, writing the row's partial state) and
 * kf_reduce_cuda_combine (a row's partials merged in chunk order).
 *
 *   validate     kfc_verify, as every emitter (compiler/verify.c)
 *   levels       P: constants/parameters, O: + outer variables, I: + inner
 *   prelude      KF_T, kf_i64, the KF_* macros as CUDA device math, the
 *                shared helpers of emit_ops.c as __device__ inline functions
 *   body         P and O nodes once per thread; the inner range walked tile
 *                by tile: each tile's inner variables are copied to shared
 *                memory by the block (one point per thread), then every
 *                active thread folds the tile's terms into its row state,
 *                which the skeleton of compiler/emit/skel_c.c keeps in a local
 *                (register) copy of the output row, written back at the end.
 *
 * Launch contract (docs/cuda.md): one block per task; task b is four int64
 * tasks[4b..4b+3] = {row0, row1, q0, q1}: the block's threads own output rows
 * row0..row1-1 (0 < row1 - row0 <= blockDim.x) and walk the inner ranges
 * jr[2q], jr[2q+1] for q0 <= q < q1, in order. Dense runs are tasks of
 * consecutive rows over one range, block-sparse runs one task per slice of an
 * i-cluster over its list (docs/cuda.md). Dynamic shared memory = blockDim.x *
 * KF_SMEM_PER_POINT bytes (the value is in the source's header comment and
 * returned by the emitted constant kf_smem_per_point).
 *
 * Split-j (docs/cuda.md): kf_reduce_cuda_partial(args, tasks, rows, part,
 * pidx) takes tasks of five int64 {row0, row1, j0, j1, slot}, walks the one
 * range [j0, j1) (non-empty) and writes row r's partial at (slot * rows + r)
 * * nv in part and * nx in pidx; kf_reduce_cuda_combine(part, pidx, nslots,
 * rows, out, idx) has one thread per row (row = blockIdx.x * blockDim.x +
 * threadIdx.x < rows), no shared memory. nv, nx and the partial's value type
 * are kfc_skel_partial's (compiler/emit/skel.h), which the host calls too: no
 * constant is read back from the module for them. The names extend
 * kf_reduce_cuda so that renaming it (the tests' NVRTC and emulation batches)
 * renames all three. Only numbers and generated identifiers reach the
 * source: never text of the user's.
 */
#include <stdio.h>
#include <stdlib.h>

#include "compiler/emit/skel.h"
#include "compiler/emit/emit_ops.h"
#include "compiler/ir.h"

enum { LV_P = 0, LV_O = 1, LV_I = 2 };

typedef struct emitter {
    const kfc_prog *p;
    kfc_buf b;
    int axis;
    int8_t *lvl;                /* per node: LV_*, or -1 when unreachable */
    int32_t vdim[KFC_MAX_VARS]; /* 0: variable unused */
    int8_t vlv[KFC_MAX_VARS];   /* LV_P, LV_O or LV_I */
    int64_t voff[KFC_MAX_VARS]; /* inner variables: offset in a shared point, in values */
    kfc_diag *d;
    kfc_opgen g;
} emitter;

/* The shared level bits (emit_ops.c), with "depends on the inner index" as
 * one level: a thread computes those per tile point whatever else they use. */
static int levels(emitter *e, int32_t root, int32_t root2)
{
    int st = kfc_opgen_levels(e->p, root, root2, e->axis, &e->lvl, e->vdim, e->vlv, e->d);
    for (int32_t n = 0; !st && n < e->p->nnodes; n++)
        if (e->lvl[n] & KFC_LV_INNER)
            e->lvl[n] = LV_I;
    return st;
}

static const char *const indent[] = {"    ", "    ", "                    "};

static void emit_nodes(emitter *e, int lv)
{
    for (int32_t n = 0; n < e->p->nnodes; n++) {
        const kfc_node *x = &e->p->nodes[n];
        if (e->lvl[n] != lv || kfc_is_leaf(x))
            continue;
        kfc_buf_printf(&e->b, "%sKF_T n%d[%d]; /* %s */\n", indent[lv], (int)n, (int)x->dim,
                       kfc_op_info[x->op].name);
        kfc_opgen_node(&e->g, n, lv);
    }
}

/* No #include: NVRTC provides the CUDA math functions as device builtins.
 * The helpers are emit_ops.c's (libtcc flavour: same NaN and zero rules). */
static void prelude(kfc_buf *b, kf_dtype dtype)
{
    int f = dtype == KF_FLOAT32;
    kfc_buf_printf(b, "typedef long long kf_i64;\ntypedef %s KF_T;\n\n", f ? "float" : "double");
    kfc_opgen_libm_macros(b, dtype, KFC_MATH_CUDA);
    /* An infinity without 1.0/0.0 (which NVRTC warns about) or headers. */
    if (f)
        kfc_buf_printf(b, "#define KF_INF __int_as_float(0x7f800000)\n");
    else
        kfc_buf_printf(b, "#define KF_INF __longlong_as_double(0x7ff0000000000000LL)\n");
    kfc_buf_printf(b, "#define KF_HELPER static __device__ __forceinline__\n\n");
    kfc_opgen_helpers(b, 0);
}

/* Shared-memory bytes per point of a tile (every inner variable's values). */
static int64_t layout(emitter *e, kf_dtype dtype)
{
    int64_t off = 0;
    for (int v = 0; v < KFC_MAX_VARS; v++)
        if (e->vdim[v] && e->vlv[v] == LV_I) {
            e->voff[v] = off;
            off += e->vdim[v];
        }
    return off * (dtype == KF_FLOAT32 ? 4 : 8);
}

/* The two kernels with one thread per output row and tiles of inner points:
 * kf_reduce_cuda (whole lists of ranges, the finished row to out/idx) and
 * kf_reduce_cuda_partial (one chunk [j0, j1) of the inner range, the chunk's
 * partial state to part/pidx). The text of kf_reduce_cuda is the one this
 * file always emitted; the partial kernel differs in its head, its task
 * (five int64), its single range and its end. */
enum { K_REDUCE, K_PARTIAL };

static void emit_write_row(emitter *e, const kfc_red *r);

static void emit_rows(emitter *e, const kfc_red *r, int kind)
{
    const kfc_prog *p = e->p;
    int32_t r2 = kfc_red_info[r->id].formula2 ? p->root2 : -1;
    if (kind == K_REDUCE)
        kfc_buf_printf(&e->b,
                       "extern \"C\" __global__ void kf_reduce_cuda(const void *const *args, const long long *tasks,\n"
                       "                                          const long long *jr, void *out, long long *idx)\n{\n");
    else
        kfc_buf_printf(&e->b,
                       "extern \"C\" __global__ void kf_reduce_cuda_partial(const void *const *args, const long long *tasks,\n"
                       "                                                  long long rows, void *part, long long *pidx)\n{\n");
    kfc_buf_printf(&e->b, "    extern __shared__ double kf_smem[]; /* double: aligned for both dtypes */\n"
                          "    KF_T *kf_sh = (KF_T *)kf_smem;\n"
                          "    const kf_i64 kf_nt = blockDim.x, kf_tid = threadIdx.x;\n"
                          "    const long long *kf_task = tasks + %d * (kf_i64)blockIdx.x;\n"
                          "    const kf_i64 kf_row = kf_task[0] + kf_tid;\n"
                          "    const int kf_active = kf_row < kf_task[1];\n"
                          "    /* inactive threads compute on the task's first row and write\n"
                          "     * nothing; they stay for the tile loads and barriers */\n"
                          "    const kf_i64 kf_orow = kf_active ? kf_row : kf_task[0];\n",
                   kind == K_REDUCE ? 4 : 5);
    if (kind == K_REDUCE)
        kfc_buf_printf(&e->b, "    (void)kf_sh; (void)out; (void)idx;\n");
    else
        kfc_buf_printf(&e->b, "    (void)kf_sh; (void)pidx;\n");
    kfc_buf_printf(&e->b, "    /* parameters and constants */\n");
    for (int v = 0; v < KFC_MAX_VARS; v++)
        if (e->vdim[v] && e->vlv[v] == LV_P)
            kfc_buf_printf(&e->b, "    const KF_T *v%d = (const KF_T *)args[%d];\n", v, v);
    char f[32], g[32];
    emit_nodes(e, LV_P);
    kfc_opgen_root_array(&e->g, e->lvl, p->root, LV_P, "kf_f", f, sizeof f);
    if (r2 >= 0)
        kfc_opgen_root_array(&e->g, e->lvl, r2, LV_P, "kf_g", g, sizeof g);
    kfc_buf_printf(&e->b, "    /* the outer (row) variables */\n");
    for (int v = 0; v < KFC_MAX_VARS; v++)
        if (e->vdim[v] && e->vlv[v] == LV_O)
            kfc_buf_printf(&e->b, "    const KF_T *v%d = (const KF_T *)args[%d] + kf_orow * %d;\n", v, v,
                           (int)e->vdim[v]);
    emit_nodes(e, LV_O);
    kfc_opgen_root_array(&e->g, e->lvl, p->root, LV_O, "kf_f", f, sizeof f);
    if (r2 >= 0)
        kfc_opgen_root_array(&e->g, e->lvl, r2, LV_O, "kf_g", g, sizeof g);
    /* The skeleton writes row r of kf_out/kf_idx: give it a local row as row 0. */
    kfc_buf_printf(&e->b, "    {\n        const kf_i64 r = 0;\n");
    if (r->valdim > 0)
        kfc_buf_printf(&e->b, "        KF_T kf_lo[%lld];\n        KF_T *kf_out = kf_lo;\n", (long long)r->valdim);
    if (r->idxdim > 0)
        kfc_buf_printf(&e->b, "        kf_i64 kf_lx[%lld];\n        kf_i64 *kf_idx = kf_lx;\n",
                       (long long)r->idxdim);
    kfc_skel_row_begin(&e->b, r);
    if (kind == K_REDUCE)
        kfc_buf_printf(&e->b, "        for (kf_i64 q = kf_task[2]; q < kf_task[3]; q++) {\n"
                              "            const kf_i64 kf_j1 = jr[2 * q + 1];\n"
                              "            for (kf_i64 kf_j0 = jr[2 * q]; kf_j0 < kf_j1; kf_j0 += kf_nt) {\n");
    else
        kfc_buf_printf(&e->b, "        {\n"
                              "            const kf_i64 kf_j1 = kf_task[3];\n"
                              "            for (kf_i64 kf_j0 = kf_task[2]; kf_j0 < kf_j1; kf_j0 += kf_nt) {\n");
    kfc_buf_printf(&e->b, "                const kf_i64 kf_n = kf_j1 - kf_j0 < kf_nt ? kf_j1 - kf_j0 : kf_nt;\n"
                          "                __syncthreads(); /* the previous tile is consumed */\n"
                          "                if (kf_tid < kf_n) {\n");
    for (int v = 0; v < KFC_MAX_VARS; v++)
        if (e->vdim[v] && e->vlv[v] == LV_I)
            kfc_buf_printf(&e->b,
                           "                    { const KF_T *kf_src = (const KF_T *)args[%d] + (kf_j0 + kf_tid) * %d;\n"
                           "                      KF_T *kf_d = kf_sh + kf_nt * %lld + kf_tid * %d;\n"
                           "                      for (int kf_c = 0; kf_c < %d; kf_c++) kf_d[kf_c] = kf_src[kf_c]; }\n",
                           v, (int)e->vdim[v], (long long)e->voff[v], (int)e->vdim[v], (int)e->vdim[v]);
    kfc_buf_printf(&e->b, "                }\n"
                          "                __syncthreads();\n"
                          "                if (!kf_active)\n"
                          "                    continue;\n"
                          "                for (kf_i64 kf_tt = 0; kf_tt < kf_n; kf_tt++) {\n"
                          "                    const kf_i64 j = kf_j0 + kf_tt;\n"
                          "                    (void)j;\n");
    for (int v = 0; v < KFC_MAX_VARS; v++)
        if (e->vdim[v] && e->vlv[v] == LV_I)
            kfc_buf_printf(&e->b, "                    const KF_T *v%d = kf_sh + kf_nt * %lld + kf_tt * %d;\n", v,
                           (long long)e->voff[v], (int)e->vdim[v]);
    emit_nodes(e, LV_I);
    kfc_opgen_root_array(&e->g, e->lvl, p->root, LV_I, "kf_f", f, sizeof f);
    if (r2 >= 0)
        kfc_opgen_root_array(&e->g, e->lvl, r2, LV_I, "kf_g", g, sizeof g);
    kfc_skel_term(&e->b, r, f, r2 >= 0 ? g : NULL);
    kfc_buf_printf(&e->b, "                }\n            }\n        }\n");
    if (kind == K_PARTIAL) {
        /* part/pidx rows (slot * rows + row): a slot is a chunk, all rows of it together */
        kfc_partial pp = kfc_skel_partial(r);
        kfc_buf_printf(&e->b, "        if (kf_active) {\n"
                              "            const kf_i64 kf_pr = kf_task[4] * rows + kf_row;\n"
                              "            %s *kf_pv = (%s *)part + kf_pr * %lld;\n",
                       kfc_skel_partial_type(r), kfc_skel_partial_type(r), (long long)pp.nv);
        if (pp.nx > 0)
            kfc_buf_printf(&e->b, "            kf_i64 *kf_px = pidx + kf_pr * %lld;\n", (long long)pp.nx);
        kfc_skel_partial_end(&e->b, r, "kf_pv", "kf_px");
        kfc_buf_printf(&e->b, "        }\n    }\n}\n");
        return;
    }
    kfc_skel_row_end(&e->b, r);
    emit_write_row(e, r);
}

/* The row's finished local copy to out/idx (active threads). */
static void emit_write_row(emitter *e, const kfc_red *r)
{
    kfc_buf_printf(&e->b, "        if (kf_active) {\n");
    if (r->valdim > 0)
        kfc_buf_printf(&e->b,
                       "            KF_T *kf_o = (KF_T *)out + kf_row * %lld;\n"
                       "            for (int kf_c = 0; kf_c < %lld; kf_c++) kf_o[kf_c] = kf_lo[kf_c];\n",
                       (long long)r->valdim, (long long)r->valdim);
    if (r->idxdim > 0)
        kfc_buf_printf(&e->b,
                       "            kf_i64 *kf_x = idx + kf_row * %lld;\n"
                       "            for (int kf_c = 0; kf_c < %lld; kf_c++) kf_x[kf_c] = kf_lx[kf_c];\n",
                       (long long)r->idxdim, (long long)r->idxdim);
    kfc_buf_printf(&e->b, "        }\n    }\n}\n");
}

/* kf_reduce_cuda_combine: one thread per row (row = blockIdx.x * blockDim.x
 * + threadIdx.x, rows past `rows` return at once: no barriers here), the
 * row's nslots partials merged in slot (chunk) order, finalized, written. */
static void emit_combine(emitter *e, const kfc_red *r)
{
    kfc_partial pp = kfc_skel_partial(r);
    const char *pt = kfc_skel_partial_type(r);
    kfc_buf_printf(&e->b,
                   "extern \"C\" __global__ void kf_reduce_cuda_combine(const void *part, const long long *pidx,\n"
                   "                                                  long long nslots, long long rows, void *out,\n"
                   "                                                  long long *idx)\n{\n"
                   "    const kf_i64 kf_row = (kf_i64)blockIdx.x * blockDim.x + threadIdx.x;\n"
                   "    const int kf_active = kf_row < rows;\n"
                   "    if (!kf_active)\n"
                   "        return;\n"
                   "    (void)pidx; (void)out; (void)idx;\n"
                   "    {\n        const kf_i64 r = 0;\n");
    if (r->valdim > 0)
        kfc_buf_printf(&e->b, "        KF_T kf_lo[%lld];\n        KF_T *kf_out = kf_lo;\n", (long long)r->valdim);
    if (r->idxdim > 0)
        kfc_buf_printf(&e->b, "        kf_i64 kf_lx[%lld];\n        kf_i64 *kf_idx = kf_lx;\n",
                       (long long)r->idxdim);
    kfc_skel_row_begin(&e->b, r);
    kfc_buf_printf(&e->b, "        for (kf_i64 kf_sl0 = 0; kf_sl0 < nslots; kf_sl0++) {\n"
                          "            const kf_i64 kf_pr = kf_sl0 * rows + kf_row;\n"
                          "            const %s *kf_pv = (const %s *)part + kf_pr * %lld;\n",
                   pt, pt, (long long)pp.nv);
    if (pp.nx > 0)
        kfc_buf_printf(&e->b, "            const kf_i64 *kf_px = pidx + kf_pr * %lld;\n", (long long)pp.nx);
    kfc_skel_merge(&e->b, r, "kf_pv", "kf_px");
    kfc_buf_printf(&e->b, "        }\n");
    kfc_skel_row_end(&e->b, r);
    emit_write_row(e, r);
}

char *kfc_emit_cuda(const kfc_prog *p, const kfc_red *r, kfc_diag *d)
{
    emitter e = {.p = p, .axis = r->axis, .d = d};
    e.g = (kfc_opgen){.p = p, .b = &e.b, .ctx = &e, .comp = kfc_opgen_comp_vn,
                      .dst = kfc_opgen_dst_vn,
                      .each = kfc_buf_each, .indent = indent};
    /* The IR check every emitter relies on (compiler/verify.c). */
    if (kfc_verify(p, r, d))
        return NULL;
    int32_t r2 = kfc_red_info[r->id].formula2 ? p->root2 : -1;
    if (levels(&e, p->root, r2))
        return kfc_opgen_finish(&e.b, e.lvl, 0, d);
    int64_t smem = layout(&e, r->dtype);
    kfc_partial pp = kfc_skel_partial(r);
    kfc_buf_printf(&e.b,
                   "/* kforge CUDA kernel: %s over %s (axis %d), %s, sum scheme %s.\n"
                   " * Generated; self-contained (NVRTC, no headers). One thread per output row;\n"
                   " * one block per task {row0, row1, q0, q1}; blockDim.x * %lld bytes of dynamic\n"
                   " * shared memory. The contract is in docs/cuda.md. Split-j: kf_reduce_cuda_partial\n"
                   " * (tasks {row0, row1, j0, j1, slot}, the same shared memory) writes per row and\n"
                   " * slot %lld %s values and %lld int64; kf_reduce_cuda_combine merges them. */\n",
                   kfc_red_info[r->id].name, r->axis == 1 ? "j" : "i", r->axis,
                   kf_dtype_name(r->dtype), kf_sum_scheme_name(r->sum_scheme),
                   (long long)smem, (long long)pp.nv, kfc_skel_partial_type(r), (long long)pp.nx);
    prelude(&e.b, r->dtype);
    kfc_buf_printf(&e.b, "#define KF_SMEM_PER_POINT %lld\n"
                         "extern \"C\" __device__ const long long kf_smem_per_point = KF_SMEM_PER_POINT;\n\n",
                   (long long)smem);
    emit_rows(&e, r, K_REDUCE);
    kfc_buf_printf(&e.b, "\n");
    emit_rows(&e, r, K_PARTIAL);
    kfc_buf_printf(&e.b, "\n");
    emit_combine(&e, r);
    return kfc_opgen_finish(&e.b, e.lvl, 1, d);
}
