/* stats.c — generation statistics with mlx-lm's timing semantics and exact output lines
 * (contract in include/tallow/sample.h). */
#include "core/core.h"
#include "tallow/sample.h"

void tl_gen_stats_finish(tl_gen_stats *st) {
    double pre_s = st->t_first_ns > st->t_start_ns ? (st->t_first_ns - st->t_start_ns) / 1e9 : 0;
    double gen_s = st->t_last_ns > st->t_first_ns ? (st->t_last_ns - st->t_first_ns) / 1e9 : 0;
    int fed = st->prefill_tokens;
    st->reused_tokens = st->prompt_tokens - st->prefill_tokens;
    st->prompt_tps = pre_s > 0 ? fed / pre_s : 0;
    st->generation_tps = gen_s > 0 ? st->generation_tokens / gen_s : 0;
    st->ttft_ms = pre_s * 1e3;
    st->total_ms = st->t_last_ns > st->t_start_ns ? (st->t_last_ns - st->t_start_ns) / 1e6 : 0;
}

void tl_gen_stats_print_mlx(const tl_gen_stats *st, FILE *f, const char *prefix) {
    fprintf(f, "%sPrompt: %d tokens, %.3f tokens-per-sec\n", prefix, st->prompt_tokens,
            st->prompt_tps);
    fprintf(f, "%sGeneration: %d tokens, %.3f tokens-per-sec\n", prefix, st->generation_tokens,
            st->generation_tps);
    fprintf(f, "%sPeak memory: %.3f GB\n", prefix, (double)st->peak_memory_bytes / 1e9);
}

void tl_gen_stats_print(const tl_gen_stats *st, FILE *f) {
    tl_gen_stats_print_mlx(st, f, "");
    fprintf(f, "Time to first token: %.3f s\n", st->ttft_ms / 1e3);
}
