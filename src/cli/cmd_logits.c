/* cmd_logits.c — `tallow logits`: not built yet; this file is replaced by its module's work. */
#include "cli/cli.h"

int cmd_logits(int argc, char **argv) {
    (void)argc;
    (void)argv;
    cli_error("'logits' is not available in this build yet");
    return 2;
}
