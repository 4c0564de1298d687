/* cuda_tasks.h -- task tables of CUDA launches (runtime/cuda_tasks.c). */
#ifndef KF_RUNTIME_CUDA_TASKS_H
#define KF_RUNTIME_CUDA_TASKS_H

#include <stdint.h>

#include "ranges.h"

/* Dense: tasks of `block` consecutive rows (the last one shorter) over the
 * single range q = 0 (the launch's jr = {0, inner}). *tasks is malloc'd
 * (4 int64 per task; NULL and 0 tasks when rows == 0). KF_OK or KF_ERR_NOMEM
 * (no message: the caller words it). block >= 1. */
int kfr_cuda_tasks_dense(int64_t rows, int block, int64_t **tasks, int64_t *ntasks);

/* Block-sparse: the CPU tasks of a validated pattern (kfr_ranges_tasks,
 * every row in exactly one task; their jr point into redranges) cut into
 * tasks of at most block rows, q0..q1 indexing redranges as the launch's jr.
 * Rows without ranges get q0 == q1 (neutral values). */
int kfr_cuda_tasks_ranges(const kfr_task *cpu, int64_t ncpu, const int64_t *redranges, int block,
                          int64_t **tasks, int64_t *ntasks);

#endif
