/* cmd_detokenize.c — `tallow detokenize (--model M | --tokenizer FILE) --ids 1,2,3
 * [--skip-special]`: token ids -> text on stdout (exactly the decoded bytes, no newline added;
 * invalid UTF-8 from cut tokens comes out as U+FFFD, as Hugging Face decodes it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/core.h"

static void usage(FILE *f) {
    fputs("usage: tallow detokenize (--model DIR|REPO | --tokenizer FILE) --ids 1,2,3 "
          "[--skip-special]\n", f);
}

int cmd_detokenize(int argc, char **argv) {
    const char *model = NULL, *file = NULL, *ids_arg = NULL;
    int skip = 0;
    const cli_flag flags[] = {
        {"--skip-special", NULL, &skip, 1},
        {"--model", &model, NULL, 0},
        {"--tokenizer", &file, NULL, 0},
        {"--ids", &ids_arg, NULL, 0},
    };
    int rc = cli_flags_parse(argc, argv, "detokenize", flags, TL_ARRAY_LEN(flags), usage);
    if (rc != CLI_GO_ON) return rc;
    if (!!model == !!file) {
        cli_error("detokenize: give exactly one of --model and --tokenizer");
        return 2;
    }
    if (!ids_arg) {
        cli_error("detokenize: --ids is required");
        return 2;
    }
    int32_t *ids;
    int n = cli_parse_ids(ids_arg, "--ids", &ids);
    if (n < 0) return 2;
    tl_tokenizer *tok;
    if (cli_tok_load(model, file, &tok)) {
        free(ids);
        return 1;
    }
    tl_err err = {0};
    char *text;
    size_t len;
    rc = tl_tok_decode(tok, ids, (size_t)n, skip, &text, &len, &err);
    free(ids);
    tl_tok_free(tok);
    if (rc) {
        cli_error("%s", err.msg);
        return 1;
    }
    fwrite(text, 1, len, stdout);
    free(text);
    return fflush(stdout) ? 1 : 0;
}
