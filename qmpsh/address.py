"""Where the monitor is: parse a user's address, or start a throwaway QEMU to talk to.

``parse_address`` accepts what people paste from QEMU command lines and docs:
``PATH``, ``unix:PATH``, ``HOST:PORT``, ``localhost:4444``, ``127.0.0.1:4444``,
``[::1]:4444`` and ``ssh://[USER@]HOST[:PORT]/PATH`` (see ``ssh_tunnel``).  Anything
with a slash, or without a colon, is a path, so ``./qmp.sock`` and ``qmp.sock`` both
mean a unix socket.

``launch_qemu`` is behind ``--launch``: a small demo PC (``DEMO_MACHINE``) with QMP on a
unix socket in a private temp dir, VNC and SPICE on free loopback ports, and the user's
extra arguments appended (QEMU lets a later ``-M q35`` or ``-m 256`` override ours).
It is stopped by PID, never by name, and dies with qmpsh even when qmpsh is killed
(``launch_dirs``).

Every run parses an address but few launch QEMU, so the modules only launching
needs (subprocess, tempfile, shutil, ipaddress for the loopback check) are
imported where they are used: a ``-c`` call starts measurably faster without them.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from contextlib import closing
from typing import TYPE_CHECKING, NamedTuple

from qmpsh.errors import InputError, LaunchError

if TYPE_CHECKING:
    import subprocess
    from pathlib import Path

    from qmpsh.libvirt_address import LibvirtAddress
    from qmpsh.ssh_tunnel import SshAddress

DEFAULT_BINARY = "qemu-system-x86_64"
VNC_BASE_PORT = 5900
VNC_DISPLAYS = 1000  # --launch picks a display at random among the first ones (see _launch_once)
READY_WAIT = 30.0  # an upper bound for a failing start on a busy machine, not a timing
LAUNCH_ATTEMPTS = 5
PORT_CLASH = ("Address already in use", "Failed to find an available port")
STOP_GRACE = 5.0
STDERR_TAIL_LINES = 5


# NamedTuples rather than frozen dataclasses: each of those costs ~0.4 ms at every start.


class UnixAddress(NamedTuple):
    """A QMP unix socket; the path is kept as typed so messages show what the user wrote."""

    path: str

    def __str__(self) -> str:
        return self.path


class TcpAddress(NamedTuple):
    """A QMP TCP endpoint; ``host`` holds IPv6 literals without brackets."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def is_loopback(self) -> bool:
        """QMP has no authentication, so the CLI warns when this is False."""
        if self.host.lower() == "localhost":
            return True
        import ipaddress

        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


Address = UnixAddress | TcpAddress
GUEST_AGENT_PREFIX = "qga:"


def split_guest_agent(text: str) -> tuple[bool, str]:
    """``qga:ADDRESS`` names a qemu-guest-agent socket: ``(True, ADDRESS)``, else ``(False, text)``.

    The dialect is not part of the address (the socket is dialled the same way); it
    picks the client that speaks to it.
    """
    stripped = text.strip()
    if stripped.startswith(GUEST_AGENT_PREFIX):
        return True, stripped[len(GUEST_AGENT_PREFIX) :]
    return False, text


def parse_address(text: str) -> Address | LibvirtAddress | SshAddress:
    """Turn a command-line address into a unix, TCP, ssh or libvirt address, or raise InputError."""
    stripped = text.strip()
    if not stripped:
        raise InputError("empty monitor address: give a socket path or HOST:PORT")
    if stripped.startswith("libvirt:"):
        from qmpsh.libvirt_address import parse_libvirt_address

        return parse_libvirt_address(stripped)
    if stripped.startswith("ssh://"):
        from qmpsh.ssh_tunnel import parse_ssh_address

        return parse_ssh_address(stripped)
    if stripped.startswith("unix:"):
        return _unix(stripped[len("unix:") :], column=6)
    if stripped.startswith("tcp:"):
        return _tcp(stripped[len("tcp:") :], offset=4)
    if stripped.startswith("["):
        return _tcp(stripped, offset=0)
    if "/" in stripped or ":" not in stripped:
        return _unix(stripped, column=1)
    return _tcp(stripped, offset=0)


def _unix(path: str, column: int) -> UnixAddress:
    if not path:
        raise InputError("unix: needs a socket path after it", column)
    return UnixAddress(path)


def _tcp(text: str, offset: int) -> TcpAddress:
    """Split HOST:PORT or [V6]:PORT; ``offset`` keeps error columns true to the input."""
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise InputError(f"missing ']' in {text!r}: write IPv6 as [::1]:PORT", offset + 1)
        host, rest = text[1:close], text[close + 1 :]
        if not rest.startswith(":"):
            raise InputError(f"missing ':PORT' after ']' in {text!r}", offset + close + 2)
        port_text, port_column = rest[1:], offset + close + 3
    else:
        host, _, port_text = text.rpartition(":")
        port_column = offset + len(host) + 2
        if ":" in host:
            raise InputError(f"IPv6 addresses need brackets: [{host}]:{port_text}", offset + 1)
    if not host:
        raise InputError(f"missing host in {text!r}: write HOST:PORT", offset + 1)
    return TcpAddress(host, _port(port_text, port_column))


def _port(text: str, column: int) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise InputError(f"bad port {text!r}: expected a number from 1 to 65535", column)
    return int(text)


class LaunchedQemu:
    """A QEMU we started for ``--launch``; ``stop()`` is safe to call any number of times."""

    def __init__(
        self,
        proc: subprocess.Popen[bytes],
        temp_dir: Path,
        vnc_port: int,
        spice_port: int,
        lock_fd: int = -1,
    ) -> None:
        self.proc = proc
        self.temp_dir = temp_dir
        self.lock_fd = lock_fd  # holds temp_dir's lock while we live (see launch_dirs)
        self.socket_path = str(temp_dir / "qmp.sock")
        self.stderr_path = temp_dir / "qemu.stderr"
        self.vnc_port = vnc_port
        self.spice_port = spice_port

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period; works if QEMU already exited."""
        import shutil
        import subprocess

        if self.proc.poll() is None:
            self.proc.terminate()  # by PID; Popen skips it once reaped
            try:
                self.proc.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.temp_dir, ignore_errors=True)
        if self.lock_fd >= 0:
            os.close(self.lock_fd)
            self.lock_fd = -1

    def stderr_tail(self, lines: int = STDERR_TAIL_LINES) -> str:
        """The last lines QEMU wrote to stderr, for error messages."""
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def __enter__(self) -> LaunchedQemu:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def launch_qemu(extra_args: Sequence[str] = (), *, binary: str = DEFAULT_BINARY) -> LaunchedQemu:
    """Start a throwaway QEMU and wait until it answers QMP; raise LaunchError on failure.

    Call it from the main thread: QEMU is told to stop when the thread that started
    it dies (see ``launch_dirs``), and only the main thread lives as long as qmpsh.
    Stale temp dirs of earlier, killed runs are swept first.
    """
    import shutil

    path = shutil.which(binary)
    if path is None:
        raise LaunchError(
            f"{binary} not found on PATH; install it (Debian: apt-get install qemu-system-x86)"
        )
    attempt = 1
    while True:
        try:
            return _launch_once(path, extra_args)
        except LaunchError as e:
            # Another process can take a port between our check and QEMU's bind: try again.
            if attempt >= LAUNCH_ATTEMPTS or not any(c in str(e) for c in PORT_CLASH):
                raise
            attempt += 1


def _launch_once(path: str, extra_args: Sequence[str]) -> LaunchedQemu:
    import random

    from qmpsh import launch_dirs

    launch_dirs.sweep_stale()
    temp_dir, lock_fd = launch_dirs.make_locked()
    try:
        # A random first display: qmpshs launched side by side would all pick 5900.
        vnc_port = free_port(VNC_BASE_PORT + random.randrange(VNC_DISPLAYS))
        spice_port = free_port(avoid=vnc_port)
        args = [path, *_base_args(temp_dir / "qmp.sock", vnc_port, spice_port), *extra_args]
        proc = _spawn(args, temp_dir, lock_fd)
    except BaseException:
        import shutil

        shutil.rmtree(temp_dir, ignore_errors=True)
        os.close(lock_fd)
        raise
    # Both hold the lock now (QEMU inherited it): the dir is in use while either lives.
    qemu = LaunchedQemu(proc, temp_dir, vnc_port, spice_port, lock_fd)
    _wait_until_ready(qemu)
    return qemu


# The demo machine: real enough that every example in the README's input-language
# section runs (a PCI bus for ``device_add driver=e1000``, a CD-ROM ``ide1-cd0`` to
# eject, a disk whose backend is ``disk0`` for snapshots, bitmaps and mirrors), cheap
# enough to start in about the time ``-machine none`` took: no guest, so ``-S`` keeps it
# in prelaunch (``cont`` runs the BIOS, which finds nothing to boot and idles), TCG (QEMU's
# default), 32 MiB, and media on ``null-co``, which stores nothing and reads zeros.
DEMO_MACHINE = (
    *("-machine", "pc", "-m", "32", "-S", "-display", "none", "-nodefaults"),
    *("-drive", "if=ide,index=2,media=cdrom,driver=null-co,read-zeroes=on,read-only=on"),
    *("-drive", "if=none,id=disk0,driver=null-co,size=64M,read-zeroes=on"),
    *("-device", "virtio-blk-pci,drive=disk0,id=virtio-disk0"),
)


def _base_args(sock: Path, vnc_port: int, spice_port: int) -> list[str]:
    """The QEMU command line of ``--launch``, before the user's own arguments."""
    return [
        *DEMO_MACHINE,
        *("-qmp", f"unix:{sock},server=on,wait=off"),
        *("-vnc", f"127.0.0.1:{vnc_port - VNC_BASE_PORT}"),
        *("-spice", f"addr=127.0.0.1,port={spice_port},disable-ticketing=on"),
    ]


def _spawn(args: list[str], temp_dir: Path, lock_fd: int) -> subprocess.Popen[bytes]:
    """Start QEMU so that it cannot outlive qmpsh, whatever ends qmpsh (even SIGKILL).

    A new session keeps the shell's Ctrl-C (SIGINT to the foreground group) away from
    QEMU; the kernel's parent-death signal then stops it when qmpsh dies.  QEMU also
    inherits the temp dir's lock, so a later ``--launch`` sweeps the dir only once
    both are gone.
    """
    import shutil
    import subprocess

    from qmpsh.launch_dirs import die_with_parent

    with open(temp_dir / "qemu.stderr", "wb") as err:
        try:
            return subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
                pass_fds=(lock_fd,),
                preexec_fn=die_with_parent(),
            )
        except OSError as e:
            shutil.rmtree(temp_dir, ignore_errors=True)
            raise LaunchError(f"cannot start {args[0]}: {e.strerror}") from None


def _wait_until_ready(qemu: LaunchedQemu, timeout: float = READY_WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not _answers_qmp(qemu.socket_path, max(0.1, deadline - time.monotonic())):
        code = qemu.proc.poll()
        if code is not None:
            tail = qemu.stderr_tail()
            qemu.stop()
            raise LaunchError(f"QEMU exited early (status {code}): {tail or 'no output'}")
        if time.monotonic() > deadline:
            qemu.stop()
            raise LaunchError(f"QEMU did not answer on its QMP socket within {timeout:g} s")
        time.sleep(0.01)


def _answers_qmp(path: str, timeout: float) -> bool:
    """True once QEMU's main loop runs, i.e. after VNC and SPICE are bound.

    The socket file, and even the greeting (sent by the monitor's I/O thread), come
    before QEMU sets up VNC and SPICE, and QEMU still exits if those ports are taken.
    Only a reply to a command proves start-up is over.  The probe then hangs up;
    QEMU drops it and greets the real client next.
    """
    with closing(socket.socket(socket.AF_UNIX)) as probe:
        probe.settimeout(timeout)
        try:
            probe.connect(path)
            probe.sendall(b'{"execute": "qmp_capabilities"}\n')
            return _read_until(probe, b'"return"')
        except OSError:  # missing, refused, reset or timed out: not ready (or dead)
            return False


def _read_until(sock: socket.socket, marker: bytes) -> bool:
    received = b""
    while marker not in received:
        chunk = sock.recv(4096)
        if not chunk:
            return False
        received += chunk
    return True


def free_port(start: int = 0, *, avoid: int = 0) -> int:
    """A TCP port free on 127.0.0.1 right now: at or above ``start``, never ``avoid``.

    With ``start`` 0 the kernel picks an ephemeral port.  QEMU binds it a moment
    later; the small race is accepted, and an early exit is reported with its stderr.
    """
    candidates = range(start, 65536) if start else [0] * 10
    for port in candidates:
        found = _bind_once(port)
        if found is not None and found != avoid:
            return found
    raise LaunchError(f"no free TCP port at or above {start} on 127.0.0.1")


def _bind_once(port: int) -> int | None:
    with closing(socket.socket()) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return None
        return int(s.getsockname()[1])
