#!/usr/bin/env python3
"""make_tiny_models.py — tiny random Llama 3.x / Qwen3 models and their reference goldens.

For each config below (seeded, deterministic) this script
  1. builds the model with transformers (random init, weights rounded to bf16 so the f32 and
     bf16 files hold the same values), saves it as HF bf16 safetensors (committed, small) and as
     HF f32 safetensors under .cache/tiny/<name>/hf-f32 (not committed: the C test rebuilds the
     f32 file from the bf16 one);
  2. converts it to MLX affine 4-bit and 8-bit with mlx-lm's own quantizer (load_model +
     quantize_model + save_model, i.e. what mlx_lm.convert does, without needing a tokenizer);
  3. writes goldens:
       golden_hf.txt        transformers f32 on the (bf16-valued) weights: f32 and bf16 parity
       golden_q{4,8}_hf.txt transformers f32 on the MLX-dequantized weights
       golden_q{4,8}_mlx.txt mlx-lm's own logits and greedy tokens on the MLX files (run with
                            f32 activations: the same weight values, no bf16 rounding noise)
     Each holds, for several prompts, the last position's logits, and for prompt 0 the 32 greedy
     tokens with the reference's top-2 margin and max |logit| at each step.

Output: tests/data/llama/<name>/{bf16,q4,q8}/ (config.json + safetensors) and the goldens.
Golden format: blocks "name count" followed by count numbers (ints or floats, 6+ significant
digits), '#' lines are comments.

Run: .venv/bin/python tools/make_tiny_models.py [--out tests/data/llama] [--only NAME]
"""
import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent

LLAMA3_ROPE_A = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                 "high_freq_factor": 4.0, "original_max_position_embeddings": 32}
LLAMA3_ROPE_B = {"rope_type": "llama3", "factor": 32.0, "low_freq_factor": 1.0,
                 "high_freq_factor": 4.0, "original_max_position_embeddings": 64}

# name, model_type, hyper-parameters, (q4 group, q8 group), seed
CONFIGS = [
    ("llama-a", "llama", dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                              num_key_value_heads=2, intermediate_size=64, vocab_size=256,
                              tie_word_embeddings=True, rope_theta=10000.0,
                              rope_scaling=LLAMA3_ROPE_A, rms_norm_eps=1e-5),
     (32, 64), 1),
    ("llama-b", "llama", dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=8,
                              num_key_value_heads=2, intermediate_size=64, vocab_size=256,
                              tie_word_embeddings=False, rope_theta=500000.0,
                              rope_scaling=LLAMA3_ROPE_B, rms_norm_eps=1e-5),
     (64, 32), 2),
    ("llama-c", "llama", dict(hidden_size=64, num_hidden_layers=3, num_attention_heads=4,
                              num_key_value_heads=1, head_dim=8, intermediate_size=32,
                              vocab_size=256, tie_word_embeddings=True, rope_theta=500000.0,
                              rope_scaling=LLAMA3_ROPE_B, rms_norm_eps=1e-6),
     (32, 32), 3),
    ("qwen3-a", "qwen3", dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                              num_key_value_heads=2, head_dim=32, intermediate_size=32,
                              vocab_size=256, tie_word_embeddings=True, rope_theta=1000000.0,
                              rms_norm_eps=1e-6),
     (64, 64), 4),
]

N_GREEDY = 32


def prompts_for(seed, vocab):
    rng = np.random.default_rng(1000 + seed)
    return [
        [1, 17, 42, 99, 5, 200, 33],
        [1],
        [int(x) for x in rng.integers(0, vocab, size=40)],
    ]


def build_hf(mtype, hp, seed):
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen3Config, Qwen3ForCausalLM
    torch.manual_seed(seed)
    common = dict(max_position_embeddings=512, bos_token_id=1, eos_token_id=2,
                  initializer_range=0.2, hidden_act="silu", attention_bias=False)
    hp = dict(hp)
    if mtype == "llama":
        rs = hp.pop("rope_scaling", None)
        theta = hp.pop("rope_theta")
        rp = dict(rs) if rs else {"rope_type": "default"}
        rp["rope_theta"] = theta
        cfg = LlamaConfig(**hp, **common, mlp_bias=False, rope_parameters=rp)
        model = LlamaForCausalLM(cfg)
    else:
        theta = hp.pop("rope_theta")
        cfg = Qwen3Config(**hp, **common, rope_parameters={"rope_type": "default",
                                                           "rope_theta": theta})
        model = Qwen3ForCausalLM(cfg)
    model = model.float().eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 1:  # norms: around 1, not exactly 1, so the weight is exercised
                p.copy_(1.0 + 0.2 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) * 0.2)
            p.copy_(p.bfloat16().float())
    if cfg.tie_word_embeddings:
        model.tie_weights()
    return model


def classic_llama_config(path, hp):
    """Rewrite config.json in the form the real Llama 3.2 files use (rope_theta + rope_scaling
    at the top level), which both mlx-lm and transformers read."""
    p = Path(path) / "config.json"
    c = json.loads(p.read_text())
    rp = c.pop("rope_parameters", None) or {}
    c["rope_theta"] = hp["rope_theta"]
    if hp.get("rope_scaling"):
        c["rope_scaling"] = dict(hp["rope_scaling"])
    else:
        c.pop("rope_scaling", None)
    p.write_text(json.dumps(c, indent=2, sort_keys=True) + "\n")


@torch.no_grad()
def hf_last_logits(model, ids):
    out = model(torch.tensor([ids], dtype=torch.long)).logits[0, -1]
    return out.float().numpy().astype(np.float64)


def greedy(step_fn, prompt, n):
    ids = list(prompt)
    toks, margins, maxabs = [], [], []
    for _ in range(n):
        lg = step_fn(ids)
        order = np.argsort(-lg, kind="stable")
        t = int(order[0])
        toks.append(t)
        margins.append(float(lg[order[0]] - lg[order[1]]))
        maxabs.append(float(np.max(np.abs(lg))))
        ids.append(t)
    return toks, margins, maxabs


def write_golden(path, prompts, logits, g, comment):
    toks, margins, maxabs = g
    with open(path, "w") as f:
        f.write(f"# {comment}\n")
        for i, (p, lg) in enumerate(zip(prompts, logits)):
            f.write(f"prompt{i} {len(p)}\n" + " ".join(str(x) for x in p) + "\n")
            f.write(f"logits{i} {len(lg)}\n")
            for j in range(0, len(lg), 8):
                f.write(" ".join(f"{v:.7g}" for v in lg[j:j + 8]) + "\n")
        f.write(f"greedy {len(toks)}\n" + " ".join(str(t) for t in toks) + "\n")
        f.write(f"margin {len(margins)}\n" + " ".join(f"{v:.6g}" for v in margins) + "\n")
        f.write(f"maxabs {len(maxabs)}\n" + " ".join(f"{v:.6g}" for v in maxabs) + "\n")


# Mixed precision (per-module overrides in config "quantization", as mlx-lm writes them): every
# bit width MLX has, so the 2/3/5/6-bit bit-stream packing is exercised too.
def mixed_predicate(path, module):
    for key, q in (("embed_tokens", (8, 64)), ("down_proj", (3, 32)), ("up_proj", (6, 64)),
                   ("o_proj", (5, 32)), ("gate_proj", (2, 32))):
        if key in path:
            return {"bits": q[0], "group_size": q[1]}
    return True


def mlx_convert(src, dst, bits, group, predicate=None):
    import mlx.core as mx
    from mlx_lm.utils import load_model, quantize_model, save_config, save_model
    model, config = load_model(Path(src), lazy=False)
    model, config = quantize_model(model, config, group, bits, quant_predicate=predicate)
    if os.path.exists(dst):
        shutil.rmtree(dst)
    save_model(dst, model)
    save_config(config, config_path=Path(dst) / "config.json")
    mx.eval(model.parameters())


def mlx_dequantized_state(dst):
    """The MLX file's weights as f32 torch tensors (quantized modules dequantized by MLX)."""
    import mlx.core as mx
    cfg = json.loads((Path(dst) / "config.json").read_text())
    q = cfg["quantization"]
    w = {}
    for f in sorted(Path(dst).glob("model*.safetensors")):
        w.update(mx.load(str(f)))
    out = {}
    for k, v in w.items():
        if k.endswith(".scales") or k.endswith(".biases"):
            continue
        mod = k[: -len(".weight")] if k.endswith(".weight") else None
        if mod and mod + ".scales" in w:
            o = q.get(mod, q) if isinstance(q.get(mod), dict) else q
            # in f32: with bf16 scales MLX would round every dequantized weight to bf16
            v = mx.dequantize(v, w[mod + ".scales"].astype(mx.float32),
                              w[mod + ".biases"].astype(mx.float32),
                              group_size=o["group_size"], bits=o["bits"])
        arr = np.array(v.astype(mx.float32))
        out[k] = torch.from_numpy(arr.copy())
    return out


def mlx_logits_fn(dst):
    import mlx.core as mx
    from mlx_lm.utils import load_model
    from mlx.utils import tree_map
    model, _ = load_model(Path(dst))
    # Run mlx-lm in f32: the bf16 scales/biases/norms widen exactly, so the weights are the same
    # values, but the activations are not rounded to bf16 (we compute in f32 too; bf16
    # activations would hide near-ties behind rounding noise of ~4e-3 relative).
    model.update(tree_map(lambda x: x.astype(mx.float32) if x.dtype == mx.bfloat16 else x,
                          model.parameters()))

    def fn(ids):
        lg = model(mx.array([ids]))[0, -1].astype(mx.float32)
        return np.array(lg).astype(np.float64)
    return fn


def make_one(name, mtype, hp, groups, seed, out_root, cache_root):
    from transformers import AutoModelForCausalLM
    out = out_root / name
    cache = cache_root / name
    for d in (out, cache):
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
    model = build_hf(mtype, hp, seed)
    prompts = prompts_for(seed, hp["vocab_size"])

    # HF files: bf16 (committed) and f32 (cache only)
    bf16_dir, f32_dir = out / "bf16", cache / "hf-f32"
    model.save_pretrained(f32_dir, safe_serialization=True)
    m16 = build_hf(mtype, hp, seed).to(torch.bfloat16)
    m16.save_pretrained(bf16_dir, safe_serialization=True)
    if mtype == "llama":
        classic_llama_config(f32_dir, hp)
        classic_llama_config(bf16_dir, hp)
    for d in (f32_dir, bf16_dir):
        for extra in ("generation_config.json",):
            p = d / extra
            if p.exists():
                p.unlink()

    # the reference reads the saved f32 files back, so it sees exactly what we load
    ref = AutoModelForCausalLM.from_pretrained(f32_dir, dtype=torch.float32).eval()
    logits = [hf_last_logits(ref, p) for p in prompts]
    g = greedy(lambda ids: hf_last_logits(ref, ids), prompts[0], N_GREEDY)
    write_golden(out / "golden_hf.txt", prompts, logits, g,
                 f"{name}: transformers f32 on the bf16-valued weights (f32 and bf16 files)")

    variants = [(f"q4", 4, groups[0], None), (f"q8", 8, groups[1], None)]
    if name == "llama-a":
        variants.append(("mixed", 4, 32, mixed_predicate))
    for vname, bits, gs, pred in variants:
        qdir = out / vname
        mlx_convert(bf16_dir, qdir, bits, gs, pred)
        # transformers on the dequantized weights
        sd = mlx_dequantized_state(qdir)
        dq = AutoModelForCausalLM.from_pretrained(f32_dir, dtype=torch.float32).eval()
        missing, unexpected = dq.load_state_dict(sd, strict=False)
        bad = [k for k in missing if k != "lm_head.weight"]
        if bad or unexpected:
            sys.exit(f"{name} {vname}: state dict mismatch: missing {bad} unexpected {unexpected}")
        if dq.config.tie_word_embeddings:
            dq.tie_weights()
        logits = [hf_last_logits(dq, p) for p in prompts]
        g = greedy(lambda ids: hf_last_logits(dq, ids), prompts[0], N_GREEDY)
        write_golden(out / f"golden_{vname}_hf.txt", prompts, logits, g,
                     f"{name}: transformers f32 on the MLX {vname} (group {gs}) dequantized weights")
        fn = mlx_logits_fn(qdir)
        logits = [fn(p) for p in prompts]
        g = greedy(fn, prompts[0], N_GREEDY)
        write_golden(out / f"golden_{vname}_mlx.txt", prompts, logits, g,
                     f"{name}: mlx-lm's own logits (f32 activations) on the MLX {vname} "
                     f"(group {gs}) files")
    print(f"{name}: ok")


def fuzz_seeds(out_dir):
    """Seeds of fuzz/fuzz_model.c: a micro Llama matching its two fixed configs (dense f32,
    hidden 8; MLX 4-bit group 32 with f16 scales, hidden 32)."""
    from safetensors.numpy import save_file
    rng = np.random.default_rng(7)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    def shapes(h, inter, v=16, heads=2, kvh=1):
        hd = h // heads
        return {"embed_tokens": (v, h), "layers.0.self_attn.q_proj": (heads * hd, h),
                "layers.0.self_attn.k_proj": (kvh * hd, h),
                "layers.0.self_attn.v_proj": (kvh * hd, h),
                "layers.0.self_attn.o_proj": (h, heads * hd),
                "layers.0.mlp.gate_proj": (inter, h), "layers.0.mlp.up_proj": (inter, h),
                "layers.0.mlp.down_proj": (h, inter)}

    def norms(t, h):
        for n in ("layers.0.input_layernorm", "layers.0.post_attention_layernorm", "norm"):
            t[f"model.{n}.weight"] = (1 + 0.1 * rng.standard_normal(h)).astype(np.float32)

    t = {}
    for k, (r, c) in shapes(8, 16).items():
        t[f"model.{k}.weight"] = (0.3 * rng.standard_normal((r, c))).astype(np.float32)
    norms(t, 8)
    save_file(t, str(out_dir / "dense.safetensors"))
    t = {}
    sh = shapes(32, 32)
    sh["lm_head"] = (16, 32)
    for k, (r, c) in sh.items():
        pre = "" if k == "lm_head" else "model."
        t[f"{pre}{k}.weight"] = rng.integers(0, 2**32, size=(r, c // 8), dtype=np.uint32)
        t[f"{pre}{k}.scales"] = (0.01 * rng.random((r, c // 32)) + 0.001).astype(np.float16)
        t[f"{pre}{k}.biases"] = (-0.05 * rng.random((r, c // 32))).astype(np.float16)
    norms(t, 32)
    save_file(t, str(out_dir / "q4.safetensors"))
    print(f"fuzz seeds -> {out_dir}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "tests/data/llama"))
    ap.add_argument("--cache", default=str(ROOT / ".cache/tiny"))
    ap.add_argument("--only", default=None)
    ap.add_argument("--fuzz-seeds", action="store_true",
                    help="only write fuzz/seeds/fuzz_model/ (seeds of fuzz/fuzz_model.c)")
    a = ap.parse_args()
    if a.fuzz_seeds:
        fuzz_seeds(ROOT / "fuzz/seeds/fuzz_model")
        return
    torch.set_num_threads(1)
    for name, mtype, hp, groups, seed in CONFIGS:
        if a.only and a.only != name:
            continue
        make_one(name, mtype, hp, groups, seed, Path(a.out), Path(a.cache))


if __name__ == "__main__":
    main()
