/* test_tok_cli.c — `tallow tokenize` and `tallow detokenize` as a script would use them:
 * ids for --text and for stdin, --no-special, --format json, the text back from --ids,
 * --skip-special, and exit code 2 with a message for bad flags (1 for a missing model). */
#include <stdarg.h>

#include "test.h"

static const char *bin(void) {
    const char *b = getenv("TALLOW_BIN");
    return b && *b ? b : "build/tallow";
}

/* Run the command printf(fmt, ...) and check its exit code and its whole output, or with
 * want_out NULL that it printed something (a usage error's message). */
static void expect(int want_rc, const char *want_out, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void expect(int want_rc, const char *want_out, const char *fmt, ...) {
    char cmd[8192], out[65536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = test_run(cmd, out, sizeof out);
    CHECKF(rc == want_rc, "%s -> %d, expected %d", cmd, rc, want_rc);
    if (want_out)
        CHECKF(!strcmp(out, want_out), "%s\n  got:      \"%s\"\n  expected: \"%s\"", cmd, out,
               want_out);
    else
        CHECKF(out[0] != 0, "%s: no message", cmd);
}

int main(void) {
    const char *dir = test_shared_dir();
    if (!dir) return test_skip("../shared/fixtures not present");
    FILE *f = fopen(bin(), "r");
    if (!f) return test_skip("tallow binary not built");
    fclose(f);
    const char *B = bin();
    char llama[4096], qwen[4096];
    snprintf(llama, sizeof llama, "%s/tokenizers/llama-3.2/tokenizer.json", dir);
    snprintf(qwen, sizeof qwen, "%s/tokenizers/qwen3", dir);

    expect(0, "128000 9906 1917\n", "%s tokenize --tokenizer %s --text 'Hello world'", B, llama);
    expect(0, "9906 1917\n", "%s tokenize --tokenizer %s --no-special --text 'Hello world'", B, llama);
    expect(0, "{\"ids\": [9707, 1879, 198]}\n",
           "printf 'Hello world\\n' | %s tokenize --model %s --format json", B, qwen);
    expect(0, "151644 872\n", "%s tokenize --model %s --text '<|im_start|>user'", B, qwen);

    expect(0, "<|begin_of_text|>Hello world", "%s detokenize --tokenizer %s --ids 128000,9906,1917", B,
           llama);
    expect(0, "Hello world", "%s detokenize --tokenizer %s --ids 128000,9906,1917 --skip-special", B,
           llama);
    /* A cut character decodes as U+FFFD, like HF: 160 is Qwen's token for the lone byte 0xE4
     * (the lead byte of 中). */
    expect(0, "Hello\xef\xbf\xbd", "%s detokenize --model %s --ids 9707,160", B, qwen);

    expect(2, NULL, "%s tokenize --tokenizer %s --bogus 2>&1 >/dev/null", B, llama);
    expect(2, NULL, "%s tokenize --text x 2>&1 >/dev/null", B);
    expect(2, NULL, "%s tokenize --model %s --format yaml --text x 2>&1 >/dev/null", B, qwen);
    expect(2, NULL, "%s detokenize --model %s --ids 1,x 2>&1 >/dev/null", B, qwen);
    expect(2, NULL, "%s detokenize --model %s 2>&1 >/dev/null", B, qwen);
    char cmd[8192], out[65536];
    snprintf(cmd, sizeof cmd, "%s tokenize --model /nonexistent/dir --text x 2>&1", B);
    CHECK(test_run(cmd, out, sizeof out) == 1 && strstr(out, "not found"));
    snprintf(cmd, sizeof cmd, "%s tokenize --tokenizer /dev/null/x.json --text x 2>&1", B);
    CHECK(test_run(cmd, out, sizeof out) == 1 && strstr(out, "x.json"));
    return test_done();
}
