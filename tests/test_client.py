"""QmpClient against a real QEMU; the FAKE server only for faults QEMU cannot make."""

from __future__ import annotations

import json
import math
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_qmp_server import GREETING, FakeConnection, FakeQmpServer
from qemu import Qemu, free_port

import qmpsh.client as client_module
from qmpsh.address import TcpAddress, UnixAddress
from qmpsh.client import BUSY_HINT, QmpClient
from qmpsh.errors import (
    CommandError,
    CommandTimeout,
    ConnectError,
    DisconnectedError,
    InputError,
    ProtocolError,
    QmpshError,
)
from qmpsh.wire import MAX_DEPTH, TooDeep, nests_deeper_than
from qmpsh.wire import loads as wire_loads


@pytest.fixture(scope="module")
def qemu() -> Iterator[Qemu]:
    """Overrides conftest's: the client needs no VNC/SPICE ports, which can clash."""
    with Qemu() as q:
        yield q


@pytest.fixture
def client(qemu: Qemu) -> Iterator[QmpClient]:
    c = QmpClient(UnixAddress(qemu.socket), timeout=10)
    c.connect(wait=5)  # QEMU creates the socket file a moment before it listens
    yield c
    c.close()


def connected(q: Qemu, timeout: float = 10) -> QmpClient:
    c = QmpClient(UnixAddress(q.socket), timeout=timeout)
    c.connect(wait=5)
    return c


# -- real QEMU ---------------------------------------------------------------------


def test_execute_returns_values_and_greeting(client: QmpClient) -> None:
    version = client.execute("query-version")
    assert client.version == (
        version["qemu"]["major"],
        version["qemu"]["minor"],
        version["qemu"]["micro"],
    )
    assert client.package == version["package"]
    assert client.execute("query-status")["status"] in ("running", "paused")
    assert client.connected


def test_oob_negotiated_when_offered(qemu: Qemu) -> None:
    sent: list[dict[str, Any]] = []
    c = QmpClient(UnixAddress(qemu.socket), timeout=10)
    c.add_transcript_listener(lambda way, msg: sent.append(msg) if way == "out" else None)
    with c:
        c.connect(wait=5)
    assert "oob" in c.greeting["QMP"]["capabilities"]
    assert sent[0]["execute"] == "qmp_capabilities"
    assert sent[0]["arguments"] == {"enable": ["oob"]}


def test_qmp_error_is_command_error(client: QmpClient) -> None:
    with pytest.raises(CommandError) as info:
        client.execute("no-such-command")
    assert info.value.error_class == "CommandNotFound"
    assert "no-such-command" in info.value.desc
    with pytest.raises(CommandError) as info:
        client.execute("qom-get", {"path": "/nowhere", "property": "type"})
    assert info.value.error_class == "DeviceNotFound"


def test_raw_message_keeps_user_id_and_hides_ours(client: QmpClient) -> None:
    reply = client.execute_message({"execute": "query-name", "id": {"mine": [1]}})
    assert reply == {"return": {}, "id": {"mine": [1]}}
    assert client.execute_message({"execute": "query-name"}) == {"return": {}}
    error = client.execute_message({"execute": "nope", "id": 5})
    assert error["id"] == 5 and error["error"]["class"] == "CommandNotFound"


def test_duplicate_pending_user_id_is_refused(qemu: Qemu) -> None:
    with connected(qemu) as c:
        qemu.kill(signal.SIGSTOP)
        try:
            c.submit({"execute": "query-name", "id": "x"}).abandon()
            with pytest.raises(InputError, match="already used"):
                c.submit({"execute": "query-name", "id": "x"})
        finally:
            qemu.kill(signal.SIGCONT)


def test_events_reach_listeners_in_order(client: QmpClient) -> None:
    seen: list[str] = []
    done = threading.Event()

    def listen(event: dict[str, Any]) -> None:
        seen.append(event["event"])
        if len(seen) == 4:
            done.set()

    client.add_event_listener(listen)
    for name in ("stop", "cont", "stop", "cont"):
        client.execute(name)
    assert done.wait(5)
    assert seen == ["STOP", "RESUME", "STOP", "RESUME"]


def _collect(client: QmpClient, expected: int) -> tuple[list[str], threading.Event]:
    seen: list[str] = []
    done = threading.Event()

    def listen(event: dict[str, Any]) -> None:
        seen.append(event["event"])
        if len(seen) >= expected:
            done.set()

    client.add_event_listener(listen)
    return seen, done


def test_lockstep_burst_loses_no_events(client: QmpClient) -> None:
    seen, done = _collect(client, 4000)
    for _ in range(2000):
        client.execute("stop")
        client.execute("cont")
    assert done.wait(10)
    assert seen == ["STOP", "RESUME"] * 2000


def test_pipelined_requests_get_their_own_replies(client: QmpClient) -> None:
    seen, done = _collect(client, 1000)
    pending = []
    for i in range(500):
        pending.append(client.submit({"execute": "stop", "id": f"s{i}"}))
        pending.append(client.submit({"execute": "cont", "id": f"c{i}"}))
    ids = [p.result(10)["id"] for p in pending]
    assert ids == [f"{k}{i}" for i in range(500) for k in "sc"]
    assert done.wait(10)
    assert seen == ["STOP", "RESUME"] * 500


def test_threads_share_one_client(client: QmpClient) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for _ in range(100):
                assert client.execute_message({"execute": "query-name", "id": n})["id"] == n
                n += 1000
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_transcript_sees_out_in_and_event(client: QmpClient) -> None:
    log: list[tuple[str, dict[str, Any]]] = []
    client.add_transcript_listener(lambda way, msg: log.append((way, msg)))
    _, done = _collect(client, 1)
    client.execute("stop")
    assert done.wait(5)
    client.execute("cont")
    ways = [way for way, _ in log]
    assert ways[0] == "out" and log[0][1]["execute"] == "stop"
    assert {"out", "in", "event"} <= set(ways)
    assert ("event", "STOP") in [(w, m.get("event")) for w, m in log]
    assert next(m for w, m in log if w == "in")["return"] == {}


def test_sigkill_while_idle_disconnects(qemu_factory: Callable[..., Qemu]) -> None:
    q = qemu_factory()
    lost: list[Exception] = []
    told = threading.Event()
    c = connected(q)

    def on_lost(failure: Exception) -> None:
        lost.append(failure)
        told.set()

    c.add_disconnect_listener(on_lost)
    q.kill()
    q.proc.wait(5)
    with pytest.raises(DisconnectedError) as info:
        c.execute("query-status", timeout=5)
    assert f"connection to {q.socket} lost" in str(info.value)
    assert not c.connected
    with pytest.raises(DisconnectedError):
        c.execute("query-status")
    assert told.wait(5)
    assert len(lost) == 1 and isinstance(c.failure, DisconnectedError)


def test_a_listener_added_after_the_loss_hears_of_it_once(
    qemu_factory: Callable[..., Qemu],
) -> None:
    """The shell starts listening after connecting (its prompt_toolkit loads meanwhile):
    a connection already lost by then is told at once, not never."""
    q = qemu_factory()
    c = connected(q)
    early: list[Exception] = []
    c.add_disconnect_listener(early.append)
    q.kill()
    q.proc.wait(5)
    with pytest.raises(DisconnectedError):
        c.execute("query-status", timeout=5)
    late: list[Exception] = []
    c.add_disconnect_listener(late.append)
    assert len(early) == 1 and late == [c.failure]


def test_sigkill_mid_command_fails_pending(qemu_factory: Callable[..., Qemu]) -> None:
    q = qemu_factory()
    c = connected(q)
    q.kill(signal.SIGSTOP)  # frozen: the command stays pending until the kill
    pending = c.submit({"execute": "query-status"})
    with pytest.raises(CommandTimeout):
        pending.result(0.2)
    q.kill(signal.SIGKILL)
    with pytest.raises(DisconnectedError, match="lost"):
        pending.result(5)


def test_abandoned_reply_is_dropped(qemu: Qemu) -> None:
    with connected(qemu) as c:
        qemu.kill(signal.SIGSTOP)
        try:
            with pytest.raises(CommandTimeout, match="query-version"):
                c.execute("query-version", timeout=0.2)
            late = c.submit({"execute": "query-version"})
            late.abandon()
        finally:
            qemu.kill(signal.SIGCONT)
        assert c.execute("query-name") == {}
        assert c.execute("query-status")["status"] in ("running", "paused")
        assert not late.done
        assert sum("abandoned query-version" in note for note in c.notes) == 2


def test_close_fails_pending_and_later_calls(qemu: Qemu) -> None:
    c = connected(qemu)
    qemu.kill(signal.SIGSTOP)
    try:
        pending = c.submit({"execute": "query-status"})
        c.close()
    finally:
        qemu.kill(signal.SIGCONT)
    with pytest.raises(DisconnectedError, match="closed"):
        pending.result(1)
    with pytest.raises(DisconnectedError, match="closed"):
        c.execute("query-status")
    c.close()


def test_connect_to_missing_path(tmp_path: Path) -> None:
    path = tmp_path / "absent.sock"
    with pytest.raises(ConnectError) as info:
        QmpClient(UnixAddress(str(path))).connect()
    assert str(info.value) == f"cannot connect to {path}: No such file or directory"


def test_connect_waits_for_socket(tmp_path: Path, qemu_factory: Callable[..., Qemu]) -> None:
    path = str(tmp_path / "late.sock")
    starter = threading.Timer(0.5, qemu_factory, ("-qmp", f"unix:{path},server=on,wait=off"))
    starter.start()
    c = QmpClient(UnixAddress(path), timeout=10)
    try:
        c.connect(wait=5)
        assert c.execute("query-name") == {}
    finally:
        starter.join()
        c.close()


def test_connect_wait_gives_up(tmp_path: Path) -> None:
    with pytest.raises(ConnectError, match="No such file"):
        QmpClient(UnixAddress(str(tmp_path / "never"))).connect(wait=0.2)


def test_connect_refused_tcp() -> None:
    port = free_port()
    with pytest.raises(ConnectError, match="Connection refused"):
        QmpClient(TcpAddress("127.0.0.1", port)).connect()


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        pytest.param(
            "::1",
            marks=pytest.mark.skipif(not _ipv6_loopback(), reason="no IPv6 loopback"),
        ),
    ],
)
def test_tcp(host: str, qemu_factory: Callable[..., Qemu]) -> None:
    port = free_port()
    if ":" in host:  # QEMU 7.2's legacy "-qmp tcp:[::1]:P" parser fails to resolve ::1
        chardev = f"socket,id=tcpmon,host={host},port={port},server=on,wait=off"
        qemu_factory("-chardev", chardev, "-mon", "chardev=tcpmon,mode=control")
    else:
        qemu_factory("-qmp", f"tcp:{host}:{port},server=on,wait=off")
    with QmpClient(TcpAddress(host, port), timeout=10) as c:
        c.connect(wait=5)  # QEMU listens on TCP a moment after its unix socket exists
        assert c.execute("query-status")["status"] == "running"


# -- FAKE server: faults a real QEMU cannot produce -----------------------------------


def fake(tmp_path: Path, script: Callable[[FakeConnection], None]) -> FakeQmpServer:
    return FakeQmpServer(str(tmp_path / "fake.sock"), script)


def fake_client(server: FakeQmpServer, timeout: float = 5) -> QmpClient:
    return QmpClient(UnixAddress(server.path), timeout=timeout)


def _answer_then(data: bytes) -> Callable[[FakeConnection], None]:
    """Handshake, then answer the first command with ``data`` and keep the line open."""

    def script(conn: FakeConnection) -> None:
        conn.handshake()
        conn.read()
        conn.send_raw(data)
        conn.read()

    return script


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"\x00\xffgarbage{{\n", "invalid QMP"),
        (b'{"return": "caf\xe9"}\n', "invalid QMP"),
        (b"[1, 2]\n", "not a JSON object"),
    ],
)
def test_garbage_reply_is_protocol_error(tmp_path: Path, data: bytes, why: str) -> None:
    with fake(tmp_path, _answer_then(data)) as server, fake_client(server) as c:
        c.connect()
        with pytest.raises(ProtocolError, match=why):
            c.execute("query-status")
        assert not c.connected
        with pytest.raises(ProtocolError):
            c.execute("query-status")


def test_line_too_long_is_protocol_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(client_module, "MAX_LINE", 1000)
    big = b'{"return": "' + b"x" * 5000
    with fake(tmp_path, _answer_then(big)) as server, fake_client(server) as c:
        c.connect()
        with pytest.raises(ProtocolError, match="over 1000 bytes"):
            c.execute("query-status")


def test_reply_cut_in_half_then_eof(tmp_path: Path) -> None:
    def script(conn: FakeConnection) -> None:
        conn.handshake()
        conn.read()
        conn.send_raw(b'{"return": {"status": "runn')
        conn.close()

    with fake(tmp_path, script) as server, fake_client(server) as c:
        c.connect()
        with pytest.raises(DisconnectedError, match="EOF in the middle of a message"):
            c.execute("query-status")


def test_junk_and_event_before_greeting(tmp_path: Path) -> None:
    early = {"event": "EARLY", "data": {}, "timestamp": {"seconds": 1, "microseconds": 2}}

    def script(conn: FakeConnection) -> None:
        conn.send_raw(b"some banner\r\n\xff\xfe binary\n[1]\n\n")
        conn.send(early)
        conn.handshake()
        conn.reply(conn.read(), {"name": "fake"})
        conn.read()

    events: list[dict[str, Any]] = []
    with fake(tmp_path, script) as server, fake_client(server) as c:
        c.add_event_listener(events.append)
        c.connect()
        assert c.execute("query-name") == {"name": "fake"}
        assert c.version == (7, 2, 0) and c.package == "fake"
    assert events == [early]


def test_greeting_never_comes(tmp_path: Path) -> None:
    def script(conn: FakeConnection) -> None:
        conn.read()  # say nothing until the client gives up

    with (
        fake(tmp_path, script) as server,
        pytest.raises(ConnectError, match=r"no QMP greeting .* within 0\.3 s"),
    ):
        fake_client(server, timeout=0.3).connect()


def test_hmp_instead_of_qmp(tmp_path: Path) -> None:
    def script(conn: FakeConnection) -> None:
        conn.send_raw(b"QEMU 7.2.0 monitor - type 'help' for more information\r\n(qemu) ")
        conn.read()

    with fake(tmp_path, script) as server, pytest.raises(ProtocolError, match="HMP monitor"):
        fake_client(server, timeout=0.3).connect()


def test_closed_before_greeting(tmp_path: Path) -> None:
    with (
        fake(tmp_path, lambda conn: conn.close()) as server,
        pytest.raises(ConnectError, match="closed before the QMP greeting"),
    ):
        fake_client(server).connect()


def test_malformed_greeting(tmp_path: Path) -> None:
    def script(conn: FakeConnection) -> None:
        conn.send({"QMP": {"version": "seven"}})
        conn.read()

    with (
        fake(tmp_path, script) as server,
        pytest.raises(ProtocolError, match="malformed QMP greeting"),
    ):
        fake_client(server).connect()


def test_reply_without_id_goes_to_oldest_and_stray_ids_dropped(tmp_path: Path) -> None:
    def script(conn: FakeConnection) -> None:
        conn.handshake()
        first, second = conn.read(), conn.read()
        conn.send({"return": "nobody", "id": "qmpsh-999"})
        conn.send({"error": {"class": "GenericError", "desc": "JSON parse error"}})
        conn.reply(second, "second")
        assert first["execute"] == "one"
        conn.read()

    with fake(tmp_path, script) as server, fake_client(server) as c:
        c.connect()
        one = c.submit({"execute": "one"})
        two = c.submit({"execute": "two"})
        assert one.result(5)["error"]["desc"] == "JSON parse error"
        assert two.result(5) == {"return": "second"}
        assert any("nobody asked for" in note for note in c.notes)
    assert server.error is None


def test_no_oob_when_not_offered(tmp_path: Path) -> None:
    assert GREETING["QMP"]["capabilities"] == []
    with fake(tmp_path, _answer_then(b"")) as server, fake_client(server) as c:
        c.connect()
    assert server.connection is not None
    # no oob asked for; the first request carries an id (nothing proves the wire in step)
    negotiation = server.connection.received[0]
    assert negotiation == {"execute": "qmp_capabilities", "id": negotiation["id"]}


def test_requests_carry_ids_only_when_others_are_in_flight(qemu: Qemu) -> None:
    """Lock-step requests go bare (QEMU is faster without ids); concurrent ones get ids,
    and every reply still reaches the request that asked for it."""
    sent: list[dict[str, Any]] = []
    with connected(qemu) as client:
        client.add_transcript_listener(lambda way, msg: sent.append(msg) if way == "out" else None)
        assert client.execute("query-name") == {}
        qemu.kill(signal.SIGSTOP)  # no reply can come back while the burst is sent
        try:
            pending = [client.submit({"execute": "query-status"}) for _ in range(50)]
        finally:
            qemu.kill(signal.SIGCONT)
        replies = [p.result(10) for p in pending]
    assert "id" not in sent[0]
    assert "id" not in sent[1]  # the first of the burst is alone on the wire when sent
    assert all("id" in message for message in sent[2:])
    assert all("id" not in reply and reply["return"]["status"] for reply in replies)


# -- FAKE server: hostile messages (issue 8) ------------------------------------------


def nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


EVENT_HEAD = b'{"event": "HOSTILE", "timestamp": {"seconds": 1, "microseconds": 0}, "data": '


def _idle_then(data: bytes) -> tuple[Callable[[FakeConnection], None], threading.Event]:
    """Handshake, answer one command, then send ``data`` when the test says so."""
    go = threading.Event()

    def script(conn: FakeConnection) -> None:
        conn.handshake()
        conn.reply(conn.read(), {})
        assert go.wait(10)
        conn.send_raw(data)
        conn.read()

    return script, go


@pytest.mark.parametrize(
    "data",
    [EVENT_HEAD + nested(100_000) + b"}\n", EVENT_HEAD + nested(MAX_DEPTH) + b"}\n"],
    ids=["100000-deep", "just-too-deep"],
)
def test_deep_event_on_the_reader_thread_fails_the_connection(tmp_path: Path, data: bytes) -> None:
    """Nobody waits for a reply, so the reader thread reads it: the connection is failed,
    the disconnect listener is told (the toolbar says so), and later calls fail at once."""
    script, go = _idle_then(data)
    lost: list[QmpshError] = []
    told = threading.Event()
    with fake(tmp_path, script) as server, fake_client(server, timeout=30) as c:
        c.add_disconnect_listener(lambda failure: (lost.append(failure), told.set()))
        c.connect()
        assert c.execute("query-name") == {}
        go.set()
        assert told.wait(10)
        assert not c.connected
        with pytest.raises(ProtocolError, match=f"nested more than {MAX_DEPTH} levels deep"):
            c.execute("query-name")
    assert len(lost) == 1 and isinstance(lost[0], ProtocolError)


def test_any_fault_while_reading_becomes_a_protocol_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The safety net: whatever a message makes the client throw ends the connection cleanly,
    on the reader thread as on a caller's."""

    def broken(self: QmpClient, message: dict[str, Any]) -> None:
        if message.get("event") == "HOSTILE":
            raise ZeroDivisionError("a bug")
        original(self, message)

    original = QmpClient._dispatch
    monkeypatch.setattr(QmpClient, "_dispatch", broken)
    script, go = _idle_then(EVENT_HEAD + b"{}}\n")
    told = threading.Event()
    with fake(tmp_path, script) as server, fake_client(server) as c:
        c.add_disconnect_listener(lambda failure: told.set())
        c.connect()
        c.execute("query-name")
        go.set()
        assert told.wait(10)
        with pytest.raises(ProtocolError, match="cannot read: ZeroDivisionError: a bug"):
            c.execute("query-name")


def _answer_each(replies: list[bytes]) -> Callable[[FakeConnection], None]:
    """Handshake, then answer each command with the next line of ``replies``."""

    def script(conn: FakeConnection) -> None:
        conn.handshake()
        for reply in replies:
            conn.read()
            conn.send_raw(reply)
        conn.read()

    return script


ANY_VALUE = [
    "null", "true", "0", "-1", "1e400", "-1e400", "NaN", "123456789012345678901234567890",
    '"\\ud800"', '"\\udfff\\ud800"', '"\\u001b]2;title\\u0007"', '"\\u0000"', "[]", "{}",
    '{"\\ud800": ["\\ud800"]}', '"' + "x" * 100_000 + '"',
]  # fmt: skip


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)  # NaN == NaN here, unlike in Python


def test_return_of_any_json_value_is_delivered(tmp_path: Path) -> None:
    """Lone surrogates, non-finite numbers, control characters: passed on as received."""
    replies = [b'{"return": ' + value.encode() + b"}\n" for value in ANY_VALUE]
    with fake(tmp_path, _answer_each(replies)) as server, fake_client(server) as c:
        c.connect()
        for value in ANY_VALUE:
            assert canonical(c.execute("q")) == canonical(json.loads(value))
    assert math.isinf(json.loads("1e400"))


def test_events_with_any_json_value_are_delivered(tmp_path: Path) -> None:
    events = [EVENT_HEAD + value.encode() + b"}\n" for value in ANY_VALUE]
    events += [b'{"event": ' + value.encode() + b"}\n" for value in ANY_VALUE]
    seen: list[dict[str, Any]] = []
    done = threading.Event()

    def listen(event: dict[str, Any]) -> None:
        seen.append(event)
        if len(seen) == len(events):
            done.set()

    script, go = _idle_then(b"".join(events))
    with fake(tmp_path, script) as server, fake_client(server) as c:
        c.add_event_listener(listen)
        c.connect()
        c.execute("query-name")
        go.set()
        assert done.wait(10)
        assert c.connected
    assert [canonical(e) for e in seen] == [canonical(json.loads(e)) for e in events]
    assert seen[ANY_VALUE.index('"\\ud800"')]["data"] == "\ud800"


LONG = b"y" * 5000


@pytest.mark.parametrize(
    ("error", "error_class", "desc"),
    [
        (b'"boom"', "GenericError", 'malformed error reply: "boom"'),
        (b"null", "GenericError", "malformed error reply: null"),
        (b"[1]", "GenericError", "malformed error reply: [1]"),
        (b"-1e400", "GenericError", "malformed error reply: -Infinity"),
        (b'{"class": null, "desc": 7}', "null", "7"),
        (b'{"class": "C", "desc": "a\\nb\\u001b[0m\\ud800"}', "C", "a\\nb\\x1b[0m\\ud800"),
        (b'{"class": "C", "desc": "%s"}' % LONG, "C", "y" * 1000 + "… (4000 more characters)"),
    ],
    ids=["string", "null", "list", "-1e400", "class-null-desc-number", "controls", "long"],
)  # fmt: skip
def test_error_of_any_shape_is_a_one_line_command_error(
    tmp_path: Path, error: bytes, error_class: str, desc: str
) -> None:
    reply = b'{"error": ' + error + b"}\n"
    with fake(tmp_path, _answer_each([reply])) as server, fake_client(server) as c:
        c.connect()
        with pytest.raises(CommandError) as info:
            c.execute("q")
        assert c.connected
    assert (info.value.error_class, info.value.desc) == (error_class, desc)
    assert info.value.reply == json.loads(reply)  # the reply itself is kept as received
    assert len(str(info.value).splitlines()) == 1


@pytest.mark.parametrize(
    ("version", "expected", "package"),
    [
        ({"qemu": {"major": 1e400, "minor": 2, "micro": 0}}, (0, 2, 0), ""),
        ({"qemu": {"major": "7", "minor": -1, "micro": 10**30}, "package": 7}, (0, 0, 0), ""),
        ({"qemu": {"major": True, "minor": None, "micro": 2.0}}, (0, 0, 0), ""),
        ({"qemu": [7, 2, 0], "package": "p" * 300}, (0, 0, 0), "p" * 200),
        ({}, (0, 0, 0), ""),
        ({"qemu": {"major": 9, "minor": 1, "micro": 3}, "package": "v9.1.3"}, (9, 1, 3), "v9.1.3"),
    ],
    ids=["1e400", "string-negative-huge", "bool-null-float", "list", "empty", "sane"],
)
def test_greeting_with_odd_version_values_is_taken(
    tmp_path: Path, version: dict[str, Any], expected: tuple[int, int, int], package: str
) -> None:
    greeting = {"QMP": {"version": version, "capabilities": []}}

    def script(conn: FakeConnection) -> None:
        conn.send(greeting)
        conn.reply(conn.read(), {})
        conn.reply(conn.read(), "fine")
        conn.read()

    with fake(tmp_path, script) as server, fake_client(server) as c:
        c.connect()
        assert (c.version, c.package) == (expected, package)
        assert c.execute("q") == "fine"


def test_greeting_has_its_own_short_timeout(tmp_path: Path) -> None:
    def script(conn: FakeConnection) -> None:
        conn.read()  # a busy monitor: connected, never greeted

    with fake(tmp_path, script) as server:
        c = QmpClient(UnixAddress(server.path), timeout=60, greeting_timeout=0.3)
        with pytest.raises(ConnectError, match=r"no QMP greeting .* within 0\.3 s") as info:
            c.connect()
    assert BUSY_HINT in str(info.value)


def test_connect_wait_covers_the_greeting_too(tmp_path: Path) -> None:
    """``--wait`` allows for a QEMU still starting, which may accept before it greets."""

    def script(conn: FakeConnection) -> None:
        conn.read()

    with fake(tmp_path, script) as server:
        c = QmpClient(UnixAddress(server.path), timeout=60, greeting_timeout=0.1)
        with pytest.raises(ConnectError, match="no QMP greeting") as info:
            c.connect(wait=1.5)
    waited = float(str(info.value).split(" within ")[1].split()[0])
    assert 0.1 < waited <= 1.5


def test_depth_is_measured_without_recursion() -> None:
    deep: list[Any] = []
    for _ in range(100_000):
        deep = [deep]
    assert nests_deeper_than(deep)
    assert not nests_deeper_than(json.loads(nested(MAX_DEPTH)))
    assert nests_deeper_than(json.loads(nested(MAX_DEPTH + 1)))
    assert not nests_deeper_than({"a": [1, {"b": "[[[["}]}, limit=3)
    assert nests_deeper_than({"a": [1, {"b": []}]}, limit=3)
    assert not nests_deeper_than("[[[[", limit=0)


@pytest.mark.parametrize("as_text", [False, True], ids=["bytes", "str"])
def test_wire_loads_refuses_too_deep_and_keeps_the_rest(as_text: bool) -> None:
    """One decision for every transport that decodes QMP itself (the socket, libvirt)."""

    def text(data: bytes) -> bytes | str:
        return data.decode() if as_text else data

    for levels in (MAX_DEPTH + 1, 100_000):
        with pytest.raises(TooDeep, match=f"nested more than {MAX_DEPTH} levels deep"):
            wire_loads(text(nested(levels)))
    assert wire_loads(text(nested(MAX_DEPTH))) == json.loads(nested(MAX_DEPTH))
    assert wire_loads(text(b'"' + b"[" * 1000 + b'"')) == "[" * 1000  # brackets in a string
    assert math.isinf(wire_loads(text(b"1e400")))
    with pytest.raises(ValueError):
        wire_loads(text(b"{"))


def test_busy_tcp_monitor_gives_the_hint(qemu_factory: Callable[..., Qemu]) -> None:
    """A real QEMU on TCP, its monitor held by another client: the greeting's own timeout
    ends the wait (however long replies may take), with the hint."""
    port = free_port()
    qemu_factory("-qmp", f"tcp:127.0.0.1:{port},server=on,wait=off")
    holder = QmpClient(TcpAddress("127.0.0.1", port), timeout=10)
    holder.connect(wait=5)
    try:
        c = QmpClient(TcpAddress("127.0.0.1", port), timeout=60, greeting_timeout=0.5)
        with pytest.raises(ConnectError, match=r"0\.5 s") as info:
            c.connect()
        assert BUSY_HINT in str(info.value)
        assert holder.execute("query-status")["status"] == "running"  # the holder is served
    finally:
        holder.close()


def test_a_reply_meant_for_the_previous_client_is_not_taken(tmp_path: Path) -> None:
    """QEMU hands the answer to a command whose client left before it came to whichever
    client is connected next, after that one's greeting (seen in a stress run: a test's
    shell closed while its schema was being fetched, under load).  Taken as the answer
    to the new client's qmp_capabilities, it shifted every later answer by one:
    query-name's {} came back as query-status's.  The fake answers as that slow QEMU did:
    each request's answer comes once the next request is in, unless the client waits
    for its own (it must, until an answer carrying one of its ids proves the wire is in
    step)."""
    answers = {
        "qmp_capabilities": {},
        "query-name": {},
        "query-status": {"status": "running", "running": True},
        "query-version": "third",
    }
    stale = {"return": [{"name": "query-status", "meta-type": "command"}]}

    def script(conn: FakeConnection) -> None:
        conn.send(GREETING)
        held = conn.read()
        conn.send(stale)  # the previous client's query-qmp-schema, answered late
        if "id" in held:  # a client that waits for its own answer gets it now
            conn.reply(held, answers[held["execute"]])
            while True:
                request = conn.read()
                conn.reply(request, answers[request["execute"]])
        while True:  # one that took the stale answer goes on: the answers lag behind
            request = conn.read()
            conn.reply(held, answers[held["execute"]])
            held = request

    with fake(tmp_path, script) as server, fake_client(server) as c:
        c.connect()
        assert c.execute("query-name") == {}
        assert c.execute("query-status")["status"] == "running"
        assert c.execute("query-version") == "third"
        assert any("nobody asked for" in note for note in c.notes)
