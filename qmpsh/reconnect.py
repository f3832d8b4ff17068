"""Bring a lost connection back: a new monitor, retried with back-off, swapped into the session.

A monitor makes one connection in its life (a ``QmpClient``'s reader thread, ids and
failure belong to that one socket), so reconnecting means a new monitor of the same
kind (``monitor.reopen``).  It takes over the old one's listeners *before* it
connects, so not even an event QEMU sends right after its greeting is missed, and
the transcript and ``--events`` file go on.  The session then tells its client
listeners (the shell's toolbar, completion's live values).

The delays double from 0.1 s to 5 s: a QEMU being restarted is usually back within a
second, and one that takes minutes is not hammered.  ``stop`` (set by Ctrl-C in the
shell) ends the wait at once.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, NamedTuple

from qmpsh.errors import ConnectError, QmpshError
from qmpsh.monitor import connect, reopen

if TYPE_CHECKING:
    from qmpsh.monitor import Monitor
    from qmpsh.session import Session

FIRST_DELAY = 0.1
MAX_DELAY = 5.0
DEFAULT_ATTEMPTS = 20  # about 75 s in all with the delays above

Progress = Callable[[int, QmpshError], None]


class Attempt(NamedTuple):
    """The last failed try of a reconnect under way, for the shell's toolbar."""

    number: int
    error: str
    delay: float  # seconds until the next try


_ATTEMPTS: weakref.WeakKeyDictionary[Session, Attempt] = weakref.WeakKeyDictionary()
_WATCHERS: weakref.WeakKeyDictionary[Session, list[Callable[[], None]]] = (
    weakref.WeakKeyDictionary()
)


def last_attempt(session: Session) -> Attempt | None:
    """The failed try a reconnect of ``session`` is waiting after, if one is under way."""
    return _ATTEMPTS.get(session)


def watch_attempts(session: Session, callback: Callable[[], None]) -> None:
    """Call ``callback`` (on the reconnecting thread) whenever ``last_attempt`` changes."""
    _WATCHERS.setdefault(session, []).append(callback)


def _note(session: Session, attempt: Attempt | None) -> None:
    if attempt is None:
        _ATTEMPTS.pop(session, None)
    else:
        _ATTEMPTS[session] = attempt
    for callback in _WATCHERS.get(session, []):
        callback()


def delays(first: float = FIRST_DELAY, maximum: float = MAX_DELAY) -> Iterator[float]:
    """0.1, 0.2, 0.4 … then ``maximum`` for ever."""
    delay = first
    while True:
        yield delay
        delay = min(delay * 2, maximum)


def reconnect(
    session: Session,
    *,
    attempts: int | None = DEFAULT_ATTEMPTS,
    stop: threading.Event | None = None,
    progress: Progress | None = None,
) -> Monitor:
    """Connect a new monitor to the session's address and swap it in; ``None`` tries for ever.

    Raises ``ConnectError`` naming the last failure when every attempt failed or
    ``stop`` was set; the session keeps its old (dead) client then.
    """
    stop = stop if stop is not None else threading.Event()
    try:
        return _attempt_until_connected(session, attempts, stop, progress, delays())
    finally:
        _note(session, None)


def _attempt_until_connected(  # each failed try is noted for the shell's toolbar
    session: Session,
    attempts: int | None,
    stop: threading.Event,
    progress: Progress | None,
    waits: Iterator[float],
) -> Monitor:
    old = session.client
    last: QmpshError | None = None
    attempt = 0
    while attempts is None or attempt < attempts:
        attempt += 1
        try:
            client = reopen(old)
            connect(client, negotiate=old.negotiates)  # through its ssh forward, if any
        except QmpshError as e:
            last = e
            if progress is not None:
                progress(attempt, e)
            delay = next(waits)
            _note(session, Attempt(attempt, str(e), delay))
            if stop.wait(delay):
                raise ConnectError(f"reconnect to {old.address} stopped") from None
            continue
        session.replace_client(client)
        return client
    raise ConnectError(f"could not reconnect to {old.address} in {attempt} attempts: {last}")
