/* test_store_locate.c — finding a model: a directory, or org/name in the Hugging Face cache laid
 * out as huggingface_hub does (refs/<rev> -> snapshots/<commit>), and the errors when it is not. */
#include <sys/stat.h>

#include "store/store.h"
#include "test.h"

static void put(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f) return;
    fputs(text, f);
    fclose(f);
}

int main(void) {
    char root[256] = "/tmp/tl_test_locate_XXXXXX", p[1024], out[4096];
    if (!mkdtemp(root)) return test_skip("no temp dir");
    tl_err err = {0};

    /* cache dir precedence */
    unsetenv("HF_HUB_CACHE");
    unsetenv("HF_HOME");
    unsetenv("XDG_CACHE_HOME");
    setenv("HOME", "/home/u", 1);
    CHECK(tl_hf_cache_dir(out, sizeof out) == 0);
    CHECK_STREQ(out, "/home/u/.cache/huggingface/hub");
    setenv("HF_HOME", "/x/hf", 1);
    CHECK(tl_hf_cache_dir(out, sizeof out) == 0);
    CHECK_STREQ(out, "/x/hf/hub");
    setenv("HF_HUB_CACHE", root, 1);
    CHECK(tl_hf_cache_dir(out, sizeof out) == 0);
    CHECK_STREQ(out, root);

    /* a cache entry: refs/main -> snapshots/abc123 ; a second commit only by hash */
    snprintf(p, sizeof p, "%s/models--org--tiny", root);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/models--org--tiny/refs", root);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/models--org--tiny/snapshots", root);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/models--org--tiny/snapshots/abc123", root);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/models--org--tiny/snapshots/def456", root);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/models--org--tiny/refs/main", root);
    put(p, "abc123");
    snprintf(p, sizeof p, "%s/models--org--tiny/refs/v2", root);
    put(p, "../../etc\n");

    CHECKF(tl_model_locate("org/tiny", NULL, out, sizeof out, &err) == 0, "%s", err.msg);
    snprintf(p, sizeof p, "%s/models--org--tiny/snapshots/abc123", root);
    CHECK_STREQ(out, p);
    CHECKF(tl_model_locate("org/tiny", "def456", out, sizeof out, &err) == 0, "%s", err.msg);
    snprintf(p, sizeof p, "%s/models--org--tiny/snapshots/def456", root);
    CHECK_STREQ(out, p);

    /* errors: not cached (says how to get it), unknown revision, bad ref, bad ids, bad path */
    CHECK(tl_model_locate("org/absent", NULL, out, sizeof out, &err) == -TL_ENOTFOUND);
    CHECKF(strstr(err.msg, "org/absent") && strstr(err.msg, "tallow pull org/absent"), "%s", err.msg);
    CHECK(tl_model_locate("org/tiny", "dev", out, sizeof out, &err) == -TL_ENOTFOUND);
    CHECKF(strstr(err.msg, "revision 'dev'") && strstr(err.msg, "tallow pull org/tiny --revision dev"),
           "%s", err.msg);
    CHECK(tl_model_locate("org/tiny", "v2", out, sizeof out, &err) == -TL_EFORMAT);
    CHECKF(strstr(err.msg, "refs/v2") != NULL, "%s", err.msg);
    CHECK(tl_model_locate("org/tiny", "../x", out, sizeof out, &err) == -TL_EINVAL);
    CHECK(tl_model_locate("/no/such/dir", NULL, out, sizeof out, &err) == -TL_ENOTFOUND);
    CHECKF(strstr(err.msg, "/no/such/dir") != NULL, "%s", err.msg);
    CHECK(tl_model_locate("a/../b", NULL, out, sizeof out, &err) == -TL_ENOTFOUND);
    CHECK(tl_model_locate("", NULL, out, sizeof out, &err) == -TL_EINVAL);

    /* a plain directory is returned as its real path */
    char real[4096];
    CHECK(realpath(root, real) != NULL);
    CHECKF(tl_model_locate(root, NULL, out, sizeof out, &err) == 0, "%s", err.msg);
    CHECK_STREQ(out, real);
    snprintf(p, sizeof p, "%s/models--org--tiny/../models--org--tiny/snapshots/..", root);
    CHECKF(tl_model_locate(p, NULL, out, sizeof out, &err) == 0, "%s", err.msg);
    snprintf(p, sizeof p, "%s/models--org--tiny", real);
    CHECK_STREQ(out, p);

    CHECK(tl_hf_repo_id_valid("mlx-community/Qwen3.5-2B-4bit"));
    CHECK(!tl_hf_repo_id_valid("noslash") && !tl_hf_repo_id_valid("a/b/c") &&
          !tl_hf_repo_id_valid("a/..") && !tl_hf_repo_id_valid("a b/c"));

    snprintf(p, sizeof p, "rm -rf '%s'", root);
    if (system(p) != 0) fprintf(stderr, "could not remove %s\n", root);
    return test_done();
}
