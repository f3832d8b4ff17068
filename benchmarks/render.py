"""What the interactive shell pays for the schema and for showing a huge reply.

Starts its own throwaway QEMU (``-machine none``) by PID in a temp dir, fetches
``query-qmp-schema`` once over a plain socket, then times, over repeats:

* ``Schema.from_entries``: building the index the completer and validator use;
* ``load_schema`` on a cache hit (a temp cache dir): what start-up costs after the first run;
* rendering the schema reply in ``pretty`` with qmpsh's ``Renderer`` (colour on and off),
  next to rich's ``print_json``, pygments on ``json.dumps(indent=2)``, and plain
  ``json.dumps(indent=2)``, the floor any pretty printer has to pay.

Prints median and p99 in milliseconds, ratios against the floor, and the targets.

    python benchmarks/render.py [--repeats N] [--budget SECONDS]
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qmpsh.render import Renderer
from qmpsh.schema import Schema, load_schema

QEMU_ARGS = ("qemu-system-x86_64", "-machine", "none", "-display", "none", "-nodefaults")
TARGET_LOAD_MS = 100.0  # schema load + index on a cache hit
TARGET_RENDER_MS = 500.0  # pretty render of query-qmp-schema
WIDTH = 120


# -- a private QEMU and just enough QMP to fetch one reply -----------------------------------


@contextmanager
def qemu() -> Iterator[str]:
    """A QEMU of our own; yields its QMP socket path and kills exactly that PID at the end."""
    workdir = Path(tempfile.mkdtemp(prefix="qmpsh-bench-"))
    path = str(workdir / "qmp.sock")
    args = [*QEMU_ARGS, "-qmp", f"unix:{path},server=on,wait=off"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_socket(path, proc)
        yield path
    finally:
        proc.kill()
        proc.wait(timeout=10)
        shutil.rmtree(workdir, ignore_errors=True)


def _wait_for_socket(path: str, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not Path(path).exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("QEMU did not start its QMP socket")
        time.sleep(0.01)


def fetch_raw(path: str, command: str) -> bytes:
    """The wire bytes of one reply: its size is what a user's terminal has to take."""
    with socket.socket(socket.AF_UNIX) as sock, sock.makefile("rb") as stream:
        sock.connect(path)
        stream.readline()  # greeting
        for name in ("qmp_capabilities", command):
            sock.sendall(json.dumps({"execute": name}).encode() + b"\n")
            line = _reply_line(stream)
        return line


def _reply_line(stream: io.BufferedReader) -> bytes:
    while True:
        line = stream.readline()
        if not line:
            raise EOFError("QEMU closed the QMP socket")
        message = json.loads(line)
        if "error" in message:
            raise RuntimeError(message["error"]["desc"])
        if "return" in message:
            return line


# -- timing ---------------------------------------------------------------------------------


@dataclass
class Figure:
    name: str
    times_ms: list[float]
    target_ms: float | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def p99(self) -> float:
        ordered = sorted(self.times_ms)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]


def measure(
    name: str, run: Callable[[], object], repeats: int, budget: float, target: float | None = None
) -> Figure:
    """Up to ``repeats`` timed runs (at least 3), stopping early once ``budget`` s is spent."""
    run()  # warm-up: lazy imports and first-call caches are not what a user waits for twice
    times: list[float] = []
    deadline = time.monotonic() + budget
    while len(times) < repeats and (len(times) < 3 or time.monotonic() < deadline):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    return Figure(name, times, target)


# -- the things measured ----------------------------------------------------------------------


def cache_hit(entries: list[dict[str, Any]], cache_dir: Path) -> Callable[[], Schema]:
    """``load_schema`` primed once, so every timed call reads the cache and never fetches."""

    def refuse() -> list[dict[str, Any]]:
        raise AssertionError("cache miss: load_schema fetched again")

    load_schema(lambda: entries, "bench-7.2.0", cache_dir)
    return lambda: load_schema(refuse, "bench-7.2.0", cache_dir)


def qmpsh_pretty(value: Any, *, color: bool) -> Callable[[], str]:
    def run() -> str:
        out = io.StringIO()
        renderer = Renderer("pretty", out, io.StringIO(), color=color, width=WIDTH)
        renderer.reply("query-qmp-schema", {"return": value})
        return out.getvalue()

    return run


def rich_print_json(value: Any, *, color: bool) -> Callable[[], str]:
    from rich.console import Console

    def run() -> str:
        out = io.StringIO()
        console = Console(file=out, width=WIDTH, force_terminal=color or None)
        console.print_json(data=value)
        return out.getvalue()

    return run


def pygments_json(value: Any) -> Callable[[], str]:
    from pygments import highlight  # type: ignore[import-untyped]
    from pygments.formatters import TerminalFormatter  # type: ignore[import-untyped]
    from pygments.lexers import JsonLexer  # type: ignore[import-untyped]

    return lambda: str(highlight(json.dumps(value, indent=2), JsonLexer(), TerminalFormatter()))


def plain_json(value: Any) -> Callable[[], str]:
    return lambda: json.dumps(value, indent=2)


# -- output -----------------------------------------------------------------------------------


def print_table(title: str, figures: list[Figure], floor: Figure | None = None) -> None:
    print(f"\n{title}")
    ratio_head = "x floor" if floor else ""
    print(f"  {'':<42}{'runs':>5}{'median ms':>11}{'p99 ms':>10}{ratio_head:>9}  target")
    for fig in figures:
        ratio = f"{fig.median / floor.median:.1f}x" if floor else ""
        print(
            f"  {fig.name:<42}{len(fig.times_ms):>5}{fig.median:>11.2f}{fig.p99:>10.2f}"
            f"{ratio:>9}  {_verdict(fig)}"
        )


def _verdict(fig: Figure) -> str:
    if fig.target_ms is None:
        return ""
    ok = "ok" if fig.median < fig.target_ms else "MISSED"
    return f"< {fig.target_ms:g} ms: {ok}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30, help="timed runs per figure (max)")
    parser.add_argument("--budget", type=float, default=5.0, help="seconds per figure (soft)")
    opts = parser.parse_args()
    with qemu() as path:
        raw = fetch_raw(path, "query-qmp-schema")
    entries: list[dict[str, Any]] = json.loads(raw)["return"]
    print(f"query-qmp-schema: {len(raw):,} bytes on the wire, {len(entries):,} entries")
    with tempfile.TemporaryDirectory(prefix="qmpsh-bench-cache-") as cache_dir:
        run_figures(entries, Path(cache_dir), opts.repeats, opts.budget)


def run_figures(
    entries: list[dict[str, Any]], cache_dir: Path, repeats: int, budget: float
) -> None:
    def fig(name: str, run: Callable[[], object], target: float | None = None) -> Figure:
        return measure(name, run, repeats, budget, target)

    index = fig("Schema.from_entries (index build)", lambda: Schema.from_entries(entries))
    load = fig(
        "load_schema, cache hit (read + index)", cache_hit(entries, cache_dir), TARGET_LOAD_MS
    )
    print_table("schema (interactive start-up)", [index, load])
    floor = fig("json.dumps(indent=2), the floor", plain_json(entries))
    renders = [
        fig("qmpsh Renderer pretty, color", qmpsh_pretty(entries, color=True), TARGET_RENDER_MS),
        fig(
            "qmpsh Renderer pretty, no color", qmpsh_pretty(entries, color=False), TARGET_RENDER_MS
        ),
        fig("rich Console.print_json (default)", rich_print_json(entries, color=False)),
        fig("rich Console.print_json, forced color", rich_print_json(entries, color=True)),
        fig("pygments highlight(json.dumps(indent=2))", pygments_json(entries)),
        floor,
    ]
    print_table("pretty render of query-qmp-schema", renders, floor)


if __name__ == "__main__":
    main()
