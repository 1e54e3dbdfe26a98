/* cmd_generate.c — `tallow generate`: not built yet; this file is replaced by its module's work. */
#include "cli/cli.h"

int cmd_generate(int argc, char **argv) {
    (void)argc;
    (void)argv;
    cli_error("'generate' is not available in this build yet");
    return 2;
}
