/* test_qwen35_gdn.c — the Gated DeltaNet reference ops against transformers (goldens from
 * tools/qwen35_gdn_ops.py on inputs both sides generate from the same hash): conv + SiLU and its
 * state, the exact delta rule and the chunked form, split across calls, interleaved slots, the
 * gated RMSNorm, state clear. */
#include "backend/cpu/cpu_gdn.h"
#include "backend/ref/ref_gdn.h"
#include "test.h"
#include "test_qwen35_common.h"

enum { T = 11, HK = 2, HV = 4, DK = 16, DV = 16, K = 4, KEY = HK * DK, CONV = 2 * KEY + HV * DV };
static const char *GOLD = "tests/data/qwen35/gdn_ops.txt";

typedef struct {
    float P[T * CONV], W[CONV * K], A[T * HV], B[T * HV], alog[HV], dtb[HV], Z[T * HV * DV],
        NW[DV];
} inputs;

static void make_inputs(inputs *in) {
    q35_hash_f32(1, T * CONV, 2.0f, in->P);
    q35_hash_f32(2, CONV * K, 0.8f, in->W);
    q35_hash_f32(3, T * HV, 3.0f, in->A);
    q35_hash_f32(4, T * HV, 3.0f, in->B);
    q35_hash_f32(5, HV, 1.5f, in->alog);
    q35_hash_f32(6, HV, 1.0f, in->dtb);
    q35_hash_f32(7, T * HV * DV, 2.0f, in->Z);
    q35_hash_f32(8, DV, 0.5f, in->NW);
    for (int i = 0; i < DV; i++) in->NW[i] += 1.0f;
}

/* Run tokens [t0, t1) of one slot through conv + rule (exact or chunked) into out rows t0... */
static void run_span(const inputs *in, tl_gdn_state *st, int slot, int t0, int t1, float *conv,
                     float *rule, int chunk, float *scratch) {
    int n = t1 - t0;
    int32_t slots[T], pos[T];
    for (int i = 0; i < n; i++) slots[i] = slot, pos[i] = t0 + i;
    tl_rows rows = {.n = n, .slot = slots, .pos = pos};
    float *x = conv + (size_t)t0 * CONV;
    memcpy(x, in->P + (size_t)t0 * CONV, (size_t)n * CONV * sizeof(float));
    tl_ref_gdn_conv(NULL, x, in->W, st, &rows);
    if (chunk)
        tl_gdn_rule_chunked(rule + (size_t)t0 * HV * DV, x, in->A + t0 * HV, in->B + t0 * HV,
                            in->alog, in->dtb, st, &rows, chunk, scratch);
    else
        tl_ref_gdn_rule(NULL, rule + (size_t)t0 * HV * DV, x, in->A + t0 * HV, in->B + t0 * HV,
                        in->alog, in->dtb, st, &rows);
}

static float rel(const float *got, const float *want, size_t n) {
    float m = q35_maxabs(want, n);
    return q35_maxdiff(got, want, n) / (m > 0 ? m : 1.0f);
}

/* The chunked forms (scalar and AVX-512) at the Qwen3.5 head shape (dk = dv = 128; r = 1 and 2)
 * against the exact recurrence: 150 tokens of one slot after 20 of another, in runs that start
 * mid-chunk, from a state that is not zero. */
static void check_real_shapes(void) {
    enum { RT = 150, RHK = 2, RD = 128 };
    for (int rr = 1; rr <= 2; rr++) {
        const int hv = RHK * rr, conv = 2 * RHK * RD + hv * RD;
        const size_t nrec = (size_t)2 * hv * RD * RD;
        float *qkv = malloc((size_t)RT * conv * sizeof(float));
        float *a = malloc((size_t)RT * hv * sizeof(float)), *b = malloc((size_t)RT * hv * sizeof(float));
        float alog[4], dtb[4];
        q35_hash_f32(21, (size_t)RT * conv, 1.0f, qkv);
        q35_hash_f32(22, (size_t)RT * hv, 4.0f, a);
        q35_hash_f32(23, (size_t)RT * hv, 4.0f, b);
        q35_hash_f32(24, 4, 1.0f, alog);
        q35_hash_f32(25, 4, 2.0f, dtb);
        float *rec[3], *out[3];
        for (int v = 0; v < 3; v++) {
            rec[v] = malloc(nrec * sizeof(float));
            q35_hash_f32(26, nrec, 0.1f, rec[v]);
            out[v] = malloc((size_t)RT * hv * RD * sizeof(float));
        }
        int32_t slots[RT], pos[RT];
        for (int i = 0; i < RT; i++) slots[i] = i < 20 ? 1 : 0, pos[i] = i < 20 ? i : i - 20;
        const int cuts[] = {0, 7, 20, 83, RT}; /* calls: [0,7) [7,20) [20,83) [83,150) */
        size_t scr_n = tl_cpu_gdn_chunk_scratch_floats(TL_GDN_CHUNK_MAX, RD, RD);
        float *scr = malloc(scr_n * sizeof(float));
        int have_avx512 = 0;
        for (int v = 0; v < 3; v++) {
            tl_gdn_state st = {.max_slots = 2, .conv_dim = conv, .conv_k = 4, .n_v_heads = hv,
                               .n_k_heads = RHK, .dk = RD, .dv = RD, .rec = rec[v]};
            if (v == 2 && !(have_avx512 = tl_cpu_gdn_chunked_ok(&st))) break;
            for (int c = 0; c + 1 < (int)TL_ARRAY_LEN(cuts); c++) {
                int r0 = cuts[c], n = cuts[c + 1] - cuts[c];
                tl_rows rows = {.n = n, .slot = slots + r0, .pos = pos + r0};
                float *o = out[v] + (size_t)r0 * hv * RD;
                const float *x = qkv + (size_t)r0 * conv, *aa = a + r0 * hv, *bb = b + r0 * hv;
                if (v == 0) tl_ref_gdn_rule(NULL, o, x, aa, bb, alog, dtb, &st, &rows);
                else if (v == 1) tl_gdn_rule_chunked(o, x, aa, bb, alog, dtb, &st, &rows, 16, scr);
                else {
                    tl_cpu_gdn_rule_chunked(o, x, aa, bb, alog, dtb, &st, &rows, TL_GDN_CHUNK, 0,
                                            hv / 2, scr);
                    tl_cpu_gdn_rule_chunked(o, x, aa, bb, alog, dtb, &st, &rows, TL_GDN_CHUNK,
                                            hv / 2, hv, scr);
                }
            }
        }
        for (int v = 1; v < 3; v++) {
            if (v == 2 && !have_avx512) {
                printf("no AVX-512: the AVX-512 chunked form is not checked\n");
                break;
            }
            size_t no = (size_t)RT * hv * RD;
            double eo = q35_maxdiff(out[v], out[0], no) / q35_maxabs(out[0], no);
            double es = q35_maxdiff(rec[v], rec[0], nrec) / q35_maxabs(rec[0], nrec);
            if (getenv("Q35_VERBOSE")) printf("r=%d v=%d out %.3g state %.3g\n", rr, v, eo, es);
            CHECKF(eo < 2e-4 && es < 2e-4, "r=%d %s chunked vs exact: out %.3g state %.3g", rr,
                   v == 1 ? "scalar" : "AVX-512", eo, es);
        }
        for (int v = 0; v < 3; v++) free(rec[v]), free(out[v]);
        free(qkv), free(a), free(b), free(scr);
    }
}

int main(void) {
    size_t n_conv = 0, n_cs = 0, n_rule = 0, n_state = 0, n_norm = 0;
    float *g_conv = q35_golden(GOLD, "conv", &n_conv);
    float *g_cs = q35_golden(GOLD, "conv_state", &n_cs);
    float *g_rule = q35_golden(GOLD, "rule", &n_rule);
    float *g_state = q35_golden(GOLD, "state", &n_state);
    float *g_norm = q35_golden(GOLD, "gated_norm", &n_norm);
    CHECK(g_conv && g_cs && g_rule && g_state && g_norm);
    if (!(g_conv && g_cs && g_rule && g_state && g_norm)) return test_done();
    CHECK(n_conv == T * CONV && n_cs == (K - 1) * CONV && n_rule == T * HV * DV &&
          n_state == HV * DK * DV && n_norm == T * HV * DV);

    static inputs in;
    make_inputs(&in);
    enum { SLOTS = 3 };
    static float conv_state[SLOTS * (K - 1) * CONV], rec[SLOTS * HV * DK * DV];
    tl_gdn_state st = {.max_slots = SLOTS, .conv_dim = CONV, .conv_k = K, .n_v_heads = HV,
                       .n_k_heads = HK, .dk = DK, .dv = DV, .conv = conv_state, .rec = rec};
    static float conv[T * CONV], rule[T * HV * DV], conv2[T * CONV], rule2[T * HV * DV];
    const size_t SR = (size_t)HV * DK * DV, SC = (size_t)(K - 1) * CONV;
    const float tol = 2e-5f;

    /* whole sequence in one call, slot 1 */
    run_span(&in, &st, 1, 0, T, conv, rule, 0, NULL);
    CHECKF(rel(conv, g_conv, n_conv) < tol, "conv rel %g", rel(conv, g_conv, n_conv));
    CHECKF(rel(rule, g_rule, n_rule) < tol, "rule rel %g", rel(rule, g_rule, n_rule));
    CHECKF(rel(rec + SR, g_state, SR) < tol, "state rel %g", rel(rec + SR, g_state, SR));
    CHECK(q35_maxdiff(conv_state + SC, g_cs, SC) == 0.0f);
    CHECK(q35_maxabs(rec, SR) == 0.0f && q35_maxabs(rec + 2 * SR, SR) == 0.0f); /* others untouched */

    /* gated RMSNorm on the rule output */
    memcpy(rule2, g_rule, sizeof rule2);
    tl_ref_gated_rmsnorm(NULL, rule2, in.Z, in.NW, T, HV, DV, 1e-6f);
    CHECKF(rel(rule2, g_norm, n_norm) < tol, "gated norm rel %g", rel(rule2, g_norm, n_norm));

    /* clear, then the same tokens token by token and in uneven spans: identical results */
    tl_ref_gdn_state_clear(NULL, &st, 1);
    CHECK(q35_maxabs(rec + SR, SR) == 0.0f && q35_maxabs(conv_state + SC, SC) == 0.0f);
    for (int t = 0; t < T; t++) run_span(&in, &st, 1, t, t + 1, conv2, rule2, 0, NULL);
    CHECK(q35_maxdiff(conv2, conv, n_conv) == 0.0f);
    CHECK(q35_maxdiff(rule2, rule, n_rule) == 0.0f);
    tl_ref_gdn_state_clear(NULL, &st, 1);
    run_span(&in, &st, 1, 0, 4, conv2, rule2, 0, NULL);
    run_span(&in, &st, 1, 4, 5, conv2, rule2, 0, NULL);
    run_span(&in, &st, 1, 5, T, conv2, rule2, 0, NULL);
    CHECK(q35_maxdiff(rule2, rule, n_rule) == 0.0f);
    CHECK(q35_maxdiff(rec + SR, g_state, SR) / q35_maxabs(g_state, SR) < tol);

    /* chunked form: chunk sizes 1, 3, 4, 64 (longer than the run), split across calls */
    const int chunks[] = {1, 3, 4, 64};
    for (size_t c = 0; c < TL_ARRAY_LEN(chunks); c++) {
        float *scratch = malloc(tl_gdn_chunk_scratch_floats(chunks[c], DK, DV) * sizeof(float));
        tl_ref_gdn_state_clear(NULL, &st, 2);
        run_span(&in, &st, 2, 0, 7, conv2, rule2, chunks[c], scratch);
        run_span(&in, &st, 2, 7, T, conv2, rule2, chunks[c], scratch);
        float rr = rel(rule2, g_rule, n_rule), rs = rel(rec + 2 * SR, g_state, SR);
        CHECKF(rr < 1e-4f && rs < 1e-4f, "chunk %d: rule rel %g state rel %g", chunks[c], rr, rs);
        free(scratch);
    }

    /* two slots interleaved in one batch: [slot0 t0..t4, slot2 t0..t2], then the rest */
    tl_ref_gdn_state_clear(NULL, &st, 0);
    tl_ref_gdn_state_clear(NULL, &st, 2);
    for (int chunked = 0; chunked < 2; chunked++) {
        float *scratch = malloc(tl_gdn_chunk_scratch_floats(4, DK, DV) * sizeof(float));
        static float x[2 * T * CONV], a[2 * T * HV], b[2 * T * HV], o[2 * T * HV * DV];
        int32_t slots[2 * T], pos[2 * T];
        int spans[2][2][2] = {{{0, 5}, {0, 3}}, {{5, T}, {3, T}}}; /* call, slot(0|2), [t0,t1) */
        tl_ref_gdn_state_clear(NULL, &st, 0);
        tl_ref_gdn_state_clear(NULL, &st, 2);
        int ok = 1;
        for (int call = 0; call < 2; call++) {
            int n = 0;
            for (int s = 0; s < 2; s++) {
                for (int t = spans[call][s][0]; t < spans[call][s][1]; t++, n++) {
                    slots[n] = s ? 2 : 0, pos[n] = t;
                    memcpy(x + (size_t)n * CONV, in.P + (size_t)t * CONV, CONV * sizeof(float));
                    memcpy(a + n * HV, in.A + t * HV, HV * sizeof(float));
                    memcpy(b + n * HV, in.B + t * HV, HV * sizeof(float));
                }
            }
            tl_rows rows = {.n = n, .slot = slots, .pos = pos};
            tl_ref_gdn_conv(NULL, x, in.W, &st, &rows);
            if (chunked)
                tl_gdn_rule_chunked(o, x, a, b, in.alog, in.dtb, &st, &rows, 4, scratch);
            else
                tl_ref_gdn_rule(NULL, o, x, a, b, in.alog, in.dtb, &st, &rows);
            for (int r = 0; r < n; r++) {
                const float *want = g_rule + (size_t)pos[r] * HV * DV;
                if (q35_maxdiff(o + (size_t)r * HV * DV, want, HV * DV) >
                    1e-4f * q35_maxabs(g_rule, n_rule))
                    ok = 0;
            }
        }
        CHECKF(ok, "interleaved slots, chunked=%d", chunked);
        CHECK(rel(rec, g_state, SR) < 1e-4f && rel(rec + 2 * SR, g_state, SR) < 1e-4f);
        free(scratch);
    }

    /* mul_sigmoid and the gate helpers */
    float y[3] = {2.0f, -1.0f, 4.0f}, gg[3] = {0.0f, 50.0f, -50.0f};
    tl_ref_mul_sigmoid(NULL, y, gg, 3);
    CHECK(fabsf(y[0] - 1.0f) < 1e-6f && fabsf(y[1] + 1.0f) < 1e-6f && fabsf(y[2]) < 1e-6f);
    CHECK(tl_gdn_softplus(30.0f) == 30.0f && fabsf(tl_gdn_softplus(0.0f) - logf(2.0f)) < 1e-6f);
    CHECK(tl_gdn_softplus(-100.0f) >= 0.0f);

    check_real_shapes();
    free(g_conv), free(g_cs), free(g_rule), free(g_state), free(g_norm);
    return test_done();
}
