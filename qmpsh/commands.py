"""What a shell command is, and the registry that holds them (help, exit, format, wait …).

A registry is built explicitly from a list of specs (``shell_commands.SHELL_COMMANDS``
is qmpsh's), so ``help``, completion and the parser's list of shell words all come
from one place and importing a module changes nothing.  Handlers get the session,
the ``argv`` the parser split and the renderer of the request's output; they return
an exit status (0 ok, 1 failed) like a QMP command would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from qmpsh.render import Renderer
    from qmpsh.session import Session

Handler = Callable[["Session", tuple[str, ...], "Renderer"], int]


class ShellCommandSpec(NamedTuple):  # not a frozen dataclass: ~0.4 ms less at every start
    """What the registry knows of one shell command."""

    name: str
    usage: str
    summary: str
    handler: Handler
    arguments: tuple[str, ...] = ()  # words offered by completion after the name


class Registry:
    """Shell commands by name; QMP command names are never shadowed (see ``names``)."""

    def __init__(self, specs: Iterable[ShellCommandSpec]) -> None:
        self._commands = {spec.name: spec for spec in specs}

    def names(self, qmp_commands: frozenset[str] = frozenset()) -> frozenset[str]:
        """Shell words, minus any a connected QEMU also defines as a QMP command."""
        return frozenset(n for n in self._commands if n not in qmp_commands)

    def get(self, name: str) -> ShellCommandSpec | None:
        return self._commands.get(name)

    def specs(self) -> list[ShellCommandSpec]:
        return sorted(self._commands.values(), key=lambda s: s.name)
