/* fuzz_config.c — libFuzzer target: tl_config_parse on arbitrary text. The input is split at the
 * first NUL byte: before it config.json, after it (if any) generation_config.json. */
#include <stdint.h>
#include <string.h>

#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *text = (const char *)data;
    const char *nul = memchr(data, 0, size);
    size_t len = nul ? (size_t)(nul - text) : size;
    const char *gen = nul ? nul + 1 : NULL;
    size_t glen = nul ? size - len - 1 : 0;
    tl_config cfg;
    tl_err err = {0};
    if (tl_config_parse(&cfg, "config.json", text, len, gen, glen, &err) == 0) {
        TL_ALWAYS(cfg.n_layers > 0 && cfg.layer_is_full != NULL);
        TL_ALWAYS(cfg.n_eos >= 0 && cfg.n_eos <= 8);
        for (int i = 0; i < cfg.n_quant_overrides; i++)
            (void)tl_config_quant_for(&cfg, cfg.quant_override_names[i]);
        tl_config_free(&cfg);
    } else {
        TL_ALWAYS(err.msg[0] != 0);
    }
    return 0;
}
