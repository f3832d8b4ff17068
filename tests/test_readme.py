"""The README's promises, checked: its input-language examples parse and type.

The README is the front door; an example there that the parser rejects, or that
the connected QEMU's schema would refuse, is a bug in one or the other.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from qemu import Qemu, RawMonitor

from qmpsh.fds import split_file
from qmpsh.request import Command, HmpLine, RawJson, ShellCommand, Transaction
from qmpsh.schema import Schema
from qmpsh.syntax import Syntax
from qmpsh.validate import type_command, type_transaction

README = Path(__file__).parent.parent / "README.md"
SHELL_WORDS = ("help", "exit", "format", "events", "wait", "spice", "reconnect")


def input_examples() -> list[str]:
    """Lines of the code block that follows the heading 'The input language'."""
    text = README.read_text()
    section = text[text.index("## The input language") :]
    block = re.search(r"```\n(.*?)```", section, re.S)
    assert block is not None
    return [line.split("  #")[0].rstrip() for line in block.group(1).splitlines() if line]


@pytest.fixture(scope="module")
def schema() -> Iterator[Schema]:
    with Qemu() as q, RawMonitor(q.socket) as mon:
        entries: list[dict[str, Any]] = mon.execute("query-qmp-schema")
        yield Schema.from_entries(entries)


def test_the_readme_has_input_examples() -> None:
    assert len(input_examples()) >= 10


@pytest.mark.parametrize("line", input_examples())
def test_each_input_example_parses_and_types(line: str, schema: Schema) -> None:
    request = Syntax(shell_words=SHELL_WORDS).parse(line)
    assert request is not None
    if isinstance(request, Command):
        request, _ = split_file(request)  # file= is qmpsh's, as in Session.run
        type_command(request, schema)  # raises InputError if the schema would refuse it
    elif isinstance(request, Transaction):
        assert len(type_transaction(request, schema)) >= 2
    else:
        assert isinstance(request, RawJson | HmpLine | ShellCommand)
