"""qmpsh against a real qemu-guest-agent on the host (tests/qga_lab.py blocks all but reads).

Through the real ``python -m qmpsh``: the guest agent's dialect (no greeting, a
``guest-sync-delimited`` handshake, no events), ``qga:``, ``--ga`` and ``-N``, a
blocked RPC's CommandNotFound, the resync after a timed-out request and after a
previous client left half a request behind, completion from ``guest-info``, and the
shell's confirmation for guest-shutdown (answered no; qemu-ga blocks it anyway).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document
from qemu import Qemu
from qga_lab import ALLOWED, QemuGa
from support import private_env
from test_e2e_pty import leave, spawn_qmpsh

from qmpsh.address import UnixAddress
from qmpsh.completer import QmpCompleter
from qmpsh.guest_agent import GuestAgent
from qmpsh.live_values import LiveValues
from qmpsh.monitor import connect, reopen

GA_PROMPT = r"\(qga \d+\.\d+\.\d+\) "
BLOCKED_READ = "guest-get-users"  # a read, but not on the lab's allow-list: blocked


@pytest.fixture(scope="module")
def ga() -> Iterator[QemuGa]:
    with QemuGa() as agent:
        assert BLOCKED_READ not in ALLOWED and "guest-shutdown" not in ALLOWED
        yield agent


def qmpsh(tmp_path: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qmpsh", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=private_env(tmp_path),
        timeout=60,
    )


def transcript(path: Path) -> list[tuple[str, dict[str, Any]]]:
    return [(e["dir"], e["msg"]) for e in map(json.loads, path.read_text().splitlines())]


def syncs(entries: list[tuple[str, dict[str, Any]]]) -> list[int]:
    """Indexes of the guest-sync-delimited requests in a transcript."""
    return [
        i
        for i, (way, msg) in enumerate(entries)
        if way == "out" and msg.get("execute") == "guest-sync-delimited"
    ]


def test_ping_and_info_as_json(ga: QemuGa, tmp_path: Path) -> None:
    ping = qmpsh(tmp_path, f"qga:{ga.socket_path}", "-c", "guest-ping")
    assert (ping.returncode, json.loads(ping.stdout), ping.stderr) == (0, {}, "")
    info = qmpsh(tmp_path, "--ga", ga.socket_path, "-c", "guest-info")
    assert info.returncode == 0, info.stderr
    reply = json.loads(info.stdout)
    assert reply == ga.call({"execute": "guest-info"})["return"]
    enabled = {c["name"] for c in reply["supported_commands"] if c["enabled"]}
    assert "guest-ping" in enabled and "guest-shutdown" not in enabled


def test_blocked_command_is_command_not_found_and_the_script_goes_on(
    ga: QemuGa, tmp_path: Path
) -> None:
    done = qmpsh(tmp_path, f"qga:{ga.socket_path}", stdin=f"{BLOCKED_READ}\nguest-get-host-name\n")
    assert done.returncode == 1
    assert done.stderr == f"error: CommandNotFound: Command {BLOCKED_READ} has been disabled\n"
    host = ga.call({"execute": "guest-get-host-name"})["return"]
    assert json.loads(done.stdout) == host


def test_handshake_flushes_half_a_request_a_previous_client_left(
    ga: QemuGa, tmp_path: Path
) -> None:
    with socket.socket(socket.AF_UNIX) as previous:
        previous.settimeout(10)
        previous.connect(ga.socket_path)
        # one chunk: the ping's reply proves qemu-ga read the half request behind it too
        previous.sendall(
            b'{"execute": "guest-ping"}\n{"execute": "guest-ping", "arguments": {"x": ['
        )
        assert previous.recv(100).startswith(b'{"return": {}')
    log = tmp_path / "t.jsonl"
    done = qmpsh(tmp_path, f"qga:{ga.socket_path}", "-c", "guest-ping", "--logfile", str(log))
    assert (done.returncode, done.stdout.strip()) == (0, "{}"), done.stderr
    entries = transcript(log)
    first_sync = syncs(entries)[0]
    sync_id = entries[first_sync][1]["arguments"]["id"]
    # qemu-ga's parse error for the leftover and our 0xFF came first, and was dropped
    assert ("in", {"return": sync_id}) in entries[first_sync:]
    stale = [msg for way, msg in entries if way == "in" and "error" in msg]
    assert stale and "JSON parse error" in stale[0]["error"]["desc"]


def test_resync_after_a_timed_out_request(ga: QemuGa, tmp_path: Path) -> None:
    log = tmp_path / "t.jsonl"
    child = spawn_qmpsh([f"qga:{ga.socket_path}", "--timeout", "3", "-l", str(log)], tmp_path)
    try:
        child.expect(GA_PROMPT)
        child.send("guest-pin")
        child.expect("guest-ping")  # the menu: completion's fetches are done before the stop
        child.send("g")
        os.kill(ga.pid, signal.SIGSTOP)
        try:
            child.send("\r")
            child.expect("no reply to guest-ping within 3 s")
        finally:
            os.kill(ga.pid, signal.SIGCONT)
        child.send("guest-get-host-name\r")
        child.expect('"host-name"')  # the reply's key: the typed line has no quotes
        child.expect(GA_PROMPT)
    finally:
        leave(child)
    entries = transcript(log)
    sent = [msg.get("execute") for way, msg in entries if way == "out"]
    ping, host = sent.index("guest-ping"), sent.index("guest-get-host-name")
    assert sent[ping + 1 : host] == ["guest-sync-delimited"]  # a new handshake in between
    first, again = (entries[i][1]["arguments"]["id"] for i in syncs(entries)[:2])
    assert first != again
    ping_id = next(m["id"] for w, m in entries if w == "out" and m.get("execute") == "guest-ping")
    late = entries.index(("in", {"return": {}, "id": ping_id}))
    assert late < entries.index(("in", {"return": again}))  # stale data drained, then in sync


def test_dash_n_detects_the_guest_agent_and_still_speaks_qmp_to_qemu(
    ga: QemuGa, qemu: Qemu, tmp_path: Path
) -> None:
    agent = qmpsh(tmp_path, "-N", ga.socket_path, "-c", "guest-ping")
    assert (agent.returncode, agent.stdout.strip()) == (0, "{}"), agent.stderr
    monitor = qmpsh(tmp_path, "-N", qemu.socket, "-c", "qmp_capabilities", "-c", "query-status")
    assert monitor.returncode == 0, monitor.stderr
    assert '"status"' in monitor.stdout


def test_hmp_and_events_are_refused_in_one_line(ga: QemuGa, tmp_path: Path) -> None:
    info = qmpsh(tmp_path, f"qga:{ga.socket_path}", "-c", "info status", "-c", "guest-ping")
    assert info.returncode == 2
    assert info.stderr.splitlines() == [
        "error: line 1, col 1: HMP (`info …`, `hmp …`, -H) is not available on a guest agent"
    ]
    assert info.stdout.strip() == "{}"  # the next line still ran
    wait = qmpsh(tmp_path, f"qga:{ga.socket_path}", "-c", "wait SHUTDOWN timeout=1")
    assert wait.returncode == 2
    assert wait.stderr.strip() == "error: there are no events on a guest agent (qemu-ga sends none)"


def test_a_busy_agent_is_named_after_a_short_wait(ga: QemuGa, tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as holder:
        holder.settimeout(10)
        holder.connect(ga.socket_path)
        holder.sendall(b'{"execute": "guest-ping"}\n')
        assert holder.recv(100).startswith(b'{"return"')  # qemu-ga is serving us now
        busy = qmpsh(tmp_path, f"qga:{ga.socket_path}", "-c", "guest-ping", "--timeout", "2")
    assert busy.returncode == 3
    assert busy.stderr.strip() == (
        f"qmpsh: error: no answer to guest-sync-delimited from {ga.socket_path} within 2 s "
        "(qemu-ga serves one client at a time: is another connected?)"
    )


def test_shell_asks_before_guest_shutdown_and_no_sends_nothing(ga: QemuGa, tmp_path: Path) -> None:
    log = tmp_path / "t.jsonl"
    child = spawn_qmpsh([f"qga:{ga.socket_path}", "-l", str(log)], tmp_path)
    try:
        child.expect(GA_PROMPT)
        child.send("guest-shutdown\r")
        child.expect(r"guest-shutdown powers the guest off .*really\? \[y/N\]")
        child.send("n\r")  # never y: qemu-ga runs on this host (blocked, but still)
        child.expect("not sent")
        child.send("guest-get-host-name\r")
        child.expect('"host-name"')  # the reply's key: the typed line has no quotes
        child.expect(GA_PROMPT)
    finally:
        leave(child)
    sent = [msg.get("execute") for way, msg in transcript(log) if way == "out"]
    assert "guest-get-host-name" in sent and "guest-shutdown" not in sent


def test_completion_offers_enabled_commands_first_and_marks_disabled(ga: QemuGa) -> None:
    with GuestAgent(UnixAddress(ga.socket_path), timeout=10) as agent:
        agent.connect()
        completer = QmpCompleter(lambda: None, LiveValues.for_client(lambda: agent))
        found = list(completer.get_completions(Document("guest-"), CompleteEvent()))
    metas = [(c.text, c.display_meta_text) for c in found]
    labels = [meta for _, meta in metas]
    assert labels == sorted(labels, key=lambda meta: meta == "disabled")  # enabled first
    assert ("guest-ping", "command") in metas and ("guest-shutdown", "disabled") in metas
    enabled = {name for name, meta in metas if meta == "command"}
    assert enabled == {name for name in ALLOWED if name.startswith("guest-")}


def test_reconnect_keeps_the_guest_agent_dialect(ga: QemuGa) -> None:
    old = GuestAgent(UnixAddress(ga.socket_path), timeout=10)
    old.connect()
    old.close()
    new = reopen(old)
    connect(new)
    try:
        assert isinstance(new, GuestAgent)
        assert new.execute("guest-ping") == {}
        assert new.version == old.version != (0, 0, 0)
    finally:
        new.close()


def test_dash_n_leaves_qemus_monitor_greeting_the_next_client(qemu: Qemu, tmp_path: Path) -> None:
    """`-N` tells QEMU apart before sending anything: the probe used to send qemu-ga's
    0xFF and sync to QEMU, whose monitor then now and then did not greet the next run."""
    for _ in range(8):
        run = qmpsh(tmp_path, "-N", qemu.socket, "-c", "qmp_capabilities", "-c", "query-status")
        assert run.returncode == 0, run.stderr
