/* cuda_tasks.c -- the task tables of CUDA launches (compiler/emit_cuda.c's
 * contract, docs/cuda.md): one block per task {row0, row1, q0, q1}, at most
 * `block` rows each, walking inner ranges q0..q1-1 of the launch's jr. */
#include <stdlib.h>

#include "cuda_tasks.h"

/* Appends the tasks of rows [r0, r1) over ranges [q0, q1) in chunks of block rows. */
static void chunk(int64_t *t, int64_t *n, int64_t r0, int64_t r1, int64_t q0, int64_t q1, int block)
{
    for (int64_t a = r0; a < r1; a += block) {
        int64_t *e = t + 4 * (*n)++;
        e[0] = a;
        e[1] = r1 - a < block ? r1 : a + block;
        e[2] = q0;
        e[3] = q1;
    }
}

int kfr_cuda_tasks_dense(int64_t rows, int block, int64_t **tasks, int64_t *ntasks)
{
    *tasks = NULL;
    *ntasks = 0;
    if (rows <= 0)
        return KF_OK;
    int64_t n = (rows + block - 1) / block;
    if (!(*tasks = malloc((size_t)n * 4 * sizeof(int64_t))))
        return KF_ERR_NOMEM;
    chunk(*tasks, ntasks, 0, rows, 0, 1, block);
    return KF_OK;
}

int kfr_cuda_tasks_ranges(const kfr_task *cpu, int64_t ncpu, const int64_t *redranges, int block,
                          int64_t **tasks, int64_t *ntasks)
{
    *tasks = NULL;
    *ntasks = 0;
    int64_t n = 0;
    for (int64_t k = 0; k < ncpu; k++)
        n += (cpu[k].r1 - cpu[k].r0 + block - 1) / block;
    if (n == 0)
        return KF_OK;
    if (!(*tasks = malloc((size_t)n * 4 * sizeof(int64_t))))
        return KF_ERR_NOMEM;
    for (int64_t k = 0; k < ncpu; k++) {
        int64_t q0 = cpu[k].nr > 0 ? (cpu[k].jr - redranges) / 2 : 0;
        chunk(*tasks, ntasks, cpu[k].r0, cpu[k].r1, q0, q0 + cpu[k].nr, block);
    }
    return KF_OK;
}
