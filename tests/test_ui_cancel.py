"""Ctrl-C during a slow QMP command: back to the prompt, and the late reply goes nowhere.

A real QEMU is made slow by freezing it with SIGSTOP (by PID; always SIGCONT in a
``finally``), so ``query-status`` is on the wire but cannot be answered.  After Ctrl-C
the shell must be idle again; once QEMU thaws, its late reply must be matched by id
and dropped, so the next command shows its own reply, not the stale one.  Checked in
the pipe-input Application harness (state) and in a real pseudo-terminal (screen).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest
from qemu import Qemu
from test_e2e_pty import leave, spawn_qmpsh
from test_ui import CTRL_C, Running, make_session, running_ui, toolbar_text, wait_until

NAME = "qmpsh-cancel-vm"  # query-name's reply, unlike anything query-status says
PROMPT = rf"\({NAME}\) "  # with -name the prompt shows the VM's name
STATUS = '"status":"running"'  # query-status's reply in --format json
LATE_NOTE = "dropped the late reply to abandoned query-status"


@pytest.fixture(scope="module")
def vm() -> Iterator[Qemu]:
    """A QEMU of this module's own: freezing the shared one could stall other modules."""
    with Qemu(["-name", NAME]) as q:
        yield q


def type_line(run: Running, text: str) -> None:
    """Type ``text`` and wait for it in the buffer, so the prompt demonstrably takes keys."""
    run.send(text)
    assert wait_until(lambda: run.ui.buffer.text == text), run.ui.buffer.text


def test_ctrl_c_drops_the_late_reply_and_the_next_command_gets_its_own(vm: Qemu) -> None:
    session = make_session(vm.socket)
    with running_ui(session) as run:
        type_line(run, "query-status")
        with vm.frozen():
            run.send("\r")
            assert wait_until(lambda: run.ui.job is not None and run.ui.job.pending is not None)
            job = run.ui.job
            assert "running query-status" in toolbar_text(run.ui)
            run.send(CTRL_C)
            assert wait_until(lambda: not run.ui.busy)
            assert job is not None and not job.pending.done  # it really was still waiting
            assert wait_until(lambda: "stopped waiting for query-status" in run.stdout.getvalue())
            assert "running query-status" not in toolbar_text(run.ui)
            type_line(run, "query-name")  # the prompt is back while QEMU is still frozen
        assert wait_until(lambda: LATE_NOTE in session.client.notes), list(session.client.notes)
        run.send("\r")
        assert wait_until(lambda: f'"{NAME}"' in run.stdout.getvalue()), run.stdout.getvalue()
        assert STATUS not in run.stdout.getvalue()  # the late query-status reply
        run.send("query-status\r")
        assert wait_until(lambda: STATUS in run.stdout.getvalue()), run.stdout.getvalue()
        assert wait_until(lambda: not run.ui.busy)
        assert run.stdout.getvalue().count(STATUS) == 1


@pytest.fixture
def shell(vm: Qemu, tmp_path: Path) -> Iterator[pexpect.spawn]:
    """The installed qmpsh in a pty, as tests/test_e2e_pty.py starts it (JSON replies)."""
    args = [vm.socket, "--format", "json", "--color", "never"]
    child = spawn_qmpsh(args, tmp_path, XDG_CACHE_HOME=str(tmp_path / "cache"))
    child.expect(PROMPT)
    yield child
    leave(child)


def test_ctrl_c_in_a_terminal_returns_to_the_prompt(shell: pexpect.spawn, vm: Qemu) -> None:
    with vm.frozen():
        shell.send("query-status\r")
        shell.expect("running query-status")  # the toolbar, while it waits
        shell.sendcontrol("c")
        shell.expect("stopped waiting for query-status")
        shell.expect(PROMPT)
        shell.send("query-name")
        shell.expect("query-name")  # typed while QEMU is still frozen: the prompt takes keys
    shell.send("\r")
    shell.expect(f'"name":"{NAME}"')
    assert STATUS not in shell.before  # what came before the reply: no stale status
    shell.expect(PROMPT)
    shell.send("query-status\r")
    shell.expect(STATUS)
    shell.expect(PROMPT)
