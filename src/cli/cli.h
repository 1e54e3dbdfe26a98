/* cli.h — the tallow command-line tool: one file per command, each `int cmd_X(argc, argv)`
 * returning the process exit code (0 ok, 1 runtime failure, 2 usage / bad input). */
#ifndef TL_CLI_H
#define TL_CLI_H
#include <stdio.h>

#include "tallow.h"

int cmd_generate(int argc, char **argv);
int cmd_chat(int argc, char **argv);
int cmd_logits(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_synth(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_pull(int argc, char **argv);
int cmd_tokenize(int argc, char **argv);
int cmd_detokenize(int argc, char **argv);
int cmd_template(int argc, char **argv);

/* "tallow: <msg>" on stderr. */
void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Parse a comma-separated id list ("1,2,3"); returns count or -1 (with a message printed). */
int cli_parse_ids(const char *s, const char *flag, int32_t **out);
/* Strict number parsing for flags: 0 ok, -1 (message printed) when not a number in range. */
int cli_parse_int(const char *s, const char *flag, long lo, long hi, long *out);
int cli_parse_float(const char *s, const char *flag, double lo, double hi, double *out);
/* The tl_device named by --device's value ("cpu", "cuda", "auto"), or -1 (nothing printed: each
 * command words its own message). */
int cli_device_of(const char *s);
/* What a flag parser returns when the command goes on; otherwise it returns the exit code. */
enum { CLI_GO_ON = -1 };
/* One flag of a command with plain flags: "--name VALUE" stores VALUE in *value; a switch
 * (value NULL) stores on in *sw. */
typedef struct cli_flag {
    const char *name;
    const char **value;
    int *sw;
    int on;
} cli_flag;
/* Parse argv[1..argc-1] against flags[0..n-1]. -h/--help prints usage on stdout (exit code 0);
 * anything else prints "<cmd>: unknown or incomplete flag '<arg>'" and usage on stderr (2).
 * Returns CLI_GO_ON or that exit code. */
int cli_flags_parse(int argc, char **argv, const char *cmd, const cli_flag *flags, size_t n,
                    void (*usage)(FILE *f));
/* The tokenizer of --tokenizer FILE, or of --model (a directory or a repo id in the Hugging Face
 * cache): 0, or nonzero with the message printed. */
int cli_tok_load(const char *model, const char *file, tl_tokenizer **tok);
/* All of stdin, NUL-terminated (*n, when given, excludes the NUL); NULL with the message printed
 * when it cannot be read or is over 1 GiB. */
char *cli_read_stdin(size_t *n);
#endif
