"""What a monitor is to the rest of qmpsh, and which one an address gets.

Everything above this line (the session, the shell's commands, the interactive
shell, scripts) talks to a ``Monitor``: connect, send a request and wait for or
abandon its reply, hear events and disconnects, close.  ``QmpClient`` (a QMP socket)
is one implementation; a libvirt domain, an ssh-forwarded socket or the guest agent
plug in as others, each saying in ``capabilities`` what it cannot do, so callers ask
before trying instead of catching failures.  The model is go-qemu's ``Monitor``
interface (connect, disconnect, run, events).

``open_monitor`` is the one place an address string becomes a monitor: a new kind
of address is added there and nowhere else.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, Self

from qmpsh.errors import CommandError, InputError
from qmpsh.loss_listeners import DisconnectListener

if TYPE_CHECKING:
    from qmpsh.errors import QmpshError
    from qmpsh.fds import PassedFile
    from qmpsh.ssh_tunnel import SshForward

EventListener = Callable[[dict[str, Any]], None]
# ("out"|"in"|"event"|"fd", message); "fd" ({"file": PATH}) precedes the "out" it went with
TranscriptListener = Callable[[str, dict[str, Any]], None]


class Capabilities(NamedTuple):  # not a dataclass: ~0.4 ms less at every start
    """What a monitor can do beyond sending requests; the defaults are a QMP socket's."""

    events: bool = True  # it sends events (the guest agent does not)
    schema: bool = True  # query-qmp-schema answers (the guest agent has none)
    negotiation: bool = True  # qmp_capabilities is ours to send (libvirt sends its own)
    oob: bool = False  # out-of-band execution was negotiated
    fd_passing: bool = False  # file descriptors can go with a request (unix socket, libvirt)


class Pending(Protocol):
    """A request on the wire: wait for its reply, or stop caring (Ctrl-C)."""

    @property
    def done(self) -> bool: ...

    def result(self, timeout: float | None = None) -> dict[str, Any]:
        """The whole reply (``return`` or ``error``); CommandTimeout after ``timeout`` s."""
        ...

    def abandon(self) -> None:
        """Drop the reply when it comes; the monitor stays usable."""
        ...


class Monitor(Protocol):
    """One connection to one target, usable from several threads at once.

    Listeners run on whichever thread reads the connection, so they must be quick and
    must not send requests.  A monitor connects once in its life; reconnecting makes a
    new one (``reopen``) that ``inherit_listeners`` from the old.
    """

    @property
    def address(self) -> object:
        """Where it connects (shown with ``str``)."""
        ...

    @property
    def timeout(self) -> float: ...

    @property
    def greeting(self) -> dict[str, Any]: ...

    @property
    def version(self) -> tuple[int, int, int]:
        """QEMU's (major, minor, micro), known once connected."""
        ...

    @property
    def package(self) -> str: ...

    @property
    def negotiates(self) -> bool:
        """What ``connect`` was asked to do, so a reconnect can do the same."""
        ...

    @property
    def connected(self) -> bool: ...

    @property
    def failure(self) -> QmpshError | None:
        """Why the connection ended, or None while it is alive (or not yet made)."""
        ...

    @property
    def capabilities(self) -> Capabilities: ...

    def connect(self, wait: float = 0.0, *, negotiate: bool = True) -> None: ...

    def close(self) -> None: ...

    def submit(self, message: dict[str, Any], *, fds: Sequence[PassedFile] = ()) -> Pending:
        """Send a whole QMP message and return at once.

        ``fds`` go with it (SCM_RIGHTS), only where ``capabilities.fd_passing`` says so.
        """
        ...

    def execute_message(
        self,
        message: dict[str, Any],
        *,
        timeout: float | None = None,
        fds: Sequence[PassedFile] = (),
    ) -> dict[str, Any]:
        """Send a whole QMP message (with ``fds``, as ``submit``) and wait for the whole reply."""
        ...

    def execute(
        self, name: str, arguments: dict[str, Any] | None = None, *, timeout: float | None = None
    ) -> Any:
        """Run one command and return its ``return`` value; an error reply raises."""
        ...

    def add_event_listener(self, callback: EventListener) -> None: ...

    def add_transcript_listener(self, callback: TranscriptListener) -> None: ...

    def add_disconnect_listener(self, callback: DisconnectListener) -> None:
        """Called once with the failure when a made connection is lost (at once if it was)."""

    def inherit_listeners(self, old: Self) -> None:
        """Take over ``old``'s listeners (before connecting), for a reconnect."""
        ...


def open_monitor(
    text: str,
    *,
    timeout: float,
    notify: Callable[[str], None] | None = None,
    guest_agent: bool = False,
    sniff: bool = False,
    wait: float = 0.0,
) -> Monitor:
    """The monitor (not yet connected) for an address as the user typed it.

    Not connected, so that listeners (the event log, ``--events``, the transcript)
    are in place before the first event can arrive.  ``notify`` hears what the user
    should know once, when connecting (libvirt's taint); a reconnect passes none.
    ``qga:ADDRESS`` or ``guest_agent`` speak qemu-guest-agent's dialect on a socket;
    ``sniff`` (``-N``) lets a probe decide: QEMU greets, qemu-ga answers a sync.
    """
    from qmpsh.address import parse_address, split_guest_agent
    from qmpsh.client import QmpClient

    prefixed, text = split_guest_agent(text)
    monitor = monitor_at(parse_address(text), timeout=timeout, notify=notify)
    agent = prefixed or guest_agent
    if not isinstance(monitor, QmpClient):
        if agent:
            raise InputError(f"{text}: a guest agent is reached on a socket, not through libvirt")
        return monitor
    if not agent and sniff and forward_of(monitor) is None:
        from qmpsh.guest_agent import answers_as_guest_agent

        agent = answers_as_guest_agent(monitor.address, wait=wait, timeout=timeout)
    if agent:
        from qmpsh.guest_agent import GuestAgent

        return GuestAgent(monitor.address, timeout=timeout)
    return monitor


def reopen(old: Monitor) -> Monitor:
    """A new monitor for ``old``'s target, with its timeout and listeners, not yet connected."""
    agents = sys.modules.get("qmpsh.guest_agent")
    if agents is not None and isinstance(old, agents.GuestAgent):
        monitor: Monitor = agents.GuestAgent(old.address, timeout=old.timeout)
    else:
        monitor = monitor_at(old.address, timeout=old.timeout)
    monitor.inherit_listeners(old)
    return monitor


def monitor_at(
    address: object, *, timeout: float, notify: Callable[[str], None] | None = None
) -> Monitor:
    """The kind of monitor an address needs: the one place a new kind plugs in.

    The ssh and libvirt modules are imported only when the address is theirs (an
    ``ssh://`` address can only exist once ``ssh_tunnel`` parsed it), so a ``-c``
    call on a local socket pays for neither.
    """
    from qmpsh.address import TcpAddress, UnixAddress
    from qmpsh.client import QmpClient

    ssh = sys.modules.get("qmpsh.ssh_tunnel")
    if ssh is not None and isinstance(address, ssh.SshAddress):
        address = ssh.forwarded(address, timeout=timeout)  # a UnixAddress: the local end
    if isinstance(address, UnixAddress | TcpAddress):
        return QmpClient(address, timeout=timeout)
    libvirt = sys.modules.get("qmpsh.libvirt_address")
    if libvirt is not None and isinstance(address, libvirt.LibvirtAddress):
        from qmpsh.libvirt_monitor import open_libvirt_monitor

        return open_libvirt_monitor(address, timeout, notify)
    raise TypeError(f"no monitor for an address of type {type(address).__name__}")


def connect(monitor: Monitor, *, wait: float = 0.0, negotiate: bool = True) -> None:
    """``monitor.connect``, through its ssh forward when its address has one.

    The forward outlives one connection (``reconnect`` dials through it again), so
    whoever opened the monitor stops it: see ``forward_of``.
    """
    from qmpsh.client import QmpClient

    forward = forward_of(monitor)
    if forward is not None and isinstance(monitor, QmpClient):
        forward.connect(monitor, wait=wait, negotiate=negotiate)
    else:
        monitor.connect(wait=wait, negotiate=negotiate)


def forward_of(monitor: Monitor) -> SshForward | None:
    """The ssh forward a monitor dials through, or None for a direct connection."""
    ssh = sys.modules.get("qmpsh.ssh_tunnel")
    if ssh is not None and isinstance(monitor.address, ssh.ForwardedAddress):
        forward: SshForward = monitor.address.forward
        return forward
    return None


def execute_command(
    monitor: Monitor,
    name: str,
    arguments: dict[str, Any] | None = None,
    *,
    timeout: float | None = None,
) -> Any:
    """``Monitor.execute`` for every backend: one command, its ``return`` value, and a QMP
    error raised as CommandError (whatever shape the peer gave it)."""
    message: dict[str, Any] = {"execute": name}
    if arguments:
        message["arguments"] = arguments
    reply = monitor.execute_message(message, timeout=timeout)
    if "error" in reply:
        raise CommandError.from_reply(reply)
    return reply.get("return")
