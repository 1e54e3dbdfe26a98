/* parse.c — reading a chat model's output back: reasoning (<think>...</think>, also when the
 * prompt already opened the block) apart from the answer, and tool calls in the two forms our
 * models write — Qwen3.5's XML (<tool_call><function=NAME><parameter=P>V</parameter>...) and the
 * JSON object form of Llama 3 / Hermes ({"name": ..., "parameters"|"arguments": {...}}, bare or
 * inside <tool_call>) — into OpenAI's tool_calls JSON. Model output is untrusted text: anything
 * malformed stays in the content; only allocation failure is an error. */
#define _GNU_SOURCE
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "tallow.h"

static char *dup_range(const char *s, size_t n) {
    char *p = malloc(n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

static const char *rfind(const char *hay, const char *needle) {
    const char *last = NULL;
    for (const char *q = strstr(hay, needle); q; q = strstr(q + 1, needle)) last = q;
    return last;
}

int tl_chat_prompt_opens_think(const char *prompt) {
    if (!prompt) return 0;
    const char *open = rfind(prompt, "<think>"), *close = rfind(prompt, "</think>");
    return open && (!close || close < open);
}

static int is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; }

/* trim newlines (and, for content, leading whitespace) */
static char *trimmed(const char *s, size_t n, int all_ws) {
    while (n && (all_ws ? is_space(*s) : *s == '\n')) { s++; n--; }
    while (n && (all_ws ? is_space(s[n - 1]) : s[n - 1] == '\n')) n--;
    return dup_range(s, n);
}

int tl_chat_split_reasoning(const char *text, int started_in_think, char **reasoning,
                            char **content, tl_err *err) {
    *reasoning = NULL;
    *content = NULL;
    if (!text) text = "";
    const char *body = text;
    if (!started_in_think) {
        const char *p = text;
        while (is_space(*p)) p++;
        if (!strncmp(p, "<think>", 7)) {
            body = p + 7;
            started_in_think = 1;
        }
    }
    if (!started_in_think) {
        *content = strdup(text);
        return *content ? 0 : tl_err_set(err, TL_ENOMEM, "split_reasoning: out of memory");
    }
    const char *close = strstr(body, "</think>");
    if (!close) { /* still thinking (cut off or streaming) */
        *reasoning = trimmed(body, strlen(body), 0);
        *content = strdup("");
    } else {
        *reasoning = trimmed(body, (size_t)(close - body), 0);
        const char *rest = close + 8;
        while (*rest == '\n') rest++;
        *content = strdup(rest);
    }
    if (!*reasoning || !*content) {
        free(*reasoning);
        free(*content);
        *reasoning = *content = NULL;
        return tl_err_set(err, TL_ENOMEM, "split_reasoning: out of memory");
    }
    return 0;
}

/* ---- tool calls ----------------------------------------------------------------------------- */
/* One call from a parsed JSON object {"name": ..., "parameters"|"arguments": {...} or "text"}
 * (o is borrowed), or NULL when it is not one. */
static json_t *call_from_obj(json_t *o) {
    json_t *name = json_object_get(o, "name");
    json_t *args = json_object_get(o, "parameters");
    if (!args) args = json_object_get(o, "arguments");
    if (!json_is_object(o) || !json_is_string(name) || (args && !json_is_object(args) && !json_is_string(args)))
        return NULL;
    char *at = args ? (json_is_string(args) ? strdup(json_string_value(args))
                                            : json_dumps(args, JSON_COMPACT | JSON_PRESERVE_ORDER))
                    : strdup("{}");
    json_t *fn = json_pack("{s:s, s:s}", "name", json_string_value(name), "arguments", at ? at : "{}");
    free(at);
    return fn;
}

/* The same from the text of one object, which only whitespace (or ';') may follow. */
static json_t *call_from_json(const char *s, size_t n) {
    json_error_t je;
    json_t *o = json_loadb(s, n, JSON_DISABLE_EOF_CHECK, &je);
    if (!o) return NULL;
    for (size_t i = (size_t)je.position; i < n; i++)
        if (!is_space(s[i]) && s[i] != ';') { json_decref(o); return NULL; }
    json_t *fn = call_from_obj(o);
    json_decref(o);
    return fn;
}

static json_t *call_from_xml(const char *s, size_t n) {
    /* <function=NAME>\n(<parameter=P>\nVALUE\n</parameter>\n)*</function> */
    char *buf = dup_range(s, n);
    if (!buf) return NULL;
    json_t *fn = NULL, *args = json_object();
    char *p = strstr(buf, "<function=");
    char *fend = p ? strstr(p, "</function>") : NULL;
    if (!p || !fend) goto out;
    p += 10;
    char *gt = strchr(p, '>');
    if (!gt || gt > fend) goto out;
    char *name = dup_range(p, (size_t)(gt - p));
    char *q = gt + 1;
    while (1) {
        char *ps = strstr(q, "<parameter=");
        if (!ps || ps > fend) break;
        ps += 11;
        char *pg = strchr(ps, '>');
        char *pe = pg ? strstr(pg, "</parameter>") : NULL;
        if (!pg || !pe || pe > fend) break;
        *pg = 0;
        char *v = pg + 1;
        size_t vl = (size_t)(pe - v);
        if (vl && v[0] == '\n') { v++; vl--; }
        if (vl && v[vl - 1] == '\n') vl--;
        json_error_t je;
        json_t *val = json_loadb(v, vl, JSON_DECODE_ANY, &je);
        if (!val) val = json_stringn(v, vl);
        if (val) json_object_set_new(args, ps, val);
        q = pe + 12;
    }
    char *at = json_dumps(args, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (name && at) fn = json_pack("{s:s, s:s}", "name", name, "arguments", at);
    free(at);
    free(name);
out:
    json_decref(args);
    free(buf);
    return fn;
}

static int add_call(json_t *calls, json_t *fn) {
    char id[32];
    snprintf(id, sizeof id, "call_%zu", json_array_size(calls));
    return json_array_append_new(calls, json_pack("{s:s, s:s, s:o}", "id", id, "type", "function", "function", fn));
}

int tl_chat_parse_tool_calls(const char *text, tl_tool_format fmt, char **content,
                             char **tool_calls_json, tl_err *err) {
    *content = NULL;
    *tool_calls_json = NULL;
    if (!text) text = "";
    size_t n = strlen(text);
    json_t *calls = json_array();
    char *rest = malloc(n + 1); /* content outside the calls */
    if (!calls || !rest) {
        json_decref(calls);
        free(rest);
        return tl_err_set(err, TL_ENOMEM, "parse_tool_calls: out of memory");
    }
    size_t rn = 0;
    const char *p = text;
    if (strstr(text, "<tool_call>")) {
        while (1) {
            const char *s = strstr(p, "<tool_call>");
            const char *e = s ? strstr(s, "</tool_call>") : NULL;
            if (!s) break;
            const char *body = s + 11, *bend = e ? e : text + n; /* unterminated: to the end */
            json_t *fn = NULL;
            if (strstr(body, "<function=") && (!e || strstr(body, "<function=") < e)) {
                if (fmt != TL_TOOLS_JSON) fn = call_from_xml(body, (size_t)(bend - body));
            } else {
                const char *b = body;
                while (b < bend && is_space(*b)) b++;
                if (b < bend && *b == '{') fn = call_from_json(b, (size_t)(bend - b));
            }
            const char *after = e ? e + 12 : text + n;
            if (fn) {
                add_call(calls, fn);
                memcpy(rest + rn, p, (size_t)(s - p));
                rn += (size_t)(s - p);
            } else {
                memcpy(rest + rn, p, (size_t)(after - p));
                rn += (size_t)(after - p);
            }
            p = after;
        }
    } else if (fmt != TL_TOOLS_QWEN_XML) {
        const char *b = text;
        while (is_space(*b)) b++;
        if (!strncmp(b, "<|python_tag|>", 14)) b += 14;
        while (is_space(*b)) b++;
        if (*b == '{') {
            /* one object, or several separated by ';' (Llama 3.1's parallel form) */
            const char *q = b;
            int ok = 1;
            json_t *found = json_array();
            while (*q && ok) {
                json_error_t je;
                json_t *o = json_loadb(q, strlen(q), JSON_DISABLE_EOF_CHECK, &je);
                if (!o) { ok = 0; break; }
                json_t *fn = call_from_obj(o);
                json_decref(o);
                if (!fn) { ok = 0; break; }
                json_array_append_new(found, fn);
                q += je.position;
                while (is_space(*q) || *q == ';') q++;
            }
            if (ok && json_array_size(found)) {
                size_t i;
                json_t *fn;
                json_array_foreach(found, i, fn) add_call(calls, json_incref(fn));
                p = text + n;
            }
            json_decref(found);
        }
    }
    size_t tail = strlen(p);
    memcpy(rest + rn, p, tail);
    rn += tail;
    if (json_array_size(calls)) {
        *content = trimmed(rest, rn, 1);
        *tool_calls_json = json_dumps(calls, JSON_COMPACT | JSON_PRESERVE_ORDER);
    } else {
        *content = strdup(text);
    }
    size_t ncalls = json_array_size(calls);
    free(rest);
    json_decref(calls);
    if (!*content || (ncalls && !*tool_calls_json)) {
        free(*content);
        free(*tool_calls_json);
        *content = *tool_calls_json = NULL;
        return tl_err_set(err, TL_ENOMEM, "parse_tool_calls: out of memory");
    }
    return 0;
}
