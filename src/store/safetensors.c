/* safetensors.c — read safetensors files as hostile input and look tensors up by name.
 *
 * Contract: a tl_st_set holds any number of files (mapped read-only with mmap, or buffers the
 * caller keeps alive) and the union of their tensors, found by name through a hash table.
 * Every header is checked before anything is exposed: the 8-byte length against the file size
 * and an absolute cap, the JSON, each tensor's dtype, shape, and data_offsets (in range, no
 * overlap, no gap, shape x dtype size == byte count), and names unique across all files.
 * "__metadata__" is ignored. Errors name the file, the tensor and the problem.
 *
 * Directory rules (tl_st_open_dir): model.safetensors.index.json when present (its weight_map
 * is validated: every shard exists and holds the tensors the index places there); else
 * model.safetensors; else (MLX style) every model*.safetensors in the directory, sorted. */
#define _GNU_SOURCE
#include "store/store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define ST_MAX_HEADER (100u << 20) /* the reference implementation's own cap is 100 MB */
#define ST_MAX_FILES 4096
#define ST_MAX_INDEX (64u << 20)

typedef struct st_file {
    char *path; /* as given, for messages */
    char *base; /* basename, for tl_tensor.file */
    const uint8_t *buf;
    size_t len;
    int mapped; /* 1: buf is our mmap, unmapped on free */
} st_file;

struct tl_st_set {
    st_file *files;
    int n_files, cap_files;
    tl_tensor *tensors;
    int *tensor_file; /* index into files */
    int n_tensors, cap_tensors;
    int *slots; /* hash table of tensor indices, -1 = empty */
    size_t n_slots;
};

static const struct {
    const char *name;
    tl_dtype dt;
    size_t size;
} dtypes[] = {
    {"F32", TL_DT_F32, 4}, {"F16", TL_DT_F16, 2}, {"BF16", TL_DT_BF16, 2}, {"U32", TL_DT_U32, 4},
    {"I32", TL_DT_I32, 4}, {"U8", TL_DT_U8, 1},   {"I8", TL_DT_I8, 1},     {"I64", TL_DT_I64, 8},
    {"F64", TL_DT_F64, 8}, {"BOOL", TL_DT_BOOL, 1},
};

const char *tl_dtype_name(tl_dtype t) {
    for (size_t i = 0; i < TL_ARRAY_LEN(dtypes); i++)
        if (dtypes[i].dt == t) return dtypes[i].name;
    return "?";
}

size_t tl_dtype_size(tl_dtype t) {
    for (size_t i = 0; i < TL_ARRAY_LEN(dtypes); i++)
        if (dtypes[i].dt == t) return dtypes[i].size;
    return 0;
}

int64_t tl_tensor_numel(const tl_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

/* ---- the set and its hash table ---- */

tl_st_set *tl_st_new(void) {
    return calloc(1, sizeof(tl_st_set));
}

static uint64_t hash_name(const char *s) {
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (uint8_t)*s) * 1099511628211ull;
    return h;
}

static int table_find(const tl_st_set *set, const char *name) {
    if (!set->n_slots) return -1;
    size_t mask = set->n_slots - 1;
    for (size_t i = hash_name(name) & mask;; i = (i + 1) & mask) {
        int k = set->slots[i];
        if (k < 0) return -1;
        if (!strcmp(set->tensors[k].name, name)) return k;
    }
}

static void table_put(tl_st_set *set, int k) {
    size_t mask = set->n_slots - 1;
    size_t i = hash_name(set->tensors[k].name) & mask;
    while (set->slots[i] >= 0) i = (i + 1) & mask;
    set->slots[i] = k;
}

static int table_grow(tl_st_set *set, size_t want) {
    if (want * 2 <= set->n_slots) return 0;
    size_t n = 64;
    while (n < want * 2) n *= 2;
    int *s = malloc(n * sizeof *s);
    if (!s) return -1;
    free(set->slots);
    set->slots = s;
    set->n_slots = n;
    memset(s, 0xff, n * sizeof *s);
    for (int k = 0; k < set->n_tensors; k++) table_put(set, k);
    return 0;
}

void tl_st_free(tl_st_set *set) {
    if (!set) return;
    for (int i = 0; i < set->n_files; i++) {
        st_file *f = &set->files[i];
        if (f->mapped && f->len) munmap((void *)f->buf, f->len);
        free(f->path);
        free(f->base);
    }
    for (int k = 0; k < set->n_tensors; k++) free((char *)set->tensors[k].name);
    free(set->files);
    free(set->tensors);
    free(set->tensor_file);
    free(set->slots);
    free(set);
}

const tl_tensor *tl_st_get(const tl_st_set *set, const char *name) {
    int k = set && name ? table_find(set, name) : -1;
    return k < 0 ? NULL : &set->tensors[k];
}

int tl_st_count(const tl_st_set *set) {
    return set ? set->n_tensors : 0;
}

const tl_tensor *tl_st_at(const tl_st_set *set, int i) {
    return set && i >= 0 && i < set->n_tensors ? &set->tensors[i] : NULL;
}

void tl_st_release(const tl_st_set *set, const tl_tensor *t) {
    if (!set || !t || !t->nbytes) return;
    long pg = sysconf(_SC_PAGESIZE);
    if (pg <= 0) pg = 4096;
    for (int i = 0; i < set->n_files; i++) {
        const st_file *f = &set->files[i];
        const uint8_t *p = t->data;
        if (!f->mapped || p < f->buf || p + t->nbytes > f->buf + f->len) continue;
        /* Whole pages inside the tensor only, so neighbours stay resident. */
        uintptr_t a = ((uintptr_t)p + (uintptr_t)pg - 1) & ~(uintptr_t)(pg - 1);
        uintptr_t b = ((uintptr_t)p + t->nbytes) & ~(uintptr_t)(pg - 1);
        if (b > a) madvise((void *)a, b - a, MADV_DONTNEED);
        return;
    }
}

/* ---- header parsing ---- */

typedef struct {
    int k; /* tensor index */
    uint64_t begin, end;
} st_range;

static int range_cmp(const void *a, const void *b) {
    const st_range *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return x->end < y->end ? -1 : x->end > y->end;
}

static int get_u64(json_t *v, uint64_t *out) {
    if (!json_is_integer(v) || json_integer_value(v) < 0) return -1;
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int add_file(tl_st_set *set, const char *path, const void *buf, size_t len, int mapped) {
    if (set->n_files == set->cap_files) {
        int cap = set->cap_files ? set->cap_files * 2 : 4;
        st_file *f = realloc(set->files, (size_t)cap * sizeof *f);
        if (!f) return -1;
        set->files = f;
        set->cap_files = cap;
    }
    st_file *f = &set->files[set->n_files];
    const char *slash = strrchr(path, '/');
    f->path = strdup(path);
    f->base = strdup(slash ? slash + 1 : path);
    f->buf = buf;
    f->len = len;
    f->mapped = mapped;
    if (!f->path || !f->base) {
        free(f->path);
        free(f->base);
        return -1;
    }
    set->n_files++;
    return 0;
}

/* Parses one entry into t (name set by caller); returns 0 or an error. */
static int parse_entry(const char *fname, const char *name, json_t *v, uint64_t data_len,
                       tl_tensor *t, st_range *r, tl_err *err) {
    if (!json_is_object(v))
        return tl_err_set(err, TL_EFORMAT, "%s: tensor '%s': header entry is not an object",
                          fname, name);
    json_t *jd = json_object_get(v, "dtype"), *js = json_object_get(v, "shape"),
           *jo = json_object_get(v, "data_offsets");
    if (!json_is_string(jd))
        return tl_err_set(err, TL_EFORMAT, "%s: tensor '%s': missing or non-string \"dtype\"",
                          fname, name);
    const char *ds = json_string_value(jd);
    size_t esize = 0;
    for (size_t i = 0; i < TL_ARRAY_LEN(dtypes); i++)
        if (!strcmp(ds, dtypes[i].name)) {
            t->dtype = dtypes[i].dt;
            esize = dtypes[i].size;
        }
    if (!esize)
        return tl_err_set(err, TL_EUNSUP, "%s: tensor '%s': unsupported dtype \"%.32s\"", fname,
                          name, ds);
    if (!json_is_array(js))
        return tl_err_set(err, TL_EFORMAT, "%s: tensor '%s': missing or non-array \"shape\"",
                          fname, name);
    size_t nd = json_array_size(js);
    if (nd > TL_MAX_DIMS)
        return tl_err_set(err, TL_EUNSUP, "%s: tensor '%s': %zu dimensions (at most %d)", fname,
                          name, nd, TL_MAX_DIMS);
    t->ndim = (int)nd;
    size_t nbytes = esize;
    int overflow = 0;
    for (size_t i = 0; i < nd; i++) {
        uint64_t d;
        if (get_u64(json_array_get(js, i), &d) || d > INT64_MAX)
            return tl_err_set(err, TL_EFORMAT,
                              "%s: tensor '%s': shape[%zu] is not a non-negative integer", fname,
                              name, i);
        t->shape[i] = (int64_t)d;
        if (!tl_mul_ok(nbytes, (size_t)d, &nbytes)) overflow = 1;
    }
    int empty = 0; /* a zero dimension makes any product empty */
    for (size_t i = 0; i < nd; i++) empty |= t->shape[i] == 0;
    if (empty) nbytes = 0;
    else if (overflow)
        return tl_err_set(err, TL_EFORMAT, "%s: tensor '%s': shape overflows the address space",
                          fname, name);
    if (!json_is_array(jo) || json_array_size(jo) != 2)
        return tl_err_set(err, TL_EFORMAT,
                          "%s: tensor '%s': \"data_offsets\" must be an array [begin, end]", fname,
                          name);
    uint64_t b, e;
    if (get_u64(json_array_get(jo, 0), &b) || get_u64(json_array_get(jo, 1), &e))
        return tl_err_set(err, TL_EFORMAT,
                          "%s: tensor '%s': data_offsets are not non-negative integers", fname,
                          name);
    if (b > e)
        return tl_err_set(err, TL_EFORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] end before they begin",
                          fname, name, (unsigned long long)b, (unsigned long long)e);
    if (e > data_len)
        return tl_err_set(err, TL_EFORMAT,
                          "%s: tensor '%s': data_offsets [%llu, %llu] out of range (data section is %llu bytes; file truncated?)",
                          fname, name, (unsigned long long)b, (unsigned long long)e,
                          (unsigned long long)data_len);
    if (e - b != nbytes)
        return tl_err_set(err, TL_EFORMAT,
                          "%s: tensor '%s': shape x %s = %zu bytes but data_offsets span %llu bytes",
                          fname, name, ds, nbytes, (unsigned long long)(e - b));
    t->nbytes = nbytes;
    r->begin = b;
    r->end = e;
    return 0;
}

int tl_st_parse(tl_st_set *set, const char *fname, const void *buf, size_t len, tl_err *err) {
    const uint8_t *p = buf;
    if (len < 8)
        return tl_err_set(err, TL_EFORMAT, "%s: %zu bytes, too short for a safetensors header",
                          fname, len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | p[i];
    if (hlen > len - 8)
        return tl_err_set(err, TL_EFORMAT,
                          "%s: header length %llu runs past the end of the file (%zu bytes; truncated?)",
                          fname, (unsigned long long)hlen, len);
    if (hlen > ST_MAX_HEADER)
        return tl_err_set(err, TL_ELIMIT, "%s: header length %llu is over the limit of %u bytes",
                          fname, (unsigned long long)hlen, ST_MAX_HEADER);
    if (hlen < 2 || p[8] != '{')
        return tl_err_set(err, TL_EFORMAT, "%s: header is not a JSON object (not a safetensors file?)",
                          fname);
    json_error_t je;
    json_t *root = json_loadb((const char *)p + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return tl_err_set(err, TL_EFORMAT, "%s: header JSON: %s (at header byte %d)", fname, je.text,
                          je.position);
    if (!json_is_object(root)) {
        json_decref(root);
        return tl_err_set(err, TL_EFORMAT, "%s: header is not a JSON object", fname);
    }
    uint64_t data_len = len - 8 - hlen;
    const uint8_t *data = p + 8 + hlen;
    size_t n = json_object_size(root);
    st_range *ranges = calloc(n ? n : 1, sizeof *ranges);
    int first = set->n_tensors, rc = 0, nr = 0;
    if (!ranges || add_file(set, fname, buf, len, 0)) {
        free(ranges);
        json_decref(root);
        return tl_err_set(err, TL_ENOMEM, "%s: out of memory", fname);
    }
    int fi = set->n_files - 1;
    if (set->n_tensors + (int)n > set->cap_tensors) {
        int cap = set->n_tensors + (int)n;
        tl_tensor *t = realloc(set->tensors, (size_t)cap * sizeof *t);
        if (t) set->tensors = t;
        int *tf = realloc(set->tensor_file, (size_t)cap * sizeof *tf);
        if (tf) set->tensor_file = tf;
        if (!t || !tf) rc = tl_err_set(err, TL_ENOMEM, "%s: out of memory for %zu tensors", fname, n);
        else set->cap_tensors = cap;
    }
    if (!rc && table_grow(set, (size_t)set->n_tensors + n))
        rc = tl_err_set(err, TL_ENOMEM, "%s: out of memory", fname);
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (rc) break;
        if (!strcmp(key, "__metadata__")) continue;
        int other = table_find(set, key);
        if (other >= 0) {
            rc = tl_err_set(err, TL_EFORMAT, "%s: tensor '%s' is also in %s", fname, key,
                            set->files[set->tensor_file[other]].base);
            break;
        }
        tl_tensor t = {0};
        st_range r = {0};
        rc = parse_entry(fname, key, v, data_len, &t, &r, err);
        if (rc) break;
        t.name = strdup(key);
        if (!t.name) {
            rc = tl_err_set(err, TL_ENOMEM, "%s: out of memory", fname);
            break;
        }
        t.data = data + r.begin;
        t.file = set->files[fi].base;
        r.k = set->n_tensors;
        ranges[nr++] = r;
        set->tensors[set->n_tensors] = t;
        set->tensor_file[set->n_tensors] = fi;
        table_put(set, set->n_tensors);
        set->n_tensors++;
    }
    /* The data section must be tiled exactly: sorted ranges meet end to begin, from 0 to the end. */
    if (!rc) {
        qsort(ranges, (size_t)nr, sizeof *ranges, range_cmp);
        uint64_t at = 0;
        for (int i = 0; i < nr && !rc; i++) {
            const char *nm = set->tensors[ranges[i].k].name;
            if (ranges[i].begin < at)
                rc = tl_err_set(err, TL_EFORMAT,
                                "%s: tensor '%s': data_offsets [%llu, %llu] overlap tensor '%s'",
                                fname, nm, (unsigned long long)ranges[i].begin,
                                (unsigned long long)ranges[i].end, set->tensors[ranges[i - 1].k].name);
            else if (ranges[i].begin > at)
                rc = tl_err_set(err, TL_EFORMAT,
                                "%s: %llu unused bytes in the data section at offset %llu (before tensor '%s')",
                                fname, (unsigned long long)(ranges[i].begin - at),
                                (unsigned long long)at, nm);
            at = ranges[i].end;
        }
        if (!rc && at != data_len)
            rc = tl_err_set(err, TL_EFORMAT,
                            "%s: tensors cover %llu bytes but the data section holds %llu",
                            fname, (unsigned long long)at, (unsigned long long)data_len);
    }
    free(ranges);
    json_decref(root);
    if (rc) { /* roll back this file's tensors so the set stays consistent */
        for (int k = first; k < set->n_tensors; k++) free((char *)set->tensors[k].name);
        set->n_tensors = first;
        if (set->n_slots) {
            memset(set->slots, 0xff, set->n_slots * sizeof *set->slots);
            for (int k = 0; k < set->n_tensors; k++) table_put(set, k);
        }
        free(set->files[fi].path);
        free(set->files[fi].base);
        set->n_files--;
    }
    return rc;
}

int tl_st_open_file(tl_st_set *set, const char *path, tl_err *err) {
    if (set->n_files >= ST_MAX_FILES)
        return tl_err_set(err, TL_ELIMIT, "%s: more than %d safetensors files", path, ST_MAX_FILES);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return tl_err_set(err, TL_EIO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return tl_err_set(err, TL_EIO, "%s: not a regular file", path);
    }
    size_t len = (size_t)st.st_size;
    if (len < 8) {
        close(fd);
        return tl_err_set(err, TL_EFORMAT, "%s: %zu bytes, too short for a safetensors header",
                          path, len);
    }
    void *m = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (m == MAP_FAILED) return tl_err_set(err, TL_EIO, "%s: mmap: %s", path, strerror(errno));
    int rc = tl_st_parse(set, path, m, len, err);
    if (rc) {
        munmap(m, len);
        return rc;
    }
    set->files[set->n_files - 1].mapped = 1;
    return 0;
}

/* ---- directories ---- */

static int name_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_model_st(const char *n) {
    size_t l = strlen(n);
    return !strncmp(n, "model", 5) && l > 17 && !strcmp(n + l - 12, ".safetensors");
}

static int open_glob(tl_st_set *set, const char *dir, tl_err *err) {
    DIR *d = opendir(dir);
    if (!d) return tl_err_set(err, TL_EIO, "%s: cannot open directory: %s", dir, strerror(errno));
    char **names = NULL;
    int n = 0, cap = 0, rc = 0;
    struct dirent *de;
    while ((de = readdir(d))) {
        if (!is_model_st(de->d_name)) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            char **nn = realloc(names, (size_t)cap * sizeof *nn);
            if (!nn) {
                rc = tl_err_set(err, TL_ENOMEM, "%s: out of memory", dir);
                break;
            }
            names = nn;
        }
        if (!(names[n] = strdup(de->d_name))) {
            rc = tl_err_set(err, TL_ENOMEM, "%s: out of memory", dir);
            break;
        }
        n++;
    }
    closedir(d);
    if (!rc && n == 0)
        rc = tl_err_set(err, TL_ENOTFOUND, "%s: no model*.safetensors files in this directory", dir);
    if (!rc) qsort(names, (size_t)n, sizeof *names, name_cmp);
    char path[4096];
    for (int i = 0; i < n && !rc; i++) {
        if (tl_path_join(path, sizeof path, dir, names[i]))
            rc = tl_err_set(err, TL_EINVAL, "%s: path too long", dir);
        else
            rc = tl_st_open_file(set, path, err);
    }
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
    return rc;
}

static int bad_shard_name(const char *s) {
    return !*s || strchr(s, '/') || strchr(s, '\\') || !strcmp(s, ".") || !strcmp(s, "..");
}

static int open_index(tl_st_set *set, const char *dir, const char *ipath, tl_err *err) {
    char *text;
    size_t len;
    int rc = tl_read_file(ipath, ST_MAX_INDEX, &text, &len, err);
    if (rc) return rc;
    json_error_t je;
    json_t *root = json_loadb(text, len, 0, &je);
    free(text);
    if (!root)
        return tl_err_set(err, TL_EFORMAT, "%s: %s (line %d, column %d)", ipath, je.text, je.line,
                          je.column);
    json_t *wm = json_object_get(root, "weight_map");
    if (!json_is_object(root) || !json_is_object(wm)) {
        json_decref(root);
        return tl_err_set(err, TL_EFORMAT, "%s: $.weight_map: missing or not an object", ipath);
    }
    /* Open each distinct shard once, in first-mention order. */
    json_t *opened = json_object(); /* shard name -> file index */
    const char *key;
    json_t *v;
    char path[4096];
    json_object_foreach(wm, key, v) {
        if (!json_is_string(v)) {
            rc = tl_err_set(err, TL_EFORMAT, "%s: $.weight_map[\"%s\"]: not a string", ipath, key);
            break;
        }
        const char *shard = json_string_value(v);
        if (bad_shard_name(shard)) {
            rc = tl_err_set(err, TL_EFORMAT,
                            "%s: $.weight_map[\"%s\"]: shard name \"%s\" is not a file name in the model directory",
                            ipath, key, shard);
            break;
        }
        if (json_object_get(opened, shard)) continue;
        if (tl_path_join(path, sizeof path, dir, shard)) {
            rc = tl_err_set(err, TL_EINVAL, "%s: path too long", dir);
            break;
        }
        if (!tl_file_exists(path)) {
            rc = tl_err_set(err, TL_ENOTFOUND,
                            "%s: $.weight_map[\"%s\"] names shard %s, which does not exist", ipath,
                            key, shard);
            break;
        }
        rc = tl_st_open_file(set, path, err);
        if (rc) break;
        json_object_set_new(opened, shard, json_integer(set->n_files - 1));
    }
    /* Every tensor is where the index says. */
    if (!rc) json_object_foreach(wm, key, v) {
        int k = table_find(set, key);
        const char *shard = json_string_value(v);
        if (k < 0) {
            rc = tl_err_set(err, TL_EFORMAT,
                            "%s: tensor '%s' is listed in shard %s but no shard holds it", ipath,
                            key, shard);
            break;
        }
        const char *in = set->files[set->tensor_file[k]].base;
        if (strcmp(in, shard)) {
            rc = tl_err_set(err, TL_EFORMAT, "%s: tensor '%s' is listed in shard %s but is in %s",
                            ipath, key, shard, in);
            break;
        }
    }
    if (!rc && json_object_size(wm) == 0)
        rc = tl_err_set(err, TL_EFORMAT, "%s: $.weight_map is empty", ipath);
    json_decref(opened);
    json_decref(root);
    return rc;
}

int tl_st_open_dir(tl_st_set **out, const char *dir, tl_err *err) {
    *out = NULL;
    if (!tl_dir_exists(dir)) return tl_err_set(err, TL_ENOTFOUND, "%s: no such directory", dir);
    tl_st_set *set = tl_st_new();
    if (!set) return tl_err_set(err, TL_ENOMEM, "out of memory");
    char path[4096];
    int rc;
    if (tl_path_join(path, sizeof path, dir, "model.safetensors.index.json"))
        rc = tl_err_set(err, TL_EINVAL, "%s: path too long", dir);
    else if (tl_file_exists(path))
        rc = open_index(set, dir, path, err);
    else if (tl_path_join(path, sizeof path, dir, "model.safetensors") == 0 && tl_file_exists(path))
        rc = tl_st_open_file(set, path, err);
    else
        rc = open_glob(set, dir, err);
    if (rc) {
        tl_st_free(set);
        return rc;
    }
    *out = set;
    return 0;
}
