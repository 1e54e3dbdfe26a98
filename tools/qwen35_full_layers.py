"""qwen35_full_layers.py — one Gated DeltaNet layer and one gated attention layer at the real
Qwen3.5-2B and Qwen3.5-4B shapes (hidden 2048/2560, 16 key heads, 16/32 value heads of 128,
8/16 query heads and 2/4 KV heads of 256, rotary 64 of 256, theta 1e7), run by transformers.

No weights are committed: every tensor is generated from its name by the hash in
qwen35_common.py (tests/test_qwen35_full.c regenerates the same bits and writes the checkpoint
to a temporary directory). To keep the files small the MLP is narrow (intermediate 512) and the
vocabulary 256: the mixers are at full size, which is what this checks.

Output: tests/data/qwen35/full_layers.txt — logits (f32, transformers on the bf16-rounded weights)
at positions 4, 5, 6 of a 7-token prompt, for each size.
Run: .venv/bin/python tools/qwen35_full_layers.py   (a minute or two)
"""
import os
import sys

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(__file__))
from qwen35_common import hash_f32, write_floats  # noqa: E402
from transformers import Qwen3_5ForCausalLM, Qwen3_5TextConfig  # noqa: E402

SIZES = {  # name: hidden, value heads, query heads, kv heads
    "2b": (2048, 16, 8, 2),
    "4b": (2560, 32, 16, 4),
}
VOCAB, INTER = 256, 512
PROMPT = [1, 17, 42, 99, 200, 7, 128]
OUT_POS = [4, 5, 6]


def fnv1a(s):
    h = 0x811C9DC5
    for ch in s.encode():
        h = ((h ^ ch) * 0x01000193) & 0xFFFFFFFF
    return h


def pow2_scale(fan_in):
    """2^-floor(log2(fan_in)/2): about 1/sqrt(fan_in), exact in f32 on both sides."""
    return 1.0 / (1 << (int(np.log2(fan_in)) // 2))


def tensor_value(name, shape):
    """The f32 value of tensor `name` (before bf16 rounding), as tests/test_qwen35_full.c makes it."""
    n = int(np.prod(shape))
    seed = fnv1a(name)
    if name.endswith("A_log") or name.endswith("dt_bias"):
        v = hash_f32(seed, n, 1.0)
    elif name.endswith("linear_attn.norm.weight"):
        v = hash_f32(seed, n, 0.5) + np.float32(1.0)
    elif len(shape) == 1 or "conv1d" in name:
        v = hash_f32(seed, n, 0.5)
    else:
        v = hash_f32(seed, n, pow2_scale(shape[-1]))
    return v.astype(np.float32).reshape(shape)


def main():
    out_path = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "qwen35",
                            "full_layers.txt")
    with open(out_path, "w") as f:
        f.write("# Qwen3.5 full-shape layers (tools/qwen35_full_layers.py): logits at positions %s "
                "of prompt %s\n" % (OUT_POS, PROMPT))
        for size, (hidden, hv, nh, nkv) in SIZES.items():
            cfg = Qwen3_5TextConfig(
                vocab_size=VOCAB, hidden_size=hidden, intermediate_size=INTER, num_hidden_layers=2,
                num_attention_heads=nh, num_key_value_heads=nkv, head_dim=256,
                linear_num_key_heads=16, linear_num_value_heads=hv, linear_key_head_dim=128,
                linear_value_head_dim=128, tie_word_embeddings=True,
                layer_types=["linear_attention", "full_attention"],
                rope_parameters={"rope_type": "default", "rope_theta": 10000000.0,
                                 "partial_rotary_factor": 0.25})
            model = Qwen3_5ForCausalLM(cfg).float().eval()
            with torch.no_grad():
                for name, p in model.named_parameters():
                    if name == "lm_head.weight":
                        continue  # tied
                    t = torch.from_numpy(tensor_value(name, tuple(p.shape)))
                    if not name.endswith("A_log"):  # A_log is stored f32, everything else bf16
                        t = t.to(torch.bfloat16).float()
                    p.copy_(t)
                logits = model(torch.tensor([PROMPT])).logits[0, OUT_POS].numpy()
            write_floats(f, "logits_" + size, logits)
            print(size, "max|logit|", float(np.abs(logits).max()))
    print("wrote", out_path)


if __name__ == "__main__":
    main()
