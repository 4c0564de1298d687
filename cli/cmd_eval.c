/* cmd_eval.c -- `kforge eval`: .npy files in, one reduction, .npy files out (atomically). */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/npy.h"

void kfcli_help_eval(FILE *f)
{
    fputs(
        "Usage: kforge eval FORMULA [--alias A]... --reduction R --axis 0|1 -o OUT.npy ARG.npy...\n"
        "\n"
        "Evaluates the reduction R of FORMULA over all pairs (i, j) without storing them:\n"
        "axis 1 reduces over j (one output row per i, M rows), axis 0 over i (N rows).\n"
        "\n"
        "Arguments:\n"
        "  FORMULA              a KeOps formula (docs/formulas.md); put -- before it if it\n"
        "                       starts with '-'\n"
        "  ARG.npy...           the arrays of variable indices 0, 1, 2, ... in that order; there\n"
        "                       must be one per index up to the highest one used. A file for an\n"
        "                       index the formula does not use is not read (any path will do).\n"
        "                       i-variables: shape (M, dim), or (M,) when dim is 1; j-variables:\n"
        "                       (N, dim) or (N,); parameters: (dim,) or (1, dim). Little-endian\n"
        "                       float32 or float64, C order, .npy version 1, 2 or 3.\n"
        "\n"
        "Options:\n"
        "  -a, --alias A        a variable name, e.g. x=Vi(0,3), y=Vj(1,3), p=Pm(2,1), x=Vi(3)\n"
        "  -r, --reduction R    Sum Max Min ArgMax ArgMin Max_ArgMax Min_ArgMin KMin ArgKMin\n"
        "                       KMin_ArgKMin LogSumExp LogSumExpWeight SumSoftMaxWeight\n"
        "                       Max_SumShiftExp\n"
        "  --axis 0|1           reduce over i (0) or over j (1)\n"
        "  -K N                 K of KMin, ArgKMin and KMin_ArgKMin\n"
        "  --formula2 F         the weight formula of LogSumExpWeight, SumSoftMaxWeight and\n"
        "                       Max_SumShiftExp (same variables and aliases)\n"
        "  --dtype T            float32 or float64; default: that of the first file read\n"
        "                       (float64 when none is); every file read must have it\n"
        "  --threads N          worker threads (default: $KFORGE_THREADS, else every core)\n"
        "  --jit E              auto (default), tcc, cc (the optimizing tier, waited for)\n"
        "                       or reference (the slow double-precision oracle)\n"
        "  --backend B          auto (default: the GPU for runs of 2^26 pairs or more when\n"
        "                       one is usable), cpu, or cuda (an error without a GPU)\n"
        "  --device D           the GPU ordinal for cuda/auto (default 0; kforge devices)\n"
        "  --sum-scheme S       float32 Sum accumulation: block (default), direct, f64, kahan\n"
        "  -o, --output OUT     the result: (rows, values) of the dtype; for ArgMin, ArgMax\n"
        "                       and ArgKMin the int64 indices (rows, indices)\n"
        "  --index-out IDX      the int64 indices of Max_ArgMax, Min_ArgMin, KMin_ArgKMin\n"
        "  -M M, -N N           the number of i (j) points when no i- (j-) variable gives it\n"
        "  --block-sparse EPS:CUTOFF[:kmeans=ITERS]\n"
        "                       block-sparse run (docs/blocksparse.md): cluster the first\n"
        "                       i-variable and the first j-variable (by index; they must have\n"
        "                       the same dim) on grids of cells of side EPS, compute only the\n"
        "                       cluster pairs that could hold a pair within CUTOFF (their\n"
        "                       points' boxes at most CUTOFF apart: every pair within CUTOFF\n"
        "                       is computed; CUTOFF may be inf), others count as absent; results\n"
        "                       come out in the files' order. E.g. 4 sigma for a Gaussian of\n"
        "                       width sigma. With :kmeans=ITERS the grid clusters are refined\n"
        "                       by ITERS Lloyd (k-means) iterations, for dims where grid cells\n"
        "                       are useless (D > 3 or so)\n"
        "  -v, --verbose        engine, threads, compile and run times, pairs/s on stderr;\n"
        "                       with --block-sparse also the clusters, the kept fraction of\n"
        "                       the pairs and the planning time\n"
        "  --dump               also print the program after each compiler pass\n"
        "  -h, --help           this text\n"
        "\n"
        "Outputs appear only when everything succeeded (written to a temporary file, then\n"
        "renamed). Exit status: 0 ok, 1 runtime failure, 2 usage, formula or input error.\n"
        "\n"
        "Example (Gaussian kernel sum, a_i = sum_j exp(-|x_i - y_j|^2 / 2) b_j):\n"
        "  kforge eval 'Exp(-SqDist(x,y)/IntCst(2))*b' --alias 'x=Vi(0,3)' \\\n"
        "      --alias 'y=Vj(1,3)' --alias 'b=Vj(2,1)' --reduction Sum --axis 1 \\\n"
        "      -o a.npy x.npy y.npy b.npy\n",
        f);
}

static const char *const cat_names[3] = {"i-variable", "j-variable", "parameter"};

/* The shape of variable v's file against its category and dim; *rows gets the
 * point count of an i- or j-variable. Prints the error; returns 0 if it fits. */
static int check_shape(const char *file, const kfcli_npy *x, int v, int cat, int64_t dim,
                       int64_t *rows)
{
    char shp[64];
    kfcli_npy_shape_str(x, shp, sizeof shp);
    if (cat == 2) {
        if ((x->ndim == 1 && x->shape[0] == dim) || (x->ndim == 2 && x->shape[0] == 1 && x->shape[1] == dim) ||
            (x->ndim == 0 && dim == 1))
            return 0;
        fprintf(stderr, "kforge eval: %s: shape %s does not fit variable %d (parameter, dim %lld); "
                        "expected (%lld,) or (1, %lld)\n",
                file, shp, v, (long long)dim, (long long)dim, (long long)dim);
        return -1;
    }
    const char *n = cat == 0 ? "M" : "N";
    if ((x->ndim == 2 && x->shape[1] == dim) || (x->ndim == 1 && dim == 1)) {
        *rows = x->shape[0];
        return 0;
    }
    if (dim == 1)
        fprintf(stderr, "kforge eval: %s: shape %s does not fit variable %d (%s, dim 1); "
                        "expected (%s, 1) or (%s,)\n",
                file, shp, v, cat_names[cat], n, n);
    else
        fprintf(stderr, "kforge eval: %s: shape %s does not fit variable %d (%s, dim %lld); "
                        "expected (%s, %lld)\n",
                file, shp, v, cat_names[cat], (long long)dim, n, (long long)dim);
    return -1;
}

/* Everything eval holds, freed in one place. */
typedef struct eval_state {
    kfcli_args a;
    kf_ctx *ctx;
    kf_kernel *k;
    kfcli_npy *in; /* one per ARG file */
    const void **argp;
    void *out;
    int64_t *idx;
    char *tmp_out, *tmp_idx;
    /* --block-sparse */
    kf_plan *plan;
    void **sorted;     /* per variable index: the rows in cluster order, or NULL */
    void *sout;        /* the result in cluster order */
    int64_t *sidx;
} eval_state;

static void eval_free(eval_state *s)
{
    char err[KFCLI_ERRLEN];
    kfcli_npy_commit(s->tmp_out, s->a.out, 0, err, sizeof err);
    kfcli_npy_commit(s->tmp_idx, s->a.index_out, 0, err, sizeof err);
    for (int f = 0; s->in && f < s->a.nfiles; f++)
        kfcli_npy_free(&s->in[f]);
    free(s->in);
    free(s->argp);
    for (int v = 0; s->sorted && v < s->a.nfiles; v++)
        free(s->sorted[v]);
    free(s->sorted);
    free(s->sout);
    free(s->sidx);
    kf_plan_free(s->plan);
    free(s->out);
    free(s->idx);
    kf_kernel_free(s->k);
    kf_free(s->ctx);
    kfcli_args_free(&s->a);
}

static int fail_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("kforge eval: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return KFCLI_EXIT_USAGE;
}

static int read_arg(eval_state *s, int f)
{
    char err[KFCLI_ERRLEN];
    if (s->in[f].data)
        return 0;
    int st = kfcli_npy_read(s->a.files[f], &s->in[f], err, sizeof err);
    if (st) {
        fprintf(stderr, "kforge eval: %s\n", err);
        return st == KF_ERR_NOMEM ? KFCLI_EXIT_RUNTIME : KFCLI_EXIT_USAGE;
    }
    if (s->in[f].type == KFCLI_NPY_I8)
        return fail_usage("%s: 'descr' is '<i8' (int64); expected '<f4' or '<f8'", s->a.files[f]);
    return 0;
}

/* Binds the files to the kernel's variables; finds M and N. */
static int bind_args(eval_state *s, kf_dtype dtype, const char *dtype_from, int64_t *M, int64_t *N)
{
    const char *from[2] = {NULL, NULL}; /* the file that set M, N */
    int64_t cnt[2] = {s->a.M, s->a.N};
    for (int v = 0; v < s->a.nfiles; v++) {
        int cat;
        int64_t dim, rows = 0;
        if (kf_kernel_var(s->k, v, &cat, &dim) != KF_OK)
            return fail_usage("internal: variable %d has no description", v);
        if (cat < 0)
            continue; /* an index the formula does not use: not read */
        int rc = read_arg(s, v);
        if (rc)
            return rc;
        const char *file = s->a.files[v];
        kf_dtype t = s->in[v].type == KFCLI_NPY_F4 ? KF_FLOAT32 : KF_FLOAT64;
        if (t != dtype)
            return fail_usage("%s: 'descr' is '%s' but the dtype is %s (from %s)", file,
                              kfcli_npy_descr(s->in[v].type), kf_dtype_name(dtype),
                              dtype_from);
        if (check_shape(file, &s->in[v], v, cat, dim, &rows))
            return KFCLI_EXIT_USAGE;
        s->argp[v] = s->in[v].data;
        if (cat == 2)
            continue;
        const char *opt = cat == 0 ? "-M" : "-N";
        if (from[cat] && cnt[cat] != rows)
            return fail_usage("%s has %lld rows but %s has %lld: %s must agree (%s)", file,
                              (long long)rows, from[cat], (long long)cnt[cat],
                              cat == 0 ? "i-variables" : "j-variables", cat == 0 ? "M" : "N");
        if (!from[cat] && cnt[cat] >= 0 && cnt[cat] != rows)
            return fail_usage("%s has %lld rows but %s is %lld", file, (long long)rows, opt,
                              (long long)cnt[cat]);
        from[cat] = file;
        cnt[cat] = rows;
    }
    for (int c = 0; c < 2; c++)
        if (cnt[c] < 0)
            return fail_usage("the formula has no %s: give %s with %s", cat_names[c],
                              c == 0 ? "M (the number of i points)" : "N (the number of j points)",
                              c == 0 ? "-M" : "-N");
    *M = cnt[0], *N = cnt[1];
    return 0;
}

static int write_outputs(eval_state *s, kf_dtype dtype, int64_t rows, int64_t odim, int64_t idim)
{
    char err[KFCLI_ERRLEN];
    kfcli_npy vals = {dtype == KF_FLOAT32 ? KFCLI_NPY_F4 : KFCLI_NPY_F8, 2, {rows, odim}, rows * odim,
                      s->out};
    kfcli_npy inds = {KFCLI_NPY_I8, 2, {rows, idim}, rows * idim, s->idx};
    int st;
    if (odim > 0) {
        st = kfcli_npy_stage(s->a.out, &vals, &s->tmp_out, err, sizeof err);
        if (!st && s->a.index_out)
            st = kfcli_npy_stage(s->a.index_out, &inds, &s->tmp_idx, err, sizeof err);
    } else {
        st = kfcli_npy_stage(s->a.out, &inds, &s->tmp_out, err, sizeof err);
    }
    if (!st) {
        st = kfcli_npy_commit(s->tmp_out, s->a.out, 1, err, sizeof err);
        s->tmp_out = NULL;
    }
    if (!st && s->tmp_idx) {
        st = kfcli_npy_commit(s->tmp_idx, s->a.index_out, 1, err, sizeof err);
        s->tmp_idx = NULL;
    }
    if (st) {
        fprintf(stderr, "kforge eval: %s\n", err);
        return KFCLI_EXIT_RUNTIME;
    }
    return 0;
}


/* --block-sparse EPS:CUTOFF: plans on the first i- and the first j-variable
 * (kf_plan_block_sparse), sorts every i-variable by perm_x and every
 * j-variable by perm_y, runs kf_run_ranges on the sorted copies, then gives
 * the results back in the files' order: output row r of the user is sorted
 * row iperm[r], and an index t into the sorted inner cloud is perm[t] in the
 * user's. ob, ib: bytes of s->out and s->idx. */
static int block_sparse(eval_state *s, kf_dtype dtype, int64_t M, int64_t N, int64_t rows,
                        size_t ob, size_t ib, double *t_run)
{
    const kfcli_args *a = &s->a;
    kf_kernel *k = s->k;
    int64_t dx = 0, dy = 0;
    int xv = kfcli_first_var(k, 0, &dx), yv = kfcli_first_var(k, 1, &dy);
    if (xv < 0 || yv < 0)
        return fail_usage("--block-sparse clusters the first i-variable and the first "
                          "j-variable; the formula has no %s",
                          xv < 0 ? "i-variable (Vi)" : "j-variable (Vj)");
    if (dx != dy)
        return fail_usage("--block-sparse clusters the first i-variable and the first "
                          "j-variable, which need the same dim: variable %d has dim %lld, "
                          "variable %d dim %lld",
                          xv, (long long)dx, yv, (long long)dy);
    size_t es = dtype == KF_FLOAT32 ? 4 : 8;
    int nargs = kf_kernel_nargs(k);
    double t0 = kfcli_now();
    s->plan = kf_plan_block_sparse(s->ctx, dtype, s->argp[xv], M, s->argp[yv], N, dx, a->bs_eps,
                                   a->bs_cutoff, a->bs_kmeans);
    if (!s->plan) {
        fprintf(stderr, "kforge eval: --block-sparse: %s\n", kf_errmsg(s->ctx));
        return kfcli_exit_of(kf_status_of(s->ctx));
    }
    double t_plan = kfcli_now() - t0;
    const kf_plan *p = s->plan;

    /* sorted copies of every i- and j-variable; parameters as they are */
    t0 = kfcli_now();
    s->sorted = calloc((size_t)nargs + 1, sizeof *s->sorted);
    const void **sargs = calloc((size_t)nargs + 1, sizeof *sargs);
    int st = s->sorted && sargs ? KF_OK : KF_ERR_NOMEM;
    for (int v = 0; v < nargs && st == KF_OK; v++) {
        int cat;
        int64_t dim;
        sargs[v] = s->argp[v];
        if (kf_kernel_var(k, v, &cat, &dim) != KF_OK || (cat != 0 && cat != 1))
            continue;
        int64_t n = cat == 0 ? M : N;
        size_t rb = (size_t)dim * es; /* bounded: the file holds n rows of it */
        if (!(s->sorted[v] = malloc(rb * (size_t)n + 1))) {
            st = KF_ERR_NOMEM;
            break;
        }
        st = kf_permute_rows(s->ctx, s->argp[v], n, (int64_t)rb, cat == 0 ? p->perm_x : p->perm_y,
                             s->sorted[v]);
        sargs[v] = s->sorted[v];
    }
    double t_perm = kfcli_now() - t0;
    if (st == KF_OK && (!(s->sout = malloc(ob ? ob : 16)) || !(s->sidx = malloc(ib ? ib : 16))))
        st = KF_ERR_NOMEM;
    if (st != KF_OK) {
        free(sargs);
        if (st == KF_ERR_NOMEM)
            fputs("kforge eval: --block-sparse: out of memory for the sorted inputs\n", stderr);
        else
            fprintf(stderr, "kforge eval: --block-sparse: %s\n", kf_errmsg(s->ctx));
        return KFCLI_EXIT_RUNTIME;
    }

    kf_ranges rg;
    kf_blocks_view(p->blocks, &rg);
    t0 = kfcli_now();
    st = kf_run_ranges(k, M, N, sargs, nargs, &rg, s->sout, s->sidx);
    *t_run = kfcli_now() - t0;
    free(sargs);
    if (st != KF_OK) {
        fprintf(stderr, "kforge eval: %s\n", kf_errmsg(s->ctx));
        return kfcli_exit_of(st);
    }

    /* back to the files' order */
    t0 = kfcli_now();
    int axis = kf_kernel_axis(k);
    const int64_t *iperm = axis == 1 ? p->iperm_x : p->iperm_y;
    const int64_t *inner_perm = axis == 1 ? p->perm_y : p->perm_x;
    int64_t odim = kf_kernel_out_dim(k), idim = kf_kernel_index_dim(k);
    for (int64_t q = 0; q < rows * idim; q++)
        if (s->sidx[q] >= 0)
            s->sidx[q] = inner_perm[s->sidx[q]];
    st = KF_OK;
    if (odim > 0)
        st = kf_permute_rows(s->ctx, s->sout, rows, odim * (int64_t)es, iperm, s->out);
    if (st == KF_OK && idim > 0)
        st = kf_permute_rows(s->ctx, s->sidx, rows, idim * 8, iperm, s->idx);
    if (st != KF_OK) {
        fprintf(stderr, "kforge eval: --block-sparse: %s\n", kf_errmsg(s->ctx));
        return KFCLI_EXIT_RUNTIME;
    }
    double t_back = kfcli_now() - t0;
    if (a->verbose)
        fprintf(stderr,
                "kforge eval: block-sparse on variables %d (i) and %d (j), dim %lld, eps %g, "
                "cutoff %g: %lld x %lld clusters, kept %.2f%% of the pairs (%.2f%% within the "
                "cutoff, counted on %lld rows); planning %.3f ms (cluster %.3f, sort %.3f, ranges "
                "%.3f, mask %.3f, within %.3f), sorting the inputs %.3f ms, restoring the order "
                "%.3f ms\n",
                xv, yv, (long long)dx, a->bs_eps, a->bs_cutoff, (long long)p->ncx,
                (long long)p->ncy, 100 * p->kept_fraction, 100 * p->within_fraction,
                (long long)p->within_rows, 1e3 * t_plan, 1e3 * p->cluster_s, 1e3 * p->sort_s,
                1e3 * p->ranges_s, 1e3 * p->mask_s, 1e3 * p->within_s, 1e3 * t_perm, 1e3 * t_back);
    return 0;
}

/* Without --dtype, the dtype is that of the first file the formula uses: a
 * compile without a reduction (front end only, no JIT) tells which that is. */
static int dtype_of_files(eval_state *s, kf_dtype *dtype, char *from, size_t cap)
{
    int rc;
    kfcli_args probe = s->a;
    probe.reduction = NULL;
    probe.dump = 0;
    kf_kernel *k = kfcli_compile(s->ctx, &probe, KF_FLOAT64, &rc);
    if (!k)
        return rc;
    int v = 0, cat = -1;
    int64_t dim;
    for (; v < kf_kernel_nargs(k) && v < s->a.nfiles; v++)
        if (kf_kernel_var(k, v, &cat, &dim) == KF_OK && cat >= 0)
            break;
    kf_kernel_free(k);
    if (cat < 0) {
        snprintf(from, cap, "the default: no file is read");
        return 0;
    }
    if ((rc = read_arg(s, v)))
        return rc;
    *dtype = s->in[v].type == KFCLI_NPY_F4 ? KF_FLOAT32 : KF_FLOAT64;
    snprintf(from, cap, "%s", s->a.files[v]);
    return 0;
}

static int eval_main(eval_state *s, int argc, char **argv)
{
    kfcli_args *a = &s->a;
    int rc = kfcli_args_parse(KFCLI_CMD_EVAL, "eval", argc, argv, a);
    if (rc)
        return rc;
    if (a->help) {
        kfcli_help_eval(stdout);
        return 0;
    }
    if (!a->formula)
        return fail_usage("missing FORMULA (see 'kforge help eval')");
    if (!a->reduction)
        return fail_usage("missing --reduction (see 'kforge help eval')");
    if (a->axis < 0)
        return fail_usage("missing --axis 0|1 (see 'kforge help eval')");
    if (!a->out)
        return fail_usage("missing -o OUT.npy (see 'kforge help eval')");
    if (a->index_out && kfcli_same_output(a->index_out, a->out))
        return fail_usage("-o '%s' and --index-out '%s' name the same file", a->out, a->index_out);

    s->in = calloc((size_t)a->nfiles + 1, sizeof *s->in);
    s->argp = calloc((size_t)a->nfiles + 1, sizeof *s->argp);
    if (!s->in || !s->argp) {
        fputs("kforge eval: out of memory\n", stderr);
        return KFCLI_EXIT_RUNTIME;
    }

    /* The dtype must be known before compiling: --dtype, else the first file's. */
    kf_dtype dtype = KF_FLOAT64;
    char dtype_from[64 + 4096];
    snprintf(dtype_from, sizeof dtype_from, "--dtype");
    if (a->dtype >= 0) {
        dtype = (kf_dtype)a->dtype;
    }
    if (!(s->ctx = kfcli_ctx_new(a, &rc)))
        return rc;
    if (a->dtype < 0 && (rc = dtype_of_files(s, &dtype, dtype_from, sizeof dtype_from)))
        return rc;
    double t0 = kfcli_now();
    if (!(s->k = kfcli_compile(s->ctx, a, dtype, &rc)))
        return rc;
    double t_compile = kfcli_now() - t0;

    int nargs = kf_kernel_nargs(s->k);
    if (nargs == 0 && a->nfiles > 0)
        return fail_usage("the formula uses no variable, so it takes no ARG file; got %d",
                          a->nfiles);
    if (a->nfiles != nargs)
        return fail_usage("the formula uses variable indices 0..%d, so it needs %d ARG file%s; "
                          "got %d",
                          nargs - 1, nargs, nargs == 1 ? "" : "s", a->nfiles);
    int64_t odim = kf_kernel_out_dim(s->k), idim = kf_kernel_index_dim(s->k);
    if (odim == 0 && a->index_out)
        return fail_usage("--index-out: %s's indices are its main output; they go to -o",
                          kf_kernel_reduction(s->k));
    if (a->index_out && idim == 0)
        return fail_usage("--index-out: %s gives no indices", kf_kernel_reduction(s->k));

    int64_t M = 0, N = 0;
    if ((rc = bind_args(s, dtype, dtype_from, &M, &N)))
        return rc;
    int64_t rows = kf_kernel_axis(s->k) == 1 ? M : N;
    size_t es = dtype == KF_FLOAT32 ? 4 : 8, ob, ib;
    if (__builtin_mul_overflow((uint64_t)rows, (uint64_t)odim, &ob) || __builtin_mul_overflow(ob, es, &ob) ||
        __builtin_mul_overflow((uint64_t)rows, (uint64_t)idim, &ib) || __builtin_mul_overflow(ib, 8, &ib)) {
        fprintf(stderr, "kforge eval: the output (%lld rows) is too large\n", (long long)rows);
        return KFCLI_EXIT_RUNTIME;
    }
    s->out = malloc(ob ? ob : 16);
    s->idx = malloc(ib ? ib : 16);
    if (!s->out || !s->idx) {
        fprintf(stderr, "kforge eval: out of memory for the output (%zu bytes)\n", ob + ib);
        return KFCLI_EXIT_RUNTIME;
    }

    double t_run = 0;
    if (a->bs_eps > 0) {
        if ((rc = block_sparse(s, dtype, M, N, rows, ob, ib, &t_run)))
            return rc;
    } else {
        t0 = kfcli_now();
        int st = kf_run(s->k, M, N, s->argp, nargs, s->out, s->idx);
        t_run = kfcli_now() - t0;
        if (st != KF_OK) {
            fprintf(stderr, "kforge eval: %s\n", kf_errmsg(s->ctx));
            return kfcli_exit_of(st);
        }
    }
    if (a->verbose) {
        double pairs = (double)M * (double)N * (s->plan ? s->plan->kept_fraction : 1.0);
        fprintf(stderr,
                "kforge eval: engine %s, %d thread%s, compile %.3f ms, run %.3f ms, %.4g pairs, "
                "%.4g pairs/s\n",
                kf_kernel_engine(s->k), kf_threads(s->ctx), kf_threads(s->ctx) == 1 ? "" : "s",
                1e3 * t_compile, 1e3 * t_run, pairs, t_run > 0 ? pairs / t_run : 0.0);
    }
    return write_outputs(s, dtype, rows, odim, idim);
}

int kfcli_eval(int argc, char **argv)
{
    eval_state s;
    memset(&s, 0, sizeof s);
    int rc = eval_main(&s, argc, argv);
    eval_free(&s);
    return rc;
}
