/* cmd_serve.c — `tallow serve`: not built yet; this file is replaced by its module's work. */
#include "cli/cli.h"

int cmd_serve(int argc, char **argv) {
    (void)argc;
    (void)argv;
    cli_error("'serve' is not available in this build yet");
    return 2;
}
