"""A real qemu-guest-agent on the host, for the guest-agent tests.

qemu-ga runs here as root on the host itself, not in a guest, so every RPC it offers
would act on this machine.  The lab therefore blocks every RPC that ``qemu-ga -b help``
lists except a short allow-list checked by hand to only read (the list is computed
from the binary, so RPCs a newer qemu-ga adds are blocked too), and checks through
``guest-info`` after start-up that nothing else is enabled.  It serves one client at a
time; blocked RPCs answer CommandNotFound and show ``"enabled": false``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from support import wait_until

QEMU_GA = shutil.which("qemu-ga") or "/usr/sbin/qemu-ga"

# Read-only RPCs: none of them changes the host.
ALLOWED = frozenset(
    {
        "guest-sync-delimited",
        "guest-sync",
        "guest-ping",
        "guest-info",
        "guest-get-time",
        "guest-get-osinfo",
        "guest-get-host-name",
        "guest-get-timezone",
    }
)


def all_rpcs() -> list[str]:
    """Every RPC this qemu-ga knows, as ``qemu-ga -b help`` prints them."""
    out = subprocess.run([QEMU_GA, "-b", "help"], capture_output=True, text=True, check=True)
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


class QemuGa:
    """One qemu-ga listening on a unix socket in a temp dir; stopped by PID."""

    def __init__(self) -> None:
        if not os.path.exists(QEMU_GA):
            raise RuntimeError(f"qemu-ga not found at {QEMU_GA}: apt-get install qemu-guest-agent")
        self.dir = Path(tempfile.mkdtemp(prefix="qmpsh-ga-"))
        self.socket_path = str(self.dir / "ga.sock")
        (self.dir / "state").mkdir()
        self.blocked = [rpc for rpc in all_rpcs() if rpc not in ALLOWED]
        self.process = subprocess.Popen(
            [
                QEMU_GA,
                "-m", "unix-listen",
                "-p", self.socket_path,
                "-t", str(self.dir / "state"),
                "-f", str(self.dir / "ga.pid"),
                "-b", ",".join(self.blocked),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.dir / "stderr", "wb"),  # noqa: SIM115  (the child holds it)
        )  # fmt: skip
        if not wait_until(lambda: os.path.exists(self.socket_path) or self.process.poll()):
            self.stop()
            raise RuntimeError("qemu-ga did not create its socket")
        if self.process.poll() is not None:
            error = (self.dir / "stderr").read_text(errors="replace")
            self.stop()
            raise RuntimeError(f"qemu-ga exited at once: {error}")
        self._check_only_allowed_enabled()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _check_only_allowed_enabled(self) -> None:
        info = self.call({"execute": "guest-info"})["return"]
        enabled = {c["name"] for c in info["supported_commands"] if c["enabled"]}
        if not enabled <= ALLOWED:
            self.stop()
            raise RuntimeError(f"qemu-ga enables RPCs outside the allow-list: {enabled - ALLOWED}")

    def call(self, message: dict[str, object]) -> dict[str, object]:
        """One request on a connection of its own (qemu-ga serves one client at a time)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(self.socket_path)
            sock.sendall(json.dumps(message).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        reply: dict[str, object] = json.loads(data.lstrip(b"\xff"))
        return reply

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> QemuGa:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
