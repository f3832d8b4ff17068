"""Event flood: does a client attached to QMP keep up with ~8,000 events/s, and at what cost?

A 64 KiB ``-bios`` guest loops IDE WRITE SECTORS against a blkdebug drive that fails
every write (EIO) with ``werror=ignore``, so QEMU emits BLOCK_IO_ERROR as fast as the
guest can loop: the worst case a QMP client meets, since these events are not
throttled.  A second ``-qmp`` monitor, read by a raw client in this process, counts
every event independently; it also starts (``cont``) and stops (``stop``) the guest,
so both counts cover exactly the same events.  qmpsh (piped, ``--events=FILE``) and
qmp-shell (fed an empty line every second, which is when it shows events) are each
measured against their own fresh QEMU.  Optionally the interactive UI's echo latency
is measured under a pseudo-terminal during the flood.

    python benchmarks/event_flood.py --quick        # 5 s floods
    python benchmarks/event_flood.py --seconds 30   # the default
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import (  # a sibling: python puts this script's directory on sys.path
    REPO,
    Qemu,
    RawMonitor,
    install_sigterm_handler,
    median,
    peer_qmp_shell,
    peer_version,
    percentile,
    qmpsh_argv,
    rss_kib,
    table,
    verdict,
    wait_for_qmpsh,
)

# The endless write-flood guest (see the module docstring), then `jmp short` back to 0.
FLOOD_CODE = bytes.fromhex(
    "BAF701 EC A888 75FB"  # wait until the drive is not busy
    " BAF601 B0E0 EE  BAF201 B001 EE  BAF301 30C0 EE 42 EE 42 EE"  # LBA 0, 1 sector
    " BAF701 B030 EE  BAF001 31F6 B90001 F36F"  # WRITE SECTORS, rep outsw 256 words
)
RESET_VECTOR = bytes.fromhex("EA 0000 00F0")  # jmp far F000:0000, at 0xFFF0
EVENT = b"BLOCK_IO_ERROR"
TICK = 0.25  # how often the counting loop samples RSS and progress


def flood_bios() -> bytes:
    code = FLOOD_CODE + bytes([0xEB, -(len(FLOOD_CODE) + 2) & 0xFF])
    image = bytearray(b"\xf4" * 0x10000)  # hlt everywhere else
    image[: len(code)] = code
    image[0xFFF0 : 0xFFF0 + len(RESET_VECTOR)] = RESET_VECTOR
    return bytes(image)


def flood_args(bios: Path) -> list[str]:
    drive = (
        "if=none,id=drive0,format=raw,file.driver=blkdebug,file.image.driver=null-co,"
        "file.image.size=1M,file.image.read-zeroes=on,file.inject-error.0.event=write_aio,"
        "file.inject-error.0.errno=5,rerror=ignore,werror=ignore"
    )
    return [
        "-M",
        "pc",
        "-S",
        "-display",
        "none",
        "-nodefaults",
        "-bios",
        str(bios),
        "-drive",
        drive,
        "-device",
        "ide-hd,drive=drive0,bus=ide.0,unit=0",
    ]


class Counter:
    """Counts EVENT in a file another process appends to, reading only what is new."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.count = 0
        self.tail = b""

    def update(self) -> int:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = self.tail + fh.read()
        except FileNotFoundError:
            return self.count
        self.offset += len(data) - len(self.tail)
        cut = data.rfind(b"\n") + 1  # an event name split across reads is counted later
        self.count += data[:cut].count(EVENT)
        self.tail = data[cut:]
        return self.count

    def contains(self, needle: bytes) -> bool:
        return self.path.exists() and needle in self.path.read_bytes()


@dataclass
class Attached:
    """A client process attached to monitor 1, and where its events end up."""

    name: str
    argv: list[str]
    events_file: Path
    stdout_file: Path
    ping_every: float | None = None  # qmp-shell only shows events when given a line
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    proc: subprocess.Popen[bytes] | None = None
    last_ping: float = 0.0

    def start(self) -> None:
        with open(self.stdout_file, "wb") as out:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.PIPE,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        self.send(b"query-status\n")
        deadline = time.monotonic() + 30
        while not Counter(self.stdout_file).contains(b'"status"'):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{self.name} did not start: {self.stdout_file.read_text()}")
            time.sleep(0.02)

    def send(self, data: bytes) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def tick(self) -> None:
        if self.ping_every and time.monotonic() - self.last_ping >= self.ping_every:
            self.send(b"\n")
            self.last_ping = time.monotonic()

    def finish(self) -> None:
        """Close stdin (end of script) and wait; kill by PID if it hangs."""
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class FloodResult:
    name: str
    seconds: float
    monitor: int
    at_stop: int  # what the client had when `stop` returned
    client: int
    catch_up: float  # seconds after `stop` until the client had every event (nan: never)
    max_lag: int
    client_rss: tuple[int, int]  # KiB at start, max
    qemu_rss: tuple[int, int]
    exit_code: int | None


@dataclass
class Sampler:
    """Max RSS of the client and of QEMU, and the client's worst backlog."""

    client_pid: int
    qemu_pid: int
    client_rss: list[int] = field(default_factory=list)
    qemu_rss: list[int] = field(default_factory=list)
    max_lag: int = 0

    def sample(self, monitor_count: int, client_count: int) -> None:
        self.client_rss.append(rss_kib(self.client_pid))
        self.qemu_rss.append(rss_kib(self.qemu_pid))
        self.max_lag = max(self.max_lag, monitor_count - client_count)


def flood(client: Attached, seconds: float, limit: float) -> FloodResult:
    """One fresh QEMU, one attached client, one flood of ``seconds``; count both sides."""
    with tempfile.TemporaryDirectory(prefix="qmpsh-flood-") as tmp:
        bios = Path(tmp) / "flood.bin"
        bios.write_bytes(flood_bios())
        with Qemu(flood_args(bios), monitors=2) as qemu:
            client.argv = [a.replace("{SOCK}", qemu.socket) for a in client.argv]
            counter = RawMonitor(qemu.sockets[1])
            try:
                return _measure(client, qemu, counter, seconds, limit)
            finally:
                counter.close()
                if client.proc is not None and client.proc.poll() is None:
                    client.proc.kill()
                    client.proc.wait()


def _measure(
    client: Attached, qemu: Qemu, counter: RawMonitor, seconds: float, limit: float
) -> FloodResult:
    client.start()
    assert client.proc is not None
    seen = Counter(client.events_file)
    sampler = Sampler(client.proc.pid, qemu.pid)
    counter.execute("cont")
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        counter.pump(TICK)
        client.tick()
        sampler.sample(counter.counts.get(EVENT, 0), seen.update())
    counter.execute("stop")
    elapsed = time.monotonic() - start
    at_stop = seen.update()
    catch_up = _after_stop(client, seen, sampler, counter, limit)
    client.finish()
    return FloodResult(
        name=client.name,
        seconds=elapsed,
        monitor=counter.counts.get(EVENT, 0),
        at_stop=at_stop,
        client=seen.update(),
        catch_up=catch_up,
        max_lag=sampler.max_lag,
        client_rss=(sampler.client_rss[0], max(sampler.client_rss)),
        qemu_rss=(sampler.qemu_rss[0], max(sampler.qemu_rss)),
        exit_code=client.proc.returncode,
    )


def _after_stop(
    client: Attached, seen: Counter, sampler: Sampler, counter: RawMonitor, limit: float
) -> float:
    """Seconds from `stop` until the client had every event (nan: not within ``limit``).

    Ends once monitor 2 has been quiet for 1 s and the client has caught up, has made
    no progress for 3 s, or ``limit`` has passed.
    """
    stopped = time.monotonic()
    caught = float("nan")
    moved = {"monitor": stopped, "client": stopped}
    last = {"monitor": -1, "client": -1}
    while (now := time.monotonic()) - stopped < limit:
        counts = {"monitor": counter.counts.get(EVENT, 0), "client": seen.update()}
        for side, n in counts.items():
            if n != last[side]:
                last[side], moved[side] = n, now
        sampler.sample(counts["monitor"], counts["client"])
        behind = counts["client"] < counts["monitor"]
        caught = float("nan") if behind else (caught if caught == caught else now - stopped)
        quiet = now - moved["monitor"] >= 1.0
        if quiet and (not behind or now - moved["client"] >= 3.0):
            break
        counter.pump(TICK)
        client.tick()
    return caught


def qmpsh_client(tmp: Path) -> Attached:
    events = tmp / "qmpsh-events.jsonl"
    argv = qmpsh_argv("{SOCK}", "--format", "json", "--events", str(events))
    return Attached("qmpsh (piped, --events=FILE)", argv, events, tmp / "qmpsh.out")


def qmp_shell_client(tmp: Path, peer: Path) -> Attached:
    out = tmp / "qmp-shell.out"
    client = Attached("qmp-shell (Enter every 1 s)", [str(peer), "{SOCK}"], out, out, 1.0)
    client.env["PYTHONUNBUFFERED"] = "1"  # so we can see when it is up and what it shows
    return client


def flood_table(results: list[FloodResult]) -> str:
    """Metrics down, clients across: side by side."""
    metrics: list[tuple[str, Callable[[FloodResult], object]]] = [
        ("flood length (s)", lambda r: f"{r.seconds:.1f}"),
        ("BLOCK_IO_ERROR emitted (monitor 2)", lambda r: f"{r.monitor:,}"),
        ("emitted per second", lambda r: f"{r.monitor / r.seconds:,.0f}"),
        ("client had when `stop` returned", lambda r: f"{r.at_stop:,}"),
        ("client had at the end", lambda r: f"{r.client:,}"),
        ("missing at the end (lost)", lambda r: f"{r.monitor - r.client:,}"),
        ("catch-up after `stop` (s)", lambda r: _secs(r.catch_up)),
        ("max backlog vs monitor 2 (events)", lambda r: f"{r.max_lag:,}"),
        ("client RSS MiB, start / max", lambda r: _mib(r.client_rss, 1)),
        ("QEMU RSS MiB, start / max", lambda r: _mib(r.qemu_rss, 0)),
        ("client exit code", lambda r: r.exit_code),
    ]
    rows = [[label, *(get(r) for r in results)] for label, get in metrics]
    return table(["", *(r.name for r in results)], rows)


def _mib(pair: tuple[int, int], digits: int) -> str:
    return f"{pair[0] / 1024:.{digits}f} / {pair[1] / 1024:.{digits}f}"


def _secs(value: float) -> str:
    return "never" if value != value else f"{value:.2f}"  # nan: did not catch up


@dataclass
class EchoResult:
    note: str
    latencies_ms: list[float] = field(default_factory=list)
    idle_ms: list[float] = field(default_factory=list)  # the same, before the flood


def echo_latency(seconds: float) -> EchoResult:
    """Type into the interactive UI under a pty during a flood; time each echo."""
    if not (REPO / "qmpsh" / "ui.py").exists():
        return EchoResult("skipped: qmpsh/ui.py (the interactive UI) is not there yet")
    try:
        import pexpect  # type: ignore[import-untyped]  # a test dependency
    except ImportError:
        return EchoResult("skipped: pexpect is not installed")
    with tempfile.TemporaryDirectory(prefix="qmpsh-flood-") as tmp:
        bios = Path(tmp) / "flood.bin"
        bios.write_bytes(flood_bios())
        with Qemu(flood_args(bios), monitors=2) as qemu:
            # A generous timeout: under the flood on 2 shared cores, `stop` can take a while.
            counter = RawMonitor(qemu.sockets[1], timeout=30.0)
            argv = qmpsh_argv(qemu.socket)
            env = dict(os.environ, TERM="xterm-256color")
            child = pexpect.spawn(
                argv[0], argv[1:], env=env, dimensions=(40, 140), timeout=5, maxread=1 << 20
            )
            child.delaybeforesend = None  # pexpect sleeps 50 ms before each send by default
            try:
                return _type_during_flood(child, counter, seconds)
            finally:
                child.terminate(force=True)
                counter.close()


def _type_during_flood(child: Any, counter: RawMonitor, seconds: float) -> EchoResult:
    _drain(child, quiet=2.0)  # banner, schema load, first render
    if not child.isalive():
        return EchoResult(f"skipped: the UI exited at start (status {child.exitstatus})")
    idle = _type_chars(child, counter, 2.0)
    counter.execute("cont")
    result = _type_chars(child, counter, seconds)
    counter.execute("stop")
    result.idle_ms = idle.latencies_ms
    result.note = f"idle: {idle.note}\nflood: {result.note}"
    return result


def _type_chars(child: Any, counter: RawMonitor, seconds: float) -> EchoResult:
    import pexpect

    # Characters that no event line or pane text should contain, so a match is the echo.
    chars = "~^`"
    result = EchoResult("")
    start, typed, painted = time.monotonic(), 0, 0
    while time.monotonic() - start < seconds:
        counter.pump(0.05)  # keep monitor 2 drained, so QEMU is not slowed by it
        painted += _drain(child, quiet=0.0)
        ch = chars[typed % len(chars)]
        t0 = time.perf_counter()
        child.send(ch)
        try:
            child.expect_exact(ch, timeout=2)
            result.latencies_ms.append((time.perf_counter() - t0) * 1000)
        except pexpect.TIMEOUT:
            result.latencies_ms.append(2000.0)
        typed += 1
        if typed % 40 == 0:
            child.send("\x15")  # Ctrl-U: keep the input line short
    rate = painted / (time.monotonic() - start) / 1024
    result.note = f"{typed} characters typed over {seconds:.0f} s; UI output {rate:,.1f} KiB/s"
    return result


def _drain(child: Any, quiet: float, limit: float = 5.0) -> int:
    """Read what the UI has written until it is silent for ``quiet`` s (at most ``limit``).

    Returns how many bytes that was: a UI that repaints on every event shows up here.
    """
    import pexpect

    deadline, got = time.monotonic() + limit, 0
    while time.monotonic() < deadline:
        try:
            got += len(child.read_nonblocking(1 << 20, timeout=quiet))
        except (pexpect.TIMEOUT, pexpect.EOF):
            break
    return got


def print_echo(echo: EchoResult) -> None:
    print("\n== Interactive UI echo latency (pty; one character at a time) ==")
    print(echo.note)
    for label, values in (
        ("idle, before the flood", echo.idle_ms),
        ("during the flood", echo.latencies_ms),
    ):
        if values:
            print(f"{label}: {_latency_summary(values)}")
    if echo.latencies_ms:
        p99 = percentile(echo.latencies_ms, 0.99)
        print(f"target: p99 < 50 ms during the flood: {verdict(p99 < 50)}")


def _latency_summary(values: list[float]) -> str:
    p50, p99 = median(values), percentile(values, 0.99)
    return f"n={len(values)}, median {p50:.1f} ms, p99 {p99:.1f} ms, max {max(values):.1f} ms"


def print_targets(results: list[FloodResult]) -> None:
    mine = results[0]
    print("\n== Targets ==")
    lost = mine.monitor - mine.client
    print(f"qmpsh loses no event: lost {lost}  {verdict(lost == 0)}")
    rate = mine.monitor / mine.seconds
    print(f"flood rate reached (QEMU emitted): {rate:,.0f} events/s (recipe: ~8,000)")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=30.0, help="flood length (default 30)")
    p.add_argument("--quick", action="store_true", help="5 s floods")
    p.add_argument(
        "--catch-up",
        type=float,
        metavar="S",
        help="after `stop`, wait at most S s for a client to show every event "
        "(default 30; 10 with --quick)",
    )
    p.add_argument("--no-echo", action="store_true", help="skip the interactive UI part")
    p.add_argument("--echo-only", action="store_true", help="only the interactive UI part")
    args = p.parse_args(argv)
    install_sigterm_handler()
    seconds = 5.0 if args.quick else args.seconds
    limit = args.catch_up or (10.0 if args.quick else 30.0)
    if args.echo_only:
        print_echo(echo_latency(min(seconds, 10.0)))
        return 0
    peer = peer_qmp_shell()
    with Qemu(["-machine", "none", "-display", "none", "-nodefaults"]) as probe:
        wait_for_qmpsh(probe.socket)
    print(
        f"python {sys.version.split()[0]}; qemu.qmp {peer_version()}; cpus {os.cpu_count()}; "
        f"flood {seconds:.0f} s per client, each against a fresh QEMU"
    )
    with tempfile.TemporaryDirectory(prefix="qmpsh-flood-out-") as out:
        tmp = Path(out)
        clients = [qmpsh_client(tmp), qmp_shell_client(tmp, peer)]
        results = [flood(c, seconds, limit) for c in clients]
    print("\n== BLOCK_IO_ERROR flood: client vs an independent second monitor ==")
    print(flood_table(results))
    print(
        f"(both counts cover the same cont..stop window; a client gets {limit:.0f} s after "
        "`stop` to show the rest; QEMU's RSS grows while a client leaves its socket undrained)"
    )
    print_targets(results)
    if not args.no_echo:
        print_echo(echo_latency(min(seconds, 10.0)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
