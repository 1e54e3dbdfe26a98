/* cmd_tokenize.c — `tallow tokenize (--model M | --tokenizer FILE) [--no-special]
 * [--format text|json] [--text T]`: text (from --text, else all of stdin) -> token ids, printed
 * space-separated on one line, or as {"ids": [...]} with --format json. Special tokens (the
 * post-processor's, e.g. Llama 3's <|begin_of_text|>) are added unless --no-special. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/core.h"


static void usage(FILE *f) {
    fputs("usage: tallow tokenize (--model DIR|REPO | --tokenizer FILE) [--no-special]\n"
          "                       [--format text|json] [--text T]   (text from stdin otherwise)\n",
          f);
}

int cmd_tokenize(int argc, char **argv) {
    const char *model = NULL, *file = NULL, *text = NULL, *format = "text";
    int special = 1;
    const cli_flag flags[] = {
        {"--no-special", NULL, &special, 0},
        {"--model", &model, NULL, 0},
        {"--tokenizer", &file, NULL, 0},
        {"--text", &text, NULL, 0},
        {"--format", &format, NULL, 0},
    };
    int rc = cli_flags_parse(argc, argv, "tokenize", flags, TL_ARRAY_LEN(flags), usage);
    if (rc != CLI_GO_ON) return rc;
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
    rc = tl_tok_encode(tok, text, len, special ? TL_TOK_ADD_SPECIAL : 0, &ids, &n, &err);
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
