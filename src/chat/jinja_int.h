/* jinja_int.h — the evaluator's private structures, shared by jinja_eval.c (statements and
 * expressions) and jinja_filters.c (filters, tests, methods). */
#ifndef TL_CHAT_JINJA_INT_H
#define TL_CHAT_JINJA_INT_H

#include "chat/jinja.h"

typedef struct jframe {
    struct jframe *parent;
    jv vars; /* JV_DICT name -> value */
} jframe;

enum { FN_GLOBAL = 1, FN_METHOD };
struct jfunc {
    int kind;
    const char *name;
    jv self; /* FN_METHOD: the object (string, dict, list, loop) */
};

struct jmacro {
    const jnode *def;
    jframe *closure;
};

struct jloop {
    jv items;  /* JV_LIST being iterated */
    size_t idx;
    jv last_changed;
    int has_last_changed;
};

enum { CTL_BREAK = 1, CTL_CONTINUE = 2 };

struct jctx {
    jarena arena;
    jlimits lim;
    tl_err *err;
    jmp_buf jb;
    int depth;
    int64_t iters;
    int ctl;      /* pending break / continue */
    int raised;   /* the failure came from raise_exception */
    int line, col;
    void *pending_json; /* a jansson value being converted (freed if the render fails) */
};

typedef struct jargs {
    int n, nkw;
    jv *v;
    const char **kw;
    jv *kv;
} jargs;

jv jargs_get(jctx *c, const jargs *a, int i, const char *name, jv def);
void jctx_tick(jctx *c, int64_t n);
jv jv_undef_fmt(jctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
_Noreturn void jctx_fail_undef(jctx *c, jv u);
jv jv_getattr(jctx *c, jv obj, const char *name);
jv jv_getitem(jctx *c, jv obj, jv key);
jv jv_iter_list(jctx *c, jv v);
int jv_cmp(jctx *c, jv a, jv b, int op);
int jv_contains(jctx *c, jv hay, jv needle);
jv jv_binop(jctx *c, int op, jv a, jv b);
jv jv_call(jctx *c, jv callee, const jargs *a);

/* jinja_filters.c */
jv jv_apply_filter(jctx *c, const char *name, jv in, const jargs *a);
int jv_apply_test(jctx *c, const char *name, jv in, const jargs *a);
jv jv_call_method(jctx *c, jv self, const char *name, const jargs *a);

#endif
