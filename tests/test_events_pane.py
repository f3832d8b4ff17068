"""Real events reach the interactive shell's event pane, with no keypress.

The Application runs as in tests/test_ui.py (pipe input, a sized DummyOutput, state
asserted rather than bytes).  Events come from a real QEMU: SPICE peers this test
connects, a tiny guest whose disk fails, a watchdog that fires, and a second QMP
monitor (``-qmp`` twice) that drives QEMU while the shell owns the first one.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from peers import CHANNEL_INPUTS, CHANNEL_MAIN, spice_session
from qemu import Qemu, RawMonitor
from recipes import (
    GUEST_IDE_WRITE,
    GUEST_WATCHDOG,
    block_io_error_drive,
    tiny_guest_machine,
    write_bios,
)
from test_ui import Running, make_session, running_ui, wait_until

from qmpsh.session import Session

WIDE = 320  # the pane gets 2/5 of the width: room for a whole SPICE line
BURST_PAIRS = 1000


def second_monitor(directory: Path) -> tuple[str, list[str]]:
    """A path and the QEMU arguments for a second, independent QMP monitor."""
    path = str(directory / "second.sock")
    return path, ["-qmp", f"unix:{path},server=on,wait=off"]


def has_line(run: Running, *needles: str) -> bool:
    return any(all(n in line for n in needles) for line in run.pane_lines())


def number_of(run: Running, *needles: str) -> int:
    """The ``#N`` the pane shows beside the first line holding all ``needles``."""
    line = next(line for line in run.pane_lines() if all(n in line for n in needles))
    match = re.match(r"#(\d+) ", line)
    assert match, line
    return int(match[1])


@pytest.fixture
def session(qemu: Qemu) -> Iterator[Session]:
    s = make_session(qemu.socket)
    yield s
    s.client.close()


def start_guest(
    factory: Callable[..., Qemu], directory: Path, code: bytes, extra: list[str]
) -> tuple[Qemu, RawMonitor]:
    path, args = second_monitor(directory)
    q = factory(*extra, *args, machine=tiny_guest_machine(write_bios(directory, code)))
    return q, RawMonitor(path)


# ------------------------------------------------------------------------- SPICE


def test_spice_events_reach_the_pane_with_channel_and_unsigned_session(
    session: Session, qemu: Qemu
) -> None:
    assert qemu.spice_port is not None
    with running_ui(session, columns=WIDE) as run:
        assert wait_until(lambda: run.pane_lines())
        channels = spice_session("127.0.0.1", qemu.spice_port, (CHANNEL_MAIN, CHANNEL_INPUTS))
        try:
            unsigned = channels[0].session_id
            assert wait_until(lambda: has_line(run, "SPICE_INITIALIZED inputs:0"))
            assert has_line(run, "SPICE_INITIALIZED main:0", f"session={unsigned}")
            assert not any("session=-" in line for line in run.pane_lines())
        finally:
            for channel in channels:
                channel.close()
        assert wait_until(lambda: has_line(run, "SPICE_DISCONNECTED"))
        assert run.stdout.getvalue() == ""  # in the pane, nothing in the scrollback


def test_events_filter_show_and_stats_from_the_prompt(session: Session, qemu: Qemu) -> None:
    assert qemu.spice_port is not None
    session.settings.fmt = "pretty"  # what a terminal gets
    with running_ui(session, columns=WIDE) as run:
        for channel in spice_session("127.0.0.1", qemu.spice_port):
            channel.close()
        assert wait_until(lambda: has_line(run, "SPICE_DISCONNECTED"))
        assert has_line(run, "SPICE_CONNECTED")
        run.send("events filter SPICE_INITIALIZED\r")
        assert wait_until(lambda: all("SPICE_INITIALIZED" in x for x in run.pane_lines()))
        assert len(run.pane_lines()) == 2
        number = number_of(run, "SPICE_INITIALIZED main:0")
        run.send(f"events show {number}\r")
        assert wait_until(lambda: '"channel-type": 1' in run.stdout.getvalue())
        shown = run.stdout.getvalue()
        document = shown[shown.index("{") : shown.rindex("}") + 1]
        assert json.loads(document)["event"] == "SPICE_INITIALIZED"
        run.send("events stats\r")
        assert wait_until(
            lambda: re.search(r"^ +2  SPICE_INITIALIZED$", run.stdout.getvalue(), re.M)
        )
        assert re.search(r"^ +2  SPICE_CONNECTED$", run.stdout.getvalue(), re.M)


# ---------------------------------------------------------------- guest events


def test_block_io_error_and_the_stop_it_caused(
    qemu_factory: Callable[..., Qemu], tmp_path: Path
) -> None:
    drive = block_io_error_drive("write_aio", "stop")
    q, other = start_guest(qemu_factory, tmp_path, GUEST_IDE_WRITE, drive)
    session = make_session(q.socket)
    with running_ui(session, columns=WIDE) as run, other:
        other.execute("cont")
        assert wait_until(lambda: has_line(run, "STOP ← BLOCK_IO_ERROR drive0"))
        assert has_line(run, "BLOCK_IO_ERROR drive0 write error, action=stop")
        error = number_of(run, "BLOCK_IO_ERROR")
        assert number_of(run, "STOP ←") > error
        assert session.events.get(number_of(run, "STOP ←")).cause_seq == error  # type: ignore[union-attr]


def test_watchdog_and_the_reset_it_caused(
    qemu_factory: Callable[..., Qemu], tmp_path: Path
) -> None:
    q, other = start_guest(qemu_factory, tmp_path, GUEST_WATCHDOG, ["-device", "ib700"])
    session = make_session(q.socket)
    with running_ui(session, columns=WIDE) as run, other:
        other.execute("watchdog-set-action", action="reset")
        other.execute("cont")
        assert wait_until(lambda: has_line(run, "RESET guest: guest-reset ← WATCHDOG reset"))
        assert has_line(run, "WATCHDOG action=reset → RESET follows")


# ------------------------------------------------------------------------ burst


def pipelined_stop_cont(mon: RawMonitor, pairs: int) -> None:
    """Send every stop/cont at once, then read until each has its reply."""
    command = b'{"execute":"stop"}\n{"execute":"cont"}\n'
    mon.sock.sendall(command * pairs)
    replies = 0
    while replies < 2 * pairs:
        if "return" in mon._read():
            replies += 1


def test_a_burst_of_events_loses_nothing_and_the_pane_shows_the_newest(
    qemu_factory: Callable[..., Qemu], tmp_path: Path
) -> None:
    path, args = second_monitor(tmp_path)
    q = qemu_factory(*args)
    session = make_session(q.socket)
    with running_ui(session, columns=WIDE) as run, RawMonitor(path) as other:
        assert wait_until(lambda: run.pane_lines())
        pipelined_stop_cont(other, BURST_PAIRS)
        total = 2 * BURST_PAIRS
        assert wait_until(lambda: session.events.last_seq >= total)
        assert session.events.stats() == {"STOP": BURST_PAIRS, "RESUME": BURST_PAIRS}
        window = session.events.recent()
        assert [e.seq for e in window] == list(range(1, total + 1))
        assert wait_until(lambda: run.pane_lines()[-1].startswith(f"#{total} "))
        assert "RESUME" in run.pane_lines()[-1]
        assert run.pane_lines()[-2].startswith(f"#{total - 1} ")
