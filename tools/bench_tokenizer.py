#!/usr/bin/env python3
"""bench_tokenizer.py — Hugging Face `tokenizers` on the same text as bench/bench_tokenizer.c:
load time, encode and decode MB/s, single thread (RAYON_NUM_THREADS=1,
TOKENIZERS_PARALLELISM=false), best of 3 after a warm-up, in thread CPU time (time.thread_time)
like the C side, so a busy shared machine still gives comparable figures.

usage: .venv/bin/python tools/bench_tokenizer.py TOKENIZER_JSON [TEXT_FILE] [--mb N]
       [--lines] [--tallow build/bench_tokenizer]
--lines: each line is its own encode call (as prompts arrive); --tallow also runs the C benchmark
for a side-by-side line."""
import argparse
import json
import os
import subprocess
import time

os.environ["RAYON_NUM_THREADS"] = "1"
os.environ["TOKENIZERS_PARALLELISM"] = "false"
from tokenizers import Tokenizer  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def corpus_text(want):
    parts = []
    with open(os.path.join(ROOT, "tests", "data", "tok", "corpus.jsonl"), encoding="utf-8") as f:
        for line in f:
            o = json.loads(line)
            if "t" in o:
                parts.append(o["t"] + "\n")
    one = "".join(parts).encode("utf-8")
    out = b""
    while len(out) < want:
        out += one
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tokenizer")
    ap.add_argument("text", nargs="?")
    ap.add_argument("--mb", type=float, default=8)
    ap.add_argument("--tallow")
    ap.add_argument("--lines", action="store_true")
    a = ap.parse_args()
    t0 = time.thread_time()
    tok = Tokenizer.from_file(a.tokenizer)
    load = time.thread_time() - t0
    raw = open(a.text, "rb").read() if a.text else corpus_text(int(a.mb * 1e6))
    text = raw.decode("utf-8", errors="replace")
    enc = dec = 1e30
    for r in range(4):
        t0 = time.thread_time()
        if a.lines:
            ids = []
            for line in text.splitlines(keepends=True):
                ids += tok.encode(line, add_special_tokens=False).ids
        else:
            ids = tok.encode(text, add_special_tokens=False).ids
        e = time.thread_time() - t0
        t0 = time.thread_time()
        back = tok.decode(ids, skip_special_tokens=False)
        d = time.thread_time() - t0
        if r:
            enc, dec = min(enc, e), min(dec, d)
    mb = len(raw) / 1e6
    print(f"hf      {'lines' if a.lines else 'whole'} load {load:.3f} s (cpu)  text {mb:.2f} MB  {len(ids)} ids  encode {mb / enc:.1f} MB/s  "
          f"decode {len(back.encode()) / 1e6 / dec:.1f} MB/s")
    if a.tallow:
        cmd = [a.tallow, a.tokenizer] + ([a.text] if a.text else []) + ["--mb", str(a.mb)] + \
            (["--lines"] if a.lines else [])
        subprocess.run(cmd, check=True, cwd=ROOT)


if __name__ == "__main__":
    main()
