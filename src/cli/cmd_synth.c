/* cmd_synth.c — `tallow synth`: not built yet; this file is replaced by its module's work. */
#include "cli/cli.h"

int cmd_synth(int argc, char **argv) {
    (void)argc;
    (void)argv;
    cli_error("'synth' is not available in this build yet");
    return 2;
}
