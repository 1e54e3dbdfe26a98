/* test_chat_parse.c — reading model output back: reasoning split (prompt opened <think> or
 * not, unterminated), Qwen3.5 XML tool calls (nested JSON values, several calls, text around
 * them), Llama 3 JSON tool calls, Hermes JSON inside <tool_call>, and malformed calls that must
 * stay in the content without an error. */
#include <jansson.h>

#include "tallow.h"
#include "test.h"

static void split(const char *text, int opened, const char *want_r, const char *want_c) {
    char *r = NULL, *c = NULL;
    tl_err err = {0};
    int rc = tl_chat_split_reasoning(text, opened, &r, &c, &err);
    CHECK(rc == 0);
    if (want_r) CHECKF(r && !strcmp(r, want_r), "reasoning of [%s]: got [%s] want [%s]", text, r ? r : "(null)", want_r);
    else CHECKF(r == NULL, "reasoning of [%s]: expected none, got [%s]", text, r);
    CHECKF(c && !strcmp(c, want_c), "content of [%s]: got [%s] want [%s]", text, c ? c : "(null)", want_c);
    free(r);
    free(c);
}

/* parse and compare the calls (as compact JSON) and the remaining content */
static void tools(const char *text, tl_tool_format f, const char *want_calls, const char *want_content) {
    char *c = NULL, *calls = NULL;
    tl_err err = {0};
    int rc = tl_chat_parse_tool_calls(text, f, &c, &calls, &err);
    CHECK(rc == 0);
    if (want_calls) CHECKF(calls && !strcmp(calls, want_calls), "calls of [%s]:\n  got  %s\n  want %s", text, calls ? calls : "(null)", want_calls);
    else CHECKF(calls == NULL, "calls of [%s]: expected none, got %s", text, calls);
    CHECKF(c && !strcmp(c, want_content), "content of [%s]: got [%s] want [%s]", text, c ? c : "(null)", want_content);
    free(c);
    free(calls);
}

int main(void) {
    /* prompt ends with "<think>\n" (Qwen3.5-4B default): output starts as reasoning */
    CHECK(tl_chat_prompt_opens_think("<|im_start|>assistant\n<think>\n") == 1);
    CHECK(tl_chat_prompt_opens_think("<|im_start|>assistant\n<think>\n\n</think>\n\n") == 0);
    CHECK(tl_chat_prompt_opens_think("<|im_start|>assistant\n") == 0);
    CHECK(tl_chat_prompt_opens_think("old <think>x</think> new <think>\n") == 1);
    split("Let me think.\nParis.\n</think>\n\nThe capital is Paris.", 1, "Let me think.\nParis.", "The capital is Paris.");
    split("still going and cut off", 1, "still going and cut off", "");
    split("<think>\nhmm\n</think>\n\nAnswer.", 0, "hmm", "Answer.");
    split("  <think>x</think>y", 0, "x", "y");
    split("Plain answer with no think block.", 0, NULL, "Plain answer with no think block.");
    split("Answer mentions </think> later", 0, NULL, "Answer mentions </think> later");
    split("\n\n</think>\n\nAfter empty reasoning", 1, "", "After empty reasoning");
    split("", 0, NULL, "");

    /* Qwen3.5 XML form */
    tools("<tool_call>\n<function=get_weather>\n<parameter=city>\nZürich\n</parameter>\n<parameter=unit>\ncelsius\n</parameter>\n</function>\n</tool_call>",
          TL_TOOLS_AUTO,
          "[{\"id\":\"call_0\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Zürich\\\",\\\"unit\\\":\\\"celsius\\\"}\"}}]",
          "");
    tools("I'll check both.\n\n<tool_call>\n<function=search>\n<parameter=query>\nllama.cpp\n</parameter>\n<parameter=filters>\n{\"site\": \"github.com\", \"max_results\": 3}\n</parameter>\n<parameter=tags>\n[\"c\", \"llm\"]\n</parameter>\n</function>\n</tool_call>\n<tool_call>\n<function=get_weather>\n<parameter=city>\nmulti\nline\n</parameter>\n</function>\n</tool_call>",
          TL_TOOLS_QWEN_XML,
          "[{\"id\":\"call_0\",\"type\":\"function\",\"function\":{\"name\":\"search\",\"arguments\":\"{\\\"query\\\":\\\"llama.cpp\\\",\\\"filters\\\":{\\\"site\\\":\\\"github.com\\\",\\\"max_results\\\":3},\\\"tags\\\":[\\\"c\\\",\\\"llm\\\"]}\"}},"
          "{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"multi\\\\nline\\\"}\"}}]",
          "I'll check both.");
    /* a function with no parameters */
    tools("<tool_call>\n<function=now>\n</function>\n</tool_call>", TL_TOOLS_AUTO,
          "[{\"id\":\"call_0\",\"type\":\"function\",\"function\":{\"name\":\"now\",\"arguments\":\"{}\"}}]", "");
    /* malformed: no </function> -> left in the content, no calls */
    tools("<tool_call>\n<function=broken>\n<parameter=x>\n1\n", TL_TOOLS_AUTO, NULL,
          "<tool_call>\n<function=broken>\n<parameter=x>\n1\n");
    tools("<tool_call>garbage</tool_call> text", TL_TOOLS_AUTO, NULL, "<tool_call>garbage</tool_call> text");
    /* Hermes / Qwen3: JSON inside <tool_call> */
    tools("<tool_call>\n{\"name\": \"f\", \"arguments\": {\"a\": [1, {\"b\": null}]}}\n</tool_call>", TL_TOOLS_AUTO,
          "[{\"id\":\"call_0\",\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\":[1,{\\\"b\\\":null}]}\"}}]", "");
    /* Llama 3 JSON form */
    tools("{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\", \"days\": 3}}", TL_TOOLS_AUTO,
          "[{\"id\":\"call_0\",\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Paris\\\",\\\"days\\\":3}\"}}]", "");
    tools("<|python_tag|>{\"name\": \"a\", \"parameters\": {}}; {\"name\": \"b\", \"parameters\": {\"x\": 1}}", TL_TOOLS_JSON,
          "[{\"id\":\"call_0\",\"type\":\"function\",\"function\":{\"name\":\"a\",\"arguments\":\"{}\"}},"
          "{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"b\",\"arguments\":\"{\\\"x\\\":1}\"}}]", "");
    /* JSON that is not a call stays content */
    tools("{\"answer\": 42}", TL_TOOLS_AUTO, NULL, "{\"answer\": 42}");
    tools("{\"name\": \"f\", \"parameters\": {} trailing", TL_TOOLS_AUTO, NULL, "{\"name\": \"f\", \"parameters\": {} trailing");
    tools("Just prose.", TL_TOOLS_AUTO, NULL, "Just prose.");
    /* the XML form is not looked for when the JSON form is asked for */
    tools("<tool_call>\n<function=f>\n</function>\n</tool_call>", TL_TOOLS_JSON, NULL,
          "<tool_call>\n<function=f>\n</function>\n</tool_call>");
    return test_done();
}
