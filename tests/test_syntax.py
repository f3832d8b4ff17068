"""Tables for the input language: what each line means, and where its errors point."""

from __future__ import annotations

from typing import Any

import pytest

from qmpsh.errors import InputError
from qmpsh.literals import MAX_DEPTH
from qmpsh.request import Argument, Command, HmpLine, RawJson, ShellCommand, Transaction
from qmpsh.syntax import Context, Syntax, Token, build_arguments, error_at

SHELL = frozenset({"help", "exit", "events", "wait"})


def language(hmp_mode: bool = False, shell_commands: frozenset[str] = frozenset()) -> Syntax:
    return Syntax(hmp_mode=hmp_mode, shell_words=shell_commands)


def parse(text: str, **mode: Any) -> Any:
    return language(**mode).parse(text)


def is_complete(text: str, **mode: Any) -> bool:
    return language(**mode).is_complete(text)


def analyze(text: str, **mode: Any) -> Context:
    return language(**mode).analyze(text)


def tokenize(text: str, **mode: Any) -> list[Token]:
    return language(**mode).tokenize(text)


def arguments_of(text: str) -> dict[str, Any]:
    request = parse(text)
    assert isinstance(request, Command)
    return build_arguments(request.arguments)


# ------------------------------------------------------------------ commands

# Lines from QEMU's docs/interop/live-block-operations.rst, in qmp-shell syntax.
LIVE_BLOCK_DOC = [
    (
        "blockdev-snapshot-sync node-name=node-A snapshot-file=b.qcow2"
        " snapshot-node-name=node-B format=qcow2",
        "blockdev-snapshot-sync",
        {
            "node-name": "node-A",
            "snapshot-file": "b.qcow2",
            "snapshot-node-name": "node-B",
            "format": "qcow2",
        },
    ),
    (
        "drive-mirror device=node-D target=e.qcow2 sync=full job-id=job0",
        "drive-mirror",
        {"device": "node-D", "target": "e.qcow2", "sync": "full", "job-id": "job0"},
    ),
    (
        'blockdev-add driver=qcow2 node-name=node-E file={"driver":"file","filename":"e.qcow2"}',
        "blockdev-add",
        {
            "driver": "qcow2",
            "node-name": "node-E",
            "file": {"driver": "file", "filename": "e.qcow2"},
        },
    ),
    (
        'nbd-server-start addr={"type":"inet","data":{"host":"::","port":"49153"}}',
        "nbd-server-start",
        {"addr": {"type": "inet", "data": {"host": "::", "port": "49153"}}},
    ),
    (
        "drive-mirror device=node-D target=nbd:localhost:49153:exportname=node-TargetDisk"
        " sync=top mode=existing job-id=job0",
        "drive-mirror",
        {
            "device": "node-D",
            "target": "nbd:localhost:49153:exportname=node-TargetDisk",
            "sync": "top",
            "mode": "existing",
            "job-id": "job0",
        },
    ),
    (
        "nbd-server-add device=node-TargetDisk writable=true",
        "nbd-server-add",
        {"device": "node-TargetDisk", "writable": True},
    ),
    (
        "block-stream device=node-D job-id=job0",
        "block-stream",
        {"device": "node-D", "job-id": "job0"},
    ),
    ("query-block-jobs", "query-block-jobs", {}),
    ("cont", "cont", {}),
]


@pytest.mark.parametrize(("text", "name", "expected"), LIVE_BLOCK_DOC)
def test_live_block_operations_examples(text: str, name: str, expected: dict[str, Any]) -> None:
    request = parse(text)
    assert isinstance(request, Command)
    assert request.name == name
    assert build_arguments(request.arguments) == expected


VALUES = [
    ("x=5", 5),
    ("x=-3", -3),
    ("x=+7", 7),
    ("x=007", 7),
    ("x=1.5", 1.5),
    ("x=-2e3", -2000.0),
    ("x=true", True),
    ("x=false", False),
    ("x=True", True),
    ("x=FALSE", False),
    ("x=null", None),
    ("x=None", None),
    ("x=", ""),
    ("x=abc", "abc"),
    ("x=0x10", "0x10"),
    ("x=nan", "nan"),
    ("x=inf", "inf"),
    ("x=1e999999", "1e999999"),
    ("x=" + "9" * 5000, "9" * 5000),
    ("x=nbd+unix:///d?socket=/x", "nbd+unix:///d?socket=/x"),
    ("x=a=b=c", "a=b=c"),
    ('x="a b"', "a b"),
    ("x='x y'", "x y"),
    ('x="5"', "5"),
    ("x='true'", "true"),
    ('x=""', ""),
    (r'x="say \"hi\""', 'say "hi"'),
    (r'x="back\\slash"', "back\\slash"),
    (r'x="C:\new"', "C:\\new"),
    (r"x='it\'s'", "it's"),
    ('x={"a": 1, "b": [1, 2]}', {"a": 1, "b": [1, 2]}),
    ("x=[1, 2, 3]", [1, 2, 3]),
    ("x=[]", []),
    ("x={}", {}),
    ("x={'a': 1}", {"a": 1}),
    ("x={'a':'value','obj':{'prop':\"value\"}}", {"a": "value", "obj": {"prop": "value"}}),
    ("x=[True, None, False]", [True, None, False]),
    ("x=[true, null, 'mixed']", [True, None, "mixed"]),
    ("x=(1,2)", "(1,2)"),  # parentheses are plain text: only {} and [] hold spaces
    ('x=a"b c"', 'a"b c"'),  # quotes inside a bare value are kept, as qmp-shell does
    ('x=json:{"driver": "file"}', 'json:{"driver": "file"}'),
    ("x=é☃", "é☃"),
]


@pytest.mark.parametrize(("typed", "value"), VALUES)
def test_value_guesses(typed: str, value: Any) -> None:
    assert arguments_of(f"cmd {typed}") == {"x": value}


@pytest.mark.parametrize(
    ("typed", "text", "quoted"),
    [
        ("x=5", "5", False),
        ('x="5"', "5", True),
        ("x='a b'", "a b", True),
        ("x={'a': 1}", "{'a': 1}", False),
        (r'x="a\"b"', 'a"b', True),
    ],
)
def test_argument_text_and_quoted(typed: str, text: str, quoted: bool) -> None:
    request = parse(f"cmd {typed}")
    assert isinstance(request, Command)
    (argument,) = request.arguments
    assert (argument.text, argument.quoted) == (text, quoted)


def test_argument_columns_are_one_based() -> None:
    request = parse("  cmd aa=1 b.c='x'")
    assert isinstance(request, Command)
    assert request.column == 3
    first, second = request.arguments
    assert (first.key_column, first.value_column) == (7, 10)
    assert (second.path, second.key, second.key_column, second.value_column) == (
        ("b", "c"),
        "b.c",
        12,
        16,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("cmd a.b=1 c=2", {"a": {"b": 1}, "c": 2}),
        ("cmd a.b=1 a.c=2", {"a": {"b": 1, "c": 2}}),
        ("cmd a.b.c=1 a.b.d=x a.e=3", {"a": {"b": {"c": 1, "d": "x"}, "e": 3}}),
        (
            "cmd file.driver=file file.filename=a.qcow2",
            {"file": {"driver": "file", "filename": "a.qcow2"}},
        ),
        ("cmd a.0=x a.1=y", {"a": {"0": "x", "1": "y"}}),
    ],
)
def test_dotted_keys_nest_only_themselves(text: str, expected: dict[str, Any]) -> None:
    assert arguments_of(text) == expected


@pytest.mark.parametrize(
    "name", ["query-status", "system_reset", "x-query-foo", "_private", "__com.redhat_drive-mirror"]
)
def test_command_names(name: str) -> None:
    assert parse(name) == Command(name)


# ------------------------------------------------------------------ errors

ERRORS = [
    # (text, message fragment, column, line)
    ("cmd a=1 a=2", "key 'a' is set twice", 9, None),
    ("cmd a.b=1 a.b=2", "key 'a.b' is set twice", 11, None),
    ("cmd a=1 a.b=2", "'a' is used both as a value and as a parent of 'a.b'", 9, None),
    ("cmd a.b=2 a=1", "'a' is used both as a value and as a parent of 'a.b'", 11, None),
    ("cmd a.b=1 a.b.c=2", "'a.b' is used both as a value and as a parent of 'a.b.c'", 11, None),
    ("cmd a={} a.b=1", "'a' is used both as a value and as a parent of 'a.b'", 10, None),
    ("cmd x=1 foo", "expected key=value, got 'foo'", 9, None),
    ("cmd x=(1, 2)", "expected key=value, got '2)'", 11, None),
    ("query-status   foo", "expected key=value, got 'foo'", 16, None),
    ("cmd =1", "missing key", 5, None),
    ("cmd a..b=1", "bad key 'a..b'", 5, None),
    ("cmd .a=1", "bad key '.a'", 5, None),
    ("cmd a b=1", "expected key=value, got 'a'", 5, None),
    ('cmd x="abc', "unterminated quote", 7, None),
    ("cmd x='abc", "unterminated quote", 7, None),
    ('cmd "x=1', "unterminated quote", 5, None),
    ('cmd x="a"b', "unexpected text after the closing quote", 10, None),
    ("cmd x={", "unbalanced '{'", 7, None),
    ("cmd x=[[1]", "unbalanced '['", 7, None),
    ("cmd x={a b}", "neither JSON nor a Python literal", 8, None),
    ("cmd x={1, 2}", "neither JSON nor a Python literal", 8, None),
    ("cmd x=[1j]", "neither JSON nor a Python literal", 9, None),
    ("cmd x=[b'a']", "neither JSON nor a Python literal", 8, None),
    ("cmd x=[1e999999]", "out of range", 7, None),
    ("cmd x=[NaN]", "neither JSON nor a Python literal", 7, None),
    ("cmd x=[__import__('os')]", "neither JSON nor a Python literal", 8, None),
    ("cmd x={1: 2}", "neither JSON nor a Python literal", 8, None),
    ("123 x=1", "expected a command name, got '123'", 1, None),
    ("  x=1", "expected a command name, got 'x=1'", 3, None),
    ("do/it", "expected a command name, got 'do/it'", 1, None),
    ("cmd\x00 a=1", "expected a command name", 1, None),
    ("{bad json}", "invalid JSON", 2, None),
    ('{"execute": "x",}', "invalid JSON", 17, None),
    ('{"execute": "x"} extra', "invalid JSON: Extra data", 18, None),
    ('{"execute": "x"', "unbalanced '{'", 1, None),
    ('{"arguments": {}}', 'needs "execute"', 1, None),
    ('{"execute": 5}', 'needs "execute"', 1, None),
    ('  {"execute": NaN}', "NaN is not allowed", 3, None),
    ('{"execute": "x", "arguments": {"a": 1e999}}', "out of range", 1, None),
    ("hmp", "'hmp' needs a monitor command line", 1, None),
    ("hmp   ", "'hmp' needs a monitor command line", 1, None),
    ("transaction( a x=1", "'transaction(' has no closing ')'", 1, None),
    ("transaction( a x=1 ) b", "unexpected text after ')'", 22, None),
    ("transaction( ) )", "unexpected text after ')'", 16, None),
    ("transaction( 9a x=1 )", "expected an action name, got '9a'", 14, None),
    ("transaction( a x=1 x=2 )", "key 'x' is set twice", 20, None),
    ("transaction(\na x=1\nb =2\n)", "missing key", 3, 3),
    ('transaction(\na x="foo\n)', "unterminated quote", 5, 2),
    ("transaction(\na x=1\nb y=1 y.z=2\n)", "'y' is used both", 7, 3),
    ("transaction(\na x=1", "'transaction(' has no closing ')'", 1, 1),
    ("cmd x={\n'a': 1,\n'a' 2}", "neither JSON nor a Python literal", 1, 2),
]


@pytest.mark.parametrize(("text", "message", "column", "line"), ERRORS)
def test_errors_name_the_problem_and_its_column(
    text: str, message: str, column: int, line: int | None
) -> None:
    with pytest.raises(InputError) as info:
        parse(text)
    assert message in info.value.message
    assert (info.value.column, info.value.line) == (column, line)


def test_error_text_reads_like_the_spec() -> None:
    with pytest.raises(InputError) as info:
        parse("device_add x=1 foo")
    assert str(info.value) == "col 16: expected key=value, got 'foo'"


@pytest.mark.parametrize(
    ("text", "column", "expected"),
    [
        ("abc", 2, (2, None)),
        ("ab\ncd", 5, (2, 2)),
        ("ab\ncd", 3, (3, 1)),
        ("ab\ncd", 4, (1, 2)),
        ("ab", 99, (3, None)),
    ],
)
def test_error_at_maps_whole_text_columns(
    text: str, column: int, expected: tuple[int, int | None]
) -> None:
    error = error_at(text, column, "m")
    assert (error.column, error.line) == expected


# ------------------------------------------------------------------ transactions


def action(action_name: str, /, **arguments: Any) -> tuple[str, dict[str, Any]]:
    return action_name, arguments


TRANSACTIONS = [
    (
        "transaction(\n"
        "block-dirty-bitmap-add node=drive0 name=bitmap1\n"
        "block-dirty-bitmap-clear node=drive0 name=bitmap0\n"
        ")",
        [
            action("block-dirty-bitmap-add", node="drive0", name="bitmap1"),
            action("block-dirty-bitmap-clear", node="drive0", name="bitmap0"),
        ],
    ),
    ("transaction( act k=v, act2 k=v )", [action("act", k="v"), action("act2", k="v")]),
    ("transaction( act k=v )", [action("act", k="v")]),
    ("transaction( act k=v)", [action("act", k="v")]),
    ("transaction(act k=v)", [action("act", k="v")]),
    ("transaction (a x=1 , b y=2)", [action("a", x=1), action("b", y=2)]),
    ("transaction( a x=1,b y=2 )", [action("a", x="1,b", y=2)]),
    ("transaction( a x=1,2 )", [action("a", x="1,2")]),
    ("transaction( a x=f(1) )", [action("a", x="f(1)")]),
    ("transaction()", []),
    ("transaction( )", []),
    ("transaction(\n)", []),
    (
        "  transaction(\n\n  a x=1 # first\n\n# only a comment\n  b y=2 )",
        [action("a", x=1), action("b", y=2)],
    ),
    ("transaction(\na x=1\nb y=2 )", [action("a", x=1), action("b", y=2)]),
    ('transaction( a x="1, 2)" )', [action("a", x="1, 2)")]),
    ('transaction( a x={"k": [1, 2]}, b )', [action("a", x={"k": [1, 2]}), action("b")]),
    (
        "transaction(\nblockdev-snapshot-sync node-name=n snapshot-file=s.qcow2 format=qcow2\n)",
        [
            action(
                "blockdev-snapshot-sync",
                **{"node-name": "n", "snapshot-file": "s.qcow2", "format": "qcow2"},
            )
        ],
    ),
]


@pytest.mark.parametrize(("text", "expected"), TRANSACTIONS)
def test_transactions(text: str, expected: list[tuple[str, dict[str, Any]]]) -> None:
    request = parse(text)
    assert isinstance(request, Transaction)
    got = [(a.name, build_arguments(a.arguments)) for a in request.actions]
    assert got == expected


def test_transaction_columns_point_into_the_whole_text() -> None:
    request = parse("transaction(\n a x=1\n)")
    assert isinstance(request, Transaction)
    (only,) = request.actions
    assert (only.column, only.arguments[0].key_column) == (15, 17)


def test_plain_transaction_command_with_json_stays_a_command() -> None:
    request = parse('transaction actions=[{"type": "abort", "data": {}}]')
    assert request == Command(
        "transaction",
        (
            Argument(
                ("actions",),
                '[{"type": "abort", "data": {}}]',
                [{"type": "abort", "data": {}}],
                False,
                13,
                21,
            ),
        ),
    )


# ------------------------------------------------------------------ other line kinds

OTHER_LINES = [
    ("", {}, None),
    ("   \t ", {}, None),
    ("# a comment", {}, None),
    ("   # x=1 y", {}, None),
    ("cmd x=1 # trailing comment", {}, Command("cmd", (Argument(("x",), "1", 1, False, 5, 7),))),
    ("cmd x=a#b", {}, Command("cmd", (Argument(("x",), "a#b", "a#b", False, 5, 7),))),
    ('{"execute": "query-status"}', {}, RawJson({"execute": "query-status"})),
    (
        ' {"execute": "x", "arguments": {"a": [1]}, "id": "mine"} ',
        {},
        RawJson({"execute": "x", "arguments": {"a": [1]}, "id": "mine"}),
    ),
    ('{"exec-oob": "migrate-pause"}', {}, RawJson({"exec-oob": "migrate-pause"})),
    ('{"execute":\n "x"}', {}, RawJson({"execute": "x"})),
    ("hmp info status", {}, HmpLine("info status", 5, passthrough=True)),
    ("hmp   stop  ", {}, HmpLine("stop", 7, passthrough=True)),
    ("info status", {}, HmpLine("info status")),
    ("  info   block -v ", {}, HmpLine("info   block -v", 3)),
    ("info", {}, HmpLine("info")),
    ("stop", {"hmp_mode": True}, HmpLine("stop", passthrough=True)),
    ("  info status", {"hmp_mode": True}, HmpLine("info status", 3, passthrough=True)),
    ("x=1 {", {"hmp_mode": True}, HmpLine("x=1 {", passthrough=True)),
    ("# c", {"hmp_mode": True}, None),
    ("help", {"shell_commands": SHELL}, ShellCommand("help")),
    ("help", {"shell_commands": SHELL, "hmp_mode": True}, ShellCommand("help")),
    (
        "  wait BLOCK_JOB_READY 'timeout 5' \"a b\"",
        {"shell_commands": SHELL},
        ShellCommand("wait", ("BLOCK_JOB_READY", "timeout 5", "a b"), 3),
    ),
    ("events x=1", {"shell_commands": SHELL}, ShellCommand("events", ("x=1",))),
    ("help", {}, Command("help")),
    ("query-status?", {}, ShellCommand("help", ("query-status",))),
    ("  device_add?", {}, ShellCommand("help", ("device_add",), 3)),
    ("?", {}, ShellCommand("help")),
    ("info?", {}, ShellCommand("help", ("info",))),
]


@pytest.mark.parametrize(("text", "options", "expected"), OTHER_LINES)
def test_other_line_kinds(text: str, options: dict[str, Any], expected: object) -> None:
    assert parse(text, **options) == expected


@pytest.mark.parametrize(
    ("text", "column"),
    [("wait 'abc", 6), ('wait a "b', 8), ("wait a\\", 7), ("help 'x' \"y", 10)],
)
def test_shell_command_bad_quoting(text: str, column: int) -> None:
    with pytest.raises(InputError) as info:
        parse(text, shell_commands=SHELL)
    assert info.value.column == column


# ------------------------------------------------------------------ build_arguments


def arg(key: str, value: Any, column: int = 1) -> Argument:
    return Argument(tuple(key.split(".")), str(value), value, False, column, column + len(key) + 1)


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ([], {}),
        ([arg("a", 1)], {"a": 1}),
        ([arg("a.b", 1), arg("c", 2)], {"a": {"b": 1}, "c": 2}),
        ([arg("a.b", 1), arg("a.c.d", 2)], {"a": {"b": 1, "c": {"d": 2}}}),
    ],
)
def test_build_arguments_nests(arguments: list[Argument], expected: dict[str, Any]) -> None:
    assert build_arguments(arguments) == expected


@pytest.mark.parametrize(
    ("arguments", "message", "column"),
    [
        ([arg("a", 1, 5), arg("a", 2, 9)], "key 'a' is set twice", 9),
        (
            [arg("a", 1, 5), arg("a.b", 2, 12)],
            "'a' is used both as a value and as a parent of 'a.b'",
            12,
        ),
        (
            [arg("a.b", 1, 5), arg("a", 2, 12)],
            "'a' is used both as a value and as a parent of 'a.b'",
            12,
        ),
        ([arg("x", 0, 1), arg("a.b.c", 1, 5), arg("a.b", 2, 20)], "'a.b' is used both", 20),
    ],
)
def test_build_arguments_conflicts(arguments: list[Argument], message: str, column: int) -> None:
    with pytest.raises(InputError) as info:
        build_arguments(arguments)
    assert message in info.value.message
    assert info.value.column == column


def test_build_arguments_takes_values_from_the_caller() -> None:
    request = parse("chardev-add port=5900 id=x")
    assert isinstance(request, Command)
    assert build_arguments(request.arguments, lambda a: a.text) == {"port": "5900", "id": "x"}


# ------------------------------------------------------------------ is_complete


@pytest.mark.parametrize(
    ("text", "complete"),
    [
        ("", True),
        ("query-status", True),
        ("cmd x={", False),
        ('cmd x={"a":', False),
        ('cmd x={"a":\n1}', True),
        ("cmd x=[[1]", False),
        ("cmd x=[[1]\n]", True),
        ("cmd x=a]", True),
        ('cmd x="{"', True),
        ("cmd x='[", True),  # unterminated quote: parse reports it at once
        ('cmd x={"a', True),
        ("{", False),
        ('{"execute":\n"x"', False),
        ('{"execute":\n"x"}', True),
        ("transaction(", False),
        ("transaction(\na x=1", False),
        ("transaction(\na x=1\n)", True),
        ("transaction( a x=1 )", True),
        ("transaction( a x=1)", True),
        ("transaction( a x={", False),
        ("transaction( a x=(", False),
        ("# transaction(", True),
        ("info {", True),
        ("hmp x=[", True),
        ("wait {", True),
        ("?", True),
    ],
)
def test_is_complete(text: str, complete: bool) -> None:
    assert is_complete(text, shell_commands=SHELL) is complete


def test_is_complete_in_hmp_mode_ignores_brackets() -> None:
    assert is_complete("x {", hmp_mode=True)


# ------------------------------------------------------------------ analyze


def ctx(kind: str, command: str | None = None, **fields: Any) -> Context:
    return Context(kind, command, **fields)  # type: ignore[arg-type]


ANALYZE = [
    ("", ctx("command", word_start=0)),
    ("que", ctx("command", word="que", word_start=0)),
    ("  query-st", ctx("command", word="query-st", word_start=2)),
    ("query-status ", ctx("key", "query-status", word_start=13)),
    ("blockdev-add dri", ctx("key", "blockdev-add", word="dri", word_start=13)),
    (
        "blockdev-add driver=qcow2 ",
        ctx("key", "blockdev-add", given={"driver": "qcow2"}, word_start=26),
    ),
    (
        "blockdev-add driver=",
        ctx("value", "blockdev-add", key_path=("driver",), word_start=20),
    ),
    (
        "blockdev-add driver=qc",
        ctx("value", "blockdev-add", key_path=("driver",), word="qc", word_start=20),
    ),
    (
        "blockdev-add driver=qcow2 file.",
        ctx("key", "blockdev-add", given={"driver": "qcow2"}, key_path=("file",), word_start=31),
    ),
    (
        "blockdev-add driver=qcow2 file.dri",
        ctx(
            "key",
            "blockdev-add",
            given={"driver": "qcow2"},
            key_path=("file",),
            word="dri",
            word_start=31,
        ),
    ),
    (
        "blockdev-add file.driver=file file.",
        ctx(
            "key",
            "blockdev-add",
            given={"file": {"driver": "file"}},
            key_path=("file",),
            word_start=35,
        ),
    ),
    (
        "blockdev-add a.b.c",
        ctx("key", "blockdev-add", key_path=("a", "b"), word="c", word_start=17),
    ),
    (
        "blockdev-add file.driver=fi",
        ctx("value", "blockdev-add", key_path=("file", "driver"), word="fi", word_start=25),
    ),
    (
        'cmd x="a b',
        ctx("value", "cmd", key_path=("x",), word="a b", word_start=7),
    ),
    ('cmd x="a b"', ctx("none", "cmd", key_path=("x",), word_start=11)),
    ('cmd x={"a', ctx("none", "cmd", key_path=("x",), word_start=9)),
    (
        "cmd x=1 x=2 bad y=",
        ctx("value", "cmd", given={"x": "1"}, key_path=("y",), word_start=18),
    ),
    ("cmd # comment", ctx("none", word_start=13)),
    ("# comment", ctx("none", word_start=9)),
    ('{"execute": "q', ctx("none", word_start=14)),
    ("transaction(", ctx("command", in_transaction=True, word_start=12)),
    ("transaction(\n", ctx("command", in_transaction=True, word_start=13)),
    (
        "transaction(\nblock-dirty",
        ctx("command", in_transaction=True, word="block-dirty", word_start=13),
    ),
    (
        "transaction(block-dirty",
        ctx("command", in_transaction=True, word="block-dirty", word_start=12),
    ),
    (
        "transaction(\nblock-dirty-bitmap-add node=a ",
        ctx(
            "key",
            "block-dirty-bitmap-add",
            in_transaction=True,
            given={"node": "a"},
            word_start=43,
        ),
    ),
    (
        "transaction(\na x=1\nb ",
        ctx("key", "b", in_transaction=True, word_start=21),
    ),
    (
        "transaction(\na x=1\n",
        ctx("command", in_transaction=True, word_start=19),
    ),
    (
        "transaction( a x=1, b y=",
        ctx("value", "b", in_transaction=True, key_path=("y",), word_start=24),
    ),
    ("transaction( a x=1, ", ctx("command", in_transaction=True, word_start=20)),
    ("transaction( a x=1 )", ctx("none", word_start=20)),
    ("info", ctx("command", word="info", word_start=0)),
    ("info ", ctx("hmp-info", "info", word_start=5)),
    ("info sp", ctx("hmp-info", "info", word="sp", word_start=5)),
    ("info spice ", ctx("none", word_start=11)),
    ("hmp ", ctx("hmp-command", word_start=4)),
    ("hmp sto", ctx("hmp-command", word="sto", word_start=4)),
    ("hmp info bl", ctx("hmp-info", "info", word="bl", word_start=9)),
    ("help que", ctx("shell-argument", "help", word="que", word_start=5)),
    ("help ", ctx("shell-argument", "help", word_start=5)),
    ("query-status?", ctx("none", word_start=13)),
    ("query-status? ", ctx("none", word_start=14)),
]


@pytest.mark.parametrize(("text", "expected"), ANALYZE)
def test_analyze(text: str, expected: Context) -> None:
    assert analyze(text, shell_commands=SHELL) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ctx("hmp-command", word_start=0)),
        ("sto", ctx("hmp-command", word="sto", word_start=0)),
        ("info b", ctx("hmp-info", "info", word="b", word_start=5)),
        ("drive_add 0 ", ctx("none", word_start=12)),
    ],
)
def test_analyze_in_hmp_mode(text: str, expected: Context) -> None:
    assert analyze(text, hmp_mode=True) == expected


def test_analyze_word_start_matches_word() -> None:
    for text, _ in ANALYZE:
        found = analyze(text, shell_commands=SHELL)
        if found.kind != "none":
            assert text[found.word_start :].startswith(found.word)


# ------------------------------------------------------------------ tokenize


def kinds(text: str, **options: Any) -> list[tuple[str, str]]:
    tokens = tokenize(text, **options)
    assert "".join(t.text for t in tokens) == text
    return [(t.kind, t.text) for t in tokens if t.kind != "whitespace"]


TOKENS = [
    ("", []),
    ("   ", []),
    ("query-status", [("command", "query-status")]),
    (
        'cmd a=1 b="x y" c=true d=null e={"k": [1, 2]} f=abc g=-1.5',
        [
            ("command", "cmd"),
            ("key", "a"),
            ("equals", "="),
            ("number", "1"),
            ("key", "b"),
            ("equals", "="),
            ("string", '"x y"'),
            ("key", "c"),
            ("equals", "="),
            ("keyword", "true"),
            ("key", "d"),
            ("equals", "="),
            ("keyword", "null"),
            ("key", "e"),
            ("equals", "="),
            ("json", '{"k": [1, 2]}'),
            ("key", "f"),
            ("equals", "="),
            ("value", "abc"),
            ("key", "g"),
            ("equals", "="),
            ("number", "-1.5"),
        ],
    ),
    ("cmd file.driver=", [("command", "cmd"), ("key", "file.driver"), ("equals", "=")]),
    ("cmd fi", [("command", "cmd"), ("key", "fi")]),
    (
        "cmd fi x=1",
        [("command", "cmd"), ("error", "fi"), ("key", "x"), ("equals", "="), ("number", "1")],
    ),
    ("9cmd", [("error", "9cmd")]),
    ("cmd =1", [("command", "cmd"), ("equals", "="), ("number", "1")]),
    ("cmd a..b=1", [("command", "cmd"), ("error", "a..b"), ("equals", "="), ("number", "1")]),
    ('cmd x="abc', [("command", "cmd"), ("key", "x"), ("equals", "="), ("string", '"abc')]),
    ('cmd x="a"b', [("command", "cmd"), ("key", "x"), ("equals", "="), ("error", '"a"b')]),
    (
        "cmd x={a b} y=[1",
        [
            ("command", "cmd"),
            ("key", "x"),
            ("equals", "="),
            ("error", "{a b}"),
            ("key", "y"),
            ("equals", "="),
            ("json", "[1"),
        ],
    ),
    (
        "cmd x=1 # note",
        [("command", "cmd"), ("key", "x"), ("equals", "="), ("number", "1"), ("comment", "# note")],
    ),
    ("# all of it", [("comment", "# all of it")]),
    ('  {"execute": "x"}  ', [("json", '{"execute": "x"}')]),
    (
        "transaction(\na k=v, b\n)",
        [
            ("punct", "transaction("),
            ("command", "a"),
            ("key", "k"),
            ("equals", "="),
            ("value", "v"),
            ("punct", ","),
            ("command", "b"),
            ("punct", ")"),
        ],
    ),
    (
        "transaction( a ) x",
        [("punct", "transaction("), ("command", "a"), ("punct", ")"), ("error", "x")],
    ),
    ("info status", [("shell", "info"), ("value", "status")]),
    ("hmp info  status", [("shell", "hmp"), ("value", "info"), ("value", "status")]),
    ("query-status?", [("shell", "query-status?")]),
]


@pytest.mark.parametrize(("text", "expected"), TOKENS)
def test_tokenize(text: str, expected: list[tuple[str, str]]) -> None:
    assert kinds(text) == expected


def test_tokenize_shell_and_hmp_lines() -> None:
    assert kinds("wait 'a b'", shell_commands=SHELL) == [
        ("shell", "wait"),
        ("value", "'a"),
        ("value", "b'"),
    ]
    assert kinds("x=1 {", hmp_mode=True) == [("hmp", "x=1"), ("value", "{")]


def test_token_offsets_match_text() -> None:
    text = 'transaction(\n a x="1 2", b y={"z": 1}\n)'
    for token in tokenize(text):
        assert text[token.start : token.end] == token.text


# ------------------------------------------------------------------ one mode, every caller


def test_the_first_word_is_classified_once_for_every_caller() -> None:
    """A shell word with a bracket is complete, parsed and tokenized as a shell command."""
    shelly = Syntax(shell_words=SHELL)
    assert shelly.head("wait {").kind == "shell"
    assert shelly.is_complete("wait {")
    assert shelly.parse("wait {") == ShellCommand("wait", ("{",))
    assert shelly.tokenize("wait {")[0].kind == "shell"
    assert shelly.analyze("wait ").kind == "shell-argument"
    plain = Syntax()  # without shell words the same line is a command with an open brace
    assert not plain.is_complete("wait {")


def test_script_lines_are_joined_in_the_sessions_mode() -> None:
    from qmpsh.script import logical_lines

    lines = ["wait {", "query-status", "cmd x={", '"a": 1}', "query-name"]
    shelly = Syntax(shell_words=SHELL)
    assert list(logical_lines(lines, lambda: shelly)) == [
        (1, "wait {"),
        (2, "query-status"),
        (3, 'cmd x={\n"a": 1}'),
        (5, "query-name"),
    ]


@pytest.mark.parametrize(
    ("pending", "line", "breaks"),
    [
        ("cmd x=[1", "query-status", True),
        ("cmd x=[1", "  query-status a=1", True),
        ("cmd x=[1", "wait X", True),
        ("cmd x=[1", "info status", True),
        ("cmd x=[1,", "2]", False),
        ("cmd x=[", "true,", False),
        ("cmd x=[", "  null", False),
        ("cmd x={", '"a": 1}', False),
        ("cmd x={", "{", False),
        ("cmd x=[", "", False),
        ("cmd x=[", "# note", False),
        ('{"execute": "x",', "query-status", True),
        ('{"execute": "x",', '"arguments": {}}', False),
        ("transaction(", "abort", False),  # actions look like requests: no resync there
    ],
)
def test_an_open_bracket_ends_at_a_line_that_starts_a_request(
    pending: str, line: str, breaks: bool
) -> None:
    assert Syntax(shell_words=SHELL).breaks_off(pending, line) is breaks


def test_tokens_carry_their_context() -> None:
    tokens = Syntax().tokenize("transaction( a x.y=1 z=2, b )")
    by_text = {t.text: t.context for t in tokens if t.context is not None}
    assert by_text["a"] == Context("command", "a", True, word="a")
    value = by_text["1"]
    assert value is not None and value.kind == "value" and value.key_path == ("x", "y")
    assert value.given == {"x": {"y": "1"}, "z": "2"}  # every argument of the action
    assert value.argument is not None and value.argument.value == 1
    assert by_text["b"] == Context("command", "b", True, word="b")


def test_nesting_many_dotted_keys_is_linear() -> None:
    """One object per path part is made: no per-prefix tuples (which were quadratic)."""
    parts = MAX_DEPTH
    request = parse("cmd " + ".".join(["a"] * parts) + "=1")
    assert isinstance(request, Command)
    node: Any = build_arguments(request.arguments)
    for _ in range(parts - 1):
        node = node["a"]
    assert node == {"a": 1}
    with pytest.raises(InputError, match="nested more than"):
        parse("cmd " + ".".join(["a"] * (parts + 1)) + "=1")


def test_a_transaction_with_an_open_bracket_ends_at_its_closing_line() -> None:
    from qmpsh.script import logical_lines

    lines = ["transaction(", "  a x=[1", "  b", ")", "query-status"]
    joined = list(logical_lines(lines, Syntax))
    assert joined == [(1, "transaction(\n  a x=[1\n  b\n)"), (5, "query-status")]
    with pytest.raises(InputError, match="unbalanced '\\['") as info:
        Syntax().parse(joined[0][1])
    assert (info.value.line, info.value.column) == (2, 7)
