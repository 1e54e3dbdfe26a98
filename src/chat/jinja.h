/* jinja.h — the Jinja interpreter behind chat templates (internal to src/chat/).
 *
 * Contract: a template is compiled once (lexer + parser -> AST, in its own arena) and rendered
 * any number of times against a dict of variables. Semantics follow jinja2 as Hugging Face
 * transformers configures it: trim_blocks, lstrip_blocks, loopcontrols, tojson = json.dumps
 * (ensure_ascii=False), raise_exception(), strftime_now(), namespace(), undefined prints "".
 *
 * Memory: every value made while rendering lives in one arena freed when the render ends; the
 * arena has a byte cap, so no template can use more than the limits allow. Errors inside the
 * evaluator unwind with longjmp to the render entry (nothing to free but the arena), and carry
 * "line L, column C" of the template construct that failed. */
#ifndef TL_CHAT_JINJA_H
#define TL_CHAT_JINJA_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "tallow/chat.h"

/* ---- arena ---------------------------------------------------------------------------------- */
typedef struct jarena_blk jarena_blk;
typedef struct jarena {
    jarena_blk *head;
    size_t used, cap;      /* bytes taken from malloc so far, and the most allowed */
} jarena;

/* ---- values --------------------------------------------------------------------------------- */
typedef enum {
    JV_UNDEF = 0, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_DICT,
    JV_NS, JV_MACRO, JV_FUNC, JV_LOOP
} jv_type;

typedef struct jstr { size_t len; char s[]; } jstr;
typedef struct jlist jlist;
typedef struct jdict jdict;
typedef struct jfunc jfunc;
typedef struct jmacro jmacro;
typedef struct jloop jloop;

typedef struct jv {
    jv_type t;
    union {
        int b;
        int64_t i;
        double f;
        jstr *s;
        jlist *l;
        jdict *d;        /* JV_DICT and JV_NS */
        jfunc *fn;
        jmacro *m;
        jloop *loop;
        const char *undef; /* JV_UNDEF: why it is undefined ("'x' is undefined"), may be NULL */
    } u;
} jv;

struct jlist { size_t n, cap; int tuple; jv *v; };
struct jdict { size_t n, cap; jv *k; jv *v; };

/* ---- AST ------------------------------------------------------------------------------------ */
typedef enum {
    /* statements */
    N_TEXT, N_OUTPUT, N_IF, N_FOR, N_SET, N_SETBLOCK, N_MACRO, N_FILTERBLOCK, N_BREAK, N_CONTINUE,
    N_BLOCKPASS, /* {% generation %} body: rendered as is */
    /* expressions */
    E_CONST, E_NAME, E_ATTR, E_ITEM, E_SLICE, E_CALL, E_FILTER, E_TEST, E_NOT, E_NEG, E_POS,
    E_BIN, E_AND, E_OR, E_COND, E_LIST, E_TUPLE, E_DICT, E_CONCAT
} jnode_kind;

typedef enum {
    OP_ADD = 1, OP_SUB, OP_MUL, OP_DIV, OP_FDIV, OP_MOD, OP_POW,
    OP_EQ, OP_NE, OP_LT, OP_GT, OP_LE, OP_GE, OP_IN, OP_NOTIN
} jop;

typedef struct jnode jnode;
typedef struct jnodes { jnode **v; int n, cap; } jnodes;

struct jnode {
    jnode_kind kind;
    int op;              /* E_BIN: jop; E_TEST: 1 = negated; N_SET: 1 = namespace attribute */
    int line, col;
    jv val;              /* E_CONST */
    const char *name;    /* E_NAME, E_ATTR, E_FILTER, E_TEST, N_MACRO, N_SET attribute */
    jnode *a, *b, *c;    /* operands, conditions, slice parts */
    jnodes args;         /* call / filter / test positional args; list / tuple / dict items */
    const char **kwnames;/* keyword argument names (parallel to kwargs) */
    jnodes kwargs;
    const char **targets;/* N_FOR / N_SET / N_MACRO: names (loop vars, set targets, params) */
    int ntargets;
    jnodes defaults;     /* N_MACRO: default per param (NULL entry = none) */
    jnodes body, ebody;  /* statement bodies (else / elif chain in ebody) */
};

typedef struct jtemplate {
    jarena arena;
    jnodes body;
    int uses_caller;
} jtemplate;

/* ---- limits --------------------------------------------------------------------------------- */
typedef struct jlimits {
    int max_depth;           /* nested macro calls / expression depth */
    int64_t max_iterations;  /* loop iterations over one render */
    size_t max_output;       /* bytes of rendered text */
    size_t max_memory;       /* arena bytes of one render */
    int64_t now;             /* unix seconds for strftime_now; 0 = the real clock */
} jlimits;

void jlimits_default(jlimits *l);

/* Compile / render. vars is a JV_DICT (or JV_UNDEF for none) built in the render arena by
 * the caller through the render hooks below. */
int jtemplate_compile(jtemplate **out, const char *src, size_t len, const jlimits *lim,
                      tl_err *err);
void jtemplate_free(jtemplate *t);

/* A render context; opaque outside jinja_eval.c except for what the builders need. */
typedef struct jctx jctx;
typedef int (*jvars_fn)(jctx *c, void *user, jv *vars, tl_err *err);
/* Renders t with the variables build_vars makes (in the render's arena). */
int jtemplate_render(const jtemplate *t, const jlimits *lim, jvars_fn build_vars, void *user,
                     char **out, size_t *out_len, tl_err *err);

/* ---- value helpers (jinja_value.c) ---------------------------------------------------------- */
void *jarena_alloc(jarena *a, size_t n);    /* NULL when the cap would be passed */
void jarena_free(jarena *a);

_Noreturn void jctx_fail(jctx *c, int code, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
void *jctx_alloc(jctx *c, size_t n);         /* fails the render on the cap */

jv jv_undef(const char *why);
jv jv_none(void);
jv jv_bool(int b);
jv jv_int(int64_t i);
jv jv_float(double f);
jv jv_str(jctx *c, const char *s, size_t n);
jv jv_cstr(jctx *c, const char *s);
jv jv_list(jctx *c, size_t cap);
void jv_list_push(jctx *c, jv list, jv item);
jv jv_dict(jctx *c, size_t cap);
void jv_dict_set(jctx *c, jv dict, jv key, jv val);   /* replaces an equal key in place */
jv *jv_dict_get(jv dict, const char *key, size_t klen);
jv *jv_dict_getv(jv dict, jv key);
int jv_equal(jv a, jv b);
int jv_truthy(jv v);
const char *jv_type_name(jv v);

/* JSON text (jansson) -> value, in the render arena. what names the input for messages. */
int jv_from_json(jctx *c, const char *json, const char *what, jv *out, tl_err *err);

/* A growing byte buffer in the arena, used for output and conversions. */
typedef struct jbuf { jctx *c; char *p; size_t n, cap, limit; } jbuf;
void jbuf_init(jbuf *b, jctx *c, size_t limit);
void jbuf_put(jbuf *b, const char *s, size_t n);
void jbuf_putc(jbuf *b, char ch);
void jbuf_printf(jbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
jv jbuf_str(jbuf *b);

/* str(v) as Python prints it (repr inside containers); tojson as json.dumps. */
void jv_write_str(jbuf *b, jv v);
void jv_write_repr(jbuf *b, jv v);
/* json.dumps options: indent NULL = one line; separators NULL = Python's defaults (", " or ","
 * with indent, and ": "). Returns 0, or -1 with *bad set to a value JSON cannot hold. */
typedef struct jjson_opts {
    const char *indent, *item_sep, *key_sep;
    int sort_keys, ensure_ascii;
} jjson_opts;
int jv_write_json(jbuf *b, jv v, const jjson_opts *o, int depth, jv *bad);
jv jv_to_str(jctx *c, jv v);
void jv_format_float(char *buf, size_t cap, double f);   /* Python repr(float) */

/* UTF-8 code points */
size_t ju_len(const char *s, size_t n);
size_t ju_offset(const char *s, size_t n, size_t cp_index);  /* byte offset of code point */

#endif
