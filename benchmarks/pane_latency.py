"""How long an event takes to reach the event pane, with no keypress (a measurement).

The interactive shell promises that an event shows up in the pane within 100 ms of
arriving.  This runs the real ShellUI Application (pipe input, a dummy terminal of
140 columns) against a real QEMU, makes QEMU emit STOP/RESUME through a second
monitor, and times two spans per event: from the client receiving it to the pane
drawing it, and from the second monitor sending ``stop``/``cont`` to the pane
drawing it.  Both idle and under a background event stream (a few hundred
events/s from the same second monitor) so the redraw batching is exercised.

    python benchmarks/pane_latency.py [--events 200]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from prompt_toolkit.data_structures import Size
from prompt_toolkit.input import create_pipe_input
from prompt_toolkit.output import DummyOutput

from qmpsh.address import parse_address
from qmpsh.client import QmpClient
from qmpsh.layout import EventPaneControl
from qmpsh.session import Output, Session, Settings
from qmpsh.settings import ShellOptions
from qmpsh.ui import ShellUI

TARGET_MS = 100.0


class Terminal(DummyOutput):
    """A dummy terminal wide enough for the pane."""

    def get_size(self) -> Size:
        return Size(rows=40, columns=140)


class Monitor:
    """A bare second QMP monitor that sends commands and ignores what comes back."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(path)
        self.file = self.sock.makefile("rb")
        self.file.readline()
        self.send("qmp_capabilities")
        self._drain = threading.Thread(target=self._read, daemon=True)
        self._drain.start()

    def send(self, name: str) -> None:
        self.sock.sendall(json.dumps({"execute": name}).encode() + b"\n")

    def _read(self) -> None:
        while self.file.readline():
            pass


def start_qemu(directory: Path) -> tuple[subprocess.Popen[bytes], str, str]:
    main, second = str(directory / "qmp.sock"), str(directory / "second.sock")
    args = ["qemu-system-x86_64", "-machine", "none", "-display", "none", "-nodefaults"]
    for path in (main, second):
        args += ["-qmp", f"unix:{path},server=on,wait=off"]
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not (os.path.exists(main) and os.path.exists(second)):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit("QEMU did not start")
        time.sleep(0.01)
    return proc, main, second


class Probe:
    """Records when each event arrived at the client and when the pane first drew it."""

    def __init__(self, ui: ShellUI) -> None:
        self.arrived: dict[int, float] = {}
        self.drawn: dict[int, float] = {}
        ui.session.events.add_listener(self._arrived)
        control = next(
            w.content
            for w in ui.app.layout.find_all_windows()
            if isinstance(w.content, EventPaneControl)
        )
        original = control.create_content

        def create_content(width: int, height: int) -> Any:
            content = original(width, height)
            now = time.perf_counter()
            for line in control.lines:
                if line.startswith("#"):
                    self.drawn.setdefault(int(line[1:].split()[0]), now)
            return content

        control.create_content = create_content  # type: ignore[method-assign]

    def _arrived(self, logged: Any) -> None:
        self.arrived[logged.seq] = time.perf_counter()


def measure(ui: ShellUI, probe: Probe, monitor: Monitor, count: int, busy: bool) -> list[float]:
    """Send ``count`` stop/cont, one at a time, and time each to its drawing."""
    stop_background = threading.Event()
    if busy:

        def background() -> None:
            while not stop_background.is_set():
                monitor.send("stop")
                monitor.send("cont")
                time.sleep(0.005)

        threading.Thread(target=background, daemon=True).start()
    sent_to_drawn = []
    for i in range(count):
        before = ui.session.events.last_seq
        sent = time.perf_counter()
        monitor.send("stop" if i % 2 == 0 else "cont")
        deadline = sent + 2.0
        seq = None
        while time.perf_counter() < deadline:
            newest = ui.session.events.last_seq
            if newest > before and newest in probe.drawn:
                seq = newest
                break
            time.sleep(0.0005)
        if seq is not None and not busy:
            sent_to_drawn.append((probe.drawn[seq] - sent) * 1000)
        time.sleep(0.02)
    stop_background.set()
    return sent_to_drawn


def summary(label: str, values: list[float]) -> str:
    if not values:
        return f"{label:<44} (no samples)"
    values = sorted(values)
    p99 = values[min(len(values) - 1, int(len(values) * 0.99))]
    return (
        f"{label:<44} n={len(values):<6} median {statistics.median(values):6.1f} ms"
        f"   p99 {p99:6.1f} ms   max {values[-1]:6.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200, help="events timed per phase")
    options = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="qmpsh-pane-"))
    proc, main_path, second_path = start_qemu(directory)
    try:
        client = QmpClient(parse_address(main_path), timeout=10)
        output = Output(io.StringIO(), io.StringIO())
        session = Session(client, Settings(fmt="json", confirm=False), output)
        client.connect(wait=5)
        monitor = Monitor(second_path)
        shell_options = ShellOptions(pager=False, color="never")
        with create_pipe_input() as pipe:
            ui = ShellUI(session, shell_options, input=pipe, output=Terminal())
            thread = threading.Thread(target=lambda: ui.app.run(handle_sigint=False))
            thread.start()
            while not ui.app.is_running:
                time.sleep(0.01)
            probe = Probe(ui)
            idle = measure(ui, probe, monitor, options.events, busy=False)
            measure(ui, probe, monitor, options.events, busy=True)
            arrival_to_draw = [
                (probe.drawn[s] - t) * 1000 for s, t in probe.arrived.items() if s in probe.drawn
            ]
            ui.app.loop.call_soon_threadsafe(ui.app.exit)  # type: ignore[union-attr]
            thread.join(10)
        client.close()
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        shutil.rmtree(directory, ignore_errors=True)
    print("== Event → pane, no keypress (140-column dummy terminal, real QEMU) ==")
    print(summary("second monitor sends stop/cont → drawn (idle)", idle))
    print(summary("client receives → drawn (idle and busy)", arrival_to_draw))
    print(f"events drawn at least once: {len(arrival_to_draw)} of {len(probe.arrived)}")
    worst = max(arrival_to_draw, default=float("inf"))
    verdict = "MET" if worst < TARGET_MS else "MISSED"
    print(f"target: every event drawn within {TARGET_MS:.0f} ms of arriving: {verdict}")


if __name__ == "__main__":
    main()
