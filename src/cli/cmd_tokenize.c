/* cmd_tokenize.c — `tallow tokenize (--model M | --tokenizer FILE) [--no-special]
 * [--format text|json] [--text T]`: text (from --text, else all of stdin) -> token ids, printed
 * space-separated on one line, or as {"ids": [...]} with --format json. Special tokens (the
 * post-processor's, e.g. Llama 3's <|begin_of_text|>) are added unless --no-special. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"


static void usage(FILE *f) {
    fputs("usage: tallow tokenize (--model DIR|REPO | --tokenizer FILE) [--no-special]\n"
          "                       [--format text|json] [--text T]   (text from stdin otherwise)\n",
          f);
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *file = NULL, *text = NULL, *format = "text";
    int special = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--no-special")) special = 0;
        else if (!strcmp(a, "--model") && has) model = argv[++i];
        else if (!strcmp(a, "--tokenizer") && has) file = argv[++i];
        else if (!strcmp(a, "--text") && has) text = argv[++i];
        else if (!strcmp(a, "--format") && has) format = argv[++i];
        else {
            cli_error("tokenize: unknown or incomplete flag '%s'", a);
            usage(stderr);
            return 2;
        }
    }
    if (!!model == !!file) {
        cli_error("tokenize: give exactly one of --model and --tokenizer");
        return 2;
    }
    if (strcmp(format, "text") && strcmp(format, "json")) {
        cli_error("tokenize: --format must be text or json, got '%s'", format);
        return 2;
    }
    tl_tokenizer *tok;
    if (cli_tok_load(model, file, &tok)) return 1;
    size_t len;
    char *owned = NULL;
    if (text) len = strlen(text);
    else {
        owned = cli_read_stdin(&len);
        if (!owned) {
            tl_tok_free(tok);
            return 1;
        }
        text = owned;
    }
    int32_t *ids;
    size_t n;
    tl_err err = {0};
    int rc = tl_tok_encode(tok, text, len, special ? TL_TOK_ADD_SPECIAL : 0, &ids, &n, &err);
    free(owned);
    tl_tok_free(tok);
    if (rc) {
        cli_error("%s", err.msg);
        return 1;
    }
    int json = !strcmp(format, "json");
    fputs(json ? "{\"ids\": [" : "", stdout);
    for (size_t i = 0; i < n; i++) printf(i ? (json ? ", %d" : " %d") : "%d", ids[i]);
    fputs(json ? "]}\n" : "\n", stdout);
    free(ids);
    return fflush(stdout) ? 1 : 0;
}
