"""Who hears that a made connection was lost: each listener once, however late it came.

Both monitors (the QMP socket's and libvirt's) keep their disconnect listeners here, so
the rule lives in one place.  A listener added before the loss is told when it happens;
one added after it is told at once: the interactive shell starts listening only once
prompt_toolkit has loaded, and a connection that died meanwhile must still be reported.
Never both, never neither: the loss and the list are read under one lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, MutableSequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qmpsh.errors import QmpshError

__all__ = ["DisconnectListener", "LossListeners"]

DisconnectListener = Callable[["QmpshError"], None]


class LossListeners:
    """The disconnect listeners of one monitor; a listener's failure becomes a note."""

    def __init__(self, notes: MutableSequence[str]) -> None:
        self._notes = notes
        self._lock = threading.Lock()
        self._listeners: list[DisconnectListener] = []
        self._lost: QmpshError | None = None

    def add(self, listener: DisconnectListener) -> None:
        with self._lock:
            lost = self._lost
            if lost is None:
                self._listeners.append(listener)
                return
        self._call([listener], lost)

    def tell(self, failure: QmpshError) -> None:
        """The made connection is lost: tell every listener (only the first call does)."""
        with self._lock:
            if self._lost is not None:
                return
            self._lost = failure
            listeners = list(self._listeners)
        self._call(listeners, failure)

    def take_over(self, old: LossListeners) -> None:
        """``old``'s listeners too (a reconnect's new monitor), none of them twice."""
        with old._lock:
            theirs = list(old._listeners)
        with self._lock:
            self._listeners.extend(x for x in theirs if x not in self._listeners)

    def _call(self, listeners: list[DisconnectListener], failure: QmpshError) -> None:
        for listener in listeners:
            try:
                listener(failure)
            except Exception as e:
                self._notes.append(f"disconnect listener failed: {type(e).__name__}: {e}")
