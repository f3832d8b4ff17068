"""Bring a lost connection back: a new client, retried with back-off, swapped into the session.

A ``QmpClient`` makes one connection in its life (its reader thread, ids and failure
belong to that one socket), so reconnecting means a new client.  It takes over the
old client's listeners *before* it connects, so not even an event QEMU sends right
after its greeting is missed, and the transcript and ``--events`` file go on.

The delays double from 0.1 s to 5 s: a QEMU being restarted is usually back within a
second, and one that takes minutes is not hammered.  ``stop`` (set by Ctrl-C in the
shell) ends the wait at once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from qmpsh.client import QmpClient
from qmpsh.errors import ConnectError, QmpshError

if TYPE_CHECKING:
    from qmpsh.session import Session

FIRST_DELAY = 0.1
MAX_DELAY = 5.0
DEFAULT_ATTEMPTS = 20  # about 75 s in all with the delays above

Progress = Callable[[int, QmpshError], None]


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
) -> QmpClient:
    """Connect a new client to the session's address and swap it in; ``None`` tries for ever.

    Raises ``ConnectError`` naming the last failure when every attempt failed or
    ``stop`` was set; the session keeps its old (dead) client then.
    """
    old = session.client
    stop = stop if stop is not None else threading.Event()
    last: QmpshError | None = None
    waits = delays()
    attempt = 0
    while attempts is None or attempt < attempts:
        attempt += 1
        try:
            client = _connect_like(old)
        except QmpshError as e:
            last = e
            if progress is not None:
                progress(attempt, e)
            if stop.wait(next(waits)):
                raise ConnectError(f"reconnect to {old.address} stopped") from None
            continue
        session.replace_client(client)
        return client
    raise ConnectError(f"could not reconnect to {old.address} in {attempt} attempts: {last}")


def _connect_like(old: QmpClient) -> QmpClient:
    """A new client for ``old``'s address, timeout and negotiation, with its listeners."""
    client = type(old)(old.address, timeout=old.timeout)  # the same dialect (QMP, qemu-ga)
    client.inherit_listeners(old)
    client.connect(negotiate=old.negotiates)
    return client
