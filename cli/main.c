/* main.c -- the kforge command: dispatches to eval, check, bench, cache, eigsh, devices, help and
 * --version. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static void help_main(FILE *f)
{
    fputs("kforge -- reductions over all pairs of two point clouds, from KeOps formula strings\n"
          "\n"
          "Usage:\n"
          "  kforge eval FORMULA [options] -o OUT.npy ARG.npy...   compute a reduction\n"
          "  kforge check FORMULA [options]                        check a formula, print its\n"
          "                                                        canonical form and variables\n"
          "  kforge bench FORMULA [options]                        time the JIT tiers on random\n"
          "                                                        inputs\n"
          "  kforge cache list|info|clear                          the kernel cache\n"
          "  kforge eigsh --gen spiral:10000 [options]             spectral coordinates of a\n"
          "                                                        point cloud (--points X.npy)\n"
          "  kforge gen swissroll:100000 -o roll.npy               the built-in clouds (spiral too)\n"
          "  kforge devices                                        the CUDA devices, or why none\n"
          "  kforge help [COMMAND]                                 this text, or a command's\n"
          "  kforge --version                                      the version\n"
          "\n"
          "Example:\n"
          "  kforge eval 'Exp(-SqDist(x,y)/IntCst(2))*b' --alias 'x=Vi(0,3)' \\\n"
          "      --alias 'y=Vj(1,3)' --alias 'b=Vj(2,1)' --reduction Sum --axis 1 \\\n"
          "      -o a.npy x.npy y.npy b.npy\n"
          "\n"
          "Environment: KFORGE_THREADS (worker threads), KFORGE_JIT (auto, tcc, cc, reference),\n"
          "KFORGE_CACHE_DIR (the kernel cache), CC (the optimizing tier's compiler).\n"
          "Exit status: 0 ok, 1 runtime failure, 2 usage, formula or input error.\n"
          "Docs: docs/formulas.md (the formula language), docs/api.md (the C API).\n",
          f);
}

static int help(int argc, char **argv)
{
    if (argc < 2) {
        help_main(stdout);
        return KFCLI_EXIT_OK;
    }
    if (!strcmp(argv[1], "eval"))
        kfcli_help_eval(stdout);
    else if (!strcmp(argv[1], "check"))
        kfcli_help_check(stdout);
    else if (!strcmp(argv[1], "bench"))
        kfcli_help_bench(stdout);
    else if (!strcmp(argv[1], "cache"))
        kfcli_help_cache(stdout);
    else if (!strcmp(argv[1], "eigsh"))
        kfcli_help_eigsh(stdout);
    else if (!strcmp(argv[1], "devices"))
        kfcli_help_devices(stdout);
    else if (!strcmp(argv[1], "gen"))
        kfcli_help_gen(stdout);
    else if (!strcmp(argv[1], "help"))
        help_main(stdout);
    else {
        fprintf(stderr, "kforge help: no command '%s'; the commands are eval, check, bench, "
                        "cache, eigsh, gen and devices\n", argv[1]);
        return KFCLI_EXIT_USAGE;
    }
    return KFCLI_EXIT_OK;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        help_main(stderr);
        return KFCLI_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    int rc;
    if (!strcmp(cmd, "eval"))
        rc = kfcli_eval(argc - 1, argv + 1);
    else if (!strcmp(cmd, "check"))
        rc = kfcli_check(argc - 1, argv + 1);
    else if (!strcmp(cmd, "bench"))
        rc = kfcli_bench(argc - 1, argv + 1);
    else if (!strcmp(cmd, "cache"))
        rc = kfcli_cache(argc - 1, argv + 1);
    else if (!strcmp(cmd, "eigsh"))
        rc = kfcli_eigsh(argc - 1, argv + 1);
    else if (!strcmp(cmd, "devices"))
        rc = kfcli_devices(argc - 1, argv + 1);
    else if (!strcmp(cmd, "gen"))
        rc = kfcli_gen(argc - 1, argv + 1);
    else if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h"))
        rc = help(argc - 1, argv + 1);
    else if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("kforge %s\n", kf_version());
        rc = KFCLI_EXIT_OK;
    } else {
        fprintf(stderr, "kforge: unknown command '%s'; try 'kforge help'\n", cmd);
        return KFCLI_EXIT_USAGE;
    }
    if (fflush(stdout) != 0 && rc == KFCLI_EXIT_OK) {
        fputs("kforge: cannot write to stdout\n", stderr);
        rc = KFCLI_EXIT_RUNTIME;
    }
    return rc;
}
