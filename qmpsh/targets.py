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

How the rest fits:

- fan-out (``fanout``, driven from ``cli``) runs each target's connect and script on
  a thread of its own rather than through ``fan_out``, so a target starts its script
  as soon as it is connected; its output is tagged by ``fanout.TaggedRenderer``;
- the target commands (``target_commands``) are shell commands made by the frontend
  that owns the container, as closures over it, and added to the registry every
  session of that shell is given: registries are explicit, so no global changes;
- ``@NAME CMD`` is the frontend's: ``split_at_target`` takes the prefix off and the
  rest runs on ``get(NAME)``; the prompt shows ``current_name``;
- every target keeps its own event log (``wait`` and ``events show N`` stay per
  target); ``recent_events`` is the one place that merges them for the pane and
  tags them (``TaggedEvent``) once there is more than one target;
- what must follow ``use`` (the completer, the lexer, the shell's own state) reads
  the session through ``CurrentSession``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from qmpsh.errors import (
    EXIT_COMMAND_ERROR,
    EXIT_CONNECTION,
    EXIT_OK,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    InputError,
    QmpshError,
)
from qmpsh.visible import visible

if TYPE_CHECKING:
    from qmpsh.events import LoggedEvent
    from qmpsh.session import Session

# Worst last: a lost target outranks a wait that timed out, which outranks bad input …
_SEVERITY = (EXIT_OK, EXIT_COMMAND_ERROR, EXIT_USAGE, EXIT_TIMEOUT, EXIT_CONNECTION)

Work = Callable[[str, "Session"], int]
AddedListener = Callable[[str, "Session"], None]
NAME = re.compile(r"[\w.:-]+")  # what `connect … as NAME` accepts: one word, no '@'


def split_at_target(text: str) -> tuple[str | None, str]:
    """``@NAME COMMAND`` → ``(NAME, COMMAND)``; any other line → ``(None, line)``."""
    stripped = text.lstrip()
    if not stripped.startswith("@"):
        return None, text
    name, _, rest = stripped[1:].partition(" ")
    if not name or not rest.strip():
        raise InputError("usage: @NAME COMMAND (a one-off on target NAME)", 1)
    return name, rest.lstrip()


class TaggedEvent(NamedTuple):
    """An event as the pane shows it: named by its target once there are several."""

    target: str | None
    logged: LoggedEvent

    @property
    def event(self) -> dict[str, Any]:
        return self.logged.event

    def numbered(self) -> str:
        """``#N summary``, after ``NAME: `` when tagged; N is that target's ``events show N``."""
        text = self.logged.numbered()
        return text if self.target is None else f"{visible(self.target)}: {text}"


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
        self._added: list[AddedListener] = []
        self._changed: list[Callable[[], None]] = []
        self._seen: dict[str, int] = {}  # each target's last event seq when it was left

    def add(self, name: str, session: Session) -> None:
        if not name or name in self._sessions:
            raise InputError(f"a target named '{name}' already exists" if name else "no name")
        self._sessions[name] = session
        self._seen[name] = session.events.last_seq
        for listener in list(self._added):
            listener(name, session)
        if self._current is None:
            self.use(name)

    def watch(self, added: AddedListener, changed: Callable[[], None] | None = None) -> None:
        """Call ``added(name, session)`` for every target, now and when one is added, and
        ``changed()`` whenever the current target changes (on the thread that changed it)."""
        self._added.append(added)
        if changed is not None:
            self._changed.append(changed)
        for name, session in self:
            added(name, session)

    def name_for(self, wanted: str) -> str:
        """``wanted``, or ``wanted-2``, ``wanted-3`` … if that name is taken."""
        name, n = wanted, 1
        while name in self._sessions:
            n += 1
            name = f"{wanted}-{n}"
        return name

    def unseen(self, name: str) -> int:
        """Events of ``name`` since it was last the current target (0 for the current one)."""
        if name == self._current:
            return 0
        return self.get(name).events.last_seq - self._seen.get(name, 0)

    def recent_events(self, count: int) -> list[TaggedEvent]:
        """The newest ``count`` events of every target (each through its own filter), in
        the order they came, tagged with the target's name once there are several."""
        several = len(self._sessions) > 1
        merged = [
            TaggedEvent(name if several else None, logged)
            for name, session in self
            for logged in session.events.recent(count, session.event_filter)
        ]
        merged.sort(key=lambda tagged: tagged.logged.received)
        return merged[-count:] if count > 0 else []

    def get(self, name: str) -> Session:
        session = self._sessions.get(name)
        if session is None:
            known = ", ".join(self._sessions) or "none"
            raise InputError(f"no target named '{name}' (targets: {known})")
        return session

    def use(self, name: str) -> Session:
        """Make ``name`` the target the prompt's requests go to."""
        session = self.get(name)
        if self._current is not None and self._current in self._sessions:
            self._seen[self._current] = self.get(self._current).events.last_seq
        self._current = name
        for listener in list(self._changed):
            listener()
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
        if self._current == name:  # first, so that no reader finds a current that is gone
            following = next((other for other in self._sessions if other != name), None)
            if following is None:
                self._current = None
            else:
                self.use(following)
        del self._sessions[name]
        close_session(session)
        return session

    def __iter__(self) -> Iterator[tuple[str, Session]]:
        return iter(list(self._sessions.items()))

    def __len__(self) -> int:
        return len(self._sessions)

    def close(self) -> None:
        for _, session in self:
            close_session(session)

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


class CurrentSession:
    """Stands for the current target's session, for what must follow ``use``.

    The completer and the lexer read the session through getters (``session.schema``,
    ``session.client``, ``session.syntax``); given this instead, they read the current
    target's.  A client listener added here hears every target's reconnects and every
    change of the current target: to the completer both mean "another QEMU now".
    """

    def __init__(self, targets: Targets) -> None:
        self._targets = targets

    def __getattr__(self, name: str) -> Any:
        return getattr(self._targets.current, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "_targets":
            object.__setattr__(self, name, value)
        else:  # `events off`, F2: what is set is the current target's
            setattr(self._targets.current, name, value)

    def add_client_listener(self, callback: Callable[[Any], None]) -> None:
        targets = self._targets
        targets.watch(
            lambda name, session: session.add_client_listener(callback),
            lambda: callback(targets.current.client),
        )


def close_session(session: Session) -> None:
    """Close a target's monitor, and its ssh forward if it has one."""
    from qmpsh.monitor import forward_of

    session.client.close()
    forward = forward_of(session.client)
    if forward is not None:
        forward.close()
