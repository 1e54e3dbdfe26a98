/* tok_json.c — a fast, strict reader for the two big parts of tokenizer.json, model.vocab
 * (an object of "token": id) and model.merges (an array of "a b" or ["a", "b"]), which are
 * 95% of an 11-17 MB file: a general JSON tree for them costs ~0.4 s, this costs ~0.05 s.
 *
 * Contract: tok_json_find_model_parts only locates byte ranges (it skips values by bracket
 * depth, outside strings); the rest of the document is still parsed and validated by jansson.
 * tok_json_vocab / tok_json_merges validate their part fully (strings, escapes, surrogates,
 * UTF-8, integers) and fail with TL_EFORMAT naming the JSON path and byte offset. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer/tok_json.h"

static const char *ws(const char *p, const char *e) {
    while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    return p;
}

/* p at '"': returns the byte after the closing quote, or NULL. */
static const char *skip_string(const char *p, const char *e) {
    for (p++; p < e; p++) {
        if (*p == '\\') p++;
        else if (*p == '"') return p + 1;
    }
    return NULL;
}

/* Bytes that matter when skipping: 1 quote, 2 open, 3 close, 4 backslash. */
static const unsigned char CLS[256] = {['"'] = 1, ['{'] = 2, ['['] = 2, ['}'] = 3, [']'] = 3, ['\\'] = 4};

static const char *skip_value(const char *p, const char *e) {
    if (p >= e) return NULL;
    if (*p == '"') return skip_string(p, e);
    if (*p == '{' || *p == '[') {
        long depth = 0;
        int in_str = 0;
        for (; p < e; p++) {
            unsigned char k = CLS[(unsigned char)*p];
            if (!k) continue;
            if (in_str) {
                if (k == 4) p++;
                else if (k == 1) in_str = 0;
            } else if (k == 1) in_str = 1;
            else if (k == 2) depth++;
            else if (k == 3 && --depth == 0) return p + 1;
        }
        return NULL;
    }
    while (p < e && *p != ',' && *p != '}' && *p != ']' && *p != ' ' && *p != '\n' && *p != '\r' &&
           *p != '\t')
        p++;
    return p;
}

/* Walk the members of the object at p ('{'); for each key equal to one of keys[i] record the
 * value's range (the last one wins, as in jansson). Returns 0, or -1 when not an object. */
static int members(const char *p, const char *e, const char *const *keys, int nk, const char *doc,
                   size_t (*out)[2]) {
    p = ws(p, e);
    if (p >= e || *p != '{') return -1;
    p = ws(p + 1, e);
    if (p < e && *p == '}') return 0;
    while (p < e) {
        if (*p != '"') return -1;
        const char *ks = p + 1, *ke = skip_string(p, e);
        if (!ke) return -1;
        size_t kl = (size_t)(ke - 1 - ks);
        p = ws(ke, e);
        if (p >= e || *p != ':') return -1;
        p = ws(p + 1, e);
        const char *vs = p, *ve = skip_value(p, e);
        if (!ve) return -1;
        for (int i = 0; i < nk; i++)
            if (strlen(keys[i]) == kl && !memcmp(keys[i], ks, kl)) {
                out[i][0] = (size_t)(vs - doc);
                out[i][1] = (size_t)(ve - doc);
            }
        p = ws(ve, e);
        if (p < e && *p == ',') p = ws(p + 1, e);
        else if (p < e && *p == '}') return 0;
        else return -1;
    }
    return -1;
}

int tok_json_find_model_parts(const char *s, size_t n, size_t range[2][2]) {
    const char *e = s + n;
    static const char *const top[] = {"model"};
    size_t model[1][2] = {{0, 0}};
    memset(range, 0, 2 * sizeof range[0]);
    if (members(s, e, top, 1, s, model) || model[0][1] == 0) return 0;
    static const char *const mk[] = {"vocab", "merges"};
    if (members(s + model[0][0], s + model[0][1], mk, 2, s, range)) return 0;
    return range[0][1] != 0 && range[1][1] != 0;
}

/* ---- strict parsing of strings ---- */
static int hex4(const char *p, const char *e, unsigned *v) {
    if (e - p < 4) return -1;
    *v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0') : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10) : 16u;
        if (d == 16) return -1;
        *v = *v * 16 + d;
    }
    return 0;
}

/* Parse a string at *pp ('"') into buf (grown as needed). Returns its length, or -1. */
static long parse_string(const char **pp, const char *e, tok_json_buf *b) {
    const char *p = *pp;
    if (p >= e || *p != '"') return -1;
    p++;
    size_t k = 0;
    for (;;) {
        /* Fast path: a run without escapes or quotes. */
        const char *q = p;
        while (q < e && *q != '"' && *q != '\\' && (unsigned char)*q >= 0x20) q++;
        size_t run = (size_t)(q - p);
        if (k + run + 8 > b->cap) {
            size_t cap = b->cap ? b->cap : 256;
            while (cap < k + run + 8) cap *= 2;
            char *nb = realloc(b->s, cap);
            if (!nb) return -1;
            b->s = nb, b->cap = cap;
        }
        memcpy(b->s + k, p, run);
        k += run;
        p = q;
        if (p >= e || (unsigned char)*p < 0x20) return -1;
        if (*p == '"') {
            *pp = p + 1;
            break;
        }
        /* escape */
        if (++p >= e) return -1;
        unsigned cp;
        switch (*p) {
        case '"': cp = '"'; break;
        case '\\': cp = '\\'; break;
        case '/': cp = '/'; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u':
            if (hex4(p + 1, e, &cp)) return -1;
            p += 4;
            if (cp >= 0xDC00 && cp <= 0xDFFF) return -1;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                unsigned lo;
                if (e - p < 7 || p[1] != '\\' || p[2] != 'u' || hex4(p + 3, e, &lo) || lo < 0xDC00 ||
                    lo > 0xDFFF)
                    return -1;
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
            }
            break;
        default: return -1;
        }
        p++;
        k += (size_t)tok_utf8_put(cp, b->s + k);
    }
    /* The raw runs must be valid UTF-8 (jansson's rule too). */
    for (size_t i = 0; i < k;) {
        if ((unsigned char)b->s[i] < 0x80) {
            i++;
            continue;
        }
        int l = tok_utf8_seq((const uint8_t *)b->s + i, k - i);
        if (l <= 0) return -1;
        i += (size_t)l;
    }
    b->s[k] = 0;
    return (long)k;
}

static int parse_int(const char **pp, const char *e, long long *v) {
    const char *p = *pp;
    int neg = 0;
    if (p < e && *p == '-') neg = 1, p++;
    if (p >= e || *p < '0' || *p > '9') return -1;
    long long x = 0;
    while (p < e && *p >= '0' && *p <= '9') {
        if (x > (1LL << 40)) return -1;
        x = x * 10 + (*p++ - '0');
    }
    if (p < e && (*p == '.' || *p == 'e' || *p == 'E')) return -1;
    *v = neg ? -x : x;
    *pp = p;
    return 0;
}

int tok_json_vocab(const char *doc, size_t off, size_t end, tok_json_vocab_fn fn, void *ctx,
                   const char *what, tl_err *err) {
    const char *p = doc + off, *e = doc + end;
    tok_json_buf kb = {0};
    int rc = 0;
    size_t idx = 0;
    p = ws(p, e);
    if (p >= e || *p != '{') return tl_err_set(err, TL_EFORMAT, "%s: model.vocab must be a JSON object", what);
    p = ws(p + 1, e);
    if (p < e && *p == '}') return 0;
    for (;; idx++) {
        long kl = parse_string(&p, e, &kb);
        long long id;
        if (kl < 0) goto bad;
        p = ws(p, e);
        if (p >= e || *p != ':') goto bad;
        p = ws(p + 1, e);
        if (parse_int(&p, e, &id)) {
            rc = tl_err_set(err, TL_EFORMAT, "%s: model.vocab[\"%.*s\"]: id must be an integer "
                            "(byte %zu)", what, (int)TL_MIN(kl, 64), kb.s, (size_t)(p - doc));
            goto done;
        }
        if ((rc = fn(ctx, kb.s, (size_t)kl, id, err))) goto done;
        p = ws(p, e);
        if (p < e && *p == ',') p = ws(p + 1, e);
        else if (p < e && *p == '}') goto done;
        else goto bad;
    }
bad:
    rc = tl_err_set(err, TL_EFORMAT, "%s: model.vocab: malformed entry %zu near byte %zu", what, idx,
                    (size_t)(p - doc));
done:
    free(kb.s);
    return rc;
}

int tok_json_merges(const char *doc, size_t off, size_t end, tok_json_merge_fn fn, void *ctx,
                    const char *what, tl_err *err) {
    const char *p = doc + off, *e = doc + end;
    tok_json_buf a = {0}, b = {0};
    int rc = 0;
    size_t idx = 0;
    p = ws(p, e);
    if (p >= e || *p != '[') return tl_err_set(err, TL_EFORMAT, "%s: model.merges must be a JSON array", what);
    p = ws(p + 1, e);
    if (p < e && *p == ']') return 0;
    for (;; idx++) {
        long la, lb;
        if (p < e && *p == '"') {
            la = parse_string(&p, e, &a);
            if (la < 0) goto bad;
            char *sp = memchr(a.s, ' ', (size_t)la);
            if (!sp) {
                rc = tl_err_set(err, TL_EFORMAT, "%s: model.merges[%zu]: \"%.*s\" is not \"a b\"", what,
                                idx, (int)TL_MIN(la, 64), a.s);
                goto done;
            }
            lb = la - (long)(sp - a.s) - 1;
            la = (long)(sp - a.s);
            rc = fn(ctx, a.s, (size_t)la, sp + 1, (size_t)lb, idx, err);
        } else if (p < e && *p == '[') {
            p = ws(p + 1, e);
            la = parse_string(&p, e, &a);
            if (la < 0) goto bad_pair;
            p = ws(p, e);
            if (p >= e || *p != ',') goto bad_pair;
            p = ws(p + 1, e);
            lb = parse_string(&p, e, &b);
            if (lb < 0) goto bad_pair;
            p = ws(p, e);
            if (p >= e || *p != ']') goto bad_pair;
            p++;
            rc = fn(ctx, a.s, (size_t)la, b.s, (size_t)lb, idx, err);
        } else
            goto bad_pair;
        if (rc) goto done;
        p = ws(p, e);
        if (p < e && *p == ',') p = ws(p + 1, e);
        else if (p < e && *p == ']') goto done;
        else goto bad;
    }
bad_pair:
    rc = tl_err_set(err, TL_EFORMAT, "%s: model.merges[%zu]: must be \"a b\" or [\"a\", \"b\"] (byte %zu)",
                    what, idx, (size_t)(p - doc));
    goto done;
bad:
    rc = tl_err_set(err, TL_EFORMAT, "%s: model.merges: malformed entry %zu near byte %zu", what, idx,
                    (size_t)(p - doc));
done:
    free(a.s);
    free(b.s);
    return rc;
}
