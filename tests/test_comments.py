"""The comment rule (``syntax.starts_comment``), one table for every kind of line.

A ``#`` at the start of a line or after whitespace, outside quotes and brackets, starts
a comment to the end of the line; anywhere else it is data.  The README writes
``info spice  # …``: before this rule, HMP, ``info``, ``help``, shell and JSON lines
handed the comment on (to HMP, to ``help`` as a field, to the JSON parser).
"""

from __future__ import annotations

import pytest

from qmpsh.request import Argument, Command, HmpLine, RawJson, Request, ShellCommand
from qmpsh.syntax import Syntax

QMP = Syntax(shell_words=("help", "events", "wait", "format"))
HMP = Syntax(hmp_mode=True, shell_words=("help", "events", "wait", "format"))


def arg(key: str, text: str, key_column: int) -> Argument:
    return Argument((key,), text, text, False, key_column, key_column + len(key) + 1)


CASES: list[tuple[Syntax, str, Request | None]] = [
    # whole-line comments
    (QMP, "# just a note", None),
    (QMP, "   # indented note", None),
    (HMP, "# a note in HMP mode", None),
    # QMP commands: a comment after whitespace; '#' inside a word is data
    (QMP, "query-status  # how is it", Command("query-status", ())),
    (QMP, "eject id=a#b # note", Command("eject", (arg("id", "a#b", 7),))),
    (QMP, "eject id=#x", Command("eject", (arg("id", "#x", 7),))),
    # quoted and bracketed '#' stays
    (
        QMP,
        'object-add qom-type=secret id=s data="a #b"  # c',
        Command(
            "object-add",
            (
                arg("qom-type", "secret", 12),
                arg("id", "s", 28),
                Argument(("data",), "a #b", "a #b", True, 33, 38),
            ),
        ),
    ),
    # info / hmp: the comment never reaches HMP
    (QMP, "info spice  # HMP-style", HmpLine("info spice", 1)),
    (QMP, "info spice#x", HmpLine("info spice#x", 1)),
    (QMP, "hmp info mtree  # any HMP command", HmpLine("info mtree", 5, passthrough=True)),
    (QMP, 'hmp echo "a #b"', HmpLine('echo "a #b"', 5, passthrough=True)),
    (HMP, "info status # what state", HmpLine("info status", 1, passthrough=True)),
    (HMP, "x/4x 0#1", HmpLine("x/4x 0#1", 1, passthrough=True)),
    # help and the shell's own commands
    (QMP, "help blockdev-add  # or: blockdev-add?", ShellCommand("help", ("blockdev-add",), 1)),
    (QMP, "blockdev-add?  # the same", ShellCommand("help", ("blockdev-add",), 1)),
    (QMP, "events filter A#B  # c", ShellCommand("events", ("filter", "A#B"), 1)),
    (QMP, "events filter 'a #b'", ShellCommand("events", ("filter", "a #b"), 1)),
    # '#' before a digit is the event number the pane prints, not a comment
    (QMP, "events show #12  # the STOP", ShellCommand("events", ("show", "#12"), 1)),
    (QMP, "#12 alone on a line", None),
    (QMP, "  #12 indented", None),
    (HMP, "format json  # for scripts", ShellCommand("format", ("json",), 1)),
    # raw JSON lines
    (
        QMP,
        '{"execute": "query-name", "id": "mine"}  # raw',
        RawJson({"execute": "query-name", "id": "mine"}),
    ),
    (QMP, '{"execute": "x", "id": "a #b"}', RawJson({"execute": "x", "id": "a #b"})),
    (
        QMP,
        '{"execute": "x", "arguments": {"k": [ "#" ]}} # c',
        RawJson({"execute": "x", "arguments": {"k": ["#"]}}),
    ),
]


@pytest.mark.parametrize(("syntax", "line", "expected"), CASES, ids=[c[1] for c in CASES])
def test_comment_rule(syntax: Syntax, line: str, expected: Request | None) -> None:
    assert syntax.parse(line) == expected


@pytest.mark.parametrize(
    "line",
    ["info spice  # x", "hmp info mtree # y", "help x # z", '{"execute": "q"}  # c', "q x=1 # c"],
)
def test_the_highlighter_marks_the_same_comment(line: str) -> None:
    tokens = QMP.tokenize(line)
    assert "".join(t.text for t in tokens) == line
    assert tokens[-1].kind == "comment" and tokens[-1].text == line[line.index(" #") + 1 :]


def test_nothing_is_completed_inside_a_comment() -> None:
    assert QMP.analyze("info spice  # sp").kind == "none"
    assert QMP.analyze("info sp").kind == "hmp-info"


def test_a_comment_keeps_error_columns_true() -> None:
    with pytest.raises(Exception) as info:
        QMP.parse('{"execute": 1}  # c')
    assert "col 1" in str(info.value)
