/* stats.c — the arithmetic of bench and generate figures (mlx-lm's timing semantics). */
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"

double tl_gen_prompt_tps(const tl_gen_times *t) {
    if (t->t_first_ns <= t->t_start_ns || t->prompt_tokens <= 0) return 0.0;
    return t->prompt_tokens / ((double)(t->t_first_ns - t->t_start_ns) * 1e-9);
}

double tl_gen_gen_tps(const tl_gen_times *t) {
    /* mlx-lm's stream_generate: generation_tps = (n + 1) / (now - time of the first token),
     * i.e. all generated tokens (the first and an ending eos included) over the time after the
     * first one. We keep its convention so our figures compare with its figures. With a single
     * token there is no interval: 0. */
    if (t->gen_tokens <= 1 || t->t_end_ns <= t->t_first_ns) return 0.0;
    return t->gen_tokens / ((double)(t->t_end_ns - t->t_first_ns) * 1e-9);
}

double tl_gen_ttft_ms(const tl_gen_times *t) {
    if (t->t_first_ns < t->t_start_ns) return 0.0;
    return (double)(t->t_first_ns - t->t_start_ns) * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

tl_stat tl_stat_of(const double *v, int n) {
    tl_stat s = {0, 0, 0, n};
    if (n <= 0) return s;
    double *c = malloc((size_t)n * sizeof *c);
    if (!c) return s;
    memcpy(c, v, (size_t)n * sizeof *c);
    qsort(c, (size_t)n, sizeof *c, cmp_double);
    s.min = c[0];
    s.max = c[n - 1];
    s.median = (n & 1) ? c[n / 2] : 0.5 * (c[n / 2 - 1] + c[n / 2]);
    free(c);
    return s;
}
