"""The README's promises, checked: its input-language examples parse and type.

The README is the front door; an example there that the parser rejects, or that
the connected QEMU's schema would refuse, is a bug in one or the other.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from qmpsh.request import Command, HmpLine, RawJson, ShellCommand, Transaction
from qmpsh.schema import Schema
from qmpsh.syntax import parse
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


def test_the_readme_has_input_examples() -> None:
    assert len(input_examples()) >= 10


@pytest.mark.parametrize("line", input_examples())
def test_each_input_example_parses_and_types(line: str, schema: Schema) -> None:
    request = parse(line, shell_commands=SHELL_WORDS)
    assert request is not None
    if isinstance(request, Command):
        type_command(request, schema)  # raises InputError if the schema would refuse it
    elif isinstance(request, Transaction):
        assert len(type_transaction(request, schema)) >= 2
    else:
        assert isinstance(request, RawJson | HmpLine | ShellCommand)
