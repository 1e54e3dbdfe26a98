/* tallow/engine.h — load a model and run it over batches of sequence slots.
 *
 * A tl_engine owns: the model (config + weights on a backend), the KV page pool shared by all
 * slots, and per-slot recurrent state (Qwen3.5). A slot is one sequence; its cache holds the
 * tokens fed so far (positions 0..len-1). tl_engine_forward appends tokens to any number of
 * slots in one pass (one batch: weights are read once for all rows) and returns logits for the
 * last token of each slot that asked for them. */
#ifndef TALLOW_ENGINE_H
#define TALLOW_ENGINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct tl_err;
typedef struct tl_engine tl_engine;
typedef struct tl_snapshot tl_snapshot;

typedef enum { TL_DEVICE_AUTO = 0, TL_DEVICE_CPU, TL_DEVICE_CUDA } tl_device;

typedef struct tl_engine_opts {
    const char *model;   /* directory, or Hugging Face repo id resolved in the HF cache */
    tl_device device;    /* AUTO: CUDA when built with it and a GPU is present, else CPU */
    int threads;         /* CPU threads; 0 = all cores */
    int max_slots;       /* sequences that can be live at once; 0 = 1 */
    int ctx_len;         /* tokens per slot; 0 = min(model max, 4096) */
    int max_batch_rows;  /* rows per forward pass (prefill chunk); 0 = 128 (CPU), 512 (CUDA) */
    int exact;           /* 1: use the scalar reference kernels (tests, parity); also when the
                          * environment has TALLOW_EXACT=1. Otherwise the CPU backend ("cpu"),
                          * or the reference if that cannot start. */
} tl_engine_opts;

typedef enum {
    TL_ARCH_LLAMA = 1,
    TL_ARCH_QWEN3 = 2,
    TL_ARCH_QWEN35 = 3,
} tl_arch;

/* Facts about the loaded model (also what `tallow inspect` prints). */
typedef struct tl_model_info {
    tl_arch arch;
    const char *arch_name;   /* "llama", "qwen3", "qwen3_5" */
    char dir[4096];          /* resolved directory holding config.json */
    int vocab_size;
    int hidden_size;
    int n_layers;
    int n_full_attn_layers;  /* layers with a KV cache */
    int n_heads, n_kv_heads, head_dim;
    int intermediate_size;
    int max_position_embeddings;
    int tied_embeddings;
    int quant_bits;          /* 0 = not quantized (dense), else the default MLX bits */
    int quant_group_size;
    const char *weight_dtype;/* "bf16", "f16", "f32", "mlx-q4", ... */
    int synthetic;           /* 1 when config.json says the weights are random (tallow synth) */
    int64_t n_params;        /* parameters of the text model */
    int64_t weight_bytes;    /* bytes of the weights as loaded */
    int64_t kv_bytes_per_token;   /* over all slots' layers, for one token */
    int64_t state_bytes_per_slot; /* recurrent + conv state of one slot */
    int bos_id;              /* -1 if none */
    int n_eos;
    int eos_ids[8];          /* stop set from generation_config.json / config.json */
} tl_model_info;

int tl_engine_open(tl_engine **out, const tl_engine_opts *opts, struct tl_err *err);
void tl_engine_close(tl_engine *e);
const tl_model_info *tl_engine_info(const tl_engine *e);
tl_device tl_engine_device(const tl_engine *e);
int tl_engine_ctx_len(const tl_engine *e);
int tl_engine_max_slots(const tl_engine *e);

/* Slots. acquire returns a slot index >= 0 or a negative TL_EBUSY. */
int tl_slot_acquire(tl_engine *e, struct tl_err *err);
void tl_slot_release(tl_engine *e, int slot);   /* frees its pages and clears its state */
int tl_slot_len(const tl_engine *e, int slot);  /* tokens in its cache */
/* Drop tokens after the first n. Architectures with recurrent state can only go back to 0 or
 * to a position restored from a snapshot: others return -TL_EUNSUP. */
int tl_slot_truncate(tl_engine *e, int slot, int n, struct tl_err *err);

/* One forward pass. seqs[i] appends n_tokens tokens to slot seqs[i].slot; a slot appears at
 * most once. If want_logits, the logits (vocab_size floats) of its last token are written to
 * logits + i*vocab_size. Prompts longer than max_batch_rows are processed in chunks inside.
 * Everything is checked first (slots acquired, token ids in the vocabulary, context length:
 * -TL_ELIMIT, KV pages: -TL_ENOMEM): such a failure changes nothing. The KV cache grows on
 * demand (from ~512 tokens per slot up to ctx_len for every slot). */
typedef struct tl_batch_seq {
    int slot;
    int n_tokens;
    const int32_t *tokens;
    int want_logits;
} tl_batch_seq;
int tl_engine_forward(tl_engine *e, const tl_batch_seq *seqs, int n_seqs, float *logits,
                      struct tl_err *err);

/* Snapshots of a slot's whole state at its current length (KV page references + recurrent and
 * conv state). Restoring into any free or used slot makes it continue exactly as the original. */
int tl_slot_snapshot(tl_engine *e, int slot, tl_snapshot **out, struct tl_err *err);
int tl_slot_restore(tl_engine *e, int slot, const tl_snapshot *s, struct tl_err *err);
int tl_snapshot_len(const tl_snapshot *s);
size_t tl_snapshot_bytes(const tl_snapshot *s);
void tl_snapshot_free(tl_engine *e, tl_snapshot *s);

/* Locate a model: a directory, or an org/name repo id in the Hugging Face cache
 * (HF_HUB_CACHE, else HF_HOME/hub, else ~/.cache/huggingface/hub; refs/<revision> ->
 * snapshots/<rev>/). revision NULL = "main". Writes the directory into out. */
int tl_model_locate(const char *spec, const char *revision, char *out, size_t cap,
                    struct tl_err *err);
/* The hub cache root as the rules above give it. */
int tl_hf_cache_dir(char *out, size_t cap);

#ifdef __cplusplus
}
#endif
#endif
