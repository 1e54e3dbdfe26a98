/* cmd_detokenize.c — `tallow detokenize`: not built yet; this file is replaced by its module's work. */
#include "cli/cli.h"

int cmd_detokenize(int argc, char **argv) {
    (void)argc;
    (void)argv;
    cli_error("'detokenize' is not available in this build yet");
    return 2;
}
