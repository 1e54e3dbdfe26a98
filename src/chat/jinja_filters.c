/* jinja_filters.c — jinja2's filters and tests, and the Python str / dict / list methods that
 * templates call, with the exact behaviour of jinja2 3.1 and CPython (case-insensitive sort and
 * unique by default, Python's strip/split rules, tojson = json.dumps(ensure_ascii=False)). */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "chat/jinja_int.h"

#define NOARG ((jv){.t = (jv_type)99})
static int absent(jv v) { return (int)v.t == 99; }

static _Noreturn void ferr(jctx *c, const char *fmt, const char *a, const char *b) {
    jctx_fail(c, TL_ERUNTIME, 0, 0, fmt, a, b);
}

static jv S(jctx *c, jv v) { return jv_to_str(c, v); }

/* ---- unicode helpers ------------------------------------------------------------------------ */
static size_t cp_next(const char *s, size_t n, size_t i, int32_t *cp) {
    utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), cp);
    if (k <= 0) { *cp = (unsigned char)s[i]; return i + 1; }
    return i + (size_t)k;
}

static void put_cp(jbuf *b, int32_t cp) {
    utf8proc_uint8_t tmp[4];
    utf8proc_ssize_t k = utf8proc_encode_char(cp, tmp);
    jbuf_put(b, (const char *)tmp, (size_t)k);
}

static int py_isspace(int32_t cp) {
    if (cp == ' ' || (cp >= 9 && cp <= 13) || (cp >= 0x1c && cp <= 0x1f) || cp == 0x85) return 1;
    if (cp < 0x80) return 0;
    utf8proc_category_t cat = utf8proc_category(cp);
    return cat == UTF8PROC_CATEGORY_ZS || cp == 0x2028 || cp == 0x2029;
}

static int is_cased(int32_t cp) {
    utf8proc_category_t cat = utf8proc_category(cp);
    return cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT;
}

static int is_alnum_cp(int32_t cp) {
    if (cp < 0x80) return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z');
    utf8proc_category_t cat = utf8proc_category(cp);
    return (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) ||
           (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO);
}

enum { CASE_UPPER, CASE_LOWER, CASE_TITLE_PY, CASE_CAPITALIZE, CASE_TITLE_JINJA };

static jv case_map(jctx *c, jv v, int mode) {
    jv s = S(c, v);
    jbuf b;
    jbuf_init(&b, c, 0);
    const char *p = s.u.s->s;
    size_t n = s.u.s->len;
    int prev_cased = 0, first = 1, word_start = 1;
    for (size_t i = 0; i < n;) {
        int32_t cp;
        i = cp_next(p, n, i, &cp);
        int32_t o = cp;
        switch (mode) {
        case CASE_UPPER:
            if (cp == 0xDF) { jbuf_put(&b, "SS", 2); continue; } /* the one full case mapping templates meet */
            o = utf8proc_toupper(cp);
            break;
        case CASE_LOWER: o = utf8proc_tolower(cp); break;
        case CASE_TITLE_PY:
            o = prev_cased ? utf8proc_tolower(cp) : utf8proc_totitle(cp);
            prev_cased = is_cased(cp);
            break;
        case CASE_CAPITALIZE: o = first ? utf8proc_totitle(cp) : utf8proc_tolower(cp); break;
        case CASE_TITLE_JINJA: {
            int sep = py_isspace(cp) || cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<';
            if (sep) { o = cp; word_start = 1; }
            else { o = word_start ? utf8proc_toupper(cp) : utf8proc_tolower(cp); word_start = 0; }
            break;
        }
        }
        first = 0;
        put_cp(&b, o);
    }
    return jbuf_str(&b);
}

/* strip with Python rules: chars NONE/absent = whitespace, else the set of code points */
static int in_set(int32_t cp, jv chars) {
    if (chars.t != JV_STR) return py_isspace(cp);
    const char *p = chars.u.s->s;
    size_t n = chars.u.s->len;
    for (size_t i = 0; i < n;) {
        int32_t x;
        i = cp_next(p, n, i, &x);
        if (x == cp) return 1;
    }
    return 0;
}

static jv do_strip(jctx *c, jv v, jv chars, int left, int right) {
    jv s = S(c, v);
    if (!absent(chars) && chars.t != JV_NONE && chars.t != JV_STR)
        ferr(c, "strip arg must be None or str, not %s%s", jv_type_name(chars), "");
    const char *p = s.u.s->s;
    size_t n = s.u.s->len, a = 0, e = n;
    if (left)
        while (a < e) {
            int32_t cp;
            size_t nx = cp_next(p, n, a, &cp);
            if (!in_set(cp, chars)) break;
            a = nx;
        }
    if (right)
        while (e > a) {
            size_t q = e - 1;
            while (q > a && ((unsigned char)p[q] & 0xC0) == 0x80) q--;
            int32_t cp;
            cp_next(p, n, q, &cp);
            if (!in_set(cp, chars)) break;
            e = q;
        }
    return jv_str(c, p + a, e - a);
}

static jv do_split(jctx *c, jv s, jv sep, int64_t maxsplit, int from_right) {
    jv l = jv_list(c, 4);
    const char *p = s.u.s->s;
    size_t n = s.u.s->len;
    if (sep.t != JV_STR) { /* whitespace runs */
        size_t i = 0;
        int64_t splits = 0;
        if (from_right) { /* rsplit(None): only used with maxsplit; do it simply */
            jv all = do_split(c, s, sep, -1, 0);
            if (maxsplit < 0 || (int64_t)all.u.l->n <= maxsplit + 1) return all;
            /* join the head back with single spaces is not exact; keep the original text */
            size_t keep = all.u.l->n - (size_t)maxsplit;
            /* find the end of the keep-th word in the original text */
            size_t pos = 0, w = 0;
            while (pos < n) {
                int32_t cp;
                while (pos < n) { size_t nx = cp_next(p, n, pos, &cp); if (!py_isspace(cp)) break; pos = nx; }
                size_t st = pos;
                while (pos < n) { size_t nx = cp_next(p, n, pos, &cp); if (py_isspace(cp)) break; pos = nx; }
                if (++w == keep) {
                    size_t a = 0;
                    while (a < st) { size_t nx = cp_next(p, n, a, &cp); if (!py_isspace(cp)) break; a = nx; }
                    jv_list_push(c, l, jv_str(c, p + a, pos - a));
                    break;
                }
            }
            for (size_t k = keep; k < all.u.l->n; k++) jv_list_push(c, l, all.u.l->v[k]);
            return l;
        }
        while (i < n) {
            int32_t cp;
            while (i < n) { size_t nx = cp_next(p, n, i, &cp); if (!py_isspace(cp)) break; i = nx; }
            if (i >= n) break;
            if (maxsplit >= 0 && splits >= maxsplit) {
                size_t e = n;
                while (e > i) {
                    size_t q = e - 1;
                    while (q > i && ((unsigned char)p[q] & 0xC0) == 0x80) q--;
                    cp_next(p, n, q, &cp);
                    if (!py_isspace(cp)) break;
                    e = q;
                }
                jv_list_push(c, l, jv_str(c, p + i, e - i));
                break;
            }
            size_t st = i;
            while (i < n) { size_t nx = cp_next(p, n, i, &cp); if (py_isspace(cp)) break; i = nx; }
            jv_list_push(c, l, jv_str(c, p + st, i - st));
            splits++;
        }
        return l;
    }
    size_t sl = sep.u.s->len;
    if (!sl) jctx_fail(c, TL_ERUNTIME, 0, 0, "empty separator");
    if (from_right && maxsplit >= 0) {
        /* split from the right: collect pieces backwards */
        jv rev = jv_list(c, 4);
        size_t e = n;
        int64_t splits = 0;
        while (splits < maxsplit) {
            const char *hit = NULL;
            for (size_t q = e >= sl ? e - sl + 1 : 0; q-- > 0;)
                if (!memcmp(p + q, sep.u.s->s, sl)) { hit = p + q; break; }
            if (!hit) break;
            size_t h = (size_t)(hit - p);
            jv_list_push(c, rev, jv_str(c, p + h + sl, e - h - sl));
            e = h;
            splits++;
        }
        jv_list_push(c, l, jv_str(c, p, e));
        for (size_t k = rev.u.l->n; k-- > 0;) jv_list_push(c, l, rev.u.l->v[k]);
        return l;
    }
    size_t i = 0;
    int64_t splits = 0;
    while (1) {
        const char *hit = (maxsplit < 0 || splits < maxsplit) ? memmem(p + i, n - i, sep.u.s->s, sl) : NULL;
        if (!hit) {
            jv_list_push(c, l, jv_str(c, p + i, n - i));
            return l;
        }
        jctx_tick(c, 0);
        jv_list_push(c, l, jv_str(c, p + i, (size_t)(hit - (p + i))));
        i = (size_t)(hit - p) + sl;
        splits++;
    }
}

static jv do_replace(jctx *c, jv s, jv old, jv new_, int64_t count) {
    if (old.t != JV_STR || new_.t != JV_STR) ferr(c, "replace() arguments must be str, not %s%s", jv_type_name(old.t != JV_STR ? old : new_), "");
    jbuf b;
    jbuf_init(&b, c, c->lim.max_output);
    const char *p = s.u.s->s;
    size_t n = s.u.s->len, ol = old.u.s->len;
    int64_t done = 0;
    if (!ol) {
        size_t i = 0;
        while (i < n) {
            if (count < 0 || done < count) { jbuf_put(&b, new_.u.s->s, new_.u.s->len); done++; }
            int32_t cp;
            size_t nx = cp_next(p, n, i, &cp);
            jbuf_put(&b, p + i, nx - i);
            i = nx;
        }
        if (count < 0 || done < count) jbuf_put(&b, new_.u.s->s, new_.u.s->len);
        return jbuf_str(&b);
    }
    size_t i = 0;
    while (i <= n) {
        const char *hit = (count < 0 || done < count) ? memmem(p + i, n - i, old.u.s->s, ol) : NULL;
        if (!hit) { jbuf_put(&b, p + i, n - i); break; }
        jbuf_put(&b, p + i, (size_t)(hit - (p + i)));
        jbuf_put(&b, new_.u.s->s, new_.u.s->len);
        i = (size_t)(hit - p) + ol;
        done++;
    }
    return jbuf_str(&b);
}

static int64_t count_sub(jv s, jv sub) {
    size_t sl = sub.u.s->len;
    if (!sl) return (int64_t)ju_len(s.u.s->s, s.u.s->len) + 1;
    int64_t k = 0;
    const char *p = s.u.s->s, *e = p + s.u.s->len;
    while (p < e) {
        const char *h = memmem(p, (size_t)(e - p), sub.u.s->s, sl);
        if (!h) break;
        k++;
        p = h + sl;
    }
    return k;
}

static int64_t find_sub(jv s, jv sub, int rev) {
    const char *p = s.u.s->s;
    size_t n = s.u.s->len, sl = sub.u.s->len;
    const char *h = NULL;
    if (!rev) h = sl ? memmem(p, n, sub.u.s->s, sl) : p;
    else {
        if (!sl) return (int64_t)ju_len(p, n);
        for (size_t q = n >= sl ? n - sl + 1 : 0; q-- > 0;)
            if (!memcmp(p + q, sub.u.s->s, sl)) { h = p + q; break; }
    }
    if (!h) return -1;
    return (int64_t)ju_len(p, (size_t)(h - p));
}

static jv splitlines(jctx *c, jv s, int keepends) {
    jv l = jv_list(c, 4);
    const char *p = s.u.s->s;
    size_t n = s.u.s->len, st = 0, i = 0;
    while (i < n) {
        int32_t cp;
        size_t nx = cp_next(p, n, i, &cp);
        int br = cp == '\n' || cp == '\r' || cp == '\v' || cp == '\f' || cp == 0x1c || cp == 0x1d ||
                 cp == 0x1e || cp == 0x85 || cp == 0x2028 || cp == 0x2029;
        if (br) {
            if (cp == '\r' && nx < n && p[nx] == '\n') nx++;
            jv_list_push(c, l, jv_str(c, p + st, (keepends ? nx : i) - st));
            st = nx;
        }
        i = nx;
    }
    if (st < n) jv_list_push(c, l, jv_str(c, p + st, n - st));
    return l;
}

/* ---- attribute paths ("a.b.0") as jinja2's make_attrgetter ---------------------------------- */
static jv get_path(jctx *c, jv item, jv attr) {
    if (attr.t == JV_INT) return jv_getitem(c, item, attr);
    if (attr.t != JV_STR) return jv_getitem(c, item, attr);
    const char *p = attr.u.s->s;
    while (1) {
        const char *dot = strchr(p, '.');
        size_t L = dot ? (size_t)(dot - p) : strlen(p);
        jv key = jv_str(c, p, L);
        int isnum = L > 0;
        for (size_t i = 0; i < L; i++) isnum &= p[i] >= '0' && p[i] <= '9';
        if (isnum) key = jv_int(strtoll(key.u.s->s, NULL, 10));
        if (item.t == JV_UNDEF) return item;
        item = jv_getitem(c, item, key);
        if (!dot) return item;
        p = dot + 1;
    }
}

/* ---- sorting -------------------------------------------------------------------------------- */
static jv sort_key(jctx *c, jv v, int case_sensitive) {
    if (!case_sensitive && v.t == JV_STR) return case_map(c, v, CASE_LOWER);
    return v;
}

/* stable merge sort of idx by keys */
static void msort(jctx *c, size_t *idx, size_t *tmp, size_t n, const jv *keys, int reverse) {
    if (n < 2) return;
    size_t h = n / 2;
    msort(c, idx, tmp, h, keys, reverse);
    msort(c, idx + h, tmp, n - h, keys, reverse);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        int r = jv_cmp(c, keys[idx[j]], keys[idx[i]], OP_LT);
        if (reverse) r = -r;
        if (r < 0) tmp[k++] = idx[j++];
        else tmp[k++] = idx[i++];
    }
    while (i < h) tmp[k++] = idx[i++];
    while (j < n) tmp[k++] = idx[j++];
    memcpy(idx, tmp, n * sizeof *idx);
}

static jv sorted(jctx *c, jv list, const jv *keys, int reverse) {
    size_t n = list.u.l->n;
    size_t *idx = jctx_alloc(c, (n + 1) * sizeof *idx), *tmp = jctx_alloc(c, (n + 1) * sizeof *tmp);
    for (size_t i = 0; i < n; i++) idx[i] = i;
    msort(c, idx, tmp, n, keys, reverse);
    jv out = jv_list(c, n);
    for (size_t i = 0; i < n; i++) jv_list_push(c, out, list.u.l->v[idx[i]]);
    return out;
}

static int arg_bool(jv v, int def) { return absent(v) ? def : jv_truthy(v); }

static int64_t arg_int(jctx *c, jv v, int64_t def, const char *what) {
    if (absent(v) || v.t == JV_NONE) return def;
    if (v.t == JV_INT) return v.u.i;
    if (v.t == JV_BOOL) return v.u.b;
    if (v.t == JV_FLOAT) return (int64_t)v.u.f;
    ferr(c, "%s expects an integer, not %s", what, jv_type_name(v));
}

/* ---- filters -------------------------------------------------------------------------------- */
static jv f_tojson(jctx *c, jv in, const jargs *a) {
    jv ind = jargs_get(c, a, 0, "indent", NOARG);
    jv sk = jargs_get(c, a, -1, "sort_keys", NOARG);
    char ibuf[64];
    const char *istr = NULL;
    if (!absent(ind) && ind.t != JV_NONE) {
        if (ind.t == JV_STR) istr = ind.u.s->s;
        else {
            int64_t w = arg_int(c, ind, 0, "tojson indent");
            if (w > 32) w = 32;
            if (w < 0) w = 0;
            memset(ibuf, ' ', (size_t)w);
            ibuf[w] = 0;
            istr = ibuf;
        }
    }
    jjson_opts jo = {.indent = istr, .sort_keys = arg_bool(sk, 0),
                     .ensure_ascii = arg_bool(jargs_get(c, a, -1, "ensure_ascii", NOARG), 0)};
    jv seps = jargs_get(c, a, -1, "separators", NOARG);
    if (!absent(seps) && seps.t != JV_NONE) {
        if (seps.t != JV_LIST || seps.u.l->n != 2 || seps.u.l->v[0].t != JV_STR || seps.u.l->v[1].t != JV_STR)
            ferr(c, "tojson separators must be a pair of strings%s%s", "", "");
        jo.item_sep = seps.u.l->v[0].u.s->s;
        jo.key_sep = seps.u.l->v[1].u.s->s;
    }
    jbuf b;
    jbuf_init(&b, c, c->lim.max_output);
    jv bad;
    if (jv_write_json(&b, in, &jo, 0, &bad)) {
        if (bad.t == JV_UNDEF) ferr(c, "Object of type %s is not JSON serializable%s", "Undefined", "");
        ferr(c, "Object of type %s is not JSON serializable%s", jv_type_name(bad), "");
    }
    return jbuf_str(&b);
}

static jv f_indent(jctx *c, jv in, const jargs *a) {
    jv w = jargs_get(c, a, 0, "width", jv_int(4));
    int first = arg_bool(jargs_get(c, a, 1, "first", NOARG), 0);
    int blank = arg_bool(jargs_get(c, a, 2, "blank", NOARG), 0);
    jv ind;
    if (w.t == JV_STR) ind = w;
    else {
        int64_t k = arg_int(c, w, 4, "indent width");
        if (k < 0) k = 0;
        if (k > 1024) jctx_fail(c, TL_ELIMIT, 0, 0, "indent width too large");
        char sp[1025];
        memset(sp, ' ', (size_t)k);
        ind = jv_str(c, sp, (size_t)k);
    }
    jv s = S(c, in);
    jbuf t;
    jbuf_init(&t, c, 0);
    jbuf_put(&t, s.u.s->s, s.u.s->len);
    jbuf_putc(&t, '\n');
    jv lines = splitlines(c, jbuf_str(&t), 0);
    jbuf b;
    jbuf_init(&b, c, c->lim.max_output);
    if (first) jbuf_put(&b, ind.u.s->s, ind.u.s->len);
    for (size_t i = 0; i < lines.u.l->n; i++) {
        jv ln = lines.u.l->v[i];
        if (i) {
            jbuf_putc(&b, '\n');
            if (blank || ln.u.s->len) jbuf_put(&b, ind.u.s->s, ind.u.s->len);
        }
        jbuf_put(&b, ln.u.s->s, ln.u.s->len);
    }
    return jbuf_str(&b);
}

static jv f_int(jctx *c, jv in, const jargs *a) {
    jv def = jargs_get(c, a, 0, "default", jv_int(0));
    int64_t base = arg_int(c, jargs_get(c, a, 1, "base", NOARG), 10, "int base");
    if (in.t == JV_UNDEF) jctx_fail_undef(c, in);
    switch (in.t) {
    case JV_INT: return in;
    case JV_BOOL: return jv_int(in.u.b);
    case JV_FLOAT:
        if (!isfinite(in.u.f) || fabs(in.u.f) > 9.2e18) return def;
        return jv_int((int64_t)in.u.f);
    case JV_STR: {
        jv t = do_strip(c, in, NOARG, 1, 1);
        const char *p = t.u.s->s;
        char *end;
        if (!*p) return def;
        if (base < 2 || base > 36) base = 10;
        long long v = strtoll(p, &end, (int)base);
        int ok = end != p && !*end && !strchr(p, ' ');
        if (ok) return jv_int(v);
        double d = strtod(p, &end);
        if (end != p && !*end && isfinite(d) && fabs(d) < 9.2e18) return jv_int((int64_t)d);
        return def;
    }
    default: return def;
    }
}

static jv f_float(jctx *c, jv in, const jargs *a) {
    jv def = jargs_get(c, a, 0, "default", jv_float(0.0));
    if (in.t == JV_UNDEF) jctx_fail_undef(c, in);
    switch (in.t) {
    case JV_INT: return jv_float((double)in.u.i);
    case JV_BOOL: return jv_float(in.u.b);
    case JV_FLOAT: return in;
    case JV_STR: {
        jv t = do_strip(c, in, NOARG, 1, 1);
        char *end;
        if (!t.u.s->len) return def;
        double d = strtod(t.u.s->s, &end);
        if (end != t.u.s->s && !*end) return jv_float(d);
        return def;
    }
    default: return def;
    }
}

static jv f_round(jctx *c, jv in, const jargs *a) {
    int64_t prec = arg_int(c, jargs_get(c, a, 0, "precision", NOARG), 0, "round precision");
    jv m = jargs_get(c, a, 1, "method", NOARG);
    const char *method = (!absent(m) && m.t == JV_STR) ? m.u.s->s : "common";
    if (in.t != JV_INT && in.t != JV_FLOAT && in.t != JV_BOOL)
        ferr(c, "round() needs a number, not %s%s", jv_type_name(in), "");
    if (prec > 300) prec = 300;
    if (prec < -300) prec = -300;
    if (!strcmp(method, "common")) {
        if (in.t != JV_FLOAT) return jv_int(in.t == JV_INT ? in.u.i : in.u.b); /* round(int, n) */
        double x = in.u.f;
        if (!isfinite(x)) return in;
        if (prec == 0) return jv_float(nearbyint(x));
        if (prec > 0) {
            char buf[512];
            snprintf(buf, sizeof buf, "%.*f", (int)prec, x);
            return jv_float(strtod(buf, NULL));
        }
        double p = pow(10.0, (double)-prec);
        return jv_float(nearbyint(x / p) * p);
    }
    double x = in.t == JV_FLOAT ? in.u.f : (double)(in.t == JV_INT ? in.u.i : in.u.b);
    double p = pow(10.0, (double)prec);
    if (!strcmp(method, "ceil")) return jv_float(ceil(x * p) / p);
    if (!strcmp(method, "floor")) return jv_float(floor(x * p) / p);
    ferr(c, "method must be common, ceil or floor%s%s", "", "");
}

static jv f_map(jctx *c, jv in, const jargs *a) {
    jv items = jv_iter_list(c, in);
    jv out = jv_list(c, items.u.l->n);
    if (!items.u.l->n) return out; /* jinja2 looks at the arguments only when there are items */
    if (!a->n) {
        for (int k = 0; k < a->nkw; k++)
            if (strcmp(a->kw[k], "attribute") && strcmp(a->kw[k], "default"))
                jctx_fail(c, TL_ERUNTIME, 0, 0, "filter 'map' got an unexpected keyword argument '%s'", a->kw[k]);
    }
    jv attr = jargs_get(c, a, -1, "attribute", NOARG);
    if (!absent(attr)) {
        jv def = jargs_get(c, a, -1, "default", NOARG);
        for (size_t i = 0; i < items.u.l->n; i++) {
            jv v = get_path(c, items.u.l->v[i], attr);
            if (v.t == JV_UNDEF && !absent(def)) v = def;
            jv_list_push(c, out, v);
        }
        return out;
    }
    if (a->n < 1 || a->v[0].t != JV_STR) ferr(c, "map requires a filter name or attribute=%s%s", "", "");
    jargs rest = {.n = a->n - 1, .v = a->n > 1 ? a->v + 1 : NULL, .nkw = a->nkw, .kw = a->kw, .kv = a->kv};
    for (size_t i = 0; i < items.u.l->n; i++)
        jv_list_push(c, out, jv_apply_filter(c, a->v[0].u.s->s, items.u.l->v[i], &rest));
    return out;
}

static jv f_select(jctx *c, jv in, const jargs *a, int attr_mode, int want) {
    jv items = jv_iter_list(c, in);
    jv out = jv_list(c, items.u.l->n);
    if (!items.u.l->n) return out;
    int off = attr_mode ? 1 : 0;
    if (attr_mode && a->n < 1) ferr(c, "selectattr/rejectattr need an attribute%s%s", "", "");
    const char *test = a->n > off ? (a->v[off].t == JV_STR ? a->v[off].u.s->s : NULL) : NULL;
    if (a->n > off && !test) ferr(c, "test name must be a string%s%s", "", "");
    jargs rest = {.n = a->n > off + 1 ? a->n - off - 1 : 0, .v = a->n > off + 1 ? a->v + off + 1 : NULL,
                  .nkw = a->nkw, .kw = a->kw, .kv = a->kv};
    for (size_t i = 0; i < items.u.l->n; i++) {
        jv item = items.u.l->v[i];
        jv x = attr_mode ? get_path(c, item, a->v[0]) : item;
        int r = test ? jv_apply_test(c, test, x, &rest) : jv_truthy(x);
        if (r == want) jv_list_push(c, out, item);
    }
    return out;
}

static jv f_minmax(jctx *c, jv in, const jargs *a, int want_max) {
    int cs = arg_bool(jargs_get(c, a, 0, "case_sensitive", NOARG), 0);
    jv attr = jargs_get(c, a, 1, "attribute", NOARG);
    jv items = jv_iter_list(c, in);
    if (!items.u.l->n) return jv_undef("No aggregated item, sequence was empty.");
    jv best = items.u.l->v[0];
    jv bk = sort_key(c, absent(attr) || attr.t == JV_NONE ? best : get_path(c, best, attr), cs);
    for (size_t i = 1; i < items.u.l->n; i++) {
        jv it = items.u.l->v[i];
        jv k = sort_key(c, absent(attr) || attr.t == JV_NONE ? it : get_path(c, it, attr), cs);
        int r = jv_cmp(c, k, bk, OP_LT);
        if (want_max ? r > 0 : r < 0) { best = it; bk = k; }
    }
    return best;
}

/* keyword arguments each filter takes (jinja2 3.1 signatures; tojson as transformers') */
static const struct { const char *filter, *kw; } k_filter_kw[] = {
    {"trim", "chars"}, {"tojson", "ensure_ascii indent separators sort_keys"},
    {"join", "d attribute"}, {"replace", "old new count"}, {"default", "default_value boolean"},
    {"d", "default_value boolean"}, {"map", "attribute default"}, {"unique", "case_sensitive attribute"},
    {"sort", "reverse case_sensitive attribute"}, {"dictsort", "case_sensitive by reverse"},
    {"indent", "width first blank"}, {"int", "default base"}, {"float", "default"},
    {"round", "precision method"}, {"batch", "linecount fill_with"}, {"sum", "attribute start"},
    {"min", "case_sensitive attribute"}, {"max", "case_sensitive attribute"}, {"attr", "name"},
    {"center", "width"}};

static void check_filter_kwargs(jctx *c, const char *name, const jargs *a) {
    if (!a->nkw || !strcmp(name, "map") || !strcmp(name, "select") || !strcmp(name, "reject") || !strcmp(name, "selectattr") ||
        !strcmp(name, "rejectattr"))
        return;
    const char *allowed = "";
    for (size_t i = 0; i < TL_ARRAY_LEN(k_filter_kw); i++)
        if (!strcmp(k_filter_kw[i].filter, name)) allowed = k_filter_kw[i].kw;
    for (int k = 0; k < a->nkw; k++) {
        const char *p = allowed, *w = a->kw[k];
        size_t wl = strlen(w);
        int ok = 0;
        while (*p && !ok) {
            const char *e = strchr(p, ' ');
            size_t L = e ? (size_t)(e - p) : strlen(p);
            ok = L == wl && !strncmp(p, w, L);
            p += L + (e ? 1 : 0);
        }
        if (!ok) jctx_fail(c, TL_ERUNTIME, 0, 0, "filter '%s' got an unexpected keyword argument '%s'", name, w);
    }
}

jv jv_apply_filter(jctx *c, const char *name, jv in, const jargs *a) {
    check_filter_kwargs(c, name, a);
    if (!strcmp(name, "length") || !strcmp(name, "count")) {
        switch (in.t) {
        case JV_STR: return jv_int((int64_t)ju_len(in.u.s->s, in.u.s->len));
        case JV_LIST: return jv_int((int64_t)in.u.l->n);
        case JV_DICT: case JV_NS: return jv_int((int64_t)in.u.d->n);
        case JV_UNDEF: return jv_int(0);
        case JV_LOOP: return jv_int((int64_t)in.u.loop->items.u.l->n);
        default: ferr(c, "object of type '%s' has no len()%s", jv_type_name(in), "");
        }
    }
    if (!strcmp(name, "trim")) return do_strip(c, in, jargs_get(c, a, 0, "chars", NOARG), 1, 1);
    if (!strcmp(name, "tojson")) return f_tojson(c, in, a);
    if (!strcmp(name, "safe") || !strcmp(name, "string")) return S(c, in);
    if (!strcmp(name, "items")) {
        if (in.t == JV_UNDEF) return jv_list(c, 0);
        if (in.t != JV_DICT) ferr(c, "Can only get item pairs from a mapping.%s%s", "", "");
        jv l = jv_list(c, in.u.d->n);
        for (size_t i = 0; i < in.u.d->n; i++) {
            jv t = jv_list(c, 2);
            t.u.l->tuple = 1;
            jv_list_push(c, t, in.u.d->k[i]);
            jv_list_push(c, t, in.u.d->v[i]);
            jv_list_push(c, l, t);
        }
        return l;
    }
    if (!strcmp(name, "join")) {
        jv d = jargs_get(c, a, 0, "d", jv_cstr(c, ""));
        jv attr = jargs_get(c, a, 1, "attribute", NOARG);
        jv items = jv_iter_list(c, in);
        jv ds = S(c, d);
        jbuf b;
        jbuf_init(&b, c, c->lim.max_output);
        for (size_t i = 0; i < items.u.l->n; i++) {
            if (i) jbuf_put(&b, ds.u.s->s, ds.u.s->len);
            jv it = items.u.l->v[i];
            if (!absent(attr) && attr.t != JV_NONE) it = get_path(c, it, attr);
            jv_write_str(&b, it);
        }
        return jbuf_str(&b);
    }
    if (!strcmp(name, "upper")) return case_map(c, in, CASE_UPPER);
    if (!strcmp(name, "lower")) return case_map(c, in, CASE_LOWER);
    if (!strcmp(name, "title")) return case_map(c, in, CASE_TITLE_JINJA);
    if (!strcmp(name, "capitalize")) return case_map(c, in, CASE_CAPITALIZE);
    if (!strcmp(name, "replace")) {
        if (a->n + a->nkw < 2) ferr(c, "replace() missing 1 required positional argument: 'new'%s%s", "", "");
        jv s = S(c, in);
        return do_replace(c, s, S(c, jargs_get(c, a, 0, "old", jv_cstr(c, ""))),
                          S(c, jargs_get(c, a, 1, "new", jv_cstr(c, ""))),
                          arg_int(c, jargs_get(c, a, 2, "count", NOARG), -1, "replace count"));
    }
    if (!strcmp(name, "default") || !strcmp(name, "d")) {
        jv def = jargs_get(c, a, 0, "default_value", jv_cstr(c, ""));
        int boolean = arg_bool(jargs_get(c, a, 1, "boolean", NOARG), 0);
        if (in.t == JV_UNDEF || (boolean && !jv_truthy(in))) return def;
        return in;
    }
    if (!strcmp(name, "first")) {
        jv l = jv_iter_list(c, in);
        return l.u.l->n ? l.u.l->v[0] : jv_undef("No first item, sequence was empty.");
    }
    if (!strcmp(name, "last")) {
        jv l = jv_iter_list(c, in);
        return l.u.l->n ? l.u.l->v[l.u.l->n - 1] : jv_undef("No last item, sequence was empty.");
    }
    if (!strcmp(name, "list")) {
        jv l = jv_iter_list(c, in), out = jv_list(c, l.u.l->n);
        for (size_t i = 0; i < l.u.l->n; i++) jv_list_push(c, out, l.u.l->v[i]);
        return out;
    }
    if (!strcmp(name, "reverse")) {
        if (in.t == JV_STR) {
            jv l = jv_iter_list(c, in);
            jbuf b;
            jbuf_init(&b, c, 0);
            for (size_t i = l.u.l->n; i-- > 0;) jbuf_put(&b, l.u.l->v[i].u.s->s, l.u.l->v[i].u.s->len);
            return jbuf_str(&b);
        }
        jv l = jv_iter_list(c, in), out = jv_list(c, l.u.l->n);
        for (size_t i = l.u.l->n; i-- > 0;) jv_list_push(c, out, l.u.l->v[i]);
        return out;
    }
    if (!strcmp(name, "map")) return f_map(c, in, a);
    if (!strcmp(name, "select")) return f_select(c, in, a, 0, 1);
    if (!strcmp(name, "reject")) return f_select(c, in, a, 0, 0);
    if (!strcmp(name, "selectattr")) return f_select(c, in, a, 1, 1);
    if (!strcmp(name, "rejectattr")) return f_select(c, in, a, 1, 0);
    if (!strcmp(name, "unique")) {
        int cs = arg_bool(jargs_get(c, a, 0, "case_sensitive", NOARG), 0);
        jv attr = jargs_get(c, a, 1, "attribute", NOARG);
        jv l = jv_iter_list(c, in), out = jv_list(c, l.u.l->n), seen = jv_list(c, l.u.l->n);
        for (size_t i = 0; i < l.u.l->n; i++) {
            jv it = l.u.l->v[i];
            jv k = sort_key(c, absent(attr) || attr.t == JV_NONE ? it : get_path(c, it, attr), cs);
            int dup = 0;
            for (size_t j = 0; j < seen.u.l->n && !dup; j++) dup = jv_equal(seen.u.l->v[j], k);
            jctx_tick(c, (int64_t)seen.u.l->n / 64);
            if (!dup) { jv_list_push(c, seen, k); jv_list_push(c, out, it); }
        }
        return out;
    }
    if (!strcmp(name, "sort")) {
        int rev = arg_bool(jargs_get(c, a, 0, "reverse", NOARG), 0);
        int cs = arg_bool(jargs_get(c, a, 1, "case_sensitive", NOARG), 0);
        jv attr = jargs_get(c, a, 2, "attribute", NOARG);
        jv l = jv_iter_list(c, in);
        jv *keys = jctx_alloc(c, (l.u.l->n + 1) * sizeof(jv));
        for (size_t i = 0; i < l.u.l->n; i++)
            keys[i] = sort_key(c, absent(attr) || attr.t == JV_NONE ? l.u.l->v[i] : get_path(c, l.u.l->v[i], attr), cs);
        return sorted(c, l, keys, rev);
    }
    if (!strcmp(name, "dictsort")) {
        if (in.t != JV_DICT) ferr(c, "dictsort needs a mapping, not %s%s", jv_type_name(in), "");
        int cs = arg_bool(jargs_get(c, a, 0, "case_sensitive", NOARG), 0);
        jv by = jargs_get(c, a, 1, "by", jv_cstr(c, "key"));
        int rev = arg_bool(jargs_get(c, a, 2, "reverse", NOARG), 0);
        int by_value = by.t == JV_STR && !strcmp(by.u.s->s, "value");
        if (by.t != JV_STR || (!by_value && strcmp(by.u.s->s, "key")))
            ferr(c, "You can only sort by either \"key\" or \"value\"%s%s", "", "");
        jv pairs = jv_apply_filter(c, "items", in, &(jargs){0});
        jv *keys = jctx_alloc(c, (pairs.u.l->n + 1) * sizeof(jv));
        for (size_t i = 0; i < pairs.u.l->n; i++) keys[i] = sort_key(c, pairs.u.l->v[i].u.l->v[by_value], cs);
        return sorted(c, pairs, keys, rev);
    }
    if (!strcmp(name, "indent")) return f_indent(c, in, a);
    if (!strcmp(name, "int")) return f_int(c, in, a);
    if (!strcmp(name, "float")) return f_float(c, in, a);
    if (!strcmp(name, "abs")) {
        if (in.t == JV_INT) {
            if (in.u.i == INT64_MIN) jctx_fail(c, TL_ELIMIT, 0, 0, "integer overflow");
            return jv_int(in.u.i < 0 ? -in.u.i : in.u.i);
        }
        if (in.t == JV_BOOL) return jv_int(in.u.b);
        if (in.t == JV_FLOAT) return jv_float(fabs(in.u.f));
        ferr(c, "bad operand type for abs(): '%s'%s", jv_type_name(in), "");
    }
    if (!strcmp(name, "round")) return f_round(c, in, a);
    if (!strcmp(name, "wordcount")) {
        jv s = S(c, in);
        int64_t k = 0;
        int inw = 0;
        for (size_t i = 0; i < s.u.s->len;) {
            int32_t cp;
            i = cp_next(s.u.s->s, s.u.s->len, i, &cp);
            int w = cp == '_' || is_alnum_cp(cp);
            if (w && !inw) k++;
            inw = w;
        }
        return jv_int(k);
    }
    if (!strcmp(name, "batch")) {
        int64_t n = arg_int(c, jargs_get(c, a, 0, "linecount", NOARG), 1, "batch size");
        jv fill = jargs_get(c, a, 1, "fill_with", NOARG);
        if (n < 1) ferr(c, "batch size must be positive%s%s", "", "");
        jv l = jv_iter_list(c, in), out = jv_list(c, 4), cur = jv_list(c, (size_t)TL_MIN(n, 64));
        for (size_t i = 0; i < l.u.l->n; i++) {
            if ((int64_t)cur.u.l->n == n) { jv_list_push(c, out, cur); cur = jv_list(c, (size_t)TL_MIN(n, 64)); }
            jv_list_push(c, cur, l.u.l->v[i]);
        }
        if (cur.u.l->n) {
            if (!absent(fill) && fill.t != JV_NONE)
                while ((int64_t)cur.u.l->n < n) { jctx_tick(c, 1); jv_list_push(c, cur, fill); }
            jv_list_push(c, out, cur);
        }
        return out;
    }
    if (!strcmp(name, "sum")) {
        jv attr = jargs_get(c, a, 0, "attribute", NOARG);
        jv acc = jargs_get(c, a, 1, "start", jv_int(0));
        jv l = jv_iter_list(c, in);
        for (size_t i = 0; i < l.u.l->n; i++) {
            jv it = l.u.l->v[i];
            if (!absent(attr) && attr.t != JV_NONE) it = get_path(c, it, attr);
            acc = jv_binop(c, OP_ADD, acc, it);
        }
        return acc;
    }
    if (!strcmp(name, "min")) return f_minmax(c, in, a, 0);
    if (!strcmp(name, "max")) return f_minmax(c, in, a, 1);
    if (!strcmp(name, "attr")) {
        jv nm = jargs_get(c, a, 0, "name", NOARG);
        if (nm.t != JV_STR) ferr(c, "attr needs a name%s%s", "", "");
        return jv_getattr(c, in, nm.u.s->s);
    }
    if (!strcmp(name, "center")) {
        int64_t w = arg_int(c, jargs_get(c, a, 0, "width", NOARG), 80, "center width");
        jv s = S(c, in);
        int64_t len = (int64_t)ju_len(s.u.s->s, s.u.s->len);
        if (w > 100000) jctx_fail(c, TL_ELIMIT, 0, 0, "center width too large");
        if (w <= len) return s;
        int64_t pad = w - len, left = pad / 2 + (pad & w & 1);
        jbuf b;
        jbuf_init(&b, c, 0);
        for (int64_t i = 0; i < left; i++) jbuf_putc(&b, ' ');
        jbuf_put(&b, s.u.s->s, s.u.s->len);
        for (int64_t i = 0; i < pad - left; i++) jbuf_putc(&b, ' ');
        return jbuf_str(&b);
    }
    if (!strcmp(name, "e") || !strcmp(name, "escape") || !strcmp(name, "forceescape")) {
        jv s = S(c, in);
        jbuf b;
        jbuf_init(&b, c, c->lim.max_output);
        for (size_t i = 0; i < s.u.s->len; i++) {
            char ch = s.u.s->s[i];
            switch (ch) {
            case '&': jbuf_put(&b, "&amp;", 5); break;
            case '<': jbuf_put(&b, "&lt;", 4); break;
            case '>': jbuf_put(&b, "&gt;", 4); break;
            case '"': jbuf_put(&b, "&#34;", 5); break;
            case '\'': jbuf_put(&b, "&#39;", 5); break;
            default: jbuf_putc(&b, ch);
            }
        }
        return jbuf_str(&b);
    }
    jctx_fail(c, TL_EUNSUP, 0, 0, "filter '%s' is not supported", name);
}

/* ---- tests ---------------------------------------------------------------------------------- */
int jv_apply_test(jctx *c, const char *name, jv in, const jargs *a) {
    jv arg = a->n ? a->v[0] : jv_undef(NULL);
    static const char *unary[] = {"defined", "undefined", "none", "string", "number", "integer",
                                  "float", "boolean", "true", "false", "mapping", "iterable",
                                  "sequence", "callable", "escaped", "odd", "even", "lower", "upper",
                                  "filter", "test"};
    int takes = 1;
    for (size_t i = 0; i < TL_ARRAY_LEN(unary); i++)
        if (!strcmp(name, unary[i])) takes = 0;
    if (a->n + a->nkw > takes)
        jctx_fail(c, TL_ERUNTIME, 0, 0, "test_%s() takes %d positional argument%s but %d were given",
                  name, takes + 1, takes ? "s" : "", a->n + a->nkw + 1);
    if (!strcmp(name, "defined")) return in.t != JV_UNDEF;
    if (!strcmp(name, "undefined")) return in.t == JV_UNDEF;
    if (!strcmp(name, "none")) return in.t == JV_NONE;
    if (!strcmp(name, "string")) return in.t == JV_STR;
    if (!strcmp(name, "number")) return in.t == JV_INT || in.t == JV_FLOAT || in.t == JV_BOOL;
    if (!strcmp(name, "integer")) return in.t == JV_INT;
    if (!strcmp(name, "float")) return in.t == JV_FLOAT;
    if (!strcmp(name, "boolean")) return in.t == JV_BOOL;
    if (!strcmp(name, "true")) return in.t == JV_BOOL && in.u.b;
    if (!strcmp(name, "false")) return in.t == JV_BOOL && !in.u.b;
    if (!strcmp(name, "mapping")) return in.t == JV_DICT;
    if (!strcmp(name, "iterable")) return in.t == JV_STR || in.t == JV_LIST || in.t == JV_DICT || in.t == JV_UNDEF;
    if (!strcmp(name, "sequence")) return in.t == JV_STR || in.t == JV_LIST || in.t == JV_DICT || in.t == JV_UNDEF;
    if (!strcmp(name, "callable")) return in.t == JV_MACRO || in.t == JV_FUNC || in.t == JV_UNDEF;
    if (!strcmp(name, "escaped")) return 0;
    if (!strcmp(name, "sameas")) {
        if (in.t != arg.t) return 0;
        if (in.t == JV_NONE || in.t == JV_UNDEF) return 1;
        if (in.t == JV_BOOL) return in.u.b == arg.u.b;
        if (in.t == JV_INT) return in.u.i == arg.u.i && in.u.i >= -5 && in.u.i <= 256;
        if (in.t == JV_STR) return in.u.s == arg.u.s;
        if (in.t == JV_LIST) return in.u.l == arg.u.l;
        if (in.t == JV_DICT || in.t == JV_NS) return in.u.d == arg.u.d;
        return 0;
    }
    if (!strcmp(name, "equalto") || !strcmp(name, "eq") || !strcmp(name, "==")) return jv_equal(in, arg);
    if (!strcmp(name, "ne") || !strcmp(name, "!=")) return !jv_equal(in, arg);
    if (!strcmp(name, "lt") || !strcmp(name, "lessthan") || !strcmp(name, "<")) return jv_cmp(c, in, arg, OP_LT) < 0;
    if (!strcmp(name, "le") || !strcmp(name, "<=")) return jv_cmp(c, in, arg, OP_LE) <= 0;
    if (!strcmp(name, "gt") || !strcmp(name, "greaterthan") || !strcmp(name, ">")) return jv_cmp(c, in, arg, OP_GT) > 0;
    if (!strcmp(name, "ge") || !strcmp(name, ">=")) return jv_cmp(c, in, arg, OP_GE) >= 0;
    if (!strcmp(name, "in")) return jv_contains(c, arg, in);
    if (!strcmp(name, "odd") || !strcmp(name, "even") || !strcmp(name, "divisibleby")) {
        if (in.t == JV_UNDEF) jctx_fail_undef(c, in);
        if (in.t != JV_INT && in.t != JV_BOOL && in.t != JV_FLOAT)
            ferr(c, "unsupported operand type(s) for %%: '%s' and '%s'", jv_type_name(in), "int");
        jv d = !strcmp(name, "divisibleby") ? arg : jv_int(2);
        jv m = jv_binop(c, OP_MOD, in, d);
        int zero = !jv_truthy(m);
        return !strcmp(name, "odd") ? !zero : zero;
    }
    if (!strcmp(name, "lower") || !strcmp(name, "upper")) {
        if (in.t != JV_STR) return 0;
        jv s = S(c, in);
        int cased = 0;
        for (size_t i = 0; i < s.u.s->len;) {
            int32_t cp;
            i = cp_next(s.u.s->s, s.u.s->len, i, &cp);
            if (!is_cased(cp)) continue;
            cased = 1;
            if (!strcmp(name, "lower") ? utf8proc_tolower(cp) != cp : utf8proc_toupper(cp) != cp) return 0;
        }
        return cased;
    }
    if (!strcmp(name, "filter") || !strcmp(name, "test")) return in.t == JV_STR;
    jctx_fail(c, TL_EUNSUP, 0, 0, "test '%s' is not supported", name);
}

/* ---- methods -------------------------------------------------------------------------------- */
static jv str_arg(jctx *c, const jargs *a, int i, const char *name) {
    jv v = jargs_get(c, a, i, name, NOARG);
    if (absent(v)) ferr(c, "%s() missing argument '%s'", "method", name);
    if (v.t == JV_UNDEF) jctx_fail_undef(c, v);
    if (v.t != JV_STR) ferr(c, "must be str, not %s%s", jv_type_name(v), "");
    return v;
}

static int affix_match(jctx *c, jv s, jv fix, int end) {
    if (fix.t == JV_LIST && fix.u.l->tuple) {
        for (size_t i = 0; i < fix.u.l->n; i++)
            if (affix_match(c, s, fix.u.l->v[i], end)) return 1;
        return 0;
    }
    if (fix.t == JV_UNDEF) jctx_fail_undef(c, fix);
    if (fix.t != JV_STR) ferr(c, "%s arg must be str or a tuple of str, not %s", end ? "endswith" : "startswith", jv_type_name(fix));
    size_t n = s.u.s->len, k = fix.u.s->len;
    if (k > n) return 0;
    return !memcmp(s.u.s->s + (end ? n - k : 0), fix.u.s->s, k);
}

jv jv_call_method(jctx *c, jv self, const char *name, const jargs *a) {
    if (self.t == JV_STR) {
        if (!strcmp(name, "startswith") || !strcmp(name, "endswith")) {
            jv fix = jargs_get(c, a, 0, "prefix", NOARG);
            if (absent(fix)) ferr(c, "%s() takes at least 1 argument%s", name, "");
            return jv_bool(affix_match(c, self, fix, name[0] == 'e'));
        }
        if (!strcmp(name, "strip")) return do_strip(c, self, jargs_get(c, a, 0, "chars", NOARG), 1, 1);
        if (!strcmp(name, "lstrip")) return do_strip(c, self, jargs_get(c, a, 0, "chars", NOARG), 1, 0);
        if (!strcmp(name, "rstrip")) return do_strip(c, self, jargs_get(c, a, 0, "chars", NOARG), 0, 1);
        if (!strcmp(name, "split") || !strcmp(name, "rsplit")) {
            jv sep = jargs_get(c, a, 0, "sep", jv_none());
            if (sep.t == JV_UNDEF) jctx_fail_undef(c, sep);
            if (sep.t != JV_NONE && sep.t != JV_STR) ferr(c, "must be str or None, not %s%s", jv_type_name(sep), "");
            int64_t mx = arg_int(c, jargs_get(c, a, 1, "maxsplit", NOARG), -1, "maxsplit");
            return do_split(c, self, sep, mx, name[0] == 'r');
        }
        if (!strcmp(name, "replace"))
            return do_replace(c, self, str_arg(c, a, 0, "old"), str_arg(c, a, 1, "new"),
                              arg_int(c, jargs_get(c, a, 2, "count", NOARG), -1, "count"));
        if (!strcmp(name, "upper")) return case_map(c, self, CASE_UPPER);
        if (!strcmp(name, "lower")) return case_map(c, self, CASE_LOWER);
        if (!strcmp(name, "title")) return case_map(c, self, CASE_TITLE_PY);
        if (!strcmp(name, "capitalize")) return case_map(c, self, CASE_CAPITALIZE);
        if (!strcmp(name, "find")) return jv_int(find_sub(self, str_arg(c, a, 0, "sub"), 0));
        if (!strcmp(name, "rfind")) return jv_int(find_sub(self, str_arg(c, a, 0, "sub"), 1));
        if (!strcmp(name, "index")) {
            int64_t k = find_sub(self, str_arg(c, a, 0, "sub"), 0);
            if (k < 0) ferr(c, "substring not found%s%s", "", "");
            return jv_int(k);
        }
        if (!strcmp(name, "count")) return jv_int(count_sub(self, str_arg(c, a, 0, "sub")));
        if (!strcmp(name, "splitlines")) return splitlines(c, self, arg_bool(jargs_get(c, a, 0, "keepends", NOARG), 0));
        if (!strcmp(name, "join")) {
            jv l = jv_iter_list(c, a->n ? a->v[0] : jv_undef(NULL));
            jbuf b;
            jbuf_init(&b, c, c->lim.max_output);
            for (size_t i = 0; i < l.u.l->n; i++) {
                if (l.u.l->v[i].t != JV_STR) ferr(c, "sequence item: expected str instance, %s found%s", jv_type_name(l.u.l->v[i]), "");
                if (i) jbuf_put(&b, self.u.s->s, self.u.s->len);
                jbuf_put(&b, l.u.l->v[i].u.s->s, l.u.l->v[i].u.s->len);
            }
            return jbuf_str(&b);
        }
        if (!strncmp(name, "is", 2)) {
            const char *p = self.u.s->s;
            size_t n = self.u.s->len;
            if (!n) return jv_bool(0);
            if (!strcmp(name, "islower") || !strcmp(name, "isupper")) {
                jargs none = {0};
                return jv_bool(jv_apply_test(c, name + 2, self, &none));
            }
            for (size_t i = 0; i < n;) {
                int32_t cp;
                i = cp_next(p, n, i, &cp);
                utf8proc_category_t cat = utf8proc_category(cp);
                int ok;
                if (!strcmp(name, "isdigit")) ok = cat == UTF8PROC_CATEGORY_ND || cat == UTF8PROC_CATEGORY_NO;
                else if (!strcmp(name, "isalpha")) ok = cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO;
                else if (!strcmp(name, "isalnum")) ok = is_alnum_cp(cp);
                else ok = py_isspace(cp);
                if (!ok) return jv_bool(0);
            }
            return jv_bool(1);
        }
        if (!strcmp(name, "zfill") || !strcmp(name, "ljust") || !strcmp(name, "rjust") || !strcmp(name, "center")) {
            if (!a->n && !a->nkw) ferr(c, "%s expected at least 1 argument, got 0%s", name, "");
            int64_t w = arg_int(c, jargs_get(c, a, 0, "width", NOARG), 0, name);
            if (w > 100000) jctx_fail(c, TL_ELIMIT, 0, 0, "%s width too large", name);
            int64_t len = (int64_t)ju_len(self.u.s->s, self.u.s->len);
            if (w <= len) return self;
            int64_t pad = w - len, left = 0;
            char fill = name[0] == 'z' ? '0' : ' ';
            if (name[0] == 'r' || name[0] == 'z') left = pad;
            else if (name[0] == 'c') left = pad / 2 + (pad & w & 1);
            jbuf b;
            jbuf_init(&b, c, 0);
            const char *p = self.u.s->s;
            size_t n = self.u.s->len;
            if (name[0] == 'z' && n && (p[0] == '-' || p[0] == '+')) { jbuf_putc(&b, p[0]); p++; n--; }
            for (int64_t i = 0; i < left; i++) jbuf_putc(&b, fill);
            jbuf_put(&b, p, n);
            for (int64_t i = 0; i < pad - left; i++) jbuf_putc(&b, fill);
            return jbuf_str(&b);
        }
    } else if (self.t == JV_DICT) {
        if (!strcmp(name, "items")) return jv_apply_filter(c, "items", self, &(jargs){0});
        if (!strcmp(name, "keys")) return jv_iter_list(c, self);
        if (!strcmp(name, "values")) {
            jv l = jv_list(c, self.u.d->n);
            for (size_t i = 0; i < self.u.d->n; i++) jv_list_push(c, l, self.u.d->v[i]);
            return l;
        }
        if (!strcmp(name, "get")) {
            jv k = jargs_get(c, a, 0, "key", NOARG);
            if (absent(k)) ferr(c, "get expected at least 1 argument%s%s", "", "");
            jv *v = jv_dict_getv(self, k);
            return v ? *v : jargs_get(c, a, 1, "default", jv_none());
        }
        if (!strcmp(name, "copy")) {
            jv d = jv_dict(c, self.u.d->n);
            for (size_t i = 0; i < self.u.d->n; i++) jv_dict_set(c, d, self.u.d->k[i], self.u.d->v[i]);
            return d;
        }
    } else if (self.t == JV_LIST) {
        if (!strcmp(name, "index") || !strcmp(name, "count")) {
            jv x = jargs_get(c, a, 0, "value", jv_undef(NULL));
            int64_t k = 0;
            for (size_t i = 0; i < self.u.l->n; i++)
                if (jv_equal(self.u.l->v[i], x)) {
                    if (name[0] == 'i') return jv_int((int64_t)i);
                    k++;
                }
            if (name[0] == 'i') ferr(c, "value is not in list%s%s", "", "");
            return jv_int(k);
        }
        if (!strcmp(name, "copy")) return jv_apply_filter(c, "list", self, &(jargs){0});
    }
    jctx_fail(c, TL_EUNSUP, 0, 0, "'%s' object has no supported method '%s'", jv_type_name(self), name);
}
