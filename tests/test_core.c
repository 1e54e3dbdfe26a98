/* test_core.c — counted memory, errors, f16/bf16 conversion, the fake clock. */
#include "core/core.h"
#include "test.h"

static uint64_t fake(void *ctx) { return *(uint64_t *)ctx; }

int main(void) {
    tl_mem_stats s0, s1, s2;
    tl_mem_get(&s0);
    void *p = tl_alloc(1000, TL_MEM_KV);
    CHECK(p != NULL);
    CHECK(((uintptr_t)p & 63) == 0);
    tl_mem_get(&s1);
    CHECK(s1.cur[TL_MEM_KV] - s0.cur[TL_MEM_KV] == 1000);
    tl_free(p, 1000, TL_MEM_KV);
    tl_mem_get(&s2);
    CHECK(s2.cur[TL_MEM_KV] == s0.cur[TL_MEM_KV]);
    CHECK(s2.peak[TL_MEM_KV] >= s0.cur[TL_MEM_KV] + 1000);
    CHECK(s2.peak_total >= s2.cur_total + 1000);

    tl_err e = {0};
    int rc = tl_err_set(&e, TL_EFORMAT, "x.json: $.a: expected %s", "number");
    CHECK(rc == -TL_EFORMAT);
    CHECK(e.code == TL_EFORMAT);
    CHECK_STREQ(e.msg, "x.json: $.a: expected number");
    tl_err_prefix(&e, "loading %s: ", "m");
    CHECK_STREQ(e.msg, "loading m: x.json: $.a: expected number");

    /* exact in f16: the largest, the smallest normal (2^-14) and the smallest subnormal (2^-24) */
    float vals[] = {0.0f, 1.0f, -2.5f, 65504.0f, 6.1035156e-05f, 5.9604645e-08f};
    for (size_t i = 0; i < TL_ARRAY_LEN(vals); i++)
        CHECKF(tl_f16_to_f32(tl_f32_to_f16(vals[i])) == vals[i], "f16 round trip of %g", vals[i]);
    CHECK(tl_bf16_to_f32(tl_f32_to_bf16(1.0f)) == 1.0f);
    CHECK(fabsf(tl_f16_to_f32(tl_f32_to_f16(1e-3f)) - 1e-3f) < 1e-6f);
    CHECK(tl_f32_to_bf16(1.00390625f) == 0x3f80); /* tie rounds to even */
    CHECK(tl_f32_to_bf16(1.01171875f) == 0x3f82);

    uint64_t t = 5000;
    tl_clock_set_fake(fake, &t);
    CHECK(tl_now_ns() == 5000);
    t = 7000;
    CHECK(tl_now_ns() == 7000);
    tl_clock_set_fake(NULL, NULL);
    CHECK(tl_now_ns() != 7000);

    char *buf;
    size_t len;
    CHECK(tl_read_file("/nonexistent/x", 10, &buf, &len, &e) == -TL_EIO);
    CHECK(strstr(e.msg, "/nonexistent/x") != NULL);

    /* tl_strbuf: an empty add still gives a string; growth keeps every byte and the NUL; a size
     * that would overflow is refused and leaves the buffer as it was */
    tl_strbuf sb = {0};
    CHECK(tl_strbuf_add(&sb, "", 0) == 0 && sb.p && sb.p[0] == 0 && sb.n == 0);
    for (int i = 0; i < 1000; i++) CHECK(tl_strbuf_add(&sb, "abc", 3) == 0);
    CHECK(sb.n == 3000 && strlen(sb.p) == 3000 && !memcmp(sb.p + 2997, "abc", 3));
    CHECK(tl_strbuf_add(&sb, "x", SIZE_MAX) == -TL_ENOMEM && sb.n == 3000 && sb.p[3000] == 0);
    free(sb.p);
    return test_done();
}
