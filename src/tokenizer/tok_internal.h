/* tok_internal.h — the tokenizer's data, shared by tok_load.c (tokenizer.json ->
 * this struct), tok_encode.c (text -> ids) and tok_decode.c (ids -> text).
 *
 * Tokens are kept as raw bytes: the byte-level alphabet of tokenizer.json (GPT-2's
 * bytes_to_unicode: 'Ġ' is the space byte) is undone at load, so BPE works on the input's
 * bytes directly. A vocabulary string with a character outside that alphabet keeps its UTF-8
 * bytes (that is what HF's ByteLevel decoder does with it) and can never be produced by BPE. */
#ifndef TL_TOK_INTERNAL_H
#define TL_TOK_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "core/core.h"
#include "tallow/tokenizer.h"

#define TOK_MAX_STEPS 16             /* pre-tokenizer steps after flattening Sequences */
#define TOK_MAX_PIECE (1u << 20)     /* bytes in one pre-token; longer fails with TL_ELIMIT */
#define TOK_MAX_INPUT (1ull << 30)   /* bytes in one encode call */

enum { TOK_F_PRESENT = 1, TOK_F_ADDED = 2, TOK_F_SPECIAL = 4, TOK_F_BYTELEVEL = 8 };

/* Split behaviours (HF SplitDelimiterBehavior). */
typedef enum {
    TOK_SPLIT_ISOLATED,
    TOK_SPLIT_REMOVED,
    TOK_SPLIT_MERGED_PREV,
    TOK_SPLIT_MERGED_NEXT,
    TOK_SPLIT_CONTIGUOUS,
} tok_split_behavior;

typedef enum { TOK_PRE_SPLIT, TOK_PRE_BYTELEVEL } tok_pre_kind;

typedef struct tok_pre {
    tok_pre_kind kind;
    pcre2_code *re;        /* Split pattern, or ByteLevel's GPT-2 regex when use_regex */
    int jit;               /* re is JIT-compiled */
    tok_split_behavior behavior;
    int invert;
    int add_prefix_space;  /* ByteLevel */
} tok_pre;

/* Added tokens are found with a byte trie (leftmost-longest, like HF's aho-corasick). */
typedef struct tok_trie_node {
    int32_t child;   /* first child, -1 none */
    int32_t next;    /* next sibling, -1 none */
    int32_t added;   /* index into tok->added of the token ending here, -1 none */
    uint8_t byte;
} tok_trie_node;

typedef struct tok_trie {
    tok_trie_node *nodes;
    int32_t n, cap;
    int32_t first[256]; /* root's child for each first byte, -1 none */
} tok_trie;

typedef struct tok_added {
    int32_t id;
    uint32_t off, len; /* content in tok->arena */
    uint8_t special, lstrip, rstrip, single_word, normalized;
} tok_added;

/* BPE cache: word bytes -> ids, reset when full. Guarded by tl_tokenizer.cache_lock. */
typedef struct tok_cache_entry {
    uint64_t hash;
    uint32_t key_off, ids_off;
    uint16_t key_len, n_ids;
} tok_cache_entry;

typedef struct tok_cache {
    tok_cache_entry *slots; /* cap entries, hash 0 = empty */
    uint32_t cap, used;
    char *keys;
    uint32_t keys_len, keys_cap;
    int32_t *ids;
    uint32_t ids_len, ids_cap;
} tok_cache;

/* Byte-level vocabulary entry: the model token's raw bytes in the arena. */
typedef struct tok_vslot {
    int32_t id; /* -1 = empty */
    uint32_t hash, off, len;
} tok_vslot;

/* One merge: (left id << 32 | right id) -> its rank and the id it makes. */
typedef struct tok_merge {
    uint64_t key;
    uint32_t rank;
    int32_t merged;
} tok_merge;

typedef enum { TOK_NORM_NONE = 0, TOK_NORM_NFC, TOK_NORM_NFD, TOK_NORM_NFKC, TOK_NORM_NFKD } tok_norm;

struct tl_tokenizer {
    char what[512];            /* source, for messages */
    /* Tokens: id -> raw bytes in arena (what decode prints). */
    int32_t n_ids;             /* 1 + largest id */
    int32_t ids_cap;           /* allocated entries of the three arrays below */
    uint32_t *tok_off, *tok_len;
    uint8_t *tok_flags;
    char *arena;
    size_t arena_len, arena_cap;
    size_t max_token_len;
    /* Byte-level vocabulary: raw bytes -> id (open addressing, -1 empty). */
    tok_vslot *vhash;
    uint32_t vhash_cap;
    int32_t byte_id[256];      /* id of each single byte, -1 if missing */
    /* Merges: (left id, right id) -> rank and merged id. */
    tok_merge *merge;          /* open addressing, key UINT64_MAX = empty */
    uint32_t mcap;
    int ignore_merges;
    /* Added tokens. */
    tok_added *added;
    int32_t n_added;
    tok_trie trie_raw;         /* normalized == false: matched on the input as given */
    tok_trie trie_norm;        /* normalized == true: matched after the normalizer */
    /* Pipeline. */
    tok_norm norm;
    tok_pre pre[TOK_MAX_STEPS];
    int n_pre;
    int32_t *tpl_prefix, *tpl_suffix; /* post-processor ids around the sequence */
    int n_tpl_prefix, n_tpl_suffix;
    /* tokenizer_config.json */
    char *bos, *eos, *pad;
    int32_t bos_id, eos_id, pad_id;
    int add_bos;
    char *chat_template;
    char **tpl_names, **tpl_texts;
    int n_tpl;
    /* Mutable: the BPE cache. */
    pthread_mutex_t cache_lock;
    tok_cache cache;
};

/* ---- UTF-8 ---- */
/* One character at s[0..n): > 0 its length; < 0 minus the length of the maximal invalid
 * subpart (Unicode's "maximal subpart" rule, as Python and Rust's from_utf8_lossy use);
 * 0 when s holds a valid but incomplete start of a character (n too short). */
static inline int tok_utf8_seq(const uint8_t *s, size_t n) {
    uint8_t b = s[0];
    int need;
    uint8_t lo = 0x80, hi = 0xBF;
    if (b < 0x80) return 1;
    if (b >= 0xC2 && b <= 0xDF) need = 2;
    else if (b >= 0xE0 && b <= 0xEF) {
        need = 3;
        if (b == 0xE0) lo = 0xA0;
        if (b == 0xED) hi = 0x9F;
    } else if (b >= 0xF0 && b <= 0xF4) {
        need = 4;
        if (b == 0xF0) lo = 0x90;
        if (b == 0xF4) hi = 0x8F;
    } else
        return -1;
    for (int i = 1; i < need; i++) {
        if ((size_t)i >= n) return 0;
        uint8_t c = s[i];
        if (c < lo || c > hi) return -i;
        lo = 0x80, hi = 0xBF;
    }
    return need;
}

/* Decode one valid character (s must hold a complete valid sequence of length len). */
static inline uint32_t tok_utf8_cp(const uint8_t *s, int len) {
    switch (len) {
    case 1: return s[0];
    case 2: return ((uint32_t)(s[0] & 0x1F) << 6) | (s[1] & 0x3F);
    case 3: return ((uint32_t)(s[0] & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    default:
        return ((uint32_t)(s[0] & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
               ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    }
}

static inline int tok_utf8_put(uint32_t cp, char *out) {
    if (cp < 0x80) { out[0] = (char)cp; return 1; }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Write the valid UTF-8 of s[0..n) to out (cap >= 3n): each maximal invalid subpart becomes
 * U+FFFD. If hold is non-NULL, an incomplete character at the end is not written; its length
 * goes to *hold (NULL: it becomes one U+FFFD). Returns the bytes written. (tok_decode.c) */
size_t tok_utf8_lossy(const uint8_t *s, size_t n, char *out, int *hold);

/* Rust char::is_whitespace (the White_Space property). */
static inline int tok_is_space(uint32_t c) {
    return (c >= 9 && c <= 13) || c == 32 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

/* Hash of a byte string (the vocabulary and the cache). */
static inline uint64_t tok_hash(const void *p, size_t n) {
    const uint8_t *s = p;
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n * 0xff51afd7ed558ccdull);
    while (n >= 8) {
        uint64_t v;
        __builtin_memcpy(&v, s, 8);
        h = (h ^ v) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
        s += 8, n -= 8;
    }
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) v |= (uint64_t)s[i] << (8 * i);
    h ^= v;
    /* murmur3's finalizer: every input bit reaches the low bits used as the slot index */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h | 1; /* never 0: 0 marks an empty cache slot */
}

static inline uint64_t tok_pair_hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    return k ^ (k >> 33);
}

/* Vocabulary lookup by raw bytes (byte-level tokens only); -1 when absent. */
int32_t tok_vocab_find(const tl_tokenizer *tok, const char *s, size_t n);

/* Merge lookup: 1 and the rank and merged id when (a, b) merges. */
static inline int tok_merge_find(const tl_tokenizer *tok, int32_t a, int32_t b, uint32_t *rank,
                                 int32_t *merged) {
    uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
    uint32_t mask = tok->mcap - 1;
    for (uint32_t i = (uint32_t)tok_pair_hash(key) & mask;; i = (i + 1) & mask) {
        uint64_t k = tok->merge[i].key;
        if (k == key) {
            *rank = tok->merge[i].rank;
            *merged = tok->merge[i].merged;
            return 1;
        }
        if (k == UINT64_MAX) return 0;
    }
}

void tok_cache_free(tok_cache *c);

#endif
