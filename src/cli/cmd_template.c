/* cmd_template.c — `tallow template`: render a chat template exactly as transformers'
 * apply_chat_template would, for scripts and checks. Prints the rendered text and nothing else
 * (no added newline). Exit codes: 0 ok; 1 the template raised (its message on stderr) or
 * rendering failed; 2 usage or unreadable / malformed input. */
#define _GNU_SOURCE
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/core.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: tallow template (--model M | --chat-template FILE) --messages FILE.json [flags]\n\n"
            "Render a chat template as transformers' apply_chat_template does and print the text\n"
            "exactly (no newline added).\n\n"
            "  --model M                 model directory (or HF cache repo id): the template comes\n"
            "                            from chat_template.jinja or tokenizer_config.json, and\n"
            "                            bos/eos tokens from tokenizer_config.json\n"
            "  --chat-template FILE      a template file (.jinja text, or a tokenizer_config.json)\n"
            "  --messages FILE.json      a JSON array of messages, or an object with \"messages\"\n"
            "                            (and \"tools\"); '-' reads stdin\n"
            "  --tools FILE.json         a JSON array of tools (OpenAI function schema)\n"
            "  --kwargs JSON             extra template variables, e.g.\n"
            "                            '{\"date_string\": \"26 Jul 2024\", \"enable_thinking\": false}'\n"
            "  --thinking on|off         define enable_thinking. Default: left undefined, so the\n"
            "                            template's own default applies (Qwen3.5-4B opens a <think>\n"
            "                            block, Qwen3.5-2B pre-closes it; see `tallow inspect`)\n"
            "  --no-generation-prompt    do not end with the assistant header\n"
            "  --continue-final-message  leave the final message open for the model to continue\n"
            "  --bos-token S, --eos-token S   override the special tokens\n");
}

static int read_input(const char *path, char **out, const char *what) {
    tl_err err = {0};
    size_t n;
    if (!strcmp(path, "-")) {
        if (!(*out = cli_read_stdin(&n))) return -1; /* says why */
        if (n > (64u << 20)) {
            free(*out);
            *out = NULL;
            cli_error("%s: stdin larger than 64 MiB", what);
            return -1;
        }
        return 0;
    }
    if (tl_read_file(path, 64u << 20, out, &n, &err)) {
        cli_error("%s: %s", what, err.msg);
        return -1;
    }
    return 0;
}

/* A template file may be .jinja text or a tokenizer_config.json holding "chat_template". */
static int template_from_file(const char *path, char **src) {
    char *txt;
    if (read_input(path, &txt, "--chat-template")) return -1;
    const char *p = txt;
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r') p++;
    if (*p == '{') {
        json_error_t je;
        json_t *j = json_loads(txt, 0, &je);
        json_t *ct = j ? json_object_get(j, "chat_template") : NULL;
        if (json_is_string(ct)) {
            *src = strdup(json_string_value(ct));
            json_decref(j);
            free(txt);
            return 0;
        }
        if (json_is_array(ct)) {
            size_t i;
            json_t *e;
            json_array_foreach(ct, i, e) if (json_is_string(json_object_get(e, "name")) &&
                                             !strcmp(json_string_value(json_object_get(e, "name")), "default") &&
                                             json_is_string(json_object_get(e, "template"))) {
                *src = strdup(json_string_value(json_object_get(e, "template")));
                json_decref(j);
                free(txt);
                return 0;
            }
        }
        json_decref(j);
    }
    *src = txt;
    return 0;
}

int cmd_template(int argc, char **argv) {
    enum { O_MODEL = 1, O_TPL, O_MSGS, O_TOOLS, O_KW, O_THINK, O_NOGEN, O_CONT, O_BOS, O_EOS, O_HELP };
    static const struct option lo[] = {
        {"model", required_argument, 0, O_MODEL}, {"chat-template", required_argument, 0, O_TPL},
        {"messages", required_argument, 0, O_MSGS}, {"tools", required_argument, 0, O_TOOLS},
        {"kwargs", required_argument, 0, O_KW}, {"thinking", required_argument, 0, O_THINK},
        {"no-generation-prompt", no_argument, 0, O_NOGEN},
        {"continue-final-message", no_argument, 0, O_CONT},
        {"bos-token", required_argument, 0, O_BOS}, {"eos-token", required_argument, 0, O_EOS},
        {"help", no_argument, 0, O_HELP}, {0, 0, 0, 0}};
    const char *model = NULL, *tpl_file = NULL, *msgs_file = NULL, *tools_file = NULL, *kw = NULL;
    const char *bos = NULL, *eos = NULL;
    tl_chat_opts o = {.add_generation_prompt = 1};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
        switch (c) {
        case O_MODEL: model = optarg; break;
        case O_TPL: tpl_file = optarg; break;
        case O_MSGS: msgs_file = optarg; break;
        case O_TOOLS: tools_file = optarg; break;
        case O_KW: kw = optarg; break;
        case O_THINK:
            if (!strcmp(optarg, "on")) o.thinking = TL_THINKING_ON;
            else if (!strcmp(optarg, "off")) o.thinking = TL_THINKING_OFF;
            else { cli_error("--thinking expects on or off, got '%s'", optarg); return 2; }
            break;
        case O_NOGEN: o.add_generation_prompt = 0; break;
        case O_CONT: o.continue_final_message = 1; o.add_generation_prompt = 0; break;
        case O_BOS: bos = optarg; break;
        case O_EOS: eos = optarg; break;
        case O_HELP: case 'h': usage(stdout); return 0;
        case ':': cli_error("%s needs a value", argv[optind - 1]); return 2;
        default: cli_error("unknown flag '%s' (tallow template --help)", argv[optind - 1]); return 2;
        }
    }
    if (optind < argc) { cli_error("unexpected argument '%s'", argv[optind]); return 2; }
    if (!!model == !!tpl_file) { cli_error("give exactly one of --model or --chat-template"); usage(stderr); return 2; }
    if (!msgs_file) { cli_error("--messages FILE.json is required"); return 2; }

    int rc = 2;
    char *src = NULL, *mbos = NULL, *meos = NULL, *msgs_txt = NULL, *tools_txt = NULL;
    char *msgs_json = NULL, *tools_json = NULL, *out = NULL;
    tl_err err = {0};
    if (model) {
        char dir[4096];
        if (tl_dir_exists(model)) snprintf(dir, sizeof dir, "%s", model);
        else if (tl_model_locate(model, NULL, dir, sizeof dir, &err)) { cli_error("%s", err.msg); goto done; }
        if (tl_chat_template_load(dir, &src, &mbos, &meos, &err)) { cli_error("%s", err.msg); goto done; }
    } else if (template_from_file(tpl_file, &src)) goto done;
    o.bos_token = bos ? bos : mbos;
    o.eos_token = eos ? eos : meos;

    if (read_input(msgs_file, &msgs_txt, "--messages")) goto done;
    json_error_t je;
    json_t *mj = json_loads(msgs_txt, 0, &je);
    if (!mj) { cli_error("--messages %s: invalid JSON at line %d, column %d: %s", msgs_file, je.line, je.column, je.text); goto done; }
    json_t *arr = mj;
    if (json_is_object(mj)) {
        arr = json_object_get(mj, "messages");
        json_t *t = json_object_get(mj, "tools");
        if (t && !tools_file) tools_json = json_dumps(t, JSON_COMPACT | JSON_PRESERVE_ORDER);
    }
    if (!json_is_array(arr)) {
        cli_error("--messages %s: expected a JSON array of messages (or an object with \"messages\")", msgs_file);
        json_decref(mj);
        goto done;
    }
    msgs_json = json_dumps(arr, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(mj);
    if (tools_file) {
        if (read_input(tools_file, &tools_txt, "--tools")) goto done;
        tools_json = tools_txt;
        tools_txt = NULL;
    }
    size_t len = 0;
    int r = tl_chat_render(src, msgs_json, tools_json, kw, &o, &out, &len, &err);
    if (r) {
        cli_error("%s", err.msg);
        rc = (r == -TL_EINVAL || r == -TL_EFORMAT) ? 2 : 1;
        goto done;
    }
    fwrite(out, 1, len, stdout);
    rc = fflush(stdout) ? 1 : 0;
done:
    free(src);
    free(mbos);
    free(meos);
    free(msgs_txt);
    free(tools_txt);
    free(msgs_json);
    free(tools_json);
    free(out);
    return rc;
}
