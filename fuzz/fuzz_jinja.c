/* fuzz_jinja.c — libFuzzer target: the Jinja interpreter on arbitrary template source. The input
 * is split at the first NUL byte: before it the template, after it (if any) the messages JSON;
 * without one, a fixed conversation with a tool call is used so that real template paths run.
 * Small limits keep every input fast; any failure must be an error with a message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "tallow.h"

static const char *k_messages =
    "[{\"role\":\"system\",\"content\":\"S\"},{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"U\"}]},"
    "{\"role\":\"assistant\",\"content\":\"<think>\\nr\\n</think>\\n\\nA\",\"tool_calls\":[{\"type\":\"function\","
    "\"function\":{\"name\":\"f\",\"arguments\":{\"a\":[1,2.5,null,true],\"b\":{\"c\":\"d\"}}}}]},"
    "{\"role\":\"tool\",\"content\":\"ok\"},{\"role\":\"user\",\"content\":\"again\"}]";
static const char *k_tools = "[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{}}}]";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *buf = malloc(size + 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    buf[size] = 0;
    size_t tlen = strlen(buf);
    const char *msgs = tlen < size ? buf + tlen + 1 : k_messages;
    tl_chat_opts o = {.add_generation_prompt = 1, .bos_token = "<s>", .eos_token = "</s>",
                      .max_depth = 32, .max_iterations = 20000, .max_output = 1 << 20,
                      .max_memory = 64 << 20, .now = 1772712000};
    char *out = NULL;
    size_t len = 0;
    tl_err err = {0};
    int rc = tl_chat_render(buf, msgs, k_tools, "{\"enable_thinking\": false}", &o, &out, &len, &err);
    if (rc == 0) TL_ALWAYS(out != NULL && strlen(out) <= len);
    else TL_ALWAYS(out == NULL && err.msg[0] != 0);
    free(out);
    free(buf);
    return 0;
}
