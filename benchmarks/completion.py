"""How long one keystroke's completion takes, per kind of context, on a real schema.

Starts its own throwaway QEMU (``-machine none``), fetches ``query-qmp-schema``,
then replays typing a set of lines one character at a time and times the full
completion (analyze + matching + building every ``Completion``) after each
keystroke.  Prints p50/p99 per kind in milliseconds.  Live values are cached in
the completer, so the value rows measure the warm path a user sees while typing.

    python benchmarks/completion.py [--rounds N]
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from qmpsh.completer import QmpCompleter
from qmpsh.live_values import LiveValues
from qmpsh.schema import Schema

# Lines typed keystroke by keystroke, grouped by what the completer mostly does.
LINES: dict[str, list[str]] = {
    "command names": ["query-spice", "blockdev-snapshot-sync", "x-blockdev-change", "spice"],
    "argument names": [
        "block-stream device=x base-node=y speed=1 on-error=stop",
        "drive-mirror device=a target=b sync=full mode=existing speed=0",
        "blockdev-add driver=qcow2 node-name=n discard=unmap cache.direct=on",
    ],
    "nested keys": [
        "blockdev-add driver=qcow2 file.driver=file file.filename=/tmp/x file.aio=native",
        "object-add qom-type=memory-backend-ram id=m size=1024 prealloc=on",
        "transaction( blockdev-snapshot-sync device=a snapshot-file=b format=qcow2 )",
    ],
    "enum/bool values": [
        "set_password protocol=spice password=x connected=keep",
        "eject force=true",
    ],
    "live values": [
        "block-stream device=nullnode",
        "device_add driver=e1000 mac=52:54:00:00:00:01 netdev=n",
    ],
}


class Monitor:
    """Just enough QMP to fetch the schema and serve live-value queries."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.file = self.sock.makefile("rb")
        self.file.readline()  # greeting
        self.execute("qmp_capabilities", None)

    def execute(self, name: str, args: dict[str, Any] | None) -> Any:
        message: dict[str, Any] = {"execute": name, **({"arguments": args} if args else {})}
        self.sock.sendall(json.dumps(message).encode() + b"\n")
        while True:
            reply = json.loads(self.file.readline())
            if "return" in reply:
                return reply["return"]
            if "error" in reply:
                raise RuntimeError(reply["error"]["desc"])


@contextmanager
def qemu() -> Iterator[Monitor]:
    """A private QEMU, killed by PID at the end."""
    workdir = Path(tempfile.mkdtemp(prefix="qmpsh-bench-"))
    path = str(workdir / "qmp.sock")
    args = ["qemu-system-x86_64", "-machine", "none", "-display", "none", "-nodefaults"]
    args += ["-qmp", f"unix:{path},server=on,wait=off"]
    args += ["-blockdev", "driver=null-co,node-name=nullnode"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while not Path(path).exists() and time.monotonic() < deadline:
            time.sleep(0.01)
        yield Monitor(path)
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(workdir, ignore_errors=True)


def time_line(completer: QmpCompleter, line: str) -> list[float]:
    """Milliseconds for completing after each keystroke of ``line``."""
    times = []
    event = CompleteEvent(completion_requested=True)
    for n in range(1, len(line) + 1):
        doc = Document(line[:n])
        start = time.perf_counter()
        list(completer.get_completions(doc, event))
        times.append((time.perf_counter() - start) * 1000)
    return times


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50, help="times each line is typed")
    opts = parser.parse_args()
    with qemu() as mon:
        entries = mon.execute("query-qmp-schema", None)
        schema = Schema.from_entries(entries)
        completer = QmpCompleter(lambda: schema, LiveValues(mon.execute))
        print(f"schema: {len(entries)} entries, {len(schema.command_names())} commands")
        for line in (line for lines in LINES.values() for line in lines):
            time_line(completer, line)  # warm the caches (index, live values)
        print(f"{'kind':<18}{'keystrokes':>11}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
        for kind, lines in LINES.items():
            times = [
                t for _ in range(opts.rounds) for line in lines for t in time_line(completer, line)
            ]
            print(
                f"{kind:<18}{len(times):>11}{statistics.median(times):>9.3f}"
                f"{percentile(times, 0.99):>9.3f}{max(times):>9.3f}"
            )


if __name__ == "__main__":
    main()
