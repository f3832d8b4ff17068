"""qmpsh as a library vs qemu.qmp's legacy ``QEMUMonitorProtocol`` vs a raw socket.

Each run is a whole Python process, start to exit, on the peer venv's interpreter
(qmpsh is installed there from the working tree): ``import`` alone, then connect,
negotiate and N lock-step ``query-status`` (N = 1: what a short script pays; N = 1000:
the per-call cost).  Runs are interleaved; medians, and ratios to the raw socket.

    python benchmarks/library.py            # 9 runs of each short case, 3 of N = 1000
    python benchmarks/library.py --quick    # one run each
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from _common import (  # a sibling: python puts this script's directory on sys.path
    BASE_MACHINE,
    RAW_CLIENT_SCRIPT,
    Qemu,
    install_qmpsh_in_peer_venv,
    install_sigterm_handler,
    median,
    peer_python,
    peer_version,
    table,
)

IMPORTS = {
    "raw socket": "import socket",
    "qemu.qmp legacy": "from qemu.qmp.legacy import QEMUMonitorProtocol",
    "qmpsh": "import qmpsh",
}

PEER_SCRIPT = r"""
import sys
from qemu.qmp.legacy import QEMUMonitorProtocol
path, n = sys.argv[1], int(sys.argv[2])
vm = QEMUMonitorProtocol(path)
vm.connect()
for _ in range(n):
    status = vm.cmd("query-status")
print(status["status"])
vm.close()
"""

QMPSH_SCRIPT = r"""
import sys
import qmpsh
path, n = sys.argv[1], int(sys.argv[2])
with qmpsh.connect(path) as vm:
    for _ in range(n):
        status = vm.execute("query-status")
print(status["status"])
"""

SCRIPTS = {"raw socket": RAW_CLIENT_SCRIPT, "qemu.qmp legacy": PEER_SCRIPT, "qmpsh": QMPSH_SCRIPT}


# Byte-code is cached as a user's Python does (the first, warm-up run writes it), even
# when this shell says not to: compiling qmpsh's or qemu.qmp's source is not their cost.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_once(argv: list[str], expect: bytes) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, check=False, timeout=600, env=ENV)
    took = time.perf_counter() - start
    if done.returncode != 0 or expect not in done.stdout:
        sys.exit(f"{argv[:3]} failed: status {done.returncode}: {done.stderr!r}")
    return took


def measure(cases: dict[str, list[str]], runs: int, expect: bytes) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in cases}
    for argv in cases.values():
        run_once(argv, expect)  # warm-up: byte-code and the page cache
    for _ in range(runs):
        for name, argv in cases.items():
            times[name].append(run_once(argv, expect))
    return {name: median(values) for name, values in times.items()}


def rows_for(label: str, runs: int, medians: dict[str, float]) -> list[list[str]]:
    raw = medians["raw socket"]
    return [
        [f"{label} {name}", str(runs), f"{took * 1000:.1f} ms", f"{took / raw:.2f}x"]
        for name, took in medians.items()
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one run per case")
    args = parser.parse_args()
    install_sigterm_handler()
    install_qmpsh_in_peer_venv()
    py = str(peer_python())
    short, long = (1, 1) if args.quick else (9, 3)
    rows = []
    imports = {name: [py, "-c", code] for name, code in IMPORTS.items()}
    rows += rows_for("import", short, measure(imports, short, b""))
    with Qemu(BASE_MACHINE) as qemu:
        for n, runs in ((1, short), (1000, long)):
            cases = {name: [py, "-c", code, qemu.socket, str(n)] for name, code in SCRIPTS.items()}
            rows += rows_for(f"N={n}", runs, measure(cases, runs, b"running"))
    print(f"process start to exit, medians of interleaved runs; qemu.qmp {peer_version()}")
    print(table(["run", "runs", "time", "vs raw"], rows))


if __name__ == "__main__":
    main()
