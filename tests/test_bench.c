/* test_bench.c — bench arithmetic with fixed numbers: median and range over repetitions, the three output formats, and the plot as an image. */
#include <jansson.h>

#include "bench/bench.h"
#include "test.h"

int main(void) {
    double v[] = {5, 1, 3, 4, 2};
    tl_stat s = tl_stat_of(v, 5);
    CHECK(s.median == 3 && s.min == 1 && s.max == 5 && s.n == 5);
    s = tl_stat_of(v, 4);
    CHECK(s.median == 3.5 && s.min == 1 && s.max == 5);

    tl_bench_result r[2];
    memset(r, 0, sizeof r);
    snprintf(r[0].model, sizeof r[0].model, "models/qwen-2b");
    snprintf(r[0].label, sizeof r[0].label, "Qwen3.5-2B");
    snprintf(r[0].quant, sizeof r[0].quant, "4-bit g64");
    r[0].synthetic = 1;
    r[0].prompt_tokens = 64;
    r[0].gen_tokens = 16;
    r[0].prompt_tps = tl_stat_of((double[]){100, 90, 110}, 3);
    r[0].gen_tps = tl_stat_of((double[]){30, 29, 31}, 3);
    r[0].decode_gbs = tl_stat_of((double[]){31.5}, 1);
    r[0].peak_bw_gbs = 35.0;
    r[0].peak_mem_bytes = 1350000000;
    snprintf(r[1].label, sizeof r[1].label, "broken \"one\"");
    snprintf(r[1].error, sizeof r[1].error, "config.json: missing");

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    tl_bench_write(f, TL_BENCH_MD, r, 2, "test machine", "64 tokens");
    fclose(f);
    CHECK(strstr(buf, "| Qwen3.5-2B (synthetic) | 4-bit g64 |") != NULL);
    CHECK(strstr(buf, "100.0 (90.0–110.0)") != NULL);
    CHECK(strstr(buf, "1.350") != NULL);          /* decimal GB */
    CHECK(strstr(buf, "31.5 (90% of 35.0)") != NULL);
    CHECK(strstr(buf, "error: config.json: missing") != NULL);
    free(buf);

    f = open_memstream(&buf, &len);
    tl_bench_write(f, TL_BENCH_JSON, r, 2, "test machine", "64 tokens");
    fclose(f);
    json_error_t je;
    json_t *root = json_loads(buf, 0, &je);
    CHECKF(root != NULL, "bench JSON does not parse: %s", je.text);
    if (root) {
        json_t *res = json_object_get(root, "results");
        CHECK(json_array_size(res) == 2);
        json_t *a = json_array_get(res, 0);
        CHECK(json_real_value(json_object_get(json_object_get(a, "generation_tps"), "median")) ==
              30.0);
        CHECK(json_integer_value(json_object_get(a, "peak_memory_bytes")) == 1350000000);
        CHECK(json_is_true(json_object_get(a, "synthetic")));
        CHECK(json_is_string(json_object_get(json_array_get(res, 1), "error")));
        CHECK(!strcmp(json_string_value(json_object_get(root, "schema")), "tallow-bench/1"));
        json_decref(root);
    }
    free(buf);

    f = open_memstream(&buf, &len);
    tl_bench_write(f, TL_BENCH_CSV, r, 2, NULL, NULL);
    fclose(f);
    CHECK(!strncmp(buf, "model,label,", 12));
    CHECK(strstr(buf, "\"broken \"\"one\"\"\"") != NULL); /* CSV quoting */
    int lines = 0;
    for (char *p = buf; *p; p++) lines += *p == '\n';
    CHECK(lines == 3);
    free(buf);

    /* The plot: a valid SVG with a bar per model in each of the three panels and the labels. */
    char path[4096];
    const char *bdir = getenv("TALLOW_BUILD");
    snprintf(path, sizeof path, "%s/test_bench_plot.svg", bdir && *bdir ? bdir : "/tmp");
    tl_err e = {0};
    int rc = tl_bench_plot_svg(path, r, 1, "tallow bench test", &e);
    CHECK(rc == 0);
    char *svg;
    size_t n;
    CHECK(tl_read_file(path, 1 << 20, &svg, &n, &e) == 0);
    if (svg) {
        CHECK(!strncmp(svg, "<svg", 4));
        CHECK(strstr(svg, "width=\"960\"") != NULL);
        CHECK(strstr(svg, "prompt tokens/s") && strstr(svg, "generation tokens/s") &&
              strstr(svg, "peak memory (GB)"));
        CHECK(strstr(svg, "Qwen3.5-2B (synthetic)") != NULL);
        CHECK(strstr(svg, ">100.0<") && strstr(svg, ">30.0<") && strstr(svg, ">1.35<"));
        int rects = 0;
        for (char *p = svg; (p = strstr(p, "<rect")); p++) rects++;
        CHECK(rects == 1 + 3 + 1); /* background, 3 bars, 1 legend swatch */
        free(svg);
    }
    CHECK(tl_bench_plot_svg("/nonexistent-dir/x.svg", r, 1, "t", &e) == -TL_EIO);

    /* Bandwidth measurement gives a plausible figure: positive and finite. The floor is low
     * because an ASan -O0 build on a loaded shared machine streams only ~0.4 GB/s. */
    double bw = tl_membw_measure(1, 64u << 20, 2);
    CHECKF(bw > 0.02 && bw < 10000, "measured %.2f GB/s", bw);
    return test_done();
}
