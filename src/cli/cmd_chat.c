/* cmd_chat.c — `tallow chat`: not built yet; this file is replaced by its module's work. */
#include "cli/cli.h"

int cmd_chat(int argc, char **argv) {
    (void)argc;
    (void)argv;
    cli_error("'chat' is not available in this build yet");
    return 2;
}
