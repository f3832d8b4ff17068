"""Real QEMU events through the real EventLog: summaries, filters and follow-ups.

Every event here is made by a real QEMU (recipes in ``recipes.py``), read by an
independent monitor and filed in ``qmpsh.events.EventLog`` as the shell would.
The assertions are built from the real data (ports, session ids, offsets), so a
summary that drops or garbles a piece fails.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from peers import (
    CHANNEL_INPUTS,
    CHANNEL_MAIN,
    make_spice_x509_dir,
    spice_link,
    spice_session,
    vnc_connect,
)
from qemu import Qemu, RawMonitor, free_port
from recipes import (
    GUEST_IDE_READ,
    GUEST_IDE_WRITE,
    GUEST_RTC,
    GUEST_WATCHDOG,
    TRAY_DEVICE,
    TRAY_DRIVE,
    EventPump,
    add_null_nodes,
    add_qcow2_nodes,
    block_io_error_drive,
    start_tiny_guest,
)
from support import wait_for

from qmpsh.event_summary import human_offset
from qmpsh.events import EventFilter, format_spice_sessions, severity, spice_sessions

HOST = "127.0.0.1"
MIB = 1024 * 1024


def passes(spec: str, *events: dict[str, object]) -> list[bool]:
    flt = EventFilter.parse(spec)
    return [flt.matches(e) for e in events]


# ------------------------------------------------------------------ run state


def test_stop_resume_reset_then_quit_shutdown() -> None:
    with Qemu() as q, RawMonitor(q.socket) as mon:
        pump = EventPump(mon)
        mon.execute("stop")
        stop = pump.until("STOP")
        mon.execute("cont")
        resume = pump.until("RESUME")
        mon.execute("system_reset")
        reset = pump.until("RESET")
        mon.execute("quit")
        shutdown = pump.until("SHUTDOWN")
        assert q.proc.wait(timeout=10) == 0
    assert stop.summary().endswith(" STOP") and stop.caused_by is None
    assert resume.summary().endswith(" RESUME")
    assert reset.summary().endswith("RESET host: host-qmp-system-reset")
    assert shutdown.summary().endswith("SHUTDOWN host: host-qmp-quit")
    assert [severity(e.event) for e in (stop, reset, resume)] == ["warning", "notice", "info"]
    assert pump.log.stats() == {"STOP": 1, "RESUME": 1, "RESET": 1, "SHUTDOWN": 1}


def test_powerdown_without_acpi_guest_gives_only_powerdown() -> None:
    with Qemu(["-no-shutdown"]) as q, RawMonitor(q.socket) as mon:
        pump = EventPump(mon)
        mon.execute("system_powerdown")
        powerdown = pump.until("POWERDOWN")
        assert mon.execute("query-status")["status"] == "running"
    assert powerdown.summary().endswith(" POWERDOWN")
    assert severity(powerdown.event) == "notice"


def test_tray_moves_open_closed_open() -> None:
    with (
        Qemu(TRAY_DRIVE, machine=("-M", "pc", "-S", "-display", "none", "-nodefaults")) as q,
        RawMonitor(q.socket) as mon,
    ):
        pump = EventPump(mon)
        mon.execute("blockdev-open-tray", device=TRAY_DEVICE)
        opened = pump.until("DEVICE_TRAY_MOVED")
        mon.execute("blockdev-close-tray", device=TRAY_DEVICE)
        closed = pump.until("DEVICE_TRAY_MOVED")
        mon.execute("eject", device=TRAY_DEVICE)
        ejected = pump.until("DEVICE_TRAY_MOVED")
    assert opened.summary().endswith(f"{TRAY_DEVICE} tray open")
    assert closed.summary().endswith(f"{TRAY_DEVICE} tray closed")
    assert ejected.summary().endswith(f"{TRAY_DEVICE} tray open")
    assert passes("tray-open=true", opened.event, closed.event) == [True, False]


# ----------------------------------------------------------------- block jobs


def test_block_jobs_completed_cancelled_ready(tmp_path: Path) -> None:
    with Qemu() as q, RawMonitor(q.socket) as mon:
        pump = EventPump(mon)
        add_null_nodes(mon, MIB)
        mon.execute(
            "blockdev-backup", **{"job-id": "job0", "device": "src", "target": "tgt"}, sync="full"
        )
        completed = pump.until("BLOCK_JOB_COMPLETED")

        add_null_nodes(mon, 1024 * MIB, names=("big", "bigtgt"))
        args = {"job-id": "job1", "device": "big", "target": "bigtgt", "sync": "full", "speed": 1}
        mon.execute("blockdev-backup", **args)
        wait_for_progress(mon, "job1")
        mon.execute("block-job-cancel", device="job1")
        cancelled = pump.until("BLOCK_JOB_CANCELLED")

        add_qcow2_nodes(mon, tmp_path, names=("q1", "q2"))
        mirror = {"job-id": "m0", "device": "q1", "target": "q2", "sync": "full"}
        mon.execute("blockdev-mirror", **mirror)
        ready = pump.until("BLOCK_JOB_READY")
        mon.execute("block-job-complete", device="m0")
        mirrored = pump.until("BLOCK_JOB_COMPLETED")

    assert completed.summary().endswith("BLOCK_JOB_COMPLETED backup job0 1.0 MiB/1.0 MiB (100%)")
    offset = cancelled.event["data"]["offset"]
    pct = offset * 100 / (1024 * MIB)
    assert 0 < pct < 100
    assert "backup job1" in cancelled.summary()
    assert "/1.0 GiB (" in cancelled.summary() and "speed=1 B/s" in cancelled.summary()
    assert "100%" not in cancelled.summary()
    assert "mirror m0 4.0 MiB/4.0 MiB (100%)" in ready.summary()
    assert "mirror m0" in mirrored.summary()

    statuses = pump.named("JOB_STATUS_CHANGE")
    assert len(statuses) >= 8 and any(s.summary().endswith("job0 → concluded") for s in statuses)
    quiet = pump.log.recent(flt=EventFilter.parse("!JOB_STATUS_CHANGE"))
    assert [e.name for e in quiet] == [
        "BLOCK_JOB_COMPLETED",
        "BLOCK_JOB_CANCELLED",
        "BLOCK_JOB_READY",
        "BLOCK_JOB_COMPLETED",
    ]
    only_job0 = pump.log.recent(flt=EventFilter.parse("BLOCK_JOB_* device=job0"))
    assert [e.seq for e in only_job0] == [completed.seq]
    assert pump.log.stats()["JOB_STATUS_CHANGE"] == len(statuses)


def wait_for_progress(mon: RawMonitor, job: str) -> None:
    """The first chunk is not throttled; wait for it so the cancel shows real progress."""

    def progressed() -> bool:
        jobs = {j["device"]: j for j in mon.execute("query-block-jobs")}
        return bool(jobs[job]["offset"] > 0)

    wait_for(progressed, f"{job} to make progress")


# ------------------------------------------------------------ BLOCK_IO_ERROR


@pytest.mark.parametrize(
    ("guest", "event", "action", "operation"),
    [
        (GUEST_IDE_READ, "read_aio", "report", "read"),
        (GUEST_IDE_WRITE, "write_aio", "ignore", "write"),
    ],
    ids=["read-report", "write-ignore"],
)
def test_block_io_error_without_stop(
    tmp_path: Path, guest: bytes, event: str, action: str, operation: str
) -> None:
    with (
        start_tiny_guest(tmp_path, guest, block_io_error_drive(event, action)) as q,
        RawMonitor(q.socket) as mon,
    ):
        pump = EventPump(mon)
        mon.execute("cont")
        err = pump.until("BLOCK_IO_ERROR")
        assert mon.execute("query-status")["status"] == "running"
    assert err.event["data"]["operation"] == operation
    line = err.summary()
    assert f"BLOCK_IO_ERROR drive0 {operation} error, action={action}: Input/output error" in line
    assert "no space" not in line
    assert severity(err.event) == ("warning" if action == "ignore" else "error")
    assert passes(f"action={action}", err.event) == [True]
    assert passes("action=stop", err.event) == [False]


def test_block_io_error_stop_marks_the_stop_it_causes(tmp_path: Path) -> None:
    drive = block_io_error_drive("write_aio", "stop")
    with start_tiny_guest(tmp_path, GUEST_IDE_WRITE, drive) as q, RawMonitor(q.socket) as mon:
        pump = EventPump(mon)
        mon.execute("cont")
        err = pump.until("BLOCK_IO_ERROR")
        stop = pump.until("STOP")
        assert mon.execute("query-status")["status"] == "io-error"
    assert err.event["data"]["nospace"] is False  # iostatus is on with werror=stop
    assert stop.caused_by == "BLOCK_IO_ERROR drive0" and stop.cause_seq == err.seq
    assert stop.summary().endswith("STOP ← BLOCK_IO_ERROR drive0")
    assert passes("BLOCK_IO_ERROR operation=write action=stop", err.event, stop.event) == [
        True,
        False,
    ]


# ------------------------------------------------------------ guest-made events


def test_rtc_change_offset_is_human_readable(tmp_path: Path) -> None:
    with start_tiny_guest(tmp_path, GUEST_RTC) as q, RawMonitor(q.socket) as mon:
        pump = EventPump(mon)
        mon.execute("cont")
        rtc = pump.until("RTC_CHANGE")
    offset = rtc.event["data"]["offset"]
    assert f"RTC_CHANGE offset {human_offset(offset)}" in rtc.summary()
    assert rtc.event["data"]["qom-path"] in rtc.summary()
    assert passes(f"RTC_* offset={offset}", rtc.event) == [True]


WATCHDOG_FOLLOW_UPS = {"reset": "RESET", "pause": "STOP", "shutdown": "POWERDOWN"}


@pytest.mark.parametrize("action", ["reset", "pause", "shutdown"])
def test_watchdog_marks_its_follow_up(tmp_path: Path, action: str) -> None:
    with (
        start_tiny_guest(tmp_path, GUEST_WATCHDOG, ["-device", "ib700"]) as q,
        RawMonitor(q.socket) as mon,
    ):
        pump = EventPump(mon)
        mon.execute("watchdog-set-action", action=action)
        mon.execute("cont")
        dog = pump.until("WATCHDOG")
        effect = pump.until(WATCHDOG_FOLLOW_UPS[action])
    assert f"WATCHDOG action={action} → " in dog.summary()
    assert WATCHDOG_FOLLOW_UPS[action] in dog.summary().split("→")[1]
    assert severity(dog.event) == "error"
    assert effect.caused_by == f"WATCHDOG {action}"
    assert effect.summary().endswith(f"← WATCHDOG {action}")


@pytest.mark.parametrize("action", ["debug", "none"])
def test_watchdog_without_visible_effect(tmp_path: Path, action: str) -> None:
    with (
        start_tiny_guest(tmp_path, GUEST_WATCHDOG, ["-device", "ib700"]) as q,
        RawMonitor(q.socket) as mon,
    ):
        pump = EventPump(mon)
        mon.execute("watchdog-set-action", action=action)
        mon.execute("cont")
        dog = pump.until("WATCHDOG")
        assert mon.execute("query-status")["status"] == "running"
    assert f"action={action} → nothing visible" in dog.summary()
    assert severity(dog.event) == "warning"


def test_watchdog_poweroff_exits_without_shutdown(tmp_path: Path) -> None:
    with (
        start_tiny_guest(tmp_path, GUEST_WATCHDOG, ["-device", "ib700"]) as q,
        RawMonitor(q.socket) as mon,
    ):
        pump = EventPump(mon)
        mon.execute("watchdog-set-action", action="poweroff")
        mon.execute("cont")
        dog = pump.until("WATCHDOG")
        after = pump.until_eof()
        assert q.proc.wait(timeout=10) == 0
    assert "action=poweroff → QEMU exits (no SHUTDOWN)" in dog.summary()
    assert "SHUTDOWN" not in [e.name for e in after]


# -------------------------------------------------------------------- SPICE/VNC


def test_spice_session_events(qemu: Qemu) -> None:
    assert qemu.spice_port is not None
    with RawMonitor(qemu.socket) as mon:
        pump = EventPump(mon)
        channels = spice_session(HOST, qemu.spice_port, (CHANNEL_MAIN, CHANNEL_INPUTS))
        main, inputs = channels
        main_port, inputs_port = main.local_port, inputs.local_port
        for _ in channels:
            pump.until("SPICE_INITIALIZED")
        up = spice_sessions(e.event for e in pump.log.recent())
        for ch in channels:
            ch.close()
        for _ in channels:
            pump.until("SPICE_DISCONNECTED")
    assert main.session_id is not None
    server = f"{HOST}:{qemu.spice_port}"
    inits = pump.named("SPICE_INITIALIZED")
    main_line = inits[0].summary()
    assert f"main:0 {HOST}:{main_port} → {server} ipv4" in main_line
    assert f"session={main.session_id}" in main_line and "auth=none" in main_line
    assert "🔒" not in main_line
    assert f"inputs:0 {HOST}:{inputs_port} → {server}" in inits[1].summary()
    connected = pump.named("SPICE_CONNECTED")[0].summary()
    assert f"SPICE_CONNECTED {HOST}:{main_port} → {server} ipv4" in connected
    disconnected = {
        e.summary().split(" → ")[0].split()[-1] for e in pump.named("SPICE_DISCONNECTED")
    }
    assert disconnected == {f"{HOST}:{main_port}", f"{HOST}:{inputs_port}"}

    assert passes("channel-type=1", *(e.event for e in inits)) == [True, False]
    assert passes("SPICE_* client.channel-type=3", *(e.event for e in inits)) == [False, True]
    assert passes(f"client.port={main_port}", inits[0].event) == [True]

    assert [(s.session_id, s.up, len(s.channels)) for s in up] == [(main.session_id, 2, 2)]
    down = spice_sessions(e.event for e in pump.log.recent())
    assert down[0].up == 0
    lines = format_spice_sessions(down)
    assert lines[0] == f"session {main.session_id}: 0/2 channels up"
    assert "main:0" in lines[1] and "down" in lines[1]


def test_spice_tls_channel_has_the_lock_mark(tmp_path: Path) -> None:
    x509 = make_spice_x509_dir(tmp_path / "x509")
    port = free_port()
    spice = f"addr={HOST},tls-port={port},disable-ticketing=on,x509-dir={x509}"
    with Qemu(["-spice", spice]) as q, RawMonitor(q.socket) as mon:
        pump = EventPump(mon)
        with spice_link(HOST, port, CHANNEL_MAIN, tls=True) as main:
            main_port = main.local_port
            init = pump.until("SPICE_INITIALIZED")
        pump.until("SPICE_DISCONNECTED")
    assert main.session_id is not None
    assert main.session_id == init.event["data"]["client"]["connection-id"] % 2**32
    line = init.summary()
    assert f"main:0 {HOST}:{main_port} → {HOST}:{port}" in line
    assert f"session={main.session_id}" in line and "🔒" in line
    assert passes("client.tls=true", init.event) == [True]


def test_vnc_events(qemu: Qemu) -> None:
    assert qemu.vnc_port is not None
    with RawMonitor(qemu.socket) as mon:
        pump = EventPump(mon)
        sock = vnc_connect(HOST, qemu.vnc_port)
        local = sock.getsockname()[1]
        pump.until("VNC_INITIALIZED")
        sock.close()
        pump.until("VNC_DISCONNECTED")
    names = [e.name for e in pump.seen]
    assert names == ["VNC_CONNECTED", "VNC_INITIALIZED", "VNC_DISCONNECTED"]
    for logged in pump.seen:
        line = logged.summary()
        assert f"{logged.name} {HOST}:{local} → {HOST}:{qemu.vnc_port} auth=none" in line
    assert passes("VNC_* !VNC_CONNECTED", *(e.event for e in pump.seen)) == [False, True, True]
    assert severity(pump.seen[-1].event) == "notice"
