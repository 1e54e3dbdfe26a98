#!/usr/bin/env python3
"""test_cli_chat.py — `tallow chat` driven through piped stdin on the tiny Llama with the 256-id
test tokenizer and its ChatML template (tests/data/sample/tok256).

Checks: multi-turn with history; each turn reuses the cached prefix (the printed reused/prefilled
counts add up, the first turn and the turn after /reset reuse nothing, later turns reuse the
previous prompt); the replies are the same with the prefix cache off (so the reuse is exact);
/thinking toggles the template's think block; /stats; a small context drops the oldest turns and
says so; chat without a template is a usage error (exit 2). Needs only the standard library."""
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.environ.get("TALLOW_BIN", os.path.join(ROOT, "build", "tallow"))
MODEL = os.path.join(ROOT, "tests/data/llama/llama-a/bf16")
TOK = os.path.join(ROOT, "tests/data/sample/tok256")

STATS = re.compile(r"^\[prompt (\d+) tokens \(reused (\d+), prefilled (\d+)\), [0-9.]+ tok/s · "
                   r"generation (\d+) tokens, [0-9.]+ tok/s · ttft [0-9.]+ s · peak [0-9.]+ GB\]$",
                   re.M)

passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print(f"FAIL: {what}", file=sys.stderr)


def chat(model_dir, script, *flags):
    p = subprocess.run([BIN, "chat", "--model", model_dir, "--threads", "1", "--temp", "0", *flags],
                       input=script, capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def turns(out):
    return [tuple(int(x) for x in m.groups()) for m in STATS.finditer(out)]


def main():
    if not os.access(BIN, os.X_OK):
        print(f"SKIPPED: no tallow binary at {BIN}")
        return 77
    if not os.path.exists(os.path.join(MODEL, "model.safetensors")):
        print("SKIPPED: tiny model missing")
        return 77
    tmp = tempfile.mkdtemp(prefix="tallow-chat-")
    try:
        m = os.path.join(tmp, "m")
        notpl = os.path.join(tmp, "notpl")
        os.makedirs(m)
        os.makedirs(notpl)
        for f in ("config.json", "model.safetensors"):
            os.symlink(os.path.join(MODEL, f), os.path.join(m, f))
            os.symlink(os.path.join(MODEL, f), os.path.join(notpl, f))
        for f in ("tokenizer.json", "tokenizer_config.json"):
            os.symlink(os.path.join(TOK, f), os.path.join(m, f))
        os.symlink(os.path.join(TOK, "tokenizer.json"), os.path.join(notpl, "tokenizer.json"))

        script = ("Hello there\nTell me a story\n/thinking off\nAnd then?\n/stats\n"
                  "/reset\nHello there\n/quit\nnever sent\n")
        rc, out, err = chat(m, script, "-m", "10", "--system-prompt", "Be brief.")
        check(rc == 0, f"chat exit {rc}: {err}")
        t = turns(out)
        check(len(t) == 4, f"4 turns answered (/quit stops reading), got {len(t)}:\n{out}")
        if len(t) == 4:
            for i, (prompt, reused, prefilled, gen) in enumerate(t):
                check(reused + prefilled == prompt, f"turn {i + 1}: reused + prefilled == prompt")
                check(gen == 10, f"turn {i + 1}: 10 tokens generated, got {gen}")
            check(t[0][1] == 0, "first turn reuses nothing")
            # turn 2 re-renders turn 1 with the reply: all of turn 1's prompt but its open
            # "<think>\n" suffix (history drops think blocks) is still in the slot
            check(t[0][0] - 4 <= t[1][1] < t[1][0], f"turn 2 reuses turn 1's prompt: {t[:2]}")
            check(t[1][2] < t[1][0] - 20, "turn 2 prefills only the new part")
            check(t[2][1] >= t[1][0] - 4, f"turn 3 reuses turn 2's prompt: {t[1:3]}")
            check(t[3][1] == 0, "after /reset nothing is reused")
            check(t[3][0] > t[0][0], "after /thinking off the prompt pre-closes the think block")
        check(out.count("Thinking:") == 2, "turns with thinking on show their reasoning apart")
        check("[thinking off]" in out, "/thinking off acknowledged")
        check("[reset: history cleared, system prompt kept]" in out, "/reset acknowledged")
        check(re.search(r"^\[stats\] turns 3, messages 7, slot \d+ of \d+ tokens", out, re.M)
              is not None, "/stats: 3 turns, system + 3 user + 3 assistant messages")
        check(re.search(r"^Prompt: \d+ tokens, [0-9.]+ tokens-per-sec$", out, re.M) is not None,
              "/stats repeats mlx-lm's lines for the last turn")

        # the same conversation without the prefix cache: the same replies, everything prefilled
        rc2, out2, err2 = chat(m, script, "-m", "10", "--system-prompt", "Be brief.",
                               "--no-prefix-cache")
        t2 = turns(out2)
        check(rc2 == 0 and len(t2) == 4, f"no-cache run: {err2}")
        check(all(r == 0 and p == q for q, r, p, _ in t2), "no-cache run prefills everything")

        def replies(o):
            o = STATS.sub("[turn]", o)
            o = re.sub(r"^\[stats\].*$", "", o, flags=re.M)
            return re.sub(r"^(Prompt|Generation|Peak memory|Time to first token):.*$", "", o,
                          flags=re.M)
        check(replies(out) == replies(out2), "reusing the prefix gives the same replies")

        # a small context: the oldest turns are dropped, and the chat says so
        many = "".join(f"Message number {i} about the sea\n" for i in range(6))
        rc, out, err = chat(m, many, "-m", "8", "--ctx-len", "96")
        check(rc == 0, f"small context run: {err}")
        check("[context full: dropped the oldest" in out, "dropping turns is announced")
        check(len(turns(out)) == 6, "every message answered in a small context")
        check(all(p + 8 <= 96 for p, _, _, _ in turns(out)), "every prompt fits the context")

        # Qwen3.5 (recurrent state, no truncation): reuse through snapshots, same replies
        q35 = os.path.join(ROOT, "tests/data/qwen35/b_bf16")
        if os.path.exists(os.path.join(q35, "model.safetensors")):
            q = os.path.join(tmp, "q35")
            os.makedirs(q)
            for f in ("config.json", "model.safetensors"):
                os.symlink(os.path.join(q35, f), os.path.join(q, f))
            for f in ("tokenizer.json", "tokenizer_config.json"):
                os.symlink(os.path.join(TOK, f), os.path.join(q, f))
            qs = "Hello there\nTell me a story\n/thinking off\nAnd then?\n/stats\n"
            rc, out, err = chat(q, qs, "-m", "10", "--system-prompt", "Be brief.")
            rc2, out2, err2 = chat(q, qs, "-m", "10", "--system-prompt", "Be brief.",
                                   "--no-prefix-cache")
            t, t2 = turns(out), turns(out2)
            check(rc == 0 and rc2 == 0 and len(t) == 3 and len(t2) == 3,
                  f"qwen3.5 chat runs: {err} {err2}")
            if len(t) == 3:
                check(all(r + p == q for q, r, p, _ in t), "qwen3.5: counts add up")
                check(t[0][1] == 0 and t[1][1] > 0 and t[2][1] > t[1][1],
                      f"qwen3.5: later turns restore a snapshot of the history: {t}")
            check(re.search(r"snapshots [1-9]", out) is not None, "qwen3.5: /stats counts snapshots")
            check(replies(out) == replies(out2), "qwen3.5: snapshots give the same replies")
        else:
            print("note: tests/data/qwen35/b_bf16 missing, Qwen3.5 chat not checked")

        # hostile lines: not UTF-8, and one longer than the context; the chat goes on
        rc, out, err = chat(m, "First turn\n" + "x " * 3000 + "\nHello\n", "-m", "4",
                            "--ctx-len", "256")
        t = turns(out)
        check(rc == 0 and "[context: this message alone needs" in out and len(t) == 2,
              f"long line refused, next one answered: rc {rc} {err}")
        check(len(t) == 2 and t[1][1] > 0 and t[1][0] > t[0][0],
              f"the refused line leaves the conversation as it was: {t}")

        # usage errors
        rc, out, err = chat(notpl, "hi\n")
        check(rc == 2 and "chat template" in err and err.count("\n") == 1,
              f"no template: exit {rc}, {err!r}")
        rc, out, err = chat(m, "hi\n", "--bogus")
        check(rc == 2 and "unknown flag" in err, f"unknown flag: exit {rc}")
        rc, out, err = chat(m, "hi\n", "--prompt", "x")
        check(rc == 2, "generate-only flags are refused by chat")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
