/* test_jinja.c — the Jinja interpreter against jinja2 (in transformers' environment) on the
 * feature snippets of tests/data/chat/snippets.json (made by tools/chat_goldens.py): each must
 * render byte-identical, or fail where jinja2 fails. Then hostile templates: syntax errors,
 * unknown filters, unbounded recursion, loops that would produce gigabytes — each must end in an
 * error naming line and column, within the limits, quickly. */
#include <jansson.h>
#include <time.h>

#include "core/core.h"
#include "tallow.h"
#include "test.h"

static void check_snippets(void) {
    json_error_t je;
    json_t *all = json_load_file("tests/data/chat/snippets.json", 0, &je);
    CHECKF(all != NULL, "cannot read snippets.json: %s", je.text);
    if (!all) return;
    size_t i;
    json_t *s;
    int n_ok = 0;
    json_array_foreach(all, i, s) {
        const char *src = json_string_value(json_object_get(s, "src"));
        char *vars = json_dumps(json_object_get(s, "vars"), JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_t *want = json_object_get(s, "out");
        char *out = NULL;
        size_t len = 0;
        tl_err err = {0};
        int rc = tl_jinja_render(src, vars, NULL, &out, &len, &err);
        if (want) {
            const char *w = json_string_value(want);
            size_t wl = json_string_length(want);
            CHECKF(rc == 0 && len == wl && !memcmp(out, w, wl),
                   "snippet %zu: %s\n  got (rc %d):  [%s]\n  expected:     [%s]", i, src, rc,
                   rc ? err.msg : out, w);
            if (rc == 0 && len == wl && !memcmp(out, w, wl)) n_ok++;
        } else {
            const char *jerr = json_string_value(json_object_get(s, "error"));
            CHECKF(rc < 0, "snippet %zu: %s\n  jinja2 failed (%s) but we rendered [%s]", i, src,
                   jerr, out ? out : "");
            CHECKF(rc >= 0 || strstr(err.msg, "line ") != NULL,
                   "snippet %zu: error without a line: %s", i, err.msg);
            /* raise_exception's message comes through verbatim */
            if (rc < 0 && strstr(jerr, "TemplateError: "))
                CHECKF(strstr(err.msg, jerr + strlen("TemplateError: ")) != NULL,
                       "snippet %zu: message [%s] lacks [%s]", i, err.msg, jerr);
        }
        free(out);
        free(vars);
    }
    printf("snippets: %d of %zu render byte-identical to jinja2\n", n_ok, json_array_size(all));
    json_decref(all);
}

/* a render that must fail with code and a message naming a line and column */
static void expect_error(const char *src, const tl_chat_opts *o, int code, const char *needle) {
    char *out = NULL;
    tl_err err = {0};
    uint64_t t0 = tl_now_ns();
    int rc = tl_jinja_render(src, NULL, o, &out, NULL, &err);
    double secs = (double)(tl_now_ns() - t0) / 1e9;
    CHECKF(rc == -code, "%s: rc %d, expected %d (%s)", src, rc, -code, err.msg);
    CHECKF(strstr(err.msg, "line ") && strstr(err.msg, "column "), "%s: no line/column in [%s]", src, err.msg);
    if (needle) CHECKF(strstr(err.msg, needle) != NULL, "%s: [%s] lacks [%s]", src, err.msg, needle);
    CHECKF(secs < 5.0, "%s: took %.1f s", src, secs);
    free(out);
}

static void check_hostile(void) {
    tl_chat_opts small = {.max_output = 1 << 20, .max_iterations = 100000, .max_memory = 64 << 20};
    expect_error("{{ x|no_such_filter }}", NULL, TL_EFORMAT, "no filter named 'no_such_filter'");
    expect_error("line one\n  {{ x is bogus }}", NULL, TL_EFORMAT, "line 2, column 11");
    expect_error("{% if x %}\nno end", NULL, TL_EFORMAT, "endif");
    expect_error("{% for x in y %}{% endif %}", NULL, TL_EFORMAT, "endif");
    expect_error("{{ 'abc", NULL, TL_EFORMAT, "unterminated string");
    expect_error("{% frobnicate %}", NULL, TL_EFORMAT, "frobnicate");
    expect_error("{{ raise_exception('boom') }}", NULL, TL_ERUNTIME, "boom");
    /* unbounded recursion */
    expect_error("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", NULL, TL_ELIMIT, "nested deeper");
    /* a loop producing gigabytes */
    expect_error("{% for i in range(100000) %}{% for j in range(100000) %}xxxxxxxxxxxxxxxx{% endfor %}{% endfor %}",
                 &small, TL_ELIMIT, NULL);
    expect_error("{{ 'x' * 10000000000 }}", &small, TL_ELIMIT, NULL);
    /* exponential growth through a namespace */
    expect_error("{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
                 &small, TL_ELIMIT, NULL);
    expect_error("{{ range(10000000000)|length }}", &small, TL_ELIMIT, NULL);
    /* deep nesting in the source */
    char deep[5000];
    size_t k = 0;
    k += (size_t)snprintf(deep, sizeof deep, "{{ ");
    for (int i = 0; i < 1000; i++) deep[k++] = '(';
    deep[k++] = '1';
    for (int i = 0; i < 1000; i++) deep[k++] = ')';
    snprintf(deep + k, sizeof deep - k, " }}");
    expect_error(deep, NULL, TL_EFORMAT, "nesting");
    /* long elif chains and many statements are fine (no recursion per elif) */
    size_t cap = 20000 * 40 + 64;
    char *chain = malloc(cap);
    k = (size_t)snprintf(chain, cap, "{%% if x == 0 %%}0");
    for (int i = 1; i < 20000; i++) k += (size_t)snprintf(chain + k, cap - k, "{%% elif x == %d %%}%d", i, i);
    snprintf(chain + k, cap - k, "{%% endif %%}");
    char *out = NULL;
    tl_err err = {0};
    int rc = tl_jinja_render(chain, "{\"x\": 19999}", NULL, &out, NULL, &err);
    CHECKF(rc == 0 && out && !strcmp(out, "19999"), "long elif chain: rc %d %s", rc, err.msg);
    free(out);
    free(chain);
    /* malformed variables JSON is a clear error, not a crash */
    out = NULL;
    rc = tl_jinja_render("{{ x }}", "{\"x\": [1, 2", NULL, &out, NULL, &err);
    CHECKF(rc == -TL_EINVAL && strstr(err.msg, "invalid JSON"), "bad vars JSON: %d %s", rc, err.msg);
    free(out);
    /* variables nested past the limit: an error, and nothing leaks (checked under ASan) */
    char nested[4096];
    k = 0;
    for (int i = 0; i < 600; i++) nested[k++] = '[';
    for (int i = 0; i < 600; i++) nested[k++] = ']';
    nested[k] = 0;
    char vj[4200];
    snprintf(vj, sizeof vj, "{\"x\": %s}", nested);
    out = NULL;
    rc = tl_jinja_render("{{ x }}", vj, NULL, &out, NULL, &err);
    CHECKF(rc == -TL_ELIMIT, "deep variables JSON: rc %d %s", rc, err.msg);
    free(out);
    /* render memory is counted (TL_MEM_OTHER) and returned */
    tl_mem_stats before, after;
    tl_mem_get(&before);
    out = NULL;
    rc = tl_jinja_render("{% for i in range(1000) %}{{ i }}{% endfor %}", NULL, NULL, &out, NULL, &err);
    tl_mem_get(&after);
    CHECK(rc == 0 && after.cur[TL_MEM_OTHER] == before.cur[TL_MEM_OTHER] && after.peak[TL_MEM_OTHER] > before.cur[TL_MEM_OTHER]);
    free(out);
    /* strftime_now with a pinned clock (2026-03-05 12:00 UTC) */
    tl_chat_opts pinned = {.now = 1772712000};
    out = NULL;
    rc = tl_jinja_render("{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%Y-%m-%d') }}", NULL, &pinned, &out, NULL, &err);
    CHECKF(rc == 0 && out && !strcmp(out, "05 Mar 2026|2026-03-05"), "strftime_now: %s", rc ? err.msg : out);
    free(out);
    /* and the real clock gives today's date in the template's format */
    out = NULL;
    rc = tl_jinja_render("{{ strftime_now('%Y') }}", NULL, NULL, &out, NULL, &err);
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    char year[16];
    strftime(year, sizeof year, "%Y", &tm);
    CHECKF(rc == 0 && out && !strcmp(out, year), "strftime_now real clock: %s", out ? out : err.msg);
    free(out);
}

int main(void) {
    check_snippets();
    check_hostile();
    return test_done();
}
