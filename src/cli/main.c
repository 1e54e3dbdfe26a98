/* main.c — `tallow <command> [flags]`: dispatch to the command files. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *help;
} commands[] = {
    {"generate", cmd_generate, "generate text from a prompt"},
    {"chat", cmd_chat, "interactive chat with history"},
    {"serve", cmd_serve, "OpenAI-compatible HTTP server"},
    {"bench", cmd_bench, "compare models: tokens/s, memory, bandwidth"},
    {"synth", cmd_synth, "write a random-weight model of a real shape"},
    {"inspect", cmd_inspect, "show a model's facts and its template's thinking behaviour"},
    {"pull", cmd_pull, "download a model into the Hugging Face cache"},
    {"logits", cmd_logits, "write the last position's logits (float32) to a file"},
    {"tokenize", cmd_tokenize, "text -> token ids"},
    {"detokenize", cmd_detokenize, "token ids -> text"},
    {"template", cmd_template, "render a chat template"},
};

static void usage(FILE *f) {
    fprintf(f, "tallow %s — run small quantized language models locally\n\n"
               "usage: tallow <command> [flags]   (tallow <command> --help)\n\ncommands:\n",
            TALLOW_VERSION);
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-11s %s\n", commands[i].name, commands[i].help);
}

void cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("tallow: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

int cli_parse_int(const char *s, const char *flag, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || *end || errno) {
        cli_error("%s expects an integer, got '%s'", flag, s ? s : "");
        return -1;
    }
    if (v < lo || v > hi) {
        cli_error("%s must be between %ld and %ld, got %ld", flag, lo, hi, v);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_parse_float(const char *s, const char *flag, double lo, double hi, double *out) {
    char *end;
    errno = 0;
    double v = s ? strtod(s, &end) : 0;
    if (!s || !*s || *end || errno || !isfinite(v)) {
        cli_error("%s expects a number, got '%s'", flag, s ? s : "");
        return -1;
    }
    if (v < lo || v > hi) {
        cli_error("%s must be between %g and %g, got %g", flag, lo, hi, v);
        return -1;
    }
    *out = v;
    return 0;
}

int cli_device_of(const char *s) {
    if (!strcmp(s, "cpu")) return TL_DEVICE_CPU;
    if (!strcmp(s, "cuda")) return TL_DEVICE_CUDA;
    if (!strcmp(s, "auto")) return TL_DEVICE_AUTO;
    return -1;
}

int cli_parse_ids(const char *s, const char *flag, int32_t **out) {
    *out = NULL;
    if (!s) {
        cli_error("%s needs a value like 1,2,3", flag);
        return -1;
    }
    size_t cap = 1;
    for (const char *p = s; *p; p++) cap += *p == ',';
    int32_t *ids = malloc(cap * sizeof *ids);
    if (!ids) return -1;
    int n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > INT32_MAX || (*end && *end != ',')) {
            cli_error("%s: '%s' is not a comma-separated list of token ids (at offset %d)", flag,
                      s, (int)(p - s));
            free(ids);
            return -1;
        }
        ids[n++] = (int32_t)v;
        p = *end ? end + 1 : end;
        if (*end == ',' && !*p) {
            cli_error("%s: trailing comma in '%s'", flag, s);
            free(ids);
            return -1;
        }
    }
    if (n == 0) {
        cli_error("%s: empty id list", flag);
        free(ids);
        return -1;
    }
    *out = ids;
    return n;
}

#define CLI_STDIN_MAX (1u << 30)

char *cli_read_stdin(size_t *n) {
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (len + 1 >= cap) { /* room for the NUL */
            if (cap >= CLI_STDIN_MAX) {
                cli_error("stdin is over %u bytes", CLI_STDIN_MAX);
                free(buf);
                return NULL;
            }
            char *b = realloc(buf, cap * 2);
            if (!b) break;
            buf = b, cap *= 2;
        }
        size_t got = fread(buf + len, 1, cap - len - 1, stdin);
        len += got;
        if (got == 0) {
            if (ferror(stdin)) {
                cli_error("reading stdin failed");
                free(buf);
                return NULL;
            }
            buf[len] = 0;
            if (n) *n = len;
            return buf;
        }
    }
    free(buf);
    cli_error("out of memory reading stdin");
    return NULL;
}

int cli_flags_parse(int argc, char **argv, const char *cmd, const cli_flag *flags, size_t n,
                    void (*usage)(FILE *f)) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        const cli_flag *fl = NULL;
        for (size_t k = 0; k < n && !fl; k++)
            if (!strcmp(a, flags[k].name) && (!flags[k].value || i + 1 < argc)) fl = &flags[k];
        if (!fl) {
            cli_error("%s: unknown or incomplete flag '%s'", cmd, a);
            usage(stderr);
            return 2;
        }
        if (fl->value) *fl->value = argv[++i];
        else *fl->sw = fl->on;
    }
    return CLI_GO_ON;
}

int cli_tok_load(const char *model, const char *file, tl_tokenizer **tok) {
    tl_err err = {0};
    int rc;
    if (file) rc = tl_tok_load(file, tok, &err);
    else {
        char dir[4096];
        rc = tl_model_locate(model, NULL, dir, sizeof dir, &err);
        if (!rc) rc = tl_tok_load_dir(dir, tok, &err);
    }
    if (rc) cli_error("%s", err.msg);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        usage(stdout);
        return argc < 2 ? 2 : 0;
    }
    if (!strcmp(argv[1], "--version")) {
        printf("tallow %s\n", TALLOW_VERSION);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].fn(argc - 1, argv + 1);
    cli_error("unknown command '%s' (tallow --help lists them)", argv[1]);
    return 2;
}
