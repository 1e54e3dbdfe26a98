/* fuzz_request.c — libFuzzer target for the server's request parser: any bytes, as the body of
 * each endpoint, must parse or fail with an OpenAI-shaped error naming a status; never crash. */
#include <stdint.h>
#include <stdlib.h>

#include "server/request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const tl_req_kind kinds[] = {TL_REQ_CHAT, TL_REQ_COMPLETION, TL_REQ_TOKENIZE,
                                        TL_REQ_DETOKENIZE};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        tl_request *r = NULL;
        tl_api_err e = {0};
        int rc = tl_request_parse(kinds[k], (const char *)data, size, 32000, &r, &e);
        if (rc == 0) {
            tl_request_free(r);
        } else {
            if (r || e.status < 400 || e.status > 599 || !e.message[0]) abort();
            free(tl_api_err_json(&e));
        }
    }
    return 0;
}
