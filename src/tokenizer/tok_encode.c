/* tok_encode.c — text -> ids, in the order Hugging Face `tokenizers` does it:
 *
 *   input bytes --(invalid UTF-8 -> U+FFFD)--> added tokens split out (leftmost-longest;
 *   lstrip / rstrip / single_word) --> each gap: normalizer (utf8proc) --> added tokens
 *   marked "normalized" split out --> pre-tokenizer steps (PCRE2 Split, ByteLevel prefix
 *   space + GPT-2 regex), each step applied to every piece the previous one produced -->
 *   BPE on each piece (merge the lowest-ranked adjacent pair, leftmost first, until none
 *   merges; a cache keeps recent pieces) --> post-processor template ids around the result.
 *
 * Contract: ids identical to HF for the same tokenizer.json. Pieces longer than
 * TOK_MAX_PIECE bytes fail with TL_ELIMIT rather than use unbounded memory. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer/tok_internal.h"

typedef struct seg {
    size_t s, e;
    int match;
} seg;

/* BPE heap entry: a candidate merge of the symbol at pos with its right neighbour. */
typedef struct bpe_cand {
    uint32_t rank;
    int32_t pos;
    int32_t merged;
} bpe_cand;

typedef struct bpe_sym {
    int32_t id;
    int32_t prev, next; /* -1 at the ends */
    int32_t len;        /* 0 = merged into its left neighbour */
    uint32_t rank;      /* short words: rank of the pair with next, UINT32_MAX = none */
    int32_t merged;     /* and the id it makes */
} bpe_sym;

/* One encode call's working state. */
typedef struct enc_ctx {
    const tl_tokenizer *tok;
    tok_cache *cache;     /* NULL when another thread holds it */
    int32_t *ids;
    size_t n, cap;
    tl_err *err;
    pcre2_match_data *md;
    seg *segs[TOK_MAX_STEPS];
    size_t seg_cap[TOK_MAX_STEPS];
    bpe_sym *sym;
    size_t sym_cap;
    bpe_cand *heap;
    size_t heap_cap;
} enc_ctx;

static int push_ids(enc_ctx *c, const int32_t *ids, size_t k) {
    if (c->n + k > c->cap) {
        size_t cap = c->cap ? c->cap : 256;
        while (cap < c->n + k) cap *= 2;
        int32_t *p = realloc(c->ids, cap * sizeof *p);
        if (!p) return tl_err_set(c->err, TL_ENOMEM, "tokenizer: out of memory for %zu ids", cap);
        c->ids = p, c->cap = cap;
    }
    memcpy(c->ids + c->n, ids, k * sizeof *ids);
    c->n += k;
    return 0;
}

/* ---- cache ---- */
#define CACHE_SLOTS (1u << 17)
#define CACHE_MAX_KEY 64

void tok_cache_free(tok_cache *c) {
    free(c->slots);
    free(c->keys);
    free(c->ids);
    memset(c, 0, sizeof *c);
}

static const tok_cache_entry *cache_get(const tok_cache *c, const char *s, size_t n, uint64_t h) {
    if (!c->slots) return NULL;
    uint32_t mask = c->cap - 1;
    for (uint32_t i = (uint32_t)h & mask;; i = (i + 1) & mask) {
        const tok_cache_entry *e = &c->slots[i];
        if (!e->hash) return NULL;
        if (e->hash == h && e->key_len == n && !memcmp(c->keys + e->key_off, s, n)) return e;
    }
}

/* The cache starts small (a tokenizer used once should not pay for a big one) and doubles up
 * to CACHE_SLOTS; when it is full at that size it starts over. */
static void cache_put(tok_cache *c, const char *s, size_t n, uint64_t h, const int32_t *ids, size_t k) {
    if (!c->slots || c->used * 2 >= c->cap || c->keys_len + n > c->keys_cap || c->ids_len + k > c->ids_cap) {
        uint32_t cap = !c->slots ? 1u << 10 : c->cap < CACHE_SLOTS ? c->cap * 2 : c->cap;
        if (cap != c->cap) {
            tok_cache_free(c);
            c->slots = malloc((size_t)cap * sizeof *c->slots);
            c->keys = malloc((size_t)cap * 16);
            c->ids = malloc((size_t)cap * 16);
            if (!c->slots || !c->keys || !c->ids) {
                tok_cache_free(c);
                return; /* the cache is an optimisation: run without it */
            }
            c->cap = cap, c->keys_cap = cap * 16, c->ids_cap = cap * 4;
        }
        memset(c->slots, 0, (size_t)c->cap * sizeof *c->slots);
        c->used = c->keys_len = c->ids_len = 0;
        if (n > c->keys_cap || k > c->ids_cap) return;
    }
    uint32_t mask = c->cap - 1, i = (uint32_t)h & mask;
    while (c->slots[i].hash) i = (i + 1) & mask;
    tok_cache_entry *e = &c->slots[i];
    memcpy(c->keys + c->keys_len, s, n);
    memcpy(c->ids + c->ids_len, ids, k * sizeof *ids);
    *e = (tok_cache_entry){.hash = h, .key_off = c->keys_len, .ids_off = c->ids_len,
                           .key_len = (uint16_t)n, .n_ids = (uint16_t)k};
    c->keys_len += (uint32_t)n, c->ids_len += (uint32_t)k, c->used++;
}

/* ---- BPE ---- */
static void heap_push(bpe_cand *h, size_t *n, bpe_cand v) {
    size_t i = (*n)++;
    while (i) {
        size_t p = (i - 1) / 2;
        if (h[p].rank < v.rank || (h[p].rank == v.rank && h[p].pos < v.pos)) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}

static bpe_cand heap_pop(bpe_cand *h, size_t *n) {
    bpe_cand top = h[0], v = h[--*n];
    size_t i = 0, m = *n;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, s = i;
        bpe_cand *best = &v;
        if (l < m && (h[l].rank < best->rank || (h[l].rank == best->rank && h[l].pos < best->pos)))
            s = l, best = &h[l];
        if (r < m && (h[r].rank < best->rank || (h[r].rank == best->rank && h[r].pos < best->pos)))
            s = r, best = &h[r];
        if (s == i) break;
        h[i] = h[s];
        i = s;
    }
    if (m) h[i] = v;
    return top;
}

/* Merge the n symbols in c->sym[0..n) (a linked list) and append the surviving ids. */
static int bpe_merge(enc_ctx *c, size_t n) {
    const tl_tokenizer *t = c->tok;
    bpe_sym *sym = c->sym;
    if (n <= 48) {
        /* Short words: keep each pair's rank beside it and scan for the lowest each round
         * (leftmost on ties: the same result as the heap). */
        for (int32_t i = 0; i >= 0; i = sym[i].next)
            if (sym[i].next < 0 || !tok_merge_find(t, sym[i].id, sym[sym[i].next].id, &sym[i].rank,
                                                   &sym[i].merged))
                sym[i].rank = UINT32_MAX;
        for (;;) {
            uint32_t best = UINT32_MAX;
            int32_t at = -1;
            for (int32_t i = 0; i >= 0; i = sym[i].next)
                if (sym[i].rank < best) best = sym[i].rank, at = i;
            if (at < 0) break;
            int32_t nx = sym[at].next;
            sym[at].id = sym[at].merged;
            sym[at].len += sym[nx].len;
            sym[at].next = sym[nx].next;
            if (sym[nx].next >= 0) sym[sym[nx].next].prev = at;
            sym[nx].len = 0;
            int32_t fix[2] = {sym[at].prev, at};
            for (int k = 0; k < 2; k++) {
                int32_t i = fix[k];
                if (i < 0) continue;
                if (sym[i].next < 0 || !tok_merge_find(t, sym[i].id, sym[sym[i].next].id, &sym[i].rank,
                                                       &sym[i].merged))
                    sym[i].rank = UINT32_MAX;
            }
        }
    } else {
        /* Each merge pops one candidate and pushes at most two: 2n entries always suffice. */
        if (c->heap_cap < 2 * n) {
            free(c->heap);
            c->heap = malloc(2 * n * sizeof *c->heap);
            if (!c->heap) {
                c->heap_cap = 0;
                return tl_err_set(c->err, TL_ENOMEM, "tokenizer: out of memory (BPE heap)");
            }
            c->heap_cap = 2 * n;
        }
        size_t hn = 0;
        uint32_t r;
        int32_t m;
        for (size_t i = 0; i + 1 < n; i++)
            if (tok_merge_find(t, sym[i].id, sym[i + 1].id, &r, &m))
                heap_push(c->heap, &hn, (bpe_cand){r, (int32_t)i, m});
        while (hn) {
            bpe_cand top = heap_pop(c->heap, &hn);
            bpe_sym *a = &sym[top.pos];
            if (a->len == 0 || a->next < 0) continue;
            bpe_sym *b = &sym[a->next];
            if (!tok_merge_find(t, a->id, b->id, &r, &m) || m != top.merged) continue; /* stale */
            int32_t bn = b->next;
            a->id = m;
            a->len += b->len;
            a->next = bn;
            b->len = 0;
            if (bn >= 0) sym[bn].prev = top.pos;
            TL_ALWAYS(hn + 2 <= c->heap_cap);
            if (a->prev >= 0 && tok_merge_find(t, sym[a->prev].id, a->id, &r, &m))
                heap_push(c->heap, &hn, (bpe_cand){r, a->prev, m});
            if (bn >= 0 && tok_merge_find(t, a->id, sym[bn].id, &r, &m))
                heap_push(c->heap, &hn, (bpe_cand){r, top.pos, m});
        }
    }
    for (int32_t i = 0; i >= 0; i = sym[i].next) {
        int rc = push_ids(c, &sym[i].id, 1);
        if (rc) return rc;
    }
    return 0;
}

/* One pre-token -> ids. */
static int bpe_piece(enc_ctx *c, const char *s, size_t n) {
    const tl_tokenizer *t = c->tok;
    if (n == 0) return 0;
    if (n > TOK_MAX_PIECE)
        return tl_err_set(c->err, TL_ELIMIT, "tokenizer: a single pre-token of %zu bytes is over the "
                          "limit of %u bytes", n, TOK_MAX_PIECE);
    if (n == 1 && t->byte_id[(uint8_t)s[0]] >= 0) return push_ids(c, &t->byte_id[(uint8_t)s[0]], 1);
    uint64_t h = 0;
    if (c->cache && n <= CACHE_MAX_KEY) {
        h = tok_hash(s, n);
        const tok_cache_entry *e = cache_get(c->cache, s, n, h);
        if (e) return push_ids(c, c->cache->ids + e->ids_off, e->n_ids);
    }
    if (t->ignore_merges) {
        int32_t id = tok_vocab_find(t, s, n);
        if (id >= 0) {
            if (c->cache && n <= CACHE_MAX_KEY) cache_put(c->cache, s, n, h, &id, 1);
            return push_ids(c, &id, 1);
        }
    }
    if (c->sym_cap < n) {
        free(c->sym);
        c->sym = malloc(n * sizeof *c->sym);
        if (!c->sym) {
            c->sym_cap = 0;
            return tl_err_set(c->err, TL_ENOMEM, "tokenizer: out of memory (BPE of %zu bytes)", n);
        }
        c->sym_cap = n;
    }
    /* One symbol per byte; a byte with no token is dropped (HF without unk_token does so). */
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int32_t id = t->byte_id[(uint8_t)s[i]];
        if (id < 0) continue;
        c->sym[k] = (bpe_sym){id, (int32_t)k - 1, (int32_t)k + 1, 1, UINT32_MAX, -1};
        k++;
    }
    if (!k) return 0;
    c->sym[k - 1].next = -1;
    size_t before = c->n;
    int rc = bpe_merge(c, k);
    if (rc) return rc;
    if (c->cache && n <= CACHE_MAX_KEY && c->n - before < 65536)
        cache_put(c->cache, s, n, h, c->ids + before, c->n - before);
    return 0;
}

/* ---- pre-tokenizer ---- */
static int pre_run(enc_ctx *c, int step, const char *s, size_t n);

static int regex_segments(enc_ctx *c, const tok_pre *p, int step, const char *s, size_t n,
                          size_t *nseg) {
    size_t k = 0, prev = 0, at = 0;
    for (;;) {
        int rc;
        if (at > n) break;
        if (p->jit)
            rc = pcre2_jit_match(p->re, (PCRE2_SPTR)s, n, at, 0, c->md, NULL);
        else
            rc = pcre2_match(p->re, (PCRE2_SPTR)s, n, at, PCRE2_NO_UTF_CHECK, c->md, NULL);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return tl_err_set(c->err, TL_ERUNTIME, "tokenizer: pre_tokenizer step %d: regex match "
                              "failed: %s", step, (char *)msg);
        }
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(c->md);
        size_t ms = ov[0], me = ov[1];
        if (k + 2 > c->seg_cap[step]) {
            size_t cap = c->seg_cap[step] ? c->seg_cap[step] * 2 : 64;
            seg *ns = realloc(c->segs[step], cap * sizeof *ns);
            if (!ns) return tl_err_set(c->err, TL_ENOMEM, "tokenizer: out of memory (splits)");
            c->segs[step] = ns, c->seg_cap[step] = cap;
        }
        if (me > ms) {
            if (ms != prev) c->segs[step][k++] = (seg){prev, ms, 0};
            c->segs[step][k++] = (seg){ms, me, 1};
            prev = me;
            at = me;
        } else {
            /* Empty match: step one character on. */
            if (at >= n) break;
            int l = tok_utf8_seq((const uint8_t *)s + at, n - at);
            at += l > 0 ? (size_t)l : 1;
        }
    }
    if (k + 1 > c->seg_cap[step]) {
        size_t cap = c->seg_cap[step] ? c->seg_cap[step] * 2 : 64;
        seg *ns = realloc(c->segs[step], cap * sizeof *ns);
        if (!ns) return tl_err_set(c->err, TL_ENOMEM, "tokenizer: out of memory (splits)");
        c->segs[step] = ns, c->seg_cap[step] = cap;
    }
    if (prev != n) c->segs[step][k++] = (seg){prev, n, 0};
    *nseg = k;
    return 0;
}

/* HF SplitDelimiterBehavior over the segments, then the next step on each result. */
static int split_apply(enc_ctx *c, const tok_pre *p, int step, const char *s, size_t n) {
    size_t k;
    int rc = regex_segments(c, p, step, s, n, &k);
    if (rc) return rc;
    seg *g = c->segs[step];
    if (p->invert)
        for (size_t i = 0; i < k; i++) g[i].match = !g[i].match;
    size_t out = 0;
    int prev_match = 0;
    switch (p->behavior) {
    case TOK_SPLIT_ISOLATED: out = k; break;
    case TOK_SPLIT_REMOVED:
        for (size_t i = 0; i < k; i++)
            if (!g[i].match) g[out++] = g[i];
        break;
    case TOK_SPLIT_MERGED_PREV: /* out <= i: read each entry before it may be overwritten */
        for (size_t i = 0; i < k; i++) {
            seg cur = g[i];
            if (cur.match && !prev_match && out) g[out - 1].e = cur.e;
            else g[out++] = (seg){cur.s, cur.e, 0};
            prev_match = cur.match;
        }
        break;
    case TOK_SPLIT_MERGED_NEXT:
        /* Walk backwards, merging a match into the segment after it; then restore order. */
        for (size_t j = k; j-- > 0;) {
            seg cur = g[j];
            if (cur.match && !prev_match && out) g[k - out].s = cur.s;
            else {
                out++;
                g[k - out] = (seg){cur.s, cur.e, 0};
            }
            prev_match = cur.match;
        }
        memmove(g, g + (k - out), out * sizeof *g);
        break;
    case TOK_SPLIT_CONTIGUOUS:
        for (size_t i = 0; i < k; i++) {
            seg cur = g[i];
            if (cur.match == prev_match && out) g[out - 1].e = cur.e;
            else g[out++] = (seg){cur.s, cur.e, 0};
            prev_match = cur.match;
        }
        break;
    }
    /* The segment array of this step is reused by the recursion only at deeper steps. */
    for (size_t i = 0; i < out; i++) {
        seg sg = c->segs[step][i];
        if (sg.e > sg.s && (rc = pre_run(c, step + 1, s + sg.s, sg.e - sg.s))) return rc;
    }
    return 0;
}

static int pre_run(enc_ctx *c, int step, const char *s, size_t n) {
    const tl_tokenizer *t = c->tok;
    if (n == 0) return 0;
    if (step == t->n_pre) return bpe_piece(c, s, n);
    const tok_pre *p = &t->pre[step];
    if (p->kind == TOK_PRE_BYTELEVEL && p->add_prefix_space && s[0] != ' ') {
        char *buf = malloc(n + 1);
        if (!buf) return tl_err_set(c->err, TL_ENOMEM, "tokenizer: out of memory");
        buf[0] = ' ';
        memcpy(buf + 1, s, n);
        int rc = p->re ? split_apply(c, p, step, buf, n + 1) : pre_run(c, step + 1, buf, n + 1);
        free(buf);
        return rc;
    }
    if (!p->re) return pre_run(c, step + 1, s, n);
    return split_apply(c, p, step, s, n);
}

/* ---- normalizer ---- */
static int normalize_run(enc_ctx *c, const char *s, size_t n);

static int added_split(enc_ctx *c, const tok_trie *tr, const char *s, size_t n,
                       int (*gap)(enc_ctx *, const char *, size_t));

static int after_norm(enc_ctx *c, const char *s, size_t n) { return pre_run(c, 0, s, n); }

/* A character NFC leaves alone whatever surrounds it, and before which NFC text may be cut:
 * NFC_Quick_Check=Yes and canonical combining class 0 (a subset: below U+0300, CJK unified
 * ideographs, Hangul syllables). Under the other forms only ASCII is taken as stable. */
static int norm_stable(uint32_t cp, int nfc) {
    if (cp < 0x80) return 1;
    return nfc && (cp < 0x300 || (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xAC00 && cp <= 0xD7A3));
}

static int normalize_run(enc_ctx *c, const char *s, size_t n) {
    const tl_tokenizer *t = c->tok;
    if (n == 0) return 0;
    int nfc = t->norm == TOK_NORM_NFC;
    /* Find the first character that is not stable; most text has none. */
    size_t i = 0, prev = 0;
    if (t->norm != TOK_NORM_NONE)
        while (i < n) {
            int l = (uint8_t)s[i] < 0x80 ? 1 : tok_utf8_seq((const uint8_t *)s + i, n - i);
            if (l <= 0 || !norm_stable(tok_utf8_cp((const uint8_t *)s + i, l), nfc)) break;
            prev = i;
            i += (size_t)l;
        }
    if (t->norm == TOK_NORM_NONE || i >= n)
        return t->trie_norm.n ? added_split(c, &t->trie_norm, s, n, after_norm) : pre_run(c, 0, s, n);
    utf8proc_option_t o = UTF8PROC_STABLE;
    switch (t->norm) {
    case TOK_NORM_NFC: o |= UTF8PROC_COMPOSE; break;
    case TOK_NORM_NFD: o |= UTF8PROC_DECOMPOSE; break;
    case TOK_NORM_NFKC: o |= UTF8PROC_COMPOSE | UTF8PROC_COMPAT; break;
    default: o |= UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT; break;
    }
    /* Normalization is independent on each side of a stable character, so only the runs of
     * unstable characters (with the character before each, which they may compose with) go
     * through utf8proc; the rest is copied. */
    size_t cap = n + 64, k = 0;
    char *buf = malloc(cap);
    if (!buf) return tl_err_set(c->err, TL_ENOMEM, "tokenizer: out of memory (normalizer)");
    size_t from = i > 0 ? prev : 0; /* start of the character before the run */
    memcpy(buf, s, from);
    k = from;
    int rc = 0;
    while (from < n) {
        /* [from, j): the character before plus the unstable run. */
        size_t j = i;
        while (j < n) {
            int l = (uint8_t)s[j] < 0x80 ? 1 : tok_utf8_seq((const uint8_t *)s + j, n - j);
            if (l > 0 && norm_stable(tok_utf8_cp((const uint8_t *)s + j, l), nfc)) break;
            j += l > 0 ? (size_t)l : 1;
        }
        utf8proc_uint8_t *out = NULL;
        utf8proc_ssize_t m = utf8proc_map((const utf8proc_uint8_t *)s + from, (utf8proc_ssize_t)(j - from),
                                          &out, o);
        if (m < 0) {
            rc = tl_err_set(c->err, TL_ERUNTIME, "tokenizer: normalizer: %s", utf8proc_errmsg(m));
            break;
        }
        if (k + (size_t)m + (n - j) > cap) {
            cap = k + (size_t)m + (n - j) + 64;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(out);
                rc = tl_err_set(c->err, TL_ENOMEM, "tokenizer: out of memory (normalizer)");
                break;
            }
            buf = nb;
        }
        memcpy(buf + k, out, (size_t)m);
        k += (size_t)m;
        free(out);
        if (j >= n) break;
        /* Copy stable characters up to the next unstable one, keeping the last one back. */
        i = j, prev = j;
        while (i < n) {
            int l = (uint8_t)s[i] < 0x80 ? 1 : tok_utf8_seq((const uint8_t *)s + i, n - i);
            if (l <= 0 || !norm_stable(tok_utf8_cp((const uint8_t *)s + i, l), nfc)) break;
            prev = i;
            i += (size_t)l;
        }
        from = i >= n ? n : prev;
        memcpy(buf + k, s + j, from - j);
        k += from - j;
        if (i >= n) break;
    }
    if (!rc)
        rc = t->trie_norm.n ? added_split(c, &t->trie_norm, buf, k, after_norm) : pre_run(c, 0, buf, k);
    free(buf);
    return rc;
}

/* ---- added tokens ---- */
static uint32_t cp_before(const char *s, size_t at) {
    size_t i = at;
    while (i > 0 && ((uint8_t)s[i - 1] & 0xC0) == 0x80) i--;
    if (i == 0) return 0;
    i--;
    while (i > 0 && ((uint8_t)s[i] & 0xC0) == 0x80) i--;
    int l = tok_utf8_seq((const uint8_t *)s + i, at - i);
    return l > 0 ? tok_utf8_cp((const uint8_t *)s + i, l) : 0;
}

static int is_word_cp(uint32_t cp) {
    if (cp == '_') return 1;
    if (cp < 0x80) return (cp >= '0' && cp <= '9') || ((cp | 32) >= 'a' && (cp | 32) <= 'z');
    utf8proc_category_t k = utf8proc_category((utf8proc_int32_t)cp);
    return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO) ||
           (k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO);
}

/* Find added tokens (leftmost-longest, non-overlapping, like HF's aho-corasick find_iter),
 * keep those their flags allow, and pass the text between them to gap(). */
static int added_split(enc_ctx *c, const tok_trie *tr, const char *s, size_t n,
                       int (*gap)(enc_ctx *, const char *, size_t)) {
    const tl_tokenizer *t = c->tok;
    size_t done = 0; /* text before this is handled */
    size_t i = 0;
    while (i < n) {
        int32_t node = tr->first[(uint8_t)s[i]];
        if (node < 0) {
            i++;
            continue;
        }
        int32_t best = -1;
        size_t best_end = 0, j = i + 1;
        for (;;) {
            if (tr->nodes[node].added >= 0) best = tr->nodes[node].added, best_end = j;
            if (j >= n) break;
            int32_t ch = tr->nodes[node].child;
            while (ch >= 0 && tr->nodes[ch].byte != (uint8_t)s[j]) ch = tr->nodes[ch].next;
            if (ch < 0) break;
            node = ch, j++;
        }
        if (best < 0) {
            i++;
            continue;
        }
        const tok_added *a = &t->added[best];
        size_t start = i, stop = best_end;
        if (a->single_word) {
            int ok_l = start == 0 || !is_word_cp(cp_before(s, start));
            int ok_r = 1;
            if (stop < n) {
                int l = tok_utf8_seq((const uint8_t *)s + stop, n - stop);
                ok_r = !(l > 0 && is_word_cp(tok_utf8_cp((const uint8_t *)s + stop, l)));
            }
            if (!ok_l || !ok_r) { /* rejected: the search resumes after it, as HF does */
                i = stop;
                continue;
            }
        }
        if (a->lstrip)
            while (start > done) {
                size_t k = start - 1;
                while (k > done && ((uint8_t)s[k] & 0xC0) == 0x80) k--;
                int l = tok_utf8_seq((const uint8_t *)s + k, start - k);
                if (l <= 0 || !tok_is_space(tok_utf8_cp((const uint8_t *)s + k, l))) break;
                start = k;
            }
        if (a->rstrip)
            while (stop < n) {
                int l = tok_utf8_seq((const uint8_t *)s + stop, n - stop);
                if (l <= 0 || !tok_is_space(tok_utf8_cp((const uint8_t *)s + stop, l))) break;
                stop += (size_t)l;
            }
        int rc = gap(c, s + done, start - done);
        if (!rc) rc = push_ids(c, &a->id, 1);
        if (rc) return rc;
        done = i = stop;
    }
    return gap(c, s + done, n - done);
}

/* ---- invalid UTF-8 ---- */
/* Replace each maximal invalid subpart with U+FFFD. Returns a malloc'd copy, or NULL with
 * *valid = 1 when the input is already valid UTF-8. */
static char *utf8_sanitize(const char *s, size_t n, size_t *out_n, int *valid, tl_err *err) {
    size_t i = 0;
    while (i < n) {
        if ((uint8_t)s[i] < 0x80) {
            i++;
            continue;
        }
        int l = tok_utf8_seq((const uint8_t *)s + i, n - i);
        if (l <= 0) break;
        i += (size_t)l;
    }
    *valid = i == n;
    if (*valid) return NULL;
    size_t cap;
    if (!tl_mul_ok(n, 3, &cap)) {
        tl_err_set(err, TL_ELIMIT, "tokenizer: input too large");
        return NULL;
    }
    char *o = malloc(cap + 1);
    if (!o) {
        tl_err_set(err, TL_ENOMEM, "tokenizer: out of memory (%zu bytes)", cap);
        return NULL;
    }
    memcpy(o, s, i);
    *out_n = i + tok_utf8_lossy((const uint8_t *)s + i, n - i, o + i, NULL);
    return o;
}

int tl_tok_encode(const tl_tokenizer *tok, const char *text, size_t len, unsigned flags,
                  int32_t **ids, size_t *n_ids, tl_err *err) {
    *ids = NULL;
    *n_ids = 0;
    if (len > TOK_MAX_INPUT)
        return tl_err_set(err, TL_ELIMIT, "tokenizer: input of %zu bytes is over the 1 GiB limit", len);
    if (!text && len) return tl_err_set(err, TL_EINVAL, "tokenizer: NULL text");
    int valid;
    size_t clean_n = len;
    char *clean = utf8_sanitize(text ? text : "", len, &clean_n, &valid, err);
    if (!valid && !clean) return -err->code;
    const char *s = valid ? (text ? text : "") : clean;

    enc_ctx c = {.tok = tok, .err = err};
    tl_tokenizer *mt = (tl_tokenizer *)tok; /* the cache is the one mutable part */
    int locked = pthread_mutex_trylock(&mt->cache_lock) == 0;
    if (locked) c.cache = &mt->cache;
    int rc = 0;
    for (int i = 0; i < tok->n_pre && !c.md; i++)
        if (tok->pre[i].re) {
            c.md = pcre2_match_data_create(8, NULL);
            if (!c.md) rc = tl_err_set(err, TL_ENOMEM, "tokenizer: out of memory");
        }
    if (!rc && (flags & TL_TOK_ADD_SPECIAL) && tok->n_tpl_prefix)
        rc = push_ids(&c, tok->tpl_prefix, (size_t)tok->n_tpl_prefix);
    if (!rc)
        rc = tok->trie_raw.n ? added_split(&c, &tok->trie_raw, s, clean_n, normalize_run)
                             : normalize_run(&c, s, clean_n);
    if (!rc && (flags & TL_TOK_ADD_SPECIAL) && tok->n_tpl_suffix)
        rc = push_ids(&c, tok->tpl_suffix, (size_t)tok->n_tpl_suffix);
    if (locked) pthread_mutex_unlock(&mt->cache_lock);
    pcre2_match_data_free(c.md);
    for (int i = 0; i < TOK_MAX_STEPS; i++) free(c.segs[i]);
    free(c.sym);
    free(c.heap);
    free(clean);
    if (rc) {
        free(c.ids);
        return rc;
    }
    if (!c.ids) { /* empty result: still a valid pointer to free */
        c.ids = malloc(sizeof *c.ids);
        if (!c.ids) return tl_err_set(err, TL_ENOMEM, "tokenizer: out of memory");
    }
    *ids = c.ids;
    *n_ids = c.n;
    return 0;
}
