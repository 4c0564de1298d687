/*
 * t_cuda_emu.c -- the generated CUDA kernels (compiler/emit/emit_cuda.c) RUN on
 * the CPU and compared with the reference evaluator: the kernels' logic
 * (tiles, barriers, inactive threads, ragged edges, task tables) checked on
 * every CI run, without a GPU.
 *
 * THE EMULATOR. A C++ shim (SHIM below) turns the emitted source into host
 * C++: __global__/__device__/... vanish, threadIdx and blockIdx are
 * thread-local, blockDim and gridDim global, __syncthreads() a real barrier
 * between real threads (one pthread per CUDA thread of the block), the
 * dynamic shared array one global buffer (the blocks of a launch run one
 * after another, every other launch from the last block: CUDA promises no
 * order), device math <cmath>'s; kf_emu_launch_split runs the split-j
 * kernels the same way. Kernels are batched, each in a namespace
 * of its own with its C-linkage names renamed (as tests/t_cuda_ptx.c
 * batches them for NVRTC), compiled by `g++ -O1 -shared -fPIC -std=c++17`
 * (clang++ without g++; the two batches in parallel) and dlopen'ed. Besides
 * the results, the emulation checks what a GPU would not report:
 *   - every thread of a block passes the same number of barriers (a barrier
 *     some threads skip hangs or corrupts a real launch; here it fails);
 *   - nothing is written to shared memory past blockDim.x *
 *     kf_smem_per_point bytes, and slots a block has not loaded read as NaN;
 *   - nothing is written past the last output row (a block of guard rows);
 *   - under ASan (make test's second run) the kernels are built with
 *     -fsanitize=address,undefined and the inputs have their exact sizes,
 *     so a read past an array stops the test.
 *
 * THE CASES are independent of the emulator: kernel_cases() runs every case
 * of one kernel through runner.launch, so a GPU runner replays them by
 * providing a launch that copies to the device and back. A case is a
 * kernel, a block size, sizes, data and optionally a block-sparse pattern;
 * its task table comes from runtime/cuda/cuda_tasks.h (what the GPU path
 * launches), the expected rows from the reference engine (kf_run,
 * kf_run_ranges), and the comparison follows tests/testutil.h (tolerances,
 * scales, index ties; outputs prefilled with garbage).
 *   dense   every reduction of compiler/reductions.def (t_ranges_run.c's
 *           formulas), both dtypes, both axes; blocks of 32 and 64 with
 *           sizes {0, 1, B-1, B, B+1, 3B+5} (each once as M and once as N
 *           per kernel, the pairing rotating over kernels); 0 rows: no launch
 *   block1  a block of 1 thread
 *   schemes the four float32 Sum schemes, dense and block-sparse
 *   ops     the device math of most ops (grid data: exact discontinuities)
 *   nan     NaN and +-inf inputs (first NaN wins, first-term rules)
 *   ranges  random valid kf_ranges (uncovered rows, empty lists, empty and
 *           overlapping ranges, clusters longer than a block) through
 *           kfr_ranges_check + kfr_ranges_tasks + kfr_cuda_tasks_ranges
 *   split   split-j: kf_reduce_cuda_partial over kfr_cuda_tasks_split's
 *           table, then kf_reduce_cuda_combine; 2, 3 and 7 chunks, chunks
 *           of 1 term, ties (grid data) and NaN/inf in several chunks;
 *           against the reference, and bit for bit against the unsplit
 *           kernel for Max/Min/KMin and their Arg forms
 *   self    hand-written kernels proving the emulator's barrier and checks
 * Without g++ and clang++ the test is skipped (KFT_SKIP), with that reason.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "compiler/emit/emit_ops.h"
#include "compiler/emit/skel.h"
#include "runtime/cuda/cuda_api.h"
#include "runtime/cuda/cuda_tasks.h"
#include "runtime/sparse/ranges.h"
#include "runtime/rt.h"
#include "harness.h"
#include "testutil.h"

extern char **environ;

/* ==== the shim: host C++ for the emitted CUDA ==== */

static const char SHIM[] =
    "/* kforge CUDA emulation shim (tests/t_cuda_emu.c): one pthread per CUDA\n"
    " * thread, the blocks of a launch one after another. */\n"
    "#include <atomic>\n"
    "#include <cerrno>\n"
    "#include <climits>\n"
    "#include <cmath>\n"
    "#include <cstdio>\n"
    "#include <cstdlib>\n"
    "#include <cstring>\n"
    "#include <ctime>\n"
    "#include <linux/futex.h>\n"
    "#include <pthread.h>\n"
    "#include <sys/syscall.h>\n"
    "#include <unistd.h>\n"
    "\n"
    "struct kf_emu_dim3 { unsigned int x, y, z; };\n"
    "static thread_local kf_emu_dim3 threadIdx, blockIdx;\n"
    "static kf_emu_dim3 blockDim, gridDim;\n"
    "#define __global__\n"
    "#define __device__\n"
    "#define __host__\n"
    "#define __shared__\n"
    "#define __forceinline__ inline\n"
    "#define __noinline__\n"
    "#define __restrict__ __restrict\n"
    "static inline float __int_as_float(int v) { float f; memcpy(&f, &v, sizeof f); return f; }\n"
    "static inline int __float_as_int(float f) { int v; memcpy(&v, &f, sizeof v); return v; }\n"
    "static inline double __longlong_as_double(long long v) { double d; memcpy(&d, &v, sizeof d); return d; }\n"
    "static inline long long __double_as_longlong(double d) { long long v; memcpy(&v, &d, sizeof v); return v; }\n"
    "static void kf_emu_sync(void);\n"
    "#define __syncthreads() kf_emu_sync()\n"
    "\n"
    "#define KF_EMU_SMEM_BYTES (1 << 19)\n"
    "#define KF_EMU_GUARD_BYTES 4096\n"
    "/* The dynamic shared memory. Kernels declare `extern __shared__ double\n"
    " * kf_smem[]` inside extern \"C\" functions: that names this C-linkage array\n"
    " * from whatever namespace the kernel is in. */\n"
    "extern \"C\" { double kf_smem[(KF_EMU_SMEM_BYTES + KF_EMU_GUARD_BYTES) / sizeof(double)]; }\n"
    "\n"
    "/* The barrier of a launch's threads (a futex on the generation count: a\n"
    " * release wakes every waiter with one call, no lock to contend for). It\n"
    " * breaks -- every wait returns at once and the launch fails -- when a\n"
    " * thread has left while others wait (a barrier that not every thread\n"
    " * reaches), or after 20 s. */\n"
    "static int kf_emu_nthreads;\n"
    "static std::atomic<int> kf_emu_arrived, kf_emu_exited, kf_emu_broken;\n"
    "static std::atomic<int> kf_emu_gen;\n"
    "static thread_local long long kf_emu_syncs;\n"
    "\n"
    "static void kf_emu_wake(void)\n"
    "{\n"
    "    syscall(SYS_futex, &kf_emu_gen, FUTEX_WAKE_PRIVATE, INT_MAX, nullptr, nullptr, 0);\n"
    "}\n"
    "\n"
    "static void kf_emu_break(int why)\n"
    "{\n"
    "    int no = 0;\n"
    "    kf_emu_broken.compare_exchange_strong(no, why);\n"
    "    kf_emu_gen++;\n"
    "    kf_emu_wake();\n"
    "}\n"
    "\n"
    "static void kf_emu_barrier(void)\n"
    "{\n"
    "    if (kf_emu_broken)\n"
    "        return;\n"
    "    int g = kf_emu_gen;\n"
    "    if (kf_emu_arrived.fetch_add(1) + 1 == kf_emu_nthreads) {\n"
    "        kf_emu_arrived = 0;\n"
    "        kf_emu_gen++;\n"
    "        kf_emu_wake();\n"
    "        return;\n"
    "    }\n"
    "    for (int waited = 0; kf_emu_gen == g && !kf_emu_broken;) {\n"
    "        /* exited, THEN gen: a thread that left after this barrier's\n"
    "         * release (the launch's last) shows the new generation too */\n"
    "        if (kf_emu_exited > 0 && kf_emu_gen == g)\n"
    "            kf_emu_break(1);\n"
    "        else if (waited >= 20)\n"
    "            kf_emu_break(2);\n"
    "        struct timespec second = {1, 0};\n"
    "        if (syscall(SYS_futex, &kf_emu_gen, FUTEX_WAIT_PRIVATE, g, &second, nullptr, 0) != 0 &&\n"
    "            errno == ETIMEDOUT)\n"
    "            waited++;\n"
    "    }\n"
    "}\n"
    "\n"
    "static void kf_emu_sync(void)\n"
    "{\n"
    "    kf_emu_syncs++;\n"
    "    kf_emu_barrier();\n"
    "}\n"
    "\n"
    "typedef void (*kf_emu_kernel)(const void *const *, const long long *, const long long *, void *,\n"
    "                              long long *);\n"
    "typedef void (*kf_emu_partial)(const void *const *, const long long *, long long, void *, long long *);\n"
    "typedef void (*kf_emu_combine)(const void *, const long long *, long long, long long, void *, long long *);\n"
    "static struct {\n"
    "    int kind; /* 0 kf_reduce_cuda, 1 its _partial, 2 its _combine */\n"
    "    kf_emu_kernel fn;\n"
    "    kf_emu_partial fpart;\n"
    "    kf_emu_combine fcomb;\n"
    "    long long rows, nslots; /* split-j */\n"
    "    void *part;\n"
    "    long long *pidx;\n"
    "    const void *const *args;\n"
    "    const long long *tasks, *jr;\n"
    "    long long ntasks;\n"
    "    void *out;\n"
    "    long long *idx;\n"
    "    unsigned block;\n"
    "    size_t smem;\n"
    "    long long *syncs; /* per block and thread: barriers passed */\n"
    "    long long overrun; /* blocks that wrote past smem */\n"
    "    int reverse; /* the blocks from the last: CUDA promises no order */\n"
    "} kf_emu;\n"
    "\n"
    "static int kf_emu_guard_ok(void)\n"
    "{\n"
    "    const unsigned char *p = (const unsigned char *)kf_smem + kf_emu.smem;\n"
    "    for (size_t k = 0; k < KF_EMU_GUARD_BYTES; k++)\n"
    "        if (p[k] != 0xff)\n"
    "            return 0;\n"
    "    return 1;\n"
    "}\n"
    "\n"
    "/* CUDA thread `arg` of every block in turn: thread 0 poisons the shared\n"
    " * memory (all-ones bits: NaN for both dtypes) between blocks. */\n"
    "static void *kf_emu_thread(void *arg)\n"
    "{\n"
    "    unsigned tid = (unsigned)(size_t)arg;\n"
    "    threadIdx.x = tid, threadIdx.y = threadIdx.z = 0;\n"
    "    for (long long b = 0; b < kf_emu.ntasks; b++) {\n"
    "        if (tid == 0)\n"
    "            memset(kf_smem, 0xff, kf_emu.smem + KF_EMU_GUARD_BYTES);\n"
    "        kf_emu_barrier();\n"
    "        blockIdx.x = (unsigned)(kf_emu.reverse ? kf_emu.ntasks - 1 - b : b), blockIdx.y = blockIdx.z = 0;\n"
    "        kf_emu_syncs = 0;\n"
    "        if (kf_emu.kind == 0)\n"
    "            kf_emu.fn(kf_emu.args, kf_emu.tasks, kf_emu.jr, kf_emu.out, kf_emu.idx);\n"
    "        else if (kf_emu.kind == 1)\n"
    "            kf_emu.fpart(kf_emu.args, kf_emu.tasks, kf_emu.rows, kf_emu.part, kf_emu.pidx);\n"
    "        else\n"
    "            kf_emu.fcomb(kf_emu.part, kf_emu.pidx, kf_emu.nslots, kf_emu.rows, kf_emu.out, kf_emu.idx);\n"
    "        kf_emu.syncs[(long long)blockIdx.x * kf_emu.block + tid] = kf_emu_syncs;\n"
    "        kf_emu_barrier();\n"
    "        if (tid == 0 && !kf_emu_guard_ok())\n"
    "            kf_emu.overrun++;\n"
    "    }\n"
    "    kf_emu_exited++;\n"
    "    if (kf_emu_arrived > 0)\n"
    "        kf_emu_break(1);\n"
    "    return nullptr;\n"
    "}\n"
    "\n"
    "static int kf_emu_next_kind; /* set by kf_emu_launch_split for the next launch */\n"
    "\n"
    "/* kernel<<<ntasks, block, block * smem_per_point>>>(args, tasks, jr, out, idx):\n"
    " * returns 0, or -1 with what went wrong in msg. */\n"
    "extern \"C\" int kf_emu_launch(kf_emu_kernel fn, int block, long long smem_per_point,\n"
    "                              const void *const *args, const long long *tasks, long long ntasks,\n"
    "                              const long long *jr, void *out, long long *idx, char *msg, int cap)\n"
    "{\n"
    "    msg[0] = 0;\n"
    "    if (block < 1 || block > 1024 || ntasks < 1 || ntasks > 0x7fffffffLL) {\n"
    "        snprintf(msg, (size_t)cap, \"invalid launch: %d threads, %lld blocks\", block, ntasks);\n"
    "        return -1;\n"
    "    }\n"
    "    if (smem_per_point < 0 || smem_per_point * block > KF_EMU_SMEM_BYTES) {\n"
    "        snprintf(msg, (size_t)cap, \"%lld bytes of shared memory per point: too many\", smem_per_point);\n"
    "        return -1;\n"
    "    }\n"
    "    kf_emu.kind = kf_emu_next_kind, kf_emu_next_kind = 0;\n"
    "    kf_emu.fn = fn, kf_emu.args = args, kf_emu.tasks = tasks, kf_emu.jr = jr;\n"
    "    kf_emu.ntasks = ntasks, kf_emu.out = out, kf_emu.idx = idx, kf_emu.block = (unsigned)block;\n"
    "    kf_emu.smem = (size_t)(smem_per_point * block), kf_emu.overrun = 0;\n"
    "    kf_emu.reverse = !kf_emu.reverse; /* every other launch */\n"
    "    blockDim.x = (unsigned)block, blockDim.y = blockDim.z = 1;\n"
    "    gridDim.x = (unsigned)ntasks, gridDim.y = gridDim.z = 1;\n"
    "    kf_emu.syncs = (long long *)calloc((size_t)(ntasks * block), sizeof(long long));\n"
    "    pthread_t *th = (pthread_t *)calloc((size_t)block, sizeof(pthread_t));\n"
    "    if (!kf_emu.syncs || !th) {\n"
    "        free(kf_emu.syncs), free(th);\n"
    "        snprintf(msg, (size_t)cap, \"out of memory\");\n"
    "        return -1;\n"
    "    }\n"
    "    kf_emu_nthreads = block, kf_emu_arrived = 0, kf_emu_exited = 0, kf_emu_broken = 0;\n"
    "    pthread_attr_t at;\n"
    "    pthread_attr_init(&at);\n"
    "    pthread_attr_setstacksize(&at, 1 << 20);\n"
    "    int made = 0;\n"
    "    while (made < block && pthread_create(&th[made], &at, kf_emu_thread, (void *)(size_t)made) == 0)\n"
    "        made++;\n"
    "    pthread_attr_destroy(&at);\n"
    "    if (made < block)\n"
    "        kf_emu_break(3);\n"
    "    for (int t = 0; t < made; t++)\n"
    "        pthread_join(th[t], nullptr);\n"
    "    int rc = -1;\n"
    "    if (made < block)\n"
    "        snprintf(msg, (size_t)cap, \"could not start thread %d of %d\", made, block);\n"
    "    else if (kf_emu_broken == 2)\n"
    "        snprintf(msg, (size_t)cap, \"a __syncthreads() barrier timed out (20 s)\");\n"
    "    else if (kf_emu_broken)\n"
    "        snprintf(msg, (size_t)cap, \"a __syncthreads() barrier that not every thread of a block reached\");\n"
    "    else if (kf_emu.overrun)\n"
    "        snprintf(msg, (size_t)cap, \"shared memory written past blockDim.x * kf_smem_per_point = %zu bytes\"\n"
    "                 \" (%lld blocks)\", kf_emu.smem, kf_emu.overrun);\n"
    "    else\n"
    "        rc = 0;\n"
    "    for (long long b = 0; rc == 0 && b < ntasks; b++)\n"
    "        for (int t = 1; t < block; t++)\n"
    "            if (kf_emu.syncs[b * block + t] != kf_emu.syncs[b * block]) {\n"
    "                snprintf(msg, (size_t)cap, \"block %lld: thread %d passed %lld barriers, thread 0 %lld\", b, t,\n"
    "                         kf_emu.syncs[b * block + t], kf_emu.syncs[b * block]);\n"
    "                rc = -1;\n"
    "                break;\n"
    "            }\n"
    "    free(kf_emu.syncs), free(th);\n"
    "    kf_emu.syncs = nullptr;\n"
    "    return rc;\n"
    "}\n"
    "\n"
    "/* Split-j: kind 1, partial<<<nblocks, block, block * smem_per_point>>>(args,\n"
    " * tasks, rows, part, pidx); kind 2, combine<<<nblocks, block, 0>>>(part,\n"
    " * pidx, nslots, rows, out, idx). The same checks as kf_emu_launch. */\n"
    "extern \"C\" int kf_emu_launch_split(int kind, void *fn, int block, long long smem_per_point,\n"
    "                                    const void *const *args, const long long *tasks, long long nblocks,\n"
    "                                    long long rows, long long nslots, void *part, long long *pidx,\n"
    "                                    void *out, long long *idx, char *msg, int cap)\n"
    "{\n"
    "    kf_emu.fpart = kind == 1 ? (kf_emu_partial)fn : nullptr;\n"
    "    kf_emu.fcomb = kind == 2 ? (kf_emu_combine)fn : nullptr;\n"
    "    kf_emu.rows = rows, kf_emu.nslots = nslots, kf_emu.part = part, kf_emu.pidx = pidx;\n"
    "    kf_emu_next_kind = kind;\n"
    "    return kf_emu_launch(nullptr, block, smem_per_point, args, tasks, nblocks, nullptr, out, idx, msg, cap);\n"
    "}\n";

typedef void (*emu_kernel_fn)(const void *const *, const long long *, const long long *, void *, long long *);
typedef int (*emu_launch_fn)(emu_kernel_fn fn, int block, long long smem_per_point, const void *const *args,
                             const long long *tasks, long long ntasks, const long long *jr, void *out,
                             long long *idx, char *msg, int cap);
typedef int (*emu_split_fn)(int kind, void *fn, int block, long long smem_per_point, const void *const *args,
                            const long long *tasks, long long nblocks, long long rows, long long nslots,
                            void *part, long long *pidx, void *out, long long *idx, char *msg, int cap);

/* ==== the kernels ==== */

/* the shared reduction suite (testutil.h) */
#define AL kft_red_al
#define NAL KFT_NRED_AL
#define REDS kft_red_cases
#define NREDS KFT_NRED
#define F_SUM KFT_F_SUM
#define F_EXT KFT_F_EXT
#define F_KMIN KFT_F_KMIN
#define F_LSE KFT_F_LSE

/* Device math of most unary and binary ops, Sum over j (grid data: the
 * discontinuous ones agree exactly between float32 and double). */
static const char *const OPS[] = {
    "Exp(-SqDist(x,y))*Sin(x*b) + Cos(y*p) + Atan(x - y)",
    "Atan2(x*p, y + b) + Asin(x/IntCst(2))*Acos(b/IntCst(2))",
    "Sqrt(Abs(x*b) + p*p) + Rsqrt(SqNorm2(x - y) + IntCst(1)) + Log(Abs(a) + IntCst(1))",
    "Pow(x - y, 3)*p + Powf(Abs(x) + IntCst(1), b) + Inv(SqDist(x,y) + IntCst(1))",
    "XLogX(Abs(x*b)) + SinXDivX(x - y) + Normalize(x - y + IntCst(3))*Norm2(x)",
    "Floor(x*y) + Round(x*b, 1) + Sign(x - y) + Step(y - a) + ReLU(x - b) + Clamp(x, y, b + IntCst(1))",
    "Mod(x, IntCst(2), b) + ClampInt(x*IntCst(4), -2, 3) + IfElse(x - y, a, b) + (x < y)*p",
    /* TensorDot's loops, BSpline's triangle */
    "TensorDot(TensorProd(x, y), y, [3,3], [3], [1], [0], [0])*p + Kron(x, b, [3], [1]) + "
    "BSpline(Concat(Concat(Concat(b - IntCst(2), b), b + IntCst(1)), b + IntCst(2)), a, 2)*IntInv(2)",
    /* soft-DTW's DP: one column (the value), the table and the weights (the gradient) */
    "SoftDTW_SqDist(x, Concat(y, b), p*p + IntInv(2)) + Grad(SoftDTW_SqDist(x, y, IntInv(2)), x, a)*b",
    /* complex: the device math of ComplexExp, Exp1j, Abs, Angle, Divide and the templates */
    "ComplexAbs(ComplexExp(Concat(x, y*b))) + ComplexAngle(ComplexMult(Concat(x, y), Concat(b, a)))",
    "Concat(ComplexSum(ComplexDivide(ComplexExp1j(x - y), Concat(b*b + IntCst(1), a))), ComplexReal(Conj(Concat(x, y)))*p)",
};
#define NOPS ((int)(sizeof OPS / sizeof OPS[0]))

static const kf_sum_scheme SCHEMES[] = {KF_SUM_BLOCK, KF_SUM_DIRECT, KF_SUM_F64, KF_SUM_KAHAN};
#define NSCHEMES 4

enum { G_RED, G_SCHEME, G_OPS }; /* kernel groups */

/* One kernel: its spec, the reference kernel (the oracle, and the CUDA
 * source's compile) and, once loaded, the emulated entry point. */
typedef struct ekernel {
    kft_spec s;
    int group;
    char what[200];
    kf_kernel *ref;
    char *src;
    int batch;
    emu_kernel_fn fn;
    void *fn_part, *fn_comb; /* kf_reduce_cuda_partial and _combine (split-j) */
    long long smem; /* the kernel's kf_smem_per_point, read back from the loaded code */
} ekernel;

static const char *dtname(kf_dtype t)
{
    return t == KF_FLOAT32 ? "float32" : "float64";
}

static int add_kernel(ekernel *ks, int *n, kf_ctx *ctx, int group, const char *red, const char *f,
                      const char *f2, int K, int axis, kf_dtype dt, kf_sum_scheme scheme)
{
    ekernel *k = &ks[*n];
    memset(k, 0, sizeof *k);
    k->s = (kft_spec){f, AL, NAL, red, axis, dt, K, f2, scheme};
    k->group = group;
    if (!(k->ref = kft_compile(ctx, &k->s, KF_JIT_REFERENCE)))
        return -1;
    char sch[32] = "";
    if (k->ref->red.id == KFC_RED_SUM && dt == KF_FLOAT32)
        snprintf(sch, sizeof sch, " (sum %s)", kf_sum_scheme_name(k->ref->red.sum_scheme));
    else if (K > 0)
        snprintf(sch, sizeof sch, " (K=%d)", K);
    snprintf(k->what, sizeof k->what, "%s of %s%s%s, %s%s axis %d", red, f, f2 ? " with " : "", f2 ? f2 : "",
             dtname(dt), sch, axis);
    char msg[512];
    if (kfr_cuda_text(k->ref, 0, NULL, &k->src, msg, sizeof msg) != KF_OK) {
        fprintf(stderr, "  emit CUDA %s: %s\n", k->what, msg);
        kf_kernel_free(k->ref);
        k->ref = NULL;
        return -1;
    }
    (*n)++;
    return 0;
}

/* ==== building and loading the batches ==== */

#define NBATCH 2 /* compiled in parallel: the CI machine has 2 cores */
#define SELF_BASE 1000 /* namespace numbers of the self-test kernels */

/* Hand-written kernels that check the emulator itself. */
enum { SELF_RING, SELF_DIVERGE, SELF_OVERRUN, SELF_POISON, NSELF };
#define SELF_HEAD                                                                                  \
    "extern \"C\" __device__ const long long kf_smem_per_point = 8;\n"                             \
    "extern \"C\" __global__ void kf_reduce_cuda(const void *const *args, const long long *tasks,\n" \
    "                                          const long long *jr, void *out, long long *idx)\n"   \
    "{\n"                                                                                          \
    "    extern __shared__ double kf_smem[];\n"                                                    \
    "    const long long *t = tasks + 4 * (long long)blockIdx.x;\n"                                \
    "    const long long row = t[0] + threadIdx.x;\n"                                              \
    "    double *o = (double *)out;\n"
static const char *const SELF_SRC[NSELF] = {
    /* each thread reads its neighbour's slot, 50 times: right only when
     * the barrier really waits for every thread */
    SELF_HEAD "    double acc = 0;\n"
              "    for (int rep = 0; rep < 50; rep++) {\n"
              "        kf_smem[threadIdx.x] = (double)(row * 100 + rep);\n"
              "        __syncthreads();\n"
              "        acc += kf_smem[(threadIdx.x + 1) % blockDim.x];\n"
              "        __syncthreads();\n"
              "    }\n"
              "    if (row < t[1])\n"
              "        o[row] = acc;\n"
              "}\n",
    /* a barrier thread 0 skips */
    SELF_HEAD "    if (threadIdx.x != 0)\n"
              "        __syncthreads();\n"
              "    if (row < t[1])\n"
              "        o[row] = 1;\n"
              "}\n",
    /* a write one point past the block's shared memory */
    SELF_HEAD "    if (threadIdx.x == 0)\n"
              "        kf_smem[blockDim.x] = 1;\n"
              "    if (row < t[1])\n"
              "        o[row] = 1;\n"
              "}\n",
    /* reads a slot nobody loaded */
    SELF_HEAD "    if (row < t[1])\n"
              "        o[row] = kf_smem[threadIdx.x];\n"
              "}\n",
};

static const char *const RENAMED[] = {"kf_reduce_cuda", "kf_smem_per_point", "KF_SMEM_PER_POINT"};
#define NRENAMED 3

/* Appends s with every name of RENAMED followed by _n (the C-linkage names
 * of all the batch's kernels share one namespace), then an #undef of each
 * macro s defines (the dtypes' KF_T math macros differ). */
static void append_kernel(kfc_buf *b, const char *s, int n)
{
    kfc_buf_printf(b, "namespace kfb%d {\n", n);
    for (const char *p = s; *p;) {
        int k = 0;
        while (k < NRENAMED && strncmp(p, RENAMED[k], strlen(RENAMED[k])))
            k++;
        if (k < NRENAMED) {
            kfc_buf_printf(b, "%s_%d", RENAMED[k], n);
            p += strlen(RENAMED[k]);
        } else {
            const char *e = p + 1;
            while (*e && *e != 'k' && *e != 'K')
                e++;
            kfc_buf_printf(b, "%.*s", (int)(e - p), p);
            p = e;
        }
    }
    kfc_buf_printf(b, "}\n");
    for (const char *p = s; (p = strstr(p, "#define ")); p++) {
        if (p != s && p[-1] != '\n')
            continue;
        const char *q = p + 8, *e = q;
        while (*e == '_' || (*e >= 'A' && *e <= 'Z') || (*e >= 'a' && *e <= 'z') || (*e >= '0' && *e <= '9'))
            e++;
        kfc_buf_printf(b, "#undef %.*s\n", (int)(e - q), q);
    }
}

/* Starts argv with stdout and stderr into log (NULL: /dev/null). */
static int spawn(char *const argv[], const char *log, pid_t *pid)
{
    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa))
        return -1;
    posix_spawn_file_actions_addopen(&fa, 1, log ? log : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    int rc = posix_spawnp(pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    return rc ? -1 : 0;
}

/* 1 when the child exited with status 0. */
static int wait_ok(pid_t pid)
{
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return 0;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* The host C++ compiler: g++, else clang++ (which scripts/install-deps.sh
 * brings with clang); NULL when neither runs. */
static char *find_cxx(void)
{
    static char *const CXX[] = {"g++", "clang++"};
    for (int k = 0; k < 2; k++) {
        char *argv[] = {CXX[k], "--version", NULL};
        pid_t pid;
        if (spawn(argv, NULL, &pid) == 0 && wait_ok(pid))
            return CXX[k];
    }
    return NULL;
}

typedef struct emu {
    char dir[512];
    char path[NBATCH][3][600]; /* .cpp, .so, .log */
    void *so[NBATCH];
    emu_launch_fn launch[NBATCH];
    emu_split_fn split[NBATCH];
    emu_kernel_fn self[NSELF]; /* in batch 0 */
} emu;

static void emu_free(emu *E)
{
    for (int b = 0; b < NBATCH; b++) {
        if (E->so[b])
            dlclose(E->so[b]);
        for (int f = 0; f < 3; f++)
            if (E->path[b][f][0])
                unlink(E->path[b][f]);
    }
    if (E->dir[0])
        rmdir(E->dir);
    memset(E, 0, sizeof *E);
}

static void print_file(const char *path)
{
    char *s = kft_read_file(path);
    if (s)
        fprintf(stderr, "%.4000s\n", s);
    free(s);
}

/* Writes the batches, compiles them in parallel, loads them and resolves
 * every kernel's entry point and kf_smem_per_point. Returns 0 or -1. */
static int emu_build(emu *E, char *cxx, ekernel *ks, int nk)
{
    memset(E, 0, sizeof *E);
    const char *tmp = getenv("TMPDIR");
    snprintf(E->dir, sizeof E->dir, "%s/kf-cuda-emu-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(E->dir)) {
        fprintf(stderr, "  mkdtemp %s failed\n", E->dir);
        E->dir[0] = 0;
        return -1;
    }
    pid_t pid[NBATCH];
    int started[NBATCH] = {0}, ok = 1;
    for (int b = 0; b < NBATCH && ok; b++) {
        static const char *const ext[3] = {"cpp", "so", "log"};
        for (int f = 0; f < 3; f++)
            snprintf(E->path[b][f], sizeof E->path[b][f], "%s/batch%d.%s", E->dir, b, ext[f]);
        kfc_buf src = {0};
        kfc_buf_printf(&src, "%s", SHIM);
        for (int k = 0; k < nk; k++)
            if (k % NBATCH == b) {
                ks[k].batch = b;
                append_kernel(&src, ks[k].src, k);
            }
        for (int k = 0; b == 0 && k < NSELF; k++)
            append_kernel(&src, SELF_SRC[k], SELF_BASE + k);
        FILE *f = src.oom ? NULL : fopen(E->path[b][0], "w");
        ok = f && fwrite(src.s, 1, src.len, f) == src.len;
        if (f)
            ok &= fclose(f) == 0;
        free(src.s);
        if (!ok) {
            fprintf(stderr, "  cannot write %s\n", E->path[b][0]);
            break;
        }
        char *argv[16] = {cxx, "-O1", "-shared", "-fPIC", "-std=c++17", "-ffp-contract=off", "-pthread"};
        int na = 7;
#ifdef __SANITIZE_ADDRESS__
        /* Under ASan (make test's second run) the kernels are checked too: a
         * read past an input or output stops the test. Only with g++, whose
         * runtime the test binary (built by cc = gcc) has loaded. */
        if (!strcmp(cxx, "g++")) {
            argv[na++] = "-fsanitize=address,undefined";
            argv[na++] = "-fno-sanitize-recover=undefined";
            argv[na++] = "-fno-omit-frame-pointer";
        }
#endif
        argv[na++] = "-o";
        argv[na++] = E->path[b][1];
        argv[na++] = E->path[b][0];
        argv[na] = NULL;
        ok = spawn(argv, E->path[b][2], &pid[b]) == 0;
        started[b] = ok;
    }
    for (int b = 0; b < NBATCH; b++)
        if (started[b] && !wait_ok(pid[b])) {
            fprintf(stderr, "  %s failed on batch %d (%s):\n", cxx, b, E->path[b][0]);
            print_file(E->path[b][2]);
            ok = 0;
        }
    for (int b = 0; b < NBATCH && ok; b++) {
        if (!(E->so[b] = dlopen(E->path[b][1], RTLD_NOW | RTLD_LOCAL))) {
            fprintf(stderr, "  dlopen %s: %s\n", E->path[b][1], dlerror());
            ok = 0;
        } else if (!(E->launch[b] = (emu_launch_fn)dlsym(E->so[b], "kf_emu_launch")) ||
                   !(E->split[b] = (emu_split_fn)dlsym(E->so[b], "kf_emu_launch_split"))) {
            fprintf(stderr, "  %s has no kf_emu_launch or kf_emu_launch_split\n", E->path[b][1]);
            ok = 0;
        }
    }
    char name[64];
    for (int k = 0; k < nk && ok; k++) {
        void *so = E->so[ks[k].batch];
        snprintf(name, sizeof name, "kf_reduce_cuda_%d", k);
        ks[k].fn = (emu_kernel_fn)dlsym(so, name);
        snprintf(name, sizeof name, "kf_smem_per_point_%d", k);
        const long long *sm = dlsym(so, name);
        ok = ks[k].fn && sm;
        snprintf(name, sizeof name, "kf_reduce_cuda_%d_partial", k);
        ok = ok && (ks[k].fn_part = dlsym(so, name)) != NULL;
        snprintf(name, sizeof name, "kf_reduce_cuda_%d_combine", k);
        ok = ok && (ks[k].fn_comb = dlsym(so, name)) != NULL;
        if (ok)
            ks[k].smem = *sm;
        else
            fprintf(stderr, "  %s: an entry point (%s) or kf_smem_per_point missing\n", ks[k].what, name);
    }
    for (int k = 0; k < NSELF && ok; k++) {
        snprintf(name, sizeof name, "kf_reduce_cuda_%d", SELF_BASE + k);
        ok = (E->self[k] = (emu_kernel_fn)dlsym(E->so[0], name)) != NULL;
    }
    return ok ? 0 : -1;
}

/* ==== the cases (independent of the emulator) ==== */

/* One case: a kernel on M x N (data of exactly these sizes: one()), dense
 * or over a pattern, launched with `block` threads per block. */
typedef struct ccase {
    const char *kind;
    int block;
    int64_t M, N;
    const kf_ranges *rg; /* NULL: dense */
    int tthreads;        /* ranges: the thread count kfr_ranges_tasks cuts for */
    int grid;            /* data on the 1/16 grid (kft_data_make) */
    int nan;             /* non-finite inputs: poison()'s NAN_* bits, or 0 */
    int nchunks;         /* > 0: split-j, the inner range in this many chunks (dense only) */
} ccase;

/* How a launch is executed: kernel k on case c's sizes (inputs d: M or N
 * rows per variable, by its cat), one block of c->block threads per task of
 * tasks[0..4 ntasks), inner ranges jr[0..2 njr), outputs out and idx (host
 * memory, rows * valdim and rows * idxdim; NULL when that dim is 0). The
 * emulator runs it in place; a GPU runner copies to the device and back.
 * Returns 0, or -1 with a message. */
typedef struct runner runner;
struct runner {
    int (*launch)(runner *R, const ekernel *k, const ccase *c, const kft_data *d, const int64_t *tasks,
                  int64_t ntasks, const int64_t *jr, int64_t njr, void *out, int64_t *idx, char *msg,
                  size_t cap);
    /* Split-j: the partial kernel over tasks[0..5 ntasks) into part/pidx
     * (host memory: nchunks * rows rows of kfc_skel_partial(&k->ref->red),
     * pidx NULL when nx == 0), then the combine kernel into out/idx, blocks
     * of c->block threads for both. Returns 0, or -1 with a message. */
    int (*split)(runner *R, const ekernel *k, const ccase *c, const kft_data *d, const int64_t *tasks,
                 int64_t ntasks, int64_t rows, void *part, int64_t *pidx, void *out, int64_t *idx, char *msg,
                 size_t cap);
    emu *E;
    int64_t launches;
};

static int emu_launch(runner *R, const ekernel *k, const ccase *c, const kft_data *d, const int64_t *tasks,
                      int64_t ntasks, const int64_t *jr, int64_t njr, void *out, int64_t *idx, char *msg,
                      size_t cap)
{
    (void)njr;
    R->launches++;
    return R->E->launch[k->batch](k->fn, c->block, k->smem, (const void *const *)d->arr, (const long long *)tasks,
                                  (long long)ntasks, (const long long *)jr, out, (long long *)idx, msg,
                                  (int)cap);
}

static int emu_split(runner *R, const ekernel *k, const ccase *c, const kft_data *d, const int64_t *tasks,
                     int64_t ntasks, int64_t rows, void *part, int64_t *pidx, void *out, int64_t *idx, char *msg,
                     size_t cap)
{
    emu_split_fn f = R->E->split[k->batch];
    R->launches += 2;
    if (f(1, k->fn_part, c->block, k->smem, (const void *const *)d->arr, (const long long *)tasks,
          (long long)ntasks, (long long)rows, c->nchunks, part, (long long *)pidx, NULL, NULL, msg, (int)cap))
        return -1;
    return f(2, k->fn_comb, c->block, 0, NULL, NULL, (rows + c->block - 1) / c->block, (long long)rows,
             c->nchunks, part, (long long *)pidx, out, (long long *)idx, msg, (int)cap);
}

#define GARBAGE 0x5a /* byte pattern prefilled into outputs: unwritten slots show */
#define GUARD 64     /* rows past the last one that must stay garbage (a block of 64) */
#define MAX_PRINTED 4



typedef enum { CL_SUM, CL_EXTREME, CL_KMIN, CL_LSE, CL_SOFTMAX, CL_MAXSHIFT } red_class;

static red_class classify(int id)
{
    switch (id) {
    case KFC_RED_SUM: return CL_SUM;
    case KFC_RED_KMIN: case KFC_RED_ARGKMIN: case KFC_RED_KMIN_ARGKMIN: return CL_KMIN;
    case KFC_RED_LOGSUMEXP: case KFC_RED_LOGSUMEXPWEIGHT: return CL_LSE;
    case KFC_RED_SUMSOFTMAXWEIGHT: return CL_SOFTMAX;
    case KFC_RED_MAX_SUMSHIFTEXP: return CL_MAXSHIFT;
    default: return CL_EXTREME;
    }
}

/* testutil.c's rule: non-finite expected values exactly, else within tol
 * times (|expected| + scale); a non-finite scale counts as 0. */
static int close_enough(double got, double exp, double scale, double tol)
{
    if (isnan(exp))
        return isnan(got);
    if (isinf(exp))
        return got == exp;
    if (!isfinite(got))
        return 0;
    if (!(scale >= 0 && scale < INFINITY))
        scale = 0;
    return fabs(got - exp) <= tol * (fabs(exp) + scale);
}

/* The running max with a sticky NaN (as the reference's Max of Abs(f)). */
static double upd_max(double m, double a)
{
    return isnan(m) ? m : isnan(a) || a > m ? a : m;
}

/* Everything compare() needs about one case. */
typedef struct cmp {
    const ekernel *k;
    const ccase *c;
    const kft_data *d;
    const int64_t **rjr; /* per output row: its list of inner ranges */
    int64_t *rnr;
    double *scratch, *fv, *gv;
    int printed;
} cmp;

static void eval_at(cmp *m, int32_t root, int64_t row, int64_t t, double *out)
{
    const kf_kernel *r = m->k->ref;
    int64_t i = r->red.axis == 1 ? row : t, j = r->red.axis == 1 ? t : row;
    kfk_ref_eval(&r->prog, root, r->red.dtype, (const void *const *)m->d->arr, i, j, m->scratch, out);
}

static void mismatch(cmp *m, int64_t row, const char *what, int64_t q, double got, double exp)
{
    if (m->printed++ >= MAX_PRINTED)
        return;
    fprintf(stderr, "  MISMATCH %s [%s, block %d, M=%lld N=%lld] row %lld %s[%lld]: got %.17g expected %.17g\n",
            m->k->what, m->c->kind, m->c->block, (long long)m->c->M, (long long)m->c->N, (long long)row,
            what, (long long)q, got, exp);
}

static int in_lists(const cmp *m, int64_t row, int64_t t)
{
    for (int64_t q = 0; q < m->rnr[row]; q++)
        if (t >= m->rjr[row][2 * q] && t < m->rjr[row][2 * q + 1])
            return 1;
    return 0;
}

/* The per-slot scales of testutil.h for one row, from the formula (and
 * formula2) evaluated over the row's lists: sc[valdim] for the values and
 * isc[D] (Max_j |f_c|) for the index ties. */
static void row_scales(cmp *m, int64_t row, double *sc, double *isc)
{
    const kf_kernel *r = m->k->ref;
    int64_t D = r->red.D, E = r->red.E, valdim = r->red.valdim;
    red_class cl = classify(r->red.id);
    int32_t root2 = kfc_red_info[r->red.id].formula2 ? r->prog.root2 : -1;
    double sabs[64] = {0}, mabs[64] = {0}, gmax[64] = {0}, s3[64] = {0}, mf = -INFINITY;
    for (int pass = 0; pass < (cl == CL_MAXSHIFT ? 2 : 1); pass++)
        for (int64_t q = 0; q < m->rnr[row]; q++)
            for (int64_t t = m->rjr[row][2 * q]; t < m->rjr[row][2 * q + 1]; t++) {
                eval_at(m, r->prog.root, row, t, m->fv);
                if (root2 >= 0)
                    eval_at(m, root2, row, t, m->gv);
                else
                    for (int64_t c = 0; c < E; c++)
                        m->gv[c] = 1;
                if (pass == 1) {
                    for (int64_t c = 0; c < E; c++)
                        s3[c] += exp(m->fv[0] - mf) * fabs(m->gv[c]);
                    continue;
                }
                for (int64_t c = 0; c < D; c++) {
                    sabs[c] += fabs(m->fv[c]);
                    mabs[c] = upd_max(mabs[c], fabs(m->fv[c]));
                }
                for (int64_t c = 0; c < E; c++)
                    gmax[c] = upd_max(gmax[c], fabs(m->gv[c]));
                mf = upd_max(mf, m->fv[0]);
            }
    for (int64_t q = 0; q < valdim; q++)
        switch (cl) {
        case CL_SUM: sc[q] = sabs[q]; break;
        case CL_EXTREME: sc[q] = mabs[q]; break;
        case CL_KMIN: sc[q] = mabs[q % D]; break;
        case CL_LSE: sc[q] = 1 + mabs[0]; break;
        case CL_SOFTMAX: sc[q] = gmax[q] * (1 + mabs[0]); break;
        case CL_MAXSHIFT: sc[q] = q == 0 ? 1 + mabs[0] : s3[q - 1] * (1 + mabs[0]); break;
        }
    for (int64_t c = 0; c < D; c++)
        isc[c] = mabs[c];
}

/* Compares the launch's rows with the reference's; returns the mismatches. */
static int compare(cmp *m, int64_t rows, int64_t inner, const void *got, const int64_t *gidx, const void *exp,
                   const int64_t *eidx)
{
    const kf_kernel *r = m->k->ref;
    kf_dtype dt = r->red.dtype;
    int64_t D = r->red.D, valdim = r->red.valdim, idxdim = r->red.idxdim;
    double tol = kft_tol(dt), sc[256], isc[64];
    int bad = 0;
    for (int64_t row = 0; row < rows; row++) {
        row_scales(m, row, sc, isc);
        for (int64_t q = 0; q < valdim; q++) {
            double g = kft_get(got, dt, row * valdim + q), e = kft_get(exp, dt, row * valdim + q);
            if (!close_enough(g, e, sc[q], tol))
                bad++, mismatch(m, row, "value", q, g, e);
        }
        for (int64_t q = 0; q < idxdim; q++) {
            int64_t g = gidx[row * idxdim + q], e = eidx[row * idxdim + q];
            if (g == e)
                continue;
            /* a different index is fine only for a tie in value */
            int64_t c = q % D;
            int ok = e >= 0 && g >= 0 && g < inner && in_lists(m, row, g);
            if (ok) {
                eval_at(m, r->prog.root, row, e, m->fv);
                double fe = m->fv[c];
                eval_at(m, r->prog.root, row, g, m->fv);
                double fg = m->fv[c];
                if (dt == KF_FLOAT32)
                    fe = (float)fe, fg = (float)fg;
                ok = isfinite(fe) && isfinite(fg) && fabs(fg - fe) <= tol * (fabs(fe) + isc[c]);
            }
            if (!ok)
                bad++, mismatch(m, row, "index", q, (double)g, (double)e);
        }
    }
    return bad;
}

/* The task table against the launch contract (emit_cuda.c's header): rows
 * covered in order exactly once, 0 < row1 - row0 <= block, q0 <= q1 within
 * jr, and each task's list the one its rows have. Returns the problems. */
static int check_tasks(const cmp *m, const int64_t *tasks, int64_t ntasks, int64_t rows, int block,
                       const int64_t *jr, int64_t njr)
{
    int64_t next = 0;
    for (int64_t b = 0; b < ntasks; b++) {
        const int64_t *t = tasks + 4 * b;
        int ok = t[0] == next && t[1] > t[0] && t[1] - t[0] <= block && t[1] <= rows && 0 <= t[2] &&
                 t[2] <= t[3] && t[3] <= njr;
        for (int64_t r = t[0]; ok && r < t[1]; r++)
            ok = m->rnr[r] == t[3] - t[2] && (m->rnr[r] == 0 || m->rjr[r] == jr + 2 * t[2]);
        if (!ok) {
            fprintf(stderr, "  %s [%s, block %d, M=%lld N=%lld]: bad task %lld {%lld, %lld, %lld, %lld}\n",
                    m->k->what, m->c->kind, block, (long long)m->c->M, (long long)m->c->N, (long long)b,
                    (long long)t[0], (long long)t[1], (long long)t[2], (long long)t[3]);
            return 1;
        }
        next = t[1];
    }
    if (next != rows) {
        fprintf(stderr, "  %s [%s]: the tasks cover %lld of %lld rows\n", m->k->what, m->c->kind,
                (long long)next, (long long)rows);
        return 1;
    }
    return 0;
}

/* Slots of a buffer of `rows` rows of dim slots: the rows, then GUARD rows
 * and 8 slots that must stay garbage (a block's worth of rows: an inactive
 * thread that writes lands there). */
static size_t slots(int64_t rows, int64_t dim)
{
    return (size_t)((rows + GUARD) * dim + 8);
}

/* Output buffers of `rows` rows and their guards, all garbage. */
static int out_alloc(const kf_kernel *r, int64_t rows, void **out, int64_t **idx)
{
    size_t es = r->red.dtype == KF_FLOAT32 ? 4 : 8;
    size_t ob = slots(rows, r->red.valdim) * es, ib = slots(rows, r->red.idxdim) * 8;
    *out = malloc(ob);
    *idx = malloc(ib);
    if (!*out || !*idx)
        return -1;
    memset(*out, GARBAGE, ob);
    memset(*idx, GARBAGE, ib);
    return 0;
}

/* The guards after `rows` rows are still garbage. */
static int guards_ok(const kf_kernel *r, int64_t rows, const void *out, const int64_t *idx)
{
    size_t es = r->red.dtype == KF_FLOAT32 ? 4 : 8;
    int64_t V = r->red.valdim, X = r->red.idxdim;
    const unsigned char *o = (const unsigned char *)out, *x = (const unsigned char *)idx;
    for (size_t q = (size_t)(rows * V) * es; q < slots(rows, V) * es; q++)
        if (o[q] != GARBAGE)
            return 0;
    for (size_t q = (size_t)(rows * X) * 8; q < slots(rows, X) * 8; q++)
        if (x[q] != GARBAGE)
            return 0;
    return 1;
}

/* Runs one case: reference rows, task table, launch, comparison. Returns
 * the number of problems (0: pass). */
static int run_case(runner *R, const ekernel *k, const ccase *c, const kft_data *d)
{
    kf_kernel *ref = k->ref;
    int axis = ref->red.axis;
    int64_t rows = axis == 1 ? c->M : c->N, inner = axis == 1 ? c->N : c->M;
    int64_t valdim = ref->red.valdim, idxdim = ref->red.idxdim, D = ref->red.D, E = ref->red.E;
    cmp m = {.k = k, .c = c, .d = d};
    void *eout = NULL, *gout = NULL;
    int64_t *eidx = NULL, *gidx = NULL, *tasks = NULL, ntasks = 0, ncpu = 0, njr = 1;
    kfr_task *cpu = NULL;
    const int64_t *jr;
    int64_t dense_jr[2] = {0, inner};
    int bad = 1, st;
    char msg[512];
    m.rjr = malloc(sizeof *m.rjr * (size_t)(rows + 1));
    m.rnr = malloc(sizeof *m.rnr * (size_t)(rows + 1));
    m.scratch = malloc(sizeof(double) * (kfk_ref_scratch_size(&ref->prog) + 1));
    m.fv = malloc(sizeof(double) * (size_t)(D + E + 1));
    m.gv = m.fv ? m.fv + D : NULL;
    if (!m.rjr || !m.rnr || !m.scratch || !m.fv || out_alloc(ref, rows, &eout, &eidx) ||
        out_alloc(ref, rows, &gout, &gidx))
        goto done;
    /* the expected rows */
    if (c->rg)
        st = kf_run_ranges(ref, c->M, c->N, (const void *const *)d->arr, d->nargs, c->rg, valdim ? eout : NULL,
                           idxdim ? eidx : NULL);
    else
        st = kf_run(ref, c->M, c->N, (const void *const *)d->arr, d->nargs, valdim ? eout : NULL,
                    idxdim ? eidx : NULL);
    if (st != KF_OK) {
        fprintf(stderr, "  %s [%s]: the reference failed: %s\n", k->what, c->kind, kf_errmsg(ref->ctx));
        goto done;
    }
    /* the task table the GPU path launches, and each row's list */
    if (c->rg) {
        jr = axis == 1 ? c->rg->redranges_j : c->rg->redranges_i;
        njr = axis == 1 ? c->rg->nredj : c->rg->nredi;
        if ((st = kfr_ranges_check(ref->ctx, c->rg, axis, rows, inner)) != KF_OK ||
            (st = kfr_ranges_tasks(ref->ctx, c->rg, axis, rows, c->tthreads, &cpu, &ncpu)) != KF_OK) {
            fprintf(stderr, "  %s [%s]: the pattern: %s\n", k->what, c->kind, kf_errmsg(ref->ctx));
            goto done;
        }
        for (int64_t t = 0; t < ncpu; t++)
            for (int64_t r = cpu[t].r0; r < cpu[t].r1; r++)
                m.rjr[r] = cpu[t].jr, m.rnr[r] = cpu[t].nr;
        st = kfr_cuda_tasks_ranges(cpu, ncpu, jr, c->block, &tasks, &ntasks);
    } else {
        jr = dense_jr;
        for (int64_t r = 0; r < rows; r++)
            m.rjr[r] = dense_jr, m.rnr[r] = 1;
        st = kfr_cuda_tasks_dense(rows, c->block, &tasks, &ntasks);
    }
    if (st != KF_OK) {
        fprintf(stderr, "  %s [%s]: the task table: %s\n", k->what, c->kind, kf_status_name(st));
        goto done;
    }
    if (check_tasks(&m, tasks, ntasks, rows, c->block, jr, njr))
        goto done;
    if (rows == 0) { /* no launch: a grid of 0 blocks is an invalid configuration */
        bad = ntasks != 0 || tasks != NULL;
        if (bad)
            fprintf(stderr, "  %s [%s]: %lld tasks for 0 rows\n", k->what, c->kind, (long long)ntasks);
        goto done;
    }
    if (R->launch(R, k, c, d, tasks, ntasks, jr, njr, valdim ? gout : NULL, idxdim ? gidx : NULL, msg,
                  sizeof msg)) {
        fprintf(stderr, "  %s [%s, block %d, M=%lld N=%lld]: launch failed: %s\n", k->what, c->kind, c->block,
                (long long)c->M, (long long)c->N, msg);
        goto done;
    }
    bad = compare(&m, rows, inner, gout, gidx, eout, eidx);
    if (!guards_ok(ref, rows, gout, gidx)) {
        fprintf(stderr, "  %s [%s, block %d, M=%lld N=%lld]: written past the last row\n", k->what, c->kind,
                c->block, (long long)c->M, (long long)c->N);
        bad++;
    }
    if (m.printed > MAX_PRINTED)
        fprintf(stderr, "  ... %d mismatches in all\n", m.printed);
done:
    free(m.rjr), free(m.rnr), free(m.scratch), free(m.fv);
    free(eout), free(eidx), free(gout), free(gidx), free(tasks), free(cpu);
    return bad;
}

/* The split-j task table against kfr_cuda_tasks_split's contract: per
 * chunk, in order, the row blocks covering every row once (0 < row1 - row0
 * <= block); chunks contiguous, non-empty, from 0 to inner; slot = chunk. */
static int check_split_tasks(const ekernel *k, const ccase *c, const int64_t *tasks, int64_t ntasks,
                             int64_t rows, int64_t inner)
{
    int64_t nb = (rows + c->block - 1) / c->block, t = 0, j = 0;
    int ok = ntasks == nb * c->nchunks;
    for (int64_t ch = 0; ok && ch < c->nchunks; ch++) {
        int64_t next = 0, j0 = tasks[5 * t + 2], j1 = tasks[5 * t + 3];
        ok = j0 == j && j1 > j0;
        for (int64_t b = 0; ok && b < nb; b++, t++) {
            const int64_t *e = tasks + 5 * t;
            ok = e[0] == next && e[1] > e[0] && e[1] - e[0] <= c->block && e[1] <= rows && e[2] == j0 &&
                 e[3] == j1 && e[4] == ch;
            next = e[1];
        }
        ok = ok && next == rows;
        j = j1;
    }
    if (!ok || j != inner) {
        fprintf(stderr, "  %s [%s, block %d, M=%lld N=%lld, %d chunks]: bad split task table (task %lld of %lld)\n",
                k->what, c->kind, c->block, (long long)c->M, (long long)c->N, c->nchunks, (long long)t,
                (long long)ntasks);
        return 1;
    }
    return 0;
}

/* Elements of `n` bytes of buf[0..count) still all GARBAGE (never written),
 * or guard bytes after them touched: the problems. */
#define PGUARD 64
static int64_t unwritten(const void *buf, int64_t count, int n)
{
    const unsigned char *p = buf;
    int64_t bad = 0;
    for (int64_t e = 0; e < count; e++) {
        int q = 0;
        while (q < n && p[e * n + q] == GARBAGE)
            q++;
        bad += q == n;
    }
    for (int q = 0; q < PGUARD; q++)
        bad += p[count * n + q] != GARBAGE;
    return bad;
}

/* A split-j case (c->nchunks chunks of a dense run): partial + combine
 * against the reference like run_case; the partial buffers entirely written
 * and nothing past them; and for Max/Min/KMin and their Arg forms, exactly
 * (bit for bit, indices included) what kf_reduce_cuda gives unsplit: the
 * merge must follow the sequential tie and NaN rules, not merely land
 * within tolerance. Returns the number of problems. */
static int run_split_case(runner *R, const ekernel *k, const ccase *c, const kft_data *d)
{
    kf_kernel *ref = k->ref;
    int axis = ref->red.axis;
    int64_t rows = axis == 1 ? c->M : c->N, inner = axis == 1 ? c->N : c->M;
    int64_t valdim = ref->red.valdim, idxdim = ref->red.idxdim, D = ref->red.D, E = ref->red.E;
    enum kfc_fam fam = kfc_red_family(ref->red.id);
    int exact = fam == KFC_FAM_MAXMIN || fam == KFC_FAM_KMIN;
    kfc_partial pp = kfc_skel_partial(&ref->red);
    size_t es = ref->red.dtype == KF_FLOAT32 ? 4 : 8;
    cmp m = {.k = k, .c = c, .d = d};
    void *eout = NULL, *gout = NULL, *uout = NULL, *part = NULL;
    int64_t *eidx = NULL, *gidx = NULL, *uidx = NULL, *pidx = NULL, *tasks = NULL, *utasks = NULL, ntasks = 0,
            nut = 0;
    int64_t dense_jr[2] = {0, inner}, np = c->nchunks * rows;
    int bad = 1;
    char msg[512];
    m.rjr = malloc(sizeof *m.rjr * (size_t)(rows + 1));
    m.rnr = malloc(sizeof *m.rnr * (size_t)(rows + 1));
    m.scratch = malloc(sizeof(double) * (kfk_ref_scratch_size(&ref->prog) + 1));
    m.fv = malloc(sizeof(double) * (size_t)(D + E + 1));
    m.gv = m.fv ? m.fv + D : NULL;
    part = malloc((size_t)(np * pp.nv * pp.vbytes) + PGUARD);
    pidx = malloc((size_t)(np * pp.nx * 8) + PGUARD);
    if (!m.rjr || !m.rnr || !m.scratch || !m.fv || !part || !pidx || out_alloc(ref, rows, &eout, &eidx) ||
        out_alloc(ref, rows, &gout, &gidx) || out_alloc(ref, rows, &uout, &uidx))
        goto done;
    memset(part, GARBAGE, (size_t)(np * pp.nv * pp.vbytes) + PGUARD);
    memset(pidx, GARBAGE, (size_t)(np * pp.nx * 8) + PGUARD);
    for (int64_t r = 0; r < rows; r++)
        m.rjr[r] = dense_jr, m.rnr[r] = 1;
    if (kf_run(ref, c->M, c->N, (const void *const *)d->arr, d->nargs, valdim ? eout : NULL,
               idxdim ? eidx : NULL) != KF_OK) {
        fprintf(stderr, "  %s [%s]: the reference failed: %s\n", k->what, c->kind, kf_errmsg(ref->ctx));
        goto done;
    }
    if (kfr_cuda_tasks_split(rows, c->block, inner, c->nchunks, &tasks, &ntasks) != KF_OK ||
        (exact && kfr_cuda_tasks_dense(rows, c->block, &utasks, &nut) != KF_OK)) {
        fprintf(stderr, "  %s [%s]: the task tables: out of memory\n", k->what, c->kind);
        goto done;
    }
    if (check_split_tasks(k, c, tasks, ntasks, rows, inner))
        goto done;
    if (exact && R->launch(R, k, c, d, utasks, nut, dense_jr, 1, valdim ? uout : NULL, idxdim ? uidx : NULL, msg,
                           sizeof msg)) {
        fprintf(stderr, "  %s [%s, block %d, M=%lld N=%lld]: unsplit launch failed: %s\n", k->what, c->kind,
                c->block, (long long)c->M, (long long)c->N, msg);
        goto done;
    }
    if (R->split(R, k, c, d, tasks, ntasks, rows, part, pp.nx ? pidx : NULL, valdim ? gout : NULL,
                 idxdim ? gidx : NULL, msg, sizeof msg)) {
        fprintf(stderr, "  %s [%s, block %d, M=%lld N=%lld, %d chunks]: launch failed: %s\n", k->what, c->kind,
                c->block, (long long)c->M, (long long)c->N, c->nchunks, msg);
        goto done;
    }
    bad = compare(&m, rows, inner, gout, gidx, eout, eidx);
    if (!guards_ok(ref, rows, gout, gidx)) {
        fprintf(stderr, "  %s [%s, block %d, M=%lld N=%lld]: written past the last row\n", k->what, c->kind,
                c->block, (long long)c->M, (long long)c->N);
        bad++;
    }
    int64_t unw = unwritten(part, np * pp.nv, pp.vbytes) + unwritten(pidx, np * pp.nx, 8);
    if (unw) {
        fprintf(stderr, "  %s [%s, block %d, M=%lld N=%lld, %d chunks]: %lld partial slots unwritten or "
                        "written past\n", k->what, c->kind, c->block, (long long)c->M, (long long)c->N,
                c->nchunks, (long long)unw);
        bad++;
    }
    for (int64_t r = 0; exact && r < rows; r++)
        if (memcmp((char *)gout + (size_t)(r * valdim) * es, (char *)uout + (size_t)(r * valdim) * es,
                   (size_t)valdim * es) ||
            memcmp(gidx + r * idxdim, uidx + r * idxdim, (size_t)idxdim * 8)) {
            fprintf(stderr, "  %s [%s, block %d, M=%lld N=%lld, %d chunks]: row %lld differs from the unsplit "
                            "kernel's (first index %lld vs %lld)\n", k->what, c->kind, c->block, (long long)c->M,
                    (long long)c->N, c->nchunks, (long long)r, idxdim ? (long long)gidx[r * idxdim] : -2LL,
                    idxdim ? (long long)uidx[r * idxdim] : -2LL);
            bad++;
            break;
        }
    if (m.printed > MAX_PRINTED)
        fprintf(stderr, "  ... %d mismatches in all\n", m.printed);
done:
    free(m.rjr), free(m.rnr), free(m.scratch), free(m.fv), free(part), free(pidx);
    free(eout), free(eidx), free(gout), free(gidx), free(uout), free(uidx), free(tasks), free(utasks);
    return bad;
}

/* ==== the case list, and the test ==== */

/* Non-finite inputs at a few points of the outer (NAN_OUTER) and/or inner
 * (NAN_INNER) arrays: NaN, +inf, -inf, NaN; or only +-inf (NAN_INF_ONLY);
 * or +inf in the first component of EVERY inner point (NAN_ALL_INF: every
 * term ties at +-inf, so first-term rules and KMin's real-slot count show). */
enum { NAN_OUTER = 1, NAN_INNER = 2, NAN_INF_ONLY = 4, NAN_ALL_INF = 8 };
static void poison(kft_data *d, kf_dtype dt, int axis, int64_t M, int64_t N, int how)
{
    static const double V[] = {NAN, INFINITY, -INFINITY, NAN};
    static const int64_t AT[] = {2, 5, 9, 17};
    for (int v = 0; v < d->nargs; v++) {
        if (!d->arr[v] || d->cat[v] < 0 || d->cat[v] > 1)
            continue;
        int outer = (d->cat[v] == 0) == (axis == 1);
        if (!(how & (outer ? NAN_OUTER : NAN_INNER)))
            continue;
        int64_t n = d->cat[v] == 0 ? M : N;
        for (int64_t t = 0; (how & NAN_ALL_INF) && t < n; t++)
            kft_set(d->arr[v], dt, t * d->dim[v], INFINITY);
        for (int q = 0; q < 4 && !(how & NAN_ALL_INF); q++) {
            double x = how & NAN_INF_ONLY ? (q % 2 ? -INFINITY : INFINITY) : V[q];
            if (AT[q] + v < n)
                kft_set(d->arr[v], dt, (AT[q] + v) * d->dim[v] + (q + v) % d->dim[v], x);
        }
    }
}

/* Runs c on data of exactly its sizes (so that ASan sees any read past
 * them), counting into *ncases; a failing case is one failed check. */
static void one(runner *R, const ekernel *k, const ccase *c, uint64_t seed, int *ncases)
{
    (*ncases)++;
    kft_data d;
    int bad = -1;
    if (kft_data_make(&d, k->ref, c->M, c->N, -1.5, 1.5, c->grid, seed) == 0) {
        if (c->nan)
            poison(&d, k->s.dtype, k->s.axis, c->M, c->N, c->nan);
        bad = c->nchunks > 0 ? run_split_case(R, k, c, &d) : run_case(R, k, c, &d);
        kft_data_free(&d);
    }
    KFT_CHECKF(bad == 0, "%s [%s, block %d, M=%lld N=%lld, chunks %d]: %d problems", k->what, c->kind, c->block,
               (long long)c->M, (long long)c->N, c->nchunks, bad);
}

/* The emulator's own checks, on hand-written kernels. */
static void self_tests(emu *E)
{
    enum { B = 32, ROWS = 45 };
    int64_t *tasks = NULL, nt = 0;
    KFT_CHECK(kfr_cuda_tasks_dense(ROWS, B, &tasks, &nt) == KF_OK && nt == 2);
    double out[ROWS];
    long long jr[2] = {0, 0};
    char msg[512];
    for (int s = 0; s < NSELF && tasks; s++) {
        for (int r = 0; r < ROWS; r++)
            out[r] = -7;
        int rc = E->launch[0](E->self[s], B, 8, NULL, (const long long *)tasks, (long long)nt, jr, out, NULL,
                              msg, (int)sizeof msg);
        switch (s) {
        case SELF_RING:
            KFT_CHECKF(rc == 0, "%s", msg);
            for (int r = 0; r < ROWS; r++) {
                long long row0 = r / B * B, nb = row0 + (r % B + 1) % B;
                double want = 50.0 * 100 * (double)nb + 49 * 50 / 2;
                KFT_CHECKF(out[r] == want, "ring: row %d: %g, want %g", r, out[r], want);
            }
            break;
        case SELF_DIVERGE:
            KFT_CHECKF(rc != 0 && strstr(msg, "barrier"), "divergent barrier: rc %d, %s", rc, msg);
            break;
        case SELF_OVERRUN:
            KFT_CHECKF(rc != 0 && strstr(msg, "shared memory written past"), "overrun: rc %d, %s", rc, msg);
            break;
        case SELF_POISON:
            KFT_CHECKF(rc == 0, "%s", msg);
            for (int r = 0; r < ROWS; r++)
                KFT_CHECKF(isnan(out[r]), "poison: row %d: %g", r, out[r]);
            break;
        }
    }
    /* an empty grid is refused, as CUDA refuses it */
    KFT_CHECK(E->launch[0](E->self[SELF_POISON], B, 8, NULL, (const long long *)tasks, 0, jr, out, NULL, msg,
                           (int)sizeof msg) != 0);
    free(tasks);
}

/* Every case of kernel number ki (the case list above); g draws the
 * block-sparse patterns. */
static void kernel_cases(runner *R, const ekernel *k, int ki, kft_rng *g, int *ncases)
{
    int grid = k->group == G_OPS;
    uint64_t seed = 1000 * (uint64_t)ki;
    /* dense, block B in {32, 64}: sizes {0, 1, B-1, B, B+1, 3B+5}, the s-th
     * as M paired with the (s + shift)-th as N, so each size is once M and
     * once N, and the pairs differ from kernel to kernel */
    static const int BLOCKS[2] = {32, 64};
    for (int bi = 0; bi < 2; bi++) {
        int B = BLOCKS[bi];
        const int64_t S[6] = {0, 1, B - 1, B, B + 1, 3 * B + 5};
        int shift = 1 + (ki + bi) % 5;
        for (int s = 0; s < 6; s++) {
            ccase c = {"dense", B, S[s], S[(s + shift) % 6], NULL, 0, grid, 0, 0};
            one(R, k, &c, seed++, ncases);
        }
    }
    if (k->group == G_OPS)
        return; /* the ops' device math: dense is enough */
    /* split-j (partial + combine) with 2, 3 and 7 chunks: chunks longer than
     * a block and not multiples of it, chunks of 1 term (7 terms in 7
     * chunks; 9 in 7), one thread per block; grid data (values on the 1/16
     * grid: ties in value across chunks, where the earlier chunk must win);
     * NaN and inf at inner points 2, 5, 9 and 17 (+ the variable's number),
     * so in several chunks, where the first NaN must win; +-inf only (the
     * LogSumExp merge's m = +-inf guards); +inf at every inner point, in
     * 1-term chunks (all terms tie: KMin's real slots must be counted) */
    static const struct {
        const char *kind;
        int block;
        int64_t rows, inner;
        int nchunks, grid, nan, red_only;
    } SPLIT[] = {
        {"split", 32, 45, 101, 2, 0, 0, 0},
        {"split grid", 32, 33, 70, 3, 1, 0, 0},
        {"split", 32, 5, 7, 7, 0, 0, 1},
        {"split grid", 32, 34, 9, 7, 1, 0, 1},
        {"split block1", 1, 3, 10, 3, 0, 0, 1},
        {"split nan", 32, 35, 35, 7, 0, NAN_OUTER | NAN_INNER, 1},
        {"split inf", 32, 35, 35, 3, 0, NAN_INNER | NAN_INF_ONLY, 1},
        {"split all inf", 32, 5, 7, 7, 0, NAN_INNER | NAN_ALL_INF, 1},
    };
    for (size_t q = 0; q < sizeof SPLIT / sizeof SPLIT[0]; q++) {
        if (SPLIT[q].red_only && k->group != G_RED)
            continue;
        int64_t M = k->s.axis == 1 ? SPLIT[q].rows : SPLIT[q].inner;
        int64_t N = k->s.axis == 1 ? SPLIT[q].inner : SPLIT[q].rows;
        ccase c = {SPLIT[q].kind, SPLIT[q].block, M, N, NULL, 0, SPLIT[q].grid, SPLIT[q].nan, SPLIT[q].nchunks};
        one(R, k, &c, seed++, ncases);
    }
    ccase c1 = {"block1", 1, 7, 5, NULL, 0, 0, 0, 0};
    one(R, k, &c1, seed++, ncases);
    /* two patterns: many short clusters (mostly inactive threads);
     * clusters longer than a block, cut by kfr_ranges_tasks for 3 threads */
    static const struct {
        int block;
        int64_t M, N, maxlen;
        int tthreads;
    } P[2] = {{64, 101, 67, 12, 1}, {32, 150, 110, 100, 3}};
    for (int q = 0; q < 2; q++) {
        int64_t M = k->s.axis == 1 ? P[q].M : P[q].N, N = k->s.axis == 1 ? P[q].N : P[q].M;
        kft_pat p;
        if (kft_random_pat(g, M, N, P[q].maxlen, &p) != 0) {
            KFT_CHECKF(0, "out of memory");
            kft_pat_free(&p);
            continue;
        }
        kf_ranges rg = kft_pat_view(&p);
        ccase c = {"ranges", P[q].block, M, N, &rg, P[q].tthreads, 0, 0, 0};
        one(R, k, &c, seed++, ncases);
        kft_pat_free(&p);
    }
    /* non-finite inputs, every reduction, float32 on axis 1 and float64 on
     * axis 0: NaN and inf everywhere (most rows NaN: first NaN wins), in the
     * outer rows only (NaN rows among finite ones), inf in the inner points */
    if (k->group == G_RED && (k->s.dtype == KF_FLOAT32) == (k->s.axis == 1)) {
        static const struct {
            const char *kind;
            int how;
        } NANS[3] = {{"nan", NAN_OUTER | NAN_INNER},
                     {"nan outer", NAN_OUTER},
                     {"inf inner", NAN_INNER | NAN_INF_ONLY}};
        for (int q = 0; q < 3; q++) {
            ccase c = {NANS[q].kind, 32, 35, 35, NULL, 0, 0, NANS[q].how, 0};
            one(R, k, &c, seed++, ncases);
        }
    }
}

KFT_TEST(cuda_emu_kernels_vs_reference)
{
    char *cxx = find_cxx();
    if (!cxx)
        KFT_SKIP("no g++ or clang++ (the CUDA emulation compiles the kernels as host C++)");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    kf_options opt;
    kf_options_init(&opt);
    opt.threads = 2;
    opt.no_cache = 1;
    kf_ctx *ctx = kf_new(&opt);
    KFT_CHECK(ctx != NULL);
    if (!ctx)
        return;
    enum { MAXK = 2 * 2 * NREDS + 2 * NSCHEMES + 2 * NOPS };
    ekernel *ks = calloc(MAXK, sizeof *ks);
    int nk = 0, ok = ks != NULL;
    for (int dt = 0; ok && dt < 2; dt++)
        for (int axis = 1; ok && axis >= 0; axis--)
            for (int r = 0; ok && r < NREDS; r++)
                ok = add_kernel(ks, &nk, ctx, G_RED, REDS[r].name, REDS[r].f, REDS[r].f2, REDS[r].k, axis,
                                dt ? KF_FLOAT64 : KF_FLOAT32, KF_SUM_AUTO) == 0;
    for (int axis = 1; ok && axis >= 0; axis--)
        for (int s = 0; ok && s < NSCHEMES; s++)
            ok = add_kernel(ks, &nk, ctx, G_SCHEME, "Sum", F_SUM, NULL, 0, axis, KF_FLOAT32, SCHEMES[s]) == 0;
    for (int dt = 0; ok && dt < 2; dt++)
        for (int f = 0; ok && f < NOPS; f++)
            ok = add_kernel(ks, &nk, ctx, G_OPS, "Sum", OPS[f], NULL, 0, 1, dt ? KF_FLOAT64 : KF_FLOAT32,
                            KF_SUM_AUTO) == 0;
    KFT_CHECKF(ok, "a kernel failed to compile or emit (above)");
    emu E;
    memset(&E, 0, sizeof E);
    if (ok)
        ok = emu_build(&E, cxx, ks, nk) == 0;
    KFT_CHECKF(ok, "the emulation could not be built (above)");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double build_s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    runner R = {emu_launch, emu_split, &E, 0};
    int ncases = 0;
    if (ok)
        self_tests(&E);
    kft_rng g;
    kft_rng_seed(&g, 2024);
    for (int ki = 0; ok && ki < nk; ki++)
        kernel_cases(&R, &ks[ki], ki, &g, &ncases);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double all_s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    if (ok)
        printf("cuda_emu: %d kernels (%s and setup %.1f s), %d cases, %lld launches, %.1f s in all\n", nk,
               cxx, build_s, ncases, (long long)R.launches, all_s);
    emu_free(&E);
    for (int k = 0; k < nk; k++)
        kf_kernel_free(ks[k].ref), free(ks[k].src);
    free(ks);
    kf_free(ctx);
}
