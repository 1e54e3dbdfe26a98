/* synth.c — write a random-weight model with a real model's exact configuration and shapes.
 *
 * Contract: tl_synth_write(opts) writes, into opts->out_dir, what an mlx-community repo holds —
 * model.safetensors (or model-0000i-of-0000n shards past 5 GB, as mlx-lm shards) and its
 * model.safetensors.index.json, config.json (with "tallow_synthetic": true), generation_config.json,
 * tokenizer.json, tokenizer_config.json and chat_template.jinja — for qwen3.5-0.8b/2b/4b or
 * llama-3.2-3b (../shared/docs/models.md §1.1, §4.1). Weights are MLX affine 4/8-bit (packed
 * uint32 + bf16 scales/biases, group 64, every Linear and the Embedding incl. in_proj_a/b) or bf16.
 * The layout is mlx-lm's sanitized one: conv1d [C,K,1], zero-centred norms stored shifted (~1).
 *
 * Weights are streamed (a few MB of memory for any size), deterministic for a seed, and each
 * tensor's values depend only on (seed, tensor name), so a shallower model (opts->layers) has
 * the same first layers. Values keep activations sane: linear weights uniform with std 0.02,
 * norms ~1, A_log = log(U[1,16]), dt_bias ~1. config.json is written last, so a directory
 * without it is an interrupted run. The tokenizer is a byte-level BPE of the real vocabulary size
 * (256 byte tokens + generated merges) with the family's real special tokens at their real ids,
 * pre-tokenizer and normalizer; the chat template is the real one when the shared fixtures are
 * found, else a small template of the same shape. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"

#define SHARD_MAX_BYTES (5ull << 30) /* mlx-lm's default max_file_size_gb */
#define GROUP 64
#define CHUNK (4u << 20)

typedef struct spec {
    const char *like;
    int qwen;
    int hidden, layers, heads, kv_heads, head_dim, inter, vocab, lin_v_heads, max_pos;
} spec;

static const spec specs[] = {
    {"qwen3.5-0.8b", 1, 1024, 24, 8, 2, 256, 3584, 248320, 16, 262144},
    {"qwen3.5-2b", 1, 2048, 24, 8, 2, 256, 6144, 248320, 16, 262144},
    {"qwen3.5-4b", 1, 2560, 32, 16, 4, 256, 9216, 248320, 32, 262144},
    {"llama-3.2-3b", 0, 3072, 28, 24, 8, 128, 8192, 128256, 0, 131072},
};
enum { LIN_K_HEADS = 16, LIN_DK = 128, LIN_DV = 128, CONV_K = 4 };

const char *tl_synth_names(void) {
    return "qwen3.5-0.8b, qwen3.5-2b, qwen3.5-4b, llama-3.2-3b";
}

/* ---- random numbers: splitmix64 to seed, xorshift64* to stream ---- */
static uint64_t mix64(uint64_t x) { return tl_splitmix64(&x); }
static uint64_t next64(uint64_t *s) {
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}
static float unit(uint64_t r) { /* [0, 1) */
    return (float)(r >> 40) * (1.0f / 16777216.0f);
}
static uint64_t name_key(uint64_t seed, const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return mix64(h ^ mix64(seed));
}

/* ---- the tensor plan ---- */
typedef enum { G_QWEIGHT, G_QSCALES, G_QBIASES, G_DENSE, G_NORM, G_CONV, G_ALOG, G_DTBIAS } gen_kind;

typedef struct plan_t {
    char name[128];
    tl_dtype dt;
    int ndim;
    int64_t shape[3];
    gen_kind kind;
    uint64_t key; /* of the module, so a weight's scales and biases agree */
    int64_t params;
    size_t nbytes;
    int shard;
    uint64_t off;
} plan_t;

typedef struct plan {
    plan_t *t;
    int n, cap;
    int bits;
    uint64_t seed;
    int oom;
} plan;

static plan_t *plan_add(plan *p, const char *name, tl_dtype dt, int ndim, int64_t d0, int64_t d1,
                        int64_t d2, gen_kind kind, uint64_t key) {
    if (p->n == p->cap) {
        int cap = p->cap ? p->cap * 2 : 256;
        plan_t *t = realloc(p->t, (size_t)cap * sizeof *t);
        if (!t) {
            p->oom = 1;
            return NULL;
        }
        p->t = t;
        p->cap = cap;
    }
    plan_t *e = &p->t[p->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->dt = dt;
    e->ndim = ndim;
    e->shape[0] = d0;
    e->shape[1] = d1;
    e->shape[2] = d2;
    e->kind = kind;
    e->key = key ? key : name_key(p->seed, name);
    size_t n = tl_dtype_size(dt);
    for (int i = 0; i < ndim; i++) n *= (size_t)e->shape[i];
    e->nbytes = n;
    e->params = kind == G_QSCALES || kind == G_QBIASES ? 0 : (int64_t)(n / tl_dtype_size(dt));
    return e;
}

/* A Linear or Embedding [out, in]: packed + scales + biases, or bf16 when bits == 16. */
static void add_linear(plan *p, const char *module, int64_t out, int64_t in) {
    char nm[160];
    uint64_t key = name_key(p->seed, module);
    snprintf(nm, sizeof nm, "%s.weight", module);
    if (p->bits == 16) {
        plan_add(p, nm, TL_DT_BF16, 2, out, in, 0, G_DENSE, key);
        return;
    }
    plan_t *w = plan_add(p, nm, TL_DT_U32, 2, out, in * p->bits / 32, 0, G_QWEIGHT, key);
    if (w) w->params = out * in;
    snprintf(nm, sizeof nm, "%s.scales", module);
    plan_add(p, nm, TL_DT_BF16, 2, out, in / GROUP, 0, G_QSCALES, key);
    snprintf(nm, sizeof nm, "%s.biases", module);
    plan_add(p, nm, TL_DT_BF16, 2, out, in / GROUP, 0, G_QBIASES, key);
}

static void add_vec(plan *p, const char *module, const char *leaf, int64_t n, tl_dtype dt,
                    gen_kind kind) {
    char nm[160];
    snprintf(nm, sizeof nm, "%s.%s", module, leaf);
    plan_add(p, nm, dt, 1, n, 0, 0, kind, 0);
}

static int qwen_layer_full(int i) {
    return (i + 1) % 4 == 0;
}

static void build_plan(plan *p, const spec *s, int layers) {
    const char *pre = s->qwen ? "language_model.model" : "model";
    char m[160], l[160];
    int64_t H = s->hidden;
    snprintf(m, sizeof m, "%s.embed_tokens", pre);
    add_linear(p, m, s->vocab, H);
    for (int i = 0; i < layers; i++) {
        snprintf(l, sizeof l, "%s.layers.%d", pre, i);
        snprintf(m, sizeof m, "%s.input_layernorm", l);
        add_vec(p, m, "weight", H, TL_DT_BF16, G_NORM);
        snprintf(m, sizeof m, "%s.post_attention_layernorm", l);
        add_vec(p, m, "weight", H, TL_DT_BF16, G_NORM);
        if (s->qwen && !qwen_layer_full(i)) {
            int64_t hv = s->lin_v_heads, conv = 2 * LIN_K_HEADS * LIN_DK + hv * LIN_DV;
            snprintf(m, sizeof m, "%s.linear_attn.in_proj_qkv", l);
            add_linear(p, m, conv, H);
            snprintf(m, sizeof m, "%s.linear_attn.in_proj_z", l);
            add_linear(p, m, hv * LIN_DV, H);
            snprintf(m, sizeof m, "%s.linear_attn.in_proj_b", l);
            add_linear(p, m, hv, H);
            snprintf(m, sizeof m, "%s.linear_attn.in_proj_a", l);
            add_linear(p, m, hv, H);
            snprintf(m, sizeof m, "%s.linear_attn.conv1d.weight", l);
            plan_add(p, m, TL_DT_BF16, 3, conv, CONV_K, 1, G_CONV, 0);
            snprintf(m, sizeof m, "%s.linear_attn", l);
            add_vec(p, m, "dt_bias", hv, TL_DT_BF16, G_DTBIAS);
            add_vec(p, m, "A_log", hv, TL_DT_F32, G_ALOG);
            snprintf(m, sizeof m, "%s.linear_attn.norm", l);
            add_vec(p, m, "weight", LIN_DV, TL_DT_BF16, G_NORM);
            snprintf(m, sizeof m, "%s.linear_attn.out_proj", l);
            add_linear(p, m, H, hv * LIN_DV);
        } else {
            int64_t q = (int64_t)s->heads * s->head_dim, kv = (int64_t)s->kv_heads * s->head_dim;
            snprintf(m, sizeof m, "%s.self_attn.q_proj", l);
            add_linear(p, m, s->qwen ? 2 * q : q, H); /* Qwen3.5: gate rows beside the queries */
            snprintf(m, sizeof m, "%s.self_attn.k_proj", l);
            add_linear(p, m, kv, H);
            snprintf(m, sizeof m, "%s.self_attn.v_proj", l);
            add_linear(p, m, kv, H);
            snprintf(m, sizeof m, "%s.self_attn.o_proj", l);
            add_linear(p, m, H, q);
            if (s->qwen) {
                snprintf(m, sizeof m, "%s.self_attn.q_norm", l);
                add_vec(p, m, "weight", s->head_dim, TL_DT_BF16, G_NORM);
                snprintf(m, sizeof m, "%s.self_attn.k_norm", l);
                add_vec(p, m, "weight", s->head_dim, TL_DT_BF16, G_NORM);
            }
        }
        snprintf(m, sizeof m, "%s.mlp.gate_proj", l);
        add_linear(p, m, s->inter, H);
        snprintf(m, sizeof m, "%s.mlp.up_proj", l);
        add_linear(p, m, s->inter, H);
        snprintf(m, sizeof m, "%s.mlp.down_proj", l);
        add_linear(p, m, H, s->inter);
    }
    snprintf(m, sizeof m, "%s.norm", pre);
    add_vec(p, m, "weight", H, TL_DT_BF16, G_NORM);
}

/* ---- values ---- */
#define W_STD 0.02f

/* The scale of quantization group g of a module: uniform codes times s have std W_STD * jitter. */
static float group_scale(uint64_t key, uint64_t g, int bits) {
    float n = (float)((1 << bits) - 1);
    float std_q = sqrtf(((n + 1) * (n + 1) - 1) / 12.0f);
    return W_STD / std_q * (0.75f + 0.5f * unit(mix64(key ^ (g * 0x9e3779b97f4a7c15ull))));
}

static void fill(const plan_t *t, int bits, uint64_t *rng, uint64_t at, uint8_t *buf, size_t n) {
    size_t i;
    switch (t->kind) {
    case G_QWEIGHT: /* any uint32 is a valid row of 4- or 8-bit codes */
        for (i = 0; i + 8 <= n; i += 8) {
            uint64_t r = next64(rng);
            memcpy(buf + i, &r, 8);
        }
        for (; i < n; i++) buf[i] = (uint8_t)next64(rng);
        break;
    case G_QSCALES:
    case G_QBIASES: {
        uint16_t *o = (uint16_t *)buf;
        float half = (float)((1 << bits) - 1) / 2.0f;
        for (i = 0; i < n / 2; i++) {
            float s = group_scale(t->key, at / 2 + i, bits);
            o[i] = tl_f32_to_bf16(t->kind == G_QSCALES ? s : -s * half);
        }
        break;
    }
    case G_DENSE:
    case G_NORM:
    case G_CONV:
    case G_DTBIAS: {
        uint16_t *o = (uint16_t *)buf;
        float a = W_STD * 1.7320508f, c = 0;
        if (t->kind == G_NORM) a = 0.05f, c = 1.0f;
        if (t->kind == G_CONV) a = 0.5f;
        if (t->kind == G_DTBIAS) a = 0.1f, c = 1.0f;
        for (i = 0; i < n / 2; i++) o[i] = tl_f32_to_bf16(c + a * (2.0f * unit(next64(rng)) - 1.0f));
        break;
    }
    case G_ALOG: {
        for (i = 0; i + 4 <= n; i += 4) {
            float v = logf(1.0f + 15.0f * unit(next64(rng)));
            memcpy(buf + i, &v, 4);
        }
        break;
    }
    }
}

/* ---- files ---- */
static int write_text(const char *dir, const char *name, const char *text, tl_err *err) {
    char path[4096];
    if (tl_path_join(path, sizeof path, dir, name))
        return tl_err_set(err, TL_EINVAL, "%s: path too long", dir);
    FILE *f = fopen(path, "wb");
    if (!f) return tl_err_set(err, TL_EIO, "%s: cannot create: %s", path, strerror(errno));
    size_t n = strlen(text);
    int bad = fwrite(text, 1, n, f) != n;
    bad |= fclose(f) != 0;
    return bad ? tl_err_set(err, TL_EIO, "%s: write failed (disk full?)", path) : 0;
}

static int write_json(const char *dir, const char *name, json_t *j, tl_err *err) {
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(j);
    if (!s) return tl_err_set(err, TL_ENOMEM, "%s: out of memory", name);
    size_t n = strlen(s);
    char *t = realloc(s, n + 2);
    if (!t) {
        free(s);
        return tl_err_set(err, TL_ENOMEM, "%s: out of memory", name);
    }
    t[n] = '\n';
    t[n + 1] = 0;
    int rc = write_text(dir, name, t, err);
    free(t);
    return rc;
}

static void remove_old_weights(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    char path[4096];
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (strncmp(de->d_name, "model", 5) || l < 17 || strcmp(de->d_name + l - 12, ".safetensors"))
            continue;
        if (!tl_path_join(path, sizeof path, dir, de->d_name)) unlink(path);
    }
    closedir(d);
}

static int write_shard(const plan *p, int shard, const char *path, uint8_t *buf, tl_err *err) {
    json_t *h = json_object();
    json_object_set_new(h, "__metadata__", json_pack("{s:s}", "format", "mlx"));
    for (int i = 0; i < p->n; i++) {
        const plan_t *t = &p->t[i];
        if (t->shard != shard) continue;
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++) json_array_append_new(shape, json_integer(t->shape[d]));
        json_object_set_new(h, t->name,
                            json_pack("{s:s,s:o,s:[I,I]}", "dtype", tl_dtype_name(t->dt), "shape",
                                      shape, "data_offsets", (json_int_t)t->off,
                                      (json_int_t)(t->off + t->nbytes)));
    }
    char *hs = json_dumps(h, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(h);
    if (!hs) return tl_err_set(err, TL_ENOMEM, "%s: out of memory for the header", path);
    size_t hl = strlen(hs), padded = (hl + 7) & ~(size_t)7;
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(hs);
        return tl_err_set(err, TL_EIO, "%s: cannot create: %s", path, strerror(errno));
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    int bad = fwrite(len8, 1, 8, f) != 8 || fwrite(hs, 1, hl, f) != hl;
    for (size_t i = hl; i < padded && !bad; i++) bad = fputc(' ', f) == EOF;
    free(hs);
    for (int i = 0; i < p->n && !bad; i++) {
        const plan_t *t = &p->t[i];
        if (t->shard != shard) continue;
        uint64_t rng = t->key ^ mix64((uint64_t)t->kind + 1);
        if (!rng) rng = 1;
        for (size_t at = 0; at < t->nbytes && !bad; at += CHUNK) {
            size_t n = TL_MIN((size_t)CHUNK, t->nbytes - at);
            fill(t, p->bits, &rng, at, buf, n);
            bad = fwrite(buf, 1, n, f) != n;
        }
    }
    bad |= fclose(f) != 0;
    return bad ? tl_err_set(err, TL_EIO, "%s: write failed (disk full?)", path) : 0;
}

/* ---- tokenizer ---- */
static const char *qwen_specials[] = {
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|object_ref_start|>", "<|object_ref_end|>",
    "<|box_start|>", "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_start|>",
    "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>", "<tool_call>",
    "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>", "<|fim_pad|>",
    "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>", "<think>", "</think>",
};
#define QWEN_FIRST_SPECIAL 248044
#define LLAMA_FIRST_SPECIAL 128000

static void llama_special(int id, char *out, size_t cap) {
    static const char *fixed[] = {"<|begin_of_text|>", "<|end_of_text|>",
                                  "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
                                  "<|finetune_right_pad_id|>", "<|reserved_special_token_2|>",
                                  "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>",
                                  "<|eot_id|>", "<|python_tag|>"};
    int k = id - LLAMA_FIRST_SPECIAL;
    if (k < (int)TL_ARRAY_LEN(fixed)) snprintf(out, cap, "%s", fixed[k]);
    else snprintf(out, cap, "<|reserved_special_token_%d|>", k - 8);
}

/* GPT-2's byte -> printable code point mapping, as UTF-8. */
static void byte_unicode(int b, char out[4]) {
    int cp;
    if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255)) cp = b;
    else {
        int n = 0;
        for (int x = 0; x < b; x++)
            if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || (x >= 174 && x <= 255))) n++;
        cp = 256 + n;
    }
    if (cp < 0x80) out[0] = (char)cp, out[1] = 0;
    else out[0] = (char)(0xc0 | (cp >> 6)), out[1] = (char)(0x80 | (cp & 0x3f)), out[2] = 0;
}

static void put_json_str(FILE *f, const char *s) {
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\') fputc('\\', f);
        fputc(*s, f);
    }
    fputc('"', f);
}

static const char *QWEN_REGEX =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?[\\\\p{L}\\\\p{M}]+|\\\\p{N}| "
    "?[^\\\\s\\\\p{L}\\\\p{M}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+";
static const char *LLAMA_REGEX =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\\\r\\\\n\\\\p{L}\\\\p{N}]?\\\\p{L}+|\\\\p{N}{1,3}| "
    "?[^\\\\s\\\\p{L}\\\\p{N}]+[\\\\r\\\\n]*|\\\\s*[\\\\r\\\\n]+|\\\\s+(?!\\\\S)|\\\\s+";

/* Byte-level BPE: ids 0..255 bytes, then merges of pairs, then pair+byte, up to n_regular. */
static int write_tokenizer(const char *dir, const spec *s, tl_err *err) {
    char path[4096];
    if (tl_path_join(path, sizeof path, dir, "tokenizer.json"))
        return tl_err_set(err, TL_EINVAL, "%s: path too long", dir);
    FILE *f = fopen(path, "wb");
    if (!f) return tl_err_set(err, TL_EIO, "%s: cannot create: %s", path, strerror(errno));
    int first_special = s->qwen ? QWEN_FIRST_SPECIAL : LLAMA_FIRST_SPECIAL;
    int n_special = s->vocab - first_special;
    /* The merge alphabet: space, letters, digits, punctuation, newline. */
    int alpha[128], na = 0;
    alpha[na++] = ' ';
    for (int c = 'a'; c <= 'z'; c++) alpha[na++] = c;
    for (int c = 'A'; c <= 'Z'; c++) alpha[na++] = c;
    for (int c = '0'; c <= '9'; c++) alpha[na++] = c;
    for (int c = 33; c < 127; c++)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) alpha[na++] = c;
    alpha[na++] = '\n';
    char bu[256][4];
    for (int b = 0; b < 256; b++) byte_unicode(b, bu[b]);

    fprintf(f, "{\n  \"version\": \"1.0\",\n  \"truncation\": null,\n  \"padding\": null,\n");
    fprintf(f, "  \"added_tokens\": [");
    char sp[64];
    for (int k = 0; k < n_special; k++) {
        int id = first_special + k;
        if (s->qwen) {
            if (k < (int)TL_ARRAY_LEN(qwen_specials)) snprintf(sp, sizeof sp, "%s", qwen_specials[k]);
            else snprintf(sp, sizeof sp, "<|extra_%d|>", k - (int)TL_ARRAY_LEN(qwen_specials));
        } else {
            llama_special(id, sp, sizeof sp);
        }
        fprintf(f, "%s\n    {\"id\": %d, \"content\": \"%s\", \"single_word\": false, \"lstrip\": false, "
                   "\"rstrip\": false, \"normalized\": false, \"special\": true}",
                k ? "," : "", id, sp);
    }
    fprintf(f, "\n  ],\n");
    if (s->qwen) fprintf(f, "  \"normalizer\": {\"type\": \"NFC\"},\n");
    else fprintf(f, "  \"normalizer\": null,\n");
    fprintf(f, "  \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"Split\", "
               "\"pattern\": {\"Regex\": \"%s\"}, \"behavior\": \"Isolated\", \"invert\": false}, "
               "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"trim_offsets\": %s, "
               "\"use_regex\": false}]},\n",
            s->qwen ? QWEN_REGEX : LLAMA_REGEX, s->qwen ? "false" : "true");
    if (s->qwen)
        fprintf(f, "  \"post_processor\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, "
                   "\"trim_offsets\": false, \"use_regex\": false},\n");
    else
        fprintf(f, "  \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": "
                   "[{\"SpecialToken\": {\"id\": \"<|begin_of_text|>\", \"type_id\": 0}}, "
                   "{\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}], \"pair\": "
                   "[{\"SpecialToken\": {\"id\": \"<|begin_of_text|>\", \"type_id\": 0}}, "
                   "{\"Sequence\": {\"id\": \"A\", \"type_id\": 0}}, "
                   "{\"SpecialToken\": {\"id\": \"<|begin_of_text|>\", \"type_id\": 1}}, "
                   "{\"Sequence\": {\"id\": \"B\", \"type_id\": 1}}], \"special_tokens\": "
                   "{\"<|begin_of_text|>\": {\"id\": \"<|begin_of_text|>\", \"ids\": [128000], "
                   "\"tokens\": [\"<|begin_of_text|>\"]}}},\n");
    fprintf(f, "  \"decoder\": {\"type\": \"ByteLevel\", \"add_prefix_space\": false, "
               "\"trim_offsets\": false, \"use_regex\": false},\n");
    fprintf(f, "  \"model\": {\"type\": \"BPE\", \"dropout\": null, \"unk_token\": null, "
               "\"continuing_subword_prefix\": null, \"end_of_word_suffix\": null, \"fuse_unk\": false, "
               "\"byte_fallback\": false, \"ignore_merges\": %s,\n    \"vocab\": {",
            s->qwen ? "false" : "true");
    int n_merges = first_special - 256;
    char tok[16];
    for (int b = 0; b < 256; b++) {
        fprintf(f, "%s\n      ", b ? "," : "");
        put_json_str(f, bu[b]);
        fprintf(f, ": %d", b);
    }
    /* k-th merge: k < na*na -> alpha[i] alpha[j]; else pair (k' / na) + alpha[k' % na]. */
    for (int k = 0; k < n_merges; k++) {
        int a, b, c = -1;
        if (k < na * na) a = alpha[k / na], b = alpha[k % na];
        else {
            int q = k - na * na;
            a = alpha[(q / na) / na], b = alpha[(q / na) % na], c = alpha[q % na];
        }
        snprintf(tok, sizeof tok, "%s%s%s", bu[a], bu[b], c >= 0 ? bu[c] : "");
        fprintf(f, ",\n      ");
        put_json_str(f, tok);
        fprintf(f, ": %d", 256 + k);
    }
    fprintf(f, "\n    },\n    \"merges\": [");
    for (int k = 0; k < n_merges; k++) {
        char l[16], r[16];
        if (k < na * na) {
            snprintf(l, sizeof l, "%s", bu[alpha[k / na]]);
            snprintf(r, sizeof r, "%s", bu[alpha[k % na]]);
        } else {
            int q = k - na * na;
            snprintf(l, sizeof l, "%s%s", bu[alpha[(q / na) / na]], bu[alpha[(q / na) % na]]);
            snprintf(r, sizeof r, "%s", bu[alpha[q % na]]);
        }
        fprintf(f, "%s\n      [", k ? "," : "");
        put_json_str(f, l);
        fputs(", ", f);
        put_json_str(f, r);
        fputc(']', f);
    }
    fprintf(f, "\n    ]\n  }\n}\n");
    int bad = ferror(f);
    bad |= fclose(f) != 0;
    return bad ? tl_err_set(err, TL_EIO, "%s: write failed (disk full?)", path) : 0;
}

/* ---- chat template ---- */
/* Small stand-ins of the same shape, used only when the real templates are not at hand. */
static const char *QWEN_MINI_TEMPLATE =
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content | trim + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is THINK_DEFAULT %}{{- 'THINK_A' }}"
    "{%- else %}{{- 'THINK_B' }}{%- endif %}{%- endif %}";
static const char *LLAMA_MINI_TEMPLATE =
    "{{- bos_token }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message.role + '<|end_header_id|>\\n\\n' + message.content | trim + "
    "'<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}";

/* Replace every occurrence of a by b in s (returns a new string or NULL). */
static char *replace_all(const char *s, const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b), n = 0;
    for (const char *p = s; (p = strstr(p, a)); p += la) n++;
    char *out = malloc(strlen(s) + n * (lb > la ? lb - la : 0) + 1), *o = out;
    if (!out) return NULL;
    for (const char *p = s;;) {
        const char *q = strstr(p, a);
        if (!q) {
            strcpy(o, p);
            break;
        }
        memcpy(o, p, (size_t)(q - p));
        o += q - p;
        memcpy(o, b, lb);
        o += lb;
        p = q + la;
    }
    return out;
}

/* Qwen3.5 0.8B/2B think only when asked: the 4B generation-prompt block with its test inverted. */
static const char *BIG_BLOCK =
    "{%- if enable_thinking is defined and enable_thinking is false %}\n"
    "        {{- '<think>\\n\\n</think>\\n\\n' }}\n    {%- else %}\n        {{- '<think>\\n' }}\n";
static const char *SMALL_BLOCK =
    "{%- if enable_thinking is defined and enable_thinking is true %}\n"
    "        {{- '<think>\\n' }}\n    {%- else %}\n        {{- '<think>\\n\\n</think>\\n\\n' }}\n";

static char *load_template(const spec *s, const char *fixtures, int *real) {
    *real = 0;
    const char *file = s->qwen ? "Qwen3.5-4B.jinja" : "meta-llama-Llama-3.2-3B-Instruct.jinja";
    /* Beside the checkout: from the working directory, or from build/tallow's location. */
    char exe[4096], near[4200];
    ssize_t el = readlink("/proc/self/exe", exe, sizeof exe - 1);
    near[0] = 0;
    if (el > 0) {
        exe[el] = 0;
        char *sl = strrchr(exe, '/');
        if (sl) *sl = 0;
        snprintf(near, sizeof near, "%s/../../shared/fixtures", exe);
    }
    const char *cands[4] = {fixtures, getenv("TALLOW_SHARED"), "../shared/fixtures", near};
    char path[4096 + 256];
    char *text = NULL;
    for (int i = 0; i < 4 && !text; i++) {
        if (!cands[i] || !*cands[i]) continue;
        snprintf(path, sizeof path, "%s/templates/%s", cands[i], file);
        size_t len;
        if (tl_file_exists(path) && tl_read_file(path, 1 << 20, &text, &len, NULL) != 0) text = NULL;
    }
    int small = s->qwen && s->hidden <= 2048;
    if (text) {
        *real = 1;
        if (!small) return text;
        char *t = replace_all(text, BIG_BLOCK, SMALL_BLOCK);
        free(text);
        return t;
    }
    if (!s->qwen) return strdup(LLAMA_MINI_TEMPLATE);
    char *a = replace_all(QWEN_MINI_TEMPLATE, "THINK_DEFAULT", small ? "true" : "false");
    char *b = a ? replace_all(a, "THINK_A", small ? "<think>\\n" : "<think>\\n\\n</think>\\n\\n") : NULL;
    char *c = b ? replace_all(b, "THINK_B", small ? "<think>\\n\\n</think>\\n\\n" : "<think>\\n") : NULL;
    free(a);
    free(b);
    return c;
}

/* ---- configs ---- */
static json_t *quant_json(int bits) {
    return json_pack("{s:i,s:i,s:s}", "group_size", GROUP, "bits", bits, "mode", "affine");
}

/* The shape keys both architectures' config.json carry, in their order there. */
static void set_shape(json_t *c, const spec *s, int layers) {
    json_object_set_new(c, "vocab_size", json_integer(s->vocab));
    json_object_set_new(c, "hidden_size", json_integer(s->hidden));
    json_object_set_new(c, "num_hidden_layers", json_integer(layers));
    json_object_set_new(c, "num_attention_heads", json_integer(s->heads));
    json_object_set_new(c, "num_key_value_heads", json_integer(s->kv_heads));
    json_object_set_new(c, "head_dim", json_integer(s->head_dim));
    json_object_set_new(c, "intermediate_size", json_integer(s->inter));
    json_object_set_new(c, "hidden_act", json_string("silu"));
    json_object_set_new(c, "max_position_embeddings", json_integer(s->max_pos));
}

static json_t *qwen_text_config(const spec *s, int layers) {
    json_t *lt = json_array();
    for (int i = 0; i < layers; i++)
        json_array_append_new(lt, json_string(qwen_layer_full(i) ? "full_attention" : "linear_attention"));
    json_t *tc = json_object();
    json_object_set_new(tc, "model_type", json_string("qwen3_5_text"));
    set_shape(tc, s, layers);
    json_object_set_new(tc, "rms_norm_eps", json_real(1e-6));
    json_object_set_new(tc, "attention_bias", json_false());
    json_object_set_new(tc, "attn_output_gate", json_true());
    json_object_set_new(tc, "linear_num_key_heads", json_integer(LIN_K_HEADS));
    json_object_set_new(tc, "linear_num_value_heads", json_integer(s->lin_v_heads));
    json_object_set_new(tc, "linear_key_head_dim", json_integer(LIN_DK));
    json_object_set_new(tc, "linear_value_head_dim", json_integer(LIN_DV));
    json_object_set_new(tc, "linear_conv_kernel_dim", json_integer(CONV_K));
    json_object_set_new(tc, "full_attention_interval", json_integer(4));
    json_object_set_new(tc, "layer_types", lt);
    json_object_set_new(tc, "partial_rotary_factor", json_real(0.25));
    json_object_set_new(tc, "rope_parameters",
                        json_pack("{s:s,s:i,s:f,s:[i,i,i],s:b}", "rope_type", "default",
                                  "rope_theta", 10000000, "partial_rotary_factor", 0.25,
                                  "mrope_section", 11, 11, 10, "mrope_interleaved", 1));
    json_object_set_new(tc, "mtp_num_hidden_layers", json_integer(1));
    json_object_set_new(tc, "mtp_use_dedicated_embeddings", json_false());
    json_object_set_new(tc, "mamba_ssm_dtype", json_string("float32"));
    json_object_set_new(tc, "mlp_only_layers", json_array());
    json_object_set_new(tc, "tie_word_embeddings", json_true());
    json_object_set_new(tc, "eos_token_id", json_integer(248044));
    json_object_set_new(tc, "dtype", json_string("bfloat16"));
    return tc;
}

static json_t *make_config(const spec *s, int layers, int bits) {
    json_t *c = json_object();
    if (s->qwen) {
        json_object_set_new(c, "architectures", json_pack("[s]", "Qwen3_5ForConditionalGeneration"));
        json_object_set_new(c, "model_type", json_string("qwen3_5"));
        json_object_set_new(c, "tie_word_embeddings", json_true());
        json_object_set_new(c, "image_token_id", json_integer(248056));
        json_object_set_new(c, "video_token_id", json_integer(248057));
        json_object_set_new(c, "vision_start_token_id", json_integer(248053));
        json_object_set_new(c, "vision_end_token_id", json_integer(248054));
        json_object_set_new(c, "text_config", qwen_text_config(s, layers));
    } else {
        json_object_set_new(c, "architectures", json_pack("[s]", "LlamaForCausalLM"));
        json_object_set_new(c, "model_type", json_string("llama"));
        set_shape(c, s, layers);
        json_object_set_new(c, "rms_norm_eps", json_real(1e-5));
        json_object_set_new(c, "rope_theta", json_real(500000.0));
        json_object_set_new(c, "rope_scaling",
                            json_pack("{s:f,s:f,s:f,s:i,s:s}", "factor", 32.0, "high_freq_factor", 4.0,
                                      "low_freq_factor", 1.0, "original_max_position_embeddings",
                                      8192, "rope_type", "llama3"));
        json_object_set_new(c, "attention_bias", json_false());
        json_object_set_new(c, "attention_dropout", json_real(0.0));
        json_object_set_new(c, "mlp_bias", json_false());
        json_object_set_new(c, "initializer_range", json_real(0.02));
        json_object_set_new(c, "pretraining_tp", json_integer(1));
        json_object_set_new(c, "tie_word_embeddings", json_true());
        json_object_set_new(c, "use_cache", json_true());
        json_object_set_new(c, "bos_token_id", json_integer(128000));
        json_object_set_new(c, "eos_token_id", json_pack("[i,i,i]", 128001, 128008, 128009));
        json_object_set_new(c, "torch_dtype", json_string("bfloat16"));
    }
    if (bits != 16) {
        json_object_set_new(c, "quantization", quant_json(bits));
        json_object_set_new(c, "quantization_config", quant_json(bits));
    }
    json_object_set_new(c, "tallow_synthetic", json_true());
    json_object_set_new(c, "tallow_synthetic_like", json_string(s->like));
    return c;
}

static json_t *make_gen_config(const spec *s) {
    if (s->qwen)
        return json_pack("{s:i,s:[i,i],s:i,s:b,s:f,s:i,s:f}", "bos_token_id", 248044,
                         "eos_token_id", 248046, 248044, "pad_token_id", 248044, "do_sample", 1,
                         "temperature", 0.6, "top_k", 20, "top_p", 0.95);
    return json_pack("{s:i,s:[i,i,i],s:b,s:f,s:f}", "bos_token_id", 128000, "eos_token_id", 128001,
                     128008, 128009, "do_sample", 1, "temperature", 0.6, "top_p", 0.9);
}

static json_t *make_tok_config(const spec *s, const char *tmpl) {
    if (s->qwen)
        return json_pack("{s:b,s:b,s:n,s:s,s:s,s:s,s:i,s:b,s:b,s:s,s:n}", "add_bos_token", 0,
                         "add_prefix_space", 0, "bos_token", "eos_token", "<|im_end|>", "pad_token",
                         "<|endoftext|>", "chat_template", tmpl, "model_max_length", s->max_pos,
                         "clean_up_tokenization_spaces", 0, "split_special_tokens", 0,
                         "tokenizer_class", "Qwen2Tokenizer", "unk_token");
    return json_pack("{s:s,s:s,s:s,s:i,s:b,s:s}", "bos_token", "<|begin_of_text|>", "eos_token",
                     "<|eot_id|>", "chat_template", tmpl, "model_max_length", s->max_pos,
                     "clean_up_tokenization_spaces", 1, "tokenizer_class", "PreTrainedTokenizerFast");
}

/* ---- the whole model ---- */
int tl_synth_write(const tl_synth_opts *o, tl_synth_info *info, tl_err *err) {
    const spec *s = NULL;
    for (size_t i = 0; i < TL_ARRAY_LEN(specs); i++)
        if (o->like && !strcmp(o->like, specs[i].like)) s = &specs[i];
    if (!s)
        return tl_err_set(err, TL_EINVAL, "unknown model '%s' for synth (known: %s)",
                          o->like ? o->like : "", tl_synth_names());
    if (o->bits != 4 && o->bits != 8 && o->bits != 16)
        return tl_err_set(err, TL_EINVAL, "synth writes 4-, 8- or 16-bit (bf16) weights, not %d", o->bits);
    int layers = o->layers ? o->layers : s->layers;
    if (layers < 1 || layers > s->layers)
        return tl_err_set(err, TL_EINVAL, "%s has %d layers; --layers must be 1..%d", s->like,
                          s->layers, s->layers);
    if (!o->out_dir || !*o->out_dir) return tl_err_set(err, TL_EINVAL, "synth needs an output directory");
    if (tl_mkdir_p(o->out_dir))
        return tl_err_set(err, TL_EIO, "%s: cannot create: %s", o->out_dir, strerror(errno));

    plan p = {.bits = o->bits, .seed = o->seed};
    build_plan(&p, s, layers);
    if (p.oom) {
        free(p.t);
        return tl_err_set(err, TL_ENOMEM, "out of memory planning tensors");
    }
    /* Shards as mlx-lm makes them: start a new one when the next tensor would pass the cap. */
    int n_shards = 1;
    uint64_t in_shard = 0, total = 0;
    int64_t params = 0;
    for (int i = 0; i < p.n; i++) {
        if (in_shard && in_shard + p.t[i].nbytes > SHARD_MAX_BYTES) n_shards++, in_shard = 0;
        p.t[i].shard = n_shards - 1;
        p.t[i].off = in_shard;
        in_shard += p.t[i].nbytes;
        total += p.t[i].nbytes;
        params += p.t[i].params;
    }
    remove_old_weights(o->out_dir);
    char cfgpath[4096];
    if (tl_path_join(cfgpath, sizeof cfgpath, o->out_dir, "config.json") == 0) unlink(cfgpath);
    uint8_t *buf = malloc(CHUNK);
    int rc = buf ? 0 : tl_err_set(err, TL_ENOMEM, "out of memory");
    json_t *wm = json_object();
    char fname[64], path[4096];
    for (int sh = 0; sh < n_shards && !rc; sh++) {
        if (n_shards == 1) snprintf(fname, sizeof fname, "model.safetensors");
        else snprintf(fname, sizeof fname, "model-%05d-of-%05d.safetensors", sh + 1, n_shards);
        if (tl_path_join(path, sizeof path, o->out_dir, fname)) {
            rc = tl_err_set(err, TL_EINVAL, "%s: path too long", o->out_dir);
            break;
        }
        rc = write_shard(&p, sh, path, buf, err);
        for (int i = 0; i < p.n; i++)
            if (p.t[i].shard == sh) json_object_set_new(wm, p.t[i].name, json_string(fname));
        if (o->progress) o->progress(o->progress_ctx, sh + 1, n_shards);
    }
    free(buf);
    if (!rc)
        rc = write_json(o->out_dir, "model.safetensors.index.json",
                        json_pack("{s:{s:I,s:I},s:o}", "metadata", "total_size", (json_int_t)total,
                                  "total_parameters", (json_int_t)params, "weight_map", wm),
                        err);
    else
        json_decref(wm);
    int real_tmpl = 0;
    char *tmpl = rc ? NULL : load_template(s, o->fixtures_dir, &real_tmpl);
    if (!rc && !tmpl) rc = tl_err_set(err, TL_ENOMEM, "out of memory");
    if (!rc) rc = write_tokenizer(o->out_dir, s, err);
    if (!rc) rc = write_json(o->out_dir, "tokenizer_config.json", make_tok_config(s, tmpl), err);
    if (!rc) rc = write_text(o->out_dir, "chat_template.jinja", tmpl, err);
    if (!rc) rc = write_json(o->out_dir, "generation_config.json", make_gen_config(s), err);
    if (!rc) rc = write_json(o->out_dir, "config.json", make_config(s, layers, o->bits), err);
    free(tmpl);
    free(p.t);
    if (!rc && info) {
        info->n_params = params;
        info->n_bytes = (int64_t)total;
        info->n_layers = layers;
        info->n_tensors = p.n;
        info->n_shards = n_shards;
        info->real_template = real_tmpl;
    }
    return rc;
}
