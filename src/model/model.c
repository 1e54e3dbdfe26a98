/* model.c — opening a model directory and binding its tensors, shared by every architecture.
 *
 * Contract: tl_model_open reads config.json (+ generation_config.json) and maps the safetensors
 * (store/), chooses the architecture vtable from model_type and lets it bind its weights with
 * the helpers below. Every tensor is checked (present, dtype, shape, MLX quantization layout)
 * before use; errors name the tensor, its file and what was expected. Weights stay in the
 * mapping (never copied here); their bytes are counted as TL_MEM_WEIGHTS while bound. */
#include "model/model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static const char *const k_prefixes[] = {"model.", "model.language_model.", "language_model.model."};
static const char *const k_root_prefixes[] = {"", "language_model."};

typedef struct tl_model_priv {
    tl_model m;
    const char *prefix; /* one of k_prefixes */
} tl_model_priv;

const char *tl_model_prefix(const tl_model *m) { return ((const tl_model_priv *)m)->prefix; }

static const tl_tensor *get_fmt(const tl_model *m, char *full, size_t cap, const char *pre,
                                const char *name, const char *suffix) {
    snprintf(full, cap, "%s%s%s", pre, name, suffix);
    return tl_st_get(m->st, full);
}

const tl_tensor *tl_model_tensor(const tl_model *m, const char *name) {
    char full[512];
    return get_fmt(m, full, sizeof full, tl_model_prefix(m), name, "");
}

/* Full module path (for messages and quantization overrides) and its .weight tensor. */
static const tl_tensor *module_weight(const tl_model *m, const char *module, int root, char *full,
                                      size_t cap) {
    if (!root) return get_fmt(m, full, cap, tl_model_prefix(m), module, ".weight");
    for (size_t i = 0; i < TL_ARRAY_LEN(k_root_prefixes); i++) {
        const tl_tensor *t = get_fmt(m, full, cap, k_root_prefixes[i], module, ".weight");
        if (t) return t;
    }
    return get_fmt(m, full, cap, "", module, ".weight");
}

int tl_model_has(const tl_model *m, const char *module, int root) {
    char full[512];
    return module_weight(m, module, root, full, sizeof full) != NULL;
}

static int is_float_dt(tl_dtype t) { return t == TL_DT_F32 || t == TL_DT_F16 || t == TL_DT_BF16; }

static void shape_str(const tl_tensor *t, char *buf, size_t cap) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, cap - o, "[");
    for (int i = 0; i < t->ndim && o < cap; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
    if (o < cap) snprintf(buf + o, cap - o, "]");
}

static int bad_shape(tl_err *err, const tl_tensor *t, const char *expect) {
    char s[128];
    shape_str(t, s, sizeof s);
    return tl_err_set(err, TL_EFORMAT, "%s: tensor %s has shape %s %s, expected %s", t->file,
                      t->name, s, tl_dtype_name(t->dtype), expect);
}

static void count_bytes(tl_model *m, int64_t b) {
    m->mapped_bytes += b;
    tl_mem_add(TL_MEM_WEIGHTS, b);
}

int tl_model_linear(tl_model *m, tl_weight *out, const char *module, int root, int rows, int cols,
                    tl_err *err) {
    char full[512], name[600], exp[160];
    memset(out, 0, sizeof *out);
    const tl_tensor *w = module_weight(m, module, root, full, sizeof full);
    if (!w) {
        snprintf(full, sizeof full, "%s%s", root ? "" : tl_model_prefix(m), module);
        return tl_err_set(err, TL_ENOTFOUND, "tensor %s.weight is missing from the safetensors "
                          "files", full);
    }
    /* full now ends in ".weight": strip it to get the module path */
    full[strlen(full) - strlen(".weight")] = '\0';
    snprintf(name, sizeof name, "%s.scales", full);
    const tl_tensor *sc = tl_st_get(m->st, name), *bi = NULL;
    tl_wdesc *d = &out->d;
    d->name = w->name;
    d->rows = rows;
    d->cols = cols;
    if (!sc) {
        snprintf(exp, sizeof exp, "[%d, %d] F32/F16/BF16", rows, cols);
        if (!is_float_dt(w->dtype) || w->ndim != 2 || w->shape[0] != rows || w->shape[1] != cols)
            return bad_shape(err, w, exp);
        d->kind = TL_W_DENSE;
        d->dtype = w->dtype;
        d->data = w->data;
    } else {
        snprintf(name, sizeof name, "%s.biases", full);
        bi = tl_st_get(m->st, name);
        if (!bi)
            return tl_err_set(err, TL_EFORMAT,
                              "%s: tensor %s.scales exists but %s.biases is missing (MLX affine "
                              "quantization needs both)",
                              sc->file, full, full);
        tl_quant q = tl_config_quant_for(&m->cfg, full);
        if (w->dtype != TL_DT_U32 || w->ndim != 2 || w->shape[0] != rows) {
            snprintf(exp, sizeof exp, "[%d, cols*bits/32] U32 (MLX quantized, %d input columns)",
                     rows, cols);
            return bad_shape(err, w, exp);
        }
        if (!is_float_dt(sc->dtype) || sc->ndim != 2 || sc->shape[0] != rows || sc->shape[1] < 1 ||
            cols % sc->shape[1]) {
            snprintf(exp, sizeof exp, "[%d, %d/group_size] F32/F16/BF16", rows, cols);
            return bad_shape(err, sc, exp);
        }
        if (bi->dtype != sc->dtype || bi->ndim != 2 || bi->shape[0] != sc->shape[0] ||
            bi->shape[1] != sc->shape[1]) {
            snprintf(exp, sizeof exp, "the shape and dtype of %s.scales", full);
            return bad_shape(err, bi, exp);
        }
        int gs = (int)(cols / sc->shape[1]);
        int64_t bits_num = w->shape[1] * 32;
        if (bits_num % cols) {
            snprintf(exp, sizeof exp, "[%d, %d*bits/32] for %d input columns", rows, cols, cols);
            return bad_shape(err, w, exp);
        }
        int bits = (int)(bits_num / cols);
        if (q.bits && (q.bits != bits || q.group_size != gs))
            return tl_err_set(err, TL_EFORMAT,
                              "%s: tensor %s: config.json quantization says bits %d group_size %d "
                              "but the shapes of .weight/.scales give bits %d group_size %d",
                              w->file, full, q.bits, q.group_size, bits, gs);
        if (bits != 2 && bits != 3 && bits != 4 && bits != 5 && bits != 6 && bits != 8)
            return tl_err_set(err, TL_EUNSUP, "%s: tensor %s: %d-bit quantization is not supported "
                              "(2, 3, 4, 5, 6, 8)", w->file, full, bits);
        if (gs != 32 && gs != 64 && gs != 128)
            return tl_err_set(err, TL_EUNSUP, "%s: tensor %s: group size %d is not supported "
                              "(32, 64, 128)", w->file, full, gs);
        d->kind = TL_W_AFFINE;
        d->dtype = sc->dtype;
        d->data = w->data;
        d->scales = sc->data;
        d->biases = bi->data;
        d->bits = bits;
        d->group_size = gs;
    }
    tl_wdesc_finish(d);
    m->info.n_params += (int64_t)rows * cols;
    const tl_tensor *parts[3] = {w, sc, bi};
    int64_t mapped = 0;
    for (int i = 0; i < 3; i++) mapped += parts[i] ? (int64_t)parts[i]->nbytes : 0;
    tl_mem_stats before, after;
    tl_mem_get(&before);
    int rc = m->be->weight_prepare(m->be, d, &out->w, err);
    if (rc) return tl_err_prefix(err, "preparing %s: ", full);
    tl_mem_get(&after);
    /* A backend that made its own copy (repacked, uploaded) counted it: then the mapped bytes
     * are not needed resident (the pages are dropped; they fault back in if the backend reads
     * the file layout again). Otherwise the mapping is the weight and is counted here. */
    if (after.cur[TL_MEM_WEIGHTS] - before.cur[TL_MEM_WEIGHTS] >= mapped) {
        for (int i = 0; i < 3; i++)
            if (parts[i]) tl_st_release(m->st, parts[i]);
    } else {
        count_bytes(m, mapped);
    }
    return 0;
}

void tl_model_weight_free(tl_model *m, tl_weight *w) {
    if (!w->w) return;
    m->be->weight_free(m->be, w->w);
    w->w = NULL;
}

int tl_model_vector(tl_model *m, float **out, const char *name, int n, float add, tl_err *err) {
    *out = NULL;
    const tl_tensor *t = tl_model_tensor(m, name);
    if (!t)
        return tl_err_set(err, TL_ENOTFOUND, "tensor %s%s is missing from the safetensors files",
                          tl_model_prefix(m), name);
    if (!is_float_dt(t->dtype) || t->ndim != 1 || t->shape[0] != n) {
        char exp[64];
        snprintf(exp, sizeof exp, "[%d] F32/F16/BF16", n);
        return bad_shape(err, t, exp);
    }
    return tl_model_upload_f32(m, out, t, (size_t)n, add, err);
}

int tl_model_upload_f32(tl_model *m, float **out, const tl_tensor *t, size_t n, float add,
                        tl_err *err) {
    *out = NULL;
    float *h = malloc(n * sizeof(float));
    if (!h) return tl_err_set(err, TL_ENOMEM, "out of memory reading %s", t->name);
    for (size_t i = 0; i < n; i++) h[i] = tl_dtype_get_f32(t->dtype, t->data, i) + add;
    m->info.n_params += (int64_t)n;
    *out = m->be->vec_upload(m->be, h, n);
    free(h);
    if (!*out) return tl_err_set(err, TL_ENOMEM, "out of memory uploading %s", t->name);
    return 0;
}

void tl_model_vector_free(tl_model *m, float *v, int n) {
    if (v) m->be->free(m->be, v, (size_t)n, TL_MEM_WEIGHTS);
}

int tl_model_layer_linear(tl_model *m, tl_weight *out, int l, const char *module, int rows,
                          int cols, tl_err *err) {
    char nm[128];
    snprintf(nm, sizeof nm, "layers.%d.%s", l, module);
    return tl_model_linear(m, out, nm, 0, rows, cols, err);
}

int tl_model_layer_vector(tl_model *m, float **out, int l, const char *name, int n, float add,
                          tl_err *err) {
    char nm[128];
    snprintf(nm, sizeof nm, "layers.%d.%s", l, name);
    return tl_model_vector(m, out, nm, n, add, err);
}

/* Inverse frequencies as transformers computes them (f32), with Llama-3 scaling if asked. */
static void inv_freq_fill(const tl_config *c, int rot_dim, int llama3_scaling, float *out) {
    const double pi = 3.14159265358979323846;
    for (int i = 0; i < rot_dim / 2; i++) {
        float f = (float)(1.0 / pow((double)c->rope_theta, (double)(2 * i) / rot_dim));
        if (llama3_scaling && c->rope_factor > 0) {
            double lo_wl = c->rope_original_max_pos / c->rope_low_freq_factor;
            double hi_wl = c->rope_original_max_pos / c->rope_high_freq_factor;
            double wl = 2.0 * pi / f;
            if (wl < hi_wl) {
                /* high frequencies unchanged */
            } else if (wl > lo_wl) {
                f = (float)(f / c->rope_factor);
            } else {
                double s = (c->rope_original_max_pos / wl - c->rope_low_freq_factor) /
                           (c->rope_high_freq_factor - c->rope_low_freq_factor);
                f = (float)(((1.0 - s) / c->rope_factor + s) * f);
            }
        }
        out[i] = f;
    }
}

int tl_model_ends_load(tl_model *m, tl_model_ends *e, float norm_add, int llama3_scaling,
                       tl_err *err) {
    const tl_config *c = &m->cfg;
    int H = c->hidden_size, V = c->vocab_size, hd = c->head_dim, rc;
    e->rot_dim = (int)(hd * c->partial_rotary_factor);
    e->rot_dim -= e->rot_dim % 2;
    if (e->rot_dim <= 0) e->rot_dim = hd;
    if ((rc = tl_model_linear(m, &e->embed, "embed_tokens", 0, V, H, err))) return rc;
    if (c->tie_word_embeddings) {
        e->head = &e->embed;
    } else {
        if ((rc = tl_model_linear(m, &e->lm_head, "lm_head", 1, V, H, err))) return rc;
        e->head = &e->lm_head;
    }
    if ((rc = tl_model_vector(m, &e->norm, "norm.weight", H, norm_add, err))) return rc;
    float *f = malloc((size_t)(e->rot_dim / 2) * sizeof(float));
    if (!f) return tl_err_set(err, TL_ENOMEM, "out of memory");
    inv_freq_fill(c, e->rot_dim, llama3_scaling, f);
    e->inv_freq = m->be->vec_upload(m->be, f, (size_t)(e->rot_dim / 2));
    free(f);
    if (!e->inv_freq) return tl_err_set(err, TL_ENOMEM, "out of memory");
    return 0;
}

void tl_model_ends_free(tl_model *m, tl_model_ends *e) {
    tl_model_weight_free(m, &e->embed);
    tl_model_weight_free(m, &e->lm_head);
    tl_model_vector_free(m, e->norm, m->cfg.hidden_size);
    tl_model_vector_free(m, e->inv_freq, e->rot_dim / 2);
}

void tl_model_set_kv(tl_model *m, int n_full) {
    m->kv_layers = n_full;
    m->kv_dim = m->cfg.n_kv_heads * m->cfg.head_dim;
    m->info.n_full_attn_layers = n_full;
    m->info.kv_bytes_per_token = (int64_t)n_full * 2 * m->kv_dim * (int64_t)sizeof(float);
}

static const char *dtype_label(const tl_model *m) {
    if (m->cfg.quant.bits) {
        static const char *const q[] = {"", "", "mlx-q2", "mlx-q3", "mlx-q4", "mlx-q5", "mlx-q6", "",
                                        "mlx-q8"};
        return m->cfg.quant.bits <= 8 && q[m->cfg.quant.bits][0] ? q[m->cfg.quant.bits] : "mlx";
    }
    const tl_tensor *e = tl_model_tensor(m, "embed_tokens.weight");
    return e ? tl_dtype_name(e->dtype) : "?";
}

int tl_model_open(tl_model **out, const char *dir, tl_backend *be, tl_err *err) {
    *out = NULL;
    tl_config cfg;
    memset(&cfg, 0, sizeof cfg);
    int rc = tl_config_load(&cfg, dir, err);
    if (rc) return rc;
    tl_st_set *st = NULL;
    if ((rc = tl_st_open_dir(&st, dir, err))) {
        tl_config_free(&cfg);
        return rc;
    }
    return tl_model_open_parts(out, dir, &cfg, st, be, err);
}

int tl_model_open_parts(tl_model **out, const char *dir, tl_config *cfg, tl_st_set *st,
                        tl_backend *be, tl_err *err) {
    *out = NULL;
    int rc;
    tl_model_priv *p = calloc(1, sizeof *p);
    if (!p) {
        tl_config_free(cfg);
        tl_st_free(st);
        return tl_err_set(err, TL_ENOMEM, "out of memory opening %s", dir);
    }
    tl_model *m = &p->m;
    m->be = be;
    m->cfg = *cfg;
    memset(cfg, 0, sizeof *cfg);
    m->st = st;
    snprintf(m->info.dir, sizeof m->info.dir, "%s", dir);
    switch (m->cfg.arch) {
    case TL_ARCH_LLAMA:
    case TL_ARCH_QWEN3: m->arch = &tl_arch_llama; break;
    case TL_ARCH_QWEN35: m->arch = &tl_arch_qwen35; break;
    default:
        rc = tl_err_set(err, TL_EUNSUP, "%s/config.json: model_type \"%s\" is not supported", dir,
                        m->cfg.model_type);
        tl_model_close(m);
        return rc;
    }
    p->prefix = k_prefixes[0];
    for (size_t i = 0; i < TL_ARRAY_LEN(k_prefixes); i++) {
        char full[256];
        if (get_fmt(m, full, sizeof full, k_prefixes[i], "embed_tokens", ".weight")) {
            p->prefix = k_prefixes[i];
            break;
        }
    }
    const tl_config *c = &m->cfg;
    tl_model_info *in = &m->info;
    in->arch = (tl_arch)c->arch;
    in->arch_name = m->arch->name;
    if (c->arch == TL_ARCH_QWEN3) in->arch_name = "qwen3";
    in->vocab_size = c->vocab_size;
    in->hidden_size = c->hidden_size;
    in->n_layers = c->n_layers;
    in->n_heads = c->n_heads;
    in->n_kv_heads = c->n_kv_heads;
    in->head_dim = c->head_dim;
    in->intermediate_size = c->intermediate_size;
    in->max_position_embeddings = c->max_position_embeddings;
    in->tied_embeddings = c->tie_word_embeddings;
    in->quant_bits = c->quant.bits;
    in->quant_group_size = c->quant.group_size;
    in->weight_dtype = dtype_label(m);
    in->synthetic = c->synthetic;
    in->bos_id = c->bos_id;
    in->n_eos = c->n_eos;
    memcpy(in->eos_ids, c->eos_ids, sizeof in->eos_ids);
    tl_mem_stats before, after;
    tl_mem_get(&before);
    /* No supported architecture has projection biases; refuse them here, once for all. */
    if (c->attention_bias || c->mlp_bias) {
        rc = tl_err_set(err, TL_EUNSUP, "config.json: attention_bias/mlp_bias true is not "
                        "supported for %s", c->model_type);
        tl_model_close(m);
        return tl_err_prefix(err, "loading %s: ", dir);
    }
    if ((rc = m->arch->load(m, err))) {
        tl_model_close(m);
        return tl_err_prefix(err, "loading %s: ", dir);
    }
    tl_mem_get(&after);
    in->weight_bytes = after.cur[TL_MEM_WEIGHTS] - before.cur[TL_MEM_WEIGHTS];
    *out = m;
    return 0;
}

void tl_model_mlp(tl_backend *be, float *x, float *xn, float *g, float *u, const float *norm,
                  const tl_weight *gate, const tl_weight *up, const tl_weight *down, int n, int H,
                  int I, float eps) {
    be->rmsnorm(be, xn, x, norm, n, H, eps);
    const tl_wmat *ws[2] = {gate->w, up->w};
    float *ys[2] = {g, u};
    tl_backend_matmul_n(be, 2, ws, xn, ys, n);
    be->swiglu(be, g, g, u, (size_t)n * I);
    be->matmul(be, down->w, g, xn, n);
    be->add(be, x, xn, (size_t)n * H);
}

void tl_model_head(tl_backend *be, const tl_batch *b, const float *x, float *hout, float *logits,
                   const float *norm, const tl_weight *head, int H, int vocab, float eps) {
    if (b->n_out == 0) return;
    /* only the rows that want logits go through the head: gather them first */
    for (int i = 0; i < b->n_out; i++)
        be->copy_rows(be, hout + (size_t)i * H, H, 0, x + (size_t)b->out_rows[i] * H, H, 0, 1, H);
    be->rmsnorm(be, hout, hout, norm, b->n_out, H, eps);
    be->matmul(be, head->w, hout, logits, b->n_out);
    be->to_host(be, b->logits, logits, (size_t)b->n_out * vocab * sizeof(float));
}

int tl_model_run_init(tl_model *m, const tl_run_dims *d, tl_err *err) {
    m->dims = *d;
    return m->arch->run_init(m, d, err);
}

void tl_model_close(tl_model *m) {
    if (!m) return;
    if (m->run && m->arch->run_free) m->arch->run_free(m);
    if (m->arch && m->arch->unload) m->arch->unload(m);
    tl_mem_add(TL_MEM_WEIGHTS, -m->mapped_bytes);
    if (m->st) tl_st_free(m->st);
    tl_config_free(&m->cfg);
    free(m);
}
