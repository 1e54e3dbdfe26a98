/* cmd_pull.c — `tallow pull org/name [--revision R] [--include GLOB]... [--token T]`: download a
 * hub repo into the Hugging Face cache (the work is tl_hub_pull in src/store/pull.c), with a
 * progress bar when stderr is a terminal. Prints the snapshot directory. Exit 0 ok, 1 failure
 * (network, HTTP, checksum, disk), 2 usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "store/store.h"

static void usage(FILE *f) {
    fprintf(f, "usage: tallow pull org/name [--revision R] [--include GLOB]... [--token T]\n"
               "  download a model into the Hugging Face cache (HF_HUB_CACHE, HF_HOME/hub or\n"
               "  ~/.cache/huggingface/hub), where transformers and mlx-lm find it too; resumable.\n"
               "  --revision R     branch, tag or commit (default main)\n"
               "  --include GLOB   only files matching GLOB (repeatable), e.g. '*.json'\n"
               "  --token T        hub token (default: $HF_TOKEN)\n"
               "  --retries N      resume a cut transfer N times before giving up (default 3)\n"
               "  environment: HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE=1 (no network)\n");
}

typedef struct bar {
    char file[256];
    uint64_t t0, last;
} bar;

static void human(double b, char *out, size_t cap) {
    const char *u[] = {"B", "kB", "MB", "GB", "TB"};
    int i = 0;
    while (b >= 1000 && i < 4) b /= 1000, i++;
    snprintf(out, cap, i ? "%.1f %s" : "%.0f %s", b, u[i]);
}

static void progress(void *ctx, const char *file, uint64_t done, uint64_t total, int state) {
    bar *b = ctx;
    uint64_t now = tl_now_ns();
    if (strcmp(b->file, file)) {
        snprintf(b->file, sizeof b->file, "%s", file);
        b->t0 = now;
        b->last = 0;
    }
    int finished = state != 0;
    if (!finished && now - b->last < 100000000ull) return; /* 10 updates a second */
    b->last = now;
    char d[32], t[32], r[32];
    human((double)done, d, sizeof d);
    human((double)total, t, sizeof t);
    double secs = (double)(now - b->t0) / 1e9;
    human(secs > 0 ? (double)done / secs : 0, r, sizeof r);
    int pct = total ? (int)(100.0 * (double)done / (double)total) : 0, w = 24, fill = pct * w / 100;
    char line[64];
    for (int i = 0; i < w; i++) line[i] = i < fill ? '#' : '.';
    line[w] = 0;
    if (state == 2) fprintf(stderr, "\r\033[K%-32.32s [%s] %3d%% %s  (cached)\n", file, line, pct, t);
    else fprintf(stderr, "\r\033[K%-32.32s [%s] %3d%% %s / %s  %s/s%s", file, line, pct, d, t, r,
                 finished ? "\n" : "");
    fflush(stderr);
}

int cmd_pull(int argc, char **argv) {
    tl_pull_opts o = {.retries = 3};
    const char **inc = calloc((size_t)argc + 1, sizeof *inc);
    if (!inc) return 1;
    o.include = inc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            free(inc);
            return 0;
        }
        if (!strcmp(a, "--retries")) {
            long r;
            if (cli_parse_int(val, "--retries", 0, 100, &r)) {
                free(inc);
                return 2;
            }
            o.retries = (int)r;
            i++;
        } else if (!strcmp(a, "--revision") || !strcmp(a, "--include") || !strcmp(a, "--token")) {
            if (!val || !*val) {
                cli_error("pull: %s needs a value", a);
                free(inc);
                return 2;
            }
            i++;
            if (!strcmp(a, "--revision")) o.revision = val;
            else if (!strcmp(a, "--token")) o.token = val;
            else inc[o.n_include++] = val;
        } else if (a[0] == '-' || o.repo) {
            cli_error("pull: unexpected argument '%s' (see tallow pull --help)", a);
            free(inc);
            return 2;
        } else {
            o.repo = a;
        }
    }
    if (!o.repo) {
        cli_error("pull: which model? usage: tallow pull org/name");
        free(inc);
        return 2;
    }
    bar b;
    memset(&b, 0, sizeof b);
    if (isatty(2)) {
        o.progress = progress;
        o.progress_ctx = &b;
    }
    tl_pull_result res;
    tl_err err = {0};
    int rc = tl_hub_pull(&o, &res, &err);
    free(inc);
    if (rc) {
        if (isatty(2)) fputc('\n', stderr);
        cli_error("%s", err.msg);
        return rc == -TL_EINVAL ? 2 : 1;
    }
    char d[32];
    human((double)res.bytes_downloaded, d, sizeof d);
    fprintf(stderr, "%s @ %s: %d file%s (%d downloaded, %s; %d already in the cache)\n", o.repo,
            res.commit, res.n_files, res.n_files == 1 ? "" : "s", res.n_downloaded, d, res.n_reused);
    printf("%s\n", res.snapshot);
    return 0;
}
