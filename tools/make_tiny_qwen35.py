"""make_tiny_qwen35.py — tiny random Qwen3.5 models in every layout tallow reads, and the
transformers / mlx-lm goldens that tests/test_qwen35_model.c compares against.

Models (tests/data/qwen35/<name>/ config.json + model.safetensors, all small):
  a_f32     text-only HF layout (model.*), model_type qwen3_5_text, f32, tied, Hv = Hk,
            explicit layer_types [lin, lin, lin, full], partial_rotary_factor 0.25
  b_bf16    VLM-wrapper HF layout (model.language_model.*, config nested in text_config), bf16,
            untied (lm_head), Hv = 2*Hk, only full_attention_interval 2 (no layer_types),
            partial_rotary_factor 0.5, plus stray model.visual.* and mtp.* tensors to be skipped
  a_mlx4    a_f32 converted by mlx-lm, 4-bit gs 64 (down_proj / out_proj stay dense: in % 64 != 0)
  b_mlx8    b_bf16 converted by mlx-lm, 8-bit gs 32 (in_proj_a / in_proj_b quantized too)

Goldens (tests/data/qwen35/<name>.txt): for each prompt its ids and the transformers f32
last-token logits; a 32-step greedy continuation of prompt 1 with the reference top-2 margin of
every step. For bf16 and MLX models the transformers reference runs in f32 on the same
(dequantized) weights; for MLX models mlx-lm's own top-1 per prompt is stored too, with its
top-2 margin relative to max|logit| (mlx-lm runs bf16 models in bf16: a tiny margin there is a tie).

Run: .venv/bin/python tools/make_tiny_qwen35.py   (about a minute on the CPU)
"""
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(__file__))
from qwen35_common import write_floats  # noqa: E402
from transformers import Qwen3_5ForCausalLM, Qwen3_5TextConfig  # noqa: E402

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "data", "qwen35")
VOCAB = 256
N_GREEDY = 32

SPECS = {
    "a_f32": dict(hidden=64, layers=4, layer_types=["linear_attention"] * 3 + ["full_attention"],
                  interval=None, hk=2, hv=2, dk=16, dv=16, heads=4, kv=2, head_dim=32,
                  partial=0.25, inter=96, tied=True, seed=11),
    "b_bf16": dict(hidden=64, layers=4, layer_types=None, interval=2, hk=2, hv=4, dk=16, dv=16,
                   heads=2, kv=1, head_dim=32, partial=0.5, inter=64, tied=False, seed=12),
}


def text_config(s):
    lt = s["layer_types"] or [
        "linear_attention" if (i + 1) % s["interval"] else "full_attention" for i in range(s["layers"])]
    return Qwen3_5TextConfig(
        vocab_size=VOCAB, hidden_size=s["hidden"], intermediate_size=s["inter"],
        num_hidden_layers=s["layers"], num_attention_heads=s["heads"],
        num_key_value_heads=s["kv"], head_dim=s["head_dim"], linear_num_key_heads=s["hk"],
        linear_num_value_heads=s["hv"], linear_key_head_dim=s["dk"], linear_value_head_dim=s["dv"],
        tie_word_embeddings=s["tied"], layer_types=lt, max_position_embeddings=4096,
        rope_parameters={"rope_type": "default", "rope_theta": 10000000.0,
                         "partial_rotary_factor": s["partial"]},
        bos_token_id=None, eos_token_id=255)


def randomize(model, seed):
    """Weights with structure at every place a layout bug could hide: zero-centred norms far from
    0, a gated norm far from 1, decays and gates spread out."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("A_log"):
                p.copy_(torch.log(torch.rand(p.shape, generator=g) * 8 + 0.5))
            elif name.endswith("dt_bias"):
                p.copy_(torch.rand(p.shape, generator=g) * 2 - 1)
            elif name.endswith("linear_attn.norm.weight"):
                p.copy_(1 + (torch.rand(p.shape, generator=g) - 0.5))
            elif p.ndim == 1:  # zero-centred RMSNorm weights
                p.copy_((torch.rand(p.shape, generator=g) - 0.5) * 0.8)
            elif "conv1d" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
            else:
                p.copy_(torch.randn(p.shape, generator=g) / (p.shape[-1] ** 0.5))


def reference(model, prompts):
    """f32 last-token logits per prompt; greedy ids, margins and max|logit| from prompt 1."""
    model = model.float().eval()
    out = {}
    with torch.no_grad():
        for i, p in enumerate(prompts):
            out["logits%d" % i] = model(torch.tensor([p])).logits[0, -1].numpy()
        ids = list(prompts[1])
        greedy, margins, maxabs = [], [], []
        for _ in range(N_GREEDY):
            lg = model(torch.tensor([ids])).logits[0, -1]
            top = torch.topk(lg, 2)
            greedy.append(int(top.indices[0]))
            margins.append(float(top.values[0] - top.values[1]))
            maxabs.append(float(lg.abs().max()))
            ids.append(greedy[-1])
    out["greedy"] = np.array(greedy, dtype=np.float32)
    out["margin"] = np.array(margins, dtype=np.float32)
    out["greedy_maxabs"] = np.array(maxabs, dtype=np.float32)
    return out


def write_golden(name, prompts, ref, extra=None):
    with open(os.path.join(OUT, name + ".txt"), "w") as f:
        f.write("# tiny qwen3.5 golden for %s (tools/make_tiny_qwen35.py)\n" % name)
        for i, p in enumerate(prompts):
            write_floats(f, "prompt%d" % i, p)
            write_floats(f, "logits%d" % i, ref["logits%d" % i])
        for k in ("greedy", "margin", "greedy_maxabs"):
            write_floats(f, k, ref[k])
        for k, v in (extra or {}).items():
            write_floats(f, k, v)


def save_hf(name, s, model):
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    cfg = model.config.to_dict()
    sd = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    if s["tied"]:
        sd.pop("lm_head.weight", None)
    keep = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers",
            "num_attention_heads", "num_key_value_heads", "head_dim", "hidden_act",
            "linear_conv_kernel_dim", "linear_key_head_dim", "linear_value_head_dim",
            "linear_num_key_heads", "linear_num_value_heads", "rms_norm_eps",
            "max_position_embeddings", "tie_word_embeddings", "rope_parameters", "attention_bias",
            "eos_token_id")
    tc = {k: cfg[k] for k in keep}
    if s["layer_types"]:
        tc["layer_types"] = cfg["layer_types"]
    else:
        tc["full_attention_interval"] = s["interval"]
    if name.startswith("a"):
        tc.update(model_type="qwen3_5_text", architectures=["Qwen3_5ForCausalLM"], dtype="float32")
        conf = tc
    else:
        tc.update(model_type="qwen3_5_text", dtype="bfloat16")  # A_log stays f32, as in real files
        conf = {"architectures": ["Qwen3_5ForConditionalGeneration"], "model_type": "qwen3_5",
                "text_config": tc, "vision_config": {"model_type": "qwen3_5", "depth": 1},
                "tie_word_embeddings": s["tied"], "image_token_id": 248056}
        sd = {("model.language_model." + k[len("model."):] if k.startswith("model.") else k):
              (v if k.endswith("A_log") else v.to(torch.bfloat16)) for k, v in sd.items()}
        # what real checkpoints also carry and a loader must skip
        sd["model.visual.patch_embed.proj.weight"] = torch.zeros(4, 3, 2, 2, dtype=torch.bfloat16)
        sd["mtp.fc.weight"] = torch.zeros(s["hidden"], 2 * s["hidden"], dtype=torch.bfloat16)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(conf, f, indent=2)
    save_file(sd, os.path.join(d, "model.safetensors"), metadata={"format": "pt"})
    return d


def mlx_convert(src, name, bits, gs):
    """mlx-lm conversion (mlx-lm has no qwen3_5_text module: a flat text config is renamed)."""
    from mlx_lm.convert import convert
    dst = os.path.join(OUT, name)
    shutil.rmtree(dst, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        t = os.path.join(tmp, "src")
        shutil.copytree(src, t)
        with open(os.path.join(t, "config.json")) as f:
            c = json.load(f)
        if c["model_type"] == "qwen3_5_text":
            c["model_type"] = "qwen3_5"
        with open(os.path.join(t, "config.json"), "w") as f:
            json.dump(c, f, indent=2)
        convert(t, dst, quantize=True, q_bits=bits, q_group_size=gs)
    for fn in os.listdir(dst):  # only what the loader reads
        if fn not in ("config.json", "model.safetensors"):
            os.remove(os.path.join(dst, fn))
    return dst


def mlx_dequantized_into(model, mlx_dir):
    """Load the MLX file's weights, dequantized, back into an HF model (undoing mlx-lm's
    sanitize: norms shifted by +1, conv [C,K,1])."""
    import mlx.core as mx
    w = mx.load(os.path.join(mlx_dir, "model.safetensors"))
    with open(os.path.join(mlx_dir, "config.json")) as f:
        c = json.load(f)
    q = c.get("quantization", {})
    sd = {}
    for k, v in w.items():
        if k.endswith(".scales") or k.endswith(".biases"):
            continue
        base = k[:-len(".weight")] if k.endswith(".weight") else None
        if base and base + ".scales" in w:
            o = q.get(base, q) if isinstance(q.get(base), dict) else q
            # in f32: s*q + b rounded to bf16 would not be what the engine (or mlx's kernels) use
            v = mx.dequantize(v, w[base + ".scales"].astype(mx.float32),
                              w[base + ".biases"].astype(mx.float32), group_size=o["group_size"],
                              bits=o["bits"])
        t = torch.from_numpy(np.array(v.astype(mx.float32)))
        hk = k.replace("language_model.model.", "model.").replace("language_model.lm_head", "lm_head")
        if "conv1d.weight" in hk:
            t = t.permute(0, 2, 1)
        if hk.endswith(("input_layernorm.weight", "post_attention_layernorm.weight", "q_norm.weight",
                        "k_norm.weight")) or hk == "model.norm.weight":
            t = t - 1.0
        sd[hk] = t
    if model.config.tie_word_embeddings:
        sd["lm_head.weight"] = sd["model.embed_tokens.weight"]
    model.load_state_dict(sd, strict=True)
    return model


def mlx_top1(mlx_dir, prompts, ref):
    """mlx-lm's top-1 as it runs the file (bf16 models in bf16), and a cross-check of the two
    references: mlx-lm with every float parameter cast to f32 must agree with transformers on the
    dequantized weights to 1e-4 x max|logit|."""
    import mlx.core as mx
    from mlx.utils import tree_map
    from mlx_lm import load
    model, _ = load(mlx_dir)
    top, margin = [], []
    for p in prompts:
        lg = np.array(model(mx.array([p]))[0, -1].astype(mx.float32))
        o = np.argsort(-lg)
        top.append(int(o[0]))
        margin.append(float((lg[o[0]] - lg[o[1]]) / np.abs(lg).max()))
    model.update(tree_map(lambda x: x.astype(mx.float32) if x.dtype in (mx.bfloat16, mx.float16)
                          else x, model.parameters()))
    for i, p in enumerate(prompts):
        lg = np.array(model(mx.array([p]))[0, -1])
        want = ref["logits%d" % i]
        assert np.abs(lg - want).max() <= 1e-4 * np.abs(want).max(), (mlx_dir, i)
    return {"mlx_top1": np.array(top, dtype=np.float32),
            "mlx_margin_rel": np.array(margin, dtype=np.float32)}


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(7)
    prompts = [[3], rng.integers(0, VOCAB, 9).tolist(), rng.integers(0, VOCAB, 70).tolist()]
    dirs = {}
    for name, s in SPECS.items():
        torch.manual_seed(s["seed"])
        model = Qwen3_5ForCausalLM(text_config(s)).float()
        randomize(model, s["seed"])
        if name == "b_bf16":  # the reference runs in f32 on the bf16-rounded weights
            with torch.no_grad():
                for p in model.parameters():
                    p.copy_(p.to(torch.bfloat16).float())
        ref = reference(model, prompts)
        write_golden(name, prompts, ref)
        dirs[name] = save_hf(name, s, model)
    for name, src, spec, bits, gs in (("a_mlx4", "a_f32", "a_f32", 4, 64),
                                      ("b_mlx8", "b_bf16", "b_bf16", 8, 32)):
        d = mlx_convert(dirs[src], name, bits, gs)
        model = Qwen3_5ForCausalLM(text_config(SPECS[spec])).float()
        mlx_dequantized_into(model, d)
        ref = reference(model, prompts)
        write_golden(name, prompts, ref, mlx_top1(d, prompts, ref))
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(OUT) for f in fs)
    print("tests/data/qwen35: %d bytes" % total)


if __name__ == "__main__":
    main()
