/* cmd_logits.c — `tallow logits --model M --prompt-ids 1,2,3 --out FILE [--threads N] [--exact]`:
 * run the prompt through the model and write the last position's logits as little-endian
 * float32 (vocab_size floats) to FILE; print a one-line summary (vocab, argmax, max |logit|,
 * backend). Exit 0 ok, 1 runtime failure, 2 bad usage or input (the message says which). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/core.h"
#include "engine/engine.h"

static void usage(FILE *f) {
    fprintf(f, "usage: tallow logits --model M --prompt-ids 1,2,3 --out FILE [--threads N] "
               "[--exact]\n"
               "  --model M          model directory or Hugging Face repo id (org/name)\n"
               "  --prompt-ids LIST  comma-separated token ids\n"
               "  --out FILE         where the last position's logits go (float32, little-endian)\n"
               "  --threads N        CPU threads (default: all cores)\n"
               "  --exact            use the scalar reference kernels\n");
}

/* Writes and closes f. */
static int write_le_f32(FILE *f, const float *v, int n) {
    int ok = 1;
    for (int i = 0; i < n && ok; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        unsigned char b[4] = {(unsigned char)u, (unsigned char)(u >> 8), (unsigned char)(u >> 16),
                              (unsigned char)(u >> 24)};
        ok = fwrite(b, 1, 4, f) == 4;
    }
    if (fclose(f) != 0) ok = 0;
    return ok ? 0 : -1;
}

int cmd_logits(int argc, char **argv) {
    const char *model = NULL, *ids_s = NULL, *out = NULL;
    long threads = 0;
    int exact = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_v = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--exact")) {
            exact = 1;
        } else if (!strcmp(a, "--model") && has_v) {
            model = argv[++i];
        } else if (!strcmp(a, "--prompt-ids") && has_v) {
            ids_s = argv[++i];
        } else if (!strcmp(a, "--out") && has_v) {
            out = argv[++i];
        } else if (!strcmp(a, "--threads") && has_v) {
            if (cli_parse_int(argv[++i], "--threads", 0, 4096, &threads)) return 2;
        } else {
            cli_error("logits: unknown flag or missing value: '%s' (see tallow logits --help)", a);
            return 2;
        }
    }
    if (!model || !ids_s || !out) {
        cli_error("logits: --model, --prompt-ids and --out are required");
        usage(stderr);
        return 2;
    }
    int32_t *ids = NULL;
    int n = cli_parse_ids(ids_s, "--prompt-ids", &ids);
    if (n < 0) return 2;
    if (n == 0) {
        cli_error("logits: --prompt-ids is empty");
        free(ids);
        return 2;
    }
    /* --out is opened first, so a bad path fails before the model is loaded and run; a file
     * this run created is removed again when the run fails (never one that was there, such as
     * /dev/null) */
    int created = access(out, F_OK) != 0;
    FILE *fout = fopen(out, "wb");
    if (!fout) {
        cli_error("logits: --out %s: %s", out, strerror(errno));
        free(ids);
        return 2;
    }
    tl_err err = {0};
    tl_engine *e = NULL;
    tl_engine_opts o = {.model = model, .threads = (int)threads, .exact = exact,
                        .ctx_len = 0, .max_slots = 1};
    int rc = tl_engine_open(&e, &o, &err);
    if (rc == 0 && n > tl_engine_ctx_len(e)) {
        /* a long prompt: ask for a context that holds it */
        tl_engine_close(e);
        o.ctx_len = n;
        rc = tl_engine_open(&e, &o, &err);
    }
    if (rc) {
        cli_error("logits: %s", err.msg);
        free(ids);
        fclose(fout);
        if (created) remove(out);
        return rc == -TL_ENOMEM || rc == -TL_ERUNTIME ? 1 : 2;
    }
    const tl_model_info *info = tl_engine_info(e);
    int V = info->vocab_size;
    float *logits = malloc((size_t)V * sizeof(float));
    int slot = logits ? tl_slot_acquire(e, &err) : -TL_ENOMEM;
    tl_batch_seq s = {.slot = slot, .n_tokens = n, .tokens = ids, .want_logits = 1};
    if (slot < 0 || (rc = tl_engine_forward(e, &s, 1, logits, &err))) {
        cli_error("logits: %s", logits ? err.msg : "out of memory");
        int code = (rc == -TL_EINVAL || rc == -TL_ELIMIT) ? 2 : 1;
        free(logits);
        free(ids);
        tl_engine_close(e);
        fclose(fout);
        if (created) remove(out);
        return code;
    }
    if (write_le_f32(fout, logits, V)) {
        cli_error("logits: cannot write %s: %s", out, strerror(errno));
        free(logits);
        free(ids);
        tl_engine_close(e);
        return 1;
    }
    int am = 0;
    float mx = 0;
    for (int i = 0; i < V; i++) {
        if (logits[i] > logits[am]) am = i;
        float a = logits[i] < 0 ? -logits[i] : logits[i];
        if (a > mx) mx = a;
    }
    printf("logits: %d prompt tokens, vocab %d, argmax %d (%.6g), max |logit| %.6g, backend %s, "
           "wrote %s\n", n, V, am, (double)logits[am], (double)mx,
           tl_engine_backend(e)->name, out);
    free(logits);
    free(ids);
    tl_engine_close(e);
    return 0;
}
