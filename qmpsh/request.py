"""What one line of input means, independent of how it will be typed or sent.

The parser (``syntax.py``) produces these; the schema (``schema.py``) types and
validates ``Command`` arguments; the session executes them.  Keeping the raw text
and columns of every argument lets later stages report errors at the right place
and re-type values once the schema says what a member is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Argument:
    """One ``key=value`` pair as typed.

    ``path`` is the dotted key split on dots (``a.b=1`` → ``("a", "b")``).
    ``text`` is the value with surrounding quotes removed; ``value`` is the
    schema-blind guess (int, float, bool, None, JSON/Python literal, else str).
    ``quoted`` records that the user quoted it, which always means a string.
    Columns are 1-based offsets into the line.
    """

    path: tuple[str, ...]
    text: str
    value: Any
    quoted: bool
    key_column: int
    value_column: int

    @property
    def key(self) -> str:
        return ".".join(self.path)

    @property
    def given(self) -> Any:
        """What a union's tag lookup sees: the text of a scalar, parsed JSON for a structure.

        One rule for the completer, the highlighter and validation, so a typed tag
        selects the same variant in all three.
        """
        return self.value if not self.quoted and isinstance(self.value, dict | list) else self.text


@dataclass(frozen=True)
class Command:
    """A QMP command in key=value form: ``device_add driver=e1000 id=net1``.

    ``oob`` is set by the ``oob`` prefix: the command goes as ``exec-oob``.
    """

    name: str
    arguments: tuple[Argument, ...] = ()
    column: int = 1
    oob: bool = False


@dataclass(frozen=True)
class Transaction:
    """``transaction( action k=v, action2 ... )``: each action is typed like a command."""

    actions: tuple[Command, ...]
    column: int = 1


@dataclass(frozen=True)
class RawJson:
    """A whole QMP message typed as JSON; sent as is (a user-given ``id`` is kept)."""

    message: dict[str, Any]


@dataclass(frozen=True)
class HmpLine:
    """A line for the human monitor (``hmp LINE``, ``info X``, or any line under ``-H``).

    ``passthrough`` is set when the user asked for HMP explicitly (``hmp LINE``,
    ``-H``): the line then always goes to ``human-monitor-command`` verbatim, even
    where an ``info X`` shortcut through a QMP query exists.
    """

    text: str
    column: int = 1
    passthrough: bool = False


@dataclass(frozen=True)
class ShellCommand:
    """One of qmpsh's own commands (``help``, ``exit``, ``events``, ``wait`` …).

    ``argv`` is split like a shell would (quotes respected) so each command's
    handler parses its own arguments.
    """

    name: str
    argv: tuple[str, ...] = field(default_factory=tuple)
    column: int = 1


Request = Command | Transaction | RawJson | HmpLine | ShellCommand
