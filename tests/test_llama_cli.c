/* test_llama_cli.c — `tallow logits` end to end: the file it writes holds the golden logits
 * (little-endian float32, vocab floats), the summary line names the argmax, and bad input exits
 * 2 with a message. Needs TALLOW_BIN (set by CTest). */
#include <math.h>

#include "test.h"
#include "test_llama_common.h"

int main(void) {
    const char *bin = getenv("TALLOW_BIN");
    if (!bin || !tl_file_exists(bin)) return test_skip("TALLOW_BIN not set");
    const char *g = LLAMA_DATA "/llama-a/golden_hf.txt";
    if (!tl_file_exists(g)) return test_skip("tests/data/llama is missing");
    char tmp[256], cmd[2048], out[4096], file[512];
    if (make_tmpdir(tmp, sizeof tmp, "logits")) return test_skip("no temp dir");
    snprintf(file, sizeof file, "%s/l.bin", tmp);
    int n = 0, nl = 0;
    double *ref = golden_get(g, "logits0", &nl);
    double *pr = golden_get(g, "prompt0", &n);
    CHECK(ref && pr && nl == 256);
    char ids[512] = "";
    for (int i = 0; i < n; i++)
        snprintf(ids + strlen(ids), sizeof ids - strlen(ids), "%s%d", i ? "," : "", (int)pr[i]);
    const char *modes[] = {"--exact", "--threads 2"};
    for (int m = 0; m < 2; m++) {
        snprintf(cmd, sizeof cmd, "'%s' logits --model " LLAMA_DATA "/llama-a/bf16 --prompt-ids %s "
                 "--out %s %s 2>&1", bin, ids, file, modes[m]);
        int rc = test_run(cmd, out, sizeof out);
        CHECKF(rc == 0, "%s -> %d: %s", cmd, rc, out);
        CHECKF(strstr(out, "argmax 73") != NULL, "summary: %s", out);
        FILE *f = fopen(file, "rb");
        unsigned char buf[2048];
        size_t got = f ? fread(buf, 1, sizeof buf, f) : 0;
        if (f) fclose(f);
        CHECKF(got == 256 * 4, "file holds %zu bytes", got);
        double mx = 0, err = 0;
        for (int i = 0; i < 256 && got == 1024 && ref; i++) {
            uint32_t u = buf[4 * i] | (uint32_t)buf[4 * i + 1] << 8 | (uint32_t)buf[4 * i + 2] << 16 |
                         (uint32_t)buf[4 * i + 3] << 24;
            float v;
            memcpy(&v, &u, 4);
            if (fabs(ref[i]) > mx) mx = fabs(ref[i]);
            if (fabs(v - ref[i]) > err) err = fabs(v - ref[i]);
        }
        CHECKF(err <= 1e-3 * mx, "%s: max error %.3g of %.3g", modes[m], err, mx);
    }
    /* bad input: exit 2 and a message */
    const char *bad[][2] = {
        {"--model " LLAMA_DATA "/llama-a/bf16 --prompt-ids 1,2,999 --out /dev/null", "vocabulary"},
        {"--model " LLAMA_DATA "/no-such --prompt-ids 1 --out /dev/null", "not found"},
        {"--model " LLAMA_DATA "/llama-a/bf16 --prompt-ids 1,x --out /dev/null", "prompt-ids"},
        {"--model " LLAMA_DATA "/llama-a/bf16 --out /dev/null", "required"},
        {"--model " LLAMA_DATA "/llama-a/bf16 --prompt-ids 1 --out /dev/null --bogus", "bogus"},
    };
    for (size_t i = 0; i < TL_ARRAY_LEN(bad); i++) {
        snprintf(cmd, sizeof cmd, "'%s' logits %s 2>&1", bin, bad[i][0]);
        int rc = test_run(cmd, out, sizeof out);
        CHECKF(rc == 2, "%s -> %d", cmd, rc);
        CHECKF(strstr(out, bad[i][1]) != NULL, "%s: message lacks '%s': %s", cmd, bad[i][1], out);
    }
    /* an --out that cannot be written fails at once, naming the flag (a directory, no parent) */
    const char *outs[] = {tmp, "/nonexistent-dir/l.bin"};
    for (size_t i = 0; i < TL_ARRAY_LEN(outs); i++) {
        snprintf(cmd, sizeof cmd, "'%s' logits --model " LLAMA_DATA "/llama-a/bf16 --prompt-ids 1 "
                 "--out %s 2>&1", bin, outs[i]);
        int rc = test_run(cmd, out, sizeof out);
        int lines = 0;
        for (const char *p = out; *p; p++) lines += *p == '\n';
        CHECKF(rc == 2 && strstr(out, "--out") && lines == 1, "%s -> %d: %s", cmd, rc, out);
    }
    /* a failed run leaves no file behind */
    char gone[600];
    snprintf(gone, sizeof gone, "%s/never.bin", tmp);
    snprintf(cmd, sizeof cmd, "'%s' logits --model " LLAMA_DATA "/llama-a/bf16 --prompt-ids 999 "
             "--out %s 2>&1", bin, gone);
    CHECK(test_run(cmd, out, sizeof out) == 2);
    CHECKF(!tl_file_exists(gone), "%s was left behind by a failed run", gone);
    free(ref);
    free(pr);
    rm_rf(tmp);
    return test_done();
}
