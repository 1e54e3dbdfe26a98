/* request.h — an HTTP request body for the OpenAI-compatible endpoints, parsed and validated into
 * a typed struct. The body is hostile input: every field is type- and range-checked, unknown or
 * unsupported fields are refused (never silently ignored), and every failure is an OpenAI-shaped
 * error that names the field (`param`) and says what was expected.
 *
 * Contract: tl_request_parse never crashes and never allocates more than a small multiple of the
 * body length; on success the caller owns *out and frees it with tl_request_free. On failure it
 * returns a negative TL_E* code and fills a tl_api_err (HTTP status, type, param, message). */
#ifndef TL_SERVER_REQUEST_H
#define TL_SERVER_REQUEST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "tallow/sample.h" /* tl_logit_bias */

typedef enum {
    TL_REQ_CHAT = 1,   /* POST /v1/chat/completions */
    TL_REQ_COMPLETION, /* POST /v1/completions */
    TL_REQ_TOKENIZE,   /* POST /tokenize */
    TL_REQ_DETOKENIZE, /* POST /detokenize */
} tl_req_kind;

/* OpenAI error object: {"error": {"message", "type", "param", "code"}} with an HTTP status. */
typedef struct tl_api_err {
    int status;        /* 400, 401, 404, 413, 429, 500, 503 */
    const char *type;  /* "invalid_request_error", "authentication_error", ... */
    const char *code;  /* machine-readable code or NULL: "unsupported_parameter", ... */
    char param[128];   /* JSON path of the field at fault, "" when none */
    char message[768];
} tl_api_err;

int tl_api_err_set(tl_api_err *e, int status, const char *type, const char *code,
                   const char *param, const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* The error as a JSON document (malloc'd, NUL-terminated). */
char *tl_api_err_json(const tl_api_err *e);


#define TL_REQ_MAX_STOP 16     /* OpenAI allows 4; we allow a few more */
#define TL_REQ_MAX_TOP_LOGPROBS 20

typedef struct tl_request {
    tl_req_kind kind;
    char *model;              /* as sent, NULL when absent */

    /* chat: messages normalized so that every content is a string (text parts joined) or null;
     * tools as sent (validated shape). Both are jansson values owned by the request. */
    json_t *messages;
    json_t *tools;
    json_t *template_kwargs;  /* chat_template_kwargs object, or NULL */
    int enable_thinking;      /* -1 = model default, 0 = off (reasoning_effort "none"), 1 = on */
    int tool_choice_none;     /* tool_choice "none": tools are not offered to the model */

    /* completion: prompt text, or token ids */
    char *prompt;
    int32_t *prompt_ids;
    int n_prompt_ids;

    /* tokenize / detokenize */
    char *content;            /* tokenize: text */
    int add_special;          /* tokenize: add BOS etc. (default 1) */
    int with_pieces;          /* tokenize: also return each token's text */
    int32_t *tokens;          /* detokenize */
    int n_tokens;

    /* generation */
    int max_tokens;           /* -1 = until the context is full */
    double temperature;       /* default 1.0 (OpenAI) */
    double top_p;             /* 1.0 */
    int top_k;                /* 0 = off */
    double min_p;             /* 0 */
    double presence_penalty;  /* 0, in [-2, 2] */
    double frequency_penalty; /* 0, in [-2, 2] */
    double repetition_penalty;/* 1.0 = off, in (0, 10] */
    tl_logit_bias *bias;
    int n_bias;
    int has_seed;
    uint64_t seed;
    char *stop[TL_REQ_MAX_STOP];
    int n_stop;
    int stream;
    int include_usage;        /* stream_options.include_usage */
    int logprobs;             /* chat: bool; completions: logprobs given (then top_logprobs = n) */
    int top_logprobs;         /* 0..TL_REQ_MAX_TOP_LOGPROBS */
} tl_request;

/* Parse body (len bytes, need not be NUL-terminated). vocab_size > 0 bounds token ids. */
int tl_request_parse(tl_req_kind kind, const char *body, size_t len, int vocab_size,
                     tl_request **out, tl_api_err *err);
void tl_request_free(tl_request *r);

#endif
