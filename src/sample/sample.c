/* sample.c — the sampler: logits -> next token (contract in include/tallow/sample.h).
 *
 * Order: logit bias -> repetition penalty -> presence/frequency penalty -> temperature -> top-k
 * -> top-p -> min-p -> XTC -> draw. The filters follow transformers' warpers exactly (ties at the top-k
 * boundary kept; top-p removes tokens whose ascending cumulative probability is <= 1 - top_p;
 * min-p removes probabilities < min_p * max). Work is O(vocab) per token: top-k by a one-pass
 * min-heap (quickselect for large k), softmax over the survivors, top-p by bucketing the
 * probabilities and sorting only the bucket where the cumulative mass crosses top_p; expf over
 * the candidates is what costs most (about 1-2 ms for a 248k vocabulary without top-k). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "tallow/sample.h"

struct tl_sampler {
    tl_sample_params p;
    tl_logit_bias *bias;
    int32_t *xtc_protect;
    int vocab;
    uint64_t rng[4];
    /* history */
    int32_t *ctx;         /* every context token, prompt and generated, in order */
    int n_ctx, cap_ctx;
    int32_t *gen_count;   /* [vocab] occurrences among generated tokens */
    int32_t *gen_ids;     /* distinct generated ids, in first-seen order */
    int n_gen_ids, cap_gen_ids;
    uint32_t *mark;       /* [vocab] stamp for "already penalised this step" */
    uint32_t stamp;
    /* scratch */
    int32_t *cand;        /* [vocab] candidate ids */
    float *cp;            /* [vocab] candidate probabilities (normalised over kept set) */
    float *tmp;           /* [vocab] quickselect copy, top-k heap, top-p boundary bucket */
    int32_t *cand2;       /* [vocab] top-p boundary bucket ids */
    double *bin_mass;     /* [NBINS] top-p bucket masses */
    int n_cand;
};

/* ---- params --------------------------------------------------------------------------------- */
void tl_sample_params_default(tl_sample_params *p) {
    memset(p, 0, sizeof *p);
    p->temperature = 0.0f;
    p->top_p = 1.0f;
    p->min_keep = 1;
    p->repetition_penalty = 1.0f;
}

int tl_sample_params_check(const tl_sample_params *p, int vocab_size, tl_err *err) {
    if (!(p->temperature >= 0.0f) || !isfinite(p->temperature))
        return tl_err_set(err, TL_EINVAL, "temperature must be >= 0, got %g", p->temperature);
    if (p->top_k < 0) return tl_err_set(err, TL_EINVAL, "top_k must be >= 0, got %d", p->top_k);
    if (!(p->top_p > 0.0f && p->top_p <= 1.0f))
        return tl_err_set(err, TL_EINVAL, "top_p must be in (0, 1], got %g", p->top_p);
    if (!(p->min_p >= 0.0f && p->min_p <= 1.0f))
        return tl_err_set(err, TL_EINVAL, "min_p must be in [0, 1], got %g", p->min_p);
    if (p->min_keep < 0)
        return tl_err_set(err, TL_EINVAL, "min_keep must be >= 0, got %d", p->min_keep);
    if (!isfinite(p->presence_penalty) || !isfinite(p->frequency_penalty))
        return tl_err_set(err, TL_EINVAL, "presence/frequency penalty must be finite numbers");
    if (!(p->repetition_penalty >= 0.0f) || !isfinite(p->repetition_penalty))
        return tl_err_set(err, TL_EINVAL, "repetition_penalty must be > 0, got %g",
                          p->repetition_penalty);
    if (p->repetition_context_size < 0)
        return tl_err_set(err, TL_EINVAL, "repetition_context_size must be >= 0, got %d",
                          p->repetition_context_size);
    if (!(p->xtc_probability >= 0.0f && p->xtc_probability <= 1.0f))
        return tl_err_set(err, TL_EINVAL, "xtc_probability must be in [0, 1], got %g",
                          p->xtc_probability);
    if (!(p->xtc_threshold >= 0.0f && p->xtc_threshold <= 0.5f))
        return tl_err_set(err, TL_EINVAL, "xtc_threshold must be in [0, 0.5], got %g",
                          p->xtc_threshold);
    if (p->n_xtc_protect < 0 || (p->n_xtc_protect > 0 && !p->xtc_protect))
        return tl_err_set(err, TL_EINVAL, "xtc: bad protected-token count %d", p->n_xtc_protect);
    if (p->n_bias < 0 || (p->n_bias > 0 && !p->bias))
        return tl_err_set(err, TL_EINVAL, "logit_bias: bad entry count %d", p->n_bias);
    for (int i = 0; i < p->n_bias; i++) {
        if (vocab_size > 0 && (p->bias[i].id < 0 || p->bias[i].id >= vocab_size))
            return tl_err_set(err, TL_EINVAL, "logit_bias: token id %d is outside the vocabulary "
                              "[0, %d)", (int)p->bias[i].id, vocab_size);
        if (isnan(p->bias[i].bias))
            return tl_err_set(err, TL_EINVAL, "logit_bias: bias of token %d is not a number",
                              (int)p->bias[i].id);
    }
    return 0;
}

/* ---- RNG: xoshiro256** seeded by splitmix64 --------------------------------------------------- */
static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static uint64_t rng_next(uint64_t s[4]) {
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

static void rng_seed(uint64_t s[4], uint64_t seed, uint64_t stream) {
    uint64_t x = seed;
    uint64_t mix = tl_splitmix64(&x);
    uint64_t y = stream ^ mix;
    for (int i = 0; i < 4; i++) s[i] = tl_splitmix64(&y);
}

/* Uniform double in [0, 1) with 53 random bits. */
static double rng_uniform(uint64_t s[4]) { return (double)(rng_next(s) >> 11) * 0x1.0p-53; }

/* ---- life cycle ----------------------------------------------------------------------------- */
static size_t vocab_bytes(const tl_sampler *s, size_t elem) { return (size_t)s->vocab * elem; }

void tl_sampler_free(tl_sampler *s) {
    if (!s) return;
    tl_free(s->gen_count, vocab_bytes(s, sizeof(int32_t)), TL_MEM_SCRATCH);
    tl_free(s->mark, vocab_bytes(s, sizeof(uint32_t)), TL_MEM_SCRATCH);
    tl_free(s->cand, vocab_bytes(s, sizeof(int32_t)), TL_MEM_SCRATCH);
    tl_free(s->cp, vocab_bytes(s, sizeof(float)), TL_MEM_SCRATCH);
    tl_free(s->tmp, vocab_bytes(s, sizeof(float)), TL_MEM_SCRATCH);
    tl_free(s->cand2, vocab_bytes(s, sizeof(int32_t)), TL_MEM_SCRATCH);
    free(s->bin_mass);
    free(s->bias);
    free(s->xtc_protect);
    free(s->ctx);
    free(s->gen_ids);
    free(s);
}

int tl_sampler_new(tl_sampler **out, const tl_sample_params *p, int vocab_size, tl_err *err) {
    *out = NULL;
    if (vocab_size <= 0)
        return tl_err_set(err, TL_EINVAL, "sampler: vocabulary size must be > 0, got %d",
                          vocab_size);
    int rc = tl_sample_params_check(p, vocab_size, err);
    if (rc) return rc;
    tl_sampler *s = calloc(1, sizeof *s);
    if (!s) return tl_err_set(err, TL_ENOMEM, "sampler: out of memory");
    s->p = *p;
    if (s->p.min_keep < 1) s->p.min_keep = 1;
    if (s->p.repetition_penalty == 0.0f) s->p.repetition_penalty = 1.0f;
    s->vocab = vocab_size;
    if (p->n_bias > 0) {
        s->bias = malloc((size_t)p->n_bias * sizeof *s->bias);
        if (!s->bias) goto oom;
        memcpy(s->bias, p->bias, (size_t)p->n_bias * sizeof *s->bias);
    }
    s->p.bias = s->bias;
    if (p->n_xtc_protect > 0) {
        s->xtc_protect = malloc((size_t)p->n_xtc_protect * sizeof *s->xtc_protect);
        if (!s->xtc_protect) goto oom;
        memcpy(s->xtc_protect, p->xtc_protect, (size_t)p->n_xtc_protect * sizeof *s->xtc_protect);
    }
    s->p.xtc_protect = s->xtc_protect;
    s->gen_count = tl_alloc(vocab_bytes(s, sizeof(int32_t)), TL_MEM_SCRATCH);
    s->mark = tl_alloc(vocab_bytes(s, sizeof(uint32_t)), TL_MEM_SCRATCH);
    s->cand = tl_alloc(vocab_bytes(s, sizeof(int32_t)), TL_MEM_SCRATCH);
    s->cp = tl_alloc(vocab_bytes(s, sizeof(float)), TL_MEM_SCRATCH);
    s->tmp = tl_alloc(vocab_bytes(s, sizeof(float)), TL_MEM_SCRATCH);
    s->cand2 = tl_alloc(vocab_bytes(s, sizeof(int32_t)), TL_MEM_SCRATCH);
    s->bin_mass = malloc(4096 * sizeof(double));
    if (!s->gen_count || !s->mark || !s->cand || !s->cp || !s->tmp || !s->cand2 || !s->bin_mass)
        goto oom;
    rng_seed(s->rng, s->p.seed, s->p.stream);
    *out = s;
    return 0;
oom:
    tl_sampler_free(s);
    return tl_err_set(err, TL_ENOMEM, "sampler: out of memory for a vocabulary of %d",
                      vocab_size);
}

void tl_sampler_reset(tl_sampler *s) {
    for (int i = 0; i < s->n_gen_ids; i++) s->gen_count[s->gen_ids[i]] = 0;
    s->n_gen_ids = 0;
    s->n_ctx = 0;
    rng_seed(s->rng, s->p.seed, s->p.stream);
}

int tl_sampler_accept(tl_sampler *s, const int32_t *ids, int n, int generated, tl_err *err) {
    if (n < 0) return tl_err_set(err, TL_EINVAL, "sampler: negative token count");
    if (n == 0) return 0;
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= s->vocab)
            return tl_err_set(err, TL_EINVAL, "sampler: token id %d at index %d is outside the "
                              "vocabulary [0, %d)", (int)ids[i], i, s->vocab);
    if (s->n_ctx > INT32_MAX - n) return tl_err_set(err, TL_ELIMIT, "sampler: history too long");
    if (s->n_ctx + n > s->cap_ctx) {
        int cap = s->cap_ctx ? s->cap_ctx : 256;
        while (cap < s->n_ctx + n) cap = cap > INT32_MAX / 2 ? INT32_MAX : cap * 2;
        int32_t *nc = realloc(s->ctx, (size_t)cap * sizeof *nc);
        if (!nc) return tl_err_set(err, TL_ENOMEM, "sampler: out of memory for the history");
        s->ctx = nc;
        s->cap_ctx = cap;
    }
    memcpy(s->ctx + s->n_ctx, ids, (size_t)n * sizeof *ids);
    s->n_ctx += n;
    if (!generated) return 0;
    for (int i = 0; i < n; i++) {
        if (s->gen_count[ids[i]]++ == 0) {
            if (s->n_gen_ids == s->cap_gen_ids) {
                int cap = s->cap_gen_ids ? s->cap_gen_ids * 2 : 64;
                int32_t *ng = realloc(s->gen_ids, (size_t)cap * sizeof *ng);
                if (!ng) return tl_err_set(err, TL_ENOMEM, "sampler: out of memory");
                s->gen_ids = ng;
                s->cap_gen_ids = cap;
            }
            s->gen_ids[s->n_gen_ids++] = ids[i];
        }
    }
    return 0;
}

/* ---- the chain ------------------------------------------------------------------------------ */
static void apply_bias_and_penalties(tl_sampler *s, float *logits) {
    for (int i = 0; i < s->p.n_bias; i++) logits[s->bias[i].id] += s->bias[i].bias;
    float rp = s->p.repetition_penalty;
    if (rp != 1.0f && s->n_ctx > 0) {
        if (++s->stamp == 0) { /* wrapped: clear marks */
            memset(s->mark, 0, vocab_bytes(s, sizeof(uint32_t)));
            s->stamp = 1;
        }
        int from = 0;
        if (s->p.repetition_context_size > 0 && s->n_ctx > s->p.repetition_context_size)
            from = s->n_ctx - s->p.repetition_context_size;
        for (int i = from; i < s->n_ctx; i++) {
            int32_t id = s->ctx[i];
            if (s->mark[id] == s->stamp) continue;
            s->mark[id] = s->stamp;
            logits[id] = logits[id] < 0 ? logits[id] * rp : logits[id] / rp;
        }
    }
    float pp = s->p.presence_penalty, fp = s->p.frequency_penalty;
    if (pp != 0.0f || fp != 0.0f)
        for (int i = 0; i < s->n_gen_ids; i++) {
            int32_t id = s->gen_ids[i];
            logits[id] -= pp + fp * (float)s->gen_count[id];
        }
}

static int argmax(const float *x, int n) {
    int best = 0;
    while (best < n - 1 && isnan(x[best])) best++; /* NaN never wins a comparison */
    float bv = x[best];
    for (int i = best + 1; i < n; i++)
        if (x[i] > bv) bv = x[i], best = i;
    return best;
}

/* k-th largest of x[0..n) for small k: one pass keeping the k largest in a min-heap (most
 * values fail the first comparison, so this runs at memory speed). heap holds k floats. */
static float kth_largest_heap(float *heap, const float *x, int n, int k) {
    int h = 0;
    for (int i = 0; i < n; i++) {
        float v = x[i];
        if (isnan(v)) continue;
        if (h < k) { /* sift up */
            int j = h++;
            while (j > 0 && heap[(j - 1) / 2] > v) {
                heap[j] = heap[(j - 1) / 2];
                j = (j - 1) / 2;
            }
            heap[j] = v;
        } else if (v > heap[0]) { /* replace the minimum, sift down */
            int j = 0;
            for (;;) {
                int c = 2 * j + 1;
                if (c >= k) break;
                if (c + 1 < k && heap[c + 1] < heap[c]) c++;
                if (heap[c] >= v) break;
                heap[j] = heap[c];
                j = c;
            }
            heap[j] = v;
        }
    }
    return h < k ? -INFINITY : heap[0];
}

/* k-th largest value (1-based k) of x[0..n) by quickselect on a copy. */
static float kth_largest(float *tmp, const float *x, int n, int k) {
    memcpy(tmp, x, (size_t)n * sizeof *x);
    int lo = 0, hi = n - 1, want = k - 1; /* index in descending order */
    while (lo < hi) {
        float pivot = tmp[lo + (hi - lo) / 2];
        int i = lo, j = hi;
        while (i <= j) {
            while (tmp[i] > pivot) i++;
            while (tmp[j] < pivot) j--;
            if (i <= j) {
                float t = tmp[i];
                tmp[i] = tmp[j];
                tmp[j] = t;
                i++;
                j--;
            }
        }
        if (want <= j) hi = j;
        else if (want >= i) lo = i;
        else break;
    }
    return tmp[want];
}

typedef struct {
    float p;
    int32_t id;
} pid;

static int cmp_desc(const void *a, const void *b) {
    const pid *x = a, *y = b;
    if (x->p != y->p) return x->p < y->p ? 1 : -1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* Sort candidates [at, at+n) by probability, descending (ties: lower id first). */
static int sort_candidates_at(tl_sampler *s, int at, int n) {
    if (n <= 1) return 0;
    pid *v = malloc((size_t)n * sizeof *v);
    if (!v) return -1;
    for (int i = 0; i < n; i++) v[i] = (pid){s->cp[at + i], s->cand[at + i]};
    qsort(v, (size_t)n, sizeof *v, cmp_desc);
    for (int i = 0; i < n; i++) {
        s->cp[at + i] = v[i].p;
        s->cand[at + i] = v[i].id;
    }
    free(v);
    return 0;
}

static int sort_candidates(tl_sampler *s, int n) { return sort_candidates_at(s, 0, n); }

/* Top-p on candidates whose probabilities sum to 1, without sorting them all: bucket the
 * probabilities by the top 13 bits of their float representation (monotonic for p >= 0), keep
 * every bucket above the one where the descending cumulative mass reaches top_p, and sort only
 * that boundary bucket to walk it exactly as transformers does (keep while the mass before a
 * token is < top_p). Returns the number kept, or -1 when sorting the boundary bucket could not
 * allocate (min_keep > 1 never comes here: that takes the full sort). */
enum { NBINS = 4096 };

static inline int prob_bin(float p) {
    uint32_t u;
    memcpy(&u, &p, 4);
    return (int)(u >> 19) & (NBINS - 1);
}

static int top_p_select(tl_sampler *s, int n, float top_p) {
    double *mass = s->bin_mass;
    memset(mass, 0, NBINS * sizeof *mass);
    for (int i = 0; i < n; i++) mass[prob_bin(s->cp[i])] += s->cp[i];
    double above = 0;
    int J = 0;
    for (int b = NBINS - 1; b >= 0; b--) {
        if (above + mass[b] >= top_p) {
            J = b;
            break;
        }
        above += mass[b];
    }
    int m = 0, nj = 0;
    for (int i = 0; i < n; i++) {
        int b = prob_bin(s->cp[i]);
        if (b > J) { /* compaction in place: m <= i */
            s->cand[m] = s->cand[i];
            s->cp[m] = s->cp[i];
            m++;
        } else if (b == J) {
            s->cand2[nj] = s->cand[i];
            s->tmp[nj] = s->cp[i];
            nj++;
        }
    }
    memcpy(s->cand + m, s->cand2, (size_t)nj * sizeof *s->cand);
    memcpy(s->cp + m, s->tmp, (size_t)nj * sizeof *s->cp);
    if (sort_candidates_at(s, m, nj)) return -1;
    double before = above;
    int k = 0;
    while (k < nj && before < top_p) before += s->cp[m + k++];
    return m + k;
}

/* Fill s->cand / s->cp with the kept tokens and their renormalised probabilities. */
static int sampler_filter(tl_sampler *s, float *logits) {
    int V = s->vocab;
    apply_bias_and_penalties(s, logits);
    const tl_sample_params *p = &s->p;
    if (p->temperature <= 0.0f || p->top_k == 1) {
        s->cand[0] = argmax(logits, V);
        s->cp[0] = 1.0f;
        return s->n_cand = 1;
    }
    float inv_t = 1.0f / p->temperature;
    for (int i = 0; i < V; i++) logits[i] *= inv_t;

    /* top-k (ties at the boundary kept, as transformers does) */
    float floor_v = -INFINITY;
    if (p->top_k > 0 && p->top_k < V)
        floor_v = p->top_k <= 1024 ? kth_largest_heap(s->tmp, logits, V, p->top_k)
                                   : kth_largest(s->tmp, logits, V, p->top_k);
    int n = 0;
    float mx = -INFINITY;
    for (int i = 0; i < V; i++) {
        float l = logits[i];
        if (!(l >= floor_v) || l == -INFINITY) continue;
        s->cand[n] = i;
        s->cp[n] = l;
        if (l > mx) mx = l;
        n++;
    }
    if (n == 0 || mx == INFINITY) { /* every logit -inf or NaN, or +inf present: greedy */
        s->cand[0] = argmax(logits, V);
        s->cp[0] = 1.0f;
        return s->n_cand = 1;
    }
    double sum = 0;
    for (int i = 0; i < n; i++) {
        s->cp[i] = expf(s->cp[i] - mx);
        sum += s->cp[i];
    }
    for (int i = 0; i < n; i++) s->cp[i] = (float)(s->cp[i] / sum);

    int sorted = 0;
    if (p->top_p < 1.0f && p->min_keep <= 1) {
        n = top_p_select(s, n, p->top_p);
        if (n < 0) return -1;
    } else if (p->top_p < 1.0f) { /* min_keep > 1: the plain way, a full sort */
        if (sort_candidates(s, n)) return -1;
        sorted = 1;
        double before = 0;
        int keep = 0;
        while (keep < n && (before < p->top_p || keep < p->min_keep)) before += s->cp[keep++];
        n = keep;
    }
    if (p->min_p > 0.0f) {
        float pmax = 0;
        for (int i = 0; i < n; i++)
            if (s->cp[i] > pmax) pmax = s->cp[i];
        float thr = p->min_p * pmax;
        int m = 0;
        for (int i = 0; i < n; i++)
            if (s->cp[i] >= thr) m++;
        if (m < p->min_keep && !sorted) {
            if (sort_candidates(s, n)) return -1;
            sorted = 1;
        }
        if (sorted) {
            int keep = 0;
            while (keep < n && (s->cp[keep] >= thr || keep < p->min_keep)) keep++;
            n = keep;
        } else {
            int k = 0;
            for (int i = 0; i < n; i++)
                if (s->cp[i] >= thr) {
                    s->cand[k] = s->cand[i];
                    s->cp[k] = s->cp[i];
                    k++;
                }
            n = k;
        }
    }
    if (p->xtc_probability > 0.0f && n > 1) {
        /* mlx-lm: probabilities of the current set, one uniform draw per step */
        sum = 0;
        for (int i = 0; i < n; i++) sum += s->cp[i];
        double u = rng_uniform(s->rng);
        if (u <= p->xtc_probability) {
            float thr = (float)(p->xtc_threshold * sum), pmin = INFINITY;
            for (int i = 0; i < n; i++)
                if (s->cp[i] > thr && s->cp[i] < pmin) pmin = s->cp[i];
            int k = 0;
            for (int i = 0; i < n; i++) {
                int drop = s->cp[i] > pmin;
                for (int j = 0; drop && j < p->n_xtc_protect; j++)
                    if (s->xtc_protect[j] == s->cand[i]) drop = 0;
                if (!drop) {
                    s->cand[k] = s->cand[i];
                    s->cp[k] = s->cp[i];
                    k++;
                }
            }
            n = k;
        }
    }
    sum = 0;
    for (int i = 0; i < n; i++) sum += s->cp[i];
    for (int i = 0; i < n; i++) s->cp[i] = (float)(s->cp[i] / sum);
    return s->n_cand = n;
}

int32_t tl_sampler_sample(tl_sampler *s, float *logits) {
    int n = sampler_filter(s, logits);
    if (n <= 0) return argmax(logits, s->vocab); /* scratch allocation failed: stay usable */
    if (n == 1) return s->cand[0];
    double u = rng_uniform(s->rng), acc = 0;
    for (int i = 0; i < n; i++) {
        acc += s->cp[i];
        if (u < acc) return s->cand[i];
    }
    return s->cand[n - 1];
}

int tl_sampler_probs(tl_sampler *s, float *logits, float *probs) {
    int n = sampler_filter(s, logits);
    memset(probs, 0, (size_t)s->vocab * sizeof *probs);
    if (n <= 0) {
        probs[argmax(logits, s->vocab)] = 1.0f;
        return 1;
    }
    for (int i = 0; i < n; i++) probs[s->cand[i]] = s->cp[i];
    return n;
}
