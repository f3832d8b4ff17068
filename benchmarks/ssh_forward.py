"""One command to a QEMU behind sshd: ``qmpsh ssh://…`` vs a hand-made forward.

A real sshd on 127.0.0.1 (the tests' lab, tests/sshd_lab.py) and one QEMU serve every
run.  Each run is a whole job, start to exit, doing one ``query-status``:

- raw (the limit): ``ssh -N -L`` until the local socket exists, the raw client, ssh killed;
- qmp-shell: the same hand-made forward, ``echo query-status | qmp-shell LOCAL``;
- qmpsh ``ssh://127.0.0.1/SOCK -c query-status``: forward, connect, teardown inside;
- for reference, qmpsh on the socket itself (no ssh at all).

All run on the peer venv's Python (qmpsh installed into it from the working tree), the
runs interleaved.  The ssh handshake dominates; what qmpsh adds over raw is the point.

    python benchmarks/ssh_forward.py            # 7 runs each
    python benchmarks/ssh_forward.py --quick    # 3 runs each
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import (  # a sibling: python puts this script's directory on sys.path
    BASE_MACHINE,
    Qemu,
    install_qmpsh_in_peer_venv,
    install_sigterm_handler,
    median,
    peer_python,
    peer_qmp_shell,
    qmpsh_argv,
    raw_client_argv,
    table,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from sshd_lab import SshdLab  # the tests' sshd fixture, reused as it is

LINE = b"query-status\n"
RUN_TIMEOUT = 60  # a bound against a hung run, not a measurement


def through_hand_made_forward(lab: SshdLab, remote: str, client: Callable[[str], None]) -> None:
    """What a qmp-shell user does by hand: forward, run the client, stop ssh, clean up."""
    with tempfile.TemporaryDirectory(prefix="bench-ssh-") as tmp:
        local = os.path.join(tmp, "qmp.sock")
        forward = ["-N", "-o", "ExitOnForwardFailure=yes", "-L", f"{local}:{remote}"]
        ssh = subprocess.Popen(
            ["ssh", "-F", str(lab.client_config), *forward, "127.0.0.1"],
            stderr=subprocess.DEVNULL,
        )
        try:
            while not os.path.exists(local):
                if ssh.poll() is not None:
                    raise RuntimeError("ssh exited before the forward was up")
                time.sleep(0.002)
            client(local)
        finally:
            ssh.terminate()
            ssh.wait()


def run(argv: list[str], stdin: bytes = b"", env: dict[str, str] | None = None) -> None:
    result = subprocess.run(
        argv, input=stdin, capture_output=True, env=env, check=False, timeout=RUN_TIMEOUT
    )
    if b"running" not in result.stdout:
        raise RuntimeError(f"{argv[0]} failed: {result.stderr.decode(errors='replace')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs each instead of 7")
    repeats = 3 if parser.parse_args().quick else 7
    install_sigterm_handler()
    peer = peer_qmp_shell()
    mine = install_qmpsh_in_peer_venv()
    py = peer_python()
    with SshdLab() as lab, Qemu(BASE_MACHINE) as qemu:
        env = dict(os.environ, **lab.ssh_env())
        sock = qemu.socket
        jobs: dict[str, Callable[[], None]] = {
            "raw: ssh -N -L + raw client": lambda: through_hand_made_forward(
                lab, sock, lambda local: run(raw_client_argv(local, 1, py))
            ),
            "qmp-shell via ssh -N -L": lambda: through_hand_made_forward(
                lab, sock, lambda local: run([str(peer), local], LINE)
            ),
            "qmpsh ssh:// -c query-status": lambda: run(
                qmpsh_argv(f"ssh://127.0.0.1{sock}", "-c", "query-status", exe=mine), env=env
            ),
            "qmpsh on the socket (no ssh)": lambda: run(
                qmpsh_argv(sock, "-c", "query-status", exe=mine)
            ),
        }
        times: dict[str, list[float]] = {name: [] for name in jobs}
        for _ in range(repeats):
            for name, job in jobs.items():
                t0 = time.perf_counter()
                job()
                times[name].append(time.perf_counter() - t0)
    raw = median(times["raw: ssh -N -L + raw client"])
    peer_time = median(times["qmp-shell via ssh -N -L"])
    rows = [
        [
            *(name, len(ts), f"{median(ts) * 1000:.0f}", f"{min(ts) * 1000:.0f}"),
            *(f"{median(ts) / raw:.2f}", f"{median(ts) / peer_time:.2f}"),
        ]
        for name, ts in times.items()
    ]
    print("== One query-status through sshd on 127.0.0.1, start to exit ==")
    print(table(["", "runs", "median ms", "min ms", "x raw", "x qmp-shell"], rows))


if __name__ == "__main__":
    main()
