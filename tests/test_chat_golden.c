/* test_chat_golden.c — every fixture chat template (plus the Qwen3.5-2B form of the 4B
 * template) over the conversation set of tests/data/chat/conversations.json, byte-identical to
 * transformers' apply_chat_template (goldens from tools/chat_goldens.py); where transformers
 * raises, we must fail too, and a raise_exception message must come through. Templates are read
 * from the shared fixtures (skipped when absent). Also the thinking switch (opts.thinking) on
 * both Qwen3.5 forms, and template reuse from a compiled tl_chat_template. */
#include <jansson.h>

#include "core/core.h"
#include "tallow.h"
#include "test.h"

static const char *TAIL_4B =
    "    {%- if enable_thinking is defined and enable_thinking is false %}\n"
    "        {{- '<think>\\n\\n</think>\\n\\n' }}\n"
    "    {%- else %}\n"
    "        {{- '<think>\\n' }}\n"
    "    {%- endif %}";
static const char *TAIL_2B =
    "    {%- if enable_thinking is defined and enable_thinking is true %}\n"
    "        {{- '<think>\\n' }}\n"
    "    {%- else %}\n"
    "        {{- '<think>\\n\\n</think>\\n\\n' }}\n"
    "    {%- endif %}";

/* The 2B form: the 4B template with its final block swapped (models.md §6.1). */
static char *qwen35_2b_form(const char *src4b) {
    const char *at = strstr(src4b, TAIL_4B);
    if (!at) return NULL;
    size_t pre = (size_t)(at - src4b), tl = strlen(TAIL_4B), nl = strlen(TAIL_2B);
    char *out = malloc(strlen(src4b) - tl + nl + 1);
    memcpy(out, src4b, pre);
    memcpy(out + pre, TAIL_2B, nl);
    strcpy(out + pre + nl, at + tl);
    return out;
}

static char *load_template(const char *shared, const char *name) {
    char path[4096];
    snprintf(path, sizeof path, "%s/templates/%s.jinja", shared, name);
    char *src = NULL;
    size_t n;
    tl_err err = {0};
    if (tl_read_file(path, 1 << 20, &src, &n, &err)) return NULL;
    return src;
}

static int render_conv(const tl_chat_template *t, json_t *conv, char **out, size_t *len, tl_err *err) {
    char *msgs = json_dumps(json_object_get(conv, "messages"), JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_t *tools = json_object_get(conv, "tools");
    char *tj = tools ? json_dumps(tools, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_t *kw = json_object_get(conv, "kwargs");
    char *kj = kw ? json_dumps(kw, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    tl_chat_opts o = {0};
    o.add_generation_prompt = json_is_true(json_object_get(conv, "add_generation_prompt"));
    o.continue_final_message = json_is_true(json_object_get(conv, "continue_final_message"));
    o.bos_token = json_string_value(json_object_get(conv, "bos_token"));
    o.eos_token = json_string_value(json_object_get(conv, "eos_token"));
    int rc = tl_chat_template_render(t, msgs, tj, kj, &o, out, len, err);
    free(msgs);
    free(tj);
    free(kj);
    return rc;
}

static void check_thinking(const char *src4b, const char *src2b) {
    const char *msgs = "[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":\"U\"}]";
    const char *base = "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n";
    struct { const char *src; tl_thinking th; const char *suffix; } cases[] = {
        {src4b, TL_THINKING_TEMPLATE, "<think>\n"},
        {src4b, TL_THINKING_ON, "<think>\n"},
        {src4b, TL_THINKING_OFF, "<think>\n\n</think>\n\n"},
        {src2b, TL_THINKING_TEMPLATE, "<think>\n\n</think>\n\n"},
        {src2b, TL_THINKING_ON, "<think>\n"},
        {src2b, TL_THINKING_OFF, "<think>\n\n</think>\n\n"},
    };
    for (size_t i = 0; i < TL_ARRAY_LEN(cases); i++) {
        tl_chat_opts o = {.add_generation_prompt = 1, .thinking = cases[i].th};
        char *out = NULL, want[512];
        tl_err err = {0};
        snprintf(want, sizeof want, "%s%s", base, cases[i].suffix);
        int rc = tl_chat_render(cases[i].src, msgs, NULL, NULL, &o, &out, NULL, &err);
        CHECKF(rc == 0 && !strcmp(out, want), "thinking case %zu: %s", i, rc ? err.msg : out);
        free(out);
    }
    /* kwargs' enable_thinking wins over opts.thinking */
    tl_chat_opts o = {.add_generation_prompt = 1, .thinking = TL_THINKING_ON};
    char *out = NULL;
    tl_err err = {0};
    int rc = tl_chat_render(src4b, msgs, NULL, "{\"enable_thinking\": false}", &o, &out, NULL, &err);
    CHECKF(rc == 0 && strstr(out, "<think>\n\n</think>\n\n"), "kwargs override: %s", rc ? err.msg : out);
    free(out);
}

static void check_bad_input(const char *src) {
    char *out = NULL;
    tl_err err = {0};
    tl_chat_opts o = {.add_generation_prompt = 1};
    int rc = tl_chat_render(src, "[{\"role\": \"user\", \"content\": ", NULL, NULL, &o, &out, NULL, &err);
    CHECKF(rc == -TL_EINVAL && strstr(err.msg, "messages"), "truncated messages JSON: %s", err.msg);
    rc = tl_chat_render(src, "{\"role\": \"user\"}", NULL, NULL, &o, &out, NULL, &err);
    CHECKF(rc == -TL_EINVAL, "messages not an array: %s", err.msg);
    rc = tl_chat_render(src, "[\"just a string\"]", NULL, NULL, &o, &out, NULL, &err);
    CHECKF(rc == -TL_EINVAL && strstr(err.msg, "messages[0]"), "message not an object: %s", err.msg);
    rc = tl_chat_render(src, "[{\"role\":\"user\",\"content\":\"x\"}]", "{\"not\": \"a list\"}", NULL, &o, &out, NULL, &err);
    CHECKF(rc == -TL_EINVAL && strstr(err.msg, "tools"), "tools not a list: %s", err.msg);
    rc = tl_chat_render(src, "[{\"role\":\"user\",\"content\":\"x\"}]", NULL, "[1]", &o, &out, NULL, &err);
    CHECKF(rc == -TL_EINVAL && strstr(err.msg, "kwargs"), "kwargs not an object: %s", err.msg);
    tl_chat_opts both = {.add_generation_prompt = 1, .continue_final_message = 1};
    rc = tl_chat_render(src, "[{\"role\":\"user\",\"content\":\"x\"}]", NULL, NULL, &both, &out, NULL, &err);
    CHECKF(rc == -TL_EINVAL && strstr(err.msg, "not compatible"), "continue + generation prompt: %s", err.msg);
    /* arguments given as JSON text are parsed when asked (mlx-lm server behaviour) */
    const char *m = "[{\"role\":\"user\",\"content\":\"w?\"},{\"role\":\"assistant\",\"content\":\"\","
                    "\"tool_calls\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\": {\\\"b\\\": 1}}\"}}]}]";
    tl_chat_opts pa = {.parse_arguments = 1};
    rc = tl_chat_render(src, m, NULL, NULL, &pa, &out, NULL, &err);
    CHECKF(rc == 0 && strstr(out, "<parameter=a>\n{\"b\": 1}\n</parameter>"), "parse_arguments: %s", rc ? err.msg : out);
    free(out);
}

int main(void) {
    const char *shared = test_shared_dir();
    if (!shared) return test_skip("shared fixtures not found");
    json_error_t je;
    json_t *convs = json_load_file("tests/data/chat/conversations.json", 0, &je);
    json_t *goldens = json_load_file("tests/data/chat/goldens.json", 0, &je);
    if (!convs || !goldens) {
        fprintf(stderr, "cannot read tests/data/chat goldens: %s\n", je.text);
        return 1;
    }
    char *src4b = load_template(shared, "Qwen3.5-4B");
    char *src2b = src4b ? qwen35_2b_form(src4b) : NULL;
    CHECK(src2b != NULL);
    const char *name;
    json_t *per;
    int total = 0, same = 0;
    json_object_foreach(goldens, name, per) {
        char *src = !strcmp(name, "Qwen3.5-2B") ? (src2b ? strdup(src2b) : NULL) : load_template(shared, name);
        CHECKF(src != NULL, "template %s not found", name);
        if (!src) continue;
        tl_chat_template *t = NULL;
        tl_err err = {0};
        int rc = tl_chat_template_compile(&t, src, &err);
        CHECKF(rc == 0, "%s: %s", name, err.msg);
        if (rc) { free(src); continue; }
        size_t i;
        json_t *conv;
        json_array_foreach(convs, i, conv) {
            const char *cname = json_string_value(json_object_get(conv, "name"));
            json_t *want = json_object_get(per, cname);
            if (!want) continue;
            char *out = NULL;
            size_t len = 0;
            rc = render_conv(t, conv, &out, &len, &err);
            total++;
            if (json_is_string(want)) {
                const char *w = json_string_value(want);
                size_t wl = json_string_length(want);
                int ok = rc == 0 && len == wl && !memcmp(out, w, wl);
                same += ok;
                if (!ok && rc == 0) {
                    size_t d = 0;
                    while (d < len && d < wl && out[d] == w[d]) d++;
                    CHECKF(0, "%s / %s: differs at byte %zu\n  got:      [%.80s]\n  expected: [%.80s]", name, cname, d, out + d, w + d);
                } else CHECKF(ok, "%s / %s: failed: %s", name, cname, err.msg);
            } else {
                const char *msg = json_string_value(json_object_get(want, "raises"));
                const char *type = json_string_value(json_object_get(want, "type"));
                CHECKF(rc < 0, "%s / %s: transformers raised (%s) but we rendered", name, cname, msg);
                if (rc < 0 && type && !strcmp(type, "TemplateError"))
                    CHECKF(strstr(err.msg, msg) != NULL, "%s / %s: [%s] lacks [%s]", name, cname, err.msg, msg);
                same += rc < 0;
            }
            free(out);
        }
        tl_chat_template_free(t);
        free(src);
    }
    printf("goldens: %d of %d renders match transformers\n", same, total);
    if (src4b && src2b) {
        check_thinking(src4b, src2b);
        check_bad_input(src4b);
    }
    free(src4b);
    free(src2b);
    json_decref(convs);
    json_decref(goldens);
    return test_done();
}
