#!/usr/bin/env python3
"""bench_llamacpp.py — llama.cpp's speed on the shapes of a tallow model, measured like llama-bench.

Contract:
  * input: tallow model directories (config.json + safetensors, HF or MLX-quantized, as written by
    `tallow synth`). The script reads only config.json and the safetensors headers (shapes).
  * it writes a GGUF of the same shapes (every matrix the model has, each of the same rows x
    columns; norms and the small Gated DeltaNet vectors as f32) quantized Q4_0 (4.5 bits/weight,
    like MLX 4-bit group 64 with bf16 scales and biases) or Q8_0, with random weights and no
    tokenizer (llama.cpp's "no_vocab": token ids 0..vocab-1). The file is cached under
    .cache/lcpp/ keyed by the config and the shapes; it is never meant to produce text.
  * it then measures llama.cpp through llama-cpp-python's low-level API the way llama-bench does:
    pp = prefill of N random tokens in batches of 512 (one llama_decode per batch) from an empty
    cache; tg = M decodes of one token each from an empty cache; wall time around the decodes
    (llama_synchronize included); one warm-up run of each first; median over -r repetitions, with
    a llama-bench-style thread pool (poll 50) attached when the library exports one.
  * output: a markdown table with the columns of `tallow bench` (docs/BENCH.md), or JSON in the
    same "tallow-bench/1" schema (`--format json`, plus "engine": "llama.cpp"), so the two can be
    compared; `--combine` renders tallow's and llama.cpp's JSON files as tables side by side.
  * errors: a model that cannot be mapped or loaded is one table row "error: ..."; the exit code is
    1 only when every model failed, 2 on bad arguments.
Needs .venv-lcpp (`tools/setup.sh lcpp`): llama-cpp-python and gguf from PyPI.
"""
import argparse
import ctypes
import hashlib
import json
import os
import re
import statistics
import struct
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FORMAT_VERSION = 1  # bump when the GGUF this script writes changes

QTYPES = {  # name: (ggml type id, bytes per block of 32 weights)
    "q4_0": (2, 18),
    "q8_0": (8, 34),
}
FTYPE = {"q4_0": 2, "q8_0": 7}  # general.file_type: LLAMA_FTYPE_MOSTLY_Q4_0 / _Q8_0


class MapError(Exception):
    pass


# ---------------------------------------------------------------- reading the tallow model

def read_safetensors_headers(mdir):
    """{tensor name: (dtype, shape)} over every *.safetensors file of the directory."""
    files = sorted(f for f in os.listdir(mdir) if f.endswith(".safetensors"))
    if not files:
        raise MapError(f"{mdir}: no .safetensors file")
    out = {}
    for fn in files:
        path = os.path.join(mdir, fn)
        with open(path, "rb") as f:
            raw = f.read(8)
            if len(raw) != 8:
                raise MapError(f"{path}: shorter than a safetensors header")
            n = struct.unpack("<Q", raw)[0]
            if n > 100 << 20:
                raise MapError(f"{path}: header length {n} is not plausible")
            try:
                hdr = json.loads(f.read(n))
            except ValueError as e:
                raise MapError(f"{path}: header is not JSON: {e}") from None
        if not isinstance(hdr, dict):
            raise MapError(f"{path}: header is not a JSON object")
        for k, v in hdr.items():
            if k == "__metadata__":
                continue
            shape = v.get("shape") if isinstance(v, dict) else None
            if not isinstance(v, dict) or not isinstance(v.get("dtype"), str) \
                    or not isinstance(shape, list) \
                    or not all(isinstance(d, int) and 0 <= d < 1 << 40 for d in shape):
                raise MapError(f"{path}: tensor {k!r}: no valid dtype and shape in the header")
            out[k] = (v["dtype"], shape)
    return out


def load_config(mdir):
    path = os.path.join(mdir, "config.json")
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise MapError(f"{path}: {e.strerror}") from None
    try:
        cfg = json.loads(raw)
    except ValueError as e:
        raise MapError(f"{path}: not JSON: {e}") from None
    if not isinstance(cfg, dict) or not isinstance(text_config(cfg), dict):
        raise MapError(f"{path}: not a model config object")
    return cfg


def text_config(cfg):
    return cfg.get("text_config") or cfg


def strip_prefix(name):
    for p in ("language_model.model.", "model.language_model.", "language_model.", "model."):
        if name.startswith(p):
            return name[len(p):]
    return name


# HF (after strip_prefix) -> GGUF tensor names; "{i}" is the layer.
LAYER_MAP = {
    "input_layernorm.weight": "blk.{i}.attn_norm.weight",
    "self_attn.q_proj": "blk.{i}.attn_q.weight",
    "self_attn.k_proj": "blk.{i}.attn_k.weight",
    "self_attn.v_proj": "blk.{i}.attn_v.weight",
    "self_attn.o_proj": "blk.{i}.attn_output.weight",
    "self_attn.q_norm.weight": "blk.{i}.attn_q_norm.weight",
    "self_attn.k_norm.weight": "blk.{i}.attn_k_norm.weight",
    "mlp.gate_proj": "blk.{i}.ffn_gate.weight",
    "mlp.up_proj": "blk.{i}.ffn_up.weight",
    "mlp.down_proj": "blk.{i}.ffn_down.weight",
    "linear_attn.in_proj_qkv": "blk.{i}.attn_qkv.weight",
    "linear_attn.in_proj_z": "blk.{i}.attn_gate.weight",
    "linear_attn.in_proj_b": "blk.{i}.ssm_beta.weight",
    "linear_attn.in_proj_a": "blk.{i}.ssm_alpha.weight",
    "linear_attn.out_proj": "blk.{i}.ssm_out.weight",
    "linear_attn.conv1d.weight": "blk.{i}.ssm_conv1d.weight",
    "linear_attn.A_log": "blk.{i}.ssm_a",
    "linear_attn.dt_bias": "blk.{i}.ssm_dt.bias",
    "linear_attn.norm.weight": "blk.{i}.ssm_norm.weight",
}
TOP_MAP = {
    "embed_tokens": "token_embd.weight",
    "norm.weight": "output_norm.weight",
    "lm_head": "output.weight",
}


def plan_tensors(mdir, cfg, hdr):
    """[(gguf name, numpy shape, kind, n_weights)] with kind 'quant' (a matrix) or 'f32'.
    MLX-quantized matrices (uint32 weight + scales + biases) give their logical shape."""
    tc = text_config(cfg)
    qcfg = cfg.get("quantization") or cfg.get("quantization_config") or {}
    bits = qcfg.get("bits")
    n_layer = tc["num_hidden_layers"]
    arch = tc.get("model_type", cfg.get("model_type", ""))
    post_norm = "blk.{i}.post_attention_norm.weight" if arch.startswith("qwen3_5") \
        else "blk.{i}.ffn_norm.weight"
    plan, skipped = [], []
    for name in sorted(hdr):
        dtype, shape = hdr[name]
        base = strip_prefix(name)
        if base.endswith(".scales") or base.endswith(".biases"):
            continue
        quant = dtype == "U32" and (name[:-len("weight")] + "scales") in hdr
        if quant:
            if not bits or bits not in (2, 3, 4, 5, 6, 8):
                raise MapError(f"{name}: quantized but config.json has no valid quantization.bits")
            if len(shape) != 2:
                raise MapError(f"{name}: quantized tensor of rank {len(shape)}")
            shape = [shape[0], shape[1] * 32 // bits]
            key = base[:-len(".weight")]
        else:
            key = base
        m = re.match(r"layers\.(\d+)\.(.+)$", key)
        if m:
            i = int(m.group(1))
            rest = m.group(2)
            if i >= n_layer:
                skipped.append(name)  # MTP / extra layers llama.cpp does not run by default
                continue
            if rest == "post_attention_layernorm.weight":
                gname = post_norm.format(i=i)
            elif rest in LAYER_MAP:
                gname = LAYER_MAP[rest].format(i=i)
            elif rest.endswith(".weight") and rest[:-len(".weight")] in LAYER_MAP:
                gname = LAYER_MAP[rest[:-len(".weight")]].format(i=i)
            else:
                raise MapError(f"{mdir}: tensor {name}: no GGUF name for it")
        elif key in TOP_MAP:
            gname = TOP_MAP[key]
        elif key.endswith(".weight") and key[:-len(".weight")] in TOP_MAP:
            gname = TOP_MAP[key[:-len(".weight")]]
        elif key.startswith(("visual.", "vision_tower.", "mtp.", "multi_modal_projector.")):
            skipped.append(name)
            continue
        else:
            raise MapError(f"{mdir}: tensor {name}: no GGUF name for it")
        if gname.endswith("ssm_conv1d.weight"):
            shape = [d for d in shape if d != 1] or [1]
        n = 1
        for d in shape:
            n *= d
        kind = "quant" if len(shape) == 2 and not gname.endswith("ssm_conv1d.weight") else "f32"
        if kind == "quant" and shape[1] % 32:
            raise MapError(f"{name}: {shape[1]} columns is not a multiple of 32 (Q4_0/Q8_0 block)")
        plan.append((gname, shape, kind, n))
    names = [p[0] for p in plan]
    dup = {x for x in names if names.count(x) > 1}
    if dup:
        raise MapError(f"{mdir}: several tensors map to {sorted(dup)[0]}")
    if "token_embd.weight" not in names:
        raise MapError(f"{mdir}: no embed_tokens tensor")
    if arch == "llama":
        hd = tc.get("head_dim") or tc["hidden_size"] // tc["num_attention_heads"]
        rs = tc.get("rope_scaling") or {}
        if rs.get("rope_type", rs.get("type")) == "llama3":
            plan.append(("rope_freqs.weight", [hd // 2], "f32", hd // 2))
    return plan, skipped


def llama3_rope_factors(tc):
    """Per-frequency divisors of Llama 3's long-context RoPE (rope_scaling type llama3)."""
    import math
    rs = tc["rope_scaling"]
    hd = tc.get("head_dim") or tc["hidden_size"] // tc["num_attention_heads"]
    base = float(tc.get("rope_theta", 500000.0))
    factor = float(rs.get("factor", 8.0))
    lo = float(rs.get("low_freq_factor", 1.0))
    hi = float(rs.get("high_freq_factor", 4.0))
    old = float(rs.get("original_max_position_embeddings", 8192))
    out = []
    for j in range(hd // 2):
        wavelen = 2 * math.pi * base ** (2 * j / hd)
        if wavelen < old / hi:
            out.append(1.0)
        elif wavelen > old / lo:
            out.append(factor)
        else:
            s = (old / wavelen - lo) / (hi - lo)
            out.append(1.0 / ((1 - s) / factor + s))
    return out


# ---------------------------------------------------------------- writing the GGUF

def gguf_arch(tc):
    mt = tc.get("model_type", "")
    if mt == "llama":
        return "llama"
    if mt in ("qwen3_5_text", "qwen3_5"):
        return "qwen35"
    if mt == "qwen3":
        return "qwen3"
    raise MapError(f"model_type {mt!r}: this script knows llama, qwen3 and qwen3_5")


def write_gguf(path, label, cfg, plan, qtype, seed):
    import numpy as np
    import gguf

    tc = text_config(cfg)
    arch = gguf_arch(tc)
    hd = tc.get("head_dim") or tc["hidden_size"] // tc["num_attention_heads"]
    vocab = tc["vocab_size"]
    w = gguf.GGUFWriter(path, arch)
    w.add_name(f"{label} (random {qtype.upper()} weights of the same shapes, tallow bench_llamacpp)")
    w.add_uint32("general.file_type", FTYPE[qtype])
    w.add_uint32(f"{arch}.vocab_size", vocab)
    w.add_uint32(f"{arch}.context_length", int(tc.get("max_position_embeddings", 4096)))
    w.add_uint32(f"{arch}.embedding_length", tc["hidden_size"])
    w.add_uint32(f"{arch}.block_count", tc["num_hidden_layers"])
    w.add_uint32(f"{arch}.feed_forward_length", tc["intermediate_size"])
    w.add_uint32(f"{arch}.attention.head_count", tc["num_attention_heads"])
    w.add_uint32(f"{arch}.attention.head_count_kv", tc.get("num_key_value_heads",
                                                           tc["num_attention_heads"]))
    w.add_uint32(f"{arch}.attention.key_length", hd)
    w.add_uint32(f"{arch}.attention.value_length", hd)
    w.add_float32(f"{arch}.attention.layer_norm_rms_epsilon", float(tc.get("rms_norm_eps", 1e-6)))
    rope = tc.get("rope_parameters") or {}
    theta = float(rope.get("rope_theta", tc.get("rope_theta", 10000.0)))
    w.add_float32(f"{arch}.rope.freq_base", theta)
    if arch == "qwen35":
        prf = float(rope.get("partial_rotary_factor", tc.get("partial_rotary_factor", 0.25)))
        w.add_uint32(f"{arch}.rope.dimension_count", int(hd * prf))
        sec = list(rope.get("mrope_section", [11, 11, 10]))
        w.add_array(f"{arch}.rope.dimension_sections", (sec + [0, 0, 0, 0])[:4])
        w.add_uint32(f"{arch}.ssm.conv_kernel", tc["linear_conv_kernel_dim"])
        w.add_uint32(f"{arch}.ssm.state_size", tc["linear_key_head_dim"])
        w.add_uint32(f"{arch}.ssm.group_count", tc["linear_num_key_heads"])
        w.add_uint32(f"{arch}.ssm.time_step_rank", tc["linear_num_value_heads"])
        w.add_uint32(f"{arch}.ssm.inner_size",
                     tc["linear_value_head_dim"] * tc["linear_num_value_heads"])
        interval = int(tc.get("full_attention_interval", 4))
        types = tc.get("layer_types") or [
            "full_attention" if (i + 1) % interval == 0 else "linear_attention"
            for i in range(tc["num_hidden_layers"])]
        w.add_array(f"{arch}.attention.recurrent_layers", [t == "linear_attention" for t in types])
        w.add_uint32(f"{arch}.full_attention_interval", interval)
    else:
        w.add_uint32(f"{arch}.rope.dimension_count", hd)
    w.add_string("tokenizer.ggml.model", "no_vocab")

    tid, bpb = QTYPES[qtype]
    for gname, shape, kind, n in plan:
        if kind == "quant":
            nbytes = shape[0] * (shape[1] // 32) * bpb
            w.add_tensor_info(gname, [shape[0], shape[1] // 32 * bpb], np.dtype(np.uint8), nbytes,
                              raw_dtype=gguf.GGMLQuantizationType(tid))
        else:
            w.add_tensor_info(gname, shape, np.dtype(np.float32), n * 4)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()

    rng = np.random.default_rng(seed)
    rope_factors = llama3_rope_factors(tc) if any(p[0] == "rope_freqs.weight" for p in plan) \
        else None
    for gname, shape, kind, n in plan:
        if kind == "quant":
            nblk = shape[0] * (shape[1] // 32)
            blocks = np.frombuffer(rng.bytes(nblk * bpb), dtype=np.uint8).reshape(nblk, bpb).copy()
            # weights of about 0.02 rms: q4 nibbles span +-8 d, q8 bytes +-128 d
            d0 = 0.0043 if qtype == "q4_0" else 0.00027
            d = (d0 * (0.75 + 0.5 * rng.random(nblk))).astype(np.float16)
            blocks[:, 0:2] = d.view(np.uint8).reshape(nblk, 2)
            w.write_tensor_data(blocks.reshape(shape[0], shape[1] // 32 * bpb))
        else:
            if gname.endswith("ssm_a"):
                t = -rng.uniform(0.5, 2.0, size=shape)       # -exp(A_log)
            elif gname.endswith("ssm_dt.bias"):
                t = rng.uniform(-1.0, 1.0, size=shape)
            elif gname.endswith("ssm_conv1d.weight"):
                t = rng.normal(0.0, 0.2, size=shape)
            elif gname == "rope_freqs.weight":
                t = np.array(rope_factors)
            else:                                              # rms norm weights
                t = np.ones(shape)
            w.write_tensor_data(np.ascontiguousarray(t, dtype=np.float32))
    w.close()


def cached_gguf(mdir, qtype, seed, cache_dir, log):
    """Path of the GGUF for model directory mdir, writing it on first use."""
    mdir = mdir.rstrip("/")
    cfg = load_config(mdir)
    hdr = read_safetensors_headers(mdir)
    try:
        plan, skipped = plan_tensors(mdir, cfg, hdr)
    except (KeyError, TypeError, ValueError) as e:
        raise MapError(f"{mdir}/config.json: missing or bad field {e}") from None
    key = hashlib.sha256(json.dumps([FORMAT_VERSION, qtype, seed, cfg, plan],
                                    sort_keys=True).encode()).hexdigest()[:12]
    label = os.path.basename(mdir)
    path = os.path.join(cache_dir, f"{label}-{qtype}-{key}.gguf")
    if not os.path.exists(path):
        os.makedirs(cache_dir, exist_ok=True)
        nw = sum(p[3] for p in plan)
        log(f"lcpp: writing {path} ({nw / 1e9:.2f} G weights, {len(plan)} tensors"
            + (f", {len(skipped)} skipped: {skipped[0]} ..." if skipped else "") + ")")
        tmp = path + ".tmp"
        t0 = time.time()
        write_gguf(tmp, label, cfg, plan, qtype, seed)
        os.replace(tmp, path)
        log(f"lcpp: wrote {os.path.getsize(path) / 1e9:.3f} GB in {time.time() - t0:.1f} s")
    return path, cfg, plan


# ---------------------------------------------------------------- measuring with llama.cpp

class ThreadpoolParams(ctypes.Structure):
    _fields_ = [("cpumask", ctypes.c_bool * 512), ("n_threads", ctypes.c_int),
                ("prio", ctypes.c_int), ("poll", ctypes.c_uint32),
                ("strict_cpu", ctypes.c_bool), ("paused", ctypes.c_bool)]


class Lcpp:
    """The llama_cpp low-level API, plus a llama-bench-style thread pool when it can be had."""

    def __init__(self, verbose):
        import llama_cpp
        import llama_cpp.llama_cpp as L
        self.L = L
        self.version = getattr(llama_cpp, "__version__", "?")
        if not verbose:
            self._quiet = L.llama_log_callback(lambda level, text, data: None)
            L.llama_log_set(self._quiet, None)
        L.llama_backend_init()
        self.sysinfo = L.llama_print_system_info().decode(errors="replace").strip()
        self.tp_new = self.tp_free = self.attach = None
        libdir = os.path.join(os.path.dirname(llama_cpp.__file__), "lib")
        try:
            cpu = ctypes.CDLL(os.path.join(libdir, "libggml-cpu.so"))
            self.tp_new = cpu.ggml_threadpool_new
            self.tp_new.restype = ctypes.c_void_p
            self.tp_new.argtypes = [ctypes.POINTER(ThreadpoolParams)]
            self.tp_free = cpu.ggml_threadpool_free
            self.tp_free.argtypes = [ctypes.c_void_p]
            self.attach = L._lib.llama_attach_threadpool
            self.attach.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
            self.attach.restype = None
        except (OSError, AttributeError):
            self.tp_new = None

    def run(self, gguf_path, threads, pp, tg, reps, warmup, mmap, seed):
        L = self.L
        import random
        rnd = random.Random(seed)
        mp = L.llama_model_default_params()
        mp.n_gpu_layers = 0
        mp.use_mmap = mmap
        reset_peak_rss()
        t0 = time.perf_counter()
        model = L.llama_model_load_from_file(gguf_path.encode(), mp)
        if not model:
            raise RuntimeError(f"{gguf_path}: llama.cpp could not load it (run with --verbose)")
        cp = L.llama_context_default_params()
        cp.n_ctx = max(pp, tg, 1)
        cp.n_batch = min(512, max(pp, 1))
        cp.n_ubatch = cp.n_batch
        cp.n_threads = threads
        cp.n_threads_batch = threads
        cp.no_perf = True
        ctx = L.llama_init_from_model(model, cp)
        if not ctx:
            L.llama_model_free(model)
            raise RuntimeError(f"{gguf_path}: llama.cpp could not create a context")
        load_s = time.perf_counter() - t0
        tp = None
        if self.tp_new:
            prm = ThreadpoolParams()
            prm.n_threads, prm.prio, prm.poll = threads, 0, 50
            tp = self.tp_new(ctypes.byref(prm))
            if tp:
                self.attach(ctx, tp, tp)
        L.llama_set_n_threads(ctx, threads, threads)
        vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(model))
        mem = L.llama_get_memory(ctx)
        nb = cp.n_batch
        toks = (L.llama_token * nb)()

        def decode(n):
            rc = L.llama_decode(ctx, L.llama_batch_get_one(toks, n))
            if rc != 0:
                raise RuntimeError(f"llama_decode returned {rc}")

        def test_pp():
            L.llama_memory_clear(mem, False)
            t = time.perf_counter_ns()
            done = 0
            while done < pp:
                n = min(nb, pp - done)
                for i in range(n):
                    toks[i] = rnd.randrange(vocab)
                decode(n)
                done += n
            L.llama_synchronize(ctx)
            return time.perf_counter_ns() - t

        def test_tg():
            L.llama_memory_clear(mem, False)
            t = time.perf_counter_ns()
            for _ in range(tg):
                toks[0] = rnd.randrange(vocab)
                decode(1)
                L.llama_synchronize(ctx)
            return time.perf_counter_ns() - t

        try:
            if warmup:
                if pp:
                    test_pp()
                if tg:
                    test_tg()
            pp_ns = [test_pp() for _ in range(reps)] if pp else []
            tg_ns = [test_tg() for _ in range(reps)] if tg else []
        finally:
            peak = peak_rss_bytes()
            size = L.llama_model_size(model)
            nparams = L.llama_model_n_params(model)
            L.llama_free(ctx)
            if tp:
                self.tp_free(tp)
            L.llama_model_free(model)
        return dict(load_s=load_s, pp_ns=pp_ns, tg_ns=tg_ns, peak=peak, size=size,
                    n_params=nparams, pool="llama-bench's (poll 50)" if tp else "ggml's default")


def reset_peak_rss():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_rss_bytes():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def stat(xs):
    if not xs:
        return {"median": 0.0, "min": 0.0, "max": 0.0, "n": 0}
    return {"median": statistics.median(xs), "min": min(xs), "max": max(xs), "n": len(xs)}


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def cached_peak_bw(threads):
    """tallow bench's measured peak read bandwidth, if it has measured it on this machine."""
    path = os.path.expanduser(f"~/.cache/tallow/membw-{threads}.txt")
    try:
        with open(path) as f:
            lines = f.read().split("\n")
        return float(lines[1])
    except (OSError, IndexError, ValueError):
        return 0.0


# ---------------------------------------------------------------- tables

def fmt_range(s, fmt):
    a = fmt % s["median"]
    if s.get("n", 0) > 1:
        return f"{a} ({fmt % s['min']}–{fmt % s['max']})"
    return a


def write_md(doc, out):
    """The table of tallow bench's markdown output (src/bench/report.c), from either engine."""
    if doc.get("machine"):
        out.write(f"Machine: {doc['machine']}\n")
    if doc.get("workload"):
        out.write(f"Workload: {doc['workload']}\n\n")
    out.write("| model | quant | load s | prompt tok | prompt tok/s | TTFT ms | gen tok | "
              "gen tok/s | peak mem GB | decode GB/s (of peak) |\n")
    out.write("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
    for x in doc["results"]:
        syn = " (synthetic)" if x.get("synthetic") else ""
        if x.get("error"):
            out.write(f"| {x['label']}{syn} | error: {x['error']} |||||||||\n")
            continue
        pbw = x.get("peak_bandwidth_gbs") or 0
        bw = x["decode_gbs"]["median"]
        bws = f"{bw:.1f} ({100 * bw / pbw:.0f}% of {pbw:.1f})" if pbw > 0 else f"{bw:.1f}"
        out.write(f"| {x['label']}{syn} | {x['quant']} | {x['load_s']:.2f} | "
                  f"{x['prompt_tokens']} | {fmt_range(x['prompt_tps'], '%.1f')} | "
                  f"{fmt_range(x['ttft_ms'], '%.0f')} | {x['generation_tokens']} | "
                  f"{fmt_range(x['generation_tps'], '%.1f')} | "
                  f"{x['peak_memory_bytes'] / 1e9:.3f} | {bws} |\n")
    if doc.get("notes"):
        out.write("\n" + doc["notes"] + "\n")


def write_combined(tallow_docs, lcpp_docs, out):
    """model, threads, tallow pp/tg, llama.cpp pp/tg and the ratios, from the JSON of both."""
    rows = {}
    order = []
    for docs, eng in ((tallow_docs, "tallow"), (lcpp_docs, "lcpp")):
        for d in docs:
            for x in d["results"]:
                k = (x["label"], x.get("threads", 0))
                if k not in rows:
                    rows[k] = {}
                    order.append(k)
                rows[k][eng] = x

    def cell(x, field):
        if not x:
            return "—"
        if x.get("error"):
            return "error"
        return "%.1f" % x[field]["median"]

    def ratio(a, b, field):
        if not a or not b or a.get("error") or b.get("error") or not b[field]["median"]:
            return "—"
        return "%.2f" % (a[field]["median"] / b[field]["median"])

    pp = tg = None
    for d in tallow_docs + lcpp_docs:
        for x in d["results"]:
            if not x.get("error"):
                pp, tg = x["prompt_tokens"], x["generation_tokens"]
                break
        if pp is not None:
            break
    pp_s, tg_s = (f"pp{pp}", f"tg{tg}") if pp is not None else ("pp", "tg")
    out.write(f"| model | threads | tallow {pp_s} tok/s | llama.cpp {pp_s} tok/s | tallow / "
              f"llama.cpp {pp_s} | tallow {tg_s} tok/s | llama.cpp {tg_s} tok/s | tallow / "
              f"llama.cpp {tg_s} |\n")
    out.write("|---|--:|--:|--:|--:|--:|--:|--:|\n")
    for k in order:
        a, b = rows[k].get("tallow"), rows[k].get("lcpp")
        out.write(f"| {k[0]} | {k[1]} | {cell(a, 'prompt_tps')} | {cell(b, 'prompt_tps')} | "
                  f"{ratio(a, b, 'prompt_tps')} | {cell(a, 'generation_tps')} | "
                  f"{cell(b, 'generation_tps')} | {ratio(a, b, 'generation_tps')} |\n")


def load_json(path):
    with open(path) as f:
        try:
            doc = json.load(f)
        except ValueError as e:
            raise SystemExit(f"bench_llamacpp: {path}: not JSON: {e}")
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
        raise SystemExit(f"bench_llamacpp: {path}: not a tallow-bench/1 document")
    return doc


# ---------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(
        description="llama.cpp on the shapes of tallow models (random Q4_0 GGUF), llama-bench "
                    "style, printed like `tallow bench`.")
    ap.add_argument("-m", "--model", action="append", default=[],
                    help="tallow model directory (repeat)")
    ap.add_argument("--pp", type=int, default=512, help="prompt tokens (default 512; 0: skip)")
    ap.add_argument("--tg", type=int, default=128, help="generated tokens (default 128; 0: skip)")
    ap.add_argument("-t", "--threads", default="",
                    help="thread counts, comma separated (default: all cores)")
    ap.add_argument("-r", "--reps", type=int, default=3, help="timed repetitions (default 3)")
    ap.add_argument("--no-warmup", action="store_true")
    ap.add_argument("--type", choices=sorted(QTYPES), default="",
                    help="GGUF weight type (default: q8_0 for 8-bit models, else q4_0)")
    ap.add_argument("--no-mmap", action="store_true", help="read the weights instead of mmap")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache-dir", default=os.path.join(ROOT, ".cache", "lcpp"))
    ap.add_argument("--format", choices=["md", "json"], default="md")
    ap.add_argument("--gguf-only", action="store_true", help="write the GGUF files, print paths")
    ap.add_argument("--verbose", action="store_true", help="llama.cpp's own log on stderr")
    ap.add_argument("--combine", nargs="+", metavar="JSON",
                    help="instead: print tables from tallow bench / this script's JSON files "
                         "and one side-by-side table")
    a = ap.parse_args()

    if a.combine:
        docs = [load_json(p) for p in a.combine]
        tl = [d for d in docs if d.get("engine", "tallow") == "tallow"]
        lc = [d for d in docs if d.get("engine") == "llama.cpp"]
        for d in docs:
            sys.stdout.write(f"### {d.get('engine', 'tallow')}\n\n")
            write_md(d, sys.stdout)
            sys.stdout.write("\n")
        sys.stdout.write("### side by side (medians)\n\n")
        write_combined(tl, lc, sys.stdout)
        return 0

    if not a.model:
        ap.error("give at least one -m MODEL (or --combine)")
    if a.pp < 0 or a.tg < 0 or a.pp + a.tg == 0 or a.reps < 1:
        ap.error("--pp and --tg must be >= 0 and not both 0; -r >= 1")
    try:
        threads = [int(x) for x in a.threads.split(",") if x.strip()] or [os.cpu_count() or 1]
    except ValueError:
        ap.error(f"-t {a.threads!r}: want numbers like 1,2")
    if any(t < 1 for t in threads):
        ap.error("-t: thread counts must be >= 1")

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    prepared = []
    for m in a.model:
        label = os.path.basename(m.rstrip("/"))
        try:
            cfg0 = load_config(m)
            q = cfg0.get("quantization") or cfg0.get("quantization_config") or {}
            qtype = a.type or ("q8_0" if isinstance(q, dict) and q.get("bits") == 8 else "q4_0")
            try:
                path, cfg, plan = cached_gguf(m, qtype, a.seed, a.cache_dir, log)
            except (KeyError, TypeError, ValueError) as e:
                raise MapError(f"{m}/config.json: missing or bad field {e}") from None
            except OSError as e:
                raise MapError(f"{e.filename or m}: {e.strerror}") from None
            prepared.append((m, label, qtype, path, cfg, None))
        except MapError as e:
            prepared.append((m, label, "", None, None, str(e)))
            log(f"lcpp: {e}")
    if a.gguf_only:
        for p in prepared:
            print(p[3] or f"error: {p[5]}")
        return 0 if any(p[3] for p in prepared) else 1

    lc = Lcpp(a.verbose)
    docs = []
    for t in threads:
        results = []
        pool = "?"
        for m, label, qtype, path, cfg, err in prepared:
            synthetic = bool(cfg and cfg.get("tallow_synthetic"))
            r = {"model": m, "label": label, "synthetic": synthetic, "threads": t,
                 "device": "cpu"}
            if err:
                r["error"] = err
                results.append(r)
                continue
            log(f"lcpp: {label}, {t} thread{'s' if t > 1 else ''}: pp{a.pp} tg{a.tg} x{a.reps} ...")
            try:
                x = lc.run(path, t, a.pp, a.tg, a.reps, not a.no_warmup, not a.no_mmap, a.seed)
            except RuntimeError as e:
                r["error"] = str(e)
                results.append(r)
                log(f"lcpp: {label}: {e}")
                continue
            pool = x["pool"]
            pp_tps = [a.pp / (ns / 1e9) for ns in x["pp_ns"]]
            tg_tps = [a.tg / (ns / 1e9) for ns in x["tg_ns"]]
            pbw = cached_peak_bw(t)
            tc = text_config(cfg)
            r.update({
                "gguf": path,
                "arch": gguf_arch(tc),
                "quant": qtype.upper(),
                "n_params": x["n_params"],
                "weight_bytes": x["size"],
                "load_s": x["load_s"],
                "prompt_tokens": a.pp,
                "generation_tokens": a.tg,
                "prompt_tps": stat(pp_tps),
                "generation_tps": stat(tg_tps),
                "ttft_ms": stat([ns / 1e6 for ns in x["pp_ns"]]),
                "decode_gbs": stat([v * x["size"] / 1e9 for v in tg_tps]),
                "peak_bandwidth_gbs": pbw,
                "peak_memory_bytes": x["peak"],
            })
            results.append(r)
        pbw = cached_peak_bw(t)
        doc = {
            "schema": "tallow-bench/1",
            "engine": "llama.cpp",
            "llama_cpp_python": lc.version,
            "machine": f"{cpu_name()}, {t} thread{'s' if t > 1 else ''}"
                       + (f", peak read {pbw:.1f} GB/s (tallow's measurement)" if pbw else ""),
            "workload": f"llama.cpp (llama-cpp-python {lc.version}), llama-bench style: "
                        f"pp{a.pp}, tg{a.tg} (random tokens), {a.reps} reps after "
                        f"{'no' if a.no_warmup else 'a'} warm-up; thread pool {pool}; "
                        f"{'no mmap' if a.no_mmap else 'mmap'}",
            "notes": "llama.cpp: random weights in a GGUF of the model's shapes; TTFT ms is the "
                     "prefill's wall time; peak mem GB is the process's peak resident set "
                     "(mapped file pages included), not a counted figure; decode GB/s is gen "
                     "tok/s x the GGUF's tensor bytes.",
            "system_info": lc.sysinfo,
            "results": results,
        }
        docs.append(doc)
    if a.format == "json":
        json.dump(docs[0] if len(docs) == 1 else {"schema": "tallow-bench/1-list",
                                                  "runs": docs}, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        for i, d in enumerate(docs):
            if i:
                sys.stdout.write("\n")
            write_md(d, sys.stdout)
    failed = sum(1 for d in docs for r in d["results"] if r.get("error"))
    total = sum(len(d["results"]) for d in docs)
    return 1 if failed == total else 0


if __name__ == "__main__":
    sys.exit(main())
