/* cmd_inspect.c — `tallow inspect`: not built yet; this file is replaced by its module's work. */
#include "cli/cli.h"

int cmd_inspect(int argc, char **argv) {
    (void)argc;
    (void)argv;
    cli_error("'inspect' is not available in this build yet");
    return 2;
}
