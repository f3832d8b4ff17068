"""One malformed event must not wreck anything that reads events.

Each event below is legal JSON that QEMU never sends but a peer may: a timestamp no
calendar holds, ``1e400`` where an int goes, a string SPICE session id, ``data`` that
is a string, a list, null or a number, a name that is not a string, strings holding
escapes and a lone surrogate.  Every consumer must take every one of them: the
summary line, severity, the log with its follow-up linking and counters, every kind
of filter, the pane, the line printed above the prompt, ``events``/``events show``/
``events stats``/``spice sessions``/``info spice`` and ``wait``/``--wait-event``.

In-process consumers get the events straight into the log (as the reader thread
would file them); the end-to-end test sends them from the FAKE server, since no QEMU
produces them, into the real ``python -m qmpsh``.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_qmp_server import FakeConnection, FakeQmpServer
from qemu import Qemu
from support import private_env
from test_ui import make_session

from qmpsh.event_summary import severity, summarize
from qmpsh.events import EventFilter, EventLog, format_spice_sessions, spice_sessions
from qmpsh.render import Renderer
from qmpsh.session import Session

STAMP = {"seconds": 1700000000, "microseconds": 5}
SPICE_SERVER = {"host": "127.0.0.1", "port": "5930", "family": "ipv4", "auth": "none"}


def spice_client(**fields: Any) -> dict[str, Any]:
    client = {"host": "127.0.0.1", "port": "40000", "family": "ipv4", "channel-type": 1}
    return {**client, "channel-id": 0, "tls": False, **fields}


MALFORMED: list[dict[str, Any]] = [
    {"event": "STOP", "timestamp": {"seconds": 1e20, "microseconds": 0}},
    {"event": "STOP", "timestamp": {"seconds": float("inf"), "microseconds": float("nan")}},
    {"event": "RESUME", "timestamp": {"seconds": 10**30, "microseconds": -7}},
    {"event": "RESUME", "timestamp": "yesterday"},
    {"event": "RESUME", "timestamp": {"seconds": "1", "microseconds": []}},
    {"event": "RESUME"},  # no timestamp, no data
    {"event": "RTC_CHANGE", "data": {"offset": 1e400, "qom-path": "/machine/rtc"}},
    {"event": "RTC_CHANGE", "data": {"offset": 10**300}},
    {"event": "BLOCK_JOB_COMPLETED", "data": {"type": "mirror", "device": "j", "len": 1e400}},
    {"event": "BLOCK_JOB_READY", "data": {"device": "j", "len": 10**300, "offset": 1e400}},
    {"event": "BLOCK_JOB_ERROR", "data": {"device": {"x": 1}, "speed": "fast"}},
    {
        "event": "SPICE_INITIALIZED",
        "data": {"client": spice_client(**{"connection-id": "abc"}), "server": SPICE_SERVER},
    },
    {
        "event": "SPICE_INITIALIZED",
        "data": {
            "client": spice_client(**{"connection-id": 1e400, "channel-type": "main"}),
            "server": SPICE_SERVER,
        },
    },
    {
        "event": "SPICE_INITIALIZED",
        "data": {"client": spice_client(**{"connection-id": [1], "port": None}), "server": 5},
    },
    {"event": "SPICE_DISCONNECTED", "data": {"client": "gone", "server": []}},
    {"event": "SPICE_CONNECTED", "data": ["client", "server"]},
    {"event": "VNC_CONNECTED", "data": {"client": {"host": {"a": 1}}, "server": {}}},
    {"event": "ODD_DATA", "data": "a string \x1b]2;PWNED\x07"},
    {"event": "ODD_DATA", "data": [1, {"a": [2, 3]}]},
    {"event": "ODD_DATA", "data": None},
    {"event": "ODD_DATA", "data": 3.5},
    {"event": "ODD_DATA", "data": float("-inf")},
    {"event": "ODD_DATA", "data": True},
    {"event": ["not", "a", "name"], "data": {}},
    {"event": 7},
    {"event": None, "data": {"a": 1}},
    {"event": "BLOCK_IO_ERROR", "data": ["device", "x"]},
    {"event": "BLOCK_IO_ERROR", "data": {"action": "stop", "device": ["d"], "nospace": "yes"}},
    {"event": "WATCHDOG", "data": {"action": ["reset"]}},
    {"event": "WATCHDOG", "data": {"action": {"x": "pause"}}},
    {"event": "DEVICE_TRAY_MOVED", "data": {"tray-open": "maybe", "device": 1e400}},
    {"event": "JOB_STATUS_CHANGE", "data": {"id": None, "status": {"s": 1}}},
    {"event": "SHUTDOWN", "data": {"guest": "yes", "reason": ["x"]}},
    {"event": "ODD_TEXT", "data": {"k\x1b[2J": "v\x1b]2;PWNED\x07\ud800\u202e\x9b"}},
    {"event": "ODD\x1b[31mNAME\ud800", "data": {}},
    {"event": "ODD_DEEP", "data": json.loads("[" * 400 + "]" * 400)},
    {"event": "ODD_WIDE", "data": {f"k{i}": i for i in range(20_000)}},
]
IDS = [f"{i}-{e.get('event')!s:.20}" for i, e in enumerate(MALFORMED)]

FILTERS = [
    "*",
    "ODD*",
    "!ODD*",
    "STOP RESUME",
    "offset=*",
    "offset!=1",
    "client.host=127*",
    "connection-id=abc",
    "channel-type=1",
    "0=1",
    "a.0=2",
    "action=stop",
    "k1999=1999",
    "device.x=1",
]


def no_raw_controls(text: str) -> bool:
    """Nothing a terminal would obey: only printable text (and the pane's spaces)."""
    return all(c.isprintable() and c != "\u202e" for c in text)


@pytest.mark.parametrize("event", MALFORMED, ids=IDS)
def test_summary_severity_and_filters_take_any_shape(event: dict[str, Any]) -> None:
    for width in (160, 40, 1):
        line = summarize(event, caused_by="WATCHDOG \x1b[2J", width=width)
        assert isinstance(line, str) and no_raw_controls(line)
    assert severity(event) in ("error", "warning", "notice", "info")
    for spec in FILTERS:
        assert EventFilter.parse(spec).matches(event) in (True, False)


def test_every_event_reaches_the_log_counted_and_linked() -> None:
    log = EventLog()
    for event in MALFORMED:
        log.append(event)
    assert len(log) == len(MALFORMED)  # none lost on the way in
    assert sum(log.stats().values()) == len(MALFORMED)
    # A well-formed cause still links its effect after all that.
    cause = log.append({"event": "BLOCK_IO_ERROR", "data": {"device": "d0", "action": "stop"}})
    effect = log.append({"event": "STOP"})
    assert effect.cause_seq == cause.seq and effect.caused_by == "BLOCK_IO_ERROR d0"
    assert all(no_raw_controls(logged.numbered()) for logged in log.recent())


def test_wait_sees_events_whose_data_is_not_an_object() -> None:
    log = EventLog()
    mark = log.last_seq
    log.append({"event": "ODD_DATA", "data": "text"})
    found = log.wait_for(EventFilter.parse("ODD_DATA"), 0, after_seq=mark)
    assert found is not None and found.event["data"] == "text"


def test_spice_sessions_show_what_they_can() -> None:
    sessions = spice_sessions(MALFORMED)
    shown = {str(s.session_id) for s in sessions}
    assert "abc" in shown  # the string id, kept as it came
    assert "1e999" in shown  # 1e400, as JSON shows it
    lines = format_spice_sessions(sessions)
    assert lines and all(no_raw_controls(line) for line in lines)


def test_events_commands_render_in_every_format(qemu: Qemu) -> None:
    """``events``, ``events show N``, ``events stats`` and ``spice sessions`` and
    ``info spice`` through a real session on a real QEMU, with the malformed events filed
    as the reader thread files them."""
    session = make_session(qemu.socket)
    try:
        for event in MALFORMED:
            session.events.append(event)
        for fmt in ("pretty", "json", "raw"):
            out, err = run_lines(session, fmt, *COMMANDS)
            assert "internal error" not in err and "Traceback" not in err, err
            assert no_raw_controls(out.replace("\n", "")), out
            if fmt != "pretty":
                for line in out.splitlines():
                    json.loads(line)  # one valid JSON document per line
    finally:
        session.client.close()


COMMANDS = [
    "events",
    *[f"events show {n}" for n in range(1, len(MALFORMED) + 1)],
    "events stats",
    "spice sessions",
    "info spice",
]


def run_lines(session: Session, fmt: Any, *lines: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    session.settings.fmt = fmt
    session.renderer = Renderer(fmt, out, err, color=True, width=120)
    for line in lines:
        try:
            assert session.run_line(line) == 0, (line, err.getvalue())
        except Exception as exc:  # what would be a traceback in a script
            err.write(f"internal error in {line!r}: {exc!r}\n")
    return out.getvalue(), err.getvalue()


# -- end to end, from the FAKE server -----------------------------------------------------

EVENT_NAMES = sorted({e["event"] for e in MALFORMED if isinstance(e.get("event"), str)})


def schema_entries() -> list[dict[str, Any]]:
    """Just enough schema for the events sent, so a name check would know them."""
    events = [{"name": n, "meta-type": "event", "arg-type": "0"} for n in EVENT_NAMES]
    return [*events, {"name": "0", "meta-type": "object", "members": []}]


def within_wire_depth(event: dict[str, Any]) -> bool:
    """What the client takes: deeper than wire.MAX_DEPTH is not QMP and disconnects."""
    from qmpsh.wire import MAX_DEPTH, nests_deeper_than

    return not nests_deeper_than({"timestamp": STAMP, **event}, MAX_DEPTH)


def serve_malformed(conn: FakeConnection) -> None:
    """Handshake, every malformed event the wire admits, then an empty success for the rest."""
    conn.handshake()
    for event in filter(within_wire_depth, MALFORMED):
        wire = {"timestamp": STAMP, **event}
        conn.send_raw(json.dumps(wire, allow_nan=True).replace("Infinity", "1e400").encode())
        conn.send_raw(b"\n")
    while True:
        request = conn.read()
        schema = request.get("execute") == "query-qmp-schema"
        conn.reply(request, schema_entries() if schema else {})


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[str]:
    path = str(tmp_path / "fake.sock")
    with FakeQmpServer(path, serve_malformed) as server:
        yield path
    assert server.error is None, server.error


@pytest.mark.parametrize("fmt", ["pretty", "json"])
def test_a_script_waits_for_and_lists_malformed_events(fake: str, tmp_path: Path, fmt: str) -> None:
    lines = ["wait ODD_DATA", "events", "events stats", "spice sessions", "events show 20"]
    args = [sys.executable, "-m", "qmpsh", fake, "--format", fmt, "--color", "always"]
    for line in lines:
        args += ["-c", line]
    args += ["--wait-event", "ODD_DATA", "--timeout", "20"]
    done = subprocess.run(
        args, capture_output=True, env=private_env(tmp_path), timeout=60, check=False
    )
    err = done.stderr.decode()
    assert done.returncode == 0, err
    assert "Traceback" not in err
    out = done.stdout.decode()
    assert "a string" in out  # the string data, shown
    assert "\x1b]2;" not in out and "\x07" not in out
