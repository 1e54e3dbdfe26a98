/* test_pull_listing.c — the hub's file listing (tl_hub_listing_parse) is hostile input: a good
 * answer gives the commit and the files in order; anything else (not JSON, no sha, a sha that is
 * not a plain file name, a file name that leaves the snapshot) is refused with a message. */
#include "store/store.h"
#include "test.h"

static int parse(const char *body, char commit[64], char ***files, int *n, tl_err *e) {
    return tl_hub_listing_parse("org/x", body, strlen(body), commit, files, n, e);
}

int main(void) {
    char commit[64], **files;
    int n;
    tl_err e = {0};
    const char *good = "{\"id\":\"org/x\",\"sha\":\"0123456789abcdef0123456789abcdef01234567\","
                       "\"siblings\":[{\"rfilename\":\"config.json\"},{\"rfilename\":\"sub/a.txt\"}]}";
    CHECK(parse(good, commit, &files, &n, &e) == 0);
    CHECK_STREQ(commit, "0123456789abcdef0123456789abcdef01234567");
    CHECK(n == 2 && !strcmp(files[0], "config.json") && !strcmp(files[1], "sub/a.txt"));
    tl_hub_listing_free(files, n);
    CHECK(parse("{\"sha\":\"abc\",\"siblings\":[]}", commit, &files, &n, &e) == 0 && n == 0);
    tl_hub_listing_free(files, n);

    static const struct { const char *body, *says; } bad[] = {
        {"", "not a model listing"},
        {"<html>rate limited</html>", "not a model listing"},
        {"[]", "not a model listing"},
        {"{\"siblings\":[]}", "not a model listing"},
        {"{\"sha\":5,\"siblings\":[]}", "not a model listing"},
        {"{\"sha\":\"abc\"}", "not a model listing"},
        {"{\"sha\":\"abc\",\"siblings\":{}}", "not a model listing"},
        {"{\"sha\":\"..\",\"siblings\":[]}", "not a model listing"},
        {"{\"sha\":\"a/b\",\"siblings\":[]}", "not a model listing"},
        {"{\"sha\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","
         "\"siblings\":[]}", "not a model listing"},
        {"{\"sha\":\"abc\",\"siblings\":[{\"rfilename\":\"../../x\"}]}", "unsafe file name"},
        {"{\"sha\":\"abc\",\"siblings\":[{\"rfilename\":\"/etc/passwd\"}]}", "unsafe file name"},
        {"{\"sha\":\"abc\",\"siblings\":[{\"rfilename\":\"a/../../x\"}]}", "unsafe file name"},
        {"{\"sha\":\"abc\",\"siblings\":[{\"rfilename\":\"a//b\"}]}", "unsafe file name"},
        {"{\"sha\":\"abc\",\"siblings\":[{\"rfilename\":\"\"}]}", "unsafe file name"},
        {"{\"sha\":\"abc\",\"siblings\":[{\"name\":\"x\"}]}", "unsafe file name"},
        {"{\"sha\":\"abc\",\"siblings\":[{\"rfilename\":\"ok\"},7]}", "unsafe file name"},
    };
    for (size_t i = 0; i < TL_ARRAY_LEN(bad); i++) {
        memset(&e, 0, sizeof e);
        files = (char **)1;
        int rc = parse(bad[i].body, commit, &files, &n, &e);
        CHECKF(rc == -TL_EFORMAT && strstr(e.msg, bad[i].says) && strstr(e.msg, "org/x") &&
                   files == NULL && n == 0,
               "%s -> %d: %s", bad[i].body, rc, e.msg);
    }
    return test_done();
}
