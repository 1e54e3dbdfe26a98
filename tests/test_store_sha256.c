/* test_store_sha256.c — the SHA-256 that checks downloaded blobs, against FIPS 180-4's vectors,
 * fed whole and in uneven pieces. */
#include "store/store.h"
#include "test.h"

static void hex_of(const void *p, size_t n, size_t piece, char out[65]) {
    tl_sha256 s;
    tl_sha256_init(&s);
    const char *c = p;
    for (size_t at = 0; at < n; at += piece) tl_sha256_update(&s, c + at, TL_MIN(piece, n - at));
    tl_sha256_hex(&s, out);
}

int main(void) {
    char h[65];
    hex_of("", 0, 1, h);
    CHECK_STREQ(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    hex_of("abc", 3, 3, h);
    CHECK_STREQ(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    for (size_t piece = 1; piece <= 64; piece *= 3) {
        hex_of(m, strlen(m), piece, h);
        CHECK_STREQ(h, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    }
    static char a[1000000];
    memset(a, 'a', sizeof a);
    hex_of(a, sizeof a, 4093, h);
    CHECK_STREQ(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    return test_done();
}
