/* pull.c — download a Hugging Face hub repo into the huggingface_hub cache layout (libcurl).
 *
 * Contract: tl_hub_pull lists the files of org/name at a revision through the hub API
 * (GET {endpoint}/api/models/{repo}/revision/{rev} -> "sha", "siblings"[].rfilename), keeps those
 * matching the include globs (fnmatch; "*" also crosses "/", as huggingface_hub's fnmatch does),
 * and for each file not already in snapshots/<commit>/:
 *   HEAD {endpoint}/{repo}/resolve/{commit}/{file} (redirects not followed, except relative ones)
 *     -> etag (X-Linked-Etag for LFS files = their sha256, else ETag), size (X-Linked-Size or
 *        Content-Length);
 *   blobs/<etag> reused when present; otherwise GET (redirects followed, e.g. to a CDN) into
 *     blobs/<etag>.incomplete, resumed with a Range request when a partial file is there (also
 *     across runs), retried opts->retries times after a cut transfer; LFS blobs are checked
 *     against their sha256 before they are renamed into place;
 *   snapshots/<commit>/<file> -> ../../blobs/<etag> (a relative symlink);
 * then refs/<revision> holds the commit hash. A blob is written under huggingface_hub's own lock
 * file (.locks/models--org--name/<etag>.lock, flock), so concurrent downloads do not collide. This is the layout huggingface_hub, transformers
 * and mlx-lm read, so each side finds the other's downloads. HF_HUB_OFFLINE=1 refuses the
 * network (a cached snapshot is still returned). The token (opts, $HF_TOKEN, or huggingface_hub's
 * token file) is sent as a Bearer header to the hub only (curl drops it on cross-host redirects).
 * Errors are one line: 401/403 say to set HF_TOKEN, 404 names the repo, revision or file. */
#define _GNU_SOURCE
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fnmatch.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"

#define API_MAX_BYTES (32u << 20)
#define MAX_REDIRECTS 5

typedef struct pull_ctx {
    const tl_pull_opts *o;
    char endpoint[1024];
    char auth[4200]; /* "Authorization: Bearer ..." or empty */
    tl_err *err;
} pull_ctx;

typedef struct hdrs {
    long status;
    char commit[64], etag[160], linked_etag[160], location[2048], error_code[64], error_msg[256];
    uint64_t size, linked_size;
    int has_size, has_linked_size;
} hdrs;

static void trim(char *s) {
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1])) s[--n] = 0;
    size_t i = 0;
    while (isspace((unsigned char)s[i])) i++;
    memmove(s, s + i, strlen(s + i) + 1);
}

static void copy_hdr(char *dst, size_t cap, const char *v, size_t vl) {
    size_t n = TL_MIN(vl, cap - 1);
    memcpy(dst, v, n);
    dst[n] = 0;
    trim(dst);
}

static size_t on_header(char *b, size_t sz, size_t n, void *ud) {
    hdrs *h = ud;
    size_t len = sz * n;
    if (len >= 5 && !strncmp(b, "HTTP/", 5)) { /* a new response (after a redirect): start over */
        memset(h, 0, sizeof *h);
        return len;
    }
    const char *colon = memchr(b, ':', len);
    if (!colon) return len;
    size_t kl = (size_t)(colon - b);
    const char *v = colon + 1;
    size_t vl = len - kl - 1;
    char num[32];
#define IS(name) (kl == strlen(name) && !strncasecmp(b, name, kl))
    if (IS("x-repo-commit")) copy_hdr(h->commit, sizeof h->commit, v, vl);
    else if (IS("etag")) copy_hdr(h->etag, sizeof h->etag, v, vl);
    else if (IS("x-linked-etag")) copy_hdr(h->linked_etag, sizeof h->linked_etag, v, vl);
    else if (IS("location")) copy_hdr(h->location, sizeof h->location, v, vl);
    else if (IS("x-error-code")) copy_hdr(h->error_code, sizeof h->error_code, v, vl);
    else if (IS("x-error-message")) copy_hdr(h->error_msg, sizeof h->error_msg, v, vl);
    else if (IS("content-length") || IS("x-linked-size")) {
        copy_hdr(num, sizeof num, v, vl);
        char *end;
        unsigned long long x = strtoull(num, &end, 10);
        if (end != num && !*end) {
            if (IS("content-length")) h->size = x, h->has_size = 1;
            else h->linked_size = x, h->has_linked_size = 1;
        }
    }
#undef IS
    return len;
}

/* A response body held in memory, refused past max bytes. */
typedef struct membuf {
    tl_strbuf b;
    size_t max;
    int over;
} membuf;

static size_t on_mem(char *b, size_t sz, size_t n, void *ud) {
    membuf *m = ud;
    size_t len = sz * n;
    if (m->b.n + len + 1 > m->max) {
        m->over = 1;
        return 0;
    }
    return tl_strbuf_add(&m->b, b, len) ? 0 : len;
}

static CURL *easy(pull_ctx *c, const char *url, struct curl_slist **hl, hdrs *h, char *ebuf) {
    CURL *e = curl_easy_init();
    if (!e) return NULL;
    *hl = curl_slist_append(NULL, "User-Agent: tallow/" TALLOW_VERSION "; hf_hub-compatible");
    if (c->auth[0]) *hl = curl_slist_append(*hl, c->auth);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, *hl);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, h);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, 30L);
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L); /* a stalled transfer fails after 60 s */
    curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    ebuf[0] = 0;
    return e;
}

/* One line for an HTTP failure. what: "repository", "revision" or "file". */
static int http_error(pull_ctx *c, const hdrs *h, const char *file) {
    const char *repo = c->o->repo, *rev = c->o->revision ? c->o->revision : "main";
    switch (h->status) {
    case 401:
        return tl_err_set(c->err, TL_ENET,
                          "%s: 401 Unauthorized from %s: the repo is private or gated (or does not "
                          "exist); %s",
                          repo, c->endpoint,
                          c->auth[0] ? "the token was refused — check HF_TOKEN / --token"
                                     : "set HF_TOKEN (or pass --token) to a token with access");
    case 403:
        return tl_err_set(c->err, TL_ENET,
                          "%s: 403 Forbidden: your token has no access (gated model: accept its "
                          "terms on the hub page; check HF_TOKEN / --token)",
                          repo);
    case 404:
        if (!strcasecmp(h->error_code, "RevisionNotFound"))
            return tl_err_set(c->err, TL_ENOTFOUND, "%s: revision '%s' not found on %s", repo, rev,
                              c->endpoint);
        if (file && !strcasecmp(h->error_code, "EntryNotFound"))
            return tl_err_set(c->err, TL_ENOTFOUND, "%s: file '%s' not found at revision '%s'", repo,
                              file, rev);
        if (file)
            return tl_err_set(c->err, TL_ENOTFOUND, "%s: 404 Not Found for '%s' at revision '%s'",
                              repo, file, rev);
        return tl_err_set(c->err, TL_ENOTFOUND,
                          "%s: repository or revision '%s' not found on %s (check the name)", repo, rev,
                          c->endpoint);
    default:
        return tl_err_set(c->err, TL_ENET, "%s: HTTP %ld from %s%s%s%s", repo, h->status,
                          c->endpoint, file ? " for " : "", file ? file : "",
                          h->error_msg[0] ? h->error_msg : "");
    }
}

static int curl_error(pull_ctx *c, CURLcode cc, const char *ebuf, const char *what) {
    return tl_err_set(c->err, TL_ENET, "%s: network error %s: %s", c->o->repo, what,
                      ebuf[0] ? ebuf : curl_easy_strerror(cc));
}

/* ---- paths ---- */
static int mkdir_parent(const char *path) {
    char d[4096];
    snprintf(d, sizeof d, "%s", path);
    char *s = strrchr(d, '/');
    if (!s) return 0;
    *s = 0;
    return tl_mkdir_p(d);
}

/* A repo path from the API must stay inside the snapshot. */
static int safe_rel_path(const char *p) {
    if (!*p || p[0] == '/' || strlen(p) > 1000 || strchr(p, '\\')) return 0;
    for (const char *s = p; *s;) {
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.')) return 0;
        s += n + (e ? 1 : 0);
        if (e && !*s) return 0;
    }
    for (const unsigned char *s = (const unsigned char *)p; *s; s++)
        if (*s < 0x20) return 0;
    return 1;
}

static int safe_name(const char *s) { /* etags and commit hashes become file names */
    if (!*s || strlen(s) > 128 || !strcmp(s, ".") || !strcmp(s, "..")) return 0;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '-' || *s == '_' || *s == '.')) return 0;
    return 1;
}

static int is_sha256(const char *s) {
    if (strlen(s) != 64) return 0;
    for (; *s; s++)
        if (!isxdigit((unsigned char)*s) || isupper((unsigned char)*s)) return 0;
    return 1;
}

static void clean_etag(char *e) {
    if (!strncmp(e, "W/", 2)) memmove(e, e + 2, strlen(e + 2) + 1);
    size_t n = strlen(e);
    if (n >= 2 && e[0] == '"' && e[n - 1] == '"') {
        memmove(e, e + 1, n - 2);
        e[n - 2] = 0;
    }
}

/* URL-escape each segment of a path, keeping the slashes. */
static int escape_path(CURL *e, const char *p, char *out, size_t cap) {
    size_t o = 0;
    out[0] = 0;
    while (*p) {
        const char *s = strchr(p, '/');
        size_t n = s ? (size_t)(s - p) : strlen(p);
        char *esc = curl_easy_escape(e, p, (int)n);
        if (!esc) return -1;
        int w = snprintf(out + o, cap - o, "%s%s", esc, s ? "/" : "");
        curl_free(esc);
        if (w < 0 || (size_t)w >= cap - o) return -1;
        o += (size_t)w;
        p += n + (s ? 1 : 0);
    }
    return 0;
}

/* ---- the API listing ---- */
static int list_files(pull_ctx *c, const char *rev, char *commit, char ***files, int *n_files) {
    char url[4096], ebuf[CURL_ERROR_SIZE];
    struct curl_slist *hl = NULL;
    hdrs h = {0};
    membuf m = {.max = API_MAX_BYTES};
    CURL *e = curl_easy_init();
    if (!e) return tl_err_set(c->err, TL_ENOMEM, "curl_easy_init failed");
    char *erev = curl_easy_escape(e, rev, 0);
    curl_easy_cleanup(e);
    snprintf(url, sizeof url, "%s/api/models/%s/revision/%s", c->endpoint, c->o->repo, erev ? erev : "");
    curl_free(erev);
    e = easy(c, url, &hl, &h, ebuf);
    if (!e) return tl_err_set(c->err, TL_ENOMEM, "curl_easy_init failed");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_mem);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, &m);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(e, CURLOPT_MAXREDIRS, (long)MAX_REDIRECTS);
    CURLcode cc = curl_easy_perform(e);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &h.status);
    curl_easy_cleanup(e);
    curl_slist_free_all(hl);
    int rc = 0;
    if (m.over) rc = tl_err_set(c->err, TL_ELIMIT, "%s: the hub's file listing is over %u bytes", c->o->repo, API_MAX_BYTES);
    else if (cc != CURLE_OK) rc = curl_error(c, cc, ebuf, "listing files");
    else if (h.status >= 400) rc = http_error(c, &h, NULL);
    else if (h.status != 200) rc = tl_err_set(c->err, TL_ENET, "%s: HTTP %ld listing files", c->o->repo, h.status);
    if (!rc) rc = tl_hub_listing_parse(c->o->repo, m.b.p ? m.b.p : "", m.b.n, commit, files, n_files, c->err);
    free(m.b.p);
    return rc;
}

int tl_hub_listing_parse(const char *repo, const char *body, size_t len, char commit[64],
                         char ***files, int *n, tl_err *err) {
    *files = NULL;
    *n = 0;
    json_error_t je;
    json_t *j = json_loadb(body, len, 0, &je);
    json_t *sha = json_object_get(j, "sha"), *sib = json_object_get(j, "siblings");
    if (!json_is_string(sha) || !safe_name(json_string_value(sha)) ||
        strlen(json_string_value(sha)) > 63 || !json_is_array(sib)) {
        json_decref(j);
        return tl_err_set(err, TL_EFORMAT,
                          "%s: the hub's answer is not a model listing (no \"sha\" / \"siblings\")",
                          repo);
    }
    snprintf(commit, 64, "%s", json_string_value(sha));
    size_t cnt = json_array_size(sib), i;
    char **v = calloc(cnt ? cnt : 1, sizeof *v);
    if (!v || cnt > 1000000) {
        free(v);
        json_decref(j);
        return tl_err_set(err, TL_ENOMEM, "%s: %zu files listed", repo, cnt);
    }
    json_t *s;
    int rc = 0;
    json_array_foreach(sib, i, s) {
        const char *f = json_string_value(json_object_get(s, "rfilename"));
        if (!f || !safe_rel_path(f)) {
            rc = tl_err_set(err, TL_EFORMAT, "%s: the hub listed an unsafe file name '%.200s'", repo,
                            f ? f : "(none)");
            break;
        }
        if (!(v[i] = strdup(f))) {
            rc = tl_err_set(err, TL_ENOMEM, "out of memory");
            break;
        }
    }
    json_decref(j);
    if (rc) {
        tl_hub_listing_free(v, (int)cnt);
        return rc;
    }
    *files = v;
    *n = (int)cnt;
    return 0;
}

void tl_hub_listing_free(char **files, int n) {
    if (!files) return;
    for (int i = 0; i < n; i++) free(files[i]);
    free(files);
}

/* ---- one file ---- */
static int head_file(pull_ctx *c, const char *url0, const char *file, hdrs *out) {
    char url[4096], ebuf[CURL_ERROR_SIZE];
    snprintf(url, sizeof url, "%s", url0);
    for (int hop = 0; hop <= MAX_REDIRECTS; hop++) {
        struct curl_slist *hl = NULL;
        hdrs h = {0};
        CURL *e = easy(c, url, &hl, &h, ebuf);
        if (!e) return tl_err_set(c->err, TL_ENOMEM, "curl_easy_init failed");
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
        CURLcode cc = curl_easy_perform(e);
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &h.status);
        curl_easy_cleanup(e);
        curl_slist_free_all(hl);
        if (cc != CURLE_OK) return curl_error(c, cc, ebuf, file);
        if (h.status >= 400) return http_error(c, &h, file);
        /* Relative redirects (a renamed repo) are followed; a redirect elsewhere (the CDN) is
         * the answer: its headers carry the LFS etag and size. */
        if (h.status >= 300 && h.status < 400 && h.location[0] == '/') {
            snprintf(url, sizeof url, "%s%s", c->endpoint, h.location);
            continue;
        }
        *out = h;
        return 0;
    }
    return tl_err_set(c->err, TL_ENET, "%s: too many redirects for %s", c->o->repo, file);
}

typedef struct dl_state {
    FILE *f;
    uint64_t have; /* bytes in the file before this request */
    uint64_t got;
    int started, bad_status;
    CURL *e;
    pull_ctx *c;
    const char *file;
    uint64_t total;
} dl_state;

static size_t on_body(char *b, size_t sz, size_t n, void *ud) {
    dl_state *d = ud;
    size_t len = sz * n;
    if (!d->started) {
        long st = 0;
        curl_easy_getinfo(d->e, CURLINFO_RESPONSE_CODE, &st);
        d->started = 1;
        if (st == 200 && d->have) { /* the server ignored our Range: start over */
            if (ftruncate(fileno(d->f), 0) != 0 || fseek(d->f, 0, SEEK_SET) != 0) return 0;
            d->have = 0;
        } else if (st != 200 && st != 206) {
            d->bad_status = 1;
            return 0;
        }
    }
    if (fwrite(b, 1, len, d->f) != len) return 0;
    d->got += len;
    return len;
}

static int on_xfer(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ut, curl_off_t un) {
    dl_state *d = ud;
    (void)dltotal, (void)ut, (void)un;
    if (d->c->o->progress) d->c->o->progress(d->c->o->progress_ctx, d->file, d->have + (uint64_t)dlnow, d->total, 0);
    return 0;
}

static int file_size(const char *path, uint64_t *n) {
    struct stat st;
    if (stat(path, &st) != 0) return -1;
    *n = (uint64_t)st.st_size;
    return 0;
}

/* GET url into inc (appending / resuming); 0 when the file holds `total` bytes. */
static int fetch(pull_ctx *c, const char *url, const char *inc, const char *file, uint64_t total,
                 uint64_t *downloaded) {
    int attempts = 1 + TL_MAX(c->o->retries, 0);
    for (int a = 0; a < attempts; a++) {
        uint64_t have = 0;
        if (file_size(inc, &have) != 0) have = 0;
        if (total && have > total) {
            if (truncate(inc, 0) != 0) return tl_err_set(c->err, TL_EIO, "%s: cannot truncate: %s", inc, strerror(errno));
            have = 0;
        }
        if (total && have == total) return 0;
        FILE *f = fopen(inc, "ab");
        if (!f) return tl_err_set(c->err, TL_EIO, "%s: cannot write: %s", inc, strerror(errno));
        char ebuf[CURL_ERROR_SIZE], range[64];
        struct curl_slist *hl = NULL;
        hdrs h = {0};
        dl_state d = {.f = f, .have = have, .c = c, .file = file, .total = total};
        CURL *e = easy(c, url, &hl, &h, ebuf);
        if (!e) {
            fclose(f);
            return tl_err_set(c->err, TL_ENOMEM, "curl_easy_init failed");
        }
        d.e = e;
        if (have) {
            snprintf(range, sizeof range, "Range: bytes=%llu-", (unsigned long long)have);
            hl = curl_slist_append(hl, range);
            curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
        }
        curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 1L);
        curl_easy_setopt(e, CURLOPT_MAXREDIRS, (long)MAX_REDIRECTS);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, &d);
        curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_xfer);
        curl_easy_setopt(e, CURLOPT_XFERINFODATA, &d);
        CURLcode cc = curl_easy_perform(e);
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &h.status);
        curl_easy_cleanup(e);
        curl_slist_free_all(hl);
        int wbad = fclose(f) != 0;
        *downloaded += d.got;
        if (wbad) return tl_err_set(c->err, TL_EIO, "%s: write failed (disk full?)", inc);
        if (h.status == 416 && total && file_size(inc, &have) == 0 && have == total) return 0;
        if (h.status >= 400) return http_error(c, &h, file);
        if (d.bad_status)
            return tl_err_set(c->err, TL_ENET, "%s: unexpected HTTP %ld downloading %s", c->o->repo, h.status, file);
        if (cc == CURLE_WRITE_ERROR)
            return tl_err_set(c->err, TL_EIO, "%s: cannot write %s (disk full?)", c->o->repo, inc);
        uint64_t now = 0;
        file_size(inc, &now);
        if (cc == CURLE_OK && (!total || now == total)) return 0;
        if (cc == CURLE_OK) /* the server closed early without an error */
            cc = CURLE_PARTIAL_FILE;
        if (a + 1 == attempts || d.got == 0)
            return tl_err_set(c->err, TL_ENET,
                              "%s: download of %s interrupted after %llu of %llu bytes (%s); run the "
                              "same command again to resume",
                              c->o->repo, file, (unsigned long long)now, (unsigned long long)total,
                              ebuf[0] ? ebuf : curl_easy_strerror(cc));
    }
    return 0;
}

static int sha256_file(const char *path, char hex[65]) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    tl_sha256 s;
    tl_sha256_init(&s);
    static __thread uint8_t buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) tl_sha256_update(&s, buf, n);
    int bad = ferror(f);
    fclose(f);
    tl_sha256_hex(&s, hex);
    return bad ? -1 : 0;
}

static int link_snapshot(pull_ctx *c, const char *repo_dir, const char *commit, const char *file,
                         const char *etag) {
    char link[4096 + 1100], target[4096];
    snprintf(link, sizeof link, "%s/snapshots/%s/%s", repo_dir, commit, file);
    if (mkdir_parent(link)) return tl_err_set(c->err, TL_EIO, "%s: cannot create its directory", link);
    int depth = 0;
    for (const char *p = file; *p; p++) depth += *p == '/';
    size_t o = 0;
    for (int i = 0; i < 2 + depth; i++) o += (size_t)snprintf(target + o, sizeof target - o, "../");
    snprintf(target + o, sizeof target - o, "blobs/%s", etag);
    /* A temporary name renamed over the link: atomic, so a concurrent pull never sees a gap. */
    char tmp[sizeof link + 32];
    snprintf(tmp, sizeof tmp, "%s.tmp%ld", link, (long)getpid());
    unlink(tmp);
    if (symlink(target, tmp) != 0 || rename(tmp, link) != 0) {
        int e = errno;
        unlink(tmp);
        return tl_err_set(c->err, TL_EIO, "%s: cannot create the link: %s", link, strerror(e));
    }
    return 0;
}

/* huggingface_hub's lock for a blob, <cache>/.locks/models--org--name/<etag>.lock (flock), so
 * tallow and huggingface_hub never write the same blob at once. -1: go on without one. */
static int lock_blob(const char *repo_dir, const char *etag) {
    char p[4096 + 400];
    const char *slash = strrchr(repo_dir, '/');
    if (!slash) return -1;
    snprintf(p, sizeof p, "%.*s/.locks/%s", (int)(slash - repo_dir), repo_dir, slash + 1);
    if (tl_mkdir_p(p)) return -1;
    size_t n = strlen(p);
    snprintf(p + n, sizeof p - n, "/%s.lock", etag);
    int fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd >= 0 && flock(fd, LOCK_EX) != 0) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static int get_blob(pull_ctx *c, const char *repo_dir, const char *url, const char *file,
                    const char *etag, uint64_t total, int lfs, tl_pull_result *res);

static int get_file(pull_ctx *c, const char *repo_dir, const char *commit, const char *file,
                    tl_pull_result *res) {
    char snap[4096 + 1100];
    snprintf(snap, sizeof snap, "%s/snapshots/%s/%s", repo_dir, commit, file);
    uint64_t sz = 0;
    if (file_size(snap, &sz) == 0) { /* already there (ours, or huggingface_hub's) */
        res->n_reused++;
        if (c->o->progress) c->o->progress(c->o->progress_ctx, file, sz, sz, 2);
        return 0;
    }
    char url[4096 + 2200], path[3000];
    CURL *e = curl_easy_init();
    if (!e) return tl_err_set(c->err, TL_ENOMEM, "curl_easy_init failed");
    int bad = escape_path(e, file, path, sizeof path);
    curl_easy_cleanup(e);
    if (bad) return tl_err_set(c->err, TL_EINVAL, "%s: file name too long", file);
    snprintf(url, sizeof url, "%s/%s/resolve/%s/%s", c->endpoint, c->o->repo, commit, path);
    hdrs h;
    int rc = head_file(c, url, file, &h);
    if (rc) return rc;
    char etag[160];
    snprintf(etag, sizeof etag, "%s", h.linked_etag[0] ? h.linked_etag : h.etag);
    clean_etag(etag);
    if (!safe_name(etag))
        return tl_err_set(c->err, TL_EFORMAT, "%s: the hub sent no usable ETag for %s", c->o->repo, file);
    uint64_t total = h.has_linked_size ? h.linked_size : h.has_size ? h.size : 0;
    int lfs = h.linked_etag[0] != 0 || is_sha256(etag);
    int lock = lock_blob(repo_dir, etag);
    rc = get_blob(c, repo_dir, url, file, etag, total, lfs, res);
    if (lock >= 0) close(lock); /* releases the flock */
    return rc ? rc : link_snapshot(c, repo_dir, commit, file, etag);
}

/* blobs/<etag>: reused when complete, else downloaded (resuming), checked, moved into place. */
static int get_blob(pull_ctx *c, const char *repo_dir, const char *url, const char *file,
                    const char *etag, uint64_t total, int lfs, tl_pull_result *res) {
    char blob[4096 + 200], inc[4096 + 220];
    uint64_t sz = 0;
    snprintf(blob, sizeof blob, "%s/blobs/%s", repo_dir, etag);
    snprintf(inc, sizeof inc, "%s.incomplete", blob);
    if (file_size(blob, &sz) == 0 && (!total || sz == total)) {
        res->n_reused++;
        if (c->o->progress) c->o->progress(c->o->progress_ctx, file, sz, sz, 2);
        return 0;
    }
    int rc = fetch(c, url, inc, file, total, &res->bytes_downloaded);
    if (rc) return rc;
    if (lfs) {
        char hex[65];
        if (sha256_file(inc, hex)) return tl_err_set(c->err, TL_EIO, "%s: cannot read back", inc);
        if (strcmp(hex, etag)) {
            unlink(inc);
            return tl_err_set(c->err, TL_EFORMAT,
                              "%s: checksum mismatch for %s: the hub says sha256 %s, the download has "
                              "%s (deleted; try again)",
                              c->o->repo, file, etag, hex);
        }
    }
    if (rename(inc, blob) != 0)
        return tl_err_set(c->err, TL_EIO, "%s: cannot move into place: %s", blob, strerror(errno));
    if (c->o->progress) {
        file_size(blob, &sz);
        c->o->progress(c->o->progress_ctx, file, sz, sz, 1);
    }
    res->n_downloaded++;
    return 0;
}

static int matches(const tl_pull_opts *o, const char *file) {
    if (o->n_include <= 0) return 1;
    for (int i = 0; i < o->n_include; i++) {
        char pat[1100];
        size_t n = strlen(o->include[i]);
        snprintf(pat, sizeof pat, "%s%s", o->include[i], n && o->include[i][n - 1] == '/' ? "*" : "");
        if (fnmatch(pat, file, 0) == 0) return 1;
    }
    return 0;
}

static int env_true(const char *name) {
    const char *v = getenv(name);
    return v && (!strcmp(v, "1") || !strcasecmp(v, "on") || !strcasecmp(v, "yes") || !strcasecmp(v, "true"));
}

static void find_token(const tl_pull_opts *o, char *out, size_t cap) {
    out[0] = 0;
    const char *t = o->token;
    if (!t || !*t) t = getenv("HF_TOKEN");
    if (!t || !*t) t = getenv("HUGGING_FACE_HUB_TOKEN");
    if (t && *t) {
        snprintf(out, cap, "%s", t);
        return;
    }
    char path[4096];
    const char *p = getenv("HF_TOKEN_PATH"), *home = getenv("HF_HOME");
    if (p && *p) snprintf(path, sizeof path, "%s", p);
    else if (home && *home) snprintf(path, sizeof path, "%s/token", home);
    else if ((home = getenv("HOME"))) snprintf(path, sizeof path, "%s/.cache/huggingface/token", home);
    else return;
    char *text = NULL;
    size_t len;
    if (tl_file_exists(path) && tl_read_file(path, 4096, &text, &len, NULL) == 0) {
        trim(text);
        snprintf(out, cap, "%s", text);
        free(text);
    }
}

int tl_hub_pull(const tl_pull_opts *o, tl_pull_result *res, tl_err *err) {
    memset(res, 0, sizeof *res);
    if (!o->repo || !tl_hf_repo_id_valid(o->repo))
        return tl_err_set(err, TL_EINVAL, "'%s' is not a Hugging Face repo id (org/name)", o->repo ? o->repo : "");
    const char *rev = o->revision && *o->revision ? o->revision : "main";
    if (!tl_hf_revision_valid(rev))
        return tl_err_set(err, TL_EINVAL, "revision '%s' is not a valid ref name or commit hash", rev);
    char repo_dir[4096];
    int rc = tl_hf_repo_dir(o->repo, repo_dir, sizeof repo_dir, err);
    if (rc) return rc;
    if (env_true("HF_HUB_OFFLINE")) {
        tl_err e2;
        if (tl_model_locate(o->repo, o->revision, res->snapshot, sizeof res->snapshot, &e2) == 0) {
            const char *s = strrchr(res->snapshot, '/');
            snprintf(res->commit, sizeof res->commit, "%s", s ? s + 1 : "");
            return 0;
        }
        return tl_err_set(err, TL_ENET,
                          "HF_HUB_OFFLINE=1 is set, so %s (revision %s) cannot be downloaded, and it is "
                          "not in the cache (%s)",
                          o->repo, rev, repo_dir);
    }
    pull_ctx c = {.o = o, .err = err};
    const char *ep = o->endpoint && *o->endpoint ? o->endpoint : getenv("HF_ENDPOINT");
    snprintf(c.endpoint, sizeof c.endpoint, "%s", ep && *ep ? ep : "https://huggingface.co");
    size_t el = strlen(c.endpoint);
    while (el && c.endpoint[el - 1] == '/') c.endpoint[--el] = 0;
    char tok[4096];
    find_token(o, tok, sizeof tok);
    if (tok[0]) {
        for (const char *p = tok; *p; p++)
            if ((unsigned char)*p < 0x21 || *p == 0x7f)
                return tl_err_set(err, TL_EINVAL, "the Hugging Face token contains spaces or control characters");
        snprintf(c.auth, sizeof c.auth, "Authorization: Bearer %s", tok);
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return tl_err_set(err, TL_ENET, "libcurl failed to initialise");
    char **files = NULL;
    int n_files = 0;
    char commit[64];
    rc = list_files(&c, rev, commit, &files, &n_files);
    if (!rc) {
        snprintf(res->commit, sizeof res->commit, "%s", commit);
        char d[4096 + 100];
        snprintf(d, sizeof d, "%s/blobs", repo_dir);
        int bad = tl_mkdir_p(d);
        snprintf(d, sizeof d, "%s/snapshots/%s", repo_dir, commit);
        bad |= tl_mkdir_p(d);
        if (bad) rc = tl_err_set(err, TL_EIO, "%s: cannot create the cache directories: %s", repo_dir, strerror(errno));
        snprintf(res->snapshot, sizeof res->snapshot, "%s", d);
    }
    int n_match = 0;
    for (int i = 0; !rc && i < n_files; i++) {
        if (!matches(o, files[i])) continue;
        n_match++;
        rc = get_file(&c, repo_dir, commit, files[i], res);
    }
    tl_hub_listing_free(files, n_files);
    if (!rc && n_match == 0)
        rc = tl_err_set(err, TL_ENOTFOUND, "%s: no file at revision '%s' matches the --include patterns", o->repo, rev);
    res->n_files = n_match;
    /* refs/<rev> -> commit, so the revision resolves offline (not for a hash given directly) */
    if (!rc && strcmp(rev, commit)) {
        char ref[4096 + 300];
        snprintf(ref, sizeof ref, "%s/refs/%s", repo_dir, rev);
        FILE *f = mkdir_parent(ref) ? NULL : fopen(ref, "w");
        int bad = !f;
        if (f) {
            bad |= fputs(commit, f) < 0;
            bad |= fclose(f) != 0;
        }
        if (bad) rc = tl_err_set(err, TL_EIO, "%s: cannot write the ref", ref);
    }
    curl_global_cleanup();
    return rc;
}
