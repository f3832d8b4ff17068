"""Hostile input for the parser: it may refuse a line, but only with a pointed InputError.

The public ``tokenize``/``analyze``/``is_complete`` swallow internal bugs so the prompt
survives them; these tests call the unguarded ``_tokenize``/``_analyze``/``_is_complete``
too, so such a bug fails here instead of hiding.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qmpsh import syntax
from qmpsh.errors import InputError
from qmpsh.request import Command, HmpLine, RawJson, ShellCommand, Transaction
from qmpsh.syntax import Syntax, build_arguments

SHELL = frozenset({"help", "wait", "events"})


def mode(hmp_mode: bool) -> Syntax:
    return Syntax(hmp_mode=hmp_mode, shell_words=SHELL)


# Pieces of the grammar, and things that have broken parsers before.
FRAGMENTS = [
    "cmd", "query-status", "a", "b.c", "x", "=", ".", ",", ", ", "(", ")", "transaction(",
    "transaction( ", "{", "}", "[", "]", '"', "'", "\\", "\\\\", '\\"', " ", "  ", "\t", "\n",
    "\x00", "\x1c", "\u2003", "é", "☃", "\U0001d54f", "1", "-1", "1.5", "1e999999", "9" * 400,
    "true", "null", "None", "True", "#", "?", "hmp ", "info ", "help ", ":", '{"a": 1}', "[1, 2]",
    "'x'", '"y z"', '{"execute": "x"}', "[" * 300, "]" * 300, "k=", "a.b=1 ", "a=1 ", "nan",
]  # fmt: skip

lines = st.one_of(
    st.lists(st.sampled_from(FRAGMENTS), max_size=12).map("".join),
    st.text(max_size=40),
    st.text(alphabet="ab=.,()[]{}\"'\\ \n#?x", max_size=40),
)

MANY = settings(max_examples=2500, deadline=None)


def check_error(text: str, error: InputError) -> None:
    assert isinstance(error.column, int)
    assert error.message
    if error.line is None:
        assert 1 <= error.column <= len(text) + 1
    else:
        physical = text.split("\n")
        assert 1 <= error.line <= len(physical)
        assert 1 <= error.column <= len(physical[error.line - 1]) + 1


@settings(max_examples=3000, deadline=None)
@given(lines, st.booleans())
def test_parse_succeeds_or_raises_input_error(text: str, hmp_mode: bool) -> None:
    try:
        request = mode(hmp_mode).parse(text)
    except InputError as error:
        check_error(text, error)
        return
    assert request is None or isinstance(
        request, Command | Transaction | RawJson | HmpLine | ShellCommand
    )
    for command in _commands(request):
        json.dumps(build_arguments(command.arguments), allow_nan=False)


def _commands(request: object) -> list[Command]:
    if isinstance(request, Command):
        return [request]
    return list(request.actions) if isinstance(request, Transaction) else []


@MANY
@given(lines, st.booleans())
def test_tokens_cover_the_text_exactly(text: str, hmp_mode: bool) -> None:
    tokens = syntax._tokenize(text, mode(hmp_mode).head(text))
    assert "".join(t.text for t in tokens) == text
    position = 0
    for token in tokens:
        assert token.start == position < token.end
        assert text[token.start : token.end] == token.text
        position = token.end


@MANY
@given(lines, st.data())
def test_analyze_never_raises(text: str, data: st.DataObject) -> None:
    cursor = data.draw(st.integers(0, len(text)))
    before = text[:cursor]
    found = mode(False)._analyze(before)
    assert 0 <= found.word_start <= len(before)
    if found.kind != "none":
        assert before[found.word_start :].startswith(found.word)
    assert Syntax().is_complete(before) in (True, False)
    syntax._is_complete(before, mode(False).head(before))


# Well-formed lines built from the grammar must mean what they say.
keys = st.from_regex(r"[a-z][a-z0-9-]{0,6}", fullmatch=True)
plain_values = st.one_of(
    st.integers(-(2**63), 2**64),
    st.booleans(),
    st.none(),
    st.from_regex(r"[a-z/:][a-z0-9/:.?=+-]{0,10}", fullmatch=True).filter(
        lambda s: s.lower() not in ("true", "false")
    ),
)
json_tree = st.recursive(
    plain_values | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
# Bare strings that look like numbers would (rightly) be typed: only containers nest text.
json_values = (
    plain_values
    | st.lists(json_tree, max_size=3)
    | st.dictionaries(st.text(max_size=5), json_tree, max_size=3)
)


def spelled(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else str(value)


@settings(max_examples=1200, deadline=None)
@given(
    st.dictionaries(keys, json_values, max_size=5),
    st.dictionaries(keys, st.text(max_size=10), max_size=3),
)
def test_generated_commands_round_trip(values: dict[str, Any], quoted: dict[str, str]) -> None:
    quoted = {f"Q{k}": v for k, v in quoted.items()}  # generated keys are lower case
    parts = [f"{k}={spelled(v)}" for k, v in values.items()]
    parts += [f'{k}="{_escape(v)}"' for k, v in quoted.items()]
    request = Syntax().parse("cmd " + " ".join(parts))
    assert isinstance(request, Command)
    assert build_arguments(request.arguments) == {**values, **quoted}


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


@settings(max_examples=800, deadline=None)
@given(
    st.lists(st.dictionaries(keys, plain_values, max_size=3), min_size=0, max_size=4), st.booleans()
)
def test_generated_transactions_round_trip(actions: list[dict[str, Any]], multi_line: bool) -> None:
    texts = [
        " ".join([f"act{i}", *(f"{k}={spelled(v)}" for k, v in a.items())])
        for i, a in enumerate(actions)
    ]
    text = (
        "transaction(\n" + "\n".join(texts) + "\n)"
        if multi_line
        else f"transaction( {', '.join(texts)} )"
    )
    assert Syntax().is_complete(text)
    request = Syntax().parse(text)
    assert isinstance(request, Transaction)
    assert [build_arguments(a.arguments) for a in request.actions] == actions


NASTY = [
    '"',
    "'",
    "cmd x='",
    'cmd x="\\',
    "cmd x=\\",
    "cmd x={",
    "cmd x=}",
    "cmd x=]]]",
    "cmd x=[}",
    "cmd x={]",
    "transaction(",
    "transaction( a x=1",
    "transaction( a x=1 ) )",
    "transaction( , , )",
    "transaction( a x=[ )",
    "transaction(\n\n\n",
    "transaction(\x00)",
    ")",
    "cmd\x00",
    "cmd x=\x00",
    "\x00",
    "cmd x=1e999999",
    "cmd x=[1e999999]",
    "cmd x=-1e999999",
    "cmd x=" + "9" * 100_000,
    "cmd x=[" + "9" * 100_000 + "]",
    '{"execute": "x", "arguments": {"n": ' + "9" * 5000 + "}}",
    "cmd x=" + "[" * 10_000,
    "cmd x=" + "[" * 10_000 + "]" * 10_000,
    "cmd x=" + "{'a':" * 5000 + "1" + "}" * 5000,
    "cmd x=[" + "(" * 1000 + "1" + ")" * 1000 + "]",
    "[" * 10_000,
    "{" * 10_000,
    '{"execute": "x", "arguments": ' + "[" * 10_000 + "]" * 10_000 + "}",
    "cmd a=1 a.b=2",
    "cmd a.b=1 a=2",
    "cmd a.b.c=1 a.b=2",
    "cmd a=1 a=1",
    "cmd a.=1",
    "cmd .=1",
    "cmd ==",
    "cmd x=[1,2",
    "cmd x={'a': set()}",
    "cmd x=[__import__('os').system('true')]",
    "cmd x=[lambda: 1]",
    "cmd x=[...]",
    "cmd x=[1j]",
    "cmd x=[b'x']",
    "cmd x={(1,2): 3}",
    "cmd x=[-Infinity]",
    '{"execute": "x"} {"execute": "y"}',
    '{"execute": NaN}',
    "[1]",
    "hmp",
    "info",
    "?",
    "??",
    "☃ x=1",
    "cmd ☃=1",
    "cmd x=☃\u2003y=2",
    "cmd x=1\r\ny=2",
]


def short(text: object) -> str:
    shown = repr(text)
    return shown if len(shown) <= 32 else f"{shown[:24]}...({len(shown)} chars)"


@pytest.mark.parametrize("text", NASTY, ids=short)
def test_nasty_inputs(text: str) -> None:
    try:
        mode(False).parse(text)
    except InputError as error:
        check_error(text, error)
    assert "".join(t.text for t in syntax._tokenize(text, mode(False).head(text))) == text
    for cursor in {0, 1, len(text) // 2, len(text)}:
        mode(False)._analyze(text[:cursor])
        syntax._is_complete(text[:cursor], mode(False).head(text[:cursor]))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cmd x=" + "[" * 10_000, "unbalanced '['"),
        ("cmd x=" + "[" * 10_000 + "]" * 10_000, "nested more than"),
        ('{"execute": "x", "arguments": ' + "[" * 10_000 + "]" * 10_000 + "}", "nested more than"),
        ("cmd x=[1e999999]", "out of range"),
        ("cmd x=[lambda: 1]", "neither JSON nor a Python literal"),
        ("cmd x=[__import__('os').system('true')]", "neither JSON nor a Python literal"),
        ("cmd a.b.c=1 a.b=2", "'a.b' is used both as a value and as a parent of 'a.b.c'"),
        ("transaction( a x=1 ) )", "unexpected text after ')'"),
    ],
    ids=short,
)
def test_nasty_inputs_are_refused_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(InputError, match=re.escape(message)):
        Syntax().parse(text)
