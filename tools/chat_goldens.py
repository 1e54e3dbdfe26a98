#!/usr/bin/env python3
"""chat_goldens.py — goldens for tallow's Jinja interpreter and chat templates.

Renders with jinja2 inside transformers' own environment (transformers.utils.chat_template_utils:
_compile_jinja_template and render_jinja_template, i.e. ImmutableSandboxedEnvironment with
trim_blocks, lstrip_blocks, loopcontrols, tojson(ensure_ascii=False), raise_exception,
strftime_now, namespace) and writes, under tests/data/chat/:

  snippets.json       [{"src", "vars", "out"} | {"src", "vars", "error"}]  Jinja feature checks
  conversations.json  the conversation set (messages, tools, kwargs, flags)
  goldens.json        {template: {conversation: "rendered" | {"raises": msg}}}
                      for each fixture template, the Qwen3.5-2B form of the 4B template
                      ("Qwen3.5-2B", made by qwen35_2b_form below, exactly as the C test does),
                      and minja's chat contexts ("minja:<name>" conversations).

Run: /work/main/.venv/bin/python tools/chat_goldens.py [--shared ../shared/fixtures]
date_string is pinned in the conversations that need it; strftime_now is checked separately
(its output depends on the clock)."""
import argparse
import copy
import json
import os
import sys

from transformers.utils.chat_template_utils import _compile_jinja_template, render_jinja_template

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(ROOT, "tests", "data", "chat")

TEMPLATES = [
    "Qwen3.5-4B.jinja",
    "Qwen-Qwen3-0.6B.jinja",
    "Qwen-Qwen2.5-7B-Instruct.jinja",
    "meta-llama-Llama-3.2-3B-Instruct.jinja",
    "meta-llama-Llama-3.1-8B-Instruct.jinja",
]

# The 4B template's final block and the 2B's (models.md §6.1).
QWEN35_4B_TAIL = """    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\\n\\n</think>\\n\\n' }}
    {%- else %}
        {{- '<think>\\n' }}
    {%- endif %}"""
QWEN35_2B_TAIL = """    {%- if enable_thinking is defined and enable_thinking is true %}
        {{- '<think>\\n' }}
    {%- else %}
        {{- '<think>\\n\\n</think>\\n\\n' }}
    {%- endif %}"""


def qwen35_2b_form(src4b):
    assert src4b.count(QWEN35_4B_TAIL) == 1, "4B template tail not found"
    return src4b.replace(QWEN35_4B_TAIL, QWEN35_2B_TAIL)


# ---- conversations ---------------------------------------------------------------------------
WEATHER_TOOL = {"type": "function", "function": {
    "name": "get_weather", "description": "Get the current weather in a city.",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "City name, e.g. \"Zürich\""},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
        "required": ["city"]}}}
SEARCH_TOOL = {"type": "function", "function": {
    "name": "search", "description": "Search the web.",
    "parameters": {"type": "object", "properties": {
        "query": {"type": "string"}, "filters": {"type": "object", "properties": {
            "site": {"type": "string"}, "max_results": {"type": "integer"}}}},
        "required": ["query"]}}}
TOOLS = [WEATHER_TOOL, SEARCH_TOOL]


def tc(name, args, cid="call_1"):
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}


def conversations():
    C = []

    def add(name, messages, **kw):
        d = {"name": name, "messages": messages, "add_generation_prompt": kw.pop("agp", True)}
        d.update(kw)
        C.append(d)

    U = {"role": "user", "content": "What is the capital of France?"}
    A = {"role": "assistant", "content": "The capital of France is Paris."}
    S = {"role": "system", "content": "You are a concise assistant."}
    add("user_only", [U])
    add("user_only_no_gen", [U], agp=False)
    add("system_user", [S, U])
    add("system_user_thinking_on", [S, U], kwargs={"enable_thinking": True})
    add("system_user_thinking_off", [S, U], kwargs={"enable_thinking": False})
    add("multi_turn", [S, U, A, {"role": "user", "content": "And of Germany?"}])
    add("multi_turn_no_gen", [S, U, A], agp=False)
    add("multi_turn_thinking_off", [U, A, {"role": "user", "content": "And Italy?"}],
        kwargs={"enable_thinking": False})
    add("system_whitespace", [{"role": "system", "content": "  \n Be brief. \n\n"}, U])
    add("empty_system", [{"role": "system", "content": ""}, U])
    add("unicode", [{"role": "user", "content": "Grüße aus Zürich! 日本語で答えて 🙂 — “quotes” ‘single’"}])
    add("json_looking_text", [{"role": "user", "content": "Parse {\"a\": [1, 2, {\"b\": null}], \"c\": \"\\u00e9\"} please"}])
    add("jinja_looking_text", [{"role": "user", "content": "Literal {{ not_a_var }} and {% if x %} stay text"}])
    add("newlines_and_tabs", [{"role": "user", "content": "line1\n\tline2\r\nline3\n\n"}])
    add("list_content_parts", [{"role": "user", "content": [
        {"type": "text", "text": "Describe this"}, {"type": "text", "text": " in two words."}]}])
    add("list_content_system", [{"role": "system", "content": [{"type": "text", "text": "Sys from parts."}]},
                                {"role": "user", "content": [{"type": "text", "text": "Hi"}]}])
    add("reasoning_content_history", [U, {"role": "assistant", "content": "Paris.",
                                          "reasoning_content": "The user asks about France. Its capital is Paris."},
                                      {"role": "user", "content": "Thanks! And Spain?"}])
    add("reasoning_content_last", [U, {"role": "assistant", "content": "Paris.",
                                       "reasoning_content": "\nCapital of France: Paris.\n"}], agp=False)
    add("think_block_in_history", [U, {"role": "assistant", "content": "<think>\nEasy: Paris.\n</think>\n\nParis."},
                                   {"role": "user", "content": "Sure?"}])
    add("think_block_last_turn", [U, {"role": "assistant", "content": "<think>\nhmm\n</think>\n\nParis."}], agp=False)
    add("reasoning_field_alias", [U, {"role": "assistant", "content": "Paris.", "reasoning": "aliased reasoning"}],
        agp=False)
    add("tools_no_calls", [U], tools=TOOLS)
    add("tools_with_system", [S, U], tools=TOOLS)
    add("tools_thinking_off", [U], tools=TOOLS, kwargs={"enable_thinking": False})
    weather_q = {"role": "user", "content": "What's the weather in Zürich and in Paris?"}
    add("tool_call_dict_args", [weather_q,
                                {"role": "assistant", "content": "", "tool_calls": [tc("get_weather", {"city": "Zürich", "unit": "celsius"})]},
                                {"role": "tool", "content": "{\"temp\": 21, \"sky\": \"clear\"}"}], tools=TOOLS)
    add("tool_call_nested_args", [{"role": "user", "content": "Search for llama.cpp on github"},
                                  {"role": "assistant", "content": "Let me search.",
                                   "tool_calls": [tc("search", {"query": "llama.cpp", "filters": {"site": "github.com", "max_results": 3},
                                                                "tags": ["c", "llm"], "exact": True, "score": 0.5, "none": None})]},
                                  {"role": "tool", "content": "[{\"title\": \"ggml-org/llama.cpp\"}]"},
                                  {"role": "assistant", "content": "Found it: ggml-org/llama.cpp."}], tools=TOOLS)
    add("tool_calls_parallel_and_run", [weather_q,
                                        {"role": "assistant", "content": "", "tool_calls": [
                                            tc("get_weather", {"city": "Zürich"}, "call_1"),
                                            tc("get_weather", {"city": "Paris"}, "call_2")]},
                                        {"role": "tool", "content": "21 C"},
                                        {"role": "tool", "content": "18 C"}], tools=TOOLS)
    add("tool_call_string_args", [weather_q,
                                  {"role": "assistant", "content": None,
                                   "tool_calls": [tc("get_weather", "{\"city\": \"Paris\"}")]},
                                  {"role": "tool", "content": "18 C"}], tools=TOOLS)
    add("tool_call_with_reasoning", [weather_q,
                                     {"role": "assistant", "content": "I will check.", "reasoning_content": "Need the weather tool.",
                                      "tool_calls": [tc("get_weather", {"city": "Paris"})]},
                                     {"role": "tool", "content": "18 C"},
                                     {"role": "assistant", "content": "It is 18 C in Paris."},
                                     {"role": "user", "content": "Thanks"}], tools=TOOLS)
    add("tool_multi_step_agentic", [weather_q,
                                    {"role": "assistant", "content": "<think>\nfirst Zürich\n</think>\n\n",
                                     "tool_calls": [tc("get_weather", {"city": "Zürich"})]},
                                    {"role": "tool", "content": "21 C"},
                                    {"role": "assistant", "content": "",
                                     "tool_calls": [tc("get_weather", {"city": "Paris"})]},
                                    {"role": "tool", "content": "18 C"}], tools=TOOLS, kwargs={"enable_thinking": True})
    add("tool_response_wrapped_user", [U, A, {"role": "user", "content": "<tool_response>\nok\n</tool_response>"}])
    add("tools_llama_system_slot", [S, U], tools=TOOLS, kwargs={"tools_in_user_message": False})
    add("tool_role_dict_content", [weather_q,
                                   {"role": "assistant", "content": "", "tool_calls": [tc("get_weather", {"city": "Paris"})]},
                                   {"role": "tool", "content": [{"type": "text", "text": "18 C"}]}], tools=TOOLS)
    add("ipython_role", [U, {"role": "ipython", "content": "result text"}], agp=False)
    add("date_string_pinned", [U], kwargs={"date_string": "05 Mar 2026"})
    add("bos_eos_tokens", [U, A], agp=False, bos_token="<BOS>", eos_token="<EOS>")
    add("extra_kwargs", [U], kwargs={"custom_flag": True, "add_vision_id": True})
    add("image_part", [{"role": "user", "content": [{"type": "image", "image": "x.png"}, {"type": "text", "text": "What is it?"}]}],
        kwargs={"add_vision_id": True})
    add("continue_final", [U, {"role": "assistant", "content": "The capital is"}], agp=False, continue_final_message=True)
    add("raise_no_messages", [])
    add("raise_system_not_first", [U, {"role": "system", "content": "late system"}])
    add("raise_unknown_role", [{"role": "narrator", "content": "Once upon a time"}, U])
    add("raise_two_tool_calls_llama", [weather_q,
                                       {"role": "assistant", "content": "", "tool_calls": [
                                           tc("get_weather", {"city": "A"}), tc("get_weather", {"city": "B"})]}], tools=TOOLS)
    add("null_content_assistant", [U, {"role": "assistant", "content": None}, {"role": "user", "content": "?"}])
    add("many_turns", [S] + [m for i in range(6) for m in (
        {"role": "user", "content": f"Question {i}?"}, {"role": "assistant", "content": f"Answer {i}."})] +
        [{"role": "user", "content": "Last one?"}])
    return C


def minja_conversations(shared):
    d = os.path.join(shared, "chat-contexts", "minja")
    out = []
    for fn in sorted(os.listdir(d)):
        if not fn.endswith(".json"):
            continue
        ctx = json.load(open(os.path.join(d, fn)))
        conv = {"name": "minja:" + fn[:-5], "messages": ctx.pop("messages"),
                "add_generation_prompt": ctx.pop("add_generation_prompt", False)}
        if "tools" in ctx:
            conv["tools"] = ctx.pop("tools")
        conv["bos_token"] = ctx.pop("bos_token", None)
        conv["eos_token"] = ctx.pop("eos_token", None)
        conv["kwargs"] = ctx
        out.append(conv)
    return out


def render_conv(src, conv):
    kwargs = dict(conv.get("kwargs", {}))
    if conv.get("bos_token") is not None:
        kwargs.setdefault("bos_token", conv["bos_token"])
    if conv.get("eos_token") is not None:
        kwargs.setdefault("eos_token", conv["eos_token"])
    # transformers' apply_chat_template: null-valued keys are dropped from each message first
    messages = [{k: v for k, v in m.items() if v is not None} for m in copy.deepcopy(conv["messages"])]
    try:
        if conv.get("continue_final_message") and conv.get("add_generation_prompt"):
            raise ValueError("continue_final_message and add_generation_prompt are not compatible")
        out, _ = render_jinja_template(conversations=[messages], tools=conv.get("tools"), chat_template=src,
                                       add_generation_prompt=conv.get("add_generation_prompt", False),
                                       continue_final_message=conv.get("continue_final_message", False),
                                       **kwargs)
        return out[0]
    except Exception as e:  # the template raised (or the input was refused)
        return {"raises": str(e), "type": type(e).__name__}


# ---- Jinja feature snippets -------------------------------------------------------------------
SNIPPETS = [
    # output, literals, printing
    ("{{ 'hello' }}", {}), ("{{ 42 }} {{ -7 }} {{ 3.0 }} {{ 1.5e3 }} {{ 1e20 }} {{ 0.1 + 0.2 }}", {}),
    ("{{ true }} {{ false }} {{ none }} {{ True }} {{ None }}", {}),
    ("{{ [1, 'a', none, true, 2.5] }}", {}), ("{{ {'a': 1, 'b': [1, 2], 'c': {'d': 'e'}} }}", {}),
    ("{{ (1, 'x') }} {{ (1,) }} {{ () }}", {}), ("{{ \"it's\" }} {{ ['it\\'s', \"q\\\"d\"] }}", {}),
    ("{{ 'a\\tb\\nc' }}|{{ ['a\\nb'] }}", {}), ("{{ 'sp' 'lit' }}", {}),
    ("{{ undefined_var }}|{{ x.y if x is defined }}|", {}),
    ("{{ 1/3 }} {{ 2/2 }} {{ 10 // 3 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 2 ** 10 }} {{ 2 ** -1 }}", {}),
    ("{{ 7.5 // 2 }} {{ 7.5 % 2 }} {{ 1 + 2.5 }} {{ true + 1 }}", {}),
    ("{{ 'ab' * 3 }} {{ [1, 2] * 2 }} {{ 'a' + 'b' }} {{ [1] + [2, 3] }}", {}),
    ("{{ 1 ~ 2 ~ 'x' ~ none ~ true ~ undefined_var }}", {}),
    ("{{ 1 == 1.0 }} {{ true == 1 }} {{ 'a' != 'b' }} {{ [1, 2] == [1, 2] }} {{ {'a': 1} == {'a': 1} }}", {}),
    ("{{ 1 < 2 }} {{ 'abc' < 'abd' }} {{ [1, 2] < [1, 3] }} {{ 2 >= 2.0 }}", {}),
    ("{{ 'b' in 'abc' }} {{ 2 in [1, 2] }} {{ 'k' in {'k': 1} }} {{ 'z' not in 'abc' }} {{ x in undefined_var }}", {}),
    ("{{ not true }} {{ not none }} {{ not [] }} {{ not(1 == 2) }}", {}),
    ("{{ 0 or 'default' }} {{ 'a' and 'b' }} {{ '' and 'b' }} {{ none or [] }}", {}),
    ("{{ 'yes' if 1 else 'no' }} {{ 'yes' if 0 else 'no' }} [{{ 'x' if false }}]", {}),
    ("{{ -x }} {{ +x }} {{ -(x + 1) }}", {"x": 5}),
    # attribute / item access
    ("{{ d.a }} {{ d['a'] }} {{ d.missing }} {{ d.nested.k }} {{ d['nested']['k'] }}", {"d": {"a": 1, "nested": {"k": "v"}}}),
    ("{{ l[0] }} {{ l[-1] }} {{ l[10] }} {{ l.1 }}", {"l": [10, 20, 30]}),
    ("{{ s[0] }}{{ s[-1] }} {{ s[1:3] }} {{ s[::-1] }} {{ s[::2] }} {{ s[-3:] }} {{ s[:-1] }}", {"s": "héllo wörld"}),
    ("{{ l[1:] }} {{ l[:2] }} {{ l[::-1] }} {{ l[5:] }} {{ l[-2:] }} {{ l[1:2:1] }}", {"l": [1, 2, 3, 4]}),
    ("{{ messages[0].role }} {{ messages[-1]['content'] }}", {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}),
    ("{{ none.x }}|{{ 'abc'.nope }}|{{ (1).x }}", {}),
    # whitespace control
    ("a  {{- ' b ' -}}  c", {}), ("x\n  {%- if true %}\n  y\n  {%- endif %}\nz", {}),
    ("x\n    {% if true %}\n    y\n    {% endif %}\nz", {}), ("  {%+ if true %}kept{% endif %}", {}),
    ("a {# comment #} b\n  {# own line #}\nc", {}), ("a\n{#- trimmed -#}\n  b", {}),
    ("{% if true %}\nline\n{% endif %}\nafter", {}), ("{{ 'v' }}\nnext", {}),
    ("{% raw %}{{ not rendered }} {% if %}{% endraw %}", {}), ("  {% raw %}\n  x {{ y }}\n  {% endraw %}\nz", {}),
    ("{%- raw -%}  spaced  {%- endraw -%}  !", {}), ("a\r\n{% if true %}\r\nb\r\n{% endif %}\r\nc", {}),
    ("\t\t{% for i in [1,2] %}\n\t\t{{ i }}\n\t\t{% endfor %}\n", {}),
    # control flow
    ("{% if a %}A{% elif b %}B{% elif c %}C{% else %}D{% endif %}", {"a": 0, "b": 0, "c": 1}),
    ("{% if a %}A{% elif b %}B{% else %}D{% endif %}", {"a": 0, "b": 0}),
    ("{% for x in [1, 2, 3] %}{{ x }}{% if not loop.last %},{% endif %}{% endfor %}", {}),
    ("{% for x in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.length }}{{ loop.first }}{{ loop.last }};{% endfor %}", {}),
    ("{% for x in l %}[{{ loop.previtem }}|{{ x }}|{{ loop.nextitem }}]{% endfor %}", {"l": [1, 2, 3]}),
    ("{% for x in l %}{{ loop.cycle('odd', 'even') }} {% endfor %}", {"l": [1, 2, 3]}),
    ("{% for x in [] %}x{% else %}empty{% endfor %}", {}), ("{% for x in undefined_var %}x{% else %}none{% endfor %}", {}),
    ("{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}", {"d": {"b": 1, "a": 2}}),
    ("{% for k, v in d|items %}{{ k }}={{ v }};{% endfor %}", {"d": {"z": [1], "y": {"q": 1}}}),
    ("{% for k in d %}{{ k }}{% endfor %}", {"d": {"x": 1, "y": 2}}),
    ("{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %}", {}),
    ("{% for x in range(6) if x is odd %}{{ x }}/{{ loop.length }} {% endfor %}", {}),
    ("{% for a in [1, 2] %}{% for b in 'xy' %}{{ a }}{{ b }}{{ loop.index }} {% endfor %}{{ loop.index }}|{% endfor %}", {}),
    ("{% for a, b in [[1, 2], [3, 4]] %}{{ a + b }} {% endfor %}", {}),
    ("{{ range(3)|list }} {{ range(1, 10, 3)|list }} {{ range(5, 0, -2)|list }}", {}),
    # set and scoping
    ("{% set x = 1 %}{% for i in [1, 2] %}{% set x = i * 10 %}{{ x }} {% endfor %}{{ x }}", {}),
    ("{% set x = 5 %}{% for i in range(2) %}{{ x }}{% set x = i %}{{ x }}{% endfor %}{{ x }}", {}),
    ("{% set x = 1 %}{% if true %}{% set x = 2 %}{% endif %}{{ x }}", {}),
    ("{% set ns = namespace(n=0) %}{% for i in range(4) %}{% set ns.n = ns.n + i %}{% endfor %}{{ ns.n }}", {}),
    ("{% set ns = namespace(a=1, b='x') %}{{ ns.a }}{{ ns.b }}{{ ns.c }}", {}),
    ("{% set a, b = 1, 2 %}{{ a }}{{ b }}", {}), ("{% set t = (1, 2) %}{{ t }}", {}),
    ("{% set block %}inner {{ 1 + 1 }}{% endset %}[{{ block }}]", {}),
    ("{% set messages = messages[1:] %}{{ messages|length }}", {"messages": [1, 2, 3]}),
    # macros
    ("{% macro greet(name, greeting='Hello') %}{{ greeting }}, {{ name }}!{% endmacro %}{{ greet('Ann') }} {{ greet('Bob', 'Hi') }} {{ greet(greeting='Yo', name='Cy') }}", {}),
    ("{% macro m(a, b) %}[{{ a }}|{{ b }}]{% endmacro %}{{ m(1) }}", {}),
    ("{% macro m(x) %}{{ x|upper }}{% endmacro %}{{ m('ab')|length }} {{ m('cd') ~ '!' }}", {}),
    ("{% set g = 'G' %}{% macro m() %}{{ g }}{% endmacro %}{% set g = 'H' %}{{ m() }}", {}),
    ("{% macro m(c, flag=false) %}{% if flag %}F{% endif %}{{ c }}{% endmacro %}{{ m('x', true) }}{{ m('y') }}", {}),
    ("{% macro rec(n) %}{% if n > 0 %}{{ n }}{{ rec(n - 1) }}{% endif %}{% endmacro %}{{ rec(4) }}", {}),
    # filters
    ("{{ '  pad  '|trim }}|{{ 'xxhixx'|trim('x') }}|{{ s|length }}|{{ [1, 2]|length }}|{{ {'a': 1}|count }}", {"s": "héllo"}),
    ("{{ d|tojson }}", {"d": {"b": [1, 2.5, None, True], "a": "é\"\n<>&", "n": {"x": {}}, "e": []}}),
    ("{{ d|tojson(indent=2) }}", {"d": {"b": [1, {"c": []}], "a": "x", "e": {}}}),
    ("{{ d|tojson(indent=4) }}|{{ [1, [2, [3]]]|tojson(indent=0) }}", {"d": {"k": [1, 2]}}),
    ("{{ 'str'|tojson }} {{ 3|tojson }} {{ 2.0|tojson }} {{ none|tojson }} {{ true|tojson }} {{ '\\u2028 \\x7f \\x01'|tojson }}", {}),
    ("{{ d|tojson(sort_keys=true) }}", {"d": {"b": 1, "a": {"d": 1, "c": 2}}}),
    ("{{ x|string }} {{ 1.0|string }} {{ none|string }} {{ [1]|string }} {{ undefined_var|string }}|", {"x": 12}),
    ("{{ x|safe }} {{ d|safe }}", {"x": "<b>", "d": {"a": 1}}),
    ("{{ d|items|list }}", {"d": {"a": 1, "b": [2]}}),
    ("{{ [1, 2, 3]|join(', ') }} {{ 'abc'|join('-') }} {{ users|join(', ', attribute='name') }}", {"users": [{"name": "a"}, {"name": "b"}]}),
    ("{{ 'Hello World'|upper }} {{ 'Hello World'|lower }} {{ 'hello wORLD-foo(bar'|title }} {{ 'hELLO wORLD'|capitalize }}", {}),
    ("{{ 'ÉCOLE straße'|lower }} {{ 'straße'|upper }}", {}),
    ("{{ 'a-b-c'|replace('-', '+') }} {{ 'aaa'|replace('a', 'b', 2) }} {{ 'ab'|replace('', '.') }}", {}),
    ("{{ undefined_var|default('d') }} {{ ''|default('d') }} {{ ''|default('d', true) }} {{ none|default('d') }} {{ 0|d('z', boolean=true) }}", {}),
    ("{{ [3, 1, 2]|first }} {{ [3, 1, 2]|last }} {{ 'abc'|first }} [{{ []|first }}]", {}),
    ("{{ 'abc'|list }} {{ {'a': 1, 'b': 2}|list }} {{ (1, 2)|list }}", {}),
    ("{{ users|map(attribute='name')|list }} {{ ['a', 'b']|map('upper')|join }} {{ [1.5, 2.5]|map('int')|list }}", {"users": [{"name": "x"}, {"name": "y"}, {}]}),
    ("{{ users|map(attribute='age', default=0)|list }}", {"users": [{"age": 3}, {}]}),
    ("{{ [1, 2, 3, 4]|select('odd')|list }} {{ [1, 2, 3, 4]|reject('odd')|list }} {{ [0, 1, '', 'a', none]|select|list }}", {}),
    ("{{ ['a', 'b', 'c']|reject('equalto', 'b')|join(', ') }} {{ [1, 5, 10]|select('gt', 4)|list }} {{ [1, 2]|select('in', [2, 3])|list }}", {}),
    ("{{ users|selectattr('active')|map(attribute='name')|join(',') }}|{{ users|rejectattr('active')|map(attribute='name')|join(',') }}|{{ users|selectattr('name', 'equalto', 'b')|list|length }}", {"users": [{"name": "a", "active": True}, {"name": "b", "active": False}, {"name": "c", "active": 1}]}),
    ("{{ ['b', 'A', 'a', 'B']|unique|list }} {{ ['b', 'A', 'a']|unique(case_sensitive=true)|list }} {{ [1, 2, 1, 3]|unique|list }}", {}),
    ("{{ [3, 1, 2]|sort }} {{ ['b', 'A', 'c']|sort }} {{ ['b', 'A', 'c']|sort(case_sensitive=true) }} {{ [3, 1, 2]|sort(reverse=true) }}", {}),
    ("{{ users|sort(attribute='age')|map(attribute='name')|join }}", {"users": [{"name": "x", "age": 30}, {"name": "y", "age": 20}, {"name": "z", "age": 25}]}),
    ("{{ d|dictsort }} {{ d|dictsort(by='value') }} {{ d|dictsort(reverse=true) }}", {"d": {"b": 2, "a": 3, "C": 1}}),
    ("{{ 'a\\nb\\n\\nc'|indent }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'a\\n\\nb'|indent(2, blank=true) }}|{{ 'x\\ny'|indent('>> ') }}", {}),
    ("{{ '42'|int }} {{ '3.7'|int }} {{ 'x'|int }} {{ 'x'|int(5) }} {{ 4.9|int }} {{ ' 12 '|int }} {{ '0x1A'|int(base=16) }} {{ true|int }}", {}),
    ("{{ '1.5'|float }} {{ 3|float }} {{ 'x'|float }} {{ 'x'|float(1.0) }}", {}),
    ("{{ -3|abs }} {{ (-2.5)|abs }} {{ 2.5|round }} {{ 3.5|round }} {{ 2.675|round(2) }} {{ 2.1|round(0, 'ceil') }} {{ 2.9|round(method='floor') }} {{ 5|round }}", {}),
    ("{{ 'Hello big, wide world! 123 under_score'|wordcount }}", {}),
    ("{{ [1, 2, 3, 4, 5]|batch(2)|list }} {{ [1, 2, 3]|batch(2, 'x')|list }}", {}),
    ("{{ [1, 2, 3]|sum }} {{ [1.5, 2]|sum }} {{ users|sum(attribute='n') }} {{ [1]|sum(start=10) }}", {"users": [{"n": 1}, {"n": 4}]}),
    ("{{ [3, 1, 2]|min }} {{ [3, 1, 2]|max }} {{ ['b', 'A']|min }} {{ ['b', 'A']|max(case_sensitive=true) }} [{{ []|max }}]", {}),
    ("{{ [1, 2, 3]|reverse|list }} {{ 'abc'|reverse }}", {}),
    ("{{ 'hi'|center(6) }}|{{ '<a href=\"x\">&'|e }}", {}),
    ("{% filter upper %}shout {{ 'this' }}{% endfilter %} {% filter trim|title %}  two words  {% endfilter %}", {}),
    # tests
    ("{{ x is defined }} {{ y is defined }} {{ y is undefined }} {{ none is none }} {{ x is none }}", {"x": 1}),
    ("{{ 'a' is string }} {{ 1 is string }} {{ 1 is number }} {{ 1.5 is number }} {{ true is number }} {{ 1 is integer }} {{ true is integer }} {{ 1.0 is float }} {{ true is boolean }}", {}),
    ("{{ d is mapping }} {{ l is mapping }} {{ l is iterable }} {{ 's' is iterable }} {{ 1 is iterable }} {{ l is sequence }} {{ d is sequence }} {{ y is iterable }}", {"d": {}, "l": []}),
    ("{{ range is callable }} {{ 1 is callable }} {{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(2) }}", {}),
    ("{{ 'a' is equalto 'a' }} {{ 1 is eq 1 }} {{ 1 is ne 2 }} {{ 1 is lt 2 }} {{ 2 is gt 1 }} {{ 1 is le 1 }} {{ 1 is ge 2 }} {{ 2 is in [1, 2] }}", {}),
    ("{{ true is true }} {{ 1 is true }} {{ false is false }} {{ 0 is false }} {{ x is not none }} {{ x is not string }}", {"x": 1}),
    ("{{ 'abc' is lower }} {{ 'ABC' is upper }} {{ 'aBc' is lower }} {{ x is sameas none }} {{ 'upper' is filter }} {{ 'odd' is test }}", {"x": None}),
    # string methods
    ("{{ s.startswith('<tool') }} {{ s.endswith('>') }} {{ s.startswith(('x', '<')) }}", {"s": "<tool_response>"}),
    ("{{ '  x  '.strip() }}|{{ '\\n\\nx\\n'.lstrip('\\n') }}|{{ 'x\\n\\n'.rstrip('\\n') }}|{{ 'abcxcba'.strip('ab') }}", {}),
    ("{{ 'a,b,,c'.split(',') }} {{ '  a  b '.split() }} {{ 'a b c'.split(' ', 1) }} {{ 'a b c'.rsplit(' ', 1) }} {{ ''.split() }} {{ ''.split(',') }}", {}),
    ("{{ c.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') }}|{{ c.split('</think>')[-1].lstrip('\\n') }}", {"c": "<think>\nreason\n</think>\n\nanswer"}),
    ("{{ 'a-b'.replace('-', '_') }} {{ 'Hello'.upper() }} {{ 'Hello'.lower() }} {{ 'hello world'.title() }} {{ 'hELLO'.capitalize() }}", {}),
    ("{{ 'abcabc'.find('c') }} {{ 'abc'.find('z') }} {{ 'abcabc'.rfind('c') }} {{ 'aaa'.count('a') }} {{ 'abc'.count('') }}", {}),
    ("{{ ', '.join(['a', 'b']) }} {{ 'a\\nb\\r\\nc'.splitlines() }} {{ '12'.isdigit() }} {{ 'ab'.isalpha() }} {{ '7'.zfill(3) }}", {}),
    # dict methods
    ("{{ d.keys()|list }} {{ d.values()|list }} {{ d.get('a') }} {{ d.get('z') }} {{ d.get('z', 'dflt') }}", {"d": {"a": 1, "b": 2}}),
    ("{{ d.items()|list }}", {"d": {"a": 1}}),
    ("{{ dict(a=1, b='x') }} {{ namespace(a=1) }}", {}),
    # globals
    ("{{ raise_exception('custom failure') }}", {}),
    ("{% if strftime_now is defined %}yes{% endif %}", {}),
    # loop edge cases, undefined behaviour
    ("{% for m in messages %}{% if loop.previtem and loop.previtem.role != 'tool' %}<user>{% endif %}{{ m.role }}{% if not loop.last and loop.nextitem.role != 'tool' %}|{% elif loop.last %}.{% endif %}{% endfor %}", {"messages": [{"role": "user"}, {"role": "tool"}, {"role": "tool"}, {"role": "assistant"}]}),
    ("{{ undefined_var|length }} {{ undefined_var|list }} {{ undefined_var|items|list }} {{ undefined_var is iterable }}", {}),
    ("{% if undefined_var %}t{% else %}f{% endif %}{{ undefined_var == undefined_var }}", {}),
    # constructs other models' templates use (Mistral, GLM, MiniMax, Nemotron, DeepSeek style)
    ("{% for key, val in tool.items() if key != 'return' %}{{ key }}={{ val|tojson }}{% if not loop.last %}, {% endif %}{% endfor %}", {"tool": {"name": "f", "return": 1, "parameters": {"a": "b"}}}),
    ("{% set us = msgs|selectattr('role', 'equalto', 'user')|list %}{% for m in msgs %}{{ m == us[-1] }} {% endfor %}", {"msgs": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]}),
    ("{% set f = [] %}{% for m in l %}{% if m > 1 %}{% set f = f + [m] %}{% endif %}{% endfor %}{{ f }}", {"l": [1, 2, 3]}),
    ("{{ v|tojson(ensure_ascii=False) }} {{ v|tojson|string if v is not string else v }}", {"v": {"é": "ü"}}),
    ("{{ 'a \\\nb' }}|{{ \"x\\\ny\" }}", {}),
    ("{{ '<T>[{{\"name\": \"n\"}}]' }} {{ {'a': {'b': 1}} }}", {}),
    ("{% set args = tc.arguments or {} %}{% for k, v in args.items() %}<{{ k }}>{{ v }}{% endfor %}|{% set e = none or {} %}{{ e }}", {"tc": {"arguments": {"x": 1, "y": "z"}}}),
    ("{% macro ident(m) %}{% if m is not defined %}{% set m = 'You are helpful.' %}{% endif %}{{ m }}{% endmacro %}{{ ident() }}|{{ ident('X') }}", {}),
    ("{% set ns = namespace(a=1) %}{% set ns.b = ns.a + 1 %}{{ ns.b }} {{ ns.c is defined }}", {}),
    ("{{ (s|default('', true)).replace('/think', '').strip() }}|{{ (none|default('', true)).strip() }}", {"s": " hi /think "}),
    ("{{ out[:-1] }} {{ id[-9:] }}", {"out": "{\"a\": 1}", "id": "call_123456789abc"}),
    ("{% for p in c.split('</think>') %}{% if loop.index0 == 0 %}{{ (p.strip('\\n').split('<think>')|last).strip('\\n') }}{% else %}|{{ p.strip('\\n') }}{% endif %}{% endfor %}", {"c": "<think>\nr\n</think>\n\nans"}),
    ("{{ c.split('</think>', 1)[1] }}|{{ 'a=b=c'.split('=', 1) }}", {"c": "x</think>y</think>z"}),
    ("{%- set x -%}\n  block {{ 1 }}  \n{%- endset -%}\n[{{ x }}]", {}),
    ("{{ '\\n' ~ 'Current: ' + d }}{{ ']~b]' ~ '\\n' }}", {"d": "2025"}),
    ("{% if messages and messages[0].role == 'system' %}S{% endif %}{% if not messages %}E{% endif %}", {"messages": []}),
    ("{{ (t.function if t.function is defined else t)|tojson }}", {"t": {"name": "n", "parameters": {}}}),
    ("{{ 'yes' if (e is defined and not e) else 'no' }} {{ '/nothink' if (e is defined and not e and not 'x'.endswith('/nothink')) else '' }}", {"e": False}),
    ("{% for tr in c %}{{ tr.output if tr.output is defined else tr }};{% endfor %}", {"c": [{"output": "o"}, "plain", {"x": 1}]}),
    # found by differential fuzzing against jinja2
    ("{{ 1 < 2 < 3 }} {{ 3 > 2 > 1 > 5 }} {{ 1 == 1 != 2 }} {{ 'a' in 'abc' in 'xabcx' }}", {}),
    ("{% for m in l %}{% if u != m in l %}x{% endif %}{% endfor %}", {"l": [1, 2]}),
    ("{{ 2 ** -24 }} {{ 0.1 * 3 }} {{ 1e22 }} {{ 5e-324 }} {{ 123456789.123 }} {{ 1.5e-5 }} {{ 2 ** 0.5 }}", {}),
    ("{{ 0_0 }} {{ 1_000 }} {{ 1_0.2_5 }} {{ 1e1_0 }}", {}),
    ("{{ 2 * (1,) }} {{ (1, 2) + (3,) }} {{ [] * 3 }}", {}),
    ("{{ r is callable }} {{ r is sequence }}", {}),
    ("{{ users|map(attrib='x')|list }}", {}),
    ("{{ [1] + () }}", {}), ("{{ l[1:u] }}", {"l": [1, 2]}), ("{{ 3 is odd 9 }}", {}),
    ("{{ [1]|tojson(bogus=1) }}", {}), ("{{ u|float }}", {}), ("{{ 0 ** -1 }}", {}), ("{{ ''.ljust() }}", {}),
    ("{{ 6 is == 6 }}", {}), ("{{ range(08) }}", {}),
    ("{{ ['a\u00a0b', 'é', 'x\u200by', 'z\u2028', '日本', '🙂', 'tab\there', 'nl\nx'] }}", {}),
    ("{{ d|tojson(separators=(',', ':')) }} {{ d|tojson(indent=1, separators=(';', '=')) }}", {"d": {"a": [1, 2], "b": "é"}}),
    ("{{ d|tojson(ensure_ascii=true) }} {{ d|tojson(ensure_ascii=false) }}", {"d": {"é": "日本 🙂 \u00ff\n"}}),
    ("{{ -7 % 0.5 }} {{ 7 % -0.5 }} {{ 7.5 % 2 }}", {}),
    ("{% macro m() %}{% endmacro %}{{ m }}{% for x in [1, 2] %}{{ loop }}{% endfor %}", {}),
    ("a\n{#-", {}), ("{{ 'x'|replace('d') }}", {}),
    # errors jinja2 raises at run time
    ("{{ foo.bar }}", {}), ("{{ foo + 1 }}", {}), ("{{ 1 + 'a' }}", {}), ("{{ 1 < 'a' }}", {}),
    ("{{ 'a' in none }}", {}), ("{{ 1 in 'abc' }}", {}), ("{% for x in none %}{% endfor %}", {}),
    ("{{ 1 / 0 }}", {}), ("{{ undefined_var|tojson }}", {}), ("{% macro m(a) %}{% endmacro %}{{ m(1, 2) }}", {}),
    ("{% macro m(a) %}{% endmacro %}{{ m(1, c=2) }}", {}), ("{{ {'a': 1}|items|list|tojson }}", {}),
    ("{{ 5|length }}", {}), ("{{ 'abc'|items|list }}", {}), ("{% set x.y = 1 %}", {"x": {}}),
    ("{% for a, b in [1, 2] %}{% endfor %}", {}),
]

# Compile-time errors: jinja2 refuses these templates (the C side must too; messages differ).
SYNTAX_ERRORS = [
    "{{ 'unterminated }}", "{% if x %}no end", "{% for x in y %}{% endif %}", "{{ x|no_such_filter }}",
    "{{ x is no_such_test }}", "{% endfor %}", "{{ 1 + }}", "{% unknown_tag %}", "{{ (1, 2 }}",
    "{% macro m(a=1, b) %}{% endmacro %}", "{{ x }", "{% raw %}never closed", "{% set %}", "{{ }}",
    "{% if %}{% endif %}", "{% elif x %}", "{{ a b }}", "{% do x %}",
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shared", default=os.path.join(ROOT, "..", "shared", "fixtures"))
    args = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)

    snippets = []
    for src, vars_ in SNIPPETS:
        try:
            out = _compile_jinja_template(src).render(**vars_)
            snippets.append({"src": src, "vars": vars_, "out": out})
        except Exception as e:
            snippets.append({"src": src, "vars": vars_, "error": f"{type(e).__name__}: {e}"})
    for src in SYNTAX_ERRORS:
        try:
            _compile_jinja_template(src)
            raise SystemExit(f"expected a syntax error from {src!r}")
        except SystemExit:
            raise
        except Exception as e:
            snippets.append({"src": src, "vars": {}, "error": f"{type(e).__name__}: {e}", "compile": True})
    # strftime_now with the clock pinned cannot be done in jinja2; check the format only
    json.dump(snippets, open(os.path.join(OUT, "snippets.json"), "w"), ensure_ascii=False, indent=1)

    convs = conversations() + minja_conversations(args.shared)
    for c in convs:  # pin the date so Llama 3.2's strftime_now fallback is not used
        c.setdefault("kwargs", {}).setdefault("date_string", "26 Jul 2024")
    json.dump(convs, open(os.path.join(OUT, "conversations.json"), "w"), ensure_ascii=False, indent=1)

    tpl_dir = os.path.join(args.shared, "templates")
    templates = {}
    for fn in TEMPLATES:
        templates[fn[:-6]] = open(os.path.join(tpl_dir, fn), encoding="utf-8").read()
    templates["Qwen3.5-2B"] = qwen35_2b_form(templates["Qwen3.5-4B"])
    goldens = {}
    for name, src in templates.items():
        goldens[name] = {c["name"]: render_conv(src, c) for c in convs}
    json.dump(goldens, open(os.path.join(OUT, "goldens.json"), "w"), ensure_ascii=False, indent=0)
    n_raise = sum(isinstance(v, dict) for g in goldens.values() for v in g.values())
    print(f"{len(snippets)} snippets, {len(convs)} conversations x {len(templates)} templates "
          f"({n_raise} raise)", file=sys.stderr)


if __name__ == "__main__":
    main()
