/* cmd_synth.c — `tallow synth --like NAME [--bits 4|8|16] [--seed S] [--layers N] -o DIR`:
 * write a random-weight model with a real model's published configuration and shapes (the work
 * is tl_synth_write in src/store/synth.c). Exit 0 ok, 1 write failure, 2 usage. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "store/store.h"

static void usage(FILE *f) {
    fprintf(f, "usage: tallow synth --like NAME [--bits 4|8|16] [--seed S] [--layers N] -o DIR\n"
               "  write a model with NAME's exact configuration and tensor shapes and random weights\n"
               "  (mlx-community layout: MLX affine 4/8-bit, group 64, or bf16), with a tokenizer and\n"
               "  chat template of the right shape. Everything tallow prints about it says synthetic.\n"
               "  NAME: %s\n"
               "  --bits     4 (default), 8, or 16 (bf16, unquantized)\n"
               "  --seed     random seed (default 0); the same seed writes the same bytes\n"
               "  --layers   write only the first N layers (for tests)\n"
               "  -o, --out  output directory (created)\n",
            tl_synth_names());
}

static void progress(void *ctx, int done, int n) {
    (void)ctx;
    if (n > 1) fprintf(stderr, "\rsynth: wrote shard %d of %d", done, n);
    if (n > 1 && done == n) fputc('\n', stderr);
}

int cmd_synth(int argc, char **argv) {
    tl_synth_opts o = {.bits = 4};
    long v;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        }
        int takes = !strcmp(a, "--like") || !strcmp(a, "--bits") || !strcmp(a, "--seed") ||
                    !strcmp(a, "--layers") || !strcmp(a, "-o") || !strcmp(a, "--out");
        if (!takes) {
            cli_error("synth: unknown argument '%s' (see tallow synth --help)", a);
            return 2;
        }
        if (!val) {
            cli_error("synth: %s needs a value", a);
            return 2;
        }
        i++;
        if (!strcmp(a, "--like")) o.like = val;
        else if (!strcmp(a, "-o") || !strcmp(a, "--out")) o.out_dir = val;
        else if (!strcmp(a, "--bits")) {
            if (cli_parse_int(val, "--bits", 4, 16, &v)) return 2;
            if (v != 4 && v != 8 && v != 16) {
                cli_error("--bits must be 4, 8 or 16, got %ld", v);
                return 2;
            }
            o.bits = (int)v;
        } else if (!strcmp(a, "--seed")) {
            if (cli_parse_int(val, "--seed", 0, 0x7fffffffffffffffL, &v)) return 2;
            o.seed = (uint64_t)v;
        } else if (!strcmp(a, "--layers")) {
            if (cli_parse_int(val, "--layers", 1, 1000, &v)) return 2;
            o.layers = (int)v;
        }
    }
    if (!o.like || !o.out_dir) {
        cli_error("synth: --like NAME and -o DIR are required (NAME: %s)", tl_synth_names());
        return 2;
    }
    if (isatty(2)) o.progress = progress;
    tl_synth_info info;
    tl_err err = {0};
    int rc = tl_synth_write(&o, &info, &err);
    if (rc) {
        cli_error("%s", err.msg);
        return rc == -TL_EINVAL ? 2 : 1;
    }
    printf("synthetic %s (random weights, seed %llu): %d layers, %lld parameters, %s, "
           "%.2f GB in %d file%s -> %s%s\n",
           o.like, (unsigned long long)o.seed, info.n_layers, (long long)info.n_params,
           o.bits == 16 ? "bf16" : o.bits == 8 ? "MLX 8-bit" : "MLX 4-bit",
           (double)info.n_bytes / 1e9, info.n_shards, info.n_shards > 1 ? "s" : "", o.out_dir,
           info.real_template ? "" : " (minimal chat template: fixtures not found)");
    return 0;
}
