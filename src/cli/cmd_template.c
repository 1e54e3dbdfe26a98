/* cmd_template.c — `tallow template`: not built yet; this file is replaced by its module's work. */
#include "cli/cli.h"

int cmd_template(int argc, char **argv) {
    (void)argc;
    (void)argv;
    cli_error("'template' is not available in this build yet");
    return 2;
}
