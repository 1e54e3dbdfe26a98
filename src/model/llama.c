/* llama.c — the Llama 3.x architecture (model_type "llama") and Qwen3 dense ("qwen3": the same
 * block plus a per-head RMSNorm on q and k before RoPE), over the backend op table.
 *
 *   x = embed[ids]
 *   per layer: x += o( attn( rope(qn(q(n1(x)))), rope(kn(k(n1(x)))), v(n1(x)) ) )
 *              x += down( silu(gate(n2(x))) * up(n2(x)) )
 *   logits = head( norm(x) )   only for the rows that want them (gathered first)
 *
 * Norms are plain RMSNorm (weight used as stored), computed in f32. RoPE: half-split pairing,
 * frequencies 1/theta^(2i/rot_dim) with Llama-3 scaling (docs/models.md §4.3) when config has
 * rope_type llama3. Attention: causal over the paged KV cache, GQA, scale 1/sqrt(head_dim).
 * Tied models use the embedding table (dense or MLX quantized) as the head. Biases are not
 * supported (neither Llama 3 nor Qwen3 has them): a config asking for them is refused. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

typedef struct llama_layer {
    float *attn_norm, *mlp_norm;  /* [hidden] */
    float *q_norm, *k_norm;       /* [head_dim], Qwen3 only */
    tl_weight q, k, v, o;         /* [nh*hd, H], [nkv*hd, H] x2, [H, nh*hd] */
    tl_weight gate, up, down;     /* [I, H] x2, [H, I] */
} llama_layer;

typedef struct llama_w {
    tl_model_ends e;              /* embed, head, final norm, inv_freq (Llama-3 scaled) */
    int qk_norm;
    llama_layer *layers;          /* [n_layers] */
} llama_w;

typedef struct llama_run {
    size_t n_x, n_q, n_kv, n_ff, n_hout, n_logits; /* floats per buffer (for free) */
    float *x, *xn, *q, *k, *v, *att;               /* [max_rows, ...] */
    float *gate, *up;                              /* [max_rows, I] */
    float *hout, *logits;                          /* [max_out, H], [max_out, vocab] */
} llama_run;

static void llama_unload(tl_model *m) {
    llama_w *w = m->w;
    if (!w) return;
    int H = m->cfg.hidden_size, hd = m->cfg.head_dim;
    if (w->layers) {
        for (int l = 0; l < m->cfg.n_layers; l++) {
            llama_layer *L = &w->layers[l];
            tl_model_vector_free(m, L->attn_norm, H);
            tl_model_vector_free(m, L->mlp_norm, H);
            tl_model_vector_free(m, L->q_norm, hd);
            tl_model_vector_free(m, L->k_norm, hd);
            tl_weight *ws[] = {&L->q, &L->k, &L->v, &L->o, &L->gate, &L->up, &L->down};
            for (size_t i = 0; i < TL_ARRAY_LEN(ws); i++) tl_model_weight_free(m, ws[i]);
        }
        free(w->layers);
    }
    tl_model_ends_free(m, &w->e);
    free(w);
    m->w = NULL;
}

static int llama_load(tl_model *m, tl_err *err) {
    const tl_config *c = &m->cfg;
    int H = c->hidden_size, hd = c->head_dim, nh = c->n_heads, nkv = c->n_kv_heads;
    int I = c->intermediate_size, rc;
    llama_w *w = calloc(1, sizeof *w);
    if (!w) return tl_err_set(err, TL_ENOMEM, "out of memory");
    m->w = w;
    w->layers = calloc((size_t)c->n_layers, sizeof *w->layers);
    if (!w->layers) return tl_err_set(err, TL_ENOMEM, "out of memory");
    w->qk_norm = c->arch == TL_ARCH_QWEN3;

    if ((rc = tl_model_ends_load(m, &w->e, 0.0f, 1, err))) return rc;
    for (int l = 0; l < c->n_layers; l++) {
        llama_layer *L = &w->layers[l];
#define LIN(field, mod, r, cc)                                                                     \
    do {                                                                                           \
        if ((rc = tl_model_layer_linear(m, &L->field, l, mod, r, cc, err))) return rc;             \
    } while (0)
#define VEC(field, mod, n)                                                                         \
    do {                                                                                           \
        if ((rc = tl_model_layer_vector(m, &L->field, l, mod ".weight", n, 0.0f, err))) return rc; \
    } while (0)
        VEC(attn_norm, "input_layernorm", H);
        VEC(mlp_norm, "post_attention_layernorm", H);
        LIN(q, "self_attn.q_proj", nh * hd, H);
        LIN(k, "self_attn.k_proj", nkv * hd, H);
        LIN(v, "self_attn.v_proj", nkv * hd, H);
        LIN(o, "self_attn.o_proj", H, nh * hd);
        if (w->qk_norm) {
            VEC(q_norm, "self_attn.q_norm", hd);
            VEC(k_norm, "self_attn.k_norm", hd);
        }
        LIN(gate, "mlp.gate_proj", I, H);
        LIN(up, "mlp.up_proj", I, H);
        LIN(down, "mlp.down_proj", H, I);
#undef LIN
#undef VEC
    }
    tl_model_set_kv(m, c->n_layers);
    m->info.state_bytes_per_slot = 0;
    return 0;
}

static void llama_run_free(tl_model *m) {
    llama_run *r = m->run;
    if (!r) return;
    tl_backend *be = m->be;
    be->free(be, r->x, r->n_x, TL_MEM_SCRATCH);
    be->free(be, r->xn, r->n_x, TL_MEM_SCRATCH);
    be->free(be, r->q, r->n_q, TL_MEM_SCRATCH);
    be->free(be, r->att, r->n_q, TL_MEM_SCRATCH);
    be->free(be, r->k, r->n_kv, TL_MEM_SCRATCH);
    be->free(be, r->v, r->n_kv, TL_MEM_SCRATCH);
    be->free(be, r->gate, r->n_ff, TL_MEM_SCRATCH);
    be->free(be, r->up, r->n_ff, TL_MEM_SCRATCH);
    be->free(be, r->hout, r->n_hout, TL_MEM_SCRATCH);
    be->free(be, r->logits, r->n_logits, TL_MEM_SCRATCH);
    free(r);
    m->run = NULL;
}

static int llama_run_init(tl_model *m, const tl_run_dims *d, tl_err *err) {
    const tl_config *c = &m->cfg;
    llama_run *r = calloc(1, sizeof *r);
    if (!r) return tl_err_set(err, TL_ENOMEM, "out of memory");
    m->run = r;
    size_t R = (size_t)d->max_rows, O = (size_t)d->max_out;
    r->n_x = R * (size_t)c->hidden_size;
    r->n_q = R * (size_t)c->n_heads * (size_t)c->head_dim;
    r->n_kv = R * (size_t)c->n_kv_heads * (size_t)c->head_dim;
    r->n_ff = R * (size_t)c->intermediate_size;
    r->n_hout = O * (size_t)c->hidden_size;
    r->n_logits = O * (size_t)c->vocab_size;
    tl_backend *be = m->be;
    r->x = be->alloc(be, r->n_x, TL_MEM_SCRATCH);
    r->xn = be->alloc(be, r->n_x, TL_MEM_SCRATCH);
    r->q = be->alloc(be, r->n_q, TL_MEM_SCRATCH);
    r->att = be->alloc(be, r->n_q, TL_MEM_SCRATCH);
    r->k = be->alloc(be, r->n_kv, TL_MEM_SCRATCH);
    r->v = be->alloc(be, r->n_kv, TL_MEM_SCRATCH);
    r->gate = be->alloc(be, r->n_ff, TL_MEM_SCRATCH);
    r->up = be->alloc(be, r->n_ff, TL_MEM_SCRATCH);
    r->hout = be->alloc(be, r->n_hout, TL_MEM_SCRATCH);
    r->logits = be->alloc(be, r->n_logits, TL_MEM_SCRATCH);
    if (!r->x || !r->xn || !r->q || !r->att || !r->k || !r->v || !r->gate || !r->up || !r->hout ||
        !r->logits) {
        llama_run_free(m);
        return tl_err_set(err, TL_ENOMEM, "out of memory allocating activations for %d rows",
                          d->max_rows);
    }
    return 0;
}

static int llama_forward(tl_model *m, const tl_batch *b, tl_err *err) {
    const tl_config *c = &m->cfg;
    llama_w *w = m->w;
    llama_run *r = m->run;
    tl_backend *be = m->be;
    int n = b->rows.n, H = c->hidden_size, hd = c->head_dim, nh = c->n_heads;
    int nkv = c->n_kv_heads, I = c->intermediate_size;
    float eps = c->rms_norm_eps, scale = 1.0f / sqrtf((float)hd);
    if (n > m->dims.max_rows || b->n_out > m->dims.max_out)
        return tl_err_set(err, TL_EINVAL, "llama forward: %d rows / %d outputs exceed the %d / %d "
                          "prepared", n, b->n_out, m->dims.max_rows, m->dims.max_out);
    be->embed(be, w->e.embed.w, b->tokens, r->x, n);
    for (int l = 0; l < c->n_layers; l++) {
        llama_layer *L = &w->layers[l];
        be->rmsnorm(be, r->xn, r->x, L->attn_norm, n, H, eps);
        const tl_wmat *ws[3] = {L->q.w, L->k.w, L->v.w};
        float *ys[3] = {r->q, r->k, r->v};
        tl_backend_matmul_n(be, 3, ws, r->xn, ys, n);
        if (w->qk_norm) {
            be->rmsnorm(be, r->q, r->q, L->q_norm, n * nh, hd, eps);
            be->rmsnorm(be, r->k, r->k, L->k_norm, n * nkv, hd, eps);
        }
        be->rope(be, r->q, &b->rows, nh, hd, w->e.rot_dim, w->e.inv_freq);
        be->rope(be, r->k, &b->rows, nkv, hd, w->e.rot_dim, w->e.inv_freq);
        be->kv_store(be, b->kv, l, &b->rows, r->k, r->v);
        be->attention(be, r->att, r->q, b->kv, l, &b->rows, nh, nkv, hd, scale);
        be->matmul(be, L->o.w, r->att, r->xn, n);
        be->add(be, r->x, r->xn, (size_t)n * H);
        tl_model_mlp(be, r->x, r->xn, r->gate, r->up, L->mlp_norm, &L->gate, &L->up, &L->down, n,
                     H, I, eps);
    }
    tl_model_head(be, b, r->x, r->hout, r->logits, w->e.norm, w->e.head, H, c->vocab_size, eps);
    return 0;
}

const tl_arch_ops tl_arch_llama = {
    .name = "llama",
    .load = llama_load,
    .unload = llama_unload,
    .run_init = llama_run_init,
    .run_free = llama_run_free,
    .forward = llama_forward,
};
