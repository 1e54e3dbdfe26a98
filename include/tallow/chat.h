/* tallow/chat.h — chat templates and chat output parsing.
 *
 * Rendering: a model's own Jinja chat template is rendered byte for byte as Hugging Face
 * transformers' apply_chat_template does (jinja2 with trim_blocks, lstrip_blocks, loop controls,
 * tojson = json.dumps(ensure_ascii=False), raise_exception, strftime_now, namespace). Inputs are
 * JSON text because the server and the CLI hold JSON already:
 *   messages_json  [{"role": ..., "content": str | [{"type":"text","text":...}, ...],
 *                    "tool_calls": [{"type":"function","function":{"name":...,"arguments":
 *                    {...} or "json text"}}], "reasoning_content": ...}, ...]
 *   tools_json     [{"type":"function","function":{...}}, ...] or NULL (template sees none)
 *   kwargs_json    {"enable_thinking": false, "date_string": "26 Jul 2024", ...} or NULL: extra
 *                  template variables (they override bos_token / eos_token, like transformers)
 * Keys whose value is null are dropped from each message, and reasoning_content / reasoning /
 * thinking are aliased to each other, as transformers does.
 *
 * Thinking is explicit: opts.thinking TL_THINKING_TEMPLATE leaves enable_thinking undefined, so
 * the template's own default applies (Qwen3.5-4B opens a <think> block, Qwen3.5-2B pre-closes
 * it); ON / OFF define it true / false. A kwargs_json "enable_thinking" wins over opts.thinking.
 *
 * Errors: a template that calls raise_exception gives -TL_ERUNTIME with the template's message;
 * syntax errors -TL_EFORMAT, limits (depth, iterations, output, memory) -TL_ELIMIT; messages
 * name the line and column in the template. Output is malloc'd, NUL-terminated; free() it. */
#ifndef TALLOW_CHAT_H
#define TALLOW_CHAT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct tl_err;

typedef enum {
    TL_THINKING_TEMPLATE = 0, /* enable_thinking undefined: the template decides */
    TL_THINKING_ON = 1,
    TL_THINKING_OFF = 2,
} tl_thinking;

typedef struct tl_chat_opts {
    int add_generation_prompt;   /* end with the header that starts the assistant's turn */
    int continue_final_message;  /* leave the last message open (not with the above) */
    tl_thinking thinking;
    const char *bos_token;       /* NULL: the variable is undefined */
    const char *eos_token;
    int parse_arguments;         /* 1: tool_calls[].function.arguments given as JSON text are
                                    parsed into objects first (as mlx-lm's server does);
                                    0: passed as is (transformers) */
    /* limits; 0 = default */
    int max_depth;               /* nested macro calls (default 64) */
    int64_t max_iterations;      /* loop iterations in one render (default 1,000,000) */
    size_t max_output;           /* rendered bytes (default 16 MiB) */
    size_t max_memory;           /* working memory of one render (default 256 MiB) */
    int64_t now;                 /* unix seconds strftime_now sees (0 = the clock; UTC) */
} tl_chat_opts;

/* A compiled template, reusable and read-only (safe to render from several threads). */
typedef struct tl_chat_template tl_chat_template;

int tl_chat_template_compile(tl_chat_template **out, const char *src, struct tl_err *err);
void tl_chat_template_free(tl_chat_template *t);
int tl_chat_template_render(const tl_chat_template *t, const char *messages_json,
                            const char *tools_json, const char *kwargs_json,
                            const tl_chat_opts *opts, char **out, size_t *out_len,
                            struct tl_err *err);
/* Compile + render in one call. out_len may be NULL. */
int tl_chat_render(const char *template_src, const char *messages_json, const char *tools_json,
                   const char *kwargs_json, const tl_chat_opts *opts, char **out,
                   size_t *out_len, struct tl_err *err);

/* Plain Jinja: render src with the variables of a JSON object (NULL = none), under the same
 * environment and limits (opts may be NULL). For tests and tools. */
int tl_jinja_render(const char *src, const char *vars_json, const tl_chat_opts *opts, char **out,
                    size_t *out_len, struct tl_err *err);

/* The model's template and special tokens from a model directory: DIR/chat_template.jinja, else
 * DIR/tokenizer_config.json "chat_template" (a string, or a list of {name, template}: the one
 * named "default"). bos/eos from tokenizer_config.json (string or {"content": ...}); NULL when
 * absent. All outputs malloc'd. */
int tl_chat_template_load(const char *dir, char **template_src, char **bos_token,
                          char **eos_token, struct tl_err *err);

/* ---- output parsing ------------------------------------------------------------------------- */

/* 1 when the rendered prompt ends inside an open <think> block (the model's output starts in
 * reasoning), 0 otherwise. */
int tl_chat_prompt_opens_think(const char *prompt);

/* Split model output into reasoning and answer. started_in_think: the prompt opened <think>
 * (tl_chat_prompt_opens_think). Reasoning is the text inside <think>...</think> (or from the
 * start up to </think> when started_in_think; all of it when </think> never comes), trimmed of
 * surrounding newlines; content is the rest with leading newlines removed. *reasoning is NULL
 * when there is none. Both malloc'd. */
int tl_chat_split_reasoning(const char *text, int started_in_think, char **reasoning,
                            char **content, struct tl_err *err);

typedef enum {
    TL_TOOLS_AUTO = 0,     /* detect from the text */
    TL_TOOLS_QWEN_XML,     /* <tool_call>\n<function=NAME>\n<parameter=P>\nV\n</parameter>... */
    TL_TOOLS_JSON,         /* {"name": ..., "parameters"|"arguments": {...}} (Llama 3, Hermes) */
} tl_tool_format;

/* Find tool calls in model output. *tool_calls_json gets an OpenAI "tool_calls" array
 * ([{"id":"call_<n>","type":"function","function":{"name":...,"arguments":"<json text>"}}]) or
 * NULL when there are none; *content the text outside the calls (trimmed). Parameter values
 * of the XML form are parsed as JSON when they are valid JSON, else kept as strings. Malformed
 * calls are left in content, never an error; errors are for allocation only. */
int tl_chat_parse_tool_calls(const char *text, tl_tool_format fmt, char **content,
                             char **tool_calls_json, struct tl_err *err);

#ifdef __cplusplus
}
#endif
#endif
