/* report.c — bench results as a markdown table, JSON (schema: docs/BENCH.md) or CSV. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "bench/bench.h"

static void fmt_range(char *buf, size_t cap, tl_stat s, const char *fmt1) {
    char a[32], b[32], c[32];
    snprintf(a, sizeof a, fmt1, s.median);
    if (s.n > 1) {
        snprintf(b, sizeof b, fmt1, s.min);
        snprintf(c, sizeof c, fmt1, s.max);
        snprintf(buf, cap, "%s (%s–%s)", a, b, c);
    } else {
        snprintf(buf, cap, "%s", a);
    }
}

static void write_md(FILE *f, const tl_bench_result *r, int n, const char *machine,
                     const char *workload) {
    if (machine && *machine) fprintf(f, "Machine: %s\n", machine);
    if (workload && *workload) fprintf(f, "Workload: %s\n\n", workload);
    fprintf(f, "| model | quant | load s | prompt tok | prompt tok/s | TTFT ms | gen tok | "
               "gen tok/s | peak mem GB | decode GB/s (of peak) |\n");
    fprintf(f, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for (int i = 0; i < n; i++) {
        const tl_bench_result *x = &r[i];
        if (x->error[0]) {
            fprintf(f, "| %s%s | error: %s |||||||||\n", x->label,
                    x->synthetic ? " (synthetic)" : "", x->error);
            continue;
        }
        char pp[64], tg[64], tt[64], bw[96];
        fmt_range(pp, sizeof pp, x->prompt_tps, "%.1f");
        fmt_range(tg, sizeof tg, x->gen_tps, "%.1f");
        fmt_range(tt, sizeof tt, x->ttft_ms, "%.0f");
        if (x->peak_bw_gbs > 0)
            snprintf(bw, sizeof bw, "%.1f (%.0f%% of %.1f)", x->decode_gbs.median,
                     100.0 * x->decode_gbs.median / x->peak_bw_gbs, x->peak_bw_gbs);
        else
            snprintf(bw, sizeof bw, "%.1f", x->decode_gbs.median);
        fprintf(f, "| %s%s | %s | %.2f | %d | %s | %s | %d | %s | %.3f | %s |\n", x->label,
                x->synthetic ? " (synthetic)" : "", x->quant, x->load_s, x->prompt_tokens, pp, tt,
                x->gen_tokens, tg, (double)x->peak_mem_bytes / 1e9, bw);
    }
}

static json_t *stat_json(tl_stat s) {
    return json_pack("{s:f, s:f, s:f, s:i}", "median", s.median, "min", s.min, "max", s.max,
                     "n", s.n);
}

static void write_json(FILE *f, const tl_bench_result *r, int n, const char *machine,
                       const char *workload) {
    json_t *root = json_object();
    json_object_set_new(root, "schema", json_string("tallow-bench/1"));
    json_object_set_new(root, "machine", json_string(machine ? machine : ""));
    json_object_set_new(root, "workload", json_string(workload ? workload : ""));
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        const tl_bench_result *x = &r[i];
        json_t *o = json_object();
        json_object_set_new(o, "model", json_string(x->model));
        json_object_set_new(o, "label", json_string(x->label));
        json_object_set_new(o, "synthetic", json_boolean(x->synthetic));
        if (x->error[0]) {
            json_object_set_new(o, "error", json_string(x->error));
            json_array_append_new(arr, o);
            continue;
        }
        json_object_set_new(o, "arch", json_string(x->arch));
        json_object_set_new(o, "quant", json_string(x->quant));
        json_object_set_new(o, "n_params", json_integer(x->n_params));
        json_object_set_new(o, "weight_bytes", json_integer(x->weight_bytes));
        json_object_set_new(o, "device", json_string(x->device));
        json_object_set_new(o, "threads", json_integer(x->threads));
        json_object_set_new(o, "load_s", json_real(x->load_s));
        json_object_set_new(o, "prompt_tokens", json_integer(x->prompt_tokens));
        json_object_set_new(o, "generation_tokens", json_integer(x->gen_tokens));
        json_object_set_new(o, "prompt_tps", stat_json(x->prompt_tps));
        json_object_set_new(o, "generation_tps", stat_json(x->gen_tps));
        json_object_set_new(o, "ttft_ms", stat_json(x->ttft_ms));
        json_object_set_new(o, "decode_gbs", stat_json(x->decode_gbs));
        json_object_set_new(o, "peak_bandwidth_gbs", json_real(x->peak_bw_gbs));
        json_object_set_new(o, "peak_memory_bytes", json_integer(x->peak_mem_bytes));
        if (x->output) json_object_set_new(o, "output", json_string(x->output));
        json_array_append_new(arr, o);
    }
    json_object_set_new(root, "results", arr);
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII);
    if (s) {
        fprintf(f, "%s\n", s);
        free(s);
    }
    json_decref(root);
}

static void csv_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"') fputc('"', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static void write_csv(FILE *f, const tl_bench_result *r, int n) {
    fprintf(f, "model,label,synthetic,quant,device,threads,load_s,prompt_tokens,"
               "prompt_tps_median,prompt_tps_min,prompt_tps_max,ttft_ms_median,"
               "generation_tokens,generation_tps_median,generation_tps_min,generation_tps_max,"
               "peak_memory_bytes,decode_gbs,peak_bandwidth_gbs,error\n");
    for (int i = 0; i < n; i++) {
        const tl_bench_result *x = &r[i];
        csv_str(f, x->model);
        fputc(',', f);
        csv_str(f, x->label);
        fprintf(f, ",%d,", x->synthetic);
        csv_str(f, x->quant);
        fputc(',', f);
        csv_str(f, x->device);
        fprintf(f, ",%d,%.4f,%d,%.3f,%.3f,%.3f,%.2f,%d,%.3f,%.3f,%.3f,%lld,%.3f,%.3f,", x->threads,
                x->load_s, x->prompt_tokens, x->prompt_tps.median, x->prompt_tps.min,
                x->prompt_tps.max, x->ttft_ms.median, x->gen_tokens, x->gen_tps.median,
                x->gen_tps.min, x->gen_tps.max, (long long)x->peak_mem_bytes,
                x->decode_gbs.median, x->peak_bw_gbs);
        csv_str(f, x->error);
        fputc('\n', f);
    }
}

void tl_bench_write(FILE *f, tl_bench_format fmt, const tl_bench_result *r, int n,
                    const char *machine, const char *workload) {
    switch (fmt) {
    case TL_BENCH_JSON: write_json(f, r, n, machine, workload); break;
    case TL_BENCH_CSV: write_csv(f, r, n); break;
    default: write_md(f, r, n, machine, workload); break;
    }
}
