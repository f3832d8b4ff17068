"""Several targets at once: one session per target, by name, one of them current.

Every target — a QMP socket, later a libvirt domain, an ssh-forwarded socket or the
guest agent — gets a ``Session`` of its own (its monitor, schema, event log, wait
mark), so nothing a request needs is shared between targets and a request runs on
one target exactly as it does today.  This container is what several-target
frontends stand on:

- fan-out (``qmpsh T1 T2 … -c CMD``, scripts): ``fan_out`` runs a piece of work on
  every session at once, one thread per target (each keeps its own line order), and
  ends with the worst status; one dead target does not stop the others;
- the interactive shell (``connect ADDRESS [as NAME]``, ``use NAME``, ``@NAME CMD``,
  ``targets``, ``disconnect NAME``): ``add``, ``use``, ``get``, ``remove`` and
  ``current``, the session the prompt's requests go to.

Today the command line makes one session and no container; this is the seam the
reach work plugs into.  How the rest fits, by design:

- the target commands (``connect``, ``use``, ``targets``, ``disconnect``) are shell
  commands made by the frontend that owns the container, as closures over it, and
  added to the registry every session is given (``Registry([*SHELL_COMMANDS.specs(),
  *target_commands(targets)])``): registries are explicit, so no global changes;
- ``@NAME CMD`` is the frontend's: it takes the prefix off and runs ``CMD`` with
  ``targets.get(NAME).run_line``; the prompt shows ``current_name``;
- with more than one target, output and events are tagged with the target's name:
  each session renders into an ``Output`` of its own (``Session.run(output=…)``),
  which the fan-out frontend prefixes, and each session's event log listener adds
  ``"target"`` before the shared pane and ``--events`` file see the event.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from qmpsh.errors import (
    EXIT_COMMAND_ERROR,
    EXIT_CONNECTION,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    InputError,
    QmpshError,
)

if TYPE_CHECKING:
    from qmpsh.session import Session

# Worst last: a lost target outranks a wait that timed out, which outranks bad input …
_SEVERITY = (EXIT_OK, EXIT_COMMAND_ERROR, EXIT_USAGE, EXIT_TIMEOUT, EXIT_CONNECTION)

Work = Callable[[str, "Session"], int]


def worst(statuses: Iterable[int]) -> int:
    """The exit status of several targets: 3 > 4 > 2 > 1 > 0 (unknown codes count as 3)."""

    def rank(status: int) -> int:
        return _SEVERITY.index(status) if status in _SEVERITY else len(_SEVERITY)

    found = [EXIT_OK, *statuses]
    top = max(found, key=rank)
    return top if top in _SEVERITY else EXIT_CONNECTION


class Targets:
    """Named sessions; the first added is current until ``use`` picks another."""

    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}
        self._current: str | None = None

    def add(self, name: str, session: Session) -> None:
        if not name or name in self._sessions:
            raise InputError(f"a target named '{name}' already exists" if name else "no name")
        self._sessions[name] = session
        if self._current is None:
            self._current = name

    def get(self, name: str) -> Session:
        session = self._sessions.get(name)
        if session is None:
            known = ", ".join(self._sessions) or "none"
            raise InputError(f"no target named '{name}' (targets: {known})")
        return session

    def use(self, name: str) -> Session:
        """Make ``name`` the target the prompt's requests go to."""
        session = self.get(name)
        self._current = name
        return session

    @property
    def current_name(self) -> str | None:
        return self._current

    @property
    def current(self) -> Session:
        if self._current is None:
            raise InputError("no target: connect to one first")
        return self._sessions[self._current]

    def remove(self, name: str) -> Session:
        """Forget ``name`` and close its monitor; the next one becomes current."""
        session = self.get(name)
        del self._sessions[name]
        if self._current == name:
            self._current = next(iter(self._sessions), None)
        session.client.close()
        return session

    def __iter__(self) -> Iterator[tuple[str, Session]]:
        return iter(list(self._sessions.items()))

    def __len__(self) -> int:
        return len(self._sessions)

    def close(self) -> None:
        for _, session in self:
            session.client.close()

    def fan_out(self, work: Work) -> dict[str, int]:
        """Run ``work(name, session)`` on every target at once; each one's status.

        A target whose work raises (its connection is lost, a wait timed out) gets that
        error's exit code; the others are not disturbed.  Returns when all are done.
        """
        statuses: dict[str, int] = {}
        threads = [
            threading.Thread(
                target=_run_one, args=(work, name, session, statuses), name=f"target-{name}"
            )
            for name, session in self
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return statuses


def _run_one(work: Work, name: str, session: Session, statuses: dict[str, int]) -> None:
    try:
        statuses[name] = work(name, session)
    except QmpshError as exc:
        session.error(str(exc))
        statuses[name] = exc.exit_code
