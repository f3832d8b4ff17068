"""The synchronous QMP client: one socket, one reader thread, replies filed by id.

Why a reader thread: QEMU writes events whenever it likes.  If nobody reads them
while the shell waits for input, QEMU's output buffer grows and events arrive late
or in a burst.  The reader thread drains the socket all the time, calls event
listeners in order, and hands each reply to the request whose ``id`` it carries.
Callers simply block on the reply they asked for.

Usage::

    client = QmpClient(parse_address("/tmp/qmp.sock"), timeout=30.0)
    client.add_event_listener(lambda event: print(event["event"]))
    client.connect(wait=5.0)          # retry while the socket is missing or refused
    client.execute("query-status")    # -> the "return" value, or CommandError
    client.execute_message({"execute": "stop", "id": 7})   # -> the whole reply dict
    pending = client.submit({"execute": "query-block"})    # returns at once
    pending.result(timeout=1.0)       # CommandTimeout; pending.abandon() drops it
    client.close()

Threads: event and transcript listeners run on whichever thread is reading (transcript
"out" entries on the sending thread), so they must be quick and must not call ``execute``.
The reader thread reads whenever nobody else does; but a caller waiting in ``execute``
reads the socket itself when no one else is reading (leader/follower): its reply then
needs no hand-over between threads, which in a lock-step script costs about as much as
the command itself.  The reader thread stays out of the way while such a caller reads,
and takes over again within ``LEAD_GRACE`` of the last one, so the socket never goes
undrained for longer than that and no event is lost.
Failures: after EOF, a socket error or garbage from the peer, every pending and
later call raises the recorded failure (``DisconnectedError`` or ``ProtocolError``),
and disconnect listeners are told once.  Whatever goes wrong while a message is read
(a message nested deeper than ``wire.MAX_DEPTH``, anything the decoder throws) is such
a ProtocolError, on whichever thread was reading: the connection never half-dies.
Replies are returned as received (any JSON value in any member), except that ids
this client added (``"qmpsh-TOKEN-N"``, TOKEN random per client) are removed; ids the
user gave are kept.

QEMU hands the answer to a command whose client left before it came to whichever
client is connected next, after that one's greeting.  So until an answer carrying one
of our ids has come back (the wire is then *in step*: QEMU answers in order), every
request carries an id and an id-less answer is dropped as the previous client's; and
ids are never the previous client's ones (TOKEN).  Taken for ours, such an answer
shifted every later one by one: query-name's ``{}`` came back as query-status's.
"""

from __future__ import annotations

import array
import copy
import errno
import json
import math
import os
import reprlib
import select
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from contextlib import suppress
from itertools import count
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING, Any

from qmpsh import wire
from qmpsh.address import Address, UnixAddress
from qmpsh.errors import (
    CommandError,
    CommandTimeout,
    ConnectError,
    DisconnectedError,
    InputError,
    ProtocolError,
    QmpshError,
)
from qmpsh.loss_listeners import DisconnectListener, LossListeners
from qmpsh.monitor import Capabilities, execute_command

if TYPE_CHECKING:
    from qmpsh.fds import PassedFile

MAX_LINE = 64 * 1024 * 1024  # one message larger than this is not QMP, it is a runaway peer
MAX_STRAY_LINES = 100  # non-greeting lines tolerated before the greeting
RECV_SIZE = 1 << 20
RETRY_INTERVAL = 0.05
MAX_NOTES = 200
# QEMU greets at once unless another client holds the monitor: then the greeting only
# comes when that client leaves, so waiting for it as long as for a reply says nothing.
GREETING_TIMEOUT = 5.0
BUSY_HINT = "QEMU serves one client per monitor: is another connected?"
MAX_VERSION_NUMBER = 99_999  # beyond this a greeting's version field is shown as 0
MAX_PACKAGE = 200
# After a caller read for itself, the reader thread waits this long before it reads again:
# in a script the next command's caller comes sooner, and the reader is not woken per reply.
LEAD_GRACE = 0.005

EventListener = Callable[[dict[str, Any]], None]
TranscriptListener = Callable[[str, dict[str, Any]], None]


class PendingReply:
    """A request on the wire; its reply (or the connection's failure) lands here."""

    def __init__(self, key: str, name: str, auto_id: bool) -> None:
        self.key = key
        self.name = name
        self.auto_id = auto_id
        self.abandoned = False
        self._done = threading.Event()
        self._reply: dict[str, Any] = {}
        self._failure: QmpshError | None = None

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def result(self, timeout: float | None = None) -> dict[str, Any]:
        """The whole reply; ``timeout=None`` waits for ever (Ctrl-C still interrupts)."""
        return self._result(timeout, timeout)

    def _result(self, wait: float | None, timeout: float | None) -> dict[str, Any]:
        """Wait ``wait`` s more; a timeout names ``timeout``, the caller's whole allowance."""
        if wait == float("inf"):
            wait = None
        if not self._done.wait(wait):
            raise CommandTimeout(f"no reply to {self.name} within {timeout:g} s")
        if self._failure is not None:
            raise _fresh(self._failure)
        return self._reply

    def abandon(self) -> None:
        """Stop caring (Ctrl-C, timeout): the late reply is matched by id and dropped."""
        self.abandoned = True

    def _resolve(self, reply: dict[str, Any]) -> None:
        if self.auto_id:
            reply = {k: v for k, v in reply.items() if k != "id"}
        self._reply = reply
        self._done.set()

    def _fail(self, failure: QmpshError) -> None:
        self._failure = failure
        self._done.set()


class QmpClient:
    """A QMP connection that many threads may ``execute`` on at once."""

    # A request alone on the wire goes without an id (see submit).  A subclass whose peer
    # also sends id-less replies nobody asked for (qemu-ga's resync) turns this off.
    lone_requests_without_id = True

    def __init__(
        self,
        address: Address,
        *,
        timeout: float = 30.0,
        greeting_timeout: float = GREETING_TIMEOUT,
    ) -> None:
        self.address = address
        self.timeout = timeout
        # Never longer than a reply may take: ``--timeout 1`` gives up on the greeting in 1 s.
        self.greeting_timeout = min(timeout, greeting_timeout)
        self.greeting: dict[str, Any] = {}
        self.version: tuple[int, int, int] = (0, 0, 0)
        self.package = ""
        self.notes: deque[str] = deque(maxlen=MAX_NOTES)  # dropped replies, listener errors
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._lock = threading.Lock()  # guards _pending and _failure
        self._send_lock = threading.Lock()
        self._pending: dict[str, PendingReply] = {}
        self._failure: QmpshError | None = None
        self._greeted = threading.Event()
        self._settled = threading.Event()  # greeting seen, or the connection failed first
        self._ids = count(1)
        self._id_prefix = f"qmpsh-{os.urandom(4).hex()}-"  # see the module doc
        self._in_step = False  # an answer with one of our ids has come (module doc)
        self._event_listeners: list[EventListener] = []
        self._transcript_listeners: list[TranscriptListener] = []
        self._lost_listeners = LossListeners(self.notes)  # told only if connect() succeeded
        self._stray: list[bytes] = []
        self._up = False  # connect() succeeded: only then are disconnect listeners told
        # Whoever holds _read_lock reads the socket: the reader thread, or one caller of
        # execute (see _read_for); _lines and _backlog are touched only under it.
        self._read_lock = threading.Lock()
        self._lines = _LineBuffer()
        # recv() would allocate (mmap) and free RECV_SIZE bytes per call: 3 syscalls a reply.
        self._recv_buffer = bytearray(RECV_SIZE)
        self._recv_view = memoryview(self._recv_buffer)
        self._backlog: deque[bytes | bytearray] = deque()  # lines read, not yet handled
        self._leading = False
        self._lead_end = -math.inf
        self._wake_reader = threading.Event()
        self._pollers = threading.local()  # one select.poll per reading thread
        self.negotiates = True  # what connect() was asked, so a reconnect can do the same

    # -- listeners ---------------------------------------------------------------

    def add_event_listener(self, callback: EventListener) -> None:
        """Called on the reader thread for every event, in order, even before the greeting."""
        self._event_listeners.append(callback)

    def add_transcript_listener(self, callback: TranscriptListener) -> None:
        """Called with ("out"|"in"|"event", message) for every message, for --logfile."""
        self._transcript_listeners.append(callback)

    def add_disconnect_listener(self, callback: DisconnectListener) -> None:
        """Called once with the failure when a made connection is lost; at once if it
        already was (``loss_listeners``).  A failed ``connect()`` raises instead."""
        self._lost_listeners.add(callback)

    def inherit_listeners(self, old: QmpClient) -> None:
        """Take over ``old``'s listeners, to reconnect with a new client (call before connect).

        Listeners already present are not added twice, so calling this again is harmless.
        """
        _merge(self._event_listeners, old._event_listeners)
        _merge(self._transcript_listeners, old._transcript_listeners)
        self._lost_listeners.take_over(old._lost_listeners)

    # -- connecting --------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._greeted.is_set() and self._failure is None

    @property
    def failure(self) -> QmpshError | None:
        """Why the connection ended, or None while it is alive (or not yet made)."""
        return self._failure

    def connect(self, wait: float = 0.0, *, negotiate: bool = True) -> None:
        """Connect, read the greeting and negotiate; retry for ``wait`` s if not there yet.

        ``negotiate=False`` is qmp-shell's ``-N``: the monitor was already negotiated
        (for instance by a wrapper), so sending ``qmp_capabilities`` again would fail.
        A client makes one connection in its life; to reconnect, make a new client.
        """
        if self._sock is not None or self._failure is not None:
            raise ConnectError(f"this client was already connected to {self.address}")
        self.negotiates = negotiate
        deadline = time.monotonic() + wait
        self._sock = self._open_socket(deadline)
        self._reader = threading.Thread(target=self._read_loop, name="qmp-reader", daemon=True)
        self._reader.start()
        # A QEMU still starting may take the connection before it can greet: ``wait``
        # (what the user allowed for start-up) covers the greeting too.
        self._await_greeting(max(self.greeting_timeout, deadline - time.monotonic()))
        if negotiate:
            self._negotiate()
        with self._lock:
            failure, self._up = self._failure, self._failure is None
        if failure is not None:  # lost right after the handshake
            raise _fresh(failure)

    def _open_socket(self, deadline: float) -> socket.socket:
        while True:
            try:
                return self._dial()
            except (FileNotFoundError, ConnectionRefusedError, BlockingIOError) as e:
                # missing, not listening yet, or its listen queue full (a client is served
                # and more wait): any of them may change while the user lets us wait
                if time.monotonic() >= deadline:
                    raise self._connect_error(e) from None
            except OSError as e:
                raise self._connect_error(e) from None
            time.sleep(RETRY_INTERVAL)

    def _dial(self) -> socket.socket:
        if isinstance(self.address, UnixAddress):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(self.timeout)
                sock.connect(self.address.path)
            except OSError:
                sock.close()
                raise
        else:
            # Loopback answers at once unless the listen queue is full: the greeting's bound
            where = (self.address.host, self.address.port)
            sock = socket.create_connection(where, self.greeting_timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(None)  # the reader blocks in recv; close() wakes it by shutdown
        return sock

    def _connect_error(self, e: OSError) -> ConnectError:
        reason = e.strerror or str(e) or type(e).__name__
        if isinstance(e, TimeoutError):
            reason = f"timed out after {self.greeting_timeout:g} s ({BUSY_HINT})"
        elif isinstance(self.address, UnixAddress) and e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
            # only a unix socket says so when its listen queue is full (TCP drops the SYN)
            reason = f"its queue of waiting connections is full ({BUSY_HINT})"
        return ConnectError(f"cannot connect to {self.address}: {reason}")

    def _await_greeting(self, wait: float) -> None:
        self._settled.wait(wait)
        if self._greeted.is_set():
            return
        failure = self._failure
        self.close()
        if isinstance(failure, ProtocolError):
            raise failure
        if failure is not None:
            raise ConnectError(f"cannot connect to {self.address}: closed before the QMP greeting")
        raise self._no_greeting_error(wait)

    def _no_greeting_error(self, wait: float) -> QmpshError:
        where = f"no QMP greeting from {self.address} within {wait:.3g} s"
        if self._stray:
            seen = self._stray[0][:60].decode("utf-8", "replace")
            return ProtocolError(f"{where}; it sent {seen!r} (is it an HMP monitor or not QMP?)")
        return ConnectError(f"{where} ({BUSY_HINT})")

    def _negotiate(self) -> None:
        arguments = {"enable": ["oob"]} if "oob" in self._capabilities() else None
        try:
            self.execute("qmp_capabilities", arguments)
        except CommandError as e:
            self.close()
            raise ConnectError(f"{self.address} refused qmp_capabilities: {e}") from None

    @property
    def capabilities(self) -> Capabilities:
        """What this connection can do beyond requests (see ``monitor.Monitor``)."""
        oob = self.negotiates and "oob" in self._capabilities()
        return Capabilities(oob=oob, fd_passing=isinstance(self.address, UnixAddress))

    def _capabilities(self) -> list[Any]:
        caps = self.greeting.get("QMP", {}).get("capabilities", [])
        return caps if isinstance(caps, list) else []

    def close(self) -> None:
        """Hang up; pending and later calls raise DisconnectedError.  Safe to repeat."""
        self._fail(DisconnectedError(f"connection to {self.address} closed"))
        reader = self._reader
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout=5)

    # -- sending -----------------------------------------------------------------

    def submit(self, message: dict[str, Any], *, fds: Sequence[PassedFile] = ()) -> PendingReply:
        """Send ``message`` (with ``fds`` as SCM_RIGHTS) and return without waiting.

        A request alone on the wire goes without an id once the wire is in step (see
        the module doc): QEMU answers in order, an id-less reply is filed to the oldest
        pending request, and QEMU itself is slower with ids: lock-step query-status took
        490 µs a command with ids against 393 µs without (benchmarks/throughput.py,
        N = 10000).  As soon as another request is in flight, ours get ids.
        """
        if fds and not self.capabilities.fd_passing:
            raise InputError(f"{self.address} cannot take file descriptors (unix sockets only)")
        auto_id = "id" not in message
        id_value = f"{self._id_prefix}{next(self._ids)}" if auto_id else message["id"]
        pending = PendingReply(_id_key(id_value), _command_name(message), auto_id)
        with self._lock:
            self._raise_if_failed()
            if pending.key in self._pending:
                raise InputError(f"id {id_value!r} is already used by a pending command")
            # exec-oob needs an id
            alone = (
                self.lone_requests_without_id
                and self._in_step
                and not self._pending
                and "execute" in message
            )
            self._pending[pending.key] = pending
        if auto_id and not alone:
            message = {**message, "id": id_value}
        self._send(message, fds)
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
        deadline = None if math.isinf(limit) else time.monotonic() + limit
        try:
            self._read_for(pending, deadline)
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            return pending._result(left, limit)
        except BaseException:  # timeout or Ctrl-C: let the late reply be dropped
            pending.abandon()
            raise

    def execute(
        self, name: str, arguments: dict[str, Any] | None = None, *, timeout: float | None = None
    ) -> Any:
        """Run one command and return its ``return`` value; a QMP error is CommandError."""
        return execute_command(self, name, arguments, timeout=timeout)

    def _send(self, message: dict[str, Any], fds: Sequence[PassedFile] = ()) -> None:
        """Write one message; ``fds`` ride on the ``sendmsg`` that carries its first byte.

        The transcript notes each passed file (``"dir": "fd"``) just before the message.
        """
        data = json.dumps(message).encode() + b"\n"
        sock = self._sock
        for passed in fds:
            self._tell_transcript("fd", {"file": passed.path})
        self._tell_transcript("out", message)
        try:
            with self._send_lock:
                if sock is None:
                    raise OSError("not connected")
                if fds:
                    rights = array.array("i", (passed.fd for passed in fds))
                    ancillary = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights)]
                    data = data[sock.sendmsg([data], ancillary) :]
                if data:
                    sock.sendall(data)
        except OSError as e:
            self._fail(self._lost(e.strerror or str(e)))

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise _fresh(self._failure)
        if self._sock is None:
            raise DisconnectedError(f"not connected to {self.address}")

    # -- reading (the reader thread, or a caller waiting for its reply) -------------

    def _read_loop(self) -> None:
        try:
            poller = self._poller()
            while poller is not None and self._failure is None:
                self._yield_to_callers()
                if not self._poll(poller, None) or not self._read_lock.acquire(blocking=False):
                    continue  # nothing yet, or a caller is reading: it handles what came
                try:
                    self._read_available()
                finally:
                    self._read_lock.release()
        except Exception as e:  # a bug of ours: end the connection, never leave it half dead
            self._fail(ProtocolError(f"reading from {self.address} failed ({_brief_error(e)})"))

    def _read_for(self, pending: PendingReply, deadline: float | None) -> None:
        """Read on this thread until ``pending`` is answered, if nobody else is reading.

        Otherwise (the reader thread is mid-chunk, another caller leads) return at once:
        the reply is then handed over as before.  Returns at ``deadline`` too.
        """
        if not self._read_lock.acquire(blocking=False):
            return
        self._leading = True
        try:
            poller = self._poller()
            while poller is not None and not pending.done and self._failure is None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return
                if self._poll(poller, left):
                    self._read_available()
        finally:
            self._lead_end = time.monotonic()
            self._leading = False
            self._read_lock.release()
            if self._pending:  # someone else still waits: the reader must not dawdle
                self._wake_reader.set()

    def _yield_to_callers(self) -> None:
        """While callers read for themselves, keep off the socket (polling, not woken)."""
        while self._failure is None and (
            self._leading or (time.monotonic() - self._lead_end < LEAD_GRACE and not self._pending)
        ):
            self._wake_reader.wait(LEAD_GRACE)
            self._wake_reader.clear()

    def _poller(self) -> select.poll | None:
        """This thread's poll object (they must not be shared); None once closed."""
        sock = self._sock
        if sock is None or sock.fileno() < 0:
            return None
        poller: select.poll | None = getattr(self._pollers, "poll", None)
        if poller is None:
            poller = select.poll()
            try:
                poller.register(sock, select.POLLIN)
            except (OSError, ValueError):  # closed since fileno() was read
                return None
            self._pollers.poll = poller
        return poller

    def _poll(self, poller: select.poll, timeout: float | None) -> bool:
        """True when the socket has data (or EOF, or an error) for ``recv``."""
        ms = None if timeout is None else max(0, math.ceil(timeout * 1000))
        try:
            return bool(poller.poll(ms))
        except (OSError, ValueError) as e:  # closed under us
            self._fail(self._lost(str(e)))
            return False

    def _read_available(self) -> None:
        """One ``recv`` and everything it completes; the caller holds ``_read_lock``."""
        sock = self._sock
        try:
            assert sock is not None
            try:
                size = sock.recv_into(self._recv_buffer, RECV_SIZE, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            chunk = self._recv_view[:size].tobytes()
            if not chunk:
                reason = "EOF in the middle of a message" if self._lines.partial else "EOF"
                self._fail(self._lost(reason))
                return
            self._backlog.extend(self._lines.feed(chunk))
            self._handle_backlog()
            if self._lines.partial > MAX_LINE:
                raise ProtocolError(f"{self.address} sent a line over {MAX_LINE} bytes")
        except QmpshError as e:
            self._fail(e)
        except OSError as e:
            self._fail(self._lost(e.strerror or str(e)))
        except Exception as e:  # whatever a hostile message makes the decoder throw
            self._fail(self._unreadable(e))

    def _handle_backlog(self) -> None:
        # Lines wait in a queue, not a local list: if a caller reading for itself is
        # interrupted (Ctrl-C), the lines after the current one are handled by the next
        # reader instead of being lost.  No frame keeps a (maybe 64 MiB) line alive.
        backlog = self._backlog
        while backlog:
            self._handle_line(backlog.popleft())

    def _handle_line(self, line: bytes | bytearray) -> None:
        if not line or line.isspace() or self._failure is not None:
            return
        try:
            message = wire.loads(line)
        except wire.TooDeep as e:  # hostile even before the greeting: not a banner
            raise self._garbage(line, e) from None
        except ValueError as e:  # includes invalid UTF-8
            if self._greeted.is_set():
                raise self._garbage(line, e) from None
            self._stray_line(line)
            return
        if not isinstance(message, dict):
            if self._greeted.is_set():
                raise self._garbage(line, "not a JSON object")
            self._stray_line(line)
            return
        self._dispatch(message)

    def _stray_line(self, line: bytes | bytearray) -> None:
        """Before the greeting, junk (a banner, a half line) is tolerated, within reason."""
        self._stray.append(bytes(line[:200]))  # kept only to quote in an error message
        if len(self._stray) > MAX_STRAY_LINES:
            raise ProtocolError(f"{self.address} is not a QMP monitor: no greeting, only junk")

    def _garbage(self, line: bytes | bytearray, why: object) -> ProtocolError:
        shown = line[:60].decode("utf-8", "replace")
        return ProtocolError(f"{self.address} sent invalid QMP ({why}): {shown!r}; disconnected")

    def _unreadable(self, e: Exception) -> ProtocolError:
        why = f"a message qmpsh cannot read: {_brief_error(e)}"
        return ProtocolError(f"{self.address} sent {why}; disconnected")

    def _dispatch(self, message: dict[str, Any]) -> None:
        if "event" in message:
            self._deliver_event(message)
        elif "QMP" in message and not self._greeted.is_set():
            self._accept_greeting(message)
        elif "return" in message or "error" in message:
            self._tell_transcript("in", message)
            self._route_reply(message)
        else:
            self._tell_transcript("in", message)
            self.notes.append(f"ignored a message that is not QMP: {_brief(message)}")

    def _deliver_event(self, event: dict[str, Any]) -> None:
        self._tell_transcript("event", event)
        for listener in self._event_listeners:
            try:
                listener(event)
            except Exception as e:  # a broken listener must not stop the reader
                self.notes.append(f"event listener failed: {type(e).__name__}: {e}")

    def _accept_greeting(self, greeting: dict[str, Any]) -> None:
        """Take what a greeting says; odd version values read as 0, an odd package as ""."""
        self._tell_transcript("in", greeting)
        qmp = greeting["QMP"]
        version = qmp.get("version") if isinstance(qmp, dict) else None
        if not isinstance(version, dict):
            raise ProtocolError(f"{self.address} sent a malformed QMP greeting")
        qemu = version.get("qemu")
        numbers = qemu if isinstance(qemu, dict) else {}
        major, minor, micro = (_version_number(numbers.get(k)) for k in ("major", "minor", "micro"))
        self.version = (major, minor, micro)
        package = version.get("package")
        self.package = package[:MAX_PACKAGE] if isinstance(package, str) else ""
        self.greeting = greeting
        self._greeted.set()
        self._settled.set()

    def _route_reply(self, reply: dict[str, Any]) -> None:
        with self._lock:
            if "id" in reply:
                pending = self._pending.pop(_id_key(reply["id"]), None)
                self._in_step = self._in_step or pending is not None
            elif self._in_step or "error" in reply:
                pending = self._pop_oldest()  # QEMU answers what it could not parse id-less
            else:  # before we are in step, an id-less answer is the previous client's
                pending = None
        if pending is None:
            self.notes.append(f"dropped a reply nobody asked for: {_brief(reply)}")
        elif pending.abandoned:
            self.notes.append(f"dropped the late reply to abandoned {pending.name}")
        else:
            pending._resolve(reply)

    def _pop_oldest(self) -> PendingReply | None:
        for key in self._pending:
            return self._pending.pop(key)
        return None

    # -- failure -------------------------------------------------------------------

    def _lost(self, reason: str) -> DisconnectedError:
        return DisconnectedError(f"connection to {self.address} lost ({reason})")

    def _fail(self, failure: QmpshError) -> None:
        """Record the first failure, hang up, and fail every pending request with it."""
        with self._lock:
            if self._failure is not None:
                return
            self._failure = failure
            pending, self._pending = list(self._pending.values()), {}
            tell = self._up
        self._settled.set()
        self._hang_up()
        self._wake_reader.set()
        for request in pending:
            request._fail(failure)
        if tell:
            self._lost_listeners.tell(failure)

    def _hang_up(self) -> None:
        sock = self._sock
        if sock is None:
            return
        with suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # wakes a reader in recv() and a blocked sender
        with self._send_lock:  # never close the fd under a sendall in progress
            sock.close()

    def _tell_transcript(self, direction: str, message: dict[str, Any]) -> None:
        for listener in self._transcript_listeners:
            try:
                listener(direction, message)
            except Exception as e:
                self.notes.append(f"transcript listener failed: {type(e).__name__}: {e}")

    def __enter__(self) -> QmpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _LineBuffer:
    """Split a byte stream on newlines, holding a long message once, in linear time.

    The unfinished line grows in place in a bytearray and is handed out as that very
    buffer, so a 64 MiB message costs 64 MiB here rather than the two or three copies
    that joining and splitting would make.  Everything before the newline that ends it
    is already in the buffer; only the current chunk can hold further lines.
    """

    def __init__(self) -> None:
        self._line = bytearray()

    @property
    def partial(self) -> int:
        """Bytes of the unfinished last line."""
        return len(self._line)

    def feed(self, chunk: bytes) -> list[bytes | bytearray]:
        first = chunk.find(b"\n")
        if first < 0:
            self._line += chunk
            return []
        self._line += chunk[:first]
        done, self._line = self._line, bytearray()
        *more, rest = chunk[first + 1 :].split(b"\n")
        self._line += rest
        return [done, *more]


def _merge(mine: list[Any], theirs: list[Any]) -> None:
    mine.extend(listener for listener in list(theirs) if listener not in mine)


def _fresh(failure: QmpshError) -> QmpshError:
    """A copy to raise, so threads sharing one failure do not share one traceback."""
    return copy.copy(failure).with_traceback(None)


def _id_key(id_value: Any) -> str:
    """Ids may be any JSON value; their canonical JSON text is hashable and exact."""
    if type(id_value) is str:  # ours, and most users': what json.dumps does, minus its overhead
        return encode_basestring_ascii(id_value)
    return json.dumps(id_value, sort_keys=True)


def _command_name(message: dict[str, Any]) -> str:
    name = message.get("execute", message.get("exec-oob"))
    return name if isinstance(name, str) else "the request"


def _version_number(value: Any) -> int:
    """A greeting's version field: a sane integer as it is, anything else (1e400, "7") 0."""
    return value if type(value) is int and 0 <= value <= MAX_VERSION_NUMBER else 0


_BRIEF = reprlib.Repr()
_BRIEF.maxstring = _BRIEF.maxother = 100


def _brief(message: Any) -> str:
    """A short repr for a note: bounded work and length whatever the peer sent."""
    return _BRIEF.repr(message)


def _brief_error(e: BaseException) -> str:
    return f"{type(e).__name__}: {_BRIEF.repr(str(e))[1:-1]}"
