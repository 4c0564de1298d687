/*
 * cmd_eigsh.c -- `kforge eigsh`: spectral coordinates of a point cloud, the
 * eigenpairs of a kernel matrix or of its graph Laplacian, without storing it.
 *
 *   points (--points X.npy | --gen) ──▶ checks (NaN, k < n) ──▶ [block-sparse plan: sort]
 *     ──▶ scale by 1/sigma ──▶ formula operator K ──▶ kf_spectral (L, L_norm, modes)
 *     ──▶ [vectors back to the user's order] ──▶ eigenvalues + report, .npy files
 *
 * Under mpirun (or --mpi) each rank reads only a slice of the rows of a
 * --points file (by offset), or generates only that slice (--gen). Dense:
 * its own rows, straight into their place in the j side, which one in-place
 * allgather completes. Block-sparse: an even slice goes to the distributed
 * planner (kf_plan_block_sparse_dist), which sorts the cloud across the
 * ranks and hands each its rows, its pattern and the j rows they touch; no
 * rank holds the whole cloud. Every rank solves its part of one distributed
 * operator; rank 0 gathers the eigenvectors, prints and writes.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/npy.h"

void kfcli_help_eigsh(FILE *f)
{
    fputs(
        "Usage: kforge eigsh (--points X.npy | --gen spiral:N[:SEED] | --gen swissroll:N[:SEED])\n"
        "                    [options]\n"
        "\n"
        "Spectral coordinates of a point cloud: the k eigenpairs of the kernel matrix K\n"
        "(K_ij = k(x_i, x_j)) or of its graph Laplacian, computed with ARPACK's Lanczos method\n"
        "on the implicit matrix (never stored). Prints the eigenvalues (ascending) and a report.\n"
        "\n"
        "Points:\n"
        "  --points X.npy       (n, d) or (n,) float32/float64 points; NaN or inf is an error\n"
        "  --gen KIND:N[:SEED]  the tutorial's clouds, deterministic for a SEED (default 1):\n"
        "                       spiral (2-D) or swissroll (3-D), 0.01 Gaussian noise\n"
        "\n"
        "Kernel and operator:\n"
        "  --kernel K           gaussian exp(-|x-y|^2/(2 s^2)) (default), laplace exp(-|x-y|/s),\n"
        "                       cauchy 1/(1+|x-y|^2/s^2), or a FORMULA in x=Vi(0,d) and\n"
        "                       y=Vj(1,d) on the raw points (e.g. 'Exp(-SqDist(x,y)*IntCst(50))');\n"
        "                       it must be scalar and symmetric (K(x,y) = K(y,x): checked on a\n"
        "                       sample of the points); the command multiplies it by the vector\n"
        "  --sigma S            the scale s of the named kernels (default 0.05; the points are\n"
        "                       divided by s); a FORMULA carries its own scale\n"
        "  --laplacian L        normalized (default): I - D^-1/2 K D^-1/2; unnormalized:\n"
        "                       diag(D) - K; none: K itself. D = K 1, the degrees\n"
        "  --mode M             auto (default), direct (ARPACK on the operator as asked, scipy's\n"
        "                       way), shifted (smallest of a Laplacian as the largest of\n"
        "                       c I - L), coarse (shifted, started from a solve on a subsample)\n"
        "  --coarse-n N         the subsample size of the coarse start (default: min(n/4, 2000))\n"
        "  --solver S           arpack (Lanczos: every --which), block (LOBPCG on blocks of\n"
        "                       --block columns, default k + 1: the largest eigenpairs of the\n"
        "                       mode's operator, so shifted or coarse for a Laplacian), or auto\n"
        "                       (default: block where it applies from 20000 points, else arpack;\n"
        "                       docs/solvers.md has the measurements)\n"
        "  --compare            also run every other mode that applies and compare matvecs,\n"
        "                       time and eigenvalues\n"
        "  --block-sparse EPS[:CUTOFF]  skip the pairs of grid cells (side EPS) whose points\n"
        "                       are all farther apart than CUTOFF (their boxes and radii)\n"
        "                       (default CUTOFF: 4s gaussian, 8s laplace, 100s cauchy; a FORMULA\n"
        "                       needs one). Vectors are still in the order of the input points.\n"
        "                       auto: EPS = CUTOFF / 2, the default for gaussian and laplace from\n"
        "                       20000 points; off: every pair (the default otherwise)\n"
        "\n"
        "Eigensolver:\n"
        "  -k K                 eigenpairs wanted, 1 <= K < n (default 7)\n"
        "  --which W            SM (default for a Laplacian), LM (default for none), SA, LA\n"
        "  --tol T              relative accuracy of the eigenvalues (default 0: machine precision)\n"
        "  --ncv N              Lanczos basis size, K < N <= n (default max(2K+1, 20))\n"
        "  --maxiter N          cap on restart iterations (default 10 n, at least 1000)\n"
        "  --seed S             seed of the start vector and subsample (default 1)\n"
        "\n"
        "Other options:\n"
        "  --dtype T            float32 or float64 (default: the file's; float32 for --gen)\n"
        "  --threads N          worker threads (default: $KFORGE_THREADS, else every core)\n"
        "  --jit E              auto (default), tcc, cc or reference\n"
        "  --backend B          auto (default: the GPU for matvecs of 2^26 pairs or more when\n"
        "                       one is usable), cpu, or cuda (an error without a GPU)\n"
        "  --device D           the GPU ordinal (default 0; see kforge devices)\n"
        "  -o, --output F       the eigenvalues, (K,) of the dtype\n"
        "  --vectors F          the eigenvectors, (n, K), column j for eigenvalue j\n"
        "  -q, --quiet          no progress lines on stderr (shown only on a terminal)\n"
        "  -v, --verbose        engine and compile messages on stderr, and (when stderr is not\n"
        "                       a terminal) a progress line every 10 s of the solve\n"
        "  -h, --help           this text\n"
        "\n"
        "Distributed (MPI builds; docs/scale-out.md):\n"
        "  --mpi                solve on the ranks of an MPI job, implied when mpirun or\n"
        "                       mpiexec started kforge: each rank holds a slice of the rows\n"
        "                       and the j points they meet, a matvec exchanges the vector\n"
        "                       (MPI_Allgatherv), ARPACK becomes PARPACK; rank 0 prints\n"
        "                       the report (per-rank matvec and communication times) and\n"
        "                       writes the files. Default threads: the cores / ranks per\n"
        "                       node. A usage error where kforge was built without MPI\n"
        "  --mpi-split N0,N1,...  the rows of each rank, adding up to n (default: even);\n"
        "                       block-sparse slices end at cluster boundaries, so each\n"
        "                       boundary moves to the nearest one\n"
        "\n"
        "Exit status: 0 ok, 1 runtime failure or no convergence (the converged values are\n"
        "printed, no file is written), 2 usage or input error.\n"
        "\n"
        "Examples:\n"
        "  kforge eigsh --gen spiral:10000 --laplacian unnormalized -k 7\n"
        "  kforge eigsh --gen swissroll:100000 --sigma 0.01 --block-sparse 0.05 -k 7 \\\n"
        "      --vectors coords.npy\n"
        "  mpirun -np 4 kforge eigsh --points cloud.npy --laplacian normalized -o values.npy\n",
        f);
}

enum { KER_GAUSSIAN, KER_LAPLACE, KER_CAUCHY, KER_FORMULA };
static const char *const kernel_names[] = {"gaussian", "laplace", "cauchy"};
/* Formulas of the named kernels on points already divided by sigma. */
static const char *const kernel_formulas[] = {"Exp(-SqDist(x,y)/IntCst(2))",
                                              "Exp(-Sqrt(SqDist(x,y)))",
                                              "Inv(IntCst(1)+SqDist(x,y))"};
/* Where each named kernel falls below ~3e-4 (e^-8), in units of sigma. */
static const double kernel_cutoffs[] = {4, 8, 100};
/* From this many points on, Gaussian and Laplace operators are block-sparse
 * by default (--block-sparse auto): at 2e4 a dense apply is 4e8 pairs. */
#define EIGSH_AUTO_SPARSE_N 20000

static const char *const mode_names[] = {"auto", "direct", "shifted", "coarse"};
static const char *const lap_names[] = {"none", "unnormalized", "normalized"};
static const char *const which_names[] = {"LM", "SM", "LA", "SA"};

/* The command line. */
typedef struct eigsh_cfg {
    const char *points;
    kf_gen gen;
    int have_gen;
    int kernel;              /* KER_* */
    const char *formula;     /* the kernel formula (named or the user's) */
    double sigma;
    int sigma_set;
    int laplacian;           /* index in lap_names */
    int k;
    int which;               /* kf_which, or -1: the default */
    double tol;
    int ncv, maxiter;
    uint64_t seed;
    int dtype;               /* kf_dtype, or -1 */
    int block_sparse;        /* 0 dense, 1 EPS[:CUTOFF] given, 2 auto */
    int bs_set;              /* --block-sparse was given (else auto for large n, decaying kernels) */
    double eps, cutoff;      /* cutoff < 0: the kernel's default; eps < 0: cutoff / 2 */
    kf_spectral_mode mode;
    kf_solver solver;
    int block;               /* --block, 0: the library's default */
    int64_t coarse_n;        /* --coarse-n, 0: the library's default */
    int compare, quiet, verbose, help, threads;
    kf_jit jit;
    kf_backend backend;
    int device;
    const char *out, *vectors;
    int mpi;                 /* --mpi given */
    const char *split;       /* --mpi-split, or NULL */
} eigsh_cfg;

/* Everything the command holds, freed in one place. */
typedef struct eigsh_state {
    eigsh_cfg c;
    kfcli_args a;            /* for kfcli_ctx_new / kfcli_compile */
    kf_ctx *ctx;
    int64_t n, d;
    double *x;               /* (n, d) points as read, float64 */
    double *xs;              /* sorted (block-sparse) copy, or NULL */
    void *pts;               /* (n, d) of the dtype: sorted, scaled: the kernel's x and y */
    kf_plan *plan;           /* block-sparse, one process */
    kf_dist_plan *dplan;     /* block-sparse, MPI: this rank's part of the plan */
    kf_linop *K;
    void *values, *vectors, *vec_user;
    double *residuals;
    char *tmp_out, *tmp_vec;
    int progress;            /* stderr is a terminal and not --quiet */
    /* MPI: comm is NULL for one process */
    kf_comm *comm;
    int rank, P;
    int want_mpi;            /* asked for or implied by a launcher, and built in */
    int per_rank;            /* MPI: each rank reads (or generates) only the rows it needs */
    kfcli_npy_file in;       /* --points under MPI: the open input, read in slices */
    int sliced;              /* in is open */
    int64_t *bounds;         /* (P + 1): rank r's rows [bounds[r], bounds[r+1]) */
    struct {                 /* this rank's rows [row0, row0 + rows) and j rows */
        int64_t row0, rows, j0, nj;
    } loc;
    int64_t nloc;            /* rows of the vectors held here (n for one process) */
} eigsh_state;

static int usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("kforge eigsh: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\n(see 'kforge help eigsh')\n", stderr);
    va_end(ap);
    return KFCLI_EXIT_USAGE;
}

static int pick(const char *v, const char *const *words, int n)
{
    for (int k = 0; k < n; k++)
        if (!strcmp(v, words[k]))
            return k;
    return -1;
}

/* A plain finite decimal number (strtod alone would take "nan", "inf", hex). */
static int parse_num(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v) || strpbrk(s, "xXnNiI"))
        return -1;
    *out = v;
    return 0;
}

static int parse_block_sparse(eigsh_cfg *c, const char *v)
{
    c->bs_set = 1;
    if (!strcmp(v, "off") || !strcmp(v, "none")) {
        c->block_sparse = 0;
        return 0;
    }
    if (!strcmp(v, "auto")) {
        c->block_sparse = 2;
        c->eps = -1; /* cutoff / 2, once the cutoff is known (plan_blocks) */
        c->cutoff = -1;
        return 0;
    }
    char buf[128];
    if (strlen(v) >= sizeof buf)
        return usage("--block-sparse '%.40s...': too long", v);
    strcpy(buf, v);
    char *colon = strchr(buf, ':');
    if (colon)
        *colon = 0;
    if (parse_num(buf, &c->eps) || !(c->eps > 0))
        return usage("--block-sparse EPS[:CUTOFF]: EPS must be a positive number, not '%s'", buf);
    c->cutoff = -1;
    if (colon && (parse_num(colon + 1, &c->cutoff) || !(c->cutoff >= 0)))
        return usage("--block-sparse EPS[:CUTOFF]: CUTOFF must be a number >= 0, not '%s'",
                     colon + 1);
    c->block_sparse = 1;
    return 0;
}

/* One option with its value; returns 0 or an exit status. */
static int set_opt(eigsh_cfg *c, const char *name, const char *v)
{
    int64_t i;
    int w;
    char err[KFCLI_ERRLEN];
    if (!strcmp(name, "--points")) {
        c->points = v;
    } else if (!strcmp(name, "--gen")) {
        if (kf_gen_parse(v, &c->gen, err, sizeof err) != KF_OK)
            return usage("--gen %s", err);
        c->have_gen = 1;
    } else if (!strcmp(name, "--kernel")) {
        if (!*v)
            return usage("--kernel needs gaussian, laplace, cauchy or a formula");
        w = pick(v, kernel_names, 3);
        c->kernel = w < 0 ? KER_FORMULA : w;
        c->formula = w < 0 ? v : kernel_formulas[w];
    } else if (!strcmp(name, "--sigma")) {
        if (parse_num(v, &c->sigma) || !(c->sigma > 0))
            return usage("--sigma must be a positive number, not '%s'", v);
        c->sigma_set = 1;
    } else if (!strcmp(name, "--laplacian")) {
        if ((c->laplacian = pick(v, lap_names, 3)) < 0)
            return usage("--laplacian must be none, unnormalized or normalized, not '%s'", v);
    } else if (!strcmp(name, "-k")) {
        if (kfcli_parse_i64(v, 1, 1000000, &i))
            return usage("-k must be an integer from 1 to 1000000, not '%s'", v);
        c->k = (int)i;
    } else if (!strcmp(name, "--which")) {
        if ((c->which = pick(v, which_names, 4)) < 0)
            return usage("--which must be SM, LM, SA or LA, not '%s'", v);
    } else if (!strcmp(name, "--tol")) {
        if (parse_num(v, &c->tol) || !(c->tol >= 0))
            return usage("--tol must be a number >= 0, not '%s'", v);
    } else if (!strcmp(name, "--ncv")) {
        if (kfcli_parse_i64(v, 2, 100000000, &i))
            return usage("--ncv must be an integer from 2 to 100000000, not '%s'", v);
        c->ncv = (int)i;
    } else if (!strcmp(name, "--maxiter")) {
        if (kfcli_parse_i64(v, 1, 1000000000, &i))
            return usage("--maxiter must be a positive integer, not '%s'", v);
        c->maxiter = (int)i;
    } else if (!strcmp(name, "--seed")) {
        if (kfcli_parse_i64(v, 0, INT64_MAX, &i))
            return usage("--seed must be a non-negative integer, not '%s'", v);
        c->seed = (uint64_t)i;
    } else if (!strcmp(name, "--dtype")) {
        kf_dtype dt;
        if (kf_dtype_parse(v, &dt) != KF_OK)
            return usage("--dtype must be float32 or float64, not '%s'", v);
        c->dtype = dt;
    } else if (!strcmp(name, "--block-sparse")) {
        return parse_block_sparse(c, v);
    } else if (!strcmp(name, "--mode")) {
        if ((w = pick(v, mode_names, 4)) < 0)
            return usage("--mode must be auto, direct, shifted or coarse, not '%s'", v);
        c->mode = (kf_spectral_mode)w;
    } else if (!strcmp(name, "--solver")) {
        static const char *const solver_names[] = {"auto", "arpack", "block"};
        if ((w = pick(v, solver_names, 3)) < 0)
            return usage("--solver must be auto, arpack or block, not '%s'", v);
        c->solver = (kf_solver)w;
    } else if (!strcmp(name, "--block")) {
        if (kfcli_parse_i64(v, 1, 64, &i))
            return usage("--block must be an integer from 1 to 64, not '%s'", v);
        c->block = (int)i;
    } else if (!strcmp(name, "--coarse-n")) {
        if (kfcli_parse_i64(v, 1, KF_GEN_MAX_N, &i))
            return usage("--coarse-n must be an integer from 1 to %d, not '%s'", KF_GEN_MAX_N, v);
        c->coarse_n = i;
    } else if (!strcmp(name, "--threads")) {
        if (kfcli_parse_i64(v, 1, KF_MAX_THREADS, &i))
            return usage("--threads must be an integer from 1 to %d, not '%s'", KF_MAX_THREADS, v);
        c->threads = (int)i;
    } else if (!strcmp(name, "--jit")) {
        if (kf_jit_parse(v, &c->jit) != KF_OK)
            return usage("--jit must be auto, tcc, cc or reference, not '%s'", v);
    } else if (!strcmp(name, "--backend")) {
        if (kf_backend_parse(v, &c->backend) != KF_OK)
            return usage("--backend must be auto, cpu or cuda, not '%s'", v);
    } else if (!strcmp(name, "--device")) {
        if (kfcli_parse_i64(v, 0, 1023, &i))
            return usage("--device must be a GPU ordinal from 0 to 1023, not '%s'", v);
        c->device = (int)i;
    } else if (!strcmp(name, "-o") || !strcmp(name, "--output")) {
        c->out = v;
    } else if (!strcmp(name, "--vectors")) {
        c->vectors = v;
    } else if (!strcmp(name, "--mpi-split")) {
        c->split = v;
    } else {
        return -1;
    }
    return 0;
}

static int parse_args(eigsh_cfg *c, int argc, char **argv)
{
    static const char *const flags[] = {"--compare", "-q", "--quiet", "-v", "--verbose", "-h",
                                        "--help", "--mpi"};
    /* the options set_opt takes, for the message when one ends the line */
    static const char *const valued[] = {
        "--points", "--gen",   "--kernel", "--sigma",        "--laplacian", "-k",      "--which",
        "--tol",    "--ncv",   "--maxiter", "--seed",        "--dtype",     "--mode",  "--threads",
        "--jit",    "-o",      "--output", "--block-sparse", "--vectors", "--backend", "--device",
        "--solver", "--block", "--coarse-n", "--mpi-split"};
    memset(c, 0, sizeof *c);
    c->kernel = KER_GAUSSIAN;
    c->formula = kernel_formulas[KER_GAUSSIAN];
    c->sigma = 0.05;
    c->laplacian = 2;
    c->k = 7;
    c->which = -1;
    c->seed = 1;
    c->dtype = -1;
    c->jit = KF_JIT_AUTO;
    for (int a = 1; a < argc; a++) {
        const char *s = argv[a];
        int f = pick(s, flags, 8);
        if (f >= 0) {
            if (f == 7)
                c->mpi = 1;
            else if (f == 0)
                c->compare = 1;
            else if (f <= 2)
                c->quiet = 1;
            else if (f <= 4)
                c->verbose = 1;
            else
                c->help = 1;
            continue;
        }
        char name[32];
        const char *val = NULL;
        if (s[0] == '-' && s[1] == '-' && strchr(s, '=')) { /* --name=value */
            size_t nl = (size_t)(strchr(s, '=') - s);
            if (nl >= sizeof name)
                return usage("unknown option '%s'", s);
            memcpy(name, s, nl);
            name[nl] = 0;
            val = s + nl + 1;
        } else if (s[0] == '-' && (s[1] == 'k' || s[1] == 'o') && s[2]) { /* -k7, -oFILE */
            snprintf(name, sizeof name, "-%c", s[1]);
            val = s + 2;
        } else if (s[0] == '-' && s[1] && strlen(s) < sizeof name) {
            strcpy(name, s);
        } else {
            return usage("unexpected argument '%s' (the points come from --points or --gen)", s);
        }
        if (!val) {
            if (a + 1 >= argc)
                return pick(name, valued, (int)(sizeof valued / sizeof valued[0])) >= 0
                           ? usage("option %s needs a value", name)
                           : usage("unknown option '%s'", s);
            val = argv[++a];
        }
        int rc = set_opt(c, name, val);
        if (rc == -1)
            return usage("unknown option '%s'", name);
        if (rc)
            return rc;
    }
    return 0;
}

/* Progress on a terminal: one line, overwritten by the next (\r, clear to end). */
static void progress(const eigsh_state *s, const char *msg)
{
    if (s->progress)
        fprintf(stderr, "\rkforge eigsh: %s\033[K", msg);
}

typedef struct progress_state {
    double last;   /* elapsed seconds at the last line */
    int tty;       /* stderr is a terminal: one line rewritten in place */
    const char *solver;
    double residual, eta; /* the block solver's latest (residual < 0: none yet) */
} progress_state;

/* The block solver's residual and ETA, shown with the next progress line. */
static void progress_residual(void *user, int64_t matvecs, double elapsed_s, double residual,
                              double eta_s)
{
    progress_state *p = user;
    (void)matvecs, (void)elapsed_s;
    p->residual = residual;
    p->eta = eta_s;
    p->solver = "LOBPCG";
}

/* kf_eigsh_opts.progress: the matvec count and elapsed time, at most ~4
 * times a second on a terminal (a matvec can take a millisecond), or with
 * -v into a log or a pipe, one whole line every 10 s (a long solve must
 * show it is alive where no terminal is). */
static void progress_matvecs(void *user, int64_t matvecs, double elapsed_s)
{
    progress_state *p = user;
    if (elapsed_s - p->last < (p->tty ? 0.25 : 10))
        return;
    p->last = elapsed_s;
    char more[96] = "";
    if (p->residual >= 0 && p->eta >= 0)
        snprintf(more, sizeof more, ", residual %.2g, about %.0f s left", p->residual, p->eta);
    else if (p->residual >= 0)
        snprintf(more, sizeof more, ", residual %.2g", p->residual);
    if (p->tty)
        fprintf(stderr, "\rkforge eigsh: %s: %lld matvecs, %.1f s%s\033[K", p->solver,
                (long long)matvecs, elapsed_s, more);
    else
        fprintf(stderr, "kforge eigsh: %s: %lld matvecs, %.1f s%s\n", p->solver,
                (long long)matvecs, elapsed_s, more);
}

static void progress_done(const eigsh_state *s)
{
    if (s->progress)
        fputs("\r\033[K", stderr);
}

/* The kinds of arrays that are points: float, (n, d) or (n,), n, d >= 1. */
static int check_points_shape(const char *path, const kfcli_npy *a)
{
    char shp[64];
    kfcli_npy_shape_str(a, shp, sizeof shp);
    if (a->type == KFCLI_NPY_I8)
        return usage("%s: 'descr' is '<i8' (int64); points must be '<f4' or '<f8'", path);
    if (a->ndim == 0 || a->shape[0] < 1 || (a->ndim == 2 && a->shape[1] < 1))
        return usage("%s: shape %s; points must be (n, d) or (n,) with n, d >= 1", path, shp);
    return 0;
}

/* MPI: the header alone (n, d, the type); every rank reads the rows it
 * needs later (read_rows), once it knows its rank and its slice. */
static int open_points(eigsh_state *s)
{
    eigsh_cfg *c = &s->c;
    char err[KFCLI_ERRLEN];
    int st = kfcli_npy_open(c->points, &s->in, err, sizeof err);
    if (st) {
        fprintf(stderr, "kforge eigsh: %s\n", err);
        return st == KF_ERR_NOMEM ? KFCLI_EXIT_RUNTIME : KFCLI_EXIT_USAGE;
    }
    s->sliced = 1;
    kfcli_npy h = {.type = s->in.type, .ndim = s->in.ndim, .count = s->in.count};
    h.shape[0] = s->in.shape[0], h.shape[1] = s->in.shape[1];
    int rc = check_points_shape(c->points, &h);
    if (rc)
        return rc;
    s->n = s->in.shape[0];
    s->d = s->in.ndim == 2 ? s->in.shape[1] : 1;
    if (c->dtype < 0)
        c->dtype = s->in.type == KFCLI_NPY_F4 ? KF_FLOAT32 : KF_FLOAT64;
    return 0;
}

/* Rows [r0, r1) of the open input, as out_t (float32 or float64) times
 * scale, into dst; the same arithmetic as one process ((out_t)(x * scale)
 * with x the file's value as a double), so every rank's points are
 * bit-identical to the single-process run's. Read in chunks of at most
 * 2^20 values: the file's bytes are never held beside dst. NaN or inf is a
 * usage error naming the point, as for one process; the message goes to
 * msg (agree_ranks prints it). */
static int read_rows(eigsh_state *s, int64_t r0, int64_t r1, kf_dtype out_t, double scale,
                     void *dst, char *msg, size_t cap)
{
    const int64_t d = s->d, chunk = (((int64_t)1 << 20) + d - 1) / d; /* rows a chunk */
    size_t fes = kfcli_npy_elsize(s->in.type);
    void *buf = malloc(fes * (size_t)((r1 - r0 < chunk ? r1 - r0 : chunk) * d) + 1);
    if (!buf) {
        snprintf(msg, cap, "out of memory reading %s", s->c.points);
        return KFCLI_EXIT_RUNTIME;
    }
    for (int64_t a = r0; a < r1; a += chunk) {
        int64_t b = r1 - a < chunk ? r1 : a + chunk;
        int st = kfcli_npy_read_rows(&s->in, a, b, buf, msg, cap);
        if (st) {
            free(buf);
            return st == KF_ERR_ARG ? KFCLI_EXIT_USAGE : KFCLI_EXIT_RUNTIME;
        }
        for (int64_t e = 0; e < (b - a) * d; e++) {
            double v = s->in.type == KFCLI_NPY_F4 ? (double)((const float *)buf)[e]
                                                   : ((const double *)buf)[e];
            if (!isfinite(v)) {
                int64_t g = a * d + e;
                snprintf(msg, cap, "%s: point %lld has a %s coordinate (column %lld)",
                         s->c.points, (long long)(g / d), isnan(v) ? "NaN" : "infinite",
                         (long long)(g % d));
                free(buf);
                return KFCLI_EXIT_USAGE;
            }
            int64_t o = (a - r0) * d + e;
            if (out_t == KF_FLOAT32)
                ((float *)dst)[o] = (float)(v * scale);
            else
                ((double *)dst)[o] = v * scale;
        }
    }
    free(buf);
    return 0;
}

/* Rows [r0, r1) of the points, read by offset (--points) or generated
 * (--gen), as read_rows gives them. */
static int source_rows(eigsh_state *s, int64_t r0, int64_t r1, kf_dtype out_t, double scale,
                       void *dst, char *msg, size_t cap)
{
    if (!s->c.have_gen)
        return read_rows(s, r0, r1, out_t, scale, dst, msg, cap);
    int64_t cnt = (r1 - r0) * s->d;
    int direct = out_t == KF_FLOAT64 && scale == 1.0;
    double *v = direct ? dst : malloc(sizeof(double) * (size_t)cnt + 1);
    if (!v) {
        snprintf(msg, cap, "out of memory for %lld points", (long long)(r1 - r0));
        return KFCLI_EXIT_RUNTIME;
    }
    kf_gen_points_rows(&s->c.gen, r0, r1, v);
    for (int64_t e = 0; !direct && e < cnt; e++) {
        if (out_t == KF_FLOAT32)
            ((float *)dst)[e] = (float)(v[e] * scale);
        else
            ((double *)dst)[e] = v[e] * scale;
    }
    if (!direct)
        free(v);
    return 0;
}

/* Collective: the worst of the ranks' exit statuses; rank 0 prints the
 * message of the first rank that failed (its own output is the job's). */
static int agree_ranks(eigsh_state *s, int rc, const char *msg)
{
    double worst = rc;
    if (kf_comm_allreduce(s->comm, &worst, 1, KF_REDUCE_MAX) != KF_OK)
        return KFCLI_EXIT_RUNTIME;
    if (worst == 0)
        return 0;
    char mine[KFCLI_ERRLEN];
    snprintf(mine, sizeof mine, "%s", rc ? msg : "");
    char *all = s->rank == 0 ? calloc((size_t)s->P, sizeof mine) : NULL;
    int st = kf_comm_gather_rows(s->comm, mine, 1, sizeof mine, all, 0);
    if (s->rank == 0) {
        int r = 0;
        while (st == KF_OK && all && r < s->P && !all[(size_t)r * sizeof mine])
            r++;
        if (st != KF_OK || !all || r == s->P)
            fputs("kforge eigsh: a rank failed to read its points, and its message was lost\n",
                  stderr);
        else if (r == 0)
            fprintf(stderr, "kforge eigsh: %s\n", all);
        else
            fprintf(stderr, "kforge eigsh: rank %d: %s\n", r, all + (size_t)r * sizeof mine);
        if (worst == KFCLI_EXIT_USAGE)
            fputs("(see 'kforge help eigsh')\n", stderr);
    }
    free(all);
    return (int)worst;
}

/* MPI, dense: the j side is every point, so the rank holds one
 * copy of the cloud, in the operator's dtype, scaled (s->pts). Its own rows
 * (the i side) are read by offset straight into their place in that copy;
 * one in-place MPI_Allgatherv fills in the other ranks' rows. Gathered
 * rather than read whole by every rank: the file is read once by the job
 * instead of P times (P whole reads of one file contend for the shared file
 * system), the exchange is no bigger than d vectors' (the matvec's own
 * allgather moves n x b values every time), and no rank holds the file's
 * bytes beside the points (the one-process reader holds the file, then a
 * float64 copy, then the dtype's). */
static int read_dense_points(eigsh_state *s)
{
    char msg[KFCLI_ERRLEN] = "";
    kf_dtype dt = (kf_dtype)s->c.dtype;
    size_t es = dt == KF_FLOAT32 ? 4 : 8;
    double scale = s->c.kernel == KER_FORMULA ? 1.0 : 1.0 / s->c.sigma;
    int64_t r0 = s->loc.row0, r1 = s->loc.row0 + s->loc.rows;
    s->pts = malloc(es * (size_t)(s->n * s->d) + 1);
    int rc = s->pts ? source_rows(s, r0, r1, dt, scale,
                                  (char *)s->pts + es * (size_t)(r0 * s->d), msg, sizeof msg)
                    : (snprintf(msg, sizeof msg, "out of memory for the points"),
                       KFCLI_EXIT_RUNTIME);
    if ((rc = agree_ranks(s, rc, msg)))
        return rc;
    if (kf_comm_allgather_rows(s->comm, s->pts, s->n, r0, r1 - r0, (int64_t)es * s->d) != KF_OK) {
        fputs("kforge eigsh: exchanging the points failed\n", stderr);
        return KFCLI_EXIT_RUNTIME;
    }
    return 0;
}

/* The points: from the file (float32 or float64, any number of columns) or
 * the generator, as float64; NaN and inf refused, naming the point. Under
 * MPI, only the size (a file's header: open_points); each rank gets its
 * rows later (source_rows). */
static int load_points(eigsh_state *s)
{
    eigsh_cfg *c = &s->c;
    s->per_rank = s->want_mpi;
    if (c->have_gen && s->want_mpi) {
        s->n = c->gen.n;
        s->d = kf_gen_dim(c->gen.kind);
        if (c->dtype < 0)
            c->dtype = KF_FLOAT32;
        return 0;
    }
    if (c->have_gen) {
        s->n = c->gen.n;
        s->d = kf_gen_dim(c->gen.kind);
        s->x = malloc(sizeof(double) * (size_t)(s->n * s->d));
        if (!s->x) {
            fprintf(stderr, "kforge eigsh: out of memory for %lld points\n", (long long)s->n);
            return KFCLI_EXIT_RUNTIME;
        }
        kf_gen_points(&c->gen, s->x);
        if (c->dtype < 0)
            c->dtype = KF_FLOAT32; /* the tutorial's choice: twice the speed, enough accuracy */
        return 0;
    }
    char err[KFCLI_ERRLEN];
    if (s->want_mpi)
        return open_points(s);
    kfcli_npy in;
    int st = kfcli_npy_read(c->points, &in, err, sizeof err);
    if (st) {
        fprintf(stderr, "kforge eigsh: %s\n", err);
        return st == KF_ERR_NOMEM ? KFCLI_EXIT_RUNTIME : KFCLI_EXIT_USAGE;
    }
    int rc = check_points_shape(c->points, &in);
    if (rc) {
        kfcli_npy_free(&in);
        return rc;
    }
    s->n = in.shape[0];
    s->d = in.ndim == 2 ? in.shape[1] : 1;
    s->x = malloc(sizeof(double) * (size_t)in.count);
    if (!s->x) {
        kfcli_npy_free(&in);
        fprintf(stderr, "kforge eigsh: out of memory for %lld points\n", (long long)s->n);
        return KFCLI_EXIT_RUNTIME;
    }
    for (int64_t e = 0; e < in.count; e++)
        s->x[e] = in.type == KFCLI_NPY_F4 ? (double)((const float *)in.data)[e]
                                          : ((const double *)in.data)[e];
    if (c->dtype < 0)
        c->dtype = in.type == KFCLI_NPY_F4 ? KF_FLOAT32 : KF_FLOAT64;
    kfcli_npy_free(&in);
    for (int64_t e = 0; e < s->n * s->d; e++)
        if (!isfinite(s->x[e]))
            return usage("%s: point %lld has a %s coordinate (column %lld)", c->points,
                         (long long)(e / s->d), isnan(s->x[e]) ? "NaN" : "infinite",
                         (long long)(e % s->d));
    return 0;
}

/* Arguments that need the point count, with messages in the command's terms
 * (the library would refuse them too, in its own). */
static int check_sizes(const eigsh_state *s)
{
    const eigsh_cfg *c = &s->c;
    if (s->n < 2)
        return usage("%lld point: eigsh needs at least 2", (long long)s->n);
    if (c->k >= s->n)
        return usage("-k %d must be smaller than the number of points (%lld)", c->k,
                     (long long)s->n);
    if (c->ncv && (c->ncv <= c->k || c->ncv > s->n))
        return usage("--ncv %d must be above -k (%d) and at most the number of points (%lld)",
                     c->ncv, c->k, (long long)s->n);
    if (c->kernel == KER_FORMULA && c->sigma_set)
        return usage("--sigma scales the named kernels; write the scale into the FORMULA");
    if (c->kernel == KER_FORMULA && c->block_sparse == 2)
        return usage("--block-sparse auto: a FORMULA kernel has no known scale; give "
                     "--block-sparse EPS:CUTOFF");
    if (c->kernel == KER_FORMULA && c->block_sparse && c->cutoff < 0)
        return usage("--block-sparse %g: a FORMULA kernel needs the CUTOFF distance "
                     "(--block-sparse EPS:CUTOFF)", c->eps);

    if (c->out && c->vectors && kfcli_same_output(c->out, c->vectors))
        return usage("-o '%s' and --vectors '%s' name the same file", c->out, c->vectors);
    return 0;
}

/* The user's FORMULA alone (scalar, in x and y): errors with a caret on its
 * own text, before the command appends the vector. */
static int check_formula(eigsh_state *s, const char *const *aliases)
{
    kfcli_args a = s->a;
    a.formula = s->c.formula;
    a.aliases = (const char **)aliases;
    a.naliases = 2;
    a.reduction = NULL;
    int rc;
    kf_kernel *k = kfcli_compile(s->ctx, &a, (kf_dtype)s->c.dtype, &rc);
    if (!k)
        return rc;
    int64_t dim = kf_kernel_formula_dim(k);
    kf_kernel_free(k);
    if (dim != 1)
        return usage("the kernel FORMULA must be scalar (dim 1); '%s' has dim %lld", s->c.formula,
                     (long long)dim);
    char why[512];
    double *sample = NULL;
    if (!s->x) { /* MPI: every rank reads (or generates) the probe's rows alone */
        int64_t m = kfcli_probe_count(s->n);
        int64_t *rows = malloc(sizeof(int64_t) * (size_t)m + 1);
        if (!rows || !(sample = malloc(sizeof(double) * (size_t)(m * s->d)))) {
            free(rows);
            fputs("kforge eigsh: out of memory for the symmetry probe\n", stderr);
            return KFCLI_EXIT_RUNTIME;
        }
        for (int64_t q = 0; q < m; q++)
            rows[q] = kfcli_probe_row(q, s->n);
        if (s->c.have_gen) /* one pass over the stream, not one per row */
            kf_gen_points_at(&s->c.gen, rows, m, sample);
        for (int64_t q = 0; !s->c.have_gen && q < m; q++) {
            if ((rc = read_rows(s, rows[q], rows[q] + 1, KF_FLOAT64, 1.0, sample + q * s->d, why,
                                sizeof why))) {
                free(rows), free(sample);
                fprintf(stderr, "kforge eigsh: %s\n", why);
                return rc;
            }
        }
        free(rows);
    }
    rc = kfcli_symmetry_probe(s->ctx, s->c.formula, s->n, s->d, sample ? sample : s->x,
                              sample != NULL, why, sizeof why);
    free(sample);
    if (rc == 1)
        return usage("%s", why);
    if (rc) {
        fprintf(stderr, "kforge eigsh: %s\n", why);
        return KFCLI_EXIT_RUNTIME;
    }
    return 0;
}

/* The block-sparse cutoff and cell size, from the options or the kernel. */
static void plan_sizes(eigsh_cfg *c)
{
    c->cutoff = c->cutoff >= 0 ? c->cutoff : kernel_cutoffs[c->kernel] * c->sigma;
    /* auto: cells of half the cutoff (2 sigma for the Gaussian). Measured on
     * the Swiss roll at 1e5 points, sigma 0.01 (docs/solvers.md): the fastest
     * block apply of eps 0.01..0.05; smaller cells keep fewer pairs but cost
     * more per pair, larger ones keep many more. */
    if (c->eps < 0)
        c->eps = c->cutoff / 2;
}

/* Block-sparse: the plan on the raw points, then the points in cluster order. */
static int plan_blocks(eigsh_state *s, kf_ranges *rg)
{
    eigsh_cfg *c = &s->c;
    plan_sizes(c);
    double cutoff = c->cutoff;
    progress(s, "planning the block-sparse pattern...");
    s->plan = kf_plan_block_sparse(s->ctx, KF_FLOAT64, s->x, s->n, s->x, s->n, s->d, c->eps,
                                   cutoff, 0);
    if (!s->plan) {
        progress_done(s);
        fprintf(stderr, "kforge eigsh: --block-sparse: %s\n", kf_errmsg(s->ctx));
        return kfcli_exit_of(kf_status_of(s->ctx));
    }
    /* x and y are one cloud: the operator is symmetric only if both sorts agree */
    if (memcmp(s->plan->perm_x, s->plan->perm_y, sizeof(int64_t) * (size_t)s->n)) {
        fputs("kforge eigsh: internal: the block-sparse plan sorted x and y differently\n", stderr);
        return KFCLI_EXIT_RUNTIME;
    }
    s->xs = malloc(sizeof(double) * (size_t)(s->n * s->d));
    if (!s->xs) {
        fputs("kforge eigsh: out of memory for the sorted points\n", stderr);
        return KFCLI_EXIT_RUNTIME;
    }
    kf_permute_rows(s->ctx, s->x, s->n, (int64_t)sizeof(double) * s->d, s->plan->perm_x, s->xs);
    kf_blocks_view(s->plan->blocks, rg);
    return 0;
}

/* MPI, block-sparse: an even float64 slice of the raw points to the
 * distributed planner, which gives this rank its rows of the sorted cloud,
 * the j rows they touch (dplan->xj) and its pattern; --mpi-split's counts
 * are the wanted rows, moved to cluster starts. No rank holds the cloud. */
static int plan_blocks_dist(eigsh_state *s, kf_ranges *rg)
{
    eigsh_cfg *c = &s->c;
    char msg[KFCLI_ERRLEN] = "";
    plan_sizes(c);
    int64_t *split = NULL;
    if (c->split) {
        int64_t *b = malloc(sizeof(int64_t) * (size_t)(s->P + 1));
        split = malloc(sizeof(int64_t) * (size_t)s->P);
        if (!b || !split) {
            free(b), free(split);
            fputs("kforge eigsh: out of memory\n", stderr);
            return KFCLI_EXIT_RUNTIME;
        }
        int bad = kfcli_split_rows(s->n, s->P, c->split, b, msg, sizeof msg);
        for (int r = 0; !bad && r < s->P; r++)
            split[r] = b[r + 1] - b[r];
        free(b);
        if (bad) {
            free(split);
            return usage("%s", msg);
        }
    }
    int64_t r0 = (int64_t)((__int128)s->n * s->rank / s->P);
    int64_t r1 = (int64_t)((__int128)s->n * (s->rank + 1) / s->P);
    double *xs = malloc(sizeof(double) * (size_t)((r1 - r0) * s->d) + 1);
    int rc = xs ? source_rows(s, r0, r1, KF_FLOAT64, 1.0, xs, msg, sizeof msg)
                : (snprintf(msg, sizeof msg, "out of memory for %lld points", (long long)(r1 - r0)),
                   KFCLI_EXIT_RUNTIME);
    if ((rc = agree_ranks(s, rc, msg))) {
        free(xs), free(split);
        return rc;
    }
    if (s->sliced) /* every rank has its slice: the file is no longer needed */
        kfcli_npy_close(&s->in), s->sliced = 0;
    progress(s, "planning the block-sparse pattern across the ranks...");
    s->dplan = kf_plan_block_sparse_dist(s->ctx, s->comm, KF_FLOAT64, xs, r1 - r0, s->d, r0,
                                         c->eps, c->cutoff, split);
    free(xs), free(split);
    if (!s->dplan) { /* the ranks agree: every one fails with the same message */
        progress_done(s);
        fprintf(stderr, "kforge eigsh: --block-sparse: %s\n", kf_errmsg(s->ctx));
        return kfcli_exit_of(kf_status_of(s->ctx));
    }
    s->loc.row0 = s->dplan->row0, s->loc.rows = s->dplan->rows;
    s->loc.j0 = s->dplan->j0, s->loc.nj = s->dplan->nj;
    s->nloc = s->loc.rows;
    kf_blocks_view(s->dplan->blocks, rg);
    /* the operator reduces over j: only the axis 1 triple is read */
    rg->ncj = rg->nredi = 0;
    rg->ranges_j = rg->slices_j = rg->redranges_i = NULL;
    return 0;
}

/* MPI, dense: this rank's rows; the j side is every point. One process
 * keeps everything. */
static int split_rows(eigsh_state *s)
{
    s->nloc = s->n;
    if (!s->comm)
        return 0;
    char err[KFCLI_ERRLEN];
    s->bounds = malloc(sizeof(int64_t) * (size_t)(s->P + 1));
    if (!s->bounds) {
        fputs("kforge eigsh: out of memory\n", stderr);
        return KFCLI_EXIT_RUNTIME;
    }
    if (kfcli_split_rows(s->n, s->P, s->c.split, s->bounds, err, sizeof err))
        return usage("%s", err);
    s->loc.row0 = s->bounds[s->rank], s->loc.rows = s->bounds[s->rank + 1] - s->loc.row0;
    s->loc.j0 = 0, s->loc.nj = s->n;
    s->nloc = s->loc.rows;
    return 0;
}

/* MPI: the job's ranks; every rank but 0 goes quiet (stdout, and stderr
 * unless -v): they would print the same lines, and failures are collective,
 * so rank 0 reports them, naming the rank. */
static int join_ranks(eigsh_state *s)
{
    if (!(s->comm = kf_comm_world(s->ctx))) {
        fprintf(stderr, "kforge eigsh: %s\n", kf_errmsg(s->ctx));
        return KFCLI_EXIT_RUNTIME;
    }
    s->rank = kf_comm_rank(s->comm);
    s->P = kf_comm_size(s->comm);
    if (s->rank != 0) {
        s->progress = 0;
        if (!freopen("/dev/null", "w", stdout) || (!s->c.verbose && !freopen("/dev/null", "w", stderr)))
            return KFCLI_EXIT_RUNTIME;
    }
    return 0;
}

/* The kernel operator on the (sorted) points divided by sigma. */
static int make_operator(eigsh_state *s, const kf_ranges *rg)
{
    eigsh_cfg *c = &s->c;
    char ax[48], ay[48];
    snprintf(ax, sizeof ax, "x=Vi(0,%lld)", (long long)s->d);
    snprintf(ay, sizeof ay, "y=Vj(1,%lld)", (long long)s->d);
    const char *aliases[2] = {ax, ay};
    int rc;
    if (c->kernel == KER_FORMULA && (rc = check_formula(s, aliases)))
        return rc;
    kf_dtype dt = (kf_dtype)c->dtype;
    size_t es = dt == KF_FLOAT32 ? 4 : 8;
    /* A rank keeps only its j rows (which hold its own rows); read_dense_points
     * made them already. */
    int64_t first = s->comm ? s->loc.j0 : 0, rows = s->comm ? s->loc.nj : s->n;
    if (!s->pts && !(s->pts = malloc(es * (size_t)(rows * s->d) + 1))) {
        fputs("kforge eigsh: out of memory for the points\n", stderr);
        return KFCLI_EXIT_RUNTIME;
    }
    double scale = c->kernel == KER_FORMULA ? 1.0 : 1.0 / c->sigma;
    const double *src = s->dplan ? s->dplan->xj                             /* its j rows */
                        : s->x   ? (s->xs ? s->xs : s->x) + first * s->d
                                 : NULL; /* MPI, dense: read_dense_points made them */
    for (int64_t e = 0; src && e < rows * s->d; e++) {
        if (dt == KF_FLOAT32)
            ((float *)s->pts)[e] = (float)(src[e] * scale);
        else
            ((double *)s->pts)[e] = src[e] * scale;
    }
    if (s->dplan) /* converted: the float64 copy is not kept beside it */
        free(s->dplan->xj), s->dplan->xj = NULL;
    /* "(F)*v": F scalar, v the block of vectors (Vj(2, b)); linear in v */
    size_t fl = strlen(c->formula) + 8;
    char *formula = malloc(fl);
    if (!formula) {
        fputs("kforge eigsh: out of memory\n", stderr);
        return KFCLI_EXIT_RUNTIME;
    }
    snprintf(formula, fl, "(%s)*v", c->formula);
    kf_compile_opts co;
    kf_compile_opts_init(&co);
    co.jit = c->jit;
    co.backend = c->backend;
    co.device = c->device;
    const void *args[3] = {s->pts, s->pts, NULL};
    progress(s, "compiling the kernel...");
    if (s->comm) {
        args[0] = (const char *)s->pts + (size_t)((s->loc.row0 - s->loc.j0) * s->d) * es;
        kf_dist dist = {.comm = s->comm, .n = s->n, .row0 = s->loc.row0, .rows = s->loc.rows,
                        .j0 = s->loc.j0, .nj = s->loc.nj};
        s->K = kf_linop_formula_dist(s->ctx, formula, aliases, 2, "v", 2, args, 3, &dist, dt, &co,
                                     rg);
    } else {
        s->K = kf_linop_formula(s->ctx, formula, aliases, 2, "v", 2, args, 3, s->n, dt, &co, rg);
    }
    free(formula);
    if (!s->K) {
        progress_done(s);
        fprintf(stderr, "kforge eigsh: %s\n", kf_errmsg(s->ctx));
        return kfcli_exit_of(kf_status_of(s->ctx));
    }
    return 0;
}

static const char *mode_text(kf_spectral_mode m, int laplacian)
{
    switch (m) {
    case KF_SPECTRAL_DIRECT:
        return "direct (ARPACK on the operator as asked)";
    case KF_SPECTRAL_SHIFTED:
        return laplacian == 2 ? "shifted (largest of D^-1/2 K D^-1/2, lambda = 1 - mu)"
                              : "shifted (largest of c I - L, c = max D)";
    case KF_SPECTRAL_COARSE:
        return "coarse (shifted, started from a solve on a subsample)";
    default:
        return "auto";
    }
}

/* One kf_spectral solve into s->values / s->vectors / s->residuals. */
static int solve(eigsh_state *s, kf_spectral_mode mode, kf_eigsh_report *rep,
                 kf_spectral_mode *used, double *wall)
{
    const eigsh_cfg *c = &s->c;
    kf_spectral_opts so;
    kf_spectral_opts_init(&so);
    so.eig.k = c->k;
    so.eig.which = (kf_which)(c->which >= 0 ? c->which : c->laplacian ? KF_WHICH_SM : KF_WHICH_LM);
    so.eig.ncv = c->ncv;
    so.eig.tol = c->tol;
    so.eig.maxiter = c->maxiter;
    so.eig.seed = c->seed;
    so.laplacian = c->laplacian == 0 ? 0 : c->laplacian == 1 ? KF_GRAPH_LAPLACIAN
                                                              : KF_GRAPH_LAPLACIAN_NORM;
    so.mode = mode;
    so.solver = c->solver;
    so.block = c->block;
    so.coarse_n = c->coarse_n;
    progress_state ps = {.tty = s->progress,
                         .solver = c->solver == KF_SOLVER_BLOCK    ? "LOBPCG"
                                   : c->solver == KF_SOLVER_ARPACK ? "Lanczos"
                                                                   : "solving",
                         .residual = -1,
                         .eta = -1};
    if (s->progress || (c->verbose && !c->quiet)) {
        so.eig.progress = progress_matvecs;
        so.eig.progress_residual = progress_residual;
        so.eig.progress_user = &ps;
    }
    char msg[96];
    snprintf(msg, sizeof msg, "%s (%s mode, k = %d) on %lld points...",
             c->solver == KF_SOLVER_BLOCK    ? "LOBPCG"
             : c->solver == KF_SOLVER_ARPACK ? "Lanczos"
                                             : "Eigensolver",
             mode_names[mode], c->k,
             (long long)s->n);
    progress(s, msg);
    double t0 = kfcli_now();
    int st = kf_spectral(s->K, &so, s->values, s->vectors, s->residuals, rep, used);
    *wall = kfcli_now() - t0;
    progress_done(s);
    return st;
}

static double value_at(const eigsh_state *s, const void *v, int j)
{
    return s->c.dtype == KF_FLOAT32 ? (double)((const float *)v)[j] : ((const double *)v)[j];
}

static void print_report(const eigsh_state *s, const kf_eigsh_report *r, kf_spectral_mode used,
                         double solve_s)
{
    const eigsh_cfg *c = &s->c;
    printf("\nreport\n");
    printf("  mode          %s\n", mode_text(used, c->laplacian));
    if (r->solver == KF_SOLVER_BLOCK) {
        printf("  solver        block (LOBPCG)%s\n", c->solver == KF_SOLVER_AUTO ? ", auto" : "");
        printf("  converged     %d of %d\n", r->converged, c->k);
        printf("  iterations    %d block applies of %d columns\n", r->iterations, r->ncv);
    } else {
        printf("  converged     %d of %d (ARPACK info %d)\n", r->converged, c->k, r->arpack_info);
        printf("  iterations    %d (%d restart%s), ncv %d\n", r->iterations, r->restarts,
               r->restarts == 1 ? "" : "s", r->ncv);
    }
    printf("  matvecs       %lld", (long long)r->matvecs);
    if (r->matvecs_coarse)
        printf(" (%lld on the coarse start)", (long long)r->matvecs_coarse);
    printf("\n  residuals     max |A v - lambda v| = %.3g\n", r->max_residual);
    /* "other": the solver's setup (degrees are matvecs too), copies, residual checks */
    double rest = fmax(0.0, solve_s - r->matvec_s - r->arpack_s);
    printf("  solve time    %.3f s: matvecs %.3f s (%.1f%%), %s %.3f s, other %.3f s\n",
           solve_s, r->matvec_s, solve_s > 0 ? 100 * r->matvec_s / solve_s : 0.0,
           r->solver == KF_SOLVER_BLOCK ? "LOBPCG" : "ARPACK", r->arpack_s, rest);
    if (s->plan)
        printf("  block-sparse  %seps %g, cutoff %g: %lld x %lld clusters, kept %.2f%% of the "
               "pairs (%.2f%% within the cutoff, counted on %lld rows), plan %.3f s\n",
               c->block_sparse == 2 ? "auto: " : "", c->eps, c->cutoff, (long long)s->plan->ncx,
               (long long)s->plan->ncy, 100 * s->plan->kept_fraction,
               100 * s->plan->within_fraction, (long long)s->plan->within_rows,
               s->plan->total_s);
    if (s->dplan)
        printf("  block-sparse  %seps %g, cutoff %g: %lld x %lld clusters, kept %.2f%% of the "
               "pairs (%.2f%% within the cutoff, counted on %lld rows), plan %.3f s (across "
               "the ranks)\n",
               c->block_sparse == 2 ? "auto: " : "", c->eps, c->cutoff,
               (long long)s->dplan->nclusters, (long long)s->dplan->nclusters,
               100 * s->dplan->kept_fraction, 100 * s->dplan->within_fraction,
               (long long)s->dplan->within_rows, s->dplan->total_s);
    printf("  threads       %d%s\n", kf_threads(s->ctx), s->comm ? " per rank" : "");
}

/* Rows, j rows, matvec and communication seconds of every rank, on rank 0
 * (collective). stats gets P x 4 doubles there. */
static int gather_stats(eigsh_state *s, const kf_eigsh_report *r, double comm_s, double *stats)
{
    double mine[4] = {(double)s->loc.rows, (double)s->loc.nj, r->matvec_s, comm_s};
    return kf_comm_gather_rows(s->comm, mine, 1, sizeof mine, s->rank == 0 ? stats : NULL, 0);
}

static void print_ranks(const eigsh_state *s, const double *stats)
{
    printf("  ranks         %d (MPI; PARPACK or the block solver's reductions across ranks)\n",
           s->P);
    printf("                rank       rows     j rows   matvec s    of which communication s\n");
    for (int r = 0; r < s->P; r++) {
        const double *t = stats + 4 * r;
        printf("                %4d %10.0f %10.0f %10.3f %10.3f\n", r, t[0], t[1], t[2], t[3]);
    }
}

/* --compare: every other applicable mode, on the same operator, in one table. */
static int compare_modes(eigsh_state *s, kf_spectral_mode first, const kf_eigsh_report *r0,
                         double t0s, const void *ref)
{
    printf("\ncompare       mode       matvecs   iterations   solve s   max |dlambda| vs %s\n",
           mode_names[first]);
    printf("              %-8s %9lld %12d %9.3f   -\n", mode_names[first], (long long)r0->matvecs,
           r0->iterations, t0s);
    for (int m = KF_SPECTRAL_DIRECT; m <= KF_SPECTRAL_COARSE; m++) {
        if ((kf_spectral_mode)m == first)
            continue;
        kf_eigsh_report r;
        kf_spectral_mode used;
        double t;
        int st = solve(s, (kf_spectral_mode)m, &r, &used, &t);
        if (st != KF_OK && st != KF_ERR_NOCONV) {
            printf("              %-8s not run: %s\n", mode_names[m], kf_errmsg(s->ctx));
            continue;
        }
        double dl = 0;
        for (int j = 0; j < s->c.k; j++)
            dl = fmax(dl, fabs(value_at(s, s->values, j) - value_at(s, ref, j)));
        printf("              %-8s %9lld %12d %9.3f   %.3g%s\n", mode_names[m], (long long)r.matvecs,
               r.iterations, t, dl, st == KF_ERR_NOCONV ? " (not converged)" : "");
    }
    return 0;
}

static int write_files(eigsh_state *s)
{
    char err[KFCLI_ERRLEN];
    kfcli_npy_type t = s->c.dtype == KF_FLOAT32 ? KFCLI_NPY_F4 : KFCLI_NPY_F8;
    kfcli_npy vals = {t, 1, {s->c.k, 1}, s->c.k, s->values};
    kfcli_npy vecs = {t, 2, {s->n, s->c.k}, s->n * s->c.k, s->vec_user};
    int st = 0;
    if (s->c.out)
        st = kfcli_npy_stage(s->c.out, &vals, &s->tmp_out, err, sizeof err);
    if (!st && s->c.vectors)
        st = kfcli_npy_stage(s->c.vectors, &vecs, &s->tmp_vec, err, sizeof err);
    if (!st && s->tmp_out) {
        st = kfcli_npy_commit(s->tmp_out, s->c.out, 1, err, sizeof err);
        s->tmp_out = NULL;
    }
    if (!st && s->tmp_vec) {
        st = kfcli_npy_commit(s->tmp_vec, s->c.vectors, 1, err, sizeof err);
        s->tmp_vec = NULL;
    }
    if (st) {
        fprintf(stderr, "kforge eigsh: %s\n", err);
        return KFCLI_EXIT_RUNTIME;
    }
    return 0;
}

static void print_header(const eigsh_state *s)
{
    const eigsh_cfg *c = &s->c;
    if (c->have_gen)
        printf("points        %s:%lld:%llu (generated)", kf_gen_name(c->gen.kind),
               (long long)c->gen.n, (unsigned long long)c->gen.seed);
    else
        printf("points        %s", c->points);
    printf(", n = %lld, d = %lld, %s\n", (long long)s->n, (long long)s->d,
           kf_dtype_name((kf_dtype)c->dtype));
    if (c->kernel == KER_FORMULA)
        printf("kernel        %s\n", c->formula);
    else
        printf("kernel        %s, sigma %g\n", kernel_names[c->kernel], c->sigma);
    static const char *const ops[] = {"K", "L = diag(D) - K", "L_norm = I - D^-1/2 K D^-1/2"};
    int which = c->which >= 0 ? c->which : c->laplacian ? KF_WHICH_SM : KF_WHICH_LM;
    printf("operator      %s, %d eigenpairs, which %s\n", ops[c->laplacian], c->k,
           which_names[which]);
}

static int eigsh_main(eigsh_state *s, int argc, char **argv)
{
    double t_start = kfcli_now();
    eigsh_cfg *c = &s->c;
    int rc = parse_args(c, argc, argv);
    if (rc)
        return rc;
    if (c->help) {
        kfcli_help_eigsh(stdout);
        return 0;
    }
    if (!c->points == !c->have_gen)
        return usage(c->points ? "give --points or --gen, not both"
                               : "missing the points: --points X.npy or --gen spiral:N[:SEED]");
    s->progress = !c->quiet && isatty(2);
    /* MPI: asked for, or implied by a launcher; refused where not built in. */
    int launched = kfcli_mpi_launched(), want_mpi = c->mpi || c->split || launched > 0;
    if (want_mpi && !kf_mpi_available()) {
        if (c->mpi || c->split)
            return usage("%s: MPI is not built into this kforge (mpicc and PARPACK were not "
                         "found when it was built; docs/scale-out.md)",
                         c->mpi ? "--mpi" : "--mpi-split");
        if (launched > 1)
            return usage("started by an MPI launcher with %d ranks, but MPI is not built into "
                         "this kforge: each rank would solve the whole problem alone "
                         "(docs/scale-out.md)", launched);
        want_mpi = 0; /* mpirun -np 1 of a one-process build: as without mpirun */
    }
    s->want_mpi = want_mpi;
    if ((rc = load_points(s)) || (rc = check_sizes(s)))
        return rc;
    /* The default for large clouds and kernels that decay fast enough for
     * the cutoff to drop most pairs (the Cauchy kernel's 100 sigma would not). */
    if (!c->bs_set && s->n >= EIGSH_AUTO_SPARSE_N &&
        (c->kernel == KER_GAUSSIAN || c->kernel == KER_LAPLACE)) {
        c->block_sparse = 2;
        c->eps = c->cutoff = -1;
    }

    s->a.cmd = "eigsh";
    s->a.threads = c->threads;
    if (want_mpi && !c->threads && !getenv("KFORGE_THREADS")) {
        /* the node's cores shared by its ranks, not every rank on every core */
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        int per = (int)(cores > 0 ? cores : 1) / kfcli_mpi_local_ranks();
        s->a.threads = per > 1 ? (per < KF_MAX_THREADS ? per : KF_MAX_THREADS) : 1;
    }
    s->a.verbose = c->verbose;
    s->a.jit = c->jit;
    s->a.axis = 1;
    if (!(s->ctx = kfcli_ctx_new(&s->a, &rc)))
        return rc;
    if (want_mpi && (rc = join_ranks(s)))
        return rc;
    kf_ranges rg;
    rc = 0;
    if (c->block_sparse && s->per_rank)
        rc = plan_blocks_dist(s, &rg);
    else if (c->block_sparse)
        rc = plan_blocks(s, &rg);
    if (rc || (!(c->block_sparse && s->per_rank) && (rc = split_rows(s))))
        return rc;
    if (s->per_rank && !c->block_sparse && (rc = read_dense_points(s)))
        return rc;
    if ((rc = make_operator(s, c->block_sparse ? &rg : NULL)))
        return rc;
    if (s->sliced)
        kfcli_npy_close(&s->in), s->sliced = 0;
    /* the operator has its copy (s->pts, in its dtype): the float64 points
     * are not held through the solve */
    free(s->x), free(s->xs);
    s->x = s->xs = NULL;

    size_t es = c->dtype == KF_FLOAT32 ? 4 : 8;
    s->values = calloc((size_t)c->k, es);
    s->residuals = calloc((size_t)c->k, sizeof(double));
    s->vectors = malloc(es * (size_t)(s->nloc * c->k) + 1);
    void *ref = calloc((size_t)c->k, es);
    if (!s->values || !s->residuals || !s->vectors || !ref) {
        free(ref);
        fputs("kforge eigsh: out of memory for the eigenvectors\n", stderr);
        return KFCLI_EXIT_RUNTIME;
    }
    print_header(s);
    fflush(stdout); /* what is being solved shows before a long solve */
    kf_eigsh_report rep;
    kf_spectral_mode used = c->mode;
    double solve_s, comm0 = kf_comm_seconds(s->comm);
    int st = solve(s, c->mode, &rep, &used, &solve_s);
    double *stats = NULL;
    if (s->comm && (st == KF_OK || st == KF_ERR_NOCONV)) {
        /* collective, on the paths every rank takes alike (st is agreed) */
        stats = calloc((size_t)s->P, 4 * sizeof(double));
        double comm_s = kf_comm_seconds(s->comm) - comm0;
        if (gather_stats(s, &rep, comm_s, stats) != KF_OK) {
            free(stats);
            stats = NULL;
        }
    }
    if (st != KF_OK && st != KF_ERR_NOCONV) {
        free(ref);
        fprintf(stderr, "kforge eigsh: %s\n", kf_errmsg(s->ctx));
        return kfcli_exit_of(st);
    }
    int nshow = st == KF_OK ? c->k : rep.converged;
    printf("\neigenvalues (ascending)%s\n", st == KF_OK ? "" : ", the converged ones");
    if (nshow == 0)
        printf("  (none)\n");
    for (int j = 0; j < nshow; j++)
        printf("  %3d  %16.9g   residual %.2g\n", j, value_at(s, s->values, j), s->residuals[j]);
    print_report(s, &rep, used, solve_s);
    if (stats)
        print_ranks(s, stats);
    free(stats);
    if (st == KF_ERR_NOCONV) {
        free(ref);
        fprintf(stderr, "kforge eigsh: %s\n", kf_errmsg(s->ctx));
        fprintf(stderr, "kforge eigsh: %d of %d eigenpairs converged (--maxiter, --ncv, --tol); "
                        "no file written\n", rep.converged, c->k);
        return KFCLI_EXIT_RUNTIME;
    }
    memcpy(ref, s->values, es * (size_t)c->k);
    int unwritten = 0;
    int64_t *order = NULL; /* block-sparse MPI, rank 0: the input index of each sorted row */
    if (s->comm && c->vectors) { /* every rank's rows, in rank order, on rank 0 */
        void *all = s->rank == 0 ? malloc(es * (size_t)(s->n * c->k)) : NULL;
        order = s->rank == 0 && s->dplan ? malloc(sizeof(int64_t) * (size_t)s->n) : NULL;
        double bad = s->rank == 0 && (!all || (s->dplan && !order));
        if (kf_comm_allreduce(s->comm, &bad, 1, KF_REDUCE_MAX) != KF_OK || bad ||
            kf_comm_gather_rows(s->comm, s->vectors, s->nloc, (int64_t)es * c->k, all, 0) !=
                KF_OK ||
            (s->dplan && kf_comm_gather_rows(s->comm, s->dplan->index, s->nloc,
                                             (int64_t)sizeof(int64_t), order, 0) != KF_OK)) {
            free(ref), free(all), free(order);
            fputs("kforge eigsh: gathering the eigenvectors on rank 0 failed (out of memory?)\n",
                  stderr);
            return KFCLI_EXIT_RUNTIME;
        }
        if (s->rank == 0) {
            free(s->vectors);
            s->vectors = all;
        }
    }
    if (s->rank != 0) { /* only rank 0 writes; the others learn how that went */
        s->c.out = s->c.vectors = NULL;
    } else if ((s->plan || order) && c->vectors) { /* back to the user's order */
        if (!(s->vec_user = malloc(es * (size_t)(s->n * c->k)))) {
            /* no return: under MPI the other ranks wait to hear how the writing went */
            fputs("kforge eigsh: out of memory for the eigenvectors\n", stderr);
            s->c.out = s->c.vectors = NULL;
            unwritten = 1;
        } else if (s->plan) { /* row p is sorted row iperm[p] */
            kf_permute_rows(s->ctx, s->vectors, s->n, (int64_t)es * c->k, s->plan->iperm_x,
                            s->vec_user);
        } else { /* sorted row q is input row order[q] */
            size_t row = es * (size_t)c->k;
            for (int64_t q = 0; q < s->n; q++)
                memcpy((char *)s->vec_user + (size_t)order[q] * row,
                       (const char *)s->vectors + (size_t)q * row, row);
        }
    }
    free(order);
    if (!s->vec_user) {
        s->vec_user = s->vectors;
        s->vectors = NULL;
    }
    rc = unwritten ? KFCLI_EXIT_RUNTIME : write_files(s);
    if (s->comm) {
        double f = rc;
        rc = kf_comm_allreduce(s->comm, &f, 1, KF_REDUCE_MAX) == KF_OK ? (int)f
                                                                       : KFCLI_EXIT_RUNTIME;
    }
    if (!rc && c->compare) {
        s->vectors = s->vectors ? s->vectors : malloc(es * (size_t)(s->nloc * c->k) + 1);
        if (s->vectors)
            compare_modes(s, used, &rep, solve_s, ref);
    }
    memcpy(s->values, ref, es * (size_t)c->k);
    free(ref);
    printf("\ntotal         %.3f s (points, plan, compile, degrees, solve, output)\n",
           kfcli_now() - t_start);
    return rc;
}

int kfcli_eigsh(int argc, char **argv)
{
    eigsh_state s;
    memset(&s, 0, sizeof s);
    int rc = eigsh_main(&s, argc, argv);
    char err[KFCLI_ERRLEN];
    kfcli_npy_commit(s.tmp_out, s.c.out, 0, err, sizeof err);
    kfcli_npy_commit(s.tmp_vec, s.c.vectors, 0, err, sizeof err);
    kf_linop_free(s.K);
    kf_plan_free(s.plan);
    kf_dist_plan_free(s.dplan);
    if (s.sliced)
        kfcli_npy_close(&s.in);
    free(s.bounds);
    kf_comm_free(s.comm); /* after the last collective call; finalizes MPI */
    kf_free(s.ctx);
    free(s.x);
    free(s.xs);
    free(s.pts);
    free(s.values);
    free(s.vectors);
    free(s.vec_user);
    free(s.residuals);
    return rc;
}
