"""Lock-step ``guest-ping`` against a real qemu-ga: raw socket vs qmp-shell -N vs qmpsh qga:.

qemu-ga runs on the host with every RPC but a read-only allow-list blocked (the tests'
lab, tests/qga_lab.py).  Each run is a whole process, start to exit, doing N
``guest-ping`` from a piped script; runs are interleaved.  The raw client does what
qmpsh does on connect (0xFF, ``guest-sync-delimited``, wait for the id) and then
reads one line per ping: the fastest a Python process can go.  qmp-shell (the peer,
from ``qemu.qmp``, installed into benchmarks/.peer-venv) talks to qemu-ga with ``-N``
and no handshake.  qmpsh is installed from the working tree into the same venv, so
all three run on one interpreter.

    python benchmarks/guest_agent.py            # N = 1 (9 runs), 1000 (3 runs)
    python benchmarks/guest_agent.py --quick    # one run each
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Callable

from _common import (  # a sibling: python puts this script's directory on sys.path
    REPO,
    install_qmpsh_in_peer_venv,
    install_sigterm_handler,
    median,
    peer_python,
    peer_qmp_shell,
    peer_version,
    table,
)

sys.path.insert(0, str(REPO / "tests"))
from qga_lab import QemuGa  # the lab that blocks every host-touching RPC

RAW_AGENT_SCRIPT = r"""
import socket, sys
path, n = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_UNIX)
s.connect(path)
f = s.makefile("rb")
out = sys.stdout.buffer
s.sendall(b'\xff{"execute":"guest-sync-delimited","arguments":{"id":4242}}\n')
while not f.readline().endswith(b'{"return": 4242}\n'):
    pass
cmd = b'{"execute":"guest-ping"}\n'
for _ in range(n):
    s.sendall(cmd)
    out.write(f.readline())
out.flush()
"""

Argv = Callable[[str, int], list[str]]


def contenders(qmpsh: str) -> dict[str, Argv]:
    py, peer = str(peer_python()), str(peer_qmp_shell())
    return {
        "raw socket": lambda sock, n: [py, "-c", RAW_AGENT_SCRIPT, sock, str(n)],
        "qmp-shell -N": lambda sock, n: [peer, "-N", sock],
        "qmpsh qga:": lambda sock, n: [qmpsh, f"qga:{sock}"],
    }


def run_once(argv: list[str], n: int, stdin: bytes) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, input=stdin, capture_output=True, check=False, timeout=600)
    took = time.perf_counter() - start
    replies = done.stdout.count(b"{}")  # one per reply: {"return": {}} or qmpsh's {}
    if done.returncode != 0 or replies < n:
        sys.exit(
            f"{argv[0]} failed: status {done.returncode}, {replies}/{n} replies: {done.stderr!r}"
        )
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run per size")
    args = parser.parse_args()
    install_sigterm_handler()
    runs = {1: 9, 1000: 3} if not args.quick else {1: 1, 1000: 1}  # N=1 is noisy and cheap
    qmpsh = str(install_qmpsh_in_peer_venv())
    clients = contenders(qmpsh)
    rows = []
    with QemuGa() as ga:
        for n in (1, 1000):
            stdin = b"guest-ping\n" * n
            times: dict[str, list[float]] = {name: [] for name in clients}
            for _ in range(runs[n]):
                for name, argv in clients.items():
                    times[name].append(run_once(argv(ga.socket_path, n), n, stdin))
            raw = median(times["raw socket"])
            for name in clients:
                took = median(times[name])
                row = [f"N={n} {name}", str(runs[n]), f"{took * 1000:.1f} ms", f"{took / raw:.2f}x"]
                rows.append(row)
    peer = f"qmp-shell from qemu.qmp {peer_version()}"
    print(f"qemu-ga lock-step guest-ping, medians of interleaved runs; {peer}")
    print(table(["run", "runs", "process start to exit", "vs raw"], rows))


if __name__ == "__main__":
    main()
