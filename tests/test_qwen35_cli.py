"""test_qwen35_cli.py — `tallow logits` and `tallow generate --format json` on every Qwen3.5
layout (HF text f32, HF VLM-wrapper bf16, MLX 4-bit, MLX 8-bit), against the transformers
goldens of tools/make_tiny_qwen35.py: last-token logits within the layout's tolerance and greedy
ids identical up to the first reference near-tie. Standard library only."""
import json
import os
import struct
import subprocess
import sys
import tempfile

DATA = os.path.join("tests", "data", "qwen35")
MODELS = {"a_f32": 1e-4, "b_bf16": 1e-3, "a_mlx4": 1e-3, "b_mlx8": 1e-3}
EOS = 255  # eos_token_id of the tiny configs
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)


def golden(model):
    out, cur = {}, None
    with open(os.path.join(DATA, model + ".txt")) as f:
        for line in f:
            if line.startswith("#"):
                continue
            t = line.split()
            if len(t) == 2 and not t[0][0].isdigit() and t[0][0] != "-":
                cur = t[0]
                out[cur] = []
            else:
                out[cur] += [float(x) for x in t]
    return out


def main():
    tallow = os.environ.get("TALLOW_BIN") or os.path.join("build", "tallow")
    if not os.path.exists(tallow):
        print("SKIPPED: no tallow binary (set TALLOW_BIN)")
        return 77
    with tempfile.TemporaryDirectory() as tmp:
        for model, tol in MODELS.items():
            g = golden(model)
            d = os.path.join(DATA, model)
            for exact in (True, False):
                flags = ["--exact"] if exact else []
                tag = "%s%s" % (model, " --exact" if exact else "")
                ids = ",".join(str(int(x)) for x in g["prompt2"])
                out = os.path.join(tmp, "logits.bin")
                r = subprocess.run([tallow, "logits", "--model", d, "--prompt-ids", ids, "--out", out,
                                    "--threads", "2"] + flags, capture_output=True, text=True)
                check(r.returncode == 0, "%s: tallow logits failed: %s" % (tag, r.stderr[-500:]))
                if r.returncode == 0:
                    with open(out, "rb") as f:
                        raw = f.read()
                    ours = struct.unpack("<%df" % (len(raw) // 4), raw)
                    ref = g["logits2"]
                    check(len(ours) == len(ref), "%s: %d logits, want %d" % (tag, len(ours), len(ref)))
                    mx = max(abs(x) for x in ref)
                    err = max(abs(a - b) for a, b in zip(ours, ref)) / mx
                    check(err <= tol, "%s: logits max|err| %.3g x max|logit| > %g" % (tag, err, tol))
                ids = ",".join(str(int(x)) for x in g["prompt1"])
                r = subprocess.run([tallow, "generate", "--model", d, "--prompt-ids", ids, "--format",
                                    "json", "--max-tokens", "32", "--temp", "0", "--threads", "2"]
                                   + (["--device", "cpu"] if not exact else []),
                                   capture_output=True, text=True,
                                   env=dict(os.environ, TALLOW_EXACT="1" if exact else "0"))
                check(r.returncode == 0, "%s: tallow generate failed: %s" % (tag, r.stderr[-500:]))
                if r.returncode != 0:
                    continue
                try:
                    j = json.loads(r.stdout.strip().splitlines()[-1])
                except (ValueError, IndexError):
                    check(False, "%s: generate output is not JSON: %r" % (tag, r.stdout[-300:]))
                    continue
                got = j.get("generated_ids", [])
                want = [int(x) for x in g["greedy"]]
                upto = len(want)
                for i, (m, a) in enumerate(zip(g["margin"], g["greedy_maxabs"])):
                    if m < 1e-3 * a:
                        upto = i + 1
                        print("%s: reference near-tie at step %d: comparing %d tokens" % (tag, i, upto))
                        break
                if EOS in want[:upto]:  # generation stops at the end-of-sequence id, not shown
                    upto = want.index(EOS)
                    check(j.get("finish_reason") == "stop", "%s: finish_reason %s at eos" % (tag, j.get("finish_reason")))
                check(got[:upto] == want[:upto], "%s: greedy ids %s, want %s" % (tag, got[:upto], want[:upto]))
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
