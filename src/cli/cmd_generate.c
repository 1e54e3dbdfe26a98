/* cmd_generate.c — `tallow generate`: mlx_lm.generate's flags and output, plus penalties, logit
 * bias, stop strings, thinking control, presets and a JSON form for scripts.
 *
 * Output (text): "==========", the streamed text (reasoning under "Thinking:", dimmed on a
 * terminal), "==========", then mlx-lm's exact lines Prompt / Generation / Peak memory and our
 * Time to first token. --verbose false prints the text only; --verbose prints the settings used
 * (on stderr). --format json prints one object (issue 2's contract). Exit codes: 0 ok, 1 runtime
 * failure, 2 a usage error the user can fix (the message says how). Also holds what `tallow chat`
 * shares (cmd_generate.h). */
#define _GNU_SOURCE
#include "cli/cmd_generate.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* ---- presets: the model makers' published sampling settings (docs/models.md §6.1) ---------- */
typedef struct preset {
    const char *name, *what;
    float temp, top_p;
    int top_k;
    float min_p, presence, rep;
    tl_thinking thinking;
} preset;

static const preset k_presets[] = {
    {"qwen-thinking", "Qwen3.5 thinking mode, general tasks", 1.0f, 0.95f, 20, 0.0f, 1.5f, 1.0f,
     TL_THINKING_ON},
    {"qwen-coding", "Qwen3.5 thinking mode, precise coding", 0.6f, 0.95f, 20, 0.0f, 0.0f, 1.0f,
     TL_THINKING_ON},
    {"qwen-instruct", "Qwen3.5 4B+ non-thinking, general tasks", 0.7f, 0.8f, 20, 0.0f, 1.5f,
     1.0f, TL_THINKING_OFF},
    {"qwen-instruct-small", "Qwen3.5 0.8B/2B non-thinking text", 1.0f, 1.0f, 20, 0.0f, 2.0f,
     1.0f, TL_THINKING_OFF},
    {"qwen-reasoning", "Qwen3.5 non-thinking, reasoning tasks", 1.0f, 1.0f, 40, 0.0f, 2.0f,
     1.0f, TL_THINKING_OFF},
};

static const preset *find_preset(const char *name) {
    for (size_t i = 0; i < TL_ARRAY_LEN(k_presets); i++)
        if (!strcmp(k_presets[i].name, name)) return &k_presets[i];
    return NULL;
}

/* mlx-lm unescapes literal \n and \t in the prompt. */
static void unescape(char *s) {
    char *w = s;
    for (char *r = s; *r; r++) {
        if (r[0] == '\\' && (r[1] == 'n' || r[1] == 't')) {
            *w++ = r[1] == 'n' ? '\n' : '\t';
            r++;
        } else {
            *w++ = *r;
        }
    }
    *w = 0;
}

/* ---- flags ---------------------------------------------------------------------------------- */
static void usage(FILE *f, int chat) {
    if (chat)
        fprintf(f, "usage: tallow chat --model M [flags]\n\n"
                   "Chat in a loop: each line of input is a user turn (piped stdin works too).\n"
                   "Commands: /reset, /thinking on|off, /stats, /quit. The cached prefix of\n"
                   "the conversation is reused each turn.\n\n");
    else
        fprintf(f, "usage: tallow generate --model M [--prompt P | --prompt-ids 1,2,3] [flags]\n\n");
    fprintf(f,
            "  --model M                 model directory or Hugging Face repo id (org/name)\n");
    if (!chat)
        fprintf(f,
                "  --prompt, -p P            prompt text ('-' reads stdin; \\n and \\t are unescaped;\n"
                "                            default \"hello\")\n"
                "  --prompt-ids 1,2,3        token ids: no tokenizer, no template\n"
                "  --ignore-chat-template    tokenize the prompt as is\n"
                "  --prefill-response R      start the assistant's reply with R (it continues it)\n"
                "  --format text|json        json: one object with ids, text, finish_reason, timings\n");
    fprintf(f,
            "  --system-prompt S         system message\n"
            "  --max-tokens, -m N        tokens to generate (default %d)\n"
            "  --temp T                  temperature, >= 0 (0 = greedy)\n"
            "  --top-p P                 nucleus, in (0, 1]\n"
            "  --top-k K                 0 = off\n"
            "  --min-p P                 in [0, 1]\n"
            "  --min-tokens-to-keep N    tokens top-p and min-p always keep (default 1)\n"
            "  --xtc-probability P       XTC: how often to drop the top choices (0 = off)\n"
            "  --xtc-threshold T         XTC: drop those above T but the least likely (0.1)\n"
            "  --presence-penalty X      OpenAI semantics: once per token generated so far\n"
            "  --frequency-penalty X     OpenAI semantics: per occurrence among generated tokens\n"
            "  --repetition-penalty X    transformers-style, over the last N context tokens\n"
            "  --repetition-context-size N   (default 64; 0 = the whole context)\n"
            "  --logit-bias B            JSON {\"id\": bias, ...} or id:bias,id:bias\n"
            "  --stop S                  stop string (repeatable; \\n, \\t unescaped), matched\n"
            "                            across tokens, not shown\n"
            "  --extra-eos-token T       extra stop token (repeatable)\n"
            "  --seed N                  same seed, same text (default: random)\n"
            "  --preset NAME             published settings:",
            chat ? 256 : 100);
    for (size_t i = 0; i < TL_ARRAY_LEN(k_presets); i++)
        fprintf(f, "%s %s", i ? "," : "", k_presets[i].name);
    fprintf(f,
            "\n"
            "  --thinking on|off         enable_thinking for the template (default: the template's\n"
            "                            own: Qwen3.5-4B thinks, Qwen3.5-2B does not)\n"
            "  --hide-thinking           do not print the reasoning\n"
            "  --chat-template-config J  JSON object of template variables\n"
            "  --pull                    download the model (org/name) when it is not in the cache\n"
            "  --threads N, --device cpu|cuda|auto, --ctx-len N\n"
            "  --verbose [true|false]    false: text only; true: also the settings used\n"
            "Sampling settings not given come from --preset, then the model's\n"
            "generation_config.json, then mlx-lm's defaults (greedy).\n");
}

/* Value of flag argv[*i] ("--x v" or "--x=v"); NULL (message printed) when missing. */
static const char *flag_value(int argc, char **argv, int *i, const char *name) {
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (!strncmp(a, name, n) && a[n] == '=') return a + n + 1;
    if (*i + 1 >= argc) {
        cli_error("%s needs a value (see --help)", name);
        return NULL;
    }
    return argv[++*i];
}

static int is_flag(const char *a, const char *name) {
    size_t n = strlen(name);
    return !strncmp(a, name, n) && (a[n] == 0 || a[n] == '=');
}

static int parse_bool(const char *s, int *out) {
    if (!strcasecmp(s, "true") || !strcasecmp(s, "t") || !strcmp(s, "1") ||
        !strcasecmp(s, "yes") || !strcasecmp(s, "on"))
        return *out = 1, 0;
    if (!strcasecmp(s, "false") || !strcasecmp(s, "f") || !strcmp(s, "0") ||
        !strcasecmp(s, "no") || !strcasecmp(s, "off"))
        return *out = 0, 0;
    return -1;
}

static int add_str(const char ***v, int *n, const char *s) {
    const char **nv = realloc(*v, (size_t)(*n + 1) * sizeof *nv);
    if (!nv) return -1;
    nv[(*n)++] = s;
    *v = nv;
    return 0;
}

/* --logit-bias: {"id": bias} or id:bias,id:bias (repeatable: entries add up). */
static int parse_logit_bias(cli_gen_args *a, const char *s) {
    tl_logit_bias *v;
    int n;
    tl_err err = {0};
    if (tl_logit_bias_parse(s, &v, &n, &err)) {
        cli_error("--logit-bias: %s", err.msg + (strncmp(err.msg, "logit bias: ", 12) ? 0 : 12));
        return -1;
    }
    tl_logit_bias *nb = realloc(a->bias, (size_t)(a->n_bias + n + 1) * sizeof *nb);
    if (!nb) return free(v), -1;
    if (n > 0) memcpy(nb + a->n_bias, v, (size_t)n * sizeof *v);
    a->bias = nb;
    a->n_bias += n;
    free(v);
    return 0;
}

void cli_gen_args_free(cli_gen_args *a) {
    for (int i = 0; i < a->n_stops; i++) free((char *)a->stops[i]);
    free(a->prompt_ids);
    free(a->bias);
    free(a->stops);
    free(a->extra_eos);
    memset(a, 0, sizeof *a);
}

/* The flags that are one number each: the range cli_parse_int/float checks, where the value goes
 * in cli_gen_args (an int, or a float when is_float) and the GA_ bit it sets (0: none). A flag
 * with open_zero also refuses 0: "<name> must be <open_zero>, got <v> (1 turns it off)". */
typedef struct num_flag {
    const char *name;
    int is_float;
    double lo, hi;
    size_t off;
    unsigned bit;
    const char *open_zero;
} num_flag;

#define SP(field) offsetof(cli_gen_args, sp.field)
static const num_flag k_num_flags[] = {
    {"--min-tokens-to-keep", 0, 1, INT32_MAX, SP(min_keep), GA_MIN_KEEP, NULL},
    {"--xtc-probability", 1, 0, 1, SP(xtc_probability), GA_XTC_P, NULL},
    {"--xtc-threshold", 1, 0, 0.5, SP(xtc_threshold), GA_XTC_T, NULL},
    {"--temp", 1, 0, 1e6, SP(temperature), GA_TEMP, NULL},
    {"--top-p", 1, 0, 1, SP(top_p), GA_TOP_P, "in (0, 1]"},
    {"--top-k", 0, 0, INT32_MAX, SP(top_k), GA_TOP_K, NULL},
    {"--min-p", 1, 0, 1, SP(min_p), GA_MIN_P, NULL},
    {"--presence-penalty", 1, -2, 2, SP(presence_penalty), GA_PRES, NULL},
    {"--frequency-penalty", 1, -2, 2, SP(frequency_penalty), GA_FREQ, NULL},
    {"--repetition-penalty", 1, 0, 100, SP(repetition_penalty), GA_REP, "> 0"},
    {"--repetition-context-size", 0, 0, INT32_MAX, SP(repetition_context_size), GA_REP_CTX,
     NULL},
    {"--threads", 0, 0, 1024, offsetof(cli_gen_args, threads), 0, NULL},
    {"--ctx-len", 0, 0, 1 << 24, offsetof(cli_gen_args, ctx_len), 0, NULL},
};
#undef SP

/* Store the value v of flag f into a. Returns 0, or 2 (message printed). */
static int num_flag_set(cli_gen_args *a, const num_flag *f, const char *v) {
    char *dst = (char *)a + f->off;
    if (f->is_float) {
        double d;
        if (cli_parse_float(v, f->name, f->lo, f->hi, &d)) return 2;
        if (f->open_zero && d <= 0) {
            cli_error("%s must be %s, got %g (1 turns it off)", f->name, f->open_zero, d);
            return 2;
        }
        *(float *)dst = (float)d;
    } else {
        long l;
        if (cli_parse_int(v, f->name, (long)f->lo, (long)f->hi, &l)) return 2;
        *(int *)dst = (int)l;
    }
    a->set |= f->bit;
    return 0;
}

/* cli_gen_parse without the freeing on the way out. */
static int gen_parse(cli_gen_args *a, int argc, char **argv, int chat) {
    memset(a, 0, sizeof *a);
    tl_sample_params_default(&a->sp);
    a->sp.repetition_context_size = 64;
    a->max_tokens = chat ? 256 : 100;
    a->verbose = 1;
    a->threads = 0;
    const char *v;
    long l;
#define VAL(name)                                                                                  \
    do {                                                                                           \
        if (!(v = flag_value(argc, argv, &i, name))) return 2;                                     \
    } while (0)
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        const num_flag *nf = NULL;
        for (size_t k = 0; k < TL_ARRAY_LEN(k_num_flags) && !nf; k++)
            if (is_flag(f, k_num_flags[k].name)) nf = &k_num_flags[k];
        if (!strcmp(f, "--help") || !strcmp(f, "-h")) {
            usage(stdout, chat);
            return 0;
        } else if (nf) {
            VAL(nf->name);
            if (num_flag_set(a, nf, v)) return 2;
        } else if (is_flag(f, "--model")) {
            VAL("--model");
            a->model = v;
        } else if (!chat && (is_flag(f, "--prompt") || !strcmp(f, "-p"))) {
            VAL(f[1] == 'p' ? "-p" : "--prompt");
            a->prompt = v;
        } else if (!chat && is_flag(f, "--prompt-ids")) {
            VAL("--prompt-ids");
            free(a->prompt_ids);
            if ((a->n_prompt_ids = cli_parse_ids(v, "--prompt-ids", &a->prompt_ids)) < 0) return 2;
        } else if (!chat && is_flag(f, "--prefill-response")) {
            VAL("--prefill-response");
            a->prefill_response = v;
        } else if (is_flag(f, "--system-prompt")) {
            VAL("--system-prompt");
            a->system_prompt = v;
        } else if (is_flag(f, "--max-tokens") || !strcmp(f, "-m")) {
            VAL(f[1] == 'm' ? "-m" : "--max-tokens");
            if (cli_parse_int(v, "--max-tokens", 0, 10000000, &l)) return 2;
            a->max_tokens = (int)l;
        } else if (is_flag(f, "--logit-bias")) {
            VAL("--logit-bias");
            if (parse_logit_bias(a, v)) return 2;
        } else if (is_flag(f, "--stop")) {
            VAL("--stop");
            if (!*v) {
                cli_error("--stop needs a non-empty string");
                return 2;
            }
            char *u = strdup(v); /* \n and \t unescaped, as in the prompt */
            if (!u) return 2;
            unescape(u);
            if (add_str(&a->stops, &a->n_stops, u)) return free(u), 2;
        } else if (is_flag(f, "--extra-eos-token")) {
            VAL("--extra-eos-token");
            if (add_str(&a->extra_eos, &a->n_extra_eos, v)) return 2;
            while (i + 1 < argc && argv[i + 1][0] != '-') /* mlx-lm takes several after one flag */
                if (add_str(&a->extra_eos, &a->n_extra_eos, argv[++i])) return 2;
        } else if (is_flag(f, "--seed")) {
            VAL("--seed");
            char *end;
            errno = 0;
            unsigned long long s = strtoull(v, &end, 10);
            if (!*v || *end || errno || *v == '-') {
                cli_error("--seed expects a non-negative integer, got '%s'", v);
                return 2;
            }
            a->sp.seed = s, a->seed_set = 1;
        } else if (!chat && is_flag(f, "--ignore-chat-template")) {
            a->ignore_chat_template = 1;
        } else if (is_flag(f, "--chat-template-config")) {
            VAL("--chat-template-config");
            json_error_t je;
            json_t *o = json_loads(v, 0, &je);
            int ok = o && json_is_object(o);
            json_decref(o);
            if (!ok) {
                cli_error("--chat-template-config must be a JSON object such as "
                          "'{\"enable_thinking\": false}', got '%s'", v);
                return 2;
            }
            a->template_config = v;
        } else if (is_flag(f, "--thinking")) {
            VAL("--thinking");
            int b;
            if (parse_bool(v, &b)) {
                cli_error("--thinking expects on or off, got '%s'", v);
                return 2;
            }
            a->thinking = b ? TL_THINKING_ON : TL_THINKING_OFF;
        } else if (is_flag(f, "--pull")) {
            a->pull = 1;
        } else if (is_flag(f, "--hide-thinking")) {
            a->hide_thinking = 1;
        } else if (is_flag(f, "--preset")) {
            VAL("--preset");
            if (!find_preset(v)) {
                cli_error("--preset: unknown preset '%s' (known: qwen-thinking, qwen-coding, "
                          "qwen-instruct, qwen-instruct-small, qwen-reasoning)", v);
                return 2;
            }
            a->preset = v;
        } else if (is_flag(f, "--device")) {
            VAL("--device");
            int d = cli_device_of(v);
            if (d < 0) {
                cli_error("--device expects cpu, cuda or auto, got '%s'", v);
                return 2;
            }
            a->device = (tl_device)d;
        } else if (!chat && is_flag(f, "--format")) {
            VAL("--format");
            if (!strcmp(v, "json")) a->format_json = 1;
            else if (!strcmp(v, "text")) a->format_json = 0;
            else {
                cli_error("--format expects text or json, got '%s'", v);
                return 2;
            }
        } else if (is_flag(f, "--verbose")) {
            int b = 1;
            if (f[9] == '=') {
                if (parse_bool(f + 10, &b)) {
                    cli_error("--verbose expects true or false, got '%s'", f + 10);
                    return 2;
                }
            } else if (i + 1 < argc && !parse_bool(argv[i + 1], &b)) {
                i++;
            }
            a->verbose = b ? 2 : 0;
        } else {
            cli_error("unknown flag '%s' for %s (tallow %s --help lists them)", f,
                      chat ? "chat" : "generate", chat ? "chat" : "generate");
            return 2;
        }
    }
#undef VAL
    if (!a->model) {
        cli_error("no model given: pass --model DIR or --model org/name (a Hugging Face repo in "
                  "the local cache)");
        return 2;
    }
    if (a->prompt && a->n_prompt_ids > 0) {
        cli_error("give either --prompt or --prompt-ids, not both");
        return 2;
    }
    if (!chat && (a->ignore_chat_template || a->n_prompt_ids > 0)) {
        const char *why = a->n_prompt_ids > 0 ? "--prompt-ids" : "--ignore-chat-template";
        const char *what = a->system_prompt      ? "--system-prompt"
                           : a->prefill_response ? "--prefill-response"
                           : a->thinking != TL_THINKING_TEMPLATE ? "--thinking"
                           : a->template_config ? "--chat-template-config" : NULL;
        if (what) {
            cli_error("%s needs the chat template, which %s skips; drop one of them", what, why);
            return 2;
        }
    }
    if (a->preset && a->thinking == TL_THINKING_TEMPLATE) a->thinking = find_preset(a->preset)->thinking;
    return CLI_GO_ON;
}

int cli_gen_parse(cli_gen_args *a, int argc, char **argv, int chat) {
    int rc = gen_parse(a, argc, argv, chat);
    if (rc != CLI_GO_ON) cli_gen_args_free(a);
    return rc;
}

/* ---- the model ------------------------------------------------------------------------------ */
static int exit_code_of(int rc) {
    return (rc == -TL_ENOTFOUND || rc == -TL_EINVAL) ? 2 : 1;
}

/* Offer to download a missing repo when a person is at the terminal. */
static int ask_pull(const char *repo) {
    if (!isatty(0) || !isatty(2)) return 0;
    fprintf(stderr, "%s is not in the Hugging Face cache. Download it now? [y/N] ", repo);
    char ans[16];
    if (!fgets(ans, sizeof ans, stdin)) return 0;
    return ans[0] == 'y' || ans[0] == 'Y';
}

/* One line a file once it is in place (state 1 downloaded, 2 already cached; 0 is bytes arriving). */
static void pull_progress(void *ctx, const char *file, uint64_t done, uint64_t total,
                          int state) {
    (void)ctx, (void)done;
    if (state != 0)
        fprintf(stderr, "  %s %s (%.1f MB)\n", state == 2 ? "have" : "got ", file, total / 1e6);
}

/* The files a model needs (mlx-lm's allow patterns, less Python code). */
static int pull_model(const char *repo, char *dir, size_t cap) {
    static const char *const include[] = {"*.json", "*.safetensors", "*.jinja", "*.txt",
                                          "*.jsonl", "tokenizer.model", "*.tiktoken"};
    tl_pull_opts o = {0};
    o.repo = repo;
    o.include = include;
    o.n_include = (int)TL_ARRAY_LEN(include);
    o.retries = 3;
    o.progress = pull_progress;
    fprintf(stderr, "pulling %s\n", repo);
    tl_pull_result res;
    tl_err err = {0};
    int rc = tl_hub_pull(&o, &res, &err);
    if (rc) {
        cli_error("pulling %s: %s", repo, err.msg);
        return rc == -TL_EINVAL ? 2 : 1;
    }
    snprintf(dir, cap, "%s", res.snapshot);
    return 0;
}

int cli_model_prepare(cli_model *m, const cli_gen_args *a) {
    memset(m, 0, sizeof *m);
    tl_err err = {0};
    if (tl_dir_exists(a->model)) {
        snprintf(m->dir, sizeof m->dir, "%s", a->model);
    } else {
        int rc = tl_model_locate(a->model, NULL, m->dir, sizeof m->dir, &err);
        if (rc && tl_hf_repo_id_valid(a->model) && (a->pull || ask_pull(a->model))) {
            if ((rc = pull_model(a->model, m->dir, sizeof m->dir))) return rc;
        } else if (rc) {
            if (strstr(err.msg, "pull")) cli_error("%s (or add --pull)", err.msg);
            else
                cli_error("%s (give a model directory, or an org/name repo id in the Hugging "
                          "Face cache: tallow pull org/name fetches one)", err.msg);
            return 2;
        }
    }
    char path[4200];
    tl_path_join(path, sizeof path, m->dir, "config.json");
    if (!tl_file_exists(path)) {
        cli_error("'%s' holds no config.json: is it a model directory?", m->dir);
        return 2;
    }
    int rc = tl_config_load(&m->cfg, m->dir, &err);
    if (rc) {
        cli_error("%s", err.msg);
        return 1;
    }
    m->has_cfg = 1;
    tl_path_join(path, sizeof path, m->dir, "tokenizer.json");
    if (tl_file_exists(path)) {
        if ((rc = tl_tok_load_dir(m->dir, &m->tok, &err))) {
            cli_error("tokenizer of %s: %s", m->dir, err.msg);
            return 1;
        }
        rc = tl_chat_template_load(m->dir, &m->tpl, &m->bos, &m->eos, &err);
        if (rc == -TL_ENOTFOUND) { /* no template: said when one is needed */
            free(m->tpl), free(m->bos), free(m->eos);
            m->tpl = m->bos = m->eos = NULL;
        } else if (rc) {
            cli_error("chat template of %s: %s", m->dir, err.msg);
            return 1;
        }
    }
    return 0;
}

int cli_model_open_engine(cli_model *m, const cli_gen_args *a, int ctx_len, int max_slots) {
    tl_engine_opts o = {0};
    o.model = m->dir;
    o.device = a->device;
    o.threads = a->threads;
    o.ctx_len = ctx_len;
    o.max_slots = max_slots;
    tl_err err = {0};
    int rc = tl_engine_open(&m->e, &o, &err);
    if (rc) {
        cli_error("cannot load %s: %s", m->dir, err.msg);
        return exit_code_of(rc);
    }
    if (tl_engine_info(m->e)->synthetic)
        fprintf(stderr, "tallow: note: %s is a synthetic model (random weights written by tallow "
                        "synth): its speed and memory are the real shape's, its text is noise\n",
                m->dir);
    return 0;
}

int cli_model_stop_ids(cli_model *m, const cli_gen_args *a) {
    const tl_model_info *mi = tl_engine_info(m->e);
    m->n_stop_ids = 0;
    for (int i = 0; i < mi->n_eos && i < 8; i++) m->stop_ids[m->n_stop_ids++] = mi->eos_ids[i];
    for (int i = 0; i < a->n_extra_eos; i++) {
        const char *s = a->extra_eos[i];
        int32_t id = m->tok ? tl_tok_token_id(m->tok, s, strlen(s)) : -1;
        if (id < 0) {
            char *end;
            long v = strtol(s, &end, 10);
            if (*s && !*end && v >= 0 && v < mi->vocab_size) id = (int32_t)v;
        }
        if (id < 0) {
            cli_error("--extra-eos-token '%s' is not a token of this model's vocabulary (give "
                      "the token's text, e.g. '<|im_end|>', or its id)", s);
            return 2;
        }
        if (m->n_stop_ids == (int)TL_ARRAY_LEN(m->stop_ids)) {
            cli_error("too many --extra-eos-token (at most %d)", (int)TL_ARRAY_LEN(m->stop_ids) - 8);
            return 2;
        }
        m->stop_ids[m->n_stop_ids++] = id;
    }
    /* XTC never removes the newline or a stop token (mlx-lm's rule) */
    m->n_xtc_protect = 0;
    for (int i = 0; i < m->n_stop_ids; i++) m->xtc_protect[m->n_xtc_protect++] = m->stop_ids[i];
    if (m->tok) {
        int32_t *nl = NULL;
        size_t nn = 0;
        tl_err err = {0};
        if (tl_tok_encode(m->tok, "\n", 1, 0, &nl, &nn, &err) == 0)
            for (size_t i = 0; i < nn && m->n_xtc_protect < (int)TL_ARRAY_LEN(m->xtc_protect); i++)
                m->xtc_protect[m->n_xtc_protect++] = nl[i];
        free(nl);
    }
    return 0;
}

void cli_model_close(cli_model *m) {
    tl_engine_close(m->e);
    tl_tok_free(m->tok);
    free(m->tpl);
    free(m->bos);
    free(m->eos);
    if (m->has_cfg) tl_config_free(&m->cfg);
    memset(m, 0, sizeof *m);
}

void cli_gen_sampling(const cli_gen_args *a, const cli_model *m, tl_sample_params *out) {
    tl_sample_params p;
    tl_sample_params_default(&p);
    p.repetition_context_size = 64;
    if (m->has_cfg) {
        const tl_config *c = &m->cfg;
        if (c->has_temperature) p.temperature = c->temperature;
        if (c->has_top_p && c->top_p > 0 && c->top_p <= 1) p.top_p = c->top_p;
        if (c->has_top_k && c->top_k >= 0) p.top_k = c->top_k;
        if (c->has_min_p && c->min_p >= 0 && c->min_p <= 1) p.min_p = c->min_p;
        if (c->has_repetition_penalty && c->repetition_penalty > 0)
            p.repetition_penalty = c->repetition_penalty;
    }
    const preset *pr = a->preset ? find_preset(a->preset) : NULL;
    if (pr) {
        p.temperature = pr->temp, p.top_p = pr->top_p, p.top_k = pr->top_k, p.min_p = pr->min_p;
        p.presence_penalty = pr->presence, p.repetition_penalty = pr->rep;
    }
    if (a->set & GA_TEMP) p.temperature = a->sp.temperature;
    if (a->set & GA_TOP_P) p.top_p = a->sp.top_p;
    if (a->set & GA_TOP_K) p.top_k = a->sp.top_k;
    if (a->set & GA_MIN_P) p.min_p = a->sp.min_p;
    if (a->set & GA_REP) p.repetition_penalty = a->sp.repetition_penalty;
    if (a->set & GA_REP_CTX) p.repetition_context_size = a->sp.repetition_context_size;
    if (a->set & GA_PRES) p.presence_penalty = a->sp.presence_penalty;
    if (a->set & GA_FREQ) p.frequency_penalty = a->sp.frequency_penalty;
    if (a->set & GA_MIN_KEEP) p.min_keep = a->sp.min_keep;
    p.xtc_probability = a->set & GA_XTC_P ? a->sp.xtc_probability : 0.0f;
    p.xtc_threshold = a->set & GA_XTC_T ? a->sp.xtc_threshold : 0.1f;
    p.xtc_protect = m->xtc_protect;
    p.n_xtc_protect = m->n_xtc_protect;
    p.bias = a->bias;
    p.n_bias = a->n_bias;
    p.seed = a->seed_set ? a->sp.seed : (tl_now_ns() ^ ((uint64_t)getpid() << 32));
    *out = p;
}

void cli_gen_print_settings(FILE *f, const cli_gen_args *a, const tl_sample_params *p) {
    fprintf(f, "[settings] temp %g, top_p %g, top_k %d, min_p %g, presence %g, frequency %g, "
               "repetition %g (last %d), xtc %g above %g, logit_bias %d, seed %llu, max_tokens %d, "
               "thinking %s%s%s\n",
            p->temperature, p->top_p, p->top_k, p->min_p, p->presence_penalty,
            p->frequency_penalty, p->repetition_penalty, p->repetition_context_size,
            p->xtc_probability, p->xtc_threshold, p->n_bias,
            (unsigned long long)p->seed, a->max_tokens,
            a->thinking == TL_THINKING_ON ? "on" : a->thinking == TL_THINKING_OFF ? "off"
                                                                                  : "template default",
            a->preset ? ", preset " : "", a->preset ? a->preset : "");
}

/* cli_render (add_gen) and cli_render_continue (cont) in one. */
static int render(const cli_model *m, const cli_gen_args *a, const char *messages_json,
                  tl_thinking thinking, int add_gen, int cont, char **out) {
    *out = NULL;
    if (!m->tpl) {
        cli_error("%s has no chat template (chat_template.jinja or \"chat_template\" in "
                  "tokenizer_config.json); pass --ignore-chat-template to use the prompt as is",
                  m->dir);
        return 2;
    }
    tl_chat_opts o = {0};
    o.add_generation_prompt = add_gen;
    o.continue_final_message = cont;
    o.thinking = thinking;
    o.bos_token = m->bos;
    o.eos_token = m->eos;
    tl_err err = {0};
    if (tl_chat_render(m->tpl, messages_json, NULL, a->template_config, &o, out, NULL, &err)) {
        cli_error("chat template of %s: %s", m->dir, err.msg);
        return 1;
    }
    return 0;
}

int cli_render(const cli_model *m, const cli_gen_args *a, const char *messages_json,
               tl_thinking thinking, int add_gen, char **out) {
    return render(m, a, messages_json, thinking, add_gen, 0, out);
}

int cli_render_continue(const cli_model *m, const cli_gen_args *a, const char *messages_json,
                        tl_thinking thinking, char **out) {
    return render(m, a, messages_json, thinking, 0, 1, out);
}

/* ---- streamed display ----------------------------------------------------------------------- */
static void show_part(void *ctx, int is_reasoning, const char *t, size_t n) {
    cli_show *s = ctx;
    (void)tl_strbuf_add(is_reasoning ? &s->reasoning : &s->content, t, n); /* OOM: shown, not kept */
    if (s->quiet) return;
    if (is_reasoning) {
        if (s->hide) return;
        if (!s->shown_reasoning) fputs(s->tty ? "\033[2mThinking:\n" : "Thinking:\n", s->f);
        else if (!s->in_reasoning && s->tty) fputs("\033[2m", s->f);
        s->shown_reasoning = 1;
        s->in_reasoning = 1;
    } else if (s->in_reasoning) {
        fputs(s->tty ? "\033[0m\n\nAnswer:\n" : "\n\nAnswer:\n", s->f);
        s->in_reasoning = 0;
    }
    fwrite(t, 1, n, s->f);
    fflush(s->f);
}

void cli_show_init(cli_show *s, FILE *f, int start_in_think, int hide, int quiet) {
    memset(s, 0, sizeof *s);
    s->f = f;
    s->tty = isatty(fileno(f));
    s->hide = hide;
    s->quiet = quiet;
    tl_think_split_init(&s->split, start_in_think, show_part, s);
}

int cli_show_text(void *ctx, const char *text, size_t len) {
    cli_show *s = ctx;
    tl_think_split_feed(&s->split, text, len);
    return 0;
}

void cli_show_finish(cli_show *s) {
    tl_think_split_flush(&s->split);
    if (s->in_reasoning && s->tty && !s->quiet) fputs("\033[0m", s->f);
    s->in_reasoning = 0;
}

void cli_show_free(cli_show *s) {
    free(s->reasoning.p);
    free(s->content.p);
    memset(&s->reasoning, 0, sizeof s->reasoning);
    memset(&s->content, 0, sizeof s->content);
}

/* ---- generate ------------------------------------------------------------------------------- */
static json_t *ids_json(const int32_t *ids, int n) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_integer(ids[i]));
    return a;
}

static json_t *str_json(const char *s, size_t n) {
    json_t *j = json_stringn(s ? s : "", s ? n : 0);
    return j ? j : json_string("");
}

int cmd_generate(int argc, char **argv) {
    cli_gen_args a;
    int rc = cli_gen_parse(&a, argc, argv, 0);
    if (rc != CLI_GO_ON) return rc;
    cli_model m;
    char *prompt_buf = NULL, *rendered = NULL;
    int32_t *ids = NULL;
    size_t n_ids = 0;
    int start_in_think = 0, exit_code = 0, slot = -1;
    tl_gen_result res = {0};
    cli_show show = {0};
    tl_err err = {0};
    if ((exit_code = cli_model_prepare(&m, &a))) goto out;

    /* the prompt's ids */
    if (a.n_prompt_ids > 0) {
        ids = malloc((size_t)a.n_prompt_ids * sizeof *ids);
        if (!ids) goto oom;
        memcpy(ids, a.prompt_ids, (size_t)a.n_prompt_ids * sizeof *ids);
        n_ids = (size_t)a.n_prompt_ids;
    } else {
        const char *p = a.prompt ? a.prompt : "hello";
        if (!strcmp(p, "-")) {
            if (!(prompt_buf = cli_read_stdin(NULL))) { /* says why */
                exit_code = 1;
                goto out;
            }
        } else if (!(prompt_buf = strdup(p))) {
            goto oom;
        }
        unescape(prompt_buf);
        if (!m.tok) {
            cli_error("%s has no tokenizer.json, so a text prompt cannot be tokenized; give "
                      "token ids with --prompt-ids 1,2,3", m.dir);
            exit_code = 2;
            goto out;
        }
        const char *text = prompt_buf;
        unsigned flags = TL_TOK_ADD_SPECIAL;
        if (!a.ignore_chat_template) {
            json_t *msgs = json_array();
            if (a.system_prompt)
                json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "system", "content",
                                                      a.system_prompt));
            json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "user", "content",
                                                  prompt_buf));
            if (a.prefill_response)
                json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "assistant",
                                                      "content", a.prefill_response));
            char *mj = json_dumps(msgs, JSON_COMPACT);
            json_decref(msgs);
            if (!mj) {
                cli_error("the prompt, system prompt or prefilled response is not valid UTF-8");
                exit_code = 2;
                goto out;
            }
            exit_code = a.prefill_response ? cli_render_continue(&m, &a, mj, a.thinking, &rendered)
                                           : cli_render(&m, &a, mj, a.thinking, 1, &rendered);
            free(mj);
            if (exit_code) goto out;
            text = rendered;
            flags = 0; /* the template wrote the special tokens */
            start_in_think = tl_chat_prompt_opens_think(rendered);
        }
        if (tl_tok_encode(m.tok, text, strlen(text), flags, &ids, &n_ids, &err)) {
            cli_error("tokenizing the prompt: %s", err.msg);
            exit_code = 1;
            goto out;
        }
        if (n_ids == 0) {
            cli_error("the prompt is empty after tokenization; give some text");
            exit_code = 2;
            goto out;
        }
    }

    /* the engine, with a context that fits this run */
    int ctx = a.ctx_len;
    if (!ctx) {
        long need = (long)n_ids + a.max_tokens;
        int maxpos = m.cfg.max_position_embeddings > 0 ? m.cfg.max_position_embeddings : 4096;
        ctx = need > maxpos ? maxpos : (int)need;
    }
    if ((exit_code = cli_model_open_engine(&m, &a, ctx, 1))) goto out;
    const tl_model_info *mi = tl_engine_info(m.e);
    for (size_t i = 0; i < n_ids; i++)
        if (ids[i] >= mi->vocab_size) {
            cli_error("prompt token id %d (at index %zu) is outside the vocabulary [0, %d)",
                      ids[i], i, mi->vocab_size);
            exit_code = 2;
            goto out;
        }
    if ((int)n_ids > tl_engine_ctx_len(m.e)) {
        cli_error("the prompt has %zu tokens but the context holds %d (give --ctx-len, up to "
                  "the model's %d)", n_ids, tl_engine_ctx_len(m.e), mi->max_position_embeddings);
        exit_code = 2;
        goto out;
    }
    if ((exit_code = cli_model_stop_ids(&m, &a))) goto out;
    tl_sample_params sp;
    cli_gen_sampling(&a, &m, &sp);
    if (tl_sample_params_check(&sp, mi->vocab_size, &err)) {
        cli_error("%s", err.msg);
        exit_code = 2;
        goto out;
    }
    if (a.verbose == 2) {
        cli_gen_print_settings(stderr, &a, &sp);
        fprintf(stderr, "[stop ids]");
        for (int i = 0; i < m.n_stop_ids; i++) fprintf(stderr, " %d", m.stop_ids[i]);
        fprintf(stderr, "%s\n", a.n_stops ? " and the --stop strings" : "");
    }

    if ((slot = tl_slot_acquire(m.e, &err)) < 0) {
        cli_error("%s", err.msg);
        exit_code = 1;
        goto out;
    }
    cli_show_init(&show, stdout, start_in_think, a.hide_thinking, a.format_json);
    tl_gen_opts go = {0};
    go.sample = &sp;
    go.max_tokens = a.max_tokens;
    go.stop_ids = m.stop_ids;
    go.n_stop_ids = m.n_stop_ids;
    go.stop_strs = a.stops;
    go.n_stop_strs = a.n_stops;
    go.tok = m.tok;
    go.on_text = cli_show_text;
    go.cb_ctx = &show;
    if (a.verbose && !a.format_json) puts("==========");
    fflush(stdout);
    if (tl_generate(m.e, slot, ids, (int)n_ids, 0, &go, &res, &err)) {
        cli_error("generation failed: %s", err.msg);
        exit_code = 1;
        goto out;
    }
    cli_show_finish(&show);

    if (a.format_json) {
        json_t *o = json_object();
        json_object_set_new(o, "prompt_ids", ids_json(ids, (int)n_ids));
        json_object_set_new(o, "generated_ids", ids_json(res.ids, res.n_ids));
        json_object_set_new(o, "text", str_json(res.text, res.text_len));
        json_object_set_new(o, "reasoning", show.reasoning.n
                                                ? str_json(show.reasoning.p, show.reasoning.n)
                                                : json_null());
        json_object_set_new(o, "content", str_json(show.content.p, show.content.n));
        json_object_set_new(o, "finish_reason",
                            json_string(res.finish == TL_FINISH_LENGTH ? "length" : "stop"));
        json_object_set_new(o, "seed", json_integer((json_int_t)(sp.seed & INT64_MAX)));
        if (tl_engine_info(m.e)->synthetic) json_object_set_new(o, "synthetic", json_true());
        const tl_gen_stats *st = &res.stats;
        json_object_set_new(
            o, "timings",
            json_pack("{s:i,s:f,s:i,s:f,s:f,s:I}", "prompt_tokens", st->prompt_tokens,
                      "prompt_tps", st->prompt_tps, "generation_tokens", st->generation_tokens,
                      "generation_tps", st->generation_tps, "ttft_ms", st->ttft_ms,
                      "peak_memory_bytes", (json_int_t)st->peak_memory_bytes));
        char *s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (!s) goto oom;
        puts(s);
        free(s);
    } else if (a.verbose) {
        puts("");
        puts("==========");
        if (res.text_len == 0) {
            puts("No text generated for this prompt");
        } else {
            tl_gen_stats_print(&res.stats, stdout);
        }
        if (a.verbose == 2)
            fprintf(stderr, "[finish] %s after %d tokens\n",
                    res.finish == TL_FINISH_LENGTH ? "length" : "stop", res.n_ids);
    } else {
        puts("");
    }
    goto out;
oom:
    cli_error("out of memory");
    exit_code = 1;
out:
    fflush(stdout);
    cli_show_free(&show);
    tl_gen_result_free(&res);
    if (slot >= 0) tl_slot_release(m.e, slot);
    cli_model_close(&m);
    free(ids);
    free(prompt_buf);
    free(rendered);
    cli_gen_args_free(&a);
    return exit_code;
}
