/* chat.c — apply_chat_template as transformers does it: build the template's variables from
 * JSON (messages with null keys dropped and reasoning fields aliased, tools, bos/eos, the
 * thinking switch, extra kwargs), render, and handle continue_final_message with the same
 * tag-and-cut method. Also loads a model directory's template and special tokens. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/jinja.h"
#include "chat/jinja_int.h"

struct tl_chat_template {
    jtemplate *t;
    char *src;
};

#define CONT_TAG "CONTINUE_FINAL_MESSAGE_TAG "

static void opts_limits(const tl_chat_opts *o, jlimits *l) {
    jlimits_default(l);
    if (!o) return;
    if (o->max_depth > 0) l->max_depth = o->max_depth;
    if (o->max_iterations > 0) l->max_iterations = o->max_iterations;
    if (o->max_output > 0) l->max_output = o->max_output;
    if (o->max_memory > 0) l->max_memory = o->max_memory;
    l->now = o->now;
}

int tl_chat_template_compile(tl_chat_template **out, const char *src, tl_err *err) {
    *out = NULL;
    if (!src) return tl_err_set(err, TL_EINVAL, "chat template: no template text");
    tl_chat_template *ct = calloc(1, sizeof *ct);
    if (!ct) return tl_err_set(err, TL_ENOMEM, "chat template: out of memory");
    ct->src = strdup(src);
    if (!ct->src) {
        free(ct);
        return tl_err_set(err, TL_ENOMEM, "chat template: out of memory");
    }
    jlimits l;
    jlimits_default(&l);
    int rc = jtemplate_compile(&ct->t, ct->src, strlen(ct->src), &l, err);
    if (rc) {
        free(ct->src);
        free(ct);
        return rc;
    }
    *out = ct;
    return 0;
}

void tl_chat_template_free(tl_chat_template *t) {
    if (!t) return;
    jtemplate_free(t->t);
    free(t->src);
    free(t);
}

typedef struct render_in {
    const char *src;
    const char *messages_json, *tools_json, *kwargs_json, *vars_json;
    const tl_chat_opts *opts;
    int chat;            /* 0: plain jinja with vars_json */
    char *cont_final;    /* continue_final_message: the final text (stripped), set by build */
} render_in;

/* Appends the continue tag to the final message (its content, or the last text part). */
static int tag_final(jctx *c, jv msg, render_in *in, tl_err *err) {
    jv *content = jv_dict_get(msg, "content", 7);
    if (!content || content->t == JV_NONE)
        return tl_err_set(err, TL_EINVAL, "continue_final_message is set but the final message has no \"content\" to continue");
    if (!strstr(in->src, "content"))
        return tl_err_set(err, TL_EINVAL, "continue_final_message is set to \"content\" but this is not an accepted field in the chat_template");
    jv *text = NULL;
    if (content->t == JV_LIST) {
        for (size_t i = content->u.l->n; i-- > 0 && !text;) {
            jv part = content->u.l->v[i];
            if (part.t == JV_DICT) text = jv_dict_get(part, "text", 4);
        }
        if (!text)
            return tl_err_set(err, TL_EINVAL, "continue_final_message is set but we could not find any text to continue in the final message");
    } else text = content;
    if (text->t != JV_STR)
        return tl_err_set(err, TL_EINVAL, "continue_final_message: the final message's text is not a string");
    /* remember final_message.strip() for the check after rendering */
    jv stripped = jv_call_method(c, *text, "strip", &(jargs){0});
    in->cont_final = strdup(stripped.u.s->s);
    if (!in->cont_final) return tl_err_set(err, TL_ENOMEM, "out of memory");
    jbuf b;
    jbuf_init(&b, c, 0);
    jbuf_put(&b, text->u.s->s, text->u.s->len);
    jbuf_put(&b, CONT_TAG, strlen(CONT_TAG));
    *text = jbuf_str(&b);
    return 0;
}

static int build_vars(jctx *c, void *user, jv *vars, tl_err *err) {
    render_in *in = user;
    int rc;
    if (!in->chat) {
        if (!in->vars_json) { *vars = jv_dict(c, 0); return 0; }
        if ((rc = jv_from_json(c, in->vars_json, "template variables", vars, err))) return rc;
        if (vars->t != JV_DICT) return tl_err_set(err, TL_EINVAL, "template variables: expected a JSON object");
        return 0;
    }
    const tl_chat_opts *o = in->opts;
    jv d = jv_dict(c, 16);
    jv msgs;
    if ((rc = jv_from_json(c, in->messages_json ? in->messages_json : "[]", "messages", &msgs, err))) return rc;
    if (msgs.t != JV_LIST) return tl_err_set(err, TL_EINVAL, "messages: expected a JSON array of message objects");
    jv norm = jv_list(c, msgs.u.l->n);
    for (size_t i = 0; i < msgs.u.l->n; i++) {
        jv m = msgs.u.l->v[i];
        if (m.t != JV_DICT)
            return tl_err_set(err, TL_EINVAL, "messages[%zu]: expected an object, got %s", i, jv_type_name(m));
        /* drop null keys (transformers' _normalize_chat_messages) */
        jv nm = jv_dict(c, m.u.d->n + 2);
        jv reasoning = jv_undef(NULL);
        for (size_t k = 0; k < m.u.d->n; k++) {
            if (m.u.d->v[k].t == JV_NONE) continue;
            jv_dict_set(c, nm, m.u.d->k[k], m.u.d->v[k]);
        }
        static const char *rkeys[] = {"reasoning_content", "thinking", "reasoning"};
        for (int r = 0; r < 3 && reasoning.t == JV_UNDEF; r++) {
            jv *v = jv_dict_get(nm, rkeys[r], strlen(rkeys[r]));
            if (v) reasoning = *v;
        }
        if (reasoning.t != JV_UNDEF) { /* {"thinking": r, **message, "reasoning_content": r} */
            jv al = jv_dict(c, nm.u.d->n + 2);
            jv_dict_set(c, al, jv_cstr(c, "thinking"), reasoning);
            for (size_t k = 0; k < nm.u.d->n; k++) jv_dict_set(c, al, nm.u.d->k[k], nm.u.d->v[k]);
            jv_dict_set(c, al, jv_cstr(c, "reasoning_content"), reasoning);
            nm = al;
        }
        if (o && o->parse_arguments) { /* tool_calls[].function.arguments JSON text -> object */
            jv *tcs = jv_dict_get(nm, "tool_calls", 10);
            if (tcs && tcs->t == JV_LIST)
                for (size_t k = 0; k < tcs->u.l->n; k++) {
                    jv tc = tcs->u.l->v[k];
                    jv *fn = tc.t == JV_DICT ? jv_dict_get(tc, "function", 8) : NULL;
                    jv *args = fn && fn->t == JV_DICT ? jv_dict_get(*fn, "arguments", 9) : NULL;
                    if (args && args->t == JV_STR) {
                        jv parsed;
                        tl_err e2 = {0};
                        if (!jv_from_json(c, args->u.s->s, "arguments", &parsed, &e2) && parsed.t == JV_DICT)
                            *args = parsed;
                    }
                }
        }
        jv_list_push(c, norm, nm);
    }
    if (o && o->continue_final_message) {
        if (o->add_generation_prompt)
            return tl_err_set(err, TL_EINVAL, "continue_final_message and add_generation_prompt are not compatible");
        if (!norm.u.l->n) return tl_err_set(err, TL_EINVAL, "continue_final_message is set but the conversation is empty");
        if ((rc = tag_final(c, norm.u.l->v[norm.u.l->n - 1], in, err))) return rc;
    }
    jv_dict_set(c, d, jv_cstr(c, "messages"), norm);
    jv tools = jv_none();
    if (in->tools_json) {
        if ((rc = jv_from_json(c, in->tools_json, "tools", &tools, err))) return rc;
        if (tools.t != JV_LIST && tools.t != JV_NONE) return tl_err_set(err, TL_EINVAL, "tools: expected a JSON array");
    }
    jv_dict_set(c, d, jv_cstr(c, "tools"), tools);
    jv_dict_set(c, d, jv_cstr(c, "documents"), jv_none());
    jv_dict_set(c, d, jv_cstr(c, "add_generation_prompt"), jv_bool(o && o->add_generation_prompt));
    if (o && o->bos_token) jv_dict_set(c, d, jv_cstr(c, "bos_token"), jv_cstr(c, o->bos_token));
    if (o && o->eos_token) jv_dict_set(c, d, jv_cstr(c, "eos_token"), jv_cstr(c, o->eos_token));
    if (o && o->thinking == TL_THINKING_ON) jv_dict_set(c, d, jv_cstr(c, "enable_thinking"), jv_bool(1));
    if (o && o->thinking == TL_THINKING_OFF) jv_dict_set(c, d, jv_cstr(c, "enable_thinking"), jv_bool(0));
    if (in->kwargs_json) {
        jv kw;
        if ((rc = jv_from_json(c, in->kwargs_json, "template kwargs", &kw, err))) return rc;
        if (kw.t != JV_DICT) return tl_err_set(err, TL_EINVAL, "template kwargs: expected a JSON object");
        for (size_t k = 0; k < kw.u.d->n; k++) jv_dict_set(c, d, kw.u.d->k[k], kw.u.d->v[k]);
    }
    *vars = d;
    return 0;
}

static int finish_continue(render_in *in, char **out, size_t *out_len, tl_err *err) {
    char *r = *out;
    const char *tag = "CONTINUE_FINAL_MESSAGE_TAG";
    if (!strstr(r, in->cont_final) || !strstr(r, tag)) {
        free(r);
        *out = NULL;
        return tl_err_set(err, TL_EINVAL, "continue_final_message is set but the final message does not appear in the chat after applying the chat template");
    }
    char *loc = NULL;
    for (char *p = strstr(r, tag); p; p = strstr(p + 1, tag)) loc = p;
    size_t n;
    if (!strncmp(loc, CONT_TAG, strlen(CONT_TAG))) n = (size_t)(loc - r);
    else {
        n = (size_t)(loc - r);
        while (n > 0 && strchr(" \t\n\r\f\v", r[n - 1])) n--;
    }
    r[n] = 0;
    if (out_len) *out_len = n;
    return 0;
}

static int render(const jtemplate *t, render_in *in, char **out, size_t *out_len, tl_err *err) {
    jlimits l;
    opts_limits(in->opts, &l);
    size_t len = 0;
    int rc = jtemplate_render(t, &l, build_vars, in, out, &len, err);
    if (out_len) *out_len = len;
    if (!rc && in->cont_final) rc = finish_continue(in, out, out_len, err);
    free(in->cont_final);
    in->cont_final = NULL;
    return rc;
}

int tl_chat_template_render(const tl_chat_template *t, const char *messages_json,
                            const char *tools_json, const char *kwargs_json,
                            const tl_chat_opts *opts, char **out, size_t *out_len, tl_err *err) {
    *out = NULL;
    render_in in = {.src = t->src, .messages_json = messages_json, .tools_json = tools_json,
                    .kwargs_json = kwargs_json, .opts = opts, .chat = 1};
    return render(t->t, &in, out, out_len, err);
}

int tl_chat_render(const char *template_src, const char *messages_json, const char *tools_json,
                   const char *kwargs_json, const tl_chat_opts *opts, char **out, size_t *out_len,
                   tl_err *err) {
    *out = NULL;
    tl_chat_template *t;
    int rc = tl_chat_template_compile(&t, template_src, err);
    if (rc) return rc;
    rc = tl_chat_template_render(t, messages_json, tools_json, kwargs_json, opts, out, out_len, err);
    tl_chat_template_free(t);
    return rc;
}

int tl_jinja_render(const char *src, const char *vars_json, const tl_chat_opts *opts, char **out,
                    size_t *out_len, tl_err *err) {
    *out = NULL;
    jtemplate *t;
    jlimits l;
    opts_limits(opts, &l);
    int rc = jtemplate_compile(&t, src, strlen(src), &l, err);
    if (rc) return rc;
    render_in in = {.src = src, .vars_json = vars_json, .opts = opts, .chat = 0};
    rc = render(t, &in, out, out_len, err);
    jtemplate_free(t);
    return rc;
}

/* ---- model directory ------------------------------------------------------------------------ */
static char *token_text(json_t *v) {
    if (json_is_string(v)) return strdup(json_string_value(v));
    if (json_is_object(v) && json_is_string(json_object_get(v, "content")))
        return strdup(json_string_value(json_object_get(v, "content")));
    return NULL;
}

int tl_chat_template_load(const char *dir, char **template_src, char **bos_token, char **eos_token,
                          tl_err *err) {
    char path[4096];
    *template_src = NULL;
    if (bos_token) *bos_token = NULL;
    if (eos_token) *eos_token = NULL;
    int rc;
    json_t *cfg = NULL;
    if (tl_path_join(path, sizeof path, dir, "tokenizer_config.json") == 0 && tl_file_exists(path)) {
        char *txt;
        size_t n;
        if ((rc = tl_read_file(path, 64u << 20, &txt, &n, err))) return rc;
        json_error_t je;
        cfg = json_loadb(txt, n, 0, &je);
        free(txt);
        if (!cfg)
            return tl_err_set(err, TL_EFORMAT, "%s: invalid JSON at line %d, column %d: %s", path, je.line, je.column, je.text);
        if (!json_is_object(cfg)) {
            json_decref(cfg);
            return tl_err_set(err, TL_EFORMAT, "%s: expected a JSON object", path);
        }
        if (bos_token) *bos_token = token_text(json_object_get(cfg, "bos_token"));
        if (eos_token) *eos_token = token_text(json_object_get(cfg, "eos_token"));
    }
    if (tl_path_join(path, sizeof path, dir, "chat_template.jinja") == 0 && tl_file_exists(path)) {
        size_t n;
        rc = tl_read_file(path, 16u << 20, template_src, &n, err);
        json_decref(cfg);
        return rc;
    }
    json_t *ct = cfg ? json_object_get(cfg, "chat_template") : NULL;
    if (json_is_string(ct)) *template_src = strdup(json_string_value(ct));
    else if (json_is_array(ct)) {
        size_t i;
        json_t *e;
        json_array_foreach(ct, i, e) {
            json_t *nm = json_object_get(e, "name"), *tp = json_object_get(e, "template");
            if (json_is_string(nm) && json_is_string(tp) && !strcmp(json_string_value(nm), "default"))
                *template_src = strdup(json_string_value(tp));
        }
        if (!*template_src) {
            json_decref(cfg);
            return tl_err_set(err, TL_ENOTFOUND, "%s/tokenizer_config.json: chat_template list has no entry named \"default\"", dir);
        }
    }
    json_decref(cfg);
    if (!*template_src) {
        if (bos_token) { free(*bos_token); *bos_token = NULL; }
        if (eos_token) { free(*eos_token); *eos_token = NULL; }
        return tl_err_set(err, TL_ENOTFOUND, "%s: no chat template (neither chat_template.jinja nor tokenizer_config.json \"chat_template\")", dir);
    }
    return 0;
}
