/* utf8_valid.h — an oracle for "is this valid UTF-8" (RFC 3629: no overlongs, no surrogates,
 * nothing past U+10FFFF), written apart from the tokenizer's own UTF-8 code so that a bug there
 * is not shared by the check. Used by tests/test_tok.c and fuzz/fuzz_tokenizer.c. */
#ifndef TL_TEST_UTF8_VALID_H
#define TL_TEST_UTF8_VALID_H
#include <stddef.h>

static inline int utf8_valid(const char *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        unsigned char b = (unsigned char)s[i];
        int need = b < 0x80 ? 1 : b >= 0xC2 && b <= 0xDF ? 2 : b >= 0xE0 && b <= 0xEF ? 3
                 : b >= 0xF0 && b <= 0xF4 ? 4 : 0;
        if (!need || i + (size_t)need > n) return 0;
        for (int k = 1; k < need; k++)
            if (((unsigned char)s[i + k] & 0xC0) != 0x80) return 0;
        if (b == 0xE0 && (unsigned char)s[i + 1] < 0xA0) return 0;
        if (b == 0xED && (unsigned char)s[i + 1] > 0x9F) return 0;
        if (b == 0xF0 && (unsigned char)s[i + 1] < 0x90) return 0;
        if (b == 0xF4 && (unsigned char)s[i + 1] > 0x8F) return 0;
        i += (size_t)need;
    }
    return 1;
}
#endif
