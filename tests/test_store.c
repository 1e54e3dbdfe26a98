/* test_store.c — safetensors reading: single files, sharded (index) and MLX-style directories,
 * lookup by name, and hostile files (each must fail with a message naming file, tensor, problem). */
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"
#include "test.h"

static char tmpdir[256];

/* Build a safetensors buffer from a header text and n data bytes (0..n-1 pattern). */
static size_t build(uint8_t *buf, size_t cap, const char *header, size_t hlen_claim, size_t ndata) {
    size_t h = strlen(header);
    if (8 + h + ndata > cap) return 0;
    uint64_t hl = hlen_claim ? hlen_claim : h;
    for (int i = 0; i < 8; i++) buf[i] = (uint8_t)(hl >> (8 * i));
    memcpy(buf + 8, header, h);
    for (size_t i = 0; i < ndata; i++) buf[8 + h + i] = (uint8_t)i;
    return 8 + h + ndata;
}

static void write_file(const char *dir, const char *name, const void *p, size_t n) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(p, 1, n, f);
    fclose(f);
}

static void write_st(const char *dir, const char *name, const char *header, size_t ndata) {
    static uint8_t buf[1 << 16];
    size_t n = build(buf, sizeof buf, header, 0, ndata);
    write_file(dir, name, buf, n);
}

/* Parse a buffer; expect failure with code and every needle in the message. */
static void expect_bad(const char *header, size_t hclaim, size_t ndata, int code, const char *n1,
                       const char *n2) {
    static uint8_t buf[1 << 16];
    size_t n = build(buf, sizeof buf, header, hclaim, ndata);
    tl_st_set *s = tl_st_new();
    tl_err err = {0};
    int rc = tl_st_parse(s, "bad.safetensors", buf, n, &err);
    CHECKF(rc == -code, "rc %d want %d: %s", rc, -code, err.msg);
    CHECKF(strstr(err.msg, "bad.safetensors") != NULL, "no file name in: %s", err.msg);
    if (n1) CHECKF(strstr(err.msg, n1) != NULL, "'%s' not in: %s", n1, err.msg);
    if (n2) CHECKF(strstr(err.msg, n2) != NULL, "'%s' not in: %s", n2, err.msg);
    CHECK(tl_st_count(s) == 0);
    tl_st_free(s);
}

static void test_single(void) {
    static uint8_t buf[4096];
    const char *h = "{\"__metadata__\":{\"format\":\"pt\"},"
                    "\"b\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[16,28]},"
                    "\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                    "\"s\":{\"dtype\":\"U32\",\"shape\":[],\"data_offsets\":[28,32]},"
                    "\"z\":{\"dtype\":\"F16\",\"shape\":[0,5],\"data_offsets\":[32,32]}}";
    size_t n = build(buf, sizeof buf, h, 0, 32);
    tl_st_set *s = tl_st_new();
    tl_err err = {0};
    CHECKF(tl_st_parse(s, "one.safetensors", buf, n, &err) == 0, "%s", err.msg);
    CHECK(tl_st_count(s) == 4);
    const tl_tensor *a = tl_st_get(s, "a"), *b = tl_st_get(s, "b"), *sc = tl_st_get(s, "s");
    CHECK(a && a->dtype == TL_DT_F32 && a->ndim == 1 && a->shape[0] == 4 && a->nbytes == 16);
    CHECK(b && b->dtype == TL_DT_BF16 && b->ndim == 2 && b->shape[1] == 3 && b->nbytes == 12);
    CHECK(b && ((const uint8_t *)b->data)[0] == 16); /* data pattern byte i = i */
    CHECK(sc && sc->ndim == 0 && tl_tensor_numel(sc) == 1);
    CHECK(tl_st_get(s, "__metadata__") == NULL);
    CHECK(tl_st_get(s, "missing") == NULL);
    CHECK(a && !strcmp(a->file, "one.safetensors"));
    tl_st_free(s);
}

static void test_hostile(void) {
    const char *ok1 = "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";
    char h[1024];
    snprintf(h, sizeof h, "{%s}", ok1);
    /* header length past EOF / absurd / truncated data */
    expect_bad(h, 1u << 20, 8, TL_EFORMAT, "header length", "past the end");
    expect_bad(h, 0, 4, TL_EFORMAT, "'a'", "out of range");
    {
        static uint8_t b3[4] = {1, 2, 3, 4};
        tl_st_set *s = tl_st_new();
        tl_err err = {0};
        CHECK(tl_st_parse(s, "tiny.safetensors", b3, 4, &err) == -TL_EFORMAT);
        CHECK(strstr(err.msg, "too short") != NULL);
        tl_st_free(s);
    }
    /* broken JSON / not an object */
    expect_bad("{\"a\":{\"dtype\":", 0, 0, TL_EFORMAT, "JSON", NULL);
    expect_bad("[1,2]", 0, 0, TL_EFORMAT, "not a JSON object", NULL);
    /* offsets out of range, overlapping, gap, reversed */
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
               "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
               0, 12, TL_EFORMAT, "overlap", "'b'");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 0, 12,
               TL_EFORMAT, "unused bytes", "'a'");
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 0, 12,
               TL_EFORMAT, "cover 8 bytes", NULL);
    expect_bad("{\"a\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 0, 8,
               TL_EFORMAT, "'a'", "end before");
    /* shape x dtype != bytes */
    expect_bad("{\"w\":{\"dtype\":\"BF16\",\"shape\":[2,3],\"data_offsets\":[0,8]}}", 0, 8,
               TL_EFORMAT, "'w'", "12 bytes but data_offsets span 8");
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,8]}}",
               0, 8, TL_EFORMAT, "'w'", "overflow");
    expect_bad("{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,8]}}", 0, 8,
               TL_EFORMAT, "'w'", "shape[0]");
    /* unsupported dtype, missing fields */
    expect_bad("{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[8],\"data_offsets\":[0,8]}}", 0, 8,
               TL_EUNSUP, "'w'", "unsupported dtype \"F8_E4M3\"");
    expect_bad("{\"w\":{\"shape\":[8],\"data_offsets\":[0,8]}}", 0, 8, TL_EFORMAT, "'w'", "dtype");
    expect_bad("{\"w\":{\"dtype\":\"U8\",\"data_offsets\":[0,8]}}", 0, 8, TL_EFORMAT, "'w'", "shape");
    expect_bad("{\"w\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0]}}", 0, 8, TL_EFORMAT,
               "'w'", "data_offsets");
    expect_bad("{\"w\":7}", 0, 0, TL_EFORMAT, "'w'", "not an object");
    /* duplicate names inside one header */
    expect_bad("{\"w\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
               "\"w\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[4,8]}}",
               0, 8, TL_EFORMAT, "duplicate", NULL);
}

static void test_dirs(void) {
    char d[512], path[600];
    tl_err err = {0};
    tl_st_set *s = NULL;
    /* single model.safetensors */
    snprintf(d, sizeof d, "%s/single", tmpdir);
    mkdir(d, 0755);
    write_st(d, "model.safetensors", "{\"x\":{\"dtype\":\"U8\",\"shape\":[3],\"data_offsets\":[0,3]}}", 3);
    CHECKF(tl_st_open_dir(&s, d, &err) == 0, "%s", err.msg);
    CHECK(s && tl_st_get(s, "x") && tl_st_get(s, "x")->nbytes == 3);
    if (s) tl_st_release(s, tl_st_get(s, "x"));
    tl_st_free(s);

    /* MLX style: model-00001-of-00002 etc. without an index; other files ignored */
    snprintf(d, sizeof d, "%s/mlx", tmpdir);
    mkdir(d, 0755);
    write_st(d, "model-00001-of-00002.safetensors",
             "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2);
    write_st(d, "model-00002-of-00002.safetensors",
             "{\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1);
    write_st(d, "mtp.safetensors", "{\"c\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1);
    CHECKF(tl_st_open_dir(&s, d, &err) == 0, "%s", err.msg);
    CHECK(s && tl_st_count(s) == 2 && tl_st_get(s, "a") && tl_st_get(s, "b") && !tl_st_get(s, "c"));
    CHECK(s && !strcmp(tl_st_get(s, "b")->file, "model-00002-of-00002.safetensors"));
    tl_st_free(s);

    /* the same name in two shards */
    write_st(d, "model-00003-of-00003.safetensors",
             "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2);
    CHECK(tl_st_open_dir(&s, d, &err) == -TL_EFORMAT && s == NULL);
    CHECKF(strstr(err.msg, "'a'") && strstr(err.msg, "also in model-00001-of-00002.safetensors") &&
               strstr(err.msg, "model-00003-of-00003.safetensors"),
           "%s", err.msg);

    /* sharded with an index */
    snprintf(d, sizeof d, "%s/sharded", tmpdir);
    mkdir(d, 0755);
    write_st(d, "model-00001-of-00002.safetensors",
             "{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2);
    write_st(d, "model-00002-of-00002.safetensors",
             "{\"b\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1);
    const char *idx = "{\"metadata\":{\"total_size\":3},\"weight_map\":{"
                      "\"a\":\"model-00001-of-00002.safetensors\","
                      "\"b\":\"model-00002-of-00002.safetensors\"}}";
    write_file(d, "model.safetensors.index.json", idx, strlen(idx));
    CHECKF(tl_st_open_dir(&s, d, &err) == 0, "%s", err.msg);
    CHECK(s && tl_st_count(s) == 2);
    tl_st_free(s);

    /* broken indexes */
    struct {
        const char *text, *n1, *n2;
    } bad[] = {
        {"{\"weight_map\":{\"a\":\"model-00009-of-00009.safetensors\"}}", "model-00009-of-00009.safetensors", "does not exist"},
        {"{\"weight_map\":{\"b\":\"model-00001-of-00002.safetensors\",\"a\":\"model-00002-of-00002.safetensors\"}}", "'b'", "is in model-00002-of-00002"},
        {"{\"weight_map\":{\"zz\":\"model-00001-of-00002.safetensors\"}}", "'zz'", "no shard holds it"},
        {"{\"weight_map\":{\"a\":\"../../etc/passwd\"}}", "$.weight_map[\"a\"]", "not a file name"},
        {"{\"weight_map\":[1]}", "$.weight_map", "not an object"},
        {"{\"weight_map\":{\"a\":", "model.safetensors.index.json", "line"},
        {"{\"weight_map\":{\"a\":5}}", "$.weight_map[\"a\"]", "not a string"},
    };
    for (size_t i = 0; i < TL_ARRAY_LEN(bad); i++) {
        write_file(d, "model.safetensors.index.json", bad[i].text, strlen(bad[i].text));
        err.msg[0] = 0;
        int rc = tl_st_open_dir(&s, d, &err);
        CHECKF(rc < 0 && s == NULL, "index %zu accepted", i);
        CHECKF(strstr(err.msg, "model.safetensors.index.json") && strstr(err.msg, bad[i].n1) &&
                   strstr(err.msg, bad[i].n2),
               "index %zu: %s", i, err.msg);
    }

    /* a truncated shard on disk */
    snprintf(d, sizeof d, "%s/trunc", tmpdir);
    mkdir(d, 0755);
    write_st(d, "model.safetensors", "{\"x\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 10);
    CHECK(tl_st_open_dir(&s, d, &err) == -TL_EFORMAT);
    CHECKF(strstr(err.msg, "model.safetensors") && strstr(err.msg, "'x'") && strstr(err.msg, "truncated"),
           "%s", err.msg);
    /* empty file */
    write_file(d, "model.safetensors", "", 0);
    CHECK(tl_st_open_dir(&s, d, &err) == -TL_EFORMAT);
    CHECKF(strstr(err.msg, "too short") != NULL, "%s", err.msg);
    /* a directory with no weights, and no directory */
    snprintf(d, sizeof d, "%s/empty", tmpdir);
    mkdir(d, 0755);
    CHECK(tl_st_open_dir(&s, d, &err) == -TL_ENOTFOUND);
    CHECKF(strstr(err.msg, "no model*.safetensors") != NULL, "%s", err.msg);
    snprintf(path, sizeof path, "%s/nope", tmpdir);
    CHECK(tl_st_open_dir(&s, path, &err) == -TL_ENOTFOUND);
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/tl_test_store_XXXXXX");
    if (!mkdtemp(tmpdir)) return test_skip("no temp dir");
    test_single();
    test_hostile();
    test_dirs();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_done();
}
