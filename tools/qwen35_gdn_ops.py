"""qwen35_gdn_ops.py — goldens for the Gated DeltaNet ops (tests/test_qwen35_gdn.c).

Inputs come from qwen35_common.hash_f32 (re-implemented in C), so the golden file holds only
transformers' outputs: the causal conv + SiLU (causal_conv1d_fn), the delta rule
(torch_recurrent_gated_delta_rule, cross-checked against torch_chunk_gated_delta_rule), the final
recurrent state and the gated RMSNorm (Qwen3_5RMSNormGated), all in f32.

Run: .venv/bin/python tools/qwen35_gdn_ops.py  (writes tests/data/qwen35/gdn_ops.txt)
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
from qwen35_common import hash_f32, write_floats  # noqa: E402
from transformers.models.qwen3_5 import modeling_qwen3_5 as m  # noqa: E402

T, HK, HV, DK, DV, K = 11, 2, 4, 16, 16, 4
KEY = HK * DK
CONV = 2 * KEY + HV * DV


def main():
    out_path = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "qwen35", "gdn_ops.txt")
    P = torch.from_numpy(hash_f32(1, T * CONV, 2.0)).reshape(T, CONV)
    W = torch.from_numpy(hash_f32(2, CONV * K, 0.8)).reshape(CONV, K)
    A = torch.from_numpy(hash_f32(3, T * HV, 3.0)).reshape(T, HV)
    B = torch.from_numpy(hash_f32(4, T * HV, 3.0)).reshape(T, HV)
    A_log = torch.from_numpy(hash_f32(5, HV, 1.5))
    dt_bias = torch.from_numpy(hash_f32(6, HV, 1.0))
    Z = torch.from_numpy(hash_f32(7, T * HV * DV, 2.0)).reshape(T, HV * DV)
    NW = torch.from_numpy(hash_f32(8, DV, 0.5)) + 1.0

    conv = m.causal_conv1d_fn(P.t().unsqueeze(0), W, None, activation="silu")[0].t()  # [T, CONV]
    q = conv[:, :KEY].reshape(1, T, HK, DK)
    k = conv[:, KEY:2 * KEY].reshape(1, T, HK, DK)
    v = conv[:, 2 * KEY:].reshape(1, T, HV, DV)
    beta = B.sigmoid().unsqueeze(0)
    g = (-A_log.exp() * torch.nn.functional.softplus(A + dt_bias)).unsqueeze(0)
    o, S = m.torch_recurrent_gated_delta_rule(q, k, v, g=g, beta=beta, output_final_state=True,
                                              use_qk_l2norm_in_kernel=True)
    o2, S2 = m.torch_chunk_gated_delta_rule(q, k, v, g=g, beta=beta, chunk_size=4,
                                            output_final_state=True, use_qk_l2norm_in_kernel=True)
    assert (o - o2).abs().max() < 1e-4 and (S - S2).abs().max() < 1e-4
    norm = m.Qwen3_5RMSNormGated(DV, eps=1e-6)
    with torch.no_grad():
        norm.weight.copy_(NW)
        y = norm(o.reshape(-1, DV), Z.reshape(-1, DV)).reshape(T, HV * DV)
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w") as f:
        f.write("# qwen35 gdn ops golden: T=%d Hk=%d Hv=%d dk=%d dv=%d K=%d (tools/qwen35_gdn_ops.py)\n"
                % (T, HK, HV, DK, DV, K))
        write_floats(f, "conv", conv)
        write_floats(f, "conv_state", P[T - (K - 1):])
        write_floats(f, "rule", o.reshape(T, HV * DV))
        write_floats(f, "state", S.reshape(-1))
        write_floats(f, "gated_norm", y)
    print("wrote", out_path)


if __name__ == "__main__":
    main()
