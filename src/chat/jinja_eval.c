/* jinja_eval.c — renders a compiled template: scopes as jinja2 has them (a for-loop iteration
 * and a macro call each get their own frame, so `set` inside them does not leak; `if` does not
 * open one), Python operator semantics, the loop object, macros, and the globals transformers
 * adds (raise_exception, strftime_now, namespace, dict). Filters, tests and methods are in
 * jinja_filters.c. Every failure ends the render through jctx_fail with line and column. */
#define _GNU_SOURCE
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>

#include "chat/jinja_int.h"

/* ---- context -------------------------------------------------------------------------------- */

_Noreturn void jctx_fail(jctx *c, int code, int line, int col, const char *fmt, ...) {
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!line) { line = c->line; col = c->col; }
    if (code == TL_ERUNTIME && c->raised)
        tl_err_set(c->err, code, "%s (raised at line %d, column %d)", msg, line, col);
    else if (line)
        tl_err_set(c->err, code, "template error at line %d, column %d: %s", line, col, msg);
    else
        tl_err_set(c->err, code, "template error: %s", msg);
    longjmp(c->jb, 1);
}

void *jctx_alloc(jctx *c, size_t n) {
    void *p = jarena_alloc(&c->arena, n);
    if (!p) jctx_fail(c, TL_ELIMIT, 0, 0, "render would use more than %zu bytes of memory",
                      c->arena.cap);
    return p;
}

void jlimits_default(jlimits *l) {
    l->max_depth = 64;
    l->max_iterations = 1000000;
    l->max_output = 16u << 20;
    l->max_memory = 256u << 20;
    l->now = 0;
}

void jctx_tick(jctx *c, int64_t n) {
    c->iters += n;
    if (c->iters > c->lim.max_iterations)
        jctx_fail(c, TL_ELIMIT, 0, 0, "more than %lld loop iterations", (long long)c->lim.max_iterations);
}

/* ---- frames --------------------------------------------------------------------------------- */
static jframe *frame_new(jctx *c, jframe *parent) {
    jframe *f = jctx_alloc(c, sizeof *f);
    f->parent = parent;
    f->vars = jv_dict(c, 8);
    return f;
}

static jv *frame_lookup(jframe *f, const char *name) {
    size_t n = strlen(name);
    for (; f; f = f->parent) {
        jv *v = jv_dict_get(f->vars, name, n);
        if (v) return v;
    }
    return NULL;
}

static void frame_set(jctx *c, jframe *f, const char *name, jv v) {
    jv_dict_set(c, f->vars, jv_cstr(c, name), v);
}

jv jv_undef_fmt(jctx *c, const char *fmt, ...) {
    char tmp[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    char *s = jctx_alloc(c, strlen(tmp) + 1);
    strcpy(s, tmp);
    return jv_undef(s);
}

_Noreturn void jctx_fail_undef(jctx *c, jv u) {
    jctx_fail(c, TL_ERUNTIME, 0, 0, "%s", u.u.undef ? u.u.undef : "value is undefined");
}

/* ---- attribute / item access ---------------------------------------------------------------- */
static jv make_method(jctx *c, jv self, const char *name) {
    jfunc *fn = jctx_alloc(c, sizeof *fn);
    fn->kind = FN_METHOD;
    fn->self = self;
    fn->name = name;
    jv v = {.t = JV_FUNC};
    v.u.fn = fn;
    return v;
}

static jv loop_attr(jctx *c, jloop *l, const char *name) {
    int64_t i = (int64_t)l->idx, n = (int64_t)l->items.u.l->n;
    if (!strcmp(name, "index")) return jv_int(i + 1);
    if (!strcmp(name, "index0")) return jv_int(i);
    if (!strcmp(name, "revindex")) return jv_int(n - i);
    if (!strcmp(name, "revindex0")) return jv_int(n - i - 1);
    if (!strcmp(name, "first")) return jv_bool(i == 0);
    if (!strcmp(name, "last")) return jv_bool(i == n - 1);
    if (!strcmp(name, "length")) return jv_int(n);
    if (!strcmp(name, "depth")) return jv_int(1);
    if (!strcmp(name, "depth0")) return jv_int(0);
    if (!strcmp(name, "previtem"))
        return i > 0 ? l->items.u.l->v[i - 1] : jv_undef("there is no previous item");
    if (!strcmp(name, "nextitem"))
        return i + 1 < n ? l->items.u.l->v[i + 1] : jv_undef("there is no next item");
    if (!strcmp(name, "cycle") || !strcmp(name, "changed")) {
        jv self = {.t = JV_LOOP};
        self.u.loop = l;
        return make_method(c, self, name);
    }
    return jv_undef_fmt(c, "'LoopContext' object has no attribute '%s'", name);
}

static int is_method_of(jv v, const char *name) {
    static const char *str_m[] = {"startswith", "endswith", "strip", "lstrip", "rstrip", "split",
                                  "rsplit", "replace", "upper", "lower", "title", "capitalize",
                                  "find", "rfind", "count", "join", "splitlines", "isdigit",
                                  "isalpha", "isalnum", "isspace", "islower", "isupper", "index",
                                  "zfill", "center", "ljust", "rjust"};
    static const char *dict_m[] = {"items", "keys", "values", "get", "copy"};
    static const char *list_m[] = {"index", "count", "copy"};
    const char **m = NULL;
    size_t n = 0;
    if (v.t == JV_STR) { m = str_m; n = TL_ARRAY_LEN(str_m); }
    else if (v.t == JV_DICT) { m = dict_m; n = TL_ARRAY_LEN(dict_m); }
    else if (v.t == JV_LIST) { m = list_m; n = TL_ARRAY_LEN(list_m); }
    for (size_t i = 0; i < n; i++)
        if (!strcmp(name, m[i])) return 1;
    return 0;
}

jv jv_getattr(jctx *c, jv obj, const char *name) {
    switch (obj.t) {
    case JV_UNDEF: jctx_fail_undef(c, obj);
    case JV_DICT: {
        if (is_method_of(obj, name)) return make_method(c, obj, name);
        jv *v = jv_dict_get(obj, name, strlen(name));
        return v ? *v : jv_undef_fmt(c, "'dict object' has no attribute '%s'", name);
    }
    case JV_NS: {
        jv *v = jv_dict_get(obj, name, strlen(name));
        return v ? *v : jv_undef_fmt(c, "'Namespace' object has no attribute '%s'", name);
    }
    case JV_LOOP: return loop_attr(c, obj.u.loop, name);
    case JV_STR: case JV_LIST:
        if (is_method_of(obj, name)) return make_method(c, obj, name);
        return jv_undef_fmt(c, "'%s object' has no attribute '%s'", jv_type_name(obj), name);
    case JV_NONE: return jv_undef_fmt(c, "'None' has no attribute '%s'", name);
    default: return jv_undef_fmt(c, "'%s object' has no attribute '%s'", jv_type_name(obj), name);
    }
}

static int as_index(jv k, int64_t *out) {
    if (k.t == JV_INT) { *out = k.u.i; return 1; }
    if (k.t == JV_BOOL) { *out = k.u.b; return 1; }
    return 0;
}

jv jv_getitem(jctx *c, jv obj, jv key) {
    int64_t i;
    switch (obj.t) {
    case JV_UNDEF: jctx_fail_undef(c, obj);
    case JV_DICT: case JV_NS: {
        jv *v = jv_dict_getv(obj, key);
        if (v) return *v;
        if (key.t == JV_STR) {
            if (obj.t == JV_DICT && is_method_of(obj, key.u.s->s)) return make_method(c, obj, key.u.s->s);
            return jv_undef_fmt(c, "'dict object' has no attribute '%.200s'", key.u.s->s);
        }
        return jv_undef("'dict object' has no such item");
    }
    case JV_LIST:
        if (!as_index(key, &i)) {
            if (key.t == JV_STR) return jv_getattr(c, obj, key.u.s->s);
            return jv_undef("list indices must be integers");
        }
        if (i < 0) i += (int64_t)obj.u.l->n;
        if (i < 0 || i >= (int64_t)obj.u.l->n)
            return jv_undef_fmt(c, "'list object' has no element %lld", (long long)(key.t == JV_INT ? key.u.i : i));
        return obj.u.l->v[i];
    case JV_STR: {
        if (!as_index(key, &i)) {
            if (key.t == JV_STR) return jv_getattr(c, obj, key.u.s->s);
            return jv_undef("string indices must be integers");
        }
        int64_t n = (int64_t)ju_len(obj.u.s->s, obj.u.s->len);
        if (i < 0) i += n;
        if (i < 0 || i >= n) return jv_undef("string index out of range");
        size_t a = ju_offset(obj.u.s->s, obj.u.s->len, (size_t)i);
        size_t b = ju_offset(obj.u.s->s, obj.u.s->len, (size_t)i + 1);
        return jv_str(c, obj.u.s->s + a, b - a);
    }
    case JV_LOOP:
        if (key.t == JV_STR) return loop_attr(c, obj.u.loop, key.u.s->s);
        return jv_undef("no such item");
    case JV_NONE: return jv_undef("'None' has no such item");
    default: return jv_undef_fmt(c, "'%s object' has no such item", jv_type_name(obj));
    }
}

/* Python slice semantics over n elements. */
static size_t slice_indices(jctx *c, int64_t n, jv vs, jv ve, jv vstep, int64_t **out) {
    int64_t step = 1, start, stop;
    if (vs.t == JV_UNDEF || ve.t == JV_UNDEF || vstep.t == JV_UNDEF)
        jctx_fail(c, TL_ERUNTIME, 0, 0, "slice indices must be integers or None or have an __index__ method");
    if (vstep.t != JV_NONE) {
        if (!as_index(vstep, &step)) jctx_fail(c, TL_ERUNTIME, 0, 0, "slice indices must be integers or None");
        if (step == 0) jctx_fail(c, TL_ERUNTIME, 0, 0, "slice step cannot be zero");
    }
    int64_t lo = step < 0 ? -1 : 0, hi = step < 0 ? n - 1 : n;
    if (vs.t == JV_NONE) start = step < 0 ? hi : lo;
    else {
        if (!as_index(vs, &start)) jctx_fail(c, TL_ERUNTIME, 0, 0, "slice indices must be integers or None");
        if (start < 0) { start += n; if (start < lo) start = lo; }
        else if (start > hi) start = hi;
    }
    if (ve.t == JV_NONE) stop = step < 0 ? lo : hi;
    else {
        if (!as_index(ve, &stop)) jctx_fail(c, TL_ERUNTIME, 0, 0, "slice indices must be integers or None");
        if (stop < 0) { stop += n; if (stop < lo) stop = lo; }
        else if (stop > hi) stop = hi;
    }
    size_t cnt = 0;
    int64_t *idx = jctx_alloc(c, (size_t)(n > 0 ? n : 1) * sizeof *idx);
    if (step > 0) for (int64_t i = start; i < stop; i += step) idx[cnt++] = i;
    else for (int64_t i = start; i > stop; i += step) idx[cnt++] = i;
    *out = idx;
    return cnt;
}

static jv do_slice(jctx *c, jv obj, jv s, jv e, jv st) {
    int64_t *idx;
    if (obj.t == JV_UNDEF) jctx_fail_undef(c, obj);
    if (obj.t == JV_LIST) {
        size_t n = slice_indices(c, (int64_t)obj.u.l->n, s, e, st, &idx);
        jv l = jv_list(c, n);
        for (size_t i = 0; i < n; i++) jv_list_push(c, l, obj.u.l->v[idx[i]]);
        l.u.l->tuple = obj.u.l->tuple;
        return l;
    }
    if (obj.t == JV_STR) {
        const char *p = obj.u.s->s;
        size_t len = obj.u.s->len, ncp = ju_len(p, len);
        size_t *off = jctx_alloc(c, (ncp + 1) * sizeof *off);
        size_t k = 0;
        for (size_t i = 0; i < len; i++)
            if (((unsigned char)p[i] & 0xC0) != 0x80) off[k++] = i;
        off[ncp] = len;
        size_t n = slice_indices(c, (int64_t)ncp, s, e, st, &idx);
        jbuf b;
        jbuf_init(&b, c, 0);
        for (size_t i = 0; i < n; i++) jbuf_put(&b, p + off[idx[i]], off[idx[i] + 1] - off[idx[i]]);
        return jbuf_str(&b);
    }
    jctx_fail(c, TL_ERUNTIME, 0, 0, "'%s' object is not subscriptable", jv_type_name(obj));
}

/* ---- iteration ------------------------------------------------------------------------------ */
jv jv_iter_list(jctx *c, jv v) {
    switch (v.t) {
    case JV_LIST: return v;
    case JV_UNDEF: return jv_list(c, 0);
    case JV_DICT: {
        jv l = jv_list(c, v.u.d->n);
        for (size_t i = 0; i < v.u.d->n; i++) jv_list_push(c, l, v.u.d->k[i]);
        return l;
    }
    case JV_STR: {
        const char *p = v.u.s->s;
        size_t n = v.u.s->len;
        jv l = jv_list(c, n);
        for (size_t i = 0; i < n;) {
            size_t j = i + 1;
            while (j < n && ((unsigned char)p[j] & 0xC0) == 0x80) j++;
            jv_list_push(c, l, jv_str(c, p + i, j - i));
            i = j;
        }
        return l;
    }
    default:
        jctx_fail(c, TL_ERUNTIME, 0, 0, "'%s' object is not iterable", jv_type_name(v));
    }
}

/* ---- arithmetic ----------------------------------------------------------------------------- */
static int is_intlike(jv v) { return v.t == JV_INT || v.t == JV_BOOL; }
static int64_t ival(jv v) { return v.t == JV_INT ? v.u.i : v.u.b; }
static int is_numv(jv v) { return is_intlike(v) || v.t == JV_FLOAT; }
static double fval(jv v) { return v.t == JV_FLOAT ? v.u.f : (double)ival(v); }

static const char *op_sym(int op) {
    static const char *s[] = {"?", "+", "-", "*", "/", "//", "%", "**", "==", "!=", "<", ">",
                              "<=", ">=", "in", "not in"};
    return (op > 0 && op < (int)TL_ARRAY_LEN(s)) ? s[op] : "?";
}

static _Noreturn void type_error(jctx *c, int op, jv a, jv b) {
    if (a.t == JV_UNDEF) jctx_fail_undef(c, a);
    if (b.t == JV_UNDEF) jctx_fail_undef(c, b);
    if (op >= OP_LT && op <= OP_GE)
        jctx_fail(c, TL_ERUNTIME, 0, 0, "'%s' not supported between instances of '%s' and '%s'",
                  op_sym(op), jv_type_name(a), jv_type_name(b));
    jctx_fail(c, TL_ERUNTIME, 0, 0, "unsupported operand type(s) for %s: '%s' and '%s'",
              op_sym(op), jv_type_name(a), jv_type_name(b));
}

static jv repeat(jctx *c, jv seq, int64_t n) {
    if (n < 0) n = 0;
    if (seq.t == JV_STR) {
        size_t total;
        if (!tl_mul_ok(seq.u.s->len, (size_t)n, &total) || total > c->lim.max_output)
            jctx_fail(c, TL_ELIMIT, 0, 0, "string repetition would pass the output limit");
        jbuf b;
        jbuf_init(&b, c, 0);
        for (int64_t i = 0; i < n; i++) jbuf_put(&b, seq.u.s->s, seq.u.s->len);
        return jbuf_str(&b);
    }
    size_t total;
    if (!tl_mul_ok(seq.u.l->n, (size_t)n, &total) || (int64_t)total > c->lim.max_iterations)
        jctx_fail(c, TL_ELIMIT, 0, 0, "list repetition too large");
    jv l = jv_list(c, total);
    for (int64_t i = 0; i < n; i++)
        for (size_t j = 0; j < seq.u.l->n; j++) jv_list_push(c, l, seq.u.l->v[j]);
    l.u.l->tuple = seq.u.l->tuple;
    return l;
}

/* Three-way compare as Python's < (fails on incomparable types). */
int jv_cmp(jctx *c, jv a, jv b, int op) {
    if (is_numv(a) && is_numv(b)) {
        if (is_intlike(a) && is_intlike(b)) return (ival(a) > ival(b)) - (ival(a) < ival(b));
        double x = fval(a), y = fval(b);
        return (x > y) - (x < y);
    }
    if (a.t == JV_STR && b.t == JV_STR) {
        size_t n = TL_MIN(a.u.s->len, b.u.s->len);
        int r = memcmp(a.u.s->s, b.u.s->s, n);
        if (r) return r < 0 ? -1 : 1;
        return (a.u.s->len > b.u.s->len) - (a.u.s->len < b.u.s->len);
    }
    if (a.t == JV_LIST && b.t == JV_LIST) {
        size_t n = TL_MIN(a.u.l->n, b.u.l->n);
        for (size_t i = 0; i < n; i++) {
            if (jv_equal(a.u.l->v[i], b.u.l->v[i])) continue;
            return jv_cmp(c, a.u.l->v[i], b.u.l->v[i], op);
        }
        return (a.u.l->n > b.u.l->n) - (a.u.l->n < b.u.l->n);
    }
    type_error(c, op ? op : OP_LT, a, b);
}

int jv_contains(jctx *c, jv hay, jv needle) {
    switch (hay.t) {
    case JV_STR:
        if (needle.t != JV_STR) {
            if (needle.t == JV_UNDEF) jctx_fail_undef(c, needle);
            jctx_fail(c, TL_ERUNTIME, 0, 0, "'in <string>' requires string as left operand, not %s",
                      jv_type_name(needle));
        }
        if (!needle.u.s->len) return 1;
        return memmem(hay.u.s->s, hay.u.s->len, needle.u.s->s, needle.u.s->len) != NULL;
    case JV_LIST:
        for (size_t i = 0; i < hay.u.l->n; i++)
            if (jv_equal(hay.u.l->v[i], needle)) return 1;
        return 0;
    case JV_DICT: return jv_dict_getv(hay, needle) != NULL;
    case JV_UNDEF: return 0;
    default:
        jctx_fail(c, TL_ERUNTIME, 0, 0, "argument of type '%s' is not iterable", jv_type_name(hay));
    }
}

static jv int_result(jctx *c, int ok, const int64_t *r) {
    if (!ok) jctx_fail(c, TL_ELIMIT, 0, 0, "integer overflow");
    return jv_int(*r);
}

jv jv_binop(jctx *c, int op, jv a, jv b) {
    int64_t r = 0;
    switch (op) {
    case OP_EQ: return jv_bool(jv_equal(a, b));
    case OP_NE: return jv_bool(!jv_equal(a, b));
    case OP_LT: return jv_bool(jv_cmp(c, a, b, op) < 0);
    case OP_GT: return jv_bool(jv_cmp(c, a, b, op) > 0);
    case OP_LE: return jv_bool(jv_cmp(c, a, b, op) <= 0);
    case OP_GE: return jv_bool(jv_cmp(c, a, b, op) >= 0);
    case OP_IN: return jv_bool(jv_contains(c, b, a));
    case OP_NOTIN: return jv_bool(!jv_contains(c, b, a));
    }
    if (is_numv(a) && is_numv(b)) {
        int ints = is_intlike(a) && is_intlike(b);
        int64_t x = ints ? ival(a) : 0, y = ints ? ival(b) : 0;
        double fx = fval(a), fy = fval(b);
        switch (op) {
        case OP_ADD:
            if (!ints) return jv_float(fx + fy);
            return int_result(c, !__builtin_add_overflow(x, y, &r), &r);
        case OP_SUB:
            if (!ints) return jv_float(fx - fy);
            return int_result(c, !__builtin_sub_overflow(x, y, &r), &r);
        case OP_MUL:
            if (!ints) return jv_float(fx * fy);
            return int_result(c, !__builtin_mul_overflow(x, y, &r), &r);
        case OP_DIV:
            if (fy == 0) jctx_fail(c, TL_ERUNTIME, 0, 0, "division by zero");
            return jv_float(fx / fy);
        case OP_FDIV:
            if (fy == 0) jctx_fail(c, TL_ERUNTIME, 0, 0, "integer division or modulo by zero");
            if (ints) {
                if (x == INT64_MIN && y == -1) jctx_fail(c, TL_ELIMIT, 0, 0, "integer overflow");
                int64_t q = x / y;
                if ((x % y != 0) && ((x < 0) != (y < 0))) q--;
                return jv_int(q);
            }
            return jv_float(floor(fx / fy));
        case OP_MOD:
            if (fy == 0) jctx_fail(c, TL_ERUNTIME, 0, 0, "integer division or modulo by zero");
            if (ints) {
                if (y == -1) return jv_int(0);
                int64_t m = x % y;
                if (m != 0 && ((m < 0) != (y < 0))) m += y;
                return jv_int(m);
            } else {
                double m = fmod(fx, fy);
                if (m != 0 && ((m < 0) != (fy < 0))) m += fy;
                if (m == 0) m = copysign(0.0, fy); /* Python: the sign of the divisor */
                return jv_float(m);
            }
        case OP_POW:
            if (ints && y >= 0) {
                int64_t acc = 1;
                for (int64_t i = 0; i < y; i++) {
                    if (__builtin_mul_overflow(acc, x, &acc)) jctx_fail(c, TL_ELIMIT, 0, 0, "integer overflow");
                    if (acc == 0 || acc == 1) break;
                    if (i > 64 && (acc == -1)) { acc = (y % 2) ? -1 : 1; break; }
                }
                return jv_int(acc);
            }
            if (fx == 0 && fy < 0) jctx_fail(c, TL_ERUNTIME, 0, 0, "0.0 cannot be raised to a negative power");
            double pr = pow(fx, fy);
            if (isinf(pr) && isfinite(fx) && isfinite(fy)) jctx_fail(c, TL_ERUNTIME, 0, 0, "numerical result out of range");
            return jv_float(pr);
        }
    }
    if (op == OP_ADD && a.t == JV_STR && b.t == JV_STR) {
        jbuf bb;
        jbuf_init(&bb, c, c->lim.max_output);
        jbuf_put(&bb, a.u.s->s, a.u.s->len);
        jbuf_put(&bb, b.u.s->s, b.u.s->len);
        return jbuf_str(&bb);
    }
    if (op == OP_ADD && a.t == JV_LIST && b.t == JV_LIST && a.u.l->tuple == b.u.l->tuple) {
        jv l = jv_list(c, a.u.l->n + b.u.l->n);
        for (size_t i = 0; i < a.u.l->n; i++) jv_list_push(c, l, a.u.l->v[i]);
        for (size_t i = 0; i < b.u.l->n; i++) jv_list_push(c, l, b.u.l->v[i]);
        l.u.l->tuple = a.u.l->tuple && b.u.l->tuple;
        return l;
    }
    if (op == OP_MUL && (a.t == JV_STR || a.t == JV_LIST) && is_intlike(b)) return repeat(c, a, ival(b));
    if (op == OP_MUL && (b.t == JV_STR || b.t == JV_LIST) && is_intlike(a)) return repeat(c, b, ival(a));
    type_error(c, op, a, b);
}

/* ---- calls ---------------------------------------------------------------------------------- */
static jv eval(jctx *c, jframe *f, const jnode *n);
static void exec_body(jctx *c, jframe *f, const jnodes *body, jbuf *out);

/* Errors from here on name n's line and column (evaluating its operands moved them on). */
static void at_node(jctx *c, const jnode *n) {
    c->line = n->line;
    c->col = n->col;
}

void jargs_eval(jctx *c, jframe *f, const jnode *n, jargs *a) {
    a->n = n->args.n;
    a->nkw = n->kwargs.n;
    a->v = a->n ? jctx_alloc(c, (size_t)a->n * sizeof(jv)) : NULL;
    a->kv = a->nkw ? jctx_alloc(c, (size_t)a->nkw * sizeof(jv)) : NULL;
    a->kw = n->kwnames;
    for (int i = 0; i < a->n; i++) a->v[i] = eval(c, f, n->args.v[i]);
    for (int i = 0; i < a->nkw; i++) a->kv[i] = eval(c, f, n->kwargs.v[i]);
}

/* n's arguments into *a, then back at n for what uses them. */
static void args_at(jctx *c, jframe *f, const jnode *n, jargs *a) {
    jargs_eval(c, f, n, a);
    at_node(c, n);
}

/* Positional-or-keyword argument i named name; def when absent. */
jv jargs_get(jctx *c, const jargs *a, int i, const char *name, jv def) {
    if (i >= 0 && i < a->n) return a->v[i];
    for (int k = 0; k < a->nkw; k++)
        if (!strcmp(a->kw[k], name)) return a->kv[k];
    return def;
}

static jv call_macro(jctx *c, jmacro *m, const jargs *a) {
    const jnode *def = m->def;
    if (a->n > def->ntargets)
        jctx_fail(c, TL_ERUNTIME, 0, 0, "macro '%s' takes not more than %d argument(s)", def->name, def->ntargets);
    for (int k = 0; k < a->nkw; k++) {
        int found = 0;
        for (int i = 0; i < def->ntargets; i++) found |= !strcmp(a->kw[k], def->targets[i]);
        if (!found) jctx_fail(c, TL_ERUNTIME, 0, 0, "macro '%s' takes no keyword argument '%s'", def->name, a->kw[k]);
    }
    if (++c->depth > c->lim.max_depth)
        jctx_fail(c, TL_ELIMIT, 0, 0, "macro calls nested deeper than %d (unbounded recursion?)", c->lim.max_depth);
    jframe *fr = frame_new(c, m->closure);
    for (int i = 0; i < def->ntargets; i++) {
        jv v = jargs_get(c, a, i, def->targets[i], (jv){.t = JV_UNDEF + 100});
        if ((int)v.t == JV_UNDEF + 100) {
            if (def->defaults.v[i]) v = eval(c, fr, def->defaults.v[i]);
            else v = jv_undef_fmt(c, "parameter '%s' was not provided", def->targets[i]);
        }
        frame_set(c, fr, def->targets[i], v);
    }
    jbuf out;
    jbuf_init(&out, c, c->lim.max_output);
    int saved_ctl = c->ctl;
    exec_body(c, fr, &def->body, &out);
    c->ctl = saved_ctl;
    c->depth--;
    return jbuf_str(&out);
}

static jv call_global(jctx *c, jfunc *fn, const jargs *a) {
    const char *name = fn->name;
    if (!strcmp(name, "raise_exception")) {
        jv msg = a->n ? jv_to_str(c, a->v[0]) : jv_cstr(c, "");
        c->raised = 1;
        jctx_fail(c, TL_ERUNTIME, 0, 0, "%s", msg.u.s->s);
    }
    if (!strcmp(name, "strftime_now")) {
        jv fmt = jargs_get(c, a, 0, "format", jv_undef(NULL));
        if (fmt.t != JV_STR) jctx_fail(c, TL_ERUNTIME, 0, 0, "strftime_now() needs a format string");
        if (fmt.u.s->len > 200) jctx_fail(c, TL_ELIMIT, 0, 0, "strftime_now() format too long");
        time_t t = c->lim.now ? (time_t)c->lim.now : time(NULL);
        struct tm tm;
        if (c->lim.now) gmtime_r(&t, &tm);
        else localtime_r(&t, &tm);
        char buf[1024];
        size_t n = fmt.u.s->len ? strftime(buf, sizeof buf, fmt.u.s->s, &tm) : 0;
        return jv_str(c, buf, n);
    }
    if (!strcmp(name, "namespace") || !strcmp(name, "dict")) {
        jv d = jv_dict(c, (size_t)a->nkw + 4);
        for (int i = 0; i < a->n; i++) {
            if (a->v[i].t != JV_DICT) jctx_fail(c, TL_ERUNTIME, 0, 0, "%s() takes a dict or keyword arguments", name);
            for (size_t k = 0; k < a->v[i].u.d->n; k++) jv_dict_set(c, d, a->v[i].u.d->k[k], a->v[i].u.d->v[k]);
        }
        for (int k = 0; k < a->nkw; k++) jv_dict_set(c, d, jv_cstr(c, a->kw[k]), a->kv[k]);
        if (!strcmp(name, "namespace")) d.t = JV_NS;
        return d;
    }
    if (!strcmp(name, "range")) {
        int64_t s = 0, e = 0, st = 1, x;
        for (int i = 0; i < a->n; i++)
            if (!as_index(a->v[i], &x)) jctx_fail(c, TL_ERUNTIME, 0, 0, "range() arguments must be integers");
        if (a->n == 1) e = ival(a->v[0]);
        else if (a->n >= 2) { s = ival(a->v[0]); e = ival(a->v[1]); if (a->n >= 3) st = ival(a->v[2]); }
        else jctx_fail(c, TL_ERUNTIME, 0, 0, "range expected at least 1 argument");
        if (st == 0) jctx_fail(c, TL_ERUNTIME, 0, 0, "range() arg 3 must not be zero");
        double cnt = st > 0 ? ceil(((double)e - (double)s) / (double)st) : ceil(((double)s - (double)e) / -(double)st);
        if (cnt < 0) cnt = 0;
        if (cnt > (double)c->lim.max_iterations) jctx_fail(c, TL_ELIMIT, 0, 0, "range() too large (%.0f items)", cnt);
        jv l = jv_list(c, (size_t)cnt);
        for (int64_t i = 0; i < (int64_t)cnt; i++) jv_list_push(c, l, jv_int(s + i * st));
        return l;
    }
    jctx_fail(c, TL_ERUNTIME, 0, 0, "'%s' is not callable here", name);
}

jv jv_call(jctx *c, jv callee, const jargs *a) {
    switch (callee.t) {
    case JV_MACRO: return call_macro(c, callee.u.m, a);
    case JV_FUNC:
        if (callee.u.fn->kind == FN_GLOBAL) return call_global(c, callee.u.fn, a);
        if (callee.u.fn->self.t == JV_LOOP) {
            jloop *l = callee.u.fn->self.u.loop;
            if (!strcmp(callee.u.fn->name, "cycle")) {
                if (!a->n) jctx_fail(c, TL_ERUNTIME, 0, 0, "no items for cycling given");
                return a->v[l->idx % (size_t)a->n];
            }
            /* changed(*args): true when the args differ from the last call's */
            jv cur = jv_list(c, (size_t)a->n);
            for (int i = 0; i < a->n; i++) jv_list_push(c, cur, a->v[i]);
            int changed = !l->has_last_changed || !jv_equal(cur, l->last_changed);
            l->last_changed = cur;
            l->has_last_changed = 1;
            return jv_bool(changed);
        }
        return jv_call_method(c, callee.u.fn->self, callee.u.fn->name, a);
    case JV_UNDEF: jctx_fail_undef(c, callee);
    default: jctx_fail(c, TL_ERUNTIME, 0, 0, "'%s' object is not callable", jv_type_name(callee));
    }
}

/* ---- expressions ---------------------------------------------------------------------------- */
static jv eval(jctx *c, jframe *f, const jnode *n) {
    at_node(c, n);
    switch (n->kind) {
    case E_CONST: return n->val;
    case E_NAME: {
        jv *v = frame_lookup(f, n->name);
        return v ? *v : jv_undef_fmt(c, "'%s' is undefined", n->name);
    }
    case E_ATTR: {
        jv o = eval(c, f, n->a);
        at_node(c, n);
        return jv_getattr(c, o, n->name);
    }
    case E_ITEM: {
        jv o = eval(c, f, n->a);
        if (n->b->kind == E_SLICE) {
            jv s = n->b->a ? eval(c, f, n->b->a) : jv_none();
            jv e = n->b->b ? eval(c, f, n->b->b) : jv_none();
            jv st = n->b->c ? eval(c, f, n->b->c) : jv_none();
            at_node(c, n);
            return do_slice(c, o, s, e, st);
        }
        jv k = eval(c, f, n->b);
        at_node(c, n);
        return jv_getitem(c, o, k);
    }
    case E_CALL: {
        jargs a;
        if (n->a->kind == E_ATTR) {
            jv o = eval(c, f, n->a->a);
            args_at(c, f, n, &a);
            if (is_method_of(o, n->a->name)) return jv_call_method(c, o, n->a->name, &a);
            return jv_call(c, jv_getattr(c, o, n->a->name), &a);
        }
        jv callee = eval(c, f, n->a);
        args_at(c, f, n, &a);
        return jv_call(c, callee, &a);
    }
    case E_FILTER: {
        jv in = eval(c, f, n->a);
        jargs a;
        args_at(c, f, n, &a);
        return jv_apply_filter(c, n->name, in, &a);
    }
    case E_TEST: {
        /* `x is defined` must not fail on an undefined x */
        jv in = eval(c, f, n->a);
        jargs a;
        args_at(c, f, n, &a);
        int r = jv_apply_test(c, n->name, in, &a);
        return jv_bool(n->op ? !r : r);
    }
    case E_NOT: return jv_bool(!jv_truthy(eval(c, f, n->a)));
    case E_NEG: case E_POS: {
        jv v = eval(c, f, n->a);
        at_node(c, n);
        if (v.t == JV_UNDEF) jctx_fail_undef(c, v);
        if (is_intlike(v)) {
            if (n->kind == E_POS) return jv_int(ival(v));
            if (ival(v) == INT64_MIN) jctx_fail(c, TL_ELIMIT, 0, 0, "integer overflow");
            return jv_int(-ival(v));
        }
        if (v.t == JV_FLOAT) return jv_float(n->kind == E_NEG ? -v.u.f : v.u.f);
        jctx_fail(c, TL_ERUNTIME, 0, 0, "bad operand type for unary %s: '%s'", n->kind == E_NEG ? "-" : "+", jv_type_name(v));
    }
    case E_BIN: {
        jv a = eval(c, f, n->a);
        jv b = eval(c, f, n->b);
        at_node(c, n);
        return jv_binop(c, n->op, a, b);
    }
    case E_AND: {
        jv a = eval(c, f, n->a);
        return jv_truthy(a) ? eval(c, f, n->b) : a;
    }
    case E_OR: {
        jv a = eval(c, f, n->a);
        return jv_truthy(a) ? a : eval(c, f, n->b);
    }
    case E_COND:
        if (jv_truthy(eval(c, f, n->b))) return eval(c, f, n->a);
        return n->c ? eval(c, f, n->c) : jv_undef("the inline if had no else");
    case E_CONCAT: {
        jv a = eval(c, f, n->a), b = eval(c, f, n->b);
        jbuf bb;
        jbuf_init(&bb, c, c->lim.max_output);
        jv_write_str(&bb, a);
        jv_write_str(&bb, b);
        return jbuf_str(&bb);
    }
    case E_LIST: case E_TUPLE: {
        jv l = jv_list(c, (size_t)n->args.n);
        for (int i = 0; i < n->args.n; i++) jv_list_push(c, l, eval(c, f, n->args.v[i]));
        l.u.l->tuple = n->kind == E_TUPLE;
        return l;
    }
    case E_DICT: {
        jv d = jv_dict(c, (size_t)n->args.n / 2);
        for (int i = 0; i + 1 < n->args.n; i += 2) {
            jv k = eval(c, f, n->args.v[i]);
            if (k.t == JV_LIST && !k.u.l->tuple) jctx_fail(c, TL_ERUNTIME, 0, 0, "unhashable type: 'list'");
            if (k.t == JV_DICT) jctx_fail(c, TL_ERUNTIME, 0, 0, "unhashable type: 'dict'");
            jv_dict_set(c, d, k, eval(c, f, n->args.v[i + 1]));
        }
        return d;
    }
    case E_SLICE: jctx_fail(c, TL_EFORMAT, n->line, n->col, "slice outside []");
    default: jctx_fail(c, TL_EFORMAT, n->line, n->col, "statement used as an expression");
    }
}

/* ---- statements ----------------------------------------------------------------------------- */
static void assign_targets(jctx *c, jframe *f, const jnode *n, jv v) {
    if (n->ntargets == 1) {
        frame_set(c, f, n->targets[0], v);
        return;
    }
    jv items = v.t == JV_STR ? jv_iter_list(c, v) : v;
    if (items.t != JV_LIST) jctx_fail(c, TL_ERUNTIME, n->line, n->col, "cannot unpack non-iterable %s object", jv_type_name(v));
    if ((int)items.u.l->n != n->ntargets)
        jctx_fail(c, TL_ERUNTIME, n->line, n->col, "%s values to unpack (expected %d, got %zu)",
                  (int)items.u.l->n > n->ntargets ? "too many" : "not enough", n->ntargets, items.u.l->n);
    for (int i = 0; i < n->ntargets; i++) frame_set(c, f, n->targets[i], items.u.l->v[i]);
}

static void exec_for(jctx *c, jframe *f, const jnode *n, jbuf *out) {
    jv seq = eval(c, f, n->a);
    at_node(c, n);
    if (seq.t == JV_UNDEF) seq = jv_list(c, 0);
    jv items = jv_iter_list(c, seq);
    if (n->b) { /* loop filter: evaluated with the targets bound, before the loop runs */
        jv kept = jv_list(c, items.u.l->n);
        for (size_t i = 0; i < items.u.l->n; i++) {
            jctx_tick(c, 1);
            jframe *tf = frame_new(c, f);
            assign_targets(c, tf, n, items.u.l->v[i]);
            if (jv_truthy(eval(c, tf, n->b))) jv_list_push(c, kept, items.u.l->v[i]);
        }
        items = kept;
    }
    if (!items.u.l->n) {
        exec_body(c, f, &n->ebody, out);
        return;
    }
    jloop *lp = jctx_alloc(c, sizeof *lp);
    lp->items = items;
    jv loopv = {.t = JV_LOOP};
    loopv.u.loop = lp;
    for (size_t i = 0; i < items.u.l->n; i++) {
        jctx_tick(c, 1);
        lp->idx = i;
        jframe *it = frame_new(c, f);
        frame_set(c, it, "loop", loopv);
        assign_targets(c, it, n, items.u.l->v[i]);
        exec_body(c, it, &n->body, out);
        if (c->ctl == CTL_BREAK) { c->ctl = 0; break; }
        if (c->ctl == CTL_CONTINUE) c->ctl = 0;
    }
}

static void exec_node(jctx *c, jframe *f, const jnode *n, jbuf *out) {
    at_node(c, n);
    switch (n->kind) {
    case N_TEXT: jbuf_put(out, n->val.u.s->s, n->val.u.s->len); return;
    case N_OUTPUT: jv_write_str(out, eval(c, f, n->a)); return;
    case N_IF: {
        const jnode *cur = n;
        while (1) {
            if (jv_truthy(eval(c, f, cur->a))) {
                exec_body(c, f, &cur->body, out);
                return;
            }
            if (cur->ebody.n == 1 && cur->ebody.v[0]->kind == N_IF && cur->ebody.v[0]->op == 2) {
                cur = cur->ebody.v[0]; /* elif: iterate, so long chains need no stack */
                continue;
            }
            exec_body(c, f, &cur->ebody, out);
            return;
        }
    }
    case N_FOR: exec_for(c, f, n, out); return;
    case N_SET: {
        jv v = eval(c, f, n->a);
        if (n->op) {
            jv *ns = frame_lookup(f, n->targets[0]);
            if (!ns || ns->t != JV_NS)
                jctx_fail(c, TL_ERUNTIME, n->line, n->col, "cannot assign attribute on non-namespace object '%s'", n->targets[0]);
            jv_dict_set(c, *ns, jv_cstr(c, n->name), v);
            return;
        }
        assign_targets(c, f, n, v);
        return;
    }
    case N_SETBLOCK: {
        jbuf b;
        jbuf_init(&b, c, c->lim.max_output);
        exec_body(c, f, &n->body, &b);
        frame_set(c, f, n->targets[0], jbuf_str(&b));
        return;
    }
    case N_MACRO: {
        jmacro *m = jctx_alloc(c, sizeof *m);
        m->def = n;
        m->closure = f;
        jv v = {.t = JV_MACRO};
        v.u.m = m;
        frame_set(c, f, n->name, v);
        return;
    }
    case N_FILTERBLOCK: {
        jbuf b;
        jbuf_init(&b, c, c->lim.max_output);
        exec_body(c, f, &n->body, &b);
        jv v = jbuf_str(&b);
        /* the chain's innermost input is NULL: it receives the block's text */
        const jnode *chain[64];
        int k = 0;
        for (const jnode *x = n->a; x && k < 64; x = x->a) chain[k++] = x;
        for (int i = k - 1; i >= 0; i--) {
            jargs a;
            args_at(c, f, chain[i], &a);
            v = jv_apply_filter(c, chain[i]->name, v, &a);
        }
        jv_write_str(out, v);
        return;
    }
    case N_BLOCKPASS: exec_body(c, f, &n->body, out); return;
    case N_BREAK: c->ctl = CTL_BREAK; return;
    case N_CONTINUE: c->ctl = CTL_CONTINUE; return;
    default: jv_write_str(out, eval(c, f, n));
    }
}

static void exec_body(jctx *c, jframe *f, const jnodes *body, jbuf *out) {
    for (int i = 0; i < body->n; i++) {
        exec_node(c, f, body->v[i], out);
        if (c->ctl) return;
    }
}

/* ---- entry ---------------------------------------------------------------------------------- */
static void add_global(jctx *c, jframe *f, const char *name) {
    jfunc *fn = jctx_alloc(c, sizeof *fn);
    fn->kind = FN_GLOBAL;
    fn->name = name;
    jv v = {.t = JV_FUNC};
    v.u.fn = fn;
    frame_set(c, f, name, v);
}

int jtemplate_render(const jtemplate *t, const jlimits *lim, jvars_fn build_vars, void *user,
                     char **out, size_t *out_len, tl_err *err) {
    *out = NULL;
    if (out_len) *out_len = 0;
    jctx *c = calloc(1, sizeof *c);
    if (!c) return tl_err_set(err, TL_ENOMEM, "out of memory starting a render");
    jlimits_default(&c->lim);
    if (lim) {
        if (lim->max_depth > 0) c->lim.max_depth = lim->max_depth;
        if (lim->max_iterations > 0) c->lim.max_iterations = lim->max_iterations;
        if (lim->max_output > 0) c->lim.max_output = lim->max_output;
        if (lim->max_memory > 0) c->lim.max_memory = lim->max_memory;
        c->lim.now = lim->now;
    }
    c->arena.cap = c->lim.max_memory;
    c->err = err;
    int rc = 0;
    if (setjmp(c->jb)) {
        rc = -(err && err->code ? err->code : TL_ERUNTIME);
        if (c->pending_json) json_decref(c->pending_json);
        goto done;
    }
    jframe *g = frame_new(c, NULL);
    static const char *globals[] = {"raise_exception", "strftime_now", "namespace", "dict", "range"};
    for (size_t i = 0; i < TL_ARRAY_LEN(globals); i++) add_global(c, g, globals[i]);
    jframe *top = frame_new(c, g);
    jv vars = jv_undef(NULL);
    if (build_vars) {
        rc = build_vars(c, user, &vars, err);
        if (rc) goto done;
    }
    if (vars.t == JV_DICT)
        for (size_t i = 0; i < vars.u.d->n; i++)
            if (vars.u.d->k[i].t == JV_STR) jv_dict_set(c, top->vars, vars.u.d->k[i], vars.u.d->v[i]);
    jbuf o;
    jbuf_init(&o, c, c->lim.max_output);
    exec_body(c, top, &t->body, &o);
    *out = malloc(o.n + 1);
    if (!*out) {
        rc = tl_err_set(err, TL_ENOMEM, "out of memory copying the rendered text");
        goto done;
    }
    if (o.n) memcpy(*out, o.p, o.n);
    (*out)[o.n] = 0;
    if (out_len) *out_len = o.n;
done:
    jarena_free(&c->arena);
    free(c);
    return rc;
}
