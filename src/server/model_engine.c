/* model_engine.c — the server's model table (model.h) over the real engine, tokenizer and chat
 * template. Until the tokenizer and the chat template renderer are in the library, opening a
 * real model says so plainly instead of serving something half-made. */
#include "server/model.h"

int tl_srv_engine_open(tl_srv_model **out, const tl_srv_engine_opts *o, tl_err *err) {
    *out = NULL;
    return tl_err_set(err, TL_EUNSUP,
                      "serving %s needs the tokenizer and chat template modules, which this build "
                      "does not have yet; `--model @mock` serves the built-in test model",
                      o->model ? o->model : "(none)");
}
