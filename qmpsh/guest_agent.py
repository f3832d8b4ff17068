"""qemu-guest-agent's dialect: the QMP client's socket reading, with qemu-ga's handshake.

qemu-ga speaks QMP's JSON but not its session: there is no greeting, no
``qmp_capabilities`` and no events.  What it has instead is a resynchronisation
handshake.  Its peer may be a virtio-serial port that outlives clients, and it
answers one request at a time, so a client cannot know what is still in the pipe:
a late reply to a request it gave up on, or half a request a previous client left
behind, which swallows the next request whole.  ``guest-sync-delimited`` fixes
that: the client sends a 0xFF byte (qemu-ga's parser resets on the invalid byte)
and ``{"execute": "guest-sync-delimited", "arguments": {"id": N}}`` with a random
N; qemu-ga answers 0xFF followed by ``{"return": N}``.  Everything before that 0xFF
is stale and dropped, except replies that carry the id of a request still waited
for.  ``GuestAgent`` does this on connect and again before the first request after
one was abandoned (a timeout or Ctrl-C), as qemu-ga's documentation asks.

Everything else (the reader thread, the line buffer, ids, listeners, failure) is
``QmpClient``'s: this class only replaces the handshake and reads the lines that
come while a sync is under way.  Requests always carry an id here, so a reply can
be told from the id-less parse errors qemu-ga sends for stale input.

The version comes from ``guest-info``; ``package`` is "qemu-ga" so the schema
cache (keyed by version and package) never hands QEMU's schema to a guest agent.
qemu-ga serves one client at a time: a second client is accepted by the kernel and
then hears nothing, so the first sync waits at most ``BUSY_WAIT`` and says why.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from qmpsh import wire
from qmpsh.address import Address
from qmpsh.client import PendingReply, QmpClient, _fresh
from qmpsh.errors import CommandError, CommandTimeout, ConnectError, ProtocolError, QmpshError
from qmpsh.monitor import Capabilities

if TYPE_CHECKING:
    from qmpsh.fds import PassedFile

SENTINEL = b"\xff"
SYNC = "guest-sync-delimited"
BUSY_WAIT = 5.0  # qemu-ga answers a sync at once unless it is serving another client
PACKAGE = "qemu-ga"
NO_EVENTS = "there are no events on a guest agent (qemu-ga sends none)"
NO_HMP = "HMP (`info …`, `hmp …`, -H) is not available on a guest agent"
_VERSION = re.compile(r"(\d{1,9})\.(\d{1,9})\.(\d{1,9})")


class NotAGuestAgent(ConnectError):
    """The peer sent a QMP greeting: it is a QEMU monitor (``-N`` probes with this)."""


class AgentBusy(ConnectError):
    """Connected, but the first sync got no answer: qemu-ga is serving another client."""


class _Sync(PendingReply):
    """One ``guest-sync-delimited`` under way: its random id, and whether 0xFF came."""

    def __init__(self, id_value: int) -> None:
        super().__init__("sync", SYNC, auto_id=False)
        self.id_value = id_value
        self.delimited = False


class GuestAgent(QmpClient):
    """A qemu-guest-agent connection with the same surface as ``QmpClient``."""

    lone_requests_without_id = False  # stale id-less parse errors must not match a request

    @property
    def capabilities(self) -> Capabilities:
        """No events, no schema, no negotiation: qemu-ga has none of them."""
        return Capabilities(events=False, schema=False, negotiation=False)

    def __init__(self, address: Address, *, timeout: float = 30.0) -> None:
        super().__init__(address, timeout=timeout)
        self.package = PACKAGE
        self.negotiates = False
        self._sync: _Sync | None = None
        self._sync_lock = threading.Lock()  # one resync at a time; requests wait for it
        self._sent: list[PendingReply] = []  # requests since the last sync, not yet settled

    # -- connecting --------------------------------------------------------------

    def connect(self, wait: float = 0.0, *, negotiate: bool = True) -> None:
        """Connect, synchronise and read ``guest-info``; ``negotiate`` has nothing to do here."""
        if self._sock is not None or self._failure is not None:
            raise ConnectError(f"this client was already connected to {self.address}")
        self._sock = self._open_socket(wait)
        self._reader = threading.Thread(target=self._read_loop, name="qga-reader", daemon=True)
        self._reader.start()
        limit = min(self.timeout, BUSY_WAIT)
        try:
            self._synchronise(limit)
        except CommandTimeout:
            self.close()
            raise AgentBusy(
                f"no answer to {SYNC} from {self.address} within {limit:g} s "
                "(qemu-ga serves one client at a time: is another connected?)"
            ) from None
        except QmpshError:
            self.close()
            raise
        self._greeted.set()  # `connected` from now on; invalid JSON is fatal again
        self._settled.set()
        self._read_version()
        with self._lock:
            failure, self._up = self._failure, self._failure is None
        if failure is not None:
            raise _fresh(failure)

    def _read_version(self) -> None:
        try:
            info = self.execute("guest-info")
        except CommandError:  # guest-info blocked (-b): the version stays unknown
            return
        found = _VERSION.match(str(info.get("version", ""))) if isinstance(info, dict) else None
        if found:
            major, minor, micro = (int(part) for part in found.groups())
            self.version = (major, minor, micro)

    # -- sending -----------------------------------------------------------------

    def submit(self, message: dict[str, Any], *, fds: Sequence[PassedFile] = ()) -> PendingReply:
        """Send ``message``; first resynchronise if a request was abandoned since the last sync.

        That round trip makes this call wait (up to ``timeout``), once per abandonment.
        """
        with self._sync_lock:
            if self._needs_sync():
                try:
                    self._synchronise(self.timeout)
                except CommandTimeout:
                    name = message.get("execute", "the request")
                    raise CommandTimeout(
                        f"no answer to {SYNC} within {self.timeout:g} s while resynchronising "
                        f"with the guest agent; {name!s:.60} was not sent"
                    ) from None
            pending = super().submit(message, fds=fds)  # refused: no fd_passing
            self._sent.append(pending)
        return pending

    def _needs_sync(self) -> bool:
        self._sent = [p for p in self._sent if p.abandoned or not p.done]
        sync = self._sync
        return (sync is not None and not sync.done) or any(p.abandoned for p in self._sent)

    def _synchronise(self, limit: float) -> None:
        """Flush qemu-ga's parser, ask for a random id back, drop everything before it."""
        sync = _Sync(_random_id())
        self._sync = sync
        if self._failure is not None:
            raise _fresh(self._failure)
        self._send_bytes(SENTINEL)
        self._send({"execute": SYNC, "arguments": {"id": sync.id_value}})
        deadline = time.monotonic() + limit
        self._read_for(sync, deadline)
        sync._result(max(0.0, deadline - time.monotonic()), limit)
        self._forget_abandoned()

    def _send_bytes(self, data: bytes) -> None:
        sock = self._sock
        try:
            with self._send_lock:
                if sock is None:
                    raise OSError("not connected")
                sock.sendall(data)
        except OSError as e:
            self._fail(self._lost(e.strerror or str(e)))

    def _forget_abandoned(self) -> None:
        """After a sync nothing sent before it can still be answered: drop the given-up ones."""
        with self._lock:
            for key in [k for k, p in self._pending.items() if p.abandoned]:
                del self._pending[key]
        self._sent = [p for p in self._sent if not p.abandoned]

    # -- reading -----------------------------------------------------------------

    def _handle_line(self, line: bytes | bytearray) -> None:
        sync = self._sync
        if sync is not None and not sync.done and self._failure is None:
            self._sync_line(sync, line)
        else:
            super()._handle_line(line)

    def _sync_line(self, sync: _Sync, line: bytes | bytearray) -> None:
        """A line while a sync is under way: stale until 0xFF, then our id (or stale again)."""
        if not sync.delimited:
            cut = line.find(SENTINEL)
            if cut < 0:
                self._stale(line)
                return
            if cut:
                self._stale(line[:cut])
            line, sync.delimited = line[cut + 1 :], True
        if not line.strip():
            return
        message = _json_object(line)
        answer = message.get("return") if message is not None else None
        if message is not None and type(answer) is int and answer == sync.id_value:
            self._tell_transcript("in", message)
            sync._resolve(message)
            return
        sync.delimited = False  # an older sync's answer: wait for the next 0xFF
        self._stale(line)

    def _stale(self, line: bytes | bytearray) -> None:
        """Before the sentinel: keep replies someone still waits for (by id), drop the rest."""
        if not line.strip():
            return
        message = _json_object(line)
        if message is None:
            self.notes.append(f"dropped {len(line)} bytes before the guest agent's sync")
            return
        if "QMP" in message and not self._greeted.is_set():
            raise NotAGuestAgent(
                f"{self.address} sent a QMP greeting: it is a QEMU monitor, not a guest agent"
            )
        self._tell_transcript("in", message)
        if "id" in message and ("return" in message or "error" in message):
            self._route_reply(message)
        else:
            self.notes.append(f"dropped a stale message before the sync: {message!r:.100}")

    # -- failure -------------------------------------------------------------------

    def _fail(self, failure: QmpshError) -> None:
        super()._fail(failure)
        sync = self._sync
        if sync is not None and not sync.done and self._failure is not None:
            sync._fail(self._failure)


def _random_id() -> int:
    """A fresh id for each sync, so an older sync's late answer is never taken for it.

    os.urandom, not ``secrets``: that imports hmac and random, ~10 ms of every start.
    """
    return int.from_bytes(os.urandom(4), "big") % (2**31 - 1) + 1


def _json_object(line: bytes | bytearray) -> dict[str, Any] | None:
    try:
        message = wire.loads(line)
    except ValueError:  # invalid UTF-8 and too deep included
        return None
    return message if isinstance(message, dict) else None


def is_guest_agent(client: object) -> bool:
    """The session is talking to qemu-ga: no HMP, no events, its own prompt."""
    return isinstance(client, GuestAgent)


GREETING_GLANCE = 0.5  # QEMU greets at once on accept; qemu-ga never speaks first


def _greets(address: Address, wait: float) -> bool:
    """A first look that sends nothing: does the peer greet like QEMU?

    Sending qemu-ga's 0xFF and sync to a QEMU that greeted left its monitor not
    greeting the next client now and then, so QEMU is told apart before anything is
    sent.  Silence (qemu-ga, or a QEMU busy with another client) means asking.
    """
    import socket

    from qmpsh.address import UnixAddress

    if not isinstance(address, UnixAddress):
        return False  # TCP: left to the probe
    deadline = time.monotonic() + wait
    while True:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(GREETING_GLANCE)
                sock.connect(address.path)
                try:
                    first = sock.recv(16)
                except TimeoutError:
                    return False
                return first.lstrip().startswith(b'{"QMP"')
        except (FileNotFoundError, ConnectionRefusedError):
            if time.monotonic() >= deadline:
                return False  # the probe says why
            time.sleep(0.05)


def answers_as_guest_agent(address: Address, *, wait: float, timeout: float) -> bool:
    """``-N``: QMP if the peer greets, a guest agent if it answers the sync instead.

    QEMU greets every client at once; qemu-ga says nothing until asked.  So a probe
    connection sends the sync straight away and takes whichever comes first.  Neither
    within ``BUSY_WAIT``: both serve one client at a time, so say that.
    """
    if _greets(address, wait):
        return False  # QEMU: nothing was sent to it, so its monitor is left as it was
    probe = GuestAgent(address, timeout=timeout)
    try:
        probe.connect(wait)
    except NotAGuestAgent:
        return False
    except AgentBusy:
        raise ConnectError(
            f"no QMP greeting and no answer to {SYNC} from {address} within "
            f"{min(timeout, BUSY_WAIT):g} s (QEMU and qemu-ga serve one client at a time: "
            "is another connected?)"
        ) from None
    except ProtocolError:
        return False  # not qemu-ga; QmpClient will say what it is
    finally:
        probe.close()
    return True
