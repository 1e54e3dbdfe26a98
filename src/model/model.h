/* model.h — a loaded model: config + weights + run state, and the architecture vtable that
 * src/model/<arch>.c files implement (llama.c: Llama 3.x and Qwen3 dense; qwen35.c: Qwen3.5).
 *
 * Lifetime (driven by the engine):
 *   tl_model_open(dir, backend)  config.json + safetensors mapped; arch->load binds weights
 *   tl_model_run_init(dims)      arch->run_init: activations for max_rows, per-slot state
 *   arch->forward(batch) ...     one pass over rows of many slots; logits for chosen rows
 *   tl_model_close               arch->run_free, arch->unload, unmap
 *
 * Shared loading helpers (model.c) bind tensor names to tl_wdesc, including MLX quantized
 * modules (quantized iff "<module>.scales" exists; bits/group from tl_config_quant_for, checked
 * against the shapes), and fail with errors that name the tensor, file and problem. */
#ifndef TL_MODEL_H
#define TL_MODEL_H

#include "backend/backend.h"
#include "store/store.h"
#include "tallow/engine.h"

typedef struct tl_model tl_model;

/* Sizes the run state is allocated for (set once by the engine, before any forward). */
typedef struct tl_run_dims {
    int max_slots;       /* slot indices are 0..max_slots-1 */
    int max_rows;        /* rows per forward pass */
    int max_out;         /* rows per pass that want logits (<= max_slots) */
} tl_run_dims;

/* One forward pass. Rows of one slot are consecutive and in position order. The KV pages for
 * every (slot, pos) of the batch exist in kv->page_table before the call. */
typedef struct tl_batch {
    tl_rows rows;            /* n rows: slot, pos per row */
    const int32_t *tokens;   /* [n] host */
    tl_kv *kv;               /* NULL when the model has no full-attention layers */
    int n_out;               /* rows whose logits are wanted */
    const int32_t *out_rows; /* [n_out] host: row indices, ascending */
    float *logits;           /* host [n_out, vocab]: written by forward */
} tl_batch;

/* An architecture. Hooks marked optional may be NULL. */
typedef struct tl_arch_ops {
    const char *name;        /* "llama", "qwen3", "qwen3_5" */
    /* Bind weights (m->cfg, m->st, m->be are set); store arch data in m->w; fill m->info's
     * arch-specific fields (n_full_attn_layers, kv_bytes_per_token, state_bytes_per_slot). */
    int (*load)(tl_model *m, tl_err *err);
    void (*unload)(tl_model *m);
    /* Allocate activations and per-slot state (m->run) for the given dims. */
    int (*run_init)(tl_model *m, const tl_run_dims *d, tl_err *err);
    void (*run_free)(tl_model *m);
    int (*forward)(tl_model *m, const tl_batch *b, tl_err *err);
    /* Per-slot state beyond the KV cache (recurrent/conv state). All optional: a model without
     * such state sets state_bytes to NULL. save/load copy the slot's state to/from host bytes
     * (snapshots); clear resets it for a fresh sequence. */
    size_t (*state_bytes)(const tl_model *m);
    void (*state_clear)(tl_model *m, int slot);
    void (*state_save)(tl_model *m, int slot, void *host);
    void (*state_load)(tl_model *m, int slot, const void *host);
} tl_arch_ops;

struct tl_model {
    tl_config cfg;           /* config.json (+ generation_config.json) */
    tl_st_set *st;           /* mapped safetensors */
    tl_backend *be;          /* not owned */
    const tl_arch_ops *arch;
    tl_model_info info;
    tl_run_dims dims;
    int kv_layers;           /* layers with a KV cache (full attention) */
    int kv_dim;              /* n_kv_heads * head_dim of those layers */
    int64_t mapped_bytes;    /* mapped file bytes bound as weights (counted TL_MEM_WEIGHTS) */
    void *w;                 /* arch weights */
    void *run;               /* arch run state */
};

extern const tl_arch_ops tl_arch_llama;   /* llama.c: model_type llama and qwen3 */
extern const tl_arch_ops tl_arch_qwen35;  /* qwen35.c */

/* Open dir (config.json + safetensors), pick the architecture from model_type, load weights
 * onto be. *out owns the config and the mapping; be is borrowed. */
int tl_model_open(tl_model **out, const char *dir, tl_backend *be, tl_err *err);
/* The same from a parsed config and tensor set (both taken over, freed on failure too); label
 * names the model in messages. For tests and the fuzz target. */
int tl_model_open_parts(tl_model **out, const char *label, tl_config *cfg, tl_st_set *st,
                        tl_backend *be, tl_err *err);
int tl_model_run_init(tl_model *m, const tl_run_dims *d, tl_err *err);
void tl_model_close(tl_model *m);

/* ---- helpers for arch files ---------------------------------------------------------------- */

/* A bound weight: the description (pointing into the mapping) and the backend's prepared form. */
typedef struct tl_weight {
    tl_wdesc d;
    tl_wmat *w;
} tl_weight;

/* The tensor "<prefix><name>" where prefix is the model's tensor prefix ("model." for
 * Llama/Qwen3; others tried: "model.language_model.", "language_model.model."); NULL if absent.
 * name is the part after the prefix, e.g. "layers.0.self_attn.q_proj.weight". */
const tl_tensor *tl_model_tensor(const tl_model *m, const char *name);
/* The tensor prefix found at open ("model." ...), from where "embed_tokens.weight" lives. */
const char *tl_model_prefix(const tl_model *m);
/* Bind the linear module <module> (e.g. "layers.0.mlp.up_proj", or "lm_head" with root = 1 for
 * names outside the prefix) of logical shape [rows, cols]: dense "<module>.weight" (F32/F16/BF16)
 * or MLX affine (weight U32 + scales + biases). Checks every shape and dtype; prepares it on the
 * backend. Errors name the tensor and file. */
int tl_model_linear(tl_model *m, tl_weight *out, const char *module, int root, int rows, int cols,
                    tl_err *err);
/* 1-D vector "<name>" of n elements (F32/F16/BF16) as f32, plus add_one (zero-centred norms),
 * uploaded with be->vec_upload. */
int tl_model_vector(tl_model *m, float **out, const char *name, int n, float add, tl_err *err);
/* The first n elements of a float tensor t (F32/F16/BF16, checked by the caller) as f32, plus
 * add, uploaded with be->vec_upload; counted in n_params. */
int tl_model_upload_f32(tl_model *m, float **out, const tl_tensor *t, size_t n, float add,
                        tl_err *err);
void tl_model_weight_free(tl_model *m, tl_weight *w);
void tl_model_vector_free(tl_model *m, float *v, int n);
/* Whether the module <module> exists (its .weight). */
int tl_model_has(const tl_model *m, const char *module, int root);
/* Layer l's module: tl_model_linear / tl_model_vector of "layers.<l>.<name>". */
int tl_model_layer_linear(tl_model *m, tl_weight *out, int l, const char *module, int rows,
                          int cols, tl_err *err);
int tl_model_layer_vector(tl_model *m, float **out, int l, const char *name, int n, float add,
                          tl_err *err);

/* The two ends of every decoder stack: the token embedding, the final norm, the LM head (the
 * embedding when tied) and RoPE's inverse frequencies. */
typedef struct tl_model_ends {
    tl_weight embed;         /* [vocab, H] */
    tl_weight lm_head;       /* untied only */
    const tl_weight *head;   /* &embed or &lm_head */
    float *norm;             /* [H] */
    float *inv_freq;         /* [rot_dim/2] backend buffer */
    int rot_dim;             /* head_dim * partial_rotary_factor, even; head_dim if that is 0 */
} tl_model_ends;

/* Bind embed_tokens, lm_head (unless tied) and norm.weight (+ norm_add, in that order, so the
 * first missing one is the one named) and upload inv_freq = 1/theta^(2i/rot_dim), with Llama-3
 * frequency scaling (docs/models.md §4.3) when llama3_scaling and config has rope_type llama3. */
int tl_model_ends_load(tl_model *m, tl_model_ends *e, float norm_add, int llama3_scaling,
                       tl_err *err);
void tl_model_ends_free(tl_model *m, tl_model_ends *e);
/* Set the KV cache geometry: n_full layers of full attention, n_kv_heads * head_dim wide. */
void tl_model_set_kv(tl_model *m, int n_full);

/* ---- blocks every architecture shares (written once against the backend table) ------------- */

/* The SwiGLU MLP half of a pre-norm decoder layer, residual included, over n rows:
 * x += down(silu(gate(rmsnorm(x))) * up(rmsnorm(x))). Scratch: xn [n, H], g and u [n, I]. */
void tl_model_mlp(tl_backend *be, float *x, float *xn, float *g, float *u, const float *norm,
                  const tl_weight *gate, const tl_weight *up, const tl_weight *down, int n, int H,
                  int I, float eps);
/* The output head: the rows b->out_rows of x go through the final norm and the LM head, and
 * their logits land in b->logits (host). Scratch: hout [n_out, H], logits [n_out, vocab]. */
void tl_model_head(tl_backend *be, const tl_batch *b, const float *x, float *hout, float *logits,
                   const float *norm, const tl_weight *head, int H, int vocab, float eps);

#endif
