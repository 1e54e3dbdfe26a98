/* qwen35.c — the Qwen3.5 text model (model_type "qwen3_5" / "qwen3_5_text"): a hybrid stack of
 * Gated DeltaNet ("linear_attention") and gated full-attention layers, over the backend op table.
 * docs/models.md §1 has every formula; §2 the checkpoint layouts.
 *
 *   x = embed[ids]
 *   per layer: x += mixer( n1(x) )     mixer = GatedDeltaNet or GatedAttention
 *              x += down( silu(gate(n2(x))) * up(n2(x)) )
 *   logits = head( norm(x) )           only for the rows that want them (gathered first)
 *
 *   GatedDeltaNet: qkv = conv+silu(in_proj_qkv x) (per-slot conv state), z = in_proj_z x,
 *     a, b = in_proj_a/b x; the delta rule over the slot's f32 recurrent state (gdn_rule);
 *     out_proj( rmsnorm(o) * w * silu(z) ).
 *   GatedAttention: q_proj gives per head [query(hd) | gate(hd)]; zero-centred q/k norm;
 *     half-split RoPE on the first hd*partial_rotary_factor dims; causal GQA over the paged KV
 *     cache; o_proj( attn * sigmoid(gate) ).
 *
 * Layouts: the tensor prefix (model., model.language_model., language_model.model.) is found by
 * model.c; vision (model.visual.*, vision_tower.*) and mtp.* tensors are never looked at. The
 * source is told by the conv1d shape: HF [C,1,K] stores the five zero-centred norm families as w
 * (used as 1 + w); MLX-sanitized [C,K,1] stores them already shifted (used as stored). The gated
 * norm (linear_attn.norm) is used as stored in both. Any projection may be MLX-quantized.
 *
 * State: per linear layer one tl_gdn_state for all slots (conv: K-1 rows of conv_dim, recurrent:
 * Hv x dk x dv f32); the engine clears, saves and restores a slot's share through the state
 * hooks. The full-attention layers use the engine's KV pages (kv layer = index among full
 * layers). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ref/ref_gdn.h"
#include "model/model.h"

typedef struct q35_layer {
    int full;                     /* 1: gated attention, 0: Gated DeltaNet */
    int idx;                      /* index among layers of its kind (kv layer / state index) */
    float *attn_norm, *mlp_norm;  /* [H] */
    /* Gated DeltaNet */
    tl_weight qkv, z, a, b, out;  /* [conv_dim, H], [Hv*dv, H], [Hv, H] x2, [H, Hv*dv] */
    float *conv_w;                /* [conv_dim, K] */
    float *a_log, *dt_bias;       /* [Hv] */
    float *gnorm;                 /* [dv] */
    /* gated attention */
    tl_weight q, k, v, o;         /* [nh*hd*(1+gated), H], [nkv*hd, H] x2, [H, nh*hd] */
    float *q_norm, *k_norm;       /* [hd] */
    /* MLP */
    tl_weight gate, up, down;     /* [I, H] x2, [H, I] */
} q35_layer;

typedef struct q35_w {
    int Hk, Hv, dk, dv, K, key_dim, value_dim, conv_dim;
    int gated;                    /* gated: q_proj carries the output gate */
    int n_lin, n_full;
    int mlx_sanitized;            /* norms stored as 1 + w */
    tl_model_ends e;              /* embed, head, final norm, inv_freq (unscaled) */
    q35_layer *layers;
} q35_w;

typedef struct q35_run {
    size_t n_x, n_qkv, n_val, n_hv, n_qg, n_q, n_kv, n_ff, n_hout, n_logits;
    float *x, *xn;                /* [R, H] */
    float *qkv;                   /* [R, conv_dim] */
    float *z, *o;                 /* [R, Hv*dv] */
    float *a, *b;                 /* [R, Hv] */
    float *qg;                    /* [R, nh*hd*2] */
    float *q, *g, *att;           /* [R, nh*hd] */
    float *k, *v;                 /* [R, nkv*hd] */
    float *ff_gate, *ff_up;       /* [R, I] */
    float *hout, *logits;         /* [O, H], [O, vocab] */
    tl_gdn_state *st;             /* [n_lin] */
} q35_run;

/* ---- load ----------------------------------------------------------------------------------- */

/* The conv1d weight of layer l as f32 [conv_dim][K]; tells the layout (HF [C,1,K] or MLX
 * [C,K,1]; a squeezed [C,K] counts as MLX-like: as stored). */
static int q35_conv_weight(tl_model *m, q35_w *w, q35_layer *L, int l, int *layout,
                           tl_err *err) {
    char nm[128];
    snprintf(nm, sizeof nm, "layers.%d.linear_attn.conv1d.weight", l);
    const tl_tensor *t = tl_model_tensor(m, nm);
    if (!t)
        return tl_err_set(err, TL_ENOTFOUND, "%s: tensor %s%s is missing", m->info.dir,
                          tl_model_prefix(m), nm);
    const int C = w->conv_dim, K = w->K;
    int lay = -1; /* 0 = HF, 1 = MLX */
    if (t->ndim == 3 && t->shape[0] == C && t->shape[1] == 1 && t->shape[2] == K) lay = 0;
    else if (t->ndim == 3 && t->shape[0] == C && t->shape[1] == K && t->shape[2] == 1) lay = 1;
    else if (t->ndim == 2 && t->shape[0] == C && t->shape[1] == K) lay = 1;
    if (lay < 0 || (t->dtype != TL_DT_F32 && t->dtype != TL_DT_F16 && t->dtype != TL_DT_BF16))
        return tl_err_set(err, TL_EFORMAT,
                          "%s: tensor %s has an unexpected shape or dtype %s: expected [%d, 1, %d] "
                          "(Hugging Face) or [%d, %d, 1] (MLX), F32/F16/BF16",
                          t->file, t->name, tl_dtype_name(t->dtype), C, K, C, K);
    if (*layout >= 0 && *layout != lay)
        return tl_err_set(err, TL_EFORMAT,
                          "%s: tensor %s is in the %s layout but earlier conv1d weights were in "
                          "the %s layout: a mixed checkpoint cannot be read",
                          t->file, t->name, lay ? "MLX" : "Hugging Face",
                          lay ? "Hugging Face" : "MLX");
    *layout = lay;
    /* both layouts hold element (c, i) at c*K + i */
    return tl_model_upload_f32(m, &L->conv_w, t, (size_t)C * K, 0.0f, err);
}

static void q35_unload(tl_model *m) {
    q35_w *w = m->w;
    if (!w) return;
    const tl_config *c = &m->cfg;
    int H = c->hidden_size, hd = c->head_dim;
    if (w->layers) {
        for (int l = 0; l < c->n_layers; l++) {
            q35_layer *L = &w->layers[l];
            tl_model_vector_free(m, L->attn_norm, H);
            tl_model_vector_free(m, L->mlp_norm, H);
            tl_model_vector_free(m, L->conv_w, w->conv_dim * w->K);
            tl_model_vector_free(m, L->a_log, w->Hv);
            tl_model_vector_free(m, L->dt_bias, w->Hv);
            tl_model_vector_free(m, L->gnorm, w->dv);
            tl_model_vector_free(m, L->q_norm, hd);
            tl_model_vector_free(m, L->k_norm, hd);
            tl_weight *ws[] = {&L->qkv, &L->z, &L->a, &L->b, &L->out, &L->q, &L->k,
                               &L->v, &L->o, &L->gate, &L->up, &L->down};
            for (size_t i = 0; i < TL_ARRAY_LEN(ws); i++) tl_model_weight_free(m, ws[i]);
        }
        free(w->layers);
    }
    tl_model_ends_free(m, &w->e);
    free(w);
    m->w = NULL;
}

static int q35_load(tl_model *m, tl_err *err) {
    const tl_config *c = &m->cfg;
    tl_backend *be = m->be;
    if (!be->gdn_conv || !be->gdn_rule || !be->gated_rmsnorm || !be->gdn_state_clear ||
        !be->mul_sigmoid)
        return tl_err_set(err, TL_EUNSUP, "the %s backend has no Gated DeltaNet ops yet: Qwen3.5 "
                          "cannot run on it", be->name);
    q35_w *w = calloc(1, sizeof *w);
    if (!w) return tl_err_set(err, TL_ENOMEM, "out of memory");
    m->w = w;
    w->layers = calloc((size_t)c->n_layers, sizeof *w->layers);
    if (!w->layers) return tl_err_set(err, TL_ENOMEM, "out of memory");
    const int H = c->hidden_size, hd = c->head_dim, nh = c->n_heads, nkv = c->n_kv_heads;
    const int I = c->intermediate_size;
    w->Hk = c->linear_num_key_heads;
    w->Hv = c->linear_num_value_heads;
    w->dk = c->linear_key_head_dim;
    w->dv = c->linear_value_head_dim;
    w->K = c->linear_conv_kernel_dim;
    w->key_dim = w->Hk * w->dk;
    w->value_dim = w->Hv * w->dv;
    w->conv_dim = 2 * w->key_dim + w->value_dim;
    w->gated = c->attn_output_gate;
    for (int l = 0; l < c->n_layers; l++) {
        q35_layer *L = &w->layers[l];
        L->full = c->layer_is_full ? c->layer_is_full[l] : 0;
        L->idx = L->full ? w->n_full++ : w->n_lin++;
    }
    if (w->n_lin > 0) {
        if (w->Hk < 1 || w->Hv < 1 || w->Hv % w->Hk || w->dk < 1 || w->dv < 1 ||
            w->dk > TL_GDN_MAX_DK || w->dv > TL_GDN_MAX_DK || w->K < 2)
            return tl_err_set(err, TL_EUNSUP,
                              "config.json: linear attention with %d key heads, %d value heads, "
                              "head dims %d/%d and conv kernel %d is not supported (value heads a "
                              "multiple of key heads, head dims 1..%d, kernel >= 2)",
                              w->Hk, w->Hv, w->dk, w->dv, w->K, TL_GDN_MAX_DK);
    }

    /* The layout decides the norm offset; find it before any norm is read. */
    int layout = -1, rc;
    for (int l = 0; l < c->n_layers; l++) {
        if (w->layers[l].full) continue;
        if ((rc = q35_conv_weight(m, w, &w->layers[l], l, &layout, err))) return rc;
    }
    if (layout < 0) /* no linear layer: MLX files say so by their prefix */
        layout = strcmp(tl_model_prefix(m), "language_model.model.") == 0;
    w->mlx_sanitized = layout == 1;
    const float add = w->mlx_sanitized ? 0.0f : 1.0f;

    if ((rc = tl_model_ends_load(m, &w->e, add, 0, err))) return rc;
    for (int l = 0; l < c->n_layers; l++) {
        q35_layer *L = &w->layers[l];
#define LIN(field, mod, r, cc)                                                                     \
    do {                                                                                           \
        if ((rc = tl_model_layer_linear(m, &L->field, l, mod, r, cc, err))) return rc;             \
    } while (0)
#define VEC(field, mod, n, plus)                                                                   \
    do {                                                                                           \
        if ((rc = tl_model_layer_vector(m, &L->field, l, mod, n, plus, err))) return rc;           \
    } while (0)
        VEC(attn_norm, "input_layernorm.weight", H, add);
        VEC(mlp_norm, "post_attention_layernorm.weight", H, add);
        if (L->full) {
            LIN(q, "self_attn.q_proj", nh * hd * (w->gated ? 2 : 1), H);
            LIN(k, "self_attn.k_proj", nkv * hd, H);
            LIN(v, "self_attn.v_proj", nkv * hd, H);
            LIN(o, "self_attn.o_proj", H, nh * hd);
            VEC(q_norm, "self_attn.q_norm.weight", hd, add);
            VEC(k_norm, "self_attn.k_norm.weight", hd, add);
        } else {
            LIN(qkv, "linear_attn.in_proj_qkv", w->conv_dim, H);
            LIN(z, "linear_attn.in_proj_z", w->value_dim, H);
            LIN(a, "linear_attn.in_proj_a", w->Hv, H);
            LIN(b, "linear_attn.in_proj_b", w->Hv, H);
            LIN(out, "linear_attn.out_proj", H, w->value_dim);
            VEC(a_log, "linear_attn.A_log", w->Hv, 0.0f);
            VEC(dt_bias, "linear_attn.dt_bias", w->Hv, 0.0f);
            VEC(gnorm, "linear_attn.norm.weight", w->dv, 0.0f);
        }
        LIN(gate, "mlp.gate_proj", I, H);
        LIN(up, "mlp.up_proj", I, H);
        LIN(down, "mlp.down_proj", H, I);
#undef LIN
#undef VEC
    }
    tl_model_set_kv(m, w->n_full);
    m->info.state_bytes_per_slot =
        (int64_t)w->n_lin *
        ((int64_t)(w->K - 1) * w->conv_dim + (int64_t)w->Hv * w->dk * w->dv) * (int64_t)sizeof(float);
    return 0;
}

/* ---- run state ------------------------------------------------------------------------------ */

static size_t st_conv_floats(const tl_gdn_state *s) { return (size_t)(s->conv_k - 1) * s->conv_dim; }
static size_t st_rec_floats(const tl_gdn_state *s) {
    return (size_t)s->n_v_heads * s->dk * s->dv;
}

static void q35_run_free(tl_model *m) {
    q35_run *r = m->run;
    if (!r) return;
    tl_backend *be = m->be;
    q35_w *w = m->w;
    struct { float *p; size_t n; } bufs[] = {
        {r->x, r->n_x},       {r->xn, r->n_x},    {r->qkv, r->n_qkv},     {r->z, r->n_val},
        {r->o, r->n_val},     {r->a, r->n_hv},    {r->b, r->n_hv},        {r->qg, r->n_qg},
        {r->q, r->n_q},       {r->g, r->n_q},     {r->att, r->n_q},       {r->k, r->n_kv},
        {r->v, r->n_kv},      {r->ff_gate, r->n_ff}, {r->ff_up, r->n_ff}, {r->hout, r->n_hout},
        {r->logits, r->n_logits}};
    for (size_t i = 0; i < TL_ARRAY_LEN(bufs); i++)
        if (bufs[i].p) be->free(be, bufs[i].p, bufs[i].n, TL_MEM_SCRATCH);
    if (r->st) {
        for (int i = 0; i < w->n_lin; i++) {
            tl_gdn_state *s = &r->st[i];
            size_t S = (size_t)s->max_slots;
            if (s->conv) be->free(be, s->conv, S * st_conv_floats(s), TL_MEM_STATE);
            if (s->rec) be->free(be, s->rec, S * st_rec_floats(s), TL_MEM_STATE);
        }
        free(r->st);
    }
    free(r);
    m->run = NULL;
}

static int q35_run_init(tl_model *m, const tl_run_dims *d, tl_err *err) {
    const tl_config *c = &m->cfg;
    q35_w *w = m->w;
    tl_backend *be = m->be;
    q35_run *r = calloc(1, sizeof *r);
    if (!r) return tl_err_set(err, TL_ENOMEM, "out of memory");
    m->run = r;
    size_t R = (size_t)d->max_rows, O = (size_t)d->max_out;
    size_t qd = (size_t)c->n_heads * c->head_dim;
    r->n_x = R * c->hidden_size;
    r->n_qkv = R * w->conv_dim;
    r->n_val = R * w->value_dim;
    r->n_hv = R * w->Hv;
    r->n_qg = R * qd * (w->gated ? 2 : 1);
    r->n_q = R * qd;
    r->n_kv = R * c->n_kv_heads * c->head_dim;
    r->n_ff = R * c->intermediate_size;
    r->n_hout = O * c->hidden_size;
    r->n_logits = O * c->vocab_size;
    /* every buffer at least one float, so that free gets back exactly what alloc was given */
    size_t *ns[] = {&r->n_x, &r->n_qkv, &r->n_val, &r->n_hv, &r->n_qg, &r->n_q, &r->n_kv, &r->n_ff,
                    &r->n_hout, &r->n_logits};
    for (size_t i = 0; i < TL_ARRAY_LEN(ns); i++)
        if (!*ns[i]) *ns[i] = 1;
    float **ps[] = {&r->x, &r->xn, &r->qkv, &r->z, &r->o, &r->a, &r->b, &r->qg, &r->q,
                    &r->g, &r->att, &r->k, &r->v, &r->ff_gate, &r->ff_up, &r->hout, &r->logits};
    size_t sz[] = {r->n_x, r->n_x, r->n_qkv, r->n_val, r->n_val, r->n_hv, r->n_hv, r->n_qg, r->n_q,
                   r->n_q, r->n_q, r->n_kv, r->n_kv, r->n_ff, r->n_ff, r->n_hout, r->n_logits};
    for (size_t i = 0; i < TL_ARRAY_LEN(ps); i++) {
        *ps[i] = be->alloc(be, sz[i], TL_MEM_SCRATCH);
        if (!*ps[i]) {
            q35_run_free(m);
            return tl_err_set(err, TL_ENOMEM, "out of memory allocating Qwen3.5 activations for "
                              "%d rows", d->max_rows);
        }
    }
    r->st = calloc((size_t)(w->n_lin ? w->n_lin : 1), sizeof *r->st);
    if (!r->st) {
        q35_run_free(m);
        return tl_err_set(err, TL_ENOMEM, "out of memory");
    }
    for (int i = 0; i < w->n_lin; i++) {
        tl_gdn_state *s = &r->st[i];
        *s = (tl_gdn_state){.max_slots = d->max_slots, .conv_dim = w->conv_dim, .conv_k = w->K,
                            .n_v_heads = w->Hv, .n_k_heads = w->Hk, .dk = w->dk, .dv = w->dv};
        size_t nc, nr;
        if (!tl_mul_ok((size_t)d->max_slots, st_conv_floats(s), &nc) ||
            !tl_mul_ok((size_t)d->max_slots, st_rec_floats(s), &nr)) {
            q35_run_free(m);
            return tl_err_set(err, TL_ENOMEM, "Qwen3.5 state for %d slots is too large",
                              d->max_slots);
        }
        s->conv = be->alloc(be, nc, TL_MEM_STATE);
        s->rec = be->alloc(be, nr, TL_MEM_STATE);
        if (!s->conv || !s->rec) {
            q35_run_free(m);
            return tl_err_set(err, TL_ENOMEM, "out of memory allocating the Gated DeltaNet state "
                              "for %d slots (%zu MiB per layer)", d->max_slots,
                              (nc + nr) * sizeof(float) >> 20);
        }
    }
    return 0;
}

/* ---- per-slot state hooks ------------------------------------------------------------------- */

static size_t q35_state_bytes(const tl_model *m) {
    return (size_t)m->info.state_bytes_per_slot; /* 0 without linear layers */
}

static void q35_state_clear(tl_model *m, int slot) {
    q35_w *w = m->w;
    q35_run *r = m->run;
    if (!r) return;
    for (int i = 0; i < w->n_lin; i++) m->be->gdn_state_clear(m->be, &r->st[i], slot);
}

static void q35_state_save(tl_model *m, int slot, void *host) {
    q35_w *w = m->w;
    q35_run *r = m->run;
    char *p = host;
    for (int i = 0; i < w->n_lin; i++) {
        tl_gdn_state *s = &r->st[i];
        size_t nc = st_conv_floats(s), nr = st_rec_floats(s);
        m->be->to_host(m->be, p, s->conv + (size_t)slot * nc, nc * sizeof(float));
        p += nc * sizeof(float);
        m->be->to_host(m->be, p, s->rec + (size_t)slot * nr, nr * sizeof(float));
        p += nr * sizeof(float);
    }
}

static void q35_state_load(tl_model *m, int slot, const void *host) {
    q35_w *w = m->w;
    q35_run *r = m->run;
    const char *p = host;
    for (int i = 0; i < w->n_lin; i++) {
        tl_gdn_state *s = &r->st[i];
        size_t nc = st_conv_floats(s), nr = st_rec_floats(s);
        m->be->to_device(m->be, s->conv + (size_t)slot * nc, p, nc * sizeof(float));
        p += nc * sizeof(float);
        m->be->to_device(m->be, s->rec + (size_t)slot * nr, p, nr * sizeof(float));
        p += nr * sizeof(float);
    }
}

/* ---- forward -------------------------------------------------------------------------------- */

/* Gated DeltaNet mixer: r->xn (normed input, n rows) -> r->xn (mixer output). */
static void q35_linear(tl_model *m, q35_layer *L, const tl_batch *bt) {
    q35_w *w = m->w;
    q35_run *r = m->run;
    tl_backend *be = m->be;
    const int n = bt->rows.n;
    tl_gdn_state *st = &r->st[L->idx];
    const tl_wmat *ws[4] = {L->qkv.w, L->z.w, L->a.w, L->b.w};
    float *ys[4] = {r->qkv, r->z, r->a, r->b};
    tl_backend_matmul_n(be, 4, ws, r->xn, ys, n);
    be->gdn_conv(be, r->qkv, L->conv_w, st, &bt->rows);
    be->gdn_rule(be, r->o, r->qkv, r->a, r->b, L->a_log, L->dt_bias, st, &bt->rows);
    be->gated_rmsnorm(be, r->o, r->z, L->gnorm, n, w->Hv, w->dv, m->cfg.rms_norm_eps);
    be->matmul(be, L->out.w, r->o, r->xn, n);
}

/* Gated attention mixer: r->xn -> r->xn. */
static void q35_attention(tl_model *m, q35_layer *L, const tl_batch *bt) {
    const tl_config *c = &m->cfg;
    q35_w *w = m->w;
    q35_run *r = m->run;
    tl_backend *be = m->be;
    const int n = bt->rows.n, nh = c->n_heads, nkv = c->n_kv_heads, hd = c->head_dim;
    const float eps = c->rms_norm_eps;
    const tl_wmat *ws[3] = {L->q.w, L->k.w, L->v.w};
    float *ys[3] = {w->gated ? r->qg : r->q, r->k, r->v};
    tl_backend_matmul_n(be, 3, ws, r->xn, ys, n);
    if (w->gated) { /* q_proj rows are per head [query(hd) | gate(hd)]: split them apart */
        be->copy_rows(be, r->q, hd, 0, r->qg, 2 * hd, 0, n * nh, hd);
        be->copy_rows(be, r->g, hd, 0, r->qg, 2 * hd, hd, n * nh, hd);
    }
    be->rmsnorm(be, r->q, r->q, L->q_norm, n * nh, hd, eps);
    be->rmsnorm(be, r->k, r->k, L->k_norm, n * nkv, hd, eps);
    be->rope(be, r->q, &bt->rows, nh, hd, w->e.rot_dim, w->e.inv_freq);
    be->rope(be, r->k, &bt->rows, nkv, hd, w->e.rot_dim, w->e.inv_freq);
    be->kv_store(be, bt->kv, L->idx, &bt->rows, r->k, r->v);
    be->attention(be, r->att, r->q, bt->kv, L->idx, &bt->rows, nh, nkv, hd,
                  1.0f / sqrtf((float)hd));
    if (w->gated) be->mul_sigmoid(be, r->att, r->g, (size_t)n * nh * hd);
    be->matmul(be, L->o.w, r->att, r->xn, n);
}

static int q35_forward(tl_model *m, const tl_batch *bt, tl_err *err) {
    const tl_config *c = &m->cfg;
    q35_w *w = m->w;
    q35_run *r = m->run;
    tl_backend *be = m->be;
    const int n = bt->rows.n, H = c->hidden_size, I = c->intermediate_size;
    const float eps = c->rms_norm_eps;
    if (n > m->dims.max_rows || bt->n_out > m->dims.max_out)
        return tl_err_set(err, TL_EINVAL, "qwen3.5 forward: %d rows / %d outputs exceed the %d / "
                          "%d prepared", n, bt->n_out, m->dims.max_rows, m->dims.max_out);
    for (int i = 0; i < n; i++)
        if (bt->rows.slot[i] < 0 || bt->rows.slot[i] >= m->dims.max_slots)
            return tl_err_set(err, TL_EINVAL, "qwen3.5 forward: row %d has slot %d outside "
                              "0..%d", i, bt->rows.slot[i], m->dims.max_slots - 1);
    if (w->n_full && !bt->kv)
        return tl_err_set(err, TL_EINVAL, "qwen3.5 forward: no KV cache given");
    if (n == 0) return 0;
    be->embed(be, w->e.embed.w, bt->tokens, r->x, n);
    for (int l = 0; l < c->n_layers; l++) {
        q35_layer *L = &w->layers[l];
        be->rmsnorm(be, r->xn, r->x, L->attn_norm, n, H, eps);
        if (L->full) q35_attention(m, L, bt);
        else q35_linear(m, L, bt);
        be->add(be, r->x, r->xn, (size_t)n * H);
        tl_model_mlp(be, r->x, r->xn, r->ff_gate, r->ff_up, L->mlp_norm, &L->gate, &L->up,
                     &L->down, n, H, I, eps);
    }
    tl_model_head(be, bt, r->x, r->hout, r->logits, w->e.norm, w->e.head, H, c->vocab_size, eps);
    return 0;
}

const tl_arch_ops tl_arch_qwen35 = {
    .name = "qwen3_5",
    .load = q35_load,
    .unload = q35_unload,
    .run_init = q35_run_init,
    .run_free = q35_run_free,
    .forward = q35_forward,
    .state_bytes = q35_state_bytes,
    .state_clear = q35_state_clear,
    .state_save = q35_state_save,
    .state_load = q35_state_load,
};
