/* cpu_gdn.h — the chunked Gated DeltaNet prefill for the cpu backend (docs/models.md §1.4 step 8),
 * AVX-512 (cpu_gdn_avx512.c). Same result as the exact recurrence (tl_ref_gdn_rule) up to f32
 * rounding, validated against it in tests/test_qwen35_gdn.c.
 *
 * Why: the exact recurrence reads and writes each 64 KiB head state twice per token; the chunked
 * form touches it twice per chunk and spends its work in small matrix products kept in
 * registers. bench_qwen35_gdn measures both; use the chunked form for runs of at least
 * TL_GDN_CHUNK_MIN rows of one slot (below that the exact step is as fast).
 *
 * Contract: like tl_gdn_rule_chunked (backend/ref/ref_gdn.h) but only for value heads [h0, h1)
 * (threads split the heads) and only when tl_cpu_gdn_chunked_ok() (CPU has AVX-512F, dv and dk
 * multiples of 16, dk, dv <= TL_GDN_MAX_DK). scratch: tl_cpu_gdn_chunk_scratch_floats(chunk, dk,
 * dv) floats per calling thread. chunk <= TL_GDN_CHUNK_MAX. */
#ifndef TL_CPU_GDN_H
#define TL_CPU_GDN_H

#include <stddef.h>

#include "backend/backend.h"

#define TL_GDN_CHUNK 16     /* chunk size the backend should use (the fastest path) */
#define TL_GDN_CHUNK_MAX 64
#define TL_GDN_CHUNK_MIN 16 /* shortest run of one slot worth the chunked form */

int tl_cpu_gdn_chunked_ok(const tl_gdn_state *st);
size_t tl_cpu_gdn_chunk_scratch_floats(int chunk, int dk, int dv);
void tl_cpu_gdn_rule_chunked(float *out, const float *qkv, const float *a, const float *b,
                             const float *a_log, const float *dt_bias, tl_gdn_state *st,
                             const tl_rows *rows, int chunk, int h0, int h1, float *scratch);

#endif
