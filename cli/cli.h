/*
 * cli.h -- the pieces of the kforge command shared by its files.
 *
 *   main.c      dispatch: eval | check | bench | cache | eigsh | devices | help | --version
 *   opts.c      command line -> kfcli_args (one option table for every command)
 *   session.c   context + compile with kfcli_args, formula errors with a caret
 *   cmd_eval.c  .npy files in, kf_run, .npy files out
 *   cmd_check.c canonical form, dims, variable table, generated C
 *   cmd_bench.c random inputs, compile and run per JIT tier, times and agreement
 *   cmd_cache.c list, describe and clear the kernel cache
 *   cmd_eigsh.c spectral coordinates of a point cloud (eigenpairs of K, L or L_norm)
 *   eigsh_dist.c how eigsh's rows are cut between MPI ranks
 *   cmd_devices.c the CUDA devices the driver sees, or why there are none
 *   npy.c       the .npy reader and writer (npy.h)
 */
#ifndef KF_CLI_CLI_H
#define KF_CLI_CLI_H

#include <stdint.h>
#include <stdio.h>

#include "kforge.h"

/* Exit statuses of the kforge command. */
enum {
    KFCLI_EXIT_OK = 0,      /* success */
    KFCLI_EXIT_RUNTIME = 1, /* the work failed (memory, threads, JIT, writing output) */
    KFCLI_EXIT_USAGE = 2    /* bad command line, formula or input file */
};

/* Which commands accept an option (kfcli_args_parse's `cmd`). */
enum { KFCLI_CMD_EVAL = 1, KFCLI_CMD_CHECK = 2, KFCLI_CMD_BENCH = 4, KFCLI_CMD_CACHE = 8 };

/* Everything a command line can say. Strings point into argv. */
typedef struct kfcli_args {
    const char *cmd;          /* "eval" or "check", for messages */
    const char *formula;      /* first positional argument */
    const char **aliases;     /* --alias values, in order (malloc'd array) */
    int naliases;
    const char **files;       /* positional arguments after the formula (malloc'd array) */
    int nfiles;
    const char *reduction;    /* NULL: none given */
    int axis;                 /* -1: not given */
    int k;                    /* 0: not given */
    const char *formula2;
    int dtype;                /* kf_dtype, or -1: not given */
    int threads;              /* 0: not given */
    kf_jit jit;
    kf_backend backend;       /* --backend (default auto) */
    int device;               /* --device (default 0) */
    kf_sum_scheme sum_scheme;
    int verbose, dump, help;
    const char *out, *index_out;
    int64_t M, N;             /* -1: not given */
    const char *emit;         /* --emit value ("c"), or NULL */
    int cmdmask;              /* the KFCLI_CMD_* being parsed */
    const char *jits;         /* bench: the --jit list as typed ("tcc,cc", "all"), or NULL */
    int repeat;               /* bench: --repeat, 0: not given */
    int seed_set;             /* bench: --seed given; its value in seed */
    uint64_t seed;
    const char *cache_dir;    /* bench, cache: --cache-dir, or NULL */
    double older_than;        /* cache clear: --older-than DAYS, -1: not given */
    double bs_eps, bs_cutoff; /* eval, bench: --block-sparse EPS:CUTOFF; bs_eps 0: not given */
    int bs_kmeans;            /* ... :kmeans=ITERS: Lloyd iterations from the grid; 0: grid only */
} kfcli_args;

/* Parses argv[1..argc) of command `cmd` (KFCLI_CMD_*) into *a. Returns 0, or
 * prints "kforge CMD: message" to stderr and returns KFCLI_EXIT_USAGE. Free
 * with kfcli_args_free even after a failure. */
int kfcli_args_parse(int cmdmask, const char *cmd, int argc, char **argv, kfcli_args *a);
void kfcli_args_free(kfcli_args *a);
/* Strict decimal integer in [lo, hi]; returns 0 on success. */
int kfcli_parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out);

/* Creates a context from a (threads, verbosity, a log to stderr). On failure
 * prints the message and returns NULL with *exit_code set. */
kf_ctx *kfcli_ctx_new(const kfcli_args *a, int *exit_code);
/* Compiles a's formula for `dtype`. On failure prints the message (with the
 * offending line and a caret for formula errors), sets *exit_code, returns NULL. */
kf_kernel *kfcli_compile(kf_ctx *ctx, const kfcli_args *a, kf_dtype dtype, int *exit_code);
/* The exit status for a kf_status: usage/formula errors 2, the others 1. */
int kfcli_exit_of(int status);
/* Seconds on a monotonic clock. */
double kfcli_now(void);

int kfcli_eval(int argc, char **argv);  /* argv[0] is "eval" */
int kfcli_check(int argc, char **argv); /* argv[0] is "check" */
void kfcli_help_eval(FILE *f);
void kfcli_help_check(FILE *f);
int kfcli_bench(int argc, char **argv); /* argv[0] is "bench" */
int kfcli_cache(int argc, char **argv); /* argv[0] is "cache" */
void kfcli_help_bench(FILE *f);
void kfcli_help_cache(FILE *f);
int kfcli_eigsh(int argc, char **argv); /* argv[0] is "eigsh" */
void kfcli_help_eigsh(FILE *f);
int kfcli_devices(int argc, char **argv); /* argv[0] is "devices" */
void kfcli_help_devices(FILE *f);
int kfcli_gen(int argc, char **argv); /* argv[0] is "gen" */
void kfcli_help_gen(FILE *f);

/* The variable of category cat (0 i, 1 j, 2 parameter) with the lowest index,
 * or -1; *dim gets its dim. --block-sparse clusters on these. */
int kfcli_first_var(const kf_kernel *k, int cat, int64_t *dim);

/* eigsh_dist.c -- the rows of `mpirun -np P kforge eigsh`. */
/* The world size a launcher (mpirun, mpiexec) announces in the environment,
 * or 0 when none started this process; the ranks on this node (1 if unsaid). */
int kfcli_mpi_launched(void);
int kfcli_mpi_local_ranks(void);
/* bounds (P + 1): rank r holds rows [bounds[r], bounds[r+1]) of n. Even
 * (spec NULL) or the comma-separated counts of --mpi-split (P of them,
 * adding up to n; zeros allowed). 0, or -1 with the message in err. */
int kfcli_split_rows(int64_t n, int P, const char *spec, int64_t *bounds, char *err,
                     size_t errlen);

/* symmetry.c: whether the scalar kernel FORMULA in x = Vi(0,d), y = Vj(1,d)
 * is symmetric on a sample of the n points x (n, d) (row-major, float64):
 * 0 yes (to 1e-9 relative), 1 no, 2 the probe could not run; why gets the
 * message for 1 and 2. The sample is the kfcli_probe_count(n) points
 * kfcli_probe_row(0..), evenly spread over the cloud (inputs are often
 * sorted by something); sampled != 0: x holds only those rows, in that
 * order (a rank that holds a slice of the cloud reads just them). */
#define KFCLI_PROBE_POINTS 192
static inline int64_t kfcli_probe_count(int64_t n)
{
    return n < KFCLI_PROBE_POINTS ? n : KFCLI_PROBE_POINTS;
}
static inline int64_t kfcli_probe_row(int64_t s, int64_t n)
{
    return s * n / kfcli_probe_count(n);
}
int kfcli_symmetry_probe(kf_ctx *ctx, const char *formula, int64_t n, int64_t d, const double *x,
                         int sampled, char *why, size_t cap);

#endif
