"""Fan-out: ``qmpsh T1 T2 … -c/-f/pipe`` against real QEMUs, through the real command line.

Twenty ``-machine none`` QEMUs, one of them dead (killed by PID before the run, or
in the middle of it): every live one answers every line in order, the dead one gets
one tagged error, and the run ends with the worst status.  The pieces that order and
tag lines (``fanout``) are also checked alone, where a fault cannot be made with QEMU
(a ``"target"`` key in what a server sends).
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from libvirt_lab import LibvirtLab
from qemu import Qemu
from support import private_env, wait_until

from qmpsh import fanout
from qmpsh.errors import InputError
from qmpsh.fanout import LineStream, SharedScript, tagged

TIMEOUT = 120


def qmpsh(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qmpsh", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=private_env(tmp_path),
        timeout=TIMEOUT,
        check=False,
    )


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line parses as one JSON object (the promise made to programs)."""
    return [json.loads(line) for line in text.splitlines()]


def by_target(lines: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        grouped.setdefault(line["target"], []).append(line)
    return grouped


@pytest.fixture(scope="module")
def twenty() -> Iterator[list[Qemu]]:
    machines: list[Qemu] = []
    try:
        for n in range(20):
            machines.append(Qemu(("-name", f"vm{n}")))
        yield machines
    finally:
        for machine in machines:
            machine.stop()


@pytest.fixture
def dead(qemu_factory: Callable[..., Qemu]) -> str:
    """The socket path of a QEMU killed (by PID) and gone before the run starts."""
    machine = qemu_factory()
    machine.kill()
    machine.proc.wait(timeout=10)
    return machine.socket


# -- twenty targets, through the command line ---------------------------------------


def test_twenty_targets_one_dead_every_line_tagged_in_order(
    twenty: list[Qemu], dead: str, tmp_path: Path
) -> None:
    sockets = [m.socket for m in twenty[:10]] + [dead] + [m.socket for m in twenty[10:19]]
    done = qmpsh(tmp_path, *sockets, "-c", "query-name", "-c", "query-status", "-c", "stop")
    assert done.returncode == 3, done.stderr
    assert done.stderr == ""
    grouped = by_target(json_lines(done.stdout))
    assert list(grouped) != [] and set(grouped) == set(sockets)
    (failure,) = grouped.pop(dead)
    assert failure["error"]["class"] == "qmpsh"
    assert dead in failure["error"]["desc"]
    for n, socket in enumerate(m.socket for m in twenty[:19]):
        replies = grouped[socket]
        assert [list(r) for r in replies] == [["target", "return"]] * 3
        assert replies[0]["return"] == {"name": f"vm{n}"}  # line order kept per target
        assert replies[1]["return"]["status"] == "running"
        assert replies[2]["return"] == {}
    for machine in twenty[:19]:
        machine_monitor_cont(machine)


def machine_monitor_cont(machine: Qemu) -> None:
    """Undo the test's ``stop`` through an independent monitor (the fixture is shared)."""
    from qemu import RawMonitor

    with RawMonitor(machine.socket) as monitor:
        monitor.execute("cont")


def test_a_target_killed_mid_script_is_reported_and_the_rest_go_on(
    twenty: list[Qemu], qemu_factory: Callable[..., Qemu], tmp_path: Path
) -> None:
    victim = qemu_factory()
    sockets = [twenty[0].socket, victim.socket, twenty[1].socket]
    proc = subprocess.Popen(
        [sys.executable, "-m", "qmpsh", *sockets],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=private_env(tmp_path),
    )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write("query-name\n")
    proc.stdin.flush()
    first = [json.loads(proc.stdout.readline()) for _ in sockets]  # every target answered
    assert {line["target"] for line in first} == set(sockets)
    victim.kill()
    proc.stdin.write("query-status\nquery-name\n")
    proc.stdin.close()
    rest = json_lines(proc.stdout.read())
    assert proc.wait(timeout=TIMEOUT) == 3
    grouped = by_target(first + rest)
    for socket in (twenty[0].socket, twenty[1].socket):
        assert [next(iter(r["return"])) for r in grouped[socket]] == ["name", "status", "name"]
    lost = grouped[victim.socket]
    assert "return" in lost[0] and "error" in lost[-1]
    assert len(lost) == 2  # its script stopped at the loss: one line says so


def test_pretty_output_is_one_whole_block_per_target_in_the_order_given(
    twenty: list[Qemu], dead: str, tmp_path: Path
) -> None:
    sockets = [twenty[2].socket, dead, twenty[3].socket]
    script = "query-status\ninfo version\nquery-name\n"
    done = qmpsh(tmp_path, "--format", "pretty", "--color", "never", *sockets, stdin=script)
    assert done.returncode == 3
    blocks = done.stdout.split("\n\n")
    assert [b.splitlines()[0] for b in blocks] == [f"==> {s} <==" for s in sockets]
    for block, name in ((blocks[0], "vm2"), (blocks[2], "vm3")):
        body = block.splitlines()[1:]
        assert body[0] == "VM status: running"
        assert body[1].startswith("7.2")  # HMP text, as one target shows it
        assert f'"name": "{name}"' in "\n".join(body[2:])
    assert blocks[1].splitlines()[1].startswith(f"error: cannot connect to {dead}")


def test_events_and_wait_event_carry_the_target(twenty: list[Qemu], tmp_path: Path) -> None:
    sockets = [twenty[4].socket, twenty[5].socket]
    done = qmpsh(
        tmp_path, *sockets, "--events", "-c", "stop", "-c", "cont", "--wait-event", "RESUME"
    )
    assert done.returncode == 0, done.stderr
    events = json_lines(done.stderr)
    for socket in sockets:
        names = [e["event"] for e in events if e["target"] == socket]
        assert names == ["STOP", "RESUME"]
    waited = [line for line in json_lines(done.stdout) if "event" in line.get("return", {})]
    assert {line["target"] for line in waited} == set(sockets)
    assert all(line["return"]["event"] == "RESUME" for line in waited)


def test_wait_event_times_out_per_target_and_a_dead_one_ranks_higher(
    twenty: list[Qemu], dead: str, tmp_path: Path
) -> None:
    live = [twenty[6].socket, twenty[7].socket]
    args = ("--wait-event", "SHUTDOWN", "--timeout", "0.5", "-c", "query-status")
    timed_out = qmpsh(tmp_path, *live, *args)
    assert timed_out.returncode == 4
    errors = [line for line in json_lines(timed_out.stdout) if "error" in line]
    assert {line["target"] for line in errors} == set(live)
    assert all("no SHUTDOWN event" in line["error"]["desc"] for line in errors)
    assert qmpsh(tmp_path, *live, dead, *args).returncode == 3  # 3 outranks 4


def test_raw_format_tags_the_whole_wire_reply(twenty: list[Qemu], tmp_path: Path) -> None:
    sockets = [twenty[8].socket, twenty[9].socket]
    done = qmpsh(tmp_path, "--format", "raw", *sockets, "-c", "query-name", "-c", "nosuch")
    assert done.returncode == 2
    grouped = by_target(json_lines(done.stdout))
    for n, socket in zip((8, 9), sockets, strict=True):
        reply, error = grouped[socket]
        assert next(iter(reply)) == "target" and reply["return"] == {"name": f"vm{n}"}
        assert error["error"]["class"] == "qmpsh" and "nosuch" in error["error"]["desc"]


def test_one_target_keeps_todays_output(twenty: list[Qemu], tmp_path: Path) -> None:
    done = qmpsh(tmp_path, twenty[10].socket, "-c", "query-name")
    assert done.returncode == 0
    assert json_lines(done.stdout) == [{"name": "vm10"}]


def test_a_script_file_runs_on_every_target(twenty: list[Qemu], tmp_path: Path) -> None:
    script = tmp_path / "script.qmp"
    script.write_text("# two lines\nquery-name\n\nhuman-monitor-command command-line='info name'\n")
    sockets = [twenty[11].socket, twenty[12].socket]
    done = qmpsh(tmp_path, *sockets, "-f", str(script))
    assert done.returncode == 0, done.stderr
    grouped = by_target(json_lines(done.stdout))
    assert [r["return"] for r in grouped[sockets[1]]] == [{"name": "vm12"}, "vm12\r\n"]


# -- the pieces, alone ----------------------------------------------------------------


def test_tagged_keeps_the_target_first_and_ours() -> None:
    hostile = {"return": 1, "target": "someone else"}
    assert list(tagged("a", hostile).items()) == [("target", "a"), ("return", 1)]


def test_line_stream_never_splits_lines_of_two_threads() -> None:
    sink, lock = io.StringIO(), threading.Lock()

    def write(name: str) -> None:
        stream = LineStream(sink, lock)  # type: ignore[arg-type]
        for n in range(500):
            stream.write(f"{name}{n}")  # a line in pieces, as the renderer writes it
            stream.write(" tail\n")

    threads = [threading.Thread(target=write, args=(name,)) for name in "abc"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    lines = sink.getvalue().splitlines()
    assert len(lines) == 1500 and all(line.endswith(" tail") for line in lines)
    for name in "abc":
        assert [line for line in lines if line[0] == name] == [
            f"{name}{n} tail" for n in range(500)
        ]


def test_shared_script_reads_once_bounded_and_a_closed_reader_holds_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fanout, "SCRIPT_WINDOW", 8)
    script = SharedScript(2)
    reads: list[int] = []

    def source() -> Iterator[str]:
        for n in range(100):
            reads.append(n)
            yield f"line {n}"

    feeder = threading.Thread(target=script.feed, args=(source(),))
    feeder.start()
    fast = script.reader(0)
    assert [next(fast) for _ in range(5)] == [f"line {n}" for n in range(5)]
    assert wait_until(lambda: len(reads) >= 8)
    assert len(reads) <= 8 + 1  # the slow reader (1) has read nothing: reading waits
    script.close(1)  # its target died
    assert list(fast) == [f"line {n}" for n in range(5, 100)]
    feeder.join(timeout=10)
    assert reads == list(range(100))


def test_a_read_error_reaches_every_reader_at_its_line() -> None:
    script = SharedScript(2)

    def source() -> Iterator[str]:
        yield "query-status"
        raise InputError("not UTF-8", line=2)

    script.feed(source())
    for number in (0, 1):
        reader = script.reader(number)
        assert next(reader) == "query-status"
        with pytest.raises(InputError, match="line 2"):
            next(reader)


# -- libvirt:* through the command line ----------------------------------------------


@pytest.fixture(scope="module")
def lab() -> Iterator[LibvirtLab]:
    lab = LibvirtLab()
    try:
        yield lab.start()
    finally:
        lab.stop()


def test_libvirt_star_runs_on_every_running_domain(lab: LibvirtLab, tmp_path: Path) -> None:
    ours = [lab.create_domain("fan"), lab.create_domain("fan")]
    done = qmpsh(tmp_path, "libvirt:*", "-c", "query-name", "--quiet")
    # Other domains on this libvirtd may come and go meanwhile: only ours are asserted.
    grouped = by_target(json_lines(done.stdout))
    for name in ours:
        assert grouped[f"libvirt:{name}"] == [
            {"target": f"libvirt:{name}", "return": {"name": name}}
        ]
    with_uri = qmpsh(tmp_path, "libvirt:*@qemu:///system", "-c", "query-status", "--quiet")
    assert f"libvirt:{ours[0]}@qemu:///system" in by_target(json_lines(with_uri.stdout))
    for name in ours:
        lab.destroy(name)


def test_vminfo_on_several_targets_is_one_table_row_each(
    twenty: list[Qemu], dead: str, tmp_path: Path
) -> None:
    """`qmpsh T1 T2 … --vminfo` at pretty: a table, a row per VM; the dead one on stderr."""
    alive = twenty[:3]
    done = qmpsh(tmp_path, *[q.socket for q in alive], dead, "--vminfo", "--format", "pretty")
    assert done.returncode == 3, done.stderr
    rows = done.stdout.splitlines()[2:]  # below the header and its rule
    assert len(rows) == len(alive)  # the dead target has no row
    for n, row in enumerate(rows):  # in the order given, named as query-name says
        assert f" vm{n} " in row and " running " in row
    [error] = done.stderr.splitlines()
    assert error.startswith(f"qmpsh: error: {dead}: ")
    json_done = qmpsh(tmp_path, *[q.socket for q in alive], "--vminfo", "--format", "json")
    infos = {line["target"]: line["return"] for line in json_lines(json_done.stdout)}
    assert {name: info["name"] for name, info in infos.items()} == {
        q.socket: f"vm{n}" for n, q in enumerate(alive)
    }
