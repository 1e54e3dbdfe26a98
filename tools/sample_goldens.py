#!/usr/bin/env python3
"""sample_goldens.py — goldens for the sampler's filters, made by the references' own functions.

transformers' logits processors / warpers (RepetitionPenalty, Temperature, TopK, TopP, MinP, in
generate()'s order) and mlx-lm's apply_top_k / apply_top_p / apply_min_p, run on fixed logits.
Presence / frequency penalties and logit bias have no reference with OpenAI semantics in either
library, so those cases are computed here from OpenAI's published formula.

Writes tests/data/sample/goldens.txt, one case per block:
    case NAME
    params TEMP TOP_K TOP_P MIN_P REP_PENALTY PRESENCE FREQUENCY
    context N ids...        (prompt tokens: repetition-penalty context)
    generated N ids...      (generated tokens: all penalties)
    bias N id value ...
    xtc PROBABILITY THRESHOLD N protected-ids...
    logits V values...
    kept N id prob ...      (renormalised probabilities of the kept tokens)
Also writes tests/data/sample/tok256/: a byte-level BPE tokenizer of exactly 256 ids (8 special
tokens, 97 printable ASCII characters plus newline and tab, 151 merges trained on a few English
sentences) and a ChatML template with Qwen3.5's thinking switch, so the tiny 256-token test models
can take text prompts and chat. The C tests add these files beside a tiny model at run time.

Run: /work/main/.venv/bin/python tools/sample_goldens.py
"""
import json
import os

import numpy as np
import torch
from transformers.convert_slow_tokenizer import bytes_to_unicode
from transformers.generation.logits_process import (
    MinPLogitsWarper, RepetitionPenaltyLogitsProcessor, TemperatureLogitsWarper,
    TopKLogitsWarper, TopPLogitsWarper)

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "sample", "goldens.txt")


def hf_chain(logits, temp, top_k, top_p, min_p, rep, context):
    scores = torch.tensor(logits, dtype=torch.float32)[None, :]
    ids = torch.tensor([context if context else [0]], dtype=torch.long)
    if rep != 1.0 and context:
        scores = RepetitionPenaltyLogitsProcessor(rep)(ids, scores)
    if temp != 1.0:
        scores = TemperatureLogitsWarper(temp)(ids, scores)
    if top_k > 0:
        scores = TopKLogitsWarper(top_k)(ids, scores)
    if top_p < 1.0:
        scores = TopPLogitsWarper(top_p)(ids, scores)
    if min_p > 0.0:
        scores = MinPLogitsWarper(min_p)(ids, scores)
    return torch.softmax(scores, dim=-1)[0].numpy()


def mlx_filter(logits, top_k, top_p, min_p, xtc=None):
    import mlx.core as mx
    from mlx_lm.sample_utils import apply_min_p, apply_top_k, apply_top_p, apply_xtc
    x = mx.array(np.asarray(logits, dtype=np.float32))
    lp = x - mx.logsumexp(x, axis=-1, keepdims=True)
    lp = lp[None, :]
    if top_k > 0:
        lp = apply_top_k(lp, top_k)
    if top_p < 1.0:
        lp = apply_top_p(lp, top_p)
    if min_p > 0.0:
        lp = apply_min_p(lp, min_p)
    if xtc is not None:  # probability 1: always applied, so the result is deterministic
        lp = apply_xtc(lp, 1.0, xtc[0], list(xtc[1]))
    p = mx.softmax(lp, axis=-1)
    return np.array(p[0])


def openai(logits, presence, frequency, generated, bias):
    x = np.asarray(logits, dtype=np.float64).copy()
    for i, b in bias:
        x[i] += b
    for t in set(generated):
        x[t] -= presence + frequency * generated.count(t)
    x = x - x.max()
    e = np.exp(x)
    return (e / e.sum()).astype(np.float32), x


def fmt_ids(tag, ids):
    return f"{tag} {len(ids)}" + "".join(f" {i}" for i in ids)


def main():
    rng = np.random.default_rng(1234)
    V = 64
    base = (rng.standard_normal(V) * 1.5).astype(np.float32)
    neg = (rng.standard_normal(V) * 2.0 - 3.0).astype(np.float32)  # mostly negative logits
    ties = base.copy()
    order = np.argsort(-ties)
    ties[order[3]] = ties[order[4]] = ties[order[5]]  # 3-way tie spanning the top-4 boundary
    big = (rng.standard_normal(2000) * 2.5).astype(np.float32)
    ctx = [int(v) for v in rng.integers(0, V, 12)]
    gen = [int(v) for v in rng.integers(0, V, 10)] + [int(order[0])] * 3

    cases = []  # (name, logits, temp, k, p, minp, rep, pres, freq, context, generated, bias, probs)
    xtcs = {}   # name -> (threshold, protected ids)

    def hf(name, logits, temp=1.0, k=0, p=1.0, m=0.0, rep=1.0, context=()):
        probs = hf_chain(logits, temp, k, p, m, rep, list(context))
        cases.append((name, logits, temp, k, p, m, rep, 0.0, 0.0, list(context), [], [], probs))

    hf("hf_topk10_t07", base, temp=0.7, k=10)
    hf("hf_topp09", base, p=0.9)
    hf("hf_topp05_t15", base, temp=1.5, p=0.5)
    hf("hf_minp005_t13", base, temp=1.3, m=0.05)
    hf("hf_chain_t08_k20_p08_m01", base, temp=0.8, k=20, p=0.8, m=0.1)
    hf("hf_rep13", base, rep=1.3, context=ctx)
    hf("hf_rep13_negative", neg, rep=1.3, context=ctx)
    hf("hf_rep07_t09_k30", base, temp=0.9, k=30, rep=0.7, context=ctx)
    hf("hf_topk4_ties", ties, k=4)
    hf("hf_big_topp095_t11", big, temp=1.1, p=0.95)
    hf("hf_big_topk50_minp002", big, k=50, m=0.02)
    hf("hf_big_t06", big, temp=0.6)
    hf("hf_big_topk1500_t13_p099", big, temp=1.3, k=1500, p=0.99)

    for name, k, p, m in [("mlx_topk5", 5, 1.0, 0.0), ("mlx_topp07", 0, 0.7, 0.0),
                          ("mlx_minp02", 0, 1.0, 0.2), ("mlx_topp093", 0, 0.93, 0.0)]:
        cases.append((name, base, 1.0, k, p, m, 1.0, 0.0, 0.0, [], [], [],
                      mlx_filter(base, k, p, m)))

    for name, p, thr, prot in [("mlx_xtc005", 1.0, 0.05, ()), ("mlx_xtc002_protect_top", 1.0, 0.02,
                                                             (int(order[0]),)),
                               ("mlx_topp09_xtc003", 0.9, 0.03, (int(order[2]), 5))]:
        xtcs[name] = (thr, prot)
        cases.append((name, base, 1.0, 0, p, 0.0, 1.0, 0.0, 0.0, [], [], [],
                      mlx_filter(base, 0, p, 0.0, (thr, prot))))

    bias = [(int(order[1]), 2.5), (int(order[10]), -100.0), (7, 1.25)]
    probs, _ = openai(base, 0.5, 0.3, gen, bias)
    cases.append(("openai_pres05_freq03_bias", base, 1.0, 0, 1.0, 0.0, 1.0, 0.5, 0.3, [], gen,
                  bias, probs))
    probs, _ = openai(base, 1.5, 0.0, gen, [])
    cases.append(("openai_pres15", base, 1.0, 0, 1.0, 0.0, 1.0, 1.5, 0.0, [], gen, [], probs))

    with open(OUT, "w") as f:
        f.write("# made by tools/sample_goldens.py (transformers "
                f"{__import__('transformers').__version__}, mlx-lm "
                f"{__import__('mlx_lm').__version__}); do not edit\n")
        for (name, logits, temp, k, p, m, rep, pres, freq, context, generated, bias_l,
             probs) in cases:
            f.write(f"case {name}\n")
            f.write(f"params {temp!r} {k} {p!r} {m!r} {rep!r} {pres!r} {freq!r}\n")
            f.write(fmt_ids("context", context) + "\n")
            f.write(fmt_ids("generated", generated) + "\n")
            f.write(f"bias {len(bias_l)}" + "".join(f" {i} {b!r}" for i, b in bias_l) + "\n")
            thr, prot = xtcs.get(name, (0.0, ()))
            f.write(f"xtc {1.0 if name in xtcs else 0.0!r} {thr!r} {len(prot)}"
                    + "".join(f" {i}" for i in prot) + "\n")
            f.write(f"logits {len(logits)}" + "".join(f" {float(v):.9g}" for v in logits) + "\n")
            kept = [(i, float(v)) for i, v in enumerate(probs) if v > 0]
            f.write(f"kept {len(kept)}" + "".join(f" {i} {v:.9g}" for i, v in kept) + "\n")
    print(f"wrote {len(cases)} cases to {os.path.normpath(OUT)}")


SPECIALS = ["<|pad|>", "<|bos|>", "<|im_end|>", "<|im_start|>", "<think>", "</think>",
            "<|endoftext|>", "<tool_call>"]

# A ChatML template with Qwen3.5's generation-prompt block ("thinking by default", like the 4B):
# enable_thinking false pre-closes an empty think block.
TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- if enable_thinking is defined and enable_thinking is false %}"
    "{{- '<think>\\n\\n</think>\\n\\n' }}"
    "{%- else %}"
    "{{- '<think>\\n' }}"
    "{%- endif %}"
    "{%- endif %}")

CORPUS = """The quick brown fox jumps over the lazy dog. Hello world, hello there!
In the beginning there was a small model that learned to think and then to answer.
Tell me a story about the sea, the stars and the wind; then tell it again, only shorter.
What is two plus two? It is four. What is the answer to the question? Think first.
She sells sea shells on the sea shore, and the shells she sells are sea shells for sure.
Numbers: 0 1 2 3 4 5 6 7 8 9 10 42 100; symbols: #$%&'()*+-/:<=>?@[]^_`{|}~ and "quotes".
Write a function that returns the sum of a list, then explain how it works in one sentence.
"""


def make_tokenizer(out_dir):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    b2u = bytes_to_unicode()
    keep = [b2u[b] for b in list(range(0x20, 0x7f)) + [0x0a, 0x09]]
    assert all(c in alphabet for c in keep)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=256, special_tokens=SPECIALS,
                                  initial_alphabet=keep, show_progress=False, min_frequency=1)
    tok.train_from_iterator([CORPUS] * 4, trainer=trainer)
    assert tok.get_vocab_size() == 256, tok.get_vocab_size()
    os.makedirs(out_dir, exist_ok=True)
    tok.save(os.path.join(out_dir, "tokenizer.json"))
    cfg = {"bos_token": None, "eos_token": "<|im_end|>", "pad_token": "<|pad|>",
           "add_bos_token": False, "chat_template": TEMPLATE,
           "tokenizer_class": "PreTrainedTokenizerFast"}
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    # sanity: the reference tokenizer round-trips text through these files
    t2 = Tokenizer.from_file(os.path.join(out_dir, "tokenizer.json"))
    ids = t2.encode("Hello world! <think>\nok</think>").ids
    assert t2.decode(ids, skip_special_tokens=False) == "Hello world! <think>\nok</think>"
    print(f"wrote {out_dir}: 256 ids, e.g. 'Hello world' -> {t2.encode('Hello world').ids}")


if __name__ == "__main__":
    main()
    make_tokenizer(os.path.join(os.path.dirname(OUT), "tok256"))
