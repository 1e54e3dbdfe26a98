#!/usr/bin/env python3
"""chat_diff.py — differential check of tallow's Jinja interpreter against jinja2 in transformers'
environment. Every UTF-8 file of a directory (a fuzz_jinja corpus, or other models' templates
kept outside the repo) is rendered as a chat template by both, over a fixed conversation with a
tool call, and the outcomes are compared: the same text, or both failing. Prints the differences
and a summary. Inputs jinja2 needs more than 3 s for, or that render over 1 MB, are skipped.

  /work/main/.venv/bin/python tools/chat_diff.py CORPUS_DIR build/tallow [--show N]
"""
import argparse
import json
import os
import signal
import subprocess
import tempfile

from transformers.utils.chat_template_utils import render_jinja_template

MESSAGES = [
    {"role": "system", "content": "S"},
    {"role": "user", "content": [{"type": "text", "text": "U"}]},
    {"role": "assistant", "content": "<think>\nr\n</think>\n\nA", "tool_calls": [
        {"type": "function", "function": {"name": "f", "arguments": {"a": [1, 2.5, None, True], "b": {"c": "d"}}}}]},
    {"role": "tool", "content": "ok"},
    {"role": "user", "content": "again"},
]
TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {}}}]


class Timeout(Exception):
    pass


def on_alarm(*_):
    raise Timeout()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("corpus")
    ap.add_argument("tallow")
    ap.add_argument("--show", type=int, default=20)
    a = ap.parse_args()
    signal.signal(signal.SIGALRM, on_alarm)
    tmp = tempfile.mkdtemp(prefix="chat_diff_")
    mpath, tpath, srcpath = (os.path.join(tmp, n) for n in ("m.json", "t.json", "tpl.jinja"))
    json.dump(MESSAGES, open(mpath, "w"))
    json.dump(TOOLS, open(tpath, "w"))
    stats = dict(same=0, both_fail=0, differ=0, only_tallow_fails=0, only_jinja2_fails=0, skipped=0)
    shown = 0
    for fn in sorted(os.listdir(a.corpus)):
        raw = open(os.path.join(a.corpus, fn), "rb").read()
        try:
            if b"\0" in raw:
                raise UnicodeDecodeError("utf-8", raw, 0, 1, "NUL")
            src = raw.decode("utf-8")
        except UnicodeDecodeError:
            stats["skipped"] += 1
            continue
        msgs = [{k: v for k, v in m.items() if v is not None} for m in json.loads(json.dumps(MESSAGES))]
        py_err, out = None, None
        try:
            signal.alarm(3)
            out = render_jinja_template([msgs], tools=TOOLS, chat_template=src, add_generation_prompt=True,
                                        bos_token="<s>", eos_token="</s>", enable_thinking=False)[0][0]
        except Timeout:
            stats["skipped"] += 1
            continue
        except Exception as e:  # jinja2 refused or the template raised
            py_err = f"{type(e).__name__}: {e}"
        finally:
            signal.alarm(0)
        if out is not None and len(out) > 1_000_000:
            stats["skipped"] += 1
            continue
        open(srcpath, "wb").write(raw)
        r = subprocess.run([a.tallow, "template", "--chat-template", srcpath, "--messages", mpath, "--tools", tpath,
                            "--bos-token", "<s>", "--eos-token", "</s>", "--thinking", "off"],
                           capture_output=True, timeout=30)
        ok = r.returncode == 0
        if py_err is None and ok:
            key = "same" if r.stdout.decode("utf-8", "replace") == out else "differ"
        elif py_err and not ok:
            key = "both_fail"
        else:
            key = "only_jinja2_fails" if py_err else "only_tallow_fails"
        stats[key] += 1
        if key not in ("same", "both_fail") and shown < a.show:
            shown += 1
            print(f"{key}: {fn}\n  template: {src[:200]!r}\n  jinja2:   {(py_err or out)[:200]!r}\n"
                  f"  tallow:   {(r.stdout.decode('utf-8', 'replace') if ok else r.stderr.decode())[:200]!r}")
    print(stats)


if __name__ == "__main__":
    main()
