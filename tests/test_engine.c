/* test_engine.c — the engine's promises, on a tiny Llama (tests/data/llama/llama-b, bf16 and
 * MLX 4-bit), on the reference backend and the default one:
 *   a prompt fed whole == token by token == in odd chunks == split by a small max_batch_rows;
 *   two slots decoded in one batch give the logits each gives alone;
 *   a snapshot restored into another slot (or the same one after it moved on) continues exactly;
 *   truncate + refeed == the original;
 *   releasing slots and freeing snapshots gives every KV page and counted byte back;
 *   bad calls fail with a clear error and change nothing. */
#include <math.h>

#include "engine/engine.h"
#include "test.h"
#include "test_llama_common.h"
#include "tallow.h"

#define NP 40

static int32_t g_prompt[NP], g_more[5] = {7, 99, 3, 250, 18};

static double rel_diff(const float *a, const float *b, int n) {
    double mx = 0, d = 0;
    for (int i = 0; i < n; i++) {
        if (fabs(b[i]) > mx) mx = fabs(b[i]);
        if (fabs((double)a[i] - b[i]) > d) d = fabs((double)a[i] - b[i]);
    }
    return mx > 0 ? d / mx : d;
}

static tl_engine *open_engine(const char *dir, int exact, int slots, int rows) {
    tl_err err = {0};
    tl_engine *e = NULL;
    tl_engine_opts o = {.model = dir, .exact = exact, .max_slots = slots, .ctx_len = 96,
                        .max_batch_rows = rows, .threads = 2};
    int rc = tl_engine_open(&e, &o, &err);
    CHECKF(rc == 0, "open %s: %s", dir, err.msg);
    return rc ? NULL : e;
}

/* Feed tokens [0, n) to slot in pieces of `chunk` (0 = all at once); logits of the last. */
static int feed(tl_engine *e, int slot, const int32_t *t, int n, int chunk, float *lg) {
    tl_err err = {0};
    if (chunk <= 0) chunk = n;
    for (int i = 0; i < n; i += chunk) {
        int k = TL_MIN(chunk, n - i);
        tl_batch_seq s = {.slot = slot, .n_tokens = k, .tokens = t + i, .want_logits = i + k == n};
        int rc = tl_engine_forward(e, &s, 1, lg, &err);
        if (rc) {
            fprintf(stderr, "feed: %s\n", err.msg);
            return rc;
        }
    }
    return 0;
}

static void test_chunking(const char *dir, int exact, double tol) {
    tl_engine *e = open_engine(dir, exact, 1, 64);
    tl_engine *e5 = open_engine(dir, exact, 1, 5); /* the engine splits into passes of 5 rows */
    if (!e || !e5) goto done;
    int V = tl_engine_info(e)->vocab_size;
    float *whole = malloc(V * sizeof(float)), *lg = malloc(V * sizeof(float));
    tl_err err = {0};
    int s = tl_slot_acquire(e, &err);
    CHECK(feed(e, s, g_prompt, NP, 0, whole) == 0);
    CHECK(tl_slot_len(e, s) == NP);
    int chunks[] = {1, 3, 7, 16, 17};
    for (size_t c = 0; c < TL_ARRAY_LEN(chunks); c++) {
        tl_slot_release(e, s);
        s = tl_slot_acquire(e, &err);
        CHECK(feed(e, s, g_prompt, NP, chunks[c], lg) == 0);
        double d = rel_diff(lg, whole, V);
        CHECKF(d <= tol, "%s [%s] chunks of %d: %.3g", dir, exact ? "ref" : "default", chunks[c], d);
    }
    int s5 = tl_slot_acquire(e5, &err);
    CHECK(feed(e5, s5, g_prompt, NP, 0, lg) == 0);
    double d = rel_diff(lg, whole, V);
    CHECKF(d <= tol, "%s [%s] max_batch_rows 5: %.3g", dir, exact ? "ref" : "default", d);
    free(whole);
    free(lg);
done:
    tl_engine_close(e);
    tl_engine_close(e5);
}

static void test_two_slots(const char *dir, int exact, double tol) {
    tl_engine *e = open_engine(dir, exact, 3, 64);
    if (!e) return;
    int V = tl_engine_info(e)->vocab_size;
    tl_err err = {0};
    float *alone = malloc(2 * V * sizeof(float)), *both = malloc(2 * V * sizeof(float));
    /* alone: A gets prompt[0..20) then more[0], B gets prompt[20..40) then more[1] */
    int a = tl_slot_acquire(e, &err);
    CHECK(feed(e, a, g_prompt, 20, 0, alone) == 0);
    CHECK(feed(e, a, g_more, 1, 0, alone) == 0);
    tl_slot_release(e, a);
    a = tl_slot_acquire(e, &err);
    CHECK(feed(e, a, g_prompt + 20, 20, 0, alone + V) == 0);
    CHECK(feed(e, a, g_more + 1, 1, 0, alone + V) == 0);
    tl_slot_release(e, a);
    /* together: both prompts in one pass, then both decode steps in one pass */
    int x = tl_slot_acquire(e, &err), y = tl_slot_acquire(e, &err);
    CHECK(x >= 0 && y >= 0 && x != y);
    tl_batch_seq s[2] = {{.slot = x, .n_tokens = 20, .tokens = g_prompt, .want_logits = 0},
                         {.slot = y, .n_tokens = 20, .tokens = g_prompt + 20, .want_logits = 1}};
    CHECK(tl_engine_forward(e, s, 2, both, &err) == 0);
    tl_batch_seq d[2] = {{.slot = y, .n_tokens = 1, .tokens = g_more + 1, .want_logits = 1},
                         {.slot = x, .n_tokens = 1, .tokens = g_more, .want_logits = 1}};
    CHECK(tl_engine_forward(e, d, 2, both, &err) == 0);
    double d0 = rel_diff(both + V, alone, V), d1 = rel_diff(both, alone + V, V);
    CHECKF(d0 <= tol && d1 <= tol, "%s [%s] batched vs alone: %.3g %.3g", dir,
           exact ? "ref" : "default", d0, d1);
    CHECK(tl_slot_len(e, x) == 21 && tl_slot_len(e, y) == 21);
    /* all slots busy */
    int z = tl_slot_acquire(e, &err);
    CHECK(z >= 0);
    CHECK(tl_slot_acquire(e, &err) == -TL_EBUSY);
    free(alone);
    free(both);
    tl_engine_close(e);
}

static void test_snapshots(const char *dir, int exact, double tol) {
    tl_engine *e = open_engine(dir, exact, 2, 64);
    if (!e) return;
    int V = tl_engine_info(e)->vocab_size;
    tl_err err = {0};
    float *l1 = malloc(V * sizeof(float)), *l2 = malloc(V * sizeof(float));
    /* warm-up: a backend may size its own scratch on first use; that is not the engine's */
    int w = tl_slot_acquire(e, &err);
    CHECK(feed(e, w, g_prompt, 21, 0, l1) == 0);
    CHECK(feed(e, w, g_more, 5, 0, l1) == 0);
    tl_slot_release(e, w);
    int before_pages = tl_engine_pages_used(e);
    tl_mem_stats m0, m1;
    tl_mem_get(&m0);

    int a = tl_slot_acquire(e, &err);
    CHECK(feed(e, a, g_prompt, 21, 0, l1) == 0); /* 21: the snapshot ends inside a page */
    tl_snapshot *snap = NULL;
    CHECK(tl_slot_snapshot(e, a, &snap, &err) == 0);
    CHECK(tl_snapshot_len(snap) == 21);
    CHECK(feed(e, a, g_more, 5, 0, l1) == 0); /* A writes into the shared page: copy on write */
    int b = tl_slot_acquire(e, &err);
    CHECK(tl_slot_restore(e, b, snap, &err) == 0);
    CHECK(tl_slot_len(e, b) == 21);
    CHECK(feed(e, b, g_more, 5, 0, l2) == 0);
    double d = rel_diff(l2, l1, V);
    CHECKF(d <= tol, "%s [%s] restored into another slot: %.3g", dir, exact ? "ref" : "default", d);
    /* restore into A itself, which moved on */
    CHECK(tl_slot_restore(e, a, snap, &err) == 0);
    CHECK(feed(e, a, g_more, 5, 0, l2) == 0);
    d = rel_diff(l2, l1, V);
    CHECKF(d <= tol, "%s [%s] restored into the same slot: %.3g", dir, exact ? "ref" : "default", d);
    /* truncate + refeed */
    CHECK(tl_slot_truncate(e, a, 10, &err) == 0);
    CHECK(tl_slot_len(e, a) == 10);
    CHECK(feed(e, a, g_prompt + 10, 11, 0, l2) == 0);
    CHECK(feed(e, a, g_more, 5, 0, l2) == 0);
    d = rel_diff(l2, l1, V);
    CHECKF(d <= tol, "%s [%s] truncate + refeed: %.3g", dir, exact ? "ref" : "default", d);
    CHECK(tl_slot_truncate(e, a, 99, &err) == -TL_EINVAL);

    /* releasing everything gives every page and byte back */
    CHECK(tl_engine_pages_used(e) > before_pages);
    tl_slot_release(e, a);
    tl_slot_release(e, b);
    CHECK(tl_engine_pages_used(e) > before_pages); /* the snapshot still holds its pages */
    tl_snapshot_free(e, snap);
    CHECKF(tl_engine_pages_used(e) == before_pages, "pages used %d, before %d",
           tl_engine_pages_used(e), before_pages);
    tl_mem_get(&m1);
    CHECK(m1.cur[TL_MEM_KV] == m0.cur[TL_MEM_KV]);
    CHECK(m1.cur[TL_MEM_STATE] == m0.cur[TL_MEM_STATE]);
    CHECKF(m1.cur_total == m0.cur_total, "%s [%s]: counted bytes %lld, before %lld (scratch %lld"
           " / %lld, weights %lld / %lld)", dir, exact ? "ref" : "default",
           (long long)m1.cur_total, (long long)m0.cur_total, (long long)m1.cur[TL_MEM_SCRATCH],
           (long long)m0.cur[TL_MEM_SCRATCH], (long long)m1.cur[TL_MEM_WEIGHTS],
           (long long)m0.cur[TL_MEM_WEIGHTS]);
    free(l1);
    free(l2);
    tl_engine_close(e);
}

/* A pool that starts small grows (pages copied) while slots and snapshots hold pages. */
static void test_growth(const char *dir, int exact, double tol) {
    tl_engine *ref = open_engine(dir, exact, 2, 64);
    setenv("TALLOW_KV_FIRST_TOKENS", "16", 1);
    tl_engine *e = open_engine(dir, exact, 2, 64);
    unsetenv("TALLOW_KV_FIRST_TOKENS");
    if (!ref || !e) goto done;
    int V = tl_engine_info(e)->vocab_size;
    tl_err err = {0};
    float *l1 = malloc(V * sizeof(float)), *l2 = malloc(V * sizeof(float));
    int total0 = tl_engine_pages_total(e);
    int a = tl_slot_acquire(e, &err), b = tl_slot_acquire(e, &err);
    CHECK(feed(e, a, g_prompt, 10, 0, l2) == 0);
    tl_snapshot *snap = NULL;
    CHECK(tl_slot_snapshot(e, a, &snap, &err) == 0);
    CHECK(feed(e, a, g_prompt + 10, 30, 0, l2) == 0);
    CHECK(feed(e, b, g_prompt, 40, 7, l2) == 0);
    CHECK(tl_engine_pages_total(e) > total0);
    int r = tl_slot_acquire(ref, &err);
    CHECK(feed(ref, r, g_prompt, 40, 0, l1) == 0);
    double d = rel_diff(l2, l1, V);
    CHECKF(d <= tol, "%s [%s] after growth: %.3g", dir, exact ? "ref" : "default", d);
    CHECK(tl_slot_restore(e, b, snap, &err) == 0);
    CHECK(feed(e, b, g_prompt + 10, 30, 0, l2) == 0);
    d = rel_diff(l2, l1, V);
    CHECKF(d <= tol, "%s [%s] snapshot across growth: %.3g", dir, exact ? "ref" : "default", d);
    tl_snapshot_free(e, snap);
    free(l1);
    free(l2);
done:
    tl_engine_close(ref);
    tl_engine_close(e);
}

static void test_errors(const char *dir) {
    tl_engine *e = open_engine(dir, 1, 2, 64);
    if (!e) return;
    int V = tl_engine_info(e)->vocab_size;
    tl_err err = {0};
    float *lg = malloc(2 * V * sizeof(float));
    int a = tl_slot_acquire(e, &err), b = tl_slot_acquire(e, &err);
    CHECK(feed(e, a, g_prompt, 4, 0, lg) == 0);
    int32_t bad[2] = {5, V};
    tl_batch_seq s[2] = {{.slot = a, .n_tokens = 2, .tokens = g_prompt, .want_logits = 1},
                         {.slot = b, .n_tokens = 2, .tokens = bad, .want_logits = 1}};
    CHECK(tl_engine_forward(e, s, 2, lg, &err) == -TL_EINVAL);
    CHECKF(strstr(err.msg, "vocabulary") != NULL, "%s", err.msg);
    CHECK(tl_slot_len(e, a) == 4 && tl_slot_len(e, b) == 0); /* nothing changed */
    s[1].slot = a;
    s[1].tokens = g_prompt;
    CHECK(tl_engine_forward(e, s, 2, lg, &err) == -TL_EINVAL); /* a slot twice */
    s[1].slot = 7;
    CHECK(tl_engine_forward(e, s, 2, lg, &err) == -TL_EINVAL); /* not a slot */
    int32_t *many = calloc(100, sizeof(int32_t));
    tl_batch_seq big = {.slot = b, .n_tokens = 100, .tokens = many, .want_logits = 1};
    CHECK(tl_engine_forward(e, &big, 1, lg, &err) == -TL_ELIMIT); /* past ctx_len 96 */
    CHECKF(strstr(err.msg, "context length") != NULL, "%s", err.msg);
    tl_batch_seq none = {.slot = b, .n_tokens = 0, .tokens = NULL, .want_logits = 1};
    CHECK(tl_engine_forward(e, &none, 1, lg, &err) == -TL_EINVAL);
    free(many);
    free(lg);
    tl_engine_close(e);

    tl_engine_opts o = {.model = LLAMA_DATA "/no-such-model"};
    tl_engine *x = NULL;
    CHECK(tl_engine_open(&x, &o, &err) < 0 && x == NULL);
    CHECKF(strstr(err.msg, "no-such-model") != NULL, "%s", err.msg);
    tl_engine_opts o2 = {.model = dir, .ctx_len = 100000};
    CHECK(tl_engine_open(&x, &o2, &err) == -TL_EINVAL && x == NULL);
}

int main(void) {
    const char *dirs[] = {LLAMA_DATA "/llama-b/bf16", LLAMA_DATA "/llama-b/q4"};
    char probe[256];
    snprintf(probe, sizeof probe, "%s/config.json", dirs[0]);
    if (!tl_file_exists(probe)) return test_skip("tests/data/llama is missing");
    for (int i = 0; i < NP; i++) g_prompt[i] = (int32_t)((i * 37 + 11) % 256);
    for (size_t d = 0; d < TL_ARRAY_LEN(dirs); d++) {
        for (int exact = 1; exact >= 0; exact--) {
            /* ref: the same arithmetic per row whatever the batch: equal to rounding. The fast
             * backend may pick other kernels (activation quantization levels, sum orders) per
             * batch shape: held to the parity bar. A wrong position or page is O(1) anyway. */
            double tol = exact ? 1e-6 : 1e-3;
            test_chunking(dirs[d], exact, tol);
            test_two_slots(dirs[d], exact, tol);
            test_snapshots(dirs[d], exact, tol);
            test_growth(dirs[d], exact, tol);
        }
    }
    test_errors(dirs[0]);
    return test_done();
}
