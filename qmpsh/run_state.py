"""Whether the VM runs, is paused, waits in prelaunch…: one record per session.

The shell's toolbar shows it.  It is read with ``query-status`` when a session is
first followed and after each reconnect, and kept current in between from the
events that change it, so drawing never asks QEMU.  It lives beside the session
(not in the UI) because a shell may come to hold several sessions, each with its
own VM.  QEMU's ``status`` is untrusted text: only a short lowercase word is kept.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING

from qmpsh.errors import QmpshError

if TYPE_CHECKING:
    from qmpsh.events import LoggedEvent
    from qmpsh.monitor import Monitor
    from qmpsh.session import Session

# What an event says the run state now is; None: ask QEMU (a RESET keeps some states).
AFTER_EVENT: dict[str, str | None] = {
    "STOP": "paused",
    "RESUME": "running",
    "SHUTDOWN": "shutdown",
    "SUSPEND": "suspended",
    "SUSPEND_DISK": "suspended",
    "WAKEUP": "running",
    "GUEST_PANICKED": "guest-panicked",
    "RESET": None,
}
_WORD = re.compile(r"[a-z][a-z0-9-]{0,31}")

Listener = Callable[[], None]


class RunState:
    """The VM's run state as last known (None: not known, e.g. a guest agent)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.state: str | None = None
        self._listeners: list[Listener] = []
        session.events.add_listener(self._on_event)
        session.add_client_listener(self._on_new_client)

    def add_listener(self, callback: Listener) -> None:
        """Called (on any thread) after the state may have changed; it must be quick."""
        self._listeners.append(callback)

    def refresh(self) -> None:
        """Ask QEMU (blocking: call it off the UI thread); a guest agent has no run state."""
        from qmpsh.guest_agent import is_guest_agent

        if is_guest_agent(self.session.client):
            return
        try:
            reply = self.session.client.execute("query-status")
        except QmpshError:  # no such command (qemu-ga) or no connection: keep what we had
            return
        status = reply.get("status") if isinstance(reply, dict) else None
        self._set(status if isinstance(status, str) and _WORD.fullmatch(status) else None)

    def refresh_soon(self) -> None:
        """Refresh on a thread of its own: listeners run where waiting is not allowed."""
        threading.Thread(target=self.refresh, name="run-state", daemon=True).start()

    def _on_event(self, logged: LoggedEvent) -> None:
        name = logged.event.get("event")
        if not isinstance(name, str) or name not in AFTER_EVENT:
            return
        state = AFTER_EVENT[name]
        if state is None:
            self.refresh_soon()
        else:
            self._set(state)

    def _on_new_client(self, client: Monitor) -> None:
        self.refresh_soon()  # a restarted QEMU may be in any state

    def _set(self, state: str | None) -> None:
        self.state = state
        for callback in self._listeners:
            callback()


_FOLLOWED: weakref.WeakKeyDictionary[Session, RunState] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def run_state(session: Session) -> RunState:
    """The session's run state, followed from the first call on (first read in background)."""
    with _LOCK:
        known = _FOLLOWED.get(session)
        if known is None:
            known = _FOLLOWED[session] = RunState(session)
            known.refresh_soon()
    return known
