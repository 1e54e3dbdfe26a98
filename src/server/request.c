/* request.c — parse and validate OpenAI request bodies (see request.h for the contract).
 *
 * Rules: null means "not given" (what the official clients send for defaults); a field of the
 * wrong type or out of range is a 400 naming it; a field tallow does not implement, or a value of
 * it that would change the meaning of the answer (n > 1, response_format json, tool_choice
 * "required"), is a 400 with code "unsupported_parameter"; any other unknown field is refused the
 * same way, so that no client believes a setting took effect when it did not. */
#include "server/request.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#define MAX_MESSAGES 8192
#define MAX_TOOLS 256
#define MAX_BIAS 1024
#define MAX_STOP_BYTES 512

int tl_api_err_set(tl_api_err *e, int status, const char *type, const char *code,
                   const char *param, const char *fmt, ...) {
    if (e) {
        e->status = status;
        e->type = type;
        e->code = code;
        snprintf(e->param, sizeof e->param, "%s", param ? param : "");
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->message, sizeof e->message, fmt, ap);
        va_end(ap);
    }
    switch (status) {
    case 400: return -TL_EINVAL;
    case 413: case 429: return -TL_ELIMIT;
    case 503: return -TL_EBUSY;
    default: return -TL_ERUNTIME;
    }
}

char *tl_api_err_json(const tl_api_err *e) {
    json_t *o = json_pack("{s:{s:s, s:s, s:o, s:o}}", "error", "message", e->message, "type",
                          e->type ? e->type : "server_error", "param",
                          e->param[0] ? json_string(e->param) : json_null(), "code",
                          e->code ? json_string(e->code) : json_null());
    if (!o) return strdup("{\"error\":{\"message\":\"error\",\"type\":\"server_error\"}}");
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* ---- small typed getters: 0 = absent (or null), 1 = present and valid, <0 = error set ---- */

/* A 400 with the given OpenAI error code, naming param. */
static int bad_code(tl_api_err *e, const char *code, const char *param, const char *fmt,
                    va_list ap) {
    char msg[600];
    vsnprintf(msg, sizeof msg, fmt, ap);
    return tl_api_err_set(e, 400, "invalid_request_error", code, param, "%s", msg);
}

static int bad(tl_api_err *e, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(tl_api_err *e, const char *param, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = bad_code(e, "invalid_value", param, fmt, ap);
    va_end(ap);
    return rc;
}

static int unsupported(tl_api_err *e, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int unsupported(tl_api_err *e, const char *param, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = bad_code(e, "unsupported_parameter", param, fmt, ap);
    va_end(ap);
    return rc;
}

static const char *type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE: case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

static int get_bool(json_t *o, const char *k, int *out, tl_api_err *e) {
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v)) return bad(e, k, "'%s' must be a boolean, got %s", k, type_name(v));
    *out = json_is_true(v);
    return 1;
}

static int get_num(json_t *o, const char *k, double lo, double hi, double *out, tl_api_err *e) {
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_number(v)) return bad(e, k, "'%s' must be a number, got %s", k, type_name(v));
    double d = json_number_value(v);
    if (!isfinite(d) || d < lo || d > hi)
        return bad(e, k, "'%s' must be between %g and %g, got %g", k, lo, hi, d);
    *out = d;
    return 1;
}

static int get_int(json_t *o, const char *k, long long lo, long long hi, long long *out,
                   tl_api_err *e) {
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_integer(v)) return bad(e, k, "'%s' must be an integer, got %s", k, type_name(v));
    long long x = json_integer_value(v);
    if (x < lo || x > hi)
        return bad(e, k, "'%s' must be between %lld and %lld, got %lld", k, lo, hi, x);
    *out = x;
    return 1;
}

static int get_str(json_t *o, const char *k, const char **out, tl_api_err *e) {
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) return 0;
    if (!json_is_string(v)) return bad(e, k, "'%s' must be a string, got %s", k, type_name(v));
    *out = json_string_value(v);
    return 1;
}

/* ---- messages ---- */

/* Join text parts into one string; any other part type is refused. */
static int content_to_text(json_t *c, const char *path, json_t **out, tl_api_err *e) {
    char p[128];
    if (json_is_null(c)) {
        *out = json_null();
        return 0;
    }
    if (json_is_string(c)) {
        *out = json_incref(c);
        return 0;
    }
    if (!json_is_array(c))
        return bad(e, path, "'%s' must be a string or an array of text parts, got %s", path,
                   type_name(c));
    size_t total = 0, i;
    json_t *part;
    json_array_foreach(c, i, part) {
        snprintf(p, sizeof p, "%s[%zu]", path, i);
        if (!json_is_object(part))
            return bad(e, p, "'%s' must be an object like {\"type\":\"text\",\"text\":\"...\"}", p);
        const char *type = json_string_value(json_object_get(part, "type"));
        if (!type) return bad(e, p, "'%s.type' must be a string", p);
        if (strcmp(type, "text") != 0)
            return unsupported(e, p, "content part type '%.64s' is not supported (text only)", type);
        json_t *t = json_object_get(part, "text");
        if (!json_is_string(t)) return bad(e, p, "'%s.text' must be a string", p);
        total += json_string_length(t);
    }
    char *buf = malloc(total + 1);
    if (!buf) return tl_api_err_set(e, 500, "server_error", NULL, path, "out of memory");
    size_t off = 0;
    json_array_foreach(c, i, part) {
        json_t *t = json_object_get(part, "text");
        memcpy(buf + off, json_string_value(t), json_string_length(t));
        off += json_string_length(t);
    }
    *out = json_stringn_nocheck(buf, off);
    free(buf);
    return *out ? 0 : tl_api_err_set(e, 500, "server_error", NULL, path, "out of memory");
}

static int check_tool_calls(json_t *tc, const char *path, json_t **out, tl_api_err *e) {
    char p[128];
    if (!json_is_array(tc)) return bad(e, path, "'%s' must be an array", path);
    json_t *arr = json_array();
    size_t i;
    json_t *call;
    json_array_foreach(tc, i, call) {
        snprintf(p, sizeof p, "%s[%zu]", path, i);
        json_t *fn = json_is_object(call) ? json_object_get(call, "function") : NULL;
        const char *name = json_string_value(json_object_get(fn, "name"));
        json_t *args = json_object_get(fn, "arguments");
        if (!json_is_object(fn) || !name || !(json_is_string(args) || json_is_object(args))) {
            json_decref(arr);
            return bad(e, p,
                       "'%s' must be {\"type\":\"function\",\"function\":{\"name\":string,"
                       "\"arguments\":string}}",
                       p);
        }
        /* Templates iterate the arguments as a mapping: give them the parsed object. */
        json_t *parsed = json_is_string(args)
                             ? json_loadb(json_string_value(args), json_string_length(args), 0, NULL)
                             : json_incref(args);
        if (!json_is_object(parsed)) {
            json_decref(parsed);
            json_decref(arr);
            return bad(e, p, "'%s.function.arguments' must be a JSON object encoded as a string",
                       p);
        }
        json_t *id = json_object_get(call, "id");
        json_t *c = json_pack("{s:s, s:{s:s, s:o}}", "type", "function", "function", "name", name,
                              "arguments", parsed);
        if (c && json_is_string(id)) json_object_set(c, "id", id);
        json_array_append_new(arr, c);
    }
    *out = arr;
    return 0;
}

static int parse_messages(json_t *msgs, tl_request *r, tl_api_err *e) {
    if (!msgs || json_is_null(msgs)) return bad(e, "messages", "'messages' is required");
    if (!json_is_array(msgs))
        return bad(e, "messages", "'messages' must be an array, got %s", type_name(msgs));
    size_t n = json_array_size(msgs);
    if (n == 0) return bad(e, "messages", "'messages' must not be empty");
    if (n > MAX_MESSAGES)
        return bad(e, "messages", "'messages' has %zu entries, more than %d", n, MAX_MESSAGES);
    r->messages = json_array();
    size_t i;
    json_t *m;
    char p[128];
    json_array_foreach(msgs, i, m) {
        snprintf(p, sizeof p, "messages[%zu]", i);
        if (!json_is_object(m)) return bad(e, p, "'%s' must be an object, got %s", p, type_name(m));
        const char *role = json_string_value(json_object_get(m, "role"));
        char rp[140];
        snprintf(rp, sizeof rp, "%s.role", p);
        if (!role) return bad(e, rp, "'%s' must be a string", rp);
        if (!strcmp(role, "developer")) role = "system";
        if (strcmp(role, "system") && strcmp(role, "user") && strcmp(role, "assistant") &&
            strcmp(role, "tool"))
            return bad(e, rp, "'%s' must be system, developer, user, assistant or tool, got '%.64s'",
                       rp, role);
        json_t *out = json_pack("{s:s}", "role", role);
        json_array_append_new(r->messages, out);
        const char *k;
        json_t *v;
        json_object_foreach(m, k, v) {
            char kp[200];
            snprintf(kp, sizeof kp, "%s.%.40s", p, k);
            if (!strcmp(k, "role")) continue;
            if (!strcmp(k, "content")) {
                json_t *text = NULL;
                int rc = content_to_text(v, kp, &text, e);
                if (rc < 0) return rc;
                json_object_set_new(out, "content", text);
            } else if (json_is_null(v)) {
                continue; /* refusal: null, audio: null, name: null ... */
            } else if (!strcmp(k, "name") || !strcmp(k, "tool_call_id") ||
                       !strcmp(k, "reasoning_content") || !strcmp(k, "reasoning")) {
                if (!json_is_string(v)) return bad(e, kp, "'%s' must be a string", kp);
                json_object_set(out, !strcmp(k, "reasoning") ? "reasoning_content" : k, v);
            } else if (!strcmp(k, "tool_calls")) {
                json_t *tc = NULL;
                int rc = check_tool_calls(v, kp, &tc, e);
                if (rc < 0) return rc;
                json_object_set_new(out, "tool_calls", tc);
            } else {
                return unsupported(e, kp, "message field '%.64s' is not supported", k);
            }
        }
        json_t *content = json_object_get(out, "content");
        if (!content) {
            if (!json_object_get(out, "tool_calls"))
                return bad(e, p, "'%s' has no 'content'", p);
            json_object_set_new(out, "content", json_null());
        } else if (json_is_null(content) && !json_object_get(out, "tool_calls")) {
            return bad(e, p, "'%s.content' is null but the message has no tool_calls", p);
        }
    }
    return 0;
}

static int parse_tools(json_t *tools, tl_request *r, tl_api_err *e) {
    if (!json_is_array(tools))
        return bad(e, "tools", "'tools' must be an array, got %s", type_name(tools));
    if (json_array_size(tools) > MAX_TOOLS)
        return bad(e, "tools", "'tools' has more than %d entries", MAX_TOOLS);
    size_t i;
    json_t *t;
    char p[64];
    json_array_foreach(tools, i, t) {
        snprintf(p, sizeof p, "tools[%zu]", i);
        const char *type = json_string_value(json_object_get(t, "type"));
        if (!json_is_object(t) || !type)
            return bad(e, p, "'%s' must be {\"type\":\"function\",\"function\":{...}}", p);
        if (strcmp(type, "function"))
            return unsupported(e, p, "tool type '%.64s' is not supported (function only)", type);
        json_t *fn = json_object_get(t, "function");
        if (!json_is_object(fn) || !json_is_string(json_object_get(fn, "name")))
            return bad(e, p, "'%s.function.name' must be a string", p);
        json_t *params = json_object_get(fn, "parameters");
        if (params && !json_is_object(params) && !json_is_null(params))
            return bad(e, p, "'%s.function.parameters' must be an object", p);
        json_t *desc = json_object_get(fn, "description");
        if (desc && !json_is_string(desc) && !json_is_null(desc))
            return bad(e, p, "'%s.function.description' must be a string", p);
    }
    r->tools = json_incref(tools);
    return 0;
}

static int parse_ids(json_t *v, const char *field, int vocab, int32_t **out, int *n,
                     tl_api_err *e) {
    if (!v || json_is_null(v)) return bad(e, field, "'%s' is required", field);
    if (!json_is_array(v))
        return bad(e, field, "'%s' must be an array of token ids, got %s", field, type_name(v));
    size_t c = json_array_size(v);
    *out = malloc((c ? c : 1) * sizeof **out);
    if (!*out) return tl_api_err_set(e, 500, "server_error", NULL, field, "no memory");
    for (size_t i = 0; i < c; i++) {
        json_t *x = json_array_get(v, i);
        char p[64];
        snprintf(p, sizeof p, "%s[%zu]", field, i);
        if (!json_is_integer(x) || json_integer_value(x) < 0 ||
            (vocab > 0 && json_integer_value(x) >= vocab))
            return bad(e, p, "'%s' must be a token id in [0, %d)", p, vocab);
        (*out)[i] = (int32_t)json_integer_value(x);
    }
    *n = (int)c;
    return 0;
}

/* prompt: a string, a list of one string, a list of token ids, or a list of one id list. */
static int parse_prompt(json_t *v, tl_request *r, int vocab, tl_api_err *e) {
    if (!v || json_is_null(v)) return bad(e, "prompt", "'prompt' is required");
    if (json_is_array(v) && json_array_size(v) == 1 &&
        (json_is_string(json_array_get(v, 0)) || json_is_array(json_array_get(v, 0))))
        v = json_array_get(v, 0);
    if (json_is_string(v)) {
        r->prompt = strndup(json_string_value(v), json_string_length(v));
        return r->prompt ? 0 : tl_api_err_set(e, 500, "server_error", NULL, "prompt", "no memory");
    }
    if (!json_is_array(v))
        return bad(e, "prompt", "'prompt' must be a string or a list of token ids, got %s",
                   type_name(v));
    size_t n = json_array_size(v);
    if (n == 0) return bad(e, "prompt", "'prompt' must not be empty");
    if (json_is_string(json_array_get(v, 0)) || json_is_array(json_array_get(v, 0)))
        return unsupported(e, "prompt", "more than one prompt per request is not supported");
    return parse_ids(v, "prompt", vocab, &r->prompt_ids, &r->n_prompt_ids, e);
}

static int parse_stop(json_t *v, tl_request *r, tl_api_err *e) {
    if (json_is_string(v)) v = json_pack("[O]", v);
    else if (json_is_array(v)) json_incref(v);
    else return bad(e, "stop", "'stop' must be a string or an array of strings, got %s",
                    type_name(v));
    int rc = 0;
    if (json_array_size(v) > TL_REQ_MAX_STOP)
        rc = bad(e, "stop", "'stop' has more than %d entries", TL_REQ_MAX_STOP);
    size_t i;
    json_t *s;
    json_array_foreach(v, i, s) {
        if (rc) break;
        char p[32];
        snprintf(p, sizeof p, "stop[%zu]", i);
        if (!json_is_string(s)) rc = bad(e, p, "'%s' must be a string, got %s", p, type_name(s));
        else if (json_string_length(s) == 0) rc = bad(e, p, "'%s' must not be empty", p);
        else if (json_string_length(s) > MAX_STOP_BYTES)
            rc = bad(e, p, "'%s' is longer than %d bytes", p, MAX_STOP_BYTES);
        else if (!(r->stop[r->n_stop++] = strdup(json_string_value(s))))
            rc = tl_api_err_set(e, 500, "server_error", NULL, p, "no memory");
    }
    json_decref(v);
    return rc;
}

static int parse_bias(json_t *v, tl_request *r, int vocab, tl_api_err *e) {
    if (!json_is_object(v))
        return bad(e, "logit_bias", "'logit_bias' must be an object {\"token id\": bias}, got %s",
                   type_name(v));
    size_t n = json_object_size(v);
    if (n > MAX_BIAS) return bad(e, "logit_bias", "'logit_bias' has more than %d entries", MAX_BIAS);
    r->bias = calloc(n ? n : 1, sizeof *r->bias);
    if (!r->bias) return tl_api_err_set(e, 500, "server_error", NULL, "logit_bias", "no memory");
    const char *k;
    json_t *b;
    json_object_foreach(v, k, b) {
        char p[96];
        snprintf(p, sizeof p, "logit_bias.%.64s", k);
        char *end;
        long id = strtol(k, &end, 10);
        if (!*k || *end || id < 0 || id > INT32_MAX || (vocab > 0 && id >= vocab))
            return bad(e, p, "'logit_bias' key '%.64s' must be a token id in [0, %d)", k, vocab);
        if (!json_is_number(b) || !isfinite(json_number_value(b)) ||
            fabs(json_number_value(b)) > 100)
            return bad(e, p, "'%s' must be a number between -100 and 100", p);
        r->bias[r->n_bias].id = (int32_t)id;
        r->bias[r->n_bias].bias = (float)json_number_value(b);
        r->n_bias++;
    }
    return 0;
}

/* Fields of the generation endpoints, with what each does to the parse. */
static const char *const chat_fields[] = {
    "messages", "model", "max_tokens", "max_completion_tokens", "temperature", "top_p", "top_k",
    "min_p", "presence_penalty", "frequency_penalty", "repetition_penalty", "logit_bias", "seed",
    "stop", "n", "stream", "stream_options", "logprobs", "top_logprobs", "chat_template_kwargs",
    "reasoning_effort", "tools", "tool_choice", "parallel_tool_calls", "response_format", "user",
    "metadata", "store", NULL};
static const char *const completion_fields[] = {
    "prompt", "model", "max_tokens", "temperature", "top_p", "top_k", "min_p", "presence_penalty",
    "frequency_penalty", "repetition_penalty", "logit_bias", "seed", "stop", "n", "stream",
    "stream_options", "logprobs", "echo", "suffix", "best_of", "user", NULL};

static int known(const char *const *list, const char *k) {
    for (; *list; list++)
        if (!strcmp(*list, k)) return 1;
    return 0;
}

static int parse_generation(json_t *o, tl_request *r, int vocab, tl_api_err *e) {
    int chat = r->kind == TL_REQ_CHAT;
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
        if (!known(chat ? chat_fields : completion_fields, k))
            return unsupported(e, k, "'%.64s' is not a supported field of %s", k,
                               chat ? "/v1/chat/completions" : "/v1/completions");
    }
    int rc;
    const char *s = NULL;
    if ((rc = get_str(o, "model", &s, e)) < 0) return rc;
    if (s) r->model = strdup(s);

    if (chat) {
        if ((rc = parse_messages(json_object_get(o, "messages"), r, e)) < 0) return rc;
    } else {
        if ((rc = parse_prompt(json_object_get(o, "prompt"), r, vocab, e)) < 0) return rc;
    }

    long long x = 0, y = 0;
    int have_mt, have_mct;
    if ((have_mt = get_int(o, "max_tokens", 1, INT32_MAX, &x, e)) < 0) return have_mt;
    if ((have_mct = get_int(o, "max_completion_tokens", 1, INT32_MAX, &y, e)) < 0) return have_mct;
    if (have_mt && have_mct && x != y)
        return bad(e, "max_completion_tokens",
                   "'max_tokens' (%lld) and 'max_completion_tokens' (%lld) disagree", x, y);
    r->max_tokens = have_mct ? (int)y : have_mt ? (int)x : -1;

    if ((rc = get_num(o, "temperature", 0, 2, &r->temperature, e)) < 0) return rc;
    if ((rc = get_num(o, "top_p", 0, 1, &r->top_p, e)) < 0) return rc;
    if (rc && r->top_p <= 0) return bad(e, "top_p", "'top_p' must be greater than 0");
    if ((rc = get_int(o, "top_k", 0, 1 << 24, &x, e)) < 0) return rc;
    if (rc) r->top_k = (int)x;
    if ((rc = get_num(o, "min_p", 0, 1, &r->min_p, e)) < 0) return rc;
    if ((rc = get_num(o, "presence_penalty", -2, 2, &r->presence_penalty, e)) < 0) return rc;
    if ((rc = get_num(o, "frequency_penalty", -2, 2, &r->frequency_penalty, e)) < 0) return rc;
    if ((rc = get_num(o, "repetition_penalty", 0, 10, &r->repetition_penalty, e)) < 0) return rc;
    if (rc && r->repetition_penalty <= 0)
        return bad(e, "repetition_penalty", "'repetition_penalty' must be greater than 0");
    if ((v = json_object_get(o, "logit_bias")) && !json_is_null(v))
        if ((rc = parse_bias(v, r, vocab, e)) < 0) return rc;
    if ((v = json_object_get(o, "seed")) && !json_is_null(v)) {
        if (!json_is_integer(v)) return bad(e, "seed", "'seed' must be an integer, got %s",
                                            type_name(v));
        r->has_seed = 1;
        r->seed = (uint64_t)json_integer_value(v);
    }
    if ((v = json_object_get(o, "stop")) && !json_is_null(v))
        if ((rc = parse_stop(v, r, e)) < 0) return rc;
    if ((rc = get_int(o, "n", INT32_MIN, INT32_MAX, &x, e)) < 0) return rc;
    if (rc && x < 1) return bad(e, "n", "'n' must be at least 1, got %lld", x);
    if (rc && x > 1) return unsupported(e, "n", "'n' > 1 is not supported (got %lld)", x);
    if ((rc = get_bool(o, "stream", &r->stream, e)) < 0) return rc;
    if ((v = json_object_get(o, "stream_options")) && !json_is_null(v)) {
        if (!json_is_object(v))
            return bad(e, "stream_options", "'stream_options' must be an object, got %s",
                       type_name(v));
        if (!r->stream)
            return bad(e, "stream_options", "'stream_options' is only allowed with stream: true");
        json_t *sv;
        json_object_foreach(v, k, sv) {
            if (strcmp(k, "include_usage"))
                return unsupported(e, "stream_options", "'stream_options.%.64s' is not supported",
                                   k);
        }
        if ((rc = get_bool(v, "include_usage", &r->include_usage, e)) < 0) {
            snprintf(e->param, sizeof e->param, "stream_options.include_usage");
            return rc;
        }
    }

    if (chat) {
        if ((rc = get_bool(o, "logprobs", &r->logprobs, e)) < 0) return rc;
        if ((rc = get_int(o, "top_logprobs", 0, TL_REQ_MAX_TOP_LOGPROBS, &x, e)) < 0) return rc;
        if (rc) {
            if (!r->logprobs)
                return bad(e, "top_logprobs", "'top_logprobs' needs 'logprobs': true");
            r->top_logprobs = (int)x;
        }
        if ((v = json_object_get(o, "chat_template_kwargs")) && !json_is_null(v)) {
            if (!json_is_object(v))
                return bad(e, "chat_template_kwargs",
                           "'chat_template_kwargs' must be an object, got %s", type_name(v));
            r->template_kwargs = json_incref(v);
            json_t *t = json_object_get(v, "enable_thinking");
            if (t && !json_is_boolean(t))
                return bad(e, "chat_template_kwargs.enable_thinking",
                           "'chat_template_kwargs.enable_thinking' must be a boolean");
            if (t) r->enable_thinking = json_is_true(t);
        }
        if ((rc = get_str(o, "reasoning_effort", &s, e)) < 0) return rc;
        if (rc) {
            if (!strcmp(s, "none")) r->enable_thinking = 0;
            else if (!strcmp(s, "minimal") || !strcmp(s, "low") || !strcmp(s, "medium") ||
                     !strcmp(s, "high"))
                r->enable_thinking = r->enable_thinking == 0 ? 0 : 1;
            else
                return bad(e, "reasoning_effort",
                           "'reasoning_effort' must be none, minimal, low, medium or high");
        }
        if ((v = json_object_get(o, "tools")) && !json_is_null(v))
            if ((rc = parse_tools(v, r, e)) < 0) return rc;
        if ((v = json_object_get(o, "tool_choice")) && !json_is_null(v)) {
            const char *tc = json_string_value(v);
            if (tc && !strcmp(tc, "none")) r->tool_choice_none = 1;
            else if (!tc || strcmp(tc, "auto"))
                return unsupported(e, "tool_choice",
                                   "'tool_choice' supports only \"auto\" and \"none\"");
        }
        int b;
        if ((rc = get_bool(o, "parallel_tool_calls", &b, e)) < 0) return rc;
        if ((rc = get_bool(o, "store", &b, e)) < 0) return rc;
        if ((v = json_object_get(o, "metadata")) && !json_is_null(v) && !json_is_object(v))
            return bad(e, "metadata", "'metadata' must be an object");
        if ((v = json_object_get(o, "response_format")) && !json_is_null(v)) {
            const char *t = json_string_value(json_object_get(v, "type"));
            if (!json_is_object(v) || !t)
                return bad(e, "response_format", "'response_format' must be {\"type\": ...}");
            if (strcmp(t, "text"))
                return unsupported(e, "response_format",
                                   "response_format type '%.64s' is not supported (structured "
                                   "output is not implemented; only \"text\")",
                                   t);
        }
    } else {
        if ((rc = get_int(o, "logprobs", 0, 5, &x, e)) < 0) return rc;
        if (rc) {
            r->logprobs = 1;
            r->top_logprobs = (int)x;
        }
        int echo = 0;
        if ((rc = get_bool(o, "echo", &echo, e)) < 0) return rc;
        if (echo) return unsupported(e, "echo", "'echo': true is not supported");
        if ((rc = get_str(o, "suffix", &s, e)) < 0) return rc;
        if (rc && *s) return unsupported(e, "suffix", "'suffix' is not supported");
        if ((rc = get_int(o, "best_of", INT32_MIN, INT32_MAX, &x, e)) < 0) return rc;
        if (rc && x != 1) return unsupported(e, "best_of", "'best_of' other than 1 is not supported");
    }
    if ((rc = get_str(o, "user", &s, e)) < 0) return rc;
    return 0;
}

int tl_request_parse(tl_req_kind kind, const char *body, size_t len, int vocab_size,
                     tl_request **out, tl_api_err *err) {
    *out = NULL;
    json_error_t je;
    json_t *o = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!o)
        return tl_api_err_set(err, 400, "invalid_request_error", "invalid_json", NULL,
                              "request body is not valid JSON: %s (line %d, column %d, byte %d)",
                              je.text, je.line, je.column, je.position);
    if (!json_is_object(o)) {
        int rc = tl_api_err_set(err, 400, "invalid_request_error", "invalid_json", NULL,
                                "request body must be a JSON object, got %s", type_name(o));
        json_decref(o);
        return rc;
    }
    tl_request *r = calloc(1, sizeof *r);
    if (!r) {
        json_decref(o);
        return tl_api_err_set(err, 500, "server_error", NULL, NULL, "out of memory");
    }
    r->kind = kind;
    r->max_tokens = -1;
    r->temperature = 1.0;
    r->top_p = 1.0;
    r->repetition_penalty = 1.0;
    r->enable_thinking = -1;
    r->add_special = 1;
    int rc = 0;
    const char *k;
    json_t *v;
    switch (kind) {
    case TL_REQ_CHAT:
    case TL_REQ_COMPLETION: rc = parse_generation(o, r, vocab_size, err); break;
    case TL_REQ_TOKENIZE: {
        json_object_foreach(o, k, v) {
            if (strcmp(k, "content") && strcmp(k, "add_special") && strcmp(k, "with_pieces") &&
                strcmp(k, "model")) {
                rc = unsupported(err, k, "'%.64s' is not a supported field of /tokenize", k);
                break;
            }
        }
        const char *s = NULL;
        if (!rc && (rc = get_str(o, "content", &s, err)) == 0)
            rc = bad(err, "content", "'content' is required");
        if (rc > 0)
            rc = (r->content = strdup(s))
                     ? 0
                     : tl_api_err_set(err, 500, "server_error", NULL, NULL, "no memory");
        if (!rc && (rc = get_bool(o, "add_special", &r->add_special, err)) > 0) rc = 0;
        if (!rc && (rc = get_bool(o, "with_pieces", &r->with_pieces, err)) > 0) rc = 0;
        break;
    }
    case TL_REQ_DETOKENIZE:
        json_object_foreach(o, k, v) {
            if (strcmp(k, "tokens") && strcmp(k, "model")) {
                rc = unsupported(err, k, "'%.64s' is not a supported field of /detokenize", k);
                break;
            }
        }
        if (!rc)
            rc = parse_ids(json_object_get(o, "tokens"), "tokens", vocab_size, &r->tokens,
                           &r->n_tokens, err);
        break;
    default: rc = tl_api_err_set(err, 500, "server_error", NULL, NULL, "bad request kind");
    }
    json_decref(o);
    if (rc < 0) {
        tl_request_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void tl_request_free(tl_request *r) {
    if (!r) return;
    free(r->model);
    json_decref(r->messages);
    json_decref(r->tools);
    json_decref(r->template_kwargs);
    free(r->prompt);
    free(r->prompt_ids);
    free(r->content);
    free(r->tokens);
    free(r->bias);
    for (int i = 0; i < r->n_stop; i++) free(r->stop[i]);
    free(r);
}
