"""Every kind of event reaches ``qmpsh --events=FILE``, the way scripts use it.

Each test runs the real ``python -m qmpsh`` against a real QEMU while QEMU produces
the event: from a line of the script itself (``stop``, ``eject``, ``blockdev-backup``),
from a tiny guest after ``cont``, or from a SPICE/VNC peer this test connects while
qmpsh is attached.  The events file is then read back as JSON lines.
"""

from __future__ import annotations

import json
import select
import subprocess
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
from peers import CHANNEL_INPUTS, CHANNEL_MAIN, spice_session, vnc_connect
from qemu import Qemu
from recipes import (
    GUEST_IDE_WRITE,
    GUEST_RTC,
    GUEST_WATCHDOG,
    TRAY_DEVICE,
    TRAY_DRIVE,
    block_io_error_drive,
    start_tiny_guest,
)
from support import QMPSH, WAIT, child_env
from support import run_qmpsh as run

MIB = 1 << 20


def read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def names(path: Path) -> list[str]:
    return [e["event"] for e in read_events(path)]


def transcript_events(path: Path) -> list[str]:
    """Event names in a --transcript file: what qmpsh received, filtered or not."""
    found = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        message = record["msg"]
        if record["dir"] == "event" or "event" in message:
            found.append(message["event"])
    return found


@contextmanager
def attached(socket: str, *args: str) -> Iterator[subprocess.Popen[str]]:
    """qmpsh reading a script from a pipe, yielded once it has answered a first command.

    After that line QMP is negotiated, so a peer connected now is seen by qmpsh.
    """
    proc = subprocess.Popen(
        [*QMPSH, socket, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write("query-status\n")
        proc.stdin.flush()
        ready, _, _ = select.select([proc.stdout], [], [], WAIT)
        assert ready, "qmpsh did not answer query-status"
        assert "running" in proc.stdout.readline()  # a reply in any format: connected
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def finish(proc: subprocess.Popen[str], script: str = "") -> tuple[str, str]:
    """Send the rest of the script, close stdin, and expect a clean exit."""
    out, err = proc.communicate(script, timeout=60)
    assert proc.returncode == 0, err
    return out, err


# ------------------------------------------------------------------------ QEMUs


@pytest.fixture(scope="module")
def pc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Qemu]:
    """A paused PC with an empty CD drive whose tiny guest writes the RTC on ``cont``."""
    q = start_tiny_guest(tmp_path_factory.mktemp("rtc"), GUEST_RTC, TRAY_DRIVE)
    yield q
    q.stop()


@pytest.fixture
def io_error_guest(tmp_path: Path) -> Iterator[Qemu]:
    """A paused PC whose guest writes to a disk that fails every write, with werror=stop."""
    q = start_tiny_guest(tmp_path, GUEST_IDE_WRITE, block_io_error_drive("write_aio", "stop"))
    yield q
    q.stop()


@pytest.fixture
def watchdog_guest(tmp_path: Path) -> Iterator[Qemu]:
    q = start_tiny_guest(tmp_path, GUEST_WATCHDOG, ("-device", "ib700"))
    yield q
    q.stop()


# ------------------------------------------------------------------ run state


def test_run_state_events_from_script_lines(qemu: Qemu, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    script = "\n".join(
        [
            "stop",
            "cont",
            "wait RESUME timeout=10",
            "system_reset",
            "wait RESET timeout=10",
            "system_powerdown",
            "wait POWERDOWN timeout=10",
        ]
    )
    result = run(qemu.socket, f"--events={events}", stdin=script)
    assert result.returncode == 0, result.stderr
    assert names(events) == ["STOP", "RESUME", "RESET", "POWERDOWN"]
    reset = read_events(events)[2]
    assert reset["data"] == {"guest": False, "reason": "host-qmp-system-reset"}
    assert "timestamp" in reset


def test_shutdown_from_quit(qemu_factory: Callable[..., Qemu], tmp_path: Path) -> None:
    q = qemu_factory()
    events = tmp_path / "events.jsonl"
    result = run(q.socket, f"--events={events}", "-c", "quit", "-c", "wait SHUTDOWN timeout=10")
    assert result.returncode == 0, result.stderr
    [shutdown] = read_events(events)
    assert shutdown["event"] == "SHUTDOWN"
    assert shutdown["data"]["reason"] == "host-qmp-quit"
    assert q.proc.wait(WAIT) == 0


# ---------------------------------------------------------- devices and guests


def test_tray_block_job_and_rtc_change(pc: Qemu, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    script = f"""
        eject device={TRAY_DEVICE}
        wait DEVICE_TRAY_MOVED timeout=10
        blockdev-add driver=null-co node-name=src size={MIB} read-zeroes=true
        blockdev-add driver=null-co node-name=tgt size={MIB} read-zeroes=true
        blockdev-backup job-id=job0 device=src target=tgt sync=full
        wait BLOCK_JOB_COMPLETED timeout=10
        cont
        wait RTC_CHANGE timeout=10
    """
    result = run(pc.socket, f"--events={events}", stdin=script)
    assert result.returncode == 0, result.stderr
    by_name = {e["event"]: e for e in read_events(events)}
    assert by_name["DEVICE_TRAY_MOVED"]["data"]["tray-open"] is True
    assert by_name["DEVICE_TRAY_MOVED"]["data"]["device"] == TRAY_DEVICE
    done = by_name["BLOCK_JOB_COMPLETED"]["data"]
    assert (done["device"], done["type"], done["offset"], done["len"]) == (
        "job0",
        "backup",
        MIB,
        MIB,
    )
    assert "JOB_STATUS_CHANGE" in by_name  # unfiltered: the job's status changes too
    assert "RESUME" in by_name
    assert "offset" in by_name["RTC_CHANGE"]["data"]


def test_filter_drops_job_status_changes(pc: Qemu, tmp_path: Path) -> None:
    events, transcript = tmp_path / "events.jsonl", tmp_path / "transcript.jsonl"
    script = f"""
        blockdev-add driver=null-co node-name=src1 size={MIB} read-zeroes=true
        blockdev-add driver=null-co node-name=tgt1 size={MIB} read-zeroes=true
        blockdev-backup job-id=job1 device=src1 target=tgt1 sync=full
        wait BLOCK_JOB_COMPLETED device=job1 timeout=10
    """
    args = (f"--events={events}", "--events-filter", "!JOB_STATUS_CHANGE")
    result = run(pc.socket, *args, f"--transcript={transcript}", stdin=script)
    assert result.returncode == 0, result.stderr
    assert names(events) == ["BLOCK_JOB_COMPLETED"]
    assert "JOB_STATUS_CHANGE" in transcript_events(transcript)  # received, not written


def test_block_io_error_and_the_stop_it_causes(io_error_guest: Qemu, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    script = "cont\nwait STOP timeout=10\nquery-status\n"
    result = run(io_error_guest.socket, f"--events={events}", stdin=script)
    assert result.returncode == 0, result.stderr
    got = read_events(events)
    order = [e["event"] for e in got]
    assert "BLOCK_IO_ERROR" in order and "STOP" in order
    assert order.index("BLOCK_IO_ERROR") < order.index("STOP")
    error = got[order.index("BLOCK_IO_ERROR")]["data"]
    assert (error["device"], error["operation"], error["action"]) == ("drive0", "write", "stop")
    assert json.loads(result.stdout.splitlines()[-1])["status"] == "io-error"


def test_watchdog_and_its_pause(watchdog_guest: Qemu, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    script = (
        "watchdog-set-action action=pause\ncont\nwait WATCHDOG timeout=10\nwait STOP timeout=10\n"
    )
    result = run(watchdog_guest.socket, f"--events={events}", stdin=script)
    assert result.returncode == 0, result.stderr
    order = names(events)
    assert order.index("WATCHDOG") < order.index("STOP")
    assert read_events(events)[order.index("WATCHDOG")]["data"] == {"action": "pause"}


# --------------------------------------------------------------------- peers


def test_spice_session_events(qemu: Qemu, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    assert qemu.spice_port is not None
    with attached(qemu.socket, f"--events={events}") as proc:
        channels = spice_session("127.0.0.1", qemu.spice_port, (CHANNEL_MAIN, CHANNEL_INPUTS))
        for channel in channels:
            channel.close()
        finish(proc, "wait SPICE_DISCONNECTED timeout=10\nwait SPICE_DISCONNECTED timeout=10\n")
    got = read_events(events)
    counts = {n: sum(e["event"] == n for e in got) for n in {e["event"] for e in got}}
    assert counts == {"SPICE_CONNECTED": 2, "SPICE_INITIALIZED": 2, "SPICE_DISCONNECTED": 2}
    initialized = [e["data"]["client"] for e in got if e["event"] == "SPICE_INITIALIZED"]
    assert sorted(c["channel-type"] for c in initialized) == [CHANNEL_MAIN, CHANNEL_INPUTS]
    session_id = channels[0].session_id
    assert {c["connection-id"] % 2**32 for c in initialized} == {session_id}


def test_spice_filter_keeps_only_the_main_channel_initialized(qemu: Qemu, tmp_path: Path) -> None:
    events, transcript = tmp_path / "events.jsonl", tmp_path / "transcript.jsonl"
    assert qemu.spice_port is not None
    args = (f"--events={events}", "--events-filter", "SPICE_* channel-type=1")
    with attached(qemu.socket, *args, f"--transcript={transcript}") as proc:
        for channel in spice_session("127.0.0.1", qemu.spice_port):
            channel.close()
        finish(proc, "wait SPICE_DISCONNECTED timeout=10\nwait SPICE_DISCONNECTED timeout=10\n")
    [only] = read_events(events)
    assert only["event"] == "SPICE_INITIALIZED"
    assert only["data"]["client"]["channel-type"] == CHANNEL_MAIN
    assert transcript_events(transcript).count("SPICE_DISCONNECTED") == 2


def test_vnc_events(qemu: Qemu, tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    assert qemu.vnc_port is not None
    with attached(qemu.socket, f"--events={events}") as proc:
        with closing(vnc_connect("127.0.0.1", qemu.vnc_port)):
            pass
        finish(proc, "wait VNC_DISCONNECTED timeout=10\n")
    assert names(events) == ["VNC_CONNECTED", "VNC_INITIALIZED", "VNC_DISCONNECTED"]
    assert read_events(events)[1]["data"]["client"]["host"] == "127.0.0.1"


# ------------------------------------------------------------------ --wait-event


def test_wait_event_with_filter_predicate(qemu: Qemu) -> None:
    assert qemu.spice_port is not None
    args = ("--wait-event", "SPICE_INITIALIZED", "--events-filter", "channel-type=3")
    with attached(qemu.socket, *args, "--timeout", str(WAIT)) as proc:
        channels = spice_session("127.0.0.1", qemu.spice_port)
        try:
            out, _ = finish(proc)
        finally:
            for channel in channels:
                channel.close()
    event = json.loads(out.splitlines()[-1])
    assert event["event"] == "SPICE_INITIALIZED"
    assert event["data"]["client"]["channel-type"] == CHANNEL_INPUTS


def test_wait_event_name_is_not_widened_by_filter_globs(qemu: Qemu) -> None:
    """--events-filter 'VNC_*' narrows what --wait-event accepts; it must not add names."""
    assert qemu.vnc_port is not None
    args = ("--wait-event", "VNC_INITIALIZED", "--events-filter", "VNC_*")
    with (
        attached(qemu.socket, *args, "--timeout", str(WAIT)) as proc,
        closing(vnc_connect("127.0.0.1", qemu.vnc_port)),
    ):
        out, _ = finish(proc)
    assert json.loads(out.splitlines()[-1])["event"] == "VNC_INITIALIZED"


def test_wait_event_times_out_with_exit_4(qemu: Qemu) -> None:
    result = run(
        qemu.socket, "--wait-event", "SUSPEND", "--timeout", "0.2", "-c", "query-name"
    )  # a real event that a machine without a guest never sends
    assert result.returncode == 4
    assert "SUSPEND" in result.stderr
