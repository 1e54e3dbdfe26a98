"""qwen35_fuzz_seeds.py — seed inputs for fuzz/fuzz_qwen35.c: valid micro Qwen3.5 checkpoints
matching that target's fixed configs, in the three layouts the loader tells apart:
  hf.safetensors    model.* prefix, conv1d [C,1,K], zero-centred norms (hidden 8)
  vlm.safetensors   model.language_model.* prefix, plus model.visual.* and mtp.* to skip
  mlx.safetensors   language_model.model.* prefix, conv1d [C,K,1], norms shifted (hidden 8)
  q4.safetensors    MLX layout at hidden 32, projections with in = 32 quantized 4-bit group 32
Run: .venv/bin/python tools/qwen35_fuzz_seeds.py
"""
import os

import numpy as np
from safetensors.numpy import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fuzz", "seeds", "fuzz_qwen35")
NORMS = ("input_layernorm.weight", "post_attention_layernorm.weight", "q_norm.weight",
         "k_norm.weight")


def tensors(hidden, inter, rng):
    V, hk, hv, dk, dv, K, nh, nkv, hd = 16, 1, 2, 4, 4, 4, 2, 1, 4
    conv = 2 * hk * dk + hv * dv

    def r(*shape):
        return (rng.standard_normal(shape) * 0.3).astype(np.float32)
    t = {"embed_tokens.weight": r(V, hidden), "norm.weight": r(hidden)}
    for l in range(2):
        p = "layers.%d." % l
        t[p + "input_layernorm.weight"] = r(hidden)
        t[p + "post_attention_layernorm.weight"] = r(hidden)
        t[p + "mlp.gate_proj.weight"] = r(inter, hidden)
        t[p + "mlp.up_proj.weight"] = r(inter, hidden)
        t[p + "mlp.down_proj.weight"] = r(hidden, inter)
        if l == 0:
            a = p + "linear_attn."
            t[a + "in_proj_qkv.weight"] = r(conv, hidden)
            t[a + "in_proj_z.weight"] = r(hv * dv, hidden)
            t[a + "in_proj_a.weight"] = r(hv, hidden)
            t[a + "in_proj_b.weight"] = r(hv, hidden)
            t[a + "conv1d.weight"] = r(conv, 1, K)
            t[a + "A_log"] = r(hv)
            t[a + "dt_bias"] = r(hv)
            t[a + "norm.weight"] = 1 + r(dv)
            t[a + "out_proj.weight"] = r(hidden, hv * dv)
        else:
            a = p + "self_attn."
            t[a + "q_proj.weight"] = r(nh * hd * 2, hidden)
            t[a + "k_proj.weight"] = r(nkv * hd, hidden)
            t[a + "v_proj.weight"] = r(nkv * hd, hidden)
            t[a + "o_proj.weight"] = r(hidden, nh * hd)
            t[a + "q_norm.weight"] = r(hd)
            t[a + "k_norm.weight"] = r(hd)
    return t


def to_mlx(t):
    out = {}
    for k, v in t.items():
        if "conv1d" in k:
            v = np.ascontiguousarray(np.moveaxis(v, 2, 1))
        if k.endswith(NORMS) or k == "norm.weight":
            v = v + 1
        out["language_model.model." + k] = v
    return out


def quantize4(w, gs=32):
    """MLX affine 4-bit: per group scale/bias, element k of a uint32 word at bits 4k."""
    rows, cols = w.shape
    g = w.reshape(rows, cols // gs, gs)
    lo, hi = g.min(-1, keepdims=True), g.max(-1, keepdims=True)
    s = np.maximum((hi - lo) / 15, 1e-7)
    q = np.clip(np.round((g - lo) / s), 0, 15).astype(np.uint32).reshape(rows, cols)
    words = np.zeros((rows, cols // 8), dtype=np.uint32)
    for k in range(8):
        words |= q[:, k::8] << np.uint32(4 * k)
    return words, s[..., 0].astype(np.float32), lo[..., 0].astype(np.float32)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(5)
    t = tensors(8, 16, rng)
    save_file({"model." + k: v for k, v in t.items()}, os.path.join(OUT, "hf.safetensors"))
    vlm = {"model.language_model." + k: v for k, v in t.items()}
    vlm["model.visual.blocks.0.attn.qkv.weight"] = np.zeros((3, 2), np.float32)
    vlm["mtp.fc.weight"] = np.zeros((8, 16), np.float32)
    save_file(vlm, os.path.join(OUT, "vlm.safetensors"))
    save_file(to_mlx(t), os.path.join(OUT, "mlx.safetensors"))
    q = {}
    for k, v in to_mlx(tensors(32, 32, rng)).items():
        if v.ndim == 2 and v.shape[1] == 32:
            base = k[:-len(".weight")]
            q[base + ".weight"], q[base + ".scales"], q[base + ".biases"] = quantize4(v)
        else:
            q[k] = v
    save_file(q, os.path.join(OUT, "q4.safetensors"))
    for f in sorted(os.listdir(OUT)):
        print(f, os.path.getsize(os.path.join(OUT, f)))


if __name__ == "__main__":
    main()
