"""The registry of qmpsh's own commands (help, exit, format, events, wait …).

One decorator registers a handler together with its usage and one-line help, so
``help``, completion and the parser's list of shell words all come from the same
place and cannot disagree.  Handlers get the session and the ``argv`` the parser
split; they return an exit status (0 ok, 1 failed) like a QMP command would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from qmpsh.session import Session

Handler = Callable[["Session", tuple[str, ...]], int]


class ShellCommandSpec(NamedTuple):  # not a frozen dataclass: ~0.4 ms less at every start
    """What the registry knows of one shell command."""

    name: str
    usage: str
    summary: str
    handler: Handler
    arguments: tuple[str, ...] = ()  # words offered by completion after the name
    interactive_only: bool = False


class Registry:
    """Shell commands by name; QMP command names are never shadowed (checked on lookup)."""

    def __init__(self) -> None:
        self._commands: dict[str, ShellCommandSpec] = {}

    def command(
        self,
        name: str,
        usage: str,
        summary: str,
        *,
        arguments: tuple[str, ...] = (),
        interactive_only: bool = False,
    ) -> Callable[[Handler], Handler]:
        """Decorator: register ``handler`` as the shell command ``name``."""

        def register(handler: Handler) -> Handler:
            self._commands[name] = ShellCommandSpec(
                name, usage, summary, handler, arguments, interactive_only
            )
            return handler

        return register

    def names(self, qmp_commands: frozenset[str] = frozenset()) -> frozenset[str]:
        """Shell words, minus any a connected QEMU also defines as a QMP command."""
        return frozenset(n for n in self._commands if n not in qmp_commands)

    def get(self, name: str) -> ShellCommandSpec | None:
        return self._commands.get(name)

    def specs(self) -> list[ShellCommandSpec]:
        return sorted(self._commands.values(), key=lambda s: s.name)


REGISTRY = Registry()
