/* test_cuda_models.c — the tiny models of tests/data/llama and tests/data/qwen35 through the
 * engine on the CUDA backend (--device cuda) against the reference backend (exact mode):
 *   - last-token logits after a 37-token prefill (tiled GEMM path, several KV pages),
 *     max |diff| <= 2e-3 x max(1, max |logit|);
 *   - 24 greedy decode steps (GEMV path): the same token as the reference unless the
 *     reference's top two are within the tolerance (then both continue with the reference's);
 *   - two slots in one batch (one prefilling, one decoding) give the logits each gives alone.
 * Run by `make test-cuda` only; without a GPU (or without CUDA in the build) it exits 77.
 * TALLOW_CUDA_OPS_SELFTEST=cpu runs it on the CPU backend instead (a check of the test, with a
 * 2e-2 bound: that backend rounds activations to int8). */
#include <stdint.h>

#include "tallow.h"
#include "backend/backend.h" /* tl_backend_cuda_available */
#include "tallow/engine.h"
#include "test.h"

#define N_PROMPT 37
#define N_GREEDY 24
/* CUDA computes in f32 throughout; the CPU backend of the self-test rounds activations to int8
 * per call, so it gets a wider bound. */
static double RTOL = 2e-3;

static const char *k_models[] = {
    "tests/data/llama/llama-a/bf16", "tests/data/llama/llama-a/q4",
    "tests/data/llama/llama-a/q8",   "tests/data/llama/llama-a/mixed",
    "tests/data/llama/llama-b/q4",   "tests/data/llama/llama-c/q8",
    "tests/data/llama/llama-c/bf16", "tests/data/llama/qwen3-a/q4",
    "tests/data/llama/qwen3-a/bf16", "tests/data/qwen35/a_f32",
    "tests/data/qwen35/a_mlx4",      "tests/data/qwen35/b_bf16",
    "tests/data/qwen35/b_mlx8",
};

static tl_device g_dev = TL_DEVICE_CUDA;

static tl_engine *open_on(const char *dir, int cuda) {
    tl_err err = {0};
    tl_engine *e = NULL;
    tl_engine_opts o = {.model = dir, .max_slots = 2, .ctx_len = 256, .threads = 2};
    if (cuda) o.device = g_dev;
    else {
        o.device = TL_DEVICE_CPU;
        o.exact = 1;
    }
    int rc = tl_engine_open(&e, &o, &err);
    CHECKF(rc == 0, "open %s on %s: %s", dir, cuda ? "cuda" : "ref", err.msg);
    if (rc == 0 && cuda && g_dev == TL_DEVICE_CUDA)
        CHECKF(tl_engine_device(e) == TL_DEVICE_CUDA, "%s: engine did not pick CUDA", dir);
    return rc == 0 ? e : NULL;
}

static int argmax(const float *v, int n) {
    int a = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[a]) a = i;
    return a;
}

/* max |a - b| within RTOL x max(1, max |b|)? */
static int logits_close(const char *what, const float *a, const float *b, int n) {
    double mx = 1.0, md = 0.0;
    int at = 0;
    for (int i = 0; i < n; i++)
        if (fabs(b[i]) > mx) mx = fabs(b[i]);
    for (int i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]);
        if (!(d <= md)) {
            md = d;
            at = i;
        }
    }
    CHECKF(md <= RTOL * mx, "%s: max |diff| %.3g at token %d (cuda %.6g, ref %.6g), limit %.3g",
           what, md, at, a[at], b[at], RTOL * mx);
    return md <= RTOL * mx;
}

static int forward1(tl_engine *e, int slot, const int32_t *ids, int n, float *logits) {
    tl_err err = {0};
    tl_batch_seq s = {.slot = slot, .n_tokens = n, .tokens = ids, .want_logits = 1};
    int rc = tl_engine_forward(e, &s, 1, logits, &err);
    CHECKF(rc == 0, "forward: %s", err.msg);
    return rc;
}

static void check_model(const char *dir) {
    char cfg[512];
    snprintf(cfg, sizeof cfg, "%s/config.json", dir);
    FILE *f = fopen(cfg, "r");
    /* the tiny models are committed: a missing one is a broken checkout or a wrong working
     * directory (run from the repository root), not a model to skip in silence */
    CHECKF(f != NULL, "%s is missing (run from the repository root)", cfg);
    if (!f) return;
    fclose(f);
    tl_engine *er = open_on(dir, 0), *eg = open_on(dir, 1);
    if (!er || !eg) {
        tl_engine_close(er);
        tl_engine_close(eg);
        return;
    }
    const int V = tl_engine_info(er)->vocab_size;
    float *lr = malloc(2 * (size_t)V * sizeof *lr), *lg = malloc(2 * (size_t)V * sizeof *lg);
    int32_t ids[N_PROMPT];
    for (int i = 0; i < N_PROMPT; i++) ids[i] = (int32_t)((i * 7919 + 13) % V);
    tl_err err = {0};
    int sr = tl_slot_acquire(er, &err), sg = tl_slot_acquire(eg, &err);
    CHECK(sr >= 0 && sg >= 0);
    char what[600];
    int ok = forward1(er, sr, ids, N_PROMPT, lr) == 0 && forward1(eg, sg, ids, N_PROMPT, lg) == 0;
    if (ok) {
        snprintf(what, sizeof what, "%s prefill", dir);
        logits_close(what, lg, lr, V);
    }
    /* greedy decode */
    int same = 0;
    for (int t = 0; ok && t < N_GREEDY; t++) {
        int ar = argmax(lr, V), ag = argmax(lg, V);
        if (ar != ag) {
            /* acceptable only if the reference itself nearly ties */
            double mx = 1.0;
            for (int i = 0; i < V; i++)
                if (fabs(lr[i]) > mx) mx = fabs(lr[i]);
            CHECKF(fabs((double)lr[ar] - lr[ag]) <= RTOL * mx,
                   "%s step %d: cuda picked %d, ref %d (ref margin %.3g)", dir, t, ag, ar,
                   (double)lr[ar] - lr[ag]);
        } else {
            same++;
        }
        int32_t tok = ar;
        ok = forward1(er, sr, &tok, 1, lr) == 0 && forward1(eg, sg, &tok, 1, lg) == 0;
        if (ok) {
            snprintf(what, sizeof what, "%s decode step %d", dir, t);
            ok = logits_close(what, lg, lr, V);
        }
    }
    printf("  %s: %d/%d greedy tokens identical\n", dir, same, N_GREEDY);
    /* two slots in one batch: a new slot prefills while the first decodes one token */
    int sg2 = tl_slot_acquire(eg, &err), sr2 = tl_slot_acquire(er, &err);
    CHECK(sg2 >= 0 && sr2 >= 0);
    if (ok && sg2 >= 0 && sr2 >= 0) {
        int32_t one = 5 % V;
        tl_batch_seq bg[2] = {{.slot = sg, .n_tokens = 1, .tokens = &one, .want_logits = 1},
                              {.slot = sg2, .n_tokens = 11, .tokens = ids + 3, .want_logits = 1}};
        tl_batch_seq br[2] = {{.slot = sr, .n_tokens = 1, .tokens = &one, .want_logits = 1},
                              {.slot = sr2, .n_tokens = 11, .tokens = ids + 3, .want_logits = 1}};
        int rg = tl_engine_forward(eg, bg, 2, lg, &err);
        CHECKF(rg == 0, "%s batch: %s", dir, err.msg);
        int rr = tl_engine_forward(er, br, 2, lr, &err);
        CHECKF(rr == 0, "%s batch (ref): %s", dir, err.msg);
        if (rg == 0 && rr == 0) {
            snprintf(what, sizeof what, "%s batch slot a", dir);
            logits_close(what, lg, lr, V);
            snprintf(what, sizeof what, "%s batch slot b", dir);
            logits_close(what, lg + V, lr + V, V);
        }
    }
    free(lr);
    free(lg);
    tl_engine_close(er);
    tl_engine_close(eg);
}

int main(void) {
    const char *self = getenv("TALLOW_CUDA_OPS_SELFTEST");
    if (self && !strcmp(self, "cpu")) {
        g_dev = TL_DEVICE_CPU;
        RTOL = 2e-2;
    }
    else if (!tl_backend_cuda_available())
        return test_skip("no CUDA device here (or tallow was built without CUDA)");
    for (size_t i = 0; i < TL_ARRAY_LEN(k_models); i++) check_model(k_models[i]);
    return test_done();
}
