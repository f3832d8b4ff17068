"""Several VMs in one interactive shell: the installed ``qmpsh`` in a pty, real QEMUs.

``qmpsh A B`` opens the shell on both (A current); ``connect``, ``use`` (the prompt
changes), ``@NAME COMMAND``, ``targets`` and ``disconnect`` are typed as a person
would, and events from every target reach the pane tagged with the target's name.
Each step waits for the output of the one before (the shell runs one request at a
time), never for time.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pexpect
import pytest
from qemu import Qemu
from test_e2e_pty import leave, spawn_qmpsh

from qmpsh.targets import CurrentSession, TaggedEvent, Targets, split_at_target

STAMP = r"[0-9:.]+"  # the pane's event time


@pytest.fixture
def machines(qemu_factory: Callable[..., Qemu]) -> dict[str, Qemu]:
    return {name: qemu_factory("-name", name) for name in ("alpha", "beta", "gamma")}


@pytest.fixture
def shell(machines: dict[str, Qemu], tmp_path: Path) -> Iterator[pexpect.spawn]:
    child = spawn_qmpsh(
        ["-y", "--color", "never", machines["alpha"].socket, machines["beta"].socket], tmp_path
    )
    child.expect(r"targets alpha, beta")
    child.expect(r"\(alpha\) ")
    yield child
    leave(child)


def run(shell: pexpect.spawn, line: str, *expected: str) -> None:
    """Type ``line`` and wait for its echo, then for each ``expected`` in turn."""
    shell.send(line + "\r")
    shell.expect_exact(f") {line}")
    for pattern in expected:
        shell.expect(pattern)


def test_use_connect_at_name_targets_and_disconnect(
    shell: pexpect.spawn, machines: dict[str, Qemu]
) -> None:
    run(shell, "@beta query-name", '"name": "beta"')
    run(shell, "query-name", '"name": "alpha"')  # the one-off left alpha current
    run(shell, "use beta", "current target: beta")
    shell.send("query-name\r")
    shell.expect_exact("(beta) query-name")  # the echo carries the new prompt
    shell.expect('"name": "beta"')
    run(shell, f"connect {machines['gamma'].socket}", "as gamma \\(now current\\)")
    shell.send("query-status\r")
    shell.expect_exact("(gamma) query-status")
    shell.expect("VM status: running")
    run(shell, "targets", "name +address +qemu +state +unseen")
    for name in ("alpha", "beta", "gamma"):  # in the order connected; * marks the current
        mark = r"\*" if name == "gamma" else " "
        socket = re.escape(machines[name].socket)
        shell.expect(rf"{mark} {name} +{socket} +7\.\d+\.\d+ +running +0")
    run(shell, "connect /nonexistent/qmp.sock", "error: cannot connect to /nonexistent/qmp.sock")
    run(shell, "use nosuch", "no target named 'nosuch' \\(targets: alpha, beta, gamma\\)")
    run(shell, "disconnect gamma", "disconnected gamma; current: alpha")
    shell.send("query-name\r")
    shell.expect_exact("(alpha) query-name")
    shell.expect('"name": "alpha"')


def test_every_targets_events_reach_the_pane_tagged(
    shell: pexpect.spawn, machines: dict[str, Qemu]
) -> None:
    run(shell, "@beta stop", rf"beta: #1 {STAMP} STOP")
    run(shell, "stop", rf"alpha: #1 {STAMP} STOP")
    run(shell, "@beta cont", rf"beta: #2 {STAMP} RESUME")
    run(shell, "targets", "unseen")
    shell.expect(r"beta +\S+ +7\.\d+\.\d+ +running +2")  # two events while alpha was current


# -- the pieces, alone ------------------------------------------------------------------


def test_at_name_splits_off_the_target() -> None:
    assert split_at_target("@vm2 query-status") == ("vm2", "query-status")
    assert split_at_target("  @vm2   stop") == ("vm2", "stop")
    assert split_at_target("query-status") == (None, "query-status")
    with pytest.raises(Exception, match="usage: @NAME COMMAND"):
        split_at_target("@vm2")


def test_pane_tags_only_once_there_are_several(qemu_factory: Callable[..., Qemu]) -> None:
    from qmpsh.monitor import open_monitor
    from qmpsh.session import Session, Settings

    targets = Targets()
    sessions = []
    for _name in ("one", "two"):
        client = open_monitor(qemu_factory().socket, timeout=10.0)
        sessions.append(Session(client, Settings()))
        client.connect()
    try:
        targets.add("one", sessions[0])
        sessions[0].events.append({"event": "STOP", "data": {}})
        (alone,) = targets.recent_events(10)
        assert alone == TaggedEvent(None, alone.logged)
        targets.add("two", sessions[1])
        sessions[1].events.append({"event": "RESUME", "data": {}})
        assert [t.target for t in targets.recent_events(10)] == ["one", "two"]
        assert targets.recent_events(10)[1].numbered().startswith("two: #1 ")
        current = CurrentSession(targets)
        assert current.client is sessions[0].client
        heard: list[object] = []
        current.add_client_listener(heard.append)
        targets.use("two")  # for the completer, another QEMU now
        assert current.client is sessions[1].client and heard == [sessions[1].client]
        assert targets.unseen("one") == 0 and targets.unseen("two") == 0
        sessions[0].events.append({"event": "STOP", "data": {}})
        assert targets.unseen("one") == 1
    finally:
        targets.close()
