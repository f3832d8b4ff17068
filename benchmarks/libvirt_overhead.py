"""What qmpsh adds on a libvirt domain: lock-step ``query-status`` through libvirt-python.

One transient TCG domain (a real libvirtd, started by PID unless one runs; see
tests/libvirt_lab.py) serves every run.  Each run is a whole process, start to exit,
doing N lock-step ``query-status`` and printing each reply, on this interpreter:

- raw libvirt-python: ``qemuMonitorCommand`` in a loop, nothing else (the limit);
- raw + event loop: the same with libvirt's default event loop running on a thread and
  QEMU's events registered, the price any client that shows events pays (libvirt wakes
  that thread around every call);
- qmpsh: ``qmpsh libvirt:D --format json`` fed N lines on stdin.

qmp-shell cannot take part: it needs the QMP socket, and libvirtd holds it (QEMU
serves one client per monitor).  Runs are interleaved so the machine's load drifts
over all contenders alike.  Target: qmpsh's lock-step rate (per command, start-up
left out) >= 0.8x the raw loop's; the whole run, start-up included, is printed beside it.

    python benchmarks/libvirt_overhead.py            # N = 200 and 2000, 3 runs each
    python benchmarks/libvirt_overhead.py --quick    # N = 200 and 1000, 1 run each
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from _common import (
    REPO,
    compiled_tree_env,
    install_sigterm_handler,
    median,
    qmpsh_argv,
    table,
    verdict,
)

sys.path.insert(0, str(REPO / "tests"))
from libvirt_lab import LibvirtLab  # the tests' lab: same daemons, same domain

TARGET = 0.8
STATUS = re.compile(rb'"status":\s*"running"')
RAW_SCRIPT = r"""
import sys, threading
import libvirt, libvirt_qemu
name, n, events = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "events"
libvirt.registerErrorHandler(lambda c, e: None, None)
if events:
    libvirt.virEventRegisterDefaultImpl()
    def loop():
        while True:
            libvirt.virEventRunDefaultImpl()
    threading.Thread(target=loop, daemon=True).start()
conn = libvirt.open("qemu:///system")
dom = conn.lookupByName(name)
if events:
    libvirt_qemu.qemuMonitorEventRegister(conn, dom, None, lambda *a: None, None, 0)
out = sys.stdout
for _ in range(n):
    out.write(libvirt_qemu.qemuMonitorCommand(dom, '{"execute":"query-status"}', 0) + "\n")
out.flush()
"""


@dataclass
class Contender:
    name: str
    argv: Callable[[str, int], list[str]]
    piped: bool
    times: dict[int, list[float]] = field(default_factory=dict)
    cpu: dict[int, list[float]] = field(default_factory=dict)  # user + sys of the process


def contenders() -> list[Contender]:
    py = sys.executable
    return [
        Contender("raw libvirt-python", lambda d, n: [py, "-c", RAW_SCRIPT, d, str(n), "-"], False),
        Contender(
            "raw + event loop", lambda d, n: [py, "-c", RAW_SCRIPT, d, str(n), "events"], False
        ),
        Contender("qmpsh", lambda d, n: qmpsh_argv(f"libvirt:{d}", "-q", "--format", "json"), True),
    ]


def run_once(c: Contender, domain: str, n: int, env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + sys) of one whole process doing ``n`` commands."""
    stdin = b"query-status\n" * n if c.piped else b""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(c.argv(domain, n), input=stdin, capture_output=True, check=False, env=env)
    elapsed = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    replies = len(STATUS.findall(done.stdout))
    if done.returncode != 0 or replies != n:
        err = done.stderr.decode(errors="replace").strip()[-300:]
        raise SystemExit(f"{c.name}: exit {done.returncode}, {replies}/{n} replies: {err}")
    return elapsed, cpu


def measure(domain: str, sizes: tuple[int, ...], repeats: int) -> list[Contender]:
    runners = contenders()
    env = compiled_tree_env()
    for c in runners:  # warm-up: page cache, libvirt's first-command taint, schema of nothing
        run_once(c, domain, 1, env)
    for n in sizes:
        for _ in range(repeats):
            for c in runners:
                wall, cpu = run_once(c, domain, n, env)
                c.times.setdefault(n, []).append(wall)
                c.cpu.setdefault(n, []).append(cpu)
    return runners


def report(runners: list[Contender], sizes: tuple[int, ...]) -> None:
    small, big = sizes[0], sizes[-1]
    raw = runners[0]

    def per_command(c: Contender, figures: dict[int, list[float]]) -> float:
        return (median(figures[big]) - median(figures[small])) / (big - small) * 1000

    raw_step, raw_whole = per_command(raw, raw.times), median(raw.times[big])
    rows, steady = [], 0.0
    for c in runners:
        step, whole = per_command(c, c.times), median(c.times[big])
        steady = raw_step / step  # the last row's (qmpsh's) is the one judged
        rows.append(
            [c.name, f"{whole:.2f} s", f"{step:.3f} ms", f"{per_command(c, c.cpu):.3f} ms",
             f"{steady:.2f}x", f"{raw_whole / whole:.2f}x"]
        )  # fmt: skip
    rows.append(["qmp-shell", "-", "-", "-", "cannot reach a libvirt domain", "-"])
    headers = ["client", f"N={big} wall", "per command", "CPU/command", "lock-step rate vs raw",
               f"whole run vs raw (N={big})"]  # fmt: skip
    print(table(headers, rows))
    print()
    print("qmp-shell needs the QMP socket itself; libvirtd holds it (one client per monitor),")
    print("so there is no qmp-shell figure on a libvirt domain.")
    print(
        f"per command = (wall at N={big} - wall at N={small}) / {big - small}: the cost of one "
        "more command, start-up left out; its inverse is the lock-step rate.  CPU/command "
        "likewise, from the process's user + sys time (what the client itself burns, whatever "
        "the load).  The whole run includes start-up (imports, libvirt.open, the schema)."
    )
    print(
        f"target: qmpsh lock-step rate >= {TARGET}x raw libvirt-python: {verdict(steady >= TARGET)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 200 and 1000, one run each")
    args = parser.parse_args()
    install_sigterm_handler()
    sizes, repeats = ((200, 1000), 1) if args.quick else ((200, 2000), 3)
    lab = LibvirtLab()
    try:
        try:
            lab.start()
        except BaseException as e:  # the lab skips outside CI: here that is a plain message
            raise SystemExit(f"cannot set up libvirt: {e}") from None
        domain = lab.create_domain("bench")
        print(f"domain {domain} (TCG, libvirt qemu:///system); python {sys.version.split()[0]}")
        print(f"sizes {sizes}, {repeats} run(s) each, interleaved; whole processes\n")
        report(measure(domain, sizes, repeats), sizes)
    finally:
        lab.stop()


if __name__ == "__main__":
    main()
