/* test_request.c — request parsing and validation of the server's OpenAI endpoints: good bodies
 * become the typed struct; hostile ones (bad JSON, wrong types, huge numbers, deep nesting,
 * invalid UTF-8, unsupported fields) become a 400 that names the field. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/request.h"
#include "test.h"

static tl_api_err E;

static tl_request *ok(tl_req_kind k, const char *body) {
    tl_request *r = NULL;
    memset(&E, 0, sizeof E);
    int rc = tl_request_parse(k, body, strlen(body), 1000, &r, &E);
    CHECKF(rc == 0 && r, "expected success for %s, got %d: %s", body, rc, E.message);
    return r;
}

/* Expect a failure with this status and param; returns the message for further checks. */
static const char *fails(tl_req_kind k, const char *body, size_t len, int status,
                         const char *param) {
    tl_request *r = NULL;
    memset(&E, 0, sizeof E);
    int rc = tl_request_parse(k, body, len, 1000, &r, &E);
    CHECKF(rc < 0 && !r, "expected failure for %.200s", body);
    CHECKF(E.status == status, "status %d, expected %d for %.200s (%s)", E.status, status, body,
           E.message);
    CHECKF(!strcmp(E.param, param), "param '%s', expected '%s' for %.200s (%s)", E.param, param,
           body, E.message);
    CHECKF(E.message[0] != 0, "no message for %.200s", body);
    tl_request_free(r);
    return E.message;
}
#define FAILS(k, body, status, param) fails(k, body, strlen(body), status, param)

int main(void) {
    /* a full chat request */
    tl_request *r = ok(TL_REQ_CHAT,
                       "{\"model\":\"m\",\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
                       "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hel\"},"
                       "{\"type\":\"text\",\"text\":\"lo\"}]}],\"max_tokens\":7,\"temperature\":0,"
                       "\"top_p\":0.5,\"top_k\":4,\"min_p\":0.1,\"seed\":-3,\"stop\":[\"x\",\"yz\"],"
                       "\"logit_bias\":{\"5\":-100,\"7\":2.5},\"stream\":true,"
                       "\"stream_options\":{\"include_usage\":true},\"logprobs\":true,"
                       "\"top_logprobs\":3,\"reasoning_effort\":\"none\",\"n\":1,"
                       "\"response_format\":{\"type\":\"text\"},\"user\":\"u\"}");
    if (r) {
        CHECK_STREQ(r->model, "m");
        CHECK(json_array_size(r->messages) == 2);
        CHECK_STREQ(json_string_value(json_object_get(json_array_get(r->messages, 1), "content")),
                    "hello");
        CHECK(r->max_tokens == 7 && r->temperature == 0 && r->top_p == 0.5 && r->top_k == 4);
        CHECK(r->has_seed && r->seed == (uint64_t)-3);
        CHECK(r->n_stop == 2 && !strcmp(r->stop[1], "yz"));
        CHECK(r->n_bias == 2 && r->bias[0].id == 5 && r->bias[0].bias == -100.0f);
        CHECK(r->stream && r->include_usage && r->logprobs && r->top_logprobs == 3);
        CHECK(r->enable_thinking == 0);
        tl_request_free(r);
    }
    /* defaults; developer becomes system; null means absent */
    r = ok(TL_REQ_CHAT, "{\"messages\":[{\"role\":\"developer\",\"content\":\"s\"},{\"role\":"
                        "\"user\",\"content\":\"q\",\"name\":null}],\"temperature\":null}");
    if (r) {
        CHECK(r->max_tokens == -1 && r->temperature == 1.0 && r->enable_thinking == -1);
        CHECK_STREQ(json_string_value(json_object_get(json_array_get(r->messages, 0), "role")),
                    "system");
        tl_request_free(r);
    }
    /* chat_template_kwargs.enable_thinking; tools; assistant tool calls with string arguments */
    r = ok(TL_REQ_CHAT,
           "{\"messages\":[{\"role\":\"user\",\"content\":\"w?\"},{\"role\":\"assistant\","
           "\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\",\"function\":"
           "{\"name\":\"get\",\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}}]},{\"role\":\"tool\","
           "\"tool_call_id\":\"c1\",\"content\":\"5C\"}],\"chat_template_kwargs\":{"
           "\"enable_thinking\":false},\"tools\":[{\"type\":\"function\",\"function\":{\"name\":"
           "\"get\",\"parameters\":{\"type\":\"object\"}}}],\"tool_choice\":\"auto\"}");
    if (r) {
        CHECK(r->enable_thinking == 0 && json_array_size(r->tools) == 1);
        json_t *args = json_object_get(
            json_object_get(json_array_get(json_object_get(json_array_get(r->messages, 1),
                                                           "tool_calls"),
                                           0),
                            "function"),
            "arguments");
        CHECK(json_is_object(args) && !strcmp(json_string_value(json_object_get(args, "city")),
                                              "Oslo"));
        tl_request_free(r);
    }
    /* completions: string, [string], token ids; logprobs is an integer there */
    r = ok(TL_REQ_COMPLETION, "{\"prompt\":\"once\",\"max_tokens\":3,\"logprobs\":2}");
    if (r) {
        CHECK_STREQ(r->prompt, "once");
        CHECK(r->logprobs && r->top_logprobs == 2);
        tl_request_free(r);
    }
    r = ok(TL_REQ_COMPLETION, "{\"prompt\":[\"one\"]}");
    if (r) {
        CHECK_STREQ(r->prompt, "one");
        tl_request_free(r);
    }
    r = ok(TL_REQ_COMPLETION, "{\"prompt\":[1,2,999]}");
    if (r) {
        CHECK(r->n_prompt_ids == 3 && r->prompt_ids[2] == 999);
        tl_request_free(r);
    }
    r = ok(TL_REQ_TOKENIZE, "{\"content\":\"hi\",\"add_special\":false,\"with_pieces\":true}");
    if (r) {
        CHECK(!r->add_special && r->with_pieces && !strcmp(r->content, "hi"));
        tl_request_free(r);
    }
    r = ok(TL_REQ_DETOKENIZE, "{\"tokens\":[0,1,2]}");
    if (r) {
        CHECK(r->n_tokens == 3);
        tl_request_free(r);
    }

    /* ---- hostile and malformed bodies ---- */
    const char *m;
    m = FAILS(TL_REQ_CHAT, "{\"messages\":[", 400, "");
    CHECK(strstr(m, "not valid JSON") != NULL);
    FAILS(TL_REQ_CHAT, "", 400, "");
    FAILS(TL_REQ_CHAT, "[1,2]", 400, "");
    FAILS(TL_REQ_CHAT, "\"x\"", 400, "");
    FAILS(TL_REQ_CHAT, "{\"messages\":[],\"messages\":[]}", 400, ""); /* duplicate key */
    fails(TL_REQ_CHAT, "{\"messages\":\"\xff\xfe\"}", 17, 400, "");   /* invalid UTF-8 */
    fails(TL_REQ_CHAT, "{\"a\":\"\xc0\xaf\"}", 11, 400, "");           /* overlong */
    fails(TL_REQ_CHAT, "{\"messages\":\"a\0b\"}", 18, 400, "");        /* NUL in body */
    FAILS(TL_REQ_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"\\u0000\"}]}", 400, "");
    {
        /* 100k levels of nesting: refused, no stack overflow */
        size_t n = 100000;
        char *deep = malloc(2 * n + 32);
        strcpy(deep, "{\"messages\":");
        size_t o = strlen(deep);
        for (size_t i = 0; i < n; i++) deep[o++] = '[';
        for (size_t i = 0; i < n; i++) deep[o++] = ']';
        deep[o++] = '}';
        fails(TL_REQ_CHAT, deep, o, 400, "");
        free(deep);
    }
    const char *U = "\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]";
    char b[1024];
#define WITH(extra) (snprintf(b, sizeof b, "{%s,%s}", U, extra), b)
    FAILS(TL_REQ_CHAT, WITH("\"max_tokens\":99999999999999999999999"), 400, ""); /* too big */
    FAILS(TL_REQ_CHAT, WITH("\"max_tokens\":1e999"), 400, "");
    FAILS(TL_REQ_CHAT, WITH("\"max_tokens\":\"5\""), 400, "max_tokens");
    FAILS(TL_REQ_CHAT, WITH("\"max_tokens\":0"), 400, "max_tokens");
    FAILS(TL_REQ_CHAT, WITH("\"max_tokens\":4294967296"), 400, "max_tokens");
    FAILS(TL_REQ_CHAT, WITH("\"max_tokens\":2.5"), 400, "max_tokens");
    FAILS(TL_REQ_CHAT, WITH("\"max_tokens\":5,\"max_completion_tokens\":6"), 400,
          "max_completion_tokens");
    FAILS(TL_REQ_CHAT, WITH("\"temperature\":\"hot\""), 400, "temperature");
    FAILS(TL_REQ_CHAT, WITH("\"temperature\":-1"), 400, "temperature");
    FAILS(TL_REQ_CHAT, WITH("\"temperature\":true"), 400, "temperature");
    FAILS(TL_REQ_CHAT, WITH("\"top_p\":0"), 400, "top_p");
    FAILS(TL_REQ_CHAT, WITH("\"top_k\":-1"), 400, "top_k");
    FAILS(TL_REQ_CHAT, WITH("\"min_p\":1.5"), 400, "min_p");
    FAILS(TL_REQ_CHAT, WITH("\"presence_penalty\":3"), 400, "presence_penalty");
    FAILS(TL_REQ_CHAT, WITH("\"frequency_penalty\":[]"), 400, "frequency_penalty");
    FAILS(TL_REQ_CHAT, WITH("\"repetition_penalty\":0"), 400, "repetition_penalty");
    FAILS(TL_REQ_CHAT, WITH("\"seed\":1.5"), 400, "seed");
    FAILS(TL_REQ_CHAT, WITH("\"stop\":5"), 400, "stop");
    FAILS(TL_REQ_CHAT, WITH("\"stop\":[\"a\",7]"), 400, "stop[1]");
    FAILS(TL_REQ_CHAT, WITH("\"stop\":[\"\"]"), 400, "stop[0]");
    FAILS(TL_REQ_CHAT, WITH("\"stop\":[\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\","
                            "\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\",\"a\"]"),
          400, "stop");
    FAILS(TL_REQ_CHAT, WITH("\"logit_bias\":{\"abc\":1}"), 400, "logit_bias.abc");
    FAILS(TL_REQ_CHAT, WITH("\"logit_bias\":{\"5000\":1}"), 400, "logit_bias.5000");
    FAILS(TL_REQ_CHAT, WITH("\"logit_bias\":{\"5\":1000}"), 400, "logit_bias.5");
    FAILS(TL_REQ_CHAT, WITH("\"logit_bias\":[1]"), 400, "logit_bias");
    m = FAILS(TL_REQ_CHAT, WITH("\"n\":2"), 400, "n");
    CHECK(!strcmp(E.code, "unsupported_parameter"));
    FAILS(TL_REQ_CHAT, WITH("\"n\":0"), 400, "n");
    FAILS(TL_REQ_CHAT, WITH("\"stream\":\"yes\""), 400, "stream");
    FAILS(TL_REQ_CHAT, WITH("\"stream_options\":{\"include_usage\":true}"), 400, "stream_options");
    FAILS(TL_REQ_CHAT, WITH("\"stream\":true,\"stream_options\":{\"include_usage\":1}"), 400,
          "stream_options.include_usage");
    FAILS(TL_REQ_CHAT, WITH("\"logprobs\":1"), 400, "logprobs");
    FAILS(TL_REQ_CHAT, WITH("\"top_logprobs\":2"), 400, "top_logprobs");
    FAILS(TL_REQ_CHAT, WITH("\"logprobs\":true,\"top_logprobs\":21"), 400, "top_logprobs");
    m = FAILS(TL_REQ_CHAT, WITH("\"response_format\":{\"type\":\"json_object\"}"), 400,
              "response_format");
    CHECK(strstr(m, "not supported") != NULL);
    FAILS(TL_REQ_CHAT, WITH("\"tool_choice\":\"required\""), 400, "tool_choice");
    FAILS(TL_REQ_CHAT, WITH("\"tools\":{}"), 400, "tools");
    FAILS(TL_REQ_CHAT, WITH("\"tools\":[{\"type\":\"function\"}]"), 400, "tools[0]");
    FAILS(TL_REQ_CHAT, WITH("\"tools\":[{\"type\":\"retrieval\"}]"), 400, "tools[0]");
    FAILS(TL_REQ_CHAT, WITH("\"reasoning_effort\":\"max\""), 400, "reasoning_effort");
    FAILS(TL_REQ_CHAT, WITH("\"chat_template_kwargs\":[]"), 400, "chat_template_kwargs");
    FAILS(TL_REQ_CHAT, WITH("\"chat_template_kwargs\":{\"enable_thinking\":\"no\"}"), 400,
          "chat_template_kwargs.enable_thinking");
    m = FAILS(TL_REQ_CHAT, WITH("\"frobnicate\":1"), 400, "frobnicate");
    CHECK(strstr(m, "not a supported field") != NULL);
    FAILS(TL_REQ_CHAT, "{}", 400, "messages");
    FAILS(TL_REQ_CHAT, "{\"messages\":[]}", 400, "messages");
    FAILS(TL_REQ_CHAT, "{\"messages\":{}}", 400, "messages");
    FAILS(TL_REQ_CHAT, "{\"messages\":[5]}", 400, "messages[0]");
    FAILS(TL_REQ_CHAT, "{\"messages\":[{\"content\":\"x\"}]}", 400, "messages[0].role");
    FAILS(TL_REQ_CHAT, "{\"messages\":[{\"role\":\"king\",\"content\":\"x\"}]}", 400,
          "messages[0].role");
    FAILS(TL_REQ_CHAT, "{\"messages\":[{\"role\":\"user\"}]}", 400, "messages[0]");
    FAILS(TL_REQ_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":5}]}", 400,
          "messages[0].content");
    FAILS(TL_REQ_CHAT,
          "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
          "\"image_url\":{\"url\":\"x\"}}]}]}",
          400, "messages[0].content[0]");
    FAILS(TL_REQ_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\"}]}]}",
          400, "messages[0].content[0]");
    FAILS(TL_REQ_CHAT, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\",\"weird\":1}]}", 400,
          "messages[0].weird");
    FAILS(TL_REQ_CHAT,
          "{\"messages\":[{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"type\":"
          "\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"not json\"}}]}]}",
          400, "messages[0].tool_calls[0]");
    /* completions */
    FAILS(TL_REQ_COMPLETION, "{}", 400, "prompt");
    FAILS(TL_REQ_COMPLETION, "{\"prompt\":5}", 400, "prompt");
    FAILS(TL_REQ_COMPLETION, "{\"prompt\":[\"a\",\"b\"]}", 400, "prompt");
    FAILS(TL_REQ_COMPLETION, "{\"prompt\":[1,-2]}", 400, "prompt[1]");
    FAILS(TL_REQ_COMPLETION, "{\"prompt\":[1,1000]}", 400, "prompt[1]");
    FAILS(TL_REQ_COMPLETION, "{\"prompt\":\"a\",\"logprobs\":true}", 400, "logprobs");
    FAILS(TL_REQ_COMPLETION, "{\"prompt\":\"a\",\"logprobs\":6}", 400, "logprobs");
    FAILS(TL_REQ_COMPLETION, "{\"prompt\":\"a\",\"echo\":true}", 400, "echo");
    FAILS(TL_REQ_COMPLETION, "{\"prompt\":\"a\",\"best_of\":3}", 400, "best_of");
    FAILS(TL_REQ_COMPLETION, "{\"prompt\":\"a\",\"messages\":[]}", 400, "messages");
    /* tokenize / detokenize */
    FAILS(TL_REQ_TOKENIZE, "{}", 400, "content");
    FAILS(TL_REQ_TOKENIZE, "{\"content\":1}", 400, "content");
    FAILS(TL_REQ_TOKENIZE, "{\"content\":\"a\",\"add_special\":1}", 400, "add_special");
    FAILS(TL_REQ_DETOKENIZE, "{\"tokens\":\"1 2\"}", 400, "tokens");
    FAILS(TL_REQ_DETOKENIZE, "{\"tokens\":[1,1e3]}", 400, "tokens[1]");
    FAILS(TL_REQ_DETOKENIZE, "{\"tokens\":[1,2147483648]}", 400, "tokens[1]");

    /* the error document is OpenAI-shaped */
    FAILS(TL_REQ_CHAT, WITH("\"top_k\":\"x\""), 400, "top_k");
    char *js = tl_api_err_json(&E);
    json_t *doc = json_loads(js, 0, NULL);
    json_t *eo = json_object_get(doc, "error");
    CHECK(json_is_string(json_object_get(eo, "message")));
    CHECK_STREQ(json_string_value(json_object_get(eo, "type")), "invalid_request_error");
    CHECK_STREQ(json_string_value(json_object_get(eo, "param")), "top_k");
    CHECK(json_is_string(json_object_get(eo, "code")));
    json_decref(doc);
    free(js);
    return test_done();
}
