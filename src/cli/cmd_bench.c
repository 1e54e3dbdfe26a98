/* cmd_bench.c — `tallow bench`: not built yet; this file is replaced by its module's work. */
#include "cli/cli.h"

int cmd_bench(int argc, char **argv) {
    (void)argc;
    (void)argv;
    cli_error("'bench' is not available in this build yet");
    return 2;
}
