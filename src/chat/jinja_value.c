/* jinja_value.c — values of the Jinja interpreter: the capped arena they live in, containers,
 * equality and truth as Python has them, str()/repr()/json.dumps() output byte for byte as
 * CPython prints them, and JSON input through jansson. */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "chat/jinja.h"
#include "chat/jinja_int.h"

/* ---- arena ---------------------------------------------------------------------------------- */
struct jarena_blk {
    jarena_blk *next;
    size_t size, off;
    _Alignas(16) unsigned char data[];
};

void *jarena_alloc(jarena *a, size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n == 0) n = 16;
    jarena_blk *b = a->head;
    if (!b || b->size - b->off < n) {
        size_t sz = n > 65536 ? n : 65536;
        if (b && b->size * 2 > sz && b->size < (64u << 20)) sz = b->size * 2 >= n ? b->size * 2 : n;
        if (a->cap && (a->used + sz + sizeof *b > a->cap)) {
            if (sz > n && a->used + n + sizeof *b <= a->cap) sz = n;
            else return NULL;
        }
        b = malloc(sizeof *b + sz);
        if (!b) return NULL;
        b->size = sz;
        b->off = 0;
        b->next = a->head;
        a->head = b;
        a->used += sz + sizeof *b;
        tl_mem_add(TL_MEM_OTHER, (int64_t)(sz + sizeof *b));
    }
    void *p = b->data + b->off;
    b->off += n;
    memset(p, 0, n);
    return p;
}

void jarena_free(jarena *a) {
    jarena_blk *b = a->head;
    while (b) {
        jarena_blk *n = b->next;
        tl_mem_add(TL_MEM_OTHER, -(int64_t)(b->size + sizeof *b));
        free(b);
        b = n;
    }
    a->head = NULL;
    a->used = 0;
}

/* ---- constructors --------------------------------------------------------------------------- */
jv jv_undef(const char *why) { jv v = {.t = JV_UNDEF}; v.u.undef = why; return v; }
jv jv_none(void) { jv v = {.t = JV_NONE}; return v; }
jv jv_bool(int b) { jv v = {.t = JV_BOOL}; v.u.b = !!b; return v; }
jv jv_int(int64_t i) { jv v = {.t = JV_INT}; v.u.i = i; return v; }
jv jv_float(double f) { jv v = {.t = JV_FLOAT}; v.u.f = f; return v; }

jv jv_str(jctx *c, const char *s, size_t n) {
    jv v = {.t = JV_STR};
    v.u.s = jctx_alloc(c, sizeof(jstr) + n + 1);
    v.u.s->len = n;
    if (n) memcpy(v.u.s->s, s, n);
    v.u.s->s[n] = 0;
    return v;
}
jv jv_cstr(jctx *c, const char *s) { return jv_str(c, s, strlen(s)); }

jv jv_list(jctx *c, size_t cap) {
    jv v = {.t = JV_LIST};
    v.u.l = jctx_alloc(c, sizeof(jlist));
    if (cap) {
        v.u.l->v = jctx_alloc(c, cap * sizeof(jv));
        v.u.l->cap = cap;
    }
    return v;
}

void jv_list_push(jctx *c, jv list, jv item) {
    jlist *l = list.u.l;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 4;
        jv *nv = jctx_alloc(c, nc * sizeof(jv));
        if (l->n) memcpy(nv, l->v, l->n * sizeof(jv));
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n++] = item;
}

jv jv_dict(jctx *c, size_t cap) {
    jv v = {.t = JV_DICT};
    v.u.d = jctx_alloc(c, sizeof(jdict));
    if (cap) {
        v.u.d->k = jctx_alloc(c, cap * sizeof(jv));
        v.u.d->v = jctx_alloc(c, cap * sizeof(jv));
        v.u.d->cap = cap;
    }
    return v;
}

jv *jv_dict_getv(jv dict, jv key) {
    jdict *d = dict.u.d;
    for (size_t i = 0; i < d->n; i++)
        if (jv_equal(d->k[i], key)) return &d->v[i];
    return NULL;
}

jv *jv_dict_get(jv dict, const char *key, size_t klen) {
    jdict *d = dict.u.d;
    for (size_t i = 0; i < d->n; i++)
        if (d->k[i].t == JV_STR && d->k[i].u.s->len == klen && !memcmp(d->k[i].u.s->s, key, klen))
            return &d->v[i];
    return NULL;
}

void jv_dict_set(jctx *c, jv dict, jv key, jv val) {
    jv *slot = jv_dict_getv(dict, key);
    if (slot) {
        *slot = val;
        return;
    }
    jdict *d = dict.u.d;
    if (d->n == d->cap) {
        size_t nc = d->cap ? d->cap * 2 : 4;
        jv *nk = jctx_alloc(c, nc * sizeof(jv)), *nv = jctx_alloc(c, nc * sizeof(jv));
        if (d->n) {
            memcpy(nk, d->k, d->n * sizeof(jv));
            memcpy(nv, d->v, d->n * sizeof(jv));
        }
        d->k = nk;
        d->v = nv;
        d->cap = nc;
    }
    d->k[d->n] = key;
    d->v[d->n] = val;
    d->n++;
}

/* ---- Python semantics ----------------------------------------------------------------------- */
static int is_num(jv v) { return v.t == JV_INT || v.t == JV_FLOAT || v.t == JV_BOOL; }
static double num_f(jv v) { return v.t == JV_FLOAT ? v.u.f : v.t == JV_INT ? (double)v.u.i : v.u.b; }

int jv_equal(jv a, jv b) {
    if (is_num(a) && is_num(b)) {
        if (a.t != JV_FLOAT && b.t != JV_FLOAT)
            return (a.t == JV_INT ? a.u.i : a.u.b) == (b.t == JV_INT ? b.u.i : b.u.b);
        return num_f(a) == num_f(b);
    }
    if (a.t != b.t) return 0;
    switch (a.t) {
    case JV_UNDEF: case JV_NONE: return 1;
    case JV_STR: return a.u.s->len == b.u.s->len && !memcmp(a.u.s->s, b.u.s->s, a.u.s->len);
    case JV_LIST:
        if (a.u.l->n != b.u.l->n) return 0;
        for (size_t i = 0; i < a.u.l->n; i++)
            if (!jv_equal(a.u.l->v[i], b.u.l->v[i])) return 0;
        return 1;
    case JV_DICT:
        if (a.u.d->n != b.u.d->n) return 0;
        for (size_t i = 0; i < a.u.d->n; i++) {
            jv *o = jv_dict_getv(b, a.u.d->k[i]);
            if (!o || !jv_equal(a.u.d->v[i], *o)) return 0;
        }
        return 1;
    case JV_NS: return a.u.d == b.u.d;
    case JV_MACRO: return a.u.m == b.u.m;
    case JV_FUNC: return a.u.fn == b.u.fn;
    case JV_LOOP: return a.u.loop == b.u.loop;
    default: return 0;
    }
}

int jv_truthy(jv v) {
    switch (v.t) {
    case JV_UNDEF: case JV_NONE: return 0;
    case JV_BOOL: return v.u.b;
    case JV_INT: return v.u.i != 0;
    case JV_FLOAT: return v.u.f != 0.0;
    case JV_STR: return v.u.s->len != 0;
    case JV_LIST: return v.u.l->n != 0;
    case JV_DICT: return v.u.d->n != 0;
    default: return 1;
    }
}

const char *jv_type_name(jv v) {
    static const char *names[] = {"undefined", "NoneType", "bool", "int", "float", "str", "list",
                                  "dict", "Namespace", "Macro", "function", "LoopContext"};
    if (v.t == JV_LIST && v.u.l->tuple) return "tuple";
    return names[v.t];
}

/* ---- output buffer -------------------------------------------------------------------------- */
void jbuf_init(jbuf *b, jctx *c, size_t limit) {
    b->c = c;
    b->p = NULL;
    b->n = b->cap = 0;
    b->limit = limit;
}

void jbuf_put(jbuf *b, const char *s, size_t n) {
    if (!n) return;
    if (b->limit && b->n + n > b->limit)
        jctx_fail(b->c, TL_ELIMIT, 0, 0, "output would pass the limit of %zu bytes", b->limit);
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 256;
        while (nc < b->n + n + 1) nc *= 2;
        char *np = jctx_alloc(b->c, nc);
        if (b->n) memcpy(np, b->p, b->n);
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

void jbuf_putc(jbuf *b, char ch) { jbuf_put(b, &ch, 1); }

void jbuf_printf(jbuf *b, const char *fmt, ...) {
    char tmp[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    jbuf_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

jv jbuf_str(jbuf *b) { return jv_str(b->c, b->p ? b->p : "", b->n); }

/* ---- float formatting as CPython's repr ----------------------------------------------------- */
void jv_format_float(char *buf, size_t cap, double f) {
    if (isnan(f)) { snprintf(buf, cap, "nan"); return; }
    if (isinf(f)) { snprintf(buf, cap, f < 0 ? "-inf" : "inf"); return; }
    /* the shortest digits that read back as f; at equal length the closest to f (as CPython).
     * The correctly rounded p-digit string may miss while a neighbour's does not. */
    char tmp[64];
    int prec;
    for (prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*e", prec - 1, f);
        if (strtod(tmp, NULL) == f) break;
        /* the correctly rounded p digits miss: the last digit one up or down may still hit */
        const char *q = tmp + (tmp[0] == '-');
        long long m = 0;
        for (const char *r = q; *r && *r != 'e'; r++)
            if (*r >= '0' && *r <= '9') m = m * 10 + (*r - '0');
        int ex = atoi(strchr(tmp, 'e') + 1);
        char best[64] = "";
        long double bestd = 0;
        for (int dlt = -1; dlt <= 1; dlt += 2) {
            char digs[32], cand[64];
            int nd = snprintf(digs, sizeof digs, "%lld", m + dlt);
            if (nd != prec) continue;
            snprintf(cand, sizeof cand, "%s%c%s%se%d", f < 0 ? "-" : "", digs[0], nd > 1 ? "." : "", digs + 1, ex);
            if (strtod(cand, NULL) != f) continue;
            long double d = fabsl(strtold(cand, NULL) - (long double)f);
            if (!best[0] || d < bestd) { memcpy(best, cand, sizeof best); bestd = d; }
        }
        if (best[0]) { memcpy(tmp, best, sizeof tmp); break; }
    }
    /* tmp = [-]d[.ddd]e[+-]XX */
    char digits[32];
    int nd = 0, neg = 0;
    const char *p = tmp;
    if (*p == '-') { neg = 1; p++; }
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9') digits[nd++] = *p;
    int exp = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = 0;
    char out[64];
    size_t o = 0;
    if (neg) out[o++] = '-';
    if (exp >= -4 && exp < 16) {
        if (exp < 0) {
            out[o++] = '0'; out[o++] = '.';
            for (int i = 0; i < -exp - 1; i++) out[o++] = '0';
            for (int i = 0; i < nd; i++) out[o++] = digits[i];
        } else {
            for (int i = 0; i <= exp; i++) out[o++] = i < nd ? digits[i] : '0';
            out[o++] = '.';
            if (nd > exp + 1) for (int i = exp + 1; i < nd; i++) out[o++] = digits[i];
            else out[o++] = '0';
        }
        out[o] = 0;
    } else {
        out[o++] = digits[0];
        if (nd > 1) {
            out[o++] = '.';
            for (int i = 1; i < nd; i++) out[o++] = digits[i];
        }
        out[o] = 0;
        snprintf(out + o, sizeof out - o, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    }
    snprintf(buf, cap, "%s", out);
}

/* ---- str / repr ----------------------------------------------------------------------------- */
static void write_str_repr(jbuf *b, const char *s, size_t n) {
    int has_sq = memchr(s, '\'', n) != NULL, has_dq = memchr(s, '"', n) != NULL;
    char q = (has_sq && !has_dq) ? '"' : '\'';
    jbuf_putc(b, q);
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == (unsigned char)q || ch == '\\') { jbuf_putc(b, '\\'); jbuf_putc(b, (char)ch); }
        else if (ch == '\n') jbuf_put(b, "\\n", 2);
        else if (ch == '\r') jbuf_put(b, "\\r", 2);
        else if (ch == '\t') jbuf_put(b, "\\t", 2);
        else if (ch < 0x20 || ch == 0x7f) jbuf_printf(b, "\\x%02x", ch);
        else if (ch >= 0x80) { /* non-printable code points are escaped, as str.isprintable */
            utf8proc_int32_t cp;
            utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
            if (k <= 0) { jbuf_putc(b, (char)ch); continue; }
            utf8proc_category_t cat = utf8proc_category(cp);
            int unprintable = cat == UTF8PROC_CATEGORY_CC || cat == UTF8PROC_CATEGORY_CF ||
                              cat == UTF8PROC_CATEGORY_CS || cat == UTF8PROC_CATEGORY_CO ||
                              cat == UTF8PROC_CATEGORY_CN || cat == UTF8PROC_CATEGORY_ZL ||
                              cat == UTF8PROC_CATEGORY_ZP || cat == UTF8PROC_CATEGORY_ZS;
            if (!unprintable) jbuf_put(b, s + i, (size_t)k);
            else if (cp < 0x100) jbuf_printf(b, "\\x%02x", cp);
            else if (cp < 0x10000) jbuf_printf(b, "\\u%04x", cp);
            else jbuf_printf(b, "\\U%08x", cp);
            i += (size_t)k - 1;
        } else jbuf_putc(b, (char)ch);
    }
    jbuf_putc(b, q);
}

void jv_write_repr(jbuf *b, jv v) {
    switch (v.t) {
    case JV_STR: write_str_repr(b, v.u.s->s, v.u.s->len); return;
    case JV_LIST: {
        jbuf_putc(b, v.u.l->tuple ? '(' : '[');
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i) jbuf_put(b, ", ", 2);
            jv_write_repr(b, v.u.l->v[i]);
        }
        if (v.u.l->tuple && v.u.l->n == 1) jbuf_putc(b, ',');
        jbuf_putc(b, v.u.l->tuple ? ')' : ']');
        return;
    }
    case JV_DICT:
        jbuf_putc(b, '{');
        for (size_t i = 0; i < v.u.d->n; i++) {
            if (i) jbuf_put(b, ", ", 2);
            jv_write_repr(b, v.u.d->k[i]);
            jbuf_put(b, ": ", 2);
            jv_write_repr(b, v.u.d->v[i]);
        }
        jbuf_putc(b, '}');
        return;
    case JV_NS:
        jbuf_put(b, "<Namespace ", 11);
        jv d = v;
        d.t = JV_DICT;
        jv_write_repr(b, d);
        jbuf_putc(b, '>');
        return;
    case JV_UNDEF: jbuf_put(b, "Undefined", 9); return;
    default: jv_write_str(b, v);
    }
}

void jv_write_str(jbuf *b, jv v) {
    char tmp[64];
    switch (v.t) {
    case JV_UNDEF: return;
    case JV_NONE: jbuf_put(b, "None", 4); return;
    case JV_BOOL: v.u.b ? jbuf_put(b, "True", 4) : jbuf_put(b, "False", 5); return;
    case JV_INT: jbuf_printf(b, "%lld", (long long)v.u.i); return;
    case JV_FLOAT: jv_format_float(tmp, sizeof tmp, v.u.f); jbuf_put(b, tmp, strlen(tmp)); return;
    case JV_STR: jbuf_put(b, v.u.s->s, v.u.s->len); return;
    case JV_LIST: case JV_DICT: case JV_NS: jv_write_repr(b, v); return;
    case JV_MACRO: jbuf_printf(b, "<Macro '%s'>", v.u.m->def->name); return;
    case JV_FUNC: jbuf_put(b, "<function>", 10); return;
    case JV_LOOP:
        jbuf_printf(b, "<LoopContext %zu/%zu>", v.u.loop->idx + 1, v.u.loop->items.u.l->n);
        return;
    }
}

jv jv_to_str(jctx *c, jv v) {
    if (v.t == JV_STR) return v;
    jbuf b;
    jbuf_init(&b, c, 0);
    jv_write_str(&b, v);
    return jbuf_str(&b);
}

/* ---- json.dumps ----------------------------------------------------------------------------- */
static void write_json_str(jbuf *b, const char *s, size_t n, int ascii) {
    jbuf_putc(b, '"');
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        const char *esc = NULL;
        char tmp[8];
        switch (ch) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        default:
            if (ch < 0x20) { snprintf(tmp, sizeof tmp, "\\u%04x", ch); esc = tmp; }
            else if (ascii && ch >= 0x80) { /* \\uXXXX, surrogate pairs above the BMP */
                utf8proc_int32_t cp;
                utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &cp);
                if (k > 0) {
                    jbuf_put(b, s + i - run, run);
                    run = 0;
                    if (cp >= 0x10000) {
                        cp -= 0x10000;
                        jbuf_printf(b, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
                    } else jbuf_printf(b, "\\u%04x", cp);
                    i += (size_t)k - 1;
                    continue;
                }
            }
        }
        if (esc) {
            jbuf_put(b, s + i - run, run);
            run = 0;
            jbuf_put(b, esc, strlen(esc));
        } else run++;
    }
    jbuf_put(b, s + n - run, run);
    jbuf_putc(b, '"');
}

static void json_newline(jbuf *b, const char *ind, int level) {
    jbuf_putc(b, '\n');
    for (int i = 0; i < level; i++) jbuf_put(b, ind, strlen(ind));
}

static int key_cmp(const void *a, const void *b) {
    const jv *x = *(const jv *const *)a, *y = *(const jv *const *)b;
    size_t n = TL_MIN(x->u.s->len, y->u.s->len);
    int r = memcmp(x->u.s->s, y->u.s->s, n);
    return r ? r : (x->u.s->len > y->u.s->len) - (x->u.s->len < y->u.s->len);
}

static int json_key(jbuf *b, jv k, int ascii, jv *bad) {
    char tmp[64];
    switch (k.t) {
    case JV_STR: write_json_str(b, k.u.s->s, k.u.s->len, ascii); return 0;
    case JV_INT: jbuf_printf(b, "\"%lld\"", (long long)k.u.i); return 0;
    case JV_BOOL: jbuf_put(b, k.u.b ? "\"true\"" : "\"false\"", k.u.b ? 6 : 7); return 0;
    case JV_NONE: jbuf_put(b, "\"null\"", 6); return 0;
    case JV_FLOAT:
        jv_format_float(tmp, sizeof tmp, k.u.f);
        jbuf_printf(b, "\"%s\"", tmp);
        return 0;
    default: *bad = k; return -1;
    }
}

int jv_write_json(jbuf *b, jv v, const jjson_opts *o, int depth, jv *bad) {
    char tmp[64];
    if (depth > 512) { *bad = v; return -1; }
    const char *ind = o->indent;
    const char *item_sep = o->item_sep ? o->item_sep : ind ? "," : ", ";
    const char *key_sep = o->key_sep ? o->key_sep : ": ";
    int sort_keys = o->sort_keys;
    switch (v.t) {
    case JV_NONE: jbuf_put(b, "null", 4); return 0;
    case JV_BOOL: v.u.b ? jbuf_put(b, "true", 4) : jbuf_put(b, "false", 5); return 0;
    case JV_INT: jbuf_printf(b, "%lld", (long long)v.u.i); return 0;
    case JV_FLOAT:
        if (isnan(v.u.f)) jbuf_put(b, "NaN", 3);
        else if (isinf(v.u.f)) v.u.f < 0 ? jbuf_put(b, "-Infinity", 9) : jbuf_put(b, "Infinity", 8);
        else { jv_format_float(tmp, sizeof tmp, v.u.f); jbuf_put(b, tmp, strlen(tmp)); }
        return 0;
    case JV_STR: write_json_str(b, v.u.s->s, v.u.s->len, o->ensure_ascii); return 0;
    case JV_LIST:
        if (!v.u.l->n) { jbuf_put(b, "[]", 2); return 0; }
        jbuf_putc(b, '[');
        for (size_t i = 0; i < v.u.l->n; i++) {
            if (i) jbuf_put(b, item_sep, strlen(item_sep));
            if (ind) json_newline(b, ind, depth + 1);
            if (jv_write_json(b, v.u.l->v[i], o, depth + 1, bad)) return -1;
        }
        if (ind) json_newline(b, ind, depth);
        jbuf_putc(b, ']');
        return 0;
    case JV_DICT: {
        jdict *d = v.u.d;
        if (!d->n) { jbuf_put(b, "{}", 2); return 0; }
        size_t *order = jctx_alloc(b->c, d->n * sizeof(size_t));
        for (size_t i = 0; i < d->n; i++) order[i] = i;
        if (sort_keys) {
            const jv **keys = jctx_alloc(b->c, d->n * sizeof(jv *));
            for (size_t i = 0; i < d->n; i++) {
                if (d->k[i].t != JV_STR) { *bad = d->k[i]; return -1; }
                keys[i] = &d->k[i];
            }
            qsort(keys, d->n, sizeof *keys, key_cmp);
            for (size_t i = 0; i < d->n; i++) order[i] = (size_t)(keys[i] - d->k);
        }
        jbuf_putc(b, '{');
        for (size_t j = 0; j < d->n; j++) {
            size_t i = order[j];
            if (j) jbuf_put(b, item_sep, strlen(item_sep));
            if (ind) json_newline(b, ind, depth + 1);
            if (json_key(b, d->k[i], o->ensure_ascii, bad)) return -1;
            jbuf_put(b, key_sep, strlen(key_sep));
            if (jv_write_json(b, d->v[i], o, depth + 1, bad)) return -1;
        }
        if (ind) json_newline(b, ind, depth);
        jbuf_putc(b, '}');
        return 0;
    }
    default: *bad = v; return -1;
    }
}

/* ---- JSON input ----------------------------------------------------------------------------- */
static jv from_jansson(jctx *c, json_t *j, int depth) {
    if (depth > 256) jctx_fail(c, TL_ELIMIT, 0, 0, "JSON input nested deeper than 256 levels");
    switch (json_typeof(j)) {
    case JSON_NULL: return jv_none();
    case JSON_TRUE: return jv_bool(1);
    case JSON_FALSE: return jv_bool(0);
    case JSON_INTEGER: return jv_int((int64_t)json_integer_value(j));
    case JSON_REAL: return jv_float(json_real_value(j));
    case JSON_STRING: return jv_str(c, json_string_value(j), json_string_length(j));
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        jv l = jv_list(c, n);
        for (size_t i = 0; i < n; i++) jv_list_push(c, l, from_jansson(c, json_array_get(j, i), depth + 1));
        return l;
    }
    case JSON_OBJECT: {
        jv d = jv_dict(c, json_object_size(j));
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) jv_dict_set(c, d, jv_cstr(c, k), from_jansson(c, v, depth + 1));
        return d;
    }
    }
    return jv_none();
}

int jv_from_json(jctx *c, const char *json, const char *what, jv *out, tl_err *err) {
    json_error_t je;
    json_t *j = json_loads(json, JSON_DECODE_ANY, &je);
    if (!j)
        return tl_err_set(err, TL_EINVAL, "%s: invalid JSON at line %d, column %d: %s", what,
                          je.line, je.column, je.text);
    c->pending_json = j; /* freed by the render's exit if a limit ends it mid-way */
    *out = from_jansson(c, j, 0);
    c->pending_json = NULL;
    json_decref(j);
    return 0;
}

/* ---- UTF-8 ---------------------------------------------------------------------------------- */
size_t ju_len(const char *s, size_t n) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) k += ((unsigned char)s[i] & 0xC0) != 0x80;
    return k;
}

size_t ju_offset(const char *s, size_t n, size_t cp) {
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (((unsigned char)s[i] & 0xC0) != 0x80) {
            if (k == cp) return i;
            k++;
        }
    }
    return n;
}
