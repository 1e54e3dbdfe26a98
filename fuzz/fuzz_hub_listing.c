/* fuzz_hub_listing.c — libFuzzer target: tl_hub_listing_parse on arbitrary bytes (the hub's, or
 * any HF_ENDPOINT's, answer to the file listing) returns an error, or a commit that is a plain
 * file name and files that all stay inside the snapshot directory: never "..", never absolute. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char commit[64];
    char **files;
    int n;
    tl_err err;
    if (tl_hub_listing_parse("org/fuzz", (const char *)data, size, commit, &files, &n, &err))
        return 0;
    if (!commit[0] || strchr(commit, '/') || !strcmp(commit, "..") || !strcmp(commit, "."))
        abort();
    for (int i = 0; i < n; i++) {
        const char *f = files[i];
        if (!f[0] || f[0] == '/' || !strcmp(f, "..") || !strncmp(f, "../", 3) ||
            strstr(f, "/../") || (strlen(f) >= 3 && !strcmp(f + strlen(f) - 3, "/..")))
            abort();
    }
    tl_hub_listing_free(files, n);
    return 0;
}
