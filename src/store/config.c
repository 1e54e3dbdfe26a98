/* config.c — config.json and generation_config.json -> tl_config.
 *
 * Contract: the text is hostile input. Accepts the flat form and the Qwen3.5 VLM wrapper (fields
 * under "text_config"); architectures llama, qwen3, qwen3_5 / qwen3_5_text (anything else is
 * TL_EUNSUP naming it). RoPE facts come from rope_theta / rope_scaling (llama3) or the newer
 * rope_parameters dict; Qwen3.5 layer kinds from layer_types or full_attention_interval; MLX
 * quantization from "quantization" (else "quantization_config"), with per-module overrides.
 * generation_config.json's eos_token_id (int or list) and bos_token_id override config.json's,
 * and its sampling fields become defaults. Every error names the file and the JSON path, e.g.
 * "config.json: $.text_config.num_attention_heads: must be a positive integer". */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

#define CFG_MAX_BYTES (16u << 20)
#define CFG_MAX_LAYERS 4096

typedef struct {
    const char *file;
    const char *pre; /* "$." or "$.text_config." */
    tl_err *err;
} ctx;

static int bad(ctx *c, int code, const char *key, const char *what) {
    return tl_err_set(c->err, code, "%s: %s%s: %s", c->file, c->pre, key, what);
}

/* An integer field in [lo, hi]; absent -> def (or an error when required). */
static int get_int(ctx *c, json_t *o, const char *key, int required, long lo, long hi, int def,
                   int *out) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) {
        if (required) return bad(c, TL_EFORMAT, key, "required field is missing");
        *out = def;
        return 0;
    }
    /* Some writers emit integral floats (e.g. 4096.0). */
    double d;
    if (json_is_integer(v)) d = (double)json_integer_value(v);
    else if (json_is_real(v) && json_real_value(v) == floor(json_real_value(v))) d = json_real_value(v);
    else return bad(c, TL_EFORMAT, key, lo > 0 ? "must be a positive integer" : "must be an integer");
    if (d < (double)lo || d > (double)hi) {
        char m[128];
        if (lo == 1 && d < 1) snprintf(m, sizeof m, "must be a positive integer");
        else snprintf(m, sizeof m, "must be between %ld and %ld, got %.0f", lo, hi, d);
        return bad(c, TL_EFORMAT, key, m);
    }
    *out = (int)d;
    return 0;
}

static int get_float(ctx *c, json_t *o, const char *key, double lo, double hi, int lo_open,
                     float def, float *out, int *present) {
    json_t *v = json_object_get(o, key);
    if (present) *present = 0;
    if (!v || json_is_null(v)) {
        *out = def;
        return 0;
    }
    if (!json_is_number(v)) return bad(c, TL_EFORMAT, key, "must be a number");
    double d = json_number_value(v);
    if (!isfinite(d) || d < lo || d > hi || (lo_open && d == lo)) {
        char m[128];
        snprintf(m, sizeof m, "must be in %s%g, %g], got %g", lo_open ? "(" : "[", lo, hi, d);
        return bad(c, TL_EFORMAT, key, m);
    }
    *out = (float)d;
    if (present) *present = 1;
    return 0;
}

static int get_bool(ctx *c, json_t *o, const char *key, int def, int *out) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) *out = def;
    else if (json_is_boolean(v)) *out = json_is_true(v);
    else return bad(c, TL_EFORMAT, key, "must be true or false");
    return 0;
}

/* eos_token_id: an int or a list of ints. */
static int get_ids(ctx *c, json_t *o, const char *key, int *ids, int *n, int max) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v)) return 0;
    if (json_is_integer(v)) v = json_pack("[O]", v);
    else if (json_is_array(v)) json_incref(v);
    else return bad(c, TL_EFORMAT, key, "must be a token id or a list of token ids");
    size_t cnt = json_array_size(v);
    int rc = 0;
    if (cnt > (size_t)max) rc = bad(c, TL_ELIMIT, key, "more than 8 token ids");
    for (size_t i = 0; i < cnt && !rc; i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_integer(e) || json_integer_value(e) < 0 || json_integer_value(e) > INT32_MAX)
            rc = bad(c, TL_EFORMAT, key, "token ids must be non-negative integers");
        else ids[i] = (int)json_integer_value(e);
    }
    if (!rc) *n = (int)cnt;
    json_decref(v);
    return rc;
}

static int valid_bits(int b) {
    return b == 2 || b == 3 || b == 4 || b == 5 || b == 6 || b == 8;
}
static int valid_group(int g) {
    return g == 32 || g == 64 || g == 128;
}

/* A string field that, when present, must be `want`; else TL_EUNSUP "quantization <what> ... is
 * not supported (<only>)". */
static int want_str(ctx *c, json_t *o, const char *key, const char *want, const char *what,
                    const char *only) {
    json_t *v = json_object_get(o, key);
    if (!v || (json_is_string(v) && !strcmp(json_string_value(v), want))) return 0;
    char msg[160];
    snprintf(msg, sizeof msg, "quantization %s %.64s is not supported (%s)", what,
             json_is_string(v) ? json_string_value(v) : "(not a string)", only);
    return bad(c, TL_EUNSUP, key, msg);
}

static int parse_quant(tl_config *cfg, ctx *c, json_t *q, const char *qkey) {
    char pre[64];
    snprintf(pre, sizeof pre, "$.%s.", qkey);
    ctx qc = {c->file, pre, c->err};
    if (!json_is_object(q)) return bad(c, TL_EFORMAT, qkey, "must be an object");
    int rc;
    if ((rc = want_str(&qc, q, "quant_method", "mlx", "method", "MLX affine only")) ||
        (rc = want_str(&qc, q, "mode", "affine", "mode", "affine only")))
        return rc;
    if ((rc = get_int(&qc, q, "bits", 1, 1, 16, 4, &cfg->quant.bits))) return rc;
    if ((rc = get_int(&qc, q, "group_size", 0, 1, 1 << 20, 64, &cfg->quant.group_size))) return rc;
    if (!valid_bits(cfg->quant.bits)) return bad(&qc, TL_EUNSUP, "bits", "must be 2, 3, 4, 5, 6 or 8");
    if (!valid_group(cfg->quant.group_size))
        return bad(&qc, TL_EUNSUP, "group_size", "must be 32, 64 or 128");
    size_t n = 0;
    const char *key;
    json_t *v;
    json_object_foreach(q, key, v) n += json_is_object(v) || json_is_false(v);
    if (!n) return 0;
    cfg->quant_override_names = calloc(n, sizeof(char *));
    cfg->quant_overrides = calloc(n, sizeof(tl_quant));
    if (!cfg->quant_override_names || !cfg->quant_overrides)
        return tl_err_set(c->err, TL_ENOMEM, "%s: out of memory", c->file);
    json_object_foreach(q, key, v) {
        tl_quant o = {0, 0};
        if (json_is_object(v)) {
            char p2[600];
            snprintf(p2, sizeof p2, "$.%s[\"%.500s\"].", qkey, key);
            ctx oc = {c->file, p2, c->err};
            if ((rc = get_int(&oc, v, "bits", 1, 1, 16, 0, &o.bits))) return rc;
            if ((rc = get_int(&oc, v, "group_size", 0, 1, 1 << 20, cfg->quant.group_size,
                              &o.group_size)))
                return rc;
            if (!valid_bits(o.bits)) return bad(&oc, TL_EUNSUP, "bits", "must be 2, 3, 4, 5, 6 or 8");
            if (!valid_group(o.group_size))
                return bad(&oc, TL_EUNSUP, "group_size", "must be 32, 64 or 128");
        } else if (!json_is_false(v)) {
            continue; /* scalars: bits, group_size, mode, ... */
        }
        char *nm = strdup(key);
        if (!nm) return tl_err_set(c->err, TL_ENOMEM, "%s: out of memory", c->file);
        cfg->quant_override_names[cfg->n_quant_overrides] = nm;
        cfg->quant_overrides[cfg->n_quant_overrides++] = o;
    }
    return 0;
}

/* rope_scaling (or rope_parameters): rope_type default / llama3; others are not supported. */
static int parse_rope(tl_config *cfg, ctx *c, json_t *tc) {
    int rc;
    json_t *rp = json_object_get(tc, "rope_parameters");
    if (rp && !json_is_null(rp) && !json_is_object(rp))
        return bad(c, TL_EFORMAT, "rope_parameters", "must be an object");
    char pre[80];
    snprintf(pre, sizeof pre, "%srope_parameters.", c->pre);
    ctx rc_ = {c->file, pre, c->err};
    float theta_top = 0, prf = 0;
    int has_theta = 0, has_prf = 0;
    if ((rc = get_float(c, tc, "rope_theta", 0, 1e12, 1, 0, &theta_top, &has_theta))) return rc;
    if (has_theta) cfg->rope_theta = theta_top;
    else if (json_is_object(rp)) {
        if ((rc = get_float(&rc_, rp, "rope_theta", 0, 1e12, 1, 0, &cfg->rope_theta, &has_theta)))
            return rc;
    }
    if (!has_theta) cfg->rope_theta = cfg->arch == TL_ARCH_QWEN35 ? 10000000.0f : 10000.0f;
    if ((rc = get_float(c, tc, "partial_rotary_factor", 0, 1, 1, 1, &prf, &has_prf))) return rc;
    if (!has_prf && json_is_object(rp))
        if ((rc = get_float(&rc_, rp, "partial_rotary_factor", 0, 1, 1, 1, &prf, &has_prf)))
            return rc;
    /* transformers' Qwen3.5 config defaults partial_rotary_factor to 0.25 (RoPE on 64 of 256
     * dims); other architectures rotate the whole head. */
    cfg->partial_rotary_factor = has_prf ? prf : cfg->arch == TL_ARCH_QWEN35 ? 0.25f : 1.0f;

    json_t *rs = json_object_get(tc, "rope_scaling");
    ctx *sc = c;
    char pre2[80];
    snprintf(pre2, sizeof pre2, "%srope_scaling.", c->pre);
    ctx sctx = {c->file, pre2, c->err};
    if (rs && !json_is_null(rs)) {
        if (!json_is_object(rs)) return bad(c, TL_EFORMAT, "rope_scaling", "must be an object or null");
        sc = &sctx;
    } else if (json_is_object(rp)) {
        rs = rp;
        sc = &rc_;
    } else {
        return 0;
    }
    json_t *ty = json_object_get(rs, "rope_type");
    if (!ty) ty = json_object_get(rs, "type");
    const char *t = json_is_string(ty) ? json_string_value(ty) : NULL;
    if (ty && !t) return bad(sc, TL_EFORMAT, "rope_type", "must be a string");
    if (!t || !strcmp(t, "default")) return 0;
    if (strcmp(t, "llama3")) {
        char m[128];
        snprintf(m, sizeof m, "RoPE scaling \"%.64s\" is not supported (default, llama3)", t);
        return bad(sc, TL_EUNSUP, "rope_type", m);
    }
    if ((rc = get_float(sc, rs, "factor", 0, 1e6, 1, 0, &cfg->rope_factor, NULL))) return rc;
    if (cfg->rope_factor == 0) return bad(sc, TL_EFORMAT, "factor", "required for llama3 RoPE");
    if ((rc = get_float(sc, rs, "low_freq_factor", 0, 1e6, 1, 1, &cfg->rope_low_freq_factor, NULL)))
        return rc;
    if ((rc = get_float(sc, rs, "high_freq_factor", 0, 1e6, 1, 4, &cfg->rope_high_freq_factor,
                        NULL)))
        return rc;
    if (cfg->rope_high_freq_factor <= cfg->rope_low_freq_factor)
        return bad(sc, TL_EFORMAT, "high_freq_factor", "must be greater than low_freq_factor");
    return get_int(sc, rs, "original_max_position_embeddings", 0, 1, INT32_MAX, 8192,
                   &cfg->rope_original_max_pos);
}

static int parse_layers(tl_config *cfg, ctx *c, json_t *tc) {
    int n = cfg->n_layers, rc;
    cfg->layer_is_full = calloc((size_t)n, 1);
    if (!cfg->layer_is_full) return tl_err_set(c->err, TL_ENOMEM, "%s: out of memory", c->file);
    if (cfg->arch != TL_ARCH_QWEN35) {
        memset(cfg->layer_is_full, 1, (size_t)n);
        return 0;
    }
    if ((rc = get_int(c, tc, "full_attention_interval", 0, 1, CFG_MAX_LAYERS, 4,
                      &cfg->full_attention_interval)))
        return rc;
    json_t *lt = json_object_get(tc, "layer_types");
    if (lt && !json_is_null(lt)) {
        if (!json_is_array(lt)) return bad(c, TL_EFORMAT, "layer_types", "must be a list");
        if (json_array_size(lt) != (size_t)n) {
            char m[128];
            snprintf(m, sizeof m, "has %zu entries but num_hidden_layers is %d",
                     json_array_size(lt), n);
            return bad(c, TL_EFORMAT, "layer_types", m);
        }
        for (int i = 0; i < n; i++) {
            const char *s = json_string_value(json_array_get(lt, (size_t)i));
            if (s && !strcmp(s, "full_attention")) cfg->layer_is_full[i] = 1;
            else if (!s || strcmp(s, "linear_attention")) {
                char m[160];
                snprintf(m, sizeof m, "entry %d is %s%.40s%s (expected \"linear_attention\" or \"full_attention\")",
                         i, s ? "\"" : "", s ? s : "not a string", s ? "\"" : "");
                return bad(c, TL_EFORMAT, "layer_types", m);
            }
        }
    } else {
        for (int i = 0; i < n; i++)
            cfg->layer_is_full[i] = (i + 1) % cfg->full_attention_interval == 0;
    }
    return 0;
}

static int parse_config(tl_config *cfg, const char *fname, json_t *root, tl_err *err) {
    ctx top = {fname, "$.", err};
    if (!json_is_object(root)) return tl_err_set(err, TL_EFORMAT, "%s: $: not a JSON object", fname);
    json_t *tc = json_object_get(root, "text_config");
    ctx c = top;
    if (tc && !json_is_null(tc)) {
        if (!json_is_object(tc)) return bad(&top, TL_EFORMAT, "text_config", "must be an object");
        c.pre = "$.text_config.";
    } else {
        tc = root;
    }
    json_t *mt = json_object_get(root, "model_type");
    if (!mt) mt = json_object_get(tc, "model_type");
    if (!json_is_string(mt)) return bad(&top, TL_EFORMAT, "model_type", "missing or not a string");
    const char *t = json_string_value(mt);
    json_t *tmt = json_object_get(tc, "model_type");
    const char *tt = tc != root && json_is_string(tmt) ? json_string_value(tmt) : t;
    snprintf(cfg->model_type, sizeof cfg->model_type, "%s", t);
    if (!strcmp(tt, "llama")) cfg->arch = TL_ARCH_LLAMA;
    else if (!strcmp(tt, "qwen3")) cfg->arch = TL_ARCH_QWEN3;
    else if (!strcmp(tt, "qwen3_5") || !strcmp(tt, "qwen3_5_text")) cfg->arch = TL_ARCH_QWEN35;
    else {
        char m[160];
        snprintf(m, sizeof m, "architecture \"%.64s\" is not supported (llama, qwen3, qwen3_5)", tt);
        return bad(tc != root && json_is_string(tmt) ? &c : &top, TL_EUNSUP, "model_type", m);
    }
    int rc;
    if ((rc = get_int(&c, tc, "vocab_size", 1, 1, 1 << 24, 0, &cfg->vocab_size))) return rc;
    if ((rc = get_int(&c, tc, "hidden_size", 1, 1, 1 << 17, 0, &cfg->hidden_size))) return rc;
    if ((rc = get_int(&c, tc, "num_hidden_layers", 1, 1, CFG_MAX_LAYERS, 0, &cfg->n_layers)))
        return rc;
    if ((rc = get_int(&c, tc, "num_attention_heads", 1, 1, 4096, 0, &cfg->n_heads))) return rc;
    if ((rc = get_int(&c, tc, "num_key_value_heads", 0, 1, 4096, cfg->n_heads, &cfg->n_kv_heads)))
        return rc;
    if (cfg->n_heads % cfg->n_kv_heads)
        return bad(&c, TL_EFORMAT, "num_key_value_heads", "must divide num_attention_heads");
    int def_hd = cfg->hidden_size % cfg->n_heads ? 0 : cfg->hidden_size / cfg->n_heads;
    if ((rc = get_int(&c, tc, "head_dim", !def_hd, 1, 4096, def_hd, &cfg->head_dim))) return rc;
    if ((rc = get_int(&c, tc, "intermediate_size", 1, 1, 1 << 20, 0, &cfg->intermediate_size)))
        return rc;
    if ((rc = get_int(&c, tc, "max_position_embeddings", 0, 1, INT32_MAX, 2048,
                      &cfg->max_position_embeddings)))
        return rc;
    if ((rc = get_float(&c, tc, "rms_norm_eps", 0, 1, 1, 1e-6f, &cfg->rms_norm_eps, NULL)))
        return rc;
    /* tie_word_embeddings: Qwen3.5's wrapper mirrors it at the top level. */
    json_t *tie = json_object_get(tc, "tie_word_embeddings");
    if ((rc = get_bool(tie ? &c : &top, tie ? tc : root, "tie_word_embeddings", 0,
                       &cfg->tie_word_embeddings)))
        return rc;
    if ((rc = get_bool(&c, tc, "attention_bias", 0, &cfg->attention_bias))) return rc;
    if ((rc = get_bool(&c, tc, "mlp_bias", 0, &cfg->mlp_bias))) return rc;
    if ((rc = parse_rope(cfg, &c, tc))) return rc;
    if (cfg->arch == TL_ARCH_QWEN35) {
        if ((rc = get_int(&c, tc, "linear_num_key_heads", 1, 1, 4096, 0, &cfg->linear_num_key_heads)))
            return rc;
        if ((rc = get_int(&c, tc, "linear_num_value_heads", 1, 1, 4096, 0,
                          &cfg->linear_num_value_heads)))
            return rc;
        if (cfg->linear_num_value_heads % cfg->linear_num_key_heads)
            return bad(&c, TL_EFORMAT, "linear_num_value_heads",
                       "must be a multiple of linear_num_key_heads");
        if ((rc = get_int(&c, tc, "linear_key_head_dim", 1, 1, 4096, 0, &cfg->linear_key_head_dim)))
            return rc;
        if ((rc = get_int(&c, tc, "linear_value_head_dim", 1, 1, 4096, 0,
                          &cfg->linear_value_head_dim)))
            return rc;
        if ((rc = get_int(&c, tc, "linear_conv_kernel_dim", 1, 1, 64, 0,
                          &cfg->linear_conv_kernel_dim)))
            return rc;
        if ((rc = get_bool(&c, tc, "attn_output_gate", 1, &cfg->attn_output_gate))) return rc;
    }
    if ((rc = parse_layers(cfg, &c, tc))) return rc;
    int rot = (int)(cfg->head_dim * cfg->partial_rotary_factor);
    if (rot < 2 || rot % 2)
        return bad(&c, TL_EFORMAT, "partial_rotary_factor",
                   "head_dim x partial_rotary_factor must be an even number of at least 2");
    /* MLX quantization: "quantization", else an MLX-style "quantization_config". */
    json_t *q = json_object_get(root, "quantization");
    const char *qkey = "quantization";
    if (!q || json_is_null(q)) {
        q = json_object_get(root, "quantization_config");
        qkey = "quantization_config";
    }
    if (q && !json_is_null(q) && (rc = parse_quant(cfg, &top, q, qkey))) return rc;
    /* special ids */
    json_t *bos_o = json_object_get(tc, "bos_token_id") ? tc : root;
    if ((rc = get_int(bos_o == tc ? &c : &top, bos_o, "bos_token_id", 0, 0, INT32_MAX, -1,
                      &cfg->bos_id)))
        return rc;
    if (json_object_get(tc, "eos_token_id")) rc = get_ids(&c, tc, "eos_token_id", cfg->eos_ids, &cfg->n_eos, 8);
    else rc = get_ids(&top, root, "eos_token_id", cfg->eos_ids, &cfg->n_eos, 8);
    if (rc) return rc;
    if ((rc = get_bool(&top, root, "tallow_synthetic", 0, &cfg->synthetic))) return rc;
    json_t *dt = json_object_get(tc, "torch_dtype");
    if (!dt) dt = json_object_get(tc, "dtype");
    if (!dt) dt = json_object_get(root, "torch_dtype");
    if (!dt) dt = json_object_get(root, "dtype");
    if (json_is_string(dt)) snprintf(cfg->torch_dtype, sizeof cfg->torch_dtype, "%s", json_string_value(dt));
    return 0;
}

static int parse_gen(tl_config *cfg, const char *fname, json_t *g, tl_err *err) {
    ctx c = {fname, "$.", err};
    if (!json_is_object(g)) return tl_err_set(err, TL_EFORMAT, "%s: $: not a JSON object", fname);
    int rc, n = 0, ids[8];
    if ((rc = get_ids(&c, g, "eos_token_id", ids, &n, 8))) return rc;
    if (n) {
        memcpy(cfg->eos_ids, ids, sizeof ids);
        cfg->n_eos = n;
    }
    if (json_object_get(g, "bos_token_id") &&
        (rc = get_int(&c, g, "bos_token_id", 0, 0, INT32_MAX, -1, &cfg->bos_id)))
        return rc;
    if ((rc = get_float(&c, g, "temperature", 0, 100, 0, 1, &cfg->temperature, &cfg->has_temperature)))
        return rc;
    if ((rc = get_float(&c, g, "top_p", 0, 1, 1, 1, &cfg->top_p, &cfg->has_top_p))) return rc;
    if ((rc = get_float(&c, g, "min_p", 0, 1, 0, 0, &cfg->min_p, &cfg->has_min_p))) return rc;
    if ((rc = get_float(&c, g, "repetition_penalty", 0, 100, 1, 1, &cfg->repetition_penalty,
                        &cfg->has_repetition_penalty)))
        return rc;
    json_t *k = json_object_get(g, "top_k");
    if (k && !json_is_null(k)) {
        if ((rc = get_int(&c, g, "top_k", 0, 0, INT32_MAX, 0, &cfg->top_k))) return rc;
        cfg->has_top_k = 1;
    }
    return 0;
}

static json_t *load_json(const char *fname, const char *text, size_t len, tl_err *err) {
    json_error_t je;
    json_t *j = json_loadb(text, len, 0, &je);
    if (!j)
        tl_err_set(err, TL_EFORMAT, "%s: invalid JSON: %s (line %d, column %d)", fname, je.text,
                   je.line, je.column);
    return j;
}

int tl_config_parse(tl_config *cfg, const char *fname, const char *json, size_t len,
                    const char *gen_json, size_t gen_len, tl_err *err) {
    memset(cfg, 0, sizeof *cfg);
    cfg->bos_id = -1;
    cfg->partial_rotary_factor = 1.0f;
    json_t *root = load_json(fname, json, len, err);
    if (!root) return -TL_EFORMAT;
    int rc = parse_config(cfg, fname, root, err);
    json_decref(root);
    if (!rc && gen_json) {
        json_t *g = load_json("generation_config.json", gen_json, gen_len, err);
        rc = g ? parse_gen(cfg, "generation_config.json", g, err) : -TL_EFORMAT;
        json_decref(g);
    }
    if (rc) tl_config_free(cfg);
    return rc;
}

int tl_config_load(tl_config *cfg, const char *dir, tl_err *err) {
    char path[4096], gpath[4096];
    memset(cfg, 0, sizeof *cfg);
    if (tl_path_join(path, sizeof path, dir, "config.json") ||
        tl_path_join(gpath, sizeof gpath, dir, "generation_config.json"))
        return tl_err_set(err, TL_EINVAL, "%s: path too long", dir);
    if (!tl_file_exists(path))
        return tl_err_set(err, TL_ENOTFOUND, "%s: no config.json (not a model directory?)", dir);
    char *text = NULL, *gen = NULL;
    size_t len = 0, glen = 0;
    int rc = tl_read_file(path, CFG_MAX_BYTES, &text, &len, err);
    if (rc) return rc;
    if (tl_file_exists(gpath) && (rc = tl_read_file(gpath, CFG_MAX_BYTES, &gen, &glen, err))) {
        free(text);
        return rc;
    }
    rc = tl_config_parse(cfg, path, text, len, gen, glen, err);
    if (rc && gen && err && strstr(err->msg, "generation_config.json") == err->msg)
        tl_err_prefix(err, "%s/", dir);
    free(text);
    free(gen);
    return rc;
}

void tl_config_free(tl_config *cfg) {
    if (!cfg) return;
    free(cfg->layer_is_full);
    for (int i = 0; i < cfg->n_quant_overrides; i++) free(cfg->quant_override_names[i]);
    free(cfg->quant_override_names);
    free(cfg->quant_overrides);
    cfg->layer_is_full = NULL;
    cfg->quant_override_names = NULL;
    cfg->quant_overrides = NULL;
    cfg->n_quant_overrides = 0;
}

tl_quant tl_config_quant_for(const tl_config *cfg, const char *module) {
    for (int i = 0; i < cfg->n_quant_overrides; i++)
        if (!strcmp(cfg->quant_override_names[i], module)) return cfg->quant_overrides[i];
    return cfg->quant;
}
