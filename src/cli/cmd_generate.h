/* cmd_generate.h — what `tallow generate` and `tallow chat` share: their flags, the model with
 * its tokenizer, template and generation defaults, and how the sampling settings are decided
 * (explicit flag > --preset > generation_config.json > mlx-lm's defaults). */
#ifndef TL_CLI_CMD_GENERATE_H
#define TL_CLI_CMD_GENERATE_H

#include "cli/cli.h"
#include "core/core.h"
#include "engine/generate.h"
#include "store/store.h"

enum { /* which sampling fields the user set */
    GA_TEMP = 1 << 0, GA_TOP_P = 1 << 1, GA_TOP_K = 1 << 2, GA_MIN_P = 1 << 3,
    GA_REP = 1 << 4, GA_PRES = 1 << 5, GA_FREQ = 1 << 6, GA_REP_CTX = 1 << 7, GA_MIN_KEEP = 1 << 8, GA_XTC_P = 1 << 9, GA_XTC_T = 1 << 10,
};

typedef struct cli_gen_args {
    const char *model;
    tl_device device;
    int threads;
    int ctx_len;                 /* 0 = engine default / what the run needs */
    const char *prompt;          /* generate */
    const char *system_prompt;
    const char *prefill_response;/* generate: the start of the assistant's reply */
    int32_t *prompt_ids;
    int n_prompt_ids;
    int max_tokens;
    tl_sample_params sp;         /* the user's values; meaningful where set says so */
    unsigned set;
    int seed_set;
    tl_logit_bias *bias;
    int n_bias;
    const char **stops;
    int n_stops;
    const char **extra_eos;
    int n_extra_eos;
    int ignore_chat_template;
    const char *template_config; /* JSON object of template variables */
    tl_thinking thinking;
    int hide_thinking;
    const char *preset;
    int verbose;                 /* 0: text only, 1: mlx-lm's frame + statistics, 2: + settings */
    int pull;                    /* --pull: download a repo id missing from the cache */
    int format_json;
} cli_gen_args;

/* Parse the flags of `generate` (chat = 0) or `chat` (chat = 1). Returns CLI_GO_ON, or the exit
 * code with a freed: 0 when --help was printed, 2 on a usage error (message printed). */
int cli_gen_parse(cli_gen_args *a, int argc, char **argv, int chat);
void cli_gen_args_free(cli_gen_args *a);

typedef struct cli_model {
    char dir[4096];
    tl_tokenizer *tok;           /* NULL when the directory has no tokenizer.json */
    char *tpl, *bos, *eos;       /* chat template and its special tokens; NULL when absent */
    tl_config cfg;
    int has_cfg;
    tl_engine *e;
    int32_t stop_ids[24];
    int n_stop_ids;
    int32_t xtc_protect[32];     /* newline token(s) and the stop ids: never removed by XTC */
    int n_xtc_protect;
} cli_model;

/* Locate the model and read its tokenizer, template and generation_config (no weights yet).
 * Returns 0 or an exit code (2: the user can fix it; 1: something else), message printed. */
int cli_model_prepare(cli_model *m, const cli_gen_args *a);
/* Load the weights. ctx_len 0 = the engine's default. Returns 0 or an exit code. */
int cli_model_open_engine(cli_model *m, const cli_gen_args *a, int ctx_len, int max_slots);
/* The stop ids: the model's eos set plus --extra-eos-token. Returns 0 or an exit code. */
int cli_model_stop_ids(cli_model *m, const cli_gen_args *a);
void cli_model_close(cli_model *m);

/* The sampling settings of this run. */
void cli_gen_sampling(const cli_gen_args *a, const cli_model *m, tl_sample_params *out);
void cli_gen_print_settings(FILE *f, const cli_gen_args *a, const tl_sample_params *p);

/* Render messages_json with the model's template (add_gen: end with the assistant's header).
 * Returns 0 or an exit code. */
int cli_render(const cli_model *m, const cli_gen_args *a, const char *messages_json,
               tl_thinking thinking, int add_gen, char **out);
/* Same, continuing the final (assistant) message instead of opening a new one. */
int cli_render_continue(const cli_model *m, const cli_gen_args *a, const char *messages_json,
                        tl_thinking thinking, char **out);

/* Reasoning display: prints streamed text, reasoning under a "Thinking:" header (dim on a
 * terminal) or not at all with --hide-thinking. */
typedef struct cli_show {
    FILE *f;
    int tty, hide, shown_reasoning, in_reasoning, quiet;
    tl_think_split split;
    tl_strbuf reasoning, content; /* the split text, kept for --format json */
} cli_show;
void cli_show_init(cli_show *s, FILE *f, int start_in_think, int hide, int quiet);
int cli_show_text(void *ctx, const char *text, size_t len); /* tl_gen_opts.on_text */
void cli_show_finish(cli_show *s);
void cli_show_free(cli_show *s);

#endif
