/* test_tok_cli.c — `tallow tokenize` and `tallow detokenize` as a script would use them:
 * ids for --text and for stdin, --no-special, --format json, the text back from --ids,
 * --skip-special, and exit code 2 with a message for bad flags (1 for a missing model). */
#include <sys/wait.h>

#include "test.h"

static const char *bin(void) {
    const char *b = getenv("TALLOW_BIN");
    return b && *b ? b : "build/tallow";
}

/* Run cmd through the shell; its stdout into out (NUL-terminated); returns the exit code. */
static int run(const char *cmd, char *out, size_t cap) {
    FILE *p = popen(cmd, "r");
    if (!p) return -1;
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int main(void) {
    const char *dir = test_shared_dir();
    if (!dir) return test_skip("../shared/fixtures not present");
    FILE *f = fopen(bin(), "r");
    if (!f) return test_skip("tallow binary not built");
    fclose(f);
    char cmd[8192], out[65536];
    char llama[4096], qwen[4096];
    snprintf(llama, sizeof llama, "%s/tokenizers/llama-3.2/tokenizer.json", dir);
    snprintf(qwen, sizeof qwen, "%s/tokenizers/qwen3", dir);

    snprintf(cmd, sizeof cmd, "%s tokenize --tokenizer %s --text 'Hello world'", bin(), llama);
    CHECK(run(cmd, out, sizeof out) == 0);
    CHECK_STREQ(out, "128000 9906 1917\n");
    snprintf(cmd, sizeof cmd, "%s tokenize --tokenizer %s --no-special --text 'Hello world'", bin(), llama);
    CHECK(run(cmd, out, sizeof out) == 0);
    CHECK_STREQ(out, "9906 1917\n");
    snprintf(cmd, sizeof cmd, "printf 'Hello world\\n' | %s tokenize --model %s --format json", bin(), qwen);
    CHECK(run(cmd, out, sizeof out) == 0);
    CHECK_STREQ(out, "{\"ids\": [9707, 1879, 198]}\n");
    snprintf(cmd, sizeof cmd, "%s tokenize --model %s --text '<|im_start|>user'", bin(), qwen);
    CHECK(run(cmd, out, sizeof out) == 0);
    CHECK_STREQ(out, "151644 872\n");

    snprintf(cmd, sizeof cmd, "%s detokenize --tokenizer %s --ids 128000,9906,1917", bin(), llama);
    CHECK(run(cmd, out, sizeof out) == 0);
    CHECK_STREQ(out, "<|begin_of_text|>Hello world");
    snprintf(cmd, sizeof cmd, "%s detokenize --tokenizer %s --ids 128000,9906,1917 --skip-special", bin(),
             llama);
    CHECK(run(cmd, out, sizeof out) == 0);
    CHECK_STREQ(out, "Hello world");
    /* A cut character decodes as U+FFFD, like HF: 160 is Qwen's token for the lone byte 0xE4
     * (the lead byte of 中). */
    snprintf(cmd, sizeof cmd, "%s detokenize --model %s --ids 9707,160", bin(), qwen);
    CHECK(run(cmd, out, sizeof out) == 0);
    CHECK_STREQ(out, "Hello\xef\xbf\xbd");

    snprintf(cmd, sizeof cmd, "%s tokenize --tokenizer %s --bogus 2>/dev/null", bin(), llama);
    CHECK(run(cmd, out, sizeof out) == 2);
    snprintf(cmd, sizeof cmd, "%s tokenize --text x 2>/dev/null", bin());
    CHECK(run(cmd, out, sizeof out) == 2);
    snprintf(cmd, sizeof cmd, "%s tokenize --model %s --format yaml --text x 2>/dev/null", bin(), qwen);
    CHECK(run(cmd, out, sizeof out) == 2);
    snprintf(cmd, sizeof cmd, "%s detokenize --model %s --ids 1,x 2>/dev/null", bin(), qwen);
    CHECK(run(cmd, out, sizeof out) == 2);
    snprintf(cmd, sizeof cmd, "%s detokenize --model %s 2>/dev/null", bin(), qwen);
    CHECK(run(cmd, out, sizeof out) == 2);
    snprintf(cmd, sizeof cmd, "%s tokenize --model /nonexistent/dir --text x 2>&1", bin());
    CHECK(run(cmd, out, sizeof out) == 1 && strstr(out, "not found"));
    snprintf(cmd, sizeof cmd, "%s tokenize --tokenizer /dev/null/x.json --text x 2>&1", bin());
    CHECK(run(cmd, out, sizeof out) == 1 && strstr(out, "x.json"));
    return test_done();
}
