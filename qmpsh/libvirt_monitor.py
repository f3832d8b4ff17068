"""A libvirt-managed QEMU, reached through libvirt-python: the same surface as QmpClient.

libvirt holds a domain's QMP socket itself (QEMU serves one client per monitor), so
qmpsh talks to it through libvirt's API, as ``virsh qemu-monitor-command`` does:

- requests: ``libvirt_qemu.qemuMonitorCommand(dom, json_text, 0)``.  libvirt refuses a
  request that carries an ``id`` (it adds its own, ``"libvirt-N"``), so the user's id is
  taken off before sending and put back on the reply, and libvirt's is removed: replies
  look as they would on a socket.
- events: ``libvirt_qemu.qemuMonitorEventRegister``, dispatched by libvirt's default
  event loop on one daemon thread per process.  They carry QEMU's own timestamps and
  are handed to the listeners as QEMU's wire form, in order.
- negotiation is libvirt's business: ``qmp_capabilities`` is never sent.  A user's
  ``qmp_capabilities`` (scripts written for a socket start with it) is answered here with
  ``{"return": {}}``: the monitor is in command mode already, which is what it asks for.
- there is no greeting: ``query-version`` stands in for it (libvirt's own
  ``getVersion`` is libvirt's, not QEMU's).  It is the first monitor command, and libvirt
  then marks the domain "tainted: custom-monitor"; ``notify`` hears of that once, before.
- a domain that stops (``virsh destroy``, shutdown, migration) or a lost libvirtd
  connection ends the monitor like EOF ends a socket: pending requests raise
  ``DisconnectedError`` and disconnect listeners are told once.

Every blocking libvirt call runs on one worker thread per monitor, in order, so a
caller can time out or be interrupted (Ctrl-C) while libvirt is still busy.
libvirt-python is an optional extra, imported only when a libvirt address is used
(see ``libvirt_targets``, which also lists domains for ``libvirt:*``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import json
import math
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from qmpsh import wire
from qmpsh.client import (
    MAX_LINE,
    MAX_NOTES,
    EventListener,
    PendingReply,
    TranscriptListener,
    _command_name,
    _fresh,
)
from qmpsh.errors import (
    CommandError,
    CommandTimeout,
    ConnectError,
    DisconnectedError,
    InputError,
    ProtocolError,
    QmpshError,
)
from qmpsh.libvirt_address import LibvirtAddress, uri_for
from qmpsh.libvirt_targets import import_libvirt, one_line
from qmpsh.loss_listeners import DisconnectListener, LossListeners
from qmpsh.monitor import Capabilities, execute_command

if TYPE_CHECKING:
    from qmpsh.fds import PassedFile

RETRY_INTERVAL = 0.1
CLOSE_WAIT = 2.0  # close() waits this long for libvirt to let go; a hung libvirtd is left
NO_ID = object()  # "the user gave no id" (None is a valid JSON id)
T = TypeVar("T")

# virDomainEventStoppedDetailType, as words for "lost (the domain was …)"
STOP_REASONS = {
    0: "shut down",
    1: "destroyed",
    2: "crashed",
    3: "migrated away",
    4: "saved",
    5: "stopped (failed)",
    6: "stopped (snapshot)",
}
CLOSE_REASONS = {0: "an error", 1: "EOF", 2: "keepalive timeout", 3: "the client"}

_EVENT_LOOP_LOCK = threading.Lock()


def taint_notice(address: LibvirtAddress) -> str:
    """What libvirt does to a domain as soon as qmpsh sends it any monitor command."""
    return (
        f"qmpsh: note: libvirt marks {address} 'tainted: custom-monitor' from now on: "
        "it does not track changes made through the monitor (it stays until the domain stops)"
    )


def open_libvirt_monitor(
    address: LibvirtAddress, timeout: float = 30.0, notify: Callable[[str], None] | None = None
) -> LibvirtMonitor:
    """The monitor for ``address``, not yet connected (as ``QmpClient(address)`` would be)."""
    return LibvirtMonitor(address, timeout=timeout, notify=notify)


class LibvirtMonitor:
    """One libvirt domain's QEMU monitor that many threads may ``execute`` on at once."""

    def __init__(
        self,
        address: LibvirtAddress,
        *,
        timeout: float = 30.0,
        notify: Callable[[str], None] | None = None,
    ) -> None:
        self.address = address
        self.timeout = timeout
        self.greeting: dict[str, Any] = {}
        self.version: tuple[int, int, int] = (0, 0, 0)
        self.package = ""
        self.notes: deque[str] = deque(maxlen=MAX_NOTES)
        self.negotiates = True  # kept for reconnect; libvirt negotiates, never qmpsh
        # libvirt sends qmp_capabilities itself (without oob); fds go through
        # qemuMonitorCommandWithFiles (libvirt >= 8.2, local connections).
        self.capabilities = Capabilities(negotiation=False, fd_passing=True)
        self._notify = notify
        self._lock = threading.Lock()  # guards _pending, _failure, _up
        self._pending: set[PendingReply] = set()
        self._failure: QmpshError | None = None
        self._up = False
        self._started = False
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._libvirt: ModuleType | None = None
        self._libvirt_qemu: ModuleType | None = None
        self._conn: Any = None
        self._dom: Any = None
        self._callbacks: list[Callable[[], None]] = []  # deregistrations, for close()
        self._event_listeners: list[EventListener] = []
        self._transcript_listeners: list[TranscriptListener] = []
        self._lost_listeners = LossListeners(self.notes)  # told only if connect() succeeded

    # -- listeners ---------------------------------------------------------------

    def add_event_listener(self, callback: EventListener) -> None:
        """Called on libvirt's event thread for every event of this domain, in order."""
        self._event_listeners.append(callback)

    def add_transcript_listener(self, callback: TranscriptListener) -> None:
        """Called with ("out"|"in"|"event", message) for every message, for --logfile."""
        self._transcript_listeners.append(callback)

    def add_disconnect_listener(self, callback: DisconnectListener) -> None:
        """Called once with the failure when a made connection is lost; at once if it
        already was (``loss_listeners``).  A failed ``connect()`` raises instead."""
        self._lost_listeners.add(callback)

    def inherit_listeners(self, old: Any) -> None:
        """Take over another monitor's listeners (any kind: the lists have the same names)."""
        theirs = getattr(old, "_lost_listeners", None)
        if isinstance(theirs, LossListeners):
            self._lost_listeners.take_over(theirs)
        for name in ("_event_listeners", "_transcript_listeners"):
            mine: list[Any] = getattr(self, name)
            mine.extend(x for x in list(getattr(old, name, ())) if x not in mine)

    # -- connecting --------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._up and self._failure is None

    @property
    def failure(self) -> QmpshError | None:
        """Why the connection ended, or None while it is alive (or not yet made)."""
        return self._failure

    def connect(self, wait: float = 0.0, *, negotiate: bool = True) -> None:
        """Open libvirt, find the running domain (retrying for ``wait`` s), ask its version.

        ``negotiate`` is only remembered: libvirt negotiated the monitor when it started
        QEMU, and a second ``qmp_capabilities`` would only be refused.
        """
        if self._started:
            raise ConnectError(f"this monitor was already connected to {self.address}")
        if self.address.is_wildcard:
            raise InputError(f"{self.address} stands for every running domain: name one domain")
        self._started = True
        self.negotiates = negotiate
        self._libvirt, self._libvirt_qemu = import_libvirt(self.address)
        _ensure_event_loop(self._libvirt)
        self._worker = threading.Thread(target=self._work, name="libvirt-monitor", daemon=True)
        self._worker.start()
        try:
            self._find_domain(wait)
            if self._notify is not None:
                self._notify(taint_notice(self.address))
            self._on_worker(self._watch, "registering for events")
            self._read_version()
        except BaseException:
            self.close()
            raise
        with self._lock:
            failure, self._up = self._failure, self._failure is None
        if failure is not None:  # lost right after connecting
            raise _fresh(failure)

    def _find_domain(self, wait: float) -> None:
        deadline = time.monotonic() + wait
        while True:
            try:
                self._on_worker(self._open_and_look_up, "connecting")
                return
            except _NotYet as e:
                if time.monotonic() >= deadline:
                    raise ConnectError(str(e)) from None
            time.sleep(RETRY_INTERVAL)

    def _open_and_look_up(self) -> None:
        """On the worker: open libvirt (once) and find the domain, running."""
        libvirt = self._libvirt
        assert libvirt is not None
        uri = uri_for(self.address)
        if self._conn is None:
            try:
                self._conn = libvirt.open(uri)
            except libvirt.libvirtError as e:
                raise _open_error(libvirt, self.address, uri, e) from None
        dom = self._look_up(self._conn)
        try:
            active = dom.isActive()
        except libvirt.libvirtError as e:
            raise _NotYet(f"cannot reach {self.address}: {one_line(e)}") from None
        if not active:
            raise _NotYet(
                f"{self.address} is not running (virsh -c {uri} start {self.address.domain})"
            )
        self._dom = dom

    def _look_up(self, conn: Any) -> Any:
        """The domain by name, else by UUID; _NotYet when libvirt knows neither."""
        libvirt = self._libvirt
        assert libvirt is not None
        name = self.address.domain
        for look_up in (conn.lookupByName, conn.lookupByUUIDString):
            try:
                return look_up(name)
            except libvirt.libvirtError as e:
                unknown = (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_INVALID_ARG)
                if e.get_error_code() not in unknown:
                    raise ConnectError(f"cannot reach {self.address}: {one_line(e)}") from None
        uri = uri_for(self.address)
        hint = " (a URI after '@' needs a scheme: @qemu+ssh://HOST/system)" if "@" in name else ""
        raise _NotYet(f"no libvirt domain {name!r} at {uri}{hint}")

    def _watch(self) -> None:
        """On the worker: QEMU's events, the domain's stop, and the connection's loss."""
        libvirt, libvirt_qemu, conn, dom = self._libvirt, self._libvirt_qemu, self._conn, self._dom
        assert libvirt is not None and libvirt_qemu is not None
        try:
            on_event = self._on_qemu_event
            event_id = libvirt_qemu.qemuMonitorEventRegister(conn, dom, None, on_event, None, 0)
            self._callbacks.append(lambda: libvirt_qemu.qemuMonitorEventDeregister(conn, event_id))
            lifecycle = libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE
            life_id = conn.domainEventRegisterAny(dom, lifecycle, self._on_lifecycle, None)
            self._callbacks.append(lambda: conn.domainEventDeregisterAny(life_id))
            conn.registerCloseCallback(self._on_close, None)
            self._callbacks.append(conn.unregisterCloseCallback)
        except libvirt.libvirtError as e:
            raise ConnectError(f"cannot watch {self.address}'s events: {one_line(e)}") from None

    def _read_version(self) -> None:
        """``query-version`` in place of a greeting: the version keys the schema cache."""
        reply = self.execute_message({"execute": "query-version"}, timeout=self.timeout)
        try:
            version = reply["return"]
            qemu = version["qemu"]
            self.version = (int(qemu["major"]), int(qemu["minor"]), int(qemu["micro"]))
            self.package = str(version.get("package", ""))
        except (KeyError, TypeError, ValueError, AttributeError):
            odd = f"{self.address} answered query-version oddly: {reply!r:.100}"
            raise ProtocolError(odd) from None
        self.greeting = {"QMP": {"version": version, "capabilities": []}}

    def close(self) -> None:
        """Hang up; pending and later calls raise DisconnectedError.  Safe to repeat."""
        self._fail(DisconnectedError(f"connection to {self.address} closed"))
        worker = self._worker
        if worker is None or not worker.is_alive():
            return
        self._jobs.put(self._let_go)
        self._jobs.put(None)
        if worker is not threading.current_thread():
            worker.join(CLOSE_WAIT)

    def _let_go(self) -> None:
        """On the worker: deregister callbacks and close the connection, ignoring errors."""
        libvirt = self._libvirt
        assert libvirt is not None
        for undo in reversed(self._callbacks):
            with contextlib.suppress(libvirt.libvirtError):
                undo()
        self._callbacks.clear()
        conn, self._conn, self._dom = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(libvirt.libvirtError):
                conn.close()

    # -- sending -----------------------------------------------------------------

    def submit(self, message: dict[str, Any], *, fds: Sequence[PassedFile] = ()) -> PendingReply:
        """Queue ``message`` (and copies of ``fds``) for the worker and return at once.

        The worker may send it after the caller gave up and closed its descriptors, so
        it gets its own copies (close-on-exec), closed once libvirt has them.
        """
        pending = PendingReply("", _command_name(message), auto_id=False)
        if fds and not hasattr(self._libvirt_qemu, "qemuMonitorCommandWithFiles"):
            raise InputError("passing file descriptors needs libvirt-python 8.2 or later")
        with self._lock:
            self._raise_if_failed()
            self._pending.add(pending)
        user_id = message.get("id", NO_ID)
        if message.get("execute") == "qmp_capabilities":
            self.notes.append("answered qmp_capabilities here: libvirt negotiated the monitor")
            self._finish(pending, _with_id({"return": {}}, user_id))
            return pending
        text = json.dumps({k: v for k, v in message.items() if k != "id"})
        copies = [fcntl.fcntl(passed.fd, fcntl.F_DUPFD_CLOEXEC, 0) for passed in fds]
        for passed in fds:
            self._tell_transcript("fd", {"file": passed.path})
        self._tell_transcript("out", message)
        self._jobs.put(lambda: self._run_request(pending, text, user_id, copies))
        return pending

    def execute_message(
        self,
        message: dict[str, Any],
        *,
        timeout: float | None = None,
        fds: Sequence[PassedFile] = (),
    ) -> dict[str, Any]:
        """Send a whole QMP message and return the whole reply (``return`` or ``error``)."""
        pending = self.submit(message, fds=fds)
        limit = self.timeout if timeout is None else timeout
        try:
            return pending.result(limit)
        except BaseException:  # timeout or Ctrl-C: the late reply is dropped
            pending.abandon()
            raise

    def execute(
        self, name: str, arguments: dict[str, Any] | None = None, *, timeout: float | None = None
    ) -> Any:
        """Run one command and return its ``return`` value; a QMP error is CommandError."""
        return execute_command(self, name, arguments, timeout=timeout)

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise _fresh(self._failure)
        if not self._started:
            raise DisconnectedError(f"not connected to {self.address}")

    # -- the worker thread -------------------------------------------------------

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            job()

    def _on_worker(self, call: Callable[[], T], doing: str) -> T:
        """Run ``call`` on the worker and wait (``timeout``) for it; its exception is raised."""
        outcome: list[tuple[bool, Any]] = []
        done = threading.Event()

        def job() -> None:
            try:
                outcome.append((True, call()))
            except BaseException as e:  # handed to the caller, raised there
                outcome.append((False, e))
            finally:
                done.set()

        self._jobs.put(job)
        if not done.wait(None if math.isinf(self.timeout) else self.timeout):
            raise ConnectError(f"{doing} to {self.address}: no answer within {self.timeout:g} s")
        ok, value = outcome[0]
        if not ok:
            raise value
        result: T = value
        return result

    def _run_request(
        self, pending: PendingReply, text: str, user_id: object, fds: list[int]
    ) -> None:
        try:
            self._send_request(pending, text, user_id, fds)
        finally:
            for fd in fds:
                os.close(fd)

    def _send_request(
        self, pending: PendingReply, text: str, user_id: object, fds: list[int]
    ) -> None:
        if pending.abandoned or self._failure is not None:  # gave up while queued: not sent
            self._finish(pending, failure=self._failure)
            return
        libvirt, libvirt_qemu = self._libvirt, self._libvirt_qemu
        assert libvirt is not None and libvirt_qemu is not None
        try:
            if fds:
                answer = self._command_with_files(libvirt_qemu, text, fds)
            else:
                answer = libvirt_qemu.qemuMonitorCommand(self._dom, text, 0)
        except libvirt.libvirtError as e:
            self._request_failed(pending, e)
            return
        try:
            reply = _with_id(reply_from_libvirt(answer, self.address), user_id)
        except ProtocolError as e:
            self._finish(pending, failure=e)
            return
        self._tell_transcript("in", reply)
        self._finish(pending, reply)

    def _command_with_files(self, libvirt_qemu: ModuleType, text: str, fds: list[int]) -> Any:
        """``text`` sent with ``fds``; descriptors QEMU hands back (none do) are closed."""
        answer, returned = libvirt_qemu.qemuMonitorCommandWithFiles(self._dom, text, fds, 0)
        for fd in returned or ():
            with contextlib.suppress(OSError, TypeError):
                os.close(fd)
        return answer

    def _request_failed(self, pending: PendingReply, e: Exception) -> None:
        """libvirt refused: the domain or libvirtd is gone (the monitor ends), or just this."""
        libvirt = self._libvirt
        assert libvirt is not None
        message = one_line(e)
        if self._failure is None and not self._still_there():
            self._fail(self._lost(message))
        if self._failure is not None:
            self._finish(pending, failure=self._failure)
        elif getattr(e, "get_error_code", lambda: None)() == libvirt.VIR_ERR_OPERATION_TIMEOUT:
            self._finish(pending, failure=CommandTimeout(f"{self.address}: {message}"))
        else:
            self._finish(pending, failure=CommandError("LibvirtError", message))

    def _still_there(self) -> bool:
        libvirt = self._libvirt
        assert libvirt is not None
        try:
            return bool(self._conn.isAlive() and self._dom.isActive())
        except (libvirt.libvirtError, AttributeError):
            return False

    def _finish(
        self,
        pending: PendingReply,
        reply: dict[str, Any] | None = None,
        failure: QmpshError | None = None,
    ) -> None:
        with self._lock:
            self._pending.discard(pending)
        if pending.abandoned and reply is not None:
            self.notes.append(f"dropped the late reply to abandoned {pending.name}")
        elif reply is not None:
            pending._resolve(reply)
        else:
            pending._fail(failure or DisconnectedError(f"connection to {self.address} closed"))

    # -- libvirt's event thread ---------------------------------------------------

    def _on_qemu_event(
        self,
        conn: Any,
        dom: Any,
        name: object,
        seconds: object,
        micros: object,
        details: object,
        opaque: object,
    ) -> None:
        try:
            event = event_from_libvirt(name, seconds, micros, details, self.address)
        except ProtocolError as e:
            self.notes.append(f"dropped an event: {e}")
            return
        self._tell_transcript("event", event)
        for listener in self._event_listeners:
            try:
                listener(event)
            except Exception as e:  # a broken listener must not stop libvirt's event loop
                self.notes.append(f"event listener failed: {type(e).__name__}: {e}")

    def _on_lifecycle(self, conn: Any, dom: Any, event: int, detail: int, opaque: object) -> None:
        libvirt = self._libvirt
        if libvirt is not None and event == libvirt.VIR_DOMAIN_EVENT_STOPPED:
            self._fail(self._lost(f"the domain was {STOP_REASONS.get(detail, 'stopped')}"))

    def _on_close(self, conn: Any, reason: int, opaque: object) -> None:
        why = CLOSE_REASONS.get(reason, "an unknown reason")
        self._fail(self._lost(f"libvirt closed the connection: {why}"))

    # -- failure -------------------------------------------------------------------

    def _lost(self, reason: str) -> DisconnectedError:
        return DisconnectedError(f"connection to {self.address} lost ({reason})")

    def _fail(self, failure: QmpshError) -> None:
        """Record the first failure and fail every pending request with it (no libvirt calls)."""
        with self._lock:
            if self._failure is not None:
                return
            self._failure = failure
            pending, self._pending = list(self._pending), set()
            tell = self._up
        for request in pending:
            request._fail(failure)
        if tell:
            self._lost_listeners.tell(failure)

    def _tell_transcript(self, direction: str, message: dict[str, Any]) -> None:
        for listener in self._transcript_listeners:
            try:
                listener(direction, message)
            except Exception as e:
                self.notes.append(f"transcript listener failed: {type(e).__name__}: {e}")

    def __enter__(self) -> LibvirtMonitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _NotYet(ConnectError):
    """Not there yet (libvirtd down, no such domain, not running): ``--wait`` retries."""


# -- helpers -----------------------------------------------------------------------


def _ensure_event_loop(libvirt: ModuleType) -> None:
    """libvirt's default event loop on a daemon thread, once per process.

    ``virEventRegisterDefaultImpl`` must come before the ``libvirt.open`` whose events
    we want, or no callback ever fires; and it may be registered only once.
    """
    with _EVENT_LOOP_LOCK:
        _start_event_loop(libvirt)


@functools.cache
def _start_event_loop(libvirt: ModuleType) -> None:
    libvirt.virEventRegisterDefaultImpl()

    def run() -> None:
        while True:
            if libvirt.virEventRunDefaultImpl() < 0:
                time.sleep(RETRY_INTERVAL)  # never spin; libvirt reports nothing we can fix

    threading.Thread(target=run, name="libvirt-events", daemon=True).start()


def _open_error(libvirt: ModuleType, address: object, uri: str, e: Any) -> ConnectError:
    """A failed ``libvirt.open``; a libvirtd that is not up (yet) is one ``--wait`` retries."""
    message = f"cannot connect to libvirt at {uri}: {one_line(e)}"
    not_up = e.get_error_code() == libvirt.VIR_ERR_SYSTEM_ERROR and e.get_int1() in (
        errno.ENOENT,
        errno.ECONNREFUSED,
    )
    if not_up:
        return _NotYet(f"{message} (is libvirtd running?)")
    return ConnectError(message)


def reply_from_libvirt(answer: object, source: object) -> dict[str, Any]:
    """libvirt's reply text → a QMP reply without libvirt's id; untrusted, so checked.

    Any JSON value is kept in any member; what is not a JSON object holding ``return``
    or ``error`` is a one-line ProtocolError naming ``source``.
    """
    if not isinstance(answer, str) or len(answer) > MAX_LINE:
        raise ProtocolError(f"{source} sent a reply that is not text or too big")
    reply = parse_json(answer, source)
    if not isinstance(reply, dict) or not ("return" in reply or "error" in reply):
        raise ProtocolError(f"{source} sent a reply that is not QMP: {answer[:60]!r}")
    reply.pop("id", None)  # libvirt's "libvirt-N"
    return reply


def event_from_libvirt(
    name: object, seconds: object, micros: object, details: object, source: object
) -> dict[str, Any]:
    """QEMU's wire form of an event libvirt passed on: timestamp, event, data (if any)."""
    event: dict[str, Any] = {
        "timestamp": {"seconds": seconds, "microseconds": micros},
        "event": name if isinstance(name, str) else str(name),
    }
    if details is not None:
        if not isinstance(details, str) or len(details) > MAX_LINE:
            raise ProtocolError(f"{source} sent event {event['event']!r:.60} with odd data")
        event["data"] = parse_json(details, source)
    return event


def parse_json(text: str, source: object) -> Any:
    """Untrusted JSON: invalid or absurdly nested text is a one-line ProtocolError."""
    try:
        return wire.loads(text)
    except ValueError as e:  # TooDeep included: over wire.MAX_DEPTH is not QMP
        raise ProtocolError(f"{source} sent invalid JSON ({e}): {text[:60]!r}") from None


def _with_id(reply: dict[str, Any], user_id: object) -> dict[str, Any]:
    if user_id is not NO_ID:
        reply["id"] = user_id
    return reply
