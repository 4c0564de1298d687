/* cuda_tasks.h -- task tables of CUDA launches (runtime/cuda/cuda_tasks.c). */
#ifndef KF_RUNTIME_CUDA_TASKS_H
#define KF_RUNTIME_CUDA_TASKS_H

#include <stdint.h>

#include "runtime/sparse/ranges.h"

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

/* Split-j (docs/cuda.md): how many chunks the inner range of a dense run is
 * cut into so that `rowblocks` blocks of rows still fill a device of `sms`
 * multiprocessors: min(ceil(2 sms / rowblocks), inner / KFR_SPLIT_MIN_CHUNK)
 * when that is at least 2, else 1 (no split: the row blocks fill the device,
 * or the inner range is too short for chunks to pay for the combine).
 * A pure function of its arguments; nonpositive arguments give 1. */
#define KFR_SPLIT_MIN_CHUNK 2048
int64_t kfr_cuda_split_plan(int64_t rowblocks, int64_t inner, int sms);

/* Chunk c of nchunks over [0, inner): contiguous, in order, lengths
 * inner / nchunks or one more (the longer ones first), never empty when
 * nchunks <= inner. */
void kfr_cuda_split_chunk(int64_t inner, int64_t nchunks, int64_t c, int64_t *j0, int64_t *j1);

/* The partial kernel's tasks (5 int64 each: {row0, row1, j0, j1, slot}):
 * every block of `block` consecutive rows over every chunk (slot = chunk
 * index, chunk-major). *tasks is malloc'd (NULL and 0 tasks when rows == 0).
 * Needs 1 <= nchunks <= inner. KF_OK or KF_ERR_NOMEM (no message). */
int kfr_cuda_tasks_split(int64_t rows, int block, int64_t inner, int64_t nchunks, int64_t **tasks,
                         int64_t *ntasks);

#endif
