#!/usr/bin/env python3
"""tok_goldens.py — the tokenizer corpus and its Hugging Face `tokenizers` ids.

Builds a deterministic corpus (seeded) of >= 2000 strings covering prose, code, CJK, Arabic,
Hindi, Vietnamese and combining marks, emoji (ZWJ, skin tones, flags), whitespace runs, digit
runs, contractions in both cases, special-token text inside text, very long words, rare Unicode
and invalid UTF-8, and writes:

  tests/data/tok/corpus.jsonl        one JSON object a line: {"t": text} or {"b": hex bytes}
  tests/data/tok/ids-<name>.txt      line i: flag then ids of case i (add_special_tokens=False);
                                     flag "=" when HF decode(ids) == text, "~" otherwise
  tests/data/tok/ids-<name>-special.txt  ids with add_special_tokens=True for the first 200 cases
  tests/data/tok/ids-qwen35.txt      the first 600 cases with .cache/qwen35-tokenizer (when made)
  tests/data/tok/small-tokenizer.json  Qwen3's tokenizer cut to its first 2000 merges
  tests/data/tok/variants.json       patches (top-level keys replaced) of the small tokenizer that
                                     exercise what the fixtures do not: added-token flags
                                     (lstrip, rstrip, single_word, normalized), Split behaviours
                                     and invert, String patterns, plain ByteLevel with its regex
                                     and prefix space, TemplateProcessing
  tests/data/tok/ids-variants.txt    "variant case flag ids..." for every 25th case, each variant
                                     with add_special_tokens=True

Invalid UTF-8 cases ("b") are encoded by HF as bytes.decode("utf-8", errors="replace"), which
is what tallow does with invalid input. Run: .venv/bin/python tools/tok_goldens.py
(needs ../shared/fixtures/tokenizers; optional --qwen35 PATH adds the Qwen3.5 tokenizer)."""
import argparse
import json
import os
import random
import unicodedata

from tokenizers import Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "data", "tok")
SEED = 20261203
QWEN35_CASES = 600

PROSE = [
    "The quick brown fox jumps over the lazy dog.",
    "It's a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.",
    "I can't believe they'd've done that; we'll see what's next, won't we?",
    "Dr. Smith arrived at 10:45 a.m. on Jan. 3rd, 2024 -- twenty minutes late.",
    "\"Hello,\" she said. 'Goodbye,' he replied... (Nobody laughed.)",
    "E-mail me at someone@example.com or visit https://example.org/path?q=1&r=2#frag.",
    "The price rose from $1,234.56 to $7,890.12 (an increase of 539.4%).",
    "Large language models predict the next token given the previous ones.",
    "SHE SAID: \"I'M NOT SURE WE'LL MAKE IT, BUT WE'VE GOT TO TRY.\"",
    "Mr. O'Neil's dog—a terrier—barked at the mailman's van.",
    "In 1969, Apollo 11 landed on the Moon; 600 million people watched.",
    "Temperature: -40°C equals -40°F, oddly enough.",
    "  Leading spaces and trailing spaces  ",
    "tabs\tbetween\twords\tand\ttrailing\t",
    "Line one\nLine two\r\nLine three\rLine four\n\n\nLine eight",
    "Ünïcödé wörds lïke naïve café résumé coöperate façade",
    "They're, THEY'RE, they’re, you'd, YOU'D, I'll, I'LL, it's, IT'S, we've, WE'VE, I'm, I'M",
]

CODE = [
    "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n",
    "#include <stdio.h>\nint main(void) {\n\tprintf(\"%d\\n\", 42);\n\treturn 0;\n}\n",
    "const x = async (a, b) => { await fetch(`/api/${a}`); return a ?? b; };",
    "{\"name\": \"tallow\", \"version\": [0, 1, 0], \"ok\": true, \"nested\": {\"k\": null}}",
    "<html><body><div class=\"x\">&lt;p&gt; &amp; text</div></body></html>",
    "SELECT id, name FROM users WHERE age >= 18 AND name LIKE '%a%' ORDER BY id DESC;",
    "for (int i = 0; i < n; ++i) { sum += a[i] * b[i]; } // dot product",
    "    if x:\n        pass\n    else:\n\t\treturn None\n\n\n",
    "fn main() { let v: Vec<u8> = vec![1, 2, 3]; println!(\"{:?}\", v); }",
    "$ ls -la | grep '.py$' && echo \"done\" >> /tmp/log.txt 2>&1",
    "x = [i**2 for i in range(10) if i % 2 == 0]  # squares\n",
    "matrix[i][j] += alpha * (b[j] - c[i][j]) / (1e-9 + norm);",
    "    \n    \n\t\n  \t  \n",
    "#define MAX(a,b) ((a)>(b)?(a):(b))\n#ifdef __GNUC__\n#endif",
    "public static void main(String[] args) throws IOException {}",
]

CJK = [
    "我们今天去公园散步，天气非常好。",
    "人工智能正在改变世界。大型语言模型可以生成文本。",
    "東京は日本の首都です。ひらがなとカタカナと漢字。",
    "こんにちは、世界！今日はいい天気ですね。",
    "한국어 문장입니다. 안녕하세요, 반갑습니다!",
    "繁體中文與简体中文混合：龍龙、電电、學学。",
    "価格は１２３４円です。ＡＢＣ全角文字。",
    "「引用」と『二重引用』、【括弧】。",
]

SCRIPTS = [
    "مرحبا بالعالم، كيف حالك اليوم؟",
    "اللُّغَةُ العَرَبِيَّةُ جَمِيلَةٌ جِدًّا",
    "שלום עולם, מה שלומך?",
    "नमस्ते दुनिया, आप कैसे हैं? हिन्दी भाषा।",
    "क्षत्रिय ज्ञान श्री द्वार",
    "Tiếng Việt có nhiều dấu: ằ ẳ ẵ ặ ấ ầ ẩ ẫ ậ ế ề ể ễ ệ.",
    "Xin chào, tôi là người Việt Nam. Đường phố Hà Nội.",
    "ภาษาไทยไม่มีช่องว่างระหว่างคำ",
    "Русский текст: Привет, мир! Ёжик в тумане.",
    "Ελληνικά: Γειά σου Κόσμε, αβγδε.",
    "ქართული ენა, Հայերեն լեզու, ᎠᏂᏴᏫᏯ",
    "தமிழ் மொழி, తెలుగు భాష, ಕನ್ನಡ, മലയാളം",
    "བོད་ཡིག་ ᠮᠣᠩᠭᠣᠯ ꦗꦮ",
]

# Sequences NFC changes: Hangul jamo, kana with combining voicing marks, stacked and reordered
# marks, a CJK compatibility ideograph, singletons (Ohm, Angstrom).
NFC_EDGES = ["\u1100\u1161\u11a8", "\ud55c\u11a8", "\u304b\u3099\u304b", "e\u0301\u0301x",
             "A\u030a\u0323 A\u0323\u030a", "\uf900\u4e00", "\u2126 \u212b", "\uac00\u11a8\u11a8",
             "a\u0345\u0301", "\u0928\u093c", "\u00e9\u0301"]

EMOJI = [
    "👍", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇯🇵🇺🇸🇩🇪", "1️⃣", "❤️", "🧑🏿‍💻", "👩🏻‍❤️‍💋‍👨🏼",
    "😀😃😄😁", "🤷‍♀️", "🫠", "✋🏿", "🐈‍⬛", "#️⃣", "©️", "™", "🀄", "🃏",
]

SPECIAL_TEXT = [
    "<|begin_of_text|>", "<|end_of_text|>", "<|eot_id|>", "<|start_header_id|>user<|end_header_id|>",
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "</think>", "<tool_call>",
    "<|im_start", "im_end|>", "<|reserved_special_token_5|>", "< |im_start| >", "<<|im_end|>>",
    "<|python_tag|>", "<|fim_prefix|>", "<|vision_start|>", "<|finetune_right_pad_id|>",
]

WS = [" ", "  ", "\t", "\n", "\r\n", "\r", "\u00a0", "\u3000", "\u2009", "\u000b", "\u000c",
      "\u0085", "\u2028", "\u2029", "\u200b", "\ufeff", "\u1680", "\u202f", "\u205f", "\u180e"]

DIGITS_EXTRA = ["１２３", "٣٤٥", "²³", "½", "Ⅻ", "①②", "߀߁", "໐໑", "𝟘𝟙"]

CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'VE", "'M", "'LL",
                "'D", "’s", "'Re", "'lL", "'ſ", "'K", "''", "'"]


def rand_cp(rng, lo, hi):
    while True:
        c = rng.randint(lo, hi)
        if 0xD800 <= c <= 0xDFFF:
            continue
        return chr(c)


def rand_word(rng, alphabet, lo=1, hi=12):
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(lo, hi)))


def build_corpus():
    rng = random.Random(SEED)
    cases = []  # ("t", str) or ("b", bytes)
    add = lambda s: cases.append(("t", s))

    for s in NFC_EDGES + PROSE + CODE + CJK + SCRIPTS + EMOJI + SPECIAL_TEXT + WS + DIGITS_EXTRA:
        add(s)
    # Prose mixes with random casing and punctuation.
    for _ in range(300):
        k = rng.randint(1, 3)
        s = " ".join(rng.choice(PROSE) for _ in range(k))
        r = rng.random()
        if r < 0.2:
            s = s.upper()
        elif r < 0.3:
            s = s.lower()
        elif r < 0.4:
            s = "".join(c.upper() if rng.random() < 0.5 else c for c in s)
        a = rng.randint(0, len(s))
        b = rng.randint(a, len(s))
        add(s[a:b] if rng.random() < 0.3 else s)
    # Code slices.
    for _ in range(200):
        s = rng.choice(CODE)
        a = rng.randint(0, len(s))
        add(s[a:] + rng.choice(CODE)[: rng.randint(0, 40)])
    # Scripts and CJK mixes with Latin and spaces.
    for _ in range(250):
        parts = [rng.choice(CJK + SCRIPTS + PROSE) for _ in range(rng.randint(1, 3))]
        sep = rng.choice(["", " ", "\n", "  ", "\t"])
        add(sep.join(parts))
    # Combining marks on letters, NFD forms (normalizer differences), Vietnamese decomposed.
    marks = [chr(c) for c in range(0x300, 0x36F)] + ["\u0951", "\u093c", "\u0e31", "\u20dd", "\u1ab0"]
    for _ in range(150):
        w = []
        for _ in range(rng.randint(1, 8)):
            w.append(rng.choice("aeiouAEIOUnyçxq "))
            for _ in range(rng.randint(0, 3)):
                w.append(rng.choice(marks))
        s = "".join(w)
        if rng.random() < 0.3:
            s = unicodedata.normalize("NFD", rng.choice(SCRIPTS + PROSE))
        add(s)
    # Emoji sequences.
    for _ in range(150):
        s = "".join(rng.choice(EMOJI) + rng.choice(["", " ", "", "a", "\n"]) for _ in range(rng.randint(1, 6)))
        add(s)
    # Whitespace runs with words.
    for _ in range(250):
        out = []
        for _ in range(rng.randint(1, 8)):
            out.append("".join(rng.choice(WS) for _ in range(rng.randint(0, 6))))
            out.append(rng.choice(["word", "x", "Hello", "42", "!?", "é", "中", "", "'s", "-"]))
        add("".join(out))
    # Digit runs.
    for _ in range(200):
        out = []
        for _ in range(rng.randint(1, 5)):
            out.append("".join(rng.choice("0123456789") for _ in range(rng.randint(1, 40))))
            out.append(rng.choice([" ", ".", ",", "", "-", "e", "x", " + ", "/", rng.choice(DIGITS_EXTRA)]))
        add("".join(out))
    # Contractions in both cases.
    for _ in range(150):
        out = []
        for _ in range(rng.randint(1, 6)):
            out.append(rand_word(rng, "abcdeHIJKxyz", 0, 6) + rng.choice(CONTRACTIONS))
            out.append(rng.choice([" ", "", "  ", "\n", "."]))
        add("".join(out))
    # Special-token text inside text.
    for _ in range(200):
        out = []
        for _ in range(rng.randint(1, 6)):
            out.append(rng.choice(SPECIAL_TEXT))
            out.append(rng.choice(["", " ", "hello", " world ", "\n", "user\n", "中文", "  ", "x<", ">"]))
        add("".join(out))
    # Very long words.
    for i in range(40):
        n = rng.randint(200, 3000)
        kind = i % 5
        if kind == 0:
            s = "a" * n
        elif kind == 1:
            s = rand_word(rng, "abcdefghijklmnopqrstuvwxyz", n, n)
        elif kind == 2:
            s = "ab" * (n // 2)
        elif kind == 3:
            s = rand_word(rng, "中文字词语句", n // 4, n // 4)
        else:
            s = "".join(rng.choice("!@#$%^&*()") for _ in range(n // 2))
        add(s)
    add(" " * 1000)
    add("\n" * 300 + "x")
    add("9" * 1000)
    # Random code points from all planes (assigned or not): regex classes at the edges.
    for _ in range(200):
        s = "".join(rand_cp(rng, *rng.choice([(0x20, 0x7E), (0xA0, 0x2FFF), (0x3000, 0xFFFD),
                                              (0x10000, 0x1FFFF), (0x20000, 0x2FFFF), (0xE0000, 0xE01EF)]))
                    for _ in range(rng.randint(1, 12)))
        add(s)
    # Invalid UTF-8.
    bad = [b"\xff", b"\xc3", b"\xe4\xb8", b"\xf0\x9f\x98", b"\xed\xa0\x80", b"\xc0\xaf", b"\x80\x80",
           b"\xf8\x88\x80\x80\x80", b"\xf4\x90\x80\x80", b"\xe0\x80\xaf", b"\xfe\xfe"]
    for _ in range(100):
        out = b""
        for _ in range(rng.randint(1, 5)):
            out += rng.choice(bad) + rng.choice([b"", b"abc", b" ", "中".encode(), b"\n", b"'s"])
        cases.append(("b", out))
    return cases


def write_ids(path, tok, texts, special):
    with open(path, "w", encoding="utf-8") as f:
        for t in texts:
            ids = tok.encode(t, add_special_tokens=special).ids
            flag = "=" if tok.decode(ids, skip_special_tokens=False) == t else "~"
            f.write(flag + (" " if ids else "") + " ".join(map(str, ids)) + "\n")


SMALL_MERGES = 2000
VARIANT_STEP = 25
QWEN_RE = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
           "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")


def variants():
    bl = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}

    def split(behavior, invert=False, pattern=None):
        pat = pattern or {"Regex": QWEN_RE}
        return {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": pat, "behavior": behavior, "invert": invert}, bl]}

    def added(id_, content, special=True, **flags):
        d = {"id": id_, "content": content, "single_word": False, "lstrip": False, "rstrip": False,
             "normalized": not special, "special": special}
        d.update(flags)
        return d
    first = 256 + SMALL_MERGES  # ids as HF assigns them (see write_variants)
    flags = [added(first, "<|endoftext|>"), added(first + 1, "<|im_start|>", lstrip=True),
             added(first + 2, "<|im_end|>", rstrip=True),
             added(first + 3, "<think>", special=False, single_word=True, normalized=False),
             added(first + 4, "</think>", special=False, normalized=True),
             added(first + 5, "hello", special=False, single_word=True, normalized=True),
             added(first + 6, "\u00c5", special=False, normalized=True),     # matched after NFC
             added(first + 7, "\u2126", special=False, normalized=False),    # matched before NFC
             added(first + 8, " world", special=True, lstrip=True, rstrip=True)]
    tpl = {"type": "TemplateProcessing",
           "single": [{"SpecialToken": {"id": "<|im_start|>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                      {"SpecialToken": {"id": "<|im_end|>", "type_id": 0}}],
           "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
           "special_tokens": {"<|im_start|>": {"id": "<|im_start|>", "ids": [first + 1], "tokens": ["<|im_start|>"]},
                              "<|im_end|>": {"id": "<|im_end|>", "ids": [first + 2], "tokens": ["<|im_end|>"]}}}
    return [
        {"name": "added_flags", "patch": {"added_tokens": flags}},
        {"name": "merged_previous", "patch": {"pre_tokenizer": split("MergedWithPrevious")}},
        {"name": "merged_next", "patch": {"pre_tokenizer": split("MergedWithNext")}},
        {"name": "contiguous", "patch": {"pre_tokenizer": split("Contiguous")}},
        {"name": "removed_invert", "patch": {"pre_tokenizer": split("Removed", invert=True)}},
        {"name": "isolated_invert", "patch": {"pre_tokenizer": split("Isolated", invert=True)}},
        {"name": "string_pattern", "patch": {"pre_tokenizer": split("MergedWithNext", pattern={"String": " "})}},
        {"name": "bytelevel_regex", "patch": {"normalizer": None, "pre_tokenizer": {
            "type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True}}},
        {"name": "template", "patch": {"post_processor": {"type": "Sequence", "processors": [bl, tpl]},
                                       "normalizer": {"type": "Sequence", "normalizers": [{"type": "NFC"}]}}},
        {"name": "nfkc", "patch": {"normalizer": {"type": "NFKC"}}},
    ]


def write_variants(fixtures, texts):
    t = json.load(open(os.path.join(fixtures, "qwen3", "tokenizer.json"), encoding="utf-8"))
    t["model"]["merges"] = t["model"]["merges"][:SMALL_MERGES]
    t["model"]["vocab"] = {k: v for k, v in t["model"]["vocab"].items() if v < 256 + SMALL_MERGES}
    # HF gives added tokens that are not in the model vocabulary the ids from the vocabulary
    # size up, in file order, whatever ids the file says: keep the file consistent with that.
    t["added_tokens"] = t["added_tokens"][:3] + [a for a in t["added_tokens"] if "think" in a["content"]]
    for k, a in enumerate(t["added_tokens"]):
        a["id"] = 256 + SMALL_MERGES + k
    with open(os.path.join(OUT, "small-tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(t, f, ensure_ascii=False, separators=(",", ":"))
    vs = variants()
    with open(os.path.join(OUT, "ids-variants.txt"), "w", encoding="utf-8") as f:
        for vi, v in enumerate(vs):
            tj = dict(t)
            tj.update(v["patch"])
            # Ids as HF assigns them: a content already in the vocabulary keeps its id, the
            # others count up from the vocabulary size in file order.
            nxt = 256 + SMALL_MERGES
            for a in tj["added_tokens"]:
                if a["content"] in t["model"]["vocab"]:
                    a["id"] = t["model"]["vocab"][a["content"]]
                else:
                    a["id"], nxt = nxt, nxt + 1
            tok = Tokenizer.from_str(json.dumps(tj))
            for ci in range(0, len(texts), VARIANT_STEP):
                ids = tok.encode(texts[ci], add_special_tokens=True).ids
                flag = "=" if tok.decode(ids, skip_special_tokens=False) == texts[ci] else "~"
                f.write(f"{vi} {ci} {flag}" + "".join(f" {i}" for i in ids) + "\n")
    with open(os.path.join(OUT, "variants.json"), "w", encoding="utf-8") as f:
        json.dump(vs, f, ensure_ascii=True, indent=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixtures", default=os.path.join(ROOT, "..", "shared", "fixtures", "tokenizers"))
    ap.add_argument("--qwen35", default=os.path.join(ROOT, ".cache", "qwen35-tokenizer", "tokenizer.json"))
    args = ap.parse_args()
    cases = build_corpus()
    assert len(cases) >= 2000, len(cases)
    os.makedirs(OUT, exist_ok=True)
    texts = []
    with open(os.path.join(OUT, "corpus.jsonl"), "w", encoding="utf-8") as f:
        for kind, v in cases:
            if kind == "t":
                f.write(json.dumps({"t": v}, ensure_ascii=True) + "\n")
                texts.append(v)
            else:
                f.write(json.dumps({"b": v.hex()}) + "\n")
                texts.append(v.decode("utf-8", errors="replace"))
    toks = {"llama32": os.path.join(args.fixtures, "llama-3.2", "tokenizer.json"),
            "qwen3": os.path.join(args.fixtures, "qwen3", "tokenizer.json")}
    for name, path in toks.items():
        tok = Tokenizer.from_file(path)
        write_ids(os.path.join(OUT, f"ids-{name}.txt"), tok, texts, False)
        write_ids(os.path.join(OUT, f"ids-{name}-special.txt"), tok, texts[:200], True)
    write_variants(args.fixtures, texts)
    # Qwen3.5 (tokenizer made by tools/tok_fetch_qwen35.py, not committed): the first 600 cases.
    if os.path.exists(args.qwen35):
        tok = Tokenizer.from_file(args.qwen35)
        write_ids(os.path.join(OUT, "ids-qwen35.txt"), tok, texts[:QWEN35_CASES], False)
    print(f"{len(cases)} cases written to {OUT}")


if __name__ == "__main__":
    main()
