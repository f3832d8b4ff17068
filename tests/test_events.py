"""Pure tests of qmpsh.events: variants a real QEMU rarely or never shows on demand.

Real events are covered in test_event_recipes.py; here the inputs are synthesized to
reach the corners (negative SPICE ids, ``device: ""``, day-long RTC offsets, bad
filter specs) and to drive the log's threading deterministically.
"""

from __future__ import annotations

import io
import json
import os
import stat
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from qmpsh.errors import InputError
from qmpsh.event_summary import event_time, human_offset, human_size, progress
from qmpsh.events import (
    EventFilter,
    EventLog,
    JsonLinesWriter,
    format_spice_sessions,
    severity,
    spice_sessions,
    summarize,
)

STAMP = {"seconds": 1_700_000_000, "microseconds": 123_456}


def ev(name: str, data: dict[str, Any] | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"timestamp": STAMP, "event": name}
    if data is not None:
        event["data"] = data
    return event


def spice(
    name: str, port: int, connection_id: int = 0, kind: int = 1, **client: Any
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": "5930", "family": "ipv4", "auth": "none"},
        "client": {"host": "127.0.0.1", "port": str(port), "family": "ipv4", **client},
    }
    if name == "SPICE_INITIALIZED":
        data["client"].update(
            {"channel-type": kind, "channel-id": 0, "connection-id": connection_id}
        )
    return ev(name, data)


class FakeClock:
    """The log's clock, stepped by hand, so the follow-up window is tested without sleeping."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# ------------------------------------------------------------------- summaries


def test_time_is_local_with_milliseconds() -> None:
    expected = time.strftime("%H:%M:%S", time.localtime(STAMP["seconds"])) + ".123"
    assert event_time(ev("STOP")) == expected
    assert summarize(ev("STOP")) == f"{expected} STOP"


def test_negative_connection_id_is_shown_unsigned() -> None:
    line = summarize(spice("SPICE_INITIALIZED", 40000, connection_id=-1970305832, tls=True))
    assert "session=2324661464" in line and "-1970305832" not in line
    assert "main:0 127.0.0.1:40000 → 127.0.0.1:5930 ipv4" in line
    assert "🔒" in line and "auth=none" in line


@pytest.mark.parametrize(
    ("kind", "name"),
    [(2, "display"), (4, "cursor"), (9, "usbredir"), (11, "webdav"), (42, "type42")],
)
def test_spice_channel_names(kind: int, name: str) -> None:
    assert f" {name}:0 " in summarize(spice("SPICE_INITIALIZED", 1, kind=kind))


def test_ipv6_endpoints_are_bracketed() -> None:
    data = {
        "server": {"host": "::1", "service": "5901", "auth": "vnc"},
        "client": {
            "host": "::1",
            "service": "4242",
            "x509_dname": "CN=alice",
            "sasl_username": "al",
        },
    }
    line = summarize(ev("VNC_INITIALIZED", data))
    assert "[::1]:4242 → [::1]:5901 auth=vnc" in line
    assert "x509_dname=CN=a" in line and "sasl_username=al" in line


def test_block_io_error_without_device_names_the_node_and_nospace() -> None:
    data = {"device": "", "node-name": "disk0", "operation": "write", "action": "stop"}
    line = summarize(ev("BLOCK_IO_ERROR", {**data, "reason": "No space left", "nospace": True}))
    assert line.endswith(
        "BLOCK_IO_ERROR disk0 write error, action=stop: No space left (no space left)"
    )
    assert severity(ev("BLOCK_IO_ERROR", data)) == "error"
    assert severity(ev("BLOCK_IO_ERROR", {**data, "action": "ignore"})) == "warning"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "+0s"),
        (-10, "-10s"),
        (59, "+59s"),
        (125, "+2m 05s"),
        (3723, "+1h 02m 03s"),
        (-3600, "-1h 00m 00s"),
        (90061, "+1d 01h 01m 01s"),
    ],
)
def test_rtc_offsets(seconds: int, text: str) -> None:
    assert human_offset(seconds) == text
    assert f"RTC_CHANGE offset {text}" in summarize(ev("RTC_CHANGE", {"offset": seconds}))


def test_sizes_and_progress() -> None:
    assert [human_size(n) for n in (0, 1023, 1024, 1536 * 1024, 3 << 30)] == [
        "0 B",
        "1023 B",
        "1.0 KiB",
        "1.5 MiB",
        "3.0 GiB",
    ]
    assert progress(1 << 20, 1 << 20) == "1.0 MiB/1.0 MiB (100%)"
    assert progress((1 << 20) - 1, 1 << 20).endswith("(99%)")  # never 100% before the end
    assert progress(1 << 20, 1 << 30).endswith("(0.1%)")
    assert progress(0, 0) == "0 B/0 B"


def test_block_job_error_and_job_status() -> None:
    data = {"device": "job0", "operation": "read", "action": "report"}
    assert summarize(ev("BLOCK_JOB_ERROR", data)).endswith("job job0 operation=read action=report")
    assert severity(ev("BLOCK_JOB_ERROR", data)) == "error"
    done = {"type": "stream", "device": "j", "len": 10, "offset": 5, "speed": 0, "error": "EIO"}
    assert "stream j 10 B/10 B" not in summarize(ev("BLOCK_JOB_COMPLETED", done))
    assert summarize(ev("BLOCK_JOB_COMPLETED", done)).endswith("5 B/10 B (50%) error: EIO")
    assert summarize(ev("JOB_STATUS_CHANGE", {"id": "j", "status": "null"})).endswith("j → null")


def test_watchdog_and_run_state_lines() -> None:
    assert "→ QEMU exits (no SHUTDOWN)" in summarize(ev("WATCHDOG", {"action": "poweroff"}))
    assert summarize(ev("WATCHDOG", {"action": "new"})).endswith("action=new")
    assert summarize(ev("SHUTDOWN", {"guest": True, "reason": "guest-shutdown"})).endswith(
        "SHUTDOWN guest: guest-shutdown"
    )
    assert severity(ev("RESET", {"guest": True})) == "warning"
    assert severity(ev("RESUME")) == "info"


def test_tray_falls_back_to_id() -> None:
    line = summarize(ev("DEVICE_TRAY_MOVED", {"device": "", "id": "cd0", "tray-open": False}))
    assert line.endswith("cd0 tray closed")


def test_generic_summary_flattens_and_truncates() -> None:
    data = {"a": {"b": [1, {"c": None}]}, "s": "x y", "e": "", "t": True}
    line = summarize(ev("NEW_EVENT", data))
    assert line.endswith('NEW_EVENT a.b.0=1 a.b.1.c=null s="x y" e="" t=true')
    long = summarize(ev("NEW_EVENT", {"k": "v" * 500}), width=80)
    assert len(long) == 80 and long.endswith("…")


def test_unexpected_shape_falls_back_to_generic() -> None:
    assert summarize(ev("RTC_CHANGE", {"offset": "soon"})).endswith("RTC_CHANGE offset=soon")
    assert summarize({"event": "SPICE_CONNECTED", "data": {"client": 3}}).endswith("client=3")


def test_caused_by_is_named() -> None:
    assert summarize(ev("STOP"), caused_by="BLOCK_IO_ERROR drive0").endswith(
        "STOP ← BLOCK_IO_ERROR drive0"
    )


# --------------------------------------------------------------------- filters


def test_filter_globs_negation_and_predicates() -> None:
    init_main = spice("SPICE_INITIALIZED", 1, kind=1)
    init_inputs = spice("SPICE_INITIALIZED", 2, kind=3)
    job = ev("JOB_STATUS_CHANGE", {"id": "j", "status": "running"})
    stop = ev("STOP")
    cases = {
        "": [True, True, True, True],
        "SPICE_*": [True, True, False, False],
        "spice_*, stop": [True, True, False, True],
        "!JOB_STATUS_CHANGE": [True, True, False, True],
        "channel-type=1": [True, False, False, False],
        'client.channel-type="3"': [False, True, False, False],
        "client.port=[12]": [True, True, False, False],
        "channel-type!=1": [False, True, True, True],
        "status=run* JOB_*": [False, False, True, False],
        "client.nope=1": [False, False, False, False],
    }
    for spec, expected in cases.items():
        flt = EventFilter.parse(spec)
        assert [flt.matches(e) for e in (init_main, init_inputs, job, stop)] == expected, spec


def test_filter_compares_values_as_text() -> None:
    assert EventFilter.parse("offset=-10").matches(ev("RTC_CHANGE", {"offset": -10}))
    assert EventFilter.parse("tray-open=false").matches(ev("X", {"tray-open": False}))
    assert EventFilter.parse("device=").matches(ev("X", {"device": ""}))
    assert EventFilter.parse("reason='No space'").matches(ev("X", {"reason": "No space"}))
    qom = ev("RTC_CHANGE", {"qom-path": "/machine/unattached/device[9]"})
    assert EventFilter.parse("qom-path=/machine/unattached/device[9]").matches(qom)


def test_filter_str_round_trips() -> None:
    flt = EventFilter.parse('spice_*,!JOB_* client.host=127.0.0.1 reason="a b" x!=1')
    assert str(flt) == 'SPICE_* !JOB_* client.host=127.0.0.1 reason="a b" x!=1'
    assert EventFilter.parse(str(flt)) == flt
    assert not EventFilter.parse("  ") and EventFilter.parse("STOP")


@pytest.mark.parametrize(
    ("spec", "column", "message"),
    [
        ("STOP !", 6, "'!' needs"),
        ("STOP =1", 6, "field name"),
        ("a..b=1", 1, "field path"),
        ("STOP/X", 1, "event name or glob"),
        ("SPICE_[", 1, "event name or glob"),
        ('x="open', 3, "unterminated quote"),
        ("x=a'b", 4, "unterminated quote"),
        ('x=a"b"', 1, "misplaced quote"),
    ],
)
def test_bad_filter_specs_are_input_errors(spec: str, column: int, message: str) -> None:
    with pytest.raises(InputError) as err:
        EventFilter.parse(spec)
    assert message in err.value.message and err.value.column == column


# -------------------------------------------------------------------------- log


def test_window_is_bounded_but_counters_count_everything() -> None:
    log = EventLog(capacity=3)
    for i in range(5):
        log.append(ev("STOP" if i % 2 else "RESUME"))
    assert [e.seq for e in log.recent()] == [3, 4, 5]
    assert log.stats() == {"RESUME": 3, "STOP": 2}
    fourth = log.get(4)
    assert log.get(2) is None and fourth is not None and fourth.name == "STOP"
    assert [e.seq for e in log.recent(2)] == [4, 5]
    assert [e.seq for e in log.recent(flt=EventFilter.parse("STOP"))] == [4]
    assert log.recent(0) == []
    log.clear()
    assert log.recent() == [] and len(log) == 0 and log.get(5) is None
    assert log.stats() == {"RESUME": 3, "STOP": 2}
    assert log.append(ev("STOP")).seq == 6  # numbers are never reused


def test_block_io_error_stop_causes_the_next_stop_only() -> None:
    clock = FakeClock()
    log = EventLog(clock=clock)
    err = log.append(ev("BLOCK_IO_ERROR", {"device": "", "node-name": "n0", "action": "stop"}))
    log.append(ev("RESUME"))
    first = log.append(ev("STOP"))
    second = log.append(ev("STOP"))
    assert first.caused_by == "BLOCK_IO_ERROR n0" and first.cause_seq == err.seq
    assert second.caused_by is None
    assert "← BLOCK_IO_ERROR n0" in first.summary()


def test_follow_up_window_expires() -> None:
    clock = FakeClock()
    log = EventLog(clock=clock)
    log.append(ev("BLOCK_IO_ERROR", {"device": "d", "action": "stop"}))
    clock.now += 1.5
    assert log.append(ev("STOP")).caused_by is None
    log.append(ev("BLOCK_IO_ERROR", {"device": "d", "action": "report"}))
    assert log.append(ev("STOP")).caused_by is None


@pytest.mark.parametrize(
    ("action", "effect"),
    [("reset", "RESET"), ("pause", "STOP"), ("shutdown", "POWERDOWN"), ("shutdown", "SHUTDOWN")],
)
def test_watchdog_follow_ups(action: str, effect: str) -> None:
    log = EventLog(clock=FakeClock())
    log.append(ev("WATCHDOG", {"action": action}))
    assert log.append(ev(effect)).caused_by == f"WATCHDOG {action}"


def test_watchdog_shutdown_links_one_effect_and_quiet_actions_none() -> None:
    log = EventLog(clock=FakeClock())
    log.append(ev("WATCHDOG", {"action": "shutdown"}))
    assert log.append(ev("POWERDOWN")).caused_by == "WATCHDOG shutdown"
    assert log.append(ev("SHUTDOWN")).caused_by is None
    log.append(ev("WATCHDOG", {"action": "none"}))
    assert log.append(ev("RESET")).caused_by is None


def test_listeners_see_each_event() -> None:
    log = EventLog()
    seen: list[int] = []
    log.add_listener(lambda logged: seen.append(logged.seq))
    log.append(ev("STOP"))
    log.append(ev("RESUME"))
    assert seen == [1, 2]


def test_wait_for_gets_an_event_appended_by_another_thread() -> None:
    log = EventLog()
    log.append(ev("STOP"))
    flt = EventFilter.parse("RESUME")
    started = threading.Event()

    def reader_thread() -> None:
        started.wait()
        for name in ("STOP", "RESET", "RESUME"):
            log.append(ev(name))

    worker = threading.Thread(target=reader_thread)
    worker.start()
    started.set()
    got = log.wait_for(flt, timeout=10)
    worker.join()
    assert got is not None and got.name == "RESUME" and got.seq == 4


def test_wait_for_times_out_with_none() -> None:
    log = EventLog()
    log.append(ev("RESUME"))  # already there: without after_seq only new events count
    assert log.wait_for(EventFilter.parse("RESUME"), timeout=0.05) is None


def test_wait_for_after_seq_sees_events_that_came_in_between() -> None:
    log = EventLog()
    mark = log.last_seq
    log.append(ev("STOP"))
    log.append(ev("RESUME"))
    got = log.wait_for(EventFilter.parse("RESUME"), timeout=0, after_seq=mark)
    assert got is not None and got.seq == 2
    assert log.wait_for(EventFilter.parse("RESUME"), timeout=0, after_seq=2) is None


# ----------------------------------------------------------------------- writer


def test_json_lines_writer_creates_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    with JsonLinesWriter(path) as writer:
        writer.write(ev("STOP"))
        assert json.loads(path.read_text()) == ev("STOP")  # flushed before close
        writer.write(ev("RTC_CHANGE", {"offset": -1, "qom-path": "ü"}))
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 and " " not in lines[0] and "ü" in lines[1]
    with JsonLinesWriter(str(path)) as again:  # appends, never truncates
        again.write(ev("RESUME"))
    assert len(path.read_text().splitlines()) == 3
    with pytest.raises(ValueError):
        writer.write(ev("STOP"))


def test_json_lines_writer_leaves_a_given_stream_open() -> None:
    stream = io.StringIO()
    writer = JsonLinesWriter(stream)
    writer.write({"execute": "stop"})
    writer.close()
    assert stream.getvalue() == '{"execute":"stop"}\n' and not stream.closed


# --------------------------------------------------------------- SPICE sessions


def test_spice_sessions_group_channels_and_track_state() -> None:
    events = [
        spice("SPICE_CONNECTED", 1000),
        spice("SPICE_INITIALIZED", 1000, connection_id=-5, kind=1),
        spice("SPICE_INITIALIZED", 1001, connection_id=-5, kind=3, tls=True),
        spice("SPICE_INITIALIZED", 2000, connection_id=7, kind=1),
        spice("SPICE_DISCONNECTED", 1001),
    ]
    sessions = spice_sessions(events)
    assert [(s.session_id, s.up, len(s.channels)) for s in sessions] == [
        (2**32 - 5, 1, 2),
        (7, 1, 1),
    ]
    lines = format_spice_sessions(sessions)
    assert lines[0] == f"session {2**32 - 5}: 1/2 channels up"
    assert lines[1].split() == ["main:0", "up", "127.0.0.1:1000"]
    assert lines[2].split() == ["inputs:0", "down", "127.0.0.1:1001", "🔒", "tls"]
    assert format_spice_sessions([]) == ["no SPICE sessions seen"]


def test_listen_hands_over_what_is_logged_then_what_comes() -> None:
    log = EventLog(capacity=10)
    log.append({"event": "STOP"})
    log.append({"event": "RESUME"})
    seen: list[str] = []
    log.listen(lambda logged: seen.append(logged.name))
    log.append({"event": "SHUTDOWN"})
    assert seen == ["STOP", "RESUME", "SHUTDOWN"]
