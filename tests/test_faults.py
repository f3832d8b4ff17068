"""Faults through the real ``python -m qmpsh``: every one ends in one line and exit 3, or is
tolerated.

Two kinds of peer: a real QEMU killed at awkward moments (idle, mid-command, mid-reply),
and the FAKE server (``fake_qmp_server.py``) for what QEMU never does: garbage, invalid
UTF-8, a runaway line, a greeting that never comes, replies nobody asked for, a storm of
events before the greeting.  qmpsh runs as a child process, so its exit code, its stderr
and its peak memory (``wait4``'s rusage of exactly that child) are what a user would see.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
from fake_qmp_server import GREETING, FakeConnection, FakeQmpServer
from qemu import Qemu, RawMonitor
from sockdiag import Queues, accepted_queues
from support import QMPSH, private_env, transcript_has, wait_for

from qmpsh.client import BUSY_HINT, GREETING_TIMEOUT
from qmpsh.wire import MAX_DEPTH

DEADLINE = 45.0  # a hung qmpsh is killed after this and the test fails (not a timing assertion)
RSS_LIMIT_MIB = 256
# Raw JSON skips the schema fetch, so the FAKE server's first request is this command.
STATUS = '{"execute": "query-status"}'
STORM = 50_000
BIG_REPLY = 2 << 20
READ_RING = {"device": "rb", "size": BIG_REPLY}


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    peak_rss_mib: float


# Measuring through a small parent: ``ru_maxrss`` of a child started by vfork+exec counts
# its parent's peak too (Linux records the old mm's high-water mark at exec), and pytest's
# own peak would swamp qmpsh's.  The wrapper is small, so what it reports is qmpsh's.
MEASURE = (
    "import resource, subprocess, sys\n"
    "code = subprocess.call(sys.argv[2:])\n"
    "with open(sys.argv[1], 'w') as f:\n"
    "    f.write(str(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss))\n"
    "sys.exit(code if code >= 0 else 128 - code)\n"
)


def start(
    tmp_path: Path, *args: str, stdin: int | IO[Any] = subprocess.DEVNULL, measure: bool = True
) -> subprocess.Popen[str]:
    """qmpsh as a child; with ``measure`` (no signals to it then) its peak RSS is recorded."""
    wrapper = [sys.executable, "-c", MEASURE, str(tmp_path / "maxrss")] if measure else []
    with open(tmp_path / "stdout", "w") as out, open(tmp_path / "stderr", "w") as err:
        return subprocess.Popen(
            [*wrapper, *QMPSH, *args],
            stdin=stdin,
            stdout=out,
            stderr=err,
            env=private_env(tmp_path),
            text=True,
        )


def finish(proc: subprocess.Popen[str], tmp_path: Path) -> Outcome:
    """End the script (EOF on a piped stdin), then wait, bounded: a hang fails the test."""
    if proc.stdin is not None:
        proc.stdin.close()
    try:
        code = proc.wait(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        pytest.fail("qmpsh hung")
    rss = tmp_path / "maxrss"
    return Outcome(
        code,
        (tmp_path / "stdout").read_text(),
        (tmp_path / "stderr").read_text(),
        int(rss.read_text()) / 1024 if rss.exists() else 0.0,  # KiB on Linux
    )


def run(tmp_path: Path, *args: str) -> Outcome:
    return finish(start(tmp_path, *args), tmp_path)


def one_line_error(outcome: Outcome, *fragments: str) -> str:
    """The run failed with exit 3 and exactly one ``qmpsh: error:`` line naming the cause."""
    assert outcome.code == 3, outcome
    assert "Traceback" not in outcome.stderr
    lines = outcome.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("qmpsh: error: "), lines
    for fragment in fragments:
        assert fragment in lines[0]
    rss = f" (peak RSS {outcome.peak_rss_mib:.0f} MiB)" if outcome.peak_rss_mib else ""
    print(f"exit {outcome.code}: {lines[0]}{rss}")
    return lines[0]


# -- the FAKE server ------------------------------------------------------------------


def fake_run(tmp_path: Path, script: Callable[[FakeConnection], None], *args: str) -> Outcome:
    path = str(tmp_path / "fake.sock")
    with FakeQmpServer(path, script) as server:
        outcome = run(tmp_path, path, *args)
    assert server.error is None, server.error
    return outcome


def answer_with(data: bytes, *, then_close: bool = False) -> Callable[[FakeConnection], None]:
    """Handshake, then answer the first command with ``data``."""

    def script(conn: FakeConnection) -> None:
        conn.handshake()
        conn.read()
        conn.send_raw(data)
        if then_close:
            conn.close()
            return
        conn.read()  # keep the line open: qmpsh must give up on its own

    return script


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"\x00\xff\x13garbage{{\n", "sent invalid QMP"),
        (b'{"return": {"status": "caf\xe9"}}\n', "sent invalid QMP"),
        (b"[1, 2]\n", "not a JSON object"),
    ],
    ids=["garbage", "invalid-utf8", "not-an-object"],
)
def test_garbage_ends_with_one_line(tmp_path: Path, data: bytes, fragment: str) -> None:
    outcome = fake_run(tmp_path, answer_with(data), "-c", STATUS)
    one_line_error(outcome, fragment, "disconnected")


def test_reply_cut_in_half_then_eof(tmp_path: Path) -> None:
    script = answer_with(b'{"return": {"status": "runn', then_close=True)
    outcome = fake_run(tmp_path, script, "-c", STATUS)
    one_line_error(outcome, "connection to", "lost (EOF in the middle of a message)")


def test_runaway_line_is_refused_with_bounded_memory(tmp_path: Path) -> None:
    """A line that never ends is cut off at the client's limit (64 MiB), not buffered for ever."""
    chunk = b"x" * (1 << 20)

    def script(conn: FakeConnection) -> None:
        conn.handshake()
        conn.read()
        conn.send_raw(b'{"return": "')
        for _ in range(80):  # 80 MiB, no newline
            conn.send_raw(chunk)

    outcome = fake_run(tmp_path, script, "-c", STATUS)
    one_line_error(outcome, "sent a line over 67108864 bytes")
    assert outcome.peak_rss_mib < RSS_LIMIT_MIB


def test_a_64_mib_reply_is_taken_with_bounded_memory(tmp_path: Path) -> None:
    """Just under the limit is still QMP: the reply is printed, memory stays bounded."""
    size = 64 * (1 << 20) - 100

    def script(conn: FakeConnection) -> None:
        conn.handshake()
        request = conn.read()
        head = b'{"return": "'
        echo = b', "id": ' + json.dumps(request["id"]).encode() if "id" in request else b""
        tail = b'"' + echo + b"}\n"
        conn.send_raw(head + b"x" * (size - len(head) - len(tail)) + tail)
        conn.read()

    outcome = fake_run(tmp_path, script, "-c", STATUS)
    assert outcome.code == 0, outcome.stderr
    assert len(outcome.stdout) > 60 * (1 << 20)
    print(f"64 MiB reply: peak RSS {outcome.peak_rss_mib:.0f} MiB")
    # Parsing and printing hold a few copies at once (bytes, value, JSON out): bounded
    # by a small multiple of the message (212 MiB measured), never more.
    assert outcome.peak_rss_mib < 4 * 64


def test_greeting_that_never_comes(tmp_path: Path) -> None:
    def script(conn: FakeConnection) -> None:
        conn.read()  # silent until qmpsh hangs up

    outcome = fake_run(tmp_path, script, "--timeout", "1", "-c", STATUS)
    one_line_error(outcome, "no QMP greeting", "within 1 s")


def test_replies_with_unknown_ids_are_tolerated(tmp_path: Path) -> None:
    def script(conn: FakeConnection) -> None:
        conn.handshake()
        request = conn.read()
        conn.send({"return": {"status": "paused"}, "id": "nobody-asked"})
        conn.send({"return": {}, "id": 12345})
        conn.reply(request, {"status": "running", "running": True})
        conn.read()

    outcome = fake_run(tmp_path, script, "-c", STATUS)
    assert (outcome.code, outcome.stderr) == (0, "")
    assert json.loads(outcome.stdout)["status"] == "running"


def test_event_storm_before_the_greeting(tmp_path: Path) -> None:
    """Every one of 50,000 early events lands in --events=FILE, and the command still runs."""

    def script(conn: FakeConnection) -> None:
        lines = (
            json.dumps({"event": "STORM", "data": {"n": n}, "timestamp": {"seconds": n}}) + "\n"
            for n in range(STORM)
        )
        conn.send_raw("".join(lines).encode())
        conn.send(GREETING)
        conn.reply(conn.read(), {})
        conn.reply(conn.read(), {"status": "running", "running": True})
        conn.read()

    events = tmp_path / "events.jsonl"
    outcome = fake_run(tmp_path, script, f"--events={events}", "-c", STATUS)
    assert (outcome.code, outcome.stderr) == (0, "")
    seen = [json.loads(line)["data"]["n"] for line in events.read_text().splitlines()]
    assert seen == list(range(STORM))
    print(f"event storm: peak RSS {outcome.peak_rss_mib:.0f} MiB")


# -- hostile messages: the FAKE server sends what no QEMU does ------------------------


def nested(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def event_line(data: bytes) -> bytes:
    stamp = b'"timestamp": {"seconds": 1, "microseconds": 0}'
    return b'{"event": "HOSTILE", "data": ' + data + b", " + stamp + b"}\n"


@pytest.mark.parametrize(
    "data",
    [
        b'{"return": ' + nested(MAX_DEPTH) + b"}\n",  # one level too many
        b'{"return": ' + nested(100_000) + b"}\n",  # RecursionError in json
        event_line(nested(100_000)),  # the caller reads it while it waits for its reply
    ],
    ids=["just-too-deep", "100000-deep", "100000-deep-event"],
)
def test_a_message_nested_too_deep_ends_with_one_line(tmp_path: Path, data: bytes) -> None:
    outcome = fake_run(tmp_path, answer_with(data), "-c", STATUS)
    one_line_error(outcome, f"nested more than {MAX_DEPTH} levels deep", "disconnected")


def test_a_reply_as_deep_as_allowed_is_printed(tmp_path: Path) -> None:
    reply = b'{"return": ' + nested(MAX_DEPTH - 1) + b"}\n"
    outcome = fake_run(tmp_path, answer_with(reply), "-c", STATUS)
    assert (outcome.code, outcome.stderr) == (0, "")
    assert json.loads(outcome.stdout) == json.loads(nested(MAX_DEPTH - 1))


def test_a_deep_event_while_idle_ends_the_connection_at_once(tmp_path: Path) -> None:
    """The reader thread reads it (no command is waiting): it hangs up, the script ends 3.

    Before, the reader thread died with a traceback and the connection stayed half open:
    the next command waited out its timeout.
    """
    replied, hung_up = threading.Event(), threading.Event()

    def script(conn: FakeConnection) -> None:
        conn.handshake()
        conn.reply(conn.read(), {"status": "running", "running": True})
        assert replied.wait(DEADLINE)
        conn.send_raw(event_line(nested(100_000)))
        try:
            conn.read()
        except EOFError:
            hung_up.set()

    path = str(tmp_path / "fake.sock")
    with FakeQmpServer(path, script) as server:
        proc = start(tmp_path, path, "--timeout", "30", stdin=subprocess.PIPE, measure=False)
        send_line(proc, STATUS)
        wait_for(lambda: (tmp_path / "stdout").read_text().strip(), "the first reply")
        replied.set()
        wait_for(hung_up.is_set, "qmpsh to hang up on the deep event")
        send_line(proc, STATUS)
        outcome = finish(proc, tmp_path)
    assert server.error is None, server.error
    one_line_error(outcome, f"nested more than {MAX_DEPTH} levels deep", "disconnected")


def greeting_with(version: object) -> bytes:
    """GREETING with its ``QMP.version`` replaced by ``version`` (JSON text, may be 1e400)."""
    text = json.dumps({"QMP": {"version": "VERSION", "capabilities": []}})
    return text.replace('"VERSION"', str(version)).encode() + b"\n"


def greeted_with(greeting: bytes) -> Callable[[FakeConnection], None]:
    def script(conn: FakeConnection) -> None:
        conn.send_raw(greeting)
        conn.reply(conn.read(), {})
        conn.reply(conn.read(), {"status": "running", "running": True})
        conn.read()

    return script


@pytest.mark.parametrize(
    "version",
    [
        '{"qemu": {"major": 1e400, "minor": 2, "micro": 0}, "package": ""}',  # OverflowError
        '{"qemu": {"major": "7", "minor": -1, "micro": 1e20}, "package": 7}',
        '{"qemu": {"major": null, "minor": [], "micro": {}}}',
        '{"qemu": [7, 2, 0], "package": null}',
        '{"package": "no qemu member"}',
    ],
    ids=["1e400", "string-negative-huge", "null-list-object", "list", "missing"],
)
def test_a_greeting_with_odd_version_values_is_taken(tmp_path: Path, version: str) -> None:
    """What cannot be read as a version reads as 0; the session goes on (``-v``, the prompt)."""
    outcome = fake_run(tmp_path, greeted_with(greeting_with(version)), "-c", "query-status")
    assert (outcome.code, outcome.stderr) == (0, "")
    assert json.loads(outcome.stdout)["status"] == "running"


@pytest.mark.parametrize(
    "greeting",
    [
        b'{"QMP": []}\n',
        b'{"QMP": "7.2.0"}\n',
        b'{"QMP": null}\n',
        greeting_with('"7.2.0"'),
        greeting_with("[7, 2, 0]"),
    ],
    ids=["QMP-list", "QMP-string", "QMP-null", "version-string", "version-list"],
)
def test_a_greeting_of_the_wrong_shape_ends_with_one_line(tmp_path: Path, greeting: bytes) -> None:
    outcome = fake_run(tmp_path, greeted_with(greeting), "-c", "query-status")
    one_line_error(outcome, "sent a malformed QMP greeting")


@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (b'"boom"', 'GenericError: malformed error reply: "boom"'),
        (b"null", "GenericError: malformed error reply: null"),
        (b'[1, "two", {}]', 'GenericError: malformed error reply: [1, "two", {}]'),
        (b"1e400", "GenericError: malformed error reply: Infinity"),
        (b'{"class": 42, "desc": null}', "42: null"),
        (b'{"desc": ["a", 1]}', 'GenericError: ["a", 1]'),
        (b'{"class": "X", "desc": "one\\ntwo\\r\\nthree"}', "X: one\\ntwo\\r\\nthree"),
        (
            b'{"class": "X\\u001b[2J", "desc": "\\u001b]2;owned\\u0007 \\ud800 \\u009b"}',
            "X\\x1b[2J: \\x1b]2;owned\\x07 \\ud800 \\x9b",
        ),
    ],
    ids=["string", "null", "list", "1e400", "class-number-desc-null", "desc-list", "newlines",
         "escapes"],
)  # fmt: skip
def test_an_error_of_any_shape_is_one_line(tmp_path: Path, error: bytes, shown: str) -> None:
    """Exit 1 (a QMP error), the error on one line, nothing that could drive the terminal."""
    reply = b'{"error": ' + error + b"}\n"
    outcome = fake_run(tmp_path, answer_with(reply), "-c", STATUS)
    assert outcome.code == 1, outcome
    assert outcome.stderr == f"error: {shown}\n"


# -- a real QEMU, killed --------------------------------------------------------------


def scripted(tmp_path: Path, qemu: Qemu) -> tuple[subprocess.Popen[str], Path]:
    """qmpsh reading a script from a pipe we hold open; the transcript shows its progress."""
    log = tmp_path / "transcript.jsonl"
    args = (qemu.socket, "-l", str(log))
    proc = start(tmp_path, *args, stdin=subprocess.PIPE, measure=False)
    return proc, log


def send_line(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


def test_qemu_killed_while_idle(tmp_path: Path) -> None:
    with Qemu() as qemu:
        proc, _ = scripted(tmp_path, qemu)
        send_line(proc, STATUS)
        wait_for(lambda: (tmp_path / "stdout").read_text().strip(), "the first reply")
        qemu.kill()
        qemu.proc.wait()
        send_line(proc, "query-name")
        outcome = finish(proc, tmp_path)
    # EOF, or "Broken pipe" when the next command is sent before the reader saw the EOF
    one_line_error(outcome, f"connection to {qemu.socket} lost (")


def test_qemu_killed_mid_command(tmp_path: Path) -> None:
    with Qemu() as qemu:
        proc, log = scripted(tmp_path, qemu)
        wait_for(lambda: transcript_has(log, "in", "return"), "negotiation")
        qemu.kill(signal.SIGSTOP)  # frozen: the command goes out and no reply can come
        send_line(proc, STATUS)
        wait_for(
            lambda: transcript_has(log, "out", "execute", "query-status"), "the command on the wire"
        )
        qemu.kill(signal.SIGKILL)
        qemu.proc.wait()
        outcome = finish(proc, tmp_path)
    one_line_error(outcome, f"connection to {qemu.socket} lost (")


def queued(qemu: Qemu) -> Queues:
    """Unread bytes on QEMU's end of its one QMP connection (qmpsh's)."""
    [queues] = accepted_queues(qemu.socket)
    return queues


def test_qemu_killed_mid_reply(tmp_path: Path) -> None:
    """QEMU dies with part of a 2 MiB reply written (a unix socket buffers ~200 KiB).

    qmpsh is frozen while QEMU writes, so nothing is drained and QEMU blocks part-way;
    the reply is a ring buffer's contents, filled beforehand through a second monitor.
    Each step waits for what the kernel says is queued on QEMU's end of the connection.

    Once thawed, QEMU is also handed a request on the second monitor. Twice in about a
    dozen full runs beside CPU hogs, QEMU 7.2 left our command unanswered for 30 s while
    nothing else was asked of it (cause not found: a missed wake-up is suspected). QEMU's
    one command dispatcher serves every monitor, so a second request wakes it either way.
    """
    fill = tmp_path / "fill.sock"
    ring = ("-chardev", "ringbuf,id=rb,size=4194304")
    # QEMU parses 2 MiB of JSON slowly on a busy machine: 300 s is a bound, not a timing.
    with (
        Qemu([*ring, "-qmp", f"unix:{fill},server=on,wait=off"]) as qemu,
        RawMonitor(str(fill), timeout=300) as second,
    ):
        second.execute("ringbuf-write", device="rb", data="x" * BIG_REPLY)
        proc, log = scripted(tmp_path, qemu)
        try:
            wait_for(lambda: transcript_has(log, "in", "return"), "negotiation")
            qemu.kill(signal.SIGSTOP)
            send_line(proc, json.dumps({"execute": "ringbuf-read", "arguments": READ_RING}))
            wait_for(lambda: queued(qemu).inbound > 0, "the command in QEMU's receive queue")
            os.kill(proc.pid, signal.SIGSTOP)
            qemu.kill(signal.SIGCONT)
            second.execute("query-status")
            wait_for(lambda: queued(qemu).outbound > 0, "part of the reply on its way to qmpsh")
            qemu.kill(signal.SIGKILL)
            qemu.proc.wait()
            os.kill(proc.pid, signal.SIGCONT)
            outcome = finish(proc, tmp_path)
        finally:  # a failed step leaves our qmpsh stopped: it is ours to end, by PID
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    one_line_error(outcome, "lost (EOF in the middle of a message)")


@pytest.mark.parametrize(
    "args",
    [("-c", "wait SUSPEND timeout=60"), ("--wait-event", "SUSPEND", "--timeout", "60")],
    ids=["wait-command", "--wait-event"],
)
def test_qemu_killed_while_waiting_for_an_event(tmp_path: Path, args: tuple[str, ...]) -> None:
    """No event can come over a dead connection: exit 3 at once, not 4 after a minute."""
    with Qemu() as qemu:
        log = tmp_path / "transcript.jsonl"
        proc = start(tmp_path, qemu.socket, "-l", str(log), *args, measure=False)
        wait_for(lambda: transcript_has(log, "in", "return"), "negotiation")
        qemu.kill()
        qemu.proc.wait()
        outcome = finish(proc, tmp_path)
    one_line_error(outcome, f"connection to {qemu.socket} lost (")


# -- a real QEMU whose monitor is busy ------------------------------------------------


def test_a_busy_monitor_is_named_after_the_greeting_timeout(tmp_path: Path) -> None:
    """Another client holds the monitor: QEMU takes the connection but never greets.

    The greeting has its own short timeout, however long ``--timeout`` allows a reply.
    """
    with Qemu() as qemu, RawMonitor(qemu.socket):
        outcome = run(tmp_path, qemu.socket, "--timeout", "60", "-c", "query-status")
    one_line_error(outcome, f"within {GREETING_TIMEOUT:g} s", BUSY_HINT)


def fill_listen_queue(path: str) -> list[socket.socket]:
    """Connect until the kernel refuses (EAGAIN): the queue holds what QEMU does not accept."""
    waiting: list[socket.socket] = []
    for _ in range(64):
        sock = socket.socket(socket.AF_UNIX)
        sock.setblocking(False)
        try:
            sock.connect(path)
        except BlockingIOError:
            sock.close()
            return waiting
        waiting.append(sock)
    pytest.fail("the listen queue never filled")


def test_a_full_listen_queue_is_explained(tmp_path: Path) -> None:
    with Qemu() as qemu, RawMonitor(qemu.socket):
        waiting = fill_listen_queue(qemu.socket)
        try:
            outcome = run(tmp_path, qemu.socket, "-c", "query-status")
        finally:
            for sock in waiting:
                sock.close()
    line = one_line_error(outcome, "queue of waiting connections is full", BUSY_HINT)
    assert "Resource temporarily unavailable" not in line
