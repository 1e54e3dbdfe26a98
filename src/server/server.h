/* server.h — `tallow serve`: an OpenAI-compatible HTTP server over one model.
 *
 * tl_server_run starts listening at once (GET /health answers 503 while the model loads), loads
 * the model, serves until SIGINT/SIGTERM (or *stop becomes non-zero), then drains and returns. */
#ifndef TL_SERVER_SERVER_H
#define TL_SERVER_SERVER_H

#include <signal.h>
#include <stdint.h>

#include "core/core.h"
#include "server/model.h"

enum { TL_REASONING_CONTENT = 1, TL_REASONING_REASONING = 2, TL_REASONING_BOTH = 3 };

#define TL_SERVER_MAX_CORS 16

typedef struct tl_server_opts {
    const char *host;            /* default 127.0.0.1 */
    int port;                    /* default 8080; 0 = any free port (printed) */
    const char *model;           /* directory / HF repo id, or "@mock" */
    tl_srv_engine_opts engine;
    tl_mock_opts mock;
    int max_seqs;                /* sequences decoded together */
    int max_queue;               /* waiting requests before 429 */
    int prefill_chunk;
    size_t max_body;             /* bytes */
    int64_t mem_cap;             /* bytes, 0 = none */
    int64_t prefix_cache_bytes;
    const char *api_key;         /* NULL = no auth */
    const char *cors[TL_SERVER_MAX_CORS];
    int n_cors;
    int reasoning_field;         /* TL_REASONING_* */
    int keepalive_ms;            /* SSE comment while nothing else is sent (default 2000) */
    int timeout_s;               /* idle connection timeout (default 60) */
    volatile sig_atomic_t *stop; /* set to non-zero to stop */
} tl_server_opts;

void tl_server_opts_default(tl_server_opts *o);
int tl_server_run(const tl_server_opts *o, tl_err *err);

#endif
