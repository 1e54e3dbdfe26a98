/* locate.c — where a model is: a directory, or an org/name repo id in the Hugging Face cache.
 *
 * Contract: follows huggingface_hub's cache layout so that models downloaded by mlx-lm,
 * transformers or `tallow pull` are found where they are:
 *   <cache>/models--<org>--<name>/refs/<revision>    (a file holding the commit hash)
 *   <cache>/models--<org>--<name>/snapshots/<commit>/ (the files, symlinks into ../../blobs)
 * cache = $HF_HUB_CACHE, else $HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else
 * ~/.cache/huggingface/hub. A revision is a ref name (default "main") or a commit hash. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

int tl_hf_cache_dir(char *out, size_t cap) {
    const char *e = getenv("HF_HUB_CACHE");
    int n;
    if (e && *e) n = snprintf(out, cap, "%s", e);
    else if ((e = getenv("HF_HOME")) && *e) n = snprintf(out, cap, "%s/hub", e);
    else if ((e = getenv("XDG_CACHE_HOME")) && *e) n = snprintf(out, cap, "%s/huggingface/hub", e);
    else if ((e = getenv("HOME")) && *e) n = snprintf(out, cap, "%s/.cache/huggingface/hub", e);
    else return -TL_ENOTFOUND;
    return n < 0 || (size_t)n >= cap ? -TL_EINVAL : 0;
}

int tl_hf_repo_id_valid(const char *id) {
    const char *slash = strchr(id, '/');
    if (!slash || slash == id || !slash[1] || strchr(slash + 1, '/')) return 0;
    if (strlen(id) > 200 || id[0] == '.' || slash[1] == '.') return 0;
    for (const char *p = id; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '_' || *p == '.' || *p == '/'))
            return 0;
    return !strstr(id, "..") && !strstr(id, "--");
}

int tl_hf_revision_valid(const char *rev) {
    if (!*rev || strlen(rev) > 200 || rev[0] == '/' || strstr(rev, "..")) return 0;
    for (const char *p = rev; *p; p++)
        if (!(isalnum((unsigned char)*p) || strchr("-_./", *p))) return 0;
    return 1;
}

int tl_hf_repo_dir(const char *repo_id, char *out, size_t cap, tl_err *err) {
    char cache[4096];
    if (tl_hf_cache_dir(cache, sizeof cache))
        return tl_err_set(err, TL_EINVAL, "cannot tell where the Hugging Face cache is: set HF_HUB_CACHE or HOME");
    const char *slash = strchr(repo_id, '/');
    int n = snprintf(out, cap, "%s/models--%.*s--%s", cache, (int)(slash - repo_id), repo_id, slash + 1);
    if (n < 0 || (size_t)n >= cap) return tl_err_set(err, TL_EINVAL, "%s: cache path too long", repo_id);
    return 0;
}

static int looks_like_path(const char *s) {
    return s[0] == '/' || s[0] == '.' || s[0] == '~' || strchr(s, '/') != strrchr(s, '/');
}

int tl_model_locate(const char *spec, const char *revision, char *out, size_t cap, tl_err *err) {
    if (!spec || !*spec) return tl_err_set(err, TL_EINVAL, "no model given");
    if (tl_dir_exists(spec)) {
        char *rp = realpath(spec, NULL);
        int n = snprintf(out, cap, "%s", rp ? rp : spec);
        free(rp);
        return n < 0 || (size_t)n >= cap ? tl_err_set(err, TL_EINVAL, "%s: path too long", spec) : 0;
    }
    if (looks_like_path(spec) || !tl_hf_repo_id_valid(spec))
        return tl_err_set(err, TL_ENOTFOUND,
                          "model '%s' not found: it is not a directory, nor a Hugging Face repo id "
                          "(org/name)", spec);
    const char *rev = revision && *revision ? revision : "main";
    if (!tl_hf_revision_valid(rev))
        return tl_err_set(err, TL_EINVAL, "revision '%s' is not a valid ref name or commit hash", rev);
    char repo[4096], path[4096 + 256], commit[256];
    int rc = tl_hf_repo_dir(spec, repo, sizeof repo, err);
    if (rc) return rc;
    if (!tl_dir_exists(repo))
        return tl_err_set(err, TL_ENOTFOUND,
                          "model '%s' is not in the Hugging Face cache (%s); download it with "
                          "`tallow pull %s`",
                          spec, repo, spec);
    snprintf(path, sizeof path, "%s/refs/%s", repo, rev);
    commit[0] = 0;
    if (tl_file_exists(path)) {
        char *text = NULL;
        size_t len = 0;
        if (tl_read_file(path, 4096, &text, &len, err)) return tl_err_prefix(err, "model '%s': ", spec);
        while (len && isspace((unsigned char)text[len - 1])) text[--len] = 0;
        int ok = len > 0 && len < sizeof commit && tl_hf_revision_valid(text) && !strchr(text, '/');
        if (ok) memcpy(commit, text, len + 1);
        free(text);
        if (!ok) return tl_err_set(err, TL_EFORMAT, "%s: does not hold a commit hash", path);
    } else {
        snprintf(commit, sizeof commit, "%s", rev); /* a commit hash given directly */
    }
    snprintf(path, sizeof path, "%s/snapshots/%s", repo, commit);
    if (strchr(commit, '/') || !tl_dir_exists(path))
        return tl_err_set(err, TL_ENOTFOUND,
                          "model '%s' revision '%s' is not in the Hugging Face cache (%s); "
                          "download it with `tallow pull %s%s%s`",
                          spec, rev, repo, spec, revision ? " --revision " : "", revision ? revision : "");
    int n = snprintf(out, cap, "%s", path);
    return n < 0 || (size_t)n >= cap ? tl_err_set(err, TL_EINVAL, "%s: path too long", path) : 0;
}
