"""Hypothesis on the wire: any JSON, in any member, as greeting, replies and events.

A FAKE peer (what no QEMU sends: that is the point) feeds the real ``QmpClient``
random messages built as JSON *text*, so values Python could not write itself go on
the wire too: nesting far beyond ``MAX_DEPTH``, ``1e400``, ``NaN``, lone surrogates,
control characters, multi-megabyte strings, wrong types in every member, garbage.
The client must deliver each event and reply exactly as decoded, or end the
connection with a ``ProtocolError`` when (and only when) the message is not QMP.
No other exception may escape, on the caller's thread or the reader's.

One peer thread serves connection after connection, and each example sends a batch of
messages over the live connection, so thousands of cases take seconds.
"""

from __future__ import annotations

import json
import queue
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qmpsh.address import UnixAddress
from qmpsh.client import MAX_PACKAGE, MAX_VERSION_NUMBER, QmpClient
from qmpsh.errors import CommandError, ProtocolError, QmpshError
from qmpsh.wire import MAX_DEPTH

# What must never reach a terminal from an error line: controls, line breaks, surrogates.
UNSHOWABLE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
WAIT = 20.0  # upper bound for a reply over a live socket; never a timing assertion
QEMU_7_2 = {"qemu": {"micro": 0, "minor": 2, "major": 7}, "package": "fuzz"}
GREETING = json.dumps({"QMP": {"version": QEMU_7_2, "capabilities": []}}).encode() + b"\n"
FUZZ = settings(
    max_examples=550,
    deadline=None,
    derandomize=True,  # the same cases every run: CI is reproducible, and fast to shrink
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# -- JSON text, with how deep it nests ------------------------------------------------


@dataclass(frozen=True)
class Fragment:
    """A JSON value as wire text, and its nesting depth (a scalar is 0, ``[]`` is 1)."""

    text: str
    depth: int


def depth_of(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    return 0


SURROGATES = st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff"])
CHARACTERS = st.one_of(st.characters(), SURROGATES, st.sampled_from("\x00\x1b\x07\n\r\x9b\u2028"))
TEXT = st.lists(CHARACTERS, max_size=12).map("".join)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**300), max_value=2**300),
    st.floats(),  # NaN and infinities included: Python writes NaN, Infinity
    TEXT,
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=10,
)
NUMBERS = ["1e400", "-1e400", "1e-400", "-0", "0.0e0", "1" * 500, "NaN", "Infinity", "-Infinity"]


def written(value: Any, ascii_only: bool) -> Fragment:
    return Fragment(json.dumps(value, ensure_ascii=ascii_only), depth_of(value))


def nested(levels: int, kind: str) -> Fragment:
    if kind == "list":
        return Fragment("[" * levels + "]" * levels, levels)
    return Fragment('{"k": ' * (levels - 1) + "{}" + "}" * (levels - 1), levels)


def an_object(members: dict[str, Fragment]) -> Fragment:
    body = ", ".join(f"{json.dumps(key)}: {f.text}" for key, f in members.items())
    return Fragment("{" + body + "}", 1 + max((f.depth for f in members.values()), default=0))


# Each example draws a few values (the costly part of generating), then a plan of many
# messages that put them into every member of every kind of message (cheap small ints):
# thousands of messages in seconds.  A pool value may nest up to the bound, not beyond
# (the message around it may then be too deep); the rarer fatal line goes beyond.
POOL = st.lists(
    st.one_of(
        st.builds(written, VALUES, st.booleans()),
        st.sampled_from(NUMBERS).map(lambda text: Fragment(text, 0)),
        st.builds(
            nested,
            st.one_of(st.integers(1, 8), st.integers(MAX_DEPTH - 3, MAX_DEPTH - 1)),
            st.sampled_from(["list", "dict"]),
        ),
    ),
    min_size=1,
    max_size=6,
)
STRAY_IDS = [written(v, True) for v in (0, -1, "x", None, [], {}, 1.5, "qmpsh", "\ud800")]
STOP = Fragment('"STOP"', 0)


def message(kind: int, a: Fragment, b: Fragment, c: Fragment) -> tuple[Fragment, str]:
    """Message ``kind`` with the pool's values ``a``, ``b``, ``c`` in its members."""
    event = "event"
    return [
        (an_object({"event": a, "data": b, "timestamp": c}), event),
        (an_object({"event": STOP, "data": a}), event),
        (an_object({"event": a}), event),
        (
            an_object({"event": STOP, "timestamp": an_object({"seconds": a, "microseconds": b})}),
            event,
        ),
        (an_object({"event": STOP, "data": an_object({"offset": a, "id": b, "len": c})}), event),
        (an_object({"timestamp": c, "data": b, "event": a, "extra": a}), event),
        (an_object({"return": a, "id": stray_id(b)}), "ignored"),  # a reply to nobody
        (an_object({"error": a, "id": stray_id(b)}), "ignored"),
        (an_object({"QMP": a}), "ignored"),  # a second greeting: not QMP any more
        (an_object({"x": a}), "ignored"),
        (Fragment(" \t", 0), "ignored"),
    ][kind]


def stray_id(value: Fragment) -> Fragment:
    """An id this client never uses: its own are "qmpsh-N", or none at all."""
    return (
        STRAY_IDS[len(value.text) % len(STRAY_IDS)] if value.text.startswith('"qmpsh-') else value
    )


def our_reply(kind: int, a: Fragment, b: Fragment) -> Fragment:
    return [
        an_object({"return": a}),
        an_object({"error": a}),
        an_object({"error": an_object({"class": a, "desc": b})}),
        an_object({"error": an_object({"desc": a})}),
        an_object({"return": a, "error": b}),
    ][kind]


# Lines that are not a QMP message at all: the connection must end, cleanly.
GARBAGE = [b"\x00\xff\xfe", b"{", b'{"a": }', b'{"return": "caf\xe9"}', b'"open', b"}", b"[1,]"]
TOO_DEEP = st.builds(
    nested,
    st.one_of(st.integers(MAX_DEPTH + 1, 3 * MAX_DEPTH), st.just(100_000)),
    st.sampled_from(["list", "dict"]),
)
FATAL = st.one_of(
    st.sampled_from(GARBAGE),
    st.builds(lambda f: f'{{"event": "STOP", "data": {f.text}}}'.encode(), TOO_DEEP),
    st.builds(lambda f: f.text.encode(), TOO_DEEP),  # not even an object
    st.builds(lambda v: json.dumps(v).encode(), SCALARS),  # JSON, but not an object
)
# Beyond the client's 1 MiB reads, so one string arrives in pieces; MAX_LINE is 64 MiB.
HUGE = st.sampled_from([100_000, 1_500_000]).map(lambda n: Fragment(f'"{"x" * n}"', 0))


@dataclass(frozen=True)
class Line:
    """One line on the wire, and what the client must make of it."""

    data: bytes
    kind: str  # "event", "reply", "ignored" (a stray reply, not QMP, blank) or "fatal"

    @staticmethod
    def of(fragment: Fragment, kind: str, crlf: bool = False) -> Line:
        data = fragment.text.encode("utf-8", "surrogatepass") + (b"\r" if crlf else b"")
        return Line(data, "fatal" if fragment.depth > MAX_DEPTH else kind)


@st.composite
def batches(draw: st.DrawFn) -> tuple[list[Line], bool]:
    """Up to 60 lines ending in the reply to our command, and who reads them."""
    pool = draw(POOL)
    picks = st.integers(0, len(pool) - 1)
    plan = st.tuples(st.integers(0, 10), picks, picks, picks, st.booleans())
    lines = []
    for kind, a, b, c, crlf in draw(st.lists(plan, min_size=10, max_size=59)):
        lines.append(Line.of(*message(kind, pool[a], pool[b], pool[c]), crlf))
    if draw(st.integers(0, 9)) == 0:
        huge = an_object({"event": STOP, "data": draw(HUGE)})
        lines.insert(draw(st.integers(0, len(lines))), Line.of(huge, "event"))
    if draw(st.integers(0, 4)) == 0:
        lines.insert(draw(st.integers(0, len(lines))), Line(draw(FATAL), "fatal"))
    reply = our_reply(draw(st.integers(0, 4)), pool[draw(picks)], pool[draw(picks)])
    lines.append(Line.of(reply, "reply"))
    return lines, draw(st.booleans())


# -- the FAKE peer --------------------------------------------------------------------


class Peer:
    """Serves one connection after another on its own thread: greets (with the next
    queued greeting), accepts qmp_capabilities, answers each command with the next batch."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.greetings: queue.Queue[bytes] = queue.Queue()
        self.batches: queue.Queue[bytes] = queue.Queue()
        self.listener = socket.socket(socket.AF_UNIX)
        self.listener.bind(path)
        self.listener.listen(4)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                sock, _ = self.listener.accept()
            except OSError:
                return  # closed: the test is over
            # OSError: the client hung up (as it must after garbage)
            with sock, sock.makefile("rb") as requests, suppress(OSError, queue.Empty):
                self._converse(sock, requests)

    def _converse(self, sock: socket.socket, requests: Any) -> None:
        sock.sendall(self.greetings.get(timeout=WAIT))
        for request in requests:
            message = json.loads(request)
            if message.get("execute") == "qmp_capabilities":  # its id echoed, as QEMU does
                answer = {"return": {}, **({"id": message["id"]} if "id" in message else {})}
                sock.sendall(json.dumps(answer).encode() + b"\n")
            else:
                sock.sendall(self.batches.get(timeout=WAIT))

    def client(self) -> QmpClient:
        self.greetings.put(GREETING)
        client = QmpClient(UnixAddress(self.path), timeout=WAIT)
        client.connect()
        return client

    def close(self) -> None:
        with suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes accept() (on Linux)
        self.listener.close()
        self.thread.join(timeout=WAIT)


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    """One connection at a time: each test that connects has a peer of its own."""
    p = Peer(str(tmp_path_factory.mktemp("fuzz") / "peer.sock"))
    yield p
    p.close()


greeting_peer = peer


@pytest.fixture(scope="module")
def thread_failures() -> Iterator[list[threading.ExceptHookArgs]]:
    """Any exception that escapes a thread (the reader's) fails the test."""
    failures: list[threading.ExceptHookArgs] = []
    previous = threading.excepthook
    threading.excepthook = failures.append
    yield failures
    threading.excepthook = previous


class Receiver:
    """A live client and what it has delivered; a new client after each clean failure."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.events: list[dict[str, Any]] = []
        self.client = self._connect()

    def _connect(self) -> QmpClient:
        client = self.peer.client()
        client.add_event_listener(self.events.append)
        return client

    def renew(self) -> None:
        self.client.close()
        self.client = self._connect()


@pytest.fixture(scope="module")
def receiver(peer: Peer) -> Iterator[Receiver]:
    r = Receiver(peer)
    yield r
    r.client.close()


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)  # NaN equals NaN here, unlike in Python


def decoded(line: Line) -> Any:
    return json.loads(line.data)


# -- the properties -------------------------------------------------------------------


def feed(batch: tuple[list[Line], bool], receiver: Receiver) -> str:
    """Send one batch in answer to a command; check what the client made of it."""
    lines, caller_reads = batch
    reply_line = lines[-1]
    first_fatal = next((i for i, line in enumerate(lines) if line.kind == "fatal"), None)
    delivered = lines if first_fatal is None else lines[:first_fatal]
    expected_events = [canonical(decoded(line)) for line in delivered if line.kind == "event"]

    receiver.events.clear()
    client = receiver.client
    receiver.peer.batches.put(b"".join(line.data + b"\n" for line in lines))
    try:
        if caller_reads:  # leader/follower: this thread reads the socket itself
            reply = client.execute_message({"execute": "fuzz"})
        else:  # the reader thread reads and hands the reply over
            reply = client.submit({"execute": "fuzz"}).result(WAIT)
    except QmpshError as failure:
        assert first_fatal is not None, failure
        assert isinstance(failure, ProtocolError)
        assert isinstance(client.failure, ProtocolError) and not client.connected
        assert len(str(failure).splitlines()) == 1
        receiver.renew()
        outcome = "failed cleanly"
    else:
        assert first_fatal is None
        assert canonical(reply) == canonical(decoded(reply_line))
        if "error" in reply:
            error = str(CommandError.from_reply(reply))
            assert UNSHOWABLE.search(error) is None, error
        outcome = "delivered"
    assert [canonical(event) for event in receiver.events] == expected_events
    return f"{outcome}, {'caller' if caller_reads else 'reader thread'} reading"


def test_replies_and_events_are_delivered_or_the_connection_ends_cleanly(
    receiver: Receiver, thread_failures: list[threading.ExceptHookArgs]
) -> None:
    """At least 10,000 messages; and the cases reach the edges the property is about."""
    fed: list[bytes] = []
    outcomes: set[str] = set()

    @FUZZ
    @given(batch=batches())
    def check(batch: tuple[list[Line], bool]) -> None:
        outcomes.add(feed(batch, receiver))
        fed.extend(line.data[:20_000] if len(line.data) < 1 << 20 else b"HUGE" for line in batch[0])
        assert thread_failures == []

    check()
    assert len(fed) >= 10_000
    assert len(outcomes) == 4  # delivered or failed, read by the caller or the reader thread
    wire = b"\n".join(fed)
    assert b"[" * (MAX_DEPTH + 1) in wire and b'{"k": ' * MAX_DEPTH in wire
    assert b"[" * 1000 in wire  # deeper than Python's json can recurse
    assert b"[" * (MAX_DEPTH - 1) + b"]" in wire  # a reply or event exactly at the bound
    assert b"1e400" in wire and b"NaN" in wire and b"HUGE" in wire
    assert b"\\ud8" in wire and "\ud800".encode("utf-8", "surrogatepass") in wire
    assert b"\\u001b" in wire  # control characters (JSON text holds them escaped)


QEMU_VERSIONS = st.one_of(
    VALUES,
    st.fixed_dictionaries(
        {},
        optional={"major": VALUES, "minor": VALUES, "micro": st.integers(-5, 10**7)},
    ),
)
VERSIONS = st.one_of(
    VALUES,
    st.fixed_dictionaries({}, optional={"qemu": QEMU_VERSIONS, "package": VALUES}),
)
QMP_MEMBERS = st.one_of(
    VALUES,
    st.fixed_dictionaries(
        {"version": VERSIONS},
        optional={"capabilities": st.one_of(VALUES, st.lists(st.sampled_from(["oob", 1, None])))},
    ),
)


@settings(FUZZ, max_examples=500)
@given(qmp=QMP_MEMBERS, extreme=st.sampled_from([None, "1e400", "-1e400", "NaN", '"7"']))
def test_any_greeting_is_taken_or_refused_as_malformed(
    qmp: Any,
    extreme: str | None,
    greeting_peer: Peer,
    thread_failures: list[threading.ExceptHookArgs],
) -> None:
    peer = greeting_peer
    text = json.dumps({"QMP": qmp})
    if extreme is not None and isinstance(qmp, dict) and isinstance(qmp.get("version"), dict):
        qmp["version"]["qemu"] = {"major": "EXTREME", "minor": 2, "micro": 0}
        text = json.dumps({"QMP": qmp}).replace('"EXTREME"', extreme)
    version = qmp.get("version") if isinstance(qmp, dict) else None
    peer.greetings.put(text.encode("utf-8", "surrogatepass") + b"\n")
    client = QmpClient(UnixAddress(peer.path), timeout=WAIT)
    try:
        client.connect()
    except ProtocolError as failure:
        assert not isinstance(version, dict), failure
        assert "malformed QMP greeting" in str(failure)
    else:
        assert isinstance(version, dict)
        assert all(0 <= n <= MAX_VERSION_NUMBER for n in client.version)
        assert isinstance(client.package, str) and len(client.package) <= MAX_PACKAGE
        if extreme is not None:
            assert client.version[0] == 0
    finally:
        client.close()
    assert thread_failures == []
