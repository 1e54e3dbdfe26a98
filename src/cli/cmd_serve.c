/* cmd_serve.c — `tallow serve`: flags -> tl_server_opts, signals -> stop, then tl_server_run. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "server/server.h"

static volatile sig_atomic_t g_stop; /* set by SIGINT/SIGTERM: the one thing a handler may touch */

static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

static void serve_usage(FILE *f) {
    fprintf(f,
            "usage: tallow serve --model M [flags]\n\n"
            "An OpenAI-compatible HTTP server with continuous batching.\n"
            "Endpoints: POST /v1/chat/completions, POST /v1/completions (also without /v1),\n"
            "GET /v1/models, GET /health (503 while loading), GET /metrics (Prometheus),\n"
            "POST /tokenize, POST /detokenize.\n\n"
            "  --model M             model directory or Hugging Face repo id; @mock = built-in\n"
            "                        deterministic test model (no weights)\n"
            "  --host ADDR           IPv4 address to listen on (default 127.0.0.1)\n"
            "  --port N              port (default 8080; 0 = any free port)\n"
            "  --threads N           CPU threads (default: all cores)\n"
            "  --device cpu|cuda|auto\n"
            "  --ctx N               tokens per sequence (default: model max, at most 4096)\n"
            "  --max-seqs N          sequences decoded together in one batch (default 8)\n"
            "  --max-queue N         requests waiting for a slot before 429 (default 64)\n"
            "  --prefill-chunk N     prompt tokens one sequence reads per step (default 256)\n"
            "  --api-key KEY         require Authorization: Bearer KEY (not for /health)\n"
            "  --cors ORIGIN         allow this browser origin (repeatable; * = any)\n"
            "  --max-body BYTES      largest request body (default 8 MiB)\n"
            "  --mem-cap BYTES       refuse new requests (503) past this counted memory\n"
            "  --prefix-cache-bytes BYTES  prefix cache cap (default 256 MiB)\n"
            "  --reasoning-field reasoning_content|reasoning|both\n"
            "                        where the model's thinking goes (default reasoning_content)\n"
            "  --keepalive-ms N      SSE keepalive comment interval while prefilling (2000)\n"
            "  --mock-forward-us N   @mock: cost of one forward pass (default 2000)\n"
            "  --mock-load-ms N      @mock: time it takes to load (default 0)\n\n"
            "Thinking: the chat template's default applies (Qwen3.5-4B thinks, Qwen3.5-2B does\n"
            "not); per request, reasoning_effort \"none\" or chat_template_kwargs\n"
            "{\"enable_thinking\": false} turns it off. Thinking goes to reasoning_content.\n");
}

static int parse_bytes(const char *s, const char *flag, int64_t *out) {
    char *end;
    double v = s ? strtod(s, &end) : 0;
    if (!s || end == s || v < 0) {
        cli_error("%s expects a size like 512M or 8G, got '%s'", flag, s ? s : "");
        return -1;
    }
    double mul = 1;
    if (*end == 'K' || *end == 'k') mul = 1024, end++;
    else if (*end == 'M' || *end == 'm') mul = 1024.0 * 1024, end++;
    else if (*end == 'G' || *end == 'g') mul = 1024.0 * 1024 * 1024, end++;
    if (*end == 'B' || *end == 'i') end++;
    if (*end || v * mul > 9e18) {
        cli_error("%s expects a size like 512M or 8G, got '%s'", flag, s);
        return -1;
    }
    *out = (int64_t)(v * mul);
    return 0;
}

int cmd_serve(int argc, char **argv) {
    tl_server_opts o;
    tl_server_opts_default(&o);
    long v;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        int64_t b;
#define INTFLAG(name, lo, hi, dst)                                                                 \
    if (!strcmp(a, name)) {                                                                        \
        if (cli_parse_int(val, name, lo, hi, &v)) return 2;                                        \
        dst = (int)v;                                                                              \
        i++;                                                                                       \
        continue;                                                                                  \
    }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            serve_usage(stdout);
            return 0;
        }
        INTFLAG("--port", 0, 65535, o.port)
        INTFLAG("--threads", 0, 1024, o.engine.threads)
        INTFLAG("--ctx", 8, 1 << 20, o.engine.ctx_len)
        INTFLAG("--max-seqs", 1, 1024, o.max_seqs)
        INTFLAG("--max-queue", 0, 1 << 20, o.max_queue)
        INTFLAG("--prefill-chunk", 1, 1 << 16, o.prefill_chunk)
        INTFLAG("--keepalive-ms", 10, 600000, o.keepalive_ms)
        INTFLAG("--mock-forward-us", 0, 10000000, o.mock.forward_us)
        INTFLAG("--mock-load-ms", 0, 600000, o.mock.load_ms)
        INTFLAG("--timeout", 1, 86400, o.timeout_s)
        if (!val && a[0] == '-') {
            cli_error("%s needs a value (tallow serve --help)", a);
            return 2;
        }
        if (!strcmp(a, "--model")) o.model = val;
        else if (!strcmp(a, "--host")) o.host = val;
        else if (!strcmp(a, "--api-key")) o.api_key = val;
        else if (!strcmp(a, "--device")) {
            if ((o.engine.device = cli_device_of(val)) < 0) {
                cli_error("--device must be cpu, cuda or auto, got '%s'", val);
                return 2;
            }
        } else if (!strcmp(a, "--cors")) {
            if (o.n_cors == TL_SERVER_MAX_CORS) {
                cli_error("--cors: at most %d origins", TL_SERVER_MAX_CORS);
                return 2;
            }
            o.cors[o.n_cors++] = val;
        } else if (!strcmp(a, "--max-body")) {
            if (parse_bytes(val, a, &b)) return 2;
            o.max_body = (size_t)b;
        } else if (!strcmp(a, "--mem-cap")) {
            if (parse_bytes(val, a, &b)) return 2;
            o.mem_cap = b;
        } else if (!strcmp(a, "--prefix-cache-bytes")) {
            if (parse_bytes(val, a, &b)) return 2;
            o.prefix_cache_bytes = b;
        } else if (!strcmp(a, "--reasoning-field")) {
            if (!strcmp(val, "reasoning_content")) o.reasoning_field = TL_REASONING_CONTENT;
            else if (!strcmp(val, "reasoning")) o.reasoning_field = TL_REASONING_REASONING;
            else if (!strcmp(val, "both")) o.reasoning_field = TL_REASONING_BOTH;
            else {
                cli_error("--reasoning-field must be reasoning_content, reasoning or both");
                return 2;
            }
        } else {
            cli_error("unknown flag '%s' (tallow serve --help)", a);
            return 2;
        }
        i++;
#undef INTFLAG
    }
    if (!o.model) {
        cli_error("serve needs --model (a model directory, a Hugging Face repo id, or @mock)");
        return 2;
    }
    o.engine.model = o.model;
    o.engine.max_slots = o.max_seqs;
    if (o.engine.ctx_len) o.mock.ctx_len = o.engine.ctx_len;
    if (o.max_seqs > o.mock.max_slots) o.mock.max_slots = o.max_seqs;
    o.stop = &g_stop;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    tl_err err = {0};
    if (tl_server_run(&o, &err) < 0) {
        cli_error("%s", err.msg);
        return 1;
    }
    return 0;
}
