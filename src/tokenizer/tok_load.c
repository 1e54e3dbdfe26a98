/* tok_load.c — tokenizer.json and tokenizer_config.json -> tl_tokenizer.
 *
 * Contract: accepts what Hugging Face `tokenizers` writes for byte-level BPE models: model BPE
 * (vocab, merges as "a b" or ["a", "b"], ignore_merges; no dropout, byte fallback or subword
 * affixes), added_tokens with their flags, normalizer null / NFC / NFD / NFKC / NFKD /
 * Sequence, pre_tokenizer Split / ByteLevel / Sequence, post_processor null / ByteLevel /
 * TemplateProcessing / Sequence, decoder ByteLevel. Anything else fails with TL_EUNSUP naming
 * the component and its JSON path; malformed content fails with TL_EFORMAT and the path.
 * "truncation" and "padding" are ignored, as transformers ignores them unless asked.
 * The file is hostile input: every type, id and reference is checked. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_json.h"

#define TOK_MAX_FILE (512u << 20)
#define TOK_MAX_ID (1 << 26)

/* ---- byte-level alphabet (GPT-2 bytes_to_unicode) ---- */
static uint32_t byte_to_cp(int b) {
    if ((b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF))
        return (uint32_t)b;
    int n = 0; /* rank of b among the bytes that are shifted up to 256.. */
    for (int x = 0; x < b; x++)
        if (!((x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF))) n++;
    return 256u + (uint32_t)n;
}

/* Map a token string from the byte-level alphabet to raw bytes in out (cap >= n). Returns the
 * byte count, or -1 when a character is outside the alphabet (or the string is not UTF-8). */
static long bytelevel_to_raw(const int16_t *cp_to_byte, const char *s, size_t n, char *out) {
    size_t i = 0, o = 0;
    while (i < n) {
        int l = tok_utf8_seq((const uint8_t *)s + i, n - i);
        if (l <= 0) return -1;
        uint32_t cp = tok_utf8_cp((const uint8_t *)s + i, l);
        if (cp >= 324 || cp_to_byte[cp] < 0) return -1;
        out[o++] = (char)cp_to_byte[cp];
        i += (size_t)l;
    }
    return (long)o;
}

/* ---- building the tables ---- */
static int arena_add(tl_tokenizer *t, const char *s, size_t n, uint32_t *off, tl_err *err) {
    if (t->arena_len + n + 1 > t->arena_cap) {
        size_t cap = t->arena_cap ? t->arena_cap * 2 : 1 << 20;
        while (cap < t->arena_len + n + 1) cap *= 2;
        if (cap > UINT32_MAX) return tl_err_set(err, TL_ELIMIT, "%s: token text over 4 GiB", t->what);
        char *a = realloc(t->arena, cap);
        if (!a) return tl_err_set(err, TL_ENOMEM, "%s: out of memory for token text", t->what);
        t->arena = a, t->arena_cap = cap;
    }
    memcpy(t->arena + t->arena_len, s, n);
    t->arena[t->arena_len + n] = 0;
    *off = (uint32_t)t->arena_len;
    t->arena_len += n + 1;
    return 0;
}

static int ids_reserve(tl_tokenizer *t, int32_t id, tl_err *err) {
    if (id < t->n_ids) return 0;
    if (id >= t->ids_cap) { /* grows geometrically; new entries are zero (absent) */
        int32_t cap = t->ids_cap ? t->ids_cap : 1024;
        while (cap <= id) cap *= 2;
        uint32_t *o = realloc(t->tok_off, (size_t)cap * sizeof *o);
        if (o) t->tok_off = o;
        uint32_t *l = realloc(t->tok_len, (size_t)cap * sizeof *l);
        if (l) t->tok_len = l;
        uint8_t *f = realloc(t->tok_flags, (size_t)cap);
        if (f) t->tok_flags = f;
        if (!o || !l || !f) return tl_err_set(err, TL_ENOMEM, "%s: out of memory for %d ids", t->what, cap);
        memset(t->tok_flags + t->ids_cap, 0, (size_t)(cap - t->ids_cap));
        memset(t->tok_len + t->ids_cap, 0, (size_t)(cap - t->ids_cap) * sizeof *l);
        memset(t->tok_off + t->ids_cap, 0, (size_t)(cap - t->ids_cap) * sizeof *o);
        t->ids_cap = cap;
    }
    t->n_ids = id + 1;
    return 0;
}

/* Set the bytes an id decodes to (HF ByteLevel decoder: characters of the alphabet become
 * bytes; a string with any other character is kept as its UTF-8). */
static int token_set(tl_tokenizer *t, const int16_t *cp_to_byte, int32_t id, const char *s,
                     size_t n, uint8_t flags, char *scratch, tl_err *err) {
    int rc = ids_reserve(t, id, err);
    if (rc) return rc;
    long raw = bytelevel_to_raw(cp_to_byte, s, n, scratch);
    uint32_t off;
    if (raw >= 0) {
        rc = arena_add(t, scratch, (size_t)raw, &off, err);
        n = (size_t)raw;
        flags |= TOK_F_BYTELEVEL;
    } else {
        rc = arena_add(t, s, n, &off, err);
    }
    if (rc) return rc;
    t->tok_off[id] = off;
    t->tok_len[id] = (uint32_t)n;
    t->tok_flags[id] = (uint8_t)(flags | TOK_F_PRESENT);
    if (n > t->max_token_len) t->max_token_len = n;
    return 0;
}

int32_t tok_vocab_find(const tl_tokenizer *t, const char *s, size_t n) {
    if (!t->vhash_cap) return -1;
    uint32_t mask = t->vhash_cap - 1;
    uint64_t h = tok_hash(s, n);
    for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
        const tok_vslot *v = &t->vhash[i];
        if (v->id < 0) return -1;
        if (v->hash == (uint32_t)h && v->len == n && !memcmp(t->arena + v->off, s, n)) return v->id;
    }
}

/* Built from the model's vocabulary before added tokens are read: an added token may reuse a
 * model id (its text then decodes), but BPE still sees the model's token. */
static int vhash_build(tl_tokenizer *t, tl_err *err) {
    uint32_t cap = 16;
    while (cap < (uint32_t)t->n_ids * 2u) cap *= 2;
    t->vhash = malloc((size_t)cap * sizeof *t->vhash);
    if (!t->vhash) return tl_err_set(err, TL_ENOMEM, "%s: out of memory (vocab hash)", t->what);
    for (uint32_t i = 0; i < cap; i++) t->vhash[i].id = -1;
    t->vhash_cap = cap;
    for (int b = 0; b < 256; b++) t->byte_id[b] = -1;
    for (int32_t id = 0; id < t->n_ids; id++) {
        uint8_t f = t->tok_flags[id];
        /* Only tokens in the byte-level alphabet are reachable by BPE. */
        if (!(f & TOK_F_PRESENT) || !(f & TOK_F_BYTELEVEL)) continue;
        const char *s = t->arena + t->tok_off[id];
        size_t n = t->tok_len[id];
        if (tok_vocab_find(t, s, n) >= 0) continue; /* duplicate bytes: first id wins */
        uint64_t h = tok_hash(s, n);
        uint32_t i = (uint32_t)h & (cap - 1);
        while (t->vhash[i].id >= 0) i = (i + 1) & (cap - 1);
        t->vhash[i] = (tok_vslot){id, (uint32_t)h, t->tok_off[id], (uint32_t)n};
        if (n == 1 && t->byte_id[(uint8_t)s[0]] < 0) t->byte_id[(uint8_t)s[0]] = id;
    }
    return 0;
}

/* ---- added-token trie ---- */
static int trie_add(tok_trie *tr, const uint8_t *s, size_t n, int32_t added, tl_err *err) {
    if (!tr->nodes) {
        for (int i = 0; i < 256; i++) tr->first[i] = -1;
    }
    int32_t cur = -1; /* -1 = root */
    for (size_t i = 0; i < n; i++) {
        int32_t c = cur < 0 ? tr->first[s[i]] : tr->nodes[cur].child;
        if (cur >= 0)
            while (c >= 0 && tr->nodes[c].byte != s[i]) c = tr->nodes[c].next;
        if (c < 0) {
            if (tr->n == tr->cap) {
                int32_t cap = tr->cap ? tr->cap * 2 : 256;
                tok_trie_node *nn = realloc(tr->nodes, (size_t)cap * sizeof *nn);
                if (!nn) return tl_err_set(err, TL_ENOMEM, "out of memory (added-token trie)");
                tr->nodes = nn, tr->cap = cap;
            }
            c = tr->n++;
            tr->nodes[c] = (tok_trie_node){.child = -1, .next = -1, .added = -1, .byte = s[i]};
            if (cur < 0) tr->first[s[i]] = c;
            else {
                tr->nodes[c].next = tr->nodes[cur].child;
                tr->nodes[cur].child = c;
            }
        }
        cur = c;
    }
    if (cur >= 0 && tr->nodes[cur].added < 0) tr->nodes[cur].added = added;
    return 0;
}

/* ---- JSON helpers ---- */
static int want_type(json_t *v, int type, const char *what, const char *path, tl_err *err) {
    if (v && (int)json_typeof(v) == type) return 0;
    static const char *names[] = {"object", "array", "string", "integer", "real", "true", "false", "null"};
    return tl_err_set(err, TL_EFORMAT, "%s: %s must be a JSON %s", what, path,
                      type >= 0 && type < 8 ? names[type] : "value");
}

static int get_bool(json_t *obj, const char *key, int def) {
    json_t *v = json_object_get(obj, key);
    if (json_is_boolean(v)) return json_is_true(v);
    return def;
}

static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

/* ---- components ---- */
static int load_normalizer(tl_tokenizer *t, json_t *n, const char *path, tl_err *err) {
    if (!n || json_is_null(n)) return 0;
    if (!json_is_object(n)) return want_type(n, JSON_OBJECT, t->what, path, err);
    const char *type = json_string_value(json_object_get(n, "type"));
    if (!type) return tl_err_set(err, TL_EFORMAT, "%s: %s.type missing", t->what, path);
    if (!strcmp(type, "Sequence")) {
        json_t *arr = json_object_get(n, "normalizers");
        if (!json_is_array(arr)) return want_type(arr, JSON_ARRAY, t->what, "normalizer.normalizers", err);
        for (size_t i = 0; i < json_array_size(arr); i++) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s.normalizers[%zu]", path, i);
            int rc = load_normalizer(t, json_array_get(arr, i), sub, err);
            if (rc) return rc;
        }
        return 0;
    }
    tok_norm want = !strcmp(type, "NFC")    ? TOK_NORM_NFC
                    : !strcmp(type, "NFD")  ? TOK_NORM_NFD
                    : !strcmp(type, "NFKC") ? TOK_NORM_NFKC
                    : !strcmp(type, "NFKD") ? TOK_NORM_NFKD
                                            : TOK_NORM_NONE;
    if (want == TOK_NORM_NONE)
        return tl_err_set(err, TL_EUNSUP, "%s: %s: normalizer type '%s' is not supported "
                          "(supported: NFC, NFD, NFKC, NFKD, Sequence, null)", t->what, path, type);
    if (t->norm != TOK_NORM_NONE && t->norm != want)
        return tl_err_set(err, TL_EUNSUP, "%s: %s: more than one Unicode normalization form",
                          t->what, path);
    t->norm = want;
    return 0;
}

/* HF compiles these patterns with Oniguruma, whose \s is the White_Space property. PCRE2's
 * \s (UCP) also takes U+180E and is not configurable, so \s and \S are spelled out: outside
 * a class as a class of their own, inside a class as its members (\S inside a class is kept).
 * Returns a malloc'd pattern. */
#define WS_MEMBERS "\\t-\\r\\x{20}\\x{85}\\x{a0}\\x{1680}\\x{2000}-\\x{200a}\\x{2028}\\x{2029}\\x{202f}\\x{205f}\\x{3000}"
static char *regex_onig_spaces(const char *re, size_t n, size_t *out_n) {
    static const char members[] = WS_MEMBERS;
    size_t cap = n * (sizeof members + 4) + 1;
    char *o = malloc(cap);
    if (!o) return NULL;
    size_t k = 0;
    int in_class = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = re[i];
        if (ch == '\\' && i + 1 < n) {
            char e = re[i + 1];
            if (e == 's' || (e == 'S' && !in_class)) {
                if (!in_class) o[k++] = '[';
                if (e == 'S') o[k++] = '^';
                memcpy(o + k, members, sizeof members - 1);
                k += sizeof members - 1;
                if (!in_class) o[k++] = ']';
            } else {
                o[k++] = ch;
                o[k++] = e;
            }
            i++;
            continue;
        }
        if (!in_class && ch == '[') {
            in_class = 1;
            o[k++] = ch;
            /* A ']' right after '[' or '[^' is a member, not the end. */
            if (i + 1 < n && re[i + 1] == '^') o[k++] = re[++i];
            if (i + 1 < n && re[i + 1] == ']') o[k++] = re[++i];
            continue;
        }
        if (in_class && ch == '[' && i + 1 < n && re[i + 1] == ':') { /* [:alpha:] */
            const char *end = memchr(re + i + 2, ']', n - i - 2);
            if (end && end[-1] == ':') {
                size_t l = (size_t)(end - (re + i)) + 1;
                memcpy(o + k, re + i, l);
                k += l, i += l - 1;
                continue;
            }
        }
        if (in_class && ch == ']') in_class = 0;
        o[k++] = ch;
    }
    o[k] = 0;
    *out_n = k;
    return o;
}

static int compile_regex(tl_tokenizer *t, tok_pre *p, const char *re, size_t n, int literal,
                         const char *path, tl_err *err) {
    int ecode;
    PCRE2_SIZE eoff;
    uint32_t opts = literal ? PCRE2_UTF | PCRE2_LITERAL : PCRE2_UTF | PCRE2_UCP;
    size_t rn = n;
    char *rw = literal ? NULL : regex_onig_spaces(re, n, &rn);
    if (!literal && !rw) return tl_err_set(err, TL_ENOMEM, "out of memory");
    p->re = pcre2_compile((PCRE2_SPTR)(rw ? rw : re), rn, opts, &ecode, &eoff, NULL);
    if (!p->re && rw) { /* report the error against the pattern as the file spells it */
        pcre2_code *orig = pcre2_compile((PCRE2_SPTR)re, n, opts, &ecode, &eoff, NULL);
        pcre2_code_free(orig);
    }
    free(rw);
    if (!p->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(ecode, msg, sizeof msg);
        return tl_err_set(err, TL_EFORMAT, "%s: %s: invalid regex at offset %zu: %s", t->what,
                          path, (size_t)eoff, (char *)msg);
    }
    p->jit = pcre2_jit_compile(p->re, PCRE2_JIT_COMPLETE) == 0;
    return 0;
}

/* The regex HF's ByteLevel pre-tokenizer uses when use_regex is true (GPT-2's). */
static const char GPT2_RE[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

static int load_pre(tl_tokenizer *t, json_t *p, const char *path, tl_err *err) {
    if (!p || json_is_null(p)) return 0;
    if (!json_is_object(p)) return want_type(p, JSON_OBJECT, t->what, path, err);
    const char *type = json_string_value(json_object_get(p, "type"));
    if (!type) return tl_err_set(err, TL_EFORMAT, "%s: %s.type missing", t->what, path);
    if (!strcmp(type, "Sequence")) {
        json_t *arr = json_object_get(p, "pretokenizers");
        char sub[256];
        snprintf(sub, sizeof sub, "%s.pretokenizers", path);
        if (!json_is_array(arr)) return want_type(arr, JSON_ARRAY, t->what, sub, err);
        for (size_t i = 0; i < json_array_size(arr); i++) {
            snprintf(sub, sizeof sub, "%s.pretokenizers[%zu]", path, i);
            int rc = load_pre(t, json_array_get(arr, i), sub, err);
            if (rc) return rc;
        }
        return 0;
    }
    if (t->n_pre == TOK_MAX_STEPS)
        return tl_err_set(err, TL_ELIMIT, "%s: %s: more than %d pre-tokenizer steps", t->what,
                          path, TOK_MAX_STEPS);
    tok_pre *s = &t->pre[t->n_pre];
    memset(s, 0, sizeof *s);
    if (!strcmp(type, "ByteLevel")) {
        s->kind = TOK_PRE_BYTELEVEL;
        s->add_prefix_space = get_bool(p, "add_prefix_space", 1);
        s->behavior = TOK_SPLIT_ISOLATED;
        if (get_bool(p, "use_regex", 1)) {
            int rc = compile_regex(t, s, GPT2_RE, sizeof GPT2_RE - 1, 0, path, err);
            if (rc) return rc;
        }
        t->n_pre++;
        return 0;
    }
    if (!strcmp(type, "Split")) {
        s->kind = TOK_PRE_SPLIT;
        json_t *pat = json_object_get(p, "pattern");
        json_t *re = json_object_get(pat, "Regex"), *lit = json_object_get(pat, "String");
        char sub[256];
        snprintf(sub, sizeof sub, "%s.pattern", path);
        if (!json_is_string(re) && !json_is_string(lit))
            return tl_err_set(err, TL_EFORMAT, "%s: %s must be {\"Regex\": ...} or {\"String\": ...}",
                              t->what, sub);
        json_t *str = json_is_string(re) ? re : lit;
        snprintf(sub, sizeof sub, "%s.pattern.%s", path, json_is_string(re) ? "Regex" : "String");
        int rc = compile_regex(t, s, json_string_value(str), json_string_length(str), !json_is_string(re),
                               sub, err);
        if (rc) return rc;
        t->n_pre++; /* counted now so that tl_tok_free releases the regex on a later error */
        const char *b = json_string_value(json_object_get(p, "behavior"));
        if (!b) return tl_err_set(err, TL_EFORMAT, "%s: %s.behavior missing", t->what, path);
        if (!strcmp(b, "Isolated")) s->behavior = TOK_SPLIT_ISOLATED;
        else if (!strcmp(b, "Removed")) s->behavior = TOK_SPLIT_REMOVED;
        else if (!strcmp(b, "MergedWithPrevious")) s->behavior = TOK_SPLIT_MERGED_PREV;
        else if (!strcmp(b, "MergedWithNext")) s->behavior = TOK_SPLIT_MERGED_NEXT;
        else if (!strcmp(b, "Contiguous")) s->behavior = TOK_SPLIT_CONTIGUOUS;
        else
            return tl_err_set(err, TL_EUNSUP, "%s: %s.behavior '%s' is not supported", t->what, path, b);
        s->invert = get_bool(p, "invert", 0);
        return 0;
    }
    return tl_err_set(err, TL_EUNSUP, "%s: %s: pre-tokenizer type '%s' is not supported "
                      "(supported: Split, ByteLevel, Sequence, null)", t->what, path, type);
}

static int ids_append(int32_t **a, int *n, const int32_t *src, int k) {
    int32_t *b = realloc(*a, (size_t)(*n + k + 1) * sizeof *b);
    if (!b) return -1;
    if (k) memcpy(b + *n, src, (size_t)k * sizeof *b);
    *a = b, *n += k;
    return 0;
}

static int load_post(tl_tokenizer *t, json_t *p, const char *path, tl_err *err) {
    if (!p || json_is_null(p)) return 0;
    if (!json_is_object(p)) return want_type(p, JSON_OBJECT, t->what, path, err);
    const char *type = json_string_value(json_object_get(p, "type"));
    if (!type) return tl_err_set(err, TL_EFORMAT, "%s: %s.type missing", t->what, path);
    if (!strcmp(type, "ByteLevel")) return 0; /* only trims offsets; ids unchanged */
    if (!strcmp(type, "Sequence")) {
        json_t *arr = json_object_get(p, "processors");
        if (!json_is_array(arr)) return want_type(arr, JSON_ARRAY, t->what, "post_processor.processors", err);
        for (size_t i = 0; i < json_array_size(arr); i++) {
            char sub[256];
            snprintf(sub, sizeof sub, "%s.processors[%zu]", path, i);
            int rc = load_post(t, json_array_get(arr, i), sub, err);
            if (rc) return rc;
        }
        return 0;
    }
    if (strcmp(type, "TemplateProcessing"))
        return tl_err_set(err, TL_EUNSUP, "%s: %s: post-processor type '%s' is not supported "
                          "(supported: TemplateProcessing, ByteLevel, Sequence, null)", t->what, path, type);
    json_t *single = json_object_get(p, "single"), *specials = json_object_get(p, "special_tokens");
    if (!json_is_array(single))
        return tl_err_set(err, TL_EFORMAT, "%s: %s.single must be an array", t->what, path);
    /* A later processor wraps what the earlier ones produced. */
    int32_t *pre = NULL, *post = NULL;
    int npre = 0, npost = 0, seen_a = 0;
    int rc = 0;
    for (size_t i = 0; i < json_array_size(single) && !rc; i++) {
        json_t *it = json_array_get(single, i);
        json_t *sp = json_object_get(it, "SpecialToken"), *seq = json_object_get(it, "Sequence");
        if (seq) {
            const char *id = json_string_value(json_object_get(seq, "id"));
            if (!id || strcmp(id, "A") || seen_a)
                rc = tl_err_set(err, TL_EUNSUP, "%s: %s.single[%zu]: only one Sequence \"A\" is "
                                "supported", t->what, path, i);
            seen_a = 1;
            continue;
        }
        const char *name = json_string_value(json_object_get(sp, "id"));
        json_t *st = name ? json_object_get(specials, name) : NULL;
        json_t *ids = json_object_get(st, "ids");
        if (!json_is_array(ids)) {
            rc = tl_err_set(err, TL_EFORMAT, "%s: %s.single[%zu]: special token '%s' has no ids in "
                            "special_tokens", t->what, path, i, name ? name : "?");
            break;
        }
        for (size_t k = 0; k < json_array_size(ids); k++) {
            json_int_t v = json_integer_value(json_array_get(ids, k));
            if (!json_is_integer(json_array_get(ids, k)) || v < 0 || v >= TOK_MAX_ID) {
                rc = tl_err_set(err, TL_EFORMAT, "%s: %s.special_tokens.%s.ids[%zu]: bad id",
                                t->what, path, name, k);
                break;
            }
            int32_t id = (int32_t)v;
            if (ids_append(seen_a ? &post : &pre, seen_a ? &npost : &npre, &id, 1))
                rc = tl_err_set(err, TL_ENOMEM, "out of memory");
        }
    }
    if (!rc && !seen_a)
        rc = tl_err_set(err, TL_EFORMAT, "%s: %s.single has no Sequence \"A\"", t->what, path);
    if (!rc) {
        int32_t *np = NULL;
        int nn = 0;
        if (ids_append(&np, &nn, pre, npre) || ids_append(&np, &nn, t->tpl_prefix, t->n_tpl_prefix) ||
            ids_append(&t->tpl_suffix, &t->n_tpl_suffix, post, npost)) {
            free(np);
            rc = tl_err_set(err, TL_ENOMEM, "out of memory");
        } else {
            free(t->tpl_prefix);
            t->tpl_prefix = np, t->n_tpl_prefix = nn;
        }
    }
    free(pre);
    free(post);
    return rc;
}

static int load_decoder(tl_tokenizer *t, json_t *d, tl_err *err) {
    const char *type = json_string_value(json_object_get(d, "type"));
    if (type && !strcmp(type, "ByteLevel")) return 0;
    return tl_err_set(err, TL_EUNSUP, "%s: decoder: type '%s' is not supported (only ByteLevel)",
                      t->what, type ? type : (d && !json_is_null(d) ? "?" : "null"));
}

/* A temporary map from vocabulary strings (as the file spells them) to ids, for merges. */
typedef struct vslot {
    uint32_t hash; /* low bits of tok_hash, checked before the bytes */
    int32_t id;    /* -1 empty */
    uint32_t off, len;
} vslot;

typedef struct vmap {
    tl_tokenizer *t;
    const int16_t *cp_to_byte;
    char *keys;
    size_t keys_len, keys_cap;
    vslot *slot;
    uint32_t cap, used;
    char *scratch;
    size_t scap;
    char cat[1024];
} vmap;

static int vmap_grow(vmap *m) {
    uint32_t cap = m->cap ? m->cap * 2 : 1u << 16;
    vslot *ns = malloc((size_t)cap * sizeof *ns);
    if (!ns) return -1;
    for (uint32_t i = 0; i < cap; i++) ns[i].id = -1;
    for (uint32_t i = 0; i < m->cap; i++) {
        if (m->slot[i].id < 0) continue;
        uint32_t j = (uint32_t)tok_hash(m->keys + m->slot[i].off, m->slot[i].len) & (cap - 1);
        while (ns[j].id >= 0) j = (j + 1) & (cap - 1);
        ns[j] = m->slot[i];
    }
    free(m->slot);
    m->slot = ns, m->cap = cap;
    return 0;
}

static int32_t vmap_find(const vmap *m, const char *s, size_t n) {
    uint32_t mask = m->cap - 1;
    uint64_t h = tok_hash(s, n);
    for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
        const vslot *v = &m->slot[i];
        if (v->id < 0) return -1;
        if (v->hash == (uint32_t)h && v->len == n && !memcmp(m->keys + v->off, s, n)) return v->id;
    }
}

static void vmap_free(vmap *m) {
    free(m->keys), free(m->slot), free(m->scratch);
}

static int vocab_entry(void *ctx, const char *key, size_t klen, long long id, tl_err *err) {
    vmap *m = ctx;
    tl_tokenizer *t = m->t;
    if (id < 0 || id >= TOK_MAX_ID)
        return tl_err_set(err, TL_EFORMAT, "%s: model.vocab[\"%.*s\"]: id %lld is not in 0..%d", t->what,
                          (int)TL_MIN(klen, 64), key, id, TOK_MAX_ID - 1);
    if (id < t->n_ids && (t->tok_flags[id] & TOK_F_PRESENT))
        return tl_err_set(err, TL_EFORMAT, "%s: model.vocab[\"%.*s\"]: id %lld used twice", t->what,
                          (int)TL_MIN(klen, 64), key, id);
    if (klen + 1 > m->scap) {
        free(m->scratch);
        m->scap = klen + 256;
        if (!(m->scratch = malloc(m->scap))) return tl_err_set(err, TL_ENOMEM, "out of memory");
    }
    int rc = token_set(t, m->cp_to_byte, (int32_t)id, key, klen, 0, m->scratch, err);
    if (rc) return rc;
    if ((m->used + 1) * 2 > m->cap && vmap_grow(m)) return tl_err_set(err, TL_ENOMEM, "out of memory");
    if (m->keys_len + klen > m->keys_cap) {
        size_t cap = m->keys_cap ? m->keys_cap * 2 : 1 << 20;
        while (cap < m->keys_len + klen) cap *= 2;
        char *k = realloc(m->keys, cap);
        if (!k || cap > UINT32_MAX) return tl_err_set(err, TL_ENOMEM, "out of memory (vocab keys)");
        m->keys = k, m->keys_cap = cap;
    }
    if (vmap_find(m, key, klen) >= 0) return 0; /* a repeated key: the first id serves merges */
    memcpy(m->keys + m->keys_len, key, klen);
    uint64_t h = tok_hash(key, klen);
    uint32_t j = (uint32_t)h & (m->cap - 1);
    while (m->slot[j].id >= 0) j = (j + 1) & (m->cap - 1);
    m->slot[j] = (vslot){(uint32_t)h, (int32_t)id, (uint32_t)m->keys_len, (uint32_t)klen};
    m->keys_len += klen;
    m->used++;
    return 0;
}

static int merge_entry(void *ctx, const char *a, size_t la, const char *b, size_t lb, size_t i,
                       tl_err *err) {
    vmap *m = ctx;
    tl_tokenizer *t = m->t;
    int32_t ia = vmap_find(m, a, la), ib = vmap_find(m, b, lb);
    if (ia < 0 || ib < 0)
        return tl_err_set(err, TL_EFORMAT, "%s: model.merges[%zu]: token \"%.*s\" is not in "
                          "model.vocab", t->what, i, (int)TL_MIN(ia >= 0 ? lb : la, 64), ia >= 0 ? b : a);
    if (la + lb > sizeof m->cat)
        return tl_err_set(err, TL_EFORMAT, "%s: model.merges[%zu]: tokens too long", t->what, i);
    memcpy(m->cat, a, la);
    memcpy(m->cat + la, b, lb);
    int32_t inew = vmap_find(m, m->cat, la + lb);
    if (inew < 0)
        return tl_err_set(err, TL_EFORMAT, "%s: model.merges[%zu]: merged token \"%.*s\" is not in "
                          "model.vocab", t->what, i, (int)TL_MIN(la + lb, 64), m->cat);
    if (i >= UINT32_MAX / 4 || (i + 1) * 2 > t->mcap) { /* grow the merge table */
        uint32_t cap = t->mcap ? t->mcap * 2 : 1u << 16;
        tok_merge *nm = i < UINT32_MAX / 4 ? malloc((size_t)cap * sizeof *nm) : NULL;
        if (!nm) return tl_err_set(err, TL_ENOMEM, "%s: out of memory (%zu merges)", t->what, i);
        for (uint32_t j = 0; j < cap; j++) nm[j].key = UINT64_MAX;
        for (uint32_t j = 0; j < t->mcap; j++) {
            if (t->merge[j].key == UINT64_MAX) continue;
            uint32_t x = (uint32_t)tok_pair_hash(t->merge[j].key) & (cap - 1);
            while (nm[x].key != UINT64_MAX) x = (x + 1) & (cap - 1);
            nm[x] = t->merge[j];
        }
        free(t->merge);
        t->merge = nm, t->mcap = cap;
    }
    uint64_t key = ((uint64_t)(uint32_t)ia << 32) | (uint32_t)ib;
    uint32_t j = (uint32_t)tok_pair_hash(key) & (t->mcap - 1);
    while (t->merge[j].key != UINT64_MAX && t->merge[j].key != key) j = (j + 1) & (t->mcap - 1);
    if (t->merge[j].key == key) return 0; /* a repeated merge keeps its first (lowest) rank */
    t->merge[j] = (tok_merge){key, (uint32_t)i, inew};
    return 0;
}

/* m is the model object with vocab and merges cut out; parts[] are their ranges in doc. */
static int load_model(tl_tokenizer *t, json_t *m, const char *doc, size_t parts[2][2],
                      const int16_t *cp_to_byte, tl_err *err) {
    if (!json_is_object(m)) return want_type(m, JSON_OBJECT, t->what, "model", err);
    const char *type = json_string_value(json_object_get(m, "type"));
    if (type && strcmp(type, "BPE"))
        return tl_err_set(err, TL_EUNSUP, "%s: model.type '%s' is not supported (only BPE)", t->what, type);
    if (!parts)
        return tl_err_set(err, TL_EFORMAT, "%s: model.vocab (an object) and model.merges (an array) "
                          "are required", t->what);
    json_t *v = json_object_get(m, "dropout");
    if (v && !json_is_null(v) && !(json_is_number(v) && json_number_value(v) == 0))
        return tl_err_set(err, TL_EUNSUP, "%s: model.dropout is not supported", t->what);
    if (get_bool(m, "byte_fallback", 0))
        return tl_err_set(err, TL_EUNSUP, "%s: model.byte_fallback is not supported", t->what);
    const char *affix[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int i = 0; i < 2; i++) {
        const char *s = json_string_value(json_object_get(m, affix[i]));
        if (s && *s) return tl_err_set(err, TL_EUNSUP, "%s: model.%s is not supported", t->what, affix[i]);
    }
    t->ignore_merges = get_bool(m, "ignore_merges", 0);
    vmap vm = {.t = t, .cp_to_byte = cp_to_byte};
    int rc = vmap_grow(&vm) ? tl_err_set(err, TL_ENOMEM, "out of memory") : 0;
    if (!rc) rc = tok_json_vocab(doc, parts[0][0], parts[0][1], vocab_entry, &vm, t->what, err);
    if (!rc) rc = tok_json_merges(doc, parts[1][0], parts[1][1], merge_entry, &vm, t->what, err);
    if (!rc && !t->mcap) { /* no merges: an empty table still answers lookups */
        t->merge = malloc(16 * sizeof *t->merge);
        if (!t->merge) rc = tl_err_set(err, TL_ENOMEM, "out of memory");
        else {
            for (int j = 0; j < 16; j++) t->merge[j].key = UINT64_MAX;
            t->mcap = 16;
        }
    }
    vmap_free(&vm);
    return rc;
}

static int load_added(tl_tokenizer *t, json_t *arr, const int16_t *cp_to_byte, tl_err *err) {
    if (!arr || json_is_null(arr)) return 0;
    if (!json_is_array(arr)) return want_type(arr, JSON_ARRAY, t->what, "added_tokens", err);
    size_t n = json_array_size(arr);
    t->added = calloc(n + 1, sizeof *t->added);
    if (!t->added) return tl_err_set(err, TL_ENOMEM, "out of memory");
    char *scratch = NULL;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        json_t *e = json_array_get(arr, i);
        json_t *jid = json_object_get(e, "id"), *jc = json_object_get(e, "content");
        json_int_t id = json_integer_value(jid);
        if (!json_is_integer(jid) || id < 0 || id >= TOK_MAX_ID || !json_is_string(jc) ||
            json_string_length(jc) == 0) {
            rc = tl_err_set(err, TL_EFORMAT, "%s: added_tokens[%zu]: needs an integer id in 0..%d "
                            "and a non-empty string content", t->what, i, TOK_MAX_ID - 1);
            break;
        }
        size_t cl = json_string_length(jc);
        free(scratch);
        scratch = malloc(cl + 1);
        if (!scratch) {
            rc = tl_err_set(err, TL_ENOMEM, "out of memory");
            break;
        }
        tok_added *a = &t->added[t->n_added];
        a->id = (int32_t)id;
        a->special = (uint8_t)get_bool(e, "special", 0);
        a->lstrip = (uint8_t)get_bool(e, "lstrip", 0);
        a->rstrip = (uint8_t)get_bool(e, "rstrip", 0);
        a->single_word = (uint8_t)get_bool(e, "single_word", 0);
        a->normalized = (uint8_t)get_bool(e, "normalized", !a->special);
        rc = arena_add(t, json_string_value(jc), cl, &a->off, err);
        if (rc) break;
        a->len = (uint32_t)cl;
        rc = token_set(t, cp_to_byte, a->id, json_string_value(jc), cl,
                       (uint8_t)(TOK_F_ADDED | (a->special ? TOK_F_SPECIAL : 0)), scratch, err);
        if (rc) break;
        if (t->norm == TOK_NORM_NONE) a->normalized = 0; /* same text either way */
        rc = trie_add(a->normalized ? &t->trie_norm : &t->trie_raw,
                      (const uint8_t *)t->arena + a->off, cl, t->n_added, err);
        t->n_added++;
    }
    free(scratch);
    return rc;
}

/* ---- tokenizer_config.json ---- */
static int config_token(json_t *cfg, const char *key, char **out) {
    json_t *v = json_object_get(cfg, key);
    if (json_is_object(v)) v = json_object_get(v, "content");
    if (!json_is_string(v)) return 0;
    *out = dup_n(json_string_value(v), json_string_length(v));
    return *out ? 0 : -1;
}

static int load_config(tl_tokenizer *t, const char *cfg_text, size_t len, tl_err *err) {
    json_error_t je;
    json_t *cfg = json_loadb(cfg_text, len, JSON_ALLOW_NUL, &je);
    if (!cfg)
        return tl_err_set(err, TL_EFORMAT, "%s: tokenizer_config.json: line %d column %d: %s",
                          t->what, je.line, je.column, je.text);
    int rc = 0;
    if (!json_is_object(cfg)) {
        rc = tl_err_set(err, TL_EFORMAT, "%s: tokenizer_config.json must be a JSON object", t->what);
        goto done;
    }
    if (config_token(cfg, "bos_token", &t->bos) || config_token(cfg, "eos_token", &t->eos) ||
        config_token(cfg, "pad_token", &t->pad)) {
        rc = tl_err_set(err, TL_ENOMEM, "out of memory");
        goto done;
    }
    json_t *ab = json_object_get(cfg, "add_bos_token");
    if (json_is_boolean(ab)) t->add_bos = json_is_true(ab);
    json_t *ct = json_object_get(cfg, "chat_template");
    if (json_is_string(ct)) {
        t->chat_template = dup_n(json_string_value(ct), json_string_length(ct));
    } else if (json_is_array(ct)) {
        size_t n = json_array_size(ct);
        t->tpl_names = calloc(n + 1, sizeof *t->tpl_names);
        t->tpl_texts = calloc(n + 1, sizeof *t->tpl_texts);
        if (!t->tpl_names || !t->tpl_texts) {
            rc = tl_err_set(err, TL_ENOMEM, "out of memory");
            goto done;
        }
        for (size_t i = 0; i < n; i++) {
            json_t *e = json_array_get(ct, i);
            json_t *nm = json_object_get(e, "name"), *tx = json_object_get(e, "template");
            if (!json_is_string(nm) || !json_is_string(tx)) {
                rc = tl_err_set(err, TL_EFORMAT, "%s: tokenizer_config.json: chat_template[%zu] needs "
                                "string \"name\" and \"template\"", t->what, i);
                goto done;
            }
            t->tpl_names[t->n_tpl] = dup_n(json_string_value(nm), json_string_length(nm));
            t->tpl_texts[t->n_tpl] = dup_n(json_string_value(tx), json_string_length(tx));
            t->n_tpl++;
            if (!strcmp(json_string_value(nm), "default") && !t->chat_template)
                t->chat_template = dup_n(json_string_value(tx), json_string_length(tx));
        }
    } else if (ct && !json_is_null(ct)) {
        rc = tl_err_set(err, TL_EFORMAT, "%s: tokenizer_config.json: chat_template must be a string "
                        "or a list of {name, template}", t->what);
    }
done:
    json_decref(cfg);
    return rc;
}

/* ---- entry points ---- */
int tl_tok_load_mem(const char *json, size_t json_len, const char *config_json, size_t config_len,
                    const char *what, tl_tokenizer **out, tl_err *err) {
    *out = NULL;
    tl_tokenizer *t = calloc(1, sizeof *t);
    if (!t) return tl_err_set(err, TL_ENOMEM, "out of memory");
    snprintf(t->what, sizeof t->what, "%s", what ? what : "tokenizer.json");
    t->bos_id = t->eos_id = t->pad_id = -1;
    t->add_bos = -1;
    pthread_mutex_init(&t->cache_lock, NULL);
    int16_t cp_to_byte[324];
    for (int i = 0; i < 324; i++) cp_to_byte[i] = -1;
    for (int b = 0; b < 256; b++) cp_to_byte[byte_to_cp(b)] = (int16_t)b;

    /* model.vocab and model.merges are read by tok_json.c; jansson parses the rest. */
    size_t parts[2][2];
    int found = tok_json_find_model_parts(json, json_len, parts);
    char *rest = NULL;
    size_t rest_len = json_len;
    if (found) {
        int first = parts[0][0] < parts[1][0] ? 0 : 1, second = 1 - first;
        rest = malloc(json_len + 1);
        if (!rest) {
            tl_tok_free(t);
            return tl_err_set(err, TL_ENOMEM, "out of memory");
        }
        const char *stub[2] = {"{}", "[]"};
        size_t k = 0;
        memcpy(rest + k, json, parts[first][0]), k += parts[first][0];
        memcpy(rest + k, stub[first], 2), k += 2;
        memcpy(rest + k, json + parts[first][1], parts[second][0] - parts[first][1]);
        k += parts[second][0] - parts[first][1];
        memcpy(rest + k, stub[second], 2), k += 2;
        memcpy(rest + k, json + parts[second][1], json_len - parts[second][1]);
        k += json_len - parts[second][1];
        rest_len = k;
    }
    json_error_t je;
    json_t *root = json_loadb(found ? rest : json, rest_len, JSON_ALLOW_NUL, &je);
    free(rest);
    int rc = 0;
    if (!root) {
        rc = tl_err_set(err, TL_EFORMAT, "%s: not valid JSON: line %d column %d (byte %d): %s",
                        t->what, je.line, je.column, je.position, je.text);
        goto fail;
    }
    if (!json_is_object(root)) {
        rc = tl_err_set(err, TL_EFORMAT, "%s: top level must be a JSON object", t->what);
        goto fail;
    }
    if ((rc = load_normalizer(t, json_object_get(root, "normalizer"), "normalizer", err))) goto fail;
    if ((rc = load_pre(t, json_object_get(root, "pre_tokenizer"), "pre_tokenizer", err))) goto fail;
    if ((rc = load_decoder(t, json_object_get(root, "decoder"), err))) goto fail;
    if ((rc = load_model(t, json_object_get(root, "model"), json, found ? parts : NULL, cp_to_byte,
                         err)))
        goto fail;
    /* BPE here runs on bytes, which is what HF does only after a ByteLevel step; a step after
     * it would see the byte-level alphabet ('Ġ' for space), which we do not reproduce. */
    if (t->n_pre == 0 || t->pre[t->n_pre - 1].kind != TOK_PRE_BYTELEVEL) {
        rc = tl_err_set(err, TL_EUNSUP, "%s: pre_tokenizer: the last step must be ByteLevel (only "
                        "byte-level BPE is supported)", t->what);
        goto fail;
    }
    for (int i = 0; i + 1 < t->n_pre; i++)
        if (t->pre[i].kind == TOK_PRE_BYTELEVEL) {
            rc = tl_err_set(err, TL_EUNSUP, "%s: pre_tokenizer: ByteLevel is supported only as the "
                            "last step (step %d of %d)", t->what, i + 1, t->n_pre);
            goto fail;
        }
    if ((rc = vhash_build(t, err))) goto fail;
    if ((rc = load_added(t, json_object_get(root, "added_tokens"), cp_to_byte, err))) goto fail;
    if ((rc = load_post(t, json_object_get(root, "post_processor"), "post_processor", err))) goto fail;
    for (int i = 0; i < t->n_tpl_prefix; i++)
        if (t->tpl_prefix[i] >= t->n_ids || !(t->tok_flags[t->tpl_prefix[i]] & TOK_F_PRESENT)) {
            rc = tl_err_set(err, TL_EFORMAT, "%s: post_processor: id %d is not a token", t->what,
                            t->tpl_prefix[i]);
            goto fail;
        }
    for (int i = 0; i < t->n_tpl_suffix; i++)
        if (t->tpl_suffix[i] >= t->n_ids || !(t->tok_flags[t->tpl_suffix[i]] & TOK_F_PRESENT)) {
            rc = tl_err_set(err, TL_EFORMAT, "%s: post_processor: id %d is not a token", t->what,
                            t->tpl_suffix[i]);
            goto fail;
        }
    json_decref(root);
    root = NULL;
    if (config_json && (rc = load_config(t, config_json, config_len, err))) goto fail;
    if (t->bos) t->bos_id = tl_tok_token_id(t, t->bos, strlen(t->bos));
    if (t->eos) t->eos_id = tl_tok_token_id(t, t->eos, strlen(t->eos));
    if (t->pad) t->pad_id = tl_tok_token_id(t, t->pad, strlen(t->pad));
    tl_mem_add(TL_MEM_OTHER, (int64_t)(t->arena_cap + (size_t)t->n_ids * 9 +
                                       (size_t)t->vhash_cap * sizeof *t->vhash + (size_t)t->mcap * 16));
    *out = t;
    return 0;
fail:
    json_decref(root);
    tl_tok_free(t);
    return rc < 0 ? rc : -TL_EFORMAT;
}

void tl_tok_free(tl_tokenizer *t) {
    if (!t) return;
    if (t->vhash) /* accounted only once fully loaded */
        tl_mem_add(TL_MEM_OTHER, -(int64_t)(t->arena_cap + (size_t)t->n_ids * 9 +
                                            (size_t)t->vhash_cap * sizeof *t->vhash + (size_t)t->mcap * 16));
    for (int i = 0; i < t->n_pre; i++) pcre2_code_free(t->pre[i].re);
    free(t->tok_off);
    free(t->tok_len);
    free(t->tok_flags);
    free(t->arena);
    free(t->vhash);
    free(t->merge);
    free(t->added);
    free(t->trie_raw.nodes);
    free(t->trie_norm.nodes);
    free(t->tpl_prefix);
    free(t->tpl_suffix);
    free(t->bos);
    free(t->eos);
    free(t->pad);
    free(t->chat_template);
    for (int i = 0; i < t->n_tpl; i++) {
        free(t->tpl_names[i]);
        free(t->tpl_texts[i]);
    }
    free(t->tpl_names);
    free(t->tpl_texts);
    tok_cache_free(&t->cache);
    pthread_mutex_destroy(&t->cache_lock);
    free(t);
}

static int dir_of(const char *path, char *dir, size_t cap) {
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 1;
    if (n + 1 > cap) return -1;
    if (slash) memcpy(dir, path, n);
    else dir[0] = '.';
    dir[n] = 0;
    return 0;
}

int tl_tok_load(const char *json_path, tl_tokenizer **out, tl_err *err) {
    *out = NULL;
    char *text = NULL, *cfg = NULL, *jinja = NULL;
    size_t len = 0, cfg_len = 0;
    int rc = tl_read_file(json_path, TOK_MAX_FILE, &text, &len, err);
    if (rc) return rc;
    char dir[4096], p[4096 + 64];
    if (dir_of(json_path, dir, sizeof dir)) {
        free(text);
        return tl_err_set(err, TL_EINVAL, "%s: path too long", json_path);
    }
    snprintf(p, sizeof p, "%s/tokenizer_config.json", dir);
    if (tl_file_exists(p) && (rc = tl_read_file(p, TOK_MAX_FILE, &cfg, &cfg_len, err))) {
        free(text);
        return rc;
    }
    rc = tl_tok_load_mem(text, len, cfg, cfg_len, json_path, out, err);
    free(text);
    free(cfg);
    if (rc) return rc;
    snprintf(p, sizeof p, "%s/chat_template.jinja", dir);
    if (tl_file_exists(p)) {
        rc = tl_read_file(p, TOK_MAX_FILE, &jinja, NULL, err);
        if (rc) {
            tl_tok_free(*out);
            *out = NULL;
            return rc;
        }
        free((*out)->chat_template);
        (*out)->chat_template = jinja;
    }
    return 0;
}

int tl_tok_load_dir(const char *dir, tl_tokenizer **out, tl_err *err) {
    char p[4096];
    if (tl_path_join(p, sizeof p, dir, "tokenizer.json"))
        return tl_err_set(err, TL_EINVAL, "%s: path too long", dir);
    if (!tl_file_exists(p)) {
        *out = NULL;
        return tl_err_set(err, TL_ENOTFOUND, "%s: no tokenizer.json in this directory", dir);
    }
    return tl_tok_load(p, out, err);
}

/* ---- facts ---- */
int tl_tok_vocab_size(const tl_tokenizer *t) { return t->n_ids; }

const char *tl_tok_token_bytes(const tl_tokenizer *t, int32_t id, size_t *len) {
    if (id < 0 || id >= t->n_ids || !(t->tok_flags[id] & TOK_F_PRESENT)) return NULL;
    if (len) *len = t->tok_len[id];
    return t->arena + t->tok_off[id];
}

int32_t tl_tok_token_id(const tl_tokenizer *t, const char *s, size_t n) {
    for (int32_t i = 0; i < t->n_added; i++)
        if (t->added[i].len == n && !memcmp(t->arena + t->added[i].off, s, n)) return t->added[i].id;
    return tok_vocab_find(t, s, n);
}

int tl_tok_is_special(const tl_tokenizer *t, int32_t id) {
    return id >= 0 && id < t->n_ids && (t->tok_flags[id] & TOK_F_SPECIAL) != 0;
}

const char *tl_tok_bos(const tl_tokenizer *t) { return t->bos; }
const char *tl_tok_eos(const tl_tokenizer *t) { return t->eos; }
const char *tl_tok_pad(const tl_tokenizer *t) { return t->pad; }
int32_t tl_tok_bos_id(const tl_tokenizer *t) { return t->bos_id; }
int32_t tl_tok_eos_id(const tl_tokenizer *t) { return t->eos_id; }
int32_t tl_tok_pad_id(const tl_tokenizer *t) { return t->pad_id; }
int tl_tok_add_bos(const tl_tokenizer *t) { return t->add_bos; }
const char *tl_tok_chat_template(const tl_tokenizer *t) { return t->chat_template; }

const char *tl_tok_chat_template_named(const tl_tokenizer *t, const char *name) {
    for (int i = 0; i < t->n_tpl; i++)
        if (!strcmp(t->tpl_names[i], name)) return t->tpl_texts[i];
    return NULL;
}
