"""Remote QMP sockets over OpenSSH: ``ssh://[USER@]HOST[:PORT]/abs/path/qmp.sock``.

qmpsh does not speak ssh itself: it runs the user's own ``ssh`` (from PATH, or the
command in ``$QMPSH_SSH``, split like a shell would) so ``~/.ssh/config``, agents,
known_hosts and ProxyJump all apply, and asks it to forward the remote unix socket to
a local one (``ssh -N -L LOCAL:REMOTE``, OpenSSH 6.7 or later).  The normal client
then talks to the local socket; nothing above it knows about ssh.

The local end lives in a private (0700) temp dir.  Once a client is connected the
socket file and the dir are removed at once: ssh keeps carrying the connection it
accepted, and nothing is left on disk even if qmpsh is SIGKILLed.  Because the file is
gone, a later ``reconnect`` starts a new ssh; failed attempts reuse the forward that is
up.  ssh is stopped by PID on every way out (``close``), and dies with qmpsh even on
SIGKILL (``PR_SET_PDEATHSIG``).

ssh runs in its own session, without a terminal: terminal signals (Ctrl-C, a closed
terminal) are for qmpsh, which then stops ssh itself, and ssh can never draw a password
prompt over the shell's screen.  So it runs with ``BatchMode=yes``: with no terminal to
ask on, a prompt could only fail later and less clearly (keys without a passphrase or
from an agent work; passwords do not).  Command-line options beat ``~/.ssh/config``, but
the words of ``$QMPSH_SSH`` come before ours and OpenSSH keeps the first value it reads,
so ``QMPSH_SSH="ssh -o BatchMode=no"`` (for an SSH_ASKPASS helper) wins over ours.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from contextlib import closing, suppress
from typing import IO, TYPE_CHECKING, NamedTuple

from qmpsh.address import UnixAddress
from qmpsh.errors import ConnectError, InputError

if TYPE_CHECKING:
    import subprocess

    from qmpsh.client import QmpClient

    Popen = subprocess.Popen[bytes]
    Stream = int | IO[bytes] | None

SCHEME = "ssh://"
# Ours come after $QMPSH_SSH's words, so the user's own -o options win (first one counts).
SSH_OPTIONS = (
    *("-o", "BatchMode=yes"),  # no terminal to prompt on: fail at once, with ssh's reason
    *("-o", "LogLevel=ERROR"),  # stderr then holds only what went wrong
    *("-o", "ControlPath=none"),  # our own connection, so killing our ssh ends the forward
    *("-a", "-x", "-T"),  # a forwarded socket needs no agent, X11 or terminal
)
FORWARD_OPTIONS = ("-N", "-o", "ExitOnForwardFailure=yes")
LOCAL_NAME = "qmp.sock"
STOP_GRACE = 5.0
STDERR_TAIL = 4096
PROBE_FIRST_DELAY = 0.05
PROBE_MAX_DELAY = 1.0
PROBE_TIMEOUT = 5.0  # sshd's hang-up comes within a round trip; a greeting at once
MAX_SOCKET_PATH = 100  # sun_path holds 108 bytes; ssh cannot bind a longer path
PR_SET_PDEATHSIG = 1


class SshAddress(NamedTuple):
    """A socket on another host, reached through ssh; ``path`` is "" for a bare host."""

    host: str
    path: str
    user: str | None = None
    port: int | None = None

    @property
    def origin(self) -> str:
        """``ssh://[USER@]HOST[:PORT]``, as the user would write it (IPv6 in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        user = f"{self.user}@" if self.user else ""
        port = f":{self.port}" if self.port else ""
        return f"{SCHEME}{user}{host}{port}"

    def __str__(self) -> str:
        return self.origin + self.path


def parse_ssh_address(text: str, *, with_path: bool = True) -> SshAddress:
    """Parse ``ssh://[USER@]HOST[:PORT]/abs/path``; ``with_path=False`` wants no path."""
    rest = text.strip()[len(SCHEME) :]
    authority, slash, path = rest.partition("/")
    path = slash + path
    user, at, hostport = authority.rpartition("@")
    if at and not user:
        raise InputError(f"empty user name in {text!r}: write ssh://USER@HOST/PATH")
    host, port = _host_port(hostport, text)
    for what, value in (("user", user), ("host", host)):
        if value.startswith("-") or not value.isprintable() or any(c.isspace() for c in value):
            raise InputError(f"bad ssh {what} {value!r} in {text!r}")
    if with_path:
        _check_remote_path(path, text)
    elif path not in ("", "/"):
        raise InputError(f"give a host without a path: ssh://[USER@]HOST[:PORT], not {text!r}")
    return SshAddress(host, path if with_path else "", user or None, port)


def _host_port(text: str, whole: str) -> tuple[str, int | None]:
    if text.startswith("["):
        close = text.find("]")
        if close < 0:
            raise InputError(f"missing ']' in {whole!r}: write IPv6 as ssh://[::1]/PATH")
        host, rest = text[1:close], text[close + 1 :]
        if rest and not rest.startswith(":"):
            raise InputError(f"unexpected {rest!r} after ']' in {whole!r}")
        port_text = rest[1:] if rest else None
    else:
        host, colon, port_text_or_empty = text.partition(":")
        port_text = port_text_or_empty if colon else None
    if not host:
        raise InputError(f"missing host in {whole!r}: write ssh://[USER@]HOST[:PORT]/PATH")
    if port_text is None:
        return host, None
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise InputError(f"bad ssh port {port_text!r} in {whole!r}: expected 1 to 65535")
    return host, int(port_text)


def _check_remote_path(path: str, whole: str) -> None:
    if not path or path == "/":
        raise InputError(f"missing socket path in {whole!r}: write ssh://HOST/abs/path/qmp.sock")
    if not path.isprintable():
        raise InputError(f"control characters in the socket path of {whole!r}")
    if ":" in path:  # ssh -L LOCAL:REMOTE cannot carry a colon in a unix socket path
        raise InputError(f"ssh cannot forward a socket path with ':' in it: {path!r}")


# -- the ssh command ------------------------------------------------------------


def ssh_program() -> list[str]:
    """``$QMPSH_SSH`` split as a shell would (``ssh -F FILE``), else plain ``ssh``."""
    import shlex

    configured = os.environ.get("QMPSH_SSH", "").strip()
    if not configured:
        return ["ssh"]
    try:
        words = shlex.split(configured)
    except ValueError as e:
        raise InputError(f"QMPSH_SSH is not a valid command line: {e}") from None
    return words


def ssh_argv(remote: SshAddress, *middle: str, command: str | None = None) -> list[str]:
    """The full ssh command line for ``remote``: the user's words, ours, then the host."""
    argv = [*ssh_program(), *SSH_OPTIONS, *middle]
    if remote.user:
        argv += ["-l", remote.user]
    if remote.port:
        argv += ["-p", str(remote.port)]
    argv += ["--", remote.host]  # "--": a host can never be read as an option
    return argv if command is None else [*argv, command]


def spawn_ssh(argv: list[str], stdin: Stream, stdout: Stream, stderr: Stream) -> Popen:
    """Start ssh in its own session, tied to our life; a missing ssh is a ConnectError.

    ``PR_SET_PDEATHSIG`` fires when the *thread* that forked ssh ends, not the process:
    a ``reconnect`` running on a worker thread would lose its forward with the thread.
    So ssh is always forked from the main thread or from one thread that lives as
    long as qmpsh.
    """
    import subprocess

    hook = _die_with_us()

    def start() -> Popen:
        return subprocess.Popen(
            argv, stdin=stdin, stdout=stdout, stderr=stderr, start_new_session=True, preexec_fn=hook
        )

    try:
        return _on_lasting_thread(start)
    except OSError as e:
        raise ConnectError(_cannot_run(argv[0], e)) from None


def _cannot_run(program: str, e: OSError) -> str:
    if "QMPSH_SSH" in os.environ and os.environ["QMPSH_SSH"].strip():
        return f"cannot run {program!r} from QMPSH_SSH: {e.strerror}"
    return (
        f"cannot run {program}: {e.strerror}; install the OpenSSH client "
        "(Debian: apt-get install openssh-client) or name one in QMPSH_SSH"
    )


def _die_with_us() -> Callable[[], None] | None:
    """A preexec hook asking Linux to SIGTERM the child when its parent goes, if we can."""
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # not Linux: ssh then outlives a SIGKILLed qmpsh
        return None
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    parent = os.getpid()

    def hook() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # we died between fork and prctl: nobody will ask again
            os._exit(1)

    return hook


_lasting: list[_LastingThread] = []
_lasting_lock = threading.Lock()


class _LastingThread:
    """One daemon thread that runs calls for threads that may end before their child."""

    def __init__(self) -> None:
        import queue

        self.calls: queue.SimpleQueue[_Call] = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="qmpsh-ssh-spawner", daemon=True).start()

    def _serve(self) -> None:
        while True:
            self.calls.get().run()

    def run(self, call: Callable[[], object]) -> object:
        job = _Call(call)
        self.calls.put(job)
        job.done.wait()
        if job.error is not None:
            raise job.error
        return job.result


class _Call:
    """A call handed to the lasting thread, with its outcome."""

    def __init__(self, call: Callable[[], object]) -> None:
        self.call = call
        self.done = threading.Event()
        self.result: object = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self.call()
        except BaseException as e:  # handed back to the calling thread, which raises it
            self.error = e
        self.done.set()


def _on_lasting_thread(call: Callable[[], Popen]) -> Popen:
    if threading.current_thread() is threading.main_thread():
        return call()
    with _lasting_lock:
        if not _lasting:
            _lasting.append(_LastingThread())
    return _lasting[0].run(call)  # type: ignore[return-value]


# -- what went wrong, from ssh's own words ------------------------------------------

_KINDS = (
    ("Permission denied", "authentication failed"),
    ("Could not resolve hostname", "unknown host"),
    ("Name or service not known", "unknown host"),
    ("Connection refused", "connection refused"),
    ("Host key verification failed", "host key not trusted"),
    ("No route to host", "no route to host"),
    ("Connection timed out", "connection timed out"),
    ("Operation timed out", "connection timed out"),
    ("forwarding", "forward refused"),
)


def ssh_failure(remote: SshAddress, status: int | None, stderr: str) -> ConnectError:
    """One line: what kind of failure, then ssh's own last words (made printable)."""
    lines = [_printable(line) for line in stderr.splitlines()]
    said = next((line for line in reversed(lines) if line), "")
    kind = next((kind for marker, kind in _KINDS if marker in said), None)
    where = f"cannot reach {remote} over ssh"
    if not said:
        return ConnectError(f"{where}: ssh exited (status {status}) without saying why")
    said = said.removeprefix("ssh: ")
    return ConnectError(f"{where}: {kind}: ssh: {said}" if kind else f"{where}: ssh: {said}")


def _printable(text: str) -> str:
    """ssh relays text from the remote (banners, reasons): no control character passes."""
    cleaned = "".join(c if c.isprintable() else "?" for c in text.strip())
    return cleaned[:300]


def missing_remote(remote: SshAddress, waited: float | None = None) -> ConnectError:
    """The forward is up, but sshd hung up at once: nothing (allowed) at the remote path."""
    within = f", still after {waited:g} s" if waited else ""
    return ConnectError(
        f"cannot connect to {remote}: the remote socket {remote.path} on {remote.host} is "
        f"missing or refused the connection{within} (sshd hung up before the QMP greeting)"
    )


# -- the forward -----------------------------------------------------------------------


class ForwardedAddress(UnixAddress):
    """The local end of a forward: dialled as a unix socket, named as the remote one.

    Being a ``UnixAddress``, the client dials it unchanged; ``str()`` gives the
    ``ssh://`` address, so every message and the shell's banner name what the user typed.
    """

    forward: SshForward

    def __str__(self) -> str:
        return str(self.forward.remote)


def _forwarded(path: str, forward: SshForward) -> ForwardedAddress:
    address = ForwardedAddress(path)
    address.forward = forward
    return address


class SshForward:
    """One ``ssh -N -L`` process and its private socket dir; ``close()`` is always safe."""

    def __init__(self, remote: SshAddress, *, timeout: float) -> None:
        self.remote = remote
        self.timeout = timeout
        self.proc: Popen | None = None
        self.dir: str | None = None
        self._stderr: IO[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def address(self) -> ForwardedAddress:
        """The address to give a client; before ``open`` its path is "" (dials nothing)."""
        return _forwarded(os.path.join(self.dir, LOCAL_NAME) if self.dir else "", self)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def open(self) -> ForwardedAddress:
        """Reuse the forward when it is up, else start ssh and wait until it is."""
        with self._lock:
            if not (self.alive and self.dir and os.path.exists(self.address.path)):
                self._stop()
                self._start()
            return self.address

    def _start(self) -> None:
        import subprocess
        import tempfile

        self.dir = tempfile.mkdtemp(prefix="qmpsh-ssh-")  # 0700: only we can dial it
        if len(os.path.join(self.dir, LOCAL_NAME)) > MAX_SOCKET_PATH:  # a deep $TMPDIR
            os.rmdir(self.dir)
            self.dir = tempfile.mkdtemp(prefix="qmpsh-ssh-", dir="/tmp")
        local = os.path.join(self.dir, LOCAL_NAME)
        # Unlinked, so nothing is left behind; closed in _stop.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        argv = ssh_argv(self.remote, *FORWARD_OPTIONS, "-L", f"{local}:{self.remote.path}")
        self.proc = spawn_ssh(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._stderr
        )
        self._wait_until_up(local)

    def _wait_until_up(self, local: str) -> None:
        """The forward is up when ssh has bound the local socket and is still running."""
        import subprocess

        assert self.proc is not None
        deadline = time.monotonic() + self.timeout
        while not os.path.exists(local):
            try:
                status = self.proc.wait(timeout=0.01)
            except subprocess.TimeoutExpired:
                if time.monotonic() < deadline:
                    continue
                self._stop()
                raise ConnectError(
                    f"cannot reach {self.remote} over ssh: no forward within {self.timeout:g} s"
                ) from None
            failure = ssh_failure(self.remote, status, self._stderr_tail())
            self._stop()
            raise failure

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        with suppress(OSError):
            size = self._stderr.seek(0, os.SEEK_END)
            self._stderr.seek(max(0, size - STDERR_TAIL))
            return self._stderr.read().decode("utf-8", "replace")
        return ""

    def seal(self) -> None:
        """A client is connected: remove the socket file and dir; ssh keeps the connection."""
        with self._lock:
            self._remove_dir()

    def close(self) -> None:
        """Stop ssh by PID and remove what it left; safe to call any number of times."""
        with self._lock:
            self._stop()

    def _stop(self) -> None:
        import subprocess

        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=STOP_GRACE)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        self._remove_dir()  # ssh never removes its local socket file, even on SIGTERM

    def _remove_dir(self) -> None:
        if self.dir is not None:
            with suppress(FileNotFoundError):
                os.unlink(os.path.join(self.dir, LOCAL_NAME))
            with suppress(OSError):
                os.rmdir(self.dir)
            self.dir = None

    # -- connecting a client through it --------------------------------------------

    def connect(self, client: QmpClient, *, wait: float, negotiate: bool) -> None:
        """``client.connect`` through the forward, with ssh's and sshd's failures explained."""
        client.address = self.open()
        if wait > 0:
            self._await_remote(wait)
        try:
            client.connect(negotiate=negotiate)
        except ConnectError as e:
            raise self._explain(e) from None
        self.seal()

    def _explain(self, e: ConnectError) -> ConnectError:
        """ssh gone: ssh's reason; sshd hanging up on a fresh connection: the remote path."""
        if not self.alive:
            assert self.proc is None or self.proc.returncode is not None
            status = None if self.proc is None else self.proc.returncode
            return ssh_failure(self.remote, status, self._stderr_tail())
        return missing_remote(self.remote) if self._hangs_up(PROBE_TIMEOUT) else e

    def _await_remote(self, wait: float) -> None:
        """--wait: probe through the forward, backing off, until something answers."""
        deadline = time.monotonic() + wait
        delay = PROBE_FIRST_DELAY
        while self._hangs_up(self.timeout):
            if not self.alive:
                raise self._explain(ConnectError("ssh ended"))
            left = deadline - time.monotonic()
            if left <= 0:
                raise missing_remote(self.remote, wait)
            time.sleep(min(delay, left))
            delay = min(delay * 2, PROBE_MAX_DELAY)

    def _hangs_up(self, timeout: float) -> bool:
        """True when a connection through the forward is closed before a first byte.

        A QEMU greets at once; when the remote socket is missing (or sshd may not
        open it) sshd closes the channel and we read EOF.  Silence within the timeout
        (QEMU busy with another client) is not a hang-up: the client says what it sees.
        """
        import select
        import socket

        timeout = min(timeout, self.timeout)
        with closing(socket.socket(socket.AF_UNIX)) as probe:
            probe.settimeout(timeout)
            try:
                probe.connect(self.address.path)
                if not select.select([probe], [], [], timeout)[0]:
                    return False
                return probe.recv(1) == b""
            except OSError:
                return True

    def __enter__(self) -> SshForward:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- hooks for the command line and reconnect -------------------------------------------


def forwarded(address: SshAddress, *, timeout: float) -> ForwardedAddress:
    """The local end of a forward to ``address``; ssh starts when a client connects."""
    return SshForward(address, timeout=timeout).address
