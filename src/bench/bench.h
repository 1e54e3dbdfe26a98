/* bench.h — what `tallow bench` measures and how it reports it.
 *
 * A run of one model gives samples (one per repetition, after a warm-up); a result holds the
 * median and the min–max of each figure over the samples. Each sample's figures come from the
 * generation loop's statistics (tl_gen_stats, mlx-lm's timing semantics: tallow/sample.h).
 * The arithmetic lives apart from the timing so that tests can check it with fixed numbers. */
#ifndef TL_BENCH_H
#define TL_BENCH_H

#include <stdint.h>
#include <stdio.h>

#include "core/core.h"

/* One figure over repetitions. */
typedef struct tl_stat {
    double median, min, max;
    int n;
} tl_stat;
tl_stat tl_stat_of(const double *v, int n);

typedef struct tl_bench_result {
    char model[512];           /* as given on the command line */
    char label[128];           /* short name for tables and plots */
    int synthetic;
    char arch[32];
    char quant[32];            /* "4-bit g64", "bf16", ... */
    int64_t n_params;
    int64_t weight_bytes;
    char device[16];
    int threads;
    double load_s;
    int prompt_tokens;
    int gen_tokens;            /* per repetition (median) */
    tl_stat prompt_tps, gen_tps, ttft_ms, decode_gbs;
    int64_t peak_mem_bytes;    /* max over repetitions */
    double peak_bw_gbs;        /* the machine's measured (or given) peak, for the share */
    char *output;              /* text of the last repetition (for --show-output), malloc'd */
    char error[512];           /* non-empty when this model failed */
} tl_bench_result;

typedef enum { TL_BENCH_MD = 0, TL_BENCH_JSON, TL_BENCH_CSV } tl_bench_format;

/* Write results as a markdown table / JSON document (schema in docs/BENCH.md) / CSV. */
void tl_bench_write(FILE *f, tl_bench_format fmt, const tl_bench_result *r, int n,
                    const char *machine, const char *workload);
/* Grouped bars of prompt and generation tokens/s and peak memory per model, as SVG. */
int tl_bench_plot_svg(const char *path, const tl_bench_result *r, int n, const char *title,
                      tl_err *err);

/* ---- memory bandwidth ---- */
/* Peak read bandwidth of this machine in GB/s (decimal) with `threads` threads: measured by
 * streaming a large buffer, best of several passes; cached under ~/.cache/tallow/ keyed by the
 * CPU model and thread count. force = measure again. */
double tl_membw_cpu_peak(int threads, int force, char *cpu_name, size_t cap);
/* The CPU's model name (/proc/cpuinfo), or "unknown CPU". */
void tl_membw_cpu_name(char *out, size_t cap);
/* Measure only (no cache). bytes = buffer size. */
double tl_membw_measure(int threads, size_t bytes, int passes);

#endif
