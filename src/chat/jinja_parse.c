/* jinja_parse.c — template source -> tokens -> AST, as jinja2's lexer and parser do it under
 * trim_blocks + lstrip_blocks. Hostile input: every error names line and column, nesting is
 * bounded (so no input can exhaust the C stack), and unknown filters / tests / tags are
 * rejected at compile time as jinja2 does. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat/jinja.h"

typedef enum {
    T_EOF, T_TEXT, T_VAR_BEGIN, T_VAR_END, T_BLOCK_BEGIN, T_BLOCK_END, T_NAME, T_STRING, T_INT,
    T_FLOAT, T_OP
} tok_type;

typedef struct tok {
    tok_type type;
    const char *s;   /* T_TEXT / T_STRING: processed bytes (arena); T_NAME / T_OP: in source */
    size_t len;
    int64_t ival;
    double fval;
    int line, col;
} tok;

typedef struct parser {
    jarena *arena;
    const char *src;
    size_t len;
    tok *toks;
    size_t ntok, captok, pos;
    int depth;
    size_t lc_off;       /* line_col's cursor */
    int lc_line, lc_col;
    tl_err *err;
    jmp_buf jb;
} parser;

#define MAX_NEST 200

static _Noreturn void pfail(parser *p, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static _Noreturn void pfail(parser *p, int line, int col, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    tl_err_set(p->err, TL_EFORMAT, "template syntax error at line %d, column %d: %s", line, col, msg);
    longjmp(p->jb, 1);
}

static void *palloc(parser *p, size_t n) {
    void *q = jarena_alloc(p->arena, n);
    if (!q) {
        tl_err_set(p->err, TL_ENOMEM, "template too large to compile (memory cap)");
        longjmp(p->jb, 1);
    }
    return q;
}

/* Line and column (1-based, columns in code points) of a source offset. Offsets mostly grow
 * while lexing, so this walks on from the last answer. */
static void line_col(parser *p, size_t off, int *line, int *col) {
    if (off < p->lc_off) {
        p->lc_off = 0;
        p->lc_line = 1;
        p->lc_col = 1;
    }
    if (!p->lc_line) { p->lc_line = 1; p->lc_col = 1; }
    for (size_t i = p->lc_off; i < off && i < p->len; i++) {
        if (p->src[i] == '\n') { p->lc_line++; p->lc_col = 1; }
        else if (((unsigned char)p->src[i] & 0xC0) != 0x80) p->lc_col++;
    }
    p->lc_off = off < p->len ? off : p->len;
    *line = p->lc_line;
    *col = p->lc_col;
}

/* ---- lexer ---------------------------------------------------------------------------------- */
static tok *push_tok(parser *p, tok_type t, size_t off) {
    if (p->ntok == p->captok) {
        size_t nc = p->captok ? p->captok * 2 : 256;
        tok *nt = palloc(p, nc * sizeof(tok));
        if (p->ntok) memcpy(nt, p->toks, p->ntok * sizeof(tok));
        p->toks = nt;
        p->captok = nc;
    }
    tok *k = &p->toks[p->ntok++];
    memset(k, 0, sizeof *k);
    k->type = t;
    line_col(p, off, &k->line, &k->col);
    return k;
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
static int is_name0(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static int is_name(char c) { return is_name0(c) || (c >= '0' && c <= '9'); }

static void emit_text(parser *p, size_t off, const char *s, size_t n) {
    if (!n) return;
    tok *k = push_tok(p, T_TEXT, off);
    k->s = s;
    k->len = n;
}

/* Decode a quoted string literal starting at src[i] (the quote). Returns index after it. */
static size_t lex_string(parser *p, size_t i, tok *k) {
    char q = p->src[i];
    size_t j = i + 1, end = j;
    while (end < p->len && p->src[end] != q) end += (p->src[end] == '\\' && end + 1 < p->len) ? 2 : 1;
    char *buf = palloc(p, end - i + 8); /* decoded text is never longer than the literal */
    size_t n = 0;
    while (j < p->len && p->src[j] != q) {
        char ch = p->src[j];
        if (ch == '\\' && j + 1 < p->len) {
            char e = p->src[j + 1];
            j += 2;
            switch (e) {
            case 'n': buf[n++] = '\n'; break;
            case 't': buf[n++] = '\t'; break;
            case 'r': buf[n++] = '\r'; break;
            case '0': buf[n++] = '\0'; break;
            case 'a': buf[n++] = '\a'; break;
            case 'b': buf[n++] = '\b'; break;
            case 'f': buf[n++] = '\f'; break;
            case 'v': buf[n++] = '\v'; break;
            case '\\': buf[n++] = '\\'; break;
            case '\'': buf[n++] = '\''; break;
            case '"': buf[n++] = '"'; break;
            case '\n': break;
            case 'x': case 'u': case 'U': {
                int nd = e == 'x' ? 2 : e == 'u' ? 4 : 8;
                uint32_t cp = 0;
                int ok = j + nd <= p->len;
                for (int d = 0; ok && d < nd; d++) {
                    char h = p->src[j + d];
                    int v = (h >= '0' && h <= '9') ? h - '0' : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                          : (h >= 'A' && h <= 'F') ? h - 'A' + 10 : -1;
                    if (v < 0) ok = 0;
                    else cp = cp * 16 + (uint32_t)v;
                }
                if (!ok || cp > 0x10FFFF) {
                    int l, c;
                    line_col(p, j - 2, &l, &c);
                    pfail(p, l, c, "bad \\%c escape in string literal", e);
                }
                j += nd;
                if (cp < 0x80) buf[n++] = (char)cp;
                else if (cp < 0x800) { buf[n++] = (char)(0xC0 | cp >> 6); buf[n++] = (char)(0x80 | (cp & 63)); }
                else if (cp < 0x10000) {
                    buf[n++] = (char)(0xE0 | cp >> 12); buf[n++] = (char)(0x80 | ((cp >> 6) & 63));
                    buf[n++] = (char)(0x80 | (cp & 63));
                } else {
                    buf[n++] = (char)(0xF0 | cp >> 18); buf[n++] = (char)(0x80 | ((cp >> 12) & 63));
                    buf[n++] = (char)(0x80 | ((cp >> 6) & 63)); buf[n++] = (char)(0x80 | (cp & 63));
                }
                break;
            }
            default: buf[n++] = '\\'; buf[n++] = e;
            }
            continue;
        }
        buf[n++] = ch;
        j++;
    }
    if (j >= p->len) pfail(p, k->line, k->col, "unterminated string literal");
    k->s = buf;
    k->len = n;
    return j + 1;
}

/* Tokens inside {{ }} or {% %} from i until the closer; returns index after the closer
 * (with trim_blocks' newline and '-' whitespace stripping applied). *rstrip_next is set
 * when the closer had '-'. */
static size_t lex_inside(parser *p, size_t i, int block, int *lstrip_next) {
    int bal = 0;
    const char *closer = block ? "%}" : "}}";
    while (1) {
        while (i < p->len && is_ws(p->src[i])) i++;
        if (i >= p->len) {
            int l, c;
            line_col(p, i, &l, &c);
            pfail(p, l, c, "unexpected end of template, expected '%s'", closer);
        }
        const char *s = p->src + i;
        /* closer, with optional - or + */
        if (bal == 0) {
            size_t k = 0;
            int sign = 0;
            if (s[0] == '-' || s[0] == '+') { sign = s[0]; k = 1; }
            if (i + k + 1 < p->len && s[k] == closer[0] && s[k + 1] == closer[1]) {
                push_tok(p, block ? T_BLOCK_END : T_VAR_END, i);
                i += k + 2;
                *lstrip_next = sign == '-';
                if (block && sign != '+' && sign != '-' && i < p->len && p->src[i] == '\n') i++;
                else if (block && sign != '+' && sign != '-' && i + 1 < p->len && p->src[i] == '\r' && p->src[i + 1] == '\n') i += 2;
                return i;
            }
        }
        if (s[0] == '\'' || s[0] == '"') {
            tok *k = push_tok(p, T_STRING, i);
            i = lex_string(p, i, k);
            continue;
        }
        if (s[0] >= '0' && s[0] <= '9') {
            size_t j = i;
            int is_float = 0;
            /* digits with single underscores between them */
#define DIGITS(q) do { while ((q) < p->len && p->src[q] >= '0' && p->src[q] <= '9') { (q)++; \
            if ((q) + 1 < p->len && p->src[q] == '_' && p->src[(q) + 1] >= '0' && p->src[(q) + 1] <= '9') (q)++; } } while (0)
            DIGITS(j);
            size_t fe = j;
            if (fe + 1 < p->len && p->src[fe] == '.' && p->src[fe + 1] >= '0' && p->src[fe + 1] <= '9') {
                fe++;
                DIGITS(fe);
                is_float = 1;
            }
            if (fe < p->len && (p->src[fe] == 'e' || p->src[fe] == 'E')) {
                size_t e = fe + 1;
                if (e < p->len && (p->src[e] == '+' || p->src[e] == '-')) e++;
                if (e < p->len && p->src[e] >= '0' && p->src[e] <= '9') {
                    DIGITS(e);
                    fe = e;
                    is_float = 1;
                }
            }
#undef DIGITS
            if (is_float) j = fe;
            else if (s[0] == '0') { /* "0", "0_0": a leading zero takes only zeros */
                j = i + 1;
                while (j + 1 < p->len && p->src[j] == '_' && p->src[j + 1] == '0') j += 2;
                while (j < p->len && p->src[j] == '0') j++;
            }
            char num[64];
            size_t nn = 0;
            for (size_t q = i; q < j && nn < sizeof num - 1; q++)
                if (p->src[q] != '_') num[nn++] = p->src[q];
            num[nn] = 0;
            tok *k = push_tok(p, is_float ? T_FLOAT : T_INT, i);
            errno = 0;
            if (is_float) k->fval = strtod(num, NULL);
            else {
                k->ival = strtoll(num, NULL, 10);
                if (errno) pfail(p, k->line, k->col, "integer literal out of range");
            }
            i = j;
            continue;
        }
        if (is_name0(s[0])) {
            size_t j = i;
            while (j < p->len && is_name(p->src[j])) j++;
            tok *k = push_tok(p, T_NAME, i);
            k->s = s;
            k->len = j - i;
            i = j;
            continue;
        }
        static const char *ops[] = {"**", "//", "==", "!=", "<=", ">=", "+", "-", "*", "/", "%",
                                    "<", ">", "=", "(", ")", "[", "]", "{", "}", ".", ",",
                                    ":", "|", "~"};
        size_t oplen = 0;
        for (size_t o = 0; o < TL_ARRAY_LEN(ops); o++) {
            size_t L = strlen(ops[o]);
            if (i + L <= p->len && !memcmp(s, ops[o], L)) { oplen = L; break; }
        }
        if (!oplen) {
            int l, c;
            line_col(p, i, &l, &c);
            if ((unsigned char)s[0] >= 0x20 && (unsigned char)s[0] < 0x7f)
                pfail(p, l, c, "unexpected character '%c'", s[0]);
            pfail(p, l, c, "unexpected byte 0x%02x", (unsigned char)s[0]);
        }
        if (s[0] == '(' || s[0] == '[' || s[0] == '{') bal++;
        if ((s[0] == ')' || s[0] == ']' || s[0] == '}') && bal > 0) bal--;
        tok *k = push_tok(p, T_OP, i);
        k->s = s;
        k->len = oplen;
        i += oplen;
    }
}

/* Match "{%[-+]? *NAME *[-+]?%}" at i; returns the index after it (0 if no match) and the
 * signs on each side. */
static size_t match_tag(parser *p, size_t i, const char *name, int *lsign, int *rsign) {
    const char *s = p->src;
    size_t n = p->len, j = i;
    if (j + 2 > n || s[j] != '{' || s[j + 1] != '%') return 0;
    j += 2;
    *lsign = (j < n && (s[j] == '-' || s[j] == '+')) ? s[j++] : 0;
    while (j < n && is_ws(s[j])) j++;
    size_t L = strlen(name);
    if (j + L > n || memcmp(s + j, name, L) || (j + L < n && is_name(s[j + L]))) return 0;
    j += L;
    while (j < n && is_ws(s[j])) j++;
    *rsign = (j < n && (s[j] == '-' || s[j] == '+')) ? s[j++] : 0;
    if (j + 2 > n || s[j] != '%' || s[j + 1] != '}') return 0;
    return j + 2;
}

static void lex(parser *p) {
    size_t i = 0;
    int lstrip_next = 0;
    while (i < p->len) {
        /* next tag opener */
        size_t t = i;
        const char *open = NULL;
        while (t + 1 < p->len) {
            if (p->src[t] == '{' && (p->src[t + 1] == '{' || p->src[t + 1] == '%' || p->src[t + 1] == '#')) {
                open = p->src + t;
                break;
            }
            t++;
        }
        if (!open) t = p->len;
        size_t ts = i, te = t;
        if (lstrip_next) while (ts < te && is_ws(p->src[ts])) ts++;
        lstrip_next = 0;
        if (!open) {
            emit_text(p, ts, p->src + ts, te - ts);
            break;
        }
        char kind = open[1];
        char sign = (t + 2 < p->len && (open[2] == '-' || open[2] == '+')) ? open[2] : 0;
        if (sign == '-') {
            while (te > ts && is_ws(p->src[te - 1])) te--;
        } else if (sign != '+' && kind != '{') {
            /* lstrip_blocks: whitespace from the line start up to the tag goes */
            size_t q = te;
            while (q > ts && (p->src[q - 1] == ' ' || p->src[q - 1] == '\t')) q--;
            if ((q > ts && p->src[q - 1] == '\n') || (q == ts && (ts == 0 || p->src[ts - 1] == '\n')))
                te = q;
        }
        emit_text(p, ts, p->src + ts, te - ts);
        size_t body = t + 2 + (sign ? 1 : 0);
        if (kind == '#') {
            const char *end = NULL;
            for (size_t q = body; q + 1 < p->len; q++)
                if (p->src[q] == '#' && p->src[q + 1] == '}') { end = p->src + q; break; }
            if (!end) {
                if (body >= p->len) break; /* "{#" as the very last bytes: jinja2 ends quietly */
                int l, c;
                line_col(p, t, &l, &c);
                pfail(p, l, c, "unterminated comment");
            }
            size_t e = (size_t)(end - p->src);
            char rs = (e > body && (p->src[e - 1] == '-' || p->src[e - 1] == '+')) ? p->src[e - 1] : 0;
            i = e + 2;
            if (rs == '-') lstrip_next = 1;
            else if (rs != '+' && i < p->len && p->src[i] == '\n') i++;
            continue;
        }
        if (kind == '%') {
            int ls, rs;
            size_t after = match_tag(p, t, "raw", &ls, &rs);
            if (after) {
                size_t q = after, end = 0, end_after = 0;
                int els = 0, ers = 0;
                for (; q + 1 < p->len; q++)
                    if (p->src[q] == '{' && p->src[q + 1] == '%' && (end_after = match_tag(p, q, "endraw", &els, &ers))) {
                        end = q;
                        break;
                    }
                if (!end_after) {
                    int l, c;
                    line_col(p, t, &l, &c);
                    pfail(p, l, c, "unterminated raw block (missing endraw)");
                }
                size_t cs = after, ce = end;
                if (rs == '-') while (cs < ce && is_ws(p->src[cs])) cs++;
                if (els == '-') while (ce > cs && is_ws(p->src[ce - 1])) ce--;
                else if (els != '+') {
                    size_t r = ce;
                    while (r > cs && (p->src[r - 1] == ' ' || p->src[r - 1] == '\t')) r--;
                    if ((r > cs && p->src[r - 1] == '\n') || (r == cs && p->src[cs - 1] == '\n')) ce = r;
                }
                emit_text(p, cs, p->src + cs, ce - cs);
                i = end_after;
                if (ers == '-') lstrip_next = 1;
                else if (ers != '+' && i < p->len && p->src[i] == '\n') i++;
                continue;
            }
        }
        push_tok(p, kind == '{' ? T_VAR_BEGIN : T_BLOCK_BEGIN, t);
        i = lex_inside(p, body, kind == '%', &lstrip_next);
    }
    push_tok(p, T_EOF, p->len);
}

/* ---- parser helpers ------------------------------------------------------------------------- */
static tok *cur(parser *p) { return &p->toks[p->pos]; }
static tok *peek(parser *p, int k) {
    size_t i = p->pos + (size_t)k;
    return &p->toks[i < p->ntok ? i : p->ntok - 1];
}
static int is_op(tok *t, const char *op) { return t->type == T_OP && t->len == strlen(op) && !memcmp(t->s, op, t->len); }
static int is_name_tok(tok *t, const char *nm) { return t->type == T_NAME && t->len == strlen(nm) && !memcmp(t->s, nm, t->len); }

static const char *tok_desc(tok *t, char *buf, size_t cap) {
    switch (t->type) {
    case T_EOF: return "end of template";
    case T_TEXT: return "template text";
    case T_VAR_BEGIN: return "'{{'";
    case T_VAR_END: return "'}}'";
    case T_BLOCK_BEGIN: return "'{%'";
    case T_BLOCK_END: return "'%}'";
    case T_STRING: return "string";
    case T_INT: case T_FLOAT: return "number";
    default: snprintf(buf, cap, "'%.*s'", (int)TL_MIN(t->len, 40), t->s); return buf;
    }
}

static void expect_op(parser *p, const char *op) {
    tok *t = cur(p);
    if (!is_op(t, op)) {
        char b[64];
        pfail(p, t->line, t->col, "expected '%s', got %s", op, tok_desc(t, b, sizeof b));
    }
    p->pos++;
}

static const char *expect_name(parser *p) {
    tok *t = cur(p);
    if (t->type != T_NAME) {
        char b[64];
        pfail(p, t->line, t->col, "expected a name, got %s", tok_desc(t, b, sizeof b));
    }
    char *s = palloc(p, t->len + 1);
    memcpy(s, t->s, t->len);
    p->pos++;
    return s;
}

static void expect_block_end(parser *p) {
    tok *t = cur(p);
    if (t->type != T_BLOCK_END) {
        char b[64];
        pfail(p, t->line, t->col, "expected end of statement '%%}', got %s", tok_desc(t, b, sizeof b));
    }
    p->pos++;
}

static jnode *mknode(parser *p, jnode_kind k, tok *at) {
    jnode *n = palloc(p, sizeof *n);
    n->kind = k;
    n->line = at->line;
    n->col = at->col;
    return n;
}

static void nodes_push(parser *p, jnodes *ns, jnode *n) {
    if (ns->n == ns->cap) {
        int nc = ns->cap ? ns->cap * 2 : 4;
        jnode **nv = palloc(p, (size_t)nc * sizeof *nv);
        if (ns->n) memcpy(nv, ns->v, (size_t)ns->n * sizeof *nv);
        ns->v = nv;
        ns->cap = nc;
    }
    ns->v[ns->n++] = n;
}

static void enter(parser *p) {
    if (++p->depth > MAX_NEST) {
        tok *t = cur(p);
        pfail(p, t->line, t->col, "nesting deeper than %d levels", MAX_NEST);
    }
}

/* ---- expressions ---------------------------------------------------------------------------- */
static jnode *parse_expr(parser *p);
static jnode *parse_or(parser *p);
static jnode *parse_unary(parser *p, int with_filter);
static jnode *parse_primary(parser *p);
static jnode *parse_postfix(parser *p, jnode *n);

static const char *known_filters[] = {
    "abs", "attr", "batch", "capitalize", "center", "count", "d", "default", "dictsort", "e",
    "escape", "first", "float", "forceescape", "indent", "int", "items", "join", "last",
    "length", "list", "lower", "map", "max", "min", "reject", "rejectattr", "replace", "reverse",
    "round", "safe", "select", "selectattr", "sort", "string", "sum", "title", "tojson", "trim",
    "unique", "upper", "wordcount"};
static const char *known_tests[] = {
    "boolean", "callable", "defined", "divisibleby", "eq", "equalto", "escaped", "even", "false",
    "filter", "float", "ge", "greaterthan", "gt", "in", "integer", "iterable", "le", "lessthan",
    "lower", "lt", "mapping", "ne", "none", "number", "odd", "sameas", "sequence", "string",
    "test", "true", "undefined", "upper", "==", "!=", "<", "<=", ">", ">="};

static int in_list(const char *s, const char **list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(s, list[i])) return 1;
    return 0;
}

/* (args) after a callee / filter / test: positional then key=value. */
static void parse_call_args(parser *p, jnode *n) {
    expect_op(p, "(");
    int nkw = 0, capkw = 0;
    while (!is_op(cur(p), ")")) {
        if (n->args.n || nkw) expect_op(p, ",");
        if (is_op(cur(p), ")")) break;
        if (cur(p)->type == T_NAME && is_op(peek(p, 1), "=")) {
            const char *k = expect_name(p);
            p->pos++;
            if (nkw == capkw) {
                capkw = capkw ? capkw * 2 : 4;
                const char **nk = palloc(p, (size_t)capkw * sizeof *nk);
                if (nkw) memcpy(nk, n->kwnames, (size_t)nkw * sizeof *nk);
                n->kwnames = nk;
            }
            n->kwnames[nkw++] = k;
            nodes_push(p, &n->kwargs, parse_expr(p));
        } else {
            if (nkw) {
                tok *t = cur(p);
                pfail(p, t->line, t->col, "positional argument after keyword argument");
            }
            nodes_push(p, &n->args, parse_expr(p));
        }
    }
    p->pos++;
}

/* callee(args): a call node at the '(' token at. */
static jnode *parse_call(parser *p, jnode *callee, tok *at) {
    jnode *call = mknode(p, E_CALL, at);
    call->a = callee;
    parse_call_args(p, call);
    return call;
}

static jnode *parse_filter(parser *p, jnode *input, tok *at) {
    tok *nt = cur(p);
    const char *name = expect_name(p);
    while (is_op(cur(p), ".")) { /* dotted filter names are not ours */
        p->pos++;
        expect_name(p);
    }
    if (!in_list(name, known_filters, TL_ARRAY_LEN(known_filters)))
        pfail(p, nt->line, nt->col, "no filter named '%s'", name);
    jnode *f = mknode(p, E_FILTER, at);
    f->name = name;
    f->a = input;
    if (is_op(cur(p), "(")) parse_call_args(p, f);
    return f;
}

static jnode *parse_filter_expr(parser *p, jnode *n) {
    while (1) {
        tok *t = cur(p);
        if (is_op(t, "|")) {
            p->pos++;
            n = parse_filter(p, n, t);
        } else if (is_name_tok(t, "is")) {
            p->pos++;
            jnode *tn = mknode(p, E_TEST, t);
            if (is_name_tok(cur(p), "not")) { tn->op = 1; p->pos++; }
            tok *nt = cur(p);
            const char *name;
            name = expect_name(p);
            if (!in_list(name, known_tests, TL_ARRAY_LEN(known_tests)))
                pfail(p, nt->line, nt->col, "no test named '%s'", name);
            tn->name = name;
            tn->a = n;
            tok *c = cur(p);
            if (is_op(c, "(")) parse_call_args(p, tn);
            else if ((c->type == T_NAME || c->type == T_STRING || c->type == T_INT ||
                      c->type == T_FLOAT || is_op(c, "[") || is_op(c, "{")) &&
                     !is_name_tok(c, "else") && !is_name_tok(c, "or") && !is_name_tok(c, "and") &&
                     !is_name_tok(c, "if") && !is_name_tok(c, "in") && !is_name_tok(c, "not")) {
                if (is_name_tok(c, "is")) pfail(p, c->line, c->col, "you cannot chain multiple tests with is");
                jnode *arg = parse_postfix(p, parse_primary(p));
                nodes_push(p, &tn->args, arg);
            }
            n = tn;
        } else if (is_op(t, "(")) {
            n = parse_call(p, n, t);
        } else return n;
    }
}

static jnode *parse_subscript(parser *p) {
    /* [a], [a:b], [a:b:c] */
    tok *t = cur(p);
    jnode *parts[3] = {NULL, NULL, NULL};
    int k = 0, is_slice = 0;
    while (1) {
        if (!is_op(cur(p), ":") && !is_op(cur(p), "]") && !is_op(cur(p), ",")) parts[k] = parse_expr(p);
        if (is_op(cur(p), ":") && k < 2) {
            is_slice = 1;
            p->pos++;
            k++;
            continue;
        }
        break;
    }
    if (!is_slice) {
        if (!parts[0]) pfail(p, t->line, t->col, "expected an expression in []");
        return parts[0];
    }
    jnode *s = mknode(p, E_SLICE, t);
    s->a = parts[0];
    s->b = parts[1];
    s->c = parts[2];
    return s;
}

static jnode *parse_postfix(parser *p, jnode *n) {
    while (1) {
        tok *t = cur(p);
        if (is_op(t, ".")) {
            p->pos++;
            tok *at = cur(p);
            jnode *a = mknode(p, E_ATTR, t);
            a->a = n;
            if (at->type == T_INT) {
                jnode *idx = mknode(p, E_CONST, at);
                idx->val = jv_int(at->ival);
                a->kind = E_ITEM;
                a->b = idx;
                p->pos++;
            } else a->name = expect_name(p);
            n = a;
        } else if (is_op(t, "[")) {
            p->pos++;
            jnode *it = mknode(p, E_ITEM, t);
            it->a = n;
            it->b = parse_subscript(p);
            expect_op(p, "]");
            n = it;
        } else if (is_op(t, "(")) {
            n = parse_call(p, n, t);
        } else return n;
    }
}

static jnode *parse_primary(parser *p) {
    tok *t = cur(p);
    enter(p);
    jnode *n;
    if (t->type == T_NAME) {
        n = mknode(p, E_CONST, t);
        if (is_name_tok(t, "true") || is_name_tok(t, "True")) n->val = jv_bool(1);
        else if (is_name_tok(t, "false") || is_name_tok(t, "False")) n->val = jv_bool(0);
        else if (is_name_tok(t, "none") || is_name_tok(t, "None")) n->val = jv_none();
        else {
            n->kind = E_NAME;
            n->name = expect_name(p);
            p->depth--;
            return n;
        }
        p->pos++;
    } else if (t->type == T_STRING) {
        /* adjacent literals concatenate */
        size_t total = 0, k = p->pos;
        while (p->toks[k].type == T_STRING) total += p->toks[k++].len;
        char *s = palloc(p, total + 1 + sizeof(jstr));
        jstr *js = (jstr *)s;
        js->len = 0;
        while (cur(p)->type == T_STRING) {
            memcpy(js->s + js->len, cur(p)->s, cur(p)->len);
            js->len += cur(p)->len;
            p->pos++;
        }
        js->s[js->len] = 0;
        n = mknode(p, E_CONST, t);
        n->val.t = JV_STR;
        n->val.u.s = js;
    } else if (t->type == T_INT) {
        n = mknode(p, E_CONST, t);
        n->val = jv_int(t->ival);
        p->pos++;
    } else if (t->type == T_FLOAT) {
        n = mknode(p, E_CONST, t);
        n->val = jv_float(t->fval);
        p->pos++;
    } else if (is_op(t, "(")) {
        p->pos++;
        if (is_op(cur(p), ")")) {
            p->pos++;
            n = mknode(p, E_TUPLE, t);
        } else {
            jnode *first = parse_expr(p);
            if (is_op(cur(p), ",")) {
                n = mknode(p, E_TUPLE, t);
                nodes_push(p, &n->args, first);
                while (is_op(cur(p), ",")) {
                    p->pos++;
                    if (is_op(cur(p), ")")) break;
                    nodes_push(p, &n->args, parse_expr(p));
                }
            } else n = first;
            expect_op(p, ")");
        }
    } else if (is_op(t, "[")) {
        p->pos++;
        n = mknode(p, E_LIST, t);
        while (!is_op(cur(p), "]")) {
            if (n->args.n) expect_op(p, ",");
            if (is_op(cur(p), "]")) break;
            nodes_push(p, &n->args, parse_expr(p));
        }
        p->pos++;
    } else if (is_op(t, "{")) {
        p->pos++;
        n = mknode(p, E_DICT, t);
        while (!is_op(cur(p), "}")) {
            if (n->args.n) expect_op(p, ",");
            if (is_op(cur(p), "}")) break;
            nodes_push(p, &n->args, parse_expr(p));
            expect_op(p, ":");
            nodes_push(p, &n->args, parse_expr(p));
        }
        p->pos++;
    } else {
        char b[64];
        pfail(p, t->line, t->col, "unexpected %s", tok_desc(t, b, sizeof b));
    }
    p->depth--;
    return n;
}

static jnode *parse_unary(parser *p, int with_filter) {
    tok *t = cur(p);
    enter(p);
    jnode *n;
    if (is_op(t, "-") || is_op(t, "+")) {
        p->pos++;
        n = mknode(p, is_op(t, "-") ? E_NEG : E_POS, t);
        n->a = parse_unary(p, 0);
    } else {
        n = parse_postfix(p, parse_primary(p));
    }
    if (with_filter) n = parse_filter_expr(p, n);
    p->depth--;
    return n;
}

/* A node of kind with operands a and b (b parsed by the caller after a). */
static jnode *pair(parser *p, jnode_kind kind, jnode *a, jnode *b, tok *at) {
    jnode *n = mknode(p, kind, at);
    n->a = a;
    n->b = b;
    return n;
}

static jnode *bin(parser *p, int op, jnode *a, jnode *b, tok *at) {
    jnode *n = pair(p, E_BIN, a, b, at);
    n->op = op;
    return n;
}

static jnode *parse_pow(parser *p) {
    jnode *n = parse_unary(p, 1);
    while (is_op(cur(p), "**")) {
        tok *t = cur(p);
        p->pos++;
        n = bin(p, OP_POW, n, parse_unary(p, 1), t);
    }
    return n;
}

static jnode *parse_math2(parser *p) {
    jnode *n = parse_pow(p);
    while (1) {
        tok *t = cur(p);
        int op = is_op(t, "*") ? OP_MUL : is_op(t, "/") ? OP_DIV : is_op(t, "//") ? OP_FDIV
               : is_op(t, "%") ? OP_MOD : 0;
        if (!op) return n;
        p->pos++;
        n = bin(p, op, n, parse_pow(p), t);
    }
}

static jnode *parse_concat(parser *p) {
    jnode *n = parse_math2(p);
    while (is_op(cur(p), "~")) {
        tok *t = cur(p);
        p->pos++;
        n = pair(p, E_CONCAT, n, parse_math2(p), t);
    }
    return n;
}

static jnode *parse_math1(parser *p) {
    jnode *n = parse_concat(p);
    while (1) {
        tok *t = cur(p);
        int op = is_op(t, "+") ? OP_ADD : is_op(t, "-") ? OP_SUB : 0;
        if (!op) return n;
        p->pos++;
        n = bin(p, op, n, parse_concat(p), t);
    }
}

/* a < b < c is (a < b) and (b < c), as in Python (b is evaluated twice) */
static jnode *parse_compare(parser *p) {
    jnode *n = parse_math1(p), *last = NULL, *chain = NULL;
    while (1) {
        tok *t = cur(p);
        int op = is_op(t, "==") ? OP_EQ : is_op(t, "!=") ? OP_NE : is_op(t, "<") ? OP_LT
               : is_op(t, ">") ? OP_GT : is_op(t, "<=") ? OP_LE : is_op(t, ">=") ? OP_GE
               : is_name_tok(t, "in") ? OP_IN : 0;
        if (!op && is_name_tok(t, "not") && is_name_tok(peek(p, 1), "in")) {
            op = OP_NOTIN;
            p->pos++;
        }
        if (!op) return chain ? chain : n;
        p->pos++;
        jnode *rhs = parse_math1(p);
        jnode *cmp = bin(p, op, last ? last : n, rhs, t);
        if (!last) chain = cmp;
        else {
            chain = pair(p, E_AND, chain, cmp, t);
        }
        last = rhs;
    }
}

static jnode *parse_not(parser *p) {
    tok *t = cur(p);
    if (is_name_tok(t, "not")) {
        p->pos++;
        enter(p);
        jnode *n = mknode(p, E_NOT, t);
        n->a = parse_not(p);
        p->depth--;
        return n;
    }
    return parse_compare(p);
}

static jnode *parse_and(parser *p) {
    jnode *n = parse_not(p);
    while (is_name_tok(cur(p), "and")) {
        tok *t = cur(p);
        p->pos++;
        n = pair(p, E_AND, n, parse_not(p), t);
    }
    return n;
}

static jnode *parse_or(parser *p) {
    jnode *n = parse_and(p);
    while (is_name_tok(cur(p), "or")) {
        tok *t = cur(p);
        p->pos++;
        n = pair(p, E_OR, n, parse_and(p), t);
    }
    return n;
}

static jnode *parse_expr(parser *p) {
    enter(p);
    jnode *n = parse_or(p);
    while (is_name_tok(cur(p), "if")) {
        tok *t = cur(p);
        p->pos++;
        jnode *c = mknode(p, E_COND, t);
        c->b = parse_or(p);   /* condition */
        c->a = n;             /* value if true */
        if (is_name_tok(cur(p), "else")) {
            p->pos++;
            c->c = parse_expr(p);
        }
        n = c;
    }
    p->depth--;
    return n;
}

/* "a, b" without parentheses (set / for targets and values) */
static jnode *parse_tuple_expr(parser *p) {
    tok *t = cur(p);
    jnode *first = parse_expr(p);
    if (!is_op(cur(p), ",")) return first;
    jnode *n = mknode(p, E_TUPLE, t);
    nodes_push(p, &n->args, first);
    while (is_op(cur(p), ",")) {
        p->pos++;
        if (cur(p)->type == T_BLOCK_END || cur(p)->type == T_VAR_END) break;
        nodes_push(p, &n->args, parse_expr(p));
    }
    return n;
}

/* ---- statements ----------------------------------------------------------------------------- */
/* Parses statements until a {% name %} in ends (which is left unconsumed, positioned at the
 * name); returns the index in ends matched. */
static int parse_body(parser *p, jnodes *body, const char **ends, int nends, tok *opener);

/* parse_body, then the end tag it stopped at ({% name %}); returns the index in ends matched. */
static int parse_block_body(parser *p, jnodes *body, const char **ends, int nends, tok *opener) {
    int e = parse_body(p, body, ends, nends, opener);
    p->pos++; /* the end tag's name */
    expect_block_end(p);
    return e;
}

static void parse_targets(parser *p, jnode *n) {
    const char *names[16];
    int k = 0;
    int paren = is_op(cur(p), "(");
    if (paren) p->pos++;
    do {
        if (k) p->pos++;
        if (k == 16) pfail(p, cur(p)->line, cur(p)->col, "too many targets");
        names[k++] = expect_name(p);
    } while (is_op(cur(p), ","));
    if (paren) expect_op(p, ")");
    n->targets = palloc(p, (size_t)k * sizeof *n->targets);
    memcpy(n->targets, names, (size_t)k * sizeof *names);
    n->ntargets = k;
}

static jnode *parse_statement(parser *p, tok *bt) {
    tok *t = cur(p);
    if (t->type != T_NAME) {
        char b[64];
        pfail(p, t->line, t->col, "expected a statement name, got %s", tok_desc(t, b, sizeof b));
    }
    if (is_name_tok(t, "if")) {
        p->pos++;
        jnode *n = mknode(p, N_IF, bt);
        n->a = parse_tuple_expr(p);
        expect_block_end(p);
        jnode *curif = n;
        static const char *ends[] = {"elif", "else", "endif"};
        while (1) {
            int e = parse_body(p, &curif->body, ends, 3, bt);
            tok *et = cur(p);
            p->pos++;
            if (e == 0) {
                jnode *el = mknode(p, N_IF, et);
                el->a = parse_tuple_expr(p);
                el->op = 2; /* marks an elif */
                expect_block_end(p);
                nodes_push(p, &curif->ebody, el);
                curif = el;
                continue;
            }
            expect_block_end(p);
            if (e == 1) {
                static const char *ends2[] = {"endif"};
                parse_block_body(p, &curif->ebody, ends2, 1, bt);
            }
            return n;
        }
    }
    if (is_name_tok(t, "for")) {
        p->pos++;
        jnode *n = mknode(p, N_FOR, bt);
        parse_targets(p, n);
        if (!is_name_tok(cur(p), "in")) pfail(p, cur(p)->line, cur(p)->col, "expected 'in' in for loop");
        p->pos++;
        n->a = parse_tuple_expr(p);
        /* parse_expr would eat "if" as an inline if without else; jinja2 parses the loop filter */
        if (n->a->kind == E_COND && !n->a->c) {
            n->b = n->a->b;
            n->a = n->a->a;
        }
        if (is_name_tok(cur(p), "if")) {
            p->pos++;
            n->b = parse_expr(p);
        }
        if (is_name_tok(cur(p), "recursive"))
            pfail(p, cur(p)->line, cur(p)->col, "recursive for loops are not supported");
        expect_block_end(p);
        static const char *ends[] = {"else", "endfor"};
        int e = parse_block_body(p, &n->body, ends, 2, bt);
        if (e == 0) {
            static const char *ends2[] = {"endfor"};
            parse_block_body(p, &n->ebody, ends2, 1, bt);
        }
        return n;
    }
    if (is_name_tok(t, "set")) {
        p->pos++;
        jnode *n = mknode(p, N_SET, bt);
        if (cur(p)->type == T_NAME && is_op(peek(p, 1), ".")) {
            n->targets = palloc(p, sizeof *n->targets);
            n->targets[0] = expect_name(p);
            n->ntargets = 1;
            p->pos++;
            n->name = expect_name(p);
            n->op = 1;
        } else parse_targets(p, n);
        if (cur(p)->type == T_BLOCK_END && !n->op && n->ntargets == 1) {
            p->pos++;
            n->kind = N_SETBLOCK;
            static const char *ends[] = {"endset"};
            parse_block_body(p, &n->body, ends, 1, bt);
            return n;
        }
        expect_op(p, "=");
        n->a = parse_tuple_expr(p);
        expect_block_end(p);
        return n;
    }
    if (is_name_tok(t, "macro")) {
        p->pos++;
        jnode *n = mknode(p, N_MACRO, bt);
        n->name = expect_name(p);
        expect_op(p, "(");
        const char *names[64];
        int k = 0;
        while (!is_op(cur(p), ")")) {
            if (k) expect_op(p, ",");
            if (is_op(cur(p), ")")) break;
            if (k == 64) pfail(p, cur(p)->line, cur(p)->col, "too many macro parameters");
            names[k] = expect_name(p);
            jnode *def = NULL;
            if (is_op(cur(p), "=")) {
                p->pos++;
                def = parse_expr(p);
            } else if (n->defaults.n && n->defaults.v[n->defaults.n - 1])
                pfail(p, cur(p)->line, cur(p)->col, "non-default argument follows default argument");
            nodes_push(p, &n->defaults, def);
            k++;
        }
        p->pos++;
        n->targets = palloc(p, (size_t)(k ? k : 1) * sizeof *n->targets);
        memcpy(n->targets, names, (size_t)k * sizeof *names);
        n->ntargets = k;
        expect_block_end(p);
        static const char *ends[] = {"endmacro"};
        parse_body(p, &n->body, ends, 1, bt);
        p->pos++;
        if (cur(p)->type == T_NAME) p->pos++; /* {% endmacro name %} */
        expect_block_end(p);
        return n;
    }
    if (is_name_tok(t, "filter")) {
        p->pos++;
        jnode *n = mknode(p, N_FILTERBLOCK, bt);
        jnode *chain = NULL;
        tok *ft = cur(p);
        chain = parse_filter(p, NULL, ft);
        while (is_op(cur(p), "|")) {
            tok *pt = cur(p);
            p->pos++;
            chain = parse_filter(p, chain, pt);
        }
        n->a = chain;
        expect_block_end(p);
        static const char *ends[] = {"endfilter"};
        parse_block_body(p, &n->body, ends, 1, bt);
        return n;
    }
    if (is_name_tok(t, "generation")) {
        p->pos++;
        jnode *n = mknode(p, N_BLOCKPASS, bt);
        expect_block_end(p);
        static const char *ends[] = {"endgeneration"};
        parse_block_body(p, &n->body, ends, 1, bt);
        return n;
    }
    if (is_name_tok(t, "break") || is_name_tok(t, "continue")) {
        jnode *n = mknode(p, is_name_tok(t, "break") ? N_BREAK : N_CONTINUE, bt);
        p->pos++;
        expect_block_end(p);
        return n;
    }
    char nm[64];
    snprintf(nm, sizeof nm, "%.*s", (int)TL_MIN(t->len, 40), t->s);
    pfail(p, t->line, t->col, "unknown or unsupported tag '%s'", nm);
}

static int parse_body(parser *p, jnodes *body, const char **ends, int nends, tok *opener) {
    enter(p);
    while (1) {
        tok *t = cur(p);
        if (t->type == T_EOF) {
            if (nends) {
                if (opener)
                    pfail(p, t->line, t->col, "unexpected end of template: the block opened at line %d, column %d needs '%s'",
                          opener->line, opener->col, ends[nends - 1]);
                pfail(p, t->line, t->col, "unexpected end of template, expected '%s'", ends[nends - 1]);
            }
            p->depth--;
            return -1;
        }
        if (t->type == T_TEXT) {
            jnode *n = mknode(p, N_TEXT, t);
            n->val.t = JV_STR;
            jstr *s = palloc(p, sizeof(jstr) + t->len + 1);
            s->len = t->len;
            memcpy(s->s, t->s, t->len);
            n->val.u.s = s;
            nodes_push(p, body, n);
            p->pos++;
            continue;
        }
        if (t->type == T_VAR_BEGIN) {
            p->pos++;
            jnode *n = mknode(p, N_OUTPUT, t);
            n->a = parse_tuple_expr(p);
            tok *e = cur(p);
            if (e->type != T_VAR_END) {
                char b[64];
                pfail(p, e->line, e->col, "expected '}}', got %s", tok_desc(e, b, sizeof b));
            }
            p->pos++;
            nodes_push(p, body, n);
            continue;
        }
        if (t->type == T_BLOCK_BEGIN) {
            tok *nt = peek(p, 1);
            for (int i = 0; i < nends; i++)
                if (is_name_tok(nt, ends[i])) {
                    p->pos++;
                    p->depth--;
                    return i;
                }
            if (nt->type == T_NAME) {
                static const char *stray[] = {"endif", "endfor", "elif", "else", "endmacro",
                                              "endset", "endfilter", "endraw", "endgeneration"};
                for (size_t i = 0; i < TL_ARRAY_LEN(stray); i++)
                    if (is_name_tok(nt, stray[i]))
                        pfail(p, nt->line, nt->col, "unexpected '%s'%s", stray[i],
                              nends ? "" : " (no block is open)");
            }
            p->pos++;
            nodes_push(p, body, parse_statement(p, t));
            continue;
        }
        char b[64];
        pfail(p, t->line, t->col, "unexpected %s", tok_desc(t, b, sizeof b));
    }
}

int jtemplate_compile(jtemplate **out, const char *src, size_t len, const jlimits *lim,
                      tl_err *err) {
    *out = NULL;
    jtemplate *t = calloc(1, sizeof *t);
    if (!t) return tl_err_set(err, TL_ENOMEM, "out of memory compiling a template");
    t->arena.cap = lim && lim->max_memory ? lim->max_memory : (256u << 20);
    parser p = {.arena = &t->arena, .err = err};
    if (setjmp(p.jb)) {
        jtemplate_free(t);
        return -(err && err->code ? err->code : TL_EFORMAT);
    }
    /* as jinja2: every newline sequence becomes "\n", and one trailing newline is dropped
     * (keep_trailing_newline=False) */
    char *norm = palloc(&p, len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (src[i] == '\r') {
            norm[n++] = '\n';
            if (i + 1 < len && src[i + 1] == '\n') i++;
        } else norm[n++] = src[i];
    }
    if (n && norm[n - 1] == '\n') n--;
    norm[n] = 0;
    p.src = norm;
    p.len = n;
    lex(&p);
    parse_body(&p, &t->body, NULL, 0, NULL);
    *out = t;
    return 0;
}

void jtemplate_free(jtemplate *t) {
    if (!t) return;
    jarena_free(&t->arena);
    free(t);
}
