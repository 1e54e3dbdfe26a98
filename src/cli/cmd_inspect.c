/* cmd_inspect.c — `tallow inspect MODEL [MODEL2]`: a model's facts from its config.json
 * (architecture, sizes, quantization, parameters, a memory estimate) and, above all, what its
 * chat template does at inference: the generation suffix it renders for a fixed probe
 * conversation with enable_thinking unset, on and off, with a warning when the default opens a
 * <think> block. With two models, where their rendered prompts for the same conversation part
 * ways — the Qwen3.5-4B vs 2B trap (docs/models.md §6.1) that validation at training time never
 * sees. Exit codes: 0 ok, 1 a model could not be read, 2 usage. */
#define _GNU_SOURCE
#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "core/core.h"
#include "store/store.h"

#define PROBE_MESSAGES \
    "[{\"role\":\"system\",\"content\":\"You are a helpful assistant.\"}," \
    "{\"role\":\"user\",\"content\":\"What is 2+2?\"}]"
#define CTX_FOR_ESTIMATE 4096

static void usage(FILE *f) {
    fprintf(f,
            "usage: tallow inspect MODEL [MODEL2]\n\n"
            "Show a model's facts (config.json) and its chat template's thinking behaviour: the\n"
            "text the template appends to start the assistant's turn, with enable_thinking unset\n"
            "(the template's default, what tallow uses unless --thinking is given), on and off.\n"
            "With two models, show where their prompts for the same conversation diverge.\n"
            "MODEL is a directory or a Hugging Face repo id in the local cache.\n");
}

typedef struct model_view {
    const char *spec;
    char dir[4096];
    char *tpl, *bos, *eos;
    char *render[3];    /* thinking unset / on / off, with the generation prompt */
    char *base;         /* without the generation prompt */
    char tpl_err[1024];
} model_view;

/* C-style escaped, quoted */
static void put_quoted(const char *s, size_t n) {
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '\n') fputs("\\n", stdout);
        else if (ch == '\t') fputs("\\t", stdout);
        else if (ch == '\r') fputs("\\r", stdout);
        else if (ch == '"' || ch == '\\') { putchar('\\'); putchar(ch); }
        else if (ch < 0x20) printf("\\x%02x", ch);
        else putchar(ch);
    }
    putchar('"');
}

static const char *human(double bytes, char *buf, size_t cap) {
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int k = 0;
    while (bytes >= 1024 && k < 4) { bytes /= 1024; k++; }
    snprintf(buf, cap, k ? "%.2f %s" : "%.0f %s", bytes, u[k]);
    return buf;
}

static int64_t safetensors_bytes(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int64_t total = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 12 && !strcmp(e->d_name + n - 12, ".safetensors")) {
            char p[4096 + 256];
            struct stat st;
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            if (!stat(p, &st)) total += st.st_size;
        }
    }
    closedir(d);
    return total;
}

static void print_facts(model_view *m) {
    tl_config cfg;
    tl_err err = {0};
    char b1[32], b2[32], b3[32], b4[32];
    if (tl_config_load(&cfg, m->dir, &err)) {
        printf("  config         cannot read: %s\n", err.msg);
        return;
    }
    int64_t H = cfg.hidden_size, I = cfg.intermediate_size, V = cfg.vocab_size;
    int64_t hd = cfg.head_dim ? cfg.head_dim : (cfg.n_heads ? H / cfg.n_heads : 0);
    int n_full = 0;
    for (int i = 0; i < cfg.n_layers; i++) n_full += cfg.layer_is_full ? cfg.layer_is_full[i] : 1;
    int is35 = strstr(cfg.model_type, "qwen3_5") != NULL;
    if (!is35) n_full = cfg.n_layers;
    int n_lin = cfg.n_layers - n_full;
    /* parameters of the text model, from the shapes (models.md §1.1.1 for Qwen3.5) */
    int64_t nk = cfg.linear_num_key_heads, nv = cfg.linear_num_value_heads;
    int64_t dk = cfg.linear_key_head_dim, dv = cfg.linear_value_head_dim;
    int64_t conv_dim = 2 * nk * dk + nv * dv;
    int64_t p_mlp = 3 * H * I + 2 * H;
    int64_t q_out = (int64_t)cfg.n_heads * hd * (cfg.attn_output_gate ? 2 : 1);
    int64_t p_full = H * q_out + 2 * H * cfg.n_kv_heads * hd + (int64_t)cfg.n_heads * hd * H +
                     (is35 ? 2 * hd : 0) + p_mlp;
    int64_t p_lin = H * conv_dim + H * nv * dv + 2 * H * nv + conv_dim * cfg.linear_conv_kernel_dim +
                    2 * nv + dv + nv * dv * H + p_mlp;
    int64_t params = V * H * (cfg.tie_word_embeddings ? 1 : 2) + H + n_full * p_full + n_lin * p_lin;
    const char *arch = is35 ? "Qwen3.5 (hybrid Gated DeltaNet + gated attention)"
                     : !strcmp(cfg.model_type, "llama") ? "Llama" : cfg.model_type;
    printf("  architecture   %s [%s]\n", arch, cfg.model_type);
    if (cfg.synthetic)
        printf("  synthetic      yes: random weights written by tallow synth (speed and memory "
               "are the real shape's, text is noise)\n");
    if (is35)
        printf("  layers         %d (%d Gated DeltaNet + %d full attention)\n", cfg.n_layers, n_lin, n_full);
    else
        printf("  layers         %d\n", cfg.n_layers);
    printf("  sizes          hidden %lld, intermediate %lld, heads %d (kv %d, head_dim %lld), vocab %lld\n",
           (long long)H, (long long)I, cfg.n_heads, cfg.n_kv_heads, (long long)hd, (long long)V);
    printf("  context        %d tokens (max_position_embeddings)\n", cfg.max_position_embeddings);
    printf("  embeddings     %s\n", cfg.tie_word_embeddings ? "tied (no separate lm_head)" : "untied (own lm_head)");
    double bpp;
    if (cfg.quant.bits) {
        printf("  quantization   MLX affine %d-bit, group size %d%s\n", cfg.quant.bits, cfg.quant.group_size,
               cfg.n_quant_overrides ? " (with per-module overrides)" : "");
        bpp = cfg.quant.bits / 8.0 + 4.0 / (cfg.quant.group_size ? cfg.quant.group_size : 64);
    } else {
        const char *dt = cfg.torch_dtype[0] ? cfg.torch_dtype : "bfloat16";
        printf("  quantization   none (%s)\n", dt);
        bpp = strstr(dt, "32") ? 4 : 2;
    }
    printf("  parameters     %.2f B (from config.json shapes)\n", params / 1e9);
    int64_t on_disk = safetensors_bytes(m->dir);
    double wbytes = on_disk ? (double)on_disk : params * bpp;
    int ctx = cfg.max_position_embeddings && cfg.max_position_embeddings < CTX_FOR_ESTIMATE ? cfg.max_position_embeddings : CTX_FOR_ESTIMATE;
    double kv = (double)n_full * 2 * cfg.n_kv_heads * hd * 4 * ctx;   /* f32 K and V, as the engine keeps them */
    double state = is35 ? (double)n_lin * (nv * dk * dv * 4 + (cfg.linear_conv_kernel_dim - 1) * conv_dim * 4) : 0;
    printf("  weights        %s (%s)\n", human(wbytes, b1, sizeof b1),
           on_disk ? "safetensors on disk" : "estimated from parameters");
    printf("  memory         ~%s for one sequence of %d tokens: weights %s + KV cache %s%s%s\n",
           human(wbytes + kv + state, b2, sizeof b2), ctx, human(wbytes, b3, sizeof b3),
           human(kv, b4, sizeof b4), is35 ? " + recurrent state " : "", is35 ? human(state, b1, sizeof b1) : "");
    tl_config_free(&cfg);
}

static int load_view(model_view *m) {
    tl_err err = {0};
    if (tl_dir_exists(m->spec)) snprintf(m->dir, sizeof m->dir, "%s", m->spec);
    else if (tl_model_locate(m->spec, NULL, m->dir, sizeof m->dir, &err)) {
        cli_error("%s", err.msg);
        return -1;
    }
    if (tl_chat_template_load(m->dir, &m->tpl, &m->bos, &m->eos, &err)) {
        snprintf(m->tpl_err, sizeof m->tpl_err, "%s", err.msg);
        return 0;
    }
    static const tl_thinking th[3] = {TL_THINKING_TEMPLATE, TL_THINKING_ON, TL_THINKING_OFF};
    for (int i = 0; i < 3; i++) {
        tl_chat_opts o = {.add_generation_prompt = 1, .thinking = th[i], .bos_token = m->bos, .eos_token = m->eos};
        if (tl_chat_render(m->tpl, PROBE_MESSAGES, NULL, NULL, &o, &m->render[i], NULL, &err)) {
            snprintf(m->tpl_err, sizeof m->tpl_err, "%s", err.msg);
            return 0;
        }
    }
    tl_chat_opts o = {.bos_token = m->bos, .eos_token = m->eos};
    if (tl_chat_render(m->tpl, PROBE_MESSAGES, NULL, NULL, &o, &m->base, NULL, &err))
        snprintf(m->tpl_err, sizeof m->tpl_err, "%s", err.msg);
    return 0;
}

/* The text the template adds for add_generation_prompt (what the model continues from). */
static const char *suffix_of(const model_view *m, int i, size_t *n) {
    const char *r = m->render[i];
    size_t bl = m->base ? strlen(m->base) : 0;
    if (m->base && !strncmp(r, m->base, bl)) {
        *n = strlen(r) - bl;
        return r + bl;
    }
    *n = strlen(r);
    return r;
}

static void print_template(const model_view *m) {
    if (m->tpl_err[0] && !m->render[0]) {
        printf("  chat template  %s\n", m->tpl_err);
        return;
    }
    printf("  chat template  %zu bytes\n", strlen(m->tpl));
    printf("  generation suffix for a system + user probe (add_generation_prompt):\n");
    static const char *label[3] = {"thinking unset (template default)", "--thinking on", "--thinking off"};
    for (int i = 0; i < 3; i++) {
        size_t n;
        const char *s = suffix_of(m, i, &n);
        printf("    %-34s ", label[i]);
        put_quoted(s, n);
        putchar('\n');
    }
    int def_open = tl_chat_prompt_opens_think(m->render[0]);
    int on_open = tl_chat_prompt_opens_think(m->render[1]);
    int off_open = tl_chat_prompt_opens_think(m->render[2]);
    if (def_open)
        printf("  WARNING: by default this template opens a <think> block: replies start with\n"
               "           reasoning before the answer. Pass --thinking off for direct answers.\n");
    else if (on_open)
        printf("  thinking       off by default (pre-closed or absent); --thinking on opens <think>\n");
    else
        printf("  thinking       the template has no thinking switch (enable_thinking changes nothing)\n");
    if (off_open) printf("  note: --thinking off still leaves a <think> block open\n");
}

static void compare(const model_view *a, const model_view *b) {
    printf("\n== %s vs %s: the same probe conversation at inference ==\n", a->spec, b->spec);
    if (!a->render[0] || !b->render[0]) {
        printf("  cannot compare: %s has no renderable chat template\n", !a->render[0] ? a->spec : b->spec);
        return;
    }
    static const char *label[3] = {"thinking unset", "--thinking on", "--thinking off"};
    int diverge_default = 0;
    for (int i = 0; i < 3; i++) {
        const char *x = a->render[i], *y = b->render[i];
        size_t k = 0;
        while (x[k] && x[k] == y[k]) k++;
        if (!x[k] && !y[k]) {
            printf("  %-15s identical prompts (%zu bytes)\n", label[i], strlen(x));
            continue;
        }
        if (i == 0) diverge_default = 1;
        size_t line = 1;
        for (size_t j = 0; j < k; j++) line += x[j] == '\n';
        /* show from the start of the line before the divergence, so both sides read whole */
        size_t s = k;
        if (s > 0 && x[s - 1] == '\n') s--;
        while (s > 0 && x[s - 1] != '\n') s--;
        printf("  %-15s DIVERGE at byte %zu (line %zu); from byte %zu:\n", label[i], k, line, s);
        printf("    %s: ", a->spec);
        put_quoted(x + s, strlen(x + s));
        printf("\n    %s: ", b->spec);
        put_quoted(y + s, strlen(y + s));
        putchar('\n');
    }
    int ao = tl_chat_prompt_opens_think(a->render[0]), bo = tl_chat_prompt_opens_think(b->render[0]);
    if (diverge_default && ao != bo)
        printf("  WARNING: with the templates' defaults %s starts its reply inside <think> and %s does\n"
               "           not: the same code gets reasoning from one model and prose from the other.\n"
               "           Set --thinking on or off explicitly.\n",
               ao ? a->spec : b->spec, ao ? b->spec : a->spec);
}

static void free_view(model_view *m) {
    free(m->tpl);
    free(m->bos);
    free(m->eos);
    free(m->base);
    for (int i = 0; i < 3; i++) free(m->render[i]);
}

int cmd_inspect(int argc, char **argv) {
    static const struct option lo[] = {{"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        if (c == 'h') { usage(stdout); return 0; }
        cli_error("unknown flag '%s' (tallow inspect --help)", argv[optind - 1]);
        return 2;
    }
    int n = argc - optind;
    if (n < 1 || n > 2) {
        cli_error("inspect takes one or two models");
        usage(stderr);
        return 2;
    }
    model_view mv[2];
    memset(mv, 0, sizeof mv);
    int rc = 0;
    for (int i = 0; i < n; i++) {
        mv[i].spec = argv[optind + i];
        if (load_view(&mv[i])) { rc = 1; goto done; }
    }
    for (int i = 0; i < n; i++) {
        printf("%s%s (%s)\n", i ? "\n" : "", mv[i].spec, mv[i].dir);
        print_facts(&mv[i]);
        print_template(&mv[i]);
    }
    if (n == 2) compare(&mv[0], &mv[1]);
done:
    for (int i = 0; i < n; i++) free_view(&mv[i]);
    return rc;
}
