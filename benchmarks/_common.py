"""Helpers shared by the benchmarks only (not by tests: tests/ is not a package).

Everything here is deliberately plain: a QEMU started by PID in its own temp dir,
a raw QMP client that is as close to the socket as Python gets (the "limit"), and
a private virtual environment holding the peer, ``qmp-shell`` from ``qemu.qmp``,
so the peer is never a dependency of the project.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PEER_VENV = HERE / ".peer-venv"
PEER_PACKAGE = "qemu.qmp"
QMPSH_RUNTIME_DEPS = ("prompt_toolkit", "pygments", "rich")
QEMU = "qemu-system-x86_64"
BASE_MACHINE = ("-machine", "none", "-display", "none", "-nodefaults")

# The limit: a client that does nothing but connect, negotiate, and send N lock-step
# query-status, printing each reply line.  The throughput benchmark runs it on the peer
# venv's Python, like qmp-shell and qmpsh, so interpreter start-up is paid alike.
RAW_CLIENT_SCRIPT = r"""
import socket, sys
path, n = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_UNIX)
s.connect(path)
f = s.makefile("rb")
out = sys.stdout.buffer
while b'"QMP"' not in f.readline():
    pass
s.sendall(b'{"execute":"qmp_capabilities"}\n')
while b'"return"' not in f.readline():
    pass
cmd = b'{"execute":"query-status"}\n'
for _ in range(n):
    s.sendall(cmd)
    while True:
        line = f.readline()
        if not line:
            sys.exit("EOF")
        if b'"return"' in line or b'"error"' in line:
            out.write(line)
            break
out.flush()
"""


def raw_client_argv(sock: str, n: int, python: Path | str = sys.executable) -> list[str]:
    """Command line of the raw client doing ``n`` lock-step query-status."""
    return [str(python), "-c", RAW_CLIENT_SCRIPT, sock, str(n)]


def qmpsh_argv(*args: str, exe: Path | None = None) -> list[str]:
    """qmpsh as a user runs it: ``exe``, else the console script on PATH, else ``-m qmpsh``."""
    if exe is not None:
        return [str(exe), *args]
    found = shutil.which("qmpsh")
    if found is not None:
        return [found, *args]
    return [sys.executable, "-m", "qmpsh", *args]


def compiled_tree_env() -> dict[str, str]:
    """The environment for child processes, with this tree's bytecode written beforehand.

    An installed package has its ``.pyc`` files; an editable one under
    ``PYTHONDONTWRITEBYTECODE`` would compile every module on every start (~150 ms),
    which measures the environment, not qmpsh.
    """
    import compileall

    compileall.compile_dir(REPO / "qmpsh", quiet=1)
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def peer_python() -> Path:
    return PEER_VENV / "bin" / "python"


def install_qmpsh_in_peer_venv() -> Path:
    """qmpsh from the working tree, installed (not editable) beside the peer; its console script.

    Start-up is compared fairly only when both run on the same interpreter with the same
    ``site``: the project's environment pays ~20 ms more per process (an editable-install
    finder, certifi's ``.pth``) than the peer's small venv.  A copy of the tree is installed
    on every run, so the figures are always those of the code as it is now.
    """
    peer_qmp_shell()  # creates the venv on first use
    py = str(peer_python())
    have_deps = [py, "-c", "import " + ", ".join(QMPSH_RUNTIME_DEPS)]
    if subprocess.run(have_deps, capture_output=True, check=False).returncode != 0:
        print(
            f"[setup] installing {', '.join(QMPSH_RUNTIME_DEPS)} into {PEER_VENV}", file=sys.stderr
        )
        pip = [py, "-m", "pip", "install", "-q", *QMPSH_RUNTIME_DEPS]
        subprocess.run(pip, check=True)
    with tempfile.TemporaryDirectory(prefix="qmpsh-tree-") as tmp:
        tree = Path(tmp) / "qmpsh"
        shutil.copytree(
            REPO / "qmpsh", tree / "qmpsh", ignore=shutil.ignore_patterns("__pycache__")
        )
        for name in ("pyproject.toml", "README.md"):
            shutil.copy(REPO / name, tree / name)
        # The wheel is built by this Python (it has setuptools and wheel), so no download.
        build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
        build += ["--disable-pip-version-check", "-w", tmp, str(tree)]
        subprocess.run(build, check=True, stdout=subprocess.DEVNULL)
        wheel = next(Path(tmp).glob("qmpsh-*.whl"))
        pip = [py, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall"]
        subprocess.run([*pip, "--disable-pip-version-check", str(wheel)], check=True)
    return PEER_VENV / "bin" / "qmpsh"


def peer_qmp_shell() -> Path:
    """The peer's ``qmp-shell``, installed on first use into the benchmarks' own venv."""
    exe = PEER_VENV / "bin" / "qmp-shell"
    if exe.exists():
        return exe
    print(f"[setup] creating {PEER_VENV} with {PEER_PACKAGE} (first run only)", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
    pip = [str(PEER_VENV / "bin" / "python"), "-m", "pip", "install", "-q", PEER_PACKAGE]
    subprocess.run(pip, check=True)
    return exe


def peer_version() -> str:
    """Installed version of the peer package, for the report header."""
    py = PEER_VENV / "bin" / "python"
    code = "import importlib.metadata as m; print(m.version('qemu.qmp'))"
    out = subprocess.run([str(py), "-c", code], capture_output=True, text=True, check=False)
    return out.stdout.strip() or "?"


class Qemu:
    """One QEMU we started, with QMP unix sockets in a private temp dir; stopped by PID."""

    def __init__(self, extra: Sequence[str] = (), *, monitors: int = 1) -> None:
        if shutil.which(QEMU) is None:
            raise SystemExit(f"{QEMU} not found")
        self.dir = Path(tempfile.mkdtemp(prefix="qmpsh-bench-"))
        self.sockets = [str(self.dir / f"qmp{i}.sock") for i in range(monitors)]
        args = [QEMU, *extra]
        for path in self.sockets:
            args += ["-qmp", f"unix:{path},server=on,wait=off"]
        self.stderr = open(self.dir / "stderr", "wb")  # noqa: SIM115 - lives as long as QEMU
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr
        )
        self._wait_for_sockets()

    @property
    def socket(self) -> str:
        return self.sockets[0]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _wait_for_sockets(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not all(os.path.exists(p) for p in self.sockets):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"QEMU did not start: {(self.dir / 'stderr').read_text()}")
            time.sleep(0.01)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self.stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Qemu:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class RawMonitor:
    """A tiny in-process QMP client; counts events by a substring, not by parsing.

    It must keep up with ~8k events/s on its own, so it avoids ``json.loads`` for
    events it only counts.
    """

    def __init__(self, path: str, timeout: float = 10.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        # Our own buffer, not makefile(): a file object is unusable after one timeout.
        self.buf = bytearray()
        self.pos = 0
        self.counts: dict[bytes, int] = {}
        while b'"QMP"' not in self._readline():
            pass
        self.execute("qmp_capabilities")

    def _readline(self) -> bytes:
        while (end := self.buf.find(b"\n", self.pos)) < 0:
            del self.buf[: self.pos]
            self.pos = 0
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise EOFError("QMP socket closed")
            self.buf += chunk
        line = bytes(self.buf[self.pos : end + 1])
        self.pos = end + 1
        return line

    def _note_event(self, line: bytes) -> None:
        start = line.find(b'"event": "') + 10
        name = line[start : line.find(b'"', start)]
        self.counts[name] = self.counts.get(name, 0) + 1

    def execute(self, name: str, **args: Any) -> Any:
        msg: dict[str, Any] = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            line = self._readline()
            if b'"event"' in line and b'"return"' not in line:
                self._note_event(line)
                continue
            reply = json.loads(line)
            if "error" in reply:
                raise RuntimeError(f"{name}: {reply['error']['desc']}")
            return reply["return"]

    def pump(self, seconds: float) -> None:
        """Read and count events for ``seconds`` (returns early only on EOF)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                line = self._readline()
            except (TimeoutError, EOFError):
                return
            if b'"event"' in line:
                self._note_event(line)

    def drain_until_quiet(self, quiet: float = 1.0, limit: float = 30.0) -> None:
        """Count events until none arrives for ``quiet`` seconds."""
        deadline = time.monotonic() + limit
        before = -1
        while time.monotonic() < deadline and before != sum(self.counts.values()):
            before = sum(self.counts.values())
            self.pump(quiet)

    def close(self) -> None:
        self.sock.close()


def install_sigterm_handler() -> None:
    """SIGTERM (e.g. from ``timeout``) unwinds like Ctrl-C, so our QEMUs are stopped."""

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def wait_for_qmpsh(
    sock: str, timeout: float = 600.0, interval: float = 10.0, exe: Path | None = None
) -> None:
    """Block until ``qmpsh SOCK -c query-status`` works: its modules may still be landing."""
    deadline = time.monotonic() + timeout
    said = ""
    while True:
        argv = qmpsh_argv(sock, "-c", "query-status", exe=exe)
        out = subprocess.run(argv, capture_output=True, text=True, check=False)
        if out.returncode == 0 and "running" in out.stdout:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"qmpsh never worked: {out.stderr.strip()[-400:]}")
        last = (out.stderr.strip().splitlines()[-1:] or ["?"])[0][:120]
        if last != said:
            print(f"[wait] qmpsh not ready ({last}); retrying", file=sys.stderr)
            said = last
        time.sleep(interval)


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` in KiB (0 once it is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile; enough for a benchmark table."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain fixed-width table, first column left-aligned, the rest right-aligned."""
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def fmt(row: list[str]) -> str:
        first = row[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True))
        return "  ".join([first, *rest])

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([fmt(cells[0]), rule, *(fmt(r) for r in cells[1:])])


def verdict(ok: bool) -> str:
    return "MET" if ok else "MISSED"
