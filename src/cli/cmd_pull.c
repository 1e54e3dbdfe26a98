/* cmd_pull.c — `tallow pull`: not built yet; this file is replaced by its module's work. */
#include "cli/cli.h"

int cmd_pull(int argc, char **argv) {
    (void)argc;
    (void)argv;
    cli_error("'pull' is not available in this build yet");
    return 2;
}
