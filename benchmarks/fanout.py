"""``query-status`` on N QEMUs at once: ``qmpsh T1…TN -c`` against N separate runs.

N = 1, 10 and 50 ``-machine none`` QEMUs, started by PID.  For each N, whole jobs,
start to exit, each asking every QEMU for ``query-status`` once:

- raw (the limit): one Python process, the N sockets one after another, lock-step;
- qmp-shell: a shell loop of N ``echo query-status | qmp-shell SOCK`` runs (the peer
  has no fan-out);
- qmpsh, a loop: a shell loop of N ``qmpsh SOCK -c query-status`` runs;
- qmpsh fan-out: ``qmpsh T1 … TN -c query-status``, one process, targets in parallel.

Wall time (median of the runs, interleaved) and peak RSS (the largest process of the
job, from ``wait4``).  All on the peer venv's Python, qmpsh installed into it from the
working tree.  Targets: the 50-target fan-out within 3x the time of one target, and
under 100 MiB RSS.

    python benchmarks/fanout.py            # 5 runs each
    python benchmarks/fanout.py --quick    # 3 runs each, N = 1 and 50 only
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
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
    peer_version,
    table,
    verdict,
)

RUN_TIMEOUT = 120  # a bound against a hung run, not a measurement
TIME_TARGET = 3.0  # the 50-target fan-out, as a multiple of the 1-target one
RSS_TARGET_MIB = 100

# The limit: connect, negotiate and ask each socket in turn, printing each reply line.
RAW_MANY_SCRIPT = r"""
import socket, sys
out = sys.stdout.buffer
for path in sys.argv[1:]:
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    f = s.makefile("rb")
    while b'"QMP"' not in f.readline():
        pass
    s.sendall(b'{"execute":"qmp_capabilities"}\n{"execute":"query-status"}\n')
    while b'"return": {}' in (line := f.readline()) or b'"event"' in line:
        pass
    out.write(line)
    s.close()
out.flush()
"""

Job = Callable[[list[str]], list[str]]


def run_and_measure(argv: list[str], expected: int) -> tuple[float, int]:
    """Run one job: wall time (s) and peak RSS (KiB, its largest process, from ``wait4``).

    The child is reaped here, not by Popen, so that its rusage can be read.
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stderr is not None
    stdout = proc.stdout.read()
    stderr = proc.stderr.read()
    _, _, usage = os.wait4(proc.pid, 0)
    proc.returncode = 0  # reaped here; Popen must not wait for it again
    elapsed = time.perf_counter() - t0
    replies = stdout.count(b'"status"')
    if replies != expected:
        raise SystemExit(f"{argv[:3]}: {replies} of {expected} replies: {stderr.decode()[-400:]}")
    return elapsed, usage.ru_maxrss


def shell_loop(command: str, sockets: list[str]) -> list[str]:
    """``sh -c 'for s in …; do COMMAND; done'``: what a user without fan-out writes."""
    words = " ".join(shlex.quote(s) for s in sockets)
    return ["sh", "-c", f"for s in {words}; do {command}; done"]


def jobs(mine: Path, peer: Path, py: Path) -> dict[str, Job]:
    return {
        "raw: one process, sockets in turn": lambda s: [str(py), "-c", RAW_MANY_SCRIPT, *s],
        "qmp-shell: loop of N runs": lambda s: shell_loop(
            f'echo query-status | {shlex.quote(str(peer))} "$s"', s
        ),
        "qmpsh: loop of N -c runs": lambda s: shell_loop(
            f'{shlex.quote(str(mine))} "$s" -c query-status', s
        ),
        "qmpsh T1..TN -c (fan-out)": lambda s: [str(mine), *s, "-c", "query-status"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs each, N = 1 and 50")
    quick = parser.parse_args().quick
    repeats, sizes = (3, (1, 50)) if quick else (5, (1, 10, 50))
    install_sigterm_handler()
    peer = peer_qmp_shell()
    mine = install_qmpsh_in_peer_venv()
    contenders = jobs(mine, peer, peer_python())
    machines: list[Qemu] = []
    try:
        for _ in range(max(sizes)):
            machines.append(Qemu(BASE_MACHINE))
        sockets = [m.socket for m in machines]
        results: dict[tuple[int, str], list[tuple[float, int]]] = {}
        for _ in range(repeats):
            for n in sizes:
                for name, job in contenders.items():
                    measured = run_and_measure(job(sockets[:n]), n)
                    results.setdefault((n, name), []).append(measured)
    finally:
        for machine in machines:
            machine.stop()
    report(results, sizes, list(contenders))


def report(
    results: dict[tuple[int, str], list[tuple[float, int]]],
    sizes: tuple[int, ...],
    names: list[str],
) -> None:
    load = os.getloadavg()[0]
    print(
        f"== query-status on N QEMUs, start to exit (qemu.qmp {peer_version()}; "
        f"load average {load:.1f} on {os.cpu_count()} CPUs) =="
    )
    rows = []
    for n in sizes:
        raw = median([t for t, _ in results[(n, names[0])]])
        peer = median([t for t, _ in results[(n, names[1])]])
        for name in names:
            runs = results[(n, name)]
            wall = median([t for t, _ in runs])
            rss = max(r for _, r in runs) / 1024
            rows.append(
                [
                    f"N={n:<3} {name}",
                    len(runs),
                    f"{wall * 1000:.0f}",
                    f"{rss:.1f}",
                    f"{wall / raw:.2f}",
                    f"{wall / peer:.2f}",
                ]
            )
    print(table(["", "runs", "median ms", "peak RSS MiB", "x raw", "x qmp-shell"], rows))
    fan = names[-1]
    one = median([t for t, _ in results[(1, fan)]])
    many = median([t for t, _ in results[(max(sizes), fan)]])
    rss = max(r for _, r in results[(max(sizes), fan)]) / 1024
    print()
    print(
        f"fan-out {max(sizes)} targets / 1 target: {many / one:.2f}x "
        f"(target <= {TIME_TARGET:g}x): {verdict(many / one <= TIME_TARGET)}"
    )
    print(
        f"fan-out {max(sizes)} targets peak RSS: {rss:.1f} MiB "
        f"(target < {RSS_TARGET_MIB} MiB): {verdict(rss < RSS_TARGET_MIB)}"
    )


if __name__ == "__main__":
    sys.exit(main())
