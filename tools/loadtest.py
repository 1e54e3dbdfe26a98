#!/usr/bin/env python3
"""loadtest.py — concurrent streaming clients against `tallow serve`; aggregate tokens/s.

  python3 tools/loadtest.py --model @mock --streams 1,4,16,64 --seconds 60
  python3 tools/loadtest.py --url http://127.0.0.1:8080 --streams 64

Standard library only (plain HTTP + SSE parsing), so it runs wherever the server runs.

Starts the server itself (--model, on a free port; killed at the end) unless --url is given.
Each client loops: one streamed chat completion (include_usage) of --max-tokens tokens with its
own seed, then the next. Reports per concurrency level: requests, errors, generated tokens,
aggregate generated tokens/s, time to first token p50/p95, per-client tokens/s, the server's
largest batch, and its RSS at the start and end of the level (memory must stay flat).
Output: a markdown table on stdout (--json FILE for the raw numbers)."""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import http.client
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def metrics(base):
    out = {}
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
    return out


def rss_kb(pid):
    if not pid:
        return 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


def stream_once(host, port, body, api_key):
    """One streamed chat completion over plain HTTP (stdlib only, so it runs anywhere).
    Returns (time to the first content or reasoning delta, completion tokens)."""
    c = http.client.HTTPConnection(host, port, timeout=600)
    h = {"Content-Type": "application/json"}
    if api_key:
        h["Authorization"] = "Bearer " + api_key
    t0 = time.time()
    c.request("POST", "/v1/chat/completions", body=json.dumps(body), headers=h)
    r = c.getresponse()
    if r.status != 200:
        raise RuntimeError(f"HTTP {r.status}: {r.read()[:200]!r}")
    first, toks = None, 0
    while True:
        line = r.readline()
        if not line:
            raise RuntimeError("stream ended without [DONE]")
        if not line.startswith(b"data: "):
            continue
        data = line[6:].strip()
        if data == b"[DONE]":
            break
        ev = json.loads(data)
        if "error" in ev:
            raise RuntimeError(ev["error"].get("message"))
        if ev.get("usage"):
            toks = ev["usage"]["completion_tokens"]
        for ch in ev.get("choices", []):
            d = ch.get("delta", {})
            if first is None and (d.get("content") or d.get("reasoning_content")):
                first = time.time() - t0
    c.close()
    return first, toks


def run_level(base, n, seconds, max_tokens, pid, api_key):
    u = urllib.parse.urlparse(base)
    stop_at = time.time() + seconds
    lock = threading.Lock()
    st = {"req": 0, "err": 0, "tok": 0, "ttft": [], "errs": []}

    def worker(i):
        k = 0
        while time.time() < stop_at:
            body = {"model": "x", "messages": [{"role": "user", "content":
                                                f"client {i} request {k}: tell me a long story"}],
                    "max_tokens": max_tokens, "temperature": 0.8, "seed": i * 100003 + k,
                    "stream": True, "stream_options": {"include_usage": True}}
            try:
                first, toks = stream_once(u.hostname, u.port, body, api_key)
                with lock:
                    st["req"] += 1
                    st["tok"] += toks
                    if first is not None:
                        st["ttft"].append(first)
            except Exception as e:  # noqa: BLE001 - every failure is counted
                with lock:
                    st["err"] += 1
                    st["errs"].append(repr(e)[:200])
            k += 1

    m0 = metrics(base)
    r0 = rss_kb(pid)
    t0 = time.time()
    th = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in th:
        t.start()
    for t in th:
        t.join()
    wall = time.time() - t0
    m1 = metrics(base)
    r1 = rss_kb(pid)
    gen = m1["tallow_generation_tokens_total"] - m0["tallow_generation_tokens_total"]
    return {
        "streams": n, "seconds": round(wall, 1), "requests": st["req"], "errors": st["err"],
        "first_errors": st["errs"][:3], "tokens": int(gen),
        "tok_s": round(gen / wall, 1), "per_stream_tok_s": round(gen / wall / n, 2),
        "ttft_p50_ms": round(pct(st["ttft"], 50) * 1000, 1),
        "ttft_p95_ms": round(pct(st["ttft"], 95) * 1000, 1),
        "max_batch": m1.get("tallow_max_batch_sequences"),
        "rows_per_pass": round((m1["tallow_batch_rows_total"] - m0["tallow_batch_rows_total"]) /
                               max(1, m1["tallow_forward_passes_total"] -
                                   m0["tallow_forward_passes_total"]), 2),
        "rss_start_mb": round(r0 / 1024, 1), "rss_end_mb": round(r1 / 1024, 1),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--model", default="@mock", help="model for the server this starts")
    ap.add_argument("--url", help="an already running server instead")
    ap.add_argument("--bin", default=os.environ.get("TALLOW_BIN", os.path.join(ROOT, "build",
                                                                               "tallow")))
    ap.add_argument("--streams", default="1,4,16,64")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--server-args", default="", help="extra flags for tallow serve")
    ap.add_argument("--api-key")
    ap.add_argument("--json", help="write the raw results here")
    a = ap.parse_args()
    levels = [int(x) for x in a.streams.split(",")]
    proc, pid = None, None
    if a.url:
        base = a.url.rstrip("/")
    else:
        port = free_port()
        cmd = [a.bin, "serve", "--model", a.model, "--port", str(port), "--max-seqs",
               str(max(levels)), "--max-queue", str(4 * max(levels))] + a.server_args.split()
        proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
        pid = proc.pid
        base = f"http://127.0.0.1:{port}"
        t0 = time.time()
        while True:
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() - t0 > 300:
                sys.exit("loadtest: the server did not start")
            time.sleep(0.1)
    try:
        res = []
        for n in levels:
            r = run_level(base, n, a.seconds, a.max_tokens, pid, a.api_key)
            res.append(r)
            print(f"# {n} streams: {r['tok_s']} tok/s, {r['errors']} errors", file=sys.stderr)
        print(f"model: {a.model if not a.url else a.url}, {a.seconds:.0f} s per level, "
              f"max_tokens {a.max_tokens}\n")
        print("| streams | requests | errors | generated tok/s | per stream tok/s | TTFT p50 ms "
              "| TTFT p95 ms | rows/pass | max batch | RSS start→end MB |")
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
        for r in res:
            print(f"| {r['streams']} | {r['requests']} | {r['errors']} | {r['tok_s']} | "
                  f"{r['per_stream_tok_s']} | {r['ttft_p50_ms']} | {r['ttft_p95_ms']} | "
                  f"{r['rows_per_pass']} | {r['max_batch']:.0f} | "
                  f"{r['rss_start_mb']}→{r['rss_end_mb']} |")
        if a.json:
            with open(a.json, "w") as f:
                json.dump(res, f, indent=1)
        return 1 if any(r["errors"] for r in res) else 0
    finally:
        if proc and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    sys.exit(main())
