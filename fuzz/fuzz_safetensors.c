/* fuzz_safetensors.c — libFuzzer target: tl_st_parse on arbitrary bytes must return an error or a
 * consistent set (every tensor's data inside the buffer, lookups agree), never crash. */
#include <stdint.h>
#include <string.h>

#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    tl_st_set *s = tl_st_new();
    if (!s) return 0;
    tl_err err = {0};
    if (tl_st_parse(s, "fuzz.safetensors", data, size, &err) == 0) {
        for (int i = 0; i < tl_st_count(s); i++) {
            const tl_tensor *t = tl_st_at(s, i);
            const uint8_t *p = t->data;
            TL_ALWAYS(p >= data && p + t->nbytes <= data + size);
            TL_ALWAYS(tl_st_get(s, t->name) == t);
            volatile uint8_t sink = t->nbytes ? p[t->nbytes - 1] : 0;
            (void)sink;
        }
    } else {
        TL_ALWAYS(tl_st_count(s) == 0 && err.msg[0]);
    }
    tl_st_free(s);
    return 0;
}
