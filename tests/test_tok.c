/* test_tok.c — the tokenizer gives Hugging Face `tokenizers`' ids, id for id:
 *   - llama.cpp's vectors: ggml-vocab-llama-bpe with Llama 3.2, ggml-vocab-qwen2 with Qwen3;
 *   - the corpus goldens of tools/tok_goldens.py (tests/data/tok), with and without special
 *     tokens, and decode(encode(x)) == x wherever HF's own round trip is lossless;
 *   - Qwen3.5 (.cache/qwen35-tokenizer from tools/tok_fetch_qwen35.py) when present;
 *   - the streaming detokenizer, fed one id at a time, writes only valid UTF-8 and in total
 *     the same text as tl_tok_decode. */
#include <jansson.h>
#include <pthread.h>

#include "tallow.h"
#include "utf8_valid.h"
#include "test.h"

#include "core/core.h"

typedef struct corpus {
    char **text;
    size_t *len;
    int *is_bytes;
    int n;
} corpus;

static int load_corpus(corpus *c) {
    char *buf;
    size_t n;
    tl_err err = {0};
    if (tl_read_file("tests/data/tok/corpus.jsonl", 64u << 20, &buf, &n, &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return -1;
    }
    int lines = 0;
    for (size_t i = 0; i < n; i++) lines += buf[i] == '\n';
    c->text = calloc((size_t)lines, sizeof *c->text);
    c->len = calloc((size_t)lines, sizeof *c->len);
    c->is_bytes = calloc((size_t)lines, sizeof *c->is_bytes);
    char *p = buf;
    for (int i = 0; i < lines; i++) {
        char *nl = strchr(p, '\n');
        json_error_t je;
        json_t *o = json_loadb(p, (size_t)(nl - p), JSON_ALLOW_NUL, &je);
        json_t *t = json_object_get(o, "t"), *b = json_object_get(o, "b");
        if (t) {
            c->len[i] = json_string_length(t);
            c->text[i] = malloc(c->len[i] + 1);
            memcpy(c->text[i], json_string_value(t), c->len[i] + 1);
        } else {
            const char *h = json_string_value(b);
            c->len[i] = strlen(h) / 2;
            c->text[i] = malloc(c->len[i] + 1);
            for (size_t k = 0; k < c->len[i]; k++) {
                unsigned v;
                sscanf(h + 2 * k, "%2x", &v);
                c->text[i][k] = (char)v;
            }
            c->is_bytes[i] = 1;
        }
        json_decref(o);
        p = nl + 1;
    }
    c->n = lines;
    free(buf);
    return 0;
}

/* Parse one golden line: "= 1 2 3" / "~ 1 2 3". Returns the count; *flag the first char. */
static int parse_ids(const char *line, char *flag, int32_t *ids, int cap) {
    *flag = line[0];
    int n = 0;
    const char *p = line + 1;
    while (*p && *p != '\n') {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p) break;
        if (n < cap) ids[n] = (int32_t)v;
        n++;
        p = end;
    }
    return n;
}

/* Feed ids one at a time; every piece must be valid UTF-8 and the whole must equal decode. */
static void check_stream(const tl_tokenizer *tok, const int32_t *ids, size_t n, int skip, int line) {
    char *whole;
    size_t wl;
    tl_err err = {0};
    if (tl_tok_decode(tok, ids, n, skip, &whole, &wl, &err)) {
        CHECKF(0, "decode failed: %s", err.msg);
        return;
    }
    size_t cap = tl_tok_stream_cap(tok);
    char *piece = malloc(cap);
    char *acc = malloc(wl + 16);
    size_t al = 0, pl;
    int ok = 1;
    tl_tok_stream st;
    tl_tok_stream_init(&st, tok, skip);
    for (size_t i = 0; i < n && ok; i++) {
        if (tl_tok_stream_feed(&st, ids[i], piece, cap, &pl, &err) || !utf8_valid(piece, pl) ||
            al + pl > wl) {
            ok = 0;
            break;
        }
        memcpy(acc + al, piece, pl);
        al += pl;
    }
    if (ok && !tl_tok_stream_flush(&st, piece, cap, &pl) && utf8_valid(piece, pl) && al + pl <= wl) {
        memcpy(acc + al, piece, pl);
        al += pl;
    } else
        ok = 0;
    CHECKF(ok && al == wl && !memcmp(acc, whole, wl), "stream != decode for corpus line %d", line);
    free(piece);
    free(acc);
    free(whole);
}

/* Compare every corpus case with a golden ids file. Returns 0, or 77 when the file is absent. */
static int check_goldens(const tl_tokenizer *tok, const corpus *c, const char *path, unsigned flags,
                         int roundtrip, int max_cases) {
    FILE *f = fopen(path, "r");
    if (!f) return 77;
    static char line[1 << 20];
    static int32_t want[1 << 17];
    int i = 0, bad = 0;
    while (fgets(line, sizeof line, f) && i < c->n && (max_cases <= 0 || i < max_cases)) {
        char flag;
        int n = parse_ids(line, &flag, want, (int)TL_ARRAY_LEN(want));
        int32_t *ids;
        size_t nid;
        tl_err err = {0};
        int rc = tl_tok_encode(tok, c->text[i], c->len[i], flags, &ids, &nid, &err);
        int same = !rc && nid == (size_t)n && !memcmp(ids, want, nid * sizeof *ids);
        if (!same && bad++ < 5) {
            fprintf(stderr, "%s line %d: %s; got %zu ids, want %d:", path, i + 1, rc ? err.msg : "ids differ",
                    rc ? 0 : nid, n);
            for (size_t k = 0; !rc && k < nid && k < 12; k++) fprintf(stderr, " %d/%d", ids[k], k < (size_t)n ? want[k] : -1);
            fprintf(stderr, "\n");
        }
        if (!rc && roundtrip) {
            char *back;
            size_t bl;
            if (flag == '=' && !c->is_bytes[i]) {
                int ok = !tl_tok_decode(tok, ids, nid, 0, &back, &bl, &err);
                CHECKF(ok && bl == c->len[i] && !memcmp(back, c->text[i], bl),
                       "%s line %d: decode(encode(x)) != x", path, i + 1);
                if (ok) free(back);
            }
            check_stream(tok, ids, nid, 0, i + 1);
            if (i % 7 == 0) check_stream(tok, ids, nid, 1, i + 1);
        }
        if (!rc) free(ids);
        i++;
    }
    fclose(f);
    CHECKF(bad == 0, "%s: %d of %d cases differ from Hugging Face", path, bad, i);
    CHECKF(i >= 200 || max_cases > 0, "%s: only %d cases", path, i);
    printf("%s: %d/%d cases identical\n", path, i - bad, i);
    return 0;
}

/* llama.cpp vectors: cases separated by "\n__ggml_vocab_test__\n", ids one line per case. */
static void check_vectors(const tl_tokenizer *tok, const char *dir, const char *name, int want_cases) {
    char pin[4096], pout[4096];
    snprintf(pin, sizeof pin, "%s/tokenizer-vectors/%s.inp", dir, name);
    snprintf(pout, sizeof pout, "%s/tokenizer-vectors/%s.out", dir, name);
    char *in, *out;
    size_t nin, nout;
    tl_err err = {0};
    if (tl_read_file(pin, 1 << 20, &in, &nin, &err) || tl_read_file(pout, 1 << 20, &out, &nout, &err)) {
        CHECKF(0, "%s", err.msg);
        return;
    }
    static const char sep[] = "\n__ggml_vocab_test__\n";
    char *p = in, *q = out;
    int cases = 0, ok = 0;
    for (;;) {
        char *e = strstr(p, sep);
        if (!e) break;
        char *nl = strchr(q, '\n');
        if (!nl) nl = q + strlen(q);
        int32_t want[4096];
        int n = 0;
        for (char *r = q; r < nl;) {
            char *end;
            long v = strtol(r, &end, 10);
            if (end == r) break;
            want[n++] = (int32_t)v;
            r = end;
        }
        int32_t *ids;
        size_t nid;
        if (!tl_tok_encode(tok, p, (size_t)(e - p), 0, &ids, &nid, &err)) {
            if (nid == (size_t)n && !memcmp(ids, want, nid * sizeof *ids)) ok++;
            else fprintf(stderr, "%s case %d differs\n", name, cases);
            free(ids);
        }
        cases++;
        p = e + sizeof sep - 1;
        q = *nl ? nl + 1 : nl;
    }
    CHECKF(cases == want_cases && ok == cases, "%s: %d/%d vectors identical (want %d)", name, ok,
           cases, want_cases);
    printf("%s: %d/%d vectors identical\n", name, ok, cases);
    free(in);
    free(out);
}

/* Variants of a small tokenizer (tests/data/tok/variants.json patches its top-level keys):
 * added-token flags, Split behaviours, String patterns, plain ByteLevel, templates, NFKC. */
static void check_variants(const corpus *c) {
    json_error_t je;
    json_t *base = json_load_file("tests/data/tok/small-tokenizer.json", JSON_ALLOW_NUL, &je);
    json_t *vars = json_load_file("tests/data/tok/variants.json", 0, &je);
    FILE *f = fopen("tests/data/tok/ids-variants.txt", "r");
    CHECK(base && vars && f);
    if (!base || !vars || !f) return;
    size_t nv = json_array_size(vars);
    tl_tokenizer **toks = calloc(nv, sizeof *toks);
    for (size_t v = 0; v < nv; v++) {
        json_t *root = json_deep_copy(base), *patch = json_object_get(json_array_get(vars, v), "patch");
        const char *key;
        json_t *val;
        json_object_foreach(patch, key, val) json_object_set(root, key, val);
        char *text = json_dumps(root, JSON_COMPACT);
        tl_err err = {0};
        const char *name = json_string_value(json_object_get(json_array_get(vars, v), "name"));
        CHECKF(!tl_tok_load_mem(text, strlen(text), NULL, 0, name, &toks[v], &err), "%s: %s", name, err.msg);
        free(text);
        json_decref(root);
    }
    static char line[1 << 18];
    int cases = 0, bad = 0;
    while (fgets(line, sizeof line, f)) {
        char *p = line, *end;
        long vi = strtol(p, &end, 10), ci = strtol(end, &p, 10);
        while (*p == ' ') p++;
        static int32_t want[1 << 16];
        char flag;
        int n = parse_ids(p, &flag, want, (int)TL_ARRAY_LEN(want));
        if (vi < 0 || (size_t)vi >= nv || !toks[vi] || ci < 0 || ci >= c->n) {
            CHECKF(0, "ids-variants.txt: bad line %d", cases + 1);
            break;
        }
        int32_t *ids;
        size_t nid;
        tl_err err = {0};
        int rc = tl_tok_encode(toks[vi], c->text[ci], c->len[ci], TL_TOK_ADD_SPECIAL, &ids, &nid, &err);
        int same = !rc && nid == (size_t)n && !memcmp(ids, want, nid * sizeof *ids);
        if (!same && bad++ < 8)
            fprintf(stderr, "variant %s case %ld differs (%zu ids, want %d)\n",
                    json_string_value(json_object_get(json_array_get(vars, vi), "name")), ci + 1,
                    rc ? 0 : nid, n);
        if (!rc && flag == '=' && !c->is_bytes[ci]) {
            char *back;
            size_t bl;
            CHECK(!tl_tok_decode(toks[vi], ids, nid, 0, &back, &bl, &err) && bl == c->len[ci] &&
                  !memcmp(back, c->text[ci], bl));
            free(back);
        }
        if (!rc) free(ids);
        cases++;
    }
    CHECKF(bad == 0 && cases > 500, "variants: %d of %d cases differ from Hugging Face", bad, cases);
    printf("variants: %d/%d cases identical over %zu tokenizer variants\n", cases - bad, cases, nv);
    for (size_t v = 0; v < nv; v++) tl_tok_free(toks[v]);
    free(toks);
    fclose(f);
    json_decref(base);
    json_decref(vars);
}

/* Random single-byte tokens make every kind of broken UTF-8 (cut, overlong, surrogate, stray
 * continuation): the stream must still write only valid UTF-8 and agree with decode. */
static void check_stream_bytes(const tl_tokenizer *tok) {
    int32_t byte_tok[256];
    for (int b = 0; b < 256; b++) {
        char ch = (char)b;
        byte_tok[b] = tl_tok_token_id(tok, &ch, 1);
        CHECK(byte_tok[b] >= 0);
    }
    uint32_t seed = 12345;
    int32_t ids[64];
    for (int r = 0; r < 3000; r++) {
        int n = 1 + r % 64;
        for (int i = 0; i < n; i++) {
            seed = seed * 1664525u + 1013904223u;
            /* mostly high bytes, where UTF-8 can break */
            int b = (seed >> 24) % 5 == 0 ? (int)((seed >> 8) & 0x7f) : 0x80 + (int)((seed >> 8) & 0x7f);
            ids[i] = byte_tok[b];
        }
        check_stream(tok, ids, (size_t)n, 0, -r);
    }
}

/* Several threads encoding with one tokenizer (the server does this) agree with one thread. */
typedef struct par_job {
    const tl_tokenizer *tok;
    const corpus *c;
    int first, bad;
} par_job;

static void *par_run(void *arg) {
    par_job *j = arg;
    for (int r = 0; r < 3; r++)
        for (int i = j->first; i < j->c->n; i += 3) {
            int32_t *a, *b;
            size_t na, nb;
            tl_err err = {0};
            int ra = tl_tok_encode(j->tok, j->c->text[i], j->c->len[i], 0, &a, &na, &err);
            int rb = tl_tok_encode(j->tok, j->c->text[i], j->c->len[i], 0, &b, &nb, &err);
            if (ra || rb || na != nb || memcmp(a, b, na * sizeof *a)) j->bad++;
            if (!ra) free(a);
            if (!rb) free(b);
        }
    return NULL;
}

static void check_threads(const tl_tokenizer *tok, const corpus *c) {
    pthread_t th[4];
    par_job jobs[4];
    for (int i = 0; i < 4; i++) {
        jobs[i] = (par_job){tok, c, i % 3, 0};
        pthread_create(&th[i], NULL, par_run, &jobs[i]);
    }
    int bad = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        bad += jobs[i].bad;
    }
    CHECKF(bad == 0, "%d encodes differ when run from 4 threads at once", bad);
}

/* llama.cpp's Qwen3.5 vectors (50) were made by a tokenizer whose ids for these inputs are the
 * Qwen2/Qwen3 ones; what Qwen3.5 changes is the rules: its regex adds \p{M} to the letter runs and
 * there is no NFC normalizer. Those rules on Qwen3's vocabulary must give all 50. */
static void check_qwen35_rules(const char *dir) {
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizers/qwen3/tokenizer.json", dir);
    json_error_t je;
    json_t *root = json_load_file(path, JSON_ALLOW_NUL, &je);
    json_t *split = json_array_get(json_object_get(json_object_get(root, "pre_tokenizer"), "pretokenizers"), 0);
    CHECK(root && split);
    if (!root || !split) return;
    static const char q35[] = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+|\\p{N}| "
                              "?[^\\s\\p{L}\\p{M}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
    json_object_set_new(json_object_get(split, "pattern"), "Regex", json_string(q35));
    json_object_set_new(root, "normalizer", json_null());
    char *text = json_dumps(root, JSON_COMPACT);
    tl_tokenizer *tok = NULL;
    tl_err err = {0};
    CHECKF(!tl_tok_load_mem(text, strlen(text), NULL, 0, "qwen3 with Qwen3.5 rules", &tok, &err), "%s", err.msg);
    if (tok) check_vectors(tok, dir, "ggml-vocab-qwen35.gguf", 50);
    tl_tok_free(tok);
    free(text);
    json_decref(root);
}

static tl_tokenizer *load(const char *path) {
    tl_tokenizer *tok = NULL;
    tl_err err = {0};
    uint64_t t0 = tl_now_ns();
    if (tl_tok_load(path, &tok, &err)) {
        CHECKF(0, "load %s: %s", path, err.msg);
        return NULL;
    }
    printf("loaded %s in %.3f s\n", path, (double)(tl_now_ns() - t0) / 1e9);
    return tok;
}

int main(void) {
    const char *dir = test_shared_dir();
    if (!dir) return test_skip("../shared/fixtures not present");
    corpus c;
    if (load_corpus(&c)) return test_skip("tests/data/tok/corpus.jsonl missing");
    CHECK(c.n >= 2000);
    char path[4096];

    snprintf(path, sizeof path, "%s/tokenizers/llama-3.2/tokenizer.json", dir);
    tl_tokenizer *llama = load(path);
    if (llama) {
        check_vectors(llama, dir, "ggml-vocab-llama-bpe.gguf", 46);
        check_goldens(llama, &c, "tests/data/tok/ids-llama32.txt", 0, 1, 0);
        check_goldens(llama, &c, "tests/data/tok/ids-llama32-special.txt", TL_TOK_ADD_SPECIAL, 0, 0);
        CHECK(tl_tok_bos_id(llama) == 128000);
        CHECK_STREQ(tl_tok_bos(llama), "<|begin_of_text|>");
        CHECK(tl_tok_eos_id(llama) == 128009);
        CHECK(tl_tok_chat_template(llama) && strstr(tl_tok_chat_template(llama), "start_header_id"));
        CHECK(tl_tok_is_special(llama, 128000) && !tl_tok_is_special(llama, 1000));
        CHECK(tl_tok_vocab_size(llama) == 128256);
        tl_tok_free(llama);
    }

    snprintf(path, sizeof path, "%s/tokenizers/qwen3/tokenizer.json", dir);
    tl_tokenizer *qwen = load(path);
    if (qwen) {
        check_vectors(qwen, dir, "ggml-vocab-qwen2.gguf", 46);
        check_goldens(qwen, &c, "tests/data/tok/ids-qwen3.txt", 0, 1, 0);
        check_goldens(qwen, &c, "tests/data/tok/ids-qwen3-special.txt", TL_TOK_ADD_SPECIAL, 0, 0);
        check_threads(qwen, &c);
        check_stream_bytes(qwen);
        CHECK(tl_tok_eos_id(qwen) == 151645);
        CHECK(tl_tok_bos(qwen) == NULL && tl_tok_bos_id(qwen) == -1);
        CHECK(tl_tok_pad_id(qwen) == 151643);
        CHECK(tl_tok_add_bos(qwen) == 0);
        CHECK(tl_tok_token_id(qwen, "<think>", 7) == 151667 && !tl_tok_is_special(qwen, 151667));
        CHECK(tl_tok_chat_template(qwen) && strstr(tl_tok_chat_template(qwen), "im_start"));
        /* skip_special drops <|im_start|> but keeps <think> (a normal added token). */
        int32_t ids[] = {151644, 872, 151667, 151645};
        char *s;
        tl_err err = {0};
        CHECK(!tl_tok_decode(qwen, ids, 4, 1, &s, NULL, &err));
        if (!err.code) {
            CHECK_STREQ(s, "user<think>");
            free(s);
        }
        /* Ids the vocabulary lacks are skipped, like HF. */
        int32_t odd[] = {-5, 872, 9999999};
        CHECK(!tl_tok_decode(qwen, odd, 3, 0, &s, NULL, &err));
        if (!err.code) {
            CHECK_STREQ(s, "user");
            free(s);
        }
        /* A character cut across tokens is held back, then written whole. */
        int32_t cut[2];
        int32_t *enc;
        size_t ne;
        CHECK(!tl_tok_encode(qwen, "\xe4\xb8\xad", 3, 0, &enc, &ne, &err)); /* 中 */
        if (!err.code) free(enc);
        cut[0] = tl_tok_token_id(qwen, "\xe4", 1);
        cut[1] = tl_tok_token_id(qwen, "\xb8\xad", 2);
        if (cut[1] < 0) cut[1] = tl_tok_token_id(qwen, "\xb8", 1);
        tl_tok_stream st;
        tl_tok_stream_init(&st, qwen, 0);
        size_t cap = tl_tok_stream_cap(qwen), n;
        char *buf = malloc(cap);
        CHECK(!tl_tok_stream_feed(&st, cut[0], buf, cap, &n, &err) && n == 0);
        CHECK(!tl_tok_stream_flush(&st, buf, cap, &n) && n == 3 && !memcmp(buf, "\xef\xbf\xbd", 3));
        CHECK(tl_tok_stream_feed(&st, 872, buf, 4, &n, &err) == -TL_EINVAL);
        free(buf);
        tl_tok_free(qwen);
    }

    check_variants(&c);
    check_qwen35_rules(dir);

    tl_tokenizer *q35 = NULL;
    tl_err err = {0};
    if (tl_file_exists(".cache/qwen35-tokenizer/tokenizer.json") &&
        !tl_tok_load(".cache/qwen35-tokenizer/tokenizer.json", &q35, &err)) {
        check_goldens(q35, &c, "tests/data/tok/ids-qwen35.txt", 0, 1, 600);
        tl_tok_free(q35);
    } else {
        printf("Qwen3.5 tokenizer absent (run tools/tok_fetch_qwen35.py): skipped that part\n");
    }
    for (int i = 0; i < c.n; i++) free(c.text[i]);
    free(c.text);
    free(c.len);
    free(c.is_bytes);
    return test_done();
}
