/* cmd_bench.c — `tallow bench`: the comparison table in one command.
 *
 * For each model: load it (timed), build the prompt (the model's chat template over -p, or N
 * random tokens), run one warm-up, then REPS timed generations through the same loop as
 * `tallow generate` (tl_generate: mlx-lm's timing semantics), and report the median and range of
 * prompt tokens/s, time to first token, generation tokens/s, the counted peak memory, and the
 * bandwidth decode achieved (bytes of weights read per token × tokens/s) against the machine's
 * measured peak. llama-bench style fixed tests (--pp N --tg N) use random token prompts and
 * ignore eos, like llama-bench and mlx_lm.benchmark. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench/bench.h"
#include "cli/cli.h"
#include "core/core.h"
#include "engine/generate.h"
#include <jansson.h>

#define MAX_MODELS 16

typedef struct bench_opts {
    const char *models[MAX_MODELS];
    int n_models;
    const char *prompt;
    int prompt_tokens;   /* random-token prompt length (0 = use prompt text) */
    int gen_tokens;
    int reps;
    int warmup;
    tl_thinking thinking;
    tl_bench_format fmt;
    const char *plot;
    int pp, tg;          /* llama-bench style tests */
    int mlx_lines;
    int show_output;
    double peak_bw;
    int threads;
    tl_device device;
    int ctx;
    int ignore_eos;
    uint64_t seed;
} bench_opts;

static void bench_usage(FILE *f) {
    fprintf(f,
        "usage: tallow bench -m MODEL [-m MODEL ...] [options]\n\n"
        "Measures each model on this machine with the same workload and prints one table.\n\n"
        "  -m, --model M          a model directory or Hugging Face repo id (repeat to compare)\n"
        "  -p, --prompt TEXT      prompt, rendered with each model's chat template\n"
        "      --prompt-tokens N  instead: a prompt of N random tokens (default 128)\n"
        "  -n, --gen-tokens N     tokens to generate (default 64)\n"
        "  -r, --reps N           timed repetitions after one warm-up (default 3)\n"
        "      --no-warmup        skip the warm-up run\n"
        "      --thinking on|off  enable_thinking for the template (default: the template's)\n"
        "      --pp N --tg N      llama-bench style: prompt processing of N random tokens and\n"
        "                         generation of N tokens, eos ignored\n"
        "      --ignore-eos       never stop early (also implied by --prompt-tokens and --pp)\n"
        "      --format md|json|csv   output (default md; JSON schema in docs/BENCH.md)\n"
        "      --plot FILE.svg    draw prompt and generation tokens/s and peak memory\n"
        "      --mlx-lines        also print mlx-lm's three lines per model\n"
        "      --show-output      print each model's text for the prompt, one after another\n"
        "      --peak-bw GBS      the machine's peak read bandwidth (default: measured, cached)\n"
        "  -t, --threads N        CPU threads (default: all cores)\n"
        "      --device cpu|cuda|auto\n"
        "      --ctx N            context per sequence (default: prompt + generation)\n"
        "      --seed N           seed of the random prompts (default 0)\n");
}

/* 0: go on; 1: --help was printed; -1: a usage error (message printed). */
static int parse_args(int argc, char **argv, bench_opts *o) {
    enum { O_PT = 256, O_NOWARM, O_THINK, O_PP, O_TG, O_FMT, O_PLOT, O_MLX, O_SHOW, O_BW, O_DEV,
           O_CTX, O_SEED, O_IGN };
    static const struct option lo[] = {
        {"model", required_argument, 0, 'm'},     {"prompt", required_argument, 0, 'p'},
        {"prompt-tokens", required_argument, 0, O_PT}, {"gen-tokens", required_argument, 0, 'n'},
        {"reps", required_argument, 0, 'r'},      {"no-warmup", no_argument, 0, O_NOWARM},
        {"thinking", required_argument, 0, O_THINK}, {"pp", required_argument, 0, O_PP},
        {"tg", required_argument, 0, O_TG},       {"format", required_argument, 0, O_FMT},
        {"plot", required_argument, 0, O_PLOT},   {"mlx-lines", no_argument, 0, O_MLX},
        {"show-output", no_argument, 0, O_SHOW},  {"peak-bw", required_argument, 0, O_BW},
        {"threads", required_argument, 0, 't'},   {"device", required_argument, 0, O_DEV},
        {"ctx", required_argument, 0, O_CTX},     {"seed", required_argument, 0, O_SEED},
        {"ignore-eos", no_argument, 0, O_IGN},    {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    memset(o, 0, sizeof *o);
    o->gen_tokens = 64;
    o->reps = 3;
    o->warmup = 1;
    o->fmt = TL_BENCH_MD;
    long v;
    double d;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":m:p:n:r:t:h", lo, NULL)) != -1) {
        switch (c) {
        case 'm':
            if (!*optarg) {
                cli_error("bench: -m needs a model directory or org/name, got ''");
                return -1;
            }
            if (o->n_models == MAX_MODELS) {
                cli_error("bench: at most %d models", MAX_MODELS);
                return -1;
            }
            o->models[o->n_models++] = optarg;
            break;
        case 'p': o->prompt = optarg; break;
        case O_PT:
            if (cli_parse_int(optarg, "--prompt-tokens", 1, 1 << 20, &v)) return -1;
            o->prompt_tokens = (int)v;
            break;
        case 'n':
            if (cli_parse_int(optarg, "--gen-tokens", 1, 1 << 20, &v)) return -1;
            o->gen_tokens = (int)v;
            break;
        case 'r':
            if (cli_parse_int(optarg, "--reps", 1, 1000, &v)) return -1;
            o->reps = (int)v;
            break;
        case O_NOWARM: o->warmup = 0; break;
        case O_THINK:
            if (!strcmp(optarg, "on")) o->thinking = TL_THINKING_ON;
            else if (!strcmp(optarg, "off")) o->thinking = TL_THINKING_OFF;
            else {
                cli_error("--thinking expects on or off, got '%s'", optarg);
                return -1;
            }
            break;
        case O_PP:
            if (cli_parse_int(optarg, "--pp", 1, 1 << 20, &v)) return -1;
            o->pp = (int)v;
            break;
        case O_TG:
            if (cli_parse_int(optarg, "--tg", 1, 1 << 20, &v)) return -1;
            o->tg = (int)v;
            break;
        case O_FMT:
            if (!strcmp(optarg, "md")) o->fmt = TL_BENCH_MD;
            else if (!strcmp(optarg, "json")) o->fmt = TL_BENCH_JSON;
            else if (!strcmp(optarg, "csv")) o->fmt = TL_BENCH_CSV;
            else {
                cli_error("--format expects md, json or csv, got '%s'", optarg);
                return -1;
            }
            break;
        case O_PLOT: o->plot = optarg; break;
        case O_MLX: o->mlx_lines = 1; break;
        case O_SHOW: o->show_output = 1; break;
        case O_BW:
            if (cli_parse_float(optarg, "--peak-bw", 0.001, 1e6, &d)) return -1;
            o->peak_bw = d;
            break;
        case 't':
            if (cli_parse_int(optarg, "--threads", 1, 1024, &v)) return -1;
            o->threads = (int)v;
            break;
        case O_DEV:
            if ((v = cli_device_of(optarg)) < 0) {
                cli_error("--device expects cpu, cuda or auto, got '%s'", optarg);
                return -1;
            }
            o->device = (tl_device)v;
            break;
        case O_CTX:
            if (cli_parse_int(optarg, "--ctx", 16, 1 << 22, &v)) return -1;
            o->ctx = (int)v;
            break;
        case O_SEED:
            if (cli_parse_int(optarg, "--seed", 0, 0x7fffffffL, &v)) return -1;
            o->seed = (uint64_t)v;
            break;
        case O_IGN: o->ignore_eos = 1; break;
        case 'h': bench_usage(stdout); return 1;
        case ':': cli_error("bench: %s needs a value", argv[optind - 1]); return -1;
        default: cli_error("bench: unknown option '%s' (tallow bench --help)", argv[optind - 1]);
            return -1;
        }
    }
    if (optind < argc) {
        cli_error("bench: unexpected argument '%s'", argv[optind]);
        return -1;
    }
    if (o->n_models == 0) {
        cli_error("bench: no model given (-m DIR or -m org/name)");
        return -1;
    }
    if ((o->pp == 0) != (o->tg == 0)) {
        cli_error("bench: --pp and --tg go together (e.g. --pp 512 --tg 128)");
        return -1;
    }
    if (o->prompt && (o->prompt_tokens || o->pp)) {
        cli_error("bench: give either -p TEXT or --prompt-tokens/--pp, not both");
        return -1;
    }
    if (!o->prompt && !o->prompt_tokens && !o->pp) o->prompt_tokens = 128;
    if (o->prompt_tokens || o->pp) o->ignore_eos = 1;
    /* what can be known before any model is loaded is checked here, not after the run */
    int want = o->pp ? o->pp + o->tg : o->prompt_tokens ? o->prompt_tokens + o->gen_tokens : 0;
    if (o->ctx && want + 1 > o->ctx) {
        cli_error("bench: --ctx %d is too small for %d prompt + generated tokens (give at least "
                  "%d)", o->ctx, want, want + 1);
        return -1;
    }
    if (o->plot) {
        size_t pl = strlen(o->plot);
        if (pl < 4 || strcmp(o->plot + pl - 4, ".svg")) {
            cli_error("--plot: only .svg files are drawn (got '%s')", o->plot);
            return -1;
        }
    }
    return 0;
}

/* Last path component without a trailing slash, for table labels. */
static void model_label(const char *spec, char *out, size_t cap) {
    size_t n = strlen(spec);
    while (n > 1 && spec[n - 1] == '/') n--;
    size_t s = n;
    while (s > 0 && spec[s - 1] != '/') s--;
    snprintf(out, cap, "%.*s", (int)(n - s), spec + s);
}

/* Deterministic random ids in [lo, hi) (splitmix64), away from the special tokens. */
static void random_ids(int32_t *ids, int n, int lo, int hi, uint64_t seed) {
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (int i = 0; i < n; i++) ids[i] = lo + (int32_t)(tl_splitmix64(&x) % (uint64_t)(hi - lo));
}

/* Render -p through the model's chat template and tokenize it. */
static int build_text_prompt(const bench_opts *o, const tl_model_info *info, tl_tokenizer **tok,
                             int32_t **ids, int *n, tl_err *err) {
    int rc = tl_tok_load_dir(info->dir, tok, err);
    if (rc) return rc;
    const char *tpl = tl_tok_chat_template(*tok);
    char *text = NULL;
    size_t len = 0;
    if (tpl) {
        json_t *msgs = json_pack("[{s:s, s:s}]", "role", "user", "content", o->prompt);
        char *mj = json_dumps(msgs, JSON_COMPACT);
        json_decref(msgs);
        tl_chat_opts co = {0};
        co.add_generation_prompt = 1;
        co.thinking = o->thinking;
        co.bos_token = tl_tok_bos(*tok);
        co.eos_token = tl_tok_eos(*tok);
        rc = tl_chat_render(tpl, mj, NULL, NULL, &co, &text, &len, err);
        free(mj);
        if (rc) return rc;
    } else {
        text = strdup(o->prompt);
        len = strlen(text);
    }
    int32_t *v = NULL;
    size_t nv = 0;
    rc = tl_tok_encode(*tok, text, len, tpl ? 0 : TL_TOK_ADD_SPECIAL, &v, &nv, err);
    free(text);
    if (rc) return rc;
    if (nv == 0) {
        free(v);
        return tl_err_set(err, TL_EINVAL, "the prompt is empty after tokenization");
    }
    *ids = v;
    *n = (int)nv;
    return 0;
}

/* Bytes decode reads per token: every weight once, except that an untied embedding table is
 * only looked up (one row), plus the KV cache of the context. */
static double decode_bytes_per_token(const tl_model_info *info, int ctx_tokens) {
    double w = (double)info->weight_bytes;
    if (!info->tied_embeddings && info->n_params > 0) {
        double emb_params = (double)info->vocab_size * info->hidden_size;
        w -= w * emb_params / (double)info->n_params;
    }
    return w + (double)info->kv_bytes_per_token * ctx_tokens;
}

typedef struct run_out {
    tl_gen_stats st;
    char *text;
    int n_gen;
} run_out;

static int run_once(tl_engine *e, const int32_t *prompt, int n_prompt, int max_tokens,
                    int ignore_eos, const tl_tokenizer *tok, run_out *out, tl_err *err) {
    int slot = tl_slot_acquire(e, err);
    if (slot < 0) return slot;
    tl_mem_reset_peak();
    static const int32_t no_stop[1] = {-1};
    tl_gen_opts go = {0};
    go.max_tokens = max_tokens;
    if (ignore_eos) {
        go.stop_ids = no_stop;
        go.n_stop_ids = 1;
    }
    go.tok = tok;
    tl_gen_result res;
    memset(&res, 0, sizeof res);
    int rc = tl_generate(e, slot, prompt, n_prompt, 0, &go, &res, err);
    tl_slot_release(e, slot);
    if (rc) {
        tl_gen_result_free(&res);
        return rc;
    }
    out->st = res.stats;
    out->n_gen = res.n_ids;
    free(out->text);
    out->text = res.text;
    res.text = NULL;
    tl_gen_result_free(&res);
    return 0;
}

static void bench_model(const bench_opts *o, int idx, tl_bench_result *r, double peak_bw) {
    tl_err err = {0};
    const char *spec = o->models[idx];
    snprintf(r->model, sizeof r->model, "%s", spec);
    model_label(spec, r->label, sizeof r->label);
    r->peak_bw_gbs = peak_bw;

    int32_t *prompt = NULL;
    int n_prompt = 0;
    int n_gen = o->pp ? o->tg : o->gen_tokens;
    int want_prompt = o->pp ? o->pp : o->prompt_tokens;

    tl_engine_opts eo = {0};
    eo.model = spec;
    eo.device = o->device;
    eo.threads = o->threads;
    eo.max_slots = 1;
    /* The KV cache is sized for the context the workload uses, so peak memory is what this
     * workload needs (weights + KV + state + activations), not a default context's worth. A text
     * prompt's length is known only after loading: the engine's default context then (the
     * model's max_position_embeddings up to 4096; KV pages are allocated as they fill). */
    eo.ctx_len = o->ctx ? o->ctx : (want_prompt ? want_prompt + n_gen + 16 : 0);
    tl_engine *e = NULL;
    tl_tokenizer *tok = NULL;
    run_out ro = {0};
    uint64_t t0 = tl_now_ns();
    if (tl_engine_open(&e, &eo, &err)) goto fail;
    r->load_s = (double)(tl_now_ns() - t0) * 1e-9;
    const tl_model_info *info = tl_engine_info(e);
    r->synthetic = info->synthetic;
    snprintf(r->arch, sizeof r->arch, "%s", info->arch_name ? info->arch_name : "?");
    if (info->quant_bits)
        snprintf(r->quant, sizeof r->quant, "%d-bit g%d", info->quant_bits,
                 info->quant_group_size);
    else
        snprintf(r->quant, sizeof r->quant, "%s", info->weight_dtype ? info->weight_dtype : "?");
    r->n_params = info->n_params;
    r->weight_bytes = info->weight_bytes;
    r->threads = o->threads;
    snprintf(r->device, sizeof r->device, "%s",
             tl_engine_device(e) == TL_DEVICE_CUDA ? "cuda" : "cpu");
    /* --device auto that landed on a GPU: the measured peak is the host's, not the GPU's; no
     * share is reported unless --peak-bw gave the GPU's */
    if (tl_engine_device(e) == TL_DEVICE_CUDA && o->peak_bw <= 0) r->peak_bw_gbs = 0;

    if (o->prompt) {
        if (build_text_prompt(o, info, &tok, &prompt, &n_prompt, &err)) goto fail;
    } else {
        n_prompt = want_prompt;
        prompt = malloc((size_t)n_prompt * sizeof *prompt);
        if (!prompt) {
            tl_err_set(&err, TL_ENOMEM, "out of memory");
            goto fail;
        }
        int hi = info->vocab_size > 1000 ? info->vocab_size / 2 : info->vocab_size;
        random_ids(prompt, n_prompt, hi > 200 ? 100 : 0, hi, o->seed);
        if (o->show_output) tl_tok_load_dir(info->dir, &tok, &err); /* text only if it has one */
    }
    if (n_prompt + n_gen + 1 > tl_engine_ctx_len(e)) {
        tl_err_set(&err, TL_ELIMIT,
                   "prompt (%d) + generation (%d) tokens do not fit the context of %d (use --ctx)",
                   n_prompt, n_gen, tl_engine_ctx_len(e));
        goto fail;
    }
    if (o->warmup) {
        int wn = n_gen < 4 ? n_gen : 4;
        if (run_once(e, prompt, n_prompt, wn, o->ignore_eos, tok, &ro, &err)) goto fail;
    }
    double pp[1000], tg[1000], tt[1000], bw[1000];
    int gen_counts[1000];
    int64_t peak = 0;
    for (int i = 0; i < o->reps; i++) {
        if (o->pp) {
            /* llama-bench: pp = prefill of N tokens alone; tg = N tokens after a 1-token prompt */
            if (run_once(e, prompt, n_prompt, 1, 1, tok, &ro, &err)) goto fail;
            pp[i] = ro.st.prompt_tps;
            tt[i] = ro.st.ttft_ms;
            if (ro.st.peak_memory_bytes > peak) peak = ro.st.peak_memory_bytes;
            if (run_once(e, prompt, 1, n_gen, 1, tok, &ro, &err)) goto fail;
        } else {
            if (run_once(e, prompt, n_prompt, n_gen, o->ignore_eos, tok, &ro, &err)) goto fail;
            pp[i] = ro.st.prompt_tps;
            tt[i] = ro.st.ttft_ms;
        }
        tg[i] = ro.st.generation_tps;
        gen_counts[i] = ro.st.generation_tokens;
        int ctx_mid = (o->pp ? 1 : n_prompt) + ro.st.generation_tokens / 2;
        bw[i] = tg[i] * decode_bytes_per_token(info, ctx_mid) * 1e-9;
        if (ro.st.peak_memory_bytes > peak) peak = ro.st.peak_memory_bytes;
        if (o->mlx_lines && !o->pp) {
            char prefix[160];
            snprintf(prefix, sizeof prefix, "[%s] ", r->label);
            tl_gen_stats_print_mlx(&ro.st, stdout, prefix);
        }
    }
    r->prompt_tokens = n_prompt;
    double gc[1000];
    for (int i = 0; i < o->reps; i++) gc[i] = gen_counts[i];
    r->gen_tokens = (int)tl_stat_of(gc, o->reps).median;
    r->prompt_tps = tl_stat_of(pp, o->reps);
    r->gen_tps = tl_stat_of(tg, o->reps);
    r->ttft_ms = tl_stat_of(tt, o->reps);
    r->decode_gbs = tl_stat_of(bw, o->reps);
    r->peak_mem_bytes = peak;
    if (o->show_output && ro.text) r->output = strdup(ro.text);
    free(ro.text);
    free(prompt);
    tl_tok_free(tok);
    tl_engine_close(e);
    return;
fail:
    snprintf(r->error, sizeof r->error, "%s", err.msg[0] ? err.msg : "failed");
    free(ro.text);
    free(prompt);
    tl_tok_free(tok);
    tl_engine_close(e);
}

int cmd_bench(int argc, char **argv) {
    bench_opts o;
    int prc = parse_args(argc, argv, &o);
    if (prc) return prc == 1 ? 0 : 2;
    char cpu[256] = "";
    double peak_bw = o.peak_bw;
    int threads = o.threads > 0 ? o.threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads < 1) threads = 1;
    if (peak_bw <= 0 && o.device != TL_DEVICE_CUDA) {
        fprintf(stderr, "bench: machine peak read bandwidth with %d thread%s: ", threads,
                threads > 1 ? "s" : "");
        fflush(stderr);
        peak_bw = tl_membw_cpu_peak(threads, 0, cpu, sizeof cpu);
        fprintf(stderr, "%.1f GB/s\n", peak_bw);
    } else {
        tl_membw_cpu_name(cpu, sizeof cpu); /* the name only: a given peak needs no measuring */
    }
    tl_bench_result *res = calloc((size_t)o.n_models, sizeof *res);
    if (!res) return 1;
    int failed = 0;
    for (int i = 0; i < o.n_models; i++) {
        fprintf(stderr, "bench: %s ...\n", o.models[i]);
        bench_model(&o, i, &res[i], peak_bw);
        res[i].threads = threads;
        if (res[i].error[0]) {
            failed++;
            fprintf(stderr, "bench: %s: %s\n", o.models[i], res[i].error);
        }
    }
    char machine[512], workload[256];
    snprintf(machine, sizeof machine, "%s, %d thread%s, peak read %.1f GB/s", cpu, threads,
             threads > 1 ? "s" : "", peak_bw);
    if (o.pp)
        snprintf(workload, sizeof workload, "llama-bench style: pp%d, tg%d (random tokens, eos "
                 "ignored), %d reps after %s warm-up", o.pp, o.tg, o.reps,
                 o.warmup ? "a" : "no");
    else if (o.prompt)
        snprintf(workload, sizeof workload, "chat prompt \"%.60s%s\", up to %d generated tokens, "
                 "%d reps after %s warm-up; median (min–max)", o.prompt,
                 strlen(o.prompt) > 60 ? "..." : "", o.gen_tokens, o.reps,
                 o.warmup ? "a" : "no");
    else
        snprintf(workload, sizeof workload, "%d random prompt tokens, %d generated (eos "
                 "ignored), %d reps after %s warm-up; median (min–max)", o.prompt_tokens,
                 o.gen_tokens, o.reps, o.warmup ? "a" : "no");
    tl_bench_write(stdout, o.fmt, res, o.n_models, machine, workload);
    if (o.show_output && o.fmt == TL_BENCH_MD) {
        for (int i = 0; i < o.n_models; i++) {
            if (!res[i].output) continue;
            printf("\n---- %s%s ----\n%s\n", res[i].label, res[i].synthetic ? " (synthetic)" : "",
                   res[i].output);
        }
    }
    int rc = failed == o.n_models ? 1 : 0;
    if (o.plot) {
        tl_err err = {0};
        if (tl_bench_plot_svg(o.plot, res, o.n_models, machine, &err)) {
            cli_error("%s", err.msg);
            rc = 1;
        } else {
            fprintf(stderr, "bench: plot written to %s\n", o.plot);
        }
    }
    for (int i = 0; i < o.n_models; i++) free(res[i].output);
    free(res);
    return rc;
}
