/* store.h — what a model is on disk: safetensors files (single or sharded, memory-mapped,
 * never copied), config.json / generation_config.json, and the MLX affine quantization layout.
 * Everything here is parsed as hostile input: every offset, size and shape is checked, and every
 * error names the file, the tensor (or JSON path) and the problem. */
#ifndef TL_STORE_H
#define TL_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

typedef enum {
    TL_DT_F32 = 0,
    TL_DT_F16,
    TL_DT_BF16,
    TL_DT_U32,
    TL_DT_I32,
    TL_DT_U8,
    TL_DT_I8,
    TL_DT_I64,
    TL_DT_F64,
    TL_DT_BOOL,
    TL_DT_COUNT
} tl_dtype;

const char *tl_dtype_name(tl_dtype t);
size_t tl_dtype_size(tl_dtype t);

#define TL_MAX_DIMS 8

/* One tensor inside a mapped safetensors file. data points into the mapping. */
typedef struct tl_tensor {
    const char *name;        /* owned by the tl_st_set */
    tl_dtype dtype;
    int ndim;
    int64_t shape[TL_MAX_DIMS];
    const void *data;
    size_t nbytes;
    const char *file;        /* basename of the file it came from, for messages */
} tl_tensor;

/* A set of safetensors files: a single model.safetensors, or the shards named by
 * model.safetensors.index.json, or (MLX style) every model*.safetensors in the directory. */
typedef struct tl_st_set tl_st_set;

/* Parse one file held in memory (used by the fuzz target and by tl_st_open_dir). The buffer
 * must outlive the set. */
int tl_st_parse(tl_st_set *set, const char *fname, const void *buf, size_t len, tl_err *err);
tl_st_set *tl_st_new(void);
int tl_st_open_file(tl_st_set *set, const char *path, tl_err *err);   /* mmap + parse */
int tl_st_open_dir(tl_st_set **out, const char *dir, tl_err *err);
void tl_st_free(tl_st_set *set);
const tl_tensor *tl_st_get(const tl_st_set *set, const char *name);  /* NULL if absent */
int tl_st_count(const tl_st_set *set);
const tl_tensor *tl_st_at(const tl_st_set *set, int i);
/* Hint the kernel that the mapping of t is no longer needed (its pages can go). */
void tl_st_release(const tl_st_set *set, const tl_tensor *t);
int64_t tl_tensor_numel(const tl_tensor *t);  /* product of the shape (1 for a scalar) */

/* ---- config --------------------------------------------------------------------------------- */
typedef struct tl_quant {
    int bits;        /* 0 = not quantized */
    int group_size;
} tl_quant;

typedef struct tl_config {
    char model_type[64];     /* "llama", "qwen3", "qwen3_5", "qwen3_5_text" */
    int arch;                /* tl_arch */
    int vocab_size, hidden_size, n_layers, n_heads, n_kv_heads, head_dim;
    int intermediate_size, max_position_embeddings;
    float rms_norm_eps;
    float rope_theta;
    int tie_word_embeddings;
    int attention_bias, mlp_bias;
    /* llama3 rope scaling (rope_type "llama3"); factor 0 = none */
    float rope_factor, rope_low_freq_factor, rope_high_freq_factor;
    int rope_original_max_pos;
    float partial_rotary_factor; /* 1.0 unless set (Qwen3.5: 0.25) */
    /* Qwen3.5 linear attention */
    int linear_num_key_heads, linear_num_value_heads;
    int linear_key_head_dim, linear_value_head_dim, linear_conv_kernel_dim;
    int attn_output_gate;
    int full_attention_interval;
    unsigned char *layer_is_full; /* n_layers flags (1 = full attention) */
    /* MLX quantization: default + per-module overrides ("a.b.c" -> bits/group, or bits 0) */
    tl_quant quant;
    int n_quant_overrides;
    char **quant_override_names;
    tl_quant *quant_overrides;
    /* special ids from config.json and generation_config.json */
    int bos_id;
    int n_eos;
    int eos_ids[8];
    /* generation defaults from generation_config.json (has_* = present) */
    int has_temperature, has_top_p, has_top_k, has_min_p, has_repetition_penalty;
    float temperature, top_p, min_p, repetition_penalty;
    int top_k;
    int synthetic;           /* "tallow_synthetic": true */
    char torch_dtype[16];
} tl_config;

/* Reads dir/config.json (flat or text_config-nested) and dir/generation_config.json if any. */
int tl_config_load(tl_config *cfg, const char *dir, tl_err *err);
/* Parse config text (fname used in messages; gen may be NULL). For the fuzz target too. */
int tl_config_parse(tl_config *cfg, const char *fname, const char *json, size_t len,
                    const char *gen_json, size_t gen_len, tl_err *err);
void tl_config_free(tl_config *cfg);
/* The quantization of a module path (e.g. "model.layers.0.mlp.gate_proj"). */
tl_quant tl_config_quant_for(const tl_config *cfg, const char *module);

/* ---- synth.c: random-weight models of real shapes (`tallow synth`) ---- */
typedef struct tl_synth_opts {
    const char *like;         /* "qwen3.5-0.8b", "qwen3.5-2b", "qwen3.5-4b", "llama-3.2-3b" */
    int bits;                 /* 4, 8 (MLX affine, group 64) or 16 (bf16) */
    uint64_t seed;
    int layers;               /* 0 = the published depth */
    const char *out_dir;
    const char *fixtures_dir; /* where templates/ is; NULL: $TALLOW_SHARED, ../shared/fixtures */
    void (*progress)(void *ctx, int shard_done, int n_shards);
    void *progress_ctx;
} tl_synth_opts;
typedef struct tl_synth_info {
    int64_t n_params;         /* of the text model, embedding once */
    int64_t n_bytes;          /* tensor bytes written */
    int n_layers, n_tensors, n_shards;
    int real_template;        /* 1: the family's real chat template was found and written */
} tl_synth_info;
int tl_synth_write(const tl_synth_opts *opts, tl_synth_info *info, tl_err *err);
const char *tl_synth_names(void);

/* ---- sha256.c ---- */
typedef struct tl_sha256 {
    uint32_t h[8];
    uint64_t len;
    uint8_t buf[64];
    size_t n;
} tl_sha256;
void tl_sha256_init(tl_sha256 *s);
void tl_sha256_update(tl_sha256 *s, const void *data, size_t len);
void tl_sha256_hex(tl_sha256 *s, char out[65]); /* finishes; lowercase hex + NUL */

/* ---- pull.c: download a hub repo into the Hugging Face cache (`tallow pull`) ---- */
typedef struct tl_pull_opts {
    const char *repo;          /* org/name */
    const char *revision;      /* NULL = "main" */
    const char *const *include;/* fnmatch globs over repo paths; none = every file */
    int n_include;
    const char *token;         /* NULL: $HF_TOKEN, else the token file huggingface_hub keeps */
    const char *endpoint;      /* NULL: $HF_ENDPOINT, else https://huggingface.co */
    int retries;               /* resumed attempts per file after a cut transfer */
    /* Called as bytes arrive (state 0: done of total bytes of one file; total 0 = unknown), then
     * once when the file is in place (state 1: downloaded, 2: already in the cache). */
    void (*progress)(void *ctx, const char *file, uint64_t done, uint64_t total, int state);
    void *progress_ctx;
} tl_pull_opts;
typedef struct tl_pull_result {
    char snapshot[4096];       /* <cache>/models--org--name/snapshots/<commit> */
    char commit[64];
    int n_files, n_downloaded, n_reused;
    uint64_t bytes_downloaded;
} tl_pull_result;
int tl_hub_pull(const tl_pull_opts *opts, tl_pull_result *res, tl_err *err);
/* The hub's answer to GET /api/models/<repo>/revision/<rev> (hostile input): the commit ("sha",
 * a plain file name of at most 63 characters) and the files ("siblings"[].rfilename, each a
 * relative path that stays inside the snapshot). *files: n strings, tl_hub_listing_free. */
int tl_hub_listing_parse(const char *repo, const char *body, size_t len, char commit[64],
                         char ***files, int *n, tl_err *err);
void tl_hub_listing_free(char **files, int n);

/* ---- Hugging Face cache (locate.c; tl_model_locate / tl_hf_cache_dir are in tallow/engine.h) */
int tl_hf_repo_id_valid(const char *id);   /* "org/name" with hub-safe characters */
int tl_hf_revision_valid(const char *rev); /* a ref name or commit hash, no ".." */
/* <cache>/models--org--name for a valid repo id. */
int tl_hf_repo_dir(const char *repo_id, char *out, size_t cap, tl_err *err);

#endif
