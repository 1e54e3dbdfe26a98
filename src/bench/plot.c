/* plot.c — `bench --plot FILE.svg`: three panels of bars (prompt tokens/s, generation tokens/s,
 * peak memory), one bar per model in the same colour across panels, values written on the bars,
 * so the picture reads without the table. */
#include <stdio.h>
#include <string.h>

#include "bench/bench.h"

static const char *colors[] = {"#4e79a7", "#f28e2b", "#59a14f", "#e15759",
                               "#76b7b2", "#edc948", "#b07aa1", "#9c755f"};

static void xml_text(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

int tl_bench_plot_svg(const char *path, const tl_bench_result *r, int n, const char *title,
                      tl_err *err) {
    FILE *f = fopen(path, "w");
    if (!f) return tl_err_set(err, TL_EIO, "%s: cannot write the plot", path);
    const int W = 960, H = 420, top = 70, bottom = 60, panel_w = W / 3;
    const char *names[3] = {"prompt tokens/s", "generation tokens/s", "peak memory (GB)"};
    fprintf(f, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\" font-family=\"sans-serif\">\n", W, H + 30 * ((n + 2) / 3),
            W, H + 30 * ((n + 2) / 3));
    fprintf(f, "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n");
    fprintf(f, "<text x=\"%d\" y=\"28\" font-size=\"18\" text-anchor=\"middle\">", W / 2);
    xml_text(f, title ? title : "tallow bench");
    fprintf(f, "</text>\n");
    for (int p = 0; p < 3; p++) {
        double vmax = 0;
        for (int i = 0; i < n; i++) {
            double v = p == 0   ? r[i].prompt_tps.median
                       : p == 1 ? r[i].gen_tps.median
                                : (double)r[i].peak_mem_bytes / 1e9;
            if (!r[i].error[0] && v > vmax) vmax = v;
        }
        if (vmax <= 0) vmax = 1;
        int x0 = p * panel_w + 20, pw = panel_w - 40, ph = H - top - bottom;
        fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"14\" text-anchor=\"middle\">%s</text>\n",
                x0 + pw / 2, top - 12, names[p]);
        fprintf(f, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#333\"/>\n", x0,
                top + ph, x0 + pw, top + ph);
        int bw = n > 0 ? pw / n : pw;
        for (int i = 0; i < n; i++) {
            double v = p == 0   ? r[i].prompt_tps.median
                       : p == 1 ? r[i].gen_tps.median
                                : (double)r[i].peak_mem_bytes / 1e9;
            if (r[i].error[0]) v = 0;
            int h = (int)(v / vmax * (ph - 20));
            int x = x0 + i * bw + bw / 8;
            fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"/>\n", x,
                    top + ph - h, bw * 3 / 4, h, colors[i % 8]);
            fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"12\" text-anchor=\"middle\">%.*f"
                       "</text>\n", x + bw * 3 / 8, top + ph - h - 4, p == 2 ? 2 : 1, v);
        }
    }
    /* legend: model labels under the panels */
    for (int i = 0; i < n; i++) {
        int lx = 20 + (i % 3) * panel_w, ly = H - bottom + 40 + 30 * (i / 3);
        fprintf(f, "<rect x=\"%d\" y=\"%d\" width=\"14\" height=\"14\" fill=\"%s\"/>\n", lx,
                ly - 12, colors[i % 8]);
        fprintf(f, "<text x=\"%d\" y=\"%d\" font-size=\"13\">", lx + 20, ly);
        xml_text(f, r[i].label);
        if (r[i].synthetic) fputs(" (synthetic)", f);
        fputs("</text>\n", f);
    }
    fputs("</svg>\n", f);
    if (fclose(f) != 0) return tl_err_set(err, TL_EIO, "%s: write failed", path);
    return 0;
}
