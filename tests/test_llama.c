/* test_llama.c — Llama 3.x / Qwen3 parity with the references, for the tiny models that
 * tools/make_tiny_models.py made (tests/data/llama/<model>/): f32, bf16, MLX 4-bit and 8-bit,
 * on the reference backend (exact mode) and on the default backend.
 *
 * Bars (issue 2): last-position logits of every golden prompt within
 *   f32 files vs transformers f32:            1e-4 x max|logit|
 *   bf16 files vs transformers f32, same values: 1e-3 x
 *   MLX files vs transformers on the dequantized weights: 1e-3 x; vs mlx-lm: same top-1
 * and 32 greedy tokens identical, compared up to the first step where the reference's top-2
 * margin is below 1e-3 x max|logit| (a near-tie; said so when it happens).
 * The f32 files are derived here from the bf16 ones (the same values widened), so that only the
 * small files are committed. llama-a also has an MLX mixed-precision variant (per-module
 * overrides in config.json with 2/3/5/6/8 bits). */
#include <math.h>

#include "test.h"
#include "test_llama_common.h"
#include "tallow.h"

static const char *k_models[] = {"llama-a", "llama-b", "llama-c", "qwen3-a"};

typedef struct variant {
    const char *name;     /* f32, bf16, q4, q8 */
    const char *golden;   /* golden_hf.txt ... */
    const char *mlx;      /* mlx-lm golden or NULL */
    double tol;
} variant;

static const variant k_variants[] = {
    {"f32", "golden_hf.txt", NULL, 1e-4},
    {"bf16", "golden_hf.txt", NULL, 1e-3},
    {"q4", "golden_q4_hf.txt", "golden_q4_mlx.txt", 1e-3},
    {"q8", "golden_q8_hf.txt", "golden_q8_mlx.txt", 1e-3},
    /* llama-a only: per-module overrides with 2, 3, 5, 6 and 8 bits, groups 32 and 64 */
    {"mixed", "golden_mixed_hf.txt", "golden_mixed_mlx.txt", 1e-3},
};

static int argmax(const float *v, int n) {
    int a = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[a]) a = i;
    return a;
}

static int argmax_d(const double *v, int n) {
    int a = 0;
    for (int i = 1; i < n; i++)
        if (v[i] > v[a]) a = i;
    return a;
}

/* Max |ours - ref| / max|ref| */
static double rel_err(const float *ours, const double *ref, int n) {
    double mx = 0, err = 0;
    for (int i = 0; i < n; i++) {
        if (fabs(ref[i]) > mx) mx = fabs(ref[i]);
        double d = fabs((double)ours[i] - ref[i]);
        if (d > err) err = d;
    }
    return mx > 0 ? err / mx : err;
}

static void check_model(const char *model, const variant *v, const char *dir, int exact) {
    char gpath[512], mpath[512];
    snprintf(gpath, sizeof gpath, LLAMA_DATA "/%s/%s", model, v->golden);
    if (v->mlx) snprintf(mpath, sizeof mpath, LLAMA_DATA "/%s/%s", model, v->mlx);
    tl_err err = {0};
    tl_engine *e = NULL;
    tl_engine_opts o = {.model = dir, .exact = exact, .max_slots = 1, .ctx_len = 128,
                        .max_batch_rows = 64, .threads = 2};
    int rc = tl_engine_open(&e, &o, &err);
    CHECKF(rc == 0, "%s %s: open: %s", model, v->name, err.msg);
    if (rc) return;
    int V = tl_engine_info(e)->vocab_size;
    float *lg = malloc((size_t)V * sizeof(float));
    const char *be = exact ? "ref" : "default";
    /* prompts */
    for (int p = 0;; p++) {
        char nm[32];
        int np = 0, nl = 0;
        snprintf(nm, sizeof nm, "prompt%d", p);
        double *pd = golden_get(gpath, nm, &np);
        if (!pd) break;
        snprintf(nm, sizeof nm, "logits%d", p);
        double *ref = golden_get(gpath, nm, &nl);
        CHECK(ref && nl == V);
        int32_t *ids = malloc((size_t)np * sizeof(int32_t));
        for (int i = 0; i < np; i++) ids[i] = (int32_t)pd[i];
        int slot = tl_slot_acquire(e, &err);
        tl_batch_seq s = {.slot = slot, .n_tokens = np, .tokens = ids, .want_logits = 1};
        rc = tl_engine_forward(e, &s, 1, lg, &err);
        CHECKF(rc == 0, "%s %s: forward: %s", model, v->name, err.msg);
        if (rc == 0 && ref && nl == V) {
            double re = rel_err(lg, ref, V);
            CHECKF(re <= v->tol, "%s %s [%s] prompt %d: max |err| %.3g x max|logit| > %.0e", model,
                   v->name, be, p, re, v->tol);
            if (v->mlx) {
                int nm2 = 0;
                double *mref = golden_get(mpath, nm, &nm2);
                CHECK(mref && nm2 == V);
                if (mref && nm2 == V) {
                    CHECKF(argmax(lg, V) == argmax_d(mref, V), "%s %s [%s] prompt %d: top-1 %d, "
                           "mlx-lm %d", model, v->name, be, p, argmax(lg, V), argmax_d(mref, V));
                    double rm = rel_err(lg, mref, V);
                    CHECKF(rm <= v->tol, "%s %s [%s] prompt %d vs mlx-lm: %.3g", model, v->name,
                           be, p, rm);
                }
                free(mref);
            }
        }
        tl_slot_release(e, slot);
        free(ids);
        free(pd);
        free(ref);
    }
    /* greedy, against each reference */
    const char *refs[2] = {gpath, v->mlx ? mpath : NULL};
    for (int r = 0; r < 2 && refs[r]; r++) {
        int np = 0, ng = 0, nmg = 0, nma = 0;
        double *pd = golden_get(refs[r], "prompt0", &np);
        double *gr = golden_get(refs[r], "greedy", &ng);
        double *mg = golden_get(refs[r], "margin", &nmg);
        double *ma = golden_get(refs[r], "maxabs", &nma);
        CHECK(pd && gr && mg && ma && ng == nmg && ng == nma);
        if (!(pd && gr && mg && ma)) goto next;
        int upto = ng;
        for (int i = 0; i < ng; i++)
            if (mg[i] < 1e-3 * ma[i]) {
                upto = i; /* the near-tie step itself may go either way: compare before it */
                printf("%s %s [%s]: reference near-tie at step %d (margin %.3g): comparing %d "
                       "greedy steps only\n", model, v->name, be, i, mg[i], upto);
                break;
            }
        int slot = tl_slot_acquire(e, &err);
        int32_t *ids = malloc((size_t)np * sizeof(int32_t));
        for (int i = 0; i < np; i++) ids[i] = (int32_t)pd[i];
        tl_batch_seq s = {.slot = slot, .n_tokens = np, .tokens = ids, .want_logits = 1};
        rc = tl_engine_forward(e, &s, 1, lg, &err);
        int same = 0;
        for (int i = 0; rc == 0 && i < upto; i++) {
            int32_t t = argmax(lg, V);
            if (t != (int32_t)gr[i]) {
                fprintf(stderr, "%s %s [%s] vs %s: greedy step %d: %d, reference %d\n", model,
                        v->name, be, r ? "mlx-lm" : "transformers", i, t, (int)gr[i]);
                break;
            }
            same++;
            tl_batch_seq d = {.slot = slot, .n_tokens = 1, .tokens = &t, .want_logits = 1};
            rc = tl_engine_forward(e, &d, 1, lg, &err);
        }
        CHECKF(rc == 0, "%s: %s", model, err.msg);
        CHECKF(same == upto, "%s %s [%s]: %d of %d greedy tokens match %s", model, v->name, be,
               same, upto, r ? "mlx-lm" : "transformers");
        tl_slot_release(e, slot);
        free(ids);
    next:
        free(pd);
        free(gr);
        free(mg);
        free(ma);
    }
    free(lg);
    tl_engine_close(e);
}

int main(void) {
    char probe[256];
    snprintf(probe, sizeof probe, LLAMA_DATA "/%s/bf16/config.json", k_models[0]);
    if (!tl_file_exists(probe)) return test_skip("tests/data/llama is missing");
    char tmp[256];
    if (make_tmpdir(tmp, sizeof tmp, "llama")) return test_skip("cannot make a temp dir");
    for (size_t m = 0; m < TL_ARRAY_LEN(k_models); m++) {
        for (size_t v = 0; v < TL_ARRAY_LEN(k_variants); v++) {
            char dir[512];
            if (!strcmp(k_variants[v].name, "f32")) {
                char src[512];
                snprintf(src, sizeof src, LLAMA_DATA "/%s/bf16", k_models[m]);
                snprintf(dir, sizeof dir, "%s/%s-f32", tmp, k_models[m]);
                mkdir(dir, 0755);
                CHECKF(copy_model(src, dir, 1, NULL, NULL) == 0, "making %s", dir);
            } else {
                snprintf(dir, sizeof dir, LLAMA_DATA "/%s/%s", k_models[m], k_variants[v].name);
                if (!tl_dir_exists(dir) && !strcmp(k_variants[v].name, "mixed")) continue;
            }
            check_model(k_models[m], &k_variants[v], dir, 1);
            check_model(k_models[m], &k_variants[v], dir, 0);
        }
    }
    rm_rf(tmp);
    return test_done();
}
