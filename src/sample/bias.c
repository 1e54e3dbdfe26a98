/* bias.c — logit bias from text, as users and clients write it: a JSON object {"id": bias, ...}
 * (OpenAI's form) or id:bias,id:bias. Hostile input: every entry is checked (id an integer in
 * [0, INT32_MAX], bias a finite number in [-100, 100], OpenAI's range) and errors name the entry
 * or the offset. Contract in include/tallow/sample.h. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "tallow/sample.h"

#define MAX_BIAS 100000 /* entries; far above any real use, bounds the allocation */

static int push(tl_logit_bias **v, int *n, long id, double b, tl_err *err) {
    if (*n >= MAX_BIAS) return tl_err_set(err, TL_ELIMIT, "logit bias: more than %d entries", MAX_BIAS);
    tl_logit_bias *nv = realloc(*v, (size_t)(*n + 1) * sizeof *nv);
    if (!nv) return tl_err_set(err, TL_ENOMEM, "logit bias: out of memory");
    nv[(*n)++] = (tl_logit_bias){(int32_t)id, (float)b};
    *v = nv;
    return 0;
}

int tl_logit_bias_parse(const char *s, tl_logit_bias **out, int *n_out, tl_err *err) {
    *out = NULL;
    *n_out = 0;
    tl_logit_bias *v = NULL;
    int n = 0, rc = 0;
    const char *p = s;
    while (*p == ' ') p++;
    if (*p == '{') {
        json_error_t je;
        json_t *o = json_loads(p, JSON_REJECT_DUPLICATES, &je);
        if (!o || !json_is_object(o)) {
            rc = tl_err_set(err, TL_EINVAL, "logit bias: not a JSON object (%s, column %d); "
                            "expected {\"123\": -5} or 123:-5,77:2",
                            o ? "another JSON value" : je.text, o ? 1 : je.column);
            json_decref(o);
            return rc;
        }
        const char *k;
        json_t *val;
        json_object_foreach(o, k, val) {
            char *end;
            errno = 0;
            long id = strtol(k, &end, 10);
            double b = json_is_number(val) ? json_number_value(val) : NAN;
            if (!*k || *end || errno || id < 0 || id > INT32_MAX || !(fabs(b) <= 100)) {
                rc = tl_err_set(err, TL_EINVAL, "logit bias: entry \"%.64s\" must map a token id "
                                "to a number in [-100, 100]", k);
                break;
            }
            if ((rc = push(&v, &n, id, b, err))) break;
        }
        json_decref(o);
    } else {
        if (!*p) rc = tl_err_set(err, TL_EINVAL, "logit bias: empty");
        while (!rc && *p) {
            const char *at = p;
            char *end;
            errno = 0;
            long id = strtol(p, &end, 10);
            if (end == p || errno || id < 0 || id > INT32_MAX || *end != ':') {
                rc = tl_err_set(err, TL_EINVAL, "logit bias: expected id:bias at offset %d",
                                (int)(at - s));
                break;
            }
            p = end + 1;
            errno = 0;
            double b = strtod(p, &end);
            if (end == p || errno || !(fabs(b) <= 100) || (*end && *end != ',')) {
                rc = tl_err_set(err, TL_EINVAL, "logit bias: the bias at offset %d must be a "
                                "number in [-100, 100]", (int)(p - s));
                break;
            }
            if ((rc = push(&v, &n, id, b, err))) break;
            p = end;
            if (*p == ',') {
                p++;
                if (!*p) rc = tl_err_set(err, TL_EINVAL, "logit bias: trailing comma");
            }
        }
    }
    if (rc) {
        free(v);
        return rc;
    }
    *out = v;
    *n_out = n;
    return 0;
}
