/* test_bench_count.c — the figures generate, chat and bench print are counted right, checked on a
 * tiny Llama with a fake clock (every reading advances it by exactly 1 ms, so every interval is a
 * whole number of ms and each rate can be checked exactly against its definition):
 * - prompt tokens = tokens prefilled; prompt tok/s = prompt tokens / (start .. first token),
 *   which includes the first decode step (mlx-lm);
 * - generation tokens include the stop id that ended the run (mlx-lm's rule);
 *   generation tok/s = generated tokens / (first token .. last token);
 * - time to first token = start .. first token;
 * - peak memory = the counted peak of the run, which holds the weights, the KV pages and the
 *   activations. */
#include "core/core.h"
#include "engine/generate.h"
#include "test.h"

static uint64_t g_t;
static uint64_t tick(void *ctx) {
    (void)ctx;
    return g_t += 1000000; /* 1 ms per reading */
}

static int near(double a, double b) { return fabs(a - b) <= 1e-9 * fabs(b) + 1e-12; }

int main(void) {
    tl_err err = {0};
    tl_engine_opts eo = {0};
    eo.model = "tests/data/llama/llama-a/q4";
    eo.max_slots = 1;
    eo.ctx_len = 128;
    tl_engine *e = NULL;
    if (tl_engine_open(&e, &eo, &err)) {
        fprintf(stderr, "open: %s\n", err.msg);
        return 1;
    }
    const tl_model_info *info = tl_engine_info(e);
    int32_t prompt[12];
    for (int i = 0; i < 12; i++) prompt[i] = 10 + 7 * i;

    /* A first greedy run finds the 4th token; a second run stops on it as on an eos id. */
    tl_gen_opts go = {0};
    int32_t no_stop = -1;
    go.stop_ids = &no_stop;
    go.n_stop_ids = 1;
    go.max_tokens = 8;
    tl_gen_result r = {0};
    int slot = tl_slot_acquire(e, &err);
    CHECK(slot >= 0);
    CHECK(tl_generate(e, slot, prompt, 12, 0, &go, &r, &err) == 0);
    tl_slot_release(e, slot);
    CHECK(r.n_ids == 8 && r.finish == TL_FINISH_LENGTH);
    CHECK(r.stats.prompt_tokens == 12 && r.stats.prefill_tokens == 12);
    CHECK(r.stats.generation_tokens == 8);
    int32_t stop = r.n_ids >= 4 ? r.ids[3] : 0;
    int first_at = 0;
    while (first_at < 3 && r.ids[first_at] != stop) first_at++;
    tl_gen_result_free(&r);

    tl_clock_set_fake(tick, NULL);
    tl_mem_reset_peak();
    go.stop_ids = &stop;
    memset(&r, 0, sizeof r);
    slot = tl_slot_acquire(e, &err);
    CHECK(tl_generate(e, slot, prompt, 12, 0, &go, &r, &err) == 0);
    tl_mem_stats m1;
    tl_mem_get(&m1);
    tl_slot_release(e, slot);
    tl_clock_set_fake(NULL, NULL);

    const tl_gen_stats *st = &r.stats;
    CHECKF(r.finish == TL_FINISH_STOP && r.stop_id == stop, "finish %d", r.finish);
    /* the stop id is generated and counted, as mlx-lm counts its eos */
    CHECKF(st->generation_tokens == first_at + 1 && r.n_ids == first_at + 1,
           "generation_tokens %d, n_ids %d, expected %d", st->generation_tokens, r.n_ids,
           first_at + 1);
    CHECK(st->prompt_tokens == 12 && st->reused_tokens == 0);
    double pre_s = (double)(st->t_first_ns - st->t_start_ns) * 1e-9;
    double gen_s = (double)(st->t_last_ns - st->t_first_ns) * 1e-9;
    CHECK(st->t_first_ns > st->t_start_ns && st->t_last_ns >= st->t_first_ns);
    /* whole milliseconds: the fake clock was read, not the real one */
    CHECK((st->t_first_ns - st->t_start_ns) % 1000000 == 0);
    CHECKF(near(st->prompt_tps, 12 / pre_s), "prompt_tps %.6f vs %.6f", st->prompt_tps,
           12 / pre_s);
    CHECK(near(st->ttft_ms, pre_s * 1e3));
    if (st->generation_tokens > 1)
        CHECKF(near(st->generation_tps, st->generation_tokens / gen_s), "gen_tps %.6f vs %.6f",
               st->generation_tps, st->generation_tokens / gen_s);
    /* peak memory is the counted peak: weights + KV + activations (+ state) were all live */
    CHECKF(st->peak_memory_bytes == m1.peak_total, "peak %lld vs counted %lld",
           (long long)st->peak_memory_bytes, (long long)m1.peak_total);
    CHECK(m1.peak[TL_MEM_WEIGHTS] >= info->weight_bytes && info->weight_bytes > 0);
    CHECK(m1.cur[TL_MEM_KV] > 0 && m1.cur[TL_MEM_SCRATCH] > 0);
    CHECK(st->peak_memory_bytes >= m1.cur[TL_MEM_WEIGHTS] + m1.cur[TL_MEM_KV] +
                                       m1.cur[TL_MEM_SCRATCH]);
    /* the line generate prints */
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    tl_gen_stats_print(st, f);
    fclose(f);
    char want[128];
    snprintf(want, sizeof want, "Prompt: 12 tokens, %.3f tokens-per-sec\nGeneration: %d tokens, ",
             st->prompt_tps, st->generation_tokens);
    CHECKF(!strncmp(buf, want, strlen(want)), "got:\n%s", buf);
    snprintf(want, sizeof want, "Peak memory: %.3f GB\n", (double)st->peak_memory_bytes / 1e9);
    CHECK(strstr(buf, want) != NULL);
    free(buf);
    tl_gen_result_free(&r);
    tl_engine_close(e);
    return test_done();
}
