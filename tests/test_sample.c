/* test_sample.c — the sampler against transformers' and mlx-lm's own filters (goldens made by
 * tools/sample_goldens.py), draw frequencies within chi-square bounds, seeded reproducibility,
 * the stop-string matcher across token boundaries, and the statistics lines. */
#include "core/core.h"
#include "tallow/sample.h"
#include "test.h"

/* ---- goldens -------------------------------------------------------------------------------- */
static int read_ids(FILE *f, const char *tag, int32_t **out) {
    char t[32];
    int n;
    if (fscanf(f, "%31s %d", t, &n) != 2 || strcmp(t, tag) || n < 0) return -1;
    *out = calloc((size_t)n + 1, sizeof **out);
    for (int i = 0; i < n; i++)
        if (fscanf(f, "%d", &(*out)[i]) != 1) return -1;
    return n;
}

static void test_goldens(void) {
    FILE *f = fopen("tests/data/sample/goldens.txt", "r");
    CHECKF(f != NULL, "tests/data/sample/goldens.txt missing (run from the repo root)");
    if (!f) return;
    char line[256];
    if (!fgets(line, sizeof line, f)) return; /* header comment */
    int cases = 0;
    char tag[32], name[128];
    while (fscanf(f, "%31s %127s", tag, name) == 2) {
        CHECK(!strcmp(tag, "case"));
        tl_sample_params p;
        tl_sample_params_default(&p);
        double temp, top_p, min_p, rep, pres, freq;
        CHECK(fscanf(f, "%31s %lf %d %lf %lf %lf %lf %lf", tag, &temp, &p.top_k, &top_p, &min_p,
                     &rep, &pres, &freq) == 8);
        p.temperature = (float)temp, p.top_p = (float)top_p, p.min_p = (float)min_p;
        p.repetition_penalty = (float)rep, p.presence_penalty = (float)pres;
        p.frequency_penalty = (float)freq;
        int32_t *ctx, *gen;
        int n_ctx = read_ids(f, "context", &ctx), n_gen = read_ids(f, "generated", &gen);
        CHECK(n_ctx >= 0 && n_gen >= 0);
        int nb;
        CHECK(fscanf(f, "%31s %d", tag, &nb) == 2);
        tl_logit_bias *bias = calloc((size_t)nb + 1, sizeof *bias);
        for (int i = 0; i < nb; i++) CHECK(fscanf(f, "%d %f", &bias[i].id, &bias[i].bias) == 2);
        p.bias = bias, p.n_bias = nb;
        double xp, xt;
        int nx;
        CHECK(fscanf(f, "%31s %lf %lf %d", tag, &xp, &xt, &nx) == 4 && !strcmp(tag, "xtc"));
        int32_t prot[8] = {0};
        for (int i = 0; i < nx && i < 8; i++) CHECK(fscanf(f, "%d", &prot[i]) == 1);
        p.xtc_probability = (float)xp, p.xtc_threshold = (float)xt;
        p.xtc_protect = prot, p.n_xtc_protect = nx < 8 ? nx : 8;
        int V;
        CHECK(fscanf(f, "%31s %d", tag, &V) == 2 && V > 0);
        float *logits = calloc((size_t)V, sizeof *logits), *probs = calloc((size_t)V, 4);
        float *want = calloc((size_t)V, sizeof *want);
        for (int i = 0; i < V; i++) CHECK(fscanf(f, "%f", &logits[i]) == 1);
        int nk;
        CHECK(fscanf(f, "%31s %d", tag, &nk) == 2);
        for (int i = 0; i < nk; i++) {
            int id;
            float pr;
            CHECK(fscanf(f, "%d %f", &id, &pr) == 2);
            if (id >= 0 && id < V) want[id] = pr;
        }
        tl_sampler *s;
        tl_err err = {0};
        CHECKF(tl_sampler_new(&s, &p, V, &err) == 0, "%s: %s", name, err.msg);
        CHECK(tl_sampler_accept(s, ctx, n_ctx, 0, &err) == 0);
        CHECK(tl_sampler_accept(s, gen, n_gen, 1, &err) == 0);
        int kept = tl_sampler_probs(s, logits, probs);
        CHECKF(kept >= nk, "%s: kept %d tokens, reference kept %d", name, kept, nk);
        int same_set = 1;
        double max_err = 0;
        /* probabilities below 1e-30 count as removed: float32 underflow (a -100 logit bias)
         * differs between references */
        for (int i = 0; i < V; i++) {
            if ((probs[i] > 1e-30f) != (want[i] > 1e-30f)) same_set = 0;
            double e = fabs((double)probs[i] - want[i]);
            if (e > max_err) max_err = e;
        }
        CHECKF(same_set, "%s: kept set differs from the reference", name);
        CHECKF(max_err < 2e-5, "%s: max |p - p_ref| = %g", name, max_err);
        tl_sampler_free(s);
        free(ctx), free(gen), free(bias), free(logits), free(probs), free(want);
        cases++;
    }
    fclose(f);
    CHECKF(cases >= 22, "only %d golden cases read", cases);
}

/* ---- draws ---------------------------------------------------------------------------------- */
static const float k_logits[8] = {2.0f, 1.5f, 1.0f, 0.5f, 0.0f, -0.5f, -1.0f, -3.0f};

static void test_frequencies(void) {
    /* temp 0.8, top-k 5: 5 categories; chi-square over 200k draws, df 4. The critical value at
     * p = 0.001 is 18.47; the seed is fixed, so this cannot flake, but a wrong distribution
     * (e.g. temperature applied twice, an off-by-one in the walk) gives values in the hundreds. */
    tl_sample_params p;
    tl_sample_params_default(&p);
    p.temperature = 0.8f, p.top_k = 5, p.seed = 42;
    tl_sampler *s;
    tl_err err;
    CHECK(tl_sampler_new(&s, &p, 8, &err) == 0);
    float l[8], probs[8];
    memcpy(l, k_logits, sizeof l);
    CHECK(tl_sampler_probs(s, l, probs) == 5);
    enum { N = 200000 };
    int count[8] = {0};
    for (int i = 0; i < N; i++) {
        memcpy(l, k_logits, sizeof l);
        int t = tl_sampler_sample(s, l);
        CHECK(t >= 0 && t < 8);
        if (t >= 0 && t < 8) count[t]++;
    }
    double chi = 0;
    for (int i = 0; i < 5; i++) {
        double e = probs[i] * (double)N;
        chi += (count[i] - e) * (count[i] - e) / e;
    }
    CHECKF(chi < 18.47, "chi-square %g over 5 kept tokens (df 4)", chi);
    CHECKF(count[5] + count[6] + count[7] == 0, "filtered tokens were drawn");
    /* analytic check of the expected probabilities themselves */
    double z = 0;
    for (int i = 0; i < 5; i++) z += exp(k_logits[i] / 0.8);
    CHECKF(fabs(probs[0] - exp(2.0 / 0.8) / z) < 1e-6, "p0 %g", probs[0]);
    tl_sampler_free(s);
}

static void draw_seq(uint64_t seed, uint64_t stream, int *out, int n) {
    tl_sample_params p;
    tl_sample_params_default(&p);
    p.temperature = 1.0f, p.seed = seed, p.stream = stream;
    tl_sampler *s;
    tl_err err;
    if (tl_sampler_new(&s, &p, 8, &err)) return;
    for (int i = 0; i < n; i++) {
        float l[8];
        memcpy(l, k_logits, sizeof l);
        out[i] = tl_sampler_sample(s, l);
    }
    tl_sampler_free(s);
}

static void test_seeds(void) {
    int a[64], b[64], c[64], d[64];
    draw_seq(7, 0, a, 64);
    draw_seq(7, 0, b, 64);
    draw_seq(8, 0, c, 64);
    draw_seq(7, 1, d, 64);
    CHECK(!memcmp(a, b, sizeof a));
    CHECK(memcmp(a, c, sizeof a) != 0);
    CHECK(memcmp(a, d, sizeof a) != 0);
    /* reset reseeds: the same sequence again */
    tl_sample_params p;
    tl_sample_params_default(&p);
    p.temperature = 1.0f, p.seed = 7;
    tl_sampler *s;
    tl_err err;
    CHECK(tl_sampler_new(&s, &p, 8, &err) == 0);
    int first = -1, again = -1;
    for (int r = 0; r < 2; r++) {
        float l[8];
        memcpy(l, k_logits, sizeof l);
        int t = tl_sampler_sample(s, l);
        if (r == 0) first = t;
        else again = t;
        tl_sampler_reset(s);
    }
    CHECK(first == a[0] && again == a[0]);
    tl_sampler_free(s);
    /* two sequences drawn in turn (as in a batch) give what each gives alone */
    tl_sampler *x, *y;
    p.seed = 7, p.stream = 0;
    CHECK(tl_sampler_new(&x, &p, 8, &err) == 0);
    p.stream = 1;
    CHECK(tl_sampler_new(&y, &p, 8, &err) == 0);
    int same_x = 1, same_y = 1;
    for (int i = 0; i < 64; i++) {
        float l[8];
        memcpy(l, k_logits, sizeof l);
        same_x &= tl_sampler_sample(x, l) == a[i];
        memcpy(l, k_logits, sizeof l);
        same_y &= tl_sampler_sample(y, l) == d[i];
    }
    CHECK(same_x && same_y);
    tl_sampler_free(x);
    tl_sampler_free(y);
}

static void test_greedy_and_penalties(void) {
    tl_sample_params p;
    tl_sample_params_default(&p);
    tl_sampler *s;
    tl_err err;
    CHECK(tl_sampler_new(&s, &p, 8, &err) == 0);
    float l[8];
    memcpy(l, k_logits, sizeof l);
    CHECK(tl_sampler_sample(s, l) == 0);
    tl_sampler_free(s);
    /* presence 1.0 after token 0 was generated: 2.0 - 1.0 = 1.0 < 1.5 -> token 1 */
    p.presence_penalty = 1.0f;
    CHECK(tl_sampler_new(&s, &p, 8, &err) == 0);
    int32_t t0 = 0;
    CHECK(tl_sampler_accept(s, &t0, 1, 1, &err) == 0);
    memcpy(l, k_logits, sizeof l);
    CHECK(tl_sampler_sample(s, l) == 1);
    /* the prompt does not count for presence (OpenAI semantics) */
    tl_sampler_reset(s);
    CHECK(tl_sampler_accept(s, &t0, 1, 0, &err) == 0);
    memcpy(l, k_logits, sizeof l);
    CHECK(tl_sampler_sample(s, l) == 0);
    tl_sampler_free(s);
    /* frequency 0.3 x 2 occurrences = 0.6: 1.4 < 1.5 -> token 1 */
    tl_sample_params_default(&p);
    p.frequency_penalty = 0.3f;
    CHECK(tl_sampler_new(&s, &p, 8, &err) == 0);
    int32_t two[2] = {0, 0};
    CHECK(tl_sampler_accept(s, two, 2, 1, &err) == 0);
    memcpy(l, k_logits, sizeof l);
    CHECK(tl_sampler_sample(s, l) == 1);
    tl_sampler_free(s);
    /* repetition penalty sees only the last N context tokens */
    tl_sample_params_default(&p);
    p.repetition_penalty = 2.0f, p.repetition_context_size = 2;
    CHECK(tl_sampler_new(&s, &p, 8, &err) == 0);
    int32_t ctx[3] = {0, 5, 6};
    CHECK(tl_sampler_accept(s, ctx, 3, 0, &err) == 0);
    memcpy(l, k_logits, sizeof l);
    CHECK(tl_sampler_sample(s, l) == 0); /* 0 is out of the window */
    int32_t one = 0;
    CHECK(tl_sampler_accept(s, &one, 1, 1, &err) == 0);
    memcpy(l, k_logits, sizeof l);
    CHECK(tl_sampler_sample(s, l) == 1); /* 2.0 / 2 = 1.0 < 1.5 */
    tl_sampler_free(s);
    /* logit bias forces a token */
    tl_sample_params_default(&p);
    tl_logit_bias b = {7, 100.0f};
    p.bias = &b, p.n_bias = 1;
    CHECK(tl_sampler_new(&s, &p, 8, &err) == 0);
    memcpy(l, k_logits, sizeof l);
    CHECK(tl_sampler_sample(s, l) == 7);
    tl_sampler_free(s);
}

static void test_bad_params(void) {
    tl_sample_params p;
    tl_err err = {0};
    tl_sampler *s = NULL;
    tl_sample_params_default(&p);
    p.temperature = -0.1f;
    CHECK(tl_sampler_new(&s, &p, 8, &err) == -TL_EINVAL && strstr(err.msg, "temperature"));
    tl_sample_params_default(&p);
    p.top_p = 0.0f;
    CHECK(tl_sample_params_check(&p, 8, &err) == -TL_EINVAL && strstr(err.msg, "top_p"));
    p.top_p = 1.5f;
    CHECK(tl_sample_params_check(&p, 8, &err) == -TL_EINVAL);
    tl_sample_params_default(&p);
    p.min_p = 1.01f;
    CHECK(tl_sample_params_check(&p, 8, &err) == -TL_EINVAL && strstr(err.msg, "min_p"));
    tl_sample_params_default(&p);
    p.top_k = -1;
    CHECK(tl_sample_params_check(&p, 8, &err) == -TL_EINVAL);
    tl_sample_params_default(&p);
    tl_logit_bias b = {8, 1.0f};
    p.bias = &b, p.n_bias = 1;
    CHECK(tl_sample_params_check(&p, 8, &err) == -TL_EINVAL && strstr(err.msg, "8"));
    p.temperature = NAN;
    CHECK(tl_sample_params_check(&p, 8, &err) == -TL_EINVAL);
    tl_sample_params_default(&p);
    CHECK(tl_sampler_new(&s, &p, 0, &err) == -TL_EINVAL);
    CHECK(tl_sampler_new(&s, &p, 8, &err) == 0);
    int32_t bad = 9;
    CHECK(tl_sampler_accept(s, &bad, 1, 1, &err) == -TL_EINVAL && strstr(err.msg, "9"));
    /* all -inf / NaN logits: still a valid id, no crash */
    float l[8];
    for (int i = 0; i < 8; i++) l[i] = -INFINITY;
    int t = tl_sampler_sample(s, l);
    CHECK(t >= 0 && t < 8);
    tl_sampler_free(s);
    p.temperature = 1.0f;
    CHECK(tl_sampler_new(&s, &p, 8, &err) == 0);
    for (int i = 0; i < 8; i++) l[i] = NAN;
    t = tl_sampler_sample(s, l);
    CHECK(t >= 0 && t < 8);
    tl_sampler_free(s);
}

/* ---- logit bias text ------------------------------------------------------------------------ */
static void test_bias_parse(void) {
    tl_logit_bias *b = NULL;
    int n = -1;
    tl_err err = {0};
    CHECK(tl_logit_bias_parse("{\"5\": 3, \"7\": -100}", &b, &n, &err) == 0 && n == 2);
    if (n == 2) CHECK(b[0].id == 5 && b[0].bias == 3.0f && b[1].id == 7 && b[1].bias == -100.0f);
    free(b);
    CHECK(tl_logit_bias_parse("5:3,7:-2.5", &b, &n, &err) == 0 && n == 2);
    if (n == 2) CHECK(b[1].id == 7 && b[1].bias == -2.5f);
    free(b);
    static const struct {
        const char *in, *says;
    } bad[] = {
        {"", "empty"},
        {"x:1", "offset 0"},
        {"5:3,x:1", "offset 4"},
        {"5:3,", "trailing comma"},
        {"5:101", "[-100, 100]"},
        {"5:nan", "offset 2"},
        {"5:1e999", "offset 2"},
        {"-1:2", "offset 0"},
        {"99999999999:1", "offset 0"},
        {"{\"a\": 1}", "\"a\""},
        {"{\"5\": \"x\"}", "\"5\""},
        {"{\"5\": 1, \"5\": 2}", "duplicate"},
        {"{\"5\": 1", "not a JSON object"},
        {"{\"1.5\": 1}", "\"1.5\""},
    };
    for (size_t i = 0; i < TL_ARRAY_LEN(bad); i++) {
        b = NULL;
        int rc = tl_logit_bias_parse(bad[i].in, &b, &n, &err);
        CHECKF(rc == -TL_EINVAL && strstr(err.msg, bad[i].says), "'%s': rc %d, '%s'", bad[i].in,
               rc, err.msg);
        CHECK(b == NULL);
    }
}

/* ---- stop strings --------------------------------------------------------------------------- */
static char g_out[1024];

static int feed_all(tl_stop *s, const char *const *pieces, int n) {
    g_out[0] = 0;
    int hit = 0;
    tl_err err;
    for (int i = 0; i < n && !hit; i++) {
        const char *e;
        size_t el;
        hit = tl_stop_feed(s, pieces[i], strlen(pieces[i]), &e, &el, &err);
        strncat(g_out, e, el);
    }
    if (!hit) {
        const char *e;
        size_t el;
        tl_stop_flush(s, &e, &el);
        strncat(g_out, e, el);
    }
    return hit;
}

static void test_stop(void) {
    const char *stops[] = {"world", "</answer>", "wo!"};
    tl_stop *s;
    tl_err err = {0};
    CHECK(tl_stop_new(&s, stops, 3, &err) == 0);
    const char *a[] = {"Hello wo", "r", "ld and more", "never"};
    CHECK(feed_all(s, a, 4) == 1);
    CHECK_STREQ(g_out, "Hello ");
    CHECK(tl_stop_matched(s) == 0);
    /* after a match nothing more comes out */
    const char *e;
    size_t el;
    CHECK(tl_stop_feed(s, "x", 1, &e, &el, &err) == 1 && el == 0);
    tl_stop_reset(s);
    /* a held prefix that turns out not to be a stop string is released in order */
    const char *b[] = {"a wo", "w", " fine </ans", "wer tail"};
    CHECK(feed_all(s, b, 4) == 0);
    CHECK_STREQ(g_out, "a wow fine </answer tail");
    tl_stop_reset(s);
    /* held text is flushed at the end */
    const char *c[] = {"ends with </an"};
    CHECK(feed_all(s, c, 1) == 0);
    CHECK_STREQ(g_out, "ends with </an");
    tl_stop_reset(s);
    /* one piece holding a whole stop string and text after it; earliest stop wins */
    const char *d[] = {"x wo! y world"};
    CHECK(feed_all(s, d, 1) == 1);
    CHECK_STREQ(g_out, "x ");
    CHECK(tl_stop_matched(s) == 2);
    tl_stop_reset(s);
    /* each byte its own token */
    const char *f[] = {"<", "/", "a", "n", "s", "w", "e", "r", ">", "!"};
    CHECK(feed_all(s, f, 10) == 1);
    CHECK_STREQ(g_out, "");
    tl_stop_free(s);
    /* no stop strings: a pass-through */
    CHECK(tl_stop_new(&s, NULL, 0, &err) == 0);
    const char *g[] = {"plain ", "text"};
    CHECK(feed_all(s, g, 2) == 0);
    CHECK_STREQ(g_out, "plain text");
    tl_stop_free(s);
    const char *empty[] = {"ok", ""};
    CHECK(tl_stop_new(&s, empty, 2, &err) == -TL_EINVAL && strstr(err.msg, "empty"));
}

/* ---- statistics ----------------------------------------------------------------------------- */
static void test_stats(void) {
    tl_gen_stats st = {0};
    st.prompt_tokens = st.prefill_tokens = 100;
    st.generation_tokens = 51;
    st.t_start_ns = 1000000000ull;
    st.t_first_ns = st.t_start_ns + 250000000ull;  /* 0.25 s: 400 tok/s */
    st.t_last_ns = st.t_first_ns + 2000000000ull;  /* 2 s: 51 / 2 = 25.5 tok/s (mlx-lm's rule) */
    st.peak_memory_bytes = 1234567890;
    tl_gen_stats_finish(&st);
    char buf[512] = {0};
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    tl_gen_stats_print(&st, f);
    fclose(f);
    CHECK_STREQ(buf, "Prompt: 100 tokens, 400.000 tokens-per-sec\n"
                     "Generation: 51 tokens, 25.500 tokens-per-sec\n"
                     "Peak memory: 1.235 GB\n"
                     "Time to first token: 0.250 s\n");
    CHECK(fabs(st.ttft_ms - 250.0) < 1e-9);
    CHECK(st.reused_tokens == 0);
}

/* ---- reasoning splitter --------------------------------------------------------------------- */
typedef struct {
    char r[256], a[256];
} think_out;

static void think_cb(void *ctx, int is_reasoning, const char *t, size_t n) {
    think_out *o = ctx;
    strncat(is_reasoning ? o->r : o->a, t, n);
}

static void split_pieces(int start_in_think, const char *const *p, int n, think_out *o) {
    memset(o, 0, sizeof *o);
    tl_think_split s;
    tl_think_split_init(&s, start_in_think, think_cb, o);
    for (int i = 0; i < n; i++) tl_think_split_feed(&s, p[i], strlen(p[i]));
    tl_think_split_flush(&s);
}

static void test_think_split(void) {
    think_out o;
    /* the prompt opened <think>: reasoning until </think>, the tag cut across pieces */
    const char *a[] = {"\nLet me ", "think.</th", "ink>\n\nThe answer", " is 4."};
    split_pieces(1, a, 4, &o);
    CHECK_STREQ(o.r, "Let me think.");
    CHECK_STREQ(o.a, "The answer is 4.");
    /* the model opens the block itself */
    const char *b[] = {"<think>\nhmm</think>\n\nok"};
    split_pieces(0, b, 1, &o);
    CHECK_STREQ(o.r, "hmm");
    CHECK_STREQ(o.a, "ok");
    /* a '<' that is no tag stays in the answer; a tag prefix left at the end is flushed */
    const char *c[] = {"a < b <th", "at"};
    split_pieces(0, c, 2, &o);
    CHECK_STREQ(o.a, "a < b <that");
    CHECK_STREQ(o.r, "");
    const char *d[] = {"x <thi"};
    split_pieces(0, d, 1, &o);
    CHECK_STREQ(o.a, "x <thi");
    /* byte by byte */
    const char *e[] = {"<", "t", "h", "i", "n", "k", ">", "r", "<", "/", "t", "h", "i", "n", "k",
                       ">", "A"};
    split_pieces(0, e, 17, &o);
    CHECK_STREQ(o.r, "r");
    CHECK_STREQ(o.a, "A");
}

int main(void) {
    test_think_split();
    test_bias_parse();
    test_goldens();
    test_frequencies();
    test_seeds();
    test_greedy_and_penalties();
    test_bad_params();
    test_stop();
    test_stats();
    return test_done();
}
