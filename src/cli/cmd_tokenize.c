/* cmd_tokenize.c — `tallow tokenize`: not built yet; this file is replaced by its module's work. */
#include "cli/cli.h"

int cmd_tokenize(int argc, char **argv) {
    (void)argc;
    (void)argv;
    cli_error("'tokenize' is not available in this build yet");
    return 2;
}
