"""Lock-step command throughput and start-up: raw socket vs qmp-shell vs qmpsh.

One QEMU (``-machine none``) serves every run, so the three contenders are measured
side by side under the same conditions; runs are interleaved so drift in the
machine's load is spread over all of them.  Each run is a whole process, start to
exit (time.perf_counter around subprocess.run), doing N ``query-status`` from a
piped script.  All three run on the same interpreter, the peer's venv, into which
the working tree's qmpsh is installed (not editable) at the start of every run.

    python benchmarks/throughput.py            # full: N = 1, 1000, 10000
    python benchmarks/throughput.py --quick    # one run per size above 1
"""

from __future__ import annotations

import argparse
import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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
    qmpsh_argv,
    raw_client_argv,
    table,
    verdict,
    wait_for_qmpsh,
)

SIZES = (1, 1000, 10000)
FULL_REPEATS = {1: 5, 1000: 3, 10000: 3}
QUICK_REPEATS = {1: 3, 1000: 1, 10000: 1}
STATUS = re.compile(rb'"status":\s*"running"')
LINE = b"query-status\n"
HEAVY_MODULES = ("prompt_toolkit", "rich", "pygments")
# What `qmpsh SOCK -c CMD` imports before it connects (see qmpsh/cli.py).
QMPSH_IMPORTS = (
    "import qmpsh.cli, qmpsh.address, qmpsh.client, qmpsh.events, qmpsh.render, qmpsh.session"
)


@dataclass
class Contender:
    """One way of running N commands: its argv, and the stdin it is fed."""

    name: str
    argv: Callable[[str, int], list[str]]
    piped: bool = True  # False: the command count is an argument, stdin is empty
    times: dict[int, list[float]] = field(default_factory=dict)
    bad: list[str] = field(default_factory=list)

    def stdin(self, n: int) -> bytes:
        return LINE * n if self.piped else b""


def contenders(sock: str, peer: Path, mine: Path) -> list[Contender]:
    """All three on the peer venv's interpreter, so start-up costs the same for each."""
    return [
        Contender("raw socket", lambda s, n: raw_client_argv(s, n, peer_python()), piped=False),
        Contender("qmp-shell", lambda s, n: [str(peer), s]),
        Contender("qmpsh", lambda s, n: qmpsh_argv(s, "--format", "json", exe=mine)),
    ]


def run_once(c: Contender, sock: str, n: int) -> float:
    """One process, start to exit; wrong reply counts are recorded, not hidden."""
    t0 = time.perf_counter()
    out = subprocess.run(c.argv(sock, n), input=c.stdin(n), capture_output=True, check=False)
    elapsed = time.perf_counter() - t0
    got = len(STATUS.findall(out.stdout))
    if out.returncode != 0 or got != n:
        c.bad.append(f"N={n}: rc={out.returncode}, {got} replies; {out.stderr[-200:]!r}")
    if c.name == "qmpsh" and not _all_json_lines(out.stdout, n):
        c.bad.append(f"N={n}: stdout is not exactly {n} JSON lines")
    return elapsed


def _all_json_lines(stdout: bytes, n: int) -> bool:
    lines = [ln for ln in stdout.splitlines() if ln.strip()]
    return len(lines) == n and all(ln.startswith((b"{", b"[")) for ln in lines)


def measure_throughput(cs: list[Contender], sock: str, repeats: dict[int, int]) -> None:
    for n, count in repeats.items():
        for r in range(count):
            order = cs[r % len(cs) :] + cs[: r % len(cs)]  # rotate who goes first
            for c in order:
                c.times.setdefault(n, []).append(run_once(c, sock, n))
        print(f"[run] N={n}: {count} round(s) done", file=sys.stderr)


def throughput_table(cs: list[Contender]) -> str:
    raw, peer = cs[0], cs[1]
    rows = []
    for n in sorted(raw.times):
        for c in cs:
            t = median(c.times[n])
            marginal = _marginal_us(c, n)
            rows.append(
                [
                    c.name,
                    n,
                    len(c.times[n]),
                    f"{t * 1000:.1f}",
                    f"{n / t:,.0f}",
                    f"{t / n * 1e6:,.0f}",
                    marginal,
                    f"{median(raw.times[n]) / t:.2f}",
                    f"{median(peer.times[n]) / t:.2f}",
                ]
            )
    headers = [
        "client",
        "N",
        "runs",
        "median ms",
        "cmds/s",
        "us/cmd",
        "us/cmd net",
        "x raw",
        "x qmp-shell",
    ]
    return table(headers, rows)


def _marginal_us(c: Contender, n: int) -> str:
    """µs per command with the process start-up (the N=1 run) taken out."""
    if n == 1 or 1 not in c.times:
        return "-"
    return f"{(median(c.times[n]) - median(c.times[1])) / (n - 1) * 1e6:,.0f}"


def measure_startup(sock: str, peer: Path, mine: Path, repeats: int) -> dict[str, list[float]]:
    """One command, process start to exit: ``qmpsh -c`` vs ``echo | qmp-shell`` vs raw.

    The contenders all run on the peer venv's Python; the project environment's floor
    and its (editable) qmpsh are shown for reference only.
    """
    py = str(peer_python())
    runs: dict[str, tuple[list[str], bytes]] = {
        "peer venv python -c pass (floor)": ([py, "-c", "pass"], b""),
        "project env python -c pass": ([sys.executable, "-c", "pass"], b""),
        "qmpsh imports only, no connect": ([py, "-P", "-c", QMPSH_IMPORTS], b""),
        "raw socket, 1 cmd": (raw_client_argv(sock, 1, py), b""),
        "qmp-shell, 1 cmd piped": ([str(peer), sock], LINE),
        "qmpsh -c query-status": (qmpsh_argv(sock, "-c", "query-status", exe=mine), b""),
        "qmpsh -c, project env (ref.)": (qmpsh_argv(sock, "-c", "query-status"), b""),
    }
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, (argv, stdin) in runs.items():
            t0 = time.perf_counter()
            subprocess.run(argv, input=stdin, capture_output=True, check=False)
            times[name].append(time.perf_counter() - t0)
    return times


def time_to_first_reply(argv: list[str], send: bytes, timeout: float = 10.0) -> float:
    """Start to the first reply on stdout, stdin kept open (unbuffered Python output)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env
    )
    assert proc.stdin is not None and proc.stdout is not None
    if send:
        proc.stdin.write(send)
        proc.stdin.flush()
    seen, elapsed = b"", float("nan")
    while time.perf_counter() - t0 < timeout:
        ready, _, _ = select.select([proc.stdout], [], [], 0.5)
        chunk = os.read(proc.stdout.fileno(), 65536) if ready else b""
        seen += chunk
        if STATUS.search(seen):
            elapsed = time.perf_counter() - t0
            break
        if ready and not chunk:
            break
    proc.stdin.close()
    proc.wait(timeout=timeout)
    proc.stdout.close()
    return elapsed


def measure_ttfr(sock: str, peer: Path, mine: Path, repeats: int) -> dict[str, list[float]]:
    runs = {
        "raw socket": (raw_client_argv(sock, 1, peer_python()), b""),
        "qmp-shell": ([str(peer), sock], LINE),
        "qmpsh (piped)": (qmpsh_argv(sock, "--format", "json", exe=mine), LINE),
    }
    return {
        name: [time_to_first_reply(argv, send) for _ in range(repeats)]
        for name, (argv, send) in runs.items()
    }


def timing_table(times: dict[str, list[float]], reference: str) -> str:
    ref = median(times[reference])
    rows = [
        [
            name,
            len(ts),
            f"{median(ts) * 1000:.1f}",
            f"{min(ts) * 1000:.1f}",
            f"{median(ts) / ref:.2f}",
        ]
        for name, ts in times.items()
    ]
    return table(["", "runs", "median ms", "min ms", f"x {reference}"], rows)


@dataclass
class ImportReport:
    total_us: int
    heavy: list[str]
    slowest: list[tuple[int, str]]


def import_report(argv: Sequence[str]) -> ImportReport:
    """Run with ``-X importtime`` and read its stderr: total self time, heavy modules."""
    out = subprocess.run(argv, capture_output=True, text=True, check=False)
    total, heavy, top = 0, set(), []
    for line in out.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if not m:
            continue
        total += int(m.group(1))
        module = m.group(4)
        if module.split(".")[0] in HEAVY_MODULES:
            heavy.add(module.split(".")[0])
        if len(m.group(3)) == 1:  # top-level: the least indented
            top.append((int(m.group(2)), module))
    return ImportReport(total, sorted(heavy), sorted(top, reverse=True)[:6])


def print_imports(sock: str, peer: Path) -> None:
    py = str(peer_python())
    # -P: not the working tree's qmpsh (cwd), which would be compiled from source each time
    mine = import_report([py, "-P", "-X", "importtime", "-m", "qmpsh", sock, "-c", "query-status"])
    theirs = import_report([py, "-X", "importtime", "-c", "import qemu.qmp.qmp_shell"])
    for name, rep in (("qmpsh -c query-status", mine), ("qmp-shell (import only)", theirs)):
        heavy = ", ".join(rep.heavy) or "none"
        print(
            f"{name}: total import self-time {rep.total_us / 1000:.1f} ms; "
            f"prompt_toolkit/rich/pygments imported: {heavy}"
        )
        slow = ", ".join(f"{mod} {us / 1000:.1f}" for us, mod in rep.slowest)
        print(f"  slowest top-level imports (ms, cumulative): {slow}")
    ok = not {"prompt_toolkit", "rich"} & set(mine.heavy)
    print(f"target: piped/-c mode imports neither prompt_toolkit nor rich: {verdict(ok)}")


def print_report(
    cs: list[Contender], startup: dict[str, list[float]], ttfr: dict[str, list[float]]
) -> None:
    print("\n== Lock-step query-status, piped script, process start to exit ==")
    print(throughput_table(cs))
    for c in cs:
        for problem in c.bad:
            print(f"  WRONG OUTPUT {c.name}: {problem}")
    print("\n== One command, process start to exit ==")
    print(timing_table(startup, "qmp-shell, 1 cmd piped"))
    print("\n== Time to first reply (stdin left open; PYTHONUNBUFFERED=1 for all) ==")
    print(timing_table(ttfr, "qmp-shell"))
    print_targets(cs, startup)


def print_targets(cs: list[Contender], startup: dict[str, list[float]]) -> None:
    raw, mine = cs[0], cs[2]
    print("\n== Targets ==")
    big = max(raw.times)
    ratio = median(raw.times[big]) / median(mine.times[big])
    print(f"qmpsh throughput >= 0.8x raw at N={big}: {ratio:.2f}x  {verdict(ratio >= 0.8)}")
    c_ratio = median(startup["qmpsh -c query-status"]) / median(startup["qmp-shell, 1 cmd piped"])
    print(f"qmpsh -c start-to-exit <= 0.8x qmp-shell: {c_ratio:.2f}x  {verdict(c_ratio <= 0.8)}")
    correct = not any(c.bad for c in cs)
    print(f"every run printed exactly N replies: {verdict(correct)}")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="one run per size above N=1")
    p.add_argument("--repeat", type=int, metavar="K", help="runs per size (overrides the default)")
    p.add_argument("--sizes", type=int, nargs="+", default=list(SIZES), metavar="N")
    args = p.parse_args(argv)
    base = QUICK_REPEATS if args.quick else FULL_REPEATS
    repeats = {n: args.repeat or base.get(n, 1) for n in sorted(set(args.sizes) | {1})}
    small = repeats[1]
    install_sigterm_handler()
    peer = peer_qmp_shell()
    mine = install_qmpsh_in_peer_venv()
    with Qemu(BASE_MACHINE) as qemu:
        wait_for_qmpsh(qemu.socket, exe=mine)
        _header(qemu, repeats)
        cs = contenders(qemu.socket, peer, mine)
        measure_throughput(cs, qemu.socket, repeats)
        startup = measure_startup(qemu.socket, peer, mine, small)
        ttfr = measure_ttfr(qemu.socket, peer, mine, small)
        print_report(cs, startup, ttfr)
        print("\n== Imports (python -X importtime) ==")
        print_imports(qemu.socket, peer)
    return 0


def _header(qemu: Qemu, repeats: dict[int, int]) -> None:
    print(
        f"QEMU pid {qemu.pid} ({' '.join(BASE_MACHINE)}); python {sys.version.split()[0]}; "
        f"qemu.qmp {peer_version()}; cpus {os.cpu_count()}; runs per N {repeats}"
    )


if __name__ == "__main__":
    sys.exit(main())
