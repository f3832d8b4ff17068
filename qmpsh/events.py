"""The event log: every QMP event the client reads, filtered, counted and explained.

The client's reader thread appends; the UI pane, ``events`` commands and a script's
``wait`` read.  Memory holds a bounded window (a guest can emit ~8k events/s), while
per-name counters and the optional JSON-lines file keep the complete record.  Known
chains of cause and effect (a BLOCK_IO_ERROR with ``action=stop`` and the STOP right
after it, a WATCHDOG and the RESET it triggers) are linked as they arrive, because
later nobody can tell which STOP was the user's and which was the disk's.

One-line summaries live in ``event_summary`` and are re-exported here.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from typing import IO, TYPE_CHECKING, Any, NamedTuple

from qmpsh.errors import InputError
from qmpsh.event_summary import (
    SpiceChannelState,
    SpiceSession,
    as_text,
    event_data,
    event_name,
    format_spice_sessions,
    iter_flat,
    severity,
    spice_sessions,
    summarize,
)

if TYPE_CHECKING:
    from qmpsh.outfiles import OutputFile

__all__ = [
    "EventFilter",
    "EventLog",
    "JsonLinesWriter",
    "LoggedEvent",
    "SpiceChannelState",
    "SpiceSession",
    "format_spice_sessions",
    "severity",
    "spice_sessions",
    "summarize",
]

FOLLOW_UP_WINDOW = 1.0  # seconds between a cause and the run-state change it implies

# Terms are separated by blanks or commas; a quoted value may contain either.
_TERM = re.compile(r"""(?:"[^"]*"|'[^']*'|[^\s,"'])+|["']""")
_GLOB = re.compile(r"[A-Za-z0-9_*?\[\]!-]+")
_PATH = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*")
_MISSING = object()


# --------------------------------------------------------------------------- filters


class _Predicate(NamedTuple):  # not a frozen dataclass: ~0.3 ms less at every start
    path: tuple[str, ...]
    pattern: str
    negated: bool

    def matches(self, data: Any) -> bool:
        values = _candidates(data, self.path)
        if not values:
            return self.negated
        hit = any(self._hit(as_text(v)) for v in values)
        return hit != self.negated

    def _hit(self, text: str) -> bool:
        # Equality first: QOM paths such as device[9] would otherwise read as a glob class.
        return text == self.pattern or fnmatch.fnmatchcase(text, self.pattern)

    def __str__(self) -> str:
        op = "!=" if self.negated else "="
        value = self.pattern
        if not value or any(c in value for c in " ,\"'"):
            value = json.dumps(value)
        return f"{'.'.join(self.path)}{op}{value}"


def _candidates(data: Any, path: tuple[str, ...]) -> list[Any]:
    """The field at ``path``, else every nested field whose dotted path ends with it.

    So ``channel-type=1`` finds ``client.channel-type`` without the user knowing the
    nesting, while ``client.host`` still pins one exact place.
    """
    exact = _lookup(data, path)
    if exact is not _MISSING:
        return [exact]
    suffix = "." + ".".join(path)
    return [value for key, value in iter_flat(data) if key.endswith(suffix)]


def _lookup(data: Any, path: tuple[str, ...]) -> Any:
    """Follow a dotted path through dicts (and lists, by index)."""
    for key in path:
        if isinstance(data, dict) and key in data:
            data = data[key]
        elif isinstance(data, list) and key.isdigit() and int(key) < len(data):
            data = data[int(key)]
        else:
            return _MISSING
    return data


@dataclass(frozen=True)
class EventFilter:
    """Which events to show or wait for: ``SPICE_* !JOB_STATUS_CHANGE action=stop``.

    An event passes if its name matches any positive glob (or there is none) and no
    negated glob, and every ``path=value`` predicate holds on its data.  Values are
    compared as text and may be globs, so ``channel-type=1`` matches 1 and "1"; a
    path that is not at the top of the data matches any nested field ending with it.
    ``path!=value`` passes when the field differs or is absent.
    """

    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    predicates: tuple[_Predicate, ...] = ()

    @classmethod
    def parse(cls, spec: str) -> EventFilter:
        include: list[str] = []
        exclude: list[str] = []
        predicates: list[_Predicate] = []
        for match in _TERM.finditer(spec):
            term, column = match.group(), match.start() + 1
            if term in ('"', "'"):
                raise InputError("unterminated quote in event filter", column)
            if "=" in term:
                predicates.append(_parse_predicate(term, column))
            elif term == "!":
                raise InputError("'!' needs an event name or glob after it", column)
            elif term.startswith("!"):
                exclude.append(_check_glob(term[1:], column + 1))
            else:
                include.append(_check_glob(term, column))
        return cls(tuple(include), tuple(exclude), tuple(predicates))

    def matches(self, event: dict[str, Any]) -> bool:
        name = event_name(event).upper()
        if self.include and not any(fnmatch.fnmatchcase(name, g) for g in self.include):
            return False
        if any(fnmatch.fnmatchcase(name, g) for g in self.exclude):
            return False
        data = event.get("data", {})
        return all(p.matches(data) for p in self.predicates)

    def __bool__(self) -> bool:
        return bool(self.include or self.exclude or self.predicates)

    def __str__(self) -> str:
        terms = [*self.include, *(f"!{g}" for g in self.exclude), *map(str, self.predicates)]
        return " ".join(terms)


def _check_glob(glob: str, column: int) -> str:
    """Event names are upper-case identifiers; globs match them case-insensitively."""
    if not _GLOB.fullmatch(glob) or glob.count("[") != glob.count("]"):
        raise InputError(f"not an event name or glob: {glob!r}", column)
    return glob.upper()


def _parse_predicate(term: str, column: int) -> _Predicate:
    key, _, value = term.partition("=")
    negated = key.endswith("!")
    key = key.removesuffix("!")
    if not key:
        raise InputError("event filter needs a field name before '='", column)
    if not _PATH.fullmatch(key):
        raise InputError(f"not a field path: {key!r}", column)
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        value = value[1:-1]
    elif any(q in value for q in "\"'"):
        raise InputError(f"misplaced quote in {term!r}", column)
    return _Predicate(tuple(key.split(".")), value, negated)


# ----------------------------------------------------------------------------- log


class LoggedEvent(NamedTuple):
    """One event as filed: ``seq`` is stable for ``events show N`` across window trims.

    A NamedTuple, not a frozen dataclass: one is built per event (thousands a second in
    a flood), and a NamedTuple is built several times faster, and at import too.
    """

    seq: int
    event: dict[str, Any]
    caused_by: str | None
    received: float  # the log's clock (monotonic by default)
    cause_seq: int | None = None

    @property
    def name(self) -> str:
        return event_name(self.event)

    def summary(self) -> str:
        return summarize(self.event, caused_by=self.caused_by)

    def numbered(self) -> str:
        """``#N`` and the summary: the N a user reads is the one ``events show N`` takes."""
        return f"#{self.seq} {self.summary()}"


class _Pending(NamedTuple):
    """A cause waiting for its effect (the STOP after a stopping BLOCK_IO_ERROR)."""

    label: str
    seq: int
    since: float
    targets: frozenset[str] = frozenset()


def _expected_effects(event: dict[str, Any]) -> frozenset[str]:
    name, action = event.get("event"), event_data(event).get("action")
    if name == "BLOCK_IO_ERROR" and action == "stop":
        return frozenset({"STOP"})
    if name == "WATCHDOG":
        effects = {"reset": {"RESET"}, "pause": {"STOP"}, "shutdown": {"POWERDOWN", "SHUTDOWN"}}
        return frozenset(effects.get(str(action), set()))
    return frozenset()


def _cause_label(event: dict[str, Any]) -> str:
    data = event_data(event)
    if event.get("event") == "BLOCK_IO_ERROR":
        subject = data.get("device") or data.get("node-name") or "?"
    else:
        subject = data.get("action", "")
    return f"{event_name(event)} {as_text(subject)}".strip()


class EventLog:
    """Thread-safe, bounded event history with complete per-name counters.

    ``clear()`` empties the window only: counters and sequence numbers go on, so
    ``events stats`` stays a true tally of the session and ``events show N`` never
    shows a different event under an old number.
    """

    def __init__(
        self, capacity: int = 10_000, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._window: deque[LoggedEvent] = deque(maxlen=capacity)
        self._counts: Counter[str] = Counter()
        self._cond = threading.Condition()
        self._listeners: list[Callable[[LoggedEvent], None]] = []
        self._pending: dict[str, _Pending] = {}
        self._last_seq = 0
        self._clock = clock

    @property
    def last_seq(self) -> int:
        """The newest sequence number handed out (0 before any event): a ``wait`` bookmark."""
        with self._cond:
            return self._last_seq

    def append(self, event: dict[str, Any]) -> LoggedEvent:
        """File one event; listeners run afterwards, on this (the reader's) thread."""
        with self._cond:
            logged = self._file(event)
            listeners = list(self._listeners)
            self._cond.notify_all()
        for callback in listeners:
            callback(logged)
        return logged

    def _file(self, event: dict[str, Any]) -> LoggedEvent:
        now = self._clock()
        name = event_name(event)
        self._last_seq += 1
        cause = self._pending.pop(name, None)
        linked = cause is not None and now - cause.since <= FOLLOW_UP_WINDOW
        if cause is not None:
            self._drop_pending(cause)  # one effect per cause, and only the first of its kind
        logged = LoggedEvent(
            self._last_seq,
            event,
            cause.label if linked and cause else None,
            now,
            cause.seq if linked and cause else None,
        )
        self._expect(logged, now)
        self._window.append(logged)
        self._counts[name] += 1
        return logged

    def _expect(self, logged: LoggedEvent, now: float) -> None:
        targets = _expected_effects(logged.event)
        if targets:
            pending = _Pending(_cause_label(logged.event), logged.seq, now, targets)
            for target in targets:
                self._pending[target] = pending

    def _drop_pending(self, cause: _Pending) -> None:
        for target in cause.targets:
            if self._pending.get(target) is cause:
                del self._pending[target]

    def add_listener(self, callback: Callable[[LoggedEvent], None]) -> None:
        """Called for each new event on the appending thread; it must be quick and not raise."""
        with self._cond:
            self._listeners.append(callback)

    def listen(self, callback: Callable[[LoggedEvent], None]) -> None:
        """``add_listener``, but first ``callback`` gets the events already in the window.

        Under the lock that filing takes, so every event reaches ``callback`` once and
        in order: the shell starts listening only after it has connected and loaded
        prompt_toolkit, and what came meanwhile is shown, not skipped.
        """
        with self._cond:
            for logged in self._window:
                callback(logged)
            self._listeners.append(callback)

    def recent(self, n: int | None = None, flt: EventFilter | None = None) -> list[LoggedEvent]:
        """The newest ``n`` events of the window that pass ``flt``, oldest first."""
        with self._cond:
            items = list(self._window)
        if flt:
            items = [e for e in items if flt.matches(e.event)]
        return items if n is None else items[-n:] if n > 0 else []

    def get(self, seq: int) -> LoggedEvent | None:
        with self._cond:
            if not self._window:
                return None
            index = seq - self._window[0].seq
            return self._window[index] if 0 <= index < len(self._window) else None

    def stats(self) -> dict[str, int]:
        """Counts per event name since the log began, including events trimmed or cleared."""
        with self._cond:
            return dict(self._counts)

    def clear(self) -> None:
        with self._cond:
            self._window.clear()

    def __len__(self) -> int:
        with self._cond:
            return len(self._window)

    def wait_for(
        self, flt: EventFilter, timeout: float | None, *, after_seq: int | None = None
    ) -> LoggedEvent | None:
        """The first matching event newer than ``after_seq`` (default: now), or None.

        Passing the ``last_seq`` read before sending a command means an event that
        arrives before ``wait`` is called still counts.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            cursor = self._last_seq if after_seq is None else after_seq
            while True:
                found = self._first_match(flt, cursor)
                if found is not None:
                    return found
                cursor = self._last_seq
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)

    def _first_match(self, flt: EventFilter, after_seq: int) -> LoggedEvent | None:
        if not self._window or after_seq >= self._last_seq:
            return None
        start = max(after_seq + 1 - self._window[0].seq, 0)
        return next((e for e in islice(self._window, start, None) if flt.matches(e.event)), None)


# -------------------------------------------------------------------------- writer


class JsonLinesWriter:
    """One compact JSON object per line, written at once: the complete on-disk record.

    A path is opened through ``outfiles`` (appending, private 0600, no symlinks, only
    a regular file of ours): events name hosts, ports and certificate subjects.  A
    full disk is reported at once and counted (``loss()``), never raised into the
    reader thread.  A stream passed in (stderr) is left open by ``close()``.
    """

    def __init__(self, target: str | os.PathLike[str] | IO[str]) -> None:
        self._lock = threading.Lock()
        self._file: OutputFile | None = None
        self._stream: IO[str] | None = None
        if isinstance(target, str | os.PathLike):
            from qmpsh.outfiles import OutputFile

            self._file = OutputFile(target, "events file")
        else:
            self._stream = target
        self.closed = False

    def write(self, message: dict[str, Any]) -> None:
        line = json.dumps(message, separators=(",", ":"), ensure_ascii=False)
        if self._file is not None:
            if self.closed:
                raise ValueError("JsonLinesWriter is closed")
            from qmpsh.outfiles import json_line

            self._file.write(json_line(line, lambda: json.dumps(message, separators=(",", ":"))))
            return
        with self._lock:
            if self.closed:
                raise ValueError("JsonLinesWriter is closed")
            assert self._stream is not None
            if not line.isascii():  # a lone surrogate cannot reach a UTF-8 stream
                line = line.encode("utf-8", "backslashreplace").decode("utf-8")
            self._stream.write(line + "\n")
            self._stream.flush()

    def loss(self) -> str | None:
        """What a full disk cost, for the end of the run (None: nothing lost)."""
        return self._file.loss() if self._file is not None else None

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
            self.closed = True

    def __enter__(self) -> JsonLinesWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
