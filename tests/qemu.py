"""Start and stop real QEMU processes for tests, by PID, in private temp dirs.

Tests talk to a real ``qemu-system-x86_64``; this module only starts it, waits
for its QMP socket, and kills exactly the process it started.  ``RawMonitor`` is
a deliberately tiny QMP client used as an independent second monitor (to count
events, or to fetch data without going through the code under test).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

QEMU = "qemu-system-x86_64"
BASE_ARGS = ("-machine", "none", "-display", "none", "-nodefaults")
PORT_ATTEMPTS = 5
PORT_CLASH = ("Address already in use", "failed to initialize spice server")
START_WAIT = 60.0  # upper bound for QEMU to answer on a machine busy with other work


def free_port(start: int = 0) -> int:
    """A free TCP port on 127.0.0.1 (optionally at or above ``start``, for VNC)."""
    if start:
        for port in range(start, start + 2000):
            with closing(socket.socket()) as s:
                try:
                    s.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
        raise RuntimeError("no free port")
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_qemu() -> str:
    """Path of QEMU; a missing QEMU is a failure, not a skip (CI installs it)."""
    path = shutil.which(QEMU)
    if path is None:
        raise RuntimeError(f"{QEMU} not found: install qemu-system-x86 (see .ci/run)")
    return path


class Qemu:
    """One QEMU process with a QMP unix socket in its own temp dir."""

    def __init__(
        self,
        extra: Sequence[str] = (),
        *,
        machine: Sequence[str] = BASE_ARGS,
        vnc: bool = False,
        spice: bool = False,
    ) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="qmpsh-test-"))
        self.socket = str(self.dir / "qmp.sock")
        self.stderr_path = self.dir / "stderr"
        for attempt in range(1, PORT_ATTEMPTS + 1):
            self.vnc_port = free_port(random.randrange(6000, 7900)) if vnc else None
            self.spice_port = free_port() if spice else None
            self.args = [
                require_qemu(),
                *machine,
                *("-qmp", f"unix:{self.socket},server=on,wait=off"),
                *self._display_args(),
                *extra,
            ]
            with open(self.stderr_path, "wb") as err:
                self.proc = subprocess.Popen(
                    self.args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err
                )
            try:
                self._wait_for_socket()
                return
            except RuntimeError as e:
                # Other processes on the machine pick ports too: one may take ours first.
                if attempt == PORT_ATTEMPTS or not any(c in str(e) for c in PORT_CLASH):
                    raise

    def _display_args(self) -> list[str]:
        args = []
        if self.vnc_port is not None:
            args += ["-vnc", f"127.0.0.1:{self.vnc_port - 5900}"]
        if self.spice_port is not None:
            args += ["-spice", f"addr=127.0.0.1,port={self.spice_port},disable-ticketing=on"]
        return args

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _wait_for_socket(self, timeout: float = START_WAIT) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"QEMU exited early: {self.stderr_path.read_text()}")
            if os.path.exists(self.socket) and self._answers():
                return
            time.sleep(0.01)
        self.stop()
        raise RuntimeError(f"QEMU did not answer on its QMP socket within {timeout:g} s")

    def _answers(self) -> bool:
        """QEMU greets before VNC/SPICE are up; an answered command means start-up is over."""
        try:
            with RawMonitor(self.socket, timeout=5.0):
                return True
        except (OSError, EOFError, ValueError):
            return False

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send a signal to our own QEMU, by PID."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, sig)

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """QEMU stopped by SIGSTOP for the block (whatever is sent stays unanswered);
        thawed whatever happens."""
        self.kill(signal.SIGSTOP)
        try:
            yield
        finally:
            self.kill(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Qemu:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RawMonitor:
    """A minimal independent QMP client: no threads, no cleverness."""

    def __init__(self, path: str, timeout: float = 30.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self._buffer = b""
        self.events: list[dict[str, Any]] = []
        while "QMP" not in self._read():
            pass
        self.execute("qmp_capabilities")

    def _read(self) -> dict[str, Any]:
        # Our own buffer rather than makefile(): a timed-out makefile cannot be read again.
        while b"\n" not in self._buffer:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise EOFError("QMP socket closed")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        msg: dict[str, Any] = json.loads(line)
        return msg

    def execute(self, name: str, **args: Any) -> Any:
        msg: dict[str, Any] = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._read()
            if "event" in reply:
                self.events.append(reply)
                continue
            if "QMP" in reply:  # a QEMU still starting up may greet a client twice
                continue
            if "error" in reply:
                raise RuntimeError(f"{reply['error']['class']}: {reply['error']['desc']}")
            return reply["return"]

    def wait_event(self, name: str, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        for i, ev in enumerate(self.events):
            if ev["event"] == name:
                del self.events[: i + 1]
                return ev
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            msg = self._read()
            if msg.get("event") == name:
                return msg
            if "event" in msg:
                self.events.append(msg)
        raise TimeoutError(name)

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawMonitor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def iter_lines(path: Path) -> Iterator[dict[str, Any]]:
    for line in path.read_text().splitlines():
        if line.strip():
            yield json.loads(line)
