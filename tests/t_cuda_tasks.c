/* t_cuda_tasks.c -- the split-j plan and task tables of runtime/cuda/cuda_tasks.c
 * (docs/cuda.md, "Split-j"): pure functions, no GPU or compiler needed. The
 * kernels that consume the tables run in tests/t_cuda_emu.c. */
#include <stdlib.h>

#include "runtime/cuda/cuda_tasks.h"
#include "harness.h"

KFT_TEST(cuda_split_plan)
{
    /* 1000 rows (4 blocks of 256) by 10^6 on an H100 (132 SMs): ceil(264 / 4) = 66 chunks */
    KFT_CHECK(kfr_cuda_split_plan(4, 1000000, 132) == 66);
    /* the inner range bounds it: 2048 points per chunk at least */
    KFT_CHECK(kfr_cuda_split_plan(4, 20000, 132) == 9);
    KFT_CHECK(kfr_cuda_split_plan(1, 4096, 132) == 2);
    KFT_CHECK(kfr_cuda_split_plan(1, 4095, 132) == 1);
    /* enough row blocks: no split (ceil(2 SMs / blocks) < 2 from 2 SMs blocks on) */
    KFT_CHECK(kfr_cuda_split_plan(263, 1000000, 132) == 2);
    KFT_CHECK(kfr_cuda_split_plan(264, 1000000, 132) == 1);
    KFT_CHECK(kfr_cuda_split_plan(100000, 1000000, 132) == 1);
    /* one block of rows, one SM: 2 chunks */
    KFT_CHECK(kfr_cuda_split_plan(1, 1 << 20, 1) == 2);
    /* degenerate arguments */
    KFT_CHECK(kfr_cuda_split_plan(0, 1000000, 132) == 1);
    KFT_CHECK(kfr_cuda_split_plan(4, 0, 132) == 1);
    KFT_CHECK(kfr_cuda_split_plan(4, 1000000, 0) == 1);
    /* huge inner ranges do not overflow */
    KFT_CHECK(kfr_cuda_split_plan(1, (int64_t)1 << 62, 132) == 264);
}

KFT_TEST(cuda_split_chunks)
{
    /* contiguous, in order, non-empty, lengths differing by at most 1 */
    static const int64_t INNER[] = {1, 2, 7, 9, 100, 101, 4096, 1000003};
    for (size_t a = 0; a < sizeof INNER / sizeof INNER[0]; a++)
        for (int64_t n = 1; n <= INNER[a] && n <= 70; n++) {
            int64_t next = 0, lo = INNER[a], hi = 0;
            for (int64_t c = 0; c < n; c++) {
                int64_t j0, j1;
                kfr_cuda_split_chunk(INNER[a], n, c, &j0, &j1);
                KFT_CHECKF(j0 == next && j1 > j0, "inner %lld, %lld chunks: chunk %lld is [%lld, %lld)",
                           (long long)INNER[a], (long long)n, (long long)c, (long long)j0, (long long)j1);
                lo = j1 - j0 < lo ? j1 - j0 : lo;
                hi = j1 - j0 > hi ? j1 - j0 : hi;
                next = j1;
            }
            KFT_CHECK(next == INNER[a] && hi - lo <= 1);
        }
}

KFT_TEST(cuda_split_tasks)
{
    int64_t *t = NULL, n = -1;
    KFT_CHECK(kfr_cuda_tasks_split(0, 256, 100, 3, &t, &n) == KF_OK && t == NULL && n == 0);
    /* 300 rows in blocks of 128 (3) x 3 chunks of 10 points: chunk-major */
    KFT_CHECK(kfr_cuda_tasks_split(300, 128, 10, 3, &t, &n) == KF_OK && n == 9);
    static const int64_t WANT[9][5] = {
        {0, 128, 0, 4, 0},   {128, 256, 0, 4, 0}, {256, 300, 0, 4, 0},
        {0, 128, 4, 7, 1},   {128, 256, 4, 7, 1}, {256, 300, 4, 7, 1},
        {0, 128, 7, 10, 2},  {128, 256, 7, 10, 2}, {256, 300, 7, 10, 2},
    };
    for (int64_t k = 0; t && k < n && k < 9; k++)
        for (int q = 0; q < 5; q++)
            KFT_CHECKF(t[5 * k + q] == WANT[k][q], "task %lld field %d: %lld, want %lld", (long long)k, q,
                       (long long)t[5 * k + q], (long long)WANT[k][q]);
    free(t);
}
