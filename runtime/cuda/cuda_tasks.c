/* cuda_tasks.c -- the task tables of CUDA launches (compiler/emit/emit_cuda.c's
 * contract, docs/cuda.md): one block per task {row0, row1, q0, q1}, at most
 * `block` rows each, walking inner ranges q0..q1-1 of the launch's jr; and
 * the split-j plan: the partial kernel's tasks {row0, row1, j0, j1, slot}. */
#include <stdlib.h>

#include "runtime/cuda/cuda_tasks.h"

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

int64_t kfr_cuda_split_plan(int64_t rowblocks, int64_t inner, int sms)
{
    if (rowblocks <= 0 || inner <= 0 || sms <= 0)
        return 1;
    int64_t want = (2 * (int64_t)sms + rowblocks - 1) / rowblocks;
    int64_t most = inner / KFR_SPLIT_MIN_CHUNK;
    int64_t n = want < most ? want : most;
    return n >= 2 ? n : 1;
}

void kfr_cuda_split_chunk(int64_t inner, int64_t nchunks, int64_t c, int64_t *j0, int64_t *j1)
{
    int64_t q = inner / nchunks, rem = inner % nchunks;
    *j0 = c * q + (c < rem ? c : rem);
    *j1 = *j0 + q + (c < rem);
}

int kfr_cuda_tasks_split(int64_t rows, int block, int64_t inner, int64_t nchunks, int64_t **tasks,
                         int64_t *ntasks)
{
    *tasks = NULL;
    *ntasks = 0;
    if (rows <= 0)
        return KF_OK;
    int64_t nb = (rows + block - 1) / block;
    if (!(*tasks = malloc((size_t)(nb * nchunks) * 5 * sizeof(int64_t))))
        return KF_ERR_NOMEM;
    int64_t *t = *tasks;
    for (int64_t c = 0; c < nchunks; c++) {
        int64_t j0, j1;
        kfr_cuda_split_chunk(inner, nchunks, c, &j0, &j1);
        for (int64_t a = 0; a < rows; a += block, t += 5) {
            t[0] = a;
            t[1] = rows - a < block ? rows : a + block;
            t[2] = j0;
            t[3] = j1;
            t[4] = c;
        }
    }
    *ntasks = nb * nchunks;
    return KF_OK;
}
