/* ref_gdn.h — scalar reference implementations of the Gated DeltaNet ops of the backend table
 * (docs/models.md §1.4): the causal depthwise conv + SiLU, the gated delta rule (exact
 * recurrence, and the chunked form of step 8 as a plain function), the gated RMSNorm, the state
 * clear and y *= sigmoid(g).
 *
 * Contract: the tl_ref_* op functions have exactly the signatures of the tl_backend members of
 * the same name (be is unused), so any host backend can put them straight into its table or
 * call them until it has faster kernels. All arithmetic is f32; the recurrent state is f32 in HF
 * orientation S[k][v]. Shapes come from the tl_gdn_state (validated at load); dk must be at most
 * TL_GDN_MAX_DK. Ops do not fail. */
#ifndef TL_REF_GDN_H
#define TL_REF_GDN_H

#include <stddef.h>

#include "backend/backend.h"

#define TL_GDN_MAX_DK 512 /* largest key/value head dim the ops accept (Qwen3.5: 128) */

/* x [n, conv_dim] in place: x = silu(causal depthwise conv with the slot's last K-1 inputs);
 * w [conv_dim, K], w[c][K-1] multiplies the current token. The slot's conv state becomes the
 * last K-1 pre-conv inputs. Rows of one slot are consecutive and in position order. */
void tl_ref_gdn_conv(tl_backend *be, float *x, const float *w, tl_gdn_state *st,
                     const tl_rows *rows);

/* The delta rule, token by token (§1.4 steps 4-7). qkv [n, conv_dim] (after conv):
 * q [Hk*dk] | k [Hk*dk] | v [Hv*dv]; a, b [n, Hv]; a_log, dt_bias [Hv]; out [n, Hv*dv].
 * Value head j reads key head j / (Hv/Hk). */
void tl_ref_gdn_rule(tl_backend *be, float *out, const float *qkv, const float *a, const float *b,
                     const float *a_log, const float *dt_bias, tl_gdn_state *st,
                     const tl_rows *rows);

/* The same result by the chunked form (§1.4 step 8): each run of consecutive rows of one slot is
 * cut into chunks of at most `chunk` tokens. scratch must hold
 * tl_gdn_chunk_scratch_floats(chunk, dk, dv) floats. Agrees with tl_ref_gdn_rule up to f32
 * rounding. */
size_t tl_gdn_chunk_scratch_floats(int chunk, int dk, int dv);
void tl_gdn_rule_chunked(float *out, const float *qkv, const float *a, const float *b,
                         const float *a_log, const float *dt_bias, tl_gdn_state *st,
                         const tl_rows *rows, int chunk, float *scratch);

/* o [rows, n_heads*dim] in place: o = w ⊙ o/sqrt(mean(o²)+eps) ⊙ silu(z), per head of dim. */
void tl_ref_gated_rmsnorm(tl_backend *be, float *o, const float *z, const float *w, int rows,
                          int n_heads, int dim, float eps);

/* Zero the slot's conv and recurrent state. */
void tl_ref_gdn_state_clear(tl_backend *be, tl_gdn_state *st, int slot);

/* y[i] *= sigmoid(g[i]) */
void tl_ref_mul_sigmoid(tl_backend *be, float *y, const float *g, size_t n);

/* Scalar helpers shared with faster kernels, so every backend computes the gates alike. */
float tl_gdn_softplus(float x); /* log(1 + e^x), identity above 20 as PyTorch */
float tl_gdn_sigmoid(float x);

#endif
